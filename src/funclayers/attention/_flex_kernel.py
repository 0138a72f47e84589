"""FlexAttention's kernel: a blockwise online softmax that visits only the key blocks a BlockMask lists.

Layout: query rows `n = B * Hq` (batch-major, as torch's (B, Hq, L, E) flattens), query tiles of
`bq` rows, key/value tiles of `bk` rows (the BlockMask's BLOCK_SIZE). An outer `lax.scan` runs over
the query tiles, an inner one over the key tiles (the tiles are the scans' xs, so their cotangents
come out stacked, never scattered). Key tile `j` of query tile `i` is visited (`lax.cond`) only if
some row lists it, partial or full, in the BlockMask: blocks no row lists are skipped in the forward
and in the backward. The mask_mod is evaluated only on a tile that some row lists as partial; rows
that list it as full keep every entry, rows that list it nowhere none (rows of different batches or
heads may list different blocks: document masks).

Every query tile and every inner step is under `jax.checkpoint`: the backward recomputes a tile's
scores instead of storing them, so memory stays O(L x block) per row, never O(L x S). The running
maximum is a `stop_gradient` shift (any shift is exact), so plain autodiff gives exact gradients,
also with respect to arrays the score_mod closes over, in every mode (grad, jvp, vmap; no custom_vjp).

A row whose every key is masked gets output 0 and log-sum-exp -inf (torch's semantics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
                 listed: tuple, block_size: tuple[int, int], scale: float, q_tile_rows: int | None = None
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """softmax(score_mod(q k^T * scale) masked) v over (B, Hq, L, E), (Bkv, Hkv, S, E), (Bkv, Hkv, S, Ev).

    `listed` = (partial, full): per query row (B * Hq) and (query block, key block), whether the
    block is listed as partial (mask_mod applied) or full, bool arrays (n, nq, nk); `full` may be
    None. Query tiles are `q_tile_rows` rows (a multiple of the query block; default the block):
    tile-level decisions (visit, evaluate mask_mod) take the union over the tile's query blocks,
    and every entry keeps exactly its own block's verdict. Returns (out (B, Hq, L, Ev) in q's dtype,
    lse (B, Hq, L), max (B, Hq, L)) in the working precision (float64 for float64, else float32).
    """
    B, Hq, L, E = q.shape
    Bkv, Hkv, S, _ = k.shape
    Ev = v.shape[-1]
    block_q, bk = block_size
    bq = q_tile_rows or block_q
    per_tile = bq // block_q  # query blocks per query tile
    nq, nk = -(-L // bq), -(-S // bk)
    work = jnp.float64 if q.dtype == jnp.float64 else jnp.float32
    n = B * Hq
    groups = Hq // Hkv
    rows = jnp.arange(n, dtype=_INDEX)
    b_idx, h_idx = rows // Hq, rows % Hq

    def tiles(x, length, count, size):  # (n', length, d) -> (count, n', size, d): the scans' xs
        x = x.reshape((-1, x.shape[-2], x.shape[-1])).astype(work)
        x = jnp.pad(x, ((0, 0), (0, count * size - length), (0, 0)))
        return x.reshape(x.shape[0], count, size, x.shape[-1]).transpose(1, 0, 2, 3)

    kt, vt = tiles(k, S, nk, bk), tiles(v, S, nk, bk)
    if Bkv != B or groups > 1:  # GQA / a key batch of 1: query row (b, h) reads kv row (b, h // groups)
        kv_row = (b_idx if Bkv > 1 else 0) * Hkv + h_idx // groups
        kt, vt = kt[:, kv_row], vt[:, kv_row]
    def per_tile_blocks(x):  # (n, blocks, nk) -> (nq, n, per_tile, nk), padded with unlisted blocks
        x = jnp.pad(x, ((0, 0), (0, nq * per_tile - x.shape[1]), (0, 0)))
        return x.reshape(n, nq, per_tile, nk).transpose(1, 0, 2, 3)

    partial, full = listed
    score_tile = _tile_mod(score_mod, True) if score_mod is not None else None
    mask_tile = _tile_mod(mask_mod, False)
    scale = jnp.asarray(scale, work)

    def q_tile(carry, xs):
        qi, i, part_i, full_i = xs  # (n, bq, E), (), (n, per_tile, nk), (n, per_tile, nk)
        q_idx = i * bq + jnp.arange(bq, dtype=_INDEX)

        def compute(state, kj, vj, j, part_j, full_j):
            m, total, acc = state
            s = jnp.einsum("nqe,nke->nqk", qi, kj, precision=_PRECISION) * scale
            kv_idx = jnp.broadcast_to(j * bk + jnp.arange(bk, dtype=_INDEX), (n, bk))
            if score_tile is not None:
                s = score_tile(s, b_idx, h_idx, q_idx, kv_idx).astype(work)
            keep = jnp.repeat(part_j, block_q, axis=1)[:, :, None] & lax.cond(  # mask_mod only where listed partial
                jnp.any(part_j), lambda: mask_tile(b_idx, h_idx, q_idx, kv_idx).astype(bool),
                lambda: jnp.zeros((n, bq, bk), bool))
            if full_j is not None:
                keep = keep | jnp.repeat(full_j, block_q, axis=1)[:, :, None]
            s = jnp.where(keep & (kv_idx < S)[:, None, :], s, -jnp.inf)
            m_new = lax.stop_gradient(jnp.maximum(m, jnp.max(s, -1, keepdims=True)))  # any shift is exact
            shift = jnp.where(jnp.isneginf(m_new), 0, m_new)
            p = jnp.exp(s - shift)
            correction = jnp.exp(m - shift)
            total = total * correction + jnp.sum(p, -1, keepdims=True)
            acc = acc * correction + jnp.einsum("nqk,nkv->nqv", p, vj, precision=_PRECISION)
            return m_new, total, acc

        def step(state, ys):
            kj, vj, j = ys
            part_j = part_i[:, :, j]
            full_j = None if full_i is None else full_i[:, :, j]
            visited = jnp.any(part_j) if full_j is None else jnp.any(part_j) | jnp.any(full_j)
            state = lax.cond(visited, lambda c: compute(c, kj, vj, j, part_j, full_j), lambda c: c, state)
            return state, None

        state = (jnp.full((n, bq, 1), -jnp.inf, work), jnp.zeros((n, bq, 1), work), jnp.zeros((n, bq, Ev), work))
        state = varying_like(state, qi, kt, vt)
        (m, total, acc), _ = lax.scan(jax.checkpoint(step), state, (kt, vt, jnp.arange(nk, dtype=_INDEX)))
        out = acc / jnp.where(total == 0, 1, total)
        shift = jnp.where(jnp.isneginf(m), 0, m)
        lse = jnp.where(total == 0, -jnp.inf, shift + jnp.log(jnp.where(total == 0, 1, total)))
        return carry, (out, lse[..., 0], m[..., 0])

    xs = (tiles(q, L, nq, bq), jnp.arange(nq, dtype=_INDEX), per_tile_blocks(partial),
          None if full is None else per_tile_blocks(full))
    _, (out, lse, mx) = lax.scan(jax.checkpoint(q_tile), None, xs)

    def rows_first(x):  # (nq, n, bq, ...) -> (B, Hq, L, ...)
        x = jnp.moveaxis(x, 0, 1).reshape((n, nq * bq) + x.shape[3:])[:, :L]
        return x.reshape((B, Hq, L) + x.shape[2:])

    return rows_first(out).astype(q.dtype), rows_first(lse), rows_first(mx)


def listed_blocks(num: Any, idx: Any, B: int, Hq: int, nk: int) -> jax.Array:
    """A BlockMask's (Bm, Hm, nq) counts and (Bm, Hm, nq, T) indices as a bool map (B * Hq, nq, nk)."""
    num, idx = jnp.asarray(num, _INDEX), jnp.asarray(idx, _INDEX)
    slots = jnp.arange(idx.shape[-1]) < num[..., None]  # (Bm, Hm, nq, T): the listed slots
    dense = ((idx[..., None] == jnp.arange(nk)) & slots[..., None]).any(-2)  # (Bm, Hm, nq, nk)
    return jnp.broadcast_to(dense, (B, Hq) + dense.shape[2:]).reshape((B * Hq,) + dense.shape[2:])
