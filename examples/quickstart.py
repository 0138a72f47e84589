"""funclayers in one minute: a torch model's weights in JAX, the same outputs, then training with optax.

    python examples/quickstart.py          # a few seconds

1. Build a small conv net with funclayers and the same net with torch.nn.
2. Load the torch `state_dict` into it with `fl.load_state_dict` and compare the outputs.
3. Train it for a few steps with optax under `jax.jit`, threading BatchNorm's state.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import funclayers as fl


def build_model() -> fl.Layer:
    """Conv-BN-ReLU-pool-flatten-linear: torch's names and layouts, as a stateless init/apply pair."""
    return fl.Sequential(
        fl.Conv2d(1, 8, 3, padding=1), fl.BatchNorm2d(8), fl.ReLU(),
        fl.MaxPool2d(2), fl.Flatten(), fl.Linear(8 * 4 * 4, 2),
    )


def build_torch_model():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 2),
    )


def toy_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images of a bright horizontal (label 0) or vertical (label 1) bar, with noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = 0.3 * rng.standard_normal((n, 1, 8, 8))
    where = rng.integers(1, 7, n)
    for i, (label, pos) in enumerate(zip(labels, where, strict=True)):
        if label == 0:
            images[i, 0, pos, :] += 1.0
        else:
            images[i, 0, :, pos] += 1.0
    return images.astype(np.float32), labels.astype(np.int32)


def main() -> None:
    import torch

    start = time.perf_counter()
    model = build_model()
    print(model)

    # 1-2. torch weights into funclayers: the state_dict names and shapes are torch's own.
    torch.manual_seed(0)
    torch_model = build_torch_model().eval()
    params, state = fl.load_state_dict(model, torch_model.state_dict())
    x, y = toy_data(256)
    ours, _ = model.apply(params, state, jnp.asarray(x))           # eval mode, as torch_model.eval()
    with torch.no_grad():
        theirs = torch_model(torch.from_numpy(x)).numpy()
    diff = float(np.max(np.abs(np.asarray(ours) - theirs)))
    print(f"loaded torch's state_dict ({len(torch_model.state_dict())} entries): "
          f"max |funclayers - torch| = {diff:.2e} over outputs of shape {theirs.shape}")
    assert diff < 1e-4, "funclayers and torch disagree"

    # 3. train under jax.jit: training=True uses batch statistics and returns the new BatchNorm state.
    optimizer = optax.sgd(0.1, momentum=0.9)
    opt_state = optimizer.init(params)

    criterion = fl.CrossEntropyLoss()  # torch's nn.CrossEntropyLoss(): a layer without params

    def loss_fn(params, state, x, y):
        logits, new_state = model.apply(params, state, x, training=True)
        loss, _ = criterion.apply({}, {}, logits, y)
        return loss, new_state

    @jax.jit
    def train_step(params, state, opt_state, x, y):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    @jax.jit
    def accuracy(params, state, x, y):
        logits, _ = model.apply(params, state, x)
        return jnp.mean(jnp.argmax(logits, -1) == y)

    x_test, y_test = toy_data(256, seed=1)
    print(f"before training: test accuracy {float(accuracy(params, state, x_test, y_test)):.3f}")
    for step in range(1, 61):
        batch = slice((step * 32) % 256, (step * 32) % 256 + 32)
        params, state, opt_state, loss = train_step(params, state, opt_state, x[batch], y[batch])
        if step % 10 == 0:
            print(f"step {step:3d}  loss {float(loss):.4f}  "
                  f"batches seen by BatchNorm {int(state['1']['num_batches_tracked'])}")
    acc = float(accuracy(params, state, x_test, y_test))
    print(f"after training: test accuracy {acc:.3f}  ({time.perf_counter() - start:.1f} s in all)")

    # and back: the trained funclayers weights load into the torch model unchanged
    trained = {k: torch.from_numpy(np.array(v)) for k, v in fl.state_dict(params, state).items()}
    torch_model.load_state_dict(trained)
    with torch.no_grad():
        back = torch_model(torch.from_numpy(x_test)).numpy()
    ours = np.asarray(model.apply(params, state, x_test)[0])
    print(f"trained weights back in torch (eval mode): max |funclayers - torch| = "
          f"{np.max(np.abs(back - ours)):.2e}")


if __name__ == "__main__":
    main()
