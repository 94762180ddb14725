"""Pure functions on NumPy arrays, each with its gradient (a `*_vjp` function beside it)."""

from rankconv.ops.convolution import conv, conv_general, conv_general_vjp, conv_vjp
from rankconv.ops.nn import elu, gelu, leaky_relu, relu, relu6, selu, sigmoid, silu, softmax, softplus, softsign, tanh

__all__ = [
    "conv",
    "conv_general",
    "conv_general_vjp",
    "conv_vjp",
    "elu",
    "gelu",
    "leaky_relu",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "tanh",
]
