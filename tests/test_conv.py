"""Conv1d/2d/3d and conv1d/2d/3d against torch: every option, gradients, errors, init statistics."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_jit_grad_vmap as jit_grad_vmap
from oracle import check_layer, randn, tolerance

import funclayers as fl
import funclayers.functional as F

TORCH_CONV = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
FL_CONV = {1: fl.Conv1d, 2: fl.Conv2d, 3: fl.Conv3d}


def f32_atol(dtype):
    """float32 sums of several hundred terms (weight and bias gradients reduce over batch and space)
    differ from torch's in accumulation order by up to ~2e-5 absolute on values of order 10-30;
    float64 keeps the default tolerance."""
    return {"atol": 5e-5} if np.dtype(dtype) == np.float32 else {}


def _pair(n, args, kwargs):
    torch.manual_seed(0)
    return TORCH_CONV[n](*args, **kwargs), FL_CONV[n](*args, **kwargs)


CONV_CASES = [
    # 1-D
    pytest.param(
        1, (4, 6, 3), dict(stride=2, padding=2, dilation=2), (2, 4, 13), id="1d-stride2-pad2-dilation2"
    ),
    pytest.param(
        1, (4, 6, 4), dict(padding="same", dilation=3), (2, 4, 12), id="1d-same-even-kernel-dilation3"
    ),
    pytest.param(1, (4, 6, 3), dict(padding="valid", bias=False), (2, 4, 9), id="1d-valid-nobias"),
    pytest.param(1, (4, 8, 3), dict(groups=2, padding=1), (2, 4, 10), id="1d-groups2"),
    pytest.param(1, (4, 8, 5), dict(groups=4, padding=2), (2, 4, 10), id="1d-depthwise-multiplier2"),
    pytest.param(1, (4, 6, 3), dict(padding=2, padding_mode="reflect"), (2, 4, 9), id="1d-reflect"),
    pytest.param(
        1, (4, 6, 3), dict(padding=(3,), padding_mode="circular"), (4, 9), id="1d-circular-unbatched"
    ),
    # 2-D
    pytest.param(2, (8, 5, 3), {}, (2, 8, 8, 9), id="2d-basic"),
    pytest.param(
        2,
        (3, 5, (3, 5)),
        dict(stride=(2, 1), padding=(4, 2), dilation=(3, 1)),
        (2, 3, 12, 10),
        id="2d-asymmetric-stride-padding-dilation",
    ),
    pytest.param(
        2,
        (3, 4, (4, 2)),
        dict(padding="same", dilation=(1, 2)),
        (2, 3, 7, 8),
        id="2d-same-even-kernels-dilation",
    ),
    pytest.param(2, (3, 4, 3), dict(padding="same"), (3, 6, 5), id="2d-same-unbatched"),
    pytest.param(2, (6, 9, 3), dict(groups=3, padding=1, stride=2), (2, 6, 9, 9), id="2d-groups3-stride2"),
    pytest.param(2, (8, 8, 3), dict(groups=8, padding=1), (2, 8, 10, 10), id="2d-depthwise"),
    pytest.param(
        2,
        (4, 12, 3),
        dict(groups=4, padding=2, dilation=2, bias=False),
        (2, 4, 9, 9),
        id="2d-depthwise-multiplier3-dilation2-nobias",
    ),
    pytest.param(
        2, (8, 8, 3), dict(groups=8, stride=2, padding=1), (8, 9, 9), id="2d-depthwise-stride2-unbatched"
    ),
    pytest.param(
        2, (3, 4, 3), dict(padding=(1, 2), padding_mode="reflect"), (2, 3, 6, 7), id="2d-reflect-tuple"
    ),
    pytest.param(
        2,
        (3, 4, 3),
        dict(padding=(2, 1), padding_mode="replicate", stride=2),
        (2, 3, 7, 6),
        id="2d-replicate-stride2",
    ),
    pytest.param(
        2, (3, 4, (2, 3)), dict(padding=(1, 3), padding_mode="circular"), (2, 3, 5, 6), id="2d-circular-tuple"
    ),
    pytest.param(
        2,
        (3, 4, 4),
        dict(padding="same", padding_mode="circular"),
        (2, 3, 6, 6),
        id="2d-same-even-kernel-circular",
    ),
    pytest.param(2, (16, 32, 1), dict(bias=False), (2, 16, 5, 5), id="2d-pointwise"),
    pytest.param(2, (3, 16, 3), dict(padding=1), (4, 3, 12, 12), id="2d-stem-3-channels"),
    # 3-D
    pytest.param(3, (2, 4, 2), {}, (2, 2, 5, 6, 5), id="3d-basic"),
    pytest.param(
        3,
        (2, 4, (3, 2, 3)),
        dict(stride=(2, 1, 2), padding=(1, 0, 2), dilation=(1, 2, 1)),
        (2, 2, 6, 7, 6),
        id="3d-stride-padding-dilation",
    ),
    pytest.param(
        3, (4, 4, (2, 3, 2)), dict(groups=2, padding="same"), (4, 5, 5, 5), id="3d-groups2-same-unbatched"
    ),
    pytest.param(
        3,
        (4, 8, 3),
        dict(groups=4, padding=1, padding_mode="replicate"),
        (1, 4, 5, 5, 5),
        id="3d-depthwise-replicate",
    ),
]


@pytest.mark.parametrize("n, args, kwargs, shape", CONV_CASES)
def test_conv_matches_torch(n, args, kwargs, shape, dtype):
    module, layer = _pair(n, args, kwargs)
    assert repr(layer) == repr(module)
    check_layer(module, layer, [randn(*shape, dtype=dtype)], dtype=dtype, **f32_atol(dtype))


FUNCTIONAL_CASES = [
    pytest.param(1, (2, 6, 9), (4, 3, 3), dict(stride=2, padding=1, groups=2), id="conv1d-groups2"),
    pytest.param(
        2, (2, 4, 7, 7), (6, 4, 2, 2), dict(padding="same", dilation=2), id="conv2d-same-even-kernel"
    ),
    pytest.param(
        2,
        (4, 7, 7),
        (8, 1, 3, 3),
        dict(groups=4, stride=(2, 1), padding=(0, 1)),
        id="conv2d-depthwise-unbatched",
    ),
    pytest.param(3, (1, 2, 5, 5, 5), (4, 2, 3, 3, 3), dict(padding="valid"), id="conv3d-valid"),
]


@pytest.mark.parametrize("n, x_shape, w_shape, kwargs", FUNCTIONAL_CASES)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
def test_functional_conv_matches_torch(n, x_shape, w_shape, kwargs, with_bias, dtype):
    x, w = randn(*x_shape, dtype=dtype, seed=1), randn(*w_shape, dtype=dtype, seed=2)
    b = randn(w_shape[0], dtype=dtype, seed=3) if with_bias else None
    ours_fn, torch_fn = getattr(F, f"conv{n}d"), getattr(torch.nn.functional, f"conv{n}d")
    expected = torch_fn(
        torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kwargs
    )
    out = jax.jit(lambda x, w, b: ours_fn(x, w, b, **kwargs))(x, w, b)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(np.asarray(out), expected.numpy(), **tolerance(dtype, **f32_atol(dtype)))


def test_float64_input_needs_float64_params_as_in_torch(x64):
    layer = fl.Conv2d(2, 3, 3)
    params, state = layer.init(jax.random.PRNGKey(0))
    assert params["weight"].dtype == jnp.float32
    x = jnp.ones((1, 2, 5, 5), jnp.float64)
    with pytest.raises(RuntimeError, match=r"Input type \(double\) and bias type \(float\) should be the same"):
        jax.jit(layer.apply)(params, state, x)
    out, _ = jax.jit(layer.apply)(jax.tree.map(lambda p: p.astype(jnp.float64), params), state, x)
    assert out.dtype == jnp.float64


@pytest.mark.parametrize(
    "n, args, kwargs, shape",
    [
        pytest.param(1, (4, 6, 3), dict(padding="same", padding_mode="reflect"), (2, 4, 9), id="1d"),
        pytest.param(2, (4, 8, 3), dict(groups=4, stride=2), (2, 4, 9, 9), id="2d-depthwise"),
        pytest.param(3, (2, 4, 3), dict(padding=1), (1, 2, 4, 4, 4), id="3d"),
    ],
)
def test_conv_jit_grad_vmap(n, args, kwargs, shape):
    jit_grad_vmap(FL_CONV[n](*args, **kwargs), randn(*shape))


@pytest.mark.parametrize(
    "n, args, kwargs",
    [
        pytest.param(2, (64, 128, 3), {}, id="2d"),
        pytest.param(1, (30, 60, 5), dict(groups=3), id="1d-groups3"),
        pytest.param(3, (8, 16, (3, 2, 3)), {}, id="3d"),
    ],
)
def test_init_follows_torch_distribution(n, args, kwargs):
    module, layer = _pair(n, args, kwargs)
    params, state = layer.init(jax.random.PRNGKey(0))
    assert state == {}
    weight, bias = np.asarray(params["weight"]), np.asarray(params["bias"])
    assert weight.shape == tuple(module.weight.shape) and weight.dtype == np.float32
    assert bias.shape == tuple(module.bias.shape)
    fan_in = module.weight.shape[1] * math.prod(module.weight.shape[2:])
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) and the bias both give U(-1/sqrt(fan_in), ..)
    assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
    t_std = module.weight.detach().numpy().std()
    assert abs(weight.std() - t_std) < 0.05 * t_std
    assert abs(weight.mean()) < 0.05 * bound


def test_init_respects_dtype_and_bias_false():
    params, _ = fl.Conv2d(3, 4, 3, bias=False, dtype=jnp.bfloat16).init(jax.random.PRNGKey(0))
    assert set(params) == {"weight"} and params["weight"].dtype == jnp.bfloat16


@pytest.mark.parametrize(
    "kwargs, match",
    [
        pytest.param(dict(groups=0), "groups must be a positive integer", id="groups0"),
        pytest.param(dict(groups=4), "in_channels must be divisible by groups", id="groups-not-dividing-in"),
        pytest.param(
            dict(in_channels=6, out_channels=4, groups=3),
            "out_channels must be divisible by groups",
            id="groups-not-dividing-out",
        ),
        pytest.param(dict(padding="full"), "Invalid padding string 'full'", id="bad-padding-string"),
        pytest.param(
            dict(padding="same", stride=2),
            "padding='same' is not supported for strided convolutions",
            id="same-with-stride",
        ),
        pytest.param(dict(padding_mode="mirror"), "padding_mode must be one of", id="bad-padding-mode"),
        pytest.param(dict(stride=0), "non-positive stride", id="stride0"),
        pytest.param(dict(dilation=(1, 0)), "dilation should be greater than zero", id="dilation0"),
        pytest.param(dict(padding=-1), "negative padding", id="negative-padding"),
        pytest.param(
            dict(kernel_size=(3, 3, 3)), "kernel_size must be an int or a tuple of 2 ints", id="kernel-rank"
        ),
    ],
)
def test_conv_construction_errors(kwargs, match):
    args = dict(in_channels=6, out_channels=6, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fl.Conv2d(**args)


def _apply(layer, x):
    params, state = layer.init(jax.random.PRNGKey(0))
    return layer.apply(params, state, x)[0]


def test_conv_channel_mismatch_names_layer_and_shapes():
    layer = fl.Conv2d(3, 16, 3)
    msg = (
        r"Conv2d\(3, 16, kernel_size=\(3, 3\), stride=\(1, 1\)\) expects 3 input channels, got 4 in input of "
        r"shape \(8, 4, 32, 32\)"
    )
    with pytest.raises(ValueError, match=msg):
        jax.jit(lambda x: _apply(layer, x))(jnp.ones((8, 4, 32, 32)))


@pytest.mark.parametrize(
    "layer, shape, match",
    [
        pytest.param(
            fl.Conv2d(3, 4, 3),
            (3, 8),
            r"expects a 3D \(C, H, W\) or 4D \(N, C, H, W\) input, got shape \(3, 8\)",
            id="rank",
        ),
        pytest.param(
            fl.Conv1d(4, 4, 3, groups=2), (2, 2, 9), "expects 4 input channels, got 2", id="grouped-channels"
        ),
        pytest.param(
            fl.Conv2d(3, 4, 5),
            (1, 3, 4, 9),
            "kernel size can't be greater than the actual input size",
            id="kernel-larger-than-input",
        ),
        pytest.param(
            fl.Conv2d(3, 4, 3, padding=4, padding_mode="reflect"),
            (1, 3, 4, 9),
            "padding_mode='reflect' needs padding",
            id="reflect-padding-too-large",
        ),
        pytest.param(
            fl.Conv1d(3, 4, 3, padding=5, padding_mode="circular"),
            (1, 3, 4),
            "wraps around more than once",
            id="circular-padding-too-large",
        ),
    ],
)
def test_conv_input_errors(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        _apply(layer, jnp.ones(shape))


def test_conv_rejects_integer_input():
    with pytest.raises(TypeError, match="floating-point input"):
        _apply(fl.Conv1d(2, 2, 1), jnp.ones((1, 2, 3), jnp.int32))


@pytest.mark.parametrize(
    "call, match",
    [
        pytest.param(
            lambda: F.conv2d(jnp.ones((1, 4, 5, 5)), jnp.ones((6, 2, 3, 3)), groups=4),
            "expects 8 input channels, got 4",
            id="groups-times-weight-channels",
        ),
        pytest.param(
            lambda: F.conv2d(jnp.ones((1, 4, 5, 5)), jnp.ones((6, 4, 3))),
            "expects a 4D weight",
            id="weight-rank",
        ),
        pytest.param(
            lambda: F.conv2d(jnp.ones((1, 4, 5, 5)), jnp.ones((6, 4, 3, 3)), jnp.ones(5)),
            r"expects a bias of shape \(6,\)",
            id="bias-shape",
        ),
        pytest.param(
            lambda: F.conv1d(jnp.ones((1, 4, 5)), jnp.ones((6, 4, 3)), stride=2, padding="same"),
            "padding='same' is not supported for strided convolutions",
            id="same-strided",
        ),
        pytest.param(
            lambda: F.conv1d(jnp.ones((1, 6, 5)), jnp.ones((5, 2, 3)), groups=3),
            "must be divisible by groups=3",
            id="weight-out-channels-vs-groups",
        ),
    ],
)
def test_functional_conv_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


LOWERING_CASES = [
    pytest.param(
        "shift",
        (2, 3, 8, 7),
        (6, 1, 3, 2),
        dict(groups=3, stride=(2, 1), padding=((1, 1), (2, 1)), dilation=(1, 2)),
        id="shift-rows-weight-grad-multiplier2-stride-dilation",
    ),
    pytest.param(
        "depth",
        (2, 3, 5, 6, 5),
        (4, 3, 3, 2, 3),
        dict(stride=(2, 1, 1), padding=((1, 2), (0, 1), (1, 1)), dilation=(2, 1, 1)),
        id="depth-3d-stride-padding-dilation",
    ),
    pytest.param(
        "depth",
        (1, 4, 4, 5, 5),
        (8, 1, 2, 3, 3),
        dict(groups=4, padding=((0, 0), (1, 1), (1, 1))),
        id="depth-3d-depthwise-multiplier2",
    ),
    pytest.param(
        "depth",
        (2, 4, 4, 6, 5),
        (5, 4, 2, 3, 3),
        dict(padding=((1, 0), (1, 1), (0, 2))),
        id="depth-3d-taps-stacked-winograd-asymmetric-padding",
    ),
    pytest.param(
        "depth",
        (1, 4, 3, 5, 5),
        (6, 2, 2, 3, 3),
        dict(groups=2, padding=((1, 1), (1, 1), (1, 1))),
        id="depth-3d-groups2-summed-taps",
    ),
    pytest.param(
        "taps",
        (2, 3, 9, 8),
        (4, 3, 3, 2),
        dict(stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2)),
        id="taps-2d-stride-asymmetric-padding-dilation",
    ),
    pytest.param(
        "taps", (2, 3, 11), (5, 3, 4), dict(stride=(3,), padding=((2, 1),), dilation=(2,)), id="taps-1d"
    ),
    pytest.param(
        "taps",
        (1, 2, 5, 6, 5),
        (3, 2, 2, 3, 2),
        dict(stride=(1, 2, 1), padding=((1, 1), (0, 0), (1, 0)), dilation=(2, 1, 1)),
        id="taps-3d",
    ),
    pytest.param(
        "split",
        (2, 6, 7, 7),
        (9, 2, 3, 3),
        dict(groups=3, stride=(2, 2), padding=((1, 1), (1, 1))),
        id="split-groups3",
    ),
    pytest.param(
        "grouped",
        (2, 6, 9, 8),
        (4, 3, 3, 2),
        dict(groups=2, stride=(2, 1), padding=((1, 2), (0, 1)), dilation=(1, 2)),
        id="grouped-stride-asymmetric-padding-dilation",
    ),
    pytest.param(
        "grouped", (1, 4, 3, 5, 4), (6, 2, 2, 3, 3), dict(groups=2, padding=((1, 0), (1, 1), (0, 1))), id="grouped-3d"
    ),
    pytest.param(
        "shift",
        (2, 4, 8, 7),
        (4, 1, 3, 3),
        dict(groups=4, stride=(1, 2), padding=((1, 1), (2, 0)), dilation=(2, 1)),
        id="shift-depthwise-stride-dilation",
    ),
    pytest.param(
        "shift",
        (2, 3, 9),
        (6, 1, 3),
        dict(groups=3, padding=((0, 2),), dilation=(3,)),
        id="shift-1d-multiplier2",
    ),
    pytest.param(
        "shift", (1, 2, 4, 5, 4), (4, 1, 2, 2, 3), dict(groups=2, stride=(2, 1, 1)), id="shift-3d-multiplier2"
    ),
    pytest.param(
        "xla", (2, 4, 6, 6), (6, 2, 3, 3), dict(groups=2, padding=((1, 0), (0, 1))), id="xla-groups2"
    ),
    pytest.param("patches", (2, 3, 8, 8), (5, 3, 3, 3), dict(padding=((1, 1), (1, 1))), id="patches-stem"),
    pytest.param(
        "patches",
        (2, 2, 9, 8),
        (4, 2, 3, 2),
        dict(stride=(2, 1), padding=((2, 0), (1, 1)), dilation=(1, 2)),
        id="patches-stride-dilation-asymmetric-padding",
    ),
    pytest.param("patches", (2, 3, 10), (4, 3, 3), dict(stride=(3,), padding=((1, 2),)), id="patches-1d"),
    pytest.param(
        "patches", (1, 2, 5, 6, 4), (3, 2, 2, 3, 2), dict(stride=(1, 2, 1), padding=((1, 0), (0, 1), (1, 1))),
        id="patches-3d",
    ),
    pytest.param("winograd", (2, 5, 8, 8), (4, 5, 3, 3), dict(padding=((1, 1), (1, 1))), id="winograd-even"),
    pytest.param("winograd", (2, 5, 7, 6), (6, 5, 3, 3), dict(padding=((1, 1), (1, 1))), id="winograd-odd-output"),
    pytest.param("winograd", (1, 3, 9, 4), (2, 3, 3, 3), dict(), id="winograd-no-padding-rectangular"),
    pytest.param(
        "winograd", (2, 4, 5, 7), (3, 4, 3, 3), dict(padding=((2, 0), (1, 3))), id="winograd-asymmetric-padding"
    ),
    pytest.param("winograd", (1, 2, 3, 3), (2, 2, 3, 3), dict(), id="winograd-1x1-output"),
    pytest.param("winograd", (3, 2, 1, 2), (4, 2, 3, 3), dict(padding=((1, 1), (1, 0))), id="winograd-tiny-input"),
    pytest.param("gemm", (2, 4, 9, 8), (6, 4, 3, 3), dict(stride=(2, 2), padding=((1, 1), (1, 1))), id="gemm-stride2"),
    pytest.param("gemm", (2, 4, 7, 7), (5, 4, 1, 1), dict(stride=(2, 2)), id="gemm-1x1-stride2"),
    pytest.param(
        "gemm",
        (1, 3, 9, 10),
        (4, 3, 3, 2),
        dict(stride=(2, 3), padding=((2, 0), (1, 1)), dilation=(1, 2)),
        id="gemm-stride-dilation-asymmetric-padding",
    ),
    pytest.param("gemm", (2, 3, 12), (4, 3, 5), dict(stride=(2,), padding=((2, 1),)), id="gemm-1d"),
    pytest.param(
        "gemm", (1, 2, 5, 6, 4), (3, 2, 2, 3, 2), dict(stride=(2, 1, 1), padding=((1, 0), (0, 1), (1, 1))),
        id="gemm-3d",
    ),
]


@pytest.mark.parametrize("method, x_shape, w_shape, options", LOWERING_CASES)
def test_every_lowering_matches_torch_with_gradients(method, x_shape, w_shape, options, dtype):
    """Each lowering of _conv_lowering.conv, forced, against torch's forward and backward."""
    from funclayers._kernels import _conv_lowering as lowering

    n = len(x_shape) - 2
    stride, dilation = options.get("stride", (1,) * n), options.get("dilation", (1,) * n)
    padding, groups = options.get("padding", ((0, 0),) * n), options.get("groups", 1)
    x, w = randn(*x_shape, dtype=dtype, seed=1), randn(*w_shape, dtype=dtype, seed=2)

    def ours(x, w):
        return lowering.conv(x, w, stride, padding, dilation, groups, method=method)

    out, vjp = jax.vjp(jax.jit(ours), jnp.asarray(x), jnp.asarray(w))
    ct = randn(*out.shape, dtype=dtype, seed=3)
    dx, dw = vjp(jnp.asarray(ct))

    tx, tw = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(w).requires_grad_(True)
    flat = [v for pair in reversed(padding) for v in pair]
    t_out = getattr(torch.nn.functional, f"conv{n}d")(
        torch.nn.functional.pad(tx, flat), tw, None, stride, 0, dilation, groups
    )
    (t_out * torch.from_numpy(ct)).sum().backward()
    tol = tolerance(dtype, **f32_atol(dtype))
    np.testing.assert_allclose(np.asarray(out), t_out.detach().numpy(), **tol, err_msg="output")
    np.testing.assert_allclose(np.asarray(dx), tx.grad.numpy(), **tol, err_msg="input gradient")
    np.testing.assert_allclose(np.asarray(dw), tw.grad.numpy(), **tol, err_msg="weight gradient")


def test_winograd_refuses_what_it_cannot_compute():
    from funclayers._kernels import _conv_lowering as lowering

    x, w = jnp.zeros((1, 2, 8, 8)), jnp.zeros((3, 2, 3, 3))
    with pytest.raises(ValueError, match="'winograd' lowering is for dense 2-D 3x3 convolutions with stride 1"):
        lowering.conv(x, w, (2, 2), ((1, 1), (1, 1)), (1, 1), 1, method="winograd")
    with pytest.raises(ValueError, match="'winograd' lowering"):
        lowering.conv(x, jnp.zeros((3, 2, 5, 5)), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, method="winograd")
    with pytest.raises(ValueError, match="'winograd' lowering is for dense .* groups 2"):  # "split" runs it per group
        lowering.conv(jnp.zeros((1, 4, 8, 8)), w, (1, 1), ((1, 1), (1, 1)), (1, 1), 2, method="winograd")
    with pytest.raises(ValueError, match="'winograd' lowering"):  # 3-D: "depth" stacks the planes for it
        lowering.conv(jnp.zeros((1, 2, 4, 8, 8)), jnp.zeros((3, 2, 3, 3, 3)), (1,) * 3, ((1, 1),) * 3, (1,) * 3, 1,
                      method="winograd")


def test_dispatch_picks_the_fast_lowering_per_shape():
    from funclayers._kernels._conv_lowering import choose

    def pick(*args, **kwargs):  # the rules measured on CPU, whatever this machine's backend
        return choose(*args, platform="cpu", **kwargs)

    assert pick((8, 64, 32, 32), (64, 64, 3, 3), 1, (1, 1), ((1, 1), (1, 1))) == "winograd"
    assert pick((8, 4, 32, 32), (64, 4, 3, 3), 1, (1, 1), ((1, 1), (1, 1))) == "gemm"  # fan-in 36
    assert pick((8, 64, 32, 32), (64, 64, 3, 3), 1, (2, 2), ((1, 1), (1, 1))) == "gemm"  # 4.7 MB of patches
    assert pick((64, 64, 64, 64), (64, 64, 3, 3), 1, (2, 2), ((1, 1), (1, 1))) == "taps"  # 151 MB
    assert pick((8, 64, 32, 32), (64, 64, 3, 3), 1, dilation=(2, 2)) == "gemm"
    assert pick((8, 64, 32, 32), (64, 64, 1, 1), 1) == "gemm"
    assert pick((32, 512, 4, 4), (512, 512, 3, 3), 1, (1, 1), ((1, 1), (1, 1))) == "winograd"  # 128 tiles
    assert pick((16, 512, 4, 4), (512, 512, 3, 3), 1, (1, 1), ((1, 1), (1, 1))) == "gemm"  # 64 tiles
    assert pick((8, 64, 32, 32), (64, 64, 3, 3), 1, dtype=jnp.bfloat16) == "gemm"
    assert pick((8, 3, 32, 32), (64, 3, 3, 3), 1) == "gemm"
    assert pick((256, 3, 64, 64), (64, 3, 3, 3), 1) == "patches"  # 101 MB of patches, fan-in 27
    assert pick((8, 64, 256), (128, 64, 5), 1) == "xla"
    assert pick((8, 128, 56, 56), (128, 1, 3, 3), 128) == "shift"
    assert pick((8, 128, 28, 28), (128, 32, 3, 3), 4) == "split"
    # The groups=4 row's shape with other group counts: one Winograd (or "gemm") convolution per group
    # while a group's forward is above 2**17 multiply-adds (14M for 2 groups, 0.9M for 32).
    for groups in (2, 8, 32):
        assert pick((8, 128, 28, 28), (128, 128 // groups, 3, 3), groups, (1, 1), ((1, 1), (1, 1))) == "split"
    assert pick((8, 128, 28, 28), (128, 1, 3, 3), 128, (1, 1), ((1, 1), (1, 1))) == "shift"  # depthwise
    # Small groups, strided many-group layers: one product batched over the groups, as fast or faster
    # and 3-10x quicker to compile.
    assert pick((2, 440, 4, 4), (440, 8, 3, 3), 55, (1, 1), ((1, 1), (1, 1))) == "grouped"  # 18k per group
    assert pick((4, 440, 7, 7), (440, 8, 3, 3), 55, (1, 1), ((1, 1), (1, 1))) == "grouped"  # 113k
    assert pick((8, 440, 7, 7), (440, 8, 3, 3), 55, (1, 1), ((1, 1), (1, 1))) == "split"  # 226k
    assert pick((2, 128, 8, 8), (128, 32, 3, 3), 4, (1, 1), ((1, 1), (1, 1))) == "split"  # 1.2M
    assert pick((2, 104, 8, 8), (104, 8, 3, 3), 13, (1, 1), ((1, 1), (1, 1)), dtype=jnp.float64) == "grouped"  # 74k
    assert pick((2, 440, 4), (440, 8, 3), 55, (1,), ((1, 1),)) == "split"  # 1-D: "grouped" unmeasured
    assert pick((8, 512, 14, 14), (512, 16, 3, 3), 32, (2, 2), ((1, 1), (1, 1))) == "grouped"  # 7 MB patches
    assert pick((8, 256, 56, 56), (256, 8, 3, 3), 32, (2, 2), ((1, 1), (1, 1))) == "split"  # 58 MB
    assert pick((8, 128, 28, 28), (128, 32, 3, 3), 4, (2, 2), ((1, 1), (1, 1))) == "split"  # 4 groups
    assert pick((8, 512, 14, 14), (512, 16, 3, 3), 32, (2, 2), ((1, 1), (1, 1)), dtype=jnp.float64) == "grouped"
    # float64's patches are twice float32's: 29 MB here, 14 MB in float32
    assert pick((8, 1024, 14, 14), (1024, 32, 3, 3), 32, (2, 2), ((1, 1), (1, 1)), dtype=jnp.float64) == "split"
    assert pick((8, 1024, 14, 14), (1024, 32, 3, 3), 32, (2, 2), ((1, 1), (1, 1))) == "grouped"
    assert pick((4, 16, 16, 32, 32), (32, 16, 3, 3, 3), 1) == "depth"
    # Off CPU (cuDNN on GPU, TPU), XLA's own convolution, whatever the shape.
    for platform in ("gpu", "tpu"):
        assert choose((8, 64, 32, 32), (64, 64, 3, 3), 1, (1, 1), ((1, 1), (1, 1)), platform=platform) == "xla"
        assert choose((8, 128, 56, 56), (128, 1, 3, 3), 128, platform=platform) == "xla"
