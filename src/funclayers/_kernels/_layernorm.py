"""_layernorm.py: the layer-norm kernel on rows, with a closed-form JVP laid out for XLA's CPU fusions.

`layer_norm_rows` normalises every row of a `(rows, n)` array and applies the optional elementwise
affine, the whole of `torch.nn.functional.layer_norm` once the normalised dims are flattened. It
computes what `_normalization.standardize` followed by the affine computes (the statistics in two
passes; a JVP that transposes to torch's closed-form backward, so forward mode and higher
orders work too), but written so that XLA on CPU never writes a full-size temporary besides the
output and the incoming gradient:

- A row statistic broadcast along the rows (`m[:, None]`) is one HLO instruction, and XLA's CSE
  merges identical ones. When one broadcast feeds two fusions (say the output and the input
  gradient), XLA:CPU writes it out at full size (8 MB at (4096, 512)) and reads it back in each.
  So every consumer gets its own broadcasts: the output reads the rows as `(rows/2, 2, n)`, the
  weight's tangent as `(rows/8, 8, n)` and the input's tangent as `(rows, n)`: different shapes,
  different instructions, each fused into its own consumer (the views are reshapes, free).
- The weight's gradient is the column sum of `dy * xhat` with `xhat` recomputed in that fusion from
  `x` and the row statistics, rather than a saved `xhat` shared with the input gradient (one more
  full-size write and two reads).

Used by: `LayerNorm` and `F.layer_norm` (`_normalization.py`). Why: LayerNorm(512) forward +
backward on (32, 128, 512), one process: 3.8-4.8 ms against 5.6-6.8 for `standardize` + affine
(the layer before). In the quiet record of 2026-12-07 (benchmarks/results.md, forward and backward with
the loss, every array an argument) the step is 1.29x of torch's: XLA's YNNPACK row fusions make about 11
passes over the rows where torch's one-thread kernel makes fewer (benchmarks/README.md, eleventh session).
Issue 28 (jax 0.10.2, whose XLA:CPU runs these fusions with YNNPACK): two-pass statistics, the
variance on a `(rows/4, 4, n)` view, instead of sums shifted by two samples of each row: 7 fusions
instead of 10, none writing a full-size temporary; 9.26 -> 8.70 ms median CPU time per step, min
wall 8.0 -> 6.8 ms (one process, alternating, load 11). The output's `(rows/2, 2, n)` view still
matters (the plain `(rows, n)` output: 9.3 -> 12.0 ms: XLA writes out the weight's and the
statistics' broadcasts).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax


def _rows(a: jax.Array, split: int) -> jax.Array:
    """`(rows, n)` seen as `(rows/d, d, n)` with d = gcd(rows, split): a view of its own for one consumer."""
    rows, n = a.shape
    d = math.gcd(rows, split)
    return a.reshape(rows // d, d, n) if d > 1 else a


def _per_row(v: jax.Array, split: int) -> jax.Array:
    """A row statistic `(rows,)` shaped to broadcast against `_rows(a, split)`."""
    d = math.gcd(v.shape[0], split)
    return v.reshape(v.shape[0] // d, d, 1) if d > 1 else v[:, None]


def _stats(x: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
    """Row means and 1/sqrt(var + eps), two passes: the mean, then the mean square of `x - mean`.

    Exact for rows far from zero (no E[x^2] - E[x]^2 cancellation). XLA:CPU runs both row sums as
    YNNPACK fusions reading `x`; the single-pass sums shifted by a sample of each row that this
    replaced needed two more fusions (the samples' strided slices). The variance reads the rows as
    `(rows/4, 4, n)`: on `(rows, n)` its `x - mean` is the JVP's `centred`, which XLA then writes out
    at full size for both.
    """
    n = x.shape[1]
    mean = jnp.sum(x, 1) / n
    # `x - mean` on a view of its own, or CSE merges it with the JVP's `centred` (written out then)
    var = jnp.sum(jnp.square(_rows(x, 4) - _per_row(mean, 4)), -1).reshape(mean.shape) / n
    return mean, lax.rsqrt(var + eps)


def _output(xs, x, weight, bias, mean, rstd):
    """The affine-normalised rows, computed on the caller's `(*lead, n)` shape `xs` where that has
    two or more leading dims (else on `(rows/2, 2, n)`): the shape the consumer reads, so its fusion
    reads `y` without a reshape in between."""
    if xs.ndim >= 3:
        lead = xs.shape[:-1] + (1,)
        y = (xs - mean.reshape(lead)) * rstd.reshape(lead)
    else:
        y = (_rows(x, 2) - _per_row(mean, 2)) * _per_row(rstd, 2)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.reshape(xs.shape)


@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _layer_norm(xs, weight, bias, eps):
    x = xs.reshape(-1, xs.shape[-1])
    mean, rstd = _stats(x, eps)
    return _output(xs, x, weight, bias, mean, rstd)


@_layer_norm.defjvp
def _layer_norm_jvp(eps, primals, tangents):
    (xs, weight, bias), (dxs, dweight, dbias) = primals, tangents
    n = xs.shape[-1]
    x, dx = xs.reshape(-1, n), dxs.reshape(-1, n)
    mean, rstd = _stats(x, eps)
    y = _output(xs, x, weight, bias, mean, rstd)
    # d xhat = rstd * (dx - mean(dx) - xhat * mean(xhat * dx)); its transpose is torch's closed-form
    # backward. Written with the centred rows so that nothing full-size is shared.
    centred = x - mean[:, None]
    mean_dx = jnp.sum(dx, 1) / n
    proj = jnp.sum(centred * dx, 1) / n
    dy = rstd[:, None] * dx - (rstd * mean_dx)[:, None] - (rstd * rstd * rstd * proj)[:, None] * centred
    if weight is not None:
        dy = dy * weight
        xhat = (_rows(x, 8) - _per_row(mean, 8)) * _per_row(rstd, 8)
        dy = dy + (xhat * dweight).reshape(x.shape)
    if bias is not None:
        dy = dy + dbias
    return y, dy.reshape(xs.shape)


def layer_norm_rows(x: jax.Array, weight: jax.Array | None, bias: jax.Array | None, eps: float) -> jax.Array:
    """`(x - mean) / sqrt(var + eps) * weight + bias` for every row of a `(*lead, n)` array, n >= 1.

    The rows are `x.reshape(-1, n)`; the output is computed on `x`'s own shape (pass the caller's
    leading dims, not the flattened rows: the consumer then reads `y` in the shape it was computed
    in). `weight` and `bias` are `(n,)` or None. Half and bfloat16 rows are normalised in float32, as
    torch's CPU kernel does, and the result is cast back.
    """
    if x.dtype in (jnp.float16, jnp.bfloat16):
        up = [None if a is None else a.astype(jnp.float32) for a in (x, weight, bias)]
        return _layer_norm(*up, float(eps)).astype(x.dtype)
    return _layer_norm(x, weight, bias, float(eps))
