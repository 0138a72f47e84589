"""What a benchmark workload is: a name and, per framework, a setup returning a step to time.

A workload module in `benchmarks/workloads/` defines `WORKLOADS`, a list of `Workload`s. Each
builder runs in its own process (see run.py), imports only its own framework, builds data and
parameters, and returns `step()`: one forward + backward (or whatever the workload times) that
blocks until its results are ready.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

TORCH_DEVICE_ENV = "FUNCLAYERS_BENCH_TORCH_DEVICE"  # run.py --device sets it for the workers


@dataclasses.dataclass(frozen=True)
class Workload:
    """A named benchmark; the optional fields let a heavy workload keep `--quick` short.

    Attributes:
      iters / quick_iters: timed steps per process (default: the runner's 20, or 5 with --quick).
      quick_frameworks: the frameworks `--quick` times (default: all of `builders`; `()` leaves the
        workload out of `--quick`).
    """

    name: str
    builders: dict[str, Callable[[], Callable[[], object]]]
    note: str = ""
    iters: int | None = None
    quick_iters: int | None = None
    quick_frameworks: tuple[str, ...] | None = None


def jax_step(fn, *args):
    """Wrap a jitted function and its args as a blocking zero-argument step."""
    import jax

    def step():
        jax.block_until_ready(fn(*args))

    return step


def torch_device() -> str:
    """Where torch's side runs: "cpu" (default) or "cuda" (`python -m benchmarks.run --device gpu`)."""
    return os.environ.get(TORCH_DEVICE_ENV, "cpu")


def to_torch(array, requires_grad: bool = False):
    """A numpy array as a torch tensor on the benchmark's device."""
    import torch

    return torch.from_numpy(array).to(torch_device()).requires_grad_(requires_grad)


def torch_step(fn):
    """Torch eager runs synchronously on CPU; on a GPU the step waits for the device to finish."""
    if torch_device() == "cpu":
        return fn
    import torch

    def step():
        fn()
        torch.cuda.synchronize()

    return step


def jax_input_grad_step(forward, x, ct):
    """A blocking step computing, under jit, the gradient of sum(forward(x) * ct) w.r.t. x."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def step(x, ct):
        return jax.grad(lambda x: jnp.sum(forward(x) * ct))(x)

    return jax_step(step, jnp.asarray(x), jnp.asarray(ct))


def torch_input_grad_step(module, x_np, ct_np):
    """A step running torch's forward and backward of `module` with cotangent `ct_np`."""
    module = module.to(torch_device())
    x, ct = to_torch(x_np, requires_grad=True), to_torch(ct_np)

    def step():
        x.grad = None
        module(x).backward(ct)

    return torch_step(step)
