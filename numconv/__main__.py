"""``python -m numconv demo``: numconv's convolutions on built-in example data."""
import argparse
import sys
import time

import numpy as np


def _numpy_reference(x, w, pad_before, pad_after):
    """Plain NumPy channels-last cross-correlation (stride 1), one tap at a time."""
    r = w.ndim - 2
    xp = np.pad(x, [(0, 0)] + list(zip(pad_before, pad_after)) + [(0, 0)])
    out_sp = [xp.shape[1 + i] - w.shape[i] + 1 for i in range(r)]
    y = np.zeros((x.shape[0], *out_sp, w.shape[-1]))
    for tap in np.ndindex(*w.shape[:r]):
        win = xp[(slice(None),) + tuple(slice(t, t + n) for t, n in zip(tap, out_sp))]
        y += win @ w[tap]
    return y


def _examples(rng):
    """The seeds' examples: (title, conv function, x, kernel, kwargs, reference pads)."""
    return [
        ("Conv1D: 100 steps x 1 feature -> 64 filters, size 3, valid",
         "conv1d", rng.standard_normal((32, 100, 1)).astype(np.float32),
         rng.standard_normal((3, 1, 64)).astype(np.float32) * 0.5, {}, ((0,), (0,))),
        ("Conv1D: same padding, relu",
         "conv1d", rng.standard_normal((32, 100, 1)).astype(np.float32),
         rng.standard_normal((3, 1, 64)).astype(np.float32) * 0.5,
         {"padding": "same", "activation": "relu"}, ((1,), (1,))),
        ("Conv2D: 100x100x3 image -> 64 filters, 3x3, valid",
         "conv2d", rng.random((8, 100, 100, 3), dtype=np.float32),
         rng.standard_normal((3, 3, 3, 64)).astype(np.float32) * 0.2, {}, ((0, 0), (0, 0))),
        ("Conv2D: same padding, float64",
         "conv2d", rng.random((8, 100, 100, 3)),
         rng.standard_normal((3, 3, 3, 64)) * 0.2, {"padding": "same"}, ((1, 1), (1, 1))),
    ]


def demo(args):
    import numconv

    rng = np.random.default_rng(0)
    print(f"numconv {numconv.__version__} demo: {numconv.get_num_threads()} threads. "
          "First calls compile Numba kernels (cached for later runs).", flush=True)
    for title, fn_name, x, w, kwargs, (pb, pa) in _examples(rng):
        fn = getattr(numconv, fn_name)
        print(f"\n{title}", flush=True)
        t0 = time.perf_counter()
        y = fn(x, w, **kwargs)
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn(x, w, **kwargs)
            times.append(time.perf_counter() - t0)
        ref = _numpy_reference(x.astype(np.float64), w.astype(np.float64), pb, pa)
        if kwargs.get("activation") == "relu":
            ref = np.maximum(ref, 0)
        err = np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-30)
        method = numconv.choose_conv_method(x, w, padding=kwargs.get("padding", "valid"))
        gflops = 2 * y.size * w[..., 0].size / min(times) / 1e9
        print(f"  input {x.shape} {x.dtype} -> output {y.shape} {y.dtype}")
        print(f"  method: {method}   first call {first * 1e3:.0f} ms "
              f"(includes compile/cache load)   steady {np.median(times) * 1e3:.2f} ms "
              f"(median of {args.repeat}, {gflops:.1f} GFLOP/s)")
        print(f"  max relative difference to a plain NumPy reference: {err:.1e}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m numconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the seeds' Conv1D/Conv2D examples on built-in data",
                            description="Run convolutions on built-in example data, printing shapes, "
                                        "the method used, timings and the difference to a NumPy reference.")
    p_demo.add_argument("--repeat", type=int, default=5, help="timed repetitions per example (default 5)")
    from . import _bench

    p_bench = sub.add_parser("bench", help="time numconv against torch on the benchmark case table",
                             description=_bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _bench.add_arguments(p_bench)
    args = parser.parse_args(argv)
    return {"demo": demo, "bench": _bench.run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
