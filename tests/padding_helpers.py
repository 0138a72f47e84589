"""Helpers shared by test_padding.py and test_fold.py."""

import jax
import jax.numpy as jnp
import numpy as np
import torch

import funclayers as fl


class TorchFn(torch.nn.Module):
    """A torch.nn.functional op with bound arguments as a module, so the oracle can drive it."""

    def __init__(self, fn, *args):
        super().__init__()
        self.fn, self.args = fn, args

    def forward(self, x):
        return self.fn(x, *self.args)


def fn_layer(fn, *args) -> fl.Layer:
    """The funclayers twin of TorchFn: a stateless layer applying `fn(x, *args)`."""
    return fl.Layer(fl._layer.no_params, lambda params, state, x, **kw: (fn(x, *args), state), fn.__name__)


def jit_grad_vmap(layer: fl.Layer, x: np.ndarray) -> None:
    """oracle.check_jit_grad_vmap for one-output layers (its gradient filter calls np.asarray on a
    tracer, which fails inside jax.grad)."""
    params, state = layer.init(jax.random.PRNGKey(0))
    f = lambda x: layer.apply(params, state, x)[0]  # noqa: E731
    eager = f(jnp.asarray(x))
    np.testing.assert_allclose(jax.jit(f)(jnp.asarray(x)), eager, rtol=1e-6)
    grad = jax.grad(lambda x: jnp.sum(f(x) ** 2))(jnp.asarray(x))
    assert grad.shape == x.shape and bool(jnp.all(jnp.isfinite(grad))) and bool(jnp.any(grad != 0))
    batched = jax.vmap(f)(jnp.stack([jnp.asarray(x), 2 * jnp.asarray(x)]))
    np.testing.assert_allclose(batched[0], eager, rtol=1e-6)
    np.testing.assert_allclose(batched[1], f(2 * jnp.asarray(x)), rtol=1e-6)
