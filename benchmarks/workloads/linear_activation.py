"""Linear and activation workloads (issue 2): forward + backward on CPU.

Linear: (256, 1024) -> 1024, gradients w.r.t. the input and both parameters. GELU (exact erf) and
Softmax (dim=-1): gradients w.r.t. the input, on (32, 128, 1024) and (32, 8, 128, 128). Every
framework backpropagates the same random cotangent. Flax and Equinox have no activation layers of
their own; their columns use jax.nn.gelu / jax.nn.softmax, what a user of those libraries writes.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import (
    Workload,
    jax_step,
    outputs_and_vjp,
    to_torch,
    torch_device,
    torch_input_grad_step,
    torch_step,
)

LINEAR = (256, 1024, 1024)  # batch, in_features, out_features
ACTIVATION_SHAPES = {"(32,128,1024)": (32, 128, 1024), "(32,8,128,128)": (32, 8, 128, 128)}


def _data(in_shape, out_shape):
    rng = np.random.default_rng(0)
    return rng.standard_normal(in_shape).astype(np.float32), rng.standard_normal(out_shape).astype(np.float32)


# -- Linear -------------------------------------------------------------------------------------------------


def _linear_fl():
    import jax
    import jax.numpy as jnp

    import funclayers as fl

    n, d_in, d_out = LINEAR
    layer = fl.Linear(d_in, d_out)
    params, state = layer.init(jax.random.PRNGKey(0))
    x, ct = (jnp.asarray(a) for a in _data((n, d_in), (n, d_out)))

    @jax.jit
    def step(params, x, ct):
        return outputs_and_vjp(lambda p, x: layer.apply(p, state, x)[0], (params, x), ct)

    return jax_step(step, params, x, ct)


def _linear_torch():
    import torch

    n, d_in, d_out = LINEAR
    module = torch.nn.Linear(d_in, d_out).to(torch_device())
    x_np, ct_np = _data((n, d_in), (n, d_out))
    x, ct = to_torch(x_np, requires_grad=True), to_torch(ct_np)

    def step():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).backward(ct)

    return torch_step(step)


def _linear_flax():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    n, d_in, d_out = LINEAR
    module = nn.Dense(d_out)
    x, ct = (jnp.asarray(a) for a in _data((n, d_in), (n, d_out)))
    params = module.init(jax.random.PRNGKey(0), x)

    @jax.jit
    def step(params, x, ct):
        return outputs_and_vjp(module.apply, (params, x), ct)

    return jax_step(step, params, x, ct)


def _linear_equinox():
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    n, d_in, d_out = LINEAR
    model = eqx.nn.Linear(d_in, d_out, key=jax.random.PRNGKey(0))
    x, ct = (jnp.asarray(a) for a in _data((n, d_in), (n, d_out)))

    @jax.jit
    def step(model, x, ct):
        return outputs_and_vjp(lambda m, x: jax.vmap(m)(x), (model, x), ct)

    return jax_step(step, model, x, ct)


# -- activations --------------------------------------------------------------------------------------------


def _activation_fl(kind, shape):
    def build():
        import jax
        import jax.numpy as jnp

        import funclayers as fl

        layer = fl.GELU() if kind == "gelu" else fl.Softmax(dim=-1)
        x, ct = (jnp.asarray(a) for a in _data(shape, shape))

        @jax.jit
        def step(x, ct):
            return outputs_and_vjp(lambda x: layer.apply({}, {}, x)[0], (x,), ct)

        return jax_step(step, x, ct)

    return build


def _activation_torch(kind, shape):
    def build():
        import torch

        module = torch.nn.GELU() if kind == "gelu" else torch.nn.Softmax(dim=-1)
        return torch_input_grad_step(module, *_data(shape, shape))

    return build


def _activation_jax_nn(kind, shape):
    """Flax and Equinox users call jax.nn directly: the same program for both columns."""

    def build():
        import jax
        import jax.numpy as jnp

        fn = (
            (lambda x: jax.nn.gelu(x, approximate=False))
            if kind == "gelu"
            else (lambda x: jax.nn.softmax(x, -1))
        )
        x, ct = (jnp.asarray(a) for a in _data(shape, shape))

        @jax.jit
        def step(x, ct):
            return outputs_and_vjp(fn, (x,), ct)

        return jax_step(step, x, ct)

    return build


WORKLOADS = [
    Workload(
        "linear 256x1024->1024",
        {"funclayers": _linear_fl, "torch": _linear_torch, "flax": _linear_flax, "equinox": _linear_equinox},
    )
]
for _kind, _label in (("gelu", "gelu"), ("softmax", "softmax dim=-1")):
    for _shape_name, _shape in ACTIVATION_SHAPES.items():
        WORKLOADS.append(
            Workload(
                f"{_label} {_shape_name}",
                {
                    "funclayers": _activation_fl(_kind, _shape),
                    "torch": _activation_torch(_kind, _shape),
                    "flax": _activation_jax_nn(_kind, _shape),
                    "equinox": _activation_jax_nn(_kind, _shape),
                },
                note="flax/equinox columns: jax.nn",
            )
        )
