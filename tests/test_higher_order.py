"""Grad of grad through every hand-written backward pass (`_kernels._primitive` transposes, custom_jvp), against torch.

d/dx sum(grad_x(sum(layer(x)^3))^2) in float64, training mode, compared with torch's double
backward: the fast backward passes must themselves be differentiable and exact.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import randn

import funclayers as fl

CASES = [
    pytest.param("Conv2d", (16, 16, 3), {"padding": 1}, (1, 16, 4, 4), id="conv2d-gemm-small-map"),
    pytest.param("Conv2d", (8, 8, 3), {"padding": 1, "stride": 2}, (2, 8, 6, 6), id="conv2d-gemm-stride2"),
    pytest.param("Conv2d", (8, 8, 3), {"padding": 1}, (2, 8, 6, 5), id="conv2d-winograd"),
    pytest.param("Conv2d", (3, 4, 3), {"padding": 1, "stride": 2}, (2, 3, 7, 7), id="conv2d-patches"),
    pytest.param("Conv2d", (8, 8, 3), {"padding": 1, "groups": 8}, (2, 8, 6, 6), id="conv2d-depthwise"),
    pytest.param("Conv2d", (8, 8, 3), {"padding": 1, "groups": 2}, (2, 8, 6, 6), id="conv2d-groups"),
    pytest.param("Conv3d", (4, 8, 3), {"padding": 1}, (1, 4, 4, 5, 5), id="conv3d"),
    pytest.param("ConvTranspose2d", (8, 4, 4), {"stride": 2, "padding": 1}, (2, 8, 5, 5), id="conv-transpose2d"),
    pytest.param("BatchNorm2d", (4,), {}, (3, 4, 5, 5), id="batchnorm2d"),
    pytest.param("GroupNorm", (2, 4), {}, (3, 4, 5, 5), id="groupnorm"),
    pytest.param("LayerNorm", (5,), {}, (3, 4, 5), id="layernorm"),
    pytest.param("InstanceNorm2d", (4,), {"affine": True}, (3, 4, 5, 5), id="instancenorm2d"),
    pytest.param("Softmax", (), {"dim": -1}, (3, 4, 5), id="softmax"),
    pytest.param("LogSoftmax", (), {"dim": -1}, (3, 4, 5), id="log-softmax"),
    pytest.param("MaxPool1d", (3, 2, 1), {}, (3, 7, 8), id="maxpool1d"),
    pytest.param("MaxPool2d", (3, 2, 1), {}, (2, 3, 7, 8), id="maxpool2d"),
    pytest.param("AdaptiveMaxPool2d", ((4, 3),), {}, (2, 3, 7, 8), id="adaptive-maxpool2d"),
    pytest.param("AvgPool2d", (3, 2, 1), {}, (2, 3, 7, 7), id="avgpool2d"),
    pytest.param("AdaptiveAvgPool2d", (3,), {}, (2, 3, 7, 7), id="adaptive-avgpool2d"),
    pytest.param("Fold", ((4, 4), 2), {}, (2, 8, 9), id="fold"),
]


@pytest.mark.parametrize("name, args, kwargs, shape", CASES)
def test_grad_of_grad_matches_torch(name, args, kwargs, shape, x64):
    module = getattr(torch.nn, name)(*args, **kwargs).double().train()
    layer = getattr(fl, name)(*args, **kwargs)
    params, state = fl.load_state_dict(layer, {k: v.numpy() for k, v in module.state_dict().items()},
                                       dtype=np.float64)
    x = randn(*shape, dtype=np.float64, seed=3)

    def ours(x):
        return layer.apply(params, state, x, training=True)[0]

    hv = jax.jit(jax.grad(lambda x: jnp.sum(jax.grad(lambda x: jnp.sum(ours(x) ** 3))(x) ** 2)))(jnp.asarray(x))
    tx = torch.from_numpy(x).requires_grad_(True)
    (g,) = torch.autograd.grad((module(tx) ** 3).sum(), tx, create_graph=True)
    (expected,) = torch.autograd.grad((g**2).sum(), tx)
    # rtol 1e-10 as every float64 parity test; entries that cancel to ~0 get an atol of 1e-12 of the
    # largest entry (a sum of third-order terms, rounded in a different order than torch's)
    scale = np.abs(expected.numpy()).max()
    np.testing.assert_allclose(np.asarray(hv), expected.numpy(), rtol=1e-10, atol=1e-12 * scale)


@pytest.mark.parametrize("method", ["taps", "patches", "winograd", "gemm", "xla"])
def test_grad_of_grad_through_every_dense_conv_lowering(method, x64):
    """Each 2-D lowering forced (the layers above reach only the ones their shapes pick)."""
    from funclayers._kernels import _conv_lowering as lowering

    x, w = randn(2, 4, 6, 5, dtype=np.float64, seed=1), randn(3, 4, 3, 3, dtype=np.float64, seed=2)
    padding = ((1, 1), (1, 0))

    def ours(x, w):
        return lowering.conv(x, w, (1, 1), padding, (1, 1), 1, method=method)

    def second(x, w):
        gx, gw = jax.grad(lambda x, w: jnp.sum(ours(x, w) ** 3), argnums=(0, 1))(x, w)
        return jnp.sum(gx**2) + jnp.sum(gw**2)

    hx, hw = jax.jit(jax.grad(second, argnums=(0, 1)))(jnp.asarray(x), jnp.asarray(w))
    tx, tw = (torch.from_numpy(a).requires_grad_(True) for a in (x, w))
    t_out = torch.nn.functional.conv2d(torch.nn.functional.pad(tx, (1, 0, 1, 1)), tw)
    gx, gw = torch.autograd.grad((t_out**3).sum(), (tx, tw), create_graph=True)
    ex, ew = torch.autograd.grad((gx**2).sum() + (gw**2).sum(), (tx, tw))
    for ours_h, expected in ((hx, ex), (hw, ew)):
        scale = np.abs(expected.numpy()).max()
        np.testing.assert_allclose(np.asarray(ours_h), expected.numpy(), rtol=1e-10, atol=1e-12 * scale)
