"""The loss layers of torch.nn.modules.loss, as init/apply pairs over the ops of _loss*.py.

The class-index losses (NLLLoss, NLLLoss2d, CrossEntropyLoss, CTCLoss, LinearCrossEntropyLoss) are in
_loss_modules_ce.py.

Each factory takes torch's constructor arguments (deprecated size_average/reduce included, mapped
as torch maps them) and checks them at construction; `weight`/`pos_weight` are torch's buffers and
live in `state`, so a loaded state_dict replaces them:

    criterion = fl.CrossEntropyLoss(weight=w, ignore_index=0, label_smoothing=0.1)
    params, state = criterion.init(rng)                     # ({}, {"weight": w})
    loss, state = criterion.apply(params, state, logits, target)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from . import _loss as L
from . import _loss_margin as M
from ._layer import Layer


def _reduction(name: str, size_average: Any, reduce: Any, reduction: str, extra: tuple = ()) -> str:
    return L.resolve_reduction(name, reduction, size_average, reduce, extra)


def _elementwise(name: str, fn: Callable, size_average: Any, reduce: Any, reduction: str, **kwargs) -> Layer:
    reduction = _reduction(name, size_average, reduce, reduction)
    return L.loss_layer(f"{name}()", lambda state, input, target: fn(input, target, reduction=reduction, **kwargs))


def L1Loss(size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> Layer:
    """Mean absolute error |input - target|; torch.nn.L1Loss. apply(params, state, input, target).

    Args:
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*), target (*) of the same shape -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> loss, _ = fl.L1Loss().apply({}, {}, jnp.array([1.0, -3.0]), jnp.zeros(2))
      >>> loss
      Array(2., dtype=float32)
    """
    return _elementwise("L1Loss", L.l1_loss, size_average, reduce, reduction)


def MSELoss(size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> Layer:
    """Mean squared error (input - target)^2; torch.nn.MSELoss. apply(params, state, input, target).

    Args:
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*), target (*) of the same shape -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> loss, _ = fl.MSELoss().apply({}, {}, jnp.array([0.5, 3.0]), jnp.zeros(2))
      >>> loss
      Array(4.625, dtype=float32)
    """
    return _elementwise("MSELoss", L.mse_loss, size_average, reduce, reduction)


def HuberLoss(reduction: str = "mean", delta: float = 1.0) -> Layer:
    """Huber loss: 0.5 d^2 for |d| < delta, else delta (|d| - delta / 2); torch.nn.HuberLoss.

    Args:
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      delta: where the loss turns from quadratic to linear; positive (default 1.0).

    Shape:
      input (*), target (*) of the same shape -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> loss, _ = fl.HuberLoss().apply({}, {}, jnp.array([0.5, 3.0]), jnp.zeros(2))
      >>> loss   # (0.125 + 2.5) / 2
      Array(1.3125, dtype=float32)
    """
    if delta <= 0:
        raise ValueError(f"HuberLoss: delta must be positive, got {delta} (torch: huber_loss does not support "
                         f"non-positive values for delta).")
    return _elementwise("HuberLoss", L.huber_loss, None, None, reduction, delta=delta)


def SmoothL1Loss(size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
                 beta: float = 1.0) -> Layer:
    """Smooth L1: 0.5 d^2 / beta for |d| < beta, else |d| - beta / 2; torch.nn.SmoothL1Loss.

    Args:
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      beta: where the loss turns from quadratic to linear; >= 0, 0 gives the L1 loss (default 1.0).

    Shape:
      input (*), target (*) of the same shape -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> loss, _ = fl.SmoothL1Loss().apply({}, {}, jnp.array([0.5, 3.0]), jnp.zeros(2))
      >>> loss   # (0.125 + 2.5) / 2
      Array(1.3125, dtype=float32)
    """
    if beta < 0:
        raise ValueError(f"SmoothL1Loss: beta must be non-negative, got {beta}.")
    return _elementwise("SmoothL1Loss", L.smooth_l1_loss, size_average, reduce, reduction, beta=beta)


def SoftMarginLoss(size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> Layer:
    """Two-class logistic loss log(1 + exp(-target input)); torch.nn.SoftMarginLoss.

    Args:
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*), target (*) of 1 and -1 -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> loss, _ = fl.SoftMarginLoss().apply({}, {}, jnp.zeros(2), jnp.ones(2))
      >>> loss   # log 2
      Array(0.6931472, dtype=float32)
    """
    return _elementwise("SoftMarginLoss", M.soft_margin_loss, size_average, reduce, reduction)


def MultiLabelMarginLoss(size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Layer:
    """Multi-class multi-label hinge loss; torch.nn.MultiLabelMarginLoss (as F.multilabel_margin_loss).

    Args:
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (N, C) or (C,); target integer of the same shape, each row's class indices ended by the
      first -1 -> () with reduction 'mean' or 'sum', (N,) or () with 'none'.

    Example:
      >>> x, y = jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]])
      >>> loss, _ = fl.MultiLabelMarginLoss().apply({}, {}, x, y)
      >>> loss
      Array(0.85, dtype=float32)
    """
    return _elementwise("MultiLabelMarginLoss", M.multilabel_margin_loss, size_average, reduce, reduction)


def KLDivLoss(size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
              log_target: bool = False) -> Layer:
    """KL divergence of target from log-probabilities; torch.nn.KLDivLoss ('batchmean' is the true KL).

    Args:
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'batchmean' | 'mean' | 'sum' (default 'mean', which warns in the forward
        pass: it divides by the element count; 'batchmean' divides the sum by the batch size).
      log_target: the target is given as log-probabilities (default False).

    Shape:
      input (*) log-probabilities, target (*) -> () with reduction 'batchmean', 'mean' or 'sum',
      (*) with 'none'.

    Example:
      >>> q = jnp.full((2, 2), 0.5)
      >>> loss, _ = fl.KLDivLoss(reduction="batchmean").apply({}, {}, jnp.log(q), q)
      >>> loss
      Array(0., dtype=float32)
    """
    if size_average is not None or reduce is not None:
        reduction = L.legacy_get_string(size_average, reduce)
    _reduction("KLDivLoss", None, None, reduction, ("batchmean",))
    return L.loss_layer("KLDivLoss()", lambda state, input, target: L.kl_div(input, target, reduction=reduction,
                                                                             log_target=log_target))


def PoissonNLLLoss(log_input: bool = True, full: bool = False, size_average: bool | None = None, eps: float = 1e-8,
                   reduce: bool | None = None, reduction: str = "mean") -> Layer:
    """Poisson negative log likelihood; torch.nn.PoissonNLLLoss. apply(params, state, log_input, target).

    Args:
      log_input: the input is the log-rate, loss exp(input) - target input (default True); else the
        rate, loss input - target log(input + eps).
      full: add the Stirling approximation term of log(target!) where target > 1 (default False).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      eps: added to the input before the log when log_input=False (default 1e-8).
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*), target (*) -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> loss, _ = fl.PoissonNLLLoss().apply({}, {}, jnp.zeros(3), jnp.ones(3))
      >>> loss
      Array(1., dtype=float32)
    """
    reduction = _reduction("PoissonNLLLoss", size_average, reduce, reduction)
    input_is_log = log_input

    def forward(state, log_input, target):  # torch's forward names its input log_input
        return L.poisson_nll_loss(log_input, target, log_input=input_is_log, full=full, eps=eps, reduction=reduction)

    return L.loss_layer("PoissonNLLLoss()", forward)


def GaussianNLLLoss(*, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> Layer:
    """Gaussian negative log likelihood; torch.nn.GaussianNLLLoss. apply(params, state, input, target, var).

    Args:
      full: add the constant log(2 pi) / 2 (default False).
      eps: the lower clamp of var, for stability (default 1e-6).
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (N, *) or (*), target alike, var like the input, without its last dimension, or with
      one dimension of size 1 (or a float) -> () with reduction 'mean' or 'sum', the input's shape with 'none'.

    Example:
      >>> loss, _ = fl.GaussianNLLLoss().apply({}, {}, jnp.zeros(3), jnp.zeros(3), jnp.ones(3))
      >>> loss
      Array(0., dtype=float32)
    """
    reduction = _reduction("GaussianNLLLoss", None, None, reduction)
    return L.loss_layer("GaussianNLLLoss()", lambda state, input, target, var: L.gaussian_nll_loss(
        input, target, var, full=full, eps=eps, reduction=reduction))


def BCELoss(weight: Any = None, size_average: bool | None = None, reduce: bool | None = None,
            reduction: str = "mean") -> Layer:
    """Binary cross entropy of probabilities; torch.nn.BCELoss (`weight` is a buffer in state).

    Args:
      weight: optional rescaling weight, broadcast to the target's shape. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*) probabilities in [0, 1], target (*) -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> loss, _ = fl.BCELoss().apply({}, {}, jnp.full(2, 0.5), jnp.ones(2))
      >>> loss   # log 2
      Array(0.6931472, dtype=float32)
    """
    reduction = _reduction("BCELoss", size_average, reduce, reduction)
    return L.loss_layer("BCELoss()", lambda state, input, target: L.binary_cross_entropy(
        input, target, state.get("weight"), reduction=reduction), {"weight": weight})


def BCEWithLogitsLoss(weight: Any = None, size_average: bool | None = None, reduce: bool | None = None,
                      reduction: str = "mean", pos_weight: Any = None) -> Layer:
    """Sigmoid + binary cross entropy; torch.nn.BCEWithLogitsLoss (`weight`, `pos_weight`: buffers in state).

    Args:
      weight: optional rescaling weight, broadcast against the loss. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      pos_weight: optional weight of the positive examples, broadcast along the target's last
        (class) dimension: (C,) for C classes. Default: None.

    Shape:
      input (*) logits, target (*) probabilities -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> criterion = fl.BCEWithLogitsLoss(pos_weight=jnp.array([1.0, 3.0]))
      >>> params, state = criterion.init(rng)   # state == {"pos_weight": ...}
      >>> loss, _ = criterion.apply(params, state, jnp.zeros(2), jnp.ones(2))
      >>> loss   # (log 2 + 3 log 2) / 2
      Array(1.3862944, dtype=float32)
    """
    reduction = _reduction("BCEWithLogitsLoss", size_average, reduce, reduction)
    return L.loss_layer("BCEWithLogitsLoss()", lambda state, input, target: L.binary_cross_entropy_with_logits(
        input, target, state.get("weight"), reduction=reduction, pos_weight=state.get("pos_weight")),
        {"weight": weight, "pos_weight": pos_weight})


def MultiLabelSoftMarginLoss(weight: Any = None, size_average: bool | None = None, reduce: bool | None = None,
                             reduction: str = "mean") -> Layer:
    """Multi-label one-versus-all logistic loss; torch.nn.MultiLabelSoftMarginLoss (`weight` in state).

    Args:
      weight: optional (C,) rescaling weight of each class. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (N, C) or (C,), target alike of 0 and 1 -> () with reduction 'mean' or 'sum', (N,) or () with 'none'.

    Example:
      >>> loss, _ = fl.MultiLabelSoftMarginLoss().apply({}, {}, jnp.zeros((2, 3)), jnp.ones((2, 3)))
      >>> loss   # log 2
      Array(0.6931472, dtype=float32)
    """
    reduction = _reduction("MultiLabelSoftMarginLoss", size_average, reduce, reduction)
    return L.loss_layer("MultiLabelSoftMarginLoss()", lambda state, input, target: M.multilabel_soft_margin_loss(
        input, target, state.get("weight"), reduction=reduction), {"weight": weight})


def MultiMarginLoss(p: int = 1, margin: float = 1.0, weight: Any = None, size_average: bool | None = None,
                    reduce: bool | None = None, reduction: str = "mean") -> Layer:
    """Multi-class hinge loss; torch.nn.MultiMarginLoss (`weight` in state).

    Args:
      p: 1 or 2, the power of the hinge (default 1).
      margin: the margin (default 1.0).
      weight: optional (C,) class weights (1-D), scaling each sample's loss by its target's weight. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (N, C), target (N,) integer, or (C,) and () -> () with reduction 'mean' or 'sum',
      (N,) or () with 'none'.

    Example:
      >>> loss, _ = fl.MultiMarginLoss().apply({}, {}, jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      >>> loss
      Array(0.325, dtype=float32)
    """
    if p not in (1, 2):
        raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 supported, got p={p}.")
    if weight is not None and jnp.ndim(weight) != 1:
        raise ValueError(f"MultiMarginLoss: weight must be a 1D tensor, got shape {jnp.shape(weight)}.")
    reduction = _reduction("MultiMarginLoss", size_average, reduce, reduction)
    return L.loss_layer("MultiMarginLoss()", lambda state, input, target: M.multi_margin_loss(
        input, target, p, margin, state.get("weight"), reduction=reduction), {"weight": weight})


def MarginRankingLoss(margin: float = 0.0, size_average: bool | None = None, reduce: bool | None = None,
                      reduction: str = "mean") -> Layer:
    """max(0, -y (x1 - x2) + margin); torch.nn.MarginRankingLoss. apply(params, state, input1, input2, target).

    Args:
      margin: the gap wanted between the two scores (default 0.0).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input1 (N,) or (), input2 and target (1 or -1) alike -> () with reduction 'mean' or 'sum',
      (N,) or () with 'none'.

    Example:
      >>> criterion = fl.MarginRankingLoss(margin=0.5)
      >>> loss, _ = criterion.apply({}, {}, jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), jnp.ones(2))
      >>> loss   # (0 + 1.5) / 2
      Array(0.75, dtype=float32)
    """
    reduction = _reduction("MarginRankingLoss", size_average, reduce, reduction)
    return L.loss_layer("MarginRankingLoss()", lambda state, input1, input2, target: M.margin_ranking_loss(
        input1, input2, target, margin, reduction=reduction))


def HingeEmbeddingLoss(margin: float = 1.0, size_average: bool | None = None, reduce: bool | None = None,
                       reduction: str = "mean") -> Layer:
    """Hinge embedding loss; torch.nn.HingeEmbeddingLoss (as F.hinge_embedding_loss).

    Args:
      margin: the distance dissimilar pairs (target -1) are pushed beyond (default 1.0).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*), target (*) of 1 and -1 -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> loss, _ = fl.HingeEmbeddingLoss().apply({}, {}, jnp.array([0.3, 2.0]), jnp.array([1, -1]))
      >>> loss   # (0.3 + 0) / 2
      Array(0.15, dtype=float32)
    """
    reduction = _reduction("HingeEmbeddingLoss", size_average, reduce, reduction)
    return L.loss_layer("HingeEmbeddingLoss()", lambda state, input, target: M.hinge_embedding_loss(
        input, target, margin, reduction=reduction))


def CosineEmbeddingLoss(margin: float = 0.0, size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> Layer:
    """Cosine embedding loss; torch.nn.CosineEmbeddingLoss. apply(params, state, input1, input2, target).

    Args:
      margin: in [-1, 1]; dissimilar pairs (target -1) are penalised above this cosine (default 0.0).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input1 (N, D), input2 (N, D), target (N,) of 1 and -1, or (D,), (D,), () -> () with reduction
      'mean' or 'sum', (N,) or () with 'none'.

    Example:
      >>> loss, _ = fl.CosineEmbeddingLoss().apply({}, {}, jnp.ones((2, 3)), jnp.ones((2, 3)), jnp.ones(2))
      >>> loss
      Array(0., dtype=float32)
    """
    reduction = _reduction("CosineEmbeddingLoss", size_average, reduce, reduction)
    return L.loss_layer("CosineEmbeddingLoss()", lambda state, input1, input2, target: M.cosine_embedding_loss(
        input1, input2, target, margin, reduction=reduction))


def TripletMarginLoss(margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                      size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean") -> Layer:
    """Triplet margin loss; torch.nn.TripletMarginLoss. apply(params, state, anchor, positive, negative).

    Args:
      margin: the gap wanted between d(a, n) and d(a, p); positive (default 1.0).
      p: the norm degree of the pairwise distance (default 2.0).
      eps: added to the difference before the norm (default 1e-6).
      swap: the distance swap: use min(d(a, n), d(p, n)) as the negative distance (default False).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      anchor, positive, negative each (N, D) or (D,) -> () with reduction 'mean' or 'sum', (N,) or () with 'none'.

    Example:
      >>> loss, _ = fl.TripletMarginLoss().apply({}, {}, jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones((2, 3)))
      >>> loss
      Array(0., dtype=float32)
    """
    if margin <= 0:
        raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got {margin} instead")
    reduction = _reduction("TripletMarginLoss", size_average, reduce, reduction)
    return L.loss_layer("TripletMarginLoss()", lambda state, anchor, positive, negative: M.triplet_margin_loss(
        anchor, positive, negative, margin, p, eps, swap, reduction=reduction))


def TripletMarginWithDistanceLoss(*, distance_function: Callable | None = None, margin: float = 1.0,
                                  swap: bool = False, reduction: str = "mean") -> Layer:
    """Triplet margin loss with any JAX distance function; torch.nn.TripletMarginWithDistanceLoss.

    Args:
      distance_function: a JAX function of two arrays giving their distances (the last dimension
        reduced); None means pairwise_distance (Euclidean). Default: None.
      margin: the gap wanted between d(a, n) and d(a, p); positive (default 1.0).
      swap: the distance swap: use min(d(a, n), d(p, n)) as the negative distance (default False).
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      anchor, positive, negative each (N, D) or (D,) -> () with reduction 'mean' or 'sum', the
      distances' shape, (N,) or (), with 'none'.

    Example:
      >>> a, p, n = jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones((2, 3))
      >>> l1 = lambda x, y: jnp.abs(x - y).sum(-1)
      >>> loss, _ = fl.TripletMarginWithDistanceLoss(distance_function=l1, margin=4.0).apply({}, {}, a, p, n)
      >>> loss   # 4 + 0 - 3
      Array(1., dtype=float32)
    """
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} instead")
    reduction = _reduction("TripletMarginWithDistanceLoss", None, None, reduction)
    return L.loss_layer("TripletMarginWithDistanceLoss()", lambda state, anchor, positive, negative:
                        M.triplet_margin_with_distance_loss(anchor, positive, negative,
                                                            distance_function=distance_function, margin=margin,
                                                            swap=swap, reduction=reduction))
