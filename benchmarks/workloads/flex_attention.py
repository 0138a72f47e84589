"""FlexAttention workloads (issue 27): forward + backward on CPU, funclayers only.

torch's FlexAttention has no CPU backward, so each flex workload is timed against our own
`scaled_dot_product_attention` on the same problem (q, k, v, a random cotangent all arguments of
the jitted step, which returns the loss and the gradients w.r.t. q, k, v):

- causal (2, 8, 4096, 64): `flex_attention` with `create_block_mask(causal)` (blocks of 128) vs
  `scaled_dot_product_attention(is_causal=True)` (flash attention, tiles of 256);
- a document mask of 8 documents of 512 tokens, (2, 8, 4096, 64): `flex_attention` with its block
  mask (7/8 of the blocks skipped) vs `scaled_dot_product_attention` with the dense (4096, 4096)
  bool mask.

`python -m benchmarks.workloads.flex_attention` times all four, one fresh process each, and prints
the step time (wall and process CPU time) and the peak memory growth (ru_maxrss over the process's
baseline after building the data).
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload

SHAPE = (2, 8, 4096, 64)
DOCS = 8


def _data():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(4)]


def _doc_ids():
    return np.repeat(np.arange(DOCS), SHAPE[2] // DOCS)


def _step(attend, *extra):
    import jax
    import jax.numpy as jnp

    from benchmarks.harness import jax_step

    q, k, v, ct = (jnp.asarray(a) for a in _data())

    @jax.jit
    def step(q, k, v, ct, *extra):
        def loss(q, k, v):
            return jnp.sum(attend(q, k, v, *extra) * ct)

        return jax.value_and_grad(loss, argnums=(0, 1, 2))(q, k, v)

    return jax_step(step, q, k, v, ct, *extra)


def _flex_causal():
    from funclayers.attention.flex_attention import create_block_mask, flex_attention

    L = SHAPE[2]
    block_mask = create_block_mask(lambda b, h, q, kv: q >= kv, None, None, L, L)
    return _step(lambda q, k, v, bm: flex_attention(q, k, v, block_mask=bm), block_mask)


def _sdpa_causal():
    import funclayers.functional as F

    return _step(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))


def _flex_documents():
    import jax.numpy as jnp

    from funclayers.attention.flex_attention import create_block_mask, flex_attention

    L, docs = SHAPE[2], jnp.asarray(_doc_ids())
    block_mask = create_block_mask(lambda b, h, q, kv: docs[q] == docs[kv], None, None, L, L)
    return _step(lambda q, k, v, bm: flex_attention(q, k, v, block_mask=bm), block_mask)


def _sdpa_documents():
    import jax.numpy as jnp

    import funclayers.functional as F

    docs = _doc_ids()
    mask = jnp.asarray(docs[:, None] == docs[None, :])
    return _step(lambda q, k, v, mask: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), mask)


BUILDERS = {"flex causal": _flex_causal, "sdpa causal": _sdpa_causal, "flex documents": _flex_documents,
            "sdpa documents (dense mask)": _sdpa_documents}

WORKLOADS = [
    Workload("flex_attention causal block mask (2,8,4096,64)", {"funclayers": _flex_causal}, iters=3, quick_iters=1,
             note="against scaled_dot_product_attention causal (2,8,4096,64) in attention.py"),
    Workload("flex_attention 8-document mask (2,8,4096,64)", {"funclayers": _flex_documents}, iters=3,
             quick_iters=1, note="against the dense masked SDPA below"),
    Workload("scaled_dot_product_attention dense 8-document mask (2,8,4096,64)", {"funclayers": _sdpa_documents},
             iters=3, quick_iters=1),
]


def _worker(name: str, iters: int) -> None:
    import resource
    import time

    step = BUILDERS[name]()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()  # compile
    wall, cpu = [], []
    for _ in range(iters):
        w, c = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{name:30s} wall {min(wall):7.3f} s  cpu {min(cpu):7.3f} s  peak growth {(peak - base) // 1024} MB",
          flush=True)


if __name__ == "__main__":
    import subprocess
    import sys

    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], int(sys.argv[3]))
    else:
        iters = int(sys.argv[1]) if len(sys.argv) > 1 else 3
        for name in BUILDERS:
            subprocess.run([sys.executable, "-m", "benchmarks.workloads.flex_attention", "--worker", name,
                            str(iters)], check=True)
