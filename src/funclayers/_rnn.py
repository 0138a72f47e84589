"""Recurrent layers: RNNBase, RNN, LSTM, GRU (torch.nn.modules.rnn); the cells are in _rnn_cell.py.

Parameters keep torch's names, shapes and gate order (`weight_ih_l{k}[_reverse]` is
(gates * hidden_size, input), LSTM gates i, f, g, o; GRU gates r, z, n with `b_hn` inside the
reset product), so a torch `state_dict` loads unchanged.

How a layer runs (the speed levers of issue 14):
- the input projection of every time step, both directions, is one matrix product before the loop;
- each direction's loop is one `lax.scan` over time (compile time does not grow with the
  sequence length) whose step does one fused product of all gates; the reverse direction reads
  the projected input time-reversed. (One scan for both directions, a product batched over the
  direction axis, was slower on CPU: see _direction_scan.)
- the loop's derivative is a closed-form `custom_jvp` with a linear tangent rule (_rnn_scan.py):
  the weights' tangents enter as one product over all steps outside the loop, so the backward
  loop (JAX's transpose of the rule) does one product per step and the weight gradients are one
  product over all steps; forward mode (jvp, jacfwd, Hessians) works. For LSTM without
  projection the backward loop is hand-written (`_rnn_scan._lstm_transpose`, through
  `_kernels._primitive.linear_call`): its steps compute their coefficients from the stored gate
  activations, instead of reading ten arrays computed over all steps before the loop.
- variable lengths (`lengths=`, or a PackedSequence) are a per-step mask: past its end a sequence
  keeps its state and outputs zeros, and its reverse direction starts from the initial state at
  its own last step, which is what torch's packed kernels compute.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import init as _init
from ._layer import Layer
from ._rnn_scan import recurrence
from ._utils import (
    TorchRuntimeError,
    check_floating,
    compute_dtype,
    dtype_mismatch,
    fmt_shape,
    in_shape_pass,
    param_dtype,
    require_rng,
    torch_dtype_names,
)
from .rnn import PackedSequence, _packed_positions, pad_packed_sequence

_PRECISION = lax.Precision.HIGHEST  # torch's full float32 products, on every backend
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _dot_t(x: jax.Array, weight: jax.Array) -> jax.Array:
    """x @ weight.T over the last axis of x."""
    return lax.dot_general(x, weight, (((x.ndim - 1,), (1,)), ((), ())), precision=_PRECISION)


def _affine(x: jax.Array, weight: jax.Array, bias: jax.Array | None) -> jax.Array:
    out = _dot_t(x, weight)
    return out if bias is None else out + bias


# -- the multi-layer recurrence ------------------------------------------------------------------------------


def _layer_scan(mode: str, x: jax.Array, h0: jax.Array, c0: jax.Array | None, weights: list[dict],
                valid: jax.Array | None) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """One layer over time-major x (T, B, I), every direction.

    h0: (D, B, H_out); c0: (D, B, H) (LSTM); weights: one dict per direction (w_ih, w_hh, b_ih,
    b_hh, w_hr); valid: (T, B, 1) step mask (forward time order) or None.
    Returns output (T, B, D * H_out) and the final (D, B, H_out) h and (D, B, H) c.
    """
    num_dirs = len(weights)
    gate_size = weights[0]["w_ih"].shape[0]
    hidden = gate_size // _GATES[mode]
    has_bias = weights[0]["b_ih"] is not None
    x_bias, h_bias = [None] * num_dirs, [None] * num_dirs
    if has_bias:
        for d, w in enumerate(weights):
            if mode == "GRU":  # b_hr and b_hz join the input's bias; b_hn stays inside the reset product
                x_bias[d] = w["b_ih"] + w["b_hh"].at[2 * hidden :].set(0)
                h_bias[d] = w["b_hh"].at[: 2 * hidden].set(0)
            else:
                x_bias[d] = w["b_ih"] + w["b_hh"]
    # every step's input gates, all directions, in one product: (T, B, D * G)
    w_ih = jnp.concatenate([w["w_ih"] for w in weights], axis=0) if num_dirs > 1 else weights[0]["w_ih"]
    gates_x = _affine(x, w_ih, jnp.concatenate(x_bias) if has_bias else None)
    outs, h_n, c_n = [], [], []
    for d, w in enumerate(weights):
        xs = gates_x[..., d * gate_size : (d + 1) * gate_size]
        ok = valid
        if d == 1:  # the reverse direction reads back to front (and, masked, starts at each sequence's end)
            xs, ok = xs[::-1], None if valid is None else valid[::-1]
        ys, h, c = _direction_scan(mode, xs, h0[d], None if c0 is None else c0[d], w["w_hh"], h_bias[d],
                                   w.get("w_hr"), ok)
        outs.append(ys if d == 0 else ys[::-1])
        h_n.append(h)
        c_n.append(c)
    out = outs[0] if num_dirs == 1 else jnp.concatenate(outs, axis=-1)
    return out, jnp.stack(h_n), (jnp.stack(c_n) if c0 is not None else None)


def _direction_scan(mode: str, xs: jax.Array, h0: jax.Array, c0: jax.Array | None, w_hh: jax.Array,
                    b_hn: jax.Array | None, w_hr: jax.Array | None, valid: jax.Array | None) -> tuple:
    """One direction's loop: xs (T, B, G) the input gates in processing order -> ys (T, B, H_out), h, c.

    b_hn: GRU's hidden bias, zero but for its n part (b_hr and b_hz are already in xs).
    Each direction runs its own scan: measured on CPU, two scans of plain (B, H) x (H, G) products
    beat one scan of a product batched over the direction axis (LSTM 2 layers bidirectional, fwd +
    bwd: 138-143 ms against 198 ms). The loop and its closed-form tangent are in _rnn_scan.py.
    """
    return recurrence(mode, xs, h0, c0, w_hh, b_hn, w_hr, valid)


def _dropout(x: jax.Array, p: float, rng: jax.Array) -> jax.Array:
    if p >= 1:
        return jnp.zeros_like(x)
    keep = jax.random.bernoulli(rng, 1.0 - p, x.shape)
    return jnp.where(keep, x / (1.0 - p), jnp.zeros_like(x))


def _recurrence(mode: str, x: jax.Array, h0: jax.Array, c0: jax.Array | None, weights: list[dict],
                num_layers: int, num_dirs: int, lengths: jax.Array | None, dropout: float, training: bool,
                rng: jax.Array | None) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Every layer over time-major x (T, B, I): output (T, B, D * H_out), h_n, c_n."""
    valid = None
    if lengths is not None:
        valid = (jnp.arange(x.shape[0])[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)
    drop = training and dropout > 0 and num_layers > 1
    keys = jax.random.split(rng, num_layers - 1) if drop else None
    h_n, c_n = [], []
    for layer in range(num_layers):
        rows = slice(layer * num_dirs, (layer + 1) * num_dirs)
        x, h, c = _layer_scan(mode, x, h0[rows], None if c0 is None else c0[rows], weights[rows], valid)
        h_n.append(h)
        c_n.append(c)
        if drop and layer < num_layers - 1:
            x = _dropout(x, dropout, keys[layer])
    return x, jnp.concatenate(h_n), (jnp.concatenate(c_n) if c0 is not None else None)


# -- the layers ----------------------------------------------------------------------------------------------


def _check_config(mode: str, input_size: Any, hidden_size: Any, num_layers: Any, bias: Any, batch_first: Any,
                  dropout: Any, proj_size: Any) -> None:
    """torch's RNNBase.__init__ checks, in its order and words."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the probability of an element "
                         f"being zeroed (got dropout={dropout!r}).")
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                      f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                      stacklevel=3)
    if not isinstance(bias, bool):
        raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
    if not isinstance(batch_first, bool):
        raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero (got {name}={value}).")
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers <= 0:
        raise ValueError(f"num_layers must be greater than zero (got num_layers={num_layers!r}).")
    if not isinstance(proj_size, int) or proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections "
                         f"(got proj_size={proj_size!r}).")
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size (got proj_size={proj_size}, "
                         f"hidden_size={hidden_size}).")
    if mode not in _GATES:
        raise ValueError(f"Unrecognized RNN mode: {mode} (expected one of {sorted(_GATES)}).")
    if proj_size > 0 and mode != "LSTM":
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")


def _describe(kind: str, input_size: int, hidden_size: int, num_layers: int, bias: bool, batch_first: bool,
              dropout: float, bidirectional: bool, proj_size: int, extra: str = "") -> str:
    """torch's extra_repr: only the options that differ from their defaults."""
    parts = [f"{input_size}, {hidden_size}"]
    if proj_size != 0:
        parts.append(f"proj_size={proj_size}")
    if num_layers != 1:
        parts.append(f"num_layers={num_layers}")
    if bias is not True:
        parts.append(f"bias={bias}")
    if batch_first is not False:
        parts.append(f"batch_first={batch_first}")
    if dropout != 0:
        parts.append(f"dropout={dropout}")
    if bidirectional is not False:
        parts.append(f"bidirectional={bidirectional}")
    return f"{kind}({', '.join(parts)}{extra})"


def _check_input_dtype(name: str, x: Any, params: dict) -> None:
    """torch's RNNBase.check_input: the input's dtype must be the weights' (no silent cast, as torch)."""
    if in_shape_pass():  # init's example inputs give shapes only
        return
    weight = params.get("weight_ih_l0")
    x_dtype = jnp.asarray(x).dtype
    if weight is not None and x_dtype != jnp.asarray(weight).dtype:
        w_dtype = jnp.asarray(weight).dtype
        raise ValueError(f"{name}: RNN input dtype ({x_dtype}) does not match weight dtype ({w_dtype}). Convert "
                         f"input: input.astype({w_dtype}), or convert the params: jax.tree.map(lambda p: "
                         f"p.astype({x_dtype}), params).")


# torch's messages when a product inside the recurrence meets a weight (or bias) of another dtype: at::linear's
# addmm(bias, x, weight.t()) checks self (the bias) against mat2 (the weight) first, then mat1 (the input or
# hidden state); without a bias (and for LSTM's projection weight_hr) it is a plain mm
_ADDMM_BIAS = "self and mat2 must have the same dtype, but got {b} and {w}"
_ADDMM_INPUT = "mat1 and mat2 must have the same dtype, but got {x} and {w}"
_MM = "expected m1 and m2 to have the same dtype, but got: {x_c} != {w_c}"


def _check_weight_dtypes(name: str, x: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, w_hr: Any) -> None:
    """torch raises, at the first product that mixes dtypes, when any of a multi-layer (or bidirectional) RNN's
    weights has another dtype than its input (check_input compares weight_ih_l0 only): one layer's and
    direction's products in torch's order (input projection, hidden product, projection), same messages. torch's
    float32 LSTM on CPU raises "get_mkldnn_dtype: unsupported data type" from its oneDNN kernel instead; ours
    gives the message of torch's other paths (float64, RNN, GRU)."""
    x_dtype = jnp.result_type(x)
    for w, b in ((w_ih, b_ih), (w_hh, b_hh), (w_hr, None)):
        if w is None:
            continue
        w_dtype = jnp.result_type(w)
        b_dtype = None if b is None else jnp.result_type(b)
        names = {"x": torch_dtype_names(x_dtype)["scalar"], "w": torch_dtype_names(w_dtype)["scalar"],
                 "x_c": torch_dtype_names(x_dtype)["c"], "w_c": torch_dtype_names(w_dtype)["c"]}
        if b_dtype is not None and b_dtype != w_dtype:
            names["b"] = torch_dtype_names(b_dtype)["scalar"]
            bad = b_dtype if w_dtype == x_dtype else w_dtype
            raise dtype_mismatch(name, _ADDMM_BIAS.format(**names), x_dtype, bad)
        if w_dtype != x_dtype:
            raise dtype_mismatch(name, (_MM if b is None else _ADDMM_INPUT).format(**names), x_dtype, w_dtype)


def _hx_shape_error(message: str, expected: tuple, got: Any) -> TorchRuntimeError:
    return TorchRuntimeError(message.format(expected, list(fmt_shape(got))))


def _rnn_layer(kind: str, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
               batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
               dtype: Any = None, extra: str = "") -> Layer:
    _check_config(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size)
    dropout = float(dropout)
    num_dirs = 2 if bidirectional else 1
    gate_size = _GATES[mode] * hidden_size
    out_size = proj_size if proj_size > 0 else hidden_size
    name = _describe(kind, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                     proj_size, extra)
    pdtype = param_dtype(dtype)
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else out_size * num_dirs
        for direction in range(num_dirs):
            suffix = f"l{layer}" + ("_reverse" if direction else "")
            shapes[f"weight_ih_{suffix}"] = (gate_size, layer_input)
            shapes[f"weight_hh_{suffix}"] = (gate_size, out_size)
            if bias:
                shapes[f"bias_ih_{suffix}"] = (gate_size,)
                shapes[f"bias_hh_{suffix}"] = (gate_size,)
            if proj_size > 0:
                shapes[f"weight_hr_{suffix}"] = (proj_size, hidden_size)
    bound = 1.0 / math.sqrt(hidden_size)

    def init(rng):
        keys = jax.random.split(rng, len(shapes))
        return {n: _init.uniform(k, s, pdtype, -bound, bound) for (n, s), k in zip(shapes.items(), keys)}, {}

    def weights_of(params, x):
        out = []
        for layer in range(num_layers):
            for direction in range(num_dirs):
                suffix = f"l{layer}" + ("_reverse" if direction else "")
                names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
                arrays = [params.get(f"{n}_{suffix}") for n in names]
                if in_shape_pass():  # example inputs give shapes only: any dtype sizes the layer
                    arrays = [None if a is None else jnp.asarray(a, x.dtype) for a in arrays]
                else:
                    _check_weight_dtypes(name, x, *arrays)
                out.append(dict(zip(("w_ih", "w_hh", "b_ih", "b_hh", "w_hr"), arrays)))
        return out

    def check_hidden(hx, batch):
        """hx in (num_layers * D, B, H_out) (and c in (.., H)), with torch's messages."""
        expected_h = (num_layers * num_dirs, batch, out_size)
        expected_c = (num_layers * num_dirs, batch, hidden_size)
        if mode == "LSTM":
            h, c = hx
            if fmt_shape(h) != expected_h:
                raise _hx_shape_error(f"{name}: Expected hidden[0] size {{}}, got {{}}", expected_h, h)
            if fmt_shape(c) != expected_c:
                raise _hx_shape_error(f"{name}: Expected hidden[1] size {{}}, got {{}}", expected_c, c)
            return h, c
        if fmt_shape(hx) != expected_h:
            raise _hx_shape_error(f"{name}: Expected hidden size {{}}, got {{}}", expected_h, hx)
        return hx, None

    def run(params, x, hx, lengths, training, rng):
        """x time-major (T, B, I); hx checked and batched; returns output, h_n, c_n."""
        dtype = compute_dtype(x)
        x = x.astype(dtype)
        batch = x.shape[1]
        if hx is None:
            h0 = jnp.zeros((num_layers * num_dirs, batch, out_size), dtype)
            c0 = jnp.zeros((num_layers * num_dirs, batch, hidden_size), dtype) if mode == "LSTM" else None
        else:
            h0, c0 = check_hidden(hx, batch)
            h0 = jnp.asarray(h0, dtype)
            c0 = None if c0 is None else jnp.asarray(c0, dtype)
        if training and dropout > 0 and num_layers > 1:
            rng = require_rng(name, rng)
        return _recurrence(mode, x, h0, c0, weights_of(params, x), num_layers, num_dirs, lengths, dropout,
                           training, rng)

    def check_input_size(x):
        if fmt_shape(x)[-1] != input_size:
            raise TorchRuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected {input_size}, "
                                    f"got {fmt_shape(x)[-1]}")

    def hidden_out(h_n, c_n):
        return (h_n, c_n) if mode == "LSTM" else h_n

    def apply_packed(params, packed, hx, training, rng):
        data = packed.data
        if len(fmt_shape(data)) != 2:
            raise TorchRuntimeError(f"{name}: input must have 2 dimensions, got {len(fmt_shape(data))} "
                                    "(the data of a PackedSequence is (sum(lengths), input_size)).")
        check_floating(name, data)
        _check_input_dtype(name, data, params)
        check_input_size(data)
        padded, lengths = pad_packed_sequence(packed)  # (T, B, I) in the original batch order
        out, h_n, c_n = run(params, padded, hx, jnp.asarray(lengths), training, rng)
        order = packed.sorted_indices
        if order is None:
            order = np.arange(out.shape[1])
        times, rows = _packed_positions(packed.batch_sizes, order)
        return (packed._replace(data=out[times, rows]), hidden_out(h_n, c_n))

    def apply(params, state, input, hx=None, *, rng=None, training=False, lengths=None):
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(f"{name}: pass either a PackedSequence or a padded input with `lengths=`, "
                                 "not both (a PackedSequence carries its lengths).")
            return apply_packed(params, input, hx, training, rng), state
        shape = fmt_shape(input)
        if len(shape) not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {len(shape)}D tensor instead "
                             f"(input of shape {shape}; 3D is (L, N, H_in), or (N, L, H_in) with batch_first).")
        check_floating(name, input)
        _check_input_dtype(name, input, params)
        x = jnp.asarray(input)
        batched = x.ndim == 3
        if hx is not None:
            ranks = tuple(len(fmt_shape(h)) for h in hx) if mode == "LSTM" else (len(fmt_shape(hx)),)
            want = 3 if batched else 2
            if any(r != want for r in ranks):
                what = "hx and cx" if mode == "LSTM" else "hx"
                got = f"({', '.join(f'{r}-D' for r in ranks)}) tensors" if mode == "LSTM" else f"{ranks[0]}-D tensor"
                kind_in = "batched 3-D" if batched else "unbatched 2-D"
                raise TorchRuntimeError(f"{name}: For {kind_in} input, {what} should also be {want}-D but got {got}")
        if batched:
            x = jnp.swapaxes(x, 0, 1) if batch_first else x
        else:
            x = x[:, None]
            if hx is not None:
                hx = tuple(jnp.asarray(h)[:, None] for h in hx) if mode == "LSTM" else jnp.asarray(hx)[:, None]
        check_input_size(x)
        if lengths is not None:
            lengths = jnp.asarray(lengths)
            if not jnp.issubdtype(lengths.dtype, jnp.integer):
                raise TypeError(f"{name}: lengths must be integers, got dtype {lengths.dtype}.")
            lengths = lengths.reshape(-1) if not batched and lengths.ndim == 0 else lengths
            if lengths.shape != (x.shape[1],):
                raise ValueError(f"{name}: lengths must hold one length per sequence, shape ({x.shape[1]},), got "
                                 f"shape {lengths.shape}.")
        out, h_n, c_n = run(params, x, hx, lengths, training, rng)
        if batched:
            out = jnp.swapaxes(out, 0, 1) if batch_first else out
        else:
            out, h_n = out[:, 0], h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        return (out, hidden_out(h_n, c_n)), state

    return Layer(init, apply, name)


def RNNBase(mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
            batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
            device: Any = None, dtype: Any = None) -> Layer:
    """The recurrent layer of any mode ("RNN_TANH", "RNN_RELU", "LSTM", "GRU"); torch.nn.RNNBase.

    It computes what the matching RNN, LSTM or GRU computes.

    Forward: `apply(params, state, input, hx=None, *, rng=None, training=False, lengths=None)`, with
    `lengths` (N,) the traced length of each sequence of a padded batch (beyond torch: the result
    packing would give, under one jit for every length pattern).

    Args:
      mode: "RNN_TANH", "RNN_RELU", "LSTM" or "GRU".
      input_size: H_in, the features of each input step.
      hidden_size: H, the features of the hidden state.
      num_layers: stacked recurrent layers, each reading the previous one's output; default 1.
      bias: learn the biases b_ih and b_hh; default True.
      batch_first: input and output are (N, L, features) instead of (L, N, features); hx and
        h_n keep (D * num_layers, N, H_out). Default: False.
      dropout: dropout on every layer's output but the last, in training (needs `rng`); default 0.
      bidirectional: also run each layer back to front and concatenate both directions (D = 2). Default: False.
      proj_size: LSTM only: > 0 projects each h_t to proj_size features (see LSTM). Default: 0.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Shape: as RNN's (LSTM's for mode "LSTM").

    Example:
      >>> layer = fl.RNNBase("GRU", 10, 20)
      >>> (out, h_n), _ = layer.apply(*layer.init(key), jnp.ones((5, 3, 10)))
      >>> out.shape, h_n.shape
      ((5, 3, 20), (1, 3, 20))
    """
    del device
    return _rnn_layer("RNNBase", mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                      bidirectional, proj_size, dtype)


def RNN(input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh", bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
        dtype: Any = None, **kwargs: Any) -> Layer:
    """Multi-layer Elman RNN, h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh); torch.nn.RNN.

    Args:
      input_size: H_in, the features of each input step.
      hidden_size: H, the features of the hidden state.
      num_layers: stacked recurrent layers, each reading the previous one's output; default 1.
      nonlinearity: "tanh" (default) or "relu".
      bias: learn the biases b_ih and b_hh; default True.
      batch_first: input and output are (N, L, features) instead of (L, N, features); hx and
        h_n keep (D * num_layers, N, H_out). Default: False.
      dropout: dropout on every layer's output but the last, in training (needs `rng`); default 0.
      bidirectional: also run each layer back to front and concatenate both directions (D = 2). Default: False.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).
      **kwargs: none is accepted; `proj_size` raises torch's ValueError (LSTM only).

    Forward: `apply(params, state, input, hx=None, *, rng=None, training=False, lengths=None)` ->
      `((output, h_n), state)`; `lengths` (N,): traced sequence lengths of a padded batch (beyond
      torch: output zero past each length, h_n at each last step, as packing gives).

    Shape: input (L, N, H_in) (or (N, L, H_in) with batch_first, or unbatched (L, H_in)), hx
      (D * num_layers, N, H_out) -> output (L, N, D * H_out) and h_n (D * num_layers, N, H_out),
      with D = 2 if bidirectional else 1. A PackedSequence in gives a PackedSequence out.

    Example:
      >>> rnn = fl.RNN(10, 20, 2)
      >>> params, state = rnn.init(jax.random.PRNGKey(0))
      >>> (output, h_n), _ = rnn.apply(params, state, jnp.ones((5, 3, 10)))
      >>> output.shape, h_n.shape
      ((5, 3, 20), (2, 3, 20))
    """
    del device
    if "proj_size" in kwargs:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if kwargs:
        raise TypeError(f"RNN got unexpected keyword arguments {sorted(kwargs)}.")
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    extra = "" if nonlinearity == "tanh" else ", nonlinearity=relu"
    mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
    return _rnn_layer("RNN", mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                      0, dtype, extra)


def LSTM(input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, batch_first: bool = False,
         dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0, device: Any = None,
         dtype: Any = None) -> Layer:
    """Multi-layer LSTM (gates i, f, g, o), with optional projections h = W_hr h; torch.nn.LSTM.

    Args:
      input_size: H_in, the features of each input step.
      hidden_size: H, the features of the hidden state.
      num_layers: stacked recurrent layers, each reading the previous one's output; default 1.
      bias: learn the biases b_ih and b_hh; default True.
      batch_first: input and output are (N, L, features) instead of (L, N, features); hx and
        h_n keep (D * num_layers, N, H_out). Default: False.
      dropout: dropout on every layer's output but the last, in training (needs `rng`); default 0.
      bidirectional: also run each layer back to front and concatenate both directions (D = 2). Default: False.
      proj_size: > 0 projects each h_t to proj_size features (weight_hr_l{k}), which then
        is H_out; default 0, no projection.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Forward: `apply(params, state, input, hx=None, *, rng=None, training=False, lengths=None)` ->
      `((output, (h_n, c_n)), state)`; hx is `(h_0, c_0)` with c_0 (D * num_layers, N, hidden_size).

    Shape: input (L, N, H_in) (or (N, L, H_in) with batch_first, or unbatched (L, H_in)), hx
      (D * num_layers, N, H_out) -> output (L, N, D * H_out) and h_n (D * num_layers, N, H_out),
      with D = 2 if bidirectional else 1. A PackedSequence in gives a PackedSequence out.

    Example:
      >>> x = jnp.ones((3, 5, 10))
      >>> lstm = fl.LSTM(10, 20, num_layers=2, batch_first=True)
      >>> params, state = lstm.init(jax.random.PRNGKey(0))
      >>> (output, (h_n, c_n)), _ = lstm.apply(params, state, x, lengths=jnp.array([5, 3, 2]))
      >>> output.shape, h_n.shape, c_n.shape
      ((3, 5, 20), (2, 3, 20), (2, 3, 20))
    """
    del device
    return _rnn_layer("LSTM", "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                      bidirectional, proj_size, dtype)


def GRU(input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, batch_first: bool = False,
        dropout: float = 0.0, bidirectional: bool = False, device: Any = None, dtype: Any = None,
        **kwargs: Any) -> Layer:
    """Multi-layer GRU (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))); torch.nn.GRU.

    Forward: as RNN's.

    Args:
      input_size: H_in, the features of each input step.
      hidden_size: H, the features of the hidden state.
      num_layers: stacked recurrent layers, each reading the previous one's output; default 1.
      bias: learn the biases b_ih and b_hh; default True.
      batch_first: input and output are (N, L, features) instead of (L, N, features); hx and
        h_n keep (D * num_layers, N, H_out). Default: False.
      dropout: dropout on every layer's output but the last, in training (needs `rng`); default 0.
      bidirectional: also run each layer back to front and concatenate both directions (D = 2). Default: False.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).
      **kwargs: none is accepted; `proj_size` raises torch's ValueError (LSTM only).

    Shape: input (L, N, H_in) (or (N, L, H_in) with batch_first, or unbatched (L, H_in)), hx
      (D * num_layers, N, H_out) -> output (L, N, D * H_out) and h_n (D * num_layers, N, H_out),
      with D = 2 if bidirectional else 1. A PackedSequence in gives a PackedSequence out.

    Example:
      >>> gru = fl.GRU(10, 20, 2)
      >>> (output, h_n), _ = gru.apply(*gru.init(jax.random.PRNGKey(0)), jnp.ones((5, 3, 10)))
      >>> output.shape, h_n.shape
      ((5, 3, 20), (2, 3, 20))
    """
    del device
    if "proj_size" in kwargs:
        raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
    if kwargs:
        raise TypeError(f"GRU got unexpected keyword arguments {sorted(kwargs)}.")
    return _rnn_layer("GRU", "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                      0, dtype)


__all__ = ["RNNBase", "RNN", "LSTM", "GRU"]
