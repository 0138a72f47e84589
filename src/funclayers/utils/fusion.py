"""Folding an eval-mode BatchNorm into the preceding convolution or linear layer (torch/nn/utils/fusion.py).

The `_weights` functions take and return arrays, as torch's do; the `_eval` functions take our
layers with their params and state and return the fused layer and its params.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp

from .._layer import Layer
from ._common import check_layer

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]


def fuse_conv_bn_weights(conv_w: Any, conv_b: Any, bn_rm: Any, bn_rv: Any, bn_eps: float, bn_w: Any, bn_b: Any,
                         transpose: bool = False) -> tuple[jax.Array, jax.Array]:
    """A convolution's weight and bias with an eval-mode BatchNorm folded in; torch.nn.utils.fuse_conv_bn_weights.

    `w' = w * (bn_w / sqrt(bn_rv + eps))` per output channel and
    `b' = (b - bn_rm) * bn_w / sqrt(bn_rv + eps) + bn_b`, in the convolution's dtypes.

    Args:
      conv_w: the convolution's weight, `(out, in/groups, *kernel)` (`(in, out/groups, *kernel)`
        when `transpose`).
      conv_b: its bias `(out,)`, or None (zeros).
      bn_rm: BatchNorm's running mean `(out,)`.
      bn_rv: its running variance `(out,)`.
      bn_eps: its eps.
      bn_w: its weight, or None (ones).
      bn_b: its bias, or None (zeros).
      transpose: the convolution is transposed (its output channels are axis 1). Default False.

    Returns: `(fused_weight, fused_bias)`.

    Shape: conv_w's shape and `(out,)`.

    Example:
      >>> w, b = fl.utils.fuse_conv_bn_weights(jnp.ones((2, 1, 3)), None, jnp.zeros(2), jnp.full(2, 3.0), 1.0,
      ...                                      jnp.array([2.0, 4.0]), jnp.ones(2))
      >>> w[:, 0, 0], b
      (Array([1., 2.], dtype=float32), Array([1., 1.], dtype=float32))
    """
    conv_w, bn_rm, bn_rv = jnp.asarray(conv_w), jnp.asarray(bn_rm), jnp.asarray(bn_rv)
    weight_dtype = conv_w.dtype
    bias_dtype = weight_dtype if conv_b is None else jnp.asarray(conv_b).dtype
    conv_b = jnp.zeros_like(bn_rm) if conv_b is None else jnp.asarray(conv_b)
    bn_w = jnp.ones_like(bn_rm) if bn_w is None else jnp.asarray(bn_w)
    bn_b = jnp.zeros_like(bn_rm) if bn_b is None else jnp.asarray(bn_b)
    bn_var_rsqrt = jax.lax.rsqrt(bn_rv + bn_eps)
    shape = [1, -1] if transpose else [-1, 1]
    shape += [1] * (conv_w.ndim - 2)
    fused_w = (conv_w * (bn_w * bn_var_rsqrt).reshape(shape)).astype(weight_dtype)
    fused_b = ((conv_b - bn_rm) * bn_var_rsqrt * bn_w + bn_b).astype(bias_dtype)
    return fused_w, fused_b


def fuse_linear_bn_weights(linear_w: Any, linear_b: Any, bn_rm: Any, bn_rv: Any, bn_eps: float, bn_w: Any,
                           bn_b: Any) -> tuple[jax.Array, jax.Array]:
    """A linear layer's weight and bias with an eval-mode BatchNorm folded in; torch.nn.utils.fuse_linear_bn_weights.

    `w' = w * (bn_w / sqrt(bn_rv + eps))[:, None]`, `b' = (b - bn_rm) * bn_w / sqrt(bn_rv + eps) + bn_b`.

    Args:
      linear_w: the weight `(out, in)`.
      linear_b: the bias `(out,)`, or None (zeros).
      bn_rm: BatchNorm's running mean `(out,)` (or `(1,)`).
      bn_rv: its running variance.
      bn_eps: its eps.
      bn_w: its weight.
      bn_b: its bias.

    Returns: `(fused_weight, fused_bias)`.

    Shape: `(out, in)` and `(out,)`.

    Example:
      >>> w, b = fl.utils.fuse_linear_bn_weights(jnp.ones((2, 3)), jnp.zeros(2), jnp.ones(2), jnp.full(2, 3.0),
      ...                                        1.0, jnp.full(2, 2.0), jnp.zeros(2))
      >>> w[:, 0], b
      (Array([1., 1.], dtype=float32), Array([-1., -1.], dtype=float32))
    """
    linear_w, bn_rm, bn_rv = jnp.asarray(linear_w), jnp.asarray(bn_rm), jnp.asarray(bn_rv)
    weight_dtype = linear_w.dtype
    bias_dtype = weight_dtype if linear_b is None else jnp.asarray(linear_b).dtype
    linear_b = jnp.zeros_like(bn_rm) if linear_b is None else jnp.asarray(linear_b)
    bn_scale = jnp.asarray(bn_w) * jax.lax.rsqrt(bn_rv + bn_eps)
    fused_w = linear_w * bn_scale[:, None].astype(weight_dtype)
    fused_b = ((linear_b - bn_rm) * bn_scale + jnp.asarray(bn_b)).astype(bias_dtype)
    return fused_w, fused_b


def _bn_eps(who: str, bn: Layer) -> float:
    match = re.search(r"eps=([0-9.eE+-]+)", bn.name)
    if not bn.name.startswith(("BatchNorm", "SyncBatchNorm")) or match is None:
        raise ValueError(f"{who} expects a BatchNorm layer (fl.BatchNorm1d/2d/3d), got {bn.name}.")
    return float(match.group(1))


def _bn_arrays(who: str, bn: Layer, bn_params: Any, bn_state: Any) -> tuple:
    eps = _bn_eps(who, bn)
    if "running_mean" not in bn_state or "running_var" not in bn_state:
        raise ValueError(f"{who}: bn.running_mean and bn.running_var must not be None (the BatchNorm needs "
                         f"track_running_stats=True), got state keys {sorted(bn_state)}.")
    return bn_state["running_mean"], bn_state["running_var"], eps, bn_params.get("weight"), bn_params.get("bias")


def _with_bias(layer: Layer, channel_axis: int, rank: int, bias_like: jax.Array) -> Layer:
    """`layer` (built with bias=False) plus a `bias` param added along the output channels, as torch's
    fused module gains one (init gives it zeros, after the weight as torch registers it)."""

    def init(rng, *example_inputs):
        params, state = layer.init(rng, *example_inputs) if example_inputs else layer.init(rng)
        return {**params, "bias": jnp.zeros(bias_like.shape, bias_like.dtype)}, state

    def apply(params, state, input, *args, **kwargs):
        bias = params["bias"]
        out, new_state = layer.apply({k: v for k, v in params.items() if k != "bias"}, state, input, *args, **kwargs)
        if channel_axis < 0:
            axis = channel_axis
        else:
            axis = channel_axis if jnp.ndim(input) == rank else channel_axis - 1  # unbatched input
        shape = [1] * out.ndim
        shape[axis] = -1
        return out + bias.reshape(shape).astype(out.dtype), new_state

    return Layer(init, apply, layer.name.replace("bias=False", "bias=True"), layer.children)


def fuse_conv_bn_eval(conv: Layer, conv_params: Any, bn: Layer, bn_params: Any, bn_state: Any,
                      transpose: bool = False) -> tuple[Layer, dict]:
    """A convolution with an eval-mode BatchNorm folded in, as one layer; torch.nn.utils.fuse_conv_bn_eval.

    torch deep-copies the module and replaces its weight and bias; the pure form returns the
    fused layer and its params: `apply(fused_params, {}, x)` equals BatchNorm(conv(x)) in eval
    mode. A convolution built with `bias=False` gains a bias, as torch's does.

    Args:
      conv: a convolution layer (`fl.Conv1d/2d/3d`, `fl.ConvTranspose*d` with `transpose=True`).
      conv_params: its params (`weight`, and `bias` if it has one).
      bn: the BatchNorm layer after it (with running statistics).
      bn_params: its params (`weight`, `bias`; none when `affine=False`).
      bn_state: its state (`running_mean`, `running_var`).
      transpose: the convolution is transposed (default False).

    Returns: `(fused_layer, fused_params)`.

    Shape: the convolution's: `(N, C_in, *spatial) -> (N, C_out, *spatial_out)`.

    Example:
      >>> conv, bn = fl.Conv2d(3, 4, 3, bias=False), fl.BatchNorm2d(4)
      >>> (cp, cs), (bp, bs) = conv.init(jax.random.PRNGKey(0)), bn.init(jax.random.PRNGKey(1))
      >>> fused, fp = fl.utils.fuse_conv_bn_eval(conv, cp, bn, bp, bs)
      >>> x = jnp.ones((1, 3, 5, 5))
      >>> ref = bn.apply(bp, bs, conv.apply(cp, cs, x)[0])[0]
      >>> bool(jnp.allclose(fused.apply(fp, {}, x)[0], ref, atol=1e-6))
      True
    """
    who = "fuse_conv_bn_eval"
    check_layer(who, conv)
    check_layer(who, bn)
    match = re.match(r"(Conv|ConvTranspose)([123])d", conv.name)
    if match is None:
        raise ValueError(f"{who} expects a convolution layer (fl.Conv2d, ...), got {conv.name}.")
    rm, rv, eps, bn_w, bn_b = _bn_arrays(who, bn, bn_params, bn_state)
    weight, bias = fuse_conv_bn_weights(conv_params["weight"], conv_params.get("bias"), rm, rv, eps, bn_w, bn_b,
                                        transpose)
    layer = conv if "bias" in conv_params else _with_bias(conv, 1, int(match.group(2)) + 2, bias)
    return layer, {"weight": weight, "bias": bias}


def fuse_linear_bn_eval(linear: Layer, linear_params: Any, bn: Layer, bn_params: Any,
                        bn_state: Any) -> tuple[Layer, dict]:
    """A linear layer with an eval-mode BatchNorm folded in, as one layer; torch.nn.utils.fuse_linear_bn_eval.

    Returns the fused layer and its params (a Linear built with `bias=False` gains a bias, as
    torch's does). As torch, requires `out_features == num_features` or `num_features == 1`.

    Args:
      linear: a `fl.Linear`.
      linear_params: its params.
      bn: the BatchNorm layer after it (`fl.BatchNorm1d`, with running statistics).
      bn_params: its params.
      bn_state: its state.

    Returns: `(fused_layer, fused_params)`.

    Shape: the linear layer's: `(*, in_features) -> (*, out_features)`.

    Example:
      >>> lin, bn = fl.Linear(3, 4), fl.BatchNorm1d(4)
      >>> (lp, ls), (bp, bs) = lin.init(jax.random.PRNGKey(0)), bn.init(jax.random.PRNGKey(1))
      >>> fused, fp = fl.utils.fuse_linear_bn_eval(lin, lp, bn, bp, bs)
      >>> fp["weight"].shape, fp["bias"].shape
      ((4, 3), (4,))
    """
    who = "fuse_linear_bn_eval"
    check_layer(who, linear)
    check_layer(who, bn)
    if not linear.name.startswith("Linear("):
        raise ValueError(f"{who} expects a fl.Linear layer, got {linear.name}.")
    rm, rv, eps, bn_w, bn_b = _bn_arrays(who, bn, bn_params, bn_state)
    out_features = linear_params["weight"].shape[0]
    if out_features != rm.shape[0] and rm.shape[0] != 1:
        raise ValueError(f"{who}: To fuse, linear.out_features == bn.num_features or bn.num_features == 1, got "
                         f"linear.out_features={out_features} and bn.num_features={rm.shape[0]}")
    weight, bias = fuse_linear_bn_weights(linear_params["weight"], linear_params.get("bias"), rm, rv, eps, bn_w,
                                          bn_b)
    layer = linear if "bias" in linear_params else _with_bias(linear, -1, 0, bias)
    return layer, {"weight": weight, "bias": bias}
