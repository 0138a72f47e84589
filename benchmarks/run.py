"""Times every workload in funclayers (jit), torch eager, Flax and Equinox: one process each.

    python -m benchmarks.run                      # every workload, every framework
    python -m benchmarks.run --quick              # fewer rounds and iterations (< 3 minutes)
    python -m benchmarks.run --only conv --frameworks funclayers torch
    python -m benchmarks.run --device gpu --output benchmarks/results_gpu.md   # torch on CUDA, JAX on its GPU

Each (workload, framework) measurement runs in a fresh process (thread pools of different
frameworks disturb each other in one process); rounds alternate the frameworks. `--quick` runs
one process per framework for all workloads instead (process start-up would dominate otherwise).
Prints the median
step time, the ratio to torch and the first-call (compile) time (median over rounds), and writes
benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import pkgutil
import platform
import statistics
import subprocess
import sys
import time

from benchmarks.harness import TORCH_DEVICE_ENV

FRAMEWORKS = ("funclayers", "torch", "flax", "equinox")
HERE = os.path.dirname(os.path.abspath(__file__))
QUICK_BUDGET_S = 1.0  # --quick: timed seconds per workload and framework, beyond two steps


def all_workloads():
    from benchmarks import workloads

    found = {}
    for info in sorted(pkgutil.iter_modules(workloads.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"benchmarks.workloads.{info.name}")
        for w in getattr(module, "WORKLOADS", []):
            found[w.name] = w
    return found


def worker(name: str, framework: str, iters: int, warmup: int, budget: float | None = None) -> dict:
    """Runs inside the child process: set up, time the first call, then `iters` timed steps.

    With a `budget` (seconds, --quick), timing stops early once the timed steps add up to it
    (after at least two), so that a framework that is 10-30x slower on a workload cannot hold up
    the quick run.
    """
    t0 = time.perf_counter()
    step = all_workloads()[name].builders[framework]()
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if budget is not None and len(times) >= 2 and sum(times) > budget:
            break
    return {"times": times, "first": first, "setup": setup, "peak_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """The process's peak resident set so far (ru_maxrss; Linux reports KiB), in MiB: imports,
    compilation and the steps together, as a user's training process sees it."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_many(framework: str, plan: dict[str, int], warmup: int) -> dict:
    """--quick: one process per framework times every workload of `plan` (name -> iters) in turn.

    Starting a process and importing a framework costs seconds; with dozens of workloads that,
    not the timing, would dominate a quick run. A workload that fails is reported and skipped.
    """
    out = {}
    for name, iters in plan.items():
        try:
            out[name] = worker(name, framework, iters, warmup, QUICK_BUDGET_S)
        except Exception as err:  # noqa: BLE001 - report and go on with the other workloads
            sys.stderr.write(f"[{name} / {framework}] failed: {type(err).__name__}: {str(err)[:500]}\n")
    return out


def measure_many(framework: str, plan: dict[str, int], warmup: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.run", "--worker-many", framework, json.dumps(plan), str(warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(HERE))
    for line in proc.stderr.splitlines():
        if "failed:" in line:
            sys.stderr.write(line + "\n")
    if proc.returncode != 0:
        sys.stderr.write(f"[{framework}] worker failed:\n{proc.stderr[-2000:]}\n")
        return {}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(name: str, framework: str, iters: int, warmup: int) -> dict | None:
    cmd = [sys.executable, "-m", "benchmarks.run", "--worker", name, framework, str(iters), str(warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(HERE))
    if proc.returncode != 0:
        sys.stderr.write(f"[{name} / {framework}] failed:\n{proc.stderr[-2000:]}\n")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def versions() -> str:
    out = []
    for mod in ("jax", "jaxlib", "torch", "flax", "equinox", "numpy"):
        try:
            out.append(f"{mod} {importlib.import_module(mod).__version__}")
        except Exception:  # noqa: BLE001 - an optional framework that is not installed
            pass
    return ", ".join(out)


def device_name(device: str) -> str:
    if device == "cpu":
        return "CPU"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return f"GPU ({out or 'unknown'}; torch on CUDA, JAX on its GPU backend)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--worker-many", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="one process per framework for all workloads, 1 round of 5 steps "
                         "(fewer for heavy ones)")
    ap.add_argument("--only", nargs="*", default=None, help="substrings of workload names to run")
    ap.add_argument("--frameworks", nargs="*", default=list(FRAMEWORKS))
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--output", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                    help="cpu: every framework on the CPU; gpu: torch on CUDA and JAX on its default "
                         "(GPU) backend, each at its default float32 matmul/convolution precision")
    args = ap.parse_args(argv)
    if args.worker_many:
        framework, plan, warmup = args.worker_many
        print(json.dumps(worker_many(framework, json.loads(plan), int(warmup))))
        return 0
    if args.worker:
        name, framework, iters, warmup = args.worker
        print(json.dumps(worker(name, framework, int(iters), int(warmup))))
        return 0
    if args.device == "gpu":  # the workers inherit the environment
        os.environ[TORCH_DEVICE_ENV] = "cuda"
    else:
        os.environ["JAX_PLATFORMS"] = "cpu"
    rounds = args.rounds or (1 if args.quick else 3)
    default_iters = 5 if args.quick else 20
    warmup = 1 if args.quick else 3
    workloads = all_workloads()
    if args.only:
        workloads = {k: v for k, v in workloads.items() if any(s in k for s in args.only)}
    header = ("| workload | funclayers ms | torch ms | ours/torch | flax/torch | equinox/torch | "
              "ours first call s | peak RSS MiB, ours / torch |\n|---|---|---|---|---|---|---|---|")
    rows = []
    print(header, flush=True)
    started = time.perf_counter()
    plan = {}  # name -> (frameworks, iters)
    for name, w in workloads.items():
        frameworks = [f for f in args.frameworks if f in w.builders
                      and not (args.quick and w.quick_frameworks is not None and f not in w.quick_frameworks)]
        if frameworks:  # quick_frameworks=() keeps a workload out of --quick altogether
            plan[name] = (frameworks, args.iters or (w.quick_iters if args.quick else w.iters) or default_iters)
    batched = {}  # --quick: (name, framework) -> [results], measured one process per framework and round
    if args.quick:
        for r in range(rounds):
            order = list(args.frameworks) if r % 2 == 0 else list(args.frameworks)[::-1]
            for f in order:
                todo = {name: iters for name, (fws, iters) in plan.items() if f in fws}
                for name, result in (measure_many(f, todo, warmup) if todo else {}).items():
                    batched.setdefault((name, f), []).append(result)
    for name, (frameworks, iters) in plan.items():
        samples = {f: [] for f in frameworks}
        first, peak = {}, {}
        for r in range(0 if args.quick else rounds):
            order = frameworks if r % 2 == 0 else frameworks[::-1]
            for f in order:
                result = measure(name, f, iters, warmup)
                if result is not None:
                    batched.setdefault((name, f), []).append(result)
        for f in frameworks:
            for result in batched.get((name, f), []):
                samples[f] += result["times"]
                first.setdefault(f, []).append(result["first"])
                if not args.quick:  # --quick runs every workload in one process: no per-workload peak
                    peak.setdefault(f, []).append(result["peak_mib"])
        med = {f: statistics.median(s) * 1e3 for f, s in samples.items() if s}
        first = {f: statistics.median(values) for f, values in first.items()}  # one per round

        def ratio(f, med=med):
            return f"{med[f] / med['torch']:.2f}x" if f in med and "torch" in med else "-"

        def ms(f, med=med):
            return f"{med[f]:.2f}" if f in med else "-"

        peak = {f: statistics.median(values) for f, values in peak.items()}
        memory = (f"{peak['funclayers']:.0f} / {peak['torch']:.0f} = {peak['funclayers'] / peak['torch']:.2f}x"
                  if "funclayers" in peak and "torch" in peak else "-")
        row = (f"| {name} | {ms('funclayers')} | {ms('torch')} | {ratio('funclayers')} | {ratio('flax')} | "
               f"{ratio('equinox')} | {first.get('funclayers', float('nan')):.2f} | {memory} |")
        rows.append(row)
        print(row, flush=True)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    with open(args.output, "w") as fh:
        machine = platform.processor() or platform.machine()
        fh.write(f"# Benchmark results\n\n{datetime.date.today()} on {machine}, "
                 f"{os.cpu_count()} cores, Python {platform.python_version()}; {versions()}; "
                 f"device: {device_name(args.device)}.\n"
                 f"Median step time over {rounds} alternating rounds x {args.iters or default_iters} steps "
                 f"(fewer for the heavy model workloads), each framework in its own process; ratio < 1 means "
                 f"faster than torch eager. Peak RSS: the worker process's ru_maxrss after its steps (imports "
                 f"and compilation included), median over rounds.\n\n{header}\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
