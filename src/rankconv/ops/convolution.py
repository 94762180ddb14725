"""The one general N-d convolution, its gradients, and Keras's `ops.conv` front end.

`conv_general` and `conv_general_vjp` validate a call, describe it as a `ConvCall` (shapes only)
and hand it to the planner (`rankconv.ops.planner`), which picks one of the algorithms —
`implicit_gemm` (row-shifted products, no im2col buffer; also "im2col" when every axis is
unfolded), `fft_conv`, `direct_conv` (depthwise), `pointwise_conv` (1×1) — and caches the choice.
All of them use the canonical channels-last layout of `rankconv.ops.conv_common`. Their results
agree with the float64 loop reference in `tests/reference.py`.
"""

from __future__ import annotations

import numpy as np

from rankconv import utils
from rankconv.ops import planner
from rankconv.ops.conv_common import ConvCall

# ----------------------------------------------------------------------------- validation


def _as_float_array(value, name: str, dtype=None) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"`{name}` must be a numeric array; received an array of dtype {array.dtype} (shape {array.shape})."
        )
    if dtype is not None:
        return array.astype(dtype, copy=False)
    if array.dtype.kind != "f" or array.dtype.itemsize < 4:
        array = array.astype(np.float32)
    return array


def _result_dtype(x: np.ndarray, kernel: np.ndarray) -> np.dtype:
    dtype = np.result_type(x.dtype, kernel.dtype)
    return dtype if dtype.kind == "f" and dtype.itemsize >= 4 else np.dtype(np.float32)


# ----------------------------------------------------------------------------- conv_general


def _check_general(
    x, kernel, strides, padding, lhs_dilation, rhs_dilation, shown_shape=None, dilation_name="rhs_dilation"
):
    """Validate a call; messages show the inputs as the caller passed them (`shown_shape`)."""
    shown = tuple(shown_shape) if shown_shape is not None else x.shape
    if x.ndim < 3:
        raise ValueError(
            "`inputs` must have shape (batch, *spatial, channels) with at least one spatial axis; "
            f"received shape {shown}."
        )
    rank = x.ndim - 2
    if kernel.ndim != rank + 2:
        raise ValueError(
            f"`kernel` must have shape (*kernel_spatial, channels // groups, filters) with {rank} spatial "
            f"axes to match `inputs` of shape {shown}; received kernel shape {kernel.shape}."
        )
    if 0 in kernel.shape:
        raise ValueError(f"`kernel` must not have an axis of size 0; received kernel shape {kernel.shape}.")
    channels, per_group, filters = x.shape[-1], kernel.shape[-2], kernel.shape[-1]
    if channels % per_group != 0:
        raise ValueError(
            f"The input's {channels} channels must be a multiple of the kernel's input-channel axis "
            f"(kernel.shape[-2] = {per_group}); received inputs {shown} and kernel {kernel.shape}."
        )
    groups = channels // per_group
    if filters % groups != 0:
        raise ValueError(
            f"The kernel's {filters} filters must be divisible by the {groups} groups implied by "
            f"inputs {shown} and kernel {kernel.shape}."
        )
    strides = utils.normalize_tuple(strides, rank, "strides")
    lhs_dilation = utils.normalize_tuple(lhs_dilation, rank, "lhs_dilation")
    rhs_dilation = utils.normalize_tuple(rhs_dilation, rank, dilation_name)
    pairs = utils.normalize_padding(padding, rank=rank, allow_causal=False)
    if isinstance(pairs, str):
        raise ValueError(f"conv_general takes explicit (lo, hi) padding pairs; received padding={padding!r}.")
    dilated = [(n - 1) * f + 1 for n, f in zip(x.shape[1:-1], lhs_dilation)]
    for axis, (n, (lo, hi)) in enumerate(zip(dilated, pairs)):
        if max(-lo, 0) + max(-hi, 0) > n:
            raise ValueError(
                f"`padding` crops more than spatial axis {axis} holds: {(lo, hi)} on an axis of {n} cells "
                f"(inputs {shown}, padding {pairs})."
            )
    padded = [n + lo + hi for n, (lo, hi) in zip(dilated, pairs)]
    kernel_spatial = kernel.shape[:-2]
    unpadded = all(lo == 0 and hi == 0 for lo, hi in pairs)
    for axis, (p, k, d) in enumerate(zip(padded, kernel_spatial, rhs_dilation)):
        span = utils.effective_kernel_size(k, d)
        if p < span:
            advice = " Use padding='same' or a longer input." if unpadded else " Use more padding or a longer input."
            raise ValueError(
                f"The kernel is larger than the (padded) input along spatial axis {axis}: the kernel spans "
                f"{span} cells (kernel size {k}, dilation {d}) but the input has {p} after padding "
                f"(inputs {shown}, kernel {kernel.shape}, padding {pairs}).{advice}"
            )
    return strides, pairs, lhs_dilation, rhs_dilation, groups


def _setup(x, kernel, strides, padding, lhs_dilation, rhs_dilation):
    """Validate a call and cast it: (x, kernel, call)."""
    x = _as_float_array(x, "inputs")
    kernel = _as_float_array(kernel, "kernel")
    if padding is None:
        padding = ((0, 0),) * max(x.ndim - 2, 0)
    strides, pairs, lhs_dilation, rhs_dilation, groups = _check_general(
        x, kernel, strides, padding, lhs_dilation, rhs_dilation
    )
    dtype = _result_dtype(x, kernel)
    call = ConvCall(
        tuple(x.shape),
        tuple(kernel.shape),
        tuple(strides),
        tuple(tuple(pair) for pair in pairs),
        tuple(lhs_dilation),
        tuple(rhs_dilation),
        np.dtype(dtype),
    )
    return x.astype(dtype, copy=False), kernel.astype(dtype, copy=False), call


def conv_general(x, kernel, strides=1, padding=None, lhs_dilation=1, rhs_dilation=1) -> np.ndarray:
    """General N-d convolution (cross-correlation, as in Keras) on channels-last arrays.

    x: (batch, *spatial, channels); kernel: (*kernel_spatial, channels // groups, filters).
    padding: explicit `((lo, hi), ...)` per spatial axis (negative amounts crop); `None` is no
    padding. lhs_dilation: input dilation (zeros between input cells; transposed convolution).
    rhs_dilation: kernel dilation (atrous). Groups are `channels // kernel.shape[-2]`.
    Returns (batch, *output_spatial, filters) in the common floating dtype of x and kernel.
    """
    x, kernel, call = _setup(x, kernel, strides, padding, lhs_dilation, rhs_dilation)
    return planner.forward(x, kernel, call)


def conv_general_vjp(grad, x, kernel, strides=1, padding=None, lhs_dilation=1, rhs_dilation=1, wanted=(True, True)):
    """Vector-Jacobian products of `conv_general`: `(d_x, d_kernel)` for output gradient `grad`.

    `grad` has the shape of `conv_general(x, kernel, ...)`; the results have the shapes of `x`
    and `kernel` (in the computation's dtype). `wanted` (d_x?, d_kernel?) skips the work of a
    gradient nobody needs, which is then None.
    """
    x, kernel, call = _setup(x, kernel, strides, padding, lhs_dilation, rhs_dilation)
    grad = _as_float_array(grad, "grad")
    if grad.shape != call.output_shape:
        raise ValueError(f"`grad` must have the output's shape {call.output_shape}; received {grad.shape}.")
    return planner.vjp(grad.astype(call.dtype, copy=False), x, kernel, call, wanted)


def conv_plan(
    x_shape, kernel_shape, strides=1, padding=None, lhs_dilation=1, rhs_dilation=1, dtype="float32", backward=False
) -> tuple[str, str]:
    """The planner's choice for a `conv_general` call with these shapes: `(algorithm, reason)`."""
    x = np.lib.stride_tricks.as_strided(np.zeros((), dtype), shape=tuple(x_shape), strides=(0,) * len(x_shape))
    kernel = np.lib.stride_tricks.as_strided(
        np.zeros((), dtype), shape=tuple(kernel_shape), strides=(0,) * len(kernel_shape)
    )
    _, _, call = _setup(x, kernel, strides, padding, lhs_dilation, rhs_dilation)
    return planner.plan(call, backward)


# ----------------------------------------------------------------------------- Keras's ops.conv


def _to_channels_last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, 1, -1)


def _to_channels_first(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(x, -1, 1)


def _front_end(inputs, kernel, strides, padding, data_format, dilation_rate):
    x = _as_float_array(inputs, "inputs")
    kernel = _as_float_array(kernel, "kernel")
    data_format = utils.normalize_data_format(data_format)
    if x.ndim < 3:
        raise ValueError(
            "`inputs` must have shape (batch, *spatial, channels) (or (batch, channels, *spatial) for "
            f"channels_first) with at least one spatial axis; received shape {x.shape}."
        )
    rank = x.ndim - 2
    if data_format == "channels_first":
        x = _to_channels_last(x)
    strides = utils.normalize_tuple(strides, rank, "strides")
    dilation_rate = utils.normalize_tuple(dilation_rate, rank, "dilation_rate")
    padding = utils.normalize_padding(padding, rank=rank)
    if kernel.ndim != rank + 2:
        raise ValueError(
            f"`kernel` must have {rank + 2} axes (*kernel_spatial, channels // groups, filters) for inputs "
            f"of shape {np.shape(inputs)}; received kernel shape {kernel.shape}."
        )
    pairs = utils.padding_pairs(x.shape[1:-1], kernel.shape[:-2], strides, dilation_rate, padding)
    # validate here too, so that messages show the inputs in the caller's layout
    _check_general(
        x, kernel, strides, pairs, 1, dilation_rate, shown_shape=np.shape(inputs), dilation_name="dilation_rate"
    )
    return x, kernel, strides, pairs, dilation_rate, data_format


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1) -> np.ndarray:
    """N-d convolution with Keras 3's `keras.ops.conv` signature and semantics, for any rank >= 1.

    inputs: (batch, *spatial, channels) for "channels_last" (the default) or
    (batch, channels, *spatial) for "channels_first". kernel: (*kernel_spatial,
    channels // groups, filters); groups are inferred as `channels // kernel.shape[-2]`.
    padding: "valid", "same" (TensorFlow's rule: an odd total pad puts the extra zero after),
    "causal" (all padding before), or explicit `((lo, hi), ...)` pairs. Unlike Keras's layers,
    `strides > 1` may be combined with `dilation_rate > 1`. float32 and float64 keep their dtype.
    """
    x, kernel, strides, pairs, dilation_rate, data_format = _front_end(
        inputs, kernel, strides, padding, data_format, dilation_rate
    )
    y = conv_general(x, kernel, strides, pairs, 1, dilation_rate)
    return np.ascontiguousarray(_to_channels_first(y)) if data_format == "channels_first" else y


def conv_vjp(grad, inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1, wanted=(True, True)):
    """Gradients of `conv(inputs, kernel, ...)`: returns `(d_inputs, d_kernel)` for output gradient `grad`.

    `grad` has the output's shape (in the same data format as `inputs`). `wanted` as in
    `conv_general_vjp`.
    """
    x, kernel, strides, pairs, dilation_rate, data_format = _front_end(
        inputs, kernel, strides, padding, data_format, dilation_rate
    )
    grad = _as_float_array(grad, "grad")
    out = [
        utils.conv_output_length(n, k, pair, s, d)
        for n, k, pair, s, d in zip(x.shape[1:-1], kernel.shape[:-2], pairs, strides, dilation_rate)
    ]
    expected = (x.shape[0], *out, kernel.shape[-1])
    if data_format == "channels_first":
        expected = (expected[0], expected[-1], *expected[1:-1])
    if grad.shape != expected:
        raise ValueError(f"`grad` must have the output's shape {expected}; received {grad.shape}.")
    if data_format == "channels_first":
        grad = _to_channels_last(grad)
    d_x, d_kernel = conv_general_vjp(grad, x, kernel, strides, pairs, 1, dilation_rate, wanted)
    if data_format == "channels_first" and d_x is not None:
        d_x = np.ascontiguousarray(_to_channels_first(d_x))
    return d_x, d_kernel


# ----------------------------------------------------------------------------- the family


def _family_front_end(inputs, kernel, strides, data_format, dilation_rate, op):
    """Inputs channels-last, kernel, rank, strides, dilations and data format for `op`, checked."""
    x = _as_float_array(inputs, "inputs")
    kernel = _as_float_array(kernel, "kernel")
    data_format = utils.normalize_data_format(data_format)
    if x.ndim < 3:
        raise ValueError(
            f"`inputs` of {op} must have shape (batch, *spatial, channels) (or (batch, channels, *spatial) for "
            f"channels_first) with at least one spatial axis; received shape {x.shape}."
        )
    rank = x.ndim - 2
    if kernel.ndim != rank + 2:
        raise ValueError(
            f"`kernel` of {op} must have {rank + 2} axes for inputs of shape {np.shape(inputs)}; received kernel "
            f"shape {kernel.shape}."
        )
    if data_format == "channels_first":
        x = _to_channels_last(x)
    strides = utils.normalize_tuple(strides, rank, "strides")
    dilation_rate = utils.normalize_tuple(dilation_rate, rank, "dilation_rate")
    return x, kernel, rank, strides, dilation_rate, data_format


def _transpose_setup(inputs, kernel, strides, padding, output_padding, data_format, dilation_rate):
    x, kernel, rank, strides, dilation_rate, data_format = _family_front_end(
        inputs, kernel, strides, data_format, dilation_rate, "conv_transpose"
    )
    if kernel.shape[-1] != x.shape[-1]:
        raise ValueError(
            "`kernel` of conv_transpose has Keras's layout kernel_size + (filters, input_channels): its last axis "
            f"must equal the input's {x.shape[-1]} channels; received kernel shape {kernel.shape}."
        )
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"`padding` of conv_transpose must be 'valid' or 'same'; received padding={padding!r}.")
    padding = padding.lower()
    if output_padding is not None:
        output_padding = utils.normalize_tuple(output_padding, rank, "output_padding", allow_zero=True)
        for axis, (extra, stride) in enumerate(zip(output_padding, strides)):
            if extra >= stride:
                raise ValueError(
                    f"`output_padding` must be smaller than `strides` on every axis; on axis {axis} it is {extra} "
                    f"with strides {stride} (output_padding={output_padding}, strides={strides})."
                )
    pairs = tuple(
        utils.conv_transpose_padding(k, s, d, padding, None if output_padding is None else output_padding[axis])
        for axis, (k, s, d) in enumerate(zip(kernel.shape[:rank], strides, dilation_rate))
    )
    # as a plain convolution: the kernel flipped on its spatial axes, its two channel axes swapped
    flipped = np.swapaxes(np.flip(kernel, axis=tuple(range(rank))), -1, -2)
    return x, flipped, rank, strides, pairs, dilation_rate, data_format


def conv_transpose(
    inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None, dilation_rate=1
) -> np.ndarray:
    """Transposed convolution with Keras 3's `keras.ops.conv_transpose` signature, for any rank >= 1.

    kernel: `kernel_size + (filters, input_channels)` (Keras's layout). The input is spread
    `strides` apart (input dilation) and convolved at stride 1 with the flipped kernel, padded as
    `utils.conv_transpose_padding`: the gradient of a strided convolution, as an op of its own.
    """
    x, flipped, _, strides, pairs, dilation_rate, data_format = _transpose_setup(
        inputs, kernel, strides, padding, output_padding, data_format, dilation_rate
    )
    y = conv_general(x, flipped, 1, pairs, strides, dilation_rate)
    return np.ascontiguousarray(_to_channels_first(y)) if data_format == "channels_first" else y


def conv_transpose_vjp(
    grad, inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None, dilation_rate=1,
    wanted=(True, True),
):  # fmt: skip
    """`(d_inputs, d_kernel)` of `conv_transpose` for the output gradient `grad`."""
    x, flipped, rank, strides, pairs, dilation_rate, data_format = _transpose_setup(
        inputs, kernel, strides, padding, output_padding, data_format, dilation_rate
    )
    grad = _as_float_array(grad, "grad")
    if data_format == "channels_first":
        grad = _to_channels_last(grad)
    d_x, d_flipped = conv_general_vjp(grad, x, flipped, 1, pairs, strides, dilation_rate, wanted)
    if d_x is not None and data_format == "channels_first":
        d_x = np.ascontiguousarray(_to_channels_first(d_x))
    d_kernel = None
    if d_flipped is not None:
        d_kernel = np.ascontiguousarray(np.flip(np.swapaxes(d_flipped, -1, -2), axis=tuple(range(rank))))
    return d_x, d_kernel


def _depthwise_kernel(inputs, kernel, strides, data_format, dilation_rate):
    """The depthwise kernel `kernel_size + (channels, multiplier)` as a grouped convolution's
    `kernel_size + (1, channels * multiplier)`: output channel `c * multiplier + j` reads input channel c."""
    x, kernel, rank, _, _, data_format = _family_front_end(
        inputs, kernel, strides, data_format, dilation_rate, "depthwise_conv"
    )
    if kernel.shape[-2] != x.shape[-1]:
        raise ValueError(
            "`kernel` of depthwise_conv has Keras's layout kernel_size + (input_channels, depth_multiplier): its "
            f"second-to-last axis must equal the input's {x.shape[-1]} channels; received kernel shape {kernel.shape}."
        )
    return kernel.reshape(*kernel.shape[:rank], 1, kernel.shape[-2] * kernel.shape[-1])


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1) -> np.ndarray:
    """Depthwise convolution with Keras 3's `keras.ops.depthwise_conv` signature, for any rank >= 1:
    every input channel convolved with its own `depth_multiplier` filters (the grouped convolution
    with one group per channel; kernel `kernel_size + (channels, depth_multiplier)`)."""
    grouped = _depthwise_kernel(inputs, kernel, strides, data_format, dilation_rate)
    return conv(inputs, grouped, strides, padding, data_format, dilation_rate)


def depthwise_conv_vjp(
    grad, inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1, wanted=(True, True)
):
    """`(d_inputs, d_kernel)` of `depthwise_conv` for the output gradient `grad`."""
    grouped = _depthwise_kernel(inputs, kernel, strides, data_format, dilation_rate)
    d_x, d_grouped = conv_vjp(grad, inputs, grouped, strides, padding, data_format, dilation_rate, wanted)
    return d_x, (None if d_grouped is None else d_grouped.reshape(np.shape(kernel)))
