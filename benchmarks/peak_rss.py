"""Peak resident memory of a benchmark workload's process, per framework (issue 28).

    python -m benchmarks.peak_rss --only depthwise conv3d "64->64" --frameworks funclayers torch

Each (workload, framework) runs in a fresh process that imports its framework, builds the
workload's step exactly as `benchmarks.run` does, runs it `--steps` times and reports its peak
resident set (`ru_maxrss`) after each stage: imports, set-up (data and parameters), the first
call (for JAX: tracing and XLA's compilation) and the steps. For JAX it also prints XLA's own
account of the compiled step (`memory_analysis`: temporaries, arguments, outputs). On glibc the
"heap free" column is the malloc heap's free bytes after the steps (`mallinfo2`, all arenas):
memory the process holds resident but does not use, mostly scratch buffers that moved between
calls (see src/funclayers/_kernels/_allocator.py). The last column is the ratio of the whole
process's peak to torch's, the quantity issue 28 targets.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import subprocess
import sys
import time


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _heap_free_mib() -> float | None:
    """Free bytes in glibc's malloc heaps (all arenas), in MiB; None elsewhere."""

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(f, ctypes.c_size_t) for f in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")]

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        return None
    mallinfo2.restype = Mallinfo2
    return mallinfo2().fordblks / 2**20


def worker(name: str, framework: str, steps: int) -> dict:
    """Runs inside the child process: the peak RSS (MiB) after each stage."""
    out = {"start": _peak_mib()}
    if framework == "torch":
        import torch  # noqa: F401
    else:
        import jax  # noqa: F401
    from benchmarks.run import all_workloads

    builder = all_workloads()[name].builders[framework]
    out["imports"] = _peak_mib()
    step = builder()
    out["setup"] = _peak_mib()
    t0 = time.perf_counter()
    step()
    out["first_call"] = _peak_mib()
    out["first_call_s"] = time.perf_counter() - t0
    for _ in range(steps):
        step()
    out["steps"] = _peak_mib()
    out["heap_free_mib"] = _heap_free_mib()
    if hasattr(step, "jitted"):  # after the peaks are read: this compiles the step a second time
        analysis = step.jitted.lower(*step.args).compile().memory_analysis()
        out["xla_temp_mib"] = analysis.temp_size_in_bytes / 2**20
        out["xla_args_mib"] = analysis.argument_size_in_bytes / 2**20
        out["xla_out_mib"] = analysis.output_size_in_bytes / 2**20
    return out


def measure(name: str, framework: str, steps: int) -> dict | None:
    cmd = [sys.executable, "-m", "benchmarks.peak_rss", "--worker", name, framework, str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(f"[{name} / {framework}] failed:\n{proc.stderr[-2000:]}\n")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", default=None, help="substrings of workload names to run")
    ap.add_argument("--frameworks", nargs="*", default=["funclayers", "torch"])
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args(argv)
    if args.worker:
        name, framework, steps = args.worker
        print(json.dumps(worker(name, framework, int(steps))))
        return 0
    from benchmarks.run import all_workloads

    names = [n for n in all_workloads() if not args.only or any(s in n for s in args.only)]
    print("| workload | framework | imports MiB | set-up | first call | steps (peak) | XLA temp | heap free | "
          "peak / torch's |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        results = {f: measure(name, f, args.steps) for f in args.frameworks}
        torch_peak = (results.get("torch") or {}).get("steps")
        for f, r in results.items():
            if r is None:
                continue
            ratio = f"{r['steps'] / torch_peak:.2f}x" if torch_peak else "-"
            temp = f"{r['xla_temp_mib']:.0f}" if "xla_temp_mib" in r else "-"
            free = f"{r['heap_free_mib']:.0f}" if r.get("heap_free_mib") is not None else "-"
            print(f"| {name} | {f} | {r['imports']:.0f} | {r['setup']:.0f} | {r['first_call']:.0f} | "
                  f"{r['steps']:.0f} | {temp} | {free} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
