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
