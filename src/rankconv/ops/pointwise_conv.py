"""The 1×…×1 convolution: one matrix product per group, nothing else.

A kernel of size 1 on every spatial axis mixes channels cell by cell, so the convolution is
`x_rows @ kernel` over the cells the strides select. The kernel gradient is `x_rows.T @ grad`
and the input gradient `grad @ kernel.T`, placed back on the selected cells.
"""

from __future__ import annotations

import numpy as np

from rankconv.ops import conv_common as common


def applies(call: common.ConvCall) -> str | None:
    """None if this algorithm computes `call`, else the reason it does not."""
    if any(k != 1 for k in call.kernel_spatial):
        return f"the kernel's spatial size is {call.kernel_spatial}, not all ones"
    if any(f != 1 for f in call.lhs_dilation):
        return "the input is dilated"
    if any(pair != (0, 0) for pair in call.pairs):
        return "the input is padded or cropped"
    return None


def _selected(x, call: common.ConvCall):
    """The cells a 1×…×1 kernel reads: every `stride`-th, up to the last output."""
    index = tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(call.output_spatial, call.strides))
    return x[(slice(None), *index, slice(None))]


def _group_slices(call: common.ConvCall):
    cg, fg = call.channels_per_group, call.filters // call.groups
    return [(slice(g * cg, (g + 1) * cg), slice(g * fg, (g + 1) * fg)) for g in range(call.groups)]


def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
    rows = _selected(x, call).reshape(-1, call.channels)  # a view when strides are 1
    weights = kernel.reshape(call.channels_per_group, call.filters)
    if call.groups == 1:
        y = common.matmul(rows, weights)
    else:
        y = common.empty((rows.shape[0], call.filters), call.dtype)
        for cin, cout in _group_slices(call):
            y[:, cout] = rows[:, cin] @ weights[:, cout]
    return y.reshape(call.output_shape)


def vjp(grad, x, kernel, call: common.ConvCall, wanted=(True, True)):
    rows = _selected(x, call).reshape(-1, call.channels)
    g = grad.reshape(-1, call.filters)
    weights = kernel.reshape(call.channels_per_group, call.filters)
    if call.groups == 1:  # one product each way (split over the worker threads when large)
        d_rows = common.matmul(g, weights.T) if wanted[0] else None
        d_weights = common.matmul(rows.T, g) if wanted[1] else np.zeros(weights.shape, call.dtype)
    else:
        d_rows = common.empty(rows.shape, call.dtype)
        d_weights = np.empty(weights.shape, dtype=call.dtype)
        for cin, cout in _group_slices(call):
            if wanted[0]:
                d_rows[:, cin] = g[:, cout] @ weights[:, cout].T
            if wanted[1]:
                d_weights[:, cout] = rows[:, cin].T @ g[:, cout]
    if not wanted[0]:
        return None, d_weights.reshape(kernel.shape)
    if tuple(call.output_spatial) == tuple(x.shape[1:-1]):
        dx = d_rows.reshape(x.shape)
    else:
        dx = np.zeros(x.shape, dtype=call.dtype)
        _selected(dx, call)[...] = d_rows.reshape(_selected(dx, call).shape)
    return dx, d_weights.reshape(kernel.shape)
