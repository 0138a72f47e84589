"""How a convolution is computed on the device: the lowerings behind conv*d and conv_transpose*d.

Used by: `Conv1d/2d/3d`, `ConvTranspose1d/2d/3d` and `F.conv*d` / `F.conv_transpose*d`. Why
(benchmarks/README.md): XLA's CPU weight-gradient and grouped convolutions are slow; with these
lowerings, in the quiet rerun of 2026-12-07 13:19 (benchmarks/results.md, last table: forward and
backward, every array an argument), the dense and depthwise 2-D rows run at 0.69-1.02x of torch's
step (depthwise 0.69x) where Flax and Equinox run at 0.95-7.4x; 1-D (1.2x), grouped (1.0-1.8x:
torch's own time moves), transposed (1.4-1.6x with "columns", 21:15/21:17 reruns) and 3-D
(1.3-1.4x, `_conv3d`) convolutions are still slower than torch's (benchmarks/README.md, twelfth to
fifteenth sessions).
Measured per lowering: the RGB stem's weight gradient ("patches") 26.8 -> 8 ms inside the small
CNN step; "gemm" forward 3x3 s2 23.5 -> 18.1 ms, 1x1 s2 6.2 -> 2.4; "taps" weight gradient 3-5x
faster than XLA's.

The public ops in `_conv.py` and `_conv_transpose.py` check arguments in torch's terms and then
call `conv` or `conv_transpose` here with batched, channels-first input, torch-layout weights and
explicit `(low, high)` paddings. This module picks, per shape, the formulation that XLA runs
fastest on CPU, computing the same function and the same gradients:

- "xla": one `lax.conv_general_dilated`, differentiated by JAX. XLA's CPU forward and
  input-gradient convolutions are fast; its weight gradient (a convolution with a huge kernel
  and a tiny output) and its grouped convolutions are not.
- "taps": the same forward and input gradient, with the weight gradient computed per kernel
  tap as a matrix product over batch and space, 3-5x faster on CPU.
- "patches": as "taps", but the weight gradient is one matrix product with the patches
  (im2col) matrix: for small fan-in (an RGB stem: 27 columns), 2-3x faster than XLA's.
- "winograd": 3x3 stride-1 dense 2-D convolutions by Winograd's F(2x2, 3x3) (`_winograd.py`):
  16 matrix products on transformed tiles instead of XLA's direct convolution, forward and
  backward, about 2x faster on CPU for a ResNet's 3x3 layers.
- "gemm": the forward as one matrix product of the weights with the patches (im2col) matrix, the
  input gradient as its transpose (col2im), the weight gradient as one product of the output
  gradient with the same patches: faster than
  XLA's convolution for strided, 1x1 and small-map convolutions, used where the patches matrix is
  small (at most 32 MB). With a fan-in under 64 (an RGB stem) the products are one per image,
  which leaves the output channels-first without a transpose.
- "shift": depthwise convolutions (groups == in_channels) as a sum over kernel taps of shifted
  input slices times a per-channel weight: elementwise work that XLA fuses into one loop (kept
  out of a following reduction's fusion by a no-op `reduce_precision`). The weight gradient is,
  per tap, the sum of dy times that tap's input slice.
- "split": grouped convolutions as one dense convolution per group, each lowered as `conv` picks
  for its shape (Winograd for the benchmark's 32->32 3x3 groups, its forward products on XLA's
  Eigen dot over both cores: `_winograd._products_spread`, the row's step -4 to -8% wall);
  "taps" forces "taps" per group. The groups' thunks are independent, but XLA:CPU's executor
  only runs them side by side with more than 8 ready at once. "grouped", for small groups
  and strided many-group layers: one product batched over the groups (`_conv_grouped.py`).
- "depth": 3-D convolutions as 2-D ones over the depth planes (XLA's CPU 3-D convolutions are
  several times slower than its 2-D ones): a dense one as one 2-D convolution whose input
  channels are the kd depth-shifted planes stacked (with a (kd, 3, 3) kernel and stride 1, the
  same Winograd convolution in `_conv3d.py`'s own layout), a grouped one as a sum over depth taps.

Transposed convolutions are in `_conv_transpose_lowering.py` (re-exported here): per output phase,
or one matrix product where each phase meets a single tap.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import on_cpu, zero_pad
from . import _conv3d, _conv_grouped, _winograd
from ._primitive import bilinear

Pairs = Sequence[tuple[int, int]]
METHODS = ("auto", "xla", "taps", "patches", "winograd", "gemm", "shift", "split", "grouped", "depth")


def _dimension_numbers(n: int) -> lax.ConvDimensionNumbers:
    spatial = "DHW"[-n:]
    return lax.conv_dimension_numbers(
        (1, 1) + (1,) * n, (1, 1) + (1,) * n, ("NC" + spatial, "OI" + spatial, "NC" + spatial)
    )


def _xla(
    x: jax.Array,
    w: jax.Array,
    stride: tuple,
    padding: Pairs,
    dilation: tuple,
    groups: int,
    lhs_dilation: tuple | None = None,
) -> jax.Array:
    n = x.ndim - 2
    return lax.conv_general_dilated(
        x,
        w,
        stride,
        list(padding),
        lhs_dilation=lhs_dilation,
        rhs_dilation=dilation,
        dimension_numbers=_dimension_numbers(n),
        feature_group_count=groups,
    )


def _pad_spatial(x: jax.Array, padding: Pairs) -> jax.Array:
    """`x` (N, C, *spatial) zero-padded by the (low, high) pairs of `padding` on its spatial axes."""
    return zero_pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])


def _tap_slices(xp: jax.Array, kernel: tuple, stride: tuple, dilation: tuple, out_spatial: tuple):
    """(tap index, the strided slice of padded `xp` that kernel tap meets) for every kernel tap."""
    n = len(kernel)
    for tap in itertools.product(*(range(k) for k in kernel)):
        start = (0, 0) + tuple(t * d for t, d in zip(tap, dilation, strict=False))
        limit = xp.shape[:2] + tuple(
            st + s * (o - 1) + 1 for st, s, o in zip(start[2:], stride, out_spatial, strict=False)
        )
        yield tap, lax.slice(xp, start, limit, (1, 1) + tuple(stride)) if n else xp


def _dense(x: jax.Array, w: jax.Array, stride: tuple, padding: Pairs, dilation: tuple) -> jax.Array:
    return _xla(x, w, stride, padding, dilation, 1)


def _weight_grad_taps(
    x: jax.Array, dy: jax.Array, kernel: tuple, stride: tuple, padding: Pairs, dilation: tuple
) -> jax.Array:
    """Weight gradient of a dense convolution: for each tap, dy . slice(x) over batch and space."""
    xp = _pad_spatial(x, padding)
    out_spatial = dy.shape[2:]
    contract = (0,) + tuple(range(2, x.ndim))
    taps = [
        lax.dot_general(dy, piece, ((contract, contract), ((), ())), precision=lax.Precision.HIGHEST)
        for _, piece in _tap_slices(xp, kernel, stride, dilation, out_spatial)
    ]
    return jnp.stack(taps, axis=-1).reshape(dy.shape[1], x.shape[1], *kernel)


def _weight_grad_im2col(
    x: jax.Array, dy: jax.Array, kernel: tuple, stride: tuple, padding: Pairs, dilation: tuple
) -> jax.Array:
    """Weight gradient of a dense convolution as one matrix product with the input's patches.

    The patches matrix (batch * output positions, in_channels * taps) is small when the fan-in is
    (an RGB stem: 27 columns), and one long matrix product beats both XLA's weight-gradient
    convolution and one product per tap there. Channels-last rows: with 27 columns this layout
    measured 1.8x faster than `_weight_grad_gemm`'s (N, C_in * taps, positions) one (153 vs 276 ms
    for a (256, 3, 64, 64) input), which wins with many channels (17.4 vs 18.7 ms, 3x3 s2 64->128).
    """
    xp = _pad_spatial(x, padding)
    pieces = [piece for _, piece in _tap_slices(xp, kernel, stride, dilation, dy.shape[2:])]
    patches = jnp.stack(pieces, axis=2)  # (N, C_in, taps, *out)
    channels_last = (0,) + tuple(range(3, patches.ndim)) + (1, 2)
    rows = dy.shape[0] * math.prod(dy.shape[2:])
    patches = jnp.transpose(patches, channels_last).reshape(rows, -1)
    dym = jnp.moveaxis(dy, 1, -1).reshape(rows, dy.shape[1])
    dw = lax.dot_general(dym, patches, (((0,), (0,)), ((), ())), precision=lax.Precision.HIGHEST)
    return dw.reshape(dy.shape[1], x.shape[1], *kernel)


def _output_spatial(padded: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                    dilation: Sequence[int]) -> tuple[int, ...]:
    """Output size per spatial axis of a convolution over an input of (already padded) sizes."""
    return tuple(
        (size - d * (k - 1) - 1) // s + 1 for size, k, s, d in zip(padded, kernel, stride, dilation, strict=True)
    )


def _patches(x: jax.Array, kernel: tuple, stride: tuple, padding: Pairs, dilation: tuple):
    """(N, C_in * taps, output positions) matrix of the input seen by every kernel tap, and the output's
    spatial shape."""
    xp = _pad_spatial(x, padding)
    out_spatial = _output_spatial(xp.shape[2:], kernel, stride, dilation)
    pieces = [piece for _, piece in _tap_slices(xp, kernel, stride, dilation, out_spatial)]
    patches = pieces[0] if len(pieces) == 1 else jnp.stack(pieces, axis=2)
    return patches.reshape(x.shape[0], x.shape[1] * len(pieces), -1), out_spatial


def _weight_grad_gemm(x, w, dy, stride, padding, dilation):
    """Weight gradient of a dense convolution as one product of dy with the patches matrix (the
    "gemm" lowering's layout), over batch and positions."""
    patches, _ = _patches(x, w.shape[2:], stride, padding, dilation)
    dym = dy.reshape(dy.shape[0], dy.shape[1], -1)
    dw = lax.dot_general(dym, patches, (((0, 2), (0, 2)), ((), ())), precision=lax.Precision.HIGHEST)
    return dw.reshape(w.shape)


def _with_backward(forward: Callable, input_forward: Callable, weight_grad: Callable, name: str) -> Callable:
    """The convolution `forward(x, w, stride, padding, dilation)`, differentiable in every mode: the
    input gradient is the vjp of `input_forward` (the same function, or one XLA differentiates
    faster) and the weight gradient `weight_grad(x, w, dy, stride, padding, dilation)`; the tangent
    is forward(dx, w) + forward(x, dw) (`_primitive.bilinear`)."""

    def backward(x, w, dy, stride, padding, dilation):
        _, input_vjp = jax.vjp(lambda x: input_forward(x, w, stride, padding, dilation), x)
        (dx,) = input_vjp(dy)
        return dx, weight_grad(x, w, dy, stride, padding, dilation).astype(w.dtype)

    return bilinear(forward, backward, name)


_taps = _with_backward(
    _dense, _dense, lambda x, w, dy, *geometry: _weight_grad_taps(x, dy, w.shape[2:], *geometry), "conv_taps"
)
_taps_patches = _with_backward(
    _dense, _dense, lambda x, w, dy, *geometry: _weight_grad_im2col(x, dy, w.shape[2:], *geometry),
    "conv_patches",
)


def _gemm_forward(x: jax.Array, w: jax.Array, stride: tuple, padding: Pairs, dilation: tuple) -> jax.Array:
    patches, out_spatial = _patches(x, w.shape[2:], stride, padding, dilation)
    y = lax.dot_general(
        w.reshape(w.shape[0], -1), patches, (((1,), (1,)), ((), ())), precision=lax.Precision.HIGHEST
    )  # (out, N, positions)
    return jnp.swapaxes(y, 0, 1).reshape(x.shape[0], w.shape[0], *out_spatial)


# Input gradient: the weights' transpose times dy, scattered back from the patches (col2im).
_gemm = _with_backward(_gemm_forward, _gemm_forward, _weight_grad_gemm, "conv_gemm")


def _gemm_per_image_forward(x: jax.Array, w: jax.Array, stride: tuple, padding: Pairs, dilation: tuple) -> jax.Array:
    """`_gemm_forward` as one product per image, (out, C_in * taps) x (C_in * taps, positions): the
    output comes out channels-first with no transpose. Measured faster for a small fan-in with
    many positions (the RGB stem, 27 x 1024: step CPU time 7.7 -> 6.2 ms), slower for a large
    fan-in with few positions (128->256 s2 on 8x8 maps: 50 -> 146 ms)."""
    patches, out_spatial = _patches(x, w.shape[2:], stride, padding, dilation)
    weights = jnp.broadcast_to(w.reshape(w.shape[0], -1), (x.shape[0], w.shape[0], patches.shape[1]))
    y = lax.dot_general(weights, patches, (((2,), (1,)), ((0,), (0,))), precision=lax.Precision.HIGHEST)
    return y.reshape(x.shape[0], w.shape[0], *out_spatial)


def _weight_grad_per_image(x, w, dy, stride, padding, dilation):
    """One product per image of dy with its patches, summed over the images."""
    _, weight_vjp = jax.vjp(lambda w: _gemm_per_image_forward(x, w, stride, padding, dilation), w)
    return weight_vjp(dy)[0]


_gemm_per_image = _with_backward(
    _gemm_per_image_forward, _gemm_per_image_forward, _weight_grad_per_image, "conv_gemm_per_image"
)


def _shift_forward(x: jax.Array, w: jax.Array, stride: tuple, padding: Pairs, dilation: tuple) -> jax.Array:
    """Depthwise convolution (groups == in_channels, w of shape (C*m, 1, *k)) as shifted multiply-adds."""
    channels, multiplier = x.shape[1], w.shape[0] // x.shape[1]
    kernel = w.shape[2:]
    if multiplier > 1:  # output channel c*m + j reads input channel c
        x = jnp.repeat(x, multiplier, axis=1)
    xp = _pad_spatial(x, padding)
    out_spatial = _output_spatial(xp.shape[2:], kernel, stride, dilation)
    weight = w.reshape(channels * multiplier, math.prod(kernel))
    out = None
    for index, (_, piece) in enumerate(_tap_slices(xp, kernel, stride, dilation, out_spatial)):
        term = piece * weight[:, index].reshape((1, -1) + (1,) * len(kernel))
        out = term if out is None else out + term
    return out


def _weight_grad_depthwise(x, w, dy, stride, padding, dilation):
    """Weight gradient of a depthwise convolution (groups == in_channels, w of shape (C*m, 1, *k)).

    Per kernel tap, the sum over batch and space of dy times the input slice that tap meets: an
    elementwise product and a reduction XLA fuses into one pass, in the input's own layout (2x
    less CPU time than one batched matmul per kernel row with diagonal sums, 20.6 vs 39.2 ms on
    the (8, 128, 56, 56) benchmark input, whose wall time was 1.7x torch's).
    """
    multiplier = w.shape[0] // x.shape[1]
    xr = jnp.repeat(x, multiplier, axis=1) if multiplier > 1 else x
    xp = _pad_spatial(xr, padding)
    reduce = (0,) + tuple(range(2, x.ndim))
    pieces = _tap_slices(xp, w.shape[2:], stride, dilation, dy.shape[2:])
    taps = [jnp.sum(piece * dy, axis=reduce) for _, piece in pieces]
    return jnp.stack(taps, axis=-1).reshape(w.shape)


def _fenced_shift_forward(x, w, stride, padding, dilation):
    """`_shift_forward` ending in a no-op `reduce_precision` (the dtype's own exponent and
    mantissa bits) that keeps the sum over taps in its own loop fusion. Without it XLA CPU's
    YNNPACK reduce fusion takes in a following reduction (the benchmark's `sum(out * ct)`, a
    norm's statistics) together with the taps, and it takes every shifted slice and every weight
    broadcast to the full activation shape as a materialised operand: the (8, 128, 56, 56) step's
    scratch was 196 MiB (8 slices and 9 broadcasts of 12.25 MiB each), 13 MiB with the fence, and
    its CPU time 58.1 -> 32.9 ms."""
    out = _shift_forward(x, w, stride, padding, dilation)
    if not jnp.issubdtype(out.dtype, jnp.floating):
        return out
    return lax.reduce_precision(out, exponent_bits=jnp.finfo(out.dtype).nexp, mantissa_bits=jnp.finfo(out.dtype).nmant)


_shift = _with_backward(_fenced_shift_forward, _shift_forward, _weight_grad_depthwise, "conv_shift")


def _split_auto(x, w, stride, padding, dilation):
    """One group of a grouped convolution, computed as `conv` picks for a dense one of its shape;
    a Winograd one with its forward products on XLA's multi-threaded dot (`_winograd._products_spread`)."""
    if choose(x.shape, w.shape, 1, stride, padding, dilation, x.dtype) == "winograd":
        return _winograd.conv3x3(x, w, tuple(map(tuple, padding)), True)
    return conv(x, w, stride, padding, dilation, 1)


def _depth(
    x: jax.Array, w: jax.Array, stride: tuple, padding: Pairs, dilation: tuple, groups: int
) -> jax.Array:
    """A 3-D convolution as 2-D convolutions over the depth planes, with depth folded into batch.

    XLA's CPU 3-D convolutions are several times slower than its 2-D ones. A dense one is one 2-D
    convolution whose input channels are (depth tap, channel) pairs: the kd depth-shifted input
    windows stacked along channels, one bigger product instead of kd summed ones (the benchmark's
    16->32 layer, forward + backward CPU per step 97.0 -> 80.6 ms, XLA temp 192 -> 160 MiB: the kd
    summed outputs cost more than the stacked input). A grouped one is a sum over depth taps of
    2-D convolutions. Each 2-D convolution goes through `conv`'s own dispatch; where that would be
    Winograd (a (kd, 3, 3) kernel, stride 1), `_conv3d.conv3d` computes the same stacked Winograd
    convolution with fewer passes over memory (the benchmark's step, same process: wall 54.5 ->
    41.0 ms, CPU 85.3 -> 71.6 ms, XLA temp 179 -> 146 MiB).
    """
    batch, depth_taps = x.shape[0], w.shape[2]
    xt = zero_pad(jnp.swapaxes(x, 1, 2), [(0, 0), tuple(padding[0]), (0, 0), (0, 0), (0, 0)])  # N, D, C, H, W
    d_out = (xt.shape[1] - dilation[0] * (depth_taps - 1) - 1) // stride[0] + 1
    pieces = [
        lax.slice_in_dim(xt, start, start + stride[0] * (d_out - 1) + 1, stride[0], axis=1)
        for start in range(0, dilation[0] * depth_taps, dilation[0])
    ]
    plane = x.shape[3:]
    stacked_shape = (batch * d_out, depth_taps * x.shape[1]) + plane
    if (
        _conv3d.applies(x.shape, w.shape, stride, padding, dilation, groups)
        and choose(stacked_shape, (w.shape[0], stacked_shape[1]) + w.shape[3:], 1, stride[1:], padding[1:],
                   dilation[1:], x.dtype) == "winograd"
    ):  # the same stacked Winograd convolution with fewer passes over memory (`_conv3d`)
        return _conv3d.conv3d(x, w, padding)
    if groups == 1:
        stacked = jnp.stack(pieces, axis=2).reshape((batch * d_out, depth_taps * x.shape[1]) + plane)
        w2 = jnp.swapaxes(w, 1, 2).reshape((w.shape[0], depth_taps * w.shape[1]) + w.shape[3:])
        out = conv(stacked, w2, stride[1:], padding[1:], dilation[1:], 1)
    else:
        out = None
        for tap, piece in enumerate(pieces):
            piece = piece.reshape((batch * d_out,) + piece.shape[2:])
            y = conv(piece, w[:, :, tap], stride[1:], padding[1:], dilation[1:], groups)
            out = y if out is None else out + y
    out = out.reshape((batch, d_out) + out.shape[1:])
    return jnp.swapaxes(out, 1, 2)


def choose(
    x_shape: tuple,
    w_shape: tuple,
    groups: int,
    stride: tuple | None = None,
    padding: Pairs | None = None,
    dilation: tuple | None = None,
    dtype=jnp.float32,
    platform: str | None = None,
) -> str:
    """The lowering `conv` uses for these shapes (python-level dispatch at trace time).

    `stride`, `padding` and `dilation` default to 1, 0 and 1 on every spatial axis. `platform`
    defaults to JAX's default backend: every rule below was measured on CPU; elsewhere (GPU, TPU)
    XLA's own convolution (cuDNN on GPU) is used.
    """
    if not on_cpu(platform):
        return "xla"
    n = len(x_shape) - 2
    stride = tuple(stride) if stride is not None else (1,) * n
    padding = tuple(padding) if padding is not None else ((0, 0),) * n
    dilation = tuple(dilation) if dilation is not None else (1,) * n
    channels = x_shape[1]
    if len(x_shape) == 5:
        return "depth"
    if groups == 1:
        # 1-D: XLA's own convolution and weight gradient are the fastest measured. 2-D: Winograd for
        # 3x3 stride-1 layers with enough channels and tiles; otherwise one matrix product with the
        # patches matrix while it is small; otherwise XLA's forward with the weight gradient per tap
        # ("taps"), or with one product with the patches for a small fan-in ("patches").
        if len(x_shape) == 3:
            return "xla"
        fan_in = w_shape[1] * math.prod(w_shape[2:])
        if (
            fan_in >= 64
            and _winograd.applies(x_shape, w_shape, stride, padding, dilation, groups)
            and _winograd_pays(x_shape, w_shape, padding, dtype)
        ):
            return "winograd"
        if _patches_bytes(x_shape, w_shape, stride, padding, dilation, dtype) <= 32 << 20:
            return "gemm"
        return "patches" if fan_in < 64 else "taps"
    if groups == channels:
        return "shift"
    small = len(x_shape) == 4 and _conv_grouped.pays(x_shape, w_shape, groups, stride, padding, dilation, dtype)
    return "grouped" if small else "split"  # "grouped" measured in 2-D (and 3-D's planes) only


def _patches_bytes(x_shape: tuple, w_shape: tuple, stride: tuple, padding: Pairs, dilation: tuple, dtype) -> int:
    """Size of the patches matrix the "gemm" lowering builds."""
    padded = [n + lo + hi for n, (lo, hi) in zip(x_shape[2:], padding, strict=True)]
    out = _output_spatial(padded, w_shape[2:], stride, dilation)
    return x_shape[0] * w_shape[1] * math.prod(w_shape[2:]) * math.prod(out) * jnp.dtype(dtype).itemsize


def _winograd_pays(x_shape: tuple, w_shape: tuple, padding: Pairs, dtype) -> bool:
    """Winograd wins (measured on CPU) in float32/float64 once there are at least a quarter as many
    output tiles as channels; with fewer, transforming the weights dominates. Forward + backward,
    512->512 on 4x4 maps, CPU ms, "gemm" -> "winograd": batch 32 (128 tiles) 76.6 -> 60.3, batch 16
    39.0 -> 41.5, batch 8 20.5 -> 30.8 (ResNet-18's layer4 at batch 32: its step -6%, inference -8%)."""
    if jnp.dtype(dtype) not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        return False
    _, tiles, _ = _winograd.geometry(x_shape, padding)
    return 4 * x_shape[0] * math.prod(tiles) >= max(w_shape[0], w_shape[1])


def conv(
    x: jax.Array,
    w: jax.Array,
    stride: tuple,
    padding: Pairs,
    dilation: tuple,
    groups: int,
    method: str = "auto",
) -> jax.Array:
    """Cross-correlation of batched channels-first `x` with `w` of shape (out, in/groups, *kernel)."""
    padding = tuple(tuple(int(v) for v in p) for p in padding)
    stride, dilation = tuple(stride), tuple(dilation)
    if method == "auto":
        method = choose(x.shape, w.shape, groups, stride, padding, dilation, x.dtype)
    if method == "xla":
        return _xla(x, w, stride, padding, dilation, groups)
    if method == "depth":
        if x.ndim != 5:
            raise ValueError(f"the 'depth' lowering is for 3-D convolutions, got input of rank {x.ndim}")
        return _depth(x, w, stride, padding, dilation, groups)
    if method == "shift":
        if groups != x.shape[1]:
            raise ValueError(
                f"the 'shift' lowering is for depthwise convolutions, got groups={groups} for "
                f"{x.shape[1]} channels"
            )
        return _shift(x, w, stride, padding, dilation)
    if method == "taps" and groups == 1:
        return _taps(x, w, stride, padding, dilation)
    if method == "winograd":
        if not _winograd.applies(x.shape, w.shape, stride, padding, dilation, groups):
            raise ValueError(
                "the 'winograd' lowering is for dense 2-D 3x3 convolutions with stride 1, no dilation "
                f"and an output of at least 1x1, got input {x.shape}, weight {w.shape}, "
                f"stride {stride}, dilation {dilation}, groups {groups}"
            )
        return _winograd.conv3x3(x, w, padding)
    if method == "gemm":
        if groups != 1:
            raise ValueError(f"the 'gemm' lowering is for dense convolutions, got groups={groups}")
        if math.prod(w.shape[1:]) < 64:  # a small fan-in (an RGB stem): one product per image
            return _gemm_per_image(x, w, stride, padding, dilation)
        return _gemm(x, w, stride, padding, dilation)
    if method == "patches":
        if groups != 1:
            raise ValueError(f"the 'patches' lowering is for dense convolutions, got groups={groups}")
        return _taps_patches(x, w, stride, padding, dilation)
    if method == "taps":
        return _conv_grouped.split(x, w, stride, padding, dilation, groups, _taps)
    if method == "grouped":
        return _conv_grouped.conv_grouped(x, w, stride, padding, dilation, groups)
    if method == "split":
        return _conv_grouped.split(x, w, stride, padding, dilation, groups, _split_auto)
    raise ValueError(f"unknown convolution lowering {method!r}; expected one of {METHODS}")


# The transposed convolutions (`conv_transpose` and its lowerings) live in `_conv_transpose_lowering`,
# which builds on `conv` above; re-exported here for callers of this module.
from ._conv_transpose_lowering import (  # noqa: E402, F401
    TRANSPOSE_METHODS,
    choose_transpose,
    conv_transpose,
    transpose_weight,
)
