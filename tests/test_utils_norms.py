"""fl.utils weight norm, spectral norm, parametrize and parametrizations against torch.nn.utils 2.13."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import TORCH_DTYPES, assert_close, check_layer, randn, tolerance

import funclayers as fl
from funclayers._interop import _init_shapes, _leaves
from funclayers.utils import parametrizations, parametrize

P = torch.nn.utils.parametrizations


def _names(layer):
    """The layer's state_dict names in order, from shapes only (no initialiser runs)."""
    return [name for name, _ in _leaves(*_init_shapes(layer))]


def _quiet(fn, *args, **kwargs):
    """torch's old hook API warns that it is deprecated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return fn(*args, **kwargs)


# -- the hook API: weight_norm / spectral_norm ------------------------------------------------------------


@pytest.mark.parametrize("make, shape, dim", [
    pytest.param(lambda t: t.Linear(5, 3), (4, 5), 0, id="linear-dim0"),
    pytest.param(lambda t: t.Conv1d(2, 3, 3), (2, 2, 6), None, id="conv1d-whole"),
])
def test_weight_norm_hook_matches_torch(make, shape, dim, dtype):
    torch.manual_seed(0)
    module = _quiet(torch.nn.utils.weight_norm, make(torch.nn), dim=dim)
    layer = fl.utils.weight_norm(make(fl), dim=dim)
    assert _names(layer) == list(module.state_dict())
    check_layer(module, layer, [randn(*shape)], dtype=dtype)


@pytest.mark.parametrize("make, shape, kwargs, training", [
    pytest.param(lambda t: t.Linear(5, 3), (4, 5), {}, True, id="linear-train"),
    pytest.param(lambda t: t.ConvTranspose2d(2, 3, 2), (1, 2, 3, 3), {"n_power_iterations": 2}, False,
                 id="convT2d-dim1-eval"),
    pytest.param(lambda t: t.Conv2d(2, 3, 2), (1, 2, 3, 3), {"dim": 1, "eps": 1e-6, "n_power_iterations": 2}, True,
                 id="conv2d-dim1-eps-train"),
])
def test_spectral_norm_hook_matches_torch(make, shape, kwargs, training, dtype):
    torch.manual_seed(0)
    module = torch.nn.utils.spectral_norm(make(torch.nn), **kwargs)
    layer = fl.utils.spectral_norm(make(fl), **kwargs)
    assert _names(layer) == list(module.state_dict())
    check_layer(module, layer, [randn(*shape)], dtype=dtype, training=training, steps=2 if training else 1)


def test_remove_weight_norm_and_spectral_norm_match_torch(x64):
    torch.manual_seed(0)
    for apply_t, remove_t, apply_f, remove_f in [
        (torch.nn.utils.weight_norm, torch.nn.utils.remove_weight_norm, fl.utils.weight_norm,
         fl.utils.remove_weight_norm),
        (torch.nn.utils.spectral_norm, torch.nn.utils.remove_spectral_norm, fl.utils.spectral_norm,
         fl.utils.remove_spectral_norm)]:
        module = _quiet(apply_t, torch.nn.Linear(4, 3).double())
        layer = apply_f(fl.Linear(4, 3))
        params, state = fl.load_state_dict(layer, module.state_dict(), dtype=np.float64)
        plain, convert = remove_f(layer)
        params, state = convert(params, state)
        remove_t(module)
        ours, theirs = fl.state_dict(params, state), module.state_dict()
        assert list(ours) == list(theirs)
        for name in ours:
            assert_close(ours[name], theirs[name], name, **tolerance(np.float64))
        assert plain.name == "Linear(in_features=4, out_features=3, bias=True)"


def test_hook_api_errors():
    with pytest.raises(ValueError, match="does not have a parameter with name 'kernel'"):
        fl.utils.weight_norm(fl.Linear(2, 2), name="kernel")
    with pytest.raises(ValueError, match="Cannot register two weight_norm hooks"):
        fl.utils.weight_norm(fl.utils.weight_norm(fl.Linear(2, 2)))
    with pytest.raises(ValueError, match="n_power_iterations to be positive"):
        fl.utils.spectral_norm(fl.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        fl.utils.remove_weight_norm(fl.Linear(2, 2))
    with pytest.raises(ValueError, match="spectral_norm of 'bias' not found"):
        fl.utils.remove_spectral_norm(fl.utils.spectral_norm(fl.Linear(2, 2)), "bias")
    with pytest.raises(TypeError, match="expects a funclayers Layer"):
        fl.utils.spectral_norm(torch.nn.Linear(2, 2))


# -- parametrizations.weight_norm / spectral_norm ---------------------------------------------------------


@pytest.mark.parametrize("make, shape, dim", [
    pytest.param(lambda t: t.Linear(5, 3), (4, 5), 0, id="linear-dim0"),
    pytest.param(lambda t: t.Conv2d(2, 3, 2), (1, 2, 4, 4), 2, id="conv2d-dim2"),
])
def test_parametrized_weight_norm_matches_torch(make, shape, dim, dtype):
    torch.manual_seed(0)
    module = P.weight_norm(make(torch.nn), dim=dim)
    layer = parametrizations.weight_norm(make(fl), dim=dim)
    assert _names(layer) == list(module.state_dict())
    check_layer(module, layer, [randn(*shape)], dtype=dtype)


@pytest.mark.parametrize("make, shape, kwargs, training", [
    pytest.param(lambda t: t.Linear(5, 3), (4, 5), {}, True, id="linear-train"),
    pytest.param(lambda t: t.ConvTranspose1d(2, 3, 2), (2, 2, 4), {"n_power_iterations": 3}, False, id="convT1d-eval"),
])
def test_parametrized_spectral_norm_matches_torch(make, shape, kwargs, training, dtype):
    torch.manual_seed(0)
    module = P.spectral_norm(make(torch.nn), **kwargs)
    layer = parametrizations.spectral_norm(make(fl), **kwargs)
    assert _names(layer) == list(module.state_dict())
    check_layer(module, layer, [randn(*shape)], dtype=dtype, training=training, steps=2 if training else 1)


def test_parametrized_spectral_norm_of_a_vector_and_its_init(x64):
    """1-D tensors are normalised exactly; init's u, v are the converged singular vectors, as torch's."""
    torch.manual_seed(0)
    module = P.spectral_norm(torch.nn.PReLU(3).double(), name="weight")
    layer = parametrizations.spectral_norm(fl.PReLU(3))
    check_layer(module, layer, [randn(2, 3, 4)], dtype=np.float64)
    sn = parametrizations.spectral_norm(fl.Linear(6, 4, dtype=jnp.float64))
    params, state = jax.jit(sn.init)(jax.random.PRNGKey(1))
    weight = params["parametrizations"]["weight"]["original"]
    u = state["parametrizations"]["weight"]["0"]["_u"]
    sigma = np.linalg.svd(np.asarray(weight), compute_uv=False)[0]
    sigma_est = float(u @ weight @ state["parametrizations"]["weight"]["0"]["_v"])
    assert abs(sigma_est - sigma) < 1e-3 * sigma


# -- parametrizations.orthogonal ----------------------------------------------------------------------------


@pytest.mark.parametrize("orthogonal_map, features, use_trivialization", [
    pytest.param("matrix_exp", (4, 4), True, id="matrix_exp-square-trivialization"),
    pytest.param("matrix_exp", (3, 5), False, id="matrix_exp-tall-direct"),
    pytest.param("cayley", (5, 3), True, id="cayley-wide-trivialization"),
    pytest.param("cayley", (4, 4), False, id="cayley-square-direct"),
    pytest.param("householder", (3, 5), True, id="householder-tall-trivialization"),
    pytest.param("householder", (5, 3), False, id="householder-wide-direct"),
    pytest.param("householder", "conv1d", True, id="householder-batch_of_matrices"),
])
def test_orthogonal_matches_torch(orthogonal_map, features, use_trivialization, dtype):
    torch.manual_seed(0)
    # a Conv1d's (out, in, k) weight is a batch of `out` (in, k) matrices
    make, x = ((lambda t: t.Conv1d(2, 3, 4)), randn(1, 2, 6)) if features == "conv1d" else \
        ((lambda t: t.Linear(*features)), randn(2, features[0]))
    module = P.orthogonal(make(torch.nn), orthogonal_map=orthogonal_map, use_trivialization=use_trivialization)
    layer = parametrizations.orthogonal(make(fl), orthogonal_map=orthogonal_map,
                                        use_trivialization=use_trivialization)
    assert _names(layer) == list(module.state_dict())
    # a generic point of the parametrization, not only torch's starting one
    with torch.no_grad():
        original = module.parametrizations.weight.original
        original.add_(0.3 * torch.randn(original.shape))
    check_layer(module, layer, [x], dtype=dtype)


@pytest.mark.parametrize("orthogonal_map, features", [pytest.param("matrix_exp", (5, 3), id="matrix_exp-wide"),
                                                     pytest.param("cayley", (3, 5), id="cayley-tall"),
                                                     pytest.param("householder", (4, 4), id="householder-square")])
def test_orthogonal_init_is_orthogonal(orthogonal_map, features, x64):
    """As torch's registration: the initial weight becomes (semi-)orthogonal."""
    layer = parametrizations.orthogonal(fl.Linear(*features, dtype=jnp.float64), orthogonal_map=orthogonal_map)
    weight = _weight_of(layer)
    n, k = weight.shape
    gram = weight @ weight.T if n < k else weight.T @ weight
    np.testing.assert_allclose(np.asarray(gram), np.eye(min(n, k)), atol=1e-10)


def test_orthogonal_init_keeps_an_orthogonal_weight(x64):
    q = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(2), (4, 4), jnp.float64))[0]
    init = fl.Linear(4, 4, dtype=jnp.float64)
    fixed = fl.Layer(lambda rng: ({"weight": q, "bias": init.init(rng)[0]["bias"]}, {}), init.apply, init.name)
    layer = parametrizations.orthogonal(fixed, orthogonal_map="cayley")
    np.testing.assert_allclose(np.asarray(_weight_of(layer)), np.asarray(q), atol=1e-10)


def _weight_of(layer):
    """The initial parametrized weight (one compiled call)."""
    plain, convert = parametrize.remove_parametrizations(layer, "weight")
    return jax.jit(lambda key: convert(*layer.init(key))[0]["weight"])(jax.random.PRNGKey(0))


def test_orthogonal_householder_direct_init_matches_torch(x64):
    """use_trivialization=False stores geqrf's reflectors (torch's right_inverse), sign-fixed."""
    torch.manual_seed(0)
    weight = torch.randn(5, 3, dtype=torch.float64)
    q = torch.linalg.qr(weight)[0]
    lin = torch.nn.Linear(3, 5).double()
    with torch.no_grad():
        lin.weight.copy_(q)
    module = P.orthogonal(lin, orthogonal_map="householder", use_trivialization=False)
    init = fl.Linear(3, 5, dtype=jnp.float64)
    fixed = fl.Layer(lambda rng: ({"weight": jnp.asarray(q.numpy()), "bias": init.init(rng)[0]["bias"]}, {}),
                     init.apply, init.name)
    layer = parametrizations.orthogonal(fixed, orthogonal_map="householder", use_trivialization=False)
    params, _ = jax.jit(layer.init)(jax.random.PRNGKey(0))
    assert_close(params["parametrizations"]["weight"]["original"], module.parametrizations.weight.original,
                 "original", rtol=1e-8, atol=1e-10)


def test_orthogonal_errors():
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices"):
        parametrizations.orthogonal(fl.Linear(3, 3), name="bias")
    with pytest.raises(ValueError, match='orthogonal_map has to be one of "matrix_exp", "cayley", "householder"'):
        parametrizations.orthogonal(fl.Linear(3, 3), orthogonal_map="qr")
    with pytest.raises(ValueError, match="no parameter or buffer|does not have a parameter or a buffer"):
        parametrizations.orthogonal(fl.Linear(3, 3), name="kernel")


# -- register_parametrization with user parametrizations --------------------------------------------------


class _Symmetric(torch.nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).mT


class _Scale(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.linspace(0.5, 1.5, n))
        self.register_buffer("shift", torch.full((n, 1), 0.1))

    def forward(self, x):
        return x * self.scale[:, None] + self.shift


class _Split(torch.nn.Module):
    """A right_inverse returning two tensors: original0 and original1."""

    def forward(self, a, b):
        return a + 2 * b

    def right_inverse(self, w):
        return w / 2, w / 4


def _fl_scale(n):
    def init(rng):
        return {"scale": jnp.linspace(0.5, 1.5, n)}, {"shift": jnp.full((n, 1), 0.1)}

    def apply(params, state, x, *, rng=None, training=False):
        return x * params["scale"][:, None].astype(x.dtype) + state["shift"].astype(x.dtype), state

    return fl.Layer(init, apply, "_Scale()")


def _fl_split():
    return parametrize.Parametrization(
        init=lambda rng, value: ({}, {}),
        apply=lambda params, state, a, b, training=False: (a + 2 * b, state),
        right_inverse=lambda params, state, w: ((w / 2, w / 4), state))


def test_register_parametrization_user_modules_match_torch(dtype):
    """A parameter-free function, a parametrization with its own parameter and buffer, chained
    (`.0`, `.1`), and a right_inverse returning a tuple (`original0`, `original1`)."""
    torch.manual_seed(0)
    module = torch.nn.Linear(4, 4)
    torch.nn.utils.parametrize.register_parametrization(module, "weight", _Symmetric())
    torch.nn.utils.parametrize.register_parametrization(module, "weight", _Scale(4))
    torch.nn.utils.parametrize.register_parametrization(module, "bias", _Split())
    layer = parametrize.register_parametrization(fl.Linear(4, 4), "weight", lambda x: jnp.triu(x) + jnp.triu(x, 1).T)
    layer = parametrize.register_parametrization(layer, "weight", _fl_scale(4))
    layer = parametrize.register_parametrization(layer, "bias", _fl_split())
    assert _names(layer) == list(module.state_dict())
    check_layer(module, layer, [randn(3, 4)], dtype=dtype)


def test_remove_parametrizations_matches_torch(x64):
    torch.manual_seed(0)
    for leave in (True, False):
        module = torch.nn.Linear(4, 4).double()
        torch.nn.utils.parametrize.register_parametrization(module, "weight", _Symmetric())
        P.spectral_norm(module, "weight")
        torch.nn.utils.parametrize.register_parametrization(module, "bias", _Split())
        layer = parametrize.register_parametrization(fl.Linear(4, 4), "weight",
                                                     lambda x: jnp.triu(x) + jnp.triu(x, 1).T)
        layer = parametrizations.spectral_norm(layer)
        layer = parametrize.register_parametrization(layer, "bias", _fl_split())
        params, state = fl.load_state_dict(layer, module.state_dict(), dtype=np.float64)
        module.eval()
        torch.nn.utils.parametrize.remove_parametrizations(module, "weight", leave_parametrized=leave)
        layer, convert = parametrize.remove_parametrizations(layer, "weight", leave_parametrized=leave)
        params, state = convert(params, state)
        ours, theirs = fl.state_dict(params, state), module.state_dict()
        assert list(ours) == list(theirs)
        for name in ours:
            assert_close(ours[name], theirs[name], name, **tolerance(np.float64))
        assert parametrize.is_parametrized(layer) and not parametrize.is_parametrized(layer, "weight")
        with pytest.raises(ValueError, match="Cannot leave unparametrized"):
            parametrize.remove_parametrizations(layer, "bias", leave_parametrized=False)
        layer, convert = parametrize.remove_parametrizations(layer, "bias")
        params, state = convert(params, state)
        assert not parametrize.is_parametrized(layer) and list(params) == ["weight", "bias"]
        assert layer.apply(params, state, jnp.ones(4))[0].shape == (4,)


def test_register_parametrization_errors():
    with pytest.raises(ValueError, match="may not change the shape"):
        parametrize.register_parametrization(fl.Linear(3, 2), "weight", lambda x: x[:1])
    with pytest.raises(ValueError, match="may not change the dtype"):
        parametrize.register_parametrization(fl.Linear(3, 2), "weight", lambda x: x.astype(jnp.int32))
    parametrize.register_parametrization(fl.Linear(3, 2), "weight", lambda x: x[:1], unsafe=True)
    with pytest.raises(ValueError, match="does not have a parameter or a buffer with name 'kernel'"):
        parametrize.register_parametrization(fl.Linear(3, 2), "kernel", lambda x: x)
    with pytest.raises(TypeError, match="a parametrization is"):
        parametrize.register_parametrization(fl.Linear(3, 2), "weight", 3)
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(fl.Linear(3, 2), "weight")
    assert not parametrize.is_parametrized(fl.Linear(3, 2))
    assert parametrize.type_before_parametrizations(fl.ReLU()) == "ReLU()"


def test_parametrized_layers_jit_grad_vmap_jvp():
    """The wrappers under jit, vmap and jax.jvp (check_layer above covers jit + grad), in training mode."""
    x = jnp.asarray(randn(3, 4))
    layers = [fl.utils.spectral_norm(fl.Linear(4, 3)), parametrizations.weight_norm(fl.Linear(4, 3)),
              parametrizations.orthogonal(fl.Linear(4, 3), orthogonal_map="householder")]
    for layer in layers:
        def run(key, x, layer=layer):  # one compiled call per layer
            params, state = layer.init(key)
            tangents = jax.tree_util.tree_map(jnp.ones_like, params)

            def f(x):
                return jax.jvp(lambda p: layer.apply(p, state, x, training=True)[0], (params,), (tangents,))

            return jax.vmap(f)(jnp.stack([x, -x])), layer.apply(params, state, x, training=True)[0]

        (out, tangent_out), expected = jax.jit(run)(jax.random.PRNGKey(0), x)
        assert tangent_out.shape == out.shape == (2, 3, 3) and bool(jnp.all(jnp.isfinite(tangent_out)))
        np.testing.assert_allclose(np.asarray(out[0]), np.asarray(expected), rtol=1e-5, atol=1e-6)
    params, state = jax.jit(layers[2].init)(jax.random.PRNGKey(0))
    with parametrize.cached():
        assert layers[2].apply(params, state, x)[0].shape == (3, 3)


def test_dtype_follows_params(x64):
    layer = parametrizations.spectral_norm(fl.Linear(4, 3, dtype=jnp.float64))
    out, new_state = jax.jit(lambda key: layer.apply(*layer.init(key), jnp.ones((2, 4), jnp.float64),
                                                     training=True))(jax.random.PRNGKey(0))
    assert out.dtype == jnp.float64 and new_state["parametrizations"]["weight"]["0"]["_u"].dtype == jnp.float64
    assert TORCH_DTYPES  # the oracle's dtype map is what check_layer used above


class _Double(torch.nn.Module):
    def forward(self, x):
        return x * 2


def test_parametrized_buffer_matches_torch(dtype):
    """A buffer's original is a buffer too (`parametrizations.running_var.original` in state)."""
    torch.manual_seed(0)
    module = torch.nn.BatchNorm1d(3)
    torch.nn.utils.parametrize.register_parametrization(module, "running_var", _Double())
    layer = parametrize.register_parametrization(fl.BatchNorm1d(3), "running_var", lambda x: x * 2)
    assert _names(layer) == list(module.state_dict())
    out = check_layer(module, layer, [randn(4, 3)], dtype=dtype)
    assert "original" in out["state"]["parametrizations"]["running_var"]
