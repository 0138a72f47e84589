"""Element-wise activations of the sigmoid family (torch.nn.modules.activation): Sigmoid, Tanh,
LogSigmoid, Softplus, Softsign, Tanhshrink.

Split from `_activation_smooth.py`, with its conventions: torch's formulas and branch choices,
float16/bfloat16 computed in float32, and branches that are not selected fed safe values, so outputs
and gradients stay finite at +-1e4.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._activation import _floating, _layer, _opmath, _promoted
from ._layer import Layer

# -- the pure ops --------------------------------------------------------------------------------------


@_opmath
def _logsigmoid(x: jax.Array) -> jax.Array:
    # -softplus(-x) = min(x, 0) - log1p(exp(-|x|)), torch's formula; logaddexp's gradient is sigmoid(-x).
    return -jnp.logaddexp(-x, 0)


def logsigmoid(input: Any) -> jax.Array:
    """log(1 / (1 + exp(-x))), stable at +-1e4; torch.nn.functional.logsigmoid.

    Args:
      input: the input array, any shape, floating.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.logsigmoid(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-2.126928  , -0.974077  , -0.6931472 , -0.20141329], dtype=float32)
    """
    return _logsigmoid(_floating("logsigmoid", input))


@_opmath
def _softplus(x: jax.Array, beta: float, threshold: float) -> jax.Array:
    scaled = x * beta
    linear = scaled > threshold  # torch reverts to the identity where x * beta > threshold
    return jnp.where(linear, x, jnp.log1p(jnp.exp(jnp.where(linear, 0, scaled))) / beta)


def softplus(input: Any, beta: float = 1.0, threshold: float = 20.0) -> jax.Array:
    """log(1 + exp(beta * x)) / beta, x itself where beta * x > threshold; torch.nn.functional.softplus.

    Args:
      input: the input array, any shape, floating.
      beta: the sharpness, default 1.
      threshold: where beta * x > threshold the output is x itself, default 20.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.softplus(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([0.126928 , 0.474077 , 0.6931472, 1.7014133], dtype=float32)
    """
    return _softplus(_floating("softplus", input), beta, threshold)


@_opmath
def _sigmoid(x: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(x)


def sigmoid(input: Any) -> jax.Array:
    """1 / (1 + exp(-x)); torch.sigmoid (integer input promotes to float32).

    Args:
      input: the input array, any shape (integers promote to float32).

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.sigmoid(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([0.11920292, 0.37754068, 0.5       , 0.81757444], dtype=float32)
    """
    return _sigmoid(_promoted(input))


@_opmath
def _tanh(x: jax.Array) -> jax.Array:
    return jnp.tanh(x)


def tanh(input: Any) -> jax.Array:
    """tanh(x); torch.tanh (integer input promotes to float32).

    Args:
      input: the input array, any shape (integers promote to float32).

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.tanh(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.9640276 , -0.46211717,  0.        ,  0.9051482 ], dtype=float32)
    """
    return _tanh(_promoted(input))


@_opmath
def _tanhshrink(x: jax.Array) -> jax.Array:
    return x - jnp.tanh(x)


def tanhshrink(input: Any) -> jax.Array:
    """x - tanh(x); torch.nn.functional.tanhshrink.

    Args:
      input: the input array, any shape (integers promote to float32).

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.tanhshrink(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-1.0359724 , -0.03788283,  0.        ,  0.5948518 ], dtype=float32)
    """
    return _tanhshrink(_promoted(input))


@_opmath
def _softsign(x: jax.Array) -> jax.Array:
    return x / (1 + jnp.abs(x))


def softsign(input: Any) -> jax.Array:
    """x / (1 + |x|); torch.nn.functional.softsign.

    Args:
      input: the input array, any shape (integers promote to float32).

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.softsign(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.6666667 , -0.33333334,  0.        ,  0.6       ], dtype=float32)
    """
    return _softsign(_promoted(input))


# -- the layers ----------------------------------------------------------------------------------------


def Sigmoid() -> Layer:
    """1 / (1 + exp(-x)); torch.nn.Sigmoid.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.Sigmoid().apply({}, {}, x)
      >>> y
      Array([0.11920292, 0.37754068, 0.5       , 0.81757444], dtype=float32)
    """
    return _layer("Sigmoid()", sigmoid)


def Tanh() -> Layer:
    """tanh(x); torch.nn.Tanh.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.Tanh().apply({}, {}, x)
      >>> y
      Array([-0.9640276 , -0.46211717,  0.        ,  0.9051482 ], dtype=float32)
    """
    return _layer("Tanh()", tanh)


def LogSigmoid() -> Layer:
    """log(sigmoid(x)), stable for large |x|; torch.nn.LogSigmoid.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.LogSigmoid().apply({}, {}, x)
      >>> y
      Array([-2.126928  , -0.974077  , -0.6931472 , -0.20141329], dtype=float32)
    """
    return _layer("LogSigmoid()", logsigmoid)


def Softplus(beta: float = 1.0, threshold: float = 20.0) -> Layer:
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold; torch.nn.Softplus.

    Args:
      beta: the sharpness, default 1.
      threshold: where beta * x > threshold the output is x itself, default 20.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.Softplus(beta=2.0).apply({}, {}, x)
      >>> y
      Array([0.00907496, 0.15663084, 0.3465736 , 1.5242937 ], dtype=float32)
    """
    return _layer(f"Softplus(beta={beta}, threshold={threshold})", lambda x: softplus(x, beta, threshold))


def Softsign() -> Layer:
    """x / (1 + |x|); torch.nn.Softsign.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.Softsign().apply({}, {}, x)
      >>> y
      Array([-0.6666667 , -0.33333334,  0.        ,  0.6       ], dtype=float32)
    """
    return _layer("Softsign()", softsign)


def Tanhshrink() -> Layer:
    """x - tanh(x); torch.nn.Tanhshrink.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.Tanhshrink().apply({}, {}, x)
      >>> y
      Array([-1.0359724 , -0.03788283,  0.        ,  0.5948518 ], dtype=float32)
    """
    return _layer("Tanhshrink()", tanhshrink)


__all__ = [
    "Sigmoid",
    "Tanh",
    "LogSigmoid",
    "Softplus",
    "Softsign",
    "Tanhshrink",
    "logsigmoid",
    "softplus",
    "sigmoid",
    "tanh",
    "tanhshrink",
    "softsign",
]
