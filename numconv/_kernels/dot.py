"""The dot kernel: layers with few filters per group and many channels, each
output a dot product vectorised along the input channels.

The tile and term kernels vectorise along a group's filters: with 1-4 filters
per group (a segmentation head's 64 -> 1 classes, an image decoder's 64 -> 3
colours, a 3-D layer narrowing to 4) at most 4 of their 8-16 lanes hold
outputs, and the narrow kernel, which vectorises along output pixels instead,
reads a channels-first copy of the whole input. Here a vector holds ``L``
consecutive input channels of one pixel, contiguous in channels-last memory: per
tap and channel block, one weight vector (the filter's) and one input load and
one FMA per pixel of the tile (``R`` = 8 pixels along W, ``tile`` variant 3: 8
rows of 64 bytes). Two filters of a group go together, as 4 pixels x 2 filters
(``_pair_sums``): each input load then serves two FMAs, 6 loads per 8 FMAs
instead of 9 (1 thread, 8 x 58 x 58 x 64 -> 4 or 2, 3 x 3: 1.38x faster; 2
threads, 8 x 64 x 64 x 128 -> 4 3 x 3 2.9-3.0 -> 2.3-2.4 ms, 4 x 32^3 x 32 -> 2
4.7-5.2 -> 3.5-3.6); the rows' sums, and so the results, are the same bits
either way. Whole vectors of channels take plain loads, a channel tail a
masked one (the weights are zero past each group's channels; masked loads of
whole vectors ran 15-25 % slower). After a filter's last term, each row's lanes
are added as a fixed tree in double precision (``tile.tile_sums``, all rows at
once), so every lane sums at most ``Cg / L`` terms per tap; in single precision
the rows are also summed out every ``FLUSH_TERMS`` vector FMAs, so a long
reduction is a sum of short partial sums. Each output's reduction runs in one
task in a fixed order: results do not depend on the thread count.

Loop order per tile: filters (group by group, in pairs), taps, channel blocks,
pixels; the tile's window (``KD * KH`` rows of ``(R - 1) * sw + (KW - 1) * dw + 1`` pixels)
stays in L1 while the filters re-read it. ``_paths/direct.run_dot`` hands it a
padded copy of the input where that is cheap (every tile then lies inside);
otherwise border tiles gather their window through the padding mode into a
per-slot patch (``short.fill_patch``) and run the same loop on it, the same
terms in the same order.
"""
import numpy as np
from numba import njit, prange

from .._config import SERIAL, parallel_kernel
from .conv import row_task
from .short import fill_patch, term_offsets
from .tile import acc_tile, at, flush_terms, row_fmav, row_zero, tile_shape, tile_sums


@parallel_kernel
def dot_kernel(x, w, b, has_bias, out, kernel, strides, dilations, pads, mode, groups, wchunk, slots, tag):
    """``out = conv(x, w) + b`` (module docstring).

    ``x`` (N, D, H, W, C) and ``out`` (N, OD, OH, OW, K) canonical channels-last,
    C-contiguous; ``w`` (K, KD * KH * KW, CGP): filter ``k``'s weights per tap,
    its group's ``Cg`` channels zero-filled to ``CGP``, a whole number of vectors;
    ``kernel`` = (KD, KH, KW); ``pads`` the leading pads and ``mode`` what
    positions outside the input read (``pad.PAD_MODES``). Parallel over ``slots``
    equal blocks of the tasks (n, od, oh, W-chunk of ``wchunk`` pixels), each
    block with its own patch buffer."""
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = out.shape
    KD, KH, KW = kernel
    sd, sh, sw = strides
    dd, dh, dw = dilations
    pd, ph, pw = pads
    R, L = tile_shape(x, tag)
    F = flush_terms(x)  # 0: double precision sums each row once, at the end
    G = groups
    CG = C // G
    KG = K // G
    T = KD * KH * KW
    CGP = w.shape[2]
    xf = x.reshape(x.size)
    wf = w.reshape(w.size)
    outf = out.reshape(out.size)
    offs = term_offsets(KD, KH, KW, 1, 1, H * W * C, W * C, C, dd, dh, dw)
    PW = (R - 1) * sw + (KW - 1) * dw + 1
    poffs = term_offsets(KD, KH, KW, 1, 1, KH * PW * C, PW * C, C, 1, 1, dw)
    step = sw * C  # between neighbouring output pixels' inputs, in the input and in a patch
    nch = (OW + wchunk - 1) // wchunk
    tasks = N * OD * OH * nch
    per = (tasks + slots - 1) // slots
    patches = np.empty((slots, KD * KH * PW * C), x.dtype)
    parts = np.empty((slots, R), np.float64)
    zero = x.dtype.type(0)
    for s in prange(slots):
        patch = patches[s]
        part = parts[s]
        for task in range(s * per, min(tasks, (s + 1) * per)):
            acc = acc_tile(x, tag)
            for p in range(R):
                row_zero(acc, p, x, tag)
            n, od, oh, w0, w_end = row_task(task, nch, OD, OH, OW, wchunk)
            iz0 = od * sd - pd
            iy0 = oh * sh - ph
            rows_in = iz0 >= 0 and iz0 + (KD - 1) * dd < D and iy0 >= 0 and iy0 + (KH - 1) * dh < H
            orow = ((n * OD + od) * OH + oh) * OW
            for ow0 in range(w0, w_end, R):
                last = min(R, w_end - ow0) - 1  # rows past it repeat the last pixel (computed, not stored)
                ix0 = ow0 * sw - pw
                if rows_in and ix0 >= 0 and ix0 + last * sw + (KW - 1) * dw < W:
                    src, to = xf, offs
                    x0 = (((n * D + iz0) * H + iy0) * W + ix0) * C
                else:
                    fill_patch(patch, xf, n * D * H * W * C, (iz0, iy0, ix0), (KD, KH, PW), (C, D, H, W),
                               (D * H * W * C, 1, H * W * C, W * C, C), (dd, dh), mode, zero)
                    src, to = patch, poffs
                    x0 = 0
                k = 0
                while k < K:
                    g = k // KG
                    if k % KG + 1 < KG:  # two filters of a group: 4 pixels x 2 filters, twice
                        for h in range(0, last + 1, 4):
                            _pair_sums(acc, part, src, to, x0 + g * CG, h, last, step, wf, k * T * CGP, T * CGP,
                                       T, CG, CGP, L, F, x, tag)
                            for p in range(min(4, last + 1 - h)):
                                for f in range(2):
                                    v = part[f * 4 + p]
                                    if has_bias:
                                        v += b[k + f]
                                    outf[(orow + ow0 + h + p) * K + k + f] = v
                        k += 2
                        continue
                    for p in range(R):
                        part[p] = 0.0
                    cnt = 0
                    for t in range(T):
                        o = x0 + at(to, t) + g * CG
                        wo = (k * T + t) * CGP
                        for c0 in range(0, CG - L + 1, L):  # whole vectors: plain loads
                            for p in range(R):
                                row_fmav(acc, p, src, o + min(p, last) * step + c0, None, wf, wo + c0, tag)
                        if CG % L:  # the tail: a masked load
                            c0 = CG - CG % L
                            for p in range(R):
                                row_fmav(acc, p, src, o + min(p, last) * step + c0, CG - c0, wf, wo + c0, tag)
                        if F:  # (pruned in double precision)
                            cnt += CGP // L
                            if cnt >= F:
                                cnt = 0
                                tile_sums(acc, part, x, tag)
                    tile_sums(acc, part, x, tag)
                    for p in range(last + 1):
                        v = part[p]
                        if has_bias:
                            v += b[k]
                        outf[(orow + ow0 + p) * K + k] = v
                    k += 1


@njit(inline="always", **SERIAL)
def _pair_sums(acc, part, src, to, x0, h, last, step, wf, w0, wstep, T, CG, CGP, L, F, x, tag):
    """``part[f * 4 + p]`` = the sum of filter ``f`` (0, 1; weights at ``w0 + f *
    wstep``) for pixel ``h + p`` (p < 4, pixels past ``last`` repeat it): rows
    ``p`` and ``4 + p`` of the tile share each input load (6 loads per 8 FMAs
    where a pixel per row takes 9)."""
    for p in range(8):
        part[p] = 0.0
    cnt = 0
    for t in range(T):
        o = x0 + at(to, t)
        wo = w0 + t * CGP
        for c0 in range(0, CG - L + 1, L):
            for p in range(4):
                xo = o + min(h + p, last) * step + c0
                row_fmav(acc, p, src, xo, None, wf, wo + c0, tag)
                row_fmav(acc, 4 + p, src, xo, None, wf, wo + wstep + c0, tag)
        if CG % L:
            c0 = CG - CG % L
            for p in range(4):
                xo = o + min(h + p, last) * step + c0
                row_fmav(acc, p, src, xo, CG - c0, wf, wo + c0, tag)
                row_fmav(acc, 4 + p, src, xo, CG - c0, wf, wo + wstep + c0, tag)
        if F:
            cnt += CGP // L
            if cnt >= F:
                cnt = 0
                tile_sums(acc, part, x, tag)
    tile_sums(acc, part, x, tag)


def dot_weights(w5, lanes):
    """``dot_kernel``'s weights from the canonical (KD, KH, KW, Cg, K) kernel:
    (K, KD * KH * KW, CGP), each group's ``Cg`` channels zero-filled to a whole
    number of ``lanes``-wide vectors."""
    KD, KH, KW, CG, K = w5.shape
    cgp = -(-CG // lanes) * lanes
    wd = np.zeros((K, KD * KH * KW, cgp), w5.dtype)
    wd[:, :, :CG] = np.moveaxis(w5.reshape(KD * KH * KW, CG, K), -1, 0)
    return wd
