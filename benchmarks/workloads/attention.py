"""Attention and Transformer workloads (issue 15): forward + backward on CPU.

- MultiheadAttention(256, 8, batch_first=True), self-attention on (8, 128, 256), need_weights=False
  (torch's SDPA path; Flax's and Equinox's layers return no weights either): gradients w.r.t. the
  input and every parameter. Flax: nn.MultiHeadDotProductAttention; Equinox: eqx.nn.MultiheadAttention.
- TransformerEncoderLayer(256, 4, 1024, 0.0, batch_first=True) on (16, 128, 256), torch vs us
  (Flax and Equinox have no transformer layer).
- scaled_dot_product_attention, causal, (2, 8, 4096, 64): gradients w.r.t. q, k, v. Peak memory:
  `python -m benchmarks.workloads.attention --memory` (one fresh process per framework, ru_maxrss
  over the process's baseline after building the data).
- a 6-layer encoder (d_model 256, 4 heads, ff 1024, dropout 0.1, batch_first) training step with
  optax Adam on (16, 128, 256): the runner's first-call column is its compile time.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload, jax_step, outputs_and_vjp, to_torch, torch_device, torch_step

MHA_SHAPE, ENC_SHAPE, SDPA_SHAPE = (8, 128, 256), (16, 128, 256), (2, 8, 4096, 64)


def _data(*shapes):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


# -- funclayers ---------------------------------------------------------------------------------------------


def _fl_layer(make, shape, self_attention):
    def build():
        import jax
        import jax.numpy as jnp

        import funclayers as fl

        layer = make(fl)
        params, state = layer.init(jax.random.PRNGKey(0))
        x, ct = (jnp.asarray(a) for a in _data(shape, shape))

        @jax.jit
        def step(params, x, ct):
            def forward(params, x):
                if self_attention:
                    return layer.apply(params, state, x, x, x, need_weights=False)[0][0]
                return layer.apply(params, state, x)[0]

            return outputs_and_vjp(forward, (params, x), ct)  # torch: out.backward(ct)

        return jax_step(step, params, x, ct)

    return build


def _fl_sdpa():
    import jax
    import jax.numpy as jnp

    import funclayers.functional as F

    q, k, v, ct = (jnp.asarray(a) for a in _data(*[SDPA_SHAPE] * 4))

    @jax.jit
    def step(q, k, v, ct):
        return outputs_and_vjp(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v), ct)

    return jax_step(step, q, k, v, ct)


def _fl_encoder_train():
    import jax
    import jax.numpy as jnp
    import optax

    import funclayers as fl

    model = fl.TransformerEncoder(fl.TransformerEncoderLayer(256, 4, 1024, 0.1, batch_first=True), 6)
    params, state = model.init(jax.random.PRNGKey(0))
    opt = optax.adam(1e-3)
    opt_state = opt.init(params)
    x, target = (jnp.asarray(a) for a in _data(ENC_SHAPE, ENC_SHAPE))

    @jax.jit
    def train_step(params, opt_state, rng, x, target):  # x, target: arguments, not constants (harness.py)
        def loss(params):
            out, _ = model.apply(params, state, x, rng=rng, training=True)
            return jnp.mean((out - target) ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    carry = {"params": params, "opt": opt_state, "rng": jax.random.PRNGKey(1)}

    def step():
        carry["rng"], key = jax.random.split(carry["rng"])
        carry["params"], carry["opt"], value = train_step(carry["params"], carry["opt"], key, x, target)
        jax.block_until_ready((carry["params"], value))

    return step


# -- torch --------------------------------------------------------------------------------------------------


def _torch_layer(make, shape, self_attention):
    def build():
        import torch

        module = make(torch.nn).to(torch_device())
        x_np, ct_np = _data(shape, shape)
        x, ct = to_torch(x_np, requires_grad=True), to_torch(ct_np)

        def step():
            module.zero_grad(set_to_none=True)
            x.grad = None
            out = module(x, x, x, need_weights=False)[0] if self_attention else module(x)
            out.backward(ct)

        return torch_step(step)

    return build


def _torch_sdpa():
    import torch

    q, k, v = (to_torch(a, requires_grad=True) for a in _data(*[SDPA_SHAPE] * 3))
    ct = to_torch(_data(SDPA_SHAPE)[0])

    def step():
        for t in (q, k, v):
            t.grad = None
        torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).backward(ct)

    return torch_step(step)


def _torch_encoder_train():
    import torch

    layer = torch.nn.TransformerEncoderLayer(256, 4, 1024, 0.1, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, 6, enable_nested_tensor=False).to(torch_device()).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, target = (to_torch(a) for a in _data(ENC_SHAPE, ENC_SHAPE))

    def step():
        opt.zero_grad(set_to_none=True)
        torch.mean((model(x) - target) ** 2).backward()
        opt.step()

    return torch_step(step)


# -- flax and equinox (multi-head attention only) ------------------------------------------------------------


def _flax_mha():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    module = nn.MultiHeadDotProductAttention(num_heads=8, qkv_features=256, out_features=256)
    x, ct = (jnp.asarray(a) for a in _data(MHA_SHAPE, MHA_SHAPE))
    params = module.init(jax.random.PRNGKey(0), x, x, x)["params"]

    @jax.jit
    def step(params, x, ct):
        return outputs_and_vjp(lambda p, x: module.apply({"params": p}, x, x, x), (params, x), ct)

    return jax_step(step, params, x, ct)


def _eqx_mha():
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    module = eqx.nn.MultiheadAttention(8, 256, key=jax.random.PRNGKey(0))
    x, ct = (jnp.asarray(a) for a in _data(MHA_SHAPE, MHA_SHAPE))

    @eqx.filter_jit
    def step(module, x, ct):
        def forward(both):
            module, x = both
            return jax.vmap(lambda s: module(s, s, s))(x)

        out, pullback = eqx.filter_vjp(forward, (module, x))
        return out, pullback(ct)

    return jax_step(step, module, x, ct)


WORKLOADS = [
    Workload("MultiheadAttention(256, 8) self-attn (8,128,256)", {
        "funclayers": _fl_layer(lambda fl: fl.MultiheadAttention(256, 8, batch_first=True), MHA_SHAPE, True),
        "torch": _torch_layer(lambda nn: nn.MultiheadAttention(256, 8, batch_first=True), MHA_SHAPE, True),
        "flax": _flax_mha,
        "equinox": _eqx_mha,
    }, note="need_weights=False; gradients w.r.t. input and parameters"),
    Workload("TransformerEncoderLayer(256, 4, 1024, 0.0) (16,128,256)", {
        "funclayers": _fl_layer(lambda fl: fl.TransformerEncoderLayer(256, 4, 1024, 0.0, batch_first=True),
                                ENC_SHAPE, False),
        "torch": _torch_layer(lambda nn: nn.TransformerEncoderLayer(256, 4, 1024, 0.0, batch_first=True),
                              ENC_SHAPE, False),
    }),
    Workload("scaled_dot_product_attention causal (2,8,4096,64)", {
        "funclayers": _fl_sdpa, "torch": _torch_sdpa,
    }, iters=3, quick_iters=1),
    Workload("6-layer TransformerEncoder train step (16,128,256)", {
        "funclayers": _fl_encoder_train, "torch": _torch_encoder_train,
    }, iters=5, quick_iters=2, note="optax / torch Adam, dropout 0.1"),
]


def _peak_memory(framework: str) -> None:
    """One process: ru_maxrss growth (MB) over the baseline after building the SDPA data, 3 steps."""
    import resource

    step = {"funclayers": _fl_sdpa, "torch": _torch_sdpa}[framework]()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3):
        step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{framework}: baseline {base // 1024} MB, peak {peak // 1024} MB, growth {(peak - base) // 1024} MB")


if __name__ == "__main__":
    import subprocess
    import sys

    if len(sys.argv) > 2 and sys.argv[1] == "--memory-worker":
        _peak_memory(sys.argv[2])
    elif "--memory" in sys.argv:
        for framework in ("funclayers", "torch"):
            subprocess.run([sys.executable, "-m", "benchmarks.workloads.attention", "--memory-worker", framework],
                           check=True)
