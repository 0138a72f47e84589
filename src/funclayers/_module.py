"""Composite layers written like a torch nn.Module: `Module(forward, **children)` and the `Scope` its
forward receives (children bound to their params, state and the caller's rng).

Split from `_layer.py` (the Layer type and torch's containers), whose conventions it keeps: params and
state are nested dicts keyed by the child names, as torch's `state_dict` keys a module's attributes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax

from ._layer import (
    Layer,
    _abstract,
    _eval_shape,
    _init_children_recorded,
    _named_children,
)


class _Bound:
    """A child layer bound to its params, its slot in the evolving state and the caller's rng."""

    def __init__(self, scope: Scope, layer: Layer, path: tuple[str, ...]):
        self._scope, self._layer, self._path = scope, layer, path

    def __call__(self, *inputs, **kwargs):
        return self._scope._call(self._layer, self._path, inputs, kwargs)

    def __getitem__(self, item):
        names = [n for n, _ in self._layer.children]
        key = names[item] if isinstance(item, int) else str(item)
        return self._scope._bind(dict(self._layer.children)[key], self._path + (key,))

    def __getattr__(self, item):
        if item.startswith("_"):
            raise AttributeError(item)
        children = dict(self._layer.children)
        if item not in children:
            raise AttributeError(f"{self._layer.name} has no child {item!r}; it has {sorted(children)}.")
        return self._scope._bind(children[item], self._path + (item,))

    def __iter__(self) -> Iterator:
        return (self[n] for n, _ in self._layer.children)

    def __len__(self) -> int:
        return len(self._layer.children)

    def __contains__(self, item) -> bool:
        return item in dict(self._layer.children)

    def keys(self):
        return [n for n, _ in self._layer.children]

    def items(self):
        return [(n, self[n]) for n, _ in self._layer.children]

    def values(self):
        return [self[n] for n, _ in self._layer.children]


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _thaw(tree: Any) -> Any:
    """Copy the dict structure (not the arrays) so a forward can record state updates."""
    return {k: _thaw(v) for k, v in tree.items()} if isinstance(tree, Mapping) else tree


class Scope:
    """What a composite's forward receives: its children bound to params, state and rng.

    `m.conv1(x)` applies child `conv1` and threads its new state; `m.layers[0]`, `m.heads["a"]`
    index containers; `m.training` is the mode; `m.rng()` draws a fresh key (or None);
    `"downsample" in m` asks whether a child exists; `m.set_buffer(name, value)` replaces a
    `fl.Buffer` child. `fl.Module`'s apply builds it; you do not.

    Args:
      children: the composite's `(name, layer)` pairs.
      params: the composite's params.
      state: the composite's state (copied, so the forward's updates land in the returned state only).
      rng: the caller's PRNG key, or None; each child call gets its own key folded from it.
      training: the mode the children run in.

    Example:
      >>> def forward(m, x):
      ...     print(type(m).__name__, m.training, "fc" in m, m.rng() is None)
      ...     return m.fc(x)
      >>> net = fl.Module(forward, fc=fl.Linear(2, 2))
      >>> y, state = net.apply(*net.init(jax.random.PRNGKey(0)), jnp.ones((1, 2)))
      Scope False True True
    """

    def __init__(self, children, params, state, rng, training):
        self._children = dict(children)
        self._params, self._state = params, _thaw(state)
        self._rng, self._calls = rng, 0
        self.training = training

    def _next_rng(self):
        if self._rng is None:
            return None
        self._calls += 1
        return jax.random.fold_in(self._rng, self._calls)

    def rng(self) -> jax.Array | None:
        """A fresh PRNG key derived from the caller's `rng`, or None when none was given."""
        return self._next_rng()

    def _call(self, layer: Layer, path: tuple[str, ...], inputs: tuple, kwargs: dict) -> Any:
        out, new_state = layer.apply(_get(self._params, path), _get(self._state, path), *inputs,
                                     rng=self._next_rng(), training=self.training, **kwargs)
        _set(self._state, path, new_state)
        return out

    def _bind(self, layer: Layer, path: tuple[str, ...]):
        if layer.name == "Parameter":
            return _get(self._params, path)
        if layer.name == "Buffer":
            return _get(self._state, path)
        return _Bound(self, layer, path)

    def set_buffer(self, name: str, value: Any) -> None:
        """Replace the bare buffer `name` (a `fl.Buffer` child) in the returned state."""
        if self._children.get(name, Layer(None, None)).name != "Buffer":
            raise ValueError(f"set_buffer: {name!r} is not a fl.Buffer child of this composite.")
        self._state[name] = value

    def __getattr__(self, item):
        if item.startswith("_"):
            raise AttributeError(item)
        if item not in self._children:
            raise AttributeError(f"composite has no child {item!r}; its children are {sorted(self._children)}.")
        return self._bind(self._children[item], (item,))

    def __getitem__(self, item):
        return self.__getattr__(item)

    def __contains__(self, item) -> bool:
        return item in self._children


class _InitScope(Scope):
    """The Scope of a composite's forward traced by `init(rng, *example_inputs)` (under `jax.eval_shape`).

    Each child reached is initialised abstractly on the inputs it is given, which are recorded
    (as shapes) for the concrete init that follows; its abstract output goes on to the next child.
    """

    def __init__(self, children, rng):
        super().__init__(children, {}, {}, None, False)
        self._init_rng = rng
        self.records: dict[tuple[str, ...], tuple[tuple, dict]] = {}
        self._values: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def _variables(self, layer: Layer, path: tuple[str, ...], inputs: tuple, kwargs: dict):
        if path not in self._values:
            if inputs or kwargs:
                self.records[path] = (_abstract(inputs), _abstract(kwargs))
            self._values[path] = layer.init(self._init_rng, *inputs, **kwargs)
        return self._values[path]

    def _call(self, layer: Layer, path: tuple[str, ...], inputs: tuple, kwargs: dict) -> Any:
        params, state = self._variables(layer, path, inputs, kwargs)
        out, new_state = layer.apply(params, state, *inputs, rng=None, training=False, **kwargs)
        self._values[path] = (params, new_state)
        return out

    def _bind(self, layer: Layer, path: tuple[str, ...]):
        if layer.name == "Parameter":
            return self._variables(layer, path, (), {})[0]
        if layer.name == "Buffer":
            return self._variables(layer, path, (), {})[1]
        return _Bound(self, layer, path)

    def set_buffer(self, name: str, value: Any) -> None:
        if self._children.get(name, Layer(None, None)).name != "Buffer":
            raise ValueError(f"set_buffer: {name!r} is not a fl.Buffer child of this composite.")
        self._values[(name,)] = ({}, value)


def Module(forward: Callable[..., Any], /, **children: Layer) -> Layer:
    """A composite layer from named children and a forward function, like a torch nn.Module.

    Params and state are keyed by the child names exactly as torch keys a module with those
    attributes, so the torch module's `state_dict` loads unchanged. The forward receives a
    `Scope` `m`: calling `m.<child>(...)` applies that child, threading its state and an rng.
    `init(rng, *example_inputs, **example_kwargs)` runs the forward once under `jax.eval_shape`
    (nothing computed) and initialises each child on the shapes it is called with (lazy children
    size themselves; a child never called gets `init(rng)`), with the same keys as `init(rng)`.

    Args:
      forward: `forward(m, *inputs, **kwargs)`, returning the output; `m` is a `Scope`.
      **children: the child layers (containers, `fl.Parameter`, `fl.Buffer` included), in
        torch's registration order.

    Shape: whatever `forward` takes -> whatever it returns.

    Example:
      >>> # torchvision's ResNet BasicBlock
      >>> def basic_block(inplanes, planes, stride=1):
      ...     children = dict(conv1=fl.Conv2d(inplanes, planes, 3, stride, 1, bias=False),
      ...                     bn1=fl.BatchNorm2d(planes),
      ...                     conv2=fl.Conv2d(planes, planes, 3, 1, 1, bias=False),
      ...                     bn2=fl.BatchNorm2d(planes))
      ...     if stride != 1 or inplanes != planes:
      ...         children["downsample"] = fl.Sequential(
      ...             fl.Conv2d(inplanes, planes, 1, stride, bias=False), fl.BatchNorm2d(planes))
      ...     def forward(m, x):
      ...         out = jax.nn.relu(m.bn1(m.conv1(x)))
      ...         out = m.bn2(m.conv2(out))
      ...         return jax.nn.relu(out + (m.downsample(x) if "downsample" in m else x))
      ...     return fl.Module(forward, **children)
      >>> block = basic_block(3, 8, stride=2)
      >>> y, state = block.apply(*block.init(jax.random.PRNGKey(0)), jnp.ones((1, 3, 8, 8)))
      >>> y.shape
      (1, 8, 4, 4)
    """
    items = _named_children((OrderedDict(children),), "Module")
    label = getattr(forward, "__name__", "Module")
    label = "Module" if label == "<lambda>" else label

    def init(rng, *example_inputs, **example_kwargs):
        # With example inputs, the forward runs once under `jax.eval_shape` (nothing computed),
        # initialising each child it reaches on the shapes it gets; then every child is
        # initialised for real on those shapes, with the same keys as without examples.
        if not example_inputs and not example_kwargs:
            return _init_children_recorded(items, rng, {})
        scope = _InitScope(items, rng)

        def trace(*inputs, **kwargs):
            forward(scope, *inputs, **kwargs)  # only the children's records are kept, not the output

        _eval_shape(trace, example_inputs, example_kwargs)
        return _init_children_recorded(items, rng, scope.records)

    init._children = items

    def apply(params, state, *inputs, rng=None, training=False, **kwargs):
        scope = Scope(items, params, state, rng, training)
        out = forward(scope, *inputs, **kwargs)
        return out, scope._state

    return Layer(init, apply, label, items)


__all__ = ["Module", "Scope"]
