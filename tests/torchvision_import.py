"""`import torchvision` for the porting tests, with CPU torch.

The registry's torchvision 0.28 wheel is built against CUDA torch: with the CPU torch 2.13 its C
ops (torchvision::nms, roi_align, ...) do not load, and `import torchvision` then fails while its
`_meta_registrations` registers fake kernels for those missing ops. The models these tests port
are pure Python and never call the C ops, so `torch.library.register_fake` is stubbed (a no-op
decorator) for the duration of the import only.
"""

from __future__ import annotations

import sys
from typing import Any


def import_torchvision() -> Any:
    """The torchvision module, imported once with `torch.library.register_fake` stubbed."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torch

    real = torch.library.register_fake

    def register_fake(op, fn=None, /, **kwargs):
        return (lambda f: f) if fn is None else fn

    torch.library.register_fake = register_fake
    try:
        import torchvision
        import torchvision.models.segmentation  # noqa: F401
        import torchvision.models.video  # noqa: F401
    finally:
        torch.library.register_fake = real
    return torchvision
