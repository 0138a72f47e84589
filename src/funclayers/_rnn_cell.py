"""Recurrent cells: RNNCell, LSTMCell, GRUCell and their functional steps (torch.nn.modules.rnn, torch._VF).

One time step of the recurrent layers of _rnn.py, with the same parameter names, shapes and gate
order as torch (LSTM gates i, f, g, o; GRU gates r, z, n with `b_hn` inside the reset product), so a
torch `state_dict` loads unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from . import init as _init
from ._layer import Layer
from ._linear import LINEAR_DTYPE_MESSAGES
from ._rnn import _affine
from ._utils import TorchRuntimeError, check_floating, check_param_dtypes, compute_dtype, fmt_shape, param_dtype

# -- the step functions (torch's _VF cells) ----------------------------------------------------------------



def _lstm_update(gates: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def _gru_update(x_gates: jax.Array, h_gates: jax.Array, h: jax.Array) -> jax.Array:
    """GRU from the input's gates and the hidden state's gates (b_hn already inside h_gates)."""
    hidden = h.shape[-1]
    rz = jax.nn.sigmoid(x_gates[..., : 2 * hidden] + h_gates[..., : 2 * hidden])
    r, z = rz[..., :hidden], rz[..., hidden:]
    n = jnp.tanh(x_gates[..., 2 * hidden :] + r * h_gates[..., 2 * hidden :])
    return n + z * (h - n)


def _cell_args(who: str, input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> tuple:
    check_floating(who, input)
    x = jnp.asarray(input)
    # torch's cells multiply with addmm (its "mat1 and mat2" check); no cast
    check_param_dtypes(who, x, (w_ih, w_hh, b_ih, b_hh), LINEAR_DTYPE_MESSAGES["addmm"])
    w_ih, w_hh, b_ih, b_hh = (None if a is None else jnp.asarray(a) for a in (w_ih, w_hh, b_ih, b_hh))
    return x, w_ih, w_hh, b_ih, b_hh

def rnn_tanh_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> jax.Array:
    """One Elman step h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); torch.rnn_tanh_cell.

    Args:
      input: x, the step's input.
      hx: h, the hidden state.
      w_ih: the input-hidden weight (an RNNCell's weight_ih).
      w_hh: the hidden-hidden weight (an RNNCell's weight_hh).
      b_ih: the input-hidden bias, or None for none. Default: None.
      b_hh: the hidden-hidden bias, or None for none. Default: None.

    Shape: input (B, I), hx (B, H), w_ih (H, I), w_hh (H, H), biases (H,) -> (B, H).

    Example:
      >>> params, x, h = fl.RNNCell(10, 20).init(key)[0], jnp.ones((3, 10)), jnp.zeros((3, 20))
      >>> h = F.rnn_tanh_cell(x, h, params["weight_ih"], params["weight_hh"], params["bias_ih"], params["bias_hh"])
      >>> h.shape
      (3, 20)
    """
    x, w_ih, w_hh, b_ih, b_hh = _cell_args("rnn_tanh_cell", input, hx, w_ih, w_hh, b_ih, b_hh)
    return jnp.tanh(_affine(x, w_ih, b_ih) + _affine(jnp.asarray(hx, x.dtype), w_hh, b_hh))


def rnn_relu_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> jax.Array:
    """One Elman step with relu, h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh); torch.rnn_relu_cell.

    Args:
      input: x, the step's input.
      hx: h, the hidden state.
      w_ih: the input-hidden weight (an RNNCell's weight_ih).
      w_hh: the hidden-hidden weight (an RNNCell's weight_hh).
      b_ih: the input-hidden bias, or None for none. Default: None.
      b_hh: the hidden-hidden bias, or None for none. Default: None.

    Shape: input (B, I), hx (B, H), w_ih (H, I), w_hh (H, H), biases (H,) -> (B, H).

    Example:
      >>> p = fl.RNNCell(10, 20, nonlinearity="relu").init(jax.random.PRNGKey(0))[0]
      >>> F.rnn_relu_cell(jnp.ones((3, 10)), jnp.zeros((3, 20)), *p.values()).shape
      (3, 20)
    """
    x, w_ih, w_hh, b_ih, b_hh = _cell_args("rnn_relu_cell", input, hx, w_ih, w_hh, b_ih, b_hh)
    return jax.nn.relu(_affine(x, w_ih, b_ih) + _affine(jnp.asarray(hx, x.dtype), w_hh, b_hh))


def lstm_cell(input: Any, hx: tuple[Any, Any], w_ih: Any, w_hh: Any, b_ih: Any = None,
              b_hh: Any = None) -> tuple[jax.Array, jax.Array]:
    """One LSTM step (gates i, f, g, o as torch stacks them); torch.lstm_cell.

    Args:
      input: x, the step's input.
      hx: the pair (h, c), hidden and cell state.
      w_ih: the input-hidden weight, the four gates stacked (an LSTMCell's weight_ih).
      w_hh: the hidden-hidden weight, the four gates stacked (an LSTMCell's weight_hh).
      b_ih: the input-hidden bias, or None for none. Default: None.
      b_hh: the hidden-hidden bias, or None for none. Default: None.

    Shape: input (B, I), hx = (h (B, H), c (B, H)), w_ih (4H, I), w_hh (4H, H), biases (4H,)
      -> (h', c').

    Example:
      >>> p, (x, h, c) = fl.LSTMCell(10, 20).init(key)[0], (jnp.ones((3, 10)), jnp.zeros((3, 20)), jnp.zeros((3, 20)))
      >>> h, c = F.lstm_cell(x, (h, c), p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
      >>> h.shape, c.shape
      ((3, 20), (3, 20))
    """
    x, w_ih, w_hh, b_ih, b_hh = _cell_args("lstm_cell", input, hx, w_ih, w_hh, b_ih, b_hh)
    h, c = (jnp.asarray(v, x.dtype) for v in hx)
    return _lstm_update(_affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh), c)


def gru_cell(input: Any, hx: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> jax.Array:
    """One GRU step (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))); torch.gru_cell.

    Args:
      input: x, the step's input.
      hx: h, the hidden state.
      w_ih: the input-hidden weight, the three gates stacked (a GRUCell's weight_ih).
      w_hh: the hidden-hidden weight, the three gates stacked (a GRUCell's weight_hh).
      b_ih: the input-hidden bias, or None for none. Default: None.
      b_hh: the hidden-hidden bias, or None for none. Default: None.

    Shape: input (B, I), hx (B, H), w_ih (3H, I), w_hh (3H, H), biases (3H,) -> (B, H).

    Example:
      >>> p = fl.GRUCell(10, 20).init(jax.random.PRNGKey(0))[0]
      >>> F.gru_cell(jnp.ones((3, 10)), jnp.zeros((3, 20)), *p.values()).shape
      (3, 20)
    """
    x, w_ih, w_hh, b_ih, b_hh = _cell_args("gru_cell", input, hx, w_ih, w_hh, b_ih, b_hh)
    h = jnp.asarray(hx, x.dtype)
    return _gru_update(_affine(x, w_ih, b_ih), _affine(h, w_hh, b_hh), h)


# -- the cell layers ---------------------------------------------------------------------------------------------


def _cell_layer(kind: str, chunks: int, input_size: int, hidden_size: int, bias: bool, dtype: Any, step,
                extra: str = "") -> Layer:
    for label, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{kind}: {label} must be a non-negative int, got {value!r}.")
    name = f"{kind}({input_size}, {hidden_size}" + ("" if bias else ", bias=False") + f"{extra})"
    pdtype = param_dtype(dtype)
    shapes = {"weight_ih": (chunks * hidden_size, input_size), "weight_hh": (chunks * hidden_size, hidden_size)}
    if bias:
        shapes.update(bias_ih=(chunks * hidden_size,), bias_hh=(chunks * hidden_size,))
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    lstm = kind == "LSTMCell"

    def init(rng):
        keys = jax.random.split(rng, len(shapes))
        return {n: _init.uniform(k, s, pdtype, -bound, bound) for (n, s), k in zip(shapes.items(), keys)}, {}

    def check_state(states, batch):
        for idx, h in enumerate(states):
            shape = fmt_shape(h)
            if len(shape) != 2:
                raise TorchRuntimeError(f"{name}: hidden{idx} must be 1D for an unbatched input and 2D for a "
                                        f"batched one, got shape {shape[1:] if shape[:1] == (1,) else shape}.")
            if shape[0] != batch:
                raise TorchRuntimeError(f"{name}: Input batch size {batch} doesn't match hidden{idx} batch size "
                                        f"{shape[0]}")
            if shape[1] != hidden_size:
                raise TorchRuntimeError(f"{name}: hidden{idx} has inconsistent hidden_size: got {shape[1]}, "
                                        f"expected {hidden_size}")

    def apply(params, state, input, hx=None, *, rng=None, training=False):
        del rng, training
        shape = fmt_shape(input)
        if len(shape) not in (1, 2):
            raise ValueError(f"{kind}: Expected input to be 1D or 2D, got {len(shape)}D instead (input of shape "
                             f"{shape}; expected (N, {input_size}) or ({input_size},)).")
        states = None if hx is None else (tuple(hx) if lstm else (hx,))
        if states is not None:
            for idx, h in enumerate(states):
                if len(fmt_shape(h)) not in (1, 2):
                    what = f"hx[{idx}]" if lstm else "hidden"
                    raise ValueError(f"{kind}: Expected {what} to be 1D or 2D, got {len(fmt_shape(h))}D instead")
        check_floating(name, input)
        x = jnp.asarray(input)
        check_param_dtypes(name, x, (params["weight_ih"],), LINEAR_DTYPE_MESSAGES["addmm"])  # torch's addmm; no cast
        batched = x.ndim == 2
        if not batched:
            x = x[None]
            if states is not None:
                states = tuple(jnp.asarray(h)[None] for h in states)
        if x.shape[1] != input_size:
            raise TorchRuntimeError(f"{name}: input has inconsistent input_size: got {x.shape[1]} expected "
                                    f"{input_size}")
        if states is None:
            zeros = jnp.zeros((x.shape[0], hidden_size), compute_dtype(x))
            states = (zeros, zeros) if lstm else (zeros,)
        check_state(states, x.shape[0])
        args = (params["weight_ih"], params["weight_hh"], params.get("bias_ih"), params.get("bias_hh"))
        out = step(x, states if lstm else states[0], *args)
        if not batched:
            out = tuple(o[0] for o in out) if lstm else out[0]
        return out, state

    return Layer(init, apply, name)


def RNNCellBase(input_size: int, hidden_size: int, bias: bool, num_chunks: int, device: Any = None,
                dtype: Any = None) -> Layer:
    """The parameters RNNCell, LSTMCell and GRUCell share, without a forward; torch.nn.RNNCellBase.

    As torch's base class, it registers `weight_ih` (num_chunks * H, H_in), `weight_hh`
    (num_chunks * H, H) and, with `bias`, `bias_ih` and `bias_hh` (num_chunks * H,), all
    U(-1/sqrt(H), 1/sqrt(H)); its `apply` raises NotImplementedError, as torch's missing forward.

    Args:
      input_size: H_in, the features of the input.
      hidden_size: H, the features of the hidden state.
      bias: learn the biases bias_ih and bias_hh (no default, as in torch).
      num_chunks: the gates stacked in each weight (1 for RNNCell, 4 for LSTMCell, 3 for GRUCell).
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype; None means float32. Default: None.

    Shape: no forward; the params are (num_chunks * H, H_in), (num_chunks * H, H) and (num_chunks * H,).

    Example:
      >>> base = fl.RNNCellBase(10, 20, True, 4)
      >>> params, state = base.init(jax.random.PRNGKey(0))
      >>> {name: w.shape for name, w in params.items()}
      {'weight_ih': (80, 10), 'weight_hh': (80, 20), 'bias_ih': (80,), 'bias_hh': (80,)}
    """
    del device
    if isinstance(num_chunks, bool) or not isinstance(num_chunks, int) or num_chunks < 1:
        raise ValueError(f"RNNCellBase: num_chunks must be a positive int, got {num_chunks!r}.")

    def apply(params, state, *inputs, rng=None, training=False, **kwargs):
        raise NotImplementedError('RNNCellBase: Module [RNNCellBase] is missing the required "forward" function '
                                  "(as in torch, the base class has none: use RNNCell, LSTMCell or GRUCell).")

    return _cell_layer("RNNCellBase", num_chunks, input_size, hidden_size, bias, dtype, None)._replace(apply=apply)


def RNNCell(input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", device: Any = None,
            dtype: Any = None) -> Layer:
    """One Elman step, h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh); torch.nn.RNNCell.

    Args:
      input_size: H_in, the features of the input.
      hidden_size: H, the features of the hidden state.
      bias: learn the biases bias_ih and bias_hh; default True.
      nonlinearity: act, "tanh" (default) or "relu".
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Forward: `apply(params, state, input, hx=None)` -> (h', state); hx defaults to zeros.

    Shape: input (N, H_in) or (H_in,), hx (N, H) or (H,) -> (N, H) or (H,).

    Example:
      >>> cell = fl.RNNCell(10, 20)
      >>> h, _ = cell.apply(*cell.init(jax.random.PRNGKey(0)), jnp.ones((3, 10)))
      >>> h.shape
      (3, 20)
    """
    del device
    if nonlinearity not in ("tanh", "relu"):  # torch finds out at forward; a configuration error here
        raise ValueError(f"RNNCell: Unknown nonlinearity: {nonlinearity} (expected 'tanh' or 'relu').")
    step = rnn_tanh_cell if nonlinearity == "tanh" else rnn_relu_cell
    extra = "" if nonlinearity == "tanh" else ", nonlinearity=relu"
    return _cell_layer("RNNCell", 1, input_size, hidden_size, bias, dtype, step, extra)


def LSTMCell(input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None) -> Layer:
    """One LSTM step (gates i, f, g, o); torch.nn.LSTMCell.

    Args:
      input_size: H_in, the features of the input.
      hidden_size: H, the features of the hidden state.
      bias: learn the biases bias_ih and bias_hh; default True.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Forward: `apply(params, state, input, hx=None)` -> ((h', c'), state); hx = (h, c), default zeros.

    Shape: input (N, H_in) or (H_in,), h and c (N, H) or (H,) -> h', c' of the same shape.

    Example:
      >>> cell = fl.LSTMCell(10, 20)
      >>> (h, c), _ = cell.apply(*cell.init(jax.random.PRNGKey(0)), jnp.ones((3, 10)))
      >>> h.shape, c.shape
      ((3, 20), (3, 20))
    """
    del device
    return _cell_layer("LSTMCell", 4, input_size, hidden_size, bias, dtype, lstm_cell)


def GRUCell(input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None) -> Layer:
    """One GRU step (gates r, z, n); torch.nn.GRUCell.

    Args:
      input_size: H_in, the features of the input.
      hidden_size: H, the features of the hidden state.
      bias: learn the biases bias_ih and bias_hh; default True.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype. Default: None (float32).

    Forward: `apply(params, state, input, hx=None)` -> (h', state); hx defaults to zeros.

    Shape: input (N, H_in) or (H_in,), hx (N, H) or (H,) -> (N, H) or (H,).

    Example:
      >>> cell = fl.GRUCell(10, 20)
      >>> h, _ = cell.apply(*cell.init(jax.random.PRNGKey(0)), jnp.ones((3, 10)))
      >>> h.shape
      (3, 20)
    """
    del device
    return _cell_layer("GRUCell", 3, input_size, hidden_size, bias, dtype, gru_cell)

__all__ = ["RNNCellBase", "RNNCell", "LSTMCell", "GRUCell", "rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell"]
