"""A torch attribute value (tensor, size, submodule, torch function) as a funclayers constructor argument."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _float_dtype(module: Any) -> Any:
    """The dtype of the module's floating parameters and buffers (recursively), or None.

    float64 without `jax_enable_x64` is float32 (from_torch warns once), as JAX would truncate it.
    """
    for tensor in module.state_dict().values():
        if tensor.is_floating_point():
            dtype = jnp.dtype(str(tensor.dtype).removeprefix("torch."))
            if dtype == jnp.float64 and not jax.config.jax_enable_x64:
                return jnp.dtype(jnp.float32)
            return dtype
    return None


def _to_value(value: Any, conv: Any, name: str) -> Any:
    """A torch attribute value as a funclayers constructor argument."""
    import torch

    if isinstance(value, torch.nn.Module):
        return conv(value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            return jnp.asarray(value.float().numpy(), jnp.bfloat16)
        return np.array(value.numpy())
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_value(v, conv, name) for v in value)
    if callable(value) and not isinstance(value, type):
        return _torch_function(value, conv, name)
    return value


def _torch_function(fn: Any, conv: Any, name: str) -> Any:
    """A torch function stored as an attribute (activation=F.gelu) as its funclayers twin."""
    from .. import functional

    fn_name = getattr(fn, "__name__", None)
    fn_module = getattr(fn, "__module__", None) or ""
    if fn_name is not None and (fn_module.startswith("torch") or fn_module == "") and hasattr(functional, fn_name):
        return getattr(functional, fn_name)
    raise conv.error(f"argument {name}={fn!r} is a Python callable working on torch tensors, which funclayers "
                     f"cannot call on JAX arrays. Register a converter with fl.register_torch_converter("
                     f"{type(conv.module).__name__}, fn) that passes a JAX function instead.")


def dtype_of(module: Any) -> Any:
    """The floating dtype of a module's parameters and buffers, or None (the funclayers default)."""
    return _float_dtype(module)


