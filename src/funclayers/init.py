"""torch.nn.init's initialisers as pure functions of (key, shape, dtype).

Each `name_` of torch becomes `name(key, shape, dtype=float32, *torch's other arguments)` and
returns a new array instead of filling a tensor in place. Fans follow torch's
`_calculate_fan_in_and_fan_out`: dim 1 is fan-in, dim 0 fan-out, times the receptive field.

Example:
  >>> w = fl.init.kaiming_uniform(jax.random.PRNGKey(0), (64, 3, 3, 3), a=math.sqrt(5))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._utils import param_dtype

Shape = Sequence[int]
_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity; torch.nn.init.calculate_gain.

    Example:
      >>> fl.init.calculate_gain("relu")
      1.4142135623730951
    """
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def calculate_fan_in_and_fan_out(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape, as torch computes them.

    Example:
      >>> fl.init.calculate_fan_in_and_fan_out((64, 3, 3, 3))
      (27, 576)
    """
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape: Shape, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    return fan_in if mode == "fan_in" else fan_out


def _draw(sample, key: jax.Array, shape: Shape, dtype: Any, *args) -> jax.Array:
    """`sample(key, shape, dtype, *args)` drawn flat, with the length rounded up to a power of two.

    Eagerly, jax compiles its random generator once per distinct shape: ~1.3 s for a 4-D conv
    weight on CPU, so initialising a ResNet took ~12 s. Flat power-of-two draws share a handful of
    compiled generators across every layer and model (~0.2 s each).
    """
    shape = tuple(int(d) for d in shape)
    size = math.prod(shape)
    if size == 0:
        return jnp.zeros(shape, dtype)
    padded = 1 << (size - 1).bit_length()
    return sample(key, (padded,), dtype, *args)[:size].reshape(shape)


def uniform(key: jax.Array, shape: Shape, dtype: Any = None, a: float = 0.0, b: float = 1.0) -> jax.Array:
    """U(a, b); torch.nn.init.uniform_.

    Example:
      >>> fl.init.uniform(jax.random.PRNGKey(0), (3, 4)).shape
      (3, 4)
    """
    return _draw(jax.random.uniform, key, shape, param_dtype(dtype), a, b)


def normal(key: jax.Array, shape: Shape, dtype: Any = None, mean: float = 0.0, std: float = 1.0) -> jax.Array:
    """N(mean, std^2); torch.nn.init.normal_.

    Example:
      >>> fl.init.normal(jax.random.PRNGKey(0), (3, 4)).shape
      (3, 4)
    """
    return mean + std * _draw(jax.random.normal, key, shape, param_dtype(dtype))


def trunc_normal(key: jax.Array, shape: Shape, dtype: Any = None, mean: float = 0.0, std: float = 1.0,
                 a: float = -2.0, b: float = 2.0) -> jax.Array:
    """N(mean, std^2) truncated to [a, b] (absolute bounds, as torch); torch.nn.init.trunc_normal_.

    Example:
      >>> fl.init.trunc_normal(jax.random.PRNGKey(0), (3, 4)).shape
      (3, 4)
    """
    lower, upper = (a - mean) / std, (b - mean) / std
    dtype = param_dtype(dtype)
    def sample(key, shape, dtype):
        return jax.random.truncated_normal(key, lower, upper, shape, dtype)

    draw = _draw(sample, key, shape, dtype)
    return jnp.clip(mean + std * draw, a, b)


def constant(key: jax.Array | None, shape: Shape, dtype: Any = None, val: float = 0.0) -> jax.Array:
    """Filled with `val`; torch.nn.init.constant_ (the key is ignored).

    Example:
      >>> fl.init.constant(jax.random.PRNGKey(0), (2, 2), val=0.5)
      Array([[0.5, 0.5],
             [0.5, 0.5]], dtype=float32)
    """
    del key
    return jnp.full(tuple(shape), val, param_dtype(dtype))


def ones(key: jax.Array | None, shape: Shape, dtype: Any = None) -> jax.Array:
    """Ones; torch.nn.init.ones_.

    Example:
      >>> fl.init.ones(jax.random.PRNGKey(0), (2,))
      Array([1., 1.], dtype=float32)
    """
    return constant(key, shape, dtype, 1.0)


def zeros(key: jax.Array | None, shape: Shape, dtype: Any = None) -> jax.Array:
    """Zeros; torch.nn.init.zeros_.

    Example:
      >>> fl.init.zeros(jax.random.PRNGKey(0), (2,))
      Array([0., 0.], dtype=float32)
    """
    return constant(key, shape, dtype, 0.0)


def eye(key: jax.Array | None, shape: Shape, dtype: Any = None) -> jax.Array:
    """The identity matrix of a 2-D shape; torch.nn.init.eye_.

    Example:
      >>> fl.init.eye(jax.random.PRNGKey(0), (2, 3))
      Array([[1., 0., 0.],
             [0., 1., 0.]], dtype=float32)
    """
    del key
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return jnp.eye(shape[0], shape[1], dtype=param_dtype(dtype))


def dirac(key: jax.Array | None, shape: Shape, dtype: Any = None, groups: int = 1) -> jax.Array:
    """The Dirac delta of a 3-, 4- or 5-D conv weight (identity conv per group); torch.nn.init.dirac_.

    Example:
      >>> fl.init.dirac(jax.random.PRNGKey(0), (2, 2, 3))
      Array([[[0., 1., 0.],
              [0., 0., 0.]],
      <BLANKLINE>
             [[0., 0., 0.],
              [0., 1., 0.]]], dtype=float32)
    """
    del key
    if len(shape) not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if shape[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = shape[0] // groups
    min_dim = min(out_per_group, shape[1])
    centre = tuple(k // 2 for k in shape[2:])
    weight = jnp.zeros(tuple(shape), param_dtype(dtype))
    for g in range(groups):
        for d in range(min_dim):
            weight = weight.at[(g * out_per_group + d, d) + centre].set(1)
    return weight


def xavier_uniform(key: jax.Array, shape: Shape, dtype: Any = None, gain: float = 1.0) -> jax.Array:
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)); torch.nn.init.xavier_uniform_.

    Example:
      >>> fl.init.xavier_uniform(jax.random.PRNGKey(0), (3, 4)).shape
      (3, 4)
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform(key, shape, dtype, -bound, bound)


def xavier_normal(key: jax.Array, shape: Shape, dtype: Any = None, gain: float = 1.0) -> jax.Array:
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)); torch.nn.init.xavier_normal_.

    Example:
      >>> fl.init.xavier_normal(jax.random.PRNGKey(0), (3, 4)).shape
      (3, 4)
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    return normal(key, shape, dtype, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def kaiming_uniform(key: jax.Array, shape: Shape, dtype: Any = None, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> jax.Array:
    """U(-b, b), b = gain * sqrt(3 / fan); torch.nn.init.kaiming_uniform_.

    Example:
      >>> fl.init.kaiming_uniform(jax.random.PRNGKey(0), (64, 3, 3, 3), a=math.sqrt(5)).shape
      (64, 3, 3, 3)
    """
    if 0 in tuple(shape):
        return jnp.zeros(tuple(shape), param_dtype(dtype))
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(shape, mode))
    return uniform(key, shape, dtype, -bound, bound)


def kaiming_normal(key: jax.Array, shape: Shape, dtype: Any = None, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu") -> jax.Array:
    """N(0, std^2), std = gain / sqrt(fan); torch.nn.init.kaiming_normal_.

    Example:
      >>> fl.init.kaiming_normal(jax.random.PRNGKey(0), (3, 4)).shape
      (3, 4)
    """
    if 0 in tuple(shape):
        return jnp.zeros(tuple(shape), param_dtype(dtype))
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return normal(key, shape, dtype, 0.0, std)


def orthogonal(key: jax.Array, shape: Shape, dtype: Any = None, gain: float = 1.0) -> jax.Array:
    """A (semi-)orthogonal matrix, flattened over trailing dims; torch.nn.init.orthogonal_.

    Example:
      >>> fl.init.orthogonal(jax.random.PRNGKey(0), (3, 4)).shape
      (3, 4)
    """
    if len(shape) < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    rows = shape[0]
    cols = math.prod(shape[1:])
    if rows * cols == 0:
        return jnp.zeros(tuple(shape), param_dtype(dtype))
    flat = _draw(jax.random.normal, key, (rows, cols), param_dtype(dtype))
    if rows < cols:
        flat = flat.T
    q, r = jnp.linalg.qr(flat)
    q = q * jnp.sign(jnp.diagonal(r))  # torch's sign fix makes the distribution uniform
    if rows < cols:
        q = q.T
    return (gain * q).reshape(tuple(shape))


def sparse(key: jax.Array, shape: Shape, dtype: Any = None, sparsity: float = 0.1, std: float = 0.01) -> jax.Array:
    """A 2-D matrix with a `sparsity` fraction of each column zeroed, the rest N(0, std^2); torch's sparse_.

    Example:
      >>> fl.init.sparse(jax.random.PRNGKey(0), (4, 3), sparsity=0.5).shape
      (4, 3)
    """
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = shape
    num_zeros = int(math.ceil(sparsity * rows))
    k_normal, k_perm = jax.random.split(key)
    values = normal(k_normal, shape, dtype, 0.0, std)
    ranks = jnp.argsort(jax.random.uniform(k_perm, (rows, cols)), axis=0).argsort(axis=0)
    return jnp.where(ranks < num_zeros, 0, values)


def bias_uniform(key: jax.Array, shape: Shape, fan_in: int, dtype: Any = None) -> jax.Array:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): the bias init of torch's Linear, Conv and RNN layers.

    Example:
      >>> fl.init.bias_uniform(jax.random.PRNGKey(0), (8,), fan_in=16).shape
      (8,)
    """
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return uniform(key, shape, dtype, -bound, bound)


__all__ = ["calculate_gain", "calculate_fan_in_and_fan_out", "uniform", "normal", "trunc_normal", "constant",
           "ones", "zeros", "eye", "dirac", "xavier_uniform", "xavier_normal", "kaiming_uniform",
           "kaiming_normal", "orthogonal", "sparse", "bias_uniform"]
