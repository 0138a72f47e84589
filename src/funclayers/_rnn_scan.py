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
- LSTM without projection: the tangent is paired with a hand-written backward loop through
  `_kernels._primitive.linear_call` (`_lstm_transpose`), which computes each step's coefficients
  from the stored activations inside the loop. JAX's transpose of the tangent read ten arrays of
  coefficients computed over all steps before the loop. CPU time per training step of
  LSTM(128, 256), batch 32, one process alternating (loaded 2-core machine): length 64 69.4 ->
  65.2 ms, length 512 739 -> 692 ms, 2 layers bidirectional (batch 16) 242 -> 200-218 ms.
- LSTM without projection or mask: the forward loop that keeps the activations writes each step's
  over that step's input gates, in a buffer it carries (`lax.fori_loop`), instead of stacking
  them into a zero-filled output array (see `_forward`).
- LSTM without projection: the backward loop writes each gate block's gradient in place into a
  (B, 4H) buffer it carries, instead of concatenating the four blocks, and reads the forget gate
  for the cell-state carry after them (see `_zero_after`), so that XLA computes the carry's
  gradient once per step and copies no carry. Wall time of LSTM(128, 256) (32, 64) fwd + bwd, one
  process, 2-core machine: 38.3-38.9 -> 36.4-37.1 ms in its fast periods, 47.8-48.1 -> 44.9-45.6
  in its slow ones; 2 layers bidirectional (batch 16) -6% (benchmarks/README.md, helper `lstm3`).
  Same values.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from ._kernels._primitive import linear_call
from ._utils import varying_like

_PRECISION = lax.Precision.HIGHEST


def _dot_t(x: jax.Array, weight: jax.Array) -> jax.Array:
    """x @ weight.T over the last axis of x."""
    return lax.dot_general(x, weight, (((x.ndim - 1,), (1,)), ((), ())), precision=_PRECISION)


def _forward(mode, xs, h0, c0, w_hh, b_hn, w_hr, valid, keep):
    """The loop. With keep, also the residuals the tangent needs: per step the gate activations
    (LSTM: sigmoid(i), sigmoid(f), tanh(g), sigmoid(o); GRU: r, z, n and the hidden n-gate), and the
    carried h and c after the step."""
    hidden = h0.shape[-1] if w_hr is None else w_hr.shape[1]
    if mode == "LSTM":
        # sigmoid(x) = (tanh(x / 2) + 1) / 2: the four gates' activations are one tanh over the (B, 4H)
        # pre-activations, scaled per column (i, f, o by 1/2, g by 1), with no concatenation of the
        # stored activations: one fusion per step instead of four (+ a concatenate). Measured at
        # length 512 (LSTM(128, 256), batch 32): forward 111 -> 75 ms, forward + backward 197 -> 181 ms.
        g = jnp.arange(4 * hidden) // hidden == 2
        scale = jnp.where(g, 1.0, 0.5).astype(xs.dtype)
        shift = jnp.where(g, 0.0, 0.5).astype(xs.dtype)

    # h @ W_hh^T with W_hh^T laid out once, before the loop: XLA:CPU's dot of a (B, H) by an
    # (H, G) row-major operand runs faster than by the transposed view of W_hh (68 -> 53 us per
    # step at B 32, H 256, G 1024); the barrier keeps XLA from folding the transpose back.
    w_hh_t = lax.optimization_barrier(jnp.transpose(w_hh))

    def step(carry, inputs):
        h, c = carry
        gates, ok = inputs
        h_gates = lax.dot_general(h, w_hh_t, (((h.ndim - 1,), (0,)), ((), ())), precision=_PRECISION)
        res = ()
        if mode == "LSTM":
            pre = gates + h_gates
            acts = scale * jnp.tanh(pre * scale) + shift
            s_if, t_g, s_o = acts[..., : 2 * hidden], acts[..., 2 * hidden : 3 * hidden], acts[..., 3 * hidden :]
            c_new = s_if[..., hidden:] * c + s_if[..., :hidden] * t_g
            h_new = s_o * jnp.tanh(c_new)
            if w_hr is not None:
                h_new = _dot_t(h_new, w_hr)
            res = (acts,)
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

    if keep and mode == "LSTM" and w_hr is None and valid is None and xs.dtype == h0.dtype == c0.dtype == w_hh.dtype:
        # step t's activations written over step t's input gates (read just before) in a buffer the
        # loop carries, h and c into carried buffers too: no zero-filled (T, B, 4H) output buffer
        # and no copy of it, and the store hits the row the step has just read. Same values; wall
        # time of LSTM(128, 256) (32, 64) fwd + bwd -1.5 ms (39.7 -> 38.3) on the 2-core machine
        # (benchmarks/README.md, helper `lstm2`)
        def step_in_place(t, carry):
            h, c, stored, hs, cs = carry
            gates = lax.dynamic_index_in_dim(stored, t, keepdims=False)
            (h_new, c_new), (_, (acts, _, _)) = step((h, c), (gates, None))
            stored = lax.dynamic_update_index_in_dim(stored, acts, t, 0)
            hs = lax.dynamic_update_index_in_dim(hs, h_new, t, 0)
            cs = lax.dynamic_update_index_in_dim(cs, c_new, t, 0)
            return h_new, c_new, stored, hs, cs

        buffers = jnp.zeros(xs.shape[:-1] + (hidden,), xs.dtype)
        carry0 = varying_like((h0, c0, xs, buffers, buffers), xs, h0, c0, w_hh)
        h_n, c_n, acts, hs, cs = lax.fori_loop(0, xs.shape[0], step_in_place, carry0)
        return hs, h_n, c_n, (acts, hs, cs)
    carry0 = varying_like((h0, c0 if c0 is not None else jnp.zeros((), h0.dtype)), xs, h0, c0, w_hh, b_hn, w_hr, valid)
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
    if mode == "LSTM" and w_hr is None:
        # the tangent paired with a hand-written backward loop (see _lstm_transpose)
        consts = (res[0], res[1], res[2], h0, c0, w_hh) + (() if valid is None else (valid,))

        def tangent(acts, hs, cs, h0, c0, w_hh, *rest):
            ok = rest[0] if valid is not None else None
            dxs, dh0, dc0, dw_hh = rest[-4:]
            return _tangent(mode, (acts, hs, cs), (h0, c0, w_hh, None, None, ok), (dxs, dh0, dc0, dw_hh, None, None))

        dys, dh_n, dc_n = linear_call(tangent, _lstm_transpose, consts, (dxs, dh0, dc0, dw_hh), "lstm_recurrence")
        return (ys, h_n, c_n), (dys, dh_n, dc_n)
    return (ys, h_n, c_n), _tangent(mode, res, (h0, c0, w_hh, b_hn, w_hr, valid), (dxs, dh0, dc0, dw_hh, db_hn, dw_hr))


def _tangent(mode, res, primals, tangents):
    """The tangent loop: (dys, dh_n, dc_n) for the residuals of `_forward(keep=True)`, linear in tangents."""
    h0, c0, w_hh, b_hn, w_hr, valid = primals
    dxs, dh0, dc0, dw_hh, db_hn, dw_hr = tangents
    hs, cs = res[-2], res[-1]
    h_prev = _shift(h0, hs)
    # the weights' tangents as inputs of the loop: one product over every step, outside it
    u = _dot_t(h_prev, dw_hh)
    if mode == "GRU" and b_hn is not None:
        u = u + db_hn
    if mode != "GRU":
        u = u + dxs
    # every coefficient of the tangent loop computed here, over all steps at once, and fed to the
    # loop as its own array: an op on these inside the loop would be hoisted by JAX's partial
    # evaluation into a second serial loop that writes each result step by step (measured: the
    # backward at length 512 took 3.5x the forward that way)
    if mode == "LSTM":
        acts = res[0]
        hidden = cs.shape[-1]
        s_i, s_f = acts[..., :hidden], acts[..., hidden : 2 * hidden]
        t_g, s_o = acts[..., 2 * hidden : 3 * hidden], acts[..., 3 * hidden :]
        sig = jnp.concatenate([s_i, s_f, s_o], axis=-1)
        slope_sig = sig * (1 - sig)
        slope = jnp.concatenate([slope_sig[..., : 2 * hidden], 1 - t_g * t_g, slope_sig[..., 2 * hidden :]], -1)
        tanh_c = jnp.tanh(cs)
        p = None
        if w_hr is not None:
            p = _dot_t(s_o * tanh_c, dw_hr)
        extra = (slope, _shift(c0, cs), s_f, t_g, s_i, tanh_c, s_o * (1 - tanh_c * tanh_c), p)
    elif mode == "GRU":
        acts, h_n_gate = res[0], res[1]
        hidden = h_n_gate.shape[-1]
        r, z, n = acts[..., :hidden], acts[..., hidden : 2 * hidden], acts[..., 2 * hidden :]
        rz = acts[..., : 2 * hidden]
        extra = (rz * (1 - rz), 1 - n * n, h_n_gate, r, h_prev - n, z, dxs)
    else:
        extra = ((1 - hs * hs) if mode == "RNN_TANH" else (hs > 0).astype(hs.dtype),)

    def step(carry, inputs):
        dh, dc = carry
        u_t, ok, ex = inputs
        d_gates = _dot_t(dh, w_hh) + u_t
        if mode == "LSTM":
            slope_t, c_before, s_f_t, t_g_t, s_i_t, tc, k_t, p_t = ex
            hidden = tc.shape[-1]
            d_act = slope_t * d_gates
            di, df = d_act[..., :hidden], d_act[..., hidden : 2 * hidden]
            dg, do = d_act[..., 2 * hidden : 3 * hidden], d_act[..., 3 * hidden :]
            dc_new = df * c_before + s_f_t * dc + di * t_g_t + s_i_t * dg
            dh_new = do * tc + k_t * dc_new
            if p_t is not None:
                dh_new = _dot_t(dh_new, w_hr) + p_t
        elif mode == "GRU":
            slope_rz, slope_n, h_n_gate, r, h_minus_n, z, dx_t = ex
            hidden = r.shape[-1]
            d_rz = slope_rz * (dx_t[..., : 2 * hidden] + d_gates[..., : 2 * hidden])
            dr, dz = d_rz[..., :hidden], d_rz[..., hidden:]
            dn = slope_n * (dx_t[..., 2 * hidden :] + dr * h_n_gate + r * d_gates[..., 2 * hidden :])
            dh_new, dc_new = dn + dz * h_minus_n + z * (dh - dn), dc
        else:
            (slope_t,) = ex
            dh_new, dc_new = slope_t * d_gates, dc
        if ok is None:
            return (dh_new, dc_new), dh_new
        dh_new = jnp.where(ok, dh_new, dh)
        if mode == "LSTM":
            dc_new = jnp.where(ok, dc_new, dc)
        return (dh_new, dc_new), jnp.where(ok, dh_new, jnp.zeros_like(dh_new))

    carry0 = varying_like((dh0, dc0 if c0 is not None else jnp.zeros((), dh0.dtype)), u, valid, extra, w_hh, w_hr)
    (dh_n, dc_n), dys = lax.scan(step, carry0, (u, valid, extra))
    return dys, dh_n, (dc_n if c0 is not None else None)


def _zero_after(x: jax.Array) -> jax.Array:
    """An int32 0 computed from one element of x. Added to an index, it makes the indexing op depend
    on x, which orders it (and what reads its result) after x's producer in XLA's program; an
    `optimization_barrier` orders nothing there (XLA:CPU drops it)."""
    width = 8 * x.dtype.itemsize
    bits = lax.bitcast_convert_type(lax.stop_gradient(x.reshape(-1)[0]), jnp.dtype(f"int{width}"))
    sign = lax.shift_right_logical(bits, jnp.array(width - 1, bits.dtype))  # 0 or 1
    return jnp.minimum(sign, 0).astype(jnp.int32)


def _lstm_transpose(cts, acts, hs, cs, h0, c0, w_hh, *valid):
    """The backward loop of an LSTM without projection: the transpose of its tangent, written out.

    JAX's transpose of the tangent loop reads ten coefficient arrays that the tangent computes over
    all steps before its loop (computed inside, partial evaluation would move them into a loop of
    their own). Written by hand, each step computes what it needs from the stored gate activations
    and cell states: no array is computed outside the loop but the gate gradients it writes, and
    W_hh's gradient is one product over all steps after it. Returns the cotangents of (xs, h0,
    c0, w_hh).
    """
    ct_ys, ct_h, ct_c = cts
    ok_all = valid[0] if valid else None
    hidden = cs.shape[-1]
    steps = cs.shape[0]

    def step(carry, inputs):
        gh, gc, d_gates = carry  # d_gates: the previous step's, overwritten block by block
        t, ct_y, a, c_t, ok = inputs
        c_before = jnp.where(t > 0, lax.dynamic_index_in_dim(cs, jnp.maximum(t - 1, 0), keepdims=False), c0)
        s_i, s_f = a[..., :hidden], a[..., hidden : 2 * hidden]
        t_g, s_o = a[..., 2 * hidden : 3 * hidden], a[..., 3 * hidden :]
        g_h = gh + ct_y
        tanh_c = jnp.tanh(c_t)
        g_c = gc + g_h * s_o * (1 - tanh_c * tanh_c)
        # each gate block's gradient, times its activation's slope, in a fusion of its own that writes
        # it in place into a (B, 4H) buffer the loop carries: no concatenate (a pass of its own over
        # the (B, 4H) result, 12-46 us per step) and no select between the slopes. One fusion for the
        # four blocks (zero-padded sums, or a where of tiled factors) evaluates every block at each
        # element and was slower (benchmarks/README.md, helpers `lstm`, `lstm2`, `lstm3`). Same values.
        blocks = (g_c * t_g, g_c * c_before, g_c * s_i, g_h * tanh_c)
        for k, (block, act) in enumerate(zip(blocks, (s_i, s_f, t_g, s_o))):
            slope = 1 - act * act if k == 2 else act * (1 - act)  # tanh's for g, sigmoid's for i, f, o
            d_gates = lax.dynamic_update_slice_in_dim(d_gates, block * slope, k * hidden, axis=-1)
        buffer = d_gates
        # s_f read after the last block is written: XLA then computes g_c once (instead of in each
        # block's fusion) and writes the new carry in place, with no copy of the old one at the
        # start of each step (before: two copies). Wall -1.4 to -1.7 ms in the fast periods, -1.0 to
        # -1.7 ms in the slow ones (benchmarks/README.md, `lstm3`). Same values.
        s_f = lax.dynamic_slice_in_dim(a, hidden + _zero_after(d_gates), hidden, axis=-1)
        gc_before = g_c * s_f
        if ok is not None:
            d_gates = jnp.where(ok, d_gates, jnp.zeros_like(d_gates))
            gc_before = jnp.where(ok, gc_before, gc)
        gh_before = lax.dot_general(d_gates, w_hh, (((d_gates.ndim - 1,), (0,)), ((), ())), precision=_PRECISION)
        if ok is not None:
            gh_before = jnp.where(ok, gh_before, gh)
        return (gh_before, gc_before, buffer), d_gates

    carry0 = varying_like((ct_h, ct_c, jnp.zeros(acts.shape[1:], acts.dtype)), ct_ys, acts, cs, h0, c0, w_hh, *valid)
    (g_h0, g_c0, _), d_gates = lax.scan(step, carry0, (jnp.arange(steps), ct_ys, acts, cs, ok_all), reverse=True)
    h_prev = _shift(h0, hs)
    d_w_hh = lax.dot_general(d_gates, h_prev, (((0, 1), (0, 1)), ((), ())), precision=_PRECISION)
    return [d_gates, g_h0, g_c0, d_w_hh]
