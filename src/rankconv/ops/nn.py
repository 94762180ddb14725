"""Neural-network ops under Keras 3's names: activations, softmax, convolution and pooling, each
with its VJP beside it."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from rankconv import utils
from rankconv.ops import conv_common as common
from rankconv.ops import convolution, jit, kernels, rank3
from rankconv.ops.autodiff import primitive


def _float(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"Expected a numeric array; received dtype {x.dtype}.")
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def _elementwise(forward, derivative):
    """An activation from its forward function and its derivative f'(x, f(x))."""
    # options may come positionally, as in Keras's signatures (`leaky_relu(x, 0.1)`)
    return primitive(
        lambda x, *options, **kw: forward(_float(x), *options, **kw),
        lambda g, r, x, *options, **kw: (g * derivative(x, r, *options, **kw), *([None] * len(options))),
        differentiable=(0,),
    )


def _relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    # Keras's rule: keep x above `threshold` (zero below), clip to [0, max_value] if given, then
    # subtract negative_slope * relu(threshold - x).
    y = x * (x > threshold) if threshold != 0 else np.maximum(x, 0)
    if max_value is not None:
        y = np.clip(y, 0, max_value)
    if negative_slope:
        y = y - negative_slope * np.maximum(threshold - x, 0)
    return y.astype(x.dtype)


def _relu_derivative(x, r, negative_slope=0.0, max_value=None, threshold=0.0):
    kept = x > threshold if threshold != 0 else x > 0
    if max_value is not None:
        kept = kept & (x < max_value) & (x > 0)
    d = kept.astype(r.dtype)
    if negative_slope:
        d = d + negative_slope * (x < threshold)
    return d.astype(r.dtype)


relu = _elementwise(_relu, _relu_derivative)
leaky_relu = _elementwise(
    lambda x, negative_slope=0.2: np.where(x > 0, x, negative_slope * x).astype(x.dtype),
    lambda x, r, negative_slope=0.2: np.where(x > 0, 1, negative_slope).astype(r.dtype),
)
relu6 = _elementwise(lambda x: np.clip(x, 0, 6).astype(x.dtype), lambda x, r: ((x > 0) & (x < 6)).astype(r.dtype))
elu = _elementwise(
    lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype),
    lambda x, r, alpha=1.0: np.where(x > 0, 1, r + alpha).astype(r.dtype),
)
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
selu = _elementwise(
    lambda x: (_SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0)))).astype(x.dtype),
    lambda x, r: np.where(x > 0, _SELU_SCALE, r + _SELU_SCALE * _SELU_ALPHA).astype(r.dtype),
)


def _sigmoid(x):
    e = np.exp(-np.abs(x))  # split by sign so exp never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


sigmoid = _elementwise(_sigmoid, lambda x, r: r * (1 - r))
tanh = _elementwise(np.tanh, lambda x, r: 1 - r * r)
softplus = _elementwise(
    lambda x: (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype), lambda x, r: _sigmoid(x)
)
softsign = _elementwise(lambda x: x / (1 + np.abs(x)), lambda x, r: (1 / np.square(1 + np.abs(x))).astype(r.dtype))
silu = _elementwise(lambda x: x * _sigmoid(x), lambda x, r: (_sigmoid(x) * (1 + x * (1 - _sigmoid(x)))).astype(r.dtype))
swish = silu


def _erf(x):
    # Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, below float32 resolution near 1).
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _gelu(x, approximate=True):
    if approximate:
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        return (0.5 * x * (1 + np.tanh(inner))).astype(x.dtype)
    return (0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype)


def _gelu_derivative(x, r, approximate=True):
    if approximate:
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        t = np.tanh(inner)
        return (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)).astype(r.dtype)
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return (0.5 * (1 + _erf(x / math.sqrt(2))) + x * pdf).astype(r.dtype)


gelu = _elementwise(_gelu, _gelu_derivative)
gelu.__doc__ = (
    "GELU. As `keras.ops.gelu`, the default is the tanh approximation; `approximate=False` is the exact "
    "erf form (the default of `keras.activations.gelu`, which `rankconv.activations.get('gelu')` follows)."
)


def _softmax(x, axis=-1):
    x = _float(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


softmax = primitive(_softmax, lambda g, r, x, axis=-1: (r * (g - np.sum(g * r, axis=axis, keepdims=True)),))


def _log_softmax(x, axis=-1):
    x = _float(x)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


log_softmax = primitive(_log_softmax, lambda g, r, x, axis=-1: (g - np.exp(r) * np.sum(g, axis=axis, keepdims=True),))


# ----------------------------------------------------------------------------- convolution


def _conv_vjp(g, r, inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1, wanted=(True, True)):
    return convolution.conv_vjp(g, inputs, kernel, strides, padding, data_format, dilation_rate, wanted[:2])


conv = primitive(convolution.conv, _conv_vjp, pass_wanted=True)
conv.__doc__ = convolution.conv.__doc__


def _conv_transpose_vjp(
    g, r, inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None, dilation_rate=1,
    wanted=(True, True),
):  # fmt: skip
    options = (strides, padding, output_padding, data_format, dilation_rate)
    return convolution.conv_transpose_vjp(g, inputs, kernel, *options, wanted=wanted[:2])


conv_transpose = primitive(convolution.conv_transpose, _conv_transpose_vjp, differentiable=(0, 1), pass_wanted=True)
conv_transpose.__doc__ = convolution.conv_transpose.__doc__


def _depthwise_conv_vjp(
    g, r, inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1, wanted=(True, True)
):
    options = (strides, padding, data_format, dilation_rate)
    return convolution.depthwise_conv_vjp(g, inputs, kernel, *options, wanted=wanted[:2])


depthwise_conv = primitive(convolution.depthwise_conv, _depthwise_conv_vjp, differentiable=(0, 1), pass_wanted=True)
depthwise_conv.__doc__ = convolution.depthwise_conv.__doc__


def separable_conv(
    inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid", data_format=None, dilation_rate=1
):
    """Keras 3's `keras.ops.separable_conv`, any rank: `depthwise_conv` (with the strides, padding
    and dilations), then a 1×…×1 `conv` with `pointwise_kernel` (`(1,) * rank + (channels *
    depth_multiplier, filters)`)."""
    spread = depthwise_conv(inputs, depthwise_kernel, strides, padding, data_format, dilation_rate)
    return conv(spread, pointwise_kernel, 1, "valid", data_format)


# Activations whose derivative follows from their output alone, so that a fused convolution can
# apply them in place: name -> (in-place forward on y, derivative from the output r).
def _sigmoid_in_place(y):
    y[...] = _sigmoid(y)


_EPILOGUES = {
    "linear": (None, None),
    "relu": (lambda y: np.maximum(y, 0, out=y), lambda r: r > 0),
    "relu6": (lambda y: np.clip(y, 0, 6, out=y), lambda r: (r > 0) & (r < 6)),
    "tanh": (lambda y: np.tanh(y, out=y), lambda r: 1 - r * r),
    "sigmoid": (_sigmoid_in_place, lambda r: r * (1 - r)),
}
FUSED_ACTIVATIONS = frozenset(_EPILOGUES)


_ACTIVATION_CODES = {"linear": 0, "relu": 1, "relu6": 2, "tanh": 3, "sigmoid": 4}  # kernels.epilogue_*
EPILOGUE_PARALLEL_ROWS = 4096  # fewer rows than this: one thread (handing work over costs more)


def _epilogue_rows(y, data_format):
    """A channels-last, contiguous float output as (rows, channels) for the compiled epilogue;
    None where NumPy does it (compiled kernels off, channels first, other dtypes)."""
    if not jit.enabled() or utils.normalize_data_format(data_format) == "channels_first" or y.ndim < 2:
        return None
    if y.dtype not in (np.float32, np.float64) or not y.flags.c_contiguous:
        return None
    return y.reshape(-1, y.shape[-1])


def _epilogue_parts(rows) -> int:
    return 1 if rows.shape[0] < EPILOGUE_PARALLEL_ROWS else common.THREADS


def _channel_axis(data_format, ndim):
    return 1 if utils.normalize_data_format(data_format) == "channels_first" else ndim - 1


def _fused_conv(
    inputs, kernel, bias=None, activation="linear", strides=1, padding="valid", data_format=None, dilation_rate=1
):
    if activation not in _EPILOGUES:
        raise ValueError(f"`activation` of fused_conv must be one of {sorted(_EPILOGUES)}; received {activation!r}.")
    y = convolution.conv(inputs, kernel, strides, padding, data_format, dilation_rate)
    if not y.flags.writeable:  # the epilogue writes in place; the convolution's output is fresh
        y = np.array(y)
    if bias is not None:
        bias = np.asarray(bias)
        if bias.shape != (y.shape[_channel_axis(data_format, y.ndim)],):
            raise ValueError(
                f"`bias` must have shape ({y.shape[_channel_axis(data_format, y.ndim)]},), one value per filter; "
                f"received shape {bias.shape}."
            )
    if bias is None and activation == "linear":
        return y
    rows = _epilogue_rows(y, data_format)
    if rows is not None:  # bias and activation in one compiled pass
        b = np.zeros(rows.shape[1], y.dtype) if bias is None else bias.astype(y.dtype, copy=False)
        rank3.run_rows(kernels.epilogue_forward, rows.shape[0], rows, b, _ACTIVATION_CODES[activation],
                       parts=_epilogue_parts(rows))  # fmt: skip
        return y
    if bias is not None:
        shape = [1] * y.ndim
        shape[_channel_axis(data_format, y.ndim)] = bias.size
        np.add(y, bias.reshape(shape).astype(y.dtype, copy=False), out=y)
    forward, _ = _EPILOGUES[activation]
    if forward is not None:
        forward(y)
    return y


def _fused_conv_vjp(
    g, r, inputs, kernel, bias=None, activation="linear", strides=1, padding="valid", data_format=None,
    dilation_rate=1, wanted=(True, True, True),
):  # fmt: skip
    d_bias = None
    rows = _epilogue_rows(r, data_format)
    if rows is not None and g.dtype == r.dtype and g.flags.c_contiguous:  # one compiled pass
        g_rows = g.reshape(rows.shape)
        out = common.empty(g_rows.shape, g_rows.dtype)
        parts = rank3.row_parts(rows.shape[0], _epilogue_parts(rows))
        sums = np.empty((len(parts), rows.shape[1]), np.float64)
        code = _ACTIVATION_CODES[activation]
        jit.prepare(kernels.epilogue_backward, g_rows, rows, out, sums[0], code, 0, 0)
        work = lambda i: kernels.epilogue_backward(g_rows, rows, out, sums[i], code, *parts[i])  # noqa: E731
        common.run_parallel(work, range(len(parts)))
        g = out.reshape(r.shape)
        if bias is not None and wanted[2]:
            d_bias = sums.sum(axis=0).astype(np.asarray(bias).dtype)
    else:
        _, derivative = _EPILOGUES[activation]
        if derivative is not None:
            g = g * derivative(r)
        if bias is not None and wanted[2]:
            # a matrix-vector product: NumPy's reduction over leading axes runs ~10x slower
            axis = _channel_axis(data_format, g.ndim)
            moved = np.moveaxis(g, axis, -1).reshape(-1, g.shape[axis])
            d_bias = (np.ones(moved.shape[0], moved.dtype) @ moved).astype(np.asarray(bias).dtype)
    d_inputs = d_kernel = None
    if wanted[0] or wanted[1]:
        options = (strides, padding, data_format, dilation_rate)
        d_inputs, d_kernel = convolution.conv_vjp(g, inputs, kernel, *options, wanted=wanted[:2])
    return d_inputs, d_kernel, d_bias


fused_conv = primitive(_fused_conv, _fused_conv_vjp, differentiable=(0, 1, 2), pass_wanted=True)
fused_conv.__doc__ = """`activation(conv(inputs, kernel, ...) + bias)` with the bias and activation applied in place on
the convolution's fresh output: one buffer, no intermediate arrays. What the Conv layers call.

`activation` is a name from `FUSED_ACTIVATIONS` (those whose derivative follows from the output:
linear, relu, relu6, sigmoid, tanh); `bias` is one value per filter or None. Other arguments as
`conv`. Differentiable in inputs, kernel and bias."""


# ----------------------------------------------------------------------------- pooling
# Pooling is rank-generic like convolution: a window of `pool_size` taps slides with `strides`
# over every spatial axis. For ranks 1 to 3, compiled kernels (`rankconv.ops.kernels`, numba) do
# it in one pass with the padding as index arithmetic; elsewhere, and with compiled kernels off,
# NumPy: for each tap, the inputs it reads form one strided view of the padded input, so forward
# and backward are loops over taps of whole-array operations.


def _compiled(rank: int, dtype) -> bool:
    return rank <= 3 and dtype in (np.float32, np.float64) and jit.enabled()


def _pool_kernel_arguments(xl, pool_size, strides, pairs):
    """The compiled kernels' view of a pooling call: rank-3 array, window and geometry arrays."""
    rank = len(pool_size)
    x3 = np.ascontiguousarray(rank3.as_rank3(xl, rank))
    pool = np.array((1,) * (3 - rank) + tuple(pool_size), dtype=np.int64)
    geometry = rank3.geometry(strides, (1,) * rank, [lo for lo, _ in pairs], (1,) * rank)
    return x3, pool, geometry


def _pool_compiled(kernel, xl, pool_size, strides, pairs, out, *extra):
    """A pooling kernel that fills its output row by row (`kernel(x3, y3, pool, geometry, *extra,
    r0, r1)`) on the worker threads; the output channels-last, of spatial shape `out`."""
    x3, pool, geometry = _pool_kernel_arguments(xl, pool_size, strides, pairs)
    y = common.empty(rank3.rank3_shape((xl.shape[0], *out, xl.shape[-1])), xl.dtype)
    rank3.run_rows(kernel, y.shape[0] * y.shape[1], x3, y, pool, geometry, *extra)
    return y.reshape(xl.shape[0], *out, xl.shape[-1])


def _axis_counts(spatial, pool_size, strides, pairs, out, dtype) -> list:
    """Per spatial axis: how many taps of the window at each output position land inside the
    input. A window's count of real cells is their product ("same" averages leave padding out)."""
    counts = []
    for n, k, s, (lo, _), o in zip(spatial, pool_size, strides, pairs, out):
        starts = np.arange(o) * s - lo
        counts.append((np.minimum(starts + k, n) - np.maximum(starts, 0)).astype(dtype))
    return counts


def _kernel_counts(spatial, pool_size, strides, pairs, out, dtype) -> list:
    """`_axis_counts` for the rank-3 kernels: unit axes first."""
    return [np.ones(1, dtype=dtype)] * (3 - len(spatial)) + _axis_counts(spatial, pool_size, strides, pairs, out, dtype)


def _pool_geometry(shape, pool_size, strides, padding, data_format):
    rank = len(shape) - 2
    pool_size = utils.normalize_tuple(pool_size, rank, "pool_size")
    strides = pool_size if strides is None else utils.normalize_tuple(strides, rank, "strides")
    padding = utils.normalize_padding(padding, rank=rank, allow_causal=False)
    data_format = utils.normalize_data_format(data_format)
    spatial = shape[1:-1] if data_format == "channels_last" else shape[2:]
    pairs = utils.padding_pairs(spatial, pool_size, strides, (1,) * rank, padding)
    out = tuple((n + lo + hi - k) // s + 1 for n, (lo, hi), k, s in zip(spatial, pairs, pool_size, strides))
    for axis, (n, o) in enumerate(zip(spatial, out)):
        if o <= 0:
            raise ValueError(
                f"The pooling window ({pool_size[axis]}) is larger than spatial axis {axis} of the input ({n}) "
                f"with padding='{padding}'; input shape {shape}."
            )
    return pool_size, strides, pairs, out, data_format


def _channels_last(x, data_format):
    return x if data_format == "channels_last" else np.moveaxis(x, 1, -1)


def _from_channels_last(y, data_format):
    return y if data_format == "channels_last" else np.ascontiguousarray(np.moveaxis(y, -1, 1))


def _tap_views(padded, pool_size, strides, out):
    for tap in itertools.product(*(range(k) for k in pool_size)):
        index = tuple(slice(t, t + (o - 1) * s + 1, s) for t, o, s in zip(tap, out, strides))
        yield (slice(None), *index, slice(None))


def _padded(x, pairs, fill):
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return x
    return np.pad(x, [(0, 0), *pairs, (0, 0)], constant_values=fill)


def _max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    x = _float(inputs)
    pool_size, strides, pairs, out, data_format = _pool_geometry(x.shape, pool_size, strides, padding, data_format)
    xl = _channels_last(x, data_format)
    if _compiled(len(out), x.dtype):
        y = _pool_compiled(kernels.max_pool_forward, xl, pool_size, strides, pairs, out)
        return _from_channels_last(y, data_format)
    padded = _padded(xl, pairs, -np.inf)
    views = _tap_views(padded, pool_size, strides, out)
    y = padded[next(views)].copy()
    for index in views:
        np.maximum(y, padded[index], out=y)
    return _from_channels_last(y, data_format)


def _max_pool_vjp(g, r, inputs, pool_size, strides=None, padding="valid", data_format=None):
    x = _float(inputs)
    pool_size, strides, pairs, out, data_format = _pool_geometry(x.shape, pool_size, strides, padding, data_format)
    xl = _channels_last(x, data_format)
    g, r = _channels_last(g, data_format), _channels_last(r, data_format)
    if _compiled(len(out), x.dtype):
        x3, pool, geometry = _pool_kernel_arguments(xl, pool_size, strides, pairs)
        g3 = np.ascontiguousarray(rank3.as_rank3(g, len(out)), dtype=x3.dtype)
        if tuple(strides) == tuple(pool_size):  # windows tile the input: each cell written once
            r3 = np.ascontiguousarray(rank3.as_rank3(r, len(out)), dtype=x3.dtype)
            # the windows' union, [-lo, (o - 1) * s - lo + s), reaches every cell?
            covered = all((o - 1) * s - lo + s >= n for (lo, _), o, s, n in zip(pairs, out, strides, xl.shape[1:-1]))
            dx = (common.empty if covered else common.zeros)(x3.shape, x3.dtype)
            rank3.run_rows(kernels.max_pool_backward_tiled, g3.shape[0] * g3.shape[1], x3, r3, g3, dx, pool, geometry)
        else:  # windows overlap, so the kernel scatters: whole samples per thread
            dx = common.zeros(x3.shape, x3.dtype)
            rank3.run_rows(kernels.max_pool_backward, x3.shape[0], x3, g3, dx, pool, geometry)
        return (_from_channels_last(dx.reshape(xl.shape), data_format),)
    padded = _padded(xl, pairs, -np.inf)
    dx = np.zeros(padded.shape, dtype=g.dtype)
    unclaimed = np.ones(r.shape, dtype=bool)  # the first maximum in each window takes the gradient
    for index in _tap_views(padded, pool_size, strides, out):
        hit = unclaimed & (padded[index] == r)
        dx[index] += np.where(hit, g, 0)
        unclaimed &= ~hit
    dx = dx[(slice(None), *(slice(lo, n - hi) for (lo, hi), n in zip(pairs, dx.shape[1:-1])), slice(None))]
    return (_from_channels_last(dx, data_format),)


max_pool = primitive(_max_pool, _max_pool_vjp, differentiable=(0,))


def _average_counts(shape, pool_size, strides, pairs, out, dtype):
    """How many real (unpadded) cells each window covers, as (1, *out, 1)."""
    counts = _axis_counts(shape[1:-1], pool_size, strides, pairs, out, dtype)
    return functools.reduce(np.multiply.outer, counts).reshape(1, *out, 1)


def _average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    x = _float(inputs)
    pool_size, strides, pairs, out, data_format = _pool_geometry(x.shape, pool_size, strides, padding, data_format)
    xl = _channels_last(x, data_format)
    if _compiled(len(out), x.dtype):
        counts = _kernel_counts(xl.shape[1:-1], pool_size, strides, pairs, out, x.dtype)
        y = _pool_compiled(kernels.average_pool_forward, xl, pool_size, strides, pairs, out, *counts)
        return _from_channels_last(y, data_format)
    padded = _padded(xl, pairs, 0)
    y = common.zeros((x.shape[0], *out, xl.shape[-1]), x.dtype)
    for index in _tap_views(padded, pool_size, strides, out):
        y += padded[index]
    y /= _average_counts(xl.shape, pool_size, strides, pairs, out, x.dtype)
    return _from_channels_last(y, data_format)


def _average_pool_vjp(g, r, inputs, pool_size, strides=None, padding="valid", data_format=None):
    x = _float(inputs)
    pool_size, strides, pairs, out, data_format = _pool_geometry(x.shape, pool_size, strides, padding, data_format)
    xl_shape = _channels_last(x, data_format).shape
    if _compiled(len(out), x.dtype):
        counts = _kernel_counts(xl_shape[1:-1], pool_size, strides, pairs, out, x.dtype)
        gl = _channels_last(np.asarray(g, dtype=x.dtype), data_format)
        g3, pool, geometry = _pool_kernel_arguments(gl, pool_size, strides, pairs)
        dx = common.empty(rank3.rank3_shape(xl_shape), x.dtype)
        rank3.run_rows(kernels.average_pool_backward, dx.shape[0] * dx.shape[1], g3, dx, pool, geometry, *counts)
        return (_from_channels_last(dx.reshape(xl_shape), data_format),)
    g = _channels_last(g, data_format) / _average_counts(xl_shape, pool_size, strides, pairs, out, g.dtype)
    padded_shape = (xl_shape[0], *(n + lo + hi for n, (lo, hi) in zip(xl_shape[1:-1], pairs)), xl_shape[-1])
    dx = np.zeros(padded_shape, dtype=g.dtype)
    for index in _tap_views(dx, pool_size, strides, out):
        dx[index] += g
    dx = dx[(slice(None), *(slice(lo, n - hi) for (lo, hi), n in zip(pairs, dx.shape[1:-1])), slice(None))]
    return (_from_channels_last(dx, data_format),)


average_pool = primitive(_average_pool, _average_pool_vjp, differentiable=(0,))
