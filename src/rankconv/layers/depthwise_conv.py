"""Depthwise and depthwise-separable convolution layers, rank-generic, with Keras 3's arguments,
weight names and kernel layouts.

- `DepthwiseConv(rank, kernel_size, ..., depth_multiplier)`: every input channel convolved with its
  own `depth_multiplier` filters; kernel `kernel_size + (channels, depth_multiplier)`, output
  channel `c * depth_multiplier + j` from input channel `c`. It is the grouped convolution with one
  group per channel (`ops.depthwise_conv`), which the planner sends to the compiled depthwise
  kernel.
- `SeparableConv(rank, filters, kernel_size, ..., depth_multiplier)`: a depthwise convolution, then
  a 1x...x1 convolution (`pointwise_kernel`, `(1,) * rank + (channels * depth_multiplier, filters)`)
  mixing the channels: MobileNet's and Xception's building block.

`DepthwiseConv1D/2D` and `SeparableConv1D/2D` are Keras's; the 3-D and rank-generic forms are
rankconv's extensions (Keras loads none of them). Positional arguments follow Keras's 2-D classes,
with `rank` first for the generic ones.
"""

from __future__ import annotations

from rankconv import constraints, initializers, ops, regularizers
from rankconv.layers.conv import BaseConv, check_count


class DepthwiseConv(BaseConv):
    """Depthwise convolution for any `rank >= 1` (Keras's `BaseDepthwiseConv`, made public)."""

    def __init__(
        self,
        rank,
        kernel_size,
        strides=1,
        padding="valid",
        depth_multiplier=1,
        data_format=None,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        bias_constraint=None,
        name=None,
        dtype=None,
        trainable=True,
    ):
        super().__init__(
            rank,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            bias_initializer,
            bias_regularizer,
            activity_regularizer,
            bias_constraint,
            name=name,
            dtype=dtype,
            trainable=trainable,
        )
        self.depth_multiplier = check_count(self._where, "depth_multiplier", depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer, "depthwise_initializer")
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer, "depthwise_regularizer")
        self.depthwise_constraint = constraints.get(depthwise_constraint, "depthwise_constraint")
        self.kernel = None

    def check_input_shape(self, shape) -> None:
        self._input_channels(shape)
        if self.kernel is not None:
            self._built_for(shape, self.kernel.shape[-2])

    def _output_channels(self, channels: int) -> int:
        return channels * self.depth_multiplier

    def build(self, input_shape) -> None:
        self.check_input_shape(input_shape)
        channels = tuple(input_shape)[self._channel_axis]
        self.compute_output_shape(input_shape)  # a clear error when the kernel does not fit
        self.kernel = self.add_weight(
            self.kernel_size + (channels, self.depth_multiplier),
            self.depthwise_initializer,
            "kernel",
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
        )
        self._add_bias(channels * self.depth_multiplier)
        super().build(input_shape)

    def call(self, inputs, training=None):
        self.compute_output_shape(inputs.shape)
        return self._bias_and_activation(ops.depthwise_conv(inputs, self.kernel, **self._options))

    def get_config(self) -> dict:
        config = super().get_config()
        if type(self) is DepthwiseConv:
            config["rank"] = self.rank
        config.update({"depth_multiplier": self.depth_multiplier, **self._window_config(), **self._tail_config()})
        config.update(self._weights_config("depthwise"))
        return config


class SeparableConv(BaseConv):
    """Depthwise-separable convolution for any `rank >= 1` (Keras's `BaseSeparableConv`, made public)."""

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        depth_multiplier=1,
        activation=None,
        use_bias=True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        pointwise_constraint=None,
        bias_constraint=None,
        name=None,
        dtype=None,
        trainable=True,
    ):
        super().__init__(
            rank,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            bias_initializer,
            bias_regularizer,
            activity_regularizer,
            bias_constraint,
            name=name,
            dtype=dtype,
            trainable=trainable,
        )
        self.filters = check_count(self._where, "filters", filters)
        self.depth_multiplier = check_count(self._where, "depth_multiplier", depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer, "depthwise_initializer")
        self.pointwise_initializer = initializers.get(pointwise_initializer, "pointwise_initializer")
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer, "depthwise_regularizer")
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer, "pointwise_regularizer")
        self.depthwise_constraint = constraints.get(depthwise_constraint, "depthwise_constraint")
        self.pointwise_constraint = constraints.get(pointwise_constraint, "pointwise_constraint")
        self.depthwise_kernel = None
        self.pointwise_kernel = None

    def check_input_shape(self, shape) -> None:
        self._input_channels(shape)
        if self.depthwise_kernel is not None:
            self._built_for(shape, self.depthwise_kernel.shape[-2])

    def _output_channels(self, channels: int) -> int:
        return self.filters

    def build(self, input_shape) -> None:
        self.check_input_shape(input_shape)
        channels = tuple(input_shape)[self._channel_axis]
        self.compute_output_shape(input_shape)
        self.depthwise_kernel = self.add_weight(
            self.kernel_size + (channels, self.depth_multiplier),
            self.depthwise_initializer,
            "depthwise_kernel",
            regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint,
        )
        self.pointwise_kernel = self.add_weight(
            (1,) * self.rank + (channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer,
            "pointwise_kernel",
            regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint,
        )
        self._add_bias(self.filters)
        super().build(input_shape)

    def call(self, inputs, training=None):
        self.compute_output_shape(inputs.shape)
        outputs = ops.separable_conv(inputs, self.depthwise_kernel, self.pointwise_kernel, **self._options)
        return self._bias_and_activation(outputs)

    def get_config(self) -> dict:
        config = super().get_config()
        if type(self) is SeparableConv:
            config["rank"] = self.rank
        config.update({"depth_multiplier": self.depth_multiplier, "filters": self.filters, **self._window_config()})
        config.update({**self._tail_config(), **self._weights_config("depthwise", "pointwise")})
        return config


class DepthwiseConv1D(DepthwiseConv):
    """1-D depthwise convolution over (batch, steps, channels)."""

    def __init__(
        self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None, dilation_rate=1, **kwargs
    ):
        super().__init__(1, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, **kwargs)


class DepthwiseConv2D(DepthwiseConv):
    """2-D depthwise convolution over (batch, rows, cols, channels): MobileNet's middle step."""

    def __init__(
        self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None, dilation_rate=1, **kwargs
    ):
        super().__init__(2, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, **kwargs)


class DepthwiseConv3D(DepthwiseConv):
    """3-D depthwise convolution (a rankconv extension: Keras has none)."""

    def __init__(
        self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None, dilation_rate=1, **kwargs
    ):
        super().__init__(3, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, **kwargs)


class SeparableConv1D(SeparableConv):
    """1-D depthwise-separable convolution: a light text CNN's n-gram detector."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, depth_multiplier=1,
        **kwargs,
    ):  # fmt: skip
        super().__init__(
            1, filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier, **kwargs
        )


class SeparableConv2D(SeparableConv):
    """2-D depthwise-separable convolution (Xception's and MobileNet's building block)."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, depth_multiplier=1,
        **kwargs,
    ):  # fmt: skip
        super().__init__(
            2, filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier, **kwargs
        )


class SeparableConv3D(SeparableConv):
    """3-D depthwise-separable convolution (a rankconv extension: Keras has none)."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, depth_multiplier=1,
        **kwargs,
    ):  # fmt: skip
        super().__init__(
            3, filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier, **kwargs
        )


# Keras's aliases
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
