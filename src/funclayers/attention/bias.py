"""Causal attention biases accepted as `attn_mask`; torch.nn.attention.bias."""

from __future__ import annotations

import enum
import warnings

import jax
import jax.numpy as jnp

__all__ = ["causal_upper_left", "causal_lower_right", "CausalVariant", "CausalBias"]


class CausalVariant(enum.IntEnum):
    """Which corner a causal mask's diagonal starts from; torch.nn.attention.bias.CausalVariant.

    `UPPER_LEFT`: `tril(ones(L, S))` (what `is_causal=True` means); `LOWER_RIGHT`:
    `tril(ones(L, S), diagonal=S - L)`, the last query sees every key (decoding with a cache).
    The two are the same when L == S.

    Args:
      value: 1 (`UPPER_LEFT`) or 2 (`LOWER_RIGHT`), torch's values.

    Example:
      >>> int(CausalVariant.UPPER_LEFT), int(CausalVariant.LOWER_RIGHT)
      (1, 2)
    """

    UPPER_LEFT = 1
    LOWER_RIGHT = 2


@jax.tree_util.register_pytree_node_class
class CausalBias:
    """A causal mask given by its variant and sizes; torch.nn.attention.bias.CausalBias.

    Pass it as `attn_mask` to `scaled_dot_product_attention`: the upper-left variant (or any
    variant with L == S) runs as `is_causal=True` (blockwise kernels skip the hidden key blocks);
    the lower-right variant with L != S is materialised as a bool mask, as torch does on CPU. A
    pytree without leaves, so it can be an argument of a jitted function.

    Args:
      variant: a `CausalVariant`.
      seq_len_q: L, the query length.
      seq_len_kv: S, the key/value length.

    Shape: stands for a bool mask of shape (seq_len_q, seq_len_kv).

    Example:
      >>> causal_lower_right(3, 4)._materialize().astype(int)
      Array([[1, 1, 0, 0],
             [1, 1, 1, 0],
             [1, 1, 1, 1]], dtype=int32)
    """

    _is_causal_bias = True  # what scaled_dot_product_attention looks for (no import cycle)

    def __init__(self, variant: CausalVariant, seq_len_q: int, seq_len_kv: int) -> None:
        if not isinstance(variant, CausalVariant):
            raise TypeError(f"CausalBias: variant must be a CausalVariant, got {type(variant).__name__}.")
        self.variant, self.seq_len_q, self.seq_len_kv = variant, int(seq_len_q), int(seq_len_kv)
        if seq_len_q > seq_len_kv and variant == CausalVariant.LOWER_RIGHT:
            # torch warns of NaNs; here (as in torch's CPU kernels) the fully masked rows are 0
            warnings.warn("Lower right causal bias will produce NaNs in the output when seq_len_q > seq_len_kv!",
                          stacklevel=2)

    def _materialize(self, device: object = None) -> jax.Array:
        """The bool mask (True = may attend) of shape (seq_len_q, seq_len_kv)."""
        del device
        offset = 0 if self.variant == CausalVariant.UPPER_LEFT else self.seq_len_kv - self.seq_len_q
        return jnp.tril(jnp.ones((self.seq_len_q, self.seq_len_kv), bool), k=offset)

    def tree_flatten(self):
        return (), (self.variant, self.seq_len_q, self.seq_len_kv)

    @classmethod
    def tree_unflatten(cls, aux, children):
        del children
        bias = object.__new__(cls)
        bias.variant, bias.seq_len_q, bias.seq_len_kv = aux
        return bias

    def __repr__(self) -> str:
        return f"CausalBias(variant={self.variant.name}, seq_len_q={self.seq_len_q}, seq_len_kv={self.seq_len_kv})"


def _sizes(who: str, size: tuple) -> tuple[int, int]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if len(size) != 2:
        raise ValueError(f"{who} only supports 2D tensors: expected (seq_len_q, seq_len_kv), got {size}.")
    return size


def causal_upper_left(*size: int) -> CausalBias:
    """A causal bias aligned to the upper-left corner (`is_causal=True`); torch.nn.attention.bias.causal_upper_left.

    Args:
      size: (seq_len_q, seq_len_kv).

    Shape: stands for a bool mask (L, S) equal to `tril(ones(L, S))`.

    Example:
      >>> causal_upper_left(3, 4)._materialize().astype(int)
      Array([[1, 0, 0, 0],
             [1, 1, 0, 0],
             [1, 1, 1, 0]], dtype=int32)
    """
    return CausalBias(CausalVariant.UPPER_LEFT, *_sizes("causal_upper_left", size))


def causal_lower_right(*size: int) -> CausalBias:
    """A causal bias aligned to the lower-right corner; torch.nn.attention.bias.causal_lower_right.

    Args:
      size: (seq_len_q, seq_len_kv).

    Shape: stands for a bool mask (L, S) equal to `tril(ones(L, S), diagonal=S - L)`.

    Example:
      >>> q, kv = jnp.ones((1, 1, 2, 4)), jnp.ones((1, 1, 5, 4))
      >>> F.scaled_dot_product_attention(q, kv, kv, attn_mask=causal_lower_right(2, 5)).shape
      (1, 1, 2, 4)
    """
    return CausalBias(CausalVariant.LOWER_RIGHT, *_sizes("causal_lower_right", size))
