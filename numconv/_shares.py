"""Work shared out to Python threads that run serial, GIL-releasing kernels.

The FFT and overlap-save paths run Numba kernels between SciPy transforms, which
use pocketfft's own threads. After a Numba parallel region the GNU OpenMP
layer's idle threads spin for a few milliseconds before they sleep, and on a
2-core machine each spinning thread takes a core from pocketfft's next
transform. Measured (4 x 256 x 256 x 8 -> 8, 25 x 25 same, 2 threads, median of
15): with the channel contraction as a ``prange`` loop, 17.8 ms a call, the two
inverse passes after it 7.5 ms of that; with ``OMP_WAIT_POLICY=passive`` (the
OpenMP threads sleep at once) 10.0 ms and 3.4, but the small direct layers then
paid the wake-up on every call (stock conv1d 0.092 -> 0.148 ms). With a bias, the
bias pass's spin slowed the next call's forward passes the same way (11.0 ->
19.0 ms). Python pool threads wait on a lock, so they leave the cores to
pocketfft at once; ``in_shares`` runs a kernel on them.
"""
import concurrent.futures
import os
import threading

_pool = None
_pool_pid = None
_pool_lock = threading.Lock()


def _executor():
    """The worker threads (created on first use, and again in a forked child,
    where the parent's threads do not exist)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1),
                                                          thread_name_prefix="numconv-share")
            _pool_pid = os.getpid()
        return _pool


#: microseconds of work below which a share is not worth handing to another
#: thread (a hand-off and its wait took ~47 us here)
SHARE_US = 100


def in_shares(kernel, count, threads, *args, us):
    """``kernel(*args, lo, hi)`` over ``0 ... count`` split into up to ``threads``
    contiguous shares of at least ``SHARE_US`` of the job's ``us`` (its estimated
    single-thread microseconds), one in the calling thread and the rest on the
    pool; returns when all are done. ``kernel`` must release the GIL
    (``nogil=True``) and its shares must write disjoint memory; a share's results
    do not depend on who runs it, so neither do the call's on ``threads``."""
    shares = max(1, min(threads, count, int(us // SHARE_US)))
    bounds = [count * i // shares for i in range(shares + 1)]
    futures = [_executor().submit(kernel, *args, bounds[i], bounds[i + 1]) for i in range(1, shares)]
    try:
        kernel(*args, bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()
