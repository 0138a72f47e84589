"""The convolution lowerings of issue 28 against torch in every mode, each forced: 3-D convolutions as
2-D ones over depth planes (stacked taps through Winograd in `_conv3d`'s layout or through the 2-D
dispatch, summed taps for groups), one conv per
group or one product batched over the groups, the depthwise tap reductions, the per-image and
one-product gemm, Winograd with its output in the phase layout (`_layout.py`) from each input layout,
the per-phase ("phases"), one-product ("matmul"), "strided" and "xla" transposed convolutions."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from oracle import randn, tolerance
from test_conv import f32_atol

from funclayers._kernels import _conv_lowering as lowering

TF = torch.nn.functional


def _conv_case(method, x_shape, w_shape, groups=1, padding=None, stride=1):
    n = len(x_shape) - 2
    padding = padding or ((1, 1),) * n
    ones, strides = (1,) * n, (stride,) * n

    def ours(x, w):
        return lowering.conv(x, w, strides, padding, ones, groups, method=method)

    def theirs(x, w):
        flat = [v for pair in reversed(padding) for v in pair]
        return getattr(TF, f"conv{n}d")(TF.pad(x, flat), w, None, strides, 0, 1, groups)

    return ours, theirs, x_shape, w_shape


def _transpose_case(method, x_shape, w_shape, stride, padding, output_padding=0, groups=1, dilation=1):
    n = len(x_shape) - 2
    stride, padding, output_padding, dilation = (
        (v,) * n if isinstance(v, int) else v for v in (stride, padding, output_padding, dilation)
    )

    def ours(x, w):
        return lowering.conv_transpose(x, w, stride, padding, output_padding, dilation, groups, method=method)

    def theirs(x, w):
        return getattr(TF, f"conv_transpose{n}d")(x, w, None, stride, padding, output_padding, groups, dilation)

    return ours, theirs, x_shape, w_shape


def _conv3d_case(x_shape, w_shape, padding):
    """`_conv3d.conv3d` called directly (the stacked depth taps through Winograd, in its own
    layout), whatever the dispatch would pick."""
    from funclayers._kernels import _conv3d

    def ours(x, w):
        return _conv3d.conv3d(x, w, padding)

    return ours, _conv_case("depth", x_shape, w_shape, padding=padding)[1], x_shape, w_shape


def _phase_case(layout, x_shape, w_shape):
    """`_winograd.conv3x3_phase` (Sequential's internal layouts, `_layout.py`) from an NCHW, CNHW or
    phase-layout input, its phase-layout output turned back into NCHW: a 3x3 stride-1 conv with padding 1."""
    from funclayers._kernels import _winograd

    def ours(x, w):
        n, c, h, wd = x.shape
        if layout == "cnhw":
            x = jnp.swapaxes(x, 0, 1)
        elif layout == "phase":  # (2, 2, C, N, H/2, W/2)
            x = x.reshape(n, c, h // 2, 2, wd // 2, 2).transpose(3, 5, 1, 0, 2, 4)
        return _winograd.phase_to_nchw(_winograd.conv3x3_phase(x, w, layout))

    return ours, _conv_case("winograd", x_shape, w_shape)[1], x_shape, w_shape


CASES = {
    "winograd-phase-output-from-nchw": _phase_case("nchw", (2, 8, 6, 4), (5, 8, 3, 3)),
    "winograd-phase-output-from-cnhw": _phase_case("cnhw", (3, 8, 4, 6), (6, 8, 3, 3)),
    "winograd-phase-output-from-phase": _phase_case("phase", (2, 7, 6, 8), (5, 7, 3, 3)),
    "depth-3d-stacked-winograd": _conv_case(
        "depth", (2, 4, 4, 6, 5), (5, 4, 2, 3, 3), padding=((1, 0), (1, 1), (0, 2))
    ),
    "depth-3d-stacked-2d-gemm-kernel-2x3": _conv_case(  # not 3x3: the stacked 2-D conv, not `_conv3d`
        "depth", (2, 4, 4, 6, 5), (5, 4, 2, 2, 3), padding=((1, 0), (1, 1), (0, 2))
    ),
    "conv3d-winograd-depth-kernel2-asymmetric-padding": _conv3d_case(
        (2, 3, 4, 5, 6), (4, 3, 2, 3, 3), ((1, 0), (0, 2), (2, 1))
    ),
    "conv3d-winograd-depth-kernel1": _conv3d_case(
        (3, 2, 3, 4, 5), (3, 2, 1, 3, 3), ((0, 0), (1, 1), (1, 1))
    ),
    "conv3d-winograd-depth-kernel3-no-padding": _conv3d_case((4, 2, 5, 3, 4), (2, 2, 3, 3, 3), ((0, 0),) * 3),
    "depth-3d-groups2-summed-taps": _conv_case("depth", (1, 4, 3, 5, 4), (6, 2, 2, 3, 3), groups=2),
    "split-groups4-winograd-per-group": _conv_case("split", (2, 32, 6, 5), (8, 8, 3, 3), groups=4),
    "grouped-groups4-one-batched-product-stride2": _conv_case(
        "grouped", (2, 8, 7, 6), (12, 2, 3, 3), groups=4, stride=2
    ),
    "grouped-1d-groups3": _conv_case("grouped", (2, 6, 9), (3, 2, 3), groups=3),
    "shift-depthwise-multiplier2": _conv_case("shift", (2, 3, 6, 5), (6, 1, 3, 3), groups=3),
    "gemm-per-image-small-fan-in": _conv_case("gemm", (2, 3, 6, 5), (4, 3, 3, 3), stride=2),
    "gemm-one-product-fan-in-72": _conv_case("gemm", (2, 8, 6, 5), (4, 8, 3, 3), stride=2),
    "phases-2d-k4-s2-p1": _transpose_case("phases", (2, 4, 5, 6), (4, 3, 4, 4), 2, 1),
    "phases-2d-k3-s2-output_padding": _transpose_case("phases", (2, 3, 4, 5), (3, 2, 3, 3), 2, 1, 1),
    "phases-2d-s3-k2-padding-beyond-kernel": _transpose_case("phases", (2, 3, 6, 6), (3, 4, 2, 2), 3, 3),
    "phases-2d-groups3-asymmetric": _transpose_case(
        "phases", (2, 6, 5, 4), (6, 2, 3, 5), (2, 3), (1, 2), (1, 0), groups=3
    ),
    "phases-1d-k1-s3-phases-without-taps": _transpose_case("phases", (2, 3, 5), (3, 2, 1), 3, 0, 2),
    "phases-3d-s2": _transpose_case("phases", (1, 2, 3, 4, 3), (2, 3, 3, 2, 3), (2, 1, 2), (1, 0, 1)),
    # kernels twice an even stride: the gradients from the cotangent's columns (`_columns_pay`)
    "phases-columns-2d-k4-8-s2-4-asymmetric-output_padding": _transpose_case(
        "phases", (2, 3, 4, 5), (3, 2, 4, 8), (2, 4), (1, 2), (1, 2)
    ),
    "phases-per-tap-2d-k6-3-s3-1-multiples-of-the-stride": _transpose_case(
        "phases", (2, 3, 4, 5), (3, 2, 6, 3), (3, 1), (1, 1), (2, 0)
    ),
    "phases-columns-1d-k4-s2-padding-beyond-stride": _transpose_case("phases", (2, 3, 5), (3, 4, 4), 2, 3, 1),
    "phases-columns-3d-k4-4-8": _transpose_case(
        "phases", (1, 2, 3, 2, 3), (2, 3, 4, 4, 8), (2, 2, 4), (1, 0, 0), (1, 0, 1)
    ),
    # torch's col2im: one product into the columns, their overlap-add; gradients from the columns
    "columns-2d-k4-s2-p1": _transpose_case("columns", (2, 4, 5, 6), (4, 3, 4, 4), 2, 1),
    "columns-2d-k4-6-s2-3-asymmetric-output_padding": _transpose_case(
        "columns", (2, 3, 4, 5), (3, 2, 4, 6), (2, 3), (1, 2), (1, 2)
    ),
    "columns-2d-k3-s2-output_padding-taps-padded": _transpose_case("columns", (2, 3, 4, 5), (3, 2, 3, 3), 2, 1, 1),
    "columns-1d-k4-s2-padding-beyond-stride": _transpose_case("columns", (2, 3, 5), (3, 4, 4), 2, 3, 1),
    "columns-3d-k4-1-2": _transpose_case("columns", (1, 2, 3, 2, 3), (2, 3, 4, 1, 2), (2, 1, 2), (1, 0, 0), (1, 0, 1)),
    "matmul-2d-k2-s2": _transpose_case("matmul", (2, 4, 5, 6), (4, 3, 2, 2), 2, 0),
    "matmul-2d-k-s-asymmetric-padding-output_padding": _transpose_case(
        "matmul", (2, 4, 5, 6), (4, 3, 2, 3), (2, 3), (1, 0), (1, 2)
    ),
    "matmul-1d-k3-s3-output_padding-beyond-padding": _transpose_case("matmul", (2, 3, 5), (3, 2, 3), 3, 1, 2),
    "matmul-3d-k2-1-2": _transpose_case("matmul", (1, 2, 3, 4, 3), (2, 3, 2, 1, 2), (2, 1, 2), (1, 0, 0), (0, 0, 1)),
    "strided-2d-dilation": _transpose_case(
        "strided", (2, 3, 5, 5), (3, 4, 3, 3), (2, 1), (1, 2), (1, 0), dilation=(2, 3)
    ),
    "xla-2d-k4-s2": _transpose_case("xla", (2, 4, 5, 6), (4, 3, 4, 4), 2, 1),
}
IDS = list(CASES)


def _data(case, dtype):
    _, _, x_shape, w_shape = CASES[case]
    return randn(*x_shape, dtype=dtype, seed=1), randn(*w_shape, dtype=dtype, seed=2)


@pytest.mark.parametrize("case", IDS)
def test_lowering_matches_torch_with_gradients(case, dtype):
    ours, theirs, _, _ = CASES[case]
    x, w = _data(case, dtype)
    out, vjp = jax.vjp(jax.jit(ours), jnp.asarray(x), jnp.asarray(w))
    ct = randn(*out.shape, dtype=dtype, seed=3)
    dx, dw = vjp(jnp.asarray(ct))
    tx, tw = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(w).requires_grad_(True)
    t_out = theirs(tx, tw)
    (t_out * torch.from_numpy(ct)).sum().backward()
    tol = tolerance(dtype, **f32_atol(dtype))
    np.testing.assert_allclose(np.asarray(out), t_out.detach().numpy(), **tol, err_msg="output")
    np.testing.assert_allclose(np.asarray(dx), tx.grad.numpy(), **tol, err_msg="input gradient")
    np.testing.assert_allclose(np.asarray(dw), tw.grad.numpy(), **tol, err_msg="weight gradient")


@pytest.mark.parametrize("case", IDS)
def test_lowering_jvp_matches_torch_and_jacobians_agree(case, dtype):
    ours, theirs, _, _ = CASES[case]
    x, w = _data(case, dtype)
    tx, tw = randn(*x.shape, dtype=dtype, seed=3), randn(*w.shape, dtype=dtype, seed=4)
    _, tangent = jax.jit(lambda *a: jax.jvp(ours, a[:2], a[2:]))(x, w, tx, tw)
    _, expected = torch.func.jvp(theirs, (torch.from_numpy(x), torch.from_numpy(w)),
                                 (torch.from_numpy(tx), torch.from_numpy(tw)))
    np.testing.assert_allclose(np.asarray(tangent), expected.numpy(), **tolerance(dtype, **f32_atol(dtype)))
    with jax.enable_x64(True):  # forward mode (the tangent under vmap) against reverse mode
        x64, w64 = jnp.asarray(x[:1], np.float64), jnp.asarray(w, np.float64)
        fwd = jax.jit(jax.jacfwd(ours, argnums=(0, 1)))(x64, w64)
        rev = jax.jit(jax.jacrev(ours, argnums=(0, 1)))(x64, w64)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12), fwd, rev)


@pytest.mark.parametrize("case", IDS)
def test_vmap_of_grad_equals_a_loop(case, x64):
    ours, _, _, _ = CASES[case]
    x, w = (jnp.asarray(a) for a in _data(case, np.float64))
    ct = jnp.asarray(randn(*ours(x, w).shape, dtype=np.float64, seed=5))

    def loss(w, x, ct):  # one example at a time: a batch of one
        return jnp.sum(ours(x[None], w) * ct[None])

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    batched = jax.jit(jax.vmap(grad, in_axes=(None, 0, 0)))(w, x, ct)
    for i in range(x.shape[0]):
        expected = grad(w, x[i], ct[i])
        jax.tree.map(lambda a, b, i=i: np.testing.assert_allclose(a[i], b, rtol=1e-10, atol=1e-12), batched, expected)


@pytest.mark.parametrize("case", IDS)
def test_grad_of_grad_matches_torch(case, x64):
    ours, theirs, _, _ = CASES[case]
    x, w = _data(case, np.float64)

    def second(x, w):
        gx, gw = jax.grad(lambda x, w: jnp.sum(ours(x, w) ** 3), argnums=(0, 1))(x, w)
        return jnp.sum(gx**2) + jnp.sum(gw**2)

    hx, hw = jax.jit(jax.grad(second, argnums=(0, 1)))(jnp.asarray(x), jnp.asarray(w))
    tx, tw = (torch.from_numpy(a).requires_grad_(True) for a in (x, w))
    gx, gw = torch.autograd.grad((theirs(tx, tw) ** 3).sum(), (tx, tw), create_graph=True)
    ex, ew = torch.autograd.grad((gx**2).sum() + (gw**2).sum(), (tx, tw))
    for ours_h, expected in ((hx, ex), (hw, ew)):
        scale = np.abs(expected.numpy()).max()
        np.testing.assert_allclose(np.asarray(ours_h), expected.numpy(), rtol=1e-10, atol=1e-12 * scale)


def test_transposed_lowerings_refuse_what_they_cannot_compute():
    x, w = jnp.zeros((1, 2, 4, 4)), jnp.zeros((2, 3, 3, 3))
    with pytest.raises(ValueError, match="'phases' transposed convolution lowering is for dilation 1"):
        lowering.conv_transpose(x, w, (2, 2), (0, 0), (0, 0), (2, 1), 1, method="phases")
    with pytest.raises(ValueError, match="'matmul' transposed convolution lowering is for dense kernels"):
        lowering.conv_transpose(x, w, (2, 2), (0, 0), (0, 0), (1, 1), 1, method="matmul")  # kernel 3, stride 2
    with pytest.raises(ValueError, match="'matmul' transposed convolution lowering is for dense kernels"):
        lowering.conv_transpose(x, jnp.zeros((2, 1, 2, 2)), (2, 2), (0, 0), (0, 0), (1, 1), 2, method="matmul")
    with pytest.raises(ValueError, match="'columns' transposed convolution lowering is for dense kernels and dilation"):
        lowering.conv_transpose(x, w, (2, 2), (0, 0), (0, 0), (2, 1), 1, method="columns")
    with pytest.raises(ValueError, match="'columns' transposed convolution lowering is for dense kernels and dilation"):
        lowering.conv_transpose(x, jnp.zeros((2, 1, 4, 4)), (2, 2), (0, 0), (0, 0), (1, 1), 2, method="columns")
    with pytest.raises(ValueError, match="unknown transposed convolution lowering 'gemm'"):
        lowering.conv_transpose(x, w, (2, 2), (0, 0), (0, 0), (1, 1), 1, method="gemm")


def test_transposed_dispatch_on_cpu_and_elsewhere():
    from funclayers._kernels._conv_transpose_lowering import choose_transpose

    f32, f64 = jnp.float32, jnp.float64
    assert choose_transpose((16, 256, 14, 14), (256, 128, 2, 2), (2, 2), (1, 1), 1, f32, "cpu") == "matmul"
    assert choose_transpose((16, 64, 9), (64, 32, 3), (3,), (1,), 1, f32, "cpu") == "matmul"
    # the columns forward where it measured faster: k4 s2 and k8 s4, 1-D to 3-D, up to 32 MB of columns
    assert choose_transpose((16, 64, 16, 16), (64, 32, 4, 4), (2, 2), (1, 1), 1, f32, "cpu") == "columns"
    assert choose_transpose((16, 64, 16, 16), (64, 32, 4, 4), (2, 2), (1, 1), 1, f64, "cpu") == "columns"
    assert choose_transpose((16, 64, 256), (64, 32, 4), (2,), (1,), 1, f32, "cpu") == "columns"
    assert choose_transpose((4, 32, 8, 16, 16), (32, 16, 4, 4, 4), (2,) * 3, (1,) * 3, 1, f32, "cpu") == "columns"
    assert choose_transpose((16, 64, 16, 16), (64, 32, 8, 8), (4, 4), (1, 1), 1, f32, "cpu") == "columns"
    assert choose_transpose((8, 128, 32, 32), (128, 64, 4, 4), (2, 2), (1, 1), 1, f32, "cpu") == "columns"  # 32 MB
    # per phase where it did not: other kernel/stride pairs, groups, more than 32 MB of columns
    assert choose_transpose((16, 64, 16, 16), (64, 32, 6, 6), (3, 3), (1, 1), 1, f32, "cpu") == "phases"
    assert choose_transpose((16, 64, 16, 16), (64, 32, 6, 6), (2, 2), (1, 1), 1, f32, "cpu") == "phases"
    assert choose_transpose((16, 64, 16, 16), (64, 32, 3, 3), (1, 1), (1, 1), 1, f32, "cpu") == "phases"
    assert choose_transpose((16, 64, 16, 16), (64, 32, 5, 5), (1, 1), (1, 1), 1, f32, "cpu") == "phases"
    assert choose_transpose((8, 64, 32, 32), (64, 32, 3, 3), (2, 2), (1, 1), 1, f32, "cpu") == "phases"
    assert choose_transpose((16, 64, 16, 16), (64, 32, 4, 2), (2, 2), (1, 1), 1, f32, "cpu") == "phases"
    assert choose_transpose((16, 64, 16, 16), (64, 16, 4, 4), (2, 2), (1, 1), 2, f32, "cpu") == "phases"  # grouped
    assert choose_transpose((8, 128, 32, 32), (128, 64, 4, 4), (2, 2), (1, 1), 1, f64, "cpu") == "phases"
    assert choose_transpose((64, 128, 32, 32), (128, 64, 4, 4), (2, 2), (1, 1), 1, f32, "cpu") == "phases"
    assert choose_transpose((16, 64, 16, 16), (64, 32, 2, 2), (2, 2), (2, 1), 1, f32, "cpu") == "strided"
    assert choose_transpose((16, 256, 14, 14), (256, 128, 2, 2), (2, 2), (1, 1), 1, f32, "gpu") == "xla"


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU dispatch")
def test_auto_binds_the_kernels_its_dispatch_names():
    def kernels(x_shape, w_shape, stride, padding, output_padding=0):
        n = len(x_shape) - 2
        x, w = jnp.zeros(x_shape), jnp.zeros(w_shape)
        args = ((stride,) * n, (padding,) * n, (output_padding,) * n, (1,) * n, 1)

        def jvp(x, w):  # the kernel's linear primitive, named after its lowering, is in the jvp's jaxpr
            return jax.jvp(lambda x, w: lowering.conv_transpose(x, w, *args), (x, w), (x, w))

        return set(re.findall(r"name=(conv_transpose\w*)", str(jax.make_jaxpr(jvp)(x, w))))

    assert kernels((16, 64, 16, 16), (64, 32, 4, 4), 2, 1) == {"conv_transpose_columns"}  # the benchmark row
    assert kernels((2, 64, 8, 8), (64, 32, 3, 3), 2, 1, 1) == {"conv_transpose_phases"}  # per tap
    assert kernels((2, 64, 8, 8), (64, 32, 3, 3), 1, 1) == {"conv_transpose_phases"}  # stride 1: per tap


def test_the_channels_major_overlap_add_is_the_row_major_one_of_the_transposed_columns():
    # the "columns" forward stores its columns (K * taps, N * positions); the cotangent's columns are
    # the transpose of the (N * positions, K * taps) overlap-add: both must place every tap alike
    from funclayers._kernels._conv_transpose_lowering import _overlap_add, _overlap_add_channels_major

    rng = np.random.default_rng(0)
    cases = [  # x shape, w shape, stride, padding, output_padding
        ((2, 3, 4, 5), (3, 2, 4, 4), (2, 2), (1, 1), (0, 0)),
        ((2, 3, 4, 5), (3, 2, 4, 6), (2, 3), (1, 2), (1, 2)),
        ((2, 3, 4, 5), (3, 2, 3, 3), (2, 2), (1, 1), (1, 1)),  # kernel not a multiple of the stride
        ((2, 3, 5), (3, 4, 4), (2,), (3,), (1,)),
        ((1, 2, 3, 2, 3), (2, 3, 4, 1, 2), (2, 1, 2), (1, 0, 0), (1, 0, 1)),
    ]
    for x_shape, w_shape, stride, padding, output_padding in cases:
        rows = x_shape[0] * int(np.prod(x_shape[2:]))
        z = jnp.asarray(rng.standard_normal((rows, w_shape[1] * int(np.prod(w_shape[2:])))), jnp.float32)
        expected = _overlap_add(z, x_shape, w_shape, stride, padding, output_padding)
        got = _overlap_add_channels_major(z.T, x_shape, w_shape, stride, padding, output_padding)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_the_cotangents_columns_pay_for_kernels_twice_an_even_stride():
    from funclayers._kernels._conv_transpose_lowering import _columns_pay

    f32, f64 = jnp.float32, jnp.float64
    assert _columns_pay((16, 64, 16, 16), (64, 32, 4, 4), (2, 2), 1, f32)  # the benchmark row
    assert _columns_pay((2, 3, 4, 5), (3, 2, 4, 8), (2, 4), 1, f64)
    assert _columns_pay((16, 64, 256), (64, 32, 4), (2,), 1, f32)
    # other kernels that are multiples of the stride measured faster per tap
    assert not _columns_pay((2, 3, 4, 5), (3, 2, 4, 6), (2, 3), 1, f64)  # k6 s3
    assert not _columns_pay((16, 64, 16, 16), (64, 32, 6, 6), (2, 2), 1, f32)  # k6 s2
    assert not _columns_pay((16, 64, 16, 16), (64, 32, 3, 3), (1, 1), 1, f32)  # k3 s1
    assert not _columns_pay((16, 64, 16, 16), (64, 32, 5, 5), (1, 1), 1, f32)  # k5 s1
    assert not _columns_pay((8, 64, 32, 32), (64, 32, 3, 3), (2, 2), 1, f32)  # k3 s2: not a multiple
    assert not _columns_pay((16, 64, 16, 16), (64, 16, 4, 4), (2, 2), 2, f32)  # grouped
    # 32 MB of columns at most: (64 * 32 * 32 positions, 64 * 16) float32 columns are 256 MB
    assert not _columns_pay((64, 128, 32, 32), (128, 64, 4, 4), (2, 2), 1, f32)
    assert _columns_pay((8, 128, 32, 32), (128, 64, 4, 4), (2, 2), 1, f32)  # 32 MB
    assert not _columns_pay((8, 128, 32, 32), (128, 64, 4, 4), (2, 2), 1, f64)


def test_shift_fence_is_exact_at_the_dtype_extremes(dtype):
    """The "shift" forward ends in a `reduce_precision` fence (a fusion boundary); with the dtype's
    own exponent and mantissa bits it changes no value: a centre-tap kernel returns its input bit
    for bit, the largest normal and 1 + eps values included (a float32 fence on float64 would make
    inf and 1 of them). Subnormals are left out: XLA CPU flushes them in the tap sum, fence or not."""
    info = np.finfo(dtype)
    values = np.array([info.max / 4, -info.max / 4, info.tiny, -info.tiny, 1 + info.eps, 1 - info.epsneg], dtype)
    x = np.resize(values, (1, 2, 3, 4)).astype(dtype)
    w = np.zeros((2, 1, 3, 3), dtype)
    w[:, :, 1, 1] = 1
    out = jax.jit(lambda x, w: lowering.conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), 2, method="shift"))(x, w)
    assert out.dtype == dtype
    np.testing.assert_array_equal(np.asarray(out), x)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the fence is about XLA CPU's YNNPACK fusion")
def test_shift_step_scratch_stays_near_one_activation():
    """A training step `sum(conv(x) * ct)` through the "shift" lowering: the fence keeps XLA CPU from
    fusing the taps into the loss reduction, which materialised every shifted slice and every
    weight broadcast: scratch 16 activations without the fence; with it ~9 under XLA's default CPU
    scheduler (the weight gradient's 8 shifted slices live together; the backend starts in conftest
    before funclayers can pick a scheduler) and ~1.1 under the memory-optimised one funclayers picks
    when imported first."""
    x = jnp.asarray(randn(4, 32, 32, 32, dtype=np.float32, seed=1))
    w = jnp.asarray(randn(32, 1, 3, 3, dtype=np.float32, seed=2))

    def step(x, w, ct):
        def loss(x, w):
            return jnp.sum(lowering.conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), 32, method="shift") * ct)

        return jax.value_and_grad(loss, argnums=(0, 1))(x, w)

    analysis = jax.jit(step).lower(x, w, x).compile().memory_analysis()
    if analysis is None:
        pytest.skip("no memory analysis on this backend")
    assert analysis.temp_size_in_bytes <= 12 * x.nbytes


def test_depth_dispatch_sends_stacked_winograd_convolutions_to_conv3d(monkeypatch):
    """A dense (kd, 3, 3) stride-1 3-D convolution whose stacked 2-D convolution would be Winograd's
    (the benchmark's Conv3d(16, 32, 3, padding=1)) goes to `_conv3d.conv3d`; a grouped one, a strided
    one and one with a 2x2 plane kernel keep the 2-D dispatch."""
    from funclayers._kernels import _conv3d

    calls = []
    real = _conv3d.conv3d
    monkeypatch.setattr(_conv3d, "conv3d", lambda x, w, padding: calls.append(x.shape) or real(x, w, padding))

    def run(x_shape, w_shape, stride=(1, 1, 1), groups=1):
        x, w = jax.ShapeDtypeStruct(x_shape, jnp.float32), jax.ShapeDtypeStruct(w_shape, jnp.float32)
        jax.eval_shape(lambda x, w: lowering.conv(x, w, stride, ((1, 1),) * 3, (1, 1, 1), groups, method="depth"), x, w)

    run((4, 16, 16, 32, 32), (32, 16, 3, 3, 3))
    assert calls == [(4, 16, 16, 32, 32)]
    run((4, 16, 16, 32, 32), (32, 8, 3, 3, 3), groups=2)
    run((4, 16, 16, 32, 32), (32, 16, 3, 3, 3), stride=(1, 2, 2))
    run((4, 16, 16, 32, 32), (32, 16, 3, 2, 2))
    assert calls == [(4, 16, 16, 32, 32)]


def test_conv3d_output_transform_is_winograds_and_one_pass():
    """`_conv3d._transform_output` (elementwise A^T m A, fused with the interleave) equals
    `_winograd`'s (4, 16) product form in float64, and the benchmark's forward compiles to no
    product on m's (16, K*P) rows."""
    from funclayers._kernels import _conv3d, _winograd

    with jax.enable_x64(True):
        m = jnp.asarray(np.random.default_rng(0).standard_normal((16, 3, 2 * 4 * 5 * 6)))
        got = _conv3d._transform_output(m, 2, 4, (5, 6))
        o = (jnp.asarray(_winograd._A_A) @ m.reshape(16, -1)).reshape(2, 2, 3, 2, 4, 5, 6)
        want = o.transpose(3, 2, 4, 5, 0, 6, 1).reshape(2, 3, 4, 10, 12)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-13, atol=1e-13)
    x, w = jnp.zeros((4, 16, 16, 32, 32)), jnp.zeros((32, 16, 3, 3, 3))
    hlo = jax.jit(lambda x, w: _conv3d.conv3d(x, w, ((1, 1),) * 3)).lower(x, w).compile().as_text()
    assert "f32[4,524288]" not in hlo  # the (4, 16) x (16, K*P) product's output


def test_grouped_winograd_forward_products_are_xlas_multithreaded_dot():
    """The groups of a grouped Winograd convolution ("split") run their forward products contracting
    both operands' axis 1 (the transformed weights transposed behind an optimization barrier,
    `_winograd._products_spread`), which XLA:CPU runs as its Eigen batched dot over the cores; a
    dense one keeps the canonical (16, K, C) x (16, C, P) product (YNNPACK's, one thread)."""
    from funclayers._kernels import _conv_lowering

    spread = "lhs_contracting_dims={1}, rhs_batch_dims={0}, rhs_contracting_dims={1}"
    canonical = "lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={1}"

    def products(x_shape, w_shape, groups):
        x, w = jnp.zeros(x_shape), jnp.zeros(w_shape)
        run = jax.jit(lambda x, w: _conv_lowering.conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), groups))
        lines = run.lower(x, w).compile().as_text().splitlines()
        return [line for line in lines if f"= f32[16,{w_shape[0] // groups},1568]" in line and " dot(" in line]

    grouped = products((8, 128, 28, 28), (128, 32, 3, 3), 4)  # the groups=4 row: "split", Winograd per group
    assert len(grouped) == 4 and all(spread in line for line in grouped)
    dense = products((8, 32, 28, 28), (32, 32, 3, 3), 1)
    assert len(dense) == 1 and canonical in dense[0]
