"""Writes notebooks/03_sequence_model.ipynb (without outputs) from the cells below.

    python notebooks/build_sequence_notebook.py

A module of its own next to build_notebooks.py (whose `build` it reuses), so that the recurrent
family's tutorial is edited in one place; tests/test_notebooks.py executes the notebook and checks
that the committed file is what this script writes.
"""

from __future__ import annotations

from build_notebooks import write

FILENAME = "03_sequence_model.ipynb"
TITLE = "A character-level GRU language model with funclayers and optax"

SEQUENCE = [
    ("md", """\
# A character-level GRU language model

Real text that ships with every Python: the docstrings of the standard library. We cut them into
lines of different lengths, train a GRU (`fl.GRU`, torch's parameters and gate order) to predict
the next character with a jit-compiled optax loop, and sample new "docstrings" at the end.

The batches have **variable lengths**. Two ways to run them, with the same result:
- torch's way: a `PackedSequence` (`funclayers.rnn.pack_padded_sequence`, as
  `torch.nn.utils.rnn`); its lengths are concrete, so each new length pattern compiles anew;
- funclayers' `lengths=` keyword: the padded batch and a *traced* length per line, so one
  compiled training step serves every batch."""),
    ("code", '''\
import inspect, time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from tqdm.auto import tqdm

import funclayers as fl
from funclayers.rnn import pack_padded_sequence, pad_packed_sequence

key = jax.random.PRNGKey(0)'''),
    ("md", "## The data: lines of the standard library's docstrings"),
    ("code", '''\
import collections, functools, itertools, json, os, pathlib, random, re, statistics, string, textwrap

lines = []
for module in (collections, functools, itertools, json, os, pathlib, random, re, statistics, string, textwrap):
    for name, obj in sorted(vars(module).items()):
        doc = inspect.getdoc(obj) if not name.startswith("_") else None
        if doc and str(getattr(obj, "__module__", None) or module.__name__).startswith(module.__name__[:2]):
            lines += [line.strip() for line in doc.splitlines() if 20 <= len(line.strip()) <= 64]
lines = sorted(set(line for line in lines if line.isascii()))
random.Random(0).shuffle(lines)
chars = sorted(set("".join(lines)))
vocab = ["<pad>", "<bos>", "<eos>"] + chars
index = {c: i for i, c in enumerate(vocab)}
V, T = len(vocab), 66  # a line: <bos>, up to 64 characters, <eos>
print(f"{len(lines)} lines, {V} symbols; e.g.")
for line in lines[:5]:
    print("   ", line)'''),
    ("md", """\
Each line becomes `<bos> c_1 ... c_n <eos>`, padded to `T`; the model reads `tokens[:-1]` and
predicts `tokens[1:]`. `lengths` counts the steps the model reads for each line."""),
    ("code", '''\
def encode(line):
    ids = [1] + [index[c] for c in line] + [2]
    return ids + [0] * (T - len(ids))

tokens = np.array([encode(line) for line in lines], np.int32)
lengths = np.array([len(line) + 1 for line in lines], np.int32)  # inputs: <bos> + characters
n_test = 128
train_tokens, test_tokens = tokens[n_test:], tokens[:n_test]
train_lengths, test_lengths = lengths[n_test:], lengths[:n_test]
print("train", train_tokens.shape, " test", test_tokens.shape,
      " lengths from", lengths.min(), "to", lengths.max())
plt.figure(figsize=(5, 2)); plt.hist(lengths, bins=30)
plt.xlabel("steps per line"); plt.title("variable lengths");'''),
    ("md", """\
## The model: one-hot characters, a GRU, a linear read-out

`fl.GRU(V, 192, batch_first=True)` has torch's parameters (`weight_ih_l0` is (3 * 192, V), gates
r, z, n), so a torch `state_dict` would load into it unchanged."""),
    ("code", '''\
hidden = 192
gru = fl.GRU(V, hidden, batch_first=True)
head = fl.Linear(hidden, V)

def init(key):
    k1, k2 = jax.random.split(key)
    return {"gru": gru.init(k1)[0], "head": head.init(k2)[0]}

def logits_fn(params, inputs, lengths=None, h0=None):
    x = jax.nn.one_hot(inputs, V)
    (out, h_n), _ = gru.apply(params["gru"], {}, x, h0, lengths=lengths)
    return head.apply(params["head"], {}, out)[0], h_n

params = init(key)
print(gru, head)
print({name: value.shape for name, value in fl.state_dict(params).items()})'''),
    ("md", """\
## lengths= gives what packing gives

On a small batch: the GRU on a `PackedSequence` (torch's API, here `enforce_sorted=False`)
and on the padded batch with `lengths=` agree, past each line's end the `lengths=` output is zero,
and `h_n` is each line's state at its own last character."""),
    ("code", '''\
x = jax.nn.one_hot(train_tokens[:4, :-1], V)
n = train_lengths[:4]
packed = pack_padded_sequence(x, n, batch_first=True, enforce_sorted=False)
(out_packed, h_packed), _ = gru.apply(params["gru"], {}, packed)
padded, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=T - 1)
(out_lengths, h_lengths), _ = gru.apply(params["gru"], {}, x, lengths=jnp.asarray(n))
print("lengths", n, " batch_sizes of the packed batch", out_packed.batch_sizes[:5], "...")
print("max |difference|: output", float(jnp.abs(padded - out_lengths).max()),
      " h_n", float(jnp.abs(h_packed - h_lengths).max()))'''),
    ("md", """\
## One jit-compiled training step

The loss averages the cross-entropy over the real steps only (a mask from `lengths`); gradients
clipped, Adam. `lengths` is a traced argument: every batch reuses the one compilation."""),
    ("code", '''\
def loss_fn(params, tokens, lengths):
    logits, _ = logits_fn(params, tokens[:, :-1], lengths)
    mask = jnp.arange(T - 1)[None, :] < lengths[:, None]
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:])
    return jnp.sum(nll * mask) / jnp.sum(mask)

optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(3e-3))

@jax.jit
def train_step(params, opt_state, tokens, lengths):
    loss, grads = jax.value_and_grad(loss_fn)(params, tokens, lengths)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

test_loss = jax.jit(loss_fn)
opt_state = optimizer.init(params)
t0 = time.perf_counter()
jax.block_until_ready(train_step(params, opt_state, train_tokens[:64], train_lengths[:64]))
print(f"first call (compile): {time.perf_counter() - t0:.2f} s")'''),
    ("md", "## Train, with a tqdm progress bar"),
    ("code", '''\
batch_size, steps = 64, 160
rng = np.random.default_rng(0)
history = {"step": [], "train": [], "test": []}
t0 = time.perf_counter()
for step in (bar := tqdm(range(steps + 1))):
    idx = rng.choice(len(train_tokens), batch_size, replace=False)
    params, opt_state, loss = train_step(params, opt_state, train_tokens[idx], train_lengths[idx])
    if step % 20 == 0:
        history["step"].append(step)
        history["train"].append(float(loss))
        history["test"].append(float(test_loss(params, test_tokens, test_lengths)))
        bar.set_postfix(loss=f"{history['train'][-1]:.3f}", test=f"{history['test'][-1]:.3f}")
print(f"{time.perf_counter() - t0:.1f} s; test loss {history['test'][0]:.3f} -> {history['test'][-1]:.3f} nats/char")
assert history["test"][-1] < 0.75 * history["test"][0]'''),
    ("code", '''\
plt.figure(figsize=(6, 3.5))
plt.plot(history["step"], history["train"], label="train (batch)")
plt.plot(history["step"], history["test"], label="test (128 lines)")
plt.xlabel("step"); plt.ylabel("cross-entropy (nats / character)"); plt.legend(); plt.title("GRU language model");'''),
    ("md", """\
## Samples

Generation feeds one character at a time: the same `gru.apply` on a length-1 sequence, carrying
`h_n` forward as the next `hx`, inside a `lax.scan` (one compilation for the whole sample)."""),
    ("code", '''\
@jax.jit
def sample(params, key, temperature=0.7):
    def step(carry, key):
        token, h = carry
        logits, h = logits_fn(params, token[:, None], h0=h)
        token = jax.random.categorical(key, logits[:, 0] / temperature)
        return (token, h), token

    start = jnp.ones(8, jnp.int32)  # 8 samples, each starting from <bos>
    h0 = jnp.zeros((1, 8, hidden))
    _, tokens = jax.lax.scan(step, (start, h0), jax.random.split(key, T - 1))
    return tokens.T

for row in np.asarray(sample(params, jax.random.PRNGKey(1))):
    text = "".join(vocab[i] for i in row)
    print("   ", text.split("<eos>")[0].replace("<pad>", "").replace("<bos>", ""))'''),
    ("md", "And the model's most likely next character after a few prompts taken from the test lines:"),
    ("code", '''\
for line in lines[:4]:
    prompt = line[: len(line) // 2]
    logits, _ = logits_fn(params, jnp.asarray([encode(prompt)[: len(prompt) + 1]]))
    guess = vocab[int(jnp.argmax(logits[0, -1]))]
    print(f"    {prompt!r} -> {guess!r}   (actual: {line[len(prompt)]!r})")'''),
]


def main() -> None:
    write(FILENAME, SEQUENCE, TITLE)


if __name__ == "__main__":
    main()
