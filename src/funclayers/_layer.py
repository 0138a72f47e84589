"""The Layer type and torch's containers: Sequential, ModuleList, ModuleDict, and composites.

A layer is a NamedTuple of two pure functions (optax's GradientTransformation pattern):

    params, state = layer.init(rng)                     # or layer.init(rng, *example_inputs)
    out, new_state = layer.apply(params, state, *inputs, rng=None, training=False, **kwargs)

`params` and `state` are nested plain dicts whose key paths, joined with ".", are torch's
`state_dict` names. Containers nest their children's dicts under the child names.
"""

from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _layout
from ._utils import param_dtype, shape_pass

Params = Any
State = Any
InitFn = Callable[..., tuple[Params, State]]
ApplyFn = Callable[..., tuple[Any, State]]


def _takes_examples(init: Callable) -> bool:
    """Whether `init` accepts example inputs after the rng (a `*args` or a second positional)."""
    if getattr(init, "_takes_examples", False):
        return True
    if inspect.isfunction(init) and not hasattr(init, "__wrapped__"):  # a plain function: read its code, fast
        code = init.__code__
        return bool(code.co_flags & inspect.CO_VARARGS) or code.co_argcount > 1
    try:
        parameters = inspect.signature(init).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: leave it as it is
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return any(p.kind == p.VAR_POSITIONAL for p in parameters) or len(positional) > 1


_NO_RNG = object()


def _accepting_examples(init: InitFn | None) -> InitFn | None:
    """`init` made to accept (and ignore) example inputs, so every layer takes `init(rng, *examples)`."""
    if init is None or not callable(init) or _takes_examples(init):
        return init

    @functools.wraps(init)
    def init_ignoring_examples(rng=_NO_RNG, *example_inputs, **example_kwargs):
        del example_inputs, example_kwargs  # only lazy layers and containers read them
        return init() if rng is _NO_RNG else init(rng)

    init_ignoring_examples._takes_examples = True
    return init_ignoring_examples


class _LayerFields(NamedTuple):
    init: InitFn
    apply: ApplyFn
    name: str = "Layer"
    children: tuple[tuple[str, Layer], ...] = ()


class Layer(_LayerFields):
    """A layer as two pure functions, plus a description and its named children.

    Every funclayers constructor returns one; build one by hand for a layer of your own. The four
    arguments are also the NamedTuple's fields (`layer.init`, `layer.apply`, ...).

    Args:
      init: `init(rng) -> (params, state)`: torch's parameters and persistent buffers, as nested
        dicts keyed by torch's names. An init written as `init(rng)` is wrapped to accept and
        ignore example inputs, so every layer's init takes `init(rng, *example_inputs)`; a lazy
        layer's init reads the sizes it lacks from their shapes.
      apply: `apply(params, state, *inputs, rng=None, training=False, **kwargs) -> (out, new_state)`.
      name: a torch-style description, e.g. `"Linear(in_features=4, out_features=2, bias=True)"`;
        the repr of a layer without children. Default "Layer".
      children: `(name, layer)` pairs of a container's children, in torch's registration order;
        default none.

    Shape: whatever `apply` takes -> whatever it returns (each layer documents its own).

    Example:
      >>> def init(rng):
      ...     return {"scale": jnp.full(3, 2.0)}, {}
      >>> def apply(params, state, x, *, rng=None, training=False):
      ...     return x * params["scale"], state
      >>> layer = fl.Layer(init, apply, "Scale(3)")
      >>> layer
      Scale(3)
      >>> y, state = layer.apply(*layer.init(jax.random.PRNGKey(0)), jnp.arange(3.0))
      >>> y
      Array([0., 2., 4.], dtype=float32)
      >>> params, _ = layer.init(jax.random.PRNGKey(0), jnp.ones(3))   # example inputs: accepted, ignored here
      >>> params["scale"].shape
      (3,)
    """

    __slots__ = ()

    def __new__(cls, init: InitFn, apply: ApplyFn, name: str = "Layer",
                children: tuple[tuple[str, Layer], ...] = ()) -> Layer:
        return super().__new__(cls, _accepting_examples(init), apply, name, tuple(children))

    @classmethod
    def _make(cls, iterable) -> Layer:  # `layer._replace(init=...)` goes through __new__ too
        return cls(*iterable)

    def __repr__(self) -> str:
        if not self.children:
            return self.name
        lines = [f"{self.name}("]
        for child_name, child in self.children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({child_name}): {body}")
        lines.append(")")
        return "\n".join(lines)


def no_params(rng: jax.Array | None = None) -> tuple[dict, dict]:
    """`init` of a layer that has neither parameters nor buffers."""
    del rng
    return {}, {}


def stateless(name: str, fn: Callable[..., Any]) -> Layer:
    """A layer without parameters or buffers whose forward is `fn(*inputs, **kwargs)`."""

    def apply(params, state, *inputs, rng=None, training=False, **kwargs):
        del params, rng, training
        return fn(*inputs, **kwargs), state

    return Layer(no_params, apply, name)


def _split(rng: jax.Array | None, n: int) -> list:
    if rng is None or n == 0:
        return [None] * n
    return list(jax.random.split(rng, n))


def _named_children(layers: tuple, kind: str) -> tuple[tuple[str, Layer], ...]:
    if len(layers) == 1 and isinstance(layers[0], Mapping):
        items = tuple((str(k), v) for k, v in layers[0].items())
    else:
        items = tuple((str(i), v) for i, v in enumerate(layers))
    for child_name, child in items:
        if not isinstance(child, Layer):
            raise TypeError(f"{kind}: child {child_name!r} is a {type(child).__name__}, not a funclayers Layer; "
                            f"build it with a funclayers constructor such as fl.Linear(...).")
        if "." in child_name or child_name == "":
            raise ValueError(f"{kind}: child name {child_name!r} must be a non-empty string without '.'.")
    return items


def _is_array(leaf: Any) -> bool:
    return hasattr(leaf, "shape") and hasattr(leaf, "dtype")


def _abstract(tree: Any) -> Any:
    """Arrays (and tracers) in `tree` as ShapeDtypeStructs; other leaves (flags, None) as they are."""
    return jax.tree_util.tree_map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype)
                                  if _is_array(leaf) else leaf, tree)


def _eval_shape(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """`jax.eval_shape(fn, *args, **kwargs)` where only the array leaves are abstract (flags stay static)."""
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    arrays = [i for i, leaf in enumerate(leaves) if _is_array(leaf)]

    def run(*values):
        filled = list(leaves)
        for i, value in zip(arrays, values):
            filled[i] = value
        call_args, call_kwargs = jax.tree_util.tree_unflatten(treedef, filled)
        return fn(*call_args, **call_kwargs)

    with shape_pass():  # example inputs give shapes only: no dtype-mismatch error here
        return jax.eval_shape(run, *[_abstract(leaves[i]) for i in arrays])


def _child_keys(rng: jax.Array, children: tuple) -> list:
    return list(jax.random.split(rng, max(len(children), 1)))


def _init_recorded(layer: Layer, rng: jax.Array, records: dict) -> tuple[Params, State]:
    """Init `layer` with the example inputs recorded for it (path `()`) or for its descendants.

    `records` maps paths relative to `layer` to the `(args, kwargs)` a composite's forward gave
    them; a container whose own init splits the rng over its children (marked `_children`) is
    descended into, so `m.blocks[0](x)` sizes the lazy child `blocks.0`; any other layer without a
    record is initialised without examples.
    """
    if () in records:
        args, kwargs = records[()]
        return layer.init(rng, *args, **kwargs)
    children = getattr(layer.init, "_children", None)
    if not records or children is None:
        return layer.init(rng)
    return _init_children_recorded(children, rng, records)


def _init_children_recorded(children: tuple, rng: jax.Array, records: dict) -> tuple[dict, dict]:
    params, state = {}, {}
    for (child_name, child), key in zip(children, _child_keys(rng, children)):
        sub = {path[1:]: value for path, value in records.items() if path and path[0] == child_name}
        params[child_name], state[child_name] = _init_recorded(child, key, sub)
    return params, state


def _init_children(children: tuple[tuple[str, Layer], ...]) -> InitFn:
    """A container's init: one key per child, in order; example inputs reach no child (no forward)."""

    def init(rng, *example_inputs, **example_kwargs):
        del example_inputs, example_kwargs
        return _init_children_recorded(children, rng, {})

    init._children = children
    return init


def Sequential(*layers: Layer | Mapping[str, Layer]) -> Layer:
    """Chains layers, feeding each output to the next; torch.nn.Sequential.

    `init(rng, x)` initialises child i on the output shapes of child i-1 (`jax.eval_shape`:
    nothing is computed), so lazy children size themselves from one example batch.

    Args:
      *layers: layers, named "0", "1", ... as in torch, or one `OrderedDict` of named layers.

    Shape: whatever the first layer takes -> whatever the last layer returns.

    Runs of children Conv2d (3x3, padding 1, computed by Winograd) -> BatchNorm2d / ReLU / MaxPool2d(2)
    -> Conv2d ... pass their activations on in Winograd's own layout, turned back into NCHW once at the
    run's end (`_layout.py`; the small CNN's train step 14-16% less CPU time): the children's arithmetic
    (BatchNorm's sums in another order), and the output is NCHW as always.

    Example:
      >>> model = fl.Sequential(fl.Linear(4, 8), fl.ReLU(), fl.Linear(8, 2))
      >>> params, state = model.init(jax.random.PRNGKey(0))
      >>> params["0"]["weight"].shape
      (8, 4)
      >>> y, state = model.apply(params, state, jnp.ones((3, 4)))
      >>> y.shape
      (3, 2)
      >>> lazy = fl.Sequential(fl.LazyConv2d(16, 3), fl.ReLU(), fl.Flatten(), fl.LazyLinear(10))
      >>> params, state = lazy.init(jax.random.PRNGKey(0), jnp.ones((2, 3, 8, 8)))
      >>> params["3"]["weight"].shape
      (10, 576)
    """
    children = _named_children(layers, "Sequential")

    def init(rng, *example_inputs):
        # With an example input, child i is initialised on the shapes child i-1 returns
        # (`jax.eval_shape` of its apply: nothing is computed), so lazy children size themselves.
        if not example_inputs:
            return _init_children_recorded(children, rng, {})
        params, state = {}, {}
        inputs = _abstract(example_inputs)
        for (child_name, child), key in zip(children, _child_keys(rng, children)):
            params[child_name], state[child_name] = child_params, child_state = child.init(key, *inputs)
            inputs = (_eval_shape(lambda p, s, *xs, child=child: child.apply(p, s, *xs)[0],
                                  (child_params, child_state) + tuple(inputs), {}),)
        return params, state

    init._children = children

    def apply(params, state, input, *, rng=None, training=False):
        return _layout.run(children, params, state, input, _split(rng, len(children)), training)

    return Layer(init, apply, "Sequential", children)


def _container_apply(kind: str) -> ApplyFn:
    def apply(params, state, *inputs, rng=None, training=False, **kwargs):
        raise TypeError(f"{kind} is a container without a forward; call its children from a composite "
                        f"layer's forward instead, e.g. `m.layers[0](x)` inside fl.Module(forward, layers=...).")

    return apply


def ModuleList(modules: Any = None) -> Layer:
    """Holds layers under the names "0", "1", ...; torch.nn.ModuleList.

    Like torch's, it has no forward (so no shapes of its own): index it from a composite's
    forward (`m.blocks[i](x)`), or iterate over it there.

    Args:
      modules: an iterable of layers (default none), named "0", "1", ... in order.

    Example:
      >>> blocks = fl.ModuleList([fl.Linear(8, 8) for _ in range(3)])
      >>> net = fl.Module(lambda m, x: [x := blk(x) for blk in m.blocks][-1], blocks=blocks)
      >>> params, state = net.init(jax.random.PRNGKey(0))
      >>> sorted(params["blocks"])
      ['0', '1', '2']
      >>> net.apply(params, state, jnp.ones((2, 8)))[0].shape
      (2, 8)
    """
    children = _named_children(tuple(modules or ()), "ModuleList")
    return Layer(_init_children(children), _container_apply("ModuleList"), "ModuleList", children)


def ModuleDict(modules: Mapping[str, Layer] | None = None) -> Layer:
    """Holds layers under given names; torch.nn.ModuleDict. Index it from a composite's forward.

    Like torch's, it has no forward (so no shapes of its own).

    Args:
      modules: a mapping of names to layers (default none), kept in its order; names are
        non-empty strings without ".".

    Example:
      >>> heads = fl.ModuleDict({"cls": fl.Linear(8, 3), "box": fl.Linear(8, 4)})
      >>> net = fl.Module(lambda m, x: (m.heads["cls"](x), m.heads["box"](x)), heads=heads)
      >>> (cls, box), _ = net.apply(*net.init(jax.random.PRNGKey(0)), jnp.ones((2, 8)))
      >>> cls.shape, box.shape
      ((2, 3), (2, 4))
    """
    children = _named_children((OrderedDict(modules or {}),), "ModuleDict")
    return Layer(_init_children(children), _container_apply("ModuleDict"), "ModuleDict", children)


def Parameter(init: Callable[[jax.Array], jax.Array] | jax.Array) -> Layer:
    """A bare parameter of a composite (torch's `self.cls_token = nn.Parameter(...)`).

    Inside a composite's forward `m.<name>` is the array itself; its torch name is the child's
    name (`cls_token`), so it loads from a torch `state_dict` as torch's own parameter would.

    Args:
      init: an array, or a function of a PRNG key returning the initial array
        (e.g. `lambda rng: jax.random.normal(rng, (1, 1, 8))`).

    Shape: any: `init(rng)` returns the array (or `init(rng)`'s) as the params leaf, unchanged.

    Example:
      >>> def forward(m, x):
      ...     return x + m.bias                      # m.bias: the array itself
      >>> net = fl.Module(forward, bias=fl.Parameter(jnp.array([1.0, 2.0])))
      >>> params, state = net.init(jax.random.PRNGKey(0))
      >>> params
      {'bias': Array([1., 2.], dtype=float32)}
      >>> net.apply(params, state, jnp.zeros(2))[0]
      Array([1., 2.], dtype=float32)
    """
    fn = init if callable(init) else (lambda rng: jnp.asarray(init))
    return Layer(lambda rng: (fn(rng), {}), _container_apply("Parameter"), "Parameter")


def Buffer(init: Callable[[jax.Array], jax.Array] | jax.Array) -> Layer:
    """A bare persistent buffer of a composite (torch's `register_buffer`); `m.<name>` reads it.

    A forward may replace it with `m.set_buffer("<name>", value)`; the value lands in new_state.

    Args:
      init: an array, or a function of a PRNG key returning the initial array.

    Shape: any: `init(rng)` returns the array (or `init(rng)`'s) as the state leaf, unchanged.

    Example:
      >>> def forward(m, x):
      ...     m.set_buffer("calls", m.calls + 1)    # a new value in the returned state
      ...     return x
      >>> net = fl.Module(forward, calls=fl.Buffer(jnp.zeros((), jnp.int32)))
      >>> params, state = net.init(jax.random.PRNGKey(0))
      >>> _, state = net.apply(params, state, jnp.ones(3))
      >>> state
      {'calls': Array(1, dtype=int32)}
    """
    fn = init if callable(init) else (lambda rng: jnp.asarray(init))
    return Layer(lambda rng: ({}, fn(rng)), _container_apply("Buffer"), "Buffer")


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


__all__ = ["Layer", "Sequential", "ModuleList", "ModuleDict", "Module", "Parameter", "Buffer", "Scope",
           "no_params", "stateless", "param_dtype"]
