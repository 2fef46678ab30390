"""Issue 4, item 5: large kernels, where the FFT and overlap-add paths win.

``ConvFFT``: the case table's ``fft`` area (conv2d 4x256x256x8 -> 8 with a 25x25
kernel, conv1d 8x65536x4 -> 4 with 1025 taps), numconv (``method="auto"``)
against torch, which has no FFT path. ``Signal``: ``numconv.signal.convolve``
against the ``scipy.signal`` function each case names (``fftconvolve`` or
``oaconvolve``), SciPy called as users call it (its FFTs single-threaded).
``track_speedup`` is peer time / numconv time measured in the same process, as
in ``python -m numconv bench``.
"""
from numconv._cases import SIGNAL_CASES, prepare_signal

from .bench_conv import _ConvSuite
from .common import IMPLS, THREADS, case_names, median_time, numconv_threads


class ConvFFT(_ConvSuite):
    """conv with 25x25 and 1025-tap kernels against torch (both layouts)."""

    params = [case_names("fft"), list(IMPLS)]


class Signal:
    """numconv.signal.convolve against scipy.signal.fftconvolve / oaconvolve."""

    params = [list(SIGNAL_CASES), ["numconv", "scipy"]]
    param_names = ["case", "impl"]
    timeout = 300

    def setup(self, case, impl):
        threads = numconv_threads() if impl == "numconv" else THREADS
        self.fn = prepare_signal(case, impl, threads=threads)
        self.fn()  # warm: JIT, transform plans
        self.flops = SIGNAL_CASES[case].flops

    def time_convolve(self, case, impl):
        self.fn()

    def track_gflops(self, case, impl):
        """Direct-equivalent GFLOP/s (2 x the full result's multiply-adds)."""
        return self.flops / median_time(self.fn) / 1e9

    track_gflops.unit = "GFLOP/s"


class SignalSpeedup:
    """scipy time / numconv time, both measured here (the issue's target: >= 2)."""

    params = [list(SIGNAL_CASES)]
    param_names = ["case"]
    timeout = 300

    def setup(self, case):
        self.peer = prepare_signal(case, "scipy")  # NotImplementedError without SciPy: asv skips
        self.ours = prepare_signal(case, "numconv", threads=numconv_threads())
        self.ours()
        self.peer()

    def track_speedup(self, case):
        return median_time(self.peer) / median_time(self.ours)

    track_speedup.unit = "ratio"
