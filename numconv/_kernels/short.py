"""The term-loop direct kernels: one loop body over a flat list of reduction
terms, for short reductions (first layers, few input channels) and long ones.

A layer whose every output sums few terms (``Cg * kd * kh * kw``, e.g. a 1-D
series of 1 channel with 5 taps: 5 terms) spends little time in FMAs, so what
the tile kernel (``conv.py``) does around them decides its speed: per tile it
maps each tap through the padding mode, checks whether the tile crosses a
border and takes one of three loop bodies, and that one large loop nest keeps
its per-pixel indices in memory. On the stock conv1d (1000 x 50 x 1 -> 16, k 5)
it ran at ~30 cycles per output pixel for 5 FMAs.

Both kernels here have one loop body (``accumulate``): per tile of ``R``
output pixels along W and each reduction term ``t`` (a (kd, kh, kw, c) tap, in
that order), one broadcast and one vector FMA per pixel, at ``x[pixel base +
offs[t]]`` where ``offs`` (the terms' offsets from a pixel's first input, with
dilation) is computed once per call. The last tile of a row repeats its last
pixel in the rows past the row's end (computed, never stored), so no tile reads
outside the input. Each output's reduction runs in one task in a fixed order,
so results do not depend on the thread count. A fused activation is applied by
``_paths/direct`` after the kernel: in the loop nest, even never taken, its
code cost 10-15 %.

``short_kernel``: at most ``MAX_TERMS`` terms, read from a padded copy of the
input (``_paths/direct.padded``; none for valid padding). Float32 sums them in
registers and stores the tile straight from them (the tile kernel flushes every
``tile.FLUSH_TERMS`` = ``MAX_TERMS`` terms, so the rounding is the same).
Measured (stock conv1d, the kernel alone, 1 thread, min of 1000): 0.55 ms in the
tile kernel, 0.11 ms here; with the padding-mode, flush and activation code of
the tile kernel left in, 0.19 ms.

``long_kernel``: any length, single precision (``_paths/direct.is_long``).

* Blocked sums in three levels: the register tile sums ``FLUSH_TERMS`` (64)
  terms, then is added into a float32 tile of partial sums (``row_spill``), and
  every ``WIDE_TERMS`` (512) terms that tile is added into a double-precision
  one. The tile kernel widened every 64 terms: the conversions cost 10-15 % on
  long reductions (pointwise 8 x 28 x 28 x 256 -> 256: 2.05 -> 1.83 ms; stem
  0.64 -> 0.55; dilated 0.78 -> 0.68), and the first level alone (no double
  precision) doubled the error at 4608 positive terms (1.0e-7 -> 4.1e-7,
  torch 3.3e-7); with the 512-term level it is 9.7e-8 again.
* No padded copy: a tile whose window lies inside the input reads it in place;
  a border tile first gathers its window (KD * KH rows of ``(R - 1) * sw + (KW -
  1) * dw + 1`` pixels, all channels) through the padding mode into a per-thread
  patch and runs the same loop on it with the patch's offsets. The terms and
  their order are the same either way, so a padded layer gives bit for bit the
  result of the valid layer on the padded input. (A padded copy cost more than
  the kernel gained on large inputs: strided conv1d 32 x 4096 x 64, 11.3 ->
  15 ms; wavenet 16 -> 20 ms.)
* Each tile fetches the next tile's output lines for writing (their
  read-for-ownership otherwise stalls the stores): 8 x 56 x 56 x 128 -> 128 1 x 1
  2.05-2.16 ms with it, 2.47-2.93 without, depending on where the input lies
  relative to the output. (The short kernel's tiles, a few terms long, lost
  with it.)
* Each in-place tile of a channels-last input prefetches the next tile's input
  rows into L2 (``prefetcht1``; into L1 it would evict the rows in use). A tile
  reads its R pixels' channels term by term, R lines at a time, a pattern the
  hardware prefetcher follows poorly from memory: 4 x 64 x 64 x 128 -> 8 1 x 1
  with its input out of cache (separable's pointwise stage) 1.00 -> 0.55 ms;
  dense layers, whose input is in cache, unchanged.
* Short rows (``flat``, ``_paths/direct.is_flat``): a tile of ``R`` pixels
  along one row idles where rows are short against it (17 pixels in tiles of
  8: 3 tiles, 17 of 24 rows busy; 3-D and strided layers of a few pixels per
  row). There the tasks are chunks of a whole (OH, OW) plane in row-major
  order, and a tile runs on past a row's end into the next row: each pixel
  then reads its input at its own offset (``accumulate_tile``), or, where a
  window leaves the input, from its own window gathered through the padding
  mode. The terms and their order are those of whole-row tiles, so the
  results are the same bits. 16 x 15 x 15 x 192 -> 24, 2 x 4, dilation (1, 2),
  pads (1, 4) (OW = 17): 3.0 -> 2.3 ms; 16 x 14 x 5 x 192 -> 64, 7 x 5, stride
  (3, 1): 1.03 -> 0.61; 1 x 5 x 15 x 15 x 96 -> 192 (OW = 5): 0.49 -> 0.25. It
  is a specialisation of its own (``flat`` None or True), so whole-row tiles
  keep their code: with a per-pixel index there too, 8 x 56 x 56 x 128 -> 128
  1 x 1 ran 3-7 % slower.
* Loop order per task: filter blocks, then tiles, then groups, so a block's
  weights stay in cache over the row and a tile's input (or patch) serves every
  group (grouped 8 x 56 x 56 x 64, groups 4: 2.1-2.6 ms with groups outside the
  tiles, 1.6 with them inside).

``pointwise_kernel``: the long kernel's 1 x 1, stride-1, one-group layers (their
pixels as one row, ``_paths/direct.flat_pointwise``) as a plain matrix product:
the same terms, order and partial sums, so the same bits, in a loop nest without
the long kernel's padding, patch, group and row-end code, which cost it 10-20 %
there (``pointwise_kernel``'s docstring).
"""
import numba
import numpy as np
from numba import njit, prange
from numba.extending import overload

from .._config import SERIAL, parallel_kernel
from .conv import row_task
from .pad import source_index
from .tile import (FLUSH_TERMS, LINE_BYTES, acc_tile, at, copy_line, flush_terms, index_buffer, prefetch_l2,
                   prefetch_write, row_fma, row_spill, row_store, row_stream, row_zero, store_fence, stream_line,
                   tile_shape, tile_store_transposed, wide_tile)

#: the longest reduction (Cg * kd * kh * kw) ``short_kernel`` takes
MAX_TERMS = FLUSH_TERMS
#: ``long_kernel``'s float32 partial sums are widened to double every this many terms
WIDE_TERMS = 8 * FLUSH_TERMS
#: elements of the term kernels' per-slot stage of channels-first results (16 KiB of float32)
STAGE_ELEMS = 4096


@njit(**SERIAL)
def term_offsets(KD, KH, KW, CG, sc, sz, sy, sx, dd, dh, dw):
    """Element offsets of the reduction terms (kd, kh, kw, c), in that order, from
    a pixel's first input, in an array whose element strides along channels,
    depth, height and width are ``sc``, ``sz``, ``sy``, ``sx`` (channels-last
    (.., H, W, C): 1, H * W * C, W * C, C; channels-first (C, D, H, W): D * H * W,
    H * W, W, 1)."""
    offs = np.empty(KD * KH * KW * CG, np.int64)
    # Nested loops over a running unsigned index t = ((a * KH + bb) * KW + cc) * CG + c:
    # plain stores. (A flat loop recovering (a, bb, cc, c) from t by division took
    # ~10 ns a term, three lists per call: 60 us a call of a 2048 -> 1000 1 x 1
    # layer, 0.2 ms of a 3 x 3 x 3 x 256 one; indexing by the computed signed
    # position, the nested loops had vectorised to scatters.)
    t = np.uint64(0)
    for a in range(KD):
        for bb in range(KH):
            for cc in range(KW):
                tap = a * dd * sz + bb * dh * sy + cc * dw * sx
                for c in range(CG):
                    offs[t] = tap + c * sc
                    t += np.uint64(1)
    return offs


@njit(inline="always", **SERIAL)
def term_geometry(C, K, kernel, L):
    """(channels per group, filters per group, filter blocks of ``L`` lanes, terms
    per output) for ``kernel`` = (G, KD, KH, KW)."""
    G, KD, KH, KW = kernel
    CG = C // G
    KG = K // G
    return CG, KG, (KG + L - 1) // L, KD * KH * KW * CG


@parallel_kernel
def short_kernel(xf, geom, xstrides, w, wsteps, kernel, b, has_bias, out, strides, dilations, wchunk, slots, out_cf,
                 tag):
    """``out = conv(x, w) + b``, valid, on an input padded beforehand.

    ``xf`` the padded input, flat: ``geom`` = (N, C, DP, HP, WP) and ``xstrides``
    its element strides (sn, sc, sz, sy, sx) as for ``long_kernel``
    (channels-last or channels-first), padded so that a valid convolution gives
    ``out`` (N, OD, OH, OW, K). ``kernel`` = (G, KD, KH, KW): the groups and
    kernel size. ``w`` is flat: the ``lanes`` weights of group ``g``'s filter
    block ``kb`` for term ``t`` start at ``(g * NKB + kb) * wsteps[0] + t *
    wsteps[1]`` (NKB = ceil(K / G / lanes)), which serves both the packed
    weights of ``_paths/direct.pack_weights`` (steps (T * lanes, lanes)) and, for
    one group with whole blocks, the canonical kernel itself (steps (lanes, K)).
    Parallel over ``slots`` equal blocks of the tasks (n, od, oh, W-chunk of
    ``wchunk`` pixels, a multiple of the tile's rows); ``Cg * KD * KH * KW`` <=
    ``MAX_TERMS``. ``out_cf``: None, or a tuple when ``out`` is channels-first (N,
    K, OD, OH, OW), written by ``tile_store_transposed`` (each a specialisation of
    its own, so the channels-last code carries no branch for it: it cost the stock
    conv1d 5-8 %): () in place, (0,) through a per-slot stage (``flush_stage``;
    a branch for it in the () code cost the stock conv1d's channels_first call
    10-24 %)."""
    N, C, DP, HP, WP = geom
    sn, sc, sz, sy, sx = xstrides
    if out_cf is None:  # (pruned at compile time: None and a tuple are two specialisations)
        _, OD, OH, OW, K = out.shape
    else:
        _, K, OD, OH, OW = out.shape
    G, KD, KH, KW = kernel
    R, L = tile_shape(xf, tag)
    CG, KG, NKB, T = term_geometry(C, K, kernel, L)
    sd, sh, sw = strides
    dd, dh, dw = dilations
    bstep, tstep = wsteps
    offs = term_offsets(KD, KH, KW, CG, sc, sz, sy, sx, dd, dh, dw)
    outf = out.reshape(out.size)
    nch = (OW + wchunk - 1) // wchunk
    step = sw * sx  # between neighbouring output pixels' inputs
    SP = stage_pixels(R, 1, L, out_cf)
    tasks = N * OD * OH * nch
    per = (tasks + slots - 1) // slots
    stages = np.empty((slots, L * SP), xf.dtype)
    plane = OD * OH * OW
    for s in prange(slots):  # the threads' equal blocks of tasks, each with its stage
        stage = stages[s]
        for task in range(s * per, min(tasks, (s + 1) * per)):
            acc = acc_tile(xf, tag)
            n, od, oh, w0, w_end = row_task(task, nch, OD, OH, OW, wchunk)
            xrow = n * sn + od * sd * sz + oh * sh * sy  # the row's first input
            orow = ((n * OD + od) * OH + oh) * OW
            for g in range(G):
                for kb in range(NKB):
                    k0 = kb * L
                    kn = min(L, KG - k0)
                    kk = g * KG + k0
                    wb = (g * NKB + kb) * bstep
                    for ow0 in range(w0, w_end, R):
                        x0 = xrow + ow0 * step + g * CG * sc
                        last = min(R, w_end - ow0) - 1  # rows past it repeat the last pixel
                        for p in range(R):
                            row_zero(acc, p, xf, tag)
                        accumulate(acc, xf, offs, x0, 0, T, w, wb, tstep, step, last, R, tag)
                        if out_cf is not None:
                            cf_store(acc, last + 1, out_cf, stage, (ow0 - w0) % SP, SP, outf,
                                     (n * K + kk) * plane + orow - n * plane + ow0, plane, kn, b, kk, has_bias, tag)
                            if len(out_cf) > 0:
                                flush_stage(stage, SP, ow0, w0, w_end, last, R, 1, L, KG, kk, kn, outf,
                                            n * K * plane + orow - n * plane, plane)
                        else:
                            for p in range(last + 1):
                                row_store(acc, p, outf, (orow + ow0 + p) * K + kk, kn, b, kk, has_bias, tag)


@parallel_kernel
def long_kernel(xf, geom, xstrides, w, wsteps, kernel, b, has_bias, out, lattice, strides, dilations, pads, mode,
                wchunk, flat, slots, out_cf, tag):
    """``out = conv(x, w) + b`` for reductions of any length (module docstring).

    ``xf`` the unpadded input, flat: ``geom`` = (N, C, D, H, W), element (n, c,
    z, y, x) at ``n * sn + c * sc + z * sz + y * sy + x * sx`` for ``xstrides`` =
    (sn, sc, sz, sy, sx), so channels-last and channels-first inputs are read
    alike; ``pads`` its leading pads and ``mode`` what positions outside it read
    (``pad.PAD_MODES``). ``out`` (N,
    OD', OH', OW', K) holds the (OD, OH, OW) grid of ``lattice`` as in
    ``conv.conv_direct_kernel`` (a transposed conv's stride phases). Other operands
    as ``short_kernel``'s. Parallel over ``slots`` equal blocks of the tasks
    (n, od, oh, W-chunk of ``wchunk`` pixels, a multiple of the tile's rows),
    each block with its own patch buffer (and stage). ``flat``: tasks are chunks of ``wchunk``
    pixels of a whole (OH, OW) plane in row-major order instead, so a tile's
    pixels run on past a row's end into the next row (short rows: module
    docstring). ``out_cf`` as for ``short_kernel``; a
    channels-first ``out`` has no lattice and at most ``WIDE_TERMS`` terms (a tile
    is stored from its float32 partial sums)."""
    N, C, D, H, W = geom
    sn, sc, sz, sy, sx = xstrides
    if out_cf is None:
        _, ODF, OHF, OWF, K = out.shape
    else:
        _, K, ODF, OHF, OWF = out.shape
    OD, OH, OW, ed, eh, ew, fd, fh, fw = lattice
    G, KD, KH, KW = kernel
    pd, ph, pw = pads
    bstep, tstep = wsteps
    F = flush_terms(xf)  # 0: double precision sums in registers, no partial sums
    R, L = tile_shape(xf, tag)
    CG, KG, NKB, T = term_geometry(C, K, kernel, L)
    sd, sh, sw = strides
    dd, dh, dw = dilations
    offs = term_offsets(KD, KH, KW, CG, sc, sz, sy, sx, dd, dh, dw)
    # A border tile reads a patch: its window of KD * KH input rows of PW pixels,
    # gathered through the padding mode (zeros outside under zero padding), laid
    # out (KD * KH, PW, C). A tile across a row's end gathers each pixel's own
    # window (KD * KH rows of PK pixels), one after another, WIN elements apart.
    PW = (R - 1) * sw + (KW - 1) * dw + 1
    poffs = term_offsets(KD, KH, KW, CG, 1, KH * PW * C, PW * C, C, 1, 1, dw)
    PK = (KW - 1) * dw + 1
    WIN = KD * KH * PK * C
    qoffs = term_offsets(KD, KH, KW, CG, 1, KH * PK * C, PK * C, C, 1, 1, dw)
    outf = out.reshape(out.size)
    TH, TW = (OH, OW) if flat is None else (1, OH * OW)  # the task grid's rows and their pixels
    nch = (TW + wchunk - 1) // wchunk
    zero = xf.dtype.type(0)
    line = LINE_BYTES // xf.itemsize
    tasks = N * OD * TH * nch
    per = (tasks + slots - 1) // slots
    patches = np.empty((slots, max(KD * KH * PW * C, R * WIN if flat is not None else 0)), xf.dtype)
    SP = stage_pixels(R, G, L, out_cf)
    stages = np.empty((slots, G * L * SP), xf.dtype)
    plane = ODF * OHF * OWF
    for s in prange(slots):  # the threads' equal blocks of tasks, each with its patch buffer
        patch = patches[s]
        stage = stages[s]
        for task in range(s * per, min(tasks, (s + 1) * per)):
            acc = acc_tile(xf, tag)
            part = acc_tile(xf, tag)
            wide = wide_tile(xf, tag)
            pix = numba.carray(index_buffer(tag), (R,))  # (flat) each tile pixel's input from x0
            n, od, oh, w0, w_end = row_task(task, nch, OD, TH, TW, wchunk)  # (flat: oh 0, w0 ... plane pixels)
            iz0 = od * sd - pd
            iy0 = oh * sh - ph
            z_in = iz0 >= 0 and iz0 + (KD - 1) * dd < D
            rows_in = z_in and iy0 >= 0 and iy0 + (KH - 1) * dh < H  # (whole-row tiles)
            orow = ((n * ODF + fd + od * ed) * OHF + fh + oh * eh) * OWF + fw  # pixel index of (od, oh, 0)
            # Filter blocks outermost (a block's weights stay in cache over the row),
            # then tiles, then groups (a tile's input, or its patch, serves them all).
            for kb in range(NKB):
                k0 = kb * L
                kn = min(L, KG - k0)
                for ow0 in range(w0, w_end, R):
                    last = min(R, w_end - ow0) - 1  # rows past it repeat the last pixel
                    cross = False
                    if flat is None:
                        if ow0 + R < w_end and out_cf is None:  # the next tile's output lines, fetched for writing
                            for g in range(G):
                                for p in range(min(R, w_end - ow0 - R)):
                                    nxt = (orow + (ow0 + R + p) * ew) * K + g * KG + k0
                                    for e in range(0, kn, line):
                                        prefetch_write(outf, nxt + e)
                        ix0 = ow0 * sw - pw
                        if sc == 1 and rows_in and ow0 + R < w_end:  # the next tile's input rows, into L2
                            nx = min(max(ix0 + R * sw, 0), W - 1)
                            span = (min(W, nx + PW) - nx) * sx
                            for kz in range(KD):
                                for ky in range(KH):
                                    a = n * sn + (iz0 + kz * dd) * sz + (iy0 + ky * dh) * sy + nx * sx
                                    for e in range(0, span, line):
                                        prefetch_l2(xf, a + e)
                        if rows_in and ix0 >= 0 and ix0 + last * sw + (KW - 1) * dw < W:
                            src, to, cstep, step = xf, offs, CG * sc, sw * sx
                            x0 = n * sn + iz0 * sz + iy0 * sy + ix0 * sx
                        else:
                            fill_patch(patch, xf, n * sn, (iz0, iy0, ix0), (KD, KH, PW), (C, D, H, W), xstrides,
                                       (dd, dh), mode, zero)
                            src, to, cstep, step = patch, poffs, CG, sw * C
                            x0 = 0
                    else:
                        src, to, cstep, x0, step, cross = flat_tile(
                            patch, pix, xf, offs, poffs, qoffs, ow0, last, OW, iz0, z_in, n * sn, (CG, C, D, H, W),
                            xstrides, (sh, sw), (dd, dh, dw), (ph, pw), (KD, KH, KW, PW, PK), mode, zero)
                        if ow0 + R < w_end and out_cf is None:
                            for p in range(min(R, w_end - ow0 - R)):
                                nxt = flat_pixel(orow, ow0 + R + p, OW, OWF, eh, ew) * K + k0
                                for g in range(G):
                                    for e in range(0, kn, line):
                                        prefetch_write(outf, nxt + g * KG + e)
                    for g in range(G):
                        kk = g * KG + k0
                        wb = (g * NKB + kb) * bstep
                        for p in range(R):
                            row_zero(acc, p, xf, tag)
                        if F:
                            for t0 in range(0, T, F):
                                accumulate_tile(acc, src, to, x0 + g * cstep, t0, min(t0 + F, T), w, wb, tstep,
                                                cross, pix, step, last, R, tag)
                                for p in range(R):
                                    row_spill(acc, part, p, t0 % WIDE_TERMS == 0, xf, tag)
                                if (t0 + F) % WIDE_TERMS == 0 and t0 + F < T:
                                    for p in range(R):
                                        row_spill(part, wide, p, t0 < WIDE_TERMS, xf, tag)
                        else:
                            accumulate_tile(acc, src, to, x0 + g * cstep, 0, T, w, wb, tstep, cross, pix, step, last,
                                            R, tag)
                        if out_cf is not None:  # (no lattice; flat: a plane's pixels ow0 ... are contiguous too)
                            cf_store(part if F else acc, last + 1, out_cf, stage, g * L * SP + (ow0 - w0) % SP, SP,
                                     outf, (n * K + kk) * plane + orow - n * plane + ow0, plane, kn, b, kk, has_bias,
                                     tag)
                            continue
                        for p in range(last + 1):
                            if flat is None:
                                o = (orow + (ow0 + p) * ew) * K + kk
                            else:
                                o = flat_pixel(orow, ow0 + p, OW, OWF, eh, ew) * K + kk
                            if F and T > WIDE_TERMS:
                                row_spill(part, wide, p, False, xf, tag)
                                row_store(wide, p, outf, o, kn, b, kk, has_bias, tag)
                            elif F:
                                row_store(part, p, outf, o, kn, b, kk, has_bias, tag)
                            else:
                                row_store(acc, p, outf, o, kn, b, kk, has_bias, tag)
                    if out_cf is not None and len(out_cf) > 0:
                        flush_stage(stage, SP, ow0, w0, w_end, last, R, G, L, KG, k0, kn, outf,
                                    n * K * plane + orow - n * plane, plane)


@njit(inline="always", **SERIAL)
def stage_pixels(R, G, L, out_cf):
    """Pixels of a task's run that the term kernels stage per filter before a
    channels-first ``out_cf`` store (``flush_stage``): a multiple of the tile's
    ``R`` rows, ``G * L`` filters' runs filling ``STAGE_ELEMS``; 0 where nothing
    is staged."""
    if out_cf is None or len(out_cf) == 0:
        return 0
    return max(R, (STAGE_ELEMS // (G * L)) // R * R)


@njit(inline="always", **SERIAL)
def flush_stage(stage, SP, ow0, w0, w_end, last, R, G, L, KG, k0, kn, outf, base, plane):
    """After the tile at ``ow0`` (its ``last + 1`` pixels) of the run ``w0 ...
    w_end``: where the stage is full or the run ends, each of the ``G`` groups'
    ``kn`` filters' staged pixels (``tile_store_transposed`` into ``stage`` with
    ``lane_step`` ``SP``) are copied as one run to its channels-first plane of
    ``outf``, ``base`` the offset of the run's first pixel in filter 0's plane,
    ``plane`` the planes' size; whole lines are written around the caches
    (``flush_run``). For large results (``out_cf`` (0,):
    ``_paths/direct.cf_arg``): a tile's transposed stores straight into
    ``outf`` reached every filter's plane for a few pixels each, partial lines
    read before they are written (16 x 64 x 16000 -> 64, k 2 dilation 8, 1
    thread: 80 -> 53 ms)."""
    if (ow0 - w0 + R) % SP != 0 and ow0 + R < w_end:
        return
    f0 = ow0 - (ow0 - w0) % SP  # the staged pixels f0 ... ow0 + last
    cnt = ow0 + last + 1 - f0
    for g in range(G):
        for j in range(kn):
            flush_run(stage, (g * L + j) * SP, outf, base + (g * KG + k0 + j) * plane + f0, cnt)
    store_fence()


@njit(inline="always", **SERIAL)
def flush_run(src, s0, dst, d0, count):
    """``dst[d0:d0 + count] = src[s0:s0 + count]``, the whole aligned lines of
    ``dst`` written non-temporally (``tile.stream_line``; none where ``dst``'s
    elements are not aligned to their size)."""
    line = LINE_BYTES // dst.itemsize
    addr = dst.ctypes.data + d0 * dst.itemsize
    head = count if addr % dst.itemsize else min(count, (-addr) % LINE_BYTES // dst.itemsize)
    for p in range(head):
        dst[d0 + p] = src[s0 + p]
    p = head
    while p + line <= count:
        stream_line(src, s0 + p, dst, d0 + p)
        p += line
    for q in range(p, count):
        dst[d0 + q] = src[s0 + q]


@njit(inline="always", **SERIAL)
def cf_store(tile, pixels, out_cf, stage, so, SP, outf, o, plane, kn, b, kk, has_bias, tag):
    """A tile's channels-first results (``tile_store_transposed``): staged (a
    non-empty tuple ``out_cf``, its length part of the type), into ``stage`` from
    ``so``, each filter's pixels ``SP`` apart (``flush_stage`` copies them on);
    else into ``outf`` from ``o``, each filter's plane ``plane`` on."""
    if len(out_cf) > 0:
        tile_store_transposed(tile, pixels, stage, so, SP, kn, b, kk, has_bias, tag)
    else:
        tile_store_transposed(tile, pixels, outf, o, plane, kn, b, kk, has_bias, tag)


@parallel_kernel
def pointwise_kernel(xf, geom, strides, w, b, has_bias, out, wchunk, slots, stream, tag):
    """``out = x @ W + b`` per output pixel: a 1 x 1 layer of one group without
    padding as matrix products over runs of its pixels (``xf`` the (N, D, H, W,
    C) input, flat, ``geom`` = (D, H, W, C); ``out`` (N, OD, OH, OW, K); ``w``
    packed (NKB, C, lanes) as for ``long_kernel``; tasks of ``wchunk`` pixels of
    one output row, in ``slots`` equal blocks). A stride-1 layer comes as one
    row of all its pixels (``_paths/direct.flat_pointwise``); a strided one
    reads every ``sw``-th pixel of its rows. The terms, their order and the
    three levels of partial sums are ``long_kernel``'s on the same layer, so the
    results are the same bits; the loop nest is that of a plain matrix product.

    Why a kernel of its own: ``long_kernel``'s generality (padding modes,
    patches, groups, tiles across row ends, the lattice) cost it 10-20 %
    on 1 x 1 layers, though its hot loop is the same 16 FMAs, 4 weight loads and
    4 broadcasts per term; a loop nest without it ran as fast as a bare
    register-tile product (2 threads, interleaved, medians of 11: 8 x 56 x 56 x
    128 -> 128 5.0-5.4 -> 4.3-4.4 ms, 8 x 28 x 28 x 256 -> 256 4.3 -> 3.8-3.9;
    a stride-2 8 x 28 x 28 x 128 -> 256 whole call 0.73 -> 0.65 ms).

    A non-empty tuple ``stream``: results streamed around the caches
    (``product_rows``; ``out`` 64-byte aligned, ``K`` filling whole lines), each
    task's fenced."""
    D, H, W, C = geom
    sd, sh, sw = strides
    N, OD, OH, OW, K = out.shape
    wf = w.reshape(w.size)
    outf = out.reshape(out.size)
    _, L = tile_shape(xf, tag)
    nch = (OW + wchunk - 1) // wchunk
    tasks = N * OD * OH * nch
    per = (tasks + slots - 1) // slots
    for s in prange(slots):
        for task in range(s * per, min(tasks, (s + 1) * per)):
            n, od, oh, first, last = row_task(task, nch, OD, OH, OW, wchunk)
            x0 = (((n * D + od * sd) * H + oh * sh) * W + first * sw) * C
            o0 = (((n * OD + od) * OH + oh) * OW + first) * K
            product_rows(xf, x0, sw * C, last - first, C, wf, (C * L, L), b, has_bias, outf, (o0, K, K, 0), stream, tag)
            if len(stream) > 0:
                store_fence()


@parallel_kernel
def product_cf_kernel(xf, P, wt, b, has_bias, out, pchunk, slots, stream, tag):
    """``out[n, k, p] = sum_c wt[k, c] * x[n, c, p] + b[k]``: a 1 x 1 layer of one
    group at stride 1 without padding on channels-first data, read and written as
    the user lays it out (``xf`` the (N, C, P) input flat, P = D * H * W pixels;
    ``wt`` the (K, C) transposed weights, flat; ``b`` each filter's bias ``L``
    times in a row, ``L`` the lanes of ``tag``'s tile; ``out`` (N, K, P)).

    Per run of ``L`` pixels: its ``C`` channels are copied into the slot's buffer
    (contiguous, ``L`` apart), then ``product_rows`` runs with filters as the
    rows and the run as the lanes: per term (channel) ``R`` weight broadcasts and
    one vector load per lane vector. (Read in place, the run's channels lie a
    plane apart: at 56 x 56 pixels that stride put the 256 rows of a run in 16 of
    L1's 64 sets, and the product ran at half the speed it did on 28 x 28.) The
    terms, their order and the partial sums are ``pointwise_kernel``'s on the
    same layer, so the results are the channels-last results' bits. Tasks are
    chunks of ``pchunk`` pixels (a multiple of ``L``) of one image, in ``slots``
    equal blocks; each run prefetches the next one's channels into L2. A
    non-empty tuple ``stream``: whole runs' results stored around the caches
    (``product_rows``; ``out`` 64-byte aligned and ``P`` filling whole lines),
    each task's fenced."""
    N, K, _ = out.shape
    C = wt.size // K
    _, L = tile_shape(xf, tag)
    line = LINE_BYTES // xf.itemsize
    outf = out.reshape(out.size)
    nch = (P + pchunk - 1) // pchunk
    tasks = N * nch
    per = (tasks + slots - 1) // slots
    runs = np.zeros((slots, C * L), xf.dtype)
    for s in prange(slots):
        run = runs[s]
        for task in range(s * per, min(tasks, (s + 1) * per)):
            n = task // nch
            p1 = min(P, (task % nch + 1) * pchunk)
            x0 = n * C * P
            for p in range(task % nch * pchunk, p1, L):
                kn = min(L, p1 - p)
                if p + L < p1:
                    for c in range(C):
                        for e in range(0, L, line):
                            prefetch_l2(xf, x0 + c * P + p + L + e)
                if kn == L:
                    for c in range(C):
                        for e in range(0, L, line):
                            copy_line(xf, x0 + c * P + p + e, run, c * L + e)
                    product_rows(wt, 0, C, K, C, run, (L, L), b, has_bias, outf, (n * K * P + p, P, L, L), stream, tag)
                else:  # the image's last, partial run (its lines stored as usual)
                    for c in range(C):
                        for j in range(kn):
                            run[np.uint64(c * L + j)] = at(xf, x0 + c * P + p + j)
                    product_rows(wt, 0, C, K, C, run, (L, L), b, has_bias, outf, (n * K * P + p, P, kn, L), (), tag)
            if len(stream) > 0:
                store_fence()


@njit(inline="always", **SERIAL)
def product_rows(src, s0, step, n, C, w, wsteps, b, has_bias, outf, ogeom, stream, tag):
    """``n`` rows of a matrix product over ``C`` terms: row ``i``'s terms at
    ``src[s0 + i * step:]`` (broadcast), against vectors of ``w``: lane block
    ``kb``'s term ``t`` at ``w[kb * wblk + t * wstep:]`` for ``wsteps`` = (wblk,
    wstep); row ``i``'s ``kcount`` results (+ ``b``) to ``outf[obase + i * ostride:]``
    for ``ogeom`` = (obase, ostride, kcount, bstep), the bias lanes at ``b[k0:]``
    (``bstep`` 0: a bias per lane) or ``b[i * bstep:]`` (a bias per row, repeated
    across its lanes). Lane blocks outermost (a block's vectors stay in cache over
    the rows), then tiles of ``R`` rows.

    ``pointwise_kernel``'s product: rows are pixels (their channels the terms),
    lanes filters (``w`` the packed weights). The channels-first separable kernel's:
    rows are filters (the transposed weights), lanes pixels (``w`` its depthwise
    stage's channels-first result). A non-empty tuple ``stream`` (its length is
    part of the type: a copy of the loop each way) stores the results around the
    caches (``tile.row_stream``: rows 64-byte aligned and filling whole lines; the
    caller fences) instead of fetching each tile's output lines for writing ahead
    of it."""
    streaming = len(stream) > 0
    F = flush_terms(src)  # 0: double precision sums in registers
    R, L = tile_shape(src, tag)
    wblk, wstep = wsteps
    obase, ostride, kcount, bstep = ogeom
    line = LINE_BYTES // src.itemsize
    acc = acc_tile(src, tag)
    part = acc_tile(src, tag)
    wide = wide_tile(src, tag)
    for kb in range((kcount + L - 1) // L):
        k0 = kb * L
        kn = min(L, kcount - k0)
        wb = kb * wblk
        for q in range(0, n, R):
            last = min(R, n - q) - 1  # rows past it repeat the last pixel
            if q + R < n:  # the next tile: its output lines for writing, its input into L2
                for p in range(min(R, n - q - R)):
                    if not streaming:  # (streamed lines are never read)
                        for e in range(0, kn, line):
                            prefetch_write(outf, obase + (q + R + p) * ostride + k0 + e)
                    for e in range(0, C, line):
                        prefetch_l2(src, s0 + (q + R + p) * step + e)
            x0 = s0 + q * step
            for p in range(R):
                row_zero(acc, p, src, tag)
            if F == 0:
                _product_terms(acc, src, x0, 0, C, w, wb, wstep, step, last, R, tag)
            elif C <= WIDE_TERMS:  # the general loop below without its widening: that code in the loop
                # cost 3-10 % (8 x 56 x 56 x 128 -> 128: 4.9-5.6 against 5.2-6.0 ms, alternating processes)
                for t0 in range(0, C, F):
                    _product_terms(acc, src, x0, t0, min(t0 + F, C), w, wb, wstep, step, last, R, tag)
                    for p in range(R):
                        row_spill(acc, part, p, t0 == 0, src, tag)
            else:
                for t0 in range(0, C, F):
                    _product_terms(acc, src, x0, t0, min(t0 + F, C), w, wb, wstep, step, last, R, tag)
                    for p in range(R):
                        row_spill(acc, part, p, t0 % WIDE_TERMS == 0, src, tag)
                    if (t0 + F) % WIDE_TERMS == 0 and t0 + F < C:
                        for p in range(R):
                            row_spill(part, wide, p, t0 < WIDE_TERMS, src, tag)
            for p in range(last + 1):
                o = obase + (q + p) * ostride + k0
                bo = k0 if bstep == 0 else (q + p) * bstep
                if F == 0:
                    put_row(acc, p, outf, o, kn, b, bo, has_bias, stream, tag)
                elif C <= WIDE_TERMS:
                    put_row(part, p, outf, o, kn, b, bo, has_bias, stream, tag)
                else:
                    row_spill(part, wide, p, False, src, tag)
                    put_row(wide, p, outf, o, kn, b, bo, has_bias, stream, tag)


def put_row(tile, p, outf, o, kn, b, k0, has_bias, stream, tag):
    """Row ``p`` of ``tile`` (+ bias) to ``outf[o:o + kn]``: ``row_stream`` where
    the tuple ``stream`` is non-empty, else ``row_store``."""


@overload(put_row, inline="always")
def _put_row_overload(tile, p, outf, o, kn, b, k0, has_bias, stream, tag):
    # (chosen while typing: both stores in the code, one of them dead, took each
    # specialisation of the separable kernel 0.8 s longer to compile)
    if len(stream):
        return lambda tile, p, outf, o, kn, b, k0, has_bias, stream, tag: row_stream(tile, p, outf, o, kn, b, k0,
                                                                                     has_bias, tag)
    return lambda tile, p, outf, o, kn, b, k0, has_bias, stream, tag: row_store(tile, p, outf, o, kn, b, k0,
                                                                                has_bias, tag)


@njit(inline="always", **SERIAL)
def _product_terms(acc, xf, x0, t0, t1, w, wb, wstep, step, last, R, tag):
    """Terms ``t0 : t1`` of a tile of ``product_rows`` into ``acc``: row ``p``
    reads ``xf[x0 + min(p, last) * step + t]``, against the vector at ``w[wb + t * wstep]``."""
    for t in range(t0, t1):
        wo = wb + t * wstep
        for p in range(R):
            row_fma(acc, p, at(xf, x0 + min(p, last) * step + t), w, wo, tag)


@njit(inline="always", **SERIAL)
def flat_pixel(orow, q, OW, OWF, eh, ew):
    """The result's pixel index of a flat task's plane pixel ``q`` (row-major over
    (OH, OW)), from ``orow``, the index of the plane's pixel (0, 0)."""
    return orow + q // OW * eh * OWF + q % OW * ew


@njit(inline="always", **SERIAL)
def flat_tile(patch, pix, xf, offs, poffs, qoffs, q, last, OW, iz0, z_in, base, geom, xstrides, strides, dilations,
              pads, window, mode, zero):
    """Where a flat task's tile of plane pixels ``q ... q + last`` reads its input:
    (src, term offsets, group step, x0, step, cross) for ``accumulate_tile``. In
    one row, as ``long_kernel``'s row tiles: in place, or its window's patch.
    Across a row's end (``cross``): each pixel's input in place (``pix`` from
    ``x0``), or, when a window leaves the input, each pixel's own window gathered
    into ``patch`` through the padding mode, one after another. ``z_in``: the
    task's KD input planes from ``iz0`` all lie inside the input."""
    CG, C, D, H, W = geom
    _, sc, sz, sy, sx = xstrides
    sh, sw = strides
    dd, dh, dw = dilations
    ph, pw = pads
    KD, KH, KW, PW, PK = window
    R = pix.size
    iy0 = q // OW * sh - ph
    ix0 = q % OW * sw - pw
    if q % OW + last < OW:  # in one row
        if z_in and iy0 >= 0 and iy0 + (KH - 1) * dh < H and ix0 >= 0 and ix0 + last * sw + (KW - 1) * dw < W:
            return xf, offs, CG * sc, base + iz0 * sz + iy0 * sy + ix0 * sx, sw * sx, False
        fill_patch(patch, xf, base, (iz0, iy0, ix0), (KD, KH, PW), (C, D, H, W), xstrides, (dd, dh), mode, zero)
        return patch, poffs, CG, 0, sw * C, False
    inside = z_in
    for p in range(last + 1):
        iy = (q + p) // OW * sh - ph
        ix = (q + p) % OW * sw - pw
        inside = inside and iy >= 0 and iy + (KH - 1) * dh < H and ix >= 0 and ix + PK <= W
    if inside:
        for p in range(R):
            qp = q + min(p, last)
            pix[p] = (qp // OW * sh - ph) * sy + (qp % OW * sw - pw) * sx
        return xf, offs, CG * sc, base + iz0 * sz, 0, True
    win = KD * KH * PK * C
    for p in range(last + 1):
        fill_patch(patch[p * win:], xf, base, (iz0, (q + p) // OW * sh - ph, (q + p) % OW * sw - pw), (KD, KH, PK),
                   (C, D, H, W), xstrides, (dd, dh), mode, zero)
    for p in range(R):
        pix[p] = min(p, last) * win
    return patch, qoffs, CG, 0, 0, True


@njit(inline="always", **SERIAL)
def accumulate(acc, src, to, x0, t0, t1, w, wb, tstep, step, last, R, tag):
    """Terms ``t0 : t1`` of the tile's reductions into ``acc``: per term one
    broadcast and one vector FMA per row, pixel ``p`` reading ``src`` at ``x0 +
    to[t] + min(p, last) * step`` against the weight row at ``wb + t * tstep``."""
    for t in range(t0, t1):
        o = x0 + at(to, t)
        wo = wb + t * tstep
        for p in range(R):
            row_fma(acc, p, at(src, o + min(p, last) * step), w, wo, tag)


@njit(inline="always", **SERIAL)
def accumulate_tile(acc, src, to, x0, t0, t1, w, wb, tstep, cross, pix, step, last, R, tag):
    """``accumulate``, or where the tile runs across a row's end (``cross``) the
    same with pixel ``p`` reading at ``x0 + to[t] + pix[p]``. (The long kernel's
    tiles within a row keep ``accumulate``: an index per pixel measured 3-7 %
    slower on 8 x 56 x 56 x 128 -> 128 1 x 1, and the short kernel's few-term
    tiles 10-40 %.)"""
    if cross:
        for t in range(t0, t1):
            o = x0 + at(to, t)
            wo = wb + t * tstep
            for p in range(R):
                row_fma(acc, p, at(src, o + pix[p]), w, wo, tag)
    else:
        accumulate(acc, src, to, x0, t0, t1, w, wb, tstep, step, last, R, tag)


@njit(**SERIAL)
def fill_patch(patch, xf, base, origin, window, geom, xstrides, dilations, mode, zero):
    """``patch`` (KD * KH, PW, C) = the input window from ``origin`` (iz0, iy0,
    ix0) of the image at flat offset ``base`` of ``xf``, ``window`` = (KD, KH, PW)
    rows ``dilations`` (dd, dh) apart, each position mapped through ``mode`` (zero
    padding: 0 outside the input); ``geom`` (C, D, H, W) and ``xstrides`` as for
    ``long_kernel``."""
    iz0, iy0, ix0 = origin
    KD, KH, PW = window
    C, D, H, W = geom
    _, sc, sz, sy, sx = xstrides
    dd, dh = dilations
    for a in range(KD):
        iz = source_index(iz0 + a * dd, D, mode)
        for bb in range(KH):
            iy = source_index(iy0 + bb * dh, H, mode)
            r = (a * KH + bb) * PW
            for j in range(PW):
                ix = source_index(ix0 + j, W, mode)
                dst = (r + j) * C
                if iz < 0 or iy < 0 or ix < 0:
                    for c in range(C):
                        patch[np.uint64(dst + c)] = zero
                    continue
                s0 = base + iz * sz + iy * sy + ix * sx
                if sc == 1:  # channels-last: a contiguous run
                    for c in range(C):
                        patch[np.uint64(dst + c)] = at(xf, s0 + c)
                else:
                    for c in range(C):
                        patch[np.uint64(dst + c)] = at(xf, s0 + c * sc)
