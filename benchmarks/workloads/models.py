"""End-to-end model workloads: a training step (forward, cross-entropy, backward, SGD update) and inference.

- small CNN (examples/models.py: Conv-BN-ReLU x2, MaxPool, Conv-BN-ReLU, AdaptiveAvgPool, Linear),
  batch 64 of 3x32x32;
- ResNet-18, CIFAR variant (3x3 stem, no max pool), batch 32 of 3x32x32: training step and
  eval-mode inference.

funclayers runs under jax.jit in training mode with the BatchNorm state threaded through the
step (params, state and optimizer state donated); torch runs eager with torch.optim.SGD; Flax
(linen, channels-last as Flax code is written) and Equinox (eqx.nn with BatchNorm state, vmapped
over the batch) build the same architecture. All use SGD(lr=0.01, momentum=0.9).
"""

from __future__ import annotations

import functools

import numpy as np

from benchmarks.harness import Workload, jax_step, to_torch, torch_device, torch_step

LR, MOMENTUM = 0.01, 0.9
SMALL_CNN_BATCH, RESNET_BATCH = 64, 32
NUM_CLASSES = 10


def _data(batch: int, channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, batch).astype(np.int32)
    return (x.transpose(0, 2, 3, 1).copy() if channels_last else x), y


def _examples():
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from examples import models

    return models


def _carry_step(fn, carry, *args):
    """A blocking step that feeds `fn`'s first outputs (the new params/state) back in as the carry."""
    import jax

    holder = [carry]

    def step():
        out = fn(*holder[0], *args)
        holder[0] = out[:len(holder[0])]
        jax.block_until_ready(out)

    return step


# --- funclayers -------------------------------------------------------------------------------


def _fast_init(model):
    """Params and state of torch's scales, drawn with numpy from the shapes of `model.init`.

    `jax.jit(model.init)` compiles one threefry generator per parameter (~0.5 s each on CPU,
    ~30 s for ResNet-18): setup time that says nothing about the step being measured.
    """
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)

    def fill(path, leaf):
        name = str(path[-1].key)
        if name == "weight" and len(leaf.shape) >= 2:  # conv / linear: U(+-1/sqrt(fan_in))
            bound = 1.0 / np.sqrt(np.prod(leaf.shape[1:]))
            return jnp.asarray(rng.uniform(-bound, bound, leaf.shape), leaf.dtype)
        ones = name in ("weight", "running_var")  # BatchNorm's weight and running variance
        return jnp.ones(leaf.shape, leaf.dtype) if ones else jnp.zeros(leaf.shape, leaf.dtype)

    params, state = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    return (jax.tree_util.tree_map_with_path(fill, params), jax.tree_util.tree_map_with_path(fill, state))



def _fl_train(model_name: str, batch: int):
    def build():
        import jax
        import jax.numpy as jnp
        import optax

        model = getattr(_examples(), model_name)()
        params, state = _fast_init(model)
        optimizer = optax.sgd(LR, momentum=MOMENTUM)
        opt_state = optimizer.init(params)
        x, y = (jnp.asarray(a) for a in _data(batch))

        def loss_fn(params, state, x, y):
            logits, new_state = model.apply(params, state, x, training=True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new_state

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
        def train_step(params, state, opt_state, x, y):
            (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), state, opt_state, loss

        return _carry_step(train_step, (params, state, opt_state), x, y)

    return build


def _fl_infer(model_name: str, batch: int):
    def build():
        import jax
        import jax.numpy as jnp

        model = getattr(_examples(), model_name)()
        params, state = _fast_init(model)
        x = jnp.asarray(_data(batch)[0])
        forward = jax.jit(lambda params, state, x: model.apply(params, state, x)[0])
        return jax_step(forward, params, state, x)

    return build


# --- torch ------------------------------------------------------------------------------------


def _torch_train(model_name: str, batch: int):
    def build():
        import torch

        torch.manual_seed(0)
        model = getattr(_examples(), f"torch_{model_name}")().train().to(torch_device())
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        x, y = (to_torch(a) for a in _data(batch))
        y = y.long()

        def step():
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

        return torch_step(step)

    return build


def _torch_infer(model_name: str, batch: int):
    def build():
        import torch

        model = getattr(_examples(), f"torch_{model_name}")().eval().to(torch_device())
        x = to_torch(_data(batch)[0])

        def step():
            with torch.inference_mode():
                model(x)

        return torch_step(step)

    return build


# --- flax (linen, NHWC) -----------------------------------------------------------------------


def _flax_models():
    import flax.linen as nn

    def batch_norm(train):
        # torch's momentum 0.1 is flax's 0.9 (the weight of the old running value)
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)

    class SmallCNN(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = True):
            for features in (32, 32):
                x = nn.relu(batch_norm(train)(nn.Conv(features, (3, 3), padding=1)(x)))
            x = nn.max_pool(x, (2, 2), (2, 2))
            x = nn.relu(batch_norm(train)(nn.Conv(64, (3, 3), padding=1)(x)))
            return nn.Dense(NUM_CLASSES)(x.mean(axis=(1, 2)))

    class BasicBlock(nn.Module):
        planes: int
        stride: int = 1

        @nn.compact
        def __call__(self, x, train: bool = True):
            out = nn.Conv(self.planes, (3, 3), self.stride, padding=1, use_bias=False)(x)
            out = nn.relu(batch_norm(train)(out))
            out = batch_norm(train)(nn.Conv(self.planes, (3, 3), 1, padding=1, use_bias=False)(out))
            if self.stride != 1 or x.shape[-1] != self.planes:
                x = batch_norm(train)(nn.Conv(self.planes, (1, 1), self.stride, use_bias=False)(x))
            return nn.relu(out + x)

    class ResNet18(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = True):
            x = nn.relu(batch_norm(train)(nn.Conv(64, (3, 3), 1, padding=1, use_bias=False)(x)))
            for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                x = BasicBlock(planes, stride)(x, train)
                x = BasicBlock(planes, 1)(x, train)
            return nn.Dense(NUM_CLASSES)(x.mean(axis=(1, 2)))

    return {"small_cnn": SmallCNN, "resnet18": ResNet18}


def _flax_train(model_name: str, batch: int):
    def build():
        import jax
        import jax.numpy as jnp
        import optax

        model = _flax_models()[model_name]()
        x, y = (jnp.asarray(a) for a in _data(batch, channels_last=True))
        variables = jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), x)
        params, batch_stats = variables["params"], variables["batch_stats"]
        optimizer = optax.sgd(LR, momentum=MOMENTUM)
        opt_state = optimizer.init(params)

        def loss_fn(params, batch_stats, x, y):
            logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                                          mutable=["batch_stats"])
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, updates["batch_stats"]

        @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
        def train_step(params, batch_stats, opt_state, x, y):
            (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats, x, y)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), batch_stats, opt_state, loss

        return _carry_step(train_step, (params, batch_stats, opt_state), x, y)

    return build


def _flax_infer(model_name: str, batch: int):
    def build():
        import jax
        import jax.numpy as jnp

        model = _flax_models()[model_name]()
        x = jnp.asarray(_data(batch, channels_last=True)[0])
        variables = jax.jit(functools.partial(model.init, train=False))(jax.random.PRNGKey(0), x)
        forward = jax.jit(lambda variables, x: model.apply(variables, x, train=False))
        return jax_step(forward, variables, x)

    return build


# --- equinox (eqx.nn, channels first, vmapped over the batch) ---------------------------------


def _equinox_models():
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    def batch_norm(channels):
        return eqx.nn.BatchNorm(channels, axis_name="batch", momentum=0.9, mode="batch")

    def conv(c_in, c_out, k, stride=1, padding=0, bias=True, *, key):
        return eqx.nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, use_bias=bias, key=key)

    class SmallCNN(eqx.Module):
        convs: list
        norms: list
        fc: eqx.nn.Linear

        def __init__(self, key):
            k = jax.random.split(key, 4)
            self.convs = [conv(3, 32, 3, 1, 1, key=k[0]), conv(32, 32, 3, 1, 1, key=k[1]),
                          conv(32, 64, 3, 1, 1, key=k[2])]
            self.norms = [batch_norm(32), batch_norm(32), batch_norm(64)]
            self.fc = eqx.nn.Linear(64, NUM_CLASSES, key=k[3])

        def __call__(self, x, state):
            for i, (c, n) in enumerate(zip(self.convs, self.norms, strict=True)):
                x, state = n(c(x), state)
                x = jax.nn.relu(x)
                if i == 1:
                    x = eqx.nn.MaxPool2d(2, 2)(x)
            return self.fc(x.mean(axis=(1, 2))), state

    class BasicBlock(eqx.Module):
        conv1: eqx.nn.Conv2d
        bn1: eqx.nn.BatchNorm
        conv2: eqx.nn.Conv2d
        bn2: eqx.nn.BatchNorm
        downsample: tuple | None

        def __init__(self, inplanes, planes, stride, key):
            k = jax.random.split(key, 3)
            self.conv1, self.bn1 = conv(inplanes, planes, 3, stride, 1, False, key=k[0]), batch_norm(planes)
            self.conv2, self.bn2 = conv(planes, planes, 3, 1, 1, False, key=k[1]), batch_norm(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = (conv(inplanes, planes, 1, stride, 0, False, key=k[2]), batch_norm(planes))

        def __call__(self, x, state):
            out, state = self.bn1(self.conv1(x), state)
            out, state = self.bn2(self.conv2(jax.nn.relu(out)), state)
            if self.downsample is not None:
                x, state = self.downsample[1](self.downsample[0](x), state)
            return jax.nn.relu(out + x), state

    class ResNet18(eqx.Module):
        conv1: eqx.nn.Conv2d
        bn1: eqx.nn.BatchNorm
        blocks: list
        fc: eqx.nn.Linear

        def __init__(self, key):
            keys = iter(jax.random.split(key, 10))
            self.conv1, self.bn1 = conv(3, 64, 3, 1, 1, False, key=next(keys)), batch_norm(64)
            self.blocks, inplanes = [], 64
            for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                self.blocks += [BasicBlock(inplanes, planes, stride, next(keys)),
                                BasicBlock(planes, planes, 1, next(keys))]
                inplanes = planes
            self.fc = eqx.nn.Linear(512, NUM_CLASSES, key=next(keys))

        def __call__(self, x, state):
            x, state = self.bn1(self.conv1(x), state)
            x = jax.nn.relu(x)
            for block in self.blocks:
                x, state = block(x, state)
            return self.fc(jnp.mean(x, axis=(1, 2))), state

    return {"small_cnn": SmallCNN, "resnet18": ResNet18}


def _equinox_train(model_name: str, batch: int):
    def build():
        import equinox as eqx
        import jax
        import jax.numpy as jnp
        import optax

        model, state = eqx.nn.make_with_state(_equinox_models()[model_name])(jax.random.PRNGKey(0))
        optimizer = optax.sgd(LR, momentum=MOMENTUM)
        opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
        x, y = (jnp.asarray(a) for a in _data(batch))

        def loss_fn(model, state, x, y):
            batched = jax.vmap(model, axis_name="batch", in_axes=(0, None), out_axes=(0, None))
            logits, state = batched(x, state)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), state

        @eqx.filter_jit  # no donation: eqx donates by position groups and x, y are reused
        def train_step(model, state, opt_state, x, y):
            (loss, state), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model, state, x, y)
            updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
            return eqx.apply_updates(model, updates), state, opt_state, loss

        return _carry_step(train_step, (model, state, opt_state), x, y)

    return build


def _equinox_infer(model_name: str, batch: int):
    def build():
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        model, state = eqx.nn.make_with_state(_equinox_models()[model_name])(jax.random.PRNGKey(0))
        model = eqx.nn.inference_mode(model)
        x = jnp.asarray(_data(batch)[0])

        @eqx.filter_jit
        def forward(model, state, x):
            return jax.vmap(model, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(x, state)[0]

        return jax_step(forward, model, state, x)

    return build


def _train(model_name: str, batch: int) -> dict:
    return {"funclayers": _fl_train(model_name, batch), "torch": _torch_train(model_name, batch),
            "flax": _flax_train(model_name, batch), "equinox": _equinox_train(model_name, batch)}


def _infer(model_name: str, batch: int) -> dict:
    return {"funclayers": _fl_infer(model_name, batch), "torch": _torch_infer(model_name, batch),
            "flax": _flax_infer(model_name, batch), "equinox": _equinox_infer(model_name, batch)}


WORKLOADS = [
    Workload(f"small CNN train step (batch {SMALL_CNN_BATCH})", _train("small_cnn", SMALL_CNN_BATCH),
             "forward + cross-entropy + backward + SGD(momentum) update, BatchNorm in training mode",
             iters=20, quick_iters=3),
    Workload(f"ResNet-18 train step (batch {RESNET_BATCH})", _train("resnet18", RESNET_BATCH),
             "CIFAR ResNet-18; forward + cross-entropy + backward + SGD(momentum) update",
             iters=5, quick_iters=2, quick_frameworks=("funclayers", "torch")),
    Workload(f"ResNet-18 inference (batch {RESNET_BATCH})", _infer("resnet18", RESNET_BATCH),
             "eval mode (BatchNorm running statistics), forward only",
             iters=10, quick_iters=3, quick_frameworks=("funclayers", "torch")),
]
