"""The multi-device checks of tests/test_parallel.py, run in a subprocess on 4 simulated CPU devices.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/parallel_checks.py [names...]

The pytest process has JAX initialised with one CPU device already, so test_parallel.py starts this
script once with 4 devices; it runs every check (float64), catches each failure, and prints one
`CHECK <name> ok` or `CHECK <name> FAIL` line followed by the traceback, which the tests read.

Each check compares a wrapped computation with the single-device one on the whole batch: outputs,
gradients w.r.t. the inputs and every parameter (of a loss with a non-trivial cotangent), and the
returned state. BatchNorm per replica is compared with the chunks computed one by one (torch's
chunks, replica i's rng `fold_in(rng, i)`, gradients summed, replica 0's buffers).
"""

from __future__ import annotations

import functools
import sys
import time
import traceback

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import funclayers as fl  # noqa: E402

F64 = jnp.float64
CHECKS = {}


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def randn(*shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def assert_trees_close(got, expected, what, rtol=1e-10, atol=1e-12):
    got_leaves, got_def = jax.tree_util.tree_flatten_with_path(got)
    exp_leaves, exp_def = jax.tree_util.tree_flatten(expected)
    assert got_def == exp_def, f"{what}: structure {got_def} != {exp_def}"
    for (path, a), b in zip(got_leaves, exp_leaves):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol,
                                   err_msg=f"{what}{jax.tree_util.keystr(path)}")


def small_cnn(norm, dropout=0.0):
    """conv - norm - relu - dropout - linear on (N, 2, 5, 5)."""
    return fl.Sequential(fl.Conv2d(2, 4, 3, padding=1, dtype=F64), norm(4, dtype=F64), fl.ReLU(),
                         fl.Dropout(dropout), fl.Flatten(), fl.Linear(4 * 5 * 5, 3, dtype=F64))


@functools.cache
def _grad_fn(layer, training):
    """One jitted value-and-grad per layer (chunks of one shape share its compilation)."""
    def loss(params, inputs, state, rng):
        out, new_state = layer.apply(params, state, *inputs, rng=rng, training=training)
        value = sum(jnp.sum(jnp.sin(1.3 * y) + 0.1 * y * y) for y in jax.tree_util.tree_leaves(out))
        return value, (out, new_state)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))


def loss_and_grads(layer, params, state, inputs, rng, training=True):
    """(out, new_state, grads w.r.t. params, grads w.r.t. inputs) of sum(sin(1.3 out) + 0.1 out^2).

    Elementwise, so a chunk's loss is its share of the whole batch's; non-linear, so the cotangent
    differs from element to element.
    """
    (_, (out, new_state)), (g_params, g_inputs) = _grad_fn(layer, training)(params, inputs, state, rng)
    return out, new_state, g_params, g_inputs


def per_chunk_reference(model, params, state, x, rng, devices=4, dim=0):
    """torch's DataParallel by hand: torch.chunk, one replica per chunk, outputs concatenated."""
    rows, chunks, _ = fl.parallel.chunk_plan(x.shape[dim], devices)
    outs, grads, g_xs, states = [], None, [], []
    for i in range(chunks):
        xi = jax.lax.slice_in_dim(x, i * rows, min((i + 1) * rows, x.shape[dim]), axis=dim)
        key = None if rng is None else jax.random.fold_in(rng, i)
        out, new_state, g, (g_x,) = loss_and_grads(model, params, state, (xi,), key)
        outs.append(out), g_xs.append(g_x), states.append(new_state)
        grads = g if grads is None else jax.tree_util.tree_map(jnp.add, grads, g)
    return jnp.concatenate(outs, dim), states[0], grads, jnp.concatenate(g_xs, dim)


@check
def dp_batchnorm_and_dropout_per_replica():
    model = small_cnn(fl.BatchNorm2d, dropout=0.3)
    dp = fl.DataParallel(model)
    params, state = dp.init(jax.random.PRNGKey(0))
    rng = jax.random.PRNGKey(7)
    for n in (10, 6):  # 3,3,3,1; 2,2,2 on 3 devices (even splits: every other check)
        x = randn(n, 2, 5, 5, seed=n) * 2 + 1
        out, new_state, g, (g_x,) = loss_and_grads(dp, params, state, (x,), rng)
        ref_out, ref_state, ref_g, ref_gx = per_chunk_reference(model, params["module"], state["module"], x, rng)
        assert_trees_close(out, ref_out, f"N={n} output")
        assert_trees_close(g["module"], ref_g, f"N={n} grad")
        assert_trees_close(g_x, ref_gx, f"N={n} grad of input")
        assert_trees_close(new_state["module"], ref_state, f"N={n} state (replica 0's)")


@check
def dp_syncbatchnorm_is_batchnorm_on_the_whole_batch():
    plain = small_cnn(fl.BatchNorm2d)
    for how, model, sizes in (("SyncBatchNorm", small_cnn(fl.SyncBatchNorm), (10, 3)),
                              ("convert_sync_batchnorm", fl.parallel.convert_sync_batchnorm(plain), (8,))):
        dp = fl.DataParallel(model)
        params, state = dp.init(jax.random.PRNGKey(1))
        for n in sizes:  # 3,3,3,1; 1,1,1 on 3 devices; 2,2,2,2
            x = randn(n, 2, 5, 5, seed=n) * 3 - 1
            out, new_state, g, g_x = loss_and_grads(dp, params, state, (x,), None)
            ref = loss_and_grads(plain, params["module"], state["module"], (x,), None)
            for got, want, what in zip((out, new_state["module"], g["module"], g_x), ref,
                                       ("output", "state", "grad", "grad of input")):
                assert_trees_close(got, want, f"{how} N={n} {what}")
        eval_out, _ = jax.jit(dp.apply)(params, state, x)
        assert_trees_close(eval_out, plain.apply(params["module"], state["module"], x)[0], f"{how} eval")


@check
def dp_dim1_sequence_first_with_syncbatchnorm():
    def forward(m, x):  # (T, N, F) -> (T, N, 4), BatchNorm over (N, 4, T)
        y = m.proj(x)
        return jnp.transpose(m.norm(jnp.transpose(y, (1, 2, 0))), (2, 0, 1))

    model = fl.Module(forward, proj=fl.Linear(3, 4, dtype=F64), norm=fl.SyncBatchNorm(4, dtype=F64))
    dp = fl.DataParallel(model, dim=1)
    params, state = dp.init(jax.random.PRNGKey(2))
    for n in (5,):  # 2,2,1
        x = randn(6, n, 3, seed=n)
        out, new_state, g, g_x = loss_and_grads(dp, params, state, (x,), None)
        ref = loss_and_grads(model, params["module"], state["module"], (x,), None)
        for got, want, what in zip((out, new_state["module"], g["module"], g_x), ref,
                                   ("output", "state", "grad", "grad of input")):
            assert_trees_close(got, want, f"dim=1 N={n} {what}")


@check
def ddp_matches_the_whole_batch_and_trains_as_one_device():
    plain = small_cnn(fl.BatchNorm2d)
    ddp = fl.DistributedDataParallel(fl.parallel.convert_sync_batchnorm(plain))
    params, state = ddp.init(jax.random.PRNGKey(3))
    for n in (10,):
        x = randn(n, 2, 5, 5, seed=n + 1)
        got = loss_and_grads(ddp, params, state, (x,), None)
        ref = loss_and_grads(plain, params["module"], state["module"], (x,), None)
        for a, b, what in zip((got[0], got[1]["module"], got[2]["module"], got[3]), ref,
                              ("output", "state", "grad", "grad of input")):
            assert_trees_close(a, b, f"DDP N={n} {what}")

    def loss_fn(logits, labels):
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    optimizer = optax.sgd(0.1, momentum=0.9)
    runs = {}
    for name, model, p, s in (("ddp", ddp, params, state), ("plain", plain, params["module"], state["module"])):
        step, opt_state = fl.parallel.make_train_step(model, optimizer, loss_fn), optimizer.init(p)
        for i in range(2):
            x = randn(12, 2, 5, 5, seed=10 + i)
            y = jnp.asarray(np.random.default_rng(i).integers(0, 3, 12))
            p, s, opt_state, loss = step(p, s, opt_state, x, y)
        runs[name] = (p if name == "plain" else p["module"], s if name == "plain" else s["module"])
    assert_trees_close(runs["ddp"], runs["plain"], "params and state after 2 DDP steps", rtol=1e-9)


@check
def dp_device_ids_small_batches_and_scalar_outputs():
    devices = jax.local_devices()
    per_replica = fl.Module(lambda m, x: jnp.asarray(x.shape[0], F64))  # one scalar per replica
    counts, _ = fl.DataParallel(per_replica).apply({"module": {}}, {"module": {}}, jnp.ones((2, 3)))
    assert counts.tolist() == [1, 1], counts  # 2 rows on 4 devices: 2 replicas, as torch's scatter
    counts, _ = fl.DataParallel(per_replica, device_ids=[1, 3]).apply({"module": {}}, {"module": {}},
                                                                      jnp.ones((8, 3)))
    assert counts.tolist() == [4, 4], counts
    assert counts.devices() == {devices[1]}, counts.devices()  # gathered on device_ids[0], as torch
    model = small_cnn(fl.BatchNorm2d)
    dp = fl.DataParallel(model, device_ids=[devices[2], devices[0]], output_device=3)
    params, state = dp.init(jax.random.PRNGKey(4))
    x = randn(7, 2, 5, 5, seed=4)
    out, _ = dp.apply(params, state, x, training=True)
    assert out.devices() == {devices[3]}, out.devices()
    train = jax.jit(lambda x: model.apply(params["module"], state["module"], x, training=True)[0])
    halves = [train(x[:4]), train(x[4:])]
    assert_trees_close(out, jnp.concatenate(halves), "device_ids=[2, 0], N=7")
    committed, _ = dp.apply(jax.device_put(params, devices[1]), state, jax.device_put(x, devices[3]), training=True)
    assert_trees_close(committed, out, "params and batch committed to other devices (eager)")
    try:
        fl.DataParallel(per_replica).apply({"module": {}}, {"module": {}}, jnp.ones((10, 3)))
    except ValueError as e:
        assert "uneven split" in str(e) and "every output must keep the batch" in str(e), e
    else:
        raise AssertionError("a scalar output with an uneven split must raise")
    try:
        fl.DataParallel(fl.SyncBatchNorm(2, process_group="elsewhere")).apply(
            *fl.DataParallel(fl.SyncBatchNorm(2)).init(jax.random.PRNGKey(0)), jnp.ones((4, 2)), training=True)
    except ValueError as e:
        assert "'elsewhere' names a mapped axis" in str(e), e
    else:
        raise AssertionError("a SyncBatchNorm group naming an unbound axis must raise")


@check
def dp_forward_mode_in_eval():
    # no convolution: their fast backward is a custom_vjp, without forward mode (README)
    model = fl.Sequential(fl.Linear(3, 4, dtype=F64), fl.BatchNorm1d(4, dtype=F64), fl.Tanh())
    dp = fl.DataParallel(model)
    params, state = dp.init(jax.random.PRNGKey(5))
    x, t = randn(10, 3, seed=5), randn(10, 3, seed=6)
    got = jax.jvp(lambda x: dp.apply(params, state, x)[0], (x,), (t,))
    want = jax.jvp(lambda x: model.apply(params["module"], state["module"], x)[0], (x,), (t,))
    assert_trees_close(got, want, "jvp (primal, tangent)")


@check
def dp_lstm_inside():
    def forward(m, x):  # batch_first LSTM, then a head on the last step
        out, _ = m.lstm(x)
        return m.head(out[:, -1])

    model = fl.Module(forward, lstm=fl.LSTM(3, 5, batch_first=True, dtype=F64), head=fl.Linear(5, 2, dtype=F64))
    dp = fl.DataParallel(model)
    params, state = dp.init(jax.random.PRNGKey(6))
    x = randn(10, 4, 3, seed=7)
    got = loss_and_grads(dp, params, state, (x,), None)
    ref = loss_and_grads(model, params["module"], state["module"], (x,), None)
    for a, b, what in zip((got[0], got[2]["module"], got[3]), (ref[0], ref[2], ref[3]),
                          ("output", "grad", "grad of input")):
        assert_trees_close(a, b, f"LSTM inside, N=10: {what}")
    lstm = fl.LSTM(3, 5, num_layers=2, dtype=F64)  # sequence first: (T, N, F), h_n (layers, N, H): dim=1
    dp1 = fl.DataParallel(lstm, dim=1)
    params, state = dp1.init(jax.random.PRNGKey(8))
    x = randn(4, 5, 3, seed=8)
    got = loss_and_grads(dp1, params, state, (x,), None)
    ref = loss_and_grads(lstm, params["module"], state["module"], (x,), None)
    for a, b, what in zip((got[0], got[2]["module"], got[3]), (ref[0], ref[2], ref[3]),
                          ("(output, (h_n, c_n))", "grad", "grad of input")):
        assert_trees_close(a, b, f"LSTM dim=1, N=5: {what}")


def _summed_grads(layer, params, state, first, *rest, elementwise=True):
    """(output, grads w.r.t. params and the first input) of a loss summed over the outputs: the
    elementwise sin(1.3 out) + 0.1 out^2, or (elementwise=False, per-replica scalar sums) their sum."""
    def loss(params, first):
        out, _ = layer.apply(params, state, first, *rest, training=True)
        return (jnp.sum(jnp.sin(1.3 * out) + 0.1 * out * out) if elementwise else jnp.sum(out)), out

    (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, first)
    return out, grads


@check
def dp_loops_inside():
    """Layers whose loops carry a state (bidirectional GRU with lengths=, blockwise causal attention,
    CTC's forward variables, LinearCrossEntropyLoss's chunks) inside DataParallel: the loop's carry
    starts replicated and becomes per-device; outputs and gradients equal the whole batch's."""
    import funclayers._sdpa as attention

    def compare(module, first, *rest, elementwise=True, what):
        dp = fl.DataParallel(module)
        params, state = dp.init(jax.random.PRNGKey(9))
        got = _summed_grads(dp, params, state, first, *rest, elementwise=elementwise)
        want = _summed_grads(module, params["module"], state["module"], first, *rest, elementwise=elementwise)
        if elementwise:
            assert_trees_close(got[0], want[0], f"{what}: output")
        assert_trees_close(got[1][0]["module"], want[1][0], f"{what}: grad")
        assert_trees_close(got[1][1], want[1][1], f"{what}: grad of input")

    def gru_forward(m, x, lengths):
        return m.gru(x, lengths=lengths)[0]

    gru = fl.Module(gru_forward, gru=fl.GRU(3, 4, bidirectional=True, batch_first=True, dtype=F64))
    lengths = jnp.asarray([5, 2, 4, 1, 5, 3, 3, 1])
    compare(gru, randn(8, 5, 3, seed=10), lengths, what="GRU, lengths=")

    def attention_forward(m, x):
        mask = fl.Transformer.generate_square_subsequent_mask(x.shape[1], dtype=F64)
        masked = m.attn(x, x, x, attn_mask=mask, is_causal=True, need_weights=False)[0]
        return masked + m.attn(x, x, x, need_weights=False)[0]  # no mask: the flash kernel

    saved, attention._BLOCKWISE_MIN_SCORES = attention._BLOCKWISE_MIN_SCORES, 1
    try:
        mha = fl.Module(attention_forward, attn=fl.MultiheadAttention(4, 2, batch_first=True, dtype=F64))
        compare(mha, randn(8, 6, 4, seed=11), what="MultiheadAttention, blockwise")
    finally:
        attention._BLOCKWISE_MIN_SCORES = saved

    def ctc_forward(m, logits, targets, input_lengths, target_lengths):  # batch first, scattered on dim 0
        log_probs = jax.nn.log_softmax(m.proj(logits), axis=-1).transpose(1, 0, 2)
        return fl.functional.ctc_loss(log_probs, targets, input_lengths, target_lengths, reduction="sum")

    ctc = fl.Module(ctc_forward, proj=fl.Linear(3, 4, dtype=F64))
    targets = jnp.asarray(np.random.default_rng(12).integers(1, 4, (8, 3)))
    compare(ctc, randn(8, 7, 3, seed=12), targets, jnp.asarray([7, 6, 7, 5, 7, 7, 4, 6]),
            jnp.asarray([3, 2, 1, 3, 0, 2, 3, 1]), elementwise=False, what="CTC")
    lce = fl.LinearCrossEntropyLoss(3, 5, reduction="sum", dtype=F64)
    classes = jnp.asarray(np.random.default_rng(13).integers(0, 5, (8,)))
    compare(lce, randn(8, 3, seed=13), classes, elementwise=False, what="LinearCrossEntropyLoss")


def main(names: list[str]) -> int:
    assert jax.device_count() == 4, f"expected 4 simulated CPU devices, got {jax.devices()}"
    failed = 0
    for name in names or list(CHECKS):
        start = time.perf_counter()
        try:
            CHECKS[name]()
            print(f"CHECK {name} ok ({time.perf_counter() - start:.1f} s)", flush=True)
        except Exception:  # report every check, then fail
            failed += 1
            print(f"CHECK {name} FAIL\n{traceback.format_exc()}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
