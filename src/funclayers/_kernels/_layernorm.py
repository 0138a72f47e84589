"""_layernorm.py: the layer-norm kernel on rows, with a closed-form JVP laid out for XLA's CPU fusions.

`layer_norm_rows` normalises every row (last axis) of a `(*lead, n)` array and applies the optional
elementwise affine, the whole of `torch.nn.functional.layer_norm` once the normalised dims are
flattened. It computes what `_normalization.standardize` followed by the affine computes (the
statistics in two passes; a JVP that transposes to torch's closed-form backward, so forward mode and
higher orders work too), but written so that XLA on CPU never writes a full-size temporary besides
the output and the incoming gradient:

- A row statistic broadcast along the rows (`m[:, None]`) is one HLO instruction, and XLA's CSE
  merges identical ones (and identical `x - m`, and the weight's broadcast). When one of them feeds
  two fusions (say the output and the input gradient), XLA:CPU writes it out at full size (8 MB at
  (4096, 512)) and reads it back in each. So every consumer gets its own copy of the statistics (and
  of the weight) through `lax.optimization_barrier`: its output is a different value to XLA, so
  the broadcasts built from it are different instructions, each fused into its own consumer. The
  barrier costs nothing at run time (a few KB of row statistics pass through it).
- Everything full-size is computed in the caller's shape `(*lead, n)` (`F.layer_norm` passes the
  input's leading dims, not the flattened rows), so the consumer's fusion (the next layer, or the
  loss) reads the output without a reshape in between; only the statistics' row sums read the
  flattened `(rows, n)`.
- The weight's gradient is the column sum of `dy * xhat` with `xhat` recomputed in that fusion from
  `x` and the row statistics, rather than a saved `xhat` shared with the input gradient (one more
  full-size write and two reads).

Used by: `LayerNorm` and `F.layer_norm` (`_normalization.py`). Why: LayerNorm(512) forward +
backward on (32, 128, 512), one process: 3.8-4.8 ms against 5.6-6.8 for `standardize` + affine
(the layer before). In the quiet record of 2026-12-07 (benchmarks/results.md, forward and backward with
the loss, every array an argument) the step is 1.29x of torch's: XLA's YNNPACK row fusions make about 11
passes over the rows where torch's one-thread kernel makes fewer (benchmarks/README.md, eleventh session).
Issue 28 (jax 0.10.2, whose XLA:CPU runs these fusions with YNNPACK), median CPU time per step, one
process, alternating, under load: the output in the caller's shape instead of a `(rows/2, 2, n)`
view reshaped back (which the loss's fusion then reshaped inside): 7.99 -> 7.05 ms; the barriers
instead of the views that did the same job before (different shapes for each consumer) are as fast
at (32, 128, 512) and need no even row count: on (4096, 512) 8.02 -> 7.42 ms, on (31, 133, 512)
9.36 -> 8.37 ms (6 fusions, none writing a full-size temporary, where the views had none to offer).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax


def _stats(x: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
    """Row means and 1/sqrt(var + eps) of `(rows, n)`, two passes: the mean, then the mean square of `x - mean`.

    Exact for rows far from zero (no E[x^2] - E[x]^2 cancellation). XLA:CPU runs both row sums as
    YNNPACK fusions reading `x`. The variance's `x - mean` uses a copy of the mean behind a barrier:
    otherwise CSE merges it with the output's or the JVP's `x - mean` and writes that out.
    """
    n = x.shape[1]
    mean = jnp.sum(x, 1) / n
    own = lax.optimization_barrier(mean)
    var = jnp.sum(jnp.square(x - own[:, None]), 1) / n
    return mean, lax.rsqrt(var + eps)


def _per_row(v: jax.Array, xs: jax.Array) -> jax.Array:
    """A row statistic `(rows,)` shaped `(*lead, 1)` to broadcast against `xs`."""
    return v.reshape(xs.shape[:-1] + (1,))


def _output(xs, weight, bias, mean, rstd):
    y = (xs - _per_row(mean, xs)) * _per_row(rstd, xs)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _layer_norm(xs, weight, bias, eps):
    mean, rstd = _stats(xs.reshape(-1, xs.shape[-1]), eps)
    return _output(xs, weight, bias, mean, rstd)


@_layer_norm.defjvp
def _layer_norm_jvp(eps, primals, tangents):
    (xs, weight, bias), (dxs, dweight, dbias) = primals, tangents
    n = xs.shape[-1]
    mean, rstd = _stats(xs.reshape(-1, n), eps)
    y = _output(xs, weight, bias, mean, rstd)
    # d xhat = rstd * (dx - mean(dx) - xhat * mean(xhat * dx)); its transpose is torch's closed-form
    # backward. Written with the centred rows, on copies of the statistics and the weight behind a
    # barrier, so that nothing full-size is shared with the output (module docstring).
    m, r, w = lax.optimization_barrier((mean, rstd, weight))
    m, r = _per_row(m, xs), _per_row(r, xs)
    centred = xs - m
    mean_dx = jnp.sum(dxs, -1, keepdims=True) / n
    proj = jnp.sum(centred * dxs, -1, keepdims=True) / n
    # the minus signs on the row factors: written `- a * b`, the transpose negates a full-size array
    dy = r * dxs + (-r) * mean_dx + (-(r * r * r) * proj) * centred
    if weight is not None:
        dy = dy * w
        # the weight's tangent: xhat from copies of its own, or it shares `centred` with the input's
        m, r = lax.optimization_barrier((mean, rstd))
        dy = dy + (xs - _per_row(m, xs)) * _per_row(r, xs) * dweight
    if bias is not None:
        dy = dy + dbias
    return y, dy


def layer_norm_rows(x: jax.Array, weight: jax.Array | None, bias: jax.Array | None, eps: float) -> jax.Array:
    """`(x - mean) / sqrt(var + eps) * weight + bias` for every row of a `(*lead, n)` array, n >= 1.

    The rows are `x.reshape(-1, n)`; the output is computed in `x`'s own shape (pass the caller's
    leading dims, not the flattened rows: the consumer then reads it in the shape it was computed
    in). `weight` and `bias` are `(n,)` or None. Half and bfloat16 rows are normalised in float32,
    as torch's CPU kernel does, and the result is cast back.
    """
    if x.dtype in (jnp.float16, jnp.bfloat16):
        up = [None if a is None else a.astype(jnp.float32) for a in (x, weight, bias)]
        return _layer_norm(*up, float(eps)).astype(x.dtype)
    return _layer_norm(x, weight, bias, float(eps))
