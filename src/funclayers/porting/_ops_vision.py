"""JAX twins of the functions torchvision wraps for torch.fx (they appear whole in traced graphs).

Keyed by qualified name (`torchvision.ops.stochastic_depth.stochastic_depth`) so that nothing here
imports torchvision. Shapes are static in JAX, so the Python on shapes in torchvision's code
(swin's padding and window masks) runs as is.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import functional as flF


def stochastic_depth(input, p, mode, training=True, *, rng=None):
    """torchvision.ops.stochastic_depth: zero whole rows (or the whole batch), rescale by 1 / (1 - p)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"stochastic_depth: drop probability has to be between 0 and 1, but got {p}")
    if mode not in ("batch", "row"):
        raise ValueError(f"stochastic_depth: mode has to be either 'batch' or 'row', but got {mode}")
    if not training or p == 0.0:
        return input
    if rng is None:
        raise ValueError("stochastic_depth (torchvision's StochasticDepth) draws random numbers in training mode; "
                         "pass rng= to apply.")
    survival_rate = 1.0 - p
    size = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = jax.random.bernoulli(rng, survival_rate, size).astype(input.dtype)
    if survival_rate > 0.0:
        noise = noise / survival_rate
    return input * noise


stochastic_depth.random = True


def _patch_merging_pad(x):
    """torchvision.models.swin_transformer._patch_merging_pad: pad H, W to even, gather 2x2 patches."""
    H, W, _ = x.shape[-3:]
    x = flF.pad(x, (0, 0, 0, W % 2, 0, H % 2))
    x0 = x[..., 0::2, 0::2, :]
    x1 = x[..., 1::2, 0::2, :]
    x2 = x[..., 0::2, 1::2, :]
    x3 = x[..., 1::2, 1::2, :]
    return jnp.concatenate([x0, x1, x2, x3], -1)


def _get_relative_position_bias(relative_position_bias_table, relative_position_index, window_size):
    n = window_size[0] * window_size[1]
    bias = relative_position_bias_table[relative_position_index].reshape(n, n, -1)
    return jnp.transpose(bias, (2, 0, 1))[None]


def _window_mask(pad_H, pad_W, window_size, shift_size, num_windows) -> np.ndarray:
    """Swin's attention mask of the shifted windows (static: built with numpy at trace time)."""
    mask = np.zeros((pad_H, pad_W))
    h_slices = ((0, -window_size[0]), (-window_size[0], -shift_size[0]), (-shift_size[0], None))
    w_slices = ((0, -window_size[1]), (-window_size[1], -shift_size[1]), (-shift_size[1], None))
    count = 0
    for h in h_slices:
        for w in w_slices:
            mask[h[0]:h[1], w[0]:w[1]] = count
            count += 1
    mask = mask.reshape(pad_H // window_size[0], window_size[0], pad_W // window_size[1], window_size[1])
    mask = mask.transpose(0, 2, 1, 3).reshape(num_windows, window_size[0] * window_size[1])
    mask = mask[:, None, :] - mask[:, :, None]
    return np.where(mask != 0, -100.0, 0.0)


def shifted_window_attention(input, qkv_weight, proj_weight, relative_position_bias, window_size, num_heads,
                             shift_size, attention_dropout=0.0, dropout=0.0, qkv_bias=None, proj_bias=None,
                             logit_scale=None, training=True, *, rng=None):
    """torchvision.models.swin_transformer.shifted_window_attention (Swin v1 and v2)."""
    B, H, W, C = input.shape
    pad_r = (window_size[1] - W % window_size[1]) % window_size[1]
    pad_b = (window_size[0] - H % window_size[0]) % window_size[0]
    x = flF.pad(input, (0, 0, 0, pad_r, 0, pad_b))
    _, pad_H, pad_W, _ = x.shape
    shift_size = list(shift_size)
    if window_size[0] >= pad_H:
        shift_size[0] = 0
    if window_size[1] >= pad_W:
        shift_size[1] = 0
    if sum(shift_size) > 0:
        x = jnp.roll(x, (-shift_size[0], -shift_size[1]), (1, 2))
    num_windows = (pad_H // window_size[0]) * (pad_W // window_size[1])
    x = x.reshape(B, pad_H // window_size[0], window_size[0], pad_W // window_size[1], window_size[1], C)
    x = jnp.transpose(x, (0, 1, 3, 2, 4, 5)).reshape(B * num_windows, window_size[0] * window_size[1], C)
    if logit_scale is not None and qkv_bias is not None:
        length = qkv_bias.shape[0] // 3
        qkv_bias = qkv_bias.at[length:2 * length].set(0)
    qkv = flF.linear(x, qkv_weight, qkv_bias)
    qkv = jnp.transpose(qkv.reshape(x.shape[0], x.shape[1], 3, num_heads, C // num_heads), (2, 0, 3, 1, 4))
    q, k, v = qkv[0], qkv[1], qkv[2]
    if logit_scale is not None:
        def normalize(t):
            return t / jnp.maximum(jnp.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
        attn = normalize(q) @ jnp.swapaxes(normalize(k), -2, -1)
        attn = attn * jnp.exp(jnp.minimum(logit_scale, np.log(100.0)))
    else:
        q = q * (C // num_heads) ** -0.5
        attn = q @ jnp.swapaxes(k, -2, -1)
    attn = attn + relative_position_bias
    if sum(shift_size) > 0:
        mask = jnp.asarray(_window_mask(pad_H, pad_W, window_size, shift_size, num_windows), attn.dtype)
        attn = attn.reshape(x.shape[0] // num_windows, num_windows, num_heads, x.shape[1], x.shape[1])
        attn = attn + mask[None, :, None]
        attn = attn.reshape(-1, num_heads, x.shape[1], x.shape[1])
    attn = jax.nn.softmax(attn, axis=-1)
    keys = [None, None] if rng is None else list(jax.random.split(rng))
    attn = flF.dropout(attn, attention_dropout, training, rng=keys[0])
    x = jnp.swapaxes(attn @ v, 1, 2).reshape(x.shape[0], x.shape[1], C)
    x = flF.linear(x, proj_weight, proj_bias)
    x = flF.dropout(x, dropout, training, rng=keys[1])
    x = x.reshape(B, pad_H // window_size[0], pad_W // window_size[1], window_size[0], window_size[1], C)
    x = jnp.transpose(x, (0, 1, 3, 2, 4, 5)).reshape(B, pad_H, pad_W, C)
    if sum(shift_size) > 0:
        x = jnp.roll(x, (shift_size[0], shift_size[1]), (1, 2))
    return x[:, :H, :W, :]


shifted_window_attention.random = True

_SWIN = "torchvision.models.swin_transformer"
BY_NAME: dict[str, Any] = {
    "torchvision.ops.stochastic_depth.stochastic_depth": stochastic_depth,
    f"{_SWIN}._patch_merging_pad": _patch_merging_pad,
    f"{_SWIN}._get_relative_position_bias": _get_relative_position_bias,
    f"{_SWIN}.shifted_window_attention": shifted_window_attention,
}

__all__ = ["BY_NAME"]
