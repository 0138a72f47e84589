"""fl.utils fusion, stateless.functional_call, skip_init, memory formats and the from_torch converters."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import TORCH_DTYPES, assert_close, check_layer, randn, tolerance

import funclayers as fl
from funclayers.utils._from_torch import (
    convert_hook_norms,
    convert_parametrized,
    is_parametrized_module,
    uses_hook_norms,
)


def _randomised_bn(bn):
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        if bn.weight is not None:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-1, 1)
    return bn.eval()


@pytest.mark.parametrize("make_conv, make_bn, shape, transpose", [
    pytest.param(lambda t: t.Conv2d(3, 4, 3, bias=False), lambda t: t.BatchNorm2d(4), (2, 3, 5, 5), False,
                 id="conv2d-no_bias"),
    pytest.param(lambda t: t.Conv1d(3, 4, 2), lambda t: t.BatchNorm1d(4, eps=1e-3, affine=False), (3, 5), False,
                 id="conv1d-unbatched-no_affine"),
    pytest.param(lambda t: t.ConvTranspose2d(3, 4, 2, groups=1), lambda t: t.BatchNorm2d(4), (1, 3, 3, 3), True,
                 id="conv_transpose2d"),
])
def test_fuse_conv_bn_eval_matches_torch(make_conv, make_bn, shape, transpose, dtype):
    torch.manual_seed(0)
    tdtype = TORCH_DTYPES[np.dtype(dtype)]
    conv, bn = make_conv(torch.nn).to(tdtype).eval(), _randomised_bn(make_bn(torch.nn).to(tdtype))
    fused_t = torch.nn.utils.fuse_conv_bn_eval(conv, bn, transpose=transpose)
    conv_l, bn_l = make_conv(fl), make_bn(fl)
    cp, cs = fl.load_state_dict(conv_l, conv.state_dict(), dtype=dtype)
    bp, bs = fl.load_state_dict(bn_l, bn.state_dict(), dtype=dtype)
    fused, fp = fl.utils.fuse_conv_bn_eval(conv_l, cp, bn_l, bp, bs, transpose=transpose)
    for name, value in fused_t.state_dict().items():
        assert_close(fp[name], value, name, **tolerance(dtype))
    assert list(fl.load_state_dict(fused, fused_t.state_dict())[0]) == ["weight", "bias"]  # loads as torch's
    x = randn(*shape, dtype=dtype)
    out = jax.jit(lambda p, x: fused.apply(p, {}, x)[0])(fp, jnp.asarray(x))
    assert_close(out, fused_t(torch.from_numpy(x)), "fused output", **tolerance(dtype))


def test_fuse_linear_bn_eval_matches_torch(dtype):
    torch.manual_seed(0)
    tdtype = TORCH_DTYPES[np.dtype(dtype)]
    for bias in (True, False):
        linear = torch.nn.Linear(3, 4, bias=bias).to(tdtype).eval()
        bn = _randomised_bn(torch.nn.BatchNorm1d(4).to(tdtype))
        fused_t = torch.nn.utils.fuse_linear_bn_eval(linear, bn)
        lin_l, bn_l = fl.Linear(3, 4, bias=bias), fl.BatchNorm1d(4)
        lp, _ = fl.load_state_dict(lin_l, linear.state_dict(), dtype=dtype)
        bp, bs = fl.load_state_dict(bn_l, bn.state_dict(), dtype=dtype)
        fused, fp = fl.utils.fuse_linear_bn_eval(lin_l, lp, bn_l, bp, bs)
        x = randn(2, 3, dtype=dtype)
        assert_close(fused.apply(fp, {}, jnp.asarray(x))[0], fused_t(torch.from_numpy(x)), "output", **tolerance(dtype))
        w, b = fl.utils.fuse_linear_bn_weights(lp["weight"], lp.get("bias"), bs["running_mean"], bs["running_var"],
                                               1e-5, bp["weight"], bp["bias"])
        assert_close(w, fused_t.weight, "weight", **tolerance(dtype))
        assert_close(b, fused_t.bias, "bias", **tolerance(dtype))


def test_fusion_errors():
    bn, bn_params_state = fl.BatchNorm1d(4, track_running_stats=False), ({}, {})
    with pytest.raises(ValueError, match="running_mean and bn.running_var must not be None"):
        fl.utils.fuse_linear_bn_eval(fl.Linear(3, 4), {"weight": jnp.ones((4, 3))}, bn, *bn_params_state)
    with pytest.raises(ValueError, match="expects a BatchNorm layer"):
        fl.utils.fuse_linear_bn_eval(fl.Linear(3, 4), {"weight": jnp.ones((4, 3))}, fl.ReLU(), {}, {})
    with pytest.raises(ValueError, match="expects a convolution layer"):
        fl.utils.fuse_conv_bn_eval(fl.Linear(3, 4), {}, fl.BatchNorm1d(4), {}, {})
    with pytest.raises(ValueError, match="linear.out_features == bn.num_features"):
        fl.utils.fuse_linear_bn_eval(fl.Linear(3, 4), {"weight": jnp.ones((4, 3))}, fl.BatchNorm1d(3), {},
                                     {"running_mean": jnp.zeros(3), "running_var": jnp.ones(3)})


def test_functional_call_matches_torch():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    layer = fl.Sequential(fl.Linear(3, 4), fl.BatchNorm1d(4), fl.Linear(4, 2))
    params, state = fl.load_state_dict(layer, module.state_dict())
    new_w = randn(2, 4, seed=3)
    x = randn(5, 3)
    module.eval()
    expected = torch.func.functional_call(module, {"2.weight": torch.from_numpy(new_w)}, (torch.from_numpy(x),))
    ours = fl.utils.stateless.functional_call(layer, {"2.weight": jnp.asarray(new_w)}, (jnp.asarray(x),),
                                              base=(params, state))
    assert_close(ours, expected, "output", **tolerance(np.float32))
    # nested dicts, a tuple of dicts, kwargs, the new state, strict
    full = {**fl.state_dict(params, state)}
    out, new_state = fl.utils.stateless.functional_call(layer, ({"0": params["0"]}, {k: v for k, v in full.items()
                                                                                  if not k.startswith("0.")}),
                                                        jnp.asarray(x), {"training": True}, return_state=True)
    assert out.shape == (5, 2) and int(new_state["1"]["num_batches_tracked"]) == 1
    with pytest.raises(ValueError, match="Missing key"):
        fl.utils.stateless.functional_call(layer, {"0.weight": jnp.ones((4, 3))}, jnp.asarray(x), strict=True)
    with pytest.raises(ValueError, match="no value for"):
        fl.utils.stateless.functional_call(layer, {"0.weight": jnp.ones((4, 3))}, jnp.asarray(x))
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        fl.utils.stateless.functional_call(layer, ({"0.weight": 1}, {"0": {"weight": 1}}), jnp.asarray(x))
    grad = jax.grad(lambda w: fl.utils.stateless.functional_call(layer, {"2.weight": w}, jnp.asarray(x),
                                                                 base=(params, state)).sum())(jnp.asarray(new_w))
    assert grad.shape == (2, 4)


def test_skip_init_and_memory_format():
    layer = fl.utils.skip_init(fl.Conv2d, 3, 4, 3, device="cpu")
    params, state = layer.init(jax.random.PRNGKey(0))
    assert params["weight"].shape == (4, 3, 3, 3) and not bool(jnp.any(params["weight"]))
    bn = fl.utils.skip_init(fl.BatchNorm2d, 4)
    _, bn_state = bn.init(jax.random.PRNGKey(0))
    assert bn_state["num_batches_tracked"].dtype == jnp.int32 or bn_state["num_batches_tracked"].dtype == jnp.int64
    with pytest.raises(TypeError, match="did not return a funclayers Layer"):
        fl.utils.skip_init(lambda: 3)
    with pytest.raises(TypeError, match="Expected a funclayers layer constructor"):
        fl.utils.skip_init(3)
    conv = fl.Conv3d(2, 2, 1)
    assert fl.utils.convert_conv3d_weight_memory_format(conv, torch.channels_last_3d) is conv
    assert fl.utils.convert_conv2d_weight_memory_format(conv, torch.channels_last) is conv


# -- the from_torch converters ---------------------------------------------------------------------------------


def test_convert_parametrized_modules_match_torch(dtype):
    torch.manual_seed(0)
    P = torch.nn.utils.parametrizations
    model = torch.nn.Sequential(P.weight_norm(torch.nn.Conv1d(2, 3, 2)), P.spectral_norm(torch.nn.Conv1d(3, 3, 1)),
                                P.orthogonal(torch.nn.Linear(3, 3), orthogonal_map="cayley"))
    assert is_parametrized_module(model[0]) and not is_parametrized_module(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def convert(module):
        if is_parametrized_module(module):
            return convert_parametrized(module, convert)
        if isinstance(module, torch.nn.Sequential):
            return fl.Sequential(*[convert(child) for child in module])
        return fl.torch_to_layer(module)

    layer = convert(model)
    for name, value in model.state_dict().items():  # the torch module is left as it was
        assert torch.equal(value, before[name]), name
    check_layer(model, layer, [randn(2, 2, 4)], dtype=dtype, training=True, steps=2)


def test_convert_hook_norms_match_torch(dtype):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.nn.utils.spectral_norm(torch.nn.utils.weight_norm(torch.nn.Linear(4, 3), dim=None),
                                              name="bias")
    assert uses_hook_norms(module) and not uses_hook_norms(torch.nn.Linear(2, 2))
    layer = convert_hook_norms(module, fl.torch_to_layer)
    assert module(torch.ones(1, 4)).shape == (1, 3)  # the torch module still works
    check_layer(module, layer, [randn(2, 4)], dtype=dtype, training=True, steps=2)


class _Generator(torch.nn.Module):
    """A custom module (traced by from_torch) whose children torch.nn.utils wraps."""

    def __init__(self):
        super().__init__()
        P = torch.nn.utils.parametrizations
        self.proj = P.weight_norm(torch.nn.Linear(4, 6))
        self.conv = torch.nn.utils.spectral_norm(torch.nn.Conv1d(2, 2, 3, padding=1))
        self.head = P.orthogonal(torch.nn.Linear(6, 6))

    def forward(self, x):
        h = torch.tanh(self.proj(x)).view(x.shape[0], 2, 3)
        h = self.conv(h).flatten(1)
        return self.head(h) + h


def test_from_torch_converts_wrapped_children_through_fl_utils(dtype):
    """fl.from_torch sends parametrized and hook-normed modules to fl.utils' converters, also inside a
    traced custom module (a ParametrizedLinear would otherwise convert as a plain Linear)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = _Generator()
    layer = fl.torch_to_layer(model)
    check_layer(model, layer, [randn(3, 4)], dtype=dtype, training=True, steps=2)
    _, params, state = fl.from_torch(model.to(TORCH_DTYPES[np.dtype(dtype)]))
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in fl.state_dict(params, state).items()},
                          strict=True)
