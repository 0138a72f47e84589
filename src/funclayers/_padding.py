"""Padding: functional `pad` in every torch mode and the Reflection/Replication/Zero/Constant/Circular layers.

torch's pad tuple runs from the last dimension backwards in (before, after) pairs:
`(left, right, top, bottom, front, back)`. Negative entries crop. Each mode lowers to a few
slices, reversals, broadcasts and concatenations (one concatenation of blocks cut from the input
where no entry crops; a single `lax.pad` for constant padding), so the gradient is the same
handful of slices and adds.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from ._layer import Layer, no_params
from ._utils import TorchNotImplementedError, TorchRuntimeError, fmt_shape

MODES = ("constant", "reflect", "replicate", "circular")
_SPATIAL = {1: "W", 2: "H, W", 3: "D, H, W"}
_AXIS_LETTER = "WHD"


# --------------------------------------------------------------------------------------------
# argument helpers
# --------------------------------------------------------------------------------------------

def _int_tuple(value: Any, who: str, what: str = "pad") -> tuple[int, ...]:
    """A tuple of python ints; torch refuses floats and bools ("must be tuple of ints")."""
    values = tuple(value)
    for i, v in enumerate(values):
        if isinstance(v, bool):
            raise TypeError(f"{who}: argument '{what}' must be tuple of ints, but found element of type bool "
                            f"at pos {i}.")
        try:
            operator.index(v)
        except TypeError:
            raise TypeError(f"{who}: argument '{what}' must be tuple of ints, but found element of type "
                            f"{type(v).__name__} at pos {i}.") from None
    return tuple(int(v) for v in values)


def _pairs(pad: tuple[int, ...], ndim: int) -> list[tuple[int, int, int]]:
    """(axis, before, after) for each padded axis, last axis first, as torch reads the pad tuple."""
    return [(ndim - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]


def _shape_list(shape: tuple) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _rank_names(k: int) -> tuple[str, str]:
    return f"C, {_SPATIAL[k]}", f"N, C, {_SPATIAL[k]}"


# --------------------------------------------------------------------------------------------
# validation: torch's checks, in torch's order (aten PadNd.cpp, ReflectionPad.cpp, ReplicationPadding.cpp)
# --------------------------------------------------------------------------------------------

def _check_common(who: str, shape: tuple, pad: tuple[int, ...]) -> None:
    if len(pad) % 2:
        raise TorchRuntimeError(f"{who}: Padding length must be divisible by 2, got pad={pad}.")
    if len(pad) > 2 * len(shape):
        raise TorchRuntimeError(f"{who}: Padding length should be less than or equal to two times the "
                                f"input dimension but got padding length {len(pad)} and input of dimension "
                                f"{len(shape)} (input shape {shape}).")


def _check_constant(who: str, shape: tuple, pad: tuple[int, ...]) -> None:
    # constant_pad_nd narrows the input first (left, then right), so a crop may not exceed the size
    # that is left, even where positive padding on the other side would restore the length.
    for axis, before, after in _pairs(pad, len(shape)):
        size = shape[axis]
        if before < 0:
            size += before
        if size < 0 or (after < 0 and size + after < 0):
            raise TorchRuntimeError(f"{who}: negative padding ({before}, {after}) crops more than the size "
                                    f"{shape[axis]} of dimension {axis} of input {_shape_list(shape)} "
                                    f"(narrow(): length must be non-negative.)")


def _check_spatial_rank(who: str, shape: tuple, pad: tuple[int, ...], mode: str) -> int:
    """Reflect/replicate/circular pad the last 1-3 dims of an (N, C, *) or (C, *) input."""
    k = len(pad) // 2
    ndim = len(shape)
    if k not in (1, 2, 3) or ndim not in (k + 1, k + 2):
        raise TorchNotImplementedError(
            f"{who}: Padding size {len(pad)} is not supported for {ndim}D input tensor. Mode '{mode}' pads "
            f"the last 1, 2 or 3 dims of a (C, *) or (N, C, *) input, i.e. a pad tuple of length 2, 4 or 6 "
            f"with a 2D/3D, 3D/4D or 4D/5D input; got shape {shape}.")
    return k


def _check_edge_modes(who: str, shape: tuple, pad: tuple[int, ...], mode: str) -> None:
    """torch's reflection_pad{1,2,3}d / replication_pad{1,2,3}d shape checks."""
    k = len(pad) // 2
    ndim = len(shape)
    # the batch dim may be 0 (only when the input is batched), no other dim may be
    if any(s == 0 for s in shape[ndim - k - 1:]):
        raise TorchRuntimeError(f"{who}: Expected {k + 1}D or {k + 2}D (batch mode) tensor with possibly 0 "
                                f"batch size and other non-zero dimensions for input, but got: "
                                f"{_shape_list(shape)}")
    pairs = _pairs(pad, ndim)
    if mode == "reflect":
        for i, (axis, before, after) in enumerate(pairs):
            if before >= shape[axis] or after >= shape[axis]:
                raise TorchRuntimeError(
                    f"{who}: Argument #{4 + 2 * i}: Padding size should be less than the corresponding input "
                    f"dimension, but got: padding ({before}, {after}) at dimension {axis} of input "
                    f"{_shape_list(shape)}")
    out = [shape[axis] + before + after for axis, before, after in pairs]
    if all(o < 1 for o in out):
        names = [_AXIS_LETTER[i] for i in range(k)][::-1]
        sizes = ", ".join(f"{n}: {shape[axis]}" for n, (axis, _, _) in zip(names, pairs[::-1], strict=True))
        outs = " ".join(f"{n}: {o}" for n, o in zip(names, out[::-1], strict=True))
        raise TorchRuntimeError(f"{who}: input ({sizes}) is too small. Calculated output {outs}")
    for (axis, before, after), o in zip(pairs, out, strict=True):
        if o < 0:
            new_shape = list(shape)
            new_shape[axis] = o
            raise TorchRuntimeError(f"{who}: Trying to create tensor with negative dimension {o}: "
                                    f"{_shape_list(tuple(new_shape))} (padding ({before}, {after}) of "
                                    f"dimension {axis} of input {_shape_list(shape)})")


def _check_circular(who: str, shape: tuple, pad: tuple[int, ...]) -> None:
    """torch's _pad_circular: wrap at most once; negative padding crops first, then the rest wraps."""
    for axis, before, after in _pairs(pad, len(shape))[::-1]:
        size = shape[axis]
        if before > size or after > size:
            raise TorchRuntimeError(f"{who}: Padding value causes wrapping around more than once: padding "
                                    f"({before}, {after}) of dimension {axis} of input {_shape_list(shape)}.")
        if size + before + after < 0:
            raise TorchRuntimeError(f"{who}: Negative padding value is resulting in an empty dimension: "
                                    f"padding ({before}, {after}) of dimension {axis} of input "
                                    f"{_shape_list(shape)}.")
        # torch wraps around what is left after cropping; wrapping more than that reads memory it is
        # writing (torch fails with an overlap error or returns garbage), so it is an error here too.
        kept = size - max(-before, 0) - max(-after, 0)
        if max(before, 0) > kept or max(after, 0) > kept:
            raise TorchRuntimeError(f"{who}: Padding value causes wrapping around more than once: padding "
                                    f"({before}, {after}) of dimension {axis} of input {_shape_list(shape)} "
                                    f"wraps around the {max(kept, 0)} elements left after cropping.")


# --------------------------------------------------------------------------------------------
# lowering: one padded axis at a time
# --------------------------------------------------------------------------------------------

def _crop(x: jax.Array, axis: int, before: int, after: int) -> jax.Array:
    """Drop `before` leading and `after` trailing elements (both >= 0) along `axis`."""
    if before == 0 and after == 0:
        return x
    return lax.slice_in_dim(x, before, x.shape[axis] - after, axis=axis)


def _edges(x: jax.Array, axis: int, left: jax.Array | None, right: jax.Array | None) -> jax.Array:
    parts = [p for p in (left, x, right) if p is not None]
    return parts[0] if len(parts) == 1 else lax.concatenate(parts, axis)


def _reflect_axis(x: jax.Array, axis: int, before: int, after: int) -> jax.Array:
    # Pad the positive sides by mirroring (edge excluded), then crop the negative sides: this is
    # torch's index rule out[j] = x[reflect(j - before)] (ReflectionPad.cpp) for every sign.
    n = x.shape[axis]
    left = right = None
    if before > 0:
        left = lax.rev(lax.slice_in_dim(x, 1, before + 1, axis=axis), (axis,))
    if after > 0:
        right = lax.rev(lax.slice_in_dim(x, n - 1 - after, n - 1, axis=axis), (axis,))
    return _crop(_edges(x, axis, left, right), axis, max(-before, 0), max(-after, 0))


def _replicate_axis(x: jax.Array, axis: int, before: int, after: int) -> jax.Array:
    # out[j] = x[clamp(j - before, 0, n - 1)] (ReplicationPadding.cpp): pad with the edges, then crop.
    n = x.shape[axis]

    def edge(index: int, count: int) -> jax.Array:
        shape = list(x.shape)
        shape[axis] = count
        return jnp.broadcast_to(lax.slice_in_dim(x, index, index + 1, axis=axis), shape)

    left = edge(0, before) if before > 0 else None
    right = edge(n - 1, after) if after > 0 else None
    return _crop(_edges(x, axis, left, right), axis, max(-before, 0), max(-after, 0))


def _circular_axis(x: jax.Array, axis: int, before: int, after: int) -> jax.Array:
    # torch's _pad_circular crops first and wraps around what is left (PadNd.cpp).
    x = _crop(x, axis, max(-before, 0), max(-after, 0))
    n = x.shape[axis]
    left = lax.slice_in_dim(x, n - before, n, axis=axis) if before > 0 else None
    right = lax.slice_in_dim(x, 0, after, axis=axis) if after > 0 else None
    return _edges(x, axis, left, right)


_AXIS_OPS = {"reflect": _reflect_axis, "replicate": _replicate_axis, "circular": _circular_axis}


def _borders(x: jax.Array, axis: int, before: int, after: int, mode: str) -> tuple:
    """(left, right) borders of x along `axis` (before, after >= 0; None where 0), cut from x itself."""
    n = x.shape[axis]
    if mode == "reflect":
        left = lax.rev(lax.slice_in_dim(x, 1, before + 1, axis=axis), (axis,)) if before else None
        right = lax.rev(lax.slice_in_dim(x, n - 1 - after, n - 1, axis=axis), (axis,)) if after else None
    elif mode == "circular":
        left = lax.slice_in_dim(x, n - before, n, axis=axis) if before else None
        right = lax.slice_in_dim(x, 0, after, axis=axis) if after else None
    else:  # replicate: the edge element broadcast along the axis

        def edge(index: int, count: int) -> jax.Array:
            shape = list(x.shape)
            shape[axis] = count
            row = lax.squeeze(lax.slice_in_dim(x, index, index + 1, axis=axis), (axis,))
            return lax.broadcast_in_dim(row, shape, [d for d in range(x.ndim) if d != axis])

        left = edge(0, before) if before else None
        right = edge(n - 1, after) if after else None
    return left, right


def _edge_blocks(x: jax.Array, pairs: list[tuple[int, int, int]], mode: str) -> jax.Array:
    # Reflect/replicate/circular padding with non-negative pads as one concatenation of blocks, cut
    # from x directly (3 x 3 of them in 2-D): XLA fuses the whole output into one loop, and the
    # transpose (slices of the cotangent padded back and summed) into one more. Padding one axis
    # after the other would materialise each partly padded array, forward and backward. With the
    # outermost padded axis split first, the fused loop writes whole padded rows (forward alone
    # 0.98 -> 0.66 ms on (32, 64, 32, 32), the time of a copy).
    if not pairs:
        return x
    (axis, before, after), rest = pairs[0], pairs[1:]
    left, right = (None if b is None else _edge_blocks(b, rest, mode) for b in _borders(x, axis, before, after, mode))
    return _edges(_edge_blocks(x, rest, mode), axis, left, right)


def _pad(input: Any, pad: Sequence[int], mode: str, value: Any, who: str) -> jax.Array:
    """`pad` with error messages naming `who` (the functional or the layer calling it)."""
    if not isinstance(mode, str):
        raise TypeError(f"{who}: argument 'mode' must be str, not {type(mode).__name__}.")
    if mode not in MODES:
        raise TorchNotImplementedError(f"{who}: Unrecognised padding mode {mode}; expected one of {MODES}.")
    pad = _int_tuple(pad, who)
    x = jnp.asarray(input)
    shape = fmt_shape(x)
    _check_common(who, shape, pad)
    if mode == "constant":
        _check_constant(who, shape, pad)
        if not any(pad):
            return x
        return _lower(x, jnp.asarray(0 if value is None else value).astype(x.dtype), pad, mode)
    if value is not None and not (isinstance(value, (int, float)) and value == 0):
        raise TorchRuntimeError(f"{who}: Padding mode \"{mode}\" doesn't take in value argument "
                                f"(got value={value}).")
    _check_spatial_rank(who, shape, pad, mode)
    if mode == "circular":
        _check_circular(who, shape, pad)
    else:
        if x.dtype == jnp.bool_:
            kind = "reflection" if mode == "reflect" else "replication"
            raise TypeError(f"{who}: \"{kind}_pad{len(pad) // 2}d\" not implemented for 'Bool'; cast the "
                            f"input to a numeric dtype.")
        _check_edge_modes(who, shape, pad, mode)
    return _lower(x, None, pad, mode)


@partial(jax.jit, static_argnums=(2, 3))
def _lower(x: jax.Array, fill: jax.Array | None, pad: tuple[int, ...], mode: str) -> jax.Array:
    """The checked padding as one jitted computation (eager calls compile once per configuration)."""
    if mode == "constant":
        config = [(0, 0, 0)] * x.ndim
        for axis, before, after in _pairs(pad, x.ndim):
            config[axis] = (before, after, 0)
        return lax.pad(x, fill, config)
    if min(pad) >= 0:
        return _edge_blocks(x, _pairs(pad, x.ndim)[::-1], mode)  # outermost axis first: 1.5x faster
    for axis, before, after in _pairs(pad, x.ndim):
        x = _AXIS_OPS[mode](x, axis, before, after)
    return x


# --------------------------------------------------------------------------------------------
# functional op
# --------------------------------------------------------------------------------------------

def pad(input: Any, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> jax.Array:
    """Pads (or, with negative entries, crops) the last dims of `input`; torch.nn.functional.pad.

    Args:
      input: an array of any rank for `"constant"`; `(C, *)` or `(N, C, *)` with 1-3 padded
        dims for the other modes.
      pad: `(left, right)`, `(left, right, top, bottom)`, ...: pairs from the last dim backwards.
        Negative values crop where torch allows it.
      mode: `"constant"`, `"reflect"` (mirror without repeating the edge; padding must be smaller
        than the dim), `"replicate"` (repeat the edge) or `"circular"` (wrap around, at most once). Default: 'constant'.
      value: the fill value of `"constant"` padding (default 0).

    Shape: each padded dim grows by `before + after`; other dims are unchanged.

    Example:
      >>> F.pad(jnp.arange(3.0)[None], (2, 1), mode="reflect")
      Array([[2., 1., 0., 1., 2., 1.]], dtype=float32)
    """
    return _pad(input, pad, mode, value, "pad")


# --------------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------------

def _layer_padding(padding: Any, n: int, who: str) -> tuple[int, ...]:
    """torch's `_ntuple(2n)`: an int is repeated 2n times, a sequence is taken as given."""
    if isinstance(padding, (list, tuple)):
        out = _int_tuple(padding, who, "padding")
    else:
        out = _int_tuple((padding,), who, "padding") * (2 * n)
    if len(out) % 2 or not out:
        raise ValueError(f"{who}: padding must be an int or a tuple of {2 * n} ints{_SIDES[n]}, "
                         f"got {padding!r}.")
    return out


def _padding_layer(kind: str, n: int, padding: Any, mode: str, value: float | None = None) -> Layer:
    name = f"{kind}{n}d"
    padding = _layer_padding(padding, n, name)
    k = len(padding) // 2
    if mode == "constant":
        label = f"{name}({padding})" if kind == "ZeroPad" else f"{name}(padding={padding}, value={value})"
    else:
        label = f"{name}({padding})"

    def apply(params, state, input, *, rng=None, training=False):
        del params, rng, training
        ndim = len(fmt_shape(input))
        if kind == "CircularPad" and ndim not in (n + 1, n + 2):
            # torch's _CircularPadNd._check_input_dim (the other layers leave this to F.pad)
            unbatched, batched = _rank_names(n)
            raise ValueError(f"{name}: expected {n + 1}D or {n + 2}D input (got {ndim}D input); pass "
                             f"({unbatched}) or ({batched}), got shape {fmt_shape(input)}.")
        if mode != "constant" and k == n and ndim not in (n + 1, n + 2):
            # F.pad's "not supported" error, said in the layer's terms
            unbatched, batched = _rank_names(n)
            raise TorchNotImplementedError(
                f"{name} expects a {n + 1}D ({unbatched}) or {n + 2}D ({batched}) input, got shape "
                f"{fmt_shape(input)} (Padding size {len(padding)} is not supported for {ndim}D input "
                f"tensor.)")
        return _pad(input, padding, mode, value, name), state

    return Layer(no_params, apply, label)


_DOC = """{what}; torch.nn.{name}.

    Args:
      padding: an int for every side, or a tuple{sides}.{extra}

    Shape: ({dims_unbatched}) or ({dims_batched}) -> the same rank, each padded dim grown by
      `before + after` (negative values crop{limit}).

    Example:
      >>> x = jnp.ones({x_shape})
      >>> layer = fl.{name}({example})
      >>> y, _ = layer.apply({{}}, {{}}, x)
      >>> y.shape
      {y_shape}
"""

_KINDS = {
    "ReflectionPad": ("Pads by mirroring the input at its boundary (the edge is not repeated)", "reflect",
                      "; padding must be smaller than the dim"),
    "ReplicationPad": ("Pads by repeating the input's edge values", "replicate", ""),
    "ZeroPad": ("Pads with zeros", "constant", ""),
    "ConstantPad": ("Pads with a constant value", "constant", ""),
    "CircularPad": ("Pads by wrapping the input around", "circular", "; padding may not exceed the dim"),
}
_SIDES = {1: " (left, right)", 2: " (left, right, top, bottom)",
          3: " (left, right, top, bottom, front, back)"}


def _document(fn, kind: str, n: int):
    what, _, limit = _KINDS[kind]
    extra = "\n      value: the fill value." if kind == "ConstantPad" else ""
    example = "2, 3.5" if kind == "ConstantPad" else "2"
    unbatched, batched = _rank_names(n)
    fn.__doc__ = _DOC.format(what=what, name=f"{kind}{n}d", sides=_SIDES[n], extra=extra,
                             dims_unbatched=unbatched, dims_batched=batched, limit=limit, example=example,
                             x_shape=(1, 2) + (5,) * n, y_shape=(1, 2) + (9,) * n)
    return fn


def ReflectionPad1d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("ReflectionPad", 1, padding, "reflect")


def ReflectionPad2d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("ReflectionPad", 2, padding, "reflect")


def ReflectionPad3d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("ReflectionPad", 3, padding, "reflect")


def ReplicationPad1d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("ReplicationPad", 1, padding, "replicate")


def ReplicationPad2d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("ReplicationPad", 2, padding, "replicate")


def ReplicationPad3d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("ReplicationPad", 3, padding, "replicate")


def ZeroPad1d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("ZeroPad", 1, padding, "constant", 0.0)


def ZeroPad2d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("ZeroPad", 2, padding, "constant", 0.0)


def ZeroPad3d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("ZeroPad", 3, padding, "constant", 0.0)


def ConstantPad1d(padding: int | Sequence[int], value: float) -> Layer:
    return _padding_layer("ConstantPad", 1, padding, "constant", value)


def ConstantPad2d(padding: int | Sequence[int], value: float) -> Layer:
    return _padding_layer("ConstantPad", 2, padding, "constant", value)


def ConstantPad3d(padding: int | Sequence[int], value: float) -> Layer:
    return _padding_layer("ConstantPad", 3, padding, "constant", value)


def CircularPad1d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("CircularPad", 1, padding, "circular")


def CircularPad2d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("CircularPad", 2, padding, "circular")


def CircularPad3d(padding: int | Sequence[int]) -> Layer:
    return _padding_layer("CircularPad", 3, padding, "circular")


for _fn in (ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d,
            ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
            CircularPad1d, CircularPad2d, CircularPad3d):
    _document(_fn, _fn.__name__[:-2], int(_fn.__name__[-2]))
del _fn

__all__ = ["pad", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
           "ReplicationPad2d", "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d",
           "ConstantPad2d", "ConstantPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d"]
