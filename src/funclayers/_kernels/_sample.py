"""The sampling kernel behind grid_sample: weighted taps gathered per output point, channels first.

`sample_taps(flat, weight, index)` is out[n, c, p] = sum_t weight[n, p, t] * flat[n, c, index[n, p, t]],
bilinear in (flat, weight); `index` holds flat spatial positions, already inside [0, S) (a tap
outside the image has weight 0). It is a `jax.custom_jvp` whose tangent is paired with a
hand-written transpose by `_primitive.linear_call`, so jvp, vmap and higher orders keep working.

Why, measured on the 2-core CPU (forward + backward of grid_sample bilinear on (16, 64, 32, 32)
with a (16, 32, 32, 2) grid, CPU time per step under load, one process, alternating):
- the forward gathers each tap's C values straight from the NCHW input (a gather whose slice is
  the channel axis) and sums the taps in one loop fusion: no transposed copy of the input and no
  transposed output. The former channels-last lowering gathered (2, C) pairs and summed them by a
  batched dot (16384 products of (1, 4) x (4, 64)): 13.9 ms against 2.6 ms;
- JAX's own transpose of that gather is a scatter of strided (C, every S-th element) windows: 56 ms.
  The transpose here scatters contiguous C-vectors into channels-last accumulators, in a loop
  over groups of up to 4 images (`_input_grad`): the loop keeps XLA from fusing the cotangent's
  transpose into the weighted updates (that fusion alone took 12 ms; one scatter of all taps 15 ms
  in all, a `fori_loop` of one scatter per tap into one accumulator 4.2-4.8 ms with both
  transposes). Per image, the accumulator is small, needs no full-size zero fill, and is
  transposed back into the output by the loop. Same process, alternating, `chrt -f 1`, wall ms of
  the whole step, 4 images per step against the per-tap loop: 8.7-9.1 vs 11.5-12.1 in the
  machine's slow-memory periods, 5.0-5.2 vs 5.3 in its fast ones (benchmarks/README.md, issue 28);
- the weight gradient sums cotangent x gathered tap over the channels as a tree of slice additions
  (one loop fusion; a `reduce` becomes a library reduction over a materialised gather: 4.8-6.9 ms
  against 3.1 ms), gathering with its index columns swapped so that XLA does not merge these
  gathers with the forward's and materialise them (26.5 ms against 14.5 ms for the whole step).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from ._primitive import linear_call

_PROMISE = lax.GatherScatterMode.PROMISE_IN_BOUNDS  # every index is clipped into range beforehand
_TAP = lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0, 2), start_index_map=(0, 2))
_TAP_SWAPPED = lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0, 2), start_index_map=(2, 0))
_ROWS = lax.ScatterDimensionNumbers(update_window_dims=(1,), inserted_window_dims=(0,),
                                    scatter_dims_to_operand_dims=(0,))


def _gather_tap(flat: jax.Array, index: jax.Array, swapped: bool = False) -> jax.Array:
    """flat[n, :, index[n, p]] as (N, C, P): one gather whose slice is the channel axis."""
    channels = flat.shape[1]
    batch = lax.broadcasted_iota(jnp.int32, index.shape, 0)
    if swapped:
        return lax.gather(flat, jnp.stack([index, batch], -1), _TAP_SWAPPED, (1, channels, 1), mode=_PROMISE)
    return lax.gather(flat, jnp.stack([batch, index], -1), _TAP, (1, channels, 1), mode=_PROMISE)


def _forward(flat: jax.Array, weight: jax.Array, index: jax.Array) -> jax.Array:
    out = _gather_tap(flat, index[..., 0]) * weight[:, None, :, 0]
    for t in range(1, index.shape[-1]):
        out = out + _gather_tap(flat, index[..., t]) * weight[:, None, :, t]
    return out


def _tree_sum(values: jax.Array, axis: int) -> jax.Array:
    """Sum over `axis` as pairwise slice additions, which XLA fuses with their producers."""
    while values.shape[axis] > 1:
        half = values.shape[axis] // 2
        paired = lax.slice_in_dim(values, 0, half, axis=axis) + lax.slice_in_dim(values, half, 2 * half, axis=axis)
        rest = lax.slice_in_dim(values, 2 * half, values.shape[axis], axis=axis)
        values = jnp.concatenate([paired, rest], axis) if rest.shape[axis] else paired
    return jnp.squeeze(values, axis)


def _images_per_step(batch: int) -> int:
    """Images per step of `_input_grad`'s loop: the largest divisor of `batch` up to 4 that leaves two or
    more steps (a loop of one step is unrolled, and XLA then fuses the cotangent's transpose into the
    weighted updates); 0 where there is none (batch 1). Up to 4: at batch 16, wall ms of the step in
    the machine's slow / fast periods, 4 images per step 8.7-9.1 / 5.0-5.2, 8 8.9 / 5.4, 2 10.0-10.3,
    1 10.6-11.0, the per-tap loop 11.5-12.1 / 5.3 (same process, alternating)."""
    return next((k for k in range(min(4, batch // 2), 0, -1) if batch % k == 0), 0)


def _input_grad(cotangent: jax.Array, weight: jax.Array, index: jax.Array, size: int) -> jax.Array:
    """The transpose of `_forward` in `flat`: scatter-adds of C-vectors into channels-last accumulators.

    A loop over groups of images (`_images_per_step`); each image's taps are scattered into an
    accumulator of its own, which is transposed back into the output: each accumulator is small
    and there is no full-size zero fill. Batch 1: one scatter per tap into one accumulator
    (`_input_grad_taps`).
    """
    n, channels, points = cotangent.shape
    taps = index.shape[-1]
    per_step = _images_per_step(n)
    if not per_step:
        return _input_grad_taps(cotangent, weight, index, size)
    rows = jnp.swapaxes(cotangent, 1, 2)  # (N, P, C): materialised once, as the loop's input
    scales = jnp.swapaxes(weight, 1, 2)  # (N, T, P)
    starts = jnp.swapaxes(index, 1, 2).reshape(n, taps * points, 1)

    def image(rows, scales, starts):
        updates = (scales[:, :, None] * rows).reshape(taps * points, channels)
        acc = lax.scatter_add(jnp.zeros((size, channels), rows.dtype), starts, updates, _ROWS, mode=_PROMISE)
        return acc.T

    def step(carry, group):
        return carry, jnp.stack([image(*(a[j] for a in group)) for j in range(per_step)])

    groups = [a.reshape(n // per_step, per_step, *a.shape[1:]) for a in (rows, scales, starts)]
    return lax.scan(step, None, groups)[1].reshape(n, channels, size)


def _input_grad_taps(cotangent: jax.Array, weight: jax.Array, index: jax.Array, size: int) -> jax.Array:
    """`_input_grad` as one scatter-add per tap into one channels-last accumulator, in a `fori_loop`."""
    n, channels, points = cotangent.shape
    taps = index.shape[-1]
    rows = jnp.swapaxes(cotangent, 1, 2).reshape(n * points, channels)
    offset = (jnp.arange(n, dtype=index.dtype) * size)[:, None, None]
    starts = jnp.moveaxis(index + offset, -1, 0).reshape(taps, n * points, 1)
    scales = jnp.moveaxis(weight, -1, 0).reshape(taps, n * points, 1)

    def scatter_tap(t, acc):
        updates = rows * lax.dynamic_index_in_dim(scales, t, 0, keepdims=False)
        return lax.scatter_add(acc, lax.dynamic_index_in_dim(starts, t, 0, keepdims=False), updates, _ROWS,
                               mode=_PROMISE)

    acc = lax.fori_loop(0, taps, scatter_tap, jnp.zeros((n * size, channels), cotangent.dtype))
    return jnp.swapaxes(acc.reshape(n, size, channels), 1, 2)


def _weight_grad(cotangent: jax.Array, flat: jax.Array, index: jax.Array) -> jax.Array:
    """The transpose of `_forward` in `weight`: sum over channels of cotangent x gathered tap."""
    return jnp.stack([_tree_sum(cotangent * _gather_tap(flat, index[..., t], swapped=True), 1)
                      for t in range(index.shape[-1])], -1)


def _transpose(cotangent, flat, weight, index):
    """The transpose of `_forward` in (flat, weight): the gradients w.r.t. the input and the tap weights."""
    return _input_grad(cotangent, weight, index, flat.shape[-1]), _weight_grad(cotangent, flat, index)


@jax.custom_jvp
def sample_taps(flat: jax.Array, weight: jax.Array, index: jax.Array) -> jax.Array:
    """sum_t weight[n, p, t] * flat[n, c, index[n, p, t]]: (N, C, S), (N, P, T), (N, P, T) int -> (N, C, P).

    Args:
      flat: the input, channels first, its spatial axes flattened.
      weight: each output point's tap weights.
      index: each tap's flat spatial position, inside [0, S).

    Shape: (N, C, S), (N, P, T), (N, P, T) -> (N, C, P).

    Example:
      >>> flat = jnp.arange(6.).reshape(1, 2, 3)
      >>> sample_taps(flat, jnp.array([[[0.5, 0.5]]]), jnp.array([[[0, 2]]]))
      Array([[[1.],
              [4.]]], dtype=float32)
    """
    return _forward(flat, weight, index)


@partial(sample_taps.defjvp, symbolic_zeros=True)
def _sample_taps_jvp(primals, tangents):
    flat, weight, index = primals
    flat_dot, weight_dot, _ = tangents

    def tangent(flat, weight, index, flat_dot, weight_dot):
        terms = ([_forward(flat_dot, weight, index)] if flat_dot is not None else []) + (
            [_forward(flat, weight_dot, index)] if weight_dot is not None else [])
        return [terms[0] if len(terms) == 1 else terms[0] + terms[1]]

    def transpose(cotangents, flat, weight, index):
        (cotangent,) = cotangents
        return list(_transpose(cotangent, flat, weight, index))

    (out_dot,) = linear_call(tangent, transpose, (flat, weight, index), (flat_dot, weight_dot), "grid_sample")
    return _forward(flat, weight, index), out_dot
