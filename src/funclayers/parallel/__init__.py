"""funclayers.parallel: torch.nn.parallel's data-parallel wrappers on jax.shard_map (torch/nn/parallel/).

    model = fl.DataParallel(layer)                      # this process's devices
    ddp = fl.DistributedDataParallel(layer)             # every process's devices (jax.distributed)
    model = fl.parallel.convert_sync_batchnorm(layer)   # BatchNorm*d -> SyncBatchNorm
    step = fl.parallel.make_train_step(model, optax.adam(1e-3), loss_fn)
"""

from ._data_parallel import DataParallel, chunk_plan
from ._distributed import DistributedDataParallel, convert_sync_batchnorm, make_train_step, shard_batch

__all__ = ["DataParallel", "DistributedDataParallel", "convert_sync_batchnorm", "make_train_step", "shard_batch",
           "chunk_plan"]
