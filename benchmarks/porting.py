"""Times the ported torchvision models (workloads/porting.py) and the `fl.from_torch` call itself.

    python -m benchmarks.porting                     # 2 alternating rounds of 5 steps per framework
    python -m benchmarks.porting --rounds 1 --iters 3 --only resnet18

Each (model, framework) measurement runs in a fresh process (`benchmarks.run --worker`):
funclayers' port, the hand-written funclayers resnet18, torch2jax's `t2j` and torch eager. Prints
a markdown table of median step times and ratios, then the time of `fl.from_torch(resnet50)`
(a fresh process: the first call includes importing the porting code, the later ones do not).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks.run import HERE, measure

FRAMEWORKS = ("funclayers", "funclayers_hand", "torch2jax", "torch")


def convert_worker(name: str, repeats: int) -> dict:
    """In the child process: build torchvision's `name` and time `fl.from_torch` on it `repeats` times."""
    import funclayers as fl
    from benchmarks.workloads.porting import torch_model

    model = torch_model(name)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fl.from_torch(model)
        times.append(time.perf_counter() - t0)
    return {"times": times}


def measure_conversion(name: str, repeats: int) -> dict | None:
    cmd = [sys.executable, "-m", "benchmarks.porting", "--convert-worker", name, str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(HERE))
    if proc.returncode != 0:
        sys.stderr.write(f"[from_torch({name})] failed:\n{proc.stderr[-2000:]}\n")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--convert-worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None, help="model names to run (resnet18, vit, ...)")
    ap.add_argument("--frameworks", nargs="*", default=list(FRAMEWORKS))
    ap.add_argument("--convert", default="resnet50", help="the model whose from_torch call is timed ('' skips)")
    args = ap.parse_args(argv)
    if args.convert_worker:
        name, repeats = args.convert_worker
        print(json.dumps(convert_worker(name, int(repeats))))
        return 0
    os.environ["JAX_PLATFORMS"] = "cpu"
    from benchmarks.workloads.porting import MODELS, WORKLOADS, workload_name

    by_name = {w.name: w for w in WORKLOADS}
    models = [m for m in MODELS if not args.only or m in args.only]
    header = ("| model | ported ms | hand-written ms | torch2jax ms | torch eager ms | ported/hand | "
              "ported/torch2jax | ported/torch | ported first call s |\n|---|---|---|---|---|---|---|---|---|")
    print(header, flush=True)
    started = time.perf_counter()
    rows = []
    for model in models:
        workload = by_name[workload_name(model)]
        frameworks = [f for f in args.frameworks if f in workload.builders]
        samples, first = {f: [] for f in frameworks}, {f: [] for f in frameworks}
        for r in range(args.rounds):
            for f in frameworks if r % 2 == 0 else frameworks[::-1]:
                result = measure(workload.name, f, args.iters, 1)
                if result is not None:
                    samples[f] += result["times"]
                    first[f].append(result["first"])
        med = {f: statistics.median(s) * 1e3 for f, s in samples.items() if s}

        def ms(f, med=med):
            return f"{med[f]:.1f}" if f in med else "-"

        def ratio(f, med=med):
            return f"{med['funclayers'] / med[f]:.2f}x" if f in med and "funclayers" in med else "-"

        compile_s = f"{statistics.median(first['funclayers']):.1f}" if first.get("funclayers") else "-"
        row = (f"| {model} | {ms('funclayers')} | {ms('funclayers_hand')} | {ms('torch2jax')} | {ms('torch')} | "
               f"{ratio('funclayers_hand')} | {ratio('torch2jax')} | {ratio('torch')} | {compile_s} |")
        rows.append(row)
        print(row, flush=True)
    if args.convert:
        result = measure_conversion(args.convert, 3)
        if result is not None:
            times = result["times"]
            print(f"\nfl.from_torch({args.convert}): first call {times[0]:.2f} s (imports the porting code), "
                  f"then {', '.join(f'{t:.2f}' for t in times[1:])} s", flush=True)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
