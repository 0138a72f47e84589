"""Sparse and pixel-shuffle workloads (issue 16): forward + backward on CPU.

Embedding(30000, 256) on int (32, 128) and EmbeddingBag(100000, 64, mode="mean") on int (512, 40):
the gradient w.r.t. the weight (a dense (num_embeddings, dim) array in every framework: torch's
default sparse=False). PixelShuffle(2) on (16, 256, 32, 32): the gradient w.r.t. the input. Every
framework backpropagates the same random cotangent; the JAX steps return the outputs with the
gradient (harness.outputs_and_vjp), so XLA cannot drop the forward pass, which torch runs.
Flax (nn.Embed) and Equinox (eqx.nn.Embedding) have an embedding layer; neither has a bag or a
pixel shuffle.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload, jax_step, outputs_and_vjp, to_torch, torch_input_grad_step, torch_step

EMBEDDING = (30000, 256, (32, 128))  # num_embeddings, embedding_dim, index shape
BAG = (100000, 64, (512, 40))
SHUFFLE = (2, (16, 256, 32, 32))


def _indices(num, shape):
    return np.random.default_rng(0).integers(0, num, shape).astype(np.int64)


def _cotangent(shape):
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


def _lookup_fl(bag):
    def build():
        import jax
        import jax.numpy as jnp

        import funclayers as fl

        num, dim, shape = BAG if bag else EMBEDDING
        layer = fl.EmbeddingBag(num, dim, mode="mean") if bag else fl.Embedding(num, dim)
        params, state = layer.init(jax.random.PRNGKey(0))
        idx = jnp.asarray(_indices(num, shape), jnp.int32)
        ct = jnp.asarray(_cotangent((shape[0], dim) if bag else shape + (dim,)))

        @jax.jit
        def step(params, idx, ct):
            return outputs_and_vjp(lambda p: layer.apply(p, state, idx)[0], (params,), ct)

        return jax_step(step, params, idx, ct)

    return build


def _lookup_torch(bag):
    def build():
        import torch

        num, dim, shape = BAG if bag else EMBEDDING
        module = torch.nn.EmbeddingBag(num, dim, mode="mean") if bag else torch.nn.Embedding(num, dim)
        module = module.to(to_torch(np.zeros(1)).device)
        idx = to_torch(_indices(num, shape))
        ct = to_torch(_cotangent((shape[0], dim) if bag else shape + (dim,)))

        def step():
            module.weight.grad = None
            module(idx).backward(ct)

        return torch_step(step)

    return build


def _embedding_flax():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    num, dim, shape = EMBEDDING
    module = nn.Embed(num, dim)
    idx = jnp.asarray(_indices(num, shape), jnp.int32)
    ct = jnp.asarray(_cotangent(shape + (dim,)))
    params = module.init(jax.random.PRNGKey(0), idx)

    @jax.jit
    def step(params, idx, ct):
        return outputs_and_vjp(lambda p: module.apply(p, idx), (params,), ct)

    return jax_step(step, params, idx, ct)


def _embedding_equinox():
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    num, dim, shape = EMBEDDING
    model = eqx.nn.Embedding(num, dim, key=jax.random.PRNGKey(0))
    idx = jnp.asarray(_indices(num, shape), jnp.int32)
    ct = jnp.asarray(_cotangent(shape + (dim,)))

    @jax.jit
    def step(model, idx, ct):
        # eqx.nn.Embedding looks up one index: vmapped over both index axes
        return outputs_and_vjp(lambda m: jax.vmap(jax.vmap(m))(idx), (model,), ct)

    return jax_step(step, model, idx, ct)


def _shuffle_fl():
    import jax
    import jax.numpy as jnp

    import funclayers as fl

    factor, shape = SHUFFLE
    layer = fl.PixelShuffle(factor)
    out_shape = shape[:1] + (shape[1] // factor**2, shape[2] * factor, shape[3] * factor)
    x, ct = jnp.asarray(_cotangent(shape)), jnp.asarray(_cotangent(out_shape))

    @jax.jit
    def step(x, ct):
        return outputs_and_vjp(lambda x: layer.apply({}, {}, x)[0], (x,), ct)

    return jax_step(step, x, ct)


def _shuffle_torch():
    import torch

    factor, shape = SHUFFLE
    out_shape = shape[:1] + (shape[1] // factor**2, shape[2] * factor, shape[3] * factor)
    return torch_input_grad_step(torch.nn.PixelShuffle(factor), _cotangent(shape), _cotangent(out_shape))


WORKLOADS = [
    Workload("embedding 30000x256 (32,128)",
             {"funclayers": _lookup_fl(False), "torch": _lookup_torch(False), "flax": _embedding_flax,
              "equinox": _embedding_equinox}),
    Workload("embedding_bag 100000x64 mean (512,40)", {"funclayers": _lookup_fl(True), "torch": _lookup_torch(True)}),
    Workload("pixel_shuffle 2 (16,256,32,32)", {"funclayers": _shuffle_fl, "torch": _shuffle_torch}),
]
