"""A custom torch module's forward, traced with torch.fx, as a funclayers composite.

`graph_layer(module, path, convert, is_leaf)` traces the module twice (in `train()` and `eval()`
mode: `self.training` is baked into a traced graph) with a tracer that keeps as leaves exactly
the submodules that have a converter (torch.nn classes funclayers covers, registered classes);
everything else is traced through. The result is an `fl.Module` whose children nest as the
module's `state_dict`: converted leaves, the module's own parameters and persistent buffers as
`fl.Parameter` / `fl.Buffer`, and traced-through submodules as `ModuleDict` namespaces of theirs.
Its forward interprets the graph on JAX values, node by node, at trace time only: after `jit`
nothing of the interpreter is left in the program. Every node's op is looked up at conversion,
so an op without a translation fails in `from_torch`, naming the op, the module and the source
line that called it. torch is not used when the layer runs.
"""

from __future__ import annotations

import collections
import operator
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from .._layer import Buffer, Layer, ModuleDict, Parameter
from .._module import Module, _get, _set
from . import _ops
from ._errors import TorchConversionError
from ._ops_vision import BY_NAME
from ._values import _to_value

_TABLE: dict[Any, Callable[..., Any]] = {}
_NAMEDTUPLES: dict[tuple, type] = {}


def _function_table() -> dict[Any, Callable[..., Any]]:
    if not _TABLE:
        import torch

        _TABLE.update(_ops.OPERATORS)
        _TABLE.update(_ops._torch_functions(torch))
    return _TABLE


class _Ref:
    """A node's value in the interpreter's environment (index into the node list)."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def _jax_dtype(dtype: Any) -> Any:
    return jnp.dtype(str(dtype).removeprefix("torch."))


def _template(arg: Any, index: dict, fail: Callable[[str], Exception]) -> Any:
    """A node argument with torch objects replaced by JAX/Python ones and nodes by `_Ref`s (at conversion)."""
    import torch

    if isinstance(arg, torch.fx.Node):
        return _Ref(index[arg])
    if isinstance(arg, (tuple, list)):
        items = [_template(a, index, fail) for a in arg]
        return tuple(items) if isinstance(arg, tuple) else items
    if isinstance(arg, dict):  # torch.fx stores dicts as its immutable_dict: an OrderedDict keeps torch's order
        return collections.OrderedDict((k, _template(v, index, fail)) for k, v in arg.items())  # under jit too
    if isinstance(arg, slice):
        return slice(*(_template(v, index, fail) for v in (arg.start, arg.stop, arg.step)))
    if isinstance(arg, torch.dtype):
        return _jax_dtype(arg)
    if isinstance(arg, torch.device):
        return None
    if isinstance(arg, torch.memory_format):
        return None
    if isinstance(arg, torch.Size):
        return tuple(arg)
    if isinstance(arg, torch.Tensor):
        return jnp.asarray(_to_value(arg, None, "constant"))
    if arg is None or isinstance(arg, (bool, int, float, complex, str, type(Ellipsis))):
        return arg
    raise fail(f"an argument of type {type(arg).__name__} ({arg!r:.80}) has no JAX counterpart")


def _fill(template: Any, env: list) -> Any:
    if isinstance(template, _Ref):
        return env[template.index]
    if isinstance(template, tuple):
        return tuple(_fill(t, env) for t in template)
    if isinstance(template, list):
        return [_fill(t, env) for t in template]
    if isinstance(template, dict):
        return type(template)((k, _fill(v, env)) for k, v in template.items())
    if isinstance(template, slice):
        return slice(_fill(template.start, env), _fill(template.stop, env), _fill(template.step, env))
    return template


def _source_line(node: Any) -> str:
    """'file.py:123: `code`' of the source line that made the node: its stack trace's innermost frame
    outside torch itself (torch.fx's own frames come last)."""
    import os

    import torch

    torch_dir = os.path.dirname(torch.__file__)
    lines = [line.strip() for line in (node.meta.get("stack_trace") or "").strip().splitlines()]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("File "):
            where = lines[i].removeprefix("File ").replace('"', "").replace(", line ", ":").split(",")[0]
            if where.startswith(torch_dir):
                continue
            code = lines[i + 1] if i + 1 < len(lines) else ""
            return f"{where}: `{code}`"
    return "(no source line recorded)"


def _namedtuple(cls: type) -> type:
    """Our own namedtuple type with the name and fields of a torch model's (no torch object held at run time)."""
    key = (cls.__name__, tuple(cls._fields))
    if key not in _NAMEDTUPLES:
        _NAMEDTUPLES[key] = collections.namedtuple(cls.__name__, cls._fields)
    return _NAMEDTUPLES[key]


def _op_name(node: Any) -> str:
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    return f"{module}.{name}" if module else name


class _Step:
    """One node, ready to run: what it does, its argument templates, and whether it mutates its first argument."""

    __slots__ = ("kind", "fn", "args", "kwargs", "random", "mutates", "name")

    def __init__(self, kind, fn, args=(), kwargs=None, random=False, mutates=None, name=""):
        self.kind, self.fn, self.args, self.kwargs = kind, fn, args, kwargs or {}
        self.random, self.mutates, self.name = random, mutates, name


def _node_label(node: Any, module: Any, path: str) -> str:
    """'path: Class' of the innermost module whose forward made the node."""
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        qualname, cls = list(stack.values())[-1]
        return _label(path, qualname, getattr(cls, "__name__", str(cls).rsplit(".", 1)[-1].strip("'>")))
    return _label(path, "", type(module).__name__)


def _translate_graph(graph: Any, module: Any, path: str, is_param: Callable[[str], str | None]) -> tuple:
    """The graph's nodes as `_Step`s (placeholders first), validated: a missing translation raises here."""
    import torch

    table = _function_table()
    nodes = list(graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    steps, placeholders, output = [], [], None
    for node in nodes:
        label = _node_label(node, module, path)

        def fail(what, node=node, label=label):
            return TorchConversionError(f"from_torch: {label}: {what}, in {_op_name(node)} called at "
                                        f"{_source_line(node)}.")

        args = _template(node.args, index, fail)
        kwargs = _template(dict(node.kwargs), index, fail)
        if node.op == "placeholder":
            placeholders.append((node.target, args[0] if args else _NO_DEFAULT))
            steps.append(_Step("placeholder", None, name=node.target))
        elif node.op == "get_attr":
            kind = is_param(node.target)
            if kind:  # "params" or "state": read at run time, by its state_dict path (leaves' tensors too)
                steps.append(_Step(kind, tuple(node.target.split(".")), name=node.target))
            else:  # a non-persistent buffer or a constant the tracer stored: closed over
                value = operator.attrgetter(node.target)(module)
                steps.append(_Step("const", _template(value, index, fail), name=node.target))
        elif node.op == "call_module":
            steps.append(_Step("module", tuple(node.target.split(".")), args, kwargs, name=node.target))
        elif node.op == "call_method":
            fn = _ops.METHODS.get(node.target)
            if fn is None:
                raise TorchConversionError(
                    f"from_torch: {label}: the tensor method {node.target!r} (Tensor.{node.target}) has no JAX "
                    f"translation; called at {_source_line(node)}. Register a converter for "
                    f"{label.rsplit(': ', 1)[1]} with fl.register_torch_converter to write this forward in JAX.")
            mutates = 0 if node.target in _ops.INPLACE_METHODS else None
            steps.append(_Step("call", fn, (args[0],) + tuple(args[1:]), kwargs, _ops.is_random(fn), mutates,
                               node.target))
        elif node.op == "call_function":
            target = node.target
            fn = None
            try:
                fn = table.get(target)
            except TypeError:  # unhashable callables
                fn = None
            if fn is None:
                fn = BY_NAME.get(f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}")
            if fn is None and isinstance(target, type) and issubclass(target, tuple) and hasattr(target, "_fields"):
                fn = _namedtuple(target)
            if fn is None and getattr(target, "__objclass__", None) is torch.Tensor:  # torch.Tensor.add(x, y)
                fn = _ops.METHODS.get(target.__name__)
            if fn is None:
                raise TorchConversionError(
                    f"from_torch: {label}: {_op_name(node)} has no JAX translation; called at "
                    f"{_source_line(node)}. Register a converter for the module that calls it "
                    f"(fl.register_torch_converter({label.rsplit(': ', 1)[1]}, fn)) to write its forward in JAX.")
            mutates = None
            fn_name = getattr(target, "__name__", "")
            if (target in _ops.INPLACE_FUNCTIONS or kwargs.get("inplace") is True
                    or (fn_name.endswith("_") and not fn_name.startswith("_"))):  # torch.relu_, Tensor.add_
                mutates = 0
            kwargs.pop("inplace", None)
            steps.append(_Step("call", fn, args, kwargs, _ops.is_random(fn), mutates, _op_name(node)))
        elif node.op == "output":
            output = args[0]
            steps.append(_Step("output", None, name="output"))
        else:
            raise TorchConversionError(f"from_torch: {label}: unknown torch.fx node kind {node.op!r}.")
    return steps, placeholders, output


_NO_DEFAULT = object()


def _bind(m: Any, path: tuple[str, ...]) -> Any:
    value = m
    for name in path:
        value = getattr(value, name)
    return value


def _run(program: tuple, m: Any, inputs: tuple, kwargs: dict, label: str) -> Any:
    """Interpret one translated graph on the Scope `m` (at JAX trace time)."""
    steps, placeholders, output = program
    env: list = [None] * len(steps)
    positional = list(inputs)
    slot = 0
    for i, step in enumerate(steps):
        kind = step.kind
        if kind == "placeholder":
            name, default = placeholders[slot]
            slot += 1
            if name.startswith("**"):
                env[i] = dict(kwargs)
                kwargs = {}
            elif name.startswith("*"):
                env[i], positional = tuple(positional), []
            elif positional:
                env[i] = positional.pop(0)
            elif name in kwargs:
                env[i] = kwargs.pop(name)
            elif default is not _NO_DEFAULT:
                env[i] = default
            else:
                raise TypeError(f"{label}: forward() missing the argument {name!r}.")
        elif kind == "params":
            env[i] = _get(m._params, step.fn)
        elif kind == "state":
            env[i] = _get(m._state, step.fn)
        elif kind == "const":
            env[i] = step.fn
        elif kind == "module":
            env[i] = _bind(m, step.fn)(*_fill(step.args, env), **_fill(step.kwargs, env))
        elif kind == "call":
            args = _fill(step.args, env)
            kw = _fill(step.kwargs, env)
            if step.random:
                kw["rng"] = m.rng()
            result = step.fn(*args, **kw)
            updates = {}
            if isinstance(result, _ops.Mutation):  # e.g. F.batch_norm's running statistics in training
                for (position, name), value in result.updates.items():
                    updates[step.kwargs.get(name, step.args[position] if position < len(step.args) else None)] = value
                result = result.value
            elif step.mutates is not None:
                updates[step.args[0]] = result
            env[i] = result
            for ref, value in updates.items():  # in place: later readers of the tensor see the new value
                if isinstance(ref, _Ref):
                    env[ref.index] = value
                    if steps[ref.index].kind == "state":  # a buffer: the new value is the new state
                        _set(m._state, steps[ref.index].fn, value)
    if positional or kwargs:
        raise TypeError(f"{label}: forward() got unexpected arguments ({len(positional)} positional, "
                        f"keywords {sorted(kwargs)}).")
    return _fill(output, env)


class _Tracer:
    """torch.fx.Tracer whose leaves are the modules that have a converter; records source lines."""

    def __new__(cls, is_leaf: Callable[[Any], bool], stack_traces: bool):
        import torch

        class Tracer(torch.fx.Tracer):
            def __init__(self):
                super().__init__()
                self.record_stack_traces = stack_traces
                # buffers as graph nodes too: tracing must not run a forward's in-place buffer updates
                # (`self.num_batches_tracked.add_(1)`) on the real tensors, but record them
                self.proxy_buffer_attributes = True

            def is_leaf_module(self, m, module_qualified_name):
                return is_leaf(m)

            def call_module(self, m, forward, args, kwargs):
                try:
                    return super().call_module(m, forward, args, kwargs)
                except Exception as err:  # the innermost traced-through module names the failure
                    if not hasattr(err, "_funclayers_module"):
                        err._funclayers_module = (self.path_of_module(m), type(m).__name__)
                    raise

        return Tracer()


def _label(path: str, qualname: str, cls_name: str) -> str:
    full = ".".join(p for p in (path, qualname) if p)
    return f"{full or '(root)'}: {cls_name}"


def _trace(module: Any, is_leaf: Callable[[Any], bool], path: str, stack_traces: bool = False) -> Any:
    """The fx graph of the module's forward; the tracer's constants are removed from the module afterwards.

    Without `stack_traces` (torch's stack summaries are most of the tracing time) the nodes know no
    source line; a graph with an untranslatable op is traced again with them, for the error message."""
    before = set(vars(module))
    tracer = _Tracer(is_leaf, stack_traces)
    try:
        graph = tracer.trace(module)
    except Exception as err:  # torch.fx's TraceError, or any Python error the forward hits on proxies
        qualname, cls_name = getattr(err, "_funclayers_module", ("", type(module).__name__))
        reason = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        raise TorchConversionError(
            f"from_torch: {_label(path, qualname, cls_name)}: its forward cannot be traced symbolically with "
            f"torch.fx ({reason}); this happens with control flow that depends on tensor values. Mark it as a "
            f"leaf with fl.register_torch_converter({cls_name}, fn), where fn(module, convert) returns "
            f"convert.composite(forward) with its forward written in JAX.") from err
    constants = {name: getattr(module, name) for name in set(vars(module)) - before}
    for name in constants:
        delattr(module, name)
    return graph, constants


def _members(module: Any, prefix: str, convert: Callable[..., Layer], is_leaf: Callable[[Any], bool]) -> dict:
    """The module's own parameters, persistent buffers and children, nested as its state_dict."""
    members: dict[str, Layer] = {}
    for name, value in module._parameters.items():
        if value is not None:
            members[name] = Parameter(_to_value(value, None, name))
    for name, value in module._buffers.items():
        if value is not None and name not in module._non_persistent_buffers_set:
            members[name] = Buffer(_to_value(value, None, name))
    for name, child in module._modules.items():
        if child is None:
            continue
        qualname = f"{prefix}{name}"
        if is_leaf(child):
            members[name] = convert(child, qualname)
        else:
            members[name] = ModuleDict(_members(child, f"{qualname}.", convert, is_leaf))
    return members


def _program(module: Any, is_leaf: Callable[[Any], bool], path: str, is_param: Callable[[str], str | None],
             stack_traces: bool) -> tuple:
    graph, constants = _trace(module, is_leaf, path, stack_traces)
    for name, value in constants.items():
        setattr(module, name, value)
    try:
        return _translate_graph(graph, module, path, is_param), str(graph)
    finally:
        for name in constants:
            delattr(module, name)


def graph_layer(module: Any, path: str, convert: Callable[..., Layer], is_leaf: Callable[[Any], bool]) -> Layer:
    """The funclayers layer of a module without a converter: its traced forward over its converted members."""
    members = _members(module, "", convert, is_leaf)
    param_names = {name for name, _ in module.named_parameters(remove_duplicate=False)}
    state_names = set(module.state_dict().keys()) - param_names

    def is_param(target: str) -> str | None:
        return "params" if target in param_names else "state" if target in state_names else None

    was_training = {m: m.training for m in module.modules()}
    programs = {}
    texts = {}
    try:
        for mode in (True, False):
            module.train(mode)
            try:
                programs[mode], texts[mode] = _program(module, is_leaf, path, is_param, stack_traces=False)
            except TorchConversionError:
                _program(module, is_leaf, path, is_param, stack_traces=True)  # raises, naming the source line
                raise
    finally:
        for m, flag in was_training.items():
            m.training = flag
    if texts[True] == texts[False]:
        programs[True] = programs[False]

    def forward(m, *inputs, **kwargs):
        return _run(programs[bool(m.training)], m, inputs, kwargs, label)

    label = _label(path, "", type(module).__name__)

    forward.__name__ = type(module).__name__
    return Module(forward, **members)


__all__ = ["graph_layer"]
