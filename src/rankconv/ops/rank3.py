"""The canonical layout of the compiled kernels: rank-3 channels-last arrays.

Ranks 1 and 2 get unit axes in front (`as_rank3`), so that one kernel serves all three. Geometry
travels as one int64 array `(s1, s2, s3, d1, d2, d3, lo1, lo2, lo3, f1, f2, f3)`: strides, kernel
dilations, low padding and input dilations. `_cell` maps a dilated, padded position to an input
cell. Kernels compute whole rows (a row: one sample and first-axis position), which `run_rows`
spreads over the worker threads.
"""

from __future__ import annotations

import numpy as np

from rankconv.ops import conv_common as common
from rankconv.ops import jit
from rankconv.ops.jit import kernel


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


def run_rows(compiled, rows: int, *args, parts: int | None = None) -> list:
    """`compiled(*args, r0, r1)` on `parts` worker threads (default all), one contiguous run
    `[r0, r1)` of the `rows` each (compiled first, with SLP vectorisation: `jit.prepare`); the
    results in order."""
    jit.prepare(compiled, *args, 0, 0)
    return common.run_parallel(lambda part: compiled(*args, *part), row_parts(rows, parts))


def summed_rows(fill, rows: int, shape, dtype, parts: int | None = None) -> np.ndarray:
    """A reduction over rows: `fill(out, r0, r1)` adds the run `[r0, r1)`'s share into `out` (zeroed),
    one run per worker thread (`row_parts`), the runs' arrays then added in order. The split and the
    order depend only on `rows` and `parts`, so two kernels that sum the same products in the same
    order per row give the same bits."""

    def run(part):
        out = np.zeros(shape, dtype)
        fill(out, *part)
        return out

    results = common.run_parallel(run, row_parts(rows, parts))
    total = results[0] if results else np.zeros(shape, dtype)
    for result in results[1:]:
        total += result
    return total


@kernel
def _cell(p, f, n):
    """The cell of an axis of `n` cells, dilated by `f`, at dilated position `p`; -1 where `p` falls
    outside or between cells. Integer division is slow, so undilated axes skip it."""
    if f == 1:
        return p if 0 <= p < n else -1
    if p < 0 or p % f != 0 or p // f >= n:
        return -1
    return p // f


@kernel
def _tap_range(start, d, K, D):
    """The taps [first, last) of a kernel of K taps, dilated by d, that land inside an undilated
    axis of D cells when tap 0 sits at position `start`: a range, so loops need no test per tap."""
    first = (-start + d - 1) // d if start < 0 else 0
    reach = D - 1 - start
    last = min(K, reach // d + 1) if reach >= 0 else 0
    return first, max(first, last)
