"""torch/nn/utils/parametrizations.py: weight_norm, spectral_norm and orthogonal as parametrizations.

Each returns `parametrize.register_parametrization(layer, name, <the parametrization>)`, so the
params and buffers carry torch's names: `parametrizations.weight.original0` / `original1`
(weight norm's g and v), `parametrizations.weight.original` plus `parametrizations.weight.0._u`,
`._v` (spectral norm) or `.0.base` (orthogonal with `use_trivialization=True`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._layer import Layer
from . import parametrize
from ._common import check_layer, init_shapes, tensor_location
from ._spectral_norm import check_dim, check_power_iterations, default_dim, normalize, weight_matrix
from ._weight_norm import _weight_norm, norm_except_dim

__all__ = ["weight_norm", "spectral_norm", "orthogonal"]


def _tensor_shape(who: str, module: Layer, name: str) -> tuple[int, ...]:
    layer = parametrize._info(module).inner if parametrize.is_parametrized(module, name) else module
    where = tensor_location(who, layer, name)
    params, state = init_shapes(layer)
    return tuple((params if where == "params" else state)[name].shape)


def _weight_norm_parametrization(dim: int) -> parametrize.Parametrization:
    def apply(params, state, weight_g, weight_v, training=False):
        return _weight_norm(weight_v, weight_g, dim), state

    def right_inverse(params, state, weight):
        return (norm_except_dim(weight, 2, dim), weight), state

    return parametrize.Parametrization(lambda rng, value: ({}, {}), apply, right_inverse, "_WeightNorm()")


def weight_norm(module: Layer, name: str = "weight", dim: int | None = 0) -> Layer:
    """Weight normalization as a parametrization; torch.nn.utils.parametrizations.weight_norm.

    The tensor is stored as `parametrizations.<name>.original0` (g, the magnitude,
    `norm_except_dim(weight, 2, dim)`) and `parametrizations.<name>.original1` (v, the
    direction); apply computes `weight = v * (g / norm_except_dim(v, 2, dim))`. Registered with
    `unsafe=True`, as torch does.

    Args:
      module: any funclayers layer with the tensor `name`.
      name: the tensor (default "weight").
      dim: the axis kept by the norm (default 0); None or -1 normalises the whole tensor.

    Returns: the parametrized layer.

    Shape: as the wrapped layer; `original0` has the weight's shape with 1 on every axis but
      `dim`, `original1` the weight's shape.

    Example:
      >>> layer = fl.utils.parametrizations.weight_norm(fl.Linear(20, 40))
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> {k: v.shape for k, v in fl.state_dict(params, state).items()}
      {'bias': (40,), 'parametrizations.weight.original0': (40, 1), 'parametrizations.weight.original1': (40, 20)}
    """
    who = "parametrizations.weight_norm"
    check_layer(who, module)
    ndim = len(_tensor_shape(who, module, name))
    dim = -1 if dim is None else dim
    if not isinstance(dim, int) or not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ValueError(f"{who}: dim must be an int in [{-ndim}, {ndim - 1}] or None, got {dim!r}.")
    return parametrize.register_parametrization(module, name, _weight_norm_parametrization(dim), unsafe=True)


def _power_method(weight_mat: jax.Array, u: jax.Array, v: jax.Array, steps: int, eps: float) -> tuple:
    """torch's _SpectralNorm._power_method: u first, then v, without gradient."""
    weight_mat = jax.lax.stop_gradient(weight_mat)
    for _ in range(steps):
        u = normalize(weight_mat @ v, eps)
        v = normalize(jnp.conj(weight_mat).T @ u, eps)
    return u, v


def _spectral_norm_parametrization(n_power_iterations: int, dim: int, eps: float) -> parametrize.Parametrization:
    def init(rng, weight):
        if weight.ndim <= 1:
            return {}, {}
        weight_mat = weight_matrix(weight, dim)
        h, w = weight_mat.shape
        key_u, key_v = jax.random.split(rng)
        u = normalize(jax.random.normal(key_u, (h,), weight.dtype), eps)
        v = normalize(jax.random.normal(key_v, (w,), weight.dtype), eps)
        u, v = _power_method(weight_mat, u, v, 15, eps)  # torch starts from 15 iterations
        return {}, {"_u": u, "_v": v}

    def apply(params, state, weight, training=False):
        if weight.ndim == 1:  # torch: the exact path, no approximation
            return normalize(weight, eps), state
        weight_mat = weight_matrix(weight, dim)
        u, v = state["_u"], state["_v"]
        if training:
            u, v = _power_method(weight_mat, u, v, n_power_iterations, eps)
        new_state = {"_u": u.astype(state["_u"].dtype), "_v": v.astype(state["_v"].dtype)}
        u, v = jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)
        sigma = jnp.vdot(u, weight_mat @ v)
        return weight / sigma, new_state

    return parametrize.Parametrization(init, apply, None, "_SpectralNorm()")


def spectral_norm(module: Layer, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Layer:
    """Spectral normalization as a parametrization; torch.nn.utils.parametrizations.spectral_norm.

    The tensor is stored as `parametrizations.<name>.original`; the buffers
    `parametrizations.<name>.0._u` and `._v` hold the power iteration's estimates of the first
    singular vectors (initialised, as torch's, by 15 steps from random vectors, plus the one of
    torch's registration check). apply returns `weight / sigma`, `sigma = u . (W v)`; in training
    mode it first runs `n_power_iterations` steps (`u = normalize(W v)`, then
    `v = normalize(W^T u)`, without gradient) and returns the new `_u`, `_v` in the new state;
    in eval mode the stored ones are used unchanged. A 1-D tensor is simply normalised.

    Args:
      module: any funclayers layer with the tensor `name`.
      name: the tensor (default "weight").
      n_power_iterations: power-method steps per training-mode call (default 1).
      eps: the epsilon of the normalisation (default 1e-12).
      dim: the axis of the output channels (default None: 1 for ConvTranspose layers, else 0).

    Returns: the parametrized layer.

    Shape: as the wrapped layer; `_u`: `(weight.shape[dim],)`, `_v`: the product of the other axes.

    Example:
      >>> layer = fl.utils.parametrizations.spectral_norm(fl.Linear(20, 40))
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> for name, value in fl.state_dict(params, state).items():
      ...     print(name, value.shape)
      bias (40,)
      parametrizations.weight.original (40, 20)
      parametrizations.weight.0._u (40,)
      parametrizations.weight.0._v (20,)
      >>> y, state = layer.apply(params, state, jnp.ones((3, 20)), training=True)
      >>> y.shape
      (3, 40)
    """
    who = "parametrizations.spectral_norm"
    check_layer(who, module)
    ndim = len(_tensor_shape(who, module, name))
    dim = check_dim(who, default_dim(module) if dim is None else dim, max(ndim, 1))
    check_power_iterations(who, n_power_iterations)
    return parametrize.register_parametrization(module, name,
                                                _spectral_norm_parametrization(n_power_iterations, dim, eps))


def _mT(x: jax.Array) -> jax.Array:
    return jnp.swapaxes(x, -1, -2)


def _householder_product(A: jax.Array, tau: jax.Array) -> jax.Array:
    """torch.linalg.householder_product: the first k columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T.

    v_i is column i of A below the diagonal with an implicit 1 on it. Written with jnp so that
    every autodiff mode works (jax.lax.linalg.householder_product has no derivative rule).
    """
    n, k = A.shape[-2:]
    rows = jnp.arange(n)
    Q = jnp.broadcast_to(jnp.eye(n, k, dtype=A.dtype), A.shape)

    def step(j, Q):
        i = k - 1 - j
        column = jax.lax.dynamic_index_in_dim(A, i, axis=-1, keepdims=False)       # (..., n)
        v = jnp.where(rows < i, 0, jnp.where(rows == i, 1, column)).astype(A.dtype)
        t = jax.lax.dynamic_index_in_dim(tau, i, axis=-1, keepdims=True)            # (..., 1)
        vQ = jnp.einsum("...n,...nk->...k", v, Q)
        return Q - (t * v)[..., :, None] * vQ[..., None, :]

    return jax.lax.fori_loop(0, k, step, Q)


def _qr_orthogonal(A: jax.Array) -> jax.Array:
    """torch's _make_orthogonal: Q of the QR decomposition with R's diagonal made positive."""
    Q, R = jnp.linalg.qr(A)
    return Q * jnp.sign(jnp.diagonal(R, axis1=-2, axis2=-1))[..., None, :]


def _geqrf_reflectors(Q: jax.Array) -> jax.Array:
    """torch.geqrf(Q)'s first output (LAPACK's reflectors below the diagonal, R on and above it),
    with torch's orthogonal right_inverse fix: the diagonal replaced by its sign, times -1 where tau is 0."""
    n, k = Q.shape[-2:]
    A = Q
    rows = jnp.arange(n)
    diag = []
    for i in range(k):
        x = A[..., :, i]
        alpha = x[..., i]
        below = jnp.where(rows > i, x, 0)
        xnorm = jnp.linalg.vector_norm(below, axis=-1)
        zero = xnorm == 0
        beta = -jnp.where(alpha >= 0, 1.0, -1.0) * jnp.hypot(alpha, xnorm)
        safe_beta = jnp.where(zero, 1.0, beta)
        tau = jnp.where(zero, 0.0, (beta - alpha) / safe_beta)
        v = jnp.where(rows > i, x / jnp.where(zero, 1.0, alpha - beta)[..., None], 0)
        v = jnp.where(rows == i, 1.0, v)
        # apply H = I - tau v v^T to the columns right of i (the left ones hold R and earlier reflectors)
        vA = jnp.einsum("...n,...nk->...k", v, A)
        update = (tau[..., None] * v)[..., :, None] * vA[..., None, :]
        A = A - jnp.where(jnp.arange(k) > i, update, 0)
        r = jnp.where(zero, alpha, beta)
        # column i: R's entry on the diagonal, the reflector below it
        col = jnp.where(rows == i, r[..., None], jnp.where(rows > i, v, A[..., :, i]))
        A = A.at[..., :, i].set(col)
        diag.append(jnp.where(zero, -jnp.sign(r), jnp.sign(r)))
    idx = jnp.arange(k)
    return A.at[..., idx, idx].set(jnp.stack(diag, axis=-1))


def _is_orthogonal(Q: jax.Array) -> jax.Array:
    n, k = Q.shape[-2:]
    eps = 10.0 * n * jnp.finfo(Q.dtype).eps
    gram = _mT(jnp.conj(Q)) @ Q
    identity = jnp.eye(k, dtype=Q.dtype)
    return jnp.all(jnp.abs(gram - identity) <= eps + 1e-5 * jnp.abs(identity))  # torch.allclose(rtol=1e-5)


_MAPS = ("matrix_exp", "cayley", "householder")


def _orthogonal_parametrization(shape: tuple[int, ...], orthogonal_map: str,
                                use_trivialization: bool) -> parametrize.Parametrization:
    def init(rng, weight):
        if not use_trivialization:
            return {}, {}
        Q = weight
        n, k = Q.shape[-2:]
        if n < k:
            Q, n, k = _mT(Q), k, n
        if n == k:
            Q = jnp.where(_is_orthogonal(Q), Q, _qr_orthogonal(Q))
        else:  # complete Q into an n x n orthogonal matrix with random columns
            extra = jax.random.normal(rng, Q.shape[:-2] + (n, n - k), Q.dtype)
            Q = _qr_orthogonal(jnp.concatenate([Q, extra], axis=-1))
        return {}, {"base": Q}

    def right_inverse(params, state, Q):
        if use_trivialization:
            # torch returns -Id: householder(zeros) == eye, so the map starts at `base`
            neg_id = -jnp.eye(Q.shape[-2], Q.shape[-1], dtype=Q.dtype)
            return jnp.broadcast_to(neg_id, Q.shape), state
        if orthogonal_map != "householder":
            return Q, state  # torch's NotImplementedError there: the identity
        transpose = Q.shape[-2] < Q.shape[-1]
        A = _geqrf_reflectors(_mT(Q) if transpose else Q)
        return (_mT(A) if transpose else A), state

    def apply(params, state, X, training=False):
        n, k = X.shape[-2:]
        transposed = n < k
        if transposed:
            X, n, k = _mT(X), k, n
        if orthogonal_map in ("matrix_exp", "cayley"):
            X = jnp.tril(X)
            if n != k:
                X = jnp.concatenate([X, jnp.zeros(X.shape[:-2] + (n, n - k), X.dtype)], axis=-1)
            A = X - _mT(jnp.conj(X))
            if orthogonal_map == "matrix_exp":
                Q = jax.scipy.linalg.expm(A)
            else:  # the Cayley retraction (I + A/2)(I - A/2)^{-1}
                identity = jnp.eye(n, dtype=A.dtype)
                Q = jnp.linalg.solve(identity - 0.5 * A, jnp.broadcast_to(identity + 0.5 * A, A.shape))
            if n != k:
                Q = Q[..., :k]
        else:
            A = jnp.tril(X, -1)
            tau = 2.0 / (1.0 + jnp.sum(A * A, axis=-2))
            Q = _householder_product(A, tau)
            # torch multiplies by X's diagonal cast to int (no gradient through it)
            sign = jax.lax.stop_gradient(jnp.trunc(jnp.diagonal(X, axis1=-2, axis2=-1)))
            Q = Q * sign[..., None, :]
        if use_trivialization:
            Q = state["base"] @ Q
        if transposed:
            Q = _mT(Q)
        return Q, state

    return parametrize.Parametrization(init, apply, right_inverse, "_Orthogonal()")


def orthogonal(module: Layer, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Layer:
    """An orthogonal (or semi-orthogonal) weight as a parametrization; torch.nn.utils.parametrizations.orthogonal.

    The weight (a matrix or a batch of matrices, `(..., n, k)`) is `Q = map(X)`, with `X` stored
    as `parametrizations.<name>.original`: `"matrix_exp"` (the exponential of the skew-symmetric
    part of `tril(X)`), `"cayley"` (its Cayley transform) or `"householder"` (a product of
    Householder reflectors). With `use_trivialization=True` (default) `Q` is multiplied by a
    buffer `parametrizations.<name>.0.base`, the orthogonalised initial weight (completed with
    random columns when it is not square), and the original starts at `-I`, as in torch.
    Registered with `unsafe=True`, as torch does. Complex weights are not supported.

    Args:
      module: any funclayers layer with the tensor `name` (2-D or more).
      name: the tensor (default "weight").
      orthogonal_map: "matrix_exp", "cayley" or "householder"; default None: "matrix_exp" for a
        square matrix, "householder" otherwise.
      use_trivialization: keep the `base` buffer (default True).

    Returns: the parametrized layer.

    Shape: as the wrapped layer; `original` and `base` have the weight's shape (`base` square:
      `(..., max(n, k), max(n, k))`).

    Example:
      >>> layer = fl.utils.parametrizations.orthogonal(fl.Linear(3, 3))
      >>> params, state = layer.init(jax.random.PRNGKey(0))
      >>> W = layer.apply(params, state, jnp.eye(3))[0] - params["bias"]   # rows of W^T
      >>> bool(jnp.allclose(W @ W.T, jnp.eye(3), atol=1e-5))
      True
    """
    who = "parametrizations.orthogonal"
    check_layer(who, module)
    shape = _tensor_shape(who, module, name)
    if len(shape) < 2:
        raise ValueError(f"{who}: Expected a matrix or batch of matrices. Got a tensor of {len(shape)} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if shape[-2] == shape[-1] else "householder"
    if orthogonal_map not in _MAPS:
        raise ValueError(f'{who}: orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    p = _orthogonal_parametrization(shape, orthogonal_map, use_trivialization)
    return parametrize.register_parametrization(module, name, p, unsafe=True)


