"""Porting torch models: `from_torch` and its converter registry (torch imported only when called).

- `_errors.py`: `TorchConversionError`.
- `_values.py`: torch attribute values (tensors, sizes, torch functions) as funclayers arguments.
- `_modules.py`: the table of torch.nn classes that convert to their funclayers twins.
- `_convert.py`: the recursion over a module tree, the user converters, `from_torch`.
- `_graph.py`: custom modules traced with torch.fx and their graphs interpreted on JAX arrays.
- `_ops.py`, `_ops_vision.py`: the table of torch functions, tensor methods and operators -> JAX.
"""

from ._convert import from_torch, register_torch_converter, torch_to_layer, unregister_torch_converter
from ._errors import TorchConversionError

__all__ = ["from_torch", "register_torch_converter", "unregister_torch_converter", "torch_to_layer",
           "TorchConversionError"]
