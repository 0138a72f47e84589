"""Dropout family against torch 2.13: eval identity, p validation, p=0/1, masks and scaling, statistics."""

import math
import warnings

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
ALPHA = 1.7580993408473766  # SELU's negative saturation, scale * alpha

# (class name, an input shape it takes in its usual, warning-free form)
CLASSES = [
    pytest.param("Dropout", (4, 5, 6), id="Dropout"),
    pytest.param("Dropout1d", (4, 5, 6), id="Dropout1d"),
    pytest.param("Dropout2d", (4, 5, 6, 3), id="Dropout2d"),
    pytest.param("Dropout3d", (4, 5, 2, 3, 3), id="Dropout3d"),
    pytest.param("AlphaDropout", (4, 5, 6), id="AlphaDropout"),
    pytest.param("FeatureAlphaDropout", (4, 5, 6), id="FeatureAlphaDropout"),
]


def _apply(layer, x, **kwargs):
    return layer.apply({}, {}, jnp.asarray(x), **kwargs)[0]


@pytest.mark.parametrize("kind,shape", CLASSES)
def test_eval_mode_is_exact_identity_and_matches_torch(kind, shape, dtype):
    module, layer = getattr(torch.nn, kind)(0.3), getattr(fl, kind)(0.3)
    assert repr(layer) == repr(module)
    result = check_layer(module, layer, [randn(*shape)], dtype=dtype)
    np.testing.assert_array_equal(result["out"], randn(*shape).astype(dtype))


@pytest.mark.parametrize("kind,shape", CLASSES)
def test_p_one_gives_zeros_with_zero_gradients_like_torch(kind, shape, dtype):
    # deterministic in training, so torch's own output and gradients are the reference
    result = check_layer(
        getattr(torch.nn, kind)(1.0),
        getattr(fl, kind)(1.0),
        [randn(*shape)],
        dtype=dtype,
        training=True,
        rng=KEY,
    )
    assert not np.any(np.asarray(result["out"])) and not np.any(np.asarray(result["grads"][1][0]))


@pytest.mark.parametrize("kind,shape", CLASSES)
def test_p_zero_in_training_is_identity_without_rng(kind, shape):
    x = randn(*shape)
    np.testing.assert_array_equal(_apply(getattr(fl, kind)(0.0), x, training=True), x)


@pytest.mark.parametrize("kind,shape", CLASSES)
def test_training_needs_rng_and_is_reproducible(kind, shape):
    layer, x = getattr(fl, kind)(0.5), randn(*shape)
    with pytest.raises(ValueError, match="draws random numbers and needs `rng`"):
        _apply(layer, x, training=True)
    out = _apply(layer, x, rng=KEY, training=True)
    np.testing.assert_array_equal(out, _apply(layer, x, rng=KEY, training=True))
    assert not np.array_equal(out, _apply(layer, x, rng=jax.random.PRNGKey(1), training=True))


@pytest.mark.parametrize(
    "kind", ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
)
@pytest.mark.parametrize("p", [pytest.param(-0.1, id="negative"), pytest.param(1.5, id="above_one")])
def test_p_outside_unit_interval_raises_like_torch(kind, p):
    with pytest.raises(ValueError, match=f"dropout probability has to be between 0 and 1, but got {p}"):
        getattr(fl, kind)(p)
    with pytest.raises(ValueError, match=f"dropout probability has to be between 0 and 1, but got {p}"):
        getattr(torch.nn, kind)(p)


def test_functional_ops_validate_p_and_default_training_like_torch():
    x = jnp.ones((2, 3, 4))
    for name in ("dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d", "dropout3d"):
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 2.0"):
            getattr(F, name)(x, 2.0)
    # torch's defaults: dropout/dropout1d/2d/3d train by default, the alpha variants do not
    with pytest.raises(ValueError, match="needs `rng`"):
        F.dropout(x)
    np.testing.assert_array_equal(F.alpha_dropout(x), x)
    np.testing.assert_array_equal(F.feature_alpha_dropout(x), x)
    assert F.dropout(x, 0.5, rng=KEY).shape == x.shape


# -- masks, scaling and statistics ------------------------------------------------------------------------


def test_dropout_drop_rate_and_scale():
    p, n = 0.3, 200_000
    x = jnp.asarray(randn(n)) + 5.0  # nonzero everywhere
    out = np.asarray(_apply(fl.Dropout(p), x, rng=KEY, training=True))
    dropped = out == 0
    # 5 standard deviations of the binomial drop count
    assert abs(dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    scale = np.float32(1) / np.float32(1 - p)  # torch divides the mask by (1 - p) in the input dtype
    np.testing.assert_array_equal(out[~dropped], np.asarray(x)[~dropped] * scale)
    torch.manual_seed(0)
    t_out = torch.nn.Dropout(p).train()(torch.from_numpy(np.array(x))).numpy()
    np.testing.assert_allclose(
        np.unique(t_out[t_out != 0] / np.asarray(x)[t_out != 0]),
        np.unique(out[~dropped] / np.asarray(x)[~dropped]),
        rtol=1e-6,
    )
    np.testing.assert_allclose(out.mean(), np.asarray(x).mean(), rtol=0.01)  # expectation preserved


def test_dropout_gradient_is_the_scaled_mask():
    layer, x = fl.Dropout(0.4), jnp.asarray(randn(1000))
    out = _apply(layer, x, rng=KEY, training=True)
    grad = jax.grad(lambda v: _apply(layer, v, rng=KEY, training=True).sum())(x)
    np.testing.assert_allclose(grad, np.where(out == 0, 0, 1 / np.float32(0.6)), rtol=1e-6)


def _channel_constant(out, x, channel_axes):
    """Every slice over the non-channel axes is either all zero or all x / (1 - p)."""
    ratio = np.asarray(out) / np.asarray(x)
    other = tuple(a for a in range(ratio.ndim) if a not in channel_axes)
    return np.all(ratio.min(axis=other) == ratio.max(axis=other)), ratio.max(axis=other)


@pytest.mark.parametrize(
    "kind,shape,channel_axes,warns",
    [
        pytest.param("Dropout1d", (8, 16, 20), (0, 1), None, id="Dropout1d-batched"),
        pytest.param("Dropout1d", (64, 20), (0,), None, id="Dropout1d-unbatched"),
        pytest.param("Dropout2d", (8, 16, 5, 4), (0, 1), None, id="Dropout2d-batched"),
        pytest.param(
            "Dropout2d", (8, 16, 20), (0, 1), "interpreted as shape \\(N, C, L\\)", id="Dropout2d-3d-is-NCL"
        ),
        pytest.param("Dropout2d", (8, 16, 2, 2, 3), (0, 1), "Received a 5-D input", id="Dropout2d-5d"),
        pytest.param("Dropout3d", (8, 16, 2, 3, 4), (0, 1), None, id="Dropout3d-batched"),
        pytest.param("Dropout3d", (64, 2, 3, 4), (0,), None, id="Dropout3d-unbatched"),
        pytest.param("Dropout3d", (64, 20), (0,), "Received a 2-D input", id="Dropout3d-2d"),
    ],
)
def test_feature_dropout_drops_whole_channels_like_torch(kind, shape, channel_axes, warns):
    p, x = 0.5, jnp.asarray(randn(*shape)) + 10.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _apply(getattr(fl, kind)(p), x, rng=KEY, training=True)
        t_out = getattr(torch.nn, kind)(p).train()(torch.from_numpy(np.array(x))).numpy()
    messages = [str(w.message) for w in caught]
    if warns:  # torch warns, and so do we
        assert sum(bool(__import__("re").search(warns, m)) for m in messages) == 2, messages
    else:
        assert not messages
    ours_ok, ours_scale = _channel_constant(out, x, channel_axes)
    torch_ok, torch_scale = _channel_constant(t_out, x, channel_axes)
    assert ours_ok and torch_ok  # the same mask structure as torch
    assert set(np.unique(ours_scale)) <= {0.0, 2.0} and 0 < (ours_scale == 0).mean() < 1


def test_dropout1d_requires_2d_or_3d_input_in_both_modes_like_torch():
    for shape in [(5,), (2, 3, 4, 5)]:
        for training in (False, True):
            with pytest.raises(
                ValueError, match=f"Expected 2D or 3D input, but received a {len(shape)}D input"
            ):
                fl.Dropout1d().apply({}, {}, jnp.ones(shape), rng=KEY, training=training)
            with pytest.raises(
                RuntimeError, match=f"Expected 2D or 3D input, but received a {len(shape)}D input"
            ):
                torch.nn.Dropout1d().train(training)(torch.ones(shape))


@pytest.mark.parametrize(
    "kind,shape",
    [
        pytest.param("Dropout2d", (5,), id="Dropout2d-1d"),
        pytest.param("FeatureAlphaDropout", (5,), id="FeatureAlphaDropout-1d"),
        pytest.param("FeatureAlphaDropout", (), id="FeatureAlphaDropout-scalar"),
        pytest.param("Dropout3d", (), id="Dropout3d-scalar"),
    ],
)
def test_feature_dropout_needs_two_dims_when_training_like_torch(kind, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="Feature dropout requires at least 2 dimensions in the input"):
            _apply(getattr(fl, kind)(), jnp.ones(shape), rng=KEY, training=True)
        with pytest.raises(RuntimeError, match="Feature dropout requires at least 2 dimensions in the input"):
            getattr(torch.nn, kind)().train()(torch.ones(shape))
        np.testing.assert_array_equal(
            _apply(getattr(fl, kind)(), jnp.ones(shape)), np.ones(shape)
        )  # eval is fine


def test_dropout2d_3d_input_warns_like_torch():
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout behavior is desired"):
        fl.Dropout2d().apply({}, {}, jnp.ones((2, 3, 4)))
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout behavior is desired"):
        torch.nn.Dropout2d().eval()(torch.ones(2, 3, 4))


# -- alpha dropout ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_alpha_dropout_uses_torchs_affine_correction(p):
    x = jnp.asarray(randn(50_000))
    out = np.asarray(_apply(fl.AlphaDropout(p), x, rng=KEY, training=True))
    a = 1 / math.sqrt((ALPHA**2 * p + 1) * (1 - p))
    kept = np.isclose(out, np.asarray(x) * a + ALPHA * a * p, rtol=1e-5, atol=1e-6)
    dropped = np.isclose(out, -ALPHA * a + ALPHA * a * p, rtol=1e-5, atol=1e-6)
    assert np.all(kept | dropped)
    assert abs(dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / x.size)
    # torch's output takes the same two affine branches
    t_out = torch.nn.AlphaDropout(p).train()(torch.from_numpy(np.array(x))).numpy()
    t_dropped = np.isclose(t_out, -ALPHA * a + ALPHA * a * p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        t_out[~t_dropped], np.asarray(x)[~t_dropped] * a + ALPHA * a * p, rtol=1e-5, atol=1e-6
    )
    # self-normalising: zero mean, unit variance in, (approximately) zero mean, unit variance out
    assert abs(out.mean()) < 0.03 and abs(out.std() - 1) < 0.03
    assert abs(t_out.mean() - out.mean()) < 0.03 and abs(t_out.std() - out.std()) < 0.03


def test_feature_alpha_dropout_masks_whole_channels():
    p, x = 0.5, jnp.asarray(randn(16, 32, 10))
    out = np.asarray(_apply(fl.FeatureAlphaDropout(p), x, rng=KEY, training=True))
    a = 1 / math.sqrt((ALPHA**2 * p + 1) * (1 - p))
    dropped = np.isclose(out, -ALPHA * a + ALPHA * a * p, rtol=1e-5, atol=1e-6)
    per_channel = dropped.all(axis=2) | (~dropped).all(axis=2)
    assert per_channel.all() and 0.3 < dropped.all(axis=2).mean() < 0.7
    grad = jax.grad(lambda v: _apply(fl.FeatureAlphaDropout(p), v, rng=KEY, training=True).sum())(x)
    np.testing.assert_allclose(grad, np.where(dropped, 0, a), rtol=1e-6)


# -- edge inputs, dtypes, transformations -----------------------------------------------------------------


def test_empty_input_and_nan_behave_like_torch():
    assert _apply(fl.FeatureAlphaDropout(), jnp.ones((0, 3)), rng=KEY, training=True).shape == (0, 3)
    x = np.array([np.nan, np.inf, 1.0], np.float32)
    ours = _apply(fl.Dropout(1.0), x, training=True)
    np.testing.assert_array_equal(ours, torch.nn.Dropout(1.0).train()(torch.from_numpy(x)).numpy())  # NaN * 0


def test_integer_input_is_rejected_in_training_and_passes_in_eval():
    x = jnp.arange(6).reshape(2, 3)
    with pytest.raises(TypeError, match="floating-point"):
        _apply(fl.Dropout(), x, rng=KEY, training=True)
    np.testing.assert_array_equal(_apply(fl.Dropout(), x), x)


def test_output_dtype_follows_the_input(x64):
    for dt in (jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64):
        for layer in (fl.Dropout(), fl.AlphaDropout(), fl.Dropout2d()):
            out = jax.eval_shape(
                lambda x, layer=layer: _apply(layer, x, rng=KEY, training=True),
                jax.ShapeDtypeStruct((2, 3, 4, 4), dt),
            )
            assert out.dtype == dt


@pytest.mark.parametrize("kind,shape", CLASSES)
def test_dropout_jit_grad_vmap(kind, shape):
    check_jit_grad_vmap(getattr(fl, kind)(0.3), randn(*shape), rng=KEY, training=True)


def test_dropout_in_a_sequential_uses_distinct_keys():
    model = fl.Sequential(fl.Dropout(0.5), fl.Dropout(0.5))
    params, state = model.init(KEY)
    out, _ = model.apply(params, state, jnp.ones(10_000), rng=KEY, training=True)
    kept = np.asarray(out) != 0
    assert abs(kept.mean() - 0.25) < 0.02  # two independent masks
    np.testing.assert_array_equal(np.unique(np.asarray(out)), [0.0, 4.0])
