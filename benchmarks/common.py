"""Shared workloads and data for the asv suite.

The case table, the seeded ``lru_cache``d data and the peer registry live in the
package (``numconv/_cases.py``), so ``python -m numconv bench`` and asv measure
exactly the same thing; this module re-exports them and adds asv glue. Like the
table itself, parameter lists here are append-only: renaming a case or an impl
orphans its asv history.

Importable without torch or asv: peers import their library when a benchmark
prepares them and raise ``NotImplementedError`` (asv: skipped) when it is absent.

``ASV_SKIP_SLOW=1`` skips the cases marked ``slow`` in the table
(scikit-image's convention).
"""
import functools
import os
import statistics
import sys
import time

try:
    import numconv
except ModuleNotFoundError as e:  # `asv run -E existing` without numconv installed: this checkout
    if e.name != "numconv":
        raise
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import numconv

from numconv._cases import (CASE_LIST, CASES, PEERS, TORCH_LAYOUTS, Case, get_case,  # noqa: F401
                            inputs, reference, rel_error)
from numconv._dispatch import METHODS  # noqa: F401

#: Threads for numconv, torch and scipy.fft (issue 3 compares at 2 threads).
THREADS = 2
SKIP_SLOW = os.environ.get("ASV_SKIP_SLOW", "0") not in ("", "0")

#: The ``impl`` parameter: asv name -> (PEERS key, options). torch's two memory
#: formats are separate impls so both histories are kept; the bench's "torch best"
#: is the faster of the two. torch's channels_last runs through oneDNN.
IMPLS = {
    "numconv": ("numconv", {}),
    "torch": ("torch", {"layout": "nchw"}),
    "torch_channels_last": ("torch", {"layout": "channels_last"}),
    "scipy": ("scipy", {}),
}


def numconv_threads():
    import numba

    return min(THREADS, numba.config.NUMBA_NUM_THREADS)


def case_names(area):
    """Names of the table's cases in one area ("conv1d", "conv2d", "depthwise", ...)."""
    return [c.name for c in CASE_LIST if c.area == area]


def prepare(case, impl, warm=True, **options):
    """A warmed-up zero-argument callable for ``case`` by ``impl`` (a key of
    ``IMPLS``), or ``NotImplementedError`` (asv: skip) for a missing peer, an op
    the peer lacks, or a slow case under ``ASV_SKIP_SLOW=1``.

    ``warm=False`` skips the warm-up call on the case itself and warms on
    ``case.shrunk()`` instead (same compiled specialisation, tiny arrays), so a
    ``peakmem_*`` benchmark still sees the first full-size call's memory.

    Cached: asv 0.6 re-runs ``setup`` before every sample (asv#966), and these
    callables hold no state a call could change, so later setups are free.
    """
    case = get_case(case)
    if case.slow and SKIP_SLOW:
        raise NotImplementedError(f"{case.name} is marked slow and ASV_SKIP_SLOW is set")
    options = tuple(sorted(options.items()))
    if not warm:
        _prepare(case.shrunk(), impl, options, True)
    return _prepare(case, impl, options, warm)


@functools.lru_cache(maxsize=4)
def _prepare(case, impl, options, warm):
    peer, opts = IMPLS[impl]
    opts = dict(opts, **dict(options))
    threads = numconv_threads() if peer == "numconv" else THREADS
    fn = PEERS[peer](case, threads=threads, **opts)
    if warm:
        fn()  # JIT compile or cache load, oneDNN primitive creation: kept out of time_*
    return fn


def median_time(fn, repeat=5, min_sample=0.02):
    """Median seconds per call over ``repeat`` samples, each at least ``min_sample`` s
    (for ``track_*`` metrics derived from a time)."""
    t0 = time.perf_counter()
    fn()
    number = max(1, min(1000, int(min_sample / max(time.perf_counter() - t0, 1e-9))))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples)
