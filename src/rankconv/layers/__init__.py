"""Keras-compatible layers."""

from rankconv.layers.conv import Conv, Conv1D, Conv2D, Conv3D, Convolution1D, Convolution2D, Convolution3D
from rankconv.layers.layer import Layer, Variable

__all__ = ["Conv", "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D", "Layer", "Variable"]
