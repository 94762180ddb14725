"""Convolution layers: `BaseConv`, what every convolution layer shares; the rank-generic `Conv`;
and `Conv1D`/`Conv2D`/`Conv3D` that only fix the rank.

`Conv(rank, filters, kernel_size)` builds a kernel of shape
`kernel_size + (input_channels // groups, filters)` — Keras's layout — and computes
`activation(ops.conv(inputs, kernel) + bias)`. The rest of the family (`ConvTranspose`,
`DepthwiseConv`, `SeparableConv`) derives from `BaseConv` too and computes through the same
general convolution.
"""

from __future__ import annotations

import numbers

from rankconv import activations, constraints, initializers, objects, ops, regularizers, utils
from rankconv.layers.layer import Layer

_SPATIAL_NAMES = {1: "steps", 2: "rows, cols", 3: "dim1, dim2, dim3"}


def check_count(where: str, name: str, value) -> int:
    """`value` as a positive int, or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{where}: `{name}` must be a positive integer; received {name}={value!r}.")
    return int(value)


class BaseConv(Layer):
    """What every convolution layer shares, for any `rank >= 1`: the window (kernel size,
    strides, padding, dilations), the data format, the bias and the activation; the input checks
    and the output-shape arithmetic. Subclasses make their kernels and compute.

    inputs: (batch, *spatial, channels) ("channels_last", the default) or
    (batch, channels, *spatial) ("channels_first").
    """

    def __init__(
        self,
        rank,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        activation=None,
        use_bias=True,
        bias_initializer="zeros",
        bias_regularizer=None,
        activity_regularizer=None,
        bias_constraint=None,
        name=None,
        dtype=None,
        trainable=True,
        paddings=("valid", "same"),
    ):
        if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or rank < 1:
            raise ValueError(f"`rank` must be an integer >= 1; received rank={rank!r}.")
        self.rank = int(rank)
        super().__init__(name=name, dtype=dtype, trainable=trainable, activity_regularizer=activity_regularizer)
        where = self._where
        try:
            self.kernel_size = utils.normalize_tuple(kernel_size, self.rank, "kernel_size")
            self.strides = utils.normalize_tuple(strides, self.rank, "strides")
            self.dilation_rate = utils.normalize_tuple(dilation_rate, self.rank, "dilation_rate")
            self.data_format = utils.normalize_data_format(data_format)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if not isinstance(padding, str) or padding.lower() not in paddings:
            raise ValueError(
                f"{where}: `padding` must be one of {paddings} (case-insensitive), as in Keras; received "
                f"padding={padding!r}."
                + ("" if isinstance(padding, str) else " Explicit pairs are available in rankconv.ops.conv.")
            )
        self.padding = padding.lower()
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{where}: `strides > 1` cannot be combined with `dilation_rate > 1` in a layer, as in Keras "
                f"(its files would not load there); received strides={self.strides}, "
                f"dilation_rate={self.dilation_rate}. rankconv.ops.conv accepts the combination."
            )
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.bias_regularizer = regularizers.get(bias_regularizer, "bias_regularizer")
        self.bias_constraint = constraints.get(bias_constraint, "bias_constraint")
        self.bias = None

    # -- shapes -----------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _expected_layout(self) -> str:
        spatial = _SPATIAL_NAMES.get(self.rank, ", ".join(f"dim{i + 1}" for i in range(self.rank)))
        if self.data_format == "channels_last":
            return f"(batch, {spatial}, channels)"
        return f"(batch, channels, {spatial})"

    def _input_channels(self, shape) -> int:
        """The channels of an input of `shape`, after checking its axes (a clear error otherwise)."""
        shape = tuple(shape)
        if len(shape) != self.rank + 2:
            hint = ""
            if len(shape) == self.rank + 1:
                hint = (
                    " It looks like a single sample without the batch axis: add one with "
                    "`x[np.newaxis]` (or `np.expand_dims(x, 0)`)."
                )
            raise ValueError(
                f"{self._where} expects inputs with {self.rank + 2} axes, {self._expected_layout()}; "
                f"received shape {shape}.{hint}"
            )
        channels = shape[self._channel_axis]
        if channels is None:
            raise ValueError(f"{self._where}: the channel axis of the input must be known; received shape {shape}.")
        return channels

    def _built_for(self, shape, expected: int) -> None:
        channels = tuple(shape)[self._channel_axis]
        if self.built and channels != expected:
            raise ValueError(
                f"{self._where} was built for inputs with {expected} channels on axis {self._channel_axis}; "
                f"received shape {tuple(shape)}."
            )

    def _spatial(self, shape):
        shape = tuple(shape)
        return shape[1:-1] if self.data_format == "channels_last" else shape[2:]

    def _output_spatial(self, spatial) -> tuple:
        """The output's spatial shape for an input's (a convolution's arithmetic; the transposed
        convolution has its own)."""
        return tuple(
            utils.conv_output_length(n, k, self.padding, s, d)
            for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate)
        )

    def _output_channels(self, channels: int) -> int:
        raise NotImplementedError

    def _empty_output(self, axis: int, length: int) -> str:
        """Why spatial axis `axis` (of `length` cells) leaves no output cells."""
        return (
            f"the kernel (size {self.kernel_size[axis]}, dilation {self.dilation_rate[axis]}) is larger than spatial "
            f"axis {axis} of the input ({length}) with padding='{self.padding}'. Use padding='same' or a longer input"
        )

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        spatial = self._output_spatial(self._spatial(input_shape))
        for axis, (n, out) in enumerate(zip(self._spatial(input_shape), spatial)):
            if out is not None and out <= 0:
                raise ValueError(f"{self._where}: {self._empty_output(axis, n)}; input shape {tuple(input_shape)}.")
        batch = tuple(input_shape)[0]
        filters = self._output_channels(self._input_channels(input_shape))
        if self.data_format == "channels_last":
            return (batch, *spatial, filters)
        return (batch, filters, *spatial)

    # -- computation ------------------------------------------------------------------------

    @property
    def _options(self) -> dict:
        return dict(
            strides=self.strides, padding=self.padding, data_format=self.data_format, dilation_rate=self.dilation_rate
        )

    def _bias_and_activation(self, outputs):
        if self.use_bias:
            shape = [1] * len(outputs.shape)
            shape[self._channel_axis] = self.bias.shape[0]
            outputs = ops.add(outputs, ops.reshape(self.bias, shape))
        return self.activation(outputs)

    def _add_bias(self, units: int) -> None:
        if self.use_bias:
            self.bias = self.add_weight(
                (units,),
                self.bias_initializer,
                "bias",
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    # -- configuration ----------------------------------------------------------------------

    def _window_config(self) -> dict:
        return {
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
        }

    def _tail_config(self) -> dict:
        return {"activation": activations.serialize(self.activation), "use_bias": self.use_bias}

    def _weights_config(self, *kernels: str) -> dict:
        """Initializers, regularizers and constraints of the named kernels and the bias, in Keras's
        order (`kernel_initializer`, `bias_initializer`, `kernel_regularizer`, ...)."""
        config = {}
        for kind, extra in (("initializer", ()), ("regularizer", ("activity_regularizer",)), ("constraint", ())):
            for key in (*(f"{k}_{kind}" for k in (*kernels, "bias")), *extra):
                config[key] = objects.serialize(getattr(self, key))
        return config


class Conv(BaseConv):
    """N-d convolution layer for any `rank >= 1` (Keras's `BaseConv`, made public).

    inputs: (batch, *spatial, channels) ("channels_last", the default) or
    (batch, channels, *spatial) ("channels_first"); outputs likewise with `filters` channels.
    """

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        name=None,
        dtype=None,
        trainable=True,
        lora_rank=None,
        lora_alpha=None,
    ):
        if lora_rank or lora_alpha:
            raise ValueError("LoRA (`lora_rank`, `lora_alpha`) is not supported.")
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
            paddings=("valid", "same", "causal") if rank == 1 else ("valid", "same"),
        )
        where = self._where
        self.filters = check_count(where, "filters", filters)
        self.groups = check_count(where, "groups", groups)
        if self.filters % self.groups:
            raise ValueError(
                f"{where}: `filters` must be divisible by `groups`; received filters={filters}, groups={groups}."
            )
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.kernel_regularizer = regularizers.get(kernel_regularizer, "kernel_regularizer")
        self.kernel_constraint = constraints.get(kernel_constraint, "kernel_constraint")
        self.kernel = None

    # -- shapes -----------------------------------------------------------------------------

    def check_input_shape(self, shape) -> None:
        channels = self._input_channels(shape)
        if channels % self.groups:
            raise ValueError(
                f"{self._where}: the input's {channels} channels must be divisible by groups={self.groups} "
                f"(input shape {tuple(shape)})."
            )
        if self.kernel is not None:
            self._built_for(shape, self.kernel.shape[-2] * self.groups)

    def _output_channels(self, channels: int) -> int:
        return self.filters

    # -- weights ----------------------------------------------------------------------------

    def build(self, input_shape) -> None:
        self.check_input_shape(input_shape)
        channels = tuple(input_shape)[self._channel_axis]
        self.add_kernel_and_bias(self.kernel_size + (channels // self.groups, self.filters), self.filters)
        super().build(input_shape)

    # -- computation ------------------------------------------------------------------------

    def call(self, inputs, training=None):
        self.compute_output_shape(inputs.shape)  # a clear error when the kernel does not fit
        fused = activations.name_of(self.activation)
        if fused in ops.FUSED_ACTIVATIONS:  # bias and activation in place on the convolution's output
            return ops.fused_conv(inputs, self.kernel, self.bias if self.use_bias else None, fused, **self._options)
        return self._bias_and_activation(ops.conv(inputs, self.kernel, **self._options))

    # -- configuration ----------------------------------------------------------------------

    def get_config(self) -> dict:
        config = super().get_config()
        if type(self) is Conv:
            config["rank"] = self.rank
        config.update({"filters": self.filters, **self._window_config(), "groups": self.groups, **self._tail_config()})
        config.update(self._weights_config("kernel"))
        return config


class Conv1D(Conv):
    """1-D convolution over (batch, steps, channels): an n-gram detector over a sequence of vectors.

    `padding="causal"` pads `dilation_rate * (kernel_size - 1)` steps before the sequence, so
    `output[t]` sees only `input[:t + 1]` (WaveNet's dilated causal convolutions).
    """

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, groups=1, **kwargs
    ):
        super().__init__(1, filters, kernel_size, strides, padding, data_format, dilation_rate, groups, **kwargs)


class Conv2D(Conv):
    """2-D convolution over (batch, rows, cols, channels)."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, groups=1, **kwargs
    ):
        super().__init__(2, filters, kernel_size, strides, padding, data_format, dilation_rate, groups, **kwargs)


class Conv3D(Conv):
    """3-D convolution over (batch, dim1, dim2, dim3, channels)."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, groups=1, **kwargs
    ):
        super().__init__(3, filters, kernel_size, strides, padding, data_format, dilation_rate, groups, **kwargs)


# Keras's aliases
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D

__all__ = ["Conv", "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D"]
