"""Gradient clipping (torch/nn/utils/clip_grad.py): pure functions of a gradient pytree.

torch clips `p.grad` in place and returns the total norm; here every function takes the
gradients (any pytree of arrays: the `grads` of `jax.grad(loss)(params)`, a list, one array) and
returns new ones: `grads, total_norm = clip_grad_norm_(grads, max_norm)`. The arithmetic is
torch's: the total norm is the `norm_type`-norm of the per-array norms, and the gradients are
scaled by `min(max_norm / (total_norm + 1e-6), 1)`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._utils import TorchRuntimeError

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "clip_grad_norm_transform"]


def _leaves(tensors: Any) -> list:
    """The arrays of `tensors` (None entries dropped, as torch skips parameters without .grad)."""
    return [leaf for leaf in jax.tree_util.tree_leaves(tensors) if leaf is not None]


def _norm_type(who: str, norm_type: Any) -> float:
    try:
        return float(norm_type)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: norm_type must be a number or 'inf', got {norm_type!r}.") from None


def _vector_norm(x: jax.Array, p: float) -> jax.Array:
    """torch.linalg.vector_norm(x, p) of the flattened array (p = inf, -inf, 0 or any other float)."""
    x = jnp.ravel(x)
    if x.size == 0:
        # torch: the norm of an empty tensor is 0 (inf/-inf raise in torch; 0 is the useful answer)
        return jnp.zeros((), x.dtype if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.float32)
    return jnp.linalg.vector_norm(x, ord=p)


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def get_total_norm(tensors: Any, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> jax.Array:
    """The norm of the per-array norms of a pytree of arrays; torch.nn.utils.get_total_norm.

    As if every array were concatenated into one vector: `vector_norm(stack([vector_norm(g, p)
    for g in leaves]), p)`, in the arrays' (promoted) dtype. An empty pytree gives 0.0.

    Args:
      tensors: a pytree of arrays (e.g. gradients), a list of arrays or one array; None leaves
        are skipped, as torch skips parameters without a gradient.
      norm_type: the p of the p-norm: any float, `inf` / `float("inf")` / `"inf"` for the max of
        the absolute values, `-inf` for their min. Default: 2.0.
      error_if_nonfinite: raise when the total norm is NaN or infinite. Eagerly this raises a
        ValueError (also a RuntimeError, what torch raises); under `jax.jit` nothing can be
        raised, and the returned norm is NaN instead. Default: False.
      foreach: accepted for torch's signature and ignored (XLA fuses the per-array norms).
        Default: None.

    Shape: arrays of any shapes -> a scalar (0-d array).

    Example:
      >>> grads = {"weight": jnp.array([[3.0, 0.0], [0.0, 0.0]]), "bias": jnp.array([4.0, 0.0])}
      >>> fl.utils.get_total_norm(grads)
      Array(5., dtype=float32)
      >>> fl.utils.get_total_norm(grads, norm_type="inf")
      Array(4., dtype=float32)
    """
    del foreach
    p = _norm_type("get_total_norm", norm_type)
    leaves = _leaves(tensors)
    if not leaves:
        return jnp.asarray(0.0, jnp.float32)
    norms = [_vector_norm(jnp.asarray(g), p) for g in leaves]
    dtype = jnp.result_type(*norms)
    total = _vector_norm(jnp.stack([n.astype(dtype) for n in norms]), p)
    if error_if_nonfinite:
        if _is_concrete(total):
            if not bool(jnp.isfinite(total)):
                raise TorchRuntimeError(
                    f"The total norm of order {p} for gradients from `parameters` is non-finite, so it cannot be "
                    f"clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
                    f"`error_if_nonfinite=False`")
        else:
            total = jnp.where(jnp.isfinite(total), total, jnp.nan)
    return total


def clip_grads_with_norm_(parameters: Any, max_norm: float, total_norm: Any, foreach: bool | None = None) -> Any:
    """Gradients scaled by `min(max_norm / (total_norm + 1e-6), 1)`; torch.nn.utils.clip_grads_with_norm_.

    torch's `clip_grad_norm_` with the total norm computed beforehand (e.g. by `get_total_norm`,
    across several groups of parameters). Returns the scaled gradients (torch scales `p.grad` in
    place and returns None).

    Args:
      parameters: the gradients, a pytree of arrays (None leaves kept as None).
      max_norm: the largest norm the gradients may have.
      total_norm: their total norm (a scalar).
      foreach: accepted for torch's signature and ignored. Default: None.

    Shape: a pytree of arrays -> the same pytree, each array's shape and dtype kept.

    Example:
      >>> grads = {"weight": jnp.array([3.0, 4.0])}
      >>> fl.utils.clip_grads_with_norm_(grads, 1.0, fl.utils.get_total_norm(grads))["weight"]
      Array([0.5999999 , 0.79999983], dtype=float32)
    """
    del foreach
    max_norm = float(max_norm)
    total_norm = jnp.asarray(total_norm)
    clip_coef = max_norm / (total_norm + 1e-6)
    # torch multiplies even when the coefficient is clamped to 1 (no data-dependent branch)
    clip_coef_clamped = jnp.minimum(clip_coef, 1.0)
    return jax.tree_util.tree_map(lambda g: None if g is None else g * clip_coef_clamped.astype(g.dtype), parameters)


def clip_grad_norm_(parameters: Any, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> tuple[Any, jax.Array]:
    """Gradients rescaled so their total norm is at most `max_norm`; torch.nn.utils.clip_grad_norm_.

    torch's `total = clip_grad_norm_(model.parameters(), max_norm)` becomes
    `grads, total = fl.utils.clip_grad_norm_(grads, max_norm)`: `get_total_norm` followed by
    `clip_grads_with_norm_`, torch's arithmetic (scale `min(max_norm / (total + 1e-6), 1)`). In an
    optax chain use `clip_grad_norm_transform` instead.

    Args:
      parameters: the gradients: a pytree of arrays (None leaves are skipped and kept).
      max_norm: the largest total norm.
      norm_type: the p of the p-norm (`inf` / `"inf"` for the max norm, `-inf` for the min).
        Default: 2.0.
      error_if_nonfinite: raise when the total norm is NaN or infinite (eagerly a ValueError
        that is also a RuntimeError, as torch's; under `jax.jit` the norm, and so every clipped
        gradient, comes back NaN instead). Default: False (scale by the non-finite norm anyway).
      foreach: accepted for torch's signature and ignored. Default: None.

    Returns: `(clipped_grads, total_norm)`: the gradients' pytree and the norm before clipping.

    Shape: a pytree of arrays -> (the same pytree, a scalar).

    Example:
      >>> grads = {"weight": jnp.array([[3.0, 0.0]]), "bias": jnp.array([4.0])}
      >>> clipped, total = fl.utils.clip_grad_norm_(grads, max_norm=1.0)
      >>> total
      Array(5., dtype=float32)
      >>> clipped["bias"]
      Array([0.79999995], dtype=float32)
    """
    total_norm = get_total_norm(parameters, norm_type, error_if_nonfinite, foreach)
    return clip_grads_with_norm_(parameters, max_norm, total_norm, foreach), total_norm


def clip_grad_norm(parameters: Any, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> tuple[Any, jax.Array]:
    """torch's deprecated alias of `clip_grad_norm_`; torch.nn.utils.clip_grad_norm.

    Args:
      parameters: the gradients (a pytree of arrays).
      max_norm: the largest total norm.
      norm_type: the p of the p-norm. Default: 2.0.
      error_if_nonfinite: as in `clip_grad_norm_`. Default: False.
      foreach: accepted for torch's signature and ignored. Default: None.

    Returns: `(clipped_grads, total_norm)`.

    Shape: a pytree of arrays -> (the same pytree, a scalar).

    Example:
      >>> clipped, total = fl.utils.clip_grad_norm([jnp.array([6.0, 8.0])], 5.0)
      >>> total
      Array(10., dtype=float32)
    """
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters: Any, clip_value: float, foreach: bool | None = None) -> Any:
    """Gradients clamped to [-clip_value, clip_value]; torch.nn.utils.clip_grad_value_.

    Args:
      parameters: the gradients, a pytree of arrays (None leaves kept).
      clip_value: the largest absolute value a gradient entry may have.
      foreach: accepted for torch's signature and ignored. Default: None.

    Returns: the clamped gradients (torch clamps `p.grad` in place and returns None).

    Shape: a pytree of arrays -> the same pytree, each array's shape and dtype kept.

    Example:
      >>> fl.utils.clip_grad_value_({"w": jnp.array([-3.0, 0.5, 2.0])}, 1.0)["w"]
      Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    del foreach
    clip_value = float(clip_value)
    return jax.tree_util.tree_map(lambda g: None if g is None else jnp.clip(g, -clip_value, clip_value), parameters)


def clip_grad_norm_transform(max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Any:
    """An optax GradientTransformation doing what torch.nn.utils.clip_grad_norm_ does to `.grad`.

    torch's `clip_grad_norm_(model.parameters(), 1.0); optimizer.step()` becomes
    `optax.chain(fl.utils.clip_grad_norm_transform(1.0), optax.adam(1e-3))`. Unlike
    `optax.clip_by_global_norm` (which scales by `max_norm / norm` only above the threshold), it
    uses torch's `min(max_norm / (norm + 1e-6), 1)` and takes any `norm_type`, so a ported loop
    steps exactly as torch's does. The transformation has no state (`optax.EmptyState()`).

    Args:
      max_norm: the largest total norm of the updates.
      norm_type: the p of the p-norm (`inf` / `"inf"` for the max norm). Default: 2.0.
      error_if_nonfinite: as in `clip_grad_norm_` (eager: raise; under jit: NaN updates).
        Default: False.

    Shape: updates (a pytree of arrays) -> the same pytree, scaled.

    Example:
      >>> import optax
      >>> tx = optax.chain(fl.utils.clip_grad_norm_transform(1.0), optax.sgd(1.0))
      >>> params = {"w": jnp.zeros(2)}
      >>> updates, _ = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(params), params)
      >>> updates["w"]
      Array([-0.5999999 , -0.79999983], dtype=float32)
    """
    import optax

    _norm_type("clip_grad_norm_transform", norm_type)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        clipped, _ = clip_grad_norm_(updates, max_norm, norm_type, error_if_nonfinite)
        return clipped, state

    return optax.GradientTransformation(init_fn, update_fn)


