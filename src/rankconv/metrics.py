"""Stateful metrics with Keras 3's API, names, configs and label-shape rules.

A metric accumulates over batches: `update_state(y_true, y_pred, sample_weight=None)` adds a
batch, `result()` gives the running value as a Python float, `reset_state()` starts over. As in
Keras, the running `total` and `count` are float32 (the metric's dtype), and a batch's per-sample
values are reduced with `sample_weight` the way Keras's `Mean` does.

`compile(metrics=["accuracy"])` does not mean `Accuracy` in Keras 3: `get_metric` (used by the
model's compile) picks `BinaryAccuracy`, `SparseCategoricalAccuracy` or `CategoricalAccuracy`
from the shapes of the first batch's labels and predictions (the loss plays no part).
"""

from __future__ import annotations

import numpy as np

from rankconv import objects
from rankconv.layers.layer import to_snake_case

__all__ = [
    "Metric",
    "Mean",
    "MeanMetricWrapper",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "get",
    "get_metric",
    "resolve_accuracy",
    "serialize",
]

FLOATX = "float32"


def _squeeze_or_expand_to_same_rank(x1: np.ndarray, x2: np.ndarray, expand_rank_1=True):
    """Keras's rule: if the ranks differ by one and the longer has a trailing 1, drop it — except that
    a rank-1 partner gets a trailing axis instead (`expand_rank_1`)."""
    if x1.ndim == x2.ndim:
        return x1, x2
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        if x2.ndim == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = np.squeeze(x1, axis=-1)
    if x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        if x1.ndim == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = np.squeeze(x2, axis=-1)
    return x1, x2


def _squeeze_last(x: np.ndarray, argument: str) -> np.ndarray:
    if x.shape[-1] != 1:
        raise ValueError(
            f"`{argument}` has the rank of the predictions, so its last axis must have size 1 to be squeezed; "
            f"received shape {x.shape}."
        )
    return np.squeeze(x, axis=-1)


# ----------------------------------------------------------------------------- metric functions


def accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where `y_true == y_pred` (labels cast to the predictions' dtype), else 0.0."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).astype(y_pred.dtype, copy=False)
    y_true, y_pred = _squeeze_or_expand_to_same_rank(y_true, y_pred)
    return np.equal(y_true, y_pred).astype(FLOATX)


def binary_accuracy(y_true, y_pred, threshold=0.5) -> np.ndarray:
    """1.0 where `y_pred > threshold` equals the 0/1 label, else 0.0; per element."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    y_true, y_pred = _squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = np.greater(y_pred, threshold).astype(y_true.dtype)
    return np.equal(y_true, y_pred).astype(FLOATX)


def categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """One-hot labels (…, classes) against scores (…, classes): 1.0 where the argmaxes agree."""
    y_pred = np.asarray(y_pred)
    y_true = np.argmax(np.asarray(y_true), axis=-1).astype(y_pred.dtype)
    original_shape = y_true.shape
    # Keras squeezes labels that are still of the predictions' rank after the argmax (labels of
    # shape (…, 1, classes)); the matches keep the labels' shape.
    reshape = y_true.ndim == y_pred.ndim
    if reshape:
        y_true = _squeeze_last(y_true, "y_true")
    matches = np.equal(y_true, np.argmax(y_pred, axis=-1).astype(y_true.dtype)).astype(FLOATX)
    return matches.reshape(original_shape) if reshape else matches


def sparse_categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """Integer labels (…) or (…, 1) against scores (…, classes): 1.0 where the label is the argmax."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).astype(y_pred.dtype, copy=False)
    original_shape = y_true.shape
    reshape = y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1
    if reshape:
        y_true = np.squeeze(y_true, axis=-1)
    matches = np.equal(y_true, np.argmax(y_pred, axis=-1).astype(y_true.dtype)).astype(FLOATX)
    if reshape:
        matches = matches.reshape(original_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = np.squeeze(matches, axis=-1)
    return matches


# ----------------------------------------------------------------------------- metric objects


@objects.family("keras.metrics")
class Metric(objects.Configurable):
    """Base class: `update_state`, `result` (a Python float), `reset_state`, `name`, `dtype`."""

    def __init__(self, name=None, dtype=None):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: `name` must be a non-empty string; received name={name!r}.")
        if dtype is None:
            dtype = FLOATX
        if isinstance(dtype, dict):  # Keras's serialised DTypePolicy
            dtype = (dtype.get("config") or {}).get("name")
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            dtype = None
        if dtype not in ("float32", "float64"):
            raise ValueError(
                f"{type(self).__name__}: `dtype` must be 'float32' or 'float64'; received dtype={dtype!r}."
            )
        self.name = name or to_snake_case(type(self).__name__)
        self.dtype = dtype

    def update_state(self, *args, **kwargs) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    def reset_state(self) -> None:
        raise NotImplementedError

    def __call__(self, *args, **kwargs) -> float:
        """Update with one batch and return the running result (as Keras's `metric(...)`)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    # A metric holds state: two metrics are the same only if they are the same object.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


@objects.register("mean")
class Mean(Metric):
    """Weighted mean of values: `total = sum(w * v)`, `count = sum(w)`, `result = total / count` (0 if empty).

    Values of shape (batch, ...) are averaged over their trailing axes into one value per sample.
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = np.zeros((), self.dtype)
        self.count = np.zeros((), self.dtype)

    @property
    def variables(self) -> list[np.ndarray]:
        """The state, in Keras's order: `total`, `count` (0-d arrays)."""
        return [self.total, self.count]

    def update_state(self, values, sample_weight=None) -> None:
        values = np.asarray(values).astype(self.dtype, copy=False)
        dtype = values.dtype.type
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=self.dtype)
            values, sample_weight = _squeeze_or_expand_to_same_rank(values, sample_weight)
            weight_ndim = sample_weight.ndim
            if values.ndim > weight_ndim:
                values = np.mean(values, axis=tuple(range(weight_ndim, values.ndim)))
            try:
                sample_weight = np.broadcast_to(sample_weight, values.shape)
            except ValueError:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': `sample_weight` of shape {sample_weight.shape} cannot be "
                    f"broadcast to the per-sample values of shape {values.shape}."
                ) from None
            values = values * sample_weight
            if weight_ndim > 1:
                sample_weight = np.mean(sample_weight, axis=tuple(range(1, weight_ndim)))
        if values.ndim > 1:
            values = np.mean(values, axis=tuple(range(1, values.ndim)))
        self.total += np.sum(values, dtype=dtype)
        if sample_weight is not None:
            self.count += np.sum(sample_weight, dtype=dtype)
        else:
            self.count += dtype(values.shape[0] if values.ndim >= 1 else 1)

    def reset_state(self) -> None:
        self.total[...] = 0
        self.count[...] = 0

    def result(self) -> float:
        return float(self.total / self.count) if self.count != 0 else 0.0


class MeanMetricWrapper(Mean):
    """The weighted mean of `fn(y_true, y_pred, **kwargs)`, a per-sample (or per-element) function."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper: `fn` must be callable; received fn={fn!r}.")
        super().__init__(name=name or getattr(fn, "__name__", None) or "mean_metric_wrapper", dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs
        # Which way is better, for callbacks' mode="auto" (Keras: losses go down).
        if getattr(fn, "__module__", "") == "rankconv.losses" or type(fn).__module__ == "rankconv.losses":
            self._direction = "down"

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        super().update_state(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight=sample_weight)

    def get_config(self) -> dict:
        # The function itself (Keras stores its serialised name): `from_config` rebuilds the
        # wrapper in this process, e.g. for a fresh copy of a compiled metric.
        return {**super().get_config(), "fn": self._fn, **self._fn_kwargs}


@objects.register("accuracy")
class Accuracy(MeanMetricWrapper):
    """How often `y_pred` equals `y_true` exactly."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)
        self._direction = "up"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@objects.register("binary_accuracy")
class BinaryAccuracy(MeanMetricWrapper):
    """How often `y_pred > threshold` matches 0/1 labels (y_true and y_pred of shape (batch, ...))."""

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold
        self._direction = "up"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


@objects.register("categorical_accuracy")
class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of scores (batch, ..., classes) matches one-hot labels of the same shape."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)
        self._direction = "up"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@objects.register("sparse_categorical_accuracy")
class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of scores (batch, ..., classes) equals integer labels (batch, ...) or (batch, ..., 1)."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)
        self._direction = "up"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


# ----------------------------------------------------------------------------- lookup

serialize = objects.serialize


def get(identifier, argument: str = "metrics") -> Metric | None:
    """Resolve None, a `Metric`, a class name or snake_case name ("binary_accuracy"), or a serialised dict.

    Like Keras's `metrics.get`, "accuracy" gives the exact-match `Accuracy`. "acc" (which Keras's
    `metrics.get` rejects and only its compile accepts) gives an `Accuracy` named "acc". For a
    `compile(metrics=[...])` entry use `get_metric`, which picks the accuracy from the shapes.
    """
    if isinstance(identifier, str) and identifier == "acc":
        return Accuracy(name="acc")
    return objects.get(Metric, identifier, argument)


def _last_dim(shape):
    return shape[-1] if len(shape) else None


def resolve_accuracy(y_true_shape, y_pred_shape, name="accuracy") -> Metric:
    """Keras 3's choice for "accuracy"/"acc" in `compile`, made from the shapes of the first batch:

    - predictions with a last axis of size 1 → `BinaryAccuracy`;
    - else labels of lower rank than the predictions, or labels with a last axis of size 1 against
      predictions with more than one class → `SparseCategoricalAccuracy`;
    - else → `CategoricalAccuracy`.

    The metric is named `name` (Keras names it after the string the user wrote). Shapes may hold None.
    """
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    true_last, pred_last = _last_dim(y_true_shape), _last_dim(y_pred_shape)
    if pred_last == 1:
        return BinaryAccuracy(name=name)
    pred_is_multiclass = pred_last is not None and pred_last > 1
    if len(y_true_shape) < len(y_pred_shape) or (true_last == 1 and pred_is_multiclass):
        return SparseCategoricalAccuracy(name=name)
    return CategoricalAccuracy(name=name)


def get_metric(identifier, y_true_shape, y_pred_shape) -> Metric:
    """Keras's `compile_utils.get_metric`: one entry of `compile(metrics=[...])` to a metric object.

    "accuracy"/"acc" (any case) are resolved by `resolve_accuracy`; other strings, dicts and metric
    objects by `get`; a plain function `fn(y_true, y_pred)` is wrapped in `MeanMetricWrapper`. A
    string entry also names the metric (so `"acc"` logs as "acc", `"binary_accuracy"` as itself).
    """
    if identifier is None:
        raise ValueError("Expected a metric for `metrics`; received None.")
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        return resolve_accuracy(y_true_shape, y_pred_shape, name=identifier)
    if isinstance(identifier, (str, dict, Metric)):
        metric = get(identifier)
    elif callable(identifier) and not isinstance(identifier, type):
        metric = MeanMetricWrapper(identifier)
    else:
        raise ValueError(f"Could not interpret metric identifier for `metrics`: {identifier!r}.")
    if isinstance(identifier, str):
        metric.name = identifier
    return metric
