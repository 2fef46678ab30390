"""Keras-compatible convolution and pooling layers, computed by numconv's ops.

Run Keras conv models without TensorFlow: the same classes, constructor
arguments, defaults, output shapes and weight layouts as ``keras.layers``
(Keras 3), so ``layer.set_weights(keras_layer.get_weights())`` reproduces a
Keras layer's outputs. ``input_shape=`` builds a layer at once (as in Keras 2).
Layers hold NumPy arrays and call the public ops (``numconv.conv``,
``numconv.separable_conv``, ``numconv.depthwise_conv``, ``numconv.conv_transpose``,
``numconv.max_pool``, ...). Inference only: there is no training loop.

Examples
--------
>>> import numpy as np
>>> from numconv.layers import Conv1D
>>> layer = Conv1D(filters=2, kernel_size=4, use_bias=False, input_shape=(10, 3))
>>> layer.output_shape, layer.count_params()
((None, 7, 2), 24)
>>> Conv1D(2, 4, padding="same").compute_output_shape((None, 10, 3))
(None, 10, 2)
"""
from . import initializers
from ._base import Layer
from ._conv import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, Conv3DTranspose, Convolution1D,
                    Convolution2D, Convolution3D, DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D,
                    SeparableConv2D)
from ._model import Sequential
from ._pool import (AveragePooling1D, AveragePooling2D, AveragePooling3D, AvgPool1D, AvgPool2D, AvgPool3D,
                    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalAvgPool1D,
                    GlobalAvgPool2D, GlobalAvgPool3D, GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D,
                    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPool1D, MaxPool2D, MaxPool3D,
                    MaxPooling1D, MaxPooling2D, MaxPooling3D)

Convolution1DTranspose, Convolution2DTranspose, Convolution3DTranspose = (Conv1DTranspose, Conv2DTranspose,
                                                                          Conv3DTranspose)

__all__ = ["initializers", "Layer", "Sequential",
           "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D",
           "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D",
           "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
           "Convolution1DTranspose", "Convolution2DTranspose", "Convolution3DTranspose",
           "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
           "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
           "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
           "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalAvgPool1D", "GlobalAvgPool2D",
           "GlobalAvgPool3D"]
