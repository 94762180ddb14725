"""Direct convolution for one input channel per group (depthwise): per tap, a broadcast product.

With one input channel per group there is nothing for a matrix product to contract: output
channel `c * m + j` is input channel `c` times its own weight. So each tap adds
`window[..., c] * kernel[tap, 0, c * m + j]` to the output, where `window` is the strided view of
the padded input that the tap reads. The gradients are the same products the other way round:
`d_window += sum_j grad * weight` and `d_kernel[tap] = sum over cells of window * grad`.
Samples are processed in chunks small enough for the partial sums to stay in cache.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from rankconv.ops import conv_common as common

# Bytes of output a chunk of samples may have, so that it stays in cache across the taps.
CHUNK_BYTES = 1 << 20


def _run(work, chunks) -> list:
    """`work(start, stop)` for every chunk, on `conv_common.THREADS` threads; results in chunk order."""
    return common.run_parallel(lambda chunk: work(*chunk), chunks)


def applies(call: common.ConvCall) -> str | None:
    """None if this algorithm computes `call`, else the reason it does not."""
    if call.channels_per_group != 1:
        return f"it needs one input channel per group (depthwise); this call has {call.channels_per_group}"
    return None


def _padded(x, call: common.ConvCall):
    return common.pad(common.dilate(x, call.lhs_dilation), call.pairs)


def _windows(x_padded, call: common.ConvCall):
    """For each tap (in the kernel's row-major order), the view of the input cells it reads."""
    for index in itertools.product(*(range(k) for k in call.kernel_spatial)):
        cells = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(index, call.rhs_dilation, call.output_spatial, call.strides)
        )
        yield x_padded[(slice(None), *cells, slice(None))]


def _chunks(call: common.ConvCall):
    sample = math.prod(call.output_spatial) * call.filters * call.dtype.itemsize
    return common.batch_chunks(call.batch, sample, min(CHUNK_BYTES, call.workspace_limit()))


# Largest tiled copy of the weights (see `_tiled`), in bytes.
TILE_BYTES = 1 << 20


def _tiled(weights, call: common.ConvCall):
    """The weights as (m, taps, out_last, C): each tap's repeated along the last spatial axis when
    that stays small. Multiplying a window by a contiguous tile of its own last two axes' shape lets
    NumPy run one long inner loop instead of one per cell (30% faster measured); where the tile
    would be large, (m, taps, 1, C) broadcasts instead."""
    length = call.output_spatial[-1] if weights.size * call.output_spatial[-1] * weights.itemsize <= TILE_BYTES else 1
    tiled = np.broadcast_to(weights[:, None], (weights.shape[0], length, *weights.shape[1:]))
    return np.ascontiguousarray(np.moveaxis(tiled, -1, 0))


def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
    channels, multiplier = call.channels, call.filters // call.channels
    weights = _tiled(kernel.reshape(call.taps, channels, multiplier), call)
    y = common.empty((call.batch, *call.output_spatial, channels, multiplier), call.dtype)

    def work(start, stop):
        x_padded = _padded(x[start:stop], call)
        scratch = np.empty((stop - start, *call.output_spatial, channels), dtype=call.dtype)
        for j in range(multiplier):  # one output channel per input channel at a time: C innermost
            out = y[start:stop, ..., j]
            for tap, window in enumerate(_windows(x_padded, call)):
                if tap == 0:
                    np.multiply(window, weights[j, 0], out=out)
                else:
                    np.multiply(window, weights[j, tap], out=scratch)
                    out += scratch

    _run(work, _chunks(call))
    return y.reshape(call.output_shape)


def vjp(grad, x, kernel, call: common.ConvCall, wanted=(True, True)):
    # computes both gradients whatever is `wanted` (the planner drops the other)
    channels, multiplier = call.channels, call.filters // call.channels
    weights = kernel.reshape(call.taps, channels, multiplier)
    tiles = _tiled(weights, call)
    grad = grad.reshape(call.batch, *call.output_spatial, channels, multiplier)
    dx = common.empty(x.shape, call.dtype)

    def work(start, stop):
        """Fills dx for the chunk; returns the chunk's kernel gradient."""
        d_weights = np.zeros(weights.shape, dtype=call.dtype)
        x_padded = _padded(x[start:stop], call)
        d_padded = np.zeros(x_padded.shape, dtype=call.dtype)
        scratch = np.empty((stop - start, *call.output_spatial, channels), dtype=call.dtype)
        for j in range(multiplier):
            g = np.ascontiguousarray(grad[start:stop, ..., j])
            for tap, (window, d_window) in enumerate(zip(_windows(x_padded, call), _windows(d_padded, call))):
                np.multiply(g, tiles[j, tap], out=scratch)
                d_window += scratch
                np.multiply(window, g, out=scratch)
                d_weights[tap, :, j] += scratch.reshape(-1, channels).sum(axis=0)
        d_chunk = common.unpad(d_padded, call.pairs, call.dilated_spatial)
        dx[start:stop] = d_chunk[(slice(None), *(slice(None, None, f) for f in call.lhs_dilation))]
        return d_weights

    parts = _run(work, _chunks(call))
    d_weights = np.sum(parts, axis=0) if parts else np.zeros(weights.shape, dtype=call.dtype)
    return dx, d_weights.reshape(kernel.shape)
