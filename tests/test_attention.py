"""Attention against torch 2.13: MultiheadAttention, scaled_dot_product_attention, multi_head_attention_forward."""

import functools
import math
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import assert_close, check_layer, randn, to_torch, tolerance
from torch.nn.attention import SDPBackend, sdpa_kernel

import funclayers as fl
import funclayers.functional as F
from funclayers import _sdpa as _attention  # the kernels of scaled_dot_product_attention

KEY = jax.random.PRNGKey(0)
E, H, L, S, N = 8, 2, 4, 5, 3


@pytest.fixture
def blockwise(monkeypatch):
    """Force the blockwise kernel with 3-wide tiles, so small shapes cover padding and several blocks."""
    monkeypatch.setattr(_attention, "_BLOCKWISE_MIN_SCORES", 1)
    monkeypatch.setattr(_attention, "_block_size", lambda length: 3)


@pytest.fixture
def split(monkeypatch):
    """The dense kernel in 12 slices wherever the leading dims allow: (2, 2) -> 2 x 2, (3, 2) -> 3 x 2."""
    monkeypatch.setattr(_attention, "_DENSE_SPLIT", 12)


def _mask(kind, shape, seed=0, full_row=None):
    """A bool (True = masked out, MHA's convention) or float mask; never a fully masked row unless asked."""
    rng = np.random.default_rng(seed)
    masked = rng.random(shape) < 0.3
    masked[..., 0] = False
    if full_row is not None:
        masked[full_row] = True
    if kind == "bool":
        return masked
    return np.where(masked, -np.inf, rng.standard_normal(shape)).astype(np.float32)


def _inputs(batch_first, unbatched, kdim=E, vdim=E):
    def make(length, dim, seed):
        if unbatched:
            return randn(length, dim, seed=seed)
        return randn(N, length, dim, seed=seed) if batch_first else randn(length, N, dim, seed=seed)
    return make(L, E, 0), make(S, kdim, 1), make(S, vdim, 2)


# pairwise sweep of constructor and forward options (not the full product)
MHA_CASES = [
    pytest.param(dict(), dict(), id="default"),
    pytest.param(dict(kdim=3, vdim=6), dict(need_weights=False), id="kdim_vdim-no_weights"),
    pytest.param(dict(add_bias_kv=True), dict(attn_mask="bool2"), id="bias_kv-bool_mask"),
    pytest.param(dict(add_zero_attn=True, batch_first=True), dict(key_padding_mask="bool", need_weights=False),
                 id="zero_attn-batch_first-padding_mask-sdpa"),
    pytest.param(dict(bias=False), dict(attn_mask="float3", average_attn_weights=False), id="no_bias-float3d-per_head"),
    pytest.param(dict(add_bias_kv=True, add_zero_attn=True, kdim=3), dict(attn_mask="float2", key_padding_mask="float"),
                 id="bias_kv-zero_attn-kdim-float_masks"),
    pytest.param(dict(batch_first=True, kdim=6), dict(attn_mask="bool3", key_padding_mask="bool", need_weights=False),
                 id="batch_first-kdim-bool3d-padding-sdpa"),
    pytest.param(dict(), dict(attn_mask="causal", is_causal=True, need_weights=False), id="is_causal-sdpa"),
    pytest.param(dict(batch_first=True), dict(attn_mask="causal", is_causal=True, key_padding_mask="bool"),
                 id="is_causal-padding-weights"),
    pytest.param(dict(), dict(unbatched=True, attn_mask="bool3", key_padding_mask="bool"), id="unbatched-bool3d"),
    pytest.param(dict(kdim=3, vdim=6), dict(unbatched=True, need_weights=False, attn_mask="float2"),
                 id="unbatched-kdim-sdpa"),
]


def _forward_kwargs(spec, unbatched, num_heads=H):
    kwargs = {}
    for name, value in spec.items():
        if name == "attn_mask":
            if value == "causal":
                kwargs[name] = np.triu(np.ones((L, S), bool), 1)
            else:
                kind, rank = value[:-1], int(value[-1])
                batch = num_heads if unbatched else N * num_heads
                kwargs[name] = _mask(kind, (L, S) if rank == 2 else (batch, L, S), seed=3)
        elif name == "key_padding_mask":
            kwargs[name] = _mask(value, (S,) if unbatched else (N, S), seed=4)
        else:
            kwargs[name] = value
    return kwargs


BLOCKWISE_IDS = ["zero_attn-batch_first-padding_mask-sdpa", "is_causal-sdpa", "batch_first-kdim-bool3d-padding-sdpa"]
KERNEL_CASES = [pytest.param(*case.values, "dense", id=case.id + "-dense") for case in MHA_CASES] + [
    pytest.param(*case.values, "blockwise", id=case.id + "-blockwise")
    for case in MHA_CASES if case.id in BLOCKWISE_IDS] + [
    pytest.param(*case.values, "split", id=case.id + "-split") for case in MHA_CASES
    if case.values[1].get("need_weights") is False]


@pytest.mark.parametrize("options, forward, kernel", KERNEL_CASES)
def test_multihead_attention_matches_torch(options, forward, kernel, dtype, request):
    if kernel != "dense":  # need_weights=False cases only: the weights are dense in both frameworks
        request.getfixturevalue(kernel)
    forward = dict(forward)
    unbatched = forward.pop("unbatched", False)
    torch.manual_seed(0)
    module = torch.nn.MultiheadAttention(E, H, **options)
    layer = fl.MultiheadAttention(E, H, **options)
    inputs = _inputs(options.get("batch_first", False), unbatched, options.get("kdim", E), options.get("vdim", E))
    kwargs = {name: value.astype(dtype) if isinstance(value, np.ndarray) and value.dtype.kind == "f" else value
              for name, value in _forward_kwargs(forward, unbatched).items()}
    check_layer(module, layer, inputs, dtype=dtype, kwargs=kwargs)


def test_multihead_attention_self_attention_packed_projection(dtype):
    """query is key is value: one packed in-projection (torch's fast self-attention branch)."""
    torch.manual_seed(0)
    module, layer = torch.nn.MultiheadAttention(E, H), fl.MultiheadAttention(E, H)
    x = randn(L, N, E).astype(dtype)
    params, state = fl.load_state_dict(layer, module.to(torch.float64 if dtype == np.float64 else torch.float32)
                                       .state_dict(), dtype=dtype)
    (out, weights), _ = layer.apply(params, state, jnp.asarray(x), jnp.asarray(x), jnp.asarray(x))
    xt = torch.from_numpy(x)
    t_out, t_weights = module(xt, xt, xt)
    np.testing.assert_allclose(out, t_out.detach().numpy(), **tolerance(dtype))
    np.testing.assert_allclose(weights, t_weights.detach().numpy(), **tolerance(dtype))


def test_multihead_attention_params_names_init_and_repr():
    for options in [dict(), dict(kdim=3, vdim=6, add_bias_kv=True), dict(bias=False)]:
        module, layer = torch.nn.MultiheadAttention(16, 4, **options), fl.MultiheadAttention(16, 4, **options)
        sd = fl.state_dict(*layer.init(KEY))
        assert list(sd) == list(module.state_dict())
        assert all(sd[k].shape == tuple(v.shape) for k, v in module.state_dict().items())
        assert repr(layer) == repr(module)
    torch.manual_seed(0)
    module = torch.nn.MultiheadAttention(256, 4, add_bias_kv=True)
    sd = fl.state_dict(*fl.MultiheadAttention(256, 4, add_bias_kv=True).init(KEY))
    expected_std = {"in_proj_weight": np.sqrt(6 / 1024 / 3), "out_proj.weight": 1 / np.sqrt(256 * 3),
                    "bias_k": np.sqrt(2 / 512)}  # xavier-uniform, Linear's kaiming(a=sqrt 5), xavier-normal
    for name, std in expected_std.items():
        rtol = 0.2 if name == "bias_k" else 0.03  # bias_k has only 256 draws
        np.testing.assert_allclose(sd[name].std(), std, rtol=rtol)
        np.testing.assert_allclose(module.state_dict()[name].numpy().std(), std, rtol=rtol)
    bound = np.sqrt(6 / (256 + 768))  # xavier_uniform on (3E, E)
    assert np.abs(sd["in_proj_weight"]).max() <= bound and np.abs(sd["in_proj_weight"]).max() > 0.99 * bound
    assert not sd["in_proj_bias"].any() and not sd["out_proj.bias"].any()


# -- fully masked rows ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["dense", "blockwise"])
def test_fully_masked_rows_match_torch(kernel, request):
    """torch: NaN with need_weights (softmax of -inf), 0 attention without (SDPA's safe softmax), zero grads."""
    if kernel == "blockwise":
        request.getfixturevalue("blockwise")
    torch.manual_seed(0)
    module, layer = torch.nn.MultiheadAttention(E, H), fl.MultiheadAttention(E, H)
    q, k, v = _inputs(False, False)
    mask = np.zeros((L, S), bool)
    mask[1] = True  # query 1 sees no key
    kpm = np.zeros((N, S), bool)
    kpm[2] = True  # batch element 2 sees no key at all
    for kwargs in [dict(attn_mask=mask), dict(key_padding_mask=kpm)]:
        check_layer(module, layer, [q, k, v], dtype=np.float32, kwargs=dict(kwargs, need_weights=False))
        out = check_layer(module, layer, [q, k, v], dtype=np.float32, grad=False, kwargs=kwargs)["out"]
        assert np.isnan(np.asarray(out[0])).any()
    # torch's fast path (eval, no grad, batch_first, even heads) gives NaN where its regular path gives 0:
    # we follow the regular path.
    module_bf = torch.nn.MultiheadAttention(E, H, batch_first=True).eval()
    x = torch.from_numpy(randn(N, L, E))
    with torch.no_grad():
        fast, _ = module_bf(x, x, x, key_padding_mask=torch.from_numpy(kpm[:, :L]), need_weights=False)
    regular, _ = module_bf(x.requires_grad_(), x, x, key_padding_mask=torch.from_numpy(kpm[:, :L]),
                           need_weights=False)
    assert torch.isnan(fast[2]).all() and not torch.isnan(regular[2]).any()


# -- scaled_dot_product_attention ----------------------------------------------------------------------------


def _sdpa_check(q, k, v, dtype, tol=None, **kwargs):
    q, k, v = (x.astype(dtype) for x in (q, k, v))
    kwargs = {key: (val.astype(dtype) if isinstance(val, np.ndarray) and val.dtype.kind == "f" else val)
              for key, val in kwargs.items()}
    tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
    t_kwargs = {key: torch.from_numpy(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **t_kwargs)
    ct = np.random.default_rng(9).standard_normal(t_out.shape).astype(dtype)
    t_out.backward(torch.from_numpy(ct))
    j_kwargs = {key: jnp.asarray(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
    out, vjp = jax.vjp(jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **j_kwargs)), q, k, v)
    grads = vjp(jnp.asarray(ct))
    tol = tol or tolerance(dtype)
    np.testing.assert_allclose(out, t_out.detach().numpy(), **tol, err_msg="output")
    for g, t in zip(grads, (tq, tk, tv)):
        np.testing.assert_allclose(g, t.grad.numpy(), **tol, err_msg="gradient")
    return out


SDPA_CASES = [
    pytest.param(dict(), id="plain"),
    pytest.param(dict(is_causal=True), id="causal"),
    pytest.param(dict(attn_mask="bool"), id="bool_mask"),
    pytest.param(dict(attn_mask="float", scale=0.3), id="float_mask-scale"),
    pytest.param(dict(attn_mask="bool_broadcast"), id="bool_mask_broadcast"),
    pytest.param(dict(attn_mask="bool_full_row"), id="fully_masked_row"),
    pytest.param(dict(enable_gqa=True, is_causal=True), id="gqa-causal"),
]


@pytest.mark.parametrize("kernel", ["dense", "blockwise", "split"])
@pytest.mark.parametrize("case", SDPA_CASES)
def test_sdpa_matches_torch(case, kernel, dtype, request):
    if kernel != "dense":
        request.getfixturevalue(kernel)
    kv_heads = 1 if case.get("enable_gqa") else 2
    q, k, v = randn(2, 2, 7, 4), randn(2, kv_heads, 8, 4, seed=1), randn(2, kv_heads, 8, 5, seed=2)
    kwargs = dict(case)
    mask = kwargs.pop("attn_mask", None)
    if mask is not None:
        shape = (1, 7, 8) if mask == "bool_broadcast" else (2, 2, 7, 8)
        keep = ~_mask("bool", shape, seed=5, full_row=(0, 1, 3) if mask == "bool_full_row" else None)
        kwargs["attn_mask"] = keep if mask.startswith("bool") else _mask("float", shape, seed=6)
    out = _sdpa_check(q, k, v, dtype, **kwargs)
    if mask == "bool_full_row":
        assert not np.asarray(out[0, 1, 3]).any()


def test_sdpa_long_causal_blockwise_matches_torch():
    """The default blockwise path (256-row tiles, padding, causal block skipping) at L = S = 600."""
    q, k, v = randn(1, 2, 600, 8), randn(1, 2, 600, 8, seed=1), randn(1, 2, 600, 8, seed=2)
    _sdpa_check(q, k, v, np.float32, tol=dict(rtol=1e-4, atol=2e-6), is_causal=True)


def test_flash_query_tiles_are_twice_the_key_tiles_where_no_padding_is_added():
    assert _attention._flash_query_block(1024, 256) == 512
    assert _attention._flash_query_block(768, 256) == 256  # L = 600: 512-row tiles would pad it to 1024
    assert _attention._flash_query_block(512, 256) == 256  # one query tile only
    assert _attention._flash_query_block(12, 3) == 6
    assert _attention._flash_query_block(9, 3) == 3
    assert _attention._flash_query_block(6, 3) == 3


def test_sdpa_long_causal_flash_512_row_query_tiles_match_torch(dtype):
    """The default flash path at L = 1024: 512-row query tiles over 256-row key tiles, causal and not,
    L != S (key tiles padded)."""
    q, k, v = randn(1, 2, 1024, 8), randn(1, 2, 1000, 8, seed=1), randn(1, 2, 1000, 8, seed=2)
    tol = dict(rtol=1e-4, atol=2e-6) if dtype == np.float32 else None
    _sdpa_check(q, k, v, dtype, tol=tol)
    _sdpa_check(q, k, v, dtype, tol=tol, is_causal=True)


def test_sdpa_fused_dispatch_on_cpu(monkeypatch):
    """The off-CPU dispatch to jax.nn.dot_product_attention, forced on CPU: same values, jvp and grad work."""
    monkeypatch.setattr(_attention, "_fused_applies", lambda *a: True)
    q, k, v = (jnp.asarray(randn(2, 2, 6, 4, seed=s)) for s in range(3))
    for causal in [False, True]:
        ours = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        ref = _attention._dense(q, k, v, None, causal, 0.5, 0.0, None)
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
        def fn(q, causal=causal):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        def ref_fn(q, causal=causal):
            return _attention._dense(q, k, v, None, causal, 0.5, 0.0, None)

        tangent = jax.jvp(fn, (q,), (jnp.ones_like(q),))[1]
        ref_t = jax.jvp(ref_fn, (q,), (jnp.ones_like(q),))[1]
        np.testing.assert_allclose(tangent, ref_t, rtol=1e-5, atol=1e-6)
        assert np.isfinite(jax.grad(lambda q, fn=fn: fn(q).sum())(q)).all()


# -- dropout ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["dense", "blockwise"])
def test_sdpa_dropout_rate_and_determinism(kernel, request):
    if kernel == "blockwise":
        request.getfixturevalue("blockwise")
    if kernel == "blockwise":
        _attention._block_size = lambda length: 16  # (monkeypatched by the fixture, restored after)
    s, p = 48, 0.3
    q = k = jnp.zeros((4, s, 4))
    v = jnp.broadcast_to(jnp.eye(s), (4, s, s))  # the output is the (dropped) weight matrix itself
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, rng=jax.random.PRNGKey(1))
    again = F.scaled_dot_product_attention(q, k, v, dropout_p=p, rng=jax.random.PRNGKey(1))
    other = F.scaled_dot_product_attention(q, k, v, dropout_p=p, rng=jax.random.PRNGKey(2))
    np.testing.assert_array_equal(out, again)
    assert not np.array_equal(out, other)
    out = np.asarray(out)
    zeros = (out == 0).mean()
    assert abs(zeros - p) < 0.025, zeros  # 9216 draws: std 0.005
    np.testing.assert_allclose(out[out != 0], 1 / (s * (1 - p)), rtol=1e-5)
    with pytest.raises(ValueError, match="needs `rng`"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=p)


def test_mha_dropout_in_training():
    layer = fl.MultiheadAttention(E, H, dropout=0.5)
    params, state = layer.init(KEY)
    x = jnp.asarray(randn(L, N, E))
    (_, w_eval), _ = layer.apply(params, state, x, x, x, average_attn_weights=False)
    run = jax.jit(lambda rng: layer.apply(params, state, x, x, x, average_attn_weights=False, rng=rng,
                                          training=True)[0])
    (out1, w1), (out2, _), (out3, _) = (run(jax.random.PRNGKey(seed)) for seed in (0, 0, 1))
    np.testing.assert_array_equal(out1, out2)
    assert not np.allclose(out1, out3)
    w1 = np.asarray(w1)
    kept = w1 != 0
    assert 0.35 < 1 - kept.mean() < 0.65
    np.testing.assert_allclose(w1[kept], 2 * np.asarray(w_eval)[kept], rtol=1e-5)  # torch returns dropped weights
    with pytest.raises(ValueError, match="needs `rng`"):
        layer.apply(params, state, x, x, x, training=True)


# -- forward mode and vmap -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["dense", "blockwise", "split"])
def test_mha_jvp_matches_torch_func_jvp(kernel, dtype, request):
    if kernel != "dense":
        request.getfixturevalue(kernel)
    torch.manual_seed(0)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    module = torch.nn.MultiheadAttention(E, H, batch_first=True).to(tdtype)
    layer = fl.MultiheadAttention(E, H, batch_first=True)
    params, state = fl.load_state_dict(layer, module.state_dict(), dtype=dtype)
    q, k, v = (randn(N, n, E, seed=i).astype(dtype) for i, n in enumerate((L, S, S)))
    tq, tk, tv = (randn(N, n, E, seed=10 + i).astype(dtype) for i, n in enumerate((L, S, S)))
    kpm = _mask("bool", (N, S), seed=4)
    for need_weights in [False, True]:
        def t_fn(q, k, v, need_weights=need_weights):
            return module(q, k, v, key_padding_mask=torch.from_numpy(kpm), need_weights=need_weights)[0]

        def j_fn(q, k, v, need_weights=need_weights):
            return layer.apply(params, state, q, k, v, key_padding_mask=kpm, need_weights=need_weights)[0][0]

        with sdpa_kernel(SDPBackend.MATH):  # torch's CPU flash kernel has no forward AD
            _, t_tan = torch.func.jvp(t_fn, tuple(map(torch.from_numpy, (q, k, v))),
                                      tuple(map(torch.from_numpy, (tq, tk, tv))))
        _, j_tan = jax.jit(lambda p, t: jax.jvp(j_fn, p, t))((q, k, v), (tq, tk, tv))
        np.testing.assert_allclose(j_tan, t_tan.detach().numpy(), **tolerance(dtype))


@pytest.mark.parametrize("head_dim, scale", [(64, None), (16, None), (8, 0.25), (8, None)])
def test_dense_power_of_two_scale_on_q_gives_the_same_floats(head_dim, scale):
    """The dense kernel multiplies q by a power-of-two scale instead of the scores: bit for bit the
    same output and gradients (scaling by 2^e is exact), float32; any other scale (1/sqrt(8)) stays
    on the scores."""
    q, k, v, ct = (jnp.asarray(randn(2, 3, 9, head_dim, seed=s)) for s in range(4))
    scale = 1 / math.sqrt(head_dim) if scale is None else scale

    def scores_scaled(q, k, scale):
        return jnp.einsum("...le,...se->...ls", q, k, precision="highest") * jnp.asarray(scale, q.dtype)

    def run(scores):
        with mock.patch.object(_attention, "_scaled_scores", scores):
            f = jax.jit(lambda q, k, v: _attention._dense(q, k, v, None, False, scale, 0.0, None))
            out, vjp = jax.vjp(f, q, k, v)
            return out, *vjp(ct)

    for got, want in zip(run(_attention._scaled_scores), run(scores_scaled)):
        np.testing.assert_array_equal(got, want)


def test_sdpa_jacfwd_hessian_and_vmap_of_grad():
    q, k, v = (jnp.asarray(randn(1, 5, 2, seed=s), jnp.float32) for s in range(3))

    def f(q):
        return jnp.sum(F.scaled_dot_product_attention(q, k, v, is_causal=True) ** 2)

    jac = jax.jit(jax.jacfwd(jax.grad(f)))(q)  # forward over reverse
    hess = jax.jit(jax.jacrev(jax.grad(f)))(q)  # reverse over reverse
    np.testing.assert_allclose(jac, hess, rtol=1e-4, atol=1e-5)
    per_example = jax.jit(jax.vmap(jax.grad(f)))(jnp.stack([q, 2 * q]))
    np.testing.assert_allclose(per_example[1], jax.grad(f)(2 * q), rtol=1e-5, atol=1e-6)


def test_mha_vmap_equals_batch():
    layer = fl.MultiheadAttention(E, H, batch_first=True)
    params, state = layer.init(KEY)
    x = jnp.asarray(randn(N, L, E))
    (batched, w), _ = layer.apply(params, state, x, x, x)
    (mapped, w_mapped) = jax.jit(jax.vmap(lambda x: layer.apply(params, state, x, x, x)[0]))(x)
    np.testing.assert_allclose(mapped, batched, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_mapped, w, rtol=1e-5, atol=1e-6)


# -- errors --------------------------------------------------------------------------------------------------


def test_attention_errors():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        fl.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="greater than 0"):
        fl.MultiheadAttention(0, 1)
    layer = fl.MultiheadAttention(E, H)
    params, state = layer.init(KEY)
    q, k, v = (jnp.asarray(x) for x in _inputs(False, False))
    with pytest.raises(ValueError, match=r"2D attn_mask is \(4, 4\), but should be \(4, 5\)"):
        layer.apply(params, state, q, k, v, attn_mask=np.zeros((L, L), bool))
    with pytest.raises(ValueError, match=r"3D attn_mask is \(2, 4, 5\), but should be \(6, 4, 5\)"):
        layer.apply(params, state, q, k, v, attn_mask=np.zeros((2, L, S), bool))
    with pytest.raises(ValueError, match=r"key_padding_mask of shape \(3, 5\)"):
        layer.apply(params, state, q, k, v, key_padding_mask=np.zeros((N, L), bool))
    with pytest.raises(ValueError, match="expected `key_padding_mask` to be `None` or 2-D"):
        layer.apply(params, state, q, k, v, key_padding_mask=np.zeros((S,), bool))
    with pytest.raises(ValueError, match="expected `key` and `value` to be 3-D"):
        layer.apply(params, state, q, k[:, 0], v)
    with pytest.raises(ValueError, match="unbatched 2D or batched 3D"):
        layer.apply(params, state, q[None], k[None], v[None])
    with pytest.raises(ValueError, match="expecting embedding dimension of 8, but got 6"):
        layer.apply(params, state, q[..., :6], k, v)
    with pytest.raises(ValueError, match="Need attn_mask if specifying the is_causal hint"):
        layer.apply(params, state, q, k, v, is_causal=True)
    with pytest.raises(TypeError, match="only bool and floating types of attn_mask"):
        layer.apply(params, state, q, k, v, attn_mask=np.zeros((L, S), np.int32))
    q, k, v = jnp.ones((N, L, E)), jnp.ones((N, S, E)), jnp.ones((N, S, E))
    with pytest.raises(ValueError, match="Explicit attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((L, S), bool), is_causal=True)
    with pytest.raises(ValueError, match=r"does not broadcast to the scores' shape \(3, 4, 5\)"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((2, L, S), bool))
    with pytest.raises(ValueError, match="same embedding size E"):
        F.scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="multiple of the key/value heads"):
        F.scaled_dot_product_attention(jnp.ones((1, 3, 4, 2)), jnp.ones((1, 2, 4, 2)), jnp.ones((1, 2, 4, 2)),
                                       enable_gqa=True)


@pytest.mark.parametrize("causal, L, S", [(True, 5, 8), (True, 8, 5), (False, 7, 4), (True, 12, 7), (False, 11, 10)])
def test_flash_kernel_every_mode_matches_the_dense_kernel(blockwise, x64, causal, L, S):
    """No mask, no dropout: the blockwise path is flash attention (a closed-form tangent and backward);
    values, grad, jvp, jvp of grad and vmap of grad equal the dense kernel's (torch-checked above) in
    float64, over padded key tiles of 3 and causal tiles skipped; query tiles of 6 where L pads to a
    multiple of 6 that is 12 or more (L = 12), else 3."""
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.standard_normal(s)) for s in [(2, 3, L, 4), (2, 3, S, 4), (2, 3, S, 5)])
    ct = jnp.asarray(rng.standard_normal((2, 3, L, 5)))
    tangents = tuple(jnp.asarray(rng.standard_normal(x.shape)) for x in (q, k, v))

    def flash(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=0.4)

    def dense(q, k, v):
        return _attention._dense(q, k, v, None, causal, 0.4, 0.0, None)

    @functools.partial(jax.jit, static_argnums=2)
    def every_mode(primals, tangents, kernel):
        def loss(q, k, v):
            return jnp.sum(jnp.sin(kernel(q, k, v)) * ct)

        def per_example(q, k, v):
            return jax.grad(lambda q: jnp.sum(jnp.sin(kernel(q, k, v))))(q)

        return (kernel(*primals), jax.grad(loss, (0, 1, 2))(*primals), jax.jvp(kernel, primals, tangents),
                jax.jvp(jax.grad(loss, (0, 1, 2)), primals, tangents), jax.vmap(per_example)(*primals))

    got = every_mode((q, k, v), tangents, flash)
    want = every_mode((q, k, v), tangents, dense)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("options", [
    dict(need_weights=True, static=False, add_zero_attn=False, masks=True),
    dict(need_weights=False, static=True, add_zero_attn=False, masks=False),
    dict(need_weights=True, static=True, add_zero_attn=True, masks=True),
], ids=["weights-masks", "static_kv-sdpa", "static_kv-zero_attn-masks"])
def test_multi_head_attention_forward_matches_torch(dtype, options):
    """The functional form in torch's (L, N, E) layout, static_k / static_v included: outputs, weights,
    and gradients w.r.t. the query, the static keys and values and the in-projection weight."""
    Lq, S, S_static, N, E, heads = 4, 5, 6, 2, 8, 2
    names = ["query", "key", "value", "in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias"]
    arrays = [randn(Lq, N, E, seed=0), randn(S, N, E, seed=1), randn(S, N, E, seed=2),
              randn(3 * E, E, seed=3, scale=0.3), randn(3 * E, seed=4), randn(E, E, seed=5, scale=0.3),
              randn(E, seed=6)]
    if options["static"]:
        names += ["static_k", "static_v"]
        arrays += [randn(N * heads, S_static, E // heads, seed=7), randn(N * heads, S_static, E // heads, seed=8)]
    arrays = [a.astype(dtype) for a in arrays]
    src = S_static if options["static"] else S  # add_zero_attn pads the masks itself
    kpm = np.zeros((N, src), bool)
    kpm[1, 2] = True
    attn_mask = _mask("float", (Lq, S), seed=9).astype(dtype) if options["masks"] else None
    kwargs = dict(embed_dim_to_check=E, num_heads=heads, bias_k=None, bias_v=None,
                  add_zero_attn=options["add_zero_attn"], dropout_p=0.0, training=False,
                  need_weights=options["need_weights"])
    if options["masks"] and not options["static"]:
        kwargs_masks = dict(key_padding_mask=kpm, attn_mask=attn_mask)
    elif options["masks"]:  # torch checks attn_mask against the key's length, then attends over the static keys
        kwargs_masks = dict(key_padding_mask=kpm)
    else:
        kwargs_masks = {}
    ct = randn(Lq, N, E, seed=10).astype(dtype)

    tensors = {n: to_torch(a, requires_grad=True) for n, a in zip(names, arrays)}
    out, weights = torch.nn.functional.multi_head_attention_forward(
        **tensors, **kwargs, **{k: to_torch(v) for k, v in kwargs_masks.items()})
    (out * to_torch(ct)).sum().backward()

    def ours(values):
        return F.multi_head_attention_forward(**dict(zip(names, values)), **kwargs, **kwargs_masks)

    (got, got_w), vjp = jax.vjp(ours, [jnp.asarray(a) for a in arrays])
    tol = tolerance(dtype)
    assert_close(got, out.detach().numpy(), "attn_output", **tol)
    assert_close(got_w, None if weights is None else weights.detach().numpy(), "attn_weights", **tol)
    (grads,) = vjp((jnp.asarray(ct), None if got_w is None else jnp.zeros_like(got_w)))
    for name, g in zip(names, grads):
        if name in ("query", "static_k", "static_v", "in_proj_weight"):
            assert_close(g, tensors[name].grad.numpy(), f"grad of {name}", **tol)
    if options["static"]:
        with pytest.raises(ValueError, match="expecting static_k of shape"):
            F.multi_head_attention_forward(**dict(zip(names[:-2], arrays[:-2])), static_k=arrays[-1][:, :, :2],
                                           **kwargs)
