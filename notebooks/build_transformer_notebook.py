"""Writes notebooks/04_transformer.ipynb (without outputs) from the cells below.

    python notebooks/build_transformer_notebook.py

Edit the cells here, not the .ipynb file; tests/test_notebooks.py executes the notebook and checks
that the committed file is what this script writes.
"""

from __future__ import annotations

from build_notebooks import write

FILENAME = "04_transformer.ipynb"
TITLE = "Training a Transformer with funclayers and optax"

CELLS = [
    ("md", """\
# Training a Transformer to reverse digit sequences

`fl.Transformer` is torch's `nn.Transformer`: the same constructor, parameter names, masks and
numerics. Here a small one (2 encoder and 2 decoder layers, d_model 64) learns to reverse
sequences of 3 to 8 digits, with

- padding masks (`src_key_padding_mask`, `tgt_key_padding_mask`, `memory_key_padding_mask`) for
  the variable lengths,
- the causal `tgt_mask` from `fl.Transformer.generate_square_subsequent_mask` for teacher forcing,
- an optax training loop with a tqdm progress bar, the loss curve, greedy decoding, and the
  decoder's cross-attention weights drawn as a heat map (reversal shows up as an anti-diagonal)."""),
    ("code", '''\
import math
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from tqdm.auto import tqdm

import funclayers as fl

start = time.perf_counter()
PAD, BOS, VOCAB = 10, 11, 12     # digits 0-9, padding, begin-of-sequence
MAX_LEN, D_MODEL = 8, 64


def make_batch(rng, batch):
    """Random digit sequences of length 3..8, padded; the target is the reversed sequence."""
    lengths = rng.integers(3, MAX_LEN + 1, batch)
    src = np.full((batch, MAX_LEN), PAD)
    tgt = np.full((batch, MAX_LEN), PAD)
    for i, n in enumerate(lengths):
        digits = rng.integers(0, 10, n)
        src[i, :n], tgt[i, :n] = digits, digits[::-1]
    tgt_in = np.concatenate([np.full((batch, 1), BOS), tgt[:, :-1]], axis=1)  # teacher forcing: shifted right
    return jnp.asarray(src), jnp.asarray(tgt_in), jnp.asarray(tgt)


src, tgt_in, tgt = make_batch(np.random.default_rng(0), 2)
print("src   ", src[0], "\\ntgt_in", tgt_in[0], "\\ntarget", tgt[0])'''),
    ("md", """\
## The model: embeddings, `fl.Transformer`, an output head

A composite `fl.Module` holds the children under torch-style names; its forward builds the masks.
Boolean padding masks mark padded positions with `True`, as in torch."""),
    ("code", '''\
def seq2seq(m, src, tgt_in):
    def embed(tokens):
        return m.embed(jax.nn.one_hot(tokens, VOCAB)) * math.sqrt(D_MODEL) + m.pos[: tokens.shape[1]]

    src_pad, tgt_pad = src == PAD, tgt_in == PAD
    # the causal mask as booleans (True = hidden), like the padding masks: torch warns on mixed mask types
    causal = fl.Transformer.generate_square_subsequent_mask(tgt_in.shape[1]) == -jnp.inf
    h = m.transformer(embed(src), embed(tgt_in), tgt_mask=causal, tgt_is_causal=True,
                      src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
    return m.head(h)


model = fl.Module(
    seq2seq,
    embed=fl.Linear(VOCAB, D_MODEL, bias=False),
    pos=fl.Parameter(lambda key: 0.02 * jax.random.normal(key, (MAX_LEN, D_MODEL))),
    transformer=fl.Transformer(D_MODEL, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                               dim_feedforward=128, dropout=0.0, batch_first=True),
    head=fl.Linear(D_MODEL, VOCAB),
)
params, state = model.init(jax.random.PRNGKey(0))
names = fl.state_dict(params, state)
print(len(names), "tensors,", sum(v.size for v in names.values()), "parameters; e.g.")
print([n for n in names if n.startswith("transformer.decoder.layers.0.")][:6])'''),
    ("md", "## Train with optax, masking the padded positions out of the loss"),
    ("code", '''\
optimizer = optax.adam(optax.warmup_cosine_decay_schedule(0.0, 3e-3, 40, 400))
opt_state = optimizer.init(params)


def loss_fn(params, src, tgt_in, tgt):
    logits, _ = model.apply(params, state, src, tgt_in)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, tgt)
    keep = tgt != PAD
    return jnp.sum(losses * keep) / jnp.sum(keep)


@jax.jit
def train_step(params, opt_state, src, tgt_in, tgt):
    loss, grads = jax.value_and_grad(loss_fn)(params, src, tgt_in, tgt)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


data_rng, losses = np.random.default_rng(1), []
for step in (bar := tqdm(range(400), desc="training")):
    params, opt_state, loss = train_step(params, opt_state, *make_batch(data_rng, 96))
    losses.append(float(loss))
    if step % 50 == 0:
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
print(f"final loss {np.mean(losses[-20:]):.4f}")

plt.figure(figsize=(6, 3))
plt.semilogy(losses)
plt.xlabel("step"); plt.ylabel("cross-entropy"); plt.title("training loss")
plt.tight_layout(); plt.show()'''),
    ("md", """\
## Greedy decoding

The decoder runs once per output position on the tokens produced so far (the causal mask hides
the rest of the buffer)."""),
    ("code", '''\
@jax.jit
def greedy(params, src):
    def body(t, tgt_in):
        logits, _ = model.apply(params, state, src, tgt_in)
        return tgt_in.at[:, t + 1].set(jnp.argmax(logits[:, t], -1))

    tgt_in = jnp.full(src.shape, PAD).at[:, 0].set(BOS)
    tgt_in = jax.lax.fori_loop(0, MAX_LEN - 1, body, tgt_in)
    logits, _ = model.apply(params, state, src, tgt_in)
    return jnp.argmax(logits, -1)


src, _, tgt = make_batch(np.random.default_rng(2), 1000)
pred = greedy(params, src)
keep = tgt != PAD
token_acc = float(jnp.sum((pred == tgt) & keep) / jnp.sum(keep))
seq_acc = float(jnp.mean(jnp.all((pred == tgt) | ~keep, axis=1)))
print(f"held-out token accuracy {token_acc:.3f}, whole sequences reversed exactly {seq_acc:.3f}")
for i in range(3):
    n = int(keep[i].sum())
    print("src", np.asarray(src[i, :n]), "-> predicted", np.asarray(pred[i, :n]))'''),
    ("md", """\
## Where the decoder looks: cross-attention weights

We rerun the last decoder layer's attention over the encoder memory with `need_weights=True`
(per head, `average_attn_weights=False`). The children of a composite are reachable through
`layer.children`, and their parameters under the same names in `params`."""),
    ("code", '''\
def child(layer, name):
    return dict(layer.children)[name]


transformer = child(model, "transformer")
encoder, decoder = child(transformer, "encoder"), child(transformer, "decoder")
dec_layer = child(child(decoder, "layers"), "1")
p = params["transformer"]


def cross_attention(src, tgt_in):
    def embed(tokens):
        return fl.functional.linear(jax.nn.one_hot(tokens, VOCAB), params["embed"]["weight"]) * math.sqrt(D_MODEL) \\
            + params["pos"][: tokens.shape[1]]

    src_pad, tgt_pad = src == PAD, tgt_in == PAD
    causal = fl.Transformer.generate_square_subsequent_mask(tgt_in.shape[1]) == -jnp.inf
    memory, _ = encoder.apply(p["encoder"], state["transformer"]["encoder"], embed(src),
                              src_key_padding_mask=src_pad)
    first = child(child(decoder, "layers"), "0")
    first_state = state["transformer"]["decoder"]["layers"]["0"]
    x, _ = first.apply(p["decoder"]["layers"]["0"], first_state, embed(tgt_in), memory, tgt_mask=causal,
                       tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
    lp = p["decoder"]["layers"]["1"]
    (sa, _), _ = child(dec_layer, "self_attn").apply(lp["self_attn"], {}, x, x, x, attn_mask=causal,
                                                     key_padding_mask=tgt_pad, need_weights=False)
    x, _ = child(dec_layer, "norm1").apply(lp["norm1"], {}, x + sa)
    (_, weights), _ = child(dec_layer, "multihead_attn").apply(lp["multihead_attn"], {}, x, memory, memory,
                                                               key_padding_mask=src_pad, average_attn_weights=False)
    return weights  # (batch, heads, target position, source position)


src, tgt_in, tgt = make_batch(np.random.default_rng(3), 1)
weights = np.asarray(cross_attention(src, tgt_in))[0]
n = int((src[0] != PAD).sum())
fig, axes = plt.subplots(1, weights.shape[0], figsize=(12, 3))
for h, ax in enumerate(axes):
    ax.imshow(weights[h, :n, :], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"head {h}"); ax.set_xlabel("source position")
    ax.set_xticks(range(MAX_LEN), [str(int(t)) if t != PAD else "·" for t in src[0]])
axes[0].set_ylabel("target position")
plt.suptitle(f"cross-attention of the last decoder layer, source {np.asarray(src[0, :n])}")
plt.tight_layout(); plt.show()
print(f"padded source positions get weight {weights[:, :, n:].max():.1e}; notebook ran in "
      f"{time.perf_counter() - start:.0f} s")'''),
]


def main() -> None:
    write(FILENAME, CELLS, TITLE)


if __name__ == "__main__":
    main()
