"""Depthwise kernel: groups == channels (one input channel per group), any depth
multiplier M. Output channel ``c * M + m`` is input channel ``c`` with multiplier
``m`` (Keras order).

Vectorised along input channels: for one output pixel, each tap is one vector
FMA per block of ``B = block_size(x)`` channels, ``acc[c] += x[iz, iy, ix, c] *
w[tap, m, c]``. Memory-bound (each input value is used K = kh * kw times but
there is no reduction over channels), so the design goal is one pass over the
input and one store per output vector. The tile kernel in ``conv.py`` would
zero-fill ``B - M`` of its ``B`` lanes here.

Canonical operands: ``x`` (N, D, H, W, C); ``wm`` (KD, KH, KW, M, C), the Keras
kernel (KD, KH, KW, 1, C*M) regrouped so channels are contiguous; ``out``
(N, OD, OH, OW, C*M). Padding is index arithmetic: with zeros (``mode`` 0) taps
outside the input are skipped, other modes read ``pad.source_index``.
"""
import numba
from numba import njit, prange

from .._config import PARALLEL
from .act import write_row
from .pad import source_index
from .tile import flush_terms, stack_tile, tile_shape, wide_tile


@njit(**PARALLEL)
def depthwise_kernel(x, wm, b, has_bias, out, strides, dilations, pads, mode, act, tag):
    """``out = act(depthwise(x, w) + b)``; parallel over (n, od, oh) output rows,
    each task writing its own row. Single precision flushes partial sums into a
    double precision row every ``flush_terms(x)`` taps, as the tile kernel does.
    ``tag`` selects the tile variant whose row width is the channel block."""
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = out.shape
    KD, KH, KW, M, _ = wm.shape
    sd, sh, sw = strides
    dd, dh, dw = dilations
    pd, ph, pw = pads
    _, B = tile_shape(x, tag)
    F = flush_terms(x)
    zero = x.dtype.type(0)
    for t in prange(N * OD * OH):
        acc = numba.carray(stack_tile(x, tag), (B,))
        tot = numba.carray(wide_tile(x, tag), (B,))
        n = t // (OD * OH)
        r = t - n * (OD * OH)
        od = r // OH
        oh = r - od * OH
        for ow in range(OW):
            orow = out[n, od, oh, ow]
            for m in range(M):
                for c0 in range(0, C, B):
                    cn = min(B, C - c0)
                    for k in range(B):
                        acc[k] = zero
                        tot[k] = 0
                    cnt = 0
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
                            for cc in range(KW):
                                ix = ow * sw - pw + cc * dw
                                if ix < 0 or ix >= W:
                                    if mode == 0:
                                        continue
                                    ix = source_index(ix, W, mode)
                                xv = x[n, iz, iy, ix, c0:]
                                wv = wm[a, bb, cc, m, c0:]
                                if cn == B:
                                    for k in range(B):
                                        acc[k] += xv[k] * wv[k]
                                else:
                                    for k in range(cn):
                                        acc[k] += xv[k] * wv[k]
                                if F:
                                    cnt += 1
                                    if cnt >= F:
                                        cnt = 0
                                        for k in range(B):
                                            tot[k] += acc[k]
                                            acc[k] = zero
                    if F:
                        for k in range(B):
                            tot[k] += acc[k]
                    else:
                        for k in range(B):
                            tot[k] = acc[k]
                    lo = c0 * M + m
                    write_row(orow[lo:lo + cn * M:M], tot, b[lo:lo + cn * M:M], has_bias, act)
