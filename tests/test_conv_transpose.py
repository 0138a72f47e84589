"""ConvTranspose1d/2d/3d and conv_transpose1d/2d/3d against torch: options, output_size, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_layer, randn, tolerance
from test_conv import f32_atol, jit_grad_vmap

import funclayers as fl
import funclayers.functional as F

TORCH_CONVT = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}
FL_CONVT = {1: fl.ConvTranspose1d, 2: fl.ConvTranspose2d, 3: fl.ConvTranspose3d}


def _pair(n, args, kwargs):
    torch.manual_seed(0)
    return TORCH_CONVT[n](*args, **kwargs), FL_CONVT[n](*args, **kwargs)


CASES = [
    pytest.param(1, (4, 6, 3), {}, (2, 4, 7), id="1d-basic"),
    pytest.param(
        1,
        (4, 6, 4),
        dict(stride=3, padding=2, output_padding=2, dilation=2),
        (2, 4, 6),
        id="1d-stride3-padding2-output_padding2-dilation2",
    ),
    pytest.param(
        1, (4, 6, 3), dict(groups=2, stride=2, bias=False), (4, 5), id="1d-groups2-nobias-unbatched"
    ),
    pytest.param(2, (3, 5, 3), {}, (2, 3, 5, 6), id="2d-basic"),
    pytest.param(2, (8, 6, 4), dict(stride=2, padding=1), (2, 8, 6, 6), id="2d-k4-stride2-padding1"),
    pytest.param(
        2,
        (3, 5, (3, 2)),
        dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2)),
        (2, 3, 4, 5),
        id="2d-asymmetric-output_padding",
    ),
    pytest.param(
        2,
        (3, 4, 3),
        dict(dilation=(2, 3), padding=(1, 2), output_padding=(1, 0), stride=(2, 1)),
        (2, 3, 5, 5),
        id="2d-dilation-output_padding-below-dilation",
    ),
    pytest.param(2, (3, 4, 2), dict(padding=3, stride=3), (2, 3, 6, 6), id="2d-padding-beyond-kernel-crops"),
    pytest.param(2, (6, 9, 3), dict(groups=3, stride=2, padding=1), (2, 6, 5, 5), id="2d-groups3"),
    pytest.param(
        2,
        (4, 4, 3),
        dict(groups=4, stride=2, padding=1, output_padding=1),
        (4, 5, 5),
        id="2d-depthwise-unbatched",
    ),
    pytest.param(2, (16, 8, 4), dict(stride=2, padding=1, bias=False), (2, 16, 5, 5), id="2d-wide-nobias"),
    pytest.param(3, (2, 4, 3), dict(stride=2), (2, 2, 3, 4, 3), id="3d-stride2"),
    pytest.param(
        3,
        (4, 4, (2, 3, 2)),
        dict(stride=(1, 2, 2), padding=(0, 1, 1), groups=2, dilation=(2, 1, 1)),
        (4, 3, 4, 4),
        id="3d-groups2-dilation-unbatched",
    ),
]


@pytest.mark.parametrize("n, args, kwargs, shape", CASES)
def test_conv_transpose_matches_torch(n, args, kwargs, shape, dtype):
    module, layer = _pair(n, args, kwargs)
    assert repr(layer) == repr(module)
    check_layer(module, layer, [randn(*shape, dtype=dtype)], dtype=dtype, **f32_atol(dtype))


@pytest.mark.parametrize(
    "n, args, kwargs, shape, output_size",
    [
        pytest.param(2, (3, 4, 3), dict(stride=2, padding=1), (2, 3, 5, 5), [10, 10], id="2d-spatial-size"),
        pytest.param(
            2,
            (3, 4, 3),
            dict(stride=(3, 2), padding=1),
            (2, 3, 4, 4),
            (2, 4, 11, 8),
            id="2d-full-size-overrides-output_padding",
        ),
        pytest.param(1, (3, 4, 3), dict(stride=3, output_padding=1), (3, 4), (13,), id="1d-unbatched"),
        pytest.param(3, (2, 2, 3), dict(stride=2, padding=1), (1, 2, 3, 3, 3), (6, 5, 6), id="3d"),
    ],
)
def test_conv_transpose_output_size_matches_torch(n, args, kwargs, shape, output_size, dtype):
    module, layer = _pair(n, args, kwargs)
    check_layer(
        module,
        layer,
        [randn(*shape, dtype=dtype)],
        dtype=dtype,
        kwargs={"output_size": output_size},
        **f32_atol(dtype),
    )


def _apply(layer, x, **kwargs):
    params, state = layer.init(jax.random.PRNGKey(0))
    return layer.apply(params, state, x, **kwargs)[0]


@pytest.mark.parametrize(
    "output_size, match",
    [
        pytest.param(
            [8, 8],
            r"requested an output size of \[8, 8\], but valid sizes range from \[9, 9\] to "
            r"\[10, 10\] \(for an input of \(5, 5\)\)",
            id="too-small",
        ),
        pytest.param([11, 9], r"valid sizes range from \[9, 9\] to \[10, 10\]", id="too-large"),
        pytest.param(
            [9], "for 4D input, output_size must have 2 or 4 elements \\(got 1\\)", id="wrong-length"
        ),
    ],
)
def test_conv_transpose_output_size_errors(output_size, match):
    layer = fl.ConvTranspose2d(3, 4, 3, stride=2, padding=1)
    with pytest.raises(ValueError, match=match):
        _apply(layer, jnp.ones((2, 3, 5, 5)), output_size=output_size)


@pytest.mark.parametrize(
    "n, x_shape, w_shape, kwargs",
    [
        pytest.param(1, (2, 4, 6), (4, 3, 3), dict(stride=2, padding=1, output_padding=1), id="1d"),
        pytest.param(
            2, (2, 4, 5, 5), (4, 2, 3, 3), dict(stride=2, groups=2, dilation=2), id="2d-groups-dilation"
        ),
        pytest.param(2, (4, 5, 5), (4, 3, 2, 2), dict(stride=(1, 2), padding=(0, 1)), id="2d-unbatched"),
        pytest.param(3, (1, 2, 3, 3, 3), (2, 3, 2, 2, 2), dict(stride=2, output_padding=(1, 0, 1)), id="3d"),
    ],
)
def test_functional_conv_transpose_matches_torch(n, x_shape, w_shape, kwargs, dtype):
    x, w, b = randn(*x_shape, dtype=dtype, seed=1), randn(*w_shape, dtype=dtype, seed=2), None
    groups = kwargs.get("groups", 1)
    b = randn(w_shape[1] * groups, dtype=dtype, seed=3)
    ours_fn, torch_fn = getattr(F, f"conv_transpose{n}d"), getattr(torch.nn.functional, f"conv_transpose{n}d")
    expected = torch_fn(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kwargs)
    out = jax.jit(lambda x, w, b: ours_fn(x, w, b, **kwargs))(x, w, b)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(np.asarray(out), expected.numpy(), **tolerance(dtype, **f32_atol(dtype)))


@pytest.mark.parametrize(
    "n, args, kwargs, shape",
    [
        pytest.param(1, (4, 6, 3), dict(stride=2), (2, 4, 5), id="1d"),
        pytest.param(2, (4, 6, 4), dict(stride=2, padding=1, groups=2), (2, 4, 5, 5), id="2d-groups"),
        pytest.param(3, (2, 2, 3), dict(stride=2), (2, 3, 3, 3), id="3d-unbatched"),
    ],
)
def test_conv_transpose_jit_grad_vmap(n, args, kwargs, shape):
    jit_grad_vmap(FL_CONVT[n](*args, **kwargs), randn(*shape))


def test_init_uses_torch_fan_in_of_transposed_weight():
    # torch computes fan_in from weight dim 1 (out_channels / groups) times the kernel size.
    torch.manual_seed(0)
    module = torch.nn.ConvTranspose2d(64, 32, 4, groups=2)
    params, _ = fl.ConvTranspose2d(64, 32, 4, groups=2).init(jax.random.PRNGKey(0))
    weight, bias = np.asarray(params["weight"]), np.asarray(params["bias"])
    assert weight.shape == (64, 16, 4, 4) and bias.shape == (32,)
    bound = 1 / math.sqrt(16 * 16)
    assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
    assert np.abs(bias).max() > 0.5 * bound
    t_std = module.weight.detach().numpy().std()
    assert abs(weight.std() - t_std) < 0.05 * t_std


@pytest.mark.parametrize(
    "n, kwargs, match",
    [
        pytest.param(
            2,
            dict(padding_mode="reflect"),
            'Only "zeros" padding mode is supported for ConvTranspose2d',
            id="padding-mode",
        ),
        pytest.param(
            1,
            dict(padding_mode="circular"),
            'Only "zeros" padding mode is supported for ConvTranspose1d',
            id="padding-mode-1d",
        ),
        pytest.param(
            2,
            dict(output_padding=2, stride=2),
            "output padding must be smaller than either stride or dilation",
            id="output_padding-too-large",
        ),
        pytest.param(
            3,
            dict(output_padding=1),
            "output padding must be smaller than either stride or dilation",
            id="output_padding-without-stride",
        ),
        pytest.param(2, dict(groups=4), "in_channels must be divisible by groups", id="groups-in"),
        pytest.param(
            2,
            dict(in_channels=4, out_channels=6, groups=4),
            "out_channels must be divisible by groups",
            id="groups-out",
        ),
        pytest.param(2, dict(padding="same"), "'same' and 'valid' are not supported", id="padding-string"),
        pytest.param(2, dict(stride=0), "non-positive stride", id="stride0"),
        pytest.param(2, dict(padding=-1), "negative padding", id="negative-padding"),
    ],
)
def test_conv_transpose_construction_errors(n, kwargs, match):
    args = dict(in_channels=6, out_channels=6, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        FL_CONVT[n](**args)


def test_output_padding_below_dilation_is_valid():
    assert "output_padding=(1, 1)" in repr(fl.ConvTranspose2d(2, 2, 3, output_padding=1, dilation=2))


@pytest.mark.parametrize(
    "call, match",
    [
        pytest.param(
            lambda: _apply(fl.ConvTranspose2d(3, 4, 3), jnp.ones((1, 4, 5, 5))),
            r"expects 3 input channels, got 4 in input of shape \(1, 4, 5, 5\)",
            id="channels",
        ),
        pytest.param(
            lambda: _apply(fl.ConvTranspose1d(3, 4, 3), jnp.ones((3,))),
            r"expects a 2D \(C, L\) or 3D \(N, C, L\) input",
            id="rank",
        ),
        pytest.param(
            lambda: _apply(fl.ConvTranspose1d(3, 4, 2, padding=3), jnp.ones((1, 3, 2))),
            "output size per channel .* is too small",
            id="output-too-small",
        ),
        pytest.param(
            lambda: F.conv_transpose2d(jnp.ones((1, 4, 3, 3)), jnp.ones((4, 2, 3, 3)), output_padding=1),
            "output padding must be smaller",
            id="functional-output_padding",
        ),
        pytest.param(
            lambda: F.conv_transpose2d(jnp.ones((1, 4, 3, 3)), jnp.ones((4, 2, 3, 3)), groups=3),
            "must be divisible by groups=3",
            id="functional-groups",
        ),
    ],
)
def test_conv_transpose_input_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
