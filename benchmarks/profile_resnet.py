"""Where does ResNet-18's training step spend its time? Per-layer forward + backward, funclayers vs torch.

    python -m benchmarks.profile_resnet            # a table: layer at ResNet-18 shape, ours ms, torch ms
    python -m benchmarks.profile_resnet --small-cnn  # the small CNN's layers, ours only: CPU ms vs the whole step

Times each distinct (layer, input shape) of the CIFAR ResNet-18 at batch 32 -- the 3x3 and 1x1
convolutions, BatchNorm2d in training mode, ReLU, the residual add -- as forward + backward
w.r.t. input and parameters: funclayers under jax.jit, torch eager, both in this process after
warm-up (torch first, then JAX, so their thread pools do not overlap). Multiply by the count
column to see which layer accounts for a difference in the whole step.

`--small-cnn` times the small CNN's layers (examples/models.py) at its benchmark shapes (batch 64),
funclayers only, as median CPU time per step (`time.process_time()`, alternating, so it ranks
under load), and the benchmark's whole training step in the same process: whether the step costs
more than the sum of its parts. 2026-12-07, load 13: the two 32-channel Winograd convolutions are
56.0 + 23.5 of the layers' 114.2 ms, the whole step 107.5 ms (benchmarks/README.md).
"""

from __future__ import annotations

import functools
import statistics
import sys
import time

import numpy as np

BATCH = 32
# (name, count in ResNet-18, builder args): conv(c_in, c_out, k, stride, hw) / bn(c, hw) / relu(c, hw)
LAYERS = [
    ("conv3x3 3->64 @32", 1, ("conv", 3, 64, 3, 1, 32)),
    ("conv3x3 64->64 @32", 4, ("conv", 64, 64, 3, 1, 32)),
    ("conv3x3 64->128 s2 @32", 1, ("conv", 64, 128, 3, 2, 32)),
    ("conv3x3 128->128 @16", 3, ("conv", 128, 128, 3, 1, 16)),
    ("conv3x3 128->256 s2 @16", 1, ("conv", 128, 256, 3, 2, 16)),
    ("conv3x3 256->256 @8", 3, ("conv", 256, 256, 3, 1, 8)),
    ("conv3x3 256->512 s2 @8", 1, ("conv", 256, 512, 3, 2, 8)),
    ("conv3x3 512->512 @4", 3, ("conv", 512, 512, 3, 1, 4)),
    ("conv1x1 s2 64->128 @32", 1, ("conv", 64, 128, 1, 2, 32)),
    ("conv1x1 s2 128->256 @16", 1, ("conv", 128, 256, 1, 2, 16)),
    ("conv1x1 s2 256->512 @8", 1, ("conv", 256, 512, 1, 2, 8)),
    ("BatchNorm2d(64) train @32", 5, ("bn", 64, 32)),
    ("BatchNorm2d(128) train @16", 5, ("bn", 128, 16)),
    ("BatchNorm2d(256) train @8", 5, ("bn", 256, 8)),
    ("BatchNorm2d(512) train @4", 5, ("bn", 512, 4)),
    ("ReLU 64 @32", 5, ("relu", 64, 32)),
    ("ReLU 512 @4", 4, ("relu", 512, 4)),
]


def _shape(spec):
    kind = spec[0]
    if kind == "conv":
        _, c_in, _, _, _, hw = spec
        return (BATCH, c_in, hw, hw)
    _, c, hw = spec
    return (BATCH, c, hw, hw)


def _time(step, iters):
    step()
    step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def torch_times(iters):
    import torch

    out = {}
    for name, _, spec in LAYERS:
        x = torch.randn(_shape(spec), requires_grad=True)
        if spec[0] == "conv":
            _, c_in, c_out, k, s, _ = spec
            module = torch.nn.Conv2d(c_in, c_out, k, stride=s, padding=k // 2, bias=False)
        elif spec[0] == "bn":
            module = torch.nn.BatchNorm2d(spec[1]).train()
        else:
            module = torch.nn.ReLU()
        ct = torch.randn_like(module(x))

        def step(module=module, x=x, ct=ct):
            for p in module.parameters():
                p.grad = None
            x.grad = None
            (module(x) * ct).sum().backward()

        out[name] = _time(step, iters)
    return out


def _layer_grad(layer, state):
    """The jitted training-mode step of one layer: loss sum(out * ct), gradients w.r.t. params and x."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def grad(params, x, ct):
        def loss(params, x):
            out, new_state = layer.apply(params, state, x, training=True)
            return jnp.sum(out * ct), new_state

        return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)

    return grad


def funclayers_times(iters):
    import jax
    import jax.numpy as jnp

    import funclayers as fl

    out = {}
    for name, _, spec in LAYERS:
        x = jnp.asarray(np.random.default_rng(0).standard_normal(_shape(spec)), jnp.float32)
        if spec[0] == "conv":
            _, c_in, c_out, k, s, _ = spec
            layer = fl.Conv2d(c_in, c_out, k, stride=s, padding=k // 2, bias=False)
        elif spec[0] == "bn":
            layer = fl.BatchNorm2d(spec[1])
        else:
            layer = fl.ReLU()
        params, state = layer.init(jax.random.PRNGKey(0))
        def forward(params, x, layer=layer, state=state):
            return layer.apply(params, state, x, training=True)[0]

        y = jax.eval_shape(forward, params, x)
        ct = jnp.asarray(np.random.default_rng(1).standard_normal(y.shape), y.dtype)  # random, an argument

        grad = _layer_grad(layer, state)

        def step(grad=grad, params=params, x=x, ct=ct):
            jax.block_until_ready(grad(params, x, ct))

        out[name] = _time(step, iters)
    return out


def small_cnn_parts(iters):
    """{layer: median CPU ms} for the small CNN's layers (forward + backward) and its whole step."""
    import jax
    import jax.numpy as jnp

    import funclayers as fl
    from benchmarks.workloads.models import SMALL_CNN_BATCH as n
    from benchmarks.workloads.models import _fl_train

    layers = [("Conv2d 3->32 @32", fl.Conv2d(3, 32, 3, padding=1), 3, 32),
              ("BatchNorm2d(32) @32", fl.BatchNorm2d(32), 32, 32), ("ReLU 32 @32", fl.ReLU(), 32, 32),
              ("Conv2d 32->32 @32", fl.Conv2d(32, 32, 3, padding=1), 32, 32),
              ("BatchNorm2d(32) @32, 2nd", fl.BatchNorm2d(32), 32, 32), ("ReLU 32 @32, 2nd", fl.ReLU(), 32, 32),
              ("MaxPool2d(2) 32 @32", fl.MaxPool2d(2), 32, 32),
              ("Conv2d 32->64 @16", fl.Conv2d(32, 64, 3, padding=1), 32, 16),
              ("BatchNorm2d(64) @16", fl.BatchNorm2d(64), 64, 16), ("ReLU 64 @16", fl.ReLU(), 64, 16),
              ("AdaptiveAvgPool2d + Linear", fl.Sequential(fl.AdaptiveAvgPool2d(1), fl.Flatten(), fl.Linear(64, 10)),
               64, 16)]
    rng = np.random.default_rng(0)
    steps = {}
    for name, layer, c, hw in layers:
        params, state = layer.init(jax.random.PRNGKey(0))
        x = jnp.asarray(rng.standard_normal((n, c, hw, hw)), jnp.float32)
        y = jax.eval_shape(lambda p, x, layer=layer, state=state: layer.apply(p, state, x, training=True)[0],
                           params, x)
        ct = jnp.asarray(rng.standard_normal(y.shape), y.dtype)

        grad = _layer_grad(layer, state)

        steps[name] = functools.partial(lambda g, *a: jax.block_until_ready(g(*a)), grad, params, x, ct)
    steps["whole training step"] = _fl_train("small_cnn", n)()
    times = {name: [] for name in steps}
    for step in steps.values():
        step()
        step()
    for _ in range(iters):
        for name, step in steps.items():
            t0 = time.process_time()
            step()
            times[name].append(time.process_time() - t0)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--small-cnn" in args:
        args.remove("--small-cnn")
        cpu = small_cnn_parts(int((args or ["20"])[0]))
        whole = cpu.pop("whole training step")
        print("| small CNN layer (batch 64), forward + backward | funclayers CPU ms |\n|---|---|")
        for name, ms in cpu.items():
            print(f"| {name} | {ms:.2f} |")
        print(f"| sum of the layers | {sum(cpu.values()):.2f} |\n| the whole training step | {whole:.2f} |")
        return 0
    iters = int((args or ["10"])[0])
    theirs = torch_times(iters)
    ours = funclayers_times(iters)
    print("| layer at ResNet-18 shape (batch 32) | count | funclayers ms | torch ms | ours/torch | "
          "ours - torch, x count, ms |\n|---|---|---|---|---|---|")
    total_ours = total_theirs = 0.0
    for name, count, _ in LAYERS:
        total_ours += count * ours[name]
        total_theirs += count * theirs[name]
        print(f"| {name} | {count} | {ours[name]:.2f} | {theirs[name]:.2f} | "
              f"{ours[name] / theirs[name]:.2f}x | "
              f"{count * (ours[name] - theirs[name]):+.1f} |")
    print(f"| sum over the step's layers | | {total_ours:.1f} | {total_theirs:.1f} | "
          f"{total_ours / total_theirs:.2f}x | {total_ours - total_theirs:+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
