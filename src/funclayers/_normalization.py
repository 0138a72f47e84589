"""_normalization.py: layer, group, RMS and local-response normalisation (torch's normalization.py).

The fast kernels live in `_kernels/`: LayerNorm's row kernel (`_kernels/_layernorm.py`), and
GroupNorm's, CrossMapLRN2d's and the instance norms' `standardize` (`_kernels/_norm.py`, with
training-mode BatchNorm's): torch's CPU algorithms with closed-form backward passes, differentiable
in every mode.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import init as _init
from ._kernels._layernorm import layer_norm_rows
from ._kernels._norm import _cross_map_lrn2d, _group_norm_fused
from ._layer import Layer, no_params
from ._loss_margin import _norm as _lp_norm  # the p-norm with torch's zero subgradient at 0
from ._utils import TorchRuntimeError, check_floating, check_param_dtypes, fmt_shape, normalize_dim, param_dtype


def _affine(y: jax.Array, weight: Any, bias: Any, shape: tuple[int, ...]) -> jax.Array:
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


# ---------------------------------------------------------------------------------------------
# argument helpers


def _shape_tuple(normalized_shape: Any) -> tuple[int, ...]:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(s) for s in normalized_shape)


def _check_trailing(where: str, input: Any, normalized_shape: tuple[int, ...]) -> None:
    shape = fmt_shape(input)
    d = len(normalized_shape)
    if len(shape) < d or shape[len(shape) - d:] != normalized_shape:
        star = ", ".join(["*"] + [str(s) for s in normalized_shape])
        raise TorchRuntimeError(f"{where}: Given normalized_shape={list(normalized_shape)}, expected input "
                                f"with shape [{star}], but got input of size{list(shape)}.")


def _check_param_shape(where: str, what: str, value: Any, shape: tuple[int, ...]) -> None:
    if value is not None and fmt_shape(value) != shape:
        raise TorchRuntimeError(f"{where}: expected {what} of shape {shape}, got {fmt_shape(value)}.")


def verify_batch_size(where: str, size: Sequence[int]) -> None:
    """torch's _verify_batch_size: training statistics need more than one value per channel."""
    size = list(size)
    if math.prod(size[:1] + size[2:]) == 1:
        raise ValueError(f"{where}: Expected more than 1 value per channel when training, got input size "
                         f"{size}.")


# ---------------------------------------------------------------------------------------------
# functional ops


def normalize(input: Any, p: float = 2.0, dim: int | Sequence[int] = 1, eps: float = 1e-12,
              out: Any = None) -> jax.Array:
    """x / max(||x||_p, eps) along `dim`; torch.nn.functional.normalize.

    The norm's gradient follows torch's (zero at the zero vector, sign(0) = 0 for p = 1), and below
    `eps` the denominator is the constant eps, as torch's `clamp_min`.

    Args:
      input: the input array, floating, any shape.
      p: the exponent value in the norm formulation (0 counts non-zeros, inf takes the largest
        magnitude). Default: 2.
      dim: the dimension, or tuple of dimensions, to reduce. Default: 1.
      eps: small value to avoid division by zero. Default: 1e-12.
      out: must be None: JAX arrays are immutable, the result is returned. Default: None.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.normalize(jnp.array([[3.0, 4.0], [0.0, 0.0]]))   # rows of unit length; zero stays zero
      Array([[0.6, 0.8],
             [0. , 0. ]], dtype=float32)
      >>> F.normalize(jnp.array([[1.0, 3.0]]), p=1)
      Array([[0.25, 0.75]], dtype=float32)
    """
    if out is not None:
        raise TypeError("normalize: `out` is not supported (JAX arrays are immutable); use the returned array.")
    check_floating("normalize", input)
    x = jnp.asarray(input)
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = sorted({normalize_dim(f"normalize(dim={dim})", d, x.ndim) for d in dims})
    base = x.reshape(1) if x.ndim == 0 else x
    moved = jnp.moveaxis(base, axes, range(-len(axes), 0))
    flat = moved.reshape(moved.shape[:moved.ndim - len(axes)] + (-1,))
    if p == 1:  # torch's sgn(0) = 0 in the norm's backward (jnp.abs passes 1 at 0)
        norm = jnp.sum(flat * lax.stop_gradient(jnp.sign(flat)), axis=-1)
    else:
        norm = _lp_norm(flat, p)
    norm = jnp.expand_dims(norm, tuple(axes)) if x.ndim else norm.reshape(())
    eps = jnp.asarray(eps, x.dtype)
    return x / jnp.where(norm < eps, eps, norm)  # torch's clamp_min: the gradient passes at norm == eps


def layer_norm(input: jax.Array, normalized_shape: Sequence[int] | int, weight: jax.Array | None = None,
               bias: jax.Array | None = None, eps: float = 1e-5) -> jax.Array:
    """Normalises over the trailing `normalized_shape` dims; torch.nn.functional.layer_norm.

    Args:
      input: the (*, *normalized_shape) floating-point array.
      normalized_shape: the trailing shape to normalise over (an int means the last axis).
      weight: optional elementwise scale of shape `normalized_shape`. Default: None.
      bias: optional elementwise shift of shape `normalized_shape`. Default: None.
      eps: added to the biased variance (default 1e-5).

    Shape:
      (*, *normalized_shape) -> the same shape; y = (x - mean) / sqrt(var + eps) * weight + bias, the mean
      and the biased variance over the trailing len(normalized_shape) axes of each element of *.

    Example:
      >>> F.layer_norm(jnp.array([[1.0, 2.0, 3.0]]), (3,))   # (x - 2) / sqrt(2/3 + 1e-5)
      Array([[-1.2247357,  0.       ,  1.2247357]], dtype=float32)
    """
    return _layer_norm("layer_norm", input, _shape_tuple(normalized_shape), weight, bias, eps)


def _layer_norm(where, input, normalized_shape, weight, bias, eps):
    check_floating(where, input)
    _check_trailing(where, input, normalized_shape)
    _check_param_shape(where, "weight", weight, normalized_shape)
    _check_param_shape(where, "bias", bias, normalized_shape)
    check_param_dtypes(where, input, (weight, bias), mixed=True)
    n = math.prod(normalized_shape)
    if not normalized_shape:  # torch normalises over no dims: every element is its own mean
        return _affine(jnp.zeros_like(input), weight, bias, normalized_shape).astype(input.dtype)
    if n == 0:
        return input
    rows = [None if a is None else a.reshape(n) for a in (weight, bias)]
    lead = input.shape[:input.ndim - len(normalized_shape)]
    return layer_norm_rows(input.reshape(*lead, n), *rows, eps).reshape(input.shape)


def group_norm(input: jax.Array, num_groups: int, weight: jax.Array | None = None,
               bias: jax.Array | None = None, eps: float = 1e-5) -> jax.Array:
    """Normalises each group of channels of each sample; torch.nn.functional.group_norm.

    Args:
      input: the (N, C, *) floating-point array.
      num_groups: number of channel groups; must divide C.
      weight: optional per-channel scale of shape (C,). Default: None.
      bias: optional per-channel shift of shape (C,). Default: None.
      eps: added to the biased variance (default 1e-5).

    Shape:
      (N, C, *) -> the same shape; the mean and biased variance over each group of C / num_groups
      channels and all of * (per sample), then the per-channel weight and bias.

    Example:
      >>> F.group_norm(jnp.arange(4.0).reshape(1, 4, 1), 2)[0, :, 0]   # groups [0, 1] and [2, 3]
      Array([-0.99998, 0.99998, -0.99998, 0.99998], dtype=float32)
    """
    return _group_norm("group_norm", input, num_groups, weight, bias, eps)


def _group_norm(where, input, num_groups, weight, bias, eps):
    check_floating(where, input)
    shape = fmt_shape(input)
    if len(shape) < 2:
        raise TorchRuntimeError(f"{where}: Expected at least 2 dimensions for input tensor but received "
                                f"{len(shape)}; the input is (N, C, *), got shape {shape}.")
    n, c = shape[:2]
    if c % num_groups != 0:
        raise TorchRuntimeError(f"{where}: Expected number of channels in input to be divisible by "
                                f"num_groups, but got input of shape {list(shape)} and "
                                f"num_groups={num_groups}.")
    for what, value in (("weight", weight), ("bias", bias)):
        if value is not None and fmt_shape(value) != (c,):
            raise TorchRuntimeError(f"{where}: Expected {what} to be a vector of size equal to the number of "
                                    f"channels in input, but got {what} of shape "
                                    f"{list(fmt_shape(value))} and input of shape {list(shape)}.")
    verify_batch_size(where, [n * c // num_groups, num_groups] + list(shape[2:]))
    check_param_dtypes(where, input, (weight, bias), mixed=True)
    dtype = input.dtype
    x = input.astype(jnp.float32) if dtype in (jnp.float16, jnp.bfloat16) else input
    weight = jnp.ones((c,), x.dtype) if weight is None else weight.astype(x.dtype)
    bias = jnp.zeros((c,), x.dtype) if bias is None else bias.astype(x.dtype)
    out = _group_norm_fused(x, weight, bias, num_groups, float(eps))
    return out.reshape(shape).astype(dtype)


def rms_norm(input: jax.Array, normalized_shape: Sequence[int] | int, weight: jax.Array | None = None,
             eps: float | None = None) -> jax.Array:
    """`x / sqrt(mean(x^2) + eps) * weight` over the trailing dims; torch.nn.functional.rms_norm.

    Args:
      input: the (*, *normalized_shape) floating-point array.
      normalized_shape: the trailing shape to normalise over (an int means the last axis).
      weight: optional elementwise scale of shape `normalized_shape` (default None).
      eps: added to the mean square; None (default) means the machine epsilon of the input dtype
        (float32's for float32 and lower).

    Shape:
      (*, *normalized_shape) -> the same shape; y = x / sqrt(mean(x^2) + eps) * weight, the mean over the
      trailing len(normalized_shape) axes.

    Example:
      >>> F.rms_norm(jnp.array([[3.0, 4.0]]), (2,))   # root mean square sqrt(12.5)
      Array([[0.84852815, 1.1313709 ]], dtype=float32)
    """
    return _rms_norm("rms_norm", input, _shape_tuple(normalized_shape), weight, eps)


def _rms_norm(where, input, normalized_shape, weight, eps):
    check_floating(where, input)
    _check_trailing(where, input, normalized_shape)
    _check_param_shape(where, "weight", weight, normalized_shape)
    # torch 2.13's rms_norm accepts any weight dtype and returns the input's dtype (no check, no promotion)
    weight = None if weight is None else jnp.asarray(weight)
    dtype = input.dtype
    opmath = jnp.promote_types(dtype, jnp.float32)  # torch computes half/bfloat16 in float32
    if eps is None:
        eps = float(jnp.finfo(opmath).eps)
    x = input.astype(opmath)
    axes = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    y = x * lax.rsqrt(jnp.mean(x * x, axes, keepdims=True) + eps)
    if weight is not None and weight.dtype != dtype:  # the product in float32 or wider, rounded once
        return (y * weight.astype(opmath)).astype(dtype)
    y = y.astype(dtype)
    return y if weight is None else y * weight


def local_response_norm(input: jax.Array, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> jax.Array:
    """Divides by `(k + alpha * mean of x^2 over `size` channels)^beta`; torch.nn.functional.local_response_norm.

    The window is torch's: zero-padded with size // 2 channels before and (size - 1) // 2 after, and
    the average always divides by `size`.

    Args:
      input: the (N, C, *) floating-point array, at least 3 axes.
      size: number of neighbouring channels in the window.
      alpha: scale of the windowed mean square (default 1e-4).
      beta: exponent (default 0.75).
      k: additive constant (default 1).

    Shape:
      (N, C, *) -> the same shape, at least 3 axes; y_c = x_c / (k + alpha / size * sum x_j^2)^beta, the sum
      over channels c - size // 2 <= j <= c + (size - 1) // 2 (zeros outside 0..C-1).

    Example:
      >>> F.local_response_norm(jnp.ones((1, 3, 1)), size=3, alpha=3.0, beta=1.0)[0, :, 0]   # edges see one zero
      Array([0.33333334, 0.25      , 0.33333334], dtype=float32)
    """
    return _local_response_norm("local_response_norm", input, size, alpha, beta, k)


def _local_response_norm(where, input, size, alpha, beta, k):
    check_floating(where, input)
    if input.ndim < 3:
        raise ValueError(f"{where}: Expected 3D or higher dimensionality input (got {input.ndim} dimensions) "
                         f"of shape (N, C, *), got shape {fmt_shape(input)}.")
    if input.size == 0:
        return input
    window = (1, size) + (1,) * (input.ndim - 2)
    padding = ((0, 0), (size // 2, (size - 1) // 2)) + ((0, 0),) * (input.ndim - 2)
    summed = lax.reduce_window(input * input, np.array(0, input.dtype), lax.add, window, (1,) * input.ndim,
                               padding)
    div = (summed / size * alpha + k) ** beta
    return input / div


# ---------------------------------------------------------------------------------------------
# layers


def LayerNorm(normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
              bias: bool = True, device: Any = None, dtype: Any = None) -> Layer:
    """Layer normalisation over the trailing dims; twin of torch.nn.LayerNorm.

    Parameters (with `elementwise_affine`): `weight` (ones) and `bias` (zeros), of shape `normalized_shape`.

    Args:
      normalized_shape: the trailing shape normalised over (an int means the last axis).
      eps: added to the biased variance (default 1e-5).
      elementwise_affine: learn `weight` and (if `bias`) `bias` (default True).
      bias: learn the additive `bias` too (default True; only with elementwise_affine).
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype (default float32).

    Shape:
      (*, *normalized_shape) -> the same shape; y = (x - mean) / sqrt(var + eps) * weight + bias, the mean
      and the biased variance over the trailing len(normalized_shape) axes of each element of *.

    Example:
      >>> ln = fl.LayerNorm(3)
      >>> params, state = ln.init(jax.random.PRNGKey(0))
      >>> sorted(params), params["weight"].shape
      (['bias', 'weight'], (3,))
      >>> y, _ = ln.apply(params, state, jnp.array([[1.0, 2.0, 3.0]]))
      >>> y
      Array([[-1.2247357,  0.       ,  1.2247357]], dtype=float32)
    """
    del device
    shape = _shape_tuple(normalized_shape)
    name = f"LayerNorm({shape}, eps={eps}, elementwise_affine={elementwise_affine}, " \
           f"bias={bool(elementwise_affine and bias)})"

    def init(rng):
        del rng
        params = {}
        if elementwise_affine:
            params["weight"] = _init.ones(None, shape, param_dtype(dtype))
            if bias:
                params["bias"] = _init.zeros(None, shape, param_dtype(dtype))
        return params, {}

    def apply(params, state, input, *, rng=None, training=False):
        del rng, training
        return _layer_norm(name, input, shape, params.get("weight"), params.get("bias"), eps), state

    return Layer(init, apply, name)


def GroupNorm(num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device: Any = None,
              dtype: Any = None, *, bias: bool = True) -> Layer:
    """Group normalisation: each sample's channels split in groups, each normalised; torch.nn.GroupNorm.

    Parameters (with `affine`): per-channel `weight` (ones) and `bias` (zeros), of shape (num_channels,).

    Args:
      num_groups: groups to split the channels into; must divide `num_channels`.
      num_channels: C, the channels expected at axis 1.
      eps: added to the biased variance (default 1e-5).
      affine: learn per-channel `weight` and (if `bias`) `bias` (default True).
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype (default float32).
      bias: keyword only: learn the additive `bias` too (default True; only with affine).

    Shape:
      (N, C, *) -> the same shape; the mean and biased variance over each group of C / num_groups
      channels and all of * (per sample), then the per-channel weight and bias.

    Example:
      >>> gn = fl.GroupNorm(2, 4)
      >>> y, _ = gn.apply(*gn.init(jax.random.PRNGKey(0)), jnp.arange(4.0).reshape(1, 4, 1))
      >>> y[0, :, 0]   # groups [0, 1] and [2, 3]
      Array([-0.99998, 0.99998, -0.99998, 0.99998], dtype=float32)
    """
    del device
    if num_groups <= 0:
        raise ValueError(f"GroupNorm: num_groups must be a positive int, got {num_groups}.")
    if num_channels % num_groups != 0:
        raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                         f"({num_groups})")
    name = (f"GroupNorm({num_groups}, {num_channels}, eps={eps}, affine={affine}, "
            f"bias={bool(affine and bias)})")

    def init(rng):
        del rng
        params = {}
        if affine:
            params["weight"] = _init.ones(None, (num_channels,), param_dtype(dtype))
            if bias:
                params["bias"] = _init.zeros(None, (num_channels,), param_dtype(dtype))
        return params, {}

    def apply(params, state, input, *, rng=None, training=False):
        del rng, training
        if affine and input.ndim >= 2 and input.shape[1] != num_channels:
            raise TorchRuntimeError(f"{name} expects {num_channels} channels (dim 1), got {input.shape[1]} "
                                    f"in input of shape {fmt_shape(input)}.")
        return _group_norm(name, input, num_groups, params.get("weight"), params.get("bias"), eps), state

    return Layer(init, apply, name)


def RMSNorm(normalized_shape: int | Sequence[int], eps: float | None = None, elementwise_affine: bool = True,
            device: Any = None, dtype: Any = None) -> Layer:
    """Root-mean-square normalisation over the trailing dims; twin of torch.nn.RMSNorm.

    Parameters (with `elementwise_affine`): `weight` (ones) of shape `normalized_shape`. The forward
    argument is `x`, as in torch.

    Args:
      normalized_shape: the trailing shape normalised over (an int means the last axis).
      eps: added to the mean square; None (default) means the input dtype's machine epsilon.
      elementwise_affine: learn `weight` (default True).
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype (default float32).

    Shape:
      (*, *normalized_shape) -> the same shape; y = x / sqrt(mean(x^2) + eps) * weight, the mean over the
      trailing len(normalized_shape) axes.

    Example:
      >>> rms = fl.RMSNorm(2)
      >>> y, _ = rms.apply(*rms.init(jax.random.PRNGKey(0)), jnp.array([[3.0, 4.0]]))
      >>> y
      Array([[0.84852815, 1.1313709 ]], dtype=float32)
    """
    del device
    shape = _shape_tuple(normalized_shape)
    name = f"RMSNorm({shape}, eps={eps}, elementwise_affine={elementwise_affine})"

    def init(rng):
        del rng
        params = {"weight": _init.ones(None, shape, param_dtype(dtype))} if elementwise_affine else {}
        return params, {}

    def apply(params, state, x, *, rng=None, training=False):
        del rng, training
        return _rms_norm(name, x, shape, params.get("weight"), eps), state

    return Layer(init, apply, name)


def LocalResponseNorm(size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Layer:
    """Local response normalisation across channels; twin of torch.nn.LocalResponseNorm. No parameters.

    Args:
      size: number of neighbouring channels in the window.
      alpha: scale of the windowed mean square (default 1e-4).
      beta: exponent (default 0.75).
      k: additive constant (default 1).

    Shape:
      (N, C, *) -> the same shape, at least 3 axes; y_c = x_c / (k + alpha / size * sum x_j^2)^beta, the sum
      over channels c - size // 2 <= j <= c + (size - 1) // 2 (zeros outside 0..C-1).

    Example:
      >>> lrn = fl.LocalResponseNorm(3, alpha=3.0, beta=1.0)
      >>> y, _ = lrn.apply({}, {}, jnp.ones((1, 3, 1)))
      >>> y[0, :, 0]   # the edge channels' windows hold one zero
      Array([0.33333334, 0.25      , 0.33333334], dtype=float32)
    """
    name = f"LocalResponseNorm({size}, alpha={alpha}, beta={beta}, k={k})"

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return _local_response_norm(name, input, size, alpha, beta, k), state

    return Layer(no_params, apply, name)


def CrossMapLRN2d(size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1) -> Layer:
    """torch's legacy cross-channel LRN over 4D input, window and backward as torch's; torch.nn.CrossMapLRN2d.

    `x * (k + alpha / size * sum of x^2 over the channel window)^-beta`, the window reproducing
    torch's implementation exactly (including its quirks), and the gradient torch's backward. No parameters.

    Args:
      size: number of neighbouring channels in the window.
      alpha: scale of the windowed sum of squares, divided by `size` (default 1e-4).
      beta: exponent (default 0.75).
      k: additive constant (default 1).

    Shape:
      (N, C, H, W) -> (N, C, H, W), floating point.

    Example:
      >>> lrn = fl.CrossMapLRN2d(3, alpha=3.0, beta=1.0)
      >>> y, _ = lrn.apply({}, {}, jnp.ones((1, 3, 1, 1)))
      >>> y[0, :, 0, 0]   # torch's window: the last channel's is not the mirror of the first's
      Array([0.33333334, 0.25      , 0.25      ], dtype=float32)
    """
    name = f"CrossMapLRN2d({size}, alpha={alpha}, beta={beta}, k={k})"

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        check_floating(name, input)
        if input.ndim != 4:
            raise ValueError(f"{name}: Expected input to be 4D, got {input.ndim}D instead (shape "
                             f"{fmt_shape(input)}; the input is (N, C, H, W)).")
        return _cross_map_lrn2d(input, size, alpha, beta, k), state

    return Layer(no_params, apply, name)


def warn_unused_num_features(where: str, dim: int) -> None:
    warnings.warn(f"{where}: input's size at dim={dim} does not match num_features. You can silence this "
                  "warning by not passing in num_features, which is not used because affine=False",
                  stacklevel=3)
