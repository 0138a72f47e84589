"""Pooling workloads (issue 4): forward + backward (gradient w.r.t. the input) on CPU.

Shapes are the issue's. funclayers and Equinox take torch's NCHW layout (Equinox pools one sample
and is vmapped over the batch); Flax's linen.max_pool / avg_pool take their native NHWC layout
(their own best case), with the same sizes. Flax has no adaptive pooling; Equinox's
AdaptiveAvgPool2d/AdaptiveMaxPool2d are included.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload, jax_input_grad_step, torch_input_grad_step

# name: (torch class, constructor args, constructor kwargs, input shape)
SPECS = {
    "MaxPool2d(2) (32,64,32,32)": ("MaxPool2d", (2,), {}, (32, 64, 32, 32)),
    "MaxPool2d(3, 2, 1) (32,64,32,32)": ("MaxPool2d", (3, 2, 1), {}, (32, 64, 32, 32)),
    "AvgPool2d(3, 2, 1, ceil_mode=True) (32,64,31,31)": (
        "AvgPool2d",
        (3, 2, 1),
        {"ceil_mode": True},
        (32, 64, 31, 31),
    ),
    "AdaptiveAvgPool2d(7) (32,256,10,10)": ("AdaptiveAvgPool2d", (7,), {}, (32, 256, 10, 10)),
    "AdaptiveMaxPool2d(5) (32,256,14,14)": ("AdaptiveMaxPool2d", (5,), {}, (32, 256, 14, 14)),
}


def _data(spec):
    import torch

    name, args, kwargs, shape = spec
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    out_shape = tuple(getattr(torch.nn, name)(*args, **kwargs)(torch.from_numpy(x)).shape)
    return x, rng.standard_normal(out_shape).astype(np.float32)


def _fl(spec):
    def build():
        import funclayers as fl

        name, args, kwargs, _ = spec
        layer = getattr(fl, name)(*args, **kwargs)
        return jax_input_grad_step(lambda x: layer.apply({}, {}, x)[0], *_data(spec))

    return build


def _torch(spec):
    def build():
        import torch

        name, args, kwargs, _ = spec
        module = getattr(torch.nn, name)(*args, **kwargs)
        return torch_input_grad_step(module, *_data(spec))

    return build


def _flax(spec):
    def build():
        import flax.linen as nn

        name, args, kwargs, _ = spec
        kernel = args[0]
        stride = args[1] if len(args) > 1 else kernel
        pad = args[2] if len(args) > 2 else 0
        x, ct = _data(spec)
        x, ct = x.transpose(0, 2, 3, 1), ct.transpose(0, 2, 3, 1)  # NHWC
        if name == "MaxPool2d":

            def forward(x):
                return nn.max_pool(x, (kernel, kernel), (stride, stride), ((pad, pad), (pad, pad)))
        else:  # AvgPool2d(3, 2, 1, ceil_mode=True): the ceil-mode cell is one more row/column of padding
            extra = ct.shape[1] - ((x.shape[1] + 2 * pad - kernel) // stride + 1)

            def forward(x):
                return nn.avg_pool(
                    x,
                    (kernel, kernel),
                    (stride, stride),
                    ((pad, pad + extra), (pad, pad + extra)),
                    count_include_pad=True,
                )

        return jax_input_grad_step(forward, x, ct)

    return build


def _equinox(spec):
    def build():
        import equinox as eqx
        import jax

        name, args, kwargs, _ = spec
        if name.startswith("Adaptive"):
            layer = getattr(eqx.nn, name)(args[0])
        else:
            kernel = args[0]
            stride = args[1] if len(args) > 1 else kernel
            pad = args[2] if len(args) > 2 else 0
            layer = getattr(eqx.nn, name)(kernel, stride, pad, use_ceil=kwargs.get("ceil_mode", False))
        return jax_input_grad_step(jax.vmap(layer), *_data(spec))

    return build


WORKLOADS = [
    Workload(
        name,
        {
            "funclayers": _fl(spec),
            "torch": _torch(spec),
            "equinox": _equinox(spec),
            **({} if spec[0].startswith("Adaptive") else {"flax": _flax(spec)}),
        },
        note="flax in NHWC; equinox vmapped over the batch",
    )
    for name, spec in SPECS.items()
]
