"""Unfold / Fold against torch, and the identities that explain convolution with them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import check_jit_grad_vmap as jit_grad_vmap
from oracle import check_layer, randn, tolerance

import funclayers as fl
import funclayers.functional as F
from funclayers._utils import ntuple

# (kernel_size, dilation, padding, stride, input H, W): every option alone, then interacting
OPTIONS = [
    pytest.param(2, 1, 0, 1, (5, 6), id="kernel2"),
    pytest.param((2, 3), 1, 0, 1, (5, 6), id="kernel2x3"),
    pytest.param(3, 1, 1, 1, (5, 6), id="padding1"),
    pytest.param(2, 1, 0, 2, (6, 6), id="stride2-exact-tiles"),
    pytest.param((2, 3), 1, 1, (2, 3), (7, 8), id="tiles-with-padding-and-remainder"),
    pytest.param((3, 2), 1, 0, (2, 3), (7, 8), id="stride2x3-drops-remainder"),
    pytest.param(2, 2, 0, 1, (5, 6), id="dilation2"),
    pytest.param((2, 3), (2, 1), (1, 2), (3, 2), (7, 6), id="everything-per-axis"),
    pytest.param(1, 1, 0, 2, (5, 4), id="kernel1-stride2"),
    pytest.param(3, 1, 2, 4, (3, 3), id="padding-wider-than-stride"),
]


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kernel_size, dilation, padding, stride, hw", OPTIONS)
def test_unfold_matches_torch(kernel_size, dilation, padding, stride, hw, batched, dtype):
    shape = ((2,) if batched else ()) + (3,) + hw
    check_layer(torch.nn.Unfold(kernel_size, dilation, padding, stride),
                fl.Unfold(kernel_size, dilation, padding, stride), [randn(*shape, dtype=dtype)], dtype=dtype)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kernel_size, dilation, padding, stride, hw", OPTIONS)
def test_fold_matches_torch(kernel_size, dilation, padding, stride, hw, batched, dtype):
    module = torch.nn.Fold(hw, kernel_size, dilation, padding, stride)
    cols = torch.nn.Unfold(kernel_size, dilation, padding, stride)(torch.zeros(1, 3, *hw))
    shape = ((2,) if batched else ()) + tuple(cols.shape[1:])
    layer = fl.Fold(hw, kernel_size, dilation, padding, stride)
    check_layer(module, layer, [randn(*shape, dtype=dtype)], dtype=dtype)


def test_fold_of_unfold_is_input_times_overlap_count():
    """torch's documented identity: fold(unfold(x)) == x * fold(unfold(ones))."""
    args = dict(kernel_size=(3, 2), dilation=(1, 2), padding=1, stride=(2, 1))
    x = randn(2, 3, 7, 6)
    roundtrip = F.fold(F.unfold(x, **args), (7, 6), **args)
    divisor = F.fold(F.unfold(np.ones_like(x), **args), (7, 6), **args)
    np.testing.assert_allclose(roundtrip, x * divisor, rtol=1e-6)
    expected = TF.fold(TF.unfold(torch.ones(2, 3, 7, 6), **args), (7, 6), **args)
    np.testing.assert_array_equal(divisor, expected.numpy())


def test_unfold_and_fold_jit_grad_vmap():
    jit_grad_vmap(fl.Unfold((2, 3), dilation=(2, 1), padding=1, stride=2), randn(2, 3, 6, 7))
    jit_grad_vmap(fl.Fold((6, 7), (2, 3), dilation=(2, 1), padding=1, stride=2), randn(2, 18, 3 * 4))


def test_fold_is_the_transpose_of_unfold():
    args = dict(kernel_size=(2, 3), dilation=(2, 1), padding=(1, 0), stride=(1, 2))
    x, cols = randn(2, 3, 6, 7), randn(2, 18, 6 * 3)
    transposed = jax.linear_transpose(lambda x: F.unfold(x, **args), jnp.asarray(x))
    # the same sums, possibly added in another order: float32 rounding only
    np.testing.assert_allclose(transposed(jnp.asarray(cols))[0], F.fold(cols, (6, 7), **args), rtol=1e-6,
                               atol=1e-6)


def test_repr_matches_torch():
    for args in [(2,), ((2, 3), (1, 2), 1, 2)]:
        assert repr(fl.Unfold(*args)) == repr(torch.nn.Unfold(*args))
        assert repr(fl.Fold((4, 5), *args)) == repr(torch.nn.Fold((4, 5), *args))


# --------------------------------------------------------------------------------------------
# errors: torch's messages, and torch refuses the same call
# --------------------------------------------------------------------------------------------

UNFOLD_ERRORS = [
    pytest.param((2, 3, 5, 6), (7,), ValueError,
                 r"Given input with spatial size \(5, 6\), kernel_size=\(7, 7\), dilation=\(1, 1\), "
                 r"padding=\(0, 0\), calculated shape of the array of sliding blocks as \(-1, 0\), but its "
                 r"components must be at least one", id="kernel-larger-than-input"),
    pytest.param((2, 3, 5, 6), (3, 3), ValueError,
                 r"calculated shape of the array of sliding blocks as \(-1, 0\)",
                 id="dilated-kernel-larger-than-input"),
    pytest.param((2, 3, 5, 6), (0,), ValueError, "kernel size should be greater than zero", id="kernel0"),
    pytest.param((2, 3, 5, 6), (2, 1, 0, 0), ValueError, "stride should be greater than zero", id="stride0"),
    pytest.param((2, 3, 5, 6), (2, 0), ValueError, "dilation should be greater than zero", id="dilation0"),
    pytest.param((2, 3, 5, 6), (2, 1, -1), ValueError, "padding should be non-negative",
                 id="negative-padding"),
    pytest.param((2, 3, 5, 6), ((2, 2, 2),), ValueError,
                 "It is expected kernel_size equals to 2, but got size 3", id="kernel-of-3-dims"),
    pytest.param((1, 2, 3, 5, 6), (2,), ValueError,
                 r"Expected 3D or 4D \(batch mode\) tensor with possibly 0 batch size and other non-zero "
                 r"dimensions for input, but got: \[1, 2, 3, 5, 6\]", id="5d-input"),
    pytest.param((2, 0, 5, 6), (2,), ValueError, r"but got: \[2, 0, 5, 6\]", id="empty-channels"),
    pytest.param((2, 3, 5, 6), (2.0,), TypeError, "must be tuple of ints", id="float-kernel"),
]


@pytest.mark.parametrize("shape, args, error, match", UNFOLD_ERRORS)
def test_unfold_errors_like_torch(shape, args, error, match):
    with pytest.raises((RuntimeError, TypeError)):
        TF.unfold(torch.zeros(shape), *args)
    with pytest.raises(error, match=match):
        F.unfold(np.zeros(shape, np.float32), *args)


FOLD_ERRORS = [
    pytest.param((2, 12, 19), ((5, 6), 2), ValueError,
                 r"Given output_size=\(5, 6\), kernel_size=\(2, 2\), dilation=\(1, 1\), "
                 r"padding=\(0, 0\), stride=\(1, 1\), expected size of input's dimension 2 to match the "
                 r"calculated number of sliding blocks 4 \* 5 = 20, but got input.size\(2\)=19",
                 id="wrong-block-count"),
    pytest.param((2, 11, 20), ((5, 6), 2), ValueError,
                 r"Expected size of input's dimension 1 to be divisible by the product of kernel_size, but "
                 r"got input.size\(1\)=11 and kernel_size=\(2, 2\)", id="channels-not-divisible"),
    pytest.param((11, 20), ((5, 6), 2), ValueError, r"input.size\(1\)=11",
                 id="unbatched-channels-not-divisible"),
    pytest.param((2, 12, 1), ((1, 1), 2), ValueError, r"sliding blocks 0 \* 0 = 0",
                 id="output-smaller-than-kernel"),
    pytest.param((1, 2, 12, 20), ((5, 6), 2), ValueError,
                 r"Expected 2D or 3D \(batch mode\) tensor for input with possibly 0 batch size and non-zero "
                 r"dimensions for input, but got: \[1, 2, 12, 20\]", id="4d-input"),
    pytest.param((2, 12, 20), ((5, 6, 7), 2), ValueError,
                 "It is expected output_size equals to 2, but got size 3", id="3d-output-size"),
    pytest.param((2, 12, 20), ((5, 6), 2, 1, 0, 0), ValueError, "stride should be greater than zero",
                 id="stride0"),
]


@pytest.mark.parametrize("shape, args, error, match", FOLD_ERRORS)
def test_fold_errors_like_torch(shape, args, error, match):
    with pytest.raises(RuntimeError):
        TF.fold(torch.zeros(shape), *args)
    with pytest.raises(error, match=match):
        F.fold(np.zeros(shape, np.float32), *args)


def test_layers_check_configuration_at_construction():
    with pytest.raises(ValueError, match="Unfold: kernel size should be greater than zero"):
        fl.Unfold(0)
    with pytest.raises(ValueError, match="Fold: It is expected output_size equals to 2"):
        fl.Fold((1, 2, 3), 2)


def test_integer_input_is_a_type_error():
    with pytest.raises(NotImplementedError):
        TF.unfold(torch.zeros(1, 1, 3, 3, dtype=torch.int64), 2)
    with pytest.raises(TypeError, match="floating-point"):
        F.unfold(np.zeros((1, 1, 3, 3), np.int32), 2)


# --------------------------------------------------------------------------------------------
# convolution = unfold + matmul (+ fold for the transposed convolution)
# --------------------------------------------------------------------------------------------

CONVS = [  # (in, out, kernel, stride, padding, dilation, groups, input H, W)
    pytest.param(3, 4, (3, 3), 1, 0, 1, 1, (7, 6), id="plain"),
    pytest.param(3, 4, (3, 2), (2, 1), 1, 1, 1, (7, 6), id="stride-padding"),
    pytest.param(2, 4, 3, 1, (2, 1), (2, 1), 1, (7, 6), id="dilation"),
    pytest.param(4, 6, 2, 2, 1, 1, 2, (6, 7), id="groups2"),
    pytest.param(4, 8, 3, 1, 1, 2, 4, (7, 7), id="depthwise-multiplier2"),
]


def conv2d_by_unfold(x, weight, bias, stride, padding, dilation, groups):
    """Conv2d as im2col + one matrix multiply per group + reshape."""
    n, out_channels = x.shape[0], weight.shape[0]
    kernel_size = weight.shape[2:]
    cols = F.unfold(x, kernel_size, dilation, padding, stride)                      # (N, C*kh*kw, L)
    cols = cols.reshape(n, groups, -1, cols.shape[-1])                             # (N, G, C/G*kh*kw, L)
    w = weight.reshape(groups, out_channels // groups, -1)                          # (G, O/G, C/G*kh*kw)
    out = jnp.einsum("gok,ngkl->ngol", w, cols).reshape(n, out_channels, -1) + bias[:, None]
    s, p, d = (ntuple(a, 2) for a in (stride, padding, dilation))
    blocks = [(x.shape[2 + i] + 2 * p[i] - d[i] * (kernel_size[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    return out.reshape(n, out_channels, *blocks)


def conv_transpose2d_by_fold(x, weight, bias, stride, padding, output_padding, dilation, groups):
    """ConvTranspose2d as one matrix multiply per group followed by col2im (fold)."""
    n, in_channels, h, w = x.shape
    kernel_size = weight.shape[2:]
    s, p, op, d = (ntuple(a, 2) for a in (stride, padding, output_padding, dilation))
    output_size = [(size - 1) * s[i] - 2 * p[i] + d[i] * (kernel_size[i] - 1) + op[i] + 1
                   for i, size in enumerate((h, w))]
    wg = weight.reshape(groups, in_channels // groups, -1)                          # (G, C/G, O/G*kh*kw)
    xg = x.reshape(n, groups, in_channels // groups, h * w)
    cols = jnp.einsum("gck,ngcl->ngkl", wg, xg).reshape(n, -1, h * w)               # (N, O*kh*kw, L)
    return F.fold(cols, output_size, kernel_size, d, p, s) + bias[:, None, None]


def _tol(dtype):
    # float32: the matmul sums C*kh*kw products in another order than torch's convolution kernel
    return tolerance(dtype, atol=2e-5) if np.dtype(dtype) == np.float32 else tolerance(dtype)


@pytest.mark.parametrize("cin, cout, kernel, stride, padding, dilation, groups, hw", CONVS)
def test_conv2d_is_unfold_then_matmul(cin, cout, kernel, stride, padding, dilation, groups, hw, dtype):
    conv = torch.nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups)
    x = randn(2, cin, *hw, dtype=dtype)
    weight, bias = conv.weight.detach().numpy().astype(dtype), conv.bias.detach().numpy().astype(dtype)
    args = (stride, padding, dilation, groups)
    xt, wt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(weight).requires_grad_(True)
    expected = TF.conv2d(xt, wt, torch.from_numpy(bias), *args)
    ct = randn(*expected.shape, dtype=dtype, seed=1)
    expected.backward(torch.from_numpy(ct))

    def loss(x, w):
        out = conv2d_by_unfold(x, w, jnp.asarray(bias), *args)
        return jnp.sum(out * ct), out

    (gx, gw), out = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(jnp.asarray(x), jnp.asarray(weight))
    tol = _tol(dtype)
    np.testing.assert_allclose(out, expected.detach().numpy(), **tol)
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(gw, wt.grad.numpy(), **tol)
    if hasattr(F, "conv2d"):  # funclayers' own convolution, when present, is the same function
        ours = F.conv2d(jnp.asarray(x), jnp.asarray(weight), jnp.asarray(bias), *args)
        np.testing.assert_allclose(ours, out, **tol)


TRANSPOSED = [  # (in, out, kernel, stride, padding, output_padding, dilation, groups, input H, W)
    pytest.param(3, 4, 3, 1, 0, 0, 1, 1, (5, 4), id="plain"),
    pytest.param(4, 2, 4, 2, 1, 0, 1, 1, (4, 5), id="k4-s2-p1-upsample"),
    pytest.param(2, 3, (3, 2), (2, 3), (1, 0), (1, 2), 1, 1, (4, 3), id="output-padding"),
    pytest.param(4, 6, 3, 2, 1, 1, 2, 2, (4, 4), id="dilation-groups"),
]


@pytest.mark.parametrize("cin, cout, kernel, stride, padding, output_padding, dilation, groups, hw",
                         TRANSPOSED)
def test_conv_transpose2d_is_matmul_then_fold(cin, cout, kernel, stride, padding, output_padding, dilation,
                                               groups, hw, dtype):
    conv = torch.nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding, groups, True,
                                    dilation)
    x = randn(2, cin, *hw, dtype=dtype)
    weight, bias = conv.weight.detach().numpy().astype(dtype), conv.bias.detach().numpy().astype(dtype)
    args = (stride, padding, output_padding, groups, dilation)  # torch's positional order
    xt, wt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(weight).requires_grad_(True)
    expected = TF.conv_transpose2d(xt, wt, torch.from_numpy(bias), *args)
    ct = randn(*expected.shape, dtype=dtype, seed=1)
    expected.backward(torch.from_numpy(ct))

    def loss(x, w):
        out = conv_transpose2d_by_fold(x, w, jnp.asarray(bias), stride, padding, output_padding, dilation,
                                       groups)
        return jnp.sum(out * ct), out

    (gx, gw), out = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(jnp.asarray(x), jnp.asarray(weight))
    tol = _tol(dtype)
    np.testing.assert_allclose(out, expected.detach().numpy(), **tol)
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(gw, wt.grad.numpy(), **tol)
    if hasattr(F, "conv_transpose2d"):
        ours = F.conv_transpose2d(jnp.asarray(x), jnp.asarray(weight), jnp.asarray(bias), *args)
        np.testing.assert_allclose(ours, out, **tol)
