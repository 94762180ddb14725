"""The benchmark suite: rankconv against PyTorch (and Keras 3 for training), in one process.

    python -m rankconv.bench [--repeats 5] [--threads 2] [--only conv|train] [--no-memory] [--json FILE]

Needs the `bench` extra (`pip install 'rankconv[bench]'`: torch, threadpoolctl; Keras 3 for the
training rows comes with the `test` extra). Where the machine sets OPENBLAS_CORETYPE, unset it
(and OPENBLAS_L2_SIZE) for this command only, so NumPy's BLAS runs its best kernel:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m rankconv.bench
The report names the BLAS kernel that ran (threadpoolctl).

Every time is the median of `--repeats` runs after a warm-up, with NumPy's BLAS and PyTorch
pinned to the same number of threads. ratio = PyTorch ms / rankconv ms (> 1: rankconv faster).
GFLOP/s counts 2 × output cells × taps × input channels per group; "roofline" is that over the
sgemm GFLOP/s NumPy reaches in the same run. Peak memory: the growth of the resident set during
one forward+backward call, measured in a fresh subprocess per case and library (Linux
/proc/self/clear_refs), inputs excluded. PyTorch gets its tensors in its own (64-byte aligned)
memory: on NumPy's buffers its oneDNN kernels are often slower, which would flatter rankconv;
rankconv gets its inputs and output gradients in memory aligned as its own ops allocate it.
PyTorch's forward is the faster of its `no_grad` forward and its autograd-recording forward (the
`no_grad` path is up to 3× slower for some of these convolutions in torch 2.13).
PyTorch has no 4-D convolution: the rank-4 case compares with the fastest way there, one Conv3D
per tap of the first kernel axis, summed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from rankconv import utils
from rankconv.ops import conv, conv_plan, conv_vjp, unrolled


@dataclass(frozen=True)
class Case:
    name: str
    x_shape: tuple  # channels-last
    kernel_shape: tuple  # Keras layout; for pooling, the window; for "mobilenet", its depthwise kernel
    strides: int | tuple = 1
    padding: str = "valid"
    dilations: tuple = (1,)  # one convolution per entry, chained (the WaveNet stack)
    # "conv", "max_pool", "average_pool", "mobilenet" (1x1 -> depthwise -> 1x1), "conv_transpose"
    # (kernel: Keras's transposed layout) or "separable" (kernel: the depthwise kernel; filters: the
    # pointwise convolution's)
    kind: str = "conv"
    filters: int = 0
    # the same convolution in another form, timed in the same turns (the lifted layer's Conv1D)
    equivalent: Case | None = None


CONV_CASES = [
    Case("seed Conv1D 600x300 k3 64f, batch 32", (32, 600, 300), (3, 300, 64)),
    Case("Kim Conv1D 64x300 k3 100f, batch 50", (50, 64, 300), (3, 300, 100)),
    Case("Kim Conv1D 64x300 k4 100f, batch 50", (50, 64, 300), (4, 300, 100)),
    Case("Kim Conv1D 64x300 k5 100f, batch 50", (50, 64, 300), (5, 300, 100)),
    Case(
        "WaveNet causal k2 64->64 len 4000, d=1..512, batch 4",
        (4, 4000, 64),
        (2, 64, 64),
        padding="causal",
        dilations=tuple(2**i for i in range(10)),
    ),
    Case("Conv2D 3x3 32x32 64->64, batch 32", (32, 32, 32, 64), (3, 3, 64, 64), padding="same"),
    Case("Conv2D 3x3 stride 2 32x32 64->64, batch 32", (32, 32, 32, 64), (3, 3, 64, 64), 2, "same"),
    Case("Conv2D 1x1 32x32 64->128, batch 32", (32, 32, 32, 64), (1, 1, 64, 128)),
    Case("Depthwise 3x3 32x32 128 groups, batch 32", (32, 32, 32, 128), (3, 3, 1, 128), padding="same"),
    Case("Conv3D 3x3x3 16^3 32->32, batch 4", (4, 16, 16, 16, 32), (3, 3, 3, 32, 32), padding="same"),
    Case(
        "Conv4D 3^4 8^4 16->16, batch 2 (PyTorch: 3 Conv3D)", (2, 8, 8, 8, 8, 16), (3, 3, 3, 3, 16, 16), padding="same"
    ),
    Case("Long-kernel Conv1D k255 len 4096 32->32, batch 8", (8, 4096, 32), (255, 32, 32), padding="same"),
    Case(
        "lifted seed Conv2D(64, (3, 300)) on 600x300x1, batch 32",
        (32, 600, 300, 1),
        (3, 300, 1, 64),
        equivalent=Case("its Conv1D(64, 3) on 600x300", (32, 600, 300), (3, 300, 64)),
    ),
    Case("grayscale first layer 28x28x1 -> 32, 3x3, batch 64", (64, 28, 28, 1), (3, 3, 1, 32)),
    Case("Depthwise 5x5 32x32 128 groups, batch 32", (32, 32, 32, 128), (5, 5, 1, 128), padding="same"),
    Case("MaxPooling2D 2x2 32x32x64, batch 32", (32, 32, 32, 64), (2, 2), 2, kind="max_pool"),
    Case("MaxPooling2D 3x3 stride 2 32x32x64, batch 32", (32, 32, 32, 64), (3, 3), 2, kind="max_pool"),
    Case(
        "MobileNet block 1x1 64->128, dw 3x3, 1x1 128->64 on 32x32, batch 16",
        (16, 32, 32, 64),
        (3, 3, 1, 128),
        padding="same",
        kind="mobilenet",
    ),
    Case(
        "Conv2DTranspose 3x3 stride 2 32x32 64->32, batch 16",
        (16, 32, 32, 64),
        (3, 3, 32, 64),
        2,
        "same",
        kind="conv_transpose",
    ),
    Case(
        "Conv1DTranspose k4 stride 2 len 1024 64->32, batch 16",
        (16, 1024, 64),
        (4, 32, 64),
        2,
        "same",
        kind="conv_transpose",
    ),
    Case(
        "SeparableConv2D 3x3 on 32x32, 64->128, batch 16",
        (16, 32, 32, 64),
        (3, 3, 64, 1),
        padding="same",
        kind="separable",
        filters=128,
    ),
]


# ----------------------------------------------------------------------------- timing and machine


# Before each timed call in `interleaved_ms`: a pause long enough for the other library's idle
# threads to stop spinning (OpenBLAS's spin out after ~2^28 cycles, ~0.1 s), then untimed calls for
# at least TURN_WARM_S. After an idle pause this VM runs the next calls of either library up to 2.5x
# slower, for about 10-30 ms of work (cores and caches waking: a depthwise 3x3 forward at 1 thread
# took 4.6, 4.3, 3.6, 2.7, 2.6, 2.5 ms in turn, PyTorch's 4.5, 4.2, 2.6, 1.8, 1.6, 1.5); one
# untimed call measured that ramp, not the libraries, and favoured the one whose idle threads spin.
# Two threads take longer: for up to ~60 ms after the pause the second core ran a worker's half of
# a call only after the calling thread had finished its own (each half 2.3 ms, the call 5 ms; the
# worker's wake-up after an idle 0.15 s took 1.4 ms median, up to 3.9). Kim's k3 Conv1D forward,
# timed in turns after 30 ms of untimed calls, twice: col2im 5.3 / 3.3 ms, im2col 5.8 / 6.3,
# implicit GEMM (on BLAS's spinning threads) 3.3 / 3.0; after 100 ms: 2.90 / 2.92, 3.59 / 3.60,
# 3.03 / 3.07; after 200 ms the same. So each turn runs 100 ms of untimed calls.
TURN_PAUSE_S = 0.15
TURN_WARM_S = 0.1


def interleaved_ms(
    functions: dict, repeats: int, warmup: int = 1, pause: float = TURN_PAUSE_S, warm: float = TURN_WARM_S
) -> dict:
    """name -> median ms of each function, timed in turns (each round: for every function a pause,
    untimed calls for at least `warm` seconds (one at least), a timed call; the order reversed every
    other round), so that the shared machine's slow phases fall on every function alike — a ratio
    of two medians taken a minute apart moved by 2x here — while neither library runs beside the
    other's spinning threads, and each is timed warm, as in a training loop."""
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in functions}
    names = list(functions)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            time.sleep(pause)
            until = time.perf_counter() + warm
            functions[name]()
            while time.perf_counter() < until:
                functions[name]()
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def sgemm_gflops(repeats: int) -> float:
    n = 2048
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    return 2 * n**3 / (median_ms(lambda: a @ b, repeats) * 1e-3) / 1e9


def blas_info() -> list[dict]:
    import threadpoolctl

    return [
        {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for info in threadpoolctl.threadpool_info()
        if info.get("user_api") == "blas"
    ]


def cpu_info() -> dict:
    """The CPU's model, its widest vector unit (AVX-512, AVX2, ...) and whether numba kernels run."""
    from rankconv.ops import jit

    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name") and model in ("", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    unit = next(
        (name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("asimd", "NEON")) if flag in flags), "?"
    )
    compiled = "numba" if jit.enabled() else f"off ({jit.unavailable_reason()})"
    return {"cpu": model, "vector_unit": unit, "compiled_kernels": compiled}


def pin_threads(threads: int):
    import threadpoolctl
    import torch

    from rankconv.ops import conv_common

    torch.set_num_threads(threads)
    conv_common.THREADS = threads  # the block-wise algorithms' worker threads
    return threadpoolctl.threadpool_limits(limits=threads, user_api="blas")


# ----------------------------------------------------------------------------- the convolutions


def _pairs(case: Case, dilation: int):
    rank = len(case.x_shape) - 2
    strides = utils.normalize_tuple(case.strides, rank, "strides")
    return utils.padding_pairs(
        case.x_shape[1:-1], case.kernel_shape[:-2], strides, (dilation,) * rank, utils.normalize_padding(case.padding)
    )


def flops(case: Case) -> int:
    """2 × multiply-adds of the case's convolutions (pooling: one operation per tap and cell)."""
    if case.kind in ("max_pool", "average_pool"):
        out = _pool_output(case)
        return case.x_shape[0] * math.prod(out) * math.prod(case.kernel_shape) * case.x_shape[-1]
    if case.kind == "mobilenet":
        batch, *spatial, channels = case.x_shape
        expanded = case.kernel_shape[-1]
        cells = batch * math.prod(spatial)
        return 2 * cells * (2 * channels * expanded + math.prod(case.kernel_shape[:-2]) * expanded)
    if case.kind == "conv_transpose":  # every input cell times every tap, channel and filter
        return 2 * math.prod(case.x_shape) * math.prod(case.kernel_shape[:-1])
    if case.kind == "separable":  # stride 1, "same": output cells = input cells
        cells = math.prod(case.x_shape[:-1])
        spread = case.x_shape[-1] * case.kernel_shape[-1]
        return 2 * cells * spread * (math.prod(case.kernel_shape[:-2]) + case.filters)
    total = 0
    for d in case.dilations:
        rank = len(case.x_shape) - 2
        strides = utils.normalize_tuple(case.strides, rank, "strides")
        out = [
            utils.conv_output_length(n, k, pair, s, d)
            for n, k, pair, s in zip(case.x_shape[1:-1], case.kernel_shape[:-2], _pairs(case, d), strides)
        ]
        total += 2 * case.x_shape[0] * math.prod(out) * math.prod(case.kernel_shape[:-1]) * case.kernel_shape[-1]
    return total


def _pool_output(case: Case) -> tuple:
    rank = len(case.x_shape) - 2
    strides = utils.normalize_tuple(case.strides, rank, "strides")
    return tuple(
        utils.conv_output_length(n, k, case.padding, s, 1)
        for n, k, s in zip(case.x_shape[1:-1], case.kernel_shape, strides)
    )


def _own_memory(array):
    """`array` copied into memory as rankconv's own ops allocate it (`conv_common.empty`: 64-byte
    aligned), as PyTorch gets its tensors in its own: in a model, a layer's input is the previous
    layer's output, and its output gradient the next layer's input gradient."""
    from rankconv.ops import conv_common

    copy = conv_common.empty(array.shape, array.dtype)
    copy[...] = array
    return copy


def arrays(case: Case):
    rng = np.random.default_rng(0)
    x = _own_memory(rng.standard_normal(case.x_shape, dtype=np.float32))
    if case.kind in ("max_pool", "average_pool"):
        return x, None
    if case.kind == "mobilenet":
        channels, expanded = case.x_shape[-1], case.kernel_shape[-1]
        w1 = rng.standard_normal((1, 1, channels, expanded), dtype=np.float32) / np.float32(math.sqrt(channels))
        wd = rng.standard_normal(case.kernel_shape, dtype=np.float32) / np.float32(3.0)
        w2 = rng.standard_normal((1, 1, expanded, channels), dtype=np.float32) / np.float32(math.sqrt(expanded))
        return x, (w1, wd, w2)
    if case.kind == "separable":
        wd = rng.standard_normal(case.kernel_shape, dtype=np.float32) / np.float32(3.0)
        spread = case.x_shape[-1] * case.kernel_shape[-1]
        rank = len(case.x_shape) - 2
        wp = rng.standard_normal((1,) * rank + (spread, case.filters), dtype=np.float32) / np.float32(math.sqrt(spread))
        return x, (wd, wp)
    w = rng.standard_normal(case.kernel_shape, dtype=np.float32) / np.float32(
        math.sqrt(math.prod(case.kernel_shape[:-1]))
    )
    return x, w


def _rankconv_pool_functions(case: Case, x):
    from rankconv import ops

    pool = ops.max_pool if case.kind == "max_pool" else ops.average_pool
    args = (case.kernel_shape, case.strides, case.padding)
    y = pool(x, *args)
    g = _own_memory(np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32))
    # the VJP as the training loop calls it: (output gradient, output, input, arguments)
    return (lambda: pool(x, *args)), (lambda: pool.vjp(g, pool(x, *args), x, *args))


def _rankconv_mobilenet_functions(case: Case, x, weights):
    w1, wd, w2 = weights

    def forward():
        h1 = conv(x, w1)
        h2 = conv(h1, wd, 1, case.padding)
        return conv(h2, w2), (h1, h2)

    y, _ = forward()
    g = _own_memory(np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32))

    def forward_backward():
        _, (h1, h2) = forward()
        g2, dw2 = conv_vjp(g, h2, w2)
        g1, dwd = conv_vjp(g2, h1, wd, 1, case.padding)
        gx, dw1 = conv_vjp(g1, x, w1)
        return gx, (dw1, dwd, dw2)

    return (lambda: forward()[0]), forward_backward


def _rankconv_family_functions(case: Case, x, w):
    """The transposed and separable convolutions, through `ops` and their VJPs."""
    from rankconv import ops

    if case.kind == "conv_transpose":

        def forward():
            return ops.conv_transpose(x, w, case.strides, case.padding)

        y = forward()
        g = _own_memory(np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32))

        def forward_backward():
            forward()
            return ops.conv_transpose_vjp(g, x, w, case.strides, case.padding)

        return forward, forward_backward
    wd, wp = w

    def separable():
        spread = ops.depthwise_conv(x, wd, 1, case.padding)
        return ops.conv(spread, wp), spread

    y, _ = separable()
    g = _own_memory(np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32))

    def separable_backward():
        _, spread = separable()
        g_spread, d_wp = ops.conv_vjp(g, spread, wp)
        gx, d_wd = ops.depthwise_conv_vjp(g_spread, x, wd, 1, case.padding)
        return gx, (d_wd, d_wp)

    return (lambda: separable()[0]), separable_backward


def rankconv_functions(case: Case, x, w):
    """(forward, forward_backward) closures for rankconv on this case."""
    if case.kind in ("max_pool", "average_pool"):
        return _rankconv_pool_functions(case, x)
    if case.kind == "mobilenet":
        return _rankconv_mobilenet_functions(case, x, w)
    if case.kind in ("conv_transpose", "separable"):
        return _rankconv_family_functions(case, x, w)

    def forward():
        h = x
        for d in case.dilations:
            h = conv(h, w, case.strides, case.padding, None, d)
        return h

    y = forward()
    unrolled.wait_for_builds()  # time the kernel this shape ends up with (`ops.unrolled`)
    g = _own_memory(np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32))

    def forward_backward():
        inputs, h = [], x
        for d in case.dilations:
            inputs.append(h)
            h = conv(h, w, case.strides, case.padding, None, d)
        grad, dw = g, np.zeros_like(w)
        for d, h_in in zip(reversed(case.dilations), reversed(inputs)):
            grad, dw_d = conv_vjp(grad, h_in, w, case.strides, case.padding, None, d)
            dw += dw_d
        return grad, dw

    return forward, forward_backward


def algorithms(case: Case) -> str:
    """The planner's choices for the case's (first) convolution: forward / backward."""
    if case.kind in ("max_pool", "average_pool"):
        from rankconv.ops import jit

        return "compiled kernel" if jit.enabled() else "numpy"
    if case.kind == "mobilenet":
        depthwise = conv_plan(case.x_shape[:-1] + case.kernel_shape[-1:], case.kernel_shape, 1, _pairs(case, 1))[0]
        return f"pointwise, {depthwise}, pointwise"
    if case.kind == "separable":
        grouped = case.kernel_shape[:-2] + (1, case.x_shape[-1] * case.kernel_shape[-1])
        depthwise = conv_plan(case.x_shape, grouped, 1, _pairs(case, 1))[0]
        return f"{depthwise}, pointwise"
    if case.kind == "conv_transpose":  # the stride-1 convolution of the stride-dilated input
        rank = len(case.x_shape) - 2
        strides = utils.normalize_tuple(case.strides, rank, "strides")
        pairs = [utils.conv_transpose_padding(k, s, 1, case.padding) for k, s in zip(case.kernel_shape[:-2], strides)]
        flipped = case.kernel_shape[:-2] + (case.kernel_shape[-1], case.kernel_shape[-2])
        args = (case.x_shape, flipped, 1, pairs, strides, 1)
        return f"{conv_plan(*args)[0]}/{conv_plan(*args, backward=True)[0]}"
    rank = len(case.x_shape) - 2
    strides = utils.normalize_tuple(case.strides, rank, "strides")
    d = case.dilations[0]
    args = (case.x_shape, case.kernel_shape, strides, _pairs(case, d), 1, d)
    return f"{conv_plan(*args)[0]}/{conv_plan(*args, backward=True)[0]}"


def _torch_tensor(array):
    """A tensor in PyTorch's own (aligned) memory: on NumPy's buffers its kernels are often slower."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(array)).clone()


def _torch_pool_or_block(case: Case, x, w):
    """(run, inputs) for the pooling and MobileNet-block cases, channels-first."""
    import torch

    functional = torch.nn.functional
    x_t = _torch_tensor(np.moveaxis(x, -1, 1))
    if case.kind in ("max_pool", "average_pool"):
        pool = functional.max_pool2d if case.kind == "max_pool" else functional.avg_pool2d
        assert case.padding == "valid" and len(case.x_shape) == 4, "PyTorch rows cover 2-D valid pooling"
        return (lambda h: pool(h, case.kernel_shape, case.strides)), [x_t]
    weights = [_torch_tensor(np.transpose(array, (3, 2, 0, 1))) for array in w]
    channels = w[1].shape[-1]

    def run(h, w1, wd, w2):
        h = functional.conv2d(h, w1)
        h = functional.conv2d(h, wd, padding=1, groups=channels)
        return functional.conv2d(h, w2)

    return run, [x_t, *weights]


def _torch_family(case: Case, x, w):
    """(run, inputs) for the transposed and separable cases, channels-first. PyTorch's transposed
    convolution computes the full output, cut to Keras's window (a view: no copy)."""
    import torch

    functional = torch.nn.functional
    rank = x.ndim - 2
    x_t = _torch_tensor(np.moveaxis(x, -1, 1))
    if case.kind == "conv_transpose":
        transpose = {1: functional.conv_transpose1d, 2: functional.conv_transpose2d, 3: functional.conv_transpose3d}[
            rank
        ]
        strides = utils.normalize_tuple(case.strides, rank, "strides")
        window = [slice(None), slice(None)]
        for n, k, s in zip(case.x_shape[1:-1], case.kernel_shape[:-2], strides):
            lo, hi = utils.conv_transpose_padding(k, s, 1, case.padding)
            length = utils.conv_transpose_output_length(n, k, case.padding, None, s)
            window.append(slice(k - 1 - lo, k - 1 - lo + length))
        weight = _torch_tensor(np.transpose(w, (rank + 1, rank, *range(rank))))  # (in, out, *kernel)
        return (lambda h, k: transpose(h, k, stride=strides)[tuple(window)]), [x_t, weight]
    wd, wp = w
    channels = x.shape[-1]
    depthwise = _torch_tensor(np.moveaxis(wd.reshape(*wd.shape[:-2], -1), -1, 0)[:, None])
    pointwise = _torch_tensor(np.transpose(wp, (rank + 1, rank, *range(rank))))
    convolve = {1: functional.conv1d, 2: functional.conv2d, 3: functional.conv3d}[rank]
    padding = tuple(lo for lo, _ in _pairs(case, 1))  # the case's kernel is the depthwise one

    def run(h, dw, pw):
        return convolve(convolve(h, dw, padding=padding, groups=channels), pw)

    return run, [x_t, depthwise, pointwise]


def _torch_convolution(case: Case, x, w):
    """(run, inputs) for a convolution case (a chain of them for the WaveNet stack), channels-first."""
    import torch

    functional = torch.nn.functional
    rank = x.ndim - 2
    strides = utils.normalize_tuple(case.strides, rank, "strides")
    groups = x.shape[-1] // w.shape[-2]

    def one(h, weight, d):
        pairs = _pairs(case, d)
        if all(lo == hi for lo, hi in pairs) and rank <= 3:
            padding = tuple(lo for lo, _ in pairs)
        else:
            h = functional.pad(h, [amount for pair in reversed(pairs) for amount in pair])
            padding = 0
        if rank == 4:
            return _torch_conv4d(h, weight, strides, d, groups)
        fn = {1: functional.conv1d, 2: functional.conv2d, 3: functional.conv3d}[rank]
        return fn(h, weight, stride=strides, padding=padding, dilation=d, groups=groups)

    def run(h, weight):
        for d in case.dilations:
            h = one(h, weight, d)
        return h

    return run, [_torch_tensor(np.moveaxis(x, -1, 1)), _torch_tensor(np.transpose(w, (rank + 1, rank, *range(rank))))]


def torch_functions(case: Case, x, w):
    """(forward, forward_backward) closures for PyTorch on this case, channels-first, own memory."""
    import torch

    if case.kind == "conv":
        run, inputs = _torch_convolution(case, x, w)
    elif case.kind in ("conv_transpose", "separable"):
        run, inputs = _torch_family(case, x, w)
    else:
        run, inputs = _torch_pool_or_block(case, x, w)
    with torch.no_grad():
        y = run(*inputs)
    g_t = _torch_tensor(np.random.default_rng(1).standard_normal(tuple(y.shape), dtype=np.float32))
    requiring = [t.clone().requires_grad_() for t in inputs]

    def forward_no_grad():
        with torch.no_grad():
            return run(*inputs)

    def forward_recording():
        return run(*requiring)

    # PyTorch's forward under no_grad is sometimes much slower than the same forward with autograd
    # recording (it dispatches differently); the report uses whichever is faster, PyTorch's best.
    forward_no_grad.alternative = forward_recording

    def forward_backward():
        for t in requiring:
            t.grad = None
        run(*requiring).backward(g_t)
        return [t.grad for t in requiring]

    return forward_no_grad, forward_backward


def _torch_conv4d(x_padded, weight, strides, dilation, groups):
    """A 4-D convolution as one Conv3D per tap of the first kernel axis (the first axis folded into
    the batch), summed: the fastest way to one in PyTorch, which has no conv4d."""
    import torch

    functional = torch.nn.functional
    batch, channels, p1 = x_padded.shape[:3]
    k1 = weight.shape[2]
    out1 = (p1 - dilation * (k1 - 1) - 1) // strides[0] + 1
    slabs = x_padded.permute(2, 0, 1, 3, 4, 5).contiguous()  # (p1, batch, C, d2, d3, d4)
    total = None
    for t in range(k1):
        start = t * dilation
        rows = slabs[start : start + (out1 - 1) * strides[0] + 1 : strides[0]]
        part = functional.conv3d(
            rows.reshape(out1 * batch, channels, *rows.shape[3:]),
            weight[:, :, t],
            stride=strides[1:],
            dilation=dilation,
            groups=groups,
        )
        total = part if total is None else total + part
    return total.reshape(out1, batch, *total.shape[1:]).permute(1, 2, 0, 3, 4, 5)


# ----------------------------------------------------------------------------- peak memory


def _resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_resident_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _return_freed_memory() -> None:
    """Hand the memory the allocator keeps after frees back to the system (glibc's malloc_trim),
    so that the measured call's allocations fault their pages in again and are counted."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _probe_memory(name: str, library: str, which: str = "fwd+bwd") -> int:
    """In a fresh process: build the case's inputs, run forward (+backward) once to load each
    library's code (numba's compiled kernels, oneDNN's generated ones: a one-time cost per process,
    not the call's memory), reset the peak, run it again."""
    (case,) = [c for c in CONV_CASES if c.name == name]
    x, w = arrays(case)
    functions = rankconv_functions(case, x, w) if library == "rankconv" else torch_functions(case, x, w)
    step = functions[0] if which == "forward" else functions[1]
    step()
    gc.collect()
    _return_freed_memory()
    if library == "rankconv":  # count the scratch a call allocates, not the warm-up's kept buffers
        from rankconv.ops import conv_common

        conv_common.release_scratch()
    baseline = _resident_bytes()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current resident set
    result = step()
    peak = _peak_resident_bytes() - baseline
    del result
    return peak


def peak_memory(case: Case, library: str, threads: int, which: str = "fwd+bwd") -> float | None:
    """MiB the resident set grows during one forward+backward, or one forward (`which="forward"`);
    None where it cannot be measured."""
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    command = [sys.executable, "-m", "rankconv.bench", "--probe-memory", case.name, library, which]
    command += ["--threads", str(threads)]
    # the child imports this rankconv, installed or not (benchmarks/*.py run from a checkout)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        return None
    return int(done.stdout.strip().splitlines()[-1]) / 2**20


# ----------------------------------------------------------------------------- Kim's CNN training

KIM = dict(vocabulary=18_765, embedding=300, length=64, batch=50, filters=100, windows=(3, 4, 5), classes=2)


def rankconv_train_step(x, y, vocabulary=KIM["vocabulary"]):
    from rankconv import constraints, layers, optimizers
    from rankconv.models import Model

    tokens = layers.Input((x.shape[1],), dtype="int32")
    embedded = layers.Embedding(vocabulary, KIM["embedding"])(tokens)
    pooled = [
        layers.GlobalMaxPooling1D()(layers.Conv1D(KIM["filters"], w, activation="relu")(embedded))
        for w in KIM["windows"]
    ]
    hidden = layers.Dropout(0.5)(layers.Concatenate()(pooled))
    outputs = layers.Dense(KIM["classes"], activation="softmax", kernel_constraint=constraints.MaxNorm(3))(hidden)
    model = Model(tokens, outputs)
    model.compile(optimizers.Adadelta(learning_rate=1.0, rho=0.95), "sparse_categorical_crossentropy")
    return lambda xb=x, yb=y: model.train_on_batch(xb, yb)


def torch_train_step(x, y, vocabulary=KIM["vocabulary"]):
    import torch

    embedding, filters, windows = KIM["embedding"], KIM["filters"], KIM["windows"]

    class Kim(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocabulary, embedding)
            self.convs = torch.nn.ModuleList(torch.nn.Conv1d(embedding, filters, w) for w in windows)
            self.dropout = torch.nn.Dropout(0.5)
            self.dense = torch.nn.Linear(filters * len(windows), KIM["classes"])

        def forward(self, ids):
            e = self.embedding(ids).transpose(1, 2)
            pooled = [torch.relu(c(e)).amax(dim=2) for c in self.convs]
            return self.dense(self.dropout(torch.cat(pooled, dim=1)))

    model = Kim()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xb=x, yb=y):
        ids, labels = torch.from_numpy(xb.astype(np.int64)), torch.from_numpy(yb.astype(np.int64))
        optimizer.zero_grad()
        loss = loss_fn(model(ids), labels)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # max-norm 3 on the output layer's weight vectors
            model.dense.weight.data = torch.renorm(model.dense.weight.data, 2, 0, 3)
        return loss.item()

    return step


def keras_train_step(x, y, vocabulary=KIM["vocabulary"]):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    tokens = keras.Input((x.shape[1],), dtype="int32")
    embedded = keras.layers.Embedding(vocabulary, KIM["embedding"])(tokens)
    pooled = [
        keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(KIM["filters"], w, activation="relu")(embedded))
        for w in KIM["windows"]
    ]
    hidden = keras.layers.Dropout(0.5)(keras.layers.Concatenate()(pooled))
    outputs = keras.layers.Dense(KIM["classes"], activation="softmax", kernel_constraint=keras.constraints.MaxNorm(3))(
        hidden
    )
    model = keras.Model(tokens, outputs)
    model.compile(keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95), "sparse_categorical_crossentropy")
    return lambda xb=x, yb=y: model.train_on_batch(xb, yb)


TRAINERS = (("rankconv", rankconv_train_step), ("PyTorch", torch_train_step), ("Keras 3/torch", keras_train_step))

# A small image CNN (the digits/MNIST shape): Conv2D 32 3x3 relu, MaxPooling 2, Conv2D 64 3x3 relu,
# MaxPooling 2, Flatten, Dense 10 softmax; Adam, batch 64 of 28x28x1 images.
IMAGE = dict(size=28, batch=64, classes=10)


def _image_layers(namespace):
    layers = namespace.layers
    return [
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(IMAGE["classes"], activation="softmax"),
    ]


def rankconv_image_step(x, y):
    import rankconv
    from rankconv import layers, optimizers
    from rankconv.models import Sequential

    model = Sequential([layers.Input(x.shape[1:]), *_image_layers(rankconv)])
    model.compile(optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.train_on_batch(x, y)  # a step at the timed batch size requests the first layer's written-out
    unrolled.wait_for_builds()  # kernel (`ops.unrolled`): time the step with it
    return lambda xb=x, yb=y: model.train_on_batch(xb, yb)


def torch_image_step(x, y):
    import torch

    flat = 64 * 5 * 5
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(flat, IMAGE["classes"]),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xb=x, yb=y):
        images = torch.from_numpy(np.ascontiguousarray(xb.transpose(0, 3, 1, 2)))
        optimizer.zero_grad()
        loss = loss_fn(model(images), torch.from_numpy(yb.astype(np.int64)))
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def keras_image_step(x, y):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    model = keras.Sequential([keras.Input(x.shape[1:]), *_image_layers(keras)])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return lambda xb=x, yb=y: model.train_on_batch(xb, yb)


IMAGE_TRAINERS = (("rankconv", rankconv_image_step), ("PyTorch", torch_image_step), ("Keras 3/torch", keras_image_step))


def _keras_available() -> bool:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras  # noqa: F401
    except ImportError:
        return False
    return True


def train_rows(repeats: int, mr_dir: str | None, mr_repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    x = rng.integers(1, KIM["vocabulary"], (KIM["batch"], KIM["length"])).astype("int32")
    y = rng.integers(0, KIM["classes"], KIM["batch"])
    trainers = [t for t in TRAINERS if t[0] != "Keras 3/torch" or _keras_available()]
    step_ms = interleaved_ms({name: make(x, y) for name, make in trainers}, repeats, warmup=3)
    rows = [{"case": "Kim CNN-rand train step, batch 50, vocab 18,765", "unit": "ms", **step_ms}]
    images = rng.standard_normal((IMAGE["batch"], IMAGE["size"], IMAGE["size"], 1)).astype("float32")
    labels = rng.integers(0, IMAGE["classes"], IMAGE["batch"])
    image_trainers = [t for t in IMAGE_TRAINERS if t[0] != "Keras 3/torch" or _keras_available()]
    image_ms = interleaved_ms({name: make(images, labels) for name, make in image_trainers}, repeats, warmup=3)
    rows.append({"case": "image CNN train step (2 conv, 2 pool, dense), batch 64 of 28x28x1", "unit": "ms", **image_ms})
    if mr_dir and os.path.isdir(mr_dir):
        rows.append(mr_epoch_row(mr_dir, trainers, mr_repeats))
        rows.append(predict_row(mr_dir, repeats))
    else:
        print(f"MR rows skipped: no MR data at {mr_dir!r} (set --mr or RANKCONV_MR_DIR)", file=sys.stderr)
    return rows


def mr_epoch_row(mr_dir: str, trainers, repeats: int) -> dict:
    from rankconv.text import read_dataset
    from rankconv.text.vocabulary import TextVectorizer

    data = read_dataset(mr_dir, encoding="latin-1")
    order = np.random.default_rng(0).permutation(len(data))
    train = order[: int(0.9 * len(order))]
    vectorizer = TextVectorizer.fit([data.texts[i] for i in train])
    x = vectorizer([data.texts[i] for i in train])
    y = np.array([data.classes.index(data.labels[i]) for i in train])
    batches = [slice(s, s + KIM["batch"]) for s in range(0, len(x), KIM["batch"])]
    vocabulary = len(vectorizer.vocabulary)
    seconds = {}
    for name, make in trainers:
        step = make(x[:50], y[:50], vocabulary)
        step()  # warm-up: builds, plans and allocates

        def epoch(step=step):
            for b in batches:
                step(x[b], y[b])

        seconds[name] = median_ms(epoch, repeats, warmup=0) / 1e3
    return {"case": f"MR epoch (90%, {len(x):,} sentences, vocab {vocabulary:,})", "unit": "s", **seconds}


def predict_row(mr_dir: str, repeats: int) -> dict:
    """rankconv's `TextClassifier.predict_proba` on all of MR's raw sentences, tokenizing included
    (throughput does not depend on the weights: an untrained model of Kim's shape)."""
    from rankconv.text import read_dataset
    from rankconv.text.model import kim_cnn
    from rankconv.text.training import TextClassifier
    from rankconv.text.vocabulary import TextVectorizer

    data = read_dataset(mr_dir, encoding="latin-1")
    vectorizer = TextVectorizer.fit(data.texts)
    model = kim_cnn(len(vectorizer.vocabulary), len(data.classes), length=vectorizer.length)
    classifier = TextClassifier(model, vectorizer, data.classes)
    ms = median_ms(lambda: classifier.predict_proba(data.texts, batch_size=512), repeats)
    return {
        "case": f"predict on raw text ({len(data):,} MR sentences)",
        "unit": "sentences/s",
        "rankconv": len(data) / (ms * 1e-3),
    }


# ----------------------------------------------------------------------------- the report


def algorithm_times(case: Case, x, w, repeats: int) -> dict:
    """Every algorithm that can compute a convolution case, forced in turn: name -> {"forward": ms,
    "fwd+bwd": ms} (the planner's regret is its choice's time over the best of these)."""
    from rankconv.ops import planner
    from rankconv.ops.convolution import _setup

    rank = len(case.x_shape) - 2
    strides = utils.normalize_tuple(case.strides, rank, "strides")
    d = case.dilations[0]
    call = _setup(x, w, strides, _pairs(case, d), 1, d)[2]

    def forced(fn, name):
        def run():
            with planner.conv_algorithm(name):
                return fn()

        return run

    functions = {}
    for name in planner.applicable(call):
        with planner.conv_algorithm(name):
            passes = rankconv_functions(case, x, w)
        functions[name] = {label: forced(fn, name) for label, fn in zip(("forward", "fwd+bwd"), passes)}
    times = {name: {} for name in functions}
    for label in ("forward", "fwd+bwd"):
        # one call each to screen (after a warm-up); those within 3x of the fastest are then timed in
        # turns (`interleaved_ms`), the others keep their one time: they cannot be the best
        screened = {name: median_ms(fns[label], 1) for name, fns in functions.items()}
        close = {name: functions[name][label] for name, ms in screened.items() if ms <= 3 * min(screened.values())}
        measured = interleaved_ms(close, repeats, warmup=0) if len(close) > 1 else {}
        for name in functions:
            times[name][label] = measured.get(name, screened[name])
    return times


def regret_of(row: dict, times: dict, label: str) -> float:
    """The planner's choice over the best algorithm, both timed in the same loop (`times`), so that
    noise between separate measurements is not read as regret. Where the forward and backward
    passes chose different algorithms (not one of `times`), the row's own time stands for the choice."""
    forward_choice, backward_choice = row["algorithm"].split("/")
    best = min(t[label] for t in times.values())
    if label == "forward" or forward_choice == backward_choice:
        chosen = times.get(forward_choice, {}).get(label)
        if chosen is not None:
            return chosen / best
    return max(1.0, row[label]["rankconv_ms"] / best)


def conv_rows(
    cases,
    repeats: int,
    threads: int,
    roofline: float,
    memory: bool,
    progress,
    forward_only: bool = False,
    regret: bool = True,
) -> list[dict]:
    rows = []
    for case in cases:
        x, w = arrays(case)
        ours_forward, ours_both = rankconv_functions(case, x, w)
        theirs_forward, theirs_both = torch_functions(case, x, w)
        count = flops(case)
        row = {"case": case.name, "algorithm": algorithms(case), "gflop": count / 1e9}
        passes = [("forward", ours_forward, theirs_forward, count)]
        if not forward_only:
            passes.append(("fwd+bwd", ours_both, theirs_both, 3 * count))
        for label, ours, theirs, work in passes:
            functions = {"ours": ours, "theirs": theirs}
            if hasattr(theirs, "alternative"):
                functions["alternative"] = theirs.alternative
            if case.equivalent is not None:  # the same convolution in its folded form, e.g. the seed's Conv1D
                equivalent = rankconv_functions(case.equivalent, *arrays(case.equivalent))
                functions["equivalent"] = equivalent[0 if label == "forward" else 1]
            measured = interleaved_ms(functions, repeats)
            ours_ms, theirs_ms = measured["ours"], min(measured["theirs"], measured.get("alternative", math.inf))
            row[label] = {
                "rankconv_ms": ours_ms,
                "pytorch_ms": theirs_ms,
                "ratio": theirs_ms / ours_ms,
                "gflops": work / (ours_ms * 1e-3) / 1e9,
                "roofline": work / (ours_ms * 1e-3) / 1e9 / roofline,
            }
            if "equivalent" in measured:
                row[label]["equivalent_ms"] = measured["equivalent"]
                row[label]["over_equivalent"] = ours_ms / measured["equivalent"]
        if regret and case.kind == "conv":
            times = algorithm_times(case, x, w, max(1, min(repeats, 3)))
            row["algorithms"] = times
            row["regret"] = {label: regret_of(row, times, label) for label, *_ in passes}
        if memory and forward_only:
            row["forward_peak_mb"] = {
                lib: peak_memory(case, lib, threads, "forward") for lib in ("rankconv", "pytorch")
            }
            row["input_mb"] = x.nbytes / 2**20
            row["output_mb"] = ours_forward().nbytes / 2**20
        elif memory:
            row["peak_mb"] = {lib: peak_memory(case, lib, threads) for lib in ("rankconv", "pytorch")}
        rows.append(row)
        progress(f"  {case.name}: done")
    return rows


def _geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def _machine_lines(machine: dict) -> list[str]:
    return [
        f"machine: {machine['machine']}, {machine['cores']} cores, Python {machine['python']}, NumPy {machine['numpy']}, "
        f"torch {machine['torch']}; threads {machine['threads']}",
        f"NumPy BLAS: {machine['blas']}; OPENBLAS_CORETYPE={machine['openblas_coretype']}",
        f"CPU: {machine.get('cpu', '?')}, vector unit {machine.get('vector_unit', '?')}; compiled kernels: "
        f"{machine.get('compiled_kernels', '?')}",
        f"sgemm roofline (2048^3 float32, this run): {machine['roofline_gflops']:.0f} GFLOP/s",
        f"median of {machine['repeats']} runs after warm-up; ratio = PyTorch ms / rankconv ms (> 1: rankconv faster)",
        "",
    ]


def format_forward_report(machine: dict, rows: list[dict]) -> str:
    """Forward passes only, with each pass's peak memory and rankconv's workspace: the growth of
    the resident set beyond the output it returns, against the bound input + 2 × output."""
    lines = _machine_lines(machine)
    header = (
        f"{'case':54} {'rankconv ms':>11} {'PyTorch ms':>10} {'ratio':>6} {'GFLOP/s':>8} {'roofline':>8} "
        f"{'peak MB ours/torch':>19} {'workspace MB':>12} {'bound MB':>9}  algorithm"
    )
    lines += [header, "-" * len(header)]
    for row in rows:
        r = row["forward"]
        peak = row.get("forward_peak_mb") or {}
        ours, theirs = peak.get("rankconv"), peak.get("pytorch")
        memory = f"{ours:.0f} / {theirs:.0f}" if ours is not None and theirs is not None else "n/a"
        workspace = f"{max(0.0, ours - row['output_mb']):.1f}" if ours is not None else "n/a"
        bound = f"{row['input_mb'] + 2 * row['output_mb']:.0f}" if "input_mb" in row else "n/a"
        lines.append(
            f"{row['case']:54} {r['rankconv_ms']:11.2f} {r['pytorch_ms']:10.2f} {r['ratio']:6.2f} {r['gflops']:8.0f} "
            f"{r['roofline']:8.0%} {memory:>19} {workspace:>12} {bound:>9}  {row['algorithm'].split('/')[0]}"
        )
    ratios = [row["forward"]["ratio"] for row in rows]
    lines += ["", f"lowest ratio {min(ratios):.2f}, geometric mean {_geomean(ratios):.2f}"]
    return "\n".join(lines)


def format_report(machine: dict, rows: list[dict], training: list[dict]) -> str:
    lines = _machine_lines(machine)
    if rows:
        header = (
            f"{'case':54} {'pass':7} {'rankconv ms':>11} {'PyTorch ms':>10} {'ratio':>6} {'GFLOP/s':>8} "
            f"{'roofline':>8} {'peak MB ours/torch':>19}  algorithm (fwd/bwd)"
        )
        lines += [header, "-" * len(header)]
        for row in rows:
            for label in ("forward", "fwd+bwd"):
                r = row[label]
                memory = ""
                if label == "fwd+bwd" and row.get("peak_mb"):
                    ours, theirs = row["peak_mb"]["rankconv"], row["peak_mb"]["pytorch"]
                    memory = f"{ours:.0f} / {theirs:.0f}" if ours is not None and theirs is not None else "n/a"
                lines.append(
                    f"{row['case'] if label == 'forward' else '':54} {label:7} {r['rankconv_ms']:11.2f} "
                    f"{r['pytorch_ms']:10.2f} {r['ratio']:6.2f} {r['gflops']:8.0f} {r['roofline']:8.0%} "
                    f"{memory:>19}  {row['algorithm'] if label == 'forward' else ''}"
                )
            if "equivalent_ms" in row["forward"]:
                over = [row[label]["over_equivalent"] for label in ("forward", "fwd+bwd") if label in row]
                lines.append(
                    f"{'':54}   over its equivalent form (timed in the same turns), fwd / fwd+bwd: "
                    + " / ".join(f"{value:.2f}" for value in over)
                )
            if row.get("algorithms"):
                each = ", ".join(
                    f"{name} {t['forward']:.2f}/{t['fwd+bwd']:.2f}" for name, t in sorted(row["algorithms"].items())
                )
                lines.append(
                    f"{'':54}   every algorithm, ms fwd/fwd+bwd: {each}; regret {row['regret']['forward']:.2f} / "
                    f"{row['regret']['fwd+bwd']:.2f}"
                )
        forward = [row["forward"]["ratio"] for row in rows]
        both = [row["fwd+bwd"]["ratio"] for row in rows]
        lines += [
            "",
            f"geometric mean ratio: forward {_geomean(forward):.2f}, forward+backward {_geomean(both):.2f}; "
            f"lowest: forward {min(forward):.2f}, forward+backward {min(both):.2f}",
        ]
        regrets = [value for row in rows for value in row.get("regret", {}).values()]
        if regrets:
            lines.append(f"planner regret (chosen / best algorithm): highest {max(regrets):.2f}")
        memory_ratios = [
            row["peak_mb"]["rankconv"] / row["peak_mb"]["pytorch"]
            for row in rows
            if row.get("peak_mb") and row["peak_mb"]["rankconv"] is not None and row["peak_mb"]["pytorch"]
        ]
        if memory_ratios:
            lines.append(f"peak memory rankconv / PyTorch (forward+backward): highest {max(memory_ratios):.2f}")
    if training:
        lines += ["", f"{'training':54} {'rankconv':>18} {'PyTorch':>10} {'Keras 3/torch':>14} {'PyTorch/ours':>13}"]
        for row in training:
            unit = row["unit"]

            def show(value, unit=unit):
                if value is None:
                    return "-"
                return f"{value:,.0f} {unit}" if unit == "sentences/s" else f"{value:.1f} {unit}"

            ours, theirs = row.get("rankconv"), row.get("PyTorch")
            ratio = f"{theirs / ours:.2f}" if ours and theirs else "-"
            lines.append(
                f"{row['case']:54} {show(ours):>18} {show(theirs):>10} {show(row.get('Keras 3/torch')):>14} {ratio:>13}"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rankconv.bench",
        description="rankconv's convolution and training benchmarks against PyTorch (and Keras 3), in one process.",
        epilog="example: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m rankconv.bench --json bench.json",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure, after a warm-up (default 5)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for NumPy's BLAS and PyTorch")
    parser.add_argument("--only", choices=["conv", "train"], help="run only the convolution or the training rows")
    parser.add_argument("--cases", help="comma-separated substrings: run only convolution cases whose name matches")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument(
        "--no-regret", action="store_true", help="skip timing every applicable algorithm per case (the regret column)"
    )
    default_mr = os.environ.get("RANKCONV_MR_DIR", os.path.join("..", "shared", "data", "mr"))
    parser.add_argument("--mr", default=default_mr, help="MR data folder for the epoch row (default %(default)s)")
    parser.add_argument("--mr-repeats", type=int, default=5, help="timed MR epochs per library (default 5)")
    parser.add_argument(
        "--forward-only",
        action="store_true",
        help="convolution forward passes only, with each one's peak memory and workspace (no training rows)",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--probe-memory", nargs=3, metavar=("CASE", "LIBRARY", "PASS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1; received {args.repeats}")
    try:
        import threadpoolctl  # noqa: F401
        import torch
    except ImportError as error:
        print(
            f"error: the benchmarks need torch and threadpoolctl ({error}); pip install 'rankconv[bench]'",
            file=sys.stderr,
        )
        return 2
    limiter = pin_threads(args.threads)
    if args.probe_memory:
        print(_probe_memory(*args.probe_memory))
        return 0
    cases = CONV_CASES
    if args.cases:
        wanted = [w.strip().lower() for w in args.cases.split(",") if w.strip()]
        cases = [c for c in CONV_CASES if any(w in c.name.lower() for w in wanted)]
        if not cases:
            parser.error(f"--cases {args.cases!r} matches no case")

    def progress(message):
        print(message, file=sys.stderr, flush=True)

    roofline = sgemm_gflops(args.repeats)
    machine = {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "threads": args.threads,
        "blas": blas_info(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        **cpu_info(),
        "roofline_gflops": roofline,
        "repeats": args.repeats,
    }
    progress(f"sgemm roofline {roofline:.0f} GFLOP/s")
    if args.forward_only and args.only == "train":
        parser.error("--forward-only runs convolutions only; it cannot go with --only train")
    rows = (
        []
        if args.only == "train"
        else conv_rows(
            cases,
            args.repeats,
            args.threads,
            roofline,
            not args.no_memory,
            progress,
            args.forward_only,
            regret=not args.no_regret,
        )
    )
    training = [] if args.only == "conv" or args.forward_only else train_rows(args.repeats, args.mr, args.mr_repeats)
    print(format_forward_report(machine, rows) if args.forward_only else format_report(machine, rows, training))
    if args.json:
        from rankconv.saving.archive import atomic_write

        with atomic_write(args.json) as temporary, open(temporary, "w") as handle:
            json.dump({"machine": machine, "conv": rows, "training": training}, handle, indent=2)
    limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    sys.exit(main())
