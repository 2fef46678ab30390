"""The FFT path: cross-correlation as products of spectra.

One forward transform per input image (all channels at once) and one per kernel
(the dilated, flipped taps, all filters at once); the channel contraction runs in
the frequency domain (``_kernels/spectral.py``: a small matrix product per
frequency and group), then one inverse transform per output. Cost O(n log n) per
channel instead of O(n k), so it wins for large kernels (``numconv._dispatch``
decides).

Two implementations: ``scipy.fft`` (pocketfft) transforms, one axis at a time
(``forward`` / ``inverse``), and, for float32 2-D layers of at least
``LANES_MIN_CHANNELS`` channels whose kernel spectrum the cache keeps
(``lanes_apply``), numconv's own transforms (``run_lanes``,
``_kernels/transform.py``), vectorised across rows' and columns' channels, the
contraction done per block of frequency columns while it is in cache. On the
bench's 4 x 256 x 256 x 8 -> 8, 25 x 25 "same": 9.2-12 ms against 15-18 ms with
pocketfft (interleaved, 2 threads, 2026-11-25), 6.2 ms after the row passes'
copies were fixed (``_kernels/transform.py``); on 1 x 512 x 512 x 1, 31 x 31 it
lost (5.4 against 3.4 ms: one channel gives the row pass no lanes), hence the
channel floor. ``auto`` weighs the layers it takes with terms of their own
(``_dispatch._lanes_terms``). With zero padding it also takes channels_first data
as it lies (``run_channels_first``; other layouts and paths change layout around
the canonical channels-last computation).

Index arithmetic: with ``xp`` the padded input (length ``Lp`` per axis) and ``e``
the dilated kernel size, the stride-1 correlation is the linear convolution of
``xp`` with the flipped kernel at offsets ``e - 1 ... Lp - 1``. A circular
transform of size ``>= Lp`` computes those offsets exactly (wrap-around only
reaches offsets below ``e - 1``), and strides keep every ``s``-th of them.

NaN and Inf: a transform mixes every input sample into every frequency, so one
NaN or Inf in ``x`` or the kernel makes the whole output NaN on this path (as with
``scipy.signal.fftconvolve``); ``method="direct"`` keeps them local.
"""
import collections
import contextlib
import functools
import hashlib
import math
import threading

import numpy as np

from .. import _memory
from .._config import get_num_threads, kernel_lock
from .._shares import in_shares
from .._kernels.act import bias_activation_blocks, bias_activation_blocks_count
from .._kernels import transform
from .._kernels.spectral import contract, contract_tag, pad_filters
from .._kernels.tile import VARIANTS, variant_lanes, variant_tag
from .._spec import per_spec
from .direct import _no_bias, epilogue, has_pads, padded, padded_sizes



def dilated_sizes(spec):
    return tuple(d * (k - 1) + 1 for k, d in zip(spec.kernel_spatial, spec.dilations))


@per_spec
def geometry(spec):
    """``(fshape, offsets, region, pad_first)``: the transform size per spatial axis,
    where the input's first sample lies in the zero-extended transform input, the
    outputs' slice of the inverse transform, and whether the input is padded by
    ``direct.padded`` first (padding modes other than zeros; then it is the
    input).

    Zero padding is not copied: the input lies at ``offset = max(0, pb - (e -
    1))`` (``pb`` its pad before, ``e`` the dilated kernel size) with zeros
    around it, and output ``o`` is the linear correlation at ``a + s*o``, ``a = e -
    1 - pb + offset``. The circular correlation of size ``n`` adds the linear one
    at ``p + m*n`` to position ``p``; the linear one is zero outside ``[offset,
    offset + L + e - 1)``, so the kept positions ``a ... last`` are exact when
    ``n >= offset + L + e - 1 - a`` (and ``n > last``: the region lies in the
    transform, which also puts ``p - n`` below ``offset``; and ``n >= e``: the
    kernel's taps fit). For "same"
    padding that is ``L + (e - 1) / 2`` rather than the padded length ``L + e - 1``
    (4 x 256 x 256 x 8, 25 x 25: 270 x 270 transforms instead of 280 x 280).
    Every size is then rounded up to one ``scipy.fft`` transforms fast."""
    import scipy.fft  # imported on first use: keeps `import numconv` light

    real = spec.dtype.kind != "c"
    return _geometry(spec, lambda n, last: scipy.fft.next_fast_len(n, real=real))


@per_spec
def lanes_geometry(spec):
    """``geometry`` with the sizes ``transform.fft_lanes`` takes (factors 2, 3
    and 5 only; the last axis even, for the real transform's packing)."""
    return _geometry(spec, lambda n, last: transform.fast_length(n, even=last))


def _geometry(spec, fast_len):
    pad_first = spec.padding_mode != "zeros" and has_pads(spec)
    sizes = padded_sizes(spec) if pad_first else spec.in_spatial
    fshape, offsets, region = [], [], []
    for i, (L, (pb, _), e, s, lo) in enumerate(zip(sizes, spec.pads, dilated_sizes(spec), spec.strides,
                                                   spec.out_spatial)):
        pb = 0 if pad_first else pb
        offset = max(0, pb - (e - 1))
        a = e - 1 - pb + offset
        last = a + s * (lo - 1)
        fshape.append(fast_len(max(offset + L + e - 1 - a, last + 1, e), i == len(sizes) - 1))
        offsets.append(offset)
        region.append(slice(a, last + 1, s))
    return tuple(fshape), tuple(offsets), tuple(region), pad_first


def fft_shape(spec):
    """Transform size per spatial axis (``geometry``)."""
    return geometry(spec)[0]


def _dilated_flipped_kernel(spec, w5):
    """(KD, KH, KW, Cg, K) -> taps spread by the dilation (zeros between), flipped."""
    d = spec.dilations
    wd = np.zeros(dilated_sizes(spec) + w5.shape[3:], w5.dtype)
    wd[::d[0], ::d[1], ::d[2]] = w5
    return wd[::-1, ::-1, ::-1]


#: Spectra of one batch chunk (input + output, complex) stay below this; larger
#: batches are processed in chunks, each one batched transform and one kernel call.
CHUNK_BYTES = 256 * 2**20


def batch_chunk(spec):
    """Images per chunk so that one chunk's input and output spectra fit in
    ``CHUNK_BYTES`` (at least one image)."""
    n = math.prod(fft_shape(spec))
    item = spec.dtype.itemsize * (1 if spec.dtype.kind == "c" else 2)  # the spectra's complex dtype
    per_image = n * (spec.channels + spec.filters) * item
    return max(1, min(spec.batch, CHUNK_BYTES // max(per_image, 1)))


# The private pocketfft bindings take an ``out=`` array (a view of a larger
# buffer too), so a pass can write into a pooled buffer; scipy.fft's public
# functions always allocate.
try:
    from scipy.fft._pocketfft.pypocketfft import c2c as _c2c, c2r as _c2r, r2c as _r2c
except ImportError:  # pragma: no cover - a SciPy without them: the public API, into a fresh array
    _c2c = _c2r = _r2c = None


#: elements below which a transform pass runs on one thread: pocketfft's hand-off
#: to a second thread cost ~15 us a pass here, more than it saved on e.g. 4 x 16 x
#: 18 x 32 (r2c 51 us on 1 thread, 66 on 2)
PARALLEL_FFT_MIN = 1 << 17


def _threads_for(a, workers):
    return workers if a.size >= PARALLEL_FFT_MIN else 1


def _rfft_into(src, axis, out, workers):
    """``out[...] = scipy.fft.rfft(src, axis=axis)`` (``src`` at its transform length)."""
    workers = _threads_for(src, workers)
    if _r2c is None:
        import scipy.fft
        out[...] = scipy.fft.rfft(src, axis=axis, workers=workers)
    else:
        _r2c(src, (axis,), True, 0, out, workers)


def _fft_into(src, axis, out, workers):
    """``out[...] = scipy.fft.fft(src, axis=axis)``; ``out`` may be ``src``."""
    workers = _threads_for(src, workers)
    if _c2c is None:
        import scipy.fft
        out[...] = scipy.fft.fft(src, axis=axis, workers=workers)
    else:
        _c2c(src, (axis,), True, 0, out, workers)


def _irfft_into(src, axis, n, out, workers):
    """``out[...] = scipy.fft.irfft(src, n, axis=axis)``."""
    workers = _threads_for(out, workers)
    if _c2r is None:
        import scipy.fft
        out[...] = scipy.fft.irfft(src, n, axis=axis, workers=workers)
    else:
        _c2r(src, (axis,), n, False, 2, out, workers)


def _zero_extended(shape, dtype, axis, n, offset, m):
    """A scratch buffer of ``shape`` but ``n`` long along ``axis``, zero outside
    ``offset ... offset + m``, and its view of that range (for the caller to fill)."""
    shape = list(shape)
    shape[axis] = n
    buf = _memory.scratch(shape, dtype)
    lead = (slice(None),) * axis
    buf[lead + (slice(0, offset),)] = 0
    buf[lead + (slice(offset + m, n),)] = 0
    return buf, buf[lead + (slice(offset, offset + m),)]


def _extended(a, axis, n, dtype, offset=0):
    """A scratch copy of ``a`` as ``dtype``, zero-extended to length ``n`` along
    ``axis`` with ``a`` at ``offset``."""
    buf, view = _zero_extended(a.shape, dtype, axis, n, offset, a.shape[axis])
    view[...] = a
    return buf


def forward(a, shape, axes, workers, real=None, offsets=None):
    """``scipy.fft.rfftn(a, s=shape, axes=axes)`` (``fftn`` for complex ``a`` or
    ``real=False``) of ``a`` placed at ``offsets`` (default 0) along ``axes`` in a
    zero-filled array of ``shape``, into pooled scratch (``_memory.scratch``), one
    axis at a time so that each pass transforms only rows that are not all zero
    padding: the last axis first (the real-to-complex pass), over ``a``'s own
    extent on the other axes; then the others from last to first. Each pass
    writes into a buffer already zero-extended along the axis transformed next,
    so ``a`` is copied once (into its first pass's zero-extended input) and no
    spectrum is copied. A 31 x 31 kernel padded to 1080 x 1080 takes 31 row
    transforms in the first pass instead of 1080.

    Pooled buffers matter as much as the skipped rows: a fresh multi-megabyte
    array is mapped from the system and faults in one 4 KiB page at a time (a
    1024 x 1024 float64 image's transforms took ~1,600 faults, ~4 ms, per call
    here, as long as the transforms themselves on one core). Length-1 axes (a
    1-D or 2-D conv's leading canonical axes) are skipped: pocketfft copied the
    whole spectrum for each, 6 copies a call, 21 of 36 ms on the 8 x 65536 x 4
    1025-tap conv1d."""
    if real is None:
        real = a.dtype.kind != "c"
    offsets = offsets or (0,) * len(axes)
    cdtype = np.result_type(a.dtype, np.complex64)
    passes = [i for i in reversed(range(len(axes))) if shape[i] != 1 or (real and i == len(axes) - 1)]
    if not passes:  # every axis has length 1: the transform is the identity
        return _extended(a, axes[0], 1, cdtype)
    cur = a
    for j, i in enumerate(passes):
        ax, n, r2c = axes[i], shape[i], real and j == 0
        if cur.shape[ax] != n or (not r2c and cur.dtype != cdtype):
            cur = _extended(cur, ax, n, cur.dtype if r2c else cdtype, offsets[i])  # only ``a`` (see below)
        out_shape = list(cur.shape)
        if r2c:
            out_shape[ax] = n // 2 + 1
        nxt = passes[j + 1] if j + 1 < len(passes) else None
        if nxt is not None and out_shape[axes[nxt]] != shape[nxt]:
            buf, view = _zero_extended(out_shape, cdtype, axes[nxt], shape[nxt], offsets[nxt], out_shape[axes[nxt]])
        elif r2c or cur is a:
            buf = view = _memory.scratch(out_shape, cdtype)
        else:
            buf = view = cur  # in place, in a buffer of this call's own
        (_rfft_into if r2c else _fft_into)(cur, ax, view, workers)
        if cur is not a and cur is not buf:
            _memory.recycle(cur)
        cur = buf
    return cur


def inverse(A, shape, axes, region, real, workers, result=None):
    """``scipy.fft.irfftn(A, s=shape, axes=axes)`` (``ifftn`` when not ``real``)
    restricted to ``region`` (one slice per axis in ``axes``), overwriting ``A``:
    each axis's outputs are cut to its slice as soon as that axis is transformed,
    so the later passes skip the rows the caller would throw away (the real pass,
    last, runs only on the kept rows). The last pass writes into ``result(shape,
    dtype)`` (default ``np.empty``) and a view of it is returned, never of ``A``
    (a pooled buffer the next call reuses)."""
    import scipy.fft

    cur = A
    for i, ax in enumerate(axes):
        lead = (slice(None),) * ax
        if real and i == len(axes) - 1:
            out_shape = list(cur.shape)
            out_shape[ax] = shape[i]
            out = (result or np.empty)(out_shape, np.empty(0, cur.dtype).real.dtype)
            _irfft_into(cur, ax, shape[i], out, workers)
            cur = out
        else:
            if i == len(axes) - 1:  # the last pass: into the caller's array, never into A
                out = (result or np.empty)(cur.shape, cur.dtype)
                out[...] = cur
                cur = out
            if shape[i] != 1:  # (a length-1 transform is the identity)
                cur = scipy.fft.ifft(cur, axis=ax, workers=_threads_for(cur, workers), overwrite_x=True)  # in place
        cur = cur[lead + (region[i],)]
    return cur


#: bytes of kernel spectra kept between calls (``kernel_spectrum``); 0 turns the cache off
SPECTRUM_CACHE_BYTES = 64 << 20
_spectra = collections.OrderedDict()  # key -> (spectrum, tag), least recently used first
_spectra_lock = threading.Lock()


def kept(key, make):
    """``make()`` (a tuple whose first item is a spectrum), or what an earlier call
    with the same ``key`` made: the kernel-spectrum cache (``kernel_spectrum``).
    ``key`` None, or the cache off (``SPECTRUM_CACHE_BYTES`` 0), computes anew;
    a spectrum larger than half the cache is not kept. A kept spectrum is
    shared: callers never write into it."""
    if key is None or SPECTRUM_CACHE_BYTES <= 0:
        return make()
    with _spectra_lock:
        hit = _spectra.get(key)
        if hit is not None:
            _spectra.move_to_end(key)
            return hit
    value = make()
    if 2 * value[0].nbytes > SPECTRUM_CACHE_BYTES:
        return value
    own = _memory.empty(value[0].shape, value[0].dtype)  # its own memory (``forward`` returns pooled scratch),
    own[...] = value[0]  # 64-byte aligned (``np.array``'s 16: the lanes contraction's half-vector rows split lines)
    value = (own,) + tuple(value[1:])
    with _spectra_lock:
        _spectra[key] = value
        total = sum(v[0].nbytes for v in _spectra.values())
        while total > SPECTRUM_CACHE_BYTES:
            total -= _spectra.popitem(last=False)[1][0].nbytes
    return value


def is_kept(spectrum):
    """Whether ``spectrum`` is one ``kept`` holds (shared: never write into it)."""
    with _spectra_lock:
        return any(v[0] is spectrum for v in _spectra.values())


def digest(a):
    """A BLAKE2b digest of ``a``'s values (a C-contiguous copy's bytes), its shape and dtype."""
    a = np.ascontiguousarray(a)
    return hashlib.blake2b(a.reshape(-1).view(np.uint8), digest_size=20).digest(), a.shape, a.dtype.str


#: kernels whose spectrum (real bytes over the transform shape) passes this are
#: transformed one input channel at a time (``kernel_spectrum``)
KERNEL_SLICE_BYTES = 32 * 2**20


def kernel_spectrum(spec, w5, fshape, workers):
    """``(W, tag)``: the spectrum of the dilated, flipped kernel as
    ``contract`` reads it (nf, Cg, G, KP) and its tile tag.

    Layers call with the same weights again and again, and on large kernels the
    kernel's transforms cost as much as the input's (4 x 256 x 256 x 8 -> 8, 25 x
    25: 7 of 28 ms). So spectra are kept between calls (``kept``), keyed by the
    kernel's *values* (a BLAKE2b digest of its bytes, ~0.1 ms per 160 KB) and
    everything else the spectrum depends on, least recently used evicted first,
    in at most ``SPECTRUM_CACHE_BYTES``. A kernel changed in place has another
    digest, so it is transformed again: the cache never changes a result
    (``tests/test_spectral.py``)."""
    def make():
        CG, K, G = spec.channels // spec.groups, spec.filters, spec.groups
        wk = _dilated_flipped_kernel(spec, w5)
        if CG > 1 and math.prod(fshape) * CG * K * wk.itemsize > KERNEL_SLICE_BYTES:
            # one input channel at a time into the whole spectrum: peak 1 + 2 / CG spectra, not 2
            # (the zero-extended kernel and its transform; 1 x 2**20 x 8 -> 8, 4097 taps: traced 583 -> 389 MB)
            Wf = None
            for c in range(CG):
                part = forward(wk[:, :, :, c:c + 1], fshape, (0, 1, 2), workers)
                if Wf is None:
                    Wf = _memory.scratch(part.shape[:3] + (CG, K), part.dtype)
                Wf[:, :, :, c:c + 1] = part
                _memory.recycle(part)
        else:
            Wf = forward(wk, fshape, (0, 1, 2), workers)  # (*F, Cg, K)
        tag = contract_tag(K // G, Wf.dtype)
        return pad_filters(Wf.reshape(math.prod(Wf.shape[:3]), CG, K), G, tag), tag

    key = ("conv", digest(w5), tuple(fshape), tuple(spec.dilations), spec.groups) if SPECTRUM_CACHE_BYTES > 0 else None
    return kept(key, make)


def clear_spectrum_cache():
    """Drop every kept kernel spectrum (``kernel_spectrum``)."""
    with _spectra_lock:
        _spectra.clear()


@contextlib.contextmanager
def spectra_not_kept():
    """Within this block every call transforms its kernel anew (no spectrum kept
    or reused): what a first call with new weights costs, for timings."""
    global SPECTRUM_CACHE_BYTES
    kept, SPECTRUM_CACHE_BYTES = SPECTRUM_CACHE_BYTES, 0
    try:
        yield
    finally:
        SPECTRUM_CACHE_BYTES = kept


#: fewest input channels for ``run_lanes``: its row pass has (row, channel) lanes,
#: and with 1-2 channels its per-row copies cost more than pocketfft's whole pass
#: (1 x 512 x 512 x 1, 31 x 31: 5.4 ms against 3.4)
LANES_MIN_CHANNELS = 4


def lanes_apply(spec):
    """Whether ``run_lanes`` computes ``spec``: float32 data whose transforms are
    2-D (the depth axis of length 1 both ways), at least ``LANES_MIN_CHANNELS``
    input channels, and a kernel spectrum that the cache keeps (``kept``: a
    spectrum made anew on every call costs ``run_lanes`` more than it saves; so
    without the cache, as in ``spectra_not_kept``, this path is not taken).
    float64 keeps ``scipy.fft``: this path's three kernels take ~20 s to compile
    per dtype, spent once for the case it was measured on."""
    if spec.dtype != np.float32 or spec.channels < LANES_MIN_CHANNELS:
        return False
    (fd, fh, _), _, _, _ = lanes_geometry(spec)
    if fd != 1 or fh == 1:
        return False
    return 2 * math.prod(_lanes_spectrum_shape(spec)) * spec.dtype.itemsize <= SPECTRUM_CACHE_BYTES


@functools.lru_cache(maxsize=64)
def _plans(FH, FW, dtype):
    """The transforms' tables for ``run_lanes``: along H forward and inverse, along
    W (half length) forward and inverse, and the real transform's factors."""
    return (transform.plan(FH, dtype, -1), transform.plan(FH, dtype, 1), transform.plan(FW // 2, dtype, -1),
            transform.plan(FW // 2, dtype, 1), transform.half_twiddles(FW, dtype))


@per_spec
def lanes_tag(spec):
    """``transform.columns``' contraction tile (``tile.variant_tag``): the one that
    pads each group's filters least (the kernel spectrum, read once per call, is
    the contraction's memory traffic), the widest of those."""
    kg = spec.filters // spec.groups
    lanes = {v: variant_lanes(v, spec.dtype) for v in VARIANTS}
    return variant_tag(min(VARIANTS, key=lambda v: (-(-kg // lanes[v]) * lanes[v], -lanes[v])))


def _lanes_spectrum_shape(spec):
    """The shape of ``lanes_kernel_spectrum``'s array: (2, FC * FH, Cg, G, KP),
    each group's filters padded to whole rows of ``lanes_tag``'s tile."""
    _, FH, FW = lanes_geometry(spec)[0]
    lanes = variant_lanes(len(lanes_tag(spec)), spec.dtype)
    kp = -(-(spec.filters // spec.groups) // lanes) * lanes
    return 2, (FW // 2 + 1) * FH, spec.channels // spec.groups, spec.groups, kp


def lanes_kernel_spectrum(spec, w5, fshape, workers):
    """The dilated, flipped kernel's real 2-D spectrum as ``transform.columns``
    reads it: (2, FC * FH, Cg, G, KP), real and imaginary parts, frequency column
    major, each group's filters zero-padded to whole tile rows (``lanes_tag``),
    scaled by ``1 / (FH FW)`` (the inverse transforms' factor). Transformed by
    ``forward`` (the kernel's zero rows skipped) and kept between calls as
    ``kernel_spectrum``'s."""
    _, FH, FW = fshape
    shape = _lanes_spectrum_shape(spec)
    _, _, CG, G, KP = shape
    KG = spec.filters // G

    def make():
        Wf = forward(_dilated_flipped_kernel(spec, w5), (1, FH, FW), (0, 1, 2), workers)[0]  # (FH, FC, Cg, K)
        out = np.zeros(shape, spec.dtype)
        body = out.reshape(2, FW // 2 + 1, FH, CG, G, KP)
        src = Wf.reshape(FH, FW // 2 + 1, CG, G, KG).transpose(1, 0, 2, 3, 4)
        np.multiply(src.real, 1 / (FH * FW), out=body[0, ..., :KG])
        np.multiply(src.imag, 1 / (FH * FW), out=body[1, ..., :KG])
        _memory.recycle(Wf)
        return (out,)

    key = ("lanes", digest(w5), tuple(fshape), tuple(spec.dilations), spec.groups, spec.dtype.str)
    return kept(key if SPECTRUM_CACHE_BYTES > 0 else None, make)[0]


#: results from this size on are written around the caches (``transform.rows_inverse``)
STREAM_BYTES = 4 << 20

#: bytes of one column block's spectra (every image's input and output block, real
#: and imaginary) a ``transform.columns`` slot keeps; larger batches run in chunks
COLUMN_BYTES = 768 << 10


def run_lanes(spec, x5, w5, b, out5, workers, channels_first=False):
    """``out5`` (N, 1, OH, OW, K) from ``x5`` with ``numconv._kernels.transform``'s
    three passes (its docstring), bias and the fused activation included, in batch
    chunks of bounded spectrum memory. ``channels_first``: ``x5`` is (N, C, H W)
    and ``out5`` the C-contiguous (N, K, OH, OW), read and written as they lie
    (the row passes transpose row blocks in registers; zero padding only,
    ``lanes_channels_first``)."""
    (_, FH, FW), (_, oh, ow), (_, rh, rw), pad_first = lanes_geometry(spec)
    assert not (channels_first and pad_first)
    N, C, K, G = spec.batch, spec.channels, spec.filters, spec.groups
    dtype = spec.dtype
    W = lanes_kernel_spectrum(spec, w5, (1, FH, FW), workers)
    (hf, hi, wf, wi, half) = _plans(FH, FW, dtype.str)
    M, lanes = FW // 2, transform.lanes_of(dtype)
    FC = M + 1
    _, OH, OW = spec.out_spatial

    def rounded(v):
        return -(-v // lanes) * lanes

    B = max(1, 2 * lanes // C)  # rows per block along W: lanes are (row, channel)
    BI = max(1, 2 * lanes // K)
    bk, has_bias, act = epilogue(spec, b)
    bias = np.zeros(rounded(BI * K), dtype)  # each filter's bias on its lanes of a row block
    if has_bias:
        bias[:BI * K] = np.tile(bk, BI)
    Bc = max(1, 2 * lanes // max(C, K))  # frequency columns per block along H
    VX, VY = rounded(Bc * C), rounded(Bc * K)
    rows_f = _memory.scratch((workers, 4, FC * rounded(B * C)), dtype)
    rows_i = _memory.scratch((workers, 4, FC * rounded(BI * K)), dtype)
    rowbufs = _memory.scratch((workers, OW * K), dtype)
    sbufs = _memory.scratch((workers, 2 * FC * C), dtype)
    per_image = FH * (VX + VY) * 2 * dtype.itemsize
    nc = max(1, min(N, COLUMN_BYTES // per_image))
    xb = _memory.scratch((workers, nc, 2, FH * VX), dtype)
    yb = _memory.scratch((workers, nc, 2, FH * VY), dtype)
    fb = _memory.scratch((workers, 2, FH * max(VX, VY)), dtype)
    step = batch_chunk(spec)
    for n0 in range(0, N, step):
        xc = x5[n0:n0 + step]
        xs = np.ascontiguousarray(padded(spec, xc, serial=True) if pad_first else xc)
        n = xs.shape[0]
        H, Wd = (spec.in_spatial[1:] if channels_first else xs.shape[2:4])
        S = _memory.scratch((2, n, -(-FC // Bc), H, Bc * C), dtype)  # blocks of Bc frequency columns
        with kernel_lock():
            transform.rows_forward(xs.reshape(-1), Wd, C, channels_first, S[0], S[1], ow, FW, rows_f, sbufs, B,
                                   wf[0], wf[1], wf[2], half, S.nbytes >= STREAM_BYTES)
        T = _memory.scratch((2, n, OH, FC, K), dtype)
        for c0 in range(0, n, nc):
            c1 = min(n, c0 + nc)
            with kernel_lock():
                transform.columns(S[0, c0:c1], S[1, c0:c1], W[0], W[1], T[0, c0:c1], T[1, c0:c1], oh, FH, rh.start,
                                  rh.step, G, xb, yb, fb, Bc, hf[0], hf[1], hf[2], hi[2], lanes_tag(spec),
                                  T.nbytes >= STREAM_BYTES)
        _memory.recycle(S)
        o = out5[n0:n0 + n]
        dst = o if o.flags.c_contiguous else _memory.scratch(o.shape, dtype)
        with kernel_lock():
            transform.rows_inverse(T[0].reshape(n * OH, FC, K), T[1].reshape(n * OH, FC, K), dst.reshape(-1), OH, OW,
                                   channels_first, rw.start, rw.step, FW, rows_i, rowbufs, BI, wi[0], wi[1], wi[2],
                                   half, bias, has_bias, act, dst.nbytes >= STREAM_BYTES)
        if dst is not o:
            o[...] = dst
            _memory.recycle(dst)
        _memory.recycle(T)
    _memory.recycle(xb)
    _memory.recycle(yb)
    _memory.recycle(fb)
    _memory.recycle(rows_f)
    _memory.recycle(rows_i)
    _memory.recycle(rowbufs)
    _memory.recycle(sbufs)
    return out5


def lanes_channels_first(spec):
    """Whether ``run_channels_first`` computes ``spec``: a channels_first layer
    ``run_lanes`` computes, with zero padding (other modes pad a channels-last
    copy first)."""
    return spec.data_format == "channels_first" and lanes_apply(spec) and not lanes_geometry(spec)[3]


def run_channels_first(spec, x, w5, b, out):
    """``run_lanes`` on the user's (N, C, *spatial) ``x`` into the C-contiguous
    (N, K, *out_spatial) ``out``, without layout changes: on 4 x 8 x 256 x 256 ->
    8, 25 x 25 the two transposes around the channels-last path cost ~0.85 ms
    each, a fifth of the call."""
    x3 = np.ascontiguousarray(x, spec.dtype).reshape(spec.batch, spec.channels, -1)
    return run_lanes(spec, x3, w5, b, out, get_num_threads(), True)


def run(spec, x5, w5, b, out5):
    """Compute ``out5`` (N, OD, OH, OW, K) with transforms over the spatial axes,
    in batch chunks of bounded spectrum memory (``batch_chunk``)."""
    workers = get_num_threads()
    if lanes_apply(spec):
        return run_lanes(spec, x5, w5, b, out5, workers)
    fshape, offsets, region, pad_first = geometry(spec)
    N, C, K, G = spec.batch, spec.channels, spec.filters, spec.groups
    Wf, tag = kernel_spectrum(spec, w5, fshape, workers)
    step = batch_chunk(spec)
    for n0 in range(0, N, step):
        xc = x5[n0:n0 + step]
        xs = padded(spec, xc, serial=True) if pad_first else xc
        X = forward(xs, fshape, (1, 2, 3), workers, offsets=offsets)      # (n, *F, C)
        n, F = X.shape[0], X.shape[1:4]
        nf = math.prod(F)
        Y = _memory.scratch((n,) + F + (K,), X.dtype)
        contract(X.reshape(n, nf, C), Wf, Y.reshape(n, nf, K), G, _no_bias(X.dtype), tag, workers)
        _memory.recycle(X)
        y = inverse(Y, fshape, (1, 2, 3), region, spec.dtype.kind != "c", workers, _memory.scratch)
        out5[n0:n0 + n] = y
        _memory.recycle(Y)
        _memory.recycle(y)
    return _epilogue(spec, b, out5, workers)


def _epilogue(spec, b, out5, workers):
    K = spec.filters
    bk, has_bias, act = epilogue(spec, b)
    if has_bias or act:  # on Python threads, as the contraction (``numconv._shares``)
        y2 = out5.reshape(-1, K)
        in_shares(bias_activation_blocks, bias_activation_blocks_count(y2), workers, y2, bk, has_bias, act,
                  us=y2.size / 1000)  # ~1 element per ns
    return out5
