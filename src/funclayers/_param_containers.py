"""torch.nn.ParameterList and torch.nn.ParameterDict: containers of bare parameters.

Each entry is a `fl.Parameter` child, so params are keyed "0", "1", ... (or by the dict's keys)
exactly as torch's `state_dict` keys them, and inside a composite's forward `m.plist[0]` /
`m.pdict["scale"]` is the array itself. Like torch's, neither has a forward.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from ._layer import Layer, Parameter, _container_apply, _init_children, _named_children


def _as_parameter(value: Any) -> Layer:
    if isinstance(value, Layer):
        if value.name != "Parameter":
            raise TypeError(f"a parameter container holds arrays (or fl.Parameter), got the layer {value.name}.")
        return value
    return Parameter(value)


def ParameterList(values: Iterable[Any] | None = None) -> Layer:
    """Holds parameters under the names "0", "1", ...; torch.nn.ParameterList.

    Args:
      values: an iterable (default none) of arrays, functions of a PRNG key returning the initial
        array, or `fl.Parameter`s; named "0", "1", ... in order.

    Shape: no forward; `init` returns each array unchanged (or what its function returns).

    Example:
      >>> plist = fl.ParameterList([jnp.ones(2), jnp.zeros(3)])
      >>> params, state = plist.init(jax.random.PRNGKey(0))
      >>> params
      {'0': Array([1., 1.], dtype=float32), '1': Array([0., 0., 0.], dtype=float32)}
      >>> net = fl.Module(lambda m, x: x * m.scales[0], scales=plist)   # m.scales[0]: the array
      >>> net.apply(*net.init(jax.random.PRNGKey(0)), jnp.array([2.0, 3.0]))[0]
      Array([2., 3.], dtype=float32)
    """
    children = _named_children(tuple(_as_parameter(v) for v in (values or ())), "ParameterList")
    return Layer(_init_children(children), _container_apply("ParameterList"), "ParameterList", children)


def ParameterDict(parameters: Any = None) -> Layer:
    """Holds parameters under given names; torch.nn.ParameterDict.

    Args:
      parameters: a mapping, or an iterable of (name, value) pairs (default none), of arrays,
        functions of a PRNG key returning the initial array, or `fl.Parameter`s; kept in order.

    Shape: no forward; `init` returns each array unchanged (or what its function returns).

    Example:
      >>> pdict = fl.ParameterDict({"scale": jnp.full(2, 3.0), "shift": jnp.ones(2)})
      >>> net = fl.Module(lambda m, x: x * m.affine["scale"] + m.affine["shift"], affine=pdict)
      >>> params, state = net.init(jax.random.PRNGKey(0))
      >>> sorted(params["affine"])
      ['scale', 'shift']
      >>> net.apply(params, state, jnp.array([1.0, 2.0]))[0]
      Array([4., 7.], dtype=float32)
    """
    items = parameters.items() if isinstance(parameters, Mapping) else (parameters or ())
    children = _named_children((OrderedDict((str(k), _as_parameter(v)) for k, v in items),), "ParameterDict")
    return Layer(_init_children(children), _container_apply("ParameterDict"), "ParameterDict", children)


__all__ = ["ParameterList", "ParameterDict"]
