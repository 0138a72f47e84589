"""Margin and embedding losses (torch.nn.modules.loss): soft margin, multi-label and multi-class
hinge losses, margin ranking, hinge embedding, cosine embedding and triplet losses."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._loss import concrete, float_inputs, reduce_loss, resolve_reduction, safe_where
from ._utils import TorchRuntimeError, check_floating, check_param_dtypes, fmt_shape

# -- margin and embedding losses ------------------------------------------------------------------------


def soft_margin_loss(input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
                     reduction: str = "mean") -> jax.Array:
    """Two-class logistic loss log(1 + exp(-target input)); torch.nn.functional.soft_margin_loss.

    Args:
      input: scores, floating, any shape.
      target: labels 1 or -1, the input's shape; an integer target is promoted to the input's dtype.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*), target (*) -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> F.soft_margin_loss(jnp.zeros(2), jnp.ones(2))   # log 2
      Array(0.6931472, dtype=float32)
      >>> F.soft_margin_loss(jnp.array([2.0, -1.0]), jnp.ones(2), reduction="none")   # log(1 + e^-2), log(1 + e)
      Array([0.126928 , 1.3132616], dtype=float32)
    """
    reduction = resolve_reduction("soft_margin_loss", reduction, size_average, reduce)
    input, target = float_inputs("soft_margin_loss", input, target)
    return reduce_loss(jnp.log1p(jnp.exp(-input * target)), reduction)


def multilabel_soft_margin_loss(input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
                                reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """Multi-label one-versus-all logistic loss, averaged over classes; torch.nn.functional.multilabel_soft_margin_loss.

    -(t log sigmoid(x) + (1 - t) log sigmoid(-x)), times weight, averaged over the C classes.

    Args:
      input: scores (N, C) or (C,).
      target: the input's shape, 1 for the sample's labels and 0 elsewhere.
      weight: optional (C,) rescaling weight of each class. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (N, C) or (C,), target alike -> () with reduction 'mean' or 'sum', (N,) or () with 'none'.

    Example:
      >>> F.multilabel_soft_margin_loss(jnp.zeros((2, 3)), jnp.ones((2, 3)))   # log 2
      Array(0.6931472, dtype=float32)
      >>> F.multilabel_soft_margin_loss(jnp.zeros((2, 3)), jnp.ones((2, 3)), weight=jnp.array([1.0, 2.0, 3.0]),
      ...                               reduction="none")   # 2 log 2 per sample
      Array([1.3862944, 1.3862944], dtype=float32)
    """
    reduction = resolve_reduction("multilabel_soft_margin_loss", reduction, size_average, reduce)
    input, target = float_inputs("multilabel_soft_margin_loss", input, target)
    loss = -(target * jax.nn.log_sigmoid(input) + (1 - target) * jax.nn.log_sigmoid(-input))
    if weight is not None:  # composite in torch: the weight promotes (float32 with a float64 weight: float64)
        loss = loss * jnp.asarray(weight)
    loss = jnp.sum(loss, axis=-1) / input.shape[-1]
    return reduce_loss(loss, reduction)


def _check_integer_target(who: str, target: Any) -> jax.Array:
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"{who} expects a target of class indices with an integer dtype (torch: int64), got "
                        f"dtype {target.dtype}; cast it with .astype(jnp.int32).")
    return target


def multilabel_margin_loss(input: Any, target: Any, size_average: bool | None = None,
                           reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """Multi-class multi-label hinge loss; torch.nn.functional.multilabel_margin_loss.

    loss = sum_{j target} sum_{i not target} max(0, 1 - (x[y_j] - x[i])) / C per sample.

    Args:
      input: (C,) or (N, C) scores, floating.
      target: integer, the input's shape: the target class indices of each sample, ended by the
        first -1 (the rest is ignored).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (C,) or (N, C), target alike -> () with reduction 'mean' or 'sum', () or (N,) with 'none'.

    Example:
      >>> F.multilabel_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]]))
      Array(0.85, dtype=float32)
    """
    who = "multilabel_margin_loss"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    check_floating(who, input)
    target = _check_integer_target(who, target)
    shape = fmt_shape(input)
    if len(shape) not in (0, 1, 2) or fmt_shape(target) != shape:
        raise TorchRuntimeError(f"{who} expects a 1D (C) or 2D (N, C) input and a target of the same shape, "
                                f"got input of shape {shape} and target of shape {fmt_shape(target)}.")
    x = jnp.asarray(input)
    unbatched = x.ndim < 2
    if unbatched:
        x, target = x.reshape(1, -1), target.reshape(1, -1)
    num_classes = x.shape[1]
    known = concrete(target)
    if known is not None and known.size and (known.min() < -1 or known.max() >= num_classes):
        raise ValueError(f"{who}: target values must lie in [-1, {num_classes - 1}] (-1 ends the list), got "
                         f"values in [{known.min()}, {known.max()}].")
    # the targets of each sample are the entries before its first -1
    active = jnp.cumprod(target != -1, axis=1).astype(bool)                              # (N, J)
    classes = jnp.arange(num_classes)
    picked = active[:, :, None] & (target[:, :, None] == classes)                       # (N, J, C)
    is_target = jnp.any(picked, axis=1)                                                  # (N, C)
    x_target = jnp.take_along_axis(x, jnp.clip(target, 0, num_classes - 1), axis=1)     # (N, J)
    hinge = jnp.maximum(1 - x_target[:, :, None] + x[:, None, :], 0)                    # (N, J, C)
    mask = active[:, :, None] & ~is_target[:, None, :]
    loss = jnp.sum(jnp.where(mask, hinge, 0), axis=(1, 2)) / num_classes
    if unbatched:
        loss = loss.reshape(())
    return reduce_loss(loss, reduction)


def multi_margin_loss(input: Any, target: Any, p: int = 1, margin: float = 1.0, weight: Any = None,
                      size_average: bool | None = None, reduce: bool | None = None,
                      reduction: str = "mean") -> jax.Array:
    """Multi-class hinge loss sum_{i != y} w[y] max(0, margin - x[y] + x[i])^p / C;
    torch.nn.functional.multi_margin_loss.

    Args:
      input: (N, C) or (C,) scores, floating.
      target: integer class indices in [0, C): (N,) or ().
      p: 1 or 2, the power of the hinge (default 1).
      margin: the margin (default 1.0).
      weight: optional (C,) class weights; each sample's loss is scaled by its target class's weight. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (N, C), target (N,) or input (C,), target () -> () with reduction 'mean' or 'sum',
      (N,) or () with 'none'.

    Example:
      >>> F.multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      Array(0.325, dtype=float32)
      >>> F.multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]), p=2, margin=0.5)   # 0.1^2 / 4
      Array(0.0025, dtype=float32)
    """
    who = "multi_margin_loss"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    if p not in (1, 2):
        raise ValueError(f"{who}: only p == 1 and p == 2 supported, got p={p}.")
    check_floating(who, input)
    target = _check_integer_target(who, target)
    x = jnp.asarray(input)
    # torch's kernel reads the class weights as the input's scalar type; no cast
    check_param_dtypes(who, x, (weight,), "expected scalar type {input} but found {param}")
    shape, t_shape = fmt_shape(x), fmt_shape(target)
    ok = (x.ndim == 2 and t_shape == shape[:1]) or (x.ndim <= 1 and len(t_shape) <= 1 and target.size == 1)
    if not ok:
        raise TorchRuntimeError(f"{who} expects a 2D (N, C) input with a (N,) target or a 1D (C,) input with a "
                                f"0D target, got input of shape {shape} and target of shape {t_shape} "
                                f"(torch: inconsistent target size).")
    unbatched = x.ndim < 2
    x2, t = (x.reshape(1, -1), target.reshape(1)) if unbatched else (x, target)
    num_classes = x2.shape[1]
    known = concrete(t)
    if known is not None and known.size and (known.min() < 0 or known.max() >= num_classes):
        raise ValueError(f"{who}: target out of range: class indices must lie in [0, {num_classes - 1}], got "
                         f"values in [{known.min()}, {known.max()}].")
    onehot = t[:, None] == jnp.arange(num_classes)
    x_target = jnp.sum(jnp.where(onehot, x2, 0), axis=1, keepdims=True)
    hinge = jnp.maximum(margin - x_target + x2, 0)
    hinge = hinge if p == 1 else hinge * hinge
    if weight is not None:
        hinge = hinge * jnp.asarray(weight, x2.dtype)[t][:, None]
    loss = jnp.sum(jnp.where(onehot, 0, hinge), axis=1) / num_classes
    if unbatched:
        loss = loss.reshape(())
    return reduce_loss(loss, reduction)


def margin_ranking_loss(input1: Any, input2: Any, target: Any, margin: float = 0, size_average: bool | None = None,
                        reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """max(0, -target (input1 - input2) + margin); torch.nn.functional.margin_ranking_loss.

    target 1 means input1 should rank higher than input2 by at least `margin`, -1 the reverse.

    Args:
      input1: the first scores, floating, (N,) or () (any shape of input2's rank that broadcasts).
      input2: the second scores, floating, of input1's rank.
      target: 1 or -1, of their shape; an integer target is promoted.
      margin: the required gap (default 0).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input1 (N,) or (), input2 and target alike -> () with reduction 'mean' or 'sum', (N,) or () with 'none'.

    Example:
      >>> F.margin_ranking_loss(jnp.ones(2), jnp.zeros(2), jnp.ones(2))
      Array(0., dtype=float32)
      >>> F.margin_ranking_loss(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), jnp.ones(2), margin=0.5,
      ...                       reduction="none")   # the second pair is ranked the wrong way
      Array([0. , 1.5], dtype=float32)
    """
    who = "margin_ranking_loss"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    shapes = [fmt_shape(a) for a in (input1, input2, target)]
    if not len(shapes[0]) == len(shapes[1]) == len(shapes[2]):
        raise ValueError(f"{who}: All input tensors should have same dimension but got sizes: input1: {shapes[0]}, "
                         f"input2: {shapes[1]}, target: {shapes[2]} ")
    input1, input2, target = float_inputs(who, input1, input2, target, names=("input1", "input2", "target"))
    return reduce_loss(jnp.maximum(-target * (input1 - input2) + margin, 0), reduction)


def hinge_embedding_loss(input: Any, target: Any, margin: float = 1.0, size_average: bool | None = None,
                         reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """input where target == 1, max(0, margin - input) where target == -1; torch.nn.functional.hinge_embedding_loss.

    Typically the input is a distance between two embeddings, target 1 for similar and -1 for dissimilar pairs.

    Args:
      input: floating, any shape (e.g. distances).
      target: 1 or -1, the input's shape.
      margin: the distance dissimilar pairs are pushed beyond (default 1.0).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*), target (*) -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> F.hinge_embedding_loss(jnp.array([0.3, 0.3]), jnp.array([1.0, -1.0]))   # (0.3 + 0.7) / 2
      Array(0.5, dtype=float32)
    """
    reduction = resolve_reduction("hinge_embedding_loss", reduction, size_average, reduce)
    check_floating("hinge_embedding_loss", input)
    x = jnp.asarray(input)
    target = jnp.asarray(target)
    margin_part = jnp.where(target != 1, jnp.maximum(margin - x, 0), 0)
    self_part = jnp.where(target != -1, x, 0)
    return reduce_loss(margin_part + self_part, reduction)


def cosine_embedding_loss(input1: Any, input2: Any, target: Any, margin: float = 0,
                          size_average: bool | None = None, reduce: bool | None = None,
                          reduction: str = "mean") -> jax.Array:
    """1 - cos(x1, x2) where target == 1, max(0, cos(x1, x2) - margin) where target == -1;
    torch.nn.functional.cosine_embedding_loss.

    Args:
      input1: (N, D) or (D,) embeddings, floating.
      input2: (N, D) or (D,) embeddings, floating, of input1's shape.
      target: 1 (similar) or -1 (dissimilar), (N,) or ().
      margin: in [-1, 1]; dissimilar pairs are penalised above this cosine (default 0; 0 to 0.5 suggested).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input1 (N, D), input2 (N, D), target (N,) or (D,), (D,), () -> () with reduction 'mean' or 'sum',
      (N,) or () with 'none'.

    Example:
      >>> F.cosine_embedding_loss(jnp.ones((1, 2)), jnp.ones((1, 2)), jnp.ones(1))
      Array(0., dtype=float32)
      >>> x1, x2 = jnp.array([[1.0, 0.0], [1.0, 0.0]]), jnp.array([[1.0, 1.0], [1.0, 1.0]])
      >>> F.cosine_embedding_loss(x1, x2, jnp.array([1, -1]), reduction="none")   # cos = 1 / sqrt 2
      Array([0.29289323, 0.70710677], dtype=float32)
    """
    who = "cosine_embedding_loss"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    s1, s2, st = fmt_shape(input1), fmt_shape(input2), fmt_shape(target)
    if len(st) not in (0, 1) or len(s1) != len(s2) or len(s1) != len(st) + 1 or s1 != s2 or s1[:-1] != st:
        raise TorchRuntimeError(f"{who} expects (N, D), (N, D) inputs with a (N,) target or (D,), (D,) with a 0D "
                                f"target, got input1 {s1}, input2 {s2}, target {st}.")
    input1, input2 = float_inputs(who, input1, input2, names=("input1", "input2"))
    target = jnp.asarray(target)
    eps = 1e-12  # torch's EPSILON, added to each squared magnitude
    prod = jnp.sum(input1 * input2, axis=-1)
    cos = prod / jnp.sqrt((jnp.sum(input1 * input1, axis=-1) + eps) * (jnp.sum(input2 * input2, axis=-1) + eps))
    loss = jnp.where(target == 1, 1 - cos, 0) + jnp.where(target == -1, jnp.maximum(cos - margin, 0), 0)
    return reduce_loss(loss, reduction)


def _norm(x: jax.Array, p: float) -> jax.Array:
    """The p-norm over the last axis with torch's zero subgradient at the zero vector."""
    a = jnp.abs(x)
    if p == math.inf:
        return jnp.max(a, axis=-1)
    if p == 0:
        return jnp.sum((a != 0).astype(x.dtype), axis=-1)
    if p == 2:
        s = jnp.sum(x * x, axis=-1)
        return safe_where(s > 0, jnp.sqrt, s, 1.0, jnp.zeros_like(s))
    if p == 1:
        return jnp.sum(a, axis=-1)
    s = jnp.sum(safe_where(a > 0, lambda v: v ** p, a, 1.0, jnp.zeros_like(a)), axis=-1)
    return safe_where(s > 0, lambda v: v ** (1.0 / p), s, 1.0, jnp.zeros_like(s))


def pairwise_distance_for_loss(x1: jax.Array, x2: jax.Array, p: float = 2.0, eps: float = 1e-6) -> jax.Array:
    """torch.pairwise_distance: ||x1 - x2 + eps||_p over the last dimension."""
    return _norm(x1 - x2 + eps, p)


def _check_triplet(who: str, anchor: Any, positive: Any, negative: Any) -> None:
    dims = [len(fmt_shape(a)) for a in (anchor, positive, negative)]
    if not dims[0] == dims[1] == dims[2]:
        raise TorchRuntimeError(f"{who}: The anchor, positive, and negative tensors are expected to have the same "
                                f"number of dimensions, but got: anchor {dims[0]}D, positive {dims[1]}D, and "
                                f"negative {dims[2]}D inputs")


def _triplet(anchor, positive, negative, distance, margin, swap, reduction):
    dist_pos = distance(anchor, positive)
    dist_neg = distance(anchor, negative)
    if swap:
        dist_neg = jnp.minimum(dist_neg, distance(positive, negative))
    return reduce_loss(jnp.maximum(margin + dist_pos - dist_neg, 0), reduction)


def triplet_margin_loss(anchor: Any, positive: Any, negative: Any, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> jax.Array:
    """max(0, margin + d(a, p) - d(a, n)) with the pairwise p-norm distance; torch.nn.functional.triplet_margin_loss.

    Args:
      anchor: (N, D) or (D,) embeddings, floating.
      positive: embeddings of anchor's rank, the ones to be near it.
      negative: embeddings of anchor's rank, the ones to be far from it.
      margin: the gap wanted between d(a, n) and d(a, p) (default 1.0).
      p: the norm degree of the distance ||x - y + eps||_p (default 2).
      eps: added to the difference before the norm, for stability (default 1e-6).
      swap: the distance swap of Balntas et al.: use min(d(a, n), d(p, n)) as the negative distance. Default: False.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      anchor, positive, negative each (N, D) or (D,) -> () with reduction 'mean' or 'sum',
      (N,) or () with 'none'.

    Example:
      >>> F.triplet_margin_loss(jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.ones((1, 2)))
      Array(0., dtype=float32)
      >>> a = jnp.zeros((2, 2))
      >>> F.triplet_margin_loss(a, a, jnp.array([[2.0, 0.0], [0.5, 0.0]]), reduction="none")
      Array([0.        , 0.50000244], dtype=float32)
    """
    who = "triplet_margin_loss"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    _check_triplet(who, anchor, positive, negative)
    a, pos, neg = float_inputs(who, anchor, positive, negative, names=("anchor", "positive", "negative"))
    return _triplet(a, pos, neg, lambda x, y: pairwise_distance_for_loss(x, y, p, eps), margin, swap, reduction)


def triplet_margin_with_distance_loss(anchor: Any, positive: Any, negative: Any, *,
                                      distance_function: Callable | None = None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> jax.Array:
    """Triplet margin loss with any JAX distance function (default: pairwise Euclidean distance);
    torch.nn.functional.triplet_margin_with_distance_loss.

    Args:
      anchor: embeddings, (N, D) or (D,) for the default distance.
      positive: embeddings of anchor's rank, the ones to be near it.
      negative: embeddings of anchor's rank, the ones to be far from it.
      distance_function: a JAX function of two arrays giving their distances (the last dimension
        reduced); None means pairwise_distance (||x - y + 1e-6||_2). Default: None.
      margin: the gap wanted between d(a, n) and d(a, p); must be positive (default 1.0).
      swap: the distance swap: use min(d(a, n), d(p, n)) as the negative distance. Default: False.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      anchor, positive, negative each (N, D) or (D,) -> () with reduction 'mean' or 'sum', the
      distances' shape, (N,) or (), with 'none'.

    Example:
      >>> a, p, n = jnp.ones((4, 8)), jnp.ones((4, 8)), -jnp.ones((4, 8))
      >>> F.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x, y: 1 - (x * y).sum(-1))
      Array(0., dtype=float32)
    """
    who = "triplet_margin_with_distance_loss"
    reduction = resolve_reduction(who, reduction)
    if margin <= 0:
        raise ValueError(f"{who}: expected margin to be greater than 0, got {margin} instead")
    _check_triplet(who, anchor, positive, negative)
    distance = distance_function if distance_function is not None else pairwise_distance_for_loss
    return _triplet(jnp.asarray(anchor), jnp.asarray(positive), jnp.asarray(negative), distance, margin, swap,
                    reduction)
