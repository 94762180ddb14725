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


def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
    channels, multiplier = call.channels, call.filters // call.channels
    weights = kernel.reshape(call.taps, channels, multiplier)
    y = np.zeros((call.batch, *call.output_spatial, channels, multiplier), dtype=call.dtype)
    for start, stop in _chunks(call):
        x_padded = _padded(x[start:stop], call)
        out = y[start:stop]
        scratch = np.empty_like(out)
        for window, w in zip(_windows(x_padded, call), weights):
            np.multiply(window[..., None], w, out=scratch)
            out += scratch
    return y.reshape(call.output_shape)


def vjp(grad, x, kernel, call: common.ConvCall):
    channels, multiplier = call.channels, call.filters // call.channels
    weights = kernel.reshape(call.taps, channels, multiplier)
    grad = grad.reshape(call.batch, *call.output_spatial, channels, multiplier)
    dx = np.empty(x.shape, dtype=call.dtype)
    d_weights = np.zeros(weights.shape, dtype=call.dtype)
    cells = "ABDEFGHIJKLNOPQRSTUVWXYZ"[: call.rank + 1]  # batch and spatial axes, summed over
    for start, stop in _chunks(call):
        x_padded = _padded(x[start:stop], call)
        g = grad[start:stop]
        d_padded = np.zeros(x_padded.shape, dtype=call.dtype)
        for tap, (window, d_window) in enumerate(zip(_windows(x_padded, call), _windows(d_padded, call))):
            w = weights[tap]
            if multiplier == 1:
                d_window += g[..., 0] * w[:, 0]
            else:
                d_window += np.einsum("...cm,cm->...c", g, w)
            d_weights[tap] += np.einsum(f"{cells}c,{cells}cm->cm", window, g)
        d_chunk = common.unpad(d_padded, call.pairs, call.dilated_spatial)
        dx[start:stop] = d_chunk[(slice(None), *(slice(None, None, f) for f in call.lhs_dilation))]
    return dx, d_weights.reshape(kernel.shape)
