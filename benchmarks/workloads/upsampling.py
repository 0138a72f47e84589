"""Upsampling and vision workloads (issue 16): forward + backward on CPU.

funclayers and torch take NCHW. The "flax" column is jax.image.resize (Flax and Equinox have no
upsampling layer; their users call it), on NHWC, its own best layout: its "bilinear" upsampling
matches torch's align_corners=False, and its "bicubic" downsampling is the antialiased Keys
(a = -0.5) filter, torch's antialias=True. Neither framework has grid_sample.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import (
    Workload,
    jax_input_grad_step,
    jax_step,
    outputs_and_vjp,
    to_torch,
    torch_input_grad_step,
    torch_step,
)

UPSAMPLE = "Upsample(scale_factor=2, bilinear) (16,64,32,32)"
NEAREST = "Upsample(scale_factor=2, nearest) (16,64,32,32)"
AA_DOWN = "interpolate bicubic antialias (16,3,224,224)->112"
GRID = "grid_sample bilinear (16,64,32,32) grid (16,32,32,2)"


def _resize_data(shape, out_shape):
    rng = np.random.default_rng(0)
    return rng.standard_normal(shape).astype(np.float32), rng.standard_normal(out_shape).astype(np.float32)


def _upsample_data():
    return _resize_data((16, 64, 32, 32), (16, 64, 64, 64))


def _aa_data():
    return _resize_data((16, 3, 224, 224), (16, 3, 112, 112))


def _grid_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 64, 32, 32)).astype(np.float32)
    grid = rng.uniform(-1.1, 1.1, (16, 32, 32, 2)).astype(np.float32)
    return x, grid, rng.standard_normal((16, 64, 32, 32)).astype(np.float32)


def _fl_upsample(mode="bilinear"):
    def build():
        import funclayers as fl

        layer = fl.Upsample(scale_factor=2, mode=mode)
        return jax_input_grad_step(lambda x: layer.apply({}, {}, x)[0], *_upsample_data())

    return build


def _torch_upsample(mode="bilinear"):
    def build():
        import torch

        return torch_input_grad_step(torch.nn.Upsample(scale_factor=2, mode=mode), *_upsample_data())

    return build


def _jax_resize_upsample(mode="bilinear"):
    def build():
        import jax

        x, ct = _upsample_data()
        x, ct = x.transpose(0, 2, 3, 1), ct.transpose(0, 2, 3, 1)
        return jax_input_grad_step(lambda x: jax.image.resize(x, (16, 64, 64, 64), mode), x, ct)

    return build


def _fl_aa():
    import funclayers.functional as F

    return jax_input_grad_step(lambda x: F.interpolate(x, size=112, mode="bicubic", antialias=True), *_aa_data())


def _torch_aa():
    import torch

    class Resize(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, size=112, mode="bicubic", antialias=True)

    return torch_input_grad_step(Resize(), *_aa_data())


def _jax_resize_aa():
    import jax

    x, ct = _aa_data()
    x, ct = x.transpose(0, 2, 3, 1), ct.transpose(0, 2, 3, 1)
    return jax_input_grad_step(lambda x: jax.image.resize(x, (16, 112, 112, 3), "bicubic"), x, ct)


def _fl_grid():
    import jax
    import jax.numpy as jnp

    import funclayers.functional as F

    @jax.jit
    def step(x, grid, ct):  # gradients w.r.t. the input and the grid
        return outputs_and_vjp(lambda x, g: F.grid_sample(x, g, align_corners=False), (x, grid), ct)

    return jax_step(step, *map(jnp.asarray, _grid_data()))


def _torch_grid():
    import torch

    x_np, grid_np, ct_np = _grid_data()
    x, grid, ct = to_torch(x_np, True), to_torch(grid_np, True), to_torch(ct_np)

    def step():
        x.grad = grid.grad = None
        torch.nn.functional.grid_sample(x, grid, align_corners=False).backward(ct)

    return torch_step(step)


WORKLOADS = [
    Workload(UPSAMPLE, {"funclayers": _fl_upsample(), "torch": _torch_upsample(), "flax": _jax_resize_upsample()},
             note="flax column: jax.image.resize (NHWC)"),
    Workload(NEAREST, {"funclayers": _fl_upsample("nearest"), "torch": _torch_upsample("nearest"),
                       "flax": _jax_resize_upsample("nearest")},
             note="flax column: jax.image.resize (NHWC)"),
    Workload(AA_DOWN, {"funclayers": _fl_aa, "torch": _torch_aa, "flax": _jax_resize_aa},
             note="flax column: jax.image.resize (NHWC)"),
    Workload(GRID, {"funclayers": _fl_grid, "torch": _torch_grid}, note="gradients w.r.t. input and grid"),
]
