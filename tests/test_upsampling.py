"""interpolate, Upsample, UpsamplingNearest2d, UpsamplingBilinear2d against torch.

The coordinate rules are checked by a forward sweep in float64 (rtol 1e-10: an off-by-half-pixel or a
scale recomputed where torch uses the user's shows up at once) over sizes, scale factors, every
align_corners / recompute_scale_factor combination and every mode; gradients w.r.t. the input, jit,
vmap and forward mode run on a representative subset in float32 and float64.
"""

from __future__ import annotations

import itertools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import assert_close, check_layer, tolerance

import funclayers as fl
import funclayers.functional as F

MODES_BY_RANK = {
    3: ("nearest", "nearest-exact", "linear", "area"),
    4: ("nearest", "nearest-exact", "bilinear", "bicubic", "area"),
    5: ("nearest", "nearest-exact", "trilinear", "area"),
}
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")


def _shape(rank: int, n: int) -> tuple:
    return (1, 2) + {3: (n,), 4: (n, n + 2), 5: (n, 3, n + 1)}[rank]


def _sweep_cases():
    """(rank, mode, n, kwargs): sizes and scales crossed with every align_corners and
    recompute_scale_factor value torch accepts for the mode."""
    cases = []
    for rank, modes in MODES_BY_RANK.items():
        sizes = (1, 2, 3, 5, 8, 13) if rank < 5 else (1, 2, 5)
        for mode in modes:
            aligns = (False, True, None) if mode in INTERPOLATING else (None,)
            for n, align in itertools.product(sizes, aligns):
                for size in (1, 4, 7, 16):
                    cases.append((rank, mode, n, dict(size=size, align_corners=align)))
                scales = (0.3, 0.5, 0.7, 0.999, 1.1, 1.5, 2.0, 2.5, 3.0, 1 / 3)
                for scale, recompute in itertools.product(scales, (None, False, True)):
                    if min(_shape(rank, n)[2:]) * scale >= 1:  # an empty output is an error (tested below)
                        cases.append((rank, mode, n, dict(scale_factor=scale, align_corners=align,
                                                          recompute_scale_factor=recompute)))
    for mode, align in (("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True),
                        ("lanczos", False)):
        for n in (3, 8, 13, 24):
            for size in (1, 2, 5, 7, 16, 30):
                cases.append((4, mode, n, dict(size=size, align_corners=align, antialias=True)))
            for scale, recompute in itertools.product((0.3, 0.5, 0.7, 1.1, 2.0, 1 / 3), (None, True)):
                if n * scale >= 1:
                    cases.append((4, mode, n, dict(scale_factor=scale, align_corners=align,
                                                   recompute_scale_factor=recompute, antialias=True)))
    return _stratified(cases, per_group={3: 3, 4: 2, 5: 2})


def _stratified(cases: list, per_group: dict) -> list:
    """At most `per_group[rank]` cases (a fixed random draw) of each (rank, mode, align_corners,
    recompute_scale_factor, antialias, size-or-scale) combination: every combination torch accepts
    stays covered, over varied sizes and factors, in a test that runs in seconds."""
    groups: dict = {}
    for case in cases:
        rank, mode, _, kwargs = case
        key = (rank, mode, kwargs.get("align_corners"), kwargs.get("recompute_scale_factor"),
               kwargs.get("antialias"), "size" in kwargs)
        groups.setdefault(key, []).append(case)
    rng = np.random.default_rng(0)
    picked = []
    for group in groups.values():
        chosen = rng.choice(len(group), size=min(per_group[group[0][0]], len(group)), replace=False)
        picked.extend(group[i] for i in sorted(chosen))
    return picked


@pytest.mark.parametrize("rank", [3, 4, 5])
def test_interpolate_coordinate_sweep_float64(rank, x64):
    """Forward parity at rtol 1e-10 for every case of the sweep with this input rank."""
    rng = np.random.default_rng(0)
    cases = [c for c in _sweep_cases() if c[0] == rank]
    assert len(cases) > 40
    for _, mode, n, kwargs in cases:
        x = rng.standard_normal(_shape(rank, n))
        expected = TF.interpolate(torch.from_numpy(x), mode=mode, **kwargs).numpy()
        ours = np.asarray(F.interpolate(x, mode=mode, **kwargs))
        assert_close(ours, expected, f"{mode} {x.shape} {kwargs}", rtol=1e-10, atol=1e-12)


def test_interpolate_sweep_float32_nearest_indices():
    """float32 nearest indices come from a float32 scale (torch's floorf(dst * scale))."""
    rng = np.random.default_rng(1)
    for rank, mode in itertools.product((3, 4, 5), ("nearest", "nearest-exact")):
        for n, scale in itertools.product((7, 13), (0.3, 0.7, 1 / 3, 1.1, 1.7, 2.9)):
            x = rng.standard_normal(_shape(rank, n)).astype(np.float32)
            if min(x.shape[2:]) * scale < 1:
                continue
            expected = TF.interpolate(torch.from_numpy(x), scale_factor=scale, mode=mode).numpy()
            np.testing.assert_array_equal(np.asarray(F.interpolate(x, scale_factor=scale, mode=mode)), expected,
                                          err_msg=f"{mode} {x.shape} scale {scale}")


# representative cases for gradients, both dtypes: (input shape, interpolate kwargs)
GRAD_CASES = {
    "nearest-1d-up": ((2, 3, 5), dict(scale_factor=2.5, mode="nearest")),
    "nearest-2d-down-odd": ((2, 3, 9, 7), dict(size=(4, 3), mode="nearest")),
    "nearest-3d": ((1, 2, 3, 4, 5), dict(scale_factor=(2, 1.5, 0.6), mode="nearest")),
    "nearest-exact-2d": ((2, 3, 7, 6), dict(scale_factor=1.7, mode="nearest-exact")),
    "nearest-2d-x2": ((2, 3, 4, 5), dict(scale_factor=2, mode="nearest")),
    "linear-up": ((2, 3, 7), dict(scale_factor=2.3, mode="linear")),
    "linear-align-down": ((2, 3, 11), dict(size=4, mode="linear", align_corners=True)),
    "bilinear-given-scale": ((2, 3, 5, 6), dict(scale_factor=1.7, mode="bilinear")),
    "bilinear-recompute": ((2, 3, 5, 6), dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)),
    "bilinear-align-down": ((2, 3, 9, 10), dict(scale_factor=0.45, mode="bilinear", align_corners=True)),
    "bicubic-up": ((2, 3, 5, 4), dict(size=(9, 11), mode="bicubic")),
    "bicubic-align-down": ((2, 3, 11, 9), dict(scale_factor=0.6, mode="bicubic", align_corners=True)),
    "trilinear": ((1, 2, 3, 4, 5), dict(scale_factor=(1.5, 0.8, 2), mode="trilinear")),
    "trilinear-align": ((1, 2, 3, 4, 5), dict(size=(5, 2, 7), mode="trilinear", align_corners=True)),
    "area-down": ((2, 3, 10, 7), dict(size=(4, 3), mode="area")),
    "area-3d-scale": ((1, 2, 6, 5, 7), dict(scale_factor=0.5, mode="area")),
    "bilinear-aa-down": ((2, 3, 16, 13), dict(size=(5, 6), mode="bilinear", antialias=True)),
    "bicubic-aa-down": ((2, 3, 17, 12), dict(scale_factor=0.3, mode="bicubic", antialias=True)),
    "bicubic-aa-align": ((2, 3, 12, 12), dict(size=(5, 7), mode="bicubic", antialias=True, align_corners=True)),
    "bicubic-aa-up": ((2, 3, 4, 5), dict(size=(9, 8), mode="bicubic", antialias=True)),
    "lanczos-aa-down": ((2, 3, 15, 12), dict(size=(4, 5), mode="lanczos", antialias=True)),
}


def _torch_interpolate(**kwargs):
    return lambda x: TF.interpolate(x, **kwargs)


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_interpolate_matches_torch_with_gradients(case, dtype):
    shape, kwargs = GRAD_CASES[case]
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    tx = torch.from_numpy(x).requires_grad_()
    expected = TF.interpolate(tx, **kwargs)
    cotangent = np.random.default_rng(3).standard_normal(tuple(expected.shape)).astype(dtype)
    (expected * torch.from_numpy(cotangent)).sum().backward()
    fn = jax.jit(lambda x: F.interpolate(x, **kwargs))
    ours, vjp = jax.vjp(fn, jnp.asarray(x))
    tol = tolerance(dtype)
    assert_close(ours, expected, "output", **tol)
    assert_close(vjp(jnp.asarray(cotangent))[0], tx.grad, "grad of input", **tol)


@pytest.mark.parametrize("case", ["nearest-3d", "bilinear-given-scale", "bicubic-align-down", "trilinear",
                                  "area-down", "bicubic-aa-down"])
def test_interpolate_jvp_matches_torch_func_jvp(case, dtype):
    shape, kwargs = GRAD_CASES[case]
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    t_out, t_tan = torch.func.jvp(_torch_interpolate(**kwargs), (torch.from_numpy(x),), (torch.from_numpy(t),))
    out, tan = jax.jvp(lambda x: F.interpolate(x, **kwargs), (jnp.asarray(x),), (jnp.asarray(t),))
    tol = tolerance(dtype)
    assert_close(out, t_out, "output", **tol)
    assert_close(tan, t_tan, "tangent", **tol)


def test_interpolate_vmap_jacfwd_hessian():
    kwargs = dict(scale_factor=0.6, mode="bicubic", align_corners=True)
    x = np.random.default_rng(5).standard_normal((3, 2, 6, 5)).astype(np.float32)
    fn = lambda v: F.interpolate(v[None], **kwargs)[0]  # noqa: E731
    batched = jax.vmap(fn)(jnp.asarray(x))
    np.testing.assert_allclose(batched, F.interpolate(x, **kwargs), rtol=1e-6, atol=1e-6)
    jac = jax.jacfwd(lambda v: jnp.sum(fn(v) ** 2))(jnp.asarray(x[0]))
    jac_rev = jax.jacrev(lambda v: jnp.sum(fn(v) ** 2))(jnp.asarray(x[0]))
    np.testing.assert_allclose(jac, jac_rev, rtol=1e-5, atol=1e-5)
    per_example = jax.vmap(jax.grad(lambda v: jnp.sum(jnp.sin(fn(v)))))(jnp.asarray(x))
    assert per_example.shape == x.shape and np.all(np.isfinite(per_example))


def test_nearest_accepts_integer_input():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.int32).reshape(2, 3, 4, 5)
    expected = TF.interpolate(torch.from_numpy(x).to(torch.uint8), scale_factor=1.5, mode="nearest").numpy()
    ours = np.asarray(F.interpolate(x.astype(np.uint8), scale_factor=1.5, mode="nearest"))
    np.testing.assert_array_equal(ours, expected)
    with pytest.raises(TypeError, match="floating-point"):
        F.interpolate(x, scale_factor=2, mode="bilinear")


LAYER_CASES = {
    "Upsample-nearest-scale": (lambda m: m.Upsample(scale_factor=2), (2, 3, 4, 5)),
    "Upsample-linear-size": (lambda m: m.Upsample(size=9, mode="linear"), (2, 3, 4)),
    "Upsample-bilinear-align": (lambda m: m.Upsample(scale_factor=(1.5, 2.5), mode="bilinear",
                                                     align_corners=True), (2, 3, 4, 5)),
    "Upsample-bicubic-recompute": (lambda m: m.Upsample(scale_factor=1.3, mode="bicubic",
                                                        recompute_scale_factor=True), (2, 3, 5, 6)),
    "Upsample-trilinear": (lambda m: m.Upsample(size=(3, 5, 4), mode="trilinear"), (1, 2, 2, 3, 4)),
    "Upsample-area-down": (lambda m: m.Upsample(scale_factor=0.5, mode="area"), (2, 3, 7, 9)),
    "Upsample-nearest-exact": (lambda m: m.Upsample(scale_factor=0.7, mode="nearest-exact"), (2, 3, 7, 9)),
    "UpsamplingNearest2d": (lambda m: m.UpsamplingNearest2d(scale_factor=3), (2, 3, 3, 4)),
    "UpsamplingBilinear2d": (lambda m: m.UpsamplingBilinear2d(size=(7, 5)), (2, 3, 3, 4)),
}


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_upsample_layers_match_torch(case, dtype):
    build, shape = LAYER_CASES[case]
    x = np.random.default_rng(6).standard_normal(shape)
    check_layer(build(torch.nn), build(fl), [x], dtype=dtype)


def test_upsample_layer_repr_and_stored_scale():
    assert repr(fl.Upsample(scale_factor=2, mode="bilinear")) == "Upsample(scale_factor=2.0, mode='bilinear')"
    assert repr(fl.UpsamplingBilinear2d(size=4)) == "UpsamplingBilinear2d(size=4, mode='bilinear')"
    expected = "Upsample(size=(2, 3), mode='nearest')"
    assert repr(fl.Upsample(size=(2, 3))) == repr(torch.nn.Upsample(size=(2, 3))) == expected


def test_deprecation_warnings_as_torch():
    x = np.ones((1, 1, 2, 2), np.float32)
    for fn in ("upsample", "upsample_nearest", "upsample_bilinear"):
        with pytest.warns(UserWarning, match=f"nn.functional.{fn}` is deprecated"):
            ours = getattr(F, fn)(x, scale_factor=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_allclose(ours, getattr(TF, fn)(torch.from_numpy(x), scale_factor=2).numpy(),
                                       rtol=1e-6)
    with warnings.catch_warnings():  # the classes are deprecated in the docs only, as in torch
        warnings.simplefilter("error")
        fl.UpsamplingBilinear2d(scale_factor=2).apply({}, {}, x)
        fl.UpsamplingNearest2d(scale_factor=2).apply({}, {}, x)


ERRORS = [
    (dict(size=4, scale_factor=2), (1, 1, 4), ValueError, "only one of size or scale_factor"),
    (dict(), (1, 1, 4), ValueError, "either size or scale_factor"),
    (dict(size=4, mode="nearest", align_corners=True), (1, 1, 4), ValueError, "align_corners option can only"),
    (dict(size=4, mode="area", align_corners=False), (1, 1, 4), ValueError, "align_corners option can only"),
    (dict(size=(4, 4), mode="linear"), (1, 1, 4), ValueError, "same number of spatial dimensions"),
    (dict(size=(4.0,), mode="linear"), (1, 1, 4), TypeError, "expected size to be one of int"),
    (dict(scale_factor=(2, 2), mode="linear"), (1, 1, 4), ValueError, "Input and scale_factor must have"),
    (dict(size=4, recompute_scale_factor=True), (1, 1, 4), ValueError, "not meaningful with an explicit size"),
    (dict(size=4, mode="bilinear"), (1, 1, 4), NotImplementedError, "Got 3D input, but bilinear mode needs 4D"),
    (dict(size=4, mode="linear"), (1, 1, 4, 4), NotImplementedError, "Got 4D input, but linear mode needs 3D"),
    (dict(size=4, mode="bicubic"), (1, 1, 4, 4, 4), NotImplementedError, "Got 5D input, but bicubic mode"),
    (dict(size=4, mode="trilinear"), (1, 1, 4, 4), NotImplementedError, "Got 4D input, but trilinear mode"),
    (dict(size=4, mode="nearest"), (4, 4), NotImplementedError, "Only 3D, 4D and 5D input"),
    (dict(size=4, mode="linear", antialias=True), (1, 1, 4), ValueError, "Anti-alias option is restricted"),
    (dict(size=4, mode="nearest", antialias=True), (1, 1, 4, 4), ValueError, "Anti-alias option is restricted"),
    (dict(size=4, mode="lanczos"), (1, 1, 4, 4), ValueError, "Lanczos mode requires antialias=True"),
    (dict(size=4, mode="lanczos", antialias=True, align_corners=True), (1, 1, 4, 4), ValueError,
     "Lanczos mode does not support align_corners"),
    (dict(scale_factor=0.2, mode="bilinear"), (1, 1, 4, 4), RuntimeError, "sizes should be greater than 0"),
    (dict(size=4, mode="cubic"), (1, 1, 4, 4), NotImplementedError, "unknown mode"),
]


@pytest.mark.parametrize("kwargs,shape,error,match", ERRORS)
def test_interpolate_errors_as_torch(kwargs, shape, error, match):
    x = np.ones(shape, np.float32)
    if "unknown" not in match:
        with pytest.raises(error):
            TF.interpolate(torch.from_numpy(x), **kwargs)
    with pytest.raises(error, match=match):
        F.interpolate(x, **kwargs)
    with pytest.raises(ValueError):  # every error is also a ValueError or TypeError, per the contract
        try:
            F.interpolate(x, **kwargs)
        except TypeError as e:
            raise ValueError from e


def test_upsample_config_errors_at_construction():
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        fl.Upsample(size=3, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners option can only"):
        fl.Upsample(scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        fl.Upsample(scale_factor=0)  # torch stores 0 as None
    with pytest.raises(NotImplementedError, match="unknown mode"):
        fl.Upsample(scale_factor=2, mode="bicubicc")


def test_area_with_empty_output_as_torch():
    x = np.ones((1, 2, 1, 1), np.float32)
    assert F.interpolate(x, scale_factor=0.3, mode="area").shape == (1, 2, 0, 0)


def test_aa_axis_kept_when_size_unchanged():
    """torch's separable AA kernel skips an axis whose size does not change (here the width: floor(11
    * 1.05) = 11), even though scale_factor=1.05 reaches the kernel; its backward does not skip it (a
    torch inconsistency), so only the forward is compared and our gradient is the forward's."""
    x = np.random.default_rng(7).standard_normal((1, 2, 6, 11))
    kwargs = dict(scale_factor=(1.5, 1.05), mode="bicubic", antialias=True)
    expected = TF.interpolate(torch.from_numpy(x), **kwargs).numpy()
    with jax.enable_x64(True):
        ours = F.interpolate(x, **kwargs)
        np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
        jac = jax.jacrev(lambda v: F.interpolate(v, **kwargs))(jnp.asarray(x))
        along_width = jac[0, 0, 0, :, 0, 0, 0, :]  # output row 0 w.r.t. input row 0: the identity in width
        assert np.allclose(along_width, along_width[0, 0] * np.eye(11))
