"""The direct kernel for convolutions with few filters: vectorised over output pixels.

The register-tile kernel (``conv.py``) vectorises over filters, so with K filters
it fills K of its 16 (float32) lanes: a single-filter layer, such as a
scientist's image or volume smoothed by one kernel, ran at 1-3 GMAC/s there
(1024 x 1024 image, 7 x 7 kernel: 30 ms, slower than the FFT). This kernel puts
runs of output pixels along W in the lanes instead, reading a channels-first,
pre-padded copy of the input (``_paths/direct.py`` makes it) in which those
pixels' inputs are contiguous: one vector load serves a whole run, and each
weight is one broadcast scalar.

Tile (``tile.py``'s 4 x 256-byte variant): 4 rows of ``L`` output pixels (64
float32 / 32 float64), row ``r`` holding filter ``r // J`` on output row
``oh + r % J``, where ``J`` = 4 // K rows share each weight (K = 1: 4 output
rows; K = 2: 2; K = 3, 4: 1). Per (channel, tap): one broadcast and ``L / lanes``
vector FMAs per row. float32 flushes into the double-precision tile every
``flush_terms`` terms, as the tile kernel does; each output's reduction runs in
one task in a fixed order (channel, then taps), so results do not depend on the
thread count.
"""
import numba
from numba import njit, prange

from .._config import PARALLEL
from .act import activate
from .tile import acc_tile, flush_terms, index_buffer, row_flush, row_fma, row_store, row_zero, tile_shape, wide_tile

#: filters per group up to which ``_paths/direct.py`` uses this kernel
MAX_FILTERS = 4


@njit(**PARALLEL)
def narrow_kernel(xp, geom, w, b, has_bias, out, strides, dilations, act, tag):
    """``out`` (N, OD, OH, OW, K) = act(conv(x, w) + b) for ``w`` (KD, KH, KW, C, K),
    K <= 4, stride 1 along W; ``b`` holds each filter's bias ``L`` times in a row
    (``b[k * L + i]``, the lanes of a vector store), read only when ``has_bias``.

    ``xp`` is the padded input, channels first, flat: element (n, c, z, y, x) at
    ``(((n * C + c) * DP + z) * HP + y) * WP + x`` for ``geom`` = (C, DP, HP, WP),
    with at least ``L`` readable elements after the last (vector loads of a row's
    last run read past it; those lanes are never stored)."""
    N, OD, OH, OW, K = out.shape
    KD, KH, KW, C, _ = w.shape
    _, DP, HP, WP = geom
    sd, sh, _ = strides
    dd, dh, dw = dilations
    R, L = tile_shape(out, tag)
    F = flush_terms(out)
    J = R // (1 if K == 1 else 2 if K == 2 else 4)  # output rows per weight
    wf = w.reshape(w.size)
    outf = out.reshape(out.size)
    nyb = (OH + J - 1) // J
    nxb = (OW + L - 1) // L
    zero = out.dtype.type(0)
    for t in prange(N * OD * nyb * nxb):
        acc = acc_tile(out, tag)
        wide = wide_tile(out, tag)
        res = numba.carray(wide, (R, L))
        xb = t % nxb
        rest = t // nxb
        yb = rest % nyb
        rest = rest // nyb
        od = rest % OD
        n = rest // OD
        oh0 = yb * J
        ow0 = xb * L
        jn = min(J, OH - oh0)  # output rows of this task (the last row block may be short)
        # per tile row: its filter, its input offset, whether it is live (computed
        # here once: r // J and r % J in the tap loop cost an integer division each)
        rk = numba.carray(index_buffer(tag), (R,))
        ro = numba.carray(index_buffer(tag), (R,))
        rl = numba.carray(index_buffer(tag), (R,))
        for r in range(R):
            rk[r] = r // J
            ro[r] = (r % J) * sh * WP
            rl[r] = r // J < K and r % J < jn
            row_zero(acc, r, out, tag)
            for i in range(L):
                res[r, i] = 0
        cnt = 0
        for c in range(C):
            for a in range(KD):
                z = od * sd + a * dd
                for bb in range(KH):
                    # tile row r reads the input row (r % J) * sh below row 0's
                    base = (((n * C + c) * DP + z) * HP + oh0 * sh + bb * dh) * WP + ow0
                    for cc in range(KW):
                        wo = (((a * KH + bb) * KW + cc) * C + c) * K
                        xo = base + cc * dw
                        for r in range(R):
                            if rl[r]:
                                row_fma(acc, r, wf[wo + rk[r]], xp, xo + ro[r], tag)
                        if F:
                            cnt += 1
                            if cnt == F:
                                cnt = 0
                                for r in range(R):
                                    row_flush(acc, wide, r, out, tag)
        for r in range(R):
            row_flush(acc, wide, r, out, tag)
        for r in range(J * K):
            k = rk[r]
            j = r % J
            if j >= jn:
                continue
            o = (((n * OD + od) * OH + oh0 + j) * OW + ow0) * K + k
            cnt = min(L, OW - ow0)
            if K == 1:  # a contiguous output run: vector stores
                row_store(wide, r, outf, o, cnt, b, 0, has_bias, tag)
                if act:
                    for i in range(cnt):
                        outf[o + i] = activate(outf[o + i], act)
            else:
                bk = b[k * L] if has_bias else zero
                for i in range(cnt):
                    outf[o + i * K] = activate(out.dtype.type(res[r, i] + bk), act)
