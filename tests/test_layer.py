"""Containers and composites: naming, state threading, rng splitting, torch state_dict parity."""

from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import funclayers as fl
from funclayers._layer import stateless

KEY = jax.random.PRNGKey(0)


def _affine(n_in, n_out):
    """A tiny Linear-like layer for container tests that must not depend on the linear family."""
    def init(rng):
        return {"weight": jax.random.normal(rng, (n_out, n_in), jnp.float32), "bias": jnp.zeros(n_out, jnp.float32)}, {}

    def apply(params, state, x, *, rng=None, training=False):
        return x @ params["weight"].T + params["bias"], state

    return fl.Layer(init, apply, f"Affine({n_in}, {n_out})")


def _counter():
    """A layer with a buffer that counts training-mode calls, like num_batches_tracked."""
    def apply(params, state, x, *, rng=None, training=False):
        return x, {"count": state["count"] + 1} if training else state

    return fl.Layer(lambda rng: ({}, {"count": jnp.zeros((), jnp.int32)}), apply, "Counter")


def _noise():
    def apply(params, state, x, *, rng=None, training=False):
        return (x + jax.random.normal(rng, x.shape) if training else x), state

    return fl.Layer(fl._layer.no_params, apply, "Noise")


def test_sequential_names_children_like_torch():
    model = fl.Sequential(_affine(3, 4), stateless("Tanh", jnp.tanh), _affine(4, 2))
    params, state = model.init(jax.random.PRNGKey(0))
    assert list(fl.state_dict(params, state)) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    out, _ = model.apply(params, state, jnp.ones((5, 3)))
    expected = jnp.tanh(jnp.ones((5, 3)) @ params["0"]["weight"].T) @ params["2"]["weight"].T
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_sequential_from_ordered_dict():
    model = fl.Sequential(OrderedDict(fc=_affine(3, 4), act=stateless("Tanh", jnp.tanh)))
    params, state = model.init(jax.random.PRNGKey(0))
    assert list(fl.state_dict(params, state)) == ["fc.weight", "fc.bias"]
    assert "(fc): Affine(3, 4)" in repr(model)


def test_sequential_threads_state_and_splits_rng():
    model = fl.Sequential(_counter(), _noise(), _noise(), _counter())
    params, state = model.init(jax.random.PRNGKey(0))
    x = jnp.zeros((4,))
    out, new_state = model.apply(params, state, x, rng=jax.random.PRNGKey(1), training=True)
    assert int(new_state["0"]["count"]) == 1 and int(new_state["3"]["count"]) == 1
    # the two noise layers draw from different keys: the sum is not 2x one draw
    one = jax.random.normal(jax.random.split(jax.random.PRNGKey(1), 4)[1], (4,))
    assert not np.allclose(out, 2 * one)
    out2, _ = model.apply(params, state, x, rng=jax.random.PRNGKey(1), training=True)
    np.testing.assert_array_equal(out, out2)
    eval_out, eval_state = model.apply(params, state, x)
    np.testing.assert_array_equal(eval_out, x)
    assert int(eval_state["0"]["count"]) == 0


def test_sequential_rejects_non_layers():
    with pytest.raises(TypeError, match="Sequential: child '0' is a int, not a funclayers Layer"):
        fl.Sequential(3)


def test_module_list_and_dict_are_containers_without_forward():
    blocks = fl.ModuleList([_affine(2, 2), _affine(2, 2)])
    heads = fl.ModuleDict({"a": _affine(2, 1), "b": _affine(2, 3)})
    params, state = blocks.init(jax.random.PRNGKey(0))
    assert list(fl.state_dict(params, state)) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    with pytest.raises(TypeError, match="ModuleList is a container without a forward"):
        blocks.apply(params, state, jnp.ones(2))

    def forward(m, x):
        for block in m.blocks:
            x = block(x)
        return {name: head(x) for name, head in m.heads.items()}, len(m.blocks)

    net = fl.Module(forward, blocks=blocks, heads=heads)
    params, state = net.init(jax.random.PRNGKey(0))
    assert list(fl.state_dict(params, state)) == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
        "heads.a.weight", "heads.a.bias", "heads.b.weight", "heads.b.bias"]
    (out, n), _ = net.apply(params, state, jnp.ones(2))
    assert out["a"].shape == (1,) and out["b"].shape == (3,) and n == 2


def test_module_threads_state_through_repeated_calls_and_jit():
    net = fl.Module(lambda m, x: m.c(m.c(x)), c=_counter())
    params, state = net.init(jax.random.PRNGKey(0))
    apply = jax.jit(net.apply, static_argnames="training")
    _, new_state = apply(params, state, jnp.ones(3), training=True)
    assert int(new_state["c"]["count"]) == 2


def test_module_parameter_and_buffer_children():
    def forward(m, x):
        m.set_buffer("seen", m.seen + 1)
        return m.fc(x) + m.offset

    net = fl.Module(forward, fc=_affine(2, 2), offset=fl.Parameter(jnp.ones(2)),
                    seen=fl.Buffer(jnp.zeros((), jnp.int32)))
    params, state = net.init(jax.random.PRNGKey(0))
    # torch's order: a module's own parameters, then its own buffers, then its children
    assert list(fl.state_dict(params, state)) == ["offset", "seen", "fc.weight", "fc.bias"]
    out, new_state = net.apply(params, state, jnp.zeros(2))
    np.testing.assert_allclose(out, jnp.ones(2))
    assert int(new_state["seen"]) == 1
    grads = jax.grad(lambda p: net.apply(p, state, jnp.zeros(2))[0].sum())(params)
    np.testing.assert_allclose(grads["offset"], jnp.ones(2))


def test_module_unknown_child_says_what_exists():
    net = fl.Module(lambda m, x: m.nope(x), fc=_affine(2, 2))
    params, state = net.init(jax.random.PRNGKey(0))
    with pytest.raises(AttributeError, match=r"no child 'nope'; its children are \['fc'\]"):
        net.apply(params, state, jnp.ones(2))


def test_module_rng_is_deterministic_and_distinct_per_call():
    net = fl.Module(lambda m, x: (m.n(x), m.n(x)), n=_noise())
    params, state = net.init(jax.random.PRNGKey(0))
    (a, b), _ = net.apply(params, state, jnp.zeros(3), rng=jax.random.PRNGKey(2), training=True)
    (c, _), _ = net.apply(params, state, jnp.zeros(3), rng=jax.random.PRNGKey(2), training=True)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, c)


def test_state_dict_round_trip_through_torch():
    model = fl.Sequential(_affine(3, 4), _affine(4, 2))
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    params, state = model.init(jax.random.PRNGKey(0))
    t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in fl.state_dict(params, state).items()})
    back, _ = fl.load_state_dict(model, t.state_dict())
    jax.tree.map(np.testing.assert_array_equal, back, params)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    out, _ = model.apply(back, {"0": {}, "1": {}}, jnp.asarray(x))
    np.testing.assert_allclose(out, t(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_load_state_dict_strict_errors_list_keys_like_torch():
    model = fl.Sequential(_affine(3, 4), _affine(4, 2))
    sd = {"0.weight": np.zeros((4, 3)), "0.bias": np.zeros(5), "extra": np.zeros(1)}
    with pytest.raises(fl.StateDictError) as err:
        fl.load_state_dict(model, sd)
    message = str(err.value)
    assert 'Missing key(s) in state_dict: "1.weight", "1.bias".' in message
    assert 'Unexpected key(s) in state_dict: "extra".' in message
    assert "size mismatch for 0.bias: copying a param with shape (5,) from checkpoint, " \
           "the shape in current model is (4,)." in message
    assert isinstance(err.value, RuntimeError) and isinstance(err.value, ValueError)


def test_load_state_dict_non_strict_keeps_initial_values():
    model = fl.Sequential(_affine(3, 4), _affine(4, 2))
    init_params, _ = model.init(jax.random.PRNGKey(0))
    params, _ = fl.load_state_dict(model, {"0.weight": np.ones((4, 3)), "junk": np.ones(2)}, strict=False)
    np.testing.assert_array_equal(params["0"]["weight"], np.ones((4, 3)))
    np.testing.assert_array_equal(params["1"]["weight"], init_params["1"]["weight"])


def test_load_state_dict_dtype(x64):
    model = _affine(2, 2)
    sd = {"weight": np.full((2, 2), 1 / 3), "bias": np.zeros(2)}
    params, _ = fl.load_state_dict(model, sd)
    assert params["weight"].dtype == jnp.float32  # torch's copy_: the model keeps its dtype
    params, _ = fl.load_state_dict(model, sd, dtype=jnp.float64)
    assert params["weight"].dtype == jnp.float64 and float(params["weight"][0, 0]) == 1 / 3


# -- init(rng, *example_inputs): every layer accepts them, containers pass them through (CONTRACT.md, 2) --


def _same(a, b):
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and all(
        np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_every_init_accepts_example_inputs_and_ignores_them():
    layer = _affine(3, 2)  # its init is written as init(rng)
    x = jnp.ones((4, 3))
    assert _same(layer.init(KEY), layer.init(KEY, x))
    assert _same(layer.init(KEY), layer.init(KEY, x, mask=None))
    assert _same(layer.init(KEY), layer._replace(name="Renamed").init(KEY, x))  # _replace keeps the wrapper
    assert fl._layer.no_params() == ({}, {})
    assert fl.Layer(fl._layer.no_params, None).init() == ({}, {})  # an rng-optional init stays so


@pytest.mark.parametrize("make, inputs", [
    (lambda: fl.Sequential(_affine(3, 4), fl.ReLU(), _counter(), _affine(4, 2)), lambda: (jnp.ones((2, 3)),)),
    (lambda: fl.Sequential(fl.Conv2d(2, 3, 3), fl.BatchNorm2d(3), fl.Flatten(), fl.Linear(12, 2)),
     lambda: (jax.ShapeDtypeStruct((5, 2, 4, 4), jnp.float32),)),
    (lambda: fl.Module(lambda m, x: m.blocks[1](m.blocks[0](x)) + m.bias,
                       blocks=fl.ModuleList([_affine(3, 3), _affine(3, 3)]), bias=fl.Parameter(jnp.ones(3)),
                       spare=_affine(2, 2)), lambda: (jnp.ones((2, 3)),)),
    (lambda: fl.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=8),
     lambda: (jnp.ones((3, 2, 8)), jnp.ones((4, 2, 8)))),
    (lambda: fl.TransformerEncoder(fl.TransformerEncoderLayer(8, 2, 16), 2), lambda: (jnp.ones((3, 2, 8)),)),
    (lambda: fl.DataParallel(fl.Sequential(fl.Linear(3, 4), fl.Tanh())), lambda: (jnp.ones((2, 3)),)),
    (lambda: fl.LSTM(3, 4, batch_first=True), lambda: (jnp.ones((2, 5, 3)),)),
], ids=["sequential", "sequential-shapes", "composite", "transformer", "encoder", "data-parallel", "lstm"])
def test_init_with_examples_is_deterministic_and_equal_to_init_without(make, inputs):
    layer = make()
    assert _same(layer.init(KEY), layer.init(KEY, *inputs()))


def test_sequential_init_feeds_each_child_the_previous_output_shape():
    seen = []

    def probe(n_out):
        def init(rng, *examples):
            seen.append(tuple(jnp.shape(x) for x in examples))
            return {}, {}

        return fl.Layer(init, lambda p, s, x, *, rng=None, training=False: (x[..., :n_out], s), "Probe")

    model = fl.Sequential(probe(3), fl.Flatten(0), probe(4), fl.Unflatten(0, (2, 2)), probe(1))
    model.init(KEY, jnp.ones((2, 5)))
    assert seen == [((2, 5),), ((6,),), ((2, 2),)]
    seen.clear()
    model.init(KEY)
    assert seen == [(), (), ()]


def test_composite_init_with_examples_traces_the_forward_once_without_computing():
    recorded, calls = [], []

    def sized(rng, *examples, **kwargs):
        recorded.append((tuple(x.shape for x in examples), sorted(kwargs)))
        return {"w": jnp.ones(examples[0].shape[-1]) if examples else jnp.ones(1)}, {"n": jnp.zeros((), jnp.int32)}

    def apply(params, state, x, scale=1.0, *, rng=None, training=False):
        return x * params["w"] * scale, {"n": state["n"] + 1}

    def forward(m, x, scale):
        calls.append(type(x).__name__)
        assert m.rng() is None and not m.training
        m.set_buffer("seen", m.seen + 1)
        return m.child(m.child(x, scale=scale)) * m.counter_param

    net = fl.Module(forward, child=fl.Layer(sized, apply, "Sized"), counter_param=fl.Parameter(jnp.ones(())),
                    seen=fl.Buffer(jnp.zeros((), jnp.int32)))
    params, state = net.init(KEY, jnp.ones((2, 4)), scale=2.0)
    assert len(calls) == 1 and calls[0] != "ArrayImpl"  # one abstract trace of the forward
    assert recorded[-1] == (((2, 4),), ["scale"])  # the first call's inputs, keyword ones included
    assert params["child"]["w"].shape == (4,) and int(state["child"]["n"]) == 0 and int(state["seen"]) == 0
    out, new_state = net.apply(params, state, jnp.ones((2, 4)), 2.0)
    assert out.shape == (2, 4) and int(new_state["child"]["n"]) == 2 and int(new_state["seen"]) == 1


# -- Sequential's internal layouts (`_layout.py`): Winograd Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d runs --


def _spy_layouts(monkeypatch):
    """The layouts the Sequential converts back to NCHW from (None: already NCHW), in order."""
    from funclayers import _layout

    seen, convert = [], _layout.to_nchw

    def to_nchw(value, layout):
        seen.append(layout)
        return convert(value, layout)

    monkeypatch.setattr(_layout, "to_nchw", to_nchw)
    return seen


def _layouts_off(monkeypatch):
    from funclayers import _layout

    monkeypatch.setattr(_layout, "layout_fn", lambda layer: None)


def _deep(dtype):
    """tests/test_models.py's tolerance for stacks of conv + training-mode BatchNorm (float32 only): the
    plain NCHW chain of these layers misses the single-layer 1e-5 / 1e-6 by about as much."""
    return dict(atol=1e-4, rtol=1e-4) if np.dtype(dtype) == np.float32 else {}


def _conv_run(c=8):
    return (fl.Sequential(fl.Conv2d(c, 16, 3, padding=1), fl.BatchNorm2d(16), fl.ReLU(),
                          fl.Conv2d(16, 16, 3, padding=1), fl.BatchNorm2d(16), fl.ReLU(), fl.MaxPool2d(2),
                          fl.Conv2d(16, 12, 3, padding=1, bias=False), fl.BatchNorm2d(12), fl.ReLU()),
            torch.nn.Sequential(torch.nn.Conv2d(c, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                                torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 12, 3, padding=1, bias=False),
                                torch.nn.BatchNorm2d(12), torch.nn.ReLU()))


@pytest.mark.parametrize("training", [True, False])
def test_sequential_layout_run_matches_torch(dtype, training, monkeypatch):
    from oracle import check_layer, randn

    from funclayers._kernels import _conv_lowering

    assert _conv_lowering.choose((4, 8, 12, 12), (16, 8, 3, 3), 1, (1, 1), ((1, 1), (1, 1))) == "winograd"
    assert _conv_lowering.choose((4, 16, 6, 6), (12, 16, 3, 3), 1, (1, 1), ((1, 1), (1, 1))) == "winograd"
    seen = _spy_layouts(monkeypatch)
    torch.manual_seed(0)
    model, module = _conv_run()
    x = randn(4, 8, 12, 12, seed=5)
    check_layer(module, model, [x], dtype=dtype, training=training, steps=2, **_deep(dtype))
    assert "phase" in seen and set(seen) <= {"phase", None}  # the whole model one run, NCHW at its end


@pytest.mark.parametrize("training", [True, False])
def test_sequential_layout_run_batchnorm_options_match_torch(dtype, training, monkeypatch):
    """BatchNorm2d without affine parameters, with torch's cumulative average, without running stats."""
    from oracle import check_layer, randn

    seen = _spy_layouts(monkeypatch)
    torch.manual_seed(3)
    model = fl.Sequential(fl.Conv2d(8, 16, 3, padding=1), fl.BatchNorm2d(16, affine=False, momentum=None),
                          fl.ReLU(), fl.Conv2d(16, 16, 3, padding=1, bias=False),
                          fl.BatchNorm2d(16, track_running_stats=False))
    module = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1),
                                 torch.nn.BatchNorm2d(16, affine=False, momentum=None), torch.nn.ReLU(),
                                 torch.nn.Conv2d(16, 16, 3, padding=1, bias=False),
                                 torch.nn.BatchNorm2d(16, track_running_stats=False))
    check_layer(module, model, [randn(4, 8, 10, 12, seed=4)], dtype=dtype, training=training, steps=2,
                **_deep(dtype))
    assert seen and set(seen) == {"phase"}  # one run, NCHW at its end


def test_sequential_layout_run_broken_by_other_layers_matches_torch(dtype, monkeypatch):
    """Unsupported layers (Tanh, a 3x3 max pool, a strided conv) end a run; the next conv starts one."""
    from oracle import check_layer, randn

    seen = _spy_layouts(monkeypatch)
    torch.manual_seed(1)
    model = fl.Sequential(fl.Conv2d(8, 16, 3, padding=1), fl.BatchNorm2d(16), fl.Tanh(),
                          fl.Conv2d(16, 16, 3, padding=1), fl.ReLU(), fl.MaxPool2d(3, stride=1, padding=1),
                          fl.Conv2d(16, 16, 3, padding=1), fl.MaxPool2d(2), fl.Conv2d(16, 16, 3, stride=2, padding=1),
                          fl.ReLU(), fl.Conv2d(16, 8, 3, padding=1, bias=False), fl.BatchNorm2d(8))
    module = torch.nn.Sequential(
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.Tanh(),
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(3, stride=1, padding=1),
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(), torch.nn.Conv2d(16, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8))
    x = randn(4, 8, 16, 16, seed=6)
    check_layer(module, model, [x], dtype=dtype, training=True, **_deep(dtype))
    # conv+BN -> Tanh; conv+ReLU -> 3x3 pool; conv+pool -> (cnhw) strided conv; the last conv+BN at the end
    assert [s for s in seen if s is not None][:4] == ["phase", "phase", "cnhw", "phase"]


def test_sequential_layout_run_picks_torchs_max_on_ties(dtype, monkeypatch):
    """A constant conv output ties every pooling window: the gradient goes to torch's first element."""
    from oracle import check_layer, randn

    seen = _spy_layouts(monkeypatch)
    torch.manual_seed(2)
    model = fl.Sequential(fl.Conv2d(8, 8, 3, padding=1), fl.MaxPool2d(2), fl.Conv2d(8, 8, 3, padding=1))
    module = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.MaxPool2d(2),
                                 torch.nn.Conv2d(8, 8, 3, padding=1))
    torch.nn.init.zeros_(module[0].weight)
    # (a wrong pick moves whole gradient entries: O(1) errors, far outside even float32's deep tolerance)
    check_layer(module, model, [randn(8, 8, 8, 8, seed=7)], dtype=dtype, **_deep(dtype))
    assert seen[0] == "phase"


def test_sequential_layout_run_transforms_like_the_plain_chain(x64, monkeypatch):
    """jvp, linearize, vmap of grad and grad of grad through a run equal those of the layers one by one."""
    model, _ = _conv_run()
    params, state = model.init(jax.random.PRNGKey(0))
    params = jax.tree.map(lambda p: p + 0.1 * jnp.arange(p.size, dtype=p.dtype).reshape(p.shape) / p.size, params)
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    state = jax.tree.map(lambda s: s.astype(jnp.float64) if s.dtype == jnp.float32 else s, state)
    xs = jnp.asarray(np.random.default_rng(8).standard_normal((2, 4, 8, 12, 12)))
    tx = jnp.asarray(np.random.default_rng(9).standard_normal((4, 8, 12, 12)))

    def f(params, x):
        return model.apply(params, state, x, training=True)[0]

    weights = jnp.cos(jnp.arange(4 * 12 * 6 * 6).reshape(4, 12, 6, 6))

    def loss(params, x):
        return jnp.sum(f(params, x) ** 2 * weights)

    def results():
        jvp = jax.jit(lambda x: jax.jvp(lambda x: f(params, x), (x,), (tx,)))(xs[0])
        _, lin = jax.linearize(lambda x: f(params, x), xs[0])
        vgrad = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(params, xs)
        ggrad = jax.jit(jax.grad(lambda x: jnp.sum(jax.grad(loss, argnums=1)(params, x) ** 2)))(xs[0])
        # in the parameters too: the biases' own transpose (`_winograd._output_phase`) to second order
        pjvp = jax.jit(lambda p: jax.jvp(lambda p: f(p, xs[0]), (p,), (p,)))(params)
        pgrad2 = jax.jit(jax.grad(lambda p: sum(jnp.sum(g ** 2) for g in jax.tree.leaves(jax.grad(loss)(p, xs[0])))))(
            params)
        return jvp, jax.jit(lin)(tx), vgrad, ggrad, pjvp, pgrad2

    seen = _spy_layouts(monkeypatch)
    ours = results()
    assert "phase" in seen
    _layouts_off(monkeypatch)
    plain = results()
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("pool", [False, True])
def test_sequential_layout_run_ends_in_a_global_average_pool(dtype, pool, monkeypatch):
    """AdaptiveAvgPool2d(1) at a run's end averages the "phase" (or, after MaxPool2d(2), "cnhw") value in
    place: the run is never turned back into NCHW at full size."""
    from oracle import check_layer, randn

    from funclayers import _adaptive_pooling

    seen, seen_pool, average = _spy_layouts(monkeypatch), [], _adaptive_pooling._global_avg_layout

    def spy(params, state, value, layout, training):
        seen_pool.append(layout)
        return average(params, state, value, layout, training)

    monkeypatch.setattr(_adaptive_pooling, "_global_avg_layout", spy)
    torch.manual_seed(4)
    middle = ([fl.MaxPool2d(2)], [torch.nn.MaxPool2d(2)]) if pool else ([], [])
    model = fl.Sequential(fl.Conv2d(8, 16, 3, padding=1), fl.BatchNorm2d(16), fl.ReLU(), *middle[0],
                          fl.AdaptiveAvgPool2d(1), fl.Flatten(), fl.Linear(16, 5))
    module = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
                                 *middle[1], torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                 torch.nn.Linear(16, 5))
    check_layer(module, model, [randn(4, 8, 12, 12, seed=8)], dtype=dtype, training=True, steps=2, **_deep(dtype))
    assert set(seen_pool) == {"cnhw" if pool else "phase"} and set(seen) == {None}
