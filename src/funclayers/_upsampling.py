"""Resizing: interpolate and torch.nn.Upsample, UpsamplingNearest2d, UpsamplingBilinear2d.

`interpolate` follows torch.nn.functional.interpolate argument by argument (which of size and
scale_factor, recompute_scale_factor, align_corners, antialias, every mode and its rank) and
torch's C++ kernels for the coordinates (`_interpolate.py`). Each spatial axis is resized by one
small dense (out, in) matrix built at trace time from the static sizes: nearest modes copy with
static slices or takes (exact, also for integer inputs), every other mode contracts the axis with
its weights. Area mode is adaptive average pooling, as in torch.

One difference with torch's gathers: in the matrix modes (everything but nearest) a NaN or inf
input pixel contaminates every output of its row (0 * inf = NaN), where torch's kernels only
spread it to the outputs that read it.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _interpolate as interp
from ._adaptive_pooling import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d
from ._layer import Layer, stateless
from ._utils import TorchNotImplementedError, TorchRuntimeError, fmt_shape

MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "lanczos", "area", "nearest-exact")
_NO_ALIGN = ("nearest", "area", "nearest-exact")
_RANK_OF_MODE = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5, "lanczos": 4}


def _is_integer(value: Any) -> bool:
    """torch's _is_integer: Python or numpy ints (bool counts, as in torch), integer arrays."""
    if isinstance(value, (int, np.integer)):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.integer)


def _check_config(where: str, size: Any, scale_factor: Any, mode: str, align_corners: Any,
                  recompute_scale_factor: Any) -> None:
    """The checks torch's interpolate makes before looking at the input (Upsample runs them at
    construction, per the layer contract)."""
    if mode not in MODES:
        raise TorchNotImplementedError(
            f"{where}: unknown mode {mode!r}; expected one of nearest | linear | bilinear | bicubic | trilinear | "
            f"lanczos | area | nearest-exact.")
    if mode in _NO_ALIGN and align_corners is not None:
        raise ValueError(f"{where}: align_corners option can only be set with the interpolating modes: "
                         f"linear | bilinear | bicubic | trilinear (got mode={mode!r}); leave it None.")
    if size is not None and scale_factor is not None:
        raise ValueError(f"{where}: only one of size or scale_factor should be defined (got size={size!r}, "
                         f"scale_factor={scale_factor!r}).")
    if size is None and scale_factor is None:
        raise ValueError(f"{where}: either size or scale_factor should be defined.")
    if recompute_scale_factor and size is not None:
        raise ValueError(f"{where}: recompute_scale_factor is not meaningful with an explicit size.")


def resolve_sizes(where: str, shape: tuple, size: Any, scale_factor: Any, mode: str,
                  recompute_scale_factor: Any) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """(output sizes, scales handed to the kernel) exactly as torch's interpolate computes them.

    A scale_factor that is not recomputed reaches the kernel, which uses 1/scale_factor in its
    coordinate map; recompute_scale_factor=True (forced by mode="area") floors in * scale_factor
    to an output size and lets the kernel use in/out instead.
    """
    dim = len(shape) - 2
    spatial = list(shape[2:])
    scales: list | None
    if size is not None:
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    f"{where}: Input and output must have the same number of spatial dimensions, but got input "
                    f"with spatial dimensions of {spatial} and output size of {size}. Please provide input tensor "
                    f"in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) format.")
            if not all(_is_integer(s) for s in size):
                raise TypeError(f"{where}: expected size to be one of int or Tuple[int] or Tuple[int, int] or "
                                f"Tuple[int, int, int], but got size with types {[type(s) for s in size]}")
            out = [int(s) for s in size]
        else:
            out = [int(size)] * dim
        scales = None
    else:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    f"{where}: Input and scale_factor must have the same number of spatial dimensions, but got "
                    f"input with spatial dimensions of {spatial} and scale_factor of shape {scale_factor}. Please "
                    f"provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) "
                    f"format.")
            scales = [float(s) for s in scale_factor]
        else:
            scales = [float(scale_factor)] * dim
        if mode == "area":
            recompute_scale_factor = True
        # the output size is floor(in * scale) in double, both in Python (_sym_int) and in C++
        # (compute_output_size)
        out = [int(math.floor(n * s)) for n, s in zip(spatial, scales)]
        if recompute_scale_factor:
            scales = None
    return tuple(out), (None,) * dim if scales is None else tuple(scales)


def _check_rank(where: str, ndim: int, mode: str, antialias: bool) -> None:
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and ndim == 4):
        raise ValueError(f"{where}: Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and "
                         f"requires a 4-D tensor as input (got mode={mode!r} and a {ndim}-D input).")
    if ndim not in (3, 4, 5):
        raise TorchNotImplementedError(
            f"{where}: Input Error: Only 3D, 4D and 5D input Tensors supported (got {ndim}D) for the modes: "
            f"nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact (got {mode}). "
            f"Add the batch and channel axes: (N, C, ...).")
    wanted = _RANK_OF_MODE.get(mode)
    if wanted is not None and wanted != ndim:
        raise TorchNotImplementedError(f"{where}: Got {ndim}D input, but {mode} mode needs {wanted}D input.")
    if mode == "lanczos":
        if not antialias:
            raise ValueError(f"{where}: Lanczos mode requires antialias=True")


def _resize_axis(x: jax.Array, axis: int, matrix: np.ndarray) -> jax.Array:
    """x with `axis` contracted against the (out, in) matrix."""
    weights = jnp.asarray(matrix, x.dtype)
    if axis == x.ndim - 1:
        return jnp.matmul(x, weights.T, precision=lax.Precision.HIGHEST)
    moved = jnp.moveaxis(x, axis, -1)
    return jnp.moveaxis(jnp.matmul(moved, weights.T, precision=lax.Precision.HIGHEST), -1, axis)


def _copy_axis(x: jax.Array, axis: int, index: np.ndarray) -> jax.Array:
    """x[..., index, ...] along `axis` for a static non-decreasing index: a broadcast for a whole
    repeat factor, a strided slice for an arithmetic progression, else a take."""
    size, out = x.shape[axis], len(index)
    if out % size == 0 and np.array_equal(index, np.repeat(np.arange(size), out // size)):
        if out == size:
            return x
        expanded = jnp.expand_dims(x, axis + 1)
        shape = x.shape[:axis + 1] + (out // size,) + x.shape[axis + 1:]
        return jnp.broadcast_to(expanded, shape).reshape(x.shape[:axis] + (out,) + x.shape[axis + 1:])
    step = int(index[1] - index[0]) if out > 1 else 1
    if step > 0 and np.array_equal(index, index[0] + step * np.arange(out)):
        return lax.slice_in_dim(x, int(index[0]), int(index[0]) + step * (out - 1) + 1, step, axis)
    return jnp.take(x, jnp.asarray(index), axis=axis)


def _compute_type(dtype) -> type:
    """The numpy type torch's kernels compute coordinates in (opmath_t): double for float64."""
    return np.float64 if jnp.dtype(dtype) == jnp.float64 else np.float32


def interpolate(input: jax.Array, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> jax.Array:
    """Resizes (N, C, ...) input by `size` or `scale_factor`; torch.nn.functional.interpolate.

    Args:
      input: the (N, C, L), (N, C, H, W) or (N, C, D, H, W) array to resize.
      size: the output spatial size, an int (every axis) or a tuple of one int per spatial axis. Default: None.
      scale_factor: instead of size, a multiplier (float or one per spatial axis) of the input's
        spatial size. Exactly one of size and scale_factor is given. Default: None.
      mode: 'nearest' (default) | 'nearest-exact' | 'linear' (3-D input) | 'bilinear' | 'bicubic' |
        'lanczos' (4-D) | 'trilinear' (5-D) | 'area' (adaptive average pooling).
      align_corners: linear and cubic modes only: map the corner pixel centres onto each other
        (default None, i.e. False).
      recompute_scale_factor: True computes the output size from scale_factor, then uses in/out in
        the coordinate map instead of 1/scale_factor (torch's rule). Default: None.
      antialias: bilinear/bicubic/lanczos on 4-D input: torch's (and PIL's) antialiased filters,
        whose support widens with the downsampling factor (default False).

    Shape:
      (N, C, L), (N, C, H, W) or (N, C, D, H, W) -> (N, C, L_out), (N, C, H_out, W_out) or
      (N, C, D_out, H_out, W_out), each output size `size` or floor(input size * scale_factor).

    Example:
      >>> F.interpolate(jnp.ones((2, 3, 8, 8)), scale_factor=2, mode="bilinear").shape
      (2, 3, 16, 16)
      >>> F.interpolate(jnp.array([[[0.0, 3.0]]]), size=4, mode="linear", align_corners=True)
      Array([[[0., 1., 2., 3.]]], dtype=float32)
    """
    where = "interpolate"
    _check_config(where, size, scale_factor, mode, align_corners, recompute_scale_factor)
    if mode not in _NO_ALIGN and align_corners is None:
        align_corners = False
    x = jnp.asarray(input)
    shape = fmt_shape(x)
    out, scales = resolve_sizes(where, shape, size, scale_factor, mode, recompute_scale_factor)
    _check_rank(where, x.ndim, mode, antialias)
    if mode == "lanczos" and align_corners:
        raise ValueError(f"{where}: Lanczos mode does not support align_corners=True")
    spatial = shape[2:]
    if mode == "area":  # adaptive pooling, which accepts an empty output as torch does
        return (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[x.ndim - 3](x, out)
    if min(spatial) <= 0 or min(out) <= 0:
        raise TorchRuntimeError(f"{where}: Input and output sizes should be greater than 0, but got input "
                                f"spatial size {tuple(spatial)} and output size {out} (input shape {shape}).")
    if mode in ("nearest", "nearest-exact"):
        ct = _compute_type(x.dtype)
        for k, (n, o, s) in enumerate(zip(spatial, out, scales)):
            if mode == "nearest" and x.ndim == 4 and o in (n, 2 * n):
                # upsample_nearest2d's nearest_idx copies (o == n) or halves (o == 2n) the index
                # whatever the scale: scale_factor=1.1 on 5 pixels copies them, where 1-D and 3-D
                # apply floor(i / 1.1)
                index = np.arange(o) // (o // n)
            else:
                index = interp.nearest_indices(n, o, s, mode == "nearest-exact", ct)
            x = _copy_axis(x, 2 + k, index)
        return x
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{where}: mode={mode!r} expects a floating-point input, got dtype {x.dtype}; cast it "
                        f"with .astype(jnp.float32).")
    ct = _compute_type(x.dtype)
    # torch's separable kernels resize the last axis first
    for k in reversed(range(len(spatial))):
        n, o, s = spatial[k], out[k], scales[k]
        if antialias:
            if n == o:  # the separable AA kernel skips an axis whose size does not change
                continue
            matrix = interp.antialias_matrix(mode, n, o, align_corners, s, ct)
        elif mode == "bicubic":
            matrix = interp.cubic_matrix(n, o, align_corners, s, ct)
        else:
            matrix = interp.linear_matrix(n, o, align_corners, s, ct)
        x = _resize_axis(x, 2 + k, matrix)
    return x


def upsample(input: jax.Array, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
             align_corners: bool | None = None) -> jax.Array:
    """Deprecated alias of `interpolate`; torch.nn.functional.upsample (warns as torch does).

    Args:
      input: the (N, C, L), (N, C, H, W) or (N, C, D, H, W) array to resize.
      size: the output spatial size, an int (every axis) or a tuple of one int per spatial axis. Default: None.
      scale_factor: instead of size, a multiplier (float or one per spatial axis) of the input's
        spatial size. Exactly one of size and scale_factor is given. Default: None.
      mode: as `interpolate`'s (default 'nearest').
      align_corners: linear and cubic modes only: map the corner pixel centres onto each other. Default: None.

    Shape:
      (N, C, L), (N, C, H, W) or (N, C, D, H, W) -> (N, C, L_out), (N, C, H_out, W_out) or
      (N, C, D_out, H_out, W_out), each output size `size` or floor(input size * scale_factor).

    Example:
      >>> F.upsample(jnp.array([[[0.0, 1.0]]]), scale_factor=2, mode="linear")   # warns: deprecated
      Array([[[0.  , 0.25, 0.75, 1.  ]]], dtype=float32)
    """
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: jax.Array, size: Any = None, scale_factor: Any = None) -> jax.Array:
    """Deprecated `interpolate(..., mode='nearest')`; torch.nn.functional.upsample_nearest (warns).

    Args:
      input: the (N, C, L), (N, C, H, W) or (N, C, D, H, W) array to resize.
      size: the output spatial size, an int (every axis) or a tuple of one int per spatial axis. Default: None.
      scale_factor: instead of size, a multiplier (float or one per spatial axis) of the input's
        spatial size. Exactly one of size and scale_factor is given. Default: None.

    Shape:
      (N, C, L), (N, C, H, W) or (N, C, D, H, W) -> (N, C, L_out), (N, C, H_out, W_out) or
      (N, C, D_out, H_out, W_out), each output size `size` or floor(input size * scale_factor).

    Example:
      >>> F.upsample_nearest(jnp.array([[[[1.0, 2.0]]]]), scale_factor=2)
      Array([[[[1., 1., 2., 2.],
               [1., 1., 2., 2.]]]], dtype=float32)
    """
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: jax.Array, size: Any = None, scale_factor: Any = None) -> jax.Array:
    """Deprecated `interpolate(..., mode='bilinear', align_corners=True)`; torch.nn.functional.upsample_bilinear
    (warns).

    Args:
      input: the (N, C, H, W) array to resize.
      size: the output spatial size, an int (every axis) or a tuple of one int per spatial axis. Default: None.
      scale_factor: instead of size, a multiplier (float or one per spatial axis) of the input's
        spatial size. Exactly one of size and scale_factor is given. Default: None.

    Shape:
      (N, C, H, W) -> (N, C, H_out, W_out), with (H_out, W_out) = `size` or
      (floor(H * scale_factor), floor(W * scale_factor)).

    Example:
      >>> F.upsample_bilinear(jnp.arange(4.0).reshape(1, 1, 2, 2), size=(3, 3))   # corners kept
      Array([[[[0. , 0.5, 1. ],
               [1. , 1.5, 2. ],
               [2. , 2.5, 3. ]]]], dtype=float32)
    """
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _stored_scale(scale_factor: Any) -> Any:
    """torch's Upsample.__init__: a tuple becomes floats; a falsy scale (None, 0) becomes None."""
    if isinstance(scale_factor, tuple):
        return tuple(float(s) for s in scale_factor)
    return float(scale_factor) if scale_factor else None


def _upsample_layer(name: str, size: Any, scale_factor: Any, mode: str, align_corners: Any,
                    recompute_scale_factor: Any) -> Layer:
    scale_factor = _stored_scale(scale_factor)
    _check_config(name, size, scale_factor, mode, align_corners, recompute_scale_factor)
    info = f"scale_factor={scale_factor!r}" if scale_factor is not None else f"size={size!r}"

    def forward(input):
        return interpolate(input, size, scale_factor, mode, align_corners,
                           recompute_scale_factor=recompute_scale_factor)

    return stateless(f"{name}({info}, mode={mode!r})", forward)


def Upsample(size: Any = None, scale_factor: Any = None, mode: str = "nearest", align_corners: bool | None = None,
             recompute_scale_factor: bool | None = None) -> Layer:
    """Resizes 1-D, 2-D or 3-D multi-channel data; torch.nn.Upsample (a layer around `interpolate`). No parameters.

    Configuration errors (both or neither of size and scale_factor, align_corners with a nearest or
    area mode, an unknown mode) are raised at construction, not at the first call.

    Args:
      size: the output spatial size, an int (every axis) or a tuple of one int per spatial axis. Default: None.
      scale_factor: instead of size, a multiplier (float or one per spatial axis) of the input's
        spatial size, stored as torch stores it (floats; 0 means None). Exactly one of size and
        scale_factor is given. Default: None.
      mode: 'nearest' (default) | 'nearest-exact' | 'linear' (3-D input) | 'bilinear' | 'bicubic' |
        'lanczos' (4-D) | 'trilinear' (5-D) | 'area'; see `interpolate`.
      align_corners: linear and cubic modes only: map the corner pixel centres onto each other
        (default None, i.e. False).
      recompute_scale_factor: as `interpolate`'s: derive the coordinate map from the computed output size.
        Default: None.

    Shape:
      (N, C, L), (N, C, H, W) or (N, C, D, H, W) -> (N, C, L_out), (N, C, H_out, W_out) or
      (N, C, D_out, H_out, W_out), each output size `size` or floor(input size * scale_factor).

    Example:
      >>> y, _ = fl.Upsample(scale_factor=2).apply({}, {}, jnp.array([[[1.0, 2.0]]]))   # nearest
      >>> y
      Array([[[1., 1., 2., 2.]]], dtype=float32)
      >>> fl.Upsample(scale_factor=2, mode="bilinear").apply({}, {}, jnp.ones((1, 3, 4, 4)))[0].shape
      (1, 3, 8, 8)
    """
    return _upsample_layer("Upsample", size, scale_factor, mode, align_corners, recompute_scale_factor)


def UpsamplingNearest2d(size: Any = None, scale_factor: Any = None) -> Layer:
    """2-D nearest-neighbour upsampling; torch.nn.UpsamplingNearest2d = Upsample(mode='nearest'). No parameters.

    Deprecated in torch's documentation in favour of `interpolate`; like torch, constructing or
    calling it does not warn (only the functional `upsample_*` do).

    Args:
      size: the output spatial size, an int (every axis) or a tuple of a pair (H_out, W_out). Default: None.
      scale_factor: instead of size, a multiplier (a float or a pair) of the input's
        spatial size. Exactly one of size and scale_factor is given. Default: None.

    Shape:
      (N, C, H, W) -> (N, C, H_out, W_out), with (H_out, W_out) = `size` or
      (floor(H * scale_factor), floor(W * scale_factor)).

    Example:
      >>> y, _ = fl.UpsamplingNearest2d(scale_factor=2).apply({}, {}, jnp.arange(4.0).reshape(1, 1, 2, 2))
      >>> y[0, 0]
      Array([[0., 0., 1., 1.],
             [0., 0., 1., 1.],
             [2., 2., 3., 3.],
             [2., 2., 3., 3.]], dtype=float32)
    """
    return _upsample_layer("UpsamplingNearest2d", size, scale_factor, "nearest", None, None)


def UpsamplingBilinear2d(size: Any = None, scale_factor: Any = None) -> Layer:
    """2-D bilinear upsampling with align_corners=True; torch.nn.UpsamplingBilinear2d. No parameters.

    Deprecated in torch's documentation in favour of `interpolate(..., mode='bilinear',
    align_corners=True)`; like torch, it does not warn.

    Args:
      size: the output spatial size, an int (every axis) or a tuple of a pair (H_out, W_out). Default: None.
      scale_factor: instead of size, a multiplier (a float or a pair) of the input's
        spatial size. Exactly one of size and scale_factor is given. Default: None.

    Shape:
      (N, C, H, W) -> (N, C, H_out, W_out), with (H_out, W_out) = `size` or
      (floor(H * scale_factor), floor(W * scale_factor)).

    Example:
      >>> y, _ = fl.UpsamplingBilinear2d(size=(3, 3)).apply({}, {}, jnp.arange(4.0).reshape(1, 1, 2, 2))
      >>> y[0, 0]   # align_corners=True: the corner values stay in the corners
      Array([[0. , 0.5, 1. ],
             [1. , 1.5, 2. ],
             [2. , 2.5, 3. ]], dtype=float32)
    """
    return _upsample_layer("UpsamplingBilinear2d", size, scale_factor, "bilinear", True, None)
