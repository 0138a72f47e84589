"""One JAX primitive: a linear map with a hand-written transpose, batched by `vmap`.

Used by every fast kernel (the convolution lowerings, Winograd, training-mode BatchNorm,
GroupNorm, CrossMapLRN2d, the max-pool pick, max unpooling, grid_sample's sampling). It exists so
that those kernels keep their fast backward passes *and* every JAX transformation. A kernel is a
`jax.custom_jvp` whose tangent rule returns `linear_call(tangent, transpose, consts, tangents)`:

- forward mode (`jax.jvp`, `jacfwd`) evaluates `tangent(*consts, *tangents)`, plain JAX that is
  linear in the tangents (for a convolution: conv(dx, w) + conv(x, dw), by the fast forward);
- reverse mode (`grad`, `vjp`, `jacrev`) linearises, and JAX transposes the linear part: for this
  primitive that calls `transpose(cotangents, *consts)`, the kernel's hand-written backward pass
  (the one that used to be its `custom_vjp` bwd rule), so the compiled reverse-mode step is the
  same computation as before;
- `vmap` of either re-binds the primitive with `vmap(tangent)` and `vmap(transpose)`: the fast
  backward stays in use for per-example gradients and batched JVPs;
- higher orders (grad of grad, `hessian`, jvp of grad) differentiate `tangent` and `transpose`,
  which are plain JAX.

Why not the ready-made tools: a `custom_jvp` whose tangent calls a `custom_vjp` kernel cannot be
transposed; a `custom_vjp` cannot be pushed forward; `jax.custom_derivatives.linear_call` has the
same semantics as this primitive but no batching rule (`vmap` of its gradient fails). This is the
primitive-with-rules route JAX takes for its own operations, written once, generically, with the
public `jax.extend.core.Primitive`, the `jax.interpreters.ad` / `batching` / `mlir` registries
and `partial_eval.trace_to_jaxpr_dynamic` for the abstract value. JAX 0.10.2 notes:
`batching.primitive_batchers` is a compatibility shim (marked "TODO: delete" in JAX);
`jax.extend.linear_util.wrap_init` without a `DebugInfo` is deprecated; `jax.core.get_aval` is
gone (avals come from `jax.typeof`).

Reverse mode is unchanged by construction: every benchmark step compiles to the same HLO as with
the former `custom_vjp`s (`python -m benchmarks.compare_hlo`, benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero
from jax.extend import linear_util as lu
from jax.extend.core import DebugInfo, Primitive
from jax.interpreters import ad, batching, mlir
from jax.interpreters import partial_eval as pe

linear_p = Primitive("funclayers_linear")
linear_p.multiple_results = True


def _impl(*args, tangent, transpose, num_consts, name):
    del transpose, num_consts, name
    return list(tangent(*args))


def _abstract_eval(*avals, tangent, transpose, num_consts, name):
    # Traced on the avals themselves (not shape/dtype copies, as `jax.eval_shape` would), so that
    # the outputs carry what JAX tracks beyond those: inside `shard_map`, the mesh axes they vary on.
    del transpose, num_consts
    info = DebugInfo("funclayers_linear", f"{name} tangent", None, None)
    _, out, _ = pe.trace_to_jaxpr_dynamic(lu.wrap_init(lambda *a: list(tangent(*a)), debug_info=info), avals)
    return out


def _jvp(primals, tangents, **params):
    n = params["num_consts"]
    out = linear_p.bind(*primals, **params)
    consts, lins = primals[:n], primals[n:]
    terms = []
    if any(type(t) is not ad.Zero for t in tangents[n:]):
        terms.append(linear_p.bind(*consts, *map(ad.instantiate_zeros, tangents[n:]), **params))
    moving = [i for i, t in enumerate(tangents[:n]) if type(t) is not ad.Zero]
    if moving:  # the map also moves with its constants (second order): plain JAX
        def of_consts(*moved):
            c = list(consts)
            for i, m in zip(moving, moved, strict=True):
                c[i] = m
            return list(params["tangent"](*c, *lins))

        _, t = jax.jvp(of_consts, [consts[i] for i in moving], [tangents[i] for i in moving])
        terms.append(t)
    if not terms:
        return out, [ad.Zero(jax.typeof(o).to_tangent_aval()) for o in out]
    return out, terms[0] if len(terms) == 1 else [a + b for a, b in zip(*terms, strict=True)]


def _transpose(cts, *args, tangent, transpose, num_consts, name):
    del tangent, name
    consts, lins = args[:num_consts], args[num_consts:]
    if any(ad.is_undefined_primal(c) for c in consts):
        raise NotImplementedError("funclayers_linear is linear in its tangent arguments only")
    if all(type(ct) is ad.Zero for ct in cts):
        return [None] * len(args)
    back = transpose([ad.instantiate_zeros(ct) for ct in cts], *consts)
    return [None] * num_consts + [
        b.astype(a.aval.dtype) if ad.is_undefined_primal(a) else None for a, b in zip(lins, back, strict=True)
    ]


def _batch(args, dims, *, tangent, transpose, num_consts, name):
    size = next(a.shape[d] for a, d in zip(args, dims, strict=True) if d is not None)
    moved = [a if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims, strict=True)]
    consts = moved[:num_consts]
    const_axes = tuple(None if d is None else 0 for d in dims[:num_consts])
    # tangents all batched (an unbatched one broadcast): the transpose then returns batched
    # cotangents, which JAX's transpose of the broadcast sums where needed.
    lins = [a if d is not None else jnp.broadcast_to(a, (size,) + a.shape)
            for a, d in zip(moved[num_consts:], dims[num_consts:], strict=True)]

    def batched_tangent(*a):
        return list(jax.vmap(tangent, in_axes=const_axes + (0,) * len(lins))(*a))

    def batched_transpose(cts, *c):
        return list(jax.vmap(transpose, in_axes=(0,) + const_axes)(cts, *c))

    out = linear_p.bind(*consts, *lins, tangent=batched_tangent, transpose=batched_transpose,
                        num_consts=num_consts, name=name)
    return out, [0] * len(out)


linear_p.def_impl(_impl)
linear_p.def_abstract_eval(_abstract_eval)
ad.primitive_jvps[linear_p] = _jvp
ad.primitive_transposes[linear_p] = _transpose
batching.primitive_batchers[linear_p] = _batch
mlir.register_lowering(linear_p, mlir.lower_fun(_impl, multiple_results=True))


def linear_call(tangent: Callable, transpose: Callable, consts: Sequence[Any], tangents: Sequence[Any],
                name: str = "linear") -> list[Any]:
    """`tangent(*consts, *tangents)` (a list of arrays), linear in `tangents`, transposed by `transpose`.

    Args:
      tangent: plain JAX, linear in its trailing `len(tangents)` arguments; an entry of `tangents`
        that is None or a `SymbolicZero` (a `custom_jvp` rule with `symbolic_zeros=True`) reaches
        it as None and must be skipped.
      transpose: `transpose(cotangents, *consts)` -> one cotangent per entry of `tangents` (any
        value where that tangent is None: it is dropped), plain JAX.
      consts: arrays the map depends on (integer arrays allowed).
      tangents: the arrays it is linear in.

    Returns:
      The list of outputs of `tangent`; `SymbolicZero`s where every tangent is zero.
    """
    present = [not (t is None or type(t) is SymbolicZero) for t in tangents]
    consts = list(consts)
    n = len(consts)
    if not any(present):
        shapes = jax.eval_shape(lambda *c: list(tangent(*c, *[None] * len(tangents))), *consts)
        return [SymbolicZero(jax.core.ShapedArray(s.shape, s.dtype)) for s in shapes]

    def expand(lins):
        it = iter(lins)
        return [next(it) if p else None for p in present]

    def tangent_present(*args):
        return list(tangent(*args[:n], *expand(args[n:])))

    def transpose_present(cts, *c):
        back = transpose(list(cts), *c)
        return [b for b, p in zip(back, present, strict=True) if p]

    lins = [t for t, p in zip(tangents, present, strict=True) if p]
    return linear_p.bind(*consts, *lins, tangent=tangent_present, transpose=transpose_present,
                         num_consts=n, name=name)


def bilinear(forward: Callable, backward: Callable, name: str) -> Callable:
    """`forward(x, w, *static)`, bilinear in (x, w), as a `custom_jvp` on `linear_call`.

    The tangent is forward(dx, w) + forward(x, dw) (both through the fast `forward`); the
    transpose is `backward(x, w, dy, *static) -> (dx, dw)`, the kernel's hand-written backward
    pass. `static` are hashable Python values (stride, padding, ...).
    """

    @partial(jax.custom_jvp, nondiff_argnums=(2,))
    def apply(x, w, static):
        return forward(x, w, *static)

    def rule(static, primals, tangents):
        x, w = primals
        tx, tw = tangents

        def tangent(x, w, tx, tw):
            terms = ([forward(tx, w, *static)] if tx is not None else []) + (
                [forward(x, tw, *static)] if tw is not None else [])
            return [terms[0] if len(terms) == 1 else terms[0] + terms[1]]

        def transpose(cts, x, w):
            return list(backward(x, w, cts[0], *static))

        (ty,) = linear_call(tangent, transpose, (x, w), (tx, tw), name)
        return forward(x, w, *static), ty

    apply.defjvp(rule, symbolic_zeros=True)

    def call(x, w, *static):
        return apply(x, w, tuple(static))

    call.__name__ = call.__qualname__ = name
    return call
