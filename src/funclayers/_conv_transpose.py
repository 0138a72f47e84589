"""Transposed convolutions: conv_transpose1d/2d/3d and ConvTranspose1d/2d/3d (torch.nn.modules.conv).

A transposed convolution is the gradient of a convolution with respect to its input. Weights keep
torch's transposed layout (in_channels, out_channels/groups, *kernel_size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._conv_args import (
    add_bias,
    check_bias,
    check_conv_dtypes,
    check_groups,
    check_input,
    check_padding,
    check_positive,
    conv_repr,
    init_conv_params,
)
from ._kernels import _conv_transpose_lowering as lowering
from ._layer import Layer
from ._utils import fmt_shape, ntuple


def check_output_padding(who: str, output_padding: tuple, stride: tuple, dilation: tuple) -> None:
    """torch: "output padding must be smaller than either stride or dilation"."""
    if any(not isinstance(op, int) or op < 0 for op in output_padding):
        raise ValueError(f"{who}: output_padding must be non-negative, got output_padding={output_padding}.")
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation, strict=False)):
        raise ValueError(
            f"{who}: output padding must be smaller than either stride or dilation, but got "
            f"output_padding={output_padding}, stride={stride}, dilation={dilation}."
        )


def output_padding_for(
    who: str,
    n: int,
    input_shape: tuple,
    output_size: Sequence[int],
    stride: tuple,
    padding: tuple,
    kernel_size: tuple,
    dilation: tuple,
) -> tuple:
    """The output padding that gives `output_size`; torch's _ConvTransposeNd._output_padding."""
    batched = len(input_shape) == n + 2
    non_spatial = 2 if batched else 1
    output_size = [int(s) for s in output_size]
    if len(output_size) == non_spatial + n:
        output_size = output_size[non_spatial:]
    if len(output_size) != n:
        raise ValueError(
            f"{who}: for {len(input_shape)}D input, output_size must have {n} or {non_spatial + n} "
            f"elements (got {len(output_size)})"
        )
    spatial = input_shape[non_spatial:]
    min_sizes = [
        (size - 1) * s - 2 * p + d * (k - 1) + 1
        for size, s, p, k, d in zip(spatial, stride, padding, kernel_size, dilation, strict=False)
    ]
    max_sizes = [lo + s - 1 for lo, s in zip(min_sizes, stride, strict=False)]
    for size, lo, hi in zip(output_size, min_sizes, max_sizes, strict=False):
        if size < lo or size > hi:
            raise ValueError(
                f"{who}: requested an output size of {output_size}, but valid sizes range from "
                f"{min_sizes} to {max_sizes} (for an input of {tuple(spatial)})"
            )
    return tuple(size - lo for size, lo in zip(output_size, min_sizes, strict=False))


def conv_transpose_nd(
    who: str,
    n: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    dilation: Any,
) -> jax.Array:
    """The shared N-d transposed convolution behind conv_transpose1d/2d/3d and the layers."""
    stride = ntuple(stride, n, "stride", who)
    dilation = ntuple(dilation, n, "dilation", who)
    check_positive(who, stride, dilation)
    if isinstance(padding, str):
        raise ValueError(
            f"{who}: padding must be an int or a tuple of {n} ints for a transposed convolution, "
            f"got {padding!r}."
        )
    padding = ntuple(padding, n, "padding", who)
    check_padding(who, padding)
    output_padding = ntuple(output_padding, n, "output_padding", who)
    check_output_padding(who, output_padding, stride, dilation)
    batched = check_input(who, input, n)
    if len(fmt_shape(weight)) != n + 2:
        raise ValueError(
            f"{who} expects a {n + 2}D weight (in_channels, out_channels/groups, *kernel_size), "
            f"got shape {fmt_shape(weight)}."
        )
    if not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{who}: non-positive groups is not supported, got groups={groups}.")
    in_channels, out_per_group = fmt_shape(weight)[:2]
    kernel_size = fmt_shape(weight)[2:]
    channels = fmt_shape(input)[1 if batched else 0]
    if channels != in_channels:
        raise ValueError(
            f"{who} expects {in_channels} input channels, got {channels} in input of shape "
            f"{fmt_shape(input)} (weight of shape {fmt_shape(weight)})."
        )
    if in_channels % groups != 0:
        raise ValueError(
            f"{who}: the weight's {in_channels} input channels (dim 0 of shape "
            f"{fmt_shape(weight)}) must be divisible by groups={groups}."
        )
    check_bias(who, bias, out_per_group * groups)
    spatial = fmt_shape(input)[2 if batched else 1 :]
    out_sizes = tuple(
        (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        for size, s, p, k, d, op in zip(
            spatial, stride, padding, kernel_size, dilation, output_padding, strict=False
        )
    )
    if any(o <= 0 for o in out_sizes) or any(size <= 0 for size in spatial):
        raise ValueError(
            f"{who}: given input size per channel {tuple(spatial)}, the calculated output size "
            f"per channel {out_sizes} is too small."
        )
    x = jnp.asarray(input)
    x = x if batched else x[None]
    weight, bias = check_conv_dtypes(who, x, weight, bias, "conv_transpose")
    out = lowering.conv_transpose(x, weight, stride, padding, output_padding, dilation, groups)
    out = add_bias(out, bias)
    return out if batched else out[0]


def conv_transpose1d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> jax.Array:
    """1-D transposed convolution ("deconvolution"); torch.nn.functional.conv_transpose1d.

    Args:
      input: (N, C_in, L) or (C_in, L).
      weight: (C_in, C_out/groups, kW).
      bias: optional (C_out,) bias. Default: None.
      stride: the stride of the convolving kernel, an int or a 1-tuple. Default: 1.
      padding: `dilation * (kernel_size - 1) - padding` zero-padding is added to both sides of each
        dimension of the input, an int or a 1-tuple. Default: 0.
      output_padding: additional size added to one side of each dimension of the output shape, an
        int or a 1-tuple. Default: 0.
      dilation: the spacing between kernel elements, an int or a 1-tuple. Default: 1.
      groups: split the input into groups; C_in and C_out must be divisible by it. Default: 1.

    Shape: L_out = (L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.

    Example:
      >>> y = conv_transpose1d(jnp.ones((2, 4, 10)), jnp.ones((4, 8, 3)), stride=2)
      >>> y.shape
      (2, 8, 21)
    """
    return conv_transpose_nd(
        "conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> jax.Array:
    """2-D transposed convolution ("deconvolution"); torch.nn.functional.conv_transpose2d.

    Args:
      input: (N, C_in, H, W) or (C_in, H, W).
      weight: (C_in, C_out/groups, kH, kW).
      bias: optional (C_out,) bias. Default: None.
      stride: the stride of the convolving kernel, an int or a pair. Default: 1.
      padding: `dilation * (kernel_size - 1) - padding` zero-padding is added to both sides of each
        dimension of the input, an int or a pair. Default: 0.
      output_padding: additional size added to one side of each dimension of the output shape, an
        int or a pair. Default: 0.
      dilation: the spacing between kernel elements, an int or a pair. Default: 1.
      groups: split the input into groups; C_in and C_out must be divisible by it. Default: 1.

    Shape: H_out = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1, same for W.

    Example:
      >>> y = conv_transpose2d(jnp.ones((1, 4, 5, 5)), jnp.ones((4, 8, 3, 3)), stride=2, padding=1)
      >>> y.shape
      (1, 8, 9, 9)
    """
    return conv_transpose_nd(
        "conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> jax.Array:
    """3-D transposed convolution ("deconvolution"); torch.nn.functional.conv_transpose3d.

    Args:
      input: (N, C_in, D, H, W) or (C_in, D, H, W).
      weight: (C_in, C_out/groups, kD, kH, kW).
      bias: optional (C_out,) bias. Default: None.
      stride: the stride of the convolving kernel, an int or a triple. Default: 1.
      padding: `dilation * (kernel_size - 1) - padding` zero-padding is added to both sides of each
        dimension of the input, an int or a triple. Default: 0.
      output_padding: additional size added to one side of each dimension of the output shape, an
        int or a triple. Default: 0.
      dilation: the spacing between kernel elements, an int or a triple. Default: 1.
      groups: split the input into groups; C_in and C_out must be divisible by it. Default: 1.

    Shape: each spatial size becomes
      (size - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.

    Example:
      >>> y = conv_transpose3d(jnp.ones((1, 2, 3, 3, 3)), jnp.ones((2, 4, 2, 2, 2)), stride=2)
      >>> y.shape
      (1, 4, 6, 6, 6)
    """
    return conv_transpose_nd(
        "conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def _conv_transpose_layer(
    n: int,
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: int,
    bias: bool,
    dilation: Any,
    padding_mode: str,
    dtype: Any,
) -> Layer:
    kind = f"ConvTranspose{n}d"
    if padding_mode != "zeros":
        raise ValueError(
            f'Only "zeros" padding mode is supported for {kind}, got padding_mode={padding_mode!r}.'
        )
    kernel_size = ntuple(kernel_size, n, "kernel_size", kind)
    stride = ntuple(stride, n, "stride", kind)
    dilation = ntuple(dilation, n, "dilation", kind)
    if isinstance(padding, str):
        raise ValueError(
            f"{kind}: padding must be an int or a tuple of {n} ints, got {padding!r}; "
            f"'same' and 'valid' are not supported for transposed convolutions."
        )
    padding = ntuple(padding, n, "padding", kind)
    output_padding = ntuple(output_padding, n, "output_padding", kind)
    check_groups(kind, in_channels, out_channels, groups)
    check_positive(kind, stride, dilation)
    check_padding(kind, padding)
    check_output_padding(kind, output_padding, stride, dilation)
    if any(not isinstance(k, int) or k <= 0 for k in kernel_size):
        raise ValueError(f"{kind}: kernel_size must be positive, got kernel_size={kernel_size}.")
    name = conv_repr(
        kind,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        output_padding,
        groups,
        bias,
        padding_mode,
    )
    weight_shape = (in_channels, out_channels // groups) + kernel_size

    def apply(params, state, input, output_size=None, *, rng=None, training=False):
        del rng, training
        chosen = output_padding
        if output_size is not None:
            check_input(name, input, n)
            chosen = output_padding_for(
                name, n, fmt_shape(input), output_size, stride, padding, kernel_size, dilation
            )
        out = conv_transpose_nd(
            name, n, input, params["weight"], params.get("bias"), stride, padding, chosen, groups, dilation
        )
        return out, state

    return Layer(init_conv_params(weight_shape, out_channels, bias, dtype), apply, name)


def ConvTranspose1d(
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    bias: bool = True,
    dilation: Any = 1,
    padding_mode: str = "zeros",
    device: Any = None,
    dtype: Any = None,
) -> Layer:
    """1-D transposed convolution layer; torch.nn.ConvTranspose1d. Params: weight (in, out/groups, k), bias.

    Args:
      in_channels: number of channels in the input image.
      out_channels: number of channels produced by the convolution.
      kernel_size: size of the convolving kernel, an int or a 1-tuple.
      stride: stride of the convolution, an int or a 1-tuple. Default: 1.
      padding: `dilation * (kernel_size - 1) - padding` zero-padding is added to both sides of each
        dimension of the input: the output loses `padding` on each side; an int or a 1-tuple. Default: 0.
      output_padding: additional size added to one side of each dimension of the output shape, an int
        or a 1-tuple smaller than stride or dilation; `apply(..., output_size=...)` picks it instead. Default: 0.
      groups: number of blocked connections from input channels to output channels; both must be
        divisible by it. Default: 1.
      bias: if True, adds a learnable bias to the output. Default: True.
      dilation: spacing between kernel elements, an int or a 1-tuple. Default: 1.
      padding_mode: only 'zeros' is supported (as torch). Default: 'zeros'.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Forward: `apply(params, state, input, output_size=None)`; `output_size` picks the output padding.

    Shape: (N, C_in, L) or (C_in, L) -> (N, C_out, L_out) or (C_out, L_out).

    Example:
      >>> up = fl.ConvTranspose1d(16, 8, 4, stride=2, padding=1)
      >>> params, state = up.init(jax.random.PRNGKey(0))
      >>> y, _ = up.apply(params, state, jnp.ones((2, 16, 10)))
      >>> y.shape
      (2, 8, 20)
    """
    del device
    return _conv_transpose_layer(
        1,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        output_padding,
        groups,
        bias,
        dilation,
        padding_mode,
        dtype,
    )


def ConvTranspose2d(
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    bias: bool = True,
    dilation: Any = 1,
    padding_mode: str = "zeros",
    device: Any = None,
    dtype: Any = None,
) -> Layer:
    """2-D transposed convolution layer; torch.nn.ConvTranspose2d.

    Params: weight (in, out/groups, kH, kW), bias (out,).

    Args:
      in_channels: number of channels in the input image.
      out_channels: number of channels produced by the convolution.
      kernel_size: size of the convolving kernel, an int or a pair.
      stride: stride of the convolution, an int or a pair. Default: 1.
      padding: `dilation * (kernel_size - 1) - padding` zero-padding is added to both sides of each
        dimension of the input: the output loses `padding` on each side; an int or a pair. Default: 0.
      output_padding: additional size added to one side of each dimension of the output shape, an int
        or a pair smaller than stride or dilation; `apply(..., output_size=...)` picks it instead. Default: 0.
      groups: number of blocked connections from input channels to output channels; both must be
        divisible by it. Default: 1.
      bias: if True, adds a learnable bias to the output. Default: True.
      dilation: spacing between kernel elements, an int or a pair. Default: 1.
      padding_mode: only 'zeros' is supported (as torch). Default: 'zeros'.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Forward: `apply(params, state, input, output_size=None)`; `output_size` picks the output padding.

    Shape: (N, C_in, H, W) or (C_in, H, W) -> (N, C_out, H_out, W_out) or (C_out, H_out, W_out).

    Example:
      >>> up = fl.ConvTranspose2d(16, 33, 3, stride=2, padding=1)
      >>> params, state = up.init(jax.random.PRNGKey(0))
      >>> y, _ = up.apply(params, state, jnp.ones((1, 16, 12, 12)), output_size=(1, 33, 24, 24))
      >>> y.shape
      (1, 33, 24, 24)
    """
    del device
    return _conv_transpose_layer(
        2,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        output_padding,
        groups,
        bias,
        dilation,
        padding_mode,
        dtype,
    )


def ConvTranspose3d(
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    bias: bool = True,
    dilation: Any = 1,
    padding_mode: str = "zeros",
    device: Any = None,
    dtype: Any = None,
) -> Layer:
    """3-D transposed convolution layer; torch.nn.ConvTranspose3d.

    Params: weight (in, out/groups, kD, kH, kW), bias (out,).

    Args:
      in_channels: number of channels in the input image.
      out_channels: number of channels produced by the convolution.
      kernel_size: size of the convolving kernel, an int or a triple.
      stride: stride of the convolution, an int or a triple. Default: 1.
      padding: `dilation * (kernel_size - 1) - padding` zero-padding is added to both sides of each
        dimension of the input: the output loses `padding` on each side; an int or a triple. Default: 0.
      output_padding: additional size added to one side of each dimension of the output shape, an int
        or a triple smaller than stride or dilation; `apply(..., output_size=...)` picks it instead. Default: 0.
      groups: number of blocked connections from input channels to output channels; both must be
        divisible by it. Default: 1.
      bias: if True, adds a learnable bias to the output. Default: True.
      dilation: spacing between kernel elements, an int or a triple. Default: 1.
      padding_mode: only 'zeros' is supported (as torch). Default: 'zeros'.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Forward: `apply(params, state, input, output_size=None)`; `output_size` picks the output padding.

    Shape: (N, C_in, D, H, W) or (C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out) or unbatched.

    Example:
      >>> up = fl.ConvTranspose3d(16, 33, (3, 5, 2), stride=(2, 1, 1), padding=(0, 4, 2))
      >>> params, state = up.init(jax.random.PRNGKey(0))
      >>> y, _ = up.apply(params, state, jnp.ones((2, 16, 5, 10, 10)))
      >>> y.shape
      (2, 33, 11, 6, 7)
    """
    del device
    return _conv_transpose_layer(
        3,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        output_padding,
        groups,
        bias,
        dilation,
        padding_mode,
        dtype,
    )
