"""Losses with Keras 3's names, formulas, defaults and configs, built from `rankconv.ops` (so
differentiable). A loss object maps `(y_true, y_pred)` to one number: the per-sample losses,
weighted by `sample_weight` if given, summed and divided by their count ("sum_over_batch_size")."""

from __future__ import annotations

import numpy as np

from rankconv import objects, ops

EPSILON = 1e-7  # Keras's backend.epsilon(), the clip of probabilities


def _probabilities_to_log(y_pred, axis):
    """Keras's path for probabilities: renormalise, clip to [eps, 1 - eps], take the log."""
    y_pred = ops.divide(y_pred, ops.sum(y_pred, axis=axis, keepdims=True))
    return ops.log(ops.clip(y_pred, EPSILON, 1 - EPSILON))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Integer labels (…) or (…, 1) against scores (…, classes)."""
    labels = np.asarray(ops.stop_gradient(y_true))
    pred_shape = ops.shape(y_pred)
    if labels.ndim == len(pred_shape) and labels.shape[axis] == 1:
        labels = np.squeeze(labels, axis=axis)
    expected = tuple(d for i, d in enumerate(pred_shape) if i != axis % len(pred_shape))
    if labels.shape != expected:
        raise ValueError(
            f"sparse_categorical_crossentropy: labels must have shape {expected} (or {(*expected, 1)}) to match "
            f"predictions of shape {pred_shape}; received labels of shape {labels.shape}."
        )
    classes = pred_shape[axis]
    if labels.dtype.kind not in "biuf":
        raise TypeError(
            f"sparse_categorical_crossentropy: labels must be integer class ids; received dtype {labels.dtype}."
        )
    if labels.dtype.kind == "f":
        if not np.all(labels == np.round(labels)):
            raise ValueError(
                "sparse_categorical_crossentropy: labels must be integer class ids; received non-integral values."
            )
        labels = labels.astype(np.int64)
    valid = np.ones(labels.shape, bool) if ignore_class is None else labels != ignore_class
    if labels.size and (labels[valid].min(initial=0) < 0 or labels[valid].max(initial=0) >= classes):
        raise ValueError(
            f"sparse_categorical_crossentropy: labels must lie in [0, {classes - 1}] for {classes} classes; "
            f"received labels from {labels[valid].min()} to {labels[valid].max()}."
        )
    log_prob = ops.log_softmax(y_pred, axis=axis) if from_logits else _probabilities_to_log(y_pred, axis)
    one_hot = ops.one_hot(np.where(valid, labels, 0), classes, axis=axis, dtype=ops.convert_to_numpy(y_pred).dtype)
    losses = ops.negative(ops.sum(ops.multiply(one_hot, log_prob), axis=axis))
    return losses if ignore_class is None else ops.multiply(losses, valid.astype(one_hot.dtype))


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """One-hot (or soft) labels against scores, both (…, classes)."""
    y_true = np.asarray(ops.stop_gradient(y_true), dtype=ops.convert_to_numpy(y_pred).dtype)
    if y_true.shape != tuple(ops.shape(y_pred)):
        raise ValueError(
            f"categorical_crossentropy: labels and predictions must have the same shape; received labels "
            f"{y_true.shape} and predictions {tuple(ops.shape(y_pred))}."
        )
    if label_smoothing:
        y_true = y_true * (1 - label_smoothing) + label_smoothing / y_true.shape[axis]
    log_prob = ops.log_softmax(y_pred, axis=axis) if from_logits else _probabilities_to_log(y_pred, axis)
    return ops.negative(ops.sum(ops.multiply(y_true, log_prob), axis=axis))


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Labels in [0, 1] against probabilities (or logits) of the same shape; averaged over `axis`."""
    y_true = np.asarray(ops.stop_gradient(y_true), dtype=ops.convert_to_numpy(y_pred).dtype)
    if y_true.shape != tuple(ops.shape(y_pred)):
        if y_true.ndim == len(ops.shape(y_pred)) - 1 and ops.shape(y_pred)[-1] == 1:
            y_true = y_true[..., None]
        else:
            raise ValueError(
                f"binary_crossentropy: labels and predictions must have the same shape; received labels "
                f"{y_true.shape} and predictions {tuple(ops.shape(y_pred))}."
            )
    if label_smoothing:
        y_true = y_true * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # max(x, 0) - x * t + log(1 + exp(-|x|)): never overflows
        losses = ops.add(
            ops.subtract(ops.maximum(y_pred, 0), ops.multiply(y_pred, y_true)),
            ops.log1p(ops.exp(ops.negative(ops.abs(y_pred)))),
        )
    else:
        p = ops.clip(y_pred, EPSILON, 1 - EPSILON)
        losses = ops.negative(
            ops.add(ops.multiply(y_true, ops.log(p)), ops.multiply(1 - y_true, ops.log(ops.subtract(1, p))))
        )
    return ops.mean(losses, axis=axis)


def _same_shape(y_true, y_pred, name):
    y_true = np.asarray(ops.stop_gradient(y_true), dtype=ops.convert_to_numpy(y_pred).dtype)
    shape = tuple(ops.shape(y_pred))
    if y_true.shape != shape:
        if y_true.ndim == len(shape) - 1 and shape[-1] == 1:
            return y_true[..., None]
        raise ValueError(
            f"{name}: labels and predictions must have the same shape; received {y_true.shape} and {shape}."
        )
    return y_true


def mean_squared_error(y_true, y_pred):
    return ops.mean(ops.square(ops.subtract(y_pred, _same_shape(y_true, y_pred, "mean_squared_error"))), axis=-1)


def mean_absolute_error(y_true, y_pred):
    return ops.mean(ops.abs(ops.subtract(y_pred, _same_shape(y_true, y_pred, "mean_absolute_error"))), axis=-1)


mse, mae = mean_squared_error, mean_absolute_error


@objects.family("keras.losses")
class Loss(objects.Configurable):
    """`loss(y_true, y_pred, sample_weight=None)`: the per-sample losses, weighted, averaged."""

    function = None
    default_name = "loss"

    def __init__(self, name=None, reduction="sum_over_batch_size", **options):
        if reduction not in ("sum_over_batch_size", "sum", "mean", "none", None):
            raise ValueError(
                f"`reduction` must be 'sum_over_batch_size', 'sum', 'mean' or 'none'; received {reduction!r}."
            )
        self.name = name or self.default_name
        self.reduction = reduction
        self.options = options

    def call(self, y_true, y_pred):
        return type(self).function(y_true, y_pred, **self.options)

    def __call__(self, y_true, y_pred, sample_weight=None):
        losses = self.call(y_true, y_pred)
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=ops.convert_to_numpy(losses).dtype)
            weights = weights.reshape(weights.shape + (1,) * (len(ops.shape(losses)) - weights.ndim))
            losses = ops.multiply(losses, weights)
        if self.reduction in ("none", None):
            return losses
        total = ops.sum(losses)
        if self.reduction == "sum":
            return total
        return ops.divide(total, max(1, int(np.prod(ops.shape(losses)))))

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, **self.options}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _loss_class(class_name, function, default_name, aliases, defaults):
    def __init__(self, name=None, reduction="sum_over_batch_size", **options):
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"{class_name} got unexpected arguments {sorted(unknown)}.")
        Loss.__init__(self, name=name, reduction=reduction, **{**defaults, **options})

    cls = type(
        class_name,
        (Loss,),
        {
            "__init__": __init__,
            "function": staticmethod(function),
            "default_name": default_name,
            "__module__": __name__,
            "__doc__": function.__doc__,
        },
    )
    return objects.register(*aliases)(cls)


SparseCategoricalCrossentropy = _loss_class(
    "SparseCategoricalCrossentropy",
    sparse_categorical_crossentropy,
    "sparse_categorical_crossentropy",
    ("sparse_categorical_crossentropy",),
    {"from_logits": False, "ignore_class": None},
)
CategoricalCrossentropy = _loss_class(
    "CategoricalCrossentropy",
    categorical_crossentropy,
    "categorical_crossentropy",
    ("categorical_crossentropy",),
    {"from_logits": False, "label_smoothing": 0.0, "axis": -1},
)
BinaryCrossentropy = _loss_class(
    "BinaryCrossentropy",
    binary_crossentropy,
    "binary_crossentropy",
    ("binary_crossentropy",),
    {"from_logits": False, "label_smoothing": 0.0, "axis": -1},
)
MeanSquaredError = _loss_class(
    "MeanSquaredError", mean_squared_error, "mean_squared_error", ("mean_squared_error", "mse"), {}
)
MeanAbsoluteError = _loss_class(
    "MeanAbsoluteError", mean_absolute_error, "mean_absolute_error", ("mean_absolute_error", "mae"), {}
)


def get(identifier, argument="loss") -> Loss:
    """A loss object from a name (`"sparse_categorical_crossentropy"`, `"mse"`), a config dict or an instance."""
    if identifier is None:
        raise ValueError("A loss is needed: pass `loss=` to `compile` (e.g. 'sparse_categorical_crossentropy').")
    if callable(identifier) and not isinstance(identifier, Loss) and not isinstance(identifier, type):
        for cls in Loss.registry.values():
            if cls.function is identifier:
                return cls()
        raise ValueError(
            f"`{argument}`: {identifier!r} is not one of rankconv's losses; pass a name or a rankconv.losses object."
        )
    return objects.get(Loss, identifier, argument)


serialize = objects.serialize
