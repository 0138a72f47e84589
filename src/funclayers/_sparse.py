"""Sparse layers: Embedding and EmbeddingBag (torch.nn.modules.sparse); EmbeddingBag is in _sparse_bag.py.

The weight keeps torch's layout `(num_embeddings, embedding_dim)` and torch's name `weight`.

Differences from torch, all forced by JAX's purity and all documented on the layers:

- `max_norm`: torch renormalises the looked-up rows of the weight *in place* (under no_grad) before
  the lookup. Here the output equals torch's (the rows are renormalised in the output) and the
  gradient w.r.t. the weight is torch's (the renormalisation is invisible to autodiff, as torch's
  no_grad makes it), but the weight is not changed; `embedding_renorm(weight, input, max_norm,
  norm_type)` returns the renormalised weight for users who want torch's side effect.
- `sparse=True` is accepted; gradients are dense arrays here (JAX has no sparse gradients), so
  `sparse=True` with `scale_grad_by_freq=True`, which torch's backward rejects, works.
- `scale_grad_by_freq` in EmbeddingBag divides each index's gradient by that index's frequency in
  the input, the documented rule that torch's Embedding follows. torch's CPU EmbeddingBag kernel
  divides by counts[sorted_indices[k]], k being the index's rank among the distinct indices, i.e.
  mostly by another index's frequency (EmbeddingBag.cpp, _embedding_bag_dense_backward_cpu_sum_mean);
  we do not reproduce that bug (tests/test_sparse.py shows it).
- Forward mode: torch's embedding jvp is the plain lookup of the tangent even with padding_idx /
  scale_grad_by_freq, where it disagrees with torch's own backward; ours is the linear map whose
  transpose is torch's backward (zero at padding positions, scaled by 1/frequency).
- `freeze` (`from_pretrained`, `_freeze`): the weight lives in `state` instead of `params`, so
  `jax.grad` of a function of `params` and any optax optimizer (weight decay included) leave it
  alone; `fl.state_dict` / `fl.load_state_dict` still name it `weight`.
- Out-of-range indices: with concrete indices (outside `jit`) a `ValueError` (also an `IndexError`,
  as torch raises) names the offending values. Under `jit` the indices are not known at trace time:
  an out-of-range index (negative included) then looks up a row of NaN and contributes no
  gradient, so it cannot pass unnoticed.

Lowering (measured on CPU, `benchmarks/workloads/sparse.py`): a plain XLA gather forward, whose
transpose (a scatter-add into the dense gradient) is the backward. It beat a sorted-index gather
(1.3 vs 2.3 ms for Embedding(30000, 256) on (32, 128), forward + backward) and torch (2.9 ms)
(timed before issue 28's harness fix, by a step that may have dropped the forward gather);
one-hot products cost O(num_embeddings * tokens * dim) and are out of the question at these sizes.
The options that change the gradient (padding_idx, scale_grad_by_freq, max_norm) are expressed
with `stop_gradient`, so every transformation (jvp, vmap, hessian) sees plain, linear JAX.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import init as _init
from ._interop import _to_numpy
from ._layer import Layer
from ._utils import (
    TorchIndexError,
    fmt_shape,
    param_dtype,
)

# -- argument helpers --------------------------------------------------------------------------------


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_sizes(who: str, num_embeddings: Any, embedding_dim: Any) -> None:
    for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{who}: {name} must be a non-negative int, got {value!r}.")


def _padding_index(who: str, padding_idx: int | None, num_embeddings: int, label: str = "Padding_idx") -> int | None:
    """torch's padding_idx rule: within [-num_embeddings, num_embeddings), negatives wrap."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{who}: {label} must be within num_embeddings: got padding_idx={padding_idx} for "
                         f"num_embeddings={num_embeddings} (valid: {-num_embeddings} through {num_embeddings - 1}).")
    return int(padding_idx) % num_embeddings


def _check_indices(who: str, input: Any, num_embeddings: int, what: str = "input") -> jax.Array:
    """The indices as an integer array; out-of-range values raise where they are concrete."""
    if isinstance(input, (list, tuple, int)):
        input = np.asarray(input)
    dtype = jnp.result_type(input)
    if not jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_:
        raise TypeError(f"{who} expects integer indices as {what}, got dtype {dtype} (torch: Expected tensor for "
                        f"argument #1 'indices' to have one of the following scalar types: Long, Int); cast it "
                        f"with .astype(jnp.int32).")
    if _is_concrete(input):
        values = np.asarray(input)
        if values.size and (values.min() < 0 or values.max() >= num_embeddings):
            bad = values[(values < 0) | (values >= num_embeddings)]
            raise TorchIndexError(f"{who}: index out of range in self: {what} holds {bad.ravel()[:5].tolist()} "
                                  f"(values in [{values.min()}, {values.max()}]), but the weight has "
                                  f"{num_embeddings} rows, so indices must be in [0, {num_embeddings - 1}].")
    return jnp.asarray(input)


def _check_weight(who: str, weight: Any) -> jax.Array:
    if len(fmt_shape(weight)) != 2:
        raise ValueError(f"{who}: weight has to be a 2D (num_embeddings, embedding_dim) array, but got shape "
                         f"{fmt_shape(weight)}.")
    return jnp.asarray(weight)


def _row_norm(rows: jax.Array, norm_type: float) -> jax.Array:
    """The p-norm of each row (last axis), as torch's at::norm."""
    a = jnp.abs(rows)
    if norm_type == math.inf:
        return jnp.max(a, axis=-1)
    if norm_type == -math.inf:
        return jnp.min(a, axis=-1)
    if norm_type == 0:
        return jnp.sum(a != 0, axis=-1).astype(rows.dtype)
    if norm_type == 1:
        return jnp.sum(a, axis=-1)
    if norm_type == 2:
        return jnp.sqrt(jnp.sum(rows * rows, axis=-1))
    return jnp.sum(a**norm_type, axis=-1) ** (1.0 / norm_type)


def _renorm_scale(rows: jax.Array, max_norm: float, norm_type: float) -> jax.Array:
    """torch's embedding_renorm_ factor of each row: max_norm / (norm + 1e-7) where norm > max_norm, else 1."""
    norm = _row_norm(rows, norm_type)
    return jnp.where(norm > max_norm, max_norm / (norm + 1e-7), jnp.ones((), rows.dtype)).astype(rows.dtype)


def _lookup(weight: jax.Array, idx: jax.Array) -> jax.Array:
    """weight[idx] as one gather; an out-of-range index (only possible under jit) gives a row of NaN."""
    num = weight.shape[0]
    idx = jnp.where(idx < 0, num, idx)  # negative indices are out of range, not Python-style wrapped
    return weight.at[idx].get(mode="fill", fill_value=jnp.nan)


def _frequency(idx: jax.Array) -> jax.Array:
    """How often each entry's value occurs in `idx` (same shape), by sorting: no num_embeddings-sized buffer."""
    flat = idx.reshape(-1)
    order = jnp.sort(flat)
    count = jnp.searchsorted(order, flat, side="right") - jnp.searchsorted(order, flat, side="left")
    return count.reshape(idx.shape)


def _gathered_rows(weight: jax.Array, idx: jax.Array, padding_idx: int | None, max_norm: float | None,
                   norm_type: float, scale_grad_by_freq: bool) -> jax.Array:
    """weight[idx] (..., D) with torch's gradient rules.

    The value is the lookup (renormalised rows when max_norm is set). The weight's gradient is torch's
    embedding_backward: the scatter-add of the output gradient, zero for the padding row and divided
    by each index's frequency in `idx` when scale_grad_by_freq. All of it by stop_gradient, so the
    tangent map stays a gather times a constant and JAX transposes it into that scatter-add.
    """
    rows = _lookup(weight, idx)
    value = rows
    if max_norm is not None:
        # torch renormalises under no_grad, in place: the output is the renormalised row, the
        # gradient flows to the weight as if the lookup read it unscaled.
        value = rows * jax.lax.stop_gradient(_renorm_scale(rows, max_norm, norm_type))[..., None]
    if padding_idx is None and not scale_grad_by_freq:
        if max_norm is None:
            return rows
        return jax.lax.stop_gradient(value) + (rows - jax.lax.stop_gradient(rows))
    factor = jnp.ones(idx.shape, rows.dtype)
    if scale_grad_by_freq:
        factor = factor / _frequency(idx).astype(rows.dtype)
    if padding_idx is not None:
        factor = jnp.where(idx == padding_idx, jnp.zeros((), rows.dtype), factor)
    return jax.lax.stop_gradient(value) + (rows - jax.lax.stop_gradient(rows)) * factor[..., None]


# -- the pure ops ------------------------------------------------------------------------------------


def embedding(input: Any, weight: Any, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> jax.Array:
    """Rows of `weight` looked up by the integer `input`; torch.nn.functional.embedding.

    Args:
      input: integer indices of any shape, in [0, num_embeddings).
      weight: (num_embeddings, embedding_dim).
      padding_idx: the row that gets no gradient (negative counts from the end). Default: None.
      max_norm: rows of norm above it are renormalised to max_norm in the output (torch does it to
        the weight in place; see `embedding_renorm` for that weight). Default: None.
      norm_type: the p of the p-norm for max_norm. Default: 2.0.
      scale_grad_by_freq: divide each row's gradient by its index's frequency in `input`. Default: False.
      sparse: accepted for torch compatibility; gradients are dense. Default: False.

    Shape:
      input (*) integer, weight (num_embeddings, embedding_dim) -> (*, embedding_dim).

    Example:
      >>> F.embedding(jnp.array([[0, 2], [1, 0]]), jnp.eye(3))
      Array([[[1., 0., 0.],
              [0., 0., 1.]],
      <BLANKLINE>
             [[0., 1., 0.],
              [1., 0., 0.]]], dtype=float32)
    """
    del sparse
    return _embedding("embedding", input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq)


def _embedding(who: str, input: Any, weight: Any, padding_idx: int | None, max_norm: float | None,
               norm_type: float, scale_grad_by_freq: bool) -> jax.Array:
    weight = _check_weight(who, weight)
    pad = _padding_index(who, padding_idx, weight.shape[0])
    idx = _check_indices(who, input, weight.shape[0])
    return _gathered_rows(weight, idx, pad, max_norm, norm_type, scale_grad_by_freq)


def embedding_renorm(weight: Any, input: Any, max_norm: float, norm_type: float = 2.0) -> jax.Array:
    """The weight torch leaves behind after a lookup with `max_norm`: torch.embedding_renorm_, out of place.

    torch's `F.embedding(input, weight, max_norm=...)` rescales, in place, every row of `weight`
    that `input` references and whose `norm_type`-norm exceeds `max_norm`, by max_norm / (norm + 1e-7).
    JAX arrays are immutable, so the layers only renormalise their output; call this to carry
    torch's side effect over to the weight (e.g. in a training loop: `params["weight"] =
    embedding_renorm(params["weight"], batch, max_norm)`). Not differentiated (torch runs it under
    no_grad): the result is wrapped in stop_gradient.

    Args:
      weight: the embedding table (num_embeddings, embedding_dim).
      input: integer indices of any shape, in [0, num_embeddings): the rows a lookup referenced.
      max_norm: the largest norm a referenced row keeps; rows above it are scaled down to it.
      norm_type: the p of the p-norm (default 2.0).

    Shape:
      weight (num_embeddings, embedding_dim), input (*) integer -> (num_embeddings, embedding_dim).

    Example:
      >>> embedding_renorm(jnp.array([[3.0, 4.0], [0.3, 0.4]]), jnp.array([0, 1]), max_norm=1.0)
      Array([[0.6, 0.8],
             [0.3, 0.4]], dtype=float32)
    """
    weight = _check_weight("embedding_renorm", weight)
    num = weight.shape[0]
    idx = _check_indices("embedding_renorm", input, num).reshape(-1)
    used = jnp.zeros((num,), bool).at[idx].set(True, mode="drop")
    scale = jnp.where(used, _renorm_scale(weight, max_norm, norm_type), jnp.ones((), weight.dtype))
    return jax.lax.stop_gradient(weight * scale[:, None])


# -- the layers --------------------------------------------------------------------------------------


def _initial_weight(who: str, _weight: Any, num_embeddings: int, embedding_dim: int, dtype: Any):
    """The weight a layer starts from: `_weight` as given, checked against the sizes, or None."""
    if _weight is None:
        return None
    weight = _to_numpy(_weight)
    if weight.shape != (num_embeddings, embedding_dim):
        raise ValueError(f"{who}: Shape of weight does not match num_embeddings and embedding_dim: _weight has "
                         f"shape {weight.shape}, expected ({num_embeddings}, {embedding_dim}).")
    return weight if dtype is None else weight.astype(param_dtype(dtype))


def _weight_init(weight: np.ndarray | None, shape: tuple[int, int], pad: int | None, dtype: Any, freeze: bool):
    pdtype = param_dtype(dtype)

    def init(rng):
        if weight is None:  # torch: N(0, 1), the padding row zeroed
            w = _init.normal(rng, shape, pdtype)
            if pad is not None:
                w = w.at[pad].set(0)
        else:
            w = jnp.asarray(weight)
        return ({}, {"weight": w}) if freeze else ({"weight": w}, {})

    return init


def Embedding(num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False, _weight: Any = None,
              _freeze: bool = False, device: Any = None, dtype: Any = None) -> Layer:
    """A lookup table of `num_embeddings` vectors of size `embedding_dim`; torch.nn.Embedding.

    Params: weight (num_embeddings, embedding_dim), initialised N(0, 1) with the padding row zeroed
    (in `state` instead when frozen: `_freeze=True` or `Embedding.from_pretrained(..., freeze=True)`).

    Args:
      num_embeddings: size of the dictionary of embeddings.
      embedding_dim: the size of each embedding vector.
      padding_idx: that row gets no gradient and starts at zero; negative counts from the end. Default: None.
      max_norm: output rows of norm above max_norm are renormalised to it; torch does that to the
        weight in place, here the weight is unchanged (`fl.functional.embedding_renorm` returns it).
        Default: None.
      norm_type: the p of the p-norm compared with max_norm. Default: 2.0.
      scale_grad_by_freq: each row's gradient is divided by its index's frequency in the input. Default: False.
      sparse: accepted; gradients are dense in JAX. Default: False.
      _weight: an initial weight (any array). Default: None.
      _freeze: keep the weight in `state` (no gradient, untouched by optimizers). Default: False.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Shape:
      input (*) integer -> (*, embedding_dim). Out-of-range indices raise outside jit and give NaN
      rows under jit (see the module docstring).

    Example:
      >>> layer = fl.Embedding(10, 3, padding_idx=0)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> y, _ = layer.apply(params, state, jnp.array([[1, 2, 4, 5], [4, 3, 2, 9]]))
      >>> y.shape
      (2, 4, 3)
      >>> layer.apply(params, state, jnp.array([0]))[0]   # the padding row starts at zero
      Array([[0., 0., 0.]], dtype=float32)
    """
    del device
    who = "Embedding"
    _check_sizes(who, num_embeddings, embedding_dim)
    pad = _padding_index(who, padding_idx, num_embeddings)
    weight = _initial_weight(who, _weight, num_embeddings, embedding_dim, dtype)
    name = f"Embedding({num_embeddings}, {embedding_dim}"
    if pad is not None:
        name += f", padding_idx={pad}"
    if max_norm is not None:
        name += f", max_norm={max_norm}"
    if norm_type != 2:
        name += f", norm_type={norm_type}"
    if scale_grad_by_freq:
        name += f", scale_grad_by_freq={scale_grad_by_freq}"
    name += ", sparse=True)" if sparse else ")"
    init = _weight_init(weight, (num_embeddings, embedding_dim), pad, dtype, _freeze)

    def apply(params, state, input, *, rng=None, training=False):
        del rng, training
        w = (state if _freeze else params)["weight"]
        return _embedding(name, input, w, pad, max_norm, norm_type, scale_grad_by_freq), state

    return Layer(init, apply, name)


def _pretrained_weight(who: str, embeddings: Any) -> np.ndarray:
    weight = _to_numpy(embeddings)
    if weight.ndim != 2:
        raise ValueError(f"{who}.from_pretrained: Embeddings parameter is expected to be 2-dimensional, got shape "
                         f"{weight.shape}.")
    return weight


def _embedding_from_pretrained(embeddings: Any, freeze: bool = True, padding_idx: int | None = None,
                               max_norm: float | None = None, norm_type: float = 2.0,
                               scale_grad_by_freq: bool = False, sparse: bool = False) -> Layer:
    """An Embedding whose weight is `embeddings` (num_embeddings, embedding_dim); torch's from_pretrained.

    `freeze=True` (torch's `requires_grad=False`) puts the weight in `state` instead of `params`:
    gradients w.r.t. params do not include it and optimizers never update it. `freeze=False` puts
    it in `params`. The padding row is not zeroed (as torch).

    Example:
      >>> layer = fl.Embedding.from_pretrained(jnp.array([[1, 2.3, 3], [4, 5.1, 6.3]]))
      >>> params, state = layer.init(None)          # params == {}, state == {"weight": ...}
      >>> y, _ = layer.apply(params, state, jnp.array([1]))
      >>> y
      Array([[4. , 5.1, 6.3]], dtype=float32)
    """
    weight = _pretrained_weight("Embedding", embeddings)
    rows, cols = weight.shape
    return Embedding(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=weight,
                     _freeze=freeze)


Embedding.from_pretrained = _embedding_from_pretrained
