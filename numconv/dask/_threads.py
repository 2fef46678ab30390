"""How many threads numconv's kernels use inside a Dask task.

Numba's thread count is per calling thread and starts at ``NUMBA_NUM_THREADS``
(every core) in every new thread. Dask runs several tasks at once -- a worker
runs ``nthreads`` of them, the threaded scheduler one per pool thread -- so
without a limit each task's kernels would start a thread per core and the
machine would run ``tasks x cores`` threads. Dask's ``distributed`` caps
OpenMP/BLAS libraries through ``OMP_NUM_THREADS`` & co. in worker processes
(``distributed.nanny.pre-spawn-environ``, 1 by default) but not Numba
(distributed#9075), so every ``numconv.dask`` task sets numconv's thread count
itself, for its own thread only, and restores it afterwards:

1. ``dask.config`` key ``"numconv.threads"`` when set (an int): that many;
2. in a ``distributed`` worker: ``OMP_NUM_THREADS`` when the worker has it (the
   thread budget Dask grants each task), else ``NUMBA_NUM_THREADS // nthreads``;
3. on the synchronous scheduler (the main thread): the caller's own count
   (``numconv.set_num_threads``);
4. in a thread (or process) pool of the local schedulers:
   ``NUMBA_NUM_THREADS // pool size``.

Always at least 1 and at most ``NUMBA_NUM_THREADS``. Thread safety when one
process runs several tasks at once is numconv's own: its kernels release the
GIL, ``omp`` and ``tbb`` accept concurrent launches, and on the ``workqueue``
layer (which aborts on them) every launch is serialised by
``numconv._config.kernel_lock``.
"""
import multiprocessing
import os
import sys
import threading
from contextlib import contextmanager

import numba

#: dask.config key overriding the per-task thread count.
CONFIG_KEY = "numconv.threads"


def _clamp(n):
    return max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))


def _env_threads(var):
    try:
        n = int(os.environ.get(var, ""))
    except ValueError:
        return None
    return n if n > 0 else None


def current_worker():
    """The ``distributed`` worker running this task, or None (never imports distributed)."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def task_thread_count():
    """Threads numconv's kernels may use in the calling Dask task (rules above)."""
    import dask

    top = numba.config.NUMBA_NUM_THREADS
    explicit = dask.config.get(CONFIG_KEY, None)
    if explicit:
        return _clamp(explicit)
    worker = current_worker()
    if worker is not None:
        env = _env_threads("OMP_NUM_THREADS")
        if env is not None:
            return _clamp(env)
        state = getattr(worker, "state", None)
        nthreads = getattr(state, "nthreads", None) or getattr(worker, "nthreads", None) or 1
        return _clamp(top // nthreads)
    if threading.current_thread() is threading.main_thread() and multiprocessing.parent_process() is None:
        return numba.get_num_threads()
    pool = dask.config.get("pool", None)
    size = getattr(pool, "_max_workers", None) or dask.config.get("num_workers", None)
    if not size:
        from dask.system import CPU_COUNT

        size = CPU_COUNT
    return _clamp(top // max(1, int(size)))


@contextmanager
def task_threads():
    """Run the body with ``task_thread_count()`` Numba threads in this thread."""
    n = task_thread_count()
    previous = numba.get_num_threads()
    if n == previous:
        yield n
        return
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(previous)
