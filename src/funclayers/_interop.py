"""torch interop: flat `state_dict`s out of params/state, and into them, with torch's errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._layer import Layer
from ._utils import TorchRuntimeError


class StateDictError(TorchRuntimeError):
    """A state_dict that does not fit the layer; torch's `load_state_dict` RuntimeError.

    torch raises RuntimeError; this is one, and also a ValueError. `fl.load_state_dict` raises it
    with torch's message: the missing keys, the unexpected keys and every size mismatch.

    Args:
      *args: the message, as any exception's.

    Example:
      >>> sd = {"weight": np.ones((2, 3), np.float32), "scale": np.ones(1, np.float32)}
      >>> try:
      ...     fl.load_state_dict(fl.Linear(4, 2), sd)
      ... except fl.StateDictError as err:
      ...     print(err)
      Error(s) in loading state_dict for Linear:
        Missing key(s) in state_dict: "bias".
        Unexpected key(s) in state_dict: "scale".
        size mismatch for weight: copying a param with shape (2, 3) from checkpoint, the shape in current model
        is (2, 4).
      >>> issubclass(fl.StateDictError, RuntimeError) and issubclass(fl.StateDictError, ValueError)
      True
    """


def _leaves(params: Any, state: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(torch name, array) in torch's order: a module's parameters, its buffers, then its children."""
    params = params if params is not None else {}
    state = state if state is not None else {}
    if not isinstance(params, Mapping) or not isinstance(state, Mapping):
        # A bare fl.Parameter / fl.Buffer child: the leaf itself carries the name.
        for leaf in (params, state):
            if not isinstance(leaf, Mapping):
                yield prefix.rstrip("."), leaf
        return
    for tree in (params, state):
        for key, value in tree.items():
            if not isinstance(value, Mapping) and value is not None:
                yield prefix + str(key), value
    child_keys = [k for k, v in params.items() if isinstance(v, Mapping)]
    child_keys += [k for k, v in state.items() if isinstance(v, Mapping) and k not in child_keys]
    for key in child_keys:
        yield from _leaves(params.get(key, {}), state.get(key, {}), f"{prefix}{key}.")


def state_dict(params: Any, state: Any = None) -> dict[str, np.ndarray]:
    """torch's flat `state_dict` of a layer: parameters and persistent buffers by dotted name.

    The order is torch's: each module's parameters, then its buffers, then its children's.

    Args:
      params: the layer's params (nested dicts, as `layer.init` returns them).
      state: the layer's state (its buffers); default None, no buffers.

    Shape: each entry is a writable numpy copy of its array, with that array's shape and dtype.

    Example:
      >>> params, state = fl.Sequential(fl.Linear(4, 2), fl.BatchNorm1d(2)).init(jax.random.PRNGKey(0))
      >>> sd = fl.state_dict(params, state)
      >>> sorted(sd)
      ['0.bias', '0.weight', '1.bias', '1.num_batches_tracked', '1.running_mean', '1.running_var', '1.weight']
      >>> # torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    """
    # writable copies: torch.from_numpy warns on the read-only views np.asarray gives of jax arrays
    return {name: np.array(value) for name, value in _leaves(params, state)}


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    return np.asarray(value)


def _shapes(tree: Any) -> Any:
    """ShapeDtypeStructs of a nested dict, keeping its key order (jax's tree.map sorts keys)."""
    if isinstance(tree, Mapping):
        return {k: _shapes(v) for k, v in tree.items()}
    return jax.ShapeDtypeStruct(tree.shape, tree.dtype)


def _init_shapes(layer: Layer, example_inputs: tuple = ()) -> tuple[Any, Any]:
    """The layer's params and state as shapes, in torch's registration order, without computing."""
    captured = []

    def init(rng):
        params, state = layer.init(rng, *example_inputs)
        captured.append((_shapes(params), _shapes(state)))
        return params, state

    jax.eval_shape(init, jax.random.PRNGKey(0))
    return captured[0]


def load_state_dict(layer: Layer, state_dict: Mapping[str, Any], strict: bool = True,
                    *, dtype: Any = None, example_inputs: tuple = ()) -> tuple[Any, Any]:
    """Params and state for `layer` from a torch `state_dict` (any mapping of names to arrays).

    Args:
      layer: the funclayers layer the names refer to.
      state_dict: names to numpy arrays, jax arrays or torch tensors.
      strict: as in torch: raise on missing keys, unexpected keys and shape mismatches. With
        `strict=False` missing entries keep the layer's initial values and extra keys are ignored. Default: True.
      dtype: floating entries are cast to the layer's own parameter dtypes (torch's copy
        semantics); pass `dtype=jnp.float64` to keep a float64 checkpoint's precision. Default: None.
      example_inputs: keyword only: the example inputs `layer.init(rng, *example_inputs)` sizes
        lazy layers from (arrays or `jax.ShapeDtypeStruct`s). Default: none.

    Returns: `(params, state)`.

    Shape: each entry must have the shape of the layer's own param or buffer of that name
      (torch's shapes); the returned arrays have those shapes.

    Raises:
      StateDictError (a RuntimeError and ValueError): listing missing and unexpected keys and
        size mismatches, in torch's words.

    Example:
      >>> model = fl.Sequential(fl.Linear(4, 2))
      >>> sd = {"0.weight": np.ones((2, 4), np.float32), "0.bias": np.zeros(2, np.float32)}
      >>> params, state = fl.load_state_dict(model, sd)
      >>> params["0"]["weight"].shape
      (2, 4)
    """
    params_t, state_t = _init_shapes(layer, tuple(example_inputs))
    template = dict(_leaves(params_t, state_t))
    given = {str(k): v for k, v in state_dict.items()}
    missing = [k for k in template if k not in given]
    unexpected = [k for k in given if k not in template]
    mismatched = []
    arrays: dict[str, Any] = {}
    for name, spec in template.items():
        if name not in given:
            continue
        value = _to_numpy(given[name])
        if tuple(value.shape) != tuple(spec.shape):
            mismatched.append(f"size mismatch for {name}: copying a param with shape {tuple(value.shape)} from "
                              f"checkpoint, the shape in current model is {tuple(spec.shape)}.")
            continue
        target = spec.dtype
        if dtype is not None and jnp.issubdtype(spec.dtype, jnp.inexact):
            target = jnp.dtype(dtype)
        # a copy: on CPU jnp.asarray may alias the numpy view of a torch tensor, whose in-place
        # buffer updates (BatchNorm in training) would then leak into our state
        arrays[name] = jnp.array(value, dtype=target, copy=True)
    errors = []
    if strict and missing:
        errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
    if strict and unexpected:
        errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
    errors += mismatched
    if errors:
        raise StateDictError(f"Error(s) in loading state_dict for {layer.name.split('(')[0]}:\n\t"
                             + "\n\t".join(errors))
    if missing:  # strict=False: keep the layer's own initial values
        init_params, init_state = layer.init(jax.random.PRNGKey(0), *example_inputs)
        for name, value in _leaves(init_params, init_state):
            arrays.setdefault(name, value if dtype is None or not jnp.issubdtype(value.dtype, jnp.inexact)
                              else value.astype(dtype))
    return _fill(params_t, arrays, ""), _fill(state_t, arrays, "")


def _fill(tree: Any, arrays: dict[str, Any], prefix: str) -> Any:
    if isinstance(tree, Mapping):
        return {k: _fill(v, arrays, f"{prefix}{k}.") for k, v in tree.items()}
    return arrays[prefix.rstrip(".")]


__all__ = ["state_dict", "load_state_dict", "StateDictError"]
