"""Element-wise activations, smooth (torch.nn.modules.activation): ELU, CELU, SELU, GELU, SiLU, Mish, GLU.

The sigmoid family (Sigmoid, Tanh, LogSigmoid, Softplus, Softsign, Tanhshrink) is in _activation_sigmoid.py.

As in `_activation.py`: torch's formulas and branch choices, float16/bfloat16 computed in float32,
and branches that are not selected fed safe values, so outputs and gradients stay finite at +-1e4.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ._activation import _floating, _inplace_repr, _layer, _nonpositive, _opmath
from ._activation_sigmoid import _sigmoid
from ._layer import Layer
from ._utils import TorchRuntimeError, normalize_dim

# torch's SELU constants (aten/src/ATen/native/Activation.cpp)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# -- the pure ops --------------------------------------------------------------------------------------


@_opmath
def _elu(x: jax.Array, alpha: float, scale: float, input_scale: float) -> jax.Array:
    # torch's elu kernel: x <= 0 ? expm1(x * input_scale) * alpha * scale : x * scale
    negative = jnp.expm1(_nonpositive(x) * input_scale) * (alpha * scale)
    return jnp.where(x > 0, x * scale if scale != 1 else x, negative)


def elu(input: Any, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    """x if x > 0 else alpha * (exp(x) - 1); torch.nn.functional.elu.

    Args:
      input: the input array, any shape, floating.
      alpha: the negative branch's saturation value is -alpha; default 1.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.elu(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.86466473, -0.39346933,  0.        ,  1.5       ], dtype=float32)
    """
    del inplace
    return _elu(_floating("elu", input), alpha, 1.0, 1.0)


def selu(input: Any, inplace: bool = False) -> jax.Array:
    """scale * elu(x, alpha) with the self-normalising constants; torch.nn.functional.selu.

    Args:
      input: the input array, any shape, floating.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.selu(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-1.5201665 , -0.69175816,  0.        ,  1.5760515 ], dtype=float32)
    """
    del inplace
    return _elu(_floating("selu", input), SELU_ALPHA, SELU_SCALE, 1.0)


def _check_celu(who: str, alpha: float) -> None:
    if alpha == 0:
        raise ValueError(f"{who}: ZeroDivisionError: alpha cannot be 0 for CELU.")


def celu(input: Any, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); torch.nn.functional.celu (alpha != 0).

    Args:
      input: the input array, any shape, floating.
      alpha: the negative branch's scale and saturation (-alpha); nonzero, default 1.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.celu(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.86466473, -0.39346933,  0.        ,  1.5       ], dtype=float32)
    """
    del inplace
    _check_celu("celu", alpha)
    return _elu(_floating("celu", input), alpha, 1.0, 1.0 / alpha)


_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715


def _check_gelu(who: str, approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{who}: approximate argument must be either none or tanh, got {approximate!r}.")


@jax.custom_jvp
def _gelu_tanh(x: jax.Array) -> jax.Array:
    # 0.5 * x * (1 + tanh(u)) == x * sigmoid(2u): no cancellation in 1 + tanh(u) for negative x, and
    # XLA's sigmoid is accurate to ~1 ulp where its float32 tanh is off by up to ~4 ulp.
    return x * jax.nn.sigmoid((2 * _SQRT_2_OVER_PI) * (x + _GELU_KAPPA * (x * x * x)))


@_gelu_tanh.defjvp
def _gelu_tanh_jvp(primals, tangents):
    # d/dx x * s(z) = s + x * s * s(-z) * z'; s(-z) instead of 1 - s(z) keeps the derivative accurate
    # where s(z) rounds to 1 (x > 4), matching torch's float32 backward to ~1e-7.
    (x,), (dx,) = primals, tangents
    x_sq = x * x
    z = (2 * _SQRT_2_OVER_PI) * (x + _GELU_KAPPA * (x_sq * x))
    s = jax.nn.sigmoid(z)
    dz = (2 * _SQRT_2_OVER_PI) * (1 + (3 * _GELU_KAPPA) * x_sq)
    return x * s, (s + x * s * jax.nn.sigmoid(-z) * dz) * dx


@_opmath
def _gelu(x: jax.Array, approximate: str) -> jax.Array:
    if approximate == "tanh":
        return _gelu_tanh(x)
    return x * 0.5 * (1 + lax.erf(x * _SQRT1_2))


def gelu(input: Any, approximate: str = "none") -> jax.Array:
    """x * Phi(x) (exact erf), or the tanh approximation; torch.nn.functional.gelu.

    Args:
      input: the input array, any shape, floating.
      approximate: 'none' (the default: the exact erf form) or 'tanh' (the tanh approximation).

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.gelu(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.04550028, -0.15426877,  0.        ,  1.3997892 ], dtype=float32)
    """
    _check_gelu("gelu", approximate)
    return _gelu(_floating("gelu", input), approximate)


@_opmath
def _silu(x: jax.Array) -> jax.Array:
    return x * jax.nn.sigmoid(x)


def silu(input: Any, inplace: bool = False) -> jax.Array:
    """x * sigmoid(x); torch.nn.functional.silu.

    Args:
      input: the input array, any shape, floating.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.silu(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.23840584, -0.18877034,  0.        ,  1.2263616 ], dtype=float32)
    """
    del inplace
    return _silu(_floating("silu", input))


@_opmath
def _mish(x: jax.Array) -> jax.Array:
    return x * jnp.tanh(jnp.logaddexp(x, 0))  # softplus without overflow, stable gradient


def mish(input: Any, inplace: bool = False) -> jax.Array:
    """x * tanh(softplus(x)); torch.nn.functional.mish.

    Args:
      input: the input array, any shape, floating.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.mish(jnp.array([-2.0, -0.5, 0.0, 1.5]))
      Array([-0.25250146, -0.22074378,  0.        ,  1.4033782 ], dtype=float32)
    """
    del inplace
    return _mish(_floating("mish", input))


def glu(input: Any, dim: int = -1) -> jax.Array:
    """a * sigmoid(b) where a, b are the two halves of `input` along `dim`; torch.nn.functional.glu.

    Args:
      input: the input array, floating, at least 1-D; its size along `dim` must be even.
      dim: the dimension to halve, default -1.

    Shape:
      `(*, 2M, *)` -> `(*, M, *)`, halving dimension `dim`.

    Example:
      >>> F.glu(jnp.array([1.0, 2.0, 0.0, 0.0]))
      Array([0.5, 1. ], dtype=float32)
    """
    return _glu("glu", input, dim)


def _glu(who: str, input: Any, dim: int) -> jax.Array:
    x = _floating(who, input)
    if x.ndim == 0:
        raise TorchRuntimeError(
            f"{who}: glu does not support scalars because halving size must be even (input of shape ())."
        )
    d = normalize_dim(who, dim, x.ndim)
    if x.shape[d] % 2:
        raise TorchRuntimeError(
            f"{who}: Halving dimension must be even, but dimension {d} is size {x.shape[d]} "
            f"(input of shape {x.shape})."
        )
    a, b = jnp.split(x, 2, axis=d)
    return a * _sigmoid(b)


# -- the layers ----------------------------------------------------------------------------------------


def SiLU(inplace: bool = False) -> Layer:
    """x * sigmoid(x) (swish); torch.nn.SiLU.

    Args:
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.SiLU().apply({}, {}, x)
      >>> y
      Array([-0.23840584, -0.18877034,  0.        ,  1.2263616 ], dtype=float32)
    """
    return _layer(f"SiLU({_inplace_repr(inplace, '')})", silu)


def Mish(inplace: bool = False) -> Layer:
    """x * tanh(softplus(x)); torch.nn.Mish.

    Args:
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.Mish().apply({}, {}, x)
      >>> y
      Array([-0.25250146, -0.22074378,  0.        ,  1.4033782 ], dtype=float32)
    """
    return _layer(f"Mish({_inplace_repr(inplace, '')})", mish)


def ELU(alpha: float = 1.0, inplace: bool = False) -> Layer:
    """x if x > 0 else alpha * (exp(x) - 1); torch.nn.ELU.

    Args:
      alpha: the negative branch's saturation value is -alpha; default 1.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.ELU(alpha=0.5).apply({}, {}, x)
      >>> y
      Array([-0.43233237, -0.19673467,  0.        ,  1.5       ], dtype=float32)
    """
    return _layer(f"ELU(alpha={alpha}{_inplace_repr(inplace)})", lambda x: elu(x, alpha))


def CELU(alpha: float = 1.0, inplace: bool = False) -> Layer:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); torch.nn.CELU (alpha must not be 0).

    Args:
      alpha: the negative branch's scale and saturation (-alpha); nonzero, default 1.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.CELU(alpha=2.0).apply({}, {}, x)
      >>> y
      Array([-1.2642411, -0.4423984,  0.       ,  1.5      ], dtype=float32)
    """
    name = f"CELU(alpha={alpha}{_inplace_repr(inplace)})"
    _check_celu(name, alpha)
    return _layer(name, lambda x: celu(x, alpha))


def SELU(inplace: bool = False) -> Layer:
    """1.0507 * elu(x, 1.6733), the self-normalising ELU; torch.nn.SELU.

    Args:
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.SELU().apply({}, {}, x)
      >>> y
      Array([-1.5201665 , -0.69175816,  0.        ,  1.5760515 ], dtype=float32)
    """
    return _layer(f"SELU({_inplace_repr(inplace, '')})", selu)


def GLU(dim: int = -1) -> Layer:
    """a * sigmoid(b) for the halves a, b of the input along `dim`; torch.nn.GLU.

    Args:
      dim: the dimension to halve, default -1; its size must be even.

    Shape:
      `(*, 2M, *)` -> `(*, M, *)`, halving dimension `dim`.

    Example:
      >>> y, _ = fl.GLU().apply({}, {}, jnp.array([[1.0, 2.0, 0.0, 0.0]]))
      >>> y
      Array([[0.5, 1. ]], dtype=float32)
    """
    name = f"GLU(dim={dim})"
    return _layer(name, lambda x: _glu(name, x, dim))


def GELU(approximate: str = "none") -> Layer:
    """x * Phi(x) with the exact erf, or the tanh approximation; torch.nn.GELU.

    Args:
      approximate: 'none' (the default: the exact erf form) or 'tanh' (the tanh approximation).

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> x = jnp.array([-2.0, -0.5, 0.0, 1.5])
      >>> y, _ = fl.GELU(approximate="tanh").apply({}, {}, x)
      >>> y
      Array([-0.04540231, -0.15428598,  0.        ,  1.3995714 ], dtype=float32)
    """
    name = f"GELU(approximate={approximate!r})"
    _check_gelu(name, approximate)
    return _layer(name, lambda x: gelu(x, approximate))


__all__ = [
    "SiLU",
    "Mish",
    "ELU",
    "CELU",
    "SELU",
    "GLU",
    "GELU",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "glu",
]
