"""Peak memory of one LinearCrossEntropyLoss(512, 32000) training step on (4096, 512) (issue 18).

    python -m benchmarks.loss_memory            # one fresh process per framework

Each process builds the step, runs it once (compilation included for JAX), then reports the growth
of its peak resident set (ru_maxrss) over a warm-up step: the memory the forward + backward pass
needs beyond what the process held before it. For JAX it also prints XLA's own account of the
compiled gradient (memory_analysis: arguments, outputs, temporaries). torch runs its default
options=None reference path, which materialises the (N, C) logits, and the chunked path
(options=LinearCrossEntropyOptions()).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

FRAMEWORKS = ("funclayers", "torch", "torch-chunked")


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def worker(framework: str) -> dict:
    import numpy as np

    from benchmarks.workloads.loss import LCE, _lce_data

    n, d, c = LCE
    x_np, t_np = _lce_data()
    out = {}
    if framework == "funclayers":
        import jax
        import jax.numpy as jnp

        import funclayers as fl

        criterion = fl.LinearCrossEntropyLoss(d, c)
        params, state = criterion.init(jax.random.PRNGKey(0))
        x, t = jnp.asarray(x_np), jnp.asarray(t_np, jnp.int32)
        grad = jax.jit(jax.value_and_grad(lambda p, x, t: criterion.apply(p, state, x, t)[0], argnums=(0, 1)))
        compiled = grad.lower(params, x, t).compile()
        analysis = compiled.memory_analysis()
        out["xla_temp_mib"] = analysis.temp_size_in_bytes / 2**20
        out["xla_args_mib"] = analysis.argument_size_in_bytes / 2**20
        out["xla_out_mib"] = analysis.output_size_in_bytes / 2**20
        before = _max_rss_mib()
        jax.block_until_ready(compiled(params, x, t))
    else:
        import torch

        kwargs = {"options": torch.nn.LinearCrossEntropyOptions()} if framework == "torch-chunked" else {}
        criterion = torch.nn.LinearCrossEntropyLoss(d, c, **kwargs)
        x = torch.from_numpy(np.array(x_np)).requires_grad_(True)
        t = torch.from_numpy(np.array(t_np))
        before = _max_rss_mib()
        criterion(x, t).backward()
    out["peak_rss_growth_mib"] = _max_rss_mib() - before
    out["logits_mib"] = n * c * 4 / 2**20
    return out


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2])))
        return 0
    for framework in FRAMEWORKS:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.loss_memory", "--worker", framework],
                              capture_output=True, text=True)
        if proc.returncode:
            print(framework, "failed:", proc.stderr[-1500:])
            continue
        print(framework, proc.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
