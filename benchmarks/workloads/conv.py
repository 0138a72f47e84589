"""Convolution workloads (issue 3): forward + backward (grads w.r.t. input and parameters) on CPU.

Shapes are the issue's. funclayers and Equinox take torch's NCHW layout; Flax's linen.Conv takes
its native NHWC layout (its own best case), with the same sizes.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload, jax_step, to_torch, torch_device, torch_step

# name: (n, in_channels, out_channels, kernel, stride, padding, groups, input shape, transposed)
SPECS = {
    "conv2d 64->64 k3 p1 (32,64,32,32)": (2, 64, 64, 3, 1, 1, 1, (32, 64, 32, 32), False),
    "conv2d stem 3->64 k3 p1 (16,3,32,32)": (2, 3, 64, 3, 1, 1, 1, (16, 3, 32, 32), False),
    "conv2d 128->256 k3 s2 p1 (32,128,16,16)": (2, 128, 256, 3, 2, 1, 1, (32, 128, 16, 16), False),
    "conv2d depthwise 128 k3 p1 (8,128,56,56)": (2, 128, 128, 3, 1, 1, 128, (8, 128, 56, 56), False),
    "conv2d 128->128 k3 p1 groups=4 (8,128,28,28)": (2, 128, 128, 3, 1, 1, 4, (8, 128, 28, 28), False),
    "conv_transpose2d 64->32 k4 s2 p1 (16,64,16,16)": (2, 64, 32, 4, 2, 1, 1, (16, 64, 16, 16), True),
    "conv1d 64->128 k5 p2 (32,64,256)": (1, 64, 128, 5, 1, 2, 1, (32, 64, 256), False),
    "conv3d 16->32 k3 p1 (4,16,16,32,32)": (3, 16, 32, 3, 1, 1, 1, (4, 16, 16, 32, 32), False),
}


def _out_shape(spec):
    n, _, c_out, k, s, p, _, shape, transposed = spec
    if transposed:
        spatial = [(i - 1) * s - 2 * p + k for i in shape[2:]]
    else:
        spatial = [(i + 2 * p - k) // s + 1 for i in shape[2:]]
    return (shape[0], c_out, *spatial)


def _data(spec):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(spec[7]).astype(np.float32)
    ct = rng.standard_normal(_out_shape(spec)).astype(np.float32)
    return x, ct


def _fl(spec):
    def build():
        import jax
        import jax.numpy as jnp

        import funclayers as fl

        n, c_in, c_out, k, s, p, g, _, transposed = spec
        make = getattr(fl, f"ConvTranspose{n}d" if transposed else f"Conv{n}d")
        layer = make(c_in, c_out, k, stride=s, padding=p, groups=g)
        params, state = layer.init(jax.random.PRNGKey(0))
        x, ct = (jnp.asarray(a) for a in _data(spec))

        @jax.jit
        def step(params, x, ct):
            def loss(params, x):
                return jnp.sum(layer.apply(params, state, x)[0] * ct)

            return jax.value_and_grad(loss, argnums=(0, 1))(params, x)

        return jax_step(step, params, x, ct)

    return build


def _torch(spec):
    def build():
        import torch

        n, c_in, c_out, k, s, p, g, _, transposed = spec
        make = getattr(torch.nn, f"ConvTranspose{n}d" if transposed else f"Conv{n}d")
        module = make(c_in, c_out, k, stride=s, padding=p, groups=g).to(torch_device())
        x_np, ct_np = _data(spec)
        x, ct = to_torch(x_np, requires_grad=True), to_torch(ct_np)

        def step():
            module.zero_grad(set_to_none=True)
            x.grad = None
            (module(x) * ct).sum().backward()

        return torch_step(step)

    return build


def _flax(spec):
    def build():
        import flax.linen as nn
        import jax
        import jax.numpy as jnp

        n, c_in, c_out, k, s, p, g, _, transposed = spec
        x_np, ct_np = _data(spec)
        channels_last = tuple(range(2, n + 2)) + (1,)
        x = jnp.asarray(x_np.transpose((0,) + channels_last))
        ct = jnp.asarray(ct_np.transpose((0,) + channels_last))
        if transposed:  # 'SAME' gives stride * input size, the torch k4 s2 p1 output size
            module = nn.ConvTranspose(c_out, (k,) * n, strides=(s,) * n, padding="SAME")
        else:
            module = nn.Conv(c_out, (k,) * n, strides=(s,) * n, padding=[(p, p)] * n, feature_group_count=g)
        params = module.init(jax.random.PRNGKey(0), x)

        @jax.jit
        def step(params, x, ct):
            return jax.value_and_grad(lambda params, x: jnp.sum(module.apply(params, x) * ct), argnums=(0, 1))(
                params, x
            )

        return jax_step(step, params, x, ct)

    return build


def _equinox(spec):
    def build():
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        n, c_in, c_out, k, s, p, g, _, transposed = spec
        x, ct = (jnp.asarray(a) for a in _data(spec))
        key = jax.random.PRNGKey(0)
        if transposed:
            model = eqx.nn.ConvTranspose(n, c_in, c_out, k, stride=s, padding=p, groups=g, key=key)
        else:
            model = eqx.nn.Conv(n, c_in, c_out, k, stride=s, padding=p, groups=g, key=key)

        @jax.jit
        def step(model, x, ct):
            def loss(model, x):
                return jnp.sum(jax.vmap(model)(x) * ct)

            return jax.value_and_grad(loss, argnums=(0, 1))(model, x)

        return jax_step(step, model, x, ct)

    return build


WORKLOADS = [
    Workload(
        name, {"funclayers": _fl(spec), "torch": _torch(spec), "flax": _flax(spec), "equinox": _equinox(spec)}
    )
    for name, spec in SPECS.items()
]
