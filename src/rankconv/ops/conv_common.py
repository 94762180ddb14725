"""What every convolution algorithm shares: the description of a validated call, padding and
dilation of the input, and the workspace limit.

Canonical layout, everywhere below `rankconv.ops.convolution`'s front end:
    x:      (batch, *spatial, channels)                      channels-last
    kernel: (*kernel_spatial, channels // groups, filters)   Keras's layout
    y:      (batch, *output_spatial, filters)
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from rankconv import utils

# Bytes of scratch one call may use; None means the size of the call's input plus its output.
# Larger batches are processed in chunks of samples that fit (see `batch_chunks`).
WORKSPACE_BYTES: int | None = None


def set_conv_workspace(limit: int | None) -> None:
    """Bound the scratch memory of a convolution call to `limit` bytes (None: input + output size).

    Batches whose scratch would exceed it are processed a few samples at a time; one sample is
    always allowed, whatever the limit."""
    global WORKSPACE_BYTES
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"`limit` must be a non-negative number of bytes or None; received {limit!r}.")
    WORKSPACE_BYTES = limit


@dataclass(frozen=True)
class ConvCall:
    """A validated `conv_general` call, shapes only: what the planner decides on and caches by."""

    x_shape: tuple
    kernel_shape: tuple
    strides: tuple
    pairs: tuple  # explicit (lo, hi) padding per spatial axis; negative crops
    lhs_dilation: tuple
    rhs_dilation: tuple
    dtype: np.dtype

    @property
    def rank(self) -> int:
        return len(self.x_shape) - 2

    @property
    def batch(self) -> int:
        return self.x_shape[0]

    @property
    def channels(self) -> int:
        return self.x_shape[-1]

    @property
    def filters(self) -> int:
        return self.kernel_shape[-1]

    @property
    def channels_per_group(self) -> int:
        return self.kernel_shape[-2]

    @property
    def groups(self) -> int:
        return self.channels // self.kernel_shape[-2]

    @property
    def kernel_spatial(self) -> tuple:
        return tuple(self.kernel_shape[:-2])

    @property
    def taps(self) -> int:
        return math.prod(self.kernel_spatial)

    @property
    def dilated_spatial(self) -> tuple:
        return tuple((n - 1) * f + 1 for n, f in zip(self.x_shape[1:-1], self.lhs_dilation))

    @property
    def padded_spatial(self) -> tuple:
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.dilated_spatial, self.pairs))

    @property
    def spans(self) -> tuple:
        return tuple(utils.effective_kernel_size(k, d) for k, d in zip(self.kernel_spatial, self.rhs_dilation))

    @property
    def output_spatial(self) -> tuple:
        return tuple((p - span) // s + 1 for p, span, s in zip(self.padded_spatial, self.spans, self.strides))

    @property
    def output_shape(self) -> tuple:
        return (self.batch, *self.output_spatial, self.filters)

    @property
    def flops(self) -> int:
        """Multiply-adds × 2 of the convolution's definition (what GFLOP/s figures count)."""
        return 2 * self.batch * math.prod(self.output_spatial) * self.taps * self.channels_per_group * self.filters

    @property
    def threads(self) -> int:
        """Worker threads worth using: one below PARALLEL_MIN_FLOPS, where handing work to the pool
        (and switching BLAS to one thread and back) costs more than the work (an 8x8 autoencoder's
        step: 35 ms on two threads, most of it waiting)."""
        return 1 if self.flops < PARALLEL_MIN_FLOPS else THREADS

    def workspace_limit(self) -> int:
        if WORKSPACE_BYTES is not None:
            return WORKSPACE_BYTES
        itemsize = self.dtype.itemsize
        return (math.prod(self.x_shape) + math.prod(self.output_shape)) * itemsize


def batch_chunks(batch: int, sample_bytes: int, limit: int):
    """(start, stop) ranges of samples whose scratch (`sample_bytes` each) fits in `limit`."""
    chunk = max(1, min(batch, limit // max(1, sample_bytes)))
    for start in range(0, batch, chunk):
        yield start, min(start + chunk, batch)


def pad_windows(spatial, pairs):
    """Per axis: where the data lands in the padded array and which of its cells land there.

    Padding (lo, hi) puts `lo` zeros before and `hi` after; negative amounts cut cells off that
    end, possibly past the data into the padding of the other side.
    """
    target, source = [], []
    for n, (lo, hi) in zip(spatial, pairs):
        length = n + lo + hi
        start, stop = max(lo, 0), min(lo + n, length)
        stop = max(start, stop)
        target.append(slice(start, stop))
        source.append(slice(start - lo, stop - lo))
    return target, source


def pad(x: np.ndarray, pairs) -> np.ndarray:
    """Zero-pad (or crop, for negative amounts) the spatial axes of channels-last `x`."""
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return x
    if all(lo >= 0 and hi >= 0 for lo, hi in pairs):
        return np.pad(x, [(0, 0), *pairs, (0, 0)])
    spatial = x.shape[1:-1]
    out = np.zeros((x.shape[0], *(n + lo + hi for n, (lo, hi) in zip(spatial, pairs)), x.shape[-1]), dtype=x.dtype)
    target, source = pad_windows(spatial, pairs)
    out[(slice(None), *target)] = x[(slice(None), *source)]
    return out


def unpad(x: np.ndarray, pairs, original_spatial) -> np.ndarray:
    """Adjoint of `pad`: the padded array's cells that came from the data, zeros for cells cut off."""
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return x
    target, source = pad_windows(original_spatial, pairs)
    if all(lo >= 0 and hi >= 0 for lo, hi in pairs):
        return x[(slice(None), *target)]
    out = np.zeros((x.shape[0], *original_spatial, x.shape[-1]), dtype=x.dtype)
    out[(slice(None), *source)] = x[(slice(None), *target)]
    return out


def dilate(x: np.ndarray, factors) -> np.ndarray:
    """Insert `f - 1` zeros between neighbouring cells of each spatial axis (input dilation)."""
    if all(f == 1 for f in factors):
        return x
    shape = (x.shape[0], *((n - 1) * f + 1 for n, f in zip(x.shape[1:-1], factors)), x.shape[-1])
    out = np.zeros(shape, dtype=x.dtype)
    out[(slice(None), *(slice(None, None, f) for f in factors))] = x
    return out


# ----------------------------------------------------------------------------- worker threads
# NumPy's copies and elementwise loops run on one core (and release the GIL), and a matrix product
# of a cache-sized block is faster on one core than split across two. So the algorithms that work
# block by block run blocks on THREADS threads, each with single-threaded BLAS.
def _default_threads() -> int:
    """The cores this process may run on, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 8))


THREADS = _default_threads()
# Convolutions with fewer floating-point operations than this run in the calling thread.
PARALLEL_MIN_FLOPS = 1 << 23

_blas_limit = None  # set_num_threads's process-wide BLAS limit (a threadpoolctl limiter)


def set_num_threads(threads: int | None = None) -> None:
    """The process's thread budget for rankconv: the worker threads that run the block-wise
    algorithms and the compiled kernels, and NumPy's BLAS outside them. None: the default, the
    cores this process may run on (at most 8). Inside the workers BLAS runs single-threaded, so the
    budget is never exceeded by the two together."""
    global THREADS, _pending_blas_threads
    if threads is None:
        threads = _default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"`threads` must be a positive integer or None; received {threads!r}.")
    THREADS = threads
    with _blas_lock:
        if _blas_users:  # a single-threaded block is running: BLAS takes the budget when it ends
            _pending_blas_threads = threads
        else:
            _set_blas_budget(threads)


def _set_blas_budget(threads: int) -> None:
    """BLAS limited to `threads` process-wide (with `_blas_lock` held)."""
    global _blas_limit
    from threadpoolctl import threadpool_limits

    _take_blas_control()
    if _blas_limit is not None:
        _blas_limit.restore_original_limits()
    _blas_limit = threadpool_limits(limits=threads, user_api="blas")
    _take_blas_control()


def get_num_threads() -> int:
    """The thread budget (`set_num_threads`)."""
    return THREADS


_blas_lock = threading.Lock()
_blas_controller = None
_blas_limiter = None  # the active limit, shared by overlapping calls
_blas_users = 0
_pending_blas_threads = None  # a budget set while a single-threaded block ran (`set_num_threads`)


def _take_blas_control():
    """threadpoolctl (3.8+) lets only one thread at a time change OpenBLAS's process-wide thread
    count, silently ignoring the others; our changes are serialised by `_blas_lock`, so the thread
    making one may take that control."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # older threadpoolctl: any thread may set the limits
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


@contextlib.contextmanager
def single_threaded_blas():
    """BLAS limited to one thread inside the block (process-wide). Overlapping blocks in several
    threads share one limit: the first sets it, the last restores the thread count found then (or
    the budget `set_num_threads` set meanwhile)."""
    global _blas_controller, _blas_limiter, _blas_users, _pending_blas_threads
    with _blas_lock:
        if _blas_controller is None:
            from threadpoolctl import ThreadpoolController

            _blas_controller = ThreadpoolController()
        if _blas_users == 0:
            _take_blas_control()
            _blas_limiter = _blas_controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _take_blas_control()
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
                _take_blas_control()  # leave no thread holding it
                if _pending_blas_threads is not None:  # not the count found on entry: the new budget
                    _set_blas_budget(_pending_blas_threads)
                    _pending_blas_threads = None


@contextlib.contextmanager
def products_on_workers():
    """A training step or a batch of inference inside: BLAS stays single-threaded and the
    parallelism is rankconv's worker threads' alone (`run_parallel`; large products split by rows,
    `matmul`). A BLAS call on several threads leaves its idle threads spinning for a while (about
    0.1 s for OpenBLAS) before they sleep, and they spin on the cores the workers then need: a
    step mixing the two ran slower on 2 threads than on 1. Outside, BLAS keeps the thread budget
    (`set_num_threads`) for the user's own NumPy."""
    if THREADS == 1 or _in_worker():
        yield
        return
    with single_threaded_blas():
        yield


# Products below this many flops (2·n·k·m) run as one call: splitting them costs more than it saves.
PARALLEL_MATMUL_FLOPS = 4_000_000


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a @ b` for 2-D arrays, into an aligned array (`empty`). A large product runs on THREADS
    threads, each multiplying its rows of `a` with BLAS single-threaded, so that it needs no BLAS
    threads (`products_on_workers`)."""
    if a.ndim != 2 or b.ndim != 2 or a.dtype.kind != "f" or b.dtype.kind != "f":
        return np.matmul(a, b)
    out = empty((a.shape[0], b.shape[1]), np.result_type(a, b))
    if THREADS == 1 or _in_worker() or 2 * a.size * b.shape[1] < PARALLEL_MATMUL_FLOPS:
        return np.matmul(a, b, out=out)
    run_parallel(lambda part: np.matmul(a[part], b, out=out[part]), even_slices(a.shape[0], THREADS), blas=True)
    return out


def even_slices(length: int, parts: int) -> list[slice]:
    """[0, length) cut into at most `parts` contiguous slices of near-equal length (none empty)."""
    parts = max(1, min(parts, length))
    bounds = [round(i * length / parts) for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def split_runs(items: list, parts: int) -> list[list]:
    """`items` cut into at most `parts` contiguous runs of near-equal length (none empty)."""
    return [items[part] for part in even_slices(len(items), parts)]


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
WORKER_PREFIX = "rankconv-worker"


def _workers() -> ThreadPoolExecutor:
    """The process's worker threads, THREADS - 1 of them (the calling thread is the other one; see
    `run_parallel`), kept so that their scratch buffers are reused across calls. A changed THREADS
    gets a new pool; the old one is dropped, not shut down, so a call still using it finishes (its
    idle threads exit when it is collected)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != THREADS:
            _pool = ThreadPoolExecutor(max(1, THREADS - 1), thread_name_prefix=WORKER_PREFIX)
            _pool_size = THREADS
        return _pool


def _after_fork_in_child():
    """A forked child inherits the pool without its threads (and possibly held locks): start afresh."""
    global _pool, _pool_size, _pool_lock, _blas_lock, _blas_limiter, _blas_users, _pending_blas_threads
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()
    _blas_lock, _blas_limiter, _blas_users, _pending_blas_threads = threading.Lock(), None, 0, None
    _scratch_buffers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

# Arrays the convolutions and pooling return start on a 64-byte boundary (one cache line, one
# AVX-512 vector): a compiled kernel's vector loads and stores then never straddle two cache lines,
# and the next layer, which reads this one's output, gets the same. NumPy's own allocations are
# only 16-byte aligned: on this project's AVX-512 machine the 3x3 depthwise convolution ran 3-6%
# slower on them (and its kernel compiled for 512-bit vectors, 10-25% slower).
ALIGNMENT = 64


def _aligned(shape, dtype, fill) -> np.ndarray:
    """A view of a slightly larger byte buffer, starting on an ALIGNMENT-byte boundary. The view
    does not own its data (`ndarray.resize` refuses it); everything else treats it as any array."""
    dtype = np.dtype(dtype)
    shape = tuple(int(n) for n in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    if any(n < 0 for n in shape):
        raise ValueError(f"shape: expected non-negative dimensions, received {shape}")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = fill(nbytes + ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def empty(shape, dtype) -> np.ndarray:
    """`np.empty(shape, dtype)`, starting on an ALIGNMENT-byte boundary."""
    return _aligned(shape, dtype, np.empty)


def zeros(shape, dtype) -> np.ndarray:
    """`np.zeros(shape, dtype)`, starting on an ALIGNMENT-byte boundary (still calloc's lazily
    zeroed pages)."""
    return _aligned(shape, dtype, np.zeros)


# Scratch buffers up to this size are kept per thread for the next call; larger ones are not.
KEEP_SCRATCH_BYTES = 16 << 20


_scratch_buffers: dict[int, dict] = {}  # thread ident -> {(name, dtype): buffer}


def scratch(name: str, size: int, dtype) -> np.ndarray:
    """A flat buffer of at least `size` elements, kept per thread and per name for reuse (up to
    KEEP_SCRATCH_BYTES): fresh memory costs a page fault per 4 KiB, and threads faulting at once
    wait on each other."""
    dtype = np.dtype(dtype)
    me = threading.get_ident()
    buffers = _scratch_buffers.get(me)
    if buffers is None:  # a new thread: drop the buffers of threads that have ended (a server's per-request threads)
        alive = {thread.ident for thread in threading.enumerate()}
        for ident in [ident for ident in _scratch_buffers if ident not in alive]:
            _scratch_buffers.pop(ident, None)
        buffers = _scratch_buffers.setdefault(me, {})
    buffer = buffers.get((name, dtype))
    if buffer is not None and buffer.size >= size:
        return buffer[:size]
    buffer = np.empty(size, dtype=dtype)
    if size * dtype.itemsize <= KEEP_SCRATCH_BYTES:
        buffers[(name, dtype)] = buffer
    return buffer


def release_scratch() -> None:
    """Drop the scratch buffers kept by every thread (they are reallocated when next needed)."""
    _scratch_buffers.clear()


_task_state = threading.local()  # .running: this thread is running a task of `run_parallel`


def _in_worker() -> bool:
    return getattr(_task_state, "running", False) or threading.current_thread().name.startswith(WORKER_PREFIX)


def run_parallel(work, tasks, blas: bool = False) -> list:
    """`work(task)` for every task, on THREADS threads when there is more than one task; the
    results in task order. The calling thread is one of the THREADS: it takes tasks like the
    workers do instead of sleeping until they finish (which saves a thread's wake-up, about 0.1 ms
    here, on every call, and keeps its caches warm). Each thread takes the next task left until
    none are, and the call returns when every task has finished, without waiting for a worker that
    woke too late to take one: on this project's VM a worker's wake-up took 0.1-0.3 ms even between
    busy calls, and a 0.3 ms call that waited for it took 0.6. `blas=True`: the tasks call matrix
    products, which then run single-threaded so that the threads do not compete for the cores.
    NumPy's floating-point error settings (`np.errstate`) of the caller apply in the workers too.
    The first exception a task raises is raised here, once the tasks already started have
    finished (no more start after it). Called from inside a task (a convolution inside a
    convolution), the tasks run in that thread, one after another."""
    tasks = list(tasks)
    if THREADS == 1 or len(tasks) <= 1 or _in_worker():
        return [work(task) for task in tasks]
    settings = np.geterr()
    results = [None] * len(tasks)
    lock = threading.Lock()
    finished = threading.Event()  # set once the last task started has finished and none is left
    unclaimed = iter(range(len(tasks)))
    state = {"running": 0, "closed": False, "error": None}  # guarded by `lock`

    def claim():
        with lock:
            index = None if state["closed"] else next(unclaimed, None)
            if index is None:
                state["closed"] = True
                if state["running"] == 0:
                    finished.set()
            else:
                state["running"] += 1
            return index

    def take_tasks():
        _task_state.running = True
        try:
            with np.errstate(**settings):
                while (index := claim()) is not None:
                    try:
                        results[index] = work(tasks[index])
                    except BaseException as error:  # noqa: BLE001 - raised in the calling thread
                        with lock:
                            state["error"] = state["error"] or error
                            state["closed"] = True
                    finally:
                        with lock:
                            state["running"] -= 1
                            if state["closed"] and state["running"] == 0:
                                finished.set()
        finally:
            _task_state.running = False

    with single_threaded_blas() if blas else contextlib.nullcontext():
        pool = _workers()
        for _ in range(min(THREADS, len(tasks)) - 1):
            pool.submit(take_tasks)
        take_tasks()
        finished.wait()
    if state["error"] is not None:
        raise state["error"]
    return results
