"""Weight regularizers (Keras 3's names and configs): penalties a layer adds to the loss."""

from __future__ import annotations

import numpy as np

from rankconv import objects, ops


def _check_factor(value, name) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value < np.inf:
        raise ValueError(f"`{name}` must be a non-negative finite number; received {name}={value!r}.")
    return float(value)


@objects.family("keras.regularizers")
class Regularizer(objects.Configurable):
    """A penalty on a weight, built from `rankconv.ops` so that it is differentiable."""

    def __call__(self, x):
        raise NotImplementedError


@objects.register("l1")
class L1(Regularizer):
    def __init__(self, l1=0.01):
        l1 = 0.01 if l1 is None else l1
        # Keras keeps L1's factor as a float32 tensor, so its config shows the float32 value
        # (0.01 → 0.009999999776482582); L2 and L1L2 keep Python floats.
        self.l1 = float(np.float32(_check_factor(l1, "l1")))

    def __call__(self, x):
        return self.l1 * ops.sum(ops.abs(x))

    def get_config(self):
        return {"l1": self.l1}


@objects.register("l2")
class L2(Regularizer):
    def __init__(self, l2=0.01):
        l2 = 0.01 if l2 is None else l2
        self.l2 = _check_factor(l2, "l2")

    def __call__(self, x):
        return self.l2 * ops.sum(ops.square(x))

    def get_config(self):
        return {"l2": self.l2}


@objects.register("l1l2", "l1_l2")
class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        l1, l2 = (0.0 if l1 is None else l1), (0.0 if l2 is None else l2)
        self.l1 = _check_factor(l1, "l1")
        self.l2 = _check_factor(l2, "l2")

    def __call__(self, x):
        return self.l1 * ops.sum(ops.abs(x)) + self.l2 * ops.sum(ops.square(x))

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


def get(identifier, argument="regularizer") -> Regularizer | None:
    return objects.get(Regularizer, identifier, argument)


serialize = objects.serialize
