"""Keras-compatible layers."""

from rankconv.layers.conv import BaseConv, Conv, Conv1D, Conv2D, Conv3D, Convolution1D, Convolution2D, Convolution3D
from rankconv.layers.conv_transpose import (
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
    Convolution1DTranspose,
    Convolution2DTranspose,
    Convolution3DTranspose,
    ConvTranspose,
)
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
from rankconv.layers.depthwise_conv import (
    DepthwiseConv,
    DepthwiseConv1D,
    DepthwiseConv2D,
    DepthwiseConv3D,
    SeparableConv,
    SeparableConv1D,
    SeparableConv2D,
    SeparableConv3D,
    SeparableConvolution1D,
    SeparableConvolution2D,
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
from rankconv.layers.reshaping import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Flatten,
    Reshape,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
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
        Conv1DTranspose,
        Conv2D,
        Conv2DTranspose,
        Conv3D,
        Conv3DTranspose,
        ConvTranspose,
        Cropping1D,
        Cropping2D,
        Cropping3D,
        Dense,
        DepthwiseConv,
        DepthwiseConv1D,
        DepthwiseConv2D,
        DepthwiseConv3D,
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
        SeparableConv,
        SeparableConv1D,
        SeparableConv2D,
        SeparableConv3D,
        SpatialDropout1D,
        SpatialDropout2D,
        SpatialDropout3D,
        UpSampling1D,
        UpSampling2D,
        UpSampling3D,
        ZeroPadding1D,
        ZeroPadding2D,
        ZeroPadding3D,
    )
}

# Classes Keras 3 itself has no class for: rankconv saves them, and says that Keras will not load them.
KERAS_UNLOADABLE = frozenset(
    {"Conv", "ConvTranspose", "DepthwiseConv", "DepthwiseConv3D", "SeparableConv", "SeparableConv3D"}
)

__all__ = [
    *LAYER_CLASSES,
    "BaseConv",
    "Convolution1D",
    "Convolution1DTranspose",
    "Convolution2D",
    "Convolution2DTranspose",
    "Convolution3D",
    "Convolution3DTranspose",
    "KERAS_UNLOADABLE",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
    "GlobalPooling",
    "Input",
    "KerasTensor",
    "Layer",
    "Node",
    "Pooling",
    "Variable",
    "ZeroPadding",
]
