"""_instancenorm.py: instance normalisation (each sample's channel over its spatial dims), torch's buffers.

With `track_running_stats`, torch runs batch norm on the input viewed as `(1, N*C, *)` with the
buffers repeated N times, then averages the N updated copies: the new running mean is
`(1 - m) * running_mean + m * mean over the batch of each instance's mean` (the unbiased
variance likewise); `num_batches_tracked` is never incremented, and `momentum=None` means 0.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ._batchnorm import _norm_name, _update, check_channel_inputs, norm_init
from ._kernels._norm import standardize
from ._layer import Layer
from ._normalization import _affine, warn_unused_num_features
from ._utils import TorchRuntimeError, check_param_dtypes, fmt_shape


def _verify_spatial_size(where: str, shape: tuple) -> None:
    if math.prod(shape[2:]) == 1:
        raise ValueError(f"{where}: Expected more than 1 spatial element when training, got input size "
                         f"{list(shape)}.")


def _instance_norm(where: str, input: jax.Array, running_mean: Any, running_var: Any, weight: Any, bias: Any,
                   use_input_stats: bool, momentum: Any, eps: float):
    """(output, new_running_mean, new_running_var) for `(N, C, *)` input."""
    shape = check_channel_inputs(where, input, running_mean, running_var, weight, bias)
    channels = shape[1]
    bshape = (1, channels) + (1,) * (len(shape) - 2)
    # torch's instance_norm runs batch_norm's mixed-dtype check on the weight and bias only: it casts the
    # running statistics to the input's dtype (a float32 module takes a float64 input without affine)
    input = jnp.asarray(input)
    check_param_dtypes(where, input, (weight, bias), mixed=True)
    weight_c, bias_c = (None if a is None else jnp.asarray(a) for a in (weight, bias))
    if use_input_stats:
        _verify_spatial_size(where, shape)
        axes = tuple(range(2, len(shape)))
        xhat, mean, var = standardize(input, axes, float(eps))
        out = _affine(xhat, weight_c, bias_c, bshape).astype(input.dtype)
        count = math.prod(shape[2:])
        momentum = 0.0 if momentum is None else momentum
        mean = lax.stop_gradient(mean).reshape(shape[:2])
        var = lax.stop_gradient(var).reshape(shape[:2]) * (count / (count - 1))
        if running_mean is not None:
            running_mean = _update(running_mean, jnp.mean(mean, 0), momentum)
        if running_var is not None:
            running_var = _update(running_var, jnp.mean(var, 0), momentum)
        return out, running_mean, running_var
    if running_mean is None or running_var is None:
        raise ValueError(f"{where}: use_input_stats=False needs running_mean and running_var.")
    opmath = jnp.promote_types(input.dtype, jnp.float32)  # float32 statistics for a float16 / bfloat16 input
    mean, var = (jnp.asarray(a).astype(input.dtype).astype(opmath) for a in (running_mean, running_var))
    scale = lax.rsqrt(var + eps)
    scale = scale if weight_c is None else scale * weight_c
    shift = -mean * scale if bias_c is None else bias_c - mean * scale
    out = input.astype(opmath) * scale.reshape(bshape) + shift.reshape(bshape)
    return out.astype(input.dtype), running_mean, running_var


def instance_norm(input: jax.Array, running_mean: jax.Array | None = None,
                  running_var: jax.Array | None = None, weight: jax.Array | None = None,
                  bias: jax.Array | None = None, use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5, *, return_running_stats: bool = False) -> Any:
    """Normalises each channel of each sample over its spatial dims; torch.nn.functional.instance_norm.

    Being pure, it returns the updated running statistics, which torch updates in place, when
    `return_running_stats=True`: `(out, new_running_mean, new_running_var)`.

    Args:
      input: the (N, C, *) floating-point array.
      running_mean: optional (C,) running mean buffer. Default: None.
      running_var: optional (C,) running variance buffer. Default: None.
      weight: optional per-channel scale of shape (C,). Default: None.
      bias: optional per-channel shift of shape (C,). Default: None.
      use_input_stats: normalise with each instance's statistics and update the running ones (default
        True); else normalise with the running statistics.
      momentum: the running-average factor, running = (1 - momentum) running + momentum (batch average
        of the instance statistics, the unbiased variance) (default 0.1).
      eps: added to the variance (default 1e-5).
      return_running_stats: keyword only: also return the updated running statistics (default False).

    Shape:
      (N, C, *) -> the same shape; y = (x - mean) / sqrt(var + eps) * weight + bias, the mean and biased
      variance of each (sample, channel) over the axes *; with `return_running_stats`, also the two new
      (C,) running statistics.

    Example:
      >>> x = jnp.array([[[1.0, 3.0], [2.0, 6.0]]])   # (N, C, L) = (1, 2, 2)
      >>> y, mean, var = F.instance_norm(x, jnp.zeros(2), jnp.ones(2), return_running_stats=True)
      >>> jnp.round(y, 4)
      Array([[[-1.,  1.],
              [-1.,  1.]]], dtype=float32)
      >>> mean, var   # 0.9 * (0, 1) + 0.1 * (instance mean, unbiased instance variance)
      (Array([0.2, 0.4], dtype=float32), Array([1.1, 1.7], dtype=float32))
    """
    out, new_mean, new_var = _instance_norm("instance_norm", input, running_mean, running_var, weight, bias,
                                            use_input_stats, momentum, eps)
    return (out, new_mean, new_var) if return_running_stats else out


_RANKS = {"InstanceNorm1d": (2, "(C, L)", "(N, C, L)"),
          "InstanceNorm2d": (3, "(C, H, W)", "(N, C, H, W)"),
          "InstanceNorm3d": (4, "(C, D, H, W)", "(N, C, D, H, W)")}


def _instance_norm_layer(kind: str, num_features: int, eps: float, momentum: Any, affine: bool,
                         track_running_stats: bool, dtype: Any, bias: bool) -> Layer:
    name = _norm_name(kind, num_features, eps, momentum, affine, bias, track_running_stats)
    no_batch_dim, unbatched, batched = _RANKS[kind]

    def apply(params, state, input, *, rng=None, training=False):
        del rng
        ndim = len(fmt_shape(input))
        if ndim not in (no_batch_dim, no_batch_dim + 1):
            raise ValueError(f"{name}: expected {no_batch_dim}D or {no_batch_dim + 1}D input (got {ndim}D "
                             f"input); the input is {unbatched} or {batched}, got shape {fmt_shape(input)}.")
        feature_dim = ndim - no_batch_dim
        if input.shape[feature_dim] != num_features:
            if affine:
                raise ValueError(f"{name}: expected input's size at dim={feature_dim} to match num_features "
                                 f"({num_features}), but got: {input.shape[feature_dim]} (input of shape "
                                 f"{fmt_shape(input)}).")
            warn_unused_num_features(name, feature_dim)
            if track_running_stats:
                raise TorchRuntimeError(f"{name}: running_mean should contain {input.shape[feature_dim]} "
                                        f"elements not {num_features}: the tracked running statistics need "
                                        f"the input's channels at dim={feature_dim} to match num_features.")
        x = input[None] if ndim == no_batch_dim else input
        out, new_mean, new_var = _instance_norm(
            name, x, state.get("running_mean"), state.get("running_var"), params.get("weight"),
            params.get("bias"), training or not track_running_stats, momentum, eps)
        if ndim == no_batch_dim:
            out = out[0]
        new_state = dict(state)
        if training and track_running_stats:
            new_state["running_mean"], new_state["running_var"] = new_mean, new_var
        return out, new_state

    return Layer(norm_init(num_features, affine, bias, track_running_stats, dtype), apply, name)


_DOC = """Instance normalisation of {shape} input; twin of torch.nn.{kind}.

    Each channel of each sample is normalised over its spatial dims (unbatched input too).
    Parameters (with `affine`): per-channel `weight` (ones) and `bias` (zeros), shape (num_features,).
    State (with `track_running_stats`): torch's `running_mean`, `running_var`, `num_batches_tracked`.

    Args:
      num_features: C (only checked against the input when `affine` or `track_running_stats`, as in torch).
      eps: added to the variance (default 1e-5).
      momentum: the running statistics' update factor, running = (1 - momentum) running + momentum
        (batch average of the instance statistics) (default 0.1; None means 0).
      affine: learn per-channel `weight` and (if `bias`) `bias` (default False).
      track_running_stats: keep running statistics, updated in training and used in eval (default False).
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' and running statistics' dtype (default float32).
      bias: keyword only: learn the additive `bias` too (default True; only with affine).

    Shape:
      {shape} -> the same shape; y = (x - mean) / sqrt(var + eps) * weight + bias, the mean and biased
      variance of each (sample, channel) over the spatial axes (the running ones in eval when tracked).

    Example:
      >>> norm = fl.{kind}(2, affine=True)
      >>> params, state = norm.init(jax.random.PRNGKey(0))
      >>> x = jnp.array([[1.0, 3.0], [2.0, 6.0]]).reshape({x_shape})   # unbatched: channel 0: 1, 3; channel 1: 2, 6
      >>> y, state = norm.apply(params, state, x)
      >>> jnp.round(y.reshape(2, 2), 4)
      Array([[-1.,  1.],
             [-1.,  1.]], dtype=float32)
    """


def InstanceNorm1d(num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                   track_running_stats: bool = False, device: Any = None, dtype: Any = None, *,
                   bias: bool = True) -> Layer:
    del device
    return _instance_norm_layer("InstanceNorm1d", num_features, eps, momentum, affine, track_running_stats,
                                dtype, bias)


def InstanceNorm2d(num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                   track_running_stats: bool = False, device: Any = None, dtype: Any = None, *,
                   bias: bool = True) -> Layer:
    del device
    return _instance_norm_layer("InstanceNorm2d", num_features, eps, momentum, affine, track_running_stats,
                                dtype, bias)


def InstanceNorm3d(num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                   track_running_stats: bool = False, device: Any = None, dtype: Any = None, *,
                   bias: bool = True) -> Layer:
    del device
    return _instance_norm_layer("InstanceNorm3d", num_features, eps, momentum, affine, track_running_stats,
                                dtype, bias)


InstanceNorm1d.__doc__ = _DOC.format(kind="InstanceNorm1d", shape="(N, C, L) or (C, L)", x_shape=(2, 2))
InstanceNorm2d.__doc__ = _DOC.format(kind="InstanceNorm2d", shape="(N, C, H, W) or (C, H, W)", x_shape=(2, 1, 2))
InstanceNorm3d.__doc__ = _DOC.format(kind="InstanceNorm3d", shape="(N, C, D, H, W) or (C, D, H, W)",
                                      x_shape=(2, 1, 1, 2))
