"""Whole torchvision models ported with one fl.from_torch call, against torch.

For each model (no weights, small inputs, batch 2): the eval-mode output and the gradients of a
weighted sum of the outputs with respect to every parameter, and a training-mode forward (output
and every updated buffer), all in one jitted call per model and dtype; then our state_dict loads
back into the torch model with strict=True. Errors are relative, as the issue defines them:
norm(ours - torch) / norm(torch), per output and per parameter, <= 2e-4 (float32) and <= 1e-9
(float64), gradients x10. The float32 runs are checked against torch in float64 on the same
(float32-valued) weights and inputs, the exact answer: torch's float32 can be further from it than ours.

A freshly built model can make a comparison vacuous (ViT's head is zero, BatchNorm's weight is
all ones and its running statistics 0 and 1): every parameter and buffer whose entries are all
equal gets noise first. Dropout and stochastic depth are set to p=0 before conversion so that
the training-mode forward is deterministic and comparable (their random statistics are tested
below and in test_port_ops.py); eval mode never draws. Inputs are large enough that no
BatchNorm normalises fewer than 4 values per channel in training mode (2 values normalise to
+-1 whatever they are, so the comparison would only measure rounding): 64x64 images, batch 4
where a pooled 1x1 map meets a BatchNorm (inception_v3, deeplabv3's ASPP pooling). The
heaviest models (by compile time) run in float64 only, the rest in both dtypes.

On CPU the checked program is compiled with XLA's LLVM backend at -O0: the same HLO (the library's program,
every lowering as users get it), in a third less CPU time per model (densenet121 float64: 47 -> 31 s, of
which compilation 39 -> 22 s; execution 0.8 -> 0.9 s). regnet_y_400mf's 89 s are spent before LLVM, -O0 or not.
"""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torchvision_import import import_torchvision

import funclayers as fl

tv = import_torchvision()
M = tv.models

BOUND = {np.float32: 2e-4, np.float64: 1e-9}
# LLVM's optimisations take 40% of a model's compilation and save nothing on one call (see the docstring)
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None

# name: (builder, input shape, training-mode check, dtypes)
BOTH, F64 = (np.float32, np.float64), (np.float64,)
MODELS = {
    "resnet18": (lambda: M.resnet18(), (2, 3, 64, 64), True, BOTH),
    "resnet50": (lambda: M.resnet50(), (2, 3, 64, 64), True, F64),
    "mobilenet_v2": (lambda: M.mobilenet_v2(), (2, 3, 64, 64), True, F64),
    "mobilenet_v3_small": (lambda: M.mobilenet_v3_small(), (2, 3, 64, 64), True, F64),
    "efficientnet_b0": (lambda: M.efficientnet_b0(), (2, 3, 64, 64), True, F64),
    "convnext_tiny": (lambda: M.convnext_tiny(), (2, 3, 64, 64), True, F64),
    "densenet121": (lambda: M.densenet121(), (2, 3, 64, 64), True, F64),
    "shufflenet_v2_x0_5": (lambda: M.shufflenet_v2_x0_5(), (2, 3, 64, 64), True, BOTH),
    "squeezenet1_1": (lambda: M.squeezenet1_1(), (2, 3, 64, 64), True, BOTH),
    "googlenet": (lambda: M.googlenet(init_weights=False, aux_logits=True), (2, 3, 32, 32), False, F64),
    "inception_v3": (lambda: M.inception_v3(init_weights=False, aux_logits=False), (4, 3, 75, 75), True, F64),
    "regnet_y_400mf": (lambda: M.regnet_y_400mf(), (2, 3, 64, 64), True, F64),
    "mnasnet0_5": (lambda: M.mnasnet0_5(), (2, 3, 64, 64), True, F64),
    "swin_t": (lambda: M.swin_t(), (2, 3, 64, 64), True, F64),
    "vit": (lambda: M.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
                                        mlp_dim=32, num_classes=10), (2, 3, 32, 32), True, BOTH),
    "fcn_resnet50": (lambda: M.segmentation.fcn_resnet50(weights_backbone=None, aux_loss=True), (2, 3, 64, 64),
                     True, F64),
    "deeplabv3_mobilenet_v3_large": (lambda: M.segmentation.deeplabv3_mobilenet_v3_large(weights_backbone=None),
                                     (4, 3, 64, 64), True, F64),
    "r3d_18": (lambda: M.video.r3d_18(), (2, 3, 8, 32, 32), True, F64),
}
CASES = [pytest.param(name, dtype, id=f"{name}-{np.dtype(dtype).name}")
         for name, (_, _, _, dtypes) in MODELS.items() for dtype in dtypes]


def _prepare(module, dtype):
    """Noise on every all-equal tensor, random layers at p=0, the module in `dtype`."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point() or tensor.numel() < 2 or not bool((tensor == tensor.flatten()[0]).all()):
                continue
            noise = torch.rand(tensor.shape, generator=gen)
            if name.endswith("running_var"):
                tensor.mul_(0.5 + noise)
            else:
                tensor.add_(0.2 * (noise - 0.5))
    for sub in module.modules():
        if isinstance(sub, (torch.nn.Dropout, tv.ops.StochasticDepth)):
            sub.p = 0.0
    return module.to(torch.float64 if dtype == np.float64 else torch.float32)


def _leaves(out):
    if isinstance(out, dict):  # torch's OrderedDict order (ours keeps it, under jit too)
        return [leaf for value in out.values() for leaf in _leaves(value)]
    if isinstance(out, (tuple, list)):
        return [leaf for value in out for leaf in _leaves(value)]
    return [out]


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _assert_rel(ours, theirs, bound, what):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch {theirs.shape}"
    scale = np.linalg.norm(theirs)
    assert scale > 0, f"{what}: torch's value is all zeros, the comparison would be vacuous"
    err = np.linalg.norm(ours - theirs) / scale
    assert err <= bound, f"{what}: relative error {err:.3g} > {bound:.0e}"


def _assert_well_posed(module32, module64, x, weights, bound):
    """torch's float32 gradients agree with the exact (float64) ones: the instance has no kink in reach."""
    out32 = module32(torch.from_numpy(x))
    sum((o * torch.from_numpy(w)).sum() for o, w in zip(_leaves(out32), weights)).backward()
    exact = dict(module64.named_parameters())
    for pname, param in module32.named_parameters():
        if param.grad is not None:
            _assert_rel(param.grad.numpy(), exact[pname].grad.numpy(), bound,
                        f"torch's own float32 gradient of {pname} (an ill-posed float32 instance: change the seed)")


@pytest.mark.parametrize("name,dtype", CASES)
def test_torchvision_model_matches_torch(name, dtype, request):
    if dtype == np.float64:
        request.getfixturevalue("x64")
    builder, shape, check_training, _ = MODELS[name]
    torch.manual_seed(0)
    module = _prepare(builder(), dtype).eval()
    layer, params, state = fl.from_torch(module)
    # The oracle: torch in float64 on the same (float32-valued) weights and inputs, i.e. the exact
    # answer to float32's question. torch's own float32 is not one: single-threaded (conftest), its
    # weight gradient of squeezenet1_1's first convolution is 5% off the float64 result (ours 5.5e-7).
    # A float32 instance must also be well posed: no ReLU or max-pool decision within float32
    # rounding of its kink, where any float32 computation (torch's or ours) may take the other branch
    # and every gradient upstream then differs from the exact one by 1e-3..5e-2 (input seed 0 had
    # such a point in squeezenet1_1, where torch's own float32 gradients are 5% off, and in
    # resnet18). The seed below gives none; `_assert_well_posed` checks that with torch's float32.
    module32 = None if dtype == np.float64 else module
    module = module if dtype == np.float64 else copy.deepcopy(module).double()
    rng = np.random.default_rng(0 if dtype == np.float64 else 1)
    x = rng.standard_normal(shape).astype(dtype)

    torch_eval = module(torch.from_numpy(x).double())
    weights = [rng.standard_normal(tuple(leaf.shape)).astype(dtype) for leaf in _leaves(torch_eval)]

    def step(params, state, x, weights):
        def loss(params):
            out, _ = layer.apply(params, state, x)
            return sum(jnp.sum(o * w) for o, w in zip(_leaves(out), weights)), out

        (_, out), grads = jax.value_and_grad(loss, has_aux=True)(params)
        train = layer.apply(params, state, x, training=True) if check_training else None
        return out, grads, train

    out, grads, train = jax.jit(step, compiler_options=COMPILER_OPTIONS)(params, state, x, weights)

    bound = BOUND[dtype]
    for i, (ours, theirs) in enumerate(zip(_leaves(out), _leaves(torch_eval), strict=True)):
        _assert_rel(ours, theirs.detach().numpy(), bound, f"{name} eval output {i}")
    loss = sum((o * torch.from_numpy(w).double()).sum() for o, w in zip(_leaves(torch_eval), weights))
    loss.backward()
    if module32 is not None:
        _assert_well_posed(module32, module, x, weights, bound)
    our_grads = _flat(grads)
    for pname, param in module.named_parameters():
        if param.grad is None:  # unused in eval mode (GoogLeNet's and Inception's auxiliary heads)
            np.testing.assert_array_equal(our_grads[pname], 0.0, err_msg=f"{name} gradient of {pname}")
            continue
        _assert_rel(our_grads[pname], param.grad.numpy(), 10 * bound, f"{name} gradient of {pname}")

    if check_training:
        train_module = copy.deepcopy(module).train()
        torch_train = train_module(torch.from_numpy(x).double())
        train_out, new_state = train
        for i, (ours, theirs) in enumerate(zip(_leaves(train_out), _leaves(torch_train), strict=True)):
            _assert_rel(ours, theirs.detach().numpy(), bound, f"{name} training output {i}")
        ours_sd = fl.state_dict(params, new_state)
        for bname, buffer in train_module.named_buffers():
            if buffer.is_floating_point():
                _assert_rel(ours_sd[bname], buffer.numpy(), bound, f"{name} buffer {bname} after a training step")
            else:
                np.testing.assert_array_equal(ours_sd[bname], buffer.numpy(), err_msg=bname)
        state = new_state
        module = train_module

    sd = module.state_dict()  # torch's OrderedDict, for its _metadata (MNASNet's loader reads its version)
    sd.update({k: torch.from_numpy(np.array(v)) for k, v in fl.state_dict(params, state).items()})
    module.load_state_dict(sd, strict=True)


def test_stochastic_depth_draws_with_torchs_statistics():
    """torchvision's StochasticDepth in a traced block: whole rows dropped with probability p, kept ones scaled."""

    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = tv.ops.StochasticDepth(0.3, "row")

        def forward(self, x):
            return x + self.drop(torch.ones_like(x))

    layer, params, state = fl.from_torch(Residual())
    x = jnp.zeros((4000, 3))
    out, _ = layer.apply(params, state, x, training=True, rng=jax.random.PRNGKey(0))
    out = np.asarray(out)
    assert np.all(out == out[:, :1])  # "row": one draw per sample
    kept = out[:, 0] != 0
    assert abs(kept.mean() - 0.7) < 0.03
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(layer.apply(params, state, x)[0], 1.0)  # eval: the identity
