"""The class-index losses of torch.nn.modules.loss (NLL, cross entropy, CTC, linear cross entropy) as layers.

Split from _loss_modules.py (the other 18 loss layers); the same pattern: torch's constructor
arguments checked at construction, `weight` a buffer in `state`:

    criterion = fl.CrossEntropyLoss(weight=w, ignore_index=0, label_smoothing=0.1)
    params, state = criterion.init(rng)                     # ({}, {"weight": w})
    loss, state = criterion.apply(params, state, logits, target)
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from . import _loss as L
from ._layer import Layer
from ._linear import Linear
from ._loss_ce import check_label_smoothing, cross_entropy, linear_cross_entropy, nll_loss, num_out_classes
from ._loss_ctc import ctc_loss
from ._loss_modules import _reduction
from ._utils import TorchRuntimeError, param_dtype


def NLLLoss(weight: Any = None, size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
            reduction: str = "mean") -> Layer:
    """Negative log likelihood of log-probabilities; torch.nn.NLLLoss (`weight` in state).

    Args:
      weight: optional (C,) class weights; 'mean' divides by the sum of the non-ignored targets' weights. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      ignore_index: a target value that contributes nothing (default -100).
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (N, C), (C,) or (N, C, d1, ..., dK) log-probabilities; target (N,), () or (N, d1, ..., dK)
      integer -> () with reduction 'mean' or 'sum', the target's shape with 'none'.

    Example:
      >>> loss, _ = fl.NLLLoss().apply({}, {}, jnp.log(jnp.full((2, 4), 0.25)), jnp.array([0, 3]))
      >>> loss   # log 4
      Array(1.3862944, dtype=float32)
    """
    reduction = _reduction("NLLLoss", size_average, reduce, reduction)
    return L.loss_layer("NLLLoss()", lambda state, input, target: nll_loss(
        input, target, state.get("weight"), ignore_index=ignore_index, reduction=reduction), {"weight": weight})


def NLLLoss2d(weight: Any = None, size_average: bool | None = None, ignore_index: int = -100,
              reduce: bool | None = None, reduction: str = "mean") -> Layer:
    """torch's deprecated alias of NLLLoss (the same loss, spatial targets included); torch.nn.NLLLoss2d.

    Args:
      weight: a manual rescaling weight given to each class, a (C,) array, kept in `state` as
        torch's buffer. Default: None (all ones).
      size_average: deprecated (see `reduction`). Default: None.
      ignore_index: a target value that is ignored and does not contribute to the input
        gradient. Default: -100.
      reduce: deprecated (see `reduction`). Default: None.
      reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.

    Shape:
      input (N, C, d1, ..., dK) (or any shape NLLLoss takes) log-probabilities; target (N, d1, ..., dK)
      integer -> () with reduction 'mean' or 'sum', the target's shape with 'none'.

    Constructing it warns (FutureWarning), as torch's does.

    Example:
      >>> x = jnp.log(jnp.full((1, 4, 2, 2), 0.25))
      >>> loss, _ = fl.NLLLoss2d().apply({}, {}, x, jnp.zeros((1, 2, 2), int))
      >>> loss   # log 4
      Array(1.3862944, dtype=float32)
    """
    warnings.warn("`NLLLoss2d` has been deprecated. Please use `NLLLoss` instead as a drop-in replacement "
                  "(torch warns the same at construction).", FutureWarning, stacklevel=2)
    return NLLLoss(weight, size_average, ignore_index, reduce, reduction)._replace(name="NLLLoss2d()")


def CrossEntropyLoss(weight: Any = None, size_average: bool | None = None, ignore_index: int = -100,
                     reduce: bool | None = None, reduction: str = "mean", label_smoothing: float = 0.0) -> Layer:
    """Cross entropy of logits against class indices or probabilities; torch.nn.CrossEntropyLoss (`weight` in state).

    Args:
      weight: optional (C,) class weights. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      ignore_index: an index-target value that contributes nothing (default -100).
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      label_smoothing: in [0, 1]; mixes the target with the uniform distribution (default 0.0).

    Shape:
      input (N, C), (C,) or (N, C, d1, ..., dK) logits; target (N,), () or (N, d1, ..., dK) integer,
      or probabilities of the input's shape -> () with reduction 'mean' or 'sum', (N,), () or
      (N, d1, ..., dK) with 'none'.

    Example:
      >>> logits, labels = jnp.zeros((4, 5)), jnp.array([1, 0, 4, 2])
      >>> criterion = fl.CrossEntropyLoss(ignore_index=0, label_smoothing=0.1)
      >>> loss, _ = criterion.apply({}, {}, logits, labels)
      >>> loss   # uniform logits: log 5, the ignored label 0 left out of the mean
      Array(1.609438, dtype=float32)
    """
    reduction = _reduction("CrossEntropyLoss", size_average, reduce, reduction)
    label_smoothing = check_label_smoothing("CrossEntropyLoss", label_smoothing)
    return L.loss_layer("CrossEntropyLoss()", lambda state, input, target: cross_entropy(
        input, target, state.get("weight"), ignore_index=ignore_index, reduction=reduction,
        label_smoothing=label_smoothing), {"weight": weight})


def CTCLoss(blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> Layer:
    """Connectionist temporal classification loss; torch.nn.CTCLoss.

    apply(params, state, log_probs, targets, input_lengths, target_lengths), as F.ctc_loss.

    Args:
      blank: the blank label's index (default 0).
      reduction: 'none' | 'mean' | 'sum' (default 'mean': each loss divided by its target length,
        then averaged over the batch).
      zero_infinity: set infinite losses (inputs too short for their targets) and their gradients to zero.
        Default: False.

    Shape:
      log_probs (T, N, C) or (T, C) (log_softmax over C); targets padded (N, S) or concatenated
      (sum(target_lengths),); input_lengths, target_lengths (N,) arrays (traced or not) or sequences
      -> () with reduction 'mean' or 'sum', (N,) with 'none'.

    Example:
      >>> lp = jax.nn.log_softmax(jnp.zeros((50, 16, 20)), axis=-1)
      >>> loss, _ = fl.CTCLoss().apply({}, {}, lp, jnp.ones((16, 30), int), jnp.full(16, 50), jnp.full(16, 20))
      >>> loss
      Array(6.2600017, dtype=float32)
    """
    reduction = _reduction("CTCLoss", None, None, reduction)
    return L.loss_layer("CTCLoss()", lambda state, log_probs, targets, input_lengths, target_lengths: ctc_loss(
        log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity))


def LinearCrossEntropyLoss(in_features: int, num_classes: int, *, out_features: tuple[int, ...] = (),
                           bias: bool = False, device: Any = None, dtype: Any = None, reduction: str = "mean",
                           weight: Any = None, ignore_index: int | None = None, label_smoothing: float = 0.0,
                           options: Any = None) -> Layer:
    """A linear layer fused with cross entropy, never holding the (N, C) logits; torch.nn.LinearCrossEntropyLoss.

    Params `linear.weight` (C * d1 * ... * dK, in_features) and `linear.bias` (with bias=True), flat as
    torch stores them; `weight` (C,) is a buffer in state. apply(params, state, input, target).

    Args:
      in_features: the size of each input feature vector.
      num_classes: C, the number of classes.
      out_features: (d1, ..., dK) extra class dimensions of a K-dimensional loss (default ()).
      bias: give the linear layer a bias (default False).
      device: ignored. Default: None.
      dtype: the parameters' dtype (default float32).
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      weight: optional (C,) class weights. Default: None.
      ignore_index: a class-index target that contributes nothing (None means -100). Default: None.
      label_smoothing: in [0, 1] (default 0.0).
      options: anything with a `batch_chunk_size` attribute (rows per chunk), or None. Default: None.

    Shape:
      input (in_features,) or (N, in_features); integer target (), (N,) or (N, d1, ..., dK), or
      probabilities (C,) / (N, C, d1, ..., dK) -> () or, with reduction='none', one loss per position.

    Example:
      >>> hidden, labels = jnp.ones((8, 512)), jnp.arange(8)
      >>> criterion = fl.LinearCrossEntropyLoss(512, 32000)
      >>> params, state = criterion.init(rng)
      >>> params["linear"]["weight"].shape
      (32000, 512)
      >>> loss, _ = criterion.apply(params, state, hidden, labels)   # hidden (N, 512), labels (N,)
    """
    del device
    out_features = tuple(out_features)
    if weight is not None and jnp.shape(weight) != (num_classes,):
        raise TorchRuntimeError(f"LinearCrossEntropyLoss: expected weight shape to be {(num_classes,)}, got "
                         f"{tuple(jnp.shape(weight))}")
    if not 0 <= label_smoothing <= 1:
        raise TorchRuntimeError(f"LinearCrossEntropyLoss: expected label_smoothing to be in range [0, 1], got "
                         f"{label_smoothing}")
    reduction = _reduction("LinearCrossEntropyLoss", None, None, reduction)
    linear = Linear(in_features, num_out_classes(num_classes, out_features), bias=bias, dtype=param_dtype(dtype))
    buffers = {} if weight is None else {"weight": jnp.asarray(weight)}

    def init(rng: jax.Array) -> tuple[dict, dict]:
        linear_params, _ = linear.init(rng)
        return {"linear": linear_params}, dict(buffers)

    def apply(params, state, input, target, *, rng=None, training=False):
        del rng, training
        lin = params["linear"]
        w_lin = lin["weight"].reshape((num_classes, *out_features, in_features))
        b = lin.get("bias")
        b = None if b is None else b.reshape((num_classes, *out_features))
        return linear_cross_entropy(input, w_lin, target, linear_bias=b, weight=state.get("weight"),
                                    reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing,
                                    options=options), state

    name = (f"LinearCrossEntropyLoss(in_features={in_features}, num_classes={num_classes}, out_features="
            f"{out_features}, bias={bias}, reduction={reduction}, ignore_index={ignore_index}, label_smoothing="
            f"{label_smoothing}, options={options})")
    return Layer(init, apply, name, (("linear", linear),))
