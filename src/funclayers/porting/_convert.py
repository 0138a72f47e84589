"""torch interop: a live `torch.nn.Module` tree to a funclayers layer with its params and state, in one call.

    layer, params, state = fl.from_torch(torch_model)

The recursion: a module with a converter (a user's, registered with `register_torch_converter`,
which takes precedence; or a torch.nn class of `_modules.py`'s table) becomes that funclayers
layer, built with the constructor arguments read back from the module's attributes; any other
module is traced with torch.fx (`_graph.py`), the modules with converters kept as leaves, torch's
containers traced through. Names nest as the `state_dict`, so `fl.state_dict(params, state)` is
the torch `state_dict`. A forward that cannot be traced or an op without translation raises
`TorchConversionError` naming the module's path in the tree (`features.3: MyBlock`).

torch is imported here only when a function runs: `import funclayers` never imports it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax

from .._interop import load_state_dict
from .._layer import Buffer, Layer, Parameter
from .._module import Module
from ._errors import TorchConversionError
from ._graph import graph_layer
from ._modules import builtin_converter
from ._values import _float_dtype, _to_value, dtype_of  # noqa: F401  (re-exported for converters)

Converter = Callable[[Any, Callable[..., Layer]], Layer]

_USER_CONVERTERS: dict[type, Converter] = {}


def register_torch_converter(torch_class: type, fn: Converter | None = None) -> Any:
    """Teach `from_torch` a torch module class: `fn(module, convert) -> Layer`.

    `fn` receives the live torch module and a `convert` callback that converts one of its
    children (`convert(module.conv1)`), and returns a funclayers layer whose params and state
    are named as the module's `state_dict` (usually `fl.Module(forward, conv1=convert(module.conv1), ...)`).
    `convert` also has helpers: `convert.children()` (all named children, converted),
    `convert.parameter(name)` / `convert.buffer(name)` (the module's own tensors as `fl.Parameter` /
    `fl.Buffer`), and `convert.composite(forward)`, which is `fl.Module(forward, ...)` over all of
    them: `fl.register_torch_converter(MyBlock, lambda module, convert: convert.composite(forward))`.
    A registration covers subclasses of `torch_class` too, and takes precedence over the
    built-in conversion of torch.nn's own classes. Usable as a decorator:
    `@fl.register_torch_converter(MyBlock)`.

    Args:
      torch_class: a `torch.nn.Module` subclass.
      fn: the converter; omit it to get a decorator. Default: None.

    Returns: `fn` (or the decorator).

    Example:
      >>> # A torchvision-style BasicBlock, written by the user in both frameworks
      >>> import jax, jax.numpy as jnp, torch
      >>> from torch import nn
      >>> class BasicBlock(nn.Module):                 # torch: conv-bn-relu-conv-bn + identity
      ...     def __init__(self, inplanes, planes, stride=1):
      ...         super().__init__()
      ...         self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
      ...         self.bn1 = nn.BatchNorm2d(planes)
      ...         self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
      ...         self.bn2 = nn.BatchNorm2d(planes)
      ...         self.downsample = None
      ...         if stride != 1 or inplanes != planes:
      ...             self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
      ...                                             nn.BatchNorm2d(planes))
      ...     def forward(self, x):
      ...         out = torch.relu(self.bn1(self.conv1(x)))
      ...         out = self.bn2(self.conv2(out))
      ...         return torch.relu(out + (x if self.downsample is None else self.downsample(x)))
      >>> def basic_block_forward(m, x):               # funclayers: the same forward, on a Scope
      ...     out = jax.nn.relu(m.bn1(m.conv1(x)))
      ...     out = m.bn2(m.conv2(out))
      ...     return jax.nn.relu(out + (m.downsample(x) if "downsample" in m else x))
      >>> @fl.register_torch_converter(BasicBlock)
      ... def convert_basic_block(module, convert):
      ...     return fl.Module(basic_block_forward, **convert.children())
      >>> torch_net = nn.Sequential(BasicBlock(3, 8, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
      >>> net, params, state = fl.from_torch(torch_net)
      >>> sorted(params["0"])
      ['bn1', 'bn2', 'conv1', 'conv2', 'downsample']
      >>> out, _ = net.apply(params, state, jnp.ones((1, 3, 8, 8), jnp.float32))
      >>> bool(jnp.allclose(out, torch_net(torch.ones(1, 3, 8, 8)).detach().numpy(), atol=1e-5))
      True
    """
    if not isinstance(torch_class, type):
        raise TypeError(f"register_torch_converter: torch_class must be a class (a torch.nn.Module subclass), "
                        f"got {torch_class!r}.")

    def register(fn: Converter) -> Converter:
        if not callable(fn):
            raise TypeError(f"register_torch_converter: the converter for {torch_class.__name__} must be callable "
                            f"as fn(module, convert) -> Layer, got {fn!r}.")
        _USER_CONVERTERS[torch_class] = fn
        return fn

    return register if fn is None else register(fn)


def unregister_torch_converter(torch_class: type) -> None:
    """Forget a converter registered with `register_torch_converter` (no error if there is none).

    Args:
      torch_class: the class given to `register_torch_converter`.

    Example:
      >>> # Any class registers; a stand-in here for a torch.nn.Module subclass
      >>> class MyBlock:
      ...     pass
      >>> @fl.register_torch_converter(MyBlock)
      ... def convert_my_block(module, convert):
      ...     return convert.composite(lambda m, x: m.proj(x))
      >>> fl.unregister_torch_converter(MyBlock)   # from_torch no longer converts MyBlock
      >>> fl.unregister_torch_converter(MyBlock)   # forgetting an unknown class is no error
    """
    _USER_CONVERTERS.pop(torch_class, None)


def _path_label(path: str) -> str:
    return path if path else "(root)"


class _Converter:
    """Converts one module at `path`; `convert(child)` (the callback user converters get) recurses."""

    def __init__(self, module: Any, path: str):
        self.module, self.path = module, path

    def child_path(self, child: Any, name: str | None) -> str:
        if name is None:
            for child_name, candidate in self.module.named_children():
                if candidate is child:
                    name = child_name
                    break
            else:
                name = f"<{type(child).__name__} not a child of {type(self.module).__name__}>"
        return f"{self.path}.{name}" if self.path else str(name)

    def __call__(self, child: Any, name: str | None = None) -> Layer:
        """Convert `child`, a submodule of the module being converted (`name` defaults to its attribute name)."""
        return _convert(child, self.child_path(child, name))

    def children(self) -> dict[str, Layer]:
        """The module's named children, converted, in torch's registration order."""
        return {name: self(child, name) for name, child in self.module.named_children()}

    def parameter(self, name: str) -> Layer:
        """`fl.Parameter` holding the module's own parameter `name` (e.g. a `cls_token`)."""
        return Parameter(_to_value(self.module._parameters[name], self, name))

    def buffer(self, name: str) -> Layer:
        """`fl.Buffer` holding the module's own persistent buffer `name`."""
        return Buffer(_to_value(self.module._buffers[name], self, name))

    def composite(self, forward: Callable[..., Any]) -> Layer:
        """`fl.Module(forward, ...)` over the module's own parameters, persistent buffers and converted
        children, under their torch names: the usual converter of a user's torch module class.

        Non-persistent buffers are not in torch's `state_dict`; a forward that needs one closes over it.
        """
        members: dict[str, Layer] = {}
        for name, value in self.module._parameters.items():
            if value is not None:
                members[name] = self.parameter(name)
        for name, value in self.module._buffers.items():
            if value is not None and name not in self.module._non_persistent_buffers_set:
                members[name] = self.buffer(name)
        members.update(self.children())
        return Module(forward, **members)

    def error(self, what: str) -> TorchConversionError:
        return TorchConversionError(f"from_torch: {_path_label(self.path)}: {type(self.module).__name__}: {what}")


def _lookup(module: Any) -> Converter | None:
    for cls in type(module).__mro__:
        if cls in _USER_CONVERTERS:
            return _USER_CONVERTERS[cls]
    return builtin_converter(type(module))


_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


def _is_leaf(module: Any) -> bool:
    """Whether a traced forward keeps the module as one call (a converted layer) rather than tracing into it:
    modules with a converter, except torch's containers, traced through so that a model needs few traces."""
    import torch

    cls = type(module)
    if cls.__name__ in _CONTAINERS and cls is getattr(torch.nn, cls.__name__):
        return any(cls in _USER_CONVERTERS for cls in cls.__mro__)
    return _weight_wrapper(module) is not None or _lookup(module) is not None


def _weight_wrapper(module: Any) -> Callable | None:
    """fl.utils' converter for a module that torch.nn.utils wraps (parametrizations, or the old API's
    weight_norm / spectral_norm hooks), or None. Checked before the class table: torch's
    `ParametrizedLinear` subclasses `Linear`, which would otherwise convert without its parametrization."""
    from ..utils import _from_torch as utils_from_torch

    if utils_from_torch.is_parametrized_module(module):
        return utils_from_torch.convert_parametrized
    if utils_from_torch.uses_hook_norms(module):
        return utils_from_torch.convert_hook_norms
    return None


def _warn_hooks(module: Any, path: str) -> None:
    hooks = [kind for kind in ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks", "_backward_pre_hooks")
             if getattr(module, kind, None)]
    if hooks:
        warnings.warn(f"from_torch: {_path_label(path)}: {type(module).__name__} has hooks ({', '.join(hooks)}) "
                      f"that the funclayers layer does not run (e.g. torch.nn.utils.weight_norm's); its output may "
                      f"differ.", stacklevel=4)


def _convert(module: Any, path: str) -> Layer:
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TorchConversionError(f"from_torch: {_path_label(path)}: expected a torch.nn.Module, got "
                                   f"{type(module).__name__}.")
    wrapper = _weight_wrapper(module)
    if wrapper is not None:  # the wrapped module, converted plain, under fl.utils' twin of the wrapper
        return wrapper(module, lambda plain: _convert(plain, path))
    fn = _lookup(module)
    cls = type(module)
    if cls.__name__.startswith("Lazy") and getattr(torch.nn, cls.__name__, None) is cls:  # fl.Lazy* exist now
        raise TorchConversionError(f"from_torch: {_path_label(path)}: {cls.__name__} has not inferred its shapes "
                                   f"yet; run one forward pass in torch first (it then becomes "
                                   f"{cls.__name__.removeprefix('Lazy')}), and convert after.")
    if fn is None:
        # no converter: the module's own forward, traced with torch.fx (its converted children as leaves)
        layer = graph_layer(module, path, _Converter(module, path), _is_leaf)
        _warn_hooks(module, path)
        return layer
    _warn_hooks(module, path)
    layer = fn(module, _Converter(module, path))
    if not isinstance(layer, Layer):
        raise TorchConversionError(f"from_torch: {_path_label(path)}: the converter for {cls.__name__} returned "
                                   f"{type(layer).__name__}, not a funclayers Layer.")
    return layer


def torch_to_layer(module: Any) -> Layer:
    """The funclayers layer twin of a torch module tree, without its weights (see `from_torch`).

    Args:
      module: a `torch.nn.Module` (its classes converted as `from_torch` does, registered
        converters included).

    Raises:
      TorchConversionError: a submodule funclayers cannot convert, named by its path.

    Example:
      >>> import torch
      >>> fl.torch_to_layer(torch.nn.Linear(3, 2))
      Linear(in_features=3, out_features=2, bias=True)
    """
    return _convert(module, "")


def from_torch(module: Any, *, strict: bool = True) -> tuple[Layer, Any, Any]:
    """Convert a live torch module (a whole model) into a funclayers layer, its params and its state.

    Every submodule of a class funclayers covers, or registered with
    `fl.register_torch_converter`, becomes that funclayers layer, built with the constructor
    arguments read from the module's attributes. Any other module (a model's own `nn.Module`
    subclasses: torchvision's and timm's models, yours) is traced with `torch.fx` and its forward
    code becomes JAX with torch's semantics (broadcasting, dtype promotion, `dim`/`keepdim`, `-1`
    in shapes, in-place ops made functional), the covered modules kept whole inside it. Params
    and state are the module's `state_dict` (parameters a custom module owns directly included),
    loaded with `fl.load_state_dict`. `apply(..., training=False)` is torch's `eval()`,
    `training=True` its `train()` (dropout and stochastic depth then draw from `rng=`); the
    module's own `.training` flag is not read. torch is not used when the layer runs.
    `fl.state_dict(params, state)` loads back into the module with `load_state_dict(strict=True)`.

    Args:
      module: a `torch.nn.Module`.
      strict: passed to `fl.load_state_dict` (keep True: the names must match exactly). Default: True.

    Returns: `(layer, params, state)`; floating arrays keep the module's dtypes (float64
      needs `jax_enable_x64`).

    Shape: params and state hold the module's `state_dict` tensors as JAX arrays of the same
      shapes; the layer takes and returns what the module does (tensors, tuples, lists, dicts,
      namedtuples).

    Raises:
      TorchConversionError (a TypeError): an op of a traced forward has no JAX translation (the
        message names the op, the module's path in the tree, e.g. `features.3: MyBlock`, and the
        source line that called it), or a forward cannot be traced (control flow on tensor
        values: register a converter for that class, which then is a leaf).

    Example:
      >>> import jax.numpy as jnp, torch
      >>> class Residual(torch.nn.Module):              # a model's own module: its forward is traced
      ...     def __init__(self):
      ...         super().__init__()
      ...         self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
      ...         self.gamma = torch.nn.Parameter(torch.full((8, 1, 1), 0.5))
      ...     def forward(self, x):
      ...         return x + self.gamma * torch.relu(self.conv(x))
      >>> torch_model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), Residual())
      >>> layer, params, state = fl.from_torch(torch_model)
      >>> sorted(params["2"])
      ['conv', 'gamma']
      >>> x = jnp.ones((1, 3, 16, 16), jnp.float32)
      >>> y, _ = layer.apply(params, state, x)
      >>> bool(jnp.allclose(y, torch_model.eval()(torch.ones(1, 3, 16, 16)).detach().numpy(), atol=1e-5))
      True
      >>> y, state = layer.apply(params, state, x, training=True)
      >>> torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in fl.state_dict(params, state).items()})
      <All keys matched successfully>
    """
    sd = module.state_dict()
    if not jax.config.jax_enable_x64 and any(str(v.dtype) == "torch.float64" for v in sd.values()):
        warnings.warn("from_torch: the torch module holds float64 tensors but jax_enable_x64 is off, so its "
                      "params and buffers become float32; enable it first (jax.config.update("
                      "'jax_enable_x64', True)) to keep float64.", stacklevel=2)
    layer = torch_to_layer(module)
    params, state = load_state_dict(layer, sd, strict=strict)
    return layer, params, state


__all__ = ["from_torch", "register_torch_converter", "unregister_torch_converter", "torch_to_layer",
           "TorchConversionError"]
