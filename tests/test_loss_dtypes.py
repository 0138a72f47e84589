"""Loss dtypes against torch 2.13: integer targets promoted where torch promotes them, rejected elsewhere."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import assert_close, randn, tolerance

import funclayers.functional as F


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss", "poisson_nll_loss",
                                  "soft_margin_loss", "multilabel_soft_margin_loss", "margin_ranking_loss",
                                  "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"])
def test_integer_targets_promote_where_torch_promotes_them(name, dtype):
    """torch promotes an int64 target to the input's dtype in these losses, and rejects one in
    binary cross entropy and kl_div; the values (and the input's gradient) match torch's."""
    x = randn(3, 4, seed=2).astype(dtype)
    if name.startswith("binary_cross_entropy"):
        x = 1 / (1 + np.exp(-x)) if name == "binary_cross_entropy" else x
    target = np.random.default_rng(3).integers(0, 2, (3, 4)) * (2 if "margin" in name else 1) - ("margin" in name)
    args = (x[:, 0], x[:, 1] * 2, target[:, 0]) if name == "margin_ranking_loss" else (x, target)
    if name in ("binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"):
        with pytest.raises(RuntimeError):
            getattr(TF, name)(*(torch.from_numpy(np.asarray(a)) for a in args))
        with pytest.raises(TypeError, match="target"):
            getattr(F, name)(*(jnp.asarray(a) for a in args))
        return
    expected = getattr(TF, name)(*(torch.from_numpy(np.asarray(a)) for a in args))  # the int target, promoted
    # the gradient from a float copy of the target: torch's huber_loss backward fails on an int64 target
    # ("Found dtype Long but expected Double") although its forward takes one
    t_args = [torch.from_numpy(np.asarray(a, dtype)).requires_grad_(i == 0) for i, a in enumerate(args)]
    getattr(TF, name)(*t_args).backward()
    value, grad = jax.value_and_grad(lambda a: getattr(F, name)(a, *(jnp.asarray(b) for b in args[1:])))(
        jnp.asarray(args[0]))
    assert value.dtype == jnp.dtype(dtype)
    assert_close(value, expected.detach().numpy(), name, **tolerance(dtype))
    assert_close(grad, t_args[0].grad.numpy(), f"{name} grad", **tolerance(dtype))
