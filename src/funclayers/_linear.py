"""Linear layers: Identity, Linear, Bilinear (torch.nn.modules.linear), Flatten, Unflatten (flatten.py).

Weights keep torch's layouts: Linear `(out_features, in_features)`, Bilinear
`(out_features, in1_features, in2_features)`, so a torch `state_dict` loads without transposes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from . import init as _init
from ._kernels._primitive import bilinear
from ._layer import Layer, no_params
from ._utils import (
    TorchRuntimeError,
    check_floating,
    check_param_dtypes,
    fmt_shape,
    normalize_dim,
    param_dtype,
    torch_dtype_names,
)

# -- argument helpers --------------------------------------------------------------------------------


def _check_features(who: str, **features: Any) -> None:
    """torch creates the weight tensor at construction, so negative or non-int sizes fail there."""
    for name, value in features.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{who}: {name} must be a non-negative int, got {value!r}.")


# torch's at::linear: addmm with a bias (its "mat1 and mat2" check), mm / matmul without one, addmv for a 1-D
# weight (aten/src/ATen/native/LinearAlgebra.cpp). (A non-contiguous 3-D input with a bias takes torch's
# matmul path, "expected scalar type ..."; JAX arrays have no layout, so that case reads as addmm's.)
LINEAR_DTYPE_MESSAGES = {"addmm": "mat1 and mat2 must have the same dtype, but got {input} and {param}",
                         "mm": "expected m1 and m2 to have the same dtype, but got: {input_c} != {param_c}",
                         "addmv": "addmv input tensors must have the same dtype, but got {param}, {input}, and {param}"}


def check_linear_dtypes(who: str, x: Any, weight: Any, bias: Any) -> None:
    """torch's check that a linear map's input, weight and bias share one dtype, with its message."""
    kind = "addmv" if len(fmt_shape(weight)) == 1 else "addmm" if bias is not None else "mm"
    check_param_dtypes(who, x, (weight, bias), LINEAR_DTYPE_MESSAGES[kind])


# torch computes float32 matmuls in full float32 (no TF32 by default); so do we on every backend.
_PRECISION = lax.Precision.HIGHEST


def _contract_last(x: jax.Array, weight: jax.Array) -> jax.Array:
    """x @ weight.T over the last axis of x, without materialising the transpose."""
    return lax.dot_general(x, weight, (((x.ndim - 1,), (1,)), ((), ())), precision=_PRECISION)


def _contract_last_backward(x: jax.Array, weight: jax.Array, ct: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(dx, dweight) of `_contract_last`: autodiff's, but dweight = (x^T ct)^T where that transposes less.

    The weight gradient ct^T x sums over the rows, the leading axis of both operands; XLA:CPU's
    YNNPACK products want the left operand row-major in the contracted axis, so XLA copies one of
    them transposed. Autodiff's form transposes `ct`, which is often a fusion of the layer above's
    backward (a LayerNorm's input gradient in a Transformer layer), recomputed in transposed order:
    the slowest non-product fusion of the TransformerEncoderLayer step. Where in_features <=
    out_features <= rows, `x` (an activation, already in memory, and the smaller one) is transposed
    instead, and the (in, out) product then (the weight's size, at most the activations'), behind
    `lax.optimization_barrier`s that keep XLA from folding the transposes back into the product.
    Same sums: outputs and gradients bit for bit autodiff's (float32 benchmark steps of
    TransformerEncoderLayer(256, 4, 1024) on (16, 128, 256), MultiheadAttention(256, 8), the 6-layer
    encoder). Median CPU per forward + backward step, one process, alternating, loaded machine: the
    TransformerEncoderLayer step -3.4 to -4.6% (out_proj's share: its cotangent is LayerNorm 1's
    input gradient); MultiheadAttention alone and the 6-layer encoder's training step (dropout)
    unchanged; Linear(256, 1024) on 2048 rows 40.4 -> 34.4 ms, (256, 256) 10.05 -> 9.56,
    (512, 2048) on 4096 rows 295 -> 277; with fewer rows than out_features it cost 4-9% ((1024,
    1024) on 256 rows, (512, 512) on 64), hence the `rows` bound. benchmarks/README.md, helper `tel`.
    """
    dx = jax.vjp(lambda x: _contract_last(x, weight), x)[1](ct)[0]
    n_in, n_out = weight.shape[1], weight.shape[0]
    rows = math.prod(x.shape[:-1])
    if n_in > n_out or rows < n_out:
        return dx, jax.vjp(lambda w: _contract_last(x, w), weight)[1](ct)[0]
    rows_x, rows_ct = x.reshape(rows, n_in), ct.reshape(rows, n_out)
    x_t = lax.optimization_barrier(rows_x.T)
    dweight_t = lax.dot_general(x_t, rows_ct, (((1,), (0,)), ((), ())), precision=_PRECISION)
    return dx, lax.optimization_barrier(dweight_t).T


# x @ weight.T with the backward above (a custom_jvp on `linear_call`: every transformation works).
_matmul = bilinear(_contract_last, _contract_last_backward, "linear")


# -- the pure ops ------------------------------------------------------------------------------------


def linear(input: Any, weight: Any, bias: Any = None) -> jax.Array:
    """y = x A^T + b over the last dimension; torch.nn.functional.linear.

    Args:
      input: `(*, in_features)`, at least 1-D.
      weight: (out_features, in_features), or (in_features,) for a single output without that dim.
      bias: (out_features,) or None ((), or None, with a 1-D weight). Default: None.

    Shape:
      `(*, in_features)` -> `(*, out_features)`, or `(*)` with a 1-D weight.

    Example:
      >>> y = F.linear(jnp.ones((8, 4)), jnp.ones((2, 4)), jnp.zeros(2))
      >>> y.shape
      (8, 2)
    """
    return _linear("linear", input, weight, bias)


def _linear(who: str, input: Any, weight: Any, bias: Any) -> jax.Array:
    shape, w_shape = fmt_shape(input), fmt_shape(weight)
    if len(shape) == 0 or len(w_shape) not in (1, 2):
        raise TorchRuntimeError(
            f"{who} expects an input of at least 1 dimension (*, in_features) and a 1D or 2D "
            f"weight, got input of shape {shape} and weight of shape {w_shape} (torch: both "
            f"arguments to linear need to be at least 1D)."
        )
    check_floating(who, input)
    in_features = w_shape[-1]
    if shape[-1] != in_features:
        raise TorchRuntimeError(
            f"{who} expects an input with {in_features} features in its last dimension, got "
            f"{shape[-1]} in input of shape {shape} (mat1 and mat2 shapes cannot be multiplied)."
        )
    out_shape = w_shape[:1]
    if bias is not None and fmt_shape(bias) not in (out_shape, ()):
        raise TorchRuntimeError(f"{who} expects a bias of shape {out_shape}, got shape {fmt_shape(bias)}.")
    x = jnp.asarray(input)
    check_linear_dtypes(who, x, weight, bias)
    weight, bias = jnp.asarray(weight), None if bias is None else jnp.asarray(bias)
    if weight.ndim == 1:
        out = jnp.sum(x * weight, axis=-1) if x.ndim > 1 else jnp.dot(x, weight, precision=_PRECISION)
    else:
        out = _matmul(x, weight)
    return out if bias is None else out + bias


def bilinear(input1: Any, input2: Any, weight: Any, bias: Any = None) -> jax.Array:
    """y = x1^T A x2 + b over the last dimension; torch.nn.functional.bilinear.

    Args:
      input1: `(*, in1_features)`.
      input2: `(*, in2_features)`, with the same leading dims as input1.
      weight: (out_features, in1_features, in2_features).
      bias: (out_features,) or None. Default: None.

    Shape:
      `(*, in1)`, `(*, in2)` -> `(*, out)`.

    Example:
      >>> y = F.bilinear(jnp.ones((8, 2)), jnp.ones((8, 3)), jnp.ones((4, 2, 3)))
      >>> y.shape
      (8, 4)
    """
    return _bilinear("bilinear", input1, input2, weight, bias)


def _bilinear(who: str, input1: Any, input2: Any, weight: Any, bias: Any) -> jax.Array:
    s1, s2, w_shape = fmt_shape(input1), fmt_shape(input2), fmt_shape(weight)
    if len(w_shape) != 3:
        raise TorchRuntimeError(
            f"{who} expects a 3D weight (out_features, in1_features, in2_features), got shape {w_shape}."
        )
    if len(s1) == 0 or len(s2) == 0:
        raise TorchRuntimeError(
            f"{who} expects inputs of at least 1 dimension (*, in_features), got shapes {s1} and {s2}."
        )
    if len(s1) != len(s2):
        raise TorchRuntimeError(
            f"{who}: input dimensions do not match: got {len(s1)} and {len(s2)} (input1 of "
            f"shape {s1}, input2 of shape {s2})."
        )
    for i, (a, b) in enumerate(zip(s1[:-1], s2[:-1], strict=True)):
        if a != b:
            raise TorchRuntimeError(
                f"{who}: input batch dimensions do not match at dim {i}: got {a} and {b} "
                f"(input1 of shape {s1}, input2 of shape {s2})."
            )
    for k, (s, size) in enumerate(((s1, w_shape[1]), (s2, w_shape[2])), start=1):
        if s[-1] != size:
            raise TorchRuntimeError(
                f"{who}: input{k} size does not match weight size: got {s[-1]} but expected "
                f"{size} (input{k} of shape {s})."
            )
    if bias is not None and fmt_shape(bias) != w_shape[:1]:
        raise TorchRuntimeError(f"{who} expects a bias of shape {w_shape[:1]}, got shape {fmt_shape(bias)}.")
    check_floating(who, input1, "input1")
    check_floating(who, input2, "input2")
    x1, x2 = jnp.asarray(input1), jnp.asarray(input2)
    spelled = [torch_dtype_names(jnp.result_type(a))["c"] for a in (x1, x2, weight, bias) if a is not None]
    message = ("All tensors must have the same dtype, got input1: {}, input2: {}, weight: {}"
               + (", bias: {}" if bias is not None else "")).format(*spelled)
    check_param_dtypes(who, x1, (x2, weight, bias), message.replace("{", "{{").replace("}", "}}"))
    weight, bias = jnp.asarray(weight), None if bias is None else jnp.asarray(bias)
    # x1 . W first (one matmul over all samples), then the per-sample contraction with x2.
    tmp = jnp.einsum("...i,oij->...oj", x1, weight, precision=_PRECISION)
    out = jnp.einsum("...oj,...j->...o", tmp, x2, precision=_PRECISION)
    return out if bias is None else out + bias


def _flatten(who: str, input: Any, start_dim: int, end_dim: int) -> jax.Array:
    """Merges dims start_dim..end_dim into one; torch.flatten (a 0-d input counts as 1-D)."""
    x = jnp.asarray(input)
    start = normalize_dim(who, start_dim, x.ndim)
    end = normalize_dim(who, end_dim, x.ndim)
    if start > end:
        raise TorchRuntimeError(
            f"{who}: flatten() has invalid args: start_dim cannot come after end_dim "
            f"(start_dim={start_dim}, end_dim={end_dim} for input of shape {x.shape})."
        )
    if x.ndim == 0:
        return x.reshape(1)
    if start == end:
        return x
    shape = x.shape
    return x.reshape(shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :])


def _unflatten(who: str, input: Any, dim: int, sizes: Sequence[int]) -> jax.Array:
    """Expands dim `dim` into `sizes` (one entry may be -1); torch.unflatten."""
    x = jnp.asarray(input)
    sizes = tuple(sizes)
    _check_unflattened_size(who, sizes)
    if x.ndim == 0:
        raise TorchRuntimeError(
            f"{who}: Dimension specified as {dim} but tensor has no dimensions (input of shape ())."
        )
    d = normalize_dim(who, dim, x.ndim)
    size = x.shape[d]
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if known == 0:
            raise TorchRuntimeError(
                f"{who}: cannot infer the -1 in unflattened_size {list(sizes)} for dim {dim} of "
                f"size {size}: the other sizes multiply to 0, so it is ambiguous."
            )
        inferred = size // known
        ok = inferred * known == size
        new = tuple(inferred if s == -1 else s for s in sizes)
    else:
        ok, new = known == size, sizes
    if not ok:
        raise TorchRuntimeError(
            f"{who}: unflatten: Provided sizes {list(sizes)} don't multiply up to the size of "
            f"dim {dim} ({size}) in the input tensor of shape {x.shape}."
        )
    return x.reshape(x.shape[:d] + new + x.shape[d + 1 :])


def _check_unflattened_size(who: str, sizes: Any) -> None:
    """torch's Unflatten._require_tuple_int, plus the size checks torch makes at forward."""
    if not isinstance(sizes, (tuple, list)):
        raise TypeError(
            f"{who}: unflattened_size must be a tuple of ints, but found type {type(sizes).__name__}"
        )
    for idx, elem in enumerate(sizes):
        if isinstance(elem, bool) or not isinstance(elem, int):
            raise TypeError(
                f"{who}: unflattened_size must be tuple of ints, but found element of type "
                f"{type(elem).__name__} at pos {idx}"
            )
    if len(sizes) == 0:
        raise ValueError(f"{who}: unflatten: sizes must be non-empty.")
    if sum(s == -1 for s in sizes) > 1:
        raise ValueError(f"{who}: only one dimension can be inferred, got unflattened_size={sizes}.")
    if any(s < -1 for s in sizes):
        raise ValueError(f"{who}: invalid size in unflattened_size={sizes}; sizes must be >= 0 or -1.")


def grouped_mm(mat_a: Any, mat_b: Any, *, offs: Any = None, bias: Any = None, out_dtype: Any = None) -> jax.Array:
    """Matrix products of groups sharing shapes, with jagged group sizes; torch.nn.functional.grouped_mm.

    The grouped product of mixture-of-experts layers. `offs` (G,) holds the cumulative ends of the
    groups along the jagged dimension of a 2-D operand (group g spans [offs[g-1], offs[g]), offs[-1]
    = 0): tokens sorted by expert times each expert's weight.

    - 2-D x 3-D, `(M, K) x (G, K, N) -> (M, N)`: row block g of mat_a times mat_b[g].
    - 3-D x 2-D, `(G, M, K) x (K, N) -> (M, N)`: mat_a[g] times column block g of mat_b.
    - 2-D x 2-D, `(M, K) x (K, N) -> (G, M, N)`: the K block g of each (weight gradients).
    - 3-D x 3-D, `(G, M, K) x (G, K, N) -> (G, M, N)`: a batched product, `offs` None.

    Rows (columns) past offs[-1] are zero here; torch leaves them uninitialised. Torch runs this for
    float32, float16 and bfloat16 only; here any floating dtype works (float64 too), under jit, vmap
    and every autodiff mode.

    Args:
      mat_a: the left operand, 2-D or 3-D, floating.
      mat_b: the right operand, 2-D or 3-D, of mat_a's dtype.
      offs: (G,) increasing integer group ends, keyword-only; required when an operand is 2-D, None
        when both are 3-D. Default: None.
      bias: must be None (torch: "Bias not supported yet"). Default: None.
      out_dtype: the result's dtype; the products accumulate in it. Default: None (mat_a's dtype).

    Shape:
      as listed above.

    Example:
      >>> tokens = jnp.ones((5, 2))                        # 5 tokens sorted by expert: 2, 3
      >>> experts = jnp.stack([jnp.eye(2), 2 * jnp.eye(2)])  # 2 experts' (K, N) weights
      >>> F.grouped_mm(tokens, experts, offs=jnp.array([2, 5], jnp.int32))[:, 0]
      Array([1., 1., 2., 2., 2.], dtype=float32)
    """
    a_shape, b_shape = fmt_shape(mat_a), fmt_shape(mat_b)
    for name, shape in (("mat_a", a_shape), ("mat_b", b_shape)):
        if len(shape) not in (2, 3):
            raise TorchRuntimeError(f"grouped_mm: {name} has to be 2 or 3d, got shape {shape}.")
    if bias is not None:
        raise TorchRuntimeError("grouped_mm: Bias not supported yet (torch 2.13 raises the same); add it to the "
                                "result.")
    if (offs is None) != (len(a_shape) == len(b_shape) == 3):
        raise TorchRuntimeError(f"grouped_mm: Have to provide offsets if there is a 2d matrix, or no offset if both "
                                f"matrices are 3d; got mat_a {a_shape}, mat_b {b_shape} and offs "
                                f"{'None' if offs is None else fmt_shape(offs)}.")
    check_floating("grouped_mm", mat_a, "mat_a")
    a, b = jnp.asarray(mat_a), jnp.asarray(mat_b)
    if a.dtype != b.dtype:
        raise TypeError(f"grouped_mm: expected mat_a and mat_b to have the same dtype, but got: {a.dtype} != "
                        f"{b.dtype}.")
    if a_shape[-1] != b_shape[-2]:
        raise TorchRuntimeError(f"grouped_mm: contraction dimension of mat_a and mat_b must match: mat_a {a_shape}, "
                                f"mat_b {b_shape}.")
    out_dtype = a.dtype if out_dtype is None else jnp.dtype(out_dtype)
    if offs is None:
        if a_shape[0] != b_shape[0]:
            raise TorchRuntimeError(f"grouped_mm: batched dimension has to match: mat_a {a_shape}, mat_b {b_shape}.")
        return jnp.matmul(a, b, preferred_element_type=out_dtype).astype(out_dtype)
    offs = jnp.asarray(offs)
    if offs.ndim != 1 or not jnp.issubdtype(offs.dtype, jnp.integer):
        raise TypeError(f"grouped_mm: offs must be a 1-D integer (int32) array of group ends, got shape "
                        f"{fmt_shape(offs)} and dtype {offs.dtype}.")
    groups = offs.shape[0]
    if len(a_shape) + len(b_shape) == 5 and groups != (b_shape[0] if len(b_shape) == 3 else a_shape[0]):
        raise TorchRuntimeError(f"grouped_mm: matrix batch sizes have to match: {groups} offsets for mat_a "
                                f"{a_shape} and mat_b {b_shape}.")
    offs = offs.astype(jnp.int32)
    sizes = jnp.diff(offs, prepend=jnp.zeros((1,), jnp.int32))
    # Each case is one masked matrix product contracting over (group, K) at once: a single GEMM of G times
    # the work, differentiable in every mode and batchable by vmap (lax.ragged_dot is neither, in JAX 0.10).
    ends = offs[:, None]

    def member(length):  # (G, length): index i lies in group g, [offs[g-1], offs[g])
        index = jnp.arange(length, dtype=jnp.int32)
        return (index >= ends - sizes[:, None]) & (index < ends)

    zero = jnp.zeros((), a.dtype)
    if len(b_shape) == 3:  # row block g of mat_a times mat_b[g]
        rows = jnp.where(member(a_shape[0])[:, :, None], a[None], zero)
        out = jnp.einsum("gmk,gkn->mn", rows, b, preferred_element_type=out_dtype)
    elif len(a_shape) == 3:  # mat_a[g] times column block g of mat_b
        cols = jnp.where(member(b_shape[1])[:, None, :], b[None], zero)
        out = jnp.einsum("gmk,gkn->mn", a, cols, preferred_element_type=out_dtype)
    else:  # both 2-D: group g contracts over K in [offs[g-1], offs[g])
        out = jnp.matmul(jnp.where(member(a_shape[1])[:, None, :], a[None], zero), b,
                         preferred_element_type=out_dtype)
    return out.astype(out_dtype)


# -- the layers --------------------------------------------------------------------------------------


def Identity(*args: Any, **kwargs: Any) -> Layer:
    """Returns its input unchanged; torch.nn.Identity.

    Args:
      *args: any positional arguments, accepted and ignored as torch's Identity does (handy when
        swapping it in for a layer).
      **kwargs: any keyword arguments, accepted and ignored likewise.

    Shape:
      `(*)` -> `(*)`, the input itself.

    Example:
      >>> x = jnp.array([1.0, 2.0])
      >>> y, _ = fl.Identity(54, unused="x").apply({}, {}, x)
      >>> y is x
      True
    """
    del args, kwargs

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return input, state

    return Layer(no_params, apply, "Identity()")


def Linear(
    in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
) -> Layer:
    """y = x W^T + b; torch.nn.Linear. Params: weight (out_features, in_features), bias (out_features,).

    Initialised as torch: weight kaiming-uniform with a=sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)), bias
    U(-1/sqrt(in), 1/sqrt(in)).

    Args:
      in_features: size of each input sample.
      out_features: size of each output sample.
      bias: learn an additive bias, default True.
      device: ignored. Default: None.
      dtype: parameter dtype (default float32).

    Shape:
      `(*, in_features)` -> `(*, out_features)`; a 1-D input is one unbatched sample.

    Example:
      >>> layer = fl.Linear(20, 30)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> y, _ = layer.apply(params, state, jnp.ones((128, 20)))
      >>> y.shape
      (128, 30)
    """
    del device
    _check_features("Linear", in_features=in_features, out_features=out_features)
    name = f"Linear(in_features={in_features}, out_features={out_features}, bias={bool(bias)})"
    pdtype = param_dtype(dtype)

    def init(rng):
        k_weight, k_bias = jax.random.split(rng)
        params = {
            "weight": _init.kaiming_uniform(k_weight, (out_features, in_features), pdtype, a=math.sqrt(5))
        }
        if bias:
            params["bias"] = _init.bias_uniform(k_bias, (out_features,), in_features, pdtype)
        return params, {}

    def apply(params, state, input, *, rng=None, training=False):
        del rng, training
        return _linear(name, input, params["weight"], params.get("bias")), state

    return Layer(init, apply, name)


def Bilinear(
    in1_features: int,
    in2_features: int,
    out_features: int,
    bias: bool = True,
    device: Any = None,
    dtype: Any = None,
) -> Layer:
    """y = x1^T W x2 + b; torch.nn.Bilinear. Params: weight (out, in1, in2), bias (out,).

    Initialised as torch: weight and bias U(-1/sqrt(in1_features), 1/sqrt(in1_features)).

    Args:
      in1_features: size of each first input sample (must be > 0).
      in2_features: size of each second input sample.
      out_features: output size.
      bias: learn an additive bias, default True.
      device: ignored. Default: None.
      dtype: parameter dtype (default float32).

    Shape:
      `(*, in1)`, `(*, in2)` -> `(*, out)`; 1-D inputs are one unbatched sample.

    Example:
      >>> layer = fl.Bilinear(20, 30, 40)
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> y, _ = layer.apply(params, state, jnp.ones((128, 20)), jnp.ones((128, 30)))
      >>> y.shape
      (128, 40)
    """
    del device
    _check_features(
        "Bilinear", in1_features=in1_features, in2_features=in2_features, out_features=out_features
    )
    if in1_features <= 0:
        raise ValueError(f"Bilinear: in1_features must be > 0, but got (in1_features={in1_features})")
    name = (
        f"Bilinear(in1_features={in1_features}, in2_features={in2_features}, out_features={out_features}, "
        f"bias={bool(bias)})"
    )
    pdtype = param_dtype(dtype)
    bound = 1.0 / math.sqrt(in1_features)

    def init(rng):
        k_weight, k_bias = jax.random.split(rng)
        params = {
            "weight": _init.uniform(
                k_weight, (out_features, in1_features, in2_features), pdtype, -bound, bound
            )
        }
        if bias:
            params["bias"] = _init.uniform(k_bias, (out_features,), pdtype, -bound, bound)
        return params, {}

    def apply(params, state, input1, input2, *, rng=None, training=False):
        del rng, training
        return _bilinear(name, input1, input2, params["weight"], params.get("bias")), state

    return Layer(init, apply, name)


def Flatten(start_dim: int = 1, end_dim: int = -1) -> Layer:
    """Flattens dims start_dim..end_dim into one; torch.nn.Flatten.

    Args:
      start_dim: the first dimension to flatten, default 1 (keeps the batch dimension).
      end_dim: the last dimension to flatten (inclusive), default -1.

    Shape:
      `(*, S_start, ..., S_end, *)` -> `(*, prod(S_start..S_end), *)`; a 0-d input becomes (1,).

    Example:
      >>> x = jnp.ones((2, 3, 4, 5))
      >>> fl.Flatten().apply({}, {}, x)[0].shape
      (2, 60)
      >>> fl.Flatten(0, 2).apply({}, {}, x)[0].shape
      (24, 5)
    """
    name = f"Flatten(start_dim={start_dim}, end_dim={end_dim})"

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return _flatten(name, input, start_dim, end_dim), state

    return Layer(no_params, apply, name)


def Unflatten(dim: int, unflattened_size: Sequence[int]) -> Layer:
    """Expands dim `dim` into `unflattened_size` (one entry may be -1); torch.nn.Unflatten.

    Args:
      dim: the dimension to expand (negative counts from the end).
      unflattened_size: a tuple or list of ints whose product is the size of `dim`; one entry may be
        -1, inferred from the others.

    Shape:
      `(*, S_dim, *)` -> `(*, U_1, ..., U_n, *)` with prod(U) = S_dim.

    Example:
      >>> y, _ = fl.Unflatten(1, (2, -1)).apply({}, {}, jnp.ones((2, 6)))
      >>> y.shape
      (2, 2, 3)
    """
    name = f"Unflatten(dim={dim}, unflattened_size={unflattened_size!r})"
    _check_unflattened_size(name, unflattened_size)
    sizes = tuple(unflattened_size)

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        return _unflatten(name, input, dim, sizes), state

    return Layer(no_params, apply, name)


__all__ = ["Identity", "Linear", "Bilinear", "Flatten", "Unflatten", "linear", "bilinear"]
