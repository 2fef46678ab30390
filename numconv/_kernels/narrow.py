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
float32 / 32 float64), row ``r`` holding filter ``r // J`` (of its group) on
output row ``oh + r % J``, where ``J`` = 4 // K rows share each weight (K = 1: 4
output rows; K = 2: 2; K = 3, 4: 1).

Channels-first data needs no layout change here: the input is read as it is
(padded), and a channels-first output is written directly, its rows as
contiguous runs. The kernel also computes one channel per group (depthwise), but
``_paths/direct.py`` does not use it for that: its 9-term reductions measured
slower than the transposes around the channel-vectorised depthwise kernel.

Per (channel, tap): one broadcast and ``L / lanes`` vector FMAs per row, and
1-D outputs (fewer output rows than ``J``) give a weight's ``J`` rows to
consecutive runs along W instead. float32 flushes into the double-precision tile every
``flush_terms`` terms, as the tile kernel does; each output's reduction runs in
one task in a fixed order (channel, then taps), so results do not depend on the
thread count.

Software prefetch: a task reads ``Cg`` runs of input, one per channel, each a
plane apart: 64 concurrent streams on head1x1 (8 x 64 x 128 x 128 -> 2, 1 x 1),
more than the hardware prefetcher follows, so the kernel waited on memory at
about half the bandwidth the channels-last dot kernel reaches on the same layer.
Per channel, a task now prefetches (into L2: ``prefetcht1``; into L1 it evicted
the runs in use) the newest input row of the task ``AHEAD`` after it, the run
that task will read first from memory. Interleaved runs, 2 threads, before ->
after: head1x1 channels first 1.9-2.1 -> 0.87-1.07 ms (channels-last 1.0-1.3);
16 x 64 x 16000 -> 4, k 1: 7.4-8.0 -> 2.7-2.9 ms, -> 2: 4.1-4.6 -> 1.8-2.5, -> 1:
2.7-3.8 -> 1.8-2.5; AHEAD = 1 gained about half as much, 3 as much as 2. 2-D
layers that re-read each input row for ``KH`` output rows (rgb3x3 channels
first, 8 x 64 x 128 x 128 -> 3, 3 x 3: 6.9-7.2 ms) neither gain nor lose. The
prefetch sits at the channel level: inside the tap loop, the same code made
LLVM allocate the tile's registers worse (-> 4 above: 7.6 -> 9.2 ms with it
never taken).
"""
import numba
from numba import njit, prange

from .._config import SERIAL, parallel_kernel
from .act import activate
from .conv import flush_if_due
from .tile import (LINE_BYTES, acc_tile, at, flush_terms, index_buffer, prefetch_l2, row_flush, row_fma, row_store,
                   row_zero, tile_shape, wide_tile)

#: filters per group up to which ``_paths/direct.py`` uses this kernel
MAX_FILTERS = 4
#: tasks ahead whose input a task prefetches (module docstring)
AHEAD = 2


@parallel_kernel
def narrow_kernel(xp, geom, w, b, has_bias, out, strides, dilations, cf_out, J, act, tag):
    """``out`` = act(conv(x, w) + b), K <= 4 filters per group, stride 1 along W.

    ``w`` is the canonical kernel (KD, KH, KW, Cg, K), ``geom`` = (C, G, DP, HP, WP):
    C input channels in G groups of Cg = C // G (the kernel serves G = 1 and one
    channel per group, i.e. depthwise). ``out`` is (N, OD, OH, OW, K), or
    (N, K, OD, OH, OW) when ``cf_out``; output pixels along W are then
    contiguous and stored as vectors (as they are for K = 1). ``b`` holds each
    filter's bias ``L`` times in a row (``b[k * L + i]``, the lanes of a vector
    store), read only when ``has_bias``.

    ``xp`` is the padded input, channels first, flat: element (n, c, z, y, x) at
    ``(((n * C + c) * DP + z) * HP + y) * WP + x``, with at least ``L`` readable
    elements after the last (vector loads of a row's last run read past it;
    those lanes are never stored). ``J``: tile rows per weight
    (``_paths/direct.narrow_rows_per_weight``)."""
    KD, KH, KW, CG, K = w.shape
    C, G, DP, HP, WP = geom
    KG = K // G
    if cf_out:
        N, _, OD, OH, OW = out.shape
        step = 1  # between neighbouring output pixels along W
    else:
        N, OD, OH, OW, _ = out.shape
        step = K
    sd, sh, _ = strides
    dd, dh, dw = dilations
    R, L = tile_shape(out, tag)
    F = flush_terms(out)
    if CG * KD * KH * KW <= F:
        F = 0  # no partial sums to flush: contiguous runs are stored from registers
    wide_store = F > 0 or step != 1
    # The J rows of a weight cover J output rows, or, on outputs with fewer rows
    # than J (1-D signals), J consecutive runs along W.
    runs = OH < J
    wf = w.reshape(w.size)
    outf = out.reshape(out.size)
    nyb = OH if runs else (OH + J - 1) // J
    span = L * J if runs else L  # output pixels along W per task
    nxb = (OW + span - 1) // span
    zero = out.dtype.type(0)
    line = LINE_BYTES // out.itemsize
    ntasks = N * G * OD * nyb * nxb
    for t in prange(ntasks):
        acc = acc_tile(out, tag)
        wide = wide_tile(out, tag)
        res = numba.carray(wide, (R, L))
        n, g, od, yb, xb = _task(t, nxb, nyb, OD, G)
        oh0 = yb if runs else yb * J
        ow0 = xb * span
        # per tile row: its filter, input offset, output row and column offsets
        # and whether it is live (set once here: r // J and r % J in the tap loop
        # cost an integer division each)
        rk = numba.carray(index_buffer(tag), (R,))
        ro = numba.carray(index_buffer(tag), (R,))
        ry = numba.carray(index_buffer(tag), (R,))
        rx = numba.carray(index_buffer(tag), (R,))
        rl = numba.carray(index_buffer(tag), (R,))
        for r in range(R):
            j = r % J
            rk[r] = g * KG + r // J
            ry[r] = 0 if runs else j
            rx[r] = j * L if runs else 0
            ro[r] = rx[r] + ry[r] * sh * WP
            rl[r] = r // J < KG and oh0 + ry[r] < OH and ow0 + rx[r] < OW
            row_zero(acc, r, out, tag)
            if wide_store:
                for i in range(L):
                    res[r, i] = 0
        # where task t + AHEAD reads its newest input row (in its group's first channel)
        ahead = -1
        t2 = t + AHEAD
        if t2 < ntasks:
            n2, g2, od2, yb2, xb2 = _task(t2, nxb, nyb, OD, G)
            oy = yb2 * sh if runs else yb2 * J * sh + (J - 1) * sh + (KH - 1) * dh
            ahead = (((n2 * C + g2 * CG) * DP + od2 * sd) * HP + oy) * WP + xb2 * span
        cnt = 0
        for cl in range(CG):
            c = g * CG + cl
            if ahead >= 0:
                for e in range(0, span, line):
                    prefetch_l2(xp, ahead + cl * DP * HP * WP + e)
            for a in range(KD):
                z = od * sd + a * dd
                for bb in range(KH):
                    # tile row r reads ro[r] past row 0's input
                    base = (((n * C + c) * DP + z) * HP + oh0 * sh + bb * dh) * WP + ow0
                    for cc in range(KW):
                        wo = (((a * KH + bb) * KW + cc) * CG + cl) * K
                        xo = base + cc * dw
                        for r in range(R):
                            if rl[r]:
                                row_fma(acc, r, at(wf, wo + rk[r]), xp, xo + ro[r], tag)
                        cnt = flush_if_due(acc, wide, cnt, 1, F, R, out, tag)
        if wide_store:
            for r in range(R):
                row_flush(acc, wide, r, out, tag)
        for r in range(R):
            if not rl[r]:
                continue
            k = rk[r]
            oh = oh0 + ry[r]
            ow = ow0 + rx[r]
            if cf_out:
                o = (((n * K + k) * OD + od) * OH + oh) * OW + ow
            else:
                o = (((n * OD + od) * OH + oh) * OW + ow) * K + k
            m = min(L, OW - ow)  # outputs of this run
            if step == 1:  # a contiguous output run: vector stores
                if wide_store:
                    row_store(wide, r, outf, o, m, b, k * L, has_bias, tag)
                else:
                    row_store(acc, r, outf, o, m, b, k * L, has_bias, tag)
                if act:
                    for i in range(m):
                        outf[o + i] = activate(outf[o + i], act)
            else:
                bk = b[k * L] if has_bias else zero
                for i in range(m):
                    outf[o + i * step] = activate(out.dtype.type(res[r, i] + bk), act)


@njit(inline="always", **SERIAL)
def _task(t, nxb, nyb, OD, G):
    """Task ``t``'s (n, g, od, yb, xb): its image, group, output plane, block of
    rows and block along W."""
    xb = t % nxb
    rest = t // nxb
    yb = rest % nyb
    rest = rest // nyb
    od = rest % OD
    rest = rest // OD
    return rest // G, rest % G, od, yb, xb
