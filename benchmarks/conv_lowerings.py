"""Times every applicable convolution lowering, forced, on this machine's JAX backend.

    python -m benchmarks.conv_lowerings            # CPU, or the GPU where JAX has one

The dispatch in `funclayers._kernels._conv_lowering.choose` was measured on CPU; this prints, per
benchmark shape, forward + backward (input and weight gradients) in milliseconds for XLA's own
convolution and for each of our lowerings that applies, and for each transposed-convolution
lowering, so the rules can be checked on another backend (they pick "xla" off CPU).
"""

from __future__ import annotations

import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from funclayers._kernels import _conv_lowering as lowering

# (name, input shape, weight shape, stride, padding, groups)
SHAPES = [
    ("64->64 3x3 @32", (32, 64, 32, 32), (64, 64, 3, 3), 1, 1, 1),
    ("stem 3->64 @32", (16, 3, 32, 32), (64, 3, 3, 3), 1, 1, 1),
    ("128->256 s2 @16", (32, 128, 16, 16), (256, 128, 3, 3), 2, 1, 1),
    ("depthwise 128 @56", (8, 128, 56, 56), (128, 1, 3, 3), 1, 1, 128),
    ("128->128 g4 @28", (8, 128, 28, 28), (128, 32, 3, 3), 1, 1, 4),
    ("440->440 g55 @4 (RegNet)", (2, 440, 4, 4), (440, 8, 3, 3), 1, 1, 55),
    ("conv1d 64->128 k5", (32, 64, 256), (128, 64, 5), 1, 2, 1),
    ("conv3d 16->32 k3", (4, 16, 16, 32, 32), (32, 16, 3, 3, 3), 1, 1, 1),
]
METHODS = ("xla", "winograd", "gemm", "patches", "taps", "shift", "split", "grouped", "depth")
# transposed: (name, input shape, weight shape (in, out, *k), stride, padding)
TRANSPOSED = [
    ("conv_transpose2d 64->32 k4 s2", (16, 64, 16, 16), (64, 32, 4, 4), 2, 1),
    ("conv_transpose2d 256->128 k2 s2", (16, 256, 14, 14), (256, 128, 2, 2), 2, 0),
]


def _median_ms(step, x, w, iters):
    """Median wall ms of `step(x, w)` after one warm-up call."""
    jax.block_until_ready(step(x, w))
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        jax.block_until_ready(step(x, w))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def time_transposed(x, w, stride, padding, method, iters=20):
    n = x.ndim - 2
    args = ((stride,) * n, (padding,) * n, (0,) * n, (1,) * n, 1)

    @jax.jit
    def step(x, w):
        return jax.value_and_grad(
            lambda x, w: jnp.sum(lowering.conv_transpose(x, w, *args, method=method) ** 2), (0, 1)
        )(x, w)

    return _median_ms(step, x, w, iters)


def time_method(x, w, stride, padding, groups, method, iters=20):
    n = x.ndim - 2
    args = ((stride,) * n, ((padding, padding),) * n, (1,) * n, groups)

    @jax.jit
    def step(x, w):
        return jax.value_and_grad(lambda x, w: jnp.sum(lowering.conv(x, w, *args, method=method) ** 2), (0, 1))(x, w)

    return _median_ms(step, x, w, iters)


def main() -> int:
    rng = np.random.default_rng(0)
    print(f"backend {jax.default_backend()}: {jax.devices()[0].device_kind}; fwd+bwd ms per lowering")
    for name, xs, ws, stride, padding, groups in SHAPES:
        x = jnp.asarray(rng.standard_normal(xs), jnp.float32)
        w = jnp.asarray(rng.standard_normal(ws), jnp.float32)
        row = []
        for method in METHODS:
            try:
                row.append(f"{method} {time_method(x, w, stride, padding, groups, method):.2f}")
            except (ValueError, TypeError, NotImplementedError):
                continue
        auto = lowering.choose(xs, ws, groups, (stride,) * (len(xs) - 2), ((padding, padding),) * (len(xs) - 2))
        print(f"{name}: {', '.join(row)} (auto: {auto})", flush=True)
    for name, xs, ws, stride, padding in TRANSPOSED:
        x = jnp.asarray(rng.standard_normal(xs), jnp.float32)
        w = jnp.asarray(rng.standard_normal(ws), jnp.float32)
        row = []
        for method in lowering.TRANSPOSE_METHODS[1:]:
            try:
                row.append(f"{method} {time_transposed(x, w, stride, padding, method):.2f}")
            except ValueError:  # a lowering that does not apply to this shape
                continue
        auto = lowering.choose_transpose(xs, ws, (stride,) * (len(xs) - 2), (1,) * (len(xs) - 2), 1)
        print(f"{name}: {', '.join(row)} (auto: {auto})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
