"""Pooling (issue 5, item 4): ``numconv.max_pool`` / ``average_pool`` /
``global_average_pool`` against torch at 2 threads.

The ``torch`` impl is torch's best layout: ``torch.nn.functional.max_pool2d`` /
``avg_pool2d`` (``adaptive_avg_pool2d`` for the global case) under
``torch.no_grad()`` on a contiguous NCHW tensor and on the same data in
``torch.channels_last`` memory format; ``setup`` times both and keeps the
faster. Memory-bound ops, so ``track_gbytes`` reports the compulsory traffic
(read x once, write the output once) per second.

``setup`` builds the inputs and calls once, so JIT compilation (or Numba cache
loading) stays out of ``time_pool``. Without torch the torch impl raises
``NotImplementedError`` (asv: skipped). Case names are append-only.

Run directly for a table of the figures (numconv, torch NCHW, torch
channels_last, speedup over torch's best)::

    python -m benchmarks.bench_pool
"""
import functools

import numpy as np

from .common import THREADS, median_time, numconv_threads

#: name -> (op, x shape (channels-last), pool_size, strides, padding). Append-only.
CASES = {
    "max_pool_3x3s2": ("max_pool", (8, 112, 112, 64), (3, 3), (2, 2), "valid"),  # ResNet stem pool
    "average_pool_3x3s2": ("average_pool", (8, 112, 112, 64), (3, 3), (2, 2), "valid"),
    "average_pool_2x2": ("average_pool", (8, 56, 56, 256), (2, 2), None, "valid"),  # DenseNet transition
    "global_average_pool": ("global_average_pool", (32, 7, 7, 2048), None, None, None),  # ResNet-50 head
}
IMPLS = ["numconv", "torch"]


@functools.lru_cache(maxsize=2)
def case_input(case):
    """Seeded float32 channels-last input of ``case``."""
    shape = CASES[case][1]
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def case_bytes(case):
    """Compulsory traffic: read x once, write the output once (float32)."""
    op, shape, pool, strides, _ = CASES[case]
    if op == "global_average_pool":
        out = shape[0] * shape[-1]
    else:
        strides = strides or pool
        out = shape[0] * shape[-1] * int(np.prod([(L - k) // s + 1 for L, k, s in zip(shape[1:-1], pool, strides)]))
    return 4 * (int(np.prod(shape)) + out)


def prepare_numconv(case):
    import numconv

    numconv.set_num_threads(numconv_threads())
    op, _, pool, strides, padding = CASES[case]
    x = case_input(case)
    if op == "global_average_pool":
        def fn():
            return numconv.global_average_pool(x)
    else:
        f = getattr(numconv, op)

        def fn():
            return f(x, pool, strides, padding)
    fn()  # JIT compile or cache load
    return fn


def prepare_torch(case, layout=None):
    """torch's call on ``layout`` ("nchw" or "channels_last"); ``None``: the faster."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        raise NotImplementedError(f"torch is not installed ({e})") from None
    if layout is None:
        fns = [prepare_torch(case, lay) for lay in ("nchw", "channels_last")]
        return min(fns, key=median_time)
    torch.set_num_threads(THREADS)
    op, _, pool, strides, padding = CASES[case]
    xt = torch.from_numpy(np.ascontiguousarray(case_input(case).transpose(0, 3, 1, 2)))
    if layout == "channels_last":
        xt = xt.contiguous(memory_format=torch.channels_last)
    if op == "global_average_pool":
        def call():
            return F.adaptive_avg_pool2d(xt, 1)
    else:
        f = F.max_pool2d if op == "max_pool" else F.avg_pool2d
        strides = strides or pool

        def call():
            return f(xt, pool, strides)

    def fn():
        with torch.no_grad():
            return call()

    fn()
    fn.layout = layout
    return fn


@functools.lru_cache(maxsize=8)
def prepare(case, impl):
    """A warmed-up zero-argument call (cached: asv re-runs ``setup`` per sample)."""
    return prepare_numconv(case) if impl == "numconv" else prepare_torch(case)


class Pooling:
    """max_pool / average_pool 3x3 stride 2 on 8x112x112x64, average_pool 2x2 on
    8x56x56x256, global_average_pool on 32x7x7x2048; float32, valid padding."""

    params = [list(CASES), IMPLS]
    param_names = ["case", "impl"]
    timeout = 120

    def setup(self, case, impl):
        self.fn = prepare(case, impl)

    def time_pool(self, case, impl):
        self.fn()

    def track_gbytes(self, case, impl):
        return case_bytes(case) / median_time(self.fn) / 1e9

    track_gbytes.unit = "GB/s"


class PoolingSpeedup:
    """``t(torch's best layout) / t(numconv)``: above 1 when numconv is faster."""

    params = [list(CASES)]
    param_names = ["case"]
    timeout = 120

    def setup(self, case):
        self.torch = prepare(case, "torch")
        self.numconv = prepare(case, "numconv")

    def track_speedup(self, case):
        return median_time(self.torch, repeat=9) / median_time(self.numconv, repeat=9)

    track_speedup.unit = "ratio"


def main(rounds=9):
    """Print median ms per call of numconv and torch's two layouts, interleaved
    round by round so all see the same machine state."""
    import statistics

    print(f"threads: {THREADS}; median of {rounds} rounds, each the median of 5 samples of >= 20 ms")
    print(f"{'case':22s} {'numconv ms':>11s} {'torch NCHW':>11s} {'torch CL':>11s} {'speedup':>8s}")
    for case in CASES:
        fns = {"numconv": prepare_numconv(case)}
        try:
            fns["nchw"] = prepare_torch(case, "nchw")
            fns["channels_last"] = prepare_torch(case, "channels_last")
        except NotImplementedError:
            pass
        times = {k: [] for k in fns}
        for _ in range(rounds):
            for k, fn in fns.items():
                times[k].append(median_time(fn) * 1e3)
        t = {k: statistics.median(v) for k, v in times.items()}
        row = f"{case:22s} {t['numconv']:11.3f}"
        if len(t) == 3:
            best = min(t["nchw"], t["channels_last"])
            row += f" {t['nchw']:11.3f} {t['channels_last']:11.3f} {best / t['numconv']:7.2f}x"
        print(row)


if __name__ == "__main__":
    main()
