"""FlexAttention's kernel: a blockwise online softmax that visits only the key blocks a BlockMask lists.

Layout: query rows `n = B * Hq` (batch-major, as torch's (B, Hq, L, E) flattens), query tiles of
`bq` rows, key/value tiles of `bk` rows. An outer `lax.scan` runs over the query tiles; for tile
`i` two inner scans run over the slots of its kv-block lists, first the partial blocks (mask_mod
applied) then the full ones (mask_mod never evaluated). Slot `t` of a list is visited only where
some row `r` has `t < num_blocks[r, i]` (`lax.cond`): blocks no row lists are skipped, in the
forward and in the backward. Each row gathers its own kv tile (`kv_indices[r, i, t]`), so rows of
different batches or heads may list different blocks (document masks).

Every query tile and every inner step is under `jax.checkpoint`: the backward recomputes a tile's
scores instead of storing them, so memory stays O(L x block) per row, never O(L x S). The running
maximum is a `stop_gradient` shift (any shift is exact), so plain autodiff gives exact gradients,
also with respect to arrays the score_mod closes over, in every mode (grad, jvp, vmap; no custom_vjp).

A row whose every key is masked gets output 0 and log-sum-exp -inf (torch's semantics).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import varying_like

_PRECISION = lax.Precision.HIGHEST
_INDEX = jnp.int32  # torch passes b, h, q_idx, kv_idx as torch.int


def vmap_bhqkv(fn: Callable, with_score: bool) -> Callable:
    """`fn` of scalars, vmapped as torch's `_vmap_for_bhqkv`: over kv_idx, q_idx, h, then b."""
    lead = (0,) if with_score else ()
    for dims in ((None, None, None, 0), (None, None, 0, None), (None, 0, None, None), (0, None, None, None)):
        fn = jax.vmap(fn, in_axes=lead + dims)
    return fn


def _tile_mod(fn: Callable, with_score: bool) -> Callable:
    """`fn` over one tile: rows (b (n,), h (n,)), q_idx (bq,) shared, kv_idx (n, bk) per row."""
    lead = (0,) if with_score else ()
    fn = jax.vmap(fn, in_axes=lead + (None, None, None, 0))  # kv_idx
    fn = jax.vmap(fn, in_axes=lead + (None, None, 0, None))  # q_idx
    return jax.vmap(fn, in_axes=lead + (0, 0, None, 0))  # rows


def flex_forward(q: jax.Array, k: jax.Array, v: jax.Array, score_mod: Callable | None, mask_mod: Callable,
                 blocks: tuple, block_size: tuple[int, int], scale: float, n_static: tuple[int, int]
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """softmax(score_mod(q k^T * scale) masked) v over (B, Hq, L, E), (Bkv, Hkv, S, E), (Bkv, Hkv, S, Ev).

    `blocks` = (num_partial (n, nq), idx_partial (n, nq, Tp), num_full, idx_full) broadcast to the
    query rows (the full pair may be None); `n_static` = the static trip counts (Tp, Tf) of the
    inner scans. Returns (out (B, Hq, L, Ev) in q's dtype, lse (B, Hq, L), max (B, Hq, L)) in the
    working precision (float64 for float64, else float32).
    """
    B, Hq, L, E = q.shape
    Bkv, Hkv, S, _ = k.shape
    Ev = v.shape[-1]
    bq, bk = block_size
    nq, nk = -(-L // bq), -(-S // bk)
    work = jnp.float64 if q.dtype == jnp.float64 else jnp.float32
    n = B * Hq
    groups = Hq // Hkv
    rows = jnp.arange(n, dtype=_INDEX)
    b_idx, h_idx = rows // Hq, rows % Hq
    kv_row = (b_idx if Bkv > 1 else 0) * Hkv + h_idx // groups  # GQA: query head h reads kv head h // groups

    def tiles(x, length, count, size):
        x = x.reshape((-1, x.shape[-2], x.shape[-1])).astype(work)
        x = jnp.pad(x, ((0, 0), (0, count * size - length), (0, 0)))
        return x.reshape(x.shape[0], count, size, x.shape[-1])

    qt = tiles(q, L, nq, bq).transpose(1, 0, 2, 3)  # (nq, n, bq, E): the outer scan's xs
    kt, vt = tiles(k, S, nk, bk), tiles(v, S, nk, bk)  # (Bkv * Hkv, nk, bk, E/Ev), gathered per row
    num_p, idx_p, num_f, idx_f = blocks
    score_tile = _tile_mod(score_mod, True) if score_mod is not None else None
    mask_tile = _tile_mod(mask_mod, False)
    scale = jnp.asarray(scale, work)

    def q_tile(carry, xs):
        qi, i, counts, lists = xs
        q_idx = i * bq + jnp.arange(bq, dtype=_INDEX)

        def visit(state, t, num, idx, masked):
            active = t < num  # (n,): the rows whose list has a slot t

            def compute(state):
                m, total, acc = state
                j = idx[:, t]
                kj, vj = kt[kv_row, j], vt[kv_row, j]  # (n, bk, E), (n, bk, Ev)
                s = jnp.einsum("nqe,nke->nqk", qi, kj, precision=_PRECISION) * scale
                kv_idx = j[:, None] * bk + jnp.arange(bk, dtype=_INDEX)[None, :]
                if score_tile is not None:
                    s = score_tile(s, b_idx, h_idx, q_idx, kv_idx).astype(work)
                keep = (kv_idx < S)[:, None, :] & active[:, None, None]
                if masked:
                    keep = keep & mask_tile(b_idx, h_idx, q_idx, kv_idx)
                s = jnp.where(keep, s, -jnp.inf)
                m_new = lax.stop_gradient(jnp.maximum(m, jnp.max(s, -1, keepdims=True)))
                shift = jnp.where(jnp.isneginf(m_new), 0, m_new)
                p = jnp.exp(s - shift)
                correction = jnp.exp(m - shift)
                total = total * correction + jnp.sum(p, -1, keepdims=True)
                acc = acc * correction + jnp.einsum("nqk,nkv->nqv", p, vj, precision=_PRECISION)
                return m_new, total, acc

            return lax.cond(jnp.any(active), compute, lambda c: c, state)

        state = (jnp.full((n, bq, 1), -jnp.inf, work), jnp.zeros((n, bq, 1), work), jnp.zeros((n, bq, Ev), work))
        state = varying_like(state, qi, kt, vt)
        for (num, idx), masked, trips in zip(zip(counts, lists), (True, False), n_static):
            if num is None or trips == 0:
                continue
            step = jax.checkpoint(lambda c, t, num=num, idx=idx, masked=masked: (visit(c, t, num, idx, masked), None))
            state, _ = lax.scan(step, state, jnp.arange(trips, dtype=_INDEX))
        m, total, acc = state
        out = acc / jnp.where(total == 0, 1, total)
        shift = jnp.where(jnp.isneginf(m), 0, m)
        lse = jnp.where(total == 0, -jnp.inf, shift + jnp.log(jnp.where(total == 0, 1, total)))
        return carry, (out, lse[..., 0], m[..., 0])

    xs = (qt, jnp.arange(nq, dtype=_INDEX),
          (num_p.T, None if num_f is None else num_f.T),
          (idx_p.transpose(1, 0, 2), None if idx_f is None else idx_f.transpose(1, 0, 2)))
    _, (out, lse, mx) = lax.scan(jax.checkpoint(q_tile), None, xs)
    out = out.transpose(1, 0, 2, 3).reshape(n, nq * bq, Ev)[:, :L].reshape(B, Hq, L, Ev)
    lse = lse.transpose(1, 0, 2).reshape(n, nq * bq)[:, :L].reshape(B, Hq, L)
    mx = mx.transpose(1, 0, 2).reshape(n, nq * bq)[:, :L].reshape(B, Hq, L)
    return out.astype(q.dtype), lse, mx


def broadcast_blocks(num: Any, idx: Any, B: int, Hq: int) -> tuple[jax.Array, jax.Array]:
    """A BlockMask's (Bm, Hm, nq) counts and (Bm, Hm, nq, T) indices broadcast to (B * Hq, nq[, T])."""
    num, idx = jnp.asarray(num, _INDEX), jnp.asarray(idx, _INDEX)
    num = jnp.broadcast_to(num, (B, Hq) + num.shape[2:]).reshape((B * Hq,) + num.shape[2:])
    idx = jnp.broadcast_to(idx, (B, Hq) + idx.shape[2:]).reshape((B * Hq,) + idx.shape[2:])
    return num, idx
