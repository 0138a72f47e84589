"""What a benchmark workload is: a name and, per framework, a setup returning a step to time.

A workload module in `benchmarks/workloads/` defines `WORKLOADS`, a list of `Workload`s. Each
builder runs in its own process (see run.py), imports only its own framework, builds data and
parameters, and returns `step()`: one forward + backward (or whatever the workload times) that
blocks until its results are ready.

What a JAX step must do to time the work torch's eager step does (issue 28):
- return the loss value or the outputs WITH the gradients, not the gradients alone: where torch's
  row runs `(out * ct).sum().backward()` (or a loss), `jax.value_and_grad` of that loss; where it
  runs `out.backward(ct)`, the outputs and their vjp (`outputs_and_vjp`), which adds no reduction
  torch does not run (a full sum of `upsample(x) * ct` costs XLA:CPU more than the step itself).
  For a layer linear in its input (convolution, linear, average pooling, upsampling, padding,
  fold, embedding) the gradient does not need the forward result, so a step returning only the
  gradients lets XLA delete the forward pass, which torch's row runs;
- take every array it uses (inputs, parameters, indices, targets, a random cotangent) as an
  argument of the compiled step. A closed-over array or a Python-constant cotangent is a
  compile-time constant: XLA folds the backward of a linear layer into a constant (the gradient
  of `sum(0.01 * upsample(x))` is known before the step runs) and spends seconds doing it.
Torch's rows run forward and backward with the same random cotangent (`out.backward(ct)` or
`(out * ct).sum().backward()`), the output or loss value at hand. tests/test_bench_harness.py
checks the compiled steps of linear layers for the forward computation and for folded gradients.
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
    """Wrap a jitted function and its args as a blocking zero-argument step.

    The step keeps them as `step.jitted` and `step.args`, so that a test can lower and inspect the
    compiled program (`step.jitted.lower(*step.args).compile().as_text()`).
    """
    import jax

    def step():
        jax.block_until_ready(fn(*args))

    step.jitted, step.args = fn, args
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


def outputs_and_vjp(fn, primals, ct):
    """`fn(*primals)` and `ct` pulled back to every primal, for use inside a jitted step.

    The work of torch's `out = fn(*primals); out.backward(ct)`, the outputs returned with the
    gradients so that XLA keeps the forward pass (see the module docstring).
    """
    import jax

    out, pullback = jax.vjp(fn, *primals)
    return out, pullback(ct)


def jax_input_grad_step(forward, x, ct):
    """A blocking step computing, under jit, forward(x) and the vjp of the cotangent `ct` w.r.t. x.

    The outputs are returned with the gradient and `ct` is an argument (see the module docstring):
    torch_input_grad_step's work.
    """
    import jax
    import jax.numpy as jnp

    @jax.jit
    def step(x, ct):
        return outputs_and_vjp(forward, (x,), ct)

    return jax_step(step, jnp.asarray(x), jnp.asarray(ct))


def torch_input_grad_step(module, x_np, ct_np):
    """A step running torch's forward and backward of `module` with cotangent `ct_np`."""
    module = module.to(torch_device())
    x, ct = to_torch(x_np, requires_grad=True), to_torch(ct_np)

    def step():
        x.grad = None
        out = module(x)
        out.backward(ct)
        return out

    return torch_step(step)
