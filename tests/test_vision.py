"""affine_grid and grid_sample against torch: every mode, padding mode and align_corners, 2-D and 3-D,
grids reaching well outside [-1, 1], gradients w.r.t. the input, the grid and theta, jvp, vmap."""

from __future__ import annotations

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import assert_close, tolerance

import funclayers.functional as F

GRID_CASES = [(2, mode, pad, align) for mode, pad, align in
              itertools.product(("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection"), (False, True))]
GRID_CASES += [(3, mode, pad, align) for mode, pad, align in
               itertools.product(("bilinear", "nearest"), ("zeros", "border", "reflection"), (False, True))]


def _grid_data(rank: int, dtype, spatial=None, seed=0):
    rng = np.random.default_rng(seed)
    spatial = spatial or ((5, 7) if rank == 2 else (3, 4, 5))
    out = (4, 6) if rank == 2 else (2, 3, 4)
    x = rng.standard_normal((2, 3) + spatial).astype(dtype)
    grid = rng.uniform(-2.5, 2.5, (2,) + out + (rank,)).astype(dtype)  # far outside the image too
    grid.reshape(-1)[:6] = [-1, 1, 0, 1, 1, -1]  # exact corners and centre
    cotangent = rng.standard_normal((2, 3) + out).astype(dtype)
    return x, grid, cotangent


@pytest.mark.parametrize("rank,mode,padding_mode,align_corners", GRID_CASES)
def test_grid_sample_matches_torch(rank, mode, padding_mode, align_corners, dtype):
    # a unit axis (reflection's empty span) for the reflection cases
    for spatial in (None, (1, 4) if rank == 2 else (1, 2, 3)) if padding_mode == "reflection" else (None,):
        x, grid, cotangent = _grid_data(rank, dtype, spatial)
        tx, tg = torch.from_numpy(x).requires_grad_(), torch.from_numpy(grid).requires_grad_()
        expected = TF.grid_sample(tx, tg, mode, padding_mode, align_corners)
        (expected * torch.from_numpy(cotangent)).sum().backward()
        fn = jax.jit(lambda x, g: F.grid_sample(x, g, mode, padding_mode, align_corners))
        out, vjp = jax.vjp(fn, jnp.asarray(x), jnp.asarray(grid))
        grad_x, grad_grid = vjp(jnp.asarray(cotangent))
        tol = out_tol = tolerance(dtype)
        if dtype == np.float32 and mode == "bicubic":
            # 16 taps whose cubic weights (and their derivatives, up to ~10x the values) cancel: float32
            # sums carry ~1e-6 absolute error (torch sums them in another order)
            tol, out_tol = tolerance(dtype, atol=1e-4), tolerance(dtype, atol=1e-5)
        assert_close(out, expected, f"output {x.shape}", **out_tol)
        assert_close(grad_x, tx.grad, f"grad of input {x.shape}", **tolerance(dtype))
        assert_close(grad_grid, tg.grad, f"grad of grid {x.shape}", **tol)


@pytest.mark.parametrize("rank,mode,padding_mode,align_corners",
                         [(2, "bilinear", "reflection", False), (2, "bicubic", "border", True),
                          (3, "bilinear", "zeros", True), (2, "nearest", "zeros", False)])
def test_grid_sample_jvp_matches_torch(rank, mode, padding_mode, align_corners, dtype):
    """torch has no forward-mode rule for grid_sampler (torch.func.jvp raises NotImplementedError), so
    our jvp is compared with torch's full Jacobian (reverse mode) times the tangents."""
    x, grid, _ = _grid_data(rank, dtype, seed=1)
    rng = np.random.default_rng(2)
    tangents = (rng.standard_normal(x.shape).astype(dtype), rng.standard_normal(grid.shape).astype(dtype))

    def torch_fn(x, g):
        return TF.grid_sample(x, g, mode, padding_mode, align_corners)

    with pytest.raises(NotImplementedError, match="forward AD"):
        torch.func.jvp(torch_fn, (torch.from_numpy(x), torch.from_numpy(grid)),
                       tuple(torch.from_numpy(t) for t in tangents))
    jac_x, jac_grid = torch.autograd.functional.jacobian(torch_fn, (torch.from_numpy(x), torch.from_numpy(grid)))
    out_dims = jac_x.ndim - x.ndim
    expected = (torch.tensordot(jac_x, torch.from_numpy(tangents[0]), dims=x.ndim)
                + torch.tensordot(jac_grid, torch.from_numpy(tangents[1]), dims=grid.ndim))
    assert expected.ndim == out_dims
    out, tan = jax.jvp(jax.jit(lambda x, g: F.grid_sample(x, g, mode, padding_mode, align_corners)),
                       (jnp.asarray(x), jnp.asarray(grid)), tuple(jnp.asarray(t) for t in tangents))
    tol = tolerance(dtype, atol=1e-4) if dtype == np.float32 else tolerance(dtype)
    assert_close(out, torch_fn(torch.from_numpy(x), torch.from_numpy(grid)), "output", **tolerance(dtype))
    assert_close(tan, expected, "tangent", **tol)


def test_grid_sample_nearest_rounds_half_to_even():
    x = np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5)
    # align_corners=True: x = -0.5 -> pixel 1.0, x = 0 -> 2.0; pixel 0.5 and 2.5 are ties
    grid = np.zeros((1, 1, 4, 2), np.float32)
    grid[0, 0, :, 0] = [-0.75, 0.25, -0.25, 0.75]  # pixels 0.5, 2.5, 1.5, 3.5
    expected = TF.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), "nearest", align_corners=True)
    ours = F.grid_sample(x, grid, "nearest", align_corners=True)
    np.testing.assert_array_equal(ours, expected.numpy())
    np.testing.assert_array_equal(ours[0, 0, 0], [0, 2, 2, 4])


def test_grid_sample_vmap_and_second_order():
    x, grid, _ = _grid_data(2, np.float32, seed=3)

    def f(x, g):
        return F.grid_sample(x[None], g[None], "bilinear", "reflection", False)[0]

    batched = jax.jit(jax.vmap(f))(jnp.asarray(x), jnp.asarray(grid))
    np.testing.assert_allclose(batched, F.grid_sample(x, grid, "bilinear", "reflection", False), rtol=1e-6,
                               atol=1e-6)
    per_example = jax.jit(jax.vmap(jax.grad(lambda x, g: jnp.sum(f(x, g) ** 2), argnums=1)))(
        jnp.asarray(x), jnp.asarray(grid))
    assert per_example.shape == grid.shape and np.all(np.isfinite(per_example))
    hvp = jax.jit(lambda g, t: jax.jvp(jax.grad(lambda g: jnp.sum(f(jnp.asarray(x[0]), g) ** 2)), (g,), (t,))[1])(
        jnp.asarray(grid[0]), jnp.ones_like(grid[0]))
    assert np.all(np.isfinite(hvp))


@pytest.mark.parametrize("rank,mode", [(2, "bilinear"), (2, "bicubic"), (3, "bilinear"), (2, "nearest")])
def test_grid_sample_every_transformation_agrees(rank, mode):
    """The sampling kernel's hand-written transpose against forward mode: jacfwd equals jacrev w.r.t. the
    input and the grid, linearize's tangent equals jvp's, and per-example gradients (vmap of grad)
    equal the gradients of each example alone."""
    x, grid, _ = _grid_data(rank, np.float32, seed=6)
    x, grid = jnp.asarray(x), jnp.asarray(grid)

    def f(x, g):
        return F.grid_sample(x, g, mode, "zeros", False)

    atol = 1e-4 if mode == "bicubic" else 1e-5  # 16 cubic taps summed in another order (see above)
    for argnums in (0, 1):
        forward = jax.jit(jax.jacfwd(f, argnums=argnums))(x, grid)
        reverse = jax.jit(jax.jacrev(f, argnums=argnums))(x, grid)
        np.testing.assert_allclose(forward, reverse, rtol=1e-5, atol=atol)
    tangents = (jnp.ones_like(x), jnp.full_like(grid, 0.1))
    _, lin = jax.linearize(f, x, grid)
    jvp = jax.jit(lambda x, g, t: jax.jvp(f, (x, g), t)[1])(x, grid, tangents)
    np.testing.assert_allclose(jax.jit(lin)(*tangents), jvp, rtol=1e-6, atol=1e-6)

    def loss(x, g):
        return jnp.sum(f(x[None], g[None]) ** 2)

    per_example = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1))))(x, grid)
    one = jax.jit(jax.grad(loss, argnums=(0, 1)))  # compiled once (op by op, the kernels' loops dispatch slowly)
    for i in range(x.shape[0]):
        alone = one(x[i], grid[i])
        for batched, single in zip(per_example, alone, strict=True):
            np.testing.assert_allclose(batched[i], single, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rank,mode,padding_mode", [(2, "bilinear", "zeros"), (2, "bilinear", "reflection"),
                                                   (2, "bicubic", "border"), (3, "bilinear", "zeros")])
def test_grid_sample_grad_of_grad_matches_torch(rank, mode, padding_mode, x64):
    """d/d(x, grid) of |grad_x|^2 + |grad_grid|^2 of sum(grid_sample(x, grid)^3), against torch's double
    backward in float64: the hand-written transpose is itself differentiated."""
    x, grid, _ = _grid_data(rank, np.float64, seed=7)
    grid = 0.8 * grid  # inside and outside the image, away from the exact corners set by _grid_data

    def torch_fn(x, g):
        return TF.grid_sample(x, g, mode, padding_mode, False)

    tx, tg = torch.from_numpy(x).requires_grad_(), torch.from_numpy(grid).requires_grad_()
    gx, gg = torch.autograd.grad((torch_fn(tx, tg) ** 3).sum(), (tx, tg), create_graph=True)
    expected = torch.autograd.grad((gx ** 2).sum() + (gg ** 2).sum(), (tx, tg))

    def outer(x, g):
        gx, gg = jax.grad(lambda x, g: jnp.sum(F.grid_sample(x, g, mode, padding_mode, False) ** 3),
                          argnums=(0, 1))(x, g)
        return jnp.sum(gx ** 2) + jnp.sum(gg ** 2)

    ours = jax.jit(jax.grad(outer, argnums=(0, 1)))(jnp.asarray(x), jnp.asarray(grid))
    for name, got, want in zip(("input", "grid"), ours, expected, strict=True):
        # entries that cancel to ~0 (a clipped coordinate) keep float64 rounding of the ~1e4 ones
        scale = float(want.abs().max())
        assert_close(got, want, f"grad of grad w.r.t. the {name}", **tolerance(np.float64, atol=1e-13 * scale))


@pytest.mark.parametrize("batch,per_step", [(1, 0), (5, 1), (6, 3), (16, 4)])
def test_grid_sample_input_gradient_per_image_loop_matches_torch(batch, per_step, dtype):
    """The input gradient's loop over groups of images (`_kernels/_sample._images_per_step`: batch 1 one
    scatter per tap, 5 one image per step, 6 three, 16 four as in the benchmark), many points per
    pixel, against torch; and vmap of grad (the loop batched) against each example alone."""
    from funclayers._kernels._sample import _images_per_step

    assert _images_per_step(batch) == per_step
    rng = np.random.default_rng(8)
    x = rng.standard_normal((batch, 3, 4, 5)).astype(dtype)
    grid = rng.uniform(-1.3, 1.3, (batch, 9, 7, 2)).astype(dtype)  # 63 points on 20 pixels
    cotangent = rng.standard_normal((batch, 3, 9, 7)).astype(dtype)
    tx, tg = torch.from_numpy(x).requires_grad_(), torch.from_numpy(grid).requires_grad_()
    (TF.grid_sample(tx, tg, "bilinear", "zeros", False) * torch.from_numpy(cotangent)).sum().backward()
    grad_x, grad_grid = jax.jit(jax.vjp(lambda x, g: F.grid_sample(x, g, "bilinear", "zeros", False),
                                        jnp.asarray(x), jnp.asarray(grid))[1])(jnp.asarray(cotangent))
    assert_close(grad_x, tx.grad, "grad of input", **tolerance(dtype))
    assert_close(grad_grid, tg.grad, "grad of grid", **tolerance(dtype))

    def loss(x, g):
        return jnp.sum(F.grid_sample(x, g, "bilinear", "zeros", False) * jnp.asarray(cotangent))

    stacked = jnp.stack([jnp.asarray(x), jnp.asarray(x[::-1])]), jnp.stack([jnp.asarray(grid), jnp.asarray(grid[::-1])])
    per_example = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1))))(*stacked)
    one = jax.jit(jax.grad(loss, argnums=(0, 1)))  # compiled once: op by op, the loop dispatches slowly
    for i in range(2):
        for batched, single in zip(per_example, one(stacked[0][i], stacked[1][i]), strict=True):
            np.testing.assert_allclose(batched[i], single, rtol=1e-5, atol=1e-5)  # as the test above


@pytest.mark.parametrize("size,align_corners", [((2, 3, 4, 5), False), ((2, 3, 4, 5), True),
                                                ((2, 1, 3, 4, 5), False), ((2, 1, 3, 1, 5), True),
                                                ((2, 3, 1, 6), False)])
def test_affine_grid_matches_torch(size, align_corners, dtype):
    rng = np.random.default_rng(4)
    theta = rng.standard_normal((2, 2, 3) if len(size) == 4 else (2, 3, 4)).astype(dtype)
    ttheta = torch.from_numpy(theta).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = TF.affine_grid(ttheta, size, align_corners)
        cotangent = rng.standard_normal(tuple(expected.shape)).astype(dtype)
        (expected * torch.from_numpy(cotangent)).sum().backward()
        out, vjp = jax.vjp(lambda t: F.affine_grid(t, size, align_corners), jnp.asarray(theta))
    tol = tolerance(dtype)
    assert_close(out, expected, "grid", **tol)
    assert_close(vjp(jnp.asarray(cotangent))[0], ttheta.grad, "grad of theta", **tol)


def test_spatial_transformer_end_to_end(dtype):
    """affine_grid into grid_sample, gradients w.r.t. theta and the image, against torch."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    theta = (np.eye(2, 3)[None] + 0.2 * rng.standard_normal((2, 2, 3))).astype(dtype)
    tx, tt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(theta).requires_grad_()
    expected = TF.grid_sample(tx, TF.affine_grid(tt, (2, 3, 5, 5), False), align_corners=False)
    expected.square().sum().backward()

    def f(x, theta):
        return F.grid_sample(x, F.affine_grid(theta, (2, 3, 5, 5), False), align_corners=False)

    out = jax.jit(f)(x, theta)
    grad_x, grad_theta = jax.jit(jax.grad(lambda x, t: jnp.sum(f(x, t) ** 2), argnums=(0, 1)))(
        jnp.asarray(x), jnp.asarray(theta))
    tol = tolerance(dtype)
    assert_close(out, expected, "output", **tol)
    assert_close(grad_x, tx.grad, "grad of input", **tol)
    # theta's gradient sums ~75 products of both signs (cancellation): float32 keeps ~1e-5 of it
    assert_close(grad_theta, tt.grad, "grad of theta", **(tolerance(dtype, rtol=1e-4) if dtype == np.float32 else tol))


def test_align_corners_none_warns_as_torch():
    x, grid, _ = _grid_data(2, np.float32)
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior has changed"):
        F.grid_sample(x, grid)
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior has changed"):
        F.affine_grid(np.zeros((1, 2, 3), np.float32), (1, 1, 2, 2))


GRID_ERRORS = [
    (dict(mode="trilinear"), None, ValueError, "expected mode to be 'bilinear', 'nearest' or 'bicubic'"),
    (dict(padding_mode="circular"), None, ValueError, "expected padding_mode to be 'zeros'"),
    (dict(), ("grid", (2, 4, 6, 3)), RuntimeError, "expected grid to have size 2 in last dimension"),
    (dict(), ("grid", (3, 4, 6, 2)), RuntimeError, "expected grid and input to have same batch size"),
    (dict(), ("grid", (2, 4, 2)), RuntimeError, "expected 4D or 5D input and grid with same number"),
    (dict(), ("input", (2, 3, 0, 7)), RuntimeError, "non-empty spatial dimensions"),
    (dict(), ("grid64", None), TypeError, "expected input and grid to have same dtype"),
]


@pytest.mark.parametrize("kwargs,change,error,match", GRID_ERRORS)
def test_grid_sample_errors_as_torch(kwargs, change, error, match, x64):
    x, grid, _ = _grid_data(2, np.float32)
    if change is not None:
        what, shape = change
        if what == "grid":
            grid = np.zeros(shape, np.float32)
        elif what == "input":
            x = np.zeros(shape, np.float32)
        else:
            grid = grid.astype(np.float64)
    kwargs = dict(align_corners=False, **kwargs)
    with pytest.raises((RuntimeError, ValueError)):
        TF.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), **kwargs)
    with pytest.raises(error, match=match):
        F.grid_sample(x, grid, **kwargs)


def test_grid_sample_bicubic_3d_error():
    x = np.zeros((1, 1, 2, 2, 2), np.float32)
    grid = np.zeros((1, 1, 1, 1, 3), np.float32)
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D input"):
        F.grid_sample(x, grid, "bicubic", align_corners=False)


@pytest.mark.parametrize("theta_shape,size,error,match", [
    ((1, 3, 4), (1, 1, 2, 2), ValueError, "Nx2x3"),
    ((1, 2, 3), (1, 1, 2, 2, 2), ValueError, "Nx3x4"),
    ((1, 2, 3), (1, 1, 2), NotImplementedError, "only supports 4D and 5D sizes"),
    ((1, 2, 3), (1, 1, 0, 2), ValueError, "non-zero, positive output size"),
])
def test_affine_grid_errors_as_torch(theta_shape, size, error, match):
    theta = np.zeros(theta_shape, np.float32)
    with pytest.raises(error, match=match):
        TF.affine_grid(torch.from_numpy(theta), size, align_corners=False)
    with pytest.raises(error, match=match):
        F.affine_grid(theta, size, align_corners=False)
    with pytest.raises(ValueError, match="floating point"):
        F.affine_grid(np.zeros((1, 2, 3), np.int32), (1, 1, 2, 2), align_corners=False)
