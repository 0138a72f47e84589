"""Packed sequences: torch.nn.utils.rnn's PackedSequence and its pack/pad helpers, for JAX.

    from funclayers.rnn import pack_padded_sequence, pad_packed_sequence
    packed = pack_padded_sequence(x, lengths=[5, 3, 2], enforce_sorted=False)
    out, h_n = gru.apply(params, state, packed)[0]         # out is a PackedSequence too
    padded, lengths = pad_packed_sequence(out)

A public module (torch's helpers live in `torch.nn.utils.rnn`, not in `torch.nn`), so `from
funclayers.rnn import ...` reads like `from torch.nn.utils.rnn import ...`; the layers themselves are
in `_rnn.py` and `_rnn_cell.py`, torch.nn.modules.rnn's twin.

As in torch, the lengths of a PackedSequence are concrete: `batch_sizes`, `sorted_indices` and
`unsorted_indices` are numpy integer arrays carried as static pytree metadata, and `data` is the
only leaf, so a PackedSequence passes through `jax.jit` and `jax.grad` (a new length pattern
recompiles). For variable-length batches under one compilation, pass a padded batch and a
traced `lengths=` to RNN/LSTM/GRU instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._utils import TorchRuntimeError, fmt_shape


def _int_array(x: Any, what: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.int64).reshape(-1)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError) as err:
        raise TypeError(f"{what} must be concrete (a list, numpy array or concrete jax array), as in torch: "
                        "a PackedSequence's lengths decide its shapes. Under jit pass a padded batch and "
                        "`lengths=` to RNN/LSTM/GRU instead.") from err


@jax.tree_util.register_pytree_node_class
class PackedSequence:
    """Variable-length sequences packed time step by time step; torch.nn.utils.rnn.PackedSequence.

    Unpacks like torch's namedtuple: `data, batch_sizes, sorted_indices, unsorted_indices = packed`.
    Build one with pack_padded_sequence or pack_sequence, not by hand. The arguments are also its
    attributes; `packed.lengths` gives each sequence's length in the original batch order.

    Args:
      data: the steps of all sequences, time-major: the first step of every sequence (longest
        first), then the second step of those that have one, and so on. Or a `(data, batch_sizes)`
        pair, as torch accepts.
      batch_sizes: how many sequences have a step t (concrete; kept as an int64 numpy array). Default: None.
      sorted_indices: the batch order `data` is in, as indices into the original batch (None when
        the batch came sorted). Default: None.
      unsorted_indices: its inverse permutation; default computed from sorted_indices.

    Shape: data (sum(lengths), *); batch_sizes (T,) with T the longest length; sorted_indices and
      unsorted_indices (B,).

    Example:
      >>> packed = pack_sequence([jnp.array([1.0, 2.0, 3.0]), jnp.array([4.0, 5.0])])
      >>> packed.data
      Array([1., 4., 2., 5., 3.], dtype=float32)
      >>> packed.batch_sizes, packed.lengths
      (array([2, 2, 1]), array([3, 2]))
      >>> data, batch_sizes, sorted_indices, unsorted_indices = packed
      >>> sorted_indices is None                # the batch came sorted, longest first
      True
    """

    __slots__ = ("data", "batch_sizes", "sorted_indices", "unsorted_indices")

    def __init__(self, data: Any, batch_sizes: Any = None, sorted_indices: Any = None,
                 unsorted_indices: Any = None):
        if batch_sizes is None:  # torch also accepts PackedSequence((data, batch_sizes))
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise ValueError("PackedSequence: expected data and batch_sizes, or a (data, batch_sizes) pair.")
            data, batch_sizes = data
        self.data = data
        self.batch_sizes = _int_array(batch_sizes, "batch_sizes")
        self.sorted_indices = None if sorted_indices is None else _int_array(sorted_indices, "sorted_indices")
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(self.sorted_indices)
        self.unsorted_indices = None if unsorted_indices is None else _int_array(unsorted_indices,
                                                                                 "unsorted_indices")

    def tree_flatten(self):
        def key(a):
            return None if a is None else tuple(int(v) for v in a)

        return (self.data,), (key(self.batch_sizes), key(self.sorted_indices), key(self.unsorted_indices))

    @classmethod
    def tree_unflatten(cls, aux, children):
        out = object.__new__(cls)
        out.data = children[0]
        out.batch_sizes = np.asarray(aux[0], np.int64)
        out.sorted_indices = None if aux[1] is None else np.asarray(aux[1], np.int64)
        out.unsorted_indices = None if aux[2] is None else np.asarray(aux[2], np.int64)
        return out

    def __iter__(self):
        return iter((self.data, self.batch_sizes, self.sorted_indices, self.unsorted_indices))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        return tuple(self)[i]

    def _replace(self, **fields) -> PackedSequence:
        values = dict(zip(self.__slots__, self))
        values.update(fields)
        return PackedSequence(**values)

    @property
    def lengths(self) -> np.ndarray:
        """The length of each sequence, in the original batch order."""
        return _lengths_from_batch_sizes(self.batch_sizes, self.unsorted_indices)

    def __repr__(self) -> str:
        return (f"PackedSequence(data={self.data!r}, batch_sizes={self.batch_sizes!r}, "
                f"sorted_indices={self.sorted_indices!r}, unsorted_indices={self.unsorted_indices!r})")


def invert_permutation(permutation: Any) -> np.ndarray | None:
    """The inverse of an index permutation (None stays None); torch.nn.utils.rnn.invert_permutation.

    Args:
      permutation: the indices 0..n-1 in some order (concrete), or None.

    Shape: (n,) -> (n,) int64 numpy array.

    Example:
      >>> invert_permutation([2, 0, 1])
      array([1, 2, 0])
    """
    if permutation is None:
        return None
    permutation = _int_array(permutation, "permutation")
    out = np.empty_like(permutation)
    out[permutation] = np.arange(permutation.size)
    return out


def _lengths_from_batch_sizes(batch_sizes: np.ndarray, unsorted_indices: np.ndarray | None) -> np.ndarray:
    """Sorted lengths (longest first) from batch_sizes, then put back in the original order."""
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    lengths = (batch_sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1).astype(np.int64)
    return lengths if unsorted_indices is None else lengths[unsorted_indices]


def _packed_positions(batch_sizes: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(time index, batch index in the original order) of every row of a packed `data`."""
    times = np.repeat(np.arange(batch_sizes.size), batch_sizes)
    ranks = np.concatenate([np.arange(b) for b in batch_sizes]) if batch_sizes.size else np.zeros(0, np.int64)
    return times, order[ranks]


def pack_padded_sequence(input: Any, lengths: Any, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Packs a padded batch of variable-length sequences; torch.nn.utils.rnn.pack_padded_sequence.

    Args:
      input: (T, B, *) padded sequences, or (B, T, *) with batch_first.
      lengths: the length of each sequence (concrete: a list, numpy or jax array), each in [1, T].
      batch_first: input is (B, T, *). Default: False.
      enforce_sorted: lengths must come sorted, longest first (then sorted_indices is None);
        with False the batch is sorted here (stably) and the order kept in sorted_indices. Default: True.

    Shape: (T, B, *) -> PackedSequence with data (sum(lengths), *).

    Example:
      >>> packed = pack_padded_sequence(jnp.ones((5, 3, 4)), [5, 3, 2])
      >>> packed.data.shape
      (10, 4)
    """
    x = jnp.asarray(input)
    lengths = _int_array(lengths, "lengths")
    if x.ndim < 2:
        raise TorchRuntimeError(f"pack_padded_sequence expects an input of at least 2 dimensions (T, B, *), got "
                                f"shape {fmt_shape(x)}.")
    if batch_first:
        x = jnp.swapaxes(x, 0, 1)
    total, batch = x.shape[0], x.shape[1]
    if lengths.size != batch:
        raise TorchRuntimeError(f"pack_padded_sequence: Expected `len(lengths)` to be equal to batch_size, but got "
                                f"{lengths.size} (batch_size={batch}).")
    if batch and lengths.min() <= 0:
        raise TorchRuntimeError("pack_padded_sequence: Length of all samples has to be greater than 0, but found "
                                f"an element in 'lengths' that is <= 0 (lengths={lengths.tolist()}).")
    if batch and lengths.max() > total:
        raise TorchRuntimeError(f"pack_padded_sequence: lengths {lengths.tolist()} exceed the padded length "
                                f"{total} of the input of shape {fmt_shape(input)}.")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise TorchRuntimeError("pack_padded_sequence: `lengths` array must be sorted in decreasing order when "
                                    "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                                    "pack_padded_sequence and/or pack_sequence to sidestep this requirement if "
                                    "you do not need ONNX exportability.")
        sorted_indices = None
        order = np.arange(batch)
    else:
        sorted_indices = np.argsort(-lengths, kind="stable").astype(np.int64)
        order = sorted_indices
    sorted_lengths = lengths[order]
    batch_sizes = (sorted_lengths[None, :] > np.arange(int(sorted_lengths.max()) if batch else 0)[:, None]).sum(1)
    times, rows = _packed_positions(batch_sizes.astype(np.int64), order)
    return PackedSequence(x[times, rows], batch_sizes, sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[jax.Array, np.ndarray]:
    """Pads a PackedSequence back into a batch; torch.nn.utils.rnn.pad_packed_sequence.

    Args:
      sequence: the PackedSequence.
      batch_first: return (B, T, *) instead of (T, B, *). Default: False.
      padding_value: the value past each sequence's end. Default: 0.0.
      total_length: pad to this length (at least the longest sequence) instead of the longest. Default: None.

    Returns: (padded, lengths): the batch in its original order, and each sequence's length (int64
      numpy array, as torch's CPU tensor).

    Shape: data (sum(lengths), *) -> padded (T, B, *) (or (B, T, *) with batch_first), with T the
      longest length (or total_length), and lengths (B,).

    Example:
      >>> packed = pack_sequence([jnp.ones(3), jnp.ones(2)])
      >>> padded, lengths = pad_packed_sequence(packed, batch_first=True)
      >>> padded, lengths
      (Array([[1., 1., 1.],
             [1., 1., 0.]], dtype=float32), array([3, 2]))
    """
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence expects a PackedSequence, got {type(sequence).__name__}.")
    batch_sizes = sequence.batch_sizes
    max_len = batch_sizes.size
    if total_length is not None:
        if total_length < max_len:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, "
                             f"but got total_length={total_length} and max sequence length being {max_len}")
        max_len = int(total_length)
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    order = np.arange(batch) if sequence.sorted_indices is None else sequence.sorted_indices
    data = jnp.asarray(sequence.data)
    times, rows = _packed_positions(batch_sizes, order)
    # one gather from the data with a padding row appended: every (t, b) reads its step or the pad
    source = np.full((max_len, batch), data.shape[0], np.int64)
    source[times, rows] = np.arange(times.size)
    extended = jnp.concatenate([data, jnp.full((1,) + data.shape[1:], padding_value, data.dtype)], axis=0)
    padded = extended[source]
    if batch_first:
        padded = jnp.swapaxes(padded, 0, 1)
    return padded, _lengths_from_batch_sizes(batch_sizes, sequence.unsorted_indices)


def pad_sequence(sequences: Sequence[Any], batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> jax.Array:
    """Stacks variable-length sequences into one padded batch; torch.nn.utils.rnn.pad_sequence.

    Args:
      sequences: arrays of shape (L_i, *) with the same trailing dims.
      batch_first: return (B, T, *) instead of (T, B, *). Default: False.
      padding_value: the value of the padding elements. Default: 0.0.
      padding_side: the side to pad the sequences on, "right" or "left". Default: "right".

    Shape: [(L_i, *)] -> (T, B, *) with T = max L_i.

    Example:
      >>> pad_sequence([jnp.ones((25, 300)), jnp.ones((22, 300))]).shape
      (25, 2, 300)
    """
    if isinstance(sequences, (jax.Array, np.ndarray)):
        sequences = list(sequences)
    if not isinstance(sequences, (list, tuple)):
        raise TypeError("pad_sequence: Expected iterable for input sequences, but got arg of type: "
                        f"{type(sequences)}")
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    if not sequences:
        raise TorchRuntimeError("pad_sequence: received an empty list of sequences")
    arrays = [jnp.asarray(s) for s in sequences]
    trailing = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[1:] != trailing:
            raise TorchRuntimeError(f"pad_sequence: sequence {i} has shape {a.shape}; every sequence must be "
                                    f"(L, *{trailing}) like the first.")
    dtype = jnp.result_type(*arrays)
    max_len = max(a.shape[0] for a in arrays)
    rows = []
    for a in arrays:
        pad = [(0, max_len - a.shape[0]) if padding_side == "right" else (max_len - a.shape[0], 0)]
        rows.append(jnp.pad(a.astype(dtype), pad + [(0, 0)] * (a.ndim - 1), constant_values=padding_value))
    return jnp.stack(rows, axis=0 if batch_first else 1)


def unpad_sequence(padded_sequences: Any, lengths: Any, batch_first: bool = False) -> list[jax.Array]:
    """Splits a padded batch into its sequences; torch.nn.utils.rnn.unpad_sequence.

    Args:
      padded_sequences: the padded batch, (T, B, *) or (B, T, *) with batch_first.
      lengths: the length of each sequence (concrete).
      batch_first: the batch is (B, T, *). Default: False.

    Shape: (T, B, *) (or (B, T, *) with batch_first), lengths (B,) -> [(L_i, *)].

    Example:
      >>> [seq.tolist() for seq in unpad_sequence(jnp.array([[1, 4], [2, 5], [3, 0]]), [3, 2])]
      [[1, 2, 3], [4, 5]]
    """
    x = jnp.asarray(padded_sequences)
    if not batch_first:
        x = jnp.swapaxes(x, 0, 1)
    lengths = _int_array(lengths, "lengths")
    if lengths.size != x.shape[0]:
        raise TorchRuntimeError(f"unpad_sequence: {lengths.size} lengths for a batch of {x.shape[0]} sequences.")
    return [x[i, : int(n)] for i, n in enumerate(lengths)]


def pack_sequence(sequences: Sequence[Any], enforce_sorted: bool = True) -> PackedSequence:
    """Packs a list of variable-length sequences; torch.nn.utils.rnn.pack_sequence.

    Args:
      sequences: arrays of shape (L_i, *) with the same trailing dims.
      enforce_sorted: the sequences must come longest first; with False they are sorted here and
        the order kept in `sorted_indices`. Default: True.

    Shape: [(L_i, *)] -> PackedSequence with data (sum L_i, *).

    Example:
      >>> pack_sequence([jnp.array([1, 2, 3]), jnp.array([4, 5]), jnp.array([6])]).data
      Array([1, 4, 6, 2, 5, 3], dtype=int32)
    """
    lengths = [int(jnp.shape(s)[0]) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[jax.Array]:
    """The sequences of a PackedSequence, in the original order; torch.nn.utils.rnn.unpack_sequence.

    Args:
      packed_sequences: the PackedSequence.

    Shape: data (sum L_i, *) -> [(L_i, *)].

    Example:
      >>> packed = pack_sequence([jnp.array([1, 2, 3]), jnp.array([4, 5])])
      >>> [seq.tolist() for seq in unpack_sequence(packed)]
      [[1, 2, 3], [4, 5]]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence", "pack_sequence", "unpack_sequence"]
