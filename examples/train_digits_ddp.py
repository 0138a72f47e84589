"""Train the digits conv net with DistributedDataParallel on several processes, and check that it ends
with the same parameters as one process on the same global batches.

    # 2 processes x 2 simulated CPU devices on this machine, then the 1-process check (~1 min):
    python examples/train_digits_ddp.py --spawn 2 --devices-per-process 2 --steps 20

    # by hand, one process per host (GPU hosts: every local GPU of each is used):
    python examples/train_digits_ddp.py --coordinator host0:1234 --num-processes 4 --process-id 0   # host0
    python examples/train_digits_ddp.py --coordinator host0:1234 --num-processes 4 --process-id 1   # host1 ...

Every process builds the same model (the same init key: the same params), draws the same global
batch each step and feeds its own slice of it to `fl.parallel.make_train_step`, which makes the
slices one global array over every process's devices; the gradient all-reduce runs inside the
compiled step. BatchNorm is converted to SyncBatchNorm (statistics of the global batch) and
Dropout draws a different key on each device. `--spawn P` starts P worker processes on localhost
(gloo CPU collectives), then one process with all P x L devices on the same global batches, and
compares the final parameters of each.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script


def train(args: argparse.Namespace) -> dict:
    """One process's share of the run; returns the final params and state as torch's state_dict names."""
    import jax

    if args.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices' all-reduce (GPUs: NCCL)
        jax.distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id,
                                   initialization_timeout=args.timeout, heartbeat_timeout_seconds=10)
        if args.fail_process == args.process_id:  # tests: a worker that dies mid-run must fail the launch
            os._exit(3)
    import numpy as np
    import optax

    import funclayers as fl
    from examples.digits import digits_cnn, load_digits_data

    data = load_digits_data(seed=args.seed)
    model = fl.DistributedDataParallel(fl.parallel.convert_sync_batchnorm(digits_cnn(dropout=args.dropout)))
    params, state = model.init(jax.random.PRNGKey(args.seed))  # the same params on every process
    if args.perturb_process == jax.process_index():  # tests: DDP takes params and buffers from rank 0
        params, state = jax.tree.map(lambda a: a + 1, (params, state))
    # SGD with momentum: Adam would divide the conv biases' gradients (exactly zero before a BatchNorm,
    # so float rounding noise that differs with the reduction order) by their own size, and turn
    # that noise into full-size updates; the comparison would then measure noise, not DDP.
    optimizer = optax.sgd(args.lr, momentum=0.9)
    opt_state = optimizer.init(params)

    def loss_fn(logits, labels):  # over the global batch
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    step = fl.parallel.make_train_step(model, optimizer, loss_fn)
    rank, processes = jax.process_index(), jax.process_count()
    if args.batch_size % processes:
        raise SystemExit(f"--batch-size {args.batch_size} must divide over {processes} processes")
    local = args.batch_size // processes
    order, key = np.random.default_rng(args.seed), jax.random.PRNGKey(args.seed + 1)
    start = time.perf_counter()
    for i in range(args.steps):
        batch = order.choice(len(data.x_train), args.batch_size, replace=False)  # the same on every process
        mine = batch[rank * local:(rank + 1) * local]
        params, state, opt_state, loss = step(params, state, opt_state, data.x_train[mine], data.y_train[mine],
                                              rng=jax.random.fold_in(key, i))
        if rank == 0 and (i % 10 == 0 or i == args.steps - 1):
            print(f"[process {rank}/{processes}, {jax.device_count()} devices] step {i:3d}  "
                  f"global-batch loss {float(loss):.4f}", flush=True)
    if rank == 0:
        print(f"{args.steps} steps in {time.perf_counter() - start:.1f} s (compilation included)", flush=True)
    weights = {k: np.asarray(v) for k, v in fl.state_dict(params, state).items()}  # replicated: every process
    if args.out:
        np.savez(args.out, **weights)
    if args.num_processes > 1:
        jax.distributed.shutdown()
    return weights


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _run_all(commands: list[tuple[list[str], dict]], timeout: float) -> None:
    """Run the commands at once; if one fails or the time runs out, stop the others and raise."""
    logs = [tempfile.TemporaryFile("w+") for _ in commands]  # files, not pipes: a full pipe would block
    procs = [subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
             for (cmd, env), log in zip(commands, logs)]
    deadline, failure = time.monotonic() + timeout, None
    try:
        while failure is None and any(p.poll() is None for p in procs):
            failure = next((f"process {i} exited with status {p.returncode}" for i, p in enumerate(procs)
                            if p.poll() not in (None, 0)), None)
            if failure is None and time.monotonic() > deadline:
                failure = f"timed out after {timeout:.0f} s"
            time.sleep(0.2)
        failure = failure or next((f"process {i} exited with status {p.returncode}"
                                   for i, p in enumerate(procs) if p.returncode != 0), None)
    finally:
        for p in procs:  # the others, once one has died (they would wait for it until their timeout)
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, log in enumerate(logs):
        log.seek(0)
        lines = [ln for ln in log.read().splitlines() if not ln.startswith(("[Gloo]", "W0", "I0"))]
        log.close()
        print(f"--- process {i} ---\n" + "\n".join(lines[-15 if failure else -4:]), flush=True)
    if failure:
        raise RuntimeError(f"train_digits_ddp: {failure}; its output is above.")


def spawn(args: argparse.Namespace) -> int:
    """P workers on localhost with L simulated CPU devices each, and 1 process with P x L devices."""
    import numpy as np

    tmp = tempfile.mkdtemp(prefix="ddp_digits_")
    common = [sys.executable, os.path.abspath(__file__), "--steps", str(args.steps), "--batch-size",
              str(args.batch_size), "--lr", str(args.lr), "--seed", str(args.seed), "--dropout", str(args.dropout),
              "--timeout", str(args.timeout), "--fail-process", str(args.fail_process),
              "--perturb-process", str(args.perturb_process)]

    def env(devices):
        return dict(os.environ, JAX_PLATFORMS="cpu",
                    XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")

    port, p, d = _free_port(), args.spawn, args.devices_per_process
    workers = [(common + ["--coordinator", f"localhost:{port}", "--num-processes", str(p), "--process-id", str(i),
                          "--out", os.path.join(tmp, f"worker{i}.npz")], env(d)) for i in range(p)]
    reference = (common + ["--out", os.path.join(tmp, "one_process.npz")], env(p * d))
    _run_all(workers + [reference], args.timeout)  # at once: the workers wait on each other anyway
    one = np.load(os.path.join(tmp, "one_process.npz"))
    worst, where = 0.0, ""
    for i in range(p):
        mine = np.load(os.path.join(tmp, f"worker{i}.npz"))
        assert sorted(mine) == sorted(one), (sorted(mine), sorted(one))
        for name in one:
            scale = max(1.0, float(np.max(np.abs(one[name]))))
            diff = float(np.max(np.abs(mine[name].astype(np.float64) - one[name]))) / scale
            worst, where = max((worst, where), (diff, f"{name} of process {i}"))
    print(f"{p} processes x {d} devices vs 1 process x {p * d} devices after {args.steps} steps: largest "
          f"parameter/buffer difference {worst:.2e} (relative to the tensor's scale; {where})")
    ok = worst <= args.tolerance
    print("DDP-MATCH" if ok else f"DDP-MISMATCH (tolerance {args.tolerance:g})")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spawn", type=int, default=0, help="start this many local worker processes, then check")
    ap.add_argument("--devices-per-process", type=int, default=2, help="simulated CPU devices per worker (--spawn)")
    ap.add_argument("--coordinator", default=None, help="host:port of process 0 (jax.distributed.initialize)")
    ap.add_argument("--num-processes", type=int, default=1)
    ap.add_argument("--process-id", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64, help="the global batch")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dropout", type=float, default=0.25)
    ap.add_argument("--timeout", type=int, default=240, help="seconds before a stuck run is stopped")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--fail-process", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--perturb-process", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="write the final state_dict to this .npz")
    args = ap.parse_args(argv)
    if args.spawn:
        return spawn(args)
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
