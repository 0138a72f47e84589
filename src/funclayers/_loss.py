"""Loss functions (torch.nn.modules.loss): regression, binary, divergence, margin and embedding losses.

Margin and embedding losses live in _loss_margin.py, cross entropy, NLL and the fused linear cross
entropy in _loss_ce.py, CTC in _loss_ctc.py, the layers in _loss_modules.py and
_loss_modules_ce.py.
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


def float_inputs(who: str, *arrays: Any, names: tuple[str, ...] = ("input", "target"),
                 integer_target: bool = True) -> tuple:
    """The arrays in one floating dtype (torch's type promotion); TypeError for a non-floating input.

    An integer or bool `target` is promoted to the inputs' dtype, as torch does, unless
    `integer_target=False` (binary cross entropy and kl_div, whose torch kernels reject one)."""
    floating = []
    for a, name in zip(arrays, names):
        if not (integer_target and name == "target"):
            check_floating(who, a, name)
            floating.append(a)
        elif jnp.issubdtype(jnp.result_type(a), jnp.floating):
            floating.append(a)
    dtype = jnp.result_type(*floating)
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
    """Mean absolute error |input - target|; torch.nn.functional.l1_loss.

    Args:
      input: the predictions, floating, any shape.
      target: the input's shape (broadcast against it, with torch's warning, when it differs); an
        integer target is promoted to the input's dtype.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      weight: optional elementwise weight of the input's shape; 'mean' then divides by its sum. Default: None.

    Shape:
      input (*), target (*) -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> F.l1_loss(jnp.ones(3), jnp.zeros(3))
      Array(1., dtype=float32)
      >>> F.l1_loss(jnp.array([1.0, 3.0]), jnp.zeros(2), weight=jnp.array([3.0, 1.0]))   # (3 + 3) / 4
      Array(1.5, dtype=float32)
    """
    reduction = resolve_reduction("l1_loss", reduction, size_average, reduce)
    input, target = broadcast_pair("l1_loss", *float_inputs("l1_loss", input, target))
    loss = jnp.abs(input - target)
    if weight is not None:
        return weighted("l1_loss", loss, weight, reduction, mean_by_weight=True)
    return reduce_loss(loss, reduction)


def mse_loss(input: Any, target: Any, size_average: bool | None = None, reduce: bool | None = None,
             reduction: str = "mean", weight: Any = None) -> jax.Array:
    """Mean squared error (input - target)^2; torch.nn.functional.mse_loss.

    Args:
      input: the predictions, floating, any shape.
      target: the input's shape (broadcast against it, with torch's warning, when it differs); an
        integer target is promoted to the input's dtype.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      weight: optional elementwise weight of the input's shape; 'mean' then divides by its sum. Default: None.

    Shape:
      input (*), target (*) -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> F.mse_loss(jnp.full(3, 2.0), jnp.zeros(3))
      Array(4., dtype=float32)
      >>> F.mse_loss(jnp.array([1.0, 3.0]), jnp.zeros(2), reduction="none")
      Array([1., 9.], dtype=float32)
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

    Args:
      input: the predictions, floating, any shape.
      target: the input's shape (broadcast against it, with torch's warning, when it differs); an
        integer target is promoted to the input's dtype.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      delta: where the loss turns from quadratic to linear; positive (default 1.0).
      weight: optional elementwise weight of the input's shape; 'mean' still divides by the element count.
        Default: None.

    Shape:
      input (*), target (*) -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> F.huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none")
      Array([0.125, 2.5  ], dtype=float32)
      >>> F.huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none", delta=2.0)
      Array([0.125, 4.   ], dtype=float32)
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

    Equals huber_loss / beta for beta > 0 (and huber_loss itself at beta = delta = 1).

    Args:
      input: the predictions, floating, any shape.
      target: the input's shape (broadcast against it, with torch's warning, when it differs); an
        integer target is promoted to the input's dtype.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      beta: where the loss turns from quadratic to linear (default 1.0, must be >= 0).

    Shape:
      input (*), target (*) -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> F.smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none")
      Array([0.125, 2.5  ], dtype=float32)
      >>> F.smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none", beta=2.0)
      Array([0.0625, 2.    ], dtype=float32)
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

    Args:
      input: the expectation of the Poisson distribution, or its log with log_input=True.
      target: counts drawn from it, the input's shape; an integer target is promoted to the input's dtype.
      log_input: the input is the log-rate (default True); else the rate itself.
      full: add the Stirling approximation term of log(target!) (default False).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      eps: added to the input before the log when log_input=False (default 1e-8).
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*), target (*) -> () with reduction 'mean' or 'sum', (*) with 'none'.

    Example:
      >>> F.poisson_nll_loss(jnp.zeros(3), jnp.ones(3))   # exp(0) - 1 * 0
      Array(1., dtype=float32)
      >>> F.poisson_nll_loss(jnp.full(2, 2.0), jnp.full(2, 2.0), log_input=False)   # 2 - 2 log 2
      Array(0.6137056, dtype=float32)
    """
    reduction = resolve_reduction("poisson_nll_loss", reduction, size_average, reduce)
    input, target = float_inputs("poisson_nll_loss", input, target)
    loss = jnp.exp(input) - target * input if log_input else input - target * jnp.log(input + eps)
    if full:
        # torch's stirling_term.masked_fill(target <= 1, 0), computed on every target: its gradient w.r.t. the
        # target is 0 * d(stirling) there, NaN where target <= 0 (log 0, log of a negative), 0 on (0, 1]
        stirling = target * jnp.log(target) - target + 0.5 * jnp.log(2 * math.pi * target)
        loss = loss + jnp.where(target <= 1, jnp.zeros_like(target), stirling)
    return reduce_loss(loss, reduction)


def gaussian_nll_loss(input: Any, target: Any, var: Any, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> jax.Array:
    """Gaussian negative log likelihood (log var + (input - target)^2 / var) / 2;
    torch.nn.functional.gaussian_nll_loss.

    Args:
      input: the expectation of the Gaussian distribution.
      target: samples from it, the input's shape (or broadcastable against it).
      var: the variances, of the input's shape, one dimension short of it, or broadcastable along
        exactly one dimension (homoscedastic); or a float. Clamped to >= eps as torch clamps it
        (outside autograd: the gradient passes through the clamp). Must not be negative.
      full: add the constant log(2 pi) / 2 (default False).
      eps: the lower clamp of var, for stability (default 1e-6).
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (N, *) or (*), target like the input, var like the input, without its last dimension,
      or with one dimension of size 1 -> () with reduction 'mean' or 'sum', the input's shape with 'none'.

    Example:
      >>> F.gaussian_nll_loss(jnp.zeros(3), jnp.zeros(3), jnp.ones(3))
      Array(0., dtype=float32)
      >>> F.gaussian_nll_loss(jnp.zeros((2, 3)), jnp.ones((2, 3)), jnp.full((2, 1), 2.0))   # (log 2 + 1/2) / 2
      Array(0.5965736, dtype=float32)
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

    -w (t log x + (1 - t) log(1 - x)), each log clamped at -100 as torch clamps it.

    Args:
      input: probabilities in [0, 1] (checked when concrete, as torch checks).
      target: the input's shape (required: no broadcasting), floating, usually in [0, 1].
      weight: optional rescaling weight, broadcast to the target's shape. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').

    Shape:
      input (*), target (*), weight broadcastable to (*) -> () with reduction 'mean' or 'sum',
      (*) with 'none'.

    Example:
      >>> F.binary_cross_entropy(jnp.full(2, 0.5), jnp.ones(2))   # log 2
      Array(0.6931472, dtype=float32)
      >>> F.binary_cross_entropy(jnp.array([0.9, 0.2]), jnp.array([1.0, 0.0]), reduction="none")   # -log 0.9, -log 0.8
      Array([0.10536055, 0.22314355], dtype=float32)
    """
    who = "binary_cross_entropy"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    if fmt_shape(target) != fmt_shape(input):
        raise ValueError(f"{who}: Using a target size ({fmt_shape(target)}) that is different to the input size "
                         f"({fmt_shape(input)}) is deprecated. Please ensure they have the same size.")
    input, target = float_inputs(who, input, target, integer_target=False)
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
      input: logits, any shape.
      target: the input's shape (required), floating probabilities in [0, 1].
      weight: optional rescaling weight, broadcast against the loss. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      pos_weight: optional weight of the positive term t log sigmoid(x), broadcast against the
        target along its last (class) dimension: (C,) for C classes; > 1 raises recall. Default: None.

    Shape:
      input (*), target (*), pos_weight (C,) with * = (..., C) -> () with reduction 'mean' or 'sum',
      (*) with 'none'.

    Example:
      >>> F.binary_cross_entropy_with_logits(jnp.zeros(2), jnp.ones(2))   # log 2
      Array(0.6931472, dtype=float32)
      >>> F.binary_cross_entropy_with_logits(jnp.zeros(2), jnp.ones(2), pos_weight=jnp.array([1.0, 3.0]),
      ...                                    reduction="none")   # [log 2, 3 log 2]
      Array([0.6931472, 2.0794415], dtype=float32)
    """
    who = "binary_cross_entropy_with_logits"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    if fmt_shape(target) != fmt_shape(input):
        raise ValueError(f"{who}: Target size ({fmt_shape(target)}) must be the same as input size "
                         f"({fmt_shape(input)}).")
    input, target = float_inputs(who, input, target, integer_target=False)
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

    target (log target - input) pointwise, xlogy(target, target) - target input; 'batchmean' divides the
    sum by the batch size (the mathematical KL), 'mean' by the element count (with torch's warning).

    Args:
      input: log-probabilities, floating, any shape.
      target: probabilities (log-probabilities with log_target=True), broadcast against the input;
        floating (torch rejects an integer target here).
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      reduction: 'none' | 'batchmean' | 'mean' | 'sum' (default 'mean', which warns: 'batchmean'
        gives the KL divergence).
      log_target: the target is given as log-probabilities (default False).

    Shape:
      input (*), target (*) -> () with reduction 'batchmean', 'mean' or 'sum' ('batchmean' divides
      by the size of dimension 0), (*) with 'none'.

    Example:
      >>> F.kl_div(jnp.log(jnp.full(2, 0.5)), jnp.full(2, 0.5), reduction="sum")
      Array(0., dtype=float32)
      >>> p = jnp.array([[0.25, 0.75], [0.5, 0.5]])
      >>> F.kl_div(jnp.log(jnp.full((2, 2), 0.5)), p, reduction="batchmean")   # KL(p || 1/2) per row, averaged
      Array(0.06540601, dtype=float32)
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_get_string(size_average, reduce)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    reduction = resolve_reduction("kl_div", reduction, extra=("batchmean",))
    input, target = float_inputs("kl_div", input, target, integer_target=False)
    input, target = jnp.broadcast_arrays(input, target)
    if log_target:
        loss = jnp.exp(target) * (target - input)
    else:
        loss = jax.scipy.special.xlogy(target, target) - target * input
    if reduction == "batchmean":
        total = jnp.sum(loss)
        return total / input.shape[0] if input.ndim else total
    return reduce_loss(loss, reduction)
