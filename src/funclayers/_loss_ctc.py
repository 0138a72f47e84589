"""Connectionist temporal classification loss (torch.nn.CTCLoss, torch.nn.functional.ctc_loss).

The forward variables alpha_t(s) of the blank-extended label sequence run through one `lax.scan`
over time in log space; lengths may be traced (a sample's alphas stop changing past its input
length). The gradient is JAX's derivative of that recursion, with every log-sum-exp guarded so that
impossible alignments (-inf everywhere) give an infinite loss and zero, not NaN, gradients.

torch's kernel returns exp(log_probs) - posterior as the "gradient" w.r.t. log_probs: the gradient
w.r.t. the logits of a log_softmax, not w.r.t. log_probs. funclayers returns the true derivative
(-posterior); both agree once backpropagated through log_softmax, which is how CTC is used.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._loss import concrete, resolve_reduction
from ._utils import TorchRuntimeError, check_floating, fmt_shape


def _logsumexp3(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """log(e^a + e^b + e^c) that is -inf, with zero gradient, when all three are -inf."""
    m = lax.stop_gradient(jnp.maximum(jnp.maximum(a, b), c))
    m = jnp.where(jnp.isfinite(m), m, 0)
    s = jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m)
    positive = s > 0
    return jnp.where(positive, m + jnp.log(jnp.where(positive, s, 1)), -jnp.inf)


def _lengths(who: str, name: str, lengths: Any, batch: int | None) -> jax.Array:
    arr = jnp.asarray(lengths)
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(f"{who}: {name} must hold integers, got dtype {arr.dtype}.")
    expected = () if batch is None else (batch,)
    if arr.shape != expected:
        raise TorchRuntimeError(f"{who}: {name} must be of size batch_size: expected shape {expected}, got "
                                f"{arr.shape}.")
    return arr.reshape(-1)


def ctc_loss(log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> jax.Array:
    """The CTC loss: -log of the total probability of every alignment of the targets; torch.nn.functional.ctc_loss.

    Args:
      log_probs: (T, N, C) or unbatched (T, C) log-probabilities (e.g. log_softmax over C).
      targets: padded (N, S) or concatenated (sum(target_lengths),) class indices, no blanks; (S,) unbatched.
      input_lengths: (N,) (or () unbatched) integer array or sequence, each input's length <= T;
        may be traced.
      target_lengths: (N,) (or () unbatched) integer array or sequence, each target's length <= S;
        may be traced.
      blank: the blank class (default 0).
      zero_infinity: infinite losses (impossible alignments) and their gradients become 0
        (default False).
      reduction: 'mean' divides each loss by its target length (at least 1), then averages over the batch.
        Default: 'mean'.

    Shape: -> () or (N,) (() unbatched) with reduction='none'.

    Example:
      >>> lp = jax.nn.log_softmax(jnp.zeros((50, 16, 20)), axis=-1)
      >>> F.ctc_loss(lp, jnp.ones((16, 30), int), jnp.full(16, 50), jnp.full(16, 20))
      Array(6.2600017, dtype=float32)
    """
    who = "ctc_loss"
    reduction = resolve_reduction(who, reduction)
    shape = fmt_shape(log_probs)
    if len(shape) not in (2, 3):
        raise TorchRuntimeError(f"{who} expects log_probs of shape (T, N, C) or unbatched (T, C), got shape {shape}.")
    check_floating(who, log_probs, "log_probs")
    batched = len(shape) == 3
    lp = jnp.asarray(log_probs)
    if not batched:
        lp = lp[:, None, :]
    num_steps, batch, num_classes = lp.shape
    if not 0 <= blank < num_classes:
        raise ValueError(f"{who}: blank must be in label range: blank={blank}, {num_classes} classes.")
    input_lengths = _lengths(who, "input_lengths", input_lengths, batch if batched else None)
    target_lengths = _lengths(who, "target_lengths", target_lengths, batch if batched else None)
    targets = jnp.asarray(targets)
    if not jnp.issubdtype(targets.dtype, jnp.integer):
        targets = targets.astype(jnp.int32)  # torch casts targets to int64
    known_in, known_tl = concrete(input_lengths), concrete(target_lengths)
    if known_in is not None and known_in.size and (known_in.max() > num_steps or known_in.min() < 0):
        raise ValueError(f"{who}: Expected input_lengths to have value at most {num_steps} (and at least 0), got "
                         f"values {known_in.tolist()}.")
    if known_tl is not None and known_tl.size and known_tl.min() < 0:
        raise ValueError(f"{who}: target_lengths must be non-negative, got {known_tl.tolist()}.")
    concatenated = batched and targets.ndim == 1
    if concatenated:
        if known_tl is not None and targets.shape[0] < known_tl.sum():
            raise TorchRuntimeError(f"{who}: concatenated targets hold {targets.shape[0]} labels, fewer than "
                                    f"sum(target_lengths) = {known_tl.sum()}.")
        max_len = int(known_tl.max()) if known_tl is not None and known_tl.size else targets.shape[0]
        offsets = jnp.cumsum(target_lengths) - target_lengths
        index = jnp.clip(offsets[:, None] + jnp.arange(max_len), 0, max(targets.shape[0] - 1, 0))
        labels = targets[index] if targets.shape[0] else jnp.zeros((batch, max_len), targets.dtype)
    else:
        labels = targets if batched else targets.reshape(1, -1)
        if labels.ndim != 2 or labels.shape[0] != batch:
            raise TorchRuntimeError(f"{who}: targets must be padded (N, S) = ({batch}, S) or concatenated 1D, "
                                    f"got shape {fmt_shape(targets)} for log_probs of shape {shape}.")
        if known_tl is not None and known_tl.size and known_tl.max() > labels.shape[1]:
            raise TorchRuntimeError(f"{who}: Expected tensor to have size at least {known_tl.max()} at dimension 1, "
                                    f"but got size {labels.shape[1]} (targets of shape {labels.shape}).")
    known_labels = concrete(labels)
    if known_labels is not None and known_tl is not None and known_labels.size:
        used = np.arange(known_labels.shape[1]) < known_tl[:, None]
        bad = known_labels[used & ((known_labels < 0) | (known_labels >= num_classes))]
        if bad.size:
            raise ValueError(f"{who}: target class {bad.flat[0]} is out of range [0, {num_classes - 1}].")
    losses = _ctc_nll(lp, jnp.clip(labels, 0, num_classes - 1), input_lengths, target_lengths, blank)
    if zero_infinity:
        losses = jnp.where(losses == jnp.inf, 0, losses)
    if reduction == "mean":
        return jnp.mean(losses / jnp.maximum(target_lengths, 1).astype(losses.dtype))
    if reduction == "sum":
        return jnp.sum(losses)
    return losses if batched else losses[0]


def _ctc_nll(lp: jax.Array, labels: jax.Array, input_lengths: jax.Array, target_lengths: jax.Array,
             blank: int) -> jax.Array:
    """Per-sample -log p(labels | lp) by the forward recursion (Graves et al. 2006) over the extended labels
    blank, l1, blank, l2, ..., blank."""
    num_steps, batch, _ = lp.shape
    max_len = labels.shape[1]
    ext_len = 2 * max_len + 1
    ext = jnp.full((batch, ext_len), blank, labels.dtype).at[:, 1::2].set(labels)
    # the skip s-2 -> s is allowed onto a label that differs from the previous label
    skip = jnp.zeros((batch, ext_len), bool)
    if max_len > 1:
        skip = skip.at[:, 3::2].set(labels[:, 1:] != labels[:, :-1])
    lp_ext = jnp.take_along_axis(lp, jnp.broadcast_to(ext[None], (num_steps, batch, ext_len)), axis=2)
    neg_inf = jnp.full((batch, 1), -jnp.inf, lp.dtype)
    position = jnp.arange(ext_len)
    alpha0 = jnp.where(position < jnp.minimum(2, 2 * target_lengths[:, None] + 1), lp_ext[0], -jnp.inf)

    def step(alpha, inputs):
        t, lp_t = inputs
        shift1 = jnp.concatenate([neg_inf, alpha[:, :-1]], axis=1)
        shift2 = jnp.where(skip, jnp.concatenate([neg_inf, neg_inf, alpha[:, :-2]], axis=1), -jnp.inf)
        new = _logsumexp3(alpha, shift1, shift2) + lp_t
        return jnp.where((t < input_lengths)[:, None], new, alpha), None

    alpha, _ = lax.scan(step, alpha0, (jnp.arange(1, num_steps), lp_ext[1:]))
    end = 2 * target_lengths
    last = jnp.take_along_axis(alpha, end[:, None], axis=1)[:, 0]
    before = jnp.where(target_lengths > 0, jnp.take_along_axis(alpha, jnp.maximum(end - 1, 0)[:, None], axis=1)[:, 0],
                       -jnp.inf)
    total = _logsumexp3(last, before, jnp.full_like(last, -jnp.inf))
    # an empty input (length 0) aligns only an empty target, with probability 1
    total = jnp.where(input_lengths == 0, jnp.where(target_lengths == 0, 0.0, -jnp.inf), total)
    return -total
