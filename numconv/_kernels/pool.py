"""Pooling kernel: windowed max / average (``pool_kernel``), also used for global
pooling (one window over every spatial position).

Canonical operands: ``x`` (N, D, H, W, C) C-contiguous, ``out`` (N, OD, OH, OW, C);
ranks 1 and 2 lead with singleton spatial axes. Padding is index arithmetic: a
window's taps are clipped to the input, so padded positions never contribute to
a max and are not counted by an average (``count_include_pad=False``, as Keras).
Under "valid" every window lies inside the input and the count is the full
window; under "same" (TensorFlow's pads, each < the pool size) every window
holds at least one input position.

Separable order. A task is one output row (n, od, oh), or a piece of one along
W when rows are few. It first folds the ``kd * kh`` input rows its windows
cover into a row buffer (the *row pass*: long contiguous runs, read once, in
order), then folds ``kw`` buffer pixels per output pixel (the *column pass*).
The op is memory-bound, so both passes prefetch in software: the row pass reads
``PREFETCH_BYTES`` ahead in every input row it streams (the hardware prefetcher
stops at each 4 KiB page; 4 KiB ahead beat 1, 2 and 8 KiB), and the column pass
fetches the next tile's output lines for writing while it computes the current
one (the read-for-ownership of fresh output lines was the second stall). On the
2-thread 8 x 112 x 112 x 64, 3 x 3 / 2 max pool these took the kernel from 1.7
to 1.2 ms (read prefetch) and on to 1.0 ms (write prefetch), medians on a
shared, noisy machine. Calls whose input and result are large
(``_paths.direct.STREAM_BYTES``) store whole tile rows around the caches instead
(``tile_stream``: no read-for-ownership, and no write prefetch): the same pool
0.88-1.14 -> 0.73-0.99 ms, alternating processes (torch channels_last 1.41-1.62).
When the stride exceeds the pool width the row pass runs
per window, skipping columns no window reads. Max and sum are associative, so
this equals the window reduction; the order of every output's reduction is
fixed by the loop nest (never by the work split), so results do not depend on
the thread count.

Register tiles. Both passes keep ``R`` x ``L`` accumulators (``R`` pixels, or
``R`` consecutive blocks of a run, by ``L`` channels) in an ``alloca`` that is
touched only through the intrinsics below, so LLVM's SROA promotes it to vector
registers (as in ``tile.py``): per tap, one masked vector load and one max or
add per tile row. The same loops written as plain Numba loops over channels
spent more in loop set-up (alias checks, remainder loops, slice objects) than
in work at typical channel counts (64 float32 channels = 4 vectors).

Channels-first pooling (``pool_cf_kernel``) pools each (n, c) plane where it
lies, vectorised along W instead of channels; at stride 2 along W each tap
deinterleaves two vector loads with one shuffle. 8 x 64 x 112 x 112, 3 x 3 / 2,
2 threads: 0.60-0.68 ms against 1.2-1.8 ms for laying the input out
channels-last, pooling and laying the result back (the channels-last layer:
0.40-0.60 ms on the same host, medians of 30; with the operands out of cache,
interleaved: cf 0.80, cl 0.86, the layout round trip 1.5). Other strides keep
the round trip.

Max propagates NaN (a window holding a NaN gives NaN, as ``np.max`` and
PyTorch) through ``llvm.maximum`` (NaN-propagating; x86: ``vmaxps``, an
unordered compare and a masked move); the first tap is loaded, not compared with
a sentinel, so +-inf are ordinary values. Average accumulates in float64 (also
for float32 data) and rounds once: ``float32(sum / count)``.
"""
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._config import SERIAL, parallel_kernel
from .tile import LINE_BYTES, PREFETCH_BYTES, _alloca_tile, _array_elem_ptr, _lane_mask, _masked_load, \
    _masked_store, _row, _splat, _stream_store, _vname, prefetch, prefetch_write, store_fence

#: ``op`` tags of ``pool_kernel``. As with the tile
#: variants in ``tile.py``, the tag's *length* selects the op, so it is part of the
#: argument type: each op compiles to its own specialisation with the other op's
#: code folded away (a runtime flag kept both ops' accumulator tiles live in one
#: loop nest, spilled to the stack: 2x slower).
MAX = (0,)
AVG = (0, 0)

#: tile rows (pixels, or blocks of a run) and lanes per row: one zmm of float32
#: (the float64 sum tile takes two per row, 16 zmm in all)
R = 8
L = 16


# ------------------------------------------------------------------ intrinsics

def _elem(nb_dtype):
    return ir.FloatType() if nb_dtype == types.float32 else ir.DoubleType()


@intrinsic
def max_tile(typingctx, like):
    """``R x L`` accumulators of ``like``'s dtype in the entry block (max pooling)."""
    dtype = like.dtype

    def codegen(context, builder, sig, args):
        elem = _elem(dtype)
        return builder.bitcast(_alloca_tile(builder, elem, R * L), elem.as_pointer())

    return types.CPointer(dtype)(like), codegen


@intrinsic
def sum_tile(typingctx, like):
    """``R x L`` float64 accumulators in the entry block (average pooling)."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(_alloca_tile(builder, ir.DoubleType(), R * L), ir.DoubleType().as_pointer())

    return types.CPointer(types.float64)(like), codegen


@intrinsic
def tile_fill(typingctx, tile, row, value):
    """``tile[row, :] = value``."""
    dtype = tile.dtype

    def codegen(context, builder, sig, args):
        elem = _elem(dtype)
        ptr, vty = _row(builder, args[0], args[1], elem, L)
        v = context.cast(builder, args[2], sig.args[2], dtype)
        builder.store(_splat(builder, v, vty), ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, value), codegen


def _convert(builder, v, vty):
    """``v`` (a float vector) as ``vty``: widened or rounded. Kernels only ever
    widen float32 to float64 or round back once; the other direction is compiled
    only in branches the op tag folds away, but must still be valid IR."""
    src, dst = v.type.element, vty.element
    if src == dst:
        return v
    return builder.fpext(v, vty) if isinstance(src, ir.FloatType) else builder.fptrunc(v, vty)


def _whole(builder, cnt):
    """Whether ``cnt`` covers every lane (the plain load or store: the masked ones,
    with their masks built from ``cnt``, took channels_first max pooling 8 x 64 x
    112 x 112, 3 x 3 / 2, 1 thread, from 0.185 to 0.23 ms in cache)."""
    return builder.icmp_signed(">=", cnt, ir.Constant(cnt.type, L))


def _load_lanes(context, builder, arrty, arr, off, cnt, vty):
    """Lanes ``arr[off : off + cnt]`` (others are 0; not read unless ``cnt`` >= L) as ``vty``."""
    xty = ir.VectorType(_elem(arrty.dtype), L)
    xptr = builder.bitcast(_array_elem_ptr(context, builder, arrty, arr, off, xty.element, 1), xty.as_pointer())
    with builder.if_else(_whole(builder, cnt)) as (whole, part):
        with whole:
            plain = builder.load(xptr, align=4 if isinstance(xty.element, ir.FloatType) else 8)
            from_whole = builder.block
        with part:
            masked = _masked_load(builder, xptr, _lane_mask(builder, cnt, L, 1), xty)
            from_part = builder.block
    v = builder.phi(xty)
    v.add_incoming(plain, from_whole)
    v.add_incoming(masked, from_part)
    return _convert(builder, v, vty)


@intrinsic
def tile_load(typingctx, tile, row, x, offset, count):
    """``tile[row, i] = x[offset + i]`` for ``i < count`` (widened to the tile's dtype;
    lanes past ``count`` are zero): a window's first tap, so no fill is needed."""
    dtype = tile.dtype

    def codegen(context, builder, sig, args):
        tptr, rowv, xarr, off, cnt = args
        ptr, vty = _row(builder, tptr, rowv, _elem(dtype), L)
        builder.store(_load_lanes(context, builder, sig.args[2], xarr, off, cnt, vty), ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, x, offset, count), codegen


@intrinsic
def tile_max(typingctx, tile, row, x, offset, count):
    """``tile[row, i] = max(tile[row, i], x[offset + i])`` for ``i < count`` (lanes past
    ``count`` are not read), NaN-propagating (``llvm.maximum``: a NaN on either
    side gives NaN)."""
    dtype = tile.dtype

    def codegen(context, builder, sig, args):
        tptr, rowv, xarr, off, cnt = args
        ptr, vty = _row(builder, tptr, rowv, _elem(dtype), L)
        a = _load_lanes(context, builder, sig.args[2], xarr, off, cnt, vty)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty]),
                                            f"llvm.maximum.{_vname(vty)}")
        # nsz: max(-0.0, +0.0) may be either zero (as np.maximum's order dependence)
        builder.store(builder.call(fn, [builder.load(ptr, align=64), a], fastmath=("nsz",)), ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, x, offset, count), codegen


@intrinsic
def tile_fold_even(typingctx, tile, row, x, offset, lo, hi, first, op):
    """``tile[row, i] = fold(tile[row, i], x[offset + 2 i])`` for ``i < L`` (with
    ``first``: the value itself), fold a NaN-propagating max (``op`` MAX, as
    ``tile_max``) or a sum in the tile's dtype (AVG, as ``tile_add``): the even
    lanes of ``x[offset : offset + 2 L]``, read as two vectors of ``lo`` and ``hi``
    live lanes (the rest not read) and deinterleaved by one shuffle. A stride-2
    window tap along a contiguous row: channels_first pooling."""
    dtype = tile.dtype
    is_max = op.count == len(MAX)

    def codegen(context, builder, sig, args):
        tptr, rowv, xarr, off, nlo, nhi, isfirst, _ = args
        ptr, vty = _row(builder, tptr, rowv, _elem(dtype), L)
        a = _load_lanes(context, builder, sig.args[2], xarr, off, nlo, vty)
        b = _load_lanes(context, builder, sig.args[2], xarr, builder.add(off, ir.Constant(off.type, L)), nhi, vty)
        even = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), L), list(range(0, 2 * L, 2))))
        old = builder.load(ptr, align=64)
        if is_max:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty]),
                                                f"llvm.maximum.{_vname(vty)}")
            folded = builder.call(fn, [old, even], fastmath=("nsz",))
        else:
            folded = builder.fadd(old, even)
        builder.store(builder.select(isfirst, even, folded), ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, x, offset, lo, hi, first, op), codegen


@intrinsic
def tile_add(typingctx, tile, row, x, offset, count):
    """``tile[row, i] += x[offset + i]`` for ``i < count``, in the tile's dtype (float64)."""
    dtype = tile.dtype

    def codegen(context, builder, sig, args):
        tptr, rowv, xarr, off, cnt = args
        ptr, vty = _row(builder, tptr, rowv, _elem(dtype), L)
        a = _load_lanes(context, builder, sig.args[2], xarr, off, cnt, vty)
        builder.store(builder.fadd(builder.load(ptr, align=64), a), ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, x, offset, count), codegen


def _tile_store_codegen(dtype, out, divisor, stream):
    """Emit ``tile_store`` (``stream`` False: a masked store of ``count`` lanes) or
    ``tile_stream`` (True: the whole row, one non-temporal store) for these types."""
    divide = not isinstance(divisor, types.NoneType)

    def emit(context, builder, tptr, rowv, oarr, off, cnt, div):
        ptr, vty = _row(builder, tptr, rowv, _elem(dtype), L)
        v = builder.load(ptr, align=64)
        if divide:
            v = builder.fdiv(v, _splat(builder, context.cast(builder, div, divisor, dtype), vty))
        oty = ir.VectorType(_elem(out.dtype), L)
        optr = builder.bitcast(_array_elem_ptr(context, builder, out, oarr, off, oty.element, 1), oty.as_pointer())
        if stream:
            _stream_store(builder, _convert(builder, v, oty), optr)
        else:
            v = _convert(builder, v, oty)
            with builder.if_else(_whole(builder, cnt)) as (whole, part):
                with whole:
                    builder.store(v, optr, align=4 if isinstance(oty.element, ir.FloatType) else 8)
                with part:
                    _masked_store(builder, v, optr, _lane_mask(builder, cnt, L, 1))
        return context.get_dummy_value()

    return emit


@intrinsic
def tile_store(typingctx, tile, row, out, offset, count, divisor):
    """``out[offset + i] = T(tile[row, i] / divisor)`` for ``i < count`` (masked store,
    one rounding to ``out``'s dtype); a ``divisor`` of None stores the tile as is."""
    emit = _tile_store_codegen(tile.dtype, out, divisor, False)
    return (types.void(tile, row, out, offset, count, divisor),
            lambda context, builder, sig, args: emit(context, builder, *args))


@intrinsic
def tile_stream(typingctx, tile, row, out, offset, divisor):
    """``tile_store`` of a whole row (``L`` lanes) with a non-temporal store
    (``tile._stream_store``); ``out`` + ``offset`` must be 64-byte aligned."""
    emit = _tile_store_codegen(tile.dtype, out, divisor, True)

    def codegen(context, builder, sig, args):
        tptr, rowv, oarr, off, div = args
        return emit(context, builder, tptr, rowv, oarr, off, None, div)

    return types.void(tile, row, out, offset, divisor), codegen


# ------------------------------------------------------------------ helpers

@njit(inline="always", **SERIAL)
def _lanes(total, e0, p):
    """Live lanes of tile row ``p`` for a run of ``total`` elements from ``e0``."""
    return max(0, min(L, total - e0 - p * L))


@njit(inline="always", **SERIAL)
def _fold_run(tm, ts, op, first, x, off, e0, total):
    """Fold ``x[off : off + R * L]`` (the part of a run from ``e0``, clipped to
    ``total``) into the tile: row ``p`` takes ``L`` consecutive elements."""
    full = e0 + R * L <= total
    for p in range(R):
        cnt = L if full else _lanes(total, e0, p)
        if len(op) == 1:
            if first:
                tile_load(tm, p, x, off + p * L, cnt)
            else:
                tile_max(tm, p, x, off + p * L, cnt)
        else:
            if first:
                tile_load(ts, p, x, off + p * L, cnt)
            else:
                tile_add(ts, p, x, off + p * L, cnt)


@njit(inline="always", **SERIAL)
def _store_run(tm, ts, op, dst, off, e0, total, divisor):
    full = e0 + R * L <= total
    for p in range(R):
        cnt = L if full else _lanes(total, e0, p)
        if len(op) == 1:
            tile_store(tm, p, dst, off + p * L, cnt, None)
        else:
            tile_store(ts, p, dst, off + p * L, cnt, divisor)


@njit(inline="always", **SERIAL)
def _row_pass(tm, ts, op, x, run0, steps, rows, bufm, bufs, dst, total, ahead, line):
    """``pool_kernel``'s row pass: fold the window's input rows into the row
    buffer. Rows (iz, iy) for ``rows`` = (z0, z1, y0, y1) each hold a run of
    ``total`` elements at ``x[run0 + iz * steps[0] + iy * steps[1]]``; their fold
    goes to ``bufm`` (max) or ``bufs`` (sum) from ``dst``. Each row read fetches
    ``ahead`` elements further on within the run (see the module docstring)."""
    z0, z1, y0, y1 = rows
    for e0 in range(0, total, R * L):
        first = True
        for iz in range(z0, z1):
            for iy in range(y0, y1):
                src = run0 + iz * steps[0] + iy * steps[1] + e0
                _fold_run(tm, ts, op, first, x, src, e0, total)
                first = False
                for q in range(0, R * L if e0 + ahead + R * L <= total else 0, line):
                    prefetch(x, src + ahead + q)
        if len(op) == 1:
            _store_run(tm, ts, op, bufm, dst + e0, e0, total, None)
        else:
            _store_run(tm, ts, op, bufs, dst + e0, e0, total, None)


# ------------------------------------------------------------------ kernels

@parallel_kernel
def pool_kernel(x, out, pool, strides, pads, op, chunk, stream):
    """``out[n, od, oh, ow, c]`` = max (``op`` MAX) or mean (``op`` AVG) of ``x`` over
    the window ``pool`` at ``(od, oh, ow) * strides - pads``, clipped to the input.

    ``pool``, ``strides`` and ``pads`` (the "before" pads) are 3-tuples. Parallel
    over (n, od, oh, piece of ``chunk`` output pixels along W) tasks, each
    writing only its own pixels. ``chunk`` only spreads short rows over threads.
    ``stream``: store whole tile rows around the caches (``tile_stream``) where
    ``out``'s rows are 64-byte aligned.
    """
    N, D, H, W, C = x.shape
    _, OD, OH, OW, _ = out.shape
    kd, kh, kw = pool
    sd, sh, sw = strides
    pd, ph, pw = pads
    xf = x.reshape(x.size)
    outf = out.reshape(out.size)
    pieces = (OW + chunk - 1) // chunk
    gaps = sw > kw  # columns between windows: one row-pass segment per window
    # the row buffer holds tap j of output pixel ow at buffer pixel (ow - ow_lo) * bstride + j
    bstride = kw if gaps else sw
    ahead = PREFETCH_BYTES // xf.itemsize
    line = LINE_BYTES // xf.itemsize
    stream = stream and outf.ctypes.data % LINE_BYTES == 0 and C * outf.itemsize % LINE_BYTES == 0
    for t in prange(N * OD * OH * pieces):
        tm = max_tile(x)
        ts = sum_tile(x)
        q = t // pieces
        ow_lo = (t - q * pieces) * chunk
        ow_hi = min(ow_lo + chunk, OW)
        n = q // (OD * OH)
        r = q - n * (OD * OH)
        od = r // OH
        oh = r - od * OH
        z0 = max(od * sd - pd, 0)
        z1 = min(od * sd - pd + kd, D)
        y0 = max(oh * sh - ph, 0)
        y1 = min(oh * sh - ph + kh, H)
        nseg = ow_hi - ow_lo if gaps else 1
        seglen = kw if gaps else (ow_hi - ow_lo - 1) * sw + kw
        nbuf = (nseg - 1) * bstride + seglen
        bufm = np.empty(nbuf * C if len(op) == 1 else 0, x.dtype)
        bufs = np.empty(nbuf * C if len(op) != 1 else 0, np.float64)
        # row pass: fold the input rows into the buffer, one contiguous run per segment
        for k in range(nseg):
            start = (ow_lo + k) * sw - pw if gaps else ow_lo * sw - pw
            a = max(start, 0)
            total = (min(start + seglen, W) - a) * C
            dst = (k * bstride + a - start) * C
            _row_pass(tm, ts, op, xf, (n * D * H * W + a) * C, (H * W * C, W * C), (z0, z1, y0, y1), bufm, bufs,
                      dst, total, ahead, line)
        # column pass: R output pixels x L channels per tile
        rows = (z1 - z0) * (y1 - y0)
        obase = ((n * OD + od) * OH + oh) * OW
        for ow0 in range(ow_lo, ow_hi, R):
            # every tap of every pixel of the tile inside the input along W: no checks
            interior = ow0 * sw - pw >= 0 and ow0 + R <= ow_hi and (ow0 + R - 1) * sw - pw + kw <= W
            b0 = (ow0 - ow_lo) * bstride * C
            if ow0 + R < ow_hi and not stream:  # the next tile's output lines, fetched for writing meanwhile
                nxt = (obase + ow0 + R) * C
                for e in range(0, min(R, ow_hi - ow0 - R) * C, line):
                    prefetch_write(outf, nxt + e)
            for c0 in range(0, C, L):
                cn = min(L, C - c0)
                if interior:
                    for p in range(R):
                        if len(op) == 1:
                            tile_load(tm, p, bufm, b0 + p * bstride * C + c0, cn)
                        else:
                            tile_load(ts, p, bufs, b0 + p * bstride * C + c0, cn)
                    for j in range(1, kw):
                        for p in range(R):
                            if len(op) == 1:
                                tile_max(tm, p, bufm, b0 + (p * bstride + j) * C + c0, cn)
                            else:
                                tile_add(ts, p, bufs, b0 + (p * bstride + j) * C + c0, cn)
                else:
                    for p in range(R):
                        if len(op) == 1:
                            tile_fill(tm, p, -np.inf)
                        else:
                            tile_fill(ts, p, 0.0)
                    for j in range(kw):
                        for p in range(R):
                            ix = (ow0 + p) * sw - pw + j
                            if ow0 + p < ow_hi and ix >= 0 and ix < W:
                                if len(op) == 1:
                                    tile_max(tm, p, bufm, b0 + (p * bstride + j) * C + c0, cn)
                                else:
                                    tile_add(ts, p, bufs, b0 + (p * bstride + j) * C + c0, cn)
                for p in range(R):
                    if ow0 + p < ow_hi:
                        o = (obase + ow0 + p) * C + c0
                        if len(op) == 1:
                            if stream and cn == L:
                                tile_stream(tm, p, outf, o, None)
                            else:
                                tile_store(tm, p, outf, o, cn, None)
                        else:
                            ix = (ow0 + p) * sw - pw
                            if stream and cn == L:
                                tile_stream(ts, p, outf, o, rows * (min(ix + kw, W) - max(ix, 0)))
                            else:
                                tile_store(ts, p, outf, o, cn, rows * (min(ix + kw, W) - max(ix, 0)))
        if stream:
            store_fence()


@parallel_kernel
def pool_cf_kernel(x, out, pool, strides, pads, op, slots):
    """Max (``op`` MAX) or average (AVG) pooling of channels-first data without
    layout changes: ``x`` (P, D, H, W) and ``out`` (P, OD, OH, OW), C-contiguous,
    P = batch x channels planes; ``pool``, ``strides`` (1 or 2 along W) and
    ``pads`` as for ``pool_kernel``, with its semantics (max propagates NaN; the
    average sums in float64, over the positions inside the input only, and
    rounds once).

    Vectorised along W (the contiguous axis): per output row, the row pass folds
    the window's input rows into a row buffer (``L``-wide vectors, clipped to the
    input; positions in the padding hold -inf or 0, which no max keeps and no sum
    counts), then the column pass folds ``kw`` taps per ``L`` output pixels: at
    stride 1 one vector load per tap, at stride 2 two loads and a deinterleaving
    shuffle (``tile_fold_even``). An average's sums go to a row of float64 and are
    divided there, each pixel by its own count. One task per (plane, output
    depth), in ``slots`` equal blocks of tasks (the caller's: eight per thread)
    whose buffers serve every row of every task. The same folds in the same
    order as ``pool_kernel``, so the results are the channels-last ones bit for
    bit.

    8 x 64 x 112 x 112, 3 x 3 / 2, max, 1 thread, min of 40, in turn with the
    previous kernel: in cache (1 image) 0.23 -> 0.17 ms with plain loads and
    stores where vectors are whole (``_whole``; the masked stores were most of
    it), a row pass without prefetches and tasks in blocks; out of cache (8
    images) 2.2 -> 1.44 (channels-last: 1.27-1.43).
    """
    P, D, H, W = x.shape
    _, OD, OH, OW = out.shape
    kd, kh, kw = pool
    sd, sh, sw = strides
    pd, ph, pw = pads
    xf = x.reshape(x.size)
    outf = out.reshape(out.size)
    nb = (OW - 1) * sw + kw  # buffer position b holds input column b - pw
    a = max(pw, 0)  # the buffer's first and last-plus-one positions inside the input
    e = min(W + pw, nb)
    is_max = len(op) == len(MAX)
    cols = np.empty(0 if is_max else OW, np.float64)  # an average's window columns inside the input, per pixel
    for ow in range(cols.size):
        cols[ow] = min(ow * sw - pw + kw, W) - max(ow * sw - pw, 0)
    tasks = P * OD
    slots = max(1, min(tasks, slots))
    per = (tasks + slots - 1) // slots
    for s in prange(slots):  # equal blocks of tasks, the buffers allocated once per block
        tm = max_tile(x)
        ts = sum_tile(x)
        bufm = np.empty(nb + 2 * L if is_max else 0, x.dtype)
        bufs = np.empty(0 if is_max else nb + 2 * L, np.float64)
        sums = np.empty(0 if is_max else OW + L, np.float64)
        if is_max:
            bufm[:a] = -np.inf
            bufm[e:] = -np.inf
        else:
            bufs[:a] = 0.0
            bufs[e:] = 0.0
        for t in range(s * per, min(tasks, (s + 1) * per)):
            _pool_plane(tm, ts, op, xf, outf, bufm, bufs, sums, cols, t, (D, H, W), (OD, OH, OW), pool, strides, pads,
                        a, e)


@njit(inline="always", **SERIAL)
def _pool_plane(tm, ts, op, xf, outf, bufm, bufs, sums, cols, t, size, out_size, pool, strides, pads, a, e):
    """Task ``t`` = (plane, output depth) of ``pool_cf_kernel``: per output row, the
    row pass (its window's input rows folded into the row buffer, one vector at a
    time: plain loads, without the software prefetch of ``_row_pass``, which
    cost here) and the column pass."""
    D, H, W = size
    OD, OH, OW = out_size
    kd, kh, kw = pool
    sd, sh, sw = strides
    pd, ph, pw = pads
    is_max = len(op) == len(MAX)
    pl = t // OD
    od = t - pl * OD
    z0 = max(od * sd - pd, 0)
    z1 = min(od * sd - pd + kd, D)
    run0 = pl * D * H * W + a - pw
    for oh in range(OH):
        y0 = max(oh * sh - ph, 0)
        y1 = min(oh * sh - ph + kh, H)
        for v0 in range(0, e - a, L):
            cnt = min(L, e - a - v0)
            first = True
            for iz in range(z0, z1):
                for iy in range(y0, y1):
                    src = run0 + (iz * H + iy) * W + v0
                    if is_max:
                        if first:
                            tile_load(tm, 0, xf, src, cnt)
                        else:
                            tile_max(tm, 0, xf, src, cnt)
                    else:
                        if first:
                            tile_load(ts, 0, xf, src, cnt)
                        else:
                            tile_add(ts, 0, xf, src, cnt)
                    first = False
            if is_max:
                tile_store(tm, 0, bufm, a + v0, cnt, None)
            else:
                tile_store(ts, 0, bufs, a + v0, cnt, None)
        obase = ((pl * OD + od) * OH + oh) * OW
        for ow0 in range(0, OW, L):
            cnt = min(L, OW - ow0)
            for j in range(kw):
                b0 = ow0 * sw + j
                if sw == 1:
                    if is_max:
                        if j == 0:
                            tile_load(tm, 0, bufm, b0, cnt)
                        else:
                            tile_max(tm, 0, bufm, b0, cnt)
                    else:
                        if j == 0:
                            tile_load(ts, 0, bufs, b0, cnt)
                        else:
                            tile_add(ts, 0, bufs, b0, cnt)
                else:
                    span = 2 * cnt - 1
                    if is_max:
                        tile_fold_even(tm, 0, bufm, b0, min(L, span), max(0, span - L), j == 0, op)
                    else:
                        tile_fold_even(ts, 0, bufs, b0, min(L, span), max(0, span - L), j == 0, op)
            if is_max:
                tile_store(tm, 0, outf, obase + ow0, cnt, None)
            else:
                tile_store(ts, 0, sums, ow0, cnt, None)
        if not is_max:  # each pixel divided by the positions its window holds
            rows = (z1 - z0) * (y1 - y0)
            for ow in range(OW):
                outf[obase + ow] = sums[ow] / (rows * cols[ow])
