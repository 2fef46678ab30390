"""Cache-line aligned allocation for the arrays numconv's kernels write or stream.

NumPy aligns its data to 16 bytes; large arrays come from ``mmap`` behind a
16-byte header, so their data sits 16 bytes past a cache line. The kernels load
and store whole 64-byte vectors along channels, and at that offset every one of
them straddles two cache lines. Measured on the depthwise kernel (8 x 56 x 56 x
128, 3 x 3, 2 threads, interleaved runs): 0.68 ms with 64-byte aligned operands,
0.85 ms at NumPy's offset. numconv cannot choose where a caller's input lives,
but it can place what it allocates: outputs (which are the next layer's
inputs), packed weights and scratch buffers.
"""
import functools
import math
import sys
import threading
import weakref

import numpy as np
from numba import njit

from ._config import SERIAL

#: bytes: a cache line, and one AVX-512 register
ALIGN = 64


def empty(shape, dtype):
    """``np.empty(shape, dtype)`` whose data starts on an ``ALIGN``-byte boundary
    (a view of a slightly larger byte buffer; C-contiguous and writeable). From
    ``POOL_MIN_BYTES`` on, the buffer may be one a freed result left (``_pooled``)."""
    dtype = np.dtype(dtype)
    if type(shape) is not tuple:  # (tuples, the common case, skip np.ndim: 1.3 us)
        shape = tuple(int(s) for s in shape) if np.ndim(shape) else (int(shape),)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes >= POOL_MIN_BYTES:
        return _pooled(shape, dtype, nbytes + ALIGN)
    return _view(np.empty(nbytes + ALIGN, np.uint8), shape, dtype)


def zeros(shape, dtype):
    """``np.zeros(shape, dtype)``, aligned as ``empty``."""
    a = empty(shape, dtype)
    a[...] = 0
    return a


# ------------------------------------------------------------------ results' memory
# A result of more than 32 MiB is mapped afresh from the system by glibc's malloc
# and unmapped when freed (smaller blocks are reused from the heap), so a layer
# called in a loop faulted in every page of its result on every call: ~0.1 ms
# per MiB here (a 66 MiB array touched once per 4 KiB page: 6.2 ms), as long as
# a memory-bound layer itself (depthwise1d, 16 x 16000 x 64, 65 MB out: 7.2 ms a
# call, 4.0 with the pool below). So a large result's buffer, once the caller has
# dropped the result and every view of it, goes to a pool the next large
# allocation takes from, as PyTorch's GPU caching allocator does. A buffer some
# view still uses is never handed out again: its type (``_Buffer``) keeps every
# view hanging on the result, whose finalizer then checks that nothing else holds
# the buffer (a buffer still referenced is left to be freed normally). At most
# ``POOL_BYTES`` of idle buffers are kept (the least recently returned go first);
# ``release_scratch`` frees them all.

#: results (and other ``empty`` arrays) of at least this many bytes use pooled buffers
POOL_MIN_BYTES = 4 << 20
#: idle bytes the results' pool keeps
POOL_BYTES = 256 << 20
#: a pooled buffer may be this much larger than the request (in parts of it)
POOL_SLACK = 4

_idle = []  # idle result buffers, least recently returned first
_idle_lock = threading.RLock()  # (re-entrant: a finalizer may run from a collection inside the lock)


class _Buffer(np.ndarray):
    """A pooled result's memory: a uint8 array owning its data. Its own type stops
    NumPy from collapsing a view's base past the array made on it (NumPy collapses
    a base chain only through arrays of the view's own type), so every view of a
    result keeps the result itself alive, and the result's finalizer runs only
    once no view of it is left."""


def _returned(buf):
    """Finalizer of a pooled result: its buffer becomes idle unless a view of it
    lives on (then its references outnumber this call's own, ``_FREE_REFS``)."""
    if sys.getrefcount(buf) > _FREE_REFS:
        return
    with _idle_lock:
        _idle.append(buf)
        total = sum(b.nbytes for b in _idle)
        while total > POOL_BYTES:
            total -= _idle.pop(0).nbytes


def _probe_refs(buf):
    global _FREE_REFS
    _FREE_REFS = sys.getrefcount(buf)


def _count_free_refs():
    """``_FREE_REFS``: the references a pooled buffer has while ``_returned`` runs
    and no view of it lives on (the finalizer's own, and the dying result's base,
    which NumPy drops after the finalizer): measured on an array made as
    ``_pooled`` makes one, not assumed."""
    buf = np.ndarray.__new__(_Buffer, (ALIGN,), np.uint8)
    probe = np.ndarray((1,), np.uint8, buf)
    weakref.finalize(probe, _probe_refs, buf)
    del buf, probe


_FREE_REFS = 0
_count_free_refs()


def _pooled(shape, dtype, need):
    """An aligned ``shape`` array on an idle pooled buffer of ``need`` to ``need
    * (1 + 1 / POOL_SLACK)`` bytes (the smallest), or on a fresh one; when it is
    dropped, its buffer returns to the pool (``_returned``)."""
    buf = None
    with _idle_lock:
        best = None
        for i, b in enumerate(_idle):
            if need <= b.nbytes <= need + need // POOL_SLACK and (best is None or b.nbytes < _idle[best].nbytes):
                best = i
        if best is not None:
            buf = _idle.pop(best)
    if buf is None:
        buf = np.ndarray.__new__(_Buffer, (need,), np.uint8)
    arr = _view(buf, shape, dtype)
    weakref.finalize(arr, _returned, buf).atexit = False
    return arr


# ------------------------------------------------------------------ per-call scratch
# Intermediates of one call (the channels-last copy of a channels_first input, the
# channels-last result before it is laid out channels first) come from a pool kept
# per thread instead of fresh allocations. Fresh multi-megabyte buffers are
# mmapped by the C allocator and returned to the system when freed, so every call
# paid a page fault per 4 KiB touched: ~1,600 per call on the resnet layer in
# channels_first (8 x 64 x 56 x 56), 1.5 us each on this VM, which made that call
# 2.6x slower than the same layer channels-last.

#: idle scratch bytes a thread keeps between calls; larger buffers are freed
KEEP_BYTES = 256 << 20

_local = threading.local()


def _state():
    st = getattr(_local, "state", None)
    if st is None:
        st = _local.state = {"depth": 0, "lent": [], "idle": []}
    return st


@njit(**SERIAL)
def _address(buf):
    """Where ``buf``'s data starts (``buf.ctypes.data`` took ~1 us, this ~0.15)."""
    return buf.ctypes.data


def _view(buf, shape, dtype):
    """``buf``'s bytes from its first ``ALIGN``-byte boundary as a C-contiguous ``shape`` array."""
    return np.ndarray(shape, dtype, buf, -_address(buf) % ALIGN)


def calls_scratch(fn):
    """Decorator for numconv's entry points: ``scratch`` arrays handed out while
    ``fn`` runs (nested entry points included) go back to the thread's pool when
    the outermost one returns."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        st = _state()
        st["depth"] += 1
        try:
            return fn(*args, **kwargs)
        finally:
            st["depth"] -= 1
            if st["depth"] == 0:
                idle = st["idle"] + st["lent"]
                st["lent"] = []
                idle.sort(key=lambda b: b.nbytes, reverse=True)
                kept, total = [], 0
                for buf in idle:
                    if total + buf.nbytes <= KEEP_BYTES:
                        kept.append(buf)
                        total += buf.nbytes
                st["idle"] = kept
    return wrapper


def scratch(shape, dtype):
    """An aligned ``empty`` for an intermediate that does not outlive the current
    call (it is reused by the thread's next call): from the pool inside a
    ``calls_scratch`` entry point, a plain ``empty`` outside one. Never return it,
    or a view of it, to the caller."""
    st = _state()
    dtype = np.dtype(dtype)
    shape = tuple(map(int, shape))
    need = math.prod(shape) * dtype.itemsize + ALIGN
    if not st["depth"]:
        return empty(shape, dtype)
    idle = st["idle"]
    best = -1  # the smallest idle buffer that fits (one pass: a tiny layer's call borrows 1-3)
    for i, b in enumerate(idle):
        if b.nbytes >= need and (best < 0 or b.nbytes < idle[best].nbytes):
            best = i
    buf = idle.pop(best) if best >= 0 else np.empty(need, np.uint8)
    st["lent"].append(buf)
    return _view(buf, shape, dtype)


def recycle(arr):
    """Hand the scratch buffer under ``arr`` back to the pool before the call ends
    (for a loop whose rounds each borrow a buffer: the FFT path's batch chunks and
    transform passes); ``arr`` must not be used afterwards. Anything else (an
    array not from ``scratch``, or ``scratch`` outside an entry point) is ignored."""
    st = _state()
    if not st["depth"] or not isinstance(arr, np.ndarray) or not arr.size:
        return
    at = arr.__array_interface__["data"][0]
    for i, buf in enumerate(st["lent"]):
        lo = buf.__array_interface__["data"][0]
        if lo <= at < lo + buf.nbytes:
            st["idle"].append(st["lent"].pop(i))
            return


def release_scratch():
    """Free the calling thread's idle scratch buffers and the idle buffers of the
    results' pool (the next call allocates afresh). The bench calls it before
    measuring a call's peak memory, so the buffers a call borrows count as its own."""
    _state()["idle"] = []
    with _idle_lock:
        _idle.clear()
