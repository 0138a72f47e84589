"""Max, average and power-average pooling over 1, 2 or 3 trailing spatial axes (torch.nn.MaxPool*d ...).

The argument rules and output sizes follow torch's C++ kernels (aten/src/ATen/native/Pool.h,
MaxPoolKernel.cpp, AvgPoolKernel.cpp); the ops work on the last 1/2/3 axes of a channels-first
input with or without a batch axis. Max pooling reproduces torch's choice of element in a window
(the first maximum in scan order; the last NaN if there is one), which decides both the returned
indices and where the gradient goes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._kernels._max_select import lowest, window_max
from ._layer import Layer, stateless
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

    Returns the pooled array, or `(output, indices)` with flat indices into L when `return_indices`.

    Example:
      >>> F.max_pool1d(jnp.ones((1, 2, 8)), 2).shape
      (1, 2, 4)
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

    Example:
      >>> x = jnp.ones((1, 1, 7, 7))
      >>> y, idx = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)   # idx in [0, H*W)
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

    Example:
      >>> F.max_pool3d(jnp.ones((1, 2, 4, 4, 4)), 2).shape
      (1, 2, 2, 2, 2)
    """
    return _max_pool(
        3, "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool1d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
) -> tuple[jax.Array, jax.Array]:
    """max_pool1d returning (output, indices) always; torch.nn.functional.max_pool1d_with_indices.

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

    Example:
      >>> y, idx = F.max_pool3d_with_indices(jnp.ones((1, 1, 4, 4, 4)), 2)
      >>> idx.shape
      (1, 1, 2, 2, 2)
    """
    return _max_pool(3, "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _avg_divisor(spatial, kernel, stride, pad, out, count_include_pad) -> np.ndarray:
    """torch's per-window divisor: the window clipped to the padded input when count_include_pad
    (declared padding counts, the extra ceil-mode cells do not), else the in-bounds element count."""
    divisor = np.ones(tuple(out), np.float64)
    for axis, (L, k, s, p, o) in enumerate(zip(spatial, kernel, stride, pad, out, strict=False)):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, L + p)
        if count_include_pad:
            count = end - start
        else:
            count = np.minimum(end, L) - np.maximum(start, 0)
        shape = [1] * len(out)
        shape[axis] = o
        divisor = divisor * count.reshape(shape)
    return divisor


def _avg_pool(
    n: int, layer: str, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    kernel, stride, pad, _ = pool_args(n, layer, kernel_size, stride, padding)
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{layer}: divisor must be not zero, got divisor_override={divisor_override!r}.")
    rank = check_pool_input(layer, input, n)
    x = jnp.asarray(input)
    out = output_sizes(layer, x, kernel, stride, pad, (1,) * n, ceil_mode)
    spatial = x.shape[-n:]
    lead = rank - n
    total = x
    for axis in reversed(range(n)):  # separable window sums, zero padding
        views = axis_windows(total, lead + axis, kernel[axis], stride[axis], pad[axis], 1, out[axis], 0)
        total = sum(views[1:], views[0])
    if divisor_override is not None:
        divisor = np.full(out, float(divisor_override))
    else:
        divisor = _avg_divisor(spatial, kernel, stride, pad, out, count_include_pad)
    if jnp.issubdtype(x.dtype, jnp.integer):
        # torch divides integer sums truncating toward zero
        return lax.div(total, jnp.broadcast_to(jnp.asarray(divisor, x.dtype), total.shape))
    return total / jnp.asarray(divisor, x.dtype)


def avg_pool1d(
    input: jax.Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> jax.Array:
    """1-D average pooling over (N, C, L) or (C, L); torch.nn.functional.avg_pool1d.

    Example:
      >>> F.avg_pool1d(jnp.ones((1, 2, 8)), 2).shape
      (1, 2, 4)
    """
    return _avg_pool(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(
    input: jax.Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> jax.Array:
    """2-D average pooling over (N, C, H, W) or (C, H, W); torch.nn.functional.avg_pool2d.

    Example:
      >>> x = jnp.ones((1, 1, 4, 4))
      >>> F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
      Array([[[[1., 1., 1.],
               [1., 1., 1.],
               [1., 1., 1.]]]], dtype=float32)
    """
    return _avg_pool(
        2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def avg_pool3d(
    input: jax.Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> jax.Array:
    """3-D average pooling over (N, C, D, H, W) or (C, D, H, W); torch.nn.functional.avg_pool3d.

    Example:
      >>> F.avg_pool3d(jnp.ones((1, 2, 4, 4, 4)), 2).shape
      (1, 2, 2, 2, 2)
    """
    return _avg_pool(
        3, "avg_pool3d", input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def _lp_pool(n: int, layer: str, input, norm_type, kernel_size, stride, ceil_mode):
    """torch's lp_pool: (sign(a) * relu(|a|) * prod(kernel)) ** (1/p) with a = avg_pool(x ** p);
    max_pool(|x|) for p = inf and -max_pool(-|x|) for p = -inf."""
    kernel = pool_tuple(kernel_size, n, "kernel_size", layer, minimum=1)
    x = jnp.asarray(input)
    norm_type = float(norm_type)
    if norm_type == math.inf:
        return _max_pool(n, layer, jnp.abs(x), kernel, stride, 0, 1, ceil_mode, False)
    if norm_type == -math.inf:
        return -_max_pool(n, layer, -jnp.abs(x), kernel, stride, 0, 1, ceil_mode, False)
    check_pool_input(layer, x, n)
    avg = _avg_pool(n, layer, x ** jnp.asarray(norm_type, x.dtype), kernel, stride, 0, ceil_mode, True, None)
    # A window with a negative entry and a fractional norm_type averages a NaN. torch's gradient is
    # NaN at every entry of that window (its abs backward multiplies by sign(NaN)); JAX's abs / relu
    # derivatives give 0 there, so the NaN is passed through explicitly (same value, torch's NaN).
    magnitude = jnp.sign(avg) * jax.nn.relu(jnp.abs(avg))
    scaled = jnp.where(jnp.isnan(avg), avg, magnitude) * math.prod(kernel)
    return scaled ** jnp.asarray(1.0 / norm_type, x.dtype)


def lp_pool1d(
    input: jax.Array, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
) -> jax.Array:
    """1-D power-average pooling, (sum x**p)**(1/p) per window; torch.nn.functional.lp_pool1d.

    Example:
      >>> F.lp_pool1d(jnp.ones((1, 2, 8)), 2, 2).shape
      (1, 2, 4)
    """
    return _lp_pool(1, "lp_pool1d", input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(
    input: jax.Array, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
) -> jax.Array:
    """2-D power-average pooling, (sum x**p)**(1/p) per window; torch.nn.functional.lp_pool2d.

    Example:
      >>> F.lp_pool2d(jnp.ones((1, 2, 4, 4)), 2, 2).shape
      (1, 2, 2, 2)
    """
    return _lp_pool(2, "lp_pool2d", input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(
    input: jax.Array, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
) -> jax.Array:
    """3-D power-average pooling, (sum x**p)**(1/p) per window; torch.nn.functional.lp_pool3d.

    Example:
      >>> F.lp_pool3d(jnp.ones((1, 2, 4, 4, 4)), 2, 2).shape
      (1, 2, 2, 2, 2)
    """
    return _lp_pool(3, "lp_pool3d", input, norm_type, kernel_size, stride, ceil_mode)


# -- layers --------------------------------------------------------------------------------------


def _max_pool_layer(n: int, kernel_size, stride, padding, dilation, return_indices, ceil_mode) -> Layer:
    stride = stride if stride is not None else kernel_size
    name = (
        f"MaxPool{n}d(kernel_size={kernel_size}, stride={stride}, padding={padding}, "
        f"dilation={dilation}, ceil_mode={ceil_mode})"
    )
    pool_args(n, f"MaxPool{n}d", kernel_size, stride, padding, dilation)  # configuration errors now
    return stateless(
        name,
        lambda input: _max_pool(
            n, name, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
        ),
    )


def MaxPool1d(
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    return_indices: bool = False,
    ceil_mode: bool = False,
) -> Layer:
    """Layer twin of torch.nn.MaxPool1d: the maximum of each (dilated) window.

    Args: as torch: kernel_size, stride (default kernel_size), padding (<= kernel_size // 2, with
    -inf), dilation, return_indices (also return flat indices for MaxUnpool1d), ceil_mode.

    Shape: (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out).

    Example:
      >>> x = jnp.ones((2, 4, 9))
      >>> y, _ = fl.MaxPool1d(3, stride=2).apply({}, {}, x)
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
    """Layer twin of torch.nn.MaxPool2d: the maximum of each (dilated) window.

    Args: as torch: kernel_size, stride (default kernel_size), padding (<= kernel_size // 2),
    dilation, return_indices (also return flat H*W indices for MaxUnpool2d), ceil_mode.

    Shape: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out).

    Example:
      >>> x = jnp.arange(20.0).reshape(1, 1, 4, 5)
      >>> (y, idx), _ = fl.MaxPool2d(2, return_indices=True).apply({}, {}, x)
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
    """Layer twin of torch.nn.MaxPool3d: the maximum of each (dilated) window.

    Shape: (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or unbatched.

    Example:
      >>> y, _ = fl.MaxPool3d(2).apply({}, {}, jnp.ones((1, 2, 4, 4, 4)))
    """
    return _max_pool_layer(3, kernel_size, stride, padding, dilation, return_indices, ceil_mode)


def _avg_pool_layer(
    n: int, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, name: str
) -> Layer:
    pool_args(n, f"AvgPool{n}d", kernel_size, stride, padding)
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"AvgPool{n}d: divisor must be not zero, got divisor_override={divisor_override!r}.")
    return stateless(
        name,
        lambda input: _avg_pool(
            n, name, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        ),
    )


def AvgPool1d(
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Layer:
    """Layer twin of torch.nn.AvgPool1d: the mean of each window.

    Args: as torch: kernel_size, stride (default kernel_size), padding (zeros, <= kernel_size // 2),
    ceil_mode, count_include_pad (whether declared padding counts in the divisor).

    Shape: (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out).

    Example:
      >>> y, _ = fl.AvgPool1d(3, stride=2).apply({}, {}, jnp.arange(7.0)[None, None])   # [[[1, 3, 5]]]
    """
    kernel = ntuple(kernel_size, 1)
    stride_t = ntuple(stride if stride is not None else kernel_size, 1)
    name = f"AvgPool1d(kernel_size={kernel}, stride={stride_t}, padding={ntuple(padding, 1)})"
    return _avg_pool_layer(1, kernel_size, stride, padding, ceil_mode, count_include_pad, None, name)


def AvgPool2d(
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Layer:
    """Layer twin of torch.nn.AvgPool2d: the mean of each window (or its sum / divisor_override).

    Shape: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out).

    Example:
      >>> y, _ = fl.AvgPool2d(3, 2, 1, ceil_mode=True).apply({}, {}, jnp.ones((8, 4, 31, 31)))
    """
    name = (
        f"AvgPool2d(kernel_size={kernel_size}, stride={stride if stride is not None else kernel_size}, "
        f"padding={padding})"
    )
    return _avg_pool_layer(
        2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, name
    )


def AvgPool3d(
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Layer:
    """Layer twin of torch.nn.AvgPool3d: the mean of each window (or its sum / divisor_override).

    Shape: (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or unbatched.

    Example:
      >>> y, _ = fl.AvgPool3d(2).apply({}, {}, jnp.ones((1, 2, 4, 4, 4)))
    """
    name = (
        f"AvgPool3d(kernel_size={kernel_size}, stride={stride if stride is not None else kernel_size}, "
        f"padding={padding})"
    )
    return _avg_pool_layer(
        3, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, name
    )


def _lp_pool_layer(n: int, norm_type, kernel_size, stride, ceil_mode) -> Layer:
    config = f"norm_type={norm_type}, kernel_size={kernel_size}, stride={stride}, ceil_mode={ceil_mode}"
    name = f"LPPool{n}d({config})"
    pool_args(n, f"LPPool{n}d", kernel_size, stride, 0)
    if not isinstance(norm_type, (int, float)) or isinstance(norm_type, bool):
        raise TypeError(f"LPPool{n}d: norm_type must be a number, got {norm_type!r}.")
    if norm_type == 0:
        raise ValueError(f"LPPool{n}d: norm_type must be non-zero (the output is a 1/norm_type power).")
    return stateless(name, lambda input: _lp_pool(n, name, input, norm_type, kernel_size, stride, ceil_mode))


def LPPool1d(norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> Layer:
    """Layer twin of torch.nn.LPPool1d: (sum over the window of x**p) ** (1/p), p = norm_type.

    p = inf gives the max of |x| and p = 1 sum pooling. Shape: (N, C, L) or (C, L) -> (.., L_out).

    Example:
      >>> x = jnp.ones((2, 4, 9))
      >>> y, _ = fl.LPPool1d(2, 3, stride=2).apply({}, {}, x)
    """
    return _lp_pool_layer(1, norm_type, kernel_size, stride, ceil_mode)


def LPPool2d(norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> Layer:
    """Layer twin of torch.nn.LPPool2d: (sum over the window of x**p) ** (1/p), p = norm_type.

    Shape: (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out).

    Example:
      >>> x = jnp.ones((2, 4, 9, 8))
      >>> y, _ = fl.LPPool2d(1.5, (3, 2), stride=(2, 1)).apply({}, {}, x)
    """
    return _lp_pool_layer(2, norm_type, kernel_size, stride, ceil_mode)


def LPPool3d(norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> Layer:
    """Layer twin of torch.nn.LPPool3d: (sum over the window of x**p) ** (1/p), p = norm_type.

    Shape: (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or unbatched.

    Example:
      >>> x = jnp.ones((1, 2, 4, 4, 4))
      >>> y, _ = fl.LPPool3d(2, 2).apply({}, {}, x)
    """
    return _lp_pool_layer(3, norm_type, kernel_size, stride, ceil_mode)
