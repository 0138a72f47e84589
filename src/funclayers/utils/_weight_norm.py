"""Weight normalization, the old hook API (torch/nn/utils/weight_norm.py): `weight_g`, `weight_v`.

`weight_norm(layer)` wraps any layer with a parameter `weight`: its params hold `weight_g` (the
norm, torch's `norm_except_dim(weight, 2, dim)`) and `weight_v` (the direction) where the layer
had `weight`, and apply computes `weight = weight_v * (weight_g / ||weight_v||)` before calling the
layer. `parametrizations.weight_norm` is the newer API (the one torch recommends).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._layer import Layer
from ._common import call_init, check_layer, tensor_location, without

__all__ = ["weight_norm", "remove_weight_norm"]


def norm_except_dim(v: jax.Array, pow: float = 2, dim: int = 0) -> jax.Array:
    """torch.norm_except_dim: the p-norm over every axis but `dim`, kept as size-1 axes.

    `dim=-1` means the norm of the whole array (a 0-d result), as in torch, not the last axis.
    """
    if dim == -1:
        return jnp.linalg.vector_norm(jnp.ravel(v), ord=pow)
    axis = dim % v.ndim
    axes = tuple(a for a in range(v.ndim) if a != axis)
    return jnp.linalg.vector_norm(v, ord=pow, axis=axes, keepdims=True)


def _weight_norm(v: jax.Array, g: jax.Array, dim: int) -> jax.Array:
    """torch._weight_norm(v, g, dim): v * (g / norm_except_dim(v, 2, dim))."""
    return v * (g / norm_except_dim(v, 2, dim))


def _check_dim(who: str, dim: Any, ndim: int) -> int:
    if dim is None:
        return -1
    if not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise ValueError(f"{who}: dim must be an int in [{-ndim}, {ndim - 1}] or None, got {dim!r}.")
    return dim


def weight_norm(module: Layer, name: str = "weight", dim: int | None = 0) -> Layer:
    """A layer with weight normalization on `name`, the hook API; torch.nn.utils.weight_norm.

    The layer's parameter `name` becomes two: `name + "_g"` (the magnitude,
    `norm_except_dim(weight, 2, dim)`) and `name + "_v"` (the direction, initially the weight),
    appended after the layer's other params as torch registers them; apply recomputes
    `weight = v * (g / norm_except_dim(v, 2, dim))` on every call, differentiably.

    Args:
      module: any funclayers layer with a parameter `name`.
      name: the parameter's name (default "weight").
      dim: the axis kept by the norm (default 0: one norm per output channel); None (or -1, as
        in torch) normalises the whole tensor with one scalar.

    Returns: the wrapped layer; `remove_weight_norm` undoes it.

    Shape: as the wrapped layer; params `weight_g`: the weight's shape with 1 on every axis but
      `dim` (`()` for dim None), `weight_v`: the weight's shape.

    Example:
      >>> layer = fl.utils.weight_norm(fl.Linear(20, 40))
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> list(params), params["weight_g"].shape, params["weight_v"].shape
      (['bias', 'weight_g', 'weight_v'], (40, 1), (40, 20))
      >>> layer.apply(params, state, jnp.ones((3, 20)))[0].shape
      (3, 40)
    """
    who = "weight_norm"
    check_layer(who, module)
    if getattr(module.apply, "_fl_weight_norm", None) and module.apply._fl_weight_norm[1] == name:
        raise ValueError(f"{who}: Cannot register two weight_norm hooks on the same parameter {name}")
    tensor_location(who, module, name, allow_buffers=False)
    from .._interop import _init_shapes

    ndim = len(_init_shapes(module)[0][name].shape)
    dim = _check_dim(who, dim, max(ndim, 1))
    g_name, v_name = name + "_g", name + "_v"

    def init(rng, *example_inputs):
        params, state = call_init(module, rng, example_inputs)
        weight = params.pop(name)
        params[g_name] = norm_except_dim(weight, 2, dim)
        params[v_name] = weight
        return params, state

    def apply(params, state, *inputs, **kwargs):
        inner = without(params, g_name, v_name)
        inner[name] = _weight_norm(params[v_name], params[g_name], dim)
        return module.apply(inner, state, *inputs, **kwargs)

    apply._fl_weight_norm = (module, name, dim)
    return Layer(init, apply, module.name, module.children)


def remove_weight_norm(module: Layer, name: str = "weight") -> tuple[Layer, Any]:
    """The layer without weight normalization, and its params' converter; torch.nn.utils.remove_weight_norm.

    torch recomputes `weight` from `weight_g` and `weight_v` once and makes it a plain
    parameter again, in place. The pure form returns the unwrapped layer and a function
    `convert(params, state) -> (params, state)` that does the same to params: `weight_g` and
    `weight_v` removed, `weight` (computed from them) appended last, as torch re-registers it.

    Args:
      module: a layer returned by `weight_norm`.
      name: the parameter name given to `weight_norm` (default "weight").

    Returns: `(layer, convert)`.

    Shape: `convert` maps params with `weight_g`, `weight_v` to params with `weight` (the
      weight's shape); state passes through.

    Example:
      >>> wn = fl.utils.weight_norm(fl.Linear(4, 2))
      >>> params, state = wn.init(jax.random.PRNGKey(0))
      >>> layer, convert = fl.utils.remove_weight_norm(wn)
      >>> plain_params, state = convert(params, state)
      >>> list(plain_params)
      ['bias', 'weight']
      >>> bool(jnp.allclose(layer.apply(plain_params, state, jnp.ones(4))[0],
      ...                   wn.apply(params, state, jnp.ones(4))[0]))
      True
    """
    check_layer("remove_weight_norm", module)
    info = getattr(module.apply, "_fl_weight_norm", None)
    if info is None or info[1] != name:
        raise ValueError(f"remove_weight_norm: weight_norm of '{name}' not found in {module.name}")
    inner, _, dim = info
    g_name, v_name = name + "_g", name + "_v"

    def convert(params, state):
        weight = _weight_norm(params[v_name], params[g_name], dim)
        out = without(params, g_name, v_name)
        out[name] = weight
        return out, state

    return inner, convert
