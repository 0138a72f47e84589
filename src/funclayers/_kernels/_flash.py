"""Flash attention for long sequences: softmax(q k^T * scale) v in tiles, with a closed-form backward.

Used by `scaled_dot_product_attention` (and so `MultiheadAttention` and the Transformer family) on
the blockwise path when there is no `attn_mask` and no dropout (causal or not). The forward is an
online softmax over key tiles that keeps each row's log-sum-exp; the derivative is a `custom_jvp`
whose tangent goes through `linear_call`:

- forward mode: dout = sum_j (P * dS) v_j + P dv_j - rowsum(P * dS) * out, with
  dS = (dq k^T + q dk^T) * scale and P = exp(S - lse) recomputed tile by tile;
- reverse mode (the transpose): flash attention's backward, one pass over the visible tiles:
  dv_j += P^T do, dS = P * (do v_j^T - rowsum(do * out)), dq += dS k_j * scale, dk_j += dS^T q * scale.

The residuals are q, k, v, out and the log-sum-exp: no score matrix and no per-tile state are
stored. Against autodiff of the checkpointed online softmax (which recomputes the forward and
differentiates its running-max corrections), causal (2, 8, 4096, 64) forward + backward on 2 CPU
threads: see benchmarks/README.md, "Attention and Transformer".

Layout: tiles (blocks, n, rows, features), the xs of `lax.scan`; key tiles that the causal mask
hides entirely are skipped with `lax.cond`; padded key columns (past `length`) are masked.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import varying_like
from ._primitive import linear_call

_PRECISION = lax.Precision.HIGHEST


def _mm(a, b, contract_a, contract_b):
    """Batched (over axis 0, the n heads) product of a and b contracting the given axes."""
    return lax.dot_general(a, b, (((contract_a,), (contract_b,)), ((0,), (0,))), precision=_PRECISION)


def _visible(i, j, bq, bk, causal):
    """Whether key tile j has a column that query tile i may see."""
    return (j * bk <= i * bq + bq - 1) if causal else jnp.asarray(True)


def _probs(qi, kj, lse_i, i, j, scale, causal, length):
    """P = exp(q_i k_j^T * scale - lse_i) over one tile, zero where masked: (n, bq, bk)."""
    bq, bk = qi.shape[1], kj.shape[1]
    s = _mm(qi, kj, 2, 2) * jnp.asarray(scale, qi.dtype)
    cols = j * bk + jnp.arange(bk)[None, :]
    keep = cols < length
    if causal:
        keep = keep & (cols <= i * bq + jnp.arange(bq)[:, None])
    return jnp.where(keep, jnp.exp(s - lse_i), 0)


def _forward(qb, kb, vb, causal, scale, length):
    """(out tiles, log-sum-exp tiles) of the online softmax, query tile by query tile."""
    n, bq = qb.shape[1:3]
    bk = kb.shape[2]

    def query_tile(_, xs):
        qi, i = xs

        def key_tile(carry, ys):
            kj, vj, j = ys

            def compute(carry):
                m, total, acc = carry
                s = _mm(qi, kj, 2, 2) * jnp.asarray(scale, qi.dtype)
                cols = j * bk + jnp.arange(bk)[None, :]
                keep = cols < length
                if causal:
                    keep = keep & (cols <= i * bq + jnp.arange(bq)[:, None])
                s = jnp.where(keep, s, -jnp.inf)
                m_new = jnp.maximum(m, jnp.max(s, -1, keepdims=True))
                shift = jnp.where(jnp.isneginf(m_new), 0, m_new)
                p = jnp.exp(s - shift)
                correction = jnp.exp(m - shift)
                return m_new, total * correction + jnp.sum(p, -1, keepdims=True), \
                    acc * correction + _mm(p, vj, 2, 1)

            if not causal:
                return compute(carry), None
            return lax.cond(_visible(i, j, bq, bk, causal), compute, lambda c: c, carry), None

        init = (jnp.full((n, bq, 1), -jnp.inf, qi.dtype), jnp.zeros((n, bq, 1), qi.dtype),
                jnp.zeros((n, bq, vb.shape[-1]), qi.dtype))
        init = varying_like(init, qi, kb, vb)
        (m, total, acc), _ = lax.scan(key_tile, init, (kb, vb, jnp.arange(kb.shape[0])))
        seen = total > 0
        out = acc / jnp.where(seen, total, 1)
        lse = jnp.where(seen, m + jnp.log(jnp.where(seen, total, 1)), jnp.inf)  # inf: P = 0 in the backward
        return None, (out, lse)

    _, (out, lse) = lax.scan(query_tile, None, (qb, jnp.arange(qb.shape[0])))
    return out, lse


def _tangent(qb, kb, vb, ob, lse, dq, dk, dv, *, causal, scale, length):
    """dout tiles, linear in (dq, dk, dv) (each tile stack or None)."""
    bq, bk = qb.shape[2], kb.shape[2]
    sc = jnp.asarray(scale, qb.dtype)
    zeros_k = jnp.zeros_like(kb)

    def query_tile(_, xs):
        qi, oi, lse_i, dqi, i = xs

        def key_tile(carry, ys):
            kj, vj, dkj, dvj, j = ys

            def compute(carry):
                c, t = carry
                p = _probs(qi, kj, lse_i, i, j, scale, causal, length)
                ds = 0
                if dq is not None:
                    ds = ds + _mm(dqi, kj, 2, 2)
                if dk is not None:
                    ds = ds + _mm(qi, dkj, 2, 2)
                pds = p * (ds * sc)
                t = t + _mm(pds, vj, 2, 1)
                if dv is not None:
                    t = t + _mm(p, dvj, 2, 1)
                return c + jnp.sum(pds, -1, keepdims=True), t

            if not causal:
                return compute(carry), None
            return lax.cond(_visible(i, j, bq, bk, causal), compute, lambda c: c, carry), None

        init = varying_like((jnp.zeros_like(lse_i), jnp.zeros_like(oi)), qi, kb, vb, oi, dqi, dk, dv)
        ys = (kb, vb, zeros_k if dk is None else dk, jnp.zeros_like(vb) if dv is None else dv,
              jnp.arange(kb.shape[0]))
        (c, t), _ = lax.scan(key_tile, init, ys)
        return None, t - c * oi

    xs = (qb, ob, lse, jnp.zeros_like(qb) if dq is None else dq, jnp.arange(qb.shape[0]))
    _, dout = lax.scan(query_tile, None, xs)
    return [dout]


def _transpose(cts, qb, kb, vb, ob, lse, *, causal, scale, length):
    """(dq, dk, dv) tiles from the cotangent of the out tiles: flash attention's backward."""
    (do,) = cts
    bq, bk = qb.shape[2], kb.shape[2]
    sc = jnp.asarray(scale, qb.dtype)
    delta = jnp.sum(do * ob, -1, keepdims=True)

    def query_tile(carry, xs):
        dkb, dvb = carry
        qi, doi, lse_i, delta_i, i = xs

        def key_tile(carry, ys):
            kj, vj, j = ys

            def compute(carry):
                dqi, dkb, dvb = carry
                p = _probs(qi, kj, lse_i, i, j, scale, causal, length)
                ds = p * (_mm(doi, vj, 2, 2) - delta_i) * sc
                dkb = dkb.at[j].add(_mm(ds, qi, 1, 1))
                dvb = dvb.at[j].add(_mm(p, doi, 1, 1))
                return dqi + _mm(ds, kj, 2, 1), dkb, dvb

            if not causal:
                return compute(carry), None
            return lax.cond(_visible(i, j, bq, bk, causal), compute, lambda c: c, carry), None

        init = varying_like((jnp.zeros_like(qi), dkb, dvb), qi, doi, kb, vb)
        (dqi, dkb, dvb), _ = lax.scan(key_tile, init, (kb, vb, jnp.arange(kb.shape[0])))
        return (dkb, dvb), dqi

    init = varying_like((jnp.zeros_like(kb), jnp.zeros_like(vb)), qb, do, kb, vb)
    (dk, dv), dq = lax.scan(query_tile, init, (qb, do, lse, delta, jnp.arange(qb.shape[0])))
    return [dq, dk, dv]


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5))
def flash_tiles(qb, kb, vb, causal, scale, length):
    """Attention over tiles: qb (nq, n, bq, E), kb (nk, n, bk, E), vb (nk, n, bk, Ev) -> (nq, n, bq, Ev).

    Key columns from `length` on are padding (masked); `causal` masks column > row (top left)."""
    return _forward(qb, kb, vb, causal, scale, length)[0]


@flash_tiles.defjvp
def _flash_tiles_jvp(causal, scale, length, primals, tangents):
    qb, kb, vb = primals
    ob, lse = _forward(qb, kb, vb, causal, scale, length)
    rules = dict(causal=causal, scale=scale, length=length)
    (dout,) = linear_call(functools.partial(_tangent, **rules), functools.partial(_transpose, **rules),
                          (qb, kb, vb, ob, lse), tangents, name="flash attention")
    return ob, dout
