"""Internal activation layouts across runs of a Sequential's Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d.

Where a `Sequential` chains a 3x3 Winograd `Conv2d` into layers that can read its output as F(2x2, 3x3)'s
output transform writes it, the activations stay in that layout until the run ends, and are turned
back into NCHW once there instead of by every convolution (`_kernels/_winograd.py`'s interleaving
transpose, which XLA re-does inside each consumer of the output). Nothing public changes: params,
state, every layer's own `apply` and the Sequential's output keep torch's layouts.

Layouts (`None` is the public NCHW):
- "phase": (2, 2, C, N, H/2, W/2), [a, b, c, n, i, j] = x[n, c, 2i + a, 2j + b]: a Winograd conv's
  output; the next conv's input transform reads its planes shifted by a tile (`transform_input_phase`),
  BatchNorm computes on it as it is (statistics over every axis but C; its checks and running stats
  see the (4, C, N*H*W/4) view), MaxPool2d(2) reduces over its first two axes.
- "cnhw": (C, N, H, W): MaxPool2d(2)'s output from "phase"; the next conv's input transform reads it
  without the batch/channel swap; BatchNorm computes on it as it is (its checks see (1, C, N*H*W)).

The protocol: a layer's `apply` may carry `apply._layout = fn(params, state, value, layout, training)`
returning `(value, layout, new_state)`, or None where it cannot take that input (a shape, dtype or
configuration it does not handle): the Sequential then converts the value to NCHW and calls `apply`.
Only a convolution starts a run (from NCHW), and only when the next child has a `_layout` too. A
layer may also end a run itself: AdaptiveAvgPool2d(1) averages a "phase" or "cnhw" value in place and
returns NCHW (layout None).

Small CNN train step (benchmarks/workloads/models.py, batch 64), CPU ms per step, layouts off/on in one
process, alternating, median of 30: 124.9 -> 105.2 (-16%), XLA temp unchanged (benchmarks/README.md, issue
28). Plain channels-major (C, N, H, W) between the layers was slower than NCHW (+27%): what pays is never
interleaving the tiles' outputs.
"""

from __future__ import annotations

from typing import Any

from ._kernels._winograd import phase_to_nchw

PHASE, CNHW = "phase", "cnhw"


def layout_fn(layer: Any) -> Any:
    """The layer's `_layout` function, or None."""
    return getattr(layer.apply, "_layout", None)


def to_nchw(value: Any, layout: str | None) -> Any:
    """`value` in `layout` as the public NCHW array."""
    if layout == PHASE:
        return phase_to_nchw(value)
    if layout == CNHW:
        return value.swapaxes(0, 1)
    return value


def channel_view(value: Any, layout: str) -> Any:
    """An (A, C, B) view of a "phase" or "cnhw" value: per-channel statistics over axes 0 and 2."""
    if layout == PHASE:
        return value.reshape(4, value.shape[2], -1)
    return value.reshape(1, value.shape[0], -1)


def channels(value: Any, layout: str) -> int:
    return value.shape[2] if layout == PHASE else value.shape[0]


def run(children: tuple, params: Any, state: Any, input: Any, keys: list, training: bool) -> tuple[Any, dict]:
    """A Sequential's forward: each child in turn, runs of layout-aware children kept in their layout."""
    new_state = {}
    value, layout = input, None
    for i, ((name, child), key) in enumerate(zip(children, keys)):
        fn = layout_fn(child)
        out = None
        if fn is not None and (layout is not None or (i + 1 < len(children)
                                                      and layout_fn(children[i + 1][1]) is not None)):
            out = fn(params[name], state[name], value, layout, training)
        if out is None:
            value, layout = to_nchw(value, layout), None
            value, new_state[name] = child.apply(params[name], state[name], value, rng=key, training=training)
        else:
            value, layout, new_state[name] = out
    return to_nchw(value, layout), new_state
