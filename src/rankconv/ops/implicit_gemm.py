"""Implicit GEMM: a convolution as row-shifted matrix products, with no im2col buffer.

* Strides are removed by a *phase split*. Along an axis with stride s, input index
  `o*s + t*d` equals `s*(o + (t*d)//s) + (t*d)%s`, so tap `t` reads phase `(t*d) % s` of the
  input at offset `(t*d) // s`: a stride-1 correlation of that phase. The padded input is cut
  once into its `prod(s)` phases, each contiguous.
* A stride-1 correlation on a flattened grid is a sum of GEMMs on *shifted rows*: flatten a
  phase to `(batch * prod(grid), channels)`; a tap at multi-offset `a` is the row shift
  `sum(a_i * row_stride_i)`, so `Y[r] += X[r + shift] @ W_tap` for every row `r`. Rows whose
  window crosses a sample boundary land on grid cells outside the output and are dropped.
* The input gradient is the same sum run backwards — `dX[r] = sum G[r - shift] @ W_tap.T`, a
  transposed convolution: the output gradient correlated with the transposed taps at reversed
  shifts, computed by the forward products — and the kernel gradient is the correlation
  `dW_tap = X[r + shift].T @ G[r]`: the same phases, shifts and GEMMs.
* An axis may first be *unfolded* (its taps copied into the channels; see `_layout`).

Rows are processed in blocks so the partial products stay in cache while the taps accumulate.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from rankconv import utils
from rankconv.ops import conv_common as common

# Rows of the flattened grid handled per block: big enough for efficient GEMMs, small enough
# that a block of the accumulator stays in cache across all taps.
BLOCK_ROWS = 8192
# A block's gathered operand (several taps side by side) is held under this many bytes: a deep
# gather (up to WIDE_GATHER_DEPTH columns) takes fewer rows per block instead of a larger buffer.
GATHER_BYTES = 2 << 20


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Tap:
    index: tuple[int, ...]  # position in the kernel's spatial grid
    phase: int  # which stride phase of the input it reads
    shift: int  # row shift on the flattened phase grid


@dataclass(frozen=True)
class _Geometry:
    """Everything about a convolution call that depends only on shapes."""

    batch: int
    padded_shape: tuple[int, ...]  # spatial shape after (lhs dilation and) padding
    output_shape: tuple[int, ...]  # spatial shape of y
    strides: tuple[int, ...]
    grid: tuple[int, ...]  # spatial shape of each phase, ceil(padded / stride)
    taps: tuple[_Tap, ...]
    rows: int  # rows of the flattened grid that are computed

    @property
    def grid_rows(self) -> int:
        return self.batch * math.prod(self.grid)


def _geometry(batch, padded_shape, kernel_shape, strides, dilation) -> _Geometry:
    output_shape = tuple(
        (p - utils.effective_kernel_size(k, d)) // s + 1
        for p, k, s, d in zip(padded_shape, kernel_shape, strides, dilation)
    )
    grid = tuple(-(-p // s) for p, s in zip(padded_shape, strides))
    row_strides = [math.prod(grid[i + 1 :]) for i in range(len(grid))]
    phase_strides = [math.prod(strides[i + 1 :]) for i in range(len(strides))]
    taps = []
    for index in itertools.product(*(range(k) for k in kernel_shape)):
        offsets = [t * d for t, d in zip(index, dilation)]
        phase = sum((o % s) * ps for o, s, ps in zip(offsets, strides, phase_strides))
        shift = sum((o // s) * rs for o, s, rs in zip(offsets, strides, row_strides))
        taps.append(_Tap(index, phase, shift))
    max_shift = max(tap.shift for tap in taps)
    rows = batch * math.prod(grid) - max_shift
    return _Geometry(batch, tuple(padded_shape), output_shape, tuple(strides), grid, tuple(taps), rows)


def _split_phases(x_padded: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """`(prod(strides), batch * prod(grid), channels)`: each stride phase, flattened, contiguous."""
    strides, grid = geometry.strides, geometry.grid
    if all(s == 1 for s in strides):
        return x_padded.reshape(1, -1, x_padded.shape[-1])
    channels = x_padded.shape[-1]
    full = tuple(g * s for g, s in zip(grid, strides))
    if full != x_padded.shape[1:-1]:
        x_padded = np.pad(x_padded, [(0, 0)] + [(0, f - p) for f, p in zip(full, x_padded.shape[1:-1])] + [(0, 0)])
    rank = len(strides)
    split = x_padded.reshape(x_padded.shape[0], *itertools.chain(*zip(grid, strides)), channels)
    # axes: 0 batch, 1+2i grid_i, 2+2i stride_i, last channels -> (strides..., batch, grid..., channels)
    order = [2 + 2 * i for i in range(rank)] + [0] + [1 + 2 * i for i in range(rank)] + [2 * rank + 1]
    return np.ascontiguousarray(split.transpose(order)).reshape(math.prod(strides), -1, channels)


def _merge_phases(phases: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """Adjoint (and inverse) of `_split_phases`, cropped back to the padded shape."""
    strides, grid, batch = geometry.strides, geometry.grid, geometry.batch
    channels = phases.shape[-1]
    if all(s == 1 for s in strides):
        return phases.reshape(batch, *grid, channels)
    rank = len(strides)
    split = phases.reshape(*strides, batch, *grid, channels)
    # inverse of the permutation used in _split_phases
    order = [rank] + list(itertools.chain(*((rank + 1 + i, i) for i in range(rank)))) + [2 * rank + 1]
    full = split.transpose(order).reshape(batch, *(g * s for g, s in zip(grid, strides)), channels)
    return full[(slice(None), *(slice(0, p) for p in geometry.padded_shape))]


def _output_grid_view(flat: np.ndarray, geometry: _Geometry) -> np.ndarray:
    """The cells of a flattened `(batch * prod(grid), C)` array that belong to the output."""
    grid_view = flat.reshape(geometry.batch, *geometry.grid, flat.shape[-1])
    return grid_view[(slice(None), *(slice(0, o) for o in geometry.output_shape))]


def _blocks(rows: int, block_rows: int = BLOCK_ROWS):
    for start in range(0, rows, block_rows):
        yield start, min(start + block_rows, rows)


# ----------------------------------------------------------------------------- the three products
# Taps of the same phase are gathered into *tap groups*. A group of one tap is a shifted view of
# the phase rows; a group of several is copied side by side into a small per-block buffer (a
# chunked im2col), so that channel-poor layers still make GEMMs with an inner dimension of about
# GATHER_DEPTH (gathering deeper measured slower than the shifted products it replaces). Convolution groups are column blocks of x and y. A layer with
# one input channel per group (depthwise) is an elementwise product broadcast over all groups.

GATHER_DEPTH = 32
WIDE_GATHER_DEPTH = 512


@dataclass(frozen=True)
class _TapGroup:
    phase: int
    shifts: tuple[int, ...]
    tap_numbers: tuple[int, ...]  # positions in geometry.taps / kernel_taps


def _tap_groups(geometry: _Geometry, channels_per_group: int, filters_per_group: int) -> list[_TapGroup]:
    """Taps of one phase, in groups gathered side by side into one product.

    Accumulating taps one product at a time costs an add over `filters_per_group` columns per tap;
    gathering costs a copy of `channels_per_group` columns per tap. So taps are gathered up to a
    depth of GATHER_DEPTH when channels are few, and up to WIDE_GATHER_DEPTH when the products are
    at least twice as wide as their input (as in the input gradient of a 300 → 64 convolution).
    """
    depth = WIDE_GATHER_DEPTH if 2 * channels_per_group <= filters_per_group else GATHER_DEPTH
    size = max(1, depth // channels_per_group)
    by_phase: dict[int, list[int]] = {}
    for number, tap in enumerate(geometry.taps):
        by_phase.setdefault(tap.phase, []).append(number)
    groups = []
    for phase, numbers in by_phase.items():
        count = -(-len(numbers) // size)
        per = -(-len(numbers) // count)  # spread evenly: 10 taps at size 8 → 5 + 5, not 8 + 2
        for i in range(0, len(numbers), per):
            chunk = tuple(numbers[i : i + per])
            groups.append(_TapGroup(phase, tuple(geometry.taps[n].shift for n in chunk), chunk))
    return groups


class _Plan:
    """Per-call constants: tap groups, their kernel matrices, and reusable block buffers."""

    def __init__(self, geometry, kernel_taps, groups, channels, dtype, matrices=True):
        self.geometry = geometry
        self.groups = groups
        self.channels = channels
        self.cg = channels // groups
        self.filters = kernel_taps.shape[-1]
        self.fg = self.filters // groups
        self.depthwise = self.cg == 1 and groups > 1
        self.tap_groups = _tap_groups(geometry, self.cg, self.fg)
        self.cin = [slice(g * self.cg, (g + 1) * self.cg) for g in range(groups)]
        self.cout = [slice(g * self.fg, (g + 1) * self.fg) for g in range(groups)]
        # kernel matrix of tap group t and conv group g: (taps_in_group * cg, fg)
        self.matrices = (
            [
                [
                    np.ascontiguousarray(kernel_taps[list(t.tap_numbers)][:, :, self.cout[g]]).reshape(-1, self.fg)
                    for g in range(groups)
                ]
                for t in self.tap_groups
            ]
            if matrices
            else None
        )
        widest = max(len(t.tap_numbers) for t in self.tap_groups)
        row_bytes = groups * widest * self.cg * np.dtype(dtype).itemsize
        self.block_rows = BLOCK_ROWS if widest == 1 else max(256, min(BLOCK_ROWS, GATHER_BYTES // row_bytes))
        self.gather = np.empty((self.block_rows, groups, widest, self.cg), dtype=dtype) if widest > 1 else None
        self.dtype = dtype

    def operands(self, phases, tap_group, start, stop):
        """For each conv group, the (rows, taps_in_group * cg) input operand of this block."""
        n = stop - start
        source = phases[tap_group.phase]
        if len(tap_group.shifts) == 1:
            rows = source[start + tap_group.shifts[0] : stop + tap_group.shifts[0]]
            return [rows[:, c] for c in self.cin]
        cols = self.gather[:n, :, : len(tap_group.shifts)]
        for j, shift in enumerate(tap_group.shifts):
            cols[:, :, j] = source[start + shift : stop + shift].reshape(n, self.groups, self.cg)
        return [cols[:, g].reshape(n, -1) for g in range(self.groups)]


def _blocks_of(plan):
    return _blocks(plan.geometry.rows, plan.block_rows)


def _forward_rows(phases, kernel_taps, geometry, groups, dtype):
    channels = phases.shape[-1]
    plan = _Plan(geometry, kernel_taps, groups, channels, dtype)
    if plan.depthwise or groups > 1:  # every product is added to the accumulator
        y = np.zeros((geometry.grid_rows, plan.filters), dtype=dtype)
    else:  # the first tap group's product writes each block; rows past the last block stay zero
        y = np.empty((geometry.grid_rows, plan.filters), dtype=dtype)
        y[geometry.rows :] = 0
    if plan.depthwise:
        multiplier = plan.fg
        scratch = np.empty((plan.block_rows, channels, multiplier), dtype=dtype)
        weights = kernel_taps[:, 0].reshape(-1, channels, multiplier)
        for start, stop in _blocks_of(plan):
            y_block = y[start:stop].reshape(-1, channels, multiplier)
            n = stop - start
            for k, tap in enumerate(geometry.taps):
                x_block = phases[tap.phase, start + tap.shift : stop + tap.shift]
                np.multiply(x_block[:, :, None], weights[k], out=scratch[:n])
                y_block += scratch[:n]
        return y
    scratch = np.empty((plan.block_rows, plan.fg), dtype=dtype)
    for start, stop in _blocks_of(plan):
        y_block = y[start:stop]
        n = stop - start
        for t, tap_group in enumerate(plan.tap_groups):
            for g, operand in enumerate(plan.operands(phases, tap_group, start, stop)):
                if t == 0 and groups == 1:
                    np.matmul(operand, plan.matrices[t][g], out=y_block)
                else:
                    np.matmul(operand, plan.matrices[t][g], out=scratch[:n])
                    y_block[:, plan.cout[g]] += scratch[:n]
    return y


def _max_shift(geometry: _Geometry) -> int:
    return max(tap.shift for tap in geometry.taps)


def _input_grad_rows(extended, kernel_taps, geometry, groups, channels, dtype):
    """The input gradient on the phase grid, as forward products of the output gradient.

    `dX_p[r] = sum over taps t of phase p of G[r - shift_t] @ W_t.T`: a stride-1 correlation of the
    output gradient with the transposed taps at reversed shifts, which is what `_forward_rows`
    computes. `extended` is the output gradient on the grid after `_max_shift` zero rows.
    Returns (phases, grid_rows, channels).
    """
    filters = kernel_taps.shape[-1]
    max_shift = _max_shift(geometry)
    extended = extended[None]
    # (taps, Cg, groups * Fg) → (taps, Fg, groups * Cg): group g maps its Fg gradient columns back to its Cg inputs
    cg, fg = kernel_taps.shape[1], filters // groups
    transposed = kernel_taps.reshape(-1, cg, groups, fg).transpose(0, 3, 2, 1).reshape(-1, fg, groups * cg)
    count = math.prod(geometry.strides)
    phases = np.empty((count, geometry.grid_rows, channels), dtype=dtype) if count > 1 else None
    for phase in range(count):
        numbers = [n for n, tap in enumerate(geometry.taps) if tap.phase == phase]
        if not numbers:
            phases[phase] = 0
            continue
        reversed_taps = tuple(_Tap(geometry.taps[n].index, 0, max_shift - geometry.taps[n].shift) for n in numbers)
        adjoint = dataclasses.replace(geometry, taps=reversed_taps, rows=geometry.grid_rows)
        rows = _forward_rows(extended, transposed[numbers], adjoint, groups, dtype)
        if count == 1:
            return rows[None]
        phases[phase] = rows
    return phases


def _kernel_grad_taps(phases, grad_grid, geometry, groups, kernel_taps_shape, dtype):
    taps, cg, filters = kernel_taps_shape
    channels = phases.shape[-1]
    dkernel = np.zeros(kernel_taps_shape, dtype=dtype)
    rows = geometry.rows
    if cg == 1 and groups > 1:
        multiplier = filters // groups
        g_rows = grad_grid[:rows].reshape(rows, channels, multiplier)
        for k, tap in enumerate(geometry.taps):
            x_rows = phases[tap.phase, tap.shift : tap.shift + rows]
            dkernel[k, 0] = np.einsum("rc,rcm->cm", x_rows, g_rows).reshape(-1)
        return dkernel
    plan = _Plan(geometry, dkernel, groups, channels, dtype, matrices=False)
    sums = [[np.zeros((len(t.tap_numbers) * cg, plan.fg), dtype=dtype) for _ in range(groups)] for t in plan.tap_groups]
    for start, stop in _blocks_of(plan):
        g_block = grad_grid[start:stop]
        for t, tap_group in enumerate(plan.tap_groups):
            for g, operand in enumerate(plan.operands(phases, tap_group, start, stop)):
                sums[t][g] += operand.T @ g_block[:, plan.cout[g]]
    for t, tap_group in enumerate(plan.tap_groups):
        for g in range(groups):
            dkernel[list(tap_group.tap_numbers), :, plan.cout[g]] = sums[t][g].reshape(-1, cg, plan.fg)
    return dkernel


# ----------------------------------------------------------------------------- layout: shapes only
# Before the row products, an axis may be *unfolded*: its taps copied side by side into the
# channels, leaving kernel size 1 there. Two cases pay for that copy:
# * the kernel (nearly) spans the axis (`k * out <= padded length`), like the (3, 300) kernel on
#   300-d word vectors: most grid cells would not be outputs, and the copy is no larger than the
#   input (the seed's own insight, used inside the op);
# * the innermost axis of a rank >= 2 convolution with few channels (`k * channels <= 128`): the
#   row products get `k` times deeper and there are `k` times fewer of them.

UNFOLD_DEPTH = 128  # measured: 3 × 32 and 3 × 16 channels gain 1.5-3×, 3 × 64 loses 15%


@dataclass(frozen=True)
class _Unfolded:
    axis: int
    size: int  # kernel size on the axis
    stride: int
    dilation: int
    spatial_before: tuple  # spatial shape of the input before this unfolding


@dataclass(frozen=True)
class _Layout:
    pairs: tuple
    lhs_dilation: tuple
    groups: int
    dilated_spatial: tuple  # after input dilation
    padded_spatial: tuple  # after padding
    unfolded: tuple  # _Unfolded, in the order applied
    work_spatial: tuple  # after unfolding
    work_channels: int
    work_kernel_spatial: tuple
    strides: tuple  # on the work grid (1 on unfolded axes)
    dilation: tuple
    output_spatial: tuple


def _layout(call: common.ConvCall) -> _Layout:
    x_shape, kernel_shape, groups = call.x_shape, call.kernel_shape, call.groups
    strides, pairs, lhs_dilation, rhs_dilation = call.strides, call.pairs, call.lhs_dilation, call.rhs_dilation
    rank = len(x_shape) - 2
    dilated = tuple((n - 1) * f + 1 for n, f in zip(x_shape[1:-1], lhs_dilation))
    full = tuple(n + lo + hi for n, (lo, hi) in zip(dilated, pairs))
    kernel_spatial = list(kernel_shape[:-2])
    strides, dilation = list(strides), list(rhs_dilation)
    channels = x_shape[-1]
    output = tuple(
        (p - utils.effective_kernel_size(k, d)) // s + 1 for p, k, s, d in zip(full, kernel_spatial, strides, dilation)
    )
    # Cells past the last window are never read: crop them (see `_read_pairs`), so that a stride
    # much larger than the input costs nothing; with one output on an axis, its stride is moot.
    padded = tuple(
        (o - 1) * s + utils.effective_kernel_size(k, d) for o, s, k, d in zip(output, strides, kernel_spatial, dilation)
    )
    strides = [1 if o == 1 else s for o, s in zip(output, strides)]
    spatial = list(padded)
    unfolded = []
    for axis in range(rank):
        k, out, p = kernel_spatial[axis], output[axis], spatial[axis]
        spans = k * out <= p
        shallow = rank >= 2 and axis == rank - 1 and k * (channels // groups) <= UNFOLD_DEPTH
        if k > 1 and (spans or shallow):
            unfolded.append(_Unfolded(axis, k, strides[axis], dilation[axis], tuple(spatial)))
            spatial[axis] = out
            channels *= k
            kernel_spatial[axis] = 1
            strides[axis] = dilation[axis] = 1
    return _Layout(
        tuple(pairs),
        tuple(lhs_dilation),
        groups,
        dilated,
        padded,
        tuple(unfolded),
        tuple(spatial),
        channels,
        tuple(kernel_spatial),
        tuple(strides),
        tuple(dilation),
        output,
    )


def _sample_workspace(layout: _Layout, filters: int, itemsize: int, backward: bool) -> int:
    """Bytes of scratch one sample needs (an estimate from shapes, used to size batch chunks)."""
    padded = (
        math.prod(layout.padded_spatial) * layout.work_channels // max(1, math.prod(u.size for u in layout.unfolded))
    )
    work = math.prod(layout.work_spatial) * layout.work_channels if layout.unfolded else 0
    grid = math.prod(-(-n // s) for n, s in zip(layout.work_spatial, layout.strides))
    phases = grid * math.prod(layout.strides) * layout.work_channels if max(layout.strides) > 1 else 0
    total = padded + work + phases + grid * filters
    if backward:
        total += grid * filters + grid * math.prod(layout.strides) * layout.work_channels + 2 * padded
    return total * itemsize


def _unfold_input(x, unfolded: _Unfolded, groups):
    """x (batch, …, n, …, C) → (batch, …, out, …, k * C), channels ordered (group, tap, channel)."""
    axis, k, stride, dilation = unfolded.axis, unfolded.size, unfolded.stride, unfolded.dilation
    out = (x.shape[axis + 1] - utils.effective_kernel_size(k, dilation)) // stride + 1
    index = [slice(None)] * x.ndim
    pieces = []
    for t in range(k):
        index[axis + 1] = slice(t * dilation, t * dilation + (out - 1) * stride + 1, stride)
        pieces.append(x[tuple(index)])
    channels = x.shape[-1]
    stacked = np.stack(pieces, axis=-2).reshape(*pieces[0].shape[:-1], k, groups, channels // groups)
    return np.ascontiguousarray(np.swapaxes(stacked, -3, -2)).reshape(*pieces[0].shape[:-1], k * channels)


def _unfold_kernel(kernel, axis):
    """(…, k, …, Cg, F) → (…, 1, …, k * Cg, F), rows ordered (tap, channel) to match `_unfold_input`."""
    moved = np.moveaxis(kernel, axis, -3)
    merged = moved.reshape(*moved.shape[:-3], 1, -1, kernel.shape[-1])
    return np.ascontiguousarray(np.moveaxis(merged, -3, axis))


def _fold_input_grad(grad, unfolded: _Unfolded, groups):
    """Adjoint of `_unfold_input`: each tap's channels summed back onto its shifted cells."""
    axis, k, stride, dilation = unfolded.axis, unfolded.size, unfolded.stride, unfolded.dilation
    channels = grad.shape[-1] // k
    out = grad.shape[axis + 1]
    split = grad.reshape(*grad.shape[:-1], groups, k, channels // groups)
    split = np.swapaxes(split, -3, -2).reshape(*grad.shape[:-1], k, channels)
    result = np.zeros((grad.shape[0], *unfolded.spatial_before, channels), dtype=grad.dtype)
    index = [slice(None)] * result.ndim
    for t in range(k):
        index[axis + 1] = slice(t * dilation, t * dilation + (out - 1) * stride + 1, stride)
        result[tuple(index)] += split[..., t, :]
    return result


def _fold_kernel_grad(grad, unfolded: _Unfolded):
    """Adjoint of `_unfold_kernel`: (…, 1, …, k * Cg, F) → (…, k, …, Cg, F)."""
    axis, filters = unfolded.axis, grad.shape[-1]
    moved = np.moveaxis(grad, axis, -3)
    split = moved.reshape(*moved.shape[:-3], unfolded.size, -1, filters)
    return np.moveaxis(split, -3, axis)


def _read_pairs(layout: _Layout):
    """The padding pairs, with the high side cut back to the cells the windows read."""
    pairs = []
    for n, (lo, _), p in zip(layout.dilated_spatial, layout.pairs, layout.padded_spatial):
        pairs.append((lo, p - n - lo))
    return tuple(pairs)


def _work_kernel(kernel, layout: _Layout):
    for unfolded in layout.unfolded:
        kernel = _unfold_kernel(kernel, unfolded.axis)
    return kernel


def _work_input(x_chunk, layout: _Layout):
    """Dilate, pad (and crop unread cells) and unfold a chunk of samples: the array the row products read."""
    x_work = common.pad(common.dilate(x_chunk, layout.lhs_dilation), _read_pairs(layout))
    for unfolded in layout.unfolded:
        x_work = _unfold_input(x_work, unfolded, layout.groups)
    return x_work


def _chunks(call: common.ConvCall, layout: _Layout, backward: bool):
    sample = _sample_workspace(layout, call.filters, call.dtype.itemsize, backward)
    return common.batch_chunks(call.batch, sample, call.workspace_limit())


# ----------------------------------------------------------------------------- the algorithm's entry points


def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
    """`conv_general` on validated, cast arrays (see `rankconv.ops.convolution`)."""
    layout = _layout(call)
    kernel_work = _work_kernel(kernel, layout)
    kernel_taps = kernel_work.reshape(-1, *kernel_work.shape[-2:])
    y = common.empty(call.output_shape, call.dtype)
    for start, stop in _chunks(call, layout, backward=False):
        x_work = _work_input(x[start:stop], layout)
        geometry = _geometry(
            stop - start, x_work.shape[1:-1], layout.work_kernel_spatial, layout.strides, layout.dilation
        )
        y_grid = _forward_rows(_split_phases(x_work, geometry), kernel_taps, geometry, layout.groups, call.dtype)
        y[start:stop] = _output_grid_view(y_grid, geometry)
    return y


def vjp(grad, x, kernel, call: common.ConvCall, wanted=(True, True)):
    """`(d_x, d_kernel)` of `forward` for the output gradient `grad`; None for one not `wanted`."""
    layout = _layout(call)
    dtype = call.dtype
    kernel_work = _work_kernel(kernel, layout)
    kernel_taps = kernel_work.reshape(-1, *kernel_work.shape[-2:])
    dx = common.empty(x.shape, dtype) if wanted[0] else None
    dkernel_taps = np.zeros(kernel_taps.shape, dtype=dtype)
    for start, stop in _chunks(call, layout, backward=True):
        x_work = _work_input(x[start:stop], layout)
        geometry = _geometry(
            stop - start, x_work.shape[1:-1], layout.work_kernel_spatial, layout.strides, layout.dilation
        )
        # The output gradient laid on the phase grid, zero on the cells that are not outputs, so
        # rows that straddle samples contribute nothing.
        max_shift = _max_shift(geometry)
        extended = np.zeros((max_shift + geometry.grid_rows, call.filters), dtype=dtype)
        grad_grid = extended[max_shift:]
        _output_grid_view(grad_grid, geometry)[...] = grad[start:stop]
        work_channels = x_work.shape[-1]
        if wanted[1]:  # first, so that the (unfolded) input is freed before the input gradient's rows exist
            phases = _split_phases(x_work, geometry)
            dkernel_taps += _kernel_grad_taps(phases, grad_grid, geometry, layout.groups, kernel_taps.shape, dtype)
            del phases
        del x_work
        if wanted[0]:
            dx_rows = _input_grad_rows(extended, kernel_taps, geometry, layout.groups, work_channels, dtype)
            dx_work = _merge_phases(dx_rows, geometry)
            del dx_rows
            for unfolded in reversed(layout.unfolded):
                dx_work = _fold_input_grad(dx_work, unfolded, layout.groups)
            dx_chunk = common.unpad(dx_work, _read_pairs(layout), layout.dilated_spatial)
            dx[start:stop] = dx_chunk[(slice(None), *(slice(None, None, f) for f in layout.lhs_dilation))]
    if not wanted[1]:
        return dx, None
    dkernel = dkernel_taps.reshape(kernel_work.shape)
    for unfolded in reversed(layout.unfolded):
        dkernel = _fold_kernel_grad(dkernel, unfolded)
    return dx, np.ascontiguousarray(dkernel).reshape(kernel.shape)
