"""Edge detection and blurring of an image with numconv.conv2d / depthwise_conv.

A synthetic RGB image (a disc and a bar on a gradient) is blurred with a Gaussian
kernel (one kernel per colour channel: a depthwise convolution) and its edges are
found with Sobel filters (a conv2d from 1 grey channel to 2 gradient channels).
Kernels use Keras's layout ``(kh, kw, in_channels, out_channels)`` and numconv's
convolution is cross-correlation, as in Keras and PyTorch (no kernel flip).
Run: ``python examples/image_filters.py [--plot out.png]`` (the plot needs matplotlib).
"""
import sys

import numpy as np

import numconv

# --- a 256 x 256 RGB test image, values in [0, 1], channels last
size = 256
yy, xx = np.mgrid[:size, :size] / size
image = np.stack([0.3 * xx, 0.3 * yy, 0.2 * np.ones_like(xx)], axis=-1)
image[(yy - 0.4) ** 2 + (xx - 0.35) ** 2 < 0.2 ** 2] = (0.9, 0.2, 0.1)     # a red disc
image[170:190, 40:220] = (0.1, 0.3, 0.9)                                  # a blue bar
image += 0.05 * np.random.default_rng(0).standard_normal(image.shape)
batch = image[None].astype(np.float32)                                    # (1, 256, 256, 3)

# --- Gaussian blur, sigma 2 px: 13 x 13 taps, the same kernel for each of the 3 channels
r = np.arange(-6, 7)
g = np.exp(-r ** 2 / (2 * 2.0 ** 2))
g2 = np.outer(g, g) / np.outer(g, g).sum()
blur_kernel = np.repeat(g2[:, :, None, None], 3, axis=2).astype(np.float32)   # (13, 13, 3, 1)
blurred = numconv.depthwise_conv(batch, blur_kernel, padding="same", padding_mode="reflect")
print("blur:", batch.shape, "->", blurred.shape, "method",
      numconv.choose_conv_method(batch, blur_kernel.reshape(13, 13, 1, 3), padding="same"))

# --- Sobel edges on the grey image: 2 output channels (d/dx, d/dy)
grey = blurred.mean(axis=-1, keepdims=True)                               # (1, 256, 256, 1)
sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
sobel = np.stack([sobel_x, sobel_x.T], axis=-1)[:, :, None, :]            # (3, 3, 1, 2)
grad = numconv.conv2d(grey, sobel, padding="same", padding_mode="replicate")
edges = np.hypot(grad[..., 0], grad[..., 1])[0]                           # (256, 256)
print("edges:", grey.shape, "->", grad.shape, f"max gradient {edges.max():.2f}")

# --- check against plain NumPy
ref = sum(np.pad(grey[0, :, :, 0], 1, mode="edge")[i:i + size, j:j + size] * sobel[i, j, 0, 0]
          for i in range(3) for j in range(3))
print(f"d/dx differs from a NumPy loop by {np.abs(ref - grad[0, :, :, 0]).max():.1e}")
strong = edges > 0.5 * edges.max()
print(f"{strong.mean() * 100:.1f} % of pixels are strong edges (the disc's rim and the bar's sides)")
assert not strong[178, 60:200].any() and strong[160:200, 130].any()    # inside the bar: none; its rim: yes

if "--plot" in sys.argv:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(12, 4))
    for a, im, title in zip(ax, (np.clip(image, 0, 1), np.clip(blurred[0], 0, 1), edges),
                            ("image", "Gaussian blur (depthwise_conv)", "Sobel edges (conv2d)")):
        a.imshow(im, cmap="gray")
        a.set_title(title)
        a.axis("off")
    out = sys.argv[sys.argv.index("--plot") + 1]
    fig.savefig(out, dpi=80, bbox_inches="tight")
    print("saved", out)
