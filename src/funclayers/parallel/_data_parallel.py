"""_data_parallel.py: torch's scatter / replicate / gather as one jax.shard_map over a device mesh.

`replicated_apply` is the engine of both wrappers: it splits every array input along `dim` as
torch's `scatter` does (`torch.chunk`: chunks of ceil(N / devices) rows, so fewer devices when the
batch is small), runs the wrapped layer once per chunk on its own device inside one `shard_map`
(params and buffers replicated), and concatenates the outputs along `dim`. Gradients of a loss over
the gathered output w.r.t. the replicated params are summed over the devices by shard_map's
transpose: the all-reduce runs inside the compiled step.

shard_map needs equal shards, so an uneven split pads the last chunk (repeating its last real row,
so every value stays finite) and tells the normalisers how many rows of each shard are real
(`_batchnorm.replica_context`): BatchNorm's statistics are those of the replica's real rows,
SyncBatchNorm's those of all real rows. The padding rows are sliced off the output, so they get no
cotangent and add nothing to any gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .._batchnorm import ReplicaContext, replica_context
from .._layer import Layer

DP_AXIS = "data_parallel"


def chunk_plan(size: int, num_devices: int) -> tuple[int, int, int]:
    """torch.chunk's split of `size` rows over `num_devices`: (rows per chunk, chunks, rows in the last).

    torch's scatter takes `tensor.chunk(len(devices), dim)`: chunks of ceil(size / devices) rows, as
    many as that needs (10 rows on 4 devices: 3, 3, 3, 1; 6 rows on 4 devices: 2, 2, 2 on 3 devices).
    DataParallel and DistributedDataParallel split their inputs by it.

    Args:
      size: the number of rows to split (the batch size along `dim`), at least 1.
      num_devices: the number of devices to split them over, at least 1.

    Returns: `(rows, chunks, last)`: rows per chunk, how many chunks (devices used), and the rows
      of the last chunk.

    Example:
      >>> fl.parallel.chunk_plan(10, 4)     # 3 + 3 + 3 + 1
      (3, 4, 1)
      >>> fl.parallel.chunk_plan(6, 4)      # 2 + 2 + 2: only 3 of the 4 devices get rows
      (2, 3, 2)
    """
    rows = -(-size // num_devices)
    chunks = -(-size // rows)
    return rows, chunks, size - (chunks - 1) * rows


def is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def resolve_devices(where: str, device_ids: Sequence[Any] | None, available: Sequence[Any]) -> list:
    """torch's device_ids over jax's devices: indices into `available`, or jax Device objects."""
    available = list(available)
    if device_ids is None:
        return available
    if isinstance(device_ids, (int, jax.Device)) or len(device_ids) == 0:
        raise ValueError(f"{where}: device_ids must be a non-empty sequence of device indices or jax devices, "
                         f"got {device_ids!r}.")
    devices = []
    for entry in device_ids:
        if isinstance(entry, jax.Device):
            if entry not in available:
                raise ValueError(f"{where}: device {entry} in device_ids is not one of this process's devices "
                                 f"{available}.")
            devices.append(entry)
        elif isinstance(entry, (int, np.integer)) and 0 <= int(entry) < len(available):
            devices.append(available[int(entry)])
        else:
            raise ValueError(f"{where}: device_ids entry {entry!r} does not exist: this process has "
                             f"{len(available)} {available[0].platform} device(s), indices 0..{len(available) - 1} "
                             f"({available}). On CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N "
                             f"(set before jax starts) simulates N devices.")
    if len(set(devices)) != len(devices):
        raise ValueError(f"{where}: device_ids {list(device_ids)} name a device twice.")
    return devices


def _split_inputs(where: str, inputs: tuple, kwargs: dict, dim: int):
    """The array leaves to scatter (positional and keyword) and how to rebuild the call."""
    leaves, treedef = jax.tree_util.tree_flatten(inputs)
    for i, leaf in enumerate(leaves):
        if not is_array(leaf):
            raise TypeError(f"{where} scatters its inputs along dim {dim}, but input leaf {i} is a "
                            f"{type(leaf).__name__} ({leaf!r:.60}), not an array. Pass the batch as a "
                            f"jax or numpy array (jnp.asarray(...)); non-array settings go as keyword "
                            f"arguments, which every replica receives unchanged.")
    array_kwargs = {k: v for k, v in kwargs.items() if is_array(v)}
    static_kwargs = {k: v for k, v in kwargs.items() if not is_array(v)}
    scattered = leaves + list(array_kwargs.values())
    if not scattered:
        raise TypeError(f"{where}: no array input to scatter over the devices; pass the batch as an array.")
    sizes = set()
    for leaf in scattered:
        if jnp.ndim(leaf) <= dim:
            raise ValueError(f"{where}(dim={dim}) scatters along dim {dim}, but an input has shape "
                             f"{tuple(jnp.shape(leaf))}; every array input needs a dim {dim} to split.")
        sizes.add(jnp.shape(leaf)[dim])
    if len(sizes) != 1:
        raise ValueError(f"{where}(dim={dim}): the array inputs have different sizes along dim {dim} "
                         f"({sorted(sizes)}); torch's scatter splits each into the same number of chunks, "
                         f"so they must agree.")
    size = sizes.pop()
    if size == 0:
        raise ValueError(f"{where}: the batch is empty along dim {dim}; there is nothing to scatter.")
    return scattered, treedef, len(leaves), list(array_kwargs), static_kwargs, size


def _pad(x: jax.Array, dim: int, total: int) -> jax.Array:
    """Pad along `dim` to `total` rows by repeating the last row (finite values for the masked rows)."""
    pad = total - x.shape[dim]
    if pad == 0:
        return x
    last = lax.slice_in_dim(x, x.shape[dim] - 1, x.shape[dim], axis=dim)
    return jnp.concatenate([x, jnp.repeat(last, pad, axis=dim)], axis=dim)


def replicated_apply(where: str, module: Layer, devices: Sequence[Any], axis_name: str, dim: int,
                     params: Any, state: Any, inputs: tuple, kwargs: dict, rng: Any, training: bool,
                     even_only: bool = False) -> tuple[Any, Any]:
    """Scatter, run one replica per device under jax.shard_map, gather: (outputs, replica 0's new state)."""
    scattered, treedef, n_positional, array_keys, static_kwargs, size = _split_inputs(where, inputs, kwargs,
                                                                                      dim)
    rows, chunks, last = chunk_plan(size, len(devices))
    padded = rows * chunks != size
    if even_only and (padded or chunks != len(devices)):  # global arrays span every device of the mesh
        raise ValueError(f"{where}: the global batch of {size} rows along dim {dim} does not split evenly over "
                         f"{len(devices)} devices across processes; give every process the same local batch "
                         f"size, a multiple of its local device count.")
    mesh = Mesh(np.array(list(devices)[:chunks]), (axis_name,))
    spec = P(*([None] * dim + [axis_name]))
    scattered = [_pad(jnp.asarray(leaf), dim, rows * chunks) for leaf in scattered]
    context = dict(axis_name=axis_name, shard_size=rows, smallest=last, where=where)

    def replica(params, state, rng, *shards):
        index = lax.axis_index(axis_name)
        valid = jnp.clip(size - index * rows, 0, rows) if padded else None
        args = jax.tree_util.tree_unflatten(treedef, list(shards[:n_positional]))
        call_kwargs = dict(static_kwargs, **dict(zip(array_keys, shards[n_positional:])))
        key = None if rng is None else jax.random.fold_in(rng, index)  # a different rng per replica
        # each replica holds its own copy: typed as varying over the devices, so custom_vjp rules
        # (BatchNorm's, the convolutions') see per-device cotangents; pcast's transpose sums them
        params, state = jax.tree_util.tree_map(lambda a: lax.pcast(a, axis_name, to="varying"), (params, state))
        with replica_context(ReplicaContext(valid=valid, **context)):
            out, new_state = module.apply(params, state, *args, rng=key, training=training, **call_kwargs)
        # one out_spec for every leaf: the gathered dim moved to the front (a 0-d output becomes one row)
        out = jax.tree_util.tree_map(lambda y: _to_front(where, y, dim), out)
        return out, jax.tree_util.tree_map(lambda s: jnp.expand_dims(s, 0), new_state)

    mapped = jax.shard_map(replica, mesh=mesh, in_specs=(P(), P(), P()) + (spec,) * len(scattered),
                           out_specs=P(axis_name))
    if jax.process_count() == 1:  # eager calls: arrays committed to one device go where the replicas run
        params, state, rng = _place((params, state, rng), NamedSharding(mesh, P()))
        scattered = _place(scattered, NamedSharding(mesh, spec))
    out, stacked_state = mapped(params, state, rng, *scattered)
    out = jax.tree_util.tree_map(lambda y: _gather(where, y, dim, rows, chunks, size, padded), out)
    return out, jax.tree_util.tree_map(lambda s: s[0], stacked_state)  # replica 0's buffers, as torch keeps


def _place(tree: Any, sharding: NamedSharding) -> Any:
    """Concrete arrays onto the mesh (torch's replicate / scatter copies); traced ones are jit's."""
    return jax.tree_util.tree_map(
        lambda a: jax.device_put(a, sharding) if isinstance(a, jax.Array) and not isinstance(a, jax.core.Tracer)
        else a, tree)


def _to_front(where: str, y: Any, dim: int) -> jax.Array:
    y = jnp.asarray(y)
    if y.ndim == 0:  # torch's gather unsqueezes scalars into a vector (one per replica)
        return y[None]
    if y.ndim <= dim:
        raise ValueError(f"{where}(dim={dim}) gathers the outputs along dim {dim}, but the module returned "
                         f"an output of shape {y.shape}.")
    return jnp.moveaxis(y, dim, 0)


def _gather(where: str, y: jax.Array, dim: int, rows: int, chunks: int, size: int, padded: bool) -> jax.Array:
    per_replica = y.shape[0] // chunks
    if padded:
        if per_replica != rows:
            raise ValueError(f"{where}: with an uneven split ({size} rows over {chunks} devices: chunks of "
                             f"{rows}, the last padded) every output must keep the batch along dim {dim}, but "
                             f"one has {per_replica} row(s) per replica (a scalar or a reduction over the "
                             f"batch). Return per-sample outputs, or use a batch size the devices divide.")
        y = y[:size]
    # a 1-d gathered output with dim > 0 came from scalars (outputs without dim `dim` raise above)
    return y if dim == 0 or y.ndim == 1 else jnp.moveaxis(y, 0, dim)


def DataParallel(module: Layer, device_ids: Sequence[int | jax.Device] | None = None,
                 output_device: int | jax.Device | None = None, dim: int = 0) -> Layer:
    """Runs a layer on several devices of this process, one chunk of the batch each; torch.nn.DataParallel.

    Args:
      module: the funclayers layer to replicate. Its params and buffers live under `module`
        (`params["module"]["0"]["weight"]`), torch's `module.0.weight`, so a torch DataParallel
        model's state_dict loads unchanged.
      device_ids: indices into `jax.local_devices()` (or jax Device objects); default all of them.
      output_device: where an eager (un-jitted) call gathers its outputs; default `device_ids[0]`.
        Under `jax.jit` XLA places the gathered output.
      dim: the dimension to scatter the inputs and gather the outputs along. Default: 0.

    `apply` splits every array input (positional, or keyword) along `dim` as torch's `scatter` does
    (`torch.chunk`: ceil(N / devices) rows per chunk, fewer devices when the batch is small), runs
    the module on each chunk on its own device inside one `jax.shard_map`, and concatenates the
    outputs along `dim` (scalar outputs become one value per replica, as torch's gather). Non-array
    keyword arguments reach every replica unchanged. Replica i draws from
    `jax.random.fold_in(rng, i)`. BatchNorm normalises each replica's chunk with its own
    statistics and the returned buffers are replica 0's update (torch keeps those); SyncBatchNorm
    with `process_group=None` reduces over the wrapper's devices (the whole batch's statistics).
    Gradients w.r.t. the params are summed over the replicas inside the compiled step.

    `jax.shard_map` needs equal shards: an uneven split pads the last chunk (repeating its last
    row) and BatchNorm / SyncBatchNorm leave the padding rows out of their statistics; the padding
    is sliced off the outputs, so it adds nothing to any gradient. A module whose output does not
    keep the batch along `dim` (a scalar loss, a sum over the batch) cannot be un-padded and
    raises with an uneven split; with an even one, scalars are gathered one per replica as in torch.

    Shape: as the module's, with the batch along `dim`.

    Example:
      >>> model = fl.DataParallel(fl.Sequential(fl.Linear(4, 8), fl.ReLU(), fl.Linear(8, 2)))
      >>> params, state = model.init(jax.random.PRNGKey(0))
      >>> params["module"]["0"]["weight"].shape
      (8, 4)
      >>> y, state = jax.jit(model.apply)(params, state, jnp.ones((16, 4)))
      >>> y.shape
      (16, 2)
    """
    if not isinstance(module, Layer):
        raise TypeError(f"DataParallel: module must be a funclayers Layer, got {type(module).__name__}.")
    if not isinstance(dim, int) or dim < 0:
        raise ValueError(f"DataParallel: dim must be a non-negative int, got {dim!r}.")
    devices = resolve_devices("DataParallel", device_ids, jax.local_devices())
    target = resolve_devices("DataParallel", [output_device], jax.local_devices())[0] \
        if output_device is not None else devices[0]

    def init(rng, *example_inputs, **example_kwargs):
        params, state = module.init(rng, *example_inputs, **example_kwargs)
        return {"module": params}, {"module": state}

    def apply(params, state, *inputs, rng=None, training=False, **kwargs):
        out, new_state = replicated_apply("DataParallel", module, devices, DP_AXIS, dim, params["module"],
                                          state["module"], inputs, kwargs, rng, training)
        return to_device(out, target), {"module": new_state}

    return Layer(init, apply, "DataParallel", (("module", module),))


def to_device(tree: Any, device: Any) -> Any:
    """Eager outputs land on `device` (torch's output_device); traced ones are left to XLA."""
    leaves = jax.tree_util.tree_leaves(tree)
    if device is None or any(isinstance(x, jax.core.Tracer) for x in leaves):
        return tree
    if any(not getattr(x, "is_fully_addressable", True) for x in leaves):
        return tree
    return jax.device_put(tree, device)


