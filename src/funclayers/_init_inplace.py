"""torch.nn.init's in-place names (`kaiming_normal_`, `zeros_`, ...), re-exported by `funclayers.init`.

Each takes `(key, tensor, *torch's other arguments)` and returns a NEW array of the tensor's shape
and dtype, drawn as torch would fill it (the array itself is left alone: JAX arrays are
immutable), so `w = init.kaiming_normal_(key, w, mode="fan_out")` is the port of
`nn.init.kaiming_normal_(w, mode="fan_out")`. torch's `generator` is accepted and ignored: the
key decides the values. The deterministic ones (`constant_`, `ones_`, `zeros_`, `eye_`, `dirac_`)
take `key=None`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import init as _init


def _like(who: str, tensor: Any, random: bool = True) -> tuple[tuple[int, ...], jnp.dtype]:
    """(shape, dtype) of `tensor`: an array, a tracer or a jax.ShapeDtypeStruct."""
    shape = tuple(int(d) for d in getattr(tensor, "shape", np.shape(tensor)))
    dtype = jnp.dtype(getattr(tensor, "dtype", None) or jnp.result_type(tensor))
    if random and not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"init.{who} draws floating-point values and needs a floating array, got dtype {dtype} "
                        f"(torch's {who} is not implemented for integer tensors either).")
    return shape, dtype


def uniform_(key: jax.Array, tensor: Any, a: float = 0.0, b: float = 1.0, generator: Any = None) -> jax.Array:
    """A new array like `tensor`, drawn from U(a, b); torch.nn.init.uniform_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      tensor: the array whose shape and dtype (floating) the result takes; it is not changed.
      a: the lower bound of the uniform distribution. Default: 0.0.
      b: the upper bound of the uniform distribution. Default: 1.0.
      generator: torch's random generator: accepted and ignored (the key decides). Default: None.

    Shape:
      any shape -> the same shape.

    Example:
      >>> w = fl.init.uniform_(jax.random.PRNGKey(0), jnp.empty((3, 4)), a=-0.5, b=0.5)
      >>> w.shape, w.dtype, bool(jnp.all((w >= -0.5) & (w < 0.5)))
      ((3, 4), dtype('float32'), True)
    """
    del generator
    shape, dtype = _like("uniform_", tensor)
    return _init.uniform(key, shape, dtype, a, b)


def normal_(key: jax.Array, tensor: Any, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> jax.Array:
    """A new array like `tensor`, drawn from N(mean, std^2); torch.nn.init.normal_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      tensor: the array whose shape and dtype (floating) the result takes; it is not changed.
      mean: the mean of the normal distribution. Default: 0.0.
      std: the standard deviation of the normal distribution. Default: 1.0.
      generator: torch's random generator: accepted and ignored (the key decides). Default: None.

    Shape:
      any shape -> the same shape.

    Example:
      >>> fl.init.normal_(jax.random.PRNGKey(0), jnp.empty((3, 4)), std=0.02).shape
      (3, 4)
    """
    del generator
    shape, dtype = _like("normal_", tensor)
    return _init.normal(key, shape, dtype, mean, std)


def trunc_normal_(key: jax.Array, tensor: Any, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: Any = None) -> jax.Array:
    """A new array like `tensor`, from N(mean, std^2) truncated to [a, b]; torch.nn.init.trunc_normal_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      tensor: the array whose shape and dtype (floating) the result takes; it is not changed.
      mean: the mean of the (untruncated) normal distribution. Default: 0.0.
      std: the standard deviation of the (untruncated) normal distribution. Default: 1.0.
      a: the minimum cutoff value, in the values' units. Default: -2.0.
      b: the maximum cutoff value, in the values' units. Default: 2.0.
      generator: torch's random generator: accepted and ignored (the key decides). Default: None.

    Shape:
      any shape -> the same shape.

    Example:
      >>> w = fl.init.trunc_normal_(jax.random.PRNGKey(0), jnp.empty((3, 4)), std=0.02, a=-0.04, b=0.04)
      >>> bool(jnp.all(jnp.abs(w) <= 0.04))
      True
    """
    del generator
    shape, dtype = _like("trunc_normal_", tensor)
    return _init.trunc_normal(key, shape, dtype, mean, std, a, b)


def constant_(key: jax.Array | None, tensor: Any, val: float) -> jax.Array:
    """A new array like `tensor`, filled with `val`; torch.nn.init.constant_ (the key is ignored).

    Args:
      key: ignored (may be None); taken so that every in-place name is called as (key, tensor, ...).
      tensor: the array whose shape and dtype (any) the result takes; it is not changed.
      val: the fill value.

    Shape:
      any shape -> the same shape.

    Example:
      >>> fl.init.constant_(None, jnp.empty((2, 2)), 0.5)
      Array([[0.5, 0.5],
             [0.5, 0.5]], dtype=float32)
    """
    del key
    shape, dtype = _like("constant_", tensor, random=False)
    return jnp.full(shape, val, dtype)


def ones_(key: jax.Array | None, tensor: Any) -> jax.Array:
    """A new array of ones like `tensor`; torch.nn.init.ones_ (the key is ignored).

    Args:
      key: ignored (may be None); taken so that every in-place name is called as (key, tensor, ...).
      tensor: the array whose shape and dtype (any) the result takes; it is not changed.

    Shape:
      any shape -> the same shape.

    Example:
      >>> fl.init.ones_(None, jnp.zeros(3, jnp.int32))
      Array([1, 1, 1], dtype=int32)
    """
    return constant_(key, tensor, 1)


def zeros_(key: jax.Array | None, tensor: Any) -> jax.Array:
    """A new array of zeros like `tensor`; torch.nn.init.zeros_ (the key is ignored).

    Args:
      key: ignored (may be None); taken so that every in-place name is called as (key, tensor, ...).
      tensor: the array whose shape and dtype (any) the result takes; it is not changed.

    Shape:
      any shape -> the same shape.

    Example:
      >>> fl.init.zeros_(None, jnp.ones((2,), jnp.float16))
      Array([0., 0.], dtype=float16)
    """
    return constant_(key, tensor, 0)


def eye_(key: jax.Array | None, tensor: Any) -> jax.Array:
    """The identity matrix shaped like the 2-D `tensor`; torch.nn.init.eye_ (the key is ignored).

    Args:
      key: ignored (may be None); taken so that every in-place name is called as (key, tensor, ...).
      tensor: a 2-D array whose shape and dtype the result takes (ValueError otherwise); not changed.

    Shape:
      (rows, cols) -> (rows, cols).

    Example:
      >>> fl.init.eye_(None, jnp.empty((2, 3)))
      Array([[1., 0., 0.],
             [0., 1., 0.]], dtype=float32)
    """
    shape, dtype = _like("eye_", tensor, random=False)
    return _init.eye(key, shape, dtype)


def dirac_(key: jax.Array | None, tensor: Any, groups: int = 1) -> jax.Array:
    """The Dirac delta shaped like the 3-, 4- or 5-D conv weight `tensor`; torch.nn.init.dirac_.

    Each group's first min(out_channels / groups, in_channels) output channels copy their input
    channel through the kernel's centre: the convolution is the identity. The key is ignored.

    Args:
      key: ignored (may be None); taken so that every in-place name is called as (key, tensor, ...).
      tensor: a (C_out, C_in, *kernel_size) array, 3 to 5 dimensions, whose shape and dtype the result
        takes; it is not changed.
      groups: the number of groups in the conv layer; C_out must be divisible by it. Default: 1.

    Shape:
      (C_out, C_in, k1[, k2[, k3]]) -> the same shape.

    Example:
      >>> fl.init.dirac_(None, jnp.empty((2, 1, 3)), groups=2)[:, 0]
      Array([[0., 1., 0.],
             [0., 1., 0.]], dtype=float32)
    """
    shape, dtype = _like("dirac_", tensor, random=False)
    return _init.dirac(key, shape, dtype, groups)


def xavier_uniform_(key: jax.Array, tensor: Any, gain: float = 1.0, generator: Any = None) -> jax.Array:
    """Like `tensor`, from U(-b, b), b = gain sqrt(6 / (fan_in + fan_out)); torch.nn.init.xavier_uniform_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      tensor: the array (at least 2-D, floating) whose shape and dtype the result takes; not changed.
        Fans as `calculate_fan_in_and_fan_out`.
      gain: an optional scaling factor. Default: 1.0.
      generator: torch's random generator: accepted and ignored (the key decides). Default: None.

    Shape:
      any shape with at least 2 dims -> the same shape.

    Example:
      >>> w = fl.init.xavier_uniform_(jax.random.PRNGKey(0), jnp.empty((4, 2)))
      >>> bool(jnp.abs(w).max() <= 1.0)   # sqrt(6 / (2 + 4))
      True
    """
    del generator
    shape, dtype = _like("xavier_uniform_", tensor)
    return _init.xavier_uniform(key, shape, dtype, gain)


def xavier_normal_(key: jax.Array, tensor: Any, gain: float = 1.0, generator: Any = None) -> jax.Array:
    """Like `tensor`, from N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out)); torch.nn.init.xavier_normal_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      tensor: the array (at least 2-D, floating) whose shape and dtype the result takes; not changed.
      gain: an optional scaling factor. Default: 1.0.
      generator: torch's random generator: accepted and ignored (the key decides). Default: None.

    Shape:
      any shape with at least 2 dims -> the same shape.

    Example:
      >>> fl.init.xavier_normal_(jax.random.PRNGKey(0), jnp.empty((4, 2), jnp.float16)).dtype
      dtype('float16')
    """
    del generator
    shape, dtype = _like("xavier_normal_", tensor)
    return _init.xavier_normal(key, shape, dtype, gain)


def kaiming_uniform_(key: jax.Array, tensor: Any, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: Any = None) -> jax.Array:
    """A new array like `tensor` from U(-b, b), b = gain sqrt(3 / fan); torch.nn.init.kaiming_uniform_ (He).

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      tensor: the array (at least 2-D, floating) whose shape and dtype the result takes; not changed.
      a: the negative slope of the rectifier used after this layer (only used with 'leaky_relu').
        Default: 0.
      mode: "fan_in" keeps the forward pass's variance, "fan_out" the backward pass's.
        Default: "fan_in".
      nonlinearity: the non-linear function's name for `calculate_gain`. Default: "leaky_relu".
      generator: torch's random generator: accepted and ignored (the key decides). Default: None.

    Shape:
      any shape with at least 2 dims -> the same shape.

    Example:
      >>> w = fl.init.kaiming_uniform_(jax.random.PRNGKey(0), jnp.empty((64, 3, 3, 3)), a=math.sqrt(5))
      >>> bool(jnp.abs(w).max() <= 1 / math.sqrt(27))   # fan_in 3 * 3 * 3
      True
    """
    del generator
    shape, dtype = _like("kaiming_uniform_", tensor)
    return _init.kaiming_uniform(key, shape, dtype, a, mode, nonlinearity)


def kaiming_normal_(key: jax.Array, tensor: Any, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: Any = None) -> jax.Array:
    """A new array like `tensor` from N(0, std^2), std = gain / sqrt(fan); torch.nn.init.kaiming_normal_ (He).

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      tensor: the array (at least 2-D, floating) whose shape and dtype the result takes; not changed.
      a: the negative slope of the rectifier used after this layer (only used with 'leaky_relu').
        Default: 0.
      mode: "fan_in" or "fan_out". Default: "fan_in".
      nonlinearity: the non-linear function's name for `calculate_gain`. Default: "leaky_relu".
      generator: torch's random generator: accepted and ignored (the key decides). Default: None.

    Shape:
      any shape with at least 2 dims -> the same shape.

    Example:
      >>> w = fl.init.kaiming_normal_(jax.random.PRNGKey(0), jnp.empty((3, 4)), mode="fan_out", nonlinearity="relu")
      >>> w.shape
      (3, 4)
    """
    del generator
    shape, dtype = _like("kaiming_normal_", tensor)
    return _init.kaiming_normal(key, shape, dtype, a, mode, nonlinearity)


def orthogonal_(key: jax.Array, tensor: Any, gain: float = 1, generator: Any = None) -> jax.Array:
    """A new (semi-)orthogonal array like `tensor`, flattened over its trailing dims; torch.nn.init.orthogonal_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      tensor: the array (at least 2-D, floating) whose shape and dtype the result takes; not changed.
      gain: an optional scaling factor. Default: 1.
      generator: torch's random generator: accepted and ignored (the key decides). Default: None.

    Shape:
      (rows, *rest) with at least 2 dims -> the same shape.

    Example:
      >>> w = fl.init.orthogonal_(jax.random.PRNGKey(0), jnp.empty((3, 4)))
      >>> bool(jnp.allclose(w @ w.T, jnp.eye(3), atol=1e-5))   # orthonormal rows
      True
    """
    del generator
    shape, dtype = _like("orthogonal_", tensor)
    return _init.orthogonal(key, shape, dtype, gain)


def sparse_(key: jax.Array, tensor: Any, sparsity: float, std: float = 0.01, generator: Any = None) -> jax.Array:
    """A new 2-D array like `tensor`, ceil(sparsity rows) zeros per column, the rest N(0, std^2); torch.nn.init.sparse_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      tensor: a 2-D floating array whose shape and dtype the result takes (ValueError otherwise); not changed.
      sparsity: the fraction of each column set to zero.
      std: the standard deviation of the normal distribution of the non-zero values. Default: 0.01.
      generator: torch's random generator: accepted and ignored (the key decides). Default: None.

    Shape:
      (rows, cols) -> (rows, cols).

    Example:
      >>> w = fl.init.sparse_(jax.random.PRNGKey(0), jnp.empty((4, 3)), sparsity=0.5)
      >>> (w == 0).sum(axis=0)   # ceil(0.5 * 4) zeros per column
      Array([2, 2, 2], dtype=int32)
    """
    del generator
    shape, dtype = _like("sparse_", tensor)
    return _init.sparse(key, shape, dtype, sparsity, std)
