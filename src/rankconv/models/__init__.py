"""Models: functional `Model(inputs, outputs)`, `Sequential`, and Keras's training API."""

from rankconv.models.functional import Functional, Model, Sequential

__all__ = ["Functional", "Model", "Sequential"]
