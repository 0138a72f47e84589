"""fl.from_torch on custom torch modules: their forward code traced with torch.fx and run as JAX.

Small hand-written modules exercise the op translations (broadcasting, dtype promotion, dim /
keepdim, negative dims, -1 in shapes, in-place ops, indexing, x.shape / x.size(i), cat / stack /
flatten / chunk / split, F.* calls), parameters a custom module owns, nested traced modules,
outputs of every structure, the training flag, the transformations, and the error messages.
Each parity case runs through `oracle.check_layer`: outputs, gradients w.r.t. inputs and every
parameter, buffers, float32 and float64.
"""

import collections
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracle import check_layer, randn, tolerance
from torch import nn

import funclayers as fl


def _convert(module, dtype):
    module = module.to(torch.float64 if np.dtype(dtype) == np.float64 else torch.float32)
    layer, _, _ = fl.from_torch(module)
    return layer


class Arithmetic(nn.Module):
    """Broadcasting, scalar and 0-dim promotion, reductions with dim / keepdim / negative dims."""

    def forward(self, x, y):
        a = x + y * 2 - y / 3                         # (2, 3, 4) with (4,)
        b = (a * x).sum(-1, keepdim=True) / x.shape[-1]
        c = a.mean((1, -1)) + x.amax(dim=1).sum(1)
        d = torch.maximum(a, x) ** 2 + (x > 0).float() * 0.5 + torch.tensor(1.5, dtype=torch.float64)
        e = x.var(-1, unbiased=False) + x.std(dim=(0, 2))
        idx = x.argmax(-1)
        return a, b, c, d, e, idx, x.max(1)[0], x.max(dim=-1).indices


class Shapes(nn.Module):
    """Views with -1, permutes, flatten, squeeze / unsqueeze, expand, x.size(i), indexing."""

    def forward(self, x):
        n = x.size(0)
        h, w = x.shape[-2:]
        a = x.view(n, -1).reshape(-1, h, w).permute(1, 0, 2).transpose(-1, 0)
        b = torch.flatten(x, 1) + x.flatten(start_dim=1)
        c = x.unsqueeze(-1).squeeze(-1).expand(2, -1, -1, -1) * x[None, ..., None].squeeze(-1)
        d = x[:, 1:3, ::2, -1] + x[0, :2, None, 0, 1:2].mean()
        e = x.contiguous().view(n, x.size(1), h * w).transpose(1, 2).unflatten(1, (h, -1))
        return a, b, c, d, e


class Joins(nn.Module):
    """torch.cat / stack, chunk (uneven), split by size and by sections, unbind."""

    def forward(self, x, y):
        a = torch.cat([x, y], dim=-1)
        b = torch.stack((x, y), 1)
        c1, c2, c3 = x.chunk(3, dim=-1)       # 5 -> 2, 2, 1
        s1, s2 = torch.split(y, [2, 3], -1)
        t = y.split(2, dim=-1)
        u = torch.unbind(x, 1)
        return a, b, c1 + c2, c3, s1 * 2, s2, t[-1], u[0] - u[1], torch.cat(t, -1)


class InPlace(nn.Module):
    """In-place ops made functional: +=, mul_, F.relu(inplace=True), x[...] = v, on a clone and on the input."""

    def forward(self, x):
        y = x.clone()
        y += 1
        y.mul_(2)
        F.relu(y, inplace=True)
        y = y.masked_fill(y > 3, 0.5)
        w = x * 1
        w.add_(3)                # in place: later reads of w see the new value
        z = torch.relu_(w - 4)
        return y, w * 2, z


class Functional(nn.Module):
    """F.* calls on parameters the module owns directly, with its buffers."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3) * 0.3)
        self.bias = nn.Parameter(torch.randn(4))
        self.scale = nn.Parameter(torch.rand(4) + 0.5)
        self.register_buffer("shift", torch.randn(4))
        self.register_buffer("table", torch.arange(4.0), persistent=False)

    def forward(self, x):
        x = F.conv2d(x, self.weight, self.bias, padding=1)
        x = F.layer_norm(x.permute(0, 2, 3, 1), (4,), self.scale, self.shift).permute(0, 3, 1, 2)
        x = F.gelu(x) + F.silu(x) * self.table[:, None, None]
        x = F.max_pool2d(x, 2) + F.avg_pool2d(x, 2)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return F.softmax(x, dim=-1), F.log_softmax(x, -1), F.normalize(x, dim=1), F.dropout(x, 0.3, self.training)


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.rand(6) + 0.5)
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        return self.fc(x) * self.gamma + x


class Outer(nn.Module):
    """A traced-through child owning a parameter, a Sequential of custom blocks, a ModuleList, a BatchNorm."""

    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 6))
        self.inner = Inner()
        self.blocks = nn.Sequential(Inner(), Inner())
        self.heads = nn.ModuleList([nn.Linear(6, 2), nn.Linear(6, 3)])
        self.norm = nn.BatchNorm1d(6)

    def forward(self, x):
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.blocks(self.inner(x))
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.heads[0](x[:, 0]), self.heads[1](x.mean(1))


CASES = {
    "arithmetic": (Arithmetic, [(2, 3, 4), (4,)]),
    "shapes": (Shapes, [(2, 3, 4, 5)]),
    "joins": (Joins, [(2, 3, 5), (2, 3, 5)]),
    "inplace": (InPlace, [(3, 4)]),
    "functional": (Functional, [(2, 3, 8, 8)]),
    "nested": (Outer, [(2, 4, 6)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_custom_module_matches_torch(case, dtype):
    cls, shapes = CASES[case]
    torch.manual_seed(0)
    module = cls()
    inputs = [randn(*shape, dtype=dtype, seed=i) for i, shape in enumerate(shapes)]
    check_layer(module, _convert(module, dtype), inputs, dtype=dtype)


def test_nested_module_in_training_mode_updates_buffers(dtype):
    torch.manual_seed(0)
    module = Outer()
    check_layer(module, _convert(module, dtype), [randn(2, 4, 6, dtype=dtype)], dtype=dtype, training=True)


def test_state_dict_names_and_round_trip():
    torch.manual_seed(0)
    module = Outer()
    layer, params, state = fl.from_torch(module)
    assert list(fl.state_dict(params, state)) == list(module.state_dict())
    assert sorted(params) == ["blocks", "cls_token", "heads", "inner", "norm"]
    fresh_params, fresh_state = layer.init(jax.random.PRNGKey(0))  # the converted layer inits as any layer
    assert jax.tree.structure(fresh_params) == jax.tree.structure(params)
    assert jax.tree.structure(fresh_state) == jax.tree.structure(state)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in fl.state_dict(params, state).items()},
                           strict=True)
    # a non-persistent buffer is closed over, not in state
    _, params, state = fl.from_torch(Functional())
    assert list(fl.state_dict(params, state)) == ["weight", "bias", "scale", "shift"]


class Structured(nn.Module):
    Pair = collections.namedtuple("Pair", ["logits", "aux"])

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x, scale: float = 2.0):
        out = collections.OrderedDict()
        out["main"] = self.fc(x) * scale
        out["pair"] = self.Pair(x.sum(-1), [x[:, 0], (x[:, 1],)])
        return out


def test_outputs_keep_their_structure_without_torch_objects():
    torch.manual_seed(0)
    module = Structured()
    layer, params, state = fl.from_torch(module)
    x = randn(4, 3)
    out, _ = jax.jit(lambda p, s, x: layer.apply(p, s, x, scale=3.0))(params, state, x)
    ref = module(torch.from_numpy(x), scale=3.0)
    assert list(out) == ["main", "pair"]
    assert type(out["pair"]).__name__ == "Pair" and out["pair"]._fields == ("logits", "aux")
    assert type(out["pair"]) is not Structured.Pair and type(out["pair"]).__module__.startswith("funclayers")
    np.testing.assert_allclose(out["main"], ref["main"].detach().numpy(), **tolerance(np.float32))
    np.testing.assert_allclose(out["pair"].aux[1][0], ref["pair"].aux[1][0].numpy(), **tolerance(np.float32))


class TrainingSwitch(nn.Module):
    def forward(self, x):
        if self.training:
            return F.dropout(x, 0.5, True) * 0 + 1
        return x * 2


def test_training_flag_picks_the_graph_traced_in_that_mode():
    layer, params, state = fl.from_torch(TrainingSwitch())
    x = jnp.ones((3,))
    np.testing.assert_array_equal(layer.apply(params, state, x)[0], 2 * x)
    np.testing.assert_array_equal(layer.apply(params, state, x, training=True, rng=jax.random.PRNGKey(0))[0],
                                  jnp.ones(3))
    with pytest.raises(ValueError, match="rng"):
        layer.apply(params, state, x, training=True)


class DropBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return x + F.dropout(self.fc(x), p=0.25, training=self.training)


def test_dropout_in_training_mode_has_torch_statistics():
    layer, params, state = fl.from_torch(DropBranch())
    params = jax.tree.map(jnp.zeros_like, params)
    params["fc"]["bias"] = jnp.ones(8)
    x = jnp.zeros((2000, 8))
    out, _ = layer.apply(params, state, x, training=True, rng=jax.random.PRNGKey(1))
    kept = np.asarray(out) != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(np.asarray(out)[kept], 1 / 0.75, rtol=1e-6)
    eval_out, _ = layer.apply(params, state, x)
    np.testing.assert_array_equal(eval_out, 1.0)


def test_transformations_and_composition():
    torch.manual_seed(0)
    module = Inner()
    layer, params, state = fl.from_torch(module)
    x = jnp.asarray(randn(5, 6))
    f = lambda p, x: layer.apply(p, state, x)[0].sum()  # noqa: E731
    g = jax.jit(jax.grad(f))(params, x)
    np.testing.assert_allclose(g["gamma"], jax.grad(f)(params, x)["gamma"], rtol=1e-6)
    batched = jax.vmap(lambda x: layer.apply(params, state, x)[0])(x[:, None])
    np.testing.assert_allclose(batched[:, 0], layer.apply(params, state, x)[0], rtol=1e-6)
    primal, tangent = jax.jvp(lambda x: layer.apply(params, state, x)[0], (x,), (jnp.ones_like(x),))
    ref = jax.jacfwd(lambda x: layer.apply(params, state, x)[0].sum(0))(x)  # row i depends on x[i]
    np.testing.assert_allclose(tangent.sum(0), ref.sum((1, 2)), rtol=1e-5)
    net = fl.Sequential(layer, fl.ReLU())  # composes as any layer
    assert net.apply({"0": params, "1": {}}, {"0": state, "1": {}}, x)[0].shape == (5, 6)


def test_apply_runs_without_torch(monkeypatch):
    torch.manual_seed(0)
    module = Functional()
    layer, params, state = fl.from_torch(module)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` would now raise ImportError
    for name in ("conv2d", "layer_norm", "gelu", "softmax", "interpolate"):
        monkeypatch.setattr(F, name, None)
    out, _ = jax.jit(lambda p, s, x: layer.apply(p, s, x))(params, state, randn(2, 3, 8, 8))
    assert out[0].shape == (2, 4)


class UnknownOp(nn.Module):
    def forward(self, x):
        return torch.special.bessel_j0(x) + 1


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), UnknownOp())

    def forward(self, x):
        return self.body(x)


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


def test_errors_name_the_op_module_and_source_line():
    with pytest.raises(fl.TorchConversionError,
                       match=r"body\.1: UnknownOp: torch\..*bessel_j0 has no JAX translation; called at "
                             r".*test_port_ops\.py:\d+: `return torch\.special\.bessel_j0\(x\) \+ 1`"):
        fl.from_torch(Wrapper())
    with pytest.raises(fl.TorchConversionError,
                       match=r"\(root\): DataDependent: its forward cannot be traced symbolically .*control flow"
                             r".*fl\.register_torch_converter\(DataDependent, fn\)"):
        fl.from_torch(DataDependent())
    # a registered converter takes precedence over tracing: the untraceable module becomes a leaf
    fl.register_torch_converter(DataDependent, lambda module, convert: convert.composite(
        lambda m, x: jnp.where(x.sum() > 0, x, -x)))
    try:
        layer, params, state = fl.from_torch(nn.Sequential(DataDependent()))
        np.testing.assert_array_equal(layer.apply(params, state, -jnp.ones(2))[0], jnp.ones(2))
    finally:
        fl.unregister_torch_converter(DataDependent)


def drop_path(x, drop_prob: float = 0.0, training: bool = False, scale_by_keep: bool = True):
    """timm's drop_path, verbatim: traced through (x.ndim, new_empty, bernoulli_, div_)."""
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPathBlock(nn.Module):
    def __init__(self, drop_prob):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return x + drop_path(torch.ones_like(x), self.drop_prob, self.training)


def test_timm_drop_path_draws_per_sample_in_training_and_composes_with_data_parallel():
    layer, params, state = fl.from_torch(DropPathBlock(0.2))
    x = jnp.zeros((4000, 2, 3))
    out, _ = layer.apply(params, state, x, training=True, rng=jax.random.PRNGKey(3))
    out = np.asarray(out).reshape(4000, -1)
    assert np.all(out == out[:, :1])
    kept = out[:, 0] != 0
    assert abs(kept.mean() - 0.8) < 0.03
    np.testing.assert_allclose(out[kept], 1 / 0.8, rtol=1e-6)
    parallel = fl.DataParallel(layer)
    y, _ = parallel.apply({"module": params}, {"module": state}, x[:8])
    np.testing.assert_array_equal(y, 1.0)


class BatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d pattern: an nn.BatchNorm2d subclass (traced) calling F.batch_norm on its own buffers."""

    def forward(self, x):
        if self.training:
            self.num_batches_tracked.add_(1)
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                         self.momentum, self.eps)
        return F.relu(x)


def test_functional_batch_norm_updates_buffers_in_training(dtype):
    torch.manual_seed(0)
    module = BatchNormAct(3)
    with torch.no_grad():
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.5, 0.5)
    check_layer(module, _convert(module, dtype), [randn(4, 3, 5, 5, dtype=dtype)], dtype=dtype, training=True,
                steps=2)
