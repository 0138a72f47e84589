"""Distance layers (torch.nn.modules.distance): PairwiseDistance, CosineSimilarity, their functional twins; pdist."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._layer import Layer, no_params
from ._loss_margin import _norm  # the p-norm the triplet losses use: torch's zero subgradient at 0
from ._utils import TorchRuntimeError, fmt_shape, normalize_dim


def _pair(who: str, x1: Any, x2: Any) -> tuple[jax.Array, jax.Array]:
    """x1 and x2 in one floating dtype (integers promote to float32, as torch's default dtype)."""
    x1, x2 = jnp.asarray(x1), jnp.asarray(x2)
    dtype = jnp.result_type(x1, x2)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.float32
    try:
        jnp.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise TorchRuntimeError(f"{who}: x1 of shape {fmt_shape(x1)} and x2 of shape {fmt_shape(x2)} do not "
                                f"broadcast against each other; give them the same shape.") from None
    return x1.astype(dtype), x2.astype(dtype)


def pairwise_distance(x1: Any, x2: Any, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False, *,
                      _who: str = "pairwise_distance") -> jax.Array:
    """||x1 - x2 + eps||_p over the last dimension; torch.nn.functional.pairwise_distance.

    Args:
      x1: the first input, broadcastable with x2.
      x2: the second input, broadcastable with x1; the norm runs over the last dimension of their broadcast.
      p: the norm degree, can be negative (0 counts non-zeros, inf takes the largest magnitude). Default: 2.
      eps: small value added to the difference x1 - x2 to avoid division by zero. Default: 1e-6.
      keepdim: keep the reduced vector dimension (as size 1). Default: False.
      _who: internal: the name its errors report (the layer's, when a layer calls it). Default: 'pairwise_distance'.

    Shape: (N, D) and (N, D) or (D,) -> (N,) ((N, 1) with keepdim); (D,) -> ().

    Example:
      >>> F.pairwise_distance(jnp.ones((2, 3)), jnp.zeros(3))   # sqrt(3) (1 + 1e-6) per row
      Array([1.7320524, 1.7320524], dtype=float32)
    """
    x1, x2 = _pair(_who, x1, x2)
    diff = x1 - x2 + jnp.asarray(eps, x1.dtype)
    if diff.ndim == 0:  # torch's norm of a 0-d tensor over dim -1: its magnitude (0 or 1 for p = 0)
        return _norm(diff[None], p)
    out = _norm(diff, p)
    return out[..., None] if keepdim else out


def cosine_similarity(x1: Any, x2: Any, dim: int = 1, eps: float = 1e-8, *,
                      _who: str = "cosine_similarity") -> jax.Array:
    """sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps)) along `dim`; torch.nn.functional.cosine_similarity.

    As torch's kernel, each norm is clamped at `eps` but differentiated as the plain norm (torch
    clamps it in place, outside autograd), so the gradients match torch's also for norms below `eps`.

    Args:
      x1: the first input, broadcastable with x2.
      x2: the second input, broadcastable with x1.
      dim: the dimension of their broadcast along which cosine similarity is computed. Default: 1.
      eps: small value to avoid division by zero: the smallest norm divided by. Default: 1e-8.
      _who: internal: the name its errors report (the layer's, when a layer calls it). Default: 'cosine_similarity'.

    Shape: (N, D, *) and (N, D, *) with dim=1 -> (N, *).

    Example:
      >>> F.cosine_similarity(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]))
      Array([0.70710677], dtype=float32)
    """
    who = _who
    x1, x2 = _pair(who, x1, x2)
    x1, x2 = jnp.broadcast_arrays(x1, x2)
    dim = normalize_dim(who, dim, x1.ndim)
    if x1.ndim == 0:
        x1, x2 = x1[None], x2[None]

    def unit(x):
        norm = jnp.expand_dims(_norm(jnp.moveaxis(x, dim, -1), 2.0), dim)
        clamped = norm + lax.stop_gradient(jnp.maximum(norm, jnp.asarray(eps, x.dtype)) - norm)
        return x / clamped

    return jnp.sum(unit(x1) * unit(x2), axis=dim)


def _pdist_norm(diff: jax.Array, p: float) -> jax.Array:
    """The p-norm over the last axis with torch's _pdist_backward: sign(diff) with sign(0) = 0 for p = 1,
    and for p = inf the full gradient to every entry that attains the maximum (torch does not split ties)."""
    if p == 1:
        return jnp.sum(diff * lax.stop_gradient(jnp.sign(diff)), axis=-1)
    if p == math.inf:
        magnitude = jnp.abs(diff)
        top = lax.stop_gradient(jnp.max(magnitude, axis=-1, keepdims=True))
        ties = lax.stop_gradient((magnitude == top) * jnp.sign(diff))
        return top[..., 0] + jnp.sum(ties * (diff - lax.stop_gradient(diff)), axis=-1)
    return _norm(diff, p)


def pdist(input: Any, p: float = 2) -> jax.Array:
    """The p-norm distance between every pair of rows, the upper triangle flattened; torch.nn.functional.pdist.

    Pairs come in torch's order (0, 1), (0, 2), ..., (0, N-1), (1, 2), ...: `scipy.spatial.distance.pdist`'s
    condensed form. The gradient at a zero distance is zero, as torch's.

    Args:
      input: an (N, M) floating array: N rows of M features.
      p: the norm's degree, >= 0 (0 counts differing features, inf takes the largest difference); default 2.

    Shape:
      (N, M) -> (N (N - 1) / 2,).

    Example:
      >>> F.pdist(jnp.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]))   # pairs (0, 1), (0, 2), (1, 2)
      Array([ 5., 10.,  5.], dtype=float32)
    """
    shape = fmt_shape(input)
    if len(shape) != 2:
        raise TorchRuntimeError(f"pdist only supports 2D tensors (N, M), got: {len(shape)}D input of shape {shape}.")
    if not jnp.issubdtype(jnp.result_type(input), jnp.floating):
        raise TypeError(f"pdist only supports floating-point dtypes, got dtype {jnp.result_type(input)}.")
    if not p >= 0:
        raise TorchRuntimeError(f"pdist only supports non-negative p values, got p={p}.")
    x = jnp.asarray(input)
    rows, cols = np.triu_indices(shape[0], 1)
    if rows.size == 0:
        return jnp.zeros((0,), x.dtype)
    return _pdist_norm(x[rows] - x[cols], p)


def PairwiseDistance(p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Layer:
    """The p-norm distance between rows; torch.nn.PairwiseDistance. No parameters.

    `apply(params, state, x1, x2)`; see `functional.pairwise_distance`.

    Args:
      p: the norm degree, can be negative. Default: 2.
      eps: small value added to the difference x1 - x2 to avoid division by zero. Default: 1e-6.
      keepdim: keep the reduced vector dimension (as size 1). Default: False.

    Shape: (N, D) or (D,) inputs -> (N,) or () ((N, 1) / (1,) with keepdim).

    Example:
      >>> layer = fl.PairwiseDistance()
      >>> d, _ = layer.apply({}, {}, jnp.ones((4, 3)), jnp.zeros((4, 3)))
      >>> d.shape
      (4,)
    """
    name = f"PairwiseDistance(p={p}, eps={eps}, keepdim={keepdim})"

    def apply(params, state, x1, x2, *, rng=None, training=False):
        del params, rng, training
        return pairwise_distance(x1, x2, p, eps, keepdim, _who=name), state

    return Layer(no_params, apply, name)


def CosineSimilarity(dim: int = 1, eps: float = 1e-8) -> Layer:
    """Cosine similarity along `dim`; torch.nn.CosineSimilarity. No parameters.

    `apply(params, state, x1, x2)`; see `functional.cosine_similarity`.

    Args:
      dim: dimension where cosine similarity is computed. Default: 1.
      eps: small value to avoid division by zero: the smallest norm divided by. Default: 1e-8.

    Shape: (*, D, *) inputs (broadcastable) -> the broadcast shape without `dim`.

    Example:
      >>> layer = fl.CosineSimilarity(dim=1)
      >>> s, _ = layer.apply({}, {}, jnp.ones((4, 3)), jnp.ones((4, 3)))
      >>> s
      Array([1., 1., 1., 1.], dtype=float32)
    """
    name = f"CosineSimilarity(dim={dim}, eps={eps})"

    def apply(params, state, x1, x2, *, rng=None, training=False):
        del params, rng, training
        return cosine_similarity(x1, x2, dim, eps, _who=name), state

    return Layer(no_params, apply, name)
