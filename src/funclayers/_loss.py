"""Loss functions (torch.nn.modules.loss): regression, binary, divergence, margin and embedding losses.

Cross entropy, NLL and the fused linear cross entropy live in _loss_ce.py, CTC in _loss_ctc.py.
Every loss is a layer without parameters (`LinearCrossEntropyLoss` has its linear layer's); the
class weights torch registers as buffers (`weight`, `pos_weight`) live in `state` under torch's names:

    loss_fn = fl.BCEWithLogitsLoss(pos_weight=jnp.full((3,), 2.0))
    params, state = loss_fn.init(rng)                  # state == {"pos_weight": ...}
    loss, state = loss_fn.apply(params, state, input, target)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._layer import Layer
from ._utils import TorchRuntimeError, check_floating, fmt_shape

# -- argument helpers shared by the loss family ---------------------------------------------------------

REDUCTIONS = ("none", "mean", "sum")


def legacy_get_string(size_average: bool | None, reduce: bool | None, emit_warning: bool = True) -> str:
    """torch's _Reduction.legacy_get_string: the deprecated size_average/reduce pair as a reduction."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if size_average and reduce else "sum" if reduce else "none"
    if emit_warning:
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
                      UserWarning, stacklevel=4)
    return ret


def resolve_reduction(who: str, reduction: str, size_average: bool | None = None, reduce: bool | None = None,
                      extra: tuple[str, ...] = ()) -> str:
    """The reduction in force: size_average/reduce override `reduction` as in torch; validated."""
    if size_average is not None or reduce is not None:
        reduction = legacy_get_string(size_average, reduce)
    if reduction == "elementwise_mean":  # torch's deprecated alias
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
                      UserWarning, stacklevel=3)
        reduction = "mean"
    if reduction not in REDUCTIONS + extra:
        allowed = ", ".join(repr(r) for r in REDUCTIONS + extra)
        raise ValueError(f"{who}: {reduction} is not a valid value for reduction; use one of {allowed}.")
    return reduction


def reduce_loss(loss: jax.Array, reduction: str) -> jax.Array:
    """torch's apply_loss_reduction: mean, sum or the unreduced losses."""
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def concrete(x: Any) -> np.ndarray | None:
    """`x` as a numpy array when its value is known at trace time, else None (inside jit)."""
    if x is None or isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def float_inputs(who: str, *arrays: Any, names: tuple[str, ...] = ("input", "target")) -> tuple:
    """The arrays in one floating dtype (torch's type promotion); TypeError for non-floating input."""
    for a, name in zip(arrays, names):
        check_floating(who, a, name)
    dtype = jnp.result_type(*arrays)
    return tuple(jnp.asarray(a, dtype) for a in arrays)


def broadcast_pair(who: str, input: Any, target: Any) -> tuple:
    """torch's broadcast_tensors of input and target, with torch's warning when the sizes differ."""
    s_in, s_t = fmt_shape(input), fmt_shape(target)
    if s_in != s_t:
        warnings.warn(f"{who}: Using a target size ({s_t}) that is different to the input size ({s_in}). This "
                      "will likely lead to incorrect results due to broadcasting. Please ensure they have the "
                      "same size.", UserWarning, stacklevel=4)
        try:
            shape = jnp.broadcast_shapes(s_in, s_t)
        except ValueError:
            raise TorchRuntimeError(f"{who}: the target of shape {s_t} does not broadcast against the input of "
                                    f"shape {s_in}; give both the same shape.") from None
        input, target = jnp.broadcast_to(input, shape), jnp.broadcast_to(target, shape)
    return input, target


def weighted(who: str, loss: jax.Array, weight: Any, reduction: str, mean_by_weight: bool) -> jax.Array:
    """torch 2.13's elementwise `weight` of l1/mse/huber: same size as the input; 'mean' divides by
    sum(weight) (l1, mse) or by the element count (huber)."""
    if fmt_shape(weight) != loss.shape:
        raise ValueError(f"{who}: Weights and input must have the same size: weight of shape "
                         f"{fmt_shape(weight)}, input of shape {loss.shape}.")
    weight = jnp.asarray(weight, loss.dtype)
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return jnp.sum(loss) / jnp.sum(weight)
    return reduce_loss(loss, reduction)


def safe_where(cond: jax.Array, fn: Callable, x: jax.Array, fill: Any, other: jax.Array) -> jax.Array:
    """where(cond, fn(x), other) whose gradient is not NaN where fn(x) is not finite off `cond`."""
    return jnp.where(cond, fn(jnp.where(cond, x, fill)), other)


def loss_layer(name: str, fn: Callable, buffers: dict | None = None) -> Layer:
    """A loss layer: torch's buffers (those given) in `state`, forward `fn(state, *inputs, **kwargs)`."""
    initial = {k: jnp.asarray(v) for k, v in (buffers or {}).items() if v is not None}

    def init(rng: Any = None) -> tuple[dict, dict]:
        del rng
        return {}, dict(initial)

    def apply(params, state, *inputs, rng=None, training=False, **kwargs):
        del params, rng, training
        return fn(state, *inputs, **kwargs), state

    return Layer(init, apply, name)


# -- regression losses ---------------------------------------------------------------------------------


def l1_loss(input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
            reduction: str = "mean", weight: Any = None) -> jax.Array:
    """Mean absolute error; torch.nn.functional.l1_loss.

    Args:
      input, target: any shape (broadcast with torch's warning when they differ).
      weight: optional elementwise weight of the input's shape; 'mean' then divides by its sum.
      reduction: 'none' | 'mean' | 'sum' (size_average/reduce map as torch maps them).

    Shape: (*), (*) -> () or (*) with reduction='none'.

    Example:
      >>> F.l1_loss(jnp.ones(3), jnp.zeros(3))   # 1.0
    """
    reduction = resolve_reduction("l1_loss", reduction, size_average, reduce)
    input, target = broadcast_pair("l1_loss", *float_inputs("l1_loss", input, target))
    loss = jnp.abs(input - target)
    if weight is not None:
        return weighted("l1_loss", loss, weight, reduction, mean_by_weight=True)
    return reduce_loss(loss, reduction)


def mse_loss(input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
             reduction: str = "mean", weight: Any = None) -> jax.Array:
    """Mean squared error; torch.nn.functional.mse_loss (arguments as `l1_loss`).

    Example:
      >>> F.mse_loss(jnp.full(3, 2.0), jnp.zeros(3))   # 4.0
    """
    reduction = resolve_reduction("mse_loss", reduction, size_average, reduce)
    input, target = broadcast_pair("mse_loss", *float_inputs("mse_loss", input, target))
    loss = jnp.square(input - target)
    if weight is not None:
        return weighted("mse_loss", loss, weight, reduction, mean_by_weight=True)
    return reduce_loss(loss, reduction)


def _huber(diff: jax.Array, delta: float) -> jax.Array:
    absolute = jnp.abs(diff)
    return jnp.where(absolute < delta, 0.5 * diff * diff, delta * (absolute - 0.5 * delta))


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0,
               weight: Any = None) -> jax.Array:
    """Huber loss: 0.5 d^2 for |d| < delta, else delta (|d| - delta / 2); torch.nn.functional.huber_loss.

    Example:
      >>> F.huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none")   # [0.125, 2.5]
    """
    reduction = resolve_reduction("huber_loss", reduction)
    input, target = broadcast_pair("huber_loss", *float_inputs("huber_loss", input, target))
    loss = _huber(input - target, delta)
    if weight is not None:
        return weighted("huber_loss", loss, weight, reduction, mean_by_weight=False)
    return reduce_loss(loss, reduction)


def smooth_l1_loss(input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
                   reduction: str = "mean", beta: float = 1.0) -> jax.Array:
    """Smooth L1: 0.5 d^2 / beta for |d| < beta, else |d| - beta / 2 (L1 when beta == 0);
    torch.nn.functional.smooth_l1_loss.

    Example:
      >>> F.smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none")   # [0.125, 2.5]
    """
    reduction = resolve_reduction("smooth_l1_loss", reduction, size_average, reduce)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta} (torch: smooth_l1_loss does "
                         f"not support negative values for beta).")
    input, target = broadcast_pair("smooth_l1_loss", *float_inputs("smooth_l1_loss", input, target))
    diff = input - target
    absolute = jnp.abs(diff)
    loss = absolute if beta == 0 else jnp.where(absolute < beta, 0.5 * diff * diff / beta, absolute - 0.5 * beta)
    return reduce_loss(loss, reduction)


def poisson_nll_loss(input: Any, target: Any, log_input: bool = True, full: bool = False,
                     size_average: bool | None = None, eps: float = 1e-8, reduce: bool | None = None,
                     reduction: str = "mean") -> jax.Array:
    """Poisson negative log likelihood; torch.nn.functional.poisson_nll_loss.

    exp(input) - target * input (log_input) or input - target * log(input + eps); `full` adds the
    Stirling term target log target - target + log(2 pi target) / 2 where target > 1.

    Example:
      >>> F.poisson_nll_loss(jnp.zeros(3), jnp.ones(3))   # 1.0
    """
    reduction = resolve_reduction("poisson_nll_loss", reduction, size_average, reduce)
    input, target = float_inputs("poisson_nll_loss", input, target)
    loss = jnp.exp(input) - target * input if log_input else input - target * jnp.log(input + eps)
    if full:
        def stirling(t):
            return t * jnp.log(t) - t + 0.5 * jnp.log(2 * math.pi * t)
        loss = loss + safe_where(target > 1, stirling, target, 2.0, jnp.zeros_like(target))
    return reduce_loss(loss, reduction)


def gaussian_nll_loss(input: Any, target: Any, var: Any, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> jax.Array:
    """Gaussian negative log likelihood (log var + (input - target)^2 / var) / 2;
    torch.nn.functional.gaussian_nll_loss.

    Args:
      var: the variances, of the input's shape, one dimension short of it, or broadcastable along
        exactly one dimension (homoscedastic); or a float. Clamped to >= eps as torch clamps it
        (outside autograd: the gradient passes through the clamp).

    Example:
      >>> F.gaussian_nll_loss(jnp.zeros(3), jnp.zeros(3), jnp.ones(3))   # 0.0
    """
    reduction = resolve_reduction("gaussian_nll_loss", reduction)
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError("gaussian_nll_loss: var has negative entry/entries")
        var = jnp.full(fmt_shape(input), float(var))
    input, target, var = float_inputs("gaussian_nll_loss", input, target, var, names=("input", "target", "var"))
    known = concrete(var)
    if known is not None and np.any(known < 0):
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    s_in, s_var = input.shape, var.shape
    if s_var != s_in:
        if s_in[:-1] == s_var:
            var = var[..., None]
        elif not (len(s_in) == len(s_var) and sum(v for i, v in zip(s_in, s_var) if i != v) == 1):
            raise ValueError(f"gaussian_nll_loss: var is of incorrect size: {s_var} for an input of shape {s_in}; "
                             "give var the input's shape, that shape without its last dimension, or 1 in one "
                             "dimension.")
    var = var + jax.lax.stop_gradient(jnp.maximum(var, eps) - var)  # torch clamps under no_grad
    loss = 0.5 * (jnp.log(var) + jnp.square(input - target) / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return reduce_loss(loss, reduction)


# -- binary and divergence losses -----------------------------------------------------------------------


def _bce_value(x, t, w):
    # torch clamps each log at -100 so that x in {0, 1} gives a finite loss
    return -w * (t * jnp.maximum(jnp.log(x), -100.0) + (1 - t) * jnp.maximum(jnp.log1p(-x), -100.0))


_BCE_EPSILON = float(np.float32(1e-12))


@jax.custom_jvp
def _bce(x, t, w):
    return _bce_value(x, t, w)


@_bce.defjvp
def _bce_jvp(primals, tangents):
    # torch's backward: w (x - t) / max(x (1 - x), EPSILON) for the input, EPSILON being the float 1e-12f;
    # the clamped log-odds for the target
    (x, t, w), (dx, dt, dw) = primals, tangents
    out = _bce_value(x, t, w)
    d_x = w * (x - t) / jnp.maximum(x * (1 - x), _BCE_EPSILON)
    d_t = w * (jnp.maximum(jnp.log1p(-x), -100.0) - jnp.maximum(jnp.log(x), -100.0))
    d_w = _bce_value(x, t, jnp.ones_like(w))
    return out, d_x * dx + d_t * dt + d_w * dw


def binary_cross_entropy(input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
                         reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """Binary cross entropy of probabilities; torch.nn.functional.binary_cross_entropy.

    Args:
      input: probabilities in [0, 1] (checked when concrete, as torch checks); target: same shape.
      weight: rescaling weight broadcast against the target.

    Example:
      >>> F.binary_cross_entropy(jnp.full(2, 0.5), jnp.ones(2))   # log 2
    """
    who = "binary_cross_entropy"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    if fmt_shape(target) != fmt_shape(input):
        raise ValueError(f"{who}: Using a target size ({fmt_shape(target)}) that is different to the input size "
                         f"({fmt_shape(input)}) is deprecated. Please ensure they have the same size.")
    input, target = float_inputs(who, input, target)
    known = concrete(input)
    if known is not None and not np.all((known >= 0) & (known <= 1)):
        raise ValueError(f"{who}: all elements of input should be between 0 and 1; apply a sigmoid first, or use "
                         "binary_cross_entropy_with_logits on the logits.")
    w = jnp.ones((), input.dtype) if weight is None else jnp.asarray(weight, input.dtype)
    try:
        shape = jnp.broadcast_shapes(target.shape, w.shape)
    except ValueError:
        raise TorchRuntimeError(f"{who}: weight of shape {w.shape} does not broadcast to the target's shape "
                                f"{target.shape}.") from None
    if shape != target.shape:
        raise TorchRuntimeError(f"{who}: weight of shape {w.shape} broadcasts the target of shape "
                                f"{target.shape} to {shape}; give it a shape that broadcasts to the target's.")
    loss = _bce(input, target, jnp.broadcast_to(w, shape))
    return reduce_loss(loss, reduction)


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any = None,
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> jax.Array:
    """Sigmoid + binary cross entropy in one stable expression; torch.nn.functional.binary_cross_entropy_with_logits.

    Args:
      input: logits; target: same shape, probabilities.
      weight: rescaling weight broadcast against the loss; pos_weight: weight of positive examples,
        broadcast along the class (last) dimension.

    Example:
      >>> F.binary_cross_entropy_with_logits(jnp.zeros(2), jnp.ones(2))   # log 2
    """
    who = "binary_cross_entropy_with_logits"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    if fmt_shape(target) != fmt_shape(input):
        raise ValueError(f"{who}: Target size ({fmt_shape(target)}) must be the same as input size "
                         f"({fmt_shape(input)}).")
    input, target = float_inputs(who, input, target)
    log_sigmoid = jax.nn.log_sigmoid(input)
    if pos_weight is not None:
        log_sigmoid = log_sigmoid * ((jnp.asarray(pos_weight, input.dtype) - 1) * target + 1)
    loss = (1 - target) * input - log_sigmoid
    if weight is not None:
        loss = loss * jnp.asarray(weight, input.dtype)
    return reduce_loss(loss, reduction)


def kl_div(input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
           reduction: str = "mean", log_target: bool = False) -> jax.Array:
    """Kullback-Leibler divergence of `target` from the log-probabilities `input`; torch.nn.functional.kl_div.

    target (log target) - input pointwise, xlogy(target, target) - target input; 'batchmean' divides the
    sum by the batch size (the mathematical KL), 'mean' by the element count (with torch's warning).

    Example:
      >>> F.kl_div(jnp.log(jnp.full(2, 0.5)), jnp.full(2, 0.5), reduction="sum")   # 0.0
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_get_string(size_average, reduce)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    reduction = resolve_reduction("kl_div", reduction, extra=("batchmean",))
    input, target = float_inputs("kl_div", input, target)
    input, target = jnp.broadcast_arrays(input, target)
    if log_target:
        loss = jnp.exp(target) * (target - input)
    else:
        loss = jax.scipy.special.xlogy(target, target) - target * input
    if reduction == "batchmean":
        total = jnp.sum(loss)
        return total / input.shape[0] if input.ndim else total
    return reduce_loss(loss, reduction)


# -- margin and embedding losses ------------------------------------------------------------------------


def soft_margin_loss(input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
                     reduction: str = "mean") -> jax.Array:
    """Two-class logistic loss log(1 + exp(-target input)); torch.nn.functional.soft_margin_loss.

    Example:
      >>> F.soft_margin_loss(jnp.zeros(2), jnp.ones(2))   # log 2
    """
    reduction = resolve_reduction("soft_margin_loss", reduction, size_average, reduce)
    input, target = float_inputs("soft_margin_loss", input, target)
    return reduce_loss(jnp.log1p(jnp.exp(-input * target)), reduction)


def multilabel_soft_margin_loss(input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
                                reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """Multi-label one-versus-all logistic loss, averaged over classes; torch.nn.functional.multilabel_soft_margin_loss.

    Shape: (N, C) or (C,) input and target in {0, 1} -> (N,) / () with reduction='none'.

    Example:
      >>> F.multilabel_soft_margin_loss(jnp.zeros((2, 3)), jnp.ones((2, 3)))   # log 2
    """
    reduction = resolve_reduction("multilabel_soft_margin_loss", reduction, size_average, reduce)
    input, target = float_inputs("multilabel_soft_margin_loss", input, target)
    loss = -(target * jax.nn.log_sigmoid(input) + (1 - target) * jax.nn.log_sigmoid(-input))
    if weight is not None:
        loss = loss * jnp.asarray(weight, input.dtype)
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

    Args:
      input: (C,) or (N, C) scores. target: integer, same shape: the target class indices of each
        sample, ended by the first -1 (the rest is ignored).

    loss = sum_{j target} sum_{i not target} max(0, 1 - (x[y_j] - x[i])) / C per sample.

    Example:
      >>> F.multilabel_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[3, 0, -1, 1]]))   # 0.85
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

    Shape: (N, C) input and (N,) integer target, or (C,) and () -> (N,) / () with reduction='none'.

    Example:
      >>> F.multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))   # 0.325
    """
    who = "multi_margin_loss"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    if p not in (1, 2):
        raise ValueError(f"{who}: only p == 1 and p == 2 supported, got p={p}.")
    check_floating(who, input)
    target = _check_integer_target(who, target)
    x = jnp.asarray(input)
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

    Example:
      >>> F.margin_ranking_loss(jnp.ones(2), jnp.zeros(2), jnp.ones(2))   # 0.0
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

    Example:
      >>> F.hinge_embedding_loss(jnp.array([0.3, 0.3]), jnp.array([1.0, -1.0]))   # 0.5
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

    Shape: (N, D), (N, D), (N,) or (D,), (D,), () -> (N,) / () with reduction='none'.

    Example:
      >>> F.cosine_embedding_loss(jnp.ones((1, 2)), jnp.ones((1, 2)), jnp.ones(1))   # 0.0
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

    Shape: (N, D) or (D,) each -> (N,) / () with reduction='none'.

    Example:
      >>> F.triplet_margin_loss(jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.ones((1, 2)))   # ~0.0
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

    Example:
      >>> F.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x, y: 1 - (x * y).sum(-1))
    """
    who = "triplet_margin_with_distance_loss"
    reduction = resolve_reduction(who, reduction)
    if margin <= 0:
        raise ValueError(f"{who}: expected margin to be greater than 0, got {margin} instead")
    _check_triplet(who, anchor, positive, negative)
    distance = distance_function if distance_function is not None else pairwise_distance_for_loss
    return _triplet(jnp.asarray(anchor), jnp.asarray(positive), jnp.asarray(negative), distance, margin, swap,
                    reduction)
