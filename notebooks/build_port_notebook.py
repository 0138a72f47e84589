"""Writes notebooks/06_port_from_torch.ipynb (without outputs) from the cells below.

    python notebooks/build_port_notebook.py

Edit the cells here, not the .ipynb file; tests/test_notebooks.py executes the notebook and checks
that the committed file is what this script writes.
"""

from __future__ import annotations

from build_notebooks import write

FILENAME = "06_port_from_torch.ipynb"
TITLE = "Porting a torch ResNet to funclayers and back"

CELLS = [
    ("md", """\
# Porting a torch ResNet to funclayers, fine-tuning it with optax, and handing it back

`fl.from_torch(torch_model)` turns a live `torch.nn.Module` tree into a funclayers layer with its
params and state in one call: each torch.nn submodule becomes its funclayers twin (same
constructor arguments, same parameter and buffer names), and the weights come from the module's
`state_dict`. `fl.state_dict(params, state)` is that `state_dict` again, so the round trip is

```python
layer, params, state = fl.from_torch(torch_model)              # torch -> JAX
...                                                            # train with jax.jit + optax
torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in fl.state_dict(params, state).items()})
```

This notebook ports a ResNet-18-shaped network (torchvision's `BasicBlock`, at reduced width),
checks outputs and gradients against torch, fine-tunes it on scikit-learn's bundled 8x8 digits
under `jax.jit`, and loads the weights and BatchNorm running statistics back into torch, printing
the two frameworks' numbers side by side. Everything is float32 and runs on the CPU."""),
    ("code", '''\
import copy
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from sklearn.datasets import load_digits
from torch import nn

import funclayers as fl

start = time.perf_counter()
torch.manual_seed(0)
digits = load_digits()
images = ((digits.images / 16.0 - 0.5) / 0.5).astype(np.float32)[:, None]   # (1797, 1, 8, 8) in [-1, 1]
labels = digits.target.astype(np.int64)
x_train, y_train, x_test, y_test = images[:1500], labels[:1500], images[1500:], labels[1500:]
print("train", x_train.shape, "test", x_test.shape, "classes", np.unique(labels))'''),
    ("md", """\
## The torch model: a small ResNet-18

torchvision's ResNet-18 layout (a stem, four stages of two `BasicBlock`s, global average pooling,
a linear head) with channels 16-32-64-128 and a 3x3 stem without max pooling, for 8x8 inputs.
`BasicBlock` and `ResNet` are the user's own classes, written in torch.nn."""),
    ("code", '''\
class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    def __init__(self, widths=(16, 32, 64, 128), blocks=(2, 2, 2, 2), in_channels=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        inplanes = widths[0]
        for i, (planes, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(inplanes, planes, stride)] + [BasicBlock(planes, planes) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


torch_model = ResNet()
print(f"{sum(p.numel() for p in torch_model.parameters()):,} parameters,",
      f"{len(torch_model.state_dict())} state_dict entries, e.g.", list(torch_model.state_dict())[:4])'''),
    ("md", """\
## Teaching `from_torch` the user's classes

Only torch.nn's own classes convert by themselves. A class of your own raises
`TorchConversionError`, naming its path in the tree:"""),
    ("code", '''\
try:
    fl.from_torch(torch_model)
except fl.TorchConversionError as err:
    print(textwrap.fill(str(err), 100))'''),
    ("md", """\
`fl.register_torch_converter(TorchClass, fn)` maps the class to a funclayers layer:
`fn(module, convert)` gets the live torch module and a `convert` callback for its children, and
returns a layer whose params are named as the module's `state_dict`, here an `fl.Module` whose
forward is the torch forward rewritten with `jax.nn` (children are called as `m.conv1(x)`).
`convert.composite(forward)` is the one-line form: `fl.Module(forward, ...)` over all the
module's parameters, buffers and converted children."""),
    ("code", '''\
def basic_block_forward(m, x):
    out = jax.nn.relu(m.bn1(m.conv1(x)))
    out = m.bn2(m.conv2(out))
    return jax.nn.relu(out + (m.downsample(x) if "downsample" in m else x))   # downsample=None is no child


def resnet_forward(m, x):
    x = jax.nn.relu(m.bn1(m.conv1(x)))
    x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    return m.fc(m.avgpool(x).reshape(x.shape[0], -1))


@fl.register_torch_converter(BasicBlock)
def convert_basic_block(module, convert):
    return fl.Module(basic_block_forward, **convert.children())


fl.register_torch_converter(ResNet, lambda module, convert: convert.composite(resnet_forward))

model, params, state = fl.from_torch(torch_model)
sd = fl.state_dict(params, state)
assert list(sd) == list(torch_model.state_dict())   # the same names, in the same order
print(len(sd), "arrays; params of layer2.0:", list(params["layer2"]["0"]),
      "\\nstate of layer2.0.bn1:", {k: v.shape for k, v in state["layer2"]["0"]["bn1"].items()})'''),
    ("md", """\
## Checking against torch: outputs in eval and train mode

`training=False` is torch's `eval()` (BatchNorm uses its running statistics), `training=True` is
`train()` (batch statistics, and the running statistics come back updated in the new state).
torch's train-mode forward updates its buffers in place, so it runs on a copy. Each row prints an
array's first entry in both frameworks and the largest absolute difference over the array."""),
    ("code", '''\
x, y = x_train[:64], y_train[:64]
apply = jax.jit(model.apply, static_argnames="training")


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


with torch.no_grad():
    torch_eval = torch_model.eval()(torch.from_numpy(x_test)).numpy()
    torch_copy = copy.deepcopy(torch_model).train()
    torch_train = torch_copy(torch.from_numpy(x)).numpy()
fl_eval, _ = apply(params, state, jnp.asarray(x_test), training=False)
fl_train, new_state = apply(params, state, jnp.asarray(x), training=True)

torch_sd = torch_copy.state_dict()
rows = [("test logits, eval()", torch_eval, fl_eval), ("batch logits, train()", torch_train, fl_train)]
rows += [(f"{name} after train()", torch_sd[name].numpy(), fl.state_dict(params, new_state)[name])
         for name in ("bn1.running_mean", "layer4.1.bn2.running_var", "bn1.num_batches_tracked")]
print(f"{'':40s}{'torch':>12s}{'funclayers':>12s}{'max |diff|':>12s}")
for name, t, f in rows:
    diff = max_abs(t, f)
    print(f"{name:40s}{float(np.ravel(t)[0]):12.6f}{float(np.ravel(f)[0]):12.6f}{diff:12.2e}")
    assert diff < 1e-4, name'''),
    ("md", """\
## Checking gradients, by `state_dict` name

The cross-entropy of a train-mode forward, differentiated in both frameworks. `fl.state_dict(grads)`
names the gradient tree as torch names its parameters; the table gives each stage's largest
relative difference `max |g_jax - g_torch| / max |g_torch|` over its tensors."""),
    ("code", '''\
def loss_fn(params, state, x, y):
    logits, new_state = model.apply(params, state, x, training=True)
    return fl.functional.cross_entropy(logits, y), (logits, new_state)


grad_fn = jax.jit(jax.grad(loss_fn, has_aux=True))
grads, _ = grad_fn(params, state, jnp.asarray(x), jnp.asarray(y))
jax_grads = fl.state_dict(grads)

torch_copy = copy.deepcopy(torch_model).train()
nn.functional.cross_entropy(torch_copy(torch.from_numpy(x)), torch.from_numpy(y)).backward()
torch_grads = {name: p.grad.numpy() for name, p in torch_copy.named_parameters()}
assert sorted(jax_grads) == sorted(torch_grads)   # jax's tree functions return dicts with sorted keys

worst = {}
for name, g in torch_grads.items():
    stage = name.split(".")[0]
    rel = max_abs(jax_grads[name], g) / (np.abs(g).max() + 1e-30)
    worst[stage] = max(worst.get(stage, 0.0), rel)
print(f"{'stage':10s}{'tensors':>8s}{'max rel diff':>14s}")
for stage, rel in worst.items():
    print(f"{stage:10s}{sum(n.split('.')[0] == stage for n in torch_grads):8d}{rel:14.2e}")
assert max(worst.values()) < 1e-4'''),
    ("md", """\
## Fine-tuning with optax under `jax.jit`

Adam on mini-batches of 100, 40 steps (under three epochs of the 1500 training digits). The
BatchNorm running statistics live in `state` and are threaded through each step; the optimizer
only sees `params`."""),
    ("code", '''\
optimizer = optax.adam(3e-3)
opt_state = optimizer.init(params)


@jax.jit
def train_step(params, state, opt_state, x, y):
    (loss, (_, state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), state, opt_state, loss


def accuracy(logits, y):
    return float(np.mean(np.argmax(np.asarray(logits), -1) == y))


print(f"test accuracy before fine-tuning: {accuracy(fl_eval, y_test):.3f}")
rng, steps, batch = np.random.default_rng(0), 40, 100
for step in range(steps):
    idx = rng.choice(len(x_train), batch, replace=False)
    params, state, opt_state, loss = train_step(params, state, opt_state, jnp.asarray(x_train[idx]),
                                                jnp.asarray(y_train[idx]))
    if step % 8 == 0 or step == steps - 1:
        print(f"step {step:3d}  loss {float(loss):.4f}")
fl_logits, _ = apply(params, state, jnp.asarray(x_test), training=False)
print(f"test accuracy after {steps} steps: {accuracy(fl_logits, y_test):.3f}")
assert accuracy(fl_logits, y_test) > 0.8'''),
    ("md", """\
## Handing the weights back to torch

`fl.state_dict(params, state)` holds the fine-tuned weights and the updated BatchNorm buffers
(`running_mean`, `running_var`, `num_batches_tracked`) under torch's names; `strict=True` checks
that nothing is missing or extra. torch, in `eval()`, now computes what funclayers computes, and
one more `train()` forward updates the running statistics alike in both."""),
    ("code", '''\
result = torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in fl.state_dict(params, state).items()},
                                     strict=True)
print(result)
with torch.no_grad():
    torch_logits = torch_model.eval()(torch.from_numpy(x_test)).numpy()
    torch_copy = copy.deepcopy(torch_model).train()        # and one more train() forward in both
    torch_train = torch_copy(torch.from_numpy(x)).numpy()
fl_train, new_state = apply(params, state, jnp.asarray(x), training=True)

print(f"{'':40s}{'torch':>12s}{'funclayers':>12s}{'max |diff|':>12s}")
print(f"{'test accuracy':40s}{accuracy(torch_logits, y_test):12.3f}{accuracy(fl_logits, y_test):12.3f}")
rows = [("test logits [0, 0]", torch_logits, fl_logits)]
rows += [(name, torch_model.state_dict()[name].numpy(), value) for name, value in fl.state_dict(params, state).items()
         if name in ("fc.bias", "bn1.running_mean", "layer3.0.downsample.1.running_var",
                     "layer1.0.bn1.num_batches_tracked")]
rows += [("batch logits, one more train()", torch_train, fl_train),
         ("layer4.1.bn2.running_var after it", torch_copy.state_dict()["layer4.1.bn2.running_var"].numpy(),
          fl.state_dict(params, new_state)["layer4.1.bn2.running_var"])]
for name, t, f in rows:
    diff = max_abs(t, f)
    print(f"{name:40s}{float(np.ravel(t)[0]):12.6f}{float(np.ravel(f)[0]):12.6f}{diff:12.2e}")
    assert diff < 1e-4, name
assert np.array_equal(np.argmax(torch_logits, -1), np.argmax(fl_logits, -1))
print(f"notebook ran in {time.perf_counter() - start:.0f} s")'''),
    ("md", """\
## Notes

- **Classes funclayers lacks** (your own blocks, a subclass of a torch.nn class that overrides
  `forward`, a third-party module) raise `TorchConversionError` with their path in the tree;
  register them with `fl.register_torch_converter` as above. A registration covers subclasses
  and takes precedence over the built-in conversion. `convert.parameter(name)` /
  `convert.buffer(name)` wrap a module's own tensors (e.g. a `cls_token`) when you build the
  `fl.Module` by hand. Module hooks are not run (`from_torch` warns).
- **dtypes** are kept: a float32 torch model gives float32 params. A float64 model needs
  `jax.config.update("jax_enable_x64", True)` before converting (otherwise `from_torch` warns and
  converts to float32).
- **Train / eval** is an argument (`training=True/False`), not a flag on the layer; layers with
  randomness (dropout) take `rng=` in training mode.
- **Agreement** is to float32 rounding (about 1e-6 relative here), not bit-exact: XLA and torch order
  their reductions differently."""),
]


def main() -> None:
    write(FILENAME, CELLS, TITLE)


if __name__ == "__main__":
    main()
