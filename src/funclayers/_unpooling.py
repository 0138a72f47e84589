"""Max unpooling, the partial inverse of max pooling (torch.nn.MaxUnpool1d/2d/3d).

Each input value is written at its flat per-plane index of the output (zeros elsewhere); the
gradient w.r.t. the input gathers the output gradient at the same indices, as torch's backward
does (every duplicate index gets it, not only the value that won the write).

Out-of-range indices: torch raises "Found an invalid max index". funclayers raises the same
ValueError when the indices are concrete (outside jit); under jit the indices are traced values
that cannot be inspected at trace time, so out-of-range entries are dropped (not written) and
receive a zero gradient.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._kernels._primitive import linear_call
from ._layer import Layer, stateless
from ._pooling import pool_tuple
from ._utils import check_rank, fmt_shape

_DIMS = {1: ("C, L", "N, C, L"), 2: ("C, H, W", "N, C, H, W"), 3: ("C, D, H, W", "N, C, D, H, W")}


def unpool_output_size(layer: str, input_shape, kernel, stride, padding, output_size) -> tuple[int, ...]:
    """torch's _unpool_output_size: (L - 1) * stride + kernel - 2 * padding, or a checked output_size."""
    n = len(kernel)
    default = [(input_shape[-n + d] - 1) * stride[d] + kernel[d] - 2 * padding[d] for d in range(n)]
    if output_size is None:
        out = default
    else:
        out = [int(v) for v in output_size]
        if len(out) == n + 2:
            out = out[2:]
        if len(out) != n:
            raise ValueError(
                f"{layer}: output_size should be a sequence containing {n} or {n + 2} elements, but "
                f"it has a length of '{len(out)}'"
            )
        for d in range(n):
            low, high = default[d] - stride[d], default[d] + stride[d]
            if not low < out[d] < high:
                raise ValueError(
                    f'{layer}: invalid output_size "{tuple(output_size)}" (dim {d} must be between '
                    f"{low} and {high})"
                )
    for d, v in enumerate(out):
        if v < 0:
            raise ValueError(
                f"{layer}: max_unpooling: output_size must contain non-negative spatial dimensions, "
                f"but got output_size[{d}]={v}"
            )
    return tuple(out)


def _write(values: jax.Array, index: jax.Array, size: int) -> jax.Array:
    rows = jnp.arange(values.shape[0])[:, None]
    return jnp.zeros((values.shape[0], size), values.dtype).at[rows, index].set(values, mode="drop")


def _gather(grad: jax.Array, index: jax.Array) -> jax.Array:
    rows = jnp.arange(grad.shape[0])[:, None]
    return grad.at[rows, index].get(mode="fill", fill_value=0)


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def _scatter(values: jax.Array, index: jax.Array, size: int) -> jax.Array:
    """out[b, index[b, i]] = values[b, i] over a (B, size) zero array; out-of-range entries dropped."""
    return _write(values, index, size)


@partial(_scatter.defjvp, symbolic_zeros=True)
def _scatter_jvp(size, primals, tangents):
    # The tangent is the scatter of the tangent (torch's forward-mode rule), its transpose torch's
    # backward: the gather at the indices. With duplicate indices torch's backward gives every
    # duplicate the gradient, which is not the transpose of the write (one duplicate wins): there,
    # as in torch, forward mode (jvp, jacfwd) and reverse mode (grad, jacrev) disagree.
    values, index = primals
    (t,) = linear_call(lambda index, t: [_write(t, index, size)], lambda cts, index: [_gather(cts[0], index)],
                       (index,), tangents[:1], "max_unpool")
    return _write(values, index, size), t


def _max_unpool(n: int, layer: str, input, indices, kernel_size, stride, padding, output_size) -> jax.Array:
    kernel = pool_tuple(kernel_size, n, "kernel_size", layer, minimum=1)
    stride = kernel if stride is None else pool_tuple(stride, n, "stride", layer, minimum=1)
    padding = pool_tuple(padding, n, "padding", layer, minimum=0)
    rank = check_rank(layer, input, (n + 1, n + 2), _DIMS[n])
    if fmt_shape(indices) != fmt_shape(input):
        raise ValueError(
            f"{layer}: expected shape of indices to be same as that of the input tensor "
            f"({fmt_shape(input)}) but got indices of shape {fmt_shape(indices)}."
        )
    if not jnp.issubdtype(jnp.result_type(indices), jnp.integer):
        raise TypeError(
            f"{layer}: elements in indices should be integers (torch: int64) but got dtype "
            f"{jnp.result_type(indices)}."
        )
    x = jnp.asarray(input)
    out = unpool_output_size(layer, x.shape, kernel, stride, padding, output_size)
    size = int(np.prod(out))
    if not isinstance(indices, jax.core.Tracer):
        flat = np.asarray(indices)
        bad = flat[(flat < 0) | (flat >= size)]
        if bad.size:
            raise ValueError(
                f"{layer}: found an invalid max index: {bad.flat[0]} (output volumes are of size "
                f"{'x'.join(str(o) for o in out)})."
            )
    lead = x.shape[: rank - n]
    planes = int(np.prod(lead))
    index = jnp.asarray(indices).reshape(planes, -1)
    index = jnp.where((index >= 0) & (index < size), index, size)  # never wrap negative indices
    result = _scatter(x.reshape(planes, -1), index, size)
    return result.reshape(lead + out)


def max_unpool1d(
    input: jax.Array,
    indices: jax.Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> jax.Array:
    """1-D max unpooling of (N, C, L) or (C, L) by max_pool1d's indices; torch.nn.functional.max_unpool1d.

    Args:
      input: the (N, C, L) or (C, L) pooled values.
      indices: integer array of input's shape, flat indices over L of the output (max_pool1d's).
      kernel_size: the pooling window size, an int or a 1-tuple of ints.
      stride: the pooling step, an int or a 1-tuple; default (None) `kernel_size`.
      padding: the pooling's padding (only enters the default output size).
      output_size: the output's spatial size (1 or 3 entries, the leading two ignored) when
        the default is ambiguous; each within one stride of the default.

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out), with
      L_out = (L - 1) stride - 2 padding + kernel_size (or `output_size`); every value goes to
      its index in its (sample, channel) plane, zeros elsewhere.

    Example:
      >>> y, idx = F.max_pool1d(jnp.arange(4.0).reshape(1, 1, 4), 2, return_indices=True)
      >>> F.max_unpool1d(y, idx, 2)
      Array([[[0., 1., 0., 3.]]], dtype=float32)
    """
    return _max_unpool(1, "max_unpool1d", input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(
    input: jax.Array,
    indices: jax.Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> jax.Array:
    """2-D max unpooling by max_pool2d's flat H*W indices; torch.nn.functional.max_unpool2d.

    Args:
      input: the (N, C, H, W) or (C, H, W) pooled values.
      indices: integer array of input's shape, flat indices over H*W of the output (max_pool2d's).
      kernel_size: the pooling window size, an int or a pair of ints.
      stride: the pooling step, an int or a pair; default (None) `kernel_size`.
      padding: the pooling's padding (only enters the default output size).
      output_size: the output's spatial size (2 or 4 entries, the leading two ignored) when
        the default is ambiguous; each within one stride of the default.

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), with
      H_out = (H - 1) stride - 2 padding + kernel_size, likewise W_out (or `output_size`); every value goes to
      its index in its (sample, channel) plane, zeros elsewhere.

    Example:
      >>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
      >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
      >>> F.max_unpool2d(y, idx, 2, output_size=x.shape)   # x's maxima in place, zeros elsewhere
      Array([[[[ 0.,  0.,  0.,  0.],
               [ 0.,  5.,  0.,  7.],
               [ 0.,  0.,  0.,  0.],
               [ 0., 13.,  0., 15.]]]], dtype=float32)
    """
    return _max_unpool(2, "max_unpool2d", input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(
    input: jax.Array,
    indices: jax.Array,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> jax.Array:
    """3-D max unpooling by max_pool3d's flat D*H*W indices; torch.nn.functional.max_unpool3d.

    Args:
      input: the (N, C, D, H, W) or (C, D, H, W) pooled values.
      indices: integer array of input's shape, flat indices over D*H*W of the output (max_pool3d's).
      kernel_size: the pooling window size, an int or a triple of ints.
      stride: the pooling step, an int or a triple; default (None) `kernel_size`.
      padding: the pooling's padding (only enters the default output size).
      output_size: the output's spatial size (3 or 5 entries, the leading two ignored) when
        the default is ambiguous; each within one stride of the default.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), with
      D_out = (D - 1) stride - 2 padding + kernel_size, likewise H_out, W_out (or `output_size`); every value goes to
      its index in its (sample, channel) plane, zeros elsewhere.

    Example:
      >>> y, idx = F.max_pool3d(jnp.ones((1, 1, 4, 4, 4)), 2, return_indices=True)
      >>> z = F.max_unpool3d(y, idx, 2)
      >>> z.shape, float(z.sum())   # one 1 per 2x2x2 window
      ((1, 1, 4, 4, 4), 8.0)
    """
    return _max_unpool(3, "max_unpool3d", input, indices, kernel_size, stride, padding, output_size)


def _unpool_layer(n: int, kernel_size, stride, padding) -> Layer:
    layer = f"MaxUnpool{n}d"
    kernel = pool_tuple(kernel_size, n, "kernel_size", layer, minimum=1)
    stride = pool_tuple(stride if stride is not None else kernel_size, n, "stride", layer, minimum=1)
    padding = pool_tuple(padding, n, "padding", layer, minimum=0)
    name = f"{layer}(kernel_size={kernel}, stride={stride}, padding={padding})"

    def forward(input, indices, output_size=None):
        return _max_unpool(n, name, input, indices, kernel, stride, padding, output_size)

    return stateless(name, forward)


def MaxUnpool1d(kernel_size: Any, stride: Any = None, padding: Any = 0) -> Layer:
    """Layer twin of torch.nn.MaxUnpool1d: puts each value at its max_pool1d index, zeros elsewhere. No parameters.

    Args:
      kernel_size: the pooling window size, an int or a 1-tuple of ints.
      stride: the pooling step, an int or a 1-tuple; default (None) `kernel_size`.
      padding: the pooling's padding (only enters the default output size).

    Call as `apply(params, state, input, indices, output_size=None)`: `indices` are the
    MaxPool1d's (same shape as input), `output_size` chooses among the sizes that pool to input's
    (within one stride of the default).

    Shape:
      (N, C, L) or (C, L) -> (N, C, L_out) or (C, L_out), with
      L_out = (L - 1) stride - 2 padding + kernel_size (or `output_size`); every value goes to
      its index in its (sample, channel) plane, zeros elsewhere.

    Example:
      >>> x = jnp.array([[[1.0, 4.0, 3.0, 2.0, 0.0, 5.0]]])
      >>> (pooled, indices), _ = fl.MaxPool1d(2, return_indices=True).apply({}, {}, x)
      >>> y, _ = fl.MaxUnpool1d(2).apply({}, {}, pooled, indices)
      >>> y
      Array([[[0., 4., 3., 0., 0., 5.]]], dtype=float32)
    """
    return _unpool_layer(1, kernel_size, stride, padding)


def MaxUnpool2d(kernel_size: Any, stride: Any = None, padding: Any = 0) -> Layer:
    """Layer twin of torch.nn.MaxUnpool2d: puts each value at its max_pool2d index, zeros elsewhere. No parameters.

    Args:
      kernel_size: the pooling window size, an int or a pair of ints.
      stride: the pooling step, an int or a pair; default (None) `kernel_size`.
      padding: the pooling's padding (only enters the default output size).

    Call as `apply(params, state, input, indices, output_size=None)`: `indices` are the
    MaxPool2d's (same shape as input), `output_size` chooses among the sizes that pool to input's
    (within one stride of the default).

    Shape:
      (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) or (C, H_out, W_out), with
      H_out = (H - 1) stride - 2 padding + kernel_size, likewise W_out (or `output_size`); every value goes to
      its index in its (sample, channel) plane, zeros elsewhere.

    Example:
      >>> x = jnp.arange(20.0).reshape(1, 1, 4, 5)
      >>> (y, idx), _ = fl.MaxPool2d(2, return_indices=True).apply({}, {}, x)
      >>> y.shape
      (1, 1, 2, 2)
      >>> restored, _ = fl.MaxUnpool2d(2).apply({}, {}, y, idx, output_size=x.shape)   # default would be 4 x 4
      >>> restored[0, 0]
      Array([[ 0.,  0.,  0.,  0.,  0.],
             [ 0.,  6.,  0.,  8.,  0.],
             [ 0.,  0.,  0.,  0.,  0.],
             [ 0., 16.,  0., 18.,  0.]], dtype=float32)
    """
    return _unpool_layer(2, kernel_size, stride, padding)


def MaxUnpool3d(kernel_size: Any, stride: Any = None, padding: Any = 0) -> Layer:
    """Layer twin of torch.nn.MaxUnpool3d: puts each value at its max_pool3d index, zeros elsewhere. No parameters.

    Args:
      kernel_size: the pooling window size, an int or a triple of ints.
      stride: the pooling step, an int or a triple; default (None) `kernel_size`.
      padding: the pooling's padding (only enters the default output size).

    Call as `apply(params, state, input, indices, output_size=None)`: `indices` are the
    MaxPool3d's (same shape as input), `output_size` chooses among the sizes that pool to input's
    (within one stride of the default).

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), with
      D_out = (D - 1) stride - 2 padding + kernel_size, likewise H_out, W_out (or `output_size`); every value goes to
      its index in its (sample, channel) plane, zeros elsewhere.

    Example:
      >>> (pooled, indices), _ = fl.MaxPool3d(2, return_indices=True).apply({}, {}, jnp.ones((1, 1, 4, 4, 4)))
      >>> y, _ = fl.MaxUnpool3d(2).apply({}, {}, pooled, indices)
      >>> y.shape
      (1, 1, 4, 4, 4)
    """
    return _unpool_layer(3, kernel_size, stride, padding)
