"""The Layer type and torch's containers: Sequential, ModuleList, ModuleDict, Parameter, Buffer.

Composites written like a torch nn.Module (`Module`, `Scope`) are in _module.py.

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
from collections.abc import Callable, Mapping
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
    run's end (`_layout.py`; the small CNN's train step 14-16% less CPU time). The children's arithmetic
    is the same up to the order of BatchNorm's sums, and the output is NCHW as always.

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


__all__ = ["Layer", "Sequential", "ModuleList", "ModuleDict", "Parameter", "Buffer",
           "no_params", "stateless", "param_dtype"]
