"""Winograd's F(2x2, 3x3): 3x3 stride-1 2-D convolutions with 2.25x fewer multiplications.

Used by: `Conv2d` / `F.conv2d` with a dense 3x3 stride-1 kernel, enough channels and output tiles
(`_conv_lowering.choose` picks "winograd" on CPU): most convolutions of ResNet-18 and the small
CNN, each group of a grouped one ("split" in `_conv_lowering`), a dense (kd, 3, 3) 3-D one through
`_conv3d` (its transforms and products are these) and the depth-stacked planes of a grouped 3-D one
("depth"). Why (benchmarks/README.md, third session, isolated forward + backward in one
process):
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

F(4x4, 3x3) (36 products per 16 outputs, a transformed input 2.25x the input's size instead of 4x)
was tried and dropped (benchmarks/README.md, issue 28): its float32 results miss the parity
tolerance (rtol 1e-5, atol 5e-5) against torch from 32 channels on, even with the best-conditioned
points measured (0, +-1, 1/2, -2, inf; max error 2-7x F(2, 3)'s, 0.5-4% of the outputs outside
at 64-256 channels), and the small CNN's step got slower with it (CPU ms 106.8 -> 115.1) although its
two layers alone were 1-2% faster.

Tiles as rows (`(16, P, C) x (16, C, K)`, the small transformed weights as the packed right-hand
side, the input transformed from channels-last) was tried and dropped (issue 28): XLA's temp
unchanged (98 MiB for 64->64 on (32, 64, 32, 32)), first-call peak RSS 459 -> 455 MiB, but the
small CNN's step 112 -> 122 ms CPU and ResNet-18's 1036 -> 1075. So was an input-gradient
transform without its two padded halves (one fusion, or a concatenating overlap-add): temp 98 ->
96 MiB, the 64->64 step 6-10% slower; at that size the temp is three transformed arrays live at
once, which XLA's schedule, not this code, decides.
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


def _products(u: jax.Array, v: jax.Array) -> jax.Array:
    """The 16 products of transformed weights (16, K, C) and inputs (16, C, P): (16, K, P)."""
    return lax.dot_general(u, v, (((2,), (1,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)


def _products_spread(u: jax.Array, v: jax.Array) -> jax.Array:
    """`_products` as XLA:CPU's Eigen batched dot, which spreads over the cores (`conv3x3`'s).

    The small `u` is transposed to (16, C, K) behind an optimization barrier (XLA folds a plain
    transpose back into the dot), so that the product contracts both operands' axis 1: the form
    XLA:CPU runs as Eigen's dot, where the canonical one goes to YNNPACK's batched product on one
    thread (the same split as `_products_t_input`'s). Same process, alternating, `chrt -f 1`, with
    both cores: the groups=4 row's step -4 to -8% wall (CPU unchanged), the dense 64->64 row -5
    to -11%; with one core free (the other busy): groups=4 +1 to +5%, 64->64 -5%. But ResNet-18's
    train step +5% wall (+7% CPU) and the Conv3d row (through `_conv3d`) 64 -> 90 ms, so only the
    groups of a grouped convolution take it (`conv3x3(..., spread=True)` from `_conv_lowering`'s
    "split"; benchmarks/README.md, issue 28, helper `grp2`).
    """
    ut = lax.optimization_barrier(jnp.swapaxes(u, 1, 2))
    return lax.dot_general(ut, v, (((1,), (1,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)


def _forward(x: jax.Array, w: jax.Array, padding: Pairs, spread: bool):
    out, tiles, pads = geometry(x.shape, padding)
    xp = zero_pad(jnp.swapaxes(x, 0, 1), ((0, 0), (0, 0)) + pads)
    v = _transform_input(xp, tiles)
    u = _kernel_transform(w)
    m = (_products_spread if spread else _products)(u, v)
    y = _transform_output(m, x.shape[0], tiles)[:, :, : out[0], : out[1]]
    return y, (v, u)


@partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def conv3x3(x: jax.Array, w: jax.Array, padding: tuple, spread: bool = False) -> jax.Array:
    """Cross-correlation of (N, C, H, W) `x` with a (K, C, 3, 3) `w`, stride 1, by F(2x2, 3x3).

    `padding` is ((top, bottom), (left, right)), non-negative, with an output of at least 1x1.
    `spread`: the forward products as `_products_spread` (one group of a grouped convolution).
    """
    return _forward(x, w, padding, spread)[0]


@partial(conv3x3.defjvp, symbolic_zeros=True)
def _conv3x3_jvp(padding, spread, primals, tangents):
    x, w = primals
    y, (v, u) = _forward(x, w, padding, spread)
    products = _products_spread if spread else _products
    out, tiles, pads = geometry(x.shape, padding)
    batch = x.shape[0]

    def tangent(v, u, tx, tw):  # bilinear: the products of the transformed tangents
        m = None
        if tx is not None:
            vt = _transform_input(zero_pad(jnp.swapaxes(tx, 0, 1), ((0, 0), (0, 0)) + pads), tiles)
            m = products(u, vt)
        if tw is not None:
            mw = products(_kernel_transform(tw), v)
            m = mw if m is None else m + mw
        return [_transform_output(m, batch, tiles)[:, :, : out[0], : out[1]]]

    def transpose(cts, v, u):
        return list(_backward(v, u, cts[0], padding))

    (ty,) = linear_call(tangent, transpose, (v, u), tangents, "winograd_conv3x3")
    return y, ty


def _backward(v: jax.Array, u: jax.Array, dy: jax.Array, padding: Pairs):
    x_shape = dy.shape[:1] + v.shape[1:2] + tuple(o + 2 - lo - hi for o, (lo, hi) in zip(dy.shape[2:], padding))
    out, tiles, pads = geometry(x_shape, padding)
    dy = zero_pad(dy, ((0, 0), (0, 0), (0, 2 * tiles[0] - out[0]), (0, 2 * tiles[1] - out[1])))
    dm = _transform_output_t(dy, tiles)  # (16, K, P)
    dv = _products_t_input(u, dm)
    du = _products_t_weight(dm, v)
    dxp = _transform_input_t(dv, x_shape[0], tiles)
    (top, _), (left, _) = pads
    dx = dxp[:, :, top : top + x_shape[2], left : left + x_shape[3]]
    return jnp.swapaxes(dx, 0, 1), _kernel_transform_t(du)


def _products_t_input(u: jax.Array, dm: jax.Array) -> jax.Array:
    """The transpose of `_products` in the inputs: (16, K, C), (16, K, P) -> (16, C, P).

    XLA:CPU runs this product (contracting both operands' axis 1) as its Eigen batched dot, which
    spreads over the cores; `u` transposed behind an optimization barrier makes it YNNPACK's, which
    ran it on one thread: CPU -7% but wall +7% on the quiet machine (groups=4 and 64->64 rows,
    benchmarks/README.md, fourteenth session), so it stays as it is.
    """
    return lax.dot_general(u, dm, (((1,), (1,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)


def _products_t_weight(dm: jax.Array, v: jax.Array) -> jax.Array:
    """The transpose of `_products` in the weights: (16, K, P), (16, C, P) -> (16, K, C)."""
    return lax.dot_general(dm, v, (((2,), (2,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)


def applies(x_shape: tuple, w_shape: tuple, stride: tuple, padding: Pairs, dilation: tuple, groups: int) -> bool:
    """Whether `conv3x3` computes this convolution: dense 2-D, 3x3, stride 1, no dilation."""
    return (
        len(x_shape) == 4
        and groups == 1
        and tuple(w_shape[2:]) == (3, 3)
        and tuple(stride) == (1, 1)
        and tuple(dilation) == (1, 1)
        and all(lo >= 0 and hi >= 0 for lo, hi in padding)
        and all(n + lo + hi >= 3 for n, (lo, hi) in zip(x_shape[2:], padding, strict=True))
    )


# -- the phase layout: activations kept as the output transform writes them (`_layout.py`) ------------
#
# (2, 2, C, N, H/2, W/2), element [a, b, c, n, i, j] = x[n, c, 2i + a, 2j + b]: the 2x2 outputs of every
# tile, before `_transform_output`'s interleaving transpose. With padding 1 and an even size, the four
# rows of tile i are rows 2i - 1 .. 2i + 2 of the input: phase 1 row i - 1, phase 0 row i, phase 1 row
# i, phase 0 row i + 1, so the input transform reads whole planes shifted by one tile. Plain autodiff
# (the transforms are pads, slices and sums; the products `dot_general`s, whose transposes are
# `_products_t_input` / `_products_t_weight`'s products), so every transformation works.


def _phase_rows(p0: jax.Array, p1: jax.Array, axis: int) -> list:
    """B^T d for the tiles along `axis` (padding 1) from the input's two phases along it."""
    n = p0.shape[axis]
    widths = [(0, 0)] * p0.ndim
    widths[axis] = (1, 1)
    q0, q1 = zero_pad(p0, widths), zero_pad(p1, widths)
    return _input_transform([lax.slice_in_dim(q, s, s + n, axis=axis) for q, s in ((q1, 0), (q0, 1), (q1, 1), (q0, 2))])


def transform_input_phase(x: jax.Array) -> jax.Array:
    """(2, 2, C, N, th, tw) phase layout -> (16, C, N*th*tw): B^T d B for every tile, padding 1."""
    rows = _phase_rows(x[0], x[1], 3)  # 4 x (2, C, N, th, tw), the column phase first
    v = jnp.stack([jnp.stack(_phase_rows(r[0], r[1], 3)) for r in rows])  # (4, 4, C, N, th, tw)
    return v.reshape(16, x.shape[2], -1)


def conv3x3_phase(x: jax.Array, w: jax.Array, layout: str, bias: jax.Array | None = None) -> jax.Array:
    """`conv3x3` with padding 1 of an even-sized input, the output in the phase layout (2, 2, K, N, th, tw).

    `layout`: "nchw" (N, C, H, W), "cnhw" (C, N, H, W) or "phase" (2, 2, C, N, H/2, W/2) input.
    `bias`: (K,) added to the output (`_output_phase`), or None.
    The arithmetic is `conv3x3`'s (the same transforms, products and sums in the same order).
    """
    if layout == "phase":
        batch, tiles = x.shape[3], x.shape[4:]
        v = transform_input_phase(x)
    else:
        x = jnp.swapaxes(x, 0, 1) if layout == "nchw" else x
        batch, tiles = x.shape[1], (x.shape[2] // 2, x.shape[3] // 2)
        v = _transform_input(zero_pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), tiles)
    m = _products(_kernel_transform(w), v)
    if bias is not None:
        return _output_phase(m, bias, batch, tiles)
    o = _dot(jnp.asarray(_A_A, m.dtype), m.reshape(16, -1))  # (4, K*P)
    return o.reshape(2, 2, w.shape[0], batch, *tiles)


def _output_phase(m: jax.Array, bias: jax.Array, batch: int, tiles: tuple) -> jax.Array:
    """(16, K, P) products and a (K,) bias -> A^T m A + bias in the phase layout (2, 2, K, N, th, tw).

    A linear map with its own transpose (`linear_call`): the bias gradient is summed from row 5 of
    the output transform's transpose dm = (A x A) dy, which is (1, 1, 1, 1) . dy, the sum of dy's
    four phases (column 1 of A^T is (1, 1)), instead of from dy itself. Plain autodiff summed dy,
    and dy (a BatchNorm backward's input gradient in a layout run) was then computed twice by XLA,
    once for that sum and once in the (4, K*P) shape the transposed product reads (issue 28,
    helpers `bn3` / `cnn4`).
    """
    k = m.shape[1]

    def tangent(tm, tb):
        o = _dot(jnp.asarray(_A_A, m.dtype), tm.reshape(16, -1)).reshape(2, 2, k, batch, *tiles)
        return [o if tb is None else o + tb.reshape(1, 1, -1, 1, 1, 1)]

    def transpose(cts):
        # (A x A)^T dy contracting both operands' axis 0, as autodiff's transpose of `_dot` writes it:
        # XLA:CPU runs that form as its Eigen dot, the (16, 4) x (4, K*P) one as YNNPACK's
        dm = lax.dot_general(jnp.asarray(_A_A, m.dtype), cts[0].reshape(4, -1), (((0,), (0,)), ((), ())),
                             precision=lax.Precision.HIGHEST)  # (16, K*P)
        return [dm.reshape(m.shape), jnp.sum(dm[5].reshape(k, -1), axis=1)]

    return linear_call(tangent, transpose, (), (m, bias), "winograd_output_phase")[0]


def phase_to_nchw(x: jax.Array) -> jax.Array:
    """(2, 2, C, N, th, tw) -> (N, C, 2*th, 2*tw): the interleave `_transform_output` does."""
    _, _, c, n, th, tw = x.shape
    return x.transpose(3, 2, 4, 0, 5, 1).reshape(n, c, 2 * th, 2 * tw)
