"""Convolution by FFT, for long kernels.

On a periodic grid of size L (at least the padded input), the stride-1 correlation
`c[o] = sum_t x[o + t] w[t]` becomes a product of spectra, `C = X · conj(W)`, with the channels
contracted frequency by frequency: `C[f, :] = X[f, :] @ conj(W[f])`, a batch of small complex
matrix products. Outputs `o <= padded - span` never wrap around, so they are exact; strides keep
every s-th of them. The cost grows with `log L` instead of with the number of taps, which is why
the planner picks this for kernels of dozens of taps and more.

Gradients on the same grid: the input gradient is the convolution `dX = G · W` (the output
gradient spread onto the stride-1 grid), the kernel gradient the correlation `dW = X · conj(G)`
summed over the batch; both are read off the first cells of their inverse transforms.
"""

from __future__ import annotations

import math

import numpy as np

from rankconv.ops import conv_common as common


def applies(call: common.ConvCall) -> str | None:
    """None if this algorithm computes `call` (it computes every call), else the reason it does not."""
    return None


def fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: a size the FFT handles quickly."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def _grid(call: common.ConvCall) -> tuple[int, ...]:
    return tuple(fast_length(p) for p in call.padded_spatial)


def _complex(call: common.ConvCall):
    return np.complex64 if call.dtype == np.float32 else np.complex128


def _kernel_spectrum(kernel, call: common.ConvCall, grid):
    """rfftn of the (dilated) kernel on the grid: (frequencies, channels // groups, filters)."""
    dilated = np.zeros((*call.spans, *kernel.shape[-2:]), dtype=call.dtype)
    dilated[tuple(slice(None, None, d) for d in call.rhs_dilation)] = kernel
    spectrum = np.fft.rfftn(dilated, s=grid, axes=tuple(range(call.rank)))
    return spectrum.astype(_complex(call), copy=False).reshape(-1, *kernel.shape[-2:])


def _frequencies(grid) -> int:
    return math.prod(grid[:-1]) * (grid[-1] // 2 + 1)


def _filter_chunks(call: common.ConvCall, grid):
    """(input channel slice, filter slice) pairs: each conv group, its filters split so that one
    chunk's kernel spectrum (frequencies × channels per group × filters, complex) stays within a
    quarter of the workspace — it would otherwise be many times the kernel's size."""
    cg, fg = call.channels_per_group, call.filters // call.groups
    per_filter = _frequencies(grid) * cg * 2 * call.dtype.itemsize
    size = max(1, min(fg, call.workspace_limit() // 4 // per_filter))
    for g in range(call.groups):
        for start in range(0, fg, size):
            yield slice(g * cg, (g + 1) * cg), slice(g * fg + start, g * fg + min(start + size, fg))


class _KernelSpectra:
    """The kernel's spectrum per filter chunk: computed once per call where there is one chunk (the
    usual case: it fits its quarter of the workspace), else again for every batch chunk."""

    def __init__(self, kernel, call: common.ConvCall, grid):
        self.kernel, self.call, self.grid = kernel, call, grid
        self.chunks = list(_filter_chunks(call, grid))
        self._kept = None

    def get(self, index: int):
        cout = self.chunks[index][1]
        if len(self.chunks) > 1:
            return _kernel_spectrum(self.kernel[..., cout], self.call, self.grid)
        if self._kept is None:
            self._kept = _kernel_spectrum(self.kernel[..., cout], self.call, self.grid)
        return self._kept


def _spectrum(a, grid, call: common.ConvCall):
    """rfftn over the spatial axes of (batch, *spatial, C), laid out (frequencies, batch, C)."""
    spectrum = np.fft.rfftn(a, s=grid, axes=tuple(range(1, call.rank + 1))).astype(_complex(call), copy=False)
    return np.ascontiguousarray(np.moveaxis(spectrum.reshape(a.shape[0], -1, a.shape[-1]), 1, 0))


def _inverse(spectrum, batch, grid, call: common.ConvCall):
    """Inverse of `_spectrum`: (frequencies, batch, C) → (batch, *grid, C) real."""
    half = (*grid[:-1], grid[-1] // 2 + 1)
    laid = np.moveaxis(spectrum, 0, 1).reshape(batch, *half, spectrum.shape[-1])
    return np.fft.irfftn(laid, s=grid, axes=tuple(range(1, call.rank + 1)))


def _strided_outputs(call: common.ConvCall):
    return tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(call.output_spatial, call.strides))


# With no explicit workspace limit (`set_conv_workspace`), the FFT's chunks may take this many times
# the default (input + output): its per-frequency products need several samples side by side to be
# efficient. Measured on a k255 Conv1D (len 4096, 32 -> 32, batch 8): one sample per chunk 2.8x
# slower forward than four; PyTorch's peak memory there is ~6x rankconv's. An explicit limit is kept.
DEFAULT_WORKSPACE_FACTOR = 8


def _chunks(call: common.ConvCall, grid, backward: bool):
    """Sample ranges whose scratch fits three quarters of the workspace (the kernel spectrum's chunk
    takes the last quarter, `_filter_chunks`). A sample's scratch, in real values of the grid
    (`points`; a half spectrum is about as many complex values, twice the bytes): forward, the
    padded input (C), its spectrum and that laid out again (2 × 2C), the products and their
    relaid copy, the inverse transform's intermediate and result (3 × 2F + F) — about 5C + 7F;
    backward also the spread output gradient, both spectra and the input gradient's, the kernel
    gradient's products — about 7C + 9F. Counted generously: a chunk is at least one sample."""
    points = math.prod(grid)
    channels, filters = call.channels, call.filters
    values = 7 * channels + 9 * filters if backward else 5 * channels + 7 * filters
    per_sample = points * values * call.dtype.itemsize
    limit = call.workspace_limit()
    if common.WORKSPACE_BYTES is None:  # no explicit limit: see DEFAULT_WORKSPACE_FACTOR
        limit *= DEFAULT_WORKSPACE_FACTOR
    return common.batch_chunks(call.batch, per_sample, max(1, limit * 3 // 4))


def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
    grid = _grid(call)
    y = common.empty(call.output_shape, call.dtype)
    spectra = _KernelSpectra(kernel, call, grid)
    for start, stop in _chunks(call, grid, backward=False):
        x_padded = common.pad(common.dilate(x[start:stop], call.lhs_dilation), call.pairs)
        spectrum = _spectrum(x_padded, grid, call)
        products = np.empty((spectrum.shape[0], stop - start, call.filters), dtype=spectrum.dtype)
        for index, (cin, cout) in enumerate(spectra.chunks):
            weights = spectra.get(index).conj()
            with np.errstate(invalid="ignore"):  # a NaN in a sample spreads over its spectrum, silently
                np.matmul(spectrum[:, :, cin], weights, out=products[:, :, cout])
        full = _inverse(products, stop - start, grid, call)
        y[start:stop] = full[(slice(None), *_strided_outputs(call))]
    return y


def vjp(grad, x, kernel, call: common.ConvCall, wanted=(True, True)):
    # computes both gradients whatever is `wanted` (the planner drops the other)
    grid = _grid(call)
    dx = common.empty(x.shape, call.dtype)
    d_kernel = np.zeros(kernel.shape, dtype=call.dtype)
    half = (*grid[:-1], grid[-1] // 2 + 1)
    taps = tuple(slice(0, span, d) for span, d in zip(call.spans, call.rhs_dilation))
    spectra = _KernelSpectra(kernel, call, grid)
    for start, stop in _chunks(call, grid, backward=True):
        n = stop - start
        x_padded = common.pad(common.dilate(x[start:stop], call.lhs_dilation), call.pairs)
        spread = np.zeros((n, *_stride1_outputs(call), call.filters), dtype=call.dtype)
        spread[(slice(None), *_strided_outputs(call))] = grad[start:stop]
        g_spectrum = _spectrum(spread, grid, call)
        x_spectrum = _spectrum(x_padded, grid, call)
        d_spectrum = np.zeros((g_spectrum.shape[0], n, call.channels), dtype=g_spectrum.dtype)
        for index, (cin, cout) in enumerate(spectra.chunks):
            weights = spectra.get(index)
            d_spectrum[:, :, cin] += np.matmul(g_spectrum[:, :, cout], weights.transpose(0, 2, 1))
            d_weights = np.matmul(x_spectrum[:, :, cin].transpose(0, 2, 1), g_spectrum[:, :, cout].conj())
            chunk = np.fft.irfftn(d_weights.reshape(*half, *d_weights.shape[1:]), s=grid, axes=tuple(range(call.rank)))
            d_kernel[..., cout] += chunk[taps]
        d_full = _inverse(d_spectrum, n, grid, call)
        d_padded = d_full[(slice(None), *(slice(0, p) for p in call.padded_spatial))]
        d_chunk = common.unpad(d_padded, call.pairs, call.dilated_spatial)
        dx[start:stop] = d_chunk[(slice(None), *(slice(None, None, f) for f in call.lhs_dilation))]
    return dx, d_kernel


def _stride1_outputs(call: common.ConvCall) -> tuple[int, ...]:
    """Output lengths of the same call with strides 1: the grid the output gradient is spread on."""
    return tuple(p - span + 1 for p, span in zip(call.padded_spatial, call.spans))
