"""funclayers' glibc malloc tuning: XLA's per-call scratch buffer is reused instead of re-mapped."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

import funclayers as fl

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A jitted step whose scratch buffer (~100 MB of intermediates) is far above glibc's mmap threshold;
# prints the minor page faults per call after warm-up.
PROGRAM = textwrap.dedent(
    """
    import resource
    import numpy as np
    import funclayers
    import jax, jax.numpy as jnp

    @jax.jit
    def step(x):
        parts = [jnp.sin(x * k) for k in range(12)]   # 12 live 8 MB intermediates
        return sum(p * p for p in parts).sum()

    x = jnp.asarray(np.random.default_rng(0).standard_normal((2048, 1024), np.float32))
    for _ in range(3):
        step(x).block_until_ready()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        step(x).block_until_ready()
    print(funclayers._kernels._allocator._tuned, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
    """
)


def _run(tune: str) -> tuple[bool, float]:
    env = dict(os.environ, FUNCLAYERS_TUNE_MALLOC=tune, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True)
    tuned, faults = out.stdout.split()
    return tuned == "True", float(faults)


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc's malloc only")
def test_tuning_is_on_by_default_and_idempotent():
    import jax

    assert fl.tune_cpu_allocator() is True
    assert fl.tune_cpu_allocator() is True
    # compiled functions run (and allocate) in the calling thread, whose arena the settings govern
    assert jax.config.read("jax_cpu_enable_async_dispatch") is False


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc's malloc only")
def test_scratch_buffer_is_reused_unless_opted_out():
    tuned, tuned_faults = _run("1")
    untuned, untuned_faults = _run("0")
    assert tuned and not untuned
    # Untuned: every call page-faults its scratch buffer in again (thousands of 4 KiB pages here and
    # in CI). Some machines don't show the problem at all: on a GPU machine's image (jax 0.11.2)
    # the untuned step faulted 397 pages per call. There is then nothing for the tuning to fix.
    if untuned_faults <= 5000:
        pytest.skip(f"this machine does not re-fault XLA's scratch buffer ({untuned_faults:.0f} faults per call)")
    # Tuned: the buffer is reused. Memory pressure from a parallel test worker can make the kernel
    # reclaim free arena pages during one measurement (seen once in a full `pytest -n 2` run), so
    # the tuned side gets up to three tries; without the tuning no try comes near.
    for _ in range(3):
        if tuned_faults < untuned_faults / 10:
            break
        tuned_faults = min(tuned_faults, _run("1")[1])
    assert tuned_faults < untuned_faults / 10, (tuned_faults, untuned_faults)


# Frees a 200 MB heap block (kept resident by the tuning's no-trim setting), then compiles a new
# function: the listener hands the free pages back. Prints the resident MiB before and after.
TRIM_PROGRAM = textwrap.dedent(
    """
    import ctypes
    import funclayers
    import jax, jax.numpy as jnp

    def rss_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    jax.jit(lambda x: x + 1)(jnp.ones(3)).block_until_ready()
    block = libc.malloc(200 << 20)
    ctypes.memset(block, 1, 200 << 20)
    libc.free(block)
    before = rss_mib()
    jax.jit(lambda x: x * 3)(jnp.ones(5)).block_until_ready()
    print(before, rss_mib())
    """
)

# XLA's scratch buffer of a conv3d training step, with and without the memory-optimised scheduler.
TEMP_PROGRAM = textwrap.dedent(
    """
    import os
    import funclayers as fl
    import jax, jax.numpy as jnp

    layer = fl.Conv3d(16, 32, 3, padding=1)
    params, state = layer.init(jax.random.PRNGKey(0))
    x, ct = jnp.zeros((4, 16, 16, 32, 32)), jnp.zeros((4, 32, 16, 32, 32))

    def loss(params, x):
        return jnp.sum(layer.apply(params, state, x)[0] * ct)

    compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(params, x).compile()
    print("xla_cpu_scheduler_type" in os.environ.get("XLA_FLAGS", ""), compiled.memory_analysis().temp_size_in_bytes)
    """
)


def _run_program(program: str, tune: str, **env_overrides) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(FUNCLAYERS_TUNE_MALLOC=tune, JAX_PLATFORMS="cpu", **env_overrides)
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc's malloc only")
def test_free_heap_pages_are_returned_after_a_compilation():
    before, after = (float(v) for v in _run_program(TRIM_PROGRAM, "1"))
    assert before - after > 150, (before, after)  # the freed 200 MB block left the resident set
    before, after = (float(v) for v in _run_program(TRIM_PROGRAM, "0"))
    # untuned, glibc mmaps a 200 MB block and unmaps it on free: it was never in the heap
    assert before - after < 50, (before, after)


def _jaxlib_version():
    import jaxlib

    return tuple(int(p) for p in jaxlib.__version__.split(".")[:3])


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc's malloc only")
@pytest.mark.skipif(_jaxlib_version() < (0, 10, 2), reason="older jaxlibs lack XLA's CPU scheduler flag")
def test_memory_optimised_scheduler_shrinks_the_scratch_buffer():
    flagged, tuned_temp = _run_program(TEMP_PROGRAM, "1", FUNCLAYERS_MEMORY_SCHEDULER="1")
    unflagged, untuned_temp = _run_program(TEMP_PROGRAM, "0", FUNCLAYERS_MEMORY_SCHEDULER="1")
    assert flagged == "True" and unflagged == "False"
    # conv3d's step (`_conv3d`): 146 MiB of scratch under XLA's default scheduler, 120 with the
    # memory-optimised one (before `_conv3d`, whose layout leaves less to reorder: 179 and 99)
    assert int(tuned_temp) < 0.9 * int(untuned_temp), (tuned_temp, untuned_temp)
    # opt-in: without FUNCLAYERS_MEMORY_SCHEDULER the default scheduler stays
    flagged, temp = _run_program(TEMP_PROGRAM, "1")
    assert flagged == "False" and int(temp) == int(untuned_temp)
    # a scheduler the user chose in XLA_FLAGS stays
    flagged, temp = _run_program(TEMP_PROGRAM, "1", FUNCLAYERS_MEMORY_SCHEDULER="1",
                                 XLA_FLAGS="--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_DEFAULT")
    assert int(temp) == int(untuned_temp)


def test_scheduler_flag_is_left_alone_once_a_backend_runs():
    import jax.numpy as jnp

    from funclayers._kernels import _allocator

    jnp.ones(1).block_until_ready()  # a backend has started in this (test) process
    saved = os.environ.pop("XLA_FLAGS", None)
    try:
        assert _allocator._prefer_memory_scheduler() is False
        assert "XLA_FLAGS" not in os.environ
    finally:
        if saved is not None:
            os.environ["XLA_FLAGS"] = saved
