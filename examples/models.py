"""Model builders: the small CIFAR-style CNN and a CIFAR ResNet-18, in funclayers and in torch.

The funclayers models use torch's module names (`conv1`, `bn1`, `layer1.0.downsample.0`, `fc`),
so the state_dict of the torch twin written with torch.nn loads into them unchanged:

    model = resnet18()
    params, state = fl.load_state_dict(model, torch_resnet18().state_dict())

torch is imported lazily inside the torch builders: the funclayers models need only JAX.
"""

from __future__ import annotations

import jax

import funclayers as fl


def small_cnn(num_classes: int = 10, in_channels: int = 3) -> fl.Layer:
    """The small CIFAR-style CNN of the benchmark suite, as an `fl.Sequential`.

    Conv(3,32,3,p1)-BN-ReLU-Conv(32,32,3,p1)-BN-ReLU-MaxPool(2)-Conv(32,64,3,p1)-BN-ReLU-
    AdaptiveAvgPool(1)-Flatten-Linear(64,num_classes).

    Shape: (N, in_channels, H, W) -> (N, num_classes).

    Example:
      >>> model = small_cnn()
      >>> params, state = model.init(jax.random.PRNGKey(0))
      >>> logits, state = model.apply(params, state, x, training=True)
    """
    return fl.Sequential(
        fl.Conv2d(in_channels, 32, 3, padding=1), fl.BatchNorm2d(32), fl.ReLU(),
        fl.Conv2d(32, 32, 3, padding=1), fl.BatchNorm2d(32), fl.ReLU(),
        fl.MaxPool2d(2),
        fl.Conv2d(32, 64, 3, padding=1), fl.BatchNorm2d(64), fl.ReLU(),
        fl.AdaptiveAvgPool2d(1), fl.Flatten(), fl.Linear(64, num_classes),
    )


def basic_block(inplanes: int, planes: int, stride: int = 1) -> fl.Layer:
    """torchvision's ResNet BasicBlock: two 3x3 conv-BN pairs and a residual connection.

    A `downsample` (1x1 conv with stride + BN) projects the identity when the shape changes.
    """
    children = dict(conv1=fl.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False),
                    bn1=fl.BatchNorm2d(planes), relu=fl.ReLU(),
                    conv2=fl.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False),
                    bn2=fl.BatchNorm2d(planes))
    if stride != 1 or inplanes != planes:
        children["downsample"] = fl.Sequential(fl.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                               fl.BatchNorm2d(planes))

    def BasicBlock(m, x):  # noqa: N802 - the name is the layer's repr, as torch's class name
        out = m.relu(m.bn1(m.conv1(x)))
        out = m.bn2(m.conv2(out))
        identity = m.downsample(x) if "downsample" in m else x
        return m.relu(out + identity)

    return fl.Module(BasicBlock, **children)


def _stage(inplanes: int, planes: int, blocks: int, stride: int) -> fl.Layer:
    return fl.Sequential(basic_block(inplanes, planes, stride),
                         *[basic_block(planes, planes) for _ in range(blocks - 1)])


def resnet18(num_classes: int = 10) -> fl.Layer:
    """ResNet-18 for 32x32 images (CIFAR variant: 3x3 stem with stride 1, no max pool).

    Module names follow torchvision (`conv1`, `bn1`, `layer1`..`layer4`, `avgpool`, `fc`), so
    `torch_resnet18().state_dict()` loads unchanged.

    Shape: (N, 3, H, W) -> (N, num_classes).

    Example:
      >>> model = resnet18()
      >>> params, state = model.init(jax.random.PRNGKey(0))
      >>> logits, state = model.apply(params, state, jnp.zeros((2, 3, 32, 32)), training=True)
    """
    def ResNet(m, x):  # noqa: N802
        x = m.relu(m.bn1(m.conv1(x)))
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        x = m.avgpool(x)
        return m.fc(x.reshape(x.shape[0], -1))  # torch.flatten(x, 1)

    return fl.Module(
        ResNet,
        conv1=fl.Conv2d(3, 64, 3, stride=1, padding=1, bias=False), bn1=fl.BatchNorm2d(64), relu=fl.ReLU(),
        layer1=_stage(64, 64, 2, 1), layer2=_stage(64, 128, 2, 2),
        layer3=_stage(128, 256, 2, 2), layer4=_stage(256, 512, 2, 2),
        avgpool=fl.AdaptiveAvgPool2d(1), fc=fl.Linear(512, num_classes),
    )


# -- the torch twins (torch.nn, torchvision's attribute names) --------------------------------


def torch_small_cnn(num_classes: int = 10, in_channels: int = 3):
    """`small_cnn` written with torch.nn."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


def torch_resnet18(num_classes: int = 10):
    """`resnet18` written with torch.nn, attribute for attribute as torchvision's resnet18."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    def stage(inplanes, planes, blocks, stride):
        return nn.Sequential(BasicBlock(inplanes, planes, stride),
                             *[BasicBlock(planes, planes) for _ in range(blocks - 1)])

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = stage(64, 64, 2, 1)
            self.layer2 = stage(64, 128, 2, 2)
            self.layer3 = stage(128, 256, 2, 2)
            self.layer4 = stage(256, 512, 2, 2)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


def num_params(params) -> int:
    """Number of scalars in a params pytree."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))
