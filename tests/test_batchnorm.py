"""BatchNorm1d/2d/3d and F.batch_norm against torch: outputs, gradients, running statistics, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import oracle
import pytest
import torch
from _norm_helpers import randomize
from oracle import check_jit_grad_vmap as jit_grad_vmap
from oracle import check_layer, randn

import funclayers as fl
import funclayers.functional as F


def _atol(dtype):
    """float32: gradients of weight/bias are sums over N*spatial products whose order differs from
    torch's (and the batch statistics are single-pass), which moves sums that cancel to ~1e-6."""
    return dict(atol=1e-5) if np.dtype(dtype) == np.float32 else {}


SHAPES = {"BatchNorm1d": [(6, 3), (4, 3, 7)], "BatchNorm2d": [(4, 3, 5, 6)], "BatchNorm3d": [(3, 3, 4, 2, 5)]}

CONFIGS = [
    pytest.param({}, id="default"),
    pytest.param(dict(momentum=None), id="cumulative-average"),
    pytest.param(dict(momentum=0.3, eps=1e-3), id="momentum0.3-eps1e-3"),
    pytest.param(dict(affine=False), id="no-affine"),
    pytest.param(dict(bias=False), id="no-bias"),
    pytest.param(dict(track_running_stats=False), id="untracked"),
    pytest.param(dict(affine=False, track_running_stats=False), id="no-affine-untracked"),
]

CASES = [pytest.param(kind, shape, id=f"{kind}-{'x'.join(map(str, shape))}")
         for kind, shapes in SHAPES.items() for shape in shapes]
# every option on BatchNorm2d; the statistics-related ones (the rank changes the reduced axes) on every rank
TRAINING_CASES = [pytest.param("BatchNorm2d", (4, 3, 5, 6), *c.values, id=f"BatchNorm2d-{c.id}")
                  for c in CONFIGS]
TRAINING_CASES += [pytest.param(*case.values, *c.values, id=f"{case.id}-{c.id}") for case in CASES
                   if case.values[0] != "BatchNorm2d" for c in (CONFIGS[0], CONFIGS[1], CONFIGS[6])]


@pytest.mark.parametrize("kind,shape,config", TRAINING_CASES)
def test_batchnorm_training_steps_match_torch(kind, shape, config, dtype):
    module = randomize(getattr(torch.nn, kind)(shape[1], **config))
    layer = getattr(fl, kind)(shape[1], **config)
    check_layer(module, layer, [randn(*shape, seed=1, scale=2.0) + 0.5], dtype=dtype, training=True, steps=3,
                **_atol(dtype))


EVAL_CASES = [pytest.param(*case.values, {}, id=case.id) for case in CASES]
EVAL_CASES += [pytest.param("BatchNorm2d", (4, 3, 5, 6), *c.values, id=f"BatchNorm2d-{c.id}")
               for c in (CONFIGS[3], CONFIGS[5])]


@pytest.mark.parametrize("kind,shape,config", EVAL_CASES)
def test_batchnorm_eval_matches_torch(kind, shape, config, dtype):
    module = randomize(getattr(torch.nn, kind)(shape[1], **config))
    layer = getattr(fl, kind)(shape[1], **config)
    check_layer(module, layer, [randn(*shape, seed=2)], dtype=dtype, training=False, steps=2)


def test_batchnorm_single_pass_statistics_survive_a_large_mean(x64):
    """A mean 1e4 times the spread: E[x^2] - E[x]^2 would cancel; the shifted sums must not (float64:
    in float32 such data has no digits left for torch either)."""
    dtype = np.float64
    module, layer = torch.nn.BatchNorm2d(3), fl.BatchNorm2d(3)
    x = randn(4, 3, 5, 5, seed=3) * 0.1 + 1000.0
    check_layer(module, layer, [x], dtype=dtype, training=True, steps=2, **_atol(dtype))


def test_batchnorm_repr_and_init_match_torch():
    for kwargs in ({}, dict(momentum=None, affine=False, track_running_stats=False), dict(bias=False)):
        module, layer = torch.nn.BatchNorm2d(5, **kwargs), fl.BatchNorm2d(5, **kwargs)
        assert layer.name == repr(module)
        params, state = layer.init(jax.random.PRNGKey(0))
        ours = fl.state_dict(params, state)
        assert list(ours) == list(module.state_dict())
        for name, value in module.state_dict().items():
            np.testing.assert_array_equal(ours[name], value.numpy(), err_msg=name)
            if value.is_floating_point():
                assert ours[name].dtype == np.float32
    params, _ = fl.BatchNorm1d(4, dtype=jnp.bfloat16).init(jax.random.PRNGKey(0))
    assert params["weight"].dtype == jnp.bfloat16


def test_batchnorm_state_keeps_its_dtypes_across_steps():
    layer = fl.BatchNorm1d(3, momentum=None)
    params, state = layer.init(jax.random.PRNGKey(0))
    step = jax.jit(lambda s, x: layer.apply(params, s, x, training=True)[1])
    new = step(state, jnp.asarray(randn(5, 3)))
    def spec(tree):
        return jax.tree.map(lambda a: (a.shape, a.dtype), tree)

    assert spec(new) == spec(state)
    assert int(new["num_batches_tracked"]) == 1
    np.testing.assert_allclose(new["running_mean"], randn(5, 3).mean(0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("training", [pytest.param(False, id="eval"), pytest.param(True, id="training")])
def test_batchnorm_jit_grad_vmap(training):
    jit_grad_vmap(fl.BatchNorm2d(3, track_running_stats=not training), randn(4, 3, 5, 5), training=training)


def _naive_batch_norm(x, weight, bias, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    mean = jnp.mean(x, axes, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean) / jnp.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)


def test_batchnorm_second_order_matches_autodiff_of_the_formula(x64):
    """The closed-form backward (a custom_vjp) is itself differentiable: grad of grad is exact."""
    layer = fl.BatchNorm1d(3, dtype=jnp.float64)
    _, state = layer.init(jax.random.PRNGKey(0))
    params = {"weight": jnp.asarray(randn(3, dtype=np.float64, seed=4)),
              "bias": jnp.asarray(randn(3, dtype=np.float64, seed=5))}
    x = jnp.asarray(randn(6, 3, 4, dtype=np.float64, seed=6))
    ct = jnp.asarray(randn(6, 3, 4, dtype=np.float64, seed=7))

    def ours(params, x):
        return layer.apply(params, state, x, training=True)[0]

    def naive(params, x):
        return _naive_batch_norm(x, params["weight"], params["bias"], 1e-5)

    def grad_norm(f):
        def g(params, x):
            grads = jax.grad(lambda p, x: jnp.sum(f(p, x) * ct), argnums=(0, 1))(params, x)
            return sum(jnp.sum(leaf ** 2) for leaf in jax.tree.leaves(grads))
        return jax.grad(g, argnums=(0, 1))

    ours_gg, naive_gg = grad_norm(ours)(params, x), grad_norm(naive)(params, x)
    for a, b in zip(jax.tree.leaves(ours_gg), jax.tree.leaves(naive_gg), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def test_batchnorm_double_backward_matches_torch(x64):
    module = randomize(torch.nn.BatchNorm2d(2)).double().train()
    layer = fl.BatchNorm2d(2)
    params, state = oracle.load_into(layer, module, np.float64)
    x = randn(3, 2, 3, 3, dtype=np.float64, seed=9)
    ct = randn(3, 2, 3, 3, dtype=np.float64, seed=10)
    tx = torch.from_numpy(x).requires_grad_(True)
    (g,) = torch.autograd.grad((module(tx) * torch.from_numpy(ct)).sum(), tx, create_graph=True)
    (gg,) = torch.autograd.grad((g ** 2).sum(), tx)

    def grad_sq(x):
        g = jax.grad(lambda x: jnp.sum(layer.apply(params, state, x, training=True)[0] * ct))(x)
        return jnp.sum(g ** 2)

    np.testing.assert_allclose(jax.grad(grad_sq)(jnp.asarray(x)), gg.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("training", [pytest.param(False, id="eval"), pytest.param(True, id="training")])
def test_functional_batch_norm_matches_torch(training, dtype):
    x = randn(5, 4, 3, dtype=dtype, seed=11)
    weight, bias = randn(4, dtype=dtype, seed=12), randn(4, dtype=dtype, seed=13)
    mean, var = randn(4, dtype=dtype, seed=14), np.abs(randn(4, dtype=dtype, seed=15)) + 0.5
    t_mean, t_var = torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())
    expected = torch.nn.functional.batch_norm(torch.from_numpy(x), t_mean, t_var, torch.from_numpy(weight),
                                              torch.from_numpy(bias), training, 0.2, 1e-4)
    out, new_mean, new_var = F.batch_norm(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(var),
                                          jnp.asarray(weight), jnp.asarray(bias), training, 0.2, 1e-4,
                                          return_running_stats=True)
    tol = oracle.tolerance(dtype)
    oracle.assert_close(out, expected, "output", **tol)
    oracle.assert_close(new_mean, t_mean, "running_mean", **tol)
    oracle.assert_close(new_var, t_var, "running_var", **tol)
    plain = F.batch_norm(jnp.asarray(x), None, None, training=True)
    oracle.assert_close(plain, torch.nn.functional.batch_norm(torch.from_numpy(x), None, None, training=True),
                        "no buffers", **tol)


@pytest.mark.parametrize("kind,bad_shape,message", [
    pytest.param("BatchNorm1d", (2, 3, 4, 5), r"expected 2D or 3D input \(got 4D input\)", id="1d-given-4d"),
    pytest.param("BatchNorm1d", (3,), r"expected 2D or 3D input \(got 1D input\)", id="1d-given-1d"),
    pytest.param("BatchNorm2d", (2, 3, 4), r"expected 4D input \(got 3D input\)", id="2d-given-3d"),
    pytest.param("BatchNorm3d", (2, 3, 4, 4), r"expected 5D input \(got 4D input\)", id="3d-given-4d"),
    pytest.param("BatchNorm2d", (2, 4, 3, 3), r"BatchNorm2d\(3, .*\) expects 3 channels \(dim 1\), got 4",
                 id="wrong-channels"),
])
def test_batchnorm_rejects_bad_input(kind, bad_shape, message):
    layer = getattr(fl, kind)(3)
    params, state = layer.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=message):
        layer.apply(params, state, jnp.ones(bad_shape))


@pytest.mark.parametrize("shape", [pytest.param((1, 3), id="one-sample"),
                                   pytest.param((1, 3, 1), id="one-by-one")])
def test_batchnorm_needs_more_than_one_value_per_channel_in_training(shape):
    layer = fl.BatchNorm1d(3)
    params, state = layer.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, got input"):
        layer.apply(params, state, jnp.ones(shape), training=True)
    layer.apply(params, state, jnp.ones(shape))  # eval with running statistics is fine, as in torch
    untracked = fl.BatchNorm1d(3, track_running_stats=False)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):  # batch stats in eval too
        untracked.apply(*untracked.init(jax.random.PRNGKey(0)), jnp.ones(shape))


def test_batchnorm_untracked_without_affine_accepts_any_channel_count():
    layer = fl.BatchNorm2d(3, affine=False, track_running_stats=False)
    x = randn(2, 5, 3, 3)
    out, state = layer.apply({}, {}, jnp.asarray(x), training=True)
    expected = torch.nn.functional.batch_norm(torch.from_numpy(x), None, None, training=True)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert state == {}


def test_batchnorm_rejects_integer_input_and_bad_eps():
    layer = fl.BatchNorm1d(3)
    params, state = layer.init(jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match="floating-point"):
        layer.apply(params, state, jnp.ones((4, 3), jnp.int32))
    zero_eps = fl.BatchNorm1d(3, eps=0.0)
    with pytest.raises(ValueError, match="batch_norm eps must be positive during training, but got 0.0"):
        zero_eps.apply(params, state, jnp.ones((4, 3)), training=True)
    with pytest.raises(ValueError, match="batch_norm eps must be non-negative, but got -1"):
        fl.BatchNorm1d(3, eps=-1).apply(params, state, jnp.ones((4, 3)))
