"""Depthwise convolutions (groups == channels) of the case table: memory-bound,
so ``track_gbytes`` reports the compulsory traffic (read x and kernel, write the
output once) per second next to GFLOP/s. numconv against torch (NCHW and
channels_last) and scipy.signal.fftconvolve over the spatial axes."""
from .bench_conv import _ConvSuite
from .common import CASES, IMPLS, case_names, median_time


class Depthwise(_ConvSuite):
    """depthwise2d (8x56x56x128, 3x3 same) and depthwise1d (16x16000x64, k9 same)."""

    params = [case_names("depthwise"), list(IMPLS)]

    def track_gbytes(self, case, impl):
        return CASES[case].min_bytes / median_time(self.fn) / 1e9

    track_gbytes.unit = "GB/s"
