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

Used by: every layer, process-wide (`import funclayers` applies it); the convolution training
steps gain most (benchmarks/README.md, second session: the 64->64 3x3 weight gradient 85 -> 45 ms).

`import funclayers` calls it once on Linux with glibc; set the environment variable
`FUNCLAYERS_TUNE_MALLOC=0` before the import to leave malloc and JAX's dispatch alone. It changes
nothing on other platforms or C libraries.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1

_tuned = False


def tune_cpu_allocator() -> bool:
    """Make glibc keep large freed blocks in the heap, so XLA's scratch buffers are reused.

    Sets glibc's `mallopt` (no mmap for large blocks, no heap trimming) and turns off JAX's
    asynchronous CPU dispatch, so that compiled functions allocate in the calling thread's (main)
    arena. Idempotent. It takes no arguments and touches no arrays.

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

        jax.config.update("jax_cpu_enable_async_dispatch", False)
    _tuned = ok
    return ok


def _tune_on_import() -> None:
    if os.environ.get("FUNCLAYERS_TUNE_MALLOC", "1").strip().lower() not in ("0", "false", "no", "off"):
        tune_cpu_allocator()
