"""from_torch support for torch.nn.utils' weight wrappers (wired into `fl.from_torch`'s lookup).

- `convert_parametrized(module, convert)`: a torch module with `torch.nn.utils.parametrize`
  parametrizations (weight_norm's `_WeightNorm`, spectral_norm's `_SpectralNorm`, orthogonal's
  `_Orthogonal`, or any parametrization module `convert` itself knows) becomes the plain layer
  wrapped by the same `fl.utils` parametrizations, in the same order.
- `convert_hook_norms(module, convert)` (also as `convert_hook_weight_norm` /
  `convert_hook_spectral_norm`): a module carrying the old API's `WeightNorm` / `SpectralNorm`
  forward-pre-hooks becomes the plain layer wrapped by `fl.utils.weight_norm` / `spectral_norm`.

`convert(module) -> Layer` converts a torch module without these wrappers (from_torch's own
callback, or `fl.torch_to_layer`). The torch module is never modified: the plain module handed to
`convert` is a deep copy with the wrappers removed. The returned layer's params and state are
named as the original module's `state_dict`, so `fl.load_state_dict(layer, module.state_dict())`
loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._layer import Layer
from . import parametrizations, parametrize
from ._spectral_norm import spectral_norm
from ._weight_norm import weight_norm

__all__ = ["is_parametrized_module", "uses_hook_norms", "convert_parametrized", "convert_hook_norms",
           "convert_hook_weight_norm", "convert_hook_spectral_norm"]

Convert = Callable[[Any], Layer]


def is_parametrized_module(module: Any) -> bool:
    """Whether a torch module has torch.nn.utils.parametrize parametrizations."""
    from torch.nn.utils import parametrize as torch_parametrize

    return torch_parametrize.is_parametrized(module)


def _hook_norms(module: Any) -> list:
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    return [h for h in getattr(module, "_forward_pre_hooks", {}).values() if isinstance(h, (WeightNorm, SpectralNorm))]


def uses_hook_norms(module: Any) -> bool:
    """Whether a torch module carries torch.nn.utils.weight_norm / spectral_norm hooks (the old API)."""
    return bool(_hook_norms(module))


def _one(layer: Layer, name: str, p: Any, first: bool, is_tensor: bool, convert: Convert) -> Layer:
    from torch.nn.utils.parametrizations import _Orthogonal, _SpectralNorm, _WeightNorm

    if isinstance(p, _WeightNorm) and first:
        return parametrizations.weight_norm(layer, name, dim=p.dim)
    if isinstance(p, _SpectralNorm):
        return parametrizations.spectral_norm(layer, name, n_power_iterations=getattr(p, "n_power_iterations", 1),
                                              eps=p.eps, dim=p.dim)
    if isinstance(p, _Orthogonal) and first:
        return parametrizations.orthogonal(layer, name, orthogonal_map=p.orthogonal_map.name,
                                           use_trivialization="base" in p._buffers)
    if not is_tensor and first:
        raise TypeError(f"from_torch: the parametrization {type(p).__name__} of '{name}' stores several originals "
                        f"(its right_inverse returns a tuple); write it as a fl.utils.parametrize.Parametrization and "
                        f"register it with fl.utils.parametrize.register_parametrization.")
    return parametrize.register_parametrization(layer, name, convert(p), unsafe=True)


def _unparametrized(module: Any) -> Any:
    """A shallow stand-in for the module without parametrizations, the tensors at their current values.

    Not `remove_parametrizations` on a deep copy: the copy shares the injected class, whose
    properties that function deletes, which would break the original module.
    """
    import torch
    from torch.nn.utils import parametrize as torch_parametrize

    cls = torch_parametrize.type_before_parametrizations(module)
    plain = cls.__new__(cls)
    plain.__dict__ = dict(module.__dict__)
    plain._parameters = type(module._parameters)(module._parameters)
    plain._buffers = type(module._buffers)(module._buffers)
    plain._modules = type(module._modules)((k, v) for k, v in module._modules.items() if k != "parametrizations")
    modes = [(m, m.training) for m in module.modules()]
    module.eval()  # evaluate without the training-mode side effects (spectral norm's power iteration)
    try:
        with torch.no_grad():
            for name, chain in module.parametrizations.items():
                value = getattr(module, name).detach().clone()
                original = chain.original if chain.is_tensor else chain.original0
                if isinstance(original, torch.nn.Parameter):
                    plain._parameters[name] = torch.nn.Parameter(value, requires_grad=original.requires_grad)
                else:
                    plain._buffers[name] = value
    finally:
        for m, training in modes:
            m.training = training
    return plain


def convert_parametrized(module: Any, convert: Convert) -> Layer:
    """The funclayers twin of a torch module with parametrizations (see the module docstring).

    Args:
      module: a torch module for which `torch.nn.utils.parametrize.is_parametrized(module)`.
      convert: converts the plain module (and any other parametrization module) to a Layer.

    Returns: the layer; its params are named as `module.state_dict()`.
    """
    layer = convert(_unparametrized(module))
    for name, chain in module.parametrizations.items():
        for i, p in enumerate(chain):
            layer = _one(layer, name, p, i == 0, chain.is_tensor, convert)
    return layer


def convert_hook_norms(module: Any, convert: Convert) -> Layer:
    """The funclayers twin of a torch module with weight_norm / spectral_norm hooks (the old API).

    Args:
      module: a torch module carrying `WeightNorm` and/or `SpectralNorm` forward-pre-hooks.
      convert: converts the plain module (the hooks removed) to a Layer.

    Returns: the layer wrapped by `fl.utils.weight_norm` / `fl.utils.spectral_norm` as the hooks
      were registered; its params and state are named as `module.state_dict()`.
    """
    import torch
    from torch.nn.utils.spectral_norm import SpectralNorm

    hooks = _hook_norms(module)
    # a shallow stand-in without the hooks: a module with weight_norm hooks cannot be deep-copied
    plain = type(module).__new__(type(module))
    plain.__dict__ = dict(module.__dict__)
    plain._parameters = type(module._parameters)(module._parameters)
    plain._buffers = type(module._buffers)(module._buffers)
    plain._forward_pre_hooks = type(module._forward_pre_hooks)(
        (k, h) for k, h in module._forward_pre_hooks.items() if not any(h is hook for hook in hooks))
    with torch.no_grad():
        for hook in reversed(hooks):
            if isinstance(hook, SpectralNorm):
                weight = hook.compute_weight(plain, do_power_iteration=False)
                del plain._parameters[hook.name + "_orig"]
                del plain._buffers[hook.name + "_u"], plain._buffers[hook.name + "_v"]
            else:
                weight = hook.compute_weight(plain)
                del plain._parameters[hook.name + "_g"], plain._parameters[hook.name + "_v"]
            plain.__dict__.pop(hook.name, None)
            plain._parameters[hook.name] = torch.nn.Parameter(weight.detach().clone())
    layer = convert(plain)
    for hook in hooks:
        if isinstance(hook, SpectralNorm):
            layer = spectral_norm(layer, hook.name, hook.n_power_iterations, hook.eps, hook.dim)
        else:
            layer = weight_norm(layer, hook.name, hook.dim)
    return layer


convert_hook_weight_norm = convert_hook_norms
convert_hook_spectral_norm = convert_hook_norms
