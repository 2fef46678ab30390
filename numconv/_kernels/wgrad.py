"""Kernel gradient: ``dw[tap, c, f] = sum over (n, o) of x[n, o*s + tap*d, c] * g[n, o, f]``.

The forward tile kernel reduces over a few taps x channels per output pixel; here
the reduction is over every batch image and output position (25 088 terms for the
resnet layer) and the outputs are few (taps x channels x filters), so the tile is
turned around: ``R`` input channels (rows, one broadcast ``x`` value each) x ``L``
filters (lanes, one contiguous ``g`` row), the same register tile and intrinsics
(``tile.py``).

Blocking for reuse: a task owns a block of channels for one group and filter block,
and walks the output rows (n, od, oh) once; for each row it runs every tap and
channel block over that row's positions (the ``g`` row stays in L1 across them) and
flushes the register tile straight into a per-task double-precision accumulator
(``row_flush_into``: a staging tile summed into it by a scalar loop cost 25 % of the
resnet layer's time). So ``g`` and ``x`` stream from memory once per task, not once
per tap. Each output's sum runs in one task in a fixed order (rows, then positions,
flushed after each row chunk and every ``flush_terms`` positions): identical
results for any thread count.

Zero padding is index arithmetic (positions reading the padding contribute 0 and
are skipped); other padding modes arrive as a padded copy with zero pads.
"""
import numpy as np
from numba import prange

from .._config import parallel_kernel
from .conv import count_terms
from .tile import acc_tile, at, flush_terms, row_flush_into, row_fma, row_zero, tile_shape

#: A row chunk holds about 4x this many positions: each (tap, channel block) runs over
#: the chunk's rows (L2-resident) before its register tile goes back to memory.
FLUSH_ROWS_TERMS = 64


@parallel_kernel
def weight_grad_kernel(x, g, gf, out, strides, dilations, pads, cb_per_task, tag):
    """``out`` (KD, KH, KW, CG, K) = the kernel gradient, for ``x`` (N, D, H, W, C)
    and ``g`` (N, OD, OH, OW, K); ``gf`` is ``g`` flat with at least ``L`` spare
    elements after it (the last filter block's vector loads). ``cb_per_task``
    channel blocks of ``R`` per task."""
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = g.shape
    KD, KH, KW, CG, _ = out.shape
    G = C // CG
    KG = K // G
    sd, sh, sw = strides
    dd, dh, dw = dilations
    pd, ph, pw = pads
    R, L = tile_shape(x, tag)
    F = flush_terms(x)
    NCB = (CG + R - 1) // R
    NKB = (KG + L - 1) // L
    NCT = (NCB + cb_per_task - 1) // cb_per_task
    NT = KD * KH * KW
    xf = x.reshape(x.size)
    NR = N * OD * OH
    RB = max(1, (4 * FLUSH_ROWS_TERMS) // max(OW, 1))  # rows per chunk: ~256 positions
    for t in prange(G * NKB * NCT):
        acc = acc_tile(x, tag)
        gi = t // (NKB * NCT)
        r0 = t - gi * (NKB * NCT)
        kb = r0 // NCT
        ct = r0 - kb * NCT
        cb0 = ct * cb_per_task
        ncb = min(cb_per_task, NCB - cb0)
        k0 = kb * L
        kn = min(L, KG - k0)
        total = np.zeros(NT * ncb * R * L, np.float64)
        for p in range(R):
            row_zero(acc, p, x, tag)
        for r0 in range(0, NR, RB):
            r1 = min(NR, r0 + RB)
            for a in range(KD):
                for bb in range(KH):
                    for cc in range(KW):
                        off = cc * dw - pw
                        lo = 0 if off >= 0 else (-off + sw - 1) // sw
                        hi = min(OW, (W - 1 - off) // sw + 1) if W - 1 - off >= 0 else 0
                        if lo >= hi:
                            continue
                        tap = (a * KH + bb) * KW + cc
                        for j in range(ncb):
                            c0 = (cb0 + j) * R
                            last = min(R, CG - c0) - 1
                            t0 = (tap * ncb + j) * R * L  # this block's sums in total
                            cnt = 0
                            for row in range(r0, r1):
                                n = row // (OD * OH)
                                rr = row - n * (OD * OH)
                                od = rr // OH
                                oh = rr - od * OH
                                iz = od * sd - pd + a * dd
                                iy = oh * sh - ph + bb * dh
                                if iz < 0 or iz >= D or iy < 0 or iy >= H:
                                    continue
                                grow = row * OW * K + gi * KG + k0
                                xrow = ((n * D + iz) * H + iy) * W * C + gi * CG + c0
                                for ow in range(lo, hi):
                                    xo = xrow + (ow * sw + off) * C
                                    go = grow + ow * K
                                    for p in range(R):
                                        row_fma(acc, p, at(xf, xo + min(p, last)), gf, go, tag)
                                    cnt, due = count_terms(cnt, 1, F)
                                    if due:
                                        for p in range(R):
                                            row_flush_into(acc, p, total, t0 + p * L, x, tag)
                            for p in range(R):
                                row_flush_into(acc, p, total, t0 + p * L, x, tag)
        for tap in range(NT):
            a = tap // (KH * KW)
            bb = (tap // KW) % KH
            cc = tap % KW
            for j in range(ncb):
                c0 = (cb0 + j) * R
                for p in range(min(R, CG - c0)):
                    for k in range(kn):
                        out[a, bb, cc, c0 + p, gi * KG + k0 + k] = total[((tap * ncb + j) * R + p) * L + k]
