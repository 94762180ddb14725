"""im2col in blocks: gather each block's windows into a buffer, one deep product each.

The output positions `(batch, *output_spatial)` are cut into *blocks* of at most BLOCK_BYTES of
gathered windows (less under a small workspace limit): several whole samples, or lines of one
sample along the first output axis. For a block, the cells of the dilated, padded input it reads
are assembled once (`_slab`), its windows (a strided view of the slab) are copied side by side
into a buffer of `taps * channels_per_group` columns, and one matrix product with the kernel (its
taps and channels flattened in the same order) writes the block's rows of the output, which are
contiguous. Blocks run on `conv_common.THREADS` threads with single-threaded BLAS, so the copies
run in parallel too, not only the products.

Where the first spatial axis has stride 1 and the rows of the other axes' windows are deep
(`split_first_axis`), its taps are not gathered: the buffer holds every line the block reads,
windowed along the other axes only, and each tap of the first axis is one product with the rows
that start that many lines later, accumulated into the output. That gathers `kernel_size[0]`
times fewer values (nothing at all for a 1-D convolution) for a few more, shallower products.

An input dilated by `f` (a transposed convolution) is not materialised: the convolution splits
into one convolution of the undilated input per output phase (`_phase_calls`).

Backward, the kernel gradient is the same buffers' transposed products with the output gradient's
rows, summed over blocks; the input gradient is the transposed convolution — the output gradient,
dilated by the strides (so: split into phases) and padded by the kernel's span, correlated with
the flipped, transposed kernel — computed by this module's forward pass.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from rankconv.ops import col2im
from rankconv.ops import conv_common as common

# Largest workspace of one block (its gathered windows, padded slab and partial sums), in bytes.
# Larger blocks mean fewer NumPy calls per thread (each costs a hand-over of the GIL); measured
# here, 8 MB was fastest for every case from 1 MB up.
BLOCK_BYTES = 8 << 20

# The first axis's taps are split off (see the module docstring) where the rows gathered per tap
# of it are at least this deep and at least as deep as a group's filters: then the products stay
# efficient and the sums of the products' outputs cost less than the gathering they save.
SPLIT_MIN_DEPTH = 128
SPLIT_FIRST_AXIS = None  # None: by that rule; True or False: wherever possible, or never (tests)


# ----------------------------------------------------------------------------- geometry
# A *block* is several whole samples, or one sample's lines [a, b) along the first output axis:
# one thread pads the input cells the block reads (its slab), gathers the block's windows and
# multiplies them in one product (one per tap of the first axis when split). Blocks are large, so
# the threads spend their time in NumPy's copies and products (which release the GIL), not in
# Python.


@dataclass(frozen=True)
class _Block:
    samples: tuple[int, int]  # [n0, n1)
    lines: tuple[int, int]  # [a, b) of the first output axis


@dataclass(frozen=True)
class _Layout:
    """How one call's windows are gathered: all taps, or (`split`) all but the first axis's."""

    call: common.ConvCall
    split: bool

    @property
    def gathered_taps(self) -> int:
        return self.call.taps // self.call.kernel_spatial[0] if self.split else self.call.taps

    @property
    def depth(self) -> int:
        """Columns of one group's gathered rows: its gathered taps times its channels."""
        return self.gathered_taps * self.call.channels_per_group

    @property
    def extra_lines(self) -> int:
        """Lines gathered beyond a block's output lines: the first axis's span less one when split."""
        return self.call.spans[0] - 1 if self.split else 0

    @property
    def copies(self) -> bool:
        """Whether the windows are copied out of the slab. Not when split and every other axis has
        one tap and stride 1 (a 1-D convolution, say): then the windows are the slab's cells."""
        call = self.call
        return not (self.split and all(k == 1 and s == 1 for k, s in zip(call.kernel_spatial[1:], call.strides[1:])))

    def tap_rows(self) -> list[tuple[int, int]]:
        """(row offset into the gathered rows, tap of the first axis) of each product."""
        if not self.split:
            return [(0, 0)]
        per_line = math.prod(self.call.output_spatial[1:])
        return [(t * self.call.rhs_dilation[0] * per_line, t) for t in range(self.call.kernel_spatial[0])]

    def workspace(self, samples: int, lines: int) -> int:
        """Bytes of scratch for a block of `lines` output lines of `samples` samples: its gathered
        windows, its padded slab and (split) one partial product."""
        call = self.call
        rows = math.prod(call.output_spatial[1:])
        slab_line = math.prod(
            (o - 1) * s + k for o, s, k in zip(call.output_spatial[1:], call.strides[1:], call.spans[1:])
        )
        slab_lines = (lines - 1) * call.strides[0] + call.spans[0]
        gathered = (lines + self.extra_lines) * rows * self.gathered_taps * call.channels if self.copies else 0
        partial = lines * rows * (call.filters // call.groups) if self.split else 0
        return samples * (gathered + slab_lines * slab_line * call.channels + partial) * call.dtype.itemsize


def _share(call: common.ConvCall) -> int:
    """One thread's share of the call's workspace limit (`conv_common.set_conv_workspace`)."""
    return call.workspace_limit() // common.THREADS


def block_bytes(call: common.ConvCall) -> int:
    """The workspace of a block of lines: BLOCK_BYTES, or less so that every thread's block (3/4 of
    its share) and the slab consecutive blocks share (1/4, see `_slab_groups`) stay within the
    call's workspace limit. A block of whole samples, which shares no slab, may take the whole share."""
    return max(1, min(BLOCK_BYTES, _share(call) * 3 // 4))


def _can_split(call: common.ConvCall) -> bool:
    return call.strides[0] == 1 and call.lhs_dilation[0] == 1 and call.kernel_spatial[0] > 1


def layout(call: common.ConvCall) -> _Layout:
    """The forward layout: split where `_can_split` and the rule (SPLIT_MIN_DEPTH) say so, unless
    only the other layout's smallest block fits in the workspace limit."""
    if not _can_split(call) or SPLIT_FIRST_AXIS is False:
        return _Layout(call, False)
    prefer = SPLIT_FIRST_AXIS
    if prefer is None:
        depth = call.taps // call.kernel_spatial[0] * call.channels_per_group
        prefer = depth >= max(SPLIT_MIN_DEPTH, call.filters // call.groups)
    options = [_Layout(call, prefer), _Layout(call, not prefer)]
    return next((o for o in options if _fits(o)), options[0])


def split_first_axis(call: common.ConvCall) -> bool:
    """Whether the forward pass applies the first axis's taps as row offsets into the gathered
    lines rather than gathering them."""
    return layout(call).split


def _fits(lay: _Layout) -> bool:
    return lay.workspace(1, 1) <= _share(lay.call) * 3 // 4


def fits(call: common.ConvCall) -> bool:
    """Whether the smallest block (one output line) fits in a thread's 3/4 share of the workspace limit."""
    return _fits(layout(call))


def _blocks(lay: _Layout) -> list[_Block]:
    call = lay.call
    out = call.output_spatial
    per_sample = lay.workspace(1, out[0])
    # whole samples share no slab with other blocks: a block may take the thread's whole share
    whole = max(1, min(BLOCK_BYTES, _share(call)))
    if per_sample <= whole and call.batch >= common.THREADS:  # whole samples
        # the fewest blocks within the budget, rounded up to a multiple of the threads, even in size
        count = -(-call.batch // (whole // per_sample))
        count = min(call.batch, -(-count // common.THREADS) * common.THREADS)
        return [_Block((part.start, part.stop), (0, out[0])) for part in common.even_slices(call.batch, count)]
    # lines of one sample: blocks within the budget (workspace is linear in the lines), and enough
    # of them for every thread
    budget = block_bytes(call)
    one = lay.workspace(1, 1)
    most = max(1, 1 + (budget - one) // max(1, lay.workspace(1, 2) - one))  # output lines per block
    parts = common.even_slices(out[0], max(-(-out[0] // most), -(-common.THREADS // call.batch)))
    return [_Block((n, n + 1), (part.start, part.stop)) for n in range(call.batch) for part in parts]


def _axis_copy(n, lo, dilation, start, stop):
    """Along one axis of length `n`, padded by `lo` before, dilated by `dilation`: the slice of the
    region [start, stop) of padded coordinates that holds data, and the data's slice."""
    first = max(0, -(-(start - lo) // dilation))
    last = min(n, -(-(stop - lo) // dilation))  # exclusive
    if last <= first:
        return None, None
    at = lo + first * dilation - start
    return slice(at, at + (last - first - 1) * dilation + 1, dilation), slice(first, last)


def _slab_shape(call: common.ConvCall, block: _Block) -> tuple:
    (n0, n1), (a, b) = block.samples, block.lines
    lines = (b - a - 1) * call.strides[0] + call.spans[0]
    rest = ((o - 1) * s + k for o, s, k in zip(call.output_spatial[1:], call.strides[1:], call.spans[1:]))
    return (n1 - n0, lines, *rest, call.channels)


def _slab(x, call: common.ConvCall, block: _Block, buffer) -> np.ndarray:
    """The cells of the dilated, padded input that `block` reads, in `buffer()` (zeros elsewhere)."""
    shape = _slab_shape(call, block)
    target, source = [slice(None)], [slice(*block.samples)]
    starts = (block.lines[0] * call.strides[0], *(0 for _ in shape[2:-1]))
    for n, (lo, _), f, start, length in zip(call.x_shape[1:-1], call.pairs, call.lhs_dilation, starts, shape[1:-1]):
        t, s = _axis_copy(n, lo, f, start, start + length)
        if t is None:
            slab = buffer()[: math.prod(shape)].reshape(shape)
            slab[...] = 0
            return slab
        target.append(t)
        source.append(s)
    if all(f == 1 for f in call.lhs_dilation) and all(
        t.start == 0 and t.stop == n for t, n in zip(target[1:], shape[1:-1])
    ):  # no padding cell is read: the input itself, no copy
        return x[tuple(source)]
    slab = buffer()[: math.prod(shape)].reshape(shape)
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


def _windows(slab, lay: _Layout) -> np.ndarray:
    """(samples, *slab_output, groups, *kernel_spatial, channels_per_group): a strided view. When
    split, the first axis holds every slab line and has no kernel axis."""
    call, split = lay.call, lay.split
    lines = slab.shape[1] if split else (slab.shape[1] - call.spans[0]) // call.strides[0] + 1
    out = (lines, *call.output_spatial[1:])
    steps = slab.strides[1:-1]
    item = slab.strides[-1]
    cg = call.channels_per_group
    first = 1 if split else 0  # kernel axes in the view start here
    shape = (slab.shape[0], *out, call.groups, *call.kernel_spatial[first:], cg)
    strides = (
        slab.strides[0],
        *(st * s for st, s in zip(steps, call.strides)),
        cg * item,
        *(st * d for st, d in zip(steps[first:], call.rhs_dilation[first:])),
        item,
    )
    return np.lib.stride_tricks.as_strided(slab, shape, strides, writeable=False)


def _kernel_matrices(kernel, lay: _Layout) -> list[list[np.ndarray]]:
    """Per tap of the first axis when split (else one entry), per group: its (depth,
    filters_per_group) matrix, rows in gather order."""
    call = lay.call
    parts = call.kernel_spatial[0] if lay.split else 1
    fg = call.filters // call.groups
    result = []
    for matrix in kernel.reshape(parts, -1, call.filters):
        if call.groups == 1:
            result.append([matrix])
        else:
            result.append([np.ascontiguousarray(matrix[:, g * fg : (g + 1) * fg]) for g in range(call.groups)])
    return result


def _slab_groups(call: common.ConvCall, blocks: list[_Block]) -> list[list[_Block]]:
    """Consecutive blocks of one sample that share one slab (padded once), as long as that slab
    stays within a quarter of the thread's share of the workspace (`block_bytes` has the rest): a
    thread then pads each sample once, not once per block."""
    budget = min(BLOCK_BYTES, _share(call) // 4) // call.dtype.itemsize
    groups: list[list[_Block]] = []
    for block in blocks:
        if groups and groups[-1][-1].samples == block.samples and block.samples[1] - block.samples[0] == 1:
            joined = _Block(block.samples, (groups[-1][0].lines[0], block.lines[1]))
            if math.prod(_slab_shape(call, joined)) <= budget:
                groups[-1].append(block)
                continue
        groups.append([block])
    return groups


def _gathered_blocks(x, lay: _Layout, blocks: list[_Block]):
    """For each of `blocks` (one thread's run): (block, gathered), the block's windows as a
    (samples, rows, groups, depth) array in this thread's reused buffer — or, where the layout
    copies nothing, a view of the slab. When split, the rows are those of `extra_lines` more
    lines (tap t of the first axis reads the rows from line `t * dilation` on)."""
    call = lay.call
    groups = [(_Block(g[0].samples, (g[0].lines[0], g[-1].lines[1])), g) for g in _slab_groups(call, blocks)]
    slab_size = max(math.prod(_slab_shape(call, s)) for s, _ in groups)

    def slab_buffer():
        return common.scratch("im2col.slab", slab_size, call.dtype)

    extra = lay.extra_lines
    lines = max((b.samples[1] - b.samples[0]) * (b.lines[1] - b.lines[0] + extra) for b in blocks)
    size = lines * math.prod(call.output_spatial[1:]) * lay.depth * call.groups
    item = call.dtype.itemsize
    for slab_block, members in groups:
        windows = _windows(_slab(x, call, slab_block, slab_buffer), lay)
        first = slab_block.lines[0]
        for block in members:
            source = windows[:, block.lines[0] - first : block.lines[1] - first + extra]
            shape = (source.shape[0], -1, call.groups, lay.depth)
            if not lay.copies and source[0].flags.c_contiguous:  # each sample's windows are its slab's cells
                rows = math.prod(source.shape[1:]) // (call.groups * lay.depth)
                strides = (source.strides[0], call.groups * lay.depth * item, lay.depth * item, item)
                yield (
                    block,
                    np.lib.stride_tricks.as_strided(source, (shape[0], rows, *shape[2:]), strides, writeable=False),
                )
                continue
            # (also where an input that is not contiguous leaves a copy-free layout's cells apart)
            gathered = common.scratch("im2col.gather", size, call.dtype)[: source.size].reshape(source.shape)
            gathered[...] = source  # (np.copyto of such a view holds the GIL; assignment releases it)
            yield block, gathered.reshape(shape)


def _sample_rows(block_output, gathered, lay: _Layout):
    """A block's output rows as (samples, rows, filters) next to its gathered (samples, rows, groups,
    depth); without a split the samples' rows are consecutive in both, so one product takes all."""
    samples = block_output.shape[0]
    if not lay.split:
        samples = 1
        gathered = gathered.reshape(1, -1, *gathered.shape[2:])
    return block_output.reshape(samples, -1, lay.call.filters), gathered


# ----------------------------------------------------------------------------- entry points


def _phase_calls(call: common.ConvCall):
    """A stride-1 convolution of an input dilated by `f` as `prod(f)` convolutions of the input
    itself, one per output phase (the sub-pixel decomposition).

    Along an axis, output `o = q*f + r` reads dilated cell `o + t*d - lo`, which holds data only
    when `r + t*d - lo` is a multiple of `f`: the taps `t0, t0 + f/g, …` (g = gcd(d, f)), which
    read input `q + c0 + j*(d/g)` with `c0 = (r + t0*d - lo) / f`. So phase `r` is a stride-1
    convolution of the undilated input with those taps, kernel dilation `d/g` and padding `-c0`
    before. Yields (phase slices of the output, kernel taps to keep, the phase's call), or
    (slices, None, None) for a phase no tap reaches (its outputs are zero).
    """
    per_axis = []
    for n, f, (lo, _), k, d, o in zip(
        call.x_shape[1:-1], call.lhs_dilation, call.pairs, call.kernel_spatial, call.rhs_dilation, call.output_spatial
    ):
        g = math.gcd(d, f)
        options = []
        for r in range(f):
            count = len(range(r, o, f))
            taps = [t for t in range(min(k, f // g)) if (r + t * d - lo) % f == 0]
            if not taps or count == 0:
                options.append((slice(r, None, f), None, None))
                continue
            t0 = taps[0]
            kept = range(t0, k, f // g)
            c0 = (r + t0 * d - lo) // f
            dilation = d // g
            span = (len(kept) - 1) * dilation + 1
            before = -c0
            after = count - 1 + span - n - before
            options.append((slice(r, None, f), slice(t0, None, f // g), (before, after, dilation, len(kept))))
        per_axis.append(options)
    g = call.groups
    for combination in itertools.product(*per_axis):
        cells = tuple(c[0] for c in combination)
        if any(c[1] is None for c in combination):
            yield cells, None, None
            continue
        kernel_spatial = tuple(c[2][3] for c in combination)
        phase_call = common.ConvCall(
            call.x_shape,
            (*kernel_spatial, *call.kernel_shape[-2:]),
            (1,) * call.rank,
            tuple((c[2][0], c[2][1]) for c in combination),
            (1,) * call.rank,
            tuple(c[2][2] for c in combination),
            call.dtype,
        )
        assert phase_call.groups == g
        yield cells, tuple(c[1] for c in combination), phase_call


def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
    y = common.empty(call.output_shape, call.dtype)
    if any(f > 1 for f in call.lhs_dilation) and all(s == 1 for s in call.strides):
        for cells, taps, phase_call in _phase_calls(call):
            view = y[(slice(None), *cells)]
            if phase_call is None:
                view[...] = 0
            else:
                view[...] = forward(x, np.ascontiguousarray(kernel[taps]), phase_call)
        return y
    if y.size == 0:
        return y
    lay = layout(call)
    matrices = _kernel_matrices(kernel, lay)
    fg = call.filters // call.groups

    def run(blocks):
        for block, gathered in _gathered_blocks(x, lay, blocks):
            rows, gathered = _sample_rows(y[slice(*block.samples), slice(*block.lines)], gathered, lay)
            count = rows.shape[1]
            for offset, tap in lay.tap_rows():
                source = gathered[:, offset : offset + count]
                for g, matrix in enumerate(matrices[tap]):
                    target = rows[:, :, g * fg : (g + 1) * fg]
                    if tap == 0:
                        np.matmul(source[:, :, g], matrix, out=target)
                    else:  # accumulate (NumPy's product cannot add into its output)
                        partial = common.scratch("im2col.partial", target.size, call.dtype).reshape(target.shape)
                        np.matmul(source[:, :, g], matrix, out=partial)
                        target += partial

    common.run_parallel(run, common.split_runs(_blocks(lay), call.threads), blas=True)
    return y


def _kernel_grad(grad, x, call: common.ConvCall) -> np.ndarray:
    # Unsplit where it fits: one deep product per block, where the split would take one product
    # per sample and tap.
    lay = _Layout(call, False)
    if not _fits(lay):
        lay = layout(call)
    fg = call.filters // call.groups
    parts = len(lay.tap_rows())

    def run(blocks):
        # (groups, first-axis taps when split, depth, fg): rows in the kernel's (taps, channels) order
        total = np.zeros((call.groups, parts, lay.depth, fg), dtype=call.dtype)
        for block, gathered in _gathered_blocks(x, lay, blocks):
            rows, gathered = _sample_rows(grad[slice(*block.samples), slice(*block.lines)], gathered, lay)
            count = rows.shape[1]
            for offset, tap in lay.tap_rows():
                for n in range(rows.shape[0]):
                    source = gathered[n, offset : offset + count]
                    for g in range(call.groups):
                        total[g, tap] += source[:, g].T @ rows[n, :, g * fg : (g + 1) * fg]
        return total

    total = sum(common.run_parallel(run, common.split_runs(_blocks(lay), call.threads), blas=True))
    # (groups, taps * cg, fg), the taps of the first axis outermost → (*kernel_spatial, cg, groups * fg)
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


def vjp(grad, x, kernel, call: common.ConvCall, wanted=(True, True)):
    if grad.size == 0 or x.size == 0:  # nothing reaches the output, or nothing to differentiate
        return np.zeros_like(x), np.zeros_like(kernel)
    transposed = transposed_call(call)
    if transposed is None:  # padding wider than the kernel's span: the row-shifted products do both
        from rankconv.ops import implicit_gemm

        return implicit_gemm.vjp(grad, x, kernel, call, wanted)
    grad = np.ascontiguousarray(grad)
    dx = _input_grad(grad, _transposed_kernel(kernel, call), transposed) if wanted[0] else None
    return dx, (_kernel_grad(grad, x, call) if wanted[1] else None)


def _input_grad(grad, kernel, transposed: common.ConvCall) -> np.ndarray:
    """The input gradient, the transposed convolution `transposed`, by col2im where that is its
    algorithm: a strided convolution's (input-dilated: one product over the output gradient's
    cells instead of one per stride phase), and those `col2im.suits` (deep output gradients, few
    input channels: a grayscale first layer's 32 -> 1 transposed call gathered 288 values per
    input cell for im2col's product)."""
    dilated = any(f > 1 for f in transposed.lhs_dilation)
    if (dilated and col2im.applies(transposed) is None and col2im.fits(transposed)) or col2im.suits(transposed):
        return col2im.forward(grad, kernel, transposed)
    return forward(grad, kernel, transposed)
