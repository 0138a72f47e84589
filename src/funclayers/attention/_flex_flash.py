"""FlexAttention without a score_mod: flash attention over the listed blocks, with a closed-form tangent.

The mask only selects entries, so the derivative is flash attention's (`_kernels/_flash.py`) with
its `keep` from the BlockMask: a `custom_jvp` whose tangent goes through `linear_call`; reverse mode
is flash attention's one-pass backward (dk, dv accumulated in place tile by tile, no per-query-tile
copy of the key/value cotangents), forward mode the linear tangent. The residuals are q, k, v, out
and the log-sum-exp.

Tiles are `bq` query rows by `bk` key rows, whole blocks of the BlockMask on each axis (tiles larger
than the blocks make larger products, which XLA:CPU runs on more cores). Which tiles some row lists a
block of, and which some row lists a block of as partial, is decided once before the loops: tiles
no row lists are skipped (`lax.cond`) in all three passes, the mask_mod is evaluated only on tiles
with a partial block, and every entry keeps its own (row, block)'s verdict.

Layout: q (n, Lp, E), k (n, Sp, E), v (n, Sp, Ev), rows n = B * Hq, padded to whole tiles; `part`
and `full` (n, query blocks, key blocks) int8 maps of the listed blocks; `maps` (2, query tiles, key
tiles) bool: visited, partial.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from .._kernels._flash import _add_tile, _loop, _mm, _put_tile, _tile
from .._kernels._primitive import linear_call
from .._utils import varying_like
from ._flex_kernel import _INDEX, _tile_mod


def _tile_maps(part, full, per_q, per_k):
    """(2, query tiles, key tiles) bool: which tiles some row lists a block of (visited), and which some
    row lists a block of as partial (the mask_mod evaluated there)."""
    n, nqb, nkb = part.shape

    def any_in_tile(x):
        return jnp.any(x.astype(bool).reshape(n, nqb // per_q, per_q, nkb // per_k, per_k), axis=(0, 2, 4))

    return jnp.stack([any_in_tile(part | full), any_in_tile(part)])


def _keep(cfg, part, full, partial_tiles, i, j):
    """Which entries of tile (i, j) are kept, (n, bq, bk) bool: each entry its own (row, block)'s verdict."""
    mask_mod, Hq, S, block_q, block_k, bq, bk, _ = cfg
    n, per_q, per_k = part.shape[0], bq // block_q, bk // block_k

    def entries(x):  # the tile's (n, per_q, per_k) block verdicts, one per entry (n, bq, bk)
        x = lax.dynamic_slice(x, (0, i * per_q, j * per_k), (n, per_q, per_k)).astype(bool)
        return jnp.broadcast_to(x[:, :, None, :, None], (n, per_q, block_q, per_k, block_k)).reshape(n, bq, bk)

    rows = jnp.arange(n, dtype=_INDEX)
    q_idx = i * bq + jnp.arange(bq, dtype=_INDEX)
    kv_idx = jnp.broadcast_to(j * bk + jnp.arange(bk, dtype=_INDEX), (n, bk))
    mask = lax.cond(partial_tiles[i, j], lambda: _tile_mod(mask_mod, False)(rows // Hq, rows % Hq, q_idx, kv_idx)
                    .astype(bool), lambda: jnp.zeros((n, bq, bk), bool))
    return ((entries(part) & mask) | entries(full)) & (kv_idx < S)[:, None, :]


def _over_keys(visited, i, compute, init):
    """compute(j, carry) over the key tiles j that some row of query tile i lists a block of."""
    def body(j, carry):
        return lax.cond(visited[i, j], lambda c: compute(j, c), lambda c: c, carry)

    return _loop(body, init, visited.shape[1])


def _probs(cfg, qi, kj, lse_i, part, full, maps, i, j):
    s = _mm(qi, kj, 2, 2) * jnp.asarray(cfg[7], qi.dtype)
    return jnp.where(_keep(cfg, part, full, maps[1], i, j), jnp.exp(s - lse_i), 0)


def _forward(cfg, q, k, v, part, full, maps):
    bq, bk, scale = cfg[5], cfg[6], cfg[7]
    n = q.shape[0]

    def query_tile(i, carry):
        out, lse = carry
        qi = _tile(q, i, bq)

        def compute(j, carry):
            m, total, acc = carry
            s = _mm(qi, _tile(k, j, bk), 2, 2) * jnp.asarray(scale, q.dtype)
            s = jnp.where(_keep(cfg, part, full, maps[1], i, j), s, -jnp.inf)
            m_new = jnp.maximum(m, jnp.max(s, -1, keepdims=True))
            shift = jnp.where(jnp.isneginf(m_new), 0, m_new)
            p = jnp.exp(s - shift)
            correction = jnp.exp(m - shift)
            return m_new, total * correction + jnp.sum(p, -1, keepdims=True), \
                acc * correction + _mm(p, _tile(v, j, bk), 2, 1)

        init = (jnp.full((n, bq, 1), -jnp.inf, q.dtype), jnp.zeros((n, bq, 1), q.dtype),
                jnp.zeros((n, bq, v.shape[-1]), q.dtype))
        m, total, acc = _over_keys(maps[0], i, compute, varying_like(init, qi, k, v))
        seen = total > 0
        lse_i = jnp.where(seen, m + jnp.log(jnp.where(seen, total, 1)), jnp.inf)  # inf: P = 0 in the backward
        return _put_tile(out, i, acc / jnp.where(seen, total, 1)), _put_tile(lse, i, lse_i)

    init = (jnp.zeros(q.shape[:2] + v.shape[-1:], q.dtype), jnp.zeros(q.shape[:2] + (1,), q.dtype))
    return _loop(query_tile, varying_like(init, q, k, v), q.shape[1] // bq)


def _tangent(q, k, v, out, lse, part, full, maps, dq, dk, dv, *, cfg):
    """dout, linear in (dq, dk, dv)."""
    bq, bk, sc = cfg[5], cfg[6], jnp.asarray(cfg[7], q.dtype)

    def query_tile(i, dout):
        qi, oi, lse_i = _tile(q, i, bq), _tile(out, i, bq), _tile(lse, i, bq)

        def compute(j, carry):
            c, t = carry
            kj, vj = _tile(k, j, bk), _tile(v, j, bk)
            p = _probs(cfg, qi, kj, lse_i, part, full, maps, i, j)
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
        c, t = _over_keys(maps[0], i, compute, init)
        return _put_tile(dout, i, t - c * oi)

    init = varying_like(jnp.zeros_like(out), q, k, v, out, dq, dk, dv)
    return [_loop(query_tile, init, q.shape[1] // bq)]


def _transpose(cts, q, k, v, out, lse, part, full, maps, *, cfg):
    """(dq, dk, dv) from the cotangent of out: flash attention's backward over the listed tiles."""
    (do,) = cts
    bq, bk, sc = cfg[5], cfg[6], jnp.asarray(cfg[7], q.dtype)
    delta = jnp.sum(do * out, -1, keepdims=True)

    def query_tile(i, grads):
        dq, dk, dv = grads
        qi, doi, lse_i, delta_i = (_tile(x, i, bq) for x in (q, do, lse, delta))

        def compute(j, carry):
            dqi, dk, dv = carry
            kj, vj = _tile(k, j, bk), _tile(v, j, bk)
            p = _probs(cfg, qi, kj, lse_i, part, full, maps, i, j)
            ds = p * (_mm(doi, vj, 2, 2) - delta_i) * sc
            return dqi + _mm(ds, kj, 2, 1), _add_tile(dk, j, _mm(ds, qi, 1, 1)), _add_tile(dv, j, _mm(p, doi, 1, 1))

        init = varying_like((jnp.zeros_like(qi), dk, dv), qi, k, v, doi)
        dqi, dk, dv = _over_keys(maps[0], i, compute, init)
        return _put_tile(dq, i, dqi), dk, dv

    init = varying_like((jnp.zeros_like(q), jnp.zeros_like(k), jnp.zeros_like(v)), q, k, v, do)
    return list(_loop(query_tile, init, q.shape[1] // bq))


@functools.partial(jax.custom_jvp, nondiff_argnums=(6,))
def _attend(q, k, v, part, full, maps, cfg):
    return _forward(cfg, q, k, v, part, full, maps)[0]


@_attend.defjvp
def _attend_jvp(cfg, primals, tangents):
    q, k, v, part, full, maps = primals
    out, lse = _forward(cfg, q, k, v, part, full, maps)
    dq, dk, dv = tangents[:3]
    rules = dict(cfg=cfg)
    (dout,) = linear_call(functools.partial(_tangent, **rules), functools.partial(_transpose, **rules),
                          (q, k, v, out, lse, part, full, maps), (dq, dk, dv), name="flex attention")
    return out, dout


def flex_flash(q, k, v, mask_mod, listed, block_size, scale, tile_rows):
    """flex_attention without score_mod: (B, Hq, L, E), (Bkv, Hkv, S, E), (Bkv, Hkv, S, Ev) -> (B, Hq, L, Ev).

    `tile_rows` = (query rows, key rows) per tile, whole blocks."""
    B, Hq, L, E = q.shape
    Bkv, Hkv, S, _ = k.shape
    Ev = v.shape[-1]
    (block_q, block_k), (bq, bk) = block_size, tile_rows
    nq, nk = -(-L // bq), -(-S // bk)
    work = jnp.float64 if q.dtype == jnp.float64 else jnp.float32
    n, groups = B * Hq, Hq // Hkv

    def rows(x, length, padded):
        x = x.reshape((-1,) + x.shape[-2:]).astype(work)
        return jnp.pad(x, ((0, 0), (0, padded - length), (0, 0)))

    qr, kr, vr = rows(q, L, nq * bq), rows(k, S, nk * bk), rows(v, S, nk * bk)
    if Bkv != B or groups > 1:
        r = jnp.arange(n)
        kv_row = (r // Hq if Bkv > 1 else 0) * Hkv + (r % Hq) // groups
        kr, vr = kr[kv_row], vr[kv_row]
    part, full = listed
    if full is None:
        full = jnp.zeros_like(part)
    per_q, per_k = bq // block_q, bk // block_k
    pad = ((0, 0), (0, nq * per_q - part.shape[1]), (0, nk * per_k - part.shape[2]))
    part, full = (jnp.pad(x.astype(jnp.int8), pad) for x in (part, full))
    cfg = (mask_mod, Hq, S, block_q, block_k, bq, bk, float(scale))
    out = _attend(qr, kr, vr, part, full, _tile_maps(part, full, per_q, per_k), cfg)
    return out[:, :L].reshape(B, Hq, L, Ev).astype(q.dtype)
