"""Padded copies for the non-zero padding modes (reflect, replicate, circular).

Zero padding never goes through here: the conv kernels fold it into their index
bounds. Canonical layout is (N, D, H, W, C), so one kernel serves ranks 1-3.
"""
from numba import njit, prange

from .._config import PARALLEL, SERIAL

#: padding_mode -> code understood by ``source_index``.
PAD_MODES = {"reflect": 1, "replicate": 2, "circular": 3}


@njit(inline="always", **SERIAL)
def source_index(i, length, mode):
    """Index into an axis of ``length`` that padded position ``i`` (relative to the
    first unpadded element) reads. Valid for pads within PyTorch's limits
    (reflect: pad < length; circular: pad <= length), which ``_spec`` enforces."""
    if 0 <= i < length:
        return i
    if mode == 1:  # reflect, edge not repeated (numpy "reflect", torch "reflect")
        return -i if i < 0 else 2 * (length - 1) - i
    if mode == 2:  # replicate (numpy "edge")
        return 0 if i < 0 else length - 1
    return i % length  # circular (numpy "wrap"); Python modulo is non-negative


@njit(**PARALLEL)
def pad_kernel(x, out, before, mode):
    """``out[n, z, y, w, c] = x[n, src(z), src(y), src(w), c]`` with ``before`` the
    leading pads per spatial axis; ``out``'s shape fixes the trailing pads.
    Parallel over the N * D_out * H_out rows; each task writes its own row."""
    N, D, H, W, C = x.shape
    _, PD, PH, PW, _ = out.shape
    for t in prange(N * PD * PH):
        n = t // (PD * PH)
        r = t - n * (PD * PH)
        z = r // PH
        y = r - z * PH
        sz = source_index(z - before[0], D, mode)
        sy = source_index(y - before[1], H, mode)
        for w in range(PW):
            sw = source_index(w - before[2], W, mode)
            for c in range(C):
                out[n, z, y, w, c] = x[n, sz, sy, sw, c]
