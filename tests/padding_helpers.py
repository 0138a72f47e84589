"""Helpers shared by test_padding.py and test_fold.py."""

import torch

import funclayers as fl
from funclayers._layer import stateless


class TorchFn(torch.nn.Module):
    """A torch.nn.functional op with bound arguments as a module, so the oracle can drive it."""

    def __init__(self, fn, *args):
        super().__init__()
        self.fn, self.args = fn, args

    def forward(self, x):
        return self.fn(x, *self.args)


def fn_layer(fn, *args) -> fl.Layer:
    """The funclayers twin of TorchFn: a stateless layer applying `fn(x, *args)`."""
    return stateless(fn.__name__, lambda x: fn(x, *args))
