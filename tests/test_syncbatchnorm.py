"""SyncBatchNorm: BatchNorm outside a mapped axis; global statistics under vmap / pmap / shard_map."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import oracle
import pytest
import torch
from _norm_helpers import randomize
from oracle import check_layer, randn

import funclayers as fl


def _atol(dtype):
    """float32: weight/bias gradients sum products over the batch in another order than torch's."""
    return dict(atol=1e-5) if np.dtype(dtype) == np.float32 else {}


SHAPES = [pytest.param((5, 3), id="2d"), pytest.param((4, 3, 5), id="3d"),
          pytest.param((2, 3, 3, 4), id="4d"), pytest.param((2, 3, 2, 2, 3), id="5d")]
# every rank with the defaults; the options (which do not depend on the rank) on 3d input
OUTSIDE = [pytest.param(*s.values, {}, id=f"{s.id}-default") for s in SHAPES] + [
    pytest.param((4, 3, 5), dict(momentum=None), id="3d-cma"),
    pytest.param((4, 3, 5), dict(affine=False, track_running_stats=False), id="3d-plain"),
]


@pytest.mark.parametrize("shape,config", OUTSIDE)
def test_syncbatchnorm_outside_a_mapped_axis_matches_torch(shape, config, dtype):
    """torch's SyncBatchNorm without an initialised process group falls back to F.batch_norm too.

    (process_group=None: the default group, which outside any data-parallel wrapper is none.)
    """
    module = randomize(torch.nn.SyncBatchNorm(3, **config))
    layer = fl.SyncBatchNorm(3, **config)
    assert layer.name == repr(module)
    check_layer(module, layer, [randn(*shape, seed=1) + 1.0], dtype=dtype, training=True, steps=2,
                **_atol(dtype))


def test_syncbatchnorm_eval_matches_torch(dtype):
    module = randomize(torch.nn.SyncBatchNorm(3))
    check_layer(module, fl.SyncBatchNorm(3), [randn(4, 3, 5, seed=2)], dtype=dtype, training=False)


def test_syncbatchnorm_rejects_bad_input():
    layer = fl.SyncBatchNorm(3)
    params, state = layer.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"expected at least 2D input \(got 1D input\)"):
        layer.apply(params, state, jnp.ones((3,)))
    with pytest.raises(ValueError, match="process_group must be None, a mapped axis name"):
        fl.SyncBatchNorm(3, process_group=3)
    empty = fl.SyncBatchNorm(0)
    with pytest.raises(ValueError, match="SyncBatchNorm number of input channels should be non-zero"):
        empty.apply(*empty.init(jax.random.PRNGKey(0)), jnp.ones((2, 0, 3)))


def _torch_reference(x, module, ct):
    """torch BatchNorm on the whole batch: output, input grad, param grads, buffers after the step."""
    tx = torch.from_numpy(x).requires_grad_(True)
    out = module(tx)
    (out * torch.from_numpy(ct)).sum().backward()
    return dict(out=out.detach().numpy(), grad_x=tx.grad.numpy(), grad_weight=module.weight.grad.numpy(),
                grad_bias=module.bias.grad.numpy(), running_mean=module.running_mean.numpy(),
                running_var=module.running_var.numpy())


@pytest.mark.parametrize("momentum", [pytest.param(0.1, id="momentum0.1"), pytest.param(None, id="cma")])
def test_syncbatchnorm_under_vmap_uses_global_statistics(momentum, dtype):
    devices, per_device, channels = 4, 2, 3
    x = randn(devices * per_device, channels, 5, dtype=dtype, seed=3) * 2 + 1
    ct = randn(*x.shape, dtype=dtype, seed=4)
    module = randomize(torch.nn.BatchNorm1d(channels, momentum=momentum))
    module = module.to(oracle.TORCH_DTYPES[np.dtype(dtype)])
    layer = fl.SyncBatchNorm(channels, momentum=momentum, process_group="devices")
    params, state = oracle.load_into(layer, module, dtype)
    expected = _torch_reference(x, module.train(), ct)

    def loss(params, x, ct):
        out, new_state = layer.apply(params, state, x, training=True)
        return jnp.sum(out * ct), (out, new_state)

    def per_device_step(params, x, ct):
        return jax.grad(loss, argnums=(0, 1), has_aux=True)(params, x, ct)

    split = jnp.asarray(x).reshape(devices, per_device, channels, 5)
    split_ct = jnp.asarray(ct).reshape(split.shape)
    (g_params, g_x), (out, new_state) = jax.jit(jax.vmap(per_device_step, in_axes=(None, 0, 0),
                                                         axis_name="devices"))(params, split, split_ct)
    tol = oracle.tolerance(dtype, **_atol(dtype))
    oracle.assert_close(out.reshape(x.shape), expected["out"], "output", **tol)
    oracle.assert_close(g_x.reshape(x.shape), expected["grad_x"], "grad of input", **tol)
    # params are shared by the devices: the data-parallel gradient is the sum of the per-device ones
    oracle.assert_close(g_params["weight"].sum(0), expected["grad_weight"], "grad of weight", **tol)
    oracle.assert_close(g_params["bias"].sum(0), expected["grad_bias"], "grad of bias", **tol)
    for name in ("running_mean", "running_var"):
        for d in range(devices):  # every device holds the same, global update
            oracle.assert_close(new_state[name][d], expected[name], f"{name} on device {d}", **tol)
    assert int(new_state["num_batches_tracked"][0]) == 4


def test_syncbatchnorm_reduces_over_several_axes_and_rejects_unbound_names():
    x = jnp.asarray(randn(2, 3, 4, 3, 5, seed=5))  # (axis a, axis b, per-device batch, C, L)
    whole = x.reshape(24, 3, 5)
    bn = fl.BatchNorm1d(3)
    params, state = bn.init(jax.random.PRNGKey(0))
    expected, expected_state = bn.apply(params, state, whole, training=True)

    def run(group, x):
        layer = fl.SyncBatchNorm(3, process_group=group)
        return layer.apply(params, state, x, training=True)

    both = jax.vmap(jax.vmap(lambda x: run(("a", "b"), x), axis_name="b"), axis_name="a")
    out, new_state = both(x)
    np.testing.assert_allclose(out.reshape(whole.shape), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new_state["running_var"][1, 2], expected_state["running_var"], rtol=1e-5)
    only_b = jax.vmap(jax.vmap(lambda x: run("b", x), axis_name="b"), axis_name="a")
    out_b, _ = only_b(x)
    for a in range(2):  # each value of axis a is its own group of 3 devices
        local, _ = bn.apply(params, state, x[a].reshape(12, 3, 5), training=True)
        np.testing.assert_allclose(out_b[a].reshape(local.shape), local, rtol=1e-5, atol=1e-5)
    partly = jax.vmap(lambda x: run(("b", "nowhere"), x), axis_name="b")
    out_p, _ = partly(x[0])  # names that are not bound are skipped while one is
    local, _ = bn.apply(params, state, x[0].reshape(12, 3, 5), training=True)
    np.testing.assert_allclose(out_p.reshape(local.shape), local, rtol=1e-5, atol=1e-5)
    unbound = jax.vmap(lambda x: run("nowhere", x), axis_name="devices")
    with pytest.raises(ValueError, match=r"process_group 'nowhere' names a mapped axis, but none of \['nowhere'\]"):
        unbound(x[0])  # a named group with none of its axes bound: an error, not silent per-device stats
    with pytest.raises(ValueError, match="is bound where the layer runs in training mode"):
        run("batch", x[0, 0])  # outside any mapped axis
    eval_out, _ = fl.SyncBatchNorm(3, process_group="batch").apply(params, state, x[0, 0])  # eval: no reduction
    np.testing.assert_allclose(eval_out, bn.apply(params, state, x[0, 0])[0], rtol=1e-6)


def test_syncbatchnorm_eval_under_the_axis_uses_running_statistics():
    layer = fl.SyncBatchNorm(3, process_group="devices")
    params, state = layer.init(jax.random.PRNGKey(0))
    state = dict(state, running_mean=jnp.asarray([1.0, 2.0, 3.0]))
    x = jnp.asarray(randn(4, 2, 3))
    out, _ = jax.vmap(lambda x: layer.apply(params, state, x), axis_name="devices")(x)
    expected = (x - state["running_mean"][:, None].T) / jnp.sqrt(1 + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


_MULTI_DEVICE_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np, torch
    from jax.sharding import Mesh, PartitionSpec as P
    import funclayers as fl
    assert jax.device_count() == 4, jax.devices()
    x = np.random.default_rng(0).standard_normal((8, 3, 4, 5)).astype(np.float32) * 3 + 2
    module = torch.nn.BatchNorm2d(3).train()
    expected = module(torch.from_numpy(x)).detach().numpy()
    layer = fl.SyncBatchNorm(3, process_group="batch")
    params, state = layer.init(jax.random.PRNGKey(0))

    def step(x):
        return layer.apply(params, state, x, training=True)

    def check(out, new_state, how):
        np.testing.assert_allclose(np.asarray(out).reshape(x.shape), expected, rtol=1e-5, atol=1e-5,
                                   err_msg=how)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(np.asarray(new_state[name]).reshape(-1, 3)[0],
                                       getattr(module, name).numpy(), rtol=1e-5, atol=1e-6, err_msg=how)

    out, new_state = jax.pmap(step, axis_name="batch")(jnp.asarray(x).reshape(4, 2, 3, 4, 5))
    check(out, new_state, "pmap")
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    sharded = jax.jit(jax.shard_map(step, mesh=mesh, in_specs=P("batch"), out_specs=(P("batch"), P())))
    out, new_state = sharded(jnp.asarray(x))
    check(out, new_state, "shard_map")
    print("SYNC-OK")
""")


def test_syncbatchnorm_on_four_cpu_devices_matches_batchnorm_on_the_whole_batch():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _MULTI_DEVICE_SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0 and "SYNC-OK" in proc.stdout, proc.stderr[-3000:]
