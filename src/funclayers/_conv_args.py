"""Argument checks and helpers shared by convolutions and transposed convolutions (`_conv.py`,
`_conv_transpose.py`): torch's checks and messages for stride, dilation, padding, groups, input rank
and dtypes; padding strings ("same", "valid") and padding modes; parameter init; the layers'
repr; the bias.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from . import init as _init
from ._padding import _edge_blocks
from ._utils import check_floating, check_param_dtypes, fmt_shape, ntuple, param_dtype

_DIMS = {1: ("C, L", "N, C, L"), 2: ("C, H, W", "N, C, H, W"), 3: ("C, D, H, W", "N, C, D, H, W")}
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def check_positive(who: str, stride: tuple, dilation: tuple) -> None:
    """torch's "non-positive stride" / "dilation should be greater than zero" checks."""
    if any(not isinstance(s, int) or s <= 0 for s in stride):
        raise ValueError(f"{who}: non-positive stride is not supported, got stride={stride}.")
    if any(not isinstance(d, int) or d <= 0 for d in dilation):
        raise ValueError(f"{who}: dilation should be greater than zero, got dilation={dilation}.")


def check_padding(who: str, padding: tuple) -> None:
    if any(not isinstance(p, int) or p < 0 for p in padding):
        raise ValueError(f"{who}: negative padding is not supported, got padding={padding}.")


def check_groups(who: str, in_channels: int, out_channels: int, groups: int) -> None:
    """torch's _ConvNd checks on groups."""
    if not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{who}: groups must be a positive integer, got groups={groups}.")
    if in_channels % groups != 0:
        raise ValueError(
            f"{who}: in_channels must be divisible by groups, got in_channels={in_channels}, groups={groups}."
        )
    if out_channels % groups != 0:
        raise ValueError(
            f"{who}: out_channels must be divisible by groups, got out_channels={out_channels}, "
            f"groups={groups}."
        )


def same_padding(kernel_size: tuple, dilation: tuple) -> list[tuple[int, int]]:
    """padding='same': total dilation*(k-1), the odd extra element on the right (torch's _conv_forward)."""
    out = []
    for k, d in zip(kernel_size, dilation, strict=False):
        total = d * (k - 1)
        out.append((total // 2, total - total // 2))
    return out


def parse_padding(who: str, padding: Any, n: int, stride: tuple) -> str | tuple:
    """'same', 'valid' or an n-tuple of non-negative ints, with torch's errors."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(
                f"{who}: Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}."
            )
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(
                f"{who}: padding='same' is not supported for strided convolutions "
                f"(stride={stride}); use an explicit padding instead."
            )
        return padding
    padding = ntuple(padding, n, "padding", who)
    check_padding(who, padding)
    return padding


def padding_pairs(padding: str | tuple, kernel_size: tuple, dilation: tuple) -> list[tuple[int, int]]:
    if padding == "same":
        return same_padding(kernel_size, dilation)
    if padding == "valid":
        return [(0, 0)] * len(kernel_size)
    return [(p, p) for p in padding]


def conv_repr(
    kind: str,
    in_channels: int,
    out_channels: int,
    kernel_size: tuple,
    stride: tuple,
    padding: str | tuple,
    dilation: tuple,
    output_padding: tuple,
    groups: int,
    bias: bool,
    padding_mode: str,
) -> str:
    """torch's _ConvNd.extra_repr, e.g. "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1))"."""
    s = f"{kind}({in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
    if padding != (0,) * len(padding):
        s += f", padding={padding}"
    if dilation != (1,) * len(dilation):
        s += f", dilation={dilation}"
    if output_padding != (0,) * len(output_padding):
        s += f", output_padding={output_padding}"
    if groups != 1:
        s += f", groups={groups}"
    if not bias:
        s += ", bias=False"
    if padding_mode != "zeros":
        s += f", padding_mode={padding_mode}"
    return s + ")"


def init_conv_params(weight_shape: tuple, out_channels: int, bias: bool, dtype: Any):
    """torch's _ConvNd.reset_parameters: kaiming_uniform(a=sqrt(5)), bias U(-1/sqrt(fan_in), ..)."""
    dtype = param_dtype(dtype)
    fan_in, _ = _init.calculate_fan_in_and_fan_out(weight_shape)

    def init(rng):
        k_weight, k_bias = jax.random.split(rng)
        params = {"weight": _init.kaiming_uniform(k_weight, weight_shape, dtype, a=math.sqrt(5))}
        if bias:
            params["bias"] = _init.bias_uniform(k_bias, (out_channels,), fan_in, dtype)
        return params, {}

    return init


def check_input(who: str, input: Any, n: int) -> bool:
    """Rank and dtype checks; returns whether the input is batched."""
    ndim = len(fmt_shape(input))
    if ndim not in (n + 1, n + 2):
        unbatched, batched = _DIMS[n]
        raise ValueError(
            f"{who} expects a {n + 1}D ({unbatched}) or {n + 2}D ({batched}) input, "
            f"got shape {fmt_shape(input)}."
        )
    check_floating(who, input)
    return ndim == n + 2


# torch 2.13 on CPU (aten/src/ATen/native/Convolution.cpp): a convolution checks the bias first
# (check_input_same_type_as_parameters), then its kernel the weight; a bfloat16 input goes to oneDNN, which
# words the weight's check its own way; a transposed convolution checks in its kernel only.
CONV_DTYPE_MESSAGES = {
    "bias": "Input type ({input_c}) and bias type ({param_c}) should be the same",
    "weight": "expected scalar type {input} but found {param}",
    "onednn": "Input type ({input_t}) and weight type ({param_t}) should be the same or input should be a MKLDNN "
              "tensor and weight is a dense tensor",
    "conv_tbc": "self and mat2 must have the same dtype, but got {input} and {param}",
}


def check_conv_dtypes(who: str, x: jax.Array, weight: Any, bias: Any, kind: str = "conv") -> tuple:
    """(weight, bias) as arrays, after torch's check that both have the input's dtype (no cast).

    kind: "conv", "conv_transpose" or "conv_tbc", which words torch's message.
    """
    if kind == "conv_tbc":
        check_param_dtypes(who, x, (weight, bias), CONV_DTYPE_MESSAGES["conv_tbc"])
    if kind == "conv":
        check_param_dtypes(who, x, (bias,), CONV_DTYPE_MESSAGES["bias"])
    onednn = jnp.result_type(x) == jnp.bfloat16
    check_param_dtypes(who, x, (weight, bias), CONV_DTYPE_MESSAGES["onednn" if onednn else "weight"])
    return jnp.asarray(weight), None if bias is None else jnp.asarray(bias)


def check_bias(who: str, bias: Any, out_channels: int) -> None:
    if bias is not None and fmt_shape(bias) != (out_channels,):
        raise ValueError(f"{who} expects a bias of shape ({out_channels},), got shape {fmt_shape(bias)}.")


def add_bias(out: jax.Array, bias: jax.Array | None) -> jax.Array:
    if bias is None:
        return out
    return out + bias.reshape((1, -1) + (1,) * (out.ndim - 2))


def pad_input(who: str, x: jax.Array, pairs: list[tuple[int, int]], mode: str) -> jax.Array:
    """F.pad of the spatial dims of batched `x` with torch's padding_mode, with torch's size checks."""
    spatial = x.shape[2:]
    for size, (lo, hi) in zip(spatial, pairs, strict=False):
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(
                f"{who}: padding_mode='reflect' needs padding ({lo}, {hi}) smaller than the "
                f"input size {size} in input of shape {x.shape}."
            )
        if mode == "circular" and (lo > size or hi > size):
            raise ValueError(
                f"{who}: padding_mode='circular' with padding ({lo}, {hi}) wraps around more "
                f"than once for input size {size} in input of shape {x.shape}."
            )
        if mode == "replicate" and size == 0 and (lo or hi):
            raise ValueError(f"{who}: padding_mode='replicate' cannot pad an empty dimension.")
    # F.pad's lowering: one concatenation of blocks cut from x, outermost axis first (_padding.py)
    return _edge_blocks(x, [(2 + i, lo, hi) for i, (lo, hi) in enumerate(pairs)], mode)
