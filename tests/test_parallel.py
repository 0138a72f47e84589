"""DataParallel, DistributedDataParallel, convert_sync_batchnorm and the training-step helper.

The pytest process has JAX running on one CPU device, so the multi-device checks (4 simulated CPU
devices, float64, against the single-device computation on the whole batch) run once in a
subprocess (tests/parallel_checks.py), and each check is reported by its own test below. The
multi-process test runs examples/train_digits_ddp.py: 2 processes x 2 CPU devices on localhost
(jax.distributed, gloo), then 1 process x 4 devices on the same global batches.
"""

import inspect
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

import funclayers as fl

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _env(devices, flags=""):
    src = os.path.join(ROOT, "src")
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}{flags}",
                PYTHONPATH=os.pathsep.join([src, ROOT, os.environ.get("PYTHONPATH", "")]))


# The checks compile many small programs and run each once: XLA's LLVM backend at -O0 compiles the same HLO
# for a third less CPU time (the whole script: 59 -> 40 s)
_FAST_COMPILE = " --xla_backend_optimization_level=0"


@pytest.fixture(scope="module")
def four_devices():
    """{check name: (passed, its output)} from one run of tests/parallel_checks.py on 4 CPU devices."""
    try:
        proc = subprocess.run([sys.executable, os.path.join(HERE, "parallel_checks.py")], capture_output=True,
                              text=True, env=_env(4, _FAST_COMPILE), timeout=600)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"tests/parallel_checks.py timed out after 600 s:\n{(e.stdout or '')[-3000:]}")
    blocks = re.split(r"^(?=CHECK )", proc.stdout, flags=re.M)
    results = {}
    for block in blocks:
        match = re.match(r"CHECK (\w+) (ok|FAIL)", block)
        if match:
            results[match.group(1)] = (match.group(2) == "ok", block)
    if not results:
        pytest.fail(f"tests/parallel_checks.py reported nothing (exit {proc.returncode}):\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return results, proc.stdout + proc.stderr


def _report(four_devices, name):
    results, text = four_devices
    assert name in results, f"check {name} did not run; the script's output:\n{text[-3000:]}"
    passed, block = results[name]
    assert passed, f"on 4 CPU devices:\n{block}"
    return block


CHECKS = ["dp_batchnorm_and_dropout_per_replica", "dp_syncbatchnorm_is_batchnorm_on_the_whole_batch",
          "dp_dim1_sequence_first_with_syncbatchnorm", "ddp_matches_the_whole_batch_and_trains_as_one_device",
          "dp_device_ids_small_batches_and_scalar_outputs", "dp_forward_mode_in_eval"]


@pytest.mark.parametrize("name", CHECKS)
def test_on_four_cpu_devices(four_devices, name):
    """See the check of that name in tests/parallel_checks.py."""
    _report(four_devices, name)


def test_dataparallel_lstm_inside(four_devices):
    """An LSTM inside DataParallel (batch_first; and sequence-first with dim=1) equals the whole batch."""
    _report(four_devices, "dp_lstm_inside")


def test_dataparallel_loops_inside(four_devices):
    """GRU with lengths=, blockwise attention, CTC and chunked linear cross entropy inside DataParallel."""
    _report(four_devices, "dp_loops_inside")


def _ddp_example(*args, timeout=420):
    cmd = [sys.executable, os.path.join(ROOT, "examples", "train_digits_ddp.py"), "--spawn", "2",
           "--devices-per-process", "2", "--batch-size", "16", "--timeout", "180", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=_env(1), timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the DDP example hung past {timeout} s:\n{(e.stdout or '')[-3000:]}")


def test_ddp_on_two_processes_ends_with_one_process_params():
    """Process 1 starts from other params and buffers: DDP takes rank 0's (init_sync, broadcast_buffers)."""
    proc = _ddp_example("--steps", "2", "--perturb-process", "1")
    assert proc.returncode == 0 and "DDP-MATCH" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_ddp_launch_fails_when_a_worker_dies():
    proc = _ddp_example("--steps", "2", "--fail-process", "1", timeout=200)
    assert proc.returncode != 0
    assert "process 1 exited with status 3" in proc.stdout + proc.stderr, proc.stdout[-2000:] + proc.stderr[-2000:]


# -- one device: names, torch interop, errors, conversion ---------------------------------------


def _torch_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 3))


def _cnn():
    return fl.Sequential(fl.Conv2d(2, 4, 3, padding=1), fl.BatchNorm2d(4), fl.ReLU(), fl.Flatten(),
                         fl.Linear(4 * 5 * 5, 3))


def test_dataparallel_loads_torch_dataparallel_state_dict_and_matches_it():
    module = torch.nn.DataParallel(_torch_cnn())  # no CUDA device: torch runs the module itself
    layer = fl.DataParallel(_cnn())
    assert repr(layer) == repr(module)
    params, state = fl.load_state_dict(layer, module.state_dict())
    assert sorted(fl.state_dict(params, state)) == sorted(module.state_dict())
    x = np.random.default_rng(0).standard_normal((6, 2, 5, 5)).astype(np.float32)
    expected = module.train()(torch.from_numpy(x)).detach().numpy()
    out, new_state = layer.apply(params, state, jnp.asarray(x), training=True)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(new_state["module"]["1"][name], getattr(module.module[1], name).numpy(),
                                   rtol=1e-5, atol=1e-6)
    inner_params, inner_state = fl.load_state_dict(_cnn(), module.module.state_dict())
    assert jax.tree_util.tree_all(jax.tree.map(np.array_equal, inner_params, params["module"]))


def test_dataparallel_on_one_device_is_the_module_with_replica_zero_rng():
    model = fl.Sequential(fl.Linear(3, 8), fl.Dropout(0.5), fl.Linear(8, 2))
    dp = fl.DataParallel(model, device_ids=[0])
    params, state = dp.init(jax.random.PRNGKey(0))
    x, rng = jnp.ones((5, 3)), jax.random.PRNGKey(1)
    out, _ = jax.jit(dp.apply, static_argnames="training")(params, state, x, rng=rng, training=True)
    expected, _ = model.apply(params["module"], state["module"], x, rng=jax.random.fold_in(rng, 0), training=True)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_dataparallel_bad_use_raises_clear_errors():
    dp = fl.DataParallel(fl.Linear(3, 2))
    params, state = dp.init(jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match=r"input leaf 0 is a float \(1.0\), not an array.*jnp.asarray"):
        dp.apply(params, state, [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="no array input to scatter"):
        dp.apply(params, state)
    with pytest.raises(ValueError, match=r"device_ids entry 5 does not exist: this process has 1 cpu device"):
        fl.DataParallel(fl.Linear(3, 2), device_ids=[5])
    with pytest.raises(ValueError, match="device_ids must be a non-empty sequence"):
        fl.DataParallel(fl.Linear(3, 2), device_ids=0)
    with pytest.raises(ValueError, match="dim must be a non-negative int"):
        fl.DataParallel(fl.Linear(3, 2), dim=-1)
    with pytest.raises(TypeError, match="module must be a funclayers Layer"):
        fl.DataParallel(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"DataParallel\(dim=2\) scatters along dim 2, but an input has shape"):
        fl.DataParallel(fl.Linear(3, 2), dim=2).apply(params, state, jnp.ones((4, 3)))
    pair = fl.Module(lambda m, x, y: m.lin(x) + m.lin(y), lin=fl.Linear(3, 2))
    pair_dp = fl.DataParallel(pair)
    with pytest.raises(ValueError, match=r"different sizes along dim 0 \(\[4, 5\]\)"):
        pair_dp.apply(*pair_dp.init(jax.random.PRNGKey(0)), jnp.ones((4, 3)), jnp.ones((5, 3)))
    with pytest.raises(ValueError, match="process_group must be None or the mesh axis name"):
        fl.DistributedDataParallel(fl.Linear(3, 2), process_group=3)


def test_syncbatchnorm_with_a_named_group_outside_any_mapped_axis_raises():
    layer = fl.parallel.convert_sync_batchnorm(fl.Sequential(fl.Linear(3, 4), fl.BatchNorm1d(4)), "replicas")
    params, state = layer.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"process_group 'replicas' names a mapped axis, but none of"):
        layer.apply(params, state, jnp.ones((4, 3)), training=True)
    out, _ = jax.vmap(lambda x: layer.apply(params, state, x, training=True), axis_name="replicas")(
        jnp.arange(24.0).reshape(2, 4, 3))
    whole, _ = layer.apply(params, state, jnp.arange(24.0).reshape(8, 3))  # eval: no reduction needed
    plain = fl.Sequential(fl.Linear(3, 4), fl.BatchNorm1d(4))
    expected, _ = plain.apply(params, state, jnp.arange(24.0).reshape(8, 3), training=True)
    np.testing.assert_allclose(out.reshape(8, 4), expected, rtol=1e-5, atol=1e-5)  # global statistics
    assert whole.shape == (8, 4)


def test_convert_sync_batchnorm_keeps_params_and_names_and_is_batchnorm_outside_a_wrapper():
    def forward(m, x):
        return m.head(m.body(x))

    model = fl.Module(forward, body=fl.Sequential(fl.Conv2d(2, 4, 3), fl.BatchNorm2d(4, momentum=None)),
                      head=fl.Sequential(fl.Flatten(), fl.BatchNorm1d(36)))
    converted = fl.parallel.convert_sync_batchnorm(model)
    torch_model = torch.nn.Module()
    torch_model.body = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4, momentum=None))
    torch_model.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(36))
    torch_converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(torch_model)
    assert repr(converted).splitlines()[1:] == repr(torch_converted).splitlines()[1:]
    assert "SyncBatchNorm(4, eps=1e-05, momentum=None" in repr(converted)
    assert converted.init is model.init
    params, state = converted.init(jax.random.PRNGKey(0))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 2, 5, 5)), jnp.float32)
    got, got_state = converted.apply(params, state, x, training=True)  # no wrapper: torch's fallback
    want, want_state = model.apply(params, state, x, training=True)
    np.testing.assert_array_equal(got, want)
    assert jax.tree_util.tree_all(jax.tree.map(np.array_equal, got_state, want_state))
    with pytest.raises(ValueError, match="process_group must be None, a mapped axis name"):
        fl.parallel.convert_sync_batchnorm(model, process_group=1)


def test_distributed_data_parallel_has_torchs_signature():
    ours = inspect.signature(fl.DistributedDataParallel).parameters
    theirs = dict(inspect.signature(torch.nn.parallel.DistributedDataParallel.__init__).parameters)
    theirs.pop("self")
    assert list(ours) == list(theirs)
    assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]
    dp_ours = inspect.signature(fl.DataParallel).parameters
    dp_theirs = dict(inspect.signature(torch.nn.DataParallel.__init__).parameters)
    dp_theirs.pop("self")
    assert [(k, p.default) for k, p in dp_ours.items()] == [(k, p.default) for k, p in dp_theirs.items()]


def test_ddp_on_one_process_and_the_train_step_helper():
    model = fl.Sequential(fl.Linear(3, 4), fl.Tanh(), fl.Linear(4, 2))
    ddp = fl.DistributedDataParallel(model)
    params, state = ddp.init(jax.random.PRNGKey(0))
    assert sorted(fl.state_dict(params, state)) == ["module.0.bias", "module.0.weight", "module.2.bias",
                                                    "module.2.weight"]
    x = jnp.asarray(np.random.default_rng(2).standard_normal((6, 3)), jnp.float32)
    y = jnp.asarray([0, 1, 1, 0, 1, 0])

    def loss_fn(logits, labels):
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    optimizer = optax.sgd(0.5)
    step = fl.parallel.make_train_step(ddp, optimizer, loss_fn)
    new_params, _, _, loss = step(params, state, optimizer.init(params), x, y)
    assert fl.parallel.shard_batch(ddp, x) is x  # one process: the local batch is the global one

    def plain_loss(p):
        return loss_fn(model.apply(p, state["module"], x)[0], y)

    value, grads = jax.value_and_grad(plain_loss)(params["module"])
    np.testing.assert_allclose(loss, value, rtol=1e-6)
    expected = jax.tree.map(lambda p, g: p - 0.5 * g, params["module"], grads)
    for a, b in zip(jax.tree.leaves(new_params["module"]), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_chunk_plan_is_torch_chunk():
    for size in range(1, 14):
        for devices in (1, 2, 3, 4, 5):
            rows, chunks, last = fl.parallel.chunk_plan(size, devices)
            sizes = [len(c) for c in torch.arange(size).chunk(devices)]
            assert [rows] * (chunks - 1) + [last] == sizes, (size, devices)
