"""Average and power-average (LP) pooling over 1, 2 or 3 trailing spatial axes (torch.nn.AvgPool*d, LPPool*d).

Split from `_pooling.py` (max pooling and the argument helpers the pooling family shares). Average
pooling follows torch's divisor rules (AvgPoolKernel.cpp): with count_include_pad the declared padding
counts but the extra ceil-mode cells do not; integer inputs divide truncating toward zero.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._layer import Layer, stateless
from ._pooling import _max_pool, axis_windows, check_pool_input, output_sizes, pool_args, pool_tuple
from ._utils import ntuple


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

    Args:
      input: the (N, C, L) or (C, L) array to pool.
      kernel_size: window size, an int or a 1-tuple of ints.
      stride: window step, an int or a 1-tuple; default (None) `kernel_size`.
      padding: implicit zero padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      count_include_pad: count the zero padding in each window's divisor (default True); the extra
        cells a ceil_mode window reaches past the padding never count.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out), with
      L_out = floor((L + 2 padding - kernel_size) / stride) + 1
      (each axis with its own kernel_size, stride, padding; ceil instead of floor with `ceil_mode`).

    Example:
      >>> x = jnp.arange(7.0)[None, None]
      >>> F.avg_pool1d(x, 3, stride=2)
      Array([[[1., 3., 5.]]], dtype=float32)
      >>> F.avg_pool1d(x, 3, stride=2, padding=1, count_include_pad=False)   # edge windows: 2 elements
      Array([[[0.5, 2. , 4. , 5.5]]], dtype=float32)
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

    Args:
      input: the (N, C, H, W) or (C, H, W) array to pool.
      kernel_size: window size, an int or a pair of ints.
      stride: window step, an int or a pair; default (None) `kernel_size`.
      padding: implicit zero padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      count_include_pad: count the zero padding in each window's divisor (default True); the extra
        cells a ceil_mode window reaches past the padding never count.
      divisor_override: when given, divide every window's sum by it instead (must be non-zero). Default: None.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), with
      H_out = floor((H + 2 padding - kernel_size) / stride) + 1, likewise W_out
      (each axis with its own kernel_size, stride, padding; ceil instead of floor with `ceil_mode`).

    Example:
      >>> x = jnp.ones((1, 1, 4, 4))
      >>> F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
      Array([[[[1., 1., 1.],
               [1., 1., 1.],
               [1., 1., 1.]]]], dtype=float32)
      >>> F.avg_pool2d(x, 2, divisor_override=1)   # window sums
      Array([[[[4., 4.],
               [4., 4.]]]], dtype=float32)
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

    Args:
      input: the (N, C, D, H, W) or (C, D, H, W) array to pool.
      kernel_size: window size, an int or a triple of ints.
      stride: window step, an int or a triple; default (None) `kernel_size`.
      padding: implicit zero padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      count_include_pad: count the zero padding in each window's divisor (default True); the extra
        cells a ceil_mode window reaches past the padding never count.
      divisor_override: when given, divide every window's sum by it instead (must be non-zero). Default: None.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), with
      D_out = floor((D + 2 padding - kernel_size) / stride) + 1, likewise H_out, W_out
      (each axis with its own kernel_size, stride, padding; ceil instead of floor with `ceil_mode`).

    Example:
      >>> F.avg_pool3d(jnp.arange(8.0).reshape(1, 2, 2, 2), 2)   # unbatched (C, D, H, W)
      Array([[[[3.5]]]], dtype=float32)
      >>> F.avg_pool3d(jnp.ones((1, 2, 5, 4, 4)), 2, ceil_mode=True).shape
      (1, 2, 3, 2, 2)
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

    Args:
      input: the (N, C, L) or (C, L) array to pool.
      norm_type: the power p, non-zero; inf gives the max of |x| per window, 1 sum pooling. A window
        with a negative entry and a fractional p gives NaN (as torch).
      kernel_size: window size, an int or a 1-tuple of ints.
      stride: window step, an int or a 1-tuple; default (None) `kernel_size`.
      ceil_mode: round the output size up instead of down (no padding: the last window may be partial). Default: False.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out), with
      L_out = floor((L - kernel_size) / stride) + 1
      (each axis with its own kernel_size, stride; ceil instead of floor with `ceil_mode`).

    Example:
      >>> F.lp_pool1d(jnp.array([[[3.0, 4.0, 1.0, 0.0]]]), 2, 2)   # sqrt(9 + 16), sqrt(1 + 0)
      Array([[[5., 1.]]], dtype=float32)
    """
    return _lp_pool(1, "lp_pool1d", input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(
    input: jax.Array, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
) -> jax.Array:
    """2-D power-average pooling, (sum x**p)**(1/p) per window; torch.nn.functional.lp_pool2d.

    Args:
      input: the (N, C, H, W) or (C, H, W) array to pool.
      norm_type: the power p, non-zero; inf gives the max of |x| per window, 1 sum pooling. A window
        with a negative entry and a fractional p gives NaN (as torch).
      kernel_size: window size, an int or a pair of ints.
      stride: window step, an int or a pair; default (None) `kernel_size`.
      ceil_mode: round the output size up instead of down (no padding: the last window may be partial). Default: False.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), with
      H_out = floor((H - kernel_size) / stride) + 1, likewise W_out
      (each axis with its own kernel_size, stride; ceil instead of floor with `ceil_mode`).

    Example:
      >>> F.lp_pool2d(jnp.ones((1, 2, 4, 4)), 1, 2)[0, 0]   # p = 1: window sums
      Array([[4., 4.],
             [4., 4.]], dtype=float32)
    """
    return _lp_pool(2, "lp_pool2d", input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(
    input: jax.Array, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False
) -> jax.Array:
    """3-D power-average pooling, (sum x**p)**(1/p) per window; torch.nn.functional.lp_pool3d.

    Args:
      input: the (N, C, D, H, W) or (C, D, H, W) array to pool.
      norm_type: the power p, non-zero; inf gives the max of |x| per window, 1 sum pooling. A window
        with a negative entry and a fractional p gives NaN (as torch).
      kernel_size: window size, an int or a triple of ints.
      stride: window step, an int or a triple; default (None) `kernel_size`.
      ceil_mode: round the output size up instead of down (no padding: the last window may be partial). Default: False.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), with
      D_out = floor((D - kernel_size) / stride) + 1, likewise H_out, W_out
      (each axis with its own kernel_size, stride; ceil instead of floor with `ceil_mode`).

    Example:
      >>> F.lp_pool3d(-jnp.arange(8.0).reshape(1, 2, 2, 2), math.inf, 2)   # p = inf: max |x|
      Array([[[[7.]]]], dtype=float32)
    """
    return _lp_pool(3, "lp_pool3d", input, norm_type, kernel_size, stride, ceil_mode)


# -- layers --------------------------------------------------------------------------------------


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
    """Layer twin of torch.nn.AvgPool1d: the mean of each window. No parameters.

    Args:
      kernel_size: window size, an int or a 1-tuple of ints.
      stride: window step, an int or a 1-tuple; default (None) `kernel_size`.
      padding: implicit zero padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      count_include_pad: count the zero padding in each window's divisor (default True); the extra
        cells a ceil_mode window reaches past the padding never count.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out), with
      L_out = floor((L + 2 padding - kernel_size) / stride) + 1
      (each axis with its own kernel_size, stride, padding; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, _ = fl.AvgPool1d(3, stride=2).apply({}, {}, jnp.arange(7.0)[None, None])
      >>> y
      Array([[[1., 3., 5.]]], dtype=float32)
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
    """Layer twin of torch.nn.AvgPool2d: the mean of each window (or its sum / divisor_override). No parameters.

    Args:
      kernel_size: window size, an int or a pair of ints.
      stride: window step, an int or a pair; default (None) `kernel_size`.
      padding: implicit zero padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      count_include_pad: count the zero padding in each window's divisor (default True); the extra
        cells a ceil_mode window reaches past the padding never count.
      divisor_override: when given, divide every window's sum by it instead (must be non-zero). Default: None.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), with
      H_out = floor((H + 2 padding - kernel_size) / stride) + 1, likewise W_out
      (each axis with its own kernel_size, stride, padding; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, _ = fl.AvgPool2d(3, stride=2, padding=1).apply({}, {}, jnp.ones((1, 1, 4, 4)))
      >>> y   # the zero padding counts: a corner window holds 4 ones in 9 cells
      Array([[[[0.44444445, 0.6666667 ],
               [0.6666667 , 1.        ]]]], dtype=float32)
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
    """Layer twin of torch.nn.AvgPool3d: the mean of each window (or its sum / divisor_override). No parameters.

    Args:
      kernel_size: window size, an int or a triple of ints.
      stride: window step, an int or a triple; default (None) `kernel_size`.
      padding: implicit zero padding on both sides of each spatial axis, at most half the kernel. Default: 0.
      ceil_mode: round the output size up instead of down; a last window that would start in the
        right padding is dropped. Default: False.
      count_include_pad: count the zero padding in each window's divisor (default True); the extra
        cells a ceil_mode window reaches past the padding never count.
      divisor_override: when given, divide every window's sum by it instead (must be non-zero). Default: None.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), with
      D_out = floor((D + 2 padding - kernel_size) / stride) + 1, likewise H_out, W_out
      (each axis with its own kernel_size, stride, padding; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, _ = fl.AvgPool3d(2).apply({}, {}, jnp.ones((1, 2, 4, 4, 4)))
      >>> y.shape
      (1, 2, 2, 2, 2)
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
    """Layer twin of torch.nn.LPPool1d: (sum over the window of x**p) ** (1/p), p = norm_type. No parameters.

    Args:
      norm_type: the power p, non-zero; inf gives the max of |x| per window, 1 sum pooling. A window
        with a negative entry and a fractional p gives NaN (as torch).
      kernel_size: window size, an int or a 1-tuple of ints.
      stride: window step, an int or a 1-tuple; default (None) `kernel_size`.
      ceil_mode: round the output size up instead of down (no padding: the last window may be partial). Default: False.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out), with
      L_out = floor((L - kernel_size) / stride) + 1
      (each axis with its own kernel_size, stride; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, _ = fl.LPPool1d(2, 3, stride=2).apply({}, {}, jnp.ones((2, 4, 9)))
      >>> y.shape, y[0, 0, 0]   # sqrt(3)
      ((2, 4, 4), Array(1.7320508, dtype=float32))
    """
    return _lp_pool_layer(1, norm_type, kernel_size, stride, ceil_mode)


def LPPool2d(norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> Layer:
    """Layer twin of torch.nn.LPPool2d: (sum over the window of x**p) ** (1/p), p = norm_type. No parameters.

    Args:
      norm_type: the power p, non-zero; inf gives the max of |x| per window, 1 sum pooling. A window
        with a negative entry and a fractional p gives NaN (as torch).
      kernel_size: window size, an int or a pair of ints.
      stride: window step, an int or a pair; default (None) `kernel_size`.
      ceil_mode: round the output size up instead of down (no padding: the last window may be partial). Default: False.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), with
      H_out = floor((H - kernel_size) / stride) + 1, likewise W_out
      (each axis with its own kernel_size, stride; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, _ = fl.LPPool2d(1.5, (3, 2), stride=(2, 1)).apply({}, {}, jnp.ones((2, 4, 9, 8)))
      >>> y.shape
      (2, 4, 4, 7)
    """
    return _lp_pool_layer(2, norm_type, kernel_size, stride, ceil_mode)


def LPPool3d(norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> Layer:
    """Layer twin of torch.nn.LPPool3d: (sum over the window of x**p) ** (1/p), p = norm_type. No parameters.

    Args:
      norm_type: the power p, non-zero; inf gives the max of |x| per window, 1 sum pooling. A window
        with a negative entry and a fractional p gives NaN (as torch).
      kernel_size: window size, an int or a triple of ints.
      stride: window step, an int or a triple; default (None) `kernel_size`.
      ceil_mode: round the output size up instead of down (no padding: the last window may be partial). Default: False.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), with
      D_out = floor((D - kernel_size) / stride) + 1, likewise H_out, W_out
      (each axis with its own kernel_size, stride; ceil instead of floor with `ceil_mode`).

    Example:
      >>> y, _ = fl.LPPool3d(2, 2).apply({}, {}, jnp.ones((1, 2, 4, 4, 4)))
      >>> y.shape, y[0, 0, 0, 0, 0]   # sqrt(8)
      ((1, 2, 2, 2, 2), Array(2.828427, dtype=float32))
    """
    return _lp_pool_layer(3, norm_type, kernel_size, stride, ceil_mode)
