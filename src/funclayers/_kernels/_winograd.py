"""Winograd's F(2x2, 3x3): 3x3 stride-1 2-D convolutions with 2.25x fewer multiplications.

Used by: `Conv2d` / `F.conv2d` with a dense 3x3 stride-1 kernel, enough channels and output tiles
(`_conv_lowering.choose` picks "winograd" on CPU): most convolutions of ResNet-18 and the small
CNN, and each group of a grouped one. Forced (`method="winograd"`), it also computes a grouped
convolution in one pass (the products batched over groups: measured slower than one pass per
group, 27.9 vs 24-25 ms CPU per step on the 128->128 groups=4 benchmark layer) and a 3-D one with a
(kd, 3, 3) kernel (`conv3x3_depth`, below). Why (benchmarks/README.md, third session, isolated
forward + backward in one process):
64->64 on 32x32 maps 112 -> 73 ms, 128->128 @16 53 -> 34, 256->256 @8 47 -> 28, against XLA's
direct convolution.

The output is cut into 2x2 tiles; each tile needs the overlapping 4x4 input tile around it. With
the transforms B, G and A of Lavin and Gray (2015, "Fast algorithms for convolutional neural
networks"), a tile's output is A^T [(G g G^T) * (B^T d B)] A: the 3x3 kernel g and the 4x4 input
tile d become 4x4 arrays whose elementwise product, summed over input channels, is 16 matrix
products (one per position in the 4x4 tile) of the transformed weights and inputs. Those 16
products are where XLA's CPU matrix kernels run 2-3x faster than its direct convolution, and they
cost 16 / 36 of the direct method's multiplications.

The transforms only add and halve (their entries are 0, +-1 and +-1/2), so rounding is that of an
ordinary sum: float32 results are as close to float64 ones as the direct convolution's are
(measured against torch's float64 convolution; the parity tests hold at rtol 1e-5 / 1e-10). One
difference remains: an infinite input meets `inf - inf` inside the transform, so it turns its whole
output tile into NaN where a direct convolution gives +-inf in some of those cells.

Everything runs channels-major (channels, batch, height, width): moving the channel axis in front
of the batch axis is a cheap copy of whole planes, the 16 products are then plain
(out, in) x (in, tiles) matrix products, and the backward pass is the same three stages
transposed (the transpose of the tangent map, `_kernels._primitive.linear_call`): the input
gradient is 16 products with the transposed weights followed by the transposed input transform
(an overlap-add of tiles), the weight gradient 16 products of the output gradient's and the
input's transforms. The backward pass is made of differentiable operations, so grad of grad
works (tested against torch's double backward); the tangent (forward mode) is the same 16
products with the transformed tangents.

The transforms are written either as elementwise passes over tile rows or as one small matrix
product with a Kronecker product of the transform matrices, whichever measured faster both to run
and to compile (XLA compiles a concatenation of 16 computed pieces slowly).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._utils import zero_pad
from ._primitive import linear_call

Pairs = Sequence[tuple[int, int]]

# The transforms of F(2, 3) (Lavin and Gray's G and A^T; B^T is `_input_transform`), and their
# Kronecker products, which map a whole 3x3 kernel (9 entries, row-major) or 4x4 tile (16) at once.
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)
_G_G = np.kron(_G, _G)  # (16, 9): vec(G g G^T) = (G x G) vec(g)
_A_A = np.kron(_AT, _AT)  # (4, 16): vec(A^T m A) = (A^T x A^T) vec(m)


def _input_transform(d: list) -> list:
    """B^T d for the four rows d0..d3 of an input tile."""
    d0, d1, d2, d3 = d
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def _input_transform_t(t: list) -> list:
    """The transpose of `_input_transform`: B t."""
    t0, t1, t2, t3 = t
    return [t0, t1 - t2 + t3, t1 + t2 - t0, -t3]


def _output_transform_t(o: list) -> list:
    """A o for the two output rows o0, o1 of a tile's gradient: its four transformed rows."""
    o0, o1 = o
    return [o0, o0 + o1, o0 - o1, -o1]


def _tiles(a: jax.Array, axis: int, count: int) -> list:
    """Rows 0..3 of `count` overlapping 4-wide tiles at stride 2 along `axis` (length 2*count + 2)."""
    rows = []
    for offset in (0, 2):
        part = lax.slice_in_dim(a, offset, offset + 2 * count, axis=axis)
        part = part.reshape(a.shape[:axis] + (count, 2) + a.shape[axis + 1 :])
        rows += [lax.index_in_dim(part, j, axis=axis + 1, keepdims=False) for j in (0, 1)]
    return rows


def _untile(rows: list, axis: int) -> jax.Array:
    """The transpose of `_tiles`: tile rows 0..3 overlap-added back to length 2*count + 2."""
    low, high = (jnp.stack(rows[i : i + 2], axis=axis + 1) for i in (0, 2))
    shape = low.shape[:axis] + (2 * low.shape[axis],) + low.shape[axis + 2 :]
    widths = [(0, 0)] * len(shape)
    low_pad, high_pad = list(widths), list(widths)
    low_pad[axis], high_pad[axis] = (0, 2), (2, 0)
    return zero_pad(low.reshape(shape), low_pad) + zero_pad(high.reshape(shape), high_pad)


def _transform_input(xp: jax.Array, tiles: tuple) -> jax.Array:
    """(C, N, 2*th + 2, 2*tw + 2) padded input -> (16, C, N*th*tw): B^T d B for every tile."""
    rows = jnp.stack(_input_transform(_tiles(xp, 2, tiles[0])))  # (4, C, N, th, Wp)
    v = jnp.stack(_input_transform(_tiles(rows, 4, tiles[1])), axis=1)  # (4, 4, C, N, th, tw)
    return v.reshape(16, xp.shape[0], -1)


def _transform_input_t(dv: jax.Array, batch: int, tiles: tuple) -> jax.Array:
    """The transpose of `_transform_input`: (16, C, P) -> (C, N, 2*th + 2, 2*tw + 2)."""
    dv = dv.reshape(4, 4, dv.shape[1], batch, *tiles)
    rows = _untile(_input_transform_t([dv[:, b] for b in range(4)]), 4)  # (4, C, N, th, Wp)
    return _untile(_input_transform_t([rows[a] for a in range(4)]), 2)


def _transform_output(m: jax.Array, batch: int, tiles: tuple) -> jax.Array:
    """(16, K, N*th*tw) -> (N, K, 2*th, 2*tw): A^T m A for every tile, tiles put back in place."""
    o = _dot(jnp.asarray(_A_A, m.dtype), m.reshape(16, -1))  # (4, K*P): the 2x2 outputs of every tile
    o = o.reshape(2, 2, m.shape[1], batch, *tiles).transpose(3, 2, 4, 0, 5, 1)
    return o.reshape(batch, m.shape[1], 2 * tiles[0], 2 * tiles[1])


def _transform_output_t(dy: jax.Array, tiles: tuple) -> jax.Array:
    """The transpose of `_transform_output`: (N, K, 2*th, 2*tw) -> (16, K, N*th*tw).

    Two elementwise passes (columns, then rows) rather than a product with (A x A): measured
    faster inside the backward pass, and a 16-way concatenation compiles slowly.
    """
    d = jnp.swapaxes(dy, 0, 1).reshape(dy.shape[1], dy.shape[0], tiles[0], 2, tiles[1], 2)
    cols = jnp.stack(_output_transform_t([d[..., 0], d[..., 1]]))  # (4, K, N, th, 2, tw)
    dm = jnp.stack(_output_transform_t([cols[..., 0, :], cols[..., 1, :]]))  # (4, 4, K, N, th, tw)
    return dm.reshape(16, dy.shape[1], -1)


def geometry(shape: tuple, padding: Pairs) -> tuple:
    """(output size, tile count, padding that makes the input 2*tiles + 2 long) per spatial axis."""
    out = tuple(n + lo + hi - 2 for n, (lo, hi) in zip(shape[2:], padding, strict=True))
    tiles = tuple(-(-o // 2) for o in out)
    pads = tuple((lo, 2 * t + 2 - n - lo) for n, t, (lo, _) in zip(shape[2:], tiles, padding, strict=True))
    return out, tiles, pads


def _kernel_transform(w: jax.Array) -> jax.Array:
    """(K, C, 3, 3) -> (16, K, C): G g G^T for every (output, input) channel pair."""
    u = _dot(jnp.asarray(_G_G, w.dtype), w.reshape(-1, 9).T)
    return u.reshape(16, *w.shape[:2])


def _kernel_transform_t(du: jax.Array) -> jax.Array:
    """The transpose of `_kernel_transform`: (16, K, C) -> (K, C, 3, 3)."""
    dw = _dot(jnp.asarray(_G_G.T, du.dtype), du.reshape(16, -1))  # (9, K*C)
    return dw.T.reshape(*du.shape[1:], 3, 3)


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def _by_group(a: jax.Array, groups: int) -> jax.Array:
    """(16, groups * m, ...) -> (16, groups, m, ...)."""
    return a.reshape((16, groups, a.shape[1] // groups) + a.shape[2:])


def _products(u: jax.Array, v: jax.Array, groups: int) -> jax.Array:
    """The 16 (per group) products of transformed weights (16, K, C/g) and inputs (16, C, P): (16, K, P)."""
    if groups == 1:
        return lax.dot_general(u, v, (((2,), (1,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)
    m = lax.dot_general(
        _by_group(u, groups), _by_group(v, groups), (((3,), (2,)), ((0, 1), (0, 1))), precision=lax.Precision.HIGHEST
    )
    return m.reshape(16, -1, m.shape[-1])


def _forward(x: jax.Array, w: jax.Array, padding: Pairs, groups: int = 1):
    out, tiles, pads = geometry(x.shape, padding)
    xp = zero_pad(jnp.swapaxes(x, 0, 1), ((0, 0), (0, 0)) + pads)
    v = _transform_input(xp, tiles)
    u = _kernel_transform(w)
    m = _products(u, v, groups)
    y = _transform_output(m, x.shape[0], tiles)[:, :, : out[0], : out[1]]
    return y, (v, u)


@partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def conv3x3(x: jax.Array, w: jax.Array, padding: tuple, groups: int = 1) -> jax.Array:
    """Cross-correlation of (N, C, H, W) `x` with a (K, C/groups, 3, 3) `w`, stride 1, by F(2x2, 3x3).

    `padding` is ((top, bottom), (left, right)), non-negative, with an output of at least 1x1. With
    `groups` > 1 the 16 products are batched over the groups (block-diagonal weights).
    """
    return _forward(x, w, padding, groups)[0]


@partial(conv3x3.defjvp, symbolic_zeros=True)
def _conv3x3_jvp(padding, groups, primals, tangents):
    x, w = primals
    y, (v, u) = _forward(x, w, padding, groups)
    out, tiles, pads = geometry(x.shape, padding)
    batch = x.shape[0]

    def tangent(v, u, tx, tw):  # bilinear: the products of the transformed tangents
        m = None
        if tx is not None:
            vt = _transform_input(zero_pad(jnp.swapaxes(tx, 0, 1), ((0, 0), (0, 0)) + pads), tiles)
            m = _products(u, vt, groups)
        if tw is not None:
            mw = _products(_kernel_transform(tw), v, groups)
            m = mw if m is None else m + mw
        return [_transform_output(m, batch, tiles)[:, :, : out[0], : out[1]]]

    def transpose(cts, v, u):
        return list(_backward(v, u, cts[0], padding, groups))

    (ty,) = linear_call(tangent, transpose, (v, u), tangents, "winograd_conv3x3")
    return y, ty


def _backward(v: jax.Array, u: jax.Array, dy: jax.Array, padding: Pairs, groups: int = 1):
    x_shape = dy.shape[:1] + v.shape[1:2] + tuple(o + 2 - lo - hi for o, (lo, hi) in zip(dy.shape[2:], padding))
    out, tiles, pads = geometry(x_shape, padding)
    dy = zero_pad(dy, ((0, 0), (0, 0), (0, 2 * tiles[0] - out[0]), (0, 2 * tiles[1] - out[1])))
    dm = _transform_output_t(dy, tiles)  # (16, K, P)
    dv = _products_t_input(u, dm, groups)
    du = _products_t_weight(dm, v, groups)
    dxp = _transform_input_t(dv, x_shape[0], tiles)
    (top, _), (left, _) = pads
    dx = dxp[:, :, top : top + x_shape[2], left : left + x_shape[3]]
    return jnp.swapaxes(dx, 0, 1), _kernel_transform_t(du)


def _products_t_input(u: jax.Array, dm: jax.Array, groups: int) -> jax.Array:
    """The transpose of `_products` in the inputs: (16, K, C/g), (16, K, P) -> (16, C, P)."""
    if groups == 1:
        return lax.dot_general(u, dm, (((1,), (1,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)
    dv = lax.dot_general(
        _by_group(u, groups), _by_group(dm, groups), (((2,), (2,)), ((0, 1), (0, 1))), precision=lax.Precision.HIGHEST
    )  # (16, g, C/g, P)
    return dv.reshape(16, -1, dv.shape[-1])


def _products_t_weight(dm: jax.Array, v: jax.Array, groups: int) -> jax.Array:
    """The transpose of `_products` in the weights: (16, K, P), (16, C, P) -> (16, K, C/g)."""
    if groups == 1:
        return lax.dot_general(dm, v, (((2,), (2,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)
    du = lax.dot_general(
        _by_group(dm, groups), _by_group(v, groups), (((3,), (3,)), ((0, 1), (0, 1))), precision=lax.Precision.HIGHEST
    )  # (16, g, K/g, C/g)
    return du.reshape(16, -1, du.shape[-1])



def applies(x_shape: tuple, w_shape: tuple, stride: tuple, padding: Pairs, dilation: tuple, groups: int) -> bool:
    """Whether `conv3x3` computes this convolution: 2-D, 3x3, stride 1, no dilation (any groups)."""
    return (
        len(x_shape) == 4
        and tuple(w_shape[2:]) == (3, 3)
        and tuple(stride) == (1, 1)
        and tuple(dilation) == (1, 1)
        and all(lo >= 0 and hi >= 0 for lo, hi in padding)
        and all(n + lo + hi >= 3 for n, (lo, hi) in zip(x_shape[2:], padding, strict=True))
    )


# 3-D convolutions with a (kd, 3, 3) kernel: F(2x2, 3x3) over height and width, a direct sum over the
# kd depth taps. Every input plane is transformed once (not once per depth tap, as a sum of kd 2-D
# convolutions would) and the kd products of a depth window are summed before the one output
# transform; the backward pass likewise transforms the output gradient once and overlap-adds the
# input gradient's kd depth shifts before the one transposed input transform.


def _depth_window(v: jax.Array, tap: int, depth: int) -> jax.Array:
    """(16, C, N, Dp, T) -> (16, C, N * depth * T): the input planes depth tap `tap` meets."""
    window = lax.slice_in_dim(v, tap, tap + depth, axis=3)
    return window.reshape(16, v.shape[1], -1)


def _transform_input3d(x: jax.Array, padding: Pairs) -> jax.Array:
    """(N, C, D, H, W) -> (16, C, N, Dp, T): every padded input plane transformed, tile by tile."""
    batch, channels = x.shape[:2]
    _, tiles, pads = geometry(x.shape[:2] + x.shape[3:], padding[1:])
    xp = zero_pad(jnp.swapaxes(x, 0, 1), ((0, 0), (0, 0), tuple(padding[0])) + pads)  # (C, N, Dp, Hp, Wp)
    v = _transform_input(xp.reshape((channels, batch * xp.shape[2]) + xp.shape[3:]), tiles)
    return v.reshape(16, channels, batch, xp.shape[2], -1)


def _kernel_transform3d(w: jax.Array) -> jax.Array:
    """(K, C/g, kd, 3, 3) -> (16, kd, K, C/g): G g G^T for every depth tap and channel pair."""
    u = _kernel_transform(jnp.moveaxis(w, 2, 0).reshape((-1,) + w.shape[1:2] + w.shape[3:]))
    return u.reshape(16, w.shape[2], w.shape[0], w.shape[1])


def _forward3d(x: jax.Array, w: jax.Array, padding: Pairs, groups: int):
    out, tiles, _ = geometry(x.shape[:2] + x.shape[3:], padding[1:])
    v, u = _transform_input3d(x, padding), _kernel_transform3d(w)
    depth = v.shape[3] - w.shape[2] + 1
    y = _output3d(_products3d(u, v, depth, groups), x.shape[0], depth, tiles, out)
    return y, (v, u)


def _products3d(u: jax.Array, v: jax.Array, depth: int, groups: int) -> jax.Array:
    """Sum over depth taps of the products with the input planes each meets: (16, K, N * depth * T)."""
    m = None
    for tap in range(u.shape[1]):
        term = _products(u[:, tap], _depth_window(v, tap, depth), groups)
        m = term if m is None else m + term
    return m


def _products3d_t(u: jax.Array, v: jax.Array, dm: jax.Array, depth: int, groups: int) -> tuple:
    """The transpose of `_products3d`: (dv (16, C, N, Dp, T), du (16, kd, K, C/g))."""
    depth_padded = v.shape[3]
    dv, du = None, []
    for tap in range(u.shape[1]):
        du.append(_products_t_weight(dm, _depth_window(v, tap, depth), groups))
        shifted = _products_t_input(u[:, tap], dm, groups).reshape(v.shape[:3] + (depth, -1))
        shifted = zero_pad(shifted, ((0, 0), (0, 0), (0, 0), (tap, depth_padded - depth - tap), (0, 0)))
        dv = shifted if dv is None else dv + shifted
    return dv, jnp.stack(du, axis=1)


def _output3d(m: jax.Array, batch: int, depth: int, tiles: tuple, out: tuple) -> jax.Array:
    """(16, K, N * depth * T) -> (N, K, depth, H_out, W_out)."""
    y = _transform_output(m, batch * depth, tiles)[:, :, : out[0], : out[1]]  # (N * depth, K, H, W)
    return jnp.swapaxes(y.reshape((batch, depth) + y.shape[1:]), 1, 2)


@partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def conv3x3_depth(x: jax.Array, w: jax.Array, padding: tuple, groups: int = 1) -> jax.Array:
    """Cross-correlation of (N, C, D, H, W) `x` with a (K, C/groups, kd, 3, 3) `w`, stride 1.

    F(2x2, 3x3) over height and width, a direct sum over the depth taps. `padding` is three
    non-negative (low, high) pairs (depth, height, width), with an output of at least 1x1x1.
    """
    return _forward3d(x, w, padding, groups)[0]


@partial(conv3x3_depth.defjvp, symbolic_zeros=True)
def _conv3x3_depth_jvp(padding, groups, primals, tangents):
    x, w = primals
    y, (v, u) = _forward3d(x, w, padding, groups)
    x_shape, depth = tuple(x.shape), y.shape[2]
    out, tiles, _ = geometry(x_shape[:2] + x_shape[3:], padding[1:])

    def tangent(v, u, tx, tw):  # bilinear: the products of the transformed tangents
        m = None
        if tx is not None:
            m = _products3d(u, _transform_input3d(tx, padding), depth, groups)
        if tw is not None:
            mw = _products3d(_kernel_transform3d(tw), v, depth, groups)
            m = mw if m is None else m + mw
        return [_output3d(m, x_shape[0], depth, tiles, out)]

    def transpose(cts, v, u):
        return list(_backward3d(v, u, cts[0], x_shape, padding, groups))

    (ty,) = linear_call(tangent, transpose, (v, u), tangents, "winograd_conv3x3_depth")
    return y, ty


def _backward3d(v: jax.Array, u: jax.Array, dy: jax.Array, x_shape: tuple, padding: Pairs, groups: int):
    batch, channels = x_shape[:2]
    out, tiles, pads = geometry(x_shape[:2] + x_shape[3:], padding[1:])
    depth_taps, depth, depth_padded = u.shape[1], dy.shape[2], v.shape[3]
    dy = jnp.swapaxes(dy, 1, 2).reshape((batch * depth,) + dy.shape[1:2] + dy.shape[3:])  # (N * depth, K, H, W)
    dy = zero_pad(dy, ((0, 0), (0, 0), (0, 2 * tiles[0] - out[0]), (0, 2 * tiles[1] - out[1])))
    dm = _transform_output_t(dy, tiles)  # (16, K, N * depth * T)
    dv, du = _products3d_t(u, v, dm, depth, groups)
    dxp = _transform_input_t(dv.reshape(16, channels, -1), batch * depth_padded, tiles)  # (C, N * Dp, Hp, Wp)
    dxp = dxp.reshape((channels, batch, depth_padded) + dxp.shape[2:])
    (front, _), (top, _), (left, _) = padding[0], *pads
    dx = dxp[:, :, front : front + x_shape[2], top : top + x_shape[3], left : left + x_shape[4]]
    dw = _kernel_transform_t(du.reshape(16, -1, u.shape[3]))  # (kd * K, C/g, 3, 3)
    dw = jnp.moveaxis(dw.reshape((depth_taps, u.shape[2]) + dw.shape[1:]), 0, 2)
    return jnp.swapaxes(dx, 0, 1), dw


def applies3d(x_shape: tuple, w_shape: tuple, stride: tuple, padding: Pairs, dilation: tuple) -> bool:
    """Whether `conv3x3_depth` computes this convolution: 3-D, (kd, 3, 3), stride 1, no dilation."""
    return (
        len(x_shape) == 5
        and tuple(w_shape[3:]) == (3, 3)
        and tuple(stride) == (1, 1, 1)
        and tuple(dilation) == (1, 1, 1)
        and all(lo >= 0 and hi >= 0 for lo, hi in padding)
        and x_shape[2] + sum(padding[0]) >= w_shape[2]
        and all(n + lo + hi >= 3 for n, (lo, hi) in zip(x_shape[3:], padding[1:], strict=True))
    )
