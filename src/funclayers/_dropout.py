"""Dropout layers (torch.nn.modules.dropout): Dropout, Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout.

All follow torch's `_dropout_impl` (aten/src/ATen/native/Dropout.cpp): identity in eval mode, for
p == 0 and for empty inputs; `input * 0` for p == 1 (zeros, zero gradients); otherwise a Bernoulli(1 - p)
keep-mask, per element or per channel ("feature" variants: one draw per (N, C) slice), scaled by
1 / (1 - p), or, for the alpha variants, the affine map that keeps SELU's zero mean and unit variance.
Random draws come from the `rng` key passed to `apply` (required in training).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._layer import Layer, no_params
from ._utils import TorchRuntimeError, check_floating, check_probability, fmt_shape, require_rng

_SELU_SATURATION = 1.7580993408473766  # -SELU(-inf) = scale * alpha, torch's `alpha` in alpha dropout
Shape = tuple[int, ...]


# -- helpers ------------------------------------------------------------------------------------------


def _element_noise(who: str, shape: Shape) -> Shape:
    return shape


def _feature_noise(who: str, shape: Shape) -> Shape:
    """One draw per (N, C) slice: torch's make_feature_noise."""
    if len(shape) < 2:
        raise TorchRuntimeError(
            f"{who}: Feature dropout requires at least 2 dimensions in the input, got input of shape {shape}."
        )
    return shape[:2] + (1,) * (len(shape) - 2)


def _dropout_impl(
    who: str,
    input: Any,
    p: float,
    training: bool,
    rng: Any,
    noise_shape: Callable[[str, Shape], Shape],
    alpha: bool,
) -> jax.Array:
    x = jnp.asarray(input)
    if p == 0 or not training or x.size == 0:
        return x
    check_floating(who, x)
    if p == 1:
        return x * jnp.zeros((), x.dtype)  # torch multiplies, so NaN stays NaN and gradients are 0
    keep = jax.random.bernoulli(require_rng(who, rng), 1 - p, noise_shape(who, x.shape))
    noise = keep.astype(x.dtype)
    if not alpha:
        return x * (noise / (1 - p))
    a = 1.0 / math.sqrt((_SELU_SATURATION**2 * p + 1) * (1 - p))
    b = (noise - 1) * (_SELU_SATURATION * a) + _SELU_SATURATION * a * p
    return x * (noise * a) + b


def _unbatched(impl: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """torch's unsqueeze(0) / squeeze(0) around the batched op."""
    return impl(x[None])[0]


# -- the pure ops -------------------------------------------------------------------------------------


def dropout(
    input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *, rng: jax.Array | None = None
) -> jax.Array:
    """Zeroes each element with probability p and scales the rest by 1 / (1 - p); F.dropout.

    Args:
      input: the input array, floating, any shape.
      p: the probability of zeroing an element, in [0, 1], default 0.5.
      training: apply dropout (True) or return the input unchanged (False); default True.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.
      rng: a PRNG key (keyword-only) for the random draws; required when training and 0 < p < 1. Default: None.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y = F.dropout(jnp.ones(8), 0.5, rng=jax.random.PRNGKey(0))   # training=True by default
      >>> bool(jnp.all((y == 0) | (y == 2)))   # kept elements scaled by 1 / (1 - p)
      True
    """
    del inplace
    check_probability("dropout", p)
    return _dropout_impl("dropout", input, p, training, rng, _element_noise, False)


def alpha_dropout(
    input: Any, p: float = 0.5, training: bool = False, inplace: bool = False, *, rng: jax.Array | None = None
) -> jax.Array:
    """Dropout for SELU networks: dropped elements go to SELU's saturation, then an affine map keeps
    the mean and variance; F.alpha_dropout.

    Args:
      input: the input array, floating, any shape.
      p: the probability of dropping an element, in [0, 1], default 0.5.
      training: apply dropout (True) or return the input unchanged (False); default False.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.
      rng: a PRNG key (keyword-only) for the random draws; required when training and 0 < p < 1. Default: None.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y = F.alpha_dropout(jnp.ones(64), 0.2, training=True, rng=jax.random.PRNGKey(0))
      >>> y.shape, int(jnp.unique(y).size)   # two levels: the kept and the dropped elements
      ((64,), 2)
    """
    del inplace
    check_probability("alpha_dropout", p)
    return _dropout_impl("alpha_dropout", input, p, training, rng, _element_noise, True)


def feature_alpha_dropout(
    input: Any, p: float = 0.5, training: bool = False, inplace: bool = False, *, rng: jax.Array | None = None
) -> jax.Array:
    """Alpha dropout of whole channels (one draw per (N, C) slice); F.feature_alpha_dropout.

    Args:
      input: the input array, floating, `(N, C, *)` (at least 2-D in training).
      p: the probability of dropping a channel, in [0, 1], default 0.5.
      training: apply dropout (True) or return the input unchanged (False); default False.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.
      rng: a PRNG key (keyword-only) for the random draws; required when training and 0 < p < 1. Default: None.

    Shape:
      `(N, C, *)` -> `(N, C, *)`, same shape.

    Example:
      >>> y = F.feature_alpha_dropout(jnp.ones((2, 4, 3)), 0.5, training=True, rng=jax.random.PRNGKey(0))
      >>> y.shape, bool(jnp.all(y == y[..., :1]))   # each (n, c) slice is kept or dropped whole
      ((2, 4, 3), True)
    """
    del inplace
    check_probability("feature_alpha_dropout", p)
    return _dropout_impl("feature_alpha_dropout", input, p, training, rng, _feature_noise, True)


def _dropout1d(who: str, input: Any, p: float, training: bool, rng: Any) -> jax.Array:
    shape = fmt_shape(input)
    if len(shape) not in (2, 3):
        raise TorchRuntimeError(
            f"{who}: Expected 2D or 3D input, but received a {len(shape)}D input of shape {shape}. "
            f"Note that dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
            f"dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D "
            f"inputs)."
        )

    def impl(x):
        return _dropout_impl(who, x, p, training, rng, _feature_noise, False)

    x = jnp.asarray(input)
    return impl(x) if x.ndim == 3 else _unbatched(impl, x)


def dropout1d(
    input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *, rng: jax.Array | None = None
) -> jax.Array:
    """Zeroes whole channels of (N, C, L) or (C, L) input; F.dropout1d.

    Args:
      input: the input array, floating, (N, C, L) or (C, L).
      p: the probability of zeroing a channel, in [0, 1], default 0.5.
      training: apply dropout (True) or return the input unchanged (False); default True.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.
      rng: a PRNG key (keyword-only) for the random draws; required when training and 0 < p < 1. Default: None.

    Shape:
      (N, C, L) or (C, L) -> same shape.

    Example:
      >>> y = F.dropout1d(jnp.ones((2, 4, 3)), 0.5, training=True, rng=jax.random.PRNGKey(0))
      >>> y.shape, bool(jnp.all(y == y[..., :1]))   # each channel is zeroed or scaled by 2 whole
      ((2, 4, 3), True)
    """
    del inplace
    check_probability("dropout1d", p)
    return _dropout1d("dropout1d", input, p, training, rng)


def _warn_rank(who: str, ndim: int, spatial: int) -> None:
    if ndim not in (spatial + 1, spatial + 2):
        warnings.warn(
            f"{who}: Received a {ndim}-D input to dropout{spatial}d, which is deprecated and will result "
            f"in an error in a future release. To retain the behavior and silence this warning, please use "
            f"dropout instead. Note that dropout{spatial}d exists to provide channel-wise dropout on inputs "
            f"with {spatial} spatial dimensions, a channel dimension, and an optional batch dimension (i.e. "
            f"{spatial + 1}D or {spatial + 2}D inputs).",
            UserWarning,
            stacklevel=4,
        )


def _dropout2d(who: str, input: Any, p: float, training: bool, rng: Any) -> jax.Array:
    ndim = len(fmt_shape(input))
    _warn_rank(who, ndim, 2)
    if ndim == 3:
        # torch 2.13 still reads 3-D input as (N, C, L), not as an unbatched (C, H, W) image
        # (pytorch/pytorch#77081), and warns; we keep that behaviour and the warning.
        warnings.warn(
            f"{who}: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior "
            f"is desired - input is interpreted as shape (N, C, L), where C is the channel dim. This "
            f"behavior will change in a future release to interpret the input as one without a batch "
            f"dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, please "
            f"switch to using dropout1d instead.",
            UserWarning,
            stacklevel=3,
        )
    return _dropout_impl(who, input, p, training, rng, _feature_noise, False)


def dropout2d(
    input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *, rng: jax.Array | None = None
) -> jax.Array:
    """Zeroes whole channels of (N, C, H, W) input; F.dropout2d.

    As in torch 2.13, a 3-D input is read as (N, C, L) (one draw per (N, C) row), with torch's warning.

    Args:
      input: the input array, floating, (N, C, H, W).
      p: the probability of zeroing a channel, in [0, 1], default 0.5.
      training: apply dropout (True) or return the input unchanged (False); default True.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.
      rng: a PRNG key (keyword-only) for the random draws; required when training and 0 < p < 1. Default: None.

    Shape:
      (N, C, H, W) -> same shape (3-D: (N, C, L), see above).

    Example:
      >>> y = F.dropout2d(jnp.ones((2, 4, 3, 3)), 0.5, training=True, rng=jax.random.PRNGKey(0))
      >>> y.shape, bool(jnp.all(y == y[..., :1, :1]))   # each channel is zeroed or scaled by 2 whole
      ((2, 4, 3, 3), True)
    """
    del inplace
    check_probability("dropout2d", p)
    return _dropout2d("dropout2d", input, p, training, rng)


def _dropout3d(who: str, input: Any, p: float, training: bool, rng: Any) -> jax.Array:
    x = jnp.asarray(input)
    _warn_rank(who, x.ndim, 3)

    def impl(x):
        return _dropout_impl(who, x, p, training, rng, _feature_noise, False)

    return impl(x) if x.ndim == 5 else _unbatched(impl, x)  # torch unsqueezes every non-5-D input


def dropout3d(
    input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *, rng: jax.Array | None = None
) -> jax.Array:
    """Zeroes whole channels of (N, C, D, H, W) or (C, D, H, W) input; F.dropout3d.

    Args:
      input: the input array, floating, (N, C, D, H, W) or (C, D, H, W).
      p: the probability of zeroing a channel, in [0, 1], default 0.5.
      training: apply dropout (True) or return the input unchanged (False); default True.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.
      rng: a PRNG key (keyword-only) for the random draws; required when training and 0 < p < 1. Default: None.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> same shape.

    Example:
      >>> y = F.dropout3d(jnp.ones((2, 4, 2, 2, 2)), 0.5, training=True, rng=jax.random.PRNGKey(0))
      >>> y.shape, bool(jnp.all(y == y[..., :1, :1, :1]))   # each channel is zeroed or scaled by 2 whole
      ((2, 4, 2, 2, 2), True)
    """
    del inplace
    check_probability("dropout3d", p)
    return _dropout3d("dropout3d", input, p, training, rng)


# -- the layers ---------------------------------------------------------------------------------------


def _dropout_layer(kind: str, p: float, inplace: bool, op: Callable[..., jax.Array]) -> Layer:
    name = f"{kind}(p={p}, inplace={inplace})"
    check_probability(kind, p)

    def apply(params, state, input, *, rng=None, training=False):
        del params
        return op(name, input, p, training, rng), state

    return Layer(no_params, apply, name)


def Dropout(p: float = 0.5, inplace: bool = False) -> Layer:
    """In training, zeroes each element with probability p and scales the rest by 1 / (1 - p);
    identity in eval. torch.nn.Dropout.

    Random in training only: pass `rng=key` and `training=True` to `apply` (the key is required then, for
    0 < p < 1); in eval (`training=False`, the default) the layer is the identity.

    Args:
      p: the probability of zeroing an element, in [0, 1], default 0.5.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> layer, x = fl.Dropout(0.5), jnp.ones(8)
      >>> y, _ = layer.apply({}, {}, x, rng=jax.random.PRNGKey(0), training=True)
      >>> bool(jnp.all((y == 0) | (y == 2)))   # kept elements scaled by 1 / (1 - p)
      True
      >>> bool(jnp.all(layer.apply({}, {}, x)[0] == x))   # eval: the identity
      True
    """
    return _dropout_layer(
        "Dropout",
        p,
        inplace,
        lambda who, x, p, training, rng: _dropout_impl(who, x, p, training, rng, _element_noise, False),
    )


def Dropout1d(p: float = 0.5, inplace: bool = False) -> Layer:
    """Zeroes whole channels (1-D feature maps) in training; torch.nn.Dropout1d.

    Random in training only: pass `rng=key` and `training=True` to `apply` (the key is required then, for
    0 < p < 1); in eval (`training=False`, the default) the layer is the identity.

    Args:
      p: the probability of zeroing a channel, in [0, 1], default 0.5.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      (N, C, L) or (C, L) -> same shape.

    Example:
      >>> y, _ = fl.Dropout1d(0.5).apply({}, {}, jnp.ones((2, 4, 3)), rng=key, training=True)
      >>> y.shape, bool(jnp.all(y == y[..., :1]))   # each channel is zeroed or scaled by 2 whole
      ((2, 4, 3), True)
    """
    return _dropout_layer("Dropout1d", p, inplace, _dropout1d)


def Dropout2d(p: float = 0.5, inplace: bool = False) -> Layer:
    """Zeroes whole channels (2-D feature maps) in training; torch.nn.Dropout2d.

    Random in training only: pass `rng=key` and `training=True` to `apply` (the key is required then, for
    0 < p < 1); in eval (`training=False`, the default) the layer is the identity.

    Args:
      p: the probability of zeroing a channel, in [0, 1], default 0.5.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      (N, C, H, W) -> same shape. As in torch 2.13, a 3-D input is read as (N, C, L) with a
      warning (use Dropout1d for that, or add the batch dimension to an unbatched image).

    Example:
      >>> y, _ = fl.Dropout2d(0.5).apply({}, {}, jnp.ones((2, 4, 3, 3)), rng=key, training=True)
      >>> y.shape, bool(jnp.all(y == y[..., :1, :1]))   # each channel is zeroed or scaled by 2 whole
      ((2, 4, 3, 3), True)
    """
    return _dropout_layer("Dropout2d", p, inplace, _dropout2d)


def Dropout3d(p: float = 0.5, inplace: bool = False) -> Layer:
    """Zeroes whole channels (3-D feature maps) in training; torch.nn.Dropout3d.

    Random in training only: pass `rng=key` and `training=True` to `apply` (the key is required then, for
    0 < p < 1); in eval (`training=False`, the default) the layer is the identity.

    Args:
      p: the probability of zeroing a channel, in [0, 1], default 0.5.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      (N, C, D, H, W) or (C, D, H, W) -> same shape.

    Example:
      >>> y, _ = fl.Dropout3d(0.5).apply({}, {}, jnp.ones((2, 4, 2, 2, 2)), rng=key, training=True)
      >>> y.shape, bool(jnp.all(y == y[..., :1, :1, :1]))   # each channel is zeroed or scaled by 2 whole
      ((2, 4, 2, 2, 2), True)
    """
    return _dropout_layer("Dropout3d", p, inplace, _dropout3d)


def AlphaDropout(p: float = 0.5, inplace: bool = False) -> Layer:
    """Dropout that keeps SELU's self-normalisation: dropped elements go to the negative saturation
    value and an affine map restores zero mean and unit variance; torch.nn.AlphaDropout.

    Random in training only: pass `rng=key` and `training=True` to `apply` (the key is required then, for
    0 < p < 1); in eval (`training=False`, the default) the layer is the identity.

    Args:
      p: the probability of dropping an element, in [0, 1], default 0.5.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(*)` -> `(*)`, same shape.

    Example:
      >>> y, _ = fl.AlphaDropout(0.2).apply({}, {}, jnp.ones(64), rng=key, training=True)
      >>> y.shape, int(jnp.unique(y).size)   # two levels: the kept and the dropped elements
      ((64,), 2)
    """
    return _dropout_layer(
        "AlphaDropout",
        p,
        inplace,
        lambda who, x, p, training, rng: _dropout_impl(who, x, p, training, rng, _element_noise, True),
    )


def FeatureAlphaDropout(p: float = 0.5, inplace: bool = False) -> Layer:
    """Alpha dropout of whole channels (one draw per (N, C) slice); torch.nn.FeatureAlphaDropout.

    Random in training only: pass `rng=key` and `training=True` to `apply` (the key is required then, for
    0 < p < 1); in eval (`training=False`, the default) the layer is the identity.

    Args:
      p: the probability of dropping a channel, in [0, 1], default 0.5.
      inplace: accepted for torch's signature; no effect (JAX arrays are immutable). Default: False.

    Shape:
      `(N, C, *)` -> same shape (at least 2-D in training).

    Example:
      >>> y, _ = fl.FeatureAlphaDropout(0.5).apply({}, {}, jnp.ones((2, 4, 3)), rng=key, training=True)
      >>> y.shape, bool(jnp.all(y == y[..., :1]))   # each (n, c) slice is kept or dropped whole
      ((2, 4, 3), True)
    """
    return _dropout_layer(
        "FeatureAlphaDropout",
        p,
        inplace,
        lambda who, x, p, training, rng: _dropout_impl(who, x, p, training, rng, _feature_noise, True),
    )


__all__ = [
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
    "dropout",
    "alpha_dropout",
    "feature_alpha_dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
]
