"""Adaptive average and max pooling to a fixed output size (torch.nn.AdaptiveAvgPool*d, AdaptiveMaxPool*d).

torch's bins along an axis of length L pooled to o cells: cell i covers [floor(i*L/o), ceil((i+1)*L/o)),
so bins overlap where o does not divide L, and o > L repeats elements. Both ops work one spatial
axis at a time with small static tables, so the compiled graph does not grow with the number of
output cells: average pooling is a product with an (o, L) averaging matrix per axis; max pooling
gathers each bin (padded to the longest bin by repeating its last element) and reduces it.
Reducing axis by axis picks the element torch's row-major scan picks (first maximum, last NaN).
On CPU, short axes are max-pooled with the planes (N*C) last, where every bin element is a
contiguous row (`_planes_last`); that graph grows with the axis, up to `ROWS_MAX_SIZE`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._kernels._max_select import window_max
from ._layer import Layer, stateless
from ._layout import CNHW, PHASE
from ._pooling import check_pool_input, index_dtype
from ._utils import on_cpu


def adaptive_bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's start_index / end_index: [floor(i*L/o), ceil((i+1)*L/o)) for i < o."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _output_size(layer: str, input: Any, output_size: Any, n: int) -> tuple[int, ...]:
    """output_size as n ints; None entries keep the input's size (torch's _list_with_default)."""
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        sizes = (output_size,) * n
    else:
        sizes = tuple(output_size)
        if n == 1 and len(sizes) != 1:
            raise ValueError(f"{layer}: argument 'output_size' should contain one int (got {len(sizes)}).")
        if len(sizes) != n:
            raise ValueError(
                f"{layer}: output_size must be an int or a tuple of {n} ints or None, got {output_size!r}."
            )
    spatial = np.shape(input)[-n:]
    sizes = tuple(int(L) if o is None else o for o, L in zip(sizes, spatial, strict=False))
    _check_sizes(layer, sizes, output_size)
    return sizes


def _check_sizes(layer: str, sizes, output_size) -> None:
    for o in sizes:
        if o is None:
            continue
        if not isinstance(o, (int, np.integer)) or isinstance(o, bool):
            raise TypeError(f"{layer}: output_size entries must be ints or None, got {output_size!r}.")
        if o < 0:
            raise ValueError(
                f"{layer}: elements of output_size must be greater than or equal to 0 but "
                f"received {output_size!r}."
            )


def _check_input(layer: str, input: Any, n: int) -> jax.Array:
    check_pool_input(layer, input, n)
    return jnp.asarray(input)


def _averaging_matrix(size: int, out: int, dtype) -> jax.Array:
    start, end = adaptive_bins(size, out)
    cols = np.arange(size)[None, :]
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return jnp.asarray(inside / (end - start)[:, None], dtype)


def _adaptive_avg(n: int, layer: str, input, output_size) -> jax.Array:
    x = _check_input(layer, input, n)
    out = _output_size(layer, x, output_size, n)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{layer} expects a floating-point input, got dtype {x.dtype}.")
    for axis in range(n):  # one (o, L) averaging matrix per axis: out = A_h @ x @ A_w^T
        pos = x.ndim - n + axis
        matrix = _averaging_matrix(x.shape[pos], out[axis], x.dtype)
        moved = jnp.moveaxis(x, pos, -1)
        x = jnp.moveaxis(jnp.matmul(moved, matrix.T, precision=lax.Precision.HIGHEST), -1, pos)
    return x


def adaptive_avg_pool1d(input: jax.Array, output_size: Any) -> jax.Array:
    """1-D adaptive average pooling of (N, C, L) or (C, L); torch.nn.functional.adaptive_avg_pool1d.

    Args:
      input: the (N, C, L) or (C, L) array to pool (floating point).
      output_size: an int (or a 1-tuple), the target L_out.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> F.adaptive_avg_pool1d(jnp.arange(6.0).reshape(1, 1, 6), 3)
      Array([[[0.5, 2.5, 4.5]]], dtype=float32)
      >>> F.adaptive_avg_pool1d(jnp.arange(5.0).reshape(1, 1, 5), 3)   # bins [0, 2), [1, 4), [3, 5)
      Array([[[0.5, 2. , 3.5]]], dtype=float32)
    """
    return _adaptive_avg(1, "adaptive_avg_pool1d", input, output_size)


def adaptive_avg_pool2d(input: jax.Array, output_size: Any) -> jax.Array:
    """2-D adaptive average pooling to (H_out, W_out); torch.nn.functional.adaptive_avg_pool2d.

    Args:
      input: the (N, C, H, W) or (C, H, W) array to pool (floating point).
      output_size: an int (square output) or a pair (H_out, W_out); a None entry keeps that input size.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> F.adaptive_avg_pool2d(jnp.ones((2, 3, 10, 10)), 7).shape
      (2, 3, 7, 7)
      >>> F.adaptive_avg_pool2d(jnp.arange(8.0).reshape(1, 2, 4), (1, None))   # None keeps W
      Array([[[2., 3., 4., 5.]]], dtype=float32)
    """
    return _adaptive_avg(2, "adaptive_avg_pool2d", input, output_size)


def adaptive_avg_pool3d(input: jax.Array, output_size: Any) -> jax.Array:
    """3-D adaptive average pooling to (D_out, H_out, W_out); torch.nn.functional.adaptive_avg_pool3d.

    Args:
      input: the (N, C, D, H, W) or (C, D, H, W) array to pool (floating point).
      output_size: an int (cubic output) or a triple (D_out, H_out, W_out); a None entry keeps that input size.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> F.adaptive_avg_pool3d(jnp.ones((1, 2, 5, 6, 7)), (2, 3, 1)).shape
      (1, 2, 2, 3, 1)
    """
    return _adaptive_avg(3, "adaptive_avg_pool3d", input, output_size)


def _max_along(value: jax.Array, axis: int, size: int, out: int, planes_last: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    """torch's pick in each adaptive bin along `axis`: (values, input coordinates along `axis`).

    View j of the bins is a static gather of each bin's j-th element (short bins repeat their last
    element, which never changes the pick's value or coordinate); the graph has one gather per
    element of the longest bin, whatever the number of bins. The backward pass (`window_max`) is
    one product of the masked cotangents with a one-hot matrix per axis.
    """
    start, end = adaptive_bins(size, out)
    width = int((end - start).max())
    table = np.minimum(start[:, None] + np.arange(width)[None, :], end[:, None] - 1)

    def views(v):
        return [jnp.take(v, jnp.asarray(table[:, j]), axis=axis) for j in range(width)]

    result, pick = window_max(value, axis, table, views, rows=planes_last)
    rows = np.arange(out).reshape((-1,) + (1,) * (value.ndim - axis - 1))
    return result, jnp.asarray(table, index_dtype())[rows, pick]


def _adaptive_max(n: int, layer: str, input, output_size, return_indices) -> Any:
    x = _check_input(layer, input, n)
    out = _output_size(layer, x, output_size, n)
    lead = x.ndim - n
    spatial = x.shape[lead:]
    if 0 in out:
        shape = x.shape[:lead] + out
        empty = jnp.zeros(shape, x.dtype)
        return (empty, jnp.zeros(shape, index_dtype())) if return_indices else empty
    planes_last = _planes_last(spatial, out)
    value, coords = x, {}
    if planes_last:  # (*spatial, N*C): every bin element is a contiguous row of planes
        value = jnp.moveaxis(x.reshape((int(np.prod(x.shape[:lead])),) + spatial), 0, -1)
        lead = 0
    # last axis first: each stage gathers bins along one axis and keeps torch's pick per bin
    for axis in reversed(range(n)):
        pos = lead + axis
        value, chosen = _max_along(value, pos, spatial[axis], out[axis], planes_last)  # input coordinate
        coords = {a: jnp.take_along_axis(c, chosen, axis=pos) for a, c in coords.items()}
        coords[axis] = chosen
    plane = [int(np.prod(spatial[a + 1 :])) for a in range(n)]
    index = sum(coords[a] * plane[a] for a in range(n)) if return_indices else None
    if planes_last:
        back = lambda v: jnp.moveaxis(v, -1, 0).reshape(x.shape[: x.ndim - n] + out)  # noqa: E731
        value, index = back(value), (back(index) if return_indices else None)
    return (value, index) if return_indices else value


ROWS_MAX_SIZE = 32  # longest pooled axis computed with planes last (see _planes_last)


def _planes_last(spatial: tuple[int, ...], out: tuple[int, ...]) -> bool:
    """Whether to max-pool with the planes (N*C) as the minor axis instead of torch's layout, on CPU.

    With the planes last, each bin element is a contiguous row: the pick is one reduction over
    whole rows and the backward pass sums masked rows, instead of gathering along the minor axis.
    Forward + backward, planes last vs torch's layout (ms, one process, 2 cores): (32, 256, 14, 14)
    -> 5: 3.8 vs 14.1; (8, 256, 28, 28) -> 5: 3.7 vs 11.8; (32, 64, 16, 16) -> 10: 2.9 vs 6.4;
    global (32, 512, 7, 7) -> 1: 1.5 vs 5.5; (8, 64, 28, 28) -> 7: 0.8 vs 2.6; 1-d (32, 64, 13) -> 5:
    0.14 vs 0.55; 3-d (8, 32, 9, 10, 11) -> 4: 0.6 vs 2.3. Forward only: 1.2 vs 6.4 ms at
    (32, 256, 14, 14) -> 5, 1.0 vs 5.5 at (32, 64, 16, 16) -> 10, but 0.50 vs 0.37 for the global
    (32, 512, 7, 7) -> 1 (the transpose costs more than the reduction saves; kept for the 3.6x in
    training). The graph grows with the axis length and the bins (one row per input position, one
    term per bin element), so only axes and outputs up to `ROWS_MAX_SIZE` take it (compiled in
    ~1 s at most; (8, 64, 56, 56) -> 7 would be 6.5 vs 14.8 ms but compile in 2.5 s, not 0.9).
    """
    return on_cpu() and max(spatial + out) <= ROWS_MAX_SIZE


def adaptive_max_pool1d(input: jax.Array, output_size: Any, return_indices: bool = False) -> Any:
    """1-D adaptive max pooling to L_out; torch.nn.functional.adaptive_max_pool1d.

    Args:
      input: the (N, C, L) or (C, L) array to pool.
      output_size: an int (or a 1-tuple), the target L_out.
      return_indices: also return the flat indices of the maxima over L (int64; int32
        without jax_enable_x64), the input of MaxUnpool1d. Default: False.

    Returns:
      The pooled array; `(output, indices)` with `return_indices`, the indices flat over L.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> F.adaptive_max_pool1d(jnp.arange(6.0).reshape(1, 1, 6), 3)
      Array([[[1., 3., 5.]]], dtype=float32)
    """
    return _adaptive_max(1, "adaptive_max_pool1d", input, output_size, return_indices)


def adaptive_max_pool2d(input: jax.Array, output_size: Any, return_indices: bool = False) -> Any:
    """2-D adaptive max pooling to (H_out, W_out); torch.nn.functional.adaptive_max_pool2d.

    Args:
      input: the (N, C, H, W) or (C, H, W) array to pool.
      output_size: an int (square output) or a pair (H_out, W_out); a None entry keeps that input size.
      return_indices: also return the flat indices of the maxima over H*W (int64; int32
        without jax_enable_x64), the input of MaxUnpool2d. Default: False.

    Returns:
      The pooled array; `(output, indices)` with `return_indices`, the indices flat over H*W.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> x = jnp.arange(12.0).reshape(1, 3, 4)   # unbatched (C, H, W)
      >>> y, idx = F.adaptive_max_pool2d(x, (2, None), return_indices=True)   # row bins [0, 2), [1, 3)
      >>> y
      Array([[[ 4.,  5.,  6.,  7.],
              [ 8.,  9., 10., 11.]]], dtype=float32)
      >>> idx
      Array([[[ 4,  5,  6,  7],
              [ 8,  9, 10, 11]]], dtype=int32)
    """
    return _adaptive_max(2, "adaptive_max_pool2d", input, output_size, return_indices)


def adaptive_max_pool3d(input: jax.Array, output_size: Any, return_indices: bool = False) -> Any:
    """3-D adaptive max pooling to (D_out, H_out, W_out); torch.nn.functional.adaptive_max_pool3d.

    Args:
      input: the (N, C, D, H, W) or (C, D, H, W) array to pool.
      output_size: an int (cubic output) or a triple (D_out, H_out, W_out); a None entry keeps that input size.
      return_indices: also return the flat indices of the maxima over D*H*W (int64; int32
        without jax_enable_x64), the input of MaxUnpool3d. Default: False.

    Returns:
      The pooled array; `(output, indices)` with `return_indices`, the indices flat over D*H*W.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> F.adaptive_max_pool3d(jnp.ones((1, 2, 5, 6, 7)), 2).shape
      (1, 2, 2, 2, 2)
    """
    return _adaptive_max(3, "adaptive_max_pool3d", input, output_size, return_indices)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False) -> tuple[jax.Array, jax.Array]:
    """adaptive_max_pool1d returning (output, indices); torch.nn.functional.adaptive_max_pool1d_with_indices.

    Args:
      input: the (N, C, L) or (C, L) array to pool.
      output_size: an int (or a 1-tuple), the target L_out.
      return_indices: ignored (torch's signature); the indices are always returned. Default: False.

    Returns:
      `(output, indices)`, the indices flat over L (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> y, idx = F.adaptive_max_pool1d_with_indices(jnp.arange(6.0).reshape(1, 1, 6), 3)
      >>> idx
      Array([[[1, 3, 5]]], dtype=int32)
    """
    return _adaptive_max(1, "adaptive_max_pool1d", input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False) -> tuple[jax.Array, jax.Array]:
    """adaptive_max_pool2d returning (output, indices); torch.nn.functional.adaptive_max_pool2d_with_indices.

    Args:
      input: the (N, C, H, W) or (C, H, W) array to pool.
      output_size: an int (square output) or a pair (H_out, W_out); a None entry keeps that input size.
      return_indices: ignored (torch's signature); the indices are always returned. Default: False.

    Returns:
      `(output, indices)`, the indices flat over H*W (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> y, idx = F.adaptive_max_pool2d_with_indices(jnp.arange(16.0).reshape(1, 1, 4, 4), 1)
      >>> y, idx
      (Array([[[[15.]]]], dtype=float32), Array([[[[15]]]], dtype=int32))
    """
    return _adaptive_max(2, "adaptive_max_pool2d", input, output_size, True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False) -> tuple[jax.Array, jax.Array]:
    """adaptive_max_pool3d returning (output, indices); torch.nn.functional.adaptive_max_pool3d_with_indices.

    Args:
      input: the (N, C, D, H, W) or (C, D, H, W) array to pool.
      output_size: an int (cubic output) or a triple (D_out, H_out, W_out); a None entry keeps that input size.
      return_indices: ignored (torch's signature); the indices are always returned. Default: False.

    Returns:
      `(output, indices)`, the indices flat over D*H*W (int64; int32 without jax_enable_x64).

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> y, idx = F.adaptive_max_pool3d_with_indices(jnp.ones((1, 2, 4, 4, 4)), 2)
      >>> idx.shape
      (1, 2, 2, 2, 2)
    """
    return _adaptive_max(3, "adaptive_max_pool3d", input, output_size, True)


# -- layers --------------------------------------------------------------------------------------


def _check_config(layer: str, n: int, output_size: Any) -> None:
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        sizes = (output_size,)
    else:
        sizes = tuple(output_size)
        if len(sizes) != n:
            raise ValueError(
                f"{layer}: output_size must be an int or a tuple of {n} ints or None, got {output_size!r}."
            )
    if n == 1 and None in sizes:
        raise ValueError(f"{layer}: output_size must be an int, got {output_size!r}.")
    _check_sizes(layer, sizes, output_size)


def _adaptive_layer(kind: str, n: int, output_size: Any, return_indices: bool | None = None) -> Layer:
    name = f"Adaptive{kind}Pool{n}d(output_size={output_size})"
    _check_config(f"Adaptive{kind}Pool{n}d", n, output_size)
    if kind == "Avg":
        layer = stateless(name, lambda input: _adaptive_avg(n, name, input, output_size))
        sizes = [output_size] * 2 if isinstance(output_size, int) else output_size
        if n == 2 and isinstance(sizes, (tuple, list)) and list(sizes) == [1, 1]:
            layer.apply._layout = lambda *args: _global_avg_layout(*args)
        return layer
    return stateless(name, lambda input: _adaptive_max(n, name, input, output_size, return_indices))


def _global_avg_layout(params, state, value, layout, training):
    """`_layout.py`: AdaptiveAvgPool2d(1) of a "phase" or "cnhw" value, read in place: the mean of
    each (channel, sample) plane, without interleaving the value back into NCHW first (the small
    CNN's last BatchNorm + ReLU were written out transposed for the pool, issue 28)."""
    del params, training
    if layout not in (PHASE, CNHW) or not jnp.issubdtype(value.dtype, jnp.inexact):
        return None
    means = jnp.mean(value, (0, 1, 4, 5) if layout == PHASE else (2, 3))  # (C, N)
    return means.T[:, :, None, None], None, state


def AdaptiveAvgPool1d(output_size: Any) -> Layer:
    """Layer twin of torch.nn.AdaptiveAvgPool1d: averages torch's adaptive bins to L_out cells. No parameters.

    Args:
      output_size: an int (or a 1-tuple), the target L_out.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> y, _ = fl.AdaptiveAvgPool1d(3).apply({}, {}, jnp.array([[[0.0, 1.0]]]))   # o > L: bins [0, 1), [0, 2), [1, 2)
      >>> y
      Array([[[0. , 0.5, 1. ]]], dtype=float32)
    """
    return _adaptive_layer("Avg", 1, output_size)


def AdaptiveAvgPool2d(output_size: Any) -> Layer:
    """Layer twin of torch.nn.AdaptiveAvgPool2d: averages torch's adaptive bins to (H_out, W_out). No parameters.

    Args:
      output_size: an int (square output) or a pair (H_out, W_out); a None entry keeps that input size.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> y, _ = fl.AdaptiveAvgPool2d((5, None)).apply({}, {}, jnp.ones((1, 4, 8, 9)))
      >>> y.shape
      (1, 4, 5, 9)
    """
    return _adaptive_layer("Avg", 2, output_size)


def AdaptiveAvgPool3d(output_size: Any) -> Layer:
    """Layer twin of torch.nn.AdaptiveAvgPool3d: averages torch's adaptive bins to (D_out, H_out, W_out). No parameters.

    Args:
      output_size: an int (cubic output) or a triple (D_out, H_out, W_out); a None entry keeps that input size.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> y, _ = fl.AdaptiveAvgPool3d((2, 3, None)).apply({}, {}, jnp.ones((1, 2, 4, 5, 6)))
      >>> y.shape
      (1, 2, 2, 3, 6)
    """
    return _adaptive_layer("Avg", 3, output_size)


def AdaptiveMaxPool1d(output_size: Any, return_indices: bool = False) -> Layer:
    """Layer twin of torch.nn.AdaptiveMaxPool1d: the max of each of torch's adaptive bins. No parameters.

    Args:
      output_size: an int (or a 1-tuple), the target L_out.
      return_indices: also return the flat indices of the maxima over L (int64; int32
        without jax_enable_x64), the input of MaxUnpool1d: apply then returns `((output, indices), state)`.
        Default: False.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> pool = fl.AdaptiveMaxPool1d(2, return_indices=True)
      >>> (y, idx), _ = pool.apply({}, {}, jnp.array([[[1.0, 5.0, 2.0, 0.0, 3.0]]]))   # bins [0, 3), [2, 5)
      >>> y, idx
      (Array([[[5., 3.]]], dtype=float32), Array([[[1, 4]]], dtype=int32))
    """
    return _adaptive_layer("Max", 1, output_size, return_indices)


def AdaptiveMaxPool2d(output_size: Any, return_indices: bool = False) -> Layer:
    """Layer twin of torch.nn.AdaptiveMaxPool2d: the max of each of torch's adaptive bins. No parameters.

    Args:
      output_size: an int (square output) or a pair (H_out, W_out); a None entry keeps that input size.
      return_indices: also return the flat indices of the maxima over H*W (int64; int32
        without jax_enable_x64), the input of MaxUnpool2d: apply then returns `((output, indices), state)`.
        Default: False.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> y, _ = fl.AdaptiveMaxPool2d(1).apply({}, {}, jnp.arange(16.0).reshape(1, 1, 4, 4))   # global max pooling
      >>> y
      Array([[[[15.]]]], dtype=float32)
    """
    return _adaptive_layer("Max", 2, output_size, return_indices)


def AdaptiveMaxPool3d(output_size: Any, return_indices: bool = False) -> Layer:
    """Layer twin of torch.nn.AdaptiveMaxPool3d: the max of each of torch's adaptive bins. No parameters.

    Args:
      output_size: an int (cubic output) or a triple (D_out, H_out, W_out); a None entry keeps that input size.
      return_indices: also return the flat indices of the maxima over D*H*W (int64; int32
        without jax_enable_x64), the input of MaxUnpool3d: apply then returns `((output, indices), state)`.
        Default: False.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out),
      where output cell i along an axis of length L pooled to o cells covers the input positions
      floor(i L / o) <= j < ceil((i + 1) L / o) (bins overlap when o does not divide L).

    Example:
      >>> y, _ = fl.AdaptiveMaxPool3d((1, 2, None)).apply({}, {}, jnp.ones((1, 2, 3, 4, 5)))
      >>> y.shape
      (1, 2, 1, 2, 5)
    """
    return _adaptive_layer("Max", 3, output_size, return_indices)
