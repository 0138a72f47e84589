"""FlexAttention: attention with a score_mod and a block-sparse mask; torch.nn.attention.flex_attention.

`score_mod(score, b, h, q_idx, kv_idx)` and `mask_mod(b, h, q_idx, kv_idx)` are JAX functions of
scalars (int32 indices, as torch's are), vmapped over the batch, head, query and key indices. A
`BlockMask` (from `create_block_mask`) lists, for every (batch, head, query block), the key blocks
that are partly masked (mask_mod applied) and those that are not masked at all (mask_mod skipped);
`flex_attention` visits only those blocks: causal attention does half the work, a document mask of
8 documents an eighth. Without a score_mod it is flash attention over the listed blocks with a
closed-form tangent (`_flex_flash.py`); with one, autodiff of a checkpointed online softmax
(`_flex_kernel.py`), differentiable also w.r.t. arrays the score_mod closes over. jit, grad, jvp,
vmap all work (no custom_vjp), and it trains on CPU.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypedDict

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._utils import TorchRuntimeError, check_floating
from ._flex_flash import flex_flash
from ._flex_kernel import _INDEX, flex_forward, listed_blocks, vmap_bhqkv

__all__ = ["BlockMask", "flex_attention", "AuxOutput", "AuxRequest", "FlexKernelOptions", "create_block_mask",
           "create_mask", "or_masks", "and_masks", "noop_mask"]

_DEFAULT_SPARSE_BLOCK_SIZE = 128


class FlexKernelOptions(TypedDict, total=False):
    """torch's Triton/FLASH kernel options (BLOCK_M, BLOCK_N, BACKEND, ...): accepted and ignored here.

    Args:
      options: any of torch's keys; funclayers' kernel takes its tiles from the BlockMask.

    Example:
      >>> FlexKernelOptions(BLOCK_M=64)
      {'BLOCK_M': 64}
    """


class AuxRequest(NamedTuple):
    """Which auxiliary outputs `flex_attention` returns; torch.nn.attention.flex_attention.AuxRequest.

    Args:
      lse: the log-sum-exp of each query's (modified, masked) scores. Default: False.
      max_scores: each query's largest score (torch computes it off CPU only; here everywhere). Default: False.

    Shape: requests arrays of shape (B, Hq, L).

    Example:
      >>> AuxRequest(lse=True)
      AuxRequest(lse=True, max_scores=False)
    """

    lse: bool = False
    max_scores: bool = False


class AuxOutput(NamedTuple):
    """The auxiliary outputs of `flex_attention`; torch.nn.attention.flex_attention.AuxOutput.

    Args:
      lse: (B, Hq, L) log-sum-exp (natural log), -inf for a fully masked query; None if not requested. Default: None.
      max_scores: (B, Hq, L) largest score (no gradient flows through it); None if not requested. Default: None.

    Shape: each field (B, Hq, L) or None.

    Example:
      >>> AuxOutput()
      AuxOutput(lse=None, max_scores=None)
    """

    lse: Any = None
    max_scores: Any = None


def noop_mask(batch: Any, head: Any, token_q: Any, token_kv: Any) -> jax.Array:
    """The mask_mod that masks nothing (always True); torch.nn.attention.flex_attention.noop_mask.

    Args:
      batch: the batch index.
      head: the head index.
      token_q: the query index.
      token_kv: the key index.

    Shape: scalars in, a bool scalar out.

    Example:
      >>> noop_mask(0, 0, 3, 5)
      Array(True, dtype=bool)
    """
    return jnp.ones((), bool)


def _check_mods(who: str, mods: tuple) -> None:
    if not all(callable(m) for m in mods):
        raise TypeError(f"{who}: All inputs should be callable mask_mods: {mods}")


def or_masks(*mask_mods: Callable) -> Callable:
    """The union of mask_mods; torch.nn.attention.flex_attention.or_masks.

    Args:
      mask_mods: functions (b, h, q_idx, kv_idx) -> bool.

    Shape: the result maps scalars to a bool scalar, as each mask_mod.

    Example:
      >>> first = lambda b, h, q, kv: kv == 0
      >>> causal = lambda b, h, q, kv: q >= kv
      >>> create_mask(or_masks(first, causal), 1, 1, 3, 3)[0, 0].astype(int)
      Array([[1, 0, 0],
             [1, 1, 0],
             [1, 1, 1]], dtype=int32)
    """
    _check_mods("or_masks", mask_mods)

    def or_mask(b, h, q_idx, kv_idx):
        result = jnp.zeros((), bool)
        for mask in mask_mods:
            result = result | mask(b, h, q_idx, kv_idx)
        return result

    return or_mask


def and_masks(*mask_mods: Callable) -> Callable:
    """The intersection of mask_mods; torch.nn.attention.flex_attention.and_masks.

    Args:
      mask_mods: functions (b, h, q_idx, kv_idx) -> bool.

    Shape: the result maps scalars to a bool scalar, as each mask_mod.

    Example:
      >>> causal = lambda b, h, q, kv: q >= kv
      >>> window = lambda b, h, q, kv: q - kv <= 1
      >>> create_mask(and_masks(causal, window), 1, 1, 4, 4)[0, 0].astype(int)
      Array([[1, 0, 0, 0],
             [1, 1, 0, 0],
             [0, 1, 1, 0],
             [0, 0, 1, 1]], dtype=int32)
    """
    _check_mods("and_masks", mask_mods)

    def and_mask(b, h, q_idx, kv_idx):
        result = jnp.ones((), bool)
        for mask in mask_mods:
            result = result & mask(b, h, q_idx, kv_idx)
        return result

    return and_mask


def _positional_args(fn: Callable) -> int:
    """How many positional arguments without a default `fn` takes (torch's `_get_mod_type`)."""
    code = getattr(fn, "__code__", None)
    if code is not None:
        return code.co_argcount - len(getattr(fn, "__defaults__", None) or ())
    return sum(1 for p in inspect.signature(fn).parameters.values()
               if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _indices(*sizes: int) -> list[jax.Array]:
    return [jnp.arange(s, dtype=_INDEX) for s in sizes]


def create_mask(mod_fn: Callable, B: int | None, H: int | None, Q_LEN: int, KV_LEN: int,
                device: Any = None) -> jax.Array:
    """The dense bool mask (True = may attend) of a mask_mod; torch.nn.attention.flex_attention.create_mask.

    A score_mod's mask is where it does not return -inf for a zero score.

    Args:
      mod_fn: a mask_mod (b, h, q_idx, kv_idx) -> bool or a score_mod (score, b, h, q_idx, kv_idx) -> score.
      B: batch size (None: 1).
      H: number of query heads (None: 1).
      Q_LEN: query length.
      KV_LEN: key/value length.
      device: accepted and ignored. Default: None.

    Shape: a bool array (B, H, Q_LEN, KV_LEN).

    Example:
      >>> create_mask(lambda b, h, q, kv: q >= kv, None, None, 2, 3)
      Array([[[[ True, False, False],
               [ True,  True, False]]]], dtype=bool)
    """
    del device
    b, h, m, n = _indices(B or 1, H or 1, Q_LEN, KV_LEN)
    args = _positional_args(mod_fn)
    if args == 5:
        out = vmap_bhqkv(mod_fn, True)(jnp.zeros((B or 1, H or 1, Q_LEN, KV_LEN)), b, h, m, n)
        return ~jnp.isneginf(out)
    if args != 4:
        raise TypeError(f"create_mask: expected a mask_mod (4 positional arguments) or a score_mod (5), got a "
                        f"function of {args}.")
    out = vmap_bhqkv(mod_fn, False)(b, h, m, n)
    return jnp.broadcast_to(out, (B or 1, H or 1, Q_LEN, KV_LEN)).astype(bool)


def _dense_to_ordered(dense: jax.Array) -> tuple[jax.Array, jax.Array]:
    """torch's `_dense_to_ordered`: per row, the number of listed blocks and their indices first (ascending)."""
    dense = dense.astype(_INDEX)
    return dense.sum(-1).astype(_INDEX), jnp.argsort(-dense, axis=-1, stable=True).astype(_INDEX)


def _ordered_to_dense(num: jax.Array, idx: jax.Array, num_cols: int) -> jax.Array:
    listed = jnp.arange(idx.shape[-1]) < num[..., None]
    hot = (idx[..., None] == jnp.arange(num_cols)) & listed[..., None]
    return hot.any(-2).astype(_INDEX)


@jax.tree_util.register_pytree_node_class
class BlockMask:
    """A block-sparse attention mask; torch.nn.attention.flex_attention.BlockMask (a pytree).

    Per (batch, head, query block of BLOCK_SIZE[0] rows): `kv_num_blocks` / `kv_indices` list the
    key blocks (of BLOCK_SIZE[1] columns) that are partly masked, where `mask_mod` is applied;
    `full_kv_num_blocks` / `full_kv_indices` those with nothing masked. Blocks on neither list are
    skipped. `q_num_blocks` / `q_indices` (and `full_`) are the transposed lists, as torch keeps
    them. The arrays are the pytree's leaves (a BlockMask can be an argument of a jitted function);
    `seq_lengths`, `BLOCK_SIZE` and `mask_mod` are static. Build one with `create_block_mask` or
    `BlockMask.from_kv_blocks`.

    Args:
      seq_lengths: (Q_LEN, KV_LEN).
      kv_num_blocks: (B, H, num_q_blocks) int32.
      kv_indices: (B, H, num_q_blocks, num_kv_blocks) int32.
      full_kv_num_blocks: like kv_num_blocks, or None.
      full_kv_indices: like kv_indices, or None.
      q_num_blocks: kv_num_blocks' transposed list (per key block), or None.
      q_indices: kv_indices' transposed list, or None.
      full_q_num_blocks: full_kv_num_blocks' transposed list, or None.
      full_q_indices: full_kv_indices' transposed list, or None.
      BLOCK_SIZE: (query block, key block). Default: (128, 128).
      mask_mod: the mask_mod (default `noop_mask`).

    Shape: `shape` is (B, H, Q_LEN, KV_LEN); B and H may be 1 (broadcast over the batch / heads).

    Example:
      >>> bm = create_block_mask(lambda b, h, q, kv: q >= kv, None, None, 256, 256)
      >>> bm.shape, bm.kv_num_blocks.tolist(), bm.full_kv_num_blocks.tolist()
      ((1, 1, 256, 256), [[[1, 1]]], [[[0, 1]]])
      >>> round(bm.sparsity(), 2)
      25.0
    """

    _TENSOR_ATTRS = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks",
                     "q_indices", "full_q_num_blocks", "full_q_indices")

    def __init__(self, seq_lengths: tuple[int, int], kv_num_blocks: Any, kv_indices: Any, full_kv_num_blocks: Any,
                 full_kv_indices: Any, q_num_blocks: Any, q_indices: Any, full_q_num_blocks: Any,
                 full_q_indices: Any, BLOCK_SIZE: tuple[int, int] = (128, 128), mask_mod: Callable = noop_mask):
        if kv_indices is None or kv_num_blocks is None:
            raise ValueError("BlockMask: kv_num_blocks and kv_indices must be provided.")
        if jnp.ndim(kv_indices) < 2:
            raise ValueError(f"BlockMask must have at least 2 dimensions, got kv_indices of shape "
                             f"{jnp.shape(kv_indices)}.")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise ValueError("BlockMask: full_kv_num_blocks and full_kv_indices must be both provided or omitted.")
        self.seq_lengths = tuple(int(x) for x in seq_lengths)
        self.kv_num_blocks, self.kv_indices = kv_num_blocks, kv_indices
        self.full_kv_num_blocks, self.full_kv_indices = full_kv_num_blocks, full_kv_indices
        self.q_num_blocks, self.q_indices = q_num_blocks, q_indices
        self.full_q_num_blocks, self.full_q_indices = full_q_num_blocks, full_q_indices
        self.BLOCK_SIZE = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
        self.mask_mod = mask_mod

    @classmethod
    def from_kv_blocks(cls, kv_num_blocks: Any, kv_indices: Any, full_kv_num_blocks: Any = None,
                       full_kv_indices: Any = None, BLOCK_SIZE: int | tuple[int, int] = _DEFAULT_SPARSE_BLOCK_SIZE,
                       mask_mod: Callable | None = None, seq_lengths: tuple[int, int] | None = None,
                       compute_q_blocks: bool = True) -> BlockMask:
        """A BlockMask from its kv-block lists, the q-block lists computed; torch's BlockMask.from_kv_blocks.

        Args:
          kv_num_blocks: (B, H, num_q_blocks) counts of partial blocks.
          kv_indices: their indices.
          full_kv_num_blocks: counts of full blocks, or None.
          full_kv_indices: their indices.
          BLOCK_SIZE: an int or (query block, key block). Default: 128.
          mask_mod: applied on the partial blocks (default `noop_mask`).
          seq_lengths: (Q_LEN, KV_LEN); default the blocks' extent.
          compute_q_blocks: whether to compute the transposed (q) lists.

        Shape: see `BlockMask`.

        Example:
          >>> bm = BlockMask.from_kv_blocks(jnp.array([[[1, 1]]]), jnp.array([[[0, 1], [1, 0]]]), BLOCK_SIZE=2)
          >>> bm.shape, bm.to_dense().tolist()
          ((1, 1, 4, 4), [[[[1, 0], [0, 1]]]])
        """
        if jnp.ndim(kv_indices) < 2:
            raise ValueError("BlockMask must have at least 2 dimensions")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise ValueError("BlockMask: full_kv_num_blocks and full_kv_indices must be both provided or omitted.")
        kv_num_blocks, kv_indices = jnp.asarray(kv_num_blocks, _INDEX), jnp.asarray(kv_indices, _INDEX)
        if full_kv_num_blocks is not None:
            full_kv_num_blocks = jnp.asarray(full_kv_num_blocks, _INDEX)
            full_kv_indices = jnp.asarray(full_kv_indices, _INDEX)
        q_num = q_idx = full_q_num = full_q_idx = None
        if compute_q_blocks:
            q_num, q_idx = _dense_to_ordered(
                _ordered_to_dense(kv_num_blocks, kv_indices, kv_indices.shape[-1]).swapaxes(-1, -2))
            if full_kv_num_blocks is not None:
                full_q_num, full_q_idx = _dense_to_ordered(
                    _ordered_to_dense(full_kv_num_blocks, full_kv_indices, full_kv_indices.shape[-1]).swapaxes(-1, -2))
        block = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
        if seq_lengths is None:
            seq_lengths = (kv_indices.shape[-2] * block[0], kv_indices.shape[-1] * block[1])
        return cls(seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, q_num, q_idx,
                   full_q_num, full_q_idx, block, mask_mod if mask_mod is not None else noop_mask)

    def tree_flatten(self):
        return tuple(getattr(self, a) for a in self._TENSOR_ATTRS), (self.seq_lengths, self.BLOCK_SIZE, self.mask_mod)

    @classmethod
    def tree_unflatten(cls, aux, children):
        seq_lengths, block, mask_mod = aux
        bm = object.__new__(cls)
        for name, value in zip(cls._TENSOR_ATTRS, children):
            setattr(bm, name, value)
        bm.seq_lengths, bm.BLOCK_SIZE, bm.mask_mod = seq_lengths, block, mask_mod
        return bm

    def as_tuple(self, flatten: bool = True) -> tuple:
        """The arrays, then BLOCK_SIZE and mask_mod (torch's order)."""
        block = self.BLOCK_SIZE if not flatten else tuple(self.BLOCK_SIZE)
        return (*self.seq_lengths, *(getattr(self, a) for a in self._TENSOR_ATTRS), *block, self.mask_mod)

    @property
    def shape(self) -> tuple[int, ...]:
        """(B, H, Q_LEN, KV_LEN)."""
        return tuple(jnp.shape(self.kv_indices)[:-2]) + self.seq_lengths

    def numel(self) -> int:
        """The number of entries of the mask (sparsity not counted)."""
        return math.prod(self.shape)

    def sparsity(self) -> float:
        """The percentage of blocks that are skipped (neither partial nor full)."""
        computed = int(np.sum(self.kv_num_blocks))
        if self.full_kv_num_blocks is not None:
            computed += int(np.sum(self.full_kv_num_blocks))
        return 100 * (1 - computed * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1] / self.numel())

    def to_dense(self) -> jax.Array:
        """The block-level mask (B, H, num_q_blocks, num_kv_blocks), 1 where a block is listed."""
        dense = _ordered_to_dense(self.kv_num_blocks, self.kv_indices, jnp.shape(self.kv_indices)[-1])
        if self.full_kv_num_blocks is not None:
            dense = dense | _ordered_to_dense(self.full_kv_num_blocks, self.full_kv_indices,
                                              jnp.shape(self.full_kv_indices)[-1])
        return dense

    def __repr__(self) -> str:
        def shape(x):
            return None if x is None else tuple(jnp.shape(x))

        fields = ", ".join(f"{a}={shape(getattr(self, a))}" for a in self._TENSOR_ATTRS[:4])
        name = getattr(self.mask_mod, "__name__", self.mask_mod)
        return f"BlockMask(shape={self.shape}, BLOCK_SIZE={self.BLOCK_SIZE}, {fields}, mask_mod={name})"


def create_block_mask(mask_mod: Callable, B: int | None, H: int | None, Q_LEN: int, KV_LEN: int, device: Any = None,
                      BLOCK_SIZE: int | tuple[int, int] = _DEFAULT_SPARSE_BLOCK_SIZE, _compile: bool = False,
                      separate_full_blocks: bool = True, compute_dq_write_order: bool = False,
                      dq_kv_order: bool = True) -> BlockMask:
    """The BlockMask of a mask_mod; torch.nn.attention.flex_attention.create_block_mask.

    Which blocks are empty (skipped), partial (mask_mod applied) or full.

    The mask is evaluated one query block at a time (`lax.map`), so building it takes memory
    O(B x H x BLOCK_SIZE x KV_LEN), not the dense (B, H, Q_LEN, KV_LEN).

    Args:
      mask_mod: (b, h, q_idx, kv_idx) -> bool, True where a query may attend.
      B: batch size, or None (the mask is the same for every batch element).
      H: number of query heads, or None (the same for every head).
      Q_LEN: query length.
      KV_LEN: key/value length.
      device: accepted and ignored. Default: None.
      BLOCK_SIZE: an int or (query block, key block); default 128. Also flex_attention's tile size.
      _compile: accepted (torch's deprecated flag); ignored. Default: False.
      separate_full_blocks: whether unmasked blocks are listed apart (mask_mod skipped on them). Default: True.
      compute_dq_write_order: accepted and ignored (torch's GPU FLASH backward metadata). Default: False.
      dq_kv_order: accepted and ignored (as above). Default: True.

    Shape: the result's `shape` is (B or 1, H or 1, Q_LEN, KV_LEN).

    Example:
      >>> sliding = lambda b, h, q, kv: (q >= kv) & (q - kv < 128)
      >>> bm = create_block_mask(sliding, None, None, 512, 512, BLOCK_SIZE=128)
      >>> bm.to_dense()[0, 0].tolist()
      [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    del device, _compile, compute_dq_write_order
    if not isinstance(dq_kv_order, bool):
        raise ValueError("create_block_mask: dq_kv_order must be a bool when using create_block_mask")
    if _positional_args(mask_mod) != 4:
        raise TypeError(f"create_block_mask requires a mask_mod function (b, h, q_idx, kv_idx), got {mask_mod} "
                        f"taking {_positional_args(mask_mod)} positional arguments.")
    bq, bk = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
    B, H = B or 1, H or 1
    nq, nk = -(-Q_LEN // bq), -(-KV_LEN // bk)
    mod = vmap_bhqkv(mask_mod, False)
    b, h, n = _indices(B, H, KV_LEN)

    def row_counts(i):  # (B, H, nk): kept entries per kv block of query block i (padding counts as masked)
        m = i * bq + jnp.arange(bq, dtype=_INDEX)
        keep = jnp.broadcast_to(mod(b, h, m, n), (B, H, bq, KV_LEN)).astype(bool) & (m < Q_LEN)[:, None]
        keep = jnp.pad(keep, ((0, 0), (0, 0), (0, 0), (0, nk * bk - KV_LEN)))
        return keep.reshape(B, H, bq, nk, bk).sum((2, 4), dtype=_INDEX)

    counts = lax.map(row_counts, jnp.arange(nq, dtype=_INDEX)).transpose(1, 2, 0, 3)  # (B, H, nq, nk)
    if separate_full_blocks:
        full = counts == bq * bk
        partial, full = (counts > 0) & ~full, full
    else:
        partial, full = counts > 0, None
    num, idx = _dense_to_ordered(partial)
    full_num, full_idx = _dense_to_ordered(full) if full is not None else (None, None)
    return BlockMask.from_kv_blocks(num, idx, full_num, full_idx, BLOCK_SIZE=(bq, bk), mask_mod=mask_mod,
                                    seq_lengths=(Q_LEN, KV_LEN))


# Query rows per tile where at most a quarter of the blocks are listed: each query tile costs one pass
# over the whole key/value cotangents, which dominates when a tile visits few key blocks. (2, 8, 4096,
# 64) forward + backward, CPU time on 2 threads: an 8-document mask (1/8 listed) 1.77 s with tiles of
# 128 rows, 1.23 s with 512; causal (1/2 listed) 3.75 s with 128, 4.07 s with 512 (the diagonal tiles
# compute more of what is masked).
_SPARSE_Q_TILE_ROWS, _SPARSE_DENSITY = 512, 0.25
# The flash path (no score_mod) takes tiles of at least 256 rows (whole blocks) on both axes from 1024
# rows on, as `scaled_dot_product_attention`'s flash attention does: its products are large enough for
# XLA:CPU to run them on both cores. Causal (2, 8, 4096, 64) forward + backward with blocks of 128 on
# the 2-core machine: tiles of 128 x 128 take about 0.88x the CPU time of 256 x 256 but 1.07x
# the wall time (the same kernel, our SDPA's flash attention, measured both ways); see
# benchmarks/README.md, "Flex attention (issue 27)".
_FLASH_TILE_ROWS, _FLASH_TILE_MIN_LENGTH = 256, 1024


def _flash_rows(block: int, length: int) -> int:
    """The flash path's default tile along one axis: the block, or 256 rows of whole blocks."""
    if block >= _FLASH_TILE_ROWS or _FLASH_TILE_ROWS % block or length < _FLASH_TILE_MIN_LENGTH:
        return block
    return _FLASH_TILE_ROWS


def _tile_rows(who: str, kernel_options: dict | None, block_mask: BlockMask, flash: bool) -> tuple[int, int]:
    """The (query, key) rows per tile: kernel_options["BLOCK_M"] / ["BLOCK_N"] (torch's names; BLOCK_N
    read by the flash path only), else the block mask's blocks, or about 512 query rows (whole blocks)
    for a sparse mask whose counts are known when tracing; the flash path at least 256 x 256 from 1024
    rows on."""
    (block_q, block_k), (L, S) = block_mask.BLOCK_SIZE, block_mask.seq_lengths
    options = kernel_options or {}
    for name, block in (("BLOCK_M", block_q), ("BLOCK_N", block_k)):
        rows = options.get(name)
        if rows is not None and (rows <= 0 or rows % block):
            raise ValueError(f"{who}: kernel_options {name} ({rows}) must be a positive multiple of the "
                             f"block_mask's {'query' if name == 'BLOCK_M' else 'key'} BLOCK_SIZE ({block}).")
    key_rows = int(options.get("BLOCK_N", _flash_rows(block_k, S) if flash else block_k))
    if options.get("BLOCK_M") is not None:
        return int(options["BLOCK_M"]), key_rows
    query_rows = _flash_rows(block_q, L) if flash else block_q
    counts = [c for c in (block_mask.kv_num_blocks, block_mask.full_kv_num_blocks) if c is not None]
    if any(isinstance(c, jax.core.Tracer) for c in counts):
        return query_rows, key_rows
    listed = sum(float(np.mean(np.asarray(c))) for c in counts)  # per query block
    if listed > _SPARSE_DENSITY * -(-S // block_k):
        return query_rows, key_rows
    sparse_rows = block_q * max(1, min(-(-L // block_q), _SPARSE_Q_TILE_ROWS // block_q))
    return max(query_rows, sparse_rows), key_rows


def flex_attention(query: Any, key: Any, value: Any, score_mod: Callable | None = None,
                   block_mask: BlockMask | None = None, scale: float | None = None, enable_gqa: bool = False,
                   return_lse: bool = False, kernel_options: dict | None = None, *,
                   return_aux: AuxRequest | None = None) -> Any:
    """Attention with a score_mod and a block-sparse mask; torch.nn.attention.flex_attention.flex_attention.

    softmax(where(mask_mod, score_mod(q k^T * scale, b, h, q_idx, kv_idx), -inf)) v, visiting only
    the blocks `block_mask` lists (memory O(L x block)). A query whose every key is masked gets 0
    (and log-sum-exp -inf), as torch. Differentiable in every mode w.r.t. q, k, v and any array the
    score_mod closes over (an ALiBi slope, a relative-position bias table).

    Args:
      query: (B, Hq, L, E).
      key: (B or 1, Hkv, S, E), query's dtype.
      value: (B or 1, Hkv, S, Ev), query's dtype.
      score_mod: (score, b, h, q_idx, kv_idx) -> score, on scalars; None: the scores unchanged. Default: None.
      block_mask: a `BlockMask` for (L, S) (from `create_block_mask`); None: nothing masked. Default: None.
      scale: default 1 / sqrt(E).
      enable_gqa: grouped-query attention: query head h reads key/value head h // (Hq // Hkv). Default: False.
      return_lse: also return the log-sum-exp (torch's deprecated form of `return_aux`). Default: False.
      kernel_options: torch's Triton options, accepted; only `BLOCK_M` and `BLOCK_N` are read: the
        query and key rows per tile, multiples of the block mask's blocks (default: the blocks, or
        about 512 query rows for a mask that lists at most a quarter of the blocks; without a
        score_mod, at least 256 rows on each axis from 1024 rows on; `BLOCK_N` is read only
        without a score_mod). A tile evaluates the mask_mod where any of its blocks is listed as
        partial; every entry keeps its own block's verdict. Default: None.
      return_aux: an `AuxRequest`: return (out, AuxOutput(lse, max_scores)). Default: None.

    Shape: (B, Hq, L, E), (B, Hkv, S, E), (B, Hkv, S, Ev) -> (B, Hq, L, Ev); lse and max_scores
      (B, Hq, L), in float32 for float32 / float16 / bfloat16 inputs, float64 for float64.

    Example:
      >>> q = k = v = jnp.ones((1, 2, 256, 16))
      >>> causal = create_block_mask(lambda b, h, qi, kv: qi >= kv, None, None, 256, 256)
      >>> alibi = lambda score, b, h, qi, kv: score - 0.5 * (h + 1) * (qi - kv)
      >>> out, lse = flex_attention(q, k, v, score_mod=alibi, block_mask=causal, return_lse=True)
      >>> out.shape, lse.shape
      ((1, 2, 256, 16), (1, 2, 256))
      >>> float(out[0, 0, 5, 0]), float(lse[0, 0, 0])
      (1.0, 4.0)
    """
    who = "flex_attention"
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_floating(who, x, name)
    q, k, v = (jnp.asarray(x) for x in (query, key, value))
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"{who}: query, key and value must be 4D tensors (B, H, L, E), got shapes {q.shape}, "
                         f"{k.shape} and {v.shape}.")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"{who}: Expected query, key, and value to have the same dtype, but got query.dtype: "
                        f"{q.dtype}, key.dtype: {k.dtype}, and value.dtype: {v.dtype} instead.")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2] or k.shape[:2] != v.shape[:2]:
        raise TorchRuntimeError(f"{who}: expected query and key with the same embedding size E and key and value "
                                f"of the same (B, Hkv, S), got query {q.shape}, key {k.shape}, value {v.shape}.")
    B, Hq, L, _ = q.shape
    Bkv, Hkv, S, _ = k.shape
    if not enable_gqa and Hq != Hkv:
        raise ValueError(f"{who}: Expect query and key/value to have the same number of heads but got Hq={Hq} and "
                         f"Hkv={Hkv}. Try setting enable_gqa=True for GQA.")
    if enable_gqa and Hq % Hkv:
        raise ValueError(f"{who}: Expect number of query heads to be a multiple of kv heads for GQA but got Hq={Hq} "
                         f"and Hkv={Hkv}.")
    if Bkv != B and (block_mask is None or Bkv != 1):
        raise ValueError(f"{who}: Expect query and key/value to have the same batch size (or key/value a batch of "
                         f"1 with a block_mask), but got Bq={B} and Bkv={Bkv}.")
    if score_mod is not None and _positional_args(score_mod) != 5:
        raise TypeError(f"{who}: score_mod must take 5 positional arguments (score, b, h, q_idx, kv_idx), got "
                        f"{score_mod} taking {_positional_args(score_mod)}.")
    if return_lse and return_aux is not None:
        raise ValueError(f"{who}: Cannot specify both return_lse and return_aux. return_lse is deprecated, please "
                         f"use return_aux=AuxRequest(lse=True) instead.")
    if kernel_options is not None and not isinstance(kernel_options, dict):
        raise TypeError(f"{who}: kernel_options must be a dict or None, got {type(kernel_options).__name__}.")
    if block_mask is None:
        # nothing masked: every block full, tiles of up to 128 rows
        bq, bk = min(L, _DEFAULT_SPARSE_BLOCK_SIZE), min(S, _DEFAULT_SPARSE_BLOCK_SIZE)
        nq, nk = -(-L // bq), -(-S // bk)
        full_num = np.full((1, 1, nq), nk, np.int32)
        full_idx = np.broadcast_to(np.arange(nk, dtype=np.int32), (1, 1, nq, nk))
        block_mask = BlockMask((L, S), np.zeros((1, 1, nq), np.int32), np.zeros((1, 1, nq, 0), np.int32),
                               full_num, full_idx, None, None, None, None, (bq, bk), noop_mask)
    if not isinstance(block_mask, BlockMask):
        raise TypeError(f"{who}: block_mask must be a BlockMask (from create_block_mask), got "
                        f"{type(block_mask).__name__}.")
    def rows(x, ndim):  # torch's BlockMask may drop leading (batch, head) dims: make them 1
        return jnp.reshape(x, (1,) * (ndim - jnp.ndim(x)) + tuple(jnp.shape(x)))

    Bm, Hm = jnp.shape(rows(block_mask.kv_indices, 4))[:2]
    if block_mask.seq_lengths != (L, S):
        bigger = L > block_mask.seq_lengths[0] or S > block_mask.seq_lengths[1]
        raise ValueError(f"{who}: block_mask was created for block_mask.shape={block_mask.shape} but got q_len={L} "
                         f"and kv_len={S}. As the block mask was created for a {'smaller' if bigger else 'larger'} "
                         f"length than you're using it for, you likely need to create a new block mask.")
    if Bm not in (1, B) or Hm not in (1, Hq):
        raise ValueError(f"{who}: block_mask of shape {block_mask.shape} does not broadcast to query's batch {B} "
                         f"and heads {Hq}.")
    nq = -(-L // block_mask.BLOCK_SIZE[0])
    if jnp.shape(block_mask.kv_indices)[-2] != nq:
        raise ValueError(f"{who}: block_mask has {jnp.shape(block_mask.kv_indices)[-2]} query blocks, expected {nq} "
                         f"for q_len={L} and BLOCK_SIZE={block_mask.BLOCK_SIZE}.")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)

    nk = -(-S // block_mask.BLOCK_SIZE[1])
    partial = listed_blocks(rows(block_mask.kv_num_blocks, 3), rows(block_mask.kv_indices, 4), B, Hq, nk)
    full = None
    if block_mask.full_kv_num_blocks is not None:
        full = listed_blocks(rows(block_mask.full_kv_num_blocks, 3), rows(block_mask.full_kv_indices, 4), B, Hq, nk)
    flash = score_mod is None and not return_lse and return_aux is None
    tile_rows = _tile_rows(who, kernel_options, block_mask, flash)
    if flash:  # flash attention's closed-form tangent
        return flex_flash(q, k, v, block_mask.mask_mod, (partial, full), block_mask.BLOCK_SIZE, scale, tile_rows)
    out, lse, mx = flex_forward(q, k, v, score_mod, block_mask.mask_mod, (partial, full), block_mask.BLOCK_SIZE,
                                scale, tile_rows[0])
    if return_aux is not None:
        return out, AuxOutput(lse if return_aux.lse else None,
                              lax.stop_gradient(mx) if return_aux.max_scores else None)
    return (out, lse) if return_lse else out
