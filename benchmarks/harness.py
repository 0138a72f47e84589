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
    name: str
    builders: dict[str, Callable[[], Callable[[], object]]]
    note: str = ""


def jax_step(fn, *args):
    """Wrap a jitted function and its args as a blocking zero-argument step."""
    import jax

    def step():
        jax.block_until_ready(fn(*args))

    return step


def torch_step(fn):
    """Torch eager runs synchronously on CPU; the step is the function itself."""
    return fn
