"""rankconv: Keras's convolution system on NumPy, one rank-generic convolution for every rank."""

from rankconv import (
    activations,
    callbacks,
    constraints,
    datasets,
    equivalence,
    initializers,
    layers,
    losses,
    metrics,
    models,
    nn,
    ops,
    optimizers,
    regularizers,
    saving,
    utils,
)
from rankconv.explanation import explain
from rankconv.layers import Input
from rankconv.models import Model, Sequential
from rankconv.ops import GradientTape, grad, value_and_grad

__version__ = "0.1.0"

__all__ = [
    "GradientTape",
    "Input",
    "Model",
    "Sequential",
    "activations",
    "callbacks",
    "constraints",
    "datasets",
    "equivalence",
    "explain",
    "grad",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "nn",
    "ops",
    "optimizers",
    "regularizers",
    "saving",
    "utils",
    "value_and_grad",
]
