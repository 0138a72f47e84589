"""The functionals of issue 27 against torch: normalize, one_hot, gumbel_softmax, pdist, conv_tbc,
native_channel_shuffle, grouped_mm and the in-place activation names (relu_, elu_, ...)."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import assert_close, randn, tolerance

import funclayers as fl
import funclayers.functional as F

TF = torch.nn.functional


def _grad_check(ours, theirs, inputs, dtype, **tol):
    """ours(*inputs) against theirs(*torch inputs): the output and the gradients of sum(out * cotangent)."""
    tol = tolerance(dtype, **tol)
    t_in = [torch.tensor(x, requires_grad=True) for x in inputs]
    t_out = theirs(*t_in)
    cot = randn(*t_out.shape, dtype=dtype, seed=7)
    (t_out * torch.from_numpy(cot)).sum().backward()
    def forward_and_grads(args, cot):  # one compiled program per case (eager ops compile one by one)
        out, vjp = jax.vjp(ours, *args)
        return out, vjp(cot)

    out, grads = jax.jit(forward_and_grads)([jnp.asarray(x) for x in inputs], jnp.asarray(cot))
    assert_close(out, t_out, "output", **tol)
    for i, (g, t) in enumerate(zip(grads, t_in)):
        assert_close(g, t.grad, f"grad of input {i}", **tol)


# -- the in-place names ------------------------------------------------------------------------------

INPLACE = [("relu_", (), {}), ("elu_", (0.7,), {}), ("celu_", (1.5,), {}), ("selu_", (), {}),
           ("leaky_relu_", (0.2,), {}), ("hardtanh_", (-0.5, 0.8), {}), ("threshold_", (0.1, -2.0), {}),
           ("rrelu_", (0.1, 0.3), {})]


@pytest.mark.parametrize("name,args,kwargs", INPLACE, ids=[n for n, *_ in INPLACE])
def test_inplace_name_returns_torchs_result_and_leaves_the_input(name, args, kwargs, dtype):
    x = randn(3, 5, dtype=dtype, seed=1)
    x[0, :3] = [0.0, -0.5, 0.8]  # the kinks and the clipping bounds
    before = x.copy()
    # torch's in-place op on a non-leaf copy, so that autograd records it
    _grad_check(lambda v: getattr(F, name)(v, *args, **kwargs),
                lambda t: getattr(TF, name)(t.clone(), *args, **kwargs), [x], dtype)
    np.testing.assert_array_equal(x, before)


def test_rrelu_inplace_training_draws_slopes_in_range():
    x = -jnp.ones((1000,))
    y = F.rrelu_(x, 0.1, 0.3, training=True, rng=jax.random.PRNGKey(0))
    assert float(y.min()) >= -0.3 and float(y.max()) <= -0.1 and float(y.std()) > 0.03
    with pytest.raises(ValueError, match="rrelu_ draws random numbers and needs `rng`"):
        F.rrelu_(x, 0.1, 0.3, training=True)


# -- normalize ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("p,dim", [(2, 1), (1, -1), (0, (1, 2)), (3, 1), (math.inf, (1, 2))],
                         ids=["p2-dim1", "p1-dim-1", "p0-dims12", "p3-dim1", "pinf-dims12"])
def test_normalize_matches_torch(p, dim, dtype):
    x = randn(2, 3, 4, dtype=dtype, seed=2)
    x[0, :, 1] = 0.0  # a zero vector along dim 1, and zero entries elsewhere
    x[1, 2, 3] = 0.0
    _grad_check(lambda v: F.normalize(v, p, dim), lambda t: TF.normalize(t, p, dim), [x], dtype)


def test_normalize_eps_and_errors():
    y = F.normalize(jnp.array([[1e-3, 0.0]]), eps=1.0)  # below eps the denominator is eps
    np.testing.assert_allclose(y, [[1e-3, 0.0]])
    with pytest.raises(TypeError, match="normalize: `out` is not supported"):
        F.normalize(jnp.ones((2, 2)), out=jnp.ones((2, 2)))
    with pytest.raises(TypeError, match="normalize expects a floating-point input"):
        F.normalize(jnp.ones((2, 2), jnp.int32))
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.normalize(jnp.ones(3))  # dim=1 of a 1-D input, as torch


# -- one_hot -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [-1, 5])
def test_one_hot_matches_torch(num_classes, x64):
    idx = np.array([[0, 3], [2, 1]], np.int64)
    got = F.one_hot(jnp.asarray(idx), num_classes)
    expected = TF.one_hot(torch.from_numpy(idx), num_classes).numpy()
    assert got.dtype == jnp.int64
    np.testing.assert_array_equal(got, expected)
    assert F.one_hot(jnp.array([1, 0], jnp.int32), 3).dtype == jnp.int32  # the input's integer dtype


def test_one_hot_under_jit_and_vmap():
    idx = jnp.array([2, 0, 1])
    np.testing.assert_array_equal(jax.jit(F.one_hot, static_argnums=1)(idx, 3), np.eye(3, dtype=np.int32)[[2, 0, 1]])
    np.testing.assert_array_equal(jax.vmap(lambda i: F.one_hot(i, 3))(idx), np.eye(3, dtype=np.int32)[[2, 0, 1]])
    with pytest.raises(ValueError, match="one_hot: num_classes=-1 infers .* traced .* pass num_classes explicitly"):
        jax.jit(F.one_hot)(idx)


@pytest.mark.parametrize("idx,num_classes,error,match", [
    ([0, 2], 2, ValueError, "Class values must be smaller than num_classes"),
    ([0, -1], 3, ValueError, "Class values must be non-negative"),
    ([0.0, 2.0], 3, TypeError, "one_hot is only applicable to index tensor of type LongTensor"),
    (np.zeros(0, np.int32), -1, ValueError, "Can not infer total number of classes from empty tensor"),
    ([1], -2, ValueError, "num_classes must be a non-negative int or -1"),
])
def test_one_hot_errors_like_torch(idx, num_classes, error, match):
    with pytest.raises(error, match=match):
        F.one_hot(jnp.asarray(idx), num_classes)


# -- gumbel_softmax ----------------------------------------------------------------------------------


@pytest.mark.parametrize("hard,tau,dim", [(False, 1.0, -1), (True, 0.5, 0)],
                         ids=["soft-tau1-dim-1", "hard-tau0.5-dim0"])
def test_gumbel_softmax_matches_torch_given_the_same_noise(hard, tau, dim, dtype, monkeypatch):
    key = jax.random.PRNGKey(3)
    logits = randn(4, 5, dtype=dtype, seed=3)
    gumbels = np.asarray(jax.random.gumbel(key, logits.shape, dtype))
    # torch draws g = -log(E), E ~ Exponential(1): hand it the E of our g
    monkeypatch.setattr(torch.Tensor, "exponential_", lambda self, *a, **k: self.copy_(torch.from_numpy(
        np.exp(-gumbels.astype(np.float64)).astype(dtype))))
    _grad_check(lambda v: F.gumbel_softmax(v, tau, hard, dim=dim, rng=key),
                lambda t: TF.gumbel_softmax(t, tau, hard, dim=dim), [logits], dtype, rtol=1e-5 if dtype == np.float32
                else 1e-9)


def test_gumbel_softmax_samples_the_categorical_distribution():
    """The argmax of a Gumbel-softmax sample is a draw from softmax(logits) (the Gumbel-max trick)."""
    n = 20000
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    sample = jax.jit(lambda logits: F.gumbel_softmax(logits, tau=0.7, hard=True, rng=jax.random.PRNGKey(4)))
    y = sample(jnp.broadcast_to(jnp.log(probs), (n, 4)))
    freq = np.asarray(y.mean(0))
    np.testing.assert_array_equal(np.asarray(y.sum(-1)), np.ones(n))  # one-hot rows
    sigma = np.sqrt(probs * (1 - probs) / n)  # the binomial standard error of each frequency
    assert np.all(np.abs(freq - probs) < 5 * sigma), (freq, probs)


def test_gumbel_softmax_hard_is_straight_through():
    logits, key = jnp.array([[0.5, -1.0, 2.0]]), jax.random.PRNGKey(5)
    weights = jnp.array([1.0, 2.0, 3.0])

    @jax.jit
    def check(v):
        def sample(v, hard):
            return F.gumbel_softmax(v, hard=hard, rng=key)

        g_hard = jax.grad(lambda v: (sample(v, True) * weights).sum())(v)
        g_soft = jax.grad(lambda v: (sample(v, False) * weights).sum())(v)
        y_hard, t_hard = jax.jvp(lambda v: sample(v, True), (v,), (jnp.ones_like(v),))
        return g_hard, g_soft, y_hard, t_hard, jax.jvp(lambda v: sample(v, False), (v,), (jnp.ones_like(v),))[1]

    g_hard, g_soft, y_hard, t_hard, t_soft = check(logits)
    np.testing.assert_allclose(g_hard, g_soft, rtol=1e-6)
    np.testing.assert_allclose(t_hard, t_soft, rtol=1e-6, atol=1e-7)
    assert sorted(np.asarray(y_hard[0]).tolist()) == [0.0, 0.0, 1.0]


def test_gumbel_softmax_errors_and_eps_warning():
    with pytest.raises(ValueError, match="gumbel_softmax draws random numbers and needs `rng`"):
        F.gumbel_softmax(jnp.zeros(3))
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated"):
        F.gumbel_softmax(jnp.zeros(3), eps=1e-5, rng=jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match="gumbel_softmax expects a floating-point logits"):
        F.gumbel_softmax(jnp.zeros(3, jnp.int32), rng=jax.random.PRNGKey(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.gumbel_softmax(jnp.zeros(3), rng=jax.random.PRNGKey(0))


# -- pdist -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0, 0.5, 1, 2, 3, math.inf], ids=lambda p: f"p{p}")
def test_pdist_matches_torch(p, dtype):
    x = randn(5, 3, dtype=dtype, seed=5)
    x[1] = x[0]  # a zero distance: torch's gradient there is 0
    x[3, 1] = x[2, 1]  # a zero difference in one feature
    x[4, 0] = x[2, 0] + (x[4, 2] - x[2, 2])  # ties for p = inf
    _grad_check(lambda v: F.pdist(v, p), lambda t: TF.pdist(t, p), [x], dtype)


def test_pdist_of_fewer_than_two_rows_is_empty():
    assert F.pdist(jnp.ones((1, 3))).shape == (0,)


@pytest.mark.parametrize("x,p,error,match", [
    (np.ones(3), 2, ValueError, "pdist only supports 2D tensors"),
    (np.ones((2, 3, 4)), 2, ValueError, "pdist only supports 2D tensors"),
    (np.ones((4, 3)), -1, ValueError, "pdist only supports non-negative p values"),
    (np.ones((4, 3), np.int32), 2, TypeError, "pdist only supports floating-point dtypes"),
])
def test_pdist_errors_like_torch(x, p, error, match):
    with pytest.raises(error, match=match):
        F.pdist(jnp.asarray(x), p)


# -- conv_tbc ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad", [0, 1, 3])
def test_conv_tbc_matches_torch(pad, dtype):
    x, w, b = randn(6, 2, 3, dtype=dtype, seed=1), randn(3, 3, 4, dtype=dtype, seed=2), randn(4, dtype=dtype, seed=3)
    _grad_check(lambda *a: F.conv_tbc(*a, pad), lambda *a: TF.conv_tbc(*a, pad), [x, w, b], dtype)


@pytest.mark.parametrize("shapes,pad,match", [
    (((5, 3), (3, 3, 4), (4,)), 0, "Input must have 3 dims: time, batch, in_channel"),
    (((5, 2, 3), (3, 4), (4,)), 0, "Weight tensor must have 3 dims"),
    (((5, 2, 3), (3, 2, 4), (4,)), 0, r"Input dim 2 \(input channels, 3\) is not == dim 1 in the weight"),
    (((5, 2, 3), (3, 3, 4), (5,)), 0, "Bias size must equal dim 2 in the weight tensor"),
    (((2, 2, 3), (4, 3, 4), (4,)), 0, "output length .* is negative"),
])
def test_conv_tbc_errors_like_torch(shapes, pad, match):
    with pytest.raises(ValueError, match=match):
        F.conv_tbc(*[jnp.ones(s) for s in shapes], pad)


# -- native_channel_shuffle --------------------------------------------------------------------------


def test_native_channel_shuffle_matches_torch(dtype):
    x = randn(2, 6, 3, dtype=dtype)
    # torch has no derivative for native_channel_shuffle: its gradient is channel_shuffle's, the same permutation
    assert_close(F.native_channel_shuffle(x, 3), TF.native_channel_shuffle(torch.from_numpy(x), 3), "output",
                 **tolerance(dtype))
    _grad_check(lambda v: F.native_channel_shuffle(v, 3), lambda t: TF.channel_shuffle(t, 3), [x], dtype)


@pytest.mark.parametrize("shape,groups,match", [
    ((1, 6, 2), 4, "Number of channels must be divisible by groups. Got 6 channels and 4 groups"),
    ((6, 2), 3, "native_channel_shuffle expects input with > 2 dims"),
    ((1, 6, 2), 0, "Number of groups to divide channels in must be positive"),
])
def test_native_channel_shuffle_errors_like_torch(shape, groups, match):
    with pytest.raises(ValueError, match=match):
        F.native_channel_shuffle(jnp.ones(shape), groups)


# -- grouped_mm --------------------------------------------------------------------------------------

# (mat_a shape, mat_b shape, offs, the valid part of the result: torch leaves the rest uninitialised)
GROUPED = {
    "2d-3d": ((8, 8), (3, 8, 16), [2, 3, 6], np.s_[:6]),
    "3d-3d": ((3, 8, 8), (3, 8, 16), None, np.s_[:]),
    "2d-2d": ((4, 16), (16, 8), [4, 8, 12], np.s_[:]),
    "3d-2d": ((3, 8, 8), (8, 16), [4, 8, 12], np.s_[:, :12]),
}


def _grouped_reference(a, b, offs):
    """The grouped product as per-group torch matmuls (torch's grouped_mm runs no float64)."""
    if offs is None:
        return a @ b
    ends = list(offs)
    starts = [0] + ends[:-1]
    if a.dim() == 2 and b.dim() == 3:
        return torch.cat([a[s:e] @ b[g] for g, (s, e) in enumerate(zip(starts, ends))])
    if a.dim() == 3:
        return torch.cat([a[g] @ b[:, s:e] for g, (s, e) in enumerate(zip(starts, ends))], dim=1)
    return torch.stack([a[:, s:e] @ b[s:e] for s, e in zip(starts, ends)])


@pytest.mark.parametrize("case", GROUPED)
def test_grouped_mm_matches_torch(case, dtype):
    a_shape, b_shape, offs, valid = GROUPED[case]
    a, b = randn(*a_shape, dtype=dtype, seed=1), randn(*b_shape, dtype=dtype, seed=2)
    t_offs = None if offs is None else torch.tensor(offs, dtype=torch.int32)
    j_offs = None if offs is None else jnp.array(offs, jnp.int32)
    if dtype == np.float32:  # torch's own grouped_mm runs float32, float16 and bfloat16 only
        assert_close(F.grouped_mm(a, b, offs=j_offs)[valid],
                     TF.grouped_mm(torch.from_numpy(a), torch.from_numpy(b), offs=t_offs)[valid], "grouped_mm",
                     **tolerance(dtype))
    # gradients against per-group matmuls: torch's grouped_mm leaves those past offs[-1] uninitialised
    _grad_check(lambda va, vb: F.grouped_mm(va, vb, offs=j_offs)[valid],
                lambda ta, tb: _grouped_reference(ta, tb, offs)[valid], [a, b], dtype)


def test_grouped_mm_zero_past_the_last_offset_and_transforms():
    a, b = jnp.ones((8, 4)), jnp.ones((2, 4, 3))
    offs = jnp.array([2, 5], jnp.int32)
    out = F.grouped_mm(a, b, offs=offs)
    np.testing.assert_array_equal(out[5:], 0)
    np.testing.assert_array_equal(jax.jit(lambda a, b, o: F.grouped_mm(a, b, offs=o))(a, b, offs), out)
    batched = jax.vmap(lambda a: F.grouped_mm(a, b, offs=offs))(jnp.stack([a, 2 * a]))
    np.testing.assert_allclose(batched[1], 2 * out)
    _, tangent = jax.jvp(lambda a: F.grouped_mm(a, b, offs=offs), (a,), (a,))
    np.testing.assert_allclose(tangent, out)
    assert F.grouped_mm(a, b, offs=offs, out_dtype=jnp.float32).dtype == jnp.float32
    assert F.grouped_mm(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), offs=offs,
                        out_dtype=jnp.float32).dtype == jnp.float32


@pytest.mark.parametrize("a_shape,b_shape,offs,match", [
    ((8, 8), (3, 8, 16), None, "Have to provide offsets if there is a 2d matrix"),
    ((3, 8, 8), (3, 8, 16), [1, 2, 3], "Have to provide offsets if there is a 2d matrix"),
    ((3, 8, 8), (2, 8, 16), None, "batched dimension has to match"),
    ((3, 8, 8), (3, 4, 16), None, "contraction dimension of mat_a and mat_b must match"),
    ((8,), (3, 8, 16), [1, 2, 3], "mat_a has to be 2 or 3d"),
    ((8, 8), (3, 8, 16), [1, 2], "matrix batch sizes have to match"),
])
def test_grouped_mm_errors_like_torch(a_shape, b_shape, offs, match):
    offs = None if offs is None else jnp.array(offs, jnp.int32)
    with pytest.raises(ValueError, match=match):
        F.grouped_mm(jnp.ones(a_shape), jnp.ones(b_shape), offs=offs)


def test_grouped_mm_type_errors():
    with pytest.raises(TypeError, match="same dtype"):
        F.grouped_mm(jnp.ones((8, 8)), jnp.ones((3, 8, 16), jnp.bfloat16), offs=jnp.array([1, 2, 3]))
    with pytest.raises(TypeError, match="offs must be a 1-D integer"):
        F.grouped_mm(jnp.ones((8, 8)), jnp.ones((3, 8, 16)), offs=jnp.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="Bias not supported yet"):
        F.grouped_mm(jnp.ones((3, 8, 8)), jnp.ones((3, 8, 16)), bias=jnp.ones((3, 16)))


# -- torch.nn.functional's whole list ----------------------------------------------------------------

# torch.nn.functional's public callables that are not ops: typing names, torch-function plumbing, and
# the FP8 scaled products (scaled_mm, scaled_grouped_mm: CUDA float8 kernels with their scale recipes).
NOT_OPS = {"Callable", "DType", "Optional", "Tensor", "ScalingType", "SwizzleType", "assert_int_or_pair",
           "boolean_dispatch", "handle_torch_function", "has_torch_function", "has_torch_function_unary",
           "has_torch_function_variadic"}
NOT_YET = {"scaled_mm", "scaled_grouped_mm"}


def test_every_torch_functional_is_here():
    public = {n for n in dir(TF) if not n.startswith("_") and callable(getattr(TF, n))}
    missing = public - set(dir(F))
    assert missing == NOT_OPS | NOT_YET, f"missing from funclayers.functional: {sorted(missing - NOT_OPS - NOT_YET)}"



# -- mixed dtypes: raise where torch raises (issue 27; the whole sweep against torch is tests/test_mixed_dtypes.py) --
# torch never casts a module's parameters to its input's dtype: a float64 input into a float32 Linear, Conv, norm,
# PReLU or weighted loss raises ("mat1 and mat2 must have the same dtype", "Input type (double) and bias type
# (float) should be the same", "mixed dtype (CPU)", "expected scalar type Double but found Float"), and so do we,
# with how to convert; torch's CPU norms keep their mixed precision (a bfloat16 input with float32 parameters).

MIXED = {
    "Linear": (lambda: fl.Linear(3, 2), (4, 3), "mat1 and mat2 must have the same dtype, but got Double and Float"),
    "Conv1d": (lambda: fl.Conv1d(3, 2, 2), (1, 3, 5), r"Input type \(double\) and bias type \(float\) should be"),
    "LayerNorm": (lambda: fl.LayerNorm(3), (4, 3), r"mixed dtype \(CPU\): all inputs must share same datatype"),
    "BatchNorm1d": (lambda: fl.BatchNorm1d(3), (4, 3), r"mixed dtype \(CPU\): all inputs must share same datatype"),
    "PReLU": (lambda: fl.PReLU(), (4, 3), "prelu: Type promoting not supported. Got Double and Float"),
}


@pytest.mark.parametrize("name", MIXED)
def test_layers_raise_for_a_float64_input_into_float32_params(name, x64):
    factory, shape, message = MIXED[name]
    layer = factory()
    params, state = layer.init(jax.random.PRNGKey(0))
    x = jnp.asarray(randn(*shape, dtype=np.float64, seed=1))
    with pytest.raises(RuntimeError, match=message) as info:
        layer.apply(params, state, x)
    assert isinstance(info.value, ValueError) and "x.astype(jnp.float32)" in str(info.value)
    params64, state64 = jax.tree.map(lambda p: p.astype(jnp.float64) if jnp.issubdtype(p.dtype, jnp.floating)
                                     else p, (params, state))   # the conversion the message suggests
    out, _ = layer.apply(params64, state64, x)
    assert out.dtype == jnp.float64
    out32, _ = layer.apply(params, state, x.astype(jnp.float32))   # or the other one
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(out, out32, rtol=1e-5, atol=1e-6)
