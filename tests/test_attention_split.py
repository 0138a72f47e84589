"""The dense attention kernel in independent slices along its batch dims (`_sdpa._DENSE_SPLIT`,
`_split_count`): when it is taken, and that it computes what the unsplit kernel and torch do."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import randn, tolerance

import funclayers.functional as F
from funclayers import _sdpa


def _dots(fn, *args) -> int:
    return str(jax.make_jaxpr(fn)(*args)).count("dot_general")


def test_split_rule_and_the_split_path_is_taken(monkeypatch):
    """4 slices where a per-head product is 1M to 8M multiply-adds, 16 heads or more and 2 cores or more
    (the TransformerEncoderLayer benchmark's (16, 4, 128, 64)); none for MultiheadAttention(256, 8)'s
    0.5M per head, 8 heads, long sequences or one core."""
    monkeypatch.setattr(_sdpa, "_cpu_cores", lambda: 2)
    assert _sdpa._split_count((16, 4), 128, 128, 64) == 4
    assert _sdpa._split_count((8, 4), 256, 256, 64) == 4
    assert _sdpa._split_count((8, 8), 128, 128, 32) == 1
    assert _sdpa._split_count((2, 4), 128, 128, 64) == 1
    assert _sdpa._split_count((16, 4), 512, 512, 64) == 1
    q = jnp.zeros((4, 4, 128, 64))
    assert _dots(lambda q: F.scaled_dot_product_attention(q, q, q), q) == 8
    assert _dots(lambda q: F.scaled_dot_product_attention(q, q, q), q[:, :2]) == 2  # 8 heads
    assert _dots(lambda q: F.scaled_dot_product_attention(q, q, q), q[..., :32]) == 2  # 0.5M per head
    monkeypatch.setattr(_sdpa, "_cpu_cores", lambda: 1)
    assert _sdpa._split_count((16, 4), 128, 128, 64) == 1
    assert _dots(lambda q: F.scaled_dot_product_attention(q, q, q), q) == 2


def test_split_slices_follow_the_leading_dims():
    assert _sdpa._lead_splits((16, 4), 4) == [4, 1]
    assert _sdpa._lead_splits((3, 4), 4) == [1, 4]
    assert _sdpa._lead_splits((2, 6), 12) == [2, 6]
    assert _sdpa._lead_splits((3, 5), 4) == [1, 1]  # no divisor: unsplit


MASKS = ["none", "causal", "bool", "float_broadcast_heads", "bool_key_padding", "float_2d"]


def _case(mask, lead, L, S, dtype):
    q, k, v = (jnp.asarray(randn(*lead, n, 8, seed=i, dtype=dtype)) for i, n in enumerate((L, S, S)))
    rng = np.random.default_rng(3)
    shapes = {"bool": lead + (L, S), "float_broadcast_heads": (lead[0], 1, L, S),
              "bool_key_padding": (lead[0], 1, 1, S), "float_2d": (L, S)}
    kwargs = {"is_causal": True} if mask == "causal" else {}
    if mask in shapes:
        keep = rng.random(shapes[mask]) > 0.3
        keep[..., 0] = True
        kwargs["attn_mask"] = jnp.asarray(keep) if mask.startswith("bool") else \
            jnp.asarray(np.where(keep, rng.standard_normal(shapes[mask]), -np.inf).astype(dtype))
    return (q, k, v), kwargs


def _out_and_grads(split, args, kwargs, monkeypatch, ct_seed=7):
    monkeypatch.setattr(_sdpa, "_DENSE_SPLIT", split)
    f = jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs))
    out, vjp = jax.vjp(f, *args)
    return (out, *vjp(jnp.asarray(randn(*out.shape, seed=ct_seed, dtype=out.dtype))))


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("split", [4, 6])
def test_split_matches_the_unsplit_kernel(mask, split, x64, monkeypatch):
    """(3, 4) leading dims: 4 slices over the heads, 6 over both dims; float64. The outputs are bit for
    bit the same (the same products per slice); the gradients agree to rounding (XLA fuses the
    softmax backward differently around the slices)."""
    args, kwargs = _case(mask, (3, 4), 9, 11, np.float64)
    assert _dots(lambda *a: _sdpa._dense(*a, None, False, 0.5, 0.0, None), *args) == 2
    monkeypatch.setattr(_sdpa, "_DENSE_SPLIT", split)
    assert _dots(lambda *a: _sdpa._dense(*a, None, False, 0.5, 0.0, None), *args) == 2 * split
    want = _out_and_grads(1, args, kwargs, monkeypatch)
    got = _out_and_grads(split, args, kwargs, monkeypatch)
    np.testing.assert_array_equal(got[0], want[0])
    for g, w in zip(got[1:], want[1:]):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)


def test_split_dropout_draws_the_same_bits(x64, monkeypatch):
    """One draw over the whole (..., L, S) weights, sliced: the same dropped entries as unsplit, so the
    same values to rounding (float64); with v = I the output is the dropped weights themselves."""
    args, _ = _case("none", (4, 4), 16, 16, np.float64)
    kwargs = dict(dropout_p=0.4, rng=jax.random.PRNGKey(5))
    want = _out_and_grads(1, args, kwargs, monkeypatch)
    got = _out_and_grads(4, args, kwargs, monkeypatch)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)
    q, k = args[:2]
    v = jnp.broadcast_to(jnp.eye(16), (4, 4, 16, 16))
    dropped = [_out_and_grads(split, (q, k, v), kwargs, monkeypatch)[0] == 0 for split in (1, 4)]
    np.testing.assert_array_equal(dropped[0], dropped[1])
    assert 0.3 < float(jnp.mean(dropped[0])) < 0.5


@pytest.mark.parametrize("mask", ["none", "bool_key_padding"])
def test_split_at_the_benchmark_head_size_matches_torch(mask, dtype, monkeypatch):
    """(4, 4, 128, 64): the default rule's 4 slices (on 2 cores or more), against torch. (Not causal:
    there query 0 sees key 0 alone, its gradient is 0 in ours split or not, ~1e-6 in torch's float32.)"""
    monkeypatch.setattr(_sdpa, "_cpu_cores", lambda: 2)
    q, k, v = (randn(4, 4, 128, 64, seed=i, dtype=dtype) for i in range(3))
    kwargs = {}
    if mask == "bool_key_padding":
        keep = np.random.default_rng(3).random((4, 1, 1, 128)) > 0.3
        keep[..., 0] = True
        kwargs["attn_mask"] = keep
    assert _dots(lambda *a: F.scaled_dot_product_attention(*a, **kwargs), q, k, v) == 8
    tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
    t_kwargs = {n: torch.from_numpy(x) if isinstance(x, np.ndarray) else x for n, x in kwargs.items()}
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **t_kwargs)
    ct = randn(*t_out.shape, seed=9, dtype=dtype)
    t_out.backward(torch.from_numpy(ct))
    j_kwargs = {n: jnp.asarray(x) if isinstance(x, np.ndarray) else x for n, x in kwargs.items()}
    out, vjp = jax.vjp(jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **j_kwargs)), q, k, v)
    tol = tolerance(dtype)
    np.testing.assert_allclose(out, t_out.detach().numpy(), **tol, err_msg="output")
    for g, t in zip(vjp(jnp.asarray(ct)), (tq, tk, tv)):
        np.testing.assert_allclose(g, t.grad.numpy(), **tol, err_msg="gradient")


def test_split_jvp_jacfwd_and_vmap_of_grad(x64, monkeypatch):
    """Forward mode, forward-over-reverse and vmap of grad through the split kernel equal the unsplit
    kernel's (float64)."""
    (q, k, v), kwargs = _case("bool", (2, 4), 6, 7, np.float64)
    tq, tk, tv = (jnp.asarray(randn(*x.shape, seed=20 + i, dtype=np.float64)) for i, x in enumerate((q, k, v)))

    def loss(q, k, v):
        return jnp.sum(F.scaled_dot_product_attention(q, k, v, **kwargs) ** 2)

    def transforms(split):
        monkeypatch.setattr(_sdpa, "_DENSE_SPLIT", split)
        tangent = jax.jit(lambda p, t: jax.jvp(lambda *a: F.scaled_dot_product_attention(*a, **kwargs), p, t)[1])(
            (q, k, v), (tq, tk, tv))
        hvp = jax.jit(lambda q: jax.jvp(lambda q: jax.grad(loss)(q, k, v), (q,), (tq,))[1])(q)
        per_example = jax.jit(jax.vmap(jax.grad(loss), in_axes=(0, None, None)))(jnp.stack([q, 2 * q]), k, v)
        return tangent, hvp, per_example

    monkeypatch.setattr(_sdpa, "_DENSE_SPLIT", 8)
    assert _dots(lambda q: jax.vmap(jax.grad(loss), in_axes=(0, None, None))(q, k, v), jnp.stack([q, q])) >= 4 * 8
    for got, want in zip(transforms(8), transforms(1)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
