"""What a benchmark workload is: a name and, per framework, a setup returning a step to time.

A workload module in `benchmarks/workloads/` defines `WORKLOADS`, a list of `Workload`s. Each
builder runs in its own process (see run.py), imports only its own framework, builds data and
parameters, and returns `step()`: one forward + backward (or whatever the workload times) that
blocks until its results are ready.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Workload:
    """A named benchmark; the optional fields let a heavy workload keep `--quick` short.

    Attributes:
      iters / quick_iters: timed steps per process (default: the runner's 20, or 5 with --quick).
      quick_frameworks: the frameworks `--quick` times (default: all of `builders`).
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


def torch_step(fn):
    """Torch eager runs synchronously on CPU; the step is the function itself."""
    return fn


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
    import torch

    x, ct = torch.from_numpy(x_np).requires_grad_(True), torch.from_numpy(ct_np)

    def step():
        x.grad = None
        module(x).backward(ct)

    return step
