"""Fourier transforms in Numba, vectorised across lanes: the 2-D FFT path's kernels.

SciPy's pocketfft transforms a batch of channels-last images one vector of 4
float32 columns at a time (its wheels are built for SSE2). Here every transform
step works on whole 64-byte vectors (16 float32 / 8 float64 lanes) of
*independent* transforms: along W the lanes are a block of rows' channels, along
H a block of columns' channels. Each transform is a Stockham (self-sorting)
mixed-radix FFT of a size ``2^a 3^b 5^c`` over split real / imaginary buffers of
``n x V`` values (``fft_lanes``): one stage reads one buffer and writes the other
with ``bfly``, an explicit-vector butterfly (``<lanes x T>`` loads, FMAs and
stores emitted directly; written as a plain loop, LLVM left the radix-5
butterfly scalar, its 20 pointers over the vectoriser's limit on run-time alias
checks). Radices 2, 3, 4 and 5 are written out and 6 ... 16 composed of them in
registers, and ``factor`` takes the fewest stages: a block larger than the
first-level cache is read and written once per stage, and 270 = 9 x 6 x 5 (3
stages) took 0.74 ms where 2 x 3 x 3 x 3 x 5 took 0.99 (4 x 1088 columns of 270
points in blocks of 32 lanes, one thread, in turn); pocketfft took 3.8-4.4 ms on
the array (``scipy.fft.fft(axis=1)``, complex64).

The 2-D correlation of a real channels-last batch (``_paths/fft.run_lanes``)
runs as three parallel kernels, each over its own blocks:

1. ``rows_forward``: a real transform along W of every input row (``B`` rows x
   ``C`` channels as lanes): the even / odd samples as one complex sequence of
   half the length, transformed, then split into the ``FW/2 + 1`` frequencies of
   the real transform (``real_pair``), written in the column pass's blocks (each
   block's rows one run: read back one row of the whole spectrum at a time, two
   cache lines per row, the column pass's gather cost as much as its transforms).
2. ``columns``: per block of ``Bc`` frequency columns, the transform along H of
   each image's block, the channel contraction with the kernel's spectrum
   (``_contract``: ``Y[f, k] = sum_c X[f, c] W[f, c, k]`` per group, on the
   direct kernels' register tile, rows consecutive frequencies) for every image
   while the block is in cache, and the inverse transform along H, keeping only
   the output rows. The kernel spectrum is read once per batch chunk.
3. ``rows_inverse``: per block of output rows, the inverse real transform along
   W (the packing undone), the bias and the fused activation added in its
   buffer, keeping only the output columns, into the result.

Channels-first data is read and written as it lies: the row passes transpose
each row block in registers (``split_transpose``: 8 channels' rows of 16
samples to 8 frequencies' lanes, even and odd apart; ``merge_transpose`` the
reverse) instead of two layout passes around the path. On 4 x 8 x 256 x 256 ->
8, 25 x 25 those cost 2 x 0.85 ms: channels_first went 8.9 -> 6.9 ms, where
channels_last took 7.1 (in turn in one process); after the channels-last
copies below got faster, channels_first takes 1.03-1.14 times channels_last.

Both intermediate spectra and the output are written around the caches when
large (``_stream``: they are read again only after megabytes of other traffic):
4 x 256 x 256 x 8 -> 8, 25 x 25 went from 12-13 to 9-10 ms with the column
pass's and the output streamed, and with the row pass's blocked and streamed
from 9.2-10.4 to 8.5-8.8 ms (in turn in one process). Copies of 8 channels
went from masked to plain stores (``copy_lanes``) and the row passes' 8-channel
pieces from a row buffer to one streamed vector per two (``stream_halves``):
8.2 -> 6.2 ms. Where the time goes then (each kernel replaced by a no-op in
turn, 6.3 ms): ``rows_forward`` 1.4, ``columns`` 3.6 (its contraction 2.0, of
which ~0.7 reading the 18.8 MB kernel spectrum), ``rows_inverse`` 1.0.
Pieces of exactly 8 channels then went through ``copy_block`` (one
plain load and store, no loop or count tests):
``rows_forward`` 1.15-1.26 -> 0.94-1.03 ms, ``rows_inverse`` 0.95-1.11 ->
0.80-0.92 ms (each kernel on the call's arguments, in turn). Scaling (``1 /
(FH FW)``) is folded into the kernel spectrum
(``_paths/fft.lanes_kernel_spectrum``).
Compile time: 20-22 s for the three kernels in one dtype, once (``cache=True``);
both layouts, the fused activations (~2 s of it) and the 8-channel copies in
them (17.5 s before those; the channels_first call then compiled layout
kernels for another 1.3 s).
"""
import functools
import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .._config import SERIAL, parallel_kernel
from .act import activate_slice
from .layout import shuffle_transpose
from .tile import (_fma, _lane_mask, _masked_load, _masked_store, _splat, _stream_store, acc_tile, at, row_fma,
                   row_store, row_zero, store_fence, tile_shape)

#: bytes per vector: every block's lane count is a multiple of this many bytes
VECTOR_BYTES = 64
#: the butterflies' radices (``plan`` takes the fewest stages): 2, 3, 4 and 5
#: written out, the others composed of them in registers (``bfly``)
RADICES = (2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16)


def lanes_of(dtype):
    """Lanes of one vector of ``dtype``."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def fast_length(n, even=False):
    """The smallest ``m >= n`` whose only prime factors are 2, 3 and 5 (even
    when ``even``): the sizes ``fft_lanes`` transforms."""
    m = max(int(n), 2 if even else 1)
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1 and (not even or m % 2 == 0):
            return m
        m += 1


@functools.lru_cache(maxsize=None)
def factor(n):
    """``n``'s radices for ``fft_lanes``: the fewest stages (each stage reads and
    writes the whole block once), the smaller largest radix among those;
    ValueError when ``n`` has a prime factor other than 2, 3 and 5."""
    if n == 1:
        return ()
    best = None
    for r in RADICES:
        if n % r == 0:
            rest = factor(n // r) if n // r > 1 else ()
            cand = tuple(sorted((r,) + rest, reverse=True))
            if best is None or (len(cand), max(cand)) < (len(best), max(best)):
                best = cand
    if best is None:
        raise ValueError(f"transform length has a prime factor other than 2, 3 and 5: {n}")
    return best


def plan(n, dtype, sign):
    """``(radices, offsets, twiddles)`` for a length-``n`` transform of ``sign``
    (-1 forward, +1 inverse): stage ``i`` with radix ``r`` after ``L`` points
    combined reads ``(cos, sin)`` of ``sign 2 pi p s / (L r)`` (p < L, s < r)
    from ``twiddles[offsets[i] + 2 (p r + s)]``."""
    radices = list(factor(n))
    parts, offsets, L = [np.zeros(0)], [0], 1
    for r in radices:
        angle = sign * 2 * np.pi * np.arange(L)[:, None] * np.arange(r)[None, :] / (L * r)
        parts.append(np.stack([np.cos(angle), np.sin(angle)], -1).reshape(-1))
        offsets.append(offsets[-1] + 2 * L * r)
        L *= r
    return np.array(radices, np.int64), np.array(offsets, np.int64), np.concatenate(parts).astype(dtype)


def half_twiddles(FW, dtype):
    """``(cos, sin)`` of ``2 pi k / FW`` for ``k <= FW / 2``, interleaved: the
    real transform's split / merge factors."""
    angle = 2 * np.pi * np.arange(FW // 2 + 1) / FW
    return np.stack([np.cos(angle), np.sin(angle)], -1).reshape(-1).astype(dtype)


# ------------------------------------------------------------------ the butterfly

@intrinsic
def bfly(typingctx, ar, ai, in_off, in_step, br, bi, out_off, out_step, tw, tw_off, sign, rtag):
    """One vector of radix-``r`` butterflies (``r = len(rtag)``): inputs
    ``a[in_off + s in_step + lane]`` (split real / imaginary) for ``s < r``,
    times the twiddle ``tw[tw_off + 2 s] + i tw[tw_off + 2 s + 1]`` for ``s >= 1``,
    their length-``r`` DFT of sign ``sign`` (a float: -1 forward, +1 inverse) to
    ``b[out_off + u out_step + lane]``, ``u < r``. ``a`` and ``b`` must not
    overlap; offsets unaligned."""
    r = len(rtag)
    dtype = ar.dtype
    elem = ir.FloatType() if dtype.bitwidth == 32 else ir.DoubleType()
    vty = ir.VectorType(elem, VECTOR_BYTES * 8 // dtype.bitwidth)
    align = dtype.bitwidth // 8
    i64 = ir.IntType(64)

    def codegen(context, builder, sig, args):
        def data(i):
            return builder.bitcast(context.make_array(sig.args[i])(context, builder, args[i]).data, elem.as_pointer())

        pr, pi, qr, qi, pt = data(0), data(1), data(4), data(5), data(8)
        in_off_, in_step_, out_off_, out_step_, tw_off_, sign_ = args[2], args[3], args[6], args[7], args[9], args[10]

        def vptr(base, off):
            return builder.bitcast(builder.gep(base, [off]), vty.as_pointer())

        def const(x):
            return _splat(builder, ir.Constant(elem, x), vty)

        add, sub, mul = builder.fadd, builder.fsub, builder.fmul
        sgn = _splat(builder, context.cast(builder, sign_, sig.args[10], dtype), vty)
        xs = []
        for s in range(r):
            off = builder.add(in_off_, builder.mul(in_step_, ir.Constant(i64, s)))
            xr = builder.load(vptr(pr, off), align=align)
            xi = builder.load(vptr(pi, off), align=align)
            if s:
                k = builder.add(tw_off_, ir.Constant(i64, 2 * s))
                wr = _splat(builder, builder.load(builder.gep(pt, [k])), vty)
                wi = _splat(builder, builder.load(builder.gep(pt, [builder.add(k, ir.Constant(i64, 1))])), vty)
                xr, xi = _fma(builder, xr, wr, builder.fneg(mul(xi, wi))), _fma(builder, xr, wi, mul(xi, wr))
            xs.append((xr, xi))

        def cadd(a, b):
            return add(a[0], b[0]), add(a[1], b[1])

        def csub(a, b):
            return sub(a[0], b[0]), sub(a[1], b[1])

        def rot(a):  # sign * i * a
            return builder.fneg(mul(sgn, a[1])), mul(sgn, a[0])

        def scale(a, f):
            return mul(a[0], const(f)), mul(a[1], const(f))

        def dft(xs):
            """The length-len(xs) DFT of sign ``sign`` of the complex vectors ``xs``."""
            r = len(xs)
            x0 = xs[0]
            if r == 1:
                return [x0]
            if r == 2:
                return [cadd(x0, xs[1]), csub(x0, xs[1])]
            if r == 4:
                a0, a1 = cadd(x0, xs[2]), csub(x0, xs[2])
                b0, b1 = cadd(xs[1], xs[3]), rot(csub(xs[1], xs[3]))
                return [cadd(a0, b0), cadd(a1, b1), csub(a0, b0), csub(a1, b1)]
            if r == 3:
                t = cadd(xs[1], xs[2])
                m = _fma(builder, t[0], const(-0.5), x0[0]), _fma(builder, t[1], const(-0.5), x0[1])
                d = rot(scale(csub(xs[1], xs[2]), math.sqrt(3) / 2))
                return [cadd(x0, t), cadd(m, d), csub(m, d)]
            if r == 5:
                c1, c2 = math.cos(2 * math.pi / 5), math.cos(4 * math.pi / 5)
                s1, s2 = math.sin(2 * math.pi / 5), math.sin(4 * math.pi / 5)
                b1, b2 = cadd(xs[1], xs[4]), cadd(xs[2], xs[3])
                d1, d2 = csub(xs[1], xs[4]), csub(xs[2], xs[3])
                t1 = tuple(_fma(builder, b2[q], const(c2), _fma(builder, b1[q], const(c1), x0[q])) for q in range(2))
                t2 = tuple(_fma(builder, b2[q], const(c1), _fma(builder, b1[q], const(c2), x0[q])) for q in range(2))
                u1 = rot(tuple(_fma(builder, d2[q], const(s2), mul(d1[q], const(s1))) for q in range(2)))
                u2 = rot(tuple(_fma(builder, d2[q], const(-s1), mul(d1[q], const(s2))) for q in range(2)))
                return [cadd(cadd(x0, b1), b2), cadd(t1, u1), cadd(t2, u2), csub(t2, u2), csub(t1, u1)]
            # r = a b: DFT_a over s1 of x[b s1 + s2] for each s2, twiddles w_r^(u1 s2), DFT_b over s2
            a = next(f for f in (4, 3, 2, 5) if r % f == 0)
            b = r // a
            inner = [dft([xs[b * s1 + s2] for s1 in range(a)]) for s2 in range(b)]
            out = [None] * r
            for u1 in range(a):
                col = []
                for s2 in range(b):
                    v = inner[s2][u1]
                    k = (u1 * s2) % r
                    if k:
                        if 4 * k == r:
                            v = rot(v)
                        elif 2 * k == r:
                            v = (builder.fneg(v[0]), builder.fneg(v[1]))
                        elif 4 * k == 3 * r:
                            v = rot((builder.fneg(v[0]), builder.fneg(v[1])))
                        else:
                            c, sn = math.cos(2 * math.pi * k / r), math.sin(2 * math.pi * k / r)
                            ss = mul(sgn, const(sn))  # w = c + sign i sn
                            v = (_fma(builder, v[0], const(c), builder.fneg(mul(v[1], ss))),
                                 _fma(builder, v[0], ss, mul(v[1], const(c))))
                    col.append(v)
                for u2, y in enumerate(dft(col)):
                    out[u1 + a * u2] = y
            return out

        ys = dft(xs)
        for u, (yr, yi) in enumerate(ys):
            off = builder.add(out_off_, builder.mul(out_step_, ir.Constant(i64, u)))
            builder.store(yr, vptr(qr, off), align=align)
            builder.store(yi, vptr(qi, off), align=align)
        return context.get_dummy_value()

    if r not in RADICES:
        raise ValueError(f"bfly: radix {r} not in {RADICES}")
    return types.void(ar, ai, in_off, in_step, br, bi, out_off, out_step, tw, tw_off, sign, rtag), codegen


_TAGS = tuple((0,) * r for r in range(17))  # radix r's tag (bfly's radix is its length)


@njit(inline="always", **SERIAL)
def _stage(ar, ai, br, bi, n, V, L, r, tw, toff, sign):
    """Stockham stage: ``L``-point transforms of the ``n / L`` interleaved
    subsequences (in ``a``) combined ``r`` at a time into ``L r``-point ones (in ``b``)."""
    w = (n // (L * r)) * V  # values per (p, s): (n / (L r)) sequences x V lanes
    step = VECTOR_BYTES // ar.itemsize
    for p in range(L):
        t = toff + 2 * p * r
        src = p * r * w
        dst = p * w
        for j in range(0, w, step):  # (one call per radix, spelled out: a literal_unroll over the
            # radix tags, the same code, compiled the path's three kernels in 26 s instead of 17)
            if r == 16:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[16])
            elif r == 15:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[15])
            elif r == 12:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[12])
            elif r == 10:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[10])
            elif r == 9:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[9])
            elif r == 8:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[8])
            elif r == 6:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[6])
            elif r == 5:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[5])
            elif r == 4:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[4])
            elif r == 3:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[3])
            else:
                bfly(ar, ai, src + j, w, br, bi, dst + j, L * w, tw, t, sign, _TAGS[2])


@njit(**SERIAL)
def fft_lanes(ar, ai, br, bi, n, V, radices, offsets, tw, sign):
    """Length-``n`` DFTs of sign ``sign`` along the rows of the ``n x V`` split
    buffers ``a`` (V a multiple of the vector lanes), ``b`` their scratch (same
    size); returns 0 when the results are in ``a``, 1 when in ``b`` (the stage
    count's parity)."""
    L = 1
    where = 0
    for i in range(radices.size):
        r = radices[i]
        if where == 0:
            _stage(ar, ai, br, bi, n, V, L, r, tw, offsets[i], sign)
        else:
            _stage(br, bi, ar, ai, n, V, L, r, tw, offsets[i], sign)
        where ^= 1
        L *= r
    return where


# ------------------------------------------------------------------ lane moves

def _vector_parts(dtype):
    elem = ir.FloatType() if dtype.bitwidth == 32 else ir.DoubleType()
    return elem, ir.VectorType(elem, VECTOR_BYTES * 8 // dtype.bitwidth), dtype.bitwidth // 8


def _ptr(context, builder, arrty, arr, off, elem, vty):
    data = builder.bitcast(context.make_array(arrty)(context, builder, arr).data, elem.as_pointer())
    return builder.bitcast(builder.gep(data, [off]), vty.as_pointer())


@intrinsic
def copy_lanes(typingctx, dst, dst_off, src, src_off, count):
    """``dst[dst_off + i] = src[src_off + i]`` for ``i < count`` (at most one
    vector's lanes), nothing read or written past ``count``: a plain load and
    store of a whole, half or quarter vector when ``count`` is one of those, a
    masked one otherwise. (Masked, the row passes' copies of 8 channels cost
    0.4 ms of 2.2 in ``rows_forward`` and as much in ``rows_inverse``, fft2d
    case: on Zen 4 a masked store is slow, and a later load cannot forward from it.)"""
    elem, vty, _ = _vector_parts(dst.dtype)

    def codegen(context, builder, sig, args):
        src_p = _ptr(context, builder, sig.args[2], args[2], args[3], elem, vty)
        dst_p = _ptr(context, builder, sig.args[0], args[0], args[1], elem, vty)
        count = args[4]

        def plain(width, otherwise):
            pty = ir.VectorType(elem, width).as_pointer()
            with builder.if_else(builder.icmp_signed("==", count, ir.Constant(count.type, width))) as (yes, no):
                with yes:
                    builder.store(builder.load(builder.bitcast(src_p, pty), align=1), builder.bitcast(dst_p, pty),
                                  align=1)
                with no:
                    otherwise()

        def masked():
            mask = _lane_mask(builder, count, vty.count, 1)
            _masked_store(builder, _masked_load(builder, src_p, mask, vty), dst_p, mask)

        plain(vty.count, lambda: plain(vty.count // 2, lambda: plain(vty.count // 4, masked)))
        return context.get_dummy_value()

    return types.void(dst, dst_off, src, src_off, count), codegen


@intrinsic
def fill_lanes(typingctx, dst, dst_off, count):
    """``dst[dst_off + i] = 0`` for ``i < count`` (at most one vector's lanes)."""
    elem, vty, _ = _vector_parts(dst.dtype)

    def codegen(context, builder, sig, args):
        mask = _lane_mask(builder, args[2], vty.count, 1)
        _masked_store(builder, ir.Constant(vty, None), _ptr(context, builder, sig.args[0], args[0], args[1], elem, vty),
                      mask)
        return context.get_dummy_value()

    return types.void(dst, dst_off, count), codegen


@intrinsic
def real_pair(typingctx, zr, zi, o1, o2, dr, di, od, cs, sn, merge):
    """One vector of the real transform's split (``merge`` ``_SPLIT``: from the
    half-length transform ``Z`` of the even / odd samples to the spectrum ``X``
    at ``k``) or merge (``_MERGE``: the inverse, unscaled x 2), with ``p = z[o1]``
    (frequency ``k``), ``q = conj(z[o2])`` (frequency ``M - k``), ``(cs, sn)`` the
    cosine and sine of ``2 pi k / FW``; the result to ``d[od]``. Split: ``X = (p
    + q) / 2 - i e^(-2 pi i k / FW) (p - q) / 2``; merge: ``Z = (p + q) + i e^(2
    pi i k / FW) (p - q)``."""
    elem, vty, align = _vector_parts(zr.dtype)
    inverse = len(merge) == 2

    def codegen(context, builder, sig, args):
        zr_, zi_, o1_, o2_, dr_, di_, od_, cs_, sn_, _ = args

        def ld(i, off):
            return builder.load(_ptr(context, builder, sig.args[i], args[i], off, elem, vty), align=align)

        def splat(i):
            return _splat(builder, context.cast(builder, args[i], sig.args[i], zr.dtype), vty)

        add, sub, mul = builder.fadd, builder.fsub, builder.fmul
        pr, pi = ld(0, o1_), ld(1, o1_)
        qr, qi = ld(0, o2_), builder.fneg(ld(1, o2_))
        c, s = splat(7), splat(8)
        sr, si = add(pr, qr), add(pi, qi)  # p + q
        dr, di = sub(pr, qr), sub(pi, qi)  # p - q
        if not inverse:
            half = _splat(builder, ir.Constant(elem, 0.5), vty)
            # -i (p - q) / 2 = (di, -dr) / 2, times (c - i s)
            odr, odi = mul(di, half), builder.fneg(mul(dr, half))
            xr = add(mul(sr, half), _fma(builder, c, odr, mul(s, odi)))
            xi = sub(_fma(builder, c, odi, mul(si, half)), mul(s, odr))
        else:
            xr = sub(sr, _fma(builder, dr, s, mul(di, c)))
            xi = add(si, _fma(builder, dr, c, builder.fneg(mul(di, s))))
        builder.store(xr, _ptr(context, builder, sig.args[4], dr_, od_, elem, vty), align=align)
        builder.store(xi, _ptr(context, builder, sig.args[5], di_, od_, elem, vty), align=align)
        return context.get_dummy_value()

    return types.void(zr, zi, o1, o2, dr, di, od, cs, sn, merge), codegen


@intrinsic
def stream_vector(typingctx, dst, dst_off, src, src_off):
    """One vector from ``src[src_off ...]`` (unaligned) to ``dst[dst_off ...]``
    (64-byte aligned) by a non-temporal store: around the caches, without
    reading the line first (``store_fence`` orders it)."""
    elem, vty, align = _vector_parts(dst.dtype)

    def codegen(context, builder, sig, args):
        v = builder.load(_ptr(context, builder, sig.args[2], args[2], args[3], elem, vty), align=align)
        _stream_store(builder, v, _ptr(context, builder, sig.args[0], args[0], args[1], elem, vty))
        return context.get_dummy_value()

    return types.void(dst, dst_off, src, src_off), codegen


@intrinsic
def stream_halves(typingctx, dst, dst_off, a, a_off, b, b_off):
    """One vector to ``dst[dst_off ...]`` (64-byte aligned) by a non-temporal
    store: its low half from ``a[a_off ...]``, its high half from ``b[b_off ...]``
    (both unaligned). Lets the row passes write rows of half-vector pieces (8
    float32 channels) straight from their buffers, where assembling them in a row
    first cost a store and a load that could not forward from it per piece."""
    elem, vty, align = _vector_parts(dst.dtype)
    hty = ir.VectorType(elem, vty.count // 2)

    def codegen(context, builder, sig, args):
        def half(i):
            return builder.load(_ptr(context, builder, sig.args[i], args[i], args[i + 1], elem, hty), align=align)

        v = builder.shuffle_vector(half(2), half(4), ir.Constant(ir.VectorType(ir.IntType(32), vty.count),
                                                                 list(range(vty.count))))
        _stream_store(builder, v, _ptr(context, builder, sig.args[0], args[0], args[1], elem, vty))
        return context.get_dummy_value()

    return types.void(dst, dst_off, a, a_off, b, b_off), codegen


#: rows and columns of ``split_transpose`` / ``merge_transpose``'s blocks: half a
#: vector of float32, the channels_first row passes' transposes
BLOCK = 8


def _block_parts(context, builder, sig, args, dtype):
    elem, _, align = _vector_parts(dtype)
    bty = ir.VectorType(elem, BLOCK)

    def ptr(i, off):  # argument i's element ``off`` as a block pointer
        return _ptr(context, builder, sig.args[i], args[i], off, elem, bty)

    def at(base, step, j):  # base + j * step, in the offsets' integer type
        return builder.add(base, builder.mul(step, ir.Constant(step.type, j)))

    return ptr, at, align


@intrinsic
def split_transpose(typingctx, ar, ai, dst_off, dst_stride, x, src_off, src_stride):
    """The channels_first row pass's gather: ``BLOCK`` rows ``c`` of ``2 BLOCK``
    samples at ``x[src_off + c src_stride ...]``, their even samples transposed
    into ``ar[dst_off + j dst_stride + c]`` (sample ``2 j`` of row ``c``) and
    their odd ones into ``ai`` (the real transform's packing). Unaligned."""
    def codegen(context, builder, sig, args):
        ar_, ai_, d0, ds, x_, s0, ss = range(7)
        ptr, at, align = _block_parts(context, builder, sig, args, x.dtype)
        idx = ir.VectorType(ir.IntType(32), BLOCK)
        even, odd = [], []
        for c in range(BLOCK):
            base = at(args[s0], args[ss], c)
            lo = builder.load(ptr(x_, base), align=align)
            hi = builder.load(ptr(x_, builder.add(base, ir.Constant(base.type, BLOCK))), align=align)
            even.append(builder.shuffle_vector(lo, hi, ir.Constant(idx, list(range(0, 2 * BLOCK, 2)))))
            odd.append(builder.shuffle_vector(lo, hi, ir.Constant(idx, list(range(1, 2 * BLOCK, 2)))))
        for arr, rows in ((ar_, even), (ai_, odd)):
            for j, v in enumerate(shuffle_transpose(builder, rows)):
                builder.store(v, ptr(arr, at(args[d0], args[ds], j)), align=align)
        return context.get_dummy_value()

    return types.void(ar, ai, dst_off, dst_stride, x, src_off, src_stride), codegen


@intrinsic
def copy_block(typingctx, dst, dst_off, src, src_off):
    """``BLOCK`` values from ``src[src_off ...]`` to ``dst[dst_off ...]``, one
    plain load and store (``_copy`` of a count known to be ``BLOCK``, without
    its loop and tests). Unaligned."""
    def codegen(context, builder, sig, args):
        ptr, _, align = _block_parts(context, builder, sig, args, src.dtype)
        builder.store(builder.load(ptr(2, args[3]), align=align), ptr(0, args[1]), align=align)
        return context.get_dummy_value()

    return types.void(dst, dst_off, src, src_off), codegen


@intrinsic
def merge_transpose(typingctx, out, dst_off, dst_stride, a, a_off, b, b_off, src_stride):
    """The channels_first inverse row pass's scatter, ``split_transpose``
    undone: ``BLOCK`` vectors ``j`` of ``BLOCK`` lanes ``k`` at ``a[a_off + j
    src_stride ...]`` (samples ``2 j``) and as many at ``b[b_off ...]`` (samples
    ``2 j + 1``), transposed and interleaved into rows ``k`` of ``2 BLOCK``
    samples at ``out[dst_off + k dst_stride ...]``. Unaligned."""
    def codegen(context, builder, sig, args):
        out_, d0, ds, a_, a0, b_, b0, ss = range(8)
        ptr, at, align = _block_parts(context, builder, sig, args, out.dtype)
        idx = ir.VectorType(ir.IntType(32), BLOCK)
        even = shuffle_transpose(builder, [builder.load(ptr(a_, at(args[a0], args[ss], j)), align=align)
                                     for j in range(BLOCK)])
        odd = shuffle_transpose(builder, [builder.load(ptr(b_, at(args[b0], args[ss], j)), align=align)
                                    for j in range(BLOCK)])
        for k in range(BLOCK):
            base = at(args[d0], args[ds], k)
            for h in range(2):
                mask = [i // 2 + h * BLOCK // 2 + (BLOCK if i % 2 else 0) for i in range(BLOCK)]
                v = builder.shuffle_vector(even[k], odd[k], ir.Constant(idx, mask))
                builder.store(v, ptr(out_, builder.add(base, ir.Constant(base.type, h * BLOCK))), align=align)
        return context.get_dummy_value()

    return types.void(out, dst_off, dst_stride, a, a_off, b, b_off, src_stride), codegen


@intrinsic
def data_address(typingctx, arr):
    """The address of ``arr``'s first element, as an int64."""
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, ir.IntType(64))

    return types.int64(arr), codegen


_SPLIT, _MERGE = (0,), (0, 0)  # real_pair's direction, as a tuple length (literal bools do not survive typing)


@njit(inline="always", **SERIAL)
def _copy(dst, dst_off, src, src_off, count):
    """``copy_lanes`` over any ``count``."""
    step = VECTOR_BYTES // dst.itemsize
    for q in range(0, count, step):
        copy_lanes(dst, dst_off + q, src, src_off + q, min(step, count - q))


@njit(inline="always", **SERIAL)
def _stream(dst, dst_off, src, src_off, count, stream):
    """``_copy``, the whole aligned vectors of ``dst`` it writes streamed when
    ``stream`` (and ``dst``'s elements lie at multiples of their size, as
    NumPy's own arrays' do). Written without ``_copy``: a function inlined at
    the Numba level that itself inlined ``_copy`` gave ``columns`` different
    machine code depending on which kernel had inlined it first in the process,
    and so on the order of first calls (15602 or 15774 lines of assembly,
    ``columns`` 6-10 % apart)."""
    step = VECTOR_BYTES // dst.itemsize
    streamed = stream and data_address(dst) % dst.itemsize == 0
    first = data_address(dst) // dst.itemsize + dst_off
    head = min(count, (step - first % step) % step) if streamed else count  # copied up to here, then streamed
    q = 0
    while q < count:
        if q < head or q + step > count:  # the unaligned head, and the tail
            n = min(step, (head if q < head else count) - q)
            copy_lanes(dst, dst_off + q, src, src_off + q, n)
            q += n
        else:
            stream_vector(dst, dst_off + q, src, src_off + q)
            q += step


@njit(inline="always", **SERIAL)
def _fill(dst, dst_off, count):
    """``fill_lanes`` over any ``count``."""
    step = VECTOR_BYTES // dst.itemsize
    for q in range(0, count, step):
        fill_lanes(dst, dst_off + q, min(step, count - q))


# ------------------------------------------------------------------ the 2-D correlation's passes

@njit(**SERIAL)
def _edge_pieces(ar, ai, o, VP, C, xf, base, m0, m1, off, W):
    """``rows_forward`` channels last: samples ``m0 <= m < m1`` of a row (``C``
    channels of sample ``i`` at ``xf[base + i C]``; even to ``ar``, odd to
    ``ai``), zeros outside its ``W`` samples."""
    for m in range(m0, m1):
        i = 2 * m - off
        if 0 <= i < W:
            _copy(ar, m * VP + o, xf, base + 2 * m * C, C)
        else:
            _fill(ar, m * VP + o, C)
        if 0 <= i + 1 < W:
            _copy(ai, m * VP + o, xf, base + (2 * m + 1) * C, C)
        else:
            _fill(ai, m * VP + o, C)


@njit(inline="always", **SERIAL)
def _edge_samples(ar, ai, o, VP, xf, src, m0, m1, off, W):
    """``rows_forward`` channels first: samples ``m0 <= m < m1`` of one channel's
    row (even to ``ar``, odd to ``ai``), zero outside its ``W`` samples."""
    for m in range(m0, m1):
        i = 2 * m - off
        ar[m * VP + o] = xf[src + 2 * m] if 0 <= i < W else 0
        ai[m * VP + o] = xf[src + 2 * m + 1] if 0 <= i + 1 < W else 0


@parallel_kernel
def rows_forward(x, W, C, cf, Sr, Si, off, FW, bufs, rowbufs, B, radices, offsets, tw, half, stream):
    """The real DFT along W of each row ``r = n H + h`` of ``x`` (flat: channels
    last (R, W, C), or channels first (N, C, H, W) when ``cf``) placed
    at ``off`` in ``FW`` zeros, frequencies ``k <= FW / 2``, into ``S`` (split; N,
    NB, H, Bc C) in blocks of ``Bc`` frequency columns as ``columns`` reads them:
    frequency ``k = j Bc + i`` of row ``r`` at ``S[n, j, h, i C:(i + 1) C]`` (the
    column pass then reads each block's rows in one run, not one short run per
    row of the whole spectrum). Parallel over blocks of ``B`` rows, one slot of
    ``bufs`` (slots, 4, (FW / 2 + 1) VP) per share, ``VP`` >= ``B C`` a multiple
    of the vector lanes, and of ``rowbufs`` (slots, >= 2 (FW / 2 + 1) C), where
    a row is assembled."""
    _, NB, H, BCC = Sr.shape
    R = x.size // (W * C)
    Bc = BCC // C
    M = FW // 2
    slots = bufs.shape[0]
    VP = bufs.shape[2] // (M + 1)
    nblk = (R + B - 1) // B
    per = (nblk + slots - 1) // slots
    xf = x
    # the samples m of a row both of whose (even, odd) samples lie inside it (channels first:
    # the first ``tiles`` of them in whole blocks)
    mlo, mhi = min(M, (off + 1) // 2), max(0, min(M, (W + off) // 2))
    tiles = max(0, mhi - mlo) // BLOCK * BLOCK
    Srf = Sr.reshape(Sr.size)
    Sif = Si.reshape(Si.size)
    FC = M + 1
    step = VECTOR_BYTES // x.itemsize
    # rows of 8 float32 channels go out as two frequencies per streamed vector (every row block aligned)
    pairs = stream and 2 * C == step and (Bc * C * x.itemsize) % VECTOR_BYTES == 0 and \
        data_address(Sr) % VECTOR_BYTES == 0 and data_address(Si) % VECTOR_BYTES == 0
    for s in prange(slots):
        buf = bufs[s]
        buf[:] = 0
        for blk in range(s * per, min(nblk, (s + 1) * per)):
            r0 = blk * B
            nb = min(B, R - r0)
            ar, ai = buf[0], buf[1]
            for b in range(B):
                if b >= nb:  # rows past the end: zeros (their lanes are computed, never stored)
                    for m in range(M):
                        _fill(ar, m * VP + b * C, C)
                        _fill(ai, m * VP + b * C, C)
                    continue
                if cf:  # the channels' rows transposed: blocks of BLOCK channels, the rest a sample at a time
                    n, h = (r0 + b) // H, (r0 + b) % H
                    for c0 in range(0, C - C % BLOCK, BLOCK):
                        src = ((n * C + c0) * H + h) * W - off
                        for m in range(mlo, mlo + tiles, BLOCK):
                            split_transpose(ar, ai, m * VP + b * C + c0, VP, xf, src + 2 * m, H * W)
                    for c in range(C):
                        src = ((n * C + c) * H + h) * W - off  # padded sample j of the row at xf[src + j]
                        o = b * C + c
                        for m in range(mlo + (tiles if c < C - C % BLOCK else 0), mhi):
                            ar[m * VP + o] = xf[src + 2 * m]
                            ai[m * VP + o] = xf[src + 2 * m + 1]
                        _edge_samples(ar, ai, o, VP, xf, src, 0, mlo, off, W)
                        _edge_samples(ar, ai, o, VP, xf, src, max(mlo, mhi), M, off, W)
                    continue
                base = ((r0 + b) * W - off) * C  # sample i of the row at xf[base + i * C]
                if C == BLOCK:
                    for m in range(mlo, mhi):
                        copy_block(ar, m * VP + b * C, xf, base + 2 * m * C)
                        copy_block(ai, m * VP + b * C, xf, base + (2 * m + 1) * C)
                else:
                    for m in range(mlo, mhi):
                        _copy(ar, m * VP + b * C, xf, base + 2 * m * C, C)
                        _copy(ai, m * VP + b * C, xf, base + (2 * m + 1) * C, C)
                _edge_pieces(ar, ai, b * C, VP, C, xf, base, 0, mlo, off, W)
                _edge_pieces(ar, ai, b * C, VP, C, xf, base, max(mlo, mhi), M, off, W)
            q = fft_lanes(buf[0], buf[1], buf[2], buf[3], M, VP, radices, offsets, tw, -1.0)
            zr, zi, dr, di = buf[2 * q], buf[2 * q + 1], buf[2 - 2 * q], buf[3 - 2 * q]
            for k in range(M + 1):
                o1 = k * VP if k < M else 0  # Z's index k mod M, and M - k mod M
                o2 = (M - k) * VP if 0 < k < M else 0
                for v in range(0, VP, step):
                    real_pair(zr, zi, o1 + v, o2 + v, dr, di, k * VP + v, half[2 * k], half[2 * k + 1], _SPLIT)
            rowbuf = rowbufs[s]
            for b in range(nb):
                n, h = (r0 + b) // H, (r0 + b) % H
                if pairs:  # straight from the buffers
                    for j in range(NB):
                        k0 = j * Bc
                        nk = min(Bc, FC - k0)
                        dst = ((n * NB + j) * H + h) * BCC
                        for i in range(0, nk - 1, 2):
                            o = (k0 + i) * VP + b * C
                            stream_halves(Srf, dst + i * C, dr, o, dr, o + VP)
                            stream_halves(Sif, dst + i * C, di, o, di, o + VP)
                        if nk % 2:
                            _copy(Srf, dst + (nk - 1) * C, dr, (k0 + nk - 1) * VP + b * C, C)
                            _copy(Sif, dst + (nk - 1) * C, di, (k0 + nk - 1) * VP + b * C, C)
                    continue
                for k in range(M + 1):
                    _copy(rowbuf, k * C, dr, k * VP + b * C, C)
                    _copy(rowbuf, (M + 1 + k) * C, di, k * VP + b * C, C)
                for j in range(NB):
                    k0 = j * Bc
                    dst = ((n * NB + j) * H + h) * BCC
                    _stream(Srf, dst, rowbuf, k0 * C, min(Bc, FC - k0) * C, stream)
                    _stream(Sif, dst, rowbuf, (FC + k0) * C, min(Bc, FC - k0) * C, stream)
        if stream:
            store_fence()


@njit(**SERIAL)
def _contract(xf, xo, xh, xn, Wrf, Wif, f, CG, groups, KP, yf, yo, yh, yn, N, rows, KG, no_bias, tag):
    """The channel contraction of ``rows`` consecutive frequencies of one column
    for every image: ``y[g KG + k] = sum_c x[g CG + c] W[f + r, c, g, k]``
    (complex, split: the real parts of image ``n`` at frequency ``r`` at
    ``xf[2 n xn + xo + r xh ...]``, the imaginary at ``xf[(2 n + 1) xn + xo + r
    xh ...]``, likewise ``y``). The ``tag`` tile's rows are the frequencies (every
    offset linear in the row), its lanes filters; past ``rows`` it repeats the
    last one (computed, not stored). A function of its own, not inlined: inlined
    into the block loops, LLVM kept some forty address streams live across them
    and spent ~4x the multiply-adds' time on them."""
    R, L = tile_shape(Wrf, tag)
    accr = acc_tile(Wrf, tag)
    acci = acc_tile(Wrf, tag)
    for n in range(N):
        for g in range(groups):
            for kk in range(0, KG, L):
                for r in range(R):
                    row_zero(accr, r, Wrf, tag)
                    row_zero(acci, r, Wrf, tag)
                for c in range(CG):
                    for r in range(R):
                        q = min(r, rows - 1)
                        wo = (((f + q) * CG + c) * groups + g) * KP + kk
                        xr = at(xf, 2 * n * xn + xo + q * xh + g * CG + c)
                        xi = at(xf, (2 * n + 1) * xn + xo + q * xh + g * CG + c)
                        row_fma(accr, r, xr, Wrf, wo, tag)
                        row_fma(accr, r, -xi, Wif, wo, tag)
                        row_fma(acci, r, xr, Wif, wo, tag)
                        row_fma(acci, r, xi, Wrf, wo, tag)
                for r in range(R):
                    if r < rows:
                        o = yo + r * yh + g * KG + kk
                        row_store(accr, r, yf, 2 * n * yn + o, min(L, KG - kk), no_bias, 0, False, tag)
                        row_store(acci, r, yf, (2 * n + 1) * yn + o, min(L, KG - kk), no_bias, 0, False, tag)


@parallel_kernel
def columns(Sr, Si, Wr, Wi, Tr, Ti, off, FH, first, step, groups, xb, yb, fb, Bc, radices, offsets, twf, twi, tag,
            stream):
    """For each block of ``Bc`` frequency columns: the DFT along H of ``S`` (N, NB,
    H, Bc C; ``rows_forward``'s blocks) placed at row ``off`` in ``FH`` zeros, the channel contraction with
    ``W`` (FC FH, C / groups, groups, KP) (``Y[f, g Kg + k] = sum_c X[f, g Cg + c]
    W[f, c, g, k]``, each group's filters zero-padded to KP, whole rows of the
    ``tag`` tile) for every image while the block is in cache, and the inverse
    DFT along H, of which rows ``first + step o`` go to ``T`` (N, OH, FC, K).
    Parallel over the blocks; slot ``s`` holds every image's block in ``xb[s]``
    (>= N, 2, FH VX) and ``yb[s]`` (>= N, 2, FH VY), ``fb[s]`` (2, FH max(VX,
    VY)) their transforms' scratch."""
    N, NB, H, BCC = Sr.shape
    C = BCC // Bc
    OH, FC, K = Tr.shape[1], Tr.shape[2], Tr.shape[3]
    _, CG, _, KP = Wr.shape
    KG = K // groups
    slots = xb.shape[0]
    VX, VY = xb.shape[3] // FH, yb.shape[3] // FH
    nblk = (FC + Bc - 1) // Bc
    per = (nblk + slots - 1) // slots
    odd = radices.size % 2 == 1
    Srf, Sif = Sr.reshape(Sr.size), Si.reshape(Si.size)
    Trf, Tif = Tr.reshape(Tr.size), Ti.reshape(Ti.size)
    Wrf, Wif = Wr.reshape(Wr.size), Wi.reshape(Wi.size)
    no_bias = np.empty(1, Wr.dtype)
    no_bias[0] = 0
    for s in prange(slots):
        xs, ys, fs = xb[s], yb[s], fb[s]
        xs[:] = 0
        ys[:] = 0
        fs[:] = 0
        xf, yf = xs.reshape(xs.size), ys.reshape(ys.size)
        for blk in range(s * per, min(nblk, (s + 1) * per)):
            k0 = blk * Bc
            nc = min(Bc, FC - k0)
            for n in range(N):
                # gathered so that the transform's result lands in xs[n] (the stage count's parity)
                gr, gi = (fs[0], fs[1]) if odd else (xs[n, 0], xs[n, 1])
                for h in range(FH):
                    row = h - off
                    if 0 <= row < H:
                        _copy(gr, h * VX, Srf, ((n * NB + blk) * H + row) * BCC, nc * C)
                        _copy(gi, h * VX, Sif, ((n * NB + blk) * H + row) * BCC, nc * C)
                    else:
                        _fill(gr, h * VX, nc * C)
                        _fill(gi, h * VX, nc * C)
                if odd:
                    fft_lanes(fs[0], fs[1], xs[n, 0], xs[n, 1], FH, VX, radices, offsets, twf, -1.0)
                else:
                    fft_lanes(xs[n, 0], xs[n, 1], fs[0], fs[1], FH, VX, radices, offsets, twf, -1.0)
            R, _ = tile_shape(Wr, tag)
            for j in range(nc):
                for h in range(0, FH, R):
                    _contract(xf, h * VX + j * C, VX, FH * VX, Wrf, Wif, (k0 + j) * FH + h, CG, groups, KP, yf,
                              h * VY + j * K, VY, FH * VY, N, min(R, FH - h), KG, no_bias, tag)
            for n in range(N):
                q = fft_lanes(ys[n, 0], ys[n, 1], fs[0], fs[1], FH, VY, radices, offsets, twi, 1.0)
                rr, ri = (fs[0], fs[1]) if q == 1 else (ys[n, 0], ys[n, 1])
                for o in range(OH):
                    h = first + step * o
                    _stream(Trf, ((n * OH + o) * FC + k0) * K, rr, h * VY, nc * K, stream)
                    _stream(Tif, ((n * OH + o) * FC + k0) * K, ri, h * VY, nc * K, stream)
        if stream:
            store_fence()


@parallel_kernel
def rows_inverse(Tr, Ti, out, OH, OW, cf, first, step, FW, bufs, rowbufs, B, radices, offsets, tw, half, bias,
                 has_bias, code, stream):
    """``out[r, o, :]`` = ``activate(s + bias, code)``, ``s`` sample ``first + step
    o`` of the inverse real DFT along W (unscaled, times 2) of ``T[r, :, :]`` (R,
    FW / 2 + 1, K); ``out`` flat, channels last (R, OW, K) or channels first (N,
    K, OH, OW) when ``cf`` (row ``r = n OH + h``); ``bias`` each filter's bias
    across a block's ``B K`` lanes. Parallel over blocks of ``B`` rows, one slot
    of ``bufs`` (slots, 4, (FW / 2 + 1) VP) per share."""
    R, FC, K = Tr.shape
    # each output row is assembled in ``rowbufs[s]`` (>= OW K) and copied out whole, streamed when ``stream``
    M = FW // 2
    slots = bufs.shape[0]
    VP = bufs.shape[2] // (M + 1)
    nblk = (R + B - 1) // B
    per = (nblk + slots - 1) // slots
    Trf, Tif, outf = Tr.reshape(Tr.size), Ti.reshape(Ti.size), out
    vstep = VECTOR_BYTES // out.itemsize
    # channels first at stride 1: the filters and outputs in whole blocks
    kt, otiles = (K - K % BLOCK, OW - OW % (2 * BLOCK)) if step == 1 else (0, 0)
    for s in prange(slots):
        buf = bufs[s]
        buf[:] = 0
        for blk in range(s * per, min(nblk, (s + 1) * per)):
            r0 = blk * B
            nb = min(B, R - r0)
            tr, ti = buf[2], buf[3]
            for b in range(nb):
                if K == BLOCK:
                    for k in range(M + 1):
                        copy_block(tr, k * VP + b * K, Trf, ((r0 + b) * FC + k) * K)
                        copy_block(ti, k * VP + b * K, Tif, ((r0 + b) * FC + k) * K)
                    continue
                for k in range(M + 1):
                    _copy(tr, k * VP + b * K, Trf, ((r0 + b) * FC + k) * K, K)
                    _copy(ti, k * VP + b * K, Tif, ((r0 + b) * FC + k) * K, K)
            for m in range(M):
                for v in range(0, VP, vstep):
                    real_pair(tr, ti, m * VP + v, (M - m) * VP + v, buf[0], buf[1], m * VP + v, half[2 * m],
                              half[2 * m + 1], _MERGE)
            q = fft_lanes(buf[0], buf[1], buf[2], buf[3], M, VP, radices, offsets, tw, 1.0)
            zr, zi = buf[2 * q], buf[2 * q + 1]
            # channels first at stride 1: outputs o, o + 1 from (za, zb), the latter VP further when ``first`` is odd
            za, zb, zbo = (zi, zr, VP) if first % 2 else (zr, zi, 0)
            if has_bias:  # over the whole row: a sample past the outputs is never stored
                for m in range(M):
                    for v in range(VP):
                        zr[m * VP + v] += bias[v]
                        zi[m * VP + v] += bias[v]
            activate_slice(zr[:M * VP], code)
            activate_slice(zi[:M * VP], code)
            rowbuf = rowbufs[s]
            for b in range(nb):
                if cf:  # each filter's row assembled (a transpose: at stride 1 in blocks), then stored whole
                    n, h = (r0 + b) // OH, (r0 + b) % OH
                    for k0 in range(0, kt, BLOCK):
                        for o in range(0, otiles, 2 * BLOCK):
                            t = ((first + o) // 2) * VP + b * K + k0
                            merge_transpose(rowbuf, k0 * OW + o, OW, za, t, zb, t + zbo, VP)
                    for k in range(K):
                        for o in range(otiles if k < kt else 0, OW):
                            i = first + step * o
                            t = (i // 2) * VP + b * K + k
                            rowbuf[k * OW + o] = zi[t] if i % 2 else zr[t]
                        _stream(outf, ((n * K + k) * OH + h) * OW, rowbuf, k * OW, OW, stream)
                    continue
                row = (r0 + b) * OW * K
                if stream and 2 * K == vstep and (data_address(out) + row * out.itemsize) % VECTOR_BYTES == 0:
                    # pairs of outputs straight from the buffers, streamed
                    for o in range(0, OW - 1, 2):
                        i, i2 = first + step * o, first + step * (o + 1)
                        stream_halves(outf, row + o * K, zi if i % 2 else zr, (i // 2) * VP + b * K,
                                      zi if i2 % 2 else zr, (i2 // 2) * VP + b * K)
                    if OW % 2:
                        i = first + step * (OW - 1)
                        _copy(outf, row + (OW - 1) * K, zi if i % 2 else zr, (i // 2) * VP + b * K, K)
                    continue
                for o in range(OW):
                    i = first + step * o
                    if i % 2 == 0:
                        _copy(rowbuf, o * K, zr, (i // 2) * VP + b * K, K)
                    else:
                        _copy(rowbuf, o * K, zi, (i // 2) * VP + b * K, K)
                _stream(outf, row, rowbuf, 0, OW * K, stream)
        if stream:
            store_fence()
