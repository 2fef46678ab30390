"""JIT options and thread control: the only place that decides how kernels compile.

Every ``@njit`` in ``numconv._kernels`` takes its options from here, so the
fastmath set, caching and threading policy are reviewed in one place.

fastmath: only ``contract`` (fuse ``a * b + c`` into one FMA, rounded once). Without
it LLVM emits a separate multiply and add for every tap (checked in the assembly:
0 vs 80 zmm FMAs in the tile kernel). ``nnan`` and ``ninf`` are deliberately left
out (PITFALLS: numba#2919, #7701) so NaN and Inf propagate as plain NumPy
arithmetic would; ``reassoc`` is left out so each output's summation order is fixed
by the loop nest and results are bit-identical for any thread count.
"""
import os
import threading

import numba

#: Options for the parallel loop-nest kernels.
FASTMATH = frozenset({"contract"})
PARALLEL = dict(parallel=True, cache=True, nogil=True, error_model="numpy", fastmath=set(FASTMATH))
#: Options for small serial helpers inlined into kernels.
SERIAL = dict(cache=True, nogil=True, error_model="numpy", fastmath=set(FASTMATH))

# Prefer thread-safe layers. ``omp`` (GNU OpenMP) is thread-safe but not fork-safe,
# ``tbb`` is both; ``workqueue`` (the fallback when neither loads) aborts the process
# when two Python threads launch parallel kernels at once, so calls are serialised
# through ``KERNEL_LOCK`` when it is the layer in use.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]

_LOCK = threading.Lock()


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NO_LOCK = _NoLock()


def kernel_lock():
    """Context manager guarding a parallel kernel launch.

    A real lock only when Numba runs on the non-thread-safe ``workqueue`` layer
    (known after the first parallel launch); otherwise a no-op.
    """
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: be safe for the first one
        return _LOCK
    return _LOCK if layer == "workqueue" else _NO_LOCK


def set_num_threads(n):
    """Set the number of threads numconv's kernels use (for the calling thread).

    Parameters
    ----------
    n : int
        1 <= n <= ``numba.config.NUMBA_NUM_THREADS`` (the cores Numba saw at start-up).
    """
    import operator

    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads: n must be an int; got {type(n).__name__} {n!r}") from None
    top = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= top:
        raise ValueError(
            f"set_num_threads: n must be between 1 and {top} (NUMBA_NUM_THREADS); got {n}. "
            "To allow more threads, set the NUMBA_NUM_THREADS environment variable before importing numconv."
        )
    numba.set_num_threads(n)


def get_num_threads():
    """The number of threads numconv's kernels use in the calling thread."""
    return numba.get_num_threads()
