"""TensorFlow's convolution calls on rankconv: `convolution` (`tf.nn.convolution`) and
`conv_transpose` (`tf.nn.conv_transpose`), with TensorFlow's arguments and semantics.

Both are thin front ends: they read TensorFlow's arguments (upper-case padding names, data
formats such as "NHWC", strides and dilations of length 1, N or N + 2), bring the arrays to
channels-last, and call `rankconv.ops.conv_general` (or `conv_general_vjp` for gradients). Both
are rankconv primitives, differentiable in `input` and `filters` inside `rankconv.value_and_grad`,
`rankconv.grad` or a `GradientTape`.

Data formats. For ranks 1-3, exactly TensorFlow's strings: "NWC"/"NCW" (and, for `convolution`
only, the deprecated 1-D aliases "NHWC"/"NCHW" that `tf.nn.conv1d` takes), "NHWC"/"NCHW",
"NDHWC"/"NCDHW". TensorFlow stops at three spatial axes; for N >= 4 rankconv accepts "N", then N
distinct upper-case spatial letters (any but "N" and "C"), then "C" (channels-last, e.g.
"NTDHWC") or "NC" followed by the N letters (channels-first, e.g. "NCTDHW"). `None` is
channels-last. The letters only name the axes; their order is the arrays' order.

Where rankconv is stricter than TensorFlow 2.21 (each a silent truncation or a silently ignored
value there): strides and dilations must be integers (TF truncates 2.5 and takes True as 1);
the batch and channel entries of an (N + 2)-long `strides` or `dilations` must be 1 (TF ignores
some of them on some paths); explicit padding must be zero on the batch and channel axes (TF's
dilated path ignores them); a "VALID" window larger than the input is an error.
Where it is more general: any number of spatial axes; explicit padding with or without dilation
(TF's `tf.nn.convolution` takes it only when a dilation is > 1, its `conv_transpose` only in 2-D);
grouped convolutions in every rank and layout; extra leading batch axes in every rank (TF has
them for 2-D and 3-D filters); float32 and float64 throughout (integer and float16 inputs are
computed and returned in float32).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from rankconv.ops.autodiff import primitive
from rankconv.ops.convolution import conv_general, conv_general_vjp

__all__ = ["conv_transpose", "convolution"]

_TF_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
_CONV1D_ALIASES = ("NHWC", "NCHW")  # tf.nn.conv1d's deprecated names for NWC / NCW
# every upper-case letter but N and C, ordered so that the last n make an example name ("TDHW" for 4)
_SPATIAL_LETTERS = "ABEFGIJKLMOPQRSUVXYZTDHW"


# ----------------------------------------------------------------------------- arguments


def _channels_first(data_format, n: int, op: str, aliases: bool = False) -> bool:
    """True for a channels-first `data_format` of an n-d convolution, False for channels-last."""
    if data_format is None:
        return False
    if n in _TF_FORMATS:
        accepted = _TF_FORMATS[n] + (_CONV1D_ALIASES if aliases and n == 1 else ())
        if data_format in accepted:
            return data_format.startswith("NC")
        names = " or ".join(repr(name) for name in accepted)
        raise ValueError(
            f"`data_format` of {op} with {n} spatial axis(es) must be {names} (or None for channels-last); "
            f"received data_format={data_format!r}."
        )
    if isinstance(data_format, str) and len(data_format) == n + 2 and data_format[0] == "N":
        if data_format[-1] == "C":
            letters, first = data_format[1:-1], False
        elif data_format[1] == "C":
            letters, first = data_format[2:], True
        else:
            letters, first = "", False
        if len(letters) == n and set(letters) <= set(_SPATIAL_LETTERS) and len(set(letters)) == n:
            return first
    raise ValueError(
        f"`data_format` of {op} with {n} spatial axes must be 'N' + {n} distinct upper-case spatial letters "
        f"(not 'N' or 'C') + 'C' (channels-last, e.g. {'N' + _SPATIAL_LETTERS[-n:] + 'C'!r}) or 'NC' + the "
        f"letters (channels-first), or None; received data_format={data_format!r}."
    )


def _integer(value, name: str, received) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must hold integers; received {name}={received!r}.")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not float(value).is_integer():
        raise ValueError(f"`{name}` must hold integers; received {name}={received!r}.")
    return int(value)


def _spatial_sequence(value, n: int, first: bool, name: str, op: str) -> tuple[int, ...]:
    """TensorFlow's reading of strides/dilations: None, an int, or a sequence of length 1, n or n + 2
    (the last with 1 at the batch and channel positions of the data format). Returns n values >= 1."""
    if value is None:
        return (1,) * n
    items = value.tolist() if isinstance(value, np.ndarray) else value
    if isinstance(items, (str, bytes)):
        raise ValueError(f"`{name}` of {op} must be an int or a sequence of ints; received {name}={value!r}.")
    if not isinstance(items, (list, tuple)):
        items = [items]
    values = [_integer(item, name, value) for item in items]
    if len(values) == 1:
        values = values * n
    elif len(values) == n + 2:
        outer = (values[0], values[1]) if first else (values[0], values[-1])
        if outer != (1, 1):
            where = "positions 0 and 1" if first else f"positions 0 and {n + 1}"
            raise ValueError(
                f"`{name}` of {op} given for all {n + 2} axes must be 1 on the batch and channel axes ({where} "
                f"for this data format); received {name}={value!r}."
            )
        values = values[2:] if first else values[1:-1]
    elif len(values) != n:
        raise ValueError(
            f"`{name}` of {op} must be an int or a sequence of length 1, {n} or {n + 2} for {n} spatial axis(es); "
            f"received {name}={value!r} of length {len(values)}."
        )
    if min(values) < 1:
        raise ValueError(f"`{name}` of {op} must be positive integers; received {name}={value!r}.")
    return tuple(values)


def _padding(padding, n: int, first: bool, op: str):
    """'SAME', 'VALID', or the n spatial (lo, hi) pairs of an explicit padding over all n + 2 axes."""
    if isinstance(padding, str):
        if padding in ("SAME", "VALID"):
            return padding
        hint = " (TensorFlow's names are upper-case)" if padding.upper() in ("SAME", "VALID") else ""
        raise ValueError(
            f"`padding` of {op} must be 'SAME', 'VALID' or a list of {n + 2} (before, after) pairs{hint}; "
            f"received padding={padding!r}."
        )
    expected = (
        f"`padding` of {op} must be 'SAME', 'VALID' or a list of {n + 2} (before, after) pairs of non-negative "
        f"integers, one per axis of the input in its data format's order"
    )
    items = padding.tolist() if isinstance(padding, np.ndarray) else padding
    if not isinstance(items, (list, tuple)) or len(items) != n + 2:
        raise ValueError(f"{expected}; received padding={padding!r}.")
    pairs = []
    for pair in items:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"{expected}; received padding={padding!r} with element {pair!r}.")
        pairs.append(tuple(_integer(amount, "padding", padding) for amount in pair))
    if min(min(pair) for pair in pairs) < 0:
        raise ValueError(f"{expected}; received padding={padding!r} with a negative amount.")
    outer = (pairs[0], pairs[1]) if first else (pairs[0], pairs[-1])
    if outer != ((0, 0), (0, 0)):
        raise ValueError(
            f"`padding` of {op} must be (0, 0) on the batch and channel axes; received padding={padding!r}."
        )
    return tuple(pairs[2:] if first else pairs[1:-1])


def _forward_pads(n: int, span: int, stride: int, padding, axis: int) -> tuple[int, int]:
    """(lo, hi) of a forward convolution over n cells along spatial `axis`; "SAME" is TensorFlow's
    rule (output ceil(n / stride), an odd total puts the extra zero after)."""
    if padding == "VALID":
        return 0, 0
    if padding == "SAME":
        total = max((math.ceil(n / stride) - 1) * stride + span - n, 0)
        return total // 2, total - total // 2
    return padding[axis]


def _forward_length(n: int, span: int, stride: int, pads: tuple[int, int], padding) -> int | None:
    """Output cells of a forward convolution over n cells, or None where the window does not fit
    ("SAME" always fits: ceil(n / stride) cells, none for an empty axis)."""
    if padding == "SAME":
        return math.ceil(n / stride)
    padded = n + pads[0] + pads[1]
    if padded < span:
        return None
    return (padded - span) // stride + 1


def _operands(input, filters, op: str) -> tuple[np.ndarray, np.ndarray]:
    """Both operands as arrays of one floating dtype. Arrays keep theirs (below 32 bits: float32);
    lists and integers take the other operand's; two different floating dtypes are refused, as in TF."""
    arrays = []
    for value, name in ((input, "input"), (filters, "filters")):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"`{name}` of {op} must be numeric; received an array of dtype {array.dtype}.")
        arrays.append(array)
    typed = [
        a.dtype
        for a, v in zip(arrays, (input, filters))
        if isinstance(v, (np.ndarray, np.generic)) and a.dtype.kind == "f"
    ]
    if len(typed) == 2 and typed[0] != typed[1]:
        raise ValueError(
            f"`input` and `filters` of {op} must have the same dtype (TensorFlow does not mix them); received "
            f"input of dtype {typed[0]} and filters of dtype {typed[1]}."
        )
    dtype = typed[0] if typed else np.dtype(np.float32)
    if dtype.itemsize < 4:
        dtype = np.dtype(np.float32)
    return arrays[0].astype(dtype, copy=False), arrays[1].astype(dtype, copy=False)


def _to_last(x: np.ndarray, first: bool) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if first else x


def _from_last(y: np.ndarray, first: bool) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(y, -1, 1)) if first else y


# ----------------------------------------------------------------------------- convolution


class _ConvCall:
    """A checked `convolution` call: channels-last flattened input, filters, and conv_general's arguments."""

    def __init__(self, input, filters, strides, padding, data_format, dilations):
        op = "rankconv.nn.convolution"
        x, w = _operands(input, filters, op)
        if w.ndim < 3:
            raise ValueError(
                f"`filters` of {op} must have shape spatial + (in_channels // groups, out_channels) with at least one "
                f"spatial axis; received filters of shape {w.shape}."
            )
        n = w.ndim - 2
        if x.ndim < n + 2:
            raise ValueError(
                f"`input` of {op} must have at least {n + 2} axes (batch, {n} spatial, channels) for filters of shape "
                f"{w.shape}; received input of shape {x.shape}."
            )
        if 0 in w.shape:
            raise ValueError(f"`filters` of {op} must not have an axis of size 0; received filters of shape {w.shape}.")
        first = _channels_first(data_format, n, op, aliases=True)
        self.first, self.input_shape = first, x.shape
        # leading axes beyond (batch, spatial..., channels) are batch axes too, as in TF's conv2d/conv3d
        self.batch_shape = x.shape[: x.ndim - n - 1]
        x = _to_last(x.reshape((math.prod(self.batch_shape), *x.shape[x.ndim - n - 1 :])), first)
        strides = _spatial_sequence(strides, n, first, "strides", op)
        dilations = _spatial_sequence(dilations, n, first, "dilations", op)
        if max(strides) > 1 and max(dilations) > 1:
            raise ValueError(
                f"{op} does not combine `strides` > 1 with `dilations` > 1 (as tf.nn.convolution); expected one of "
                f"them to be 1 on every axis, received strides={strides} and dilations={dilations}."
            )
        pads = _padding(padding, n, first, op)
        channels, per_group, out_channels = x.shape[-1], w.shape[-2], w.shape[-1]
        if channels == 0 or channels % per_group:
            raise ValueError(
                f"The input's channels of {op} must be a positive multiple of filters.shape[-2] (the channels per "
                f"group); received input of shape {self.input_shape} with {channels} channels and filters of shape "
                f"{w.shape}."
            )
        groups = channels // per_group
        if out_channels % groups:
            raise ValueError(
                f"filters.shape[-1] (the output channels) of {op} must be divisible by the {groups} groups that the "
                f"input's {channels} channels and filters.shape[-2] = {per_group} give; received filters of shape "
                f"{w.shape}."
            )
        spans = [(k - 1) * d + 1 for k, d in zip(w.shape[:-2], dilations)]
        self.pairs, out = [], []
        for axis, (size, span, stride) in enumerate(zip(x.shape[1:-1], spans, strides)):
            pair = _forward_pads(size, span, stride, pads, axis)
            length = _forward_length(size, span, stride, pair, pads)
            if length is None:
                raise ValueError(
                    f"The filters of {op} do not fit spatial axis {axis} of the input: they span {span} cells "
                    f"(kernel size {w.shape[axis]}, dilation {dilations[axis]}) but the input has {size} cells and "
                    f"padding adds {pair}; received input of shape {self.input_shape}, filters of shape {w.shape} and "
                    f"padding={padding!r}. Use 'SAME' padding or a larger input."
                )
            self.pairs.append(pair)
            out.append(length)
        self.x, self.w, self.strides, self.dilations = x, w, strides, dilations
        self.output_last = (x.shape[0], *out, out_channels)

    @property
    def empty(self) -> bool:
        return self.x.size == 0 or 0 in self.output_last

    def output(self, y_last: np.ndarray) -> np.ndarray:
        y = _from_last(y_last, self.first)
        return y.reshape((*self.batch_shape, *y.shape[1:]))

    def input_gradient(self, d_last: np.ndarray) -> np.ndarray:
        return _from_last(d_last, self.first).reshape(self.input_shape)

    def gradient_last(self, g) -> np.ndarray:
        g = np.asarray(g, dtype=self.x.dtype)
        g = g.reshape((math.prod(self.batch_shape), *g.shape[len(self.batch_shape) :]))
        return _to_last(g, self.first)


def _convolution(input, filters, strides=None, padding="VALID", data_format=None, dilations=None, name=None):
    call = _ConvCall(input, filters, strides, padding, data_format, dilations)
    if call.empty:
        return call.output(np.zeros(call.output_last, call.x.dtype))
    y = conv_general(call.x, call.w, call.strides, call.pairs, 1, call.dilations)
    return call.output(y)


def _convolution_vjp(
    g, result, input, filters, strides=None, padding="VALID", data_format=None, dilations=None, name=None,
    wanted=(True, True),
):  # fmt: skip
    call = _ConvCall(input, filters, strides, padding, data_format, dilations)
    if call.empty:
        return np.zeros(call.input_shape, call.x.dtype), np.zeros_like(call.w)
    g = call.gradient_last(g)
    d_x, d_w = conv_general_vjp(g, call.x, call.w, call.strides, call.pairs, 1, call.dilations, wanted[:2])
    return (None if d_x is None else call.input_gradient(d_x)), d_w


convolution = primitive(_convolution, _convolution_vjp, differentiable=(0, 1), pass_wanted=True)
convolution.__doc__ = """N-d convolution with `tf.nn.convolution`'s signature and semantics, for any rank >= 1.

input: `(batch, *spatial, channels)` for a channels-last `data_format` (the default) or
`(batch, channels, *spatial)` for a channels-first one; extra leading axes are batch axes.
filters: `spatial + (in_channels // groups, out_channels)`; the number of spatial axes N is
`filters.ndim - 2`, and groups are `in_channels // filters.shape[-2]`.
strides, dilations: None, an int, or a sequence of length 1, N or N + 2 (then 1 at the batch
and channel positions). `strides` > 1 and `dilations` > 1 may not be combined (as in TF).
padding: "VALID", "SAME" (output `ceil(n / stride)`, an odd total pad puts the extra zero
after), or explicit `(before, after)` pairs of non-negative ints for all N + 2 axes in the data
format's order, `(0, 0)` on the batch and channel axes. `name` is accepted and ignored.
Data formats: see `rankconv.nn`. Returns the output in the input's layout and float dtype;
differentiable in `input` and `filters`.
"""


# ----------------------------------------------------------------------------- conv_transpose


def _output_shape(output_shape, op: str) -> tuple[int, ...]:
    items = output_shape.tolist() if isinstance(output_shape, np.ndarray) else output_shape
    if isinstance(items, (list, tuple)) and all(
        isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in items
    ):
        shape = tuple(int(v) for v in items)
        if len(shape) >= 3 and min(shape) >= 0:
            return shape
    raise ValueError(
        f"`output_shape` of {op} must be the full output shape (batch, spatial..., channels in the data format's "
        f"order): a sequence of at least 3 non-negative integers; received output_shape={output_shape!r}."
    )


def _transposed_kernel(w: np.ndarray, groups: int) -> np.ndarray:
    """filters `spatial + (out_channels // groups, in_channels)` as the kernel of the plain convolution that
    computes the transposed one: flipped, and within each group the two channel axes swapped."""
    n = w.ndim - 2
    flipped = np.flip(w, axis=tuple(range(n)))
    per_group_out, channels = w.shape[-2], w.shape[-1]
    split = flipped.reshape(*w.shape[:n], per_group_out, groups, channels // groups)
    return np.ascontiguousarray(np.swapaxes(split, -1, -3)).reshape(*w.shape[:n], channels // groups, -1)


def _filters_gradient(d_kernel: np.ndarray, filters_shape, groups: int) -> np.ndarray:
    """The inverse of `_transposed_kernel`, applied to a gradient."""
    n = len(filters_shape) - 2
    per_group_out, channels = filters_shape[-2], filters_shape[-1]
    split = d_kernel.reshape(*filters_shape[:n], channels // groups, groups, per_group_out)
    swapped = np.swapaxes(split, -1, -3).reshape(filters_shape)
    return np.ascontiguousarray(np.flip(swapped, axis=tuple(range(n))))


class _TransposeCall:
    """A checked `conv_transpose` call, as conv_general's arguments on channels-last arrays."""

    def __init__(self, input, filters, output_shape, strides, padding, data_format, dilations):
        op = "rankconv.nn.conv_transpose"
        shape = _output_shape(output_shape, op)
        n = len(shape) - 2
        x, w = _operands(input, filters, op)
        if x.ndim != n + 2 or w.ndim != n + 2:
            raise ValueError(
                f"`input` and `filters` of {op} must have {n + 2} axes, as `output_shape` {shape} has; received input "
                f"of shape {x.shape} and filters of shape {w.shape}."
            )
        if 0 in w.shape:
            raise ValueError(f"`filters` of {op} must not have an axis of size 0; received filters of shape {w.shape}.")
        first = _channels_first(data_format, n, op)
        strides = _spatial_sequence(strides, n, first, "strides", op)
        dilations = _spatial_sequence(dilations, n, first, "dilations", op)
        pads = _padding(padding, n, first, op)
        self.first, self.input_shape = first, x.shape
        x = _to_last(x, first)
        out_last = (shape[0], *shape[2:], shape[1]) if first else shape
        channels = x.shape[-1]
        if w.shape[-1] != channels:
            raise ValueError(
                f"filters.shape[-1] of {op} must equal the input's {channels} channels (filters are spatial + "
                f"(output_channels, in_channels)); received input of shape {self.input_shape} and filters of shape "
                f"{w.shape}."
            )
        if out_last[0] != x.shape[0]:
            raise ValueError(
                f"The batch size in `output_shape` of {op} must equal the input's, {x.shape[0]}; received "
                f"output_shape={shape} for input of shape {self.input_shape}."
            )
        out_channels, per_group = out_last[-1], w.shape[-2]
        if out_channels == 0 or out_channels % per_group or channels % (out_channels // per_group):
            raise ValueError(
                f"The output channels in `output_shape` of {op} must be a positive multiple of filters.shape[-2] = "
                f"{per_group} whose quotient (the groups) divides the input's {channels} channels; received "
                f"output_shape={shape} and filters of shape {w.shape}."
            )
        self.groups = out_channels // per_group
        spans = [(k - 1) * d + 1 for k, d in zip(w.shape[:-2], dilations)]
        self.pairs, self.window, self.cropped = [], [], False
        for axis, (size, n_in, span, stride) in enumerate(zip(out_last[1:-1], x.shape[1:-1], spans, strides)):
            pair = _forward_pads(size, span, stride, pads, axis)
            if _forward_length(size, span, stride, pair, pads) != n_in:
                if pads == "SAME":
                    low, high = (n_in - 1) * stride + 1, n_in * stride
                else:
                    low = (n_in - 1) * stride + span - pair[0] - pair[1]
                    high = low + stride - 1
                low = max(low, 0)
                accepted = f"{low}" if low == high else f"{low} to {high}"
                if high < low:
                    accepted = "larger than the padding allows (no size fits)"
                raise ValueError(
                    f"`output_shape` of {op} does not fit the input along spatial axis {axis}: a forward convolution "
                    f"of the output with these strides, dilations and padding must give the input's {n_in} cells, "
                    f"so that axis must be {accepted}; received output_shape={shape} for input of shape "
                    f"{self.input_shape}, filters of shape {w.shape}, strides={strides}, padding={padding!r}."
                )
            # zeros around the stride-dilated input; a negative amount (an explicit pad larger than
            # the kernel's reach) would crop, so it is computed unpadded and cut from the output
            lo, hi = span - 1 - pair[0], size - (n_in - 1) * stride - 1 + pair[0]
            self.pairs.append((max(lo, 0), max(hi, 0)))
            self.window.append(slice(max(-lo, 0), max(-lo, 0) + size))
            self.cropped = self.cropped or min(lo, hi) < 0
        self.x, self.w, self.strides, self.dilations = x, w, strides, dilations
        self.output_last = out_last

    @property
    def empty(self) -> bool:
        return self.x.size == 0 or 0 in self.output_last

    def output(self, y_last: np.ndarray) -> np.ndarray:
        if self.cropped:
            y_last = np.ascontiguousarray(y_last[(slice(None), *self.window)])
        return _from_last(y_last, self.first)

    def gradient_last(self, g) -> np.ndarray:
        g = _to_last(np.asarray(g, dtype=self.x.dtype), self.first)
        if not self.cropped:
            return g
        spatial = [
            (n - 1) * s + 1 + lo + hi - (k - 1) * d
            for n, s, (lo, hi), k, d in zip(self.x.shape[1:-1], self.strides, self.pairs, self.w.shape, self.dilations)
        ]
        full = np.zeros((g.shape[0], *spatial, g.shape[-1]), g.dtype)
        full[(slice(None), *self.window)] = g
        return full


def _conv_transpose(
    input, filters, output_shape, strides, padding="SAME", data_format=None, dilations=None, name=None
):  # fmt: skip
    call = _TransposeCall(input, filters, output_shape, strides, padding, data_format, dilations)
    if call.empty:
        return call.output(np.zeros(call.output_last, call.x.dtype))
    kernel = _transposed_kernel(call.w, call.groups)
    return call.output(conv_general(call.x, kernel, 1, call.pairs, call.strides, call.dilations))


def _conv_transpose_vjp(
    g, result, input, filters, output_shape, strides, padding="SAME", data_format=None, dilations=None, name=None,
    wanted=(True, True),
):  # fmt: skip
    call = _TransposeCall(input, filters, output_shape, strides, padding, data_format, dilations)
    if call.empty:
        return np.zeros(call.input_shape, call.x.dtype), np.zeros_like(call.w)
    g = call.gradient_last(g)
    kernel = _transposed_kernel(call.w, call.groups)
    d_x, d_kernel = conv_general_vjp(g, call.x, kernel, 1, call.pairs, call.strides, call.dilations, wanted[:2])
    d_x = None if d_x is None else _from_last(d_x, call.first)
    d_w = None if d_kernel is None else _filters_gradient(d_kernel, call.w.shape, call.groups)
    return d_x, d_w


conv_transpose = primitive(_conv_transpose, _conv_transpose_vjp, differentiable=(0, 1), pass_wanted=True)
conv_transpose.__doc__ = """Transposed convolution with `tf.nn.conv_transpose`'s signature and semantics, any rank >= 1.

The gradient of `convolution` with respect to its input: a forward convolution of an array of
`output_shape` with these `filters`, strides, padding and dilations gives an array of `input`'s
shape, and this maps back. input: `(batch, *spatial, in_channels)` (or channels-first, per
`data_format`); filters: `spatial + (output_channels // groups, in_channels)`; output_shape: the
full output shape `(batch, *spatial, output_channels)` in the data format's order, the number of
spatial axes being `len(output_shape) - 2`. Every output size whose forward convolution gives
the input's size is accepted (with strides s, s choices per axis). strides (required, None for
ones), dilations, padding ("SAME", "VALID" or explicit pairs for all axes) and data formats as in
`convolution`; unlike it, strides and dilations may both exceed 1. Computed as `conv_general`
of the stride-dilated input with the flipped filters. Differentiable in `input` and `filters`.
"""
