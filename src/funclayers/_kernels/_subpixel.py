"""A strided transposed convolution as one stride-1 convolution with stride**n times the outputs.

Used by: `_conv_lowering.conv_transpose` on CPU (`ConvTranspose1d/2d/3d`, `F.conv_transpose*d`)
for dilation 1. Why (benchmarks/README.md, issue 28): XLA computes a transposed convolution as a
convolution of the input dilated by the stride, where stride**n - 1 of every stride**n input
positions are zeros; the sub-pixel form reads the input as it is.

Along one axis, output position o = s*m + r (phase r = 0..s-1) receives input i through kernel tap
k exactly when o + p = s*i + k, so phase r meets only the taps k = c_r, c_r + s, ... (c_r =
(r + p) mod s) and the input positions m + q_r, m + q_r - 1, ...: each phase is an ordinary
stride-1 correlation of the input with a ceil(k/s)-tap slice of the flipped kernel, at an offset of
its own. All phases share one stride-1 convolution whose output channels are (phase, channel)
pairs: its weight holds every phase's kernel slice (a zero where a phase has fewer taps), its
padding covers every phase's offset, and each phase's output is a window of that convolution's,
interleaved back into the strided output. The convolution goes through `conv`'s own dispatch, so
its gradients and every JAX transformation come with it; nothing here needs a rule of its own.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._utils import zero_pad


class AxisPlan(NamedTuple):
    """How one spatial axis splits into phases.

    Attributes:
      taps: (stride, window) kernel tap that phase r applies at window position t (the kernel size:
        a zero).
      padding: (low, high) padding of the input for the shared stride-1 convolution.
      starts: per phase, where its window starts in the shared convolution's output.
      length: positions per phase (ceil(output size / stride)).
      size: the transposed convolution's output size along this axis.
    """

    taps: np.ndarray
    padding: tuple[int, int]
    starts: tuple[int, ...]
    length: int
    size: int


def plan_axis(size_in: int, kernel: int, stride: int, padding: int, output_padding: int) -> AxisPlan:
    """The phase plan of one axis of a transposed convolution with dilation 1."""
    size = (size_in - 1) * stride - 2 * padding + kernel + output_padding
    window = -(-kernel // stride)
    taps = np.full((stride, window), kernel, np.int32)
    offsets = []
    for r in range(stride):
        first = (r + padding) % stride  # the smallest tap phase r meets
        for t in range(window):  # window position t meets tap first + stride * (window - 1 - t)
            tap = first + stride * (window - 1 - t)
            if tap < kernel:
                taps[r, t] = tap
        offsets.append((r + padding - first) // stride - window + 1)
    length = -(-size // stride)
    low = -min(offsets)
    high = max(offsets) + low + length + window - 1 - size_in - low
    return AxisPlan(taps, (low, high), tuple(o + low for o in offsets), length, size)


def phase_weight(w: jax.Array, plans: list[AxisPlan], groups: int) -> jax.Array:
    """The shared convolution's weight (groups * phases * out/g, in/g, *window) from the transposed
    convolution's (in, out/g, *kernel): output channels ordered (group, phase, channel)."""
    n = len(plans)
    c_in, out_per_group = w.shape[:2]
    f = zero_pad(w, [(0, 0), (0, 0)] + [(0, 1)] * n)  # index `kernel` reads a zero
    for a, plan in enumerate(plans):  # kernel axis a -> (phase, window) axes
        f = jnp.take(f, jnp.asarray(plan.taps.reshape(-1)), axis=2 + 2 * a)
        f = f.reshape(f.shape[: 2 + 2 * a] + plan.taps.shape + f.shape[3 + 2 * a :])
    # (in, out/g, s_1, J_1, ..., s_n, J_n) -> (g, s_1..s_n, out/g, in/g, J_1..J_n)
    f = f.reshape((groups, c_in // groups) + f.shape[1:])
    perm = [0] + [3 + 2 * a for a in range(n)] + [2, 1] + [4 + 2 * a for a in range(n)]
    f = jnp.transpose(f, perm)
    phases = math.prod(plan.taps.shape[0] for plan in plans)
    return f.reshape((groups * phases * out_per_group, c_in // groups) + tuple(p.taps.shape[1] for p in plans))


def interleave(z: jax.Array, plans: list[AxisPlan], groups: int) -> jax.Array:
    """The transposed convolution's output from the shared convolution's (N, g * phases * out/g, ...)."""
    n = len(plans)
    strides = tuple(plan.taps.shape[0] for plan in plans)
    out_per_group = z.shape[1] // (groups * math.prod(strides))
    z = z.reshape((z.shape[0], groups) + strides + (out_per_group,) + z.shape[2:])
    for a, plan in enumerate(plans):  # each phase's window along axis a
        phase_axis, space_axis = 2 + a, 3 + n + a
        pieces = [
            lax.slice_in_dim(lax.index_in_dim(z, r, phase_axis), start, start + plan.length, axis=space_axis)
            for r, start in enumerate(plan.starts)
        ]
        z = jnp.concatenate(pieces, axis=phase_axis) if len(pieces) > 1 else pieces[0]
    # (N, g, s_1..s_n, out/g, M_1..M_n) -> (N, g, out/g, M_1, s_1, ..., M_n, s_n)
    perm = [0, 1, 2 + n] + [i for a in range(n) for i in (3 + n + a, 2 + a)]
    y = jnp.transpose(z, perm).reshape(
        (z.shape[0], groups * out_per_group) + tuple(p.length * s for p, s in zip(plans, strides, strict=True))
    )
    return y[(slice(None), slice(None)) + tuple(slice(0, plan.size) for plan in plans)]
