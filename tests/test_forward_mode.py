"""Forward mode and every other JAX transformation through every layer family (issue 20).

- jvp against torch's forward-mode AD (`torch.autograd.forward_ad`, what `torch.func.jvp` runs) of
  the same module, tangents on the input and on every parameter, float32 and float64, training
  and eval mode;
- jacfwd equals jacrev (w.r.t. the input and the parameters), small inputs, float64;
- vmap(grad) equals a loop of grad (per-example gradients), and batched JVPs;
- hessian and linearize;
- every convolution lowering the CPU dispatch can pick, forced, and both max-pool picks.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as fwad
from oracle import TORCH_DTYPES, load_into, randn, tolerance

import funclayers as fl
from funclayers import functional as F

# (torch / funclayers name, constructor args, kwargs, input shape, training)
CASES = [
    pytest.param("Conv1d", (3, 4, 3), {"padding": 1}, (2, 3, 9), False, id="conv1d"),
    pytest.param("Conv2d", (8, 8, 3), {"padding": 1}, (2, 8, 6, 5), False, id="conv2d-winograd"),
    pytest.param("Conv2d", (4, 6, 3), {"padding": 1, "stride": 2}, (2, 4, 7, 7), False, id="conv2d-gemm"),
    pytest.param("Conv2d", (4, 4, 3), {"padding": 1, "groups": 4}, (2, 4, 6, 6), False, id="conv2d-depthwise"),
    pytest.param("Conv2d", (4, 6, 3), {"padding": 1, "groups": 2}, (2, 4, 6, 6), False, id="conv2d-groups"),
    pytest.param("Conv3d", (2, 4, 3), {"padding": 1}, (1, 2, 4, 5, 5), False, id="conv3d"),
    pytest.param("ConvTranspose1d", (3, 2, 3), {"stride": 2}, (2, 3, 5), False, id="conv-transpose1d"),
    pytest.param("ConvTranspose2d", (4, 2, 4), {"stride": 2, "padding": 1}, (2, 4, 4, 4), False,
                 id="conv-transpose2d"),
    pytest.param("ConvTranspose3d", (2, 2, 3), {"stride": 2, "groups": 2}, (1, 2, 3, 3, 3), False,
                 id="conv-transpose3d-groups"),
    pytest.param("BatchNorm2d", (3,), {}, (4, 3, 3, 3), True, id="batchnorm2d-train"),
    pytest.param("BatchNorm1d", (3,), {}, (4, 3, 5), False, id="batchnorm1d-eval"),
    pytest.param("GroupNorm", (2, 4), {}, (3, 4, 5), True, id="groupnorm"),
    # spatial size divisible by 8: the backward pass reads (N, C, 8, L/8) views of its own
    pytest.param("GroupNorm", (2, 4), {}, (3, 4, 4, 4), True, id="groupnorm-length-by-8"),
    pytest.param("InstanceNorm2d", (3,), {"affine": True}, (2, 3, 4, 4), True, id="instancenorm2d"),
    pytest.param("LayerNorm", ((4, 5),), {}, (3, 4, 5), False, id="layernorm"),
    pytest.param("LocalResponseNorm", (3,), {}, (2, 5, 4, 4), False, id="lrn"),
    pytest.param("RMSNorm", (5,), {}, (3, 5), False, id="rmsnorm"),
    pytest.param("MaxPool1d", (3, 2, 1), {}, (2, 3, 9), False, id="maxpool1d"),
    pytest.param("MaxPool2d", (2,), {}, (2, 3, 6, 6), False, id="maxpool2d-k2"),
    pytest.param("MaxPool3d", (2, 1), {}, (1, 2, 3, 4, 4), False, id="maxpool3d"),
    pytest.param("AdaptiveMaxPool2d", ((3, 2),), {}, (2, 3, 7, 5), False, id="adaptive-maxpool2d"),
    pytest.param("AdaptiveAvgPool2d", (3,), {}, (2, 3, 7, 7), False, id="adaptive-avgpool2d"),
    pytest.param("AvgPool2d", (3, 2, 1), {"ceil_mode": True}, (2, 3, 6, 6), False, id="avgpool2d"),
    pytest.param("LPPool2d", (2, 2), {}, (2, 3, 6, 6), False, id="lppool2d"),
    pytest.param("ReflectionPad2d", (2,), {}, (2, 3, 4, 4), False, id="reflection-pad"),
    pytest.param("CircularPad1d", (1,), {}, (2, 3, 4), False, id="circular-pad"),
    pytest.param("GELU", (), {"approximate": "tanh"}, (3, 7), False, id="gelu"),
    pytest.param("PReLU", (3,), {}, (2, 3, 4), False, id="prelu"),
    pytest.param("Softmax", (), {"dim": 1}, (2, 5, 3), False, id="softmax"),
    pytest.param("LogSoftmax", (), {"dim": -1}, (3, 6), False, id="log-softmax"),
    pytest.param("Linear", (5, 4), {}, (3, 5), False, id="linear"),
    # in_features <= out_features: the weight gradient transposes the input (_linear._contract_last_backward)
    pytest.param("Linear", (4, 6), {}, (2, 3, 4), False, id="linear-input-transposed"),
    pytest.param("Bilinear", (3, 4, 2), {}, (5, 3), False, id="bilinear"),
    pytest.param("Unfold", (2,), {"padding": 1}, (2, 3, 4, 4), False, id="unfold"),
    pytest.param("Fold", ((4, 4), 2), {}, (2, 8, 9), False, id="fold"),
]


def _inputs(name, shape, dtype):
    x = randn(*shape, dtype=dtype, seed=1)
    if name == "Bilinear":
        return [x, randn(shape[0], 4, dtype=dtype, seed=2)]
    if name.startswith("LPPool"):
        return [np.abs(x) + 0.1]  # torch's gradient is NaN at zero / negative windows
    return [x]


def _floating(tree):
    return {k: v for k, v in tree.items() if np.issubdtype(np.asarray(v).dtype, np.floating)}


def _tangents(tree, seed):
    return {k: randn(*np.shape(v), dtype=np.asarray(v).dtype, seed=seed + i) for i, (k, v) in enumerate(tree.items())}


def _torch_jvp(module, inputs, tangents_in, params, tangents_p):
    """torch's forward-mode AD of `module` at `inputs` / `params` along the given tangents."""
    with fwad.dual_level():
        duals = {k: fwad.make_dual(torch.from_numpy(np.array(params[k])), torch.from_numpy(tangents_p[k]))
                 for k in params}
        buffers = {k: v.clone() for k, v in module.named_buffers()}
        xs = [fwad.make_dual(torch.from_numpy(x), torch.from_numpy(t)) for x, t in zip(inputs, tangents_in)]
        out = torch.func.functional_call(module, {**duals, **buffers}, tuple(xs))
        primal, tangent = fwad.unpack_dual(out)
        return primal.detach().numpy(), tangent.detach().numpy()


def _build(name, args, kwargs, dtype, training):
    module = getattr(torch.nn, name)(*args, **kwargs).to(TORCH_DTYPES[np.dtype(dtype)])
    module.train(training)
    with torch.no_grad():  # non-trivial affine parameters
        for p in module.parameters():
            p.add_(torch.from_numpy(randn(*p.shape, dtype=dtype, seed=9, scale=0.3)))
    layer = getattr(fl, name)(*args, **kwargs)
    params, state = load_into(layer, module, dtype)
    return module, layer, params, state


@pytest.mark.parametrize("name, args, kwargs, shape, training", CASES)
def test_jvp_matches_torch_forward_mode(name, args, kwargs, shape, training, dtype):
    module, layer, params, state = _build(name, args, kwargs, dtype, training)
    inputs = _inputs(name, shape, dtype)
    flat = _floating(fl.state_dict(params, {}))
    t_in = [randn(*x.shape, dtype=dtype, seed=5 + i) for i, x in enumerate(inputs)]
    t_p = _tangents(flat, 20)

    @jax.jit
    def ours(inputs, params, t_in, t_params):
        def f(inputs, params):
            return layer.apply(params, state, *inputs, training=training)[0]

        return jax.jvp(f, (inputs, params), (t_in, t_params))

    tree_t = fl.load_state_dict(layer, {**fl.state_dict(params, state), **t_p}, dtype=np.dtype(dtype))[0]
    out, tangent = ours(inputs, params, t_in, jax.tree.map(lambda a: jnp.asarray(a, dtype), tree_t))
    expected_out, expected_t = _torch_jvp(module, inputs, t_in, flat, t_p)
    tol = tolerance(dtype)
    if name == "Conv2d" and "groups" not in kwargs and dtype == np.float32:
        tol = tolerance(dtype, atol=1e-5)  # the product of two unit-scale tangent terms
    np.testing.assert_allclose(np.asarray(out), expected_out, **tol)
    np.testing.assert_allclose(np.asarray(tangent), expected_t, **tol)


def _params_and_input_fn(layer, state, training, inputs):
    def f(x, params):
        return layer.apply(params, state, x, *inputs[1:], training=training)[0]

    return f


@pytest.mark.parametrize("name, args, kwargs, shape, training", CASES)
def test_jacfwd_equals_jacrev(name, args, kwargs, shape, training, x64):
    _, layer, params, state = _build(name, args, kwargs, np.float64, training)
    inputs = _inputs(name, shape, np.float64)
    f = _params_and_input_fn(layer, state, training, inputs)
    x = jnp.asarray(inputs[0])
    forward = jax.jit(jax.jacfwd(f, argnums=(0, 1)))(x, params)
    reverse = jax.jit(jax.jacrev(f, argnums=(0, 1)))(x, params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), forward, reverse)


# One case per kernel: vmap(grad) per example against a loop, and a batched JVP (vmap of jvp).
KERNEL_CASES = [c for c in CASES if c.id in {
    "conv2d-winograd", "conv2d-gemm", "conv2d-depthwise", "conv2d-groups", "conv-transpose2d",
    "batchnorm2d-train", "groupnorm", "maxpool2d-k2", "adaptive-maxpool2d",
}]


@pytest.mark.parametrize("name, args, kwargs, shape, training", KERNEL_CASES)
def test_vmap_of_grad_and_of_jvp_equal_a_loop(name, args, kwargs, shape, training, x64):
    _, layer, params, state = _build(name, args, kwargs, np.float64, training)
    x = jnp.asarray(_inputs(name, shape, np.float64)[0])
    ct = jnp.asarray(randn(*layer.apply(params, state, x, training=training)[0].shape, dtype=np.float64, seed=7))

    def loss(params, x, ct):  # one example at a time: a batch of one
        return jnp.sum(layer.apply(params, state, x[None], training=training)[0] * ct[None])

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    batched = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, 0, 0)))(params, x, ct)
    for i in range(x.shape[0]):
        jax.tree.map(lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-10, atol=1e-12), batched,
                     grad(params, x[i], ct[i]))

    def f(x):
        return layer.apply(params, state, x, training=training)[0]

    tangents = jnp.asarray(randn(3, *x.shape, dtype=np.float64, seed=8))
    jvp = jax.jit(lambda t: jax.jvp(f, (x,), (t,))[1])
    batched = jax.jit(jax.vmap(jvp))(tangents)
    for i in range(3):
        np.testing.assert_allclose(batched[i], jvp(tangents[i]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["xla", "taps", "patches", "winograd", "gemm", "shift", "split", "grouped"])
def test_every_conv_lowering_jvp_matches_torch(method, dtype):
    from funclayers._kernels import _conv_lowering as lowering

    groups = {"shift": 4, "split": 2, "grouped": 2}.get(method, 1)
    stride = (2, 1) if method in ("gemm", "patches") else (1, 1)
    x = randn(2, 4, 6, 5, dtype=dtype, seed=1)
    w = randn(6 if groups == 2 else 4, 4 // groups, 3, 3, dtype=dtype, seed=2)
    tx, tw = randn(*x.shape, dtype=dtype, seed=3), randn(*w.shape, dtype=dtype, seed=4)

    def ours(x, w):
        return lowering.conv(x, w, stride, ((1, 1), (1, 1)), (1, 1), groups, method=method)

    _, tangent = jax.jit(lambda *a: jax.jvp(ours, a[:2], a[2:]))(x, w, tx, tw)
    _, expected = torch.func.jvp(
        lambda x, w: torch.nn.functional.conv2d(x, w, None, stride, 1, 1, groups),
        (torch.from_numpy(x), torch.from_numpy(w)), (torch.from_numpy(tx), torch.from_numpy(tw)))
    np.testing.assert_allclose(np.asarray(tangent), expected.numpy(), **tolerance(dtype, atol=1e-5))
    # and a Jacobian both ways (the jvp primitive under vmap, the transpose under vmap)
    with jax.enable_x64(True):
        x64_, w64 = jnp.asarray(x, np.float64)[:1, :, :4, :4], jnp.asarray(w, np.float64)
        fwd = jax.jit(jax.jacfwd(ours, argnums=(0, 1)))(x64_, w64)
        rev = jax.jit(jax.jacrev(ours, argnums=(0, 1)))(x64_, w64)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), fwd, rev)


@pytest.mark.parametrize("name, args, shape", [
    ("MaxPool2d", (3, 2, 1), (2, 3, 7, 7)),
    ("MaxPool1d", (2, 1), (2, 3, 6)),
    ("AdaptiveMaxPool2d", ((4, 3),), (2, 3, 7, 8)),
])
def test_max_pool_jvp_matches_torch_for_both_picks(name, args, shape, max_pick, dtype):
    module, layer, params, state = _build(name, args, {}, dtype, False)
    x = randn(*shape, dtype=dtype, seed=1)
    x[0, 0, :2] = x[0, 0, 2]  # ties: the first maximum wins, the tangent follows it
    t = randn(*shape, dtype=dtype, seed=2)
    _, tangent = jax.jit(lambda x, t: jax.jvp(lambda x: layer.apply(params, state, x)[0], (x,), (t,)))(x, t)
    _, expected = _torch_jvp(module, [x], [t], {}, {})
    np.testing.assert_allclose(np.asarray(tangent), expected, **tolerance(dtype))


def test_max_unpool_jvp_matches_torch(dtype):
    pool = torch.nn.MaxPool2d(2, return_indices=True)
    x = randn(2, 3, 4, 6, dtype=dtype, seed=1)
    y, indices = pool(torch.from_numpy(x))
    t = randn(*y.shape, dtype=dtype, seed=2)
    _, expected = torch.func.jvp(lambda y: torch.nn.functional.max_unpool2d(y, indices, 2), (y,),
                                 (torch.from_numpy(t),))
    layer = fl.MaxUnpool2d(2)
    f = jax.jit(lambda y: layer.apply({}, {}, y, jnp.asarray(indices.numpy()))[0])
    _, tangent = jax.jvp(f, (jnp.asarray(y.numpy()),), (jnp.asarray(t),))
    np.testing.assert_allclose(np.asarray(tangent), expected.numpy(), **tolerance(dtype))
    fwd, rev = jax.jit(jax.jacfwd(f))(jnp.asarray(y.numpy())), jax.jit(jax.jacrev(f))(jnp.asarray(y.numpy()))
    np.testing.assert_array_equal(fwd, rev)  # distinct indices: the write and the gather are transposes


def test_fractional_max_pool_jvp_matches_torch(dtype):
    samples = np.random.default_rng(0).uniform(size=(2, 3, 2)).astype(dtype)
    module = torch.nn.FractionalMaxPool2d(2, output_size=(3, 4), _random_samples=torch.from_numpy(samples))
    layer = fl.FractionalMaxPool2d(2, output_size=(3, 4), _random_samples=samples)
    x, t = randn(2, 3, 7, 8, dtype=dtype, seed=1), randn(2, 3, 7, 8, dtype=dtype, seed=2)
    _, expected = _torch_jvp(module.to(TORCH_DTYPES[np.dtype(dtype)]), [x], [t], {}, {})
    params, state = layer.init(jax.random.PRNGKey(0))  # the state holds the given samples
    f = jax.jit(lambda x: layer.apply(params, state, x)[0])
    np.testing.assert_allclose(np.asarray(jax.jvp(f, (x,), (t,))[1]), expected, **tolerance(dtype))


def test_cross_map_lrn2d_tangent_is_the_transpose_of_torchs_backward(x64):
    # torch has no forward-mode rule for this legacy Function, and its backward is not the
    # derivative of its forward: our tangent is the transpose of torch's backward, so
    # <ct, jvp(t)> = <torch's vjp(ct), t>, and jacfwd equals jacrev.
    module = torch.nn.CrossMapLRN2d(3, alpha=0.5, beta=0.75, k=1.0).double()
    layer = fl.CrossMapLRN2d(3, alpha=0.5, beta=0.75, k=1.0)
    x, t, ct = (randn(2, 5, 3, 3, dtype=np.float64, seed=s) for s in (1, 2, 3))
    tx = torch.from_numpy(x).requires_grad_(True)
    (vjp,) = torch.autograd.grad(module(tx), tx, torch.from_numpy(ct))

    def f(x):
        return layer.apply({}, {}, x)[0]

    tangent = jax.jit(lambda x, t: jax.jvp(f, (x,), (t,))[1])(x, t)
    np.testing.assert_allclose(np.vdot(ct, tangent), np.vdot(vjp.numpy(), t), rtol=1e-12)
    np.testing.assert_allclose(jax.jit(jax.jacfwd(f))(x[:1]), jax.jit(jax.jacrev(f))(x[:1]), rtol=1e-12, atol=1e-14)


def test_dropout_jvp_is_the_same_mask(dtype):
    layer = fl.Dropout(0.3)
    x, t = randn(4, 6, dtype=dtype, seed=1), randn(4, 6, dtype=dtype, seed=2)
    key = jax.random.PRNGKey(3)

    def f(x):
        return layer.apply({}, {}, x, rng=key, training=True)[0]

    _, tangent = jax.jit(lambda x, t: jax.jvp(f, (x,), (t,)))(x, t)
    np.testing.assert_array_equal(tangent, jax.jit(f)(t))  # linear in x for a fixed rng: the tangent is the map
    np.testing.assert_allclose(jax.jit(jax.jacfwd(f))(x), jax.jit(jax.jacrev(f))(x))


def _small_cnn():
    return fl.Sequential(
        fl.Conv2d(3, 8, 3, padding=1), fl.BatchNorm2d(8), fl.ReLU(), fl.MaxPool2d(2),
        fl.Conv2d(8, 8, 3, padding=1, groups=8), fl.GroupNorm(2, 8), fl.GELU(),
        fl.AdaptiveAvgPool2d(1), fl.Flatten(), fl.Linear(8, 4), fl.LogSoftmax(dim=-1))


def _torch_small_cnn():
    n = torch.nn
    return n.Sequential(
        n.Conv2d(3, 8, 3, padding=1), n.BatchNorm2d(8), n.ReLU(), n.MaxPool2d(2),
        n.Conv2d(8, 8, 3, padding=1, groups=8), n.GroupNorm(2, 8), n.GELU(),
        n.AdaptiveAvgPool2d(1), n.Flatten(), n.Linear(8, 4), n.LogSoftmax(dim=-1))


@pytest.mark.parametrize("training", [True, False])
def test_sequential_model_jvp_matches_torch(training, dtype):
    torch.manual_seed(0)
    module = _torch_small_cnn().to(TORCH_DTYPES[np.dtype(dtype)]).train(training)
    layer = _small_cnn()
    params, state = load_into(layer, module, dtype)
    x, t = randn(2, 3, 8, 8, dtype=dtype, seed=1), randn(2, 3, 8, 8, dtype=dtype, seed=2)
    flat = _floating(fl.state_dict(params, {}))
    t_p = _tangents(flat, 30)
    tree_t = fl.load_state_dict(layer, {**fl.state_dict(params, state), **t_p}, dtype=np.dtype(dtype))[0]

    def f(x, params):
        return layer.apply(params, state, x, training=training)[0]

    _, tangent = jax.jit(lambda *a: jax.jvp(f, a[:2], a[2:]))(x, params, t, tree_t)
    _, expected = _torch_jvp(module, [x], [t], flat, t_p)
    np.testing.assert_allclose(np.asarray(tangent), expected, **tolerance(dtype, atol=1e-5))


def test_hessian_and_linearize_through_every_kernel(x64):
    # a conv (Winograd), training BatchNorm, max pooling and GroupNorm in a row, small
    layer = fl.Sequential(fl.Conv2d(1, 2, 3, padding=1), fl.BatchNorm2d(2), fl.MaxPool2d(2), fl.GroupNorm(1, 2))
    params, state = layer.init(jax.random.PRNGKey(0))
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    state = jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, state)
    x = jnp.asarray(randn(2, 1, 4, 4, dtype=np.float64, seed=1))

    def loss(w):
        p = {**params, "0": {**params["0"], "weight": w}}
        return jnp.sum(jnp.tanh(layer.apply(p, state, x, training=True)[0]) ** 2)

    w = params["0"]["weight"]
    hessian = jax.jit(jax.hessian(loss))(w)
    flat = hessian.reshape(w.size, w.size)
    np.testing.assert_allclose(flat, flat.T, rtol=1e-8, atol=1e-10)  # symmetric
    v = jnp.asarray(randn(*w.shape, dtype=np.float64, seed=2))
    hvp_reverse = jax.jit(jax.grad(lambda w: jnp.vdot(jax.grad(loss)(w), v)))(w)  # reverse over reverse
    np.testing.assert_allclose(jnp.tensordot(hessian, v, w.ndim), hvp_reverse, rtol=1e-8, atol=1e-10)

    def f(x):
        return layer.apply(params, state, x, training=True)[0]

    y, f_lin = jax.linearize(f, x)
    t = jnp.asarray(randn(*x.shape, dtype=np.float64, seed=3))
    np.testing.assert_allclose(jax.jit(f_lin)(t), jax.jit(lambda t: jax.jvp(f, (x,), (t,))[1])(t), rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(y, jax.jit(f)(x), rtol=1e-12)


@pytest.mark.parametrize("norm_type", [1.5, 3.0])
def test_lp_pool_gradient_is_nan_where_torchs_is(norm_type, dtype):
    # a window with a negative entry and a fractional norm_type averages x ** p = NaN (with an odd
    # integer one, a negative average's root is NaN): torch's gradient is NaN at every entry of
    # that window, and finite elsewhere
    x = randn(1, 2, 4, 6, dtype=dtype, seed=1)
    x[0, 1] = np.abs(x[0, 1])  # a positive channel: finite gradients there
    tx = torch.from_numpy(x).requires_grad_(True)
    torch.nn.functional.lp_pool2d(tx, norm_type, 2).sum().backward()
    grad = np.asarray(jax.jit(jax.grad(lambda x: jnp.sum(F.lp_pool2d(x, norm_type, 2))))(x))
    expected = tx.grad.numpy()
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(expected))
    assert np.isnan(expected[0, 0]).any() and not np.isnan(expected[0, 1]).any()  # the case is exercised
    np.testing.assert_allclose(np.nan_to_num(grad), np.nan_to_num(expected), **tolerance(dtype))


def test_lp_pool_gradient_at_zero_windows_matches_torch(dtype):
    x = randn(1, 1, 4, 4, dtype=dtype, seed=1)
    x[..., :2, :2] = 0  # an all-zero window: torch's gradient there
    tx = torch.from_numpy(x).requires_grad_(True)
    torch.nn.functional.lp_pool2d(tx, 2.0, 2).sum().backward()
    grad = jax.jit(jax.grad(lambda x: jnp.sum(F.lp_pool2d(x, 2.0, 2))))(x)
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(tx.grad.numpy()))
    np.testing.assert_allclose(np.nan_to_num(np.asarray(grad)), np.nan_to_num(tx.grad.numpy()), **tolerance(dtype))
