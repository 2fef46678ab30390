"""``python -m numconv demo``: Keras conv models from the seeds, run by numconv's layers on built-in data.

For each model it prints a Keras-style summary (layer, output shape, parameters)
with the method the dispatcher chose for each convolution and its time, then the
whole model's time and the largest difference to a plain NumPy reference.

Models (``--model``):
  seeds  Convolution1D(64, 3, relu) on (batch, 100, 1) and Convolution2D(64, (3, 3), relu)
         on (batch, 100, 100, 3), the Keras 2 snippets the project started from
  imdb   the IMDb sentiment model's conv part: (batch, 100, 128) embedded reviews ->
         Conv1D(32, 7, relu) -> MaxPooling1D(5) -> Conv1D(32, 7, relu) -> GlobalMaxPooling1D
  stock  the stock-price model's conv part: windows of 50 prices (batch, 50, 1) ->
         Conv1D(16, 5, relu) -> MaxPooling1D(4)
  all    all of them (default)

The first run compiles Numba kernels (cached next to the package for later runs);
progress is printed while it does.
"""
import argparse
import time

import numpy as np

from ._cli import non_negative_int, positive_int

MODELS = ("seeds", "imdb", "stock")


def add_arguments(parser):
    parser.add_argument("--model", choices=MODELS + ("all",), default="all",
                        help="which model(s) to run (default: all)")
    parser.add_argument("--batch", type=positive_int, default=None,
                        help="batch size (default: 32 for the 1-D models, 8 for the 2-D one)")
    parser.add_argument("--repeat", type=positive_int, default=5,
                        help="timed repetitions per layer and model; the best is shown (default 5)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed for the data and the weights (default 0)")


# ---------------------------------------------------------------- plain NumPy reference


def _numpy_conv(x, w, b, padding, activation):
    """Channels-last cross-correlation, stride 1, one tap at a time (float64)."""
    r = w.ndim - 2
    pads = [((k - 1) // 2, k // 2) if padding == "same" else (0, 0) for k in w.shape[:r]]
    xp = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    out_sp = [xp.shape[1 + i] - w.shape[i] + 1 for i in range(r)]
    y = np.zeros((x.shape[0], *out_sp, w.shape[-1]))
    for tap in np.ndindex(*w.shape[:r]):
        win = xp[(slice(None),) + tuple(slice(t, t + n) for t, n in zip(tap, out_sp))]
        y += win @ w[tap]
    if b is not None:
        y += b
    return np.maximum(y, 0) if activation == "relu" else y


def _numpy_layer(layer, x):
    kind = type(layer).__name__
    if kind.startswith("Conv"):
        return _numpy_conv(x, layer.kernel.astype(np.float64), layer.bias, layer.padding, layer.activation)
    if kind == "MaxPooling1D":
        k = layer.pool_size[0]
        n = x.shape[1] // k
        return x[:, :n * k].reshape(x.shape[0], n, k, -1).max(axis=2)
    if kind == "GlobalMaxPooling1D":
        return x.max(axis=1)
    raise NotImplementedError(kind)


# ---------------------------------------------------------------- built-in data and models


def _signals(rng, n, steps):
    """Noisy sine waves of random frequency and phase: (n, steps, 1)."""
    t = np.arange(steps)
    f = rng.uniform(0.02, 0.2, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    return (np.sin(2 * np.pi * f * t + phase) + 0.1 * rng.standard_normal((n, steps)))[..., None]


def _images(rng, n, size):
    """Discs and bars of random colour on a noisy background: (n, size, size, 3) in [0, 1]."""
    yy, xx = np.mgrid[:size, :size]
    imgs = 0.1 * rng.random((n, size, size, 3))
    for img in imgs:
        cy, cx, rad = rng.uniform(20, size - 20, 2).tolist() + [rng.uniform(8, 20)]
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < rad ** 2] += rng.random(3)
        r0 = int(rng.integers(0, size - 10))
        img[r0:r0 + 6] += rng.random(3) * 0.5
    return np.clip(imgs, 0, 1)


def _embedded_reviews(rng, n):
    """Token ids of 100-word 'reviews' looked up in a 5000 x 128 embedding table."""
    table = rng.standard_normal((5000, 128)) * 0.05
    tokens = rng.zipf(1.3, (n, 100)) % 5000
    return table[tokens]


def _price_windows(rng, n):
    """Windows of 50 steps of a geometric random walk, each scaled to [0, 1]."""
    prices = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n + 50)))
    win = np.lib.stride_tricks.sliding_window_view(prices, 50)[:n]
    lo, hi = win.min(axis=1, keepdims=True), win.max(axis=1, keepdims=True)
    return ((win - lo) / (hi - lo))[..., None]


def _models(which, batch, seed):
    """``(title, Sequential, x)`` for the chosen models."""
    from . import layers as L

    rng = np.random.default_rng(seed)
    out = []
    if which in ("seeds", "all"):
        n = batch or 32
        out.append(("Convolution1D(filters=64, kernel_size=3, activation='relu', input_shape=(100, 1))",
                    L.Sequential([L.Convolution1D(filters=64, kernel_size=3, activation="relu",
                                                  input_shape=(100, 1), seed=seed)], name="seed_conv1d"),
                    _signals(rng, n, 100)))
        n = batch or 8
        out.append(("Convolution2D(filters=64, kernel_size=(3, 3), activation='relu', input_shape=(100, 100, 3))",
                    L.Sequential([L.Convolution2D(filters=64, kernel_size=(3, 3), activation="relu",
                                                  input_shape=(100, 100, 3), seed=seed)], name="seed_conv2d"),
                    _images(rng, n, 100)))
    if which in ("imdb", "all"):
        n = batch or 32
        out.append(("IMDb sentiment model, conv part: embedded reviews (batch, 100, 128)",
                    L.Sequential([L.Conv1D(32, 7, activation="relu", input_shape=(100, 128), seed=seed),
                                  L.MaxPooling1D(5), L.Conv1D(32, 7, activation="relu", seed=seed + 1),
                                  L.GlobalMaxPooling1D()], name="imdb"),
                    _embedded_reviews(rng, n)))
    if which in ("stock", "all"):
        n = batch or 32
        out.append(("Stock-price model, conv part: windows of 50 prices (batch, 50, 1)",
                    L.Sequential([L.Conv1D(16, 5, activation="relu", input_shape=(50, 1), seed=seed),
                                  L.MaxPooling1D(4)], name="stock"),
                    _price_windows(rng, n)))
    return out


# ---------------------------------------------------------------- running


def _timed(fn, x, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return min(times)  # best of `repeat`: the machine may be shared, and the minimum is the least disturbed


def _run_model(title, model, x, repeat):
    import numconv

    from .layers._model import format_table

    print(f"\n{title}", flush=True)
    x = x.astype(np.float32)
    rows, h, href = [], x, x.astype(np.float64)
    for layer in model.layers:
        kind = type(layer).__name__
        print(f"  first call of {layer.name} ({kind}): compiling or loading its kernels ...", end=" ", flush=True)
        t0 = time.perf_counter()
        y = layer(h)
        print(f"{time.perf_counter() - t0:.2f} s", flush=True)
        t = _timed(layer, h, repeat)
        method, speed = "-", ""
        if getattr(layer, "kernel", None) is not None and kind.startswith("Conv"):
            kw = {k: v for k, v in layer._op_kwargs().items() if k != "method"}
            method = numconv.choose_conv_method(h, layer.kernel, layer.bias, **kw)
            flops = 2 * y.size * layer.kernel[..., 0].size
            speed = f"{flops / t / 1e9:.1f}"
        rows.append((f"{layer.name} ({kind})", "(None, " + ", ".join(map(str, y.shape[1:])) + ")",
                     f"{layer.count_params():,}", method, f"{t * 1e3:.3f}", speed))
        h, href = y, _numpy_layer(layer, href)
    for line in format_table(("Layer (type)", "Output Shape", "Param #", "Method", "Time (ms)", "GFLOP/s"), rows,
                             title=f'Model: "{model.name}"'):
        print(line)
    total = _timed(model, x, repeat)
    err = np.abs(h - href).max() / max(np.abs(href).max(), 1e-30)
    print(f" Total params: {model.count_params():,}")
    print(f" input {x.shape} {x.dtype} -> output {h.shape} {h.dtype}; whole model {total * 1e3:.3f} ms "
          f"(best of {repeat}, batch {x.shape[0]})")
    print(f" max relative difference to a plain NumPy reference (float64 loops): {err:.1e}", flush=True)
    return err


def run(args):
    import numconv

    if args.batch is not None and args.batch < 1:
        raise SystemExit("demo: --batch must be >= 1")
    if args.repeat < 1:
        raise SystemExit("demo: --repeat must be >= 1")
    t0 = time.perf_counter()
    print(f"numconv {numconv.__version__} demo: Keras conv models on numconv.layers, {numconv.get_num_threads()} "
          "threads, float32 as in Keras. The first calls compile Numba kernels (cached for later runs).",
          flush=True)
    worst = 0.0
    for title, model, x in _models(args.model, args.batch, args.seed):
        worst = max(worst, _run_model(title, model, x, args.repeat))
    print(f"\ndone in {time.perf_counter() - t0:.1f} s; largest relative difference to NumPy: {worst:.1e} "
          f"({'OK' if worst < 1e-4 else 'LARGER THAN EXPECTED'} for float32)")
    return 0 if worst < 1e-4 else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m numconv demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
