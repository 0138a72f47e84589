"""AdaptiveLogSoftmaxWithLoss against torch 2.13: forward (output, loss), log_prob, predict."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_layer, load_into, randn, tolerance
from torch.func import jvp as torch_jvp

import funclayers as fl

KEY = jax.random.PRNGKey(0)


def _module(*args, **kwargs):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zero-size tail projections (in_features // div_value = 0)
        return torch.nn.AdaptiveLogSoftmaxWithLoss(*args, **kwargs)


CONFIGS = [
    pytest.param((8, 10, [3, 6]), {}, id="two_clusters"),
    pytest.param((8, 10, [3, 6]), dict(head_bias=True, div_value=2.0), id="head_bias_div2"),
    pytest.param((6, 12, [4]), dict(div_value=1.5), id="one_cluster"),
    pytest.param((3, 10, [2, 5, 9]), {}, id="zero_size_projections"),
]


def _targets(n_classes, cutoffs, n=9):
    """Targets in the shortlist, at every cluster's edges, and random ones."""
    edges = [0] + list(cutoffs) + [n_classes]
    fixed = sorted({c for e in edges for c in (e - 1, e) if 0 <= c < n_classes})
    rest = np.random.default_rng(0).integers(0, n_classes, max(n - len(fixed), 0))
    return np.array(fixed + list(rest), np.int64)


@pytest.mark.parametrize("args,kwargs", CONFIGS)
def test_forward_matches_torch(args, kwargs, dtype):
    module = _module(*args, **kwargs)
    layer = fl.AdaptiveLogSoftmaxWithLoss(*args, **kwargs)
    target = _targets(args[1], args[2])
    check_layer(module, layer, [randn(len(target), args[0]), target], dtype=dtype)
    # unbatched: (in_features,) and a 0-d target, in the last cluster (the head is covered above)
    check_layer(module, layer, [randn(args[0], seed=1), np.array(args[1] - 1)], dtype=dtype)


def test_names_repr_and_output_type():
    args, kwargs = (8, 10, [3, 6]), dict(head_bias=True)
    module, layer = _module(*args, **kwargs), fl.AdaptiveLogSoftmaxWithLoss(*args, **kwargs)
    assert repr(layer) == repr(module)
    params, state = layer.init(KEY)
    names = list(fl.state_dict(params, state))
    assert names == list(module.state_dict()) == ["head.weight", "head.bias", "tail.0.0.weight", "tail.0.1.weight",
                                                  "tail.1.0.weight", "tail.1.1.weight"]
    out, _ = jax.jit(layer.apply)(params, state, jnp.ones((2, 8)), jnp.array([1, 7]))
    assert isinstance(out, fl.ASMOutput) and out._fields == ("output", "loss") == module(
        torch.ones(2, 8), torch.tensor([1, 7]))._fields


@pytest.mark.parametrize("args,kwargs", CONFIGS[:2] + CONFIGS[3:])
def test_log_prob_and_predict_match_torch(args, kwargs, dtype):
    module = _module(*args, **kwargs).to(torch.float64 if dtype == np.float64 else torch.float32)
    layer = fl.AdaptiveLogSoftmaxWithLoss(*args, **kwargs)
    params, _ = load_into(layer, module, dtype)
    x = randn(12, args[0], dtype=dtype, scale=3.0)  # large inputs: some rows predict a cluster class
    log_prob = jax.jit(layer.log_prob)(params, x)
    x_t = torch.from_numpy(x).requires_grad_(True)
    expected = module.log_prob(x_t)
    np.testing.assert_allclose(log_prob, expected.detach().numpy(), **tolerance(dtype))
    np.testing.assert_allclose(np.exp(np.asarray(log_prob, np.float64)).sum(1), 1, rtol=1e-5)
    predicted = jax.jit(layer.predict)(params, x)
    np.testing.assert_array_equal(predicted, module.predict(torch.from_numpy(x)).numpy())
    assert np.any(np.asarray(predicted) >= args[2][0]) and np.any(np.asarray(predicted) < args[2][0])
    # log_prob's gradient w.r.t. the input and the params, against torch's
    ct = randn(12, args[1], dtype=dtype, seed=3)
    (expected * torch.from_numpy(ct)).sum().backward()
    g_params, g_x = jax.jit(jax.grad(lambda p, x: jnp.sum(layer.log_prob(p, x) * ct), argnums=(0, 1)))(
        params, jnp.asarray(x))
    np.testing.assert_allclose(g_x, x_t.grad.numpy(), **tolerance(dtype))
    ours = fl.state_dict(g_params)
    for name, p in module.named_parameters():
        np.testing.assert_allclose(ours[name], p.grad.numpy(), err_msg=name, **tolerance(dtype))


def test_jit_with_traced_targets_vmap_and_out_of_range_under_jit():
    layer = fl.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6])
    params, state = layer.init(KEY)
    f = jax.jit(lambda x, t: layer.apply(params, state, x, t)[0])
    x, t = jnp.asarray(randn(4, 8)), jnp.array([0, 4, 7, 9])
    concrete = layer.apply(params, state, x, np.asarray(t))[0]  # concrete targets: checked, then the same program
    np.testing.assert_allclose(f(x, t).output, concrete.output, rtol=1e-6)
    xs = jnp.stack([x, 2 * x])
    batched = jax.vmap(f, (0, None))(xs, t)
    for k in range(2):
        np.testing.assert_allclose(batched.loss[k], f(xs[k], t).loss, rtol=1e-6)
    g = jax.jit(jax.grad(lambda p: layer.apply(p, state, x, t)[0].loss))(params)
    assert all(np.all(np.isfinite(v)) and np.any(v != 0) for v in jax.tree_util.tree_leaves(g) if v.size)
    out = f(x, jnp.array([0, 4, 10, 9]))  # documented: NaN for the out-of-range row, so the loss is NaN
    assert np.isnan(out.output[2]) and np.isnan(out.loss) and np.all(np.isfinite(np.asarray(out.output)[[0, 1, 3]]))


def test_jvp_matches_torch(dtype):
    module = _module(8, 10, [3, 6], head_bias=True).to(torch.float64 if dtype == np.float64 else torch.float32)
    layer = fl.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6], head_bias=True)
    params, state = load_into(layer, module, dtype)
    x, dx = randn(5, 8, dtype=dtype), randn(5, 8, dtype=dtype, seed=1)
    target = np.array([0, 3, 5, 6, 9])
    _, ours = jax.jit(lambda x, dx: jax.jvp(lambda x: layer.apply(params, state, x, target)[0], (x,), (dx,)))(
        jnp.asarray(x), jnp.asarray(dx))
    _, theirs = torch_jvp(lambda x: tuple(module(x, torch.from_numpy(target))), (torch.from_numpy(x),),
                          (torch.from_numpy(dx),))
    np.testing.assert_allclose(ours.output, theirs[0].detach().numpy(), **tolerance(dtype))
    np.testing.assert_allclose(ours.loss, theirs[1].detach().numpy(), **tolerance(dtype))


@pytest.mark.parametrize("x_shape,target,match", [
    pytest.param((2, 8), [1, 10], r"Target values should be in \[0, 9\], but values in range \[1, 10\] were found",
                 id="target_high"),
    pytest.param((2, 8), [1, -1], r"Target values should be in \[0, 9\], but values in range \[-1, 1\] were found",
                 id="target_negative"),
    pytest.param((3, 8), [1, 1], "Input and target should have the same size in the batch dimension", id="batch"),
    pytest.param((2, 8), 1, "0D target tensor expects 1D input tensors", id="0d_target_2d_input"),
    pytest.param((2, 8), [[1]], "0D or 1D target tensor expected, multi-target not supported", id="2d_target"),
    pytest.param((8,), [1] * 8, "1D target tensor expects 2D input tensors", id="1d_target_1d_input"),
    pytest.param((2, 7), [1, 2], "expects an input with 8 features", id="features"),
])
def test_forward_errors_match_torch(x_shape, target, match):
    layer = fl.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6])
    params, state = layer.init(KEY)
    with pytest.raises(ValueError, match=match):
        layer.apply(params, state, jnp.ones(x_shape), np.array(target))
    with pytest.raises(RuntimeError):  # torch raises RuntimeError; ours is both
        layer.apply(params, state, jnp.ones(x_shape), np.array(target))
    with pytest.raises(RuntimeError):
        _module(8, 10, [3, 6])(torch.ones(x_shape), torch.tensor(target))


@pytest.mark.parametrize("cutoffs,match", [
    pytest.param([], "cutoffs should be a sequence of length larger than 0", id="empty"),
    pytest.param([5, 3], "cutoffs should be a sequence of unique, positive integers sorted", id="unsorted"),
    pytest.param([3, 10], "between 1 and n_classes-1", id="too_large"),
    pytest.param([0, 3], "between 1 and n_classes-1", id="zero"),
    pytest.param([3, 3], "unique", id="duplicate"),
    pytest.param([2.5], "integers", id="fractional"),
])
def test_bad_cutoffs_raise_at_construction(cutoffs, match):
    with pytest.raises(ValueError, match=match):
        fl.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)
    with pytest.raises(ValueError, match=match):
        torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)


def test_log_prob_needs_2d_input_and_forward_needs_target():
    layer = fl.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6])
    params, state = layer.init(KEY)
    with pytest.raises(ValueError, match=r"log_prob expects a 2D \(N, in_features\) input, got shape \(8,\)"):
        layer.log_prob(params, jnp.ones(8))
    with pytest.raises(TypeError, match="forward needs"):
        layer.apply(params, state, jnp.ones((2, 8)))
    with pytest.raises(TypeError, match="integer class indices"):
        layer.apply(params, state, jnp.ones((2, 8)), jnp.ones(2))
