"""Transposed convolution layers: the rank-generic `ConvTranspose` and `Conv1DTranspose`/
`Conv2DTranspose`/`Conv3DTranspose`, Keras 3's arguments, kernel layout and output arithmetic.

A transposed convolution spreads its input `strides` apart and convolves it at stride 1 with the
flipped kernel (`ops.conv_transpose`): the same general convolution, with input dilation. It maps
a strided convolution's output shape back to its input's, as a decoder or a U-Net's up path does.
The kernel has Keras's layout `kernel_size + (filters, input_channels)`.
"""

from __future__ import annotations

from rankconv import constraints, initializers, ops, regularizers, utils
from rankconv.layers.conv import BaseConv, check_count


class ConvTranspose(BaseConv):
    """N-d transposed convolution for any `rank >= 1` (Keras's `BaseConvTranspose`, made public).

    Output length per axis ("valid"): `(n - 1) * strides + span + output_padding`, where `span`
    is the dilated kernel size and `output_padding` defaults to `max(span, strides) - span`;
    ("same"): `n * strides`, or `(n - 1) * strides + span % 2 + output_padding` when given.
    """

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        output_padding=None,
        data_format=None,
        dilation_rate=1,
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
        where = self._where
        self.filters = check_count(where, "filters", filters)
        self.output_padding = None
        if output_padding is not None:
            try:
                self.output_padding = utils.normalize_tuple(
                    output_padding, self.rank, "output_padding", allow_zero=True
                )
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            for axis, (extra, stride) in enumerate(zip(self.output_padding, self.strides)):
                if extra >= stride:
                    raise ValueError(
                        f"{where}: `output_padding` must be smaller than `strides` on every axis, as in Keras; on "
                        f"axis {axis} it is {extra} with strides {stride} (output_padding={self.output_padding}, "
                        f"strides={self.strides})."
                    )
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.kernel_regularizer = regularizers.get(kernel_regularizer, "kernel_regularizer")
        self.kernel_constraint = constraints.get(kernel_constraint, "kernel_constraint")
        self.kernel = None

    # -- shapes -----------------------------------------------------------------------------

    def check_input_shape(self, shape) -> None:
        self._input_channels(shape)
        if self.kernel is not None:
            self._built_for(shape, self.kernel.shape[-1])

    def _output_spatial(self, spatial) -> tuple:
        extras = self.output_padding or (None,) * self.rank
        return tuple(
            utils.conv_transpose_output_length(n, k, self.padding, extra, s, d)
            for n, k, extra, s, d in zip(spatial, self.kernel_size, extras, self.strides, self.dilation_rate)
        )

    def _output_channels(self, channels: int) -> int:
        return self.filters

    def _empty_output(self, axis: int, length: int) -> str:
        extra = self.output_padding[axis] if self.output_padding else None
        return (
            f"spatial axis {axis} of the input ({length}) gives an empty output: with padding='same' and "
            f"output_padding={extra}, Keras's length is (n - 1) * strides + span % 2 + output_padding = 0 for the "
            f"even kernel span {utils.effective_kernel_size(self.kernel_size[axis], self.dilation_rate[axis])}. "
            "Use a larger output_padding, padding='valid' or a longer input"
        )

    # -- weights and computation ----------------------------------------------------------------

    def build(self, input_shape) -> None:
        self.check_input_shape(input_shape)
        channels = tuple(input_shape)[self._channel_axis]
        self.add_kernel_and_bias(self.kernel_size + (self.filters, channels), self.filters)
        super().build(input_shape)

    def call(self, inputs, training=None):
        self.compute_output_shape(inputs.shape)
        outputs = ops.conv_transpose(inputs, self.kernel, output_padding=self.output_padding, **self._options)
        return self._bias_and_activation(outputs)

    # -- configuration ----------------------------------------------------------------------

    def get_config(self) -> dict:
        config = super().get_config()
        if type(self) is ConvTranspose:
            config["rank"] = self.rank
        config.update({"filters": self.filters, **self._window_config(), "output_padding": self.output_padding})
        config.update({**self._tail_config(), **self._weights_config("kernel")})
        return config


class Conv1DTranspose(ConvTranspose):
    """1-D transposed convolution over (batch, steps, channels)."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None, dilation_rate=1,
        **kwargs,
    ):  # fmt: skip
        super().__init__(
            1, filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate, **kwargs
        )


class Conv2DTranspose(ConvTranspose):
    """2-D transposed convolution over (batch, rows, cols, channels): a decoder's upsampling step."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None, dilation_rate=1,
        **kwargs,
    ):  # fmt: skip
        super().__init__(
            2, filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate, **kwargs
        )


class Conv3DTranspose(ConvTranspose):
    """3-D transposed convolution over (batch, dim1, dim2, dim3, channels). As in Keras,
    `data_format` comes before `output_padding` among its positional arguments."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", data_format=None, output_padding=None, dilation_rate=1,
        **kwargs,
    ):  # fmt: skip
        super().__init__(
            3, filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate, **kwargs
        )


# Keras's aliases
Convolution1DTranspose, Convolution2DTranspose, Convolution3DTranspose = (
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
)
