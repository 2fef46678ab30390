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
import contextlib
import functools
import importlib
import os
import threading
import types

import numba

#: Options for the parallel loop-nest kernels.
FASTMATH = frozenset({"contract"})
PARALLEL = dict(parallel=True, cache=True, nogil=True, error_model="numpy", fastmath=set(FASTMATH))
#: Options for small serial helpers inlined into kernels.
SERIAL = dict(cache=True, nogil=True, error_model="numpy", fastmath=set(FASTMATH))

if numba.config.DISABLE_JIT:
    raise ImportError("numconv: NUMBA_DISABLE_JIT is set, but numconv's kernels are LLVM code (Numba intrinsics: "
                      "vector FMAs, masked loads and stores) with no pure-Python form, so they cannot run "
                      "uncompiled. Unset NUMBA_DISABLE_JIT to use numconv (other Numba code can still be "
                      "debugged with it in another process).")


def _cache_usable():
    """Whether Numba finds a writable cache for numconv's kernels: the install's
    ``__pycache__`` folders, ``NUMBA_CACHE_DIR`` or the user's cache folder
    (Numba's own locators, asked as ``cache=True`` asks them). Where none is
    writable (a read-only install run by a user without a writable home: a
    service account, a read-only container), ``cache=True`` made ``import
    numconv`` fail with Numba's "cannot cache function ...: no locator
    available"."""
    from numba.core import caching

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_kernels", "conv.py")
    try:
        return any(cls.from_function(_cache_usable, path) is not None for cls in caching.CacheImpl._locator_classes)
    except Exception:  # another Numba: let it decide (and report) as it would
        return True


if not _cache_usable():
    import warnings

    PARALLEL["cache"] = SERIAL["cache"] = False
    warnings.warn("numconv: no writable folder for its compiled kernels (its install folder's __pycache__ and "
                  "the user cache folder are read-only), so every process compiles the kernels it uses again "
                  "(seconds per kernel). Set NUMBA_CACHE_DIR to a writable folder to keep them.",
                  RuntimeWarning, stacklevel=2)

# Prefer thread-safe layers. ``omp`` (GNU OpenMP) is thread-safe but not fork-safe,
# ``tbb`` is both; ``workqueue`` (the fallback when neither loads) aborts the process
# when two Python threads launch parallel kernels at once, so calls are serialised
# through ``KERNEL_LOCK`` when it is the layer in use.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]

_LOCK = threading.Lock()


# ---------------------------------------------------------------- forked children
#
# GNU OpenMP is not fork-safe: in a process forked from one whose kernels already
# ran on Numba's ``omp`` layer, Numba kills the child at its first parallel launch
# ("Terminating: fork() called from a process already using GNU OpenMP, this is
# unsafe."), and a ``multiprocessing.Pool`` worker (``fork`` is Linux's default
# start method before Python 3.14) then never returns its result. There each
# kernel runs as its serial twin instead: the same Python function compiled
# without ``parallel`` (``prange`` is ``range``), cached under a name of its own.
# One thread per process, the same results (no output's reduction depends on
# the thread count); other layers, and processes forked before the first
# parallel launch, run the parallel kernels as usual.

_FORKED_FROM_OMP = False


def _after_fork_in_child():
    global _FORKED_FROM_OMP
    from numba.np.ufunc import parallel

    if _FORKED_FROM_OMP or not parallel._is_initialized:
        return
    try:
        layer = numba.threading_layer()
    except ValueError:
        return
    if layer == "omp":
        from numba.np.ufunc import omppool

        _FORKED_FROM_OMP = getattr(omppool, "openmp_vendor", "GNU") == "GNU"  # Intel's OpenMP is fork-safe


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def in_forked_child():
    """Whether kernels run as their serial twins (see above)."""
    return _FORKED_FROM_OMP


class ParallelKernel:
    """A ``parallel=True`` kernel (``@parallel_kernel``): calls go to the Numba
    dispatcher (``dispatcher``; its attributes read through), or in a forked child
    of a process that used GNU OpenMP to its serial twin (``serial``)."""

    def __init__(self, fn):
        self.dispatcher = numba.njit(**PARALLEL)(fn)
        self._serial = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args):
        if _FORKED_FROM_OMP:
            return self.serial(*args)
        return self.dispatcher(*args)

    @property
    def serial(self):
        """The kernel compiled without ``parallel``, cached as ``<name>_serial``."""
        if self._serial is None:
            fn = self.dispatcher.py_func
            twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__,
                                      fn.__closure__)
            twin.__qualname__ = fn.__qualname__ + "_serial"
            twin.__module__ = fn.__module__
            twin.__doc__ = fn.__doc__
            self._serial = numba.njit(**SERIAL)(twin)
        return self._serial

    def __getattr__(self, name):  # py_func, overloads, signatures, inspect_asm, ...
        return getattr(self.dispatcher, name)


def parallel_kernel(fn):
    """Decorator for numconv's parallel loop-nest kernels: ``@njit(**PARALLEL)``
    that still runs in a forked child (``ParallelKernel``)."""
    return ParallelKernel(fn)


# ---------------------------------------------------------------- cached code = fresh code
#
# Numba compiles a ``prange`` loop body into its own library (the "parfor gufunc"),
# optimises it (O3) and, in a fresh process, runs that machine code. But the
# libraries that link it in (two launch wrappers and the kernel itself) each run O3
# again over the whole linked module, and the kernel's library, with the gufunc
# optimised three more times, is what ``cache=True`` writes to disk. So every
# process that loads a kernel from the cache ran different code from the one that
# compiled it, and the re-optimised code was worse: the tile kernel's stores
# spilled and its tile stayed in memory (stock conv1d 1000 x 50 x 1 -> 16, k 5, 1
# thread: 0.36 ms fresh, 0.55-0.72 ms from the cache; identical after this).
# While one of numconv's parallel kernels compiles, the libraries that link a
# parfor gufunc skip that second module optimisation: their own code is launch
# glue (function-level optimised as usual), and the gufunc is linked exactly as
# it was optimised once, so the cache holds the code a fresh compile runs.
# ``NUMCONV_REOPTIMIZE=1`` (read at import) restores Numba's behaviour.

_COMPILING = threading.local()
#: packages whose parallel kernels compile this way: numconv, and a second copy
#: that ``benchmarks/ab.py`` imports beside it (the patch is installed once per
#: process, by the first copy imported)
KERNEL_PACKAGES = {"numconv"}


def _is_parallel_kernel(dispatcher):
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    return module.split(".")[0] in KERNEL_PACKAGES and bool(getattr(dispatcher, "targetoptions", {}).get("parallel"))


def _links_parfor_gufunc(library):
    return any(str(getattr(lib, "name", "")).startswith("__numba_parfor_gufunc")
               for lib in getattr(library, "_linking_libraries", ()))


def _patch_numba(module, owner, name, replace):
    """Set ``module.owner.name`` to ``replace(original)`` (once: a method this
    function set is kept). False where this Numba lacks it."""
    try:
        target = getattr(importlib.import_module(module), owner)
        original = getattr(target, name)
    except (ImportError, AttributeError):
        return False
    if not getattr(original, "_numconv", False):
        patched = replace(original)
        patched._numconv = True
        setattr(target, name, patched)
    return True


def _keep_parfor_code():
    """Install the compile listener and the final-module hook (once; a no-op if
    this Numba lacks either)."""
    if os.environ.get("NUMCONV_REOPTIMIZE", "") not in ("", "0"):
        return False

    def replace(optimize):
        from numba.core import event

        class _KernelCompiles(event.Listener):
            def on_start(self, ev):
                if _is_parallel_kernel(ev.data.get("dispatcher")):
                    _COMPILING.depth = getattr(_COMPILING, "depth", 0) + 1

            def on_end(self, ev):
                if _is_parallel_kernel(ev.data.get("dispatcher")):
                    _COMPILING.depth -= 1

        def _optimize_final_module(self):
            if getattr(_COMPILING, "depth", 0) and _links_parfor_gufunc(self):
                return
            optimize(self)

        event.register("numba:compile", _KernelCompiles())
        return _optimize_final_module

    return _patch_numba("numba.core.codegen", "CPUCodeLibrary", "_optimize_final_module", replace)


#: whether kernels are cached as they were compiled (see above)
KEEP_PARFOR_CODE = _keep_parfor_code()


# ---------------------------------------------------------------- one cache stamp for all kernel sources
#
# Numba's cache checks a kernel against its own source file only (numba#1833): a
# kernel whose helper in another module changed (an edited or updated install)
# loaded its old code, so paths disagreed in one process (a leaky_relu slope
# edited in ``act.py``: the direct and FFT paths took it, Winograd, narrow and
# depthwise kept the old one). numconv's kernels are stamped with a fingerprint
# of every module Numba compiles code from (``_kernels/*.py``, this file and
# ``_memory.py``: paths, sizes and modification times), so a change to any of
# them recompiles every kernel on its next call.

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=1)
def kernel_sources_fingerprint():
    """(path, size, mtime_ns) of each module numconv's kernels are compiled from."""
    kernels = os.path.join(_PACKAGE, "_kernels")
    try:
        files = [os.path.join(kernels, f) for f in os.listdir(kernels) if f.endswith(".py")]
        files += [os.path.join(_PACKAGE, f) for f in ("_config.py", "_memory.py")]
        entries = []
        for path in sorted(files):
            st = os.stat(path)
            entries.append((os.path.relpath(path, _PACKAGE), st.st_size, st.st_mtime_ns))
    except OSError:  # not a directory of files (a zipped install: Numba does not cache there)
        return ()
    return tuple(entries)


def _stamp_kernel_caches():
    """Install the shared stamp on Numba's source-file cache locators (once; a
    no-op where this Numba lacks them)."""
    def replace(stamp):
        def get_source_stamp(self):
            own = stamp(self)
            path = os.path.abspath(getattr(self, "_py_file", ""))
            if path.startswith(_PACKAGE + os.sep):
                return own, kernel_sources_fingerprint()
            return own
        return get_source_stamp

    return _patch_numba("numba.core.caching", "_SourceFileBackedLocatorMixin", "get_source_stamp", replace)


#: whether numconv's cached kernels are checked against all their sources (see above)
STAMPED_CACHES = _stamp_kernel_caches()


# ---------------------------------------------------------------- one writer at a time per kernel cache
#
# Numba's cache is not safe for processes that compile the same kernel at once
# (numba#4807, #10128; PITFALLS): saving a signature reads the index, takes the
# first free data file name and writes index and data, so two processes saving
# two signatures together could both take name 1, and the index then sent one
# signature to the other's code. Two pytest-xdist workers compiling a cold cache
# did exactly that here: ``pack_kernel_serial`` for complex128 weights loaded
# other code and raised "can't unbox array from PyObject into native value"; a
# pool of processes (Dask workers, multiprocessing) would do it too, and a
# mismatch that unboxes can crash. For numconv's kernels (their stamp is
# ``kernel_sources_fingerprint``'s), saving holds an exclusive ``flock`` on a
# lock file beside the index, and loading a shared one, so index and data are
# read and written whole. Where ``fcntl`` is missing (Windows) or the lock file
# cannot be opened, Numba's behaviour is unchanged.


def _is_kernel_cache(cache_file):
    stamp = getattr(cache_file, "_source_stamp", None)
    return (isinstance(stamp, tuple) and len(stamp) == 2 and isinstance(stamp[1], tuple) and bool(stamp[1])
            and stamp[1] == kernel_sources_fingerprint())


@contextlib.contextmanager
def _cache_file_lock(cache_file, exclusive):
    """``flock`` on ``<index>.lock`` for a numconv kernel cache (see above), else nothing."""
    fd = None
    if _fcntl is not None and _is_kernel_cache(cache_file):
        try:
            fd = os.open(cache_file._index_path + ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:  # (a read-only cache folder: Numba does not write there either)
            pass
    try:
        if fd is not None:
            _fcntl.flock(fd, _fcntl.LOCK_EX if exclusive else _fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # (releases the lock)


def _lock_kernel_caches():
    """Wrap Numba's cache-file save, flush and load in ``_cache_file_lock`` (once;
    False where this Numba lacks them)."""
    def locked(exclusive):
        def replace(method):
            def under_lock(self, *args):
                with _cache_file_lock(self, exclusive):
                    return method(self, *args)
            return under_lock
        return replace

    return all([_patch_numba("numba.core.caching", "IndexDataCacheFile", "save", locked(True)),
                _patch_numba("numba.core.caching", "IndexDataCacheFile", "flush", locked(True)),
                _patch_numba("numba.core.caching", "IndexDataCacheFile", "load", locked(False))])


try:
    import fcntl as _fcntl
except ImportError:  # (Windows)
    _fcntl = None

#: whether numconv's kernel caches are written and read under a file lock (see above)
LOCKED_CACHES = _lock_kernel_caches() and _fcntl is not None


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
    from ._spec import index  # (refuses bools: True is no thread count)

    try:
        n = index(n)
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
