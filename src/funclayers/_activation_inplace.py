"""torch.nn.functional's in-place activation names (`relu_`, `elu_`, ...) as pure functions.

Torch's `F.relu_(x)` overwrites `x` and returns it; JAX arrays are immutable, so each name here
returns the result of its out-of-place twin and leaves the input as it was. Ported code that
uses the returned value (`x = F.relu_(x)`) runs unchanged; code that relies on the side effect
alone must assign the result.
"""

from __future__ import annotations

from typing import Any

import jax

from ._activation import hardtanh, relu, threshold
from ._activation_leaky import _rrelu, leaky_relu
from ._activation_smooth import celu, elu, selu


def relu_(input: Any) -> jax.Array:
    """max(0, x), returned (torch's in-place name, out of place); torch.nn.functional.relu_.

    Args:
      input: the input array, any shape, integer or floating.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.relu_(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([0. , 0. , 0. , 1.5], dtype=float32)
    """
    return relu(input)


def threshold_(input: Any, threshold: float, value: float) -> jax.Array:
    """`value` where input <= threshold, else input, returned; torch.nn.functional.threshold_.

    Args:
      input: the input array, any shape, integer or floating.
      threshold: elements <= threshold are replaced.
      value: what replaces them.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.threshold_(jnp.array([-2.0, -0.5, 0.0, 1.5]), 0.5, -1.0)
      Array([-1. , -1. , -1. ,  1.5], dtype=float32)
    """
    return _threshold(input, threshold, value)


_threshold = threshold  # threshold_'s argument shadows the op's name


def hardtanh_(input: Any, min_val: float = -1.0, max_val: float = 1.0) -> jax.Array:
    """x clipped to [min_val, max_val], returned; torch.nn.functional.hardtanh_.

    Args:
      input: the input array, any shape, integer or floating.
      min_val: the lower end of the clipping range, default -1.
      max_val: the upper end, default 1; min_val must not exceed max_val.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.hardtanh_(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-1. , -0.5,  0. ,  1. ], dtype=float32)
    """
    return hardtanh(input, min_val, max_val)


def elu_(input: Any, alpha: float = 1.0) -> jax.Array:
    """x if x > 0 else alpha * (exp(x) - 1), returned; torch.nn.functional.elu_.

    Args:
      input: the input array, any shape, floating.
      alpha: the negative branch's saturation value is -alpha; default 1.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.elu_(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.86466473, -0.39346933,  0.        ,  1.5       ], dtype=float32)
    """
    return elu(input, alpha)


def celu_(input: Any, alpha: float = 1.0) -> jax.Array:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), returned; torch.nn.functional.celu_.

    Args:
      input: the input array, any shape, floating.
      alpha: the negative branch's scale and saturation (-alpha); nonzero, default 1.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.celu_(jnp.array([-2.0, -0.5, 0.0, 1.5]), alpha=2.0)
      Array([-1.2642411, -0.4423984,  0.       ,  1.5      ], dtype=float32)
    """
    return celu(input, alpha)


def selu_(input: Any) -> jax.Array:
    """scale * elu(x, alpha) with the self-normalising constants, returned; torch.nn.functional.selu_.

    Args:
      input: the input array, any shape, floating.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.selu_(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-1.5201665 , -0.69175816,  0.        ,  1.5760515 ], dtype=float32)
    """
    return selu(input)


def leaky_relu_(input: Any, negative_slope: float = 0.01) -> jax.Array:
    """x if x > 0 else negative_slope * x, returned; torch.nn.functional.leaky_relu_.

    Args:
      input: the input array, any shape, floating.
      negative_slope: the slope for x <= 0, default 0.01.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.leaky_relu_(jnp.array([-2.0, -0.5, 0.0, 1.5]), 0.1)
      Array([-0.2 , -0.05,  0.  ,  1.5 ], dtype=float32)
    """
    return leaky_relu(input, negative_slope)


def rrelu_(input: Any, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, *,
           rng: jax.Array | None = None) -> jax.Array:
    """Randomised leaky ReLU, returned; torch.nn.functional.rrelu_.

    Training: each x <= 0 is multiplied by a slope drawn from U(lower, upper) (`rng` required unless
    lower == upper). Eval: leaky_relu with slope (lower + upper) / 2.

    Args:
      input: the input array, any shape, floating.
      lower: lower bound of the uniform distribution of the slopes. Default: 1/8.
      upper: upper bound of the uniform distribution; lower <= upper. Default: 1/3.
      training: draw random slopes (True) or use the mean slope (False). Default: False.
      rng: a PRNG key for the slopes, keyword-only; required when training and lower < upper.
        Default: None.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.rrelu_(jnp.array([-2.0, -0.5, 0.0, 1.5]), 0.25, 0.25)   # eval: the mean slope
      Array([-0.5  , -0.125,  0.   ,  1.5  ], dtype=float32)
    """
    return _rrelu("rrelu_", input, lower, upper, training, rng)
