"""Recurrent workloads (issue 14): a training step's work, forward + backward, on CPU.

Each step backpropagates the same random cotangent through the output sequence and returns the
gradients w.r.t. every parameter and the input. Flax runs `nn.RNN(nn.OptimizedLSTMCell)` /
`nn.RNN(nn.GRUCell)` (bidirectional: `nn.Bidirectional`, stacked); Equinox its `eqx.nn.LSTMCell` /
`eqx.nn.GRUCell` scanned over time with `lax.scan` and vmapped over the batch, what a user of those
libraries writes.

Torch runs its CPU LSTM (not its GRU or RNN) through oneDNN's fused RNN primitive. With
`FUNCLAYERS_BENCH_TORCH_ONEDNN=0` in the environment, torch's workers disable oneDNN
(`torch.backends.mkldnn.enabled = False`) and run its LSTM as its other layers run, one ATen op
at a time: `FUNCLAYERS_BENCH_TORCH_ONEDNN=0 python -m benchmarks.run --only LSTM --frameworks
funclayers torch --output /tmp/no_onednn.md`. This is what separates the LSTM rows from the GRU
row (benchmarks/README.md, ninth session).
"""

from __future__ import annotations

import os

import numpy as np

from benchmarks.harness import Workload, jax_step, outputs_and_vjp, to_torch, torch_device, torch_step

TORCH_ONEDNN_ENV = "FUNCLAYERS_BENCH_TORCH_ONEDNN"

# name -> (kind, input_size, hidden_size, num_layers, bidirectional, (batch, length))
CONFIGS = {
    "LSTM(128, 256) batch_first (32, 64, 128)": ("LSTM", 128, 256, 1, False, (32, 64)),
    "LSTM(128, 256, 2 layers, bidirectional) (16, 64, 128)": ("LSTM", 128, 256, 2, True, (16, 64)),
    "GRU(128, 256) batch_first (32, 64, 128)": ("GRU", 128, 256, 1, False, (32, 64)),
    "LSTM(128, 256) batch_first (32, 512, 128)": ("LSTM", 128, 256, 1, False, (32, 512)),
}


def _data(config):
    _, input_size, hidden, _, bidirectional, (batch, length) = config
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, length, input_size)).astype(np.float32)
    ct = rng.standard_normal((batch, length, hidden * (2 if bidirectional else 1))).astype(np.float32)
    return x, ct


def _fl(config):
    def build():
        import jax
        import jax.numpy as jnp

        import funclayers as fl

        kind, input_size, hidden, layers, bidirectional, _ = config
        layer = getattr(fl, kind)(input_size, hidden, num_layers=layers, bidirectional=bidirectional,
                                  batch_first=True)
        params, state = layer.init(jax.random.PRNGKey(0))
        x, ct = (jnp.asarray(a) for a in _data(config))

        @jax.jit
        def step(params, x, ct):
            return outputs_and_vjp(lambda p, x: layer.apply(p, state, x)[0][0], (params, x), ct)

        return jax_step(step, params, x, ct)

    return build


def _torch(config):
    def build():
        import torch

        if os.environ.get(TORCH_ONEDNN_ENV, "1") == "0":
            torch.backends.mkldnn.enabled = False
        kind, input_size, hidden, layers, bidirectional, _ = config
        module = getattr(torch.nn, kind)(input_size, hidden, num_layers=layers, bidirectional=bidirectional,
                                         batch_first=True).to(torch_device())
        x_np, ct_np = _data(config)
        x, ct = to_torch(x_np, requires_grad=True), to_torch(ct_np)

        def step():
            module.zero_grad(set_to_none=True)
            x.grad = None
            module(x)[0].backward(ct)

        return torch_step(step)

    return build


def _flax(config):
    def build():
        import flax.linen as nn
        import jax
        import jax.numpy as jnp

        kind, _, hidden, layers, bidirectional, _ = config

        def cell():
            return nn.OptimizedLSTMCell(hidden) if kind == "LSTM" else nn.GRUCell(hidden)

        class Model(nn.Module):
            @nn.compact
            def __call__(self, x):
                for _ in range(layers):
                    if bidirectional:
                        x = nn.Bidirectional(nn.RNN(cell()), nn.RNN(cell()))(x)
                    else:
                        x = nn.RNN(cell())(x)
                return x

        model = Model()
        x, ct = (jnp.asarray(a) for a in _data(config))
        params = model.init(jax.random.PRNGKey(0), x)

        @jax.jit
        def step(params, x, ct):
            return outputs_and_vjp(model.apply, (params, x), ct)

        return jax_step(step, params, x, ct)

    return build


def _equinox(config):
    def build():
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        kind, input_size, hidden, layers, bidirectional, _ = config
        cell_type = eqx.nn.LSTMCell if kind == "LSTM" else eqx.nn.GRUCell
        num_dirs = 2 if bidirectional else 1
        keys = jax.random.split(jax.random.PRNGKey(0), layers * num_dirs)
        cells = [cell_type(input_size if k // num_dirs == 0 else hidden * num_dirs, hidden, key=keys[k])
                 for k in range(layers * num_dirs)]
        x, ct = (jnp.asarray(a) for a in _data(config))

        def run(cell, seq):  # seq (L, I) -> (L, H)
            if kind == "LSTM":
                def f(carry, xt):
                    h, c = cell(xt, carry)
                    return (h, c), h
                carry = (jnp.zeros(hidden), jnp.zeros(hidden))
            else:
                def f(carry, xt):
                    h = cell(xt, carry)
                    return h, h
                carry = jnp.zeros(hidden)
            return jax.lax.scan(f, carry, seq)[1]

        def model(cells, seq):
            for layer in range(layers):
                outs = [run(cells[layer * num_dirs], seq)]
                if bidirectional:
                    outs.append(run(cells[layer * num_dirs + 1], seq[::-1])[::-1])
                seq = jnp.concatenate(outs, axis=-1)
            return seq

        @jax.jit
        def step(cells, x, ct):
            return outputs_and_vjp(lambda c, x: jax.vmap(lambda s: model(c, s))(x), (cells, x), ct)

        return jax_step(step, cells, x, ct)

    return build


WORKLOADS = [
    Workload(name, {"funclayers": _fl(config), "torch": _torch(config), "flax": _flax(config),
                    "equinox": _equinox(config)},
             iters=10 if config[-1][1] > 64 else None, quick_iters=3 if config[-1][1] > 64 else None)
    for name, config in CONFIGS.items()
]
