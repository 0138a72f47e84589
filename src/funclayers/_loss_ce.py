"""Cross entropy losses (torch.nn.modules.loss): nll_loss, cross_entropy and the fused linear_cross_entropy.

Class-index targets never gather or scatter: the target class is picked with a select against a
class iota, so the backward pass is elementwise and fuses with the softmax. linear_cross_entropy
never holds the (N, C) logits: it runs over row chunks, and for 'mean'/'sum' its derivative is a
`jax.custom_jvp` whose tangent is linear in (input, linear_weight, linear_bias) with coefficients
(the closed-form gradients) computed chunk by chunk in the forward pass, so reverse mode stores
only gradient-sized arrays and forward mode works.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ._linear import LINEAR_DTYPE_MESSAGES
from ._loss import concrete, reduce_loss, resolve_reduction
from ._softmax import _log_softmax_along
from ._utils import TorchRuntimeError, check_floating, check_param_dtypes, fmt_shape, varying_like

_PRECISION = lax.Precision.HIGHEST  # torch computes float32 matmuls in full float32


def check_label_smoothing(who: str, label_smoothing: float) -> float:
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{who}: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    return float(label_smoothing)


# torch's nll_loss kernels read the class weights as the input's scalar type (no cast, no promotion)
NLL_DTYPE_MESSAGE = "expected scalar type {input} but found {param}"


def _check_weight(who: str, weight: Any, num_classes: int) -> None:
    if weight is not None and fmt_shape(weight) != (num_classes,):
        raise TorchRuntimeError(f"{who}: weight tensor should be defined either for all {num_classes} classes or no "
                                f"classes but got weight tensor of shape: {list(fmt_shape(weight))}")


def _check_index_target(who: str, shape: tuple, target: Any, ignore_index: int) -> jax.Array:
    """torch's nll_loss_nd checks: integer target of the input's shape without the class dim; values
    in [0, C) or ignore_index when they are known at trace time."""
    if len(shape) < 1:
        raise TorchRuntimeError(f"{who}: Expected 1 or more dimensions (got 0) in the input.")
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"{who} expects class-index targets of an integer dtype (torch: expected scalar type Long), "
                        f"got dtype {target.dtype} and shape {target.shape} for input of shape {shape}; class "
                        f"probabilities must have the input's shape.")
    expected = () if len(shape) == 1 else shape[:1] + shape[2:]
    if target.shape != expected:
        if len(shape) > 1 and target.ndim >= 1 and target.shape[0] != shape[0]:
            detail = f"Expected input batch_size ({shape[0]}) to match target batch_size ({target.shape[0]})."
        elif len(shape) <= 2 and target.ndim > 1:
            detail = "0D or 1D target tensor expected, multi-target not supported."
        else:
            detail = f"Expected target size {list(expected)}, got {list(target.shape)}."
        raise TorchRuntimeError(f"{who}: {detail} (input of shape {shape}, target of shape {target.shape}; the "
                                f"target holds one class index per input position, without the class dim 1).")
    known = concrete(target)
    num_classes = shape[0] if len(shape) == 1 else shape[1]
    if known is not None:
        bad = known[(known != ignore_index) & ((known < 0) | (known >= num_classes))]
        if bad.size:
            raise ValueError(f"{who}: Target {bad.flat[0]} is out of bounds: class indices must lie in "
                             f"[0, {num_classes - 1}] (or equal ignore_index={ignore_index}).")
    return target


def _weighted_mean(loss: jax.Array, w_target: jax.Array, valid: jax.Array) -> jax.Array:
    """torch's weighted mean sum(loss) / sum(w_target), with its values and gradients where the total weight is 0:
    NaN when every target is ignored, with a zero gradient (torch's backward visits no element); NaN gradients
    for the targets that are not ignored but weigh 0 (torch's w_t * grad / 0). Divided term by term so that
    ignored terms never see the zero denominator."""
    total = jnp.sum(w_target)
    terms = jnp.where(valid, loss / jnp.where(valid, total, 1), 0)
    return jnp.where(jnp.any(valid), jnp.sum(terms), jnp.asarray(jnp.nan, loss.dtype))


def _index_loss(logp: jax.Array, target: jax.Array, weight: Any, ignore_index: int, label_smoothing: float,
                reduction: str) -> jax.Array:
    """torch's nll_loss_nd (+ cross_entropy_loss_label_smoothing) on log-probabilities (N, C, *d)."""
    num_classes = logp.shape[1]
    bshape = (1, num_classes) + (1,) * (logp.ndim - 2)
    onehot = target[:, None] == lax.broadcasted_iota(target.dtype, bshape, 1)
    valid = target != ignore_index
    picked = jnp.sum(jnp.where(onehot, logp, 0), axis=1)
    check_param_dtypes("nll_loss", logp, (weight,), NLL_DTYPE_MESSAGE)
    if weight is None:
        w_target = valid.astype(logp.dtype)
    else:
        w = jnp.asarray(weight, logp.dtype).reshape(bshape)
        w_target = jnp.sum(jnp.where(onehot, w, 0), axis=1) * valid
    loss = -picked * w_target
    if label_smoothing > 0:
        smooth = -jnp.sum(logp if weight is None else logp * w, axis=1) * valid
        loss = (1 - label_smoothing) * loss + (label_smoothing / num_classes) * smooth
    if reduction == "mean":
        return _weighted_mean(loss, w_target, valid)
    return reduce_loss(loss, reduction)


def _logsumexp(x: jax.Array, axis: int) -> jax.Array:
    """log sum exp over `axis`; its derivative is softmax, an elementwise pass over x and the result."""
    m = lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, 0)
    return jnp.log(jnp.sum(jnp.exp(x - m), axis=axis)) + jnp.squeeze(m, axis)


def _index_loss_logits(x: jax.Array, target: jax.Array, weight: Any, ignore_index: int, label_smoothing: float,
                       reduction: str) -> jax.Array:
    """`_index_loss(log_softmax(x), ...)` written on the logits: -log p_t = lse - x_t and
    -sum_c w_c log p_c = W lse - sum_c w_c x_c, so that the forward pass is a few fused row
    reductions and the backward pass one elementwise pass (softmax times a row factor minus the
    target distribution), with no (N, C) log-probabilities stored."""
    num_classes = x.shape[1]
    bshape = (1, num_classes) + (1,) * (x.ndim - 2)
    onehot = target[:, None] == lax.broadcasted_iota(target.dtype, bshape, 1)
    valid = target != ignore_index
    check_param_dtypes("cross_entropy", x, (weight,), NLL_DTYPE_MESSAGE)
    lse = _logsumexp(x, 1)
    picked = jnp.sum(jnp.where(onehot, x, 0), axis=1)
    if weight is None:
        w_target = valid.astype(x.dtype)
    else:
        w = jnp.asarray(weight, x.dtype).reshape(bshape)
        w_target = jnp.sum(jnp.where(onehot, w, 0), axis=1) * valid
    loss = (lse - picked) * w_target
    if label_smoothing > 0:
        if weight is None:
            smooth = (num_classes * lse - jnp.sum(x, axis=1)) * valid
        else:
            smooth = (jnp.sum(w) * lse - jnp.sum(x * w, axis=1)) * valid
        loss = (1 - label_smoothing) * loss + (label_smoothing / num_classes) * smooth
    if reduction == "mean":
        return _weighted_mean(loss, w_target, valid)
    return reduce_loss(loss, reduction)


def nll_loss(input: Any, target: Any, weight: Any = None, size_average: bool | None = None, ignore_index: int = -100,
             reduce: bool | None = None, reduction: str = "mean") -> jax.Array:
    """Negative log likelihood of log-probabilities; torch.nn.functional.nll_loss.

    Args:
      input: log-probabilities (N, C), (C,) or (N, C, d1, ..., dK), e.g. a log_softmax over dim 1.
      target: integer class indices (N,), () or (N, d1, ..., dK), in [0, C) or `ignore_index`
        (checked when concrete).
      weight: optional (C,) class weights; 'mean' divides by the sum of the non-ignored targets' weights. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      ignore_index: a target value that contributes nothing, neither loss nor weight (default -100).
      reduction: 'none' | 'mean' | 'sum' (default 'mean'; the weighted mean, NaN when every target is ignored).

    Shape:
      input (N, C), (C,) or (N, C, d1, ..., dK), target (N,), () or (N, d1, ..., dK)
      -> () with reduction 'mean' or 'sum', the target's shape with 'none'.

    Example:
      >>> F.nll_loss(jnp.log(jnp.full((2, 4), 0.25)), jnp.array([0, 3]))   # log 4
      Array(1.3862944, dtype=float32)
      >>> logp = jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]]))
      >>> F.nll_loss(logp, jnp.array([0, 1]), reduction="none")   # -log 0.5, -log 0.1
      Array([0.6931472, 2.3025851], dtype=float32)
    """
    who = "nll_loss"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    shape = fmt_shape(input)
    check_floating(who, input)
    target = _check_index_target(who, shape, target, ignore_index)
    _check_weight(who, weight, shape[0] if len(shape) == 1 else shape[1])
    x = jnp.asarray(input)
    if x.ndim == 1:
        loss = _index_loss(x[None], target[None], weight, ignore_index, 0.0, reduction)
        return loss[0] if reduction == "none" else loss
    return _index_loss(x, target, weight, ignore_index, 0.0, reduction)


def _prob_loss(logp: jax.Array, target: jax.Array, weight: Any, label_smoothing: float,
               reduction: str) -> jax.Array:
    """torch's cross_entropy_loss_prob_target: -sum_c w_c q_c log p_c; 'mean' divides by N * d1 ... dK.

    Composite in torch, so the target and the class weights promote with the input (float32 logits with a
    float64 weight give a float64 loss)."""
    num_classes = logp.shape[1]
    dtype = jnp.result_type(logp, target, *(() if weight is None else (weight,)))
    logp, q = logp.astype(dtype), target.astype(dtype)
    if label_smoothing > 0:
        q = q * (1 - label_smoothing) + label_smoothing / num_classes
    if weight is not None:
        q = q * jnp.asarray(weight, dtype).reshape((1, num_classes) + (1,) * (logp.ndim - 2))
    loss = -jnp.sum(logp * q, axis=1)
    if reduction == "mean":
        return jnp.sum(loss) / (logp.size // num_classes) if logp.size else jnp.full((), jnp.nan, logp.dtype)
    return reduce_loss(loss, reduction)


def cross_entropy(input: Any, target: Any, weight: Any = None, size_average: bool | None = None,
                  ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> jax.Array:
    """Cross entropy of logits against class indices or class probabilities; torch.nn.functional.cross_entropy.

    log_softmax over dim 1 (dim 0 for an unbatched input), then nll_loss (index targets) or
    -sum_c w_c q_c log p_c (probability targets q).

    Args:
      input: unnormalised logits (N, C), (C,) or (N, C, d1, ..., dK).
      target: integer class indices (N,), () or (N, d1, ..., dK) in [0, C) or `ignore_index`; or
        class probabilities of the input's shape (floating).
      weight: optional (C,) class weights; with index targets 'mean' divides by the sum of the
        non-ignored targets' weights, with probabilities by N * d1 * ... * dK. Default: None.
      size_average: deprecated; given, it overrides `reduction` (torch's warning); False sums. Default: None.
      reduce: deprecated; given, it overrides `reduction`; False gives a loss per element. Default: None.
      ignore_index: an index-target value that contributes nothing (default -100).
      reduction: 'none' | 'mean' | 'sum' (default 'mean').
      label_smoothing: in [0, 1]; mixes the target with the uniform distribution over the C classes,
        weights included (default 0.0).

    Shape:
      input (N, C), (C,) or (N, C, d1, ..., dK); target (N,), () or (N, d1, ..., dK) integer, or the
      input's shape -> () with reduction 'mean' or 'sum', (N,), () or (N, d1, ..., dK) with 'none'.

    Example:
      >>> F.cross_entropy(jnp.zeros((2, 4)), jnp.array([0, 3]), label_smoothing=0.1)   # log 4
      Array(1.3862944, dtype=float32)
      >>> logits = jnp.array([[2.0, 0.0], [0.0, 2.0]])
      >>> F.cross_entropy(logits, jnp.array([0, 0]), reduction="none")   # log(1 + e^-2), log(1 + e^2)
      Array([0.12692805, 2.126928  ], dtype=float32)
      >>> F.cross_entropy(logits, jnp.array([[0.5, 0.5], [0.5, 0.5]]))   # probability targets
      Array(1.126928, dtype=float32)
    """
    who = "cross_entropy"
    reduction = resolve_reduction(who, reduction, size_average, reduce)
    label_smoothing = check_label_smoothing(who, label_smoothing)
    shape = fmt_shape(input)
    check_floating(who, input)
    num_classes = shape[0] if len(shape) == 1 else (shape[1] if len(shape) > 1 else 0)
    _check_weight(who, weight, num_classes)
    probabilities = fmt_shape(target) == shape and len(shape) > 0
    if probabilities:
        if not jnp.issubdtype(jnp.result_type(target), jnp.floating):
            raise TypeError(f"{who}: Expected floating point type for target with class probabilities, got "
                            f"{jnp.result_type(target)} (a target of the input's shape {shape} holds probabilities).")
        if ignore_index >= 0:  # torch: only the default (or another negative) ignore_index goes with probabilities
            raise TorchRuntimeError(f"{who}: ignore_index is not supported for floating point target (class "
                                    f"probabilities of shape {shape}); got ignore_index={ignore_index}, leave it "
                                    f"at -100.")
    else:
        target = _check_index_target(who, shape, target, ignore_index)
    x = jnp.asarray(input)
    unbatched = x.ndim == 1
    if unbatched:
        x, target = x[None], jnp.asarray(target)[None]
    if probabilities:
        logp = _log_softmax_along(x, 1) if x.size else x
        loss = _prob_loss(logp, jnp.asarray(target), weight, label_smoothing, reduction)
    else:
        loss = _index_loss_logits(x, target, weight, ignore_index, label_smoothing, reduction)
    return loss[0] if unbatched and reduction == "none" else loss


# -- linear_cross_entropy -------------------------------------------------------------------------------

_CHUNK_ELEMENTS = 1 << 23  # logits per row chunk (32 MiB in float32) unless options.batch_chunk_size says


def _chunk_rows(num_rows: int, in_features: int, num_classes: int, options: Any) -> int:
    size = getattr(options, "batch_chunk_size", None) if options is not None else None
    if size is None:
        size = max(num_rows * in_features, _CHUNK_ELEMENTS) // max(num_classes, 1)
    return int(max(1, min(num_rows, size)))


def _chunks(a: jax.Array, rows: int, fill: Any) -> jax.Array:
    """(N, ...) -> (ceil(N / rows), rows, ...), padding the last chunk with `fill`."""
    pad = -a.shape[0] % rows
    if pad:
        a = jnp.concatenate([a, jnp.full((pad,) + a.shape[1:], fill, a.dtype)])
    return a.reshape((-1, rows) + a.shape[1:])


def _chunk_terms(x, w_lin, b, t, w_t, valid, weight, eps):
    """Logits of one row chunk and the per-row loss; also the per-class coefficients of the gradient."""
    logits = lax.dot_general(x, w_lin, (((1,), (1,)), ((), ())), precision=_PRECISION) + b
    num_classes = logits.shape[1]
    onehot = t[:, None] == lax.broadcasted_iota(t.dtype, (1, num_classes), 1)
    lse = jax.nn.logsumexp(logits, axis=1)
    picked = jnp.sum(jnp.where(onehot, logits, 0), axis=1)
    loss = -(picked - lse) * w_t
    # coef[i, c]: the target distribution times the class weight; d loss_i / d logits_i = coef_sum_i p_i - coef_i
    coef = jnp.where(onehot, w_t[:, None], 0) * (1 - eps)
    if eps > 0:
        w_sum = jnp.sum(weight)
        smooth = -(jnp.sum(logits * weight, axis=1) - lse * w_sum) * valid
        loss = (1 - eps) * loss + (eps / num_classes) * smooth
        coef = coef + (eps / num_classes) * weight * valid[:, None]
    return logits, lse, loss, coef


def _lce_prepare(x, t, weight, ignore_index, rows):
    valid = t != ignore_index
    w_t = jnp.where(valid, weight[jnp.clip(t, 0, weight.shape[0] - 1)], 0)
    return (_chunks(x, rows, 0), _chunks(t, rows, ignore_index), _chunks(w_t, rows, 0),
            _chunks(valid.astype(x.dtype), rows, 0), jnp.sum(w_t))


def _lce_rows(x, w_lin, b, t, weight, ignore_index, eps, rows):
    """Per-row losses, chunk by chunk; each chunk is rematerialised in the backward pass."""
    xs, ts, wts, valids, _ = _lce_prepare(x, t, weight, ignore_index, rows)

    @jax.checkpoint
    def body(carry, chunk):
        x_c, t_c, wt_c, valid_c = chunk
        return carry, _chunk_terms(x_c, w_lin, b, t_c, wt_c, valid_c, weight, eps)[2]

    _, losses = lax.scan(body, None, (xs, ts, wts, valids))
    return losses.reshape(-1)[: x.shape[0]]


@functools.partial(jax.custom_jvp, nondiff_argnums=(5, 6, 7, 8))
def _lce_total(x, w_lin, b, t, weight, ignore_index, eps, rows, mean):
    """The summed (or weighted-mean) loss; its tangent rule carries the closed-form gradients."""
    total = jnp.sum(_lce_rows(x, w_lin, b, t, weight, ignore_index, eps, rows))
    if mean:
        _, _, _, _, denom = _lce_prepare(x, t, weight, ignore_index, rows)
        total = total / denom
    return total


@_lce_total.defjvp
def _lce_total_jvp(ignore_index, eps, rows, mean, primals, tangents):
    x, w_lin, b, t, weight = primals
    dx, dw_lin, db = tangents[:3]
    xs, ts, wts, valids, denom = _lce_prepare(x, t, weight, ignore_index, rows)
    # torch with every target ignored: a nan mean whose gradient is 0 (see _weighted_mean)
    any_valid = jnp.any(t != ignore_index)
    scale = jnp.where(any_valid, 1 / denom, 0) if mean else jnp.ones((), x.dtype)

    def body(carry, chunk):
        g_w, g_b = carry
        x_c, t_c, wt_c, valid_c = chunk
        logits, lse, loss, coef = _chunk_terms(x_c, w_lin, b, t_c, wt_c, valid_c, weight, eps)
        g_logits = (jnp.sum(coef, axis=1, keepdims=True) * jnp.exp(logits - lse[:, None]) - coef) * scale
        g_x = lax.dot_general(g_logits, w_lin, (((1,), (0,)), ((), ())), precision=_PRECISION)
        g_w = g_w + lax.dot_general(g_logits, x_c, (((0,), (0,)), ((), ())), precision=_PRECISION)
        return (g_w, g_b + jnp.sum(g_logits, axis=0)), (jnp.sum(loss), g_x)

    init = varying_like((jnp.zeros_like(w_lin), jnp.zeros_like(b)), xs, w_lin, b, ts, wts)
    (g_w, g_b), (losses, g_x) = lax.scan(body, init, (xs, ts, wts, valids))
    g_x = g_x.reshape(-1, x.shape[1])[: x.shape[0]]
    out = jnp.sum(losses) * scale
    if mean:
        out = jnp.where(any_valid, out, jnp.asarray(jnp.nan, out.dtype))
    tangent = jnp.sum(g_x * dx) + jnp.sum(g_w * dw_lin) + jnp.sum(g_b * db)
    return out, tangent.astype(out.dtype)


def linear_cross_entropy(input: Any, linear_weight: Any, target: Any, *, linear_bias: Any = None, weight: Any = None,
                         reduction: str = "mean", ignore_index: int | None = None, label_smoothing: float = 0.0,
                         options: Any = None) -> jax.Array:
    """cross_entropy(linear(input, linear_weight, linear_bias), target) without the (N, C) logits;
    torch.nn.functional.linear_cross_entropy (torch 2.13).

    Class-index targets with a (C, in_features) weight run over row chunks (`options.batch_chunk_size`
    rows, default: chunks of ~8M logits): the backward pass holds one chunk's logits, never all.
    K-dimensional weights (C, d1, ..., dK, in_features) and probability targets take torch's reference path.

    Args:
      input: (in_features,) or (N, in_features) features, floating.
      linear_weight: the classifier's weight, (C, in_features) or (C, d1, ..., dK, in_features).
      target: class indices (), (N,) or (N, d1, ..., dK); or probabilities of the logits' shape.
      linear_bias: optional (C,) or (C, d1, ..., dK) classifier bias. Default: None.
      weight: optional (C,) class weights, as `cross_entropy`'s. Default: None.
      reduction: 'none' | 'mean' | 'sum', as `cross_entropy`'s (default 'mean').
      label_smoothing: in [0, 1], as `cross_entropy`'s (default 0.0).
      ignore_index: as `cross_entropy` (None means -100); must stay None with probability targets. Default: None.
      options: anything with a `batch_chunk_size` attribute (torch's LinearCrossEntropyOptions), or None. Default: None.

    Shape:
      input (N, in_features) or (in_features,), linear_weight (C, [d1, ..., dK,] in_features); logits
      (N, C, d1, ..., dK) or (C,); target (N, d1, ..., dK) or () integer, or the logits' shape
      -> () with reduction 'mean' or 'sum', (N, d1, ..., dK) or () with 'none'.

    Example:
      >>> x, w, t = jnp.ones((64, 16)), jnp.ones((100, 16)), jnp.arange(64)
      >>> F.linear_cross_entropy(x, w, t)   # equal logits: log 100
      Array(4.6051702, dtype=float32)
      >>> F.linear_cross_entropy(x, w, t, reduction="none").shape
      (64,)
    """
    who = "linear_cross_entropy"
    reduction = resolve_reduction(who, reduction)
    label_smoothing = check_label_smoothing(who, label_smoothing)
    shape, w_shape = fmt_shape(input), fmt_shape(linear_weight)
    if len(shape) not in (1, 2):
        raise TorchRuntimeError(f"{who}: expected input with dimensionality 1 or 2, got {len(shape)} (shape {shape}).")
    if len(w_shape) < 2:
        raise TorchRuntimeError(f"{who}: expected linear_weight with dimensionality at least 2, got {len(w_shape)}.")
    if shape[-1] != w_shape[-1]:
        raise TorchRuntimeError(f"{who}: expected equal input and linear_weight last dimensions (in_features), got "
                                f"{shape[-1]} and {w_shape[-1]}, respectively")
    num_classes, out_features = w_shape[0], w_shape[1:-1]
    if linear_bias is not None and fmt_shape(linear_bias) != (num_classes, *out_features):
        raise TorchRuntimeError(f"{who}: expected linear_bias shape {(num_classes, *out_features)}, got "
                                f"{fmt_shape(linear_bias)}")
    if out_features and len(shape) == 1:
        raise TorchRuntimeError(f"{who}: K-dimensional loss defined by linear_weight shape {w_shape} requires batched "
                                f"input, (N, {shape[-1]}), got unbatched input with shape {shape}")
    logits_shape = (*shape[:-1], num_classes, *out_features)
    probabilities = fmt_shape(target) == logits_shape
    if probabilities and ignore_index is not None:
        raise TorchRuntimeError(f"{who}: ignore_index cannot be specified when target contains probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    check_floating(who, input)
    x = jnp.asarray(input)
    # torch multiplies by the linear weight with matmul ("m1 and m2"), then reads the class weights as nll_loss
    check_param_dtypes(who, x, (linear_weight, linear_bias), LINEAR_DTYPE_MESSAGES["mm"])
    check_param_dtypes(who, x, (weight,), NLL_DTYPE_MESSAGE)
    w_lin = jnp.asarray(linear_weight, x.dtype)
    if out_features or probabilities:
        flat = w_lin.reshape(-1, shape[-1])  # (C * d1 * ... * dK, in_features), as torch stores it
        logits = lax.dot_general(x, flat, (((x.ndim - 1,), (1,)), ((), ())), precision=_PRECISION)
        logits = logits.reshape(logits.shape[:-1] + w_shape[:-1])
        if linear_bias is not None:
            logits = logits + jnp.asarray(linear_bias, x.dtype)
        return cross_entropy(logits, target, weight, ignore_index=ignore_index, reduction=reduction,
                             label_smoothing=label_smoothing)
    _check_weight(who, weight, num_classes)
    target = _check_index_target(who, logits_shape, target, ignore_index)
    unbatched = x.ndim == 1
    x2, t = (x[None], target[None]) if unbatched else (x, target)
    b = jnp.zeros((num_classes,), x.dtype) if linear_bias is None else jnp.asarray(linear_bias, x.dtype)
    class_weight = jnp.ones((num_classes,), x.dtype) if weight is None else \
        lax.stop_gradient(jnp.asarray(weight, x.dtype))
    rows = _chunk_rows(x2.shape[0], shape[-1], num_classes, options)
    if reduction == "none":
        loss = _lce_rows(x2, w_lin, b, t, class_weight, ignore_index, label_smoothing, rows)
        return loss[0] if unbatched else loss
    return _lce_total(x2, w_lin, b, t, class_weight, ignore_index, label_smoothing, rows, reduction == "mean")


def num_out_classes(num_classes: int, out_features: tuple[int, ...]) -> int:
    """Rows of LinearCrossEntropyLoss's flat `linear.weight`: C * d1 * ... * dK."""
    return math.prod(out_features, start=num_classes)
