"""Element-wise activations, the leaky ReLUs (torch.nn.modules.activation): LeakyReLU, PReLU (a learnable
slope) and RReLU (a random slope in training).

Split from `_activation.py` (the other piecewise-linear activations and the helpers the family shares),
whose conventions these follow: torch's CPU formulas and branches at 0, NaN propagation.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from ._activation import _const, _floating, _inplace_repr, _layer
from ._layer import Layer, no_params
from ._utils import TorchRuntimeError, check_param_dtypes, fmt_shape, param_dtype, require_rng

# -- the pure ops --------------------------------------------------------------------------------------


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> jax.Array:
    """x if x > 0 else negative_slope * x; torch.nn.functional.leaky_relu.

    Args:
      input: the input array, any shape, floating.
      negative_slope: the slope for x <= 0, default 0.01.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.leaky_relu(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.02 , -0.005,  0.   ,  1.5  ], dtype=float32)
    """
    del inplace
    x = _floating("leaky_relu", input)
    return jnp.where(x > 0, x, x * negative_slope)


def prelu(input: Any, weight: Any) -> jax.Array:
    """x if x > 0 else a * x, with `a` per channel (dim 1) or shared; torch.nn.functional.prelu.

    Args:
      input: the input array, floating; with several slopes, `(N, C, *)` (channels in dim 1).
      weight: the slopes: one element (shared) or C (one per channel of dim 1).

    Shape:
      input `(*)` with weight (1,) or (); input `(N, C, *)` with weight (C,). Output: the input's shape.

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
    check_param_dtypes(who, x, (weight,), "prelu: Type promoting not supported. Got {input} and {param}")
    weight = jnp.asarray(weight)
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

    Args:
      input: the input array, any shape, floating.
      lower: the lower bound of the random slopes, default 1/8.
      upper: the upper bound, default 1/3; lower <= upper.
      training: draw random slopes (True) or use the mean slope (False, the default).
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.
      rng: a PRNG key for the slopes, keyword-only; required when training and lower < upper. Default: None.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> F.rrelu(x)   # eval: the mean slope (lower + upper) / 2
      Array([-0.45833334, -0.11458334,  0.        ,  1.5       ], dtype=float32)
      >>> y = F.rrelu(x, training=True, rng=jax.random.PRNGKey(0))   # a random slope per element
      >>> bool(jnp.all((y[:2] <= x[:2] / 8) & (y[:2] >= x[:2] / 3)))
      True
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


def LeakyReLU(negative_slope: float = 1e-2, inplace: bool = False) -> Layer:
    """x if x > 0 else negative_slope * x; torch.nn.LeakyReLU.

    Args:
      negative_slope: the slope for x <= 0, default 0.01.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.LeakyReLU(0.1).apply({}, {}, jnp.array([-2.0, -0.5, 0.0, 1.5]))
      >>> y
      Array([-0.2 , -0.05,  0.  ,  1.5 ], dtype=float32)
    """
    return _layer(
        f"LeakyReLU(negative_slope={negative_slope}{_inplace_repr(inplace)})",
        lambda x: leaky_relu(x, negative_slope),
    )


def RReLU(lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> Layer:
    """Randomised leaky ReLU; torch.nn.RReLU.

    Training: slopes for x <= 0 drawn from U(lower, upper) with the `rng` key passed to `apply`
    (required unless lower == upper). Eval: slope (lower + upper) / 2.

    Args:
      lower: the lower bound of the random slopes, default 1/8.
      upper: the upper bound, default 1/3; lower <= upper.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> layer = fl.RReLU(0.1, 0.3)
      >>> y, _ = layer.apply({}, {}, x)   # eval: slope 0.2
      >>> y
      Array([-0.4, -0.1,  0. ,  1.5], dtype=float32)
      >>> y, _ = layer.apply({}, {}, x, rng=jax.random.PRNGKey(0), training=True)
      >>> bool(jnp.all((y[:2] <= 0.1 * x[:2]) & (y[:2] >= 0.3 * x[:2])))
      True
    """
    name = f"RReLU(lower={lower}, upper={upper}{_inplace_repr(inplace)})"
    _check_rrelu(name, lower, upper)

    def apply(params, state, input, *, rng=None, training=False):
        del params
        return _rrelu(name, input, lower, upper, training, rng), state

    return Layer(no_params, apply, name)


def PReLU(num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None) -> Layer:
    """x if x > 0 else a * x with a learnable `a`; torch.nn.PReLU. Param: weight (num_parameters,).

    Args:
      num_parameters: 1 (one shared slope) or the number of channels (dim 1 of the input). Default: 1.
      init: the initial slope, default 0.25.
      device: ignored. Default: None.
      dtype: parameter dtype (default float32).

    Shape:
      `(*)` -> `(*)`, same shape; with num_parameters > 1 the input is `(N, C, *)` with
      C == num_parameters (inputs of fewer than 2 dims have one channel).

    Example:
      >>> layer = fl.PReLU(3)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> params["weight"]
      Array([0.25, 0.25, 0.25], dtype=float32)
      >>> y, _ = layer.apply(params, state, jnp.full((2, 3, 4, 4), -1.0))
      >>> y[0, :, 0, 0]
      Array([-0.25, -0.25, -0.25], dtype=float32)
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


__all__ = ["LeakyReLU", "PReLU", "RReLU", "leaky_relu", "prelu", "rrelu"]
