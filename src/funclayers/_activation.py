"""Element-wise activations, piecewise-linear (torch.nn.modules.activation): ReLU, ReLU6, Hardtanh,
Threshold, Hardsigmoid, Hardswish, Hardshrink, Softshrink; and the helpers the activation family shares.

The leaky ReLUs (LeakyReLU, PReLU, RReLU) live in `_activation_leaky.py`, smooth activations (ELU
family, GELU, SiLU, Mish, Softplus, ...) in `_activation_smooth.py`, softmax and friends in
`_softmax.py`. Each op reproduces torch's CPU kernel: the same formula, the same branch at the break
points (so gradients at 0, +-3, +-lambd match torch's backward), NaN propagation, and float16/bfloat16
computed in float32 and rounded once (torch's "opmath").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._layer import Layer, no_params
from ._utils import DEFAULT_DTYPE, check_floating

_HALF = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


# -- helpers shared by the family ---------------------------------------------------------------------


def _floating(who: str, input: Any) -> jax.Array:
    """The input of an op torch implements for floating types only (TypeError otherwise)."""
    check_floating(who, input)
    return jnp.asarray(input)


def _promoted(input: Any) -> jax.Array:
    """The input of an op torch promotes to the default float dtype (sigmoid, tanh, softsign ...)."""
    x = jnp.asarray(input)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(DEFAULT_DTYPE)


def _opmath(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """Compute float16/bfloat16 inputs in float32 and round the result once, as torch's kernels do."""

    @functools.wraps(fn)
    def wrapped(x: jax.Array, *args: Any) -> jax.Array:
        if x.dtype in _HALF:
            return fn(x.astype(jnp.float32), *args).astype(x.dtype)
        return fn(x, *args)

    return wrapped


def _nonpositive(x: jax.Array) -> jax.Array:
    """x where x <= 0, else 0: feeds exp/expm1 in the negative branch without overflow (or NaN grads)."""
    return jnp.where(x > 0, jnp.zeros((), x.dtype), x)


def _const(value: float, x: jax.Array) -> jax.Array:
    return jnp.asarray(value, x.dtype)


def _inplace_repr(inplace: bool, sep: str = ", ") -> str:
    return f"{sep}inplace=True" if inplace else ""


def _layer(name: str, op: Callable[[jax.Array], jax.Array]) -> Layer:
    """A parameter-free activation layer whose forward is `op(input)`."""

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return op(input), state

    return Layer(no_params, apply, name)


# -- the pure ops: piecewise-linear -----------------------------------------------------------------


def threshold(input: Any, threshold: float, value: float, inplace: bool = False) -> jax.Array:
    """`value` where input <= threshold, else input; torch.nn.functional.threshold (integers allowed).

    Args:
      input: the input array, any shape, integer or floating.
      threshold: elements <= threshold are replaced.
      value: what replaces them.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.threshold(jnp.array([-2.0, -0.5, 0.0, 1.5]), 0.5, -1.0)
      Array([-1. , -1. , -1. ,  1.5], dtype=float32)
    """
    del inplace
    x = jnp.asarray(input)
    return jnp.where(x <= threshold, _const(value, x), x)


_threshold = threshold  # the Threshold layer's argument shadows the op's name


def relu(input: Any, inplace: bool = False) -> jax.Array:
    """max(0, x), NaN kept, gradient 0 at 0; torch.nn.functional.relu (integers allowed).

    Args:
      input: the input array, any shape, integer or floating.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.relu(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([0. , 0. , 0. , 1.5], dtype=float32)
    """
    del inplace
    x = jnp.asarray(input)
    # lax.select rather than jnp.where: the same HLO without a nested jit to trace (a ResNet step
    # calls relu and its derivative dozens of times)
    return jax.lax.select(x <= 0, jnp.zeros_like(x), x)


def _hardtanh(x: jax.Array, min_val: float, max_val: float) -> jax.Array:
    # torch's hardtanh_backward passes the gradient only strictly inside (min_val, max_val).
    return jnp.where(x <= min_val, _const(min_val, x), jnp.where(x >= max_val, _const(max_val, x), x))


def hardtanh(input: Any, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> jax.Array:
    """x clipped to [min_val, max_val]; torch.nn.functional.hardtanh (integers allowed).

    Args:
      input: the input array, any shape, integer or floating.
      min_val: the lower end of the clipping range, default -1.
      max_val: the upper end, default 1; min_val must not exceed max_val.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.hardtanh(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-1. , -0.5,  0. ,  1. ], dtype=float32)
    """
    del inplace
    if min_val > max_val:
        raise ValueError(
            f"hardtanh: min_val cannot be greater than max_val (min_val={min_val}, max_val={max_val})."
        )
    return _hardtanh(jnp.asarray(input), min_val, max_val)


def relu6(input: Any, inplace: bool = False) -> jax.Array:
    """min(max(0, x), 6); torch.nn.functional.relu6.

    Args:
      input: the input array, any shape.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.relu6(jnp.array([-2.0, -0.5, 0.0, 1.5, 8.0]))
      Array([0. , 0. , 0. , 1.5, 6. ], dtype=float32)
    """
    del inplace
    return _hardtanh(jnp.asarray(input), 0.0, 6.0)


def hardsigmoid(input: Any, inplace: bool = False) -> jax.Array:
    """0 below -3, 1 above 3, (x + 3) / 6 between; torch.nn.functional.hardsigmoid.

    Args:
      input: the input array, any shape, floating.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.hardsigmoid(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([0.16666667, 0.4166667 , 0.5       , 0.75      ], dtype=float32)
    """
    del inplace
    x = _floating("hardsigmoid", input)
    return _hardsigmoid(x)


@jax.custom_jvp
def _hardsigmoid(x: jax.Array) -> jax.Array:
    return jnp.where(x <= -3, _const(0, x), jnp.where(x >= 3, _const(1, x), (x + 3) / 6))


@_hardsigmoid.defjvp
def _hardsigmoid_jvp(primals, tangents):
    # torch's hardsigmoid_backward multiplies by the float32 constant 1/6 for every dtype (float64
    # too) and passes the gradient only strictly inside (-3, 3).
    (x,), (dx,) = primals, tangents
    slope = jnp.where((x > -3) & (x < 3), _const(float(np.float32(1 / 6)), x), _const(0, x))
    return _hardsigmoid(x), slope * dx


def hardswish(input: Any, inplace: bool = False) -> jax.Array:
    """x * hardsigmoid(x); torch.nn.functional.hardswish (gradient x/3 + 1/2 on (-3, 3), as torch).

    Args:
      input: the input array, any shape, floating.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.hardswish(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.33333334, -0.20833334,  0.        ,  1.125     ], dtype=float32)
    """
    del inplace
    x = _floating("hardswish", input)
    # x * 0 below -3 keeps torch's NaN for -inf; the branches at +-3 are torch's backward's.
    return jnp.where(x <= -3, x * 0, jnp.where(x < 3, x * (x + 3) / 6, x))


def hardshrink(input: Any, lambd: float = 0.5) -> jax.Array:
    """0 on [-lambd, lambd], x elsewhere; torch.nn.functional.hardshrink.

    Args:
      input: the input array, any shape, floating.
      lambd: half-width of the band set to 0, default 0.5.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.hardshrink(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-2. ,  0. ,  0. ,  1.5], dtype=float32)
    """
    x = _floating("hardshrink", input)
    return jnp.where((x >= -lambd) & (x <= lambd), _const(0, x), x)


def _check_softshrink(who: str, lambd: float) -> None:
    if not lambd >= 0:
        raise ValueError(
            f"{who}: lambda must be in range [0, inf) (torch: lambda must be greater or equal to 0), "
            f"but found to be {lambd}."
        )


def softshrink(input: Any, lambd: float = 0.5) -> jax.Array:
    """x - lambd above lambd, x + lambd below -lambd, 0 between; torch.nn.functional.softshrink.

    Args:
      input: the input array, any shape, floating.
      lambd: the shrinkage, >= 0, default 0.5.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.softshrink(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-1.5, -0. ,  0. ,  1. ], dtype=float32)
    """
    _check_softshrink("softshrink", lambd)
    x = _floating("softshrink", input)
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, x * 0))


# -- the layers ----------------------------------------------------------------------------------------


def Threshold(threshold: float, value: float, inplace: bool = False) -> Layer:
    """`value` where x <= threshold, else x; torch.nn.Threshold.

    Args:
      threshold: elements <= threshold are replaced.
      value: what replaces them.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.Threshold(-1.0, 20.0).apply({}, {}, x)
      >>> y
      Array([20. , -0.5,  0. ,  1.5], dtype=float32)
    """
    return _layer(
        f"Threshold(threshold={threshold}, value={value}{_inplace_repr(inplace)})",
        lambda x: _threshold(x, threshold, value),
    )


def ReLU(inplace: bool = False) -> Layer:
    """max(0, x); torch.nn.ReLU.

    Args:
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.ReLU().apply({}, {}, jnp.array([-2.0, -0.5, 0.0, 1.5]))
      >>> y
      Array([0. , 0. , 0. , 1.5], dtype=float32)
    """
    layer = _layer(f"ReLU({_inplace_repr(inplace, '')})", relu)
    layer.apply._layout = _relu_layout
    return layer


def _relu_layout(params, state, value, layout, training):
    """`_layout.py`: ReLU keeps any internal layout (elementwise)."""
    del params, training
    return None if layout is None else (relu(value), layout, state)


def Hardtanh(
    min_val: float = -1.0,
    max_val: float = 1.0,
    inplace: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
) -> Layer:
    """x clipped to [min_val, max_val]; torch.nn.Hardtanh.

    Args:
      min_val: the lower end of the clipping range, default -1.
      max_val: the upper end, default 1; it must exceed min_val.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.
      min_value: deprecated alias of min_val; wins when given. Default: None.
      max_value: deprecated alias of max_val; wins when given. Default: None.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.Hardtanh(-2, 2).apply({}, {}, jnp.array([-3.0, 1.0, 3.0]))
      >>> y
      Array([-2.,  1.,  2.], dtype=float32)
    """
    min_val = min_val if min_value is None else min_value
    max_val = max_val if max_value is None else max_value
    if max_val <= min_val:
        raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
    return _layer(
        f"Hardtanh(min_val={min_val}, max_val={max_val}{_inplace_repr(inplace)})",
        lambda x: _hardtanh(jnp.asarray(x), min_val, max_val),
    )


def ReLU6(inplace: bool = False) -> Layer:
    """min(max(0, x), 6); torch.nn.ReLU6.

    Args:
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.ReLU6().apply({}, {}, jnp.array([-2.0, -0.5, 0.0, 1.5, 8.0]))
      >>> y
      Array([0. , 0. , 0. , 1.5, 6. ], dtype=float32)
    """
    return _layer(f"ReLU6({_inplace_repr(inplace, '')})", relu6)


def Hardsigmoid(inplace: bool = False) -> Layer:
    """Piecewise-linear sigmoid: clip((x + 3) / 6, 0, 1); torch.nn.Hardsigmoid.

    Args:
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.Hardsigmoid().apply({}, {}, jnp.array([-4.0, 0.0, 1.5, 4.0]))
      >>> y
      Array([0.  , 0.5 , 0.75, 1.  ], dtype=float32)
    """
    del inplace
    return _layer("Hardsigmoid()", hardsigmoid)


def Hardswish(inplace: bool = False) -> Layer:
    """x * clip((x + 3) / 6, 0, 1); torch.nn.Hardswish.

    Args:
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.Hardswish().apply({}, {}, jnp.array([-4.0, 0.0, 1.5, 4.0]))
      >>> y
      Array([-0.   ,  0.   ,  1.125,  4.   ], dtype=float32)
    """
    del inplace
    return _layer("Hardswish()", hardswish)


def Hardshrink(lambd: float = 0.5) -> Layer:
    """0 on [-lambd, lambd], x elsewhere; torch.nn.Hardshrink.

    Args:
      lambd: half-width of the band set to 0, default 0.5.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.Hardshrink(1.0).apply({}, {}, jnp.array([-2.0, -0.5, 0.0, 1.5]))
      >>> y
      Array([-2. ,  0. ,  0. ,  1.5], dtype=float32)
    """
    return _layer(f"Hardshrink({lambd})", lambda x: hardshrink(x, lambd))


def Softshrink(lambd: float = 0.5) -> Layer:
    """x - lambd above lambd, x + lambd below -lambd, 0 between; torch.nn.Softshrink.

    Args:
      lambd: the shrinkage, >= 0, default 0.5.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.Softshrink(1.0).apply({}, {}, jnp.array([-2.0, -0.5, 0.0, 1.5]))
      >>> y
      Array([-1. , -0. ,  0. ,  0.5], dtype=float32)
    """
    name = f"Softshrink({lambd})"
    _check_softshrink(name, lambd)
    return _layer(name, lambda x: softshrink(x, lambd))


__all__ = [
    "Threshold",
    "ReLU",
    "Hardtanh",
    "ReLU6",
    "Hardsigmoid",
    "Hardswish",
    "Hardshrink",
    "Softshrink",
    "threshold",
    "relu",
    "hardtanh",
    "relu6",
    "hardsigmoid",
    "hardswish",
    "hardshrink",
    "softshrink",
]
