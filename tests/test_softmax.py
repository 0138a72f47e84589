"""Softmax, Softmin, LogSoftmax and Softmax2d against torch 2.13: dims (legacy dim=None too), edge inputs,
derivatives of every order."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_jit_grad_vmap, check_layer, randn

import funclayers as fl
import funclayers.functional as F

TF = torch.nn.functional


@pytest.mark.parametrize("kind", ["Softmax", "Softmin", "LogSoftmax"])
@pytest.mark.parametrize(
    "dim,shape",
    [
        pytest.param(1, (10, 20), id="dim1"),
        pytest.param(0, (), id="scalar"),
        pytest.param(-1, (4, 5), id="last"),
        pytest.param(1, (2, 3, 5, 4), id="4d-dim1"),
        pytest.param(-2, (3, 4, 6), id="3d-dim-2"),
        pytest.param(0, (7,), id="unbatched"),
    ],
)
def test_softmax_family_matches_torch(kind, dim, shape, dtype):
    module, layer = getattr(torch.nn, kind)(dim), getattr(fl, kind)(dim)
    assert repr(layer) == repr(module)
    check_layer(module, layer, [randn(*shape, scale=3.0)], dtype=dtype)


@pytest.mark.parametrize(
    "kind,shape",
    [
        pytest.param("Softmax", (), id="Softmax-0d"),
        pytest.param("Softmax", (5,), id="Softmax-1d"),
        pytest.param("Softmax", (3, 4), id="Softmax-2d"),
        pytest.param("Softmax", (2, 3, 4), id="Softmax-3d"),
        pytest.param("Softmax", (2, 3, 2, 2), id="Softmax-4d"),
        pytest.param("Softmin", (2, 3, 4), id="Softmin-3d"),
        pytest.param("LogSoftmax", (3, 4), id="LogSoftmax-2d"),
    ],
)
def test_softmax_family_legacy_dim_none_matches_torch(kind, shape, dtype):
    module, layer = getattr(torch.nn, kind)(), getattr(fl, kind)()
    assert repr(layer) == repr(module) == f"{kind}(dim=None)"
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        check_layer(module, layer, [randn(*shape)], dtype=dtype)


@pytest.mark.parametrize(
    "shape", [pytest.param((1, 3, 10, 20), id="batched"), pytest.param((3, 4, 5), id="unbatched")]
)
def test_softmax2d_matches_torch(shape, dtype):
    assert repr(fl.Softmax2d()) == repr(torch.nn.Softmax2d())
    check_layer(torch.nn.Softmax2d(), fl.Softmax2d(), [randn(*shape)], dtype=dtype)


def test_softmax2d_requires_3d_or_4d_input_like_torch():
    for shape in [(3, 4), (2, 3, 4, 5, 6)]:
        with pytest.raises(
            ValueError, match=f"Softmax2d: expected input to be 3D or 4D, got {len(shape)}D instead"
        ):
            fl.Softmax2d().apply({}, {}, jnp.ones(shape))


def test_softmax_rejects_out_of_range_dim_like_torch():
    with pytest.raises(
        ValueError,
        match=r"Softmax\(dim=2\): Dimension out of range \(expected to be in range of "
        r"\[-2, 1\], but got 2\)",
    ):
        fl.Softmax(2).apply({}, {}, jnp.ones((3, 4)))
    with pytest.raises(
        IndexError, match=r"Dimension out of range \(expected to be in range of \[-1, 0\], but got 1\)"
    ):
        fl.LogSoftmax(1).apply({}, {}, jnp.ones(()))


def test_softmax_edge_inputs_like_torch():
    # an empty softmax axis, rows of -inf (NaN in torch too), and the dtype argument
    assert fl.Softmax(1).apply({}, {}, jnp.ones((3, 0)))[0].shape == (3, 0)
    x = np.array([[-np.inf, -np.inf], [0.0, -np.inf], [1.0, 2.0]], np.float32)
    for name in ("softmax", "log_softmax", "softmin"):
        np.testing.assert_allclose(
            getattr(F, name)(x, dim=1),
            getattr(TF, name)(torch.from_numpy(x), dim=1).numpy(),
            rtol=1e-6,
            equal_nan=True,
        )
    with jax.enable_x64(True):
        out = F.softmax(jnp.ones((2, 3), jnp.float32), 1, dtype=jnp.float64)
        assert out.dtype == jnp.float64
    out = F.log_softmax(jnp.ones((2, 3), jnp.float32), 1, dtype=jnp.bfloat16)
    assert out.dtype == jnp.bfloat16


def test_softmax_supports_forward_mode_and_second_derivatives():
    x = jnp.asarray(randn(3, 5))

    @jax.jit
    def derivatives(x):
        out = []
        for fn in (lambda v: F.softmax(v, -1), lambda v: F.log_softmax(v, -1)):
            out += [jax.jacfwd(fn)(x), jax.jacrev(fn)(x), jax.hessian(lambda v, fn=fn: fn(v)[0, 0])(x)]
        return out

    sm_fwd, sm_rev, sm_hess, lsm_fwd, lsm_rev, lsm_hess = derivatives(x)
    np.testing.assert_allclose(sm_fwd, sm_rev, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lsm_fwd, lsm_rev, rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(np.asarray(sm_hess))) and np.all(np.isfinite(np.asarray(lsm_hess)))


@pytest.mark.parametrize(
    "make_ours",
    [
        pytest.param(lambda: fl.Softmax(1), id="Softmax"),
        pytest.param(lambda: fl.LogSoftmax(1), id="LogSoftmax"),
        pytest.param(lambda: fl.Softmin(-1), id="Softmin"),
        pytest.param(lambda: fl.Softmax2d(), id="Softmax2d"),
    ],
)
def test_softmax_family_jit_grad_vmap(make_ours):
    check_jit_grad_vmap(make_ours(), randn(2, 4, 3, 2))


def test_no_warning_for_explicit_softmax_dim():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fl.Softmax(dim=-1).apply({}, {}, jnp.ones((2, 3)))
