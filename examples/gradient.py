"""Gradients of a convolution with numconv's backprop functions: fit a kernel.

``y = conv1d(x, w)`` for a loss ``L(y)``: given ``g = dL/dy``,
``numconv.conv_backprop_kernel(x, g, w.shape)`` is ``dL/dw`` and
``numconv.conv_backprop_input(g, w, x.shape)`` is ``dL/dx`` (the same keyword
arguments as the forward conv). Here gradient descent recovers an unknown
5-tap, 2-in / 3-out filter from input/output pairs, after checking both
gradients against finite differences. Run: ``python examples/gradient.py``.
"""
import numpy as np

import numconv

rng = np.random.default_rng(0)
args = dict(strides=2, padding="same", dilation_rate=1)        # any conv arguments work
x = rng.standard_normal((16, 200, 2))                           # (batch, steps, channels)
w_true = rng.standard_normal((5, 2, 3))                         # (kernel, in, out): Keras layout
y_true = numconv.conv1d(x, w_true, **args) + 0.01 * rng.standard_normal((16, 100, 3))


def loss(w, x):
    r = numconv.conv1d(x, w, **args) - y_true
    return 0.5 * np.sum(r ** 2), r                              # L and dL/dy


# --- check the gradients against central finite differences
w = rng.standard_normal(w_true.shape)
L, g = loss(w, x)
dw = numconv.conv_backprop_kernel(x, g, w.shape, **args)
dx = numconv.conv_backprop_input(g, w, x.shape, **args)
h, i = 1e-5, (2, 1, 0)
wp, wm = w.copy(), w.copy()
wp[i] += h
wm[i] -= h
fd = (loss(wp, x)[0] - loss(wm, x)[0]) / (2 * h)
print(f"dL/dw{i}: backprop {dw[i]:.6f}, finite difference {fd:.6f}")
xp, xm = x.copy(), x.copy()
j = (3, 41, 1)
xp[j] += h
xm[j] -= h
fdx = (loss(w, xp)[0] - loss(w, xm)[0]) / (2 * h)
print(f"dL/dx{j}: backprop {dx[j]:.6f}, finite difference {fdx:.6f}")
assert abs(dw[i] - fd) < 1e-4 * max(1, abs(fd)) and abs(dx[j] - fdx) < 1e-4 * max(1, abs(fdx))

# --- gradient descent on the kernel
# For white-noise input the loss's curvature in w is about the number of output
# positions (16 x 100) in every direction, so this step size halves the error per step.
lr = 0.5 / (16 * 100)
for step in range(31):
    L, g = loss(w, x)
    w -= lr * numconv.conv_backprop_kernel(x, g, w.shape, **args)
    if step % 10 == 0:
        print(f"step {step:3d}: loss {L:10.3f}, max |w - w_true| {np.abs(w - w_true).max():.4f}")
assert np.abs(w - w_true).max() < 0.01
print("recovered the filter; bias gradient would be g.sum(axis=(0, 1)):", g.sum(axis=(0, 1)).round(3))
