"""Compiled kernels (numba): the convolutions and pooling that have no matrix product for BLAS.

Every kernel works on rank-3 channels-last arrays; ranks 1 and 2 get unit axes in front
(`as_rank3`), so one kernel serves all three. Padding, cropping and input dilation are never
materialised: a tap reads dilated, padded position `p = o * s + t * d - lo` of an axis, which is
input cell `p // f` when `0 <= p` and `p % f == 0` and `p // f` is inside the input. The innermost
loop always runs over contiguous channels (or filters), with a trip count LLVM vectorises.

A kernel computes the rows `[r0, r1)` of its output, a row being one `(sample, first-axis
position)` pair, so callers split rows across the worker threads; kernels that scatter (max
pooling's backward) are split by whole samples instead. Geometry travels as one int64 array:
`geometry = (s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3)` — strides, kernel dilations, low
padding and input dilations.
"""

from __future__ import annotations

import numpy as np

from rankconv.ops import conv_common as common
from rankconv.ops.jit import kernel

# ----------------------------------------------------------------------------- canonical rank 3


def as_rank3(array: np.ndarray, rank: int, spatial_from: int = 1) -> np.ndarray:
    """`array` with unit axes inserted before its `rank` spatial axes (starting at axis
    `spatial_from`) so that it has three."""
    if rank == 3:
        return array
    return array.reshape(array.shape[:spatial_from] + (1,) * (3 - rank) + array.shape[spatial_from:])


def rank3_shape(shape) -> tuple:
    """A channels-last shape `(batch, *spatial, channels)` with unit axes before its spatial axes
    so that it has three (the shape `as_rank3` gives an array)."""
    return (shape[0], *((1,) * (5 - len(shape))), *shape[1:])


def geometry(strides, dilations, low_pads, input_dilations) -> np.ndarray:
    """The kernels' geometry array for rank-1..3 arguments (unit axes first, as `as_rank3`)."""
    fill = 3 - len(strides)
    values = [(1,) * fill + tuple(strides), (1,) * fill + tuple(dilations)]
    values += [(0,) * fill + tuple(low_pads), (1,) * fill + tuple(input_dilations)]
    return np.array([v for group in values for v in group], dtype=np.int64)


def row_parts(rows: int, parts: int | None = None) -> list[tuple[int, int]]:
    """[0, rows) cut into contiguous (start, stop) runs, one per worker thread."""
    return [(s.start, s.stop) for s in common.even_slices(rows, parts or common.THREADS)]


def run_rows(work, rows: int) -> list:
    """`work(r0, r1)` on the worker threads, one contiguous run of rows each; results in order."""
    return common.run_parallel(lambda part: work(*part), row_parts(rows))


@kernel
def _cell(p, f, n):
    """The cell of an axis of `n` cells, dilated by `f`, at dilated position `p`; -1 where `p` falls
    outside or between cells. Integer division is slow, so undilated axes skip it."""
    if f == 1:
        return p if 0 <= p < n else -1
    if p < 0 or p % f != 0 or p // f >= n:
        return -1
    return p // f


# ----------------------------------------------------------------------------- depthwise convolution
# One input channel per group: output channel c * m + j is input channel c times its own weight.
# x: (N, D1, D2, D3, C); w: (K1, K2, K3, C * m); y: (N, O1, O2, O3, C * m).


@kernel
def depthwise_forward(x, w, y, geometry, m, r0, r1):
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    O1, O2, O3, F = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    K1, K2, K3 = w.shape[0], w.shape[1], w.shape[2]
    acc = np.empty(F, dtype=y.dtype)
    for r in range(r0, r1):
        n, o1 = r // O1, r % O1
        for o2 in range(O2):
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
                                for c in range(C):
                                    acc[c] += x[n, i1, i2, i3, c] * w[t1, t2, t3, c]
                            else:
                                for c in range(C):
                                    v = x[n, i1, i2, i3, c]
                                    for j in range(m):
                                        acc[c * m + j] += v * w[t1, t2, t3, c * m + j]
                for k in range(F):
                    y[n, o1, o2, o3, k] = acc[k]


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
    """Adds the output rows [r0, r1)'s share of the kernel gradient to dw (K1, K2, K3, C * m)."""
    s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3 = geometry
    D1, D2, D3, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    O1, O2, O3 = g.shape[1], g.shape[2], g.shape[3]
    K1, K2, K3 = dw.shape[0], dw.shape[1], dw.shape[2]
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
                            if m == 1:
                                for c in range(C):
                                    dw[t1, t2, t3, c] += x[n, i1, i2, i3, c] * g[n, o1, o2, o3, c]
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
def direct_forward(x, w, y, geometry, groups, r0, r1):
    """Output rows [r0, r1). Each output line (its last axis × filters) stays in cache while every
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
