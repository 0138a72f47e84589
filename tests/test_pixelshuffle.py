"""PixelShuffle, PixelUnshuffle, ChannelShuffle against torch 2.13."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_jit_grad_vmap, check_layer, randn, tolerance
from torch.func import jvp as torch_jvp

import funclayers as fl
import funclayers.functional as F

CASES = [  # (torch class, our class, factor, input shape)
    pytest.param(torch.nn.PixelShuffle, fl.PixelShuffle, 2, (2, 8, 3, 5), id="shuffle2"),
    pytest.param(torch.nn.PixelShuffle, fl.PixelShuffle, 3, (9, 2, 4), id="shuffle3_unbatched"),
    pytest.param(torch.nn.PixelShuffle, fl.PixelShuffle, 1, (2, 3, 2, 2), id="shuffle1"),
    pytest.param(torch.nn.PixelShuffle, fl.PixelShuffle, 2, (2, 3, 4, 2, 3), id="shuffle2_two_batch_dims"),
    pytest.param(torch.nn.PixelUnshuffle, fl.PixelUnshuffle, 2, (2, 3, 4, 6), id="unshuffle2"),
    pytest.param(torch.nn.PixelUnshuffle, fl.PixelUnshuffle, 3, (2, 6, 3), id="unshuffle3_unbatched"),
    pytest.param(torch.nn.PixelUnshuffle, fl.PixelUnshuffle, 2, (2, 2, 1, 4, 2), id="unshuffle2_two_batch_dims"),
    pytest.param(torch.nn.ChannelShuffle, fl.ChannelShuffle, 2, (2, 4, 3), id="channel2_1d"),
    pytest.param(torch.nn.ChannelShuffle, fl.ChannelShuffle, 3, (2, 6, 3, 2), id="channel3_2d"),
    pytest.param(torch.nn.ChannelShuffle, fl.ChannelShuffle, 2, (1, 4, 2, 2, 3), id="channel2_3d"),
    pytest.param(torch.nn.ChannelShuffle, fl.ChannelShuffle, 4, (3, 4, 5), id="channel_groups_eq_channels"),
]


@pytest.mark.parametrize("torch_cls,ours,factor,shape", CASES)
def test_matches_torch(torch_cls, ours, factor, shape, dtype):
    layer = ours(factor)
    check_layer(torch_cls(factor), layer, [randn(*shape)], dtype=dtype)
    assert repr(layer) == repr(torch_cls(factor))


@pytest.mark.parametrize("torch_cls,ours,factor,shape", CASES[::3])
def test_jvp_matches_torch(torch_cls, ours, factor, shape, dtype):
    x, t = randn(*shape, dtype=dtype), randn(*shape, dtype=dtype, seed=1)
    layer = ours(factor)
    _, tangent = jax.jvp(lambda x: layer.apply({}, {}, x)[0], (jnp.asarray(x),), (jnp.asarray(t),))
    _, expected = torch_jvp(torch_cls(factor), (torch.from_numpy(x),), (torch.from_numpy(t),))
    np.testing.assert_allclose(tangent, expected.numpy(), **tolerance(dtype))


def test_shuffle_and_unshuffle_are_inverse_and_functional_matches():
    x = randn(2, 18, 4, 5)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 3), 3), x)
    np.testing.assert_array_equal(F.pixel_shuffle(x, 3), torch.nn.functional.pixel_shuffle(torch.from_numpy(x), 3))
    np.testing.assert_array_equal(F.channel_shuffle(x, 6),
                                  torch.nn.functional.channel_shuffle(torch.from_numpy(x), 6).numpy())
    np.testing.assert_array_equal(F.channel_shuffle(jnp.arange(4.0).reshape(1, 4, 1), 2)[0, :, 0], [0, 2, 1, 3])


def test_jit_grad_vmap():
    check_jit_grad_vmap(fl.PixelShuffle(2), randn(2, 8, 3, 3))
    check_jit_grad_vmap(fl.PixelUnshuffle(2), randn(2, 2, 4, 4))
    check_jit_grad_vmap(fl.ChannelShuffle(2), randn(2, 4, 3))


@pytest.mark.parametrize("fn,torch_fn,shape,factor,match", [
    pytest.param(F.pixel_shuffle, torch.nn.functional.pixel_shuffle, (2, 3), 2,
                 "pixel_shuffle expects input to have at least 3 dimensions", id="shuffle_rank"),
    pytest.param(F.pixel_shuffle, torch.nn.functional.pixel_shuffle, (1, 5, 2, 2), 2,
                 r"divisible by the square of upscale_factor, but input.size\(-3\)=5 is not divisible by 4",
                 id="shuffle_channels"),
    pytest.param(F.pixel_shuffle, torch.nn.functional.pixel_shuffle, (1, 4, 2, 2), 0,
                 "pixel_shuffle expects a positive upscale_factor, but got 0", id="shuffle_factor"),
    pytest.param(F.pixel_unshuffle, torch.nn.functional.pixel_unshuffle, (2, 3), 2,
                 "pixel_unshuffle expects input to have at least 3 dimensions", id="unshuffle_rank"),
    pytest.param(F.pixel_unshuffle, torch.nn.functional.pixel_unshuffle, (1, 1, 3, 4), 2,
                 r"expects height to be divisible by downscale_factor, but input.size\(-2\)=3", id="unshuffle_h"),
    pytest.param(F.pixel_unshuffle, torch.nn.functional.pixel_unshuffle, (1, 1, 4, 3), 2,
                 r"expects width to be divisible by downscale_factor, but input.size\(-1\)=3", id="unshuffle_w"),
    pytest.param(F.pixel_unshuffle, torch.nn.functional.pixel_unshuffle, (1, 1, 4, 4), -1,
                 "pixel_unshuffle expects a positive downscale_factor, but got -1", id="unshuffle_factor"),
    pytest.param(F.channel_shuffle, torch.nn.functional.channel_shuffle, (2, 4), 2,
                 r"channel_shuffle expects input with > 2 dims \(N, C, \*\), but got input with sizes \[2, 4\]",
                 id="channel_rank"),
    pytest.param(F.channel_shuffle, torch.nn.functional.channel_shuffle, (2, 5, 3), 2,
                 "Number of channels must be divisible by groups. Got 5 channels and 2 groups.", id="channel_div"),
    pytest.param(F.channel_shuffle, torch.nn.functional.channel_shuffle, (2, 4, 3), 0,
                 "Number of groups to divide channels in must be positive. Value of groups:0", id="channel_groups"),
])
def test_errors_match_torch(fn, torch_fn, shape, factor, match):
    with pytest.raises(ValueError, match=match):
        fn(np.ones(shape, np.float32), factor)
    with pytest.raises(RuntimeError, match=match.split(" (")[0].split(r" \(")[0][:30]):
        torch_fn(torch.ones(shape), factor)


def test_layers_reject_bad_factors_at_construction():
    with pytest.raises(ValueError, match=r"PixelShuffle\(upscale_factor=0\) expects a positive upscale_factor"):
        fl.PixelShuffle(0)
    with pytest.raises(ValueError, match="expects a positive downscale_factor, but got 2.0"):
        fl.PixelUnshuffle(2.0)
    with pytest.raises(ValueError, match="Number of groups to divide channels in must be positive"):
        fl.ChannelShuffle(0)
    layer = fl.PixelShuffle(2)
    with pytest.raises(ValueError, match=r"PixelShuffle\(upscale_factor=2\) expects its input's 'channel'"):
        layer.apply({}, {}, jnp.ones((1, 3, 2, 2)))
