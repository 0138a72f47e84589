"""Attention (torch.nn.modules.activation's MultiheadAttention, torch.nn.functional's attention ops).

torch keeps `MultiheadAttention` in `activation.py`; ours lives here, in its own family module,
because `_activation.py` is already split (piecewise activations there, smooth ones in
`_activation_smooth.py`, softmax in `_softmax.py`) and attention shares nothing with those files
but its torch home: it has its own kernels (dense and blockwise softmax attention), its own mask
rules and its own parameters. `_transformer.py` builds the Transformer family on it.

`scaled_dot_product_attention` and its kernels are in `_sdpa.py`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from . import init as _init
from ._layer import Layer
from ._linear import _linear
from ._sdpa import (
    _PRECISION,
    _attend,
    _canonical_mask,
    _dropout_weights,
    scaled_dot_product_attention,
)
from ._softmax import _softmax_along
from ._utils import (
    TorchRuntimeError,
    check_floating,
    fmt_shape,
    param_dtype,
    require_rng,
)


def _mha_shape_check(who, query, key, value, key_padding_mask, attn_mask, num_heads) -> bool:
    """torch's F._mha_shape_check: whether the input is batched; its errors as ValueError."""
    qd, kd, vd = (len(fmt_shape(x)) for x in (query, key, value))
    kpm_d = None if key_padding_mask is None else len(fmt_shape(key_padding_mask))
    mask_d = None if attn_mask is None else len(fmt_shape(attn_mask))
    if qd == 3:
        if kd != 3 or vd != 3:
            raise ValueError(f"{who}: For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                             f"{kd}-D and {vd}-D tensors respectively")
        if kpm_d not in (None, 2):
            raise ValueError(f"{who}: For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D "
                             f"(N, S) but found {kpm_d}-D tensor instead")
        if mask_d not in (None, 2, 3):
            raise ValueError(f"{who}: For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                             f"but found {mask_d}-D tensor instead")
        return True
    if qd == 2:
        if kd != 2 or vd != 2:
            raise ValueError(f"{who}: For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                             f"{kd}-D and {vd}-D tensors respectively")
        if kpm_d not in (None, 1):
            raise ValueError(f"{who}: For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or "
                             f"1-D (S,) but found {kpm_d}-D tensor instead")
        if mask_d not in (None, 2, 3):
            raise ValueError(f"{who}: For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                             f"but found {mask_d}-D tensor instead")
        if mask_d == 3:
            expected = (num_heads, fmt_shape(query)[0], fmt_shape(key)[0])
            if fmt_shape(attn_mask) != expected:
                raise ValueError(f"{who}: Expected `attn_mask` shape to be {expected} but got "
                                 f"{fmt_shape(attn_mask)}")
        return False
    raise ValueError(f"{who}: query should be unbatched 2D or batched 3D tensor but received {qd}-D query tensor "
                     f"of shape {fmt_shape(query)}")


def _in_projection(who, query, key, value, in_proj_weight, in_proj_bias, q_w, k_w, v_w, separate):
    """torch's _in_projection_packed / _in_projection: q, k, v projected by the packed or separate weights."""
    if not separate:
        if in_proj_weight is None:
            raise ValueError(f"{who}: use_separate_proj_weight is False but in_proj_weight is None")
        e = query.shape[-1]
        if query is key and key is value:  # self-attention: one matmul, as torch's packed projection
            proj = _linear(who, query, in_proj_weight, in_proj_bias)
            return proj[..., :e], proj[..., e:2 * e], proj[..., 2 * e:]
        q_w, k_w, v_w = in_proj_weight[:e], in_proj_weight[e:2 * e], in_proj_weight[2 * e:]
    elif q_w is None or k_w is None or v_w is None:
        raise ValueError(f"{who}: use_separate_proj_weight is True but q_proj_weight, k_proj_weight or "
                         f"v_proj_weight is None")
    if in_proj_bias is None:
        b_q = b_k = b_v = None
    else:
        e = in_proj_bias.shape[0] // 3
        b_q, b_k, b_v = in_proj_bias[:e], in_proj_bias[e:2 * e], in_proj_bias[2 * e:]
    return _linear(who, query, q_w, b_q), _linear(who, key, k_w, b_k), _linear(who, value, v_w, b_v)


def _static(who: str, name: str, x: Any, bsz: int, num_heads: int, head_dim: int, dtype: Any) -> jax.Array:
    """torch's (N * num_heads, S, head_dim) static keys or values, as (N, num_heads, S, head_dim)."""
    x = jnp.asarray(x, dtype)
    if x.ndim != 3 or x.shape[0] != bsz * num_heads or x.shape[2] != head_dim:
        raise ValueError(f"{who}: expecting {name} of shape ({bsz * num_heads}, S, {head_dim}) (N * num_heads, S, "
                         f"head_dim), but got {fmt_shape(x)}.")
    return x.reshape(bsz, num_heads, x.shape[1], head_dim)


def multi_head_attention_forward(
    query: Any, key: Any, value: Any, embed_dim_to_check: int, num_heads: int, in_proj_weight: Any,
    in_proj_bias: Any, bias_k: Any, bias_v: Any, add_zero_attn: bool, dropout_p: float, out_proj_weight: Any,
    out_proj_bias: Any, training: bool = True, key_padding_mask: Any = None, need_weights: bool = True,
    attn_mask: Any = None, use_separate_proj_weight: bool = False, q_proj_weight: Any = None,
    k_proj_weight: Any = None, v_proj_weight: Any = None, static_k: Any = None, static_v: Any = None,
    average_attn_weights: bool = True, is_causal: bool = False, *, rng: jax.Array | None = None,
    _who: str = "multi_head_attention_forward",
) -> tuple[jax.Array, jax.Array | None]:
    """Multi-head attention in torch's (L, N, E) layout; torch.nn.functional.multi_head_attention_forward.

    Args:
      query: the queries, (L, N, E), or (L, E) unbatched.
      key: the keys, (S, N, E_k), or (S, E_k) unbatched.
      value: the values, (S, N, E_v), or (S, E_v) unbatched.
      embed_dim_to_check: E, checked against the query's last dimension.
      num_heads: H, the number of heads; each gets E // H features.
      in_proj_weight: the packed q, k, v projection (3E, E) (None with use_separate_proj_weight).
      in_proj_bias: its bias (3E,), or None.
      bias_k: a (1, 1, E) bias appended to the keys as one more position, or None.
      bias_v: a (1, 1, E) bias appended to the values as one more position, or None.
      add_zero_attn: append a zero position to the keys and values (after bias_k, bias_v).
      dropout_p: dropout probability on the attention weights.
      training: apply that dropout (default True, as torch's).
      out_proj_weight: the output projection (E, E).
      out_proj_bias: its bias (E,), or None.
      key_padding_mask: (N, S) ((S,) unbatched), bool (True = ignore that key) or float (added). Default: None.
      need_weights: also return the attention weights. Default: True.
      attn_mask: (L, S) or (N * H, L, S), bool (True = not attended) or float (added). Default: None.
      use_separate_proj_weight: project with the separate q_proj_weight, k_proj_weight and
        v_proj_weight instead of in_proj_weight (as when kdim, vdim != E). Default: False.
      q_proj_weight: the (E, E) query projection, with use_separate_proj_weight. Default: None.
      k_proj_weight: the (E, E_k) key projection, with use_separate_proj_weight. Default: None.
      v_proj_weight: the (E, E_v) value projection, with use_separate_proj_weight. Default: None.
      static_k: keys replacing the projected ones (below). Default: None.
      static_v: values replacing the projected ones (below). Default: None.
      average_attn_weights: average the returned weights over the heads. Default: True.
      is_causal: torch's hint that attn_mask is the causal mask (attn_mask is still required). Default: False.
      rng: the dropout key, when `training` and `dropout_p > 0`. Default: None.
      _who: internal: the name its errors report (the layer's, when MultiheadAttention calls it).
        Default: 'multi_head_attention_forward'.

    With `need_weights` the weights are computed densely and returned (a query whose every key is
    masked gets NaN, as torch's softmax gives); without, the attention runs through
    `scaled_dot_product_attention` (such a query gets 0, as torch's SDPA gives).

    `static_k` / `static_v`, (N * num_heads, S', head_dim), replace the projected keys and values
    (after `bias_k` / `bias_v`, before `add_zero_attn`), as torch's do.

    Shape: query (L, N, E) or (L, E); key (S, N, E_k); value (S, N, E_v) -> (attn_output (L, N, E),
      attn_weights (N, L, S), or (N, num_heads, L, S) with `average_attn_weights=False`, or None).

    Example:
      >>> p, x = fl.MultiheadAttention(8, 2).init(jax.random.PRNGKey(0))[0], jnp.ones((3, 1, 8))  # x: (L, N, E)
      >>> out, weights = F.multi_head_attention_forward(
      ...     x, x, x, 8, 2, p["in_proj_weight"], p["in_proj_bias"], None, None, False, 0.0,
      ...     p["out_proj"]["weight"], p["out_proj"]["bias"], training=False)
      >>> out.shape, weights[0, 0]                  # identical keys: every query attends uniformly
      ((3, 1, 8), Array([0.33333334, 0.33333334, 0.33333334], dtype=float32))
    """
    who = _who
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_floating(who, x, name)
    is_batched = _mha_shape_check(who, query, key, value, key_padding_mask, attn_mask, num_heads)
    same_kv, same_qk = key is value, query is key
    query, key, value = (jnp.asarray(x) for x in (query, key, value))
    if same_kv:
        value = key
        if same_qk:
            query = key
    if not is_batched:
        query, key, value = query[:, None], key[:, None], value[:, None]
        if same_kv:
            value = key
            if same_qk:
                query = key
        if key_padding_mask is not None:
            key_padding_mask = jnp.asarray(key_padding_mask)[None]
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    dtype = query.dtype
    key_padding_mask = _canonical_mask(who, key_padding_mask, "key_padding_mask", attn_mask, "attn_mask", dtype)
    if is_causal and attn_mask is None:
        raise TorchRuntimeError(f"{who}: Need attn_mask if specifying the is_causal hint. You may use the "
                                f"Transformer module method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the hint stands for the mask: SDPA's causal path
    else:
        attn_mask = _canonical_mask(who, attn_mask, "attn_mask", None, "", dtype, check_other=False)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise ValueError(f"{who}: was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim} "
                         f"(query of shape {fmt_shape(query)}).")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ValueError(f"{who}: embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if key.shape[:2] != value.shape[:2]:
            raise ValueError(f"{who}: key's sequence and batch dims {key.shape[:2]} do not match value's "
                             f"{value.shape[:2]}")
    elif key.shape != value.shape:
        raise ValueError(f"{who}: key shape {key.shape} does not match value shape {value.shape}")
    # no cast: the projections raise, as torch's, where the parameters' dtype is not the query's
    params = [None if a is None else jnp.asarray(a) for a in
              (in_proj_weight, in_proj_bias, bias_k, bias_v, out_proj_weight, out_proj_bias,
               q_proj_weight, k_proj_weight, v_proj_weight)]
    in_w, in_b, bias_k, bias_v, out_w, out_b, q_w, k_w, v_w = params
    q, k, v = _in_projection(who, query, key, value, in_w, in_b, q_w, k_w, v_w, use_separate_proj_weight)

    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if attn_mask.shape != (tgt_len, src_len):
                raise TorchRuntimeError(f"{who}: The shape of the 2D attn_mask is {attn_mask.shape}, but should be "
                                        f"{(tgt_len, src_len)}.")
            attn_mask = attn_mask[None]
        elif attn_mask.shape != (bsz * num_heads, tgt_len, src_len):
            raise TorchRuntimeError(f"{who}: The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                                    f"{(bsz * num_heads, tgt_len, src_len)}.")
    if (bias_k is None) != (bias_v is None):
        raise ValueError(f"{who}: bias_k and bias_v must both be set or both be None.")
    if bias_k is not None:
        k = jnp.concatenate([k, jnp.broadcast_to(bias_k.reshape(1, 1, -1), (1, bsz, embed_dim))])
        v = jnp.concatenate([v, jnp.broadcast_to(bias_v.reshape(1, 1, -1), (1, bsz, embed_dim))])
        attn_mask = None if attn_mask is None else jnp.pad(attn_mask, ((0, 0), (0, 0), (0, 1)))
        key_padding_mask = None if key_padding_mask is None else jnp.pad(key_padding_mask, ((0, 0), (0, 1)))

    # (len, N, H * hd) -> (N, H, len, hd)
    q = q.reshape(tgt_len, bsz, num_heads, head_dim).transpose(1, 2, 0, 3)
    k = k.reshape(k.shape[0], bsz, num_heads, head_dim).transpose(1, 2, 0, 3)
    v = v.reshape(v.shape[0], bsz, num_heads, head_dim).transpose(1, 2, 0, 3)
    k = k if static_k is None else _static(who, "static_k", static_k, bsz, num_heads, head_dim, dtype)
    v = v if static_v is None else _static(who, "static_v", static_v, bsz, num_heads, head_dim, dtype)
    if add_zero_attn:
        k = jnp.pad(k, ((0, 0), (0, 0), (0, 1), (0, 0)))
        v = jnp.pad(v, ((0, 0), (0, 0), (0, 1), (0, 0)))
        attn_mask = None if attn_mask is None else jnp.pad(attn_mask, ((0, 0), (0, 0), (0, 1)))
        key_padding_mask = None if key_padding_mask is None else jnp.pad(key_padding_mask, ((0, 0), (0, 1)))
    src_len = k.shape[2]

    if key_padding_mask is not None:
        if key_padding_mask.shape != (bsz, src_len):
            raise ValueError(f"{who}: Expected key_padding_mask of shape {(bsz, src_len)} (N, S), but got "
                             f"{key_padding_mask.shape}")
        kpm = key_padding_mask[:, None, None, :]  # (N, 1, 1, S)
        if attn_mask is None:
            mask4 = kpm
        else:
            mask4 = attn_mask.reshape(-1, 1 if attn_mask.shape[0] == 1 else num_heads, tgt_len, src_len) + kpm
    else:
        mask4 = None if attn_mask is None else attn_mask.reshape(
            -1, 1 if attn_mask.shape[0] == 1 else num_heads, tgt_len, src_len)
    if not training:
        dropout_p = 0.0
    if dropout_p > 0:
        require_rng(who, rng)

    if need_weights:
        q_scaled = q * jnp.asarray(math.sqrt(1.0 / head_dim), dtype)
        scores = jnp.einsum("nhle,nhse->nhls", q_scaled, k, precision=_PRECISION)
        if mask4 is not None:
            scores = scores + mask4
        weights = _softmax_along(scores, 3)  # NaN for a fully masked row, as torch's softmax
        if dropout_p > 0:
            weights = _dropout_weights(weights, dropout_p, rng)
        out = jnp.einsum("nhls,nhse->nhle", weights, v, precision=_PRECISION)
        if average_attn_weights:
            weights = jnp.mean(weights, axis=1)
    else:
        out = _attend(q, k, v, mask4, bool(is_causal), 1.0 / math.sqrt(head_dim), float(dropout_p), rng)
        weights = None
    out = out.transpose(2, 0, 1, 3).reshape(tgt_len, bsz, embed_dim)
    out = _linear(who, out, out_w, out_b)
    if not is_batched:
        out = out[:, 0]
        weights = None if weights is None else weights[0]
    return out, weights


# -- the layer -----------------------------------------------------------------------------------------


def MultiheadAttention(embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                       add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                       vdim: int | None = None, batch_first: bool = False, device: Any = None,
                       dtype: Any = None) -> Layer:
    """Multi-head attention; torch.nn.MultiheadAttention.

    Args:
      embed_dim: E, the query's (and output's) feature size.
      num_heads: H, the number of heads; each gets E // H features (H must divide E).
      dropout: dropout probability on the attention weights in training (needs `rng`); default 0.
      bias: learn in_proj_bias and out_proj.bias; default True.
      add_bias_kv: learn bias_k, bias_v, appended to the keys and values as one more position. Default: False.
      add_zero_attn: append a zero position to the keys and values too. Default: False.
      kdim: total number of features for keys. Default: None (uses kdim=embed_dim).
      vdim: total number of features for values. Default: None (uses vdim=embed_dim).
      batch_first: inputs and output are (N, L, E) instead of (L, N, E). Default: False.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Params (torch's names and init): `in_proj_weight` (3E, E) xavier-uniform, or `q_proj_weight` (E, E),
    `k_proj_weight` (E, kdim), `v_proj_weight` (E, vdim) when kdim / vdim differ from E; `in_proj_bias`
    (3E,) zeros; `bias_k`, `bias_v` (1, 1, E) xavier-normal with `add_bias_kv`; `out_proj.weight`
    (E, E) (Linear's init), `out_proj.bias` zeros.

    Forward: `apply(params, state, query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False, *, rng=None, training=False)`,
    returning `((attn_output, attn_weights or None), state)`. Masks are bool (True = not attended)
    or float (added); `attn_mask` is (L, S) or (N * num_heads, L, S); `is_causal` is torch's hint
    that `attn_mask` is the causal mask. Attention dropout in training needs `rng`.

    Shape: query (L, N, E) ((N, L, E) with batch_first, (L, E) unbatched), key (S, N, kdim),
      value (S, N, vdim) -> attn_output like query; attn_weights (N, L, S) or (N, H, L, S).

    Example:
      >>> mha = fl.MultiheadAttention(16, 4, batch_first=True)
      >>> params, state = mha.init(jax.random.PRNGKey(0))
      >>> x = jnp.ones((2, 5, 16))
      >>> (out, weights), _ = mha.apply(params, state, x, x, x)
      >>> out.shape, weights.shape
      ((2, 5, 16), (2, 5, 5))
    """
    del device
    if embed_dim <= 0 or num_heads <= 0:
        raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than 0, got "
                         f"embed_dim={embed_dim} and num_heads={num_heads} instead")
    if embed_dim % num_heads:
        raise ValueError(f"MultiheadAttention: embed_dim must be divisible by num_heads, got embed_dim={embed_dim} "
                         f"and num_heads={num_heads}.")
    kdim = embed_dim if kdim is None else kdim
    vdim = embed_dim if vdim is None else vdim
    same = kdim == embed_dim and vdim == embed_dim
    pdtype = param_dtype(dtype)
    who = f"MultiheadAttention(embed_dim={embed_dim}, num_heads={num_heads})"
    out_proj_name = f"NonDynamicallyQuantizableLinear(in_features={embed_dim}, out_features={embed_dim}, " \
                    f"bias={bool(bias)})"

    def init(rng):
        keys = jax.random.split(rng, 7)
        params = {}
        if same:
            params["in_proj_weight"] = _init.xavier_uniform(keys[0], (3 * embed_dim, embed_dim), pdtype)
        else:
            for name, dim, k in (("q", embed_dim, keys[0]), ("k", kdim, keys[1]), ("v", vdim, keys[2])):
                params[f"{name}_proj_weight"] = _init.xavier_uniform(k, (embed_dim, dim), pdtype)
        if bias:
            params["in_proj_bias"] = jnp.zeros((3 * embed_dim,), pdtype)
        if add_bias_kv:
            params["bias_k"] = _init.xavier_normal(keys[3], (1, 1, embed_dim), pdtype)
            params["bias_v"] = _init.xavier_normal(keys[4], (1, 1, embed_dim), pdtype)
        out_proj = {"weight": _init.kaiming_uniform(keys[5], (embed_dim, embed_dim), pdtype, a=math.sqrt(5))}
        if bias:
            out_proj["bias"] = jnp.zeros((embed_dim,), pdtype)
        params["out_proj"] = out_proj
        return params, {}

    def apply(params, state, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
              average_attn_weights=True, is_causal=False, *, rng=None, training=False):
        batched = len(fmt_shape(query)) == 3
        if batch_first and batched:
            same_kv, same_qk = key is value, query is key
            key = jnp.swapaxes(key, 0, 1) if len(fmt_shape(key)) == 3 else key
            value = key if same_kv else (jnp.swapaxes(value, 0, 1) if len(fmt_shape(value)) == 3 else value)
            query = key if same_qk else jnp.swapaxes(query, 0, 1)
        out, weights = multi_head_attention_forward(
            query, key, value, embed_dim, num_heads, params.get("in_proj_weight"), params.get("in_proj_bias"),
            params.get("bias_k"), params.get("bias_v"), add_zero_attn, dropout, params["out_proj"]["weight"],
            params["out_proj"].get("bias"), training=training, key_padding_mask=key_padding_mask,
            need_weights=need_weights, attn_mask=attn_mask, use_separate_proj_weight=not same,
            q_proj_weight=params.get("q_proj_weight"), k_proj_weight=params.get("k_proj_weight"),
            v_proj_weight=params.get("v_proj_weight"), average_attn_weights=average_attn_weights,
            is_causal=is_causal, rng=rng, _who=who)
        if batch_first and batched:
            out = jnp.swapaxes(out, 0, 1)
        return (out, weights), state

    children = (("out_proj", Layer(None, None, out_proj_name)),)
    return Layer(init, apply, "MultiheadAttention", children)


__all__ = ["MultiheadAttention", "scaled_dot_product_attention", "multi_head_attention_forward"]
