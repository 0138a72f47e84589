"""Keep XLA's per-call scratch memory in the process heap on Linux CPUs (glibc's malloc).

XLA's CPU runtime allocates one scratch buffer per call of a compiled function, holding every
intermediate of the step: tens to hundreds of MB for a convolutional training step. glibc serves
allocations above 32 MB with a fresh `mmap` and returns them with `munmap` on free, so every call
page-faults its whole scratch buffer in again and the kernel zero-fills it: on a 2-core machine
that was half the CPU time of a conv-net training step (`perf`: ~23k minor faults per call of a
3x3 weight gradient; 85 ms -> 51 ms with this tuning). torch does not pay it: its tensors are
separate allocations below the threshold, which glibc recycles.

`tune_cpu_allocator()` sets glibc's `mallopt` so that large blocks come from the heap and freed
memory stays there for the next call: no mmap for large blocks (`M_MMAP_MAX = 0`), one arena
(`M_ARENA_MAX = 1`; a secondary arena cannot hold a block above 64 MB and falls back to mmap), and
no trimming of the heap's top (`M_TRIM_THRESHOLD`). The cost: the process keeps its peak heap
size instead of returning freed memory to the OS.

`import funclayers` calls it once on Linux with glibc; set the environment variable
`FUNCLAYERS_TUNE_MALLOC=0` before the import to leave malloc alone. It changes nothing on other
platforms or C libraries. Call it before the first JAX computation: threads that already own a
secondary arena keep it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_INT_MAX = 2**31 - 1

_tuned = False


def tune_cpu_allocator() -> bool:
    """Make glibc keep large freed blocks in the heap, so XLA's scratch buffers are reused.

    Returns True when the settings were applied (Linux with glibc), False otherwise. Idempotent.

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
    ok = all(
        mallopt(option, value)
        for option, value in ((_M_MMAP_MAX, 0), (_M_ARENA_MAX, 1), (_M_TRIM_THRESHOLD, _INT_MAX))
    )
    _tuned = ok
    return ok


def _tune_on_import() -> None:
    if os.environ.get("FUNCLAYERS_TUNE_MALLOC", "1").strip().lower() not in ("0", "false", "no", "off"):
        tune_cpu_allocator()
