"""Helpers shared by the weight wrappers: finding a layer's tensor, and renaming dict entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

from .._layer import Layer


def check_layer(who: str, layer: Any) -> Layer:
    if not isinstance(layer, Layer):
        raise TypeError(f"{who} expects a funclayers Layer (e.g. fl.Linear(20, 40)), got {type(layer).__name__}.")
    return layer


def call_init(layer: Layer, rng: jax.Array, example_inputs: tuple) -> tuple[dict, dict]:
    """`layer.init(rng, *example_inputs)`, passing example inputs only when there are some."""
    params, state = layer.init(rng, *example_inputs) if example_inputs else layer.init(rng)
    return dict(params), dict(state)


def init_shapes(layer: Layer) -> tuple[dict, dict]:
    """The layer's params and state as shapes (jax.eval_shape: nothing computed)."""
    from .._interop import _init_shapes

    return _init_shapes(layer)


def tensor_location(who: str, layer: Layer, name: str, allow_buffers: bool = True) -> str:
    """'params' or 'state': where `layer` keeps its tensor `name`, or a ValueError in torch's words."""
    params, state = init_shapes(layer)
    if name in params and not isinstance(params[name], Mapping):
        return "params"
    if allow_buffers and name in state and not isinstance(state[name], Mapping):
        return "state"
    kinds = "a parameter or a buffer" if allow_buffers else "a parameter"
    raise ValueError(f"{who}: Module '{layer.name}' does not have {kinds} with name '{name}' "
                     f"(its parameters: {sorted(k for k, v in params.items() if not isinstance(v, Mapping))}).")


def without(tree: Mapping, *names: str) -> dict:
    return {k: v for k, v in tree.items() if k not in names}
