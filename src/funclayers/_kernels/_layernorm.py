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
  (4096, 512)) and reads it back in each. So every consumer gets its own broadcasts. With an even
  row count and two or more leading dims (`_views`), by shape: the output in the caller's shape
  `(*lead, n)`, the variance on `(rows/4, 4, n)`, the weight's tangent on `(rows/8, 8, n)`, the
  input's tangent on `(rows, n)` (the views are reshapes, free). Otherwise by value: the variance
  and the JVP read copies of the statistics (and of the weight) behind `lax.optimization_barrier`,
  which XLA cannot merge with the originals (a few KB pass through it). The barriers alone would
  do everywhere, but at (32, 128, 512) they cost 4-6% more than the views (below).
- The output is computed in the caller's shape (`F.layer_norm` passes the input's leading dims, not
  the flattened rows), so the consumer's fusion (the next layer, or the loss) reads it without a
  reshape in between.
- Where XLA:CPU keeps the input gradient out of the YNNPACK fusions (below 4096 rows, as in a
  TransformerEncoderLayer(256, ...) on (16, 128, 256), and (4095, 512)), the JVP's terms that transpose to the
  backward's row sums take copies of the mean and of the weight of their own (`_own_copies`), else
  `dy * w` and `x - mean` are written out at full size for the row sums and the input gradient to
  share. LayerNorm(256) on (16, 128, 256), the benchmark's step, one process, alternating, under
  `chrt -f 1` (issue 28, `ln2`): wall 0.571 -> 0.536 and 0.540 -> 0.530 ms median; the input
  gradient alone at (2048, 256): 439-483 -> 313-332 us.
- The weight's gradient is the column sum of `dy * xhat` with `xhat` recomputed in that fusion from
  `x` and the row statistics, rather than a saved `xhat` shared with the input gradient (one more
  full-size write and two reads).

Used by: `LayerNorm` and `F.layer_norm` (`_normalization.py`). Why: LayerNorm(512) forward +
backward on (32, 128, 512), one process: 3.8-4.8 ms against 5.6-6.8 for `standardize` + affine
(the layer before). In the quiet record of 2026-12-07 (benchmarks/results.md, forward and backward with
the loss, every array an argument) the step is 1.29x of torch's: XLA's YNNPACK row fusions make about 11
passes over the rows where torch's one-thread kernel makes fewer (benchmarks/README.md, eleventh session).
Issue 28 (jax 0.10.2, whose XLA:CPU runs these fusions with YNNPACK), median CPU time per step of
the benchmark's step, one process, alternating, under load (load 8-16), against the kernel before:
the output in the caller's shape instead of a `(rows/2, 2, n)` view that the loss's fusion then
reshaped: 7.99 -> 7.05 ms at (32, 128, 512); three more runs: 7.41 / 8.42 / 8.92 -> 6.83 / 7.70 /
7.85 ms. The barriers where there are no views: (4096, 512) 6.33 -> 6.01 ms, (31, 133, 512) 9.16 ->
7.33 ms (6 fusions, no full-size temporary, where the kernel before wrote 4); the barriers at
(32, 128, 512) instead of the views: 7.14 / 8.00 / 8.30 against 6.83 / 7.70 / 7.85 ms. (Moving the
JVP's minus signs onto the row factors, so that its transpose negates no full-size array, took
another 2-4% but changed float32 rounding enough to fail test_transformer's stack at rtol 1e-5.)
(4095, 512) wrote 3 full-size temporaries (XLA:CPU leaves that shape's row sums out of the YNNPACK
fusions) until `_own_copies` (tests/test_norm_fusions.py).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax


def _rows(a: jax.Array, split: int) -> jax.Array:
    """`(rows, n)` seen as `(rows/d, d, n)` with d = gcd(rows, split) > 1 (rows even): a view of its own."""
    rows, n = a.shape
    d = math.gcd(rows, split)
    return a.reshape(rows // d, d, n)


def _per_view(v: jax.Array, split: int) -> jax.Array:
    """A row statistic `(rows,)` shaped to broadcast against `_rows(a, split)`."""
    d = math.gcd(v.shape[0], split)
    return v.reshape(v.shape[0] // d, d, 1)


def _per_row(v: jax.Array, xs: jax.Array) -> jax.Array:
    """A row statistic `(rows,)` shaped `(*lead, 1)` to broadcast against `xs`."""
    return v.reshape(xs.shape[:-1] + (1,))


def _views(xs: jax.Array) -> bool:
    """Whether the consumers get views of their own (an even row count and two or more leading dims:
    the output, in the caller's shape, then has a shape of its own too); else copies behind barriers."""
    return xs.ndim >= 3 and math.prod(xs.shape[:-1]) % 2 == 0


def _stats(x: jax.Array, eps: float, views: bool) -> tuple[jax.Array, jax.Array]:
    """Row means and 1/sqrt(var + eps) of `(rows, n)`, two passes: the mean, then the mean square of `x - mean`.

    Exact for rows far from zero (no E[x^2] - E[x]^2 cancellation). XLA:CPU runs both row sums as
    YNNPACK fusions reading `x`. The variance's `x - mean` is kept apart from the output's and the
    JVP's (else CSE merges them and writes that out): on a `(rows/4, 4, n)` view, or with a copy of
    the mean behind a barrier (`_views`).
    """
    n = x.shape[1]
    mean = jnp.sum(x, 1) / n
    if views:
        var = jnp.sum(jnp.square(_rows(x, 4) - _per_view(mean, 4)), -1).reshape(mean.shape) / n
    else:
        var = jnp.sum(jnp.square(x - lax.optimization_barrier(mean)[:, None]), 1) / n
    return mean, lax.rsqrt(var + eps)


def _output(xs, weight, bias, mean, rstd):
    """In the caller's shape `xs`, the shape its consumer reads."""
    y = (xs - _per_row(mean, xs)) * _per_row(rstd, xs)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


# From this many rows on XLA:CPU fuses the input gradient and its row sums into one YNNPACK fusion
# (seen: 4096 and 4123 rows of 256 or 512; not 2048 or 4095 rows); there the copies cost 1-2% (one
# process, alternating: 3.815 / 4.004 / 4.413 against 3.836 / 4.102 / 4.494 ms at (32, 128, 512)).
_FUSED_ROWS = 4096


def _own_copies(mean, weight):
    """A copy of the mean and two of `-weight` behind one barrier, for the JVP's two terms whose
    transposes are the backward's row sums `sum(dy * w)` and `sum(dy * w * (x - mean))`.

    Below 4096 rows (`_FUSED_ROWS`) XLA:CPU does not put the input gradient and its row sums into one
    YNNPACK fusion: its loop fusions then wrote `dy * w` and `x - mean`, shared by the
    row sums and the input gradient, out at full size (TransformerEncoderLayer(256, ...)'s LayerNorm
    on (16, 128, 256)). With copies of their own every consumer recomputes them. The minus signs go
    on the weight's copies (else the transpose's `-dy`, shared by both sums, is written out); the
    same signs on the row factors instead change float32 rounding (module docstring).
    """
    if weight is None:
        return lax.optimization_barrier(mean), None, None
    return lax.optimization_barrier((mean, -weight, -weight))


@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _layer_norm(xs, weight, bias, eps):
    mean, rstd = _stats(xs.reshape(-1, xs.shape[-1]), eps, _views(xs))
    return _output(xs, weight, bias, mean, rstd)


@_layer_norm.defjvp
def _layer_norm_jvp(eps, primals, tangents):
    (xs, weight, bias), (dxs, dweight, dbias) = primals, tangents
    n = xs.shape[-1]
    x, dx = xs.reshape(-1, n), dxs.reshape(-1, n)
    views = _views(xs)
    mean, rstd = _stats(x, eps, views)
    y = _output(xs, weight, bias, mean, rstd)
    # d xhat = rstd * (dx - mean(dx) - xhat * mean(xhat * dx)); its transpose is torch's closed-form
    # backward. Written with the centred rows so that nothing full-size is shared with the output
    # (module docstring).
    m, r, w = (mean, rstd, weight) if views else lax.optimization_barrier((mean, rstd, weight))
    centred = x - m[:, None]
    mean_dx = jnp.sum(dx, 1) / n
    proj = jnp.sum(centred * dx, 1) / n
    if x.shape[0] >= _FUSED_ROWS:
        dy = r[:, None] * dx - (r * mean_dx)[:, None] - (r * r * r * proj)[:, None] * centred
        if weight is not None:
            dy = dy * w
    else:  # the terms that transpose to the backward's row sums get copies of their own
        m2, w1, w2 = _own_copies(m, w)
        shift = (r * mean_dx)[:, None]
        tilt = (r * r * r * proj)[:, None] * (x - m2[:, None])
        dy = r[:, None] * dx - shift - tilt if weight is None else r[:, None] * dx * w + shift * w1 + tilt * w2
    if weight is not None:
        # the weight's tangent: xhat on a view of its own, or it shares `centred` with the input's
        if views:
            xhat = (_rows(x, 8) - _per_view(mean, 8)) * _per_view(rstd, 8)
        else:
            m, r = lax.optimization_barrier((mean, rstd))
            xhat = (x - m[:, None]) * r[:, None]
        dy = dy + (xhat * dweight).reshape(x.shape)
    if bias is not None:
        dy = dy + dbias
    return y, dy.reshape(xs.shape)


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
