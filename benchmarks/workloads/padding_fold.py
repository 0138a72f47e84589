"""Padding, Unfold and Fold workloads (issue 3): forward + backward (gradient w.r.t. the input) on CPU.

Flax and Equinox have no padding or fold layers; their users write `jnp.pad` and
`lax.conv_general_dilated_patches`, which the "flax" column times (NCHW, same shapes).
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload, jax_input_grad_step, torch_input_grad_step

# name: (torch class, constructor args, input shape)
SPECS = {
    "ReflectionPad2d(2) (32,64,32,32)": ("ReflectionPad2d", (2,), (32, 64, 32, 32)),
    "ReplicationPad2d(1) (32,64,32,32)": ("ReplicationPad2d", (1,), (32, 64, 32, 32)),
    "CircularPad2d(1) (32,64,32,32)": ("CircularPad2d", (1,), (32, 64, 32, 32)),
    "Unfold(3, padding=1) (16,64,32,32)": ("Unfold", (3, 1, 1, 1), (16, 64, 32, 32)),
    "Unfold(16, stride=16) patchify (32,3,224,224)": ("Unfold", (16, 1, 0, 16), (32, 3, 224, 224)),
    "Fold((32,32), 3, padding=1) (16,576,1024)": ("Fold", ((32, 32), 3, 1, 1, 1), (16, 576, 1024)),
}


def _data(spec):
    import torch

    name, args, shape = spec
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    out_shape = tuple(getattr(torch.nn, name)(*args)(torch.from_numpy(x)).shape)
    return x, rng.standard_normal(out_shape).astype(np.float32)


def _fl(spec):
    def build():
        import funclayers as fl

        name, args, _ = spec
        layer = getattr(fl, name)(*args)
        return jax_input_grad_step(lambda x: layer.apply({}, {}, x)[0], *_data(spec))

    return build


def _torch(spec):
    def build():
        import torch

        name, args, _ = spec
        module = getattr(torch.nn, name)(*args)
        return torch_input_grad_step(module, *_data(spec))

    return build


def _jnp(spec):
    """What a Flax/Equinox user writes without a padding/unfold layer."""

    def build():
        import jax
        import jax.numpy as jnp
        from jax import lax

        name, args, _ = spec
        if name.endswith("Pad2d"):
            mode = {"ReflectionPad2d": "reflect", "ReplicationPad2d": "edge", "CircularPad2d": "wrap"}[name]
            p = args[0]

            def forward(x):
                return jnp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode=mode)
        elif name == "Unfold":
            k, d, p, s = args

            def forward(x):
                patches = lax.conv_general_dilated_patches(x, (k, k), (s, s), ((p, p), (p, p)),
                                                           rhs_dilation=(d, d))
                return patches.reshape(patches.shape[0], patches.shape[1], -1)
        else:  # Fold: the transpose of the patch extraction
            (h, w), k, d, p, s = args
            n, ck, _ = spec[2]

            def unfold(img):
                patches = lax.conv_general_dilated_patches(img, (k, k), (s, s), ((p, p), (p, p)))
                return patches.reshape(patches.shape[0], patches.shape[1], -1)

            image = jax.ShapeDtypeStruct((n, ck // (k * k), h, w), jnp.float32)
            transpose = jax.linear_transpose(unfold, image)

            def forward(x):
                return transpose(x)[0]

        return jax_input_grad_step(forward, *_data(spec))

    return build


WORKLOADS = [
    Workload(name, {"funclayers": _fl(spec), "torch": _torch(spec),
                    # conv_general_dilated_patches with 768 patch features takes seconds per step: left out
                    **({} if "patchify" in name else {"flax": _jnp(spec)})},
             note="flax column: jnp.pad / lax.conv_general_dilated_patches, as flax users write it")
    for name, spec in SPECS.items()
]
