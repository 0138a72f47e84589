"""Transformer family against torch 2.13: encoder/decoder layers, stacks, Transformer, state_dict interop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import check_layer, randn, tolerance

import funclayers as fl

KEY = jax.random.PRNGKey(0)
D, H, FF, S, T, N = 8, 2, 12, 5, 4, 2


def _seq(length, batch_first, unbatched, seed):
    if unbatched:
        return randn(length, D, seed=seed)
    return randn(N, length, D, seed=seed) if batch_first else randn(length, N, D, seed=seed)


def _padding(length, unbatched, kind="bool"):
    mask = np.zeros((length,) if unbatched else (N, length), bool)
    mask[..., -1] = True
    if not unbatched:
        mask[0, -2] = True
    return mask if kind == "bool" else np.where(mask, -np.inf, 0).astype(np.float32)


def _causal(length, kind="float"):
    mask = np.asarray(fl.Transformer.generate_square_subsequent_mask(length))
    return np.isinf(mask) if kind == "bool" else mask


def _cast(kwargs, dtype):
    return {k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for k, v in kwargs.items()}


LAYER_CASES = [  # pairwise over norm_first, activation, batch_first, bias, masks, unbatched
    pytest.param(dict(), dict(), id="default"),
    pytest.param(dict(norm_first=True, activation="gelu"), dict(mask="float", padding="bool"),
                 id="norm_first-gelu-masks"),
    pytest.param(dict(batch_first=True, bias=False), dict(mask="bool", is_causal=True),
                 id="batch_first-no_bias-causal"),
    pytest.param(dict(activation="callable", layer_norm_eps=1e-3), dict(padding="float"), id="callable-eps-padding"),
    pytest.param(dict(norm_first=True, batch_first=True), dict(unbatched=True, mask="float", padding="bool"),
                 id="norm_first-unbatched"),
]


def _activation(options):
    options = dict(options)
    if options.get("activation") == "callable":
        options["activation"] = jnp.tanh
        return options, dict(options, activation=torch.tanh)
    return options, options


@pytest.mark.parametrize("options, forward", LAYER_CASES)
def test_encoder_layer_matches_torch(options, forward, dtype):
    ours, theirs = _activation(options)
    unbatched = forward.get("unbatched", False)
    torch.manual_seed(0)
    module = torch.nn.TransformerEncoderLayer(D, H, FF, 0.0, **theirs)
    layer = fl.TransformerEncoderLayer(D, H, FF, 0.0, **ours)
    kwargs = {}
    if "mask" in forward:
        kwargs["src_mask"] = _causal(S, forward["mask"])
    if "padding" in forward:
        kwargs["src_key_padding_mask"] = _padding(S, unbatched, forward["padding"])
    if forward.get("is_causal"):
        kwargs["is_causal"] = True
    src = _seq(S, options.get("batch_first", False), unbatched, 0)
    check_layer(module, layer, [src], dtype=dtype, kwargs=_cast(kwargs, dtype))


@pytest.mark.parametrize("options, forward", LAYER_CASES)
def test_decoder_layer_matches_torch(options, forward, dtype):
    ours, theirs = _activation(options)
    unbatched = forward.get("unbatched", False)
    batch_first = options.get("batch_first", False)
    torch.manual_seed(0)
    module = torch.nn.TransformerDecoderLayer(D, H, FF, 0.0, **theirs)
    layer = fl.TransformerDecoderLayer(D, H, FF, 0.0, **ours)
    kwargs = {}
    if "mask" in forward:
        kwargs["tgt_mask"] = _causal(T, forward["mask"])
        kwargs["memory_mask"] = np.zeros((T, S), np.float32) if forward["mask"] == "float" else np.zeros((T, S), bool)
    if "padding" in forward:
        kwargs["tgt_key_padding_mask"] = _padding(T, unbatched, forward["padding"])
        kwargs["memory_key_padding_mask"] = _padding(S, unbatched, forward["padding"])
    if forward.get("is_causal"):
        kwargs["tgt_is_causal"] = True
    tgt, memory = _seq(T, batch_first, unbatched, 0), _seq(S, batch_first, unbatched, 1)
    check_layer(module, layer, [tgt, memory], dtype=dtype, kwargs=_cast(kwargs, dtype))


def test_encoder_and_decoder_stacks_match_torch(dtype):
    torch.manual_seed(0)
    enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, H, FF, 0.0), 2, torch.nn.LayerNorm(D),
                                      enable_nested_tensor=False)
    dec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, H, FF, 0.0), 2)
    f_enc = fl.TransformerEncoder(fl.TransformerEncoderLayer(D, H, FF, 0.0), 2, fl.LayerNorm(D))
    f_dec = fl.TransformerDecoder(fl.TransformerDecoderLayer(D, H, FF, 0.0), 2)
    src, tgt = _seq(S, False, False, 0), _seq(T, False, False, 1)
    # a causal mask passed without the hint: torch detects it (is_causal=None); same result either way
    check_layer(enc, f_enc, [src], dtype=dtype,
                kwargs=_cast(dict(mask=_causal(S), src_key_padding_mask=_padding(S, False)), dtype))
    check_layer(dec, f_dec, [tgt, src], dtype=dtype,
                kwargs=_cast(dict(tgt_mask=_causal(T), memory_key_padding_mask=_padding(S, False)), dtype))


TRANSFORMER_CASES = [
    pytest.param(dict(), dict(tgt_mask="causal", src_key_padding_mask=True, memory_key_padding_mask=True),
                 id="default-masks"),
    pytest.param(dict(batch_first=True, norm_first=True, activation="gelu"),
                 dict(tgt_mask="causal", tgt_is_causal=True, tgt_key_padding_mask=True), id="batch_first-norm_first"),
    pytest.param(dict(custom=True), dict(unbatched=True, src_mask="causal", memory_mask=True),
                 id="custom_encoder_decoder-unbatched"),
]


@pytest.mark.parametrize("options, forward", TRANSFORMER_CASES)
def test_transformer_matches_torch(options, forward, dtype):
    options, forward = dict(options), dict(forward)
    custom = options.pop("custom", False)
    unbatched = forward.pop("unbatched", False)
    torch.manual_seed(0)
    t_kwargs, f_kwargs = dict(options), dict(options)
    if custom:
        t_kwargs["custom_encoder"] = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, H, FF, 0.0), 1,
                                                                 enable_nested_tensor=False)
        t_kwargs["custom_decoder"] = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, H, FF, 0.0), 1)
        f_kwargs["custom_encoder"] = fl.TransformerEncoder(fl.TransformerEncoderLayer(D, H, FF, 0.0), 1)
        f_kwargs["custom_decoder"] = fl.TransformerDecoder(fl.TransformerDecoderLayer(D, H, FF, 0.0), 1)
    module = torch.nn.Transformer(D, H, 1, 1, FF, 0.0, **t_kwargs)
    layer = fl.Transformer(D, H, 1, 1, FF, 0.0, **f_kwargs)
    kwargs = {}
    for name, value in forward.items():
        if name.endswith("is_causal"):
            kwargs[name] = value
        elif value == "causal":
            kwargs[name] = _causal(T if name.startswith("tgt") else S)
        elif name == "memory_mask":
            kwargs[name] = np.triu(np.ones((T, S), bool), 2)
        else:
            kwargs[name] = _padding(S if name.startswith(("src", "memory")) else T, unbatched)
    batch_first = options.get("batch_first", False)
    inputs = [_seq(S, batch_first, unbatched, 0), _seq(T, batch_first, unbatched, 1)]
    # float32: encoder, decoder and their norms accumulate rounding (a few 1e-6 absolute in the gradients)
    tol = dict(atol=1e-5) if dtype == np.float32 else {}
    check_layer(module, layer, inputs, dtype=dtype, kwargs=_cast(kwargs, dtype), **tol)


def test_torch_transformer_state_dict_loads_unchanged():
    torch.manual_seed(0)
    module = torch.nn.Transformer(16, 4, 2, 2, 32)
    layer = fl.Transformer(16, 4, 2, 2, 32)
    sd = module.state_dict()
    params, state = fl.load_state_dict(layer, sd)
    ours = fl.state_dict(params, state)
    assert list(ours) == list(sd)
    for name, value in sd.items():
        np.testing.assert_array_equal(ours[name], value.numpy())
    assert "encoder.layers.1.self_attn.in_proj_weight" in ours and "decoder.norm.weight" in ours
    assert list(fl.state_dict(*layer.init(KEY))) == list(sd)  # init names and order are torch's
    module.load_state_dict({k: torch.from_numpy(v) for k, v in ours.items()})  # and back


def test_init_independent_copies_and_xavier_reset():
    enc = fl.TransformerEncoder(fl.TransformerEncoderLayer(64, 4, 128), 3)
    sd = fl.state_dict(*enc.init(KEY))
    w = [sd[f"layers.{i}.linear1.weight"] for i in range(3)]
    assert not np.array_equal(w[0], w[1]) and not np.array_equal(w[1], w[2])
    # a bare stack keeps each layer's own init: Linear's kaiming bound 1/sqrt(fan_in)
    assert np.abs(w[0]).max() <= 1 / 8 and np.abs(w[0]).max() > 0.99 / 8
    # Transformer re-initialises every >1-dim parameter xavier-uniform, as torch's _reset_parameters
    sd = fl.state_dict(*fl.Transformer(64, 4, 1, 1, 128).init(KEY))
    torch.manual_seed(0)
    t_sd = torch.nn.Transformer(64, 4, 1, 1, 128).state_dict()
    for name in ["encoder.layers.0.linear1.weight", "decoder.layers.0.multihead_attn.out_proj.weight"]:
        fan_out, fan_in = sd[name].shape
        bound = np.sqrt(6 / (fan_in + fan_out))
        for value in (sd[name], t_sd[name].numpy()):
            assert np.abs(value).max() <= bound and np.abs(value).max() > 0.98 * bound
    assert not sd["encoder.layers.0.self_attn.in_proj_bias"].any()
    assert np.all(sd["encoder.norm.weight"] == 1)


def test_generate_square_subsequent_mask():
    ours = fl.Transformer.generate_square_subsequent_mask(4)
    np.testing.assert_array_equal(ours, torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
    assert ours.dtype == jnp.float32


def test_transformer_dropout_in_training():
    layer = fl.TransformerEncoderLayer(D, H, FF, dropout=0.5)
    params, state = layer.init(KEY)
    x = jnp.asarray(_seq(S, False, False, 0))
    run = jax.jit(lambda rng: layer.apply(params, state, x, rng=rng, training=True)[0])
    np.testing.assert_array_equal(run(jax.random.PRNGKey(0)), run(jax.random.PRNGKey(0)))
    assert not np.allclose(run(jax.random.PRNGKey(0)), run(jax.random.PRNGKey(1)))
    with pytest.raises(ValueError, match="needs `rng`"):
        layer.apply(params, state, x, training=True)


def test_transformer_jvp_matches_torch_func_jvp(dtype):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    module = torch.nn.TransformerEncoderLayer(D, H, FF, 0.0, batch_first=True, norm_first=True).to(tdtype)
    layer = fl.TransformerEncoderLayer(D, H, FF, 0.0, batch_first=True, norm_first=True)
    params, state = fl.load_state_dict(layer, module.state_dict(), dtype=dtype)
    x, tangent = _seq(S, True, False, 0).astype(dtype), _seq(S, True, False, 5).astype(dtype)
    kpm = _padding(S, False)
    with sdpa_kernel(SDPBackend.MATH):  # torch's CPU flash kernel has no forward AD
        _, t_tan = torch.func.jvp(lambda x: module(x, src_key_padding_mask=torch.from_numpy(kpm)),
                                  (torch.from_numpy(x),), (torch.from_numpy(tangent),))
    f = lambda x: layer.apply(params, state, x, src_key_padding_mask=kpm)[0]  # noqa: E731
    _, j_tan = jax.jit(lambda x, t: jax.jvp(f, (x,), (t,)))(x, tangent)
    np.testing.assert_allclose(j_tan, t_tan.detach().numpy(), **tolerance(dtype, rtol=1e-4 if dtype == np.float32
                                                                               else 1e-10))
    batched = jax.jit(jax.vmap(lambda x: layer.apply(params, state, x)[0]))(jnp.asarray(x))
    np.testing.assert_allclose(batched, layer.apply(params, state, x)[0],
                               rtol=1e-5, atol=1e-6)


def test_transformer_errors():
    with pytest.raises(ValueError, match="activation should be relu/gelu, not tanh"):
        fl.TransformerEncoderLayer(D, H, activation="tanh")
    with pytest.raises(TypeError, match="must be a funclayers Layer"):
        fl.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, H), 2)
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        fl.TransformerDecoder(fl.TransformerDecoderLayer(D, H), 0)
    model = fl.Transformer(D, H, 1, 1, FF)
    params, state = model.init(KEY)
    src, tgt = jnp.ones((S, N, D)), jnp.ones((T, N + 1, D))
    with pytest.raises(ValueError, match="the batch number of src and tgt must be equal"):
        model.apply(params, state, src, tgt)
    with pytest.raises(ValueError, match=r"feature number of src and tgt must be equal to d_model \(8\)"):
        model.apply(params, state, src, jnp.ones((T, N, D + 1)))
    with pytest.raises(ValueError, match=r"2D attn_mask is \(4, 4\), but should be \(5, 5\)"):
        model.apply(params, state, src, jnp.ones((T, N, D)), src_mask=_causal(T))
