"""Lazy layers (sizes from an example input), ParameterList / ParameterDict, RNNCellBase, NLLLoss2d."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import assert_close, check_layer, randn, to_torch, tolerance

import funclayers as fl

KEY = jax.random.PRNGKey(0)

# (case id, our constructor, torch's, example input shape, training): the sizes left open differ from
# the configured ones, so a size taken from the wrong dim fails.
CASES = [
    ("linear", lambda m: m.LazyLinear(4), (3, 2, 5), False),
    ("linear-nobias", lambda m: m.LazyLinear(4, bias=False), (5,), False),
    ("conv1d", lambda m: m.LazyConv1d(4, 3, stride=2, padding=1), (2, 3, 9), False),
    ("conv1d-unbatched", lambda m: m.LazyConv1d(4, 3, groups=2, padding_mode="reflect", padding=1), (6, 7), False),
    ("conv2d", lambda m: m.LazyConv2d(4, (2, 3), dilation=(2, 1), groups=2), (2, 6, 7, 6), False),
    ("conv3d", lambda m: m.LazyConv3d(2, 2, bias=False), (1, 3, 4, 3, 3), False),
    ("convT1d", lambda m: m.LazyConvTranspose1d(4, 3, stride=2, output_padding=1), (2, 3, 5), False),
    ("convT2d", lambda m: m.LazyConvTranspose2d(4, 3, groups=2, dilation=2), (2, 6, 4, 3), False),
    ("convT3d-unbatched", lambda m: m.LazyConvTranspose3d(2, 2, padding=1), (3, 3, 4, 3), False),
    ("batchnorm1d", lambda m: m.LazyBatchNorm1d(momentum=None), (4, 3, 5), True),
    ("batchnorm2d", lambda m: m.LazyBatchNorm2d(), (3, 5, 2, 3), True),
    ("batchnorm3d-eval", lambda m: m.LazyBatchNorm3d(affine=False), (2, 3, 2, 2, 2), False),
    ("instancenorm1d", lambda m: m.LazyInstanceNorm1d(), (2, 3, 5), True),
    ("instancenorm2d-nobias", lambda m: m.LazyInstanceNorm2d(bias=False), (2, 3, 4, 3), True),
    ("instancenorm3d", lambda m: m.LazyInstanceNorm3d(track_running_stats=False), (2, 3, 2, 3, 2), False),
]
IDS = [case[0] for case in CASES]


def _materialised_torch(make, shape, dtype=np.float32):
    """torch's lazy module after its first forward (which materialises it), and the input it ran on."""
    torch.manual_seed(0)
    module = make(torch.nn)
    x = randn(*shape, dtype=dtype, seed=1)
    module.to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        module(to_torch(x))
    return module, x


@pytest.mark.parametrize("make, shape, training", [c[1:] for c in CASES], ids=IDS)
def test_lazy_layer_matches_torch(make, shape, training, dtype):
    module, x = _materialised_torch(make, shape)
    layer = make(fl)
    sized = layer._replace(init=lambda rng: layer.init(rng, x))  # oracle.check_layer inits without examples
    check_layer(module, sized, [x], dtype=dtype, training=training, steps=2 if training else 1)


@pytest.mark.parametrize("make, shape, training", [c[1:] for c in CASES], ids=IDS)
def test_lazy_init_is_torch_materialised_module(make, shape, training):
    module, x = _materialised_torch(make, shape)
    layer = make(fl)
    params, state = layer.init(KEY, jax.ShapeDtypeStruct(shape, jnp.float32))  # shapes only
    ours = fl.state_dict(params, state)
    theirs = module.state_dict()
    assert list(ours) == list(theirs)  # torch's names, in torch's order
    for name, value in theirs.items():
        assert ours[name].shape == tuple(value.shape), name
        if value.is_floating_point():
            assert str(ours[name].dtype) == str(value.dtype).removeprefix("torch."), name
        else:  # num_batches_tracked: torch's int64, ours int32 without jax_enable_x64
            assert jnp.issubdtype(ours[name].dtype, jnp.integer), name
    # the same params as the plain layer built with the inferred size: torch's distributions
    again = layer.init(KEY, np.zeros(shape, np.float32))
    jax.tree_util.tree_map(np.testing.assert_array_equal, (params, state), again)


def test_load_state_dict_sizes_lazy_layers_from_example_inputs():
    module, x = _materialised_torch(lambda m: m.Sequential(m.LazyConv1d(4, 3), m.Flatten(), m.LazyLinear(2)), (2, 3, 6))
    model = fl.Sequential(fl.LazyConv1d(4, 3), fl.Flatten(), fl.LazyLinear(2))
    with pytest.raises(ValueError, match=r"LazyConv1d\(.*\) needs an example input"):
        fl.load_state_dict(model, module.state_dict())
    example = jax.ShapeDtypeStruct(x.shape, x.dtype)
    params, state = fl.load_state_dict(model, module.state_dict(), example_inputs=(example,))
    assert_close(model.apply(params, state, jnp.asarray(x))[0], module(to_torch(x)), "output", **tolerance(np.float32))
    partial = {k: v for k, v in module.state_dict().items() if k != "2.bias"}
    params, _ = fl.load_state_dict(model, partial, strict=False, example_inputs=(x,))
    assert params["2"]["bias"].shape == (2,)


def test_lazy_linear_distribution_is_torch_kaiming_uniform():
    params, _ = fl.LazyLinear(300).init(KEY, jnp.ones((2, 100)))
    weight, bias = np.asarray(params["weight"]), np.asarray(params["bias"])
    bound = 1 / np.sqrt(100)
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.95 * bound
    assert np.abs(bias).max() <= bound and abs(weight.std() - bound / np.sqrt(3)) < 0.02 * bound


def test_lazy_layer_dtype_argument_sets_params_not_the_example(x64):
    params, state = fl.LazyBatchNorm1d(dtype=jnp.float64).init(KEY, jnp.ones((2, 3), jnp.float32))
    assert params["weight"].dtype == jnp.float64 and state["running_var"].dtype == jnp.float64
    params, _ = fl.LazyLinear(2).init(KEY, jnp.ones((2, 3), jnp.float64))
    assert params["weight"].dtype == jnp.float32  # torch: dtype=None is the default dtype, whatever the input


@pytest.mark.parametrize("make, what", [
    (lambda: fl.LazyLinear(10), r"LazyLinear\(out_features=10, bias=True\) needs an example input to infer "
                                r"in_features: call init\(rng, x\)"),
    (lambda: fl.LazyConv2d(4, 3), r"LazyConv2d\(out_channels=4, .*\) needs an example input to infer in_channels"),
    (lambda: fl.LazyConvTranspose1d(4, 3), r"LazyConvTranspose1d\(.*\) needs an example input to infer in_channels"),
    (lambda: fl.LazyBatchNorm2d(), r"LazyBatchNorm2d\(.*\) needs an example input to infer num_features"),
    (lambda: fl.LazyInstanceNorm3d(affine=False), r"LazyInstanceNorm3d\(.*\) needs an example input"),
])
def test_lazy_init_without_example_raises_naming_the_layer(make, what):
    with pytest.raises(ValueError, match=what):
        make().init(KEY)


def test_lazy_norm_with_nothing_to_infer_needs_no_example():
    # torch: without affine parameters or running statistics nothing is uninitialised (num_features stays 0)
    norm = fl.LazyInstanceNorm1d(affine=False, track_running_stats=False)
    assert norm.init(KEY) == ({}, {})
    x = randn(2, 3, 5)
    module = torch.nn.LazyInstanceNorm1d(affine=False, track_running_stats=False)
    with pytest.warns(UserWarning):
        expected = module(to_torch(x))
    with pytest.warns(UserWarning, match="num_features"):
        out, _ = norm.apply({}, {}, jnp.asarray(x))
    assert_close(out, expected, "output", **tolerance(np.float32))


@pytest.mark.parametrize("make, shape, what", [
    (lambda: fl.LazyLinear(3), (), r"LazyLinear\(out_features=3, bias=True\): expected an at least 1D "
                                   r"\(\*, in_features\) example input, got shape \(\)"),
    (lambda: fl.LazyConv2d(4, 3), (3, 8), r"LazyConv2d\(.*\): expected a 3D \(unbatched\) or 4D \(batched\) "
                                          r"example input, got shape \(3, 8\)"),
    (lambda: fl.LazyBatchNorm1d(), (4,), r"LazyBatchNorm1d\(.*\): expected an at least 2D \(N, C, \*\) example"),
    (lambda: fl.LazyConv2d(4, 3, groups=2), (1, 3, 5, 5), "LazyConv2d: in_channels must be divisible by groups"),
])
def test_lazy_init_rejects_bad_examples(make, shape, what):
    with pytest.raises(ValueError, match=what):
        make().init(KEY, jnp.ones(shape))


@pytest.mark.parametrize("make, what", [
    (lambda: fl.LazyConv2d(4, 3, padding_mode="mirror"), "LazyConv2d: padding_mode must be one of"),
    (lambda: fl.LazyConv1d(5, 3, groups=2), "LazyConv1d: out_channels must be divisible by groups"),
    (lambda: fl.LazyConvTranspose2d(4, 3, padding_mode="reflect"), "ConvTranspose2d"),
    (lambda: fl.LazyLinear(-1), "LazyLinear"),
])
def test_lazy_configuration_errors_at_construction(make, what):
    with pytest.raises(ValueError, match=what):
        make()


def test_lazy_instance_norm_takes_dim_1_even_unbatched_as_torch():
    # torch's _LazyNormBase reads input.shape[1]: an unbatched (C, L) input sizes num_features = L, and
    # the materialised affine layer then rejects that very input. Mirror both halves.
    x = randn(3, 5)
    with pytest.raises(ValueError, match="match num_features"):
        torch.nn.LazyInstanceNorm1d()(to_torch(x))
    norm = fl.LazyInstanceNorm1d()
    params, state = norm.init(KEY, x)
    assert params["weight"].shape == (5,)
    with pytest.raises(ValueError, match=r"expected input's size at dim=0 to match num_features \(5\), but got: 3"):
        norm.apply(params, state, x)


def test_lazy_apply_under_jit_vmap_jvp():
    conv = fl.LazyConv1d(4, 3)
    x = jnp.asarray(randn(2, 3, 8))
    params, state = conv.init(KEY, x)
    out = conv.apply(params, state, x)[0]
    jitted = jax.jit(lambda p, s, x: conv.apply(p, s, x)[0])(params, state, x)
    np.testing.assert_allclose(jitted, out, rtol=1e-5, atol=1e-6)
    mapped = jax.vmap(lambda xi: conv.apply(params, state, xi)[0])(x)  # unbatched per sample
    np.testing.assert_allclose(mapped, out, rtol=1e-5, atol=1e-6)
    tangent = jax.tree_util.tree_map(jnp.ones_like, params)
    primal, dout = jax.jvp(lambda p: conv.apply(p, state, x)[0], (params,), (tangent,))
    expected = conv.apply(tangent, state, x)[0]  # the output is linear in (weight, bias)
    np.testing.assert_allclose(primal, out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dout, expected, rtol=1e-5, atol=1e-5)


def test_sequential_of_lazy_layers_initialises_from_one_batch(dtype):
    x = randn(2, 3, 5, 5, dtype=dtype)
    model = fl.Sequential(fl.LazyConv2d(16, 3), fl.ReLU(), fl.Flatten(), fl.LazyLinear(10))
    example = x  # shapes only: a float64 example sizes the float32 layers (their forward would raise, as torch's)
    params, state = model.init(KEY, example)
    assert jax.tree_util.tree_map(jnp.shape, params) == {
        "0": {"weight": (16, 3, 3, 3), "bias": (16,)}, "1": {}, "2": {}, "3": {"weight": (10, 144), "bias": (10,)}}
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.LazyConv2d(16, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.LazyLinear(10))
    with torch.no_grad():
        module(to_torch(x.astype(np.float32)))
    check_layer(module, model._replace(init=lambda rng: model.init(rng, example)), [x], dtype=dtype)


def test_example_inputs_give_shapes_only_so_a_dtype_mismatch_raises_at_apply_not_init(x64):
    model = fl.Sequential(fl.LazyLinear(4), fl.ReLU(), fl.LazyLinear(2))
    x = jnp.ones((3, 5), jnp.float64)
    params, state = model.init(KEY, x)  # float32 params, sized from the float64 example
    assert params["0"]["weight"].dtype == jnp.float32 and params["2"]["weight"].shape == (2, 4)
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got Double and Float"):
        model.apply(params, state, x)
    params, state = fl.Sequential(fl.LSTM(5, 3)).init(KEY, x)  # the recurrent layers' check: off in the shape pass
    with pytest.raises(ValueError, match="RNN input dtype"):
        fl.Sequential(fl.LSTM(5, 3)).apply(params, state, x)


def test_composite_with_lazy_children_sizes_each_from_its_call():
    def forward(m, x, scale=1.0):
        h = m.blocks[0](x)                                          # a container's child
        h = m.norm(h.reshape(h.shape[0], -1)) * m.gain               # a Parameter read
        return m.heads["out"](h) * scale

    net = fl.Module(forward, blocks=fl.ModuleList([fl.LazyConv1d(4, 3), fl.Conv1d(4, 2, 1)]),
                    norm=fl.LazyBatchNorm1d(), gain=fl.Parameter(jnp.ones(())),
                    heads=fl.ModuleDict({"out": fl.LazyLinear(5), "unused": fl.Linear(2, 2)}))
    x = jnp.ones((2, 3, 7))
    params, state = net.init(KEY, x, scale=2.0)
    shapes = jax.tree_util.tree_map(jnp.shape, (params, state))
    assert shapes[0]["blocks"]["0"]["weight"] == (4, 3, 3) and shapes[0]["norm"]["weight"] == (20,)
    assert shapes[0]["heads"] == {"out": {"weight": (5, 20), "bias": (5,)}, "unused": {"weight": (2, 2), "bias": (2,)}}
    assert shapes[1]["norm"]["running_mean"] == (20,)
    assert shapes[0]["blocks"]["1"]["weight"] == (2, 4, 1)  # never called: initialised without examples
    out, _ = net.apply(params, state, x, scale=2.0)
    assert out.shape == (2, 5)
    unreached = fl.Module(lambda m, x: m.body(x), body=fl.LazyLinear(2), spare=fl.LazyLinear(3))
    with pytest.raises(ValueError, match=r"LazyLinear\(out_features=3, bias=True\) needs an example input"):
        unreached.init(KEY, x)


def test_from_torch_of_a_lazy_module_that_has_run(dtype):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.LazyConv1d(4, 3), torch.nn.LazyBatchNorm1d(), torch.nn.Flatten(),
                                 torch.nn.LazyLinear(2))
    x = randn(3, 2, 6, dtype=dtype)
    module(to_torch(x.astype(np.float32)))  # materialised: torch turns them into Conv1d, BatchNorm1d, Linear
    layer, _, _ = fl.from_torch(module)
    check_layer(module, layer, [x], dtype=dtype, training=True)


def test_parameter_list_and_dict_as_layers_and_in_composites(dtype):
    plist = fl.ParameterList([randn(3, dtype=dtype), lambda rng: jax.random.normal(rng, (2, 3), dtype)])
    pdict = fl.ParameterDict([("scale", randn(3, dtype=dtype, seed=2)), ("shift", fl.Parameter(jnp.zeros(3, dtype)))])
    params, state = plist.init(KEY)
    assert list(params) == ["0", "1"] and params["1"].shape == (2, 3) and params["0"].dtype == dtype
    assert list(pdict.init(KEY)[0]) == ["scale", "shift"]
    with pytest.raises(TypeError, match="ParameterList is a container without a forward"):
        plist.apply(params, state, jnp.ones(3))

    class Torch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.plist = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(3)),
                                                 torch.nn.Parameter(torch.randn(2, 3))])
            self.pdict = torch.nn.ParameterDict({"scale": torch.nn.Parameter(torch.randn(3)),
                                                 "shift": torch.nn.Parameter(torch.randn(3))})

        def forward(self, x):
            return (self.plist[1] @ (x + self.plist[0])) * self.pdict["scale"][:2] + self.pdict["shift"][1:]

    net = fl.Module(lambda m, x: (m.plist[1] @ (x + m.plist[0])) * m.pdict["scale"][:2] + m.pdict["shift"][1:],
                    plist=plist, pdict=pdict)
    check_layer(Torch(), net, [randn(3, dtype=dtype, seed=3)], dtype=dtype)


def test_parameter_list_rejects_layers_that_are_not_parameters():
    with pytest.raises(TypeError, match="holds arrays .* got the layer Linear"):
        fl.ParameterList([fl.Linear(2, 2)])


def test_rnn_cell_base_has_torch_params_and_no_forward():
    torch.manual_seed(0)
    theirs = torch.nn.RNNCellBase(5, 8, True, 3).state_dict()
    base = fl.RNNCellBase(5, 8, True, 3)
    params, state = base.init(KEY)
    ours = fl.state_dict(params, state)
    assert {k: v.shape for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    assert max(np.abs(v).max() for v in ours.values()) <= 1 / np.sqrt(8)  # torch's U(-1/sqrt(H), 1/sqrt(H))
    assert set(fl.RNNCellBase(5, 8, False, 1).init(KEY)[0]) == {"weight_ih", "weight_hh"}
    with pytest.raises(NotImplementedError, match=r'Module \[RNNCellBase\] is missing the required "forward"'):
        base.apply(params, state, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="RNNCellBase: num_chunks must be a positive int, got 0"):
        fl.RNNCellBase(5, 8, True, 0)


def test_from_torch_of_rnn_cell_base_nll_loss_2d_and_an_unrun_lazy_module():
    module = torch.nn.RNNCellBase(5, 8, False, 3)
    layer, params, state = fl.from_torch(module)
    assert layer.name == "RNNCellBase(5, 8, bias=False)"
    for name, value in module.state_dict().items():
        np.testing.assert_array_equal(fl.state_dict(params, state)[name], value.numpy())
    with pytest.warns(FutureWarning):
        loss = torch.nn.NLLLoss2d(ignore_index=0)
    layer, _, _ = fl.from_torch(loss)
    x, target = randn(2, 3, 4, 4), np.random.default_rng(0).integers(0, 3, (2, 4, 4))
    expected = loss(to_torch(x), torch.from_numpy(target))
    assert_close(layer.apply({}, {}, jnp.asarray(x), jnp.asarray(target))[0], expected, "loss", **tolerance(np.float32))
    with pytest.raises(TypeError, match="LazyConv2d has not inferred its shapes yet; run one forward pass in torch"):
        fl.from_torch(torch.nn.LazyConv2d(2, 3))


@pytest.mark.parametrize("kwargs", [{}, {"ignore_index": 1, "reduction": "sum"}, {"reduction": "none"}])
def test_nll_loss_2d_is_torch_alias(kwargs, dtype):
    weight = np.array([0.5, 2.0, 1.0], dtype)
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), size=(2, 4, 5)).transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(np.log(probabilities), dtype)
    target = np.random.default_rng(1).integers(0, 3, (2, 4, 5))
    with pytest.warns(FutureWarning, match="NLLLoss2d` has been deprecated"):
        module = torch.nn.NLLLoss2d(weight=torch.from_numpy(weight), **kwargs)
    with pytest.warns(FutureWarning, match="NLLLoss2d` has been deprecated"):
        layer = fl.NLLLoss2d(weight=jnp.asarray(weight), **kwargs)
    check_layer(module, layer, [x, target], dtype=dtype)
