"""The seed's insight as a tool: a rank-N convolution whose kernel spans a whole spatial axis is
a rank-(N-1) convolution with that axis folded into the channels, and back; and a depthwise
convolution is a grouped one.

`Conv2D(64, (3, 300))` on `(batch, 600, 300, 1)` computes what `Conv1D(64, 3)` computes on
`(batch, 600, 300)`: `lower` turns the first into the second, `lift` the second into the first.
Inputs and outputs move between the two with `lower_inputs`/`lift_inputs` (and the outputs
differ only by the size-1 axis the wider layer keeps).

`to_grouped(DepthwiseConv)` gives the `Conv` with `groups = channels` and `channels *
depth_multiplier` filters that computes the same thing (the kernel reshaped from `kernel_size +
(channels, m)` to `kernel_size + (1, channels * m)`); `to_depthwise` goes back.
"""

from __future__ import annotations

import numpy as np

from rankconv import utils
from rankconv.layers.conv import Conv, Conv1D, Conv2D, Conv3D
from rankconv.layers.conv_transpose import Conv1DTranspose, Conv2DTranspose, Conv3DTranspose, ConvTranspose
from rankconv.layers.depthwise_conv import DepthwiseConv, DepthwiseConv1D, DepthwiseConv2D, DepthwiseConv3D

_BY_RANK = {1: Conv1D, 2: Conv2D, 3: Conv3D}
_DEPTHWISE_BY_RANK = {1: DepthwiseConv1D, 2: DepthwiseConv2D, 3: DepthwiseConv3D}
_TRANSPOSE_BY_RANK = {1: Conv1DTranspose, 2: Conv2DTranspose, 3: Conv3DTranspose}

# Arguments copied unchanged from one layer to its equivalent.
_SHARED = (
    "groups activation use_bias kernel_initializer bias_initializer kernel_regularizer bias_regularizer "
    "activity_regularizer kernel_constraint bias_constraint data_format dtype trainable"
).split()


def _make(rank: int, source: Conv, **arguments) -> Conv:
    config = source.get_config()
    shared = {key: config[key] for key in _SHARED}
    cls = _BY_RANK.get(rank)
    if cls is None:
        return Conv(rank, **shared, **arguments)
    return cls(**shared, **arguments)


def _require_built(layer, action, classes=(Conv, ConvTranspose)):
    """The built layer's input shape; a TypeError for another class, a ValueError if unbuilt."""
    if not isinstance(layer, classes):
        names = " or ".join(cls.__name__ for cls in classes)
        raise TypeError(f"{action} takes a rankconv {names} layer; received {type(layer).__name__}.")
    if not layer.built:
        raise ValueError(
            f"{action} needs a built layer (its input shape decides the equivalent); call "
            f"{type(layer).__name__} '{layer.name}' on an input or `build(input_shape)` first."
        )
    return layer._build_input_shape


def lift(layer: Conv) -> Conv:
    """Rank-N `layer` → the rank-(N+1) layer whose last kernel axis spans the old channels.

    `Conv1D(F, k)` on `(batch, steps, C)` becomes `Conv2D(F, (k, C))` on `(batch, steps, C, 1)`
    (see `lift_inputs`); its output has an extra size-1 axis before the filters.

    A transposed layer lifts the other way round (its kernel spans the new axis of the *output*):
    `Conv1DTranspose(C, k)` on `(batch, steps, F)` becomes `Conv2DTranspose(1, (k, C))` on
    `(batch, steps, 1, F)` (a size-1 axis before the channels), and its output's C channels become
    the last spatial axis: `(batch, out_steps, C, 1)`.
    """
    if isinstance(layer, ConvTranspose):
        return _lift_transpose(layer)
    _require_built(layer, "lift")
    where = f"{type(layer).__name__} '{layer.name}'"
    if layer.groups != 1:
        raise ValueError(
            f"Cannot lift {where}: it has groups={layer.groups}, and a kernel that spans all channels mixes every "
            "channel, so the lifted layer would not compute the same thing. Lift needs groups=1."
        )
    if layer.padding != "valid":
        raise ValueError(
            f"Cannot lift {where}: it has padding='{layer.padding}', which in the wider layer would also pad the "
            "new axis that spans the channels (and 'causal' exists only for rank 1). Lift needs padding='valid'."
        )
    channels = layer.kernel.shape[-2]
    lifted = _make(
        layer.rank + 1,
        layer,
        filters=layer.filters,
        kernel_size=layer.kernel_size + (channels,),
        strides=layer.strides + (1,),
        padding="valid",
        dilation_rate=layer.dilation_rate + (1,),
    )
    spatial = layer._spatial(layer._build_input_shape)
    batch = layer._build_input_shape[0]
    shape = (batch, *spatial, channels, 1) if layer.data_format == "channels_last" else (batch, 1, *spatial, channels)
    lifted.build(shape)
    lifted.set_weights([layer.kernel.value.reshape(lifted.kernel.shape), *layer.get_weights()[1:]])
    return lifted


def lower(layer: Conv, axis: int = -1) -> Conv:
    """Rank-N `layer` → the rank-(N-1) layer with spatial axis `axis` folded into the channels.

    Exact when the layer sees one input channel, its kernel spans the whole of that axis, and the
    axis is neither padded nor dilated (then the output has length 1 there, whatever the stride).

    A transposed layer lowers when it has one filter and its input has length 1 along `axis`: the
    kernel's extent there becomes the lowered layer's filters (the inverse of `lift`'s).
    """
    if isinstance(layer, ConvTranspose):
        return _lower_transpose(layer, axis)
    _require_built(layer, "lower")
    where = f"{type(layer).__name__} '{layer.name}'"
    if layer.rank < 2:
        raise ValueError(f"Cannot lower {where}: it has rank 1, and there is no rank-0 convolution.")
    axis = _spatial_axis(axis, layer.rank)
    length = layer._spatial(layer._build_input_shape)[axis]
    kernel_length = layer.kernel_size[axis]
    failures = []
    if layer.kernel.shape[-2] * layer.groups != 1:
        failures.append(f"it sees {layer.kernel.shape[-2] * layer.groups} input channels, not 1")
    if length is None:
        failures.append(f"spatial axis {axis} of its input has unknown length")
    elif kernel_length != length:
        failures.append(f"its kernel has size {kernel_length} on spatial axis {axis}, which has length {length}")
    if layer.padding != "valid":
        failures.append(f"padding='{layer.padding}' pads the folded axis too")
    if layer.dilation_rate[axis] != 1:
        failures.append(f"dilation_rate is {layer.dilation_rate[axis]} on spatial axis {axis}")
    if failures:
        raise ValueError(f"Cannot lower {where} along spatial axis {axis}: " + "; ".join(failures) + ".")
    keep = [i for i in range(layer.rank) if i != axis]
    lowered = _make(
        layer.rank - 1,
        layer,
        filters=layer.filters,
        kernel_size=tuple(layer.kernel_size[i] for i in keep),
        strides=tuple(layer.strides[i] for i in keep),
        padding="valid",
        dilation_rate=tuple(layer.dilation_rate[i] for i in keep),
    )
    spatial = layer._spatial(layer._build_input_shape)
    batch = layer._build_input_shape[0]
    rest = tuple(spatial[i] for i in keep)
    lowered.build((batch, *rest, length) if layer.data_format == "channels_last" else (batch, length, *rest))
    # kernel (*k, 1, F): move the folded axis next to the (size-1) channel axis, then merge them
    kernel = np.moveaxis(layer.kernel.value, axis, -3).reshape(lowered.kernel.shape)
    lowered.set_weights([kernel, *layer.get_weights()[1:]])
    return lowered


def _spatial_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ValueError(
            f"`axis` must name one of the {rank} spatial axes (-{rank} … {rank - 1}); received axis={axis}."
        )
    return axis % rank


def lift_inputs(x, data_format: str = "channels_last") -> np.ndarray:
    """Inputs of a rank-N layer → inputs of its `lift`: the channels become the last spatial axis."""
    x = np.asarray(x)
    if utils.normalize_data_format(data_format) == "channels_last":
        return x[..., np.newaxis]
    return np.moveaxis(x, 1, -1)[:, np.newaxis]


def lower_inputs(x, axis: int = -1, data_format: str = "channels_last") -> np.ndarray:
    """Inputs of a rank-N layer with one channel → inputs of its `lower` along spatial `axis`."""
    x = np.asarray(x)
    rank = x.ndim - 2
    axis = _spatial_axis(axis, rank)
    channels_last = utils.normalize_data_format(data_format) == "channels_last"
    channels = x.shape[-1] if channels_last else x.shape[1]
    if channels != 1:
        raise ValueError(
            f"`lower_inputs` needs inputs with one channel (what `lower` requires); received shape {x.shape}."
        )
    if channels_last:
        return np.moveaxis(x[..., 0], axis + 1, -1)
    return np.moveaxis(x[:, 0], axis + 1, 1)


def to_grouped(layer: DepthwiseConv) -> Conv:
    """`DepthwiseConv` (any rank, depth multiplier m) → the `Conv` with `groups = channels` and
    `channels * m` filters that computes the same outputs: output channel `c * m + j` is input
    channel c convolved with its j-th filter in both."""
    shape = _require_built(layer, "to_grouped", (DepthwiseConv,))
    channels = layer.kernel.shape[-2]
    config = layer.get_config()
    arguments = dict(
        filters=channels * layer.depth_multiplier,
        kernel_size=layer.kernel_size,
        strides=layer.strides,
        padding=layer.padding,
        data_format=layer.data_format,
        dilation_rate=layer.dilation_rate,
        groups=channels,
        activation=config["activation"],
        use_bias=layer.use_bias,
        kernel_initializer=config["depthwise_initializer"],
        bias_initializer=config["bias_initializer"],
        kernel_regularizer=config["depthwise_regularizer"],
        bias_regularizer=config["bias_regularizer"],
        activity_regularizer=config["activity_regularizer"],
        kernel_constraint=config["depthwise_constraint"],
        bias_constraint=config["bias_constraint"],
        dtype=layer.dtype,
        trainable=layer.trainable,
    )
    cls = _BY_RANK.get(layer.rank)
    grouped = cls(**arguments) if cls else Conv(layer.rank, **arguments)
    grouped.build(shape)
    kernel = layer.kernel.value.reshape(*layer.kernel_size, 1, channels * layer.depth_multiplier)
    grouped.set_weights([kernel, *layer.get_weights()[1:]])
    return grouped


def to_depthwise(layer: Conv) -> DepthwiseConv:
    """A grouped `Conv` with one group per input channel (`groups == channels`) → the
    `DepthwiseConv` with depth multiplier `filters // channels` that computes the same outputs."""
    shape = _require_built(layer, "to_depthwise", (Conv,))
    channels = layer.kernel.shape[-2] * layer.groups
    if layer.kernel.shape[-2] != 1:
        raise ValueError(
            f"Cannot make {type(layer).__name__} '{layer.name}' depthwise: it has groups={layer.groups} for "
            f"{channels} input channels, so each filter reads {layer.kernel.shape[-2]} channels; a depthwise "
            "convolution needs groups equal to the input's channels (one channel per filter)."
        )
    if layer.padding == "causal":
        raise ValueError(
            f"Cannot make {type(layer).__name__} '{layer.name}' depthwise: padding='causal' exists for Conv1D only, "
            "not for the depthwise layers."
        )
    config = layer.get_config()
    arguments = dict(
        kernel_size=layer.kernel_size,
        strides=layer.strides,
        padding=layer.padding,
        depth_multiplier=layer.filters // channels,
        data_format=layer.data_format,
        dilation_rate=layer.dilation_rate,
        activation=config["activation"],
        use_bias=layer.use_bias,
        depthwise_initializer=config["kernel_initializer"],
        bias_initializer=config["bias_initializer"],
        depthwise_regularizer=config["kernel_regularizer"],
        bias_regularizer=config["bias_regularizer"],
        activity_regularizer=config["activity_regularizer"],
        depthwise_constraint=config["kernel_constraint"],
        bias_constraint=config["bias_constraint"],
        dtype=layer.dtype,
        trainable=layer.trainable,
    )
    cls = _DEPTHWISE_BY_RANK.get(layer.rank)
    if cls:
        depthwise = cls(**arguments)
    else:
        depthwise = DepthwiseConv(layer.rank, **arguments)
    depthwise.build(shape)
    kernel = layer.kernel.value.reshape(*layer.kernel_size, channels, layer.filters // channels)
    depthwise.set_weights([kernel, *layer.get_weights()[1:]])
    return depthwise


def _make_transpose(rank: int, source: ConvTranspose, **arguments) -> ConvTranspose:
    config = source.get_config()
    shared = {key: config[key] for key in _SHARED if key != "groups"}
    cls = _TRANSPOSE_BY_RANK.get(rank)
    return cls(**shared, **arguments) if cls else ConvTranspose(rank, **shared, **arguments)


def _lift_transpose(layer: ConvTranspose) -> ConvTranspose:
    _require_built(layer, "lift")
    where = f"{type(layer).__name__} '{layer.name}'"
    failures = []
    if layer.padding != "valid":
        failures.append(f"padding='{layer.padding}' would also pad the new axis (lift needs padding='valid')")
    bias = layer.bias.value if layer.use_bias else None
    if bias is not None and np.any(bias != bias.flat[0]):
        failures.append("its filters have different biases, and the lifted layer has one filter (one bias)")
    if failures:
        raise ValueError(f"Cannot lift {where}: " + "; ".join(failures) + ".")
    extra = None if layer.output_padding is None else layer.output_padding + (0,)
    lifted = _make_transpose(
        layer.rank + 1,
        layer,
        filters=1,
        kernel_size=layer.kernel_size + (layer.filters,),
        strides=layer.strides + (1,),
        padding="valid",
        output_padding=extra,
        dilation_rate=layer.dilation_rate + (1,),
    )
    shape = layer._build_input_shape
    channels = layer.kernel.shape[-1]
    spatial = layer._spatial(shape)
    lifted.build(
        (shape[0], *spatial, 1, channels) if layer.data_format == "channels_last" else (shape[0], channels, *spatial, 1)
    )
    # kernel (*k, C, F) -> (*k, C, 1, F): the C output channels become the new axis's taps
    weights = [layer.kernel.value.reshape(lifted.kernel.shape)]
    if bias is not None:
        weights.append(bias[:1].copy())
    lifted.set_weights(weights)
    return lifted


def _lower_transpose(layer: ConvTranspose, axis: int) -> ConvTranspose:
    _require_built(layer, "lower")
    where = f"{type(layer).__name__} '{layer.name}'"
    if layer.rank < 2:
        raise ValueError(f"Cannot lower {where}: it has rank 1, and there is no rank-0 convolution.")
    axis = _spatial_axis(axis, layer.rank)
    length = layer._spatial(layer._build_input_shape)[axis]
    size = layer.kernel_size[axis]
    extra = 0 if layer.output_padding is None else layer.output_padding[axis]
    failures = []
    if layer.filters != 1:
        failures.append(f"it has {layer.filters} filters, not 1")
    if length != 1:
        failures.append(f"spatial axis {axis} of its input has length {length}, not 1")
    if layer.padding != "valid":
        failures.append(f"padding='{layer.padding}' pads the folded axis too")
    if layer.dilation_rate[axis] != 1:
        failures.append(f"dilation_rate is {layer.dilation_rate[axis]} on spatial axis {axis}")
    if extra or (layer.output_padding is None and layer.strides[axis] > size):
        failures.append(
            f"its output along spatial axis {axis} has {max(extra, layer.strides[axis] - size)} padding cells"
        )
    if failures:
        raise ValueError(f"Cannot lower {where} along spatial axis {axis}: " + "; ".join(failures) + ".")
    keep = [i for i in range(layer.rank) if i != axis]
    lowered = _make_transpose(
        layer.rank - 1,
        layer,
        filters=size,
        kernel_size=tuple(layer.kernel_size[i] for i in keep),
        strides=tuple(layer.strides[i] for i in keep),
        padding="valid",
        output_padding=None if layer.output_padding is None else tuple(layer.output_padding[i] for i in keep),
        dilation_rate=tuple(layer.dilation_rate[i] for i in keep),
    )
    shape = layer._build_input_shape
    channels = layer.kernel.shape[-1]
    rest = tuple(layer._spatial(shape)[i] for i in keep)
    lowered.build((shape[0], *rest, channels) if layer.data_format == "channels_last" else (shape[0], channels, *rest))
    # kernel (*k, 1, F) with the folded axis among *k: that axis becomes the filters
    kernel = np.moveaxis(layer.kernel.value[..., 0, :], axis, -2)
    weights = [np.ascontiguousarray(kernel)]
    if layer.use_bias:
        weights.append(np.repeat(layer.bias.value, size))
    lowered.set_weights(weights)
    return lowered
