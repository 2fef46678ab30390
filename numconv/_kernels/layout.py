"""Layout changes between channels_first and channels_last, in parallel blocks.

numconv's kernels run channels-last; ``channels_first`` data is moved in and out
by ``swap_last_axes``. NumPy's ``ascontiguousarray(moveaxis(...))`` does the same
on one thread, element by element: 8 x 64 x 112 x 112 float32 took it 5.7-7.3 ms
each way here (ten times the max pool on that input, 0.55 ms). A scalar Numba
loop nest was no faster (4-8 ms at any block size: about 4 cycles per element
even in cache; LLVM's gathers did not help). This kernel moves whole 64-byte
rows: a block of one cache line per row is loaded as vectors, transposed in
registers by shuffles and stored as vectors, and (example, column band) tasks
spread over the threads. An axis shorter than one 64-byte row (a few channels)
moves in strips of whole rows of the narrow side, through one shuffle network
per width.

The kernel moves raw elements, viewed as unsigned integers of the same size, so
one compilation per element size (4 and 8 bytes) serves every dtype; other sizes
go through NumPy.
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .. import _memory
from .._config import SERIAL, get_num_threads, kernel_lock, parallel_kernel
from .._shares import in_shares


def _raw_data(context, builder, arrty, arr, elem):
    """The data pointer of ``arr`` (of type ``arrty``) as ``elem*``."""
    return builder.bitcast(context.make_array(arrty)(context, builder, arr).data, elem.as_pointer())


def _vec_ptr(builder, data, base, stride, i, vty):
    """``data + base + i * stride`` as a pointer to the vector type ``vty``."""
    off = builder.add(base, builder.mul(stride, ir.Constant(base.type, i)))
    return builder.bitcast(builder.gep(data, [off]), vty.as_pointer())


def shuffle_transpose(builder, rows):
    """``rows`` (n vectors of n lanes, n a power of 2) transposed in registers:
    stage ``s`` (1, 2, 4, ...) swaps the off-diagonal s x s sub-blocks of every
    2s x 2s block by one pair of two-source shuffles per row pair, so after
    log2(n) stages each element sits at its transposed place."""
    n, rows = len(rows), list(rows)
    s = 1
    while s < n:
        lo = ir.Constant(ir.VectorType(ir.IntType(32), n), [k if not k & s else n + k - s for k in range(n)])
        hi = ir.Constant(ir.VectorType(ir.IntType(32), n), [k + s if not k & s else n + k for k in range(n)])
        for i in range(n):
            if not i & s:
                a, b = rows[i], rows[i | s]
                rows[i] = builder.shuffle_vector(a, b, lo)
                rows[i | s] = builder.shuffle_vector(a, b, hi)
        s *= 2
    return rows


@intrinsic
def transpose_block(typingctx, src, src_off, src_stride, dst, dst_off, dst_stride):
    """Copy the L x L block ``src[src_off + r * src_stride + c]`` (r, c < L) to
    ``dst[dst_off + c * dst_stride + r]``, with L = 64 bytes / element size (16
    4-byte or 8 8-byte elements): L vector loads, log2(L) stages of two-source
    shuffles (stage ``s`` swaps the off-diagonal s x s sub-blocks of every 2s x 2s
    block, so after all stages each element sits at its transposed place), L
    vector stores."""
    width = src.dtype.bitwidth
    L = 512 // width

    def codegen(context, builder, sig, args):
        sarr, soff, sstr, darr, doff, dstr = args
        elem = ir.IntType(width)
        vty = ir.VectorType(elem, L)
        sdata = _raw_data(context, builder, sig.args[0], sarr, elem)
        ddata = _raw_data(context, builder, sig.args[3], darr, elem)
        rows = [builder.load(_vec_ptr(builder, sdata, soff, sstr, r, vty), align=width // 8) for r in range(L)]
        rows = shuffle_transpose(builder, rows)
        for c in range(L):
            builder.store(rows[c], _vec_ptr(builder, ddata, doff, dstr, c, vty), align=width // 8)
        return context.get_dummy_value()

    return types.void(src, src_off, src_stride, dst, dst_off, dst_stride), codegen


def _narrow_code(builder, sdata, soff, sstr, ddata, doff, dstr, A, L, elem, interleave):
    """``interleave_block``'s (or ``deinterleave_block``'s) code for one width
    ``A`` < ``L``: ``A`` vector loads, joined into one ``A * L`` vector by a tree
    of concatenating shuffles, ``A`` shuffles out of it picking each output
    vector's elements, ``A`` vector stores."""
    vty = ir.VectorType(elem, L)
    i32 = ir.IntType(32)
    whole = ir.Constant(soff.type, L)  # the contiguous side: consecutive vectors
    if interleave:  # rows a (stride sstr) -> dst[j * A + a]; output position p holds row p % A, column p // A
        dstr = whole
        source = [(p % A) * L + p // A for p in range(A * L)]
    else:  # src[j * A + a] -> rows a (stride dstr); output position p holds src element (p % L) * A + p // L
        sstr = whole
        source = [(p % L) * A + p // L for p in range(A * L)]
    vecs = [builder.load(_vec_ptr(builder, sdata, soff, sstr, m, vty), align=elem.width // 8) for m in range(A)]
    width = L
    while len(vecs) > 1:  # concatenate pairwise (an odd one out is widened with undefined lanes)
        mask = ir.Constant(ir.VectorType(i32, 2 * width), list(range(2 * width)))
        undef = ir.Constant(vecs[-1].type, ir.Undefined)
        vecs = [builder.shuffle_vector(vecs[i], vecs[i + 1] if i + 1 < len(vecs) else undef, mask)
                for i in range(0, len(vecs), 2)]
        width *= 2
    joined = vecs[0]
    undef = ir.Constant(joined.type, ir.Undefined)
    for m in range(A):
        v = builder.shuffle_vector(joined, undef, ir.Constant(ir.VectorType(i32, L), source[m * L:(m + 1) * L]))
        builder.store(v, _vec_ptr(builder, ddata, doff, dstr, m, vty), align=elem.width // 8)


def _narrow_intrinsic(interleave):
    def typer(typingctx, src, src_off, src_stride, dst, dst_off, dst_stride, small):
        width = src.dtype.bitwidth
        L = 512 // width

        def codegen(context, builder, sig, args):
            sarr, soff, sstr, darr, doff, dstr, small = args
            elem = ir.IntType(width)
            sdata = _raw_data(context, builder, sig.args[0], sarr, elem)
            ddata = _raw_data(context, builder, sig.args[3], darr, elem)
            fn = builder.function
            end = fn.append_basic_block("narrow_end")
            switch = builder.switch(small, end)  # one code block per width: the shuffles are constants
            for A in range(2, L):
                block = fn.append_basic_block(f"narrow_{A}")
                switch.add_case(ir.Constant(small.type, A), block)
                builder.position_at_end(block)
                _narrow_code(builder, sdata, soff, sstr, ddata, doff, dstr, A, L, elem, interleave)
                builder.branch(end)
            builder.position_at_end(end)
            return context.get_dummy_value()

        return types.void(src, src_off, src_stride, dst, dst_off, dst_stride, small), codegen

    return intrinsic(typer)


#: ``interleave_block(src, src_off, src_stride, dst, dst_off, dst_stride, A)``: the
#: ``A x L`` block ``src[src_off + a * src_stride + j]`` (2 <= A < L = 64 bytes /
#: element size) to the ``L x A`` block ``dst[dst_off + j * A + a]`` (contiguous;
#: ``dst_stride`` unused): a transpose whose narrow side is whole rows of ``dst``.
#: Widths outside 2 ... L - 1 do nothing.
interleave_block = _narrow_intrinsic(True)
#: ``deinterleave_block(...)``: the inverse, ``src[src_off + j * A + a]``
#: (contiguous; ``src_stride`` unused) to ``dst[dst_off + a * dst_stride + j]``.
deinterleave_block = _narrow_intrinsic(False)


@njit(inline="always", **SERIAL)
def _bands(src):
    """(rows or columns per band, bands per example) of ``transpose_kernel``'s
    tasks: bands of ``src``'s columns, or of its rows when the rows are narrower
    than one 64-byte vector (then one band of columns would be the whole example)."""
    N, A, B = src.shape
    L = 64 // src.itemsize
    band = 16 * L
    n = A if B < L <= A else B
    return band, (n + band - 1) // band


@njit(**SERIAL)
def transpose_region(sf, so, ss, df, do, ds, A, B):
    """``df[do + b * ds + a] = sf[so + a * ss + b]`` for ``a < A``, ``b < B``
    (flat arrays of one 4- or 8-byte element type; the A x B block's rows are
    ``ss`` apart in ``sf``, its transposed rows ``ds`` apart in ``df``): whole L x
    L blocks through ``transpose_block``, L = 64 bytes / element size, a ragged
    end taking one more block ending at it (overlapping the last whole one, whose
    elements are written twice with the same values); element by element where
    either side is shorter than L. (Counted loops: stepped ranges cost the 1000 x
    46 x 16 case ~15 %.)"""
    L = 64 // sf.itemsize
    if A < L or B < L:
        for b in range(B):
            for a in range(A):
                df[do + b * ds + a] = sf[so + a * ss + b]
        return
    for i in range(-(-A // L)):
        a = min(i * L, A - L)
        for j in range(-(-B // L)):
            b = min(j * L, B - L)
            transpose_block(sf, so + a * ss + b, ss, df, do + b * ds + a, ds)


@njit(inline="always", **SERIAL)
def _transpose_task(src, dst, t):
    """``transpose_kernel``'s task ``t``: example ``t // nb``, band ``t % nb``.
    A ragged end (a band's rows or columns not a multiple of L) takes one more
    block or strip ending at it, overlapping the last whole one."""
    N, A, B = src.shape
    L = 64 // src.itemsize
    band, nb = _bands(src)
    sf = src.reshape(src.size)
    df = dst.reshape(dst.size)
    n = t // nb
    o = n * A * B  # example n's first element, in both arrays
    if B < L <= A:  # narrow rows: a band of rows, L rows (L * B contiguous elements) per strip
        a0 = (t - n * nb) * band
        a1 = min(A, a0 + band)
        if B >= 2 and a1 - a0 >= L:
            for i in range(a0, a1, L):
                a = min(i, a1 - L)
                deinterleave_block(sf, o + a * B, 0, df, o + a, A, B)
        else:
            transpose_region(sf, o + a0 * B, B, df, o + a0, A, a1 - a0, B)
        return
    b0 = (t - n * nb) * band
    b1 = min(B, b0 + band)
    if 2 <= A < L <= b1 - b0:  # narrow columns: L columns (L * A contiguous elements of dst) per strip
        for j in range(b0, b1, L):
            b = min(j, b1 - L)
            interleave_block(sf, o + b, B, df, o + b * A, 0, A)
    else:  # L x L blocks; element by element in a band narrower than L (a ragged B's last) or one row
        transpose_region(sf, o + b0, B, df, o + b0 * A, A, A, b1 - b0)


def transpose_tasks_count(src):
    """Tasks of ``transpose_kernel`` for ``src`` (N, A, B): (example, column band)."""
    return src.shape[0] * _bands.py_func(src)[1]


@parallel_kernel
def transpose_kernel(src, dst):
    """``dst[n, b, a] = src[n, a, b]`` for ``src`` (N, A, B) and ``dst`` (N, B, A),
    both C-contiguous, of 4- or 8-byte unsigned integers. Tasks: (n, band of
    ``16 * L`` columns of ``src``); whole L x L blocks go through ``transpose_block``.
    Ragged edges (A or a band's width not a multiple of L) take one more block
    ending at the edge, overlapping the last whole one (its elements are written
    twice, with the same values); only edges shorter than L go element by element.
    (The stock conv1d's 1000 x 46 x 16 result: 14 of every 46 rows were ragged,
    and the element loop made its channels_first delivery 0.13 ms.)

    A side narrower than L (2 ... L - 1: few channels) takes ``interleave_block``
    / ``deinterleave_block`` on L-wide strips, and the tasks band the long side.
    (Element by element, 4 x 8 x 65536 float32, the FFT case's channels_first
    input, took 1.37 ms into channels_last and 0.75 ms back on 2 threads here;
    in strips 0.25 and 0.18 ms. Widths above ~10 float32 spill
    registers in the shuffles (12 channels: 0.55 ms), still 4-5x the element loop.)"""
    for t in prange(src.shape[0] * _bands(src)[1]):
        _transpose_task(src, dst, t)


@njit(**SERIAL)
def transpose_tasks(src, dst, t0, t1):
    """``transpose_kernel``'s tasks ``t0 ... t1 - 1`` in the calling thread (for
    ``numconv._shares.in_shares``)."""
    for t in range(t0, t1):
        _transpose_task(src, dst, t)


_RAW = {4: np.uint32, 8: np.uint64}


def swap_last_axes(a, out=None, shared=False):
    """A C-contiguous array of ``a`` (N, A, B) with its last two axes swapped: (N, B, A),
    in ``a``'s dtype; written into ``out`` when given (C-contiguous, same dtype).
    ``shared``: on Python threads (``numconv._shares``), not a Numba parallel loop
    (for the FFT paths, whose SciPy transforms Numba's spinning threads slow)."""
    if out is None:
        out = _memory.empty((a.shape[0], a.shape[2], a.shape[1]), a.dtype)
    if a.shape[1] == 1 or a.shape[2] == 1:  # the same element order: a plain copy
        out[...] = a.reshape(out.shape)
        return out
    raw = _RAW.get(a.dtype.itemsize)
    if raw is None or a.size < 4096:  # small arrays: NumPy's copy costs less than a launch
        out[...] = a.transpose(0, 2, 1)
        return out
    src = np.ascontiguousarray(a).view(raw)
    if shared:
        in_shares(transpose_tasks, transpose_tasks_count(src), get_num_threads(), src, out.view(raw),
                  us=src.nbytes / 5000)  # ~5 bytes per ns each way
        return out
    with kernel_lock():
        transpose_kernel(src, out.view(raw))
    return out


def to_channels_last(x, dtype=None, shared=False):
    """``x`` (N, C, *spatial) as a new C-contiguous (N, *spatial, C) array in
    ``dtype`` (default: ``x``'s). Never returns ``x`` itself; the result is
    ``_memory.scratch`` (numconv's callers use it as an operand, never return it)."""
    x = np.ascontiguousarray(x, dtype=dtype)  # one copy at most, converting and compacting
    N, C = x.shape[:2]
    spatial = x.shape[2:]
    S = math.prod(spatial)
    # always an intermediate (the canonical operand of a channels_first call)
    y = swap_last_axes(x.reshape(N, C, S), _memory.scratch((N, S, C), x.dtype), shared)
    return y.reshape((N,) + spatial + (C,))


def to_channels_first(y, out=None, shared=False):
    """``y`` (N, *spatial, C) as a C-contiguous (N, C, *spatial) array, written into
    ``out`` when it is C-contiguous with ``y``'s dtype (else copied into it)."""
    N, C = y.shape[0], y.shape[-1]
    spatial = y.shape[1:-1]
    src = np.ascontiguousarray(y).reshape(N, math.prod(spatial), C)
    if out is not None and out.flags.c_contiguous and out.dtype == y.dtype:
        swap_last_axes(src, out.reshape(N, C, src.shape[1]), shared)
        return out
    z = swap_last_axes(src, None, shared).reshape((N, C) + spatial)
    if out is not None:
        out[...] = z
        return out
    return z
