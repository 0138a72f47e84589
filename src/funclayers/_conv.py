"""Convolutions: conv1d/conv2d/conv3d and the Conv1d/Conv2d/Conv3d layers (torch.nn.modules.conv).

Inputs and weights keep torch's channels-first layouts; `_conv_lowering` decides how XLA computes
the convolution. Argument checks happen here, at trace time, in torch's terms (the helpers shared
with the transposed convolutions are in `_conv_args.py`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ._conv_args import (
    PADDING_MODES,
    add_bias,
    check_bias,
    check_conv_dtypes,
    check_groups,
    check_input,
    check_positive,
    conv_repr,
    init_conv_params,
    pad_input,
    padding_pairs,
    parse_padding,
)
from ._kernels import _conv_lowering as lowering
from ._kernels import _winograd
from ._layer import Layer
from ._layout import CNHW, PHASE
from ._utils import check_floating, fmt_shape, ntuple

# -- the pure ops --------------------------------------------------------------------------------------


def conv_nd(
    who: str,
    n: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    padding_mode: str = "zeros",
) -> jax.Array:
    """The shared N-d convolution behind conv1d/2d/3d and Conv1d/2d/3d; `who` names the caller in errors."""
    stride = ntuple(stride, n, "stride", who)
    dilation = ntuple(dilation, n, "dilation", who)
    check_positive(who, stride, dilation)
    padding = parse_padding(who, padding, n, stride)
    batched = check_input(who, input, n)
    if len(fmt_shape(weight)) != n + 2:
        raise ValueError(
            f"{who} expects a {n + 2}D weight (out_channels, in_channels/groups, *kernel_size), "
            f"got shape {fmt_shape(weight)}."
        )
    if not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{who}: non-positive groups is not supported, got groups={groups}.")
    out_channels, in_per_group = fmt_shape(weight)[:2]
    kernel_size = fmt_shape(weight)[2:]
    channels = fmt_shape(input)[1 if batched else 0]
    if channels != in_per_group * groups:
        raise ValueError(
            f"{who} expects {in_per_group * groups} input channels, got {channels} in input of shape "
            f"{fmt_shape(input)} (weight of shape {fmt_shape(weight)}, groups={groups})."
        )
    if out_channels % groups != 0:
        raise ValueError(
            f"{who}: the weight's {out_channels} output channels (dim 0 of shape "
            f"{fmt_shape(weight)}) must be divisible by groups={groups}."
        )
    check_bias(who, bias, out_channels)
    pairs = padding_pairs(padding, kernel_size, dilation)
    x = jnp.asarray(input)
    x = x if batched else x[None]
    weight, bias = check_conv_dtypes(who, x, weight, bias)
    if padding_mode != "zeros":
        x = pad_input(who, x, pairs, padding_mode)
        pairs = [(0, 0)] * n
    spatial = x.shape[2:]
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(spatial, pairs, strict=False))
    effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation, strict=False))
    if any(p < e for p, e in zip(padded, effective, strict=False)):
        raise ValueError(
            f"{who}: calculated padded input size per channel {padded} is smaller than the "
            f"(dilated) kernel size {effective}; kernel size can't be greater than the actual "
            f"input size (input of shape {fmt_shape(input)})."
        )
    out = lowering.conv(x, weight, stride, pairs, dilation, groups)
    out = add_bias(out, bias)
    return out if batched else out[0]


def conv1d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> jax.Array:
    """1-D cross-correlation over (N, C, L) or (C, L) input; torch.nn.functional.conv1d.

    Args:
      input: (N, C_in, L) or (C_in, L).
      weight: (C_out, C_in/groups, kW).
      bias: optional (C_out,) bias. Default: None.
      stride: the stride of the convolving kernel, an int or a 1-tuple. Default: 1.
      padding: implicit zero padding on both sides of the input: an int, a 1-tuple, 'valid' (none) or
        'same' (the output keeps the input's size; stride 1 only). Default: 0.
      dilation: the spacing between kernel elements, an int or a 1-tuple. Default: 1.
      groups: split the input into groups; C_in and C_out must be divisible by it. Default: 1.

    Shape: (N, C_in, L) -> (N, C_out, L_out), L_out = (L + 2p - d(k-1) - 1) // s + 1.

    Example:
      >>> y = conv1d(jnp.ones((2, 4, 10)), jnp.ones((8, 4, 3)), padding="same")
      >>> y.shape
      (2, 8, 10)
    """
    return conv_nd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> jax.Array:
    """2-D cross-correlation over (N, C, H, W) or (C, H, W) input; torch.nn.functional.conv2d.

    Args:
      input: (N, C_in, H, W) or (C_in, H, W).
      weight: (C_out, C_in/groups, kH, kW).
      bias: optional (C_out,) bias. Default: None.
      stride: the stride of the convolving kernel, an int or a pair. Default: 1.
      padding: implicit zero padding on both sides of the input: an int, a pair, 'valid' (none) or
        'same' (the output keeps the input's size; stride 1 only). Default: 0.
      dilation: the spacing between kernel elements, an int or a pair. Default: 1.
      groups: split the input into groups; C_in and C_out must be divisible by it. Default: 1.

    Shape: (N, C_in, H, W) -> (N, C_out, H_out, W_out).

    Example:
      >>> y = conv2d(jnp.ones((2, 3, 8, 8)), jnp.ones((16, 3, 3, 3)), stride=2, padding=1)
      >>> y.shape
      (2, 16, 4, 4)
    """
    return conv_nd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> jax.Array:
    """3-D cross-correlation over (N, C, D, H, W) or (C, D, H, W) input; torch.nn.functional.conv3d.

    Args:
      input: (N, C_in, D, H, W) or (C_in, D, H, W).
      weight: (C_out, C_in/groups, kD, kH, kW).
      bias: optional (C_out,) bias. Default: None.
      stride: the stride of the convolving kernel, an int or a triple. Default: 1.
      padding: implicit zero padding on both sides of the input: an int, a triple, 'valid' (none) or
        'same' (the output keeps the input's size; stride 1 only). Default: 0.
      dilation: the spacing between kernel elements, an int or a triple. Default: 1.
      groups: split the input into groups; C_in and C_out must be divisible by it. Default: 1.

    Shape: (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out).

    Example:
      >>> y = conv3d(jnp.ones((1, 2, 4, 4, 4)), jnp.ones((4, 2, 3, 3, 3)), padding=1)
      >>> y.shape
      (1, 4, 4, 4, 4)
    """
    return conv_nd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def conv_tbc(input: Any, weight: Any, bias: Any, pad: int = 0) -> jax.Array:
    """1-D convolution over a (time, batch, channels) sequence; torch.nn.functional.conv_tbc.

    out[t, b, o] = bias[o] + sum over k, c of x[t + k - pad, b, c] weight[k, c, o], x zero outside
    [0, T): fairseq's layout, computed as `conv1d` on the transposed input.

    Args:
      input: the (T, B, C_in) sequence: time first, then batch, then channels.
      weight: the (K, C_in, C_out) kernel: width first.
      bias: the (C_out,) bias (None for none).
      pad: zeros added at both ends of the time axis (default 0).

    Shape:
      input (T, B, C_in), weight (K, C_in, C_out) -> (T + 2 pad - K + 1, B, C_out).

    Example:
      >>> y = F.conv_tbc(jnp.ones((5, 2, 3)), jnp.ones((3, 3, 4)), jnp.zeros(4), pad=1)
      >>> y.shape, y[:, 0, 0]   # 2 taps at the padded ends, 3 inside, of 3 channels each
      ((5, 2, 4), Array([6., 9., 9., 9., 6.], dtype=float32))
    """
    in_shape, w_shape = fmt_shape(input), fmt_shape(weight)
    if len(in_shape) != 3:
        raise ValueError(f"conv_tbc: Input must have 3 dims: time, batch, in_channel; got shape {in_shape}.")
    if len(w_shape) != 3:
        raise ValueError(f"conv_tbc: Weight tensor must have 3 dims: kernel_width, in_channels, out_channels; "
                         f"got shape {w_shape}.")
    if bias is not None and len(fmt_shape(bias)) != 1:
        raise ValueError(f"conv_tbc: Bias must be 1-D, got shape {fmt_shape(bias)}.")
    if in_shape[2] != w_shape[1]:
        raise ValueError(f"conv_tbc: Input dim 2 (input channels, {in_shape[2]}) is not == dim 1 in the weight "
                         f"tensor ({w_shape[1]}); input {in_shape}, weight {w_shape}.")
    if bias is not None and fmt_shape(bias)[0] != w_shape[2]:
        raise ValueError(f"conv_tbc: Bias size must equal dim 2 in the weight tensor (output channels): bias "
                         f"{fmt_shape(bias)}, weight {w_shape}.")
    check_floating("conv_tbc", input)
    length = in_shape[0] + 2 * pad - w_shape[0] + 1
    if length < 0:
        raise ValueError(f"conv_tbc: the output length T + 2 pad - K + 1 = {in_shape[0]} + 2 * {pad} - {w_shape[0]} "
                         f"+ 1 is negative; pad the input or use a shorter kernel.")
    x = jnp.asarray(input)
    weight, bias = check_conv_dtypes("conv_tbc", x, weight, bias, "conv_tbc")
    if length == 0:
        return jnp.zeros((0, in_shape[1], w_shape[2]), x.dtype)
    out = conv_nd("conv_tbc", 1, jnp.transpose(x, (1, 2, 0)), jnp.transpose(weight, (2, 1, 0)), bias, 1, pad, 1, 1)
    return jnp.transpose(out, (2, 0, 1))


# -- the layers ----------------------------------------------------------------------------------------


def _conv_layer(
    n: int,
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    bias: bool,
    padding_mode: str,
    dtype: Any,
) -> Layer:
    kind = f"Conv{n}d"
    kernel_size = ntuple(kernel_size, n, "kernel_size", kind)
    stride = ntuple(stride, n, "stride", kind)
    dilation = ntuple(dilation, n, "dilation", kind)
    check_groups(kind, in_channels, out_channels, groups)
    padding = parse_padding(kind, padding, n, stride)
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"{kind}: padding_mode must be one of {set(PADDING_MODES)}, but got "
            f"padding_mode='{padding_mode}'."
        )
    check_positive(kind, stride, dilation)
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
        (0,) * n,
        groups,
        bias,
        padding_mode,
    )
    weight_shape = (out_channels, in_channels // groups) + kernel_size

    def apply(params, state, input, *, rng=None, training=False):
        del rng, training
        out = conv_nd(
            name,
            n,
            input,
            params["weight"],
            params.get("bias"),
            stride,
            padding,
            dilation,
            groups,
            padding_mode,
        )
        return out, state

    if n == 2:
        apply._layout = _phase_conv(kernel_size, stride, padding, dilation, groups, padding_mode)
    return Layer(init_conv_params(weight_shape, out_channels, bias, dtype), apply, name)


def _phase_conv(kernel_size, stride, padding, dilation, groups, padding_mode):
    """Conv2d's `_layout` (`_layout.py`), or None: a 3x3 stride-1 convolution with zero padding 1 that the
    dispatch computes by Winograd, on an even-sized float32/float64 batch, its output in the phase layout.
    """
    pairs = [tuple(p) for p in padding_pairs(padding, kernel_size, dilation)]
    if (padding_mode != "zeros" or groups != 1 or kernel_size != (3, 3) or stride != (1, 1)
            or dilation != (1, 1) or pairs != [(1, 1), (1, 1)]):
        return None

    def layout_apply(params, state, value, layout, training):
        del training
        w, b = params.get("weight"), params.get("bias")
        if not isinstance(value, jax.Array) or not isinstance(w, jax.Array) or w.ndim != 4:
            return None
        if value.ndim != (6 if layout == PHASE else 4):
            return None
        if layout == PHASE:
            c, n, h, wd = value.shape[2], value.shape[3], 2 * value.shape[4], 2 * value.shape[5]
        elif layout == CNHW:
            c, n, h, wd = value.shape
        else:
            n, c, h, wd = value.shape
        dtype = value.dtype
        if (dtype not in (jnp.float32, jnp.float64) or w.dtype != dtype or w.shape[1:] != (c, 3, 3)
                or (b is not None and (not isinstance(b, jax.Array) or b.dtype != dtype or b.shape != w.shape[:1]))
                or h % 2 or wd % 2 or n == 0 or h == 0 or wd == 0):
            return None
        x_shape = (n, c, h, wd)
        if lowering.choose(x_shape, w.shape, 1, stride, tuple(pairs), dilation, dtype) != "winograd":
            return None
        return _winograd.conv3x3_phase(value, w, layout or "nchw", b), PHASE, state

    return layout_apply


def Conv1d(
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: bool = True,
    padding_mode: str = "zeros",
    device: Any = None,
    dtype: Any = None,
) -> Layer:
    """1-D convolution layer; torch.nn.Conv1d. Params: weight (out, in/groups, k), bias (out,).

    Args:
      in_channels: number of channels in the input image.
      out_channels: number of channels produced by the convolution.
      kernel_size: size of the convolving kernel, an int or a 1-tuple.
      stride: stride of the convolution, an int or a 1-tuple. Default: 1.
      padding: padding added to both sides of the input: an int, a 1-tuple, 'valid' (none) or 'same'
        (the output keeps the input's size; stride 1 only). Default: 0.
      dilation: spacing between kernel elements, an int or a 1-tuple. Default: 1.
      groups: number of blocked connections from input channels to output channels; both must be
        divisible by it. Default: 1.
      bias: if True, adds a learnable bias to the output. Default: True.
      padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'. Default: 'zeros'.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Shape: (N, C_in, L) or (C_in, L) -> (N, C_out, L_out) or (C_out, L_out).

    Example:
      >>> conv = fl.Conv1d(16, 33, 3, stride=2)
      >>> params, state = conv.init(jax.random.PRNGKey(0))
      >>> y, _ = conv.apply(params, state, jnp.ones((20, 16, 50)))
      >>> y.shape
      (20, 33, 24)
    """
    del device
    return _conv_layer(
        1,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        groups,
        bias,
        padding_mode,
        dtype,
    )


def Conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: bool = True,
    padding_mode: str = "zeros",
    device: Any = None,
    dtype: Any = None,
) -> Layer:
    """2-D convolution layer; torch.nn.Conv2d. Params: weight (out, in/groups, kH, kW), bias (out,).

    Args:
      in_channels: number of channels in the input image.
      out_channels: number of channels produced by the convolution.
      kernel_size: size of the convolving kernel, an int or a pair.
      stride: stride of the convolution, an int or a pair. Default: 1.
      padding: padding added to both sides of the input: an int, a pair, 'valid' (none) or 'same'
        (the output keeps the input's size; stride 1 only). Default: 0.
      dilation: spacing between kernel elements, an int or a pair. Default: 1.
      groups: number of blocked connections from input channels to output channels; both must be
        divisible by it. Default: 1.
      bias: if True, adds a learnable bias to the output. Default: True.
      padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'. Default: 'zeros'.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Shape: (N, C_in, H, W) or (C_in, H, W) -> (N, C_out, H_out, W_out) or (C_out, H_out, W_out).

    Example:
      >>> conv = fl.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2))
      >>> params, state = conv.init(jax.random.PRNGKey(0))
      >>> y, _ = conv.apply(params, state, jnp.ones((20, 16, 50, 100)))
      >>> y.shape
      (20, 33, 28, 100)
    """
    del device
    return _conv_layer(
        2,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        groups,
        bias,
        padding_mode,
        dtype,
    )


def Conv3d(
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: bool = True,
    padding_mode: str = "zeros",
    device: Any = None,
    dtype: Any = None,
) -> Layer:
    """3-D convolution layer; torch.nn.Conv3d. Params: weight (out, in/groups, kD, kH, kW), bias (out,).

    Args:
      in_channels: number of channels in the input image.
      out_channels: number of channels produced by the convolution.
      kernel_size: size of the convolving kernel, an int or a triple.
      stride: stride of the convolution, an int or a triple. Default: 1.
      padding: padding added to both sides of the input: an int, a triple, 'valid' (none) or 'same'
        (the output keeps the input's size; stride 1 only). Default: 0.
      dilation: spacing between kernel elements, an int or a triple. Default: 1.
      groups: number of blocked connections from input channels to output channels; both must be
        divisible by it. Default: 1.
      bias: if True, adds a learnable bias to the output. Default: True.
      padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'. Default: 'zeros'.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Shape: (N, C_in, D, H, W) or (C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out) or unbatched.

    Example:
      >>> conv = fl.Conv3d(16, 33, 3, stride=2)
      >>> params, state = conv.init(jax.random.PRNGKey(0))
      >>> y, _ = conv.apply(params, state, jnp.ones((20, 16, 10, 50, 100)))
      >>> y.shape
      (20, 33, 4, 24, 49)
    """
    del device
    return _conv_layer(
        3,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        groups,
        bias,
        padding_mode,
        dtype,
    )
