"""The transposed convolution's own algorithm: one product, then every tap's share added in place.

A transposed convolution is computed here as a stride-1 convolution of a dilated input
(`conv_general` with `lhs_dilation`). Read from the input's side, input cell `i` reaches output
`i*f + lo - t*d` through tap `t` (input dilation f, padding lo, kernel dilation d). So

    cols = x_rows @ kernel_matrix        # (cells, channels) @ (channels, taps * filters)

computes every tap's contribution of every input cell in one deep matrix product with no gathered
copy of the input, and each tap's slice of `cols` is added onto the strided output cells it reaches
("col2im", as PyTorch and Caffe compute transposed convolutions). The multiply count is the
undilated input's, not the dilated one's: im2col on the dilated input would multiply zeros, and
its sub-pixel decomposition splits the work into `prod(f)` small products.

Backward, the same geometry runs the other way: every tap's output-gradient cells gathered into
`cols` (zeros where a tap reaches past the output), then `d_x_rows = cols @ kernel_matrix.T` and
`d_kernel_matrix = x_rows.T @ cols`: two deep products.

Applies to stride-1 calls with one group (what a transposed convolution's forward pass is); the
planner picks it for calls with input dilation.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from rankconv.ops import conv_common as common
from rankconv.ops import jit, kernels, rank3


def applies(call: common.ConvCall) -> str | None:
    """None if this algorithm computes `call`, else the reason it does not."""
    if any(s != 1 for s in call.strides):
        return f"the strides are {call.strides}, not all 1"
    if call.groups != 1:
        return f"the call has {call.groups} groups, not 1"
    return None


def _axis_taps(n, f, lo, k, d, o):
    """Per tap along one axis: (input cells, output cells) as slices, or None where the tap reaches
    no output cell. Input i meets output p = i*f + lo - t*d; valid for 0 <= p < o."""
    result = []
    for t in range(k):
        shift = lo - t * d
        first = max(0, -(shift // f))  # smallest i with i*f + shift >= 0
        last = min(n - 1, (o - 1 - shift) // f)  # largest i with i*f + shift <= o - 1
        if last < first:
            result.append(None)
            continue
        start = first * f + shift
        result.append((slice(first, last + 1), slice(start, start + (last - first) * f + 1, f)))
    return result


def _taps(call: common.ConvCall):
    """(flat tap index, input slices, output slices) for every tap that reaches the output."""
    per_axis = [
        _axis_taps(n, f, lo, k, d, o)
        for n, f, (lo, _), k, d, o in zip(
            call.x_shape[1:-1],
            call.lhs_dilation,
            call.pairs,
            call.kernel_spatial,
            call.rhs_dilation,
            call.output_spatial,
        )
    ]
    for index, combination in enumerate(itertools.product(*per_axis)):
        if any(c is None for c in combination):
            continue
        yield index, tuple(c[0] for c in combination), tuple(c[1] for c in combination)


def _kernel_matrix(kernel, call: common.ConvCall) -> np.ndarray:
    """The kernel `(*taps, channels, filters)` as `(channels, taps * filters)`."""
    taps = call.taps
    return np.ascontiguousarray(
        kernel.reshape(taps, call.channels, call.filters).transpose(1, 0, 2).reshape(call.channels, -1)
    )


def _sample_bytes(call: common.ConvCall) -> int:
    """The `cols` scratch one sample takes."""
    return math.prod(call.x_shape[1:-1]) * call.taps * call.filters * call.dtype.itemsize


def _row_bytes(call: common.ConvCall) -> int:
    """The `cols` scratch one input row takes (a row: one sample's cells at one position of the
    first axis of a rank-3 call; a whole sample at ranks 1-2, as `rank3.as_rank3` lays them out)."""
    first = call.x_shape[1] if call.rank == 3 else 1
    return _sample_bytes(call) // max(1, first)


def _unit_bytes(call: common.ConvCall) -> int:
    """The least `cols` scratch a block takes: one input row with compiled kernels (which cut a
    large sample into slabs of rows), one sample in NumPy."""
    return _row_bytes(call) if _runs_compiled(call) else _sample_bytes(call)


def fits(call: common.ConvCall) -> bool:
    """Whether the smallest block's `cols` fits the workspace limit (blocks are never smaller)."""
    return _unit_bytes(call) <= call.workspace_limit()


# The planner's rule 5 (`suits`): col2im for stride-1 convolutions of rank 1-3 with deep enough inputs and no more filters
# than channels (its extra traffic per cell is taps x filters, im2col's taps x channels).
# Measured here in turns with pauses (ms, forward / forward+backward, col2im against im2col): the
# seed's Conv1D 14.8/47.1 against 19.8/57.6, Kim's k3 5.2/13.6 against 5.8/18.6 (k4 and k5 within
# 3%), WaveNet's k2 64->64 4.3/10.0 against 4.5/14.3, a 3x3 64->64 Conv2D 20.2/64.4 against
# 23.6/75.7. Since rank-3 samples are cut into slabs of rows (`col2im._forward_rows`), also (2
# threads, forward / forward+backward): a 3x3x3 Conv3D on 16^3, 32->32, batch 4, 9.6/21.0 against
# 11.0/29.5; 64->64, batch 2, 8.4/27.8 against 17.1/32.0; 32->16 6.0/13.1 against 8.7/19.2; a 3x3
# 32->32 Conv2D (32x32, batch 32) 6.7/14.0 against 8.1/16.0; a k15 64->64 Conv1D 9.4/30.5 against
# 14.5/32.4; a 5x5 64->64 Conv2D (25 taps) even. Slower with few channels (16->16 Conv3D: 5.2/19.4
# against implicit GEMM's 3.5/14.3; 3->64: 46/144 against 14/65) or more filters than channels
# (13x13, 32->64).
MAX_RANK = 3
MAX_TAPS = 27
MIN_CHANNELS = 32


def suits(call: common.ConvCall) -> bool:
    """Whether col2im is the algorithm for `call` without input dilation (the planner's rule 5, and
    the input gradient of im2col's backward pass, itself a convolution): stride 1, rank 1-3, at
    most MAX_TAPS taps, at least MIN_CHANNELS channels, no more filters than channels, compiled
    kernels on, and its smallest block within the workspace limit."""
    return (
        call.rank <= MAX_RANK
        and call.taps <= MAX_TAPS
        and call.channels >= MIN_CHANNELS
        and call.filters <= call.channels
        and jit.enabled()
        and applies(call) is None
        and fits(call)
    )


# Rows (or samples) per product: each block's `cols` (taps × filters per input cell) within this
# many bytes, about a core's L2 cache, so that adding the taps (or reading the gathered gradient)
# finds it there. Measured on a 3×3 stride-2 transposed convolution (32×32, 64 -> 32): one sample
# per block 5.1 ms per 8 samples against 7.3 ms for one block of 8; on a 3×3×3 Conv3D (16^3,
# 32 -> 32, batch 4), slabs of 2 rows against whole samples (14 MB of `cols` each): see
# `benchmarks/` and the README's speed section.
BLOCK_BYTES = 2 << 20


def _chunks(call: common.ConvCall):
    """Per worker thread, its runs of samples: blocks of `BLOCK_BYTES` of `cols` (at least one
    sample each, so never beyond the workspace limit `fits` checks). The NumPy path's blocks."""
    blocks = list(common.batch_chunks(call.batch, _sample_bytes(call), BLOCK_BYTES))
    return common.split_runs(blocks, call.threads)


def _slab_rows(call: common.ConvCall) -> int:
    """Input rows per product on the compiled path: within BLOCK_BYTES and the workspace limit, at
    least one."""
    return max(1, min(BLOCK_BYTES, call.workspace_limit()) // max(1, _row_bytes(call)))


def _runs_compiled(call: common.ConvCall) -> bool:
    """Whether the compiled kernels compute `call` (they are on, and its rank is at most 3)."""
    return jit.enabled() and call.rank <= 3


def _compiled(call: common.ConvCall):
    """`_compiled_arguments(call)` where compiled kernels run; None where the NumPy path runs."""
    return _compiled_arguments(call) if _runs_compiled(call) else None


@functools.lru_cache(maxsize=256)
def _compiled_arguments(call: common.ConvCall):
    """The compiled kernels' extra arguments: `((tap counts, geometry), tables, reach)`, the first
    for `col2im_gather`, the second for `col2im_add` (per axis, `[o, t]` -> the input cell tap t
    brings to output o, or -1; unit axes first, as `rank3.as_rank3`), the third per output position
    of the first axis the input rows `[first, last)` its taps read (first > last: none). Cached per
    call signature: a training step repeats the same calls."""
    fill = 3 - call.rank
    taps = np.array((1,) * fill + tuple(call.kernel_spatial), dtype=np.int64)
    geometry = rank3.geometry(call.strides, call.rhs_dilation, [lo for lo, _ in call.pairs], call.lhs_dilation)
    tables = [np.zeros((1, 1), dtype=np.int64)] * fill
    for n, f, (lo, _), k, d, o in zip(
        call.x_shape[1:-1], call.lhs_dilation, call.pairs, call.kernel_spatial, call.rhs_dilation, call.output_spatial
    ):
        position = np.arange(o)[:, None] - lo + np.arange(k)[None, :] * d  # dilated input position
        cell = position // f
        tables.append(np.where((position >= 0) & (position % f == 0) & (cell < n), cell, -1).astype(np.int64))
    valid = tables[0] >= 0
    first = np.where(valid, tables[0], np.iinfo(np.int64).max).min(axis=1)
    last = np.where(valid, tables[0] + 1, np.iinfo(np.int64).min).max(axis=1)
    return (taps, geometry), tuple(tables), (first, last)


def _cols(call: common.ConvCall, cells: tuple) -> np.ndarray:
    """A scratch `(*cells, taps, filters)` array."""
    shape = (*cells, call.taps, call.filters)
    return common.scratch("col2im.cols", math.prod(shape), call.dtype).reshape(shape)


def _row_cols(call: common.ConvCall, rows: int) -> np.ndarray:
    """`cols` for `rows` input rows of the rank-3 layout: `(rows, D2, D3, taps, filters)`."""
    return _cols(call, (rows, *rank3.rank3_shape(call.x_shape)[2:4]))


def _sample_cols(call: common.ConvCall, samples: int) -> np.ndarray:
    """`cols` for `samples` whole samples: `(samples, *spatial, taps, filters)`."""
    return _cols(call, (samples, *call.x_shape[1:-1]))


def _backward_products(flat, inputs, matrix, d_x_rows, d_matrix):
    """A block's share of the backward pass from its gathered output gradient `flat` (cells, taps
    * filters): its input gradient into `d_x_rows` and its kernel gradient added to `d_matrix`
    (either None where not wanted)."""
    if d_x_rows is not None:
        np.matmul(flat, matrix.T, out=d_x_rows)
    if d_matrix is not None:
        d_matrix += inputs.T @ flat


def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
    if 0 in call.output_shape or x.size == 0:
        return common.zeros(call.output_shape, call.dtype)
    matrix = _kernel_matrix(kernel.astype(call.dtype, copy=False), call)
    compiled = _compiled(call)
    if compiled:
        return _forward_rows(x, matrix, call, compiled)
    taps = list(_taps(call))
    y = common.zeros(call.output_shape, call.dtype)

    def run(chunks):
        for start, stop in chunks:
            cols = _sample_cols(call, stop - start)
            np.matmul(x[start:stop].reshape(-1, call.channels), matrix, out=cols.reshape(-1, matrix.shape[1]))
            target = y[start:stop]
            for index, inputs, outputs in taps:
                target[(slice(None), *outputs)] += cols[(slice(None), *inputs, index)]

    common.run_parallel(run, _chunks(call), blas=True)
    return y


def _forward_rows(x, matrix, call: common.ConvCall, compiled) -> np.ndarray:
    """The compiled forward pass. Each thread takes a run of output rows (sample, first axis;
    `rank3` layout), zeroes them, and walks the input rows they read in slabs of `_slab_rows`: one
    product per slab, its taps added onto the run's rows (`col2im_add`). A sample larger than a
    block is so cut into slabs instead of taking a `cols` the size of its every tap."""
    _, tables, (first, last) = compiled
    y = common.empty(call.output_shape, call.dtype)
    xs, ys = rank3.as_rank3(x, call.rank), rank3.as_rank3(y, call.rank)
    in_rows, out_rows = xs.shape[1], ys.shape[1]
    x_rows = xs.reshape(xs.shape[0] * in_rows, -1)
    y_rows = ys.reshape(ys.shape[0] * out_rows, -1)
    slab = _slab_rows(call)
    jit.prepare(kernels.col2im_add, _row_cols(call, 1), ys, *tables, in_rows, 0, 0, 0)

    def run(parts):
        for r0, r1 in parts:
            y_rows[r0:r1] = 0
            rows = np.arange(r0, r1)
            samples, positions = rows // out_rows, rows % out_rows
            reached = first[positions] < last[positions]
            if not reached.any():
                continue
            start = int((samples * in_rows + first[positions])[reached].min())
            stop = int((samples * in_rows + last[positions])[reached].max())
            for s in range(start, stop, slab):
                e = min(s + slab, stop)
                cols = _row_cols(call, e - s)
                np.matmul(x_rows[s:e].reshape(-1, call.channels), matrix, out=cols.reshape(-1, matrix.shape[1]))
                kernels.col2im_add(cols, ys, *tables, in_rows, s, r0, r1)

    common.run_parallel(run, [[part] for part in rank3.row_parts(y_rows.shape[0], call.threads)], blas=True)
    return y


def vjp(grad, x, kernel, call: common.ConvCall, wanted=(True, True)):
    matrix = _kernel_matrix(kernel.astype(call.dtype, copy=False), call)
    compiled = _compiled(call)
    d_x = common.empty(call.x_shape, call.dtype) if wanted[0] else None
    if compiled:
        partials = _vjp_rows(grad, x, matrix, d_x, call, compiled, wanted)
    else:
        partials = _vjp_samples(grad, x, matrix, d_x, call, wanted)
    d_kernel = None
    if wanted[1]:
        d_matrix = partials[0]
        for partial in partials[1:]:
            d_matrix += partial
        d_kernel = np.ascontiguousarray(
            d_matrix.reshape(call.channels, call.taps, call.filters).transpose(1, 0, 2).reshape(call.kernel_shape)
        )
    return d_x, d_kernel


def _vjp_rows(grad, x, matrix, d_x, call: common.ConvCall, compiled, wanted):
    """The compiled backward pass: each thread takes a run of input rows (`rank3` layout), in slabs
    of `_slab_rows`: the output gradient each tap reaches gathered (`col2im_gather`), then the
    slab's input gradient and its share of the kernel gradient, one product each."""
    (taps, geometry), _, _ = compiled
    xs, gs = rank3.as_rank3(x, call.rank), rank3.as_rank3(grad, call.rank)
    in_rows = xs.shape[1]
    x_rows = xs.reshape(xs.shape[0] * in_rows, -1)
    d_x_rows = rank3.as_rank3(d_x, call.rank).reshape(x_rows.shape) if wanted[0] else None
    slab = _slab_rows(call)
    jit.prepare(kernels.col2im_gather, gs, _row_cols(call, 1), taps, geometry, in_rows, 0, 0)

    def run(parts):
        d_matrix = np.zeros(matrix.shape, dtype=call.dtype) if wanted[1] else None
        for r0, r1 in parts:
            for s in range(r0, r1, slab):
                e = min(s + slab, r1)
                cols = _row_cols(call, e - s)
                kernels.col2im_gather(gs, cols, taps, geometry, in_rows, s, e)
                inputs = x_rows[s:e].reshape(-1, call.channels)
                target = d_x_rows[s:e].reshape(inputs.shape) if wanted[0] else None
                _backward_products(cols.reshape(-1, matrix.shape[1]), inputs, matrix, target, d_matrix)
        return d_matrix

    return common.run_parallel(run, [[part] for part in rank3.row_parts(x_rows.shape[0], call.threads)], blas=True)


def _vjp_samples(grad, x, matrix, d_x, call: common.ConvCall, wanted):
    """The NumPy backward pass, by blocks of samples (`_chunks`)."""
    taps = list(_taps(call))

    def run(chunks):
        d_matrix = np.zeros(matrix.shape, dtype=call.dtype) if wanted[1] else None
        for start, stop in chunks:
            cols = _sample_cols(call, stop - start)
            source = grad[start:stop]
            cols[...] = 0
            for index, inputs, outputs in taps:
                cols[(slice(None), *inputs, index)] = source[(slice(None), *outputs)]
            inputs = x[start:stop].reshape(-1, call.channels)
            target = d_x[start:stop].reshape(inputs.shape) if wanted[0] else None
            _backward_products(cols.reshape(-1, matrix.shape[1]), inputs, matrix, target, d_matrix)
        return d_matrix

    return common.run_parallel(run, _chunks(call), blas=True)
