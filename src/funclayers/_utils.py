"""Argument helpers shared by every family: tuples, rank checks, dtypes, rng checks."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_DTYPE = jnp.float32  # torch's default dtype; parameters never silently become float64


def ntuple(value: Any, n: int, name: str = "argument", layer: str = "") -> tuple:
    """`value` as an n-tuple: an int is repeated, a sequence must have length n (torch's _ntuple)."""
    if isinstance(value, Iterable) and not isinstance(value, str):
        out = tuple(value)
        if len(out) == 1 and n > 1:
            out = out * n
        if len(out) != n:
            where = f"{layer}: " if layer else ""
            raise ValueError(f"{where}{name} must be an int or a tuple of {n} ints, got {value!r}.")
        return out
    return (value,) * n


def param_dtype(dtype: Any) -> jnp.dtype:
    """The dtype parameters are created in: `dtype` if given, else float32 as in torch."""
    return jnp.dtype(DEFAULT_DTYPE if dtype is None else dtype)


def describe_rank(rank: int, dims: str | None = None) -> str:
    return f"{rank}D ({dims})" if dims else f"{rank}D"


def check_rank(layer: str, x: Any, ranks: Sequence[int] | int, dims: Sequence[str] | str | None = None) -> int:
    """Raise ValueError unless `x.ndim` is one of `ranks`; return the rank.

    `dims` names the axes of each accepted rank, e.g. ("C, H, W", "N, C, H, W"), so the message
    reads "MaxPool2d expects a 3D (C, H, W) or 4D (N, C, H, W) input, got shape (2, 3).".
    """
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if dims is None or isinstance(dims, str):
        dims = (dims,) * len(ranks)
    shape = tuple(np.shape(x))
    if len(shape) not in ranks:
        accepted = " or ".join(describe_rank(r, d) for r, d in zip(ranks, dims))
        raise ValueError(f"{layer} expects a {accepted} input, got shape {shape}.")
    return len(shape)


def check_floating(layer: str, x: Any, what: str = "input") -> None:
    """Raise TypeError for non-floating input where torch requires a floating tensor."""
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating) and not jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"{layer} expects a floating-point {what}, got dtype {dtype}; cast it with "
                        f".astype(jnp.float32).")


def compute_dtype(x: Any) -> jnp.dtype:
    """The dtype a layer computes in: the input's floating dtype ("dtype follows the inputs")."""
    dtype = jnp.result_type(x)
    return dtype if jnp.issubdtype(dtype, jnp.inexact) else jnp.dtype(DEFAULT_DTYPE)


_TORCH_SCALAR_TYPES = {"float64": "Double", "float32": "Float", "float16": "Half", "bfloat16": "BFloat16",
                       "complex64": "ComplexFloat", "complex128": "ComplexDouble"}
_TORCH_CPP_TYPES = {"float64": "double", "float32": "float", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
                    "complex64": "c10::complex<float>", "complex128": "c10::complex<double>"}
_TORCH_TENSOR_TYPES = {"float64": "torch.DoubleTensor", "float32": "torch.FloatTensor", "float16": "torch.HalfTensor",
                       "bfloat16": "CPUBFloat16Type"}
_REDUCED = ("float16", "bfloat16")


def torch_dtype_names(dtype: Any) -> dict:
    """A dtype's spellings in torch's messages: ScalarType ("Double"), C++ ("double"), legacy tensor type
    ("torch.DoubleTensor")."""
    name = jnp.dtype(dtype).name
    return {"scalar": _TORCH_SCALAR_TYPES.get(name, name), "c": _TORCH_CPP_TYPES.get(name, name),
            "t": _TORCH_TENSOR_TYPES.get(name, name)}


def _dtype_of(a: Any) -> jnp.dtype | None:
    """An array's dtype; None for None and for Python scalars (weakly typed: they adapt, as in torch)."""
    if a is None or isinstance(a, (bool, int, float, complex)):
        return None
    return jnp.result_type(a)


# torch's CPU norms (aten/src/ATen/native/mixed_type.h): a float16/bfloat16 input may take float32 parameters
MIXED_DTYPE_MESSAGES = ("mixed dtype (CPU): all inputs must share same datatype.",
                        "mixed dtype (CPU): expect parameter to have scalar type of Float")


_SHAPE_PASS = contextvars.ContextVar("funclayers_shape_pass", default=False)


@contextlib.contextmanager
def shape_pass() -> Iterator[None]:
    """The shape pass of `init(rng, *example_inputs)`: example inputs give shapes only, so the
    dtype checks below (`check_param_dtypes`, the RNNs') are off while it runs: a float64 example
    sizes a float32 lazy model, whose forward then raises as torch's would."""
    token = _SHAPE_PASS.set(True)
    try:
        yield
    finally:
        _SHAPE_PASS.reset(token)


def in_shape_pass() -> bool:
    return _SHAPE_PASS.get()


def check_param_dtypes(who: str, input: Any, params: Sequence[Any], message: str = "", *,
                       mixed: bool = False) -> None:
    """Raise TorchRuntimeError, with torch's `message`, unless every array in `params` has the input's dtype.

    torch never casts a layer's parameters to its input's dtype: a float64 input into a float32 Linear
    raises ("mat1 and mat2 must have the same dtype, but got Double and Float"). `message` is torch's,
    formatted with the dtypes in torch's spellings (torch_dtype_names): {input} / {param} as ScalarType
    names ("Double"), {input_c} / {param_c} as C++ names ("double"), {input_t} / {param_t} as legacy
    tensor types ("torch.DoubleTensor"). `mixed`: torch's CPU norms' mixed-dtype support: a float16 or
    bfloat16 input with float32 parameters passes, and the messages are torch's check_mixed_data_type's
    (`message` unused). The check reads static dtypes only: it runs at trace time and costs nothing at
    run time, under jit, vmap and every autodiff transformation alike.
    """
    if _SHAPE_PASS.get():
        return
    x_dtype = _dtype_of(input)
    dtypes = [d for d in map(_dtype_of, params) if d is not None]
    bad = next((d for d in dtypes if d != x_dtype), None)
    if x_dtype is None or bad is None:
        return
    if mixed:  # torch's is_mixed_type (the first parameter given), then every parameter float32, then the input
        if dtypes[0] == x_dtype:
            message = "expected scalar type {input} but found {param}"
        elif any(d != jnp.float32 for d in dtypes):
            message, bad = MIXED_DTYPE_MESSAGES[1], next(d for d in dtypes if d != jnp.float32)
        elif x_dtype.name not in _REDUCED:
            message = MIXED_DTYPE_MESSAGES[0]
        else:
            return
    raise dtype_mismatch(who, message, x_dtype, bad)


def is_mixed(input: Any, *params: Any) -> bool:
    """Whether `input` is float16/bfloat16 with float32 parameters: torch's CPU mixed-dtype norms, which
    compute in float32 with the parameters as they are and return the input's dtype."""
    x_dtype = _dtype_of(input)
    return x_dtype is not None and x_dtype.name in _REDUCED and any(
        d == jnp.float32 for d in map(_dtype_of, params) if d is not None)


def dtype_mismatch(who: str, message: str, input_dtype: Any, param_dtype: Any) -> TorchRuntimeError:
    """torch's dtype-mismatch `message` (see check_param_dtypes) for layer `who`, with how to fix it."""
    x, p = jnp.dtype(input_dtype).name, jnp.dtype(param_dtype).name
    names = {f"{role}{'' if kind == 'scalar' else '_' + kind}": spelling
             for role, dtype in (("input", x), ("param", p)) for kind, spelling in torch_dtype_names(dtype).items()}
    text = message.format(**names)
    return TorchRuntimeError(f"{who}: {text} (a {x} input into {p} parameters; as in torch, they are not cast). "
                             f"Convert the input: x.astype(jnp.{p}), or the parameters: "
                             f"jax.tree.map(lambda p: p.astype(jnp.{x}), params).")


def require_rng(layer: str, rng: Any) -> jax.Array:
    """The rng a random layer needs in training mode, or a ValueError saying how to pass it."""
    if rng is None:
        raise ValueError(f"{layer} draws random numbers and needs `rng`: call "
                         f"apply(params, state, x, rng=jax.random.PRNGKey(0), ...).")
    return rng


def check_probability(layer: str, p: float) -> float:
    if not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"{layer}: dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def fmt_shape(x: Any) -> tuple:
    return tuple(np.shape(x))


class TorchRuntimeError(ValueError, RuntimeError):
    """Bad input where torch raises RuntimeError (shape mismatches): a ValueError per the contract,
    that code written against torch (`except RuntimeError`) also catches."""


class TorchIndexError(ValueError, IndexError):
    """torch's "Dimension out of range" IndexError, as a ValueError per the contract."""


def normalize_dim(layer: str, dim: int, ndim: int) -> int:
    """`dim` wrapped into [0, ndim) like torch's maybe_wrap_dim; a 0-d input accepts 0 and -1.

    Raises TorchIndexError with torch's message plus the layer name, e.g. "Softmax(dim=2): Dimension
    out of range (expected to be in range of [-2, 1], but got 2)".
    """
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise TorchIndexError(f"{layer}: Dimension out of range (expected to be in range of [{-rank}, "
                              f"{rank - 1}], but got {dim}) for an input with {ndim} dimensions.")
    return dim % rank


class TorchNotImplementedError(ValueError, NotImplementedError):
    """Input torch rejects with NotImplementedError (an unsupported rank or mode, e.g. F.pad's
    "Padding size 4 is not supported for 2D input tensor."): a ValueError per the contract."""


def on_cpu(platform: str | None = None) -> bool:
    """Whether `platform` (default: JAX's default backend) is the CPU, where the lowerings chosen
    by measurement (convolutions, max pooling's pick) apply; elsewhere XLA's own ops are used."""
    return (platform or jax.default_backend()) == "cpu"


def zero_pad(x: jax.Array, pairs: Sequence[tuple[int, int]]) -> jax.Array:
    """`x` padded with zeros by (low, high) per axis: `jnp.pad`'s constant mode as one `lax.pad`.

    The same HLO, without `jnp.pad`'s nested jit: a convolutional training step calls this a few
    hundred times, and tracing those calls cost ~0.25 s of ResNet-18's first call.
    """
    return jax.lax.pad(x, jnp.zeros((), x.dtype), [(int(lo), int(hi), 0) for lo, hi in pairs])


def varying_like(tree: Any, *refs: Any) -> Any:
    """`tree`'s arrays marked as varying over every manual mesh axis that any of `refs` varies over.

    Inside `jax.shard_map` a loop's carry must have the same type on the way in as on the way out;
    a carry started from zeros or a replicated weight is not "varying" over the mesh axis while
    the step's result (which reads the sharded batch) is. Outside `shard_map` this returns `tree`.
    """
    def vma(x):  # JAX 0.10: aval.manual_axis_type.varying (earlier: aval.vma)
        aval = jax.typeof(x)
        axis_type = getattr(aval, "manual_axis_type", None)
        return frozenset(axis_type.varying if axis_type is not None else getattr(aval, "vma", ()))

    axes = frozenset().union(*(vma(r) for r in jax.tree.leaves(refs)))
    if not axes:
        return tree

    def cast(x):
        missing = tuple(sorted(axes - vma(x)))
        return jax.lax.pcast(x, missing, to="varying") if missing else x

    return jax.tree.map(cast, tree)
