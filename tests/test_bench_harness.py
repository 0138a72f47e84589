"""The benchmark harness times the work torch's eager step does (issue 28).

A jitted step that returns only the gradients of a layer linear in its input lets XLA delete the
forward pass, and a cotangent that is a compile-time constant lets XLA fold the whole backward into
a constant. These tests compile the funclayers steps of linear workloads, as benchmarks/ builds
them, and read the optimized HLO: the forward computation is there, and no constant as large as the
input's gradient is. Negative controls check that the HLO readers do see the old harness's faults.
"""

from __future__ import annotations

import math
import os
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root: benchmarks/

import funclayers as fl  # noqa: E402
from benchmarks import harness, run  # noqa: E402
from benchmarks.workloads import conv, upsampling  # noqa: E402

CONV = "conv2d 64->64 k3 p1 (32,64,32,32)"
SHAPE = re.compile(r"= (\w+)\[([\d,]*)\]")


def _elements(line: str) -> int:
    dims = SHAPE.search(line).group(2)
    return math.prod(int(d) for d in dims.split(",")) if dims else 1


def _hlo(step) -> str:
    return step.jitted.lower(*step.args).compile().as_text()


def _entry(hlo: str) -> list[str]:
    """The lines of the ENTRY computation."""
    lines = hlo.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ENTRY"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("}"))
    return lines[start + 1:end]


def _every_argument_is_used(step, hlo: str) -> bool:
    """Whether every array the step takes feeds the compiled program.

    jit drops the arguments a program does not read (keep_unused=False): a step whose gradient
    does not need the input loses the input's parameter altogether.
    """
    entry = _entry(hlo)
    names = [re.match(r"\s*(%\S+) = ", line).group(1) for line in entry if re.search(r"\bparameter\(\d+\)", line)]
    if len(names) != len(jax.tree_util.tree_leaves(step.args)):
        return False
    operands = [line.split(" = ", 1)[1] for line in entry]
    return all(any(re.search(re.escape(name) + r"[,)]", rhs) for rhs in operands) for name in names)


def _largest_constant(hlo: str) -> int:
    """Elements of the largest array literal anywhere in the optimized program."""
    return max((_elements(line) for line in hlo.splitlines() if re.search(r"\bconstant\(", line)), default=0)


def _forward_product_elements(hlo: str) -> int:
    """Values produced by dot / convolution instructions of the forward pass (the jvp, not its transpose)."""
    forward = re.compile(r'op_name="jit\(\w+\)/jvp\(\)/')
    return sum(_elements(line) for line in hlo.splitlines()
               if re.search(r"\b(dot|convolution)\(", line) and forward.search(line))


def _conv_output_elements():
    return math.prod(conv._out_shape(conv.SPECS[CONV]))


@pytest.fixture(scope="module", autouse=True)
def on_cpu():
    """The HLO readers know XLA:CPU's programs (the CPU record's); on a GPU machine too, compile for the CPU."""
    with jax.default_device(jax.devices("cpu")[0]):
        yield


@pytest.fixture(scope="module")
def conv_step():
    return conv._fl(conv.SPECS[CONV])()


@pytest.fixture(scope="module")
def nearest_step():
    return upsampling._fl_upsample("nearest")()


def test_conv2d_step_runs_the_forward_convolution(conv_step):
    hlo = _hlo(conv_step)
    assert _every_argument_is_used(conv_step, hlo)
    assert _forward_product_elements(hlo) >= _conv_output_elements(), "the forward convolution was removed"
    x = conv_step.args[1]
    assert _largest_constant(hlo) < x.size, "a gradient-sized constant: the backward was folded"


def test_conv2d_step_returns_the_loss(conv_step):
    params, x, ct = conv_step.args
    (loss, grads) = conv_step.jitted(params, x, ct)
    layer = fl.Conv2d(64, 64, 3, padding=1)
    out = np.asarray(jax.jit(lambda p, x: layer.apply(p, {}, x)[0])(params, x), np.float64)
    expected = np.sum(out * np.asarray(ct, np.float64))
    assert float(loss) == pytest.approx(expected, rel=1e-4, abs=1e-3 * np.sum(np.abs(out)) / out.size)
    assert grads[1].shape == x.shape


def test_nearest_upsample_step_returns_the_output(nearest_step):
    hlo = _hlo(nearest_step)
    assert _every_argument_is_used(nearest_step, hlo), "x is unused: the forward upsampling was removed"
    assert _largest_constant(hlo) < nearest_step.args[0].size, "a gradient-sized constant: the backward was folded"
    out, (grad,) = nearest_step.jitted(*nearest_step.args)
    x, ct = (np.asarray(a) for a in nearest_step.args)
    np.testing.assert_array_equal(out, np.repeat(np.repeat(x, 2, axis=2), 2, axis=3))
    np.testing.assert_allclose(grad, ct.reshape(16, 64, 32, 2, 32, 2).sum((3, 5)), rtol=1e-6, atol=1e-6)


# -- negative controls: the readers above do see the old harness's faults --------------------------------------


def test_hlo_readers_flag_a_gradient_only_step(conv_step, nearest_step):
    """Steps returning jax.grad only (the old harness): the forward is gone from the program."""
    layer = fl.Conv2d(64, 64, 3, padding=1)

    @jax.jit
    def conv_grad_only(params, x, ct):
        return jax.grad(lambda p, x: jnp.sum(layer.apply(p, {}, x)[0] * ct), argnums=(0, 1))(params, x)

    hlo = _hlo(harness.jax_step(conv_grad_only, *conv_step.args))
    assert _forward_product_elements(hlo) < _conv_output_elements()

    upsample = fl.Upsample(scale_factor=2, mode="nearest")

    @jax.jit
    def nearest_grad_only(x, ct):
        return jax.grad(lambda x: jnp.sum(upsample.apply({}, {}, x)[0] * ct))(x)

    grad_only = harness.jax_step(nearest_grad_only, *nearest_step.args)
    assert not _every_argument_is_used(grad_only, _hlo(grad_only))


def test_hlo_readers_flag_a_constant_cotangent(nearest_step):
    """Cotangents that are compile-time constants: the backward no longer reads the step's arguments."""
    upsample = fl.Upsample(scale_factor=2, mode="nearest")
    x, ct = (a[:2] for a in nearest_step.args)  # two samples: a smaller program to fold, the same faults

    @jax.jit
    def python_constant(x):  # the gradient, 0.04 everywhere, is known before the step runs
        return jax.grad(lambda x: jnp.sum(0.01 * upsample.apply({}, {}, x)[0]))(x)

    folded = harness.jax_step(python_constant, x)
    assert not _every_argument_is_used(folded, _hlo(folded))

    @jax.jit
    def closed_over(x):  # the random cotangent a constant of the program, its gradient folded from it
        return jax.grad(lambda x: jnp.sum(upsample.apply({}, {}, x)[0] * ct))(x)

    assert _largest_constant(_hlo(harness.jax_step(closed_over, x))) >= x.size


LINEAR_WORKLOADS = ["AdaptiveAvgPool2d(7) (32,256,10,10)", "ReflectionPad2d(2) (32,64,32,32)",
                    "Unfold(3, padding=1) (16,64,32,32)", "pixel_shuffle 2 (16,256,32,32)",
                    "Upsample(scale_factor=2, bilinear) (16,64,32,32)", "embedding 30000x256 (32,128)"]


@pytest.mark.parametrize("name", LINEAR_WORKLOADS)
def test_linear_workload_step_reads_every_argument(name):
    """Layers linear in their input (or, for Embedding, in the weight): a gradient-only step reads no input."""
    step = run.all_workloads()[name].builders["funclayers"]()
    assert _every_argument_is_used(step, _hlo(step))
