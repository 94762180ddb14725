"""Core layers: Input, Dense, Embedding, Activation, Rescaling, Dropout and its spatial forms."""

from __future__ import annotations

import numbers

import numpy as np

from rankconv import activations, constraints, initializers, objects, ops, regularizers, utils
from rankconv.layers.layer import KerasTensor, Layer, Node, dtype_policy, normalize_dtype

INPUT_DTYPES = ("float32", "float64", "int32", "int64", "int16", "int8", "uint8", "bool")


class InputLayer(Layer):
    """The entry of a functional model: produces a symbolic tensor of `batch_shape`."""

    def __init__(
        self,
        shape=None,
        batch_size=None,
        dtype=None,
        sparse=None,
        batch_shape=None,
        input_tensor=None,
        optional=False,
        name=None,
        ragged=None,
        **kwargs,
    ):
        super().__init__(name=name)
        if sparse or ragged:
            raise ValueError("rankconv has no sparse or ragged tensors; `sparse` and `ragged` must be False.")
        if input_tensor is not None:
            raise ValueError("`input_tensor` is not supported; pass `shape` or `batch_shape`.")
        if shape is not None and batch_shape is not None:
            raise ValueError("Give `shape` or `batch_shape`, not both.")
        if batch_shape is None:
            if shape is None:
                raise ValueError("InputLayer needs `shape` (without the batch axis) or `batch_shape`.")
            if isinstance(shape, numbers.Integral):
                shape = (shape,)
            batch_shape = (batch_size, *shape)
        batch_shape = tuple(batch_shape)
        for d in batch_shape:
            if d is not None and (not isinstance(d, numbers.Integral) or d <= 0):
                raise ValueError(f"Input shapes must hold positive ints or None; received batch_shape={batch_shape}.")
        self.batch_shape = tuple(None if d is None else int(d) for d in batch_shape)
        self.dtype = normalize_dtype(dtype, INPUT_DTYPES)
        self.optional = bool(optional)
        self.built = True
        self.output = KerasTensor(self.batch_shape, self.dtype, name=self.name)
        self.output.node = Node(self, [], [self.output], {})

    def call(self, inputs):
        return inputs

    def get_config(self) -> dict:
        return {
            "batch_shape": self.batch_shape,
            "dtype": self.dtype,
            "sparse": False,
            "ragged": False,
            "name": self.name,
            "optional": self.optional,
        }


def Input(
    shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None, optional=False
):  # noqa: N802 - Keras's name
    """A symbolic input of `shape` (without the batch axis), for functional models."""
    layer = InputLayer(
        shape=shape,
        batch_size=batch_size,
        dtype=dtype,
        sparse=sparse,
        batch_shape=batch_shape,
        input_tensor=tensor,
        optional=optional,
        name=name,
    )
    return layer.output


class Dense(Layer):
    """`activation(inputs @ kernel + bias)` on the last axis: (…, input_dim) → (…, units)."""

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        lora_rank=None,
        lora_alpha=None,
        quantization_config=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
            raise ValueError(f"Dense '{self.name}': `units` must be a positive integer; received units={units!r}.")
        if lora_rank or quantization_config:
            raise ValueError(f"Dense '{self.name}': LoRA and quantization are not supported.")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.kernel_regularizer = regularizers.get(kernel_regularizer, "kernel_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, "bias_regularizer")
        self.kernel_constraint = constraints.get(kernel_constraint, "kernel_constraint")
        self.bias_constraint = constraints.get(bias_constraint, "bias_constraint")
        self.kernel = self.bias = None
        self.supports_masking = True  # as Keras: the mask passes through a Dense layer

    def check_input_shape(self, shape):
        if len(shape) < 2 or shape[-1] is None:
            raise ValueError(
                f"Dense '{self.name}' expects inputs of shape (batch, …, features) with a known last axis; "
                f"received shape {tuple(shape)}."
            )
        if self.kernel is not None and shape[-1] != self.kernel.shape[0]:
            raise ValueError(
                f"Dense '{self.name}' was built for {self.kernel.shape[0]} input features; received shape {tuple(shape)}."
            )

    def build(self, input_shape):
        self.add_kernel_and_bias((input_shape[-1], self.units), self.units)
        super().build(input_shape)

    def call(self, inputs):
        outputs = ops.matmul(inputs, self.kernel)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": objects.serialize(self.kernel_initializer),
                "bias_initializer": objects.serialize(self.bias_initializer),
                "kernel_regularizer": objects.serialize(self.kernel_regularizer),
                "bias_regularizer": objects.serialize(self.bias_regularizer),
                "kernel_constraint": objects.serialize(self.kernel_constraint),
                "bias_constraint": objects.serialize(self.bias_constraint),
                "quantization_config": None,
            }
        )
        return config


class Embedding(Layer):
    """Integer ids (batch, …) → vectors (batch, …, output_dim): rows of `embeddings` (input_dim, output_dim).

    With `mask_zero=True`, id 0 is padding: the layer's mask is `ids != 0`, so `input_dim` must count it.
    """

    _casts_inputs = False

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        weights=None,
        lora_rank=None,
        lora_alpha=None,
        quantization_config=None,
        activity_regularizer=None,
        input_length=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for argument, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(
                    f"Embedding '{self.name}': `{argument}` must be a positive integer; received {value!r}."
                )
        if lora_rank or quantization_config:
            raise ValueError(f"Embedding '{self.name}': LoRA and quantization are not supported.")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer, "embeddings_initializer")
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer, "embeddings_regularizer")
        self.embeddings_constraint = constraints.get(embeddings_constraint, "embeddings_constraint")
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.embeddings = None
        if weights is not None:
            self.build(None)
            self.set_weights(weights if isinstance(weights, (list, tuple)) else [weights])

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            (self.input_dim, self.output_dim),
            self.embeddings_initializer,
            "embeddings",
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
        )
        super().build(input_shape if input_shape is not None else (None,))

    def _ids(self, inputs):
        ids = np.asarray(ops.stop_gradient(inputs))
        if ids.dtype.kind == "f":
            if not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
                raise TypeError(f"Embedding '{self.name}' expects integer ids; received non-integral floats.")
            ids = ids.astype(np.int64)
        elif ids.dtype.kind not in "iub":
            raise TypeError(f"Embedding '{self.name}' expects integer ids; received dtype {ids.dtype}.")
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(
                f"Embedding '{self.name}' has input_dim={self.input_dim}, so ids must lie in [0, {self.input_dim - 1}]; "
                f"received ids from {ids.min()} to {ids.max()}."
            )
        return ids

    def call(self, inputs):
        return ops.take(self.embeddings, self._ids(inputs), axis=0)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return np.asarray(ops.stop_gradient(inputs)) != 0

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": objects.serialize(self.embeddings_initializer),
                "embeddings_regularizer": objects.serialize(self.embeddings_regularizer),
                "activity_regularizer": objects.serialize(self.activity_regularizer),
                "embeddings_constraint": objects.serialize(self.embeddings_constraint),
                "mask_zero": self.mask_zero,
                "quantization_config": None,
            }
        )
        return config


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class Rescaling(Layer):
    """`inputs * scale + offset`, in training and inference alike (Keras's `Rescaling`).

    `scale` and `offset` are numbers or arrays (nested lists) that broadcast against the input,
    channels last (one value per channel is a 1-D array). Integer inputs are cast to the layer's
    dtype first.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _check_factor(self, scale, "scale")
        self.offset = _check_factor(self, offset, "offset")
        self.supports_masking = True

    def _check_broadcast(self, shape):
        for name in ("scale", "offset"):
            factor = np.shape(getattr(self, name))
            try:
                np.broadcast_shapes(tuple(1 if n is None else n for n in shape), factor)
            except ValueError:
                raise ValueError(
                    f"Rescaling '{self.name}': `{name}` of shape {factor} does not broadcast against the input's "
                    f"shape {tuple(shape)} (channels last: one value per channel has shape ({shape[-1]},))."
                ) from None
            if len(factor) > len(shape):
                raise ValueError(
                    f"Rescaling '{self.name}': `{name}` has {len(factor)} axes, more than the input's {len(shape)}."
                )

    def compute_output_shape(self, input_shape):
        self._check_broadcast(input_shape)
        return tuple(input_shape)

    def call(self, inputs):
        self._check_broadcast(ops.shape(inputs))
        outputs = ops.multiply(inputs, np.asarray(self.scale, dtype=self.dtype))
        return ops.add(outputs, np.asarray(self.offset, dtype=self.dtype)) if np.any(self.offset) else outputs

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "offset": self.offset})
        return config

    @classmethod
    def from_config(cls, config):
        # Keras serialises a NumPy scale or offset as {"class_name": "__numpy__", "config": {"value": …}}
        config = dict(config)
        for name in ("scale", "offset"):
            value = config.get(name)
            if isinstance(value, dict) and value.get("class_name") == "__numpy__":
                config[name] = (value.get("config") or {}).get("value")
        return cls(**config)


def _check_factor(layer, value, name):
    """A number (kept as a float) or an array of numbers (kept as nested lists, as Keras serialises it)."""
    try:
        array = np.asarray(value)
        bad = array.dtype.kind not in "iuf" or array.size == 0
    except (TypeError, ValueError):
        bad = True
    if bad:
        raise TypeError(
            f"{type(layer).__name__} '{layer.name}': `{name}` must be a number or an array of numbers; "
            f"received {name}={value!r}."
        )
    array = array.astype(np.float64)
    return float(array) if array.ndim == 0 else array.tolist()


def _check_rate(layer, rate):
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}': `rate` must be a number in [0, 1]; received rate={rate!r}."
        )
    return float(rate)


class Dropout(Layer):
    """In training, zero each input with probability `rate` and scale the rest by 1 / (1 - rate).

    `noise_shape` (None entries take the input's size) shares one decision along axes of size 1.
    With `seed`, the layer draws from its own generator; otherwise from the global one
    (`utils.set_random_seed`).
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate(self, rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._generator = None if seed is None else np.random.default_rng(seed)
        self.supports_masking = True

    def _noise_shape(self, shape):
        if self.noise_shape is None:
            return shape
        return tuple(n if m is None else m for n, m in zip(shape, self.noise_shape))

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            return ops.multiply(inputs, 0)
        shape = ops.shape(inputs)
        generator = self._generator or utils.random_generator()
        keep = generator.random(self._noise_shape(shape)) >= self.rate
        scale = np.asarray(keep / (1 - self.rate), dtype=self.dtype)
        return ops.multiply(inputs, scale)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape})
        return config


class _SpatialDropout(Dropout):
    """Drops whole channels: one decision per (sample, channel), shared across the spatial axes."""

    rank = 1

    def __init__(self, rate, seed=None, name=None, dtype=None, data_format=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        self.data_format = utils.normalize_data_format(data_format)

    def _noise_shape(self, shape):
        if self.data_format == "channels_last":
            return (shape[0], *([1] * self.rank), shape[-1])
        return (shape[0], shape[1], *([1] * self.rank))

    def check_input_shape(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects inputs with {self.rank + 2} axes; received {tuple(shape)}."
            )

    def get_config(self):
        # Keras writes this layer's config without `trainable` and with a plain dtype string
        config = {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": self.dtype}
        if self.rank > 1:
            config["data_format"] = self.data_format
        return config


class SpatialDropout1D(_SpatialDropout):
    rank = 1

    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)


class SpatialDropout2D(_SpatialDropout):
    rank = 2


class SpatialDropout3D(_SpatialDropout):
    rank = 3


__all__ = [
    "Activation",
    "Dense",
    "Dropout",
    "Embedding",
    "Input",
    "InputLayer",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "dtype_policy",
]
