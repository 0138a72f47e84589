"""Grouped convolutions: one dense convolution per group ("split"), or one product batched over
the groups ("grouped") for small groups and strided many-group layers.

Used by: `Conv1d/2d/3d` / `F.conv*d` with groups > 1 that are not depthwise (`_conv_lowering.conv`;
"grouped" where `choose` picks it on CPU: 2-D, by `pays` below). The input's patches (im2col),
(N, G, C/G * taps, positions), meet the weights, (G, K/G, C/G * taps), in one `dot_general` batched
over the groups; the gradients are JAX's own (the input gradient scatters the patches back, the
weight gradient is the same product batched over the groups with dy). XLA compiles that one product
where "split" compiles a dense convolution with its backward per group: RegNet and ResNeXt have up
to 55 groups per layer, and regnet_y_400mf's 531 groups spent most of its compile time in XLA's HLO
passes (its float64 port test 152.8 -> 34.6 s; benchmarks/README.md, issue 28).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import zero_pad

Pairs = Sequence[tuple[int, int]]


def split(x: jax.Array, w: jax.Array, stride: tuple, padding: Pairs, dilation: tuple, groups: int, dense: Callable):
    """A grouped convolution as `groups` independent dense ones, `dense(x_g, w_g, stride, padding,
    dilation)`: XLA:CPU's runtime runs independent operations side by side on its threads."""
    xs = jnp.split(x, groups, axis=1)
    ws = jnp.split(w, groups, axis=0)
    return jnp.concatenate([dense(a, b, stride, padding, dilation) for a, b in zip(xs, ws, strict=True)], axis=1)


def _output_spatial(x_shape: tuple, kernel: tuple, stride: tuple, padding: Pairs, dilation: tuple) -> tuple:
    return tuple(
        (n + lo + hi - d * (k - 1) - 1) // s + 1
        for n, k, s, (lo, hi), d in zip(x_shape[2:], kernel, stride, padding, dilation, strict=True)
    )


def patches(x: jax.Array, kernel: tuple, stride: tuple, padding: Pairs, dilation: tuple):
    """(N, C, taps, *out) strided slices of zero-padded `x` (N, C, *spatial), one per kernel tap."""
    xp = zero_pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in padding])
    out = _output_spatial(x.shape, kernel, stride, padding, dilation)
    pieces = []
    for tap in itertools.product(*(range(k) for k in kernel)):
        start = (0, 0) + tuple(t * d for t, d in zip(tap, dilation, strict=True))
        limit = xp.shape[:2] + tuple(st + s * (o - 1) + 1 for st, s, o in zip(start[2:], stride, out, strict=True))
        pieces.append(lax.slice(xp, start, limit, (1, 1) + tuple(stride)))
    return jnp.stack(pieces, axis=2), out


def conv_grouped(x: jax.Array, w: jax.Array, stride: tuple, padding: Pairs, dilation: tuple, groups: int):
    """Cross-correlation of (N, C, *spatial) `x` with (K, C/groups, *kernel) `w`, one product
    (K/groups, C/groups * taps) x (C/groups * taps, N * positions) per group, batched."""
    batch, taps = x.shape[0], math.prod(w.shape[2:])
    cols, out = patches(x, w.shape[2:], stride, padding, dilation)  # (N, C, taps, *out)
    cols = cols.reshape(batch, groups, x.shape[1] // groups * taps, -1)
    wg = w.reshape(groups, w.shape[0] // groups, -1)
    y = lax.dot_general(wg, cols, (((2,), (2,)), ((0,), (1,))), precision=lax.Precision.HIGHEST)  # (G, K/G, N, P)
    return jnp.transpose(y, (2, 0, 1, 3)).reshape(batch, w.shape[0], *out)


def pays(x_shape: tuple, w_shape: tuple, groups: int, stride: tuple, padding: Pairs, dilation: tuple, dtype) -> bool:
    """Whether "grouped" runs no slower than "split" (one dense convolution per group, each through
    `conv`'s dispatch), measured on CPU (CPU ms per forward + backward step, every array an
    argument, "split" -> "grouped"):
    - while a group's forward is at most 2**17 multiply-adds. RegNet-like 8-channel groups, float32
      / float64: 55 groups on (2, 440, 4, 4) (18k per group) 1.29 -> 0.39 / 1.19 -> 0.47; 28 on
      (2, 224, 8, 8) (74k) 1.08 -> 0.97 / 1.31 -> 1.16; 55 on (4, 440, 7, 7) (113k) 2.93 -> 2.68 /
      5.45 -> 5.49; above it, 55 on (8, 440, 7, 7) (226k) 4.99 -> 5.86, and ResNeXt-like stride-1
      layers (groups of 4-32 channels at batch 8-16, 0.8M-14M per group) 1.3-2.9x slower;
    - strided with 8 groups or more and at most 16 MB of patches, where each group's dense
      convolution is a "gemm", not a Winograd one: float32 (8, 512, 14, 14) s2 32 groups 24.3 ->
      12.1, (8, 1024, 14, 14) 33.9 -> 30.1, (8, 256, 28, 28) 8 groups 29.7 -> 27.5, (2, 512, 14, 14)
      6.0 -> 2.6; with 58 MB of patches, (8, 256, 56, 56) 32 groups, 76.9 -> 110.3."""
    out = _output_spatial(x_shape, w_shape[2:], stride, padding, dilation)
    positions = x_shape[0] * math.prod(out)
    if positions * (w_shape[0] // groups) * math.prod(w_shape[1:]) <= 1 << 17:
        return True
    patch_bytes = positions * x_shape[1] * math.prod(w_shape[2:]) * jnp.dtype(dtype).itemsize
    return any(s > 1 for s in stride) and groups >= 8 and patch_bytes <= 16 << 20
