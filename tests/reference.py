"""A float64 convolution written straight from the definition, for tests only.

    y[n, o, f] = sum over taps t and channels c of the group of f:
                 x[n, o*s + t*d - pad_lo, c] * w[t, c - group_start, f]

with out-of-range input cells read as zero. It shares no code with rankconv: padding amounts
come from its own reading of TensorFlow's rules, and the loops run over output cells and taps.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def reference_padding(n, k, s, d, padding):
    span = d * (k - 1) + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    if padding == "same":
        out = math.ceil(n / s)
        total = max(0, (out - 1) * s + span - n)
        return total // 2, total - total // 2
    lo, hi = padding
    return lo, hi


def reference_conv(x, w, strides=1, padding="valid", dilation=1, data_format="channels_last", lhs_dilation=1):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if data_format == "channels_first":
        x = np.moveaxis(x, 1, -1)
    rank = x.ndim - 2
    s = (strides,) * rank if isinstance(strides, int) else tuple(strides)
    d = (dilation,) * rank if isinstance(dilation, int) else tuple(dilation)
    ld = (lhs_dilation,) * rank if isinstance(lhs_dilation, int) else tuple(lhs_dilation)
    batch, channels = x.shape[0], x.shape[-1]
    spatial = [(n - 1) * f + 1 for n, f in zip(x.shape[1:-1], ld)]  # size after input dilation
    ks = w.shape[:-2]
    cg, filters = w.shape[-2], w.shape[-1]
    groups = channels // cg
    fg = filters // groups
    if isinstance(padding, str):
        pads = [reference_padding(spatial[i], ks[i], s[i], d[i], padding) for i in range(rank)]
    else:
        pads = [tuple(p) for p in padding]
    out_shape = [(spatial[i] + sum(pads[i]) - (d[i] * (ks[i] - 1) + 1)) // s[i] + 1 for i in range(rank)]
    y = np.zeros((batch, *out_shape, filters))
    for o in itertools.product(*(range(m) for m in out_shape)):
        for t in itertools.product(*(range(k) for k in ks)):
            pos = [o[i] * s[i] + t[i] * d[i] - pads[i][0] for i in range(rank)]
            if any(p < 0 or p >= spatial[i] or p % ld[i] for i, p in enumerate(pos)):
                continue
            src = tuple(p // ld[i] for i, p in enumerate(pos))
            for g in range(groups):
                xs = x[(slice(None), *src, slice(g * cg, (g + 1) * cg))]  # (batch, cg)
                ws = w[(*t, slice(None), slice(g * fg, (g + 1) * fg))]  # (cg, fg)
                y[(slice(None), *o, slice(g * fg, (g + 1) * fg))] += xs @ ws
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    return y


def reference_conv_transpose(
    x, w, strides=1, padding="valid", output_padding=None, dilation=1, data_format="channels_last"
):
    """Keras's transposed convolution from its definition, as a scatter: input cell i and tap t add
    x[i] * w[t] (w: kernel_size + (filters, channels)) to cell i*s + t*d of the full output, of
    length (n - 1) * s + span; Keras's output is the window of that starting at span - 1 - lo, with
    lo and the length from Keras's documented rules (cells past the full output are zero)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if data_format == "channels_first":
        x = np.moveaxis(x, 1, -1)
    rank = x.ndim - 2
    s = (strides,) * rank if isinstance(strides, int) else tuple(strides)
    d = (dilation,) * rank if isinstance(dilation, int) else tuple(dilation)
    ops_ = (
        [None] * rank
        if output_padding is None
        else ((output_padding,) * rank if isinstance(output_padding, int) else tuple(output_padding))
    )
    spatial, ks = x.shape[1:-1], w.shape[:rank]
    spans = [d[i] * (ks[i] - 1) + 1 for i in range(rank)]
    full_shape = [(spatial[i] - 1) * s[i] + spans[i] for i in range(rank)]
    full = np.zeros((x.shape[0], *full_shape, w.shape[-2]))
    for i in itertools.product(*(range(n) for n in spatial)):
        for t in itertools.product(*(range(k) for k in ks)):
            at = tuple(i[a] * s[a] + t[a] * d[a] for a in range(rank))
            full[(slice(None), *at, slice(None))] += x[(slice(None), *i, slice(None))] @ w[t].T
    starts, lengths = [], []
    for a in range(rank):
        span, stride, extra, n = spans[a], s[a], ops_[a], spatial[a]
        if padding == "valid":
            length = (n - 1) * stride + span + (max(span, stride) - span if extra is None else extra)
            lo = span - 1
        else:
            length = n * stride if extra is None else (n - 1) * stride + span % 2 + extra
            total = stride + span - 2 if extra is None else span + span % 2 - 2 + extra
            lo = min(total // 2 + total % 2, span - 1)
        starts.append(span - 1 - lo)
        lengths.append(length)
    y = np.zeros((x.shape[0], *lengths, w.shape[-2]))
    window = tuple(slice(0, min(length, full_shape[a] - starts[a])) for a, length in enumerate(lengths))
    source = tuple(slice(starts[a], starts[a] + (window[a].stop - window[a].start)) for a in range(rank))
    y[(slice(None), *window, slice(None))] = full[(slice(None), *source, slice(None))]
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    return y
