"""Recurrent layers and packed sequences against torch: outputs, h_n/c_n, gradients w.r.t. the
input, hx and every parameter (float32 and float64), lengths= against torch's packed path, forward
mode against torch.func.jvp, vmap, dropout between layers, and torch's errors."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as trnn
from oracle import TORCH_DTYPES, assert_close, tolerance

import funclayers as fl
import funclayers.functional as F
from funclayers import rnn as frnn


def _np(t):
    return t.detach().numpy()


def _parity(module, layer, dtype, inputs, torch_fn, jax_fn, **tol):
    """Compare outputs and the gradients of sum(out * cotangent) w.r.t. inputs and parameters.

    inputs: a pytree of numpy arrays (all get gradients); torch_fn(module, torch_inputs) and
    jax_fn(params, state, inputs) return lists of arrays in the same order.
    """
    dtype = np.dtype(dtype)
    tol = tolerance(dtype, **tol)
    module = module.to(TORCH_DTYPES[dtype]).eval()
    params, state = fl.load_state_dict(layer, module.state_dict(), dtype=dtype)
    inputs = jax.tree.map(lambda a: np.asarray(a, dtype), inputs)
    t_inputs = jax.tree.map(lambda a: torch.tensor(a, requires_grad=True), inputs)
    t_out = torch_fn(module, t_inputs)
    rng = np.random.default_rng(7)
    cts = [rng.standard_normal(tuple(t.shape)).astype(dtype) for t in t_out]
    sum((t * torch.from_numpy(c)).sum() for t, c in zip(t_out, cts)).backward()

    @jax.jit
    def run(params, inputs, cts):
        out, pull = jax.vjp(lambda p, i: jax_fn(p, state, i), params, inputs)
        return out, pull(cts)

    out, (g_params, g_inputs) = run(params, jax.tree.map(jnp.asarray, inputs), [jnp.asarray(c) for c in cts])
    assert len(out) == len(t_out)
    for i, (a, b) in enumerate(zip(out, t_out)):
        assert_close(a, b, f"output[{i}]", **tol)
    for i, (a, b) in enumerate(zip(jax.tree.leaves(g_inputs), jax.tree.leaves(t_inputs))):
        assert_close(a, b.grad, f"grad of input leaf {i}", **tol)
    ours = fl.state_dict(g_params)
    for name, p in module.named_parameters():
        assert_close(ours[name], p.grad if p.grad is not None else torch.zeros_like(p), f"grad of {name}", **tol)
    return params, state


# -- the option grid (pairwise over the options, small sizes) ---------------------------------------------------

I, H, T, B = 3, 5, 6, 4
LENGTHS = [4, 6, 1, 3]  # unsorted, one of length 1, one full
SORTED_LENGTHS = [6, 4, 3, 1]

CASES = {
    "rnn_tanh-hx": ("RNN", dict(), dict(hx=True)),
    "rnn_relu-2layers-bidir-batch_first-nobias": ("RNN", dict(num_layers=2, nonlinearity="relu", bidirectional=True,
                                                               batch_first=True, bias=False), dict()),
    "rnn_tanh-2layers-bidir-packed_unsorted-hx": ("RNN", dict(num_layers=2, bidirectional=True),
                                                  dict(hx=True, packed="unsorted")),
    "lstm-unbatched": ("LSTM", dict(), dict(unbatched=True)),
    "lstm-2layers-bidir-proj-batch_first-hx": ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2,
                                                            batch_first=True), dict(hx=True)),
    "lstm-3layers-nobias-proj-packed_unsorted": ("LSTM", dict(num_layers=3, bias=False, proj_size=3),
                                                 dict(packed="unsorted")),
    "lstm-bidir-packed_sorted-hx": ("LSTM", dict(bidirectional=True), dict(hx=True, packed="sorted")),
    "lstm-2layers-bidir-unbatched-hx-dropout_eval": ("LSTM", dict(num_layers=2, bidirectional=True, dropout=0.4),
                                                     dict(unbatched=True, hx=True)),
    "gru-bidir-packed_sorted-hx": ("GRU", dict(bidirectional=True), dict(hx=True, packed="sorted")),
    "gru-3layers-batch_first-dropout_eval-unbatched-hx": ("GRU", dict(num_layers=3, batch_first=True, dropout=0.3),
                                                          dict(unbatched=True, hx=True)),
    "gru-2layers-nobias-packed_unsorted": ("GRU", dict(num_layers=2, bias=False, batch_first=True),
                                           dict(packed="unsorted")),
    "rnnbase_gru-bidir-batch_first": ("RNNBase:GRU", dict(bidirectional=True, batch_first=True), dict(hx=True)),
}


def _build(kind, kwargs):
    if kind.startswith("RNNBase:"):
        mode = kind.split(":")[1]
        # torch's RNNBase has no forward of its own: its GRU subclass is the oracle (the same parameters)
        return torch.nn.GRU(I, H, **kwargs), fl.RNNBase(mode, I, H, **kwargs), mode
    return getattr(torch.nn, kind)(I, H, **kwargs), getattr(fl, kind)(I, H, **kwargs), kind


def _hx(kind_mode, kwargs, unbatched, seed=3):
    d = 2 if kwargs.get("bidirectional") else 1
    rows = d * kwargs.get("num_layers", 1)
    out_size = kwargs.get("proj_size") or H
    rng = np.random.default_rng(seed)
    batch = () if unbatched else (B,)
    h = rng.standard_normal((rows, *batch, out_size))
    if kind_mode == "LSTM":
        return (h, rng.standard_normal((rows, *batch, H)))
    return h


@pytest.mark.parametrize("case", list(CASES))
def test_recurrent_matches_torch(case, dtype):
    kind, kwargs, opts = CASES[case]
    module, layer, mode = _build(kind, kwargs)
    batch_first = kwargs.get("batch_first", False)
    unbatched = opts.get("unbatched", False)
    shape = (T, I) if unbatched else ((B, T, I) if batch_first else (T, B, I))
    inputs = {"x": np.random.default_rng(0).standard_normal(shape)}
    if opts.get("hx"):
        inputs["hx"] = _hx(mode, kwargs, unbatched)
    packed = opts.get("packed")
    lengths = SORTED_LENGTHS if packed == "sorted" else LENGTHS

    def torch_fn(m, i):
        x = i["x"]
        if packed:
            x = trnn.pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=packed == "sorted")
        out, hidden = m(x, i.get("hx"))
        return [out.data if packed else out, *(hidden if mode == "LSTM" else (hidden,))]

    def jax_fn(p, s, i):
        x = i["x"]
        if packed:
            x = frnn.pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=packed == "sorted")
        (out, hidden), _ = layer.apply(p, s, x, i.get("hx"))
        if packed:
            assert isinstance(out, frnn.PackedSequence)
        return [out.data if packed else out, *(hidden if mode == "LSTM" else (hidden,))]

    _parity(module, layer, dtype, inputs, torch_fn, jax_fn)


LENGTHS_CASES = {
    "lstm-bidir-batch_first-hx": ("LSTM", dict(bidirectional=True, batch_first=True), True),
    "lstm-2layers-proj": ("LSTM", dict(num_layers=2, proj_size=2), False),
    "gru-2layers-bidir": ("GRU", dict(num_layers=2, bidirectional=True), True),
    "rnn_relu-bidir-batch_first": ("RNN", dict(bidirectional=True, nonlinearity="relu", batch_first=True), False),
}


@pytest.mark.parametrize("case", list(LENGTHS_CASES))
def test_lengths_matches_torch_packing(case, dtype):
    """lengths= on a padded batch (traced) gives torch's packed result, padded with zeros."""
    kind, kwargs, with_hx = LENGTHS_CASES[case]
    module, layer, mode = _build(kind, kwargs)
    batch_first = kwargs.get("batch_first", False)
    x = np.random.default_rng(1).standard_normal((B, T, I) if batch_first else (T, B, I))
    inputs = {"x": x, "hx": _hx(mode, kwargs, False)} if with_hx else {"x": x}

    def torch_fn(m, i):
        packed = trnn.pack_padded_sequence(i["x"], LENGTHS, batch_first=batch_first, enforce_sorted=False)
        out, hidden = m(packed, i.get("hx"))
        out = trnn.pad_packed_sequence(out, batch_first=batch_first, total_length=T)[0]
        return [out, *(hidden if mode == "LSTM" else (hidden,))]

    def jax_fn(p, s, i):
        (out, hidden), _ = layer.apply(p, s, i["x"], i.get("hx"), lengths=jnp.asarray(LENGTHS))
        return [out, *(hidden if mode == "LSTM" else (hidden,))]

    _parity(module, layer, dtype, inputs, torch_fn, jax_fn)


def test_lengths_compile_once():
    """One compilation serves every length pattern."""
    layer = fl.GRU(I, H, bidirectional=True)
    params, state = layer.init(jax.random.PRNGKey(0))
    traces = []

    @jax.jit
    def f(x, lengths):
        traces.append(1)
        return layer.apply(params, state, x, lengths=lengths)[0]

    x = jnp.ones((T, B, I))
    for lengths in ([6, 5, 4, 3], [1, 2, 3, 4], [6, 6, 6, 6]):
        out, h_n = f(x, jnp.asarray(lengths))
        assert float(jnp.abs(out[lengths[0]:, 0]).max(initial=0.0)) == 0.0
    assert len(traces) == 1
    full = jax.jit(lambda x: layer.apply(params, state, x)[0][0])(x)
    np.testing.assert_allclose(f(x, jnp.full((B,), T, jnp.int32))[0], full, rtol=1e-6, atol=1e-7)
    assert len(traces) == 1


CELL_CASES = {
    "rnncell_tanh-hx": ("RNNCell", dict(), True, False),
    "rnncell_relu-nobias-unbatched": ("RNNCell", dict(nonlinearity="relu", bias=False), False, True),
    "lstmcell-hx-unbatched": ("LSTMCell", dict(), True, True),
    "lstmcell-nobias": ("LSTMCell", dict(bias=False), False, False),
    "grucell-hx": ("GRUCell", dict(), True, False),
    "grucell-unbatched": ("GRUCell", dict(), False, True),
}


@pytest.mark.parametrize("case", list(CELL_CASES))
def test_cell_matches_torch(case, dtype):
    kind, kwargs, with_hx, unbatched = CELL_CASES[case]
    module, layer = getattr(torch.nn, kind)(I, H, **kwargs), getattr(fl, kind)(I, H, **kwargs)
    rng = np.random.default_rng(2)
    batch = () if unbatched else (B,)
    inputs = {"x": rng.standard_normal((*batch, I))}
    if with_hx:
        h = rng.standard_normal((*batch, H))
        inputs["hx"] = (h, rng.standard_normal((*batch, H))) if kind == "LSTMCell" else h

    def torch_fn(m, i):
        out = m(i["x"], i.get("hx"))
        return list(out) if kind == "LSTMCell" else [out]

    def jax_fn(p, s, i):
        out, _ = layer.apply(p, s, i["x"], i.get("hx"))
        return list(out) if kind == "LSTMCell" else [out]

    _parity(module, layer, dtype, inputs, torch_fn, jax_fn)


def test_step_functions_match_torch_argument_order(x64):
    rng = np.random.default_rng(4)
    x, h, c = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    for name, gates in (("rnn_tanh_cell", 1), ("rnn_relu_cell", 1), ("lstm_cell", 4), ("gru_cell", 3)):
        w_ih, w_hh = rng.standard_normal((gates * H, I)), rng.standard_normal((gates * H, H))
        b_ih, b_hh = rng.standard_normal(gates * H), rng.standard_normal(gates * H)
        hx = (h, c) if name == "lstm_cell" else h
        t_hx = tuple(map(torch.tensor, hx)) if name == "lstm_cell" else torch.tensor(hx)
        theirs = getattr(torch, name)(torch.tensor(x), t_hx, *map(torch.tensor, (w_ih, w_hh, b_ih, b_hh)))
        ours = getattr(F, name)(x, hx, w_ih, w_hh, b_ih, b_hh)
        for a, b in zip(jax.tree.leaves(ours), theirs if name == "lstm_cell" else [theirs]):
            np.testing.assert_allclose(np.asarray(a), _np(b), rtol=1e-12, atol=1e-12, err_msg=name)


# -- forward mode, vmap ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,kwargs", [("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2)),
                                         ("LSTM", dict(bidirectional=True)),
                                         ("GRU", dict(batch_first=True))], ids=["lstm-proj", "lstm", "gru"])
def test_jvp_matches_torch_func(kind, kwargs, dtype):
    module, layer = getattr(torch.nn, kind)(I, H, **kwargs), getattr(fl, kind)(I, H, **kwargs)
    module = module.to(TORCH_DTYPES[np.dtype(dtype)])
    params, state = fl.load_state_dict(layer, module.state_dict(), dtype=dtype)
    rng = np.random.default_rng(5)
    x, tx = rng.standard_normal((T, B, I)).astype(dtype), rng.standard_normal((T, B, I)).astype(dtype)
    tangents = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in fl.state_dict(params).items()}
    t_params = {k: v.detach() for k, v in module.named_parameters()}

    def t_fn(p, x):
        out, hidden = torch.func.functional_call(module, p, (x,))
        return out, hidden[0] if kind == "LSTM" else hidden

    with torch.backends.mkldnn.flags(enabled=False):  # torch's oneDNN LSTM has no forward AD
        _, t_tan = torch.func.jvp(t_fn, (t_params, torch.from_numpy(x)),
                                  ({k: torch.from_numpy(v) for k, v in tangents.items()}, torch.from_numpy(tx)))

    def j_fn(p, x):
        out, hidden = layer.apply(p, state, x)[0]
        return out, hidden[0] if kind == "LSTM" else hidden

    p_tan = fl.load_state_dict(layer, tangents, dtype=dtype)[0]
    _, j_tan = jax.jit(lambda p, x, tp, tx: jax.jvp(j_fn, (p, x), (tp, tx)))(params, x, p_tan, tx)
    for a, b in zip(j_tan, t_tan):
        assert_close(a, b, "jvp", **tolerance(dtype))


def test_vmap_and_jacfwd():
    layer = fl.LSTM(I, H, bidirectional=True)
    params, state = layer.init(jax.random.PRNGKey(0))
    xs = jnp.asarray(np.random.default_rng(6).standard_normal((3, T, B, I)), jnp.float32)
    lengths = jnp.asarray([[6, 2, 3, 1], [1, 1, 1, 1], [6, 6, 6, 6]])

    def f(x, n):
        return layer.apply(params, state, x, lengths=n)[0][0]

    batched = jax.jit(jax.vmap(f))(xs, lengths)
    for k in range(3):
        np.testing.assert_allclose(batched[k], f(xs[k], lengths[k]), rtol=1e-5, atol=1e-6)
    jac = jax.jit(jax.jacfwd(lambda x: f(x, lengths[0])[:, 0].sum(-1)))(xs[0])
    assert jac.shape == (T, T, B, I) and bool(jnp.all(jnp.isfinite(jac)))
    # a step's output does not depend on the padding past its sequence's end
    assert float(jnp.abs(jac[:, 3:, 1]).max()) == 0.0
    # vmap of the gradient (the closed-form tangent, transposed, batched)
    grad = jax.grad(lambda p, x, n: jnp.sum(layer.apply(p, state, x, lengths=n)[0][0] ** 2))
    batched = jax.jit(jax.vmap(grad, in_axes=(None, 0, 0)))(params, xs, lengths)
    single = jax.jit(grad)(params, xs[1], lengths[1])
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
        np.testing.assert_allclose(a[1], b, rtol=1e-5, atol=1e-6)


def _scans(jaxpr):
    """Every scan in a closed jaxpr and its sub-jaxprs: (reverse, number of scanned inputs)."""
    found = []
    for eqn in jaxpr.jaxpr.eqns:
        if eqn.primitive.name == "scan":
            p = eqn.params
            found.append((p["reverse"], len(eqn.invars) - p["num_consts"] - p["num_carry"]))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _scans(jax.extend.core.ClosedJaxpr(sub, ()))
    return found


@pytest.mark.parametrize("proj_size", [0, 2])
def test_lstm_backward_loop(proj_size):
    """Without projection, the LSTM's backward loop is the hand-written one (_rnn_scan._lstm_transpose):
    it scans the cotangents, stored activations and cell states (and the step index), not the ten
    coefficient arrays of the generic tangent's transpose (the projected LSTM's path)."""
    layer = fl.LSTM(I, H, proj_size=proj_size)
    params, state = layer.init(jax.random.PRNGKey(0))
    x = jnp.ones((T, B, I))
    out = layer.apply(params, state, x)[0][0]
    pullback = jax.vjp(lambda p, x: layer.apply(p, state, x)[0][0], params, x)[1]
    scans = _scans(jax.make_jaxpr(pullback)(out))
    assert [r for r, _ in scans] == [True]
    assert (scans[0][1] == 4) == (proj_size == 0), scans


def _backward_scan_bodies(jaxpr):
    """Every reverse scan in a closed jaxpr and its sub-jaxprs: (carry shapes, primitives of its body)."""
    def prims(j):
        subs = [sub for e in j.eqns for sub in jax.extend.core.jaxprs_in_params(e.params)]
        return [e.primitive.name for e in j.eqns] + [n for sub in subs for n in prims(sub)]
    found = []
    for eqn in jaxpr.jaxpr.eqns:
        if eqn.primitive.name == "scan" and eqn.params["reverse"]:
            carry = [v.aval.shape for v in eqn.outvars[: eqn.params["num_carry"]]]
            found.append((carry, prims(eqn.params["jaxpr"].jaxpr)))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _backward_scan_bodies(jax.extend.core.ClosedJaxpr(sub, ()))
    return found


@pytest.mark.parametrize("masked", [False, True])
def test_lstm_backward_loop_body(masked):
    """The backward loop writes the gate blocks into a (B, 4H) buffer it carries (no concatenate), and
    XLA writes its (dh, dc) carry in place: no (B, H) copy in the compiled body (the old loop: two)."""
    layer = fl.LSTM(I, H)
    params, state = layer.init(jax.random.PRNGKey(0))
    kw = {"lengths": jnp.array([T, T - 1, 2, 1])} if masked else {}
    x, ct = jnp.ones((T, B, I)), jnp.ones((T, B, H))
    vjp = lambda p, x, ct: jax.vjp(lambda p, x: layer.apply(p, state, x, **kw)[0][0], p, x)[1](ct)  # noqa: E731
    (carry, prims), = _backward_scan_bodies(jax.make_jaxpr(vjp)(params, x, ct))
    assert (B, 4 * H) in carry, carry
    assert prims.count("dynamic_update_slice") == 4 and "concatenate" not in prims, prims
    hlo = jax.jit(vjp).lower(params, x, ct).compile().as_text()
    (name,) = re.findall(r" while\(.*?body=(%[\w.\-]+).*?op_name=\"[^\"]*transpose\(", hlo)
    body = hlo[hlo.index("\n" + name + " ") :]
    assert f"f32[{B},{H}]{{1,0}} copy(" not in body[: body.index("\n}")]


def _forward_scans(jaxpr):
    """Every forward scan in a closed jaxpr and its sub-jaxprs: (carry shapes, number of stacked outputs)."""
    found = []
    for eqn in jaxpr.jaxpr.eqns:
        if eqn.primitive.name == "scan" and not eqn.params["reverse"]:
            carry = eqn.params["num_carry"]
            found.append(([v.aval.shape for v in eqn.outvars[:carry]], len(eqn.outvars) - carry))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _forward_scans(jax.extend.core.ClosedJaxpr(sub, ()))
    return found


@pytest.mark.parametrize("proj_size, masked", [(0, False), (0, True), (2, False)])
def test_lstm_forward_loop_in_place(proj_size, masked):
    """Without projection or mask, the forward loop of a training step (the one that keeps the
    activations for the backward) writes step t's gate activations over step t's input gates in a
    (T, B, 4H) buffer it carries, and stacks no outputs: no zero-filled output buffer. The projected
    or masked LSTM stacks them as before."""
    layer = fl.LSTM(I, H, proj_size=proj_size)
    params, state = layer.init(jax.random.PRNGKey(0))
    x = jnp.ones((T, B, I))
    kwargs = {"lengths": jnp.array([T, 2, T, 1])} if masked else {}
    forward = jax.make_jaxpr(lambda p, x: jax.vjp(lambda p, x: layer.apply(p, state, x, **kwargs)[0][0], p, x)[0])
    jaxpr = forward(params, x)
    in_place = [n for shapes, n in _forward_scans(jaxpr) if (T, B, 4 * H) in shapes]
    assert in_place == ([0] if proj_size == 0 and not masked else []), _forward_scans(jaxpr)


def test_packed_sequence_under_jit_and_grad():
    layer = fl.GRU(I, H)
    params, state = layer.init(jax.random.PRNGKey(0))
    packed = frnn.pack_sequence([jnp.ones((4, I)), jnp.ones((2, I)), jnp.ones((3, I))], enforce_sorted=False)

    @jax.jit
    def loss(params, packed):
        (out, h_n), _ = layer.apply(params, state, packed)
        return jnp.sum(out.data ** 2) + jnp.sum(h_n)

    g = jax.grad(loss, argnums=(0, 1))(params, packed)
    assert isinstance(g[1], frnn.PackedSequence) and g[1].data.shape == (9, I)
    np.testing.assert_array_equal(g[1].batch_sizes, [3, 3, 2, 1])


# -- packed-sequence utilities ---------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [([5, 3, 3, 1], True), ([2, 5, 3, 5], False)])
def test_pack_pad_match_torch(lengths, enforce_sorted, batch_first):
    x = np.random.default_rng(0).standard_normal((4, 5, 2) if batch_first else (5, 4, 2)).astype(np.float32)
    theirs = trnn.pack_padded_sequence(torch.from_numpy(x), lengths, batch_first, enforce_sorted)
    ours = frnn.pack_padded_sequence(jnp.asarray(x), lengths, batch_first, enforce_sorted)
    np.testing.assert_array_equal(np.asarray(ours.data), _np(theirs.data))
    np.testing.assert_array_equal(ours.batch_sizes, _np(theirs.batch_sizes))
    for a, b in ((ours.sorted_indices, theirs.sorted_indices), (ours.unsorted_indices, theirs.unsorted_indices)):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, _np(b))
    for kw in (dict(), dict(padding_value=-1.0, total_length=7)):
        t_pad, t_len = trnn.pad_packed_sequence(theirs, batch_first=batch_first, **kw)
        o_pad, o_len = frnn.pad_packed_sequence(ours, batch_first=batch_first, **kw)
        np.testing.assert_array_equal(np.asarray(o_pad), _np(t_pad))
        np.testing.assert_array_equal(o_len, _np(t_len))
    data, batch_sizes, sorted_indices, unsorted_indices = ours  # unpacks like torch's namedtuple
    np.testing.assert_array_equal(ours.lengths, lengths)
    for a, b in zip(frnn.unpack_sequence(ours), trnn.unpack_sequence(theirs)):
        np.testing.assert_array_equal(np.asarray(a), _np(b))


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_family_matches_torch(padding_side):
    seqs = [np.arange(n * 2, dtype=np.float32).reshape(n, 2) + n for n in (3, 5, 1)]
    for batch_first in (False, True):
        theirs = trnn.pad_sequence([torch.from_numpy(s) for s in seqs], batch_first, 9.0, padding_side)
        ours = frnn.pad_sequence([jnp.asarray(s) for s in seqs], batch_first, 9.0, padding_side)
        np.testing.assert_array_equal(np.asarray(ours), _np(theirs))
    padded = frnn.pad_sequence(seqs)
    for a, b in zip(frnn.unpad_sequence(padded, [3, 5, 1]), seqs):
        np.testing.assert_array_equal(np.asarray(a), b)
    packed = frnn.pack_sequence(seqs, enforce_sorted=False)
    t_packed = trnn.pack_sequence([torch.from_numpy(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(np.asarray(packed.data), _np(t_packed.data))
    np.testing.assert_array_equal(frnn.invert_permutation(packed.sorted_indices), packed.unsorted_indices)


def test_packed_errors():
    x = jnp.ones((5, 3, 2))
    with pytest.raises(ValueError, match="must be sorted in decreasing order"):
        frnn.pack_padded_sequence(x, [2, 5, 3])
    with pytest.raises(ValueError, match="Length of all samples has to be greater than 0"):
        frnn.pack_padded_sequence(x, [5, 0, 0])
    with pytest.raises(ValueError, match=r"Expected `len\(lengths\)` to be equal to batch_size"):
        frnn.pack_padded_sequence(x, [5, 3])
    with pytest.raises(ValueError, match="Expected total_length to be at least the length"):
        frnn.pad_packed_sequence(frnn.pack_padded_sequence(x, [5, 3, 1]), total_length=4)
    with pytest.raises(ValueError, match="Expected padding_side to be one of left or right"):
        frnn.pad_sequence([x[0]], padding_side="top")
    with pytest.raises(TypeError, match="must be concrete"):
        jax.jit(lambda n: frnn.pack_padded_sequence(x, n).data)(jnp.array([5, 3, 1]))


# -- dropout between layers --------------------------------------------------------------------------------------


def test_dropout_between_layers_in_training():
    p = 0.3
    n = 500
    layer = fl.RNN(I, n, num_layers=2, dropout=p)
    params, state = layer.init(jax.random.PRNGKey(0))
    # the second layer's input is the first layer's output, dropped: read it off an identity second layer
    params = dict(params, weight_ih_l1=jnp.eye(n), weight_hh_l1=jnp.zeros((n, n)),
                  bias_ih_l1=jnp.zeros(n), bias_hh_l1=jnp.zeros(n))
    x = jnp.ones((4, 8, I))
    run = jax.jit(lambda rng: layer.apply(params, state, x, rng=rng, training=True)[0][0])
    first_layer, _ = fl.RNN(I, n).apply({k[:-1] + "0": v for k, v in params.items() if k.endswith("l0")},
                                           {}, x)[0]
    a, b, c = run(jax.random.PRNGKey(1)), run(jax.random.PRNGKey(1)), run(jax.random.PRNGKey(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    expected_kept = np.tanh(np.asarray(first_layer) / (1 - p))
    dropped = np.asarray(a) == 0
    assert abs(dropped.mean() - p) < 0.015  # 16000 draws: 4 standard deviations
    np.testing.assert_allclose(np.asarray(a)[~dropped], expected_kept[~dropped], rtol=1e-5, atol=1e-6)
    eval_out = layer.apply(params, state, x)[0][0]
    np.testing.assert_allclose(eval_out, np.tanh(np.asarray(first_layer)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="needs `rng`"):
        layer.apply(params, state, x, training=True)


# -- construction: torch's names, shapes, init and errors ------------------------------------------------------


def test_parameters_named_and_initialised_as_torch():
    for ctor in (lambda m: m.LSTM(4, 8, num_layers=2, bidirectional=True, proj_size=3, bias=False),
                 lambda m: m.GRU(4, 8, num_layers=3), lambda m: m.RNN(4, 8, nonlinearity="relu"),
                 lambda m: m.LSTMCell(4, 8), lambda m: m.GRUCell(4, 8, bias=False)):
        module, layer = ctor(torch.nn), ctor(fl)
        params, state = layer.init(jax.random.PRNGKey(0))
        ours = fl.state_dict(params, state)
        assert list(ours) == list(module.state_dict())
        for name, value in module.state_dict().items():
            assert ours[name].shape == tuple(value.shape) and ours[name].dtype == np.float32
            assert np.abs(ours[name]).max() <= 1 / np.sqrt(8) and ours[name].std() > 0.1
    assert repr(fl.LSTM(4, 8, num_layers=2, proj_size=3)) == repr(torch.nn.LSTM(4, 8, num_layers=2, proj_size=3))


@pytest.mark.parametrize("build,match", [
    (lambda: fl.LSTM(3, 5, dropout=1.5), r"dropout should be a number in range \[0, 1\]"),
    (lambda: fl.GRU(3, 5, proj_size=2), "proj_size argument is only supported for LSTM, not RNN or GRU"),
    (lambda: fl.RNNBase("GRU", 3, 5, proj_size=2), "proj_size argument is only supported for LSTM"),
    (lambda: fl.LSTM(3, 5, proj_size=5), "proj_size has to be smaller than hidden_size"),
    (lambda: fl.LSTM(3, 5, proj_size=-1), "proj_size should be a positive integer or zero"),
    (lambda: fl.RNN(3, 5, nonlinearity="gelu"), "Unknown nonlinearity 'gelu'. Select from 'tanh' or 'relu'."),
    (lambda: fl.RNNBase("SRU", 3, 5), "Unrecognized RNN mode: SRU"),
    (lambda: fl.GRU(0, 5), "input_size must be greater than zero"),
    (lambda: fl.GRU(3, 5, num_layers=0), "num_layers must be greater than zero"),
])
def test_config_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_config_type_errors_and_warning():
    with pytest.raises(TypeError, match="bias should be of type bool, got: int"):
        fl.GRU(3, 5, bias=1)
    with pytest.raises(TypeError, match="hidden_size should be of type int, got: float"):
        fl.LSTM(3, 5.0)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        fl.LSTM(3, 5, dropout=0.5)


def test_forward_errors():
    lstm, gru = fl.LSTM(3, 5, num_layers=2), fl.GRU(3, 5)
    lp, ls = lstm.init(jax.random.PRNGKey(0))
    gp, gs = gru.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        gru.apply(gp, gs, jnp.ones((2, 2, 2, 3)))
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 4"):
        gru.apply(gp, gs, jnp.ones((6, 2, 4)))
    with pytest.raises(ValueError, match=r"Expected hidden size \(1, 2, 5\), got \[1, 3, 5\]"):
        gru.apply(gp, gs, jnp.ones((6, 2, 3)), jnp.ones((1, 3, 5)))
    with pytest.raises(ValueError, match=r"Expected hidden\[1\] size \(2, 2, 5\), got \[2, 3, 5\]"):
        lstm.apply(lp, ls, jnp.ones((6, 2, 3)), (jnp.ones((2, 2, 5)), jnp.ones((2, 3, 5))))
    with pytest.raises(ValueError, match="For batched 3-D input, hx should also be 3-D but got 2-D tensor"):
        gru.apply(gp, gs, jnp.ones((6, 2, 3)), jnp.ones((1, 5)))
    with pytest.raises(ValueError, match=r"For unbatched 2-D input, hx and cx should also be 2-D but got \(3-D, 2-D\)"):
        lstm.apply(lp, ls, jnp.ones((6, 3)), (jnp.ones((2, 1, 5)), jnp.ones((2, 5))))
    with pytest.raises(ValueError, match=r"lengths must hold one length per sequence, shape \(2,\)"):
        gru.apply(gp, gs, jnp.ones((6, 2, 3)), lengths=jnp.array([1, 2, 3]))
    with pytest.raises(TypeError, match="expects a floating-point input"):
        gru.apply(gp, gs, jnp.ones((6, 2, 3), jnp.int32))
    cell = fl.LSTMCell(3, 5)
    cp, cs = cell.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="LSTMCell: Expected input to be 1D or 2D, got 3D instead"):
        cell.apply(cp, cs, jnp.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="input has inconsistent input_size: got 4 expected 3"):
        cell.apply(cp, cs, jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="Input batch size 2 doesn't match hidden0 batch size 3"):
        cell.apply(cp, cs, jnp.ones((2, 3)), (jnp.ones((3, 5)), jnp.ones((3, 5))))
    with pytest.raises(ValueError, match="hidden1 has inconsistent hidden_size: got 4, expected 5"):
        cell.apply(cp, cs, jnp.ones((2, 3)), (jnp.ones((2, 5)), jnp.ones((2, 4))))


def test_second_order(x64):
    """grad of grad and the Hessian go through the scan (and the lengths mask)."""
    layer = fl.LSTM(2, 3, bidirectional=True, dtype=jnp.float64)  # the input's dtype, as torch requires
    params, state = layer.init(jax.random.PRNGKey(0))
    x = jnp.asarray(np.random.default_rng(8).standard_normal((4, 2, 2)))

    def f(x):
        (out, (h_n, c_n)), _ = layer.apply(params, state, x, lengths=jnp.array([4, 2]))
        return jnp.sum(out ** 3) + jnp.sum(c_n ** 2)

    hess = jax.jit(jax.hessian(f))(x).reshape(x.size, x.size)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-9, atol=1e-12)
    # against central differences of the gradient
    grad = jax.jit(jax.grad(f))
    v = jnp.asarray(np.random.default_rng(9).standard_normal(x.shape))
    eps = 1e-5
    fd = (grad(x + eps * v) - grad(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hess @ v.reshape(-1), fd.reshape(-1), rtol=1e-6, atol=1e-8)
    assert float(jnp.abs(hess.reshape(x.shape + x.shape)[2:, 1]).max()) == 0.0  # padding has no influence


# -- mixed dtypes: torch's RNNBase.check_input raises where the input's dtype is not the weights' -------------


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_rnn_input_dtype_must_match_weight_dtype_like_torch(kind, x64):
    module = getattr(torch.nn, kind)(3, 5)
    with pytest.raises(ValueError, match=r"RNN input dtype \(torch.float64\) does not match weight dtype "
                                         r"\(torch.float32\)"):
        module(torch.zeros(2, 4, 3, dtype=torch.float64))
    layer = getattr(fl, kind)(3, 5)
    params, state = layer.init(jax.random.PRNGKey(0))  # float32, torch's default
    with pytest.raises(ValueError, match=rf"{kind}\(3, 5\): RNN input dtype \(float64\) does not match weight dtype "
                                         r"\(float32\). Convert input: input.astype\(float32\)"):
        layer.apply(params, state, jnp.zeros((2, 4, 3), jnp.float64))
    packed = fl.rnn.pack_padded_sequence(jnp.zeros((4, 2, 3), jnp.float64), [4, 2])
    with pytest.raises(ValueError, match="RNN input dtype"):
        layer.apply(params, state, packed)
    params64 = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    with pytest.raises(ValueError, match=r"RNN input dtype \(float32\) does not match weight dtype \(float64\)"):
        layer.apply(params64, state, jnp.zeros((2, 4, 3), jnp.float32))
    out, _ = layer.apply(params64, state, jnp.zeros((2, 4, 3), jnp.float64))  # matching dtypes run
    assert jax.tree.leaves(out)[0].dtype == jnp.float64


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_input_dtype_must_match_weight_dtype_like_torch(kind, x64):
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype"):
        getattr(torch.nn, kind)(3, 5)(torch.zeros(2, 3, dtype=torch.float64))
    layer = getattr(fl, kind)(3, 5)
    params, state = layer.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=rf"{kind}\(3, 5\): mat1 and mat2 must have the same dtype, but got Double "
                                         r"and Float \(a float64 input into float32 parameters"):
        layer.apply(params, state, jnp.zeros((2, 3), jnp.float64))
