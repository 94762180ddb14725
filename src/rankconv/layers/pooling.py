"""Pooling layers, rank-generic the way convolution is: `Pooling(rank, "max" | "average", …)`."""

from __future__ import annotations

from rankconv import ops, utils
from rankconv.layers.layer import Layer


class Pooling(Layer):
    """Max or average over windows of `pool_size` sliding by `strides` (default: `pool_size`).

    "same" padding keeps `ceil(n / stride)` outputs; padded cells never win a max and are left out
    of an average, as in Keras.
    """

    rank = 1
    mode = "max"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        try:
            self.pool_size = utils.normalize_tuple(pool_size, self.rank, "pool_size")
            self.strides = self.pool_size if strides is None else utils.normalize_tuple(strides, self.rank, "strides")
            self.padding = utils.normalize_padding(padding, allow_causal=False)
            self.data_format = utils.normalize_data_format(data_format)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if not isinstance(self.padding, str):
            raise ValueError(f"{where}: `padding` must be 'valid' or 'same'; received padding={padding!r}.")

    def _spatial(self, shape):
        return tuple(shape)[1:-1] if self.data_format == "channels_last" else tuple(shape)[2:]

    def check_input_shape(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects inputs with {self.rank + 2} axes; received shape {tuple(shape)}."
            )

    def compute_output_shape(self, input_shape):
        spatial = []
        for axis, (n, k, s) in enumerate(zip(self._spatial(input_shape), self.pool_size, self.strides)):
            out = utils.conv_output_length(n, k, self.padding, s)
            if out is not None and out <= 0:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': the pooling window ({k}) is larger than spatial axis {axis} "
                    f"({n}) with padding='{self.padding}'; input shape {tuple(input_shape)}."
                )
            spatial.append(out)
        batch, shape = input_shape[0], tuple(input_shape)
        if self.data_format == "channels_last":
            return (batch, *spatial, shape[-1])
        return (batch, shape[1], *spatial)

    def call(self, inputs):
        pool = ops.max_pool if self.mode == "max" else ops.average_pool
        return pool(inputs, self.pool_size, self.strides, self.padding, self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": self.pool_size,
                "padding": self.padding,
                "strides": self.strides,
                "data_format": self.data_format,
            }
        )
        return config


def _pooling_class(name, rank, mode, default_pool_size):
    def __init__(self, pool_size=default_pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        if pool_size is None:
            raise TypeError(f"{name} needs a `pool_size`.")
        Pooling.__init__(self, pool_size, strides, padding, data_format, **kwargs)

    doc = f"{'Max' if mode == 'max' else 'Average'} pooling over {rank} spatial axes."
    return type(
        name, (Pooling,), {"rank": rank, "mode": mode, "__init__": __init__, "__doc__": doc, "__module__": __name__}
    )


MaxPooling1D = _pooling_class("MaxPooling1D", 1, "max", 2)
MaxPooling2D = _pooling_class("MaxPooling2D", 2, "max", (2, 2))
MaxPooling3D = _pooling_class("MaxPooling3D", 3, "max", (2, 2, 2))
AveragePooling1D = _pooling_class("AveragePooling1D", 1, "average", None)
AveragePooling2D = _pooling_class("AveragePooling2D", 2, "average", None)
AveragePooling3D = _pooling_class("AveragePooling3D", 3, "average", None)


class GlobalPooling(Layer):
    """Max or average over all spatial axes: (batch, *spatial, channels) → (batch, channels)."""

    rank = 1
    mode = "max"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = utils.normalize_data_format(data_format)
        self.keepdims = bool(keepdims)
        self.supports_masking = self.mode == "average" and self.rank == 1

    def _axes(self):
        return tuple(range(1, self.rank + 1)) if self.data_format == "channels_last" else tuple(range(2, self.rank + 2))

    def check_input_shape(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects inputs with {self.rank + 2} axes; received shape {tuple(shape)}."
            )

    def call(self, inputs, mask=None):
        axes = self._axes()
        if self.mode == "max":
            return ops.max(inputs, axis=axes, keepdims=self.keepdims)
        if mask is None:
            return ops.mean(inputs, axis=axes, keepdims=self.keepdims)
        # masked steps are left out of the average (GlobalAveragePooling1D, as Keras)
        weights = ops.cast(ops.expand_dims(mask, -1 if self.data_format == "channels_last" else 1), inputs.dtype)
        total = ops.sum(ops.multiply(inputs, weights), axis=axes, keepdims=self.keepdims)
        return ops.divide(total, ops.sum(weights, axis=axes, keepdims=self.keepdims))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in self._axes():
            shape[axis] = 1
        if self.keepdims:
            return tuple(shape)
        return tuple(d for i, d in enumerate(shape) if i not in self._axes())

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


def _global_class(name, rank, mode):
    doc = f"Global {'max' if mode == 'max' else 'average'} pooling over {rank} spatial axes."
    return type(name, (GlobalPooling,), {"rank": rank, "mode": mode, "__doc__": doc, "__module__": __name__})


GlobalMaxPooling1D = _global_class("GlobalMaxPooling1D", 1, "max")
GlobalMaxPooling2D = _global_class("GlobalMaxPooling2D", 2, "max")
GlobalMaxPooling3D = _global_class("GlobalMaxPooling3D", 3, "max")
GlobalAveragePooling1D = _global_class("GlobalAveragePooling1D", 1, "average")
GlobalAveragePooling2D = _global_class("GlobalAveragePooling2D", 2, "average")
GlobalAveragePooling3D = _global_class("GlobalAveragePooling3D", 3, "average")

# Keras's short names: the same classes (a file always names the long one)
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
)
