"""Build every numconv.layers layer type in real Keras and save inputs, weights and
outputs as small ``.npz`` fixtures under ``tests/fixtures/keras/``.

Run where Keras 3 is installed, with the JAX backend (its transposed convolution
follows TensorFlow's "same" semantics, which numconv follows; Keras warns that its
torch backend differs there)::

    pip install keras jax jaxlib
    KERAS_BACKEND=jax python scripts/make_keras_fixtures.py

Each fixture holds ``config`` (JSON: the layer class and constructor arguments, or a
model's list of layers), ``x`` (float32 input), ``w0, w1, ...`` (the weights in
Keras's ``get_weights()`` order: random values, biases included, so every weight
matters), ``y`` (Keras's output), ``output_shape`` (JSON: Keras's
``compute_output_shape`` with the batch as None), ``count_params`` and ``keras``
(the Keras version and backend). ``tests/test_layers.py`` loads them; it also runs
``CASES`` live against Keras when Keras is installed.

This file imports nothing from numconv, so the fixtures are Keras's numbers only.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, os.pardir, "tests", "fixtures", "keras")

# (name, class name, constructor kwargs, input shape with batch). Shapes are kept small
# so that all fixtures together stay well under 1 MB.
LAYER_CASES = [
    # Conv1D, and the seeds' statements
    ("conv1d_basic", "Conv1D", dict(filters=4, kernel_size=3), (2, 12, 3)),
    ("conv1d_seed_valid", "Conv1D", dict(filters=2, kernel_size=4, use_bias=False), (2, 10, 3)),
    ("conv1d_seed_same", "Conv1D", dict(filters=2, kernel_size=4, use_bias=False, padding="same"), (2, 10, 3)),
    ("conv1d_same_strided", "Conv1D", dict(filters=5, kernel_size=4, strides=3, padding="same",
                                           activation="relu"), (2, 17, 3)),
    ("conv1d_causal_dilated", "Conv1D", dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2,
                                             activation="tanh"), (2, 15, 2)),
    ("conv1d_groups", "Conv1D", dict(filters=6, kernel_size=3, groups=2), (2, 12, 4)),
    ("conv1d_channels_first", "Conv1D", dict(filters=4, kernel_size=3, strides=2,
                                             data_format="channels_first"), (2, 3, 13)),
    ("convolution1d_seed", "Convolution1D", dict(filters=64, kernel_size=3, activation="relu"), (2, 100, 1)),
    # Conv2D
    ("conv2d_basic", "Conv2D", dict(filters=4, kernel_size=3), (2, 9, 8, 3)),
    ("conv2d_same_strided", "Conv2D", dict(filters=4, kernel_size=(3, 2), strides=(2, 1), padding="same",
                                           activation="relu"), (2, 9, 8, 3)),
    ("conv2d_dilated", "Conv2D", dict(filters=3, kernel_size=3, dilation_rate=(2, 1), padding="same"),
     (2, 10, 9, 2)),
    ("conv2d_groups", "Conv2D", dict(filters=4, kernel_size=3, groups=2, activation="sigmoid"), (2, 7, 7, 4)),
    ("conv2d_channels_first", "Conv2D", dict(filters=4, kernel_size=3, strides=2, padding="same",
                                             data_format="channels_first"), (2, 3, 9, 8)),
    ("convolution2d_seed", "Convolution2D", dict(filters=64, kernel_size=(3, 3), activation="relu"),
     (1, 10, 10, 3)),
    # Conv3D
    ("conv3d_basic", "Conv3D", dict(filters=3, kernel_size=2), (2, 5, 6, 4, 2)),
    ("conv3d_same_strided", "Conv3D", dict(filters=3, kernel_size=3, strides=2, padding="same",
                                           activation="relu"), (1, 6, 7, 5, 2)),
    ("conv3d_channels_first", "Conv3D", dict(filters=2, kernel_size=(2, 3, 2), data_format="channels_first"),
     (1, 2, 5, 6, 4)),
    # SeparableConv1D / 2D
    ("separable_conv1d_same", "SeparableConv1D", dict(filters=5, kernel_size=3, depth_multiplier=2,
                                                      padding="same"), (2, 12, 3)),
    ("separable_conv1d_strided", "SeparableConv1D", dict(filters=4, kernel_size=4, strides=2,
                                                         activation="relu"), (2, 15, 3)),
    ("separable_conv1d_dilated_cf", "SeparableConv1D", dict(filters=4, kernel_size=3, dilation_rate=2,
                                                            data_format="channels_first"), (2, 3, 14)),
    ("separable_conv2d_same_strided", "SeparableConv2D", dict(filters=4, kernel_size=3, depth_multiplier=2,
                                                              padding="same", strides=2), (2, 9, 8, 3)),
    ("separable_conv2d_dilated", "SeparableConv2D", dict(filters=4, kernel_size=3, dilation_rate=2),
     (2, 9, 9, 2)),
    ("separable_conv2d_cf", "SeparableConv2D", dict(filters=4, kernel_size=(3, 2),
                                                    data_format="channels_first"), (2, 3, 7, 6)),
    # DepthwiseConv1D / 2D
    ("depthwise_conv1d", "DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=2), (2, 12, 3)),
    ("depthwise_conv1d_same_strided", "DepthwiseConv1D", dict(kernel_size=4, strides=2, padding="same",
                                                              activation="relu"), (2, 13, 3)),
    ("depthwise_conv1d_dilated_cf", "DepthwiseConv1D", dict(kernel_size=3, dilation_rate=2,
                                                            data_format="channels_first"), (2, 3, 12)),
    ("depthwise_conv2d_same", "DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2, padding="same"),
     (2, 8, 8, 3)),
    ("depthwise_conv2d_strided", "DepthwiseConv2D", dict(kernel_size=(3, 2), strides=(2, 1)), (2, 9, 8, 3)),
    ("depthwise_conv2d_dilated_cf", "DepthwiseConv2D", dict(kernel_size=3, dilation_rate=2,
                                                            data_format="channels_first"), (2, 3, 9, 9)),
    # Conv*DTranspose
    ("conv1d_transpose_valid", "Conv1DTranspose", dict(filters=3, kernel_size=4, strides=2), (2, 6, 3)),
    ("conv1d_transpose_same", "Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same"),
     (2, 6, 3)),
    ("conv1d_transpose_short_kernel", "Conv1DTranspose", dict(filters=2, kernel_size=2, strides=3), (2, 5, 3)),
    ("conv1d_transpose_output_padding", "Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2,
                                                                output_padding=1, padding="same"), (2, 5, 2)),
    ("conv1d_transpose_dilated", "Conv1DTranspose", dict(filters=3, kernel_size=3, dilation_rate=2,
                                                         padding="same"), (2, 7, 2)),
    ("conv1d_transpose_cf", "Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2,
                                                    data_format="channels_first"), (2, 2, 6)),
    ("conv2d_transpose_same", "Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, padding="same",
                                                      activation="relu"), (2, 5, 4, 3)),
    ("conv2d_transpose_valid", "Conv2DTranspose", dict(filters=2, kernel_size=(3, 2), strides=(2, 3)),
     (2, 4, 5, 3)),
    ("conv2d_transpose_output_padding", "Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2,
                                                                output_padding=1), (2, 4, 4, 2)),
    ("conv2d_transpose_cf", "Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same",
                                                    data_format="channels_first"), (2, 3, 4, 5)),
    ("conv3d_transpose_same", "Conv3DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same"),
     (1, 3, 4, 3, 2)),
    ("conv3d_transpose_valid", "Conv3DTranspose", dict(filters=2, kernel_size=2, strides=(1, 2, 2)),
     (1, 3, 3, 3, 2)),
    # Pooling
    ("max_pooling1d_default", "MaxPooling1D", dict(), (2, 11, 3)),
    ("max_pooling1d_same", "MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 11, 3)),
    ("max_pooling1d_cf", "MaxPooling1D", dict(pool_size=3, data_format="channels_first"), (2, 3, 11)),
    ("average_pooling1d", "AveragePooling1D", dict(pool_size=3, strides=2), (2, 11, 3)),
    ("average_pooling1d_same", "AveragePooling1D", dict(pool_size=4, strides=3, padding="same"), (2, 11, 3)),
    ("max_pooling2d_default", "MaxPooling2D", dict(), (2, 7, 8, 3)),
    ("max_pooling2d_same", "MaxPooling2D", dict(pool_size=(3, 2), strides=(2, 2), padding="same"), (2, 7, 8, 3)),
    ("average_pooling2d_same", "AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (2, 7, 8, 3)),
    ("average_pooling2d_cf", "AveragePooling2D", dict(pool_size=2, data_format="channels_first"), (2, 3, 7, 8)),
    ("max_pooling3d_default", "MaxPooling3D", dict(), (1, 5, 4, 6, 2)),
    ("average_pooling3d_same", "AveragePooling3D", dict(pool_size=2, padding="same"), (1, 5, 4, 3, 2)),
    ("max_pooling3d_cf_same", "MaxPooling3D", dict(pool_size=3, strides=2, padding="same",
                                                   data_format="channels_first"), (1, 2, 5, 6, 4)),
    ("global_max_pooling1d", "GlobalMaxPooling1D", dict(), (2, 11, 3)),
    ("global_average_pooling1d_keepdims", "GlobalAveragePooling1D", dict(keepdims=True), (2, 11, 3)),
    ("global_max_pooling2d_cf", "GlobalMaxPooling2D", dict(data_format="channels_first"), (2, 3, 5, 4)),
    ("global_average_pooling2d", "GlobalAveragePooling2D", dict(), (2, 5, 4, 3)),
    ("global_max_pooling3d_keepdims", "GlobalMaxPooling3D", dict(keepdims=True), (1, 3, 4, 2, 2)),
    ("global_average_pooling3d_cf", "GlobalAveragePooling3D", dict(data_format="channels_first"),
     (1, 2, 3, 4, 2)),
]

# The seeds' models: (name, [(class name, kwargs)], input shape with batch).
MODEL_CASES = [
    # IMDb sentiment model's conv part: embedded reviews (batch, 100, 128) -> ... -> (batch, 32)
    ("model_imdb", [("Conv1D", dict(filters=32, kernel_size=7, activation="relu")),
                    ("MaxPooling1D", dict(pool_size=5)),
                    ("Conv1D", dict(filters=32, kernel_size=7, activation="relu")),
                    ("GlobalMaxPooling1D", dict())], (2, 100, 128)),
    # Stock-price model's conv part: windows of 50 prices -> Conv1D(16, 5, relu) -> MaxPooling1D(4)
    ("model_stock", [("Conv1D", dict(filters=16, kernel_size=5, activation="relu")),
                     ("MaxPooling1D", dict(pool_size=4))], (4, 50, 1)),
]


def _case_seed(name):
    return sum(ord(c) * (i + 1) for i, c in enumerate(name)) % (2 ** 31)


def keras_case(name, layers, input_shape):
    """Build ``layers`` ([(class name, kwargs)]) in Keras for ``input_shape``, load random
    weights and run it on a random input. Returns the fixture's arrays."""
    import keras

    rng = np.random.default_rng(_case_seed(name))
    model = keras.Sequential([keras.Input(shape=input_shape[1:])]
                             + [getattr(keras.layers, cls)(**kwargs) for cls, kwargs in layers])
    weights = [(0.5 * rng.standard_normal(w.shape)).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    x = rng.standard_normal(input_shape).astype(np.float32)
    y = np.asarray(model(x))
    shape = (None,) + tuple(input_shape[1:])
    for layer in model.layers:
        shape = layer.compute_output_shape(shape)
    arrays = {"x": x, "y": y.astype(np.float32), "count_params": np.int64(model.count_params()),
              "output_shape": np.array(json.dumps(list(shape))),
              "weight_names": np.array(json.dumps([w.path for w in model.weights])),
              "keras": np.array(f"keras {keras.__version__}, backend {keras.backend.backend()}")}
    arrays.update({f"w{i}": w for i, w in enumerate(weights)})
    return arrays


def all_cases():
    """``(name, config, layers, input_shape)`` for every fixture."""
    for name, cls, kwargs, shape in LAYER_CASES:
        yield name, {"kind": "layer", "class": cls, "kwargs": kwargs}, [(cls, kwargs)], shape
    for name, layers, shape in MODEL_CASES:
        yield name, {"kind": "model", "layers": [[c, k] for c, k in layers]}, layers, shape


CONFIG_DIR = os.path.join(HERE, os.pardir, "tests", "fixtures", "keras_config")

# A model whose Keras config (``model.to_json()``) numconv must read: every conv
# family, pooling with "same", a transposed conv with output_padding, Keras's
# DTypePolicy and initializer serialisations (with ``input_axes``/``output_axes``).
CONFIG_MODEL = ("sequential_config", [
    ("Conv2D", dict(filters=6, kernel_size=3, padding="same", activation="relu", kernel_initializer="he_normal")),
    ("SeparableConv2D", dict(filters=5, kernel_size=3, depth_multiplier=2, activation="softmax")),
    ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same")),
    ("DepthwiseConv2D", dict(kernel_size=3, padding="same", depth_multiplier=2, activation="tanh")),
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, strides=2, output_padding=1)),
    ("AveragePooling2D", dict(pool_size=3, strides=1, padding="same")),
    ("GlobalMaxPooling2D", dict()),
], (2, 14, 13, 3))


def config_case(name, layers, input_shape):
    """``keras_case`` plus the model's ``to_json()``: what ``Sequential.from_config`` reads."""
    import keras

    arrays = keras_case(name, layers, input_shape)
    model = keras.Sequential([keras.Input(shape=input_shape[1:])]  # the same architecture (the JSON has no weights)
                             + [getattr(keras.layers, cls)(**kwargs) for cls, kwargs in layers])
    arrays["model_json"] = np.array(model.to_json())
    return arrays


def main():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    if keras.backend.backend() != "jax":
        print(f"warning: Keras backend is {keras.backend.backend()!r}; the fixtures were made with 'jax' "
              "(set KERAS_BACKEND=jax).", file=sys.stderr)
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    for name, config, layers, shape in all_cases():
        arrays = keras_case(name, layers, shape)
        path = os.path.join(OUT_DIR, f"{name}.npz")
        np.savez_compressed(path, config=np.array(json.dumps(config)), **arrays)
        total += os.path.getsize(path)
        print(f"{name:40s} y {tuple(arrays['y'].shape)}  {os.path.getsize(path) / 1024:.1f} KiB")
    print(f"{total / 1024:.0f} KiB in {OUT_DIR}")
    os.makedirs(CONFIG_DIR, exist_ok=True)
    name, layers, shape = CONFIG_MODEL
    path = os.path.join(CONFIG_DIR, f"{name}.npz")
    np.savez_compressed(path, **config_case(name, layers, shape))
    print(f"{name:40s} {os.path.getsize(path) / 1024:.1f} KiB in {CONFIG_DIR}")


if __name__ == "__main__":
    main()
