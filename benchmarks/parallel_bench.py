"""Data-parallel overhead: the small CNN's training step wrapped (DataParallel, DDP) vs unwrapped.

    python -m benchmarks.parallel_bench                       # 1 device, then 4 simulated CPU devices
    python -m benchmarks.parallel_bench --devices 4 --rounds 5 --steps 10
    python -m benchmarks.parallel_bench --platform gpu --devices 0   # every local GPU as it is

The harness (benchmarks/run.py) compares frameworks, each in its own process; here every variant
is funclayers and the device count must be set before JAX starts, so one worker process per
device count times all variants, one step of each in turn (rotating the order), so that changes
in the machine's load hit every variant alike. The step is
`fl.parallel.make_train_step` (forward, cross-entropy, backward, SGD with momentum) for each:
the model as it is on one device, `DataParallel(model)`, `DistributedDataParallel(model)`, and
`DataParallel(convert_sync_batchnorm(model))`. Reported: the median step time over all rounds
and its ratio to the unwrapped step.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, ROOT)
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import funclayers as fl
    from examples.models import small_cnn

    model = small_cnn()
    variants = {"unwrapped": model, "DataParallel": fl.DataParallel(model),
                "DistributedDataParallel": fl.DistributedDataParallel(model),
                "DataParallel + SyncBatchNorm": fl.DataParallel(fl.parallel.convert_sync_batchnorm(model))}
    if jax.local_device_count() > 2:  # as many replicas as the machine's 2 cores
        variants["DataParallel, device_ids=[0, 1]"] = fl.DataParallel(model, device_ids=[0, 1])
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((args.batch, 3, 32, 32)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 10, args.batch))
    optimizer = optax.sgd(0.01, momentum=0.9)

    def loss_fn(logits, labels):
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    runs = {}
    for name, layer in variants.items():
        params, state = layer.init(jax.random.PRNGKey(0))
        step = fl.parallel.make_train_step(layer, optimizer, loss_fn)
        carry = [params, state, optimizer.init(params)]
        start = time.perf_counter()
        jax.block_until_ready(step(*carry, x, y))
        runs[name] = dict(step=step, carry=carry, first=time.perf_counter() - start, times=[])
    names = list(runs)
    for i in range(args.rounds * args.steps):  # one step of each variant in turn: load changes hit all alike
        for name in names[i % len(names):] + names[:i % len(names)]:
            run = runs[name]
            start = time.perf_counter()
            params, state, opt_state, loss = run["step"](*run["carry"], x, y)
            jax.block_until_ready(loss)
            run["times"].append(time.perf_counter() - start)
            run["carry"] = [params, state, opt_state]
    base = float(np.median(runs["unwrapped"]["times"]))
    print(f"## {jax.device_count()} {jax.default_backend()} device(s), batch {args.batch}, "
          f"{args.rounds * args.steps} interleaved steps each")
    print("| step | ms (median) | / unwrapped | first call s |\n|---|---|---|---|")
    for name, run in runs.items():
        ms = float(np.median(run["times"])) * 1e3
        print(f"| {name} | {ms:.2f} | {ms / (base * 1e3):.2f}x | {run['first']:.2f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 4],
                    help="simulated CPU device counts (0: the platform's devices as they are)")
    ap.add_argument("--platform", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    for count in args.devices:
        env = dict(os.environ, JAX_PLATFORMS=args.platform)
        if count:
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={count}"
        cmd = [sys.executable, "-m", "benchmarks.parallel_bench", "--worker", "--batch", str(args.batch),
               "--rounds", str(args.rounds), "--steps", str(args.steps)]
        result = subprocess.run(cmd, cwd=ROOT, env=env)
        if result.returncode:
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
