"""Register tiles for the direct kernels, emitted as explicit LLVM vectors.

Why explicit vectors: the tile kernel keeps ``rows`` output pixels x ``lanes``
output channels of accumulators in registers and, per input value, does one
broadcast and one vector FMA per row against a contiguous weight row. Written as
plain Numba loops this reached the machine's ceiling only for 256-byte rows: with
32- or 16-lane float32 rows LLVM fully unrolled the lane loop and vectorised the
channel loop instead, with gathers and scatters (4 GFLOP/s instead of 190; the
failure PERF_NOTES item 5 records). The intrinsics below emit ``<lanes x T>``
loads, splats and ``llvm.fma`` directly, so the tile shape is ours, not the
vectoriser's.

The accumulators live in an ``alloca`` in the function's entry block, touched
*only* through these intrinsics: a heap tile, or mixing scalar and vector accesses
to the same alloca, made LLVM store every accumulator after every FMA (57-80
GFLOP/s); vector-only access lets SROA promote the whole tile to registers.

Shapes: ``TILE_BYTES`` (1 KiB = 16 zmm registers) of accumulators, split by the
variant as (rows x row bytes): 4 x 256 (64 float32 / 32 float64 / 32 complex64 /
16 complex128 lanes), 8 x 128 and 8 x 64 (half the registers; 16 rows spilled
their 16 input pointers), and 8 x 32 (256-bit rows, for the term kernels' float32
layers of at most 8 filters per group: ``_paths/direct.terms_variant``; rows
narrower than 64 bytes start 64 bytes apart, ``_row_stride``). A variant is selected by a tag tuple whose *length* is
the variant id, so it is part of the argument type and survives into the
outlined ``prange`` body, where literal ints do not.

Single precision: the register tile is flushed into a double-precision tile every
``FLUSH_TERMS`` reduction terms, so a long reduction is a sum of short partial
sums. Measured on positive data (the worst case) at 4608 terms: 4.0e-6 relative
error with one float32 chain, 1.3e-7 with flushes every 128 terms (torch's NCHW
path: 3.5e-7). 64 is the shortest flush length that cost little: on the wavenet
layer (128-term reductions, standard-normal data) 128 / 64 / 32 gave errors of
6.0e-7 / 3.1e-7 / 2.1e-7 (torch: 1.8e-7) for 4.5 / 4.8 / 6.3 ms; resnet 3x3 lost 2 %
at 64. Reductions of at most ``FLUSH_TERMS`` terms never flush and are stored
straight from registers. Double precision skips flushing at compile time
(``flush_terms`` is 0).
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from .._config import SERIAL

TILE_BYTES = 1024
#: bytes per cache line: the step between prefetches, and a streaming store's unit
LINE_BYTES = 64
#: variant id -> (rows, bytes per row)
VARIANTS = {1: (4, 256), 2: (8, 128), 3: (8, 64), 4: (8, 32)}
FLUSH_TERMS = 64


def variant_tag(variant):
    """The argument that selects ``variant`` in a kernel (see module docstring)."""
    return (0,) * variant


def variant_lanes(variant, dtype):
    """Output channels per tile row for ``variant`` and ``dtype``."""
    return VARIANTS[variant][1] // np.dtype(dtype).itemsize


def choose_variant(filters_per_group, dtype):
    """The narrowest-waste variant: wide rows when they are at least half used."""
    for variant in (1, 2):
        if filters_per_group > variant_lanes(variant, dtype) // 2:
            return variant
    return 3


# ------------------------------------------------------------------ typing helpers

def _np_dtype(nb_dtype):
    return np.dtype(str(nb_dtype))


def _wide(nb_dtype):
    return types.complex128 if isinstance(nb_dtype, types.Complex) else types.float64


def _shape(tag, nb_dtype):
    rows, row_bytes = VARIANTS[tag.count]
    return rows, row_bytes // _np_dtype(nb_dtype).itemsize


def tile_shape(x, tag):
    """(rows, lanes) of the tile for ``x``'s dtype and the variant ``tag``."""
    rows, row_bytes = VARIANTS[len(tag)]
    return rows, row_bytes // x.dtype.itemsize


@overload(tile_shape, inline="always")
def _tile_shape_overload(x, tag):
    shape = _shape(tag, x.dtype)
    return lambda x, tag: shape


def flush_terms(x):
    """Reduction terms between flushes: ``FLUSH_TERMS`` for float32/complex64, else 0."""
    return FLUSH_TERMS if x.dtype in (np.float32, np.complex64) else 0


@overload(flush_terms, inline="always")
def _flush_terms_overload(x):
    n = FLUSH_TERMS if _np_dtype(x.dtype) in (np.float32, np.complex64) else 0
    return lambda x: n


# ------------------------------------------------------------------ codegen helpers

def _scalar_lanes(nb_dtype, lanes):
    """(LLVM element type, element count) of a row: complex rows are interleaved re/im."""
    if isinstance(nb_dtype, types.Complex):
        return (ir.FloatType() if nb_dtype.bitwidth == 64 else ir.DoubleType()), 2 * lanes
    return (ir.FloatType() if nb_dtype.bitwidth == 32 else ir.DoubleType()), lanes


def _alloca_tile(builder, elem, count):
    ptr = cgutils.alloca_once(builder, ir.ArrayType(elem, count))
    ptr.align = 64
    return ptr


def _elem_bytes(elem):
    return 4 if isinstance(elem, ir.FloatType) else 8


def _row_stride(elem, count):
    """Elements between rows of ``count`` elements in a tile: ``count``, padded to 64
    bytes for narrower rows, so that every row starts on the 64-byte boundary its
    loads and stores declare."""
    return max(count, LINE_BYTES // _elem_bytes(elem))


def _row(builder, base, row, elem, count):
    """Pointer to row ``row`` (an i64 value) of ``count`` elements, as a vector pointer."""
    vty = ir.VectorType(elem, count)
    first = builder.bitcast(base, elem.as_pointer())
    return builder.bitcast(builder.gep(first, [builder.mul(row, ir.Constant(row.type, _row_stride(elem, count)))]),
                           vty.as_pointer()), vty


def _fma(builder, a, b, c):
    vty = a.type
    name = f"llvm.fma.v{vty.count}{'f32' if isinstance(vty.element, ir.FloatType) else 'f64'}"
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3), name)
    return builder.call(fn, [a, b, c])


def _vname(vty):
    return f"v{vty.count}{'f32' if isinstance(vty.element, ir.FloatType) else 'f64'}"


def _lane_mask(builder, count, vcount, per):
    """<vcount x i1>: lane j is live when j // per < count (per = 2 for complex),
    built from an integer bitmask (one k-register move, not vcount compares)."""
    ity = ir.IntType(vcount)
    live = builder.mul(count, ir.Constant(count.type, per))
    full = builder.icmp_signed(">=", live, ir.Constant(count.type, vcount))
    shift = builder.trunc(builder.select(full, ir.Constant(count.type, 0), live), ity) if vcount < 64 else \
        builder.select(full, ir.Constant(count.type, 0), live)
    bits = builder.sub(builder.shl(ir.Constant(ity, 1), shift), ir.Constant(ity, 1))
    bits = builder.select(full, ir.Constant(ity, (1 << vcount) - 1), bits)
    return builder.bitcast(bits, ir.VectorType(ir.IntType(1), vcount))


def _masked_load(builder, ptr, mask, vty):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
        vty, [vty.as_pointer(), ir.IntType(32), mask.type, vty]), f"llvm.masked.load.{_vname(vty)}.p0")
    return builder.call(fn, [ptr, ir.Constant(ir.IntType(32), 4), mask, ir.Constant(vty, None)])


def _masked_store(builder, value, ptr, mask):
    vty = value.type
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
        ir.VoidType(), [vty, vty.as_pointer(), ir.IntType(32), mask.type]), f"llvm.masked.store.{_vname(vty)}.p0")
    builder.call(fn, [value, ptr, ir.Constant(ir.IntType(32), 4), mask])


def _bits_mask(builder, bits, count):
    """<count x i1> from the int64 ``bits`` (bit i: lane i live; count <= 64)."""
    if count < 64:
        bits = builder.trunc(bits, ir.IntType(count))
    return builder.bitcast(bits, ir.VectorType(ir.IntType(1), count))


def _stream_store(builder, value, ptr):
    """A non-temporal store of the vector ``value`` to the 64-byte aligned ``ptr``:
    written around the caches, without reading the line first."""
    st = builder.store(value, ptr, align=64)
    st.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))


def _array_elem_ptr(context, builder, arrty, arr, offset, elem, per):
    """Pointer to element ``offset`` of a C-contiguous array, as ``elem*`` (complex
    elements count as ``per`` = 2 scalars)."""
    data = builder.bitcast(context.make_array(arrty)(context, builder, arr).data, elem.as_pointer())
    return builder.gep(data, [builder.mul(offset, ir.Constant(ir.IntType(64), per))])


def _splat(builder, value, vty):
    undef = ir.Constant(vty, ir.Undefined)
    v = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, undef, ir.Constant(ir.VectorType(ir.IntType(32), vty.count), [0] * vty.count))


def _flush_widened(builder, ptr, vty, wptr, wty, walign, first=None):
    """``*wptr += widen(*ptr)``, then ``*ptr = 0``: a tile row (``vty`` at ``ptr``)
    added into its destination (``wty`` at ``wptr``, aligned to ``walign``
    bytes; double precision, or the row's own type). ``first`` (an i1 value):
    where true, the row is stored rather than added."""
    acc = builder.load(ptr, align=64)
    if vty != wty:
        acc = builder.fpext(acc, wty)
    total = builder.fadd(builder.load(wptr, align=walign), acc)
    if first is not None:
        total = builder.select(first, acc, total)
    builder.store(total, wptr, align=walign)
    builder.store(ir.Constant(vty, None), ptr, align=64)


# ------------------------------------------------------------------ intrinsics

@intrinsic
def acc_tile(typingctx, like, tag):
    """Opaque handle (a pointer) to a ``rows x lanes`` accumulator tile of
    ``like.dtype`` in the entry block. Access it only with the ``row_*`` intrinsics."""
    dtype = like.dtype
    rows, lanes = _shape(tag, dtype)

    def codegen(context, builder, sig, args):
        elem, count = _scalar_lanes(dtype, lanes)
        return builder.bitcast(_alloca_tile(builder, elem, rows * _row_stride(elem, count)), ir.IntType(8).as_pointer())

    return types.voidptr(like, tag), codegen


@intrinsic
def wide_tile(typingctx, like, tag):
    """A ``rows x lanes`` tile in double precision (float64/complex128), viewed as a
    C array so kernels can read it with ordinary indexing."""
    wide = _wide(like.dtype)
    rows, lanes = _shape(tag, like.dtype)

    def codegen(context, builder, sig, args):
        elem, count = _scalar_lanes(wide, lanes)
        ptr = _alloca_tile(builder, elem, rows * _row_stride(elem, count))
        return builder.bitcast(ptr, context.get_data_type(wide).as_pointer())

    return types.CPointer(wide)(like, tag), codegen


@intrinsic
def row_zero(typingctx, tile, row, like, tag):
    """``tile[row, :] = 0``."""
    rows, lanes = _shape(tag, like.dtype)
    elem, count = _scalar_lanes(like.dtype, lanes)

    def codegen(context, builder, sig, args):
        ptr, vty = _row(builder, args[0], args[1], elem, count)
        builder.store(ir.Constant(vty, None), ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, like, tag), codegen


@intrinsic
def at(typingctx, arr, offset):
    """``arr``'s element at flat ``offset`` (C-contiguous ``arr``, 0 <= offset <
    arr.size): a plain load, without the negative-index wraparound Numba adds to
    ``arr[i]`` for a signed ``i`` (a shift, an and and an add per load, which in a
    tile whose rows each broadcast their own input value cost as much issue
    bandwidth as the FMAs themselves)."""
    if arr.layout != "C":
        raise TypingError(f"at() needs a C-contiguous array, got {arr}")
    dtype = arr.dtype

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.load(builder.gep(data, [args[1]]))

    return dtype(arr, offset), codegen


@intrinsic
def row_fma(typingctx, tile, row, xv, w, w_offset, tag):
    """``tile[row, :] += xv * w[w_offset : w_offset + lanes]`` (complex: full complex
    multiply, kernel not conjugated)."""
    dtype = w.dtype
    rows, lanes = _shape(tag, dtype)
    elem, count = _scalar_lanes(dtype, lanes)
    is_complex = isinstance(dtype, types.Complex)

    def codegen(context, builder, sig, args):
        tile_ptr, rowv, xval, warr, woff, _ = args
        ptr, vty = _row(builder, tile_ptr, rowv, elem, count)
        wdata = context.make_array(sig.args[3])(context, builder, warr).data
        wptr = builder.bitcast(builder.gep(wdata, [woff]), vty.as_pointer())
        wvec = builder.load(wptr, align=elem.width // 8 if hasattr(elem, "width") else 4)
        acc = builder.load(ptr, align=64)
        if not is_complex:
            acc = _fma(builder, _splat(builder, xval, vty), wvec, acc)
        else:
            # (xr + i xi)(wr + i wi): [re, im] += xr * [wr, wi] + xi * [-wi, wr]
            xr = builder.extract_value(xval, 0)
            xi = builder.extract_value(xval, 1)
            swap = builder.shuffle_vector(wvec, ir.Constant(vty, ir.Undefined), ir.Constant(
                ir.VectorType(ir.IntType(32), count), [i ^ 1 for i in range(count)]))
            neg = builder.fneg(xi)
            xi_alt = builder.insert_element(ir.Constant(vty, ir.Undefined), neg, ir.Constant(ir.IntType(32), 0))
            xi_alt = builder.insert_element(xi_alt, xi, ir.Constant(ir.IntType(32), 1))
            xi_alt = builder.shuffle_vector(xi_alt, ir.Constant(vty, ir.Undefined), ir.Constant(
                ir.VectorType(ir.IntType(32), count), [i & 1 for i in range(count)]))
            acc = _fma(builder, _splat(builder, xr, vty), wvec, acc)
            acc = _fma(builder, xi_alt, swap, acc)
        builder.store(acc, ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, xv, w, w_offset, tag), codegen


@intrinsic
def row_fma_masked(typingctx, tile, row, xv, w, w_offset, bits, tag):
    """``tile[row, :] += xv * v`` with ``v[i] = w[w_offset + i]`` where bit ``i``
    of the int64 ``bits`` is set and 0 elsewhere: the other lanes are not read (a
    masked load; their addresses may lie outside ``w``). For rows whose window
    crosses the input's edge, the lanes outside reading zero padding as a padded
    copy would (so an infinite ``xv`` makes them NaN, as 0 * Inf does there).
    Callers build ``bits`` once for all the rows that share it (``lane_bits``).
    Real dtypes, at most 64 lanes."""
    dtype = w.dtype
    rows, lanes = _shape(tag, dtype)
    elem, count = _scalar_lanes(dtype, lanes)
    if isinstance(dtype, types.Complex) or count > 64:
        raise TypingError("row_fma_masked: real dtypes and at most 64 lanes")

    def codegen(context, builder, sig, args):
        tile_ptr, rowv, xval, warr, woff, bitsv, _ = args
        ptr, vty = _row(builder, tile_ptr, rowv, elem, count)
        wdata = context.make_array(sig.args[3])(context, builder, warr).data
        wptr = builder.bitcast(builder.gep(wdata, [woff]), vty.as_pointer())
        wvec = _masked_load(builder, wptr, _bits_mask(builder, bitsv, count), vty)  # masked-off lanes read as 0
        acc = builder.load(ptr, align=64)
        builder.store(_fma(builder, _splat(builder, xval, vty), wvec, acc), ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, xv, w, w_offset, bits, tag), codegen


@njit(inline="always", **SERIAL)
def lane_bits(lo, hi):
    """The int64 with bits ``lo <= i < hi`` set (0 <= lo, hi <= 64): lanes for ``row_fma_masked``."""
    if lo >= hi:
        return 0
    top = -1 if hi >= 64 else (1 << hi) - 1
    return top & ~((1 << lo) - 1)


@intrinsic
def row_flush(typingctx, tile, wide, row, like, tag):
    """``wide[row, :] += tile[row, :]`` (widened to double precision); ``tile[row, :] = 0``."""
    rows, lanes = _shape(tag, like.dtype)
    elem, count = _scalar_lanes(like.dtype, lanes)
    welem, _ = _scalar_lanes(_wide(like.dtype), lanes)

    def codegen(context, builder, sig, args):
        ptr, vty = _row(builder, args[0], args[2], elem, count)
        wptr, wty = _row(builder, args[1], args[2], welem, count)
        _flush_widened(builder, ptr, vty, wptr, wty, 64)
        return context.get_dummy_value()

    return types.void(tile, wide, row, like, tag), codegen


@intrinsic
def row_spill(typingctx, tile, part, row, first, like, tag):
    """``part[row, :] = tile[row, :]`` when ``first``, else ``part[row, :] +=
    tile[row, :]``; then ``tile[row, :] = 0``. ``part`` is a ``wide_tile``
    (the sum widened to double precision) or a second ``acc_tile``: the running
    sum of a long reduction's partial sums, so the register tile never sums more
    than a flush length of terms. The first partial sum is stored, not added,
    so ``part`` needs no clearing per tile."""
    rows, lanes = _shape(tag, like.dtype)
    elem, count = _scalar_lanes(like.dtype, lanes)
    welem = elem if isinstance(part, types.RawPointer) else _scalar_lanes(_wide(like.dtype), lanes)[0]

    def codegen(context, builder, sig, args):
        ptr, vty = _row(builder, args[0], args[2], elem, count)
        pptr, pty = _row(builder, args[1], args[2], welem, count)
        _flush_widened(builder, ptr, vty, pptr, pty, 64, args[3])
        return context.get_dummy_value()

    return types.void(tile, part, row, first, like, tag), codegen


@intrinsic
def row_flush_into(typingctx, tile, row, dst, dst_offset, like, tag):
    """``dst[dst_offset : dst_offset + lanes] += tile[row, :]`` (``dst`` a
    C-contiguous double-precision array, the tile widened to it); ``tile[row, :] = 0``.
    For accumulators that outlive a tile (the weight gradient's per-task sums)."""
    rows, lanes = _shape(tag, like.dtype)
    elem, count = _scalar_lanes(like.dtype, lanes)
    welem, _ = _scalar_lanes(_wide(like.dtype), lanes)
    per = 2 if isinstance(like.dtype, types.Complex) else 1

    def codegen(context, builder, sig, args):
        ptr, vty = _row(builder, args[0], args[1], elem, count)
        wty = ir.VectorType(welem, count)
        wptr = builder.bitcast(_array_elem_ptr(context, builder, sig.args[2], args[2], args[3], welem, per),
                               wty.as_pointer())
        _flush_widened(builder, ptr, vty, wptr, wty, 8)
        return context.get_dummy_value()

    return types.void(tile, row, dst, dst_offset, like, tag), codegen


@intrinsic
def index_buffer(typingctx, tag):
    """An int64 array of ``rows`` entries in the entry block (per-pixel indices)."""
    rows, _ = VARIANTS[tag.count]

    def codegen(context, builder, sig, args):
        return builder.bitcast(_alloca_tile(builder, ir.IntType(64), rows), ir.IntType(64).as_pointer())

    return types.CPointer(types.int64)(tag), codegen


@intrinsic
def row_fmav(typingctx, tile, row, x, x_offset, count, w, w_offset, tag):
    """``tile[row, i] += x[x_offset + i] * w[w_offset + i]`` for ``i < lanes``, an
    elementwise product (depthwise); ``x`` lanes at ``i >= count`` are not read
    (a masked load: channel tails need no separate loop), ``w`` is read whole
    (callers pad it to whole rows). ``count`` None: every lane is read, by a plain
    load (a whole vector; 15 % faster than the masked load in the dot kernel)."""
    dtype = w.dtype
    rows, lanes = _shape(tag, dtype)
    elem, vcount = _scalar_lanes(dtype, lanes)
    is_complex = isinstance(dtype, types.Complex)
    per = 2 if is_complex else 1
    whole = isinstance(count, types.NoneType)

    def codegen(context, builder, sig, args):
        tile_ptr, rowv, xarr, xoff, cnt, warr, woff, _ = args
        ptr, vty = _row(builder, tile_ptr, rowv, elem, vcount)
        i64 = ir.IntType(64)
        xdata = builder.bitcast(context.make_array(sig.args[2])(context, builder, xarr).data, elem.as_pointer())
        wdata = builder.bitcast(context.make_array(sig.args[5])(context, builder, warr).data, elem.as_pointer())
        xptr = builder.bitcast(builder.gep(xdata, [builder.mul(xoff, ir.Constant(i64, per))]), vty.as_pointer())
        wptr = builder.bitcast(builder.gep(wdata, [builder.mul(woff, ir.Constant(i64, per))]), vty.as_pointer())
        xv = builder.load(xptr, align=4) if whole else _masked_load(builder, xptr,
                                                                   _lane_mask(builder, cnt, vcount, per), vty)
        wv = builder.load(wptr, align=4)
        acc = builder.load(ptr, align=64)
        if not is_complex:
            acc = _fma(builder, xv, wv, acc)
        else:
            # [xr, xi] * [wr, wi] per pair: [xr*wr - xi*wi, xr*wi + xi*wr]
            undef = ir.Constant(vty, ir.Undefined)
            idx = lambda f: ir.Constant(ir.VectorType(ir.IntType(32), vcount), [f(j) for j in range(vcount)])
            xre = builder.shuffle_vector(xv, undef, idx(lambda j: j & ~1))
            xim = builder.shuffle_vector(xv, undef, idx(lambda j: j | 1))
            wsw = builder.shuffle_vector(wv, undef, idx(lambda j: j ^ 1))
            sign = ir.Constant(vty, [(-1.0 if j % 2 == 0 else 1.0) for j in range(vcount)])
            acc = _fma(builder, xre, wv, acc)
            acc = _fma(builder, builder.fmul(xim, sign), wsw, acc)
        builder.store(acc, ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, x, x_offset, count, w, w_offset, tag), codegen


@intrinsic
def tile_sums(typingctx, tile, part, like, tag):
    """``part[r] += sum(tile[r, :])`` for each of the tile's rows, in double
    precision, then ``tile[:, :] = 0``: the reductions of channel-vectorised dot
    products (``dot.py``). The rows are summed together as a fixed tree: pairs of
    vectors halve their segments (each lane added to the one half a segment
    away), so after log2(rows) levels one vector holds every row's partial sums
    in row order, and the last levels halve that vector. ``part`` is a
    C-contiguous float64 array of at least ``rows`` elements. Real dtypes, a
    power-of-two number of rows no larger than the lanes."""
    rows, lanes = _shape(tag, like.dtype)
    elem, count = _scalar_lanes(like.dtype, lanes)
    if isinstance(like.dtype, types.Complex) or rows > count or rows & (rows - 1):
        raise TypingError("tile_sums: real dtypes, rows a power of two <= lanes")

    def codegen(context, builder, sig, args):
        dty = ir.VectorType(ir.DoubleType(), count)
        vecs = []
        for r in range(rows):
            ptr, vty = _row(builder, args[0], ir.Constant(ir.IntType(64), r), elem, count)
            v = builder.load(ptr, align=64)
            vecs.append(v if isinstance(elem, ir.DoubleType) else builder.fpext(v, dty))
            builder.store(ir.Constant(vty, None), ptr, align=64)
        n, segs, m = count, 1, count  # lanes per vector, rows' segments per vector, lanes per segment
        while len(vecs) > 1 or m > 1:
            h = m // 2
            if len(vecs) > 1:  # pairs of vectors -> one with twice the segments, each half as long
                pairs, sources = [(vecs[i], vecs[i + 1]) for i in range(0, len(vecs), 2)], (0, n)
            else:              # one vector: each segment halves in place (the vector too)
                pairs, sources = [(vecs[0], vecs[0])], (0,)

            def pick(off):
                idx = [v + s * m + off + i for v in sources for s in range(segs) for i in range(h)]
                return ir.Constant(ir.VectorType(ir.IntType(32), len(idx)), idx)
            vecs = [builder.fadd(builder.shuffle_vector(a, b, pick(0)), builder.shuffle_vector(a, b, pick(h)))
                    for a, b in pairs]
            n, segs, m = vecs[0].type.count, segs * len(sources), h
        pdata = builder.bitcast(context.make_array(sig.args[1])(context, builder, args[1]).data,
                                ir.VectorType(ir.DoubleType(), rows).as_pointer())
        builder.store(builder.fadd(builder.load(pdata, align=8), vecs[0]), pdata, align=8)
        return context.get_dummy_value()

    return types.void(tile, part, like, tag), codegen


@intrinsic
def row_fmav_bits(typingctx, tile, row, x, x_offset, bits, w, w_offset, tag):
    """``tile[row, i] += x[x_offset + i] * w[w_offset + i]`` for the lanes ``i``
    whose bit is set in the int64 ``bits`` (``lane_bits``; the other lanes' ``x``
    is not read, so their addresses may lie outside ``x``, and reads as 0): an
    elementwise product whose vector crosses the input's edge at either end.
    Real dtypes, at most 64 lanes; ``w`` is read whole."""
    dtype = w.dtype
    rows, lanes = _shape(tag, dtype)
    elem, vcount = _scalar_lanes(dtype, lanes)
    if isinstance(dtype, types.Complex) or vcount > 64:
        raise TypingError("row_fmav_bits: real dtypes and at most 64 lanes")

    def codegen(context, builder, sig, args):
        tile_ptr, rowv, xarr, xoff, bitsv, warr, woff, _ = args
        ptr, vty = _row(builder, tile_ptr, rowv, elem, vcount)
        xptr = builder.bitcast(_array_elem_ptr(context, builder, sig.args[2], xarr, xoff, elem, 1), vty.as_pointer())
        wptr = builder.bitcast(_array_elem_ptr(context, builder, sig.args[5], warr, woff, elem, 1), vty.as_pointer())
        xv = _masked_load(builder, xptr, _bits_mask(builder, bitsv, vcount), vty)
        acc = builder.load(ptr, align=64)
        builder.store(_fma(builder, xv, builder.load(wptr, align=4), acc), ptr, align=64)
        return context.get_dummy_value()

    return types.void(tile, row, x, x_offset, bits, w, w_offset, tag), codegen


def _slide_codegen(rows, lanes, elem, vcount, KW, S, broadcast):
    """Code for ``tile_slide`` (``broadcast`` False: weight vectors, a lane count)
    and ``tile_slide_rows`` (True: scalar weights, a lane bitmask)."""
    Q = (rows - 1) * S + KW

    def codegen(context, builder, sig, args):
        tile_ptr, xarr, xoff, xstep, lov, hiv, live, warr, woff, wstep = args[:10]
        i64 = ir.IntType(64)
        vty = ir.VectorType(elem, vcount)
        row_ptrs = [_row(builder, tile_ptr, ir.Constant(i64, p), elem, vcount)[0] for p in range(rows)]
        x0 = _array_elem_ptr(context, builder, sig.args[1], xarr, xoff, elem, 1)
        w0 = _array_elem_ptr(context, builder, sig.args[7], warr, woff, elem, 1)
        wptrs = [builder.gep(w0, [builder.mul(wstep, ir.Constant(i64, j))]) for j in range(KW)]
        if broadcast:
            wv = [_splat(builder, builder.load(ptr), vty) for ptr in wptrs]
            lane_mask = _bits_mask(builder, live, vcount)
            whole = builder.icmp_signed("==", builder.bitcast(lane_mask, ir.IntType(vcount)),
                                        ir.Constant(ir.IntType(vcount), -1))
        else:
            wv = [builder.load(builder.bitcast(ptr, vty.as_pointer()), align=4) for ptr in wptrs]
            lane_mask = _lane_mask(builder, live, vcount, 1)
            whole = builder.icmp_signed(">=", live, ir.Constant(i64, lanes))
        xptrs = [builder.bitcast(builder.gep(x0, [builder.mul(xstep, ir.Constant(i64, q))]), vty.as_pointer())
                 for q in range(Q)]
        full = builder.and_(builder.and_(builder.icmp_signed("<=", lov, ir.Constant(i64, 0)),
                                         builder.icmp_signed(">=", hiv, ir.Constant(i64, Q))), whole)
        none = ir.Constant(lane_mask.type, None)

        def accumulate(load):
            acc = [builder.load(ptr, align=64) for ptr in row_ptrs]
            for q in range(Q):
                xv = load(q)
                for j in range(KW):
                    p, r = divmod(q - j, S)
                    if r == 0 and 0 <= p < rows:
                        acc[p] = _fma(builder, xv, wv[j], acc[p])
            for ptr, v in zip(row_ptrs, acc):
                builder.store(v, ptr, align=64)

        def masked(q):
            inside = builder.and_(builder.icmp_signed("<=", lov, ir.Constant(i64, q)),
                                  builder.icmp_signed(">", hiv, ir.Constant(i64, q)))
            return _masked_load(builder, xptrs[q], builder.select(inside, lane_mask, none), vty)

        with builder.if_else(full, likely=True) as (plain, partial):
            with plain:
                accumulate(lambda q: builder.load(xptrs[q], align=4))
            with partial:
                accumulate(masked)
        return context.get_dummy_value()

    return codegen


def _slide_typing(name, x, taps, stride, tag):
    if isinstance(x.dtype, types.Complex):
        raise TypingError(f"{name} takes real data")
    rows, lanes = _shape(tag, x.dtype)
    elem, vcount = _scalar_lanes(x.dtype, lanes)
    return rows, lanes, elem, vcount, taps.count, stride.count


@intrinsic
def tile_slide(typingctx, tile, x, x_offset, x_step, lo, hi, count, w, w_offset, w_step, taps, stride, tag):
    """One input row's taps into the whole tile, each input vector loaded once:
    ``tile[p, i] += x[x_offset + q * x_step + i] * w[w_offset + j * w_step + i]``
    for every row ``p``, tap ``j < len(taps)`` and ``q = p * len(stride) + j``, for
    lanes ``i < count`` (an elementwise product: depthwise). Positions ``q``
    outside ``[lo, hi)`` read zeros (zero padding along the row: their lanes are
    masked off, so they may lie outside ``x``). The tap count and the stride are
    the lengths of the tuples ``taps`` and ``stride``, part of the type, so the
    ``(rows - 1) * stride + taps`` loads and ``rows * taps`` FMAs are straight-line
    code with the tile in registers; where every position is inside and every
    lane live, the loads are plain (a runtime branch to one of two copies).
    Real dtypes only: ``w`` is read whole (callers pad it to whole rows)."""
    shape = _slide_typing("tile_slide", x, taps, stride, tag)
    return (types.void(tile, x, x_offset, x_step, lo, hi, count, w, w_offset, w_step, taps, stride, tag),
            _slide_codegen(*shape, broadcast=False))


@intrinsic
def tile_slide_rows(typingctx, tile, x, x_offset, x_step, lo, hi, bits, w, w_offset, w_step, taps, stride, tag):
    """``tile_slide`` with one weight per tap for all lanes:
    ``tile[p, i] += x[x_offset + q * x_step + i] * w[w_offset + j * w_step]``, the
    lanes ``i`` where bit ``i`` of the int64 ``bits`` is set (``lane_bits``; the
    others read zeros). Channels-first depthwise: tile rows are output rows, so
    each input row is loaded once for the (up to ``len(taps)``) output rows that
    read it."""
    shape = _slide_typing("tile_slide_rows", x, taps, stride, tag)
    if shape[3] > 64:
        raise TypingError("tile_slide_rows: at most 64 lanes")
    return (types.void(tile, x, x_offset, x_step, lo, hi, bits, w, w_offset, w_step, taps, stride, tag),
            _slide_codegen(*shape, broadcast=True))


def _row_store_codegen(src, dst, bias, tag, stream):
    """Emit ``row_store`` (``stream`` False: masked stores of ``count`` lanes) or
    ``row_stream`` (True: non-temporal stores of the row's cache lines that hold
    live lanes) for these types."""
    dtype = dst.dtype
    rows, lanes = _shape(tag, dtype)
    elem, vcount = _scalar_lanes(dtype, lanes)
    from_acc = isinstance(src, types.RawPointer)
    welem, _ = _scalar_lanes(dtype if from_acc else _wide(dtype), lanes)
    per = 2 if isinstance(dtype, types.Complex) else 1

    def emit(context, builder, sptr, rowv, darr, doff, cnt, barr, boff, hasb):
        srow, wty = _row(builder, sptr, rowv, welem, vcount)
        vty = ir.VectorType(elem, vcount)
        mask = _lane_mask(builder, cnt, vcount, per)
        v = builder.load(srow, align=64)
        bptr = builder.bitcast(_array_elem_ptr(context, builder, bias, barr, boff, elem, per), vty.as_pointer())
        # The bias load is masked off entirely when there is no bias (callers pass
        # a 1-element dummy), keeping the epilogue one straight-line block.
        bv = _masked_load(builder, bptr, builder.select(hasb, mask, ir.Constant(mask.type, None)), vty)
        if welem != elem:
            v = builder.fptrunc(builder.fadd(v, builder.fpext(bv, wty)), vty)
        else:
            v = builder.fadd(v, bv)
        dptr = builder.bitcast(_array_elem_ptr(context, builder, dst, darr, doff, elem, per), vty.as_pointer())
        if not stream:
            _masked_store(builder, v, dptr, mask)
        elif vcount * _elem_bytes(elem) <= LINE_BYTES:
            _stream_store(builder, v, dptr)
        else:  # line by line, the lines with live lanes (a partial row's lanes fill whole lines)
            i32 = ir.IntType(32)
            line = LINE_BYTES // _elem_bytes(elem)  # scalars per line
            lty = ir.VectorType(elem, line)
            first = builder.bitcast(dptr, elem.as_pointer())
            for j in range(vcount // line):
                lanes = ir.Constant(ir.VectorType(i32, line), list(range(j * line, (j + 1) * line)))
                part = builder.shuffle_vector(v, ir.Constant(vty, ir.Undefined), lanes)
                live = builder.icmp_signed(">", builder.mul(cnt, ir.Constant(cnt.type, per)),
                                           ir.Constant(cnt.type, j * line))
                with builder.if_then(live, likely=True):
                    _stream_store(builder, part, builder.bitcast(builder.gep(first, [ir.Constant(i32, j * line)]),
                                                                 lty.as_pointer()))
        return context.get_dummy_value()

    return emit, lanes


@intrinsic
def row_store(typingctx, src, row, dst, dst_offset, count, bias, bias_offset, has_bias, tag):
    """``dst[dst_offset + i] = T(src[row, i] + bias[bias_offset + i])`` for
    ``i < count``: vector loads, one rounding to ``dst``'s dtype and masked stores,
    the vector epilogue for contiguous output rows. ``src`` is a ``wide_tile``
    (double precision) or an ``acc_tile`` (``dst``'s dtype; for reductions that
    never flush). ``bias`` is read only when ``has_bias``."""
    emit, _ = _row_store_codegen(src, dst, bias, tag, False)
    return (types.void(src, row, dst, dst_offset, count, bias, bias_offset, has_bias, tag),
            lambda context, builder, sig, args: emit(context, builder, *args[:8]))


@intrinsic
def row_stream(typingctx, src, row, dst, dst_offset, count, bias, bias_offset, has_bias, tag):
    """``row_store`` with non-temporal stores (``_stream_store``), which write
    around the caches without reading the line first (a plain store to a line not
    in cache reads it: a third of a memory-bound kernel's traffic). ``dst`` +
    ``dst_offset`` must be 64-byte aligned, and ``count`` lanes must fill whole
    64-byte lines: the row's lines with live lanes are each one streaming store.
    (A partial row stored with ``row_store`` instead, a masked store whose masked-off
    half overlaps the next pixel's line just streamed, ran the whole kernel at
    half speed: depthwise 8 x 114 x 114 x 48, 3 x 3, 3.4-3.6 ms, against 1.1-1.4
    with every line streamed and 1.7-1.9 with none.)"""
    emit, _ = _row_store_codegen(src, dst, bias, tag, True)
    return (types.void(src, row, dst, dst_offset, count, bias, bias_offset, has_bias, tag),
            lambda context, builder, sig, args: emit(context, builder, *args[:8]))


def _line_copy(src, src_offset, dst, dst_offset, streamed):
    """The signature and codegen of a 64-byte line's copy ``dst[dst_offset:]`` =
    ``src[src_offset:]`` (real floats): one vector load, unaligned, and one store,
    non-temporal (``_stream_store``) where ``streamed``, else unaligned."""
    elem = ir.FloatType() if src.dtype.bitwidth == 32 else ir.DoubleType()
    vty = ir.VectorType(elem, 64 * 8 // src.dtype.bitwidth)

    def codegen(context, builder, sig, args):
        sarr, soff, darr, doff = args
        sptr = builder.bitcast(_array_elem_ptr(context, builder, sig.args[0], sarr, soff, elem, 1), vty.as_pointer())
        dptr = builder.bitcast(_array_elem_ptr(context, builder, sig.args[2], darr, doff, elem, 1), vty.as_pointer())
        value = builder.load(sptr, align=4)
        if streamed:
            _stream_store(builder, value, dptr)
        else:
            builder.store(value, dptr, align=4)
        return context.get_dummy_value()

    return types.void(src, src_offset, dst, dst_offset), codegen


@intrinsic
def stream_line(typingctx, src, src_offset, dst, dst_offset):
    """One 64-byte line ``dst[dst_offset:]`` = ``src[src_offset:]`` (real floats),
    stored non-temporally (``_stream_store``): ``dst`` + ``dst_offset`` 64-byte
    aligned, ``src`` read unaligned."""
    return _line_copy(src, src_offset, dst, dst_offset, True)


@intrinsic
def copy_line(typingctx, src, src_offset, dst, dst_offset):
    """One 64-byte line's worth ``dst[dst_offset:]`` = ``src[src_offset:]`` (real
    floats), a vector load and store, both unaligned: a copy loop of constant
    length was left as scalar moves (LLVM could not rule out the two overlapping)."""
    return _line_copy(src, src_offset, dst, dst_offset, False)


@intrinsic
def store_fence(typingctx):
    """``sfence``: orders ``row_stream``'s non-temporal stores before every later
    store (a task's results are complete before the task ends)."""
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                            "llvm.x86.sse.sfence")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


# ------------------------------------------------------------------ software prefetch
# The hardware prefetcher stops at each 4 KiB page, and a fresh output line costs a
# read-for-ownership: the memory-bound kernels (pooling, depthwise) fetch ahead.

#: how far ahead of its reads an input row is prefetched (pooling: 4 KiB beat 1, 2 and 8 KiB)
PREFETCH_BYTES = 4096

def _prefetch_codegen(write, locality=3):
    def codegen(context, builder, sig, args):
        arr, off = args
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        dtype = sig.args[0].dtype
        per = 2 if isinstance(dtype, types.Complex) else 1
        ptr = _array_elem_ptr(context, builder, sig.args[0], arr, off, _scalar_lanes(dtype, 1)[0], per)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0")
        # (address, read 0 / write 1, locality: 3 all cache levels, 2 from L2 on; data cache)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, int(write)), ir.Constant(i32, locality),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return codegen


@intrinsic
def prefetch(typingctx, x, offset):
    """Hint the cache to fetch the line holding ``x[offset]`` for reading (never faults)."""
    return types.void(x, offset), _prefetch_codegen(False)


@intrinsic
def prefetch_l2(typingctx, x, offset):
    """``prefetch`` into the second-level cache only (``prefetcht1``): for data
    read a little later than the next few hundred loads, which would evict what
    the first-level cache still serves."""
    return types.void(x, offset), _prefetch_codegen(False, 2)


@intrinsic
def prefetch_write(typingctx, x, offset):
    """Hint the cache to fetch the line holding ``x[offset]`` for writing (never faults)."""
    return types.void(x, offset), _prefetch_codegen(True)


@intrinsic
def tile_store_transposed(typingctx, src, pixels, dst, dst_offset, lane_step, count, bias, bias_offset, has_bias,
                          tag):
    """The first ``pixels`` rows of the accumulator tile ``src`` (``dst``'s dtype;
    rows are output pixels, lanes filters) stored channels-first:
    ``dst[dst_offset + j * lane_step + p] = src[p, j] + bias[bias_offset + j]``
    for ``p < pixels``, ``j < count``. The tile is transposed in registers, so a
    kernel writes a channels_first result directly (a filter's run of pixels per
    vector store) instead of a channels-last copy that a layout pass transposes
    after it. ``bias`` is read only when ``has_bias``."""
    dtype = dst.dtype
    rows, lanes = _shape(tag, dtype)
    elem, vcount = _scalar_lanes(dtype, lanes)
    per = vcount // lanes  # scalars per element: 2 for complex (re, im)

    def codegen(context, builder, sig, args):
        sptr, npix, darr, doff, step, cnt, barr, boff, hasb, _ = args
        vty = ir.VectorType(elem, vcount)
        cty = ir.VectorType(elem, rows * per)  # one filter's pixels
        i32 = ir.IntType(32)
        lane_mask = _lane_mask(builder, cnt, vcount, per)
        bptr = builder.bitcast(_array_elem_ptr(context, builder, sig.args[6], barr, boff, elem, per),
                               vty.as_pointer())
        bv = _masked_load(builder, bptr, builder.select(hasb, lane_mask, ir.Constant(lane_mask.type, None)), vty)
        tile = [builder.fadd(builder.load(_row(builder, sptr, ir.Constant(ir.IntType(64), r), elem, vcount)[0],
                                          align=64), bv) for r in range(rows)]
        # Transpose each rows x rows block of the tile in log2(rows) stages of
        # two-source shuffles (one vpermt2ps / unpack / lane shuffle each): stage h
        # swaps the off-diagonal h x h sub-blocks of every 2h x 2h one between rows
        # i and i + h. Row i then holds, in block k, filter k * rows + i's pixels.
        def take(a, b, units):
            idx = [u * per + e for u in units for e in range(per)]
            return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, len(idx)), idx))

        h = rows // 2 if lanes >= rows else 0  # (narrower tiles: one column at a time below)
        while h:
            for i in [i for i in range(rows) if not i & h]:
                first, second = [], []
                for u in range(lanes):
                    g, o = u - u % (2 * h), u % (2 * h)
                    src = g + o if o < h else lanes + g + o - h  # b's units follow a's
                    first.append(src)
                    second.append(src + h)
                tile[i], tile[i + h] = take(tile[i], tile[i + h], first), take(tile[i], tile[i + h], second)
            h //= 2
        pix_mask = _lane_mask(builder, npix, rows * per, per)
        none = ir.Constant(pix_mask.type, None)
        base = _array_elem_ptr(context, builder, sig.args[2], darr, doff, elem, per)
        full = builder.and_(builder.icmp_signed("==", npix, ir.Constant(npix.type, rows)),
                            builder.icmp_signed("==", cnt, ir.Constant(cnt.type, lanes)))
        if lanes >= rows:  # filter k * rows + i: block k of row i
            runs = [(k * rows + i, take(tile[i], tile[i], range(k * rows, (k + 1) * rows)))
                    for i in range(rows) for k in range(lanes // rows)]
        else:  # complex128 8 x 4 tiles: filter j's pixels gathered row by row
            runs = []
            for j in range(lanes):
                col = ir.Constant(cty, ir.Undefined)
                for r in range(rows):
                    for e in range(per):
                        lane = builder.extract_element(tile[r], ir.Constant(i32, j * per + e))
                        col = builder.insert_element(col, lane, ir.Constant(i32, r * per + e))
                runs.append((j, col))
        columns = [(j, col, builder.bitcast(builder.gep(base, [builder.mul(step, ir.Constant(step.type, j * per))]),
                                            cty.as_pointer())) for j, col in runs]
        # whole tiles store plainly (masked stores of runs that cross cache lines
        # cost ~4 cycles each here); the row's last tile and partial filter blocks masked
        with builder.if_else(full) as (whole, part):
            with whole:
                for j, col, ptr in columns:
                    builder.store(col, ptr, align=4 if isinstance(elem, ir.FloatType) else 8)
            with part:
                for j, col, ptr in columns:
                    live = builder.icmp_signed(">", cnt, ir.Constant(cnt.type, j))
                    _masked_store(builder, col, ptr, builder.select(live, pix_mask, none))
        return context.get_dummy_value()

    return types.void(src, pixels, dst, dst_offset, lane_step, count, bias, bias_offset, has_bias, tag), codegen
