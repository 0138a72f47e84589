"""The interpolation maths behind `interpolate`: torch's coordinate rules as one matrix per axis.

Every mode of `torch.nn.functional.interpolate` except `area` is separable: output index i along an
axis reads a few input indices with weights that depend only on (i, the input size, the output
size, the scale, align_corners). Those indices and weights are built here, in numpy at trace time,
from the static sizes, following torch's CPU kernels (aten/src/ATen/native/UpSample.h and
cpu/UpSampleKernel.cpp) line by line; the apply side (`_upsampling.py`) contracts each spatial axis
with a small dense (out, in) matrix, which is exact, fast on CPU (a matmul instead of gathers and a
scatter-add in the backward pass) and differentiable in every mode.

Coordinates are computed in the input's precision, as torch's `opmath_t` (float for float32, double
for float64): a float32 scale rounds differently from a float64 one, and nearest modes floor it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

CUBIC_A = -0.75     # get_cubic_upsample_coefficients (upsample_bicubic2d, grid_sample)
AA_CUBIC_A = -0.5   # HelperInterpCubic::aa_filter (antialias=True, as PIL)


def compute_scale(in_size: int, out_size: int, align_corners: bool, scale: float | None, ct) -> float:
    """torch's area_pixel_compute_scale: input pixels per output pixel along one axis.

    align_corners maps the corner pixel centres onto each other ((in-1)/(out-1), 0 for a single
    output); otherwise a user scale_factor s (not recomputed, s > 0) gives 1/s, else in/out
    (compute_scales_value).
    """
    if align_corners:
        return ct(in_size - 1) / ct(out_size - 1) if out_size > 1 else ct(0)
    if scale is not None and scale > 0:
        return ct(1.0 / scale)
    return ct(in_size) / ct(out_size)


def source_index(scale, dst: np.ndarray, align_corners: bool, cubic: bool, ct) -> np.ndarray:
    """torch's area_pixel_compute_source_index: the input coordinate output pixel `dst` reads.

    Half-pixel centres without align_corners; linear modes clamp negative coordinates to 0 (OpenCV's
    resize), cubic keeps them (its taps are clamped instead).
    """
    dst = dst.astype(ct)
    if align_corners:
        return ct(scale) * dst
    src = ct(scale) * (dst + ct(0.5)) - ct(0.5)
    return src if cubic else np.where(src < 0, ct(0), src)


def _floor_index(real: np.ndarray, in_size: int, ct) -> tuple[np.ndarray, np.ndarray]:
    """torch's guard_index_and_lambda: floorf of the coordinate (in float, as torch), clamped to the
    last pixel, and the fraction clamped to [0, 1]."""
    index = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), in_size - 1)
    lam = np.clip(real - index.astype(ct), ct(0), ct(1)).astype(ct)
    return index, lam


def _dense(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, out_size: int, in_size: int) -> np.ndarray:
    """The (out, in) matrix with weights[k] added at (rows[k], cols[k]) (repeated taps add up)."""
    matrix = np.zeros((out_size, in_size), weights.dtype)
    np.add.at(matrix, (rows.ravel(), cols.ravel()), weights.ravel())
    return matrix


def nearest_indices(in_size: int, out_size: int, scale: float | None, exact: bool, ct) -> np.ndarray:
    """The input index each output index copies: torch's HelperInterpNearest(Exact).

    nearest: floor(dst * s); nearest-exact: floor((dst + 0.5) * s), s = compute_scales_value,
    both clamped to the last pixel (floorf: the product is rounded to float before the floor).
    """
    s = compute_scale(in_size, out_size, False, scale, ct)
    dst = np.arange(out_size).astype(ct)
    real = s * (dst + ct(0.5)) if exact else s * dst
    return np.minimum(np.floor(real.astype(ct).astype(np.float32)).astype(np.int64), in_size - 1)


def linear_matrix(in_size: int, out_size: int, align_corners: bool, scale: float | None, ct) -> np.ndarray:
    """(out, in) weights of linear interpolation: torch's compute_source_index_and_lambda.

    An axis whose output size equals its input size is copied, whatever the scale_factor (torch's
    shortcut, which also applies when a scale such as 1.1 floors to the input size).
    """
    if out_size == in_size:
        return np.eye(in_size, dtype=ct)
    s = compute_scale(in_size, out_size, align_corners, scale, ct)
    dst = np.arange(out_size)
    index0, lam1 = _floor_index(source_index(s, dst, align_corners, False, ct), in_size, ct)
    index1 = index0 + (index0 < in_size - 1)
    lam0 = (ct(1) - lam1).astype(ct)
    rows = np.stack([dst, dst])
    return _dense(rows, np.stack([index0, index1]), np.stack([lam0, lam1]), out_size, in_size)


def cubic_coefficients(t: np.ndarray, a: float, ct) -> list:
    """torch's get_cubic_upsample_coefficients: the 4 Keys-kernel weights of taps -1, 0, 1, 2."""
    a = ct(a)
    one = ct(1)

    def conv1(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + one

    def conv2(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    t = t.astype(ct) if isinstance(t, np.ndarray) else t
    return [conv2(t + one), conv1(t), conv1(one - t), conv2((one - t) + one)]


def cubic_matrix(in_size: int, out_size: int, align_corners: bool, scale: float | None, ct) -> np.ndarray:
    """(out, in) weights of bicubic interpolation (A = -0.75): torch's HelperInterpCubic.

    The four taps floor(x)-1 .. floor(x)+2 are clamped to the image (border replication), so a
    clamped tap adds its weight to the border pixel.
    """
    s = compute_scale(in_size, out_size, align_corners, scale, ct)
    dst = np.arange(out_size)
    index, lam = _floor_index(source_index(s, dst, align_corners, True, ct), in_size, ct)
    coeffs = cubic_coefficients(lam, CUBIC_A, ct)
    cols = np.stack([np.clip(index - 1 + j, 0, in_size - 1) for j in range(4)])
    rows = np.stack([dst] * 4)
    return _dense(rows, cols, np.stack(coeffs).astype(ct), out_size, in_size)


def _aa_linear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1, 1 - x, 0)


def _aa_cubic(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    a = AA_CUBIC_A
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, 0))


def _aa_lanczos(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 3, np.sinc(x) * np.sinc(x / 3), 0)


AA_FILTERS = {"bilinear": (_aa_linear, 2), "bicubic": (_aa_cubic, 4), "lanczos": (_aa_lanczos, 6)}


def antialias_matrix(mode: str, in_size: int, out_size: int, align_corners: bool, scale: float | None,
                     ct) -> np.ndarray:
    """(out, in) weights of torch's antialiased resampling (_upsample_{bilinear,bicubic}2d_aa).

    HelperInterpBase::_compute_indices_min_size_weights_aa: when downsampling by s >= 1 the filter's
    support (interp_size / 2) is stretched by s and evaluated at (j - centre + 0.5) / s; output i is
    centred at s * (i + 0.5) and reads input pixels [xmin, xmin + xsize) (bounds truncated toward
    zero, clipped to the image, at most 2 * ceil(support) + 1 of them); its weights are normalised to
    sum to 1. Upsampling (s < 1) keeps the plain support. align_corners only changes s.
    """
    filter_fn, interp_size = AA_FILTERS[mode]
    s = compute_scale(in_size, out_size, align_corners, scale, ct)
    support = ct(interp_size * 0.5) * s if s >= 1.0 else ct(interp_size * 0.5)
    max_size = int(math.ceil(support)) * 2 + 1
    invscale = ct(1.0) / s if s >= 1.0 else ct(1.0)
    matrix = np.zeros((out_size, in_size), ct)
    for i in range(out_size):
        center = s * (ct(i) + ct(0.5))
        xmin = max(int(center - support + ct(0.5)), 0)
        xsize = min(int(center + support + ct(0.5)), in_size) - xmin
        xsize = min(max(xsize, 0), max_size)
        j = np.arange(xsize)
        w = filter_fn(((j + xmin).astype(ct) - center + ct(0.5)) * invscale).astype(ct)
        total = functools.reduce(lambda acc, v: ct(acc + v), w, ct(0))  # torch's sequential total_w
        if total != 0:
            w = (w / total).astype(ct)
        matrix[i, xmin:xmin + xsize] = w
    return matrix
