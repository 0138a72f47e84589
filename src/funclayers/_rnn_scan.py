"""The recurrence over time of one direction of a recurrent layer, with a closed-form tangent.

`recurrence(mode, xs, h0, c0, w_hh, b_hn, w_hr, valid) -> (ys, h_n, c_n)` runs one `lax.scan` over
time. Its derivative is a `jax.custom_jvp` whose tangent rule is plain, linear JAX (so forward
mode, jvp, jacfwd and the Hessian work, and JAX transposes the rule for reverse mode):

- the terms of the weights' tangents, `h_{t-1} dW_hh^T` (and `m_t dW_hr^T` for LSTM projections),
  are one matrix product over all time steps *outside* the loop. Transposed, the weight gradients
  are one product over all steps too, instead of an accumulation inside the backward loop (which
  is what differentiating the scan directly gives: one more small product per step);
- the loop of the tangent carries only (dh, dc), reading the gate activations that the forward
  loop stored; its transpose is the backward loop, with one product by W_hh per step.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

_PRECISION = lax.Precision.HIGHEST


def _dot_t(x: jax.Array, weight: jax.Array) -> jax.Array:
    """x @ weight.T over the last axis of x."""
    return lax.dot_general(x, weight, (((x.ndim - 1,), (1,)), ((), ())), precision=_PRECISION)


def _forward(mode, xs, h0, c0, w_hh, b_hn, w_hr, valid, keep):
    """The loop. With keep, also the residuals the tangent needs: per step the gate activations
    (LSTM: sigmoid(i), sigmoid(f), tanh(g), sigmoid(o); GRU: r, z, n and the hidden n-gate), and the
    carried h and c after the step."""
    hidden = h0.shape[-1] if w_hr is None else w_hr.shape[1]

    def step(carry, inputs):
        h, c = carry
        gates, ok = inputs
        h_gates = _dot_t(h, w_hh)
        res = ()
        if mode == "LSTM":
            pre = gates + h_gates
            s_if = jax.nn.sigmoid(pre[..., : 2 * hidden])
            t_g = jnp.tanh(pre[..., 2 * hidden : 3 * hidden])
            s_o = jax.nn.sigmoid(pre[..., 3 * hidden :])
            c_new = s_if[..., hidden:] * c + s_if[..., :hidden] * t_g
            h_new = s_o * jnp.tanh(c_new)
            if w_hr is not None:
                h_new = _dot_t(h_new, w_hr)
            res = (jnp.concatenate([s_if, t_g, s_o], axis=-1),)
        elif mode == "GRU":
            if b_hn is not None:
                h_gates = h_gates + b_hn
            rz = jax.nn.sigmoid(gates[..., : 2 * hidden] + h_gates[..., : 2 * hidden])
            h_n = h_gates[..., 2 * hidden :]
            n = jnp.tanh(gates[..., 2 * hidden :] + rz[..., :hidden] * h_n)
            h_new, c_new = n + rz[..., hidden:] * (h - n), c
            res = (jnp.concatenate([rz, n], axis=-1), h_n)
        else:
            pre = gates + h_gates
            h_new, c_new = (jnp.tanh(pre) if mode == "RNN_TANH" else jax.nn.relu(pre)), c
        if ok is None:
            y = h_new
        else:
            h_new = jnp.where(ok, h_new, h)
            if mode == "LSTM":
                c_new = jnp.where(ok, c_new, c)
            y = jnp.where(ok, h_new, jnp.zeros_like(h_new))
        if not keep:
            return (h_new, c_new), (y, ())
        # unmasked, the output is the carried h: stored once
        return (h_new, c_new), (() if ok is None else y, res + (h_new, c_new))

    carry0 = (h0, c0 if c0 is not None else jnp.zeros((), h0.dtype))
    (h_n, c_n), (ys, res) = lax.scan(step, carry0, (xs, valid))
    if keep and valid is None:
        ys = res[-2]
    return ys, h_n, (c_n if c0 is not None else None), res


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def recurrence(mode, xs, h0, c0, w_hh, b_hn, w_hr, valid):
    """One direction: xs (T, B, G) input gates in processing order, h0 (B, H_out), c0 (B, H) or None,
    w_hh (G, H_out), b_hn (G,) GRU's hidden bias (zero but for the n gate) or None, w_hr (P, H) or
    None, valid (T, B, 1) bool or None -> ys (T, B, H_out), h_n, c_n."""
    ys, h_n, c_n, _ = _forward(mode, xs, h0, c0, w_hh, b_hn, w_hr, valid, keep=False)
    return ys, h_n, c_n


def _shift(first, stacked):
    """The state before each step: first, then every step's state but the last."""
    return jnp.concatenate([first[None], stacked[:-1]], axis=0)


@recurrence.defjvp
def _recurrence_jvp(mode, primals, tangents):
    xs, h0, c0, w_hh, b_hn, w_hr, valid = primals
    dxs, dh0, dc0, dw_hh, db_hn, dw_hr, _ = tangents
    ys, h_n, c_n, res = _forward(mode, xs, h0, c0, w_hh, b_hn, w_hr, valid, keep=True)
    hs, cs = res[-2], res[-1]
    h_prev = _shift(h0, hs)
    # the weights' tangents as inputs of the loop: one product over every step, outside it
    u = _dot_t(h_prev, dw_hh)
    if mode == "GRU" and b_hn is not None:
        u = u + db_hn
    if mode != "GRU":
        u = u + dxs
    if mode == "LSTM":
        acts = res[0]
        hidden = cs.shape[-1]
        c_prev = _shift(c0, cs)
        tanh_c = jnp.tanh(cs)
        p = None
        if w_hr is not None:
            p = _dot_t(acts[..., 3 * hidden :] * tanh_c, dw_hr)
        extra = (acts, c_prev, tanh_c, p)
    elif mode == "GRU":
        extra = (res[0], res[1], h_prev, dxs)
    else:
        extra = (hs,)

    def step(carry, inputs):
        dh, dc = carry
        u_t, ok, ex = inputs
        d_gates = _dot_t(dh, w_hh) + u_t
        if mode == "LSTM":
            act, c_before, tc, p_t = ex
            hidden = tc.shape[-1]
            s_i, s_f = act[..., :hidden], act[..., hidden : 2 * hidden]
            t_g, s_o = act[..., 2 * hidden : 3 * hidden], act[..., 3 * hidden :]
            di = s_i * (1 - s_i) * d_gates[..., :hidden]
            df = s_f * (1 - s_f) * d_gates[..., hidden : 2 * hidden]
            dg = (1 - t_g * t_g) * d_gates[..., 2 * hidden : 3 * hidden]
            do = s_o * (1 - s_o) * d_gates[..., 3 * hidden :]
            dc_new = df * c_before + s_f * dc + di * t_g + s_i * dg
            dh_new = do * tc + s_o * (1 - tc * tc) * dc_new
            if p_t is not None:
                dh_new = _dot_t(dh_new, w_hr) + p_t
        elif mode == "GRU":
            act, h_n_gate, h_before, dx_t = ex
            hidden = h_before.shape[-1]
            r, z, n = act[..., :hidden], act[..., hidden : 2 * hidden], act[..., 2 * hidden :]
            dr = r * (1 - r) * (dx_t[..., :hidden] + d_gates[..., :hidden])
            dz = z * (1 - z) * (dx_t[..., hidden : 2 * hidden] + d_gates[..., hidden : 2 * hidden])
            dn = (1 - n * n) * (dx_t[..., 2 * hidden :] + dr * h_n_gate + r * d_gates[..., 2 * hidden :])
            dh_new, dc_new = dn + dz * (h_before - n) + z * (dh - dn), dc
        else:
            (h_t,) = ex
            slope = (1 - h_t * h_t) if mode == "RNN_TANH" else (h_t > 0).astype(h_t.dtype)
            dh_new, dc_new = slope * d_gates, dc
        if ok is None:
            return (dh_new, dc_new), dh_new
        dh_new = jnp.where(ok, dh_new, dh)
        if mode == "LSTM":
            dc_new = jnp.where(ok, dc_new, dc)
        return (dh_new, dc_new), jnp.where(ok, dh_new, jnp.zeros_like(dh_new))

    carry0 = (dh0, dc0 if c0 is not None else jnp.zeros((), dh0.dtype))
    (dh_n, dc_n), dys = lax.scan(step, carry0, (u, valid, extra))
    return (ys, h_n, c_n), (dys, dh_n, dc_n if c0 is not None else None)
