"""funclayers.init against torch.nn.init: same bounds, moments, structure and errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import TORCH_DTYPES

from funclayers import init

KEY = jax.random.PRNGKey(0)
SHAPE = (256, 128, 3, 3)  # large enough for 0.5% moment comparisons


def _torch(fn, shape, *args, **kwargs):
    torch.manual_seed(0)
    t = torch.empty(shape)
    fn(t, *args, **kwargs)
    return t.numpy()


def _moments_match(ours, theirs, rtol=0.03):
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=rtol)
    np.testing.assert_allclose(ours.mean(), theirs.mean(), atol=0.02 * theirs.std() + 1e-12)


@pytest.mark.parametrize("nonlinearity,param", [
    ("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
    ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param))


def test_calculate_gain_errors_like_torch():
    with pytest.raises(ValueError, match="Unsupported nonlinearity foo"):
        init.calculate_gain("foo")
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)


@pytest.mark.parametrize("shape", [(3, 4), (8, 3, 5), (16, 4, 3, 3), (2, 3, 2, 2, 2)])
def test_fans_match_torch(shape):
    assert init.calculate_fan_in_and_fan_out(shape) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.calculate_fan_in_and_fan_out((5,))


@pytest.mark.parametrize("ours,theirs,kwargs", [
    (init.uniform, torch.nn.init.uniform_, dict(a=-0.5, b=2.0)),
    (init.normal, torch.nn.init.normal_, dict(mean=0.5, std=2.0)),
    (init.trunc_normal, torch.nn.init.trunc_normal_, dict(mean=0.0, std=1.0, a=-1.0, b=1.5)),
    (init.xavier_uniform, torch.nn.init.xavier_uniform_, dict(gain=2.0)),
    (init.xavier_normal, torch.nn.init.xavier_normal_, dict(gain=0.5)),
    (init.kaiming_uniform, torch.nn.init.kaiming_uniform_, dict(a=math.sqrt(5))),
    (init.kaiming_uniform, torch.nn.init.kaiming_uniform_, dict(mode="fan_out", nonlinearity="relu")),
    (init.kaiming_normal, torch.nn.init.kaiming_normal_, dict(a=0.1)),
    (init.kaiming_normal, torch.nn.init.kaiming_normal_, dict(mode="fan_out", nonlinearity="relu")),
], ids=["uniform", "normal", "trunc_normal", "xavier_uniform", "xavier_normal", "kaiming_uniform-a_sqrt5",
        "kaiming_uniform-fan_out-relu", "kaiming_normal", "kaiming_normal-fan_out-relu"])
def test_random_initialisers_match_torch_distribution(ours, theirs, kwargs):
    got = ours(KEY, SHAPE, **kwargs)
    expected = _torch(theirs, SHAPE, **kwargs)
    _moments_match(got, expected)
    # the support: bounded initialisers stay inside torch's bounds and reach near them
    if ours in (init.uniform, init.xavier_uniform, init.kaiming_uniform, init.trunc_normal):
        assert float(got.min()) >= expected.min() - 1e-3 * abs(expected.min()) - 1e-6
        assert float(got.max()) <= expected.max() + 1e-3 * abs(expected.max()) + 1e-6
        np.testing.assert_allclose([got.min(), got.max()], [expected.min(), expected.max()], rtol=0.02, atol=1e-3)


def test_deterministic_in_the_key_and_dtype_follows_argument(x64):
    a = init.kaiming_uniform(KEY, (4, 3))
    b = init.kaiming_uniform(KEY, (4, 3))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == jnp.float32  # torch's default dtype, even under jax_enable_x64
    assert init.normal(KEY, (4, 3), jnp.float64).dtype == jnp.float64
    assert init.uniform(KEY, (2,), jnp.bfloat16).dtype == jnp.bfloat16


@pytest.mark.parametrize("ours,theirs,args", [
    (init.constant, torch.nn.init.constant_, (0.3,)),
    (init.ones, torch.nn.init.ones_, ()),
    (init.zeros, torch.nn.init.zeros_, ()),
])
def test_constant_initialisers_match_torch(ours, theirs, args):
    np.testing.assert_array_equal(ours(KEY, (3, 5), None, *args), _torch(theirs, (3, 5), *args))


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_eye_matches_torch(shape):
    np.testing.assert_array_equal(init.eye(KEY, shape), _torch(torch.nn.init.eye_, shape))


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((4, 6, 3, 3), 1), ((6, 2, 3, 3, 3), 3),
                                          ((4, 4, 2, 2), 1)])
def test_dirac_matches_torch(shape, groups):
    np.testing.assert_array_equal(init.dirac(KEY, shape, groups=groups),
                                  _torch(torch.nn.init.dirac_, shape, groups=groups))


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (16, 4, 3, 3)])
def test_orthogonal_is_orthogonal_with_gain(shape):
    w = np.asarray(init.orthogonal(KEY, shape, gain=2.0), np.float64).reshape(shape[0], -1)
    small = min(w.shape)
    gram = w @ w.T if w.shape[0] == small else w.T @ w
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(w), np.linalg.norm(_torch(torch.nn.init.orthogonal_, shape, gain=2.0)),
                               rtol=1e-4)


def test_sparse_zeroes_a_fraction_of_each_column_like_torch():
    w = np.asarray(init.sparse(KEY, (100, 20), sparsity=0.3, std=0.5))
    expected = _torch(torch.nn.init.sparse_, (100, 20), 0.3, 0.5)
    np.testing.assert_array_equal((w == 0).sum(0), (expected == 0).sum(0))
    np.testing.assert_allclose(w[w != 0].std(), expected[expected != 0].std(), rtol=0.1)


def test_bias_uniform_bound():
    b = init.bias_uniform(KEY, (10000,), fan_in=16)
    assert float(jnp.abs(b).max()) <= 0.25 and float(jnp.abs(b).max()) > 0.24


@pytest.mark.parametrize("fn,shape,match", [
    (init.eye, (2, 3, 4), "Only tensors with 2 dimensions are supported"),
    (init.dirac, (2, 3), "Only tensors with 3, 4, or 5 dimensions are supported"),
    (init.orthogonal, (3,), "Only tensors with 2 or more dimensions are supported"),
])
def test_shape_errors_like_torch(fn, shape, match):
    with pytest.raises(ValueError, match=match):
        fn(KEY, shape)


def test_kaiming_mode_error_like_torch():
    with pytest.raises(ValueError, match="Mode fan_avg not supported, please use one of fan_in, fan_out"):
        init.kaiming_uniform(KEY, (3, 4), mode="fan_avg")


def test_dirac_groups_must_divide():
    with pytest.raises(ValueError, match="dim 0 must be divisible by groups"):
        init.dirac(KEY, (5, 3, 3), groups=2)


# -- torch's in-place names: (key, tensor, ...) -> a new array like tensor -------------------------------------

INPLACE = ["uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_"]


def test_inplace_names_are_torchs_public_list():
    torchs = {n for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")}
    assert torchs == set(INPLACE)


@pytest.mark.parametrize("name", INPLACE)
def test_inplace_signature_is_torchs_after_the_key(name):
    import inspect

    ours = list(inspect.signature(getattr(init, name)).parameters.values())
    theirs = list(inspect.signature(getattr(torch.nn.init, name)).parameters.values())
    assert ours[0].name == "key"
    assert [(p.name, p.default) for p in ours[1:]] == [(p.name, p.default) for p in theirs]


def _torch_like(fn, shape, dtype, *args, **kwargs):
    torch.manual_seed(0)
    t = torch.empty(shape, dtype=TORCH_DTYPES[np.dtype(dtype)])
    fn(t, *args, **kwargs)
    return t.numpy()


@pytest.mark.parametrize("name,shape,args", [
    ("constant_", (3, 5), (0.3,)), ("ones_", (4,), ()), ("zeros_", (2, 3, 4), ()), ("eye_", (3, 5), ()),
    ("eye_", (5, 3), ()), ("dirac_", (6, 3, 3, 3), (2,)), ("dirac_", (4, 6, 3), ()), ("dirac_", (6, 2, 3, 3, 3), (3,)),
])
def test_inplace_deterministic_match_torch_exactly(name, shape, args, dtype):
    tensor = np.full(shape, 7.0, dtype)
    got = getattr(init, name)(None, jnp.asarray(tensor), *args)
    assert got.dtype == dtype and got.shape == shape
    np.testing.assert_array_equal(got, _torch_like(getattr(torch.nn.init, name), shape, dtype, *args))
    np.testing.assert_array_equal(tensor, np.full(shape, 7.0, dtype))  # the argument is left alone


def test_inplace_deterministic_keep_integer_dtypes():
    idx = jnp.arange(6, dtype=jnp.int32).reshape(2, 3)
    for name, args in (("zeros_", ()), ("ones_", ()), ("constant_", (4,)), ("eye_", ())):
        got = getattr(init, name)(None, idx, *args)
        t = torch.from_numpy(np.asarray(idx).copy())
        getattr(torch.nn.init, name)(t, *args)
        assert got.dtype == jnp.int32
        np.testing.assert_array_equal(got, t.numpy())


def _truncnorm_moments(mean, std, a, b):
    """Mean and standard deviation of N(mean, std^2) truncated to [a, b]."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    m = (pdf(alpha) - pdf(beta)) / z
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - m * m
    return mean + std * m, std * math.sqrt(var)


_W = (128, 64, 2, 2)  # 32768 values; fan_in 256, fan_out 512
_FAN_IN, _FAN_OUT = 256, 512
# (name, torch's other arguments, theoretical mean, std, kurtosis bound, support bound or None)
RANDOM = [
    ("uniform_", dict(a=-0.5, b=1.5), 0.5, 2 / math.sqrt(12), 1.8, (-0.5, 1.5)),
    ("normal_", dict(mean=0.5, std=2.0), 0.5, 2.0, 3.0, None),
    ("trunc_normal_", dict(mean=0.2, std=1.0, a=-1.0, b=1.5), *_truncnorm_moments(0.2, 1.0, -1.0, 1.5), 3.0,
     (-1.0, 1.5)),
    ("xavier_uniform_", dict(gain=2.0), 0.0, 2.0 * math.sqrt(2.0 / (_FAN_IN + _FAN_OUT)), 1.8,
     (-2.0 * math.sqrt(6.0 / (_FAN_IN + _FAN_OUT)), 2.0 * math.sqrt(6.0 / (_FAN_IN + _FAN_OUT)))),
    ("xavier_normal_", dict(gain=0.5), 0.0, 0.5 * math.sqrt(2.0 / (_FAN_IN + _FAN_OUT)), 3.0, None),
    ("kaiming_uniform_", dict(a=math.sqrt(5)), 0.0, 1 / math.sqrt(3 * _FAN_IN), 1.8,
     (-1 / math.sqrt(_FAN_IN), 1 / math.sqrt(_FAN_IN))),
    ("kaiming_normal_", dict(mode="fan_out", nonlinearity="relu"), 0.0, math.sqrt(2.0 / _FAN_OUT), 3.0, None),
]


@pytest.mark.parametrize("name,kwargs,mean,std,kurtosis,support", RANDOM, ids=[r[0] for r in RANDOM])
def test_inplace_random_follow_torchs_distribution(name, kwargs, mean, std, kurtosis, support, dtype):
    """Ours and torch's samples both within 5 standard errors of the distribution's mean and std."""
    got = getattr(init, name)(KEY, jnp.empty(_W, dtype), **kwargs, generator=None)
    assert got.shape == _W and got.dtype == dtype
    theirs = _torch_like(getattr(torch.nn.init, name), _W, dtype, **kwargs)
    n = math.prod(_W)
    mean_tol = 5 * std / math.sqrt(n)
    std_tol = 5 * std * math.sqrt((kurtosis - 1) / (4 * n))  # the standard error of a sample std
    for who, sample in (("ours", np.asarray(got, np.float64)), ("torch", theirs.astype(np.float64))):
        assert abs(sample.mean() - mean) < mean_tol, (who, sample.mean(), mean)
        assert abs(sample.std() - std) < std_tol, (who, sample.std(), std)
        if support is not None:
            lo, hi = support
            slack = 1e-6 * (hi - lo)  # the bounds' rounding in float32
            assert lo - slack <= sample.min() and sample.max() <= hi + slack, (who, sample.min(), sample.max())
            # the sample reaches within 50 / n of the width from each bound: it misses with probability
            # exp(-50 * width * density there), below e^-25 for these distributions (uniform: e^-50)
            near = 50 * (hi - lo) / n
            assert sample.min() < lo + near and sample.max() > hi - near, (who, sample.min(), sample.max())


@pytest.mark.parametrize("shape", [(10, 6), (4, 3, 2, 2)])  # orthonormal columns; rows (of the flattened weight)
def test_inplace_orthogonal_is_orthogonal(shape, dtype):
    w = init.orthogonal_(KEY, jnp.empty(shape, dtype), gain=1.5)
    assert w.shape == shape and w.dtype == dtype
    flat = np.asarray(w).reshape(shape[0], -1)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(gram, 2.25 * np.eye(min(flat.shape)), atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("rows,cols,sparsity", [(100, 20, 0.3), (7, 5, 0.05)])
def test_inplace_sparse_zero_count_per_column_is_torchs(rows, cols, sparsity, dtype):
    w = np.asarray(init.sparse_(KEY, jnp.empty((rows, cols), dtype), sparsity, std=0.5))
    expected = _torch_like(torch.nn.init.sparse_, (rows, cols), dtype, sparsity, 0.5)
    assert w.dtype == dtype
    np.testing.assert_array_equal((w == 0).sum(0), (expected == 0).sum(0))
    np.testing.assert_array_equal((w == 0).sum(0), np.full(cols, math.ceil(sparsity * rows)))


def test_inplace_errors():
    with pytest.raises(TypeError, match="init.normal_ draws floating-point values and needs a floating array"):
        init.normal_(KEY, jnp.zeros((3, 4), jnp.int32))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(None, jnp.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.sparse_(KEY, jnp.zeros((2, 3, 4)), 0.1)
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_normal_(KEY, jnp.zeros((3, 4)), mode="fan_avg")


def test_inplace_under_jit_and_on_shape_structs():
    w = jnp.zeros((8, 4))
    jitted = jax.jit(init.kaiming_uniform_)(KEY, w)
    np.testing.assert_array_equal(jitted, init.kaiming_uniform_(KEY, w))
    assert init.xavier_normal_(KEY, jax.ShapeDtypeStruct((3, 4), jnp.float32)).shape == (3, 4)
