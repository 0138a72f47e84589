"""Transformer family (torch.nn.modules.transformer): the encoder/decoder layers, their stacks, Transformer.

Every class is an `fl.Module` composite of funclayers layers (`MultiheadAttention`, `Linear`,
`LayerNorm`, `Dropout`) registered under torch's attribute names, so the key paths are torch's
(`layers.0.self_attn.in_proj_weight`, `layers.0.linear1.weight`, `encoder.norm.weight`, ...) and a
torch model's `state_dict` loads unchanged. The stacks hold independent copies of the given layer,
as torch's `_get_clones`: every copy is initialised from its own key.

torch runs an eval-mode, no-grad forward through fused "fast path" kernels when it can
(`torch._transformer_encoder_layer_fwd`, nested tensors for padded batches). We always compute
torch's regular path, which is what torch differentiates. The two differ in two documented places:
the fast path gives NaN (not 0) for a query whose every key is masked, and with a
`src_key_padding_mask` the encoder's fast path writes 0 at padded positions before the final norm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import init as _init
from ._activation import relu
from ._activation_smooth import gelu
from ._attention import MultiheadAttention
from ._dropout import Dropout
from ._layer import Layer, ModuleList
from ._linear import Linear
from ._module import Module
from ._normalization import LayerNorm
from ._sdpa import _canonical_mask
from ._utils import TorchRuntimeError, compute_dtype, fmt_shape, param_dtype


def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> jax.Array:
    """The causal float mask: -inf above the diagonal, 0 elsewhere; torch's
    `nn.Transformer.generate_square_subsequent_mask` (also `fl.Transformer.generate_square_subsequent_mask`).

    Example:
      >>> fl.Transformer.generate_square_subsequent_mask(3)   # [[0, -inf, -inf], [0, 0, -inf], [0, 0, 0]]
    """
    del device
    return jnp.triu(jnp.full((sz, sz), -jnp.inf, param_dtype(dtype)), k=1)


def _activation_fn(who: str, activation: Any) -> Callable[[jax.Array], jax.Array]:
    if isinstance(activation, str):
        if activation == "relu":
            return relu
        if activation == "gelu":
            return gelu
        raise TorchRuntimeError(f"{who}: activation should be relu/gelu, not {activation}")
    if isinstance(activation, Layer):  # e.g. fl.GELU("tanh"), as torch accepts a module instance
        return lambda x: activation.apply({}, {}, x)[0]
    if not callable(activation):
        raise TypeError(f"{who}: activation must be 'relu', 'gelu' or a callable, got {activation!r}.")
    return activation


_BATCH_FIRST: dict[int, bool] = {}  # id(layer.apply) -> batch_first, for the stacks' causal-mask detection


def _seq_len(layer: Layer, x: Any) -> int | None:
    """torch's _get_seq_len(src, layers[0].self_attn.batch_first); None for a custom layer."""
    shape = fmt_shape(x)
    batch_first = _BATCH_FIRST.get(id(layer.apply))
    if batch_first is None:
        return None
    return shape[0] if len(shape) == 2 else shape[1 if batch_first else 0]


def _detect_is_causal_mask(mask: Any, is_causal: bool | None, size: int | None = None) -> bool:
    """torch's _detect_is_causal_mask: `is_causal`, or (when None) whether `mask` is the causal mask.

    Only a concrete mask can be inspected; under jit the mask is used as given, which computes the
    same result (the hint only selects a kernel).
    """
    if is_causal is not None or mask is None:
        return bool(is_causal)
    try:
        values = np.asarray(mask)
    except jax.errors.TracerArrayConversionError:
        return False
    if size is None:
        size = values.shape[-2] if values.ndim >= 2 else -1
    if values.shape != (size, size):
        return False
    causal = np.triu(np.full((size, size), -np.inf, values.dtype if values.dtype != bool else np.float32), 1)
    return bool(np.array_equal(values if values.dtype != bool else np.where(values, -np.inf, 0), causal))


def _named(forward: Callable, name: str) -> Callable:
    forward.__name__ = name
    return forward


def TransformerEncoderLayer(d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                            activation: str | Callable = "relu", layer_norm_eps: float = 1e-5,
                            batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                            device: Any = None, dtype: Any = None) -> Layer:
    """Self-attention and a feed-forward block, each with a residual and LayerNorm; torch.nn.TransformerEncoderLayer.

    Children (torch's names): self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2.
    Forward: `apply(params, state, src, src_mask=None, src_key_padding_mask=None, is_causal=False,
    *, rng=None, training=False)`; dropout in training needs `rng`. `src_mask` is an (S, S) or
    (N * nhead, S, S) boolean (True = not allowed) or float (added) mask; `src_key_padding_mask` an
    (N, S) or (S,) one (True = padding); `is_causal=True` is a hint that `src_mask` is the causal mask.

    Args:
      d_model: the embedding size E of inputs and outputs.
      nhead: number of attention heads; must divide `d_model`.
      dim_feedforward: hidden size of the feed-forward block (default 2048).
      dropout: dropout rate of the attention weights, after each block and inside the feed-forward
        block (default 0.1); active with `training=True` and an `rng`.
      activation: the feed-forward activation: "relu" (default), "gelu", a callable of one array, or a
        funclayers activation layer such as `fl.GELU("tanh")`.
      layer_norm_eps: the LayerNorms' eps (default 1e-5).
      batch_first: inputs and outputs are (N, S, E) instead of (S, N, E). Default: False.
      norm_first: pre-norm (LayerNorm before each block) instead of torch's default post-norm.
      bias: whether the Linear, attention and LayerNorm layers have biases. Default: True.
      device: accepted for torch's signature; unused. Default: None.
      dtype: dtype of the parameters (default float32).

    Shape:
      src (S, N, E), (N, S, E) with batch_first, or (S, E) unbatched -> the same shape.

    Example:
      >>> layer = fl.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, batch_first=True)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> src = jnp.ones((2, 5, 16))
      >>> padding = jnp.array([[False] * 5, [False] * 3 + [True] * 2])   # the second sequence has length 3
      >>> out, _ = layer.apply(params, state, src, src_key_padding_mask=padding)
      >>> out.shape
      (2, 5, 16)
      >>> out, _ = layer.apply(params, state, src, rng=jax.random.PRNGKey(1), training=True)  # with dropout
    """
    del device
    who = "TransformerEncoderLayer"
    act = _activation_fn(who, activation)
    children = dict(
        self_attn=MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype),
        linear1=Linear(d_model, dim_feedforward, bias=bias, dtype=dtype), dropout=Dropout(dropout),
        linear2=Linear(dim_feedforward, d_model, bias=bias, dtype=dtype),
        norm1=LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype),
        norm2=LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype),
        dropout1=Dropout(dropout), dropout2=Dropout(dropout))

    def forward(m, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        dtype_ = compute_dtype(src)
        kpm = _canonical_mask(who, src_key_padding_mask, "src_key_padding_mask", src_mask, "src_mask", dtype_)
        mask = _canonical_mask(who, src_mask, "src_mask", None, "", dtype_, check_other=False)

        def sa_block(x):
            x = m.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm, need_weights=False, is_causal=is_causal)
            return m.dropout1(x[0])

        def ff_block(x):
            return m.dropout2(m.linear2(m.dropout(act(m.linear1(x)))))

        x = jnp.asarray(src)
        if norm_first:
            x = x + sa_block(m.norm1(x))
            return x + ff_block(m.norm2(x))
        x = m.norm1(x + sa_block(x))
        return m.norm2(x + ff_block(x))

    layer = Module(_named(forward, "TransformerEncoderLayer"), **children)
    _BATCH_FIRST[id(layer.apply)] = batch_first
    return layer


def TransformerDecoderLayer(d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                            activation: str | Callable = "relu", layer_norm_eps: float = 1e-5,
                            batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                            device: Any = None, dtype: Any = None) -> Layer:
    """Self-attention, attention over the memory, and a feed-forward block; torch.nn.TransformerDecoderLayer.

    Children: self_attn, multihead_attn, linear1, dropout, linear2, norm1, norm2, norm3, dropout1-3.
    Forward: `apply(params, state, tgt, memory, tgt_mask=None, memory_mask=None,
    tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=False,
    memory_is_causal=False, *, rng=None, training=False)`. `tgt_mask` is (T, T) or (N * nhead, T, T),
    `memory_mask` (T, S) or (N * nhead, T, S), the padding masks (N, T) and (N, S); boolean masks
    mark what may not be attended to, float masks are added to the scores.

    Args:
      d_model: the embedding size E of inputs and outputs.
      nhead: number of attention heads; must divide `d_model`.
      dim_feedforward: hidden size of the feed-forward block (default 2048).
      dropout: dropout rate of the attention weights, after each block and inside the feed-forward
        block (default 0.1); active with `training=True` and an `rng`.
      activation: the feed-forward activation: "relu" (default), "gelu", a callable of one array, or a
        funclayers activation layer such as `fl.GELU("tanh")`.
      layer_norm_eps: the LayerNorms' eps (default 1e-5).
      batch_first: inputs and outputs are (N, S, E) instead of (S, N, E). Default: False.
      norm_first: pre-norm (LayerNorm before each block) instead of torch's default post-norm.
      bias: whether the Linear, attention and LayerNorm layers have biases. Default: True.
      device: accepted for torch's signature; unused. Default: None.
      dtype: dtype of the parameters (default float32).

    Shape:
      tgt (T, N, E) and memory (S, N, E); (N, T, E) and (N, S, E) with batch_first; (T, E) and (S, E)
      unbatched -> tgt's shape.

    Example:
      >>> layer = fl.TransformerDecoderLayer(d_model=16, nhead=4, dim_feedforward=32)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> causal = fl.Transformer.generate_square_subsequent_mask(7)
      >>> out, _ = layer.apply(params, state, jnp.ones((7, 2, 16)), jnp.ones((5, 2, 16)), tgt_mask=causal)
      >>> out.shape
      (7, 2, 16)
    """
    del device
    who = "TransformerDecoderLayer"
    act = _activation_fn(who, activation)

    def attention():
        return MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias, dtype=dtype)

    children = dict(
        self_attn=attention(), multihead_attn=attention(),
        linear1=Linear(d_model, dim_feedforward, bias=bias, dtype=dtype), dropout=Dropout(dropout),
        linear2=Linear(dim_feedforward, d_model, bias=bias, dtype=dtype),
        norm1=LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype),
        norm2=LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype),
        norm3=LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype),
        dropout1=Dropout(dropout), dropout2=Dropout(dropout), dropout3=Dropout(dropout))

    def forward(m, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        def sa_block(x):
            x = m.self_attn(x, x, x, attn_mask=tgt_mask, key_padding_mask=tgt_key_padding_mask,
                            is_causal=tgt_is_causal, need_weights=False)
            return m.dropout1(x[0])

        def mha_block(x):
            x = m.multihead_attn(x, memory, memory, attn_mask=memory_mask, key_padding_mask=memory_key_padding_mask,
                                 is_causal=memory_is_causal, need_weights=False)
            return m.dropout2(x[0])

        def ff_block(x):
            return m.dropout3(m.linear2(m.dropout(act(m.linear1(x)))))

        x = jnp.asarray(tgt)
        memory = jnp.asarray(memory)
        if norm_first:
            x = x + sa_block(m.norm1(x))
            x = x + mha_block(m.norm2(x))
            return x + ff_block(m.norm3(x))
        x = m.norm1(x + sa_block(x))
        x = m.norm2(x + mha_block(x))
        return m.norm3(x + ff_block(x))

    layer = Module(_named(forward, "TransformerDecoderLayer"), **children)
    _BATCH_FIRST[id(layer.apply)] = batch_first
    return layer


def _check_stack(who: str, layer: Any, num_layers: Any, norm: Any) -> None:
    if not isinstance(layer, Layer):
        raise TypeError(f"{who}: the layer to stack must be a funclayers Layer (e.g. fl.TransformerEncoderLayer"
                        f"(...)), got {type(layer).__name__}.")
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"{who}: num_layers must be a positive int, got {num_layers!r}.")
    if norm is not None and not isinstance(norm, Layer):
        raise TypeError(f"{who}: norm must be None or a funclayers Layer such as fl.LayerNorm(d_model), got "
                        f"{type(norm).__name__}.")


def TransformerEncoder(encoder_layer: Layer, num_layers: int, norm: Layer | None = None,
                       enable_nested_tensor: bool = True, mask_check: bool = True) -> Layer:
    """A stack of `num_layers` independent copies of `encoder_layer`, then `norm`; torch.nn.TransformerEncoder.

    Params: `layers.0...`, `layers.1...`, and `norm...` when given.

    Forward: `apply(params, state, src, mask=None, src_key_padding_mask=None, is_causal=None, *,
    rng=None, training=False)`; the masks as `TransformerEncoderLayer`'s. `is_causal=None` detects a
    concrete causal `mask`, as torch does.

    Args:
      encoder_layer: the layer to copy, e.g. `fl.TransformerEncoderLayer(...)`; each copy is
        initialised from its own key.
      num_layers: number of copies (at least 1).
      norm: an optional final layer, usually `fl.LayerNorm(d_model)`. Default: None.
      enable_nested_tensor: selects torch's nested-tensor inference fast path; accepted and
        without effect here (torch's regular path is computed, see the module docstring).
        Default: True.
      mask_check: torch's check of the masks for that fast path; accepted and without effect.
        Default: True.

    Shape:
      src as `encoder_layer` takes it ((S, N, E), (N, S, E) with batch_first, (S, E) unbatched) ->
      the same shape.

    Example:
      >>> layer = fl.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32)
      >>> encoder = fl.TransformerEncoder(layer, num_layers=3, norm=fl.LayerNorm(16))
      >>> params, state = encoder.init(jax.random.PRNGKey(0))
      >>> sorted(params)
      ['layers', 'norm']
      >>> out, _ = encoder.apply(params, state, jnp.ones((10, 2, 16)))
      >>> out.shape
      (10, 2, 16)
    """
    del enable_nested_tensor, mask_check
    who = "TransformerEncoder"
    _check_stack(who, encoder_layer, num_layers, norm)
    children = dict(layers=ModuleList([encoder_layer] * num_layers))
    if norm is not None:
        children["norm"] = norm

    def forward(m, src, mask=None, src_key_padding_mask=None, is_causal=None):
        dtype_ = compute_dtype(src)
        kpm = _canonical_mask(who, src_key_padding_mask, "src_key_padding_mask", mask, "mask", dtype_)
        mask_ = _canonical_mask(who, mask, "mask", None, "", dtype_, check_other=False)
        is_causal = _detect_is_causal_mask(mask_, is_causal, _seq_len(encoder_layer, src))
        output = src
        for layer in m.layers:
            output = layer(output, src_mask=mask_, is_causal=is_causal, src_key_padding_mask=kpm)
        return m.norm(output) if "norm" in m else output

    return Module(_named(forward, "TransformerEncoder"), **children)


def TransformerDecoder(decoder_layer: Layer, num_layers: int, norm: Layer | None = None) -> Layer:
    """A stack of `num_layers` independent copies of `decoder_layer`, then `norm`; torch.nn.TransformerDecoder.

    Forward: `apply(params, state, tgt, memory, tgt_mask=None, memory_mask=None,
    tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=None,
    memory_is_causal=False, *, rng=None, training=False)`; the masks as `TransformerDecoderLayer`'s.

    Args:
      decoder_layer: the layer to copy, e.g. `fl.TransformerDecoderLayer(...)`; each copy is
        initialised from its own key.
      num_layers: number of copies (at least 1).
      norm: an optional final layer, usually `fl.LayerNorm(d_model)`. Default: None.

    Shape:
      tgt (T, N, E) and memory (S, N, E) (batch first or unbatched as `decoder_layer` is
      configured) -> tgt's shape.

    Example:
      >>> decoder = fl.TransformerDecoder(fl.TransformerDecoderLayer(d_model=16, nhead=4, dim_feedforward=32),
      ...                                 num_layers=2)
      >>> params, state = decoder.init(jax.random.PRNGKey(0))
      >>> out, _ = decoder.apply(params, state, jnp.ones((7, 2, 16)), jnp.ones((5, 2, 16)))
      >>> out.shape
      (7, 2, 16)
    """
    who = "TransformerDecoder"
    _check_stack(who, decoder_layer, num_layers, norm)
    children = dict(layers=ModuleList([decoder_layer] * num_layers))
    if norm is not None:
        children["norm"] = norm

    def forward(m, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, _seq_len(decoder_layer, tgt))
        output = tgt
        for layer in m.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask,
                           memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                           memory_is_causal=memory_is_causal)
        return m.norm(output) if "norm" in m else output

    return Module(_named(forward, "TransformerDecoder"), **children)


def _xavier_reset(params: Any, rng: jax.Array) -> Any:
    """torch's Transformer._reset_parameters: xavier_uniform_ on every parameter of more than 1 dim."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(rng, max(len(leaves), 1))
    leaves = [_init.xavier_uniform(k, p.shape, p.dtype) if p.ndim > 1 else p for k, p in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _reorder_like(tree: Any, template: Any) -> Any:
    """`tree` with `template`'s dict key order (tree_unflatten sorts keys; torch's order is registration)."""
    if isinstance(template, dict):
        return {k: _reorder_like(tree[k], v) for k, v in template.items()}
    return tree


def Transformer(d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                dim_feedforward: int = 2048, dropout: float = 0.1, activation: str | Callable = "relu",
                custom_encoder: Layer | None = None, custom_decoder: Layer | None = None,
                layer_norm_eps: float = 1e-5, batch_first: bool = False, norm_first: bool = False,
                bias: bool = True, device: Any = None, dtype: Any = None) -> Layer:
    """An encoder-decoder Transformer; torch.nn.Transformer.

    Children: `encoder` (a TransformerEncoder with a final LayerNorm, or `custom_encoder`) and
    `decoder` (likewise). Initialised as torch: each layer's own init, then xavier-uniform on every
    parameter of more than one dimension (custom encoder/decoder included).

    Forward: `apply(params, state, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
    src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
    src_is_causal=None, tgt_is_causal=None, memory_is_causal=False, *, rng=None, training=False)`.
    `fl.Transformer.generate_square_subsequent_mask(sz)` gives the causal `tgt_mask`.

    Args:
      d_model: the embedding size E (default 512).
      nhead: attention heads per attention layer (default 8).
      num_encoder_layers: the number of sub-encoder-layers in the encoder (default 6).
      num_decoder_layers: the number of sub-decoder-layers in the decoder (default 6).
      dim_feedforward: hidden size of every feed-forward block (default 2048).
      dropout: dropout rate everywhere (default 0.1); active with `training=True` and an `rng`.
      activation: "relu" (default), "gelu" or a callable, as in `TransformerEncoderLayer`.
      custom_encoder: a layer used instead of the default encoder stack, called as
        `encoder(src, mask=..., src_key_padding_mask=..., is_causal=...)` (default None).
      custom_decoder: a layer used instead of the default decoder stack, called as
        `decoder(tgt, memory, ...)` (default None).
      layer_norm_eps: the LayerNorms' eps (default 1e-5).
      batch_first: inputs and outputs are (N, S, E) instead of (S, N, E). Default: False.
      norm_first: pre-norm layers. Default: False.
      bias: whether the Linear, attention and LayerNorm layers have biases. Default: True.
      device: accepted for torch's signature; unused. Default: None.
      dtype: dtype of the parameters. Default: None.

    Shape:
      src (S, N, E) and tgt (T, N, E); (N, S, E) and (N, T, E) with batch_first; (S, E) and (T, E)
      unbatched -> (T, N, E) (tgt's shape). src and tgt must have the same batch size and E = d_model.

    Example:
      >>> model = fl.Transformer(d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
      ...                        dim_feedforward=32)
      >>> params, state = model.init(jax.random.PRNGKey(0))
      >>> mask = fl.Transformer.generate_square_subsequent_mask(7)
      >>> out, _ = model.apply(params, state, jnp.ones((5, 2, 16)), jnp.ones((7, 2, 16)), tgt_mask=mask)
      >>> out.shape
      (7, 2, 16)
    """
    del device
    if custom_encoder is None:
        layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                        batch_first, norm_first, bias, dtype=dtype)
        encoder = TransformerEncoder(layer, num_encoder_layers,
                                     LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
    else:
        encoder = custom_encoder
    if custom_decoder is None:
        layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                        batch_first, norm_first, bias, dtype=dtype)
        decoder = TransformerDecoder(layer, num_decoder_layers,
                                     LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
    else:
        decoder = custom_decoder

    def forward(m, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        s_shape, t_shape = fmt_shape(src), fmt_shape(tgt)
        batch_axis = 0 if batch_first else 1
        if len(s_shape) == 3 and (len(t_shape) != 3 or s_shape[batch_axis] != t_shape[batch_axis]):
            raise TorchRuntimeError(f"Transformer: the batch number of src and tgt must be equal, got src of shape "
                                    f"{s_shape} and tgt of shape {t_shape} (batch_first={batch_first}).")
        if s_shape[-1] != d_model or t_shape[-1] != d_model:
            raise TorchRuntimeError(f"Transformer: the feature number of src and tgt must be equal to d_model "
                                    f"({d_model}), got src of shape {s_shape} and tgt of shape {t_shape}.")
        memory = m.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return m.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                         tgt_key_padding_mask=tgt_key_padding_mask,
                         memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                         memory_is_causal=memory_is_causal)

    model = Module(_named(forward, "Transformer"), encoder=encoder, decoder=decoder)

    def init(rng, *example_inputs, **example_kwargs):
        k_children, k_reset = jax.random.split(rng)
        params, state = model.init(k_children, *example_inputs, **example_kwargs)
        return _reorder_like(_xavier_reset(params, k_reset), params), state

    return model._replace(init=init)


Transformer.generate_square_subsequent_mask = generate_square_subsequent_mask  # torch's static method

__all__ = ["Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
           "TransformerDecoderLayer", "generate_square_subsequent_mask"]
