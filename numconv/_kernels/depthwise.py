"""Depthwise kernel: groups == channels (one input channel per group), any depth
multiplier M. Output channel ``c * M + m`` is input channel ``c`` with multiplier
``m`` (Keras order).

Vectorised along input channels: for one output pixel, each tap is one vector
FMA per block of channels, ``acc[c] += x[iz, iy, ix, c] * w[tap, m, c]``. Memory-bound (each input value is used K = kh * kw times but
there is no reduction over channels), so the design goal is one pass over the
input and one store per output vector. The tile kernel in ``conv.py`` would
zero-fill ``B - M`` of its ``B`` lanes here.

Canonical operands: ``x`` (N, D, H, W, C); ``wm`` (KD, KH, KW, M, CP), the Keras
kernel (KD, KH, KW, 1, C*M) regrouped so channels are contiguous and zero-padded
to CP, a whole number of channel blocks; ``out``
(N, OD, OH, OW, C*M). Padding is index arithmetic: with zeros (``mode`` 0) taps
outside the input are skipped, other modes read ``pad.source_index``.

Software prefetch: each input row is fetched ``PREFETCH_BYTES`` ahead of its
reads and each tile fetches the next tile's output lines for writing, as the
pooling kernel does. Without it the kernel fell off a cliff once its operands
left the caches: 8 x 56 x 56 x 128, 3 x 3 took 4.4 ms (0.19-0.25 ms per image at
batch 1-2, 0.55 at batch 8); with it 1.4 ms, linear in the batch (medians of
``numconv.depthwise_conv`` calls, 2 threads).
"""
import numba
from numba import njit, prange

from .._config import PARALLEL
from .act import activate_slice, write_row
from .conv import flush_if_due
from .pad import source_index
from .tile import (LINE_BYTES, PREFETCH_BYTES, acc_tile, flush_terms, prefetch, prefetch_write, row_flush,
                   row_fmav, row_store, row_zero, tile_shape, wide_tile)


@njit(**PARALLEL)
def depthwise_kernel(x, wm, b, has_bias, out, strides, dilations, pads, mode, act, tag):
    """``out = act(depthwise(x, w) + b)``.

    Register tile: ``R`` output pixels x one block of ``L`` channels, accumulated
    over the taps with elementwise vector FMAs (``row_fmav``); the input loads are
    masked past the last channel, and ``wm`` is zero-padded to whole blocks. Taps
    outside the input are skipped under zero padding and mapped through
    ``source_index`` otherwise. Single precision flushes into a double-precision
    tile every ``flush_terms(x)`` taps. Parallel over (n, od, oh) output rows,
    each task writing its own row.
    """
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = out.shape
    KD, KH, KW, M, CP = wm.shape
    sd, sh, sw = strides
    dd, dh, dw = dilations
    pd, ph, pw = pads
    R, L = tile_shape(x, tag)
    F = flush_terms(x)
    if KD * KH * KW <= F:  # never flushes: store straight from registers
        F = 0
    xf = x.reshape(x.size)
    outf = out.reshape(out.size)
    wf = wm.reshape(wm.size)
    line = LINE_BYTES // x.itemsize
    ahead = PREFETCH_BYTES // x.itemsize
    for t in prange(N * OD * OH):
        acc = acc_tile(x, tag)
        wide = wide_tile(x, tag)
        res = numba.carray(wide, (R, L))
        n = t // (OD * OH)
        r = t - n * (OD * OH)
        od = r // OH
        oh = r - od * OH
        for m in range(M):
            # Pixel tiles outside channel blocks: each tile reads its pixels'
            # channels contiguously (blocks outside tiles streamed each input row
            # once per block with a stride, 3-4x slower once the rows left L1).
            for ow0 in range(0, OW, R):
                if ow0 + R < OW:  # the next tile's output lines, fetched for writing
                    nxt = (((n * OD + od) * OH + oh) * OW + ow0 + R) * K
                    for e in range(0, min(R, OW - ow0 - R) * K, line):
                        prefetch_write(outf, nxt + e)
                for c0 in range(0, C, L):
                    cn = min(L, C - c0)
                    for p in range(R):
                        row_zero(acc, p, x, tag)
                        if F or M > 1:
                            for k in range(L):
                                res[p, k] = 0
                    cnt = 0
                    # every tap of every pixel inside the input along W: no checks
                    interior = (ow0 * sw - pw >= 0 and ow0 + R <= OW
                                and (ow0 + R - 1) * sw - pw + (KW - 1) * dw < W)
                    for a in range(KD):
                        iz = od * sd - pd + a * dd
                        if iz < 0 or iz >= D:
                            if mode == 0:
                                continue
                            iz = source_index(iz, D, mode)
                        for bb in range(KH):
                            iy = oh * sh - ph + bb * dh
                            if iy < 0 or iy >= H:
                                if mode == 0:
                                    continue
                                iy = source_index(iy, H, mode)
                            base = ((n * D + iz) * H + iy) * W
                            if c0 == 0:  # stream each input row ahead of its reads
                                src = (base + max(ow0 * sw - pw, 0)) * C + ahead
                                for e in range(0, R * sw * C, line):
                                    prefetch(xf, src + e)
                            for cc in range(KW):
                                woff = (((a * KH + bb) * KW + cc) * M + m) * CP + c0
                                if interior:
                                    ix0 = ow0 * sw - pw + cc * dw
                                    for p in range(R):
                                        row_fmav(acc, p, xf, (base + ix0 + p * sw) * C + c0, cn, wf, woff, tag)
                                else:
                                    for p in range(R):
                                        ix = (ow0 + p) * sw - pw + cc * dw
                                        if ow0 + p >= OW:
                                            continue
                                        if ix < 0 or ix >= W:
                                            if mode == 0:
                                                continue
                                            ix = source_index(ix, W, mode)
                                        row_fmav(acc, p, xf, (base + ix) * C + c0, cn, wf, woff, tag)
                                cnt = flush_if_due(acc, wide, cnt, 1, F, R, x, tag)
                    for p in range(min(R, OW - ow0)):
                        lo = c0 * M + m
                        if M == 1 and not F:  # contiguous channels: straight from registers
                            o = (((n * OD + od) * OH + oh) * OW + ow0 + p) * K + c0
                            row_store(acc, p, outf, o, cn, b, c0, has_bias, tag)
                            if act:
                                activate_slice(outf[o:o + cn], act)
                            continue
                        row_flush(acc, wide, p, x, tag)
                        if M == 1:
                            o = (((n * OD + od) * OH + oh) * OW + ow0 + p) * K + c0
                            row_store(wide, p, outf, o, cn, b, c0, has_bias, tag)
                            if act:
                                activate_slice(outf[o:o + cn], act)
                        else:
                            write_row(out[n, od, oh, ow0 + p, lo:lo + cn * M:M], res[p], b[lo:lo + cn * M:M],
                                      has_bias, act)
