"""EmbeddingBag (torch.nn.modules.sparse): sums, means or maxima of bags of embedding rows.

Split from `_sparse.py`, whose module docstring states the differences from torch shared by both
layers (`max_norm`, `sparse=True`, `freeze`, out-of-range indices); this one's own:
`scale_grad_by_freq` divides each index's gradient by that index's frequency in the input, the
documented rule (torch's CPU kernel divides by another index's count; tests/test_sparse.py shows it).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._layer import Layer
from ._sparse import (
    _check_indices,
    _check_sizes,
    _check_weight,
    _gathered_rows,
    _initial_weight,
    _is_concrete,
    _padding_index,
    _pretrained_weight,
    _weight_init,
)
from ._utils import (
    TorchNotImplementedError,
    TorchRuntimeError,
    check_param_dtypes,
    fmt_shape,
)

_MODES = ("sum", "mean", "max")


def _bag_structure(who: str, input: jax.Array, offsets: Any, include_last_offset: bool) -> tuple:
    """(bag id of each flat position (N,), number of bags) for 1-D input with offsets."""
    n = input.shape[0]
    if isinstance(offsets, (list, tuple)):
        offsets = np.asarray(offsets, np.int64 if len(offsets) else np.int32)
    if offsets is None:
        raise ValueError(f"{who}: offsets has to be a 1D array but got None (a 1-D input is a concatenation of "
                         f"bags; pass their start positions as offsets, or give a 2-D (B, N) input).")
    if len(fmt_shape(offsets)) != 1:
        raise ValueError(f"{who}: offsets has to be a 1D array, got shape {fmt_shape(offsets)}.")
    odtype = jnp.result_type(offsets)
    if not jnp.issubdtype(odtype, jnp.integer):
        raise TypeError(f"{who}: offsets must be integers, got dtype {odtype}.")
    num_bags = offsets.shape[0] - (1 if include_last_offset else 0)
    num_bags = max(num_bags, 0)
    if _is_concrete(offsets) and offsets.shape[0]:
        values = np.asarray(offsets)
        if values[0] != 0:
            raise TorchRuntimeError(f"{who}: offsets[0] has to be 0, i.e., the first sequence in the mini-batch has "
                                    f"to start from position 0. However, got {values[0]}")
        if values[-1] > n:
            raise TorchRuntimeError(f"{who}: offsets[-1] can not be greater than input's length {n} but got "
                                    f"offsets[-1] of {values[-1]}")
        if include_last_offset and values[-1] != n:
            # torch documents offsets[-1] == len(input) (CSR); with less, its modes disagree (sum ends
            # the last bag at offsets[-1], mean divides by the distance to the input's end, max reads
            # to the end), so there is no torch behaviour to match
            raise TorchRuntimeError(f"{who}: with include_last_offset=True, offsets[-1] must equal the input's "
                                    f"length {n} (CSR layout, as torch documents), got {values[-1]}.")
        if np.any(np.diff(values) < 0):
            raise TorchRuntimeError(f"{who}: offsets must be non-decreasing (each bag starts where the previous "
                                    f"one ends or later), got {values.tolist()[:10]}.")
    offsets = jnp.asarray(offsets)
    # position p belongs to the last bag starting at or before p; with include_last_offset the
    # positions from offsets[-1] on belong to no bag (id num_bags, dropped by the segment ops)
    seg = jnp.searchsorted(offsets, jnp.arange(n, dtype=offsets.dtype), side="right") - 1
    return seg, num_bags


def embedding_bag(input: Any, weight: Any, offsets: Any = None, max_norm: float | None = None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean",
                  sparse: bool = False, per_sample_weights: Any = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> jax.Array:
    """Sums, means or maxes of bags of embeddings, without the per-index output; torch.nn.functional.embedding_bag.

    Args:
      input: (B, N) integer: B bags of N indices each; or (N,) with `offsets`, the bags' concatenation.
      weight: (num_embeddings, embedding_dim).
      offsets: (B,) integer start of each bag in a 1-D input (B + 1 with include_last_offset, the last
        entry ending the last bag); may be traced under jit. Empty bags give zeros. Concrete offsets
        are checked as torch does (offsets[0] == 0, non-decreasing, offsets[-1] <= N, == N with
        include_last_offset); traced ones are not: positions before offsets[0], or from offsets[-1]
        on with include_last_offset, then belong to no bag. Default: None.
      max_norm: rows of norm above max_norm are renormalised to it in the output, as in
        `embedding`. Default: None.
      norm_type: the p of the p-norm compared with max_norm. Default: 2.
      scale_grad_by_freq: each row's gradient is divided by its index's frequency in the input.
        Default: False.
      sparse: accepted; gradients are dense in JAX. Default: False.
      mode: "sum", "mean" or "max" (per feature). Default: 'mean'.
      per_sample_weights: float weights of input's shape, scaling each looked-up row (mode="sum" only). Default: None.
      include_last_offset: offsets has B + 1 entries (CSR layout). Default: False.
      padding_idx: that index is left out of its bag (and of the mean's count); negative counts from the end.
        Default: None.

    Shape:
      input (B, N), or (N,) with offsets (B,) ((B + 1,) with include_last_offset); weight
      (num_embeddings, embedding_dim); per_sample_weights of the input's shape -> (B, embedding_dim).

    Example:
      >>> w = jnp.arange(30.0).reshape(10, 3)
      >>> F.embedding_bag(jnp.array([1, 2, 4, 5, 4, 3]), w, jnp.array([0, 4]), mode="sum")
      Array([[36., 40., 44.],
             [21., 23., 25.]], dtype=float32)
    """
    return _embedding_bag("embedding_bag", input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode,
                          sparse, per_sample_weights, include_last_offset, padding_idx)


def _segment_first_max(rows: jax.Array, seg: jax.Array, num_bags: int) -> jax.Array:
    """Per bag and feature, the value at the first position holding the maximum (torch's max mode,
    whose gradient goes to that one position; a segment max's derivative would split ties)."""
    n = rows.shape[0]
    top = jax.lax.stop_gradient(jax.ops.segment_max(rows, seg, num_segments=num_bags))
    in_bag = (seg >= 0) & (seg < num_bags)
    is_top = (rows == jnp.take(top, jnp.clip(seg, 0, max(num_bags - 1, 0)), axis=0)) & in_bag[:, None]
    position = jnp.broadcast_to(jnp.arange(n)[:, None], rows.shape)
    first = jax.ops.segment_min(jnp.where(is_top, position, n), seg, num_segments=num_bags)
    return jnp.take_along_axis(rows, jnp.clip(first, 0, max(n - 1, 0)), axis=0)


def _embedding_bag(who, input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                   per_sample_weights, include_last_offset, padding_idx) -> jax.Array:
    if per_sample_weights is not None and fmt_shape(per_sample_weights) != fmt_shape(input):
        raise ValueError(f"{who}: If per_sample_weights ({fmt_shape(per_sample_weights)}) is not None, then it "
                         f"must have the same shape as the input ({fmt_shape(input)})")
    weight = _check_weight(who, weight)
    num = weight.shape[0]
    rank = len(fmt_shape(input))
    if rank == 2 and offsets is not None:
        raise ValueError(f"{who}: if input is 2D, then offsets has to be None, as input is treated is a mini-batch "
                         f"of fixed length sequences. However, found offsets of shape {fmt_shape(offsets)}")
    if rank not in (1, 2):
        raise ValueError(f"{who}: input has to be 1D or 2D, but got shape {fmt_shape(input)}.")
    if mode not in _MODES:
        raise ValueError(f"{who}: mode has to be one of sum, mean or max, got {mode!r}.")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError(f"{who}: max mode does not support scaling the gradient by the frequency")
    if mode == "max" and sparse:
        raise ValueError(f"{who}: max mode does not support sparse weights")
    if per_sample_weights is not None and mode != "sum":
        raise TorchNotImplementedError(f"{who}: per_sample_weights was not None. per_sample_weights is only "
                                       f"supported for mode='sum' (got mode='{mode}').")
    if padding_idx is not None and not -num <= padding_idx < num:
        raise TorchRuntimeError(f"{who}: padding_idx must be within the number of embeddings, {-num} through "
                                f"{num - 1}, but got {padding_idx}")
    pad = None if padding_idx is None else int(padding_idx) % num
    # torch's checkSameType(weight, per_sample_weights), before any lookup; no cast
    check_param_dtypes(who, per_sample_weights, (weight,), "Expected tensor for argument #1 'weight' to have the same "
                       "type as tensor for argument #1 'per_sample_weights'; but type {param_t} does not equal "
                       "{input_t} (while checking arguments for embedding_bag)")
    idx = _check_indices(who, input, num)
    if rank == 1:
        seg, num_bags = _bag_structure(who, idx, offsets, include_last_offset)
    if rank == 1 and num_bags == 0:  # no bags (JAX cannot transpose a segment sum into 0 segments)
        return jnp.zeros((0, weight.shape[1]), weight.dtype)
    rows = _gathered_rows(weight, idx, pad, max_norm, norm_type, scale_grad_by_freq)
    if per_sample_weights is not None:
        rows = rows * jnp.asarray(per_sample_weights)[..., None]
    keep = None if pad is None else idx != pad
    zero = jnp.zeros((), rows.dtype)
    if mode == "max":
        masked = rows if keep is None else jnp.where(keep[..., None], rows, -jnp.inf)
    else:
        masked = rows if keep is None else jnp.where(keep[..., None], rows, zero)
    if rank == 2:  # fixed-length bags: plain reductions over axis 1
        size = jnp.full(idx.shape[:1], idx.shape[1], rows.dtype) if keep is None else jnp.sum(keep, 1, rows.dtype)
        if mode == "max" and idx.shape[1]:
            # torch's kernel keeps the first maximum of each feature (strict >), and so its gradient:
            # pick it by argmax instead of jnp.max, whose derivative splits ties between rows
            first = jnp.argmax(masked, axis=1)
            out = jnp.take_along_axis(masked, first[:, None, :], axis=1)[:, 0]
        elif mode == "max":
            out = jnp.zeros((idx.shape[0], weight.shape[1]), rows.dtype)
        else:
            out = jnp.sum(masked, axis=1)
    else:
        ones = jnp.ones(idx.shape, rows.dtype) if keep is None else keep.astype(rows.dtype)
        size = jax.ops.segment_sum(ones, seg, num_segments=num_bags)
        if mode == "max":
            out = _segment_first_max(masked, seg, num_bags)
        else:
            out = jax.ops.segment_sum(masked, seg, num_segments=num_bags)
    if mode == "mean":
        out = out / jnp.maximum(size, 1)[:, None]
    elif mode == "max":
        out = jnp.where((size > 0)[:, None], out, zero)  # empty bags (or all padding) give zeros, as torch
    return out


def EmbeddingBag(num_embeddings: int, embedding_dim: int, max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False, _weight: Any = None,
                 include_last_offset: bool = False, padding_idx: int | None = None, device: Any = None,
                 dtype: Any = None) -> Layer:
    """Sums, means or maxes of bags of embeddings; torch.nn.EmbeddingBag.

    Params: weight (num_embeddings, embedding_dim), N(0, 1) with the padding row zeroed (in `state`
    when frozen by `EmbeddingBag.from_pretrained(..., freeze=True)`).

    Forward: `apply(params, state, input, offsets=None, per_sample_weights=None)`, as
    `fl.functional.embedding_bag` (offsets may be traced under jit; empty bags give zeros).

    Args:
      num_embeddings: size of the dictionary of embeddings.
      embedding_dim: the size of each embedding vector.
      max_norm: rows of norm above max_norm are renormalised to it in the output (the weight is
        unchanged, see Embedding). Default: None.
      norm_type: the p of the p-norm compared with max_norm. Default: 2.0.
      scale_grad_by_freq: each row's gradient is divided by its index's frequency in the
        mini-batch (not with mode="max"). Default: False.
      mode: "sum", "mean" or "max". Default: 'mean'.
      include_last_offset: offsets has one entry per bag plus the end of the last bag. Default: False.
      padding_idx: that index is left out of its bag and of the mean's count; its row starts at zero. Default: None.
      sparse: accepted; gradients are dense in JAX. Default: False.
      _weight: an initial weight (num_embeddings, embedding_dim). Default: None.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Shape:
      input (B, N), or (N,) with offsets (B,) ((B + 1,) with include_last_offset); per_sample_weights
      of the input's shape -> (B, embedding_dim).

    Example:
      >>> bag = fl.EmbeddingBag(10, 3, mode="sum")
      >>> params, state = bag.init(jax.random.PRNGKey(0))
      >>> y, _ = bag.apply(params, state, jnp.array([1, 2, 4, 5, 4, 3, 2, 9]), jnp.array([0, 4]))
      >>> y.shape   # two bags of four indices
      (2, 3)
    """
    del device
    return _embedding_bag_layer(num_embeddings, embedding_dim, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                                _weight, include_last_offset, padding_idx, dtype, False)


def _embedding_bag_layer(num_embeddings, embedding_dim, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                         _weight, include_last_offset, padding_idx, dtype, _freeze) -> Layer:
    who = "EmbeddingBag"
    _check_sizes(who, num_embeddings, embedding_dim)
    pad = _padding_index(who, padding_idx, num_embeddings, label="padding_idx")
    if mode not in _MODES:
        raise ValueError(f"{who}: mode has to be one of sum, mean or max, got {mode!r}.")
    weight = _initial_weight(who, _weight, num_embeddings, embedding_dim, dtype)
    name = f"EmbeddingBag({num_embeddings}, {embedding_dim}"
    if max_norm is not None:
        name += f", max_norm={max_norm!r}"
    if norm_type != 2:
        name += f", norm_type={norm_type!r}"
    if scale_grad_by_freq:
        name += f", scale_grad_by_freq={scale_grad_by_freq!r}"
    name += f", mode={mode!r}"
    name += f", padding_idx={pad!r})" if pad is not None else ")"
    init = _weight_init(weight, (num_embeddings, embedding_dim), pad, dtype, _freeze)

    def apply(params, state, input, offsets=None, per_sample_weights=None, *, rng=None, training=False):
        del rng, training
        w = (state if _freeze else params)["weight"]
        return _embedding_bag(name, input, w, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                              per_sample_weights, include_last_offset, pad), state

    return Layer(init, apply, name)


def _embedding_bag_from_pretrained(embeddings: Any, freeze: bool = True, max_norm: float | None = None,
                                   norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                                   sparse: bool = False, include_last_offset: bool = False,
                                   padding_idx: int | None = None) -> Layer:
    """An EmbeddingBag whose weight is `embeddings`; torch's from_pretrained. `freeze=True` puts the
    weight in `state` (no gradient, untouched by optimizers), `freeze=False` in `params`."""
    weight = _pretrained_weight("EmbeddingBag", embeddings)
    rows, cols = weight.shape
    return _embedding_bag_layer(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse, weight,
                                include_last_offset, padding_idx, None, freeze)


EmbeddingBag.from_pretrained = _embedding_bag_from_pretrained
