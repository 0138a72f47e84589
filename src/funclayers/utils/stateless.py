"""Applying a layer with some params and buffers replaced (torch/nn/utils/stateless.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._layer import Layer
from ._common import check_layer, init_shapes

__all__ = ["functional_call"]


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts (or already flat dotted names) as {dotted name: leaf}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _fill(template: Any, values: dict[str, Any], prefix: str = "") -> Any:
    if isinstance(template, Mapping):
        return {k: _fill(v, values, f"{prefix}{k}.") for k, v in template.items()}
    return values[prefix.rstrip(".")]


def functional_call(module: Layer, parameters_and_buffers: Any, args: Any = None, kwargs: dict | None = None, *,
                    tie_weights: bool = True, strict: bool = False, base: tuple[Any, Any] | None = None,
                    return_state: bool = False) -> Any:
    """The layer applied with the given params and buffers; torch.nn.utils.stateless.functional_call.

    `parameters_and_buffers` names tensors as torch does: flat dotted names
    (`{"0.weight": w}`), nested dicts as `init` returns them, or a tuple of such dicts (merged,
    as torch merges a tuple of dicts). Every name the layer has but the dicts do not is taken
    from `base=(params, state)`; names the layer does not have are ignored unless `strict=True`, as in
    torch. To replace one parameter:
    `functional_call(layer, {"0.weight": w}, x, base=(params, state))`.

    Args:
      module: a funclayers layer.
      parameters_and_buffers: a dict (flat or nested) or a tuple of dicts of replacement arrays.
      args: the positional inputs (one value, or a tuple of them). Default: None (no inputs).
      kwargs: keyword arguments of `apply` (torch's forward kwargs, and `training`, `rng`).
        Default: None.
      tie_weights: accepted for torch's signature: funclayers params have no tied entries (a
        shared layer is one entry used twice), so there is nothing to tie. Default: True.
      strict: if True, every parameter and buffer must be given, and no unknown name (as torch).
        Default: False.
      base: `(params, state)` for the names not given; without it every name must be given.
        Default: None.
      return_state: also return the new state (training-mode buffer updates). Default: False
        (torch's return value, the output alone).

    Returns: the layer's output, or `(output, new_state)` with `return_state=True`.

    Shape: as `module.apply`.

    Example:
      >>> layer = fl.Linear(2, 1)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> y = fl.utils.stateless.functional_call(layer, {"weight": jnp.ones((1, 2)), "bias": jnp.zeros(1)},
      ...                                        (jnp.array([1.0, 2.0]),))
      >>> y
      Array([3.], dtype=float32)
    """
    who = "functional_call"
    check_layer(who, module)
    del tie_weights
    dicts = parameters_and_buffers if isinstance(parameters_and_buffers, tuple) else (parameters_and_buffers,)
    given: dict[str, Any] = {}
    for d in dicts:
        if not isinstance(d, Mapping):
            raise TypeError(f"{who} expects a dict of names to arrays or a tuple of dicts, got {type(d).__name__}.")
        for name, value in _flat(d).items():
            if name in given:
                raise ValueError(f"{who}: {name} appeared in multiple dictionaries; behavior of functional call is "
                                 f"ambiguous")
            given[name] = value
    params_t, state_t = init_shapes(module)
    names = set(_flat(params_t)) | set(_flat(state_t))
    unexpected = sorted(set(given) - names)
    missing = sorted(names - set(given))
    if strict and (missing or unexpected):
        raise ValueError(f"{who}: Error(s) in reparametrizing for {module.name.split('(')[0]}: Missing key(s): "
                         f"{missing}. Unexpected key(s): {unexpected}.")
    if missing:
        if base is None:
            raise ValueError(f"{who}: no value for {missing}; give them, or pass base=(params, state).")
        base_values = {**_flat(base[0] or {}), **_flat(base[1] or {})}
        given = {**{k: base_values[k] for k in missing}, **given}
    params, state = _fill(params_t, given), _fill(state_t, given)
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    out, new_state = module.apply(params, state, *args, **(kwargs or {}))
    return (out, new_state) if return_state else out
