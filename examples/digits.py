"""The digits training loop shared by examples/train_digits.py and notebooks/02_train_cnn.ipynb.

scikit-learn's 8x8 handwritten digits (1797 images, shipped inside the package: no download),
a small funclayers conv net, a jit-compiled optax training step that threads BatchNorm's state
and a dropout key, evaluation, loss/accuracy curves, and bit-exact checkpoints of params, state
and optimizer state as a numpy .npz.

    data = load_digits_data()
    model = digits_cnn()
    result = train(model, data, epochs=10)
    save_checkpoint("digits.npz", result.params, result.state, result.opt_state)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import funclayers as fl


@dataclasses.dataclass
class Data:
    """Images (N, 1, 8, 8) float32, standardised, and integer labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_data(test_fraction: float = 0.2, seed: int = 0) -> Data:
    """scikit-learn's digits as NCHW float32 images, split into a stratified train and test set."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)[:, None] / 16.0  # pixel values are 0..16
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target.astype(np.int32),
                                                        test_size=test_fraction, random_state=seed,
                                                        stratify=digits.target)
    mean, std = x_train.mean(), x_train.std()  # statistics of the training set only
    return Data((x_train - mean) / std, y_train, (x_test - mean) / std, y_test)


def digits_cnn(num_classes: int = 10, dropout: float = 0.25) -> fl.Layer:
    """A small conv net for 1x8x8 images: two conv-BN-ReLU blocks, a max pool and a linear head.

    Shape: (N, 1, 8, 8) -> (N, num_classes).
    """
    return fl.Sequential(
        fl.Conv2d(1, 32, 3, padding=1), fl.BatchNorm2d(32), fl.ReLU(),
        fl.Conv2d(32, 64, 3, padding=1), fl.BatchNorm2d(64), fl.ReLU(),
        fl.MaxPool2d(2),                                   # 64 x 4 x 4
        fl.Flatten(), fl.Dropout(dropout),
        fl.Linear(64 * 4 * 4, num_classes),
    )


def make_optimizer(learning_rate: float, total_steps: int) -> optax.GradientTransformation:
    """Adam with a cosine-decayed learning rate: the optimizer `train` uses."""
    return optax.adam(optax.cosine_decay_schedule(learning_rate, total_steps))


def make_train_step(model: fl.Layer, optimizer: optax.GradientTransformation) -> Callable:
    """`step(params, state, opt_state, x, y, rng) -> (params, state, opt_state, loss, accuracy)`, jitted.

    Training mode: BatchNorm normalises with batch statistics and returns updated running
    statistics in the new state; Dropout draws from `rng`.
    """
    def loss_fn(params, state, x, y, rng):
        logits, new_state = model.apply(params, state, x, rng=rng, training=True)
        loss = fl.functional.cross_entropy(logits, y)  # torch's F.cross_entropy, as a torch loop computes it
        return loss, (new_state, jnp.mean(jnp.argmax(logits, -1) == y))

    def step(params, state, opt_state, x, y, rng):
        (loss, (state, accuracy)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y, rng)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss, accuracy

    return jax.jit(step, donate_argnums=(0, 1, 2))


def make_eval_fn(model: fl.Layer) -> Callable:
    """`evaluate(params, state, x, y) -> (loss, accuracy)` in eval mode (running statistics), jitted."""
    @jax.jit
    def evaluate(params, state, x, y):
        logits, _ = model.apply(params, state, x)
        loss = fl.functional.cross_entropy(logits, y)
        return loss, jnp.mean(jnp.argmax(logits, -1) == y)

    return evaluate


@dataclasses.dataclass
class TrainResult:
    params: Any
    state: Any
    opt_state: Any
    history: dict[str, list[float]]
    seconds: float


def train(model: fl.Layer, data: Data, *, epochs: int = 10, batch_size: int = 64, learning_rate: float = 3e-3,
          seed: int = 0, progress: bool = True, log: Callable[[str], None] | None = print) -> TrainResult:
    """Trains `model` on `data` with Adam; records per-epoch train/test loss and accuracy.

    Each epoch shuffles the training set and takes full batches only (one compiled shape).
    `progress` shows a tqdm bar over the steps; `log` receives one line per epoch.
    """
    from tqdm.auto import tqdm

    rng = jax.random.PRNGKey(seed)
    init_rng, rng = jax.random.split(rng)
    params, state = jax.jit(model.init)(init_rng)  # one compilation instead of one per initialiser
    steps_per_epoch = len(data.x_train) // batch_size
    optimizer = make_optimizer(learning_rate, epochs * steps_per_epoch)
    opt_state = optimizer.init(params)
    train_step, evaluate = make_train_step(model, optimizer), make_eval_fn(model)
    history: dict[str, list[float]] = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    order = np.random.default_rng(seed)
    start = time.perf_counter()
    bar = tqdm(total=epochs * steps_per_epoch, disable=not progress, unit="step")
    for epoch in range(epochs):
        perm = order.permutation(len(data.x_train))
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            step_rng = jax.random.fold_in(rng, epoch * steps_per_epoch + i)
            params, state, opt_state, loss, _ = train_step(params, state, opt_state, data.x_train[idx],
                                                           data.y_train[idx], step_rng)
            bar.update(1)
        bar.set_postfix(loss=f"{float(loss):.3f}")
        for split in ("train", "test"):
            x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
            split_loss, split_acc = evaluate(params, state, x, y)
            history[f"{split}_loss"].append(float(split_loss))
            history[f"{split}_acc"].append(float(split_acc))
        if log is not None:
            line = (f"epoch {epoch + 1:2d}/{epochs}  train loss {history['train_loss'][-1]:.4f} "
                    f"acc {history['train_acc'][-1]:.4f}  test loss {history['test_loss'][-1]:.4f} "
                    f"acc {history['test_acc'][-1]:.4f}")
            (bar.write if progress else log)(line)
    bar.close()
    return TrainResult(params, state, opt_state, history, time.perf_counter() - start)


# -- checkpoints: bit-exact numpy round trip of any pytree ------------------------------------


def save_checkpoint(path: str, params: Any, state: Any, opt_state: Any) -> None:
    """Writes params, state and optimizer state to one .npz, one entry per leaf, named by its path.

    Arrays are stored as they are (dtype and bits preserved); restore with `load_checkpoint`.
    """
    arrays = {}
    for group, tree in (("params", params), ("state", state), ("opt_state", opt_state)):
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            arrays[group + jax.tree_util.keystr(key_path)] = np.asarray(leaf)
    np.savez(path, **arrays)


def load_checkpoint(path: str, params_like: Any, state_like: Any,
                    opt_state_like: Any) -> tuple[Any, Any, Any]:
    """Reads a `save_checkpoint` file into trees shaped like the given templates.

    The templates give the structure, including optax's named tuples, and each leaf's shape and
    dtype: arrays, or `jax.ShapeDtypeStruct`s from `jax.eval_shape(model.init, key)`.
    """
    with np.load(path) as stored:
        restored = []
        for group, like in (("params", params_like), ("state", state_like), ("opt_state", opt_state_like)):
            leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(like)
            leaves = []
            for key_path, template in leaves_with_path:
                name = group + jax.tree_util.keystr(key_path)
                if name not in stored:
                    raise ValueError(f"checkpoint {path} has no entry {name}.")
                value, dtype = stored[name], np.dtype(template.dtype)
                if value.shape != tuple(template.shape) or value.dtype != dtype:
                    raise ValueError(f"checkpoint entry {name} has shape {value.shape} and dtype "
                                     f"{value.dtype}; "
                                     f"the model expects {tuple(template.shape)} and {dtype}.")
                leaves.append(jnp.asarray(value))
            restored.append(jax.tree_util.tree_unflatten(treedef, leaves))
    return tuple(restored)


def trees_bit_equal(a: Any, b: Any) -> bool:
    """True if two pytrees have the same structure and every leaf the same dtype, shape and bits."""
    leaves_a, def_a = jax.tree_util.tree_flatten(a)
    leaves_b, def_b = jax.tree_util.tree_flatten(b)
    if def_a != def_b:
        return False
    for x, y in zip(leaves_a, leaves_b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            return False
    return True


def plot_history(history: dict[str, list[float]], path: str | None = None):
    """Loss and accuracy curves per epoch (train and test); saved to `path` when given."""
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for split, style in (("train", "-o"), ("test", "-s")):
        ax_loss.plot(epochs, history[f"{split}_loss"], style, label=split, markersize=4)
        ax_acc.plot(epochs, history[f"{split}_acc"], style, label=split, markersize=4)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
