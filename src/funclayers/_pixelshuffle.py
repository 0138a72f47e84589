"""Rearranging layers: PixelShuffle, PixelUnshuffle (torch.nn.modules.pixelshuffle) and ChannelShuffle
(torch.nn.modules.channelshuffle).

Each is one reshape, one transpose and one reshape: XLA's transpose is the whole cost forward and
backward (the backward is the inverse transpose).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._layer import Layer, no_params
from ._utils import TorchRuntimeError, fmt_shape

# -- argument helpers --------------------------------------------------------------------------------


def _check_factor(who: str, what: str, factor: Any) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int) or factor <= 0:
        raise TorchRuntimeError(f"{who} expects a positive {what}, but got {factor!r}")
    return factor


def _check_rank3(who: str, input: Any) -> tuple:
    shape = fmt_shape(input)
    if len(shape) < 3:
        raise TorchRuntimeError(f"{who} expects input to have at least 3 dimensions (*, C, H, W), but got input "
                                f"with {len(shape)} dimension(s) (shape {shape})")
    return shape


# -- the pure ops ------------------------------------------------------------------------------------


def pixel_shuffle(input: Any, upscale_factor: int) -> jax.Array:
    """(*, C r^2, H, W) -> (*, C, H r, W r), sub-pixel convolution's rearrangement; torch.nn.functional.pixel_shuffle.

    Args:
      input: the (*, C r^2, H, W) array.
      upscale_factor: r, a positive int: each group of r^2 channels becomes an r x r block of pixels.

    Shape:
      (*, C r^2, H, W) -> (*, C, H r, W r), any number of leading axes (at least 3 axes in all);
      out[..., c, h r + i, w r + j] = in[..., c r^2 + i r + j, h, w].

    Example:
      >>> F.pixel_shuffle(jnp.arange(4.0).reshape(1, 4, 1, 1), 2)
      Array([[[[0., 1.],
               [2., 3.]]]], dtype=float32)
      >>> F.pixel_shuffle(jnp.ones((1, 9, 4, 4)), 3).shape
      (1, 1, 12, 12)
    """
    return _pixel_shuffle("pixel_shuffle", input, upscale_factor)


def _pixel_shuffle(who: str, input: Any, upscale_factor: int) -> jax.Array:
    r = _check_factor(who, "upscale_factor", upscale_factor)
    shape = _check_rank3(who, input)
    *batch, c, h, w = shape
    if c % (r * r):
        raise TorchRuntimeError(f"{who} expects its input's 'channel' dimension to be divisible by the square of "
                                f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    x = jnp.asarray(input).reshape(*batch, c // (r * r), r, r, h, w)
    n = len(batch)
    x = jnp.transpose(x, (*range(n), n, n + 3, n + 1, n + 4, n + 2))  # (*, C, H, r, W, r)
    return x.reshape(*batch, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Any, downscale_factor: int) -> jax.Array:
    """(*, C, H r, W r) -> (*, C r^2, H, W), PixelShuffle's inverse; torch.nn.functional.pixel_unshuffle.

    Args:
      input: the (*, C, H r, W r) array.
      downscale_factor: r, a positive int: each r x r block of pixels becomes r^2 channels.

    Shape:
      (*, C, H r, W r) -> (*, C r^2, H, W), any number of leading axes (at least 3 axes in all);
      the inverse of pixel_shuffle with the same r.

    Example:
      >>> F.pixel_unshuffle(jnp.arange(4.0).reshape(1, 1, 2, 2), 2)[0, :, 0, 0]
      Array([0., 1., 2., 3.], dtype=float32)
      >>> F.pixel_unshuffle(jnp.ones((1, 1, 12, 12)), 3).shape
      (1, 9, 4, 4)
    """
    return _pixel_unshuffle("pixel_unshuffle", input, downscale_factor)


def _pixel_unshuffle(who: str, input: Any, downscale_factor: int) -> jax.Array:
    r = _check_factor(who, "downscale_factor", downscale_factor)
    shape = _check_rank3(who, input)
    *batch, c, h, w = shape
    for what, size, axis in (("height", h, -2), ("width", w, -1)):
        if size % r:
            raise TorchRuntimeError(f"{who} expects {what} to be divisible by downscale_factor, but "
                                    f"input.size({axis})={size} is not divisible by {r}")
    x = jnp.asarray(input).reshape(*batch, c, h // r, r, w // r, r)
    n = len(batch)
    x = jnp.transpose(x, (*range(n), n, n + 2, n + 4, n + 1, n + 3))  # (*, C, r, r, H/r, W/r)
    return x.reshape(*batch, c * r * r, h // r, w // r)


def channel_shuffle(input: Any, groups: int) -> jax.Array:
    """(N, C, *) with channels in `groups` groups, interleaved: (N, g, C/g, *) -> (N, C/g, g, *);
    torch.nn.functional.channel_shuffle (ShuffleNet).

    Args:
      input: the (N, C, *) array.
      groups: g, a positive int dividing C: the channels are read as (g, C / g) and written as (C / g, g).

    Shape:
      (N, C, *) -> (N, C, *), at least 3 axes; output channel i g + j is input channel j (C / g) + i.

    Example:
      >>> F.channel_shuffle(jnp.arange(6.0).reshape(1, 6, 1), 2)[0, :, 0]   # the groups 0 1 2 and 3 4 5, interleaved
      Array([0., 3., 1., 4., 2., 5.], dtype=float32)
    """
    return _channel_shuffle("channel_shuffle", input, groups)


def _channel_shuffle(who: str, input: Any, groups: int) -> jax.Array:
    if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
        raise TorchRuntimeError(f"{who}: Number of groups to divide channels in must be positive. Value of "
                                f"groups:{groups!r}")
    shape = fmt_shape(input)
    if len(shape) <= 2:
        raise TorchRuntimeError(f"{who} expects input with > 2 dims (N, C, *), but got input with sizes "
                                f"{list(shape)}")
    n, c, *rest = shape
    if c % groups:
        raise TorchRuntimeError(f"{who}: Number of channels must be divisible by groups. Got {c} channels and "
                                f"{groups} groups.")
    x = jnp.asarray(input).reshape(n, groups, c // groups, *rest)
    return jnp.swapaxes(x, 1, 2).reshape(shape)


def native_channel_shuffle(input: Any, groups: int) -> jax.Array:
    """Channel shuffle without torch's quantised-kernel dispatch; torch.nn.functional.native_channel_shuffle.

    The same permutation as `channel_shuffle`: (N, g, C/g, *) -> (N, C/g, g, *).

    Args:
      input: the (N, C, *) array, at least 3 axes.
      groups: g, a positive int dividing C.

    Shape:
      (N, C, *) -> (N, C, *); output channel i g + j is input channel j (C / g) + i.

    Example:
      >>> x = jnp.arange(6.0).reshape(1, 6, 1)   # 3 groups of 2 channels: 0 1 | 2 3 | 4 5
      >>> F.native_channel_shuffle(x, 3)[0, :, 0]
      Array([0., 2., 4., 1., 3., 5.], dtype=float32)
    """
    return _channel_shuffle("native_channel_shuffle", input, groups)


# -- the layers --------------------------------------------------------------------------------------


def PixelShuffle(upscale_factor: int) -> Layer:
    """Rearranges (*, C r^2, H, W) into (*, C, H r, W r); torch.nn.PixelShuffle. No parameters.

    Args:
      upscale_factor: r, a positive int: each group of r^2 channels becomes an r x r block of pixels.

    Shape:
      (*, C r^2, H, W) -> (*, C, H r, W r), any number of leading axes (at least 3 axes in all);
      out[..., c, h r + i, w r + j] = in[..., c r^2 + i r + j, h, w].

    Example:
      >>> y, _ = fl.PixelShuffle(3).apply({}, {}, jnp.ones((1, 9, 4, 4)))
      >>> y.shape
      (1, 1, 12, 12)
    """
    name = f"PixelShuffle(upscale_factor={upscale_factor})"
    _check_factor(name, "upscale_factor", upscale_factor)

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return _pixel_shuffle(name, input, upscale_factor), state

    return Layer(no_params, apply, name)


def PixelUnshuffle(downscale_factor: int) -> Layer:
    """Rearranges (*, C, H r, W r) into (*, C r^2, H, W); torch.nn.PixelUnshuffle. No parameters.

    Args:
      downscale_factor: r, a positive int: each r x r block of pixels becomes r^2 channels.

    Shape:
      (*, C, H r, W r) -> (*, C r^2, H, W), any number of leading axes (at least 3 axes in all);
      the inverse of pixel_shuffle with the same r.

    Example:
      >>> y, _ = fl.PixelUnshuffle(3).apply({}, {}, jnp.ones((2, 1, 12, 6)))
      >>> y.shape
      (2, 9, 4, 2)
    """
    name = f"PixelUnshuffle(downscale_factor={downscale_factor})"
    _check_factor(name, "downscale_factor", downscale_factor)

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return _pixel_unshuffle(name, input, downscale_factor), state

    return Layer(no_params, apply, name)


def ChannelShuffle(groups: int) -> Layer:
    """Interleaves the channels of (N, C, *) across `groups` groups; torch.nn.ChannelShuffle. No parameters.

    Args:
      groups: g, a positive int dividing C: the channels are read as (g, C / g) and written as (C / g, g).

    Shape:
      (N, C, *) -> (N, C, *), at least 3 axes; output channel i g + j is input channel j (C / g) + i.

    Example:
      >>> y, _ = fl.ChannelShuffle(2).apply({}, {}, jnp.arange(4.0).reshape(1, 4, 1))
      >>> y[0, :, 0]
      Array([0., 2., 1., 3.], dtype=float32)
    """
    name = f"ChannelShuffle(groups={groups})"
    if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{name}: Number of groups to divide channels in must be positive. Value of "
                         f"groups:{groups!r}")

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return _channel_shuffle(name, input, groups), state

    return Layer(no_params, apply, name)
