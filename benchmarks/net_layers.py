"""numconv against torch on layers of well-known networks, outside the case table.

    python benchmarks/net_layers.py [--threads N] [--budget 0.3]

The case table (``numconv/_cases.py``) holds the issues' targets; this script
times 24 float32 layers taken from ResNet-50, VGG, Inception, MobileNet,
EfficientNet, YOLO, U-Net (its bottom and its 1 x 1 head), an image decoder's
3 x 3 output to colours, DeepLab's ASPP, ResNeXt and 1-D text and audio models
(late stages with 7 x 7 to 16 x 16 maps and 512-1280 channels, strided
downsampling, depthwise, dilated, grouped and squeeze-excite 1 x 1 layers), each
numconv channels_last (``method="auto"``) against torch's faster of NCHW and
channels_last under ``no_grad``, best of repeated calls in one process, and
prints the path numconv ran and the speedup (torch / numconv). Needs torch.
A plain script (no asv benchmarks): asv imports it and finds nothing to run.
"""
import argparse
import math
import sys
import time

import numpy as np

#: name, batch, spatial, in channels, filters, kernel, stride, symmetric pad, groups, dilation
LAYERS = [
    ("resnet50_7x7", 8, (7, 7), 512, 512, (3, 3), 1, 1, 1, 1),
    ("resnet_14x14", 8, (14, 14), 256, 256, (3, 3), 1, 1, 1, 1),
    ("vgg_14x14", 1, (14, 14), 512, 512, (3, 3), 1, 1, 1, 1),
    ("inception_8x8_1x1", 8, (8, 8), 1280, 192, (1, 1), 1, 0, 1, 1),
    ("mobilenet_dw_7x7", 8, (7, 7), 1024, 1024, (3, 3), 1, 1, 1024, 1),
    ("mobilenet_dw_s2", 8, (14, 14), 512, 512, (3, 3), 2, 1, 512, 1),
    ("mobilenet_pw_7x7", 8, (7, 7), 1024, 1024, (1, 1), 1, 0, 1, 1),
    ("resnet_down_3x3_s2", 8, (56, 56), 64, 128, (3, 3), 2, 1, 1, 1),
    ("resnet_down_1x1_s2", 8, (28, 28), 128, 256, (1, 1), 2, 0, 1, 1),
    ("mnist_conv1", 64, (28, 28), 1, 32, (3, 3), 1, 0, 1, 1),
    ("mnist_conv2", 64, (26, 26), 32, 64, (3, 3), 1, 0, 1, 1),
    ("text_conv1d", 32, (400,), 50, 250, (3,), 1, 0, 1, 1),
    ("audio_conv1d_s4", 16, (16000,), 1, 32, (80,), 4, 0, 1, 1),
    ("resnet1d", 16, (1000,), 64, 64, (3,), 1, 1, 1, 1),
    ("unet_bottom", 2, (16, 16), 512, 1024, (3, 3), 1, 1, 1, 1),
    ("resnet_7x7_s2", 8, (14, 14), 256, 512, (3, 3), 2, 1, 1, 1),
    ("c3d_small", 2, (4, 7, 7), 256, 256, (3, 3, 3), 1, 1, 1, 1),
    ("yolo_13x13", 1, (13, 13), 512, 1024, (3, 3), 1, 1, 1, 1),
    ("efficientnet_dw5", 8, (14, 14), 480, 480, (5, 5), 1, 2, 480, 1),
    ("aspp_d6", 2, (32, 32), 256, 256, (3, 3), 1, 6, 1, 6),
    ("squeeze_excite_fc", 32, (1, 1), 256, 64, (1, 1), 1, 0, 1, 1),
    ("resnext_g32", 8, (14, 14), 256, 256, (3, 3), 1, 1, 32, 1),
    ("unet_head_1x1", 2, (256, 256), 64, 2, (1, 1), 1, 0, 1, 1),
    ("decoder_rgb_3x3", 4, (128, 128), 64, 3, (3, 3), 1, 1, 1, 1),
]


def best(fn, budget):
    """The fastest of repeated calls of ``fn`` (after one warm-up), at least 5 and
    as many as fit in ``budget`` seconds (at most 100)."""
    fn()
    times = []
    end = time.perf_counter() + budget
    while len(times) < 5 or (time.perf_counter() < end and len(times) < 100):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def path_of(x, w, stride, pad, groups, dilation):
    """The path (and direct kernel) ``auto`` runs for the layer."""
    from numconv import _dispatch
    from numconv._paths import direct
    from numconv._spec import conv_spec

    spec = conv_spec("conv", x, w, None, stride, pad, dilation, groups, "channels_last", "zeros", None, "auto",
                     _dispatch.METHODS)[0]
    method = _dispatch.resolve(spec)
    if method != "direct":
        return method
    if direct.is_depthwise(spec):
        return "direct/slide" if direct.slides(spec) else "direct/depthwise"
    for name in ("dot", "narrow", "short", "long"):
        if getattr(direct, "is_" + name)(spec):
            return "direct/" + name
    return "direct/tile"


def parse_args(argv=None):
    """The command line, checked as ``python -m numconv bench`` checks it: a bad
    ``--threads`` (0, or more than Numba's ``NUMBA_NUM_THREADS``) is a usage error
    (exit status 2), not a traceback from ``set_num_threads``."""
    import numba

    from numconv._cli import thread_count

    default = min(2, numba.config.NUMBA_NUM_THREADS)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--threads", type=thread_count, default=default, metavar="N",
                        help=f"threads for numconv and torch (default {default}: 2, or fewer if Numba sees fewer "
                             "cores)")
    parser.add_argument("--budget", type=_positive_seconds, default=0.3, metavar="S",
                        help="seconds of timed calls per measurement (default 0.3)")
    return parser.parse_args(argv)


def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def main(argv=None):
    args = parse_args(argv)
    import torch
    import torch.nn.functional as F

    import numconv

    torch.set_num_threads(args.threads)
    numconv.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    logs = []
    print(f"{'layer':20s} {'numconv path':18s} {'numconv ms':>10s} {'torch ms':>9s} {'speedup':>8s}")
    for name, n, spatial, c, f, k, s, p, g, d in LAYERS:
        r = len(spatial)
        x = rng.standard_normal((n,) + spatial + (c,), dtype=np.float32)
        w = rng.standard_normal(k + (c // g, f), dtype=np.float32)
        pads = [(p, p)] * r
        t_nc = best(lambda: numconv.conv(x, w, strides=s, padding=pads, dilation_rate=d, groups=g), args.budget)
        xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
        wt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1))))
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[r]
        with torch.no_grad():
            peers = [best(lambda: conv(xt, wt, None, s, p, d, g), args.budget)]
            if r > 1:
                fmt = torch.channels_last if r == 2 else torch.channels_last_3d
                xc, wc = xt.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt)
                peers.append(best(lambda: conv(xc, wc, None, s, p, d, g), args.budget))
        t_torch = min(peers)
        logs.append(math.log(t_torch / t_nc))
        print(f"{name:20s} {path_of(x, w, s, pads, g, d):18s} {t_nc * 1e3:10.3f} {t_torch * 1e3:9.3f} "
              f"{t_torch / t_nc:8.2f}", flush=True)
    print(f"geometric-mean speedup over torch's best layout: {math.exp(sum(logs) / len(logs)):.2f}x "
          f"({len(logs)} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
