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
import threading

import numpy as np
from numba import njit

from ._config import SERIAL

#: bytes: a cache line, and one AVX-512 register
ALIGN = 64


def empty(shape, dtype):
    """``np.empty(shape, dtype)`` whose data starts on an ``ALIGN``-byte boundary
    (a view of a slightly larger byte buffer; C-contiguous and writeable)."""
    dtype = np.dtype(dtype)
    if type(shape) is not tuple:  # (tuples, the common case, skip np.ndim: 1.3 us)
        shape = tuple(int(s) for s in shape) if np.ndim(shape) else (int(shape),)
    nbytes = math.prod(shape) * dtype.itemsize
    return _view(np.empty(nbytes + ALIGN, np.uint8), shape, dtype)


def zeros(shape, dtype):
    """``np.zeros(shape, dtype)``, aligned as ``empty``."""
    a = empty(shape, dtype)
    a[...] = 0
    return a


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
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if not st["depth"]:
        return empty(shape, dtype)
    need = nbytes + ALIGN
    fits = [i for i, b in enumerate(st["idle"]) if b.nbytes >= need]
    if fits:
        buf = st["idle"].pop(min(fits, key=lambda i: st["idle"][i].nbytes))
    else:
        buf = np.empty(need, np.uint8)
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
    """Free the calling thread's idle scratch buffers (the next call allocates
    afresh). The bench calls it before measuring a call's peak memory, so the
    buffers a call borrows count as its own."""
    _state()["idle"] = []
