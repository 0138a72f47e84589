"""Writes the tutorial notebooks (without outputs) from the cells below, so they stay reviewable.

    python notebooks/build_notebooks.py        # rewrites 01_layers_tour.ipynb and 02_train_cnn.ipynb

Edit the cells here, not the .ipynb files; tests/test_notebooks.py executes the notebooks.
"""

from __future__ import annotations

import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))

SETUP = '''\
import os, sys
# the repository root, so that `examples` imports when the notebook runs from notebooks/
sys.path.insert(0, os.path.abspath(".."))

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import funclayers as fl
import funclayers.functional as F

key = jax.random.PRNGKey(0)'''

TOUR_SETUP = SETUP + '''


def run(layer, *inputs, params=None, state=None, training=False, **kwargs):
    """`layer.apply` compiled once with jax.jit (python keyword arguments static): (out, new_state).

    Without jit, JAX runs a layer op by op and compiles each op for each new shape; one jit per
    layer is much faster for a tour that calls many layers once.
    """
    if params is None:
        params, state = layer.init(key)
    fn = jax.jit(lambda params, state, *inputs: layer.apply(params, state, *inputs, training=training, **kwargs))
    return fn(params, state, *inputs)


def randn(*shape):
    """Standard-normal test data (numpy's generator: no per-shape compilation as jax.random has)."""
    return jnp.asarray(np.random.default_rng(sum(shape)).standard_normal(shape), jnp.float32)'''

TOUR = [
    ("md", """\
# A tour of torch's layers in funclayers

funclayers rebuilds `torch.nn`'s layers for JAX as pairs of pure functions:

```python
layer = fl.Conv2d(3, 16, 3, padding=1)          # torch's constructor, names and defaults
params, state = layer.init(key)                 # torch's parameter names, shapes and layouts
out, state = layer.apply(params, state, x, training=False)
```

This notebook walks through convolution, folding, pooling, unpooling, padding and batch
normalisation, checking a few identities numerically and drawing what a picture says better.
The helper `run(layer, x)` below is `layer.apply(*layer.init(key), x)` under `jax.jit`."""),
    ("code", TOUR_SETUP),
    ("md", """\
## Convolution parameters

`stride`, `padding` and `dilation` set the output size exactly as in torch:
`out = floor((in + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1`."""),
    ("code", '''\
x = randn(1, 3, 32, 32)
for kwargs in [dict(), dict(padding=1), dict(stride=2, padding=1), dict(dilation=2), dict(padding="same"),
               dict(stride=2, dilation=3, padding=2)]:
    conv = fl.Conv2d(3, 8, 3, **kwargs)
    y = jax.eval_shape(lambda x: conv.apply(*conv.init(key), x)[0], x)   # shapes only, no compute
    print(f"{conv.name:90s} (1, 3, 32, 32) -> {y.shape}")
params, state = conv.init(key)
print("weight layout (out, in/groups, kH, kW):", params["weight"].shape, " bias:", params["bias"].shape)'''),
    ("md", """\
### Dilation: a 3x3 kernel that sees a 5x5 window

The receptive field of one output pixel is where the gradient of that pixel with respect to
the input is non-zero. With `dilation=2` the nine taps of a 3x3 kernel spread over a 5x5 window."""),
    ("code", '''\
def receptive_field(dilation):
    conv = fl.Conv2d(1, 1, 3, dilation=dilation, bias=False)
    params = {"weight": jnp.ones((1, 1, 3, 3))}
    centre = lambda x: conv.apply(params, {}, x)[0][0, 0, 3, 3]   # one output pixel
    return jax.grad(centre)(jnp.zeros((1, 1, 11, 11)))[0, 0]

fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
for ax, d in zip(axes, (1, 2)):
    field = receptive_field(d)
    rows, cols = np.nonzero(np.asarray(field))
    ax.imshow(field, cmap="Blues", vmin=0, vmax=1.5)
    ax.set_title(f"dilation={d}: {len(rows)} taps over "
                 f"{rows.max() - rows.min() + 1}x{cols.max() - cols.min() + 1}")
    ax.set_xticks(range(11)); ax.set_yticks(range(11))
    ax.set_xticks([i - 0.5 for i in range(12)], minor=True); ax.set_yticks([i - 0.5 for i in range(12)], minor=True)
    ax.grid(which="minor", color="w", lw=0.5); ax.tick_params(which="minor", length=0)
plt.tight_layout()
assert receptive_field(2).astype(bool).sum() == 9 and np.ptp(np.nonzero(np.asarray(receptive_field(2)))[0]) == 4'''),
    ("md", """\
### Groups: fewer parameters

`groups=g` splits the channels into `g` independent convolutions: the weight is
`(out, in/g, k, k)`, so the parameter count drops by `g`. `groups=in_channels` is a depthwise
convolution."""),
    ("code", '''\
groups = [1, 2, 4, 8, 32]
counts = []
for g in groups:
    params, _ = jax.eval_shape(fl.Conv2d(32, 64, 3, groups=g, bias=False).init, key)   # shapes only
    counts.append(params["weight"].size)
    print(f"groups={g:2d}: weight {params['weight'].shape}, {counts[-1]:6d} parameters")
assert all(c * g == counts[0] for c, g in zip(counts, groups))
plt.figure(figsize=(5, 2.8))
plt.bar([str(g) for g in groups], counts)
plt.xlabel("groups"); plt.ylabel("weight parameters"); plt.title("Conv2d(32, 64, 3, groups=g)");'''),
    ("md", """\
## Convolution = Unfold + matrix multiply + reshape

`Unfold` extracts every sliding 3x3 patch as a column: `(N, C*k*k, L)` with `L` patch positions.
A convolution is then one matrix product of the flattened kernel with these columns; `Fold`
is the inverse arrangement (summing overlaps), here putting the result back onto the grid."""),
    ("code", '''\
x = randn(2, 3, 10, 12)
conv = fl.Conv2d(3, 8, 3, padding=1, stride=2)
params, _ = conv.init(jax.random.PRNGKey(1))
expected, _ = run(conv, x, params=params, state={})          # (2, 8, 5, 6)

cols, _ = run(fl.Unfold(kernel_size=3, padding=1, stride=2), x)            # (2, 27, 30)
out = params["weight"].reshape(8, -1) @ cols + params["bias"][:, None]       # (2, 8, 30)
as_reshape = out.reshape(2, 8, 5, 6)
as_fold, _ = run(fl.Fold(output_size=(5, 6), kernel_size=1), out)           # 1x1 "patches" back on the grid
print("columns:", cols.shape, " conv:", expected.shape)
print("max |unfold-matmul-reshape - conv| =", float(jnp.abs(as_reshape - expected).max()))
print("max |unfold-matmul-fold    - conv| =", float(jnp.abs(as_fold - expected).max()))
np.testing.assert_allclose(as_reshape, expected, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(as_fold, expected, rtol=1e-5, atol=1e-5)'''),
    ("md", """\
`Fold(Unfold(x))` sums every pixel once per patch that covers it; dividing by the same for an
all-ones input gives `x` back."""),
    ("code", '''\
unfold, fold = fl.Unfold(3, padding=1), fl.Fold((10, 12), 3, padding=1)
fold_unfold = jax.jit(lambda t: fold.apply({}, {}, unfold.apply({}, {}, t)[0])[0])
coverage = fold_unfold(jnp.ones_like(x))
np.testing.assert_allclose(fold_unfold(x) / coverage, x, rtol=1e-5, atol=1e-6)
print("patches covering each pixel (corner, edge, inside):", coverage[0, 0, 0, 0], coverage[0, 0, 0, 5], coverage[0, 0, 5, 5])'''),
    ("md", """\
## Pooling: max, average, adaptive

Pooling layers keep torch's arguments (`kernel_size`, `stride`, `padding`, `ceil_mode`, ...).
Adaptive pooling picks the windows that give a requested output size."""),
    ("code", '''\
from sklearn.datasets import load_digits
image = jnp.asarray(load_digits().images[0] / 16.0, jnp.float32)[None, None]   # (1, 1, 8, 8)
pools = {
    "input 8x8": None,
    "MaxPool2d(2)": fl.MaxPool2d(2),
    "AvgPool2d(3, stride=1, padding=1)": fl.AvgPool2d(3, stride=1, padding=1),
    "AdaptiveAvgPool2d((3, 5))": fl.AdaptiveAvgPool2d((3, 5)),
    "AdaptiveMaxPool2d(3)": fl.AdaptiveMaxPool2d(3),
}
fig, axes = plt.subplots(1, len(pools), figsize=(15, 3))
for ax, (title, layer) in zip(axes, pools.items()):
    out = image if layer is None else run(layer, image)[0]
    ax.imshow(out[0, 0], cmap="gray_r"); ax.set_title(f"{title}\\n{tuple(out.shape[2:])}", fontsize=9)
    ax.axis("off")
plt.tight_layout()'''),
    ("md", """\
## MaxUnpool2d: putting maxima back where they came from

`MaxPool2d(..., return_indices=True)` returns the flat index of each maximum; `MaxUnpool2d`
scatters the pooled values back there, zeros elsewhere. When pooling dropped a row or column
(a 5x5 input pooled by 2 gives 2x2), pass `output_size` to recover the 5x5 shape."""),
    ("code", '''\
x = jnp.arange(16.0).reshape(1, 1, 4, 4) % 7
(pooled, indices), _ = run(fl.MaxPool2d(2, return_indices=True), x)
unpooled, _ = run(fl.MaxUnpool2d(2), pooled, indices)
print("input\\n", x[0, 0], "\\npooled\\n", pooled[0, 0], "\\nindices\\n", indices[0, 0], "\\nunpooled\\n", unpooled[0, 0])
assert (unpooled.reshape(-1)[indices.reshape(-1)] == pooled.reshape(-1)).all()

x5 = randn(1, 1, 5, 5)
(pooled5, indices5), _ = run(fl.MaxPool2d(2, return_indices=True), x5)
unpooled5, _ = run(fl.MaxUnpool2d(2), pooled5, indices5, output_size=(5, 5))
print("5x5 -> pooled", pooled5.shape, "-> unpooled with output_size=(5, 5):", unpooled5.shape)
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, (title, img) in zip(axes, [("input 5x5", x5), ("MaxPool2d(2)", pooled5), ("MaxUnpool2d -> 5x5", unpooled5)]):
    ax.imshow(img[0, 0], cmap="coolwarm", vmin=-2, vmax=2); ax.set_title(title); ax.axis("off")
plt.tight_layout()'''),
    ("md", """\
## Padding modes side by side

The same digit padded by 4 pixels on every side with each of torch's padding layers (the
convolutions' `padding_mode` uses the same rules)."""),
    ("code", '''\
pads = {
    "ZeroPad2d": fl.ZeroPad2d(4),
    "ConstantPad2d(value=0.5)": fl.ConstantPad2d(4, 0.5),
    "ReflectionPad2d": fl.ReflectionPad2d(4),
    "ReplicationPad2d": fl.ReplicationPad2d(4),
    "CircularPad2d": fl.CircularPad2d(4),
}
fig, axes = plt.subplots(1, len(pads), figsize=(15, 3.2))
for ax, (title, layer) in zip(axes, pads.items()):
    out, _ = run(layer, image)
    ax.imshow(out[0, 0], cmap="gray_r", vmin=0, vmax=1)
    ax.add_patch(plt.Rectangle((3.5, 3.5), 8, 8, fill=False, ec="red", lw=1.5))   # the original image
    ax.set_title(f"{title}\\n{tuple(out.shape[2:])}", fontsize=9); ax.axis("off")
plt.tight_layout()
# conv's padding_mode agrees with the padding layer followed by an unpadded conv
conv = fl.Conv2d(1, 2, 3, padding=4, padding_mode="reflect")
params, _ = conv.init(key)
plain = fl.Conv2d(1, 2, 3)
np.testing.assert_allclose(run(conv, image, params=params, state={})[0],
                           run(plain, run(pads["ReflectionPad2d"], image)[0], params=params, state={})[0],
                           rtol=1e-5, atol=1e-6)'''),
    ("md", """\
## BatchNorm on every input rank

`BatchNorm1d` takes `(N, C)` and `(N, C, L)`, `BatchNorm2d` `(N, C, H, W)`, `BatchNorm3d`
`(N, C, D, H, W)`. In training mode each channel is normalised with its batch statistics and
the new running statistics come back in the state (torch's momentum and unbiased variance);
in eval mode the running statistics are used."""),
    ("code", '''\
cases = [(fl.BatchNorm1d(4), (32, 4)), (fl.BatchNorm1d(4), (8, 4, 16)),
         (fl.BatchNorm2d(4), (8, 4, 6, 6)), (fl.BatchNorm3d(4), (4, 4, 3, 5, 5))]
for bn, shape in cases:
    x = 3.0 + 2.0 * randn(*shape)
    y, new_state = run(bn, x, training=True)
    y, x = np.asarray(y), np.asarray(x)
    axes_ = tuple(i for i in range(len(shape)) if i != 1)
    print(f"{bn.name.split(',')[0] + ')':16s} {str(shape):18s} per-channel mean {np.abs(y.mean(axes_)).max():.1e}, "
          f"std {y.std(axes_).mean():.4f}; running_mean {np.round(np.asarray(new_state['running_mean']), 3)}, "
          f"batches {int(new_state['num_batches_tracked'])}")
    np.testing.assert_allclose(new_state["running_mean"], 0.1 * x.mean(axes_), rtol=1e-5)
bn = fl.BatchNorm2d(4)
eval_out, _ = run(bn, jnp.ones((2, 4, 3, 3)))   # fresh running stats: (x - 0) / sqrt(1 + eps)
print("eval mode uses running statistics:", float(eval_out[0, 0, 0, 0]))
try:
    run(bn, jnp.ones((4, 3)))
except ValueError as err:
    print("wrong rank ->", err)'''),
]

TRAIN = [
    ("md", """\
# Training a CNN with funclayers and optax

scikit-learn's 8x8 handwritten digits ship inside the package (no download). We train a small
conv net (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Dropout, Linear) with a jit-compiled
optax step that threads BatchNorm's running statistics and a dropout key, plot the loss and
accuracy curves, and save then restore params, state and optimizer state bit for bit.

The loop lives in `examples/digits.py`, shared with the script `examples/train_digits.py`."""),
    ("code", SETUP + '''

from examples.digits import (digits_cnn, load_checkpoint, load_digits_data, make_eval_fn, make_optimizer,
                             make_train_step, plot_history, save_checkpoint, train, trees_bit_equal)'''),
    ("md", "## The data: 1797 images of 8x8 pixels, standardised, split 80/20"),
    ("code", '''\
data = load_digits_data()
print("train", data.x_train.shape, data.y_train.shape, " test", data.x_test.shape)
fig, axes = plt.subplots(1, 10, figsize=(12, 1.6))
for ax, img, label in zip(axes, data.x_train, data.y_train):
    ax.imshow(img[0], cmap="gray_r"); ax.set_title(int(label)); ax.axis("off")'''),
    ("md", """\
## The model

torch's module names and layouts: `params["0"]["weight"]` is the first convolution's
`(out, in, kH, kW)` weight, and `state` holds the BatchNorm buffers."""),
    ("code", '''\
model = digits_cnn()
print(model)
params, state = jax.jit(model.init)(key)
print({name: value.shape for name, value in fl.state_dict(params, state).items()})'''),
    ("md", """\
## One training step

`make_train_step` jit-compiles: forward in training mode (batch statistics, dropout with the
given key), cross-entropy, gradient, Adam update. The new BatchNorm state comes back with the
new params."""),
    ("code", "import inspect\nprint(inspect.getsource(make_train_step))"),
    ("md", "## Train, with a tqdm progress bar"),
    ("code", '''\
result = train(model, data, epochs=10, batch_size=64, learning_rate=3e-3)
print(f"{result.seconds:.1f} s; final train accuracy {result.history['train_acc'][-1]:.4f}, "
      f"test accuracy {result.history['test_acc'][-1]:.4f}")
assert result.history["test_acc"][-1] > 0.95'''),
    ("code", "plot_history(result.history);"),
    ("md", """\
## Save and restore: a bit-exact round trip

Every leaf of params, state and optimizer state goes into one `.npz`, named by its path in the
tree; restoring fills trees of the same structure (`model.init` and `optimizer.init`, evaluated
for their shapes only)."""),
    ("code", '''\
import tempfile
path = os.path.join(tempfile.mkdtemp(), "digits.npz")
save_checkpoint(path, result.params, result.state, result.opt_state)
with np.load(path) as stored:
    print(len(stored.files), "arrays, e.g.", stored.files[:3], stored.files[-2:])

params_like, state_like = jax.eval_shape(model.init, key)                  # shapes and dtypes only
opt_like = jax.eval_shape(make_optimizer(3e-3, 1).init, params_like)
params, state, opt_state = load_checkpoint(path, params_like, state_like, opt_like)
for name, a, b in [("params", params, result.params), ("state", state, result.state),
                   ("opt_state", opt_state, result.opt_state)]:
    print(f"{name:9s} bit-exact: {trees_bit_equal(a, b)}")
    assert trees_bit_equal(a, b)'''),
    ("md", "The restored model predicts exactly what the trained one does, and training resumes from the restored optimizer state."),
    ("code", '''\
evaluate = make_eval_fn(model)
before = evaluate(result.params, result.state, data.x_test, data.y_test)
after = evaluate(params, state, data.x_test, data.y_test)
print("test loss/accuracy before saving:", [float(v) for v in before], " after restoring:", [float(v) for v in after])
assert [float(v) for v in before] == [float(v) for v in after]

steps_per_epoch = len(data.x_train) // 64
step = make_train_step(model, make_optimizer(3e-3, 10 * steps_per_epoch))
params, state, opt_state, loss, acc = step(params, state, opt_state, data.x_train[:64], data.y_train[:64],
                                           jax.random.PRNGKey(7))
print(f"one more step from the restored checkpoint: loss {float(loss):.4f}, batch accuracy {float(acc):.3f}")'''),
]


def build(cells: list[tuple[str, str]], title: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells])
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: rebuilding gives the same file
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["title"] = title
    return nb


def write(filename: str, cells: list[tuple[str, str]], title: str) -> None:
    """Build, validate and write notebooks/<filename> (every notebook builder's last step)."""
    nb = build(cells, title)
    nbformat.validate(nb)
    path = os.path.join(HERE, filename)
    with open(path, "w") as fh:
        nbformat.write(nb, fh)
    print("wrote", path)


def main() -> None:
    write("01_layers_tour.ipynb", TOUR, "A tour of torch's layers in funclayers")
    write("02_train_cnn.ipynb", TRAIN, "Training a CNN with funclayers and optax")


if __name__ == "__main__":
    main()
