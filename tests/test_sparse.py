"""Sparse family against torch 2.13: Embedding, EmbeddingBag, and their functional ops."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from oracle import check_jit_grad_vmap, check_layer, randn, tolerance
from torch.func import jvp as torch_jvp

import funclayers as fl
import funclayers.functional as F

KEY = jax.random.PRNGKey(0)


def indices(*shape, high=10, seed=0):
    return np.random.default_rng(seed).integers(0, high, shape).astype(np.int64)


def _module(cls, weight, **kwargs):
    """A torch module whose weight is `weight` (so rows with large norms exist for max_norm)."""
    torch.manual_seed(0)
    module = cls(*weight.shape, **kwargs)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.array(weight)))
    return module


# -- Embedding -------------------------------------------------------------------------------------------


EMBEDDING_OPTIONS = [
    pytest.param({}, id="plain"),
    pytest.param(dict(padding_idx=3), id="padding_idx"),
    pytest.param(dict(padding_idx=-2), id="negative_padding_idx"),
    pytest.param(dict(scale_grad_by_freq=True), id="scale_grad_by_freq"),
    pytest.param(dict(scale_grad_by_freq=True, padding_idx=0), id="scale_grad_padding"),
    pytest.param(dict(padding_idx=0, sparse=True), id="padding_sparse"),
    pytest.param(dict(max_norm=1.5), id="max_norm"),
    pytest.param(dict(max_norm=2.0, norm_type=1.0, scale_grad_by_freq=True), id="max_norm_l1_scale_grad"),
    pytest.param(dict(max_norm=1.0, norm_type=float("inf"), padding_idx=2), id="max_norm_inf_padding"),
    pytest.param(dict(max_norm=1.0, norm_type=3.0), id="max_norm_p3"),
]


SHAPES = [(4, 5), (7,), (), (2, 3, 4)]  # batched, unbatched, a 0-d index, two batch dims


@pytest.mark.parametrize("kwargs,shape", [pytest.param(p.values[0], SHAPES[i % len(SHAPES)],
                                                       id=f"{p.id}-{SHAPES[i % len(SHAPES)]}")
                                          for i, p in enumerate(EMBEDDING_OPTIONS)])
def test_embedding_matches_torch(kwargs, shape, dtype):
    weight = randn(10, 4, seed=1, scale=1.5)
    # torch's sparse=True gradient is a sparse tensor of the same values; ours is dense
    module = _module(torch.nn.Embedding, weight, **{k: v for k, v in kwargs.items() if k != "sparse"})
    idx = indices(*shape)
    check_layer(module, fl.Embedding(10, 4, **kwargs), [idx], dtype=dtype)
    if "max_norm" in kwargs:  # torch renormalised its weight in place; embedding_renorm gives that weight
        renormed = F.embedding_renorm(jnp.asarray(weight, dtype), idx, kwargs["max_norm"],
                                      kwargs.get("norm_type", 2.0))
        np.testing.assert_allclose(renormed, module.weight.detach().numpy(), **tolerance(dtype))
        assert np.any(np.asarray(renormed) != weight.astype(dtype))  # the case renormalises something


def test_embedding_padding_row_gets_no_gradient_and_starts_at_zero():
    layer = fl.Embedding(6, 3, padding_idx=-1)
    params, state = layer.init(KEY)
    np.testing.assert_array_equal(params["weight"][5], np.zeros(3))
    assert np.all(np.asarray(params["weight"][:5]) != 0)
    grad = jax.grad(lambda p: jnp.sum(layer.apply(p, state, jnp.array([5, 1, 5]))[0]))(params)
    np.testing.assert_array_equal(grad["weight"][5], np.zeros(3))
    np.testing.assert_array_equal(grad["weight"][1], np.ones(3))


def test_embedding_repr_names_and_init_match_torch():
    for kwargs in [{}, dict(padding_idx=-1, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True, sparse=True)]:
        layer, module = fl.Embedding(10, 3, **kwargs), torch.nn.Embedding(10, 3, **kwargs)
        assert repr(layer) == repr(module)
        params, state = layer.init(KEY)
        assert list(fl.state_dict(params, state)) == list(module.state_dict())
    params, _ = fl.Embedding(1000, 64).init(KEY)
    w = np.asarray(params["weight"])
    assert w.dtype == np.float32 and abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01  # torch's N(0, 1)


def test_embedding_weight_argument_and_dtype(x64):
    weight = randn(5, 2, dtype=np.float64)
    params, _ = fl.Embedding(5, 2, _weight=weight).init(KEY)
    np.testing.assert_array_equal(params["weight"], weight)
    params, _ = fl.Embedding(5, 2, _weight=torch.from_numpy(weight), dtype=jnp.float32).init(KEY)
    assert params["weight"].dtype == jnp.float32
    params, _ = fl.Embedding(5, 2, dtype=jnp.float64, device="cpu").init(KEY)
    assert params["weight"].dtype == jnp.float64


@pytest.mark.parametrize("freeze", [True, False])
def test_embedding_from_pretrained(freeze):
    weight = randn(6, 3, seed=2)
    module = torch.nn.Embedding.from_pretrained(torch.from_numpy(weight), freeze=freeze, padding_idx=1)
    layer = fl.Embedding.from_pretrained(weight, freeze=freeze, padding_idx=1)
    assert repr(layer) == repr(module)
    params, state = layer.init(KEY)
    frozen, trained = (state, params) if freeze else (params, state)
    assert list(frozen) == ["weight"] and trained == {}
    np.testing.assert_array_equal(frozen["weight"], weight)  # the padding row is not zeroed (torch)
    assert list(fl.state_dict(params, state)) == list(module.state_dict())
    idx = np.array([[0, 1, 5], [2, 2, 4]])
    out, _ = layer.apply(params, state, idx)
    np.testing.assert_array_equal(out, module(torch.from_numpy(idx)).detach().numpy())
    # frozen: an optax step (with weight decay) leaves the weight alone; not frozen: it moves
    opt = optax.adamw(0.1, weight_decay=0.1)

    def loss(p):
        return jnp.sum(layer.apply(p, state, idx)[0] ** 2)

    updates, _ = opt.update(jax.grad(loss)(params), opt.init(params), params)
    new_params = optax.apply_updates(params, updates)
    assert module.weight.requires_grad is not freeze
    if freeze:
        assert new_params == {}
    else:
        assert not np.allclose(new_params["weight"], weight)
    # the state_dict round trip puts the weight back where it lives
    p2, s2 = fl.load_state_dict(layer, {"weight": module.weight})
    assert (list(p2), list(s2)) == (list(params), list(state))


def test_embedding_from_pretrained_checks_rank():
    with pytest.raises(ValueError, match="Embeddings parameter is expected to be 2-dimensional"):
        fl.Embedding.from_pretrained(np.ones(3))
    with pytest.raises(ValueError, match="Embeddings parameter is expected to be 2-dimensional"):
        fl.EmbeddingBag.from_pretrained(np.ones((2, 3, 4)))


def test_embedding_freeze_constructor_argument():
    params, state = fl.Embedding(4, 2, _freeze=True).init(KEY)
    assert params == {} and state["weight"].shape == (4, 2)


@pytest.mark.parametrize("args,kwargs,match", [
    pytest.param((10, 3), dict(padding_idx=10), "Padding_idx must be within num_embeddings", id="padding_high"),
    pytest.param((10, 3), dict(padding_idx=-11), "Padding_idx must be within num_embeddings", id="padding_low"),
    pytest.param((10, 3), dict(_weight=np.ones((3, 3))), "Shape of weight does not match", id="weight_shape"),
    pytest.param((-1, 3), {}, "num_embeddings must be a non-negative int", id="negative_size"),
])
def test_embedding_rejects_bad_configuration(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fl.Embedding(*args, **kwargs)
    with pytest.raises((AssertionError, RuntimeError)):
        torch.nn.Embedding(*args, **{k: torch.as_tensor(v) if k == "_weight" else v for k, v in kwargs.items()})


@pytest.mark.parametrize("idx", [pytest.param([1, 10], id="too_large"), pytest.param([-1, 2], id="negative")])
def test_embedding_out_of_range_indices(idx):
    layer = fl.Embedding(10, 3)
    params, state = layer.init(KEY)
    with pytest.raises(ValueError, match=r"index out of range in self: input holds \[(10|-1)\]"):
        layer.apply(params, state, np.array(idx))
    with pytest.raises(IndexError):  # what torch raises, too
        layer.apply(params, state, np.array(idx))
    with pytest.raises(IndexError, match="index out of range in self"):
        torch.nn.Embedding(10, 3)(torch.tensor(idx))
    # under jit the indices are traced: the bad entry's row is NaN and gets no gradient
    out = jax.jit(lambda i: layer.apply(params, state, i)[0])(jnp.array(idx))
    bad = 0 if idx[0] in (10, -1) else 1
    assert np.all(np.isnan(out[bad])) and np.all(np.isfinite(out[1 - bad]))
    grad = jax.jit(jax.grad(lambda p, i: jnp.sum(layer.apply(p, state, i)[0])))(params, jnp.array(idx))
    assert np.all(np.isfinite(grad["weight"])) and float(jnp.sum(grad["weight"])) == 3.0


def test_embedding_rejects_non_integer_input_and_bad_weight():
    layer = fl.Embedding(10, 3)
    params, state = layer.init(KEY)
    with pytest.raises(TypeError, match="expects integer indices as input, got dtype float32"):
        layer.apply(params, state, jnp.ones(3))
    with pytest.raises(ValueError, match=r"weight has to be a 2D \(num_embeddings, embedding_dim\) array"):
        F.embedding(jnp.array([1]), jnp.ones(10))


def test_embedding_jit_grad_vmap():
    layer = fl.Embedding(10, 3, padding_idx=0, scale_grad_by_freq=True, max_norm=1.0)
    check_jit_grad_vmap(layer, indices(4, 5))
    params, state = layer.init(KEY)
    # vmap over the weight, too (a batch of tables)
    weights = jnp.stack([params["weight"], 2 * params["weight"]])
    idx = jnp.asarray(indices(3))
    out = jax.vmap(lambda w: layer.apply({"weight": w}, state, idx)[0])(weights)
    for k in range(2):
        np.testing.assert_allclose(out[k], layer.apply({"weight": weights[k]}, state, idx)[0], rtol=1e-6)


@pytest.mark.parametrize("kwargs", [pytest.param({}, id="plain"), pytest.param(dict(max_norm=1.0), id="max_norm"),
                                    pytest.param(dict(padding_idx=2, scale_grad_by_freq=True), id="padding_scale")])
def test_embedding_jvp_matches_torch(kwargs, dtype):
    """Forward mode. torch's embedding jvp is the plain lookup of the tangent (derivatives.yaml:
    auto_linear), even for padding_idx / scale_grad_by_freq, where it disagrees with torch's own
    backward. Ours is the linear map whose transpose is torch's backward, so there it equals torch's
    jvp times each position's gradient factor (0 at padding, 1/frequency)."""
    weight, tangent = randn(10, 3, dtype=dtype, seed=1, scale=1.5), randn(10, 3, dtype=dtype, seed=2)
    idx = np.array([[1, 2, 2], [0, 1, 9]])
    _, ours = jax.jvp(lambda w: F.embedding(idx, w, **kwargs), (jnp.asarray(weight),), (jnp.asarray(tangent),))
    _, theirs = torch_jvp(lambda w: torch.nn.functional.embedding(torch.from_numpy(idx), w, **kwargs),
                          (torch.from_numpy(weight),), (torch.from_numpy(tangent),))
    factor = np.ones(idx.shape, dtype)
    if kwargs.get("scale_grad_by_freq"):
        factor = factor / np.vectorize(lambda v: np.sum(idx == v))(idx)
    if "padding_idx" in kwargs:
        factor[idx == kwargs["padding_idx"]] = 0
    np.testing.assert_allclose(ours, theirs.numpy() * factor[..., None], **tolerance(dtype))
    # and the jvp is the transpose of the gradient torch computes: <ct, J t> == <J^T ct, t>
    ct = randn(*idx.shape, 3, dtype=dtype, seed=3)
    w_t = torch.from_numpy(weight).requires_grad_(True)
    (torch.nn.functional.embedding(torch.from_numpy(idx), w_t, **kwargs) * torch.from_numpy(ct)).sum().backward()
    np.testing.assert_allclose(np.sum(np.asarray(ours) * ct), np.sum(w_t.grad.numpy() * tangent), **tolerance(dtype))


def test_embedding_higher_order_transformations(x64):
    layer = fl.Embedding(6, 2, max_norm=1.0, padding_idx=1)
    params, state = layer.init(KEY)
    idx = jnp.array([0, 1, 3, 3])

    def f(w):
        return jnp.sum(jnp.sin(layer.apply({"weight": w}, state, idx)[0]))

    w = params["weight"].astype(jnp.float64)

    @jax.jit
    def derivatives(w):
        _, f_lin = jax.linearize(f, w)
        return (jax.jacfwd(f)(w), jax.jacrev(f)(w), jax.hessian(f)(w), jax.jacfwd(jax.jacrev(f))(w),
                f_lin(jnp.ones_like(w)), jnp.sum(jax.grad(f)(w)))

    fwd, rev, hess, fwd_rev, lin, total = derivatives(w)
    np.testing.assert_allclose(fwd, rev, rtol=1e-12)
    np.testing.assert_allclose(hess, fwd_rev, rtol=1e-12)
    np.testing.assert_allclose(lin, total, rtol=1e-12)
    assert np.any(np.asarray(fwd)[1] == 0) and np.any(np.asarray(fwd) != 0)  # the padding row has none


# -- EmbeddingBag ----------------------------------------------------------------------------------------


BAG_OPTIONS = [  # pairwise over mode x padding_idx x max_norm x scale_grad_by_freq
    pytest.param(dict(mode="sum"), id="sum"),
    pytest.param(dict(mode="mean"), id="mean"),
    pytest.param(dict(mode="max"), id="max"),
    pytest.param(dict(mode="sum", padding_idx=2, scale_grad_by_freq=True), id="sum_padding_scale_grad"),
    pytest.param(dict(mode="mean", padding_idx=-1, max_norm=1.0), id="mean_negative_padding_max_norm"),
    pytest.param(dict(mode="max", padding_idx=0, max_norm=2.0, norm_type=1.0), id="max_padding_max_norm_l1"),
    pytest.param(dict(mode="mean", scale_grad_by_freq=True, sparse=True), id="mean_scale_grad_sparse"),
    pytest.param(dict(mode="sum", max_norm=1.0), id="sum_max_norm"),
]


class _BagByEmbedding(torch.nn.Module):
    """torch's EmbeddingBag on 2-D input, built from F.embedding and a masked sum / mean.

    The reference for scale_grad_by_freq: torch's CPU embedding_bag backward divides each index's
    gradient by counts[sorted_indices[k]], k being the index's rank among the distinct indices
    instead of its first position among the sorted ones (EmbeddingBag.cpp,
    _embedding_bag_dense_backward_cpu_sum_mean), so every index but the smallest gets some other
    index's frequency (see test_torch_embedding_bag_scale_grad_by_freq_bug). We follow the
    documented rule, which torch's Embedding implements: divide by the index's own frequency.
    """

    def __init__(self, weight, mode, padding_idx=None, **kwargs):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.from_numpy(weight))
        self.mode, self.padding_idx, self.kwargs = mode, padding_idx, kwargs

    def forward(self, input):
        rows = torch.nn.functional.embedding(input, self.weight, padding_idx=self.padding_idx, **self.kwargs)
        keep = torch.ones_like(input, dtype=rows.dtype) if self.padding_idx is None else \
            (input != self.padding_idx % self.weight.shape[0]).to(rows.dtype)
        total = (rows * keep[..., None]).sum(1)
        return total if self.mode == "sum" else total / keep.sum(1).clamp(min=1)[:, None]


def test_torch_embedding_bag_scale_grad_by_freq_bug():
    """What torch's CPU kernel does (and we do not): index 2 gets index 1's frequency."""
    w = torch.ones(5, 1, requires_grad=True)
    out = torch.nn.functional.embedding_bag(torch.tensor([[1, 1, 2]]), w, mode="sum", scale_grad_by_freq=True)
    out.sum().backward()
    np.testing.assert_allclose(w.grad.ravel().numpy(), [0, 1, 0.5, 0, 0])
    ours = jax.grad(lambda w: jnp.sum(F.embedding_bag(np.array([[1, 1, 2]]), w, mode="sum",
                                                      scale_grad_by_freq=True)))(jnp.ones((5, 1)))
    np.testing.assert_allclose(ours.ravel(), [0, 1, 1, 0, 0])  # the documented rule, as torch's Embedding


@pytest.mark.parametrize("kwargs", BAG_OPTIONS)
def test_embedding_bag_2d_matches_torch(kwargs, dtype):
    weight = randn(10, 4, seed=1, scale=1.5)
    module = _module(torch.nn.EmbeddingBag, weight, **kwargs)
    if kwargs.get("scale_grad_by_freq"):
        module = _BagByEmbedding(weight, **{k: v for k, v in kwargs.items() if k != "sparse"})
    idx = indices(5, 6)
    idx[1] = 2  # a bag of the same index (all padding when padding_idx=2)
    idx[3, :3] = 9
    check_layer(module, fl.EmbeddingBag(10, 4, **kwargs), [idx], dtype=dtype)


OFFSETS = [
    pytest.param([0, 3, 3, 7], False, id="empty_bag"),
    pytest.param([0, 2, 5, 5, 12], True, id="include_last_offset"),
    pytest.param([0, 0, 11], False, id="empty_first_bag"),
]


@pytest.mark.parametrize("kwargs,offsets,include_last_offset", [
    pytest.param(p.values[0], *OFFSETS[i % 2].values, id=f"{p.id}-{OFFSETS[i % 2].id}")
    for i, p in enumerate(p for p in BAG_OPTIONS if "scale_grad" not in p.id)])
def test_embedding_bag_offsets_match_torch(kwargs, offsets, include_last_offset, dtype):
    weight = randn(10, 4, seed=1, scale=1.5)
    kwargs = dict(kwargs, include_last_offset=include_last_offset)
    module = _module(torch.nn.EmbeddingBag, weight, **kwargs)
    idx = indices(12, seed=3)
    idx[3:7] = 2
    layer = fl.EmbeddingBag(10, 4, **kwargs)
    offsets = np.array(offsets)
    # offsets as a concrete positional input, and as a traced keyword input (jit)
    check_layer(module, layer, [idx, offsets], dtype=dtype)
    check_layer(module, layer, [idx], dtype=dtype, kwargs=dict(offsets=offsets))


@pytest.mark.parametrize("offsets,include_last_offset", OFFSETS)
def test_embedding_bag_per_sample_weights_match_torch(offsets, include_last_offset, dtype):
    weight = randn(10, 4, seed=1)
    module = _module(torch.nn.EmbeddingBag, weight, mode="sum", padding_idx=2,
                     include_last_offset=include_last_offset)
    layer = fl.EmbeddingBag(10, 4, mode="sum", padding_idx=2, include_last_offset=include_last_offset)
    idx = indices(12, seed=3)
    idx[0] = 2
    # per_sample_weights get gradients too (the oracle differentiates every floating input)
    check_layer(module, layer, [idx, np.array(offsets), randn(12, seed=5)], dtype=dtype)
    module2 = _module(torch.nn.EmbeddingBag, weight, mode="sum")
    check_layer(module2, fl.EmbeddingBag(10, 4, mode="sum"), [indices(3, 4), None, randn(3, 4, seed=5)],
                dtype=dtype)


def test_embedding_bag_empty_input_and_bags(dtype):
    weight = randn(10, 4, seed=1)
    for mode in ("sum", "mean", "max"):
        module = _module(torch.nn.EmbeddingBag, weight, mode=mode)
        layer = fl.EmbeddingBag(10, 4, mode=mode)
        check_layer(module, layer, [np.zeros(0, np.int64), np.array([0, 0])], dtype=dtype)
        out, _ = layer.apply(*layer.init(KEY), indices(3, 0))  # torch fails here (arange with step 0)
        np.testing.assert_array_equal(out, np.zeros((3, 4)))
        # no offsets at all: torch's forward gives (0, 4), its backward reads out of bounds (garbage
        # gradient in sum mode, a segfault in mean mode), so ours is checked alone: no bags, no gradient
        params, state = layer.init(KEY)
        grad = jax.grad(lambda p, layer=layer, state=state: jnp.sum(
            layer.apply(p, state, indices(4), np.zeros(0, np.int64))[0]))(params)
        np.testing.assert_array_equal(grad["weight"], np.zeros((10, 4)))


def test_embedding_bag_repr_and_from_pretrained():
    for kwargs in [{}, dict(max_norm=2.0, norm_type=1.0, scale_grad_by_freq=True, mode="sum", padding_idx=-1)]:
        assert repr(fl.EmbeddingBag(10, 3, **kwargs)) == repr(torch.nn.EmbeddingBag(10, 3, **kwargs))
    weight = randn(6, 3, seed=2)
    for freeze in (True, False):
        module = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(weight), freeze=freeze, mode="max")
        layer = fl.EmbeddingBag.from_pretrained(weight, freeze=freeze, mode="max")
        params, state = layer.init(KEY)
        assert ("weight" in state) is freeze and ("weight" in params) is not freeze
        idx = np.array([[0, 1, 5], [2, 2, 4]])
        np.testing.assert_array_equal(layer.apply(params, state, idx)[0],
                                      module(torch.from_numpy(idx)).detach().numpy())
    params, state = fl.EmbeddingBag(8, 2, padding_idx=3).init(KEY)
    np.testing.assert_array_equal(params["weight"][3], np.zeros(2))


@pytest.mark.parametrize("call,exc,match", [
    pytest.param(lambda w: F.embedding_bag(np.array([[1, 2]]), w, np.array([0])), ValueError,
                 "if input is 2D, then offsets has to be None", id="2d_with_offsets"),
    pytest.param(lambda w: F.embedding_bag(np.array([1, 2]), w), ValueError,
                 "offsets has to be a 1D array but got None", id="1d_without_offsets"),
    pytest.param(lambda w: F.embedding_bag(np.array([1, 2]), w, np.array([[0]])), ValueError,
                 "offsets has to be a 1D array", id="2d_offsets"),
    pytest.param(lambda w: F.embedding_bag(np.ones((1, 1, 2), int), w), ValueError,
                 "input has to be 1D or 2D", id="3d_input"),
    pytest.param(lambda w: F.embedding_bag(np.array([[1, 2]]), w, mode="min"), ValueError,
                 "mode has to be one of sum, mean or max", id="bad_mode"),
    pytest.param(lambda w: F.embedding_bag(np.array([[1, 2]]), w, mode="mean", per_sample_weights=np.ones((1, 2))),
                 NotImplementedError, "per_sample_weights is only supported for mode='sum'", id="psw_mean"),
    pytest.param(lambda w: F.embedding_bag(np.array([[1, 2]]), w, mode="sum", per_sample_weights=np.ones(2)),
                 ValueError, r"If per_sample_weights \(\(2,\)\) is not None, then it must have the same shape",
                 id="psw_shape"),
    pytest.param(lambda w: F.embedding_bag(np.array([[1, 2]]), w, mode="max", scale_grad_by_freq=True),
                 ValueError, "max mode does not support scaling the gradient by the frequency", id="max_scale"),
    pytest.param(lambda w: F.embedding_bag(np.array([[1, 2]]), w, mode="max", sparse=True),
                 ValueError, "max mode does not support sparse weights", id="max_sparse"),
    pytest.param(lambda w: F.embedding_bag(np.array([1, 2, 3]), w, np.array([1, 2])), RuntimeError,
                 "offsets\\[0\\] has to be 0", id="offsets_start"),
    pytest.param(lambda w: F.embedding_bag(np.array([1, 2, 3]), w, np.array([0, 5])), RuntimeError,
                 "offsets\\[-1\\] can not be greater than input's length 3 but got offsets\\[-1\\] of 5",
                 id="offsets_end"),
    pytest.param(lambda w: F.embedding_bag(np.array([[1, 12]]), w), IndexError, "index out of range", id="index"),
    pytest.param(lambda w: F.embedding_bag(np.array([[1, 9]]), w, padding_idx=10), RuntimeError,
                 "padding_idx must be within the number of embeddings, -10 through 9, but got 10", id="padding"),
    pytest.param(lambda w: F.embedding_bag(np.array([[1, 9]]), w[0]), ValueError, "weight has to be a 2D",
                 id="1d_weight"),
])
def test_embedding_bag_errors_match_torch(call, exc, match):
    weight = np.ones((10, 3), np.float32)
    with pytest.raises(exc, match=match):
        call(weight)
    with pytest.raises(ValueError):  # every bad input is also a ValueError (CONTRACT.md)
        call(weight)
    with pytest.raises((ValueError, RuntimeError, IndexError, NotImplementedError)):  # torch rejects it too
        call(torch.ones(10, 3))


def test_embedding_bag_include_last_offset_needs_the_input_length():
    """torch's modes disagree when offsets[-1] < len(input) (sum stops there, mean and max do not);
    we accept only torch's documented CSR layout."""
    with pytest.raises(RuntimeError, match=r"offsets\[-1\] must equal the input's length 8"):
        F.embedding_bag(np.arange(8), np.ones((10, 3)), np.array([0, 4, 6]), include_last_offset=True)


def test_embedding_bag_rejects_bad_configuration():
    with pytest.raises(ValueError, match="mode has to be one of sum, mean or max"):
        fl.EmbeddingBag(10, 3, mode="min")
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        fl.EmbeddingBag(10, 3, padding_idx=10)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_jit_grad_vmap_with_traced_offsets(mode):
    layer = fl.EmbeddingBag(10, 3, mode=mode, padding_idx=1)
    params, state = layer.init(KEY)
    check_jit_grad_vmap(layer, indices(4, 5))
    idx = jnp.asarray(indices(9))
    f = jax.jit(lambda p, offsets: layer.apply(p, state, idx, offsets)[0])
    batch = jnp.array([[0, 2, 2, 9], [0, 0, 4, 5], [0, 1, 2, 3]])  # a vmapped batch of bag layouts
    out = jax.vmap(f, (None, 0))(params, batch)
    for k in range(3):
        np.testing.assert_allclose(out[k], f(params, batch[k]), rtol=1e-6)
        ours = layer.apply(params, state, np.asarray(idx), np.asarray(batch[k]))[0]
        module = _module(torch.nn.EmbeddingBag, np.asarray(params["weight"]), mode=mode, padding_idx=1)
        theirs = module(torch.from_numpy(np.asarray(idx, np.int64)), torch.from_numpy(np.asarray(batch[k], np.int64)))
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_forward_mode_is_the_transpose_of_torchs_backward(mode, dtype):
    """torch has no forward-mode derivative for embedding_bag; our jvp (w.r.t. the weight and the
    per-sample weights) must be the transpose of torch's backward: <ct, J t> == <J^T ct, t>."""
    weight, tangent = randn(10, 3, dtype=dtype, seed=1), randn(10, 3, dtype=dtype, seed=2)
    idx, offsets = indices(9, seed=4), np.array([0, 2, 2, 6])
    psw = randn(9, dtype=dtype, seed=6) if mode == "sum" else None
    psw_t = randn(9, dtype=dtype, seed=7) if mode == "sum" else None
    kwargs = dict(mode=mode, padding_idx=3)

    def f(w, p):
        return F.embedding_bag(idx, w, offsets, per_sample_weights=p, **kwargs)

    _, ours = jax.jvp(f, (jnp.asarray(weight), psw), (jnp.asarray(tangent), psw_t))
    ct = randn(4, 3, dtype=dtype, seed=3)
    w_t = torch.from_numpy(weight).requires_grad_(True)
    p_t = None if psw is None else torch.from_numpy(psw).requires_grad_(True)
    out = torch.nn.functional.embedding_bag(torch.from_numpy(idx), w_t, torch.from_numpy(offsets),
                                            per_sample_weights=p_t, **kwargs)
    (out * torch.from_numpy(ct)).sum().backward()
    expected = np.sum(w_t.grad.numpy() * tangent) + (0 if psw is None else np.sum(p_t.grad.numpy() * psw_t))
    np.testing.assert_allclose(np.sum(np.asarray(ours) * ct), expected, **tolerance(dtype))


def test_functional_embedding_bag_matches_torch_functional(dtype):
    weight = randn(10, 4, dtype=dtype, seed=1)
    idx, offsets = indices(8), np.array([0, 4])
    ours = F.embedding_bag(idx, weight, offsets, mode="sum", padding_idx=-3)
    theirs = torch.nn.functional.embedding_bag(torch.from_numpy(idx), torch.from_numpy(weight),
                                               torch.from_numpy(offsets), mode="sum", padding_idx=-3)
    np.testing.assert_allclose(ours, theirs.numpy(), **tolerance(dtype))
    ours = F.embedding(idx, weight, padding_idx=-3)
    np.testing.assert_allclose(ours, torch.nn.functional.embedding(torch.from_numpy(idx), torch.from_numpy(weight),
                                                                  padding_idx=-3).numpy(), **tolerance(dtype))


@pytest.mark.parametrize("offsets", [pytest.param(None, id="2d"), pytest.param(np.array([0, 3, 3]), id="offsets")])
def test_embedding_bag_max_gradient_goes_to_the_first_tied_row_as_torch(offsets, dtype):
    """Equal rows (a zero-initialised table, duplicated pretrained rows): torch's max keeps the
    first maximum of each feature and gives it the whole gradient; so do we."""
    weight = randn(6, 3, seed=1)
    weight[4] = weight[2]
    weight[5, 0] = weight[1, 0]
    module = _module(torch.nn.EmbeddingBag, weight, mode="max")
    idx = np.array([[2, 4, 0], [5, 1, 3]]) if offsets is None else np.array([2, 4, 0, 5, 1, 3])
    inputs = [idx] if offsets is None else [idx, offsets]
    check_layer(module, fl.EmbeddingBag(6, 3, mode="max"), inputs, dtype=dtype)


def test_functional_ops_accept_python_lists():
    weight = randn(4, 2)
    np.testing.assert_array_equal(F.embedding([1, 3], weight), weight[[1, 3]])
    np.testing.assert_allclose(F.embedding_bag([1, 3, 0], weight, [0, 2], mode="sum"),
                               [weight[1] + weight[3], weight[0]], rtol=1e-6)
