"""Padding modes, folded into kernels' index arithmetic (no padded copies).

A padded copy of the input costs a full pass over it (5-50 % of a conv's time on
the layers measured here, PERF_NOTES) and input-sized scratch; instead kernels
map an out-of-range index through ``source_index`` on their border paths. The
exception is the narrow kernel (``narrow.py``), whose vector loads of whole
output runs need the padded rows in memory: ``pad_kernel`` makes its copy in one
parallel pass (8 x 128 x 56 x 56 float32: 0.4 ms, where an element loop with
flat indices took 3.9 ms and ``np.pad`` is single-threaded).
"""
from numba import njit, prange

from .._config import SERIAL, parallel_kernel

#: padding_mode -> code understood by ``source_index`` (zeros is 0: no source).
PAD_MODES = {"zeros": 0, "reflect": 1, "replicate": 2, "circular": 3}


@njit(inline="always", **SERIAL)
def source_index(i, length, mode):
    """Index into an axis of ``length`` that position ``i`` (relative to the first
    unpadded element) reads under padding ``mode``; -1 for a position in zero
    padding (``mode`` 0), which reads nothing. Valid for pads within PyTorch's
    limits (reflect: pad < length; circular: pad <= length), which
    ``numconv._spec`` enforces."""
    if 0 <= i < length:
        return i
    if mode == 0:
        return -1
    if mode == 1:  # reflect, edge not repeated (numpy "reflect", torch "reflect")
        return -i if i < 0 else 2 * (length - 1) - i
    if mode == 2:  # replicate (numpy "edge")
        return 0 if i < 0 else length - 1
    return i % length  # circular (numpy "wrap"); Python modulo is non-negative


@parallel_kernel
def pad_kernel(x, xp, pads, mode):
    """``xp`` (N, C, DP, HP, WP) = ``x`` (N, C, D, H, W) padded on its last three
    axes, ``pads`` the leading pads, positions outside ``x`` read as ``mode``
    says (0: zeros); both C-contiguous (the padded copy kernels that read
    pre-padded rows need, made in one parallel pass). Tasks: (n, c, padded depth)."""
    N, C, D, H, W = x.shape
    _, _, DP, HP, WP = xp.shape
    bd, bh, bw = pads
    xf = x.reshape(x.size)
    pf = xp.reshape(xp.size)
    zero = xp.dtype.type(0)
    for t in prange(N * C * DP):
        nc = t // DP
        zp = t - nc * DP
        z = source_index(zp - bd, D, mode)
        for yp in range(HP):
            o = (t * HP + yp) * WP
            y = source_index(yp - bh, H, mode)
            if z < 0 or y < 0:
                for i in range(WP):
                    pf[o + i] = zero
                continue
            s = ((nc * D + z) * H + y) * W
            pf[o + bw:o + bw + W] = xf[s:s + W]
            for i in range(bw):
                pf[o + i] = xf[s + source_index(i - bw, W, mode)] if mode else zero
            for i in range(bw + W, WP):
                pf[o + i] = xf[s + source_index(i - bw, W, mode)] if mode else zero


@parallel_kernel
def pad_rows_kernel(x, xp, pads, mode, chunks):
    """``xp`` (N, DP, HP, WP, C) = channels-last ``x`` (N, D, H, W, C) padded on
    its spatial axes, ``pads`` the leading pads, positions outside ``x`` read as
    ``mode`` says (0: zeros); both C-contiguous. One pass, every element written
    once (``np.pad`` is single-threaded, and zero-filling the whole copy first is
    a pass more). Tasks: ``chunks`` pieces of each padded row (n, z, y), so a
    few long rows (a 1-D signal) still spread over the threads."""
    N, D, H, W, C = x.shape
    _, DP, HP, WP, _ = xp.shape
    bd, bh, bw = pads
    xf = x.reshape(x.size)
    pf = xp.reshape(xp.size)
    zero = xp.dtype.type(0)
    for t in prange(N * DP * HP * chunks):
        r = t // chunks
        k = t - r * chunks
        p0 = k * WP // chunks                     # this task's padded pixels p0 .. p1 - 1
        p1 = (k + 1) * WP // chunks
        n = r // (DP * HP)
        z = source_index(r // HP % DP - bd, D, mode)
        y = source_index(r % HP - bh, H, mode)
        o = r * WP * C
        if z < 0 or y < 0:
            pf[o + p0 * C:o + p1 * C] = zero
            continue
        s = ((n * D + z) * H + y) * W * C
        a0 = max(p0, bw)
        a1 = min(p1, bw + W)
        if a1 > a0:
            pf[o + a0 * C:o + a1 * C] = xf[s + (a0 - bw) * C:s + (a1 - bw) * C]
        _pad_pixels(pf, xf, o, s, p0, min(p1, bw), bw, W, C, mode)
        _pad_pixels(pf, xf, o, s, max(p0, bw + W), p1, bw, W, C, mode)


#: ``pad_rows_kernel`` on the calling thread: for the transform paths, which run
#: no Numba parallel loop (its OpenMP threads would spin on the cores the SciPy
#: transforms that follow use, ``numconv._shares``)
pad_rows_serial = njit(**SERIAL)(pad_rows_kernel.py_func)


@njit(inline="always", **SERIAL)
def _pad_pixels(pf, xf, o, s, p0, p1, bw, W, C, mode):
    """Padded pixels ``p0 .. p1 - 1`` of the row at ``pf[o:]`` (pads along W), from
    the input row at ``xf[s:]``."""
    for p in range(p0, p1):
        i = source_index(p - bw, W, mode)
        if i < 0:
            pf[o + p * C:o + p * C + C] = 0
        else:
            pf[o + p * C:o + p * C + C] = xf[s + i * C:s + i * C + C]
