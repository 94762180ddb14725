"""`rankconv.ops.conv` and `conv_general` against the float64 loop reference, and their VJPs
against finite differences (float64)."""

import contextlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import rankconv.ops.col2im as col2im
import rankconv.ops.conv_common as conv_common
import rankconv.ops.direct_conv as direct_conv
import rankconv.ops.im2col as im2col
import rankconv.ops.implicit_gemm as implicit_gemm
import rankconv.ops.jit as jit
from rankconv.ops import conv, conv_general, conv_general_vjp, conv_vjp, planner

from reference import reference_conv

# Every algorithm the planner can pick, forced in turn, plus the knobs that switch between the
# implicit GEMM's code paths (innermost-axis unfolding, tap gathering, batch chunking): every
# path must match the reference. Forcing an algorithm on a call it cannot compute must raise.
ALGORITHMS = {
    "planner": (None, {}),
    "planner/jit-off": (None, {jit: {"_enabled": False}}),
    "planner/measure": (None, {planner: {"_planning": "measure"}}),
    "depthwise_kernel": ("depthwise_kernel", {}),
    "depthwise_kernel/one-thread": ("depthwise_kernel", {conv_common: {"THREADS": 1}}),
    "direct_kernel": ("direct_kernel", {}),
    "direct_kernel/one-thread": ("direct_kernel", {conv_common: {"THREADS": 1}}),
    "implicit_gemm": ("implicit_gemm", {}),
    "implicit_gemm/no-unfold-no-gather": (
        "implicit_gemm",
        {implicit_gemm: {"UNFOLD_DEPTH": 0, "GATHER_DEPTH": 1, "WIDE_GATHER_DEPTH": 1}},
    ),
    "implicit_gemm/gather-everything": (
        "implicit_gemm",
        {implicit_gemm: {"UNFOLD_DEPTH": 0, "GATHER_DEPTH": 10**6, "WIDE_GATHER_DEPTH": 10**6}},
    ),
    "implicit_gemm/one-sample-chunks-small-blocks": (
        "implicit_gemm",
        {conv_common: {"WORKSPACE_BYTES": 1}, implicit_gemm: {"BLOCK_ROWS": 7}},
    ),
    "im2col": ("im2col", {}),
    "im2col/tiny-blocks": ("im2col", {im2col: {"BLOCK_BYTES": 1}}),
    "im2col/one-thread": ("im2col", {conv_common: {"THREADS": 1}}),
    "im2col/split": ("im2col", {im2col: {"SPLIT_FIRST_AXIS": True}}),
    "im2col/split-tiny-blocks": ("im2col", {im2col: {"SPLIT_FIRST_AXIS": True, "BLOCK_BYTES": 1}}),
    "im2col/no-split": ("im2col", {im2col: {"SPLIT_FIRST_AXIS": False}}),
    "fft": ("fft", {}),
    "fft/one-sample-chunks": ("fft", {conv_common: {"WORKSPACE_BYTES": 1}}),
    "direct": ("direct", {}),
    "direct/one-sample-chunks": ("direct", {direct_conv: {"CHUNK_BYTES": 1}}),
    "pointwise": ("pointwise", {}),
    "col2im": ("col2im", {}),
    # compiled: slabs of one input row (mid-sample with rank 3); NumPy: one sample per block
    "col2im/smallest-blocks": ("col2im", {conv_common: {"WORKSPACE_BYTES": 1}}),
    # three threads' runs of rows rarely end on a sample's last row: runs start and stop mid-sample
    "col2im/three-threads-one-row-slabs": ("col2im", {conv_common: {"THREADS": 3}, col2im: {"BLOCK_BYTES": 1}}),
}


COMPILED = ("depthwise_kernel", "direct_kernel")


@contextlib.contextmanager
def use_algorithm(name):
    forced, knobs = ALGORITHMS[name]
    if forced in COMPILED and not jit.enabled():  # RANKCONV_JIT=0 (the CI's fallback run) or no numba
        pytest.skip(f"{forced}: {jit.unavailable_reason()}")
    saved = {(module, knob): getattr(module, knob) for module, values in knobs.items() for knob in values}
    for module, values in knobs.items():
        for knob, value in values.items():
            setattr(module, knob, value)
    try:
        with planner.conv_algorithm(forced):
            yield
    finally:
        for (module, knob), value in saved.items():
            setattr(module, knob, value)


def run_with(algorithm, test, *args):
    """Run `test(*args)` with `algorithm` forced; a forced algorithm that cannot compute the call
    must refuse it with a ValueError saying so (the planner itself never refuses)."""
    forced = ALGORITHMS[algorithm][0]
    with use_algorithm(algorithm):
        try:
            test(*args)
        except ValueError as error:
            if forced is None or f"forced convolution algorithm {forced!r} cannot compute" not in str(error):
                raise


every_algorithm = pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))


@st.composite
def conv_configs(draw, ranks=(1, 2, 3, 4), input_dilation="never", kind="any"):
    """A random convolution: rank, shapes, strides, dilation, groups, padding, data format.

    kind "pointwise": 1×…×1 kernels on unpadded inputs; "depthwise": one input channel per group."""
    rank = draw(st.sampled_from(ranks))
    small = rank >= 3
    kernel = tuple(draw(st.integers(1, 1 if kind == "pointwise" else 2 if small else 4)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 1 if small else 3)) for _ in range(rank))
    strides = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(rank))
    groups = draw(st.sampled_from([1, 2, 3, 5] if kind == "depthwise" else [1, 1, 2, 3]))
    channels = groups * (1 if kind == "depthwise" else draw(st.integers(1, 3)))
    filters = groups * draw(st.integers(1, 3))
    # input dilation exists only in conv_general, which takes explicit padding and channels-last data
    dilate_input = input_dilation == "always" or (input_dilation == "sometimes" and draw(st.booleans()))
    paddings = ["valid", "same"] if kind == "pointwise" else ["valid", "same", "causal", "explicit"]
    padding = "explicit" if dilate_input else draw(st.sampled_from(paddings))
    if padding == "explicit":
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
    lhs = tuple(draw(st.integers(1, 2)) for _ in range(rank)) if dilate_input else (1,) * rank
    # spatial sizes from "barely larger than the kernel" upwards
    spatial = []
    for k, d, f in zip(kernel, dilation, lhs):
        span = d * (k - 1) + 1
        minimum = -(-(span + f - 1) // f) if padding in ("valid",) or isinstance(padding, tuple) else 1
        spatial.append(draw(st.integers(max(minimum, 1), max(minimum, 1) + (2 if small else 5))))
    batch = draw(st.integers(1, 2))
    data_format = "channels_last" if dilate_input else draw(st.sampled_from(["channels_last", "channels_first"]))
    return dict(
        rank=rank,
        x_shape=(batch, *spatial, channels),
        kernel_shape=(*kernel, channels // groups, filters),
        strides=strides,
        dilation=dilation,
        padding=padding,
        data_format=data_format,
        lhs_dilation=lhs,
    )


def _arrays(config, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["x_shape"]).astype(dtype)
    w = rng.standard_normal(config["kernel_shape"]).astype(dtype)
    if config["data_format"] == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    return x, w


def _fits(config):
    """Whether the padded input is at least as large as the kernel's span (else an error is right)."""
    from reference import reference_padding

    spatial = config["x_shape"][1:-1]
    for n, k, s, d, f, i in zip(
        spatial, config["kernel_shape"], config["strides"], config["dilation"], config["lhs_dilation"], range(99)
    ):
        pad = config["padding"][i] if isinstance(config["padding"], tuple) else config["padding"]
        lo, hi = reference_padding((n - 1) * f + 1, k, s, d, pad)
        if (n - 1) * f + 1 + lo + hi < d * (k - 1) + 1:
            return False
    return True


@every_algorithm
@settings(max_examples=200)
@given(config=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_matches_reference(algorithm, config, seed):
    run_with(algorithm, _test_conv_matches_reference, config, seed)


def _test_conv_matches_reference(config, seed):
    x, w = _arrays(config, seed)
    args = (config["strides"], config["padding"], config["data_format"], config["dilation"])
    if not _fits(config):
        with pytest.raises(ValueError, match="larger than"):
            conv(x, w, *args)
        return
    expected = reference_conv(x, w, config["strides"], config["padding"], config["dilation"], config["data_format"])
    got = conv(x, w, *args)
    assert got.dtype == np.float64
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@given(config=conv_configs(ranks=(1, 2, 3)), seed=st.integers(0, 2**16))
def test_conv_float32_stays_float32(config, seed):
    assume(_fits(config))
    x, w = _arrays(config, seed, np.float32)
    args = (config["strides"], config["padding"], config["data_format"], config["dilation"])
    got = conv(x, w, *args)
    assert got.dtype == np.float32
    expected = reference_conv(x, w, config["strides"], config["padding"], config["dilation"], config["data_format"])
    scale = max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(got, expected, atol=1e-5 * scale)


@every_algorithm
@given(config=conv_configs(ranks=(1, 2, 3), input_dilation="always"), seed=st.integers(0, 2**16))
def test_conv_general_with_input_dilation_matches_reference(algorithm, config, seed):
    run_with(algorithm, _test_conv_general_with_input_dilation_matches_reference, config, seed)


def _test_conv_general_with_input_dilation_matches_reference(config, seed):
    assume(_fits(config))
    x, w = _arrays(config, seed)
    got = conv_general(x, w, config["strides"], config["padding"], config["lhs_dilation"], config["dilation"])
    expected = reference_conv(
        x, w, config["strides"], config["padding"], config["dilation"], lhs_dilation=config["lhs_dilation"]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def _directional_check(f, vjp_value, point, rng, eps=1e-6):
    """<vjp, v> must equal the derivative of f along a random direction v (central differences)."""
    direction = rng.standard_normal(point.shape)
    numeric = (f(point + eps * direction) - f(point - eps * direction)) / (2 * eps)
    analytic = float(np.sum(vjp_value * direction))
    assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-6)


@every_algorithm
@settings(max_examples=200)
@given(config=conv_configs(ranks=(1, 2, 3, 4), input_dilation="sometimes"), seed=st.integers(0, 2**16))
def test_vjp_matches_finite_differences(algorithm, config, seed):
    run_with(algorithm, _test_vjp_matches_finite_differences, config, seed)


def _test_vjp_matches_finite_differences(config, seed):
    assume(_fits(config))
    rng = np.random.default_rng(seed + 1)
    x, w = _arrays(config, seed)
    if any(f > 1 for f in config["lhs_dilation"]):
        args = (config["strides"], config["padding"], config["lhs_dilation"], config["dilation"])
        forward, vjp = conv_general, conv_general_vjp
    else:
        args = (config["strides"], config["padding"], config["data_format"], config["dilation"])
        forward, vjp = conv, conv_vjp
    y = forward(x, w, *args)
    g = rng.standard_normal(y.shape)
    dx, dw = vjp(g, x, w, *args)
    assert dx.shape == x.shape and dw.shape == w.shape
    _directional_check(lambda xx: float(np.sum(forward(xx, w, *args) * g)), dx, x, rng)
    _directional_check(lambda ww: float(np.sum(forward(x, ww, *args) * g)), dw, w, rng)


@every_algorithm
@settings(max_examples=40)
@given(config=conv_configs(ranks=(1, 2, 3), input_dilation="sometimes"), seed=st.integers(0, 2**16))
def test_vjp_computes_only_the_wanted_gradients(algorithm, config, seed):
    run_with(algorithm, _test_vjp_computes_only_the_wanted_gradients, config, seed)


def _test_vjp_computes_only_the_wanted_gradients(config, seed):
    # a first layer needs no input gradient, a frozen one no kernel gradient: each alone must equal
    # its half of the full VJP
    assume(_fits(config))
    x, w = _arrays(config, seed)
    if any(f > 1 for f in config["lhs_dilation"]):
        args = (config["strides"], config["padding"], config["lhs_dilation"], config["dilation"])
        forward, vjp = conv_general, conv_general_vjp
    else:
        args = (config["strides"], config["padding"], config["data_format"], config["dilation"])
        forward, vjp = conv, conv_vjp
    g = np.random.default_rng(seed).standard_normal(forward(x, w, *args).shape)
    dx, dw = vjp(g, x, w, *args)
    only_dx, none = vjp(g, x, w, *args, wanted=(True, False))
    none_too, only_dw = vjp(g, x, w, *args, wanted=(False, True))
    assert none is None and none_too is None
    np.testing.assert_allclose(only_dx, dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(only_dw, dw, rtol=1e-12, atol=1e-12)


def test_a_first_layer_never_computes_its_input_gradient(monkeypatch):
    # the tape passes `wanted` down: with the input a plain array, the planner is asked for the
    # kernel gradient alone
    asked = []
    original = planner.vjp

    def spy(grad, x, kernel, call, wanted=(True, True)):
        asked.append(tuple(wanted))
        return original(grad, x, kernel, call, wanted)

    monkeypatch.setattr(planner, "vjp", spy)
    from rankconv import ops

    x = np.ones((2, 6, 3))
    w = ops.Variable(np.ones((3, 3, 4)), "kernel")
    b = ops.Variable(np.zeros(4), "bias")
    with ops.GradientTape([w, b]) as tape:
        loss = ops.sum(ops.fused_conv(ops.conv(x, w), np.ones((3, 4, 2)), None, "relu"))
        loss = ops.add(loss, ops.sum(b))
        loss = ops.add(loss, ops.sum(ops.conv(x, w)))
    tape.gradient(loss)
    assert asked.count((False, True)) == 2  # both convolutions of x: kernel gradient only
    assert (True, False) in asked  # the second convolution of a traced input with a constant kernel


# Shapes large enough for the compiled kernels' register blocks (16 channels or filters times 4
# outputs along the last axis; depthwise also 64 or 16 channels of one cell at a padded line's
# ends), with channels, filters and outputs left over beside the blocks, padding, strides and
# dilations, lines shorter than the kernel: the blocks and the cell-by-cell remainder must agree
# with the reference everywhere.
BLOCKED_CASES = [
    # (algorithm, x shape, kernel shape, strides, dilation, padding)
    ("depthwise_kernel", (2, 4, 29, 35), (3, 3, 1, 35), 1, 1, "same"),
    ("depthwise_kernel", (2, 5, 40, 32), (5, 5, 1, 32), (1, 2), (1, 2), "same"),
    ("depthwise_kernel", (3, 45, 16), (4, 1, 16), 1, 3, "causal"),
    ("depthwise_kernel", (1, 3, 4, 23, 17), (2, 2, 3, 1, 17), 1, 1, "valid"),
    ("depthwise_kernel", (2, 6, 21, 83), (3, 3, 1, 83), 1, 1, "same"),  # 64 wide + 16 + 3 channels
    ("depthwise_kernel", (2, 7, 19, 83), (5, 5, 1, 83), 2, 1, "same"),
    ("depthwise_kernel", (2, 5, 13, 64), (3, 3, 1, 64), 1, (1, 3), "same"),
    ("depthwise_kernel", (2, 6, 2, 80), (3, 5, 1, 80), 1, 1, "same"),  # every cell an edge cell
    ("depthwise_kernel", (1, 9, 17, 128), (3, 3, 1, 128), 2, 1, "valid"),
    ("direct_kernel", (3, 12, 30, 1), (3, 3, 1, 37), 1, 1, "valid"),
    ("direct_kernel", (2, 9, 27, 3), (3, 3, 3, 32), 2, 1, "same"),
    ("direct_kernel", (2, 7, 33, 4), (2, 3, 2, 34), 1, (2, 2), "same"),  # 2 groups of 17 filters
    ("direct_kernel", (2, 50, 5), (3, 5, 16), 1, 1, "causal"),
    ("direct_kernel", (1, 3, 4, 20, 2), (2, 2, 3, 2, 16), 1, 1, "same"),
]


@pytest.mark.parametrize("algorithm, x_shape, kernel_shape, strides, dilation, padding", BLOCKED_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_register_blocks_match_reference(algorithm, x_shape, kernel_shape, strides, dilation, padding, dtype):
    with use_algorithm(algorithm):
        rng = np.random.default_rng(sum(x_shape) + sum(kernel_shape))
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(kernel_shape).astype(dtype)
        got = conv(x, w, strides, padding, dilation_rate=dilation)
        want = reference_conv(x, w, strides, padding, dilation)
        assert got.dtype == dtype
        tolerance = 1e-4 if dtype == np.float32 else 1e-11
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)


# Depthwise input gradients that run as the forward kernel on the flipped kernel (depth multiplier
# 1, stride 1: `compiled_conv._flipped_geometry`) and ones that do not (a stride, a multiplier, a low
# padding beyond the kernel's reach): each must be the forward pass's adjoint, <conv(x), g> =
# <x, dx(g)>, checked in float64 against the loop reference's forward.
DEPTHWISE_GRADIENT_CASES = [
    # (x shape, kernel shape, strides, dilation, padding)
    ((2, 6, 21, 83), (3, 3, 1, 83), 1, 1, "same"),
    ((2, 7, 19, 35), (5, 5, 1, 35), 1, 1, "same"),
    ((2, 5, 13, 64), (3, 3, 1, 64), 1, (1, 3), "same"),
    ((3, 45, 16), (4, 1, 16), 1, 3, "causal"),
    ((1, 3, 4, 23, 17), (2, 2, 3, 1, 17), 1, 1, "valid"),
    ((2, 6, 2, 80), (3, 5, 1, 80), 1, 1, "same"),
    ((2, 9, 17, 32), (3, 3, 1, 32), 1, 1, ((0, 2), (1, 0))),
    ((2, 9, 17, 32), (3, 3, 1, 32), 1, 1, ((3, 0), (1, 1))),  # low padding past the kernel: the gather
    ((2, 9, 17, 32), (3, 3, 1, 32), 2, 1, "same"),  # strided: the gather
    ((2, 9, 17, 16), (3, 3, 1, 32), 1, 1, "same"),  # depth multiplier 2: the gather
]


def _check_depthwise_gradient_is_the_forward_adjoint(x_shape, kernel_shape, strides, dilation, padding, seed, wanted):
    """<probe, d_input> = <g, conv(probe, w)> (wanted (True, False)) or <probe, d_kernel> = <g,
    conv(x, probe)> (wanted (False, True)), the compiled depthwise gradient against the float64
    loop reference's forward pass."""
    if not jit.enabled():
        pytest.skip(f"depthwise_kernel: {jit.unavailable_reason()}")
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(kernel_shape)
    g = rng.standard_normal(reference_conv(x, w, strides, padding, dilation).shape)
    probe = rng.standard_normal(x_shape if wanted[0] else kernel_shape)
    with use_algorithm("depthwise_kernel"):
        dx, dw = conv_vjp(g, x, w, strides, padding, dilation_rate=dilation, wanted=wanted)
    got, inputs = (dx, (probe, w)) if wanted[0] else (dw, (x, probe))
    assert got.shape == probe.shape
    expected = np.sum(g * reference_conv(*inputs, strides, padding, dilation))
    np.testing.assert_allclose(np.sum(probe * got), expected, rtol=1e-10)


@pytest.mark.parametrize("x_shape, kernel_shape, strides, dilation, padding", DEPTHWISE_GRADIENT_CASES)
def test_depthwise_input_gradient_is_the_forward_adjoint(x_shape, kernel_shape, strides, dilation, padding):
    _check_depthwise_gradient_is_the_forward_adjoint(
        x_shape, kernel_shape, strides, dilation, padding, sum(x_shape), (True, False)
    )


DEPTHWISE_KERNEL_GRADIENT_CASES = [
    # (x shape, kernel shape, strides, dilation, padding): the last kernel axis in blocks of 3, 2, 1 taps
    ((2, 6, 21, 83), (3, 3, 1, 83), 1, 1, "same"),  # 3 taps; 83 = 5 blocks of 16 + 3 channels
    ((2, 7, 19, 35), (5, 5, 1, 35), 1, 1, "same"),  # 3 + 2
    ((2, 5, 23, 32), (2, 7, 1, 32), 1, 1, "valid"),  # 3 + 2 + 2
    ((2, 5, 17, 16), (3, 2, 1, 16), 1, 1, "same"),  # 2
    ((2, 5, 13, 48), (3, 1, 1, 48), 1, 1, "same"),  # 1
    ((2, 5, 17, 16), (2, 4, 1, 16), 1, 1, "valid"),  # 2 + 2
    ((2, 9, 25, 32), (3, 3, 1, 32), 2, (1, 2), "same"),  # strided, dilated
    ((2, 9, 17, 32), (3, 3, 1, 32), 1, 1, ((3, 0), (4, 1))),  # low padding past the kernel: no interior
    ((3, 45, 16), (4, 1, 16), 1, 3, "causal"),
    ((1, 3, 4, 23, 17), (2, 2, 3, 1, 17), 1, 1, "valid"),
    ((2, 9, 17, 16), (3, 3, 1, 32), 1, 1, "same"),  # depth multiplier 2: one product at a time
]


@pytest.mark.parametrize("x_shape, kernel_shape, strides, dilation, padding", DEPTHWISE_KERNEL_GRADIENT_CASES)
def test_depthwise_kernel_gradient_is_the_forward_adjoint(x_shape, kernel_shape, strides, dilation, padding):
    """The compiled depthwise kernel gradient (register blocks of 16 channels and 3, 2 or 1 taps
    over each line's interior, the rest one product at a time) is the forward pass's adjoint."""
    _check_depthwise_gradient_is_the_forward_adjoint(
        x_shape, kernel_shape, strides, dilation, padding, sum(x_shape) + sum(kernel_shape), (False, True)
    )


COL2IM_SLAB_CASES = [
    # (x shape, kernel shape, dilation, padding): rank-3 samples cut into slabs of input rows
    ((2, 7, 5, 4, 6), (3, 3, 3, 6, 5), 1, "same"),
    ((3, 6, 4, 3, 4), (3, 2, 2, 4, 4), (2, 1, 1), "valid"),
    ((1, 9, 3, 3, 3), (4, 1, 2, 3, 2), 1, ((2, 3), (0, 1), (1, 0))),
    ((2, 5, 4, 4, 5), (2, 3, 3, 5, 5), 1, ((4, 0), (1, 1), (1, 1))),  # output rows no tap reaches
]


@pytest.mark.parametrize("threads, block_bytes", [(1, 1), (2, 1), (3, 1), (2, 3000), (2, 1 << 30)])
@pytest.mark.parametrize("x_shape, kernel_shape, dilation, padding", COL2IM_SLAB_CASES)
def test_col2im_slabs_of_rows(x_shape, kernel_shape, dilation, padding, threads, block_bytes, monkeypatch):
    """col2im's compiled path cuts rank-3 samples into slabs of input rows, and the output rows
    among the threads anywhere, mid-sample included: the forward pass must equal the float64 loop
    reference, the input and kernel gradients its adjoint, for every cut."""
    if not jit.enabled():
        pytest.skip(f"col2im's slabs are its compiled path: {jit.unavailable_reason()}")
    monkeypatch.setattr(conv_common, "THREADS", threads)
    monkeypatch.setattr(col2im, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(sum(x_shape) + threads)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(kernel_shape)
    expected = reference_conv(x, w, 1, padding, dilation)
    g, probe_x, probe_w = (
        rng.standard_normal(expected.shape),
        rng.standard_normal(x_shape),
        rng.standard_normal(w.shape),
    )
    with use_algorithm("col2im"):
        y = conv(x, w, 1, padding, dilation_rate=dilation)
        dx, dw = conv_vjp(g, x, w, 1, padding, dilation_rate=dilation)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    # <g, conv(probe_x, w)> = <probe_x, dx> and <g, conv(x, probe_w)> = <probe_w, dw>
    np.testing.assert_allclose(np.sum(probe_x * dx), np.sum(g * reference_conv(probe_x, w, 1, padding, dilation)))
    np.testing.assert_allclose(np.sum(probe_w * dw), np.sum(g * reference_conv(x, probe_w, 1, padding, dilation)))


def test_seed_shapes():
    x = np.zeros((2, 600, 300), np.float32)
    assert conv(x, np.zeros((3, 300, 64), np.float32)).shape == (2, 598, 64)
    assert conv(x[..., None], np.zeros((3, 3, 1, 64), np.float32)).shape == (2, 598, 298, 64)
    assert conv(x[..., None], np.zeros((3, 300, 1, 64), np.float32)).shape == (2, 598, 1, 64)


def test_wide_kernel_equals_conv1d_exactly():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 40, 30)).astype(np.float32)
    w = rng.standard_normal((3, 30, 8)).astype(np.float32)
    y1 = conv(x, w)
    y2 = conv(x[..., None], w[:, :, None, :])
    np.testing.assert_allclose(y2[:, :, 0], y1, rtol=1e-5, atol=1e-5)


@every_algorithm
def test_rank_4_convolution(algorithm):
    run_with(algorithm, _test_rank_4_convolution)


def _test_rank_4_convolution():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 4, 6, 3, 2))
    w = rng.standard_normal((2, 3, 2, 2, 2, 4))
    np.testing.assert_allclose(
        conv(x, w, strides=(1, 2, 1, 1), padding="same"), reference_conv(x, w, (1, 2, 1, 1), "same"), atol=1e-12
    )


@every_algorithm
def test_strides_with_dilation_and_asymmetric_padding(algorithm):
    run_with(algorithm, _test_strides_with_dilation_and_asymmetric_padding)


def _test_strides_with_dilation_and_asymmetric_padding():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 13, 11, 4))
    w = rng.standard_normal((3, 2, 4, 5))
    got = conv(x, w, strides=(2, 3), padding=((2, 0), (1, 3)), dilation_rate=(2, 2))
    np.testing.assert_allclose(got, reference_conv(x, w, (2, 3), ((2, 0), (1, 3)), (2, 2)), atol=1e-12)


def test_negative_explicit_padding_crops():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 9, 3))
    w = rng.standard_normal((2, 3, 2))
    np.testing.assert_allclose(conv(x, w, padding=((-2, 1),)), conv(x[:, 2:], w, padding=((0, 1),)))


@every_algorithm
def test_nan_and_inf_propagate(algorithm):
    run_with(algorithm, _test_nan_and_inf_propagate)


def _test_nan_and_inf_propagate():
    x = np.ones((1, 6, 6, 2), np.float32)
    x[0, 2, 2, 0] = np.nan
    x[0, 5, 5, 1] = np.inf
    w = np.ones((3, 3, 2, 1), np.float32)
    y = conv(x, w, padding="same")
    assert np.isnan(y[0, 1:4, 1:4]).all()
    if planner.get_conv_algorithm() == "fft":
        # a transform mixes every cell of a sample: a NaN or Inf anywhere makes all its outputs NaN
        assert np.isnan(y).all()
        return
    assert np.isposinf(y[0, 4:, 4:, 0]).all()
    assert np.isfinite(y[0, 0, :, 0]).all()


def test_integer_inputs_are_computed_in_float32():
    y = conv(np.ones((1, 4, 1), dtype=np.int64), np.ones((2, 1, 1), dtype=np.int32))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[0, :, 0], [2, 2, 2])


@pytest.mark.parametrize(
    "x_shape,w_shape,kwargs,match",
    [
        ((600, 300), (3, 300, 64), {}, "batch"),
        ((2, 10, 4), (3, 3, 4, 2), {}, "kernel"),
        ((2, 10, 5), (3, 2, 4), {}, "multiple"),
        ((2, 10, 4), (3, 2, 3), {}, "divisible by the 2 groups"),
        ((2, 3, 4), (5, 4, 2), {}, "larger than"),
        ((2, 10, 4), (3, 4, 2), {"strides": 0}, "strides"),
        ((2, 10, 4), (3, 4, 2), {"padding": "full"}, "padding"),
        ((2, 10, 4), (3, 4, 2), {"data_format": "NWC"}, "data_format"),
        ((2, 10, 4), (3, 4, 2), {"dilation_rate": (1, 2)}, "dilation_rate"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(x_shape, w_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv(np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32), **kwargs)


def test_non_numeric_inputs_raise_type_error():
    with pytest.raises(TypeError, match="`inputs` must be a numeric array"):
        conv(np.array([[["a"]]]), np.zeros((1, 1, 1)))
    with pytest.raises(TypeError, match="`kernel`"):
        conv(np.zeros((1, 2, 1)), [[[None]]])


def test_vjp_rejects_wrong_gradient_shape():
    x = np.zeros((1, 8, 2))
    w = np.zeros((3, 2, 4))
    with pytest.raises(ValueError, match="`grad` must have the output's shape \\(1, 6, 4\\)"):
        conv_vjp(np.zeros((1, 8, 4)), x, w)


def test_padding_that_crops_more_than_the_axis_is_refused():
    x, w = np.ones((1, 7, 2)), np.ones((3, 2, 1))
    with pytest.raises(ValueError, match="`padding` crops more than spatial axis 0"):
        conv(x, w, padding=((-8, 5),))
    with pytest.raises(ValueError, match="`padding` crops more"):
        conv_general(x, w, 1, ((5, -9),))


def test_huge_strides_cost_nothing():
    import time

    x = np.ones((1, 10, 10, 4), np.float32)
    w = np.ones((1, 1, 4, 4), np.float32)
    start = time.perf_counter()
    y = conv(x, w, strides=3000)
    dx, dw = conv_vjp(np.ones_like(y), x, w, strides=3000)
    conv(np.ones((1, 10, 4), np.float32), np.ones((1, 4, 4), np.float32), strides=10**8)
    assert y.shape == (1, 1, 1, 4) and time.perf_counter() - start < 1
    np.testing.assert_array_equal(dx[0, 0, 0], 4)
    assert dx[0, 1:].sum() == 0


def test_messages_use_the_callers_layout():
    with pytest.raises(ValueError, match="output's shape \\(2, 4, 5, 8\\); received \\(2, 4, 5, 7\\)"):
        conv_vjp(np.ones((2, 4, 5, 7)), np.ones((2, 3, 7, 9)), np.ones((3, 2, 3, 4)), data_format="channels_first")
    with pytest.raises(ValueError, match="inputs \\(2, 3, 2, 9\\)"):
        conv(np.ones((2, 3, 2, 9)), np.ones((3, 2, 3, 4)), data_format="channels_first")
    with pytest.raises(ValueError, match="Use more padding"):
        conv(np.ones((1, 2, 1)), np.ones((5, 1, 1)), padding=((1, 0),))


def test_empty_kernels_are_refused():
    with pytest.raises(ValueError, match="`kernel` must not have an axis of size 0"):
        conv(np.ones((1, 5, 2)), np.ones((0, 2, 3)))
    with pytest.raises(ValueError, match="size 0"):
        conv(np.ones((1, 5, 2)), np.ones((1, 2, 0)))
    with pytest.raises(ValueError, match="`rhs_dilation`"):
        conv_general(np.ones((1, 5, 2)), np.ones((1, 2, 1)), rhs_dilation=0)


@pytest.mark.parametrize("algorithm", ["planner", "pointwise", "implicit_gemm", "fft"])
@given(config=conv_configs(kind="pointwise"), seed=st.integers(0, 2**16))
def test_pointwise_convolutions_match_reference(algorithm, config, seed):
    run_with(algorithm, _test_conv_matches_reference, config, seed)
    run_with(algorithm, _test_vjp_matches_finite_differences, config, seed)


@pytest.mark.parametrize(
    "algorithm",
    ["planner", "planner/jit-off", "direct", "direct/one-sample-chunks", "depthwise_kernel", "implicit_gemm", "fft"],
)
@given(config=conv_configs(kind="depthwise", input_dilation="sometimes"), seed=st.integers(0, 2**16))
def test_depthwise_convolutions_match_reference(algorithm, config, seed):
    if any(f > 1 for f in config["lhs_dilation"]):
        run_with(algorithm, _test_conv_general_with_input_dilation_matches_reference, config, seed)
    else:
        run_with(algorithm, _test_conv_matches_reference, config, seed)
    run_with(algorithm, _test_vjp_matches_finite_differences, config, seed)


def test_planner_rules():
    from rankconv.ops.convolution import conv_plan

    same = ((1, 1), (1, 1))
    assert conv_plan((32, 32, 32, 64), (1, 1, 64, 64))[0] == "pointwise"
    compiled = jit.enabled()  # off in the CI's RANKCONV_JIT=0 run
    assert conv_plan((32, 32, 32, 128), (3, 3, 1, 128), padding=same)[0] == (
        "depthwise_kernel" if compiled else "direct"
    )
    with use_algorithm("planner/jit-off"):
        assert conv_plan((32, 32, 32, 128), (3, 3, 1, 128), padding=same)[0] == "direct"
    # one input channel with one group is an ordinary convolution, not a depthwise one
    assert conv_plan((64, 28, 28, 1), (3, 3, 1, 32))[0] == ("unrolled_kernel" if compiled else "im2col")
    # its backward pass: the written-out kernel gradient (`test_ops_unrolled`); where none is
    # written out (576 weights), implicit GEMM, or im2col for a first layer's kernel gradient alone
    assert conv_plan((64, 28, 28, 1), (3, 3, 1, 32), backward=True)[0] == (
        "unrolled_kernel" if compiled else "implicit_gemm"
    )
    assert conv_plan((64, 28, 28, 1), (3, 3, 1, 64), backward=True)[0] == "implicit_gemm"
    alone = planner.KERNEL_GRADIENT_ONLY
    assert conv_plan((64, 28, 28, 1), (3, 3, 1, 64), backward=alone)[0] == "im2col"
    with use_algorithm("planner/jit-off"):
        assert conv_plan((64, 28, 28, 1), (3, 3, 1, 32))[0] == "im2col"
    assert conv_plan((8, 4096, 32), (255, 32, 32))[0] == "fft"
    # deep inputs, few taps, no more filters than channels: col2im (with compiled kernels), else im2col
    deep = "col2im" if compiled else "im2col"
    assert conv_plan((32, 600, 300), (3, 300, 64))[0] == deep
    # a kernel spanning a whole axis: that axis is folded into the channels (the seed's lift, undone)
    name, reason = conv_plan((8, 600, 300, 1), (3, 300, 1, 64))
    assert name == deep and "spans spatial axis 1 whole" in reason
    # narrow convolutions (at most 64 channels per group, windows of at most 432 values, filters in
    # blocks of 16): the compiled direct kernel forward, the other rules backward
    narrow = "direct_kernel" if compiled else "im2col"
    assert conv_plan((32, 32, 32, 3), (3, 3, 3, 64), padding=same)[0] == narrow
    assert conv_plan((4, 4000, 64), (2, 64, 64), padding=((1, 0),))[0] == narrow  # WaveNet's k2 64 -> 64
    assert conv_plan((4, 4000, 64), (2, 64, 64), padding=((1, 0),), backward=True)[0] == deep
    assert conv_plan((4, 16, 16, 16, 16), (3, 3, 3, 16, 16), padding=((1, 1),) * 3)[0] == narrow  # 432 values
    assert conv_plan((4, 16, 16, 16, 16), (3, 3, 3, 16, 16), padding=((1, 1),) * 3, backward=True)[0] == "im2col"
    assert conv_plan((4, 4000, 128), (2, 128, 128))[0] == deep  # 128 channels: not narrow
    assert conv_plan((16, 32, 32, 32), (3, 3, 32, 8), padding=same)[0] == deep  # 8 filters: no full block
    assert conv_plan((16, 32, 32, 32), (3, 3, 32, 24), padding=same)[0] == deep  # 24: a block and a rest
    assert conv_plan((32, 32, 32, 64), (3, 3, 64, 64), padding=same)[0] == deep  # 576 values: not narrow
    assert conv_plan((32, 32, 32, 64), (3, 3, 64, 64), padding=same, backward=True)[0] == deep
    assert conv_plan((64, 13, 13, 64), (3, 3, 64, 96))[0] == "im2col"  # more filters than channels, 576 values
    assert conv_plan((4, 16, 16, 16, 32), (3, 3, 3, 32, 32), padding=((1, 1),) * 3)[0] == deep  # rank 3
    assert conv_plan((2, 8, 8, 8, 8, 32), (3, 3, 3, 3, 32, 32))[0] != "col2im"  # rank 4: no compiled col2im
    # a forced algorithm is used, or refused with the reason
    with planner.conv_algorithm("implicit_gemm"):
        assert conv_plan((32, 600, 300), (3, 300, 64)) == ("implicit_gemm", "forced by set_conv_algorithm")
    with planner.conv_algorithm("pointwise"), pytest.raises(ValueError, match="not all ones"):
        conv_plan((32, 600, 300), (3, 300, 64))
    with pytest.raises(ValueError, match="Unknown convolution algorithm 'gemm'"):
        planner.set_conv_algorithm("gemm")
    assert planner.get_conv_algorithm() is None


def test_float32_algorithms_agree():
    """Every algorithm, in float32, close to the float64 reference on a mid-sized case."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 40, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3, 8, 6)).astype(np.float32)
    expected = reference_conv(x.astype(np.float64), w.astype(np.float64), (2, 1), "same", (1, 2))
    for algorithm in ("implicit_gemm", "im2col", "fft"):
        with planner.conv_algorithm(algorithm):
            got = conv(x, w, strides=(2, 1), padding="same", dilation_rate=(1, 2))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=2e-5 * np.abs(expected).max())


def test_forcing_in_a_block_is_per_thread():
    import threading

    from rankconv.ops.convolution import conv_plan

    seen = {}
    unforced = conv_plan((2, 30, 8), (3, 8, 4))[0]

    def other():
        seen["plan"] = conv_plan((2, 30, 8), (3, 8, 4))[0]

    with planner.conv_algorithm("fft"):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert conv_plan((2, 30, 8), (3, 8, 4))[0] == "fft"
    assert seen["plan"] == unforced != "fft"


@pytest.mark.parametrize(
    "algorithm",
    ["planner", "implicit_gemm", "im2col", "fft", "direct", "pointwise", "depthwise_kernel", "direct_kernel"],
)
def test_empty_batch(algorithm):
    def run():
        kernel = np.ones((1, 1, 6)) if algorithm == "pointwise" else np.ones((2, 1, 6))
        y = conv_general(np.zeros((0, 5, 6)), kernel)
        dx, dw = conv_general_vjp(np.zeros(y.shape), np.zeros((0, 5, 6)), kernel)
        assert y.shape[0] == 0 and dx.shape == (0, 5, 6) and dw.shape == kernel.shape and not dw.any()

    run_with(algorithm, run)


def test_direct_convolution_memory_stays_near_the_output_size():
    import tracemalloc

    x = np.zeros((1, 20000, 64), np.float32)
    w = np.ones((31, 1, 64), np.float32)
    tracemalloc.start()
    with planner.conv_algorithm("direct"):
        y = conv_general(x, w, padding=((15, 15),))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * y.nbytes


@pytest.mark.parametrize("algorithm", ["planner", "planner/jit-off", "direct_kernel", "im2col"])
@pytest.mark.parametrize(
    "x_shape,w_shape,padding",
    [
        ((2, 9, 7, 1), (3, 7, 1, 4), ((0, 0), (0, 0))),  # spans the last axis
        ((2, 5, 9, 3), (5, 2, 3, 4), ((0, 0), (1, 0))),  # spans the first axis
        ((2, 4, 5, 6, 2), (4, 2, 6, 2, 3), ((0, 0), (1, 1), (0, 0))),  # spans the first and last
        ((2, 3, 4, 2), (3, 4, 2, 5), ((0, 0), (0, 0))),  # spans every axis: one is kept
    ],
)
def test_spanned_axes_are_folded_exactly(algorithm, x_shape, w_shape, padding):
    """A kernel that spans whole axes computes the same as the reference, forward and both
    gradients, whether the planner folds those axes into the channels or not."""

    def run():
        rng = np.random.default_rng(3)
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        y = conv_general(x, w, 1, padding)
        np.testing.assert_allclose(y, reference_conv(x, w, 1, padding), atol=1e-10)
        g = rng.standard_normal(y.shape)
        dx, dw = conv_general_vjp(g, x, w, 1, padding)
        assert dx.shape == x.shape and dw.shape == w.shape
        _directional_check(lambda xx: float(np.sum(reference_conv(xx, w, 1, padding) * g)), dx, x, rng)
        _directional_check(lambda ww: float(np.sum(reference_conv(x, ww, 1, padding) * g)), dw, w, rng)

    run_with(algorithm, run)


def test_fold_is_the_seeds_equivalence():
    from rankconv.ops.conv_common import ConvCall

    call = ConvCall((8, 600, 300, 1), (3, 300, 1, 64), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), np.dtype("float32"))
    folded, axes = planner.fold(call)
    assert axes == (1,) and folded.x_shape == (8, 600, 300) and folded.kernel_shape == (3, 300, 64)
    grouped = ConvCall((8, 6, 4, 2), (3, 4, 1, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), np.dtype("float32"))
    assert planner.fold(grouped)[1] == ()  # groups: the channels are not one block


def test_measured_planning_keeps_the_fastest_and_says_so():
    from rankconv.ops.convolution import _setup, conv_plan

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 11, 10, 3)), rng.standard_normal((3, 3, 3, 4))
    expected = reference_conv(x, w, 1, "valid")
    with use_algorithm("planner/measure"):
        np.testing.assert_allclose(conv(x, w), expected, atol=1e-10)
        name, reason = conv_plan(x.shape, w.shape, dtype="float64")
        assert name in planner.applicable(_setup(x, w, 1, None, 1, 1)[2])
        assert reason.startswith("measured fastest")
        np.testing.assert_allclose(conv(x, w), expected, atol=1e-10)
    with pytest.raises(ValueError, match="'rules' or 'measure'"):
        planner.set_conv_planning("fastest")
