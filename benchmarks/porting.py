"""Times the ported torchvision models (workloads/porting.py) and the `fl.from_torch` call itself.

    python -m benchmarks.porting                     # 2 alternating rounds of 5 steps per framework
    python -m benchmarks.porting --rounds 1 --iters 3 --only resnet18

Each (model, framework) measurement runs in a fresh process (`benchmarks.run --worker`):
funclayers' port, the hand-written funclayers resnet18, torch2jax's `t2j` and torch eager. Prints
a markdown table of median step times and ratios; then whether the compiled steps of the ported
and the hand-written resnet18 have the same instructions (a check the machine's load cannot
disturb), and the time of `fl.from_torch(resnet50)` (a fresh process: the first call includes
importing the porting code, the later ones do not).
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

FRAMEWORKS = ("funclayers", "funclayers_hand", "torch2jax", "torch", "torch_1thread")


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


def compare_worker(name: str) -> dict:
    """In the child process: the compiled programs of the ported and the hand-written step, by opcode.

    A load-independent check of "the port costs nothing after jit": the same instructions.
    """
    import collections
    import re

    from benchmarks.workloads.porting import hand_step, ported_step

    counts = {}
    for side, (fn, args) in (("ported", ported_step(name)), ("hand", hand_step(name))):
        text = fn.lower(*args).compile().as_text()
        counts[side] = collections.Counter(re.findall(r"= \S+ ([a-z][\w-]*)\(", text))
    return {"identical": counts["ported"] == counts["hand"], "instructions": sum(counts["ported"].values()),
            "hand_instructions": sum(counts["hand"].values()),
            "differences": {op: (counts["ported"][op], counts["hand"][op]) for op in counts["ported"] | counts["hand"]
                            if counts["ported"][op] != counts["hand"][op]}}


def child(*args: str) -> dict | None:
    cmd = [sys.executable, "-m", "benchmarks.porting", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(HERE))
    if proc.returncode != 0:
        sys.stderr.write(f"[{' '.join(args)}] failed:\n{proc.stderr[-2000:]}\n")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_conversion(name: str, repeats: int) -> dict | None:
    return child("--convert-worker", name, str(repeats))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--convert-worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--compare-worker", nargs=1, help=argparse.SUPPRESS)
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
    if args.compare_worker:
        print(json.dumps(compare_worker(args.compare_worker[0])))
        return 0
    os.environ["JAX_PLATFORMS"] = "cpu"
    from benchmarks.workloads.porting import MODELS, WORKLOADS, workload_name

    by_name = {w.name: w for w in WORKLOADS}
    models = [m for m in MODELS if not args.only or m in args.only]
    header = ("| model | ported ms | hand-written ms | torch2jax ms | torch eager ms | torch, 1 thread ms | "
              "ported/hand | ported/torch2jax | ported/torch | ported/torch 1 thread | ported first call s |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|")
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
               f"{ms('torch_1thread')} | {ratio('funclayers_hand')} | {ratio('torch2jax')} | {ratio('torch')} | "
               f"{ratio('torch_1thread')} | {compile_s} |")
        rows.append(row)
        print(row, flush=True)
    if "resnet18" in models and "funclayers_hand" in args.frameworks:
        result = child("--compare-worker", "resnet18")
        if result is not None:
            print(f"\nresnet18, compiled step ported vs hand-written: {result['instructions']} vs "
                  f"{result['hand_instructions']} HLO instructions, the same count of every opcode: "
                  f"{result['identical']} {result['differences'] or ''}", flush=True)
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
