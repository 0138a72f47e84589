"""LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm, CrossMapLRN2d and their functional ops against torch."""

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
    """float32: weight/bias gradients sum products over the batch in another order than torch's."""
    return dict(atol=1e-5) if np.dtype(dtype) == np.float32 else {}


def _pair(name, *args, **kwargs):
    return randomize(getattr(torch.nn, name)(*args, **kwargs)), getattr(fl, name)(*args, **kwargs)


# -- LayerNorm --------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,kwargs,shape", [
    pytest.param((8,), {}, (3, 5, 8), id="int-shape"),
    pytest.param(((5, 8),), {}, (3, 5, 8), id="2d-shape"),
    pytest.param(([5, 8],), dict(eps=1e-2), (5, 8), id="list-shape-unbatched-eps1e-2"),
    pytest.param((8,), dict(elementwise_affine=False), (4, 8), id="no-affine"),
    pytest.param((8,), dict(bias=False), (2, 3, 8), id="no-bias"),
    pytest.param(((2, 3, 4),), {}, (2, 2, 3, 4), id="3d-shape"),
    pytest.param((6,), {}, (6,), id="1d-input"),
    # rows divisible by 8 and by 2 only: the kernel gives the variance, the weight's gradient and the
    # input's gradient views of their own ((rows/4, 4, n), (rows/8, 8, n), (rows, n)); the cases
    # above with odd rows or one leading dim take copies of the statistics behind barriers instead
    pytest.param((8,), {}, (16, 9, 8), id="rows-by-8"),
    pytest.param((5,), {}, (2, 7, 5), id="rows-by-2"),
    # 4096 rows and more: the JVP without `_own_copies` (XLA:CPU's YNNPACK fusion takes the backward)
    pytest.param((8,), {}, (2, 2048, 8), id="rows-4096"),
    pytest.param((8,), dict(elementwise_affine=False), (4099, 8), id="rows-4099-no-affine"),
])
def test_layernorm_matches_torch(args, kwargs, shape, dtype):
    module, layer = _pair("LayerNorm", *args, **kwargs)
    check_layer(module, layer, [randn(*shape, seed=1, scale=3.0) + 2.0], dtype=dtype, **_atol(dtype))


def test_layernorm_over_one_element_is_the_bias(dtype):
    """n = 1: every row is its own mean, so the output is the bias and the weight gets no gradient.

    (torch computes x * rstd - mean * rstd and leaves rounding residue of ~1e-5 in float32 there.)
    """
    layer = fl.LayerNorm(1)
    params = {"weight": jnp.asarray([1.5], dtype), "bias": jnp.asarray([0.25], dtype)}
    x = jnp.asarray(randn(4, 3, 1, seed=3) * 3 + 2, dtype)
    out = layer.apply(params, {}, x)[0]
    np.testing.assert_array_equal(out, jnp.full(x.shape, 0.25, dtype))
    ct = jnp.asarray(randn(4, 3, 1, seed=4), dtype)
    grads = jax.grad(lambda p, x: jnp.sum(layer.apply(p, {}, x)[0] * ct), (0, 1))(params, x)
    np.testing.assert_array_equal(grads[0]["weight"], jnp.zeros(1, dtype))
    np.testing.assert_array_equal(grads[1], jnp.zeros_like(x))


@pytest.mark.parametrize("offset", [1e4, -3e5])
def test_layernorm_statistics_keep_precision_far_from_zero(offset, x64):
    """Rows whose mean is far larger than their spread: E[x^2] - E[x]^2 would lose 8-11 digits here.

    The absolute tolerance is a few ulps of the offset: no mean (torch's included) is closer than that.
    """
    module, layer = _pair("LayerNorm", 16)
    check_layer(module, layer, [randn(8, 6, 16, seed=2) + offset], dtype=np.float64, rtol=1e-10,
                atol=abs(offset) * 1e-15)


# 3 rows: the kernel's copies of the statistics behind barriers; (2, 4) rows: its views
@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 5)])
def test_layernorm_forward_mode_and_second_order_match_autodiff_of_the_formula(shape, x64):
    """The closed-form JVP of the shared kernel is the derivative of the plain formula, both modes."""
    layer = fl.LayerNorm(5, dtype=jnp.float64)
    params, state = layer.init(jax.random.PRNGKey(0))
    x = jnp.asarray(randn(*shape, dtype=np.float64, seed=11))
    ct = jnp.asarray(randn(*shape, dtype=np.float64, seed=12))

    def ours(x):
        return layer.apply(params, state, x)[0]

    def naive(x):
        mean = jnp.mean(x, -1, keepdims=True)
        return (x - mean) / jnp.sqrt(jnp.mean((x - mean) ** 2, -1, keepdims=True) + 1e-5)

    tangent = jnp.asarray(randn(*shape, dtype=np.float64, seed=13))
    np.testing.assert_allclose(jax.jvp(ours, (x,), (tangent,))[1], jax.jvp(naive, (x,), (tangent,))[1],
                               rtol=1e-10, atol=1e-12)

    def grad_norm(f):
        return lambda x: jnp.sum(jax.grad(lambda x: jnp.sum(f(x) * ct))(x) ** 2)

    np.testing.assert_allclose(jax.grad(grad_norm(ours))(x), jax.grad(grad_norm(naive))(x), rtol=1e-9,
                               atol=1e-11)


def test_layernorm_rejects_wrong_trailing_shape():
    layer = fl.LayerNorm(4)
    params, state = layer.init(jax.random.PRNGKey(0))
    message = r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\], but got input of " \
              r"size\[2, 3\]"
    with pytest.raises(ValueError, match=message):
        layer.apply(params, state, jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        layer.apply(params, state, jnp.ones((2, 4), jnp.int32))


# -- GroupNorm --------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,kwargs,shape", [
    pytest.param((3, 6), {}, (2, 6, 4, 5), id="3-groups-2d"),
    pytest.param((1, 6), {}, (2, 6, 7), id="1-group-is-layernorm-1d"),
    pytest.param((6, 6), dict(eps=1e-3), (2, 6, 3, 2, 2), id="one-channel-per-group-3d"),
    pytest.param((2, 4), dict(affine=False), (3, 4), id="no-affine-no-spatial"),
    pytest.param((2, 4), dict(bias=False), (3, 4, 5), id="no-bias"),
    # spatial sizes divisible by 8 and by 2 only (the backward pass read (N, C, d, L/d) views,
    # d = gcd(L, 8), until the forward's output moved to the caller's shape)
    pytest.param((4, 8), {}, (2, 8, 4, 6), id="length-by-8"),
    pytest.param((2, 4), {}, (3, 4, 2, 3), id="length-by-2"),
])
def test_groupnorm_matches_torch(args, kwargs, shape, dtype):
    module, layer = _pair("GroupNorm", *args, **kwargs)
    check_layer(module, layer, [randn(*shape, seed=2, scale=2.0) - 1.0], dtype=dtype, **_atol(dtype))


def test_groupnorm_validation():
    with pytest.raises(ValueError, match=r"num_channels \(10\) must be divisible by num_groups \(3\)"):
        fl.GroupNorm(3, 10)
    with pytest.raises(ValueError, match="num_groups"):
        fl.GroupNorm(0, 10)
    layer = fl.GroupNorm(2, 4)
    params, state = layer.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4, .*\) expects 4 channels \(dim 1\), got 6"):
        layer.apply(params, state, jnp.ones((2, 6, 3)))
    with pytest.raises(ValueError, match="Expected at least 2 dimensions for input tensor but received 1"):
        layer.apply(params, state, jnp.ones((4,)))
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, got "
                                         r"input size \[1, 2\]"):
        fl.GroupNorm(2, 2).apply(*fl.GroupNorm(2, 2).init(None), jnp.ones((1, 2)))
    no_affine = fl.GroupNorm(2, 4, affine=False)
    with pytest.raises(ValueError, match="Expected number of channels in input to be divisible by num_grou"):
        no_affine.apply({}, {}, jnp.ones((2, 5, 3)))
    out, _ = no_affine.apply({}, {}, jnp.asarray(randn(2, 6, 3)))  # torch checks only divisibility then
    np.testing.assert_allclose(out, torch.nn.GroupNorm(2, 4, affine=False)(torch.from_numpy(randn(2, 6, 3))),
                               rtol=1e-5, atol=1e-6)


# -- RMSNorm ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,kwargs,shape", [
    pytest.param((8,), {}, (3, 8), id="default-eps"),
    pytest.param(((4, 8),), dict(eps=1e-3), (2, 4, 8), id="2d-shape-eps1e-3"),
    pytest.param((8,), dict(elementwise_affine=False), (8,), id="no-affine-unbatched"),
])
def test_rmsnorm_matches_torch(args, kwargs, shape, dtype):
    module, layer = _pair("RMSNorm", *args, **kwargs)
    check_layer(module, layer, [randn(*shape, seed=3) * 0.01], dtype=dtype, **_atol(dtype))


def test_rmsnorm_default_eps_is_the_dtype_epsilon(x64):
    """With tiny inputs the epsilon dominates, so a wrong default shows; float64 uses float64's eps."""
    x = np.full((2, 4), 1e-9)
    for dt in (np.float32, np.float64):
        ours = F.rms_norm(jnp.asarray(x, dt), (4,))
        theirs = torch.nn.functional.rms_norm(torch.from_numpy(x.astype(dt)), (4,))
        oracle.assert_close(ours, theirs, f"rms_norm {dt.__name__}", **oracle.tolerance(dt))


def test_rmsnorm_rejects_wrong_trailing_shape_and_names_forward_argument_x():
    layer = fl.RMSNorm(4)
    params, state = layer.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"expected input with shape \[\*, 4\]"):
        layer.apply(params, state, jnp.ones((4, 3)))
    out, _ = layer.apply(params, state, x=jnp.ones((2, 4)))
    assert out.shape == (2, 4)


# -- LocalResponseNorm and CrossMapLRN2d -----------------------------------------------------------

@pytest.mark.parametrize("args,shape", [
    pytest.param((3,), (2, 6, 5), id="size3-3d"),
    pytest.param((2, 1e-2, 0.5, 2.0), (2, 6, 4, 3), id="size2-even-4d"),
    pytest.param((5, 0.3, 0.9, 1.5), (1, 7, 2, 3, 2), id="size5-5d"),
    pytest.param((1,), (2, 3, 4), id="size1"),
    pytest.param((9, 0.5), (2, 4, 3, 3), id="window-wider-than-channels"),
])
def test_local_response_norm_matches_torch(args, shape, dtype):
    module, layer = torch.nn.LocalResponseNorm(*args), fl.LocalResponseNorm(*args)
    assert layer.name == repr(module)
    check_layer(module, layer, [randn(*shape, seed=4, scale=2.0)], dtype=dtype)


def test_local_response_norm_rejects_2d_input():
    with pytest.raises(ValueError, match=r"Expected 3D or higher dimensionality input \(got 2 dimensions\)"):
        fl.LocalResponseNorm(2).apply({}, {}, jnp.ones((3, 4)))


@pytest.mark.parametrize("args,channels", [
    pytest.param((3,), 7, id="size3"),
    pytest.param((2, 0.5, 0.75, 1.0), 6, id="size2"),
    pytest.param((4, 0.3, 0.5, 2), 8, id="size4-even"),
    pytest.param((5, 1.0, 0.6, 1.5), 9, id="size5"),
    pytest.param((5, 0.5), 3, id="window-wider-than-channels"),
])
def test_cross_map_lrn2d_matches_torch_forward_and_backward(args, channels, dtype):
    """Matches torch's legacy forward window and its hand-written backward (not the exact derivative)."""
    module, layer = torch.nn.CrossMapLRN2d(*args), fl.CrossMapLRN2d(*args)
    assert layer.name == repr(module)
    check_layer(module, layer, [randn(2, channels, 3, 2, seed=5, scale=2.0)], dtype=dtype)


def test_cross_map_lrn2d_needs_4d_input():
    with pytest.raises(ValueError, match="CrossMapLRN2d.*Expected input to be 4D, got 3D instead"):
        fl.CrossMapLRN2d(3).apply({}, {}, jnp.ones((2, 3, 4)))


# -- shared -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,args,shape", [
    pytest.param("LayerNorm", ((4, 5),), (3, 4, 5), id="layernorm"),
    pytest.param("GroupNorm", (2, 4), (3, 4, 5), id="groupnorm"),
    pytest.param("RMSNorm", (5,), (3, 5), id="rmsnorm"),
    pytest.param("LocalResponseNorm", (3,), (2, 4, 5), id="lrn"),
    pytest.param("CrossMapLRN2d", (3,), (2, 4, 3, 3), id="crossmap-lrn2d"),
])
def test_jit_grad_vmap(name, args, shape):
    jit_grad_vmap(getattr(fl, name)(*args), randn(*shape))


@pytest.mark.parametrize("name,args,kwargs", [
    pytest.param("LayerNorm", ((4, 5),), {}, id="layernorm"),
    pytest.param("LayerNorm", (5, 1e-3, False), {}, id="layernorm-no-affine"),
    pytest.param("LayerNorm", (5,), dict(bias=False), id="layernorm-no-bias"),
    pytest.param("GroupNorm", (2, 4), {}, id="groupnorm"),
    pytest.param("GroupNorm", (2, 4, 1e-5, True), dict(bias=False), id="groupnorm-no-bias"),
    pytest.param("RMSNorm", ((4, 5), 1e-6), {}, id="rmsnorm"),
])
def test_repr_and_init_match_torch(name, args, kwargs):
    module, layer = getattr(torch.nn, name)(*args, **kwargs), getattr(fl, name)(*args, **kwargs)
    assert layer.name == repr(module)
    params, state = layer.init(jax.random.PRNGKey(0))
    ours = fl.state_dict(params, state)
    assert list(ours) == list(module.state_dict())
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=key)
        assert ours[key].dtype == np.float32


def test_functional_ops_match_torch(dtype):
    tol = oracle.tolerance(dtype)
    x = randn(3, 6, 4, 5, dtype=dtype, seed=6)
    w4, b4 = randn(4, 5, dtype=dtype, seed=7), randn(4, 5, dtype=dtype, seed=8)
    w6, b6 = randn(6, dtype=dtype, seed=9), randn(6, dtype=dtype, seed=10)
    t = torch.from_numpy
    tf = torch.nn.functional
    oracle.assert_close(F.layer_norm(jnp.asarray(x), (4, 5), jnp.asarray(w4), jnp.asarray(b4), 1e-3),
                        tf.layer_norm(t(x), (4, 5), t(w4), t(b4), 1e-3), "layer_norm", **tol)
    oracle.assert_close(F.group_norm(jnp.asarray(x), 3, jnp.asarray(w6), jnp.asarray(b6)),
                        tf.group_norm(t(x), 3, t(w6), t(b6)), "group_norm", **tol)
    oracle.assert_close(F.rms_norm(jnp.asarray(x), [5], jnp.asarray(w4[0]), 1e-4),
                        tf.rms_norm(t(x), [5], t(w4[0]), 1e-4), "rms_norm", **tol)
    oracle.assert_close(F.local_response_norm(jnp.asarray(x), 4, 0.1, 0.6, 1.5),
                        tf.local_response_norm(t(x), 4, 0.1, 0.6, 1.5), "local_response_norm", **tol)
