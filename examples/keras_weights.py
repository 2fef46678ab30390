"""Run a Keras Conv1D model's saved weights with numconv.layers, without TensorFlow.

On the Keras side (any backend), save the weights in Keras's order::

    np.savez("stock_conv.npz", *keras_model.get_weights())          # arr_0, arr_1, ...

Here the same layers in numconv.layers take that list unchanged. By default this
script loads ``tests/fixtures/keras/model_stock.npz``, which
``scripts/make_keras_fixtures.py`` wrote from Keras 3 (the stock-price model's conv
part: Conv1D(16, 5, relu) -> MaxPooling1D(4) on windows of 50 prices), together
with an input and Keras's own output to compare against.
Run: ``python examples/keras_weights.py [weights.npz]``.
"""
import os
import re
import sys

import numpy as np

from numconv.layers import Conv1D, MaxPooling1D, Sequential

here = os.path.dirname(os.path.abspath(__file__))
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, os.pardir, "tests", "fixtures", "keras",
                                                           "model_stock.npz")
saved = np.load(path)
# Keras's weight list, in order: np.savez names them arr_0, arr_1, ...; the fixtures w0, w1, ...
keys = sorted((k for k in saved.files if re.fullmatch(r"(arr_|w)\d+", k)), key=lambda k: int(re.sub(r"\D", "", k)))
weights = [saved[k] for k in keys]
print(f"loaded {len(weights)} arrays from {os.path.basename(path)}:", [w.shape for w in weights])

model = Sequential([Conv1D(16, 5, activation="relu", input_shape=(50, 1)), MaxPooling1D(4)], name="stock_conv")
model.set_weights(weights)               # checks count and shapes against Keras's layouts
model.summary()

if "x" in saved.files and "y" in saved.files:
    y = model(saved["x"])
    print(f"numconv vs Keras on the saved input: max |difference| {np.abs(y - saved['y']).max():.1e} "
          f"(Keras output scale {np.abs(saved['y']).max():.2f})")
    assert np.allclose(y, saved["y"], rtol=1e-5, atol=1e-5)

# New data: windows of 50 steps of a random-walk price series, scaled to [0, 1] per window.
rng = np.random.default_rng(1)
prices = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(1050)))
windows = np.lib.stride_tricks.sliding_window_view(prices, 50)[:1000]
windows = (windows - windows.min(1, keepdims=True)) / np.ptp(windows, axis=1, keepdims=True)
features = model(windows[..., None])
print(f"features for {len(windows)} windows: {features.shape} {features.dtype}, "
      f"{(features > 0).mean() * 100:.0f} % active")
