"""AdaptiveLogSoftmaxWithLoss (torch.nn.modules.adaptive): Grave et al.'s efficient softmax approximation.

Parameters keep torch's names: `head.weight` (shortlist + n_clusters, in_features), `head.bias`
when head_bias, and per cluster i `tail.i.0.weight` (hsz_i, in_features), `tail.i.1.weight`
(osz_i, hsz_i), with hsz_i = in_features // div_value ** (i + 1).

torch picks each cluster's rows with data-dependent shapes (nonzero, index_select). Here every
cluster is computed for every row and the target's cluster is selected, so shapes are static and
the layer compiles once under jit; the unselected rows get zero cotangents, so gradients equal
torch's. The extra work is the tail projections of rows outside each cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._layer import Layer, ModuleList, Sequential
from ._linear import Linear, _linear
from ._softmax import _log_softmax_along
from ._utils import TorchRuntimeError, check_floating, check_rank, fmt_shape


class ASMOutput(NamedTuple):
    """What AdaptiveLogSoftmaxWithLoss returns, as torch's `_ASMoutput`: `output` holds each
    example's log-probability of its target, `loss` the mean negative log-likelihood.

    A NamedTuple: `output, loss = result` unpacks it, as torch's namedtuple does.

    Args:
      output: each example's log-probability of its target.
      loss: the mean of `-output`.

    Shape: output (N,) and loss () for a batch; output () and loss () for one example.

    Example:
      >>> asm = fl.AdaptiveLogSoftmaxWithLoss(8, 10, [4])
      >>> result, _ = asm.apply(*asm.init(jax.random.PRNGKey(0)), jnp.ones((3, 8)), jnp.array([0, 5, 9]))
      >>> type(result).__name__, result.output.shape, result.loss.shape
      ('ASMOutput', (3,), ())
      >>> bool(jnp.allclose(result.loss, -result.output.mean()))
      True
    """

    output: jax.Array
    loss: jax.Array


class AdaptiveLogSoftmaxLayer(Layer):
    """The Layer of AdaptiveLogSoftmaxWithLoss, plus torch's `log_prob` and `predict` as pure functions of params."""

    __slots__ = ()

    def log_prob(self, params: Any, input: Any) -> jax.Array:
        """Log-probabilities of every class, (N, in_features) -> (N, n_classes); torch's `log_prob`."""
        return self.apply(params, {}, input, _method="log_prob")[0]

    def predict(self, params: Any, input: Any) -> jax.Array:
        """The most probable class of each row, (N, in_features) -> (N,) integer; torch's `predict`."""
        return self.apply(params, {}, input, _method="predict")[0]


def _check_cutoffs(cutoffs: Sequence[int], n_classes: int) -> list[int]:
    cutoffs = list(cutoffs)
    if len(cutoffs) == 0:
        raise ValueError("AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of length larger than 0")
    if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
            or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
        raise ValueError(f"AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of unique, positive integers "
                         f"sorted in an increasing order, where each value is between 1 and n_classes-1; got "
                         f"cutoffs={cutoffs} for n_classes={n_classes}.")
    return [int(c) for c in cutoffs]


def AdaptiveLogSoftmaxWithLoss(in_features: int, n_classes: int, cutoffs: Sequence[int], div_value: float = 4.0,
                               head_bias: bool = False, device: Any = None,
                               dtype: Any = None) -> AdaptiveLogSoftmaxLayer:
    """Adaptive softmax: frequent classes in a head, rarer ones in clusters; torch.nn.AdaptiveLogSoftmaxWithLoss.

    Forward: `apply(params, state, input, target) -> (ASMOutput(output, loss), state)`, where
    `output[i]` is the log-probability of `target[i]` and `loss` the mean of `-output`.
    `layer.log_prob(params, input)` gives every class's log-probability (N, n_classes) and
    `layer.predict(params, input)` the most probable class (N,), both pure functions of params.

    Args:
      in_features: features of each input row.
      n_classes: number of classes.
      cutoffs: increasing class boundaries in [1, n_classes - 1]: classes below cutoffs[0] are in the
        head, [cutoffs[i], cutoffs[i + 1]) form cluster i (the last ends at n_classes).
      div_value: each cluster's hidden size is in_features // div_value ** (i + 1). Default: 4.0.
      head_bias: if True, adds a bias term to the 'head' of the adaptive softmax. Default: False.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Shape: input (N, in_features) and target (N,) integer -> output (N,), loss (); unbatched
    input (in_features,) and target () -> output (), loss ().
    Targets out of [0, n_classes) raise where concrete; under jit their output is NaN.

    Example:
      >>> asm = fl.AdaptiveLogSoftmaxWithLoss(16, 100, [10, 40])
      >>> params, state = asm.init(jax.random.PRNGKey(0))
      >>> (out, loss), _ = asm.apply(params, state, jnp.ones((4, 16)), jnp.array([1, 15, 50, 99]))
      >>> asm.log_prob(params, jnp.ones((4, 16))).shape
      (4, 100)
    """
    del device
    cuts = _check_cutoffs(cutoffs, n_classes) + [n_classes]
    shortlist, n_clusters = cuts[0], len(cuts) - 1
    head = Linear(in_features, shortlist + n_clusters, bias=head_bias, dtype=dtype)
    tails = []
    for i in range(n_clusters):
        hsz = int(in_features // (div_value ** (i + 1)))
        osz = cuts[i + 1] - cuts[i]
        tails.append(Sequential(Linear(in_features, hsz, bias=False, dtype=dtype),
                                Linear(hsz, osz, bias=False, dtype=dtype)))
    tail = ModuleList(tails)
    children = (("head", head), ("tail", tail))
    who = f"AdaptiveLogSoftmaxWithLoss(in_features={in_features}, n_classes={n_classes}, cutoffs={cuts[:-1]})"

    def init(rng):
        k_head, k_tail = jax.random.split(rng)
        p_head, _ = head.init(k_head)
        p_tail, _ = tail.init(k_tail)
        return {"head": p_head, "tail": p_tail}, {}

    def head_logprob(params, x):
        return _log_softmax_along(_linear(who, x, params["head"]["weight"], params["head"].get("bias")), 1)

    def cluster_logprob(params, x, i):
        p = params["tail"][str(i)]
        hidden = _linear(who, x, p["0"]["weight"], None)
        return _log_softmax_along(_linear(who, hidden, p["1"]["weight"], None), 1)

    def full_log_prob(params, x, head_lp):
        # torch's _get_full_log_prob: the shortlist's head log-probs, then each cluster's
        # log-softmax plus its head entry
        parts = [head_lp[:, :shortlist]]
        for i in range(n_clusters):
            parts.append(cluster_logprob(params, x, i) + head_lp[:, shortlist + i][:, None])
        return jnp.concatenate(parts, axis=1)

    def forward(params, input, target):
        t_shape = fmt_shape(target)
        i_shape = fmt_shape(input)
        if len(t_shape) == 1:
            if i_shape[:1] != t_shape[:1]:
                raise TorchRuntimeError(f"{who}: Input and target should have the same size in the batch dimension "
                                        f"(input of shape {i_shape}, target of shape {t_shape}).")
            if len(i_shape) != 2:
                raise TorchRuntimeError(f"{who}: 1D target tensor expects 2D input tensors, but found inputs with "
                                        f"size {i_shape}")
        elif len(t_shape) == 0:
            if len(i_shape) != 1:
                raise TorchRuntimeError(f"{who}: 0D target tensor expects 1D input tensors, but found inputs with "
                                        f"size {i_shape}")
        else:
            raise TorchRuntimeError(f"{who}: 0D or 1D target tensor expected, multi-target not supported (got "
                                    f"target of shape {t_shape})")
        check_floating(who, input)
        t_dtype = jnp.result_type(target)
        if not jnp.issubdtype(t_dtype, jnp.integer) or t_dtype == jnp.bool_:
            raise TypeError(f"{who} expects integer class indices as target, got dtype {t_dtype}.")
        if not isinstance(target, jax.core.Tracer):
            values = np.asarray(target)
            if values.size and (values.min() < 0 or values.max() >= n_classes):
                raise TorchRuntimeError(f"{who}: Target values should be in [0, {n_classes - 1}], but values in "
                                        f"range [{values.min()}, {values.max()}] were found. ")
        batched = len(t_shape) == 1
        x = jnp.asarray(input) if batched else jnp.asarray(input)[None]
        t = jnp.asarray(target) if batched else jnp.asarray(target)[None]
        head_lp = head_logprob(params, x)
        # the head column each target reads: itself in the shortlist, else its cluster's entry
        cluster = jnp.searchsorted(jnp.asarray(cuts, t.dtype), t, side="right")  # 0: shortlist, i+1: cluster i
        column = jnp.where(cluster == 0, t, shortlist + cluster - 1)
        column = jnp.clip(column, 0, shortlist + n_clusters - 1)
        output = jnp.take_along_axis(head_lp, column[:, None], axis=1)[:, 0]
        local = jnp.zeros_like(output)
        for i in range(n_clusters):
            low, high = cuts[i], cuts[i + 1]
            rel = jnp.clip(t - low, 0, high - low - 1)
            lp = jnp.take_along_axis(cluster_logprob(params, x, i), rel[:, None], axis=1)[:, 0]
            local = jnp.where(cluster == i + 1, lp, local)
        output = local + output  # torch: zeros, the cluster part copied in, then the head part added
        valid = (t >= 0) & (t < n_classes)
        output = jnp.where(valid, output, jnp.nan)
        loss = jnp.mean(-output)
        return ASMOutput(output if batched else output[0], loss)

    def log_prob(params, input):
        check_rank(f"{who}.log_prob", input, 2, "N, in_features")
        check_floating(who, input)
        x = jnp.asarray(input)
        return full_log_prob(params, x, head_logprob(params, x))

    def predict(params, input):
        check_rank(f"{who}.predict", input, 2, "N, in_features")
        check_floating(who, input)
        x = jnp.asarray(input)
        head_out = _linear(who, x, params["head"]["weight"], params["head"].get("bias"))
        first = jnp.argmax(head_out, axis=1)
        # torch: the head's argmax when it is a shortlist class (no cluster class can beat it),
        # else the argmax of the full distribution
        full = jnp.argmax(full_log_prob(params, x, _log_softmax_along(head_out, 1)), axis=1)
        return jnp.where(first < shortlist, first, full)

    def apply(params, state, input, target=None, *, rng=None, training=False, _method="forward"):
        del rng, training
        if _method == "log_prob":
            return log_prob(params, input), state
        if _method == "predict":
            return predict(params, input), state
        if target is None:
            raise TypeError(f"{who}: forward needs (input, target); for log-probabilities without targets "
                            f"call layer.log_prob(params, input).")
        return forward(params, input, target), state

    return AdaptiveLogSoftmaxLayer(init, apply, "AdaptiveLogSoftmaxWithLoss", children)
