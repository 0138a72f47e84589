"""torch.nn.attention as `funclayers.attention`: the SDPA backend switch, causal biases, flex attention.

- `sdpa_kernel(backends)` / `SDPBackend`: which kernel `scaled_dot_product_attention` (and so
  `MultiheadAttention` and the Transformer family) may use;
- `bias`: `causal_upper_left`, `causal_lower_right` (`CausalBias`), accepted as `attn_mask`;
- `flex_attention`: `flex_attention(query, key, value, score_mod, block_mask)` with
  `create_block_mask`, `create_mask`, `and_masks`, `or_masks`, `noop_mask`, `BlockMask`.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from typing import Any

from .. import _sdpa
from . import bias, flex_attention

__all__ = ["SDPBackend", "sdpa_kernel", "bias", "flex_attention"]


class SDPBackend(enum.IntEnum):
    """The kernels of `scaled_dot_product_attention`; torch.nn.attention.SDPBackend (same members and values).

    What each member selects in funclayers (torch's names for what is, here, plain JAX):

    - `MATH`: the dense kernel, the whole (L, S) score matrix (torch's math path);
    - `FLASH_ATTENTION`: flash attention in tiles with its closed-form backward (no `attn_mask`,
      no dropout, as torch's flash kernel; `is_causal` is fine);
    - `EFFICIENT_ATTENTION`: the blockwise online softmax under `jax.checkpoint` (any mask,
      dropout): memory O(L x block), torch's memory-efficient kernel's role;
    - `CUDNN_ATTENTION`: `jax.nn.dot_product_attention`'s fused GPU kernel (off CPU, float16 /
      bfloat16, no mask or dropout);
    - `OVERRIDEABLE`: no kernel in funclayers (never applies); `ERROR`: none.

    Args:
      value: torch's integer value of the member (`SDPBackend(1)` is `FLASH_ATTENTION`).

    Example:
      >>> int(SDPBackend.FLASH_ATTENTION), SDPBackend.MATH.name
      (1, 'MATH')
    """

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends: Any, set_priority: bool = False) -> Iterator[dict]:
    """Restrict the kernels `scaled_dot_product_attention` may use; torch.nn.attention.sdpa_kernel.

    Inside the context, each call picks our usual kernel (the one measured fastest for its shape)
    if it is enabled, else the first enabled one that applies in torch's priority order (flash,
    efficient, math, cudnn); with `set_priority=True`, the first that applies in the order given.
    When none applies (flash with an `attn_mask`, cudnn on CPU, `SDPBackend.ERROR` alone) the call
    raises torch's "No viable backend" error. See `SDPBackend` for what each member selects.

    The choice is read when a function is traced: a `jax.jit` function keeps the kernel it was
    traced with; call it first inside the context (or pass `backends=` to
    `scaled_dot_product_attention`, which is part of the traced call).

    Args:
      backends: an `SDPBackend` or a list of them.
      set_priority: whether the order of `backends` is their priority order. Default: False.

    Example:
      >>> q = jnp.ones((1, 2, 4, 8))
      >>> with sdpa_kernel(SDPBackend.MATH):
      ...     out = F.scaled_dot_product_attention(q, q, q)
      >>> out.shape
      (1, 2, 4, 8)
      >>> with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
      ...     F.scaled_dot_product_attention(q, q, q, attn_mask=jnp.ones((4, 4), bool))
      Traceback (most recent call last):
      ...
      funclayers._utils.TorchRuntimeError: scaled_dot_product_attention: No viable backend ...
    """
    if isinstance(backends, SDPBackend):
        backends = [backends]
    if not isinstance(backends, (list, tuple)) or not all(isinstance(b, SDPBackend) for b in backends):
        raise TypeError(f"sdpa_kernel: Backend must be an instance of SDPBackend or a list of SDPBackend "
                        f"instances, got {backends!r}.")
    order = tuple(dict.fromkeys(int(b) for b in backends if b != SDPBackend.ERROR))
    _sdpa._backend_choice.append((frozenset(order), order if set_priority else None))
    try:
        yield {}
    finally:
        _sdpa._backend_choice.pop()
