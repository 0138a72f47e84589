"""_distributed.py: DistributedDataParallel over one global mesh of every process's devices, SyncBatchNorm
conversion, and a few-line optax training step for any (wrapped or plain) layer.

Multi-process JAX is single-program: every process runs the same jitted step over global arrays
whose rows live on the devices of all processes (`jax.distributed.initialize` first). A process's
local batch becomes its block of the global batch (`jax.make_array_from_process_local_data`), the
step runs one replica per device under `jax.shard_map`, and the gradient w.r.t. the replicated
params of a loss over the global output is summed over every device inside the compiled step:
torch DDP's all-reduce, with nothing home-made underneath.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .._batchnorm import _group_names, converted_to_sync
from .._layer import Layer
from ._data_parallel import is_array, replicated_apply, resolve_devices

DDP_AXIS = "distributed_data_parallel"


def _global_devices(where: str, device_ids: Sequence[Any] | None) -> list:
    """Every process's devices (the same local indices on each), grouped by process in process order."""
    by_process: dict[int, list] = {}
    for device in jax.devices():
        by_process.setdefault(device.process_index, []).append(device)
    chosen = []
    for process in sorted(by_process):
        local = sorted(by_process[process], key=lambda d: d.id)
        if process == jax.process_index():
            local = sorted(jax.local_devices(), key=lambda d: d.id)
        ids = None if device_ids is None else [local.index(d) if isinstance(d, jax.Device) and d in local else d
                                                for d in device_ids]
        chosen += resolve_devices(where, ids, local)
    return chosen


def _is_global(x: Any) -> bool:
    """A traced value (inside jit: already global) or an array spanning other processes' devices."""
    return isinstance(x, jax.core.Tracer) or (isinstance(x, jax.Array) and not x.is_fully_addressable)


def DistributedDataParallel(module: Layer, device_ids: Sequence[int | jax.Device] | None = None,
                            output_device: Any = None, dim: int = 0, broadcast_buffers: bool | None = None,
                            init_sync: bool = True, process_group: str | None = None,
                            bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                            check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                            static_graph: bool = False, delay_all_reduce_named_params: Any = None,
                            param_to_hook_all_reduce: Any = None, mixed_precision: Any = None,
                            device_mesh: Mesh | None = None, skip_all_reduce_unused_params: bool = False,
                            bucket_cap_mb_list: list[int] | None = None, batched_grad_copy: bool = False,
                            forward_sync_buffers: bool | None = None) -> Layer:
    """Data parallelism over the devices of every process; torch.nn.parallel.DistributedDataParallel.

    Across processes, call `jax.distributed.initialize(...)` in every process first (one process
    per host; on CPU also `jax.config.update("jax_cpu_collectives_implementation", "gloo")`).
    Every process builds the same wrapper and holds the same params (same init key); each runs
    the same program on its own local batch (not run here):

    ```python
    jax.distributed.initialize("host0:1234", num_processes=2, process_id=rank)
    ddp = fl.DistributedDataParallel(fl.parallel.convert_sync_batchnorm(model))
    params, state = ddp.init(jax.random.PRNGKey(0))              # the same on every process
    optimizer = optax.adam(1e-3)
    step = fl.parallel.make_train_step(ddp, optimizer, loss_fn)
    opt_state = optimizer.init(params)
    params, state, opt_state, loss = step(params, state, opt_state, x_local, y_local, rng=key)
    ```

    In one process it needs no `jax.distributed` at all: it is `DataParallel` over this process's
    devices (the example below).

    Args:
      module: the funclayers layer; its params and buffers live under `module` (torch's `module.*`).
      device_ids: indices into each process's `jax.local_devices()` (the same on every process);
        default all. torch's one-device-per-process setup is `device_ids=[0]`.
      dim: the batch dimension of the inputs and outputs. Default: 0.
      broadcast_buffers: True (the default, None) takes the buffers from rank 0 at each forward,
        as torch: host-local buffers are broadcast from process 0, and the buffers returned are
        those of rank 0's first replica (inside jit every process then holds them). False keeps
        each process's own buffers as given.
      forward_sync_buffers: torch's newer switch for the same; when given it overrides broadcast_buffers.
        Default: None.
      init_sync: True (the default) takes host-local params (and optimizer state) from rank 0
        when `make_train_step` first makes them global, as torch's DDP broadcasts its params.
      process_group: the name of the mesh axis (default "distributed_data_parallel"); a
        `SyncBatchNorm(process_group=<that name>)` or with None reduces over all devices.
      device_mesh: a 1-D `jax.sharding.Mesh` to run on instead (its axis name is used). Default: None.
      output_device: accepted for torch's signature. Default: None.
      bucket_cap_mb: accepted: XLA schedules the all-reduce inside the compiled step, without
        buckets. Default: None.
      find_unused_parameters: accepted: unused parameters simply get zero gradients. Default: False.
      check_reduction: accepted (deprecated in torch). Default: False.
      gradient_as_bucket_view: accepted: there are no buckets. Default: False.
      static_graph: accepted: a jitted step is a static graph. Default: False.
      delay_all_reduce_named_params: accepted: no per-parameter hooks. Default: None.
      param_to_hook_all_reduce: accepted: no per-parameter hooks. Default: None.
      mixed_precision: accepted and ignored; cast params and inputs yourself. Default: None.
      skip_all_reduce_unused_params: accepted: unused parameters get zero gradients, all-reduced
        with the rest. Default: False.
      bucket_cap_mb_list: accepted: there are no buckets. Default: None.
      batched_grad_copy: accepted: there is no gradient copy. Default: False.

    `apply(params, state, *inputs, rng=None, training=False, **kwargs)` takes this process's local
    batch (numpy or a process-local jax array; it becomes this process's block of the global
    batch) or a global `jax.Array` (what a jitted step receives), runs one replica per device and
    returns the *global* output, sharded over the mesh, and the new state. A loss over the output
    is the loss over the global batch, so `jax.grad` of it is the global-batch gradient on every
    process. Inside `jax.jit` the inputs must already be global: `make_train_step` (or
    `shard_batch`) converts the local batches outside the jit. In one process it is
    `DataParallel` over all local devices (uneven batches split as torch's chunks); across
    processes the global batch must split evenly over all devices.

    Shape: as the module's, with the (global) batch along `dim`.

    Example:
      >>> # One process, every local device
      >>> ddp = fl.DistributedDataParallel(fl.Sequential(fl.Linear(4, 8), fl.BatchNorm1d(8)))
      >>> params, state = ddp.init(jax.random.PRNGKey(0))
      >>> params["module"]["0"]["weight"].shape
      (8, 4)
      >>> y, state = ddp.apply(params, state, jnp.ones((6, 4)), training=True)
      >>> y.shape
      (6, 8)
      >>> optimizer = optax.sgd(0.1)
      >>> step = fl.parallel.make_train_step(ddp, optimizer, lambda out, target: ((out - target) ** 2).mean())
      >>> params, state, opt_state, loss = step(params, state, optimizer.init(params), jnp.ones((6, 4)),
      ...                                       jnp.zeros((6, 8)))
      >>> loss.shape
      ()
    """
    del output_device, bucket_cap_mb, find_unused_parameters, check_reduction
    del gradient_as_bucket_view, static_graph, delay_all_reduce_named_params, param_to_hook_all_reduce
    del mixed_precision, skip_all_reduce_unused_params, bucket_cap_mb_list, batched_grad_copy
    where = "DistributedDataParallel"
    if not isinstance(module, Layer):
        raise TypeError(f"{where}: module must be a funclayers Layer, got {type(module).__name__}.")
    if not isinstance(dim, int) or dim < 0:
        raise ValueError(f"{where}: dim must be a non-negative int, got {dim!r}.")
    if process_group is not None and not isinstance(process_group, str):
        raise ValueError(f"{where}: process_group must be None or the mesh axis name (a str), got "
                         f"{process_group!r}.")
    if device_mesh is not None:
        if len(device_mesh.axis_names) != 1:
            raise ValueError(f"{where}: device_mesh must be 1-D, got axes {device_mesh.axis_names}.")
        devices, axis = list(device_mesh.devices.flat), device_mesh.axis_names[0]
    else:
        devices, axis = _global_devices(where, device_ids), process_group or DDP_AXIS
    sync_buffers = forward_sync_buffers if forward_sync_buffers is not None else \
        (broadcast_buffers if broadcast_buffers is not None else True)
    mesh = Mesh(np.array(devices), (axis,))
    batch_sharding = NamedSharding(mesh, P(*([None] * dim + [axis])))
    replicated = NamedSharding(mesh, P())

    def shard_batch(tree: Any) -> Any:
        """This process's local batch as its block of the global batch (global arrays pass through)."""
        if jax.process_count() == 1:
            return tree
        return jax.tree_util.tree_map(
            lambda x: x if not is_array(x) or _is_global(x)
            else jax.make_array_from_process_local_data(batch_sharding, np.asarray(x)), tree)

    def replicate(tree: Any, *, buffers: bool = False) -> Any:
        """Host-local values as one replicated global array each, taken from rank 0 as torch's DDP
        does (params at construction, `init_sync`; buffers at each forward, `broadcast_buffers`)."""
        if jax.process_count() == 1:
            return tree
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        local = [i for i, x in enumerate(leaves) if is_array(x) and not _is_global(x)]
        if local and (sync_buffers if buffers else init_sync):
            from jax.experimental import multihost_utils

            sent = multihost_utils.broadcast_one_to_all([np.asarray(leaves[i]) for i in local])
            for i, value in zip(local, sent):
                leaves[i] = value
        for i in local:
            leaves[i] = jax.device_put(np.asarray(leaves[i]), replicated)
        return jax.tree_util.tree_unflatten(treedef, leaves)

    def init(rng, *example_inputs, **example_kwargs):
        params, state = module.init(rng, *example_inputs, **example_kwargs)
        return {"module": params}, {"module": state}

    def apply(params, state, *inputs, rng=None, training=False, **kwargs):
        multi = jax.process_count() > 1
        inner_state = state["module"]
        if multi:
            inputs, kwargs = shard_batch((inputs, kwargs))
            if not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(inner_state)):
                inner_state = replicate(inner_state, buffers=True)  # rank 0's buffers, as torch's broadcast
        out, new_state = replicated_apply(where, module, devices, axis, dim, params["module"], inner_state,
                                          inputs, kwargs, rng, training, even_only=multi)
        return out, {"module": new_state}

    apply.shard_batch, apply.replicate, apply.mesh = shard_batch, replicate, mesh
    return Layer(init, apply, where, (("module", module),))


def convert_sync_batchnorm(module: Layer, process_group: str | tuple[str, ...] | None = None) -> Layer:
    """The layer with every BatchNorm1d/2d/3d inside acting as SyncBatchNorm; torch's
    `nn.SyncBatchNorm.convert_sync_batchnorm`.

    Params, state and their names are unchanged (`layer.init` is the same function); the repr
    shows SyncBatchNorm in place of each BatchNorm.

    Args:
      module: any funclayers layer (containers and composites included).
      process_group: as SyncBatchNorm's: None reduces over the enclosing DataParallel /
        DistributedDataParallel's devices (plain BatchNorm outside any wrapper), a name (or names)
        over that mapped axis. Default: None.

    Shape: the converted layer takes and returns what `module` does.

    Example:
      >>> model = fl.parallel.convert_sync_batchnorm(fl.Sequential(fl.Conv2d(3, 8, 3), fl.BatchNorm2d(8)))
      >>> model
      Sequential(
        (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))
        (1): SyncBatchNorm(8, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
      )
    """
    _group_names(process_group)
    if not isinstance(module, Layer):
        raise TypeError(f"convert_sync_batchnorm: expected a funclayers Layer, got {type(module).__name__}.")

    def convert(layer: Layer) -> Layer:
        name = layer.name
        for kind in ("BatchNorm1d(", "BatchNorm2d(", "BatchNorm3d("):
            if name.startswith(kind):
                name = "SyncBatchNorm(" + name[len(kind):]

        def apply(params, state, *inputs, **kwargs):
            with converted_to_sync(process_group):
                return layer.apply(params, state, *inputs, **kwargs)

        return Layer(layer.init, apply, name, tuple((child, convert(c)) for child, c in layer.children))

    return convert(module)


def shard_batch(model: Layer, tree: Any) -> Any:
    """For a DistributedDataParallel `model`: this process's local batch as its block of the global
    batch (a global jax.Array), ready for a jitted step; any other model: `tree` unchanged.

    `make_train_step` calls it for you; call it yourself before a jitted step of your own.

    Args:
      model: the layer the batch is for (a DistributedDataParallel, or any other layer).
      tree: the local batch: an array, or a pytree of arrays (non-array leaves pass through).

    Shape: with P processes each array leaf (B, ...) becomes the global (P * B, ...), sharded along
      DistributedDataParallel's `dim` (there (..., B, ...) -> (..., P * B, ...)); in one process,
      or for any other model, the tree itself.

    Example:
      >>> # One process: the local batch is already the global one
      >>> ddp = fl.DistributedDataParallel(fl.Linear(4, 2))
      >>> x = jnp.ones((8, 4))
      >>> fl.parallel.shard_batch(ddp, x) is x
      True
    """
    return getattr(model.apply, "shard_batch", lambda t: t)(tree)


def make_train_step(model: Layer, optimizer: optax.GradientTransformation,
                    loss_fn: Callable[[Any, Any], Any]) -> Callable:
    """A jitted optax training step for any layer: plain, DataParallel or DistributedDataParallel.

    `step(params, state, opt_state, inputs, targets, rng=None) -> (params, state, opt_state, loss)`
    with `loss_fn(outputs, targets)` a scalar over the whole batch (e.g. its mean). With
    DistributedDataParallel, `inputs` and `targets` are this process's local batch; the step
    makes them global (and the params replicated) outside the jit, and every process gets the
    same new params: the update from the global-batch gradient.

    Args:
      model: the layer to train: plain, DataParallel or DistributedDataParallel. It runs with
        `training=True` and the step's `rng`.
      optimizer: an `optax.GradientTransformation`; `opt_state` is `optimizer.init(params)`.
      loss_fn: `loss_fn(outputs, targets) -> scalar`, differentiated w.r.t. the params.

    Returns: the step function (its compiled part is one `jax.jit`).

    Shape: inputs and targets as the model and loss_fn take them (the batch along the wrapper's
      `dim`); loss ().

    Example:
      >>> model, optimizer = fl.DataParallel(fl.Linear(4, 3)), optax.adam(1e-3)
      >>> def loss_fn(logits, y): return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      >>> step = fl.parallel.make_train_step(model, optimizer, loss_fn)
      >>> params, state = model.init(jax.random.PRNGKey(0))
      >>> x, y = jnp.ones((8, 4)), jnp.arange(8) % 3
      >>> params, state, opt_state, loss = step(params, state, optimizer.init(params), x, y, rng=key)
      >>> loss.shape, bool(jnp.isfinite(loss))
      ((), True)
    """
    def loss(params, state, inputs, targets, rng):
        outputs, new_state = model.apply(params, state, inputs, rng=rng, training=True)
        return loss_fn(outputs, targets), new_state

    @jax.jit
    def compiled(params, state, opt_state, inputs, targets, rng):
        (value, new_state), grads = jax.value_and_grad(loss, has_aux=True)(params, state, inputs, targets, rng)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_state, opt_state, value

    shard = getattr(model.apply, "shard_batch", lambda t: t)
    replicate = getattr(model.apply, "replicate", lambda t, buffers=False: t)

    def step(params, state, opt_state, inputs, targets, rng=None):
        inputs, targets = shard((inputs, targets))
        params, opt_state, rng = replicate((params, opt_state, rng))
        state = replicate(state, buffers=True)
        return compiled(params, state, opt_state, inputs, targets, rng)

    return step
