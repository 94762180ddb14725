"""Weight constraints (Keras 3's names, configs and axis semantics), applied after each update.

`axis` names the axes a norm is taken over: for a Conv2D kernel (rows, cols, in, out),
`axis=[0, 1, 2]` constrains each filter's whole weight vector.
"""

from __future__ import annotations

import numpy as np

from rankconv import objects

EPSILON = 1e-7  # Keras's backend.epsilon()


@objects.family("keras.constraints")
class Constraint(objects.Configurable):
    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w


def _norms(w, axis):
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


@objects.register("max_norm")
class MaxNorm(Constraint):
    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (EPSILON + norms))).astype(w.dtype)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


@objects.register("non_neg")
class NonNeg(Constraint):
    def __call__(self, w):
        return w * (w >= 0).astype(w.dtype)


@objects.register("unit_norm")
class UnitNorm(Constraint):
    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return (w / (EPSILON + _norms(w, self.axis))).astype(w.dtype)

    def get_config(self):
        return {"axis": self.axis}


@objects.register("min_max_norm")
class MinMaxNorm(Constraint):
    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return (w * (desired / (EPSILON + norms))).astype(w.dtype)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


def get(identifier, argument="constraint") -> Constraint | None:
    return objects.get(Constraint, identifier, argument)


serialize = objects.serialize
