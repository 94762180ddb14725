"""im2col in cache-sized blocks: gather each block's windows into a buffer, one deep product each.

The output positions `(batch, *output_spatial)` are cut into *blocks* of about BLOCK_BYTES of
gathered windows: several whole samples, or one sample's slab of the first output axis. For a
block, the cells of the dilated, padded input it reads are assembled once (`_slab`), its windows
(a strided view of the slab) are copied side by side into a buffer of `taps * channels_per_group`
columns, and one matrix product with the kernel (its taps and channels flattened in the same order)
writes the block's rows of the output, which are contiguous. A block is small enough to stay in
the core's cache between the copy and the product, and blocks run on `conv_common.THREADS`
threads with single-threaded BLAS, so the copies run in parallel too.

Backward, the kernel gradient is the same buffers' transposed products with the output gradient's
rows, summed over blocks; the input gradient is the transposed convolution — the output gradient,
dilated by the strides and padded by the kernel's span, correlated with the flipped, transposed
kernel — computed by this module's forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rankconv.ops import conv_common as common

# Largest block of gathered windows, in bytes. Larger blocks mean fewer NumPy calls per thread
# (each costs a hand-over of the GIL); measured here, 8 MB was fastest for every case from
# 1 MB up.
BLOCK_BYTES = 8 << 20


def applies(call: common.ConvCall) -> str | None:
    return None


# ----------------------------------------------------------------------------- geometry
# The work is cut in two levels. A *unit* is a slab of the input — several whole samples, or one
# sample's lines [A, B) along the first output axis — that one thread pads once; a *block* is the
# part of a unit's output whose windows are gathered and multiplied at once. Units are few and
# blocks cheap, so the threads spend their time in NumPy's copies and products (which release
# the GIL), not in Python.


@dataclass(frozen=True)
class _Unit:
    samples: tuple[int, int]  # [n0, n1)
    lines: tuple[int, int]  # [A, B) of the first output axis
    blocks: tuple[tuple[int, int], ...]  # [a, b) line ranges inside `lines`


def block_bytes(call: common.ConvCall) -> int:
    """Bytes of gathered windows per block: BLOCK_BYTES, or less so that every thread's block and
    slab stay within the call's workspace limit (`conv_common.set_conv_workspace`)."""
    return max(1, min(BLOCK_BYTES, call.workspace_limit() // common.THREADS * 3 // 4))


def _units(call: common.ConvCall) -> list[_Unit]:
    out = call.output_spatial
    per_line = math.prod(out[1:]) * call.taps * call.channels * call.dtype.itemsize
    per_sample = per_line * out[0]
    block = block_bytes(call)
    if per_sample < block:  # blocks of whole samples, one per unit
        # as many units as fill the blocks, rounded up to a multiple of the threads, equal in size
        count = -(-call.batch * per_sample // block)
        count = min(call.batch, -(-count // common.THREADS) * common.THREADS)
        samples = -(-call.batch // count)
        return [
            _Unit((n, min(n + samples, call.batch)), (0, out[0]), ((0, out[0]),)) for n in range(0, call.batch, samples)
        ]
    step = max(1, block // max(1, per_line))
    blocks = [(a, min(a + step, out[0])) for a in range(0, out[0], step)]
    parts = max(1, min(len(blocks), -(-common.THREADS // call.batch)))  # split samples when the batch is small
    units = []
    for n in range(call.batch):
        for run in common.split_runs(blocks, parts):
            units.append(_Unit((n, n + 1), (run[0][0], run[-1][1]), tuple(run)))
    return units


def _axis_copy(n, lo, dilation, start, stop):
    """Along one axis of length `n`, padded by `lo` before, dilated by `dilation`: the slice of the
    region [start, stop) of padded coordinates that holds data, and the data's slice."""
    first = max(0, -(-(start - lo) // dilation))
    last = min(n, -(-(stop - lo) // dilation))  # exclusive
    if last <= first:
        return None, None
    at = lo + first * dilation - start
    return slice(at, at + (last - first - 1) * dilation + 1, dilation), slice(first, last)


def _slab_shape(call: common.ConvCall, unit: _Unit) -> tuple:
    (n0, n1), (a, b) = unit.samples, unit.lines
    lines = (b - a - 1) * call.strides[0] + call.spans[0]
    rest = ((o - 1) * s + k for o, s, k in zip(call.output_spatial[1:], call.strides[1:], call.spans[1:]))
    return (n1 - n0, lines, *rest, call.channels)


def _slab(x, call: common.ConvCall, unit: _Unit, buffer) -> np.ndarray:
    """The cells of the dilated, padded input that `unit` reads, in `buffer` (zeros elsewhere)."""
    shape = _slab_shape(call, unit)
    slab = buffer[: math.prod(shape)].reshape(shape)
    target, source = [slice(None)], [slice(*unit.samples)]
    starts = (unit.lines[0] * call.strides[0], *(0 for _ in shape[2:-1]))
    for n, (lo, _), f, start, length in zip(call.x_shape[1:-1], call.pairs, call.lhs_dilation, starts, shape[1:-1]):
        t, s = _axis_copy(n, lo, f, start, start + length)
        if t is None:
            slab[...] = 0
            return slab
        target.append(t)
        source.append(s)
    if all(f == 1 for f in call.lhs_dilation) and all(
        t.start == 0 and t.stop == n for t, n in zip(target[1:], shape[1:-1])
    ):  # no padding cell is read: the input itself, no copy
        return x[tuple(source)]
    if any(f > 1 for f in call.lhs_dilation):
        slab[...] = 0
    else:  # zero only the border the data does not cover
        for axis, t in enumerate(target[1:], start=1):
            index = [slice(None)] * slab.ndim
            if t.start > 0:
                index[axis] = slice(0, t.start)
                slab[tuple(index)] = 0
            if t.stop < slab.shape[axis]:
                index[axis] = slice(t.stop, None)
                slab[tuple(index)] = 0
    slab[tuple(target)] = x[tuple(source)]
    return slab


def _windows(slab, call: common.ConvCall) -> np.ndarray:
    """(samples, *slab_output, groups, *kernel_spatial, channels_per_group): a strided view."""
    out = ((slab.shape[1] - call.spans[0]) // call.strides[0] + 1, *call.output_spatial[1:])
    steps = slab.strides[1:-1]
    item = slab.strides[-1]
    cg = call.channels_per_group
    shape = (slab.shape[0], *out, call.groups, *call.kernel_spatial, cg)
    strides = (
        slab.strides[0],
        *(st * s for st, s in zip(steps, call.strides)),
        cg * item,
        *(st * d for st, d in zip(steps, call.rhs_dilation)),
        item,
    )
    return np.lib.stride_tricks.as_strided(slab, shape, strides, writeable=False)


def _kernel_matrices(kernel, call: common.ConvCall) -> list[np.ndarray]:
    """Per group, its (taps * channels_per_group, filters_per_group) matrix, rows in gather order."""
    matrix = kernel.reshape(-1, call.filters)
    if call.groups == 1:
        return [matrix]
    fg = call.filters // call.groups
    return [np.ascontiguousarray(matrix[:, g * fg : (g + 1) * fg]) for g in range(call.groups)]


def _gathered_blocks(x, call: common.ConvCall, units: list[_Unit]):
    """For each block of `units` (one thread's run): (samples, lines, gathered) where gathered is
    the block's windows as a (rows, groups, taps * channels_per_group) array in a reused buffer."""
    slab_buffer = common.scratch("slab", max(math.prod(_slab_shape(call, u)) for u in units), call.dtype)
    per_line = math.prod(call.output_spatial[1:]) * call.channels * call.taps
    widest = max((u.samples[1] - u.samples[0]) * (b - a) for u in units for a, b in u.blocks)
    buffer = common.scratch("gather", widest * per_line, call.dtype)
    depth = call.taps * call.channels_per_group
    for unit in units:
        windows = _windows(_slab(x, call, unit, slab_buffer), call)
        first = unit.lines[0]
        for a, b in unit.blocks:
            source = windows[:, a - first : b - first]
            gathered = buffer[: source.size].reshape(source.shape)
            gathered[...] = source  # (np.copyto of such a view holds the GIL; assignment releases it)
            yield unit.samples, (a, b), gathered.reshape(-1, call.groups, depth)


# ----------------------------------------------------------------------------- entry points


def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
    y = np.empty(call.output_shape, dtype=call.dtype)
    if y.size == 0:
        return y
    matrices = _kernel_matrices(kernel, call)
    fg = call.filters // call.groups

    def run(units):
        for (n0, n1), (a, b), gathered in _gathered_blocks(x, call, units):
            rows = y[n0:n1, a:b].reshape(-1, call.filters)
            for g, matrix in enumerate(matrices):
                np.matmul(gathered[:, g], matrix, out=rows[:, g * fg : (g + 1) * fg])

    common.run_parallel(run, common.split_runs(_units(call), common.THREADS), blas=True)
    return y


def _kernel_grad(grad, x, call: common.ConvCall) -> np.ndarray:
    fg = call.filters // call.groups
    depth = call.taps * call.channels_per_group

    def run(units):
        total = np.zeros((call.groups, depth, fg), dtype=call.dtype)
        for (n0, n1), (a, b), gathered in _gathered_blocks(x, call, units):
            rows = grad[n0:n1, a:b].reshape(-1, call.filters)
            for g in range(call.groups):
                total[g] += gathered[:, g].T @ rows[:, g * fg : (g + 1) * fg]
        return total

    total = sum(common.run_parallel(run, common.split_runs(_units(call), common.THREADS), blas=True))
    # (groups, taps * cg, fg) → (*kernel_spatial, cg, groups * fg)
    grouped = total.reshape(call.groups, call.taps, call.channels_per_group, fg).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(grouped).reshape(call.kernel_shape)


def transposed_call(call: common.ConvCall) -> common.ConvCall | None:
    """The convolution that computes the input gradient from the output gradient, or None where
    its padding would be negative (a forward padding wider than the kernel's span)."""
    pairs = []
    for n, f, (lo, _), span, s, o in zip(
        call.x_shape[1:-1], call.lhs_dilation, call.pairs, call.spans, call.strides, call.output_spatial
    ):
        # d_x[i] reads the dilated, padded output gradient at lo + i*f + t*d for the flipped taps t:
        # padded by span - 1 - lo before, and after by what reaches the last input cell.
        before = span - 1 - lo
        after = (n - 1) * f + lo + 1 - (o - 1) * s - 1
        if before < 0 or after < 0:
            return None
        pairs.append((before, after))
    g = call.groups
    cg, fg = call.channels_per_group, call.filters // g
    return common.ConvCall(
        (call.batch, *call.output_spatial, call.filters),
        (*call.kernel_spatial, fg, g * cg),
        call.lhs_dilation,
        tuple(pairs),
        call.strides,
        call.rhs_dilation,
        call.dtype,
    )


def _transposed_kernel(kernel, call: common.ConvCall) -> np.ndarray:
    """Flipped taps, each tap's (cg, groups * fg) block transposed group by group to (fg, groups * cg)."""
    g, cg, fg = call.groups, call.channels_per_group, call.filters // call.groups
    flipped = kernel[(slice(None, None, -1),) * call.rank]
    per_group = flipped.reshape(*call.kernel_spatial, cg, g, fg)
    moved = np.moveaxis(per_group, -3, -1)  # (*k, g, fg, cg)
    moved = np.moveaxis(moved, -3, -2)  # (*k, fg, g, cg)
    return np.ascontiguousarray(moved).reshape(*call.kernel_spatial, fg, g * cg)


def vjp(grad, x, kernel, call: common.ConvCall):
    if grad.size == 0 or x.size == 0:  # nothing reaches the output, or nothing to differentiate
        return np.zeros_like(x), np.zeros_like(kernel)
    transposed = transposed_call(call)
    if transposed is None:
        from rankconv.ops import implicit_gemm

        dx = implicit_gemm.vjp(grad, x, kernel, call)[0]
    else:
        dx = forward(np.ascontiguousarray(grad), _transposed_kernel(kernel, call), transposed)
    return dx, _kernel_grad(np.ascontiguousarray(grad), x, call)
