"""The direct kernel for short reductions: first layers and few input channels.

A layer whose every output sums few terms (``Cg * kd * kh * kw``, e.g. a 1-D
series of 1 channel with 5 taps: 5 terms) spends little time in FMAs, so what
the tile kernel (``conv.py``) does around them decides its speed: per tile it
maps each tap through the padding mode, checks whether the tile crosses a
border and takes one of three loop bodies, and that one large loop nest keeps
its per-pixel indices in memory. On the stock conv1d (1000 x 50 x 1 -> 16, k 5)
it ran at ~30 cycles per output pixel for 5 FMAs.

This kernel reads a padded copy of the input (``_paths/direct.padded``; none
for valid padding), so every tap of every pixel is inside it and the loop body
is one: per tile of ``R`` output pixels along W and each reduction term ``t``
(a (kd, kh, kw, c) tap, in that order), one broadcast and one vector FMA per
pixel, at ``x[pixel base + offs[t]]`` where ``offs`` (the terms' offsets from a
pixel's first input, with dilation) is computed once per call. The last tile of
a row repeats its last pixel in the rows past the row's end (computed, never
stored), so no tile reads outside the input.

Reductions are at most ``MAX_TERMS`` long: float32 sums them in registers
with no flush to double precision (the tile kernel flushes every
``tile.FLUSH_TERMS`` = ``MAX_TERMS`` terms, so the rounding is the same), and
the tile is stored straight from registers. Each output's reduction runs in one
task in a fixed order, so results do not depend on the thread count. A fused
activation is applied by ``_paths/direct`` after the kernel: in the loop nest,
even never taken, its code cost 10-15 % here.

Measured (stock conv1d, the kernel alone, 1 thread, min of 1000): 0.55 ms in the
tile kernel, 0.11 ms here; with the padding-mode, flush and activation code of
the tile kernel left in, 0.19 ms.
"""
import numpy as np
from numba import njit, prange

from .._config import PARALLEL, SERIAL
from .conv import row_task
from .tile import FLUSH_TERMS, acc_tile, at, row_fma, row_store, row_zero, tile_shape

#: the longest reduction (Cg * kd * kh * kw) this kernel takes
MAX_TERMS = FLUSH_TERMS


@njit(**SERIAL)
def term_offsets(KD, KH, KW, CG, HP, WP, C, dd, dh, dw):
    """Element offsets of the reduction terms (kd, kh, kw, c), in that order, from
    a pixel's first input in a channels-last (.., HP, WP, C) array."""
    offs = np.empty(KD * KH * KW * CG, np.int64)
    for t in range(offs.size):  # t = ((a * KH + bb) * KW + cc) * CG + c; nested loops vectorised to scatters
        c = t % CG
        cc = t // CG % KW
        bb = t // (CG * KW) % KH
        a = t // (CG * KW * KH)
        offs[t] = ((a * dd * HP + bb * dh) * WP + cc * dw) * C + c
    return offs


@njit(**PARALLEL)
def short_kernel(xp, w, wsteps, kernel, b, has_bias, out, strides, dilations, wchunk, tag):
    """``out = conv(xp, w) + b``, valid, on an input padded beforehand.

    ``xp`` (N, DP, HP, WP, C) channels-last, padded so that a valid convolution
    gives ``out`` (N, OD, OH, OW, K). ``kernel`` = (G, KD, KH, KW): the groups and
    kernel size. ``w`` is flat: the ``lanes`` weights of group ``g``'s filter
    block ``kb`` for term ``t`` start at ``(g * NKB + kb) * wsteps[0] + t *
    wsteps[1]`` (NKB = ceil(K / G / lanes)), which serves both the packed
    weights of ``_paths/direct.pack_weights`` (steps (T * lanes, lanes)) and, for
    one group with whole blocks, the canonical kernel itself (steps (lanes, K)).
    Parallel over tasks (n, od, oh, W-chunk of ``wchunk`` pixels, a multiple of
    the tile's rows); ``Cg * KD * KH * KW`` <= ``MAX_TERMS``."""
    N, DP, HP, WP, C = xp.shape
    _, OD, OH, OW, K = out.shape
    G, KD, KH, KW = kernel
    CG = C // G
    KG = K // G
    sd, sh, sw = strides
    dd, dh, dw = dilations
    bstep, tstep = wsteps
    R, L = tile_shape(xp, tag)
    NKB = (KG + L - 1) // L
    T = KD * KH * KW * CG
    offs = term_offsets(KD, KH, KW, CG, HP, WP, C, dd, dh, dw)
    xf = xp.reshape(xp.size)
    outf = out.reshape(out.size)
    nch = (OW + wchunk - 1) // wchunk
    step = sw * C  # between neighbouring output pixels' inputs
    for task in prange(N * OD * OH * nch):
        acc = acc_tile(xp, tag)
        n, od, oh, w0, w_end = row_task(task, nch, OD, OH, OW, wchunk)
        xrow = ((n * DP + od * sd) * HP + oh * sh) * WP  # pixel index of the row's first input
        orow = ((n * OD + od) * OH + oh) * OW
        for g in range(G):
            for kb in range(NKB):
                k0 = kb * L
                kn = min(L, KG - k0)
                kk = g * KG + k0
                wb = (g * NKB + kb) * bstep
                for ow0 in range(w0, w_end, R):
                    x0 = (xrow + ow0 * sw) * C + g * CG
                    last = min(R, w_end - ow0) - 1  # rows past it repeat the last pixel
                    for p in range(R):
                        row_zero(acc, p, xp, tag)
                    for t in range(T):
                        o = x0 + offs[t]
                        wo = wb + t * tstep
                        for p in range(R):
                            row_fma(acc, p, at(xf, o + min(p, last) * step), w, wo, tag)
                    for p in range(last + 1):
                        row_store(acc, p, outf, (orow + ow0 + p) * K + kk, kn, b, kk, has_bias, tag)
