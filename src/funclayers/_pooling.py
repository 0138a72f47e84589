"""Max pooling over 1, 2 or 3 trailing spatial axes (torch.nn.MaxPool*d), and the argument helpers
the pooling family shares (average and power-average pooling: `_pooling_avg.py`).

The argument rules and output sizes follow torch's C++ kernels (aten/src/ATen/native/Pool.h,
MaxPoolKernel.cpp, AvgPoolKernel.cpp); the ops work on the last 1/2/3 axes of a channels-first
input with or without a batch axis. Max pooling reproduces torch's choice of element in a window
(the first maximum in scan order; the last NaN if there is one), which decides both the returned
indices and where the gradient goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._kernels._max_select import lowest, select_max, window_max
from ._layer import Layer, stateless
from ._layout import CNHW, PHASE
from ._utils import check_rank, fmt_shape, ntuple

SPATIAL_DIMS = {1: ("C, L", "N, C, L"), 2: ("C, H, W", "N, C, H, W"), 3: ("C, D, H, W", "N, C, D, H, W")}


# -- argument helpers shared by the pooling family ------------------------------------------------


def pool_tuple(value: Any, n: int, name: str, layer: str, minimum: int | None = None) -> tuple[int, ...]:
    """`value` as n ints (torch's _single/_pair/_triple), each at least `minimum` when given."""
    out = ntuple(value, n, name, layer)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in out):
        raise TypeError(f"{layer}: {name} must be an int or a tuple of {n} ints, got {value!r}.")
    out = tuple(int(v) for v in out)
    if minimum is not None and any(v < minimum for v in out):
        what = "greater than zero" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{layer}: {name} should be {what}, but got {name}={value!r}.")
    return out


def pool_args(n: int, layer: str, kernel_size: Any, stride: Any, padding: Any, dilation: Any = 1):
    """kernel, stride (the kernel when None or empty), padding and dilation as checked n-tuples.

    torch requires padding <= kernel_size // 2 per axis ("pad should be at most half of
    effective kernel size"; the C++ shape check also bounds it by half the undilated kernel).
    """
    kernel = pool_tuple(kernel_size, n, "kernel_size", layer, minimum=1)
    if stride is None or (isinstance(stride, Sequence) and len(stride) == 0):
        stride = kernel
    stride = pool_tuple(stride, n, "stride", layer, minimum=1)
    pad = pool_tuple(padding, n, "padding", layer, minimum=0)
    dil = pool_tuple(dilation, n, "dilation", layer, minimum=1)
    for p, k, d in zip(pad, kernel, dil, strict=False):
        if p > k // 2:
            raise ValueError(
                f"{layer}: pad should be at most half of effective kernel size, but got "
                f"pad={p}, kernel_size={k} and dilation={d}."
            )
    return kernel, stride, pad, dil


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape: with ceil_mode the last window must start inside the input or
    the left padding, never in the right padding."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def check_pool_input(layer: str, input: Any, n: int) -> int:
    """The rank check of every pooling op: (C, *spatial) or (N, C, *spatial); returns the rank."""
    rank = check_rank(layer, input, (n + 1, n + 2), SPATIAL_DIMS[n])
    if any(s == 0 for s in np.shape(input)[1 - (n + 2 - rank) :]):
        raise ValueError(
            f"{layer} expects non-empty channel and spatial dimensions, got input of shape "
            f"{fmt_shape(input)}."
        )
    return rank


def output_sizes(layer: str, input: Any, kernel, stride, pad, dil, ceil_mode) -> tuple[int, ...]:
    n = len(kernel)
    spatial = np.shape(input)[-n:]
    out = tuple(
        pool_output_size(L, k, s, p, d, ceil_mode)
        for L, k, s, p, d in zip(spatial, kernel, stride, pad, dil, strict=False)
    )
    if any(o < 1 for o in out):
        raise ValueError(
            f"{layer}: given input of shape {fmt_shape(input)}, the calculated output size "
            f"{out} is too small (kernel_size={kernel}, stride={stride}, padding={pad}, "
            f"dilation={dil})."
        )
    return out


def index_dtype() -> jnp.dtype:
    """torch returns int64 indices; int32 unless jax_enable_x64 is on."""
    return jax.dtypes.canonicalize_dtype(jnp.int64)


# -- windows along one axis ----------------------------------------------------------------------


def window_table(size: int, kernel: int, stride: int, pad: int, dilation: int, out: int) -> np.ndarray:
    """Input position of element j of window o along an axis of length `size`, (out, kernel); -1 in the padding."""
    positions = np.arange(out)[:, None] * stride - pad + np.arange(kernel)[None, :] * dilation
    return np.where((positions >= 0) & (positions < size), positions, -1)


def axis_windows(
    x: jax.Array, axis: int, kernel: int, stride: int, pad: int, dilation: int, out: int, fill
) -> list[jax.Array]:
    """The `kernel` strided views of `x` padded along `axis`, each (..., out, ...), in window order."""
    size = x.shape[axis]
    pad_hi = max(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - (size + pad))
    config = [(0, 0, 0)] * x.ndim
    config[axis] = (pad, pad_hi, 0)
    padded = lax.pad(x, np.array(fill, x.dtype), config) if pad or pad_hi else x
    return [
        lax.slice_in_dim(padded, j * dilation, j * dilation + (out - 1) * stride + 1, stride, axis)
        for j in range(kernel)
    ]


def _max_pool(n: int, layer: str, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    """Separable max pooling: one axis at a time, last axis first.

    Reducing axis by axis keeps torch's row-major pick: the first maximum of the whole window is in
    the first row holding the maximum, at that row's first maximum; the last NaN likewise.
    """
    kernel, stride, pad, dil = pool_args(n, layer, kernel_size, stride, padding, dilation)
    rank = check_pool_input(layer, input, n)
    x = jnp.asarray(input)
    out = output_sizes(layer, x, kernel, stride, pad, dil, ceil_mode)
    lead = rank - n
    value, coords = x, {}
    for axis in reversed(range(n)):
        where = lead + axis
        table = window_table(x.shape[where], kernel[axis], stride[axis], pad[axis], dil[axis], out[axis])
        args = (kernel[axis], stride[axis], pad[axis], dil[axis], out[axis], lowest(x.dtype))
        # A strided window along the minor axis reads every stride-th element, which does not
        # vectorise; along the second-minor axis it reads whole rows. So the last axis is pooled
        # on a transposed copy (two cheap transposes), except for 2-element windows, whose
        # elementwise pick XLA fuses with the strided reads (MaxPool2d(2): 3.5 ms without the
        # transposes, 6.2 with them; larger windows: 1.8-3.4x slower without).
        swap = axis == n - 1 and n >= 2 and stride[axis] > 1 and kernel[axis] > 2
        along = where - 1 if swap else where

        def views(v, along=along, args=args):
            return axis_windows(v, along, *args)

        strided = (stride[axis], pad[axis], dil[axis])
        if swap:
            value, pick = window_max(jnp.swapaxes(value, -1, -2), along, table, views, strided)
            value, pick = jnp.swapaxes(value, -1, -2), jnp.swapaxes(pick, -1, -2)
        else:
            value, pick = window_max(value, along, table, views, strided)
        if return_indices:
            column = (out[axis],) + (1,) * (n - 1 - axis)
            start = jnp.asarray(
                (np.arange(out[axis]) * stride[axis] - pad[axis]).reshape(column), index_dtype()
            )
            chosen = start + pick.astype(index_dtype()) * dil[axis]
            coords = {a: jnp.take_along_axis(c, chosen, axis=where) for a, c in coords.items()}
            coords[axis] = chosen
    if not return_indices:
        return value
    plane = [int(np.prod(x.shape[lead + a + 1 :])) for a in range(n)]
    return value, sum(coords[a] * plane[a] for a in range(n))


def max_pool1d(
    input: jax.Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """1-D max pooling over (N, C, L) or (C, L); torch.nn.functional.max_pool1d.

    Args:
      input: the (N, C, L) or (C, L) array to pool.
      kernel_size: window size, an int or a 1-tuple of ints.
      stride: window step, an int or a 1-tuple; default (None) `kernel_size`.
      padding: implicit -inf padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      dilation: spacing between window elements (1: contiguous windows). Default: 1.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      return_indices: also return the flat indices of the maxima (the input of max_unpool1d). Default: False.

    Returns:
      The pooled array; `(output, indices)` with `return_indices`, the indices flat over L
        (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out), with
      L_out = floor((L + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1
      (each axis with its own kernel_size, stride, padding, dilation; ceil instead of floor with `ceil_mode`).

    Example:
      >>> F.max_pool1d(jnp.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2)
      Array([[[3., 5.]]], dtype=float32)
      >>> F.max_pool1d(jnp.ones((2, 3, 9)), 3, stride=2, padding=1).shape
      (2, 3, 5)
    """
    return _max_pool(
        1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool2d(
    input: jax.Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """2-D max pooling over (N, C, H, W) or (C, H, W); torch.nn.functional.max_pool2d.

    Args:
      input: the (N, C, H, W) or (C, H, W) array to pool.
      kernel_size: window size, an int or a pair of ints.
      stride: window step, an int or a pair; default (None) `kernel_size`.
      padding: implicit -inf padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      dilation: spacing between window elements (1: contiguous windows). Default: 1.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      return_indices: also return the flat indices of the maxima (the input of max_unpool2d). Default: False.

    Returns:
      The pooled array; `(output, indices)` with `return_indices`, the indices flat over H*W
        (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), with
      H_out = floor((H + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1, likewise W_out
      (each axis with its own kernel_size, stride, padding, dilation; ceil instead of floor with `ceil_mode`).

    Example:
      >>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
      >>> y, idx = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
      >>> y[0, 0]
      Array([[ 5.,  7.],
             [13., 15.]], dtype=float32)
      >>> F.max_pool2d(jnp.ones((1, 1, 7, 7)), 2, ceil_mode=True).shape
      (1, 1, 4, 4)
    """
    return _max_pool(
        2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool3d(
    input: jax.Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """3-D max pooling over (N, C, D, H, W) or (C, D, H, W); torch.nn.functional.max_pool3d.

    Args:
      input: the (N, C, D, H, W) or (C, D, H, W) array to pool.
      kernel_size: window size, an int or a triple of ints.
      stride: window step, an int or a triple; default (None) `kernel_size`.
      padding: implicit -inf padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      dilation: spacing between window elements (1: contiguous windows). Default: 1.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      return_indices: also return the flat indices of the maxima (the input of max_unpool3d). Default: False.

    Returns:
      The pooled array; `(output, indices)` with `return_indices`, the indices flat over D*H*W
        (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), with
      D_out = floor((D + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1, likewise H_out, W_out
      (each axis with its own kernel_size, stride, padding, dilation; ceil instead of floor with `ceil_mode`).

    Example:
      >>> F.max_pool3d(jnp.arange(8.0).reshape(1, 2, 2, 2), 2)
      Array([[[[7.]]]], dtype=float32)
      >>> F.max_pool3d(jnp.ones((1, 2, 4, 6, 6)), (2, 3, 3), dilation=(1, 2, 1)).shape
      (1, 2, 2, 1, 2)
    """
    return _max_pool(
        3, "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool1d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
) -> tuple[jax.Array, jax.Array]:
    """max_pool1d returning (output, indices) always; torch.nn.functional.max_pool1d_with_indices.

    Args:
      input: the (N, C, L) or (C, L) array to pool.
      kernel_size: window size, an int or a 1-tuple of ints.
      stride: window step, an int or a 1-tuple; default (None) `kernel_size`.
      padding: implicit -inf padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      dilation: spacing between window elements (1: contiguous windows). Default: 1.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      return_indices: ignored (torch's signature); the indices are always returned. Default: False.

    Returns:
      `(output, indices)`, the indices flat over L (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out), with
      L_out = floor((L + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1
      (each axis with its own kernel_size, stride, padding, dilation; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, idx = F.max_pool1d_with_indices(jnp.arange(8.0).reshape(1, 1, 8), 2)
      >>> idx
      Array([[[1, 3, 5, 7]]], dtype=int32)
    """
    return _max_pool(1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
) -> tuple[jax.Array, jax.Array]:
    """max_pool2d returning (output, indices) always; torch.nn.functional.max_pool2d_with_indices.

    Args:
      input: the (N, C, H, W) or (C, H, W) array to pool.
      kernel_size: window size, an int or a pair of ints.
      stride: window step, an int or a pair; default (None) `kernel_size`.
      padding: implicit -inf padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      dilation: spacing between window elements (1: contiguous windows). Default: 1.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      return_indices: ignored (torch's signature); the indices are always returned. Default: False.

    Returns:
      `(output, indices)`, the indices flat over H*W (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), with
      H_out = floor((H + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1, likewise W_out
      (each axis with its own kernel_size, stride, padding, dilation; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, idx = F.max_pool2d_with_indices(jnp.arange(16.0).reshape(1, 1, 4, 4), 2)
      >>> idx
      Array([[[[ 5,  7],
               [13, 15]]]], dtype=int32)
    """
    return _max_pool(2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
) -> tuple[jax.Array, jax.Array]:
    """max_pool3d returning (output, indices) always; torch.nn.functional.max_pool3d_with_indices.

    Args:
      input: the (N, C, D, H, W) or (C, D, H, W) array to pool.
      kernel_size: window size, an int or a triple of ints.
      stride: window step, an int or a triple; default (None) `kernel_size`.
      padding: implicit -inf padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      dilation: spacing between window elements (1: contiguous windows). Default: 1.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      return_indices: ignored (torch's signature); the indices are always returned. Default: False.

    Returns:
      `(output, indices)`, the indices flat over D*H*W (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), with
      D_out = floor((D + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1, likewise H_out, W_out
      (each axis with its own kernel_size, stride, padding, dilation; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, idx = F.max_pool3d_with_indices(jnp.arange(64.0).reshape(1, 1, 4, 4, 4), 2)
      >>> idx.shape, int(idx[0, 0, 1, 1, 1])
      ((1, 1, 2, 2, 2), 63)
    """
    return _max_pool(3, "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, True)


# -- layers --------------------------------------------------------------------------------------


def _max_pool_layer(n: int, kernel_size, stride, padding, dilation, return_indices, ceil_mode) -> Layer:
    stride = stride if stride is not None else kernel_size
    name = (
        f"MaxPool{n}d(kernel_size={kernel_size}, stride={stride}, padding={padding}, "
        f"dilation={dilation}, ceil_mode={ceil_mode})"
    )
    args = pool_args(n, f"MaxPool{n}d", kernel_size, stride, padding, dilation)  # configuration errors now
    layer = stateless(
        name,
        lambda input: _max_pool(
            n, name, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
        ),
    )
    if n == 2 and not return_indices and args == ((2, 2), (2, 2), (0, 0), (1, 1)):
        layer.apply._layout = _pool_phase
    return layer


def _pool_phase(params, state, value, layout, training):
    """`_layout.py`: MaxPool2d(2) of a "phase" value, (2, 2, C, N, h, w) -> "cnhw" (C, N, h, w).

    The pick is torch's (`select_max`), separable as `_max_pool`'s: along the columns, then the rows.
    """
    del params, training
    if layout != PHASE:
        return None
    cols, _ = select_max([value[:, 0], value[:, 1]])
    return select_max([cols[0], cols[1]])[0], CNHW, state


def MaxPool1d(
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    return_indices: bool = False,
    ceil_mode: bool = False,
) -> Layer:
    """Layer twin of torch.nn.MaxPool1d: the maximum of each (dilated) window. No parameters.

    Args:
      kernel_size: window size, an int or a 1-tuple of ints.
      stride: window step, an int or a 1-tuple; default (None) `kernel_size`.
      padding: implicit -inf padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      dilation: spacing between window elements (1: contiguous windows). Default: 1.
      return_indices: also return the flat indices of the maxima over L (int64; int32
        without jax_enable_x64), the input of `MaxUnpool1d`: apply then returns `((output, indices), state)`.
        Default: False.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out), with
      L_out = floor((L + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1
      (each axis with its own kernel_size, stride, padding, dilation; ceil instead of floor with `ceil_mode`).

    Example:
      >>> pool = fl.MaxPool1d(3, stride=2)
      >>> y, _ = pool.apply({}, {}, jnp.array([[[1.0, 5.0, 2.0, 0.0, 3.0, 4.0, 1.0]]]))
      >>> y
      Array([[[5., 3., 4.]]], dtype=float32)
    """
    return _max_pool_layer(1, kernel_size, stride, padding, dilation, return_indices, ceil_mode)


def MaxPool2d(
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    return_indices: bool = False,
    ceil_mode: bool = False,
) -> Layer:
    """Layer twin of torch.nn.MaxPool2d: the maximum of each (dilated) window. No parameters.

    Args:
      kernel_size: window size, an int or a pair of ints.
      stride: window step, an int or a pair; default (None) `kernel_size`.
      padding: implicit -inf padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      dilation: spacing between window elements (1: contiguous windows). Default: 1.
      return_indices: also return the flat indices of the maxima over H*W (int64; int32
        without jax_enable_x64), the input of `MaxUnpool2d`: apply then returns `((output, indices), state)`.
        Default: False.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), with
      H_out = floor((H + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1, likewise W_out
      (each axis with its own kernel_size, stride, padding, dilation; ceil instead of floor with `ceil_mode`).

    Example:
      >>> x = jnp.arange(20.0).reshape(1, 1, 4, 5)
      >>> (y, idx), _ = fl.MaxPool2d(2, return_indices=True).apply({}, {}, x)
      >>> y[0, 0], idx[0, 0]
      (Array([[ 6.,  8.],
             [16., 18.]], dtype=float32), Array([[ 6,  8],
             [16, 18]], dtype=int32))
    """
    return _max_pool_layer(2, kernel_size, stride, padding, dilation, return_indices, ceil_mode)


def MaxPool3d(
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    return_indices: bool = False,
    ceil_mode: bool = False,
) -> Layer:
    """Layer twin of torch.nn.MaxPool3d: the maximum of each (dilated) window. No parameters.

    Args:
      kernel_size: window size, an int or a triple of ints.
      stride: window step, an int or a triple; default (None) `kernel_size`.
      padding: implicit -inf padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      dilation: spacing between window elements (1: contiguous windows). Default: 1.
      return_indices: also return the flat indices of the maxima over D*H*W (int64; int32
        without jax_enable_x64), the input of `MaxUnpool3d`: apply then returns `((output, indices), state)`.
        Default: False.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), with
      D_out = floor((D + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1, likewise H_out, W_out
      (each axis with its own kernel_size, stride, padding, dilation; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, _ = fl.MaxPool3d(2, stride=(1, 2, 2)).apply({}, {}, jnp.ones((1, 2, 4, 4, 4)))
      >>> y.shape
      (1, 2, 3, 2, 2)
    """
    return _max_pool_layer(3, kernel_size, stride, padding, dilation, return_indices, ceil_mode)
