"""Ported torchvision models (issue 26): the step of `fl.from_torch(model)` against torch and torch2jax.

The step, in every framework: an eval-mode forward of a (2, 3, 64, 64) batch, the cross-entropy
against random labels, and its gradients with respect to every parameter; the loss value and the
gradients are returned. Eval mode (BatchNorm's running statistics, no dropout or stochastic depth)
is what torch2jax's `t2j` runs without an rng, and the issue's reference timings are of it.

- "funclayers": `fl.from_torch(torch_model)`, the one-call port, under `jax.jit`;
- "torch": the torchvision model itself, eager ("torch_1thread": with `torch.set_num_threads(1)`: on a
  machine loaded by other processes, torch's spinning OpenMP threads cost it 10x, one thread does not);
- "torch2jax": `torch2jax.t2j(torch_model)` under `jax.jit` (resnet18 and the small ViT: it has no
  grouped convolution and no `hardswish`, so it converts neither mobilenet_v3_small nor convnext_tiny);
- "funclayers_hand" (resnet18 only): the same network written by hand with funclayers layers
  (`examples/models.py`'s blocks with torchvision's 7x7 stem), loaded from the same state_dict,
  for the "a port costs nothing after jit" comparison.

Every array of a JAX step (params, buffers, images, labels) is an argument of the jitted
function, never a closed-over constant that XLA could fold. Every process builds the torch model
the same way (`torch.manual_seed(0)`), and the JAX sides are built from it.
`python -m benchmarks.porting` times these rows, one fresh process per framework, and the
`from_torch` call itself on resnet50.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Workload, jax_step, to_torch, torch_device, torch_step

BATCH, SIZE, NUM_CLASSES = 2, 64, 1000
MODELS = ("resnet18", "mobilenet_v3_small", "convnext_tiny", "vit")
T2J_CONVERTS = ("resnet18", "vit")  # t2j raises on grouped convolutions and F.hardswish
# a small VisionTransformer for 64x64 images: 16 patches of 16x16, 4 encoder layers of width 128
VIT_CONFIG = dict(image_size=SIZE, patch_size=16, num_layers=4, num_heads=4, hidden_dim=128, mlp_dim=512)


def import_torchvision():
    """torchvision, imported with `torch.library.register_fake` stubbed for the import.

    The registry's torchvision 0.28 wheel is built against CUDA torch: with the CPU torch 2.13 its
    C ops (nms, roi_align, ...) do not load, and `import torchvision` fails while registering fake
    kernels for them. Its models are pure Python and use none of those ops, so the import skips
    the registration (the same stub as tests/torchvision_import.py).
    """
    import sys

    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torch

    real = torch.library.register_fake

    def register_fake(op, fn=None, /, **kwargs):
        return (lambda f: f) if fn is None else fn

    torch.library.register_fake = register_fake
    try:
        import torchvision
    finally:
        torch.library.register_fake = real
    return torchvision


def torch_model(name: str):
    """The torchvision model `name`, built from seed 0, in eval mode.

    A parameter whose entries are all equal (torchvision's ViT head is zero-initialised, so its
    output and every gradient upstream of it would be zero) gets small noise, as the tests do.
    """
    import torch

    torchvision = import_torchvision()
    torch.manual_seed(0)
    if name == "vit":
        from torchvision.models.vision_transformer import VisionTransformer

        model = VisionTransformer(**VIT_CONFIG)
    else:
        model = getattr(torchvision.models, name)()
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1 and bool((p == p.flatten()[0]).all()):
                p.add_(0.02 * torch.randn_like(p))
    return model.eval()


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, BATCH).astype(np.int32)
    return x, y


def jax_loss_step(forward, params, buffers) -> tuple:
    """The jitted step (value and gradient w.r.t. params of the cross-entropy of forward's logits) and its args."""
    import jax
    import jax.numpy as jnp

    def loss_fn(params, buffers, x, y):
        logits = forward(params, buffers, x)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=-1))

    x, y = (jnp.asarray(a) for a in _data())
    return jax.jit(jax.value_and_grad(loss_fn)), (params, buffers, x, y)


def hand_resnet18():
    """torchvision's resnet18 written by hand with funclayers (ImageNet stem: 7x7/2 conv, 3x3/2 max pool)."""
    import funclayers as fl
    from benchmarks.workloads.models import _examples

    models = _examples()

    def ResNet(m, x):  # noqa: N802 - the name is the layer's repr, as torch's class name
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        x = m.avgpool(x)
        return m.fc(x.reshape(x.shape[0], -1))

    return fl.Module(
        ResNet,
        conv1=fl.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), bn1=fl.BatchNorm2d(64), relu=fl.ReLU(),
        maxpool=fl.MaxPool2d(3, 2, 1),
        layer1=models._stage(64, 64, 2, 1), layer2=models._stage(64, 128, 2, 2),
        layer3=models._stage(128, 256, 2, 2), layer4=models._stage(256, 512, 2, 2),
        avgpool=fl.AdaptiveAvgPool2d(1), fc=fl.Linear(512, NUM_CLASSES),
    )


def ported_step(name: str) -> tuple:
    """`jax_loss_step` of `fl.from_torch(torch_model(name))`."""
    import funclayers as fl

    layer, params, state = fl.from_torch(torch_model(name))
    return jax_loss_step(lambda p, s, x: layer.apply(p, s, x)[0], params, state)


def hand_step(name: str) -> tuple:
    """`jax_loss_step` of the hand-written twin (resnet18), loaded from the torch model's state_dict."""
    import funclayers as fl

    assert name == "resnet18", name
    layer = hand_resnet18()
    params, state = fl.load_state_dict(layer, torch_model(name).state_dict())
    return jax_loss_step(lambda p, s, x: layer.apply(p, s, x)[0], params, state)


def _blocking(make_step):
    fn, args = make_step()
    return jax_step(fn, *args)


def _ported(name: str):
    return lambda: _blocking(lambda: ported_step(name))


def _hand(name: str):
    return lambda: _blocking(lambda: hand_step(name))


def _torch2jax(name: str):
    def build():
        from torch2jax import t2j

        model = torch_model(name)
        forward = t2j(model)
        names = {k for k, _ in model.named_parameters()}
        params = {k: t2j(v) for k, v in model.state_dict().items() if k in names}
        buffers = {k: t2j(v) for k, v in model.state_dict().items() if k not in names}
        return _blocking(lambda: jax_loss_step(lambda p, b, x: forward(x, state_dict={**p, **b}), params, buffers))

    return build


def _torch(name: str, threads: int | None = None):
    def build():
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        model = torch_model(name).to(torch_device())
        x, y = to_torch(_data()[0]), to_torch(_data()[1]).long()

        def step():
            model.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss.item()

        return torch_step(step)

    return build


def _builders(name: str) -> dict:
    builders = {"funclayers": _ported(name), "torch": _torch(name), "torch_1thread": _torch(name, threads=1)}
    if name in T2J_CONVERTS:
        builders["torch2jax"] = _torch2jax(name)
    if name == "resnet18":
        builders["funclayers_hand"] = _hand(name)
    return builders


def workload_name(name: str) -> str:
    return f"ported {name} eval step ({BATCH}, 3, {SIZE}, {SIZE})"


# `python -m benchmarks.porting` times every framework above; the main runner times funclayers and
# torch in a full run and skips these rows in --quick (each model compiles for 20-80 s on 2 cores).
WORKLOADS = [
    Workload(workload_name(name), _builders(name),
             "fl.from_torch(torchvision model); eval-mode forward + cross-entropy + gradients w.r.t. every parameter",
             iters=5, quick_frameworks=())
    for name in MODELS
]
