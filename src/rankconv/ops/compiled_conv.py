"""The compiled convolution algorithms: `depthwise_kernel` and `direct_kernel` (numba, ranks 1-3).

- "depthwise_kernel": one input channel per group (depthwise, any depth multiplier m), vectorised
  over channels. It replaces the NumPy "direct" algorithm, which makes one pass over the output
  per tap.
- "direct_kernel": any groups, vectorised over each group's filters; for windows too shallow for a
  deep matrix product (the first layer of an image model: 1 or 3 input channels).

Both read the input in place — padding, cropping and input dilation are index arithmetic, never a
copy — and compute the input gradient as a gather (each input cell sums over the outputs it
feeds), so threads never write the same cell; a depthwise call with stride 1 and depth multiplier
1 has an input gradient that is itself a depthwise convolution (of the output gradient with the
flipped kernel), and runs it on the forward kernel's register blocks. The kernel gradient is
summed per thread, then over threads in a fixed order. Kernels in `rankconv.ops.kernels`.
"""

from __future__ import annotations

import numpy as np

from rankconv.ops import conv_common as common
from rankconv.ops import jit, kernels, rank3


def _applies(call: common.ConvCall) -> str | None:
    reason = jit.unavailable_reason()
    if reason is not None:
        return reason
    if call.rank > 3:
        return f"compiled kernels cover ranks 1 to 3; this call has rank {call.rank}"
    return None


def depthwise_applies(call: common.ConvCall) -> str | None:
    if call.channels_per_group != 1:
        return f"it needs one input channel per group (depthwise); this call has {call.channels_per_group}"
    return _applies(call)


def direct_applies(call: common.ConvCall) -> str | None:
    return _applies(call)


def _geometry(call: common.ConvCall) -> np.ndarray:
    return rank3.geometry(call.strides, call.rhs_dilation, [lo for lo, _ in call.pairs], call.lhs_dilation)


def _canonical(x, kernel, call: common.ConvCall, flat_kernel: bool):
    x3 = np.ascontiguousarray(rank3.as_rank3(x, call.rank))
    spatial = (1,) * (3 - call.rank) + call.kernel_spatial
    w = kernel.reshape(*spatial, call.filters) if flat_kernel else kernel.reshape(*spatial, *kernel.shape[-2:])
    return x3, np.ascontiguousarray(w)


def _forward(kernel_function, flat_kernel, extra):
    def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
        x3, w = _canonical(x, kernel, call, flat_kernel)
        y = common.empty(rank3.rank3_shape(call.output_shape), call.dtype)
        geometry = _geometry(call)
        argument = extra(call)
        rank3.run_rows(kernel_function, y.shape[0] * y.shape[1], x3, w, y, geometry, argument, parts=call.threads)
        return y.reshape(call.output_shape)

    return forward


def _flipped_geometry(call: common.ConvCall) -> np.ndarray | None:
    """Where a depthwise call's input gradient is itself a depthwise convolution (depth multiplier
    1, stride 1, no input dilation), the geometry of that convolution: the output gradient
    convolved with the spatially flipped kernel, low padding `(k - 1) * d - lo` per axis (cells
    past the gradient's end read as zeros), giving an input-shaped result. Then it runs on the
    forward kernel's register blocks instead of the gather (1.6x faster for a 3x3, 2.6x for a
    5x5 here). None where it is not one (or would need a negative padding)."""
    if call.filters != call.channels or any(s != 1 for s in call.strides) or any(f != 1 for f in call.lhs_dilation):
        return None
    lows = [(k - 1) * d - lo for k, d, (lo, _) in zip(call.kernel_spatial, call.rhs_dilation, call.pairs)]
    if min(lows) < 0:
        return None
    return rank3.geometry(call.strides, call.rhs_dilation, lows, call.lhs_dilation)


def _vjp(input_grad, kernel_grad, flat_kernel, extra, input_grad_as_forward=None):
    def vjp(grad, x, kernel, call: common.ConvCall, wanted=(True, True)):
        x3, w = _canonical(x, kernel, call, flat_kernel)
        g = np.ascontiguousarray(grad.reshape(rank3.rank3_shape(call.output_shape)))
        geometry = _geometry(call)
        argument = extra(call)
        dx = None
        if wanted[0]:
            buffer, rows = common.empty(x3.shape, call.dtype), x3.shape[0] * x3.shape[1]
            flipped = _flipped_geometry(call) if input_grad_as_forward is not None else None
            if flipped is not None:
                w_flipped = np.ascontiguousarray(w[::-1, ::-1, ::-1])
                rank3.run_rows(input_grad_as_forward, rows, g, w_flipped, buffer, flipped, 1, parts=call.threads)
            else:
                rank3.run_rows(input_grad, rows, g, w, buffer, geometry, argument, parts=call.threads)
            dx = buffer.reshape(x.shape)
        if not wanted[1]:
            return dx, None

        jit.prepare(kernel_grad, x3, g, np.zeros(w.shape, dtype=call.dtype), geometry, argument, 0, 0)
        dw = rank3.summed_rows(
            lambda out, r0, r1: kernel_grad(x3, g, out, geometry, argument, r0, r1),
            g.shape[0] * g.shape[1],
            w.shape,
            call.dtype,
            call.threads,
        )
        return dx, dw.reshape(kernel.shape)

    return vjp


def _multiplier(call):
    return call.filters // call.channels


def _groups(call):
    return call.groups


depthwise_forward = _forward(kernels.depthwise_forward, True, _multiplier)
depthwise_vjp = _vjp(
    kernels.depthwise_input_grad, kernels.depthwise_kernel_grad, True, _multiplier, kernels.depthwise_forward
)
direct_forward = _forward(kernels.direct_forward, False, _groups)
direct_vjp = _vjp(kernels.direct_input_grad, kernels.direct_kernel_grad, False, _groups)
