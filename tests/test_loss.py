"""Loss functions against torch.nn (issue 18): values and gradients w.r.t. the input (and the target
where torch differentiates it) in float32 and float64, over each loss's option grid (pairwise, small
shapes); buffers in state; jit, vmap and forward mode; torch's errors."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import TORCH_DTYPES, assert_close, randn, to_torch, tolerance

import funclayers as fl
import funclayers.functional as F

# -- the harness -----------------------------------------------------------------------------------------


def _rng(seed):
    return np.random.default_rng(seed)


def compare(torch_fn, our_fn, inputs, dtype, diff=(0,), what="loss", **tol_override):
    """Run torch_fn(*tensors) and our_fn(*arrays); compare values and the gradients w.r.t. `diff` under
    the same random cotangent."""
    tol = tolerance(dtype, **tol_override)
    t_inputs = [to_torch(x, requires_grad=i in diff) for i, x in enumerate(inputs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_t = torch_fn(*t_inputs)
    ct = randn(*out_t.shape, dtype=dtype, seed=99) if out_t.ndim else np.asarray(1.7, dtype)
    out_t.backward(torch.from_numpy(np.array(ct)))

    def f(*diff_args):
        args = list(inputs)
        for i, a in zip(diff, diff_args):
            args[i] = a
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return our_fn(*args)

    out, vjp = jax.vjp(jax.jit(f), *[jnp.asarray(inputs[i]) for i in diff])
    assert out.dtype == np.dtype(dtype), f"{what}: dtype {out.dtype}, expected {dtype}"
    assert_close(out, out_t, f"{what} value", **tol)
    for i, g in zip(diff, vjp(jnp.asarray(ct, out.dtype))):
        assert_close(g, t_inputs[i].grad, f"{what} grad[{i}]", **tol)
    return out


def layer_fn(layer, params=None, state=None):
    if params is None:
        params, state = layer.init(jax.random.PRNGKey(0))
    return lambda *args: layer.apply(params, state, *args)[0]


def tensor(x, dtype):
    return None if x is None else torch.from_numpy(np.asarray(x, dtype))


def labels(shape, num_classes, seed=1, dtype=np.int64):
    return _rng(seed).integers(0, num_classes, shape).astype(dtype)


def jax_int(x):
    return jnp.asarray(x, jnp.int32)


# -- regression and elementwise losses ------------------------------------------------------------------

ELEMENTWISE = {
    "L1Loss": ({}, True), "MSELoss": ({}, True), "SmoothL1Loss": ({"beta": 0.5}, True),
    "HuberLoss": ({"delta": 0.7}, True), "SoftMarginLoss": ({}, False),
}


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("reduction,shape", [("none", (3, 4)), ("mean", (2, 3, 2)), ("sum", (5,))])
def test_elementwise_losses_match_torch(name, reduction, shape, dtype):
    kwargs, target_grad = ELEMENTWISE[name]
    x = randn(*shape, dtype=dtype, seed=1)
    y = randn(*shape, dtype=dtype, seed=2) if target_grad else np.sign(randn(*shape, dtype=dtype, seed=2))
    compare(getattr(torch.nn, name)(reduction=reduction, **kwargs), layer_fn(getattr(fl, name)(reduction=reduction,
            **kwargs)), [x, y], dtype, diff=(0, 1) if target_grad else (0,), what=name)


def test_smooth_l1_beta_zero_is_l1(dtype):
    x, y = randn(4, 3, dtype=dtype, seed=1), randn(4, 3, dtype=dtype, seed=2)
    compare(lambda a, b: TF.smooth_l1_loss(a, b, beta=0.0), lambda a, b: F.smooth_l1_loss(a, b, beta=0.0),
            [x, y], dtype, diff=(0, 1))


@pytest.mark.parametrize("fn,reduction", [("l1_loss", "mean"), ("mse_loss", "sum"), ("huber_loss", "mean"),
                                          ("mse_loss", "none")])
def test_elementwise_weight_matches_torch(fn, reduction, dtype):
    x, y = randn(3, 4, dtype=dtype, seed=1), randn(3, 4, dtype=dtype, seed=2)
    w = np.abs(randn(3, 4, dtype=dtype, seed=3))
    compare(lambda a, b: getattr(TF, fn)(a, b, reduction=reduction, weight=tensor(w, dtype)),
            lambda a, b: getattr(F, fn)(a, b, reduction=reduction, weight=w), [x, y], dtype, diff=(0, 1))


@pytest.mark.parametrize("size_average,reduce", [(False, None), (None, False), (True, True), (False, True)])
def test_legacy_size_average_reduce_map_as_torch(size_average, reduce):
    x, y = randn(3, 4, seed=1), randn(3, 4, seed=2)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        layer = fl.MSELoss(size_average=size_average, reduce=reduce)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.nn.MSELoss(size_average=size_average, reduce=reduce)(to_torch(x), to_torch(y))
    assert_close(layer_fn(layer)(x, y), expected, "legacy", **tolerance(np.float32))


def test_elementwise_broadcast_warns_like_torch():
    with pytest.warns(UserWarning, match="different to the input size"):
        out = F.mse_loss(jnp.ones((3, 4)), jnp.zeros((4,)))
    assert float(out) == 1.0


# -- cross entropy and NLL ------------------------------------------------------------------------------

CE_GRID = [  # (reduction, weight, ignore_index, label_smoothing, input shape)
    ("none", False, -100, 0.0, (6, 5)),
    ("mean", True, 1, 0.2, (6, 5)),
    ("sum", True, 2, 0.0, (6, 5)),
    ("mean", False, 0, 0.3, (6, 5)),
    ("none", True, -100, 0.2, (6, 5)),
    ("mean", True, 1, 0.1, (2, 5, 3, 2)),
    ("none", False, 3, 0.2, (2, 5, 4)),
    ("sum", False, -100, 0.0, (5,)),
    ("mean", True, -100, 0.4, (5,)),
]


def _ce_case(reduction, use_weight, ignore_index, shape, dtype):
    num_classes = shape[0] if len(shape) == 1 else shape[1]
    x = randn(*shape, dtype=dtype, seed=3, scale=2.0)
    t_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    t = labels(t_shape, num_classes, seed=4)
    w = np.abs(randn(num_classes, dtype=dtype, seed=5)) + 0.1 if use_weight else None
    return x, t, w


@pytest.mark.parametrize("reduction,use_weight,ignore_index,label_smoothing,shape", CE_GRID)
def test_cross_entropy_class_indices_match_torch(reduction, use_weight, ignore_index, label_smoothing, shape, dtype):
    x, t, w = _ce_case(reduction, use_weight, ignore_index, shape, dtype)
    kw = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    module = torch.nn.CrossEntropyLoss(weight=tensor(w, dtype), **kw)
    layer = fl.CrossEntropyLoss(weight=w, **kw)
    compare(lambda a: module(a, torch.from_numpy(t)), lambda a: layer_fn(layer)(a, jax_int(t)), [x], dtype)
    # the functional twin, with torch's argument order
    compare(lambda a: TF.cross_entropy(a, torch.from_numpy(t), tensor(w, dtype), None, ignore_index, None, reduction,
                                       label_smoothing),
            lambda a: F.cross_entropy(a, jax_int(t), w, None, ignore_index, None, reduction, label_smoothing),
            [x], dtype)


@pytest.mark.parametrize("reduction,use_weight,label_smoothing,shape", [
    ("mean", False, 0.0, (4, 5)), ("sum", True, 0.2, (4, 5)), ("none", True, 0.0, (2, 5, 3)),
    ("mean", True, 0.1, (2, 5, 2, 2)), ("none", False, 0.3, (5,))])
def test_cross_entropy_probability_targets_match_torch(reduction, use_weight, label_smoothing, shape, dtype):
    num_classes = shape[0] if len(shape) == 1 else shape[1]
    x = randn(*shape, dtype=dtype, seed=3)
    axis = 0 if len(shape) == 1 else 1
    p = np.asarray(jax.nn.softmax(randn(*shape, dtype=np.float64, seed=6), axis=axis)).astype(dtype)
    w = np.abs(randn(num_classes, dtype=dtype, seed=5)) + 0.1 if use_weight else None
    kw = dict(reduction=reduction, label_smoothing=label_smoothing)
    module = torch.nn.CrossEntropyLoss(weight=tensor(w, dtype), **kw)
    compare(module, layer_fn(fl.CrossEntropyLoss(weight=w, **kw)), [x, p], dtype, diff=(0, 1))


@pytest.mark.parametrize("reduction,use_weight,ignore_index,shape", [
    ("none", True, 1, (6, 4)), ("mean", True, 2, (6, 4)), ("sum", False, -100, (6, 4)),
    ("mean", True, 0, (2, 4, 3, 2)), ("none", False, -100, (4,))])
def test_nll_loss_matches_torch(reduction, use_weight, ignore_index, shape, dtype):
    x, t, w = _ce_case(reduction, use_weight, ignore_index, shape, dtype)
    kw = dict(ignore_index=ignore_index, reduction=reduction)
    module = torch.nn.NLLLoss(weight=tensor(w, dtype), **kw)
    compare(lambda a: module(a, torch.from_numpy(t)), lambda a: layer_fn(fl.NLLLoss(weight=w, **kw))(a, jax_int(t)),
            [x], dtype)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x, t = randn(3, 4), np.full(3, -100)
    expected = TF.cross_entropy(to_torch(x), torch.from_numpy(t))
    assert np.isnan(expected.item()) and np.isnan(float(F.cross_entropy(x, jax_int(t))))


def test_weight_is_a_buffer_in_state_and_loads_from_torch():
    w = np.array([1.0, 2.0, 3.0], np.float32)
    layer = fl.CrossEntropyLoss(weight=w)
    params, state = layer.init(jax.random.PRNGKey(0))
    assert params == {} and list(state) == ["weight"]
    module = torch.nn.BCEWithLogitsLoss(weight=torch.ones(3), pos_weight=torch.full((3,), 2.0))
    params, state = fl.load_state_dict(fl.BCEWithLogitsLoss(weight=np.ones(3), pos_weight=np.ones(3)),
                                       module.state_dict())
    assert sorted(fl.state_dict(params, state)) == sorted(module.state_dict())
    np.testing.assert_array_equal(state["pos_weight"], 2.0)
    assert fl.CrossEntropyLoss().init(jax.random.PRNGKey(0)) == ({}, {})


# -- binary, divergence and likelihood losses ------------------------------------------------------------


@pytest.mark.parametrize("reduction,weight_shape", [("mean", None), ("none", (4,)), ("sum", (3, 4))])
def test_bce_matches_torch(reduction, weight_shape, dtype):
    x = (0.05 + 0.9 * _rng(1).random((3, 4))).astype(dtype)
    y = _rng(2).random((3, 4)).astype(dtype)
    w = None if weight_shape is None else np.abs(randn(*weight_shape, dtype=dtype, seed=3))
    module = torch.nn.BCELoss(weight=tensor(w, dtype), reduction=reduction)
    compare(module, layer_fn(fl.BCELoss(weight=w, reduction=reduction)), [x, y], dtype, diff=(0, 1))


def test_bce_at_zero_and_one_clamps_like_torch(dtype):
    x = np.array([0.0, 1.0, 0.3, 1.0], dtype)
    y = np.array([1.0, 0.0, 0.5, 1.0], dtype)
    compare(torch.nn.BCELoss(reduction="none"), layer_fn(fl.BCELoss(reduction="none")), [x, y], dtype)


@pytest.mark.parametrize("reduction,use_weight,use_pos_weight,shape", [
    ("mean", False, True, (3, 4)), ("none", True, False, (3, 4)), ("sum", True, True, (2, 3, 4)),
    ("mean", False, False, (4,))])
def test_bce_with_logits_matches_torch(reduction, use_weight, use_pos_weight, shape, dtype):
    x = randn(*shape, dtype=dtype, seed=1, scale=3.0)
    y = _rng(2).random(shape).astype(dtype)
    w = np.abs(randn(shape[-1], dtype=dtype, seed=3)) if use_weight else None
    pw = np.abs(randn(shape[-1], dtype=dtype, seed=4)) + 0.5 if use_pos_weight else None
    module = torch.nn.BCEWithLogitsLoss(weight=tensor(w, dtype), reduction=reduction, pos_weight=tensor(pw, dtype))
    layer = fl.BCEWithLogitsLoss(weight=w, reduction=reduction, pos_weight=pw)
    compare(module, layer_fn(layer), [x, y], dtype, diff=(0, 1))


@pytest.mark.parametrize("reduction,log_target", [("batchmean", False), ("sum", True), ("none", False),
                                                  ("mean", True), ("batchmean", True)])
def test_kl_div_matches_torch(reduction, log_target, dtype):
    x = np.asarray(jax.nn.log_softmax(randn(3, 5, dtype=np.float64, seed=1), axis=1)).astype(dtype)
    p = np.asarray(jax.nn.softmax(randn(3, 5, dtype=np.float64, seed=2), axis=1)).astype(dtype)
    y = np.log(p) if log_target else p
    compare(torch.nn.KLDivLoss(reduction=reduction, log_target=log_target),
            layer_fn(fl.KLDivLoss(reduction=reduction, log_target=log_target)), [x, y], dtype, diff=(0, 1))


def test_kl_div_zero_target_like_torch(dtype):
    x = randn(2, 3, dtype=dtype, seed=1)
    y = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]], dtype)
    compare(lambda a: TF.kl_div(a, torch.from_numpy(y), reduction="sum"),
            lambda a: F.kl_div(a, y, reduction="sum"), [x], dtype)


@pytest.mark.parametrize("log_input,full,reduction", [(True, False, "mean"), (False, True, "none"),
                                                      (True, True, "sum"), (False, False, "mean")])
def test_poisson_nll_matches_torch(log_input, full, reduction, dtype):
    x = randn(3, 4, dtype=dtype, seed=1) if log_input else (0.1 + _rng(1).random((3, 4)) * 3).astype(dtype)
    y = (_rng(2).random((3, 4)) * 4).astype(dtype)
    compare(torch.nn.PoissonNLLLoss(log_input=log_input, full=full, reduction=reduction),
            layer_fn(fl.PoissonNLLLoss(log_input=log_input, full=full, reduction=reduction)), [x, y], dtype,
            diff=(0, 1))


@pytest.mark.parametrize("var_shape,full,reduction", [((3, 4), False, "mean"), ((3,), True, "none"),
                                                      ((3, 1), False, "sum"), ((1, 4), True, "mean")])
def test_gaussian_nll_matches_torch(var_shape, full, reduction, dtype):
    x, y = randn(3, 4, dtype=dtype, seed=1), randn(3, 4, dtype=dtype, seed=2)
    var = (np.abs(randn(*var_shape, dtype=dtype, seed=3)) + 0.1).astype(dtype)
    var.flat[0] = 1e-8  # below eps: clamped, the gradient passes through as in torch
    compare(torch.nn.GaussianNLLLoss(full=full, reduction=reduction),
            layer_fn(fl.GaussianNLLLoss(full=full, reduction=reduction)), [x, y, var], dtype, diff=(0, 1, 2),
            rtol=1e-4 if dtype == np.float32 else 1e-10)


def test_gaussian_nll_float_var(dtype):
    x, y = randn(3, 4, dtype=dtype, seed=1), randn(3, 4, dtype=dtype, seed=2)
    compare(lambda a: TF.gaussian_nll_loss(a, torch.from_numpy(y), 0.5), lambda a: F.gaussian_nll_loss(a, y, 0.5),
            [x], dtype)


# -- margin and embedding losses ------------------------------------------------------------------------


@pytest.mark.parametrize("reduction,use_weight,shape", [("mean", False, (3, 4)), ("none", True, (3, 4)),
                                                        ("sum", True, (4,))])
def test_multilabel_soft_margin_matches_torch(reduction, use_weight, shape, dtype):
    x = randn(*shape, dtype=dtype, seed=1)
    y = (_rng(2).random(shape) > 0.5).astype(dtype)
    w = np.abs(randn(shape[-1], dtype=dtype, seed=3)) if use_weight else None
    compare(torch.nn.MultiLabelSoftMarginLoss(weight=tensor(w, dtype), reduction=reduction),
            layer_fn(fl.MultiLabelSoftMarginLoss(weight=w, reduction=reduction)), [x, y], dtype)


@pytest.mark.parametrize("reduction,unbatched", [("mean", False), ("none", False), ("sum", True)])
def test_multilabel_margin_matches_torch(reduction, unbatched, dtype):
    x = randn(3, 5, dtype=dtype, seed=1)
    t = np.array([[3, 0, -1, 1, 2], [4, 4, 1, -1, -1], [-1, 2, 0, 0, 0]])
    x, t = (x[0], t[0]) if unbatched else (x, t)
    module = torch.nn.MultiLabelMarginLoss(reduction=reduction)
    compare(lambda a: module(a, torch.from_numpy(t)),
            lambda a: layer_fn(fl.MultiLabelMarginLoss(reduction=reduction))(a, jax_int(t)), [x], dtype)


@pytest.mark.parametrize("p,margin,use_weight,reduction,unbatched", [
    (1, 1.0, False, "mean", False), (2, 0.5, True, "none", False), (1, 2.0, True, "sum", False),
    (2, 1.0, False, "none", True)])
def test_multi_margin_matches_torch(p, margin, use_weight, reduction, unbatched, dtype):
    x, t = randn(4, 5, dtype=dtype, seed=1), labels((4,), 5, seed=2)
    w = np.abs(randn(5, dtype=dtype, seed=3)) if use_weight else None
    x, t = (x[0], t[0]) if unbatched else (x, t)
    module = torch.nn.MultiMarginLoss(p=p, margin=margin, weight=tensor(w, dtype), reduction=reduction)
    layer = fl.MultiMarginLoss(p=p, margin=margin, weight=w, reduction=reduction)
    compare(lambda a: module(a, torch.from_numpy(np.asarray(t))), lambda a: layer_fn(layer)(a, jax_int(t)), [x], dtype)


@pytest.mark.parametrize("margin,reduction", [(0.0, "mean"), (0.3, "none"), (0.5, "sum")])
def test_margin_ranking_matches_torch(margin, reduction, dtype):
    x1, x2 = randn(6, dtype=dtype, seed=1), randn(6, dtype=dtype, seed=2)
    y = np.sign(randn(6, dtype=dtype, seed=3))
    compare(torch.nn.MarginRankingLoss(margin=margin, reduction=reduction),
            layer_fn(fl.MarginRankingLoss(margin=margin, reduction=reduction)), [x1, x2, y], dtype, diff=(0, 1))


@pytest.mark.parametrize("margin,reduction", [(1.0, "mean"), (0.5, "none"), (2.0, "sum")])
def test_hinge_embedding_matches_torch(margin, reduction, dtype):
    x, y = randn(3, 4, dtype=dtype, seed=1), np.sign(randn(3, 4, dtype=dtype, seed=2))
    compare(torch.nn.HingeEmbeddingLoss(margin=margin, reduction=reduction),
            layer_fn(fl.HingeEmbeddingLoss(margin=margin, reduction=reduction)), [x, y], dtype)


@pytest.mark.parametrize("margin,reduction,unbatched", [(0.0, "mean", False), (0.2, "none", False),
                                                        (-0.3, "sum", True)])
def test_cosine_embedding_matches_torch(margin, reduction, unbatched, dtype):
    x1, x2 = randn(5, 3, dtype=dtype, seed=1), randn(5, 3, dtype=dtype, seed=2)
    y = np.sign(randn(5, dtype=dtype, seed=3))
    if unbatched:
        x1, x2, y = x1[0], x2[0], y[:1].reshape(())
    compare(torch.nn.CosineEmbeddingLoss(margin=margin, reduction=reduction),
            layer_fn(fl.CosineEmbeddingLoss(margin=margin, reduction=reduction)), [x1, x2, y], dtype, diff=(0, 1))


@pytest.mark.parametrize("p,swap,reduction,unbatched", [(2.0, False, "mean", False), (1.0, True, "none", False),
                                                        (3.0, True, "sum", False), (2.0, True, "none", True)])
def test_triplet_margin_matches_torch(p, swap, reduction, unbatched, dtype):
    a, pos, neg = (randn(4, 3, dtype=dtype, seed=s) for s in (1, 2, 3))
    if unbatched:
        a, pos, neg = a[0], pos[0], neg[0]
    kw = dict(margin=1.5, p=p, swap=swap, reduction=reduction)
    compare(torch.nn.TripletMarginLoss(**kw), layer_fn(fl.TripletMarginLoss(**kw)), [a, pos, neg], dtype,
            diff=(0, 1, 2))


@pytest.mark.parametrize("custom,swap,reduction", [(False, False, "mean"), (True, True, "none"), (True, False, "sum")])
def test_triplet_margin_with_distance_matches_torch(custom, swap, reduction, dtype):
    a, pos, neg = (randn(4, 3, dtype=dtype, seed=s) for s in (1, 2, 3))

    def torch_distance(x, y):
        return 1 - TF.cosine_similarity(x, y)

    def our_distance(x, y):
        return 1 - jnp.sum(x * y, -1) / jnp.maximum(jnp.linalg.norm(x, axis=-1) * jnp.linalg.norm(y, axis=-1), 1e-8)

    module = torch.nn.TripletMarginWithDistanceLoss(distance_function=torch_distance if custom else None, swap=swap,
                                                    reduction=reduction)
    layer = fl.TripletMarginWithDistanceLoss(distance_function=our_distance if custom else None, swap=swap,
                                             reduction=reduction)
    compare(module, layer_fn(layer), [a, pos, neg], dtype, diff=(0, 1, 2))


# -- CTC --------------------------------------------------------------------------------------------------


def _ctc_data(dtype, steps=12, batch=3, classes=5, max_len=4, seed=0):
    logits = randn(steps, batch, classes, dtype=dtype, seed=seed)
    rng = _rng(seed + 1)
    target_lengths = np.array([max_len, 2, 0][:batch] + [3] * max(0, batch - 3))
    targets = rng.integers(1, classes, (batch, max_len))
    targets[0, 1] = targets[0, 0]  # a repeat: needs a blank between
    input_lengths = np.array([steps, steps - 3, 5][:batch] + [steps] * max(0, batch - 3))
    return logits, targets, input_lengths, target_lengths


@pytest.mark.parametrize("reduction,layout,blank,zero_infinity", [
    ("mean", "padded", 0, False), ("sum", "concatenated", 0, True), ("none", "padded", 2, False),
    ("none", "concatenated", 4, True)])
def test_ctc_matches_torch(reduction, layout, blank, zero_infinity, dtype):
    logits, targets, input_lengths, target_lengths = _ctc_data(dtype)
    classes = logits.shape[-1]
    targets = np.where(targets == blank, (blank + 1) % classes, targets)  # no blank inside the targets
    if layout == "concatenated":
        targets = np.concatenate([row[:n] for row, n in zip(targets, target_lengths)])
    module = torch.nn.CTCLoss(blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    layer = fl.CTCLoss(blank=blank, reduction=reduction, zero_infinity=zero_infinity)
    # through log_softmax, where torch's CTC gradient is the true gradient (see _loss_ctc.py)
    compare(lambda x: module(x.log_softmax(-1), torch.from_numpy(targets), torch.from_numpy(input_lengths),
                             torch.from_numpy(target_lengths)),
            lambda x: layer_fn(layer)(jax.nn.log_softmax(x, -1), jax_int(targets), jax_int(input_lengths),
                                      jax_int(target_lengths)), [logits], dtype)


def test_ctc_gradient_wrt_log_probs_is_torchs_minus_exp(dtype):
    """torch returns exp(log_probs) - posterior where the derivative is -posterior (within input lengths)."""
    logits, targets, input_lengths, target_lengths = _ctc_data(dtype)
    lp = np.array(jax.nn.log_softmax(logits, -1))
    lp_t = to_torch(lp, requires_grad=True)
    TF.ctc_loss(lp_t, torch.from_numpy(targets), torch.from_numpy(input_lengths), torch.from_numpy(target_lengths),
                reduction="sum").backward()
    ours = jax.jit(jax.grad(lambda a: F.ctc_loss(a, jax_int(targets), jax_int(input_lengths),
                                                 jax_int(target_lengths), reduction="sum")))(jnp.asarray(lp))
    inside = (np.arange(lp.shape[0])[:, None] < input_lengths)[:, :, None]
    expected = np.where(inside, lp_t.grad.numpy() - np.exp(lp), 0)
    assert_close(ours, expected, "ctc raw grad", **tolerance(dtype, atol=1e-5 if dtype == np.float32 else 1e-12))


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_impossible_alignment(zero_infinity, dtype):
    logits = randn(3, 2, 4, dtype=dtype, seed=1)
    targets = np.array([[1, 1, 2], [2, 3, 0]])  # 1, 1, 2 needs 4 steps
    lengths_in, lengths_t = np.array([3, 3]), np.array([3, 2])
    module = torch.nn.CTCLoss(reduction="none", zero_infinity=zero_infinity)
    expected = module(torch.from_numpy(logits).log_softmax(-1), torch.from_numpy(targets),
                      torch.from_numpy(lengths_in), torch.from_numpy(lengths_t))
    def loss(x):
        return F.ctc_loss(jax.nn.log_softmax(x, -1), jax_int(targets), lengths_in, lengths_t, reduction="none",
                          zero_infinity=zero_infinity)

    ours, vjp = jax.vjp(jax.jit(loss), jnp.asarray(logits))
    assert_close(ours, expected, "ctc impossible", **tolerance(dtype))
    assert (float(ours[0]) == 0.0) if zero_infinity else np.isinf(float(ours[0]))
    (grads,) = vjp(jnp.array([0.0 if not zero_infinity else 1.0, 1.0], ours.dtype))
    assert np.all(np.isfinite(grads)) and np.all(grads[:, 0] == 0)


def test_ctc_unbatched_and_traced_lengths_match_torch(dtype):
    logits, targets, input_lengths, target_lengths = _ctc_data(dtype, batch=3)
    lp = np.array(jax.nn.log_softmax(logits, -1))
    expected = TF.ctc_loss(torch.from_numpy(lp[:, 0]), torch.from_numpy(targets[0]), (int(input_lengths[0]),),
                           (int(target_lengths[0]),), reduction="none")
    ours = jax.jit(lambda *a: F.ctc_loss(*a, reduction="none"))(lp[:, 0], jax_int(targets[0]),
                                                                 jax_int(input_lengths[0]), jax_int(target_lengths[0]))
    assert ours.shape == () and expected.shape == ()
    assert_close(ours, expected, "ctc unbatched", **tolerance(dtype))
    jitted = jax.jit(lambda a, b, c, d: F.ctc_loss(a, b, c, d))
    eager = TF.ctc_loss(torch.from_numpy(lp), torch.from_numpy(targets), torch.from_numpy(input_lengths),
                        torch.from_numpy(target_lengths))
    assert_close(jitted(lp, jax_int(targets), jax_int(input_lengths), jax_int(target_lengths)), eager, "ctc jit",
                 **tolerance(dtype))
    # concatenated targets with traced lengths: the longest target is not known at trace time
    flat = np.concatenate([row[:n] for row, n in zip(targets, target_lengths)])
    assert_close(jitted(lp, jax_int(flat), jax_int(input_lengths), jax_int(target_lengths)), eager,
                 "ctc jit concatenated", **tolerance(dtype))


# -- LinearCrossEntropyLoss ------------------------------------------------------------------------------

LCE_GRID = [  # (reduction, bias, weight, ignore_index, label_smoothing, chunk rows)
    ("mean", False, False, None, 0.0, None),
    ("sum", True, True, 2, 0.0, 2),
    ("mean", True, True, 1, 0.2, 3),
    ("none", False, True, None, 0.1, 2),
    ("mean", False, False, 0, 0.3, 4),
]


class _Options:
    def __init__(self, batch_chunk_size):
        self.batch_chunk_size = batch_chunk_size


def _lce_pair(dtype, out_features=(), **kw):
    torch.manual_seed(0)
    weight = kw.pop("weight", None)
    chunk = kw.pop("chunk", None)
    module = torch.nn.LinearCrossEntropyLoss(6, 5, out_features=out_features, weight=tensor(weight, dtype), **kw)
    module = module.to(TORCH_DTYPES[np.dtype(dtype)])
    layer = fl.LinearCrossEntropyLoss(6, 5, out_features=out_features, weight=weight, dtype=dtype,
                                      options=None if chunk is None else _Options(chunk), **kw)
    params, state = fl.load_state_dict(layer, module.state_dict())
    return module, layer, params, state


def _compare_lce(module, layer, params, state, x, t, dtype):
    """Values and gradients w.r.t. the input and linear.weight/linear.bias."""
    tol = tolerance(dtype)
    x_t = to_torch(x, requires_grad=True)
    out_t = module(x_t, torch.from_numpy(t) if t.dtype.kind == "i" else to_torch(t))
    ct = randn(*out_t.shape, dtype=dtype, seed=99) if out_t.ndim else np.asarray(1.3, dtype)
    out_t.backward(torch.from_numpy(np.array(ct)))
    target = jax_int(t) if t.dtype.kind == "i" else jnp.asarray(t)
    out, vjp = jax.vjp(jax.jit(lambda p, a: layer.apply(p, state, a, target)[0]), params, jnp.asarray(x))
    g_params, g_x = vjp(jnp.asarray(ct, out.dtype))
    assert_close(out, out_t, "lce value", **tol)
    assert_close(g_x, x_t.grad, "lce grad input", **tol)
    for name, p in module.linear.named_parameters():
        assert_close(g_params["linear"][name], p.grad, f"lce grad linear.{name}", **tol)


@pytest.mark.parametrize("reduction,bias,use_weight,ignore_index,label_smoothing,chunk", LCE_GRID)
def test_linear_cross_entropy_matches_torch(reduction, bias, use_weight, ignore_index, label_smoothing, chunk, dtype):
    w = np.abs(randn(5, dtype=dtype, seed=5)) + 0.1 if use_weight else None
    module, layer, params, state = _lce_pair(dtype, reduction=reduction, bias=bias, weight=w,
                                             ignore_index=ignore_index, label_smoothing=label_smoothing, chunk=chunk)
    x, t = randn(7, 6, dtype=dtype, seed=1), labels((7,), 5, seed=2)
    _compare_lce(module, layer, params, state, x, t, dtype)


@pytest.mark.parametrize("case", ["kdim", "probabilities", "unbatched"])
def test_linear_cross_entropy_kdim_probabilities_unbatched(case, dtype):
    if case == "kdim":
        module, layer, params, state = _lce_pair(dtype, out_features=(3,), bias=True, label_smoothing=0.1)
        x, t = randn(4, 6, dtype=dtype, seed=1), labels((4, 3), 5, seed=2)
    elif case == "probabilities":
        module, layer, params, state = _lce_pair(dtype, reduction="sum", bias=True)
        x = randn(4, 6, dtype=dtype, seed=1)
        t = np.asarray(jax.nn.softmax(randn(4, 5, dtype=np.float64, seed=2), axis=1)).astype(dtype)
    else:
        module, layer, params, state = _lce_pair(dtype, reduction="none", weight=np.arange(1.0, 6.0), chunk=1)
        x, t = randn(6, dtype=dtype, seed=1), np.array(3)
    _compare_lce(module, layer, params, state, x, t, dtype)


def test_linear_cross_entropy_params_and_repr():
    layer = fl.LinearCrossEntropyLoss(4, 10, out_features=(2,), bias=True, weight=np.ones(10))
    params, state = layer.init(jax.random.PRNGKey(0))
    assert params["linear"]["weight"].shape == (20, 4) and params["linear"]["bias"].shape == (20,)
    assert list(state) == ["weight"]
    torch_names = torch.nn.LinearCrossEntropyLoss(4, 10, out_features=(2,), bias=True,
                                                  weight=torch.ones(10)).state_dict()
    assert sorted(fl.state_dict(params, state)) == sorted(torch_names)


def test_linear_cross_entropy_backward_holds_no_full_logits():
    """The compiled gradient's temporaries stay far below one (N, C) logits matrix."""
    n, d, c = 2048, 32, 4096
    layer = fl.LinearCrossEntropyLoss(d, c, options=_Options(64))
    params, state = layer.init(jax.random.PRNGKey(0))
    x, t = jnp.ones((n, d)), jnp.zeros((n,), jnp.int32)
    grad = jax.jit(jax.grad(lambda p, a: layer.apply(p, state, a, t)[0], argnums=(0, 1)))
    temp = grad.lower(params, x).compile().memory_analysis().temp_size_in_bytes
    assert temp < n * c * 4 / 4, f"temporaries {temp} bytes vs logits {n * c * 4} bytes"


# -- transformations -------------------------------------------------------------------------------------


def _torch_jvp(fn, primals, tangents):
    return torch.func.jvp(fn, tuple(to_torch(p) for p in primals), tuple(to_torch(t) for t in tangents))


JVP_CASES = ["cross_entropy", "bce", "kl_div", "ctc", "linear_cross_entropy", "multi_margin", "triplet"]


@pytest.mark.parametrize("case", JVP_CASES)
def test_jvp_matches_torch_func_jvp(case, dtype):
    x = randn(6, 5, dtype=dtype, seed=1)
    dx = randn(6, 5, dtype=dtype, seed=2)
    t = labels((6,), 5, seed=3)
    w = (np.arange(5) + 1.0).astype(dtype)
    if case == "cross_entropy":
        tf = lambda a: TF.cross_entropy(a, torch.from_numpy(t), tensor(w, dtype), ignore_index=2, label_smoothing=0.2)
        jf = lambda a: F.cross_entropy(a, jax_int(t), w, ignore_index=2, label_smoothing=0.2)
    elif case == "bce":
        x = (0.1 + 0.8 * _rng(1).random((6, 5))).astype(dtype)
        y = _rng(4).random((6, 5)).astype(dtype)
        tf = lambda a: TF.binary_cross_entropy(a, torch.from_numpy(y), reduction="none")
        jf = lambda a: F.binary_cross_entropy(a, y, reduction="none")
    elif case == "kl_div":
        y = np.asarray(jax.nn.softmax(randn(6, 5, dtype=np.float64, seed=4))).astype(dtype)
        tf = lambda a: TF.kl_div(a, torch.from_numpy(y), reduction="batchmean")
        jf = lambda a: F.kl_div(a, y, reduction="batchmean")
    elif case == "ctc":
        logits, targets, lin, ltg = _ctc_data(dtype)
        x, dx = logits, randn(*logits.shape, dtype=dtype, seed=5)
        tf = lambda a: TF.ctc_loss(a.log_softmax(-1), torch.from_numpy(targets), torch.from_numpy(lin),
                                   torch.from_numpy(ltg))
        jf = lambda a: F.ctc_loss(jax.nn.log_softmax(a, -1), jax_int(targets), jax_int(lin), jax_int(ltg))
    elif case == "linear_cross_entropy":
        lw = randn(7, 5, dtype=dtype, seed=6)
        dlw = randn(7, 5, dtype=dtype, seed=7)
        t7 = labels((6,), 7, seed=3)
        tf = lambda a, b: TF.linear_cross_entropy(a, b, torch.from_numpy(t7), label_smoothing=0.1)
        jf = lambda a, b: F.linear_cross_entropy(a, b, jax_int(t7), label_smoothing=0.1, options=_Options(4))
        out_t, tan_t = _torch_jvp(tf, (x, lw), (dx, dlw))
        out, tan = jax.jvp(jf, (jnp.asarray(x), jnp.asarray(lw)), (jnp.asarray(dx), jnp.asarray(dlw)))
        assert_close(out, out_t, "lce jvp value", **tolerance(dtype))
        assert_close(tan, tan_t, "lce jvp tangent", **tolerance(dtype))
        return
    elif case == "multi_margin":
        tf = lambda a: TF.multi_margin_loss(a, torch.from_numpy(t), p=2, weight=tensor(w, dtype))
        jf = lambda a: F.multi_margin_loss(a, jax_int(t), p=2, weight=w)
    else:
        y, z = randn(6, 5, dtype=dtype, seed=4), randn(6, 5, dtype=dtype, seed=5)
        tf = lambda a: TF.triplet_margin_loss(a, torch.from_numpy(y), torch.from_numpy(z), swap=True, margin=3.0)
        jf = lambda a: F.triplet_margin_loss(a, y, z, swap=True, margin=3.0)
    if case in ("ctc", "multi_margin"):
        # torch implements no forward-mode derivative for these: its tangent is <gradient, dx>
        x_t = to_torch(x, requires_grad=True)
        out_t = tf(x_t)
        out_t.backward()
        tan_t = torch.sum(x_t.grad * to_torch(dx))
    else:
        out_t, tan_t = _torch_jvp(tf, (x,), (dx,))
    out, tan = jax.jit(lambda a, d: jax.jvp(jf, (a,), (d,)))(jnp.asarray(x), jnp.asarray(dx))
    assert_close(out, out_t, f"{case} jvp value", **tolerance(dtype))
    assert_close(tan, tan_t, f"{case} jvp tangent", **tolerance(dtype))


def test_jit_vmap_and_higher_order():
    x = jnp.asarray(randn(4, 6, 5, seed=1))
    t = jax_int(labels((4, 6), 5, seed=2))
    layer = fl.CrossEntropyLoss(weight=np.arange(1.0, 6.0), ignore_index=1, label_smoothing=0.1)
    params, state = layer.init(jax.random.PRNGKey(0))
    per_batch = jax.jit(jax.vmap(lambda a, b: layer.apply(params, state, a, b)[0]))(x, t)
    looped = jnp.stack([layer.apply(params, state, x[i], t[i])[0] for i in range(4)])
    np.testing.assert_allclose(per_batch, looped, rtol=1e-6)
    jitted = jax.jit(jax.grad(lambda a, b: layer.apply(params, state, a, b)[0]))
    np.testing.assert_allclose(jitted(x[0], t[0]), jax.grad(lambda a: layer.apply(params, state, a, t[0])[0])(x[0]),
                               rtol=1e-5, atol=1e-7)  # jit vs eager
    # forward-over-reverse and vmap of gradients through the fused linear cross entropy
    lw = jnp.asarray(randn(5, 3, seed=3))
    f = lambda a, w_: F.linear_cross_entropy(a, w_, t[0], options=_Options(4))
    g = lambda a, w_: F.cross_entropy(a @ w_.T, t[0])
    xa = jnp.asarray(randn(6, 3, seed=4))
    np.testing.assert_allclose(jax.jit(jax.hessian(f))(xa, lw), jax.jit(jax.hessian(g))(xa, lw), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.jacfwd(jax.grad(f, argnums=1), argnums=1))(xa, lw),
                               jax.jit(jax.jacrev(jax.grad(g, argnums=1), argnums=1))(xa, lw), rtol=1e-4, atol=1e-6)
    # reduction='none' (jax.checkpoint per row chunk, plain autodiff) in forward mode
    f_none = lambda a: F.linear_cross_entropy(a, lw, t[0], reduction="none", options=_Options(4))
    g_none = lambda a: F.cross_entropy(a @ lw.T, t[0], reduction="none")
    for got, want in zip(jax.jit(lambda a, d: jax.jvp(f_none, (a,), (d,)))(xa, jnp.ones_like(xa)),
                         jax.jvp(g_none, (xa,), (jnp.ones_like(xa),))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    xs = jnp.stack([xa, 2 * xa])
    np.testing.assert_allclose(jax.jit(jax.vmap(jax.grad(f), (0, None)))(xs, lw),
                               jax.jit(jax.vmap(jax.grad(g), (0, None)))(xs, lw), rtol=1e-5, atol=1e-7)
    # the CTC scan under vmap with traced lengths
    logits, targets, lin, ltg = _ctc_data(np.float32)
    lp = jax.nn.log_softmax(jnp.asarray(logits), -1)
    one = jax.jit(jax.vmap(lambda a, b, c, d: F.ctc_loss(a, b, c, d, reduction="none"), (1, 0, 0, 0)))(
        lp, jax_int(targets), jax_int(lin), jax_int(ltg))
    np.testing.assert_allclose(one, jax.jit(lambda *a: F.ctc_loss(*a, reduction="none"))(
        lp, jax_int(targets), jax_int(lin), jax_int(ltg)), rtol=1e-6)


# -- errors ----------------------------------------------------------------------------------------------


def test_errors_match_torchs():
    x = jnp.zeros((3, 4))
    with pytest.raises(ValueError, match="Target 7 is out of bounds"):
        F.cross_entropy(x, jnp.array([0, 7, 1]))
    with pytest.raises(ValueError, match="Expected input batch_size \\(3\\) to match target batch_size \\(2\\)"):
        F.cross_entropy(x, jnp.array([0, 1]))
    with pytest.raises(TypeError, match="integer dtype"):
        F.nll_loss(x, jnp.zeros(3))
    with pytest.raises(TypeError, match="Expected floating point type for target with class probabilities"):
        F.cross_entropy(x, jnp.zeros((3, 4), jnp.int32))
    with pytest.raises(ValueError, match="weight tensor should be defined either for all 4 classes"):
        F.cross_entropy(x, jnp.array([0, 1, 2]), weight=jnp.ones(3))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        fl.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        fl.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(jnp.array([0.5, 1.5]), jnp.ones(2))
    with pytest.raises(ValueError, match="Target size .* must be the same as input size"):
        F.binary_cross_entropy_with_logits(x, jnp.ones(4))
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        fl.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="expected margin to be greater than 0"):
        fl.TripletMarginWithDistanceLoss(margin=0.0)
    with pytest.raises(ValueError, match="same number of dimensions"):
        F.triplet_margin_loss(x, x, jnp.zeros(4))
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(x, x, -jnp.ones((3, 4)))
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(x, x, jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="Expected input_lengths to have value at most 5"):
        F.ctc_loss(jnp.zeros((5, 2, 3)), jnp.ones((2, 2), jnp.int32), jnp.array([6, 5]), jnp.array([2, 2]))
    with pytest.raises(ValueError, match="Expected tensor to have size at least 3 at dimension 1"):
        F.ctc_loss(jnp.zeros((5, 2, 3)), jnp.ones((2, 2), jnp.int32), jnp.array([5, 5]), jnp.array([3, 2]))
    with pytest.raises(ValueError, match="ignore_index cannot be specified when target contains probabilities"):
        F.linear_cross_entropy(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.ones((2, 4)), ignore_index=0)
    with pytest.raises(ValueError, match="expected equal input and linear_weight last dimensions"):
        F.linear_cross_entropy(jnp.ones((2, 3)), jnp.ones((4, 5)), jnp.zeros(2, jnp.int32))
    with pytest.raises(ValueError, match="expected weight shape to be \\(10,\\)"):
        fl.LinearCrossEntropyLoss(4, 10, weight=jnp.ones(3))
    with pytest.raises(TypeError, match="floating-point input"):
        F.mse_loss(jnp.ones(3, jnp.int32), jnp.ones(3))


def test_traced_out_of_range_targets_are_not_checked_but_ignored_values_are_fine():
    x = jnp.asarray(randn(3, 4, seed=1))
    t = jnp.array([0, -100, 3])
    eager = F.cross_entropy(x, t)
    np.testing.assert_allclose(jax.jit(F.cross_entropy)(x, t), eager, rtol=1e-6)



# -- module_db's last misses (issue 27): torch's values and gradients at the degenerate points -------------------


@pytest.mark.parametrize("ignore_index", [0, 3])
def test_cross_entropy_probabilities_reject_ignore_index_like_torch(ignore_index):
    x, probs = np.zeros((3, 4), np.float32), np.full((3, 4), 0.25, np.float32)
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
        TF.cross_entropy(torch.from_numpy(x), torch.from_numpy(probs), ignore_index=ignore_index)
    with pytest.raises(ValueError, match="cross_entropy: ignore_index is not supported for floating point target"):
        F.cross_entropy(x, probs, ignore_index=ignore_index)
    layer = fl.CrossEntropyLoss(ignore_index=ignore_index)
    with pytest.raises(ValueError, match="ignore_index is not supported for floating point target"):
        layer.apply(*layer.init(jax.random.PRNGKey(0)), x, probs)
    np.testing.assert_allclose(F.cross_entropy(x, probs, ignore_index=-5), math.log(4), rtol=1e-6)  # negative: fine


@pytest.mark.parametrize("label_smoothing,use_weight", [(0.0, False), (0.2, True)], ids=["plain", "weight-smoothing"])
@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 3)], ids=["NC", "NCd"])
def test_cross_entropy_mean_with_every_target_ignored_like_torch(label_smoothing, use_weight, shape, dtype):
    """torch: the loss is nan (0 / 0), its gradient 0 (no element reaches the backward)."""
    x = randn(*shape, dtype=dtype, seed=3)
    t = np.full((shape[0],) + shape[2:], 2, np.int64)
    w = np.arange(1.0, 5.0).astype(dtype) if use_weight else None
    out = compare(lambda a: TF.cross_entropy(a, torch.from_numpy(t), tensor(w, dtype), ignore_index=2,
                                             label_smoothing=label_smoothing),
                  lambda a: F.cross_entropy(a, jax_int(t), w, ignore_index=2, label_smoothing=label_smoothing),
                  [x], dtype)
    assert np.isnan(out)
    compare(lambda a: TF.nll_loss(a, torch.from_numpy(t), tensor(w, dtype), ignore_index=2),
            lambda a: F.nll_loss(a, jax_int(t), w, ignore_index=2), [x], dtype)


def test_linear_cross_entropy_mean_with_every_target_ignored_like_torch(dtype):
    x, lin = randn(3, 5, dtype=dtype, seed=6), randn(4, 5, dtype=dtype, seed=7)
    t = np.full(3, 2, np.int64)
    compare(lambda a, b: TF.linear_cross_entropy(a, b, torch.from_numpy(t), ignore_index=2),
            lambda a, b: F.linear_cross_entropy(a, b, jax_int(t), ignore_index=2), [x, lin], dtype, diff=(0, 1))


def test_cross_entropy_mean_with_zero_total_weight_like_torch(dtype):
    """Targets that are not ignored but weigh 0: torch's gradient is w_t * grad / 0 = nan on their rows (on the
    target entry for nll_loss), 0 on the ignored rows."""
    x = randn(3, 4, dtype=dtype, seed=4)
    t, w = np.array([1, 2, 3]), np.array([1.0, 0.0, 0.0, 1.0], dtype)
    compare(lambda a: TF.cross_entropy(a, torch.from_numpy(t), torch.from_numpy(w), ignore_index=3),
            lambda a: F.cross_entropy(a, jax_int(t), w, ignore_index=3), [x], dtype)
    compare(lambda a: TF.nll_loss(a, torch.from_numpy(t), torch.from_numpy(w), ignore_index=3),
            lambda a: F.nll_loss(a, jax_int(t), w, ignore_index=3), [x], dtype)


@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_nll_full_target_gradient_at_0_and_1_like_torch(log_input, dtype):
    """torch masks the Stirling term where target <= 1 after computing it: its target gradient is 0 * inf = nan
    at target 0 (and below), 0 on (0, 1]."""
    x = randn(2, 3, dtype=dtype, seed=5) if log_input else (0.5 + _rng(5).random((2, 3))).astype(dtype)
    y = np.array([[0.0, 1.0, 0.5], [2.0, -1.0, 1.5]], dtype)
    compare(lambda a, b: TF.poisson_nll_loss(a, b, log_input=log_input, full=True, reduction="none"),
            lambda a, b: F.poisson_nll_loss(a, b, log_input=log_input, full=True, reduction="none"), [x, y], dtype,
            diff=(0, 1))
