"""Which algorithm computes a convolution: chosen per call signature by a cost model, cached.

The rules, in order (the first that applies wins; `conv_plan` says which and why):

1. "pointwise" — a 1×…×1 kernel on an unpadded input is a plain matrix product.
2. "direct" — one input channel per group (depthwise): there is nothing for a matrix product to
   contract, so each tap is a broadcast multiply-add.
3. "fft" — long kernels: when the estimated cost of transforms plus per-frequency products is
   below the cost of the taps' products (around a hundred taps and more).
4. "implicit_gemm" — when even im2col's smallest blocks (one line of the first output axis per
   thread) would exceed the workspace limit: no copy of the input at all.
5. "im2col" — everything else: each thread gathers the windows of a cache-sized block of output
   positions side by side and multiplies them by the kernel in one deep product (the backward
   pass: the input gradient as the transposed convolution, the kernel gradient as the gathered
   windows' transposed products with the output gradient).

Implicit GEMM (row-shifted products over the input, NumPy's BLAS on all cores) is otherwise not
chosen: measured here it is slower than im2col on threads on every benchmark
case but the text CNN's 1-D forward passes (deep per-tap products), and mixing the two costs
more: after a multi-threaded BLAS call, OpenBLAS's idle threads spin for a while on the cores
that im2col's threads need.

The forward pass and the backward pass (both gradients) are planned separately; each decision
is cached by the call's shapes, strides, padding, dilations and dtype.
`set_conv_algorithm(name)` or `with conv_algorithm(name):` forces one algorithm (for tests and
benchmarks); a forced algorithm that cannot compute a call raises `ValueError` saying why.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rankconv.ops import conv_common as common
from rankconv.ops import direct_conv, fft_conv, im2col, implicit_gemm, pointwise_conv


@dataclass(frozen=True)
class Algorithm:
    name: str
    applies: Callable  # call -> None, or the reason it cannot compute the call
    forward: Callable  # (x, kernel, call) -> y
    vjp: Callable  # (grad, x, kernel, call) -> (d_x, d_kernel)


def _always(call):
    return None


ALGORITHMS = {
    algorithm.name: algorithm
    for algorithm in (
        Algorithm("implicit_gemm", _always, implicit_gemm.forward, implicit_gemm.vjp),
        Algorithm("im2col", _always, im2col.forward, im2col.vjp),
        Algorithm("fft", fft_conv.applies, fft_conv.forward, fft_conv.vjp),
        Algorithm("direct", direct_conv.applies, direct_conv.forward, direct_conv.vjp),
        Algorithm("pointwise", pointwise_conv.applies, pointwise_conv.forward, pointwise_conv.vjp),
    )
}

# Cost model constants (relative speeds measured on x86-64 with OpenBLAS; see benchmarks/).
# FFT: time of the transforms in GEMM-flop equivalents per point·log2(points), and the
# efficiency of the small per-frequency complex products relative to one large real GEMM.
FFT_TRANSFORM_COST = 90.0
FFT_PRODUCT_EFFICIENCY = 0.5

_forced: str | None = None  # the process-wide choice (set_conv_algorithm)
_local = threading.local()  # a `conv_algorithm` block's choice, in its own thread only
_cache: dict = {}
_lock = threading.Lock()


def _check_name(name):
    if name is not None and name not in ALGORITHMS:
        raise ValueError(f"Unknown convolution algorithm {name!r}; expected one of {sorted(ALGORITHMS)} or None.")


def set_conv_algorithm(name: str | None) -> None:
    """Force every convolution to use algorithm `name` (one of `ALGORITHMS`); None restores the planner."""
    global _forced
    _check_name(name)
    _forced = name


def get_conv_algorithm() -> str | None:
    """The algorithm forced in this thread (by a `conv_algorithm` block, else by
    `set_conv_algorithm`), or None when the planner decides."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else _forced


@contextlib.contextmanager
def conv_algorithm(name: str | None):
    """`with conv_algorithm("fft"): ...` forces an algorithm inside the block, in this thread only
    (`None` lets the planner decide inside it)."""
    _check_name(name)
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(name)
    try:
        yield
    finally:
        stack.pop()


def fft_cost(call: common.ConvCall, backward: bool = False) -> float:
    """Estimated work of the FFT algorithm, in the units of `call.flops` (GEMM flops): the
    transforms (input, output and kernel signals, each `points · log2(points)`) and the
    per-frequency complex products (8 real flops per complex multiply-add)."""
    grid = [fft_conv.fast_length(p) for p in call.padded_spatial]
    points = math.prod(grid)
    frequencies = math.prod(grid[:-1]) * (grid[-1] // 2 + 1)
    batch_signals = call.batch * (call.channels + call.filters)
    kernel_signals = call.channels_per_group * call.filters
    if backward:  # output gradient, input and input gradient; kernel and kernel gradient
        batch_signals += call.batch * call.channels
        kernel_signals *= 2
    transforms = FFT_TRANSFORM_COST * (batch_signals + kernel_signals) * points * math.log2(max(points, 2))
    products = 8 * frequencies * call.batch * call.channels_per_group * call.filters / FFT_PRODUCT_EFFICIENCY
    return transforms + products * (2 if backward else 1)


def _decide(call: common.ConvCall, backward: bool) -> tuple[str, str]:
    if pointwise_conv.applies(call) is None:
        return "pointwise", "the kernel is 1×…×1 on an unpadded input: one matrix product"
    if direct_conv.applies(call) is None:
        return "direct", "one input channel per group (depthwise): broadcast multiply-adds"
    gemm = call.flops * (2 if backward else 1)
    fft = fft_cost(call, backward)
    if fft < gemm:
        return "fft", f"{call.taps} taps: FFT cost ~{fft:.3g} < GEMM cost ~{gemm:.3g} (flop units)"
    if not im2col.fits(call):
        return "implicit_gemm", "one line of gathered windows per thread would exceed the workspace limit"
    return "im2col", "windows gathered in cache-sized blocks, one deep product each, on worker threads"


def plan(call: common.ConvCall, backward: bool = False) -> tuple[str, str]:
    """(algorithm name, reason) for `call`; forced by `set_conv_algorithm`, else the cached rule."""
    forced = get_conv_algorithm()
    if forced is not None:
        reason = ALGORITHMS[forced].applies(call)
        if reason is not None:
            raise ValueError(f"The forced convolution algorithm {forced!r} cannot compute this call: {reason}.")
        return forced, "forced by set_conv_algorithm"
    # the rules read these settings too (im2col's layout decides what fits)
    key = (call, backward, common.WORKSPACE_BYTES, common.THREADS, im2col.SPLIT_FIRST_AXIS, im2col.SPLIT_MIN_DEPTH)
    with _lock:
        decision = _cache.get(key)
    if decision is None:
        decision = _decide(call, backward)
        with _lock:
            if len(_cache) > 4096:
                _cache.clear()
            _cache[key] = decision
    return decision


def forward(x, kernel, call: common.ConvCall):
    return ALGORITHMS[plan(call)[0]].forward(x, kernel, call)


def vjp(grad, x, kernel, call: common.ConvCall):
    return ALGORITHMS[plan(call, backward=True)[0]].vjp(grad, x, kernel, call)
