"""Keras-compatible layers."""

from rankconv.layers.conv import Conv, Conv1D, Conv2D, Conv3D, Convolution1D, Convolution2D, Convolution3D
from rankconv.layers.core import (
    Activation,
    Dense,
    Dropout,
    Embedding,
    Input,
    InputLayer,
    Rescaling,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from rankconv.layers.layer import KerasTensor, Layer, Node
from rankconv.layers.merging import Add, Concatenate
from rankconv.layers.normalization import BatchNormalization, LayerNormalization
from rankconv.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    GlobalPooling,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    Pooling,
)
from rankconv.layers.reshaping import Flatten, Reshape, ZeroPadding, ZeroPadding1D, ZeroPadding2D, ZeroPadding3D
from rankconv.ops.autodiff import Variable

# Keras's class names for the layers a model file may name (used by rankconv.saving).
LAYER_CLASSES = {
    cls.__name__: cls
    for cls in (
        Activation,
        Add,
        AveragePooling1D,
        AveragePooling2D,
        AveragePooling3D,
        BatchNormalization,
        Concatenate,
        Conv,
        Conv1D,
        Conv2D,
        Conv3D,
        Dense,
        Dropout,
        Embedding,
        Flatten,
        GlobalAveragePooling1D,
        GlobalAveragePooling2D,
        GlobalAveragePooling3D,
        GlobalMaxPooling1D,
        GlobalMaxPooling2D,
        GlobalMaxPooling3D,
        InputLayer,
        LayerNormalization,
        MaxPooling1D,
        MaxPooling2D,
        MaxPooling3D,
        Rescaling,
        Reshape,
        SpatialDropout1D,
        SpatialDropout2D,
        SpatialDropout3D,
        ZeroPadding1D,
        ZeroPadding2D,
        ZeroPadding3D,
    )
}

__all__ = [
    *LAYER_CLASSES,
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
    "GlobalPooling",
    "Input",
    "KerasTensor",
    "Layer",
    "Node",
    "Pooling",
    "Variable",
    "ZeroPadding",
]
