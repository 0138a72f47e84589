"""_batchnorm.py: batch normalisation with torch's running statistics, and SyncBatchNorm over mapped axes.

Training mode normalises with the batch's biased variance and returns the updated buffers:
`running_mean <- (1 - m) * running_mean + m * mean`, `running_var` likewise with the unbiased
variance, `num_batches_tracked += 1`, where `m` is `momentum` or, for `momentum=None`, torch's
cumulative average `1 / num_batches_tracked`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from . import init as _init
from ._kernels._norm import _bn_train
from ._layer import Layer
from ._normalization import _affine, verify_batch_size
from ._utils import TorchRuntimeError, cast_like, check_floating, fmt_shape, param_dtype


def counter_dtype() -> jnp.dtype:
    """torch's int64 `num_batches_tracked`: int64 under jax_enable_x64, else int32."""
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def check_eps(where: str, eps: float, training: bool) -> None:
    if training and eps <= 0.0:
        raise ValueError(f"{where}: batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"{where}: batch_norm eps must be non-negative, but got {eps}")


def _check_vector(where: str, what: str, value: Any, channels: int, shape: tuple) -> None:
    if value is not None and fmt_shape(value) != (channels,):
        raise TorchRuntimeError(f"{where}: {what} should contain {channels} elements (the channels, dim 1, "
                                f"of input of shape {shape}), got shape {fmt_shape(value)}.")


def check_channel_inputs(where: str, input: Any, running_mean: Any, running_var: Any, weight: Any,
                         bias: Any) -> tuple:
    """The (N, C, *) input's shape, after torch's checks shared by batch and instance norm."""
    check_floating(where, input)
    shape = fmt_shape(input)
    if len(shape) < 2:
        raise TorchRuntimeError(f"{where}: expected an (N, C, *) input with at least 2 dims, got shape "
                                f"{shape}.")
    for what, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                        ("bias", bias)):
        _check_vector(where, what, value, channels=shape[1], shape=shape)
    return shape


def _update(running: jax.Array, batch: jax.Array, momentum: Any) -> jax.Array:
    """`(1 - momentum) * running + momentum * batch`, kept in the buffer's own dtype."""
    new = (1 - momentum) * running.astype(batch.dtype) + momentum * batch
    return new.astype(running.dtype)


def _batch_norm_train(input, weight, bias, axes, eps, bshape):
    """(out, mean, var) of a training-mode batch norm; weight / bias None mean 1 / 0."""
    dtype = input.dtype
    x = input.astype(jnp.float32) if dtype in (jnp.float16, jnp.bfloat16) else input
    one = jnp.ones(bshape, x.dtype)
    weight = one if weight is None else weight.reshape(bshape).astype(x.dtype)
    bias = 0 * one if bias is None else bias.reshape(bshape).astype(x.dtype)
    out, mean, var = _bn_train(x, weight, bias, axes, eps)
    return out.astype(dtype), mean, var


def _batch_norm(where: str, input: jax.Array, running_mean: Any, running_var: Any, weight: Any, bias: Any,
                training: bool, momentum: Any, eps: float, axis_name: Any = None):
    """(output, new_running_mean, new_running_var); the buffers None where not given."""
    shape = check_channel_inputs(where, input, running_mean, running_var, weight, bias)
    channels = shape[1]
    check_eps(where, eps, training)
    if training:
        verify_batch_size(where, shape)
    if math.prod(shape) == 0:  # torch: an empty batch passes through, the running stats untouched
        return input, running_mean, running_var
    bshape = (1, channels) + (1,) * (len(shape) - 2)
    weight_c, bias_c = cast_like(input, weight, bias)
    if training or running_mean is None or running_var is None:
        axes = (0,) + tuple(range(2, len(shape)))
        if axis_name is None:
            count = math.prod(shape[a] for a in axes)
            out, mean, var = _batch_norm_train(input, weight_c, bias_c, axes, float(eps), bshape)
        else:
            xhat, mean, var, count = _global_standardize(input, axes, float(eps), axis_name)
            out = _affine(xhat, weight_c, bias_c, bshape)
        if training and running_mean is not None:
            mean = lax.stop_gradient(mean).reshape(channels)
            unbiased = lax.stop_gradient(var).reshape(channels) * (count / (count - 1))
            momentum = 0.0 if momentum is None else momentum
            running_mean = _update(running_mean, mean, momentum)
            running_var = _update(running_var, unbiased, momentum) if running_var is not None else None
        return out, running_mean, running_var
    mean, var = cast_like(input, running_mean, running_var)
    inv_std = lax.rsqrt(var + eps)
    scale = inv_std if weight_c is None else inv_std * weight_c
    shift = -mean * scale if bias_c is None else bias_c - mean * scale
    return input * scale.reshape(bshape) + shift.reshape(bshape), running_mean, running_var


def _global_standardize(input, axes, eps, axis_name):
    """Statistics over `axes` and over the devices along `axis_name`, as torch's sync_batch_norm.

    Each device contributes its count, sum and sum of squared deviations (`lax.psum`), so the result
    is right even where devices hold different numbers of samples; autodiff through the psums gives
    torch's global backward.
    """
    count = jnp.asarray(math.prod(input.shape[a] for a in axes), input.dtype)
    total = lax.psum(count, axis_name)
    mean = lax.psum(jnp.sum(input, axes, keepdims=True), axis_name) / total
    centred = input - mean
    var = lax.psum(jnp.sum(centred * centred, axes, keepdims=True), axis_name) / total
    return centred * lax.rsqrt(var + eps), mean, var, total


def batch_norm(input: jax.Array, running_mean: jax.Array | None, running_var: jax.Array | None,
               weight: jax.Array | None = None, bias: jax.Array | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, return_running_stats: bool = False) -> Any:
    """Batch normalisation over `(N, C, *)` input per channel; torch.nn.functional.batch_norm.

    torch updates `running_mean` / `running_var` in place in training mode; being pure, this returns
    them instead when `return_running_stats=True`: `(out, new_running_mean, new_running_var)`.

    Args:
      input: `(N, C, *)`.
      running_mean, running_var: `(C,)` buffers or None; used for normalising when not training.
      weight, bias: optional `(C,)` affine.
      training: normalise with the batch statistics (and update the running ones).
      momentum: the running-average factor.
      eps: added to the variance.

    Example:
      >>> y, mean, var = F.batch_norm(x, jnp.zeros(3), jnp.ones(3), training=True, return_running_stats=True)
    """
    out, new_mean, new_var = _batch_norm("batch_norm", input, running_mean, running_var, weight, bias,
                                         training, momentum, eps)
    return (out, new_mean, new_var) if return_running_stats else out


def _norm_name(kind: str, num_features: int, eps: float, momentum: Any, affine: bool, bias: bool,
               track_running_stats: bool) -> str:
    return (f"{kind}({num_features}, eps={eps}, momentum={momentum}, affine={affine}, "
            f"bias={bool(affine and bias)}, track_running_stats={track_running_stats})")


def norm_init(num_features: int, affine: bool, bias: bool, track_running_stats: bool, dtype: Any):
    """torch's _NormBase buffers and parameters: weight ones, bias zeros, running stats 0 / 1 / 0."""
    def init(rng):
        del rng
        pdt = param_dtype(dtype)
        params, state = {}, {}
        if affine:
            params["weight"] = _init.ones(None, (num_features,), pdt)
            if bias:
                params["bias"] = _init.zeros(None, (num_features,), pdt)
        if track_running_stats:
            state = {"running_mean": _init.zeros(None, (num_features,), pdt),
                     "running_var": _init.ones(None, (num_features,), pdt),
                     "num_batches_tracked": jnp.zeros((), counter_dtype())}
        return params, state

    return init


_RANKS = {"BatchNorm1d": ((2, 3), "2D or 3D", "(N, C) or (N, C, L)"),
          "BatchNorm2d": ((4,), "4D", "(N, C, H, W)"),
          "BatchNorm3d": ((5,), "5D", "(N, C, D, H, W)")}


def _batch_norm_layer(kind: str, num_features: int, eps: float, momentum: Any, affine: bool,
                      track_running_stats: bool, dtype: Any, bias: bool, process_group: Any = None) -> Layer:
    name = _norm_name(kind, num_features, eps, momentum, affine, bias, track_running_stats)
    axis_names = (process_group,) if isinstance(process_group, str) else tuple(process_group or ())

    def apply(params, state, input, *, rng=None, training=False):
        del rng
        ndim = len(fmt_shape(input))
        if kind in _RANKS:
            ranks, expected, dims = _RANKS[kind]
            if ndim not in ranks:
                raise ValueError(f"{name}: expected {expected} input (got {ndim}D input); the input is "
                                 f"{dims}, got shape {fmt_shape(input)}.")
        else:  # SyncBatchNorm
            if ndim < 2:
                raise ValueError(f"{name}: expected at least 2D input (got {ndim}D input) of shape "
                                 f"(N, C, *), got shape {fmt_shape(input)}.")
            if input.shape[1] == 0:
                raise ValueError(f"{name}: SyncBatchNorm number of input channels should be non-zero.")
        if (affine or track_running_stats) and input.shape[1] != num_features:
            raise TorchRuntimeError(f"{name} expects {num_features} channels (dim 1), got {input.shape[1]} "
                                    f"in input of shape {fmt_shape(input)}.")
        new_state = dict(state)
        momentum_now = momentum
        if training and track_running_stats:
            new_state["num_batches_tracked"] = state["num_batches_tracked"] + 1
            if momentum is None:  # torch's cumulative moving average
                momentum_now = 1.0 / new_state["num_batches_tracked"].astype(compute_float(input))
        # torch normalises with batch statistics in training, and in eval when none are tracked
        bn_training = training or not track_running_stats
        axis_name = _bound_axes(axis_names) if training else None
        out, new_mean, new_var = _batch_norm(name, input, state.get("running_mean"), state.get("running_var"),
                                             params.get("weight"), params.get("bias"), bn_training,
                                             momentum_now, eps, axis_name)
        if training and track_running_stats:
            new_state["running_mean"], new_state["running_var"] = new_mean, new_var
        return out, new_state

    return Layer(norm_init(num_features, affine, bias, track_running_stats, dtype), apply, name)


def compute_float(x: Any) -> jnp.dtype:
    dtype = jnp.result_type(x)
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.float32)


def _bound_axes(axis_names: tuple) -> Any:
    """The subset of `axis_names` bound by an enclosing pmap / shard_map / vmap, or None."""
    bound = []
    for axis in axis_names:
        try:
            lax.axis_size(axis)
        except NameError:
            continue
        bound.append(axis)
    if not bound:
        return None
    return bound[0] if len(bound) == 1 else tuple(bound)


_DOC = """Batch normalisation over {shape} input with torch's running statistics; twin of torch.nn.{kind}.

    Args:
      num_features: C.
      eps: added to the variance.
      momentum: running-average factor, or None for the cumulative average.
      affine: learn per-channel `weight` (ones) and, if `bias`, `bias` (zeros).
      track_running_stats: keep `running_mean`, `running_var`, `num_batches_tracked` in `state`,
        update them in training and normalise with them in eval; else always use batch statistics.

    Shape: {shape} -> same.

    Example:
      >>> bn = fl.{kind}(16)
      >>> params, state = bn.init(jax.random.PRNGKey(0))
      >>> y, state = bn.apply(params, state, x, training=True)
    """


def BatchNorm1d(num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                bias: bool = True) -> Layer:
    del device
    return _batch_norm_layer("BatchNorm1d", num_features, eps, momentum, affine, track_running_stats, dtype,
                             bias)


def BatchNorm2d(num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                bias: bool = True) -> Layer:
    del device
    return _batch_norm_layer("BatchNorm2d", num_features, eps, momentum, affine, track_running_stats, dtype,
                             bias)


def BatchNorm3d(num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                bias: bool = True) -> Layer:
    del device
    return _batch_norm_layer("BatchNorm3d", num_features, eps, momentum, affine, track_running_stats, dtype,
                             bias)


BatchNorm1d.__doc__ = _DOC.format(kind="BatchNorm1d", shape="(N, C) or (N, C, L)")
BatchNorm2d.__doc__ = _DOC.format(kind="BatchNorm2d", shape="(N, C, H, W)")
BatchNorm3d.__doc__ = _DOC.format(kind="BatchNorm3d", shape="(N, C, D, H, W)")


def SyncBatchNorm(num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                  track_running_stats: bool = True, process_group: str | tuple[str, ...] | None = None,
                  device: Any = None, dtype: Any = None, *, bias: bool = True) -> Layer:
    """Batch normalisation whose training statistics span a mapped axis; twin of torch.nn.SyncBatchNorm.

    Args:
      num_features, eps, momentum, affine, track_running_stats, bias: as BatchNorm.
      process_group: the mapped axis name (or a tuple of names) of `jax.pmap`, `shard_map` or
        `jax.vmap(..., axis_name=...)` to reduce over. When None, or when no such axis is bound
        where the layer runs, it is exactly BatchNorm.

    In training under the axis, the mean and variance are those of the whole global batch
    (each device's count, sum and squared deviations are `psum`-ed, so uneven per-device batches
    are right), and the running statistics are updated with them (the unbiased variance with the
    global count). Eval mode uses the running statistics, as in torch.

    Shape: `(N, C, *)` -> same.

    Example:
      >>> bn = fl.SyncBatchNorm(16, process_group="batch")
      >>> params, state = bn.init(jax.random.PRNGKey(0))
      >>> step = jax.pmap(lambda x: bn.apply(params, state, x, training=True), axis_name="batch")
    """
    del device
    names = (process_group,) if isinstance(process_group, str) else process_group
    if names is not None and not (isinstance(names, tuple) and all(isinstance(a, str) for a in names)):
        raise ValueError(f"SyncBatchNorm: process_group must be None, a mapped axis name (str) or a tuple of "
                         f"them, got {process_group!r}.")
    return _batch_norm_layer("SyncBatchNorm", num_features, eps, momentum, affine, track_running_stats, dtype,
                             bias, process_group)
