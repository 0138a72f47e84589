"""convert_conv2d/3d_weight_memory_format (torch/nn/utils/memory_format.py): accepted, nothing to do."""

from __future__ import annotations

from typing import Any

from .._layer import Layer

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]


def convert_conv2d_weight_memory_format(module: Layer, memory_format: Any) -> Layer:
    """The layer unchanged; torch.nn.utils.convert_conv2d_weight_memory_format.

    torch re-lays out the weights of Conv2d/ConvTranspose2d children in place (e.g. to
    `torch.channels_last`). funclayers keeps torch's logical layouts and leaves the physical one
    to XLA, so this returns `module` as it is: ported code runs unchanged.

    Args:
      module: a funclayers layer.
      memory_format: torch's memory format (e.g. `torch.channels_last`), or anything; ignored.

    Returns: `module`.

    Shape: as `module`.

    Example:
      >>> conv = fl.Conv2d(3, 8, 3)
      >>> fl.utils.convert_conv2d_weight_memory_format(conv, "channels_last") is conv
      True
    """
    del memory_format
    return module


def convert_conv3d_weight_memory_format(module: Layer, memory_format: Any) -> Layer:
    """The layer unchanged; torch.nn.utils.convert_conv3d_weight_memory_format.

    As `convert_conv2d_weight_memory_format`, for Conv3d/ConvTranspose3d (`torch.channels_last_3d`).

    Args:
      module: a funclayers layer.
      memory_format: ignored.

    Returns: `module`.

    Shape: as `module`.

    Example:
      >>> conv = fl.Conv3d(3, 8, 3)
      >>> fl.utils.convert_conv3d_weight_memory_format(conv, "channels_last_3d") is conv
      True
    """
    del memory_format
    return module
