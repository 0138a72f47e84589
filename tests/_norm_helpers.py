"""Helpers shared by the normalization tests: batchnorm, instancenorm, normalization, syncbatchnorm."""

import torch


def randomize(module, seed=0):
    """Non-trivial affine parameters and running statistics, so eval mode and affine grads are tested."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith("num_batches_tracked"):
                t.fill_(3)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g))
    return module
