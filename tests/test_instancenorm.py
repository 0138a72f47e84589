"""InstanceNorm1d/2d/3d and F.instance_norm against torch: batched and unbatched, tracked statistics."""

import warnings

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
    """float32: affine gradients sum products over N*spatial in another order than torch's."""
    return dict(atol=1e-5) if np.dtype(dtype) == np.float32 else {}


SHAPES = [
    pytest.param("InstanceNorm1d", (3, 4, 7), id="1d-batched"),
    pytest.param("InstanceNorm1d", (4, 7), id="1d-unbatched"),
    pytest.param("InstanceNorm2d", (2, 4, 5, 3), id="2d-batched"),
    pytest.param("InstanceNorm2d", (4, 5, 3), id="2d-unbatched"),
    pytest.param("InstanceNorm3d", (2, 4, 3, 2, 3), id="3d-batched"),
    pytest.param("InstanceNorm3d", (4, 3, 2, 3), id="3d-unbatched"),
]

# Untracked statistics take the same path in both modes; tracked ones differ (eval uses them).
CASES = [
    pytest.param({}, True, id="default"),
    pytest.param(dict(affine=True, bias=False, eps=1e-3), True, id="affine-no-bias-eps1e-3"),
    pytest.param(dict(affine=True, track_running_stats=True, momentum=0.4), True,
                 id="affine-tracked-momentum0.4-training"),
    pytest.param(dict(track_running_stats=True, momentum=None), True, id="tracked-momentum-None-training"),
    pytest.param(dict(affine=True, track_running_stats=True), False, id="affine-tracked-eval"),
    pytest.param(dict(track_running_stats=True), False, id="tracked-eval"),
]


# every option on a batched 2d and an unbatched 1d input; the main paths on every other input
FULL = ("2d-batched", "1d-unbatched")
PARITY = [pytest.param(*s.values, *c.values, id=f"{s.id}-{c.id}") for s in SHAPES for c in CASES
          if s.id in FULL or c.id in ("default", "affine-tracked-momentum0.4-training", "tracked-eval")]


@pytest.mark.parametrize("kind,shape,config,training", PARITY)
def test_instancenorm_matches_torch(kind, shape, config, training, dtype):
    module = randomize(getattr(torch.nn, kind)(4, **config))
    layer = getattr(fl, kind)(4, **config)
    check_layer(module, layer, [randn(*shape, seed=1, scale=1.5) - 0.3], dtype=dtype, training=training,
                steps=3 if training else 1, **_atol(dtype))


def test_instancenorm_repr_and_buffers_match_torch():
    for kwargs in ({}, dict(affine=True, track_running_stats=True), dict(affine=True, bias=False)):
        module, layer = torch.nn.InstanceNorm2d(3, **kwargs), fl.InstanceNorm2d(3, **kwargs)
        assert layer.name == repr(module)
        params, state = layer.init(jax.random.PRNGKey(0))
        ours = fl.state_dict(params, state)
        assert list(ours) == list(module.state_dict())
        for name, value in module.state_dict().items():
            np.testing.assert_array_equal(ours[name], value.numpy(), err_msg=name)


def test_instancenorm_without_affine_warns_and_ignores_num_features():
    module, layer = torch.nn.InstanceNorm1d(3), fl.InstanceNorm1d(3)
    x = randn(2, 5, 6)
    with pytest.warns(UserWarning, match=r"input's size at dim=1 does not match num_features"):
        out, _ = layer.apply({}, {}, jnp.asarray(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = module(torch.from_numpy(x))
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.warns(UserWarning, match=r"at dim=0 does not match num_features"):
        layer.apply({}, {}, jnp.asarray(x[0]))


def test_instancenorm_rejects_a_channel_mismatch_when_affine_or_tracked():
    layer = fl.InstanceNorm2d(3, affine=True)
    params, state = layer.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"input's size at dim=1 to match num_features \(3\), but got: 4"):
        layer.apply(params, state, jnp.ones((2, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"input's size at dim=0 to match num_features \(3\), but got: 4"):
        layer.apply(params, state, jnp.ones((4, 3, 3)))
    tracked = fl.InstanceNorm2d(3, track_running_stats=True)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="running_mean should contain 4 elements"):
        tracked.apply(*tracked.init(jax.random.PRNGKey(0)), jnp.ones((2, 4, 3, 3)))


@pytest.mark.parametrize("kind,shape,message", [
    pytest.param("InstanceNorm1d", (2, 3, 4, 5), r"expected 2D or 3D input \(got 4D input\)",
                 id="1d-given-4d"),
    pytest.param("InstanceNorm2d", (3, 4), r"expected 3D or 4D input \(got 2D input\)", id="2d-given-2d"),
    pytest.param("InstanceNorm3d", (2, 3, 4, 5, 6, 7), r"expected 4D or 5D input \(got 6D input\)",
                 id="3d-given-6d"),
])
def test_instancenorm_rejects_bad_rank(kind, shape, message):
    layer = getattr(fl, kind)(3)
    with pytest.raises(ValueError, match=message):
        layer.apply({}, {}, jnp.ones(shape))


def test_instancenorm_needs_more_than_one_spatial_element():
    layer = fl.InstanceNorm1d(3)
    with pytest.raises(ValueError, match=r"Expected more than 1 spatial element when training, got input"):
        layer.apply({}, {}, jnp.ones((2, 3, 1)))
    tracked = fl.InstanceNorm1d(3, track_running_stats=True)
    params, state = tracked.init(jax.random.PRNGKey(0))
    out, _ = tracked.apply(params, state, jnp.ones((2, 3, 1)))  # eval with running stats: allowed, as torch
    np.testing.assert_allclose(out, torch.nn.InstanceNorm1d(3, track_running_stats=True).eval()(
        torch.ones(2, 3, 1)).numpy(), rtol=1e-6)


def test_instancenorm_tracked_state_counts_no_batches():
    """torch's InstanceNorm never increments num_batches_tracked, whatever the mode."""
    layer = fl.InstanceNorm1d(3, track_running_stats=True)
    params, state = layer.init(jax.random.PRNGKey(0))
    _, new_state = layer.apply(params, state, jnp.asarray(randn(2, 3, 5)), training=True)
    assert int(new_state["num_batches_tracked"]) == 0
    assert new_state["running_mean"].dtype == state["running_mean"].dtype


@pytest.mark.parametrize("kind,shape", [SHAPES[2], SHAPES[3]])
@pytest.mark.parametrize("training", [pytest.param(False, id="eval"), pytest.param(True, id="training")])
def test_instancenorm_jit_grad_vmap(kind, shape, training):
    layer = getattr(fl, kind)(4, affine=True, track_running_stats=True)
    jit_grad_vmap(layer, randn(*shape), training=training)


@pytest.mark.parametrize("use_input_stats", [pytest.param(True, id="input-stats"),
                                             pytest.param(False, id="running-stats")])
def test_functional_instance_norm_matches_torch(use_input_stats, dtype):
    x = randn(3, 4, 6, dtype=dtype, seed=2)
    weight, bias = randn(4, dtype=dtype, seed=3), randn(4, dtype=dtype, seed=4)
    mean, var = randn(4, dtype=dtype, seed=5), np.abs(randn(4, dtype=dtype, seed=6)) + 0.5
    t_mean, t_var = torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())
    expected = torch.nn.functional.instance_norm(torch.from_numpy(x), t_mean, t_var, torch.from_numpy(weight),
                                                 torch.from_numpy(bias), use_input_stats, 0.3, 1e-4)
    out, new_mean, new_var = F.instance_norm(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(var),
                                             jnp.asarray(weight), jnp.asarray(bias), use_input_stats, 0.3,
                                             1e-4, return_running_stats=True)
    tol = oracle.tolerance(dtype)
    oracle.assert_close(out, expected, "output", **tol)
    oracle.assert_close(new_mean, t_mean, "running_mean", **tol)
    oracle.assert_close(new_var, t_var, "running_var", **tol)
    plain = torch.nn.functional.instance_norm(torch.from_numpy(x))
    oracle.assert_close(F.instance_norm(jnp.asarray(x)), plain, "plain", **tol)
