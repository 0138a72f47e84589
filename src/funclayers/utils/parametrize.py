"""Parametrizations (torch/nn/utils/parametrize.py) over any funclayers layer, purely.

`register_parametrization(layer, "weight", p)` returns a new layer whose init moves the layer's
`weight` to `parametrizations.weight.original` (or `original0`, `original1`, ... when `p`'s
`right_inverse` returns a tuple), keeps `p`'s own params and buffers under
`parametrizations.weight.0.<name>`, and whose apply computes `weight = p(original)` and calls the
layer with it: torch's `state_dict` names, so a parametrized torch module's weights load as they are.

A parametrization is a `Parametrization` (init, apply, right_inverse), a funclayers `Layer`
(`apply(params, state, X) -> (Y, state)`), or a plain function `f(X) -> Y` (optionally with a
`right_inverse(Y) -> X` attribute).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._layer import Layer
from ._common import call_init, check_layer, tensor_location, without

__all__ = ["Parametrization", "register_parametrization", "remove_parametrizations", "is_parametrized",
           "cached", "type_before_parametrizations"]


class Parametrization(NamedTuple):
    """A parametrization as pure functions: the twin of a torch parametrization module.

    torch's parametrization is a module with `forward(X) -> Y` (or `forward(X0, X1, ...)`) and an
    optional `right_inverse(Y) -> X` used once, when it is registered, to turn the layer's tensor
    into the stored original(s). Here each is a pure function of the parametrization's own params
    and state (its torch parameters and buffers, e.g. spectral norm's `_u`, `_v`).

    Args:
      init: `init(rng, value) -> (params, state)`: its own params and buffers, given the tensor
        it is registered on (e.g. spectral norm starts its power iteration from it).
      apply: `apply(params, state, *originals, training=False) -> (Y, new_state)`.
      right_inverse: `right_inverse(params, state, value) -> (original or tuple of originals,
        new_state)`, or None for the identity (default).
      name: a torch-style description, e.g. "_SpectralNorm()" (default "Parametrization").

    Shape: `apply` takes the original(s) and returns the tensor in the layer's parameter's shape.

    Example:
      >>> symmetric = fl.utils.parametrize.Parametrization(
      ...     init=lambda rng, value: ({}, {}),
      ...     apply=lambda params, state, x, training=False: (jnp.triu(x) + jnp.triu(x, 1).T, state))
      >>> layer = fl.utils.parametrize.register_parametrization(fl.Linear(3, 3), "weight", symmetric)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> list(params["parametrizations"]["weight"])
      ['original', '0']
    """

    init: Callable[..., tuple[Any, Any]]
    apply: Callable[..., tuple[Any, Any]]
    right_inverse: Callable[..., tuple[Any, Any]] | None = None
    name: str = "Parametrization"


def _as_parametrization(who: str, p: Any) -> Parametrization:
    if isinstance(p, Parametrization):
        return p
    if isinstance(p, Layer):
        def init(rng, value):
            return p.init(rng)

        def apply(params, state, *originals, training=False):
            return p.apply(params, state, *originals, training=training)

        return Parametrization(init, apply, None, p.name)
    if callable(p):
        fn_inverse = getattr(p, "right_inverse", None)

        def apply_fn(params, state, *originals, training=False):
            return p(*originals), state

        inverse = None if fn_inverse is None else (lambda params, state, value: (fn_inverse(value), state))
        return Parametrization(lambda rng, value: ({}, {}), apply_fn, inverse,
                               getattr(p, "__name__", type(p).__name__) + "()")
    raise TypeError(f"{who}: a parametrization is a fl.utils.parametrize.Parametrization, a funclayers Layer or a "
                    f"function of the tensor, got {type(p).__name__}.")


class _Spec(NamedTuple):
    """One parametrized tensor: its chain of parametrizations and where its original(s) live."""

    chain: tuple[Parametrization, ...]
    where: str          # "params" or "state": where the layer kept the tensor (and so the originals)
    keys: tuple[str, ...]  # ("original",) or ("original0", "original1", ...)
    unsafe: bool


class _Info(NamedTuple):
    inner: Layer
    tensors: dict[str, _Spec]


def _info(layer: Layer) -> _Info | None:
    return getattr(layer.apply, "_fl_parametrized", None)


def _run_chain(spec: _Spec, tensor_params: dict, tensor_state: dict, training: bool) -> tuple[Any, dict]:
    """The parametrized tensor from its originals, and the chain's new state (torch's ParametrizationList.forward)."""
    source = tensor_params if spec.where == "params" else tensor_state
    x = None
    new_state = {k: v for k, v in tensor_state.items() if k in spec.keys}
    for i, p in enumerate(spec.chain):
        inputs = [source[k] for k in spec.keys] if i == 0 else [x]
        x, new_state[str(i)] = p.apply(tensor_params.get(str(i), {}), tensor_state.get(str(i), {}), *inputs,
                                       training=training)
    return x, new_state


def _check_result(who: str, name: str, value: Any, reference: Any, what: str) -> None:
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise ValueError(f"{who}: A parametrization must return a tensor. Got {type(value).__name__}.")
    if jnp.dtype(value.dtype) != jnp.dtype(reference.dtype):
        raise ValueError(f"{who}: Registering a parametrization may not change the dtype of the tensor, unless the "
                         f"`unsafe` flag is enabled.\nunparametrized dtype: {reference.dtype}\n{what} dtype: "
                         f"{value.dtype}")
    if tuple(value.shape) != tuple(reference.shape):
        raise ValueError(f"{who}: Registering a parametrization may not change the shape of the tensor, unless the "
                         f"`unsafe` flag is enabled.\nunparametrized shape: {tuple(reference.shape)}\n{what} shape: "
                         f"{tuple(value.shape)} (tensor '{name}')")


def _build(inner: Layer, tensors: dict[str, _Spec]) -> Layer:
    """The layer with `tensors` parametrized (one wrapper over the plain layer, whatever the count)."""
    who = "register_parametrization"

    def init(rng, *example_inputs):
        n_keys = 1 + sum(len(spec.chain) for spec in tensors.values())
        keys = iter(jax.random.split(rng, n_keys))
        params, state = call_init(inner, next(keys), example_inputs)
        pz_params, pz_state = {}, {}
        for name, spec in tensors.items():
            home = params if spec.where == "params" else state
            original = home.pop(name)
            t_params, t_state = {}, {}
            p0 = spec.chain[0]
            t_params["0"], t_state["0"] = p0.init(next(keys), original)
            new = original
            if p0.right_inverse is not None:
                new, t_state["0"] = p0.right_inverse(t_params["0"], t_state["0"], original)
            if isinstance(new, (tuple, list)):
                originals = dict(zip(spec.keys, new))
            else:
                if jnp.dtype(new.dtype) != jnp.dtype(original.dtype):
                    raise ValueError(f"{who}: When `right_inverse` outputs one tensor, it may not change the dtype."
                                     f"\noriginal.dtype: {original.dtype}\nright_inverse(original).dtype: "
                                     f"{new.dtype}")
                originals = {spec.keys[0]: new}
            # torch's order: the ParametrizationList's own tensors (the originals), then its children
            if spec.where == "params":
                t_params = {**originals, "0": t_params["0"]}
            else:
                t_state = {**originals, "0": t_state["0"]}
            one = _Spec(spec.chain[:1], spec.where, spec.keys, spec.unsafe)
            if not spec.unsafe:  # torch's consistency check runs the parametrization (in training mode)
                value, t_state = _run_chain(one, t_params, t_state, True)
                _check_result(who, name, value, original, "parametrized")
            for i, p in enumerate(spec.chain[1:], start=1):
                current = _Spec(spec.chain[:i], spec.where, spec.keys, spec.unsafe)
                value, _ = _run_chain(current, t_params, t_state, False)
                t_params[str(i)], t_state[str(i)] = p.init(next(keys), value)
                if not spec.unsafe:
                    out, _ = p.apply(t_params[str(i)], t_state[str(i)], value, training=False)
                    _check_result(who, name, out, value, "parametrization(module.tensor)")
            pz_params[name], pz_state[name] = t_params, t_state
        params["parametrizations"], state["parametrizations"] = pz_params, pz_state
        return params, state

    def apply(params, state, *inputs, rng=None, training=False, **kwargs):
        inner_params = without(params, "parametrizations")
        inner_state = without(state, "parametrizations")
        new_pz_state = {}
        for name, spec in tensors.items():
            value, new_pz_state[name] = _run_chain(spec, params["parametrizations"][name],
                                                   state["parametrizations"][name], training)
            (inner_params if spec.where == "params" else inner_state)[name] = value
        out, new_inner = inner.apply(inner_params, inner_state, *inputs, rng=rng, training=training, **kwargs)
        new_state = {k: v for k, v in new_inner.items() if not (k in tensors and tensors[k].where == "state")}
        new_state["parametrizations"] = new_pz_state
        return out, new_state

    apply._fl_parametrized = _Info(inner, dict(tensors))
    return Layer(init, apply, f"Parametrized{inner.name}", inner.children)


def register_parametrization(module: Layer, tensor_name: str, parametrization: Any, *,
                             unsafe: bool = False) -> Layer:
    """A tensor of the layer computed by a parametrization; torch.nn.utils.parametrize.register_parametrization.

    The returned layer's params (or state, for a buffer) hold the original tensor under
    `parametrizations.<tensor_name>.original` (`original0`, `original1`, ... when the
    parametrization's `right_inverse` returns a tuple), and the parametrization's own params and
    buffers under `parametrizations.<tensor_name>.0.<name>`, torch's names. apply computes the
    tensor from them (differentiably, in `training` mode as given) and calls the layer with it.
    Registering on an already parametrized tensor appends to its chain (`.1`, `.2`, ...), as in
    torch. Torch's consistency checks (the result keeps the tensor's shape and dtype unless
    `unsafe=True`) run when the layer is created, on shapes only.

    Args:
      module: any funclayers layer (or one already parametrized).
      tensor_name: the name of one of its parameters or buffers (a top-level name: wrap the
        child layer that owns a nested one).
      parametrization: a `Parametrization`, a funclayers `Layer` (`apply(params, state, X)` returns
        the new tensor) or a function `f(X) -> Y`, optionally with a `right_inverse(Y) -> X` attribute.
      unsafe: skip the shape and dtype checks (default False).

    Returns: the parametrized layer.

    Shape: as the wrapped layer.

    Example:
      >>> layer = fl.utils.parametrize.register_parametrization(fl.Linear(3, 3), "weight",
      ...                                                        lambda x: jnp.triu(x) + jnp.triu(x, 1).T)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> sorted(fl.state_dict(params, state))
      ['bias', 'parametrizations.weight.original']
      >>> y, state = layer.apply(params, state, jnp.ones(3))
      >>> y.shape
      (3,)
    """
    who = "register_parametrization"
    check_layer(who, module)
    p = _as_parametrization(who, parametrization)
    info = _info(module)
    inner, tensors = (info.inner, dict(info.tensors)) if info else (module, {})
    if tensor_name in tensors:
        spec = tensors[tensor_name]
        tensors[tensor_name] = _Spec(spec.chain + (p,), spec.where, spec.keys, spec.unsafe or unsafe)
    else:
        where = tensor_location(who, inner, tensor_name)
        tensors[tensor_name] = _Spec((p,), where, _original_keys(who, inner, tensor_name, where, p), unsafe)
    layer = _build(inner, tensors)
    jax.eval_shape(layer.init, jax.random.PRNGKey(0))  # torch's registration-time checks, shapes only
    return layer


def _original_keys(who: str, inner: Layer, name: str, where: str, p: Parametrization) -> tuple[str, ...]:
    """("original",) or ("original0", ...), from what right_inverse returns on the layer's tensor."""
    if p.right_inverse is None:
        return ("original",)

    def probe(rng):
        params, state = inner.init(rng)
        value = (params if where == "params" else state)[name]
        p_params, p_state = p.init(rng, value)
        return p.right_inverse(p_params, p_state, value)[0]

    out = jax.eval_shape(probe, jax.random.PRNGKey(0))
    if isinstance(out, (tuple, list)):
        return tuple(f"original{i}" for i in range(len(out)))
    if not hasattr(out, "shape"):
        raise ValueError(f"{who}: 'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                         f"Got {type(out).__name__}")
    return ("original",)


def is_parametrized(module: Layer, tensor_name: str | None = None) -> bool:
    """Whether a layer has parametrized tensors (`tensor_name`); torch.nn.utils.parametrize.is_parametrized.

    Args:
      module: a funclayers layer.
      tensor_name: a tensor name, or None (default) for any.

    Shape: no arrays: a layer in, a bool out.

    Example:
      >>> from funclayers.utils import parametrizations
      >>> layer = parametrizations.weight_norm(fl.Linear(3, 2))
      >>> fl.utils.parametrize.is_parametrized(layer), fl.utils.parametrize.is_parametrized(layer, "bias")
      (True, False)
    """
    info = _info(module) if isinstance(module, Layer) else None
    if info is None:
        return False
    return bool(info.tensors) if tensor_name is None else tensor_name in info.tensors


def type_before_parametrizations(module: Layer) -> str:
    """The description of the layer under the parametrizations; torch.nn.utils.parametrize.type_before_parametrizations.

    torch returns the module's class before parametrization changed it; funclayers layers have
    no classes, so this returns the unparametrized layer's name.

    Args:
      module: a funclayers layer.

    Shape: no arrays: a layer in, a string out.

    Example:
      >>> from funclayers.utils import parametrizations
      >>> layer = parametrizations.weight_norm(fl.Linear(3, 2))
      >>> layer.name
      'ParametrizedLinear(in_features=3, out_features=2, bias=True)'
      >>> fl.utils.parametrize.type_before_parametrizations(layer)
      'Linear(in_features=3, out_features=2, bias=True)'
    """
    info = _info(module) if isinstance(module, Layer) else None
    return (info.inner if info else module).name


def remove_parametrizations(module: Layer, tensor_name: str,
                            leave_parametrized: bool = True) -> tuple[Layer, Callable[..., tuple[Any, Any]]]:
    """A layer without one tensor's parametrization; torch.nn.utils.parametrize.remove_parametrizations.

    torch, in place, either computes the parametrized tensor once and makes it a plain
    parameter again (`leave_parametrized=True`) or restores the stored original. The pure form
    returns the layer without that parametrization (the plain layer when none is left) and a
    function `convert(params, state, training=False) -> (params, state)` that does the same to
    params and state: `parametrizations.<tensor_name>` removed and `<tensor_name>` appended last,
    as torch re-registers it (`training=True` runs the parametrization as a torch module in
    train() mode does, e.g. one more power-iteration step of spectral norm).

    Args:
      module: a layer returned by `register_parametrization` (or `parametrizations.*`).
      tensor_name: the parametrized tensor.
      leave_parametrized: keep the current (parametrized) value (default True), or restore the
        original; torch's ValueError when the original is a tuple.

    Returns: `(layer, convert)`.

    Shape: `convert` maps the parametrized layer's params/state to the new layer's; the tensor
      keeps its shape.

    Example:
      >>> from funclayers.utils import parametrizations, parametrize
      >>> wn = parametrizations.weight_norm(fl.Linear(4, 2))
      >>> params, state = wn.init(jax.random.PRNGKey(0))
      >>> layer, convert = parametrize.remove_parametrizations(wn, "weight")
      >>> plain_params, plain_state = convert(params, state)
      >>> list(plain_params), layer
      (['bias', 'weight'], Linear(in_features=4, out_features=2, bias=True))
    """
    who = "remove_parametrizations"
    check_layer(who, module)
    info = _info(module)
    if info is None or tensor_name not in info.tensors:
        raise ValueError(f"{who}: Module {module.name} does not have a parametrization on {tensor_name}")
    spec = info.tensors[tensor_name]
    if not leave_parametrized and spec.keys != ("original",):
        raise ValueError(f"{who}: Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is "
                         f"parametrized in terms of a sequence of tensors.")
    rest = {k: v for k, v in info.tensors.items() if k != tensor_name}
    layer = _build(info.inner, rest) if rest else info.inner

    def convert(params, state, training=False):
        t_params = params["parametrizations"][tensor_name]
        t_state = state["parametrizations"][tensor_name]
        if leave_parametrized:
            value, _ = _run_chain(spec, t_params, t_state, training)
        else:
            value = (t_params if spec.where == "params" else t_state)["original"]
        new_params, new_state = dict(params), dict(state)
        for tree in (new_params, new_state):
            tree["parametrizations"] = without(tree["parametrizations"], tensor_name)
            if not rest:
                del tree["parametrizations"]
        (new_params if spec.where == "params" else new_state)[tensor_name] = value
        return new_params, new_state

    return layer, convert


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """torch's context that caches parametrized tensors; a no-op here; torch.nn.utils.parametrize.cached.

    torch recomputes a parametrized tensor at every attribute access and caches it inside this
    context (e.g. across the time steps of an RNN). A funclayers apply computes each
    parametrized tensor once per call already, and under `jax.jit` XLA shares any repeated
    computation, so there is nothing to cache: the context exists so that ported code runs.

    Shape: no arrays.

    Example:
      >>> from funclayers.utils import parametrizations, parametrize
      >>> layer = parametrizations.orthogonal(fl.Linear(3, 3))
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> with parametrize.cached():
      ...     y, state = layer.apply(params, state, jnp.ones(3))
      >>> y.shape
      (3,)
    """
    yield
