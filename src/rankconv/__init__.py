"""rankconv: Keras's convolution system on NumPy, one rank-generic convolution for every rank."""

from rankconv import activations, constraints, equivalence, initializers, layers, ops, regularizers, utils

__version__ = "0.1.0"

__all__ = ["activations", "constraints", "equivalence", "initializers", "layers", "ops", "regularizers", "utils"]
