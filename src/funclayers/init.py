"""torch.nn.init's initialisers as pure functions of (key, shape, dtype).

Each `name_` of torch becomes `name(key, shape, dtype=float32, *torch's other arguments)` and
returns a new array instead of filling a tensor in place; torch's own names, `name_(key, tensor,
*torch's other arguments)`, return a new array of the tensor's shape and dtype. Fans follow torch's
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

    1 for linear, conv1d/2d/3d, conv_transpose1d/2d/3d and sigmoid; 5/3 for tanh; sqrt(2) for relu;
    sqrt(2 / (1 + negative_slope^2)) for leaky_relu; 3/4 for selu. Other names raise ValueError.

    Args:
      nonlinearity: the name of the function, as torch.nn.functional names it ("relu", "tanh", ...).
      param: leaky_relu's negative slope (default None: 0.01); ignored by the others.

    Example:
      >>> fl.init.calculate_gain("relu")
      1.4142135623730951
      >>> fl.init.calculate_gain("leaky_relu", 0.2)
      1.3867504905630728
      >>> fl.init.calculate_gain("tanh")
      1.6666666666666667
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
    """(fan_in, fan_out) of a weight shape, as torch computes them (torch.nn.init._calculate_fan_in_and_fan_out).

    fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field, the receptive field
    being the product of shape[2:] (1 for a matrix): a Linear weight is (out_features, in_features),
    a conv weight (out_channels, in_channels / groups, *kernel_size).

    Args:
      shape: a weight's shape, at least 2 dimensions (ValueError otherwise).

    Shape:
      a shape (d0, d1, *k) with at least 2 dims -> two ints, (d1 prod(k), d0 prod(k)).

    Example:
      >>> fl.init.calculate_fan_in_and_fan_out((64, 3, 3, 3))   # conv 3 -> 64, kernel 3x3
      (27, 576)
      >>> fl.init.calculate_fan_in_and_fan_out((8, 16))   # Linear(16, 8)
      (16, 8)
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

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints, any (0-d and empty shapes included).
      dtype: the result's dtype (default None: float32, torch's default).
      a: the lower bound of the uniform distribution (default 0.0).
      b: the upper bound of the uniform distribution (default 1.0).

    Shape:
      any shape -> an array of that shape.

    Example:
      >>> w = fl.init.uniform(jax.random.PRNGKey(0), (3, 4), a=-0.5, b=0.5)
      >>> w.shape, bool(jnp.all((w >= -0.5) & (w < 0.5)))
      ((3, 4), True)
    """
    return _draw(jax.random.uniform, key, shape, param_dtype(dtype), a, b)


def normal(key: jax.Array, shape: Shape, dtype: Any = None, mean: float = 0.0, std: float = 1.0) -> jax.Array:
    """N(mean, std^2); torch.nn.init.normal_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints, any (0-d and empty shapes included).
      dtype: the result's dtype (default None: float32, torch's default).
      mean: the mean of the normal distribution (default 0.0).
      std: the standard deviation of the normal distribution (default 1.0).

    Shape:
      any shape -> an array of that shape.

    Example:
      >>> fl.init.normal(jax.random.PRNGKey(0), (3, 4), std=0.02).shape
      (3, 4)
    """
    return mean + std * _draw(jax.random.normal, key, shape, param_dtype(dtype))


def trunc_normal(key: jax.Array, shape: Shape, dtype: Any = None, mean: float = 0.0, std: float = 1.0,
                 a: float = -2.0, b: float = 2.0) -> jax.Array:
    """N(mean, std^2) truncated to [a, b] (absolute bounds, as torch); torch.nn.init.trunc_normal_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints, any (0-d and empty shapes included).
      dtype: the result's dtype (default None: float32, torch's default).
      mean: the mean of the untruncated normal distribution (default 0.0).
      std: the standard deviation of the untruncated normal distribution (default 1.0).
      a: the minimum cutoff value, in the values' units (default -2.0).
      b: the maximum cutoff value, in the values' units (default 2.0).

    Shape:
      any shape -> an array of that shape.

    Example:
      >>> w = fl.init.trunc_normal(jax.random.PRNGKey(0), (3, 4), std=0.02, a=-0.04, b=0.04)
      >>> w.shape, bool(jnp.all(jnp.abs(w) <= 0.04))
      ((3, 4), True)
    """
    lower, upper = (a - mean) / std, (b - mean) / std
    dtype = param_dtype(dtype)
    def sample(key, shape, dtype):
        return jax.random.truncated_normal(key, lower, upper, shape, dtype)

    draw = _draw(sample, key, shape, dtype)
    return jnp.clip(mean + std * draw, a, b)


def constant(key: jax.Array | None, shape: Shape, dtype: Any = None, val: float = 0.0) -> jax.Array:
    """Filled with `val`; torch.nn.init.constant_ (the key is ignored).

    Args:
      key: ignored (may be None); taken so that every initialiser is called as (key, shape, dtype).
      shape: the result's shape, a sequence of ints, any.
      dtype: the result's dtype (default None: float32, torch's default).
      val: the fill value (default 0.0).

    Shape:
      any shape -> an array of that shape.

    Example:
      >>> fl.init.constant(jax.random.PRNGKey(0), (2, 2), val=0.5)
      Array([[0.5, 0.5],
             [0.5, 0.5]], dtype=float32)
    """
    del key
    return jnp.full(tuple(shape), val, param_dtype(dtype))


def ones(key: jax.Array | None, shape: Shape, dtype: Any = None) -> jax.Array:
    """Ones; torch.nn.init.ones_.

    Args:
      key: ignored (may be None); taken so that every initialiser is called as (key, shape, dtype).
      shape: the result's shape, a sequence of ints, any.
      dtype: the result's dtype (default None: float32, torch's default).

    Shape:
      any shape -> an array of that shape.

    Example:
      >>> fl.init.ones(None, (2,))
      Array([1., 1.], dtype=float32)
    """
    return constant(key, shape, dtype, 1.0)


def zeros(key: jax.Array | None, shape: Shape, dtype: Any = None) -> jax.Array:
    """Zeros; torch.nn.init.zeros_.

    Args:
      key: ignored (may be None); taken so that every initialiser is called as (key, shape, dtype).
      shape: the result's shape, a sequence of ints, any.
      dtype: the result's dtype (default None: float32, torch's default).

    Shape:
      any shape -> an array of that shape.

    Example:
      >>> fl.init.zeros(jax.random.PRNGKey(0), (2,), jnp.float16)
      Array([0., 0.], dtype=float16)
    """
    return constant(key, shape, dtype, 0.0)


def eye(key: jax.Array | None, shape: Shape, dtype: Any = None) -> jax.Array:
    """The identity matrix of a 2-D shape (ones on the main diagonal of a rectangle); torch.nn.init.eye_.

    Args:
      key: ignored (may be None); taken so that every initialiser is called as (key, shape, dtype).
      shape: the result's shape, a sequence of ints: exactly 2 dimensions (ValueError otherwise).
      dtype: the result's dtype (default None: float32, torch's default).

    Shape:
      (rows, cols) -> (rows, cols).

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

    Each group's first min(out_channels / groups, in_channels) output channels copy their input
    channel through the kernel's centre; the rest is zero.

    Args:
      key: ignored (may be None); taken so that every initialiser is called as (key, shape, dtype).
      shape: the result's shape, a sequence of ints: a conv weight (out_channels, in_channels,
        *kernel_size), 3 to 5 dimensions.
      dtype: the result's dtype (default None: float32, torch's default).
      groups: the conv's groups; shape[0] must be divisible by it (default 1).

    Shape:
      (C_out, C_in, k1[, k2[, k3]]) -> the same shape.

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
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)); torch.nn.init.xavier_uniform_ (Glorot).

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints, at least 2 dimensions (fans as `calculate_fan_in_and_fan_out`).
      dtype: the result's dtype (default None: float32, torch's default).
      gain: a scaling factor, e.g. `calculate_gain("tanh")` (default 1.0).

    Shape:
      any shape with at least 2 dims -> an array of that shape.

    Example:
      >>> w = fl.init.xavier_uniform(jax.random.PRNGKey(0), (3, 4))
      >>> w.shape, bool(jnp.abs(w).max() <= math.sqrt(6 / 7))   # fan_in 4, fan_out 3
      ((3, 4), True)
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform(key, shape, dtype, -bound, bound)


def xavier_normal(key: jax.Array, shape: Shape, dtype: Any = None, gain: float = 1.0) -> jax.Array:
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)); torch.nn.init.xavier_normal_ (Glorot).

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints, at least 2 dimensions (fans as `calculate_fan_in_and_fan_out`).
      dtype: the result's dtype (default None: float32, torch's default).
      gain: a scaling factor (default 1.0).

    Shape:
      any shape with at least 2 dims -> an array of that shape.

    Example:
      >>> fl.init.xavier_normal(jax.random.PRNGKey(0), (3, 4)).shape
      (3, 4)
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(shape)
    return normal(key, shape, dtype, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def kaiming_uniform(key: jax.Array, shape: Shape, dtype: Any = None, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> jax.Array:
    """U(-b, b), b = gain * sqrt(3 / fan); torch.nn.init.kaiming_uniform_ (He).

    With a=sqrt(5) (torch's default for Linear and Conv weights) b = 1 / sqrt(fan_in).

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints, at least 2 dimensions (fans as
        `calculate_fan_in_and_fan_out`); a shape with a zero-size dimension gives an empty array.
      dtype: the result's dtype (default None: float32, torch's default).
      a: the negative slope of the leaky_relu after this layer (default 0.0; used with leaky_relu only).
      mode: "fan_in" (default; keeps the forward pass's variance) or "fan_out" (the backward pass's).
      nonlinearity: the nonlinearity's name for `calculate_gain` (default "leaky_relu").

    Shape:
      any shape with at least 2 dims -> an array of that shape.

    Example:
      >>> w = fl.init.kaiming_uniform(jax.random.PRNGKey(0), (64, 3, 3, 3), a=math.sqrt(5))
      >>> w.shape, bool(jnp.abs(w).max() <= 1 / math.sqrt(27))   # fan_in 3 * 3 * 3
      ((64, 3, 3, 3), True)
    """
    if 0 in tuple(shape):
        return jnp.zeros(tuple(shape), param_dtype(dtype))
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(shape, mode))
    return uniform(key, shape, dtype, -bound, bound)


def kaiming_normal(key: jax.Array, shape: Shape, dtype: Any = None, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu") -> jax.Array:
    """N(0, std^2), std = gain / sqrt(fan); torch.nn.init.kaiming_normal_ (He).

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints, at least 2 dimensions (fans as
        `calculate_fan_in_and_fan_out`); a shape with a zero-size dimension gives an empty array.
      dtype: the result's dtype (default None: float32, torch's default).
      a: the negative slope of the leaky_relu after this layer (default 0.0; used with leaky_relu only).
      mode: "fan_in" (default) or "fan_out".
      nonlinearity: the nonlinearity's name for `calculate_gain` (default "leaky_relu").

    Shape:
      any shape with at least 2 dims -> an array of that shape.

    Example:
      >>> fl.init.kaiming_normal(jax.random.PRNGKey(0), (3, 4), mode="fan_out", nonlinearity="relu").shape
      (3, 4)
    """
    if 0 in tuple(shape):
        return jnp.zeros(tuple(shape), param_dtype(dtype))
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return normal(key, shape, dtype, 0.0, std)


def orthogonal(key: jax.Array, shape: Shape, dtype: Any = None, gain: float = 1.0) -> jax.Array:
    """A (semi-)orthogonal matrix, flattened over trailing dims; torch.nn.init.orthogonal_.

    The QR decomposition of a normal (rows, prod(shape[1:])) matrix, sign-fixed as torch does,
    times gain: orthonormal rows when rows <= cols, orthonormal columns otherwise.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints, at least 2 dimensions (ValueError otherwise);
        the dimensions after the first are flattened.
      dtype: the result's dtype (default None: float32, torch's default).
      gain: a scaling factor (default 1.0).

    Shape:
      (rows, *rest) with at least 2 dims -> the same shape.

    Example:
      >>> w = fl.init.orthogonal(jax.random.PRNGKey(0), (3, 4))
      >>> bool(jnp.allclose(w @ w.T, jnp.eye(3), atol=1e-5))   # orthonormal rows
      True
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
    """A 2-D matrix with a `sparsity` fraction of each column zeroed, the rest N(0, std^2); torch.nn.init.sparse_.

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints: exactly 2 dimensions (rows, cols) (ValueError otherwise).
      dtype: the result's dtype (default None: float32, torch's default).
      sparsity: the fraction of each column set to zero: ceil(sparsity * rows) entries (default 0.1).
      std: the standard deviation of the non-zero entries (default 0.01).

    Shape:
      (rows, cols) -> (rows, cols).

    Example:
      >>> w = fl.init.sparse(jax.random.PRNGKey(0), (4, 3), sparsity=0.5)
      >>> (w == 0).sum(axis=0)   # ceil(0.5 * 4) zeros per column
      Array([2, 2, 2], dtype=int32)
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

    Args:
      key: a jax.random key (`jax.random.PRNGKey(seed)`).
      shape: the result's shape, a sequence of ints, any (a bias is usually (out_features,)).
      fan_in: the weight's fan-in (`calculate_fan_in_and_fan_out(weight_shape)[0]`); 0 gives zeros.
      dtype: the result's dtype (default None: float32, torch's default).

    Shape:
      any shape -> an array of that shape.

    Example:
      >>> b = fl.init.bias_uniform(jax.random.PRNGKey(0), (8,), fan_in=16)
      >>> b.shape, bool(jnp.abs(b).max() <= 0.25)   # 1 / sqrt(16)
      ((8,), True)
    """
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return uniform(key, shape, dtype, -bound, bound)


# torch's in-place names, (key, tensor, ...) -> a new array like tensor (_init_inplace.py builds on the above)
from ._init_inplace import (  # noqa: E402
    constant_,
    dirac_,
    eye_,
    kaiming_normal_,
    kaiming_uniform_,
    normal_,
    ones_,
    orthogonal_,
    sparse_,
    trunc_normal_,
    uniform_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)

__all__ = ["calculate_gain", "calculate_fan_in_and_fan_out", "uniform", "normal", "trunc_normal", "constant",
           "ones", "zeros", "eye", "dirac", "xavier_uniform", "xavier_normal", "kaiming_uniform",
           "kaiming_normal", "orthogonal", "sparse", "bias_uniform",
           "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_"]
