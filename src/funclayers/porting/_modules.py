"""from_torch's table: which torch.nn classes convert, and how their constructor arguments are read back.

Generic rule: a torch.nn class whose name funclayers exports converts to that funclayers layer;
each parameter of the funclayers constructor takes the torch module's attribute of the same name
(torch stores most constructor arguments so), `bias` is `module.bias is not None` (or the bool
RNNs store), `dtype` is the module's floating dtype, tensors become numpy arrays, submodules are
converted, and torch functions (`F.gelu`) become their `funclayers.functional` twins. Arguments
torch does not keep as an attribute (deprecated `size_average`, `reduce`) keep their defaults.
`_OVERRIDES` lists the arguments torch stores elsewhere; `_SPECIAL` the classes built by hand.
"""

from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .._layer import Layer
from ._errors import TorchConversionError
from ._values import _to_value, dtype_of

Converter = Callable[[Any, Callable[..., Layer]], Layer]

_SKIP = object()  # an override's answer meaning "leave the default"

# funclayers names that are not torch.nn classes to convert generically
_NOT_GENERIC = {"Module", "Sequential", "ModuleList", "ModuleDict"}


def _bias_of(attr: str) -> Callable[[Any, Any], Any]:
    return lambda module, conv: getattr(module, attr) is not None


def _distance_function(module: Any, conv: Any) -> Any:
    import torch
    import torch.nn.functional as F

    from .._loss_margin import pairwise_distance_for_loss

    fn = module.distance_function
    if fn is None or fn is F.pairwise_distance:
        return None  # funclayers' default: torch's pairwise_distance
    # torch's default is a PairwiseDistance() child: as a plain function, the loss's own distance
    if isinstance(fn, torch.nn.PairwiseDistance) and not fn.keepdim:
        if (fn.norm, fn.eps) == (2.0, 1e-6):
            return None
        return functools.partial(pairwise_distance_for_loss, p=fn.norm, eps=fn.eps)
    return _to_value(fn, conv, "distance_function")


_OVERRIDES: dict[str, dict[str, Callable[[Any, Any], Any]]] = {
    "RNNCellBase": {"num_chunks": lambda m, conv: m.weight_ih.shape[0] // max(m.hidden_size, 1)},
    "MultiheadAttention": {"bias": _bias_of("in_proj_bias"), "add_bias_kv": _bias_of("bias_k")},
    # torch appends n_classes to the cutoffs it stores
    "AdaptiveLogSoftmaxWithLoss": {"cutoffs": lambda m, conv: list(m.cutoffs[:-1]),
                                   "head_bias": lambda m, conv: m.head.bias is not None},
    "LinearCrossEntropyLoss": {"in_features": lambda m, conv: m.linear.in_features,
                               "bias": lambda m, conv: m.linear.bias is not None},
    # torch keeps `_freeze` only as the weight's requires_grad
    "Embedding": {"_freeze": lambda m, conv: not m.weight.requires_grad, "_weight": lambda m, conv: _SKIP},
    "EmbeddingBag": {"_weight": lambda m, conv: _SKIP},
    "TripletMarginWithDistanceLoss": {"distance_function": _distance_function},
    # torch's CPU DataParallel keeps device_ids=[]; funclayers' default spans the local JAX devices
    # (and, without CUDA devices, returns from its __init__ before storing `dim`)
    "DataParallel": {"device_ids": lambda m, conv: _SKIP, "output_device": lambda m, conv: _SKIP,
                     "dim": lambda m, conv: getattr(m, "dim", _SKIP)},
    # funclayers' SyncBatchNorm synchronises over a named mesh axis, not a torch process group
    "SyncBatchNorm": {"process_group": lambda m, conv: _SKIP},
    # torch keeps p as `norm`
    "PairwiseDistance": {"p": lambda m, conv: m.norm},
}

# constructor arguments torch does not store (deprecated aliases, folded into what it stores):
# they keep funclayers' defaults; any other argument missing from the module is an error, not a default
_NOT_STORED = {"size_average", "reduce", "min_value", "max_value"}


def _generic(fl_ctor: Callable[..., Layer], overrides: dict[str, Callable[[Any, Any], Any]]) -> Converter:
    params = [p for p in inspect.signature(fl_ctor).parameters.values()
              if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
              and p.name != "device"]

    def convert(module: Any, conv: Any) -> Layer:
        kwargs: dict[str, Any] = {}
        for p in params:
            name = p.name
            if name in overrides:
                value = overrides[name](module, conv)
            elif name == "dtype":
                value = dtype_of(module)
                value = _SKIP if value is None else value
            elif name == "bias" and hasattr(module, "bias"):
                value = module.bias if isinstance(module.bias, bool) else module.bias is not None
            elif name in ("modules", "children", "forward") or name in _NOT_STORED:
                value = _SKIP
            elif not _has_attr(module, name):
                raise TorchConversionError(
                    f"from_torch: {type(module).__name__} keeps no attribute {name!r} for funclayers' {name}= "
                    f"argument; register a converter for it (fl.register_torch_converter).")
            else:
                value = _to_value(getattr(module, name), conv, name)
            if value is not _SKIP:
                kwargs[name] = value
        positional = [kwargs.pop(p.name) for p in params
                      if p.kind is inspect.Parameter.POSITIONAL_ONLY and p.name in kwargs]
        return fl_ctor(*positional, **kwargs)

    return convert


def _has_attr(module: Any, name: str) -> bool:
    """An attribute torch stored (instance data, parameter, buffer or child), not a method."""
    if name in vars(module) or name in module._parameters or name in module._buffers or name in module._modules:
        return True
    value = getattr(type(module), name, None)
    return value is not None and not callable(value) and not isinstance(value, property)


def _children(module: Any, conv: Any) -> OrderedDict:
    return OrderedDict((name, conv(child, name)) for name, child in module.named_children())


def _sequential(module: Any, conv: Any) -> Layer:
    import funclayers as fl

    return fl.Sequential(_children(module, conv))


def _module_list(module: Any, conv: Any) -> Layer:
    import funclayers as fl

    return fl.ModuleList(list(_children(module, conv).values()))


def _module_dict(module: Any, conv: Any) -> Layer:
    import funclayers as fl

    return fl.ModuleDict(_children(module, conv))


def _parameters(module: Any, conv: Any) -> Layer:
    """ParameterList / ParameterDict: a ModuleList / ModuleDict of `fl.Parameter`s (`m.<name>[i]` is the array)."""
    import funclayers as fl

    children = OrderedDict((name, fl.Parameter(_to_value(p, conv, name))) for name, p in module.named_parameters(
        recurse=False))
    if type(module).__name__ == "ParameterList":
        return fl.ModuleList(list(children.values()))
    return fl.ModuleDict(children)


def _activation(module: Any, conv: Any) -> Any:
    import torch.nn.functional as F

    act = module.activation
    if act is F.relu:
        return "relu"
    if act is F.gelu:
        return "gelu"
    return _to_value(act, conv, "activation")


def _transformer_layer(kind: str) -> Converter:
    def convert(module: Any, conv: Any) -> Layer:
        import funclayers as fl

        attn = module.self_attn
        # funclayers' layers take torch's one `dropout` argument for all their dropouts
        rates = {module.dropout.p, module.dropout1.p, module.dropout2.p, attn.dropout}
        if kind == "TransformerDecoderLayer":
            rates |= {module.dropout3.p, module.multihead_attn.dropout}
        if len(rates) > 1:
            raise conv.error(f"its dropout rates differ ({sorted(rates)}); torch's constructor sets them all "
                             f"from one `dropout`, as funclayers' does. Set them equal before converting.")
        return getattr(fl, kind)(
            d_model=attn.embed_dim, nhead=attn.num_heads, dim_feedforward=module.linear1.out_features,
            dropout=module.dropout.p, activation=_activation(module, conv), layer_norm_eps=module.norm1.eps,
            batch_first=attn.batch_first, norm_first=module.norm_first, bias=module.linear1.bias is not None,
            dtype=dtype_of(module))

    return convert


def _transformer_stack(kind: str, layer_arg: str) -> Converter:
    def convert(module: Any, conv: Any) -> Layer:
        import funclayers as fl

        layers = [conv(layer, f"layers.{i}") for i, layer in enumerate(module.layers)]
        if len({repr(layer) for layer in layers}) > 1:
            raise conv.error(f"its {len(layers)} layers differ in configuration; funclayers' {kind} stacks copies "
                             f"of one layer. Register a converter building fl.Module(forward, layers="
                             f"fl.ModuleList([...]), ...) instead.")
        norm = None if module.norm is None else conv(module.norm, "norm")
        extra = {}
        if kind == "TransformerEncoder":
            extra = dict(enable_nested_tensor=module.enable_nested_tensor, mask_check=module.mask_check)
        return getattr(fl, kind)(**{layer_arg: layers[0]}, num_layers=len(layers), norm=norm, **extra)

    return convert


def _transformer(module: Any, conv: Any) -> Layer:
    import funclayers as fl

    return fl.Transformer(d_model=module.d_model, nhead=module.nhead, custom_encoder=conv(module.encoder, "encoder"),
                          custom_decoder=conv(module.decoder, "decoder"), batch_first=module.batch_first,
                          dtype=dtype_of(module))


def _distributed_data_parallel(module: Any, conv: Any) -> Layer:
    # torch's process group, buckets and hooks have no counterpart to read back: funclayers' DDP spans
    # the processes of jax.distributed (see fl.DistributedDataParallel); the module and batch dim carry over
    import funclayers as fl

    return fl.DistributedDataParallel(conv(module.module, "module"), dim=module.dim,
                                      broadcast_buffers=module.broadcast_buffers)


_SPECIAL: dict[str, Converter] = {
    "DistributedDataParallel": _distributed_data_parallel,
    "Sequential": _sequential,
    "ModuleList": _module_list,
    "ModuleDict": _module_dict,
    "ParameterList": _parameters,
    "ParameterDict": _parameters,
    "TransformerEncoderLayer": _transformer_layer("TransformerEncoderLayer"),
    "TransformerDecoderLayer": _transformer_layer("TransformerDecoderLayer"),
    "TransformerEncoder": _transformer_stack("TransformerEncoder", "encoder_layer"),
    "TransformerDecoder": _transformer_stack("TransformerDecoder", "decoder_layer"),
    "Transformer": _transformer,
}

# torch.nn classes that are another's deprecated alias (same arguments, same forward)
_ALIASES = {"NLLLoss2d": "NLLLoss"}

_CACHE: dict[type, Converter | None] = {}


def builtin_converter(torch_class: type) -> Converter | None:
    """The converter of a torch.nn class funclayers covers (exact class, not subclasses), or None."""
    if torch_class in _CACHE:
        return _CACHE[torch_class]
    import torch

    import funclayers as fl

    name = torch_class.__name__
    fn = None
    if torch_class in (getattr(torch.nn, name, None), getattr(torch.nn.parallel, name, None)):
        if name in _SPECIAL:
            fn = _SPECIAL[name]
        elif _ALIASES.get(name, name) in fl.__all__ and name not in _NOT_GENERIC:
            target = _ALIASES.get(name, name)
            fn = _generic(getattr(fl, target), _OVERRIDES.get(target, {}))
    _CACHE[torch_class] = fn
    return fn


def covered_torch_classes() -> list[str]:
    """The torch.nn class names `from_torch` converts without a registration."""
    import torch

    import funclayers as fl

    names = []
    for name in fl.__all__ + ["ParameterList", "ParameterDict"] + list(_ALIASES):
        cls = getattr(torch.nn, name, None) or getattr(torch.nn.parallel, name, None)
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module) and builtin_converter(cls) is not None:
            names.append(name)
    return sorted(names)
