"""Winograd F(2x2, 3x3): 3x3 windows at stride 1 with 2.25x fewer multiply-adds.

Each 2 x 2 block of outputs (a *tile*) reads a 4 x 4 input patch ``d``. With the
Winograd / Toom-Cook matrices of Lavin & Gray (2016)

    V = B^T d B        (per input channel)
    U = G g G^T        (per filter and channel; ``transform_weights``, once per call)
    M[xi] = sum_c V[xi, c] U[xi, c, :]      for the 16 positions xi of the 4 x 4 grid
    Y = A^T M A        (the 2 x 2 outputs, per filter)

the 36 multiply-adds per output and channel pair of a direct 3x3 window become 16
per 4 outputs. The channel contraction ``M`` is the bulk of the work and runs on the
direct kernel's register tile (``tile.py``): R tiles x L filters of accumulators,
one broadcast and one vector FMA per (tile, channel). The transforms are explicit
vector code emitted by the intrinsics below (16 masked loads, the additions, 16
masked stores per vector of channels), so positions outside the input need no
padded copy: they load as zeros or through the padding mode's index map.

Work is split into tasks of ``run`` consecutive tiles of the flattened
(N, OD, tile rows, tile columns) grid; a task transforms its input patches into
``V`` (KD x 16 x run x Cg), contracts them into ``M`` (16 x run x L) per block of L
filters, and transforms ``M`` into its outputs. ``tile_run`` keeps ``V`` and ``M``
within ``SCRATCH_BYTES``, so they stay in the core's L2 (measured, 1 thread, resnet
8 x 56 x 56 x 64: 0.58 ms per image with the data cache-resident, 0.75 at batch 8,
where the transforms wait on memory; prefetching the next task's rows during the
contraction did not help).
The 16 transform outputs of a tile go to 16 rows of the scratch, one per position
xi; rows are one vector longer than ``run`` tiles. At exactly ``run * Cg``
elements apart (16 KiB on the resnet layer) all 16 stores of a tile fell into one
set of the 12-way L1 and evicted each other: the padding took the resnet layer
with dilation 2 (8 x 56 x 56 x 64, 2 threads) from 2.82 to 2.35 ms, resnet from
2.44 to 2.36 ms and the kernel gradient (1 thread) from 7.1 to 5.1 ms.
Rank 3 sums the 2-D Winograd contraction over the depth taps (the contraction runs
over (kd, c)); dilation in H/W pairs outputs ``dilation`` apart into one tile.

``channels_first`` 2-D layers run on ``winograd_cf_kernel``: its tasks are
rectangles of tiles of one image, whose input rows it first moves channels-last
into a scratch of its own (64-byte blocks transposed in registers, the padding
mode applied there), and whose outputs it transforms into another, then moves
into the user's layout the same way. The data crosses memory once each way, as
channels-last data does; the two layout passes it replaces each read and wrote
the whole array (resnet 8 x 64 x 56 x 56: ~1 ms of 5.8).

Accuracy, float32, max |error| / max |y| against float64 on 64 -> 64 channels with
He-scaled weights (a NumPy simulation of each variant, then this kernel): direct
1.9e-7, F(2x2, 3x3) 3.3e-7, torch's oneDNN 9.4e-7. Larger tiles were measured and
rejected: F(3x3, 3x3) 2.6e-6 and F(4x4, 3x3) 2.3e-6 (best interpolation points
0, +-1, 1/2, -2) to 7.0e-6 (Lavin's 0, +-1, +-2), over issue 3's bound of 2x torch.

Single precision flushes the register tile into double precision every
``flush_terms`` contraction terms, as the direct kernel does. Each output's
arithmetic is fixed by its tile alone, so results are identical for any thread
count and any task split.

The kernel gradient of the same windows (``winograd_wgrad_kernel``) is the
transposed algorithm, F(3x3, 2x2): the same input transform, a transform of each
tile's 2 x 2 output gradients, and a contraction over tiles instead of channels
(resnet 8 x 56 x 56 x 64 -> 64, 2 threads: 2.4-2.8 ms against 4.8-5.4 ms for the
direct gradient, ``_kernels/wgrad.py``; torch's autograd 4.4-4.5 ms).

The stride-2 transposed convolution of 3x3 windows (``conv_transpose``, and
``conv_backprop_input`` of a stride-2 conv: ``_adjoint``) runs on the same kernel
with another scheme, selected by the ``scheme`` tag (``SCHEMES``). Per axis,
``y[j] = sum over 2o + k = j of d[o] w[k]``: the outputs ``2m, 2m + 2`` are F(2, 2)
on the taps (w2, w0) over ``d[m - 1 ... m + 1]`` and ``2m + 1, 2m + 3`` one tap (w1)
each, so a 4 x 4 block of outputs reads a 3 x 3 patch and takes 25 products per
channel pair where the four stride phases take 36 (``TBT``, ``TG``, ``TAT``: every
coefficient is 0 or +-1, so the transforms are additions, no scaling; the kernel's
in float64, rounded once). transpose2d (8 x 28 x 28 x 64 -> 64): 2.8 ms on the
phases, 1.8 ms here.
"""
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from .. import _memory
from .._config import SERIAL, kernel_lock, parallel_kernel
from .act import activate_slice
from .layout import transpose_region
from .conv import clear_tile, flush_if_due
from .pad import source_index
from .tile import (FLUSH_TERMS, _alloca_tile, _fma, _lane_mask, _masked_load, _masked_store, _scalar_lanes, acc_tile,
                   at, flush_terms, row_flush, row_flush_into, row_fma, row_store, row_zero, tile_shape, wide_tile)

#: outputs per tile side (m), window (r), input patch side (alpha = m + r - 1)
M_OUT, R_WIN, ALPHA = 2, 3, 4
#: Lavin & Gray's F(2, 3): B^T (alpha x alpha), G (alpha x r), A^T (m x alpha)
BT = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
G = ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1))
AT = ((1, 1, 1, 0), (0, 1, -1, -1))
#: A (alpha x m), for the kernel gradient's F(3x3, 2x2) (see ``winograd_wgrad_kernel``)
A = tuple(zip(*AT))
#: The stride-2 transposed 3-tap scheme, T(4, 3/2) (``_paths/winograd.transposed_applies``):
#: per axis, outputs ``2m ... 2m + 3`` of ``y[j] = sum_{2o + k = j} d[o] w[k]`` read
#: ``d[m - 1 ... m + 1]``; the even outputs are F(2, 2) on taps (w2, w0), the odd
#: ones one tap (w1) each: 5 products per 4 outputs instead of 6, 25 per 4 x 4
#: outputs in 2-D instead of 36. Every coefficient is 0 or +-1 (additions only).
T_SIDE, T_POSITIONS, T_OUT = 3, 5, 4
TBT = ((1, -1, 0), (0, 1, 0), (0, -1, 1), (0, 1, 0), (0, 0, 1))
TG = ((0, 0, 1), (1, 0, 1), (1, 0, 0), (0, 1, 0), (0, 1, 0))
TAT = ((1, 1, 0, 0, 0), (0, 0, 0, 1, 0), (0, 1, 1, 0, 0), (0, 0, 0, 0, 1))
#: scheme tag length -> (input patch side, transform positions per side, outputs per
#: side, B^T, A^T): 1 = F(2x2, 3x3), 2 = T(4x4, 3x3 / 2). As with the tile variants
#: (``tile.py``), the tag's *length* selects the scheme, so it is part of the kernel's
#: argument type and survives into the ``prange`` body.
SCHEMES = {1: (ALPHA, ALPHA, M_OUT, BT, AT), 2: (T_SIDE, T_POSITIONS, T_OUT, TBT, TAT)}
FORWARD, TRANSPOSED = (0,), (0, 0)
#: L2 bytes a task's V and M scratch may take (of the core's 1 MiB, next to a block of U)
SCRATCH_BYTES = 512 << 10
#: bytes of channels one transform call handles (one zmm register per patch value)
VEC_BYTES = 64


def _g_apply(scheme, w0, w1, w2):
    """G @ (w0, w1, w2) for the scheme's G (4 values for F(2, 3), 5 for the transposed scheme)."""


@overload(_g_apply, inline="always")
def _g_apply_overload(scheme, w0, w1, w2):
    if scheme.count == 1:
        return lambda scheme, w0, w1, w2: (w0, 0.5 * (w0 + w1 + w2), 0.5 * (w0 - w1 + w2), w2)
    return lambda scheme, w0, w1, w2: (w2, w0 + w2, w0, w1, w1)  # TG


def _store_row(dst, o, step, u):
    """``dst[o + s * step] = u[s]`` for the 4 or 5 values of ``u``."""


@overload(_store_row, inline="always")
def _store_row_overload(dst, o, step, u):
    # unrolled per length, no branches (a loop over the tuple kept it in memory, 5x
    # slower; Numba's IR inlining of a branching version dropped stores)
    if u.count == 4:
        def store4(dst, o, step, u):
            dst[o] = u[0]
            dst[o + step] = u[1]
            dst[o + step + step] = u[2]
            dst[o + step + step + step] = u[3]
        return store4

    def store5(dst, o, step, u):
        dst[o] = u[0]
        dst[o + step] = u[1]
        dst[o + step + step] = u[2]
        dst[o + step + step + step] = u[3]
        dst[o + step + step + step + step] = u[4]
    return store5


@njit(inline="always", **SERIAL)
def _store_head(scheme, dst, o, step, c0, c1, c2):
    """Rows 0-2 of ``(G g) G^T`` from the columns ``c0, c1, c2`` of ``G g``: row p
    at ``dst[o + P * p * step]`` (P values per row), its values ``step`` apart."""
    row = np.uint64(len(c0)) * step
    _store_row(dst, o, step, _g_apply(scheme, c0[0], c1[0], c2[0]))
    _store_row(dst, o + row, step, _g_apply(scheme, c0[1], c1[1], c2[1]))
    _store_row(dst, o + row + row, step, _g_apply(scheme, c0[2], c1[2], c2[2]))


def _store_tail(scheme, dst, o, step, c0, c1, c2):
    """The rows of ``(G g) G^T`` after ``_store_head``'s (row 3, and 4 for 5 x 5)."""


@overload(_store_tail, inline="always")
def _store_tail_overload(scheme, dst, o, step, c0, c1, c2):
    if scheme.count == 1:
        def tail4(scheme, dst, o, step, c0, c1, c2):
            _store_row(dst, o + np.uint64(12) * step, step, _g_apply(scheme, c0[3], c1[3], c2[3]))
        return tail4

    def tail5(scheme, dst, o, step, c0, c1, c2):
        _store_row(dst, o + np.uint64(15) * step, step, _g_apply(scheme, c0[3], c1[3], c2[3]))
        _store_row(dst, o + np.uint64(20) * step, step, _g_apply(scheme, c0[4], c1[4], c2[4]))
    return tail5


@parallel_kernel
def _transform_weights_kernel(w5, up, scheme):
    """up[g, kb, P * p + q, kd, c, lane] = (G g G^T)[p, q] of filter g * KG + kb *
    lanes + lane, the scheme's P x 3 matrix G, in float64, rounded once, zero past
    each group's KG filters; parallel over (kd, c), each task a vector loop over a
    block's lanes (flat unsigned offsets: the per-filter block arithmetic and
    signed indices kept it scalar, 7.3 ms for 3 x 3 x 512 x 512 against 0.4 now)."""
    KD, _, _, CG, K = w5.shape
    G_, NKB, P2, _, _, L = up.shape
    KG = K // G_
    src = w5.reshape(w5.size)
    dst = up.reshape(up.size)
    zero = up.dtype.type(0)
    tap = np.uint64(CG * K)  # between (i, j) taps of w5
    tap2, tap3, tap4, tap5 = np.uint64(2 * CG * K), np.uint64(3 * CG * K), np.uint64(4 * CG * K), np.uint64(5 * CG * K)
    tap6, tap7, tap8 = np.uint64(6 * CG * K), np.uint64(7 * CG * K), np.uint64(8 * CG * K)
    xi_step = np.uint64(KD * CG * L)  # between the transformed values in up
    for ac in prange(KD * CG):
        a = ac // CG
        c = ac - a * CG
        for g in range(G_):
            for kb in range(NKB):
                i0 = np.uint64(a * 9 * CG * K + c * K + g * KG + kb * L)
                o0 = np.uint64(((g * NKB + kb) * P2 * KD + a) * CG * L + c * L)
                kn = np.uint64(min(L, KG - kb * L))
                for part in range(2):  # (two loops: 25 stores in one stayed scalar, 20x slower)
                    for lane in range(kn):
                        i = i0 + lane
                        c0 = _g_apply(scheme, np.float64(src[i]), np.float64(src[i + tap3]), np.float64(src[i + tap6]))
                        c1 = _g_apply(scheme, np.float64(src[i + tap]), np.float64(src[i + tap4]),
                                      np.float64(src[i + tap7]))
                        c2 = _g_apply(scheme, np.float64(src[i + tap2]), np.float64(src[i + tap5]),
                                      np.float64(src[i + tap8]))  # the columns of G g
                        if part == 0:
                            _store_head(scheme, dst, o0 + lane, xi_step, c0, c1, c2)
                        else:
                            _store_tail(scheme, dst, o0 + lane, xi_step, c0, c1, c2)
                for lane in range(kn, np.uint64(L)):
                    for xi in range(P2):
                        dst[o0 + lane + np.uint64(xi) * xi_step] = zero


def transform_weights(w5, groups, lanes, dtype, scheme=FORWARD):
    """(KD, 3, 3, Cg, K) -> U packed as (G, NKB, P, KD, Cg, lanes), P the scheme's
    transform positions (16 for F(2x2, 3x3), 25 for the transposed scheme): ``G g
    G^T`` computed in float64 and rounded once, each group's filters in blocks of
    ``lanes`` zero-filled past ``K // groups``; each (xi, kd, c) is one contiguous
    row. A ``_memory.scratch`` buffer: U lives for the current call."""
    KD, _, _, CG, K = w5.shape
    npos = SCHEMES[len(scheme)][1]
    up = _memory.scratch((groups, -(-(K // groups) // lanes), npos * npos, KD, CG, lanes), dtype)
    with kernel_lock():
        _transform_weights_kernel(np.ascontiguousarray(w5), up, scheme)
    return up


def tile_run(kd, cg, lanes, rows, tiles, dtype, threads, budget=SCRATCH_BYTES, scheme=FORWARD):
    """Tiles per task: ``V`` (kd x P x run x cg) and ``M`` (P x run x lanes), P the
    scheme's transform positions (16 for F(2x2, 3x3)), within ``budget`` bytes, a
    multiple of the register tile's ``rows``, and short enough for >= 4 tasks per
    thread when there are few ``tiles`` in all."""
    per_tile = SCHEMES[len(scheme)][1] ** 2 * (kd * cg + lanes) * np.dtype(dtype).itemsize
    run = max(1, budget // per_tile)
    run = min(run, max(1, -(-tiles // (4 * threads))))
    return -(-run // rows) * rows


# ------------------------------------------------------------------ transform intrinsics

def _lincomb(builder, coefs, vecs, vty):
    """sum(c * v): additions for +-1, FMAs by a constant otherwise, zeros skipped."""
    acc = None
    for c, v in zip(coefs, vecs):
        if c == 0:
            continue
        k = ir.Constant(vty, [float(c)] * vty.count)
        if acc is None:
            acc = v if c == 1 else (builder.fneg(v) if c == -1 else builder.fmul(k, v))
        elif c == 1:
            acc = builder.fadd(acc, v)
        elif c == -1:
            acc = builder.fsub(acc, v)
        else:
            acc = _fma(builder, k, v, acc)
    return acc if acc is not None else ir.Constant(vty, None)


def _sandwich(builder, mat, d, vty):
    """``mat @ d @ mat^T`` for a square grid ``d`` of vectors (``len(mat[0])`` on a
    side): rows first, then columns."""
    rows = [[_lincomb(builder, coefs, d[i], vty) for coefs in mat] for i in range(len(d))]
    return [[_lincomb(builder, coefs, [rows[i][j] for i in range(len(d))], vty) for j in range(len(mat))]
            for coefs in mat]


def _vector_type(dtype):
    elem, count = _scalar_lanes(dtype, VEC_BYTES // (dtype.bitwidth // 8))
    return elem, count, ir.VectorType(elem, count)


def _offset_ptr(builder, data, offsets, index, shift, vty):
    """(pointer to data[offsets[index] + shift] as a vector, offsets[index] >= 0); a
    negative offset gives a pointer to ``data[shift]`` and False."""
    i64 = ir.IntType(64)
    o = builder.load(builder.gep(offsets, [ir.Constant(i64, index)]))
    ok = builder.icmp_signed(">=", o, ir.Constant(i64, 0))
    p = builder.gep(data, [builder.add(builder.select(ok, o, ir.Constant(i64, 0)), shift)])
    return builder.bitcast(p, vty.as_pointer()), ok


def _grid_transform(name, side, mat, what):
    """An intrinsic ``name(src, offsets, shift, count, v, v_offset, v_stride)``: one
    vector of channels of one tile's ``mat @ d @ mat^T``, stored as
    ``v[v_offset + xi * v_stride + i]`` for the ``len(mat)**2`` positions xi and
    lanes ``i < count``, where ``d[p] = src[offsets[p] + shift + i]`` for the
    ``side x side`` grid positions p (row-major), and 0 where ``offsets[p] < 0``
    (zero padding, or outputs past the edge: no load)."""
    def impl(typingctx, src, offsets, shift, count, v, v_offset, v_stride):
        return (types.void(src, offsets, shift, count, v, v_offset, v_stride),
                _grid_codegen(side, mat, *_vector_type(src.dtype)[1:]))

    impl.__name__ = impl.__qualname__ = name
    impl.__doc__ = what
    return intrinsic(impl)


def _grid_codegen(side, mat, vl, vty):
    """``_grid_transform``'s code for one grid side and matrix (``vl`` lanes of ``vty``)."""
    def codegen(context, builder, sig, args):
        xa, oa, sh, cnt, va, vo, vs = args[:7]
        i64 = ir.IntType(64)
        mask = _lane_mask(builder, cnt, vl, 1)
        none = ir.Constant(mask.type, None)
        xdata = context.make_array(sig.args[0])(context, builder, xa).data
        offs = context.make_array(sig.args[1])(context, builder, oa).data
        d = []
        for i in range(side):
            row = []
            for j in range(side):
                ptr, ok = _offset_ptr(builder, xdata, offs, i * side + j, sh, vty)
                row.append(_masked_load(builder, ptr, builder.select(ok, mask, none), vty))
            d.append(row)
        vals = _sandwich(builder, mat, d, vty)
        vdata = context.make_array(sig.args[4])(context, builder, va).data
        for i in range(len(mat)):
            for j in range(len(mat)):
                p = builder.gep(vdata, [builder.add(vo, builder.mul(vs, ir.Constant(i64, i * len(mat) + j)))])
                _masked_store(builder, vals[i][j], builder.bitcast(p, vty.as_pointer()), mask)
        return context.get_dummy_value()

    return codegen


#: ``A g A^T`` of a 2 x 2 block of output gradients (the kernel gradient, F(3x3, 2x2))
transform_grad = _grid_transform("transform_grad", M_OUT, A, "One vector of filters of a tile's A g A^T.")


@intrinsic
def transform_patch(typingctx, src, offsets, shift, count, v, v_offset, v_stride, scheme):
    """One vector of channels of a patch's ``B^T d B`` for the scheme ``scheme``
    (``SCHEMES``; ``FORWARD``: a 4 x 4 patch, the forward pass and the kernel
    gradient), its B^T over its patch side, one position per row of ``v``."""
    side, _, _, bt, _ = SCHEMES[scheme.count]
    return (types.void(src, offsets, shift, count, v, v_offset, v_stride, scheme),
            _grid_codegen(side, bt, *_vector_type(src.dtype)[1:]))


@intrinsic
def transform_output(typingctx, mm, m_offset, m_stride, out, offsets, shift, count, bias, b_offset, has_bias, scheme):
    """One vector of filters of one tile's output transform:
    ``out[offsets[p] + shift + i] = (A^T M A)[p] + bias[b_offset + i]`` for the
    scheme's outputs p (2 x 2 for F(2x2, 3x3)) with ``offsets[p] >= 0`` and lanes
    ``i < count``, where ``M[xi] = mm[m_offset + xi * m_stride + i]``; ``bias`` is
    read only when ``has_bias``."""
    elem, vl, vty = _vector_type(out.dtype)
    _, npos, nout, _, at_ = SCHEMES[scheme.count]

    def codegen(context, builder, sig, args):
        ma, mo, ms, oa, offa, sh, cnt, ba, bo, hb, _ = args
        i64 = ir.IntType(64)
        mask = _lane_mask(builder, cnt, vl, 1)
        none = ir.Constant(mask.type, None)
        mdata = context.make_array(sig.args[0])(context, builder, ma).data
        grid = [[builder.load(builder.bitcast(builder.gep(mdata, [
            builder.add(mo, builder.mul(ms, ir.Constant(i64, i * npos + j)))]), vty.as_pointer()), align=4)
            for j in range(npos)] for i in range(npos)]
        vals = _sandwich(builder, at_, grid, vty)
        bdata = context.make_array(sig.args[7])(context, builder, ba).data
        bv = _masked_load(builder, builder.bitcast(builder.gep(bdata, [bo]), vty.as_pointer()),
                          builder.select(hb, mask, none), vty)
        odata = context.make_array(sig.args[3])(context, builder, oa).data
        offs = context.make_array(sig.args[4])(context, builder, offa).data
        for i in range(nout):
            for j in range(nout):
                ptr, ok = _offset_ptr(builder, odata, offs, i * nout + j, sh, vty)
                _masked_store(builder, builder.fadd(vals[i][j], bv), ptr, builder.select(ok, mask, none))
        return context.get_dummy_value()

    return types.void(mm, m_offset, m_stride, out, offsets, shift, count, bias, b_offset, has_bias, scheme), codegen


@intrinsic
def _index_buffer16(typingctx):
    """16 int64 in the entry block (patch or output offsets of one tile)."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(_alloca_tile(builder, ir.IntType(64), 16), ir.IntType(64).as_pointer())

    return types.CPointer(types.int64)(), codegen


# ------------------------------------------------------------------ the kernel

@njit(inline="always", **SERIAL)
def tile_grid(OH, OW, dh, dw):
    """Tile rows and columns (TY, TX) of an OH x OW output: outputs ``dilation``
    apart share a tile, so each axis has ``dilation`` interleaved rows of half as
    many tiles (``_paths/winograd.tile_count`` calls it too)."""
    return dh * ((-(-OH // dh) + 1) // 2), dw * ((-(-OW // dw) + 1) // 2)


@njit(inline="always", **SERIAL)
def _tile_origin(q, OD, TY, TX, dh, dw):
    """(n, od, first output row, first output column) of tile ``q`` of the flattened
    (N, OD, TY, TX) tile grid; outputs o and o + dilation share a tile, in blocks of
    2 * dilation."""
    tx = q % TX
    q //= TX
    ty = q % TY
    q //= TY
    return q // OD, q % OD, (ty // dh) * 2 * dh + ty % dh, (tx // dw) * 2 * dw + tx % dw


def scheme_sides(scheme):
    """(input patch side, outputs per tile side) of ``scheme`` (``SCHEMES``)."""
    side, _, nout, _, _ = SCHEMES[len(scheme)]
    return side, nout


@overload(scheme_sides, inline="always")
def _scheme_sides_overload(scheme):
    sides = scheme_sides((0,) * scheme.count)
    return lambda scheme: sides


@njit(inline="always", **SERIAL)
def block_grid(OH, OW, ph, pw):
    """Tile rows and columns (TY, TX) of the transposed scheme: blocks of 4
    outputs, the first starting at the even full index (output + pad) at or
    before output 0 (``_paths/winograd.run_transposed`` calls it too)."""
    return (OH + ph % 2 + 3) // 4, (OW + pw % 2 + 3) // 4


@njit(inline="always", **SERIAL)
def _scheme_origin(q, OD, TY, TX, dh, dw, ph, pw, scheme):
    """(n, od, first output row, first output column) of tile ``q`` of the
    scheme's flattened (N, OD, TY, TX) grid; the transposed scheme's first row or
    column is -1 (not stored) where the pad is odd."""
    if len(scheme) == 1:
        return _tile_origin(q, OD, TY, TX, dh, dw)
    tx = q % TX
    q //= TX
    ty = q % TY
    q //= TY
    return q // OD, q % OD, 4 * ty - ph % 2, 4 * tx - pw % 2


@njit(inline="always", **SERIAL)
def _patch_origin(oy0, ox0, ph, pw, scheme):
    """The first input row and column of the patch of the tile at output (oy0, ox0):
    the forward scheme's window start; the transposed scheme's ``m - 1`` for the
    tile's first full index ``2m = output + pad``."""
    if len(scheme) == 1:
        return oy0 - ph, ox0 - pw
    return (oy0 + ph) // 2 - 1, (ox0 + pw) // 2 - 1


@njit(inline="always", **SERIAL)
def _grid_offsets(offs, side, n, D, iz, y0, x0, H, W, C, dh, dw, mode, shift):
    """``offs[i * side + j]`` = the flat offset of element (n, iz, y0 + i * dh,
    x0 + j * dw, shift) of a C-contiguous (N, D, H, W, C) array, positions outside
    mapped through padding ``mode`` (``pad.source_index``); -1 where the element is
    zero padding or ``iz`` < 0 (the depth index, already mapped)."""
    for i in range(side):
        iy = source_index(y0 + i * dh, H, mode)
        for j in range(side):
            ix = source_index(x0 + j * dw, W, mode)
            offs[i * side + j] = -1 if iz < 0 or iy < 0 or ix < 0 else (((n * D + iz) * H + iy) * W + ix) * C + shift


@njit(**SERIAL)
def _contract(V, VS, ug, M, MS, tn, A2, KD, CG, F, b, tag):
    """A task's contraction for one block of L filters: ``M[xi, tile, :] = sum over
    (kd, c) of V[kd, xi, tile, c] U[xi, kd, c, :]`` for its ``tn`` tiles (rows of
    ``V`` and ``M`` ``VS`` and ``MS`` apart per position xi), on a register tile of
    R tiles x L filters (flushed into double precision every ``F`` terms when ``F``
    > 0), for the scheme's ``A2`` transform positions. Rows past ``tn`` up to the
    next multiple of R read and write the rows' spare ends. The tiles are this
    function's own: allocated in a caller and passed in, they were stored back to
    memory after every term."""
    x = V  # the operands' dtype, for the tile intrinsics
    R, L = tile_shape(x, tag)
    acc = acc_tile(x, tag)
    wide = wide_tile(x, tag)
    res = numba.carray(wide, (R, L))
    chunk = F if F else CG
    for xi in range(A2):
        for t0 in range(0, tn, R):
            clear_tile(acc, res, F, R, L, x, tag)
            cnt = 0
            for a in range(KD):
                vb = (a * A2 + xi) * VS + t0 * CG
                ub = (xi * KD + a) * CG * L
                for c0 in range(0, CG, chunk):
                    cn = min(chunk, CG - c0)
                    for c in range(c0, c0 + cn):
                        for p in range(R):
                            row_fma(acc, p, at(V, vb + p * CG + c), ug, ub + c * L, tag)
                    cnt = flush_if_due(acc, wide, cnt, cn, F, R, x, tag)
            for p in range(R):
                mo = xi * MS + (t0 + p) * L
                if F:
                    row_flush(acc, wide, p, x, tag)
                    row_store(wide, p, M, mo, L, b, 0, False, tag)
                else:
                    row_store(acc, p, M, mo, L, b, 0, False, tag)


@parallel_kernel
def winograd_kernel(x, up, b, has_bias, out, strides, dilations, pads, mode, run, threads, act, tag, scheme):
    """``out = act(conv(x, w) + b)`` for 3x3 windows at H/W stride 1 (see module
    docstring); ``up`` from ``transform_weights``. Depth: any kernel size, stride
    and dilation. Operands as in ``conv.conv_direct_kernel``.

    ``scheme`` ``TRANSPOSED`` instead computes the stride-2 transposed
    convolution of 3x3 windows, ``out[n, i, :] = sum over 2o + k = i + pads of
    x[n, o, :] @ w[k]`` per axis (H and W; dilation 1, zero padding; ``up`` from
    ``transform_weights(..., TRANSPOSED)``).

    A task is a run of ``run`` consecutive tiles of the flattened (N, OD, TY, TX)
    tile grid (runs cross tile rows, so small images still share each block of
    ``U`` among ``run`` tiles). Parallel over ``threads`` workers, each with its own
    ``V``/``M`` scratch and a contiguous range of tasks."""
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = out.shape
    G, NKB, A2, KD, CG, _ = up.shape
    KG = K // G
    sd = strides[0]
    dd, dh, dw = dilations
    pd, ph, pw = pads
    R, L = tile_shape(x, tag)
    F = flush_terms(x)
    if KD * CG <= F:
        F = 0
    VL = VEC_BYTES // x.itemsize
    S, MO = scheme_sides(scheme)  # input patch side, outputs per tile side
    if len(scheme) == 1:
        TY, TX = tile_grid(OH, OW, dh, dw)
    else:
        TY, TX = block_grid(OH, OW, ph, pw)
    ntile = N * OD * TY * TX
    ntask = (ntile + run - 1) // run
    workers = max(1, min(threads, ntask))
    per = (ntask + workers - 1) // workers
    xf = x.reshape(x.size)
    outf = out.reshape(out.size)
    uf = up.reshape(G, NKB, A2 * KD * CG * L)
    VS = run * CG + VL  # between transforms: one vector more than a run of tiles (see module docstring)
    MS = run * L + VL
    vscr = np.empty((workers, KD * A2 * VS + VL), x.dtype)
    mscr = np.empty((workers, A2 * MS + VL), x.dtype)
    for s in prange(workers):
        offs = numba.carray(_index_buffer16(), (16,))
        oo = numba.carray(_index_buffer16(), (16,))
        V = vscr[s]
        M = mscr[s]
        for t in range(s * per, min(ntask, (s + 1) * per)):
            q0 = t * run
            tn = min(run, ntile - q0)
            for g in range(G):
                # input transform: V[kd, xi, tile, c] (zeros for depth taps in zero padding)
                for ti in range(tn):
                    n, od, oy0, ox0 = _scheme_origin(q0 + ti, OD, TY, TX, dh, dw, ph, pw, scheme)
                    py0, px0 = _patch_origin(oy0, ox0, ph, pw, scheme)
                    for a in range(KD):
                        iz = source_index(od * sd - pd + a * dd, D, mode)
                        _grid_offsets(offs, S, n, D, iz, py0, px0, H, W, C, dh, dw, mode, g * CG)
                        for c0 in range(0, CG, VL):
                            transform_patch(xf, offs, c0, min(VL, CG - c0), V, a * A2 * VS + ti * CG + c0, VS, scheme)
                for kb in range(NKB):
                    k0 = kb * L
                    kn = min(L, KG - k0)
                    _contract(V, VS, uf[g, kb], M, MS, tn, A2, KD, CG, F, b, tag)
                    # output transform, bias and activation
                    kk = g * KG + k0
                    for ti in range(tn):
                        n, od, oy0, ox0 = _scheme_origin(q0 + ti, OD, TY, TX, dh, dw, ph, pw, scheme)
                        _grid_offsets(oo, MO, n, OD, od, oy0, ox0, OH, OW, K, dh, dw, 0, kk)
                        _tile_outputs(M, ti * L, MS, outf, oo, MO, kn, b, kk, has_bias, act, scheme)


@njit(**SERIAL)
def _tile_outputs(M, mo, MS, outf, oo, MO, kn, b, kk, has_bias, act, scheme):
    """One tile's outputs for ``kn`` filters from ``kk``: the output transform of
    ``M[mo + xi * MS + e]`` plus the bias into ``outf`` at the ``MO * MO`` offsets
    ``oo`` (negative: not stored), then the fused activation ``act``."""
    VL = VEC_BYTES // outf.itemsize
    for e0 in range(0, kn, VL):
        transform_output(M, mo + e0, MS, outf, oo, e0, min(VL, kn - e0), b, kk + e0, has_bias, scheme)
    if act:
        for q in range(MO * MO):
            if oo[q] >= 0:
                activate_slice(outf[oo[q]:oo[q] + kn], act)


@njit(**SERIAL)
def _stage_rows(xf, n, C, H, W, y0, x0, sy, sx, mode, xs):
    """``xs[(r * sx + j) * C + c]`` = the channels_first input ``xf`` (N, C, H, W) of
    example ``n`` at (y0 + r, x0 + j), channel c, for ``r < sy``, ``j < sx``:
    positions outside mapped through padding ``mode`` (zeros: 0). The columns
    inside the input move in transposed blocks (``layout.transpose_region``)."""
    plane = H * W
    j0 = min(sx, max(0, -x0))  # staged columns inside the input: j0 ... j1 - 1
    j1 = max(j0, min(sx, W - x0))
    zero = xs.dtype.type(0)
    for r in range(sy):
        y = source_index(y0 + r, H, mode)
        o = r * sx * C
        if y < 0:
            xs[o:o + sx * C] = zero
            continue
        base = n * C * plane + y * W
        if j1 > j0:
            transpose_region(xf, base + x0 + j0, plane, xs, o + j0 * C, C, C, j1 - j0)
        for j in range(sx):
            if j0 <= j < j1:
                continue
            i = source_index(x0 + j, W, mode)
            if i < 0:
                xs[o + j * C:o + j * C + C] = zero
            else:
                for c in range(C):
                    xs[o + j * C + c] = xf[base + c * plane + i]


@parallel_kernel
def winograd_cf_kernel(x, up, b, has_bias, out, dilations, pads, mode, bands, threads, act, tag):
    """``winograd_kernel``'s F(2x2, 3x3) on channels_first operands of rank 2, ``x``
    (N, C, H, W) into ``out`` (N, K, OH, OW), both C-contiguous: no layout passes.

    A task is a rectangle of tiles of one example, ``bands`` = (row bands, column
    bands) of them, a band being the tiles of 2 * dilation output rows (columns),
    so the task's outputs are a whole rectangle. It stages the input rectangle its
    patches read (all C channels) channels-last in a scratch of its own
    (``_stage_rows``; padding applied there), transforms, contracts and
    transforms back as ``winograd_kernel`` does into a channels-last output
    scratch, and moves that into ``out`` in transposed blocks. Each tile's
    arithmetic is ``winograd_kernel``'s, so the results are the same bits."""
    N, C, H, W = x.shape
    _, K, OH, OW = out.shape
    G, NKB, A2, KD, CG, _ = up.shape
    KG = K // G
    dh, dw = dilations
    ph, pw = pads
    R, L = tile_shape(x, tag)
    F = flush_terms(x)
    if CG <= F:
        F = 0
    VL = VEC_BYTES // x.itemsize
    TY, TX = tile_grid(OH, OW, dh, dw)
    RB, CB = TY // dh, TX // dw
    nrb, ncb = bands
    NRT, NCT = (RB + nrb - 1) // nrb, (CB + ncb - 1) // ncb
    ntask = N * NRT * NCT
    workers = max(1, min(threads, ntask))
    per = (ntask + workers - 1) // workers
    run = (nrb * dh * ncb * dw + R - 1) // R * R
    VS = run * CG + VL
    MS = run * L + VL
    XS = (nrb + 1) * 2 * dh * (ncb + 1) * 2 * dw * C
    YS = nrb * 2 * dh * ncb * 2 * dw * K
    xf = x.reshape(x.size)
    outf = out.reshape(out.size)
    uf = up.reshape(G, NKB, A2 * KD * CG * L)
    vscr = np.empty((workers, A2 * VS + VL), x.dtype)
    mscr = np.empty((workers, A2 * MS + VL), x.dtype)
    xscr = np.empty((workers, XS), x.dtype)
    yscr = np.empty((workers, YS), x.dtype)
    for s in prange(workers):
        offs = numba.carray(_index_buffer16(), (16,))
        oo = numba.carray(_index_buffer16(), (16,))
        V = vscr[s]
        M = mscr[s]
        xs = xscr[s]
        ys = yscr[s]
        for t in range(s * per, min(ntask, (s + 1) * per)):
            n = t // (NRT * NCT)
            rb0 = (t // NCT) % NRT * nrb
            cb0 = t % NCT * ncb
            rbn = min(nrb, RB - rb0)
            cbn = min(ncb, CB - cb0)
            oy_lo, ox_lo = rb0 * 2 * dh, cb0 * 2 * dw
            oyn, oxn = min(OH - oy_lo, rbn * 2 * dh), min(OW - ox_lo, cbn * 2 * dw)  # outputs of the task
            sx = (cbn + 1) * 2 * dw
            _stage_rows(xf, n, C, H, W, oy_lo - ph, ox_lo - pw, (rbn + 1) * 2 * dh, sx, mode, xs)
            tw = cbn * dw  # tiles per tile row
            tn = rbn * dh * tw
            for g in range(G):
                for ti in range(tn):
                    oy, ox = _band_tile(ti, tw, dh, dw)
                    for i in range(ALPHA):
                        for j in range(ALPHA):
                            offs[i * ALPHA + j] = ((oy + i * dh) * sx + ox + j * dw) * C + g * CG
                    for c0 in range(0, CG, VL):
                        transform_patch(xs, offs, c0, min(VL, CG - c0), V, ti * CG + c0, VS, FORWARD)
                for kb in range(NKB):
                    k0 = kb * L
                    kn = min(L, KG - k0)
                    _contract(V, VS, uf[g, kb], M, MS, tn, A2, 1, CG, F, b, tag)
                    kk = g * KG + k0
                    for ti in range(tn):
                        oy, ox = _band_tile(ti, tw, dh, dw)
                        for i in range(M_OUT):
                            for j in range(M_OUT):
                                y, z = oy + i * dh, ox + j * dw
                                oo[i * M_OUT + j] = (y * oxn + z) * K + kk if y < oyn and z < oxn else -1
                        _tile_outputs(M, ti * L, MS, ys, oo, M_OUT, kn, b, kk, has_bias, act, FORWARD)
            for r in range(oyn):
                transpose_region(ys, r * oxn * K, K, outf, (n * K * OH + oy_lo + r) * OW + ox_lo, OH * OW, oxn, K)


@njit(inline="always", **SERIAL)
def _band_tile(ti, tw, dh, dw):
    """(first output row, column) of tile ``ti`` of a rectangle of tiles ``tw`` to a
    row, relative to the rectangle's first output: outputs ``dilation`` apart
    share a tile, in blocks of 2 * dilation (as ``_tile_origin``)."""
    ty = ti // tw
    tx = ti - ty * tw
    return (ty // dh) * 2 * dh + ty % dh, (tx // dw) * 2 * dw + tx % dw


# ------------------------------------------------------------------ the kernel gradient

#: Slices the kernel gradient's reduction over tiles is cut into: set by the layer's
#: tile count alone (never by the thread count), so results do not depend on threads.
MAX_SLICES = 8
#: tiles per slice at least (fewer slices on small layers; 256 left 4 x 16 x 16 x 64
#: layers on one or two slices, 1.5x slower than with 64)
MIN_SLICE_TILES = 64


def wgrad_slices(tiles):
    """Slices of ``tiles`` 2 x 2 output tiles for ``winograd_wgrad_kernel``."""
    return max(1, min(MAX_SLICES, tiles // MIN_SLICE_TILES))


#: channels (and filters) of one task's block: its slice's sums, 16 x 64 x 64 in
#: float64 (512 KiB), are read and written once per chunk of tiles, so the block
#: is bounded and the chunks long. One block of all of a layer's channels and
#: filters had made 512 -> 512 channels 2x slower than the direct gradient (a
#: 32 MiB block of sums through memory every 8 tiles); the price is transforming
#: each tile's input once per block of filters and its gradients once per block
#: of channels.
WGRAD_BLOCK = 64


def wgrad_run(kd, cb, kb, dtype, budget=SCRATCH_BYTES):
    """Tiles per chunk of ``winograd_wgrad_kernel``: a task's input transforms (kd
    x 16 x run x cb) and gradient transforms (16 x run x kb) within ``budget``
    bytes, and for single precision at most ``FLUSH_TERMS`` (one chunk's sum is
    one float32 partial sum)."""
    per_tile = ALPHA * ALPHA * (kd * cb + kb) * np.dtype(dtype).itemsize
    run = max(1, budget // per_tile)
    return min(run, FLUSH_TERMS) if np.dtype(dtype) == np.float32 else run


@parallel_kernel
def winograd_wgrad_kernel(x, gy, part, dilations, depth, pads, block, run, tag):
    """The kernel gradient of a 3x3 window at H/W stride 1, F(3x3, 2x2): the
    contraction over tiles.

    Per spatial axis ``dw[k] = sum_o x[o - p + k * d] g[o]``; over one tile's two
    outputs ``o0, o0 + d`` this is a correlation of its 4-element input patch with
    its 2 output gradients, whose Winograd form (the transpose of the forward
    F(2, 3)) is ``dw = G^T [(B^T d) * (A g)]``. In 2-D, per (channel, filter) pair:

        dW = G^T (sum over tiles of (B^T d B) * (A g A^T)) G

    so the input patches take the forward pass's transform (``transform_patch``),
    the 2 x 2 gradients ``transform_grad``, and the sum over tiles, 16 products per
    tile where the direct gradient does 36 per output tile of 4, is 16 channel x
    filter contractions on the register tile: ``R`` input channels (rows, one
    broadcast each) x ``L`` filters (lanes). ``wgrad_finish`` applies ``G^T . G``.

    ``x`` (N, D, H, W, C) and ``gy`` (N, OD, OH, OW, K); positions outside ``x``
    are zeros (other padding modes arrive as a padded copy). ``depth`` = (stride,
    dilation) along D, any depth window (``part``'s KD). ``part`` (S, KD, 16, G,
    CGP, KGP), float64. A task is (slice, group, block of ``block`` = (CB, KB)
    channels x filters, multiples of R and L): it sums slice ``s`` of the
    flattened tile grid (``per`` tiles) into its block of ``part[s]`` in a fixed
    order (chunks of ``run`` tiles, each chunk's float32 sum flushed into
    ``part``), so results do not depend on the thread count."""
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = gy.shape
    S, KD, A2, G, CGP, KGP = part.shape
    CG = C // G
    KG = K // G
    CB, KB = block
    sd, dd = depth
    _, dh, dw = dilations
    pd, ph, pw = pads
    R, L = tile_shape(x, tag)
    VL = VEC_BYTES // x.itemsize
    TY, TX = tile_grid(OH, OW, dh, dw)
    ntile = N * OD * TY * TX
    per = (ntile + S - 1) // S
    xf = x.reshape(x.size)
    gf = gy.reshape(gy.size)
    pf = part.reshape(part.size)
    NCX = (CG + CB - 1) // CB
    NKX = (KG + KB - 1) // KB
    VS = run * CB + VL  # between transforms: one vector more than a run of tiles (see module docstring)
    US = run * KB + VL
    for task in prange(S * G * NCX * NKX):
        acc = acc_tile(x, tag)
        offs = numba.carray(_index_buffer16(), (16,))
        oo = numba.carray(_index_buffer16(), (16,))
        kx = task % NKX
        rest = task // NKX
        cx = rest % NCX
        rest //= NCX
        g = rest % G
        s = rest // G
        c_lo = cx * CB
        k_lo = kx * KB
        cn = min(CB, CG - c_lo)  # channels and filters of this block
        kn = min(KB, KG - k_lo)
        cnp = (cn + R - 1) // R * R  # rows past cn read the next tile's channels (R spare at the end)
        knp = (kn + L - 1) // L * L  # lanes past kn must be zero: cleared once here, never written
        V = np.empty(KD * A2 * VS + R, x.dtype)
        U = np.empty(A2 * US, x.dtype)
        for xi in range(A2):
            for t in range(run):
                U[xi * US + t * KB + kn:xi * US + t * KB + knp] = 0
        for a in range(KD):
            for xi in range(A2):
                for c in range(cnp):
                    o = ((((s * KD + a) * A2 + xi) * G + g) * CGP + c_lo + c) * KGP + k_lo
                    pf[o:o + knp] = 0
        for p in range(R):
            row_zero(acc, p, x, tag)
        t_lo = s * per
        t_hi = min(ntile, t_lo + per)
        for q0 in range(t_lo, t_hi, run):
            tn = min(run, t_hi - q0)
            for ti in range(tn):
                n, od, oy0, ox0 = _tile_origin(q0 + ti, OD, TY, TX, dh, dw)
                _grid_offsets(oo, M_OUT, n, OD, od, oy0, ox0, OH, OW, K, dh, dw, 0, g * KG + k_lo)
                for e0 in range(0, kn, VL):
                    transform_grad(gf, oo, e0, min(VL, kn - e0), U, ti * KB + e0, US)
                for a in range(KD):
                    iz = source_index(od * sd - pd + a * dd, D, 0)
                    _grid_offsets(offs, ALPHA, n, D, iz, oy0 - ph, ox0 - pw, H, W, C, dh, dw, 0, g * CG + c_lo)
                    for c0 in range(0, cn, VL):
                        transform_patch(xf, offs, c0, min(VL, cn - c0), V, a * A2 * VS + ti * CB + c0, VS, FORWARD)
            for a in range(KD):
                for xi in range(A2):
                    for c0 in range(0, cnp, R):
                        vb = (a * A2 + xi) * VS + c0
                        for k0 in range(0, knp, L):
                            ub = xi * US + k0
                            for t in range(tn):
                                for p in range(R):
                                    row_fma(acc, p, at(V, vb + t * CB + p), U, ub + t * KB, tag)
                            po = ((((s * KD + a) * A2 + xi) * G + g) * CGP + c_lo + c0) * KGP + k_lo + k0
                            for p in range(R):
                                row_flush_into(acc, p, pf, po + p * KGP, x, tag)


@njit(inline="always", **SERIAL)
def _gt4(m0, m1, m2, m3):
    """G^T @ (m0, m1, m2, m3) for F(2, 3)'s G."""
    return m0 + 0.5 * (m1 + m2), 0.5 * (m1 - m2), 0.5 * (m1 + m2) + m3


@parallel_kernel
def wgrad_finish(part, out):
    """``out`` (KD, 3, 3, CG, K) = ``G^T M G`` per (depth tap, channel, filter), ``M``
    the 4 x 4 grid of ``part`` (S, KD, 16, G, CGP, KGP) summed over its slices in
    order, in float64 and rounded once."""
    S, KD, A2, G_, CGP, KGP = part.shape
    _, _, _, CG, K = out.shape
    KG = K // G_
    for t in prange(KD * G_ * CG):
        a = t // (G_ * CG)
        g = (t // CG) % G_
        c = t % CG
        m = np.zeros((A2, KG))
        r = np.empty((4, 3))
        for s in range(S):
            for xi in range(A2):
                for k in range(KG):
                    m[xi, k] += part[s, a, xi, g, c, k]
        for k in range(KG):
            for i in range(4):
                r[i, 0], r[i, 1], r[i, 2] = _gt4(m[4 * i, k], m[4 * i + 1, k], m[4 * i + 2, k], m[4 * i + 3, k])
            for j in range(3):
                u0, u1, u2 = _gt4(r[0, j], r[1, j], r[2, j], r[3, j])
                out[a, 0, j, c, g * KG + k] = u0
                out[a, 1, j, c, g * KG + k] = u1
                out[a, 2, j, c, g * KG + k] = u2
