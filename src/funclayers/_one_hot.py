"""one_hot (torch.nn.functional.one_hot): class indices to one-hot vectors."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._utils import TorchRuntimeError, fmt_shape


def _concrete(x: jax.Array) -> np.ndarray | None:
    """x's values when they are known now (not traced under jit/vmap/grad), else None."""
    try:
        return np.asarray(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def one_hot(tensor: Any, num_classes: int = -1) -> jax.Array:
    """Class indices to one-hot vectors along a new last axis; torch.nn.functional.one_hot.

    With num_classes=-1 the count is max(tensor) + 1, which needs the values: under `jax.jit` (a
    traced `tensor`) pass num_classes explicitly. Out-of-range indices raise when the values are
    known; a traced index outside [0, num_classes) gives an all-zero row (no check can run there).

    Args:
      tensor: integer class indices, any shape (torch's LongTensor; any integer dtype here).
      num_classes: the number of classes, or -1 (default) to use max(tensor) + 1.

    Shape:
      `(*)` -> `(*, num_classes)`, in the input's integer dtype.

    Example:
      >>> F.one_hot(jnp.array([0, 2, 1]))
      Array([[1, 0, 0],
             [0, 0, 1],
             [0, 1, 0]], dtype=int32)
      >>> F.one_hot(jnp.array(1), 4)
      Array([0, 1, 0, 0], dtype=int32)
    """
    x = jnp.asarray(tensor)
    if not jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        raise TypeError(f"one_hot is only applicable to index tensor of type LongTensor (an integer array), got "
                        f"dtype {x.dtype}; cast it with .astype(jnp.int32).")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < -1:
        raise ValueError(f"one_hot: num_classes must be a non-negative int or -1 (inferred), got {num_classes!r}.")
    values = _concrete(x)
    if num_classes == -1:
        if values is None:
            raise ValueError(f"one_hot: num_classes=-1 infers the count from max(tensor) + 1, which needs the "
                             f"values, but the input of shape {fmt_shape(x)} is traced (under jit, vmap or grad); "
                             f"pass num_classes explicitly.")
        if values.size == 0:
            raise TorchRuntimeError("one_hot: Can not infer total number of classes from empty tensor.")
        num_classes = int(values.max()) + 1
    if values is not None and values.size:
        if values.min() < 0:
            raise TorchRuntimeError(f"one_hot: Class values must be non-negative, got {int(values.min())}.")
        if values.max() >= num_classes:
            raise TorchRuntimeError(f"one_hot: Class values must be smaller than num_classes ({num_classes}), got "
                                    f"{int(values.max())}.")
    return (x[..., None] == jnp.arange(int(num_classes))).astype(x.dtype)
