"""Peak resident memory of a process running the small CNN's training step, funclayers vs torch (issue 28).

    python -m benchmarks.model_memory                 # small CNN, one fresh process per framework
    python -m benchmarks.model_memory --steps 20 --model resnet18

Each framework runs in a fresh process that imports only itself, builds the workload's step
(`benchmarks/workloads/models.py`: the same model, data and optimizer as the timed rows) and runs
it `--steps` times; the process then reports its peak resident set (`ru_maxrss`), which is what a
user sees in `top`, its growth over the imports (the framework's own libraries excluded), and the
peak after each phase (imports, building the step, the first call,
which for JAX includes tracing and XLA's compilation, and the remaining steps). The funclayers
process keeps `import funclayers`' allocator tuning (its heap is not trimmed), as the timed rows do.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

FRAMEWORKS = ("funclayers", "torch")
MODELS = {"small_cnn": 64, "resnet18": 32}


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def worker(framework: str, model: str, steps: int) -> dict:
    out = {"start": _max_rss_mib()}
    from benchmarks.workloads import models

    if framework == "funclayers":
        import jax  # noqa: F401

        import funclayers  # noqa: F401
    else:
        import torch  # noqa: F401
    out["imports"] = _max_rss_mib()
    build = (models._fl_train if framework == "funclayers" else models._torch_train)(model, MODELS[model])
    step = build()
    out["built"] = _max_rss_mib()
    step()
    out["first_step"] = _max_rss_mib()
    for _ in range(steps - 1):
        step()
    out["peak_mib"] = _max_rss_mib()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_cnn", choices=sorted(MODELS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--worker", choices=FRAMEWORKS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.steps)))
        return 0
    peaks, growth = {}, {}
    for framework in FRAMEWORKS:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.model_memory", "--worker", framework,
                               "--model", args.model, "--steps", str(args.steps)], capture_output=True, text=True)
        if proc.returncode:
            print(framework, "failed:", proc.stderr[-1500:])
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        peaks[framework] = result["peak_mib"]
        growth[framework] = result["peak_mib"] - result["imports"]
        phases = ", ".join(f"{k} {v:.0f}" for k, v in result.items())
        print(f"{framework}: peak RSS {result['peak_mib']:.0f} MiB ({phases})")
    if len(peaks) == 2:
        print(f"ours/torch: peak {peaks['funclayers'] / peaks['torch']:.2f}, "
              f"growth over the imports {growth['funclayers'] / growth['torch']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
