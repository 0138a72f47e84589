"""Mixed dtypes against torch 2.13 (issue 27): a layer raises, with torch's message, exactly where torch
raises for an input whose dtype is not its parameters' (float64 into float32, float32 into float64,
bfloat16 into float32 ...), and computes as torch does where torch accepts the mix (its CPU norms take a
bfloat16 or float16 input with float32 parameters: float32 statistics, the input's dtype out)."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from oracle import randn

import funclayers as fl
import funclayers.functional as F
from funclayers._linear import LINEAR_DTYPE_MESSAGES
from funclayers._utils import TorchRuntimeError, torch_dtype_names

T_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
            "float16": torch.float16}
# (parameter dtype, input dtype): the mixes torch's module_db sweep feeds, and the CPU mixed-precision ones
MIXES = [("float32", "float64"), ("float64", "float32"), ("float32", "bfloat16"), ("float32", "float16"),
         ("bfloat16", "float32")]


def _ints(*shape, high=3, seed=0):
    return np.random.default_rng(seed).integers(0, high, shape)


def _x(*shape, seed=1):
    return randn(*shape, seed=seed)


def _probs(*shape, seed=1):
    return 1 / (1 + np.exp(-randn(*shape, seed=seed)))


# -- modules: (torch constructor, funclayers constructor, inputs, training) ------------------------------------
# Floating inputs are cast to the input dtype; integer ones (class targets, indices) pass as they are.

def _w(n, seed=5):
    return np.abs(randn(n, seed=seed)) + 0.5


MODULES = {
    "Linear": (lambda m: m.Linear(3, 2), [_x(4, 3)], False),
    "Linear-nobias": (lambda m: m.Linear(3, 2, bias=False), [_x(4, 3)], False),
    "Bilinear": (lambda m: m.Bilinear(3, 4, 2), [_x(5, 3), _x(5, 4, seed=2)], False),
    "Conv1d": (lambda m: m.Conv1d(3, 2, 2), [_x(1, 3, 5)], False),
    "Conv2d": (lambda m: m.Conv2d(3, 2, 3, padding=1), [_x(1, 3, 4, 4)], False),
    "Conv2d-nobias": (lambda m: m.Conv2d(3, 2, 3, bias=False), [_x(1, 3, 4, 4)], False),
    "Conv2d-reflect-unbatched": (lambda m: m.Conv2d(3, 2, 3, padding=1, padding_mode="reflect"), [_x(3, 4, 4)], False),
    "Conv3d": (lambda m: m.Conv3d(2, 2, 2), [_x(1, 2, 3, 3, 3)], False),
    "ConvTranspose1d": (lambda m: m.ConvTranspose1d(3, 2, 2), [_x(1, 3, 5)], False),
    "ConvTranspose2d": (lambda m: m.ConvTranspose2d(3, 2, 3, stride=2), [_x(1, 3, 4, 4)], False),
    "ConvTranspose3d": (lambda m: m.ConvTranspose3d(2, 2, 2), [_x(1, 2, 3, 3, 3)], False),
    "BatchNorm1d-eval": (lambda m: m.BatchNorm1d(3), [_x(4, 3)], False),
    "BatchNorm1d-train": (lambda m: m.BatchNorm1d(3), [_x(4, 3)], True),
    "BatchNorm2d-eval": (lambda m: m.BatchNorm2d(3), [_x(2, 3, 2, 2)], False),
    "BatchNorm2d-train": (lambda m: m.BatchNorm2d(3), [_x(2, 3, 2, 2)], True),
    "BatchNorm2d-noaffine-eval": (lambda m: m.BatchNorm2d(3, affine=False), [_x(2, 3, 2, 2)], False),
    "BatchNorm2d-noaffine-train": (lambda m: m.BatchNorm2d(3, affine=False), [_x(2, 3, 2, 2)], True),
    "BatchNorm1d-nostats": (lambda m: m.BatchNorm1d(3, track_running_stats=False), [_x(4, 3)], False),
    "SyncBatchNorm-eval": (lambda m: m.SyncBatchNorm(3), [_x(2, 3, 4)], False),
    "InstanceNorm1d-affine": (lambda m: m.InstanceNorm1d(3, affine=True), [_x(2, 3, 5)], False),
    "InstanceNorm2d-stats-eval": (lambda m: m.InstanceNorm2d(3, track_running_stats=True),
                                  [_x(2, 3, 3, 3)], False),
    "InstanceNorm2d-stats-train": (lambda m: m.InstanceNorm2d(3, affine=True, track_running_stats=True),
                                   [_x(2, 3, 3, 3)], True),
    "LayerNorm": (lambda m: m.LayerNorm(3), [_x(4, 3)], False),
    "LayerNorm-nobias": (lambda m: m.LayerNorm((2, 3), bias=False), [_x(4, 2, 3)], False),
    "GroupNorm": (lambda m: m.GroupNorm(2, 4), [_x(2, 4, 3)], False),
    "RMSNorm": (lambda m: m.RMSNorm(3), [_x(4, 3)], False),
    "PReLU": (lambda m: m.PReLU(), [_x(4, 3)], False),
    "PReLU-channels": (lambda m: m.PReLU(3), [_x(2, 3, 4)], False),
    "EmbeddingBag-per-sample-weights": (lambda m: m.EmbeddingBag(5, 3, mode="sum"),
                                        [_ints(2, 4, high=5), None, _x(2, 4)], False),
    "MultiheadAttention": (lambda m: m.MultiheadAttention(4, 2), [_x(3, 2, 4)] * 3, False),
    "MultiheadAttention-kdim": (lambda m: m.MultiheadAttention(4, 2, kdim=3, vdim=5, batch_first=True),
                                [_x(2, 3, 4), _x(2, 4, 3, seed=2), _x(2, 4, 5, seed=3)], False),
    "TransformerEncoderLayer": (lambda m: m.TransformerEncoderLayer(4, 2, 8, dropout=0.0), [_x(3, 2, 4)], False),
    "TransformerDecoderLayer": (lambda m: m.TransformerDecoderLayer(4, 2, 8, dropout=0.0, batch_first=True),
                                [_x(2, 3, 4), _x(2, 5, 4, seed=2)], False),
    "Transformer": (lambda m: m.Transformer(4, 2, 1, 1, 8, dropout=0.0), [_x(5, 2, 4), _x(3, 2, 4, seed=2)], False),
    "RNN": (lambda m: m.RNN(3, 4), [_x(5, 2, 3)], False),
    "LSTM": (lambda m: m.LSTM(3, 4, batch_first=True), [_x(2, 5, 3)], False),
    "GRUCell": (lambda m: m.GRUCell(3, 4), [_x(2, 3)], False),
    "LSTMCell": (lambda m: m.LSTMCell(3, 4), [_x(2, 3)], False),
    "CrossEntropyLoss-weight": (lambda m: m.CrossEntropyLoss(weight=_w(3)), [_x(4, 3), _ints(4)], False),
    "CrossEntropyLoss-weight-probs": (lambda m: m.CrossEntropyLoss(weight=_w(3)), [_x(4, 3), _probs(4, 3)], False),
    "NLLLoss-weight": (lambda m: m.NLLLoss(weight=_w(3)), [_x(4, 3), _ints(4)], False),
    "BCELoss-weight": (lambda m: m.BCELoss(weight=_w(3)), [_probs(4, 3), _probs(4, 3, seed=2)], False),
    "BCEWithLogitsLoss-weight": (lambda m: m.BCEWithLogitsLoss(weight=_w(3)), [_x(4, 3), _probs(4, 3)], False),
    "BCEWithLogitsLoss-pos-weight": (lambda m: m.BCEWithLogitsLoss(pos_weight=_w(3)), [_x(4, 3), _probs(4, 3)],
                                     False),
    "MultiLabelSoftMarginLoss-weight": (lambda m: m.MultiLabelSoftMarginLoss(weight=_w(3)),
                                        [_x(4, 3), _ints(4, 3, high=2)], False),
    "MultiMarginLoss-weight": (lambda m: m.MultiMarginLoss(weight=_w(3)), [_x(4, 3), _ints(4)], False),
    "AdaptiveLogSoftmaxWithLoss": (lambda m: m.AdaptiveLogSoftmaxWithLoss(4, 6, [2, 4]), [_x(3, 4), _ints(3, high=6)],
                                   False),
}

# torch takes class weights as tensors; the buffer's dtype is the module's after .to(dtype)
_TORCH_ARRAY_ARGS = ("weight", "pos_weight")


class _TorchNN:
    """torch.nn with numpy array arguments (class weights) turned into tensors."""

    def __getattr__(self, name):
        cls = getattr(tnn, name)

        def build(*args, **kwargs):
            kwargs = {k: torch.from_numpy(v).float() if k in _TORCH_ARRAY_ARGS else v for k, v in kwargs.items()}
            return cls(*args, **kwargs)
        return build


def _torch_cast(a, dtype):
    if a is None or not np.issubdtype(np.asarray(a).dtype, np.floating):
        return None if a is None else torch.from_numpy(np.asarray(a))
    return torch.from_numpy(np.asarray(a, np.float32)).to(T_DTYPES[dtype])


def _jax_cast(a, dtype):
    if a is None or not np.issubdtype(np.asarray(a).dtype, np.floating):
        return None if a is None else jnp.asarray(a)
    return jnp.asarray(np.asarray(a, np.float32)).astype(dtype)


def _torch_run(fn):
    """("raises", message's first line) or ("computes", float64 numpy outputs, output dtypes)."""
    try:
        with torch.no_grad():
            out = fn()
    except (RuntimeError, ValueError) as e:
        return "raises", str(e).splitlines()[0], type(e)
    leaves = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, torch.Tensor)]
    return "computes", [o.double().numpy() for o in leaves], [str(o.dtype).removeprefix("torch.") for o in leaves]


def _torch_module(name, p_dtype, i_dtype):
    ctor, inputs, training = MODULES[name]
    torch.manual_seed(0)
    module = ctor(_TorchNN()).to(T_DTYPES[p_dtype]).train(training)
    args = [_torch_cast(a, i_dtype) for a in inputs]
    if name == "AdaptiveLogSoftmaxWithLoss":
        return module, lambda: module(*args)[0]
    return module, lambda: module(*args)


def _ours_module(name, module, p_dtype, i_dtype):
    ctor, inputs, training = MODULES[name]
    layer = ctor(fl)
    sd = {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in module.state_dict().items()}
    params, state = fl.load_state_dict(layer, sd, dtype=jnp.dtype(p_dtype))
    args = [_jax_cast(a, i_dtype) for a in inputs]

    def run():
        out, _ = layer.apply(params, state, *args, rng=jax.random.PRNGKey(0), training=training)
        return out[0] if name == "AdaptiveLogSoftmaxWithLoss" else out
    return run


# -- functional forms: f(F, X, P) with X casting inputs and P casting parameters ------------------------------

W23, B2, W4 = _x(2, 3, seed=3), _x(2, seed=4), _x(4, seed=5)
FUNCTIONAL = {
    "linear": lambda F, X, P: F.linear(X(_x(4, 3)), P(W23), P(B2)),
    "linear-3d-nobias": lambda F, X, P: F.linear(X(_x(5, 4, 3)), P(W23)),
    "linear-1d-weight": lambda F, X, P: F.linear(X(_x(4, 3)), P(_x(3, seed=3))),
    "conv1d-nobias": lambda F, X, P: F.conv1d(X(_x(1, 3, 5)), P(_x(2, 3, 2, seed=3))),
    "conv_tbc": lambda F, X, P: F.conv_tbc(X(_x(5, 2, 3)), P(_x(2, 3, 4, seed=3)), P(W4)),
    "bilinear": lambda F, X, P: F.bilinear(X(_x(5, 3)), X(_x(5, 4, seed=2)), P(_x(2, 3, 4, seed=3)), P(B2)),
    "conv2d": lambda F, X, P: F.conv2d(X(_x(1, 3, 4, 4)), P(_x(2, 3, 3, 3, seed=3)), P(B2)),
    "conv_transpose2d": lambda F, X, P: F.conv_transpose2d(X(_x(1, 3, 4, 4)), P(_x(3, 2, 3, 3, seed=3)), P(B2)),
    "layer_norm": lambda F, X, P: F.layer_norm(X(_x(2, 4)), (4,), P(W4), P(W4)),
    "group_norm": lambda F, X, P: F.group_norm(X(_x(2, 4, 3)), 2, P(W4), P(W4)),
    "rms_norm": lambda F, X, P: F.rms_norm(X(_x(2, 4)), (4,), P(W4)),
    "batch_norm-eval": lambda F, X, P: F.batch_norm(X(_x(2, 4, 3)), P(W4), P(_w(4)), P(W4), P(W4)),
    "batch_norm-train": lambda F, X, P: F.batch_norm(X(_x(2, 4, 3)), None, None, P(W4), P(W4), training=True),
    # the parameters in the input's dtype, the statistics not: torch's is_mixed_type looks at the weight
    "batch_norm-stats-only-mixed": lambda F, X, P: F.batch_norm(X(_x(2, 4, 3)), P(W4), P(_w(4)), X(W4), X(W4)),
    "batch_norm-no-weight": lambda F, X, P: F.batch_norm(X(_x(2, 4, 3)), P(W4), P(_w(4)), training=True),
    "instance_norm": lambda F, X, P: F.instance_norm(X(_x(2, 4, 3)), weight=P(W4), bias=P(W4)),
    "prelu": lambda F, X, P: F.prelu(X(_x(2, 4, 3)), P(W4)),
    "embedding_bag": lambda F, X, P: F.embedding_bag(X(_ints(2, 3, high=4)), P(_x(4, 3)), mode="sum",
                                                     per_sample_weights=X(_x(2, 3))),
    "nll_loss": lambda F, X, P: F.nll_loss(X(_x(4, 3)), X(_ints(4)), P(_w(3))),
    "cross_entropy": lambda F, X, P: F.cross_entropy(X(_x(4, 3)), X(_ints(4)), P(_w(3))),
    "binary_cross_entropy": lambda F, X, P: F.binary_cross_entropy(X(_probs(4, 3)), X(_probs(4, 3, seed=2)),
                                                                   P(_w(3))),
    "binary_cross_entropy_with_logits": lambda F, X, P: F.binary_cross_entropy_with_logits(
        X(_x(4, 3)), X(_probs(4, 3)), P(_w(3)), pos_weight=P(_w(3, seed=6))),
    "multi_margin_loss": lambda F, X, P: F.multi_margin_loss(X(_x(4, 3)), X(_ints(4)), weight=P(_w(3))),
    "multilabel_soft_margin_loss": lambda F, X, P: F.multilabel_soft_margin_loss(
        X(_x(4, 3)), X(_ints(4, 3, high=2)), P(_w(3))),
    "scaled_dot_product_attention": lambda F, X, P: F.scaled_dot_product_attention(
        X(_x(1, 3, 4)), P(_x(1, 5, 4, seed=2)), P(_x(1, 5, 4, seed=3))),
}


def torch_outcome(case, p_dtype, i_dtype):
    if case in MODULES:
        return _torch_run(_torch_module(case, p_dtype, i_dtype)[1])
    return _torch_run(lambda: FUNCTIONAL[case](TF, lambda a: _torch_cast(a, i_dtype),
                                               lambda a: _torch_cast(a, p_dtype)))


# torch's message depends on memory layout here (a batch_first layer transposes its input, and torch's linear
# takes addmm for a contiguous input, matmul for a strided one); JAX arrays have no layout, so any of torch's
# linear-map messages, with the right dtypes, is torch's
LAYOUT_DEPENDENT = {"MultiheadAttention-kdim", "TransformerDecoderLayer"}
TOLERANCES = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-6), "float16": (5e-3, 5e-3), "bfloat16": (3e-2, 3e-2)}
_PRECISION_ORDER = ["bfloat16", "float16", "float32", "float64"]


def _expected_message(case, message, p_dtype, i_dtype):
    """A regex for torch's `message`: verbatim, except RNN's hint (ours names JAX's fix) and layout choices."""
    if message.startswith("RNN input dtype"):
        return re.escape(message.split(" Convert input")[0].replace("torch.", ""))
    if case in LAYOUT_DEPENDENT:
        names = {f"{role}{'' if kind == 'scalar' else '_' + kind}": spelling
                 for role, dtype in (("input", i_dtype), ("param", p_dtype))
                 for kind, spelling in torch_dtype_names(dtype).items()}
        return "|".join(re.escape(m.format(**names)) for m in LINEAR_DTYPE_MESSAGES.values())
    return re.escape(message)


def _ours(case, p_dtype, i_dtype):
    if case in MODULES:
        return _ours_module(case, _torch_module(case, p_dtype, i_dtype)[0], p_dtype, i_dtype)
    return lambda: FUNCTIONAL[case](F, lambda a: _jax_cast(a, i_dtype), lambda a: _jax_cast(a, p_dtype))


@pytest.mark.parametrize("p_dtype, i_dtype", MIXES, ids=[f"{p}-params-{i}-input" for p, i in MIXES])
@pytest.mark.parametrize("case", [*MODULES, *FUNCTIONAL])
def test_mixed_dtypes_raise_or_compute_as_torch(case, p_dtype, i_dtype, x64):
    """Ours raises, with torch's message, where torch raises; where torch computes, ours computes the same
    values in the same output dtype."""
    expected = torch_outcome(case, p_dtype, i_dtype)
    run = _ours(case, p_dtype, i_dtype)
    if expected[0] == "raises":
        if "not implemented for" in expected[1]:  # torch has no kernel for the dtype at all: ours still raises
            with pytest.raises(TorchRuntimeError):
                run()
            return
        with pytest.raises(ValueError, match=_expected_message(case, expected[1], p_dtype, i_dtype)) as info:
            run()
        assert isinstance(info.value, expected[2]), f"torch raises {expected[2].__name__}"
        return
    out = run()
    leaves = [o for o in (out if isinstance(out, tuple) else (out,)) if o is not None]
    _, t_values, t_dtypes = expected
    assert [str(o.dtype) for o in leaves] == t_dtypes
    lowest = min((p_dtype, i_dtype), key=_PRECISION_ORDER.index)
    rtol, atol = TOLERANCES[lowest]
    for ours, theirs in zip(leaves, t_values):
        np.testing.assert_allclose(np.asarray(ours.astype(jnp.float64)), theirs, rtol=rtol, atol=atol)


def test_a_mismatch_raises_at_trace_time_under_every_transformation(x64):
    """The check reads static dtypes: jit, vmap and grad raise the same, before anything runs."""
    layer = fl.Linear(3, 2)
    params, state = layer.init(jax.random.PRNGKey(0))
    x = jnp.ones((4, 3), jnp.float64)

    def loss(p, x):
        return jnp.sum(layer.apply(p, state, x)[0])
    for transformed in (jax.jit(loss), jax.grad(loss), jax.vmap(loss, (None, 0)), jax.jit(jax.jacfwd(loss, 1))):
        with pytest.raises(TorchRuntimeError, match=r"Linear\(in_features=3, out_features=2, bias=True\): mat1 and "
                                                    r"mat2 must have the same dtype, but got Double and Float"):
            transformed(params, x)
    with pytest.raises(TorchRuntimeError, match=r"Convert the input: x.astype\(jnp.float32\), or the parameters: "
                                                r"jax.tree.map\(lambda p: p.astype\(jnp.float64\), params\)"):
        loss(params, x)


# (constructor keywords, parameters given the other dtype): every product of the recurrence, layer 0 past the
# input check, layer >= 2, the reverse direction, the bias against its weight, no bias, LSTM's projection. (With
# batch_first, torch's layer-0 input is strided and its input projection adds bias_ih_l0 in place, which casts: a
# layout choice, as LAYOUT_DEPENDENT's; ours raises there as torch's contiguous path does.)
RNN_LAYER_MIXES = [({}, ["weight_ih_l1"]), ({}, ["weight_ih_l1", "bias_ih_l1"]), ({}, ["bias_hh_l1"]),
                   ({}, ["weight_hh_l0"]), ({}, ["bias_ih_l0"]), ({}, ["weight_hh_l1", "bias_hh_l1"]),
                   ({"bias": False}, ["weight_hh_l1"]), ({"bidirectional": True}, ["weight_ih_l1_reverse"]),
                   ({"batch_first": True}, ["weight_hh_l1"])]


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("i_dtype, other", [("float32", "float64"), ("float64", "float32")])
def test_rnn_weights_of_another_dtype_raise_as_torch(kind, i_dtype, other, x64):
    """A multi-layer RNN whose weights past weight_ih_l0 (the one torch's check_input compares) have another dtype
    than the input raises with torch's message, at the first product that mixes them, in jit as eagerly. torch's
    float32 LSTM raises from its oneDNN kernel ("get_mkldnn_dtype: unsupported data type"); the message compared
    is that of its other CPU path, oneDNN off."""
    cases = RNN_LAYER_MIXES + ([({"proj_size": 2}, ["weight_hr_l0"]), ({"proj_size": 2}, ["weight_hr_l1"])]
                               if kind == "LSTM" else [])
    x = _x(5, 2, 3)
    for kwargs, changed in cases:
        torch.manual_seed(0)
        module = getattr(tnn, kind)(3, 4, num_layers=2, **kwargs).to(T_DTYPES[i_dtype])
        for pname in changed:
            setattr(module, pname, tnn.Parameter(getattr(module, pname).detach().to(T_DTYPES[other])))
        t_x = torch.from_numpy(x).to(T_DTYPES[i_dtype])
        with pytest.raises(RuntimeError):
            module(t_x)
        with torch.backends.mkldnn.flags(enabled=False), pytest.raises(RuntimeError) as t_info:
            module(t_x)
        layer = getattr(fl, kind)(3, 4, num_layers=2, **kwargs)
        params, state = fl.load_state_dict(layer, module.state_dict(), dtype=jnp.dtype(i_dtype))
        params = {k: v.astype(other) if k in changed else v for k, v in params.items()}
        message = re.escape(str(t_info.value).splitlines()[0])
        for apply in (layer.apply, jax.jit(layer.apply)):
            with pytest.raises(TorchRuntimeError, match=message):
                apply(params, state, jnp.asarray(x, i_dtype))
        module.to(T_DTYPES[i_dtype])(t_x)  # all one dtype again: torch computes, ours traces (the mix raised)
        params = fl.load_state_dict(layer, module.state_dict(), dtype=jnp.dtype(i_dtype))[0]
        jax.eval_shape(layer.apply, params, state, jnp.asarray(x, i_dtype))


def test_mixed_precision_norms_differentiate_in_float32(x64):
    """torch's CPU norms take a bfloat16 input with float32 parameters: under jit, the output is bfloat16 and
    the parameters' gradients float32, matching torch's."""
    module = tnn.LayerNorm(4)
    layer = fl.LayerNorm(4)
    params, state = fl.load_state_dict(layer, module.state_dict())
    x = randn(3, 4, seed=1)
    t_x = torch.from_numpy(x).to(torch.bfloat16)
    t_out = module(t_x)
    t_out.float().square().sum().backward()

    @jax.jit
    def loss(p, x):
        out = layer.apply(p, state, x)[0]
        return jnp.sum(jnp.square(out.astype(jnp.float32))), out
    (_, out), grads = jax.value_and_grad(loss, has_aux=True)(params, jnp.asarray(x).astype(jnp.bfloat16))
    assert out.dtype == jnp.bfloat16 and grads["weight"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out, np.float32), t_out.detach().float().numpy(), rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(grads["weight"], module.weight.grad.numpy(), rtol=5e-2, atol=5e-2)


if __name__ == "__main__":  # the sweep, printed: which cases torch raises for, and with what
    import sys
    jax.config.update("jax_enable_x64", True)
    for case in [*MODULES, *FUNCTIONAL]:
        for p_dtype, i_dtype in MIXES:
            result = torch_outcome(case, p_dtype, i_dtype)
            what = result[1] if result[0] == "raises" else f"computes {result[2]}"
            print(f"{case:34s} {p_dtype:>8s} params, {i_dtype:>8s} input: {result[0]:8s} {what}")
    sys.exit(0)
