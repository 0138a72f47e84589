"""The table of torch ops -> JAX with torch's semantics, for the graphs `from_torch` traces.

Three lookups (`translation(node_op, target)`): functions of `torch`, `torch.nn.functional`,
`operator` and `builtins` by the function object; tensor methods (`x.view`, `x.add_`) by name;
functions that third-party code wraps for torch.fx (torchvision's `stochastic_depth`, swin's
helpers) by their qualified name (`_ops_vision.py`), so that torchvision is never imported here.

Every translation takes the node's arguments with JAX arrays in place of tensors (torch dtypes
already mapped to JAX dtypes) and returns JAX values; shapes are static Python, as in torch's
eager mode. Random translations take a keyword `rng` (see `RANDOM`). In-place ops (`add_`,
`operator.iadd`, `inplace=True`) compute the new value; the graph interpreter then rebinds the
mutated tensor to it.
"""

from __future__ import annotations

import builtins
import collections
import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import functional as flF

Translation = Callable[..., Any]


# -- torch's argument conventions -------------------------------------------------------------

def _dims(dim: Any, ndim: int) -> tuple[int, ...] | None:
    """torch's `dim` argument (int, tuple, None; negative counts from the end) as a tuple, or None (all)."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        return None  # torch: dim=() or [] reduces over everything
    return tuple(d % max(ndim, 1) for d in dims)


def _shape_args(shape: tuple) -> tuple:
    """`x.view(2, 3)` and `x.view((2, 3))` alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray)) or hasattr(x, "aval")


def _category(dtype: Any) -> int:
    dtype = jnp.dtype(dtype)
    if dtype == jnp.bool_:
        return 0
    if jnp.issubdtype(dtype, jnp.integer):
        return 1
    if jnp.issubdtype(dtype, jnp.floating):
        return 2
    return 3


def _promote(a: Any, b: Any) -> tuple[Any, Any]:
    """torch's promotion between tensors: a 0-dim tensor does not raise the dtype of a dimensioned one of
    its category (float32 tensor + float64 0-dim tensor is float32); Python scalars are weak in both."""
    if _is_array(a) and _is_array(b) and a.dtype != b.dtype:
        if a.ndim == 0 and b.ndim > 0 and _category(a.dtype) <= _category(b.dtype):
            return a.astype(b.dtype), b
        if b.ndim == 0 and a.ndim > 0 and _category(b.dtype) <= _category(a.dtype):
            return a, b.astype(a.dtype)
    return a, b


def _binary(fn: Callable[[Any, Any], Any]) -> Translation:
    def op(a, b, *, alpha=None, out=None):
        if alpha is not None:
            b = b * alpha
        a, b = _promote(a, b)
        return fn(a, b)  # on Python numbers and tuples (shapes) plain Python, as in torch's eager mode

    return op


def _true_divide(a, b, *, rounding_mode=None):
    a, b = _promote(a, b)
    if not (_is_array(a) or _is_array(b)):
        return a / b if rounding_mode is None else (a // b if rounding_mode == "floor" else int(a / b))
    if rounding_mode == "floor":
        return jnp.floor_divide(a, b)
    if rounding_mode == "trunc":
        out = jnp.trunc(jnp.true_divide(a, b))
        is_int = all(not _is_array(v) or jnp.issubdtype(v.dtype, jnp.integer) for v in (a, b))
        return out.astype(jnp.result_type(a, b)) if is_int else out
    out = jnp.true_divide(a, b)
    if all(not _is_array(v) or not jnp.issubdtype(v.dtype, jnp.inexact) for v in (a, b)):
        out = out.astype(jnp.float32)  # torch's default dtype for integer division
    return out


def _reverse(fn: Translation) -> Translation:
    return lambda a, b, **kw: fn(b, a, **kw)


# -- shapes and views --------------------------------------------------------------------------

def _view(x, *shape):
    shape = _shape_args(shape)
    if len(shape) == 1 and not isinstance(shape[0], int):  # x.view(dtype): a bit reinterpretation
        return jax.lax.bitcast_convert_type(x, shape[0])
    return jnp.reshape(x, shape)


def _size(x, dim=None):
    return tuple(x.shape) if dim is None else x.shape[dim]


def _flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return jnp.reshape(x, (1,))
    start, end = start_dim % x.ndim, end_dim % x.ndim
    return jnp.reshape(x, x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])


def _unflatten(x, dim, sizes):
    dim = dim % x.ndim
    sizes = list(sizes)
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        sizes[sizes.index(-1)] = x.shape[dim] // known
    return jnp.reshape(x, x.shape[:dim] + tuple(sizes) + x.shape[dim + 1:])


def _permute(x, *dims):
    return jnp.transpose(x, [d % x.ndim for d in _shape_args(dims)])


def _transpose(x, dim0, dim1):
    return jnp.swapaxes(x, dim0, dim1)


def _t(x):
    return x if x.ndim < 2 else jnp.swapaxes(x, 0, 1)


def _expand(x, *sizes):
    sizes = _shape_args(sizes)
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return jnp.broadcast_to(x, shape)


def _repeat(x, *sizes):
    sizes = _shape_args(sizes)
    x = jnp.reshape(x, (1,) * (len(sizes) - x.ndim) + x.shape)
    return jnp.tile(x, sizes)


def _squeeze(x, dim=None):
    if dim is None:
        return jnp.squeeze(x)
    dims = tuple(d for d in _dims(dim, x.ndim) if x.shape[d] == 1)  # torch ignores dims of size != 1
    return jnp.squeeze(x, dims) if dims else x


def _unsqueeze(x, dim):
    return jnp.expand_dims(x, dim % (x.ndim + 1))


def _chunk(x, chunks, dim=0):
    size = x.shape[dim]
    step = -(-size // chunks)  # torch: chunks of ceil(size / chunks); fewer if that leaves none
    return tuple(jax.lax.slice_in_dim(x, i, min(i + step, size), axis=dim) for i in range(0, size, step))


def _split(x, split_size_or_sections, dim=0):
    size = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        bounds = list(range(0, size, split_size_or_sections)) + [size]
    else:
        bounds = [0] + list(np.cumsum(split_size_or_sections))
    return tuple(jax.lax.slice_in_dim(x, int(a), int(b), axis=dim) for a, b in zip(bounds[:-1], bounds[1:]))


def _unbind(x, dim=0):
    return tuple(jnp.moveaxis(x, dim, 0))


def _narrow(x, dim, start, length):
    return jax.lax.slice_in_dim(x, start % x.shape[dim], start % x.shape[dim] + length, axis=dim)


def _cat(tensors, dim=0):
    tensors = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)]  # torch skips empty 1-d tensors
    return jnp.concatenate(tensors, axis=dim)


def _stack(tensors, dim=0):
    return jnp.stack(tensors, axis=dim % (tensors[0].ndim + 1))


def _roll(x, shifts, dims=None):
    if dims is None:
        return jnp.reshape(jnp.roll(jnp.ravel(x), shifts), x.shape)
    return jnp.roll(x, shifts, dims)


def _getitem(x, index):
    if _is_array(x):
        return x[index]
    return x[index]  # tuples of sizes, lists of outputs


def _setitem(x, index, value):
    """`x[index] = value`, functional: the interpreter rebinds x to the result."""
    return x.at[index].set(jnp.asarray(value, x.dtype))


# -- reductions --------------------------------------------------------------------------------

def _reduction(fn: Callable[..., Any]) -> Translation:
    def op(x, dim=None, keepdim=False, *, dtype=None):
        if dtype is not None:
            x = x.astype(dtype)
        return fn(x, axis=_dims(dim, x.ndim), keepdims=keepdim)

    return op


def _sum(x, dim=None, keepdim=False, *, dtype=None):
    if dtype is None and (x.dtype == jnp.bool_ or jnp.issubdtype(x.dtype, jnp.integer)):
        dtype = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32  # torch sums integers in int64
    return _reduction(jnp.sum)(x, dim, keepdim, dtype=dtype)


def _var_std(fn: Callable[..., Any]) -> Translation:
    def op(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, bool):  # x.var(unbiased)
            dim, unbiased = None, dim
        ddof = correction if correction is not None else (0 if unbiased is False else 1)
        return fn(x, axis=_dims(dim, x.ndim), ddof=ddof, keepdims=keepdim)

    return op


def _max_min(fn: Callable[..., Any], arg: Callable[..., Any], pairwise: Callable[..., Any]) -> Translation:
    result = collections.namedtuple(fn.__name__, ["values", "indices"])  # torch.return_types.max / min

    def op(x, dim=None, keepdim=False):
        if dim is None:
            return fn(x)
        if _is_array(dim):  # torch.max(a, b): elementwise
            return pairwise(*_promote(x, dim))
        values = fn(x, axis=dim, keepdims=keepdim)
        indices = arg(x, axis=dim, keepdims=keepdim)
        return result(values, indices)

    return op


def _arg(fn: Callable[..., Any]) -> Translation:
    def op(x, dim=None, keepdim=False):
        if dim is None:
            return fn(jnp.ravel(x))
        return fn(x, axis=dim, keepdims=keepdim)

    return op


def _norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        x = x.astype(dtype)
    axis = _dims(dim, x.ndim)
    if p in ("fro", 2, 2.0) or p is None:
        return jnp.sqrt(jnp.sum(x * x, axis=axis, keepdims=keepdim))
    if p in (float("inf"),):
        return jnp.max(jnp.abs(x), axis=axis, keepdims=keepdim)
    return jnp.sum(jnp.abs(x) ** p, axis=axis, keepdims=keepdim) ** (1.0 / p)


def _cumsum(x, dim, *, dtype=None):
    return jnp.cumsum(x if dtype is None else x.astype(dtype), axis=dim)


# -- elementwise and creation ------------------------------------------------------------------

def _clamp(x, min=None, max=None):
    if min is not None:
        x = jnp.maximum(x, jnp.asarray(min, x.dtype) if not _is_array(min) else min)
    if max is not None:
        x = jnp.minimum(x, jnp.asarray(max, x.dtype) if not _is_array(max) else max)
    return x


def _to(x, *args, **kwargs):
    """x.to(dtype), x.to(device), x.to(other), x.to(device, dtype): only the dtype matters."""
    dtype = kwargs.get("dtype")
    for arg in args:
        if _is_array(arg):
            dtype = arg.dtype
        elif arg is not None and not isinstance(arg, (str, bool)):
            dtype = arg
    return x if dtype is None else x.astype(dtype)


def _masked_fill(x, mask, value):
    return jnp.where(mask, jnp.asarray(value, x.dtype), x)


def _new(fill: Any) -> Translation:
    def op(x, *size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
        del device, requires_grad, layout, pin_memory
        return jnp.full(_shape_args(size), fill, dtype or x.dtype)

    return op


def _new_full(x, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    del device, requires_grad
    return jnp.full(tuple(size), fill_value, dtype or x.dtype)


def _creation(fill: Any) -> Translation:
    def op(*size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False, out=None):
        del device, requires_grad, layout, pin_memory, out
        return jnp.full(_shape_args(size), fill, dtype or jnp.float32)

    return op


def _like(fill: Any) -> Translation:
    def op(x, *, dtype=None, device=None, requires_grad=False, layout=None, memory_format=None):
        del device, requires_grad, layout, memory_format
        return jnp.full(x.shape, fill, dtype or x.dtype)

    return op


def _arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False, layout=None, out=None):
    del device, requires_grad, layout, out
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, int) for v in (start, end, step))
        dtype = (jnp.int64 if jax.config.jax_enable_x64 else jnp.int32) if is_int else jnp.float32
    return jnp.arange(start, end, step, dtype=dtype)


def _bernoulli_(x, p=0.5, *, generator=None, rng=None):
    """`x.bernoulli_(p)`: fresh 0/1 draws with probability p, in x's shape and dtype."""
    del generator
    if rng is None:
        raise ValueError("from_torch: a traced forward calls bernoulli_ (e.g. timm's drop_path) in training mode; "
                         "pass rng= to apply.")
    return jax.random.bernoulli(rng, p, x.shape).astype(x.dtype)


def _matmul(a, b):
    return jnp.matmul(*_promote(a, b))


def _einsum(equation, *operands):
    operands = _shape_args(operands)
    return jnp.einsum(equation, *operands)


def _normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    norm = _norm(input, p, dim, keepdim=True)
    return input / jnp.maximum(norm, eps)


def _assert(condition, message):
    """torch._assert: checked when the condition is a Python bool (shapes), as torch checks it eagerly."""
    if isinstance(condition, (bool, np.bool_)) and not condition:
        raise ValueError(f"from_torch: the traced forward's assertion failed: {message}")


def _getattr(x, name, *default):
    """`x.shape`, `x.ndim`, `x.dtype`, `x.T`: attributes of a tensor read in a forward."""
    if not _is_array(x):
        return getattr(x, name, *default)
    attrs = {"shape": lambda: tuple(x.shape), "ndim": lambda: x.ndim, "dtype": lambda: x.dtype,
             "T": lambda: jnp.transpose(x), "mT": lambda: jnp.swapaxes(x, -1, -2), "data": lambda: x,
             "device": lambda: None, "is_cuda": lambda: False, "requires_grad": lambda: False}
    if name not in attrs:
        if default:
            return default[0]
        raise AttributeError(f"from_torch: tensor attribute {name!r} has no JAX translation.")
    return attrs[name]()


# tensor attributes the interpreter reads through builtins.getattr
ATTRIBUTES = {"shape", "ndim", "dtype", "T", "mT", "data", "device", "is_cuda", "requires_grad"}


def _softmax(fn: Callable[..., Any]) -> Translation:
    def op(x, dim=None, _stacklevel=3, dtype=None):
        return fn(x, dim, dtype=dtype)

    return op


def _functional(name: str) -> Translation:
    """funclayers.functional's twin of `torch.nn.functional.<name>`, with torch's `inplace=` accepted."""
    fn = getattr(flF, name)

    @functools.wraps(fn)
    def op(*args, **kwargs):
        return fn(*args, **kwargs)

    return op


class Mutation:
    """A translation's result that also replaces some of its tensor arguments (torch mutates them in place):
    `updates` maps (position, keyword name) of the argument to its new value."""

    def __init__(self, value: Any, updates: dict[tuple[int, str], Any]):
        self.value, self.updates = value, updates


def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """F.batch_norm; in training mode torch updates the running statistics in place: so do we, functionally."""
    if training and running_mean is not None and running_var is not None:
        out, mean, var = flF.batch_norm(input, running_mean, running_var, weight, bias, True, momentum, eps,
                                        return_running_stats=True)
        return Mutation(out, {(1, "running_mean"): mean, (2, "running_var"): var})
    return flF.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _identity(x, *args, **kwargs):
    return x


# -- the tables --------------------------------------------------------------------------------

_ARITH = {
    "add": _binary(jnp.add), "sub": _binary(jnp.subtract), "mul": _binary(jnp.multiply),
    "div": _true_divide, "true_divide": _true_divide, "floor_divide": _binary(jnp.floor_divide),
    "remainder": _binary(jnp.remainder), "fmod": _binary(jnp.fmod), "pow": _binary(jnp.power),
    "matmul": _matmul, "mm": _matmul, "bmm": _matmul, "maximum": _binary(jnp.maximum),
    "minimum": _binary(jnp.minimum), "eq": _binary(jnp.equal), "ne": _binary(jnp.not_equal),
    "lt": _binary(jnp.less), "le": _binary(jnp.less_equal), "gt": _binary(jnp.greater),
    "ge": _binary(jnp.greater_equal), "logical_and": _binary(jnp.logical_and),
    "logical_or": _binary(jnp.logical_or), "bitwise_and": _binary(jnp.bitwise_and),
    "bitwise_or": _binary(jnp.bitwise_or), "atan2": _binary(jnp.arctan2),
}
_UNARY = {
    "neg": jnp.negative, "abs": jnp.abs, "exp": jnp.exp, "log": jnp.log, "log2": jnp.log2, "log1p": jnp.log1p,
    "sqrt": jnp.sqrt, "rsqrt": jax.lax.rsqrt, "sin": jnp.sin, "cos": jnp.cos, "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "erf": jax.scipy.special.erf, "floor": jnp.floor,
    "ceil": jnp.ceil, "round": jnp.round, "sign": jnp.sign, "reciprocal": jnp.reciprocal,
    "square": jnp.square, "logical_not": jnp.logical_not, "isnan": jnp.isnan, "isinf": jnp.isinf,
    "exp2": jnp.exp2, "expm1": jnp.expm1, "trunc": jnp.trunc,
}
_SHAPES = {
    "view": _view, "reshape": _view, "flatten": _flatten, "unflatten": _unflatten, "permute": _permute,
    "transpose": _transpose, "swapaxes": _transpose, "t": _t, "expand": _expand, "repeat": _repeat,
    "squeeze": _squeeze, "unsqueeze": _unsqueeze, "chunk": _chunk, "split": _split, "unbind": _unbind,
    "narrow": _narrow, "roll": _roll, "movedim": lambda x, src, dst: jnp.moveaxis(x, src, dst),
    "tile": lambda x, dims: jnp.tile(x, tuple(dims)), "flip": lambda x, dims: jnp.flip(x, _dims(dims, x.ndim)),
    "masked_fill": _masked_fill, "where": lambda cond, x, y: jnp.where(cond, *_promote(x, y)),
    "clamp": _clamp, "clip": _clamp, "clamp_min": lambda x, m: _clamp(x, min=m),
    "clamp_max": lambda x, m: _clamp(x, max=m), "cumsum": _cumsum, "norm": _norm,
    "gather": lambda x, dim, index: jnp.take_along_axis(x, index, axis=dim),
    "index_select": lambda x, dim, index: jnp.take(x, index, axis=dim),
    "softmax": _softmax(flF.softmax), "log_softmax": _softmax(flF.log_softmax),
    "einsum": _einsum,
}
_REDUCTIONS = {
    "mean": _reduction(jnp.mean), "sum": _sum, "prod": _reduction(jnp.prod), "amax": _reduction(jnp.max),
    "amin": _reduction(jnp.min), "all": _reduction(jnp.all), "any": _reduction(jnp.any),
    "logsumexp": _reduction(jax.scipy.special.logsumexp),
    "var": _var_std(jnp.var), "std": _var_std(jnp.std),
    "max": _max_min(jnp.max, jnp.argmax, jnp.maximum), "min": _max_min(jnp.min, jnp.argmin, jnp.minimum),
    "argmax": _arg(jnp.argmax), "argmin": _arg(jnp.argmin),
}

METHODS: dict[str, Translation] = {
    **_ARITH, **_UNARY, **_SHAPES, **_REDUCTIONS,
    "size": _size, "dim": lambda x: x.ndim, "ndimension": lambda x: x.ndim, "numel": lambda x: x.size,
    "nelement": lambda x: x.size,
    "contiguous": _identity, "clone": _identity, "detach": jax.lax.stop_gradient, "cpu": _identity,
    "cuda": _identity, "requires_grad_": _identity,
    "to": _to, "type_as": lambda x, other: x.astype(other.dtype), "float": lambda x: x.astype(jnp.float32),
    "double": lambda x: x.astype(jnp.float64), "half": lambda x: x.astype(jnp.float16),
    "bfloat16": lambda x: x.astype(jnp.bfloat16), "int": lambda x: x.astype(jnp.int32),
    "long": lambda x: x.astype(jnp.int64 if jax.config.jax_enable_x64 else jnp.int32),
    "bool": lambda x: x.astype(jnp.bool_),
    "expand_as": lambda x, other: jnp.broadcast_to(x, other.shape),
    "view_as": lambda x, other: jnp.reshape(x, other.shape),
    "reshape_as": lambda x, other: jnp.reshape(x, other.shape),
    "new_zeros": _new(0), "new_ones": _new(1), "new_empty": _new(0), "new_full": _new_full,
    "new_tensor": lambda x, data, dtype=None, **kw: jnp.asarray(data, dtype or x.dtype),
    "fill_": lambda x, value: jnp.full(x.shape, value, x.dtype), "zero_": lambda x: jnp.zeros_like(x),
    "bernoulli_": _bernoulli_, "__getitem__": _getitem, "__setitem__": _setitem,
    "sigmoid_": jax.nn.sigmoid, "relu_": jax.nn.relu,
    "softplus": flF.softplus, "tolist": lambda x: np.asarray(x).tolist(),
}
# in-place methods: the functional twin of the method without its trailing "_"
INPLACE_METHODS = {f"{name}_" for name in list(_ARITH) + list(_UNARY) + ["clamp", "clip", "masked_fill", "t",
                                                                       "transpose", "squeeze", "unsqueeze",
                                                                       "clamp_min", "clamp_max"]}
for _name in INPLACE_METHODS:
    METHODS.setdefault(_name, METHODS[_name[:-1]])
INPLACE_METHODS |= {"fill_", "zero_", "bernoulli_", "sigmoid_", "relu_", "requires_grad_", "__setitem__"}

OPERATORS: dict[Callable[..., Any], Translation] = {
    operator.add: _binary(operator.add), operator.sub: _binary(operator.sub),
    operator.mul: _binary(operator.mul), operator.truediv: _true_divide,
    operator.floordiv: _binary(operator.floordiv), operator.mod: _binary(operator.mod),
    operator.pow: _binary(operator.pow), operator.matmul: _matmul, operator.neg: operator.neg,
    operator.pos: operator.pos, operator.invert: operator.invert, operator.abs: operator.abs,
    operator.eq: _binary(operator.eq), operator.ne: _binary(operator.ne), operator.lt: _binary(operator.lt),
    operator.le: _binary(operator.le), operator.gt: _binary(operator.gt), operator.ge: _binary(operator.ge),
    operator.and_: _binary(operator.and_), operator.or_: _binary(operator.or_),
    operator.xor: _binary(operator.xor), operator.getitem: _getitem, operator.setitem: _setitem,
    operator.iadd: _binary(operator.add), operator.isub: _binary(operator.sub),
    operator.imul: _binary(operator.mul), operator.itruediv: _true_divide,
    operator.ifloordiv: _binary(operator.floordiv), operator.not_: operator.not_,
    builtins.getattr: _getattr, builtins.len: len, builtins.int: int, builtins.float: float,
    builtins.max: max, builtins.min: min, builtins.sum: sum, builtins.tuple: tuple, builtins.list: list,
    # torch.fx wraps the math module's functions: on Python numbers (shapes) they stay plain Python
    math.sqrt: lambda x: jnp.sqrt(x) if _is_array(x) else math.sqrt(x),
    math.log: lambda x: jnp.log(x) if _is_array(x) else math.log(x),
    math.exp: lambda x: jnp.exp(x) if _is_array(x) else math.exp(x),
    math.ceil: math.ceil, math.floor: math.floor, math.prod: math.prod,
}
# operators that mutate their first argument (on tensors)
INPLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv,
                     operator.setitem}

# torch.nn.functional names whose funclayers.functional twin has torch's signature
_SAME_SIGNATURE = [name for name in dir(flF) if not name.startswith("_") and callable(getattr(flF, name))]


def _torch_functions(torch: Any) -> dict[Any, Translation]:
    """{torch function object: translation}; built on the first conversion (torch is imported then)."""
    F = torch.nn.functional
    table: dict[Any, Translation] = {}
    for name in _SAME_SIGNATURE:
        if hasattr(F, name):
            table[getattr(F, name)] = _functional(name)
    for name, fn in {**_ARITH, **_SHAPES, **_REDUCTIONS}.items():
        if hasattr(torch, name):
            table.setdefault(getattr(torch, name), fn)
    for name, fn in _UNARY.items():
        if hasattr(torch, name):
            table.setdefault(getattr(torch, name), fn)
        if hasattr(torch, f"{name}_"):
            table.setdefault(getattr(torch, f"{name}_"), fn)
    table.update({
        torch.cat: _cat, torch.concat: _cat, torch.concatenate: _cat, torch.stack: _stack,
        torch.flatten: _flatten, torch.relu: jax.nn.relu, torch.sigmoid: jax.nn.sigmoid, torch.tanh: jnp.tanh,
        torch.softmax: _softmax(flF.softmax), torch.log_softmax: _softmax(flF.log_softmax),
        torch._assert: _assert, torch.zeros: _creation(0), torch.ones: _creation(1), torch.empty: _creation(0),
        torch.zeros_like: _like(0), torch.ones_like: _like(1), torch.empty_like: _like(0),
        torch.full_like: lambda x, fill_value, **kw: jnp.full(x.shape, fill_value, kw.get("dtype") or x.dtype),
        torch.arange: _arange, torch.addmm: lambda bias, a, b, beta=1, alpha=1: beta * bias + alpha * (a @ b),
        torch.baddbmm: lambda bias, a, b, beta=1, alpha=1: beta * bias + alpha * jnp.matmul(a, b),
        torch.layer_norm: lambda x, shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True:
            flF.layer_norm(x, shape, weight, bias, eps),
        F.normalize: _normalize, F.linear: flF.linear, torch.einsum: _einsum, F.batch_norm: _batch_norm,
        torch.clone: _identity, torch.detach: jax.lax.stop_gradient,
        torch.squeeze: _squeeze, torch.unsqueeze: _unsqueeze, torch.where: _SHAPES["where"],
        torch.full: lambda size, fill_value, *, dtype=None, **kw: jnp.full(tuple(size), fill_value,
                                                                           dtype or jnp.float32),
    })
    for name in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                 "avg_pool1d", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "prelu", "selu",
                 "celu", "rrelu", "hardshrink", "bilinear"):
        if hasattr(torch, name) and hasattr(flF, name):
            table[getattr(torch, name)] = _functional(name)
    for name in ("avg_pool2d", "avg_pool3d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "linear",
                 "gelu", "softplus", "elu", "leaky_relu", "hardtanh", "silu", "hardsigmoid", "hardswish",
                 "relu6", "mish", "pad", "log_sigmoid", "one_hot"):
        fn = getattr(torch._C._nn, name, None)
        twin = "logsigmoid" if name == "log_sigmoid" else name
        if fn is not None and hasattr(flF, twin):
            table.setdefault(fn, _functional(twin))
    return table


# translations that draw random numbers: called with rng= (a fresh key, or None without one)
RANDOM_NAMES = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
                "rrelu", "scaled_dot_product_attention", "fractional_max_pool2d", "fractional_max_pool3d",
                "fractional_max_pool2d_with_indices", "fractional_max_pool3d_with_indices"}


def is_random(fn: Translation) -> bool:
    return getattr(fn, "__name__", "") in RANDOM_NAMES or fn is _bernoulli_ or getattr(fn, "random", False)


__all__ = ["Mutation", "METHODS", "OPERATORS", "INPLACE_METHODS", "INPLACE_FUNCTIONS", "ATTRIBUTES", "is_random"]
