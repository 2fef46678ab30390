"""Dense convolutions of the case table (issue 3, items 3 and 4): numconv against
torch (NCHW and channels_last memory formats) and scipy, at 2 threads.

``setup`` builds the inputs and calls once, so JIT compilation (or Numba cache
loading) stays out of ``time_conv``; first-call cost is in ``bench_jit``. A peer
that is not installed, or has no such op (scipy has no channel-contracting
convolution), raises ``NotImplementedError`` in ``setup``: asv records a skip.
"""
from .common import CASES, IMPLS, METHODS, case_names, median_time, prepare


class _ConvSuite:
    param_names = ["case", "impl"]
    timeout = 300  # wavenet / strided1d / conv3d with a slow peer take seconds per sample

    def setup(self, case, impl):
        self.fn = prepare(case, impl)
        self.flops = CASES[case].flops

    def time_conv(self, case, impl):
        self.fn()

    def track_gflops(self, case, impl):
        return self.flops / median_time(self.fn) / 1e9

    track_gflops.unit = "GFLOP/s"


class Conv1D(_ConvSuite):
    """conv1d: imdb (32x100x128 -> 32, k7), stock (1000x50x1 -> 16, k5), wavenet
    (k2 dilation 8 causal), strided (k9 stride 4 pad 4), float64 imdb."""

    params = [case_names("conv1d"), list(IMPLS)]


class Conv2D(_ConvSuite):
    """conv2d: resnet 3x3, pointwise 1x1, stem 7x7/2, dilated 3x3 d2, float64 resnet;
    few filters over 64 channels: a 1x1 head to 2 classes, a 3x3 output to 3 colours."""

    params = [case_names("conv2d"), list(IMPLS)]


class Conv3D(_ConvSuite):
    """conv3d: 2x16x32x32x32 -> 32, 3x3x3 same."""

    params = [case_names("conv3d"), list(IMPLS)]


class ConvVariants(_ConvSuite):
    """resnet with reflect padding, stride 2 + dilation 2, groups 4 and channels_first
    input: each must stay within 3x (1.25x for channels_first) of plain resnet's
    time per FLOP (issue 3, items 3 and 4)."""

    params = [case_names("variants"), list(IMPLS)]


# Cases where the dispatcher's choice is worth watching as paths are added.
DISPATCH_CASES = ["resnet", "pointwise", "stem", "stock", "wavenet", "conv3d"]


class ConvMethods:
    """Every registered ``method=`` path (``numconv._dispatch.METHODS``) on a few
    cases, and the dispatcher's regret ``t(auto) / min over methods of t(method)``
    (1.0 when ``"auto"`` picks the fastest path)."""

    params = [DISPATCH_CASES, list(METHODS)]
    param_names = ["case", "method"]
    timeout = 300

    def setup(self, case, method):
        self.fn = prepare(case, "numconv", method=method)

    def time_conv(self, case, method):
        self.fn()


class ConvDispatch:
    """Dispatcher regret ``t(method="auto") / min(t(method) for method in METHODS)``."""

    params = [DISPATCH_CASES]
    param_names = ["case"]
    timeout = 300

    def setup(self, case):
        self.auto = prepare(case, "numconv")
        self.paths = {}
        for m in METHODS:
            try:
                self.paths[m] = prepare(case, "numconv", method=m)
            except (NotImplementedError, ValueError):
                continue

    def track_regret(self, case):
        best = min(median_time(fn) for fn in self.paths.values())
        return median_time(self.auto) / best

    track_regret.unit = "ratio"


# A few shapes, numconv and torch: peak resident memory of the process (asv
# peakmem_* reads ru_maxrss, a high-water mark since process start), next to
# peakmem_reference (setup alone: imports, inputs, compiled code) so the
# difference is the call's own memory. setup therefore warms the JIT / oneDNN on
# the shrunk case only: a full-size warm-up call would raise the mark for both.
MEMORY_CASES = ["resnet", "resnet_reflect", "wavenet", "depthwise2d"]


class ConvPeakMemory:
    """Peak RSS of one call, against ``peakmem_reference`` (the same setup, no call)."""

    params = [MEMORY_CASES, ["numconv", "torch"]]
    param_names = ["case", "impl"]
    timeout = 300

    def setup(self, case, impl):
        self.fn = prepare(case, impl, warm=False)

    def peakmem_conv(self, case, impl):
        self.fn()

    def peakmem_reference(self, case, impl):
        pass


class ConvScratch:
    """Extra memory of one numconv call beyond its output, as ``tracemalloc`` sees
    NumPy's allocations (issue 3, item 6: output plus bounded scratch, no im2col)."""

    params = [[c for c in CASES]]
    param_names = ["case"]
    timeout = 300

    def setup(self, case):
        self.fn = prepare(case, "numconv")

    def track_extra_mib(self, case):
        from numconv._bench import peak_extra_mib

        return peak_extra_mib(self.fn)

    track_extra_mib.unit = "MiB"
