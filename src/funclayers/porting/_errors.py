"""from_torch's one exception type (its own module: every porting module raises it)."""


class TorchConversionError(TypeError):
    """A torch module that `from_torch` cannot convert; the message names its path and class.

    A TypeError. Raised for a class neither torch.nn's (one funclayers covers) nor registered with
    `register_torch_converter`, a lazy module not yet run, a converter that returns no Layer, an
    attribute holding a Python callable on torch tensors, or an argument that is no torch module.

    Args:
      *args: the message, as any exception's: `from_torch: <path in the tree>: <class>: <why>`.

    Example:
      >>> # `torch_to_layer` imports torch when it runs, as every conversion does
      >>> try:
      ...     fl.torch_to_layer(object())        # not a torch.nn.Module
      ... except fl.TorchConversionError as err:
      ...     print(err)
      from_torch: (root): expected a torch.nn.Module, got object.
      >>> issubclass(fl.TorchConversionError, TypeError)
      True
    """


__all__ = ["TorchConversionError"]
