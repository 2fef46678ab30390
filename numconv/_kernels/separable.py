"""The fused separable kernel: a depthwise-separable layer's two stages per run of
output pixels, its intermediate never leaving the cache.

``separable_conv`` is a depthwise conv followed by a 1 x 1 one. Run as two
layers, the depthwise result (8 x 56 x 56 x 128 float32: 12.8 MB) is written to
memory by the first and read back by the second. Here each task takes ``span``
output pixels of one row (n, od, oh): the depthwise stage's tiles
(``depthwise._slide_tile``, the slide kernel's) write their channels into a
per-slot buffer, then the 1 x 1 stage (``short.product_rows``, the pointwise
kernel's) reads them from there while they are still in L1/L2. The same
functions on the same values in the same order: the results are the bits of the
two stages run apart (``tests/test_separable_fused.py``).

Scope (``_paths/direct.fuses_separable``): the layers the slide kernel takes
without dilation along W and without flushing its window sums (single
precision, multiplier 1, zero padding), and a 1 x 1 stage ``pointwise_kernel``
takes (one group, single precision); every other layer runs the two stages apart.

Large layers (``_paths/direct.STREAM_BYTES``) stream their results around the
caches and fetch ahead: while a task runs its depthwise tiles, each tile asks
for a share of the input rows the next task reads and this one does not (into
L2). Neither paid alone: with plain stores, whose output lines take their place
in the caches, the fetches ahead cost more than they saved. 8 x 56 x 56 x 128 ->
128 3 x 3 same, 2 threads, copies of the kernel interleaved (per 8 images): in
cache (1 image) 4.6-5.0 ms; 8 images 5.4-6.2 plain, 5.2-5.7 streamed, 4.7-5.1
streamed and fetching ahead; fetching ahead with plain stores 5.8-6.2. The whole
call, alternating processes: 5.6-5.8 -> 5.1-5.4 ms.

Channels-first layers (``separable_cf_kernel``) take the same two stages the
other way round: a task is a block of output rows of one image, its depthwise
stage the channels-first depthwise kernel's tiles (``depthwise.cf_plane_rows``),
each channel's rows in turn into the buffer (channels, pixels), and its 1 x 1
stage ``product_rows`` with the roles of its operands swapped: the transposed
weights (filters, channels) are the rows, whose values it broadcasts, and the
buffer's pixels the lanes, so each filter's results are a run of its output
plane (4 filters x 64 pixels a tile, the same 16 FMAs per term). Run apart, the
two channels-first stages took 1.33x the channels-last layer (stop 39's bench).
"""
import numpy as np
from numba import njit, prange

from .._config import SERIAL, parallel_kernel
from .conv import row_task
from .depthwise import _slide_tile, cf_plane_rows, window_range
from .short import product_rows
from .tile import LINE_BYTES, acc_tile, prefetch_l2, store_fence, tile_shape, wide_tile


@parallel_kernel
def separable_kernel(x, wm, wp, b, has_bias, out, mids, strides, dilations, pads, span, stream, taps, stride, dtag,
                     ptag):
    """``out = pointwise(depthwise(x, wm), wp) + b`` (module docstring).

    ``x`` (N, D, H, W, C) canonical channels-last; ``wm`` (KD, KH, KW, 1, CP) the
    depthwise weights as ``depthwise_slide_kernel`` reads them (``taps`` and
    ``stride``: its tap count and stride along W as tuple lengths; ``dtag`` its
    tile); ``wp`` the 1 x 1 weights packed as ``pointwise_kernel`` reads them
    (``ptag`` its tile); ``out`` (N, OD, OH, OW, K). Parallel over equal blocks
    of the tasks (n, od, oh, run of ``span`` pixels), one per row of ``mids``
    (slots, >= span * C), each block's buffer for its runs' depthwise results,
    its rows 64-byte aligned (``_memory.scratch``; Numba's own arrays start 32
    bytes off a cache line as often as not). A non-empty tuple ``stream``: the
    results go around the caches (``out`` 64-byte aligned, ``K`` filling whole
    lines) and each task fetches ahead the next one's new input rows."""
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = out.shape
    KD, KH, KW, _, CP = wm.shape
    sd, sh, _ = strides
    dd, dh, _ = dilations
    pd, ph, pw = pads
    R, _ = tile_shape(x, dtag)
    _, PL = tile_shape(x, ptag)
    xf = x.reshape(x.size)
    wf = wm.reshape(wm.size)
    wpf = wp.reshape(wp.size)
    outf = out.reshape(out.size)
    no_bias = np.empty(1, x.dtype)  # (np.zeros in a parallel kernel is a parfor of its own to compile)
    no_bias[0] = 0
    slots = mids.shape[0]
    spans = -(-OW // span)
    tasks = N * OD * OH * spans
    per = (tasks + slots - 1) // slots
    geom = (D, H, W, C, C, KH, KW, CP, sd, sh, dd, dh, pd, ph, pw, len(stride))
    for s in prange(slots):
        mid = mids[s]
        acc = acc_tile(x, dtag)
        wide = wide_tile(x, dtag)
        end = min(tasks, (s + 1) * per)
        for t in range(s * per, end):
            n, od, oh, first, last = row_task(t, spans, OD, OH, OW, span)
            a0, a1 = window_range(od * sd - pd, dd, KD, D)
            b0, b1 = window_range(oh * sh - ph, dh, KH, H)
            ahead = len(stream) > 0 and t + 1 < end
            for ow0 in range(first, last, R):  # pixel ow0 + p goes to mid[(ow0 + p - first) * C:]
                if ahead:  # this tile's share of the next task's new input rows
                    _fetch_ahead(xf, t + 1, n, od, oh, a0, a1, b0, b1, ow0 - first, R, ow0 + R >= last, spans, OD,
                                 OH, OW, span, KD, geom)
                _slide_tile(acc, wide, xf, wf, mid, no_bias, False, False, n, od, oh, -first, ow0, last, 1, a0, a1,
                            b0, b1, False, 1, geom, taps, stride, dtag)
            o0 = (((n * OD + od) * OH + oh) * OW + first) * K
            product_rows(mid, 0, C, last - first, C, wpf, (C * PL, PL), b, has_bias, outf, (o0, K, K, 0), stream, ptag)
            if len(stream) > 0:
                store_fence()


@njit(inline="always", **SERIAL)
def _fetch_ahead(xf, t, n, od, oh, a0, a1, b0, b1, done, R, rest, spans, OD, OH, OW, span, KD, geom):
    """Prefetch into L2 a tile's share of the input that task ``t`` reads and the
    task (n, od, oh) (window rows ``[a0, a1) x [b0, b1)``) does not: of each such
    row, the ``R`` output pixels' worth after the first ``done`` of those task
    ``t`` reads (``rest``: to the end of the row)."""
    D, H, W, C, _, KH, KW, _, sd, sh, dd, dh, pd, ph, pw, S = geom
    n2, od2, oh2, first2, last2 = row_task(t, spans, OD, OH, OW, span)
    lo = max(first2 * S - pw, 0) * C
    hi = min(W, (last2 - 1) * S - pw + KW) * C
    e0 = min(hi, lo + done * S * C)
    e1 = hi if rest else min(hi, e0 + R * S * C)
    z0, y0 = od * sd - pd, oh * sh - ph  # this task's window rows: z0 + a * dd, y0 + b * dh
    c0, c1 = window_range(od2 * sd - pd, dd, KD, D)
    r0, r1 = window_range(oh2 * sh - ph, dh, KH, H)
    line = LINE_BYTES // xf.itemsize
    for a in range(c0, c1):
        iz = od2 * sd - pd + a * dd
        for bb in range(r0, r1):
            iy = oh2 * sh - ph + bb * dh
            if not (n2 == n and (iz - z0) % dd == 0 and a0 <= (iz - z0) // dd < a1
                    and (iy - y0) % dh == 0 and b0 <= (iy - y0) // dh < b1):
                row = ((n2 * D + iz) * H + iy) * W * C
                for e in range(e0, e1, line):
                    prefetch_l2(xf, row + e)


@parallel_kernel
def separable_cf_kernel(xf, geom, pads, wm, wt, b, has_bias, out, mids, strides, dilations, rows, taps, stride, dtag,
                        ptag, runs):
    """``out = pointwise(depthwise(x, wm), wt) + b`` on channels-first data, its
    intermediate never leaving the cache: ``separable_kernel``'s counterpart.

    ``xf``, ``geom``, ``pads``, ``wm`` (multiplier 1), ``strides``, ``dilations``,
    ``taps``, ``stride``, ``dtag`` and ``runs`` as for ``depthwise_cf_kernel``; ``wt`` the 1 x
    1 weights transposed, (K, C); ``b`` each filter's bias ``L`` times in a row
    (``L`` the lanes of ``ptag``'s tile); ``out`` (N, K, OD, OH, OW). A task is
    ``rows`` output rows of one (n, od): its depthwise stage writes each channel's
    block of rows (``depthwise.cf_plane_rows``) to its slot's buffer, channels
    first (C, pixels), and its 1 x 1 stage is the matrix product (K, C) x (C,
    pixels) (``short.product_rows`` with filters as the rows and pixels as the
    lanes), stored as the filters' rows of ``out``. Parallel over equal blocks of
    tasks, one per row of ``mids`` (slots, >= C * rows * OW + L)."""
    C, DI, HI, WI = geom
    KD, KH, KW, _, CP = wm.shape
    N, K, OD, OH, OW = out.shape
    sd = strides[0]
    dd = dilations[0]
    _, PL = tile_shape(out, ptag)
    wf = wm.reshape(wm.size)
    outf = out.reshape(out.size)
    no_bias = np.empty(1, out.dtype)
    no_bias[0] = 0
    blocks = (OH + rows - 1) // rows
    tasks = N * OD * blocks
    slots = mids.shape[0]
    per = (tasks + slots - 1) // slots
    plane_out = OD * OH * OW
    for s in prange(slots):
        mid = mids[s]
        acc = acc_tile(out, dtag)
        for t in range(s * per, min(tasks, (s + 1) * per)):
            blk = t % blocks
            q = t // blocks
            od = q % OD
            n = q // OD
            oh_lo = blk * rows
            oh_hi = min(OH, oh_lo + rows)
            pix = (oh_hi - oh_lo) * OW
            a0, a1 = window_range(od * sd - pads[0], dd, KD, DI)
            for c in range(C):
                cf_plane_rows(acc, xf, (n * C + c) * DI * HI * WI, wf, c, CP, mid, c * pix - oh_lo * OW, oh_lo, oh_hi,
                              (OH, OW, od, a0, a1, KH, KW), geom, pads, strides, dilations, no_bias, 0, False, 0,
                              taps, stride, dtag, runs)
            product_rows(wt, 0, C, K, C, mid, (PL, pix), b, has_bias, outf,
                         (n * K * plane_out + (od * OH + oh_lo) * OW, plane_out, pix, PL), (), ptag)
