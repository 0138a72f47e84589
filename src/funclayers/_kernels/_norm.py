"""The normalisation kernels: torch's CPU algorithms with closed-form backward passes.

Used by: `InstanceNorm1d/2d/3d` and `F.instance_norm` (`standardize`); training-mode
`BatchNorm1d/2d/3d` and `F.batch_norm` (`_bn_train`); `GroupNorm` and `F.group_norm`
(`_group_norm_fused`); `CrossMapLRN2d` (`_cross_map_lrn2d`). LayerNorm has its own row kernel
(`_layernorm.py`).

Why: differentiating the textbook formulas step by step makes XLA on CPU materialise `xhat` and
`dy * weight` at full size in the backward pass. Each kernel here has a closed-form tangent whose
transpose is torch's fused backward formula (`standardize`: a `custom_jvp` JAX transposes itself;
BatchNorm, GroupNorm: the tangent and torch's backward paired by `_primitive.linear_call`, because
JAX's own transpose of the tangent is the slow form). Measured on the 2-core CPU
(`benchmarks/README.md`): the instance norms ~3x faster than autodiff of the formula; training
BatchNorm2d(32) on (64, 32, 32, 32) 0.24x of torch's step (differentiating the plain formula, or
transposing a closed-form JVP, ~3x slower); GroupNorm(8, 64) on (16, 64, 32, 32) 0.73-1.15x of
torch in the quiet records of 2026-12-07, the same compiled step each time (the machine's fast and
slow periods), 18-26% less wall time since (the generic JVP transposed ~2x slower).
CrossMapLRN2d reproduces torch's legacy Function, whose backward is not the derivative of its forward.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from ._primitive import linear_call

# ---------------------------------------------------------------------------------------------
# standardize: the instance norms (and SyncBatchNorm's per-device statistics)


def moments(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Mean and biased variance over `axes` (kept as size-1 dims), in one pass over `x`.

    Sums of `x - shift` and its square, with `shift` one sample of each slice: the classic
    shifted-data algorithm. Unlike E[x^2] - E[x]^2 it does not cancel catastrophically when the
    mean is large against the spread, so float64 stays within 1e-10 of torch's two-pass result.
    """
    count = math.prod(x.shape[a] for a in axes)
    shift = lax.stop_gradient(x[tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))])
    centred = x - shift
    s1 = jnp.sum(centred, axes, keepdims=True)
    s2 = jnp.sum(centred * centred, axes, keepdims=True)
    m1 = s1 / count
    var = jnp.maximum(s2 / count - m1 * m1, 0)
    return shift + m1, var


def standardize(x: jax.Array, axes: tuple[int, ...], eps: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`((x - mean) / sqrt(var + eps), mean, var)`, the statistics over `axes` with size-1 dims kept.

    Half and bfloat16 inputs are normalised in float32, as torch's CPU kernels do (the statistics
    come back in float32, the normalised values in the input's dtype).
    """
    if x.dtype in (jnp.float16, jnp.bfloat16):
        xhat, mean, var = _standardize(x.astype(jnp.float32), axes, eps)
        return xhat.astype(x.dtype), mean, var
    return _standardize(x, axes, eps)


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _standardize(x: jax.Array, axes: tuple[int, ...], eps: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    mean, var = moments(x, axes)
    return (x - mean) * lax.rsqrt(var + eps), mean, var


@_standardize.defjvp
def _standardize_jvp(axes, eps, primals, tangents):
    (x,), (dx,) = primals, tangents
    mean, var = moments(x, axes)
    inv_std = lax.rsqrt(var + eps)
    xhat = (x - mean) * inv_std
    mean_dx = jnp.mean(dx, axes, keepdims=True)
    mean_dx_xhat = jnp.mean(dx * xhat, axes, keepdims=True)
    # d xhat = inv_std * (dx - mean(dx) - xhat * mean(dx * xhat)); its transpose is torch's
    # closed-form backward dx = inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)).
    dxhat = inv_std * (dx - mean_dx - xhat * mean_dx_xhat)
    dvar = 2 * mean_dx_xhat / inv_std
    return (xhat, mean, var), (dxhat, mean_dx, dvar)


# Training-mode batch norm with torch's CPU algorithm and a closed-form backward pass.
# The forward is torch's batch_norm_cpu: two-pass statistics, then `x * alpha + beta` with
# alpha = weight * inv_std, beta = bias - mean * alpha; the backward is batch_norm_cpu_backward:
#   dx = weight * inv_std * (dy - mean(dy) - (x - mean) * inv_std^2 * mean(dy * (x - mean))).
# Written this way XLA fuses each step into one pass over x / dy and writes no full-size
# intermediate; differentiating the plain formula (or letting JAX transpose a closed-form JVP)
# instead materialises xhat and dy * weight and runs ~3x slower on CPU. So the tangent (the
# closed-form JVP, forward mode) and its transpose (torch's backward, reverse mode) are paired
# by `_kernels._primitive.linear_call`; both are plain JAX, so every higher order works too.


# The backward pass reads `(N, C, *S)` as `(N, C, d, prod(S)/d)` (`_split`; for odd
# spatial sizes `(d, N/d, C, prod(S))`, for odd batch and spatial sizes `(N, C, prod(S))`; a
# `_layout` value `(*A, C, *B)` likewise through `(prod(A), C, prod(B))`), so that its
# broadcasts of per-channel values and its `x - mean` have other shapes than the forward's: XLA's
# CSE would otherwise merge them, and XLA writes a broadcast or a difference that feeds two fusions
# out at full size and reads it back in each (here `x - mean`, shared by the variance and the input
# gradient, and `alpha`, shared by the output and the input gradient). BatchNorm2d(32) on
# (64, 32, 32, 32), forward + backward of the summed loss, one process, alternating, load 9:
# median CPU time per step 5.74 -> 4.26 ms, the same values bit for bit.
_SPLIT = 8


def _split(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The view of an `(N, C, *S)` array and the shape of a per-channel value broadcast against it.

    `(N, C, d, S/d)` with d = gcd(prod(S), 8) > 1; else `(d, N/d, C, S)` with d = gcd(N, 8) > 1 (odd
    spatial sizes, BatchNorm1d's `(N, C)`); else None (the caller then uses `(N, C, prod(S))`, for
    4-D and larger inputs still a shape the forward pass does not compute in).
    """
    n, c, rest = shape[0], shape[1], math.prod(shape[2:])
    d = math.gcd(rest, _SPLIT)
    if d > 1:
        return (n, c, d, rest // d), (1, c, 1, 1)
    d = math.gcd(n, _SPLIT)
    return ((d, n // d, c, rest), (1, 1, c, 1)) if d > 1 else None


def _bn_moments(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    count = math.prod(x.shape[a] for a in axes)
    mean = jnp.sum(x, axes, keepdims=True) / count
    centred = x - mean
    return mean, jnp.sum(centred * centred, axes, keepdims=True) / count


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _bn_train(x, weight, bias, axes, eps):
    mean, var = _bn_moments(x, axes)
    alpha = lax.rsqrt(var + eps) * weight
    return x * alpha + (bias - mean * alpha), mean, var


@partial(_bn_train.defjvp, symbolic_zeros=True)
def _bn_train_jvp(axes, eps, primals, tangents):
    x, weight, bias = primals
    tx, tw, tb = tangents
    mean, var = _bn_moments(x, axes)
    inv_std = lax.rsqrt(var + eps)
    alpha = inv_std * weight
    out = x * alpha + (bias - mean * alpha)
    count = math.prod(x.shape[a] for a in axes)

    def tangent(x, weight, mean, inv_std, tx, tw, tb):
        t = jnp.zeros(x.shape, x.dtype) if tb is None else jnp.broadcast_to(tb, x.shape)
        if tx is not None:
            mean_t = jnp.sum(tx, axes, keepdims=True) / count
            k = inv_std * inv_std * (jnp.sum(tx * x, axes, keepdims=True) / count - mean * mean_t)
            t = t + (weight * inv_std) * (tx - mean_t - (x - mean) * k)
        if tw is not None:
            t = t + (x - mean) * (inv_std * tw)
        return [t]

    def transpose(cts, x, weight, mean, inv_std):
        dy = cts[0]
        sum_dy = jnp.sum(dy, axes, keepdims=True)
        dot = jnp.sum(dy * x, axes, keepdims=True) - mean * sum_dy  # sum(dy * (x - mean))
        k = inv_std * inv_std * dot / count
        # the (A, C, B) view around the channel axis: (N, C, *S), or `_layout`'s phase / cnhw values
        c = next(a for a in range(x.ndim) if a not in axes)
        view = (math.prod(x.shape[:c]), x.shape[c], math.prod(x.shape[c + 1:]))
        spatial, channel = _split(view) or (view, (1, view[1], 1))

        def per_channel(value):
            return value.reshape(channel)

        dx = per_channel(weight * inv_std) * (dy.reshape(spatial) - per_channel(sum_dy / count)
                                              - (x.reshape(spatial) - per_channel(mean)) * per_channel(k))
        return [dx.reshape(x.shape), dot * inv_std, sum_dy]

    (t_out,) = linear_call(tangent, transpose, (x, weight, mean, inv_std), tangents, "batch_norm")
    if tx is None or type(tx) is SymbolicZero:
        t_mean, t_var = SymbolicZero.from_primal_value(mean), SymbolicZero.from_primal_value(var)
    else:  # the statistics leave through stop_gradient; their (plain) tangents for completeness
        t_mean = jnp.sum(tx, axes, keepdims=True) / count
        t_var = 2 * jnp.sum((x - mean) * tx, axes, keepdims=True) / count
    return (out, mean, var), (t_out, t_mean, t_var)


# GroupNorm with torch's CPU algorithm (group_norm_kernel / its backward): the forward is
# `x * alpha + beta` per (sample, channel), the backward one fused pass
# dx = weight * inv_std * dy + c2 * x + c3 with per-group c2, c3 from the per-channel sums of dy
# and dy * x. Letting JAX transpose the generic JVP materialises xhat and dy * weight and is ~2x
# slower, so the closed-form tangent and this backward are paired by `linear_call`.
# The output is computed on the caller's `(N, C, *S)` shape with `(N, C, 1, ...)` broadcasts, the
# backward on `(N, C, prod(S))`: the consumer (the loss's `sum(y * ct)`) reads y without a reshape
# inside its fusion (which cost YNNPACK's reduction ~26%, micro-benchmark), and XLA's CSE finds no
# broadcast of the forward's to share with the backward's dx (it wrote a shared one out at full
# size and read it back in both; the eleventh session's `(N, C, d, L/d)` views of the backward are
# not needed since). The bias gradient is summed from the backward's (N, C) sums of dy behind
# `optimization_barrier`: XLA otherwise folds `sum(sum(dy, -1), 0)` into a second full-size pass
# over dy. GroupNorm(8, 64) on (16, 64, 32, 32), the benchmark's step, same process, alternating,
# under SCHED_FIFO: wall median 1.25 -> 1.02 ms (CPU 2.31 -> 1.90) with both cores, 2.36 -> 1.74
# ms on one (issue 28, benchmarks/README.md).


def _group_stats(x, groups):
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, -1)
    mean = jnp.mean(grouped, -1)
    centred = grouped - mean[..., None]
    return mean, jnp.mean(centred * centred, -1)  # (N, G) each


def _per_channel(value, c):
    n, groups = value.shape
    return jnp.repeat(value, c // groups, axis=1)[..., None]  # (N, C, 1)


_BARRIER = lax.optimization_barrier


def _on_input(value: jax.Array, ndim: int) -> jax.Array:
    """A per-(sample, channel) `(N, C)` value shaped to broadcast against the `(N, C, *S)` input."""
    return value.reshape(value.shape + (1,) * (ndim - 2))


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _group_norm_fused(x, weight, bias, groups, eps):
    c = x.shape[1]
    mean, var = _group_stats(x, groups)
    alpha = _per_channel(lax.rsqrt(var + eps), c)[..., 0] * weight
    return x * _on_input(alpha, x.ndim) + _on_input(bias - _per_channel(mean, c)[..., 0] * alpha, x.ndim)


@partial(_group_norm_fused.defjvp, symbolic_zeros=True)
def _group_norm_jvp(groups, eps, primals, tangents):
    x, weight, bias = primals
    n, c = x.shape[:2]
    length = math.prod(x.shape[2:])
    mean, var = _group_stats(x, groups)
    inv_std = lax.rsqrt(var + eps)
    alpha = _per_channel(inv_std, c)[..., 0] * weight
    out = x * _on_input(alpha, x.ndim) + _on_input(bias - _per_channel(mean, c)[..., 0] * alpha, x.ndim)
    count = c // groups * length

    def tangent(x, weight, mean, inv_std, tx, tw, tb):
        shape, x = x.shape, x.reshape(n, c, length)
        t = jnp.zeros(x.shape, x.dtype) if tb is None else jnp.broadcast_to(tb[:, None], x.shape)
        xhat = (x - _per_channel(mean, c)) * _per_channel(inv_std, c)
        if tx is not None:
            g, xg = tx.reshape(n, groups, -1), xhat.reshape(n, groups, -1)
            tg = g - jnp.mean(g, -1, keepdims=True) - xg * jnp.mean(xg * g, -1, keepdims=True)
            t = t + tg.reshape(x.shape) * (_per_channel(inv_std, c) * weight[:, None])
        if tw is not None:
            t = t + xhat * tw[:, None]
        return [t.reshape(shape)]

    def transpose(cts, x, weight, mean, inv_std):
        shape, x = x.shape, x.reshape(n, c, length)
        dy = cts[0].reshape(n, c, length)
        ds = jnp.sum(dy * x, -1)  # (N, C)
        db = jnp.sum(dy, -1)
        sum_ds_w = jnp.sum((ds * weight).reshape(n, groups, -1), -1)  # (N, G)
        sum_db_w = jnp.sum((db * weight).reshape(n, groups, -1), -1)
        c2 = (sum_db_w * mean - sum_ds_w) * inv_std ** 3 / count
        c3 = -c2 * mean - sum_db_w * inv_std / count
        scale = _per_channel(inv_std, c) * weight[:, None]
        dx = (dy * scale + _per_channel(c2, c) * x + _per_channel(c3, c)).reshape(shape)
        mean_c, inv_std_c = _per_channel(mean, c)[..., 0], _per_channel(inv_std, c)[..., 0]
        d_weight = jnp.sum((ds - mean_c * db) * inv_std_c, 0)
        # d_bias from the (N, C) sums: XLA would otherwise fold sum(sum(dy, -1), 0) into a second
        # full-size pass over dy
        return [dx, d_weight, jnp.sum(_BARRIER(db), 0)]

    (t_out,) = linear_call(tangent, transpose, (x, weight, mean, inv_std), tangents, "group_norm")
    return out, t_out


# CrossMapLRN2d: torch's legacy autograd Function (torch/nn/modules/_functions.py). Its forward
# window never drops channel 0 once it has slid past it, and its hand-written backward is not the
# derivative of that forward (its window is shifted), so both are reproduced literally.


def _cross_map_windows(channels: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    pre_pad = int((size - 1) / 2 + 1)
    forward = np.zeros((channels, channels), np.float64)  # forward[c, j]: x[j]^2 enters scale[c]
    for c in range(channels):
        members = set(range(0, min(channels - 1, c + pre_pad - 1) + 1))
        if c > pre_pad:
            members = {0} | set(range(c - pre_pad + 1, min(channels - 1, c + pre_pad - 1) + 1))
        forward[c, sorted(members)] = 1
    inverse_pre_pad = int(size - (size - 1) / 2)
    backward = np.zeros((channels, channels), np.float64)  # backward[c, j]: ratio[j] enters accum[c]
    for c in range(channels):
        lo, hi = max(0, c - inverse_pre_pad), min(channels - 1, c + size - 1 - inverse_pre_pad)
        backward[c, lo:hi + 1] = 1
    return forward, backward


def _channel_mix(x: jax.Array, matrix: np.ndarray) -> jax.Array:
    return jnp.einsum("cj,njhw->nchw", jnp.asarray(matrix, x.dtype), x, precision=lax.Precision.HIGHEST)


@partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4))
def _cross_map_lrn2d(input, size, alpha, beta, k):
    forward, _ = _cross_map_windows(input.shape[1], size)
    scale = _channel_mix(input * input, forward) * (alpha / size) + k
    return input * scale ** -beta


@partial(_cross_map_lrn2d.defjvp, symbolic_zeros=True)
def _cross_map_lrn2d_jvp(size, alpha, beta, k, primals, tangents):
    # torch's backward (dx = scale^-beta dy - c * input * B(dy * output / scale)) is not the
    # derivative of its forward, so the tangent is chosen as its transpose:
    # t -> scale^-beta t - (output / scale) * B^T(c * input * t). Then jacfwd equals jacrev and
    # the gradient is torch's; torch itself has no forward-mode rule for this Function.
    (input,) = primals
    forward, backward = _cross_map_windows(input.shape[1], size)
    scale = _channel_mix(input * input, forward) * (alpha / size) + k
    output = input * scale ** -beta
    c = 2 * alpha * beta / size

    def tangent(input, output, scale, t):
        return [scale ** -beta * t - output / scale * _channel_mix(c * input * t, backward.T)]

    def transpose(cts, input, output, scale):
        grad_output = cts[0]
        accum = _channel_mix(grad_output * output / scale, backward)
        return [scale ** -beta * grad_output - c * input * accum]

    (t_out,) = linear_call(tangent, transpose, (input, output, scale), tangents, "cross_map_lrn2d")
    return output, t_out
