"""Fractional max pooling (Graham, 2014): torch.nn.FractionalMaxPool2d and FractionalMaxPool3d.

Each (sample, channel) plane draws one number u in [0, 1) per spatial axis; torch's
generate_intervals (aten/src/ATen/native/FractionalMaxPool2d.cpp) turns it into window starts,
computed in the input's dtype:

    alpha = (L - k) / (o - 1);  start[i] = int((i + u) * alpha) - int(u * alpha) for i < o - 1;
    start[o - 1] = L - k.

torch's sample layout is (N, C, 2) with [..., 0] for W and [..., 1] for H, and (N, C, 3) as
(T, H, W). The windows are gathered axis by axis (no Python loop over output cells) and reduced
with torch's pick (first maximum, last NaN), which also fixes the returned flat indices.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._kernels._max_select import select_max
from ._layer import Layer
from ._pooling import SPATIAL_DIMS, index_dtype, pool_tuple
from ._utils import check_rank, fmt_shape, require_rng


def generate_intervals(sample: jax.Array, size: int, out: int, kernel: int) -> jax.Array:
    """Window starts (..., out) from samples (...), in the samples' dtype as torch computes them."""
    dtype = sample.dtype
    last = jnp.full(sample.shape + (1,), size - kernel, jnp.int32)
    if out == 1:
        return last
    alpha = jnp.asarray(size - kernel, dtype) / jnp.asarray(out - 1, dtype)
    i = jnp.arange(out - 1, dtype=dtype)
    starts = ((i + sample[..., None]) * alpha).astype(jnp.int32) - (sample * alpha).astype(jnp.int32)[
        ..., None
    ]
    return jnp.concatenate([starts, last], axis=-1)


def _resolve_output_size(layer: str, n: int, spatial, kernel, output_size, output_ratio) -> tuple[int, ...]:
    if output_size is None and output_ratio is None:
        raise ValueError(f"{layer} requires specifying either an output_size or an output_ratio.")
    if output_size is not None:
        out = pool_tuple(output_size, n, "output_size", layer)
    else:
        ratio = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else (output_ratio,) * n
        if len(ratio) == 1:
            ratio = ratio * n
        if len(ratio) != n:
            raise ValueError(
                f"{layer}: output_ratio must be a number or a tuple of {n} numbers, got {output_ratio!r}."
            )
        out = tuple(int(L * r) for L, r in zip(spatial, ratio, strict=False))
    axes = {1: ("width",), 2: ("height", "width"), 3: ("time", "height", "width")}[n]
    for o, k, L, axis in zip(out, kernel, spatial, axes, strict=False):
        if o < 1:
            raise ValueError(
                f"{layer}: output size along {axis} must be positive, got {out} for input {axis} {L}."
            )
        if o + k - 1 > L:
            raise ValueError(
                f"{layer}: pool {axis} {k} too large relative to input {axis} {L} for output {axis} {o}."
            )
    return out


def _fractional_max_pool(
    n: int,
    layer: str,
    input,
    kernel_size,
    output_size,
    output_ratio,
    return_indices,
    _random_samples,
    rng=None,
):
    kernel = pool_tuple(kernel_size, n, "kernel_size", layer, minimum=1)
    rank = check_rank(layer, input, (n + 1, n + 2), SPATIAL_DIMS[n])
    x = jnp.asarray(input)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{layer} expects a floating-point input, got dtype {x.dtype}.")
    batched = rank == n + 2
    x = x if batched else x[None]
    batch, channels, spatial = x.shape[0], x.shape[1], x.shape[2:]
    out = _resolve_output_size(layer, n, spatial, kernel, output_size, output_ratio)
    if _random_samples is None:
        rng = require_rng(layer, rng)
        samples = jax.random.uniform(rng, (batch, channels, n), x.dtype)
    else:
        samples = jnp.asarray(_random_samples)
        shape = samples.shape
        if len(shape) != 3 or shape[0] < batch or shape[1] != channels or shape[2] != n:
            raise ValueError(
                f"{layer} expects _random_samples of shape ({batch}, {channels}, {n}) (at least "
                f"{batch} along the batch axis) for input of shape {fmt_shape(input)}, got "
                f"{tuple(shape)}."
            )
        samples = samples[:batch].astype(x.dtype)
    # torch's sample slot per spatial axis: (W, H) for 2-D, (T, H, W) for 3-D
    slot = (1, 0) if n == 2 else tuple(range(n))
    value, coords = x, {}
    for axis in reversed(range(n)):
        pos = 2 + axis
        starts = generate_intervals(samples[..., slot[axis]], spatial[axis], out[axis], kernel[axis])
        window = starts[..., None] + jnp.arange(kernel[axis], dtype=starts.dtype)  # (B, C, o, k)
        index = window.reshape((batch, channels) + (1,) * axis + (-1,) + (1,) * (n - 1 - axis))
        gathered = jnp.take_along_axis(value, index, axis=pos)
        gathered = gathered.reshape(value.shape[:pos] + (out[axis], kernel[axis]) + value.shape[pos + 1 :])
        value, pick = select_max(
            [lax.index_in_dim(gathered, j, pos + 1, False) for j in range(gathered.shape[pos + 1])]
        )
        chosen = starts.reshape((batch, channels) + (1,) * axis + (-1,) + (1,) * (n - 1 - axis)) + pick
        coords = {a: jnp.take_along_axis(c, chosen, axis=pos) for a, c in coords.items()}
        coords[axis] = chosen
    if not batched:
        value = value[0]
    if not return_indices:
        return value
    plane = [int(np.prod(spatial[a + 1 :])) for a in range(n)]
    index = sum(coords[a].astype(index_dtype()) * plane[a] for a in range(n))
    return value, (index if batched else index[0])


def fractional_max_pool2d(
    input: jax.Array,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
    *,
    rng: jax.Array | None = None,
) -> Any:
    """2-D fractional max pooling; torch.nn.functional.fractional_max_pool2d.

    Args:
      input: the (N, C, H, W) or (C, H, W) floating-point array to pool.
      kernel_size: window size, an int or a pair of ints.
      output_size: the output size, an int or a pair; each must satisfy output + kernel - 1 <= input. Default: None.
      output_ratio: instead of output_size, a number or a pair in (0, 1): output = int(input * ratio).
        Exactly one of output_size and output_ratio is given. Default: None.
      return_indices: also return the flat indices of the maxima over H*W (int64; int32 without
        jax_enable_x64), the input of MaxUnpool2d. Default: False.
      _random_samples: (N, C, 2) numbers in [0, 1), one per plane and axis
        ([..., 0] for W and [..., 1] for H), placing the windows; when None they are drawn from `rng`. Default: None.
      rng: a jax PRNG key (keyword only; torch uses its global generator), needed unless
        `_random_samples` is given. Default: None.

    Returns:
      The pooled array; `(output, indices)` with `return_indices`, the indices flat over H*W.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), (H_out, W_out) = output_size
      or (int(H * ratio_h), int(W * ratio_w)); the windows along an axis of length L start at
      int((i + u) alpha) - int(u alpha), alpha = (L - k) / (out - 1), the last at L - k.

    Example:
      >>> x = jnp.arange(25.0).reshape(1, 1, 5, 5)
      >>> F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=jnp.zeros((1, 1, 2)))   # starts 0, 1, 3
      Array([[[[ 6.,  7.,  9.],
               [11., 12., 14.],
               [21., 22., 24.]]]], dtype=float32)
      >>> F.fractional_max_pool2d(jnp.ones((1, 2, 32, 32)), 3, output_ratio=0.5, rng=jax.random.PRNGKey(0)).shape
      (1, 2, 16, 16)
    """
    return _fractional_max_pool(
        2,
        "fractional_max_pool2d",
        input,
        kernel_size,
        output_size,
        output_ratio,
        return_indices,
        _random_samples,
        rng,
    )


def fractional_max_pool3d(
    input: jax.Array,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
    *,
    rng: jax.Array | None = None,
) -> Any:
    """3-D fractional max pooling; torch.nn.functional.fractional_max_pool3d.

    Args:
      input: the (N, C, T, H, W) or (C, T, H, W) floating-point array to pool.
      kernel_size: window size, an int or a triple of ints.
      output_size: the output size, an int or a triple; each must satisfy output + kernel - 1 <= input. Default: None.
      output_ratio: instead of output_size, a number or a triple in (0, 1): output = int(input * ratio).
        Exactly one of output_size and output_ratio is given. Default: None.
      return_indices: also return the flat indices of the maxima over T*H*W (int64; int32 without
        jax_enable_x64), the input of MaxUnpool3d. Default: False.
      _random_samples: (N, C, 3) numbers in [0, 1), one per plane and axis
        ([..., 0:3] for T, H, W), placing the windows; when None they are drawn from `rng`. Default: None.
      rng: a jax PRNG key (keyword only; torch uses its global generator), needed unless
        `_random_samples` is given. Default: None.

    Returns:
      The pooled array; `(output, indices)` with `return_indices`, the indices flat over T*H*W.

    Shape:
      (N, C, T, H, W) or (C, T, H, W) -> (N, C, T_out, H_out, W_out) or (C, T_out, H_out, W_out), the
      output sizes output_size or int(size * ratio) per axis; the windows along an axis of length L
      start at int((i + u) alpha) - int(u alpha), alpha = (L - k) / (out - 1), the last at L - k.

    Example:
      >>> F.fractional_max_pool3d(jnp.ones((1, 2, 8, 8, 8)), 2, output_size=5, rng=jax.random.PRNGKey(0)).shape
      (1, 2, 5, 5, 5)
    """
    return _fractional_max_pool(
        3,
        "fractional_max_pool3d",
        input,
        kernel_size,
        output_size,
        output_ratio,
        return_indices,
        _random_samples,
        rng,
    )


def fractional_max_pool2d_with_indices(
    input,
    kernel_size,
    output_size=None,
    output_ratio=None,
    return_indices=False,
    _random_samples=None,
    *,
    rng=None,
) -> tuple[jax.Array, jax.Array]:
    """fractional_max_pool2d returning (output, indices); torch.nn.functional.fractional_max_pool2d_with_indices.

    Args:
      input: the (N, C, H, W) or (C, H, W) floating-point array to pool.
      kernel_size: window size, an int or a pair of ints.
      output_size: the output size, an int or a pair; each must satisfy output + kernel - 1 <= input. Default: None.
      output_ratio: instead of output_size, a number or a pair in (0, 1): output = int(input * ratio).
        Exactly one of output_size and output_ratio is given. Default: None.
      return_indices: ignored (torch's signature); the indices are always returned. Default: False.
      _random_samples: (N, C, 2) numbers in [0, 1), one per plane and axis
        ([..., 0] for W and [..., 1] for H), placing the windows; when None they are drawn from `rng`. Default: None.
      rng: a jax PRNG key (keyword only; torch uses its global generator), needed unless
        `_random_samples` is given. Default: None.

    Returns:
      `(output, indices)`, the indices flat over H*W (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), (H_out, W_out) = output_size
      or (int(H * ratio_h), int(W * ratio_w)); the windows along an axis of length L start at
      int((i + u) alpha) - int(u alpha), alpha = (L - k) / (out - 1), the last at L - k.

    Example:
      >>> x = jnp.arange(25.0).reshape(1, 1, 5, 5)
      >>> y, idx = F.fractional_max_pool2d_with_indices(x, 2, output_size=2, _random_samples=jnp.zeros((1, 1, 2)))
      >>> idx   # windows start at 0 and 3 along each axis
      Array([[[[ 6,  9],
               [21, 24]]]], dtype=int32)
    """
    return _fractional_max_pool(
        2, "fractional_max_pool2d", input, kernel_size, output_size, output_ratio, True, _random_samples, rng
    )


def fractional_max_pool3d_with_indices(
    input,
    kernel_size,
    output_size=None,
    output_ratio=None,
    return_indices=False,
    _random_samples=None,
    *,
    rng=None,
) -> tuple[jax.Array, jax.Array]:
    """fractional_max_pool3d returning (output, indices); torch.nn.functional.fractional_max_pool3d_with_indices.

    Args:
      input: the (N, C, T, H, W) or (C, T, H, W) floating-point array to pool.
      kernel_size: window size, an int or a triple of ints.
      output_size: the output size, an int or a triple; each must satisfy output + kernel - 1 <= input. Default: None.
      output_ratio: instead of output_size, a number or a triple in (0, 1): output = int(input * ratio).
        Exactly one of output_size and output_ratio is given. Default: None.
      return_indices: ignored (torch's signature); the indices are always returned. Default: False.
      _random_samples: (N, C, 3) numbers in [0, 1), one per plane and axis
        ([..., 0:3] for T, H, W), placing the windows; when None they are drawn from `rng`. Default: None.
      rng: a jax PRNG key (keyword only; torch uses its global generator), needed unless
        `_random_samples` is given. Default: None.

    Returns:
      `(output, indices)`, the indices flat over T*H*W (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, T, H, W) or (C, T, H, W) -> (N, C, T_out, H_out, W_out) or (C, T_out, H_out, W_out), the
      output sizes output_size or int(size * ratio) per axis; the windows along an axis of length L
      start at int((i + u) alpha) - int(u alpha), alpha = (L - k) / (out - 1), the last at L - k.

    Example:
      >>> y, idx = F.fractional_max_pool3d_with_indices(jnp.ones((1, 2, 8, 8, 8)), 2, output_size=5, rng=key)
      >>> idx.shape
      (1, 2, 5, 5, 5)
    """
    return _fractional_max_pool(
        3, "fractional_max_pool3d", input, kernel_size, output_size, output_ratio, True, _random_samples, rng
    )


def _fractional_layer(
    n: int, kernel_size, output_size, output_ratio, return_indices, _random_samples
) -> Layer:
    layer = f"FractionalMaxPool{n}d"
    kernel = pool_tuple(kernel_size, n, "kernel_size", layer, minimum=1)
    if output_size is None and output_ratio is None:
        raise ValueError(f"{layer} requires specifying either an output size, or a pooling ratio")
    if output_size is not None and output_ratio is not None:
        raise ValueError(f"{layer}: only one of output_size and output_ratio may be specified")
    if output_size is not None:
        pool_tuple(output_size, n, "output_size", layer, minimum=1)
    if output_ratio is not None:
        ratio = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else (output_ratio,) * n
        ratio = ratio * n if len(ratio) == 1 else ratio
        if len(ratio) != n or not all(0 < r < 1 for r in ratio):
            raise ValueError(f"{layer}: output_ratio must be between 0 and 1 (got {output_ratio})")
    samples = None if _random_samples is None else np.asarray(_random_samples)

    def init(rng=None):
        del rng
        return {}, ({} if samples is None else {"_random_samples": jnp.asarray(samples)})

    def apply(params, state, input, *, rng=None, training=False):
        del params, training  # torch draws fresh samples in eval mode too
        return _fractional_max_pool(
            n,
            f"{layer}()",
            input,
            kernel,
            output_size,
            output_ratio,
            return_indices,
            state.get("_random_samples"),
            rng,
        ), state

    return Layer(init, apply, f"{layer}()")


def FractionalMaxPool2d(
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> Layer:
    """Layer twin of torch.nn.FractionalMaxPool2d: max pooling over pseudo-random, overlapping windows. No parameters.

    Args:
      kernel_size: window size, an int or a pair of ints.
      output_size: the output size, an int or a pair; each must satisfy output + kernel - 1 <= input. Default: None.
      output_ratio: instead of output_size, a number or a pair in (0, 1): output = int(input * ratio).
        Exactly one of output_size and output_ratio is given. Default: None.
      return_indices: also return the flat indices of the maxima over H*W (int64; int32 without
        jax_enable_x64), the input of MaxUnpool2d: apply then returns `((output, indices), state)`. Default: False.
      _random_samples: fixed (N, C, 2) samples in [0, 1) ([..., 0] for W and [..., 1] for H), held as torch's buffer
        `state["_random_samples"]`; without them every call (eval mode included, as in torch) draws
        fresh ones from `apply(..., rng=key)`. Default: None.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), (H_out, W_out) = output_size
      or (int(H * ratio_h), int(W * ratio_w)); the windows along an axis of length L start at
      int((i + u) alpha) - int(u alpha), alpha = (L - k) / (out - 1), the last at L - k.

    Example:
      >>> pool = fl.FractionalMaxPool2d(3, output_ratio=0.5)
      >>> y, _ = pool.apply({}, {}, jnp.ones((2, 3, 10, 8)), rng=jax.random.PRNGKey(0))
      >>> y.shape
      (2, 3, 5, 4)
    """
    return _fractional_layer(2, kernel_size, output_size, output_ratio, return_indices, _random_samples)


def FractionalMaxPool3d(
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: Any = None,
) -> Layer:
    """Layer twin of torch.nn.FractionalMaxPool3d: max pooling over pseudo-random, overlapping windows. No parameters.

    Args:
      kernel_size: window size, an int or a triple of ints.
      output_size: the output size, an int or a triple; each must satisfy output + kernel - 1 <= input. Default: None.
      output_ratio: instead of output_size, a number or a triple in (0, 1): output = int(input * ratio).
        Exactly one of output_size and output_ratio is given. Default: None.
      return_indices: also return the flat indices of the maxima over T*H*W (int64; int32 without
        jax_enable_x64), the input of MaxUnpool3d: apply then returns `((output, indices), state)`. Default: False.
      _random_samples: fixed (N, C, 3) samples in [0, 1) ([..., 0:3] for T, H, W), held as torch's buffer
        `state["_random_samples"]`; without them every call (eval mode included, as in torch) draws
        fresh ones from `apply(..., rng=key)`. Default: None.

    Shape:
      (N, C, T, H, W) or (C, T, H, W) -> (N, C, T_out, H_out, W_out) or (C, T_out, H_out, W_out), the
      output sizes output_size or int(size * ratio) per axis; the windows along an axis of length L
      start at int((i + u) alpha) - int(u alpha), alpha = (L - k) / (out - 1), the last at L - k.

    Example:
      >>> pool = fl.FractionalMaxPool3d(2, output_size=(4, 5, 6), _random_samples=jnp.full((1, 3, 3), 0.5))
      >>> params, state = pool.init()
      >>> y, _ = pool.apply(params, state, jnp.ones((1, 3, 9, 9, 9)))   # fixed samples: no rng needed
      >>> y.shape
      (1, 3, 4, 5, 6)
    """
    return _fractional_layer(3, kernel_size, output_size, output_ratio, return_indices, _random_samples)
