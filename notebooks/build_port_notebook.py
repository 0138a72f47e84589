"""Writes notebooks/06_port_from_torch.ipynb (without outputs) from the cells below.

    python notebooks/build_port_notebook.py

Edit the cells here, not the .ipynb file; tests/test_notebooks.py executes the notebook and checks
that the committed file is what this script writes.
"""

from __future__ import annotations

from build_notebooks import write

FILENAME = "06_port_from_torch.ipynb"
TITLE = "Porting torchvision's ResNet-18 to funclayers in one call, and back"

CELLS = [
    ("md", """\
# Porting torchvision's ResNet-18 in one call, fine-tuning it with optax, and handing it back

`fl.from_torch(torch_model)` turns a live torch model into a funclayers layer with its params and
state, in one call:

```python
model, params, state = fl.from_torch(torchvision.models.resnet18())   # torch -> JAX
...                                                                   # jax.jit, grad, optax
torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in fl.state_dict(params, state).items()})
```

It follows the model's own `forward` code (traced with `torch.fx`, as torchvision's feature
extraction does): the torch.nn layers in it become their funclayers twins (our exact layers and
fast kernels), and the code between them (`torch.flatten`, residual `+=`, `x.mean((2, 3))`,
reshapes, in-place activations) becomes JAX with torch's semantics. Parameters and buffers keep
their `state_dict` names, so the weights go back to torch unchanged.

This notebook ports torchvision's ResNet-18, checks its outputs and gradients against torch,
fine-tunes it under `jax.jit` with optax on scikit-learn's bundled digits (upsampled to 32x32 RGB),
loads the weights back into torch, and ports a segmentation model (an FCN with a ResNet-50
backbone) whose output is drawn next to torch's. Everything is float32 on the CPU,
and the models are freshly initialised: no pretrained weights are downloaded."""),
    ("code", '''\
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import torch
from sklearn.datasets import load_digits, load_sample_image

import funclayers as fl

start = time.perf_counter()


def import_torchvision():
    """torchvision, imported with `torch.library.register_fake` stubbed for the import.

    The registry's torchvision 0.28 wheel is built against CUDA torch: with the CPU torch 2.13 its
    C ops (nms, roi_align, ...) do not load, and `import torchvision` fails while registering fake
    kernels for them. Its models are pure Python and never call those ops, so the import skips the
    registration (the same stub as the tests' tests/torchvision_import.py). With a torchvision
    built for your torch, plain `import torchvision` is all you need.
    """
    real = torch.library.register_fake

    def register_fake(op, fn=None, /, **kwargs):
        return (lambda f: f) if fn is None else fn

    torch.library.register_fake = register_fake
    try:
        import torchvision
        import torchvision.models.segmentation
    finally:
        torch.library.register_fake = real
    return torchvision


torchvision = import_torchvision()


def rel_err(ours, theirs):
    """The norm of the difference over the norm of torch's result."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


# scikit-learn's 8x8 digits, upsampled to 32x32 and repeated to 3 channels, in [-1, 1]
digits = load_digits()
small = jnp.asarray(digits.images[:, None] / 8.0 - 1.0, jnp.float32)             # (1797, 1, 8, 8)
images = np.array(jnp.repeat(fl.functional.interpolate(small, size=32, mode="bilinear"), 3, axis=1))
labels = digits.target.astype(np.int64)
x_train, y_train, x_test, y_test = images[:1500], labels[:1500], images[1500:], labels[1500:]
print("train", x_train.shape, "test", x_test.shape, "classes", np.unique(labels))'''),
    ("md", """\
## One call

torchvision's `resnet18` with a 10-class head. `from_torch` returns the layer, its params (the
torch parameters) and its state (the BatchNorm buffers), named and ordered as the torch
model's `state_dict`."""),
    ("code", '''\
torch.manual_seed(0)
torch_model = torchvision.models.resnet18(num_classes=10)

t0 = time.perf_counter()
model, params, state = fl.from_torch(torch_model)
print(f"from_torch: {time.perf_counter() - t0:.2f} s")

sd = fl.state_dict(params, state)
assert list(sd) == list(torch_model.state_dict())   # the same names, in the same order
print(f"{sum(p.size for p in jax.tree.leaves(params)):,} parameters in {len(jax.tree.leaves(params))} arrays;",
      f"{len(jax.tree.leaves(state))} buffers")
print("params of layer2.0:", [name for name in fl.state_dict(params) if name.startswith("layer2.0.")])
print("state of layer2.0.downsample.1:", {k: v.shape for k, v in state["layer2"]["0"]["downsample"]["1"].items()})'''),
    ("md", """\
## Checking against torch: outputs, updated buffers and gradients

`training=False` is torch's `eval()` (BatchNorm uses its running statistics); `training=True` is
`train()` (batch statistics, and the updated running statistics come back in the new state).
One jitted function gives the loss, the train-mode logits, the new state and the gradients of
every parameter; the fine-tuning below reuses it. torch's train-mode forward updates its buffers
in place, so it runs on a copy. Errors are relative: the norm of the difference over the norm of
torch's result."""),
    ("code", '''\
def loss_fn(params, state, x, y):
    logits, new_state = model.apply(params, state, x, training=True)
    return fl.functional.cross_entropy(logits, y), (logits, new_state)


loss_and_grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
predict = jax.jit(lambda params, state, x: model.apply(params, state, x)[0])   # eval mode

x, y = x_train[:16], y_train[:16]
(loss, (logits, new_state)), grads = loss_and_grads(params, state, x, y)
fl_eval = predict(params, state, x_test)

torch_train = torchvision.models.resnet18(num_classes=10)
torch_train.load_state_dict(torch_model.state_dict())
torch_train.train()
torch_logits = torch_train(torch.from_numpy(x))
torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.from_numpy(y))
torch_loss.backward()
with torch.no_grad():
    torch_eval = torch_model.eval()(torch.from_numpy(x_test)).numpy()

torch_buffers, fl_buffers = torch_train.state_dict(), fl.state_dict(params, new_state)
rows = [("eval logits (297 test digits)", fl_eval, torch_eval),
        ("train logits (16 digits)", logits, torch_logits.detach().numpy()),
        ("train loss", loss, torch_loss.detach().numpy())]
rows += [(f"{name} after train()", fl_buffers[name], torch_buffers[name].numpy())
         for name in ("bn1.running_mean", "layer4.1.bn2.running_var")]
for name, ours, theirs in rows:
    print(f"{name:40s} relative error {rel_err(ours, theirs):.1e}")
    assert rel_err(ours, theirs) < 2e-4, name
assert int(fl_buffers["bn1.num_batches_tracked"]) == int(torch_buffers["bn1.num_batches_tracked"]) == 1

fl_grads = fl.state_dict(grads)                     # the gradient tree, under torch's names
worst = {}
for name, p in torch_train.named_parameters():
    stage = name.split(".")[0]
    worst[stage] = max(worst.get(stage, 0.0), rel_err(fl_grads[name], p.grad.numpy()))
print("\\ngradients, worst relative error per stage:")
for stage, err in worst.items():
    print(f"  {stage:8s} {err:.1e}")
assert max(worst.values()) < 2e-3'''),
    ("md", """\
## Fine-tuning with optax under `jax.jit`

Adam on mini-batches of 32 digits. The step is the jitted `loss_and_grads` above and a jitted
optax update; the BatchNorm running statistics live in `state` and are threaded through, the
optimizer only sees `params`. A few dozen steps from random initialisation are enough to see
the digits being learned; a longer run learns them all."""),
    ("code", '''\
optimizer = optax.adam(1e-3)
opt_state = optimizer.init(params)


@jax.jit
def update(params, opt_state, grads):
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def accuracy(logits, y):
    return float(np.mean(np.argmax(np.asarray(logits), -1) == y))


print(f"test accuracy before: {accuracy(fl_eval, y_test):.3f}")
rng, steps, batch = np.random.default_rng(0), 30, 32
for step in range(steps):
    idx = rng.choice(len(x_train), batch, replace=False)
    (loss, (_, state)), grads = loss_and_grads(params, state, x_train[idx], y_train[idx])
    params, opt_state = update(params, opt_state, grads)
    if step % 10 == 0 or step == steps - 1:
        print(f"step {step:3d}  loss {float(loss):.4f}")
fl_logits = predict(params, state, x_test)
print(f"test accuracy after {steps} steps: {accuracy(fl_logits, y_test):.3f}")
assert accuracy(fl_logits, y_test) > 0.5'''),
    ("md", """\
## Handing the weights back to torch

`fl.state_dict(params, state)` holds the fine-tuned weights and the updated BatchNorm buffers
(`running_mean`, `running_var`, `num_batches_tracked`) under torch's names; `strict=True` checks
that nothing is missing or extra. torch, in `eval()`, now computes what funclayers computes."""),
    ("code", '''\
result = torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in fl.state_dict(params, state).items()},
                                     strict=True)
print(result)
with torch.no_grad():
    torch_logits = torch_model.eval()(torch.from_numpy(x_test)).numpy()
print(f"test accuracy: torch {accuracy(torch_logits, y_test):.3f}, funclayers {accuracy(fl_logits, y_test):.3f}")
print(f"test logits, relative error {rel_err(fl_logits, torch_logits):.1e}")
print("layer1.0.bn1.num_batches_tracked:", int(torch_model.state_dict()["layer1.0.bn1.num_batches_tracked"]))
assert rel_err(fl_logits, torch_logits) < 2e-4'''),
    ("md", """\
## A segmentation model, drawn next to torch's

torchvision's `fcn_resnet50` (a ResNet-50 backbone whose last two stages use dilated
convolutions instead of strides, a convolutional head, and a bilinear upsampling of the logits
back to the input size) returns a dict, `{"out": logits}`; the port returns the same dict. Its
weights are random (no download), so the picture shows what an untrained network computes, not
a segmentation: what matters is that funclayers computes the same map. An untrained network's
plain argmax is one class almost everywhere, so each pixel's class is taken after subtracting
every class's mean over the image. The input is a photo that ships with scikit-learn, reduced
to 96x144."""),
    ("code", '''\
torch.manual_seed(0)
seg_torch = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=21).eval()
seg, seg_params, seg_state = fl.from_torch(seg_torch)

photo = jnp.asarray(load_sample_image("china.jpg"), jnp.float32).transpose(2, 0, 1)[None] / 255.0
photo = fl.functional.interpolate(photo, size=(96, 144), mode="bilinear", antialias=True)
mean, std = jnp.array([0.485, 0.456, 0.406])[:, None, None], jnp.array([0.229, 0.224, 0.225])[:, None, None]
photo_in = np.array((photo - mean) / std)   # a writable copy, for torch.from_numpy


def class_map(logits):
    """Each pixel's class, each class's logits taken relative to their mean over the image."""
    logits = np.asarray(logits)[0]
    return np.argmax(logits - logits.mean((1, 2), keepdims=True), 0)


ours = jax.jit(seg.apply)(seg_params, seg_state, photo_in)[0]["out"]
with torch.no_grad():
    theirs = seg_torch(torch.from_numpy(photo_in))["out"].numpy()
same = np.mean(class_map(ours) == class_map(theirs))
print(f"logits {ours.shape}, relative error {rel_err(ours, theirs):.1e}; the same class at {same:.2%} of pixels")
assert rel_err(ours, theirs) < 2e-4

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
axes[0].imshow(np.asarray(photo[0].transpose(1, 2, 0)).clip(0, 1))
axes[0].set_title("input (96x144)")
for ax, logits, name in ((axes[1], theirs, "torch"), (axes[2], ours, "funclayers")):
    ax.imshow(class_map(logits), cmap="tab20", vmin=0, vmax=20, interpolation="nearest")
    ax.set_title(f"{name}: class map (untrained)")
for ax in axes:
    ax.axis("off")
plt.tight_layout()
plt.show()
print(f"notebook ran in {time.perf_counter() - start:.0f} s")'''),
    ("md", """\
## Notes

- **What converts.** Any model whose `forward` `torch.fx` can trace: the torch.nn layers
  funclayers covers become its layers, and functions of `torch`, `torch.nn.functional`,
  `operator` and tensor methods between them become JAX. Parameters a custom module owns
  directly (a ViT's `class_token`) live in `params` under their `state_dict` names.
- **What does not.** An op with no translation raises `TorchConversionError` naming the op, the
  module path and the source line that called it. A block whose forward cannot be traced
  (data-dependent control flow: `if x.sum() > 0`) raises naming the module; write its forward
  once in JAX and register it with `fl.register_torch_converter(TheClass, fn)`, which takes
  precedence over tracing (see the README's porting section). torch is never called when the
  converted layer runs.
- **dtypes** are kept: a float32 torch model gives float32 params. A float64 model needs
  `jax.config.update("jax_enable_x64", True)` before converting.
- **Train / eval** is an argument (`training=True/False`), not a flag on the layer; dropout and
  stochastic depth take `rng=` in training mode.
- **Agreement** is to float32 rounding (about 1e-6 relative here), not bit-exact: XLA and torch
  order their reductions differently."""),
]


def main() -> None:
    write(FILENAME, CELLS, TITLE)


if __name__ == "__main__":
    main()
