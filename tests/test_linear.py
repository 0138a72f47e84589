"""Linear family against torch 2.13: Identity, Linear, Bilinear, Flatten, Unflatten."""

import math
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_jit_grad_vmap, check_layer, randn

import funclayers as fl
import funclayers.functional as F

KEY = jax.random.PRNGKey(0)


# -- Linear ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [pytest.param(True, id="bias"), pytest.param(False, id="no_bias")])
@pytest.mark.parametrize(
    "shape",
    [
        pytest.param((5,), id="unbatched"),
        pytest.param((4, 5), id="batched"),
        pytest.param((2, 3, 5), id="two_leading_dims"),
        pytest.param((0, 5), id="empty_batch"),
    ],
)
def test_linear_matches_torch(shape, bias, dtype):
    torch.manual_seed(0)
    check_layer(torch.nn.Linear(5, 3, bias=bias), fl.Linear(5, 3, bias=bias), [randn(*shape)], dtype=dtype)


@pytest.mark.parametrize("bias", [pytest.param(True, id="bias"), pytest.param(False, id="no_bias")])
@pytest.mark.parametrize(
    "features, shape",
    [
        pytest.param((3, 4), (2, 5, 3), id="wider"),
        pytest.param((4, 4), (6, 4), id="square"),
        pytest.param((3, 6), (7, 3), id="rows_above_out"),
    ],
)
def test_linear_input_transposed_weight_gradient_matches_torch(features, shape, bias, dtype):
    """in_features <= out_features <= rows: the weight gradient is (x^T ct)^T (_contract_last_backward)."""
    torch.manual_seed(0)
    check_layer(torch.nn.Linear(*features, bias=bias), fl.Linear(*features, bias=bias), [randn(*shape)], dtype=dtype)


def test_linear_with_zero_in_features_matches_torch(dtype):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="zero-element"):
        module = torch.nn.Linear(0, 3)
    check_layer(module, fl.Linear(0, 3), [randn(4, 0)], dtype=dtype)
    params, _ = fl.Linear(0, 3).init(KEY)
    np.testing.assert_array_equal(params["bias"], np.zeros(3))  # torch's bound is 0 when fan_in is 0


def test_linear_repr_and_param_names_match_torch():
    for args in [(4, 2), (4, 2, False)]:
        layer, module = fl.Linear(*args), torch.nn.Linear(*args)
        assert repr(layer) == repr(module)
        params, state = layer.init(KEY)
        sd = fl.state_dict(params, state)
        assert list(sd) == list(module.state_dict())
        assert all(sd[k].shape == tuple(v.shape) for k, v in module.state_dict().items())
        assert all(v.dtype == np.float32 for v in sd.values())


def _init_bounds_and_std(ours, theirs, bound):
    ours, theirs = np.asarray(ours), theirs.detach().numpy()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
    assert np.abs(ours).max() > 0.99 * bound  # it fills the whole interval, as torch's does
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.02)
    assert abs(ours.mean()) < 0.02 * theirs.std()


def test_linear_init_statistics_match_torch():
    torch.manual_seed(0)
    module = torch.nn.Linear(1024, 512)
    params, _ = fl.Linear(1024, 512).init(KEY)
    bound = 1 / math.sqrt(1024)
    _init_bounds_and_std(params["weight"], module.weight, bound)
    assert np.abs(np.asarray(params["bias"])).max() <= bound
    np.testing.assert_allclose(np.asarray(params["bias"]).std(), bound / math.sqrt(3), rtol=0.15)


def test_linear_param_dtype_argument(x64):
    params, _ = fl.Linear(3, 2, dtype=jnp.float64).init(KEY)
    assert params["weight"].dtype == jnp.float64 and params["bias"].dtype == jnp.float64
    params, _ = fl.Linear(3, 2, dtype=jnp.bfloat16, device="cpu").init(KEY)
    assert params["weight"].dtype == jnp.bfloat16


def test_linear_output_dtype_follows_input(x64):
    """The output has the input's dtype, with parameters of that dtype (torch raises for a mix, so do we)."""
    for dt in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64):
        layer = fl.Linear(3, 2, dtype=dt)
        params, _ = layer.init(KEY)
        out = jax.eval_shape(lambda x, layer=layer, params=params: layer.apply(params, {}, x)[0],
                             jax.ShapeDtypeStruct((4, 3), dt))
        assert out.dtype == dt


@pytest.mark.parametrize(
    "shape,match",
    [
        pytest.param(
            (4, 5),
            r"Linear\(in_features=3, out_features=2, bias=True\) expects an input with 3 features in its "
            r"last dimension, got 5 in input of shape \(4, 5\)",
            id="wrong_features",
        ),
        pytest.param(
            (5,),
            "expects an input with 3 features in its last dimension, got 5",
            id="wrong_features_unbatched",
        ),
        pytest.param((), "at least 1 dimension", id="scalar"),
    ],
)
def test_linear_rejects_bad_input_shapes(shape, match):
    layer = fl.Linear(3, 2)
    params, state = layer.init(KEY)
    with pytest.raises(ValueError, match=match):
        layer.apply(params, state, jnp.ones(shape))
    with pytest.raises(RuntimeError):  # torch raises RuntimeError for the same inputs; ours is both
        layer.apply(params, state, jnp.ones(shape))
    with pytest.raises(RuntimeError):
        torch.nn.Linear(3, 2)(torch.ones(shape))


def test_linear_rejects_integer_input():
    layer = fl.Linear(3, 2)
    params, state = layer.init(KEY)
    with pytest.raises(TypeError, match="expects a floating-point input, got dtype int32"):
        layer.apply(params, state, jnp.ones((4, 3), jnp.int32))


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((-1, 2), id="negative_in"),
        pytest.param((3, -2), id="negative_out"),
        pytest.param((3.5, 2), id="float_in"),
    ],
)
def test_linear_rejects_bad_sizes_at_construction(args):
    with pytest.raises(ValueError, match="must be a non-negative int"):
        fl.Linear(*args)


def test_functional_linear_accepts_a_1d_weight_like_torch(dtype):
    x, w = randn(4, 3, dtype=dtype), randn(3, dtype=dtype, seed=1)
    np.testing.assert_allclose(
        F.linear(x, w), torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w)), rtol=1e-6
    )
    assert F.linear(x, w).shape == (4,)


def test_linear_jit_grad_vmap():
    check_jit_grad_vmap(fl.Linear(3, 2), randn(4, 3))
    check_jit_grad_vmap(fl.Linear(3, 2), randn(3))
    check_jit_grad_vmap(fl.Linear(3, 4), randn(2, 4, 3))  # the input-transposed weight gradient


@pytest.mark.parametrize("features", [pytest.param((6, 4), id="ct_transposed"),
                                      pytest.param((4, 6), id="input_transposed")])
def test_linear_weight_gradient_equals_autodiff_of_the_product(features, x64):
    """Both weight-gradient forms are the vjp of x @ W.T (float64, so the sums agree to rounding),
    second order included (grad of grad w.r.t. the weight and the input)."""
    n_in, n_out = features
    x, w, ct = randn(3, 5, n_in, dtype=np.float64), randn(n_out, n_in, dtype=np.float64, seed=1), randn(
        3, 5, n_out, dtype=np.float64, seed=2)

    def plain(x, w):
        return jnp.einsum("...i,oi->...o", x, w, precision="highest")

    ours = jax.jit(jax.vjp(F.linear, x, w)[1])(ct)
    want = jax.vjp(plain, x, w)[1](ct)
    for got, ref in zip(ours, want):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)

    def second(f):
        return jax.jit(jax.grad(lambda x, w: jnp.sum(jax.grad(lambda w: jnp.sum(f(x, w) ** 3 * ct))(w) ** 2),
                                (0, 1)))(x, w)

    for got, ref in zip(second(F.linear), second(plain)):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


# -- Bilinear --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [pytest.param(True, id="bias"), pytest.param(False, id="no_bias")])
@pytest.mark.parametrize(
    "lead",
    [
        pytest.param((), id="unbatched"),
        pytest.param((8,), id="batched"),
        pytest.param((2, 3), id="two_leading_dims"),
    ],
)
def test_bilinear_matches_torch(lead, bias, dtype):
    torch.manual_seed(0)
    check_layer(
        torch.nn.Bilinear(2, 3, 4, bias=bias),
        fl.Bilinear(2, 3, 4, bias=bias),
        [randn(*lead, 2), randn(*lead, 3, seed=1)],
        dtype=dtype,
    )


def test_bilinear_repr_init_and_names_match_torch():
    torch.manual_seed(0)
    module = torch.nn.Bilinear(64, 32, 128)
    layer = fl.Bilinear(64, 32, 128)
    assert repr(layer) == repr(module)
    params, _ = layer.init(KEY)
    assert list(fl.state_dict(params)) == list(module.state_dict())
    bound = 1 / math.sqrt(64)
    _init_bounds_and_std(params["weight"], module.weight, bound)
    assert np.abs(np.asarray(params["bias"])).max() <= bound


@pytest.mark.parametrize(
    "shapes,match",
    [
        pytest.param(
            ((5, 2), (6, 3)), "input batch dimensions do not match at dim 0: got 5 and 6", id="batch_mismatch"
        ),
        pytest.param(
            ((5, 3), (5, 3)),
            "input1 size does not match weight size: got 3 but expected 2",
            id="in1_mismatch",
        ),
        pytest.param(
            ((5, 2), (5, 2)),
            "input2 size does not match weight size: got 2 but expected 3",
            id="in2_mismatch",
        ),
        pytest.param(((5, 2), (3,)), "input dimensions do not match: got 2 and 1", id="rank_mismatch"),
        pytest.param(((), ()), "at least 1 dimension", id="scalars"),
    ],
)
def test_bilinear_rejects_bad_inputs(shapes, match):
    layer = fl.Bilinear(2, 3, 4)
    params, state = layer.init(KEY)
    with pytest.raises(ValueError, match=match):
        layer.apply(params, state, jnp.ones(shapes[0]), jnp.ones(shapes[1]))
    with pytest.raises((RuntimeError, IndexError)):
        torch.nn.Bilinear(2, 3, 4)(torch.ones(shapes[0]), torch.ones(shapes[1]))


def test_bilinear_rejects_zero_in1_features_like_torch():
    with pytest.raises(ValueError, match=r"in1_features must be > 0, but got \(in1_features=0\)"):
        fl.Bilinear(0, 3, 4)
    with pytest.raises(ValueError, match=r"in1_features must be > 0"):
        torch.nn.Bilinear(0, 3, 4)


def test_bilinear_jit_grad_vmap():
    layer = fl.Bilinear(2, 3, 4)
    params, state = layer.init(KEY)
    x1, x2 = randn(5, 2), randn(5, 3, seed=1)

    def f(a, b):
        return layer.apply(params, state, a, b)[0]

    np.testing.assert_allclose(jax.jit(f)(x1, x2), f(x1, x2), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(f)(x1, x2), f(x1, x2), rtol=1e-5, atol=1e-6)
    g1, g2 = jax.grad(lambda a, b: f(a, b).sum(), argnums=(0, 1))(x1, x2)
    assert g1.shape == x1.shape and g2.shape == x2.shape


# -- Identity --------------------------------------------------------------------------------------------


def test_identity_ignores_constructor_arguments_and_returns_its_input():
    layer = fl.Identity(54, unused_argument1=0.1, unused_argument2=False)
    assert repr(layer) == repr(torch.nn.Identity(54, unused_argument1=0.1)) == "Identity()"
    params, state = layer.init(KEY)
    assert (params, state) == ({}, {})
    x = jnp.arange(6.0).reshape(2, 3)
    out, new_state = layer.apply(params, state, x)
    assert out is x and new_state == {}
    check_jit_grad_vmap(layer, randn(2, 3))


def test_identity_matches_torch(dtype):
    check_layer(torch.nn.Identity(3), fl.Identity(3), [randn(2, 3)], dtype=dtype)


# -- Flatten / Unflatten ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,shape",
    [
        pytest.param((), (2, 3, 4, 5), id="default"),
        pytest.param((0,), (2, 3, 4), id="start0"),
        pytest.param((1, 2), (2, 3, 4, 5), id="start1-end2"),
        pytest.param((-2, -1), (2, 3, 4), id="negative_dims"),
        pytest.param((2, 2), (2, 3, 4), id="start_equals_end"),
        pytest.param((0, -1), (), id="scalar"),
        pytest.param((0, 0), (5,), id="1d"),
        pytest.param((), (2, 0, 3), id="empty"),
    ],
)
def test_flatten_matches_torch(args, shape, dtype):
    module, layer = torch.nn.Flatten(*args), fl.Flatten(*args)
    assert repr(layer) == repr(module)
    check_layer(module, layer, [randn(*shape)], dtype=dtype)


@pytest.mark.parametrize(
    "args,shape,match",
    [
        pytest.param((2, 1), (3, 4, 5), "start_dim cannot come after end_dim", id="start_after_end"),
        pytest.param(
            (5,),
            (3, 4, 5),
            r"Dimension out of range \(expected to be in range of \[-3, 2\], but got 5\)",
            id="start_out_of_range",
        ),
        pytest.param(
            (),
            (3,),
            r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)",
            id="default_on_1d",
        ),
    ],
)
def test_flatten_rejects_bad_dims_like_torch(args, shape, match):
    with pytest.raises(ValueError, match=match):
        fl.Flatten(*args).apply({}, {}, jnp.ones(shape))
    with pytest.raises((RuntimeError, IndexError), match=match):
        torch.nn.Flatten(*args)(torch.ones(shape))


@pytest.mark.parametrize(
    "dim,sizes,shape",
    [
        pytest.param(1, (2, 3), (4, 6), id="tuple"),
        pytest.param(1, [2, 3], (4, 6), id="list"),
        pytest.param(-1, (2, -1), (4, 5, 6), id="inferred"),
        pytest.param(0, (1, 4, 1), (4, 5), id="unit_dims"),
        pytest.param(0, (5,), (5,), id="single_size"),
        pytest.param(1, torch.Size([3, 2]), (4, 6), id="torch_size"),
    ],
)
def test_unflatten_matches_torch(dim, sizes, shape, dtype):
    module, layer = torch.nn.Unflatten(dim, sizes), fl.Unflatten(dim, sizes)
    assert repr(layer) == repr(module)
    check_layer(module, layer, [randn(*shape)], dtype=dtype)


@pytest.mark.parametrize(
    "sizes,error,match",
    [
        pytest.param(
            "ab", TypeError, "unflattened_size must be a tuple of ints, but found type str", id="string"
        ),
        pytest.param((2, 3.0), TypeError, "found element of type float at pos 1", id="float_element"),
        pytest.param((), ValueError, "sizes must be non-empty", id="empty"),
        pytest.param((-1, -1), ValueError, "only one dimension can be inferred", id="two_inferred"),
    ],
)
def test_unflatten_rejects_bad_sizes_at_construction(sizes, error, match):
    with pytest.raises(error, match=match):
        fl.Unflatten(1, sizes)


@pytest.mark.parametrize(
    "dim,sizes,shape,match",
    [
        pytest.param(
            1,
            (4, -1),
            (3, 6),
            r"Provided sizes \[4, -1\] don't multiply up to the size of dim 1 \(6\)",
            id="not_divisible",
        ),
        pytest.param(
            1,
            (2, 2),
            (3, 6),
            r"Provided sizes \[2, 2\] don't multiply up to the size of dim 1 \(6\)",
            id="wrong_product",
        ),
        pytest.param(
            3,
            (2, 3),
            (3, 6),
            r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 3\)",
            id="dim_out_of_range",
        ),
        pytest.param(0, (1,), (), "tensor has no dimensions", id="scalar"),
    ],
)
def test_unflatten_rejects_bad_inputs_like_torch(dim, sizes, shape, match):
    with pytest.raises(ValueError, match=match):
        fl.Unflatten(dim, sizes).apply({}, {}, jnp.ones(shape))
    with pytest.raises((RuntimeError, IndexError)):
        torch.nn.Unflatten(dim, sizes)(torch.ones(shape))


def test_flatten_and_unflatten_jit_grad_vmap():
    check_jit_grad_vmap(fl.Flatten(), randn(2, 3, 4))
    check_jit_grad_vmap(fl.Unflatten(1, (2, -1)), randn(3, 6))


# -- interop: state_dict round trips, containers end to end ----------------------------------------------


def test_linear_state_dict_round_trip_and_strict_errors():
    torch.manual_seed(0)
    module = torch.nn.Linear(4, 3)
    layer = fl.Linear(4, 3)
    params, state = fl.load_state_dict(layer, module.state_dict())
    sd = fl.state_dict(params, state)
    for name, value in module.state_dict().items():
        np.testing.assert_array_equal(sd[name], value.numpy())
    module2 = torch.nn.Linear(4, 3)
    module2.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
    np.testing.assert_array_equal(module2.weight.detach().numpy(), module.weight.detach().numpy())
    with pytest.raises(ValueError, match='Missing key\\(s\\) in state_dict: "bias"'):
        fl.load_state_dict(layer, {"weight": module.weight})
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "bias"'):
        fl.load_state_dict(fl.Linear(4, 3, bias=False), module.state_dict())
    with pytest.raises(ValueError, match="size mismatch for weight"):
        fl.load_state_dict(fl.Linear(3, 3), module.state_dict())


def test_sequential_mlp_loads_torch_state_dict_and_matches_end_to_end(dtype):
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(12, 8),
        torch.nn.GELU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(8, 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 2),
        torch.nn.LogSoftmax(dim=-1),
    )
    layer = fl.Sequential(
        fl.Flatten(),
        fl.Linear(12, 8),
        fl.GELU(),
        fl.Dropout(0.1),
        fl.Linear(8, 8),
        fl.Tanh(),
        fl.Linear(8, 2),
        fl.LogSoftmax(dim=-1),
    )
    assert list(fl.state_dict(*layer.init(KEY))) == list(module.state_dict())
    check_layer(module, layer, [randn(5, 3, 4)], dtype=dtype)


def test_composite_with_named_linear_children_loads_torch_state_dict(dtype):
    class TwoTower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.left = torch.nn.Linear(4, 3)
            self.right = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
            self.head = torch.nn.Bilinear(3, 3, 2)

        def forward(self, x):
            return self.head(self.left(x), self.right(x))

    torch.manual_seed(0)
    layer = fl.Module(
        lambda m, x: m.head(m.left(x), m.right(x)),
        **OrderedDict(
            left=fl.Linear(4, 3), right=fl.Sequential(fl.Linear(4, 3), fl.ReLU()), head=fl.Bilinear(3, 3, 2)
        ),
    )
    check_layer(TwoTower(), layer, [randn(5, 4)], dtype=dtype)
