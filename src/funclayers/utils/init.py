"""skip_init (torch/nn/utils/init.py): a layer whose init skips the initialisers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._layer import Layer

__all__ = ["skip_init"]


def skip_init(module_cls: Callable[..., Layer], *args: Any, **kwargs: Any) -> Layer:
    """The layer built by `module_cls(*args, **kwargs)`, its init giving zeros; torch.nn.utils.skip_init.

    torch builds the module on the meta device and allocates its tensors without running
    `reset_parameters`, leaving them uninitialised (to be loaded or initialised by hand). Here
    init computes the shapes with `jax.eval_shape` (no initialiser runs) and returns zeros of
    those shapes and dtypes: deterministic where torch's memory is arbitrary. `device=` is
    accepted and ignored.

    Args:
      module_cls: a funclayers constructor (`fl.Linear`, `fl.Conv2d`, ...) or any function
        returning a Layer.
      *args: its positional arguments.
      **kwargs: its keyword arguments.

    Returns: the layer, with an init that returns zeros.

    Shape: as the layer `module_cls(*args, **kwargs)`.

    Example:
      >>> layer = fl.utils.skip_init(fl.Linear, 4, 2)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> params["weight"]
      Array([[0., 0., 0., 0.],
             [0., 0., 0., 0.]], dtype=float32)
    """
    if not callable(module_cls):
        raise TypeError(f"skip_init: Expected a funclayers layer constructor (e.g. fl.Linear); got {module_cls!r}")
    kwargs.pop("device", None)
    layer = module_cls(*args, **kwargs)
    if not isinstance(layer, Layer):
        raise TypeError(f"skip_init: {getattr(module_cls, '__name__', module_cls)!r} did not return a funclayers "
                        f"Layer (got {type(layer).__name__}).")

    def init(rng, *example_inputs):
        shapes = jax.eval_shape(lambda key: layer.init(key, *example_inputs) if example_inputs else layer.init(key),
                                rng)
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    return Layer(init, layer.apply, layer.name, layer.children)
