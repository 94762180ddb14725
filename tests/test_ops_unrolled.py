"""The written-out kernels (`rankconv.ops.unrolled`, the planner's "unrolled_kernel"): the float64
loop reference's values (forward) and adjoint (gradients), the generic compiled kernel's bits (so
that which of the two ran never changes a result), the files they are compiled from, and the
background build."""

import os

import numpy as np
import pytest

from rankconv import ops
from rankconv.ops import conv_common, jit, planner, unrolled

from reference import reference_conv

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="compiled kernels are off (RANKCONV_JIT=0)")


@pytest.fixture(scope="module", autouse=True)
def kernel_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kernels")
    saved = os.environ.get("RANKCONV_KERNEL_DIR")
    os.environ["RANKCONV_KERNEL_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("RANKCONV_KERNEL_DIR", None)
    else:
        os.environ["RANKCONV_KERNEL_DIR"] = saved


CASES = [
    # x shape, kernel shape, strides, padding, dilation, dtype
    ((2, 9, 10, 1), (3, 3, 1, 8), 1, "valid", 1, "float32"),
    ((2, 9, 10, 1), (3, 3, 1, 8), 2, "same", 1, "float32"),
    ((1, 11, 2), (2, 2, 8), 1, "same", 2, "float64"),
    ((1, 5, 6, 7, 1), (2, 2, 2, 1, 8), (1, 2, 1), "same", 1, "float32"),
]


@pytest.mark.parametrize("x_shape, k_shape, strides, padding, dilation, dtype", CASES)
def test_the_written_out_kernel_computes_the_reference_and_the_generic_kernel_s_bits(
    x_shape, k_shape, strides, padding, dilation, dtype
):
    rng = np.random.default_rng(len(x_shape) + len(k_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(k_shape).astype(dtype)
    with planner.conv_algorithm("unrolled_kernel"):
        written = ops.conv(x, w, strides, padding, dilation_rate=dilation)
    with planner.conv_algorithm("direct_kernel"):
        generic = ops.conv(x, w, strides, padding, dilation_rate=dilation)
    expected = reference_conv(x.astype(np.float64), w.astype(np.float64), strides, padding, dilation)
    np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-5)
    assert written.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(written, generic)  # the same products, summed in the same order


@pytest.mark.parametrize("x_shape, k_shape, strides, padding, dilation, dtype", CASES)
def test_the_gradients_are_the_forward_adjoint_and_the_kernel_gradient_the_generic_kernel_s_bits(
    x_shape, k_shape, strides, padding, dilation, dtype
):
    """<probe, d_x> = <g, conv(probe, w)> and <probe, d_w> = <g, conv(x, probe)>, the right-hand
    sides from the float64 loop reference; the written-out kernel gradient equals the generic
    compiled kernel's (which computes while it builds) bit for bit."""
    rng = np.random.default_rng(10 + len(x_shape) + len(k_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(k_shape).astype(dtype)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    g = rng.standard_normal(reference_conv(x64, w64, strides, padding, dilation).shape).astype(dtype)
    with planner.conv_algorithm("unrolled_kernel"):
        dx, dw = ops.conv_vjp(g, x, w, strides, padding, dilation_rate=dilation)
    with planner.conv_algorithm("direct_kernel"):
        generic = ops.conv_vjp(g, x, w, strides, padding, dilation_rate=dilation)[1]
    assert dx.dtype == dw.dtype == np.dtype(dtype) and dx.shape == x.shape and dw.shape == w.shape
    tolerance = 1e-4 if dtype == "float32" else 1e-10
    for got, probe, inputs in (
        (dx, rng.standard_normal(x_shape), lambda p: (p, w64)),
        (dw, rng.standard_normal(k_shape), lambda p: (x64, p)),
    ):
        expected = np.sum(g * reference_conv(*inputs(probe), strides, padding, dilation))
        np.testing.assert_allclose(np.sum(probe * got), expected, rtol=tolerance, atol=tolerance)
    np.testing.assert_array_equal(dw, generic)


def test_the_planner_writes_the_kernel_gradient_out_too():
    from rankconv.ops.convolution import conv_plan

    for wanted in (True, planner.KERNEL_GRADIENT_ONLY):
        algorithm, reason = conv_plan((64, 28, 28, 1), (3, 3, 1, 32), backward=wanted)
        assert algorithm == "unrolled_kernel" and "written out" in reason
    assert conv_plan((64, 28, 28, 1), (3, 3, 1, 64), backward=True)[0] == "implicit_gemm"  # 576 weights


def test_threads_split_rows_without_changing_a_bit():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 9, 10, 1)).astype("float32")
    w = rng.standard_normal((3, 3, 1, 8)).astype("float32")
    results = []
    for threads in (1, 2, 3):
        saved = conv_common.get_num_threads()
        conv_common.set_num_threads(threads)
        try:
            with planner.conv_algorithm("unrolled_kernel"):
                results.append(ops.conv(x, w, 1, "same"))
        finally:
            conv_common.set_num_threads(saved)
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_the_planner_writes_one_out_for_a_grayscale_first_layer():
    algorithm, reason = ops.conv_plan((64, 28, 28, 1), (3, 3, 1, 32))
    assert algorithm == "unrolled_kernel" and "written out" in reason
    assert ops.conv_plan((2, 8, 8, 1), (3, 3, 1, 32))[0] == "direct_kernel"  # too small to be worth a compile
    assert ops.conv_plan((64, 28, 28, 1), (3, 3, 1, 64))[0] == "direct_kernel"  # 576 weights: not in registers


def test_first_calls_run_the_generic_kernel_while_the_written_one_builds(kernel_dir):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 8, 1)).astype("float32")
    w = rng.standard_normal((2, 3, 1, 8)).astype("float32")
    call = conv_common.ConvCall(x.shape, w.shape, (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), x.dtype)
    assert unrolled.kernel_for(call) is None  # the build starts, on a background thread
    first = unrolled.forward(x, w, call)  # ... and the generic kernel computes meanwhile
    compiled = unrolled.kernel_for(call, wait=True)
    assert compiled is not None and unrolled.kernel_for(call) is compiled
    np.testing.assert_array_equal(unrolled.forward(x, w, call), first)
    files = [name for name in os.listdir(kernel_dir) if name.endswith(".py")]
    assert any(open(kernel_dir / name).read() == unrolled.source(unrolled._shape_key(call)) for name in files)


def test_a_file_that_is_not_the_written_text_is_written_again(kernel_dir):
    key = ((1, 1, 2), 1, 8, (1, 1, 1), (1, 1, 1))
    text = unrolled.source(key)
    path = kernel_dir / (unrolled._module_name(text) + ".py")
    path.write_text("raise SystemExit('not ours')\n")
    unrolled._load(key)
    assert path.read_text() == text


def test_an_unwritable_folder_compiles_from_the_text(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("RANKCONV_KERNEL_DIR", str(blocker / "kernels"))  # a folder inside a file
    dispatcher = unrolled._load(((1, 1, 2), 1, 8, (1, 1, 1), (1, 1, 1))).conv
    x = np.arange(4, dtype="float32").reshape(1, 1, 1, 4, 1)
    w = np.ones(16, dtype="float32")
    y = np.zeros((1, 1, 1, 3, 8), dtype="float32")
    dispatcher(x, w, y, 0, 1)
    np.testing.assert_array_equal(y[0, 0, 0, :, 0], [1, 3, 5])


def test_what_it_does_not_serve_is_named():
    def reason(x_shape, k_shape, **kw):
        call = conv_common.ConvCall(
            x_shape, k_shape, (1, 1), ((0, 0), (0, 0)), kw.get("lhs", (1, 1)), (1, 1), np.dtype("float32")
        )
        return unrolled.applies(call)

    assert "at most 512" in reason((1, 9, 9, 1), (3, 3, 1, 64))
    assert "groups" in reason((1, 9, 9, 2), (3, 3, 1, 8))
    assert "dilate the input" in reason((1, 9, 9, 1), (3, 3, 1, 8), lhs=(2, 2))
    assert "filters" in reason((1, 9, 9, 1), (3, 3, 1, 4))
    assert reason((1, 9, 9, 1), (3, 3, 1, 8)) is None
