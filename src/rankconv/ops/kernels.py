"""Compiled kernels (numba): the convolutions and pooling that have no matrix product for BLAS.

Every kernel works on rank-3 channels-last arrays (`rank3`: ranks 1 and 2 get unit axes in
front), so one kernel serves all three. Padding, cropping and input dilation are never
materialised: a tap reads dilated, padded position `p = o * s + t * d - lo` of an axis, which is
input cell `p // f` when `0 <= p` and `p % f == 0` and `p // f` is inside the input. The innermost
loop always runs over contiguous channels (or filters), with a trip count LLVM vectorises.

A kernel computes the rows `[r0, r1)` of its output, a row being one `(sample, first-axis
position)` pair, so callers split rows across the worker threads; kernels that scatter (max
pooling's backward) are split by whole samples instead. Geometry travels as one int64 array (`rank3.geometry`).
"""

from __future__ import annotations

import numpy as np

from rankconv.ops import blocks
from rankconv.ops.jit import kernel
from rankconv.ops.rank3 import _cell

# ----------------------------------------------------------------------------- depthwise convolution
# One input channel per group: output channel c * m + j is input channel c times its own weight.
# x: (N, D1, D2, D3, C); w: (K1, K2, K3, C * m); y: (N, O1, O2, O3, C * m).


@kernel
def _interior(O3, D3, K3, s3, d3, lo3):
    """The outputs [first, last) of the last axis whose every tap lands inside the input (an empty
    range within [0, O3] where there are none)."""
    first = min(O3, max(0, (lo3 + s3 - 1) // s3))
    reach = D3 - 1 + lo3 - (K3 - 1) * d3
    last = min(O3, reach // s3 + 1) if reach >= 0 else 0
    return first, max(first, last)


@kernel
def depthwise_forward(x, w, y, geometry, m, r0, r1):
    """Output rows [r0, r1). With depth multiplier 1 and no input dilation, each output line runs in
    register blocks: its interior in blocks of cells (`blocks.depthwise_line_4`), its other cells
    (padded ends included) one at a time, `DEPTHWISE_WIDE_LANES` channels at once where there are
    as many (`depthwise_wide_1`, enough independent sums to keep the vector units busy), else
    `DEPTHWISE_LANES` (`depthwise_line_1`). The channels beyond a multiple of `DEPTHWISE_LANES`,
    and every other case, accumulate one cell at a time here."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    O1, O2, O3, F = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    K1, K2, K3 = w.shape[0], w.shape[1], w.shape[2]
    lanes, outputs = blocks.DEPTHWISE_LANES, blocks.DEPTHWISE_OUTPUTS
    acc = np.zeros(F, dtype=y.dtype)
    zero = acc[0]
    blocked, wide, first, last = 0, 0, 0, 0
    if m == 1 and f1 == 1 and f2 == 1 and f3 == 1 and C >= lanes:
        blocked = C - C % lanes
        wide = C - C % blocks.DEPTHWISE_WIDE_LANES
        first, last = _interior(O3, D3, K3, s3, d3, lo3)
    middle = first + (last - first) // outputs * outputs  # [first, middle) in blocks of `outputs`
    for r in range(r0, r1):
        n, o1 = r // O1, r % O1
        for o2 in range(O2):
            if blocked:
                blocks.depthwise_line_4(x, w, y, geometry, n, o1, o2, first, middle, 0, blocked, zero)
                for o3_from, o3_to in ((0, first), (middle, O3)):
                    blocks.depthwise_wide_1(x, w, y, geometry, n, o1, o2, o3_from, o3_to, 0, wide, zero)
                    blocks.depthwise_line_1(x, w, y, geometry, n, o1, o2, o3_from, o3_to, wide, blocked, zero)
            if blocked == F:
                continue
            for o3 in range(O3):
                acc[:] = 0
                for t1 in range(K1):
                    i1 = _cell(o1 * s1 + t1 * d1 - lo1, f1, D1)
                    if i1 < 0:
                        continue
                    for t2 in range(K2):
                        i2 = _cell(o2 * s2 + t2 * d2 - lo2, f2, D2)
                        if i2 < 0:
                            continue
                        for t3 in range(K3):
                            i3 = _cell(o3 * s3 + t3 * d3 - lo3, f3, D3)
                            if i3 < 0:
                                continue
                            if m == 1:
                                # slices, so the loop index starts at 0: numba then knows it is not
                                # negative and LLVM vectorises the loop
                                cells, weights, sums = (
                                    x[n, i1, i2, i3, blocked:],
                                    w[t1, t2, t3, blocked:],
                                    acc[blocked:],
                                )
                                for c in range(sums.size):
                                    sums[c] += cells[c] * weights[c]
                            else:
                                for c in range(C):
                                    v = x[n, i1, i2, i3, c]
                                    for j in range(m):
                                        acc[c * m + j] += v * w[t1, t2, t3, c * m + j]
                y[n, o1, o2, o3, blocked:] = acc[blocked:]


@kernel
def depthwise_input_grad(g, w, dx, geometry, m, r0, r1):
    """dx rows [r0, r1) (rows of the input: sample, first input axis), gathered from the output
    cells each input cell feeds (the transposed convolution, written as a gather: no conflicts)."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = dx.shape[1], dx.shape[2], dx.shape[3], dx.shape[4]
    O1, O2, O3 = g.shape[1], g.shape[2], g.shape[3]
    K1, K2, K3 = w.shape[0], w.shape[1], w.shape[2]
    acc = np.empty(C, dtype=dx.dtype)
    for r in range(r0, r1):
        n, i1 = r // D1, r % D1
        for i2 in range(D2):
            for i3 in range(D3):
                acc[:] = 0
                for t1 in range(K1):
                    o1 = _cell(i1 * f1 + lo1 - t1 * d1, s1, O1)
                    if o1 < 0:
                        continue
                    for t2 in range(K2):
                        o2 = _cell(i2 * f2 + lo2 - t2 * d2, s2, O2)
                        if o2 < 0:
                            continue
                        for t3 in range(K3):
                            o3 = _cell(i3 * f3 + lo3 - t3 * d3, s3, O3)
                            if o3 < 0:
                                continue
                            if m == 1:
                                for c in range(C):
                                    acc[c] += g[n, o1, o2, o3, c] * w[t1, t2, t3, c]
                            else:
                                for c in range(C):
                                    total = acc[c]
                                    for j in range(m):
                                        total += g[n, o1, o2, o3, c * m + j] * w[t1, t2, t3, c * m + j]
                                    acc[c] = total
                for c in range(C):
                    dx[n, i1, i2, i3, c] = acc[c]


@kernel
def depthwise_kernel_grad(x, g, dw, geometry, m, r0, r1):
    """Adds the output rows [r0, r1)'s share of the kernel gradient to dw (K1, K2, K3, C * m). With
    depth multiplier 1 and no input dilation, each output line's interior (the cells whose every
    tap lands inside the input) runs in register blocks of `DEPTHWISE_GRAD_LANES` channels and 3
    or 2 taps of the last axis (`blocks.depthwise_kernel_grad_3`, `_2`; `_1` for a last axis of one
    tap); its other cells, the channels beyond a multiple of the lanes, and every other case, one
    product at a time here."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    O1, O2, O3 = g.shape[1], g.shape[2], g.shape[3]
    K1, K2, K3 = dw.shape[0], dw.shape[1], dw.shape[2]
    lanes = blocks.DEPTHWISE_GRAD_LANES
    zero = np.zeros(1, dtype=dw.dtype)[0]
    blocked, first, last = 0, 0, 0
    if m == 1 and f1 == 1 and f2 == 1 and f3 == 1 and C >= lanes:
        blocked = C - C % lanes
        first, last = _interior(O3, D3, K3, s3, d3, lo3)
    for r in range(r0, r1):
        n, o1 = r // O1, r % O1
        for o2 in range(O2):
            if blocked and last > first:
                t3 = 0
                while K3 - t3 >= 5 or K3 - t3 == 3:  # blocks of 3 and 2: no block of one tap (a single chain of sums)
                    blocks.depthwise_kernel_grad_3(x, g, dw, geometry, n, o1, o2, first, last, t3, 0, blocked, zero)
                    t3 += 3
                while K3 - t3 >= 2:
                    blocks.depthwise_kernel_grad_2(x, g, dw, geometry, n, o1, o2, first, last, t3, 0, blocked, zero)
                    t3 += 2
                if K3 - t3 == 1:
                    blocks.depthwise_kernel_grad_1(x, g, dw, geometry, n, o1, o2, first, last, t3, 0, blocked, zero)
            for o3 in range(O3):
                c_from = blocked if first <= o3 < last else 0
                if c_from == C:
                    continue
                for t1 in range(K1):
                    i1 = _cell(o1 * s1 + t1 * d1 - lo1, f1, D1)
                    if i1 < 0:
                        continue
                    for t2 in range(K2):
                        i2 = _cell(o2 * s2 + t2 * d2 - lo2, f2, D2)
                        if i2 < 0:
                            continue
                        for t3 in range(K3):
                            i3 = _cell(o3 * s3 + t3 * d3 - lo3, f3, D3)
                            if i3 < 0:
                                continue
                            if m == 1:
                                # slices from index 0: numba knows the loop index is not negative
                                cells, grads, sums = (
                                    x[n, i1, i2, i3, c_from:],
                                    g[n, o1, o2, o3, c_from:],
                                    dw[t1, t2, t3, c_from:],
                                )
                                for c in range(sums.size):
                                    sums[c] += cells[c] * grads[c]
                            else:
                                for c in range(C):
                                    v = x[n, i1, i2, i3, c]
                                    for j in range(m):
                                        dw[t1, t2, t3, c * m + j] += v * g[n, o1, o2, o3, c * m + j]


# ----------------------------------------------------------------------------- direct (few channels)
# Any groups, vectorised over a group's filters: for the first layers of image models (1 or 3
# input channels) and other convolutions whose windows are too shallow for a matrix product.
# x: (N, D1, D2, D3, C); w: (K1, K2, K3, C // G, F); y: (N, O1, O2, O3, F).


@kernel
def _direct_lines(x, w, y, geometry, groups, r0, r1):
    """Output rows [r0, r1), for groups with few filters or an input-dilated last axis. Each output line (its last axis × filters) stays in cache while every
    tap adds to it: taps outside, positions along the last axis inside, filters innermost."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3 = x.shape[1], x.shape[2], x.shape[3]
    O1, O2, O3, F = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    K1, K2, K3, cpg = w.shape[0], w.shape[1], w.shape[2], w.shape[3]
    fpg = F // groups
    for r in range(r0, r1):
        n, o1 = r // O1, r % O1
        for o2 in range(O2):
            line = y[n, o1, o2]
            line[:] = 0
            for t1 in range(K1):
                i1 = _cell(o1 * s1 + t1 * d1 - lo1, f1, D1)
                if i1 < 0:
                    continue
                for t2 in range(K2):
                    i2 = _cell(o2 * s2 + t2 * d2 - lo2, f2, D2)
                    if i2 < 0:
                        continue
                    cells = x[n, i1, i2]
                    for t3 in range(K3):
                        shift = t3 * d3 - lo3
                        if f3 == 1:  # the outputs whose tap lands inside: one range, no test per cell
                            first = max(0, (-shift + s3 - 1) // s3)
                            last = min(O3, (D3 - 1 - shift) // s3 + 1) if D3 - 1 - shift >= 0 else 0
                        else:
                            first, last = 0, O3
                        for grp in range(groups):
                            base = grp * fpg
                            for ci in range(cpg):
                                channel = grp * cpg + ci
                                weights = w[t1, t2, t3, ci]
                                for o3 in range(first, last):
                                    i3 = o3 * s3 + shift if f3 == 1 else _cell(o3 * s3 + shift, f3, D3)
                                    if i3 < 0:
                                        continue
                                    v = cells[i3, channel]
                                    for f in range(fpg):
                                        line[o3, base + f] += v * weights[base + f]


@kernel
def direct_forward(x, w, y, geometry, groups, r0, r1):
    """Output rows [r0, r1). Where each group has at least a block of filters and the last axis is
    not input-dilated, the interior of each output line runs in register blocks
    (`blocks.direct_line_4`, then `_1`) and the cells and filters left over one cell at a time; otherwise
    line by line (`_direct_lines`)."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3 = x.shape[1], x.shape[2], x.shape[3]
    O1, O2, O3, F = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    K1, K2, K3, cpg = w.shape[0], w.shape[1], w.shape[2], w.shape[3]
    fpg = F // groups
    lanes, outputs = blocks.DIRECT_LANES, blocks.DIRECT_OUTPUTS
    if f1 != 1 or f2 != 1 or f3 != 1 or fpg < lanes:
        _direct_lines(x, w, y, geometry, groups, r0, r1)
        return
    blocked_filters = fpg - fpg % lanes
    first, last = _interior(O3, D3, K3, s3, d3, lo3)
    middle = first + (last - first) // outputs * outputs  # [first, middle) in blocks of `outputs`
    zero = np.zeros(1, dtype=y.dtype)[0]
    for r in range(r0, r1):
        n, o1 = r // O1, r % O1
        for o2 in range(O2):
            blocks.direct_line_4(x, w, y, geometry, n, o1, o2, first, middle, groups, blocked_filters, zero)
            blocks.direct_line_1(x, w, y, geometry, n, o1, o2, middle, last, groups, blocked_filters, zero)
            for o3 in range(O3):
                f_from = blocked_filters if first <= o3 < last else 0
                if f_from == fpg:
                    continue
                out = y[n, o1, o2, o3]
                for grp in range(groups):
                    out[grp * fpg + f_from : (grp + 1) * fpg] = 0
                for t1 in range(K1):
                    i1 = _cell(o1 * s1 + t1 * d1 - lo1, f1, D1)
                    if i1 < 0:
                        continue
                    for t2 in range(K2):
                        i2 = _cell(o2 * s2 + t2 * d2 - lo2, f2, D2)
                        if i2 < 0:
                            continue
                        for t3 in range(K3):
                            i3 = _cell(o3 * s3 + t3 * d3 - lo3, f3, D3)
                            if i3 < 0:
                                continue
                            for grp in range(groups):
                                sums = out[grp * fpg + f_from : (grp + 1) * fpg]  # from index 0: vectorised
                                for ci in range(cpg):
                                    v = x[n, i1, i2, i3, grp * cpg + ci]
                                    weights = w[t1, t2, t3, ci, grp * fpg + f_from : (grp + 1) * fpg]
                                    for f in range(sums.size):
                                        sums[f] += v * weights[f]


@kernel
def direct_input_grad(g, w, dx, geometry, groups, r0, r1):
    """dx rows [r0, r1) as a gather over the output cells each input cell feeds."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = dx.shape[1], dx.shape[2], dx.shape[3], dx.shape[4]
    O1, O2, O3, F = g.shape[1], g.shape[2], g.shape[3], g.shape[4]
    K1, K2, K3, cpg = w.shape[0], w.shape[1], w.shape[2], w.shape[3]
    fpg = F // groups
    acc = np.empty(C, dtype=dx.dtype)
    partial = np.empty(fpg, dtype=dx.dtype)
    for r in range(r0, r1):
        n, i1 = r // D1, r % D1
        for i2 in range(D2):
            for i3 in range(D3):
                acc[:] = 0
                for t1 in range(K1):
                    o1 = _cell(i1 * f1 + lo1 - t1 * d1, s1, O1)
                    if o1 < 0:
                        continue
                    for t2 in range(K2):
                        o2 = _cell(i2 * f2 + lo2 - t2 * d2, s2, O2)
                        if o2 < 0:
                            continue
                        for t3 in range(K3):
                            o3 = _cell(i3 * f3 + lo3 - t3 * d3, s3, O3)
                            if o3 < 0:
                                continue
                            for grp in range(groups):
                                base = grp * fpg
                                for ci in range(cpg):
                                    # products lane by lane (vectorised), then summed in order
                                    for f in range(fpg):
                                        partial[f] = g[n, o1, o2, o3, base + f] * w[t1, t2, t3, ci, base + f]
                                    total = acc[grp * cpg + ci]
                                    for f in range(fpg):
                                        total += partial[f]
                                    acc[grp * cpg + ci] = total
                for c in range(C):
                    dx[n, i1, i2, i3, c] = acc[c]


@kernel
def direct_kernel_grad(x, g, dw, geometry, groups, r0, r1):
    """Adds the output rows [r0, r1)'s share of the kernel gradient to dw (K1, K2, K3, C // G, F)."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3 = x.shape[1], x.shape[2], x.shape[3]
    O1, O2, O3, F = g.shape[1], g.shape[2], g.shape[3], g.shape[4]
    K1, K2, K3, cpg = dw.shape[0], dw.shape[1], dw.shape[2], dw.shape[3]
    fpg = F // groups
    for r in range(r0, r1):
        n, o1 = r // O1, r % O1
        for o2 in range(O2):
            for o3 in range(O3):
                for t1 in range(K1):
                    i1 = _cell(o1 * s1 + t1 * d1 - lo1, f1, D1)
                    if i1 < 0:
                        continue
                    for t2 in range(K2):
                        i2 = _cell(o2 * s2 + t2 * d2 - lo2, f2, D2)
                        if i2 < 0:
                            continue
                        for t3 in range(K3):
                            i3 = _cell(o3 * s3 + t3 * d3 - lo3, f3, D3)
                            if i3 < 0:
                                continue
                            for grp in range(groups):
                                base = grp * fpg
                                for ci in range(cpg):
                                    v = x[n, i1, i2, i3, grp * cpg + ci]
                                    for f in range(fpg):
                                        dw[t1, t2, t3, ci, base + f] += v * g[n, o1, o2, o3, base + f]


# ----------------------------------------------------------------------------- pooling
# x: (N, D1, D2, D3, C); y: (N, O1, O2, O3, C); windows of (K1, K2, K3) taps, no dilation.


@kernel
def max_pool_forward(x, y, pool, geometry, r0, r1):
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    O1, O2, O3 = y.shape[1], y.shape[2], y.shape[3]
    K1, K2, K3 = pool[0], pool[1], pool[2]
    acc = np.empty(C, dtype=y.dtype)
    for r in range(r0, r1):
        n, o1 = r // O1, r % O1
        for o2 in range(O2):
            for o3 in range(O3):
                acc[:] = -np.inf
                for t1 in range(K1):
                    i1 = o1 * s1 + t1 - lo1
                    if i1 < 0 or i1 >= D1:
                        continue
                    for t2 in range(K2):
                        i2 = o2 * s2 + t2 - lo2
                        if i2 < 0 or i2 >= D2:
                            continue
                        for t3 in range(K3):
                            i3 = o3 * s3 + t3 - lo3
                            if i3 < 0 or i3 >= D3:
                                continue
                            for c in range(C):
                                v = x[n, i1, i2, i3, c]
                                # NaN wins, as in np.maximum
                                acc[c] = v if (v > acc[c] or v != v) else acc[c]
                for c in range(C):
                    y[n, o1, o2, o3, c] = acc[c]


@kernel
def max_pool_backward(x, g, dx, pool, geometry, n0, n1):
    """dx for samples [n0, n1) (zeroed by the caller): each window's gradient goes to its first
    maximum in tap order. Windows overlap, so this scatters: callers split by whole samples."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    O1, O2, O3 = g.shape[1], g.shape[2], g.shape[3]
    K1, K2, K3 = pool[0], pool[1], pool[2]
    best = np.empty(C, dtype=x.dtype)
    where = np.empty(C, dtype=np.int64)
    for n in range(n0, n1):
        flat = dx[n].reshape(-1)  # the sample's cells and channels, flat
        for o1 in range(O1):
            for o2 in range(O2):
                for o3 in range(O3):
                    best[:] = -np.inf
                    where[:] = -1
                    for t1 in range(K1):
                        i1 = o1 * s1 + t1 - lo1
                        if i1 < 0 or i1 >= D1:
                            continue
                        for t2 in range(K2):
                            i2 = o2 * s2 + t2 - lo2
                            if i2 < 0 or i2 >= D2:
                                continue
                            for t3 in range(K3):
                                i3 = o3 * s3 + t3 - lo3
                                if i3 < 0 or i3 >= D3:
                                    continue
                                offset = ((i1 * D2 + i2) * D3 + i3) * C
                                for c in range(C):
                                    v = x[n, i1, i2, i3, c]
                                    if v > best[c] or (where[c] < 0 and v == best[c]):
                                        best[c] = v
                                        where[c] = offset + c
                    for c in range(C):
                        if where[c] >= 0:
                            flat[where[c]] += g[n, o1, o2, o3, c]


@kernel
def max_pool_backward_tiled(x, r, g, dx, pool, geometry, r0, r1):
    """dx for output rows [r0, r1) where windows do not overlap (strides equal to the window):
    every cell a window covers is written once, the window's gradient on its first cell equal to
    the window's maximum `r` (in tap order), zero on the others; no scatter, so rows split across
    threads. Cells no window covers are left alone (the caller zeroes them)."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    O1, O2, O3 = g.shape[1], g.shape[2], g.shape[3]
    K1, K2, K3 = pool[0], pool[1], pool[2]
    zero = np.zeros(1, dx.dtype)[0]
    claimed = np.empty(C, dtype=np.uint8)
    for row in range(r0, r1):
        n, o1 = row // O1, row % O1
        for o2 in range(O2):
            for o3 in range(O3):
                claimed[:] = 0
                best, grad = r[n, o1, o2, o3], g[n, o1, o2, o3]
                for t1 in range(K1):
                    i1 = o1 * s1 + t1 - lo1
                    if i1 < 0 or i1 >= D1:
                        continue
                    for t2 in range(K2):
                        i2 = o2 * s2 + t2 - lo2
                        if i2 < 0 or i2 >= D2:
                            continue
                        for t3 in range(K3):
                            i3 = o3 * s3 + t3 - lo3
                            if i3 < 0 or i3 >= D3:
                                continue
                            cells, target = x[n, i1, i2, i3], dx[n, i1, i2, i3]
                            for c in range(C):
                                hit = claimed[c] == 0 and cells[c] == best[c]
                                target[c] = grad[c] if hit else zero
                                claimed[c] |= hit


@kernel
def average_pool_forward(x, y, pool, geometry, counts1, counts2, counts3, r0, r1):
    """Window means over the real cells each window covers (padding is not counted): `counts_a[o]`
    is how many taps of axis a land inside the input at output position o (in x's dtype)."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    O1, O2, O3 = y.shape[1], y.shape[2], y.shape[3]
    K1, K2, K3 = pool[0], pool[1], pool[2]
    acc = np.empty(C, dtype=y.dtype)
    for r in range(r0, r1):
        n, o1 = r // O1, r % O1
        for o2 in range(O2):
            for o3 in range(O3):
                acc[:] = 0
                for t1 in range(K1):
                    i1 = o1 * s1 + t1 - lo1
                    if i1 < 0 or i1 >= D1:
                        continue
                    for t2 in range(K2):
                        i2 = o2 * s2 + t2 - lo2
                        if i2 < 0 or i2 >= D2:
                            continue
                        for t3 in range(K3):
                            i3 = o3 * s3 + t3 - lo3
                            if i3 < 0 or i3 >= D3:
                                continue
                            for c in range(C):
                                acc[c] += x[n, i1, i2, i3, c]
                count = counts1[o1] * counts2[o2] * counts3[o3]
                for c in range(C):
                    y[n, o1, o2, o3, c] = acc[c] / count


@kernel
def average_pool_backward(g, dx, pool, geometry, counts1, counts2, counts3, r0, r1):
    """dx rows [r0, r1) (sample, first input axis), gathered: each input cell sums g / count over
    the windows that cover it."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = dx.shape[1], dx.shape[2], dx.shape[3], dx.shape[4]
    O1, O2, O3 = g.shape[1], g.shape[2], g.shape[3]
    K1, K2, K3 = pool[0], pool[1], pool[2]
    acc = np.empty(C, dtype=dx.dtype)
    for r in range(r0, r1):
        n, i1 = r // D1, r % D1
        for i2 in range(D2):
            for i3 in range(D3):
                acc[:] = 0
                for t1 in range(K1):
                    o1 = _cell(i1 + lo1 - t1, s1, O1)
                    if o1 < 0:
                        continue
                    for t2 in range(K2):
                        o2 = _cell(i2 + lo2 - t2, s2, O2)
                        if o2 < 0:
                            continue
                        for t3 in range(K3):
                            o3 = _cell(i3 + lo3 - t3, s3, O3)
                            if o3 < 0:
                                continue
                            count = counts1[o1] * counts2[o2] * counts3[o3]
                            for c in range(C):
                                acc[c] += g[n, o1, o2, o3, c] / count
                for c in range(C):
                    dx[n, i1, i2, i3, c] = acc[c]


# ----------------------------------------------------------------------------- col2im
# A transposed convolution's taps added onto the output (`col2im`): cols (rows, D2, D3, T, C)
# holds, for a slab of input rows (sample and first input axis, flattened), every input cell's
# product with every tap (T = K1 * K2 * K3, taps in C order); output cell o of an axis receives
# tap t of input cell i where i * f + lo - t * d == o.


@kernel
def col2im_add(cols, y, cells1, cells2, cells3, D1, i_first, r0, r1):
    """Output rows [r0, r1) (a row: sample and first-axis position) get every tap's share from the
    input rows `cols` holds: flattened rows (sample, first input axis) [i_first, i_first +
    len(cols)), each `(D2, D3, taps, filters)`. `cells_a[o, t]` is the input cell of axis a that
    tap t brings to output position o, or -1 (tables computed once per call: no integer division in
    the loop). Adds onto `y`: a caller covering the input in several slabs zeroes it first."""
    O1, O2, O3, C = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    K1, K2, K3 = cells1.shape[1], cells2.shape[1], cells3.shape[1]
    slab = cols.shape[0]
    for r in range(r0, r1):
        n, o1 = r // O1, r % O1
        for t1 in range(K1):
            i1 = cells1[o1, t1]
            if i1 < 0:
                continue
            row = n * D1 + i1 - i_first
            if row < 0 or row >= slab:
                continue
            for o2 in range(O2):
                for o3 in range(O3):
                    out = y[n, o1, o2, o3]
                    for t2 in range(K2):
                        i2 = cells2[o2, t2]
                        if i2 < 0:
                            continue
                        for t3 in range(K3):
                            i3 = cells3[o3, t3]
                            if i3 < 0:
                                continue
                            source = cols[row, i2, i3, (t1 * K2 + t2) * K3 + t3]
                            for c in range(C):
                                out[c] += source[c]


@kernel
def col2im_gather(g, cols, taps, geometry, D1, r0, r1):
    """The backward of `col2im_add`: input rows [r0, r1) (flattened: sample, first input axis) get
    into `cols[r - r0]`, for every input cell and tap, the output gradient's cell that tap reaches
    (zeros past the output)."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D2, D3, C = cols.shape[1], cols.shape[2], cols.shape[4]
    O1, O2, O3 = g.shape[1], g.shape[2], g.shape[3]
    K1, K2, K3 = taps[0], taps[1], taps[2]
    for r in range(r0, r1):
        n, i1 = r // D1, r % D1
        for i2 in range(D2):
            for i3 in range(D3):
                for t1 in range(K1):
                    o1 = i1 * f1 + lo1 - t1 * d1
                    for t2 in range(K2):
                        o2 = i2 * f2 + lo2 - t2 * d2
                        for t3 in range(K3):
                            o3 = i3 * f3 + lo3 - t3 * d3
                            target = cols[r - r0, i2, i3, (t1 * K2 + t2) * K3 + t3]
                            if 0 <= o1 < O1 and 0 <= o2 < O2 and 0 <= o3 < O3:
                                source = g[n, o1, o2, o3]
                                for c in range(C):
                                    target[c] = source[c]
                            else:
                                target[:] = 0


# ----------------------------------------------------------------------------- conv epilogue
# The Conv layers' bias and activation (`ops.fused_conv`) on a channels-last output seen as
# (rows, C). Activation codes: 0 linear, 1 relu, 2 relu6, 3 tanh, 4 sigmoid.


@kernel
def epilogue_forward(y, bias, activation, r0, r1):
    """Rows [r0, r1) of y, in place: activation(y + bias). One loop per activation, each branch-free
    in the channels (`zero` in y's dtype: a literal 0 would widen the arithmetic and stop LLVM
    vectorising)."""
    C = y.shape[1]
    zero = np.zeros(1, y.dtype)[0]
    one, six = zero + 1, zero + 6
    for i in range(r0, r1):
        if activation == 1:  # relu; NaN passes, as in np.maximum
            for c in range(C):
                v = y[i, c] + bias[c]
                y[i, c] = zero if v < zero else v
        elif activation == 2:  # relu6; NaN passes, as in np.clip
            for c in range(C):
                v = y[i, c] + bias[c]
                y[i, c] = zero if v < zero else (six if v > six else v)
        elif activation == 3:
            for c in range(C):
                y[i, c] = np.tanh(y[i, c] + bias[c])
        elif activation == 4:
            for c in range(C):
                y[i, c] = one / (one + np.exp(-(y[i, c] + bias[c])))
        else:
            for c in range(C):
                y[i, c] += bias[c]


@kernel
def epilogue_backward(g, r, out, sums, activation, r0, r1):
    """Rows [r0, r1): out = g times the activation's derivative (from the output r), and `sums`
    (one float64 row of C, zeroed here) their column sums: the bias gradient's share of these rows."""
    C = g.shape[1]
    zero = np.zeros(1, g.dtype)[0]
    one, six = zero + 1, zero + 6
    for c in range(C):
        sums[c] = 0
    for i in range(r0, r1):
        if activation == 1:
            for c in range(C):
                v = g[i, c] if r[i, c] > zero else zero
                out[i, c] = v
                sums[c] += v
        elif activation == 2:
            for c in range(C):
                v = g[i, c] if zero < r[i, c] < six else zero
                out[i, c] = v
                sums[c] += v
        elif activation == 3:
            for c in range(C):
                v = g[i, c] * (one - r[i, c] * r[i, c])
                out[i, c] = v
                sums[c] += v
        elif activation == 4:
            for c in range(C):
                v = g[i, c] * (r[i, c] * (one - r[i, c]))
                out[i, c] = v
                sums[c] += v
        else:
            for c in range(C):
                v = g[i, c]
                out[i, c] = v
                sums[c] += v
