"""Softmax activations (torch.nn.modules.activation): Softmax, Softmin, LogSoftmax, Softmax2d.

The ops have hand-written derivatives (`jax.custom_jvp`) whose transposes are torch's backward
formulas: softmax: dx = y * (g - sum(g * y)); log_softmax: dx = g - exp(y) * sum(g). They keep only
the output as residual, which keeps the fused XLA loops small on CPU. float16/bfloat16 compute in float32, as
torch's CPU kernels accumulate.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ._layer import Layer, no_params
from ._utils import check_floating, fmt_shape, normalize_dim, require_rng

_HALF = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


# -- helpers ------------------------------------------------------------------------------------------


def _get_softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's legacy choice when dim=None: 0 for 0-, 1- and 3-D inputs, else 1 (with torch's warning)."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
        f"as an argument.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _prepare(who: str, name: str, input: Any, dim: int | None, dtype: Any, stacklevel: int) -> tuple:
    """(x in its compute dtype, axis, output dtype)."""
    check_floating(who, input)
    x = jnp.asarray(input)
    if dtype is not None:
        x = x.astype(dtype)
    if dim is None:
        dim = _get_softmax_dim(name, x.ndim, stacklevel + 1)
    axis = normalize_dim(who, dim, x.ndim)
    out_dtype = x.dtype
    if x.dtype in _HALF:
        x = x.astype(jnp.float32)
    return x, axis, out_dtype


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _softmax_along(x: jax.Array, axis: int) -> jax.Array:
    shifted = x - jnp.max(x, axis=axis, keepdims=True)
    unnormalized = jnp.exp(shifted)
    return unnormalized / jnp.sum(unnormalized, axis=axis, keepdims=True)


@_softmax_along.defjvp
def _softmax_jvp(axis, primals, tangents):
    # linear in the tangent, so reverse mode transposes it to torch's y * (g - sum(g * y))
    (x,), (dx,) = primals, tangents
    y = _softmax_along(x, axis)
    return y, y * (dx - jnp.sum(dx * y, axis=axis, keepdims=True))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _log_softmax_along(x: jax.Array, axis: int) -> jax.Array:
    shifted = x - jnp.max(x, axis=axis, keepdims=True)
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


@_log_softmax_along.defjvp
def _log_softmax_jvp(axis, primals, tangents):
    # transposes to torch's g - exp(y) * sum(g)
    (x,), (dx,) = primals, tangents
    y = _log_softmax_along(x, axis)
    return y, dx - jnp.sum(jnp.exp(y) * dx, axis=axis, keepdims=True)


def _apply(fn, x: jax.Array, axis: int, out_dtype: Any) -> jax.Array:
    if x.ndim == 0:  # torch treats a 0-d input as one element along dim 0
        return fn(x.reshape(1), 0).reshape(()).astype(out_dtype)
    if x.size == 0:
        return x.astype(out_dtype)
    return fn(x, axis).astype(out_dtype)


# -- the pure ops -------------------------------------------------------------------------------------


def softmax(input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    """exp(x) / sum(exp(x)) along `dim`; torch.nn.functional.softmax.

    Args:
      input: the input array, floating, any shape.
      dim: the dimension that sums to 1; None picks torch's legacy default (0 for 0-, 1- and 3-D inputs,
        else 1) with its warning.
      _stacklevel: internal: the stack level of the warning for dim=None (torch's private argument). Default: 3.
      dtype: cast the input to this dtype first (the output has it too); default: keep the input's.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.softmax(jnp.array([[1.0, 2.0, 3.0]]), dim=1)
      Array([[0.09003057, 0.24472848, 0.66524094]], dtype=float32)
    """
    x, axis, out_dtype = _prepare("softmax", "softmax", input, dim, dtype, _stacklevel)
    return _apply(_softmax_along, x, axis, out_dtype)


def softmin(input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    """softmax(-x) along `dim`; torch.nn.functional.softmin.

    Args:
      input: the input array, floating, any shape.
      dim: the dimension that sums to 1; None picks torch's legacy default (0 for 0-, 1- and 3-D inputs,
        else 1) with its warning.
      _stacklevel: internal: the stack level of the warning for dim=None (torch's private argument). Default: 3.
      dtype: cast the input to this dtype first (the output has it too); default: keep the input's.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.softmin(jnp.array([1.0, 2.0, 3.0]), dim=0)
      Array([0.66524094, 0.24472848, 0.09003057], dtype=float32)
    """
    x, axis, out_dtype = _prepare("softmin", "softmin", input, dim, dtype, _stacklevel)
    return _apply(_softmax_along, -x, axis, out_dtype)


def log_softmax(input: Any, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    """log(softmax(x)) along `dim`, computed stably; torch.nn.functional.log_softmax.

    Args:
      input: the input array, floating, any shape.
      dim: the dimension whose exp sums to 1; None picks torch's legacy default (0 for 0-, 1- and 3-D inputs,
        else 1) with its warning.
      _stacklevel: internal: the stack level of the warning for dim=None (torch's private argument). Default: 3.
      dtype: cast the input to this dtype first (the output has it too); default: keep the input's.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> F.log_softmax(jnp.array([1.0, 2.0, 3.0]), dim=0)
      Array([-2.407606  , -1.4076059 , -0.40760595], dtype=float32)
    """
    x, axis, out_dtype = _prepare("log_softmax", "log_softmax", input, dim, dtype, _stacklevel)
    return _apply(_log_softmax_along, x, axis, out_dtype)


def gumbel_softmax(logits: Any, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1, *,
                   rng: jax.Array | None = None) -> jax.Array:
    """A sample of the Gumbel-softmax (Concrete) distribution over `dim`; torch.nn.functional.gumbel_softmax.

    softmax((logits + g) / tau) along `dim` with g ~ Gumbel(0, 1) drawn from `rng` (torch draws
    -log(Exponential(1)), the same distribution). With `hard=True` the forward value is the one-hot
    of that sample's argmax, and the gradient is the soft sample's (straight-through:
    `y_hard - stop_gradient(y_soft) + y_soft`, as torch computes it).

    Args:
      logits: unnormalised log-probabilities, floating, any shape.
      tau: non-negative scalar temperature, > 0; small values approach one-hot samples. Default: 1.
      hard: if True, the returned samples are discretized as one-hot vectors, but differentiated
        as if they were the soft sample in autograd. Default: False.
      eps: deprecated and unused, as in torch (a value other than 1e-10 warns). Default: 1e-10.
      dim: a dimension along which softmax will be computed. Default: -1.
      rng: a PRNG key for the Gumbel noise, keyword-only; required although its default is None
        (torch uses its global generator). Default: None.

    Shape:
      `(*)` -> `(*)`, same shape; the output sums to 1 along `dim`.

    Example:
      >>> y = F.gumbel_softmax(jnp.log(jnp.array([[0.1, 0.6, 0.3]])), tau=0.5, rng=jax.random.PRNGKey(0))
      >>> y.shape, bool(jnp.allclose(y.sum(-1), 1.0))
      ((1, 3), True)
      >>> F.gumbel_softmax(jnp.zeros((2, 4)), hard=True, rng=jax.random.PRNGKey(1)).sum(-1)   # one-hot rows
      Array([1., 1.], dtype=float32)
    """
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    check_floating("gumbel_softmax", logits, "logits")
    rng = require_rng("gumbel_softmax", rng)
    x = jnp.asarray(logits)
    axis = normalize_dim("gumbel_softmax", dim, x.ndim)
    gumbels = jax.random.gumbel(rng, x.shape, x.dtype)
    y_soft = softmax((x + gumbels) / tau, axis)
    if not hard:
        return y_soft
    if x.ndim == 0:  # a single category: the one-hot is 1
        y_hard = jnp.ones_like(y_soft)
    else:
        index = jnp.argmax(y_soft, axis=axis, keepdims=True)
        y_hard = (lax.broadcasted_iota(jnp.int32, y_soft.shape, axis) == index).astype(y_soft.dtype)
    return y_hard - lax.stop_gradient(y_soft) + y_soft


# -- the layers ---------------------------------------------------------------------------------------


def _softmax_layer(kind: str, name: str, fn, negate: bool, dim: int | None) -> Layer:
    who = f"{kind}(dim={dim})"

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        x, axis, out_dtype = _prepare(who, name, input, dim, None, 3)
        return _apply(fn, -x if negate else x, axis, out_dtype), state

    return Layer(no_params, apply, who)


def Softmax(dim: int | None = None) -> Layer:
    """exp(x) / sum(exp(x)) along `dim`; torch.nn.Softmax.

    Args:
      dim: the dimension along which the output sums to 1. None (deprecated in torch) picks 0 for 0-, 1- and
        3-D inputs and 1 otherwise, with torch's warning. Default: None.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.Softmax(dim=1).apply({}, {}, jnp.array([[1.0, 2.0, 3.0]]))
      >>> y
      Array([[0.09003057, 0.24472848, 0.66524094]], dtype=float32)
    """
    return _softmax_layer("Softmax", "softmax", _softmax_along, False, dim)


def Softmin(dim: int | None = None) -> Layer:
    """softmax(-x) along `dim`; torch.nn.Softmin.

    Args:
      dim: the dimension along which the output sums to 1. None (deprecated in torch) picks 0 for 0-, 1- and
        3-D inputs and 1 otherwise, with torch's warning. Default: None.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.Softmin(dim=1).apply({}, {}, jnp.array([[1.0, 2.0, 3.0]]))
      >>> y
      Array([[0.66524094, 0.24472848, 0.09003057]], dtype=float32)
    """
    return _softmax_layer("Softmin", "softmin", _softmax_along, True, dim)


def LogSoftmax(dim: int | None = None) -> Layer:
    """log(softmax(x)) along `dim`, computed stably; torch.nn.LogSoftmax.

    Args:
      dim: the dimension along which exp(output) sums to 1. None (deprecated in torch) picks 0 for 0-, 1- and
        3-D inputs and 1 otherwise, with torch's warning. Default: None.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.LogSoftmax(dim=1).apply({}, {}, jnp.array([[1.0, 2.0, 3.0]]))
      >>> y
      Array([[-2.407606  , -1.4076059 , -0.40760595]], dtype=float32)
    """
    return _softmax_layer("LogSoftmax", "log_softmax", _log_softmax_along, False, dim)


def Softmax2d() -> Layer:
    """Softmax over the channels at each spatial location; torch.nn.Softmax2d.

    Shape:
      (N, C, H, W) or (C, H, W) -> same shape; the softmax runs along dim -3 (the channels).

    Example:
      >>> y, _ = fl.Softmax2d().apply({}, {}, jnp.arange(12.0).reshape(1, 3, 2, 2))
      >>> y.shape, bool(jnp.allclose(y.sum(axis=1), 1.0))
      ((1, 3, 2, 2), True)
    """

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        ndim = len(fmt_shape(input))
        if ndim not in (3, 4):
            raise ValueError(
                f"Softmax2d: expected input to be 3D or 4D, got {ndim}D instead (input of shape "
                f"{fmt_shape(input)}; Softmax2d takes (C, H, W) or (N, C, H, W))."
            )
        x, axis, out_dtype = _prepare("Softmax2d", "softmax", input, -3, None, 3)
        return _apply(_softmax_along, x, axis, out_dtype), state

    return Layer(no_params, apply, "Softmax2d()")


__all__ = ["Softmax", "Softmin", "LogSoftmax", "Softmax2d", "softmax", "softmin", "log_softmax"]
