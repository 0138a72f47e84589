"""Element-wise activations, piecewise-linear (torch.nn.modules.activation): ReLU, ReLU6, Hardtanh,
LeakyReLU, PReLU, RReLU, Threshold, Hardsigmoid, Hardswish, Hardshrink, Softshrink; and the helpers
the activation family shares.

Smooth activations (ELU family, GELU, SiLU, Mish, Softplus, ...) live in `_activation_smooth.py`,
softmax and friends in `_softmax.py`. Each op reproduces torch's CPU kernel: the same formula, the
same branch at the break points (so gradients at 0, +-3, +-lambd match torch's backward), NaN
propagation, and float16/bfloat16 computed in float32 and rounded once (torch's "opmath").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._layer import Layer, no_params
from ._utils import (
    DEFAULT_DTYPE,
    TorchRuntimeError,
    cast_like,
    check_floating,
    fmt_shape,
    param_dtype,
    require_rng,
)

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

    Example:
      >>> F.relu6(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([0. , 0. , 0. , 1.5], dtype=float32)
    """
    del inplace
    return _hardtanh(jnp.asarray(input), 0.0, 6.0)


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> jax.Array:
    """x if x > 0 else negative_slope * x; torch.nn.functional.leaky_relu.

    Example:
      >>> F.leaky_relu(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.02 , -0.005,  0.   ,  1.5  ], dtype=float32)
    """
    del inplace
    x = _floating("leaky_relu", input)
    return jnp.where(x > 0, x, x * negative_slope)


def hardsigmoid(input: Any, inplace: bool = False) -> jax.Array:
    """0 below -3, 1 above 3, (x + 3) / 6 between; torch.nn.functional.hardsigmoid.

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

    Example:
      >>> F.softshrink(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-1.5, -0. ,  0. ,  1. ], dtype=float32)
    """
    _check_softshrink("softshrink", lambd)
    x = _floating("softshrink", input)
    return jnp.where(x > lambd, x - lambd, jnp.where(x < -lambd, x + lambd, x * 0))


def prelu(input: Any, weight: Any) -> jax.Array:
    """x if x > 0 else a * x, with `a` per channel (dim 1) or shared; torch.nn.functional.prelu.

    Shape: input (*) with weight (1,) or (); input (N, C, *) with weight (C,).

    Example:
      >>> F.prelu(jnp.array([-2.0, -0.5, 0.0, 1.5]), jnp.array([0.25]))
      Array([-0.5  , -0.125,  0.   ,  1.5  ], dtype=float32)
    """
    return _prelu("prelu", input, weight)


def _prelu(who: str, input: Any, weight: Any) -> jax.Array:
    x = _floating(who, input)
    shape, w_shape = x.shape, fmt_shape(weight)
    if len(w_shape) > 1:
        raise TorchRuntimeError(
            f"{who}: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {len(w_shape)}."
        )
    count = math.prod(w_shape)
    (weight,) = cast_like(x, weight)
    if count == 1:
        weight = weight.reshape(())
    else:
        if x.ndim == 0:
            raise TorchRuntimeError(
                f"{who} with {count} parameters needs an input with a channel dimension; "
                f"Not allow zero-dim input tensor (input of shape ())."
            )
        channels = shape[1] if x.ndim > 1 else 1
        if channels != count:
            raise TorchRuntimeError(
                f"{who} expects {count} channels in dim 1 of its input (or num_parameters=1), "
                f"got input of shape {shape} (torch: Mismatch of parameter numbers and input "
                f"channel size. Found parameter numbers = {count} and channel size = "
                f"{channels}.)"
            )
        weight = weight.reshape((1, count) + (1,) * (x.ndim - 2))
    return jnp.where(x > 0, x, weight * x)


def _check_rrelu(who: str, lower: float, upper: float) -> None:
    if lower > upper:
        raise ValueError(
            f"{who}: Lower bound should be less than or equal to the upper bound, got lower={lower}, "
            f"upper={upper}."
        )


def rrelu(
    input: Any,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
    *,
    rng: jax.Array | None = None,
) -> jax.Array:
    """Randomised leaky ReLU; torch.nn.functional.rrelu.

    Training: each x <= 0 is multiplied by a slope drawn from U(lower, upper) (`rng` required unless
    lower == upper). Eval: leaky_relu with slope (lower + upper) / 2.

    Example:
      >>> F.rrelu(jnp.array([-2.0, -0.5, 0.0, 1.5]))   # eval: the mean slope (lower + upper) / 2
      Array([-0.45833334, -0.11458334,  0.        ,  1.5       ], dtype=float32)
    """
    del inplace
    return _rrelu("rrelu", input, lower, upper, training, rng)


def _rrelu(who: str, input: Any, lower: float, upper: float, training: bool, rng: Any) -> jax.Array:
    _check_rrelu(who, lower, upper)
    x = _floating(who, input)
    if not training:
        return jnp.where(x > 0, x, x * ((lower + upper) / 2))
    if lower == upper:
        slope = _const(lower, x)
    else:
        slope = jax.random.uniform(require_rng(who, rng), x.shape, x.dtype, lower, upper)
    return jnp.where(x <= 0, x * slope, x)


# -- the layers ----------------------------------------------------------------------------------------


def Threshold(threshold: float, value: float, inplace: bool = False) -> Layer:
    """`value` where x <= threshold, else x; torch.nn.Threshold. Shape: (*) -> (*).

    Example:
      >>> x = jnp.linspace(-3.0, 3.0, 8).reshape(2, 4)
      >>> y, _ = fl.Threshold(0.1, 20.0).apply({}, {}, x)
    """
    return _layer(
        f"Threshold(threshold={threshold}, value={value}{_inplace_repr(inplace)})",
        lambda x: _threshold(x, threshold, value),
    )


def ReLU(inplace: bool = False) -> Layer:
    """max(0, x); torch.nn.ReLU. `inplace` is accepted and has no effect. Shape: (*) -> (*).

    Example:
      >>> y, _ = fl.ReLU().apply({}, {}, jnp.array([-1.0, 2.0]))   # [0., 2.]
    """
    return _layer(f"ReLU({_inplace_repr(inplace, '')})", relu)


def RReLU(lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> Layer:
    """Randomised leaky ReLU; torch.nn.RReLU. Shape: (*) -> (*).

    Training: slopes for x <= 0 drawn from U(lower, upper) with `rng` (required unless lower == upper).
    Eval: slope (lower + upper) / 2.

    Example:
      >>> x = jnp.linspace(-3.0, 3.0, 8).reshape(2, 4)
      >>> y, _ = fl.RReLU(0.1, 0.3).apply({}, {}, x, rng=jax.random.PRNGKey(0), training=True)
    """
    name = f"RReLU(lower={lower}, upper={upper}{_inplace_repr(inplace)})"
    _check_rrelu(name, lower, upper)

    def apply(params, state, input, *, rng=None, training=False):
        del params
        return _rrelu(name, input, lower, upper, training, rng), state

    return Layer(no_params, apply, name)


def Hardtanh(
    min_val: float = -1.0,
    max_val: float = 1.0,
    inplace: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
) -> Layer:
    """x clipped to [min_val, max_val]; torch.nn.Hardtanh (min_value/max_value: deprecated aliases).

    Shape: (*) -> (*).

    Example:
      >>> x = jnp.linspace(-3.0, 3.0, 8).reshape(2, 4)
      >>> y, _ = fl.Hardtanh(-2, 2).apply({}, {}, x)
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
    """min(max(0, x), 6); torch.nn.ReLU6. Shape: (*) -> (*).

    Example:
      >>> x = jnp.linspace(-3.0, 3.0, 8).reshape(2, 4)
      >>> y, _ = fl.ReLU6().apply({}, {}, x)
    """
    return _layer(f"ReLU6({_inplace_repr(inplace, '')})", relu6)


def Hardsigmoid(inplace: bool = False) -> Layer:
    """Piecewise-linear sigmoid: clip((x + 3) / 6, 0, 1); torch.nn.Hardsigmoid. Shape: (*) -> (*).

    Example:
      >>> x = jnp.linspace(-3.0, 3.0, 8).reshape(2, 4)
      >>> y, _ = fl.Hardsigmoid().apply({}, {}, x)
    """
    del inplace
    return _layer("Hardsigmoid()", hardsigmoid)


def Hardswish(inplace: bool = False) -> Layer:
    """x * clip((x + 3) / 6, 0, 1); torch.nn.Hardswish. Shape: (*) -> (*).

    Example:
      >>> x = jnp.linspace(-3.0, 3.0, 8).reshape(2, 4)
      >>> y, _ = fl.Hardswish().apply({}, {}, x)
    """
    del inplace
    return _layer("Hardswish()", hardswish)


def Hardshrink(lambd: float = 0.5) -> Layer:
    """0 on [-lambd, lambd], x elsewhere; torch.nn.Hardshrink. Shape: (*) -> (*).

    Example:
      >>> x = jnp.linspace(-3.0, 3.0, 8).reshape(2, 4)
      >>> y, _ = fl.Hardshrink(0.5).apply({}, {}, x)
    """
    return _layer(f"Hardshrink({lambd})", lambda x: hardshrink(x, lambd))


def LeakyReLU(negative_slope: float = 1e-2, inplace: bool = False) -> Layer:
    """x if x > 0 else negative_slope * x; torch.nn.LeakyReLU. Shape: (*) -> (*).

    Example:
      >>> x = jnp.linspace(-3.0, 3.0, 8).reshape(2, 4)
      >>> y, _ = fl.LeakyReLU(0.1).apply({}, {}, x)
    """
    return _layer(
        f"LeakyReLU(negative_slope={negative_slope}{_inplace_repr(inplace)})",
        lambda x: leaky_relu(x, negative_slope),
    )


def Softshrink(lambd: float = 0.5) -> Layer:
    """x - lambd above lambd, x + lambd below -lambd, 0 between; torch.nn.Softshrink (lambd >= 0).

    Shape: (*) -> (*).

    Example:
      >>> x = jnp.linspace(-3.0, 3.0, 8).reshape(2, 4)
      >>> y, _ = fl.Softshrink(0.5).apply({}, {}, x)
    """
    name = f"Softshrink({lambd})"
    _check_softshrink(name, lambd)
    return _layer(name, lambda x: softshrink(x, lambd))


def PReLU(num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None) -> Layer:
    """x if x > 0 else a * x with a learnable `a`; torch.nn.PReLU. Param: weight (num_parameters,).

    Args:
      num_parameters: 1 (one shared slope) or the number of channels (dim 1 of the input).
      init: the initial slope. dtype: parameter dtype (default float32). device: ignored.

    Shape: (*) -> (*); with num_parameters > 1 the input is (N, C, *) with C == num_parameters.

    Example:
      >>> layer = fl.PReLU(3)
      >>> params, state = layer.init(jax.random.PRNGKey(0))   # weight = [0.25, 0.25, 0.25]
      >>> y, _ = layer.apply(params, state, jnp.ones((2, 3, 8, 8)))
    """
    del device
    if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) or num_parameters < 0:
        raise ValueError(f"PReLU: num_parameters must be a non-negative int, got {num_parameters!r}.")
    name = f"PReLU(num_parameters={num_parameters})"
    pdtype = param_dtype(dtype)
    slope = init

    def init_fn(rng):
        del rng
        return {"weight": jnp.full((num_parameters,), slope, pdtype)}, {}

    def apply(params, state, input, *, rng=None, training=False):
        del rng, training
        return _prelu(name, input, params["weight"]), state

    return Layer(init_fn, apply, name)


__all__ = [
    "Threshold",
    "ReLU",
    "RReLU",
    "Hardtanh",
    "ReLU6",
    "Hardsigmoid",
    "Hardswish",
    "Hardshrink",
    "LeakyReLU",
    "Softshrink",
    "PReLU",
    "threshold",
    "relu",
    "hardtanh",
    "relu6",
    "leaky_relu",
    "hardsigmoid",
    "hardswish",
    "hardshrink",
    "softshrink",
    "prelu",
    "rrelu",
]
