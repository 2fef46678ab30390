"""A drop-in for ``scipy.signal.convolve`` / ``correlate``, with their
``choose_conv_method`` (SciPy's arguments, numconv's own choice: it may be ``"oa"``).

Same arguments and results as SciPy's: N-d inputs, modes ``"full"``, ``"valid"``
(inputs swapped when ``in2`` is the larger, as SciPy does) and ``"same"``
(centred on ``in1``), real and complex data (``correlate`` conjugates ``in2``),
integer inputs giving SciPy's integer result dtype. Added: ``axes=`` as in
``scipy.signal.fftconvolve``: the convolution runs over those axes only and the
other axes broadcast, so a stack of signals is one call; a stack with one kernel
per signal runs as one depthwise convolution.

The arithmetic is numconv's: ``method="direct"`` runs the direct Numba kernels
(up to 3 convolution axes at once; further axes loop over the kernel's taps),
``method="fft"`` multiplies ``scipy.fft`` spectra computed with numconv's thread
count.
"""
import time

import numpy as np

from . import _memory, _ops
from ._config import get_num_threads
from ._paths import fft as fft_path
from ._shares import in_shares
from ._errors import shape_str, type_error, unknown_option, value_error
from ._spec import index, native

__all__ = ["convolve", "correlate", "choose_conv_method"]

MODES = ("full", "valid", "same")
METHODS = ("auto", "direct", "fft", "oa")


# ---------------------------------------------------------------- validation

def _as_input(fn, arg, a):
    arr = np.asarray(a)
    if arr.dtype.kind in "biufc":
        return native(arr)
    raise type_error(fn, arg, "must have a numeric dtype (bool, int, float or complex)",
                     f"dtype {arr.dtype}", f"Use np.asarray({arg}, dtype=np.float64) if the values are numbers.")


def _normalize(fn, in1, in2, mode, method, axes):
    in1 = _as_input(fn, "in1", in1)
    in2 = _as_input(fn, "in2", in2)
    if not isinstance(mode, str) or mode not in MODES:
        raise unknown_option(fn, "mode", mode, MODES)
    if not isinstance(method, str) or method not in METHODS:
        raise unknown_option(fn, "method", method, METHODS)
    if in1.ndim != in2.ndim:
        raise value_error(fn, "in2", f"must have as many dimensions as in1 ({in1.ndim})",
                          f"shape {shape_str(in2.shape)} (in1 has shape {shape_str(in1.shape)})",
                          "Add length-1 axes (in2[np.newaxis]) to broadcast a kernel over a stack, with axes=.")
    if axes is None:
        conv_axes = listed = list(range(in1.ndim))
    else:
        try:
            listed = [index(axes)] if np.ndim(axes) == 0 else [index(a) for a in axes]
        except TypeError:
            raise type_error(fn, "axes", "must be None, an int or a sequence of ints", repr(axes)) from None
        if not listed:
            raise value_error(fn, "axes", "must not be empty when given", repr(axes))
        if any(not -in1.ndim <= a < in1.ndim for a in listed):
            raise value_error(fn, "axes", f"must be valid axes of {in1.ndim}-d inputs", repr(axes))
        listed = [a % in1.ndim for a in listed]
        if len(set(listed)) != len(listed):
            raise value_error(fn, "axes", "must not repeat an axis", repr(axes))
        # As fftconvolve: axes where either input has length 1 just broadcast.
        conv_axes = sorted(a for a in listed if in1.shape[a] != 1 and in2.shape[a] != 1)
    for a in range(in1.ndim):
        if a not in conv_axes and not (in1.shape[a] == in2.shape[a] or 1 in (in1.shape[a], in2.shape[a])):
            raise value_error(fn, "in2", f"must match in1 or be 1 on axis {a}, which is not convolved",
                              f"shapes {shape_str(in1.shape)} and {shape_str(in2.shape)}")
    if mode == "valid":
        s1 = [in1.shape[a] for a in conv_axes]
        s2 = [in2.shape[a] for a in conv_axes]
        if not (all(p >= q for p, q in zip(s1, s2)) or all(q >= p for p, q in zip(s1, s2))):
            raise value_error(fn, "in2", "must be at least as large as in1 in every convolved dimension, or "
                              "at most as large in every one, for mode='valid'",
                              f"shapes {shape_str(in1.shape)} and {shape_str(in2.shape)}")
    return in1, in2, conv_axes, listed


def _effective_kernel(in1_shape, in2, mode, conv_axes, listed, correlate):
    """``in2`` as the convolution over ``conv_axes`` uses it.

    ``correlate``: reversed and conjugated along every axis correlated, ``listed``
    (all of them, or ``axes``), a listed axis where either input has length 1
    included: convolving there is a broadcast, but correlating reverses in2's
    slices. ``"same"``: the result has in1's shape on every axis, as
    ``scipy.signal.fftconvolve`` centres the whole result on in1, so an axis where
    in1 has length 1 and in2 more keeps the result of in2's middle slice (index
    ``(n - 1) // 2``); only that slice is convolved."""
    if correlate:  # correlate(a, b) = convolve(a, reversed conj(b)); kernels are not conjugated
        in2 = np.conj(in2[tuple(slice(None, None, -1) if ax in listed else slice(None) for ax in range(in2.ndim))])
    if mode == "same":
        in2 = in2[tuple(slice((n - 1) // 2, (n - 1) // 2 + 1) if ax not in conv_axes and m == 1 else slice(None)
                        for ax, (m, n) in enumerate(zip(in1_shape, in2.shape)))]
    return in2


# ---------------------------------------------------------------- full convolution

def _compute_dtype(dtype):
    """The dtype numconv computes in: bool/int -> float64, float16 -> float32."""
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind == "f" and dtype.itemsize > 8:
        return np.dtype(np.float64)
    if dtype.kind == "c" and dtype.itemsize > 16:
        return np.dtype(np.complex128)
    return dtype


#: ``_full_fft`` keeps an operand's spectrum when the other has this many times its bytes
KEEP_RATIO = 8


def _full_fft(a, b, axes, region=None):
    """The full convolution over ``axes`` by products of spectra, cut to ``region``
    (a slice per axis in ``axes``; default all of it). The transforms skip what
    is known to be zero or thrown away (``_paths.fft.forward``/``inverse``): a
    31 x 31 kernel on a 1024 x 1024 image, mode "same", costs about 2.5 full
    2-D transforms instead of 3.

    The smaller operand's spectrum, where it is at most ``1 / KEEP_RATIO`` of the
    other's bytes (a kernel), is kept between calls as a layer's kernel spectrum
    is (``_paths.fft.kept``, keyed by a digest of its values): a script that
    filters many images with one kernel transforms the kernel once (1024 x 1024
    float64 image, 31 x 31 kernel, mode "same": 9.0-10.3 -> 7.5 ms a call)."""
    import scipy.fft

    shape = [a.shape[ax] + b.shape[ax] - 1 for ax in axes]
    complex_data = a.dtype.kind == "c" or b.dtype.kind == "c"
    fshape = [scipy.fft.next_fast_len(n, real=not complex_data) for n in shape]
    workers = get_num_threads()
    spectra = []
    for u, v in ((a, b), (b, a)):
        def make(u=u):
            return fft_path.forward(u, fshape, axes, workers, real=not complex_data),
        key = None
        if KEEP_RATIO * u.nbytes <= v.nbytes and fft_path.SPECTRUM_CACHE_BYTES > 0:
            key = ("signal", fft_path.digest(u), tuple(fshape), tuple(axes), complex_data)
        spectra.append(fft_path.kept(key, make)[0])
    fa, fb = spectra
    shape_ab = np.broadcast_shapes(fa.shape, fb.shape)
    writable = [f for f in (fa, fb) if f.shape == shape_ab and not fft_path.is_kept(f)]
    spectrum = np.multiply(fa, fb, out=writable[0]) if writable else fa * fb
    if region is None:
        region = [slice(0, n) for n in shape]
    return fft_path.inverse(spectrum, fshape, axes, region, not complex_data, workers, _memory.empty)


def oa_lengths(n, k):
    """(block length, transform length) for overlap-add of a length-``n`` axis with
    a length-``k`` kernel: transforms of ~8 k points (a fast size), each block
    producing ``nfft - k + 1`` new outputs (PERF_NOTES: blocks of ~8192 for 1025
    taps beat one long transform)."""
    import scipy.fft

    nfft = scipy.fft.next_fast_len(max(8 * k, 64), real=True)
    nfft = min(nfft, scipy.fft.next_fast_len(n + k - 1, real=True))
    return nfft - k + 1, nfft


#: bytes of blocks (input and spectra) overlap-add transforms at once: a stack of
#: signals goes in chunks along its first axis (64 x 65536 float32, 257 taps: one
#: batched pass streamed ~50 MB of blocks and spectra through memory)
OA_CHUNK_BYTES = 4 << 20


def _oa_chunk_step(a, b, axes):
    """Signals per chunk of ``_full_oa`` along axis 0 (``OA_CHUNK_BYTES`` of
    blocks and spectra each), or None where the stack is one chunk."""
    if 0 in axes or a.shape[0] <= 1:
        return None
    n = max(a.shape[i] + b.shape[i] - 1 for i in axes)
    per_signal = 3 * n * np.result_type(a, b, np.float32).itemsize * \
        int(np.prod([max(a.shape[i], b.shape[i]) for i in range(1, a.ndim) if i not in axes]))
    step = max(1, OA_CHUNK_BYTES // max(per_signal, 1))
    return step if step < a.shape[0] else None


@_memory.calls_scratch
def _oa_chunks(a, b, axes, result, step, kspec, lo, hi):
    """``_full_oa`` of chunks ``lo ... hi - 1`` (``step`` signals each) into their
    rows of ``result``, transforms on the calling thread only (``in_shares``
    runs the shares side by side: pocketfft and NumPy's passes release the GIL;
    each worker thread borrows from its own scratch pool)."""
    for i in range(lo * step, min(a.shape[0], hi * step), step):
        _full_oa(a[i:i + step], b if b.shape[0] == 1 else b[i:i + step], axes, result[i:i + step], 1,
                 kspec if b.shape[0] == 1 else None)


#: microseconds per element of a stack chunk's input, roughly (its transforms,
#: product and overlap-add), for ``in_shares``' decision to split (64 x 65536
#: float32, 257 taps: ~1.5 ms per chunk of 5 signals on one thread)
OA_US_PER_ELEMENT = 4e-3


def _oa_plan(a, b, axes):
    """``(ax, swap, n, k, block, nfft, t_axes, fsizes, real)`` of ``_full_oa``: the
    blocked axis (the longest convolved one), whether ``b`` is the longer input
    there (then the two swap roles: convolution commutes), the blocked and kernel
    lengths, the block and transform lengths, the transform axes with the blocked
    axis moved last, the full transform sizes along the others, and whether the
    data are real."""
    import scipy.fft

    ax = max(axes, key=lambda i: max(a.shape[i], b.shape[i]))
    swap = b.shape[ax] > a.shape[ax]
    if swap:
        a, b = b, a
    n, k = a.shape[ax], b.shape[ax]
    block, nfft = oa_lengths(n, k)
    rest = [i for i in axes if i != ax]
    real = a.dtype.kind != "c" and b.dtype.kind != "c"
    # positions once ax is moved last and split into (blocks, nfft): the transforms run along nfft
    t_axes = [i if i < ax else i - 1 for i in rest] + [a.ndim]
    fsizes = [scipy.fft.next_fast_len(a.shape[i] + b.shape[i] - 1, real=real) for i in rest] + [nfft]
    return ax, swap, n, k, block, nfft, t_axes, fsizes, real


def _oa_kernel_spectrum(b, ax, t_axes, fsizes, real, workers):
    """The spectrum of the kernel ``b`` (the shorter input along ``ax``) as
    ``_full_oa`` multiplies it (``_oa_plan``'s transform axes and sizes)."""
    return fft_path.forward(np.moveaxis(b, ax, -1)[..., np.newaxis, :], fsizes, t_axes, workers, real=real)


#: microseconds per element of one of ``_full_oa``'s NumPy passes, roughly (for
#: ``in_shares``' decision to split them)
OA_PASS_US = 1e-3


def _oa_cut(am, ab, block, n, lo, hi):
    """Blocks ``lo ... hi - 1`` of ``am``'s last axis (``n`` long) into rows of
    ``ab`` (..., nb, nfft), zero past each block's ``block`` samples and past
    ``n``."""
    full = max(lo, min(hi, n // block))
    if lo < full:
        ab[..., lo:full, :block] = am[..., lo * block:full * block].reshape(am.shape[:-1] + (full - lo, block))
        ab[..., lo:full, block:] = 0
    for j in range(full, hi):  # the last block, partial
        ab[..., j, :n - j * block] = am[..., j * block:]
        ab[..., j, n - j * block:] = 0


def _oa_product(spec, kspec, lo, hi):
    """Blocks ``lo ... hi - 1`` of ``spec`` (..., nb, F) times ``kspec`` (..., 1, F), in place."""
    spec[..., lo:hi, :] *= kspec


def _oa_overlap(out, y, block, k, lo, hi):
    """Rows ``lo ... hi - 1`` of the overlap-add ``out`` (..., nb + 1, block) of the
    blocks' results ``y`` (..., nb, nfft): block ``j``'s outputs start at row
    ``j``, its tail (``k - 1 <= block`` values) spills into the start of row ``j +
    1``; the share with the last block also writes row ``nb``."""
    nb = y.shape[-2]
    out[..., lo:hi, :] = y[..., lo:hi, :block]
    out[..., lo + 1:hi, :k - 1] += y[..., lo:hi - 1, block:block + k - 1]
    if lo > 0:
        out[..., lo, :k - 1] += y[..., lo - 1, block:block + k - 1]
    if hi == nb:
        out[..., nb, :] = 0
        out[..., nb, :k - 1] += y[..., nb - 1, block:block + k - 1]


def _full_oa(a, b, axes, into=None, workers=None, kspec=None):
    """Overlap-add along the longest convolved axis, full transforms along the
    others; every block of a chunk of signals in one batched transform. With
    ``into`` (the full result's shape), the result is written there.

    A stack longer than one chunk (``_oa_chunk_step``) runs its chunks on
    ``workers`` threads side by side, each transforming single-threaded: the
    copies, the products and the overlap-add are NumPy passes on one thread
    each, and with the chunks one after another (pocketfft's threads only inside
    each transform) they ran on one core. The kernel's spectrum, the same for
    every chunk of a stack with one kernel, is computed once and passed to each
    as ``kspec``. (64 x 65536 float32, 257 taps: 14-17 -> ~12 ms.) One chunk
    (a single long signal) splits those passes into shares of blocks on the
    threads instead (``_oa_cut``, ``_oa_product``, ``_oa_overlap``)."""
    workers = get_num_threads() if workers is None else workers
    step = _oa_chunk_step(a, b, axes) if into is None else None
    if step is not None:  # each chunk straight into its rows of the result
        shape = [p + q - 1 if i in axes else max(p, q) for i, (p, q) in enumerate(zip(a.shape, b.shape))]
        result = _memory.empty(shape, np.result_type(a, b))
        ax, swap, n, _, block, _, t_axes, fsizes, real = _oa_plan(a[:1], b[:1], axes)
        shared = b.shape[0] == 1 and not swap and block < n
        kspec = np.array(_oa_kernel_spectrum(b, ax, t_axes, fsizes, real, workers)) if shared else None  # (own memory)
        in_shares(_oa_chunks, -(-a.shape[0] // step), workers, a, b, axes, result, step, kspec,
                  us=OA_US_PER_ELEMENT * a.size)
        return result

    ax, swap, n, k, block, nfft, t_axes, fsizes, real = _oa_plan(a, b, axes)
    if swap:
        a, b = b, a
    if block >= n:  # a single block: plain FFT
        full = _full_fft(a, b, axes)
        if into is None:
            return full
        into[...] = full
        return into
    nb = -(-n // block)
    # move the blocked axis last and split it into (nb, block)
    am = np.moveaxis(a, ax, -1)
    # blocks laid out at the transform length already (zero tails), in one copy
    # into pooled scratch (padding to `block` and letting scipy.fft pad to `nfft`
    # copied twice, into fresh pages). This pass, the product and the overlap-add
    # run in shares of blocks on ``workers`` threads (NumPy releases the GIL):
    # on one thread they took ~3 of 9.9 ms of a 2**20-sample float64 signal with
    # 1025 taps.
    ab = _memory.scratch(am.shape[:-1] + (nb, nfft), am.dtype)
    in_shares(_oa_cut, nb, workers, am, ab, block, n, us=ab.size * OA_PASS_US)
    spec = fft_path.forward(ab, fsizes, t_axes, workers, real=real)
    _memory.recycle(ab)
    if kspec is None:
        kspec = _oa_kernel_spectrum(b, ax, t_axes, fsizes, real, workers)
    if np.broadcast_shapes(spec.shape, kspec.shape) == spec.shape:
        in_shares(_oa_product, nb, workers, spec, kspec, us=2 * spec.size * OA_PASS_US)
    else:
        spec = spec * kspec
    sizes = [a.shape[i] + b.shape[i] - 1 for i in axes if i != ax]
    y = fft_path.inverse(spec, fsizes, t_axes, [slice(0, m) for m in sizes] + [slice(None)], real, workers,
                         _memory.scratch)
    out = (_memory.empty if into is None else _memory.scratch)(y.shape[:-2] + (nb + 1, block), y.dtype)
    in_shares(_oa_overlap, nb, workers, out, y, block, k, us=2 * out.size * OA_PASS_US)
    for buf in (spec, kspec, y):  # the next chunk of signals reuses them
        _memory.recycle(buf)
    full = np.moveaxis(out.reshape(y.shape[:-2] + ((nb + 1) * block,))[..., :n + k - 1], -1, ax)
    if into is None:
        return full
    into[...] = full
    _memory.recycle(out)
    return into


def _full_direct(a, b, axes):
    """Full convolution over ``axes`` with numconv's direct kernels: the kernel is
    flipped (convolution = correlation with the reversed kernel) and zero-padded
    by ``k - 1`` on both sides; non-convolved axes become the batch (shared
    kernel) or depthwise channels (one kernel per signal)."""
    r = len(axes)
    if r > 3:  # numconv's kernels have at most 3 spatial axes: loop over the leading kernel taps
        lead, rest = axes[0], axes[1:]
        full_shape = [p + q - 1 if ax in axes else max(p, q) for ax, (p, q) in enumerate(zip(a.shape, b.shape))]
        out = np.zeros(full_shape, np.result_type(a, b))
        for j in range(b.shape[lead]):
            part = _full_direct(a, np.take(b, [j], axis=lead), rest)  # length a.shape[lead] along lead
            index = [slice(None)] * out.ndim
            index[lead] = slice(j, j + a.shape[lead])
            out[tuple(index)] += part
        return out
    nd = a.ndim
    other = [ax for ax in range(nd) if ax not in axes]
    a_m = np.moveaxis(a, axes, range(nd - r, nd))
    b_m = np.moveaxis(b, axes, range(nd - r, nd))
    batch = np.broadcast_shapes(a_m.shape[:nd - r], b_m.shape[:nd - r])
    s1, s2 = a_m.shape[nd - r:], b_m.shape[nd - r:]
    m = int(np.prod(batch))
    flip = (slice(None),) * (nd - r) + (slice(None, None, -1),) * r
    if all(n == 1 for n in b_m.shape[:nd - r]):  # one kernel for every signal: batch
        x = np.broadcast_to(a_m, batch + s1).reshape((m,) + s1 + (1,))
        w = np.ascontiguousarray(b_m[flip]).reshape(s2 + (1, 1))
        y = _ops.conv(x, w, padding="full", method="direct")
    else:  # one kernel per signal: a depthwise convolution, channels = signals
        x = np.broadcast_to(a_m, batch + s1).reshape((1, m) + s1)
        w = np.moveaxis(np.broadcast_to(b_m[flip], batch + s2).reshape((m,) + s2), 0, -1)[..., np.newaxis, :]
        y = _ops.conv(x, w, padding="full", groups=m, data_format="channels_first", method="direct")
    full = y.reshape(batch + tuple(p + q - 1 for p, q in zip(s1, s2)))
    return np.moveaxis(full, range(nd - r, nd), axes) if other or r else full


def _full_exact(a, b, axes, dtype):
    """The full convolution over ``axes`` of integer arrays in ``dtype`` (int64 or
    uint64) arithmetic, which wraps modulo 2**64: cast to the result's integer
    dtype, that is SciPy's integer direct path, which wraps in the result dtype
    (exact values to the int64 range, and the same wrapped values past the
    result's). One pass over the result per element of the smaller operand."""
    a = a.astype(dtype, copy=False)
    b = b.astype(dtype, copy=False)
    if np.prod([b.shape[ax] for ax in axes]) > np.prod([a.shape[ax] for ax in axes]):
        a, b = b, a  # (convolution commutes, broadcast axes included)
    out = np.zeros([p + q - 1 if ax in axes else max(p, q) for ax, (p, q) in enumerate(zip(a.shape, b.shape))],
                   dtype)
    for taps in np.ndindex(*[b.shape[ax] for ax in axes]):
        at = dict(zip(axes, taps))
        tap = b[tuple(slice(at[ax], at[ax] + 1) if ax in at else slice(None) for ax in range(b.ndim))]
        window = tuple(slice(at[ax], at[ax] + a.shape[ax]) if ax in at else slice(None) for ax in range(out.ndim))
        out[window] += a * tap
    return out


def _integer_bound(in1, in2, axes):
    """An upper bound on the magnitude of any partial sum of the convolution:
    the largest magnitudes' product times the terms per output."""
    return float(np.abs(in1).max(initial=0)) * float(np.abs(in2).max(initial=0)) * \
        float(np.prod([min(in1.shape[a], in2.shape[a]) for a in axes]))


def _needs_exact(in1, in2, axes, result_dtype):
    """Whether integer inputs need ``_full_exact``: an integer result whose partial
    sums could pass 2**52, where float64 would round them. (Below, the float64
    sums are exact, and ``_convolve`` wraps them into the result dtype.)"""
    if result_dtype.kind not in "iu":  # (bool with an integer: an integer result, bounded the same way)
        return False
    return _integer_bound(in1, in2, axes) >= 2.0 ** 52


def _wide_integer(dtype):
    """The 64-bit integer type integer results are computed or rounded into before
    the cast that wraps them into ``dtype``."""
    return np.dtype(np.uint64 if dtype == np.uint64 else np.int64)


def _wrap_64(out, dtype):
    """Rounded float results past the 64-bit integers' range, wrapped modulo 2**64
    into it as the integer sums wrap (casting them is undefined: NumPy gives
    INT_MIN, and int32 results came out 0). The transforms' values are not exact
    at that size, so neither are these; "direct" is."""
    r = np.fmod(out, 2.0 ** 64)  # exact; (-2**64, 2**64)
    if dtype == np.uint64:  # unsigned sums are >= 0: below 0 is rounding
        return np.maximum(r, 0, out=r)
    r[r >= 2.0 ** 63] -= 2.0 ** 64  # exact: such values are multiples of 2**11
    r[r < -2.0 ** 63] += 2.0 ** 64
    return r


def _mode_region(s1, s2, axes, mode):
    """The part of the full result ``mode`` keeps, a slice per axis in ``axes``:
    "same" centres on in1, "valid" keeps |s1 - s2| + 1."""
    region = []
    for ax in axes:
        full = s1[ax] + s2[ax] - 1
        n = full if mode == "full" else s1[ax] if mode == "same" else abs(s1[ax] - s2[ax]) + 1
        start = (full - n) // 2
        region.append(slice(start, start + n))
    return region


@_memory.calls_scratch
def _convolve(fn, in1, in2, mode, method, axes, correlate):
    in1, in2, conv_axes, listed = _normalize(fn, in1, in2, mode, method, axes)
    result_dtype = np.result_type(in1, in2)
    for arg, arr in (("in1", in1), ("in2", in2)):
        if arr.size == 0:  # as SciPy, which raises for empty inputs
            raise value_error(fn, arg, "must not be empty", f"shape {shape_str(arr.shape)}")
    in2 = _effective_kernel(in1.shape, in2, mode, conv_axes, listed, correlate)
    region = _mode_region(in1.shape, in2.shape, conv_axes, mode)
    if method in ("auto", "direct") and _needs_exact(in1, in2, conv_axes, result_dtype):
        full = _full_exact(in1, in2, conv_axes, _wide_integer(result_dtype))
        out = full[tuple(region[conv_axes.index(ax)] if ax in conv_axes else slice(None) for ax in range(full.ndim))]
        return out.astype(result_dtype, copy=False)
    if method == "auto":
        method = _choose(in1, in2, mode, conv_axes)
    a = in1.astype(_compute_dtype(in1.dtype), copy=False)
    b = in2.astype(_compute_dtype(in2.dtype), copy=False)
    if not conv_axes:
        out = a * b
    elif method == "fft":
        out = _full_fft(a, b, conv_axes, region)
    else:
        full = _full_oa(a, b, conv_axes) if method == "oa" else _full_direct(a, b, conv_axes)
        out = full[tuple(region[conv_axes.index(ax)] if ax in conv_axes else slice(None) for ax in range(full.ndim))]
    if result_dtype.kind in "biu":
        out = np.around(out.real if np.iscomplexobj(out) else out)
        if result_dtype.kind in "iu":  # exact below 2**52: wrapped into the result dtype as SciPy's direct path
            if _integer_bound(in1, in2, conv_axes) >= 2.0 ** 63:  # only an explicit "fft"/"oa" gets here
                out = _wrap_64(out, result_dtype)
            out = out.astype(_wide_integer(result_dtype))
    return out.astype(result_dtype, copy=False)  # a view for "same"/"valid", as SciPy's _centered


# ---------------------------------------------------------------- public API

def convolve(in1, in2, mode="full", method="auto", axes=None):
    """Convolve two N-d arrays, as ``scipy.signal.convolve`` (plus ``axes``).

    Parameters
    ----------
    in1, in2 : array_like
        Inputs with the same number of dimensions.
    mode : {"full", "valid", "same"}, default "full"
        ``"full"``: every overlap; ``"valid"``: only complete overlaps (the larger
        input slides over the smaller); ``"same"``: the size of ``in1``, centred on
        the full result.
    method : {"auto", "direct", "fft", "oa"}, default "auto"
        ``"direct"``: numconv's direct kernels; integers in float64 while every
        partial sum stays below 2**52 (exact), else in 64-bit integer arithmetic
        (NumPy, one pass per element of the smaller input), either way wrapped
        into the result dtype as SciPy's direct path wraps (``"auto"`` takes
        the same route for integers); ``"fft"``: products of spectra; ``"oa"``:
        overlap-add, blocks of the longest axis transformed together (as
        ``scipy.signal.oaconvolve``); both compute integers in float64, exact
        only below 2**52, rounded, and wrapped modulo 2**64 into the result
        dtype (SciPy's casts give INT_MIN past int64); ``"auto"``:
        `choose_conv_method`.
    axes : int or sequence of int, optional
        Convolve over these axes only (default: all); the other axes broadcast, as
        in ``scipy.signal.fftconvolve``, and ``"same"`` keeps in1's shape on them
        too (where in1 has length 1 and in2 more: the result of in2's middle
        slice, as ``fftconvolve``). ``correlate`` reverses in2 along every axis
        listed.

    Returns
    -------
    ndarray
        ``np.result_type(in1, in2)``; integer inputs give rounded integer results,
        past the dtype's range wrapped as SciPy's direct path computes them.

    Examples
    --------
    >>> import numpy as np
    >>> from numconv import signal
    >>> signal.convolve([1, 2, 3], [0, 1, 0.5])
    array([0. , 1. , 2.5, 4. , 1.5])
    >>> signal.convolve(np.ones((64, 1000)), np.ones((1, 5)), mode="same", axes=1).shape
    (64, 1000)
    """
    return _convolve("convolve", in1, in2, mode, method, axes, correlate=False)


def correlate(in1, in2, mode="full", method="auto", axes=None):
    """Cross-correlate two N-d arrays, as ``scipy.signal.correlate`` (plus ``axes``).

    ``z[k] = sum_l in1[l] * conj(in2[l - k])`` (SciPy's definition: ``in2`` is
    conjugated). Parameters and modes as in `convolve`.

    Examples
    --------
    >>> from numconv import signal
    >>> signal.correlate([1, 2, 3], [0, 1, 0.5])
    array([0.5, 2. , 3.5, 3. , 0. ])
    """
    return _convolve("correlate", in1, in2, mode, method, axes, correlate=True)


def _direct_cost(in1, in2, axes):
    """Multiply-adds of the direct method (full output x the smaller input)."""
    n_out = np.prod([in1.shape[a] + in2.shape[a] - 1 for a in axes])
    return float(n_out) * float(np.prod([min(in1.shape[a], in2.shape[a]) for a in axes]))


def _fft_cost(in1, in2, axes):
    """Three transforms of the full size: ``3 n log2 n``."""
    n = float(np.prod([in1.shape[a] + in2.shape[a] - 1 for a in axes]))
    return 3.0 * n * max(np.log2(n), 1.0)


def _oa_cost(in1, in2, axes):
    """Transforms of ``blocks x nfft`` points along the blocked axis (full size
    along the others), plus ``OA_PASSES`` copies per point (padding, overlap-add);
    ``inf`` when one block would cover the whole axis."""
    ax = max(axes, key=lambda i: max(in1.shape[i], in2.shape[i]))
    n, k = max(in1.shape[ax], in2.shape[ax]), min(in1.shape[ax], in2.shape[ax])
    block, nfft = oa_lengths(n, k)
    if block >= n:
        return np.inf
    other = float(np.prod([in1.shape[a] + in2.shape[a] - 1 for a in axes if a != ax]))
    m = -(-n // block) * nfft * other
    return 3.0 * m * max(np.log2(nfft * other), 1.0) + OA_PASSES * m


#: Relative cost of one direct multiply-add by the dtype computed in: float32 and
#: float64 run on the narrow pixel-vectorised kernel (measured 0.02-0.06 and
#: 0.04-0.07 ns per multiply-add on 512^2 images and 2^18-sample signals with 7-513
#: taps), complex on the register-tile kernel with one of its lanes in use
#: (0.23-0.55 ns).
DIRECT_DTYPE_COST = {"f4": 1.0, "f8": 1.5, "c8": 12.0, "c16": 12.0}
#: Cost of one FFT "operation" (of ``3 n log2 n``) in float32 direct multiply-adds:
#: 0.14-0.47 ns per operation against ~0.03 ns per multiply-add. Fitted to the
#: crossovers measured on the development machine (2 Zen 5 cores, 2026-11-23):
#: a 512^2 float32 image goes from direct to FFT between 15 x 15 (1.7 vs 2.2 ms)
#: and 31 x 31 (5.8 vs 2.2 ms), float64 between 15 x 15 (2.8 vs 7.0 ms) and 31 x 31
#: (10.3 vs 5.0 ms), complex64 already at 7 x 7 (6.8 vs 2.2 ms).
FFT_OP_COST = 8.0
#: The same for overlap-add's operations, which are cheaper per point (short
#: transforms that stay in cache): a 2^18-sample float32 signal goes from direct to
#: overlap-add between 33 taps (0.5 vs 1.2 ms) and 129 (1.2 vs 0.8 ms), float64 the
#: same, complex64 by 33 taps (4.7 vs 1.2 ms). Overlap-add is chosen only for one
#: convolved axis: on 512^2 images it was 1.1-2.9x slower than one FFT at 7-31 taps.
OA_OP_COST = 3.0
#: Overlap-add's extra passes over its blocks (pad, add the tails), in FFT operations.
OA_PASSES = 8.0


def _choose(in1, in2, mode, axes):
    """The cheapest of direct / fft / oa by the cost model above, except that the
    transform paths are never used for integer inputs whose exact result could
    exceed 2**52 (FFT rounding would lose it; SciPy guards the same way) or for
    bool inputs."""
    if not axes:
        return "direct"
    if in1.dtype.kind in "biu" and in2.dtype.kind in "biu":
        if in1.dtype.kind == "b" or in2.dtype.kind == "b" or _integer_bound(in1, in2, axes) >= 2 ** 52:
            return "direct"
    dtype = np.result_type(in1, in2, np.float32)
    costs = {"direct": DIRECT_DTYPE_COST.get(dtype.kind + str(dtype.itemsize), 1.5) * _direct_cost(in1, in2, axes),
             "fft": FFT_OP_COST * _fft_cost(in1, in2, axes)}
    if len(axes) == 1:
        costs["oa"] = OA_OP_COST * _oa_cost(in1, in2, axes)
    return min(costs, key=costs.get)


def choose_conv_method(in1, in2, mode="full", measure=False):
    """The method `convolve` / `correlate` use for ``method="auto"``, as
    ``scipy.signal.choose_conv_method``.

    A cost model: direct multiply-adds (weighted by dtype, ``DIRECT_DTYPE_COST``)
    against ``FFT_OP_COST`` times ``3 n log2 n`` for transforms of ``n`` points and,
    for one convolved axis, ``OA_OP_COST`` times overlap-add's block transforms
    plus ``OA_PASSES`` copies per point. The constants are fitted to crossovers
    measured on the development machine (2 Zen 5 cores; see their comments): a
    fit from 24 shapes, not a regression over a grid. Integer inputs whose exact result could pass 2**52
    always get ``"direct"``. Returns ``"direct"``, ``"fft"`` or ``"oa"`` (SciPy's
    returns only the first two). With ``measure=True`` every method is timed on
    these inputs and ``(fastest, {method: seconds})`` is returned.

    Examples
    --------
    >>> import numpy as np
    >>> from numconv import signal
    >>> signal.choose_conv_method(np.ones(10), np.ones(3))
    'direct'
    >>> signal.choose_conv_method(np.ones((512, 512)), np.ones((31, 31)))
    'fft'
    """
    in1, in2, axes, _ = _normalize("choose_conv_method", in1, in2, mode, "auto", None)
    if not measure:
        return _choose(in1, in2, mode, axes)
    times = {}
    for method in ("direct", "fft", "oa"):
        convolve(in1, in2, mode, method)  # warm up (JIT, FFT plans)
        t0 = time.perf_counter()
        convolve(in1, in2, mode, method)
        times[method] = time.perf_counter() - t0
    return min(times, key=times.get), times
