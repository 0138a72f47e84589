"""Scaled dot-product attention (torch.nn.functional.scaled_dot_product_attention) and its kernels.

Kernels of `scaled_dot_product_attention` (all plain JAX or a `jax.custom_jvp` with a linear
tangent, so jvp / jacfwd / linearize / vmap / grad-of-grad all work):

- dense: the whole `(L, S)` score matrix, a softmax whose fully masked rows are 0 (torch's
  `_safe_softmax`), for short sequences (chosen by measurement, see `_BLOCKWISE_MIN_SCORES`); on a
  CPU of 2 cores or more, with 16 heads or more of 1M-8M multiply-adds each, in 4 independent slices
  along the batch dims, which XLA:CPU runs side by side (`_split_count`; the same products per slice,
  the dropout drawn once for the whole);
- blockwise: a `lax.scan` over query blocks of 256 or 512 rows, each an online softmax over key
  blocks (an inner `lax.scan`), every query block and every key step under `jax.checkpoint`: neither
  the forward nor the backward ever holds more than one `(block, block)` tile of scores per head; a
  causal mask skips the key blocks above the diagonal altogether. Without a mask or dropout (causal
  or not) the blocks go to flash attention (`_kernels/_flash.py`, key tiles of at most 256 rows,
  query tiles twice that where it adds no padding, see `_flash_query_block`): the same online
  softmax keeping each row's log-sum-exp, and a closed-form tangent whose transpose is flash
  attention's one-pass backward (causal (2, 8, 4096, 64) forward + backward 20-35% faster than
  autodiff of the checkpointed scans, XLA temporaries 152 -> 57 MB: tiles are slices of q, k, v, no
  tile-major copies);
- off CPU, in float16 / bfloat16 without dropout or an explicit mask (float32 would run in TF32 there,
  less precise than torch's float32): `jax.nn.dot_product_attention`'s fused kernel for the forward.
  It is wrapped in a `custom_jvp` whose tangent is the JAX kernel's, so differentiating (either
  mode) never touches the fused kernel's own custom_vjp.
"""

from __future__ import annotations

import math
import os
import warnings
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ._kernels._flash import flash_attention
from ._utils import (
    TorchRuntimeError,
    check_floating,
    check_param_dtypes,
    on_cpu,
    require_rng,
    torch_dtype_names,
    varying_like,
    zero_pad,
)

_PRECISION = lax.Precision.HIGHEST  # torch multiplies float32 in full float32
# Dense below this many scores per head (L * S), blockwise from there: causal (2, 8, L, 64) forward +
# backward on CPU, one process each: L = 512: dense 0.25 s, blockwise (256-tiles) 0.05 s; L = 1024:
# 0.80 vs 0.33 s; 2048: 1.31 vs 0.51 s; L = 4096: tiles of 512 4.3 s / 737 MB peak RSS, of 256
# 5.5 s / 687 MB (torch 5.7 s / 471 MB). Short sequences (MHA at L = 128) stay dense.
_BLOCKWISE_MIN_SCORES = 512 * 512


def _block_size(length: int) -> int:
    return 512 if length >= 2048 else 256


# -- masks ----------------------------------------------------------------------------------------------


def _is_bool(x: Any) -> bool:
    return jnp.result_type(x) == jnp.bool_


def _mask_kind(who: str, mask: Any, name: str) -> None:
    dtype = jnp.result_type(mask)
    if dtype != jnp.bool_ and not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{who}: only bool and floating types of {name} are supported, got dtype {dtype}.")


def _canonical_mask(who: str, mask: Any, name: str, other: Any, other_name: str, dtype: Any,
                    check_other: bool = True) -> jax.Array | None:
    """torch's F._canonical_mask: a bool mask (True = masked out) becomes 0 / -inf in `dtype`."""
    if mask is None:
        return None
    _mask_kind(who, mask, name)
    if check_other and other is not None and jnp.result_type(mask) != jnp.result_type(other):
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use same type for both "
                      f"instead.", UserWarning, stacklevel=4)
    mask = jnp.asarray(mask)
    if mask.dtype == jnp.bool_:
        return jnp.where(mask, jnp.asarray(-jnp.inf, dtype), jnp.asarray(0, dtype))
    return mask.astype(dtype)


# -- kernels --------------------------------------------------------------------------------------------


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _safe_softmax(x: jax.Array, axis: int) -> jax.Array:
    """softmax along `axis` whose rows of all -inf are 0, not NaN (torch's `_safe_softmax`)."""
    m = jnp.max(x, axis=axis, keepdims=True)
    e = jnp.exp(x - jnp.where(jnp.isneginf(m), 0, m))
    total = jnp.sum(e, axis=axis, keepdims=True)
    return e / jnp.where(total == 0, 1, total)


@_safe_softmax.defjvp
def _safe_softmax_jvp(axis, primals, tangents):
    # linear in dx (torch's backward y * (g - sum(g * y)) once transposed); masked entries have y = 0
    (x,), (dx,) = primals, tangents
    y = _safe_softmax(x, axis)
    dx = jnp.where(y == 0, 0, dx)  # a -inf score's tangent may be NaN (-inf * 0); it does not count
    return y, y * (dx - jnp.sum(dx * y, axis=axis, keepdims=True))


def _mask_scores(s: jax.Array, mask: jax.Array | None, causal_keep: jax.Array | None) -> jax.Array:
    if mask is not None:
        s = jnp.where(mask, s, -jnp.inf) if mask.dtype == jnp.bool_ else s + mask
    if causal_keep is not None:
        s = jnp.where(causal_keep, s, -jnp.inf)
    return s


def _dropout_weights(w: jax.Array, p: float, rng: jax.Array, kept: jax.Array | None = None) -> jax.Array:
    """`kept`: the entries kept (a slice of the whole draw, see `_dense`); default: drawn here."""
    keep = jax.random.bernoulli(rng, 1 - p, w.shape) if kept is None else kept
    return jnp.where(keep, w / (1 - p), 0) if p < 1 else jnp.zeros_like(w)


def _scaled_scores(q, k, scale):
    """q k^T * scale. A power-of-two scale (1/8 for head_dim 64) multiplies q instead: the same
    floats (scaling by 2^e is exact, and so commutes with every rounding of the product) without a
    pass over the (L, S) scores, forward or backward; XLA fuses it into q's head-split copy. Only in
    float32 / float64: in half precision q * 2^e can fall into the subnormals and lose bits."""
    if q.dtype in (jnp.float32, jnp.float64) and math.frexp(scale)[0] == 0.5:
        return jnp.einsum("...le,...se->...ls", q * jnp.asarray(scale, q.dtype), k, precision=_PRECISION)
    return jnp.einsum("...le,...se->...ls", q, k, precision=_PRECISION) * jnp.asarray(scale, q.dtype)


# The dense kernel in independent slices along its batch (leading) dims, on CPU. XLA:CPU runs a
# batched product on one thread below about 8M multiply-adds per product (benchmarks/README.md, helper
# `attn`), but its thunk executor runs independent slices side by side. Forward + backward on 2 cores,
# unsplit / 4 slices, one process alternating, wall median ms (helper `split`, benchmarks/README.md):
# TransformerEncoderLayer(256, 4, 1024) step (16, 4, 128, 64) 72.99 / 69.55 (CPU 129.1 / 126.8);
# attention core alone (16, 4, 128, 64) 13.24 / 11.64, (8, 4, 256, 64) 17.64 / 16.30. No gain at 0.5M
# multiply-adds per head or fewer (MultiheadAttention(256, 8) step, 8 x 8 heads of 128 x 128 x 32:
# 20.94 / 22.08, CPU +5%; core (32, 8, 64, 64) 16.09 / 16.94) nor on one core (13.74 / 13.82).
# None: `_split_count`'s rule; an int: that many slices wherever the leading dims allow (tests).
_DENSE_SPLIT: int | None = None
_SPLIT_MACS = (2 ** 20, 8 * 2 ** 20)  # a per-head product (L * S * E) in [low, high): split
_SPLIT_SLICES = 4


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _split_count(lead: tuple, L: int, S: int, E: int) -> int:
    """How many independent slices the dense kernel over `lead` batch dims runs in (see above)."""
    if _DENSE_SPLIT is not None:
        return _DENSE_SPLIT
    low, high = _SPLIT_MACS
    if not low <= L * S * E < high or math.prod(lead) < 4 * _SPLIT_SLICES or _cpu_cores() < 2 or not on_cpu():
        return 1
    return _SPLIT_SLICES


def _lead_splits(lead: tuple, g: int) -> list[int]:
    """How many parts each leading dim is cut into (outermost first), their product as close to g as
    the dims' divisors allow."""
    parts = []
    for d in lead:
        f = math.gcd(g, d)
        parts.append(f)
        g //= f
    return parts


def _dense(q, k, v, mask, causal, scale, dropout_p, rng):
    lead = q.shape[:-2]
    parts = _lead_splits(lead, _split_count(lead, q.shape[-2], k.shape[-2], q.shape[-1]))
    if math.prod(parts) <= 1:
        return _dense_core(q, k, v, mask, causal, scale, dropout_p, rng)
    kept = None
    if dropout_p > 0:  # one draw over the whole (..., L, S), sliced: the same bits as unsplit
        kept = jax.random.bernoulli(rng, 1 - dropout_p, lead + (q.shape[-2], k.shape[-2]))

    def sliced(x, axis, i, n):
        # x's leading dim `axis` (counted from the left of `lead`) into part i of n; x may broadcast
        ax = axis - len(lead) + x.ndim - 2
        if ax < 0 or x.shape[ax] == 1:
            return x
        size = x.shape[ax] // n
        return lax.slice_in_dim(x, i * size, (i + 1) * size, axis=ax)

    def run(axis, q, k, v, mask, kept):
        if axis == len(lead):
            return _dense_core(q, k, v, mask, causal, scale, dropout_p, rng, kept)
        n = parts[axis]
        outs = [run(axis + 1, *(None if x is None else sliced(x, axis, i, n) for x in (q, k, v, mask, kept)))
                for i in range(n)]
        return outs[0] if n == 1 else jnp.concatenate(outs, axis=axis)

    return run(0, q, k, v, mask, kept)


def _dense_core(q, k, v, mask, causal, scale, dropout_p, rng, dropped=None):
    s = _scaled_scores(q, k, scale)
    L, S = s.shape[-2:]
    keep = jnp.tril(jnp.ones((L, S), bool)) if causal else None
    w = _safe_softmax(_mask_scores(s, mask, keep), -1)
    if dropout_p > 0:
        w = _dropout_weights(w, dropout_p, rng, dropped)
    return jnp.einsum("...ls,...sv->...lv", w, v, precision=_PRECISION)


def _query_block(carry, xs, *, kb, vb, causal, scale, dropout_p, length, rng):
    """Online softmax of one query block over every key block: (n, bq, E) -> (n, bq, Ev).

    A key block that the causal mask hides entirely is skipped (`lax.cond`), so causal attention
    does half the work."""
    qb, mb, i = xs
    n, bq = qb.shape[:2]
    bk = kb.shape[2]
    rows = i * bq + jnp.arange(bq)[:, None]
    key = None if rng is None else jax.random.fold_in(rng, i)

    def compute(inner, kj, vj, mj, j):
        m, total, acc = inner
        s = jnp.einsum("nqe,nke->nqk", qb, kj, precision=_PRECISION) * jnp.asarray(scale, qb.dtype)
        cols = j * bk + jnp.arange(bk)[None, :]
        keep = cols < length
        if causal:
            keep = keep & (cols <= rows)
        s = _mask_scores(s, mj, keep)
        m_new = lax.stop_gradient(jnp.maximum(m, jnp.max(s, -1, keepdims=True)))  # any shift is exact
        shift = jnp.where(jnp.isneginf(m_new), 0, m_new)
        p = jnp.exp(s - shift)
        correction = jnp.exp(m - shift)
        total = total * correction + jnp.sum(p, -1, keepdims=True)
        if dropout_p > 0:
            p = _dropout_weights(p, dropout_p, jax.random.fold_in(key, j))
        acc = acc * correction + jnp.einsum("nqk,nkv->nqv", p, vj, precision=_PRECISION)
        return m_new, total, acc

    def step(inner, ys):
        kj, vj, mj, j = ys
        if not causal:
            return compute(inner, kj, vj, mj, j), None
        visible = j * bk <= i * bq + bq - 1
        return lax.cond(visible, lambda c: compute(c, kj, vj, mj, j), lambda c: c, inner), None

    init = (jnp.full((n, bq, 1), -jnp.inf, qb.dtype), jnp.zeros((n, bq, 1), qb.dtype),
            jnp.zeros((n, bq, vb.shape[-1]), qb.dtype))
    init = varying_like(init, qb, kb, vb, mb)
    (_, total, acc), _ = lax.scan(jax.checkpoint(step), init, (kb, vb, mb, jnp.arange(kb.shape[0])))
    return carry, acc / jnp.where(total == 0, 1, total)


def _flash_query_block(padded_length: int, block: int) -> int:
    """Flash attention's query tiles: twice the key tiles where that adds no padding rows and leaves
    two query tiles or more. XLA:CPU runs a batched product on both cores only when each product is
    large enough (about 8M multiply-adds; (n, 256, 256) x 64 tiles run on one thread): 512 x 256
    tiles put the forward and backward products on 2 threads. Causal (2, 8, L, 64) forward +
    backward, CPU ms and CPU / busiest thread, 256 x 256 vs 512 x 256 tiles, one process, loaded
    machine (benchmarks/README.md, issue 28, helper `attn`): L 4096: 2384 / 1.73 vs 2384 / 1.97;
    L 2048: 581 / 1.63 vs 645 / 1.95; L 1024: 184 / 1.40 vs 209 / 2.04; non-causal L 1024: 265 / 1.60
    vs 258 / 1.99. At L 512 (one query tile, the causal one half masked) 53 / 1.77 vs 67 / 2.21: no gain."""
    return 2 * block if padded_length % (2 * block) == 0 and padded_length >= 4 * block else block


def _blockwise(q, k, v, mask, causal, scale, dropout_p, rng, block=None, flash=None):
    if flash is None:  # flash attention: closed-form backward, no per-tile residuals
        flash = mask is None and dropout_p == 0
    block = block or _block_size(max(q.shape[-2], k.shape[-2]))
    if flash:
        # key tiles of at most 256 rows: causal (2, 8, L, 64) forward + backward with square tiles of
        # 256 against 512 rows, 176 vs 210 ms at L 2048, 655 vs 724 ms at L 4096 (one process, 2 CPU
        # threads); query tiles: `_flash_query_block`
        block = min(block, 256)
    lead, (L, E), (S, Ev) = q.shape[:-2], q.shape[-2:], v.shape[-2:]
    n = math.prod(lead)
    nq, nk = -(-L // block), -(-S // block)
    Lp, Sp = nq * block, nk * block
    if flash:
        def rows(x, length, padded):
            return zero_pad(x.reshape((n,) + x.shape[-2:]), ((0, 0), (0, padded - length), (0, 0)))

        out = flash_attention(rows(q, L, Lp), rows(k, S, Sp), rows(v, S, Sp), causal, scale, S,
                              (_flash_query_block(Lp, block), block))
        return out[:, :L].reshape(lead + (L, Ev))
    # laid out once as (block, n, block rows, dim): the xs of the scans over query and key blocks
    q = jnp.pad(q.reshape(n, L, E), ((0, 0), (0, Lp - L), (0, 0))).reshape(n, nq, block, E).transpose(1, 0, 2, 3)
    k = jnp.pad(k.reshape(n, S, E), ((0, 0), (0, Sp - S), (0, 0))).reshape(n, nk, block, E).transpose(1, 0, 2, 3)
    v = jnp.pad(v.reshape(n, S, Ev), ((0, 0), (0, Sp - S), (0, 0))).reshape(n, nk, block, Ev).transpose(1, 0, 2, 3)
    if mask is not None:
        mask = jnp.broadcast_to(mask, mask.shape[:-2] + (L, S))
        mask = mask.reshape(1, L, S) if math.prod(mask.shape[:-2]) == 1 else \
            jnp.broadcast_to(mask, lead + (L, S)).reshape(n, L, S)
        mask = jnp.pad(mask, ((0, 0), (0, Lp - L), (0, Sp - S)))
        mask = mask.reshape(mask.shape[0], nq, block, nk, block).transpose(1, 3, 0, 2, 4)
    body = partial(_query_block, kb=k, vb=v, causal=causal, scale=scale, dropout_p=dropout_p, length=S, rng=rng)
    _, out = lax.scan(jax.checkpoint(body), None, (q, mask, jnp.arange(nq)))
    out = out.transpose(1, 0, 2, 3).reshape(n, Lp, Ev)[:, :L]
    return out.reshape(lead + (L, Ev))


def _fused_applies(q, k, v, mask, dropout_p) -> bool:
    """Where `jax.nn.dot_product_attention`'s fused GPU kernel computes what torch does."""
    return (not on_cpu() and mask is None and dropout_p == 0 and q.ndim == 4 and q.shape[-1] == v.shape[-1]
            and q.shape[-1] <= 128 and q.dtype in (jnp.float16, jnp.bfloat16))


def _fused(q, k, v, causal, scale):
    @jax.custom_jvp
    def attend(q, k, v):
        out = jax.nn.dot_product_attention(q.swapaxes(-2, -3), k.swapaxes(-2, -3), v.swapaxes(-2, -3),
                                           scale=scale, is_causal=causal)
        return out.swapaxes(-2, -3)

    @attend.defjvp
    def attend_jvp(primals, tangents):  # the JAX kernel's tangent: linear, transposable, forward-mode ready
        return jax.jvp(lambda *a: _attend(*a, None, causal, scale, 0.0, None, fused=False), primals, tangents)

    return attend(q, k, v)


# -- backend choice (funclayers.attention.sdpa_kernel) ---------------------------------------------------
# torch's SDPBackend values -> our kernels: MATH -> dense, FLASH_ATTENTION -> flash (no mask, no dropout),
# EFFICIENT_ATTENTION -> blockwise online softmax (any mask, dropout), CUDNN_ATTENTION -> the fused GPU
# kernel; OVERRIDEABLE has no kernel here. torch's default priority order: flash, efficient, math, cudnn.
_MATH, _FLASH, _EFFICIENT, _CUDNN, _OVERRIDEABLE = 0, 1, 2, 3, 4
_DEFAULT_PRIORITY = (_FLASH, _EFFICIENT, _MATH, _CUDNN, _OVERRIDEABLE)
_ALL_BACKENDS = frozenset(_DEFAULT_PRIORITY)
_BACKEND_NAMES = {-1: "ERROR", 0: "MATH", 1: "FLASH_ATTENTION", 2: "EFFICIENT_ATTENTION", 3: "CUDNN_ATTENTION",
                  4: "OVERRIDEABLE"}
# (enabled backends, priority order or None = our own choice first): set by sdpa_kernel, read at trace time
_backend_choice: list[tuple[frozenset, tuple | None]] = [(_ALL_BACKENDS, None)]


def _applies(backend, q, k, v, mask, dropout_p) -> bool:
    if backend in (_MATH, _EFFICIENT):
        return True
    if backend == _FLASH:
        return mask is None and dropout_p == 0
    if backend == _CUDNN:
        return _fused_applies(q, k, v, mask, dropout_p)
    return False


def _auto_backends(q, k, v, mask, dropout_p) -> list[int]:
    """The kernels picked when the user has not set a priority, best first (the measured choice, see
    the module docstring): the fused kernel where it applies, then by length blockwise or dense."""
    long = q.shape[-2] * k.shape[-2] >= _BLOCKWISE_MIN_SCORES
    order = [_CUDNN] if _fused_applies(q, k, v, mask, dropout_p) else []
    if long:
        order.append(_FLASH if mask is None and dropout_p == 0 else _EFFICIENT)
    return order + [_MATH]


def _pick_backend(q, k, v, mask, dropout_p, backends=None) -> int:
    enabled, priority = (frozenset(int(b) for b in backends), None) if backends is not None \
        else _backend_choice[-1]
    order = list(priority) if priority is not None else _auto_backends(q, k, v, mask, dropout_p)
    for backend in order + list(_DEFAULT_PRIORITY):
        if backend in enabled and _applies(backend, q, k, v, mask, dropout_p):
            return backend
    raise TorchRuntimeError(
        "scaled_dot_product_attention: No viable backend for scaled_dot_product_attention was found. This is "
        "likely due to turning off both the math kernel and the fused kernels. (enabled: "
        f"{[_BACKEND_NAMES[b] for b in sorted(enabled)]}; flash needs no attn_mask and dropout_p=0, cudnn a GPU "
        "and float16/bfloat16 without attn_mask or dropout, overrideable has no kernel in funclayers)")


def _attend(q, k, v, mask, causal, scale, dropout_p, rng, fused=True, backends=None):
    """softmax(q k^T * scale + mask) v over (..., L, E), (..., S, E), (..., S, Ev); fully masked rows 0."""
    if not fused:
        backends = (_MATH, _FLASH, _EFFICIENT)
    backend = _pick_backend(q, k, v, mask, dropout_p, backends)
    if backend == _CUDNN:
        return _fused(q, k, v, causal, scale)
    if backend in (_FLASH, _EFFICIENT):
        return _blockwise(q, k, v, mask, causal, scale, dropout_p, rng, flash=backend == _FLASH)
    return _dense(q, k, v, mask, causal, scale, dropout_p, rng)


# -- the pure ops ---------------------------------------------------------------------------------------


def _broadcastable(mask_shape: tuple, target: tuple) -> bool:
    if len(mask_shape) > len(target):
        return False
    return all(m in (1, t) for m, t in zip(mask_shape[::-1], target[::-1]))


def scaled_dot_product_attention(query: Any, key: Any, value: Any, attn_mask: Any = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False,
                                 *, rng: jax.Array | None = None, backends: Any = None) -> jax.Array:
    """softmax(Q K^T * scale + mask) V; torch.nn.functional.scaled_dot_product_attention.

    Args:
      query: (..., L, E).
      key: (..., S, E), with query's leading dims (with `enable_gqa`, its head dim -3 may divide
        query's).
      value: (..., S, Ev), with key's leading dims.
      attn_mask: bool (True = may attend, torch's SDPA convention) or float (added to the scores),
        broadcastable to (..., L, S); or a `funclayers.attention.bias.CausalBias`
        (`causal_upper_left(L, S)` is `is_causal=True`; `causal_lower_right(L, S)` aligns the
        diagonal to the bottom-right corner when L != S). Default: None.
      dropout_p: dropout on the attention weights (always applied when > 0, as torch's; needs `rng`). Default: 0.0.
      is_causal: a lower-triangular (top-left aligned) mask; exclusive with `attn_mask`. Default: False.
      scale: default 1 / sqrt(E).
      enable_gqa: grouped-query attention: key/value heads repeated to query's. Default: False.
      rng: PRNG key for the dropout. Default: None.
      backends: (funclayers only) an `SDPBackend` or a list of them that this call may use, as
        `funclayers.attention.sdpa_kernel(backends)` does for every call in its context. Default: None (any).

    A query whose every key is masked out gets 0 (torch's `_safe_softmax`, also what its CPU flash
    kernel gives), and zero gradients. Long sequences run blockwise (see the module docstring).

    Shape: (..., L, E), (..., S, E), (..., S, Ev) -> (..., L, Ev).

    Example:
      >>> q = k = v = jnp.ones((2, 8, 128, 64))
      >>> out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
      >>> out.shape
      (2, 8, 128, 64)
    """
    who = "scaled_dot_product_attention"
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_floating(who, x, name)
    q, k, v = (jnp.asarray(x) for x in (query, key, value))
    if min(q.ndim, k.ndim, v.ndim) < 2:
        raise TorchRuntimeError(f"{who} expects query, key and value of at least 2 dimensions (..., L, E), got "
                                f"shapes {q.shape}, {k.shape} and {v.shape}.")
    spelled = [torch_dtype_names(a.dtype)["c"] for a in (q, k, v)]
    check_param_dtypes(who, q, (k, v), "Expected query, key, and value to have the same dtype, but got query.dtype: "
                       "{} key.dtype: {} and value.dtype: {} instead.".format(*spelled))
    dtype = q.dtype
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise TorchRuntimeError(f"{who}: expected query and key with the same embedding size E and key and value "
                                f"with the same sequence length S, got query {q.shape}, key {k.shape}, value "
                                f"{v.shape}.")
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        if k.shape[-3] != v.shape[-3] or q.shape[-3] % k.shape[-3]:
            raise TorchRuntimeError(f"{who}: with enable_gqa the number of query heads ({q.shape[-3]}) must be "
                                    f"a multiple of the key/value heads (key {k.shape}, value {v.shape}).")
        groups = q.shape[-3] // k.shape[-3]
        k, v = jnp.repeat(k, groups, axis=-3), jnp.repeat(v, groups, axis=-3)
    if k.shape[:-2] != q.shape[:-2] or v.shape[:-2] != q.shape[:-2]:
        raise TorchRuntimeError(f"{who}: query, key and value must have the same leading (batch, head) dims, got "
                                f"query {q.shape}, key {k.shape}, value {v.shape}.")
    L, S = q.shape[-2], k.shape[-2]
    mask = None
    if getattr(attn_mask, "_is_causal_bias", False):  # torch's CausalBias._dispatch
        if is_causal:
            raise ValueError(f"{who}: CausalBias should not be used with causal=True")
        attn_mask, is_causal = (None, True) if attn_mask.seq_len_q == attn_mask.seq_len_kv or \
            attn_mask.variant == attn_mask.variant.UPPER_LEFT else (attn_mask._materialize(), False)
    if backends is not None and not isinstance(backends, (list, tuple)):
        backends = [backends]
    if attn_mask is not None:
        if is_causal:
            raise TorchRuntimeError(f"{who}: Explicit attn_mask should not be set when is_causal=True.")
        _mask_kind(who, attn_mask, "attn_mask")
        mask = jnp.asarray(attn_mask)
        expected = q.shape[:-2] + (L, S)
        if not _broadcastable(mask.shape, expected):
            raise TorchRuntimeError(f"{who}: attn_mask of shape {mask.shape} does not broadcast to the scores' "
                                    f"shape {expected} (batch..., L, S).")
        if mask.dtype != jnp.bool_:
            mask = mask.astype(dtype)
    if not 0 <= dropout_p <= 1:
        raise ValueError(f"{who}: dropout_p has to be between 0 and 1, got {dropout_p}.")
    if dropout_p > 0:
        require_rng(who, rng)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return _attend(q, k, v, mask, bool(is_causal), scale, float(dropout_p), rng, backends=backends)
