"""FractionalMaxPool2d/3d against torch with shared _random_samples; rng handling and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_jit_grad_vmap as jit_grad_vmap
from oracle import check_layer, randn
from pooling_helpers import jit

import funclayers as fl
import funclayers.functional as F


def _samples(batch, channels, n, seed=0):
    return np.random.default_rng(seed).random((batch, channels, n)).astype(np.float32)


CASES = [
    pytest.param(2, 3, dict(output_size=(5, 4)), (2, 3, 11, 13), id="2d-output-size"),
    pytest.param(
        2, (2, 3), dict(output_ratio=(0.5, 0.7), return_indices=True), (2, 2, 12, 9), id="2d-ratio-indices"
    ),
    pytest.param(
        2, 2, dict(output_size=(1, 7), return_indices=True), (3, 6, 8), id="2d-one-row-indices-unbatched"
    ),
    pytest.param(3, 2, dict(output_size=(3, 4, 5), return_indices=True), (2, 2, 7, 8, 9), id="3d-indices"),
    pytest.param(3, (2, 1, 3), dict(output_ratio=0.5), (2, 6, 7, 8), id="3d-ratio-unbatched"),
]


@pytest.mark.parametrize("n, kernel, kwargs, shape", CASES)
def test_fractional_max_pool_matches_torch_given_samples(n, kernel, kwargs, shape, dtype):
    batch = shape[0] if len(shape) == n + 2 else 1
    samples = _samples(batch, shape[-n - 1], n).astype(dtype)  # torch computes the intervals in this dtype
    x = np.round(randn(*shape) * 2) / 2  # ties: torch's pick decides indices and gradient
    check_layer(
        getattr(torch.nn, f"FractionalMaxPool{n}d")(
            kernel, _random_samples=torch.from_numpy(samples), **kwargs
        ),
        getattr(fl, f"FractionalMaxPool{n}d")(kernel, _random_samples=samples, **kwargs),
        [x],
        dtype=dtype,
    )


def test_functional_matches_torch_with_samples_and_nan():
    x = randn(2, 3, 10, 9)
    x[1, 2, 3:5, 3] = np.nan
    samples = _samples(2, 3, 2, seed=3)
    ours, idx = jit(lambda x: F.fractional_max_pool2d(x, 3, (4, 4), None, True, samples), x)
    theirs, their_idx = torch.nn.functional.fractional_max_pool2d(
        torch.from_numpy(x), 3, (4, 4), None, True, torch.from_numpy(samples)
    )
    np.testing.assert_array_equal(np.asarray(ours), theirs.numpy())
    np.testing.assert_array_equal(np.asarray(idx), their_idx.numpy())


def test_samples_drawn_from_rng_in_training_and_eval():
    layer = fl.FractionalMaxPool2d(2, output_size=5, return_indices=True)
    x = randn(4, 8, 12, 12)
    apply = jax.jit(layer.apply, static_argnames="training")
    (out_a, idx_a), _ = apply({}, {}, x, rng=jax.random.PRNGKey(0))
    (out_b, idx_b), _ = apply({}, {}, x, rng=jax.random.PRNGKey(1), training=True)
    (out_c, _), _ = apply({}, {}, x, rng=jax.random.PRNGKey(0), training=True)
    assert out_a.shape == (4, 8, 5, 5)
    assert not np.array_equal(np.asarray(idx_a), np.asarray(idx_b))  # 4*8 planes: a repeat is negligible
    np.testing.assert_array_equal(np.asarray(out_a), np.asarray(out_c))  # same key, same windows
    # every output is the value at its index, and the maximum of a window of kernel size around it
    np.testing.assert_array_equal(
        np.take_along_axis(x.reshape(4, 8, -1), np.asarray(idx_a).reshape(4, 8, -1), -1),
        np.asarray(out_a).reshape(4, 8, -1),
    )


def test_samples_are_torchs_buffer():
    samples = _samples(1, 2, 2)
    params, state = fl.FractionalMaxPool2d(2, output_size=3, _random_samples=samples).init(
        jax.random.PRNGKey(0)
    )
    torch_sd = torch.nn.FractionalMaxPool2d(
        2, output_size=3, _random_samples=torch.from_numpy(samples)
    ).state_dict()
    assert params == {} and sorted(fl.state_dict(params, state)) == sorted(torch_sd) == ["_random_samples"]
    assert fl.FractionalMaxPool3d(2, output_size=3).init(jax.random.PRNGKey(0)) == ({}, {})


def test_jit_grad_vmap():
    jit_grad_vmap(
        fl.FractionalMaxPool2d(2, output_ratio=0.5, return_indices=True),
        randn(3, 8, 8),
        rng=jax.random.PRNGKey(0),
    )


@pytest.mark.parametrize(
    "call, error, match",
    [
        pytest.param(
            lambda: fl.FractionalMaxPool2d(2, output_size=3).apply({}, {}, jnp.ones((1, 2, 6, 6))),
            ValueError,
            r"FractionalMaxPool2d\(\) draws random numbers and needs `rng`",
            id="missing-rng",
        ),
        pytest.param(
            lambda: F.fractional_max_pool2d(
                jnp.ones((2, 3, 5, 5)), 3, output_size=4, rng=jax.random.PRNGKey(0)
            ),
            ValueError,
            "pool height 3 too large relative to input height 5",
            id="pool-too-large",
        ),
        pytest.param(
            lambda: F.fractional_max_pool2d(jnp.ones((5, 5)), 2, output_size=2, rng=jax.random.PRNGKey(0)),
            ValueError,
            r"expects a 3D \(C, H, W\) or 4D \(N, C, H, W\) input, got shape \(5, 5\)",
            id="rank",
        ),
        pytest.param(
            lambda: F.fractional_max_pool2d(
                jnp.ones((2, 3, 5, 5)), 2, output_size=2, _random_samples=jnp.ones((1, 3, 2)) / 2
            ),
            ValueError,
            r"expects _random_samples of shape \(2, 3, 2\)",
            id="samples-batch",
        ),
        pytest.param(
            lambda: F.fractional_max_pool3d(
                jnp.ones((2, 3, 5, 5, 5)), 2, output_size=2, _random_samples=jnp.ones((2, 3, 2)) / 2
            ),
            ValueError,
            r"expects _random_samples of shape \(2, 3, 3\)",
            id="samples-axes",
        ),
        pytest.param(
            lambda: F.fractional_max_pool2d(jnp.ones((2, 3, 5, 5)), 2, rng=jax.random.PRNGKey(0)),
            ValueError,
            "requires specifying either an output_size or an output_ratio",
            id="no-size",
        ),
        pytest.param(
            lambda: fl.FractionalMaxPool2d(2),
            ValueError,
            "requires specifying either an output size, or a pooling ratio",
            id="no-size-layer",
        ),
        pytest.param(
            lambda: fl.FractionalMaxPool2d(2, 2, 0.5),
            ValueError,
            "only one of output_size and output_ratio may be specified",
            id="both",
        ),
        pytest.param(
            lambda: fl.FractionalMaxPool3d(2, output_ratio=1.5),
            ValueError,
            r"output_ratio must be between 0 and 1 \(got 1.5\)",
            id="ratio",
        ),
        pytest.param(
            lambda: F.fractional_max_pool2d(jnp.ones((1, 1, 5, 5), int), 2, 2, rng=jax.random.PRNGKey(0)),
            TypeError,
            "expects a floating-point input",
            id="integer-input",
        ),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_layer_name_is_torchs_repr():
    assert fl.FractionalMaxPool2d(2, output_size=3).name == repr(
        torch.nn.FractionalMaxPool2d(2, output_size=3)
    )
    assert fl.FractionalMaxPool3d(2, output_ratio=0.5).name == repr(
        torch.nn.FractionalMaxPool3d(2, output_ratio=0.5)
    )
