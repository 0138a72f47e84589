"""Sliding blocks: Unfold (im2col) and Fold (col2im), their functional ops unfold and fold.

Layout is torch's: `unfold` maps (N, C, H, W) to (N, C * kh * kw, L), the block dimension
ordered channel-major then kernel row then kernel column, and L = number of block rows * block
columns. `fold` is its adjoint (the transpose), summing overlapping values.

Both lower to strided slices of the zero-padded image (unfold) and interior-padded adds (fold):
no gathers or scatters, so each is the other's cheap gradient.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ._layer import Layer, no_params
from ._utils import TorchRuntimeError, check_floating, fmt_shape

# --------------------------------------------------------------------------------------------
# argument helpers
# --------------------------------------------------------------------------------------------


def _pair(value: Any, name: str, who: str) -> tuple[int, int]:
    """torch's `_pair` then im2col's "expected ... equals to 2" check, with ints only."""
    values = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(values) != 2:
        raise TorchRuntimeError(f"{who}: It is expected {name} equals to 2, but got size {len(values)} "
                                f"({name}={value!r}).")
    for i, v in enumerate(values):
        try:
            if isinstance(v, bool):
                raise TypeError
            operator.index(v)
        except TypeError:
            raise TypeError(f"{who}: argument '{name}' must be tuple of ints, but found element of type "
                            f"{type(v).__name__} at pos {i}.") from None
    return int(values[0]), int(values[1])


def _check_block_args(who: str, kernel_size: tuple, dilation: tuple, padding: tuple, stride: tuple) -> None:
    """torch's im2col/col2im argument checks (Im2Col.cpp / Col2Im.cpp shape checks)."""
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = kernel_size, dilation, padding, stride
    if kh <= 0 or kw <= 0:
        raise TorchRuntimeError(f"{who}: kernel size should be greater than zero, but got "
                                f"kernel_height: {kh} kernel_width: {kw}")
    if sh <= 0 or sw <= 0:
        raise TorchRuntimeError(f"{who}: stride should be greater than zero, but got stride_height: {sh} "
                                f"stride_width: {sw}")
    if dh <= 0 or dw <= 0:
        raise TorchRuntimeError(f"{who}: dilation should be greater than zero, but got dilation_height: {dh} "
                                f"dilation_width: {dw}")
    if ph < 0 or pw < 0:
        raise TorchRuntimeError(f"{who}: padding should be non-negative, but got pad_height: {ph} "
                                f"pad_width: {pw}")


def _blocks(size: int, kernel: int, dilation: int, padding: int, stride: int) -> int:
    """Number of block positions along one dim, with C++'s truncating division as torch computes it."""
    span = size + 2 * padding - (dilation * (kernel - 1) + 1)
    return int(span / stride) + 1 if span < 0 else span // stride + 1


def _shape_list(shape: tuple) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _parse(who: str, kernel_size: Any, dilation: Any, padding: Any, stride: Any) -> tuple:
    args = (_pair(kernel_size, "kernel_size", who), _pair(dilation, "dilation", who),
            _pair(padding, "padding", who), _pair(stride, "stride", who))
    _check_block_args(who, *args)
    return args


# --------------------------------------------------------------------------------------------
# lowering (4D, batched)
# --------------------------------------------------------------------------------------------

def _block_window(k: int, d: int, s: int, blocks: int) -> tuple[int, int, int]:
    """(start, stop, stride) along the padded image of kernel offset k's samples over all blocks."""
    start = k * d
    return start, start + (blocks - 1) * s + 1, s


def _tiles(kernel_size, dilation, stride) -> bool:
    """Blocks tile the image without overlap or gaps: stride == kernel, no dilation (or a 1-wide kernel)."""
    return all(s == k and (d == 1 or k == 1) for k, d, s in zip(kernel_size, dilation, stride, strict=True))


@partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _unfold4d(x: jax.Array, kernel_size, dilation, padding, stride, blocks) -> jax.Array:
    n, c = x.shape[:2]
    (kh, kw), (dh, dw), (ph, pw), (sh, sw), (bh, bw) = kernel_size, dilation, padding, stride, blocks
    if ph or pw:
        x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (0, 0, 0), (ph, ph, 0), (pw, pw, 0)])
    if _tiles(kernel_size, dilation, stride):
        # non-overlapping blocks (ViT's patchify): a reshape and a transpose, no slicing
        tiles = lax.slice(x, (0, 0, 0, 0), (n, c, bh * kh, bw * kw)).reshape(n, c, bh, kh, bw, kw)
        return tiles.transpose(0, 1, 3, 5, 2, 4).reshape(n, c * kh * kw, bh * bw)
    rows = []
    for i in range(kh):
        r0, r1, _ = _block_window(i, dh, sh, bh)
        for j in range(kw):
            c0, c1, _ = _block_window(j, dw, sw, bw)
            rows.append(lax.slice(x, (0, 0, r0, c0), (n, c, r1, c1), (1, 1, sh, sw)))
    # (N, C, kh*kw, bh, bw): channel-major, then kernel row, then kernel column, as im2col lays it out
    return jnp.stack(rows, axis=2).reshape(n, c * kh * kw, bh * bw)


@partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6))
def _fold4d(cols: jax.Array, output_size, kernel_size, dilation, padding, stride, blocks) -> jax.Array:
    n = cols.shape[0]
    (h, w), (kh, kw), (dh, dw), (ph, pw), (sh, sw), (bh, bw) = (output_size, kernel_size, dilation, padding,
                                                              stride, blocks)
    c = cols.shape[1] // (kh * kw)
    hp, wp = h + 2 * ph, w + 2 * pw
    zero = jnp.zeros((), cols.dtype)
    if _tiles(kernel_size, dilation, stride):
        tiles = cols.reshape(n, c, kh, kw, bh, bw).transpose(0, 1, 4, 2, 5, 3).reshape(n, c, bh * kh, bw * kw)
        out = lax.pad(tiles, zero, [(0, 0, 0), (0, 0, 0), (0, hp - bh * kh, 0), (0, wp - bw * kw, 0)])
        return lax.slice(out, (0, 0, ph, pw), (n, c, ph + h, pw + w))
    cols = cols.reshape(n, c, kh * kw, bh, bw)
    out = None
    # the adjoint of _unfold4d: each kernel offset's samples go back to their strided positions
    # (interior padding = stride - 1); XLA fuses the pads and adds into one pass over the output
    for i in range(kh):
        r0, r1, _ = _block_window(i, dh, sh, bh)
        for j in range(kw):
            c0, c1, _ = _block_window(j, dw, sw, bw)
            placed = lax.pad(cols[:, :, i * kw + j], zero,
                             [(0, 0, 0), (0, 0, 0), (r0, hp - r1, sh - 1), (c0, wp - c1, sw - 1)])
            out = placed if out is None else out + placed
    if ph or pw:
        out = lax.slice(out, (0, 0, ph, pw), (n, c, ph + h, pw + w))
    return out


# --------------------------------------------------------------------------------------------
# functional ops
# --------------------------------------------------------------------------------------------

def unfold(input: Any, kernel_size: int | Sequence[int], dilation: int | Sequence[int] = 1,
           padding: int | Sequence[int] = 0, stride: int | Sequence[int] = 1) -> jax.Array:
    """Extracts sliding local blocks as columns (im2col); torch.nn.functional.unfold.

    Args:
      input: (N, C, H, W) or unbatched (C, H, W), floating.
      kernel_size: the size of the sliding blocks, an int or a pair.
      dilation: the stride of elements within a block, an int or a pair. Default: 1.
      padding: implicit zero padding on both sides of the input, an int or a pair. Default: 0.
      stride: the stride of the sliding blocks, an int or a pair. Default: 1.

    Shape: (N, C, H, W) -> (N, C * kh * kw, L), L = blocks_h * blocks_w with
      blocks = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1;
      (C, H, W) -> (C * kh * kw, L).

    Example:
      >>> cols = F.unfold(jnp.ones((2, 5, 3, 4)), kernel_size=(2, 3))
      >>> cols.shape
      (2, 30, 4)
    """
    return _unfold(input, kernel_size, dilation, padding, stride, "unfold")


def _unfold(input, kernel_size, dilation, padding, stride, who: str) -> jax.Array:
    kernel_size, dilation, padding, stride = _parse(who, kernel_size, dilation, padding, stride)
    shape = fmt_shape(input)
    if len(shape) not in (3, 4) or 0 in shape[-3:]:
        raise TorchRuntimeError(f"{who}: Expected 3D or 4D (batch mode) tensor with possibly 0 batch size "
                                f"and other non-zero dimensions for input, but got: {_shape_list(shape)} "
                                f"(an unbatched (C, H, W) or batched (N, C, H, W) image).")
    check_floating(who, input)
    blocks = tuple(_blocks(shape[-2 + i], kernel_size[i], dilation[i], padding[i], stride[i])
                   for i in range(2))
    if blocks[0] < 1 or blocks[1] < 1:
        raise TorchRuntimeError(
            f"{who}: Given input with spatial size {shape[-2:]}, kernel_size={kernel_size}, "
            f"dilation={dilation}, padding={padding}, calculated shape of the array of sliding blocks as "
            f"{blocks}, but its components must be at least one.")
    x = jnp.asarray(input)
    batched = x.ndim == 4
    out = _unfold4d(x if batched else x[None], kernel_size, dilation, padding, stride, blocks)
    return out if batched else out[0]


def fold(input: Any, output_size: int | Sequence[int], kernel_size: int | Sequence[int],
         dilation: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
         stride: int | Sequence[int] = 1) -> jax.Array:
    """Sums sliding local blocks back into an image (col2im, the adjoint of unfold); torch.nn.functional.fold.

    Args:
      input: (N, C * kh * kw, L) or unbatched (C * kh * kw, L) columns, floating.
      output_size: (H, W) of the image (an int means square).
      kernel_size: the size of the sliding blocks, an int or a pair, as given to the `unfold` that
        made the columns.
      dilation: the stride of elements within a block, an int or a pair. Default: 1.
      padding: implicit zero padding on both sides of the image, an int or a pair. Default: 0.
      stride: the stride of the sliding blocks, an int or a pair. Default: 1.

    Shape: (N, C * kh * kw, L) -> (N, C, H, W); (C * kh * kw, L) -> (C, H, W). L must equal
      blocks_h * blocks_w computed from `output_size` as in `unfold`.

    Example:
      >>> img = F.fold(jnp.ones((1, 12, 12)), output_size=(4, 5), kernel_size=2)
      >>> img.shape
      (1, 3, 4, 5)
    """
    return _fold(input, output_size, kernel_size, dilation, padding, stride, "fold")


def _fold(input, output_size, kernel_size, dilation, padding, stride, who: str) -> jax.Array:
    output_size = _pair(output_size, "output_size", who)
    kernel_size, dilation, padding, stride = _parse(who, kernel_size, dilation, padding, stride)
    shape = fmt_shape(input)
    if len(shape) not in (2, 3) or 0 in shape[-2:]:
        raise TorchRuntimeError(f"{who}: Expected 2D or 3D (batch mode) tensor for input with possibly 0 "
                                f"batch size and non-zero dimensions for input, but got: "
                                f"{_shape_list(shape)} (unbatched (C * kh * kw, L) or batched "
                                f"(N, C * kh * kw, L) columns).")
    check_floating(who, input)
    kernel_prod = kernel_size[0] * kernel_size[1]
    if shape[-2] % kernel_prod:
        raise TorchRuntimeError(f"{who}: Expected size of input's dimension 1 to be divisible by the product "
                                f"of kernel_size, but got input.size(1)={shape[-2]} and "
                                f"kernel_size={kernel_size}.")
    blocks = tuple(_blocks(output_size[i], kernel_size[i], dilation[i], padding[i], stride[i])
                   for i in range(2))
    if shape[-1] != blocks[0] * blocks[1] or blocks[0] < 1 or blocks[1] < 1:
        raise TorchRuntimeError(
            f"{who}: Given output_size={output_size}, kernel_size={kernel_size}, dilation={dilation}, "
            f"padding={padding}, stride={stride}, expected size of input's dimension 2 to match the "
            f"calculated number of sliding blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, "
            f"but got input.size(2)={shape[-1]}.")
    cols = jnp.asarray(input)
    batched = cols.ndim == 3
    out = _fold4d(cols if batched else cols[None], output_size, kernel_size, dilation, padding, stride,
                  blocks)
    return out if batched else out[0]


# --------------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------------

def Unfold(kernel_size: int | Sequence[int], dilation: int | Sequence[int] = 1,
           padding: int | Sequence[int] = 0, stride: int | Sequence[int] = 1) -> Layer:
    """Extracts sliding local blocks as columns; torch.nn.Unfold (see `unfold`).

    Args:
      kernel_size: the block size, an int or (kh, kw).
      dilation: spacing between a block's elements. Default: 1.
      padding: implicit zero padding on both sides of each spatial dim. Default: 0.
      stride: step between blocks. Default: 1.

    Shape: (N, C, H, W) -> (N, C * kh * kw, L); (C, H, W) -> (C * kh * kw, L).

    Example:
      >>> layer = fl.Unfold(kernel_size=(2, 3))
      >>> cols, _ = layer.apply({}, {}, jnp.ones((2, 5, 3, 4)))
      >>> cols.shape
      (2, 30, 4)
    """
    name = f"Unfold(kernel_size={kernel_size}, dilation={dilation}, padding={padding}, stride={stride})"
    _parse("Unfold", kernel_size, dilation, padding, stride)

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return _unfold(input, kernel_size, dilation, padding, stride, "Unfold"), state

    return Layer(no_params, apply, name)


def Fold(output_size: int | Sequence[int], kernel_size: int | Sequence[int],
         dilation: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
         stride: int | Sequence[int] = 1) -> Layer:
    """Sums sliding local blocks back into an image; torch.nn.Fold (see `fold`).

    Args:
      output_size: the image's (H, W), an int for square.
      kernel_size: the size of the sliding blocks, an int or a pair, as for the `Unfold` that
        produced the columns.
      dilation: the stride of elements within a block, an int or a pair. Default: 1.
      padding: implicit zero padding on both sides of the image, an int or a pair. Default: 0.
      stride: the stride of the sliding blocks, an int or a pair. Default: 1.

    Shape: (N, C * kh * kw, L) -> (N, C, H, W); (C * kh * kw, L) -> (C, H, W).

    Example:
      >>> layer = fl.Fold(output_size=(4, 5), kernel_size=(2, 2))
      >>> img, _ = layer.apply({}, {}, jnp.ones((1, 12, 12)))
      >>> img.shape
      (1, 3, 4, 5)
    """
    name = (f"Fold(output_size={output_size}, kernel_size={kernel_size}, dilation={dilation}, "
            f"padding={padding}, stride={stride})")
    _pair(output_size, "output_size", "Fold")
    _parse("Fold", kernel_size, dilation, padding, stride)

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return _fold(input, output_size, kernel_size, dilation, padding, stride, "Fold"), state

    return Layer(no_params, apply, name)


__all__ = ["unfold", "fold", "Unfold", "Fold"]
