"""BatchNormalization and LayerNormalization (Keras 3's arguments, weights and formulas)."""

from __future__ import annotations

import numpy as np

from rankconv import constraints, initializers, objects, ops, regularizers
from rankconv.layers.layer import Layer


class _Normalization(Layer):
    def __init__(
        self,
        axis,
        epsilon,
        center,
        scale,
        beta_initializer,
        gamma_initializer,
        beta_regularizer,
        gamma_regularizer,
        beta_constraint,
        gamma_constraint,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.axis = axis if isinstance(axis, int) else [int(a) for a in axis]
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer, "beta_initializer")
        self.gamma_initializer = initializers.get(gamma_initializer, "gamma_initializer")
        self.beta_regularizer = regularizers.get(beta_regularizer, "beta_regularizer")
        self.gamma_regularizer = regularizers.get(gamma_regularizer, "gamma_regularizer")
        self.beta_constraint = constraints.get(beta_constraint, "beta_constraint")
        self.gamma_constraint = constraints.get(gamma_constraint, "gamma_constraint")
        self.gamma = self.beta = None
        self.supports_masking = True

    def _axes(self, rank):
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        for a in axes:
            if not -rank <= a < rank:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': `axis` {self.axis} is out of range for inputs of rank {rank}."
                )
        return sorted(a % rank for a in axes)

    def _add_scale_and_center(self, shape):
        if self.scale:
            self.gamma = self.add_weight(
                shape,
                self.gamma_initializer,
                "gamma",
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
            )
        if self.center:
            self.beta = self.add_weight(
                shape, self.beta_initializer, "beta", regularizer=self.beta_regularizer, constraint=self.beta_constraint
            )

    def _scale_and_center(self, outputs, broadcast):
        """`outputs * gamma + beta`, each where the layer has it, broadcast along the normalised axes."""
        if self.gamma is not None:
            outputs = ops.multiply(outputs, ops.reshape(self.gamma, broadcast))
        if self.beta is not None:
            outputs = ops.add(outputs, ops.reshape(self.beta, broadcast))
        return outputs

    def _config(self):
        return {
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": objects.serialize(self.beta_initializer),
            "gamma_initializer": objects.serialize(self.gamma_initializer),
            "beta_regularizer": objects.serialize(self.beta_regularizer),
            "gamma_regularizer": objects.serialize(self.gamma_regularizer),
            "beta_constraint": objects.serialize(self.beta_constraint),
            "gamma_constraint": objects.serialize(self.gamma_constraint),
        }


class BatchNormalization(_Normalization):
    """Normalise each feature (along `axis`) by the batch's statistics in training, and by moving
    averages of them in inference: `moving = moving * momentum + batch * (1 - momentum)`.

    Weights: gamma, beta (trainable), moving_mean, moving_variance (not trainable).
    """

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=0.001,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        renorm=False,
        renorm_clipping=None,
        renorm_momentum=0.99,
        synchronized=False,
        **kwargs,
    ):
        if renorm or synchronized:
            raise ValueError("BatchNormalization: `renorm` and `synchronized` are not supported.")
        super().__init__(
            axis,
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
            **kwargs,
        )
        self.momentum = float(momentum)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer, "moving_mean_initializer")
        self.moving_variance_initializer = initializers.get(moving_variance_initializer, "moving_variance_initializer")

    def build(self, input_shape):
        rank = len(input_shape)
        axes = self._axes(rank)
        shape = tuple(input_shape[a] for a in axes)
        if None in shape:
            raise ValueError(
                f"BatchNormalization '{self.name}': the normalised axis must have a known size; input shape {tuple(input_shape)}."
            )
        self._add_scale_and_center(shape)
        self.moving_mean = self.add_weight(shape, self.moving_mean_initializer, "moving_mean", trainable=False)
        self.moving_variance = self.add_weight(
            shape, self.moving_variance_initializer, "moving_variance", trainable=False
        )
        super().build(input_shape)

    def call(self, inputs, training=None, mask=None):
        rank = len(ops.shape(inputs))
        axes = self._axes(rank)
        reduction = tuple(i for i in range(rank) if i not in axes)
        broadcast = [1] * rank
        for a in axes:
            broadcast[a] = ops.shape(inputs)[a]
        if training and self.trainable:
            mean = ops.mean(inputs, axis=reduction, keepdims=True)
            variance = ops.mean(ops.square(ops.subtract(inputs, mean)), axis=reduction, keepdims=True)
            m = self.momentum
            batch_mean = np.asarray(ops.stop_gradient(mean)).reshape(self.moving_mean.shape)
            batch_variance = np.asarray(ops.stop_gradient(variance)).reshape(self.moving_variance.shape)
            self.moving_mean.value[...] = self.moving_mean.value * m + batch_mean * (1 - m)
            self.moving_variance.value[...] = self.moving_variance.value * m + batch_variance * (1 - m)
        else:
            mean = ops.reshape(self.moving_mean, broadcast)
            variance = ops.reshape(self.moving_variance, broadcast)
        outputs = ops.divide(ops.subtract(inputs, mean), ops.sqrt(ops.add(variance, self.epsilon)))
        return self._scale_and_center(outputs, broadcast)

    def get_config(self):
        config = super().get_config()
        own = self._config()
        config.update(
            {
                "axis": own["axis"],
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": own["beta_initializer"],
                "gamma_initializer": own["gamma_initializer"],
                "moving_mean_initializer": objects.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": objects.serialize(self.moving_variance_initializer),
                "beta_regularizer": own["beta_regularizer"],
                "gamma_regularizer": own["gamma_regularizer"],
                "beta_constraint": own["beta_constraint"],
                "gamma_constraint": own["gamma_constraint"],
                "synchronized": False,
                "renorm": False,
                "renorm_clipping": None,
                "renorm_momentum": 0.99,
            }
        )
        return config


class LayerNormalization(_Normalization):
    """Normalise each sample over `axis` (default the last): `(x - mean) / sqrt(var + epsilon) * gamma + beta`."""

    def __init__(
        self,
        axis=-1,
        epsilon=0.001,
        center=True,
        scale=True,
        rms_scaling=False,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        super().__init__(
            axis,
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
            **kwargs,
        )
        self.rms_scaling = bool(rms_scaling)

    def build(self, input_shape):
        axes = self._axes(len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if None in shape:
            raise ValueError(
                f"LayerNormalization '{self.name}': the normalised axes must have known sizes; input shape {tuple(input_shape)}."
            )
        # as Keras: once built, `axis` is a sorted list (and so appears in the config)
        self.axis = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        if self.rms_scaling:
            # Keras's (deprecated) rms_scaling always has a gamma and never a beta
            self.gamma = self.add_weight(
                shape,
                self.gamma_initializer,
                "gamma",
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
            )
        else:
            self._add_scale_and_center(shape)
        super().build(input_shape)

    def call(self, inputs):
        rank = len(ops.shape(inputs))
        axes = tuple(self._axes(rank))
        broadcast = [ops.shape(inputs)[a] if a in axes else 1 for a in range(rank)]
        if self.rms_scaling:
            # Keras divides the *uncentred* input by the square root of the (centred) variance here
            mean = ops.mean(inputs, axis=axes, keepdims=True)
            variance = ops.mean(ops.square(ops.subtract(inputs, mean)), axis=axes, keepdims=True)
            outputs = ops.divide(inputs, ops.sqrt(ops.add(variance, self.epsilon)))
            return ops.multiply(outputs, ops.reshape(self.gamma, broadcast))
        mean = ops.mean(inputs, axis=axes, keepdims=True)
        centred = ops.subtract(inputs, mean)
        variance = ops.mean(ops.square(centred), axis=axes, keepdims=True)
        outputs = ops.divide(centred, ops.sqrt(ops.add(variance, self.epsilon)))
        return self._scale_and_center(outputs, broadcast)

    def get_config(self):
        config = super().get_config()
        own = self._config()
        config.update(
            {
                "axis": own["axis"],
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "rms_scaling": self.rms_scaling,
                "beta_initializer": own["beta_initializer"],
                "gamma_initializer": own["gamma_initializer"],
                "beta_regularizer": own["beta_regularizer"],
                "gamma_regularizer": own["gamma_regularizer"],
                "beta_constraint": own["beta_constraint"],
                "gamma_constraint": own["gamma_constraint"],
            }
        )
        return config
