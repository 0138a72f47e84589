"""Dense 3-D convolutions with a (kd, 3, 3) kernel, stride 1: the depth taps stacked, Winograd F(2x2, 3x3).

Used by: `Conv3d` / `F.conv3d` through `_conv_lowering`'s "depth" lowering on CPU, when the
stacked 2-D convolution it stands for would be Winograd's. The arithmetic is
`_winograd.conv3x3`'s on the input whose channels are the kd depth-shifted planes stacked
((N*D, kd*C, H, W) -> (N*D, K, H, W)): the same transforms and the same 16 products (the input
gradient's sums regrouped: the depth overlap-add comes before the untile). What differs is how the
arrays around the products are laid out and built, so that XLA writes fewer and smaller ones:

- The transformed input: every depth plane transformed once (rows, then columns), then the kd
  depth windows of the transformed planes concatenated (contiguous blocks), where the stacked 2-D
  convolution wrote the stacked input (kd x the input), its row transform, then the tiles.
- The input gradient: the depth overlap-add on the transformed gradient (C channels, not kd*C),
  and the untile, each written as a concatenation of partial sums; as pads and adds, XLA
  materialised every padded term (kd copies of 18.9 MB for the benchmark).
- The output transform: elementwise and fused with the interleave into y (one pass over m), not
  `_winograd`'s (4, 16) product followed by a transposing copy.
- Everything channel-major, (16, channels, P) with P = N*D*th*tw, as `_winograd`.

Why (benchmarks/README.md, issue 28, helper `c3d`): the benchmark's Conv3d(16, 32, 3, padding=1)
on (4, 16, 16, 32, 32) spent more of its step moving those arrays than in the products. Against
the stacked 2-D convolution, same process: step wall 54.5 -> 41.0 ms, CPU 85.3 -> 71.6 ms, XLA
temp 179 -> 146 MiB (the memory-optimised scheduler: 99 -> 120 MiB).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import zero_pad
from . import _winograd
from ._primitive import linear_call

# B^T (input transform) and A (transpose of the output transform) as, per transformed row, the
# (tile row, sign) terms: `_winograd._input_transform` and `_winograd._output_transform_t`.
_BT = (((0, 1), (2, -1)), ((1, 1), (2, 1)), ((2, 1), (1, -1)), ((1, 1), (3, -1)))
_A = (((0, 1),), ((0, 1), (1, 1)), ((0, 1), (1, -1)), ((1, -1),))
_AT = (((0, 1), (1, 1), (2, 1)), ((1, 1), (2, -1), (3, -1)))  # A^T (output transform), per output row


def _combine(rows: list, terms: tuple) -> jax.Array:
    """The sum of sign * rows[index] over `terms`, left to right (the order `_winograd` adds in)."""
    (index, sign), rest = terms[0], terms[1:]
    out = rows[index] if sign > 0 else -rows[index]
    for index, sign in rest:
        out = out + rows[index] if sign > 0 else out - rows[index]
    return out


def _strided(a: jax.Array, axis: int, count: int, rows: int) -> list:
    """Rows 0..rows-1 of `count` tiles at stride 2 along `axis`: a[2i + r] for each r."""
    return [lax.slice_in_dim(a, r, r + 2 * (count - 1) + 1, 2, axis=axis) for r in range(rows)]


def _transform(a: jax.Array, terms: tuple, tiles: tuple) -> jax.Array:
    """(..., Hp, Wp) -> (16, ..., th, tw): per tile, the rows then the columns combined by `terms`
    (`_BT`: 4-row tiles at stride 2; `_A`: 2-row tiles)."""
    size = 1 + max(index for row in terms for index, _ in row)
    rows = _strided(a, a.ndim - 2, tiles[0], size)
    rows = jnp.stack([_combine(rows, row_terms) for row_terms in terms])
    cols = _strided(rows, rows.ndim - 1, tiles[1], size)
    v = jnp.stack([_combine(cols, col_terms) for col_terms in terms], axis=1)
    return v.reshape((-1,) + v.shape[2:])


def _transform_input(xp: jax.Array, depth_taps: int, tiles: tuple) -> jax.Array:
    """(N, C, D + kd - 1, 2*th + 2, 2*tw + 2) padded input -> (16, kd*C, P) with P = N*D*th*tw:
    B^T d B for every tile of every depth-shifted plane; stacked channel
    tap * C + c is channel c of plane d + tap.

    Every plane is transformed once, then the kd depth windows of the transformed planes are
    stacked (one concatenation of contiguous blocks)."""
    depth = xp.shape[2] - depth_taps + 1
    v0 = _transform(jnp.swapaxes(xp, 0, 1), _BT, tiles)  # (16, C, N, D + kd - 1, th, tw)
    v = jnp.concatenate([lax.slice_in_dim(v0, t, t + depth, axis=3) for t in range(depth_taps)], axis=1)
    return v.reshape(v.shape[:2] + (-1,))


def _overlap_add(a: jax.Array, axis: int, taps_axis: int) -> jax.Array:
    """sum over taps t of a[tap t] shifted by t along `axis` (length D -> D + taps - 1), written as a
    concatenation of the partial sums of each output range (one pass, no padded copies)."""
    taps, length = a.shape[taps_axis], a.shape[axis]
    terms = [lax.index_in_dim(a, t, taps_axis, keepdims=False) for t in range(taps)]
    axis -= 1 if taps_axis < axis else 0
    pieces = []
    for start in range(length + taps - 1):  # output planes [start, start + 1), grouped below
        pieces.append([(t, start - t) for t in range(taps) if 0 <= start - t < length])
    out, begin = [], 0
    while begin < len(pieces):  # runs of output planes with the same taps
        end = begin
        while end + 1 < len(pieces) and [t for t, _ in pieces[end + 1]] == [t for t, _ in pieces[begin]]:
            end += 1
        total = None
        for t, src in pieces[begin]:
            part = lax.slice_in_dim(terms[t], src, src + end - begin + 1, axis=axis)
            total = part if total is None else total + part
        out.append(total)
        begin = end + 1
    return jnp.concatenate(out, axis=axis)


def _transform_input_t(dv: jax.Array, shape: tuple, tiles: tuple) -> jax.Array:
    """The transpose of `_transform_input`: (16, kd*C, P) -> `shape` = (N, C, Dp, Hp, Wp)."""
    channels, padded_depth = shape[1], shape[2]
    depth_taps = dv.shape[1] // channels
    depth = padded_depth - depth_taps + 1
    dv = dv.reshape((16, depth_taps, channels, shape[0], depth) + tiles)
    # Tap t of plane d came from padded plane d + t: the depth overlap-add, still transformed.
    total = _overlap_add(dv, axis=4, taps_axis=1)  # (16, C, N, Dp, th, tw)
    total = total.reshape((4, 4) + total.shape[1:])
    cols = [_untile(_winograd._input_transform_t([total[a, b] for b in range(4)]), 4) for a in range(4)]
    return jnp.swapaxes(_untile(_winograd._input_transform_t(cols), 3), 0, 1)


def _untile(rows: list, axis: int) -> jax.Array:
    """`_winograd._untile` (tile rows 0..3 at stride 2 overlap-added back to length 2*count + 2) as
    two overlap-adds by `_overlap_add` (rows r and r + 2 of neighbouring tiles) and an interleave."""
    phases = [_overlap_add(jnp.stack([rows[r], rows[r + 2]]), axis + 1, 0) for r in (0, 1)]
    out = jnp.stack(phases, axis=axis + 1)  # (..., count + 1, 2, ...)
    return out.reshape(out.shape[:axis] + (2 * out.shape[axis],) + out.shape[axis + 2 :])


def _transform_output(m: jax.Array, batch: int, depth: int, tiles: tuple) -> jax.Array:
    """(16, K, P) -> (N, K, D, 2*th, 2*tw): A^T m A for every tile, put back in place.

    Elementwise (the rows of A^T, then its columns), so that XLA fuses it with the interleave into
    one pass over m, where `_winograd`'s (4, 16) product wrote a (4, K*P) array and a transposing
    copy followed (the benchmark's step, same process, 4 runs: wall -0.9 to -2.5 ms of 35-46, CPU
    0 to -3.6 ms; benchmarks/README.md, helper `c3d2`)."""
    channels = m.shape[1]
    m = m.reshape((4, 4, channels, batch, depth) + tiles)
    rows = [_combine([m[i] for i in range(4)], terms) for terms in _AT]  # 2 x (4, K, N, D, th, tw)
    o = jnp.stack([jnp.stack([_combine([r[j] for j in range(4)], terms) for terms in _AT]) for r in rows])
    o = o.transpose(3, 2, 4, 5, 0, 6, 1)  # (N, K, D, th, 2, tw, 2)
    return o.reshape((batch, channels, depth, 2 * tiles[0], 2 * tiles[1]))


def _transform_output_t(dy: jax.Array, tiles: tuple) -> jax.Array:
    """The transpose of `_transform_output`: (N, K, D, 2*th, 2*tw) -> (16, K, P)."""
    dm = _transform(jnp.swapaxes(dy, 0, 1), _A, tiles)  # (16, K, N, D, th, tw)
    return dm.reshape(dm.shape[:2] + (-1,))


def _geometry(x_shape: tuple, depth_taps: int, padding: tuple):
    """(output size (D, H, W), tiles, padding of every spatial axis that makes H, W 2*tiles + 2)."""
    out, tiles, pads = _winograd.geometry(x_shape[:2] + x_shape[3:], padding[1:])
    depth = x_shape[2] + sum(padding[0]) - depth_taps + 1
    return (depth,) + out, tiles, (tuple(padding[0]),) + pads


def _kernel(w: jax.Array) -> jax.Array:
    """(K, C, kd, 3, 3) -> (16, K, kd*C): G g G^T of the depth-stacked 2-D kernel."""
    w2 = jnp.swapaxes(w, 1, 2).reshape((w.shape[0], w.shape[1] * w.shape[2], 3, 3))
    return _winograd._kernel_transform(w2)


def _kernel_t(du: jax.Array, channels: int) -> jax.Array:
    """The transpose of `_kernel`: (16, K, kd*C) -> (K, C, kd, 3, 3)."""
    dw2 = _winograd._kernel_transform_t(du)  # (K, kd*C, 3, 3)
    return jnp.swapaxes(dw2.reshape((dw2.shape[0], -1, channels, 3, 3)), 1, 2)


_products = _winograd._products
_products_t_input = _winograd._products_t_input
_products_t_weight = _winograd._products_t_weight


def _forward(x: jax.Array, w: jax.Array, padding: tuple):
    out, tiles, pads = _geometry(x.shape, w.shape[2], padding)
    v = _transform_input(zero_pad(x, ((0, 0), (0, 0)) + pads), w.shape[2], tiles)
    u = _kernel(w)
    y = _transform_output(_products(u, v), x.shape[0], out[0], tiles)
    return y[:, :, :, : out[1], : out[2]], (v, u)


def applies(x_shape: tuple, w_shape: tuple, stride: tuple, padding, dilation: tuple, groups: int) -> bool:
    """Whether `conv3d` computes this convolution: dense 3-D, a (kd, 3, 3) kernel, stride 1, no
    dilation, non-negative padding and an output of at least 1x1x1."""
    return (
        len(x_shape) == 5
        and groups == 1
        and tuple(w_shape[3:]) == (3, 3)
        and tuple(stride) == (1, 1, 1)
        and tuple(dilation) == (1, 1, 1)
        and all(lo >= 0 and hi >= 0 for lo, hi in padding)
        and all(n + lo + hi >= k for n, (lo, hi), k in zip(x_shape[2:], padding, w_shape[2:], strict=True))
    )


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def conv3d(x: jax.Array, w: jax.Array, padding: tuple) -> jax.Array:
    """Cross-correlation of (N, C, D, H, W) `x` with a (K, C, kd, 3, 3) `w`, stride 1 (see `applies`).

    `padding` is ((front, back), (top, bottom), (left, right)).
    """
    return _forward(x, w, padding)[0]


@partial(conv3d.defjvp, symbolic_zeros=True)
def _conv3d_jvp(padding, primals, tangents):
    x, w = primals
    y, (v, u) = _forward(x, w, padding)
    out, tiles, pads = _geometry(x.shape, w.shape[2], padding)
    batch, depth_taps = x.shape[0], w.shape[2]

    def tangent(v, u, tx, tw):  # bilinear: the products of the transformed tangents
        m = None
        if tx is not None:
            vt = _transform_input(zero_pad(tx, ((0, 0), (0, 0)) + pads), depth_taps, tiles)
            m = _products(u, vt)
        if tw is not None:
            mw = _products(_kernel(tw), v)
            m = mw if m is None else m + mw
        return [_transform_output(m, batch, out[0], tiles)[:, :, :, : out[1], : out[2]]]

    def transpose(cts, v, u):
        return list(_backward(v, u, cts[0], x.shape, padding))

    (ty,) = linear_call(tangent, transpose, (v, u), tangents, "winograd_conv3d")
    return y, ty


def _backward(v: jax.Array, u: jax.Array, dy: jax.Array, x_shape: tuple, padding: tuple):
    depth_taps = u.shape[2] // x_shape[1]
    out, tiles, pads = _geometry(x_shape, depth_taps, padding)
    dy = zero_pad(dy, ((0, 0), (0, 0), (0, 0), (0, 2 * tiles[0] - out[1]), (0, 2 * tiles[1] - out[2])))
    dm = _transform_output_t(dy, tiles)
    du = _products_t_weight(dm, v)
    dv = _products_t_input(u, dm)
    padded = x_shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(x_shape[2:], pads, strict=True))
    dxp = _transform_input_t(dv, padded, tiles)
    starts = tuple(lo for lo, _ in pads)
    dx = lax.slice(dxp, (0, 0) + starts, x_shape[:2] + tuple(s + n for s, n in zip(starts, x_shape[2:], strict=True)))
    return dx, _kernel_t(du, x_shape[1])
