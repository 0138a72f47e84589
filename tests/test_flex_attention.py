"""fl.attention against torch 2.13's torch.nn.attention: flex_attention and its block masks, sdpa_kernel, CausalBias.

Forward parity against torch's eager `flex_attention` on CPU (its math reference); gradients, which
torch's FlexAttention does not compute on CPU, against torch's `scaled_dot_product_attention` with the
same dense mask and additive bias (every score_mod here adds a bias). Shapes are small with blocks of
32 rows so that each case has several blocks, padding, and skipped, partial and full blocks.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import assert_close, randn, tolerance
from torch.nn.attention import flex_attention as tflex

import funclayers.functional as F
from funclayers import _sdpa
from funclayers.attention import SDPBackend, sdpa_kernel
from funclayers.attention.bias import CausalBias, CausalVariant, causal_lower_right, causal_upper_left
from funclayers.attention.flex_attention import (
    AuxRequest,
    BlockMask,
    _tile_rows,
    and_masks,
    create_block_mask,
    create_mask,
    flex_attention,
    noop_mask,
    or_masks,
)

BLOCK = 32
DOCS = np.array([[0] * 40 + [1] * 30 + [2] * 30, [0] * 10 + [1] * 60 + [2] * 30])  # (B, 100): document ids


def _case(name, xp):
    """(mask_mod or None, score_mod or None, mask batch (None: shared), Hq, Hkv, L, S, arrays the mods
    close over {name: array}) for each case, written once for both frameworks (`xp` = jnp or torch)."""
    arr = (lambda a: torch.from_numpy(np.array(a))) if xp is torch else jnp.asarray
    slopes = arr(np.array([0.5, 0.25], np.float32))
    table = arr(randn(41, seed=3))
    docs = arr(DOCS)

    def causal(b, h, q, kv):
        return q >= kv

    def window(b, h, q, kv):
        return q - kv <= 20

    def document(b, h, q, kv):
        return docs[b, q] == docs[b, kv]

    def alibi(score, b, h, q, kv):
        return score + slopes[h] * (kv - q)

    def relative(score, b, h, q, kv):  # a learned bias per clipped distance
        return score + table[xp.clamp(q - kv, -20, 20) + 20] if xp is torch else \
            score + table[jnp.clip(q - kv, -20, 20) + 20]

    def prefix_lm(b, h, q, kv):
        return (kv < 10) | (q >= kv)

    def first_rows(b, h, q, kv):  # queries past 50 see nothing: fully masked rows
        return q < 50

    return {
        "sliding_window": (and_masks(causal, window) if xp is jnp else tflex.and_masks(causal, window), None, None,
                           2, 2, 100, 100, {}),
        "document": (document, None, 2, 2, 2, 100, 100, {}),
        "alibi_causal": (causal, alibi, None, 2, 2, 100, 100, {"slopes": slopes}),
        "relative_position": (None, relative, None, 2, 2, 70, 100, {"table": table}),
        "gqa_prefix_lm": (prefix_lm, None, None, 4, 2, 100, 100, {}),
        "fully_masked_rows": (first_rows, None, None, 2, 2, 100, 64, {}),
    }[name]


# cases run with query tiles (kernel_options BLOCK_M) and key tiles (BLOCK_N, read without a score_mod) of two
# blocks: tile-level visits, per-block verdicts
TWO_BLOCK_TILES = {"document", "gqa_prefix_lm", "fully_masked_rows"}
TWO_BLOCK_KEY_TILES = {"sliding_window", "document", "fully_masked_rows"}


def _options(name):
    options = {"BLOCK_M": 2 * BLOCK} if name in TWO_BLOCK_TILES else {}
    return {**options, "BLOCK_N": 2 * BLOCK} if name in TWO_BLOCK_KEY_TILES else options or None
CASES = ["sliding_window", "document", "alibi_causal", "relative_position", "gqa_prefix_lm",
         "fully_masked_rows"]


def _inputs(hq, hkv, L, S, dtype, E=8):
    return randn(2, hq, L, E, dtype=dtype, seed=0), randn(2, hkv, S, E, dtype=dtype, seed=1), \
        randn(2, hkv, S, E, dtype=dtype, seed=2)


@pytest.mark.parametrize("name", CASES)
def test_flex_attention_forward_matches_torch(name, dtype):
    mask_mod, score_mod, mb, hq, hkv, L, S, _ = _case(name, jnp)
    tmask, tscore, *_ = _case(name, torch)
    q, k, v = _inputs(hq, hkv, L, S, dtype)
    bm = create_block_mask(mask_mod, mb, None, L, S, BLOCK_SIZE=BLOCK) if mask_mod else None
    tbm = tflex.create_block_mask(tmask, mb, None, L, S, device="cpu", BLOCK_SIZE=BLOCK) if tmask else None
    if bm is not None:  # the same block structure as torch's
        for attr in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks",
                     "q_indices"):
            np.testing.assert_array_equal(np.asarray(getattr(bm, attr)), getattr(tbm, attr).numpy(), err_msg=attr)
        np.testing.assert_array_equal(np.asarray(create_mask(mask_mod, mb, hq, L, S)),
                                      tflex.create_mask(tmask, mb, hq, L, S, device="cpu").numpy())
    options = _options(name)
    out, aux = jax.jit(lambda q, k, v, bm: flex_attention(q, k, v, score_mod, bm, enable_gqa=hq != hkv,
                                                          kernel_options=options,
                                                          return_aux=AuxRequest(lse=True)))(q, k, v, bm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "flex_attention called without torch.compile()"
        tout, taux = tflex.flex_attention(*(torch.from_numpy(x) for x in (q, k, v)), tscore, tbm,
                                          enable_gqa=hq != hkv, return_aux=tflex.AuxRequest(lse=True))
    tol = tolerance(dtype)
    assert_close(out, tout, f"{name} output", **tol)
    assert_close(aux.lse, taux.lse, f"{name} lse", **tol)
    if name == "fully_masked_rows":
        assert np.all(np.asarray(out)[:, :, 50:] == 0) and np.all(np.isneginf(np.asarray(aux.lse)[:, :, 50:]))


def _torch_reference(name, q, k, v, dtype):
    """torch's SDPA with the case's dense mask and additive bias; its inputs and closed-over arrays need grad."""
    mask_mod, score_mod, mb, hq, hkv, L, S, closed = _case(name, torch)
    leaves = {n: a.to(getattr(torch, np.dtype(dtype).name)).requires_grad_() for n, a in closed.items()}
    tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
    if score_mod is not None:  # rebuild the score_mod over the differentiable copies
        _, score_mod, *_ = _case_with(name, leaves)
    b, h, qi, ki = torch.arange(2)[:, None, None, None], torch.arange(hq)[None, :, None, None], \
        torch.arange(L)[:, None], torch.arange(S)[None, :]
    bias = score_mod(torch.zeros((), dtype=tq.dtype), b, h, qi, ki) if score_mod else torch.zeros((), dtype=tq.dtype)
    keep = mask_mod(b, h, qi, ki) if mask_mod else torch.ones((), dtype=torch.bool)
    attn = torch.where(keep, bias, -torch.inf).expand(2, hq, L, S)
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=attn, enable_gqa=hq != hkv)
    return out, (tq, tk, tv), leaves


def _case_with(name, leaves):
    """The torch case with its closed-over arrays replaced by `leaves` (tensors that need grad)."""
    slopes, table = leaves.get("slopes"), leaves.get("table")
    if name == "alibi_causal":
        return None, lambda s, b, h, q, kv: s + slopes[h] * (kv - q)
    return None, lambda s, b, h, q, kv: s + table[torch.clamp(q - kv, -20, 20) + 20]


@pytest.mark.parametrize("name", CASES)
def test_flex_attention_grad_matches_torch_sdpa(name, dtype):
    mask_mod, _, mb, hq, hkv, L, S, closed = _case(name, jnp)
    q, k, v = _inputs(hq, hkv, L, S, dtype)
    cot = randn(2, hq, L, 8, dtype=dtype, seed=4)
    closed = {n: a.astype(dtype) for n, a in closed.items()}
    bm = create_block_mask(mask_mod, mb, None, L, S, BLOCK_SIZE=BLOCK) if mask_mod else None

    def attend(q, k, v, closed):  # without a score_mod: the flash path (its output checked here too)
        slopes, table = closed.get("slopes"), closed.get("table")
        score_mod = {"alibi_causal": lambda s, b, h, qi, kv: s + slopes[h] * (kv - qi),
                     "relative_position": lambda s, b, h, qi, kv: s + table[jnp.clip(qi - kv, -20, 20) + 20]}.get(name)
        return flex_attention(q, k, v, score_mod, bm, enable_gqa=hq != hkv, kernel_options=_options(name))

    out, vjp = jax.vjp(jax.jit(attend), q, k, v, closed)
    grads = vjp(jnp.asarray(cot))
    tout, tins, leaves = _torch_reference(name, q, k, v, dtype)
    (tout * torch.from_numpy(cot)).sum().backward()
    tol = tolerance(dtype)
    assert_close(out, tout.detach(), f"{name} output", **tol)
    for what, ours, theirs in zip("qkv", grads[:3], tins):
        assert_close(ours, theirs.grad, f"{name} d{what}", **tol)
    for n, leaf in leaves.items():
        assert_close(grads[3][n], leaf.grad, f"{name} d{n}", **tol)


@pytest.mark.parametrize("with_score_mod", [True, False], ids=["score_mod", "mask_only"])
def test_flex_attention_skips_masked_blocks(with_score_mod):
    """The mask_mod runs only on partial blocks and the score_mod only on listed ones: never on a block
    the BlockMask leaves out (seen through a callback, called once per tile with the indices evaluated),
    in the forward and the backward; without a score_mod, on the flash-attention path."""
    L, seen = 96, {"mask": [], "score": []}

    def record(kind, q, kv):
        def note(q, kv):
            seen[kind].append((np.asarray(q), np.asarray(kv)))
            return np.zeros(np.broadcast_shapes(np.shape(q), np.shape(kv)), np.int32)

        return jax.pure_callback(note, jax.ShapeDtypeStruct((), np.int32), q, kv, vmap_method="broadcast_all")

    def causal(b, h, q, kv):
        return (q >= kv) & (record("mask", q, kv) == 0)

    def score_mod(s, b, h, q, kv):
        return s + record("score", q, kv)

    bm = create_block_mask(lambda b, h, q, kv: q >= kv, 1, 1, L, L, BLOCK_SIZE=BLOCK)
    bm = BlockMask.from_kv_blocks(bm.kv_num_blocks, bm.kv_indices, bm.full_kv_num_blocks, bm.full_kv_indices,
                                  BLOCK_SIZE=BLOCK, mask_mod=causal, seq_lengths=(L, L))
    q = randn(1, 1, L, 4)
    jax.jit(jax.grad(lambda q, bm: flex_attention(q, q, q, score_mod=score_mod if with_score_mod else None,
                                                  block_mask=bm, kernel_options={"BLOCK_M": BLOCK}).sum()))(q, bm)
    blocks = {}
    for kind, calls in seen.items():
        if not calls:
            continue
        pairs = np.concatenate([np.stack(np.broadcast_arrays(qi, kv), -1).reshape(-1, 2) for qi, kv in calls])
        blocks[kind] = {tuple(p) for p in pairs // BLOCK}
    assert blocks["mask"] == {(i, i) for i in range(3)}  # the diagonal blocks are the partial ones
    if with_score_mod:
        assert blocks["score"] == {(i, j) for i in range(3) for j in range(i + 1)}  # nothing above the diagonal


def test_flex_attention_jvp_vmap_and_noop(x64):
    q, k, v = (randn(2, 2, 40, 4, dtype=np.float64, seed=s) for s in range(3))
    tq = randn(2, 2, 40, 4, dtype=np.float64, seed=5)
    bm = create_block_mask(lambda b, h, qi, kv: qi >= kv, None, None, 40, 40, BLOCK_SIZE=16)
    noop = create_block_mask(noop_mask, None, None, 40, 40, BLOCK_SIZE=16)

    @jax.jit
    def run(q, k, v, tq, bm, noop):
        out, tangent = jax.jvp(lambda q: flex_attention(q, k, v, block_mask=bm), (q,), (tq,))
        ref = jax.jvp(lambda q: F.scaled_dot_product_attention(q, k, v, is_causal=True), (q,), (tq,))
        batched = jax.vmap(lambda q, k, v: flex_attention(q, k, v, block_mask=bm))(q[:, None], k[:, None], v[:, None])
        # no block mask and no score_mod: plain attention; an explicit noop_mask the same
        plain = (flex_attention(q, k, v), flex_attention(q, k, v, block_mask=noop),
                 F.scaled_dot_product_attention(q, k, v))
        return (out, tangent), ref, batched[:, 0], plain

    (out, tangent), (ref_out, ref_tangent), batched, (plain, noop_out, sdpa) = run(q, k, v, tq, bm, noop)
    for ours, theirs in ((out, ref_out), (tangent, ref_tangent), (batched, out), (plain, sdpa), (noop_out, sdpa)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    # or_masks: torch's create_mask of the same combination
    either = or_masks(lambda b, h, qi, kv: kv == 0, lambda b, h, qi, kv: qi >= kv)
    both = tflex.or_masks(lambda b, h, qi, kv: kv == 0, lambda b, h, qi, kv: qi >= kv)
    np.testing.assert_array_equal(create_mask(either, 1, 1, 9, 9),
                                  tflex.create_mask(both, 1, 1, 9, 9, device="cpu").numpy())


def test_flex_attention_long_sequence_tiles():
    """From 1024 rows on, flex_attention without a score_mod takes tiles of 256 rows over the default blocks of
    128 (each entry its own block's verdict: a causal diagonal tile holds partial, full and empty blocks); it
    computes what causal scaled_dot_product_attention does, forward and backward."""
    L = 1024
    q, k, v, cot = (randn(1, 2, L, 8, seed=s) for s in range(4))
    bm = create_block_mask(lambda b, h, qi, kv: qi >= kv, None, None, L, L)
    assert bm.BLOCK_SIZE == (128, 128) and _tile_rows("flex_attention", None, bm, True) == (256, 256)
    assert _tile_rows("flex_attention", None, bm, False) == (128, 128)  # the score_mod path: the blocks
    ours = jax.vjp(lambda q, k, v: flex_attention(q, k, v, block_mask=bm), q, k, v)
    ref = jax.vjp(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v)
    tol = tolerance(np.float32)
    assert_close(ours[0], ref[0], "output", **tol)
    for what, d, d_ref in zip("qkv", ours[1](cot), ref[1](cot)):
        assert_close(d, d_ref, f"d{what}", **tol)


def test_flex_attention_errors():
    q = jnp.ones((1, 4, 64, 8))
    bm = create_block_mask(lambda b, h, qi, kv: qi >= kv, None, None, 64, 64, BLOCK_SIZE=BLOCK)
    with pytest.raises(ValueError, match="flex_attention: query, key and value must be 4D"):
        flex_attention(q[0], q[0], q[0])
    with pytest.raises(ValueError, match="same number of heads but got Hq=4 and Hkv=2. Try setting enable_gqa"):
        flex_attention(q, q[:, :2], q[:, :2])
    with pytest.raises(ValueError, match="multiple of kv heads for GQA but got Hq=4 and Hkv=3"):
        flex_attention(q, q[:, :3], q[:, :3], enable_gqa=True)
    with pytest.raises(ValueError, match=r"block_mask was created for block_mask.shape=\(1, 1, 64, 64\) but got "
                                         r"q_len=32 and kv_len=32. .*larger"):
        flex_attention(q[:, :, :32], q[:, :, :32], q[:, :, :32], block_mask=bm)
    with pytest.raises(ValueError, match="smaller length"):
        flex_attention(jnp.ones((1, 4, 96, 8)), jnp.ones((1, 4, 96, 8)), jnp.ones((1, 4, 96, 8)), block_mask=bm)
    with pytest.raises(ValueError, match="same batch size"):
        flex_attention(jnp.ones((2, 4, 64, 8)), jnp.ones((3, 4, 64, 8)), jnp.ones((3, 4, 64, 8)))
    with pytest.raises(TypeError, match="same dtype"):
        flex_attention(q, q, q.astype(jnp.bfloat16))
    with pytest.raises(TypeError, match="score_mod must take 5 positional arguments"):
        flex_attention(q, q, q, score_mod=lambda s, b, h, qi: s)
    with pytest.raises(TypeError, match="create_block_mask requires a mask_mod"):
        create_block_mask(lambda s, b, h, qi, kv: s, None, None, 64, 64)
    with pytest.raises(TypeError, match="and_masks: All inputs should be callable"):
        and_masks(lambda b, h, qi, kv: True, 3)
    with pytest.raises(ValueError, match="Cannot specify both return_lse and return_aux"):
        flex_attention(q, q, q, return_lse=True, return_aux=AuxRequest(lse=True))
    with pytest.raises(ValueError, match=r"kernel_options BLOCK_M \(48\) must be a positive multiple"):
        flex_attention(q, q, q, block_mask=bm, kernel_options={"BLOCK_M": 48})
    with pytest.raises(ValueError, match=r"kernel_options BLOCK_N \(40\) must be a positive multiple.*key"):
        flex_attention(q, q, q, block_mask=bm, kernel_options={"BLOCK_N": 40})
    with pytest.raises(ValueError, match="does not broadcast to query's batch 1 and heads 4"):
        flex_attention(q, q, q, block_mask=create_block_mask(lambda b, h, qi, kv: qi >= kv, None, 3, 64, 64))


# -- sdpa_kernel and CausalBias -------------------------------------------------------------------------


def test_sdpa_kernel_picks_and_refuses(monkeypatch):
    q, k, v = (randn(1, 2, 40, 8, seed=s) for s in range(3))
    picked = []
    real = _sdpa._blockwise
    monkeypatch.setattr(_sdpa, "_blockwise", lambda *a, **kw: picked.append(kw["flash"]) or real(*a, **kw))
    dense = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # short: the dense (math) kernel
    assert picked == []
    for backend, flash in ((SDPBackend.FLASH_ATTENTION, True), (SDPBackend.EFFICIENT_ATTENTION, False)):
        with sdpa_kernel([backend]):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        np.testing.assert_allclose(out, dense, rtol=1e-5, atol=1e-6)
        assert picked.pop() is flash
    with sdpa_kernel([SDPBackend.MATH, SDPBackend.EFFICIENT_ATTENTION], set_priority=True):
        F.scaled_dot_product_attention(q, k, v)
    assert picked == []  # math first
    out = F.scaled_dot_product_attention(q, k, v, backends=SDPBackend.EFFICIENT_ATTENTION)
    assert picked.pop() is False
    refused = "No viable backend for scaled_dot_product_attention was found"
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION), pytest.raises(RuntimeError, match=refused):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((40, 40), bool))
    for backends in (SDPBackend.ERROR, [SDPBackend.CUDNN_ATTENTION, SDPBackend.OVERRIDEABLE]):
        with sdpa_kernel(backends), pytest.raises(ValueError, match=refused):
            F.scaled_dot_product_attention(q, k, v)
    with pytest.raises(TypeError, match="sdpa_kernel: Backend must be an instance of SDPBackend"):
        with sdpa_kernel("math"):
            pass
    assert _sdpa._backend_choice == [(_sdpa._ALL_BACKENDS, None)]  # restored after every context


@pytest.mark.parametrize("variant", ["upper_left", "lower_right"])
@pytest.mark.parametrize("sizes", [(5, 9), (7, 7)])
def test_causal_bias_matches_torch(variant, sizes, dtype):
    from torch.nn.attention import bias as tbias

    L, S = sizes
    q, k, v = randn(2, 2, L, 8, dtype=dtype, seed=0), randn(2, 2, S, 8, dtype=dtype, seed=1), \
        randn(2, 2, S, 8, dtype=dtype, seed=2)
    ours = {"upper_left": causal_upper_left, "lower_right": causal_lower_right}[variant](L, S)
    theirs = getattr(tbias, f"causal_{variant}")(L, S)
    np.testing.assert_array_equal(ours._materialize(), theirs._materialize().numpy())
    out = jax.jit(F.scaled_dot_product_attention)(q, k, v, ours)  # a pytree: a jit argument
    tout = torch.nn.functional.scaled_dot_product_attention(*(torch.from_numpy(x) for x in (q, k, v)), theirs)
    assert_close(out, tout, f"{variant} {sizes}", **tolerance(dtype))
    with pytest.raises(ValueError, match="CausalBias should not be used with causal=True"):
        F.scaled_dot_product_attention(q, k, v, ours, is_causal=True)


def test_causal_bias_errors():
    with pytest.raises(TypeError, match="CausalBias: variant must be a CausalVariant"):
        CausalBias("upper", 2, 3)
    with pytest.raises(ValueError, match="causal_upper_left only supports 2D"):
        causal_upper_left(2, 3, 4)
    with pytest.warns(UserWarning, match="Lower right causal bias will produce NaNs"):
        CausalBias(CausalVariant.LOWER_RIGHT, 5, 3)
