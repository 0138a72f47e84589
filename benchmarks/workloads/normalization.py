"""Normalization workloads: forward + backward (grads w.r.t. input and parameters) on CPU.

BatchNorm runs in training mode (batch statistics, running-stat update); the others have no mode.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload, jax_step, to_torch, torch_device, torch_step

BN_SHAPE = (64, 32, 32, 32)
LN_SHAPE = (32, 128, 512)
GN_SHAPE = (16, 64, 32, 32)


def _data(shape):
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)


# --- funclayers -------------------------------------------------------------------------------


def _fl(make_layer, shape, training):
    def build():
        import jax
        import jax.numpy as jnp

        import funclayers as fl

        layer = make_layer(fl)
        params, state = layer.init(jax.random.PRNGKey(0))
        x, ct = (jnp.asarray(a) for a in _data(shape))

        @jax.jit
        def step(params, state, x, ct):
            def loss(params, x):
                out, new_state = layer.apply(params, state, x, training=training)
                return jnp.sum(out * ct), new_state

            return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)

        return jax_step(step, params, state, x, ct)

    return build


# --- torch ------------------------------------------------------------------------------------


def _torch(make_module, shape, training):
    def build():
        import torch

        module = make_module(torch.nn).to(torch_device())
        module.train(training)
        x_np, ct_np = _data(shape)
        x, ct = to_torch(x_np, requires_grad=True), to_torch(ct_np)

        def step():
            for p in module.parameters():
                p.grad = None
            x.grad = None
            (module(x) * ct).sum().backward()

        return torch_step(step)

    return build


# --- flax (linen) -----------------------------------------------------------------------------


def _flax(make_module, shape, batch_norm=False):
    def build():
        import jax
        import jax.numpy as jnp

        module = make_module()
        x, ct = (jnp.asarray(a) for a in _data(shape))
        variables = module.init(jax.random.PRNGKey(0), x)
        params = variables["params"]
        extra = {k: v for k, v in variables.items() if k != "params"}

        @jax.jit
        def step(params, extra, x, ct):  # extra (batch_stats): an argument, as every array (harness.py)
            def loss(params, x):
                if batch_norm:
                    out, updates = module.apply({"params": params, **extra}, x, mutable=["batch_stats"])
                    return jnp.sum(out * ct), updates
                return jnp.sum(module.apply({"params": params}, x) * ct), None

            return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)

        return jax_step(step, params, extra, x, ct)

    return build


def _flax_bn():
    import flax.linen as nn

    return nn.BatchNorm(use_running_average=False, axis=1, momentum=0.9, epsilon=1e-5)


def _flax_ln():
    import flax.linen as nn

    return nn.LayerNorm(epsilon=1e-5)


class _FlaxGroupNormNCHW:
    """flax's GroupNorm is channels-last; transpose NCHW in and out as a user porting torch code would."""

    def __new__(cls):
        import flax.linen as nn
        import jax.numpy as jnp

        class GN(nn.Module):
            @nn.compact
            def __call__(self, x):
                y = nn.GroupNorm(num_groups=8, epsilon=1e-5)(jnp.moveaxis(x, 1, -1))
                return jnp.moveaxis(y, -1, 1)

        return GN()


# --- equinox ----------------------------------------------------------------------------------


def _eqx(make_module, shape, batch_norm=False, depth=1):
    def build():
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        module, state = make_module(eqx)
        x, ct = (jnp.asarray(a) for a in _data(shape))

        @eqx.filter_jit
        def step(module, state, x, ct):
            def loss(module, x):
                if batch_norm:
                    out, new_state = jax.vmap(module, axis_name="batch", in_axes=(0, None),
                                              out_axes=(0, None))(x, state)
                    return jnp.sum(out * ct), new_state
                fn = module
                for _ in range(depth):  # equinox layers take one unbatched sample
                    fn = jax.vmap(fn)
                return jnp.sum(fn(x) * ct), None

            # gradients w.r.t. the input too, as for the other frameworks
            return eqx.filter_value_and_grad(lambda both: loss(*both), has_aux=True)((module, x))

        return jax_step(step, module, state, x, ct)

    return build


def _eqx_bn(eqx):
    module, state = eqx.nn.make_with_state(eqx.nn.BatchNorm)(32, axis_name="batch", eps=1e-5, momentum=0.9)
    return module, state


WORKLOADS = [
    Workload("BatchNorm2d(32) train (64,32,32,32)", {
        "funclayers": _fl(lambda fl: fl.BatchNorm2d(32), BN_SHAPE, True),
        "torch": _torch(lambda nn: nn.BatchNorm2d(32), BN_SHAPE, True),
        "flax": _flax(_flax_bn, BN_SHAPE, batch_norm=True),
        "equinox": _eqx(_eqx_bn, BN_SHAPE, batch_norm=True),
    }, note="training mode: batch statistics and running-stat update"),
    Workload("LayerNorm(512) (32,128,512)", {
        "funclayers": _fl(lambda fl: fl.LayerNorm(512), LN_SHAPE, False),
        "torch": _torch(lambda nn: nn.LayerNorm(512), LN_SHAPE, False),
        "flax": _flax(_flax_ln, LN_SHAPE),
        "equinox": _eqx(lambda eqx: (eqx.nn.LayerNorm(512, eps=1e-5), None), LN_SHAPE, depth=2),
    }),
    Workload("GroupNorm(8,64) (16,64,32,32)", {
        "funclayers": _fl(lambda fl: fl.GroupNorm(8, 64), GN_SHAPE, False),
        "torch": _torch(lambda nn: nn.GroupNorm(8, 64), GN_SHAPE, False),
        "flax": _flax(_FlaxGroupNormNCHW, GN_SHAPE),
        "equinox": _eqx(lambda eqx: (eqx.nn.GroupNorm(8, 64, eps=1e-5), None), GN_SHAPE),
    }, note="flax's GroupNorm is channels-last: timed with NCHW transposes in and out"),
]
