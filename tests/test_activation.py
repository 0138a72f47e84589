"""Element-wise activations against torch 2.13: values, gradients (at the break points too), dtypes, edge
values, errors. The softmax family is in test_softmax.py."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_jit_grad_vmap, check_layer, randn

import funclayers as fl
import funclayers.functional as F

KEY = jax.random.PRNGKey(0)
TF = torch.nn.functional

# (id, torch module factory, funclayers layer factory): every class and every constructor option.
CASES = [
    ("ELU", lambda: torch.nn.ELU(), lambda: fl.ELU()),
    ("ELU-alpha0.5", lambda: torch.nn.ELU(alpha=0.5), lambda: fl.ELU(alpha=0.5)),
    ("ELU-negative_alpha", lambda: torch.nn.ELU(alpha=-1.5), lambda: fl.ELU(alpha=-1.5)),
    ("CELU", lambda: torch.nn.CELU(), lambda: fl.CELU()),
    ("CELU-alpha2", lambda: torch.nn.CELU(2.0), lambda: fl.CELU(2.0)),
    ("SELU-inplace", lambda: torch.nn.SELU(inplace=True), lambda: fl.SELU(inplace=True)),
    ("GELU", lambda: torch.nn.GELU(), lambda: fl.GELU()),
    ("GELU-tanh", lambda: torch.nn.GELU("tanh"), lambda: fl.GELU("tanh")),
    ("Hardshrink", lambda: torch.nn.Hardshrink(), lambda: fl.Hardshrink()),
    ("Hardshrink-lambd2", lambda: torch.nn.Hardshrink(2.0), lambda: fl.Hardshrink(2.0)),
    ("Hardsigmoid", lambda: torch.nn.Hardsigmoid(), lambda: fl.Hardsigmoid()),
    ("Hardswish", lambda: torch.nn.Hardswish(), lambda: fl.Hardswish()),
    ("Hardtanh", lambda: torch.nn.Hardtanh(), lambda: fl.Hardtanh()),
    ("Hardtanh-range", lambda: torch.nn.Hardtanh(-2.0, 3.0, True), lambda: fl.Hardtanh(-2.0, 3.0, True)),
    ("LeakyReLU", lambda: torch.nn.LeakyReLU(), lambda: fl.LeakyReLU()),
    (
        "LeakyReLU-slope0.5",
        lambda: torch.nn.LeakyReLU(0.5, inplace=True),
        lambda: fl.LeakyReLU(0.5, inplace=True),
    ),
    ("LeakyReLU-slope0", lambda: torch.nn.LeakyReLU(0.0), lambda: fl.LeakyReLU(0.0)),
    ("LogSigmoid", lambda: torch.nn.LogSigmoid(), lambda: fl.LogSigmoid()),
    ("ReLU", lambda: torch.nn.ReLU(), lambda: fl.ReLU()),
    ("ReLU6", lambda: torch.nn.ReLU6(inplace=True), lambda: fl.ReLU6(inplace=True)),
    ("RReLU-eval", lambda: torch.nn.RReLU(0.1, 0.3), lambda: fl.RReLU(0.1, 0.3)),
    ("Sigmoid", lambda: torch.nn.Sigmoid(), lambda: fl.Sigmoid()),
    ("SiLU", lambda: torch.nn.SiLU(), lambda: fl.SiLU()),
    ("Mish", lambda: torch.nn.Mish(), lambda: fl.Mish()),
    ("Softplus", lambda: torch.nn.Softplus(), lambda: fl.Softplus()),
    ("Softplus-beta2-threshold1", lambda: torch.nn.Softplus(2, 1), lambda: fl.Softplus(2, 1)),
    (
        "Softplus-beta0.5-threshold-negative",
        lambda: torch.nn.Softplus(0.5, -1.0),
        lambda: fl.Softplus(0.5, -1.0),
    ),
    ("Softshrink", lambda: torch.nn.Softshrink(), lambda: fl.Softshrink()),
    ("Softshrink-lambd1", lambda: torch.nn.Softshrink(1), lambda: fl.Softshrink(1)),
    ("Softshrink-lambd0", lambda: torch.nn.Softshrink(0.0), lambda: fl.Softshrink(0.0)),
    ("Softsign", lambda: torch.nn.Softsign(), lambda: fl.Softsign()),
    ("Tanh", lambda: torch.nn.Tanh(), lambda: fl.Tanh()),
    ("Tanhshrink", lambda: torch.nn.Tanhshrink(), lambda: fl.Tanhshrink()),
    ("Threshold", lambda: torch.nn.Threshold(0.5, 20.0), lambda: fl.Threshold(0.5, 20.0)),
    (
        "Threshold-negative-inplace",
        lambda: torch.nn.Threshold(-1.0, -3.0, True),
        lambda: fl.Threshold(-1.0, -3.0, True),
    ),
    ("PReLU", lambda: torch.nn.PReLU(), lambda: fl.PReLU()),
    ("PReLU-init0.1", lambda: torch.nn.PReLU(init=0.1), lambda: fl.PReLU(init=0.1)),
]
CASE_PARAMS = [pytest.param(make_torch, make_ours, id=name) for name, make_torch, make_ours in CASES]

# The break points of every piecewise activation above, where the choice of branch decides the gradient.
BREAK_POINTS = [0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 6.0, 20.0, -20.0, 10.0, -1.5]


def _input_with_break_points(shape, seed=0):
    x = randn(*shape, seed=seed, scale=3.0)
    flat = x.reshape(-1)
    flat[: len(BREAK_POINTS)] = BREAK_POINTS[: flat.size]
    return x


# torch's float32 GELU-tanh backward loses up to ~1e-6 absolute to the cancellation in 1 + tanh(u)
# (checked against float64 in test_gelu_tanh_gradient_is_accurate_in_float32); ours is accurate to ~1e-7.
FLOAT32_ATOL = {"GELU-tanh": 2e-6}


@pytest.mark.parametrize("make_torch,make_ours", CASE_PARAMS)
def test_activation_matches_torch_including_break_points(make_torch, make_ours, dtype, request):
    """Values and gradients on N(0, 9) data that also hits every break point exactly."""
    module, layer = make_torch(), make_ours()
    assert repr(layer) == repr(module)
    if getattr(module, "inplace", False):
        module.inplace = False  # torch cannot backpropagate to a leaf modified in place
    case = request.node.callspec.id.split("-", 1)[1]
    tol = dict(atol=FLOAT32_ATOL[case]) if case in FLOAT32_ATOL and dtype == np.float32 else {}
    check_layer(module, layer, [_input_with_break_points((4, 3, 5))], dtype=dtype, **tol)


def test_gelu_tanh_gradient_is_accurate_in_float32():
    x = np.concatenate([np.linspace(-12, 8, 2001), randn(4000, scale=3.0)]).astype(np.float32)
    t64 = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    TF.gelu(t64, approximate="tanh").sum().backward()
    ours = jax.grad(lambda v: F.gelu(v, approximate="tanh").sum())(jnp.asarray(x))
    np.testing.assert_allclose(ours, t64.grad.numpy(), rtol=1e-6, atol=3e-7)


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param((), id="scalar"),
        pytest.param((5,), id="unbatched"),
    ],
)
@pytest.mark.parametrize(
    "make_torch,make_ours",
    [
        pytest.param(lambda: torch.nn.GELU(), lambda: fl.GELU(), id="GELU"),
        pytest.param(lambda: torch.nn.PReLU(), lambda: fl.PReLU(), id="PReLU"),
        pytest.param(
            lambda: torch.nn.Softplus(2, -100), lambda: fl.Softplus(2, -100), id="Softplus-beta_threshold"
        ),
    ],
)
def test_activation_accepts_any_rank_like_torch(make_torch, make_ours, shape, dtype):
    check_layer(make_torch(), make_ours(), [randn(*shape)], dtype=dtype)


# -- numerics: extreme values, half precision, NaN --------------------------------------------------------

EXTREMES = np.array([-1e4, -1e3, -88.0, -50.0, -20.0, -1.0, 0.0, 1.0, 20.0, 50.0, 88.0, 1e3, 1e4])
ROBUST = [
    pytest.param(lambda: torch.nn.LogSigmoid(), lambda: fl.LogSigmoid(), id="LogSigmoid"),
    pytest.param(lambda: torch.nn.Softplus(), lambda: fl.Softplus(), id="Softplus"),
    pytest.param(lambda: torch.nn.Softplus(0.5, 30.0), lambda: fl.Softplus(0.5, 30.0), id="Softplus-beta0.5"),
    pytest.param(lambda: torch.nn.SELU(), lambda: fl.SELU(), id="SELU"),
    pytest.param(lambda: torch.nn.ELU(), lambda: fl.ELU(), id="ELU"),
    pytest.param(lambda: torch.nn.CELU(0.5), lambda: fl.CELU(0.5), id="CELU"),
    pytest.param(lambda: torch.nn.GELU(), lambda: fl.GELU(), id="GELU"),
    pytest.param(lambda: torch.nn.GELU("tanh"), lambda: fl.GELU("tanh"), id="GELU-tanh"),
    pytest.param(lambda: torch.nn.SiLU(), lambda: fl.SiLU(), id="SiLU"),
    pytest.param(lambda: torch.nn.Mish(), lambda: fl.Mish(), id="Mish"),
    pytest.param(lambda: torch.nn.Sigmoid(), lambda: fl.Sigmoid(), id="Sigmoid"),
    pytest.param(lambda: torch.nn.Tanh(), lambda: fl.Tanh(), id="Tanh"),
    pytest.param(lambda: torch.nn.Softsign(), lambda: fl.Softsign(), id="Softsign"),
    pytest.param(lambda: torch.nn.Tanhshrink(), lambda: fl.Tanhshrink(), id="Tanhshrink"),
    pytest.param(lambda: torch.nn.LogSoftmax(0), lambda: fl.LogSoftmax(0), id="LogSoftmax"),
    pytest.param(lambda: torch.nn.Softmax(0), lambda: fl.Softmax(0), id="Softmax"),
    pytest.param(lambda: torch.nn.Softmin(0), lambda: fl.Softmin(0), id="Softmin"),
]


@pytest.mark.parametrize("make_torch,make_ours", ROBUST)
def test_activation_is_robust_at_large_magnitudes_like_torch(make_torch, make_ours, dtype):
    result = check_layer(make_torch(), make_ours(), [EXTREMES], dtype=dtype)
    assert np.all(np.isfinite(np.asarray(result["out"])))
    assert np.all(np.isfinite(np.asarray(result["grads"][1][0])))


# the list (LogSigmoid, Softplus, LogSoftmax, SELU) and the other exp/erf-based activations
HALF_PRECISION = [
    p
    for p in ROBUST
    if p.id in ("LogSigmoid", "Softplus", "SELU", "GELU", "GELU-tanh", "SiLU", "Mish", "LogSoftmax")
]


@pytest.mark.parametrize(
    "half", [pytest.param(jnp.float16, id="float16"), pytest.param(jnp.bfloat16, id="bfloat16")]
)
@pytest.mark.parametrize("make_torch,make_ours", HALF_PRECISION)
def test_activation_in_half_precision_matches_torch_with_finite_gradients(make_torch, make_ours, half):
    x = np.concatenate([EXTREMES, randn(20, seed=3, scale=4.0)]).astype(np.float32)
    torch_half = torch.float16 if half == jnp.float16 else torch.bfloat16
    t_x = torch.from_numpy(x).to(torch_half).requires_grad_(True)
    t_out = make_torch()(t_x)
    t_out.float().sum().backward()
    layer = make_ours()
    xh = jnp.asarray(x, half)

    def f(x):
        return layer.apply({}, {}, x)[0]

    out = f(xh)
    grad = jax.grad(lambda x: f(x).astype(jnp.float32).sum())(xh)
    assert out.dtype == half and grad.dtype == half
    eps = float(jnp.finfo(half).eps)
    np.testing.assert_allclose(
        np.asarray(out, np.float32), t_out.detach().float().numpy(), rtol=2 * eps, atol=2 * eps
    )
    np.testing.assert_allclose(
        np.asarray(grad, np.float32), t_x.grad.float().numpy(), rtol=4 * eps, atol=4 * eps
    )
    assert np.all(np.isfinite(np.asarray(out, np.float32))) and np.all(
        np.isfinite(np.asarray(grad, np.float32))
    )


@pytest.mark.parametrize(
    "name,args",
    [
        pytest.param("relu", (), id="relu"),
        pytest.param("relu6", (), id="relu6"),
        pytest.param("hardtanh", (), id="hardtanh"),
        pytest.param("threshold", (0.5, 2.0), id="threshold"),
        pytest.param("leaky_relu", (), id="leaky_relu"),
        pytest.param("elu", (), id="elu"),
        pytest.param("hardsigmoid", (), id="hardsigmoid"),
        pytest.param("hardswish", (), id="hardswish"),
        pytest.param("hardshrink", (), id="hardshrink"),
        pytest.param("softshrink", (), id="softshrink"),
        pytest.param("gelu", (), id="gelu"),
        pytest.param("logsigmoid", (), id="logsigmoid"),
        pytest.param("softplus", (), id="softplus"),
        pytest.param("mish", (), id="mish"),
    ],
)
def test_nan_propagates_like_torch(name, args):
    x = np.array([np.nan, -np.inf, np.inf, -1.0, 0.0, 0.1], np.float32)
    ours = getattr(F, name)(jnp.asarray(x), *args)
    # torch's reference one element at a time: its scalar kernel. Its vectorised float32 kernels
    # depend on the CPU (on AVX-512, gelu(+inf) comes out NaN from the vectorised erf; the scalar
    # path and float64 give +inf, the limit), so a whole-array call would make the test hardware-dependent.
    theirs = np.concatenate([getattr(TF, name)(torch.from_numpy(x[i:i + 1]), *args).numpy() for i in range(x.size)])
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-6, equal_nan=True)


# -- dtypes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_torch,make_ours",
    [
        pytest.param(lambda: torch.nn.ReLU(), lambda: fl.ReLU(), id="ReLU"),
        pytest.param(lambda: torch.nn.ReLU6(), lambda: fl.ReLU6(), id="ReLU6"),
        pytest.param(lambda: torch.nn.Hardtanh(), lambda: fl.Hardtanh(), id="Hardtanh"),
        pytest.param(lambda: torch.nn.Threshold(0.5, 2), lambda: fl.Threshold(0.5, 2), id="Threshold"),
        pytest.param(lambda: torch.nn.Sigmoid(), lambda: fl.Sigmoid(), id="Sigmoid"),
        pytest.param(lambda: torch.nn.Tanh(), lambda: fl.Tanh(), id="Tanh"),
        pytest.param(lambda: torch.nn.Softsign(), lambda: fl.Softsign(), id="Softsign"),
        pytest.param(lambda: torch.nn.Tanhshrink(), lambda: fl.Tanhshrink(), id="Tanhshrink"),
    ],
)
def test_integer_input_keeps_or_promotes_dtype_like_torch(make_torch, make_ours):
    x = np.array([-7, -2, 0, 1, 3, 9], np.int32)
    theirs = make_torch()(torch.from_numpy(x))
    ours, _ = make_ours().apply({}, {}, jnp.asarray(x))
    assert np.dtype(ours.dtype) == theirs.numpy().dtype
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "make_ours",
    [
        pytest.param(lambda: fl.GELU(), id="GELU"),
        pytest.param(lambda: fl.ELU(), id="ELU"),
        pytest.param(lambda: fl.LeakyReLU(), id="LeakyReLU"),
        pytest.param(lambda: fl.Softplus(), id="Softplus"),
        pytest.param(lambda: fl.Softmax(0), id="Softmax"),
        pytest.param(lambda: fl.Mish(), id="Mish"),
    ],
)
def test_integer_input_is_rejected_where_torch_has_no_integer_kernel(make_ours):
    layer = make_ours()
    with pytest.raises(TypeError, match="expects a floating-point input, got dtype int32"):
        layer.apply({}, {}, jnp.arange(4, dtype=jnp.int32))


def test_output_dtype_follows_the_input(x64):
    """The output has the input's dtype (PReLU's parameters in that dtype: torch's prelu raises for a mix)."""
    for dt in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64):
        for layer in (fl.GELU(), fl.PReLU(3, dtype=dt), fl.Softmax(-1)):
            params, state = layer.init(KEY)
            out = jax.eval_shape(
                lambda x, layer=layer, params=params, state=state: layer.apply(params, state, x)[0],
                jax.ShapeDtypeStruct((2, 3), dt),
            )
            assert out.dtype == dt, (layer, dt)


# -- PReLU --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param((2, 3), id="2d"),
        pytest.param((2, 3, 4), id="3d"),
        pytest.param((2, 3, 4, 5), id="4d"),
        pytest.param((2, 3, 2, 2, 2), id="5d"),
    ],
)
def test_prelu_per_channel_matches_torch(shape, dtype):
    torch.manual_seed(0)
    module = torch.nn.PReLU(3)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([0.1, -0.5, 2.0]))  # distinct slopes, so a wrong axis shows
    check_layer(module, fl.PReLU(3), [randn(*shape)], dtype=dtype)


def test_prelu_init_names_and_dtype():
    layer = fl.PReLU(4, init=0.3)
    params, state = layer.init(KEY)
    module = torch.nn.PReLU(4, init=0.3)
    assert repr(layer) == repr(module) == "PReLU(num_parameters=4)"
    np.testing.assert_array_equal(params["weight"], module.weight.detach().numpy())
    assert state == {} and params["weight"].dtype == jnp.float32
    assert fl.PReLU(dtype=jnp.bfloat16).init(KEY)[0]["weight"].dtype == jnp.bfloat16


@pytest.mark.parametrize(
    "shape,match",
    [
        pytest.param(
            (2, 4),
            r"expects 3 channels in dim 1 of its input .* got input of shape \(2, 4\)",
            id="wrong_channels",
        ),
        pytest.param((3,), "Found parameter numbers = 3 and channel size = 1", id="1d_input_has_one_channel"),
        pytest.param((), "Not allow zero-dim input tensor", id="scalar"),
    ],
)
def test_prelu_rejects_inputs_torch_rejects(shape, match):
    layer = fl.PReLU(3)
    params, state = layer.init(KEY)
    with pytest.raises(ValueError, match=match):
        layer.apply(params, state, jnp.ones(shape))
    with pytest.raises(RuntimeError):
        torch.nn.PReLU(3)(torch.ones(shape))


def test_prelu_gradient_of_a_shared_slope_sums_over_all_elements(dtype):
    torch.manual_seed(0)
    check_layer(torch.nn.PReLU(), fl.PReLU(), [randn(4, 3, 6)], dtype=dtype)


# -- RReLU --------------------------------------------------------------------------------------------------


def test_rrelu_in_training_with_equal_bounds_matches_torch(dtype):
    check_layer(
        torch.nn.RReLU(0.2, 0.2),
        fl.RReLU(0.2, 0.2),
        [_input_with_break_points((3, 4))],
        dtype=dtype,
        training=True,
    )


def test_rrelu_training_draws_slopes_in_bounds_from_rng():
    layer = fl.RReLU(0.1, 0.3)
    x = -jnp.abs(jnp.asarray(randn(100_000))) - 0.1
    x = x.at[:1000].set(jnp.abs(x[:1000]))  # some positive entries pass unchanged
    out, _ = layer.apply({}, {}, x, rng=KEY, training=True)
    slopes = np.asarray(out[1000:] / x[1000:])
    np.testing.assert_array_equal(out[:1000], x[:1000])
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3
    # U(0.1, 0.3): mean 0.2, std 0.2 / sqrt(12); compare with torch's draws
    t_slopes = (
        torch.nn.RReLU(0.1, 0.3).train()(torch.from_numpy(np.array(x[1000:])))
        / torch.from_numpy(np.array(x[1000:]))
    ).numpy()
    np.testing.assert_allclose(slopes.mean(), t_slopes.mean(), atol=2e-3)
    np.testing.assert_allclose(slopes.std(), t_slopes.std(), rtol=0.02)
    again, _ = layer.apply({}, {}, x, rng=KEY, training=True)
    np.testing.assert_array_equal(out, again)
    other, _ = layer.apply({}, {}, x, rng=jax.random.PRNGKey(1), training=True)
    assert not np.allclose(out, other)
    grad = jax.grad(lambda x: layer.apply({}, {}, x, rng=KEY, training=True)[0].sum())(x)
    np.testing.assert_allclose(grad[1000:], slopes, rtol=1e-6)  # torch's backward multiplies by the noise


def test_rrelu_needs_rng_in_training_only():
    layer = fl.RReLU()
    with pytest.raises(ValueError, match="needs `rng`"):
        layer.apply({}, {}, jnp.ones(3), training=True)
    out, _ = layer.apply({}, {}, -jnp.ones(3))  # eval: the mean slope
    np.testing.assert_allclose(out, -(1 / 8 + 1 / 3) / 2 * np.ones(3), rtol=1e-6)
    check_jit_grad_vmap(layer, randn(3, 4), rng=KEY, training=True)


# -- GLU ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dim,shape",
    [
        pytest.param(-1, (5, 6), id="last_dim"),
        pytest.param(1, (5, 6, 7), id="dim1"),
        pytest.param(0, (4,), id="unbatched"),
        pytest.param(-3, (2, 4, 3, 3), id="negative_dim"),
    ],
)
def test_glu_matches_torch(dim, shape, dtype):
    module, layer = torch.nn.GLU(dim), fl.GLU(dim)
    assert repr(layer) == repr(module)
    check_layer(module, layer, [randn(*shape)], dtype=dtype)


@pytest.mark.parametrize(
    "dim,shape,match",
    [
        pytest.param(-1, (3, 5), "Halving dimension must be even, but dimension 1 is size 5", id="odd"),
        pytest.param(-1, (), "glu does not support scalars", id="scalar"),
        pytest.param(
            3,
            (3, 4),
            r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 3\)",
            id="dim_out_of_range",
        ),
    ],
)
def test_glu_rejects_inputs_torch_rejects(dim, shape, match):
    with pytest.raises(ValueError, match=match):
        fl.GLU(dim).apply({}, {}, jnp.ones(shape))
    with pytest.raises((RuntimeError, IndexError), match=match):
        torch.nn.GLU(dim)(torch.ones(shape))


# -- configuration errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,match",
    [
        pytest.param(
            lambda: fl.Hardtanh(1.0, -1.0),
            r"max_val \(-1.0\) must be greater than min_val \(1.0\)",
            id="Hardtanh-max_below_min",
        ),
        pytest.param(
            lambda: fl.Hardtanh(1.0, 1.0),
            r"max_val \(1.0\) must be greater than min_val \(1.0\)",
            id="Hardtanh-max_equals_min",
        ),
        pytest.param(lambda: fl.CELU(0.0), "alpha cannot be 0 for CELU", id="CELU-alpha0"),
        pytest.param(
            lambda: fl.Softshrink(-1.0), "lambda must be .* but found to be -1.0", id="Softshrink-negative"
        ),
        pytest.param(
            lambda: fl.RReLU(0.5, 0.1),
            "Lower bound should be less than or equal to the upper bound",
            id="RReLU-lower_above_upper",
        ),
        pytest.param(
            lambda: fl.GELU("foo"), "approximate argument must be either none or tanh", id="GELU-approximate"
        ),
        pytest.param(lambda: fl.PReLU(-1), "num_parameters must be a non-negative int", id="PReLU-negative"),
    ],
)
def test_bad_configuration_raises_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_functional_ops_check_their_arguments_like_torch():
    x = jnp.ones(3)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(x, 1.0, -1.0)
    np.testing.assert_array_equal(
        F.hardtanh(x * 5, 1.0, 1.0), TF.hardtanh(torch.ones(3) * 5, 1.0, 1.0).numpy()
    )
    with pytest.raises(ValueError, match="alpha cannot be 0 for CELU"):
        F.celu(x, 0.0)
    with pytest.raises(ValueError, match="approximate argument must be either none or tanh"):
        F.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="Lower bound should be less than or equal"):
        F.rrelu(x, 0.5, 0.1)


def test_hardtanh_deprecated_aliases_like_torch():
    layer = fl.Hardtanh(min_value=-2.0, max_value=4.0)
    with pytest.warns(FutureWarning):
        module = torch.nn.Hardtanh(min_value=-2.0, max_value=4.0)
    assert repr(layer) == repr(module)


@pytest.mark.parametrize(
    "name,args",
    [
        pytest.param("elu", (0.7,), id="elu"),
        pytest.param("selu", (), id="selu"),
        pytest.param("celu", (1.3,), id="celu"),
        pytest.param("gelu", (), id="gelu"),
        pytest.param("silu", (), id="silu"),
        pytest.param("mish", (), id="mish"),
        pytest.param("hardswish", (), id="hardswish"),
        pytest.param("hardsigmoid", (), id="hardsigmoid"),
        pytest.param("logsigmoid", (), id="logsigmoid"),
        pytest.param("softplus", (1.5, 3.0), id="softplus"),
        pytest.param("softsign", (), id="softsign"),
        pytest.param("tanhshrink", (), id="tanhshrink"),
        pytest.param("leaky_relu", (0.2,), id="leaky_relu"),
        pytest.param("relu6", (), id="relu6"),
        pytest.param("glu", (0,), id="glu"),
        pytest.param("rrelu", (), id="rrelu-eval"),
    ],
)
def test_functional_ops_match_torch_functional(name, args):
    x = randn(6, 4, seed=2, scale=3.0)
    ours = getattr(F, name)(jnp.asarray(x), *args)
    theirs = getattr(TF, name)(torch.from_numpy(x), *args)
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_functional_prelu_and_sigmoid_tanh_match_torch():
    x, w = randn(2, 3, 4), np.array([0.1, 0.2, 0.3], np.float32)
    np.testing.assert_allclose(
        F.prelu(x, w), TF.prelu(torch.from_numpy(x), torch.from_numpy(w)).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(F.sigmoid(x), torch.sigmoid(torch.from_numpy(x)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(F.tanh(x), torch.tanh(torch.from_numpy(x)).numpy(), rtol=1e-6)


# -- transformations ---------------------------------------------------------------------------------------


# one layer per code path: smooth (opmath, custom_jvp), piecewise, parametrised, split, reductions
@pytest.mark.parametrize(
    "make_ours",
    [
        pytest.param(lambda: fl.GELU(), id="GELU"),
        pytest.param(lambda: fl.GELU("tanh"), id="GELU-tanh"),
        pytest.param(lambda: fl.Hardsigmoid(), id="Hardsigmoid"),
        pytest.param(lambda: fl.Softplus(), id="Softplus"),
        pytest.param(lambda: fl.PReLU(4), id="PReLU-channels"),
        pytest.param(lambda: fl.GLU(1), id="GLU"),
    ],
)
def test_activation_jit_grad_vmap(make_ours):
    check_jit_grad_vmap(make_ours(), randn(2, 4, 3, 2))


def test_activation_layers_ignore_inplace_and_have_no_params():
    for layer in (
        fl.ReLU(True),
        fl.ELU(inplace=True),
        fl.Hardswish(True),
        fl.Hardsigmoid(True),
        fl.SiLU(True),
    ):
        assert layer.init(KEY) == ({}, {})
        x = jnp.asarray(randn(3))
        out, _ = layer.apply({}, {}, x)
        assert out is not x


def test_gelu_is_close_to_the_normal_cdf_definition(x64):
    # independent of torch: x * Phi(x), Phi from math.erf in double precision
    xs = np.linspace(-8, 8, 101)
    expected = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in xs])
    np.testing.assert_allclose(F.gelu(jnp.asarray(xs)), expected, rtol=1e-12, atol=1e-15)
