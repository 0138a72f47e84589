"""fl.utils gradient clipping and parameters_to_vector against torch.nn.utils 2.13."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from oracle import TORCH_DTYPES, assert_close, randn, tolerance

import funclayers as fl


def _grads(dtype, scale=1.0):
    """A gradient pytree and torch parameters whose .grad are the same arrays (torch's order)."""
    arrays = {"weight": randn(4, 3, dtype=dtype, seed=1, scale=scale),
              "bias": randn(4, dtype=dtype, seed=2, scale=scale),
              "block": {"kernel": randn(2, 2, 3, dtype=dtype, seed=3, scale=scale)}}
    torch_params = []
    for a in (arrays["weight"], arrays["bias"], arrays["block"]["kernel"]):
        p = torch.nn.Parameter(torch.zeros(a.shape, dtype=TORCH_DTYPES[np.dtype(dtype)]))
        p.grad = torch.from_numpy(a.copy())
        torch_params.append(p)
    return jax.tree_util.tree_map(jnp.asarray, arrays), torch_params


NORMS = [pytest.param(2.0, id="l2"), pytest.param(1.0, id="l1"), pytest.param(3.5, id="p3.5"),
         pytest.param(math.inf, id="inf"), pytest.param("inf", id="inf_str"), pytest.param(-math.inf, id="neg_inf"),
         pytest.param(0.0, id="l0")]


@pytest.mark.parametrize("norm_type", NORMS)
def test_clip_grad_norm_matches_torch(norm_type, dtype):
    tol = tolerance(dtype)
    # one compiled call for both cases: clipped (max_norm 0.5) and left alone (max_norm 100)
    results = jax.jit(lambda g: [fl.utils.clip_grad_norm_(g, m, norm_type) for m in (0.5, 100.0)])(_grads(dtype)[0])
    for max_norm, (clipped, total) in zip((0.5, 100.0), results):
        _, torch_params = _grads(dtype)
        t_total = torch.nn.utils.clip_grad_norm_(torch_params, max_norm, norm_type=norm_type)
        assert_close(total, t_total, f"total norm (max_norm {max_norm})", **tol)
        ours = [clipped["weight"], clipped["bias"], clipped["block"]["kernel"]]
        for i, (a, p) in enumerate(zip(ours, torch_params)):
            assert_close(a, p.grad, f"clipped grad {i} (max_norm {max_norm})", **tol)


def test_get_total_norm_and_clip_with_norm_match_torch(dtype):
    grads, torch_params = _grads(dtype)
    t_total = torch.nn.utils.get_total_norm([p.grad for p in torch_params], 2.0)
    total, clipped = jax.jit(lambda g: (fl.utils.get_total_norm(g),
                                        fl.utils.clip_grads_with_norm_(g, 0.3, fl.utils.get_total_norm(g))))(grads)
    assert_close(total, t_total, "total", **tolerance(dtype))
    torch.nn.utils.clip_grads_with_norm_(torch_params, 0.3, t_total)
    assert_close(clipped["bias"], torch_params[1].grad, "bias", **tolerance(dtype))


def test_clip_grad_value_matches_torch(dtype):
    grads, torch_params = _grads(dtype)
    torch.nn.utils.clip_grad_value_(torch_params, 0.4)
    clipped = jax.jit(lambda g: fl.utils.clip_grad_value_(g, 0.4))(grads)
    assert_close(clipped["block"]["kernel"], torch_params[2].grad, "kernel", **tolerance(dtype))
    assert_close(clipped["weight"], torch_params[0].grad, "weight", **tolerance(dtype))


def test_clip_grad_norm_deprecated_alias_and_none_leaves():
    clipped, total = fl.utils.clip_grad_norm({"a": jnp.array([3.0, 4.0]), "b": None}, 1.0)
    assert clipped["b"] is None
    np.testing.assert_allclose(np.asarray(total), 5.0)
    np.testing.assert_allclose(np.asarray(clipped["a"]), [3.0 / (5 + 1e-6), 4.0 / (5 + 1e-6)], rtol=1e-6)
    _, empty_total = fl.utils.clip_grad_norm_([], 1.0)
    assert float(empty_total) == 0.0  # torch: tensor(0.)


def test_error_if_nonfinite_raises_eagerly_and_gives_nan_under_jit():
    grads = {"w": jnp.array([1.0, jnp.inf])}
    with pytest.raises(RuntimeError, match="non-finite"):
        fl.utils.clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="non-finite"):
        fl.utils.get_total_norm(grads, error_if_nonfinite=True)
    clipped, total = jax.jit(lambda g: fl.utils.clip_grad_norm_(g, 1.0, error_if_nonfinite=True))(grads)
    assert bool(jnp.isnan(total)) and bool(jnp.all(jnp.isnan(clipped["w"])))
    # without the flag: torch scales by the non-finite norm anyway (max_norm / inf = 0)
    clipped, total = fl.utils.clip_grad_norm_(grads, 1.0)
    t = torch.nn.Parameter(torch.zeros(2))
    t.grad = torch.tensor([1.0, math.inf])
    t_total = torch.nn.utils.clip_grad_norm_([t], 1.0)
    np.testing.assert_array_equal(np.asarray(clipped["w"]), t.grad.numpy())
    assert float(total) == float(t_total)


def test_bad_norm_type_raises():
    with pytest.raises(ValueError, match="norm_type must be a number"):
        fl.utils.get_total_norm([jnp.ones(2)], norm_type="fro")


def test_clip_grad_norm_transform_steps_as_torch():
    """optax.chain(clip_grad_norm_transform, sgd) is torch's clip_grad_norm_ + SGD.step()."""
    grads, torch_params = _grads(np.float32, scale=3.0)
    params = jax.tree_util.tree_map(jnp.zeros_like, grads)
    tx = optax.chain(fl.utils.clip_grad_norm_transform(1.0, norm_type=2.0), optax.sgd(0.1))
    new_params = jax.jit(lambda g, p: optax.apply_updates(p, tx.update(g, tx.init(p), p)[0]))(grads, params)
    opt = torch.optim.SGD(torch_params, lr=0.1)
    torch.nn.utils.clip_grad_norm_(torch_params, 1.0)
    opt.step()
    ours = [new_params["weight"], new_params["bias"], new_params["block"]["kernel"]]
    for i, (a, p) in enumerate(zip(ours, torch_params)):
        assert_close(a, p, f"param {i} after one step", **tolerance(np.float32))


def test_clip_grad_norm_forward_mode_and_vmap():
    grads = {"w": jnp.array([3.0, 4.0])}
    _, tangent = jax.jit(lambda g, t: jax.jvp(lambda g: fl.utils.clip_grad_norm_(g, 1.0)[0]["w"], (g,), (t,)))(
        grads, {"w": jnp.ones(2)})
    assert tangent.shape == (2,) and bool(jnp.all(jnp.isfinite(tangent)))
    batched = jax.vmap(lambda g: fl.utils.clip_grad_norm_(g, 1.0)[1])({"w": jnp.array([[3.0, 4.0], [0.6, 0.8]])})
    np.testing.assert_allclose(np.asarray(batched), [5.0, 1.0], rtol=1e-6)


# -- parameters_to_vector / vector_to_parameters ------------------------------------------------------------


class _Unsorted(torch.nn.Module):
    """Names that do not sort alphabetically, and an own parameter registered after the children."""

    def __init__(self):
        super().__init__()
        self.zeta = torch.nn.Linear(3, 2)
        self.alpha = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
        self.gain = torch.nn.Parameter(torch.randn(2))


def _unsorted_layer():
    return fl.Module(lambda m, x: m.gain * m.alpha(m.zeta(x)), zeta=fl.Linear(3, 2),
                     alpha=fl.Sequential(fl.Linear(2, 2), fl.BatchNorm1d(2)), gain=fl.Parameter(jnp.ones(2)))


def test_parameters_to_vector_uses_torch_order(dtype):
    torch.manual_seed(0)
    module = _Unsorted().to(TORCH_DTYPES[np.dtype(dtype)])
    params, _ = fl.load_state_dict(_unsorted_layer(), module.state_dict(), dtype=dtype)
    t_vec = torch.nn.utils.parameters_to_vector(module.parameters())
    vec = fl.utils.parameters_to_vector(params)
    assert_close(vec, t_vec, "vector", **tolerance(dtype))
    new_vec = randn(vec.shape[0], dtype=dtype, seed=5)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new_vec), module.parameters())
    new_params = fl.utils.vector_to_parameters(jnp.asarray(new_vec), params)
    ours = fl.state_dict(new_params)
    for name, p in module.named_parameters():
        assert_close(ours[name], p, name, **tolerance(dtype))
    assert list(ours) == [name for name, _ in module.named_parameters()]


def test_vector_to_parameters_errors_and_lists():
    with pytest.raises(TypeError, match="1-D vector"):
        fl.utils.vector_to_parameters(jnp.ones((2, 2)), [jnp.ones(4)])
    with pytest.raises(ValueError, match="has 3 elements, the parameters 4"):
        fl.utils.vector_to_parameters(jnp.ones(3), [jnp.ones(4)])
    out = fl.utils.vector_to_parameters(jnp.arange(5.0), [jnp.ones(2), jnp.ones((3,), jnp.int32)])
    assert out[1].dtype == jnp.int32 and out[1].tolist() == [2, 3, 4]
    with pytest.raises(ValueError, match="empty"):
        fl.utils.parameters_to_vector({})
