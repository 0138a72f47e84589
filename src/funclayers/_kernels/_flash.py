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

Layout: (n, rows, features) as the caller has it; tiles are dynamic slices of it (no tile-major
copies of q, k, v or of their gradients), the loops carry the whole outputs and write tile by
tile in place. Key tiles that the causal mask hides entirely are skipped with `lax.cond`; padded
key columns (past `length`) are masked.
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


def _scores(qi, kj, i, j, scale, causal, length):
    """q_i k_j^T * scale over one tile (n, bq, bk), and where it is kept: not padding, not (causal)
    right of the row."""
    bq, bk = qi.shape[1], kj.shape[1]
    cols = j * bk + jnp.arange(bk)[None, :]
    keep = cols < length
    if causal:
        keep = keep & (cols <= i * bq + jnp.arange(bq)[:, None])
    return _mm(qi, kj, 2, 2) * jnp.asarray(scale, qi.dtype), keep


def _probs(qi, kj, lse_i, i, j, scale, causal, length):
    """P = exp(q_i k_j^T * scale - lse_i) over one tile, zero where masked: (n, bq, bk)."""
    s, keep = _scores(qi, kj, i, j, scale, causal, length)
    return jnp.where(keep, jnp.exp(s - lse_i), 0)


def _tile(x, i, size):
    """Tile i (rows i * size to (i + 1) * size) of x (n, T, features): a slice, not a layout copy."""
    return lax.dynamic_slice_in_dim(x, i * size, size, axis=1)


def _add_tile(x, i, tile):
    """x with `tile` added at tile i (in place inside a loop)."""
    return lax.dynamic_update_slice_in_dim(x, _tile(x, i, tile.shape[1]) + tile, i * tile.shape[1], axis=1)


def _put_tile(x, i, tile):
    return lax.dynamic_update_slice_in_dim(x, tile, i * tile.shape[1], axis=1)


def _loop(body, init, count):
    """`for i in range(count): carry = body(i, carry)` as a scan (reverse-differentiable, unlike while)."""
    return lax.scan(lambda carry, i: (body(i, carry), None), init, jnp.arange(count))[0]


def _over_keys(i, k, block, causal, compute, init):
    """compute(j, carry) over the key tiles j that query tile i may see (the rest skipped under causal).

    `init` must already vary over the mesh axes the loop's inputs vary on (`varying_like`)."""
    def body(j, carry):
        if not causal:
            return compute(j, carry)
        return lax.cond(_visible(i, j, bq, bk, causal), lambda c: compute(j, c), lambda c: c, carry)

    bq, bk = block
    return _loop(body, init, k.shape[1] // bk)


def _forward(q, k, v, causal, scale, length, block):
    """(out, log-sum-exp) of the online softmax, query tile by query tile."""
    n, (bq, bk) = q.shape[0], block

    def query_tile(i, carry):
        out, lse = carry
        qi = _tile(q, i, bq)

        def compute(j, carry):
            m, total, acc = carry
            s, keep = _scores(qi, _tile(k, j, bk), i, j, scale, causal, length)
            s = jnp.where(keep, s, -jnp.inf)
            m_new = jnp.maximum(m, jnp.max(s, -1, keepdims=True))
            shift = jnp.where(jnp.isneginf(m_new), 0, m_new)
            p = jnp.exp(s - shift)
            correction = jnp.exp(m - shift)
            return m_new, total * correction + jnp.sum(p, -1, keepdims=True), \
                acc * correction + _mm(p, _tile(v, j, bk), 2, 1)

        init = (jnp.full((n, bq, 1), -jnp.inf, q.dtype), jnp.zeros((n, bq, 1), q.dtype),
                jnp.zeros((n, bq, v.shape[-1]), q.dtype))
        m, total, acc = _over_keys(i, k, block, causal, compute, varying_like(init, qi, k, v))
        seen = total > 0
        lse_i = jnp.where(seen, m + jnp.log(jnp.where(seen, total, 1)), jnp.inf)  # inf: P = 0 in the backward
        return _put_tile(out, i, acc / jnp.where(seen, total, 1)), _put_tile(lse, i, lse_i)

    init = (jnp.zeros(q.shape[:2] + v.shape[-1:], q.dtype), jnp.zeros(q.shape[:2] + (1,), q.dtype))
    return _loop(query_tile, varying_like(init, q, k, v), q.shape[1] // bq)


def _tangent(q, k, v, out, lse, dq, dk, dv, *, causal, scale, length, block):
    """dout, linear in (dq, dk, dv) (each None or like q, k, v)."""
    sc = jnp.asarray(scale, q.dtype)
    bq, bk = block

    def query_tile(i, dout):
        qi, oi, lse_i = _tile(q, i, bq), _tile(out, i, bq), _tile(lse, i, bq)

        def compute(j, carry):
            c, t = carry
            kj, vj = _tile(k, j, bk), _tile(v, j, bk)
            p = _probs(qi, kj, lse_i, i, j, scale, causal, length)
            ds = 0
            if dq is not None:
                ds = ds + _mm(_tile(dq, i, bq), kj, 2, 2)
            if dk is not None:
                ds = ds + _mm(qi, _tile(dk, j, bk), 2, 2)
            pds = p * (ds * sc)
            t = t + _mm(pds, vj, 2, 1)
            if dv is not None:
                t = t + _mm(p, _tile(dv, j, bk), 2, 1)
            return c + jnp.sum(pds, -1, keepdims=True), t

        init = varying_like((jnp.zeros_like(lse_i), jnp.zeros_like(oi)), qi, k, v, oi, dq, dk, dv)
        c, t = _over_keys(i, k, block, causal, compute, init)
        return _put_tile(dout, i, t - c * oi)

    init = varying_like(jnp.zeros_like(out), q, k, v, out, dq, dk, dv)
    return [_loop(query_tile, init, q.shape[1] // bq)]


def _transpose(cts, q, k, v, out, lse, *, causal, scale, length, block):
    """(dq, dk, dv) from the cotangent of out: flash attention's backward, one pass over the visible tiles."""
    (do,) = cts
    sc = jnp.asarray(scale, q.dtype)
    delta = jnp.sum(do * out, -1, keepdims=True)
    bq, bk = block

    def query_tile(i, grads):
        dq, dk, dv = grads
        qi, doi, lse_i, delta_i = (_tile(x, i, bq) for x in (q, do, lse, delta))

        def compute(j, carry):
            dqi, dk, dv = carry
            kj, vj = _tile(k, j, bk), _tile(v, j, bk)
            p = _probs(qi, kj, lse_i, i, j, scale, causal, length)
            ds = p * (_mm(doi, vj, 2, 2) - delta_i) * sc
            return dqi + _mm(ds, kj, 2, 1), _add_tile(dk, j, _mm(ds, qi, 1, 1)), _add_tile(dv, j, _mm(p, doi, 1, 1))

        init = varying_like((jnp.zeros_like(qi), dk, dv), qi, k, v, doi)
        dqi, dk, dv = _over_keys(i, k, block, causal, compute, init)
        return _put_tile(dq, i, dqi), dk, dv

    init = varying_like((jnp.zeros_like(q), jnp.zeros_like(k), jnp.zeros_like(v)), q, k, v, do)
    return list(_loop(query_tile, init, q.shape[1] // bq))


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5, 6))
def flash_attention(q, k, v, causal, scale, length, block):
    """softmax(q k^T * scale) v: q (n, Lp, E), k (n, Sp, E), v (n, Sp, Ev) -> (n, Lp, Ev); `block` =
    (query tile rows, key tile rows), Lp a multiple of the first, Sp of the second.

    Key columns from `length` on are padding (masked); `causal` masks column > row (top left)."""
    return _forward(q, k, v, causal, scale, length, block)[0]


@flash_attention.defjvp
def _flash_attention_jvp(causal, scale, length, block, primals, tangents):
    q, k, v = primals
    out, lse = _forward(q, k, v, causal, scale, length, block)
    rules = dict(causal=causal, scale=scale, length=length, block=block)
    (dout,) = linear_call(functools.partial(_tangent, **rules), functools.partial(_transpose, **rules),
                          (q, k, v, out, lse), tangents, name="flash attention")
    return out, dout
