"""Distance layers against torch 2.13: PairwiseDistance, CosineSimilarity and their functional twins."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import assert_close, check_layer, randn, tolerance

import funclayers as fl
import funclayers.functional as F

PAIRWISE = [  # (constructor kwargs, x1 shape, x2 shape)
    (dict(), (4, 5), (4, 5)),
    (dict(p=1.0, keepdim=True), (4, 5), (5,)),
    (dict(p=3.0, eps=1e-3), (2, 3, 5), (3, 5)),
    (dict(p=float("inf")), (4, 5), (4, 5)),
    (dict(p=0.5, keepdim=True), (5,), (5,)),
]


@pytest.mark.parametrize("options, shape1, shape2", PAIRWISE)
def test_pairwise_distance_matches_torch(dtype, options, shape1, shape2):
    check_layer(torch.nn.PairwiseDistance(**options), fl.PairwiseDistance(**options),
                [randn(*shape1, seed=1), randn(*shape2, seed=2)], dtype=dtype)


COSINE = [  # (constructor kwargs, x1 shape, x2 shape)
    (dict(), (4, 5), (4, 5)),
    (dict(dim=0), (5,), (5,)),
    (dict(dim=-1, eps=1e-3), (2, 3, 5), (3, 5)),
    (dict(dim=1), (2, 4, 3, 3), (2, 4, 1, 3)),
]


@pytest.mark.parametrize("options, shape1, shape2", COSINE)
def test_cosine_similarity_matches_torch(dtype, options, shape1, shape2):
    check_layer(torch.nn.CosineSimilarity(**options), fl.CosineSimilarity(**options),
                [randn(*shape1, seed=3), randn(*shape2, seed=4)], dtype=dtype)


def test_small_norms_and_zero_vectors_match_torch_gradients(x64):
    """Norms below eps are clamped in value but differentiated as the plain norm (torch's in-place
    clamp outside autograd); a zero vector's gradient follows torch's too; pairwise distance of 0-d inputs."""
    x1 = np.array([[1e-9, 2e-9, 0.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    x2 = np.array([[3.0, -1.0, 2.0], [2.0, -1.0, 0.5], [1.0, 1.0, 1.0]])
    t1, t2 = (torch.tensor(a, requires_grad=True) for a in (x1, x2))
    expected = torch.nn.functional.cosine_similarity(t1, t2, eps=1e-8)
    expected.sum().backward()
    got, grads = jax.value_and_grad(lambda a, b: jnp.sum(F.cosine_similarity(a, b, eps=1e-8)), (0, 1))(
        jnp.asarray(x1), jnp.asarray(x2))
    tol = tolerance(np.float64)
    assert_close(got, expected.sum().detach().numpy(), "cosine_similarity", **tol)
    assert_close(grads[0], t1.grad.numpy(), "grad x1", **tol)
    assert_close(grads[1], t2.grad.numpy(), "grad x2", **tol)
    for p in (2.0, 0.0):
        assert_close(F.pairwise_distance(jnp.asarray(1.5), jnp.asarray(0.5), p=p),
                     torch.nn.functional.pairwise_distance(torch.tensor(1.5, dtype=torch.float64),
                                                          torch.tensor(0.5, dtype=torch.float64), p=p).numpy(),
                     f"0-d p={p}", **tol)


def test_jit_vmap_jvp_and_errors():
    x1, x2 = jnp.asarray(randn(3, 4, 5, seed=5)), jnp.asarray(randn(3, 4, 5, seed=6))
    per_row = jax.vmap(lambda a, b: F.cosine_similarity(a, b, dim=0))(x1, x2)
    np.testing.assert_allclose(per_row, F.cosine_similarity(x1, x2, dim=1), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(F.pairwise_distance)(x1, x2), F.pairwise_distance(x1, x2), rtol=1e-6)
    primal, tangent = jax.jvp(lambda a: F.cosine_similarity(a, x2), (x1,), (jnp.ones_like(x1),))
    assert primal.shape == tangent.shape == (3, 5)
    np.testing.assert_allclose(jax.jacfwd(lambda a: F.pairwise_distance(a, x2[0, 0]))(x1[0]),
                               jax.jacrev(lambda a: F.pairwise_distance(a, x2[0, 0]))(x1[0]), rtol=1e-5, atol=1e-7)

    def loss(a, b):
        return jnp.sum(F.cosine_similarity(a, b, dim=0) ** 2)

    per_example = jax.vmap(jax.grad(loss))(x1, x2)  # vmap of the gradient equals a loop
    looped = jnp.stack([jax.grad(loss)(a, b) for a, b in zip(x1, x2)])
    np.testing.assert_allclose(per_example, looped, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="do not broadcast"):
        F.pairwise_distance(jnp.ones((3, 4)), jnp.ones((2, 4)))
    with pytest.raises(ValueError, match=r"PairwiseDistance\(p=2.0.*x1 of shape \(3, 4\) and x2 of shape \(2, 4\)"):
        fl.PairwiseDistance().apply({}, {}, jnp.ones((3, 4)), jnp.ones((2, 4)))
    with pytest.raises(IndexError, match=r"CosineSimilarity\(dim=2.*Dimension out of range"):
        fl.CosineSimilarity(dim=2).apply({}, {}, jnp.ones((3, 4)), jnp.ones((3, 4)))
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.cosine_similarity(jnp.ones((3, 4)), jnp.ones((3, 4)), dim=2)
    assert F.cosine_similarity(jnp.ones((2, 3), jnp.int32), jnp.ones((2, 3), jnp.int32)).dtype == jnp.float32
