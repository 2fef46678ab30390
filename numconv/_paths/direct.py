"""The direct path: pack weights, pad (non-zero modes only), launch a kernel.

Five kernels share the spec. The term-loop kernels (``_kernels/short.py``) compute
dense and grouped convolutions: the short-reduction one for those whose outputs
sum at most 64 terms (first layers, few channels), on a padded copy of the
input, and the long-reduction one for the rest in single precision, reading the
input in place. The register-tile kernel (``_kernels/conv.py``) computes the
rest (double precision, and the output lattices of transposed convolutions).
The channel-vectorised depthwise kernel (``_kernels/depthwise.py``) computes
those whose every group has one input channel and few filters, and the
pixel-vectorised narrow kernel (``_kernels/narrow.py``) ungrouped convolutions
with at most ``MAX_FILTERS`` filters at stride 1 along W, on a channels-first
padded copy of the input: these two exist where the other kernels, whose lanes
are filters, would spend most of them on zero padding.
"""
import functools
import math
from dataclasses import replace

import numba
import numpy as np

from .. import _memory
from .._config import kernel_lock
from .._kernels.act import bias_activation_kernel, fused_code
from .._kernels.conv import PACK_SERIAL, conv_direct_kernel, pack_kernel, pack_kernel_serial
from .._kernels.dot import dot_kernel, dot_weights
from .._kernels.depthwise import (depthwise_cf_kernel, depthwise_kernel, depthwise_rows_kernel, depthwise_slide_kernel,
                                  runs_mode)
from .._kernels.layout import swap_last_axes
from .._kernels.narrow import MAX_FILTERS, narrow_kernel
from .._kernels.pad import PAD_MODES, pad_kernel, pad_rows_kernel, pad_rows_serial
from .._kernels.separable import separable_cf_kernel, separable_kernel
from .._kernels.short import (MAX_TERMS, WIDE_TERMS, long_kernel, pointwise_kernel, product_cf_kernel,
                              short_kernel)
from .._kernels.tile import FLUSH_TERMS, LINE_BYTES, VARIANTS, choose_variant, variant_lanes, variant_tag
from .._spec import per_spec

#: the tile variant of the narrow kernel (4 rows x 256 bytes of output pixels)
NARROW_VARIANT = 1


def pack_weights(w5, groups, lanes):
    """(KD, KH, KW, Cg, K) -> (G, NKB, KD, KH, KW, Cg, lanes), each group's filters
    in blocks of ``lanes`` zero-filled past ``K // groups`` (``conv.pack_kernel``),
    in a ``_memory.scratch`` buffer: the packed weights live for the current call."""
    KD, KH, KW, CG, K = w5.shape
    nkb = -(-(K // groups) // lanes)
    out = _memory.scratch((groups, nkb, KD, KH, KW, CG, lanes), w5.dtype)
    w2 = np.ascontiguousarray(w5).reshape(KD * KH * KW * CG, K)
    if w2.size <= PACK_SERIAL:
        pack_kernel_serial(w2, out.reshape(groups, nkb, KD * KH * KW * CG, lanes))
        return out
    with kernel_lock():
        pack_kernel(w2, out.reshape(groups, nkb, KD * KH * KW * CG, lanes))
    return out


@per_spec
def w_chunk(spec, rows, threads, ow=None, n_rows=None):
    """Pixels along W per task (a multiple of ``rows``): whole rows when there are
    enough rows to balance the threads, else rows split so that there are >= 8
    tasks per thread. ``ow``: the row's length in other units (default its output
    pixels); ``n_rows``: how many such rows (default the output's)."""
    if n_rows is None:
        n_rows = spec.batch * spec.out_spatial[0] * spec.out_spatial[1]
    ow = spec.out_spatial[2] if ow is None else ow
    want = 8 * threads
    chunks = 1 if n_rows >= want else min(-(-want // n_rows), -(-ow // (4 * rows)))
    chunk = -(-ow // max(chunks, 1))
    return -(-chunk // rows) * rows


#: Depthwise multipliers up to this use the depthwise kernel (the tile kernel
#: would fill at most MAX_DEPTHWISE_M of its lanes).
MAX_DEPTHWISE_M = 8


@per_spec
def is_depthwise(spec):
    """One input channel per group and a small depth multiplier."""
    return (spec.channels == spec.groups and spec.groups > 1
            and spec.filters // spec.groups <= MAX_DEPTHWISE_M)


def padded_sizes(spec):
    """The spatial sizes of the input padded by ``spec.pads`` (D, H, W)."""
    return tuple(L + b + a for L, (b, a) in zip(spec.in_spatial, spec.pads))


def padded(spec, x5, scratch=False, serial=False):
    """``x5`` padded on its spatial axes by ``spec.pads`` with ``spec.padding_mode``
    (``x5`` itself when there are no pads), in one parallel pass (``pad_rows_kernel``;
    with ``serial``, on the calling thread: the transform paths' copies). With
    ``scratch`` the copy is a ``_memory.scratch`` buffer (no fresh pages): for an
    operand used within the current call only."""
    if not has_pads(spec):
        return x5
    x5 = np.ascontiguousarray(x5)
    shape = (x5.shape[0],) + padded_sizes(spec) + (x5.shape[-1],)
    xp = _memory.scratch(shape, x5.dtype) if scratch else np.empty(shape, x5.dtype)
    pads = tuple(p[0] for p in spec.pads)
    if serial:
        pad_rows_serial(x5, xp, pads, PAD_MODES[spec.padding_mode], 1)
        return xp
    rows = math.prod(shape[:3])
    chunks = min(shape[3], -(-4 * numba.get_num_threads() // rows))
    with kernel_lock():
        pad_rows_kernel(x5, xp, pads, PAD_MODES[spec.padding_mode], chunks)
    return xp


@per_spec
def has_pads(spec):
    """Whether any spatial axis of ``spec`` is padded."""
    return any(any(p) for p in spec.pads)


def reduction_terms(spec):
    """Terms each output sums: channels per group x kernel taps."""
    return spec.channels // spec.groups * math.prod(spec.kernel_spatial)


@per_spec
def is_short(spec):
    """Whether the short-reduction kernel (``_kernels/short.py``) computes ``spec``:
    at most ``MAX_TERMS`` terms per output (channels per group x kernel taps), and
    in double precision only on the 8-row tiles (<= 16 filters per group). The
    4-row double-precision tile lost to the tile kernel's (2 threads, min of 20:
    8 x 56 x 56 x 64 -> 64 1 x 1 1.3 vs 2.0 ms, 16 x 500 x 9 -> 128 k 7 0.66 vs
    0.76), where every float32 case and the 8-row float64 ones won (1000 x 50 x 1
    -> 16 k 5 float64: 0.19-0.37 vs 0.12-0.19 ms)."""
    single = np.dtype(spec.dtype) in (np.float32, np.complex64)
    return reduction_terms(spec) <= MAX_TERMS and not copy_bound(spec) and (
        single or choose_variant(spec.filters // spec.groups, spec.dtype) != 1)


#: bytes of padded copy per multiply-add above which ``copy_bound`` holds
COPY_BYTES_PER_MAC = 0.5


def copy_bound(spec):
    """Whether a padded copy of the input would cost more than the kernels that read
    one (short, dot) save over reading the input in place (the long and tile
    kernels, or the dot kernel, gather their border tiles' windows through the
    padding mode): more than ``COPY_BYTES_PER_MAC`` bytes per multiply-add,
    a large input that strides or few filters leave mostly unread. The copy costs
    ~0.06 ms per MB here (2 threads, ``pad_rows_kernel``), the long kernel 2-50 ps
    more per multiply-add than the short one. Measured (2 threads, min of 21, short
    with its copy vs long): 2 x 73 x 146 x 219 x 8 -> 4, 2 x 1 x 2, strides (1, 2,
    3), groups 2 (3.1 B per MAC) 17.4 vs 11.3 ms; 4 x 46 x 46 x 92 x 2 -> 16 2 x 3
    x 2 (0.02) 2.0 vs 3.3; 2 x 66964 x 2 -> 8 k 7 (0.07) 0.33 vs 0.58."""
    if not has_pads(spec):
        return False
    copy = spec.batch * math.prod(padded_sizes(spec)) * spec.channels * np.dtype(spec.dtype).itemsize
    macs = spec.batch * math.prod(spec.out_spatial) * spec.filters * reduction_terms(spec)
    return copy > COPY_BYTES_PER_MAC * macs


def run_short(spec, x, w5, b, out5, channels_first=False, out_cf=False):
    """The short-reduction kernel on a padded scratch copy of the input (``x``
    itself when there are no pads): channels-last (``padded``), or with
    ``channels_first`` the user's (N, C, *spatial) array and a channels-first copy
    (``padded_channels_first``). The canonical kernel serves as its weights when
    one group's filters fill whole tile rows. With ``out_cf``, ``out5`` is
    channels-first (N, K, OD, OH, OW)."""
    variant, geom, xstrides, kernel = _terms_plan(spec, channels_first, True)
    wf, steps = term_weights(spec, w5, variant, canonical=True)
    if not channels_first:
        xf = padded(spec, x, scratch=True).reshape(-1)
    elif has_pads(spec):
        xf = padded_channels_first(spec, x, True)[0]
    else:
        xf = np.ascontiguousarray(x, spec.dtype).reshape(-1)
    return _run_terms(spec, b, out5, variant, lambda bk, has_bias: short_kernel(
        xf, geom, xstrides, wf, steps, kernel, bk, has_bias, out5, spec.strides, spec.dilations,
        w_chunk(spec, VARIANTS[variant][0], numba.get_num_threads()), numba.get_num_threads(),
        cf_arg(spec) if out_cf else None, variant_tag(variant)))


#: the term kernels' 8 x 32 float32 tile against their 4 x 64 one, both fully used
#: (8 x 28 x 28 x 128 -> 128 3 x 3 same, 2 threads, best of 9: 10.1 vs 8.6 ms)
EIGHT_ROW_SPEED = 0.87


@per_spec
def terms_variant(spec):
    """The term kernels' tile: ``choose_variant``'s, except in float32: at most 8
    filters per group take the 8 x 8 tile (``tile.VARIANTS[4]``: 256-bit rows, all
    lanes in use where the 8 x 16 one fills half; 2 threads, best of 9: 8 x 14 x 14
    x 256 groups 32 3 x 3 0.86 -> 0.73 ms, 8 x 56 x 56 x 64 groups 8 2.73 -> 2.32, 8
    x 14 x 14 x 128 -> 8 5 x 5 1.04 -> 0.86, 16 x 1000 x 64 -> 8 k 5 0.84 -> 0.67:
    a 256-bit FMA does half a 512-bit one's work in half its issue slots on cores
    that split 512-bit FMAs, and the broadcasts then bound it); and layers
    whose filters or output rows fill the 4 x 64 tile worse than the 8 x 32 one
    (by ``EIGHT_ROW_SPEED``) take the latter. 96 filters fill 3/4 of two 64-lane
    blocks and all of three 32-lane ones: 16 x 13 x 13 x 192 -> 96 7 x 7 37.3 ->
    29.0 ms, 8 x 14 x 14 x 256 -> 80 3 x 3 5.0 -> 4.0, 32 x 100 x 128 -> 96 k 7
    3.4 -> 2.7 (2 threads, best of 9)."""
    kg = spec.filters // spec.groups
    variant = choose_variant(kg, spec.dtype)
    if spec.dtype != np.float32:
        return variant
    if variant == 3:
        return 4 if kg <= variant_lanes(4, spec.dtype) else 3
    if variant != 1:
        return variant

    def use(v):  # the share of the tile's lanes and rows that hold outputs
        return filled(kg, variant_lanes(v, spec.dtype)) * filled(spec.out_spatial[2], VARIANTS[v][0])
    return 2 if EIGHT_ROW_SPEED * use(2) > use(1) else 1


@per_spec
def _terms_plan(spec, channels_first, padded_input):
    """The term kernels' static arguments: (variant, the input's geometry (N, C,
    D, H, W), its element strides, the kernel (G, KD, KH, KW)), the input padded
    (``run_short``) or as it is (``run_long``)."""
    spatial = padded_sizes(spec) if padded_input else spec.in_spatial
    return (terms_variant(spec),
            (spec.batch, spec.channels, *spatial), element_strides(spec.channels, spatial, channels_first),
            (spec.groups,) + tuple(spec.kernel_spatial))


@per_spec
def is_long(spec):
    """Whether the long-reduction kernel (``_kernels/short.py``) computes ``spec``
    (after ``is_short``): single precision, where its three-level partial sums
    replace the tile kernel's widening every 64 terms. Double precision has no
    partial sums to save, and there it was no faster than the tile kernel (2
    threads, min of 20: 8 x 56 x 56 x 64 -> 64 3 x 3 same 7.8 vs 7.4 ms, 1 x 1
    1.1 vs 1.0 ms)."""
    return np.dtype(spec.dtype) in (np.float32, np.complex64)


def run_long(spec, x, w5, b, out5, lattice=None, channels_first=False, out_cf=False):
    """The long-reduction kernel on the unpadded input (border tiles gather their
    window through the padding mode), with packed weights; ``lattice`` as for
    ``run``. ``x`` is canonical channels-last (N, D, H, W, C), or with
    ``channels_first`` the user's (N, C, *spatial) array, read as it lies. With
    ``out_cf``, ``out5`` is channels-first (N, K, OD, OH, OW) (no ``lattice``, at
    most ``WIDE_TERMS`` terms: ``long_kernel``)."""
    if out_cf and (lattice is not None or reduction_terms(spec) > WIDE_TERMS):
        raise AssertionError("long_kernel writes channels-first results without a lattice, up to WIDE_TERMS terms")
    if lattice is None and not channels_first and not out_cf and is_product(spec):
        return run_product(spec, x, w5, b, out5)
    variant, geom, xstrides, kernel = _terms_plan(spec, channels_first, False)
    wf, steps = term_weights(spec, w5, variant, canonical=False)
    threads = numba.get_num_threads()
    if channels_first:
        x = np.ascontiguousarray(x, spec.dtype)
    rows = VARIANTS[variant][0]
    flat = lattice is None and is_flat(spec, rows)
    OD, OH, OW = spec.out_spatial
    chunk = w_chunk(spec, rows, threads, OH * OW, spec.batch * OD) if flat else w_chunk(spec, rows, threads)
    return _run_terms(spec, b, out5, variant, lambda bk, has_bias: long_kernel(
        x.reshape(-1), geom, xstrides, wf, steps, kernel, bk, has_bias, out5, output_grid(spec, lattice), spec.strides,
        spec.dilations, tuple(p[0] for p in spec.pads), PAD_MODES[spec.padding_mode], chunk, True if flat else None,
        threads, cf_arg(spec) if out_cf else None, variant_tag(variant)))


@per_spec
def is_product(spec):
    """Whether ``pointwise_kernel`` computes ``spec`` (for ``run_long``): a 1 x 1
    kernel without padding, one group, single precision; at stride 1 only as one
    row of pixels (``flat_pointwise``'s form, or a layer that is one row
    already), and strided where its rows fill the tiles (else the long
    kernel's tiles run across row ends: ``is_flat``)."""
    if not (spec.dtype == np.float32 and spec.groups == 1 and spec.kernel_spatial == (1, 1, 1)
            and not has_pads(spec)):
        return False
    if spec.strides == (1, 1, 1):
        return spec.batch == 1 and spec.in_spatial[:2] == (1, 1)
    return not is_flat(spec, VARIANTS[terms_variant(spec)][0])


def run_product(spec, x, w5, b, out5):
    """``pointwise_kernel`` on ``spec`` (``is_product``), weights packed as for
    ``run_long``; large layers' results streamed around the caches (``streams``:
    2 threads, alternating, 8 x 56 x 56 x 128 -> 128 5.7 -> 4.9 ms, 8 x 40 x 40
    x 128 -> 256 5.2 -> 4.6)."""
    variant = terms_variant(spec)
    wf, _ = term_weights(spec, w5, variant, canonical=False)
    threads = numba.get_num_threads()
    stream = stream_arg(spec, out5)
    return _run_terms(spec, b, out5, variant, lambda bk, has_bias: pointwise_kernel(
        np.ascontiguousarray(x).reshape(-1), tuple(spec.in_spatial) + (spec.channels,), spec.strides, wf, bk,
        has_bias, out5, w_chunk(spec, VARIANTS[variant][0], threads), threads, stream, variant_tag(variant)))


#: ``long_kernel``'s tiles run across row ends (``flat``) when whole-row tiles
#: would fill less than this share of their rows with output pixels
FLAT_BELOW = 0.85


def is_flat(spec, rows):
    """Whether ``run_long`` tiles the (OH, OW) planes in row-major order, a tile
    running on past a row's end (``long_kernel``'s ``flat``): rows short against the
    tile's ``rows`` pixels, so whole-row tiles would idle (OW = 17 in tiles of 8
    pixels: 17 of 24 rows busy), and more than one row per plane."""
    OD, OH, OW = spec.out_spatial
    return OH > 1 and filled(OW, rows) < FLAT_BELOW and filled(OH * OW, rows) > filled(OW, rows)


#: Terms per output up to which the term kernels read channels_first input in place
CF_MAX_TERMS = 256


def is_terms_channels_first(spec):
    """Whether ``run_terms_channels_first`` reads a channels_first ``spec``'s input
    as the user laid it out and writes its channels_first result (no transpose of
    either): the short kernel, or the long one up to ``CF_MAX_TERMS`` terms.

    Read in place, each term of a tile reads its own cache line (a channel plane's
    row); a channels-last copy packs 16 channels into one. So it pays while a
    tile's terms fit in L1 with room to spare: at most ``CF_MAX_TERMS`` (64 B x
    256 = 16 KiB). Measured cf time (2 threads, median of 7) with the transposed
    copy -> in place: wavenet 16 x 64 x 16000 k 2 (128 terms) 27.8 -> 16.3 ms, stem
    (147) 0.86 -> 0.76, groups 4 (144) 2.49 -> 2.38, pointwise (256) 2.59 -> 2.51;
    but strided conv1d (576 terms) 14.2 -> 16.2 and 3-D 3 x 3 x 3 x 32 (864) 4.6 ->
    6.5."""
    if spec.data_format != "channels_first" or is_depthwise(spec) or is_narrow(spec):
        return False
    return (is_product_channels_first(spec) or is_short(spec)
            or (is_long(spec) and reduction_terms(spec) <= CF_MAX_TERMS))


#: ``product_cf_kernel``'s tile: 8 filters x 32 pixels (a run's channels, 32 KiB
#: at 256 channels, stay in L1 over the filters; 64-pixel runs would not)
PRODUCT_CF_VARIANT = 2


#: the most bytes of weights ``product_cf_kernel`` takes: every run of pixels
#: reads them all, so they must stay in L2 from one run to the next
PRODUCT_CF_MAX_WEIGHT_BYTES = 512 << 10


@per_spec
def is_product_channels_first(spec):
    """Whether ``run_terms_channels_first`` computes ``spec`` on
    ``product_cf_kernel``: a channels_first float32 1 x 1 layer of one group at
    stride 1 without padding, with more filters than the narrow kernel takes and
    at most ``PRODUCT_CF_MAX_WEIGHT_BYTES`` of weights. Measured on an Emerald
    Rapids (1 and 2 threads, min of 11, in turn with the previous tree, whose
    long kernel read the input in place or, past 256 channels, a channels-last
    copy): 8 x 64 x 56 x 56 -> 64 0.67 / 0.60x the time, 8 x 128 x 56 x 56 ->
    128 0.64 / 0.60x, 8 x 256 x 28 x 28 -> 256 0.63 / 0.60x, 2 x 32 x 16 x 32 x
    32 -> 64 0.62 / 0.70x, 8 x 256 x 14 x 14 -> 512 (512 KiB of weights) 0.78 /
    0.85x; cf / cl 1.07-1.27 (was 1.5-2.2). With more weights each run waits on
    them: 8 x 512 x 14 x 14 -> 512 (1 MiB) 1.01 / 1.21x, 8 x 1024 x 7 x 7 ->
    1024 (4 MiB) 2.0 / 2.4x."""
    return (spec.data_format == "channels_first" and spec.dtype == np.float32 and spec.groups == 1
            and spec.kernel_spatial == (1, 1, 1) and spec.strides == (1, 1, 1) and not has_pads(spec)
            and not is_narrow(spec)
            and spec.channels * spec.filters * np.dtype(spec.dtype).itemsize <= PRODUCT_CF_MAX_WEIGHT_BYTES)


def run_product_channels_first(spec, x, w5, b, out5):
    """``product_cf_kernel`` on the user's (N, C, *spatial) ``x`` into ``out5``."""
    variant = PRODUCT_CF_VARIANT
    lanes = variant_lanes(variant, spec.dtype)
    threads = numba.get_num_threads()
    pixels = math.prod(spec.in_spatial)
    chunk = w_chunk(spec, lanes, threads, pixels, spec.batch)  # (each image's pixels one row)
    wt = _memory.scratch((spec.filters, spec.channels), spec.dtype)
    wt[...] = w5.reshape(spec.channels, spec.filters).T
    bias = None if b is None else np.repeat(np.asarray(b, spec.dtype), lanes)
    aligned = out5.ctypes.data % LINE_BYTES == 0 and pixels * out5.itemsize % LINE_BYTES == 0
    stream = cf_arg(spec) if aligned else ()  # (the term kernels' staged channels-first results: 4 MiB on)
    return _run_terms(spec, bias, out5, variant, lambda bk, has_bias: product_cf_kernel(
        np.ascontiguousarray(x, spec.dtype).reshape(-1), pixels, wt.reshape(-1), bk, has_bias,
        out5.reshape(spec.batch, spec.filters, pixels), chunk, threads, stream, variant_tag(variant)))


def run_terms_channels_first(spec, x, w5, b, out):
    """The short or long kernel (``is_terms_channels_first``) on the user's (N, C,
    *spatial) ``x`` into ``out``, a C-contiguous (N, K, *spatial) result (the
    kernels store their tiles transposed: no layout pass), or 1 x 1 layers'
    matrix product (``is_product_channels_first``)."""
    out5 = out.reshape((spec.batch, spec.filters) + spec.out_spatial)
    if is_product_channels_first(spec):
        run_product_channels_first(spec, x, w5, b, out5)
    elif is_short(spec):
        run_short(spec, x, w5, b, out5, channels_first=True, out_cf=True)
    else:
        run_long(spec, x, w5, b, out5, channels_first=True, out_cf=True)
    return out


def element_strides(C, spatial, channels_first):
    """(sn, sc, sz, sy, sx): the element strides along batch, channels and the (D,
    H, W) ``spatial`` axes of a C-contiguous channels-first (N, C, D, H, W) or
    channels-last (N, D, H, W, C) array, as the term kernels read their input."""
    D, H, W = spatial
    if channels_first:
        return C * D * H * W, D * H * W, H * W, W, 1
    return D * H * W * C, 1, H * W * C, W * C, C


def output_grid(spec, lattice):
    """The kernels' ``lattice`` argument: the output grid (OD, OH, OW), then the
    steps and first positions per axis in the result array (``run``'s ``lattice``
    = (steps, firsts); none: the result itself, steps 1 from 0)."""
    steps, firsts = lattice if lattice is not None else ((1, 1, 1), (0, 0, 0))
    return tuple(spec.out_spatial) + tuple(steps) + tuple(firsts)


def term_weights(spec, w5, variant, canonical):
    """The term kernels' flat weights and (block step, term step): with
    ``canonical``, the canonical kernel itself when one group's filters fill whole
    tile rows (no packing), else ``pack_weights``."""
    lanes = variant_lanes(variant, spec.dtype)
    if canonical and spec.groups == 1 and spec.filters % lanes == 0:
        return w5.reshape(-1), (lanes, spec.filters)
    return pack_weights(w5, spec.groups, lanes).reshape(-1), (reduction_terms(spec) * lanes, lanes)


def _run_terms(spec, b, out5, variant, launch):
    """``launch(bias, has_bias)`` under the kernel lock, then the fused activation
    in a pass of its own (in the term kernels' loop nest it cost 10-15 %)."""
    bk, has_bias, act = epilogue(spec, b)
    with kernel_lock():
        launch(bk, has_bias)
        if act:
            bias_activation_kernel(out5.reshape(-1, spec.filters), bk, False, act)
    return out5


def narrow_lanes(spec):
    """Output pixels per row of the narrow kernel's tile."""
    return variant_lanes(NARROW_VARIANT, spec.dtype)


def narrow_rows_per_weight(spec):
    """Tile rows of the narrow kernel that share each weight: its 4 rows over the
    filters of a group (1 filter: 4 rows; 2: 2; 3 or 4: 1)."""
    kg = spec.filters // spec.groups
    return VARIANTS[NARROW_VARIANT][0] // (1 if kg == 1 else 2 if kg == 2 else 4)


def filled(n, width):
    """The share of the slots of ``ceil(n / width)`` blocks of ``width`` that ``n``
    items fill (tile lanes by filters or channels, tile rows by pixels)."""
    return n / (width * -(-n // width))


def narrow_use(spec):
    """The share of the narrow kernel's lanes that hold output pixels (its runs of
    ``narrow_lanes`` along W)."""
    return filled(spec.out_spatial[2], narrow_lanes(spec))


@per_spec
def is_narrow(spec):
    """Whether ``run`` computes ``spec`` (canonical channels-last operands) on the
    narrow kernel: one group, at most ``MAX_FILTERS`` filters, stride 1 along W,
    real floats, and a larger share of its lanes in use (output pixels of its 64-
    or 32-pixel runs) than the tile kernel would use (filters of its narrowest rows)."""
    if (spec.groups != 1 or spec.filters > MAX_FILTERS or spec.strides[2] != 1
            or spec.dtype not in (np.float32, np.float64)):
        return False
    return narrow_use(spec) > filled(spec.filters, variant_lanes(3, spec.dtype))


#: the most filters per group the dot kernel takes
DOT_MAX_FILTERS = 4
#: the dot kernel's tile: 8 pixels x one 64-byte vector of channels
DOT_VARIANT = 3


@per_spec
def is_dot(spec):
    """Whether ``run`` computes ``spec`` on the dot kernel (``_kernels/dot.py``,
    vectorised along input channels): real floats, not depthwise, at most
    ``DOT_MAX_FILTERS`` filters and at least one whole vector of channels per
    group, and in double precision only where the narrow kernel would run it
    (the tile kernel's 4-lane float64 rows are full with 4 filters, and it was
    the faster there: 8 x 56 x 56 x 64 -> 4 3 x 3 stride 2, 0.68 vs 0.83-1.03 ms).
    Measured (2 threads, min of 5-30, float32; before -> after): 8 x 128 x 128 x
    64 -> 1 1 x 1 8.3-9.1 -> 0.8-2.0 ms (torch 1.6), -> 3 3 x 3 12.3 -> 6.7 (torch
    12.0), 8 x 64 x 64 x 128 -> 4 3 x 3 4.8 -> 3.0-3.6, 16 x 10 x 10 x 30 x 64 -> 4
    2 x 2 x 3 4.6 -> 2.7 (torch 1.8), 4 x 200 x 512 -> 1 k 9 stride 2 0.56 -> 0.09;
    float64 8 x 128 x 128 x 64 -> 3 3 x 3 30.3 -> 11.4-12.9. With 5-8 filters the
    long and tile kernels' 8-lane rows were faster (8 x 56 x 56 x 64 -> 8 3 x 3
    stride 2 0.63 vs 0.78 ms), and with 8 channels in float32 (half a vector) the
    narrow kernel (0.38 vs 0.55)."""
    if spec.dtype not in (np.float32, np.float64) or is_depthwise(spec):
        return False
    return (spec.filters // spec.groups <= DOT_MAX_FILTERS
            and spec.channels // spec.groups >= variant_lanes(DOT_VARIANT, spec.dtype)
            and (spec.dtype == np.float32 or is_narrow(spec)))


def run_dot(spec, x5, w5, b, out5):
    """The dot kernel on the canonical channels-last operands, then the activation
    pass. A padded input is copied padded (``padded``) unless the copy would
    cost more than the layer (``copy_bound``); the kernel then reads every tile in
    place (gathering border tiles through the padding mode cost 8 x 256 x 256 x
    32 -> 3 9 x 9 same 91-92 against 72-73 ms; 4 x 32^3 x 32 -> 2 3 x 3 x 3 6.3-6.6
    against 5.1-5.2)."""
    lanes = variant_lanes(DOT_VARIANT, spec.dtype)
    wd = dot_weights(w5, lanes)
    threads = numba.get_num_threads()
    pads = tuple(p[0] for p in spec.pads)
    if not copy_bound(spec):
        x5, pads = padded(spec, x5, scratch=True), (0, 0, 0)
    return _run_terms(spec, b, out5, DOT_VARIANT, lambda bk, has_bias: dot_kernel(
        x5, wd, bk, has_bias, out5, tuple(spec.kernel_spatial), spec.strides, spec.dilations,
        pads, PAD_MODES[spec.padding_mode], spec.groups,
        w_chunk(spec, VARIANTS[DOT_VARIANT][0], threads), threads, variant_tag(DOT_VARIANT)))


@per_spec
def is_narrow_depthwise(spec):
    """Whether ``run`` computes a depthwise ``spec`` that ``depthwise_slide_kernel``
    does not on the narrow kernel (one channel per group, at most ``MAX_FILTERS``
    filters each, stride 1 along W, real floats): where a larger share of its
    lanes hold output pixels than of ``depthwise_kernel``'s hold channels. With 3
    or 4 channels that kernel fills 3 or 4 of its 16 float32 lanes: 8 x 272 x 272
    x 4, 7 x 3 window, dilation 2, 18.8 -> 11.3 ms (torch 2.8); 8 x 182 x 91 x 4 ->
    8, stride 2 along H: 4.5 -> 1.4 (torch 1.1)."""
    if (not is_depthwise(spec) or slides(spec) or spec.filters // spec.groups > MAX_FILTERS
            or spec.strides[2] != 1 or spec.dtype not in (np.float32, np.float64)):
        return False
    return narrow_use(spec) > filled(spec.channels, variant_lanes(choose_variant(spec.channels, spec.dtype),
                                                                   spec.dtype))


def is_narrow_channels_first(spec):
    """Whether ``run_narrow`` computes a channels_first ``spec`` straight from the
    user's array into a channels_first result (no layout changes): ``is_narrow``.
    (The kernel also computes one channel per group, i.e. depthwise, but measured
    slower than the transposes around the channel-vectorised depthwise kernel:
    8 x 128 x 56 x 56, 3 x 3: 2.4 ms for the kernel alone, its tasks of 9-term
    reductions dominated by their set-up.)"""
    return spec.data_format == "channels_first" and is_narrow(spec)


def padded_channels_first(spec, x, channels_first):
    """A padded channels-first copy of the input, flat (``_memory.scratch``), with
    one tile row of zeros after it (vector loads of a row's last run read past the
    end), and its geometry (C, DP, HP, WP): what the pixel-vectorised kernels read.
    ``x`` is canonical channels-last (N, D, H, W, C), or with ``channels_first``
    the user's (N, C, *spatial) input."""
    N, C = spec.batch, spec.channels
    DP, HP, WP = padded_sizes(spec)
    size = N * C * DP * HP * WP
    flat = _memory.scratch((size + narrow_lanes(spec),), spec.dtype)  # an intermediate: no fresh pages per call
    flat[size:] = 0
    if channels_first or C == 1:  # x is channels-first already (C == 1: either layout)
        xc = np.ascontiguousarray(x, spec.dtype).reshape((N, C) + spec.in_spatial)
        with kernel_lock():
            pad_kernel(xc, flat[:size].reshape(N, C, DP, HP, WP), tuple(p[0] for p in spec.pads),
                       PAD_MODES[spec.padding_mode])
    else:
        swap_last_axes(padded(spec, x).reshape(N, DP * HP * WP, C), flat[:size].reshape(N, C, DP * HP * WP))
    return flat, (C, DP, HP, WP)


def run_narrow(spec, x, w5, b, out, channels_first=False):
    """The narrow kernel on ``padded_channels_first``'s copy of the input.

    ``x`` and ``out`` are canonical channels-last (N, D, H, W, C) and
    (N, OD, OH, OW, K), or with ``channels_first`` the user's (N, C, *spatial)
    input and a C-contiguous (N, K, *out_spatial) result."""
    bk, has_bias, act = epilogue(spec, b)
    if has_bias:
        bk = np.repeat(bk, narrow_lanes(spec))  # each filter's bias across a run's lanes
    N = spec.batch
    if channels_first and flat_pointwise(spec) is not None:  # each image's pixels as one row
        pixels = math.prod(spec.in_spatial)
        spec = replace(spec, in_spatial=(1, 1, pixels), out_spatial=(1, 1, pixels))
    out5 = out.reshape((N, spec.filters) + spec.out_spatial) if channels_first else out
    if in_place_channels_first(spec, x, channels_first):
        # images 0 ... N - 2 straight from the user's array (a row's last run reads
        # into the next image, never past the array); only the last one is copied
        geom = (spec.channels, spec.groups) + spec.in_spatial
        _narrow(spec, x.reshape(-1), geom, w5, bk, has_bias, out5[:N - 1], channels_first, act)
        spec, x, out5 = replace(spec, batch=1), x[N - 1:], out5[N - 1:]
    flat, (C, DP, HP, WP) = padded_channels_first(spec, x, channels_first)
    _narrow(spec, flat, (C, spec.groups, DP, HP, WP), w5, bk, has_bias, out5, channels_first, act)
    return out


def in_place_channels_first(spec, x, channels_first):
    """Whether ``run_narrow`` reads all but the last image of a channels_first
    input where it lies: no padding, and the user's array already C-contiguous in
    the layer's dtype, writeable (a read-only array would compile the kernel
    again for its type), and an image at least a run long. (The copy that gives
    the kernel its zeros after the last row cost more than the layer: 8 x 64 x
    128 x 128 -> 2, 1 x 1, 3.3 ms channels_first against 1.3 channels_last.)"""
    return (channels_first and spec.batch > 1 and not has_pads(spec) and x.dtype == spec.dtype
            and x.flags.c_contiguous and x.flags.writeable
            and spec.channels * math.prod(spec.in_spatial) >= narrow_lanes(spec))


def _narrow(spec, flat, geom, w5, bk, has_bias, out5, channels_first, act):
    with kernel_lock():
        narrow_kernel(flat, geom, w5, bk, has_bias, out5, spec.strides, spec.dilations, channels_first,
                      narrow_rows_per_weight(spec), act, variant_tag(NARROW_VARIANT))


def is_depthwise_channels_first(spec):
    """Whether ``run_depthwise_channels_first`` computes a channels_first ``spec``
    straight from the user's array into a channels_first result: depthwise, stride
    1 along W, real floats, and windows short enough never to flush partial sums
    (at most ``FLUSH_TERMS`` taps; longer ones take the layout changes around
    ``depthwise_kernel``, which flushes)."""
    return (spec.data_format == "channels_first" and is_depthwise(spec) and spec.strides[2] == 1
            and spec.dtype in (np.float32, np.float64) and math.prod(spec.kernel_spatial) <= FLUSH_TERMS)


#: calls whose input and result together take at least this many bytes (half
#: this machine's L3) store their results around the caches (``tile.row_stream``):
#: the results would not stay there, and streaming stores skip reading each line
#: before writing it (depthwise 8 x 56 x 56 x 128 float32, 12.8 MB in and out, 3
#: x 3, 2 threads: 1.56-1.63 -> 0.89-1.05 ms in one A/B run).
STREAM_BYTES = 16 << 20


@per_spec
def streams(spec):
    """Whether ``spec``'s results should be stored around the caches (``STREAM_BYTES``)."""
    return _call_bytes(spec, spec) >= STREAM_BYTES


def _call_bytes(source, spec):
    """Bytes of a call's input (``source``'s) and its result (``spec``'s)."""
    elements = math.prod(source.in_spatial) * source.channels + math.prod(spec.out_spatial) * spec.filters
    return spec.batch * elements * np.dtype(spec.dtype).itemsize


#: channels-first results of at least this many bytes are staged and streamed by
#: the term kernels (``cf_arg``)
CF_STREAM_BYTES = 4 << 20


def cf_arg(spec):
    """The term kernels' ``out_cf`` argument for a channels-first result: (0,)
    where each task stages its tiles' results and writes each filter's run around
    the caches (``short.flush_stage``) instead of storing every tile's transposed
    results in place: real results of ``CF_STREAM_BYTES`` or more without an
    activation (whose pass would read them back); else (). Measured (1 thread, min of 9,
    in turn with the previous tree, ``benchmarks/ab.py``'s way): 16 x 64 x 16000 -> 64 k 2
    dilation 8 (65.5 MB) 0.68x the time, 8 x 3 x 224 x 224 -> 64 3 x 3 (103 MB) 0.70x,
    8 x 64 x 56 x 56 -> 64 1 x 1 (6.4 MB, since on ``product_cf_kernel``) 0.91x; but
    1000 x 1 x 50 -> 16 k 5 (2.9 MB) 1.7-2.2x and the stem, 1 x 3 x 224 x 224 -> 64 7 x 7
    stride 2 (3.2 MB), 1.04-1.14x. (First measured with a copy of the previous tree
    compiled the slower way, which flattered the 1 x 1 layer: 0.77-0.87x.)"""
    large = math.prod(spec.output_shape) * np.dtype(spec.dtype).itemsize >= CF_STREAM_BYTES and spec.activation == 0
    return (0,) if large and spec.dtype in (np.float32, np.float64) else ()


def stream_arg(spec, out, source=None):
    """The term kernels' ``stream`` argument for ``spec``'s results into ``out``:
    (0,), stored around the caches, where the call's input (``source``'s, the
    fused separable layer's depthwise stage; else ``spec``'s) and result take
    ``STREAM_BYTES``, ``spec`` has no activation (its pass of its own would read
    the results back) and ``out`` starts on a cache line with each row of
    ``spec.filters`` values filling whole lines (numconv's own results do where
    the filters do; a caller's ``out=`` may not); else ()."""
    large = streams(spec) if source is None else _call_bytes(source, spec) >= STREAM_BYTES
    aligned = out.ctypes.data % LINE_BYTES == 0 and spec.filters * out.itemsize % LINE_BYTES == 0
    return (0,) if large and spec.activation == 0 and aligned else ()


#: the most taps along W that ``depthwise_slide_kernel`` takes (one specialisation per count)
MAX_SLIDE_TAPS = 9
#: the largest stride along W it takes (one specialisation per stride and tap count).
#: Strides 3 and 4 joined later (2 threads, best of 15, before -> after, torch's
#: best layout): 1 x 1336 x 1336 x 12, 7 x 3, strides (3, 3): 8.97 -> 3.92 ms
#: (torch 4.9-5.0); 2 x 322 x 968 x 12, 6 x 3, (1, 3): 6.46 -> 2.45 (2.2-2.3);
#: 8 x 112 x 112 x 64, 5 x 5, (3, 3): 1.42 -> 0.82 (0.90-0.95); 4 x 300 x 300 x
#: 16, 7 x 7, (2, 3): 2.09 -> 1.01 (1.29-1.39); 4 x 256 x 256 x 12, 7 x 7, (4,
#: 4): 1.05 -> 0.26 (0.28); 8 x 224 x 224 x 32, 4 x 4, (4, 4): 2.25 -> 1.57 (2.0-2.6)
MAX_SLIDE_STRIDE = 4


@per_spec
def slides(spec):
    """Whether ``depthwise_slide_kernel`` computes ``spec`` (canonical channels-last
    operands): depthwise with multiplier 1, real floats, zero padding, along W
    dilation 1 and a stride of at most ``MAX_SLIDE_STRIDE``, or stride 1 and any
    dilation (in single precision then at most ``FLUSH_TERMS`` taps: the dilated
    tiles do not flush), and at most ``MAX_SLIDE_TAPS`` taps along W."""
    return (is_depthwise(spec) and spec.filters == spec.channels and spec.dtype in (np.float32, np.float64)
            and spec.padding_mode == "zeros" and spec.strides[2] <= MAX_SLIDE_STRIDE
            and spec.kernel_spatial[2] <= MAX_SLIDE_TAPS
            and (spec.dilations[2] == 1 or spec.strides[2] == 1 and (
                spec.dtype == np.float64 or math.prod(spec.kernel_spatial) <= FLUSH_TERMS)))


#: ``separable_kernel``'s tiles: its depthwise stage's (8 pixels x 32 lanes, the
#: slide kernel's on most layers) and its 1 x 1 stage's (4 pixels x 64 filters).
#: One of each keeps its specialisations to the taps and stride along W (each
#: ~4-5 s to compile cold); other 1 x 1 tiles run the stages apart.
FUSED_VARIANTS = (2, 1)


def fuses_separable(spec, pspec):
    """Whether ``separable_kernel`` computes a separable layer whose depthwise
    stage is ``spec`` and 1 x 1 stage ``pspec`` in one pass: the slide kernel's
    layers without dilation along W whose window sums never flush (single
    precision: at most ``FLUSH_TERMS // KW`` window rows), and a 1 x 1 stage that
    ``pointwise_kernel`` computes on its 4 x 64 tile (``FUSED_VARIANTS``)."""
    KD, KH, KW = spec.kernel_spatial
    flat = flat_pointwise(pspec) or pspec
    return (spec.dtype == np.float32 and slides(spec) and spec.dilations[2] == 1
            and KD * KH <= max(FLUSH_TERMS // KW, 1) and is_product(flat) and terms_variant(flat) == FUSED_VARIANTS[1])


def run_separable(spec, pspec, x5, w5, pk5, b, out5):
    """``separable_kernel`` (``fuses_separable``): ``out5`` (N, OD, OH, OW, K) =
    the 1 x 1 stage ``pspec`` (kernel ``pk5``, bias ``b`` and its activation) of
    the depthwise stage ``spec`` (kernel ``w5``) of ``x5``."""
    dvar, pvar = FUSED_VARIANTS
    rows, lanes = VARIANTS[dvar][0], variant_lanes(dvar, spec.dtype)
    wp = pack_weights(pk5, 1, variant_lanes(pvar, pspec.dtype))
    threads = numba.get_num_threads()
    span = w_chunk(spec, rows, threads)
    line = LINE_BYTES // np.dtype(spec.dtype).itemsize
    mids = _memory.scratch((threads, -(-span * spec.channels // line) * line), spec.dtype)  # aligned rows
    stream = stream_arg(pspec, out5, source=spec)
    return _run_terms(pspec, b, out5, pvar, lambda bk, has_bias: separable_kernel(
        x5, depthwise_weights(spec, w5, lanes), wp, bk, has_bias, out5, mids, spec.strides, spec.dilations,
        tuple(p[0] for p in spec.pads), span, stream, (0,) * spec.kernel_spatial[2], (0,) * spec.strides[2],
        variant_tag(dvar), variant_tag(pvar)))


#: ``separable_cf_kernel``'s 1 x 1 tile (4 filters x 64 pixels) and the bytes of
#: its depthwise stage's block of rows (all channels), which stays in L2 for the
#: 1 x 1 stage
CF_FUSED_VARIANT = 1
CF_FUSED_BYTES = 256 << 10


def fuses_separable_channels_first(spec, pspec):
    """Whether ``separable_cf_kernel`` computes a channels_first separable layer
    whose depthwise stage is ``spec`` and 1 x 1 stage ``pspec`` in one pass: a
    single-precision depthwise stage ``depthwise_cf_kernel`` computes with
    multiplier 1 and zero padding, and a 1 x 1 stage of one group."""
    return (spec.dtype == np.float32 and pspec.dtype == np.float32 and is_depthwise_channels_first(spec)
            and spec.filters == spec.channels and spec.padding_mode == "zeros" and pspec.groups == 1)


def separable_rows(spec):
    """Output rows per task of ``separable_cf_kernel``: whole tiles of the depthwise
    stage's rows whose results (all channels) fit ``CF_FUSED_BYTES``, and at least
    four tasks per thread where the layer has the rows."""
    tile = VARIANTS[NARROW_VARIANT][0]
    OD, OH, OW = spec.out_spatial
    fit = max(CF_FUSED_BYTES // (spec.channels * OW * np.dtype(spec.dtype).itemsize) // tile, 1) * tile
    spread = -(-spec.batch * OD * OH // (4 * numba.get_num_threads()))
    return max(min(fit, -(-spread // tile) * tile), 1)


def run_separable_channels_first(spec, pspec, x, w5, pk5, b, out):
    """``separable_cf_kernel`` (``fuses_separable_channels_first``) on the user's
    (N, C, *spatial) ``x`` into the C-contiguous (N, K, *out_spatial) ``out``,
    then the 1 x 1 stage's activation."""
    bk, has_bias, act = epilogue(pspec, b)
    lanes = variant_lanes(CF_FUSED_VARIANT, spec.dtype)
    if has_bias:
        bk = np.repeat(bk, lanes)  # each filter's bias across a row's lanes
    C, K = spec.channels, pspec.filters
    wt = np.ascontiguousarray(pk5.reshape(C, K).T, spec.dtype).reshape(-1)
    rows = separable_rows(spec)
    mids = _memory.scratch((numba.get_num_threads(), C * rows * spec.out_spatial[2] + lanes), spec.dtype)
    out5 = out.reshape((spec.batch, K) + spec.out_spatial)
    with kernel_lock():
        separable_cf_kernel(np.ascontiguousarray(x, spec.dtype).reshape(-1), (C,) + tuple(spec.in_spatial),
                            tuple(p[0] for p in spec.pads), depthwise_weights(spec, w5, 1), wt, bk, has_bias, out5,
                            mids, spec.strides, spec.dilations, rows, *_row_slide(spec),
                            variant_tag(NARROW_VARIANT), variant_tag(CF_FUSED_VARIANT),
                            _plane_runs(spec))
        if act:
            bias_activation_kernel(out5.reshape(-1, K), bk, False, act)
    return out


def slide_variant(spec):
    """``depthwise_slide_kernel``'s tile: 8 pixels x one vector of channels when one
    vector holds them all or the window has more than 7 taps along W (the taps'
    weights take the registers), else 8 pixels x two vectors (twice the FMAs per
    tap row for the same address arithmetic). 8 x 56 x 56 x 16, 3 x 3 valid, 2
    threads: one vector 0.105 ms, two 0.141 (half their lanes idle); 1 x 56 x 56
    x 128, 3 x 3 same, 1 thread: two vectors 0.115 ms, one 0.149."""
    if spec.channels <= variant_lanes(3, spec.dtype) or spec.kernel_spatial[2] > 7:
        return 3
    return 2


#: ``depthwise_rows_kernel``'s tile (8 vectors of a row's run)
ROWS_VARIANT = 3


@per_spec
def rows_depthwise(spec):
    """Whether ``depthwise_rows_kernel`` computes ``spec`` (canonical channels-last
    operands): depthwise, real floats, zero padding, in single
    precision at most ``FLUSH_TERMS`` taps, and channels that leave the
    channel-vectorised kernels' lanes idle: at least half of the slide
    kernel's (it loads each input vector once per window row, this kernel once
    per tap, so it wins only where most of the slide kernel's lanes are idle), or
    any of the general depthwise kernel's (a dilation with a stride along W, other padding).

    Measured (2 threads, min of 21; this kernel / before): 8 x 160 x 160 x C, 3 x
    3 same, C = 3 / 4 / 8: 0.26 / 0.26-0.31 / 0.45-0.61 ms against 0.69 / 0.66 /
    0.70 (slide); C = 12 / 24 / 48: 0.77-0.86 / 2.0-2.1 / 3.9-4.1 against 0.73 /
    1.5-1.6 / 3.4 (slide, kept). Dilation 2 (4 x 112 x 112 x C, 3 x 3): C = 4 / 24 /
    48: 0.11 / 0.34-0.44 / 0.76-0.78 against 0.49-0.68 / 2.7 / 6.8-7.2 (narrow or
    general kernel). With a stride S along W it computes S times the outputs, so
    it takes only layers the slide kernel does not and that leave at least half
    the general kernel's lanes idle: 2 x 322 x 968 x C, 6 x 3, stride 3 along W, C
    = 4 / 12: 2.1-2.2 / 7.0 ms against 5.9 / 6.7 (general, kept for 12); 4 x 927 x
    618 x 8, 7 x 7, strides (3, 2), dilation (1, 2): 12.5 against 19.9; stride 2
    along W with 4 or 8 channels: 0.20 / 0.35 against the slide kernel's 0.14 /
    0.16 (kept). A depth multiplier above 1 (each multiplier's run through a
    buffer) likewise (measured when the kernel still copied each window row with
    its channels repeated): 16 x 272 x 272 x 3 -> 6, 3 x 7: 14.6 against
    17.9 ms; 4 x 896 x 298 x 2 -> 4, 7 x 5, stride 3 along H: 6.5 against 5.8."""
    if not (is_depthwise(spec) and spec.dtype in (np.float32, np.float64)
            and (spec.padding_mode == "zeros" or not has_pads(spec))
            and (spec.dtype == np.float64 or math.prod(spec.kernel_spatial) <= FLUSH_TERMS)):
        return False
    general = filled(spec.channels, variant_lanes(choose_variant(spec.channels, spec.dtype), spec.dtype))
    # the share of the slide kernel's lanes the channels fill, where it applies
    slide = filled(spec.channels, variant_lanes(slide_variant(spec), spec.dtype)) if slides(spec) else None
    if spec.strides[2] > 1 or spec.filters > spec.channels:
        # S times the multiply-adds, or each multiplier's run through a buffer (the
        # kernel's docstring): only against an idle half, and against the slide
        # kernel at strides 3 and 4 only where it fills a quarter of its lanes or
        # less (4 x 300 x 300 x C, 2 threads, this kernel / slide: C = 3, 3 x 3,
        # strides (3, 3): 0.21 / 0.26-0.27 ms; C = 2, 5 x 5, (2, 3): 0.43 / 0.49;
        # C = 8, 3 x 3, (1, 3): 1.17 / 0.71)
        if slide is not None:
            return spec.strides[2] > 2 and slide <= 0.25
        return general <= 0.5
    if slide is not None:
        return slide <= 0.5
    return general < 1


def rows_weights(spec, w5, b, lanes):
    """``depthwise_rows_kernel``'s weights (M, KD, KH, KW, P + R - 1, lanes) and
    bias (M, P + R - 1, lanes), per multiplier ``m``: vector ``q`` of a row's run
    holds channels ``(q * lanes + i) % C``, which repeat every ``P = C / gcd(C,
    lanes)`` vectors, and a tile's ``R`` vectors from any phase are consecutive
    rows; channel ``c`` of multiplier ``m`` is output channel ``c * M + m``."""
    C, M = spec.channels, spec.filters // spec.channels
    rows = C // math.gcd(C, lanes) + VARIANTS[ROWS_VARIANT][0] - 1
    out_channel = (np.arange(M)[:, None, None] + M * (np.arange(rows * lanes) % C).reshape(rows, lanes))
    wr = np.ascontiguousarray(np.moveaxis(w5[:, :, :, 0, :][..., out_channel], 3, 0))
    br = np.zeros((M, rows, lanes), spec.dtype) if b is None else np.ascontiguousarray(b[out_channel])
    return wr, br


def run_depthwise_rows(spec, x5, w5, b, out5):
    """``depthwise_rows_kernel`` on canonical channels-last operands."""
    bk, has_bias, act = epilogue(spec, b)
    R, lanes = VARIANTS[ROWS_VARIANT][0], variant_lanes(ROWS_VARIANT, spec.dtype)
    wr, br = rows_weights(spec, w5, bk if has_bias else None, lanes)
    # a span counts the output run's values at stride 1 along W with multiplier 1
    # (whole tiles), output pixels otherwise (a multiplier's run holds C values a pixel)
    stride, C = spec.strides[2], spec.channels
    whole = stride == 1 and spec.filters == C
    tile = R * lanes if whole else -(-R * lanes // (stride * C))
    span = w_chunk(spec, tile, numba.get_num_threads(), spec.out_spatial[2] * (C if whole else 1))
    with kernel_lock():
        depthwise_rows_kernel(x5, wr, br, has_bias, out5, spec.strides, spec.dilations,
                              tuple(p[0] for p in spec.pads), span, act, variant_tag(ROWS_VARIANT))
    return out5


def depthwise_weights(spec, w5, lanes):
    """The Keras depthwise kernel (KD, KH, KW, 1, C * M) regrouped as (KD, KH, KW, M,
    CP): channels contiguous, zero-padded to CP, a multiple of ``lanes``."""
    KD, KH, KW, _, K = w5.shape
    C = spec.channels
    wm = _memory.zeros((KD, KH, KW, K // C, -(-C // lanes) * lanes), spec.dtype)
    wm[..., :C] = w5.reshape(KD, KH, KW, C, K // C).transpose(0, 1, 2, 4, 3)
    return wm


@per_spec
def _row_slide(spec):
    """``depthwise_cf_kernel``'s ``taps`` and ``stride`` tuples: output rows that
    share their input rows' loads where there are whole tiles of output rows,
    dilation 1 and stride 1 or 2 along H and at most ``MAX_SLIDE_TAPS`` window
    rows; else empty taps (the kernel's general loop)."""
    _, kh, _ = spec.kernel_spatial
    rows = VARIANTS[NARROW_VARIANT][0]
    if spec.out_spatial[1] >= rows and spec.dilations[1] == 1 and spec.strides[1] in (1, 2) and kh <= MAX_SLIDE_TAPS:
        return (0,) * kh, (0,) * spec.strides[1]
    return (), (0,)


@per_spec
def _plane_runs(spec):
    """``cf_plane_rows``'s ``runs`` argument (``depthwise_cf_kernel``'s and
    ``separable_cf_kernel``'s): whether the narrow tile's rows are runs along W."""
    return runs_mode(spec.out_spatial[1], VARIANTS[NARROW_VARIANT][0])


def run_depthwise_channels_first(spec, x, w5, b, out):
    """``depthwise_cf_kernel`` on the user's (N, C, *spatial) ``x`` (zero padding:
    the kernel reads zeros for the positions outside) or on
    ``padded_channels_first``'s copy of it (other padding modes), into the
    C-contiguous (N, K, *out_spatial) ``out``: no layout changes (8 x 128 x 56 x
    56, 3 x 3: the two transposes around the channels-last kernel cost more than
    the kernel itself)."""
    bk, has_bias, act = epilogue(spec, b)
    if has_bias:
        bk = np.repeat(bk, narrow_lanes(spec))  # each channel's bias across a run's lanes
    if spec.padding_mode == "zeros":
        flat = np.ascontiguousarray(x, spec.dtype).reshape(-1)
        geom, pads = (spec.channels,) + tuple(spec.in_spatial), tuple(p[0] for p in spec.pads)
    else:
        (flat, geom), pads = padded_channels_first(spec, x, True), (0, 0, 0)
    with kernel_lock():
        depthwise_cf_kernel(flat, geom, pads, depthwise_weights(spec, w5, 1), bk, has_bias,
                            out.reshape((spec.batch, spec.filters) + spec.out_spatial), spec.strides,
                            spec.dilations, act, *_row_slide(spec), variant_tag(NARROW_VARIANT),
                            _plane_runs(spec))
    return out


def epilogue(spec, b):
    """The kernels' epilogue arguments: (bias array, has_bias, activation code).
    Without a bias the kernels take a 1-element dummy they never read; a callable
    activation, and the transcendental ones (``act.DEFERRED``, which
    ``_dispatch.run`` applies after the path), are code 0 here."""
    has_bias = b is not None
    return (b if has_bias else _no_bias(spec.dtype)), has_bias, _fused(spec)


@functools.lru_cache(maxsize=None)
def _no_bias(dtype):
    """The kernels' 1-element dummy bias in ``dtype``, shared: they never read
    (or write) it."""
    return np.zeros(1, dtype)


@per_spec
def _fused(spec):
    """The activation code the kernels apply for ``spec`` (``epilogue``)."""
    return fused_code(spec.activation) if isinstance(spec.activation, int) else 0


@per_spec
def flat_pointwise(spec):
    """A 1 x 1 layer at stride 1 without padding as one row of all its pixels (batch
    1, spatial (1, 1, N * D * H * W)), or None: the same terms per output, but
    tiles run across row ends (8 x 7 x 7 x 1024 -> 1024: a 7-pixel row is 2 tiles
    of 4 with one row idle; as one row of 392 pixels none idles)."""
    if (spec.kernel_spatial != (1, 1, 1) or spec.strides != (1, 1, 1) or has_pads(spec)
            or spec.batch * math.prod(spec.in_spatial[:2]) == 1):
        return None
    pixels = spec.batch * math.prod(spec.in_spatial)
    return replace(spec, batch=1, in_spatial=(1, 1, pixels), out_spatial=(1, 1, pixels))


def run(spec, x5, w5, b, out5, lattice=None):
    """Compute ``out5`` (N, OD, OH, OW, K) in place with the fused activation code.

    ``lattice`` = (steps, firsts), per spatial axis, writes the result's pixel
    ``o`` to ``first + o * step`` of a larger ``out5`` instead (the dense kernel's
    output lattice; used by the transposed conv's stride phases)."""
    if lattice is None and not is_depthwise(spec):
        flat = flat_pointwise(spec)
        if flat is not None and x5.flags.c_contiguous and out5.flags.c_contiguous:
            run(flat, x5.reshape((1,) + flat.in_spatial + (spec.channels,)), w5, b,
                out5.reshape((1,) + flat.out_spatial + (spec.filters,)))
            return out5
        if is_dot(spec):
            return run_dot(spec, x5, w5, b, out5)
        if is_narrow(spec):
            return run_narrow(spec, x5, w5, b, out5)
        if is_short(spec):
            return run_short(spec, x5, w5, b, out5)
    bk, has_bias, act = epilogue(spec, b)
    pads = tuple(p[0] for p in spec.pads)
    mode = PAD_MODES[spec.padding_mode]
    if lattice is None and rows_depthwise(spec):
        return run_depthwise_rows(spec, x5, w5, b, out5)
    if lattice is None and slides(spec):
        variant = slide_variant(spec)
        R, lanes = VARIANTS[variant][0], variant_lanes(variant, spec.dtype)
        with kernel_lock():
            depthwise_slide_kernel(x5, depthwise_weights(spec, w5, lanes), bk, has_bias, out5, spec.strides,
                                   spec.dilations, pads, w_chunk(spec, R * spec.dilations[2], numba.get_num_threads()),
                                   streams(spec) and not act, act,  # (its pass would read them back)
                                   (0,) * spec.kernel_spatial[2], (0,) * spec.strides[2], variant_tag(variant))
        return out5
    if lattice is None and is_narrow_depthwise(spec):
        return run_narrow(spec, x5, w5, b, out5)
    if is_depthwise(spec) and lattice is None:
        variant = choose_variant(spec.channels, spec.dtype)
        wm = depthwise_weights(spec, w5, variant_lanes(variant, spec.dtype))
        with kernel_lock():
            depthwise_kernel(x5, wm, bk, has_bias, out5, spec.strides, spec.dilations, pads, mode, act,
                             variant_tag(variant))
        return out5
    if is_long(spec) and (lattice is None or not act):  # (its activation pass covers all of out5)
        return run_long(spec, x5, w5, b, out5, lattice)
    variant = choose_variant(spec.filters // spec.groups, spec.dtype)
    wp = pack_weights(w5, spec.groups, variant_lanes(variant, spec.dtype))
    with kernel_lock():
        conv_direct_kernel(x5, wp, bk, has_bias, out5, output_grid(spec, lattice), spec.strides, spec.dilations,
                           pads, mode,
                           w_chunk(spec, VARIANTS[variant][0], numba.get_num_threads()), act, variant_tag(variant))
    return out5
