"""Writes notebooks/07_attention_variants.ipynb (without outputs) from the cells below.

    python notebooks/build_attention_notebook.py

The tutorial of `funclayers.attention` (flex attention); tests/test_notebooks.py executes the
notebook and checks that the committed file is what this script writes.
"""

from __future__ import annotations

from build_notebooks import write

FILENAME = "07_attention_variants.ipynb"
TITLE = "Attention variants with flex attention: a small language model"

CELLS = [
    ("md", """\
# Attention variants with flex attention

`funclayers.attention.flex_attention` is the twin of torch's FlexAttention: an attention variant is
two small JAX functions of scalar indices,

- a `score_mod(score, b, h, q_idx, kv_idx)` that changes a score (ALiBi, relative positions, soft-capping),
- a `mask_mod(b, h, q_idx, kv_idx)` that says which keys a query may see (causal, sliding window,
  documents), turned by `create_block_mask` into a `BlockMask` whose empty blocks are never computed.

torch compiles FlexAttention only under `torch.compile` and has no backward for it on CPU; here it
is plain JAX, so it trains anywhere. We train a tiny character-level language model on text that
ships with every Python (the docstrings of a few standard-library modules) with **causal +
sliding-window** attention and **ALiBi** position biases, look at its attention patterns, and time
its training step against the same model with dense masked attention."""),
    ("code", '''\
import argparse, collections, functools, inspect, json, textwrap, time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import funclayers as fl
import funclayers.functional as F
from funclayers.attention.flex_attention import and_masks, create_block_mask, create_mask, flex_attention

key = jax.random.PRNGKey(0)'''),
    ("md", "## The text: module docstrings of the standard library"),
    ("code", '''\
text = "\\n\\n".join(inspect.getdoc(m) for m in (argparse, collections, functools, json, textwrap))
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
data = np.array([index[c] for c in text], np.int32)
V, T = len(chars), 128  # vocabulary, context length
print(f"{len(text)} characters, {V} symbols, from argparse, collections, functools, json and textwrap")
print(text[:200])'''),
    ("md", """\
## The attention variant: causal + sliding window, ALiBi

Each query sees itself and the 31 characters before it (`and_masks(causal, window)`), and each head
adds a linear distance penalty with its own slope (ALiBi). The block mask (blocks of 32) lists, for
every block of 32 queries, the key blocks that are fully visible (no mask evaluated), partly visible
(the mask_mod evaluated) or hidden (skipped): most of the (128, 128) score matrix is never computed."""),
    ("code", '''\
H, D, WINDOW = 4, 64, 32
slopes = jnp.asarray([2.0 ** (-8 * (h + 1) / H) for h in range(H)])  # ALiBi's geometric slopes

def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

def window(b, h, q_idx, kv_idx):
    return q_idx - kv_idx < WINDOW

def alibi(score, b, h, q_idx, kv_idx):
    return score - slopes[h] * (q_idx - kv_idx)

mask_mod = and_masks(causal, window)
block_mask = create_block_mask(mask_mod, None, None, T, T, BLOCK_SIZE=32)
print(block_mask)
print(f"{block_mask.sparsity():.1f}% of the blocks skipped")

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(create_mask(mask_mod, None, None, T, T)[0, 0], cmap="Blues")
axes[0].set_title("mask_mod: who sees whom")
listed = np.asarray(block_mask.to_dense()[0, 0])  # 1 where a block is partial or full
full = np.zeros((4, 4))
for i in range(4):
    for j in np.asarray(block_mask.full_kv_indices[0, 0, i, : int(block_mask.full_kv_num_blocks[0, 0, i])]):
        full[i, j] = 1
axes[1].imshow(listed + full, cmap="Greens", vmin=0, vmax=2)
axes[1].set_title("blocks: skipped / partial / full")
for ax in axes:
    ax.set_xlabel("key"); ax.set_ylabel("query")
plt.show()'''),
    ("md", """\
## The model

Two transformer blocks (pre-norm, 4 heads of 16, a 256-wide MLP) built from funclayers layers;
`attend` is the only place the attention variant appears, so the same model runs with
`flex_attention` or with dense `scaled_dot_product_attention` and a materialised mask + bias."""),
    ("code", '''\
LAYERS = 2
embed, norm, qkv, proj = fl.Embedding(V, D), fl.LayerNorm(D), fl.Linear(D, 3 * D), fl.Linear(D, D)
up, down, head = fl.Linear(D, 4 * D), fl.Linear(4 * D, D), fl.Linear(D, V)

def init(key):
    keys = iter(jax.random.split(key, 16))
    blocks = [{name: layer.init(next(keys))[0] for name, layer in
               (("norm1", norm), ("qkv", qkv), ("proj", proj), ("norm2", norm), ("up", up), ("down", down))}
              for _ in range(LAYERS)]
    return {"embed": embed.init(next(keys))[0], "blocks": blocks, "norm": norm.init(next(keys))[0],
            "head": head.init(next(keys))[0]}

def apply(layer, params, x):
    return layer.apply(params, {}, x)[0]

def flex_attend(q, k, v):
    return flex_attention(q, k, v, score_mod=alibi, block_mask=block_mask)

# the same attention, dense: a (H, T, T) float mask holding ALiBi's bias and -inf where masked
positions = jnp.arange(T)
dense_bias = jnp.where(create_mask(mask_mod, None, None, T, T)[0],
                       -slopes[:, None, None] * (positions[:, None] - positions[None, :]), -jnp.inf)

def dense_attend(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=dense_bias)

def model(params, tokens, attend):
    x = apply(embed, params["embed"], tokens)  # (B, T, D)
    for p in params["blocks"]:
        q, k, v = jnp.split(apply(qkv, p["qkv"], apply(norm, p["norm1"], x)), 3, axis=-1)
        heads = lambda t: t.reshape(t.shape[0], T, H, D // H).transpose(0, 2, 1, 3)  # (B, H, T, D/H)
        y = attend(heads(q), heads(k), heads(v)).transpose(0, 2, 1, 3).reshape(x.shape)
        x = x + apply(proj, p["proj"], y)
        x = x + apply(down, p["down"], jax.nn.gelu(apply(up, p["up"], apply(norm, p["norm2"], x))))
    return apply(head, params["head"], apply(norm, params["norm"], x))

def loss_fn(params, batch, attend):
    logits = model(params, batch[:, :-1], attend)
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:]).mean()

params = init(key)
print(sum(x.size for x in jax.tree.leaves(params)), "parameters")'''),
    ("md", "## Training with optax under `jax.jit`"),
    ("code", '''\
optimizer = optax.adam(3e-3)

@functools.partial(jax.jit, static_argnums=3)
def train_step(params, opt_state, batch, attend):
    loss, grads = jax.value_and_grad(loss_fn)(params, batch, attend)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

def batches(seed, size=16):
    rng = np.random.default_rng(seed)
    while True:
        starts = rng.integers(0, len(data) - T - 1, size)
        yield jnp.asarray(np.stack([data[s:s + T + 1] for s in starts]))

opt_state, stream = optimizer.init(params), batches(0)
for step in range(151):
    params, opt_state, loss = train_step(params, opt_state, next(stream), flex_attend)
    if step % 50 == 0:
        print(f"step {step:3d}  loss {float(loss):.3f}")'''),
    ("md", """\
The same parameters give the same loss through dense attention with the materialised mask and bias
(the two are the same function; only the work done differs):"""),
    ("code", '''\
batch = next(batches(1))
evaluate = jax.jit(loss_fn, static_argnums=2)
flex_loss, dense_loss = (float(evaluate(params, batch, a)) for a in (flex_attend, dense_attend))
print(f"flex {flex_loss:.6f}  dense {dense_loss:.6f}")'''),
    ("md", """\
## The attention patterns

`return_aux=AuxRequest(lse=True)` gives each query's log-sum-exp, so the attention weights of any
query are `exp(score - lse)`: here for the first block's four heads on one line of text. Each head
looks back at most 31 characters; the heads with steep ALiBi slopes look mostly at the last few."""),
    ("code", '''\
from funclayers.attention.flex_attention import AuxRequest

tokens = batch[:1, :-1]
x = apply(embed, params["embed"], tokens)
p = params["blocks"][0]
q, k, v = jnp.split(apply(qkv, p["qkv"], apply(norm, p["norm1"], x)), 3, axis=-1)
q, k = (t.reshape(1, T, H, D // H).transpose(0, 2, 1, 3) for t in (q, k))
_, aux = flex_attention(q, k, k, score_mod=alibi, block_mask=block_mask, return_aux=AuxRequest(lse=True))
scores = jnp.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(D // H) + dense_bias
weights = jnp.exp(scores - aux.lse[..., None])[0]  # (H, T, T); each row sums to 1

fig, axes = plt.subplots(1, H, figsize=(14, 3.6))
for h, ax in enumerate(axes):
    ax.imshow(weights[h, :64, :64], cmap="magma")
    ax.set_title(f"head {h}, slope {float(slopes[h]):.3f}")
    ax.set_xlabel("key"); ax.set_ylabel("query")
plt.show()
print("rows sum to 1:", bool(jnp.allclose(weights.sum(-1), 1, atol=1e-5)))'''),
    ("md", "## A sample"),
    ("code", '''\
@jax.jit
def next_logits(params, window):
    return model(params, window[None], flex_attend)[0]

context = np.array([index[c] for c in text[:T]], np.int32)
out = []
for _ in range(120):
    token = int(jnp.argmax(next_logits(params, jnp.asarray(context))[-1]))
    out.append(chars[token])
    context = np.concatenate([context[1:], [token]])
print(text[T - 40:T] + " | " + "".join(out))'''),
    ("md", """\
## Step time: flex against dense masked attention

A training step (forward, backward, Adam) of this model at context 128, and of a wider context
(1024, blocks of 128) where the sliding window hides most of the blocks: flex attention computes only
the listed blocks, dense attention the whole (T, T) matrix and then masks it. At this tiny size
the fixed costs dominate; the block skipping pays as the context grows (see benchmarks/README.md for
(2, 8, 4096, 64))."""),
    ("code", '''\
def time_step(attend, params, batch, n=3):
    state = optimizer.init(params)
    jax.block_until_ready(train_step(params, state, batch, attend))  # compile
    start = time.perf_counter()
    for _ in range(n):
        jax.block_until_ready(train_step(params, state, batch, attend))
    return (time.perf_counter() - start) / n * 1e3

print(f"context {T}:  flex {time_step(flex_attend, params, batch):6.1f} ms   "
      f"dense masked {time_step(dense_attend, params, batch):6.1f} ms")'''),
    ("code", '''\
def attention_only_step(L, n=2):
    """Forward + backward of the attention alone at context L: (4, H, L, 16), window 32 + causal, ALiBi."""
    bm = create_block_mask(mask_mod, None, None, L, L, BLOCK_SIZE=128)
    pos = jnp.arange(L)
    bias = jnp.where(create_mask(mask_mod, None, None, L, L)[0],
                     -slopes[:, None, None] * (pos[:, None] - pos[None, :]), -jnp.inf)
    q, k, v, ct = jax.random.normal(key, (4, 4, H, L, D // H))
    flex = jax.jit(jax.grad(lambda q, k, v, bm: jnp.sum(flex_attention(q, k, v, alibi, bm) * ct), (0, 1, 2)))
    dense = jax.jit(jax.grad(lambda q, k, v, bias: jnp.sum(F.scaled_dot_product_attention(q, k, v, bias) * ct),
                             (0, 1, 2)))
    times = {}
    for name, f, extra in (("flex", flex, bm), ("dense masked", dense, bias)):
        jax.block_until_ready(f(q, k, v, extra))
        start = time.perf_counter()
        for _ in range(n):
            jax.block_until_ready(f(q, k, v, extra))
        times[name] = (time.perf_counter() - start) / n * 1e3
    return times

times = attention_only_step(1024)
print(f"attention alone, context 1024:  flex {times['flex']:.1f} ms   dense masked {times['dense masked']:.1f} ms")'''),
]


def main() -> None:
    write(FILENAME, CELLS, TITLE)


if __name__ == "__main__":
    main()
