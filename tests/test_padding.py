"""Padding: functional pad in every mode and the 15 padding layers against torch (values, grads, errors)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import check_jit_grad_vmap as jit_grad_vmap
from oracle import check_layer, randn
from padding_helpers import TorchFn, fn_layer

import funclayers as fl
import funclayers.functional as F

# --------------------------------------------------------------------------------------------
# layers: every class, batched and unbatched, int and per-side padding
# --------------------------------------------------------------------------------------------

SHAPES = {1: (2, 3, 5), 2: (2, 3, 5, 4), 3: (2, 2, 4, 5, 3)}
PER_SIDE = {1: (3, 1), 2: (1, 2, 3, 0), 3: (1, 0, 2, 1, 3, 2)}
KINDS = ["ReflectionPad", "ReplicationPad", "ZeroPad", "ConstantPad", "CircularPad"]


def make(kind, n, padding):
    args = (padding, 2.5) if kind == "ConstantPad" else (padding,)
    return getattr(torch.nn, f"{kind}{n}d")(*args), getattr(fl, f"{kind}{n}d")(*args)


@pytest.mark.parametrize("n", [1, 2, 3], ids=lambda n: f"{n}d")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["per_side-batched", "int-unbatched"])
def test_padding_layer_matches_torch(kind, n, case, dtype):
    padding, shape = (PER_SIDE[n], SHAPES[n]) if case == "per_side-batched" else (2, SHAPES[n][1:])
    module, layer = make(kind, n, padding)
    check_layer(module, layer, [randn(*shape, dtype=dtype)], dtype=dtype)


NEGATIVE = [  # (kind, n, padding, input shape): cropping where torch allows it
    pytest.param("ReflectionPad", 2, (-1, 2, 1, -2), (2, 3, 4, 5), id="reflect-crop-and-pad"),
    pytest.param("ReflectionPad", 1, (-3, 2), (2, 3, 4), id="reflect-crop-past-the-pad-side"),
    pytest.param("ReplicationPad", 2, (-4, 5, 0, 0), (2, 3, 4, 4), id="replicate-crop-everything-then-pad"),
    pytest.param("ReplicationPad", 3, (2, -1, -1, -1, 1, 0), (1, 2, 3, 4, 3), id="replicate-3d-mixed"),
    pytest.param("ZeroPad", 2, (-1, -1, 2, -2), (2, 3, 4, 5), id="zero-crop"),
    pytest.param("ConstantPad", 1, (-2, 3), (2, 3, 4), id="constant-crop-and-pad"),
    pytest.param("CircularPad", 2, (-1, 1, -2, 1), (1, 3, 4, 4), id="circular-crop-then-wrap"),
    pytest.param("CircularPad", 1, (2, -1), (2, 4), id="circular-wrap-the-cropped-input-unbatched"),
]


@pytest.mark.parametrize("kind, n, padding, shape", NEGATIVE)
def test_negative_padding_crops_like_torch(kind, n, padding, shape, dtype):
    module, layer = make(kind, n, padding)
    check_layer(module, layer, [randn(*shape, dtype=dtype)], dtype=dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_layers_jit_grad_vmap(kind):
    _, layer = make(kind, 2, (1, 2, 2, 1))
    jit_grad_vmap(layer, randn(2, 3, 4, 5))


@pytest.mark.parametrize("n", [1, 2, 3], ids=lambda n: f"{n}d")
@pytest.mark.parametrize("kind", KINDS)
def test_repr_matches_torch(kind, n):
    for padding in (2, PER_SIDE[n]):
        module, layer = make(kind, n, padding)
        assert repr(layer) == repr(module)


def test_constant_and_zero_pad_keep_integer_inputs():
    x = np.arange(6, dtype=np.int32).reshape(1, 2, 3)
    out, _ = fl.ConstantPad1d(1, 2.7).apply({}, {}, x)
    expected = TF.pad(torch.from_numpy(x), (1, 1), value=2.7).numpy()  # torch truncates the fill to 2
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == jnp.int32


# --------------------------------------------------------------------------------------------
# functional pad: torch's own sample cases (common_methods_invocations.sample_inputs_nn_pad)
# --------------------------------------------------------------------------------------------

FUNCTIONAL = [
    pytest.param((1, 3), (1, 2), "reflect", None, id="reflect-2d-input"),
    pytest.param((1, 3, 3), (0, 2, 0, 1), "reflect", None, id="reflect-unbatched-image"),
    pytest.param((3, 3, 5, 5), (1, 1, 1, 1, 1, 1), "reflect", None, id="reflect-3-dims-of-4d"),
    pytest.param((1, 3, 3, 3, 3), (1, 1, 1, 1, 1, 1), "replicate", None, id="replicate-volume"),
    pytest.param((1, 3, 4, 4), (-1, 1, -2, 1), "replicate", None, id="replicate-negative"),
    pytest.param((6, 2, 4, 4), (0, 0, 2, -4), "replicate", None, id="replicate-crop-all-rows"),
    pytest.param((2, 6, 5, 5), (8, -1, -1, -3), "replicate", None, id="replicate-pad-wider-than-input"),
    pytest.param((5, 3), (-1, -2, 1, 1), "constant", 1.0, id="constant-crop-and-pad-2d"),
    pytest.param((1, 3, 3), (1, 1, 1, 1, 1, 1), "constant", 2.0, id="constant-all-dims"),
    pytest.param((2, 1, 3, 2, 2), (1, 2), "constant", None, id="constant-last-dim-of-5d"),
    pytest.param((0, 3, 3, 3), (0, 2, 0, 1), "circular", None, id="circular-empty-batch"),
    pytest.param((1, 3, 3, 3, 3), (1, 1, 1, 1, 1, 1), "circular", None, id="circular-volume"),
    pytest.param((1, 3, 3), (3, 3), "circular", None, id="circular-wrap-exactly-once"),
]


@pytest.mark.parametrize("shape, pad, mode, value", FUNCTIONAL)
def test_functional_pad_matches_torch(shape, pad, mode, value, dtype):
    check_layer(TorchFn(TF.pad, pad, mode, value), fn_layer(F.pad, pad, mode, value),
                [randn(*shape, dtype=dtype)], dtype=dtype)


def test_functional_pad_grid_agrees_with_torch_on_values_and_errors():
    """(before, after) over [-4, 3] x [-4, 2] on a width-3 signal, every mode: same output or both refuse.

    torch's circular padding reads memory it is writing when a positive side wraps around more
    than what cropping left (overlap error or garbage); those are errors here, checked separately.
    """
    x = randn(2, 3)
    for mode in ("constant", "reflect", "replicate", "circular"):
        for before in (-4, -2, -1, 0, 2, 3):
            for after in (-4, -2, -1, 0, 1, 2):
                kept = 3 - max(-before, 0) - max(-after, 0)
                if mode == "circular" and (max(before, 0) > kept or max(after, 0) > kept):
                    with pytest.raises(ValueError, match="wrapping around more than once|empty dimension"):
                        F.pad(x, (before, after), mode)
                    continue
                try:
                    expected = TF.pad(torch.from_numpy(x), (before, after), mode).numpy()
                except RuntimeError:
                    with pytest.raises(ValueError):
                        F.pad(x, (before, after), mode)
                    continue
                np.testing.assert_array_equal(F.pad(x, (before, after), mode), expected,
                                              err_msg=f"{mode} {(before, after)}")


# --------------------------------------------------------------------------------------------
# errors: torch's messages (and torch refuses the same input)
# --------------------------------------------------------------------------------------------

ERRORS = [
    pytest.param((1, 1, 3), (4, 4), "reflect", None, ValueError,
                 r"Argument #4: Padding size should be less than the corresponding input dimension, but got: "
                 r"padding \(4, 4\) at dimension 2 of input \[1, 1, 3\]",
                 id="reflect-padding-as-large-as-input"),
    pytest.param((1, 1, 3, 5), (1, 1, 3, 3), "reflect", None, ValueError,
                 r"Argument #6: .* padding \(3, 3\) at dimension 2 of input \[1, 1, 3, 5\]",
                 id="reflect-height"),
    pytest.param((1, 1, 3), (1, 2, 3), "constant", None, ValueError, "Padding length must be divisible by 2",
                 id="odd-pad-length"),
    pytest.param((1, 1, 3), (1,) * 8, "constant", None, ValueError,
                 "Padding length should be less than or equal to two times the input dimension but got "
                 "padding length 8 and input of dimension 3", id="pad-longer-than-rank"),
    pytest.param((2, 3), (1, 1, 1, 1), "reflect", None, NotImplementedError,
                 "Padding size 4 is not supported for 2D input tensor", id="reflect-2-dims-of-2d-input"),
    pytest.param((1, 1, 2, 2, 3), (1, 1), "replicate", None, NotImplementedError,
                 "Padding size 2 is not supported for 5D input tensor", id="replicate-1-dim-of-5d-input"),
    pytest.param((1, 1, 3), (1, 1), "foo", None, NotImplementedError, "Unrecognised padding mode foo",
                 id="unknown-mode"),
    pytest.param((1, 1, 3), (1, 1), "reflect", 2.0, ValueError,
                 "Padding mode \"reflect\" doesn't take in value argument", id="value-with-reflect"),
    pytest.param((1, 1, 3), (4, 4), "circular", None, ValueError,
                 "Padding value causes wrapping around more than once", id="circular-wraps-twice"),
    pytest.param((1, 1, 3, 5), (1, 1, -4, 0), "circular", None, ValueError,
                 "Negative padding value is resulting in an empty dimension", id="circular-crops-past-empty"),
    pytest.param((1, 1, 3), (-4, 2), "constant", None, ValueError, r"narrow\(\): length must be non-negative",
                 id="constant-crops-more-than-input"),
    pytest.param((1, 1, 3), (-2, -1), "replicate", None, ValueError,
                 r"input \(W: 3\) is too small. Calculated output W: 0", id="replicate-crops-to-nothing"),
    pytest.param((1, 1, 3, 3), (0, 0, -3, -1), "replicate", None, ValueError,
                 "Trying to create tensor with negative dimension -1", id="replicate-negative-output"),
    pytest.param((1, 0, 3), (1, 1), "reflect", None, ValueError,
                 r"Expected 2D or 3D \(batch mode\) tensor with possibly 0 batch size and other non-zero "
                 r"dimensions for input, but got: \[1, 0, 3\]", id="reflect-empty-channels"),
    pytest.param((1, 1, 3), (1.0, 1), "constant", None, TypeError, "must be tuple of ints",
                 id="float-padding"),
]


@pytest.mark.parametrize("shape, pad, mode, value, error, match", ERRORS)
def test_functional_pad_errors_like_torch(shape, pad, mode, value, error, match):
    with pytest.raises((RuntimeError, NotImplementedError, TypeError)):
        TF.pad(torch.zeros(shape), pad, mode, value)
    with pytest.raises(error, match=match):
        F.pad(np.zeros(shape, np.float32), pad, mode, value)


@pytest.mark.parametrize("n", [1, 2, 3], ids=lambda n: f"{n}d")
def test_circular_layer_rank_error_is_torchs(n):
    x = np.zeros((2,) * (n + 3), np.float32)
    with pytest.raises(ValueError, match=rf"expected {n + 1}D or {n + 2}D input \(got {n + 3}D input\)"):
        torch.nn.__dict__[f"CircularPad{n}d"](1)(torch.from_numpy(x))
    message = rf"CircularPad{n}d: expected {n + 1}D or {n + 2}D input \(got {n + 3}D input\)"
    with pytest.raises(ValueError, match=message):
        fl.__dict__[f"CircularPad{n}d"](1).apply({}, {}, x)


@pytest.mark.parametrize("kind", ["ReflectionPad", "ReplicationPad"])
def test_edge_layers_name_the_expected_ranks(kind):
    with pytest.raises(NotImplementedError, match="not supported for 2D input tensor"):
        getattr(torch.nn, f"{kind}2d")(1)(torch.zeros(2, 3))
    message = rf"{kind}2d expects a 3D \(C, H, W\) or 4D \(N, C, H, W\) input, got shape \(2, 3\)"
    with pytest.raises(ValueError, match=message):
        getattr(fl, f"{kind}2d")(1).apply({}, {}, np.zeros((2, 3), np.float32))


def test_constant_pads_accept_any_rank_like_torch():
    x = randn(2, 1, 3, 2, 2)
    out, _ = fl.ZeroPad2d(1).apply({}, {}, x)
    np.testing.assert_array_equal(out, torch.nn.ZeroPad2d(1)(torch.from_numpy(x)).numpy())
    with pytest.raises(ValueError, match="padding length 4 and input of dimension 1"):
        fl.ZeroPad2d(1).apply({}, {}, randn(3))


def test_bad_padding_configuration_raises_at_construction():
    with pytest.raises(ValueError, match=r"ReflectionPad2d: padding must be an int or a tuple of 4 ints"):
        fl.ReflectionPad2d((1, 2, 3))
    with pytest.raises(TypeError, match="must be tuple of ints, but found element of type float"):
        fl.ZeroPad1d(1.5)


def test_functional_pad_under_vmap_and_grad():
    x = randn(4, 3, 5, 6)
    f = lambda x: F.pad(x, (2, 1, -1, 2), "reflect")  # noqa: E731
    batched = jax.vmap(f)(jnp.asarray(x))
    expected = TF.pad(torch.from_numpy(x), (2, 1, -1, 2), "reflect").numpy()
    np.testing.assert_allclose(batched, expected, rtol=0, atol=0)
    grad = jax.grad(lambda x: jnp.sum(f(x)))(jnp.asarray(x))
    t = torch.from_numpy(x).requires_grad_(True)
    TF.pad(t, (2, 1, -1, 2), "reflect").sum().backward()
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("mode, pad, shape", [("reflect", (2, 1, 0, 3), (2, 3, 4, 5)),
                                               ("replicate", (1, 4, 3, 0, 2, 1), (2, 3, 4, 5, 3)),
                                               ("circular", (2, 1, 0, 3), (2, 3, 4, 5))],
                         ids=["reflect-2d", "replicate-3d", "circular-2d"])
def test_edge_padding_forward_mode_and_vmap_of_grad(mode, pad, shape):
    # non-negative reflect/replicate/circular pads lower to one concatenation of blocks; every transformation of it
    # must agree with torch's pad applied to the tangent (padding is linear) and with reverse mode
    x = randn(*shape)
    f = lambda x: F.pad(x, pad, mode)  # noqa: E731
    dx = randn(*x.shape)
    expected = lambda a: TF.pad(torch.from_numpy(a), pad, mode).numpy()  # noqa: E731
    out, tangent = jax.jvp(f, (jnp.asarray(x),), (jnp.asarray(dx),))
    np.testing.assert_array_equal(out, expected(x))
    np.testing.assert_array_equal(tangent, expected(dx))
    small = jnp.asarray(x[:1, :1])
    np.testing.assert_array_equal(jax.jacfwd(f)(small), jax.jacrev(f)(small))
    _, f_lin = jax.linearize(f, jnp.asarray(x))
    np.testing.assert_array_equal(f_lin(jnp.asarray(dx)), expected(dx))
    cot = randn(*out.shape)
    per_example = jax.vmap(jax.grad(lambda x, c: jnp.sum(f(x) * c)))(jnp.asarray(x), jnp.asarray(cot))
    t = torch.from_numpy(x).requires_grad_(True)
    TF.pad(t, pad, mode).backward(torch.from_numpy(cot))  # pad acts on the trailing dims of each example
    np.testing.assert_allclose(per_example, t.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_replication_pad_wider_than_the_input_matches_torch(dtype):
    module, layer = make("ReplicationPad", 2, (5, 0, 1, 6))
    check_layer(module, layer, [randn(2, 3, 2, 3, dtype=dtype)], dtype=dtype)
