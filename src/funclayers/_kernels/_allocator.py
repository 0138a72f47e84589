"""Keep XLA's per-call scratch memory in the process heap on Linux CPUs (glibc's malloc).

XLA's CPU runtime allocates one scratch buffer per call of a compiled function, holding every
intermediate of the step: tens to hundreds of MB for a convolutional training step. glibc serves
allocations above 32 MB with a fresh `mmap` and returns them with `munmap` on free, so every call
page-faults its whole scratch buffer in again and the kernel zero-fills it: on a 2-core machine
that was half the CPU time of a conv-net training step (~23k minor faults per call of a 3x3
weight gradient; 85 ms -> 45 ms with this tuning). torch does not pay it: its tensors are
separate allocations below the threshold, which glibc recycles.

`tune_cpu_allocator()` makes large blocks come from the heap and stay there for the next call:
glibc's `mallopt` with no mmap for large blocks (`M_MMAP_MAX = 0`) and no trimming of the heap's
top (`M_TRIM_THRESHOLD`). Those settings govern glibc's main arena, the one the main thread
allocates from, so it also turns off JAX's asynchronous dispatch on CPU
(`jax_cpu_enable_async_dispatch = False`): a compiled function then runs, and allocates its
scratch buffer, in the calling thread instead of a worker thread with its own arena (which would
still mmap blocks above 64 MB). A step call then returns when its results are ready. (Limiting
glibc to one arena instead works too, but slowed XLA's multi-threaded compilation by ~35%.)
The cost: the process keeps its peak heap size instead of returning freed memory to the OS.

Two more settings keep that peak down (issue 28: peak RSS of the conv steps vs torch's):
- after each XLA compilation the heap's free pages are handed back (`malloc_trim(0)`, from a
  `jax.monitoring` listener on the backend-compile event): compiling a conv training step leaves
  tens of MB of LLVM's freed memory in the heap, resident and in pieces too small for the step's
  scratch buffer, which then extends the heap above them. The first call after a compilation
  faults its scratch buffer in once; compilations are rare next to calls.
- opt-in (`FUNCLAYERS_MEMORY_SCHEDULER=1` before the import): XLA's memory-optimised instruction
  scheduler for CPU (`--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED`, appended to
  `XLA_FLAGS` when no backend has started yet and `XLA_FLAGS` choose no CPU scheduler, on jaxlib
  >= 0.10.2 where the flag exists: XLA aborts on an unknown flag). The default schedule keeps
  independent intermediates alive together so that their thunks can run concurrently: the scratch
  buffer (`memory_analysis().temp_size_in_bytes`) of the conv3d (4,16,16,32,32) training step is
  195 MiB with it and 99 MiB with the memory scheduler under the stacked 2-D lowering of the twelfth
  session (146 -> 120 MiB with `_conv3d`'s since the fourteenth), conv2d 64->64 (32,64,32,32) 128 -> 98 MiB,
  at the same CPU time per step; but the wall time of steps with independent branches rises on
  the quiet 2-core machine (RGB stem 2.36-2.39 -> 3.0-5.1 ms, ConvTranspose2d k4 s2 9.2-9.4 ->
  10.5-12.1 ms; benchmarks/README.md, twelfth session), so it is not the default.
What remains: the scratch buffer can still move to fresh memory between calls, its old place
staying resident (one or two scratch buffers more at the peak, varying from run to run). XLA
allocates with 64-byte `posix_memalign`; glibc 2.36 splits a small leading fragment off a block
that is not aligned already and caches it per thread, where a small allocation takes it, so a
freed buffer's exact-size hole no longer fits the same aligned request. Starting Python with
`GLIBC_TUNABLES=glibc.malloc.tcache_count=0` steadied the conv3d step (20 steps: 440-444 MiB in
three runs against 447-539) but not a ResNet-18 training step; no call can change it later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1
_SCHEDULER_FLAG = "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"
_SCHEDULER_MIN_JAXLIB = (0, 10, 2)  # has the flag; XLA aborts on an unknown flag in XLA_FLAGS
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"

_tuned = False
_malloc_trim = None


def tune_cpu_allocator() -> bool:
    """Make glibc keep large freed blocks in the heap, so XLA's scratch buffers are reused.

    Sets glibc's `mallopt` (no mmap for large blocks, no heap trimming) and turns off JAX's
    asynchronous CPU dispatch, so that compiled functions allocate in the calling thread's (main)
    arena. To keep the peak resident set down it also hands the heap's free pages back after each
    XLA compilation and, with `FUNCLAYERS_MEMORY_SCHEDULER=1` and no backend started yet, selects
    XLA's memory-optimised CPU scheduler (`XLA_FLAGS`). Idempotent. It takes no arguments and touches no arrays.

    Returns: True when applied (Linux with glibc), False otherwise (other platforms or C libraries).

    Example:
      >>> import funclayers as fl
      >>> fl.tune_cpu_allocator()   # already done by `import funclayers` unless opted out
      True
    """
    global _tuned
    if _tuned:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(option, value) for option, value in ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _INT_MAX)))
    if ok:
        import jax
        from jax import monitoring

        jax.config.update("jax_cpu_enable_async_dispatch", False)
        if _env_flag("FUNCLAYERS_MEMORY_SCHEDULER", "0"):
            _prefer_memory_scheduler()
        global _malloc_trim
        try:
            _malloc_trim = ctypes.CDLL(name).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = None
        else:
            _malloc_trim.argtypes, _malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
            monitoring.register_event_duration_secs_listener(_trim_after_compile)
    _tuned = ok
    return ok


def _trim_after_compile(event: str, duration_secs: float, **kwargs) -> None:
    """Hand the heap's free pages (a compilation's freed memory) back to the OS after a compile."""
    if event == _COMPILE_EVENT and _malloc_trim is not None:
        _malloc_trim(0)


def _prefer_memory_scheduler() -> bool:
    """Append XLA's memory-optimised CPU scheduler to `XLA_FLAGS` while that still takes effect.

    XLA reads `XLA_FLAGS` when the first backend starts. Once one has, or where `XLA_FLAGS`
    already choose a CPU scheduler, or on a jaxlib without the flag, nothing changes.
    Returns whether the flag was added.
    """
    current = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_scheduler_type" in current:
        return False
    try:
        import jaxlib
        from jax._src import xla_bridge

        version = tuple(int(part) for part in jaxlib.__version__.split(".")[:3])
        started = xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError, ValueError):
        return False
    if started or version < _SCHEDULER_MIN_JAXLIB:
        return False
    os.environ["XLA_FLAGS"] = f"{current} {_SCHEDULER_FLAG}".strip()
    return True


def _env_flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() not in ("0", "false", "no", "off", "")


def _tune_on_import() -> None:
    if _env_flag("FUNCLAYERS_TUNE_MALLOC", "1"):
        tune_cpu_allocator()
