"""Lazy layers: torch.nn.LazyLinear, LazyConv*, LazyConvTranspose*, LazyBatchNorm*, LazyInstanceNorm*.

torch's lazy modules leave one size (`in_features`, `in_channels`, `num_features`) open until the
first forward, then materialise into the plain class. Here `init(rng, x)` reads that size from the
example input's shape (an array or a `jax.ShapeDtypeStruct`: nothing is computed) and returns the
materialised layer's params and state, named, shaped and distributed as torch's; `apply` reads
the size back from the params' shapes. Torch's rule for each size is kept, including its quirks
(`LazyInstanceNorm*` takes `num_features` from dim 1 even of an unbatched input, as torch does).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from ._batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from ._conv import Conv1d, Conv2d, Conv3d
from ._conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ._instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from ._layer import Layer
from ._linear import Linear
from ._utils import fmt_shape


def _renamed(kind: str, label: str, error: ValueError) -> ValueError:
    """The materialised layer's configuration error, told of the lazy layer that was configured."""
    message = re.sub(rf"\b{kind}\b", label.split("(")[0], str(error), count=1)
    return ValueError(message if message != str(error) else f"{label}: {error}")


def _lazy_layer(kind: str, label: str, what: str, build: Callable[[int], Layer],
                infer: Callable[[tuple], int], size_of: Callable[[dict, dict], int | None],
                needs_example: bool = True, probe: int = 1) -> Layer:
    """A lazy layer: `build(size)` is the materialised layer once `infer(example shape)` gives the size.

    `size_of(params, state)` reads the size back from the materialised params (None when they
    carry none, e.g. a norm without affine parameters or running statistics: torch's size 0);
    `probe` is a size valid for any configuration, built once to raise configuration errors.
    """
    build = functools.cache(build)
    try:  # configuration errors at construction, as torch raises them
        build(probe)
    except ValueError as error:
        raise _renamed(kind, label, error) from None

    def materialised(size: int) -> Layer:
        try:
            return build(size)
        except ValueError as error:
            raise _renamed(kind, label, error) from None

    def init(rng, *example_inputs, **example_kwargs):
        del example_kwargs
        if not example_inputs:
            if not needs_example:  # nothing to materialise: torch's has_uninitialized_params() is False
                return materialised(0).init(rng)
            raise ValueError(f"{label} needs an example input to infer {what}: call init(rng, x), "
                             f"x an array or jax.ShapeDtypeStruct of the input's shape.")
        return materialised(infer(fmt_shape(example_inputs[0]))).init(rng)

    def apply(params, state, input, *args, rng=None, training=False, **kwargs):
        size = size_of(params, state)
        return materialised(0 if size is None else size).apply(params, state, input, *args, rng=rng,
                                                               training=training, **kwargs)

    return Layer(init, apply, label)


def _check_example(label: str, shape: tuple, ranks: tuple[int, ...], expected: str) -> None:
    if len(shape) not in ranks:
        raise ValueError(f"{label}: expected {expected} example input, got shape {shape}.")


def LazyLinear(out_features: int, bias: bool = True, device: Any = None, dtype: Any = None) -> Layer:
    """A Linear whose `in_features` comes from the example input; torch.nn.LazyLinear.

    `init(rng, x)` sets in_features = x.shape[-1] and returns `Linear(in_features, out_features)`'s
    params (weight kaiming-uniform with a=sqrt(5), bias U(-1/sqrt(in), 1/sqrt(in)), as torch).

    Args:
      out_features: size of each output sample.
      bias: if False, the layer will not learn an additive bias. Default: True.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype; None means float32. Default: None.

    Shape:
      `(*, in_features)` -> `(*, out_features)`, in_features inferred at init.

    Example:
      >>> layer = fl.LazyLinear(30)
      >>> params, state = layer.init(jax.random.PRNGKey(0), jnp.ones((128, 20)))
      >>> params["weight"].shape
      (30, 20)
      >>> layer.apply(params, state, jnp.ones((128, 20)))[0].shape
      (128, 30)
    """
    del device
    label = f"LazyLinear(out_features={out_features}, bias={bool(bias)})"

    def infer(shape: tuple) -> int:
        _check_example(label, shape, tuple(range(1, 64)), "an at least 1D (*, in_features)")
        return shape[-1]

    return _lazy_layer("Linear", label, "in_features", lambda size: Linear(size, out_features, bias, dtype=dtype),
                       infer, lambda params, state: params["weight"].shape[1])


def _conv_label(kind: str, out_channels: int, kernel_size: Any, **options: Any) -> str:
    shown = "".join(f", {k}={v!r}" for k, v in options.items())
    return f"Lazy{kind}(out_channels={out_channels}, kernel_size={kernel_size!r}{shown})"


def _in_channels(label: str, n: int) -> Callable[[tuple], int]:
    def infer(shape: tuple) -> int:  # torch's _LazyConvXdMixin._get_in_channels
        _check_example(label, shape, (n + 1, n + 2), f"a {n + 1}D (unbatched) or {n + 2}D (batched)")
        return shape[1] if len(shape) == n + 2 else shape[0]

    return infer


def _lazy_conv(n: int, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
               dtype) -> Layer:
    kind = f"Conv{n}d"
    label = _conv_label(kind, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                        groups=groups, bias=bool(bias), padding_mode=padding_mode)
    plain = {1: Conv1d, 2: Conv2d, 3: Conv3d}[n]

    def build(size: int) -> Layer:
        return plain(size, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                     dtype=dtype)

    return _lazy_layer(kind, label, "in_channels", build, _in_channels(label, n),
                       lambda params, state: params["weight"].shape[1] * groups, probe=groups)


def _lazy_conv_transpose(n: int, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, dtype) -> Layer:
    kind = f"ConvTranspose{n}d"
    label = _conv_label(kind, out_channels, kernel_size, stride=stride, padding=padding,
                        output_padding=output_padding, groups=groups, bias=bool(bias), dilation=dilation,
                        padding_mode=padding_mode)
    plain = {1: ConvTranspose1d, 2: ConvTranspose2d, 3: ConvTranspose3d}[n]

    def build(size: int) -> Layer:
        return plain(size, out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
                     padding_mode, dtype=dtype)

    return _lazy_layer(kind, label, "in_channels", build, _in_channels(label, n),
                       lambda params, state: params["weight"].shape[0], probe=groups)


_CONV_DOC = """A {kind} whose `in_channels` comes from the example input; torch.nn.Lazy{kind}.

    `init(rng, x)` sets in_channels = x.shape[1] (batched) or x.shape[0] (unbatched), as torch,
    and returns `{kind}(in_channels, out_channels, ...)`'s params with torch's initial distributions.

    Args:
      out_channels: channels produced by the convolution.
      kernel_size: size of the kernel (int or tuple).
      stride: stride of the convolution. Default: 1.
      padding: {padding}
{extra}      groups: number of blocked connections from input channels to output channels; must
        divide in_channels and out_channels. Default: 1.
      bias: if True, adds a learnable bias to the output. Default: True.
{dilation}      padding_mode: {padding_mode}
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' dtype; None means float32. Default: None.

    Shape:
      {shape}, C_in inferred at init.

    Example:
      >>> conv = fl.Lazy{kind}(4, 3)
      >>> x = jnp.ones({x_shape})
      >>> params, state = conv.init(jax.random.PRNGKey(0), x)
      >>> params["weight"].shape
      {weight_shape}
      >>> conv.apply(params, state, x)[0].shape
      {y_shape}
    """

_CONV_ARGS = dict(
    padding="padding added to all sides of the input (int, tuple, 'valid' or 'same'). Default: 0.",
    extra="", dilation="      dilation: spacing between kernel elements. Default: 1.\n",
    padding_mode="'zeros', 'reflect', 'replicate' or 'circular'. Default: 'zeros'.")
_CONV_T_ARGS = dict(
    padding="dilation * (kernel_size - 1) - padding zeros added to both sides of each input dim.\n"
            "        Default: 0.",
    extra="      output_padding: additional size added to one side of each dimension in the output shape.\n"
          "        Default: 0.\n",
    dilation="      dilation: spacing between kernel elements. Default: 1.\n",
    padding_mode="only 'zeros' is supported, as in torch. Default: 'zeros'.")


def LazyConv1d(out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
               groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
               dtype: Any = None) -> Layer:
    del device
    return _lazy_conv(1, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype)


def LazyConv2d(out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
               groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
               dtype: Any = None) -> Layer:
    del device
    return _lazy_conv(2, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype)


def LazyConv3d(out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
               groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device: Any = None,
               dtype: Any = None) -> Layer:
    del device
    return _lazy_conv(3, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype)


def LazyConvTranspose1d(out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                        output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                        padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> Layer:
    del device
    return _lazy_conv_transpose(1, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                                dilation, padding_mode, dtype)


def LazyConvTranspose2d(out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                        output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                        padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> Layer:
    del device
    return _lazy_conv_transpose(2, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                                dilation, padding_mode, dtype)


def LazyConvTranspose3d(out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                        output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                        padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> Layer:
    del device
    return _lazy_conv_transpose(3, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                                dilation, padding_mode, dtype)


for _n, _x, _w, _y in ((1, (2, 3, 8), (4, 3, 3), (2, 4, 6)), (2, (2, 3, 8, 8), (4, 3, 3, 3), (2, 4, 6, 6)),
                       (3, (2, 3, 5, 5, 5), (4, 3, 3, 3, 3), (2, 4, 3, 3, 3))):
    _spatial = ", ".join("LDHW"[4 - _n:] if _n == 3 else ("L" if _n == 1 else "HW"))
    globals()[f"LazyConv{_n}d"].__doc__ = _CONV_DOC.format(
        kind=f"Conv{_n}d", shape=f"(N, C_in, {_spatial}) or (C_in, {_spatial}) -> (N, C_out, ...) or (C_out, ...)",
        x_shape=_x, weight_shape=_w, y_shape=_y, **_CONV_ARGS)
    globals()[f"LazyConvTranspose{_n}d"].__doc__ = _CONV_DOC.format(
        kind=f"ConvTranspose{_n}d", x_shape=_x, weight_shape=(3, 4) + _w[2:],
        y_shape=(2, 4) + tuple(s + 2 for s in _x[2:]),
        shape=f"(N, C_in, {_spatial}) or (C_in, {_spatial}) -> (N, C_out, ...) or (C_out, ...)", **_CONV_T_ARGS)


def _norm_size(params: dict, state: dict) -> int | None:
    if "weight" in params:
        return params["weight"].shape[0]
    if "running_mean" in state:
        return state["running_mean"].shape[0]
    return None


def _lazy_norm(kind: str, plain: Callable[..., Layer], eps, momentum, affine, track_running_stats, dtype,
               bias) -> Layer:
    label = (f"Lazy{kind}(eps={eps}, momentum={momentum}, affine={affine}, "
             f"track_running_stats={track_running_stats}, bias={bias})")

    def infer(shape: tuple) -> int:  # torch's _LazyNormBase.initialize_parameters: input.shape[1]
        _check_example(label, shape, tuple(range(2, 64)), "an at least 2D (N, C, *)")
        return shape[1]

    return _lazy_layer(kind, label, "num_features",
                       lambda size: plain(size, eps, momentum, affine, track_running_stats, dtype=dtype, bias=bias),
                       infer, _norm_size, needs_example=affine or track_running_stats)


def LazyBatchNorm1d(eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                    track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                    bias: bool = True) -> Layer:
    del device
    return _lazy_norm("BatchNorm1d", BatchNorm1d, eps, momentum, affine, track_running_stats, dtype, bias)


def LazyBatchNorm2d(eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                    track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                    bias: bool = True) -> Layer:
    del device
    return _lazy_norm("BatchNorm2d", BatchNorm2d, eps, momentum, affine, track_running_stats, dtype, bias)


def LazyBatchNorm3d(eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                    track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                    bias: bool = True) -> Layer:
    del device
    return _lazy_norm("BatchNorm3d", BatchNorm3d, eps, momentum, affine, track_running_stats, dtype, bias)


def LazyInstanceNorm1d(eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                       track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                       bias: bool = True) -> Layer:
    del device
    return _lazy_norm("InstanceNorm1d", InstanceNorm1d, eps, momentum, affine, track_running_stats, dtype, bias)


def LazyInstanceNorm2d(eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                       track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                       bias: bool = True) -> Layer:
    del device
    return _lazy_norm("InstanceNorm2d", InstanceNorm2d, eps, momentum, affine, track_running_stats, dtype, bias)


def LazyInstanceNorm3d(eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                       track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                       bias: bool = True) -> Layer:
    del device
    return _lazy_norm("InstanceNorm3d", InstanceNorm3d, eps, momentum, affine, track_running_stats, dtype, bias)


_NORM_DOC = """A {kind} whose `num_features` comes from the example input; torch.nn.Lazy{kind}.

    `init(rng, x)` sets num_features = x.shape[1], as torch does ({note}), and returns
    `{kind}(num_features, ...)`'s params (weight ones, bias zeros) and buffers (running_mean zeros,
    running_var ones, num_batches_tracked 0). Without affine parameters or running statistics
    there is nothing to infer, and `init(rng)` needs no example (torch's num_features stays 0).

    Args:
      eps: a value added to the denominator for numerical stability. Default: 1e-5.
      momentum: the value used for the running_mean and running_var computation{momentum_none}.
        Default: 0.1.
      affine: if True, the layer has learnable per-channel `weight` and `bias`. Default: True
        (torch's default for the lazy class).
      track_running_stats: if True, the layer keeps running_mean / running_var, used in eval.
        Default: True.
      device: ignored (JAX places arrays itself). Default: None.
      dtype: the parameters' and running statistics' dtype; None means float32. Default: None.
      bias: keyword only: learn the additive `bias` too (only with affine). Default: True.

    Shape:
      {shape} -> the same shape, C inferred at init.

    Example:
      >>> norm = fl.Lazy{kind}()
      >>> x = jnp.arange(12.0).reshape({x_shape})
      >>> params, state = norm.init(jax.random.PRNGKey(0), x)
      >>> params["weight"].shape, state["running_mean"].shape
      ((2,), (2,))
      >>> norm.apply(params, state, x)[0].shape
      {x_shape}
    """

for _kind, _shape, _x, _note in (
        ("BatchNorm1d", "(N, C) or (N, C, L)", (3, 2, 2), "the channel dim"),
        ("BatchNorm2d", "(N, C, H, W)", (3, 2, 2, 1), "the channel dim"),
        ("BatchNorm3d", "(N, C, D, H, W)", (3, 2, 2, 1, 1), "the channel dim"),
        ("InstanceNorm1d", "(N, C, L)", (3, 2, 2), "dim 1 even of an unbatched input, which then fails"),
        ("InstanceNorm2d", "(N, C, H, W)", (3, 2, 2, 1), "dim 1 even of an unbatched input, which then fails"),
        ("InstanceNorm3d", "(N, C, D, H, W)", (3, 2, 2, 1, 1), "dim 1 even of an unbatched input, which then "
                                                               "fails")):
    globals()[f"Lazy{_kind}"].__doc__ = _NORM_DOC.format(
        kind=_kind, shape=_shape, x_shape=_x, note=_note,
        momentum_none="; None: a cumulative average" if _kind.startswith("Batch") else "")

__all__ = ["LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
           "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d",
           "LazyInstanceNorm2d", "LazyInstanceNorm3d"]
