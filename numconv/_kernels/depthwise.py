"""Depthwise kernels: groups == channels (one input channel per group), any depth
multiplier M. ``depthwise_slide_kernel`` takes the common layers (multiplier 1,
zero padding, along W a stride or a dilation: see its docstring); ``depthwise_kernel``, below,
every other channels-last case, and ``depthwise_cf_kernel`` channels-first data.
Output channel ``c * M + m`` is input channel ``c`` with multiplier ``m`` (Keras
order).

Vectorised along input channels: for one output pixel, each tap is one vector
FMA per block of channels, ``acc[c] += x[iz, iy, ix, c] * w[tap, m, c]``.
Memory-bound (each input value is used K = kh * kw times but
there is no reduction over channels), so the design goal is one pass over the
input and one store per output vector. The tile kernel in ``conv.py`` would
zero-fill ``B - M`` of its ``B`` lanes here.

Canonical operands: ``x`` (N, D, H, W, C); ``wm`` (KD, KH, KW, M, CP), the Keras
kernel (KD, KH, KW, 1, C*M) regrouped so channels are contiguous and zero-padded
to CP, a whole number of channel blocks; ``out``
(N, OD, OH, OW, C*M). Padding is index arithmetic: with zeros (``mode`` 0) taps
outside the input are skipped, other modes read ``pad.source_index``.

The common case is compiled separately: multiplier 1, whole channel blocks and
windows short enough never to flush (``F`` == 0) take the same tap loop with
those values as constants, so the input loads are unmasked, the flush code folds
away and the tile is stored straight from registers. Measured on 8 x 56 x 56 x
128, 3 x 3 "same" (interleaved runs, min of 300): 1 thread, 1 image 0.245 ->
0.18 ms; 2 threads, 8 images 0.84 -> 0.68 ms with 64-byte aligned operands, 1.09
-> 0.85 ms with NumPy's usual 16-byte offset. The general copy (flushes inside
the tap loop, masked loads, the storing loop's trip count left to runtime) kept
the tile in memory between taps. The general case calls the same loop as a
separate function (``_taps_general``) rather than a second inlined copy: two
inlined copies doubled the kernel's first-call compile time (6 -> 11-12 s per
signature; 8.5 s this way, at the same speed).

Software prefetch: each tile fetches the next tile's output lines for writing
(their read-for-ownership otherwise stalls the stores once the output is out of
cache: 8 images, 2 threads, 1.16 -> 0.69 ms). Prefetching the input rows ahead
of their reads, as an earlier version did, no longer helped (0.73 with it).
"""
import numba
import numpy as np
from numba import njit, prange

from .._config import SERIAL, parallel_kernel
from .act import activate_slice, write_row
from .conv import flush_if_due, row_task
from .pad import source_index
from .tile import (LINE_BYTES, acc_tile, at, flush_terms, lane_bits, prefetch, prefetch_write, row_flush, row_fma,
                   row_fma_masked, row_fmav, row_fmav_bits, row_spill, row_store, row_stream, row_zero, store_fence,
                   tile_shape, tile_slide, tile_slide_rows, wide_tile)


@njit(inline="always", **SERIAL)
def _taps(acc, wide, xf, wf, n, od, oh, ow0, c0, m, count, interior, F, R, dims, geom, mode, x, tag):
    """Accumulate every tap of one tile (``R`` pixels from ``ow0``, channels ``c0 :
    c0 + count``, multiplier ``m``) into ``acc``, flushing into ``wide`` every
    ``F`` taps (0: never). ``interior``: every tap of every pixel lies inside the
    input along W, so no pixel needs a check. Flushes are counted per run of at
    most ``F`` taps along W, outside the innermost loop."""
    D, H, W, C, OW, KD, KH, KW, M, CP = dims
    sd, sh, sw, dd, dh, dw, pd, ph, pw = geom
    chunk = min(KW, F) if F else KW
    cnt = 0
    for a in range(KD):
        iz = source_index(od * sd - pd + a * dd, D, mode)
        if iz < 0:
            continue
        for bb in range(KH):
            iy = source_index(oh * sh - ph + bb * dh, H, mode)
            if iy < 0:
                continue
            base = ((n * D + iz) * H + iy) * W
            for cc0 in range(0, KW, chunk):
                for cc in range(cc0, min(cc0 + chunk, KW)):
                    woff = (((a * KH + bb) * KW + cc) * M + m) * CP + c0
                    if interior:
                        ix0 = ow0 * sw - pw + cc * dw
                        for p in range(R):
                            row_fmav(acc, p, xf, (base + ix0 + p * sw) * C + c0, count, wf, woff, tag)
                    else:
                        for p in range(R):
                            ix = source_index((ow0 + p) * sw - pw + cc * dw, W, mode)
                            if ow0 + p >= OW or ix < 0:
                                continue
                            row_fmav(acc, p, xf, (base + ix) * C + c0, count, wf, woff, tag)
                cnt = flush_if_due(acc, wide, cnt, min(chunk, KW - cc0), F, R, x, tag)


#: the general tap loop as its own function (not inlined into the kernel a second time)
_taps_general = njit(**SERIAL)(_taps.py_func)


@parallel_kernel
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
    dims = (D, H, W, C, OW, KD, KH, KW, M, CP)
    geom = (sd, sh, sw, dd, dh, dw, pd, ph, pw)
    xf = x.reshape(x.size)
    outf = out.reshape(out.size)
    wf = wm.reshape(wm.size)
    line = LINE_BYTES // x.itemsize
    for t in prange(N * OD * OH):
        acc = acc_tile(x, tag)
        wide = wide_tile(x, tag)
        res = numba.carray(wide, (R, L))
        n = t // (OD * OH)
        r = t - n * (OD * OH)
        od = r // OH
        oh = r - od * OH
        row = ((n * OD + od) * OH + oh) * OW
        for m in range(M):
            # Pixel tiles outside channel blocks: each tile reads its pixels'
            # channels contiguously (blocks outside tiles streamed each input row
            # once per block with a stride, 3-4x slower once the rows left L1).
            for ow0 in range(0, OW, R):
                if ow0 + R < OW:  # the next tile's output lines, fetched for writing
                    for e in range(0, min(R, OW - ow0 - R) * K, line):
                        prefetch_write(outf, (row + ow0 + R) * K + e)
                interior = (ow0 * sw - pw >= 0 and ow0 + R <= OW
                            and (ow0 + R - 1) * sw - pw + (KW - 1) * dw < W)
                for c0 in range(0, C, L):
                    cn = min(L, C - c0)
                    for p in range(R):
                        row_zero(acc, p, x, tag)
                    if M == 1 and F == 0 and cn == L:  # the common case with constants: see the module docstring
                        _taps(acc, wide, xf, wf, n, od, oh, ow0, c0, 0, L, interior, 0, R, dims, geom, mode, x, tag)
                        for p in range(R):  # a constant trip count keeps the tile in registers
                            if ow0 + p < OW:
                                o = (row + ow0 + p) * K + c0
                                row_store(acc, p, outf, o, L, b, c0, has_bias, tag)
                                if act:
                                    activate_slice(outf[o:o + L], act)
                        continue
                    for p in range(R):
                        for k in range(L):
                            res[p, k] = 0
                    _taps_general(acc, wide, xf, wf, n, od, oh, ow0, c0, m, cn, interior, F, R, dims, geom, mode,
                                  x, tag)
                    for p in range(R):
                        if ow0 + p >= OW:
                            break
                        row_flush(acc, wide, p, x, tag)
                        if M == 1:  # contiguous channels: vector epilogue
                            o = (row + ow0 + p) * K + c0
                            row_store(wide, p, outf, o, cn, b, c0, has_bias, tag)
                            if act:
                                activate_slice(outf[o:o + cn], act)
                        else:
                            lo = c0 * M + m
                            write_row(out[n, od, oh, ow0 + p, lo:lo + cn * M:M], res[p], b[lo:lo + cn * M:M],
                                      has_bias, act)


@njit(inline="always", **SERIAL)
def window_range(first, step, taps, length):
    """The taps ``[lo, hi)`` of a window whose tap ``j`` reads position ``first + j
    * step`` that fall inside ``[0, length)``."""
    lo = 0 if first >= 0 else (step - 1 - first) // step
    hi = 0 if first >= length else min(taps, (length - 1 - first) // step + 1)
    return lo, max(lo, hi)


@parallel_kernel
def depthwise_slide_kernel(x, wm, b, has_bias, out, strides, dilations, pads, span, stream, act, taps, stride, tag):
    """``out = act(depthwise(x, w) + b)`` for multiplier 1, zero padding and
    dilation 1 along W, or stride 1 and any dilation there, with the tap count
    and the stride along W as constants (the lengths of ``taps`` and ``stride``):
    the common depthwise layers' kernel.

    Operands as for ``depthwise_kernel`` (``wm`` (KD, KH, KW, 1, CP)). Register
    tile: ``R`` consecutive output pixels along W x one block of ``L`` channels.
    Per input row of the window, ``tile_slide`` loads each of the ``(R - 1) *
    stride + KW`` input vectors the tile's pixels read once and adds it into every
    pixel that reads it (``depthwise_kernel`` loads ``R * KW``, and takes the tap
    count from a runtime loop). Zero padding along W is masked lanes in the same
    code; along D and H the window's rows inside the input are a range per task.
    Windows of at most ``FLUSH_TERMS`` taps are summed in registers and stored
    straight from them; longer ones in single precision add the tile into a
    double-precision one every ``FLUSH_TERMS // KW`` window rows (the other
    kernels' flush length), in a copy of the tile loop of its own (a runtime
    flag in the one loop cost 3 x 3 windows 10-15 %; that copy keeps the double
    tile live and spills part of the register tile): 8 x 56 x 56 x 128, 9 x 9:
    7.5-9.0 ms on ``depthwise_kernel``, 4.1 here, torch 5.4. Dilated tiles
    (below) have a copy without flushes; such windows of more than
    ``FLUSH_TERMS`` taps in single precision go to another kernel. With the
    three copies, depthwise2d (8 x 56 x 56 x 128, 3 x 3) measured 0.61 against
    0.55-0.62 ms before them, depthwise1d 4.3-4.4 against 4.05-4.25. Tasks are ``span`` output pixels of one (n, od, oh)
    row (a whole row unless rows are too few to keep the threads busy).

    A dilation ``d`` along W (at stride 1) splits a block of ``R * d`` output
    pixels into ``d`` tiles of ``R`` pixels ``d`` apart: pixel ``p``'s tap ``j``
    reads input ``x0 + (p + j) * d``, so each tile is an undilated slide over
    every ``d``-th input pixel (``x_step`` ``d * C``). 8 x 56 x 56 x 128, 3 x 3,
    dilation 2, 2 threads: 1.21 ms on the row-run kernel, 0.80 here (torch 0.69);
    7 x 7: 4.46 -> 1.68 (1.42); 4 x 64 x 64 x 256, 3 x 3: 2.39 -> 1.18 (1.44).

    Measured on 1 x 56 x 56 x 128, 3 x 3 "same", 1 thread, in cache (medians of
    600): ``depthwise_kernel`` 0.20-0.25 ms; this kernel 0.23 at first, 0.20
    without the activation branch in the tile loop (now one pass over the task's
    outputs), 0.15 with one loop over the window's rows instead of two nested
    ones that skipped rows outside (which kept values the tile loop needs in
    memory), 0.115 with 8 x 32-lane tiles instead of 8 x 16 (twice the FMAs per
    tap row for the same address arithmetic). torch: 0.122."""
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = out.shape
    KD, KH, KW, _, CP = wm.shape
    sd, sh, _ = strides
    dd, dh, DW = dilations
    pd, ph, pw = pads
    S = len(stride)
    R, L = tile_shape(x, tag)
    xf = x.reshape(x.size)
    outf = out.reshape(out.size)
    wf = wm.reshape(wm.size)
    line = LINE_BYTES // x.itemsize
    # streaming stores need every whole row's address on a cache line boundary
    stream = stream and outf.ctypes.data % LINE_BYTES == 0 and K * x.itemsize % LINE_BYTES == 0
    F = flush_terms(x)
    per_flush = max(F // KW, 1)  # window rows summed in registers between flushes (single precision)
    spans = -(-OW // span)
    for t in prange(N * OD * OH * spans):
        acc = acc_tile(x, tag)
        wide = wide_tile(x, tag)
        n, od, oh, first, last = row_task(t, spans, OD, OH, OW, span)
        row = ((n * OD + od) * OH + oh) * OW
        a0, a1 = window_range(od * sd - pd, dd, KD, D)
        b0, b1 = window_range(oh * sh - ph, dh, KH, H)
        flushing = F != 0 and (a1 - a0) * (b1 - b0) > per_flush
        geom = (D, H, W, C, K, KH, KW, CP, sd, sh, dd, dh, pd, ph, pw, S)
        if DW == 1:
            for ow0 in range(first, last, R):
                if ow0 + R < last and not stream:  # the next tile's output lines, fetched for writing
                    for e in range(0, min(R, last - ow0 - R) * K, line):
                        prefetch_write(outf, (row + ow0 + R) * K + e)
                # (a constant flag per copy: a runtime one in the tile cost 3 x 3 windows 10-15 %)
                if flushing:
                    _slide_tile(acc, wide, xf, wf, outf, b, has_bias, stream, n, od, oh, row, ow0, last, 1, a0, a1,
                                b0, b1, True, per_flush, geom, taps, stride, tag)
                else:
                    _slide_tile(acc, wide, xf, wf, outf, b, has_bias, stream, n, od, oh, row, ow0, last, 1, a0, a1,
                                b0, b1, False, per_flush, geom, taps, stride, tag)
        else:  # DW tiles of R pixels DW apart per block (never flushing: ``_paths/direct.slides``)
            for block in range(first, last, R * DW):
                if block + R * DW < last and not stream:
                    for e in range(0, min(R * DW, last - block - R * DW) * K, line):
                        prefetch_write(outf, (row + block + R * DW) * K + e)
                for ow0 in range(block, min(block + DW, last)):
                    _slide_tile(acc, wide, xf, wf, outf, b, has_bias, stream, n, od, oh, row, ow0, last, DW, a0,
                                a1, b0, b1, False, per_flush, geom, taps, stride, tag)
        if stream:
            store_fence()
        if act:  # one pass over the task's outputs, still in cache (see the docstring)
            activate_slice(outf[(row + first) * K:(row + last) * K], act)


@njit(inline="always", **SERIAL)
def _slide_tile(acc, wide, xf, wf, outf, b, has_bias, stream, n, od, oh, row, ow0, last, DW, a0, a1, b0, b1,
                flushing, per_flush, geom, taps, stride, tag):
    """One tile of ``depthwise_slide_kernel``: output pixels ``ow0 + p * DW`` (``p <
    R``) of the row, every channel block, its window rows ``[a0, a1) x [b0, b1)``,
    summed in registers or (``flushing``) in partial sums of ``per_flush`` window
    rows; stored."""
    D, H, W, C, K, KH, KW, CP, sd, sh, dd, dh, pd, ph, pw, S = geom
    R, L = tile_shape(xf, tag)
    x0 = ow0 * S - pw  # the input pixel of the tile's first position (position q: x0 + q * DW)
    lo, hi = -(x0 // DW), -((x0 - W) // DW)  # the positions inside the row
    for c0 in range(0, C, L):
        cn = min(L, C - c0)
        for p in range(R):
            row_zero(acc, p, xf, tag)
        if not flushing:
            for a in range(a0, a1):
                for bb in range(b0, b1):
                    tile_slide(acc, xf, (((n * D + od * sd - pd + a * dd) * H + oh * sh - ph + bb * dh) * W + x0) * C
                               + c0, C * DW, lo, hi, cn, wf, (a * KH + bb) * KW * CP + c0, CP, taps, stride, tag)
            _slide_store(acc, outf, row, ow0, DW, last, K, c0, cn, b, has_bias, stream, R, L, tag)
            continue
        # long windows in single precision: partial sums of per_flush window rows,
        # added into a double-precision tile (the other kernels' flush length)
        due = 0
        for a in range(a0, a1):
            for bb in range(b0, b1):
                tile_slide(acc, xf, (((n * D + od * sd - pd + a * dd) * H + oh * sh - ph + bb * dh) * W + x0) * C
                           + c0, C * DW, lo, hi, cn, wf, (a * KH + bb) * KW * CP + c0, CP, taps, stride, tag)
                due += 1
                if due % per_flush == 0:  # (the first stores, no clearing)
                    for p in range(R):
                        row_spill(acc, wide, p, due == per_flush, xf, tag)
        for p in range(R):
            row_flush(acc, wide, p, xf, tag)
        _slide_store(wide, outf, row, ow0, DW, last, K, c0, cn, b, has_bias, stream, R, L, tag)


@njit(inline="always", **SERIAL)
def _slide_store(acc, outf, row, ow0, DW, last, K, c0, cn, b, has_bias, stream, R, L, tag):
    """Store the slide kernel's tile: pixel ``p`` of the tile is output pixel
    ``ow0 + p * DW`` of the row (those before ``last``)."""
    for p in range(R):
        if ow0 + p * DW < last:
            o = (row + ow0 + p * DW) * K + c0
            if stream:  # (whole lines: K fills whole lines, and c0 starts one)
                row_stream(acc, p, outf, o, cn, b, c0, has_bias, tag)
            elif cn == L:  # a constant count: plain stores
                row_store(acc, p, outf, o, L, b, c0, has_bias, tag)
            else:
                row_store(acc, p, outf, o, cn, b, c0, has_bias, tag)


@parallel_kernel
def depthwise_rows_kernel(x, wr, br, has_bias, out, strides, dilations, pads, span, act, tag):
    """``out = act(depthwise(x, w) + b)`` for zero padding, vectorised along each
    row's flat run of (pixel, channel) values rather than along channels: few
    channels, or a count that leaves a channel vector partly idle, still fill
    every lane.

    In a channels-last row the output values ``j = p * C + c`` (pixel ``p``,
    channel ``c``) lie in one contiguous run of ``OW * C``, and tap ``kw`` of
    every one of them reads the input row's run at ``j + (kw * dw - pw) * C``: one
    shift per tap, so a vector of consecutive outputs reads a vector of
    consecutive inputs. Its weights ``w[tap, j % C]`` repeat every ``P = C /
    gcd(C, lanes)`` vectors: ``wr`` (KD, KH, KW, P + R - 1, lanes) holds them and
    ``br`` (P + R - 1, lanes) the bias (``_paths/direct.rows_weights``), ``R - 1``
    vectors past a period so that a tile's ``R`` vectors are consecutive rows from
    its first one's phase (a ``%`` per vector and tap, an integer division, made
    the kernel 3-4x slower). Register tile: ``R``
    consecutive vectors of a row's run. A vector that crosses the input row's
    ends (zero padding along W) loads only its lanes inside the row
    (``row_fmav_bits``); window rows outside the input along D and H are a range
    per task, as in ``depthwise_slide_kernel``. Windows of at most
    ``FLUSH_TERMS`` taps in single precision (stored straight from registers).
    Tasks are ``span`` values (a multiple of the tile's) of one (n, od, oh) row;
    each output is one thread's sum in a fixed order, so results do not depend
    on the thread count.

    A stride ``S`` > 1 along W breaks the run (consecutive outputs read inputs
    ``S`` pixels apart), so a task computes the stride-1 run of its outputs'
    window into a buffer and keeps every ``S``-th pixel: ``S`` times the
    multiply-adds, which these memory-bound layers can spare (2 x 322 x 968 x 4,
    6 x 3, stride 3 along W: 5.9 ms on the channel-vectorised kernel, 4 of its
    16 lanes in use). ``span`` then counts output pixels. A depth multiplier
    ``M`` > 1 (output channel ``c * M + m`` reads channel ``c``) breaks the
    output's run too, not the input's: a task computes each multiplier's run
    (``C`` values a pixel, its own weights ``wr[m]``) into the buffer in turn and
    interleaves its pixels into the result, channel ``c`` at ``c * M + m``. An
    earlier version copied each window row with every channel repeated ``M``
    times and ran the kernel once over that run: the copy, once per window row
    and task, cost more than the multiply-adds (1 x 88 x 265 x 88 x 4 -> 12,
    strides (1, 3, 1), dilation 2 along W: 22.5 -> 11.0 ms, torch 9.9; 4 x 128 x
    42 x 85 x 4 -> 8, strides (3, 1, 2): 14.6 -> 7.0; 8 x 182 x 91 x 4 -> 8,
    stride 2 along H: 0.56 -> 0.44; 2 threads, best of 5-30)."""
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = out.shape
    M, KD, KH, KW, PR, _ = wr.shape
    sd, sh, _ = strides
    dd, dh, dw = dilations
    pd, ph, pw = pads
    R, V = tile_shape(x, tag)
    xf = x.reshape(x.size)
    outf = out.reshape(out.size)
    wf = wr.reshape(wr.size)
    bf = br.reshape(br.size)
    wsize = wr.size // M  # one multiplier's weights, and bias below
    bsize = br.size // M
    line = LINE_BYTES // x.itemsize
    S = strides[2]
    LX = W * C  # a window row's run
    LO = OW * K
    whole = S == 1 and M == 1  # the task's outputs are a stretch of the output row's run
    units = LO if whole else OW  # what ``span`` counts: run values, else output pixels
    spans = -(-units // span)
    for t in prange(N * OD * OH * spans):
        n, od, oh, first, last = row_task(t, spans, OD, OH, units, span)
        orow = ((n * OD + od) * OH + oh) * LO
        a0, a1 = window_range(od * sd - pd, dd, KD, D)
        b0, b1 = window_range(oh * sh - ph, dh, KH, H)
        xrow0 = ((n * D + od * sd - pd) * H + oh * sh - ph) * LX  # window row (a, bb): + a * step_a + bb * step_b
        step_a, step_b = dd * H * LX, dh * LX
        if whole:
            dst, base, e0, e1, origin = outf, orow, first, last, 0
        else:  # a multiplier's stride-1 run of the pixels' window, every S-th pixel kept below
            e0 = first * S * C
            e1 = ((last - 1) * S + 1) * C
            dst, base, origin = np.empty(e1 - e0, x.dtype), -e0, e0
        for m in range(M):
            _rows_tiles(xf, wf, m * wsize, bf, m * bsize, has_bias, dst, base, e0, e1, origin,
                        (xrow0, step_a, step_b), (a0, a1, b0, b1), (LX, C, KH, KW, PR, dw, pw), line, x, tag)
            if not whole:
                for p in range(first, last):
                    s0 = (p - first) * S * C
                    o = orow + p * K + m
                    for c in range(C):  # (unsigned: signed indices had LLVM vectorise over pixels with gathers)
                        outf[np.uint64(o + c * M)] = dst[np.uint64(s0 + c)]
        if act:  # one pass over the task's outputs, still in cache
            lo, hi = (first, last) if whole else (first * K, last * K)
            activate_slice(outf[orow + lo:orow + hi], act)


@njit(**SERIAL)
def _rows_tiles(xf, wf, woff, br, boff, has_bias, dst, base, first, last, origin, rows, window, dims, line, x, tag):
    """``depthwise_rows_kernel``'s tiles over the values ``first ... last - 1`` of
    a row's stride-1 run, stored at ``dst[base + j]``; ``origin`` (a multiple of
    the channel count) is where the tiles' vectors start counting for their
    weights' phase (0 in the result's row). Window row (a, bb) starts at ``xrow0 +
    a * step_a + bb * step_b`` of ``xf`` (``rows``); ``window`` holds the ranges
    of window rows inside the input along D and H. A function of its own, called
    once per task (not inlined: its arrays are the input or a buffer and the
    result or a buffer, and inlined under those choices the tile loop ran ~1.6x
    slower), with the register tile in its own entry block."""
    acc = acc_tile(x, tag)
    R, V = tile_shape(x, tag)  # (constants here: from ``dims`` they left the tile loop rolled and masked)
    a0, a1, b0, b1 = window
    xrow0, step_a, step_b = rows
    LX, C, KH, KW, PR, dw, pw = dims
    for j0 in range(first, last, R * V):
        if j0 + R * V < last:  # the next tile's output lines, fetched for writing
            for e in range(0, min(R * V, last - j0 - R * V), line):
                prefetch_write(dst, base + j0 + R * V + e)
        phase = ((j0 - origin) // V) % (PR - R + 1)  # the tile's first vector's weights: row ``phase`` of a tap's
        for p in range(R):
            row_zero(acc, p, x, tag)
        for a in range(a0, a1):
            for bb in range(b0, b1):
                xrow = xrow0 + a * step_a + bb * step_b
                for cc in range(KW):
                    shift = (cc * dw - pw) * C
                    wt = ((a * KH + bb) * KW + cc) * PR + phase
                    if j0 + shift >= 0 and j0 + shift + R * V <= LX:  # the whole tile inside: straight-line
                        for p in range(R):
                            row_fmav(acc, p, xf, xrow + j0 + shift + p * V, V, wf, woff + (wt + p) * V, tag)
                        continue
                    for p in range(R):
                        i0 = j0 + p * V + shift  # the vector's first input value in the row's run
                        if i0 < LX and i0 + V > 0:
                            row_fmav_bits(acc, p, xf, xrow + i0, lane_bits(max(0, -i0), min(V, LX - i0)), wf,
                                          woff + (wt + p) * V, tag)
        for p in range(R):
            j = j0 + p * V
            if j < last:
                row_store(acc, p, dst, base + j, min(V, last - j), br, boff + (phase + p) * V, has_bias, tag)


@parallel_kernel
def depthwise_cf_kernel(xf, geom, pads, wm, b, has_bias, out, strides, dilations, act, taps, stride, tag, runs):
    """``out = act(depthwise(x, w) + b)`` on channels-first data, without layout
    changes: the channels_first counterpart of ``depthwise_kernel``.

    ``xf`` is a channels-first input, flat: element (n, c, z, y, x) at ``(((n * C
    + c) * DI + z) * HI + y) * WI + x`` for ``geom`` = (C, DI, HI, WI). Positions
    the window reads outside it, ``pads`` = (pd, ph, pw) before each axis, are
    zero padding: rows outside are skipped, and a row whose run of ``L`` pixels
    crosses the left or right edge loads only the lanes inside
    (``row_fma_masked``). So zero padding reads the user's array as it is; other
    padding modes pass ``_paths/direct.padded_channels_first``'s copy with
    ``pads`` 0. ``wm`` (KD, KH, KW, M, CP) as for ``depthwise_kernel``; ``out``
    (N, C * M, OD, OH, OW); stride 1 along W; ``b`` each output channel's bias
    ``L`` times in a row. Windows of at most ``FLUSH_TERMS`` taps (no partial sums
    to flush).

    Register tile: ``R`` output rows x ``L`` output pixels along W of one output
    plane, each tap one broadcast weight and one vector FMA per row (``row_fma``
    over the input row; 1-D outputs give the rows to consecutive runs along W
    instead; ``runs`` non-empty, a tuple as ``runs_mode`` gives it, says which).
    With ``taps`` and ``stride`` non-empty (their lengths: the window's
    rows and the stride along H, dilation 1 along H; tiles of ``R`` output rows),
    each of the ``(R - 1) * stride + KH`` input rows a tap column reads is loaded
    once for every output row that reads it (``tile_slide_rows``) instead of once
    per output row and tap row (1 x 128 x 56 x 56, 3 x 3 "same", 1 thread, in
    cache, medians of 300: 0.288 -> 0.212 ms; channels-last: 0.147-0.155). The
    sums then run tap columns outer, so they may differ from the channels-last
    kernel's in the last bits. One task per (n, c, od) plane, all multipliers: the
    plane's weights and input stay in L1, and tiles are big enough that the
    per-tile set-up is small (the narrow kernel, with a task per tile of 4 rows,
    took 2.6 ms on 8 x 128 x 56 x 56, 3 x 3). Each tile fetches the next tile's
    input and output rows ahead (8 images, 2 threads: 2.3 -> 0.89 ms). Reading
    the unpadded input instead of a zero-padded copy made in a pass of its own
    took channels_first 8 x 128 x 56 x 56, 3 x 3 "same" from 1.06 to 0.78 ms.
    """
    KD, KH, KW, M, CP = wm.shape
    C, DI, HI, WI = geom
    pd = pads[0]
    N, K, OD, OH, OW = out.shape
    sd = strides[0]
    dd = dilations[0]
    wf = wm.reshape(wm.size)
    outf = out.reshape(out.size)
    for t in prange(N * C * OD):
        acc = acc_tile(out, tag)
        od = t % OD
        nc = t // OD
        c = nc % C
        n = nc // C
        a0, a1 = window_range(od * sd - pd, dd, KD, DI)
        for m in range(M):
            k = c * M + m
            cf_plane_rows(acc, xf, nc * DI * HI * WI, wf, m * CP + c, M * CP, outf, ((n * K + k) * OD + od) * OH * OW,
                          0, OH, (OH, OW, od, a0, a1, KH, KW), geom, pads, strides, dilations, b, k, has_bias, act,
                          taps, stride, tag, runs)


def runs_mode(rows, tile_rows):
    """``cf_plane_rows``'s ``runs`` argument for outputs of ``rows`` rows and tiles
    of ``tile_rows``: (0,) where the tile's rows are runs along W, else ()."""
    return (0,) if rows < tile_rows else ()


@njit(inline="always", **SERIAL)
def cf_plane_rows(acc, xf, plane, wf, w0, wstep, dst, obase, oh_lo, oh_hi, rgeom, geom, pads, strides, dilations, b,
                  k, has_bias, act, taps, stride, tag, runs):
    """Output rows ``oh_lo : oh_hi`` of one plane of ``depthwise_cf_kernel`` (its
    docstring): the input plane at ``xf[plane:]``; tap (a, bb, cc)'s weight at
    ``wf[((a * KH + bb) * KW + cc) * wstep + w0]``; output pixel (oh, ow) to
    ``dst[obase + oh * OW + ow]`` (+ output channel ``k``'s bias, then activation
    ``act``); ``rgeom`` = (OH, OW, od, a0, a1, KH, KW), the plane's output size,
    its output depth and the window's depth taps inside the input; ``runs``
    non-empty where the plane has fewer rows than a tile (``runs_mode``). Shared
    by the separable channels-first kernel, which writes a block of rows of each
    channel to its buffer."""
    OH, OW, od, a0, a1, KH, KW = rgeom
    C, DI, HI, WI = geom
    pd, ph, pw = pads
    sd, sh, _ = strides
    dd, dh, dw = dilations
    R, L = tile_shape(dst, tag)
    # Tile row r: output row oh0 + r, or, on outputs with fewer rows than R (1-D
    # signals), the r-th consecutive run of L pixels along W of one row. (Known
    # when compiling: as a runtime flag, the loop nest shared with the separable
    # kernel kept both forms' values live, and LLVM shuffled the tile through 30
    # zmm registers per tap: 1-D 16 x 64 x 16000, 9 taps, 1 thread, 8.8 -> 12.5 ms.)
    runs = len(runs) > 0
    ystep = 1 if runs else R
    xstep = R * L if runs else L
    line = LINE_BYTES // dst.itemsize
    full = lane_bits(0, L)
    S = len(stride)
    for oh0 in range(oh_lo, oh_hi, ystep):
        for r in range(ystep):  # the next rows' input and output, fetched ahead
            y = (oh0 + ystep + r) * sh - ph
            z = od * sd - pd
            if 0 <= y < HI and 0 <= z < DI:
                nx = plane + (z * HI + y) * WI
                for e in range(0, WI, line):
                    prefetch(xf, nx + e)
            if oh0 + ystep + r < oh_hi:
                for e in range(0, OW, line):
                    prefetch_write(dst, obase + (oh0 + ystep + r) * OW + e)
        for ow0 in range(0, OW, xstep):
            for r in range(R):
                row_zero(acc, r, dst, tag)
            # (runs: no per-run lane masks where the tile's taps all read inside the row)
            inside = runs and ow0 - pw >= 0 and ow0 + xstep <= OW and ow0 + xstep - pw + (KW - 1) * dw <= WI
            if len(taps):  # output rows share their input rows' loads (see the docstring)
                for a in range(a0, a1):
                    z = od * sd - pd + a * dd
                    for cc in range(KW):
                        ix = ow0 - pw + cc * dw
                        y0 = oh0 * S - ph  # the input row of the tile's first position
                        tile_slide_rows(acc, xf, plane + (z * HI + y0) * WI + ix, WI, -y0, HI - y0,
                                        lane_bits(max(0, -ix), min(L, WI - ix)), wf,
                                        (a * KH * KW + cc) * wstep + w0, KW * wstep, taps, stride, tag)
            else:
                for a in range(a0, a1):
                    z = od * sd - pd + a * dd
                    for bb in range(KH):
                        for cc in range(KW):
                            wv = at(wf, ((a * KH + bb) * KW + cc) * wstep + w0)
                            ix = ow0 - pw + cc * dw  # the first row's first input pixel
                            if inside:  # a 1-D tile whose every run and tap lies inside the input row
                                y = oh0 * sh - ph + bb * dh
                                if 0 <= y < HI:
                                    off = plane + (z * HI + y) * WI + ix
                                    for r in range(R):
                                        row_fma(acc, r, wv, xf, off + r * L, tag)
                                continue
                            bits = lane_bits(max(0, -ix), min(L, WI - ix))  # its lanes inside the input
                            for r in range(R):
                                if runs:
                                    if ow0 + r * L >= OW:
                                        continue
                                    y = oh0 * sh - ph + bb * dh
                                    if r:
                                        ix = ow0 + r * L - pw + cc * dw
                                        bits = lane_bits(max(0, -ix), min(L, WI - ix))
                                else:
                                    if oh0 + r >= oh_hi:
                                        continue
                                    y = (oh0 + r) * sh - ph + bb * dh
                                if y < 0 or y >= HI or bits == 0:
                                    continue
                                off = plane + (z * HI + y) * WI + ix
                                if bits == full:
                                    row_fma(acc, r, wv, xf, off, tag)
                                else:
                                    row_fma_masked(acc, r, wv, xf, off, bits, tag)
            for r in range(R):
                oh = oh0 if runs else oh0 + r
                ow = ow0 + r * L if runs else ow0
                if oh < oh_hi and ow < OW:
                    cnt = min(L, OW - ow)
                    o = obase + oh * OW + ow
                    row_store(acc, r, dst, o, cnt, b, k * L, has_bias, tag)
                    if act:
                        activate_slice(dst[o:o + cnt], act)
