"""The torch oracle: run a torch module and a funclayers layer on the same data and compare.

`check_layer(torch_module, layer, inputs, dtype=...)` loads the torch module's `state_dict` into
the layer, runs both forward (optionally in training mode), backpropagates the same random
cotangent through every floating output, and compares outputs, gradients w.r.t. every floating
input and every parameter (by torch name), and the updated buffers. Returns the jax results so a
test can check more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

import funclayers as fl

TOLERANCES = {
    np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6),
    np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
}
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def tolerance(dtype: Any, **override: float) -> dict:
    out = dict(TOLERANCES[np.dtype(dtype)])
    out.update(override)
    return out


def randn(*shape: int, dtype: Any = np.float32, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """A reproducible standard-normal numpy array."""
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def to_torch(x: Any, requires_grad: bool = False) -> Any:
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, (tuple, list)):
        return type(x)(to_torch(v, requires_grad) for v in x)
    t = torch.from_numpy(np.array(x))
    if requires_grad and t.is_floating_point():
        t.requires_grad_(True)
    return t


def _flatten(out: Any) -> list:
    """Flatten nested tuples/lists of arrays into a list (None entries kept as None)."""
    if isinstance(out, (tuple, list)):
        return [leaf for item in out for leaf in _flatten(item)]
    return [out]


def _np(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def _is_float(x: Any) -> bool:
    """A floating array (numpy, jax, or a tracer: only the dtype is read)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        dtype = None if x is None or isinstance(x, (bool, int, str)) else np.asarray(x).dtype
    return dtype is not None and np.issubdtype(np.dtype(dtype), np.floating)


def assert_close(ours: Any, theirs: Any, what: str, rtol: float, atol: float) -> None:
    ours, theirs = _np(ours), _np(theirs)
    assert (ours is None) == (theirs is None), f"{what}: ours {ours!r}, torch {theirs!r}"
    if ours is None:
        return
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch {theirs.shape}"
    if not np.issubdtype(theirs.dtype, np.floating):
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
        return
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype}, torch {theirs.dtype}"
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def load_into(layer: fl.Layer, module: torch.nn.Module, dtype: Any) -> tuple[Any, Any]:
    """Our (params, state) from the torch module's state_dict, floating entries in `dtype`."""
    return fl.load_state_dict(layer, module.state_dict(), dtype=np.dtype(dtype))


def check_layer(
    module: torch.nn.Module,
    layer: fl.Layer,
    inputs: Sequence[Any],
    *,
    dtype: Any,
    training: bool = False,
    rng: jax.Array | None = None,
    kwargs: dict | None = None,
    torch_kwargs: dict | None = None,
    grad: bool = True,
    jit: bool = True,
    steps: int = 1,
    compare_output: Callable[[Any, Any], None] | None = None,
    **tol: float,
) -> dict:
    """Compare `layer` against `module` on `inputs` (numpy arrays; floating ones cast to dtype).

    Args:
      module: the torch module (converted to `dtype` and put in train/eval mode here).
      layer: the funclayers twin.
      inputs: positional inputs; floating arrays get gradients, other values pass through.
      dtype: np.float32 or np.float64 (the `dtype` fixture; float64 runs under jax_enable_x64).
      training: torch's train() / our training=True.
      rng: passed to apply (random layers compare statistics elsewhere, not here).
      kwargs: forward keyword arguments for both (torch_kwargs, when given, for torch only).
      grad: also compare gradients of sum(out * cotangent) w.r.t. inputs and parameters.
      jit: run our side under jax.jit (the training flag and python kwargs static).
      steps: apply repeatedly, feeding the new state back, comparing buffers after each step.
      compare_output: replaces the output comparison (e.g. for outputs equal up to a permutation).
      **tol: rtol / atol overriding TOLERANCES[dtype].

    Returns: dict(out=..., new_state=..., grads=..., params=..., state=...) of our side.
    """
    dtype = np.dtype(dtype)
    tol = tolerance(dtype, **tol)
    kwargs = dict(kwargs or {})
    torch_kwargs = dict(kwargs if torch_kwargs is None else torch_kwargs)
    module = module.to(TORCH_DTYPES[dtype])
    module.train(training)
    inputs = [np.asarray(x, dtype) if _is_float(x) else x for x in inputs]
    params, state = load_into(layer, module, dtype)

    array_kwargs = {k: v for k, v in kwargs.items() if isinstance(v, (np.ndarray, jax.Array))}
    static_kwargs = {k: v for k, v in kwargs.items() if k not in array_kwargs}
    float_positions = [i for i, x in enumerate(inputs) if _is_float(x)] if grad else []

    def forward(params, float_inputs, state, array_kwargs, rng):
        full = list(inputs)
        for i, x in zip(float_positions, float_inputs):
            full[i] = x
        full = [jnp.asarray(x) if isinstance(x, np.ndarray) else x for x in full]
        return layer.apply(params, state, *full, rng=rng, training=training, **array_kwargs, **static_kwargs)

    def loss(params, float_inputs, state, array_kwargs, rng, cotangents):
        out, new_state = forward(params, float_inputs, state, array_kwargs, rng)
        total = sum(jnp.sum(o * c) for o, c in zip(_flatten(out), cotangents) if c is not None)
        return total, (out, new_state)

    run_forward = jax.jit(forward) if jit else forward
    run_grad = jax.grad(loss, argnums=(0, 1), has_aux=True)
    run_grad = jax.jit(run_grad) if jit else run_grad

    result = {"params": params, "state": state}
    rng_state = np.random.default_rng(1234)
    for step in range(steps):
        t_inputs = [to_torch(x, requires_grad=grad) for x in inputs]
        t_out = module(*t_inputs, **{k: to_torch(v) for k, v in torch_kwargs.items()})
        t_leaves = _flatten(t_out)
        cotangents = [rng_state.standard_normal(tuple(t.shape)).astype(dtype)
                      if isinstance(t, torch.Tensor) and t.is_floating_point() and grad else None
                      for t in t_leaves]
        float_inputs = [jnp.asarray(inputs[i]) for i in float_positions]
        if grad:
            total = sum((t * torch.from_numpy(c)).sum() for t, c in zip(t_leaves, cotangents) if c is not None)
            for p in module.parameters():
                p.grad = None
            if isinstance(total, torch.Tensor) and total.requires_grad:
                total.backward()
            (g_params, g_inputs), (out, new_state) = run_grad(params, float_inputs, state, array_kwargs, rng,
                                                             [None if c is None else jnp.asarray(c)
                                                              for c in cotangents])
        else:
            out, new_state = run_forward(params, float_inputs, state, array_kwargs, rng)
        ours = _flatten(out)
        if compare_output is not None:
            compare_output(out, t_out)
        else:
            assert len(ours) == len(t_leaves), f"output structure: ours {len(ours)} leaves, torch {len(t_leaves)}"
            for i, (a, b) in enumerate(zip(ours, t_leaves)):
                assert_close(a, b, f"step {step} output[{i}]", **tol)
        if grad:
            for i, g in zip(float_positions, g_inputs):
                t_grad = t_inputs[i].grad
                assert_close(g, t_grad if t_grad is not None else torch.zeros_like(t_inputs[i]),
                             f"step {step} grad of input {i}", **tol)
            ours_g = fl.state_dict(g_params, {})
            for name, p in module.named_parameters():
                t_grad = p.grad if p.grad is not None else torch.zeros_like(p)
                assert name in ours_g, f"no gradient for parameter {name}"
                assert_close(ours_g[name], t_grad, f"step {step} grad of {name}", **tol)
            result["grads"] = (g_params, g_inputs)
        t_buffers = {name: b for name, b in module.named_buffers()}
        ours_b = fl.state_dict({}, new_state)
        assert set(ours_b) == {n for n in module.state_dict() if n in t_buffers}, \
            f"buffers: ours {sorted(ours_b)}, torch {sorted(t_buffers)}"
        for name, value in ours_b.items():
            assert_close(value.astype(_np(t_buffers[name]).dtype), t_buffers[name],
                         f"step {step} buffer {name}", **tol)
        state = new_state
        result.update(out=out, new_state=new_state)
    return result


def check_jit_grad_vmap(layer: fl.Layer, x: Any, *, rng: jax.Array | None = None, training: bool = False,
                        params: Any = None, state: Any = None, **kwargs: Any) -> None:
    """`apply` compiles under jit, has a finite non-zero gradient, and vmaps over a new leading axis.

    Everything runs compiled (eager JAX compiles each primitive separately, which is slower here).
    vmap runs over three different inputs (x, 2x+1, -x) and must equal the per-example results.
    `params`/`state` default to init's; `kwargs` are forward arguments.
    """
    init_params, init_state = layer.init(jax.random.PRNGKey(0))
    params = init_params if params is None else params
    state = init_state if state is None else state

    def f(x):
        return _flatten(layer.apply(params, state, x, rng=rng, training=training, **kwargs)[0])

    x = jnp.asarray(x)
    f_jit = jax.jit(f)
    single = f_jit(x)
    if _is_float(x):
        floating = [i for i, o in enumerate(single) if _is_float(o)]
        # a random cotangent: sum(out) or sum(out**2) can have zero gradient through a normaliser
        cot = {i: jnp.asarray(np.random.default_rng(i).standard_normal(single[i].shape), single[i].dtype)
               for i in floating}
        g = jax.jit(jax.grad(lambda x: sum(jnp.sum(f(x)[i] * cot[i]) for i in floating)))(x)
        assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g))), "gradient not finite"
        assert bool(jnp.any(g != 0)), "gradient identically zero"
        examples = [x, 2 * x + 1, -x]
    else:
        examples = [x, x[::-1] if x.ndim else x, x]
    batched = jax.jit(jax.vmap(f))(jnp.stack(examples))
    assert len(batched) == len(single)
    for k, example in enumerate(examples):
        for a, b in zip(f_jit(example), batched):
            np.testing.assert_allclose(np.asarray(b[k]), np.asarray(a), rtol=1e-5, atol=1e-5)
