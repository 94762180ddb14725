"""ONNX export: `model.export("m.onnx", format="onnx")` and `rankconv export MODEL.keras OUT.onnx`.

The inference graph of a rankconv model (what `predict` computes), written with the `onnx`
package's helpers (the `export` extra) at opset 17 by default, checked by `onnx.checker`. The
batch axis is dynamic (`batch`), and so is every axis the model leaves unknown (a text model's
length). The model's `metadata` (a text model's vocabulary, cleaning and class names) goes into
the file's `metadata_props` under `rankconv.metadata`, so a serving process can tokenize as
`rankconv text predict` does.

Layouts. ONNX's Conv, ConvTranspose and pooling take `(batch, channels, *spatial)`. A
channels-last tensor is transposed once when a layer needs that layout, and a layer's result stays
channels-first for as long as the next layers can use it (activations, pooling, batch
normalization over channels, padding, cropping, upsampling and further convolutions), so a
Conv → BatchNorm → ReLU → Pool chain has a transpose only at its ends. Weights are converted as
PyTorch's layouts (`(out, in / groups, *kernel)`; transposed: `(in, out, *kernel)`).

What is not exported (each refused with an error naming the layer and the reason): layers whose
inference is a resampling with no exact ONNX Resize equivalent (`Resizing` with `antialias` or
aspect-ratio cropping or padding, or "bicubic"; `RandomCrop`, whose inference crops to the
target's aspect ratio and resizes; `CenterCrop` of an input smaller than its window or of unknown
size), activations given as Python callables rather than by name, and masks reaching layers
other than `GlobalAveragePooling1D` and `Softmax` (the only rankconv layers that use one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

from rankconv import activations
from rankconv.saving.archive import atomic_write

DEFAULT_OPSET = 17
MIN_OPSET = 17
FORMATS = ("onnx",)
METADATA_KEY = "rankconv.metadata"
_INT64_MAX = np.iinfo(np.int64).max


def _require_onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as error:
        raise ImportError(
            f"ONNX export needs the `onnx` package ({error}). Install it with: pip install 'rankconv[export]'"
        ) from error
    return onnx


# ----------------------------------------------------------------------------- graph building


class _Value:
    """A tensor of the rankconv model in the ONNX graph.

    `shape` is rankconv's (the layout the model computes in; None for unknown sizes). `name` holds
    the tensor in that layout; `moved` holds a channels-last tensor transposed to
    `(batch, channels, *spatial)`. Either may be missing until someone asks for it."""

    __slots__ = ("shape", "dtype", "name", "moved")

    def __init__(self, shape, dtype, name=None, moved=None):
        self.shape, self.dtype, self.name, self.moved = tuple(shape), dtype, name, moved

    @property
    def rank(self) -> int:
        return len(self.shape)


def _to_first(rank):
    """Permutation taking a channels-last tensor of `rank` axes to channels-first."""
    return [0, rank - 1, *range(1, rank - 1)]


def _to_last(rank):
    return [0, *range(2, rank), 1]


class _Graph:
    def __init__(self, onnx, opset):
        self.onnx, self.opset = onnx, opset
        self.nodes, self.initializers = [], []
        self._taken: set[str] = set()

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self._taken:
            name, i = f"{base}_{i}", i + 1
        self._taken.add(name)
        return name

    def constant(self, array, base: str) -> str:
        name = self.fresh(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, values, base: str) -> str:
        return self.constant(np.asarray(values, dtype=np.int64), base)

    def scalar(self, value, dtype, base: str) -> str:
        return self.constant(np.asarray(value, dtype=dtype), base)

    def op(self, op_type: str, inputs, base: str, **attributes) -> str:
        output = self.fresh(f"{base}/{op_type}")
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return output

    def reduce(self, op_type: str, x: str, axes, base: str, keepdims: bool) -> str:
        """Reduce* over `axes`: an attribute up to opset 17, an input from opset 18 on (ReduceSum's
        from opset 13)."""
        axes = [int(a) for a in axes]
        if self.opset >= 18 or op_type == "ReduceSum":
            return self.op(op_type, [x, self.ints(axes, f"{base}/axes")], base, keepdims=int(keepdims))
        return self.op(op_type, [x], base, axes=axes, keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes, base: str) -> str:
        return self.op("Unsqueeze", [x, self.ints(list(axes), f"{base}/axes")], base)

    # -- layouts --------------------------------------------------------------------------

    def logical(self, value: _Value) -> str:
        """The tensor in rankconv's layout."""
        if value.name is None:
            value.name = self.op("Transpose", [value.moved], "to_channels_last", perm=_to_last(value.rank))
        return value.name

    def channels_first(self, value: _Value, data_format: str) -> str:
        """The tensor as `(batch, channels, *spatial)`, for a layer of `data_format`."""
        if data_format == "channels_first" or value.rank < 3:
            return self.logical(value)
        if value.moved is None:
            value.moved = self.op("Transpose", [value.name], "to_channels_first", perm=_to_first(value.rank))
        return value.moved

    @staticmethod
    def from_channels_first(name: str, shape, dtype, data_format: str) -> _Value:
        if data_format == "channels_first" or len(shape) < 3:
            return _Value(shape, dtype, name=name)
        return _Value(shape, dtype, moved=name)

    @staticmethod
    def form(value: _Value):
        """(tensor, axes) of the form an elementwise op should use: the channels-first copy when
        there is one (the next layer is likelier a convolution or pooling), else rankconv's layout.
        `axes[j]` is the rankconv axis that the form's axis j holds."""
        if value.moved is not None:
            return value.moved, _to_first(value.rank)
        return value.name, list(range(value.rank))

    def map(self, value: _Value, function) -> _Value:
        """An elementwise op (`function(tensor, axes) -> tensor`) on whichever form exists."""
        tensor, axes = self.form(value)
        result = function(tensor, axes)
        if value.moved is not None:
            return _Value(value.shape, value.dtype, moved=result)
        return _Value(value.shape, value.dtype, name=result)


# ----------------------------------------------------------------------------- activations


def _refuse(layer, reason: str):
    raise ValueError(f"Layer '{layer.name}' ({type(layer).__name__}) cannot be exported to ONNX: {reason}")


def _activation(g: _Graph, x: str, name: str, channel_axis: int, base: str, dtype) -> str:
    """`name` (a Keras activation) applied to tensor `x`; softmax normalises `channel_axis`."""
    if name == "relu":
        return g.op("Relu", [x], base)
    if name == "leaky_relu":
        return g.op("LeakyRelu", [x], base, alpha=0.2)
    if name == "relu6":
        return g.op("Clip", [x, g.scalar(0, dtype, f"{base}/zero"), g.scalar(6, dtype, f"{base}/six")], base)
    if name == "elu":
        return g.op("Elu", [x], base, alpha=1.0)
    if name == "selu":
        return g.op("Selu", [x], base, alpha=1.6732632423543772, gamma=1.0507009873554805)
    if name in ("sigmoid", "tanh", "softplus", "softsign"):
        return g.op(name.capitalize(), [x], base)
    if name in ("silu", "swish"):
        return g.op("Mul", [x, g.op("Sigmoid", [x], base)], base)
    if name == "gelu":  # Keras's activation: the exact erf form
        inner = g.op("Erf", [g.op("Mul", [x, g.scalar(1 / math.sqrt(2), dtype, f"{base}/rsqrt2")], base)], base)
        half_x = g.op("Mul", [x, g.scalar(0.5, dtype, f"{base}/half")], base)
        return g.op("Mul", [half_x, g.op("Add", [inner, g.scalar(1, dtype, f"{base}/one")], base)], base)
    if name == "softmax":
        return g.op("Softmax", [x], base, axis=channel_axis)
    raise ValueError(f"activation {name!r} has no ONNX form here")


def _activate(g: _Graph, layer, value: _Value, activation) -> _Value:
    name = activations.name_of(activation)
    if name is None:
        _refuse(layer, f"its activation {activation!r} is a Python callable; ONNX needs a named Keras activation.")
    if name == "linear":
        return value
    # the softmax activation normalises rankconv's last axis: axis 1 of the moved (channels-first) form
    return g.map(value, lambda x, axes: _activation(g, x, name, axes.index(value.rank - 1), layer.name, value.dtype))


# ----------------------------------------------------------------------------- layers


def _spatial_of(shape, data_format):
    return tuple(shape[1:-1]) if data_format == "channels_last" else tuple(shape[2:])


def _window_pads(spatial, kernel_size, strides, dilations, padding):
    """ONNX `pads` (all begins, then all ends), or None where "same" depends on an unknown length
    (strides > 1): then `auto_pad="SAME_UPPER"`, TensorFlow's rule, exact since a Keras layer with
    strides > 1 has no dilation."""
    from rankconv import utils

    if padding == "same" and any(n is None for n in spatial) and max(strides) > 1:
        return None
    known = [1 if n is None else n for n in spatial]  # "valid", "causal" and stride-1 "same" ignore the length
    pairs = utils.padding_pairs(known, kernel_size, strides, dilations, padding)
    return [lo for lo, _ in pairs] + [hi for _, hi in pairs]


def _pad_attributes(pads):
    return {"auto_pad": "SAME_UPPER"} if pads is None else {"pads": pads}


def _keras_to_torch_kernel(kernel, rank):
    """(k…, in, out) → (out, in, k…): Keras's kernel in ONNX's (and PyTorch's) layout."""
    return np.transpose(kernel, (rank + 1, rank, *range(rank)))


def _conv(g, layer, value, out_shape):
    from rankconv.layers import Conv

    rank, data_format = layer.rank, layer.data_format
    x = g.channels_first(value, data_format)
    kernel = layer.kernel.numpy()
    if isinstance(layer, Conv):
        weight, groups = _keras_to_torch_kernel(kernel, rank), layer.groups
    else:  # depthwise: (k…, C, m) → groups of one channel, output channel c·m + j
        channels, multiplier = kernel.shape[-2:]
        weight = _keras_to_torch_kernel(kernel.reshape(*kernel.shape[:-2], 1, channels * multiplier), rank)
        groups = channels
    spatial = _spatial_of(value.shape, data_format)
    pads = _window_pads(spatial, layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding)
    inputs = [x, g.constant(weight, f"{layer.name}/kernel")]
    if layer.use_bias:
        inputs.append(g.constant(layer.bias.numpy(), f"{layer.name}/bias"))
    y = g.op(
        "Conv",
        inputs,
        layer.name,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
        group=int(groups),
        **_pad_attributes(pads),
    )
    return _activate(g, layer, g.from_channels_first(y, out_shape, value.dtype, data_format), layer.activation)


def _separable_conv(g, layer, value, out_shape):
    rank, data_format = layer.rank, layer.data_format
    x = g.channels_first(value, data_format)
    depthwise = layer.depthwise_kernel.numpy()
    channels, multiplier = depthwise.shape[-2:]
    weight = _keras_to_torch_kernel(depthwise.reshape(*depthwise.shape[:-2], 1, channels * multiplier), rank)
    spatial = _spatial_of(value.shape, data_format)
    pads = _window_pads(spatial, layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding)
    y = g.op(
        "Conv",
        [x, g.constant(weight, f"{layer.name}/depthwise_kernel")],
        layer.name,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
        group=int(channels),
        **_pad_attributes(pads),
    )
    inputs = [y, g.constant(_keras_to_torch_kernel(layer.pointwise_kernel.numpy(), rank), f"{layer.name}/pointwise")]
    if layer.use_bias:
        inputs.append(g.constant(layer.bias.numpy(), f"{layer.name}/bias"))
    y = g.op("Conv", inputs, layer.name, kernel_shape=[1] * rank)
    return _activate(g, layer, g.from_channels_first(y, out_shape, value.dtype, data_format), layer.activation)


def _conv_transpose(g, layer, value, out_shape):
    from rankconv import utils

    rank, data_format = layer.rank, layer.data_format
    x = g.channels_first(value, data_format)
    # Keras (k…, filters, in) → ONNX (in, filters, k…); ONNX's ConvTranspose flips the kernel itself
    weight = np.transpose(layer.kernel.numpy(), (rank + 1, rank, *range(rank)))
    begins, ends, extras = [], [], []
    for axis, (k, s, d) in enumerate(zip(layer.kernel_size, layer.strides, layer.dilation_rate)):
        extra = None if layer.output_padding is None else layer.output_padding[axis]
        lo, hi = utils.conv_transpose_padding(k, s, d, layer.padding, extra)
        span = utils.effective_kernel_size(k, d)
        # ONNX pads the stride-dilated input by span - 1 - pads on each side, plus output_padding at the end
        begins.append(span - 1 - lo)
        ends.append(max(span - 1 - hi, 0))
        extras.append(max(hi - (span - 1), 0))
    inputs = [x, g.constant(weight, f"{layer.name}/kernel")]
    if layer.use_bias:
        inputs.append(g.constant(layer.bias.numpy(), f"{layer.name}/bias"))
    attributes = dict(
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
        pads=begins + ends,
    )
    if any(extras):
        attributes["output_padding"] = extras
    y = g.op("ConvTranspose", inputs, layer.name, **attributes)
    return _activate(g, layer, g.from_channels_first(y, out_shape, value.dtype, data_format), layer.activation)


def _pooling(g, layer, value, out_shape):
    x = g.channels_first(value, layer.data_format)
    spatial = _spatial_of(value.shape, layer.data_format)
    ones = (1,) * layer.rank
    pads = _window_pads(spatial, layer.pool_size, layer.strides, ones, layer.padding)
    attributes = dict(kernel_shape=list(layer.pool_size), strides=list(layer.strides), **_pad_attributes(pads))
    if layer.mode == "max":
        y = g.op("MaxPool", [x], layer.name, **attributes)
    else:  # padded cells are left out of the average, as Keras
        y = g.op("AveragePool", [x], layer.name, count_include_pad=0, **attributes)
    return g.from_channels_first(y, out_shape, value.dtype, layer.data_format)


def _global_pooling(g, layer, value, out_shape, mask):
    if mask is not None:  # GlobalAveragePooling1D: masked steps are left out of the average
        x = g.logical(value)
        channel_axis = -1 if layer.data_format == "channels_last" else 1
        weights = g.op("Cast", [g.unsqueeze(mask, [channel_axis], layer.name)], layer.name, to=_elem_type(value.dtype))
        total = g.reduce(
            "ReduceSum",
            g.op("Mul", [x, weights], layer.name),
            [1 if channel_axis == -1 else 2],
            layer.name,
            layer.keepdims,
        )
        count = g.reduce("ReduceSum", weights, [1 if channel_axis == -1 else 2], layer.name, layer.keepdims)
        return _Value(out_shape, value.dtype, name=g.op("Div", [total, count], layer.name))
    tensor, axes = g.form(value)
    spatial = [j for j, axis in enumerate(axes) if axis in layer._axes()]
    op_type = "ReduceMax" if layer.mode == "max" else "ReduceMean"
    y = g.reduce(op_type, tensor, spatial, layer.name, layer.keepdims)
    if layer.keepdims and value.moved is not None and tensor == value.moved:
        return _Value(out_shape, value.dtype, moved=y)
    return _Value(out_shape, value.dtype, name=y)


def _dense(g, layer, value, out_shape):
    y = g.op("MatMul", [g.logical(value), g.constant(layer.kernel.numpy(), f"{layer.name}/kernel")], layer.name)
    if layer.use_bias:
        y = g.op("Add", [y, g.constant(layer.bias.numpy(), f"{layer.name}/bias")], layer.name)
    return _activate(g, layer, _Value(out_shape, value.dtype, name=y), layer.activation)


def _embedding(g, layer, value, out_shape):
    ids = g.logical(value)
    if np.dtype(value.dtype).kind == "f":
        ids = g.op("Cast", [ids], layer.name, to=_elem_type("int64"))
    table = g.constant(layer.embeddings.numpy(), f"{layer.name}/embeddings")
    return _Value(out_shape, layer.dtype, name=g.op("Gather", [table, ids], layer.name, axis=0))


def _batch_normalization(g, layer, value, out_shape):
    axes = layer._axes(value.rank)
    gamma = layer.gamma.numpy().astype(np.float64) if layer.gamma is not None else 1.0
    variance = layer.moving_variance.numpy().astype(np.float64)
    scale = gamma / np.sqrt(variance + layer.epsilon)
    mean = layer.moving_mean.numpy()
    beta = layer.beta.numpy() if layer.beta is not None else None
    dtype = np.dtype(layer.dtype)

    def normalise(tensor, form_axes):
        shape = [value.shape[a] if a in axes else 1 for a in form_axes]
        # the parameters hold the normalised axes in rankconv's order; a form may order them otherwise
        order = [a for a in form_axes if a in axes]
        permutation = [axes.index(a) for a in order]

        def as_form(array, name):
            array = np.transpose(np.broadcast_to(array, mean.shape), permutation).reshape(shape)
            return g.constant(array.astype(dtype), f"{layer.name}/{name}")

        y = g.op("Sub", [tensor, as_form(mean, "moving_mean")], layer.name)
        y = g.op("Mul", [y, as_form(scale, "scale")], layer.name)
        if beta is not None:
            y = g.op("Add", [y, as_form(beta, "beta")], layer.name)
        return y

    return g.map(value, normalise)


def _layer_normalization(g, layer, value, out_shape):
    axes = layer._axes(value.rank)
    x = g.logical(value)
    dtype = np.dtype(layer.dtype)
    broadcast = [value.shape[a] if a in axes else 1 for a in range(value.rank)]
    name = layer.name
    mean = g.reduce("ReduceMean", x, axes, name, True)
    centred = g.op("Sub", [x, mean], name)
    variance = g.reduce("ReduceMean", g.op("Mul", [centred, centred], name), axes, name, True)
    deviation = g.op("Sqrt", [g.op("Add", [variance, g.scalar(layer.epsilon, dtype, f"{name}/epsilon")], name)], name)
    if layer.rms_scaling:  # as Keras: the uncentred input over the centred deviation, times gamma
        y = g.op("Div", [x, deviation], name)
        y = g.op("Mul", [y, g.constant(layer.gamma.numpy().reshape(broadcast), f"{name}/gamma")], name)
        return _Value(out_shape, value.dtype, name=y)
    y = g.op("Div", [centred, deviation], name)
    if layer.gamma is not None:
        y = g.op("Mul", [y, g.constant(layer.gamma.numpy().reshape(broadcast), f"{name}/gamma")], name)
    if layer.beta is not None:
        y = g.op("Add", [y, g.constant(layer.beta.numpy().reshape(broadcast), f"{name}/beta")], name)
    return _Value(out_shape, value.dtype, name=y)


def _rescaling(g, layer, value, out_shape):
    """`x * scale + offset` (inputs already cast to the layer's dtype, as rankconv casts integers)."""
    dtype = np.dtype(layer.dtype)
    scale, offset = np.asarray(layer.scale, dtype=dtype), np.asarray(layer.offset, dtype=dtype)

    def rescale(tensor, axes):
        y = g.op("Mul", [tensor, g.constant(scale, f"{layer.name}/scale")], layer.name)
        if np.any(offset):
            y = g.op("Add", [y, g.constant(offset, f"{layer.name}/offset")], layer.name)
        return y

    if scale.ndim == 0 and offset.ndim == 0:
        return g.map(value, rescale)
    # per-channel factors broadcast against rankconv's layout
    return _Value(out_shape, value.dtype, name=rescale(g.logical(value), None))


def _relu_layer(g, layer, value, out_shape):
    dtype = np.dtype(layer.dtype)
    slope, maximum, threshold = layer.negative_slope, layer.max_value, layer.threshold
    name = layer.name

    def relu(x, axes):
        if not threshold and maximum is None:
            return g.op("LeakyRelu", [x], name, alpha=float(slope)) if slope else g.op("Relu", [x], name)
        if threshold:
            kept = g.op("Greater", [x, g.scalar(threshold, dtype, f"{name}/threshold")], name)
            y = g.op("Mul", [x, g.op("Cast", [kept], name, to=_elem_type(dtype))], name)
        else:
            y = g.op("Relu", [x], name)
        if maximum is not None:
            y = g.op("Clip", [y, g.scalar(0, dtype, f"{name}/zero"), g.scalar(maximum, dtype, f"{name}/max")], name)
        if slope:
            below = g.op("Relu", [g.op("Sub", [g.scalar(threshold, dtype, f"{name}/t"), x], name)], name)
            y = g.op("Sub", [y, g.op("Mul", [below, g.scalar(slope, dtype, f"{name}/slope")], name)], name)
        return y

    return g.map(value, relu)


def _softmax_layer(g, layer, value, out_shape, mask):
    x = g.logical(value)
    dtype = np.dtype(layer.dtype)
    axes = [a % value.rank for a in layer._axes()]
    name = layer.name
    if mask is not None:
        x = g.op("Where", [mask, x, g.scalar(-1e9, dtype, f"{name}/masked")], name)
    if len(axes) == 1:
        y = g.op("Softmax", [x], name, axis=axes[0])
    else:
        y = g.op("Exp", [g.op("Sub", [x, g.reduce("ReduceLogSumExp", x, axes, name, True)], name)], name)
    if mask is not None:
        y = g.op("Where", [mask, y, g.scalar(0, dtype, f"{name}/zero")], name)
    return _Value(out_shape, value.dtype, name=y)


def _flatten(g, layer, value, out_shape):
    x = g.logical(value)
    if layer.data_format == "channels_first" and value.rank > 2:  # as Keras: in channels-last order
        x = g.op("Transpose", [x], layer.name, perm=_to_last(value.rank))
    return _Value(out_shape, value.dtype, name=g.op("Flatten", [x], layer.name, axis=1))


def _reshape(g, layer, value, out_shape):
    target = g.ints([0, *layer.target_shape], f"{layer.name}/shape")  # 0: the batch size, copied
    return _Value(out_shape, value.dtype, name=g.op("Reshape", [g.logical(value), target], layer.name))


def _zero_padding(g, layer, value, out_shape):
    x = g.channels_first(value, layer.data_format)
    pads = [0, 0, *(lo for lo, _ in layer.padding), 0, 0, *(hi for _, hi in layer.padding)]
    y = g.op("Pad", [x, g.ints(pads, f"{layer.name}/pads")], layer.name, mode="constant")
    return g.from_channels_first(y, out_shape, value.dtype, layer.data_format)


def _cropping(g, layer, value, out_shape):
    x = g.channels_first(value, layer.data_format)
    axes = list(range(2, 2 + layer.rank))
    starts = [lo for lo, _ in layer.cropping]
    ends = [-hi if hi else _INT64_MAX for _, hi in layer.cropping]
    name = layer.name
    y = g.op(
        "Slice", [x, g.ints(starts, f"{name}/starts"), g.ints(ends, f"{name}/ends"), g.ints(axes, f"{name}/axes")], name
    )
    return g.from_channels_first(y, out_shape, value.dtype, layer.data_format)


def _upsampling(g, layer, value, out_shape):
    x = g.channels_first(value, layer.data_format)
    scales = g.constant(np.asarray([1, 1, *layer.size], dtype=np.float32), f"{layer.name}/scales")
    if layer.interpolation == "nearest":  # output cell i reads cell floor(i / size): a repeat
        attributes = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    else:  # half-pixel centres, clamped at the edges
        attributes = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    y = g.op("Resize", [x, "", scales], layer.name, **attributes)
    return g.from_channels_first(y, out_shape, value.dtype, layer.data_format)


def _center_crop(g, layer, value, out_shape):
    if value.rank != 4:
        _refuse(layer, "ONNX export takes batches of images (4-D inputs).")
    rows, columns = layer._image_size(value.shape)
    if rows is None or columns is None:
        _refuse(layer, "the input's height and width must be known: Keras crops or resizes depending on them.")
    if rows < layer.height or columns < layer.width:
        _refuse(
            layer,
            "an input smaller than the window is cropped to the window's aspect ratio and resized with antialiasing "
            "rules that ONNX's Resize does not reproduce exactly.",
        )
    x = g.channels_first(value, layer.data_format)
    top, left = (rows - layer.height) // 2, (columns - layer.width) // 2
    name = layer.name
    y = g.op(
        "Slice",
        [
            x,
            g.ints([top, left], f"{name}/starts"),
            g.ints([top + layer.height, left + layer.width], f"{name}/ends"),
            g.ints([2, 3], f"{name}/axes"),
        ],
        name,
    )
    return g.from_channels_first(y, out_shape, value.dtype, layer.data_format)


def _resizing(g, layer, value, out_shape):
    if value.rank != 4:
        _refuse(layer, "ONNX export takes batches of images (4-D inputs).")
    if layer.crop_to_aspect_ratio or layer.pad_to_aspect_ratio:
        _refuse(layer, "aspect-ratio cropping or padding is not exported (its window depends on the input's size).")
    if layer.interpolation not in ("bilinear", "nearest"):
        _refuse(layer, f"interpolation={layer.interpolation!r} has no exact ONNX Resize equivalent here.")
    rows, columns = layer._image_size(value.shape)
    shrinks = rows is None or columns is None or rows > layer.height or columns > layer.width
    if layer.antialias and layer.interpolation == "bilinear" and shrinks:
        _refuse(layer, "antialiased shrinking (Keras's wider filter) has no exact ONNX Resize equivalent at opset 17.")
    x = g.channels_first(value, layer.data_format)
    shape = g.op("Shape", [x], layer.name)
    batch_channels = g.op(
        "Slice", [shape, g.ints([0], f"{layer.name}/zero"), g.ints([2], f"{layer.name}/two")], layer.name
    )
    sizes = g.op(
        "Concat", [batch_channels, g.ints([layer.height, layer.width], f"{layer.name}/size")], layer.name, axis=0
    )
    if layer.interpolation == "nearest":  # cell floor((i + 0.5) · n / m)
        attributes = dict(mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn", nearest_mode="floor")
    else:
        attributes = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    y = g.op("Resize", [x, "", "", sizes], layer.name, **attributes)
    y = g.op("Cast", [y], layer.name, to=_elem_type(layer.output_dtype(value.dtype)))
    return g.from_channels_first(y, out_shape, layer.output_dtype(value.dtype), layer.data_format)


def _elementwise_merge(g, layer, values, out_shape):
    from rankconv.layers import Add, Average, Maximum, Minimum, Multiply, Subtract

    op_type = {Add: "Add", Average: "Add", Subtract: "Sub", Multiply: "Mul", Maximum: "Max", Minimum: "Min"}[
        type(layer)
    ]
    same = all(v.shape == values[0].shape for v in values) and all(v.moved is not None for v in values)
    if same:  # one layout for all: merge the channels-first copies
        tensors = [v.moved for v in values]
    else:
        tensors = [g.logical(v) for v in values]
        top = max(v.rank for v in values)
        # as Keras: an input with fewer axes gains axes of size 1 right after its batch axis
        tensors = [
            t if v.rank == top else g.unsqueeze(t, range(1, 1 + top - v.rank), layer.name)
            for t, v in zip(tensors, values)
        ]
    y = tensors[0]
    for t in tensors[1:]:
        y = g.op(op_type, [y, t], layer.name)
    if isinstance(layer, Average):
        y = g.op("Div", [y, g.scalar(len(values), values[0].dtype, f"{layer.name}/count")], layer.name)
    return _Value(out_shape, values[0].dtype, moved=y) if same else _Value(out_shape, values[0].dtype, name=y)


def _concatenate(g, layer, values, out_shape):
    rank = values[0].rank
    axis = layer.axis % rank
    if all(v.moved is not None for v in values):
        y = g.op("Concat", [v.moved for v in values], layer.name, axis=_to_first(rank).index(axis))
        return _Value(out_shape, values[0].dtype, moved=y)
    y = g.op("Concat", [g.logical(v) for v in values], layer.name, axis=axis)
    return _Value(out_shape, values[0].dtype, name=y)


def _elem_type(dtype) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _cast(g: _Graph, value: _Value, dtype) -> _Value:
    if np.dtype(value.dtype) == np.dtype(dtype):
        return value
    cast = g.map(value, lambda x, axes: g.op("Cast", [x], "cast", to=_elem_type(dtype)))
    cast.dtype = np.dtype(dtype).name
    return cast


def _random_augmentation():
    from rankconv.layers import preprocessing as P

    return (P.RandomFlip, P.RandomRotation, P.RandomZoom, P.RandomTranslation, P.RandomContrast, P.RandomBrightness)


def _convert_layer(g: _Graph, layer, inputs, mask, out_shape):
    """(output value, output mask) of `layer` on `inputs` (a value, or a list for merge layers)."""
    from rankconv import layers as L
    from rankconv.layers import activation as A
    from rankconv.layers import reshaping as R
    from rankconv.models.functional import Functional, Sequential

    if isinstance(layer, Functional):
        outputs = _convert_functional(g, layer, [inputs])
        return outputs[0], None
    if isinstance(layer, Sequential):
        return _convert_sequential(g, layer, inputs, None)[0], None
    if layer._casts_inputs:  # as rankconv: numeric inputs are cast to the layer's dtype first
        inputs = (
            [_cast(g, v, layer.dtype) for v in inputs] if isinstance(inputs, list) else _cast(g, inputs, layer.dtype)
        )
    if isinstance(inputs, list):
        if isinstance(layer, L.Concatenate):
            return _concatenate(g, layer, inputs, out_shape), None
        if isinstance(layer, (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)):
            return _elementwise_merge(g, layer, inputs, out_shape), None
        _refuse(layer, "it takes a list of inputs, which only the merge layers do.")
    if mask is not None and not isinstance(layer, (L.GlobalAveragePooling1D, A.Softmax)) and not layer.supports_masking:
        mask = None  # layers that do not support masking drop it (as rankconv and Keras do)
    out_mask = mask if layer.supports_masking else None
    value = inputs
    if isinstance(layer, L.SeparableConv):
        out = _separable_conv(g, layer, value, out_shape)
    elif isinstance(layer, (L.Conv, L.DepthwiseConv)):
        out = _conv(g, layer, value, out_shape)
    elif isinstance(layer, L.ConvTranspose):
        out = _conv_transpose(g, layer, value, out_shape)
    elif isinstance(layer, L.Pooling):
        out = _pooling(g, layer, value, out_shape)
    elif isinstance(layer, L.GlobalPooling):
        out = _global_pooling(g, layer, value, out_shape, mask if layer.mode == "average" else None)
        out_mask = None
    elif isinstance(layer, L.Dense):
        out = _dense(g, layer, value, out_shape)
    elif isinstance(layer, L.Embedding):
        out = _embedding(g, layer, value, out_shape)
        if layer.mask_zero:
            zero = g.constant(np.zeros((), dtype=value.dtype), f"{layer.name}/padding_id")
            out_mask = g.op("Not", [g.op("Equal", [g.logical(value), zero], layer.name)], layer.name)
    elif isinstance(layer, (L.Dropout, *_random_augmentation())):
        out = value  # inference: Dropout (and its spatial forms) and random augmentation pass inputs through
    elif isinstance(layer, L.BatchNormalization):
        out = _batch_normalization(g, layer, value, out_shape)
    elif isinstance(layer, L.LayerNormalization):
        out = _layer_normalization(g, layer, value, out_shape)
    elif isinstance(layer, L.Activation):
        out = _activate(g, layer, value, layer.activation)
    elif isinstance(layer, A.ReLU):
        out = _relu_layer(g, layer, value, out_shape)
    elif isinstance(layer, A.LeakyReLU):
        out = g.map(value, lambda x, axes: g.op("LeakyRelu", [x], layer.name, alpha=float(layer.negative_slope)))
    elif isinstance(layer, A.ELU):
        out = g.map(value, lambda x, axes: g.op("Elu", [x], layer.name, alpha=float(layer.alpha)))
    elif isinstance(layer, A.PReLU):
        alpha = g.constant(layer.alpha.numpy(), f"{layer.name}/alpha")
        out = _Value(out_shape, value.dtype, name=g.op("PRelu", [g.logical(value), alpha], layer.name))
    elif isinstance(layer, A.Softmax):
        out = _softmax_layer(g, layer, value, out_shape, mask)
    elif isinstance(layer, L.Rescaling):
        out = _rescaling(g, layer, value, out_shape)
    elif isinstance(layer, L.Flatten):
        out = _flatten(g, layer, value, out_shape)
    elif isinstance(layer, L.Reshape):
        out = _reshape(g, layer, value, out_shape)
    elif isinstance(layer, L.ZeroPadding):
        out = _zero_padding(g, layer, value, out_shape)
    elif isinstance(layer, R.Cropping):
        out = _cropping(g, layer, value, out_shape)
    else:
        out = _convert_image_layer(g, layer, value, out_shape)
    return out, out_mask


def _convert_image_layer(g, layer, value, out_shape):
    from rankconv.layers import preprocessing as P
    from rankconv.layers import reshaping as R

    if isinstance(layer, R.UpSampling):
        return _upsampling(g, layer, value, out_shape)
    if isinstance(layer, P.CenterCrop):
        return _center_crop(g, layer, value, out_shape)
    if isinstance(layer, P.Resizing):
        return _resizing(g, layer, value, out_shape)
    if isinstance(layer, P.RandomCrop):
        _refuse(
            layer,
            "at inference it crops the largest centred window of the target's aspect ratio and resizes it (bilinear), "
            "which depends on the input's size; use CenterCrop (a plain crop when the input is larger), or remove "
            "the layer before exporting.",
        )
    _refuse(layer, "rankconv has no ONNX form for this layer.")


# ----------------------------------------------------------------------------- models


def _convert_functional(g: _Graph, model, inputs: list) -> list:
    """The output values of a functional model whose input tensors hold `inputs` (values)."""
    values = {id(t): v for t, v in zip(model.inputs, inputs)}
    masks = {}
    for node in model._nodes:
        layer = node.layer
        options = {k: v for k, v in node.arguments.items() if k != "training"}
        if options:
            _refuse(layer, f"it is called with arguments {sorted(options)}, which the export does not replay.")
        if isinstance(node.inputs, (list, tuple)):
            arguments, mask = [values[id(t)] for t in node.inputs], None
        else:
            arguments, mask = values[id(node.inputs)], masks.get(id(node.inputs))
        out, out_mask = _convert_layer(g, layer, arguments, mask, node.outputs[0].shape)
        values[id(node.outputs[0])] = out
        if out_mask is not None:
            masks[id(node.outputs[0])] = out_mask
    return [values[id(t)] for t in model.outputs]


def _convert_sequential(g: _Graph, model, value, mask):
    shape = value.shape
    for layer in model.layers:
        shape = tuple(layer.compute_output_shape(shape))
        value, mask = _convert_layer(g, layer, value, mask, shape)
    return value, mask


def _model_inputs(model):
    """(name, shape, dtype) of each input of `model`."""
    from rankconv.models.functional import Sequential

    if isinstance(model, Sequential):
        if model._build_input_shape is None:
            raise ValueError(
                f"Sequential model '{model.name}' is not built, so its input shape is unknown. Build it (call it on "
                "data, or start it with `rankconv.Input(shape)`) before exporting."
            )
        layer = model._input_layer
        name = layer.name if layer is not None else f"{model.name}_input"
        return [(name, tuple(model._build_input_shape), layer.dtype if layer is not None else "float32")]
    return [(t.node.layer.name, tuple(t.shape), t.dtype) for t in model.inputs]


def _dims(shape, name):
    """ONNX dims: the batch axis `batch`, other unknown sizes named after the tensor and axis."""
    return ["batch" if i == 0 else (f"{name}_axis{i}" if d is None else int(d)) for i, d in enumerate(shape)]


def _check_opset(opset_version):
    onnx = _require_onnx()
    latest = onnx.defs.onnx_opset_version()
    if opset_version is None:
        return DEFAULT_OPSET
    if (
        isinstance(opset_version, bool)
        or not isinstance(opset_version, int)
        or not MIN_OPSET <= opset_version <= latest
    ):
        raise ValueError(
            f"`opset_version` must be an int from {MIN_OPSET} to {latest} (the installed onnx package's newest); "
            f"received opset_version={opset_version!r}."
        )
    return opset_version


def to_onnx(model, opset_version=None):
    """The ONNX `ModelProto` of `model`'s inference graph (checked with `onnx.checker`).

    Inputs are named after the model's input layers, outputs after its output layers; axis 0 of
    each is the dynamic `batch`. Raises ValueError naming the first layer that has no ONNX form.
    """
    from rankconv import __version__
    from rankconv.models.functional import Model, Sequential

    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a rankconv Model or Sequential; received {type(model).__name__}.")
    opset = _check_opset(opset_version)
    onnx = _require_onnx()
    helper = onnx.helper
    g = _Graph(onnx, opset)
    graph_inputs, values = [], []
    for name, shape, dtype in _model_inputs(model):
        g._taken.add(name)
        graph_inputs.append(helper.make_tensor_value_info(name, _elem_type(dtype), _dims(shape, name)))
        values.append(_Value(shape, dtype, name=name))
    if isinstance(model, Sequential):
        outputs, output_names = [_convert_sequential(g, model, values[0], None)[0]], [model.layers[-1].name]
    else:
        outputs = _convert_functional(g, model, values)
        output_names = [t.node.layer.name for t in model.outputs]
    graph_outputs = []
    for value, base in zip(outputs, output_names):
        name = g.fresh(base)
        g.nodes.append(helper.make_node("Identity", [g.logical(value)], [name], name=f"{name}/output"))
        graph_outputs.append(helper.make_tensor_value_info(name, _elem_type(value.dtype), _dims(value.shape, name)))
    graph = helper.make_graph(g.nodes, model.name, graph_inputs, graph_outputs, initializer=g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="rankconv",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opsets),
        doc_string=f"rankconv model '{model.name}', inference graph",
    )
    metadata = getattr(model, "metadata", None)
    if metadata:
        helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata)})
    if proto.ByteSize() >= 2**31:
        raise ValueError(
            f"Model '{model.name}' is too large for one ONNX file ({proto.ByteSize():,} bytes; protobuf's limit is 2 GiB)."
        )
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_model(model, filepath, format="onnx", verbose=None, input_signature=None, **kwargs) -> None:
    """`model.export(filepath, format="onnx")`: write the ONNX file (atomically). Keyword
    `opset_version` picks the opset (default 17)."""
    if format not in FORMATS:
        raise ValueError(
            f"`format` must be one of {FORMATS}; received format={format!r}. rankconv writes ONNX only (Keras's "
            "'tf_saved_model' and 'openvino' formats need TensorFlow or OpenVINO: load the .keras file in Keras 3 for those)."
        )
    if input_signature is not None:
        raise ValueError(
            "`input_signature` is not supported: the export takes the model's own input shapes, with a dynamic batch axis."
        )
    opset_version = kwargs.pop("opset_version", None)
    if kwargs:
        raise TypeError(f"Unexpected arguments for an ONNX export: {sorted(kwargs)}.")
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"`filepath` must be a path (str or os.PathLike); received {type(filepath).__name__}.")
    if not os.fspath(filepath).endswith(".onnx"):
        raise ValueError(f"An ONNX file name must end in '.onnx'; received filepath={os.fspath(filepath)!r}.")
    proto = to_onnx(model, opset_version)
    data = proto.SerializeToString()
    with atomic_write(filepath) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
    if verbose:
        print(f"Saved ONNX model (opset {proto.opset_import[0].version}) at {os.fspath(filepath)}")


# ----------------------------------------------------------------------------- command line


def _export_command(args) -> int:
    from rankconv import saving

    try:
        model = saving.load_model(args.model)
        export_model(model, args.output, opset_version=args.opset)
    except ImportError as error:
        print(f"rankconv export: error: {error}", file=sys.stderr)
        return 1
    inputs = ", ".join(
        f"{name} ({', '.join('batch' if i == 0 else str(d) for i, d in enumerate(shape))}) {dtype}"
        for name, shape, dtype in _model_inputs(model)
    )
    print(f"wrote {args.output} (ONNX opset {args.opset or DEFAULT_OPSET}; inputs: {inputs})")
    if getattr(model, "metadata", None):
        print(
            f"the model's metadata (a text model's vocabulary and classes) is in the file's metadata_props['{METADATA_KEY}']"
        )
    return 0


def add_parser(commands) -> argparse.ArgumentParser:
    """`rankconv export MODEL OUT.onnx`: add the subcommand to `commands` (argparse subparsers)."""
    parser = commands.add_parser(
        "export",
        help="write a model file (.keras or legacy .h5) as ONNX, for serving runtimes",
        description="Convert a model to an ONNX file (opset 17 by default, dynamic batch axis), checked with "
        "onnx.checker. A text model's vocabulary, cleaning and classes go into the file's metadata. Needs the "
        "`export` extra: pip install 'rankconv[export]'.",
        epilog="example: rankconv export mr.keras mr.onnx",
    )
    parser.add_argument("model", help="the model file (.keras, or a Keras 2 .h5)")
    parser.add_argument("output", help="the ONNX file to write (.onnx)")
    parser.add_argument("--opset", type=int, default=None, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.set_defaults(handler=_export_command)
    return parser
