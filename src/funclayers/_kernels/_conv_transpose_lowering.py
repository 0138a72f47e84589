"""How a transposed convolution is computed on the device: the lowerings behind conv_transpose*d.

Used by: `ConvTranspose1d/2d/3d` and `F.conv_transpose*d` (`_conv_transpose.py`), which check
arguments in torch's terms and call `conv_transpose` here with batched, channels-first input and
torch's transposed weight layout (in, out/groups, *kernel). Split from `_conv_lowering.py`, whose
`conv` (and its dispatch) this builds on.

A transposed convolution is the input gradient of a convolution. XLA computes it as a convolution
of the input dilated by the stride ("xla"), where most inputs are zeros; on CPU it is faster:
- per output phase ("phases"): output o = s*m + r only meets the taps t = r + p - s*q, so each
  phase r is a stride-1 convolution of the undilated input with those taps; its input gradient is
  XLA's strided convolution, its weight gradient per kernel tap, as XLA's is slow; where every
  kernel length is twice an even stride (k4 s2, k8 s4), both gradients are 2-D products with the
  cotangent's columns (N * positions, K * taps) instead, which do not wait for the forward;
- where every phase meets exactly one tap (kernel == stride, a "pixel shuffle" upsampling such as
  a U-Net's k2 s2), one matrix product of the channels-last input with the weights ("matmul"),
  differentiated by JAX: the input and weight gradients are matrix products too;
- as torch does ("columns", col2im): one 2-D product into the columns (K * taps, N * positions),
  then their overlap-add, both gradients from the cotangent's columns as above; its three products
  are independent and each big enough to be split over both cores, which the per-phase
  convolutions are not: the k4 s2 (16, 64, 16, 16) step's quiet wall time -4% to -16% against
  "phases" (CPU time +1% to +18%), then -6% to -11% more (wall and CPU) with the columns stored
  channels-major; "auto" takes it where the cotangent's columns pay (k4 s2, k8 s4: `_columns_pay`).

Winograd's F(2x2, 2x2) per phase (9 products per 2x2 tile instead of 16, exact transforms) was
measured for k4 s2 and dropped (benchmarks/README.md, helper `ctw`): its products run faster, but
its transforms' memory passes cost as much on CPU; the (16, 64, 16, 16) step 13.1 -> 13.7-14.6 ms
CPU at best (one input transform shared by the phases), 10.7 -> 13.1 on 8x8 maps.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import on_cpu
from ._conv_lowering import _weight_grad_taps, _xla, conv
from ._primitive import bilinear


def transpose_weight(w: jax.Array, groups: int) -> jax.Array:
    """A transposed conv's weight (in, out/g, *k) as the equivalent conv's (out, in/g, *k), flipped."""
    c_in, out_per_group = w.shape[:2]
    kernel = w.shape[2:]
    w = w.reshape((groups, c_in // groups, out_per_group) + kernel)
    w = jnp.swapaxes(w, 1, 2).reshape((groups * out_per_group, c_in // groups) + kernel)
    return jnp.flip(w, axis=tuple(range(2, w.ndim)))


def _conv_transpose_forward(x, w, stride, padding, output_padding, dilation, groups):
    kernel = w.shape[2:]
    pads = [
        (d * (k - 1) - p, d * (k - 1) - p + op)
        for k, p, op, d in zip(kernel, padding, output_padding, dilation, strict=False)
    ]
    return _xla(
        x, transpose_weight(w, groups), (1,) * len(kernel), pads, dilation, groups, lhs_dilation=stride
    )


def _conv_transpose_backward(x, w, dy, stride, padding, output_padding, dilation, groups):
    # y = A_w^T x, where A_w is the ordinary convolution with weight w (out=in_channels of the
    # transposed conv). So dx = A_w dy, a strided convolution, and dw is the weight gradient of
    # A_w at input dy and output cotangent x.
    pairs = tuple((p, p) for p in padding)
    spatial = x.shape[2:]
    dx = conv(dy, w, stride, pairs, dilation, groups)
    dx = dx[(slice(None), slice(None)) + tuple(slice(0, size) for size in spatial)]
    return dx, _conv_transpose_weight_grad(x, w, dy, stride, padding, dilation, groups)


def _conv_transpose_weight_grad(x, w, dy, stride, padding, dilation, groups):
    """The weight gradient of the strided convolution A_w at input dy and output cotangent x, per tap."""
    pairs = tuple((p, p) for p in padding)
    dys, xs = jnp.split(dy, groups, axis=1), jnp.split(x, groups, axis=1)
    dw = jnp.concatenate(
        [_weight_grad_taps(a, b, w.shape[2:], stride, pairs, dilation) for a, b in zip(dys, xs, strict=False)],
        axis=0,
    )
    return dw.astype(w.dtype)


_conv_transpose = bilinear(_conv_transpose_forward, _conv_transpose_backward, "conv_transpose")


def _phase_plan(size: int, k: int, s: int, p: int, op: int) -> tuple[int, int, list]:
    """Along one axis of a transposed convolution (dilation 1): (output length, outputs per phase,
    [(kernel taps in input order, low padding, high padding)] per phase r = 0..s-1).

    Output o = s*m + r receives input i through tap t exactly when o + p = s*i + t, so phase r
    meets the taps t = r + p - s*q, input i = m + q: a stride-1 correlation of the input with
    those taps (q ascending), padded so that every phase gives ceil(out / s) outputs.
    """
    out = (size - 1) * s - 2 * p + k + op
    per_phase = -(-out // s)
    phases = []
    for r in range(s):
        offsets = sorted((r + p - t) // s for t in range(k) if (r + p - t) % s == 0)
        taps = [r + p - s * q for q in offsets]
        low = -offsets[0] if taps else 0
        high = per_phase - 1 + offsets[-1] - (size - 1) if taps else 0
        phases.append((taps, low, high))
    return out, per_phase, phases


def _conv_transpose_phases(x, w, stride, padding, output_padding, dilation, groups):
    """The transposed convolution (dilation 1) as stride**n stride-1 convolutions, one per output
    phase, each with the kernel taps that phase meets, interleaved: XLA's own convolution of the
    input as it is, where the "xla" forward convolves the input dilated by the stride (3 of 4
    inputs zeros at stride 2)."""
    n = x.ndim - 2
    plans = [
        _phase_plan(size, k, s, p, op)
        for size, k, s, p, op in zip(x.shape[2:], w.shape[2:], stride, padding, output_padding, strict=True)
    ]
    c_in, out_per_group = w.shape[:2]
    kernel = w.reshape((groups, c_in // groups, out_per_group) + w.shape[2:])
    kernel = jnp.swapaxes(kernel, 1, 2).reshape((groups * out_per_group, c_in // groups) + w.shape[2:])
    per_phase = tuple(plan[1] for plan in plans)
    outputs = []
    for combo in itertools.product(*(plan[2] for plan in plans)):
        if any(not taps for taps, _, _ in combo):  # a phase no tap reaches (kernel shorter than stride)
            outputs.append(jnp.zeros(x.shape[:1] + (kernel.shape[0],) + per_phase, x.dtype))
            continue
        piece = kernel
        for axis, (taps, _, _) in enumerate(combo):
            piece = jnp.take(piece, jnp.asarray(taps), axis=2 + axis)
        # negative paddings crop the input first, so that the convolution pads by non-negative amounts
        crop = [(0, 0, 0)] * 2 + [(min(lo, 0), min(hi, 0), 0) for _, lo, hi in combo]
        xs = lax.pad(x, jnp.zeros((), x.dtype), crop) if any(c[:2] != (0, 0) for c in crop[2:]) else x
        pads = [(max(lo, 0), max(hi, 0)) for _, lo, hi in combo]
        outputs.append(_xla(xs, piece, (1,) * n, pads, (1,) * n, groups))
    # (phases..., N, K, per-phase...) -> (N, K, per_phase_0, s_0, per_phase_1, s_1, ...)
    z = jnp.stack(outputs).reshape(tuple(stride) + outputs[0].shape)
    z = jnp.transpose(z, (n, n + 1) + tuple(i for a in range(n) for i in (n + 2 + a, a)))
    z = z.reshape(z.shape[:2] + tuple(plan[1] * s for plan, s in zip(plans, stride, strict=True)))
    return z[(slice(None), slice(None)) + tuple(slice(0, plan[0]) for plan in plans)]


def _conv_transpose_phases_backward(x, w, dy, stride, padding, output_padding, dilation, groups):
    """The input gradient as XLA's own strided convolution of dy (the convolution this one transposes),
    the weight gradient per tap (as "strided").

    XLA's strided convolution measured faster than the transpose of the per-phase convolutions (s*s
    stride-1 convolutions and their sum), CPU ms (16, 64, 16, 16) k4 s2: input gradient 4.90 -> 3.89,
    step 13.60 -> 12.49; (32, 64, 8, 8): step 7.03 -> 6.46; (8, 64, 32, 32) k3 s2: 20.5 -> 18.3;
    (16, 128, 8, 8): 10.99 -> 11.01. Through `conv`'s dispatch ("strided") it is slower ("gemm").
    """
    pairs = tuple((p, p) for p in padding)
    dx = _xla(dy, w, stride, pairs, dilation, groups)
    dx = dx[(slice(None), slice(None)) + tuple(slice(0, size) for size in x.shape[2:])]
    return dx, _conv_transpose_weight_grad(x, w, dy, stride, padding, dilation, groups)


_conv_transpose_by_phase = bilinear(_conv_transpose_phases, _conv_transpose_phases_backward, "conv_transpose_phases")


def _columns(x: jax.Array, w: jax.Array) -> jax.Array:
    """The columns (N * positions, K * taps) of a dense transposed convolution: the channels-last
    input (N * positions, C) times the weights (C, K * taps), one 2-D product."""
    channels = x.shape[1]
    rows = jnp.moveaxis(x, 1, -1).reshape(-1, channels)
    return jnp.matmul(rows, w.reshape(channels, -1), precision=lax.Precision.HIGHEST)


def _overlap_add(z: jax.Array, x_shape: tuple, w_shape: tuple, stride: tuple, padding: tuple, output_padding: tuple):
    """A dense transposed convolution's output (dilation 1) from its columns `z` (N * positions, K * taps),
    `z[(n, i), (k, t)] = x[n, :, i] . w[:, k, t]`: output s*i + t - padding sums the columns that land
    there (col2im). Along each axis tap t = s*a + r lands on output row s*(i + a) + r, so the sum is
    over ceil(k/s) shifted copies per axis of the columns split into (a, r)."""
    n = len(x_shape) - 2
    batch, k_out, kernel, spatial = x_shape[0], w_shape[1], tuple(w_shape[2:]), tuple(x_shape[2:])
    shifts = tuple(-(-k // s) for k, s in zip(kernel, stride, strict=True))
    z = z.reshape((batch,) + spatial + (k_out,) + kernel)
    pads = [(0, 0, 0)] * (n + 2) + [(0, a * s - k, 0) for k, s, a in zip(kernel, stride, shifts, strict=True)]
    if any(p != (0, 0, 0) for p in pads):
        z = lax.pad(z, jnp.zeros((), z.dtype), pads)
    z = z.reshape(z.shape[: n + 2] + tuple(v for a, s in zip(shifts, stride, strict=True) for v in (a, s)))
    out = None
    for combo in itertools.product(*(range(a) for a in shifts)):
        index = (slice(None),) * (n + 2) + tuple(v for a in combo for v in (a, slice(None)))
        shift = [(0, 0, 0)] + [(a, last - 1 - a, 0) for a, last in zip(combo, shifts, strict=True)]
        shift += [(0, 0, 0)] * (n + 1)
        piece = lax.pad(z[index], jnp.zeros((), z.dtype), shift)  # (N, *(S + A - 1), K, *s)
        out = piece if out is None else out + piece
    # (N, M_1.., K, r_1..) -> (N, K, M_1, r_1, M_2, r_2, ...)
    out = jnp.transpose(out, (0, n + 1) + tuple(i for a in range(n) for i in (1 + a, n + 2 + a)))
    return _crop_to_output(out, (batch, k_out), spatial, shifts, stride, kernel, padding, output_padding)


def _crop_to_output(out, lead, spatial, shifts, stride, kernel, padding, output_padding):
    """The overlap-add's (N, K, M_1, r_1, ...) sums as (N, K, *full), cropped to the output (torch's padding)."""
    full = tuple((m + a - 1) * s for m, a, s in zip(spatial, shifts, stride, strict=True))
    out = out.reshape(lead + full)
    crop = [(0, 0, 0)] * 2 + [
        (-p, (m - 1) * s + k + op - p - f, 0)
        for m, s, k, p, op, f in zip(spatial, stride, kernel, padding, output_padding, full, strict=True)
    ]
    return lax.pad(out, jnp.zeros((), out.dtype), crop)


def _channels_major(x: jax.Array) -> jax.Array:
    """The input as (C, N * positions): the "columns" forward's and the weight gradient's operand (one copy)."""
    return jnp.swapaxes(x, 0, 1).reshape(x.shape[1], -1)


def _weights_t(w: jax.Array) -> jax.Array:
    """A dense transposed convolution's weights as (K * taps, C), behind a barrier: else XLA folds the
    transpose into the product, which then contracts an operand's first axis (XLA:CPU's slower Eigen
    dot). The "columns" forward and its input gradient share it (XLA merges the two barriers): one
    buffer live until the input gradient, so that XLA does not hand it on to the weight gradient's
    output, which made that product wait for the forward's."""
    return lax.optimization_barrier(jnp.transpose(w.reshape(w.shape[0], -1)))


def _conv_transpose_columns_backward(x, w, dy, stride, padding, output_padding, dilation, groups):
    """Both gradients of a dense transposed convolution (dilation 1) from the cotangent's columns
    `dz` (N * positions, K * taps), the transpose of `_overlap_add` (one fusion of dy's strided
    slices): the input gradient `dz . w^T` and the weight gradient `x^T . dz`, two 2-D products that
    do not wait for the forward and run side by side. x^T is formed as (C, N * positions) so that
    the product is YNNPACK's (contracting both operands' first axis is XLA:CPU's slower Eigen dot).
    """
    batch, channels = x.shape[:2]
    k_out, kernel, spatial = w.shape[1], w.shape[2:], x.shape[2:]
    columns = jax.ShapeDtypeStruct((batch * math.prod(spatial), k_out * math.prod(kernel)), dy.dtype)
    (dz,) = jax.linear_transpose(
        lambda z: _overlap_add(z, x.shape, w.shape, stride, padding, output_padding), columns
    )(dy)
    precision = lax.Precision.HIGHEST
    dx = jnp.matmul(dz, _weights_t(w), precision=precision)
    # (N, positions, C) -> (N, C, positions): one copy (a moveaxis of the (N, *S, C) view is two in XLA)
    dx = jnp.swapaxes(dx.reshape(batch, -1, channels), 1, 2).reshape(x.shape)
    dw = jnp.matmul(_channels_major(x), dz, precision=precision)
    return dx.astype(x.dtype), dw.reshape(w.shape).astype(w.dtype)


_conv_transpose_by_phase_columns = bilinear(
    _conv_transpose_phases, _conv_transpose_columns_backward, "conv_transpose_phases_columns"
)


def _overlap_add_channels_major(z, x_shape, w_shape, stride, padding, output_padding):
    """`_overlap_add` of the columns stored channels-major, `z` (K * taps, N * positions): each of
    the ceil(k/s)**n shifted pieces is read along the positions (contiguous runs of the input rows)
    instead of across the (N * positions, K * taps) rows."""
    n = len(x_shape) - 2
    batch, k_out, kernel, spatial = x_shape[0], w_shape[1], tuple(w_shape[2:]), tuple(x_shape[2:])
    shifts = tuple(-(-k // s) for k, s in zip(kernel, stride, strict=True))
    z = z.reshape((k_out,) + kernel + (batch,) + spatial)
    pads = [(0, 0, 0)] + [(0, a * s - k, 0) for k, s, a in zip(kernel, stride, shifts, strict=True)]
    if any(p != (0, 0, 0) for p in pads):
        z = lax.pad(z, jnp.zeros((), z.dtype), pads + [(0, 0, 0)] * (n + 1))
    z = z.reshape((k_out,) + tuple(v for a, s in zip(shifts, stride, strict=True) for v in (a, s)) + (batch,) + spatial)
    out = None
    for combo in itertools.product(*(range(a) for a in shifts)):
        index = (slice(None),) + tuple(v for a in combo for v in (a, slice(None)))
        shift = [(0, 0, 0)] * (n + 2) + [(a, last - 1 - a, 0) for a, last in zip(combo, shifts, strict=True)]
        piece = lax.pad(z[index], jnp.zeros((), z.dtype), shift)  # (K, *s, N, *(S + A - 1))
        out = piece if out is None else out + piece
    # (K, r_1.., N, M_1..) -> (N, K, M_1, r_1, M_2, r_2, ...)
    out = jnp.transpose(out, (n + 1, 0) + tuple(i for a in range(n) for i in (n + 2 + a, 1 + a)))
    return _crop_to_output(out, (batch, k_out), spatial, shifts, stride, kernel, padding, output_padding)


def _conv_transpose_columns(x, w, stride, padding, output_padding, dilation, groups):
    """A dense transposed convolution (dilation 1) as torch computes it: the columns as ONE 2-D
    product, then their overlap-add (one fusion). One big product is split over both cores; the
    per-phase convolutions of "phases" run on one thread each, in sequence. The columns are stored
    channels-major, (K * taps, N * positions) = w^T . x^T (x^T shared with the weight gradient, w^T
    with the input gradient), so that the overlap-add reads them along the positions: 0.5-1.0 ms
    instead of 1.2-1.9 for the k4 s2 (16, 64, 16, 16) step's, whose wall time this took from 6.43 to
    6.01 ms (fast period) and from 8.62 to 7.64 (slow), CPU -7% to -11%, same process, against the
    columns stored (N * positions, K * taps) (benchmarks/README.md, helper `ct4`)."""
    z = jnp.matmul(_weights_t(w), _channels_major(x), precision=lax.Precision.HIGHEST)
    return _overlap_add_channels_major(z, x.shape, w.shape, stride, padding, output_padding)


_conv_transpose_by_columns = bilinear(
    _conv_transpose_columns, _conv_transpose_columns_backward, "conv_transpose_columns"
)


def _matmul_applies(w_shape: tuple, stride: tuple, dilation: tuple, groups: int) -> bool:
    """Whether every output phase meets exactly one kernel tap: dense, kernel == stride, no dilation."""
    return groups == 1 and all(d == 1 for d in dilation) and tuple(w_shape[2:]) == tuple(stride)


def _conv_transpose_matmul(x, w, stride, padding, output_padding):
    """A dense transposed convolution with kernel == stride (dilation 1) as ONE matrix product.

    Output s*i + t (before cropping by the padding) is x[i] . w[:, :, t], so the whole output is the
    channels-last input (N * positions, C) times the weights (C, K * taps), each product row's taps
    moved into place (a pixel shuffle); output padding beyond the last product row is zeros. Plain
    JAX, differentiated by JAX: both gradients are matrix products as well. The 256->128 k2 s2 step
    on (16, 256, 14, 14), CPU ms: 39.7 "phases" (four 1x1 convolutions, per-tap weight gradient)
    -> 34.5.
    """
    n, batch = x.ndim - 2, x.shape[0]
    out_channels, spatial = w.shape[1], x.shape[2:]
    z = _columns(x, w).reshape((batch,) + spatial + (out_channels,) + tuple(stride))
    # (N, S_1.., K, s_1..) -> (N, K, S_1, s_1, S_2, s_2, ...)
    z = jnp.transpose(z, (0, n + 1) + tuple(i for a in range(n) for i in (1 + a, n + 2 + a)))
    z = z.reshape((batch, out_channels) + tuple(size * s for size, s in zip(spatial, stride, strict=True)))
    crop = [(0, 0, 0)] * 2 + [(-p, op - p, 0) for p, op in zip(padding, output_padding, strict=True)]
    return lax.pad(z, jnp.zeros((), z.dtype), crop) if any(c != (0, 0, 0) for c in crop) else z


def _columns_pay(x_shape: tuple, w_shape: tuple, stride: tuple, groups: int, dtype) -> bool:
    """Whether the cotangent's columns pay: "auto" then picks "columns" (forward from the columns too)
    and a forced "phases" takes both gradients from them, rather than from XLA's strided convolution
    and a per-tap weight gradient. Dense, every kernel length twice an even stride (k4 s2, k8 s4), at
    most 32 MB of columns (as the "gemm" convolution's patches). Step wall ms, same process,
    alternating (two cores), "phases" with the per-tap backward / with the columns backward /
    "columns": k4 s2 (16, 64, 16, 16) 10.53 / 10.24 / 8.09; k8 s4 36.9 / 31.3 / 28.3; 1-D k4 s2
    3.61 / 3.52 / 2.98; 3-D k4 s2 (4, 32, 8, 16, 16) 53.3 / 54.1 / 35.4; more in
    benchmarks/README.md (helper `ct3`). Other kernels that are multiples of the stride are slower
    from the columns: k6 s3 18.1 / 22.5 / 26.5, k6 s2 18.5 / 29.1 / 31.4, k3 s1 6.21 / 7.68 / 7.80,
    k5 s1 10.6 / 29.1."""
    columns = x_shape[0] * math.prod(x_shape[2:]) * w_shape[1] * math.prod(w_shape[2:])
    return (
        groups == 1
        and all(k == 2 * s and s % 2 == 0 for k, s in zip(w_shape[2:], stride, strict=True))
        and columns * jnp.dtype(dtype).itemsize <= 32 << 20
    )


TRANSPOSE_METHODS = ("auto", "xla", "strided", "phases", "matmul", "columns")


def choose_transpose(
    x_shape: tuple, w_shape: tuple, stride: tuple, dilation: tuple, groups: int, dtype=jnp.float32,
    platform: str | None = None,
) -> str:
    """The lowering `conv_transpose` uses on `platform` (JAX's default backend if None): measured on
    CPU (see `conv_transpose`); XLA's own elsewhere."""
    if not on_cpu(platform):
        return "xla"
    if _matmul_applies(w_shape, stride, dilation, groups):
        return "matmul"
    if any(d != 1 for d in dilation):
        return "strided"
    return "columns" if _columns_pay(x_shape, w_shape, stride, groups, dtype) else "phases"


def conv_transpose(
    x: jax.Array,
    w: jax.Array,
    stride: tuple,
    padding: tuple,
    output_padding: tuple,
    dilation: tuple,
    groups: int,
    method: str = "auto",
) -> jax.Array:
    """Transposed convolution (the input-gradient of `conv`) of batched channels-first `x`.

    `w` has torch's transposed layout (in, out/groups, *kernel). Lowerings: "xla" is a convolution
    of the input dilated by `stride` with the flipped kernel, padded by dilation*(k-1)-padding on
    the left and that plus output_padding on the right, differentiated by JAX; "strided" is the
    same forward with a backward pass of a strided convolution (input gradient) and a per-tap
    weight gradient; "phases" (dilation 1) is one stride-1 convolution of the undilated input per
    output phase, the input gradient XLA's strided convolution, the weight gradient as "strided" (or,
    dense with each kernel length twice an even stride, both from the cotangent's columns: the
    k4 s2 steps' CPU -4% to -9%, the (16, 64, 16, 16) step's quiet wall time -15%, `_columns_pay`); "matmul"
    (dense, kernel == stride, dilation 1) is one matrix product, pixel-shuffled; "columns" (dense,
    dilation 1) is torch's col2im: one product into the columns (K * taps, N * positions) and their
    overlap-add, both gradients from the cotangent's columns. "auto" on CPU is "matmul" where it
    applies (k2 s2 steps, CPU ms: 256->128 on 14x14 39.2 -> 34.5, 64->32 on 32x32 30.6 -> 20.2,
    against "phases"), "columns" for k4 s2 and k8 s4 with at most 32 MB of columns (the
    (16, 64, 16, 16) k4 s2 step's quiet wall time -4% to -16% against "phases", `_columns_pay`),
    else "phases" for dilation 1 (that step: CPU 17.0 -> 14.0 ms against "strided", forward 5.4 ->
    3.9; 13.6 -> 12.5 with XLA's input gradient), "strided" for dilated ones; "xla" elsewhere.
    """
    args = (tuple(stride), tuple(padding), tuple(output_padding), tuple(dilation), groups)
    if method == "auto":
        method = choose_transpose(x.shape, w.shape, args[0], args[3], groups, x.dtype)
    if method == "xla":
        return _conv_transpose_forward(x, w, *args)
    if method == "strided":
        return _conv_transpose(x, w, *args)
    if method == "matmul":
        if not _matmul_applies(w.shape, stride, dilation, groups):
            raise ValueError(
                "the 'matmul' transposed convolution lowering is for dense kernels as long as the stride "
                f"(every output phase meets one tap) and dilation 1, got weight {tuple(w.shape)}, stride "
                f"{tuple(stride)}, dilation {tuple(dilation)}, groups {groups}"
            )
        return _conv_transpose_matmul(x, w, *args[:3])
    if method == "phases":
        if any(d != 1 for d in dilation):
            raise ValueError(f"the 'phases' transposed convolution lowering is for dilation 1, got {tuple(dilation)}")
        if _columns_pay(x.shape, w.shape, args[0], groups, x.dtype):
            return _conv_transpose_by_phase_columns(x, w, *args)
        return _conv_transpose_by_phase(x, w, *args)
    if method == "columns":
        if groups != 1 or any(d != 1 for d in dilation):
            raise ValueError(
                "the 'columns' transposed convolution lowering is for dense kernels and dilation 1, got "
                f"groups {groups}, dilation {tuple(dilation)}"
            )
        return _conv_transpose_by_columns(x, w, *args)
    raise ValueError(f"unknown transposed convolution lowering {method!r}; expected one of {TRANSPOSE_METHODS}")
