"""The direct convolution kernel family: one loop nest for ranks 1-3 and every
padding mode.

Canonical operands (prepared by ``numconv._paths.direct``):

* ``x``: (N, D, H, W, C) channels-last, C-contiguous. Rank 1 is (N, 1, 1, L, C)
  and rank 2 (N, 1, H, W, C), so the pixel tile always runs along W.
* ``wp``: weights packed once per call into blocks of ``lanes`` output channels,
  (G, NKB, KD, KH, KW, Cg, lanes), zero-filled past each group's ``Kg`` filters:
  each (tap, c) is one contiguous weight row.
* ``out``: (N, OD', OH', OW', K), C-contiguous, K = G * Kg. The kernel computes
  the (OD, OH, OW) grid of ``lattice`` = (OD, OH, OW, step_d, step_h, step_w,
  first_d, first_h, first_w): output pixel ``o`` along an axis is stored at
  ``first + o * step`` of ``out``. A plain conv passes its own shape, steps 1 and
  origin 0; a transposed conv's stride phases write straight into their
  interleaved positions of one output (no per-phase array and scatter).

Padding is folded into the index arithmetic: ``pads`` are the leading pads and
``mode`` (``pad.PAD_MODES``, 0 for zeros) says what a position outside the input
reads, so no padded copy of the input is made.
"""
import numba
import numpy as np
from numba import njit, prange

from .._config import SERIAL, parallel_kernel
from .act import activate_slice
from .pad import source_index
from .tile import (LINE_BYTES, acc_tile, at, flush_terms, index_buffer, prefetch_write, row_flush, row_fma, row_store,
                   row_zero, tile_shape, wide_tile)


@njit(inline="always", **SERIAL)
def row_task(t, nch, OD, OH, OW, wchunk):
    """Task ``t`` of the direct kernels' (n, od, oh, W-chunk) grid, ``nch`` chunks
    of ``wchunk`` pixels per output row: (n, od, oh, first pixel, end pixel)."""
    row = t // nch
    ch = t - row * nch
    n = row // (OD * OH)
    r = row - n * (OD * OH)
    od = r // OH
    oh = r - od * OH
    return n, od, oh, ch * wchunk, min(OW, (ch + 1) * wchunk)


@njit(inline="always", **SERIAL)
def count_terms(cnt, terms, F):
    """Count ``terms`` more reduction terms: (new count, whether a flush is due),
    due every ``F`` (> 0) terms; the count restarts at each flush."""
    if not F:
        return 0, False
    cnt += terms
    if cnt >= F:
        return 0, True
    return cnt, False


@njit(inline="always", **SERIAL)
def flush_if_due(acc, wide, cnt, terms, F, R, x, tag):
    """``count_terms``, and when a flush is due add the register tile into the
    double-precision tile and clear it. Returns the count."""
    cnt, due = count_terms(cnt, terms, F)
    if due:
        for p in range(R):
            row_flush(acc, wide, p, x, tag)
    return cnt


@njit(inline="always", **SERIAL)
def clear_tile(acc, res, F, R, L, x, tag):
    """Zero the register tile and, when flushing (``F`` > 0), its double-precision tile ``res`` (R x L)."""
    for p in range(R):
        row_zero(acc, p, x, tag)
        if F:
            for k in range(L):
                res[p, k] = 0


@parallel_kernel
def conv_direct_kernel(x, wp, b, has_bias, out, lattice, strides, dilations, pads, mode, wchunk, act, tag):
    """Direct cross-correlation ``out = act(conv(x, w) + b)``.

    Register tile (``tile.py``): ``R`` output pixels along W x ``L`` output
    channels, accumulated over (kd, kh, kw, c); per input value one broadcast and
    one vector FMA per pixel against a contiguous weight row. Stride and dilation
    are index arithmetic on the broadcast loads. Tiles whose pixels all lie inside
    the input take a branch-free loop; border tiles map each pixel's index through
    the padding mode (zeros: the pixel reads 0). Single precision flushes into a
    double-precision tile every ``flush_terms(x)`` terms. Each tile fetches the
    next tile's output lines for writing (their read-for-ownership otherwise
    stalls the stores: 1 thread, pointwise 8 x 28 x 28 x 256 -> 256 8.3 -> 6.3 ms,
    8 x 56 x 56 x 128 -> 128 8.4 -> 6.1 ms, resnet 11.2 -> 10.2 ms; prefetching the
    input rows as well changed nothing).

    Parallel over tasks (n, od, oh, W-chunk of ``wchunk`` pixels, a multiple of
    ``R``); each task writes only its own output pixels, and every output's
    reduction stays in one thread in a fixed order, so results are identical for
    any thread count.
    """
    N, D, H, W, C = x.shape
    _, ODF, OHF, OWF, K = out.shape
    OD, OH, OW, ed, eh, ew, fd, fh, fw = lattice
    G, NKB, KD, KH, KW, CG, _ = wp.shape
    KG = K // G
    sd, sh, sw = strides
    dd, dh, dw = dilations
    pd, ph, pw = pads
    R, L = tile_shape(x, tag)
    F = flush_terms(x)
    # Flushing only pays off when a reduction can be longer than F terms; otherwise
    # the tile is stored straight from registers (no double-precision round trip).
    if KD * KH * KW * CG <= F:
        F = 0
    chunk = F if F else CG
    merge = G == 1 and dw == 1 and CG < 16  # see the merged loop below
    xf = x.reshape(x.size)
    nch = (OW + wchunk - 1) // wchunk
    zero = x.dtype.type(0)
    wflat = wp.reshape(wp.size)
    outf = out.reshape(out.size)
    line = LINE_BYTES // x.itemsize
    for t in prange(N * OD * OH * nch):
        acc = acc_tile(x, tag)
        wide = wide_tile(x, tag)
        res = numba.carray(wide, (R, L))
        jx = numba.carray(index_buffer(tag), (R,))  # per-pixel input index on border tiles
        n, od, oh, w0, w_end = row_task(t, nch, OD, OH, OW, wchunk)
        obase = ((n * ODF + fd + od * ed) * OHF + fh + oh * eh) * OWF + fw  # pixel index of (od, oh, 0)
        for g in range(G):
            for kb in range(NKB):
                k0 = kb * L
                kn = min(L, KG - k0)
                wg0 = (g * NKB + kb) * (KD * KH * KW * CG * L)  # flat offset of this block's weights
                for ow0 in range(w0, w_end, R):
                    if ow0 + R < w_end:  # the next tile's output lines, fetched for writing
                        for p in range(min(R, w_end - ow0 - R)):
                            nxt = (obase + (ow0 + R + p) * ew) * K + g * KG + k0
                            for e in range(0, kn, line):
                                prefetch_write(outf, nxt + e)
                    clear_tile(acc, res, F, R, L, x, tag)
                    cnt = 0
                    for a in range(KD):
                        iz = source_index(od * sd - pd + a * dd, D, mode)
                        if iz < 0:
                            continue
                        for bb in range(KH):
                            iy = source_index(oh * sh - ph + bb * dh, H, mode)
                            if iy < 0:
                                continue
                            i0 = ow0 * sw - pw
                            if merge and i0 >= 0 and i0 + KW - 1 + (R - 1) * sw < W and ow0 + R <= w_end:
                                # One group, dw == 1, all taps inside: the row's (kw, c)
                                # pairs are contiguous in x and in the packed weights, so
                                # one loop of KW * C terms replaces KW loops of C (small C).
                                xo = (((n * D + iz) * H + iy) * W + i0) * C
                                wo = (a * KH + bb) * KW * CG * L
                                for j0 in range(0, KW * CG, chunk):
                                    jn = min(chunk, KW * CG - j0)
                                    for j in range(j0, j0 + jn):
                                        for p in range(R):
                                            row_fma(acc, p, at(xf, xo + p * sw * C + j), wflat, wg0 + wo + j * L, tag)
                                    cnt = flush_if_due(acc, wide, cnt, jn, F, R, x, tag)
                                continue
                            xrow = ((n * D + iz) * H + iy) * W * C  # flat offset of the input row
                            for cc in range(KW):
                                i0 = ow0 * sw - pw + cc * dw
                                inner = i0 >= 0 and i0 + (R - 1) * sw < W and ow0 + R <= w_end
                                if not inner:
                                    # -1 marks a pixel that reads 0 (zero padding or past the tile)
                                    for p in range(R):
                                        past = ow0 + p >= w_end
                                        jx[p] = -1 if past else source_index(i0 + p * sw, W, mode)
                                woff = ((a * KH + bb) * KW + cc) * CG * L
                                for c0 in range(0, CG, chunk):
                                    cn = min(chunk, CG - c0)
                                    gc0 = g * CG + c0
                                    if inner:
                                        for c in range(cn):
                                            wo = wg0 + woff + (c0 + c) * L
                                            for p in range(R):
                                                xo = xrow + (i0 + p * sw) * C + gc0 + c
                                                row_fma(acc, p, at(xf, xo), wflat, wo, tag)
                                    else:
                                        for c in range(cn):
                                            for p in range(R):
                                                j = jx[p]
                                                xv = at(xf, xrow + j * C + gc0 + c) if j >= 0 else zero
                                                row_fma(acc, p, xv, wflat, wg0 + woff + (c0 + c) * L, tag)
                                    cnt = flush_if_due(acc, wide, cnt, cn, F, R, x, tag)
                    kk = g * KG + k0
                    for p in range(min(R, w_end - ow0)):
                        o = (obase + (ow0 + p) * ew) * K + kk
                        if F:
                            row_flush(acc, wide, p, x, tag)
                            row_store(wide, p, outf, o, kn, b, kk, has_bias, tag)
                        else:
                            row_store(acc, p, outf, o, kn, b, kk, has_bias, tag)
                        if act:
                            activate_slice(outf[o:o + kn], act)


#: weight rows (reduction terms) per task of ``pack_kernel``
PACK_ROWS = 256
#: kernels of at most this many elements are packed on the calling thread
#: (``pack_kernel_serial``)
PACK_SERIAL = 1 << 16


@parallel_kernel
def pack_kernel(w2, out):
    """``out[g, kb, t, l] = w2[t, g * KG + kb * L + l]``, zero past each group's
    ``KG = K // G`` filters: the (T, K) canonical kernel (T = KD * KH * KW * Cg
    terms) in the (G, NKB, T, L) blocks of ``_paths/direct.pack_weights``.
    Parallel over (g, runs of ``PACK_ROWS`` terms): each task reads whole kernel
    rows in order and writes one sequential stream per block. (NumPy's zero-fill
    and strided transposes took 8.5 ms for a 1024 x 1024 1 x 1 kernel and 16 ms
    for 3 x 3 x 512 x 512, as long as the layer itself on 8 x 7 x 7 inputs.)"""
    T = w2.shape[0]
    G = out.shape[0]
    runs = (T + PACK_ROWS - 1) // PACK_ROWS
    for task in prange(G * runs):
        g = task // runs
        t0 = (task - g * runs) * PACK_ROWS
        _pack_rows(w2, out, g, t0, min(T, t0 + PACK_ROWS))


@njit(**SERIAL)
def pack_kernel_serial(w2, out):
    """``pack_kernel`` on the calling thread: for kernels of at most
    ``PACK_SERIAL`` elements, whose packing a parallel launch would cost
    several times over (called in a loop: 3 x 3 x 16 x 16 3.6 -> 0.9 us, 3 x 3 x
    64 x 64 6.0 -> 3.7; 3 x 3 x 256 x 256 stays parallel, 39 against 53; a
    1 x 8 x 8 x 16 -> 16 3 x 3 conv, whose threads sleep between calls, ~55 ->
    ~40 us a call)."""
    for g in range(out.shape[0]):
        _pack_rows(w2, out, g, 0, w2.shape[0])


@njit(inline="always", **SERIAL)
def _pack_rows(w2, out, g, t0, t1):
    """Terms ``t0 : t1`` of group ``g`` (``pack_kernel``)."""
    T, K = w2.shape
    G, NKB, _, L = out.shape
    KG = K // G
    zero = out.dtype.type(0)
    src = w2.reshape(w2.size)
    dst = out.reshape(out.size)
    for t in range(t0, t1):
        for kb in range(NKB):
            # unsigned offsets: signed ones kept a negative-index check per
            # element and the copy scalar (1.3-1.6 ms instead of 0.3 for 9.4 MB)
            i = np.uint64(t * K + g * KG + kb * L)
            o = np.uint64(((g * NKB + kb) * T + t) * L)
            kn = np.uint64(min(L, KG - kb * L))
            for lane in range(kn):
                dst[o + lane] = src[i + lane]
            for lane in range(kn, np.uint64(L)):
                dst[o + lane] = zero
