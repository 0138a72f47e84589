"""MaxUnpool1d/2d/3d against torch: documentation example, gradients with repeated indices, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_layer, randn

import funclayers as fl
import funclayers.functional as F


def _pooled(n, shape, kernel, stride=None, padding=0, seed=0):
    """torch's max pool output and indices (numpy) to unpool."""
    x = torch.from_numpy(randn(*shape, seed=seed))
    out, idx = getattr(torch.nn.functional, f"max_pool{n}d")(x, kernel, stride, padding, return_indices=True)
    return out.numpy(), idx.numpy()


def test_torch_documentation_example():
    pool, unpool = fl.MaxPool2d(2, stride=2, return_indices=True), fl.MaxUnpool2d(2, stride=2)
    x = jnp.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    (out, idx), _ = jax.jit(pool.apply)({}, {}, x)
    restored, _ = jax.jit(unpool.apply)({}, {}, out, idx)
    expected = [[[[0.0, 0.0, 0.0, 0.0], [0.0, 6.0, 0.0, 8.0], [0.0, 0.0, 0.0, 0.0], [0.0, 14.0, 0.0, 16.0]]]]
    np.testing.assert_array_equal(np.asarray(restored), expected)
    x = jnp.arange(1.0, 21.0).reshape(1, 1, 4, 5)
    (out, idx), _ = jax.jit(pool.apply)({}, {}, x)
    restored, _ = jax.jit(lambda out, idx: unpool.apply({}, {}, out, idx, output_size=x.shape))(out, idx)
    expected = [
        [
            [
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 7.0, 0.0, 9.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 17.0, 0.0, 19.0, 0.0],
            ]
        ]
    ]
    np.testing.assert_array_equal(np.asarray(restored), expected)
    t_pool, t_unpool = torch.nn.MaxPool2d(2, stride=2, return_indices=True), torch.nn.MaxUnpool2d(2, stride=2)
    t_x = torch.arange(1.0, 21.0).reshape(1, 1, 4, 5)
    np.testing.assert_array_equal(
        np.asarray(restored), t_unpool(*t_pool(t_x), output_size=t_x.size()).numpy()
    )


CASES = [
    pytest.param(1, dict(kernel_size=2), (2, 3, 8), None, id="1d"),
    pytest.param(
        1, dict(kernel_size=3, stride=2, padding=1), (3, 9), [9], id="1d-overlapping-output-size-unbatched"
    ),
    pytest.param(2, dict(kernel_size=2), (2, 3, 6, 8), None, id="2d"),
    pytest.param(
        2,
        dict(kernel_size=3, stride=2, padding=1),
        (2, 2, 9, 8),
        [2, 2, 9, 8],
        id="2d-overlapping-full-output-size",
    ),
    pytest.param(2, dict(kernel_size=(2, 3), stride=(2, 1)), (2, 6, 7), None, id="2d-tuples-unbatched"),
    pytest.param(3, dict(kernel_size=2), (1, 2, 4, 4, 6), None, id="3d"),
    pytest.param(
        3, dict(kernel_size=3, stride=2, padding=1), (2, 5, 6, 5), [5, 6, 5], id="3d-overlapping-unbatched"
    ),
]


@pytest.mark.parametrize("n, kwargs, shape, output_size", CASES)
def test_maxunpool_matches_torch(n, kwargs, shape, output_size, dtype):
    pooled, indices = _pooled(n, shape, kwargs["kernel_size"], kwargs.get("stride"), kwargs.get("padding", 0))
    # overlapping windows repeat indices: torch's gradient reaches every duplicate
    check_layer(
        getattr(torch.nn, f"MaxUnpool{n}d")(**kwargs),
        getattr(fl, f"MaxUnpool{n}d")(**kwargs),
        [pooled, indices],
        kwargs={} if output_size is None else {"output_size": output_size},
        dtype=dtype,
    )


def test_maxpool_then_unpool_gradient_matches_torch(dtype):
    x = randn(2, 3, 8, 8)
    t = torch.from_numpy(x.astype(dtype)).requires_grad_(True)
    out, idx = torch.nn.functional.max_pool2d(t, 3, 2, 1, return_indices=True)
    (torch.nn.functional.max_unpool2d(out, idx, 3, 2, 1, output_size=(8, 8)) ** 2).sum().backward()

    def loss(x):
        out, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
        return (F.max_unpool2d(out, idx, 3, 2, 1, output_size=(8, 8)) ** 2).sum()

    g = jax.jit(jax.grad(loss))(jnp.asarray(x, dtype))
    np.testing.assert_allclose(np.asarray(g), t.grad.numpy(), rtol=1e-6)


def test_jit_vmap_grad():
    pooled, indices = _pooled(2, (2, 6, 6), 2)
    layer = fl.MaxUnpool2d(2)

    def f(x, idx):
        return layer.apply({}, {}, x, idx)[0]

    eager = jax.jit(f)(pooled, indices)
    torch_out = torch.nn.functional.max_unpool2d(torch.from_numpy(pooled), torch.from_numpy(indices), 2)
    np.testing.assert_array_equal(np.asarray(eager), torch_out.numpy())
    batched = jax.vmap(f)(jnp.stack([pooled] * 3), jnp.stack([indices] * 3))
    np.testing.assert_array_equal(np.asarray(batched), np.broadcast_to(np.asarray(eager), batched.shape))
    g = jax.jit(jax.grad(lambda x: f(x, indices).sum()))(pooled)
    np.testing.assert_array_equal(np.asarray(g), np.ones_like(pooled))


def test_out_of_range_indices_are_dropped_under_jit():
    x = jnp.ones((1, 1, 2, 2))
    indices = jnp.array([[[[0, 1], [2, 99]]]])
    out = jax.jit(lambda x, i: F.max_unpool2d(x, i, 2))(x, indices)
    np.testing.assert_array_equal(np.asarray(out).reshape(-1), [1, 1, 1] + [0] * 13)
    negative = jax.jit(lambda x, i: F.max_unpool2d(x, i, 2))(x, jnp.array([[[[0, 1], [2, -1]]]]))
    assert float(negative[0, 0, 3, 3]) == 0.0  # never wrapped around to the last element


@pytest.mark.parametrize(
    "call, error, match",
    [
        pytest.param(
            lambda: F.max_unpool2d(jnp.ones((1, 1, 2, 2)), jnp.array([[[[0, 1], [2, 99]]]]), 2),
            ValueError,
            r"invalid max index: 99 \(output volumes are of size 4x4\)",
            id="index-too-large",
        ),
        pytest.param(
            lambda: F.max_unpool2d(jnp.ones((1, 1, 2, 2)), jnp.array([[[[0, 1], [2, -1]]]]), 2),
            ValueError,
            r"invalid max index: -1",
            id="negative-index",
        ),
        pytest.param(
            lambda: F.max_unpool1d(jnp.ones((1, 1, 2)), jnp.array([[[0, 9]]]), 2),
            ValueError,
            r"invalid max index: 9 \(output volumes are of size 4\)",
            id="1d-index-too-large",
        ),
        pytest.param(
            lambda: F.max_unpool2d(jnp.ones((1, 1, 2, 2)), jnp.zeros((1, 1, 1, 4), int), 2),
            ValueError,
            r"expected shape of indices to be same as that of the input",
            id="indices-shape",
        ),
        pytest.param(
            lambda: F.max_unpool2d(jnp.ones((1, 1, 2, 2)), jnp.zeros((1, 1, 2, 2)), 2),
            TypeError,
            r"indices should be integers",
            id="float-indices",
        ),
        pytest.param(
            lambda: F.max_unpool2d(
                jnp.ones((1, 1, 2, 2)), jnp.zeros((1, 1, 2, 2), int), 2, output_size=(9, 9)
            ),
            ValueError,
            r'invalid output_size "\(9, 9\)" \(dim 0 must be between 2 and 6\)',
            id="output-size",
        ),
        pytest.param(
            lambda: F.max_unpool2d(
                jnp.ones((1, 1, 2, 2)), jnp.zeros((1, 1, 2, 2), int), 2, output_size=(4, 4, 4)
            ),
            ValueError,
            r"output_size should be a sequence containing 2 or 4 elements, but it has a length of '3'",
            id="output-size-length",
        ),
        pytest.param(
            lambda: F.max_unpool2d(jnp.ones((1, 1, 1, 1)), jnp.zeros((1, 1, 1, 1), int), 1, padding=1),
            ValueError,
            r"output_size must contain non-negative spatial dimensions",
            id="negative-output",
        ),
        pytest.param(
            lambda: fl.MaxUnpool2d(2).apply({}, {}, jnp.ones((2, 2)), jnp.zeros((2, 2), int)),
            ValueError,
            r"MaxUnpool2d\(kernel_size=\(2, 2\), stride=\(2, 2\), padding=\(0, 0\)\) expects a 3D "
            r"\(C, H, W\) or 4D",
            id="rank",
        ),
        pytest.param(
            lambda: fl.MaxUnpool3d(0), ValueError, "kernel_size should be greater than zero", id="kernel0"
        ),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("n, args", [(1, (2,)), (2, (2, (1, 2))), (3, (2, 1, 1))], ids=["1d", "2d", "3d"])
def test_layer_name_is_torchs_repr(n, args):
    assert getattr(fl, f"MaxUnpool{n}d")(*args).name == repr(getattr(torch.nn, f"MaxUnpool{n}d")(*args))
