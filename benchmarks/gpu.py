"""Model training steps on a GPU: funclayers (jit) against torch eager on CUDA, one process each.

    python -m benchmarks.gpu                 # needs a CUDA build of jax and torch

Prints the median step time of each framework and the ratio ours / torch, alternating processes.
The CPU record lives in benchmarks/run.py and benchmarks/README.md; this is the GPU check.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

CASES = {  # name: (model, batch, training)
    "small_cnn train b256": ("small_cnn", 256, True),
    "resnet18 train b128": ("resnet18", 128, True),
    "resnet18 inference b256": ("resnet18", 256, False),
}


def _funclayers_step(model_name, batch, training):
    import jax
    import optax

    from examples import models

    model = getattr(models, model_name)()
    params, state = model.init(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, 3, 32, 32))
    y = jax.random.randint(jax.random.PRNGKey(2), (batch,), 0, 10)
    opt = optax.sgd(0.01, momentum=0.9)
    opt_state = opt.init(params)

    def loss_fn(params, state):
        logits, state = model.apply(params, state, x, training=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), state

    @jax.jit
    def train(params, state, opt_state):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    infer = jax.jit(lambda params, state: model.apply(params, state, x)[0])
    carry = [params, state, opt_state]

    def step():
        if training:
            carry[:] = train(*carry)[:3]
            jax.block_until_ready(carry[0])
        else:
            jax.block_until_ready(infer(carry[0], carry[1]))

    return step


def _torch_step(model_name, batch, training):
    import torch

    from examples import models

    dev = "cuda"
    model = getattr(models, f"torch_{model_name}")().to(dev)
    x = torch.randn(batch, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train(training)

    def step():
        if training:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)
        torch.cuda.synchronize()

    return step


def worker(framework, case, iters):
    model_name, batch, training = CASES[case]
    t0 = time.perf_counter()
    step = (_funclayers_step if framework == "funclayers" else _torch_step)(model_name, batch, training)
    step()
    first = time.perf_counter() - t0
    for _ in range(3):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"times": times, "first": first}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        return
    print("| workload | funclayers ms | torch ms | ours/torch | ours first call s |\n|---|---|---|---|---|")
    for case in CASES:
        samples = {"funclayers": [], "torch": []}
        first = {}
        for r in range(2):
            for fw in (("funclayers", "torch") if r == 0 else ("torch", "funclayers")):
                out = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--worker", fw, case, "20"],
                                     capture_output=True, text=True)
                if out.returncode:
                    print(f"[{case} / {fw}] failed: {out.stderr[-1500:]}", file=sys.stderr)
                    continue
                res = json.loads(out.stdout.strip().splitlines()[-1])
                samples[fw] += res["times"]
                first.setdefault(fw, res["first"])
        med = {k: statistics.median(v) * 1e3 for k, v in samples.items() if v}
        ratio = f"{med['funclayers'] / med['torch']:.2f}x" if len(med) == 2 else "-"
        print(f"| {case} | {med.get('funclayers', float('nan')):.2f} | {med.get('torch', float('nan')):.2f} | "
              f"{ratio} | {first.get('funclayers', float('nan')):.1f} |", flush=True)


if __name__ == "__main__":
    main()
