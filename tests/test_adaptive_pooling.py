"""Adaptive average and max pooling against torch: bins, None sizes, upsampling sizes, indices, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_jit_grad_vmap as jit_grad_vmap
from oracle import check_layer, randn
from pooling_helpers import force_max_pick, jit

import funclayers as fl
import funclayers.functional as F

CASES = [
    pytest.param(1, 4, (2, 3, 8), id="1d-divides"),
    pytest.param(1, 5, (3, 13), id="1d-overlapping-bins-unbatched"),
    pytest.param(1, 11, (2, 2, 7), id="1d-larger-than-input"),
    pytest.param(2, 7, (2, 3, 10, 10), id="2d-overlapping-bins"),
    pytest.param(2, (3, None), (2, 3, 9, 5), id="2d-None-keeps-width"),
    pytest.param(2, (1, 6), (3, 5, 4), id="2d-global-and-larger-unbatched"),
    pytest.param(3, (2, 3, 5), (2, 2, 4, 7, 5), id="3d"),
    pytest.param(3, (None, 4, 1), (3, 3, 9, 6), id="3d-None-global-unbatched"),
]


@pytest.mark.parametrize("n, output_size, shape", CASES)
def test_adaptive_avg_pool_matches_torch(n, output_size, shape, dtype):
    check_layer(
        getattr(torch.nn, f"AdaptiveAvgPool{n}d")(output_size),
        getattr(fl, f"AdaptiveAvgPool{n}d")(output_size),
        [randn(*shape)],
        dtype=dtype,
    )


@pytest.fixture(params=["planes-last", "torch-layout-reduce", "torch-layout-select"])
def adaptive_max_path(request, monkeypatch):
    """Every way adaptive max pooling runs: on CPU, short axes with the planes last (pick by one
    reduction over rows, row sums backward); longer ones, and every axis off CPU, in torch's
    layout, with either pick (`max_pick`)."""
    from funclayers import _adaptive_pooling

    if request.param != "planes-last":
        monkeypatch.setattr(_adaptive_pooling, "ROWS_MAX_SIZE", 0)
        force_max_pick(monkeypatch, request.param.rsplit("-", 1)[1])
    return request.param


@pytest.mark.parametrize("n, output_size, shape", CASES)
def test_adaptive_max_pool_matches_torch_with_ties(n, output_size, shape, dtype, adaptive_max_path):
    x = np.round(randn(*shape))  # many equal maxima: torch's pick decides indices and gradient
    check_layer(
        getattr(torch.nn, f"AdaptiveMaxPool{n}d")(output_size, return_indices=True),
        getattr(fl, f"AdaptiveMaxPool{n}d")(output_size, return_indices=True),
        [x],
        dtype=dtype,
    )


def test_adaptive_max_pool_without_indices_and_nan(adaptive_max_path):
    x = randn(2, 3, 7, 9)
    x[0, 0, 1, 2] = x[0, 0, 2, 1] = np.nan
    ours, idx = jit(lambda x: F.adaptive_max_pool2d_with_indices(x, (3, 4)), x)
    theirs, their_idx = torch.nn.functional.adaptive_max_pool2d(
        torch.from_numpy(x), (3, 4), return_indices=True
    )
    np.testing.assert_array_equal(np.asarray(ours), theirs.numpy())
    np.testing.assert_array_equal(np.asarray(idx), their_idx.numpy())
    plain, _ = jax.jit(fl.AdaptiveMaxPool2d((3, 4)).apply)({}, {}, x)
    np.testing.assert_array_equal(np.asarray(plain), theirs.numpy())


def test_zero_output_size_gives_empty_output_like_torch():
    x = randn(2, 3, 5, 5)
    assert jit(lambda x: F.adaptive_avg_pool2d(x, (0, 3)), x).shape == (2, 3, 0, 3)
    assert jit(lambda x: F.adaptive_max_pool2d(x, 0), x).shape == (2, 3, 0, 0)


def test_graph_does_not_grow_with_output_cells():
    """Compiled work is a few matrix products / gathers per axis, not one window per output cell.

    Max pooling of short axes (planes last) has a graph bounded by ROWS_MAX_SIZE rows per axis;
    past it, the graph is that of torch's layout, whatever the number of cells."""
    from funclayers import _adaptive_pooling

    def size(fn, shape, out):
        x = jnp.zeros(shape)
        return len(jax.make_jaxpr(jax.grad(lambda x: fn(x, out).sum()))(x).eqns)

    default = size(F.adaptive_max_pool2d, (1, 2, 64, 64), 33)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_adaptive_pooling, "ROWS_MAX_SIZE", 0)
        assert size(F.adaptive_max_pool2d, (1, 2, 64, 64), 33) == default  # past the bound: torch's layout
        for fn in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
            # 9 cells vs 1089 cells, bins of at most 3 elements in both
            assert size(fn, (1, 2, 5, 5), 3) == size(fn, (1, 2, 64, 64), 33)


@pytest.mark.parametrize(
    "layer, x",
    [
        pytest.param(fl.AdaptiveAvgPool2d((3, None)), randn(2, 7, 5), id="avg2d"),
        pytest.param(fl.AdaptiveMaxPool3d(2, return_indices=True), randn(2, 5, 4, 3), id="max3d-indices"),
    ],
)
def test_jit_grad_vmap(layer, x):
    jit_grad_vmap(layer, x)


def test_functional_ops_take_torchs_arguments():
    x = randn(2, 3, 9, 9)
    t, tf = torch.from_numpy(x), torch.nn.functional
    pairs = [
        (lambda x: F.adaptive_avg_pool1d(x[0], 4), tf.adaptive_avg_pool1d(t[0], 4)),
        (lambda x: F.adaptive_max_pool1d(x[0], 4, True)[1], tf.adaptive_max_pool1d(t[0], 4, True)[1]),
        (lambda x: F.adaptive_max_pool3d(x, (2, 5, 4)), tf.adaptive_max_pool3d(t, (2, 5, 4))),
        (lambda x: F.adaptive_avg_pool3d(x, (2, None, 4)), tf.adaptive_avg_pool3d(t, (2, None, 4))),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(np.asarray(jit(ours, x)), theirs.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "call, error, match",
    [
        pytest.param(
            lambda: fl.AdaptiveAvgPool2d(3).apply({}, {}, jnp.ones(5)),
            ValueError,
            r"AdaptiveAvgPool2d\(output_size=3\) expects a 3D \(C, H, W\) or 4D \(N, C, H, W\) input, got "
            r"shape \(5,\)",
            id="avg-rank",
        ),
        pytest.param(
            lambda: fl.AdaptiveMaxPool1d(3).apply({}, {}, jnp.ones(5)),
            ValueError,
            r"AdaptiveMaxPool1d\(output_size=3\) expects a 2D \(C, L\) or 3D",
            id="max1d-rank",
        ),
        pytest.param(
            lambda: F.adaptive_avg_pool2d(jnp.ones((2, 3, 0, 4)), 2),
            ValueError,
            "non-empty channel and spatial dimensions",
            id="empty",
        ),
        pytest.param(
            lambda: F.adaptive_max_pool1d(jnp.ones((2, 3, 5)), (2, 2)),
            ValueError,
            r"argument 'output_size' should contain one int \(got 2\)",
            id="1d-two-sizes",
        ),
        pytest.param(
            lambda: F.adaptive_avg_pool2d(jnp.ones((2, 3, 5, 5)), -1),
            ValueError,
            "elements of output_size must be greater than or equal to 0",
            id="negative",
        ),
        pytest.param(
            lambda: fl.AdaptiveMaxPool2d((2, -1)),
            ValueError,
            "elements of output_size must be greater than or equal to 0",
            id="negative-at-construction",
        ),
        pytest.param(
            lambda: fl.AdaptiveAvgPool3d((2, 2)),
            ValueError,
            "output_size must be an int or a tuple of 3",
            id="wrong-length",
        ),
        pytest.param(
            lambda: F.adaptive_avg_pool2d(jnp.ones((2, 3, 5, 5), int), 2),
            TypeError,
            "expects a floating-point input",
            id="integer-avg",
        ),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "name, args",
    [
        ("AdaptiveAvgPool1d", (3,)),
        ("AdaptiveAvgPool2d", ((None, 3),)),
        ("AdaptiveAvgPool3d", (2,)),
        ("AdaptiveMaxPool1d", (3, True)),
        ("AdaptiveMaxPool2d", ((4, 3),)),
        ("AdaptiveMaxPool3d", ((2, None, 1),)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_layer_name_is_torchs_repr(name, args):
    assert getattr(fl, name)(*args).name == repr(getattr(torch.nn, name)(*args))
