"""Loss workloads (issue 18): forward + backward on CPU.

CrossEntropyLoss(label_smoothing=0.1, ignore_index=0) on (4096, 1000) logits; CTCLoss() on
(T=100, N=16, C=30) log_softmax outputs with targets of length 30 (gradient w.r.t. the logits);
LinearCrossEntropyLoss(512, 32000) on (4096, 512) (gradients w.r.t. the input and linear.weight; torch
with its default options=None, the reference path that materialises the (N, C) logits). Neither Flax
nor Equinox has these losses; the "flax" column is optax (softmax_cross_entropy with smooth_labels and
the ignore mask; optax.ctc_loss), what a Flax user writes. Peak memory: benchmarks/loss_memory.py.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload, jax_step, to_torch, torch_step

CE = (4096, 1000)
CTC = (100, 16, 30, 30)  # T, N, C, target length
LCE = (4096, 512, 32000)  # N, in_features, num_classes


def _ce_data():
    rng = np.random.default_rng(0)
    n, c = CE
    return rng.standard_normal((n, c)).astype(np.float32), rng.integers(0, c, n).astype(np.int64)


def _ce_fl():
    import jax
    import jax.numpy as jnp

    import funclayers as fl

    criterion = fl.CrossEntropyLoss(ignore_index=0, label_smoothing=0.1)
    x, t = _ce_data()
    step = jax.jit(jax.value_and_grad(lambda x, t: criterion.apply({}, {}, x, t)[0]))
    return jax_step(step, jnp.asarray(x), jnp.asarray(t, jnp.int32))


def _ce_torch():
    import torch

    criterion = torch.nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.1)
    x_np, t_np = _ce_data()
    x, t = to_torch(x_np, requires_grad=True), to_torch(t_np)

    def step():
        x.grad = None
        criterion(x, t).backward()

    return torch_step(step)


def _ce_optax():
    import jax
    import jax.numpy as jnp
    import optax

    x, t = _ce_data()

    def loss(x, t):
        labels = optax.smooth_labels(jax.nn.one_hot(t, x.shape[1], dtype=x.dtype), 0.1)
        mask = t != 0
        return jnp.sum(jnp.where(mask, optax.softmax_cross_entropy(x, labels), 0)) / jnp.sum(mask)

    return jax_step(jax.jit(jax.value_and_grad(loss)), jnp.asarray(x), jnp.asarray(t, jnp.int32))


def _ctc_data():
    rng = np.random.default_rng(0)
    steps, batch, classes, length = CTC
    logits = rng.standard_normal((steps, batch, classes)).astype(np.float32)
    targets = rng.integers(1, classes, (batch, length)).astype(np.int64)
    return logits, targets, np.full(batch, steps, np.int64), np.full(batch, length, np.int64)


def _ctc_fl():
    import jax
    import jax.numpy as jnp

    import funclayers as fl

    criterion = fl.CTCLoss()
    logits, targets, lin, ltg = (jnp.asarray(a) if a.dtype.kind == "f" else jnp.asarray(a, jnp.int32)
                                 for a in _ctc_data())

    @jax.jit
    def step(x, targets, lin, ltg):
        return jax.value_and_grad(lambda x: criterion.apply({}, {}, jax.nn.log_softmax(x, -1), targets, lin, ltg)[0])(x)

    return jax_step(step, logits, targets, lin, ltg)


def _ctc_torch():
    import torch

    criterion = torch.nn.CTCLoss()
    logits_np, targets_np, lin_np, ltg_np = _ctc_data()
    x = to_torch(logits_np, requires_grad=True)
    targets, lin, ltg = to_torch(targets_np), to_torch(lin_np), to_torch(ltg_np)

    def step():
        x.grad = None
        criterion(x.log_softmax(-1), targets, lin, ltg).backward()

    return torch_step(step)


def _ctc_optax():
    import jax
    import jax.numpy as jnp
    import optax

    logits, targets, _, ltg = _ctc_data()
    steps, batch, _, length = CTC

    @jax.jit
    def step(x, labels):
        def loss(x):
            per_seq = optax.ctc_loss(jnp.swapaxes(x, 0, 1), jnp.zeros((batch, steps)), labels,
                                     jnp.zeros((batch, length)))
            return jnp.mean(per_seq / length)  # torch's 'mean': divided by the target lengths

        return jax.value_and_grad(loss)(x)

    return jax_step(step, jnp.asarray(logits), jnp.asarray(targets, jnp.int32))


def _lce_data():
    rng = np.random.default_rng(0)
    n, d, c = LCE
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, c, n).astype(np.int64)


def _lce_fl():
    import jax
    import jax.numpy as jnp

    import funclayers as fl

    n, d, c = LCE
    criterion = fl.LinearCrossEntropyLoss(d, c)
    params, state = criterion.init(jax.random.PRNGKey(0))
    x, t = _lce_data()
    step = jax.jit(jax.value_and_grad(lambda p, x, t: criterion.apply(p, state, x, t)[0], argnums=(0, 1)))
    return jax_step(step, params, jnp.asarray(x), jnp.asarray(t, jnp.int32))


def _lce_torch():
    import torch

    n, d, c = LCE
    criterion = torch.nn.LinearCrossEntropyLoss(d, c)
    x_np, t_np = _lce_data()
    x, t = to_torch(x_np, requires_grad=True), to_torch(t_np)

    def step():
        x.grad = None
        criterion.zero_grad(set_to_none=True)
        criterion(x, t).backward()

    return torch_step(step)


WORKLOADS = [
    Workload("CrossEntropyLoss ls=0.1 ignore=0 (4096,1000)",
             {"funclayers": _ce_fl, "torch": _ce_torch, "flax": _ce_optax}, note="flax column: optax"),
    Workload("CTCLoss (T=100,N=16,C=30,S=30)",
             {"funclayers": _ctc_fl, "torch": _ctc_torch, "flax": _ctc_optax}, note="flax column: optax.ctc_loss"),
    Workload("LinearCrossEntropyLoss(512,32000) (4096,512)", {"funclayers": _lce_fl, "torch": _lce_torch},
             iters=3, quick_iters=1),
]
