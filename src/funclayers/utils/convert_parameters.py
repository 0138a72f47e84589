"""Params pytree to one vector and back (torch/nn/utils/convert_parameters.py), in torch's order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _ordered(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(path, leaf) in torch's `parameters()` / `state_dict` order.

    At each level a module's own tensors come first, then its children's, each in insertion
    order (our dicts keep torch's registration order); jax.tree_util would sort the keys instead.
    Lists and tuples count as children in their order; None leaves are skipped.
    """
    if isinstance(tree, Mapping):
        items = list(tree.items())
    elif isinstance(tree, (list, tuple)):
        items = list(enumerate(tree))
    else:
        return [] if tree is None else [(prefix.rstrip("."), tree)]
    out = [(f"{prefix}{k}", v) for k, v in items
           if not isinstance(v, (Mapping, list, tuple)) and v is not None]
    for k, v in items:
        if isinstance(v, (Mapping, list, tuple)):
            out += _ordered(v, f"{prefix}{k}.")
    return out


def _rebuild(tree: Any, values: dict[str, Any], prefix: str = "") -> Any:
    if isinstance(tree, Mapping):
        return {k: _rebuild(v, values, f"{prefix}{k}.") for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_rebuild(v, values, f"{prefix}{i}.") for i, v in enumerate(tree))
    return None if tree is None else values[prefix.rstrip(".")]


def parameters_to_vector(parameters: Any) -> jax.Array:
    """Every parameter flattened and concatenated into one vector; torch.nn.utils.parameters_to_vector.

    The order is torch's `module.parameters()` order, i.e. the `state_dict` order of the params:
    at every level a module's own parameters, then its children's, each in registration order
    (the insertion order of our nested dicts, not jax.tree_util's sorted keys).

    Args:
      parameters: a params pytree (nested dicts as `layer.init` returns them), a list of arrays,
        or one array.

    Shape: arrays of any shapes -> `(total number of elements,)`, in their promoted dtype.

    Example:
      >>> params = {"weight": jnp.ones((2, 2)), "bias": jnp.zeros(2)}
      >>> fl.utils.parameters_to_vector(params)
      Array([1., 1., 1., 1., 0., 0.], dtype=float32)
    """
    leaves = [jnp.ravel(jnp.asarray(v)) for _, v in _ordered(parameters)]
    if not leaves:
        raise ValueError("parameters_to_vector: expected at least one array, got an empty pytree.")
    return jnp.concatenate(leaves)


def vector_to_parameters(vec: Any, parameters: Any) -> Any:
    """The params pytree refilled from one vector; torch.nn.utils.vector_to_parameters.

    The inverse of `parameters_to_vector`: slices of `vec` in torch's `parameters()` order,
    reshaped to each parameter's shape and cast to its dtype. torch writes into the parameters
    in place and returns None; this returns the new pytree (same structure and key order).

    Args:
      vec: a 1-D array with as many elements as all parameters together.
      parameters: the params pytree that gives the structure, shapes and dtypes.

    Shape: vec `(N,)` -> a pytree of `parameters`' shapes, N their total size.

    Example:
      >>> params = {"weight": jnp.ones((2, 2)), "bias": jnp.zeros(2)}
      >>> new = fl.utils.vector_to_parameters(jnp.arange(6.0), params)
      >>> new["bias"]
      Array([4., 5.], dtype=float32)
    """
    if np.ndim(vec) != 1:
        raise TypeError(f"vector_to_parameters expects a 1-D vector, got an array of shape {np.shape(vec)}.")
    leaves = _ordered(parameters)
    total = sum(int(np.size(v)) for _, v in leaves)
    if np.shape(vec)[0] != total:
        raise ValueError(f"vector_to_parameters: the vector has {np.shape(vec)[0]} elements, the parameters "
                         f"{total}.")
    values, start = {}, 0
    vec = jnp.asarray(vec)
    for name, leaf in leaves:
        size = int(np.size(leaf))
        values[name] = vec[start:start + size].reshape(np.shape(leaf)).astype(jnp.result_type(leaf))
        start += size
    return _rebuild(parameters, values)
