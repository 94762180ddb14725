"""Activation layers with arguments: ReLU, LeakyReLU, PReLU (a trainable slope), ELU and Softmax.

Each is Keras 3's layer of the same name: the same arguments, defaults (LeakyReLU's slope is 0.3,
not `activations.leaky_relu`'s 0.2) and configs; all are differentiable through `rankconv.ops`.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from rankconv import constraints, initializers, objects, ops, regularizers
from rankconv.layers.layer import Layer


def _check_number(layer, name, value, minimum=None, allow_none=False):
    """A real number (not a bool), at least `minimum` when given; kept as the caller wrote it."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        expected = "None or a number" if allow_none else "a number"
        raise TypeError(
            f"{type(layer).__name__} '{layer.name}': `{name}` must be {expected}; received {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    if not np.isfinite(float(value)) or (minimum is not None and value < minimum):
        requirement = f"a finite number >= {minimum}" if minimum is not None else "a finite number"
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}': `{name}` must be {requirement}; received {name}={value!r}."
        )
    return value if type(value) in (int, float) else float(value)


class ReLU(Layer):
    """`max(x, 0)` with Keras's options: values at or below `threshold` become
    `negative_slope * (x - threshold)`, and outputs are capped at `max_value`."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _check_number(self, "max_value", max_value, minimum=0, allow_none=True)
        self.negative_slope = _check_number(self, "negative_slope", negative_slope, minimum=0)
        self.threshold = _check_number(self, "threshold", threshold, minimum=0)
        self.supports_masking = True

    def call(self, inputs):
        return ops.relu(inputs, negative_slope=self.negative_slope, max_value=self.max_value, threshold=self.threshold)

    def get_config(self):
        config = super().get_config()
        config.update({"max_value": self.max_value, "negative_slope": self.negative_slope, "threshold": self.threshold})
        return config


class LeakyReLU(Layer):
    """`x` where positive, `negative_slope * x` elsewhere (Keras 3's default slope: 0.3)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            # Keras 2's name, which Keras 3 still accepts with a warning
            negative_slope = kwargs.pop("alpha")
            warnings.warn("LeakyReLU: `alpha` is deprecated; use `negative_slope`.", stacklevel=2)
        super().__init__(**kwargs)
        self.negative_slope = _check_number(self, "negative_slope", negative_slope, minimum=0)
        self.supports_masking = True

    def call(self, inputs):
        return ops.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class PReLU(Layer):
    """`x` where positive, `alpha * x` elsewhere, with `alpha` a trainable weight of the input's shape
    past the batch axis; `shared_axes` (axes counted with the batch as 0) share one slope, e.g.
    `shared_axes=[1, 2]` gives one slope per channel of an image."""

    def __init__(
        self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer, "alpha_initializer")
        self.alpha_regularizer = regularizers.get(alpha_regularizer, "alpha_regularizer")
        self.alpha_constraint = constraints.get(alpha_constraint, "alpha_constraint")
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            for axis in axes:
                if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or axis < 1:
                    raise ValueError(
                        f"PReLU '{self.name}': `shared_axes` must hold axis numbers >= 1 (axis 0 is the batch); "
                        f"received shared_axes={shared_axes!r}."
                    )
            self.shared_axes = [int(axis) for axis in axes]
        self.alpha = None
        self.supports_masking = True

    def _alpha_shape(self, shape):
        shape = tuple(shape)
        shared = set(self.shared_axes or ())
        if shared and max(shared) >= len(shape):
            raise ValueError(
                f"PReLU '{self.name}': `shared_axes` {self.shared_axes} name axes beyond the input's last axis "
                f"({len(shape) - 1}); received shape {shape}."
            )
        alpha_shape = tuple(1 if axis in shared else size for axis, size in enumerate(shape) if axis > 0)
        if None in alpha_shape:
            raise ValueError(
                f"PReLU '{self.name}' needs known sizes for the axes past the batch that `shared_axes` does not "
                f"share (one slope per entry); received shape {shape} with shared_axes={self.shared_axes}."
            )
        return alpha_shape

    def check_input_shape(self, shape):
        if not isinstance(shape, tuple) or len(shape) < 2:
            raise ValueError(
                f"PReLU '{self.name}' expects inputs with a batch axis and at least one more; received {shape!r}."
            )
        alpha_shape = self._alpha_shape(shape)
        if self.alpha is not None and alpha_shape != tuple(self.alpha.shape):
            raise ValueError(
                f"PReLU '{self.name}' was built for inputs of shape {(None, *self.alpha.shape)} (1: shared axes); "
                f"received shape {shape}."
            )

    def build(self, input_shape):
        self.alpha = self.add_weight(
            self._alpha_shape(input_shape),
            self.alpha_initializer,
            "alpha",
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )
        super().build(input_shape)

    def call(self, inputs):
        positive = ops.relu(inputs)
        negative = ops.multiply(ops.negative(self.alpha), ops.relu(ops.negative(inputs)))
        return ops.add(positive, negative)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha_initializer": objects.serialize(self.alpha_initializer),
                "alpha_regularizer": objects.serialize(self.alpha_regularizer),
                "alpha_constraint": objects.serialize(self.alpha_constraint),
                "shared_axes": None if self.shared_axes is None else list(self.shared_axes),
            }
        )
        return config


class ELU(Layer):
    """`x` where positive, `alpha * (exp(x) - 1)` elsewhere."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _check_number(self, "alpha", alpha)
        self.supports_masking = True

    def call(self, inputs):
        return ops.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(Layer):
    """Softmax over `axis` (an int, or a list of axes normalised together).

    Called with a `mask` (True, or > 0.5, where an entry counts; it broadcasts against the input
    from the last axis), masked entries get probability 0, as in Keras.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        valid = not isinstance(axis, bool) and isinstance(axis, numbers.Integral)
        if isinstance(axis, (list, tuple)):
            valid = bool(axis) and all(not isinstance(a, bool) and isinstance(a, numbers.Integral) for a in axis)
            axis = type(axis)(int(a) for a in axis) if valid else axis
        elif valid:
            axis = int(axis)
        if not valid:
            raise ValueError(
                f"Softmax '{self.name}': `axis` must be an int or a non-empty list of ints; received axis={axis!r}."
            )
        self.axis = axis
        self.supports_masking = True

    def _axes(self):
        return list(self.axis) if isinstance(self.axis, (list, tuple)) else [self.axis]

    def check_input_shape(self, shape):
        rank = len(shape) if isinstance(shape, tuple) else 0
        bad = [a for a in self._axes() if not -rank <= a < rank]
        if bad or not isinstance(shape, tuple):
            raise ValueError(
                f"Softmax '{self.name}': `axis` {self.axis} is out of range for inputs of shape {shape!r}."
            )

    def call(self, inputs, mask=None):
        if mask is not None:
            mask = self._check_mask(np.asarray(ops.stop_gradient(mask)), ops.shape(inputs))
            inputs = ops.where(mask, inputs, -1e9)
        axes = self._axes()
        if len(axes) > 1:
            outputs = ops.exp(ops.subtract(inputs, ops.logsumexp(inputs, axis=tuple(axes), keepdims=True)))
        else:
            outputs = ops.softmax(inputs, axis=axes[0])
        if mask is not None:
            outputs = ops.where(mask, outputs, 0.0)
        return outputs

    def _check_mask(self, mask, shape):
        broadcasts = mask.ndim <= len(shape) and all(
            m in (1, n) for m, n in zip(reversed(mask.shape), reversed(tuple(shape)))
        )
        if not broadcasts:
            raise ValueError(
                f"Softmax '{self.name}': the mask must broadcast against the inputs from the last axis (each size "
                f"1 or equal, no more axes); received mask shape {mask.shape} for inputs of shape {tuple(shape)}."
            )
        return mask if mask.dtype == bool else mask > 0.5

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]
