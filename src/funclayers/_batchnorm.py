"""_batchnorm.py: batch normalisation with torch's running statistics, and SyncBatchNorm over mapped axes.

Training mode normalises with the batch's biased variance and returns the updated buffers:
`running_mean <- (1 - m) * running_mean + m * mean`, `running_var` likewise with the unbiased
variance, `num_batches_tracked += 1`, where `m` is `momentum` or, for `momentum=None`, torch's
cumulative average `1 / num_batches_tracked`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from . import init as _init
from ._kernels._norm import _bn_train
from ._layer import Layer
from ._layout import CNHW, PHASE, channel_view
from ._layout import channels as layout_channels
from ._normalization import _affine, verify_batch_size
from ._utils import TorchRuntimeError, check_floating, check_param_dtypes, fmt_shape, param_dtype


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


# -- the data-parallel wrappers' context (funclayers.parallel) ---------------------------------
# torch's SyncBatchNorm with process_group=None reduces over the default process group; here the
# default group is the device axis of the enclosing DataParallel / DistributedDataParallel, which
# the wrapper publishes while it traces its replica (`replica_context`). With an uneven split the
# wrapper pads the last replica's shard, and `valid` (traced, one value per replica) says how many
# leading rows of each shard are real: batch statistics leave the padding rows out.
# `convert_sync_batchnorm` publishes its process_group (`converted_to_sync`): BatchNorm*d layers
# traced inside behave as SyncBatchNorm.


@dataclasses.dataclass(frozen=True)
class ReplicaContext:
    """What a data-parallel wrapper tells the normalisers of the replica it is tracing."""

    axis_name: Any          # the wrapper's mapped device axis
    shard_size: int         # rows along the scattered dim in each replica's (padded) shard
    valid: Any = None       # real rows in this replica's shard (traced), None when the split is even
    smallest: int = 0       # the fewest real rows any replica holds (static)
    where: str = "DataParallel"


_REPLICA: contextvars.ContextVar = contextvars.ContextVar("funclayers_replica", default=None)
_CONVERTED: contextvars.ContextVar = contextvars.ContextVar("funclayers_converted_sync", default=None)


@contextlib.contextmanager
def replica_context(context: ReplicaContext) -> Iterator[None]:
    """While tracing one replica of a data-parallel wrapper: its device axis and padding rows."""
    token = _REPLICA.set(context)
    try:
        yield
    finally:
        _REPLICA.reset(token)


@contextlib.contextmanager
def converted_to_sync(process_group: Any) -> Iterator[None]:
    """BatchNorm*d traced inside behave as SyncBatchNorm(process_group=process_group)."""
    token = _CONVERTED.set((_group_names(process_group),))
    try:
        yield
    finally:
        _CONVERTED.reset(token)


def _group_names(process_group: Any) -> tuple:
    names = (process_group,) if isinstance(process_group, str) else process_group
    if names is not None and not (isinstance(names, tuple) and all(isinstance(a, str) for a in names)):
        raise ValueError(f"SyncBatchNorm: process_group must be None, a mapped axis name (str) or a tuple of "
                         f"them, got {process_group!r}.")
    return tuple(names or ())


def _sync_axes(where: str, group: tuple, context: ReplicaContext | None) -> Any:
    """The mapped axes a training-mode SyncBatchNorm reduces over, or None for plain BatchNorm."""
    if not group:  # torch's default group: the enclosing wrapper's devices; none outside (as torch)
        bound = None if context is None else context.axis_name
    else:
        bound = _bound_axes(group)
    if bound is None and group:
        raise ValueError(f"{where}: process_group {group[0] if len(group) == 1 else group!r} names a mapped "
                         f"axis, but none of {list(group)} is bound where the layer runs in training "
                         f"mode. Run it under jax.shard_map / jax.pmap / jax.vmap with that axis_name, or "
                         f"inside fl.DistributedDataParallel(..., process_group={group[0]!r}); or pass "
                         f"process_group=None (the enclosing DataParallel's devices, plain BatchNorm "
                         f"outside any wrapper).")
    names = bound if isinstance(bound, tuple) else (bound,)
    if bound is not None and math.prod(lax.axis_size(a) for a in names) == 1:
        return None  # a group of one device is plain BatchNorm: its faster kernel, no psum
    return bound


def _masked_standardize(where, input, axes, eps, axis_name, context: ReplicaContext):
    """Batch statistics of the real (non-padding) rows of a replica's shard, over `axis_name` too."""
    if input.shape[0] != context.shard_size:
        raise ValueError(f"{where} inside {context.where} with an uneven split: the input's dim 0 "
                         f"({input.shape[0]}) is not the scattered batch ({context.shard_size} rows per "
                         f"replica), so its statistics cannot leave out the padding of the last replica. "
                         f"Use a batch size that the devices divide evenly.")
    per_row = math.prod(input.shape[a] for a in axes if a != 0)
    rows = (jnp.arange(input.shape[0]) < context.valid).astype(input.dtype)
    rows = rows.reshape((-1,) + (1,) * (input.ndim - 1))
    count = context.valid.astype(input.dtype) * per_row
    total = count if axis_name is None else lax.psum(count, axis_name)
    summed = jnp.sum(input * rows, axes, keepdims=True)
    mean = (summed if axis_name is None else lax.psum(summed, axis_name)) / total
    centred = input - mean
    squares = jnp.sum(centred * centred * rows, axes, keepdims=True)
    var = (squares if axis_name is None else lax.psum(squares, axis_name)) / total
    return centred * lax.rsqrt(var + eps), mean, var, total


def _update(running: jax.Array, batch: jax.Array, momentum: Any) -> jax.Array:
    """`(1 - momentum) * running + momentum * batch`, kept in the buffer's own dtype."""
    new = (1 - momentum) * running.astype(batch.dtype) + momentum * batch
    return new.astype(running.dtype)


def _batch_norm_train(input, weight, bias, axes, eps, bshape, native=None):
    """(out, mean, var) of a training-mode batch norm; weight / bias None mean 1 / 0.

    `native`: (shape, axes, bshape) of a `_layout` value whose (A, C, B) view `input` is; the kernel
    then runs on that shape (see `_batch_norm_layer`'s `layout_apply`).
    """
    if native is not None:
        shape, native_axes, native_bshape = native
        out, mean, var = _batch_norm_train(input.reshape(shape), weight, bias, native_axes, eps, native_bshape)
        return out.reshape(input.shape), mean.reshape(bshape), var.reshape(bshape)
    dtype = input.dtype
    x = input.astype(jnp.float32) if dtype in (jnp.float16, jnp.bfloat16) else input
    one = jnp.ones(bshape, x.dtype)
    weight = one if weight is None else weight.reshape(bshape).astype(x.dtype)
    bias = 0 * one if bias is None else bias.reshape(bshape).astype(x.dtype)
    out, mean, var = _bn_train(x, weight, bias, axes, eps)
    return out.astype(dtype), mean, var


def _batch_norm(where: str, input: jax.Array, running_mean: Any, running_var: Any, weight: Any, bias: Any,
                training: bool, momentum: Any, eps: float, axis_name: Any = None,
                rows: ReplicaContext | None = None, native: Any = None):
    """(output, new_running_mean, new_running_var); the buffers None where not given.

    `rows`: inside a data-parallel wrapper with an uneven split, the replica's real rows.
    """
    shape = check_channel_inputs(where, input, running_mean, running_var, weight, bias)
    input = jnp.asarray(input)
    channels = shape[1]
    check_eps(where, eps, training)
    if training:
        verify_batch_size(where, shape)
    if math.prod(shape) == 0:  # torch: an empty batch passes through, the running stats untouched
        return input, running_mean, running_var
    bshape = (1, channels) + (1,) * (len(shape) - 2)
    # torch's batch_norm_cpu: the parameters and buffers have the input's dtype, or float32 with a float16 /
    # bfloat16 input (its mixed-dtype support: float32 statistics, the output in the input's dtype)
    check_param_dtypes(where, input, (weight, bias, running_mean, running_var), mixed=True)
    weight_c, bias_c = (None if a is None else jnp.asarray(a) for a in (weight, bias))
    if training or running_mean is None or running_var is None:
        axes = (0,) + tuple(range(2, len(shape)))
        if rows is not None:
            if axis_name is None:  # torch's per-replica check, on the smallest real shard
                verify_batch_size(where, (rows.smallest,) + tuple(shape[1:]))
            xhat, mean, var, count = _masked_standardize(where, input, axes, float(eps), axis_name, rows)
            out = _affine(xhat, weight_c, bias_c, bshape).astype(input.dtype)
        elif axis_name is None:
            count = math.prod(shape[a] for a in axes)
            out, mean, var = _batch_norm_train(input, weight_c, bias_c, axes, float(eps), bshape, native)
        else:
            xhat, mean, var, count = _global_standardize(input, axes, float(eps), axis_name)
            out = _affine(xhat, weight_c, bias_c, bshape).astype(input.dtype)
        if training and running_mean is not None:
            mean = lax.stop_gradient(mean).reshape(channels)
            unbiased = lax.stop_gradient(var).reshape(channels) * (count / (count - 1))
            momentum = 0.0 if momentum is None else momentum
            running_mean = _update(running_mean, mean, momentum)
            running_var = _update(running_var, unbiased, momentum) if running_var is not None else None
        return out, running_mean, running_var
    mean, var = jnp.asarray(running_mean), jnp.asarray(running_var)
    inv_std = lax.rsqrt(var + eps)
    scale = inv_std if weight_c is None else inv_std * weight_c
    shift = -mean * scale if bias_c is None else bias_c - mean * scale
    x = input.astype(scale.dtype)  # float32 for a mixed-dtype bfloat16 / float16 input, as torch
    out = (x * scale.reshape(bshape) + shift.reshape(bshape)).astype(input.dtype)
    return out, running_mean, running_var


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
      input: the (N, C, *) floating-point array.
      running_mean: the (C,) running mean buffer or None; normalise with it when not training.
      running_var: the (C,) running variance buffer or None; normalise with it when not training.
      weight: optional per-channel scale of shape (C,). Default: None.
      bias: optional per-channel shift of shape (C,). Default: None.
      training: normalise with the batch's statistics (and update the running ones) (default False).
      momentum: the running-average factor, running = (1 - momentum) running + momentum batch (default 0.1).
      eps: added to the variance (default 1e-5).
      return_running_stats: keyword only: also return the updated running statistics (default False).

    Shape:
      (N, C, *) -> the same shape; y = (x - mean) / sqrt(var + eps) * weight + bias per channel, the
      mean and biased variance over every axis but C in training (the running variance is updated with
      the unbiased one); with `return_running_stats`, also the two new (C,) running statistics.

    Example:
      >>> x = jnp.array([[1.0, 2.0], [3.0, 6.0]])   # (N, C) = (2, 2)
      >>> y, mean, var = F.batch_norm(x, jnp.zeros(2), jnp.ones(2), training=True, return_running_stats=True)
      >>> mean, var   # 0.9 * (0, 1) + 0.1 * (batch mean, unbiased batch variance)
      (Array([0.2, 0.4], dtype=float32), Array([1.1, 1.7], dtype=float32))
      >>> jnp.round(F.batch_norm(x, jnp.array([2.0, 4.0]), jnp.array([1.0, 4.0])), 4)   # eval: the given statistics
      Array([[-1., -1.],
             [ 1.,  1.]], dtype=float32)
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


def _native(value: jax.Array, layout: str) -> tuple:
    """`_batch_norm_train`'s `native` for a "phase" or "cnhw" value: its shape, axes and per-channel shape.

    The kernel computes on the value's own shape rather than on its (A, C, B) `channel_view`: with
    the view, the statistics read the convolution's output in two shapes and XLA wrote it out in each
    (small CNN train step, same process: wall median 2-5% less with the two-element pool pick, issue 28).
    """
    c = 2 if layout == PHASE else 0
    return (value.shape, tuple(a for a in range(value.ndim) if a != c),
            tuple(value.shape[c] if a == c else 1 for a in range(value.ndim)))


def _batch_norm_layer(kind: str, num_features: int, eps: float, momentum: Any, affine: bool,
                      track_running_stats: bool, dtype: Any, bias: bool, process_group: Any = None) -> Layer:
    name = _norm_name(kind, num_features, eps, momentum, affine, bias, track_running_stats)
    axis_names = _group_names(process_group)

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
        return run(params, state, input, training)

    def run(params, state, input, training, native=None):
        new_state = dict(state)
        momentum_now = momentum
        if training and track_running_stats:
            new_state["num_batches_tracked"] = state["num_batches_tracked"] + 1
            if momentum is None:  # torch's cumulative moving average
                momentum_now = 1.0 / new_state["num_batches_tracked"].astype(compute_float(input))
        # torch normalises with batch statistics in training, and in eval when none are tracked
        bn_training = training or not track_running_stats
        context, converted = _REPLICA.get(), _CONVERTED.get()
        axis_name = None
        if training and (kind == "SyncBatchNorm" or converted is not None):  # torch: need_sync
            axis_name = _sync_axes(name, axis_names if kind == "SyncBatchNorm" else converted[0], context)
        rows = context if bn_training and context is not None and context.valid is not None else None
        out, new_mean, new_var = _batch_norm(name, input, state.get("running_mean"), state.get("running_var"),
                                             params.get("weight"), params.get("bias"), bn_training,
                                             momentum_now, eps, axis_name, rows, native)
        if training and track_running_stats:
            new_state["running_mean"], new_state["running_var"] = new_mean, new_var
        return out, new_state

    def layout_apply(params, state, value, layout, training):
        """`_layout.py`: BatchNorm2d on a "phase" or "cnhw" value, through its (A, C, B) view."""
        if (layout not in (PHASE, CNHW) or not isinstance(value, jax.Array)
                or value.dtype not in (jnp.float32, jnp.float64) or value.ndim != (6 if layout == PHASE else 4)
                or layout_channels(value, layout) != num_features
                or _REPLICA.get() is not None or _CONVERTED.get() is not None
                or any(not isinstance(a, jax.Array) or a.dtype != value.dtype or a.shape != (num_features,)
                       for a in (*params.values(), state.get("running_mean"), state.get("running_var"))
                       if a is not None)):
            return None
        out, new_state = run(params, state, channel_view(value, layout), training, _native(value, layout))
        return out.reshape(value.shape), layout, new_state

    if kind == "BatchNorm2d":
        apply._layout = layout_apply
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

    Parameters (with `affine`): per-channel `weight` (ones) and `bias` (zeros), shape (num_features,).
    State (with `track_running_stats`): `running_mean` (zeros), `running_var` (ones) and
    `num_batches_tracked` (0), torch's buffers; `apply` returns the updated state in training.

    Args:
      num_features: C, the channels at axis 1.
      eps: added to the variance (default 1e-5).
      momentum: the running statistics' update factor, running = (1 - momentum) running +
        momentum batch (default 0.1); None for the cumulative average (factor 1 / num_batches_tracked).
      affine: learn per-channel `weight` and (if `bias`) `bias` (default True).
      track_running_stats: keep the running statistics in `state`, update them in training and
        normalise with them in eval; else always use the batch's statistics (default True).
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' and running statistics' dtype (default float32).
      bias: keyword only: learn the additive `bias` too (default True; only with affine).

    Shape:
      {shape} -> the same shape; y = (x - mean) / sqrt(var + eps) * weight + bias per channel, with
      the mean and biased variance over every axis but C in training (the running variance is updated
      with the unbiased one), the running statistics in eval.

    Example:
      >>> bn = fl.{kind}(2)
      >>> params, state = bn.init(jax.random.PRNGKey(0))
      >>> x = jnp.array([[1.0, 2.0], [3.0, 6.0]]).reshape({x_shape})   # channel 0: 1, 3; channel 1: 2, 6
      >>> y, state = bn.apply(params, state, x, training=True)
      >>> jnp.round(y.reshape(2, 2), 4)   # (x - batch mean) / sqrt(biased batch var + eps)
      Array([[-1., -1.],
             [ 1.,  1.]], dtype=float32)
      >>> state["running_mean"], state["running_var"]   # 0.9 * (0, 1) + 0.1 * (batch mean, unbiased var)
      (Array([0.2, 0.4], dtype=float32), Array([1.1, 1.7], dtype=float32))
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


BatchNorm1d.__doc__ = _DOC.format(kind="BatchNorm1d", shape="(N, C) or (N, C, L)", x_shape=(2, 2))
BatchNorm2d.__doc__ = _DOC.format(kind="BatchNorm2d", shape="(N, C, H, W)", x_shape=(2, 2, 1, 1))
BatchNorm3d.__doc__ = _DOC.format(kind="BatchNorm3d", shape="(N, C, D, H, W)", x_shape=(2, 2, 1, 1, 1))


def SyncBatchNorm(num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                  track_running_stats: bool = True, process_group: str | tuple[str, ...] | None = None,
                  device: Any = None, dtype: Any = None, *, bias: bool = True) -> Layer:
    """Batch normalisation whose training statistics span a mapped axis; twin of torch.nn.SyncBatchNorm.

    Parameters and state: BatchNorm's.

    Args:
      num_features: C, the channels at axis 1.
      eps: added to the variance. Default: 1e-5.
      momentum: the running statistics' update factor, running = (1 - momentum) running +
        momentum batch; None for the cumulative average. Default: 0.1.
      affine: learn per-channel `weight` and (if `bias`) `bias`. Default: True.
      track_running_stats: keep the running statistics in `state`, update them in training and
        normalise with them in eval; else always use the batch's statistics. Default: True.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' and running statistics' dtype. Default: None (float32).
      bias: keyword only: learn the additive `bias` too (only with affine). Default: True.
      process_group: the mapped axis name (or a tuple of names) of `jax.pmap`, `shard_map` or
        `jax.vmap(..., axis_name=...)` to reduce over (the names not bound where the layer runs
        are skipped; none bound in training raises ValueError). None, torch's default group: the
        devices of the enclosing `fl.DataParallel` / `fl.DistributedDataParallel`, and exactly
        BatchNorm outside any wrapper (as torch's without an initialised process group).

    In training under the axis, the mean and variance are those of the whole global batch
    (each device's count, sum and squared deviations are `psum`-ed, so uneven per-device batches
    are right), and the running statistics are updated with them (the unbiased variance with the
    global count). Eval mode uses the running statistics, as in torch.

    Shape:
      (N, C, *) -> the same shape (at least 2 axes); the statistics per channel over every axis but C
      and over the replicas along `process_group` in training.

    Example:
      >>> bn = fl.SyncBatchNorm(2, process_group="batch")
      >>> params, state = bn.init(jax.random.PRNGKey(0))
      >>> step = jax.vmap(lambda x: bn.apply(params, state, x, training=True), axis_name="batch")
      >>> x = jnp.array([[[1.0, 2.0], [1.0, 2.0]], [[3.0, 6.0], [3.0, 6.0]]])   # 2 replicas of a (2, 2) batch
      >>> y, new_state = step(x)   # global mean (2, 4) and variance (1, 4); alone each replica's is 0
      >>> jnp.round(y[:, 0], 4), new_state["running_mean"][0]
      (Array([[-1., -1.],
             [ 1.,  1.]], dtype=float32), Array([0.2, 0.4], dtype=float32))
    """
    del device
    _group_names(process_group)  # checked at construction
    return _batch_norm_layer("SyncBatchNorm", num_features, eps, momentum, affine, track_running_stats, dtype,
                             bias, process_group)
