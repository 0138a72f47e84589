"""Spectral normalization, the old hook API (torch/nn/utils/spectral_norm.py).

`spectral_norm(layer)` keeps the raw weight as the parameter `weight_orig` and two buffers
`weight_u`, `weight_v` (the power iteration's singular-vector estimates). In training mode apply
runs `n_power_iterations` steps of the power method and returns the new `weight_u`/`weight_v` in
the new state; in eval mode it uses the stored ones exactly. The weight used is
`weight_orig / sigma` with `sigma = u . (W v)` (W the weight as a matrix, `dim` first).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._layer import Layer
from ._common import call_init, check_layer, init_shapes, tensor_location, without

__all__ = ["spectral_norm", "remove_spectral_norm"]


def normalize(x: jax.Array, eps: float) -> jax.Array:
    """torch.nn.functional.normalize(x, dim=0, eps=eps) of a vector: x / max(||x||, eps)."""
    return x / jnp.maximum(jnp.linalg.vector_norm(x), eps)


def weight_matrix(weight: jax.Array, dim: int) -> jax.Array:
    """The weight as a matrix with axis `dim` first (torch's reshape_weight_to_matrix)."""
    if dim != 0:
        weight = jnp.moveaxis(weight, dim, 0)
    return weight.reshape(weight.shape[0], -1)


def default_dim(layer: Layer) -> int:
    """torch's default: 1 for ConvTranspose (its weight is (in, out, ...)), 0 otherwise."""
    kind = layer.name.split("(")[0].removeprefix("Parametrized")
    return 1 if kind.startswith("ConvTranspose") else 0


def check_power_iterations(who: str, n_power_iterations: Any) -> int:
    if not isinstance(n_power_iterations, int) or n_power_iterations <= 0:
        raise ValueError(f"{who}: Expected n_power_iterations to be positive, but got "
                         f"n_power_iterations={n_power_iterations}")
    return n_power_iterations


def check_dim(who: str, dim: Any, ndim: int) -> int:
    if not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise ValueError(f"{who}: Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}] but "
                         f"got {dim})")
    return dim % ndim


def spectral_norm(module: Layer, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Layer:
    """A layer whose weight is divided by its spectral norm, the hook API; torch.nn.utils.spectral_norm.

    The parameter `name` becomes `name + "_orig"` (appended after the layer's other params) and
    two buffers are added, `name + "_u"` and `name + "_v"` (random unit vectors at init, as
    torch's). apply computes `weight = weight_orig / sigma`, `sigma = u . (W v)`; in training mode
    it first runs `n_power_iterations` power-method steps (`v = normalize(W^T u)`, then
    `u = normalize(W v)`, without gradient as in torch) and returns the new `u`, `v` in the new
    state. In eval mode the stored `u`, `v` are used unchanged.

    Args:
      module: any funclayers layer with a parameter `name`.
      name: the parameter's name (default "weight").
      n_power_iterations: power-method steps per training-mode call (default 1).
      eps: the epsilon of the vectors' normalisation (default 1e-12).
      dim: the axis of the output channels (default None: 1 for ConvTranspose layers, else 0).

    Returns: the wrapped layer; `remove_spectral_norm` undoes it.

    Shape: as the wrapped layer; state `weight_u`: `(weight.shape[dim],)`, `weight_v`: the
      product of the other axes.

    Example:
      >>> layer = fl.utils.spectral_norm(fl.Linear(20, 40))
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> list(params), {k: v.shape for k, v in state.items()}
      (['bias', 'weight_orig'], {'weight_u': (40,), 'weight_v': (20,)})
      >>> y, state = layer.apply(params, state, jnp.ones((3, 20)), training=True)  # updates u, v
      >>> y.shape
      (3, 40)
    """
    who = "spectral_norm"
    check_layer(who, module)
    check_power_iterations(who, n_power_iterations)
    if getattr(module.apply, "_fl_spectral_norm", None) and module.apply._fl_spectral_norm[1] == name:
        raise ValueError(f"{who}: Cannot register two spectral_norm hooks on the same parameter {name}")
    tensor_location(who, module, name, allow_buffers=False)
    ndim = len(init_shapes(module)[0][name].shape)
    dim = check_dim(who, default_dim(module) if dim is None else dim, max(ndim, 1))
    orig, u_name, v_name = name + "_orig", name + "_u", name + "_v"

    def init(rng, *example_inputs):
        key_layer, key_u, key_v = jax.random.split(rng, 3)
        params, state = call_init(module, key_layer, example_inputs)
        weight = params.pop(name)
        h, w = weight_matrix(weight, dim).shape
        params[orig] = weight
        state[u_name] = normalize(jax.random.normal(key_u, (h,), weight.dtype), eps)
        state[v_name] = normalize(jax.random.normal(key_v, (w,), weight.dtype), eps)
        return params, state

    def compute_weight(params, state, do_power_iteration):
        weight = params[orig]
        u, v = state[u_name], state[v_name]
        weight_mat = weight_matrix(weight, dim)
        if do_power_iteration:
            stopped = jax.lax.stop_gradient(weight_mat)
            for _ in range(n_power_iterations):  # torch: v first, then u (the new API: u first)
                v = normalize(stopped.T @ u, eps)
                u = normalize(stopped @ v, eps)
        u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)  # buffers: no gradient, as torch's
        sigma = jnp.dot(u, weight_mat @ v)
        return weight / sigma, u, v

    def apply(params, state, *inputs, rng=None, training=False, **kwargs):
        weight, u, v = compute_weight(params, state, training)
        inner_state = without(state, u_name, v_name)
        inner_params = without(params, orig)
        inner_params[name] = weight
        out, new_inner = module.apply(inner_params, inner_state, *inputs, rng=rng, training=training, **kwargs)
        new_state = dict(new_inner)
        new_state[u_name], new_state[v_name] = u.astype(state[u_name].dtype), v.astype(state[v_name].dtype)
        return out, {k: new_state[k] for k in state}

    apply._fl_spectral_norm = (module, name, compute_weight)
    return Layer(init, apply, module.name, module.children)


def remove_spectral_norm(module: Layer, name: str = "weight") -> tuple[Layer, Any]:
    """The layer without spectral normalization, and its params' converter; torch.nn.utils.remove_spectral_norm.

    torch computes `weight = weight_orig / sigma` once from the stored `u`, `v` (no power
    iteration) and makes it a plain parameter again, in place. The pure form returns the
    unwrapped layer and `convert(params, state) -> (params, state)`: `weight_orig`, `weight_u`,
    `weight_v` removed and `weight` appended last.

    Args:
      module: a layer returned by `spectral_norm`.
      name: the parameter name given to `spectral_norm` (default "weight").

    Returns: `(layer, convert)`.

    Shape: `convert` maps (params with `weight_orig`, state with `weight_u`, `weight_v`) to
      (params with `weight`, of `weight_orig`'s shape, state without the vectors).

    Example:
      >>> sn = fl.utils.spectral_norm(fl.Linear(4, 2))
      >>> params, state = sn.init(jax.random.PRNGKey(0))
      >>> layer, convert = fl.utils.remove_spectral_norm(sn)
      >>> plain_params, plain_state = convert(params, state)
      >>> list(plain_params), plain_state
      (['bias', 'weight'], {})
    """
    check_layer("remove_spectral_norm", module)
    info = getattr(module.apply, "_fl_spectral_norm", None)
    if info is None or info[1] != name:
        raise ValueError(f"remove_spectral_norm: spectral_norm of '{name}' not found in {module.name}")
    inner, _, compute_weight = info

    def convert(params, state):
        weight, _, _ = compute_weight(params, state, False)
        out = without(params, name + "_orig")
        out[name] = weight
        return out, without(state, name + "_u", name + "_v")

    return inner, convert
