"""Writes notebooks/05_data_parallel.ipynb (without outputs) from the cells below.

    python notebooks/build_parallel_notebook.py

Edit the cells here, not the .ipynb; tests/test_notebooks.py executes the notebook and checks that
the committed file is what this script writes.
"""

from __future__ import annotations

from build_notebooks import write

FILENAME = "05_data_parallel.ipynb"
TITLE = "Data parallelism: DataParallel, SyncBatchNorm and DistributedDataParallel"

PARALLEL = [
    ("md", """\
# Data parallelism with funclayers

`fl.DataParallel` and `fl.DistributedDataParallel` are torch's wrappers rebuilt on JAX's own
runtime: a device mesh, `jax.shard_map` and, across processes, `jax.distributed`. The wrapped model
keeps torch's parameter names (`module.0.weight`), every device runs one replica on its chunk of
the batch, and the gradient all-reduce happens inside the compiled step.

This notebook simulates 4 devices on the CPU. XLA reads the device count once, when JAX starts,
so the first cell sets it before importing JAX."""),
    ("code", """\
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"   # before JAX starts
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.abspath(".."))   # the repository root, for `examples`

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import funclayers as fl

print(jax.devices())"""),
    ("md", """\
## DataParallel: scatter, replicate, gather

`apply` splits every array input along `dim` as torch's `scatter` does (`torch.chunk`: chunks of
ceil(N / devices) rows), runs the module on each chunk on its own device and concatenates the
outputs. 10 rows on 4 devices are chunks of 3, 3, 3 and 1; 6 rows use only 3 devices."""),
    ("code", """\
model = fl.Sequential(fl.Conv2d(1, 8, 3, padding=1), fl.BatchNorm2d(8), fl.ReLU(),
                      fl.Flatten(), fl.Linear(8 * 8 * 8, 10))
dp = fl.DataParallel(model)
params, state = dp.init(jax.random.PRNGKey(0))
print(dp)
print(list(fl.state_dict(params, state))[:4], "...")   # torch's DataParallel names: module.*
for n in (8, 10, 6, 2):
    rows, chunks, last = fl.parallel.chunk_plan(n, 4)
    print(f"batch {n:2d}: {chunks} replicas, chunks of {rows} (the last {last})")"""),
    ("code", """\
x = jnp.asarray(np.random.default_rng(0).standard_normal((10, 1, 8, 8)), jnp.float32)
apply = jax.jit(dp.apply, static_argnames="training")
out, _ = apply(params, state, x)                      # eval mode: running statistics
whole, _ = model.apply(params["module"], state["module"], x)
print("output", out.shape, "- largest difference from the unwrapped model on the whole batch:",
      float(jnp.max(jnp.abs(out - whole))))"""),
    ("md", """\
## BatchNorm per replica, SyncBatchNorm over all of them

In training mode each replica's `BatchNorm` normalises its chunk with the chunk's own statistics,
as in torch, and the running statistics that come back are replica 0's update.
`SyncBatchNorm` (its default `process_group=None` means the wrapper's devices) reduces the count,
sum and squared deviations over the devices: it is BatchNorm on the whole batch, also when the
chunks are uneven. `fl.parallel.convert_sync_batchnorm(model)` swaps every BatchNorm for it,
params and state unchanged.

Below, the four chunks come from differently shifted data, which is where the two differ."""),
    ("code", """\
shift = np.repeat([0.0, 1.0, 2.0, 3.0], [3, 3, 3, 2])[:, None]    # 11 rows: chunks of 3, 3, 3, 2; chunk i shifted by i
feats = jnp.asarray(np.random.default_rng(1).standard_normal((11, 3)) + shift, jnp.float32)

per_device = fl.DataParallel(fl.BatchNorm1d(3))
synced = fl.DataParallel(fl.parallel.convert_sync_batchnorm(fl.BatchNorm1d(3)))
bn_params, bn_state = per_device.init(jax.random.PRNGKey(0))
y_dev, s_dev = per_device.apply(bn_params, bn_state, feats, training=True)
y_sync, s_sync = synced.apply(bn_params, bn_state, feats, training=True)
y_whole, s_whole = fl.BatchNorm1d(3).apply(bn_params["module"], bn_state["module"], feats, training=True)

print("running_mean, BatchNorm per device (replica 0's):", np.round(s_dev["module"]["running_mean"], 4))
print("running_mean, SyncBatchNorm:                     ", np.round(s_sync["module"]["running_mean"], 4))
print("running_mean, BatchNorm on the whole batch:      ", np.round(s_whole["running_mean"], 4))
print("SyncBatchNorm == whole batch:", bool(jnp.allclose(y_sync, y_whole, atol=1e-5)))

chunks = np.split(np.arange(11), [3, 6, 9])
fig, ax = plt.subplots(figsize=(7, 3))
for offset, (label, y) in enumerate((("BatchNorm per device", y_dev), ("SyncBatchNorm", y_sync))):
    means = [float(y[idx, 0].mean()) for idx in chunks]
    ax.bar(np.arange(4) + 0.4 * offset, means, width=0.4, label=label)
ax.set(xticks=np.arange(4) + 0.2, xticklabels=[f"device {i}" for i in range(4)],
       ylabel="mean of the normalised chunk (feature 0)")
ax.axhline(0, color="k", lw=0.5)
ax.legend()
plt.show()"""),
    ("md", """\
Per device, every chunk is centred on its own mean (all bars at 0): the shift between devices is
lost. SyncBatchNorm centres the whole batch, so the chunks keep their offsets.

## Training: the same step, wrapped or not

`fl.parallel.make_train_step(model, optimizer, loss_fn)` is a jitted optax step for any layer.
With SyncBatchNorm and no dropout the data-parallel run is the single-device run on the whole
batch: the gradient of the loss over the gathered output is summed over the replicas inside the
compiled step."""),
    ("code", """\
from examples.digits import digits_cnn, load_digits_data

data = load_digits_data()
plain = digits_cnn(dropout=0.0)
wrapped = fl.DataParallel(fl.parallel.convert_sync_batchnorm(plain))
optimizer = optax.sgd(0.05, momentum=0.9)

def loss_fn(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

params_plain, state_plain = plain.init(jax.random.PRNGKey(0))


def train(layer, p, s, steps=20):
    # `steps` SGD steps on the same random batches of 64; the loss of each step
    step, opt_state = fl.parallel.make_train_step(layer, optimizer, loss_fn), optimizer.init(p)
    order, curve = np.random.default_rng(0), []
    for _ in range(steps):
        idx = order.choice(len(data.x_train), 64, replace=False)
        p, s, opt_state, loss = step(p, s, opt_state, data.x_train[idx], data.y_train[idx])
        curve.append(float(loss))
    return curve


losses = {"one device": train(plain, params_plain, state_plain),    # the same initial weights, under module.*
          "DataParallel, 4 devices": train(wrapped, {"module": params_plain}, {"module": state_plain})}
for name, curve in losses.items():
    plt.plot(curve, label=name, lw=3 if name == "one device" else 1)
plt.xlabel("step"); plt.ylabel("loss"); plt.legend(); plt.show()
print("largest difference between the two loss curves:",   # float32, summed in another order
      max(abs(a - b) for a, b in zip(*losses.values())))"""),
    ("md", """\
## Across processes: DistributedDataParallel

Multi-process JAX runs the same program in every process over global arrays. Start one process per
host, call `jax.distributed.initialize` in each, and build the same model everywhere:

```python
jax.distributed.initialize("host0:1234", num_processes=4, process_id=rank)   # GPUs: NCCL
# on CPU hosts, before it: jax.config.update("jax_cpu_collectives_implementation", "gloo")
ddp = fl.DistributedDataParallel(fl.parallel.convert_sync_batchnorm(model))
params, state = ddp.init(jax.random.PRNGKey(0))          # the same key: the same params everywhere
step = fl.parallel.make_train_step(ddp, optimizer, loss_fn)
params, state, opt_state, loss = step(params, state, opt_state, x_local, y_local, rng=key)
```

Each process passes its own slice of the global batch; the step makes the slices one global array
over every process's devices, and the loss and gradient are those of the global batch, on every
process. In a single process, DDP is DataParallel over all local devices, so the same code runs
here unchanged:"""),
    ("code", """\
ddp = fl.DistributedDataParallel(fl.parallel.convert_sync_batchnorm(plain))
print("processes:", jax.process_count(), " devices in the mesh:", ddp.apply.mesh.devices.size)
ddp_losses = train(ddp, {"module": params_plain}, {"module": state_plain})
print("DDP vs one device, largest loss difference:",
      max(abs(a - b) for a, b in zip(ddp_losses, losses["one device"])))"""),
    ("md", """\
`examples/train_digits_ddp.py --spawn 2 --devices-per-process 2` runs this on 2 processes with 2
simulated CPU devices each (gloo collectives over localhost), then one process with 4 devices on
the same global batches, and checks that both end with the same parameters.
`benchmarks/README.md` has the command lines for several GPU hosts and the measured overhead of
the wrappers."""),
]


def main() -> None:
    write(FILENAME, PARALLEL, TITLE)


if __name__ == "__main__":
    main()
