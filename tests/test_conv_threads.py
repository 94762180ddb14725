"""The worker threads behind the block-wise convolution algorithms: BLAS limits that nest across
threads, forked children, convolutions inside workers, NumPy's error settings, memory bounds."""

import multiprocessing
import sys
import threading
import time

import numpy as np
import pytest
import threadpoolctl

from rankconv import optimizers
from rankconv.ops import conv_common, conv_general, conv_general_vjp, im2col, jit, planner
from rankconv.ops.autodiff import RowSparse, Variable

from reference import reference_conv


def blas_threads():
    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]


def numpy_blas_threads():
    # the BLAS NumPy links (rankconv's products run on it); a BLAS loaded later by another package
    # (SciPy's own OpenBLAS, say) is not rankconv's to limit
    libraries = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    numpy_own = [info for info in libraries if "numpy" in info["filepath"]]
    return [info["num_threads"] for info in numpy_own or libraries]


def test_overlapping_single_threaded_blocks_restore_the_thread_count():
    before = blas_threads()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with conv_common.single_threaded_blas():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with conv_common.single_threaded_blas():
            second_in.set()
            first_out.wait(5)
            assert blas_threads() == [1] * len(before)  # still limited after the first one left

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert blas_threads() == before


def test_concurrent_convolutions_agree_and_leave_blas_alone():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 12, 12, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    expected = conv_general(x, w)
    before, errors = blas_threads(), []

    def loop():
        for _ in range(30):
            if not np.array_equal(conv_general(x, w), expected):
                errors.append("mismatch")

    threads = [threading.Thread(target=loop) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and blas_threads() == before


def _conv_in_child(queue):
    x = np.ones((4, 10, 10, 3), np.float32)
    queue.put(float(conv_general(x, np.ones((3, 3, 3, 4), np.float32)).sum()))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method: Linux only")
def test_a_forked_child_can_convolve():
    x = np.ones((4, 10, 10, 3), np.float32)
    expected = float(conv_general(x, np.ones((3, 3, 3, 4), np.float32)).sum())  # the pool exists now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_conv_in_child, args=(queue,))
    child.start()
    child.join(30)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and queue.get(timeout=5) == expected


def test_a_convolution_inside_a_worker_runs_there_instead_of_waiting_for_itself():
    x = np.random.default_rng(1).standard_normal((4, 9, 9, 5)).astype(np.float32)
    w = np.ones((3, 3, 5, 2), np.float32)
    futures = [conv_common._workers().submit(conv_general, x, w) for _ in range(conv_common.THREADS)]
    for future in futures:
        np.testing.assert_allclose(future.result(timeout=30), conv_general(x, w), rtol=1e-5)


def test_the_calling_thread_takes_tasks_too_and_nested_calls_run_where_they_are(monkeypatch):
    monkeypatch.setattr(conv_common, "THREADS", 2)
    ran = []

    def work(task):
        time.sleep(0.01)  # long enough that both threads take tasks
        inner = conv_common.run_parallel(lambda t: threading.current_thread().name, range(3))
        ran.append((task, threading.current_thread().name, inner))
        return task * task

    assert conv_common.run_parallel(work, range(6)) == [t * t for t in range(6)]
    assert sorted(task for task, _, _ in ran) == list(range(6))
    names = {name for _, name, _ in ran}
    assert threading.current_thread().name in names and any(n.startswith(conv_common.WORKER_PREFIX) for n in names)
    assert all(inner == [name] * 3 for _, name, inner in ran)  # nested: one thread, one after another
    assert not conv_common._in_worker()  # the caller's flag is cleared after its share


def test_a_task_error_is_raised_after_every_started_task_has_stopped_and_none_starts_after_it(monkeypatch):
    monkeypatch.setattr(conv_common, "THREADS", 2)
    started, finished = [], []

    def work(task):
        started.append(task)
        if task == 0:
            time.sleep(0.01)  # the other thread is inside task 1 by now
            raise RuntimeError("task 0 failed")
        time.sleep(0.05)
        finished.append(task)

    with pytest.raises(RuntimeError, match="task 0 failed"):
        conv_common.run_parallel(work, range(6))
    assert sorted(finished) == sorted(set(started) - {0})  # no task still running when the call raised
    assert len(started) < 6  # ... and the tasks left were not started


def test_the_call_does_not_wait_for_a_worker_that_took_no_task(monkeypatch):
    monkeypatch.setattr(conv_common, "THREADS", 2)
    busy = conv_common._workers().submit(time.sleep, 0.5)  # the one worker is busy for 0.5 s
    start = time.perf_counter()
    assert conv_common.run_parallel(lambda t: t + 1, range(4)) == [1, 2, 3, 4]  # the caller took them all
    assert time.perf_counter() - start < 0.4
    busy.result()


def test_numpy_error_settings_reach_the_worker_threads(monkeypatch):
    monkeypatch.setattr(optimizers, "PARALLEL_ROW_ELEMENTS", 0)
    table = Variable(np.ones((40, 3), np.float32), "table")
    grad = RowSparse.from_rows(np.arange(40), np.full((40, 3), 1e30, np.float32), 40)
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        optimizers.Adagrad(1.0).apply([grad], [table])


@pytest.mark.parametrize("split", [False, True])
def test_im2col_blocks_cover_the_output_once_and_respect_the_workspace(monkeypatch, split):
    monkeypatch.setattr(im2col, "SPLIT_FIRST_AXIS", split)
    for threads in (1, 2, 3):
        monkeypatch.setattr(conv_common, "THREADS", threads)
        for batch in (1, 2, 5):
            call = conv_common.ConvCall(
                (batch, 20, 7, 6), (3, 3, 6, 4), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), np.dtype("float32")
            )
            for limit in (None, 1, 10_000):
                monkeypatch.setattr(conv_common, "WORKSPACE_BYTES", limit)
                covered = np.zeros((batch, 20), int)
                lay = im2col.layout(call)
                assert lay.split == split
                blocks = im2col._blocks(lay)
                for block in blocks:
                    covered[slice(*block.samples), slice(*block.lines)] += 1
                    samples, lines = block.samples[1] - block.samples[0], block.lines[1] - block.lines[0]
                    share = (limit or call.workspace_limit()) // threads
                    if lines < 20:  # lines of one sample
                        assert samples * lines == 1 or lay.workspace(samples, lines) <= im2col.block_bytes(call)
                    else:
                        assert lay.workspace(samples, lines) <= min(im2col.BLOCK_BYTES, share)
                assert (covered == 1).all()
                assert len(blocks) >= min(threads, batch * 20)
                sizes = [b.samples[1] - b.samples[0] for b in blocks]
                assert max(sizes) - min(sizes) <= 1  # even blocks, so even runs per thread


CALLS = [  # (x shape, kernel shape, padding pairs, kernel dilation)
    ((50, 64, 300), (5, 300, 256), ((2, 2),), (1,)),  # 1-D, padded: split, the slab is the gathered rows
    ((50, 64, 300), (5, 300, 100), ((0, 0),), (1,)),  # 1-D, unpadded: split reads the input itself
    ((8, 20, 18, 64), (3, 3, 64, 32), ((1, 1), (1, 1)), (1, 1)),
    ((3, 40, 12, 128), (3, 3, 64, 64), ((2, 2), (1, 1)), (4, 1)),  # groups 2, dilated first axis
    ((2, 9, 10, 11, 32), (3, 3, 3, 32, 16), ((1, 1),) * 3, (1, 1, 1)),
]


@pytest.mark.parametrize("split", [None, True, False])
@pytest.mark.parametrize("limit", [None, 200_000, 2_000_000])
@pytest.mark.parametrize("shapes", CALLS, ids=[str(c[1]) for c in CALLS])
def test_im2col_scratch_stays_within_the_workspace_limit(monkeypatch, shapes, limit, split):
    # every scratch buffer a thread asks for during a forward pass and a VJP, summed per thread
    x_shape, k_shape, pairs, dilation = shapes
    monkeypatch.setattr(im2col, "SPLIT_FIRST_AXIS", split)
    monkeypatch.setattr(conv_common, "WORKSPACE_BYTES", limit)
    peaks = {}
    original = conv_common.scratch

    def counting(name, size, dtype):
        mine = peaks.setdefault(threading.get_ident(), {})
        mine[name] = max(mine.get(name, 0), size * np.dtype(dtype).itemsize)
        return original(name, size, dtype)

    monkeypatch.setattr(conv_common, "scratch", counting)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    kernel = rng.standard_normal(k_shape).astype(np.float32)
    rank = len(x_shape) - 2
    call = conv_common.ConvCall(x_shape, k_shape, (1,) * rank, pairs, (1,) * rank, dilation, np.dtype("float32"))
    if not im2col.fits(call):  # one line does not fit the limit: the planner avoids im2col
        assert planner.plan(call)[0] in ("implicit_gemm", "col2im")
        return
    with planner.conv_algorithm("im2col"):
        y = conv_general(x, kernel, 1, pairs, 1, dilation)
        forward_peak = max(sum(p.values()) for p in peaks.values())
        assert forward_peak * conv_common.THREADS <= call.workspace_limit()
        peaks.clear()
        conv_general_vjp(np.ones_like(y), x, kernel, 1, pairs, 1, dilation)
    # the VJP: the input gradient (the transposed call, within its limit) and the kernel gradient
    # (within this call's) reuse one another's buffers
    transposed = im2col.transposed_call(call)
    assert max(sum(p.values()) for p in peaks.values()) * conv_common.THREADS <= (
        call.workspace_limit() + transposed.workspace_limit()
    )


def test_planner_avoids_im2col_where_one_line_per_thread_exceeds_the_workspace():
    # a line of windows: 32 MB; input 9 MB, output 19 MB (more filters than channels: not col2im)
    x_shape, k_shape = (1, 8, 96, 96, 32), (3, 3, 3, 32, 64)
    same = ((1, 1),) * 3
    from rankconv.ops.convolution import conv_plan

    assert conv_plan(x_shape, k_shape, padding=same)[0] == "implicit_gemm"
    conv_common.set_conv_workspace(1 << 30)
    try:
        assert conv_plan(x_shape, k_shape, padding=same)[0] == "im2col"
    finally:
        conv_common.set_conv_workspace(None)


def test_kept_scratch_is_bounded():
    big = conv_common.scratch("test.big", (conv_common.KEEP_SCRATCH_BYTES // 4) + 1, np.float32)
    again = conv_common.scratch("test.big", 10, np.float32)
    assert not np.shares_memory(big, again)  # the large one was not kept
    small = conv_common.scratch("test.small", 100, np.float32)
    assert np.shares_memory(small, conv_common.scratch("test.small", 50, np.float32))
    conv_common.release_scratch()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5, 2)])
def test_aligned_arrays_start_on_a_cache_line(shape, dtype):
    for make, fill in ((conv_common.empty, None), (conv_common.zeros, 0)):
        array = make(shape, dtype)
        assert array.shape == shape and array.dtype == dtype and array.flags.c_contiguous and array.flags.writeable
        assert array.size == 0 or array.ctypes.data % conv_common.ALIGNMENT == 0
        if fill is not None:
            assert not array.any()


def test_aligned_arrays_refuse_negative_dimensions():
    with pytest.raises(ValueError, match="shape"):
        conv_common.empty((2, -1), np.float32)


@pytest.mark.parametrize(
    "algorithm", ["im2col", "col2im", "implicit_gemm", "depthwise_kernel", "direct_kernel", "direct", "fft"]
)
def test_convolution_outputs_and_gradients_are_aligned(algorithm):
    # each layer's output is the next one's input: the compiled kernels' vector loads then stay
    # within cache lines
    if algorithm.endswith("_kernel") and not jit.enabled():
        pytest.skip(f"{algorithm}: {jit.unavailable_reason()}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 8, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, 4) if algorithm in ("depthwise_kernel", "direct") else (3, 3, 4, 5)).astype(
        np.float32
    )
    kwargs = dict(padding=((1, 1), (1, 1)))
    with planner.conv_algorithm(algorithm):
        y = conv_general(x, w, **kwargs)
        dx, _ = conv_general_vjp(np.ones_like(y), x, w, **kwargs)
    assert y.ctypes.data % conv_common.ALIGNMENT == 0 and dx.ctypes.data % conv_common.ALIGNMENT == 0


@pytest.mark.parametrize("dilation", [2, 3])
def test_transposed_convolution_phases_match_the_reference(dilation):
    rng = np.random.default_rng(dilation)
    x = rng.standard_normal((2, 7, 5, 4))
    w = rng.standard_normal((4, 3, 4, 6))
    kwargs = dict(padding=((2, 1), (0, 3)), lhs_dilation=(dilation, 2), rhs_dilation=(1, 2))
    with planner.conv_algorithm("im2col"):
        got = conv_general(x, w, **kwargs)
        dx, dw = conv_general_vjp(np.ones_like(got), x, w, **kwargs)
    expected = reference_conv(x, w, padding=kwargs["padding"], dilation=(1, 2), lhs_dilation=(dilation, 2))
    np.testing.assert_allclose(got, expected, atol=1e-10)
    assert dx.shape == x.shape and dw.shape == w.shape


@pytest.mark.parametrize("threads, min_flops", [(1, 0), (2, 0), (2, 10**12)])
@pytest.mark.parametrize("shapes", [((37, 19), (19, 11)), ((1, 8), (8, 5)), ((0, 4), (4, 3)), ((6, 0), (0, 2))])
def test_matmul_equals_numpy_on_either_path_and_is_aligned(monkeypatch, threads, min_flops, shapes):
    monkeypatch.setattr(conv_common, "THREADS", threads)
    monkeypatch.setattr(conv_common, "PARALLEL_MATMUL_FLOPS", min_flops)
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    product = conv_common.matmul(a, b)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    assert product.shape == expected.shape and product.dtype == np.float32
    np.testing.assert_allclose(product, expected, rtol=1e-5, atol=1e-5)
    assert product.size == 0 or product.ctypes.data % conv_common.ALIGNMENT == 0


def test_matmul_of_mixed_or_integer_arrays_keeps_numpys_result_type():
    a, b = np.arange(6).reshape(2, 3), np.ones((3, 2), np.float64)
    assert conv_common.matmul(a, a.T).dtype == (a @ a.T).dtype
    assert conv_common.matmul(a.astype(np.float32), b).dtype == np.float64


def test_a_matmul_split_over_threads_runs_blas_single_threaded_in_every_part(monkeypatch):
    monkeypatch.setattr(conv_common, "THREADS", 2)
    monkeypatch.setattr(conv_common, "PARALLEL_MATMUL_FLOPS", 0)
    seen, real = [], np.matmul

    def spying(a, b, **kwargs):
        seen.append((threading.current_thread().name, numpy_blas_threads()))
        return real(a, b, **kwargs)

    monkeypatch.setattr(conv_common.np, "matmul", spying)
    a, b = np.ones((64, 8), np.float32), np.ones((8, 4), np.float32)
    np.testing.assert_array_equal(conv_common.matmul(a, b), np.full((64, 4), 8, np.float32))
    assert len(seen) == 2 and all(set(counts) == {1} for _, counts in seen)


@pytest.mark.skipif(max(numpy_blas_threads(), default=1) < 2, reason="NumPy's BLAS runs single-threaded here already")
def test_training_and_predicting_run_blas_single_threaded_and_restore_it_after(monkeypatch):
    from rankconv import layers, models

    monkeypatch.setattr(conv_common, "THREADS", 2)
    before, seen = blas_threads(), []

    class Spy(layers.Layer):
        def call(self, inputs):
            seen.append(numpy_blas_threads())
            return inputs

    model = models.Sequential([layers.Input((4,)), Spy(), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 4), np.float32), np.zeros((8, 1), np.float32)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=(x, y))
    model.predict(x, batch_size=4, verbose=0)
    model.predict_on_batch(x)
    model.evaluate(x, y, verbose=0)
    assert len(seen) >= 7 and all(set(counts) == {1} for counts in seen)
    assert blas_threads() == before


@pytest.mark.skipif(max(numpy_blas_threads(), default=1) < 2, reason="NumPy's BLAS runs single-threaded here already")
def test_a_budget_set_during_a_single_threaded_block_holds_after_it():
    before = conv_common.get_num_threads()
    try:
        with conv_common.single_threaded_blas():
            conv_common.set_num_threads(1)  # say, from a callback inside fit, or from another thread
            assert set(numpy_blas_threads()) == {1}
        assert conv_common.get_num_threads() == 1 and set(numpy_blas_threads()) == {1}  # not the count found on entry
        with conv_common.single_threaded_blas():
            conv_common.set_num_threads(2)
        assert set(numpy_blas_threads()) == {2}
    finally:
        conv_common.set_num_threads(before)
