"""How a convolution is computed on the device: the lowerings behind conv*d and conv_transpose*d.

Used by: `Conv1d/2d/3d`, `ConvTranspose1d/2d/3d` and `F.conv*d` / `F.conv_transpose*d`. Why
(benchmarks/README.md): XLA's CPU weight-gradient and grouped convolutions are slow; with these
lowerings, in the quiet rerun of 2026-12-07 13:19 (benchmarks/results.md, last table: forward and
backward, every array an argument), the dense and depthwise 2-D rows run at 0.69-1.02x of torch's
step (depthwise 0.69x) where Flax and Equinox run at 0.95-7.4x; 1-D (1.2x), grouped (1.0-1.8x:
torch's own time moves), transposed (1.5x) and 3-D (1.9x) convolutions are still slower than
torch's (benchmarks/README.md, twelfth session).
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
  for its shape (Winograd for the benchmark's 32->32 3x3 groups); "taps" forces "taps" per group.
  XLA:CPU runs the independent groups side by side on its threads. "grouped", for small groups
  and strided many-group layers: one product batched over the groups (`_conv_grouped.py`).
- "depth": 3-D convolutions as 2-D ones over the depth planes (XLA's CPU 3-D convolutions are
  several times slower than its 2-D ones): a dense one as one 2-D convolution whose input
  channels are the kd depth-shifted planes stacked, a grouped one as a sum over depth taps.

A transposed convolution is computed per output phase, one stride-1 convolution of the input as
it is for each (`conv_transpose` below, "phases"), instead of XLA's convolution of the input
dilated by the stride; its weight gradient is per kernel tap, as XLA's is slow.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import on_cpu, zero_pad
from . import _conv_grouped, _winograd
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
    """One group of a grouped convolution, computed as `conv` picks for a dense one of its shape."""
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
    2-D convolutions. Each 2-D convolution goes through `conv`'s own dispatch.
    """
    batch, depth_taps = x.shape[0], w.shape[2]
    xt = zero_pad(jnp.swapaxes(x, 1, 2), [(0, 0), tuple(padding[0]), (0, 0), (0, 0), (0, 0)])  # N, D, C, H, W
    d_out = (xt.shape[1] - dilation[0] * (depth_taps - 1) - 1) // stride[0] + 1
    pieces = [
        lax.slice_in_dim(xt, start, start + stride[0] * (d_out - 1) + 1, stride[0], axis=1)
        for start in range(0, dilation[0] * depth_taps, dilation[0])
    ]
    plane = x.shape[3:]
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
    """The input gradient as the transpose of the per-phase convolutions, the weight gradient per tap
    (as "strided")."""
    args = (stride, padding, output_padding, dilation, groups)
    (dx,) = jax.vjp(lambda x: _conv_transpose_phases(x, w, *args), x)[1](dy)
    return dx, _conv_transpose_weight_grad(x, w, dy, stride, padding, dilation, groups)


_conv_transpose_by_phase = bilinear(_conv_transpose_phases, _conv_transpose_phases_backward, "conv_transpose_phases")


TRANSPOSE_METHODS = ("auto", "xla", "strided", "phases")


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
    output phase, the input gradient their transpose, the weight gradient as "strided". "auto" is
    "phases" on CPU where it applies (the (16, 64, 16, 16) k4 s2 step: CPU 17.0 -> 14.0 ms against
    "strided"; forward 5.4 -> 3.9), "strided" for dilated ones, and "xla" elsewhere.
    """
    args = (tuple(stride), tuple(padding), tuple(output_padding), tuple(dilation), groups)
    if method == "auto":
        method = ("phases" if all(d == 1 for d in dilation) else "strided") if on_cpu() else "xla"
    if method == "xla":
        return _conv_transpose_forward(x, w, *args)
    if method == "strided":
        return _conv_transpose(x, w, *args)
    if method == "phases":
        if any(d != 1 for d in dilation):
            raise ValueError(f"the 'phases' transposed convolution lowering is for dilation 1, got {tuple(dilation)}")
        return _conv_transpose_by_phase(x, w, *args)
    raise ValueError(f"unknown transposed convolution lowering {method!r}; expected one of {TRANSPOSE_METHODS}")
