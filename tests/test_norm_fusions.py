"""The compiled forward + backward of LayerNorm, GroupNorm and training BatchNorm writes no full-size temporary.

At the benchmark shapes (benchmarks/workloads/normalization.py), the only full-size array that
`value_and_grad(sum(norm(x) * ct))` computes on XLA:CPU is the input gradient: every other pass
is a reduction that reads `x` and `ct`. Without the views the kernels give their backward passes
(`_kernels/_norm.py`, `_kernels/_layernorm.py`; LayerNorm with odd rows or a 2-D input: copies of
its statistics behind barriers instead; GroupNorm: its forward's broadcasts on the caller's
shape), XLA's CSE merges a broadcast or `x - mean` of the forward with the
backward's and writes it out at full size (issue 28: 15-26% of the step's CPU time for GroupNorm
and BatchNorm). Lowered from shapes alone; nothing runs.
"""

import math
import re

import jax
import jax.numpy as jnp
import pytest

import funclayers as fl

_NOT_COMPUTED = ("parameter", "bitcast", "tuple", "get-tuple-element", "constant")


def full_size_instructions(hlo_text: str, size: int) -> list[str]:
    """Names of the ENTRY computation's instructions that compute an array of `size` elements."""
    entry = hlo_text[hlo_text.index("\nENTRY"):]
    names = []
    for line in entry.splitlines():
        match = re.match(r"\s+%(\S+) = \w+\[([\d,]*)\]\S* ([\w-]+)\(", line)
        if match and match.group(3) not in _NOT_COMPUTED:
            if math.prod(int(d) for d in match.group(2).split(",") if d) == size:
                names.append(match.group(1))
    return names


def _compiled_step(layer, shape, training):
    params, state = layer.init(jax.random.PRNGKey(0))

    def loss(params, x, ct):
        out, new_state = layer.apply(params, state, x, training=training)
        return jnp.sum(out * ct), new_state

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    with jax.default_device(jax.devices("cpu")[0]):
        return step.lower(params, x, x).compile().as_text()


@pytest.mark.parametrize("name,make,shape,training", [
    pytest.param("LayerNorm", lambda: fl.LayerNorm(512), (32, 128, 512), False, id="layernorm-512"),
    # odd rows, and a 2-D input: LayerNorm's copies of the statistics behind barriers (no views)
    pytest.param("LayerNorm", lambda: fl.LayerNorm(512), (31, 133, 512), False, id="layernorm-odd-rows"),
    pytest.param("LayerNorm", lambda: fl.LayerNorm(512), (4096, 512), False, id="layernorm-2d"),
    # below 4096 rows XLA:CPU keeps the input gradient out of the YNNPACK fusions: the backward's row
    # sums then need copies of the mean and weight of their own, else `dy * w` and `x - mean` are
    # written out (3 full-size arrays, issue 28 `ln2`); (16, 128, 256) is the LayerNorm of the
    # benchmark's TransformerEncoderLayer(256, ...)
    pytest.param("LayerNorm", lambda: fl.LayerNorm(256), (16, 128, 256), False, id="layernorm-256"),
    pytest.param("LayerNorm", lambda: fl.LayerNorm(256), (2048, 256), False, id="layernorm-256-2d"),
    pytest.param("LayerNorm", lambda: fl.LayerNorm(512), (4095, 512), False, id="layernorm-4095-rows"),
    pytest.param("LayerNorm", lambda: fl.LayerNorm(256, elementwise_affine=False), (16, 128, 256), False,
                 id="layernorm-256-no-affine"),
    pytest.param("GroupNorm", lambda: fl.GroupNorm(8, 64), (16, 64, 32, 32), False, id="groupnorm-8-64"),
    # an odd spatial size, one spatial dim: the backward has no views; the forward's broadcasts are
    # built otherwise (per-channel products reshaped to (N, C, 1, ...)) and not shared with it
    pytest.param("GroupNorm", lambda: fl.GroupNorm(8, 64), (16, 64, 31, 33), False, id="groupnorm-odd-length"),
    pytest.param("GroupNorm", lambda: fl.GroupNorm(8, 64), (16, 64, 1024), False, id="groupnorm-1d"),
    pytest.param("BatchNorm2d", lambda: fl.BatchNorm2d(32), (64, 32, 32, 32), True, id="batchnorm2d-32-train"),
    pytest.param("BatchNorm2d", lambda: fl.BatchNorm2d(64), (64, 64, 16, 16), True, id="batchnorm2d-64-train"),
    # an odd spatial size: BatchNorm's backward splits the batch instead
    pytest.param("BatchNorm2d", lambda: fl.BatchNorm2d(32), (64, 32, 31, 33), True, id="batchnorm2d-odd-spatial"),
    # odd batch and spatial sizes: no split (gcd with 8 is 1), but the backward's (N, C, prod(S)) view
    # is still not the forward's shape (the kernel's known limit until issue 28's `bn3`)
    pytest.param("BatchNorm2d", lambda: fl.BatchNorm2d(32), (63, 32, 31, 33), True,
                 id="batchnorm2d-odd-batch-and-spatial"),
])
def test_only_the_input_gradient_is_written_at_full_size(name, make, shape, training):
    names = full_size_instructions(_compiled_step(make(), shape, training), math.prod(shape))
    assert len(names) == 1, f"{name} {shape}: full-size instructions {names}, expected the input gradient alone"


def reshaped_inside_fusions(hlo_text: str, size: int) -> list[str]:
    """Bitcasts of `size` elements that the fused computations apply to a value they computed (not to
    one of their parameters) and then read on: a full-size array computed in one shape, read in another."""
    names = []
    for body in re.split(r"\n(?=%\S+ \()", hlo_text[:hlo_text.index("\nENTRY")]):
        params = set(re.findall(r"%(\S+) = \S+ parameter\(", body))
        for match in re.finditer(r"\n  %(\S+) = \w+\[([\d,]*)\]\S* bitcast\(%([^)\s]+)\)", body):
            if match.group(3) not in params and math.prod(int(d) for d in match.group(2).split(",") if d) == size:
                names.append(match.group(1))
    return names


@pytest.mark.parametrize("shape", [(32, 128, 512), (8, 4, 128, 512), (4096, 512)])
def test_layernorm_output_is_computed_in_the_callers_shape(shape):
    """F.layer_norm hands the kernel `(*lead, n)`, not the flattened rows: the output is computed in the
    shape its consumer (here the loss's product with `ct`) reads, with no reshape inside the fusion
    (computed on a `(rows/2, 2, n)` view and reshaped: step CPU time 8.0 against 7.0 ms, issue 28)."""
    hlo = _compiled_step(fl.LayerNorm(512), shape, False)
    assert reshaped_inside_fusions(hlo, math.prod(shape)) == []


@pytest.mark.parametrize("shape", [(16, 64, 32, 32), (16, 64, 31, 33), (4, 16, 8, 8, 8)])
def test_groupnorm_output_is_computed_in_the_callers_shape(shape):
    """F.group_norm hands the kernel `(N, C, *S)`, not `(N, C, prod(S))`: the output is computed in the
    shape the loss's product with `ct` reads (reshaped inside that fusion, YNNPACK's full reduction of
    it ran 26% slower in a micro-benchmark, issue 28)."""
    hlo = _compiled_step(fl.GroupNorm(8, 64) if shape[1] == 64 else fl.GroupNorm(4, 16), shape, False)
    assert reshaped_inside_fusions(hlo, math.prod(shape)) == []


def test_groupnorm_bias_gradient_is_summed_from_the_per_channel_sums():
    """The bias gradient adds up the backward's (N, C) sums of dy: XLA would fold `sum(sum(dy, -1), 0)`
    into one more full-size pass over dy (a (C,) result read from a full-size operand)."""
    shape = (16, 64, 32, 32)
    hlo = _compiled_step(fl.GroupNorm(8, 64), shape, False)
    entry = hlo[hlo.index("\nENTRY"):]
    full = {m.group(1) for m in re.finditer(r"\n  %(\S+) = f32\[16,64,32,32\]\S* parameter\(", entry)}
    reads = [m.group(1) for m in re.finditer(r"\n  %(\S+) = f32\[64\]\S* fusion\(([^)]*)\)", entry)
             if full & {a.strip().lstrip("%") for a in m.group(2).split(",")}]
    assert len(full) == 2 and reads == [], reads


def test_batchnorm_in_a_layout_run_reads_the_convolution_output_in_its_own_shape():
    """In a Sequential's Winograd run (`_layout.py`) BatchNorm2d computes on the (2, 2, C, N, H/2, W/2)
    phase value itself, not on its (4, C, N*H*W/4) view: with the view, the statistics read the
    convolution's output in both shapes and XLA wrote it out twice (issue 28, small CNN step)."""
    net = fl.Sequential(fl.Conv2d(32, 32, 3, padding=1), fl.BatchNorm2d(32), fl.ReLU(),
                        fl.Conv2d(32, 32, 3, padding=1))
    shape = (16, 32, 16, 16)
    hlo = _compiled_step(net, shape, True)
    full = full_size_instructions(hlo, math.prod(shape))
    assert any(f"%{name} = f32[2,2,32,16,8,8]" in hlo for name in full), "the layout run was not taken"
    views = [name for name in full if f"%{name} = f32[4,32,1024]" in hlo]
    assert views == [], views


def computed_twice(hlo_text: str, size: int) -> list[tuple[str, str]]:
    """Pairs of the ENTRY computation's `size`-element fusions that compute from the same operands:
    one value written out twice (in two shapes, for two consumers)."""
    entry = hlo_text[hlo_text.index("\nENTRY"):]
    seen, pairs = {}, []
    for match in re.finditer(r"\n  %(\S+) = \w+\[([\d,]*)\]\S* fusion\(([^)]*)\), kind=kLoop", entry):
        if math.prod(int(d) for d in match.group(2).split(",") if d) == size:
            operands = match.group(3)
            if operands in seen:
                pairs.append((seen[operands], match.group(1)))
            seen.setdefault(operands, match.group(1))
    return pairs


@pytest.mark.parametrize("channels", [32, 64])
def test_batchnorm_input_gradient_in_a_layout_run_is_computed_once(channels):
    """In a layout run, the input gradient of a BatchNorm2d after a biased Conv2d feeds the convolution's
    bias gradient and its output transform's transposed product (`_winograd._output_phase`). With the
    bias gradient summed from the gradient itself, XLA computed it twice, in the (4, K*N*H*W/4) shape
    the product reads and in another shape for the sum: one more full-size pass per BatchNorm
    (issue 28, small CNN step); it is summed from row 5 of the product's output instead."""
    net = fl.Sequential(fl.Conv2d(32, channels, 3, padding=1), fl.BatchNorm2d(channels), fl.ReLU(),
                        fl.Conv2d(channels, 32, 3, padding=1))
    shape = (16, 32, 16, 16)
    hlo = _compiled_step(net, shape, True)
    size = math.prod(shape) * channels // 32
    assert any(f"%{name} = f32[2,2,{channels},16,8,8]" in hlo for name in full_size_instructions(hlo, size)), \
        "the layout run was not taken"
    assert computed_twice(hlo, size) == []
