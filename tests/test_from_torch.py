"""fl.from_torch: torch's module_db cases, hand-written cases for the classes module_db lacks, nested
containers, a ResNet-18 and a Transformer written in torch.nn (outputs and gradients), the round
trip back to torch, custom classes (traced) and untraceable ones, register_torch_converter, and
torch staying a lazy import.

module_db selection (to keep this file inside its time budget): for every torch.nn class that
funclayers covers and module_db lists, its first three constructor cases in eval mode and its
first case in train mode. A train case whose module draws random numbers (dropout with p > 0,
RReLU) is compared in eval mode only: the two frameworks' random streams differ (random layers'
statistics are tested in their families' files). Each case converts the module, compares
forward outputs and the buffers after the step (and for each class's first case the gradients
w.r.t. every parameter, by state_dict name), and loads our state_dict back into torch.
Tolerances are the suite's float64 ones (rtol 1e-10, atol 1e-12) everywhere but ResNet-18's
gradients (see _compare_grads).
"""

import subprocess
import sys
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing._internal.common_modules import module_db  # needs expecttest (in the test extras)

import funclayers as fl
from funclayers.porting._modules import covered_torch_classes

RTOL, ATOL = 1e-10, 1e-12  # float64, as every parity test in this suite

COVERED = set(covered_torch_classes())


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _jax(x):
    if isinstance(x, torch.Tensor):
        return jnp.asarray(x.detach().numpy().copy())
    if isinstance(x, (tuple, list)):
        return type(x)(_jax(v) for v in x)
    if isinstance(x, dict):
        return {k: _jax(v) for k, v in x.items()}
    return x


def _leaves(out):
    if isinstance(out, (tuple, list)):
        return [leaf for item in out for leaf in _leaves(item)]
    return [out]


def _assert_outputs(ours, theirs, what="output"):
    ours, theirs = _leaves(ours), _leaves(theirs)
    assert len(ours) == len(theirs), f"{what}: {len(ours)} leaves, torch {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if not isinstance(b, torch.Tensor):
            assert a == b, f"{what}[{i}]: ours {a!r}, torch {b!r}"
            continue
        b = b.detach().numpy()
        a = np.asarray(a)
        assert a.shape == b.shape, f"{what}[{i}]: shape {a.shape}, torch {b.shape}"
        if np.issubdtype(b.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{what}[{i}]")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"{what}[{i}]")


def _assert_state(module, params, state, what="state", ordered=False):
    """Our params/state equal the torch module's state_dict (its buffers after a train step).

    `ordered`: the names in torch's order too (a converted tree; jit returns dicts with sorted keys)."""
    ours = fl.state_dict(params, state)
    theirs = module.state_dict()
    if ordered:
        assert list(ours) == list(theirs), f"{what}: names {list(ours)}, torch {list(theirs)}"
    assert sorted(ours) == sorted(theirs), f"{what}: names {sorted(ours)}, torch {sorted(theirs)}"
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value.numpy(), rtol=RTOL, atol=ATOL, err_msg=f"{what} {name}")


def _is_random(module):
    """Draws random numbers in train mode: a dropout with p > 0 anywhere in the tree, or RReLU."""
    for sub in module.modules():
        if isinstance(sub, nn.RReLU):
            return True
        p = getattr(sub, "p", None) if isinstance(sub, nn.modules.dropout._DropoutNd) else None
        p = getattr(sub, "dropout", p)
        if isinstance(p, float) and p > 0 and not (isinstance(sub, nn.RNNBase) and sub.num_layers == 1):
            return True
    return False


def _check_case(module, args, kwargs, training, grad=False):
    """Convert, run both, compare outputs, new buffers (and with `grad`, the gradients of a random
    projection of the outputs w.r.t. every parameter, by state_dict name); load our state_dict back."""
    module = module.to(torch.float64).train(training)
    layer, params, state = fl.from_torch(module)  # before torch's train step updates its buffers
    _assert_state(module, params, state, "converted", ordered=True)
    out_t = module(*args, **kwargs)
    args_j, kwargs_j = _jax(args), _jax(kwargs)
    t_leaves = _leaves(out_t)
    differentiable = [isinstance(t, torch.Tensor) and t.requires_grad for t in t_leaves]
    cotangents = [_r(*t.shape, seed=5) if d else None for t, d in zip(t_leaves, differentiable)]

    def loss(params, state):
        out, new_state = layer.apply(params, state, *args_j, training=training, rng=jax.random.PRNGKey(0),
                                     **kwargs_j)
        total = sum(jnp.sum(o * jnp.asarray(c.numpy())) for o, c in zip(_leaves(out), cotangents) if c is not None)
        return total, (out, new_state)

    # under jit (as users run it; ~10x faster here than op by op); the inputs are closed-over constants
    grad = grad and any(differentiable)
    if grad:
        grads, (out, new_state) = jax.jit(jax.grad(loss, has_aux=True))(params, state)
    else:
        _, (out, new_state) = jax.jit(loss)(params, state)
    _assert_outputs(out, out_t)
    _assert_state(module, params, new_state, "after forward")
    if grad:
        sum((t * c).sum() for t, c in zip(t_leaves, cotangents) if c is not None).backward()
        ours = fl.state_dict(grads, {})
        for name, p in module.named_parameters():
            if p.requires_grad:
                theirs = np.zeros(p.shape) if p.grad is None else p.grad.numpy()
                np.testing.assert_allclose(ours[name], theirs, rtol=RTOL, atol=ATOL, err_msg=f"grad of {name}")
    sd = fl.state_dict(params, new_state)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)


def _module_db_cases():
    cases = []
    for info in module_db:
        name = info.module_cls.__name__
        if name not in COVERED:
            continue
        for training in (False, True):
            available = len(info.module_inputs_func(info, device="cpu", dtype=torch.float64, requires_grad=False,
                                                    training=training))
            for i in range(min(available, 1 if training else 3)):
                cases.append(pytest.param(info, i, training, id=f"{name}-{i}-{'train' if training else 'eval'}"))
    return cases


@pytest.mark.parametrize("info, index, training", _module_db_cases())
def test_module_db_case(info, index, training):
    torch.manual_seed(0)  # module_db draws its inputs from torch's global generator
    inputs = info.module_inputs_func(info, device="cpu", dtype=torch.float64, requires_grad=False,
                                     training=training)
    case = inputs[index]
    torch.manual_seed(0)
    module = info.module_cls(*case.constructor_input.args, **case.constructor_input.kwargs)
    assert case.forward_input is not None
    if isinstance(module, torch.nn.modules.lazy.LazyModuleMixin):  # torch sizes a lazy module on its first call
        with torch.no_grad():
            module.to(torch.float64).eval()(*case.forward_input.args, **case.forward_input.kwargs)
    if training and _is_random(module):
        training = False  # random streams differ: compare the eval forward of the same module
    _check_case(module, case.forward_input.args, case.forward_input.kwargs, training, grad=index == 0)


def test_module_db_coverage():
    """The covered classes module_db lacks are those test_extra_case builds by hand or a test of their own."""
    in_db = {info.module_cls.__name__ for info in module_db}
    extra = {param.id.split("-")[0] for param in _EXTRA_PARAMS}
    own_tests = {"Sequential", "ModuleList", "ModuleDict", "RNNBase", "DistributedDataParallel", "ParameterList",
                 "ParameterDict", "RNNCellBase", "NLLLoss2d"}
    own_tests |= {name for name in COVERED if name.startswith("Lazy")}  # test_lazy.py (torch's, once run)
    assert COVERED - in_db <= extra | own_tests, COVERED - in_db - extra - own_tests


def _r(*shape, seed=0):
    """A reproducible float64 standard-normal tensor (shape () included)."""
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _ints(high, *shape, seed=0):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def _unpool_case(dim):
    pool = getattr(F, f"max_pool{dim}d")
    x = _r(2, 3, *([6] * dim))
    out, idx = pool(x, 2, stride=2, return_indices=True)
    return (lambda: getattr(nn, f"MaxUnpool{dim}d")(2, stride=2)), (out, idx), {}


def _extra_cases():
    """(id, module factory, args, kwargs, training modes) for the classes module_db lacks, and some options."""
    x4 = _r(2, 4, 5, 5)
    enc_layer = dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0)
    cases = [
        ("Identity", lambda: nn.Identity(3, unused=1), (_r(2, 3),), {}),
        ("Flatten", lambda: nn.Flatten(1, -1), (x4,), {}),
        ("Unflatten", lambda: nn.Unflatten(1, (2, 3)), (_r(4, 6),), {}),
        ("Hardsigmoid", lambda: nn.Hardsigmoid(), (_r(3, 4) * 4,), {}),
        ("RReLU", lambda: nn.RReLU(0.1, 0.3), (_r(3, 4),), {}),
        ("Dropout", lambda: nn.Dropout(0.3), (_r(3, 4),), {}),
        ("Dropout1d", lambda: nn.Dropout1d(0.3), (_r(2, 3, 4),), {}),
        ("Dropout2d", lambda: nn.Dropout2d(0.3), (x4,), {}),
        ("Dropout3d", lambda: nn.Dropout3d(0.3), (_r(2, 3, 2, 2, 2),), {}),
        ("AlphaDropout", lambda: nn.AlphaDropout(0.3), (_r(3, 4),), {}),
        ("FeatureAlphaDropout", lambda: nn.FeatureAlphaDropout(0.3), (x4,), {}),
        ("Fold", lambda: nn.Fold(output_size=(4, 5), kernel_size=2, stride=(1, 2), padding=(0, 1)),
         (_r(2, 12, 9),), {}),
        ("Unfold", lambda: nn.Unfold(kernel_size=2, padding=1, stride=2, dilation=1), (x4,), {}),
        ("MaxUnpool1d",) + _unpool_case(1),
        ("MaxUnpool2d",) + _unpool_case(2),
        ("MaxUnpool3d",) + _unpool_case(3),
        ("CrossMapLRN2d", lambda: nn.CrossMapLRN2d(3, 1e-3, 0.75, 1.0), (x4,), {}),
        ("SyncBatchNorm", lambda: nn.SyncBatchNorm(4, momentum=0.2), (x4,), {}),
        ("SyncBatchNorm-noaffine", lambda: nn.SyncBatchNorm(4, affine=False), (x4,), {}),
        ("TripletMarginLoss", lambda: nn.TripletMarginLoss(margin=0.5, p=1.5, swap=True),
         (_r(5, 3), _r(5, 3, seed=1), _r(5, 3, seed=2)), {}),
        ("TripletMarginWithDistanceLoss", lambda: nn.TripletMarginWithDistanceLoss(margin=0.5, reduction="sum"),
         (_r(5, 3), _r(5, 3, seed=1), _r(5, 3, seed=2)), {}),
        ("TripletMarginWithDistanceLoss-PairwiseDistance-p1", lambda: nn.TripletMarginWithDistanceLoss(
            distance_function=nn.PairwiseDistance(p=1.0, eps=1e-3), swap=True),
         (_r(5, 3), _r(5, 3, seed=1), _r(5, 3, seed=2)), {}),
        ("NLLLoss2d", lambda: nn.NLLLoss2d(ignore_index=1), (_r(2, 3, 4, 4).log_softmax(1), _ints(3, 2, 4, 4)), {}),
        ("EmbeddingBag", lambda: nn.EmbeddingBag(10, 3, mode="max"), (_ints(10, 2, 4),), {}),
        ("EmbeddingBag-offsets", lambda: nn.EmbeddingBag(10, 3, mode="mean", padding_idx=0, include_last_offset=True),
         (_ints(10, 7), torch.tensor([0, 2, 5, 7])), {}),
        ("PairwiseDistance", lambda: nn.PairwiseDistance(p=1.0, eps=1e-3, keepdim=True), (_r(4, 3), _r(4, 3, seed=1)),
         {}),
        ("CosineSimilarity", lambda: nn.CosineSimilarity(dim=0, eps=1e-3), (_r(4, 3), _r(4, 3, seed=1)), {}),
        ("PixelShuffle", lambda: nn.PixelShuffle(2), (_r(1, 8, 3, 3),), {}),
        ("PixelUnshuffle", lambda: nn.PixelUnshuffle(2), (_r(1, 2, 4, 4),), {}),
        ("ChannelShuffle", lambda: nn.ChannelShuffle(2), (_r(1, 4, 2, 2),), {}),
        ("AdaptiveLogSoftmaxWithLoss", lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8], div_value=2.0,
                                                                             head_bias=True),
         (_r(5, 8), _ints(10, 5)), {}),
        ("Upsample", lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
         (_r(1, 2, 3, 3),), {}),
        ("Upsample-size", lambda: nn.Upsample(size=5, mode="nearest"), (_r(1, 2, 3),), {}),
        ("UpsamplingNearest2d", lambda: nn.UpsamplingNearest2d(scale_factor=2), (_r(1, 2, 3, 3),), {}),
        ("UpsamplingBilinear2d", lambda: nn.UpsamplingBilinear2d(size=(4, 6)), (_r(1, 2, 3, 3),), {}),
        ("TransformerDecoder", lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(**enc_layer), 2,
                                                             norm=nn.LayerNorm(8)),
         (_r(3, 2, 8), _r(4, 2, 8, seed=1)), {}),
        ("DataParallel", lambda: nn.DataParallel(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))), (_r(4, 3),), {}),
        # options the first module_db cases do not reach
        ("MultiheadAttention-kdim-vdim-bias_kv", lambda: nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True,
                                                                              bias=False, batch_first=True),
         (_r(2, 3, 8), _r(2, 5, 4, seed=1), _r(2, 5, 6, seed=2)), {}),
        ("Conv2d-reflect-groups", lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, padding_mode="reflect"),
         (x4,), {}),
        ("Conv1d-same", lambda: nn.Conv1d(4, 2, 3, padding="same", dilation=2, bias=False), (_r(2, 4, 7),), {}),
        ("LSTM-proj", lambda: nn.LSTM(3, 5, num_layers=2, batch_first=True, bidirectional=True, proj_size=2),
         (_r(2, 4, 3),), {}),
        ("GRU-nobias", lambda: nn.GRU(3, 4, bias=False), (_r(4, 2, 3),), {}),
        ("LayerNorm-nobias", lambda: nn.LayerNorm([5, 5], bias=False), (x4,), {}),
        ("BatchNorm2d-noaffine-cma", lambda: nn.BatchNorm2d(4, affine=False, momentum=None), (x4,), {}),
        ("Embedding-frozen", lambda: nn.Embedding.from_pretrained(_r(6, 3), freeze=True, padding_idx=1),
         (_ints(6, 2, 3),), {}),
        ("CrossEntropyLoss-weight", lambda: nn.CrossEntropyLoss(weight=_r(4).abs(), label_smoothing=0.1),
         (_r(5, 4), _ints(4, 5)), {}),
        ("BCEWithLogitsLoss-pos_weight", lambda: nn.BCEWithLogitsLoss(pos_weight=_r(3).abs()),
         (_r(5, 3), _r(5, 3, seed=1).sigmoid()), {}),
        ("TransformerEncoderLayer-gelu-norm_first", lambda: nn.TransformerEncoderLayer(
            **enc_layer, activation="gelu", norm_first=True, batch_first=True, bias=False), (_r(2, 3, 8),), {}),
        ("TransformerEncoderLayer-module-activation", lambda: nn.TransformerEncoderLayer(
            **enc_layer, activation=nn.GELU(approximate="tanh")), (_r(3, 2, 8),), {}),
        ("TransformerDecoderLayer-silu", lambda: nn.TransformerDecoderLayer(**enc_layer, activation=F.silu),
         (_r(3, 2, 8), _r(4, 2, 8, seed=1)), {}),
    ]
    return cases


_EXTRA_PARAMS = [pytest.param(factory, args, kwargs, id=name) for name, factory, args, kwargs in _extra_cases()]


@pytest.mark.parametrize("factory, args, kwargs", _EXTRA_PARAMS)
def test_extra_case(factory, args, kwargs):
    torch.manual_seed(0)
    module = factory()
    _check_case(module, args, kwargs, training=False)
    if not _is_random(module):
        torch.manual_seed(0)
        _check_case(factory(), args, kwargs, training=True)


def test_rnnbase_converts():
    """torch's RNNBase has no forward of its own: the conversion and the round trip only."""
    module = nn.RNNBase("LSTM", 3, 4, num_layers=2, bidirectional=True).double()
    layer, params, state = fl.from_torch(module)
    _assert_state(module, params, state)
    assert "LSTM" in layer.name or "RNNBase" in layer.name


def test_distributed_data_parallel(tmp_path):
    """torch's DDP exists only in a process group: one gloo process here, converted to fl's DDP."""
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a torch process group is already initialised in this process")
    dist.init_process_group("gloo", rank=0, world_size=1, init_method=f"file://{tmp_path / 'pg'}")
    try:
        torch.manual_seed(0)
        module = nn.parallel.DistributedDataParallel(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double())
        for training in (False, True):
            _check_case(module, (_r(4, 3),), {}, training)
    finally:
        dist.destroy_process_group()


def test_nested_containers():
    """Sequential inside ModuleDict inside ModuleList inside a Sequential, with OrderedDict names."""
    inner = nn.Sequential(OrderedDict(conv=nn.Conv2d(2, 3, 3, padding=1), bn=nn.BatchNorm2d(3), act=nn.ReLU()))
    module = nn.Sequential(nn.ModuleList([nn.ModuleDict({"block": inner, "head": nn.Linear(3, 2)})]))
    torch.manual_seed(0)
    module = module.double()
    layer, params, state = fl.from_torch(module)
    assert params["0"]["0"]["block"]["conv"]["weight"].shape == (3, 2, 3, 3)
    _assert_state(module, params, state)
    x = _r(2, 2, 4, 4)
    inner_layer = _child(layer, "0", "0", "block")
    sub_params, sub_state = params["0"]["0"]["block"], state["0"]["0"]["block"]
    for training in (False, True):
        inner.train(training)
        out, new_state = inner_layer.apply(sub_params, sub_state, jnp.asarray(x.numpy()), training=training)
        _assert_outputs(out, inner(x))
        _assert_state(inner, sub_params, new_state)
    head = _child(layer, "0", "0", "head")
    out, _ = head.apply(params["0"]["0"]["head"], {}, jnp.ones((1, 3)))
    _assert_outputs(out, module[0][0]["head"](torch.ones(1, 3, dtype=torch.float64)))


def _child(layer, *names):
    for name in names:
        layer = dict(layer.children)[name]
    return layer


# -- a ResNet-18 written in torch.nn (torchvision's module names), and the BasicBlock converter --

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), num_classes=10, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = width
        for i, blocks in enumerate(layers):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            stage = [BasicBlock(inplanes, planes, stride)] + [BasicBlock(planes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, stage)(x) if hasattr(self, stage) else x
        return self.fc(torch.flatten(self.avgpool(x), 1))


def basic_block_forward(m, x):
    out = m.relu(m.bn1(m.conv1(x)))
    out = m.bn2(m.conv2(out))
    return m.relu(out + (m.downsample(x) if "downsample" in m else x))


def resnet_forward(m, x):
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        x = m[stage](x) if stage in m else x
    return m.fc(jnp.reshape(m.avgpool(x), (x.shape[0], -1)))


def _children_of(module, convert):
    # downsample=None is not a child in torch either: named_children skips it
    return {name: convert(child) for name, child in module.named_children()}


@pytest.fixture
def resnet_converters():
    fl.register_torch_converter(BasicBlock, lambda module, convert: fl.Module(basic_block_forward,
                                                                              **_children_of(module, convert)))

    @fl.register_torch_converter(ResNet)
    def convert_resnet(module, convert):
        return fl.Module(resnet_forward, **_children_of(module, convert))

    yield
    fl.unregister_torch_converter(BasicBlock)
    fl.unregister_torch_converter(ResNet)


def _compare_grads(module, layer, params, state, inputs, training, **kwargs):
    """Outputs, gradients w.r.t. every parameter (by state_dict name) and buffers after one step."""
    module.train(training)
    t_inputs = [x.clone() for x in inputs]
    out_t = module(*t_inputs, **kwargs)
    cot = _r(*out_t.shape, seed=7)
    module.zero_grad()
    (out_t * cot).sum().backward()

    def loss(params):
        out, new_state = layer.apply(params, state, *_jax(inputs), training=training, **_jax(kwargs))
        return jnp.sum(out * jnp.asarray(cot.numpy())), (out, new_state)

    grads, (out, new_state) = jax.jit(jax.grad(loss, has_aux=True))(params)
    _assert_outputs(out, out_t)
    ours = fl.state_dict(grads, {})
    for name, p in module.named_parameters():
        # absolute tolerance on the gradient's own scale: BatchNorm in training over a batch of 2 at
        # ResNet's 1x1 last stage amplifies summation-order differences (~1e-12 of the largest entry)
        theirs = p.grad.numpy()
        np.testing.assert_allclose(ours[name], theirs, rtol=RTOL, atol=1e-10 * np.abs(theirs).max(),
                                   err_msg=f"grad of {name}")
    _assert_state(module, params, new_state, "buffers after the step")
    return grads, new_state


def test_resnet18_outputs_and_grads(resnet_converters):
    torch.manual_seed(0)
    module = ResNet().double()
    layer, params, state = fl.from_torch(module)
    assert len(fl.state_dict(params, state)) == len(module.state_dict()) == 122
    x = _r(2, 3, 32, 32)
    _compare_grads(module, layer, params, state, [x], training=True)  # batch statistics, buffers updated
    # eval: torch's buffers moved in the train step; convert again and compare
    module.eval()
    layer, params, state = fl.from_torch(module)
    out, _ = jax.jit(lambda p, s, x: layer.apply(p, s, x))(params, state, jnp.asarray(x.numpy()))
    with torch.no_grad():
        _assert_outputs(out, module(x))


def test_transformer_outputs_and_grads():
    torch.manual_seed(0)
    module = nn.Transformer(d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=32,
                            dropout=0.1).double()
    layer, params, state = fl.from_torch(module)
    _assert_state(module, params, state, ordered=True)
    src, tgt = _r(5, 2, 16), _r(4, 2, 16, seed=1)
    kwargs = dict(tgt_mask=nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64),
                  src_key_padding_mask=torch.tensor([[False] * 5, [False] * 3 + [True] * 2]))
    _compare_grads(module, layer, params, state, [src, tgt], training=False, **kwargs)
    # train mode with dropout 0 (the outputs; the gradients' graph is the eval one's, checked above)
    for sub in module.modules():
        if isinstance(sub, nn.Dropout):
            sub.p = 0.0
        if isinstance(sub, nn.MultiheadAttention):
            sub.dropout = 0.0
    _check_case(module, (src, tgt), kwargs, training=True)


def test_round_trip_exact(resnet_converters):
    """fl.state_dict of the converted params loads into a fresh torch module: the same tensors, bit for bit;
    and after an update on our side, torch computes what we compute."""
    torch.manual_seed(0)
    module = ResNet(layers=(1, 1), width=8).double()
    module.train()
    module(_r(2, 3, 16, 16))  # move the BatchNorm buffers off their initial values
    layer, params, state = fl.from_torch(module)
    fresh = ResNet(layers=(1, 1), width=8).double()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in fl.state_dict(params, state).items()}, strict=True)
    for (name, a), (name_b, b) in zip(module.state_dict().items(), fresh.state_dict().items()):
        assert name == name_b and a.dtype == b.dtype and torch.equal(a, b), name
    params = jax.tree.map(lambda p: p * 1.5 + 0.25, params)
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in fl.state_dict(params, state).items()}, strict=True)
    x = _r(2, 3, 16, 16, seed=3)
    out, _ = jax.jit(layer.apply)(params, state, jnp.asarray(x.numpy()))
    _assert_outputs(out, fresh.eval()(x))


def test_float32_follows_torch():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Embedding(3, 2))
    layer, params, state = fl.from_torch(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)))
    assert {str(v.dtype) for v in jax.tree.leaves(params)} == {"float32"}
    layer, params, state = fl.from_torch(module.double())
    assert {str(v.dtype) for v in jax.tree.leaves(params)} == {"float64"}


def test_transformer_configurations_funclayers_cannot_express():
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, enable_nested_tensor=False)
    encoder.layers[1].dropout1.p = 0.3
    with pytest.raises(fl.TorchConversionError, match=r"layers\.1: TransformerEncoderLayer: its dropout rates differ"):
        fl.from_torch(encoder)
    encoder.layers[1] = nn.TransformerEncoderLayer(8, 2, 32)
    with pytest.raises(fl.TorchConversionError, match=r"\(root\): TransformerEncoder: its 2 layers differ"):
        fl.from_torch(encoder)


def test_float64_without_x64_warns_once():
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    with jax.enable_x64(False), pytest.warns(UserWarning) as record:
        layer, params, state = fl.from_torch(module)
    assert [str(w.message) for w in record] == [str(record[0].message)]
    assert "jax_enable_x64 is off" in str(record[0].message)
    assert {str(v.dtype) for v in jax.tree.leaves(params)} == {"float32"}


class Prompted(nn.Module):
    """A user module with its own parameter, a persistent and a non-persistent buffer, and Parameter containers."""

    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 4))
        self.register_buffer("offset", torch.randn(4))
        self.register_buffer("positions", torch.arange(4.0), persistent=False)
        self.scales = nn.ParameterList([nn.Parameter(torch.randn(4)) for _ in range(2)])
        self.extra = nn.ParameterDict({"a": nn.Parameter(torch.randn(4))})
        self.proj = nn.Linear(4, 4)

    def forward(self, x):
        x = self.proj(x + self.cls_token) * self.scales[0] * self.scales[1]
        return x + self.extra["a"] + self.offset + self.positions


def test_composite_with_own_tensors_and_parameter_containers():
    positions = jnp.arange(4.0)  # non-persistent: not in the state_dict, the forward closes over it

    def forward(m, x):
        x = m.proj(x + m.cls_token) * m.scales[0] * m.scales[1]
        return x + m.extra["a"] + m.offset + positions

    fl.register_torch_converter(Prompted, lambda module, convert: convert.composite(forward))
    try:
        torch.manual_seed(0)
        module = Prompted().double()
        layer, params, state = fl.from_torch(module)
        assert sorted(fl.state_dict(params, state)) == sorted(module.state_dict())  # no "positions"
        assert sorted(fl.state_dict(params, {})) == sorted(n for n, _ in module.named_parameters())
        x = _r(3, 4)
        _compare_grads(module, layer, params, state, [x], training=True)
        module.load_state_dict({k: torch.from_numpy(v) for k, v in fl.state_dict(params, state).items()},
                               strict=True)
    finally:
        fl.unregister_torch_converter(Prompted)


class MyBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x) * 2


class Untraceable(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x  # control flow on a tensor value: torch.fx cannot trace it


def test_custom_class_is_traced_and_untraceable_names_path_and_extension_point():
    module = nn.Sequential(OrderedDict(features=nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Identity(),
                                                              MyBlock())))
    layer, params, state = fl.from_torch(module.double())  # MyBlock's forward is traced
    x = _r(2, 1, 5, 4)
    _assert_outputs(layer.apply(params, state, _jax(x))[0], module.double()(x))
    module = nn.Sequential(OrderedDict(features=nn.Sequential(nn.ReLU(), Untraceable())))
    with pytest.raises(fl.TorchConversionError,
                       match=r"features\.1: Untraceable: .*fl\.register_torch_converter\(Untraceable"):
        fl.from_torch(module)
    with pytest.raises(TypeError, match=r"\(root\): Untraceable"):
        fl.from_torch(Untraceable())
    # an untraceable class deep inside: its path
    deep = nn.ModuleDict({"a": nn.ModuleList([nn.Linear(2, 2), nn.Sequential(Untraceable())])})
    with pytest.raises(TypeError, match=r"a\.1\.0: Untraceable"):
        fl.from_torch(deep)
    # a lazy module converts once torch has inferred its shapes
    lazy = nn.Sequential(nn.LazyLinear(2))
    with pytest.raises(TypeError, match=r"0: LazyLinear has not inferred its shapes yet; run one forward"):
        fl.from_torch(lazy)
    lazy(torch.ones(1, 3))
    assert fl.from_torch(lazy)[1]["0"]["weight"].shape == (2, 3)
    # a Python callable working on torch tensors cannot run on JAX arrays
    with pytest.raises(TypeError, match=r"\(root\): TripletMarginWithDistanceLoss: argument distance_function"):
        fl.from_torch(nn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: (a - b).abs().sum(-1)))


def test_hooks_warn_and_subclasses_are_traced():
    linear = nn.Linear(3, 2)
    linear.register_forward_hook(lambda module, inputs, output: output * 2)
    with pytest.warns(UserWarning, match=r"from_torch: 1: Linear has hooks \(_forward_hooks\)"):
        fl.from_torch(nn.Sequential(nn.ReLU(), linear))

    class MyLinear(nn.Linear):  # not torch.nn's class: its forward (F.linear) is traced
        pass

    module = MyLinear(3, 2).double()
    layer, params, state = fl.from_torch(module)
    x = _r(4, 3)
    _assert_outputs(layer.apply(params, state, _jax(x))[0], module(x))


def test_register_torch_converter_basic_block(resnet_converters):
    """The README's worked example: a user BasicBlock converted by the registered converter."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          BasicBlock(8, 8), BasicBlock(8, 16, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(16, 4)).double()
    layer, params, state = fl.from_torch(model)
    assert "downsample" in params["4"] and "downsample" not in params["3"]
    x = _r(2, 3, 8, 8)
    _compare_grads(model, layer, params, state, [x], training=True)
    with pytest.raises(TypeError, match="must be callable"):
        fl.register_torch_converter(BasicBlock, "not a function")
    fl.register_torch_converter(MyBlock, lambda module, convert: "not a layer")
    try:
        with pytest.raises(TypeError, match=r"\(root\): the converter for MyBlock returned str"):
            fl.from_torch(MyBlock())
    finally:
        fl.unregister_torch_converter(MyBlock)


def test_torch_is_a_lazy_import():
    code = "import funclayers, sys; assert 'torch' not in sys.modules, 'funclayers imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_readme_porting_section_runs():
    """The README's 'Porting from torch' code blocks run as written (the BasicBlock example included)."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Porting from torch", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    namespace = dict(jax=jax, jnp=jnp, fl=fl)
    torch.manual_seed(0)
    from torchvision_import import import_torchvision

    import_torchvision()  # the README's first block ports a torchvision model
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        if "BasicBlock" in namespace:
            fl.unregister_torch_converter(namespace["BasicBlock"])
    assert set(namespace["params"]["1"]) == {"conv1", "bn1", "conv2", "bn2"}
    assert "downsample" in namespace["params"]["2"]


@pytest.mark.parametrize("name", ["from_torch", "register_torch_converter", "torch_to_layer"])
def test_docstring_examples_run(name):
    import doctest

    test = doctest.DocTestFinder().find(getattr(fl, name), name, globs={"fl": fl})[0]
    runner = doctest.DocTestRunner()
    try:
        runner.run(test, clear_globs=False)
    finally:
        if "BasicBlock" in test.globs:
            fl.unregister_torch_converter(test.globs["BasicBlock"])
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0, result
