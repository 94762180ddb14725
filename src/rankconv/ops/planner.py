"""Which algorithm computes a convolution: chosen per call signature by a cost model, cached.

First, axes the kernel spans whole are folded into channels (the seed's equivalence used on the
package itself): where the kernel covers a whole unpadded, undilated spatial axis and groups are
1, that axis has one output position, and the call is the rank-(N-1) convolution of the input
with that axis merged into the channels — `Conv2D(64, (3, 300))` on `(600, 300, 1)` runs as
`Conv1D(64, 3)` on `(600, 300)`. Then the rules, in order (the first that applies wins;
`conv_plan` says which and why):

1. "pointwise" — a 1×…×1 kernel on an unpadded input is a plain matrix product.
2. "depthwise_kernel" — one input channel per group and more than one group (depthwise): nothing
   for a matrix product to contract, so a compiled kernel (numba) vectorised over channels; where
   compiled kernels are off or the rank is above 3, "direct" (NumPy: one pass per tap).
   2b. "direct_kernel" — tiny calls (fewer than TINY_FLOPS: an 8x8 image's layers), where the
   NumPy algorithms' Python work per block would cost more than the arithmetic.
   2c. "col2im" — an input-dilated call (a transposed convolution): one product of the undilated
   input's cells with every tap, then each output cell sums the taps that reach it; no product
   over the zeros the dilation inserts, no split into stride phases. im2col's backward pass sends
   a strided convolution's input gradient (itself input-dilated) there too.
3. "fft" — long kernels: when the estimated cost of transforms plus per-frequency products is
   below the cost of the taps' products (around a hundred taps and more).
4. "unrolled_kernel" or "direct_kernel" — windows too shallow for a matrix product (at most
   SHALLOW_DEPTH taps × channels per group, and at least SHALLOW_MIN_FILTERS filters per group: an
   image model's first layer), when compiled kernels are on: the kernel written out for the call's
   shape where all its weights fit in registers and the call is big enough (UNROLL_MIN_FLOPS),
   else the generic compiled kernel. Backward, the written-out kernel's shapes: its kernel
   gradient written out too, the input gradient as im2col's (a transposed convolution, col2im
   for a first layer); others: "implicit_gemm" (im2col for the kernel gradient alone).
   4b. "direct_kernel" — forward passes of narrow convolutions (at most 64 channels per group,
   windows of at most 432 values, filters per group a multiple of 16), with compiled kernels on:
   register blocks instead of a product too shallow for BLAS (WaveNet's k2 64->64, a 3x3 16->16).
5. "col2im" — stride-1 convolutions of rank 1-3 with at most `col2im.MAX_TAPS` taps, at least
   `col2im.MIN_CHANNELS` input channels and no more filters than channels (text CNNs' Conv1D, a
   3×3 64→64 Conv2D, a 3×3×3 32→32 Conv3D), with compiled kernels on: one product over the
   input's cells, no gather.
6. "implicit_gemm" — when even im2col's smallest blocks (one line of the first output axis per
   thread) would exceed the workspace limit: no copy of the input at all.
7. "im2col" — everything else: each thread gathers the windows of a cache-sized block of output
   positions side by side and multiplies them by the kernel in one deep product (the backward
   pass: the input gradient as the transposed convolution, the kernel gradient as the gathered
   windows' transposed products with the output gradient).

Implicit GEMM (row-shifted products over the input, NumPy's BLAS on all cores) is otherwise not
chosen: measured here it is slower than im2col on threads on every benchmark
case but the text CNN's 1-D forward passes (deep per-tap products), and mixing the two costs
more: after a multi-threaded BLAS call, OpenBLAS's idle threads spin for a while on the cores
that im2col's threads need.

`set_conv_planning("measure")` replaces the rules by measurement: the first call of each
signature runs every applicable algorithm once, keeps the fastest (cuDNN's benchmark mode,
FFTW's wisdom), and returns its result. It is off by default, so that a seeded run repeats
exactly (different algorithms sum in different orders).

The forward pass and the backward pass (both gradients) are planned separately; each decision
is cached by the call's shapes, strides, padding, dilations and dtype.
`set_conv_algorithm(name)` or `with conv_algorithm(name):` forces one algorithm (for tests and
benchmarks); a forced algorithm that cannot compute a call raises `ValueError` saying why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rankconv.ops import (
    blocks,
    col2im,
    compiled_conv,
    direct_conv,
    fft_conv,
    im2col,
    implicit_gemm,
    jit,
    pointwise_conv,
    unrolled,
)
from rankconv.ops import conv_common as common


@dataclass(frozen=True)
class Algorithm:
    name: str
    applies: Callable  # call -> None, or the reason it cannot compute the call
    forward: Callable  # (x, kernel, call) -> y
    vjp: Callable  # (grad, x, kernel, call, wanted) -> (d_x, d_kernel); None where not wanted


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
        Algorithm("col2im", col2im.applies, col2im.forward, col2im.vjp),
        Algorithm(
            "depthwise_kernel",
            compiled_conv.depthwise_applies,
            compiled_conv.depthwise_forward,
            compiled_conv.depthwise_vjp,
        ),
        Algorithm(
            "direct_kernel", compiled_conv.direct_applies, compiled_conv.direct_forward, compiled_conv.direct_vjp
        ),
        Algorithm("unrolled_kernel", unrolled.applies, unrolled.forward, unrolled.vjp),
    )
}

# Rule 4: windows this shallow (taps × channels per group) with at least this many filters per
# group go to the compiled direct kernel (forward) or implicit GEMM (backward) rather than to
# im2col. Measured on a grayscale first layer (3×3, 1 → 32, 28×28, batch 64): forward 1.5 ms
# against im2col's 1.7; forward+backward with implicit GEMM's backward 9.3 ms against im2col's 14.3.
SHALLOW_DEPTH = 9
SHALLOW_MIN_FILTERS = 8

# Rule 4, backward: where only the kernel gradient is wanted (a first layer's: its input needs no
# gradient), im2col, else implicit GEMM. Measured on the grayscale first layer (one thread, CPU):
# the kernel gradient alone 2.1 ms with im2col against 5.3 with implicit GEMM (whose output gradient
# must first be laid on the input's grid); both gradients 7.6 ms with implicit GEMM against 10.9.
# `plan(call, backward=KERNEL_GRADIENT_ONLY)` plans that case. Both apply only where no kernel is
# written out for the shape (the next rule): where one is, its backward pass is "unrolled_kernel"
# (`unrolled.vjp`): the grayscale layer's forward+backward 3.2 ms against 6.2 with implicit GEMM's
# backward (PyTorch: 4.0; 2 threads, in turns), the kernel gradient 0.8 ms against the generic
# compiled kernel's 2.1.
KERNEL_GRADIENT_ONLY = "kernel gradient only"

# Rule 4, forward: where the whole kernel fits in registers (`unrolled.UNROLL_MAX_WEIGHTS`) and the
# call has at least this many flops, the kernel written out for its shape (`unrolled`), which
# compiles once per machine on a background thread (the generic kernel computes meanwhile). Measured
# on the grayscale first layer (one thread): 0.48-0.52 ms against the generic kernel's 1.58-1.66 and
# im2col's 1.66-1.72. Smaller calls are not worth a compile of several seconds.
UNROLL_MIN_FLOPS = 1 << 24

# Rule 4b, forward: narrow convolutions (at most NARROW_MAX_CHANNELS channels per group, windows of
# at most NARROW_MAX_DEPTH values, filters per group a multiple of the direct kernel's 16 lanes)
# go to the compiled direct kernel, whose register blocks (16 filters x 4 cells) need no matrix
# product: the products the other algorithms make there are too shallow for BLAS (col2im's inner
# dimension is the channels, im2col's the window). Measured (forward, 2 threads, in turns, the
# planner's choice before the rule against the direct kernel, ms): WaveNet's k2 64->64 3.7 against
# 2.3 (the direct kernel was the fastest on the benchmark's WaveNet row in all four runs on two
# machines), k3 64->64 3.8 / 3.1, k2 32->32 2.8 / 1.7, k2 64->128 5.3 / 4.1 (im2col), 2x2 32->32
# 2.8 / 1.6, 3x3 16->16 5.1 / 1.3 (im2col), 3x3 32->32 4.4 / 3.1, stride 2 2.3 / 1.1, 3x3x3 16->16
# Conv3D 7.9 / 3.0 (im2col), 3x3 3->32 1.7 / 1.1 (im2col), grouped 3x3 (4 groups of 16 -> 16)
# 11.0 / 5.1. Not where channels or windows are deeper: k2 128->128 8.5 against 10.3; a 3x3 64->64
# (576 values) and a 3x3x3 32->32 Conv3D (864) were 1.23-1.43x slower than col2im on the other
# machine; nor with 8 filters (6.7 against col2im's 1.8: no full block). Its backward pass is slow
# (the gather): the backward pass is planned by the other rules.
NARROW_MAX_CHANNELS = 64
NARROW_MAX_DEPTH = 432

# Rule 5: `col2im.suits` (its constants and measurements are there).

# Rule 2b: calls with fewer flops than this go to the compiled direct kernel, in one thread: the
# NumPy algorithms' Python work per block costs more there. Measured (2 threads, forward / forward
# +backward): an 8x8 autoencoder's stride-2 convolutions and their transposes 0.14-0.87 ms / 0.3-0.6
# ms against im2col's 0.3-2.1 / 1.3-5.4; at 4.7 MFLOP 0.3 / 0.9-1.7 ms against 0.7 / 1.9-2.0; at
# 38 MFLOP the backward is already 2x slower than im2col's.
TINY_FLOPS = 1 << 23

# Cost model constants (relative speeds measured on x86-64 with OpenBLAS; see benchmarks/).
# FFT: time of the transforms in GEMM-flop equivalents per point·log2(points), and the
# efficiency of the small per-frequency complex products relative to one large real GEMM.
FFT_TRANSFORM_COST = 90.0
FFT_PRODUCT_EFFICIENCY = 0.5

_forced: str | None = None  # the process-wide choice (set_conv_algorithm)
_planning = "rules"  # or "measure" (set_conv_planning)
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


def set_conv_planning(mode: str) -> None:
    """ "rules" (the default: the cost model above) or "measure" (time every applicable algorithm on
    the first call of each signature and keep the fastest; results may then differ between runs in
    the last bits, as the algorithms sum in different orders)."""
    global _planning
    if mode not in ("rules", "measure"):
        raise ValueError(f"`mode` must be 'rules' or 'measure'; received {mode!r}.")
    _planning = mode


def get_conv_planning() -> str:
    return _planning


def applicable(call: common.ConvCall) -> list[str]:
    """Every algorithm that can compute `call` (after folding), in registry order."""
    call = fold(call)[0]
    return [name for name, algorithm in ALGORITHMS.items() if algorithm.applies(call) is None]


# ----------------------------------------------------------------------------- folding spanned axes


def foldable_axes(call: common.ConvCall) -> tuple[int, ...]:
    """Spatial axes the kernel spans whole (unpadded, undilated, one output position), which can
    merge into the channels: only with groups 1, and at least one spatial axis is kept."""
    if call.groups != 1 or call.rank < 2:
        return ()
    axes = tuple(
        axis
        for axis in range(call.rank)
        if call.kernel_spatial[axis] == call.x_shape[1 + axis] > 1
        and call.pairs[axis] == (0, 0)
        and call.lhs_dilation[axis] == 1
        and call.rhs_dilation[axis] == 1
    )
    return axes[: call.rank - 1] if len(axes) == call.rank else axes


def fold(call: common.ConvCall) -> tuple[common.ConvCall, tuple[int, ...]]:
    """(the call with `foldable_axes` merged into the channels, those axes)."""
    axes = foldable_axes(call)
    if not axes:
        return call, ()
    keep = [axis for axis in range(call.rank) if axis not in axes]
    merged = math.prod(call.x_shape[1 + axis] for axis in axes)
    folded = dataclasses.replace(
        call,
        x_shape=(call.batch, *(call.x_shape[1 + a] for a in keep), merged * call.channels),
        kernel_shape=(*(call.kernel_spatial[a] for a in keep), merged * call.channels_per_group, call.filters),
        strides=tuple(call.strides[a] for a in keep),
        pairs=tuple(call.pairs[a] for a in keep),
        lhs_dilation=tuple(call.lhs_dilation[a] for a in keep),
        rhs_dilation=tuple(call.rhs_dilation[a] for a in keep),
    )
    return folded, axes


def _fold_arrays(x, kernel, call, folded, axes):
    """x and kernel with the spanned axes moved next to the channels and merged into them (a copy
    only where a spanned axis is not already the last spatial ones), and the two axis orders."""
    rank = call.rank
    keep = [axis for axis in range(rank) if axis not in axes]
    x_order = [0, *(1 + a for a in keep), *(1 + a for a in axes), rank + 1]
    k_order = [*keep, *axes, rank, rank + 1]
    x_folded = np.transpose(x, x_order).reshape(folded.x_shape)
    kernel_folded = np.transpose(kernel, k_order).reshape(folded.kernel_shape)
    return x_folded, kernel_folded, x_order, k_order


def _unfold(array, order, shape):
    """Inverse of `_fold_arrays` for a gradient: `array` (folded) back to `shape` in the original order."""
    moved = array.reshape([shape[i] for i in order])
    return np.ascontiguousarray(np.transpose(moved, np.argsort(order)))


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


def _narrow(call: common.ConvCall) -> bool:
    """Rule 4b: a narrow convolution the compiled direct kernel computes in full register blocks."""
    return (
        call.channels_per_group <= NARROW_MAX_CHANNELS
        and call.taps * call.channels_per_group <= NARROW_MAX_DEPTH
        and (call.filters // call.groups) % blocks.DIRECT_LANES == 0
        and all(f == 1 for f in call.lhs_dilation)
        and compiled_conv.direct_applies(call) is None
    )


def _decide(call: common.ConvCall, backward: bool | str) -> tuple[str, str]:
    if pointwise_conv.applies(call) is None:
        return "pointwise", "the kernel is 1×…×1 on an unpadded input: one matrix product"
    if call.channels_per_group == 1 and call.groups > 1:
        why = compiled_conv.depthwise_applies(call)
        if why is None:
            return (
                "depthwise_kernel",
                "one input channel per group (depthwise): compiled kernel vectorised over channels",
            )
        return "direct", f"one input channel per group (depthwise): broadcast multiply-adds in NumPy ({why})"
    if call.flops < TINY_FLOPS and compiled_conv.direct_applies(call) is None:
        return "direct_kernel", f"{call.flops:,} flops: too little work for gathered blocks and threads"
    if any(f > 1 for f in call.lhs_dilation) and col2im.applies(call) is None and col2im.fits(call):
        return (
            "col2im",
            "a dilated input (transposed convolution): one product over the input's cells, taps added in place",
        )
    gemm = call.flops * (2 if backward else 1)
    fft = fft_cost(call, backward)
    if fft < gemm:
        return "fft", f"{call.taps} taps: FFT cost ~{fft:.3g} < GEMM cost ~{gemm:.3g} (flop units)"
    depth = call.taps * call.channels_per_group
    if depth <= SHALLOW_DEPTH and call.filters // call.groups >= SHALLOW_MIN_FILTERS:
        written_out = call.flops >= UNROLL_MIN_FLOPS and unrolled.applies(call) is None
        if backward and written_out:
            return (
                "unrolled_kernel",
                f"windows of {depth} values: the kernel gradient by a compiled kernel written out for this shape, "
                "every weight's sum in a register; the input gradient as a transposed convolution",
            )
        if backward == KERNEL_GRADIENT_ONLY:
            return "im2col", f"windows of {depth} values, the kernel gradient alone: gathered windows' products"
        if backward:
            return "implicit_gemm", f"windows of {depth} values: their gradients as per-tap products on all cores"
        if written_out:
            return (
                "unrolled_kernel",
                f"windows of {depth} values, {call.taps * call.channels * call.filters} weights: a compiled kernel written "
                "out for this shape, every weight in a register",
            )
        if compiled_conv.direct_applies(call) is None:
            return "direct_kernel", f"windows of {depth} values are too shallow for a matrix product: compiled kernel"
    if not backward and _narrow(call):
        return (
            "direct_kernel",
            f"{call.channels_per_group} channels per group, windows of {depth} values: too shallow a product for "
            "BLAS; compiled kernel, 16 filters x 4 cells in registers",
        )
    if col2im.suits(call):
        return (
            "col2im",
            f"{call.channels} channels, {call.taps} taps, {call.filters} filters: one product over the input's cells "
            "(taps x filters per cell, no gathered windows), taps summed by a compiled kernel",
        )
    if not im2col.fits(call):
        return "implicit_gemm", "one line of gathered windows per thread would exceed the workspace limit"
    return "im2col", "windows gathered in cache-sized blocks, one deep product each, on worker threads"


def _key(call: common.ConvCall, backward: bool | str) -> tuple:
    # the rules read these settings too (im2col's layout decides what fits)
    return (
        call,
        backward,
        common.WORKSPACE_BYTES,
        common.THREADS,
        im2col.SPLIT_FIRST_AXIS,
        im2col.SPLIT_MIN_DEPTH,
        jit.enabled(),
        _planning,
        SHALLOW_DEPTH,
        SHALLOW_MIN_FILTERS,
        UNROLL_MIN_FLOPS,
        TINY_FLOPS,
        NARROW_MAX_CHANNELS,
        NARROW_MAX_DEPTH,
        col2im.MAX_RANK,
        col2im.MAX_TAPS,
        col2im.MIN_CHANNELS,
    )


def _remember(key, decision) -> None:
    with _lock:
        if len(_cache) > 4096:
            _cache.clear()
        _cache[key] = decision


def _plan_folded(call: common.ConvCall, backward: bool | str) -> tuple[str, str]:
    """(algorithm, reason) for a call with nothing left to fold: forced, cached, or the rules
    (which measured planning does not cache: its first call measures instead, see `_run`)."""
    forced = get_conv_algorithm()
    if forced is not None:
        reason = ALGORITHMS[forced].applies(call)
        if reason is not None:
            raise ValueError(f"The forced convolution algorithm {forced!r} cannot compute this call: {reason}.")
        return forced, "forced by set_conv_algorithm"
    key = _key(call, backward)
    with _lock:
        decision = _cache.get(key)
    if decision is None:
        decision = _decide(call, backward)
        if _planning == "rules":
            _remember(key, decision)
    return decision


def plan(call: common.ConvCall, backward: bool | str = False) -> tuple[str, str]:
    """(algorithm name, reason) for `call`; forced by `set_conv_algorithm`, else the cached rule
    (or, in measured planning, the measured choice once the signature has run)."""
    folded, axes = fold(call)
    name, reason = _plan_folded(folded, backward)
    if axes:
        shown = ", ".join(str(a) for a in axes)
        reason = f"the kernel spans spatial axis {shown} whole: folded into the channels, then {reason}"
    return name, reason


def _run(call: common.ConvCall, backward: bool | str, run) -> object:
    """`run(name)` with the planned algorithm for a call with nothing left to fold. Measured
    planning, on a signature's first call: every applicable algorithm once, the fastest
    remembered and its result returned."""
    if _planning == "rules" or get_conv_algorithm() is not None:
        return run(_plan_folded(call, backward)[0])
    key = _key(call, backward)
    with _lock:
        decision = _cache.get(key)
    if decision is not None:
        return run(decision[0])
    best = None
    for name, algorithm in ALGORITHMS.items():
        if algorithm.applies(call) is not None:
            continue
        start = time.perf_counter()
        result = run(name)
        seconds = time.perf_counter() - start
        if best is None or seconds < best[1]:
            best = (name, seconds, result)
    _remember(key, (best[0], f"measured fastest ({best[1] * 1e3:.3g} ms on its first call)"))
    return best[2]


def forward(x, kernel, call: common.ConvCall):
    folded, axes = fold(call)
    if axes:
        x, kernel, _, _ = _fold_arrays(x, kernel, call, folded, axes)
        return _run(folded, False, lambda name: ALGORITHMS[name].forward(x, kernel, folded)).reshape(call.output_shape)
    return _run(call, False, lambda name: ALGORITHMS[name].forward(x, kernel, call))


def vjp(grad, x, kernel, call: common.ConvCall, wanted=(True, True)):
    """`(d_x, d_kernel)`; `wanted` says which of the two the caller needs (the other is None, and
    algorithms skip its work where they can: a first layer's input gradient is never needed). The
    kernel gradient alone is planned apart from both (`KERNEL_GRADIENT_ONLY`)."""
    wanted = (bool(wanted[0]), bool(wanted[1]))
    mode = KERNEL_GRADIENT_ONLY if wanted == (False, True) else True
    folded, axes = fold(call)
    if axes:
        x, kernel, x_order, k_order = _fold_arrays(x, kernel, call, folded, axes)
        grad = grad.reshape(folded.output_shape)
    d_x, d_kernel = _run(folded, mode, lambda name: ALGORITHMS[name].vjp(grad, x, kernel, folded, wanted))
    if axes:
        d_x = _unfold(d_x, x_order, call.x_shape) if wanted[0] else None
        d_kernel = _unfold(d_kernel, k_order, call.kernel_shape) if wanted[1] else None
    return (d_x if wanted[0] else None), (d_kernel if wanted[1] else None)
