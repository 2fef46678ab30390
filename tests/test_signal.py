"""numconv.signal against scipy.signal: same shapes, dtypes and values."""
import numba
import numpy as np
import pytest
import scipy.signal as ss

import numconv
from numconv import signal


def _cases(seed=0, n=120):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        nd = int(rng.integers(1, 4))
        s1 = tuple(int(v) for v in rng.integers(1, 9, nd))
        s2 = tuple(int(v) for v in rng.integers(1, 9, nd))
        kind = ["f", "c", "i", "f32"][i % 4]
        out.append(dict(index=i, s1=s1, s2=s2, kind=kind, seed=int(rng.integers(1 << 30))))
    return out


def _arrays(p):
    rng = np.random.default_rng(p["seed"])

    def make(shape):
        if p["kind"] == "i":
            return rng.integers(-7, 8, shape)
        if p["kind"] == "c":
            return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        if p["kind"] == "f32":
            return rng.standard_normal(shape).astype(np.float32)
        return rng.standard_normal(shape)

    return make(p["s1"]), make(p["s2"])


@pytest.mark.parametrize("p", _cases(), ids=lambda p: f"{p['index']}-{p['kind']}-{p['s1']}x{p['s2']}")
@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_matches_scipy(p, fn):
    a, b = _arrays(p)
    for mode in ("full", "same", "valid"):
        for method in ("direct", "fft", "oa", "auto"):
            msg = f"{fn} mode={mode} method={method} {p}"
            try:  # SciPy has no "oa" method in convolve: its fft result is the oracle
                ref = getattr(ss, fn)(a, b, mode=mode, method="fft" if method == "oa" else method)
            except ValueError:
                with pytest.raises(ValueError):
                    getattr(signal, fn)(a, b, mode=mode, method=method)
                continue
            got = getattr(signal, fn)(a, b, mode=mode, method=method)
            assert got.shape == ref.shape and got.dtype == ref.dtype, msg
            scale = max(1.0, float(np.abs(ref).max(initial=0)))
            tol = 1e-4 if p["kind"] == "f32" else 1e-10
            np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale, err_msg=msg)


@pytest.mark.parametrize("s1, s2, axes", [
    ((64, 300), (1, 17), 1),            # a stack of signals, one kernel
    ((64, 300), (64, 17), 1),           # one kernel per signal (depthwise)
    ((5, 40, 3), (5, 7, 1), 1),
    ((6, 20, 30), (1, 5, 4), (1, 2)),
    ((3, 4, 20), (3, 1, 6), -1),
    ((2, 9, 9, 9, 9), (1, 3, 2, 3, 2), (1, 2, 3, 4)),  # 4 convolved axes on the direct path
    ((7, 7, 7, 7), (2, 3, 2, 3), None),
    ((3, 4000), (3, 129), 1),           # long enough for several overlap-add blocks
    ((5000,), (301,), None),
    ((301,), (5000,), None),            # the longer input second
    ((20, 3000, 4), (1, 55, 3), (1, 2)),
    # in1 of length 1 where in2 is longer, on an axis that only broadcasts (not
    # listed, or listed and dropped as fftconvolve drops length-1 axes): "same"
    # keeps in1's length 1 there, the result of in2's middle slice
    ((1, 300), (64, 17), 1),
    ((2, 1, 60), (2, 5, 3), (1, 2)),
    ((3, 1, 70), (1, 4, 5), 2),
    ((1, 1, 50), (6, 4, 5), (0, 2)),
])
@pytest.mark.parametrize("method", ["direct", "fft", "oa"])
def test_axes_as_fftconvolve(s1, s2, axes, method):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(s1), rng.standard_normal(s2)
    for mode in ("full", "same", "valid"):
        try:
            ref = ss.fftconvolve(a, b, mode=mode, axes=axes)
        except ValueError:
            continue
        got = signal.convolve(a, b, mode=mode, method=method, axes=axes)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-10 * np.abs(ref).max())
        # correlate over axes = fftconvolve with in2 reversed and conjugated on those axes
        ax = [x % a.ndim for x in (range(a.ndim) if axes is None else np.atleast_1d(axes))]
        rev = np.conj(b[tuple(slice(None, None, -1) if i in ax else slice(None) for i in range(b.ndim))])
        np.testing.assert_allclose(signal.correlate(a, b, mode=mode, method=method, axes=axes),
                                   ss.fftconvolve(a, rev, mode=mode, axes=axes), atol=1e-10 * np.abs(ref).max())


def test_integers_stay_exact_and_auto_avoids_fft_when_it_would_round():
    rng = np.random.default_rng(5)
    # |products| < 2**44 and 300 terms: the bound passes 2**52 (so FFT could round
    # wrongly), while the actual sums stay exact in float64 (< 2**53).
    a = rng.integers(-2**22, 2**22, 4000)
    b = rng.integers(-2**22, 2**22, 300)
    ref = ss.convolve(a, b, method="direct")
    assert signal.choose_conv_method(a, b) == "direct"  # |result| may pass 2**52
    got = signal.convolve(a, b)
    assert got.dtype == ref.dtype
    assert np.array_equal(got, ref)
    small = np.ones((512, 512), int), np.ones((31, 31), int)
    assert signal.choose_conv_method(*small) == "fft"  # exact in double precision


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64])
def test_integer_overflow_wraps_as_scipys_direct_path(dtype):
    """Integer results past the result dtype's range wrap as SciPy's direct path
    computes them (in the integer type), and int64 results past 2**53 are exact:
    float64 sums cast back had given 0 or INT_MIN, or lost the last digits."""
    top = np.iinfo(dtype).max
    a, b = np.full(50, top, dtype), np.full(30, top, dtype)
    for mode in ("full", "same", "valid"):
        for fn in ("convolve", "correlate"):
            ref = getattr(ss, fn)(a, b, mode=mode, method="direct")
            for method in ("auto", "direct"):
                got = getattr(signal, fn)(a, b, mode=mode, method=method)
                assert got.dtype == ref.dtype and np.array_equal(got, ref), (fn, mode, method)
    rng = np.random.default_rng(int(top % 1000))
    lo = np.iinfo(dtype).min // 2
    x = rng.integers(lo, top, (3, 9, 7), dtype=dtype, endpoint=True)
    k = rng.integers(lo, top, (2, 4, 9), dtype=dtype, endpoint=True)  # along the last axis the larger
    for mode in ("full", "same"):
        assert np.array_equal(signal.convolve(x, k, mode=mode), ss.convolve(x, k, mode=mode, method="direct"))
    stack = signal.correlate(x[0], k[0, :1], mode="same", axes=1)  # one kernel per row, broadcast
    assert np.array_equal(stack, np.stack([ss.correlate(r, k[0, 0], mode="same", method="direct") for r in x[0]]))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint64])
def test_explicit_transforms_wrap_integers_past_int64_without_undefined_casts(dtype):
    """An explicit "fft"/"oa" computes integers in float64 (as SciPy's does);
    values past 2**63 are wrapped modulo 2**64 into the dtype, not cast (NumPy's
    undefined cast gave INT_MIN and an "invalid value" warning, int32 gave 0)."""
    import warnings

    top = np.iinfo(dtype).max
    a, b = np.full(50, top, dtype), np.full(30, top, dtype)
    for method in ("fft", "oa"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = signal.convolve(a, b, method=method)
        assert got.dtype == dtype and got.shape == (79,)
    small = np.arange(-20, 20, dtype=np.int64) if dtype != np.uint64 else np.arange(40, dtype=dtype)
    for method in ("fft", "oa"):  # below 2**52 still exact, negative values included
        assert np.array_equal(signal.convolve(small, small[:7], method=method), ss.convolve(small, small[:7]))


def test_big_endian_inputs():
    """'>f8' and '>c16' inputs give SciPy's results in native byte order (pocketfft
    raised "unsupported data type"; the direct path named ``conv``'s ``x``)."""
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal(300), rng.standard_normal(20)
    for dt in (">f8", ">f4", ">c16"):
        for method in ("auto", "direct", "fft", "oa"):
            got = signal.convolve(a.astype(dt), b.astype(dt), method=method)
            ref = ss.convolve(a.astype(dt[1:]), b.astype(dt[1:]))
            assert got.dtype == ref.dtype and got.dtype.isnative, (dt, method)
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_int64_results_past_2_to_the_53_are_exact():
    assert signal.convolve(np.array([2 ** 53 + 1, 3]), np.array([1]))[0] == 2 ** 53 + 1
    a, b = np.array([3_000_000_000, 7]), np.array([3_000_000_001, 1])
    assert np.array_equal(signal.convolve(a, b), ss.convolve(a, b, method="direct"))
    assert np.array_equal(signal.convolve(a[:, None], b[None, :], axes=0), a[:, None] * b[None, :])  # broadcast only


def test_choose_conv_method():
    assert signal.choose_conv_method(np.ones(10), np.ones(3)) == "direct"
    assert signal.choose_conv_method(np.ones((1024, 1024)), np.ones((31, 31))) == "fft"
    assert signal.choose_conv_method(np.ones((1024, 1024)), np.ones((5, 5))) == "direct"
    assert signal.choose_conv_method(np.ones(2**20), np.ones(1025)) == "oa"
    best, times = signal.choose_conv_method(np.ones(200), np.ones(9), measure=True)
    assert best in times and set(times) == {"direct", "fft", "oa"}
    assert all(t > 0 for t in times.values())


def test_empty_inputs_raise_like_scipy():
    for fn in ("convolve", "correlate"):
        with pytest.raises(ValueError):
            getattr(ss, fn)(np.array([]), np.array([1.0]))
        with pytest.raises(ValueError, match=r"in1 must not be empty; got shape \(0,\)"):
            getattr(signal, fn)(np.array([]), np.array([1.0]))
        with pytest.raises(ValueError, match=r"in2 must not be empty"):
            getattr(signal, fn)(np.array([1.0]), np.array([]))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"unknown mode 'foo'; expected one of 'full', 'valid', 'same'"):
        signal.convolve([1, 2], [1], mode="foo")
    with pytest.raises(ValueError, match=r"unknown method 'fast'; expected one of 'auto', 'direct', 'fft', 'oa'"):
        signal.correlate([1, 2], [1], method="fast")
    with pytest.raises(ValueError, match=r"in2 must have as many dimensions as in1 \(2\).*in2\[np.newaxis\]"):
        signal.convolve(np.ones((3, 3)), np.ones(3))
    with pytest.raises(ValueError, match=r"for mode='valid'"):
        signal.convolve(np.ones((5, 2)), np.ones((2, 5)), mode="valid")
    with pytest.raises(TypeError, match=r"in1 must have a numeric dtype"):
        signal.convolve(np.array(["a", "b"]), [1])
    with pytest.raises(ValueError, match=r"axes must be valid axes of 2-d inputs"):
        signal.convolve(np.ones((3, 3)), np.ones((1, 3)), axes=2)
    with pytest.raises(ValueError, match=r"must match in1 or be 1 on axis 0"):
        signal.convolve(np.ones((3, 9)), np.ones((2, 3)), axes=1)


def test_inputs_are_not_modified():
    a = np.arange(20.0).reshape(4, 5)
    b = np.arange(6.0).reshape(2, 3) + 1j
    a0, b0 = a.copy(), b.copy()
    for method in ("direct", "fft"):
        signal.correlate(a, b, method=method)
        signal.convolve(a, b, mode="same", method=method)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


@pytest.mark.parametrize("a_shape, v_shape, axes, kind", [
    ((5, 3000), (1, 65), 1, "f"),        # one kernel: its spectrum computed once for every chunk
    ((5, 3000), (5, 65), 1, "f"),        # one kernel per signal
    ((5, 300), (1, 3000), 1, "f"),       # kernel longer than the signals: they swap roles
    ((5, 4, 900), (1, 3, 65), (1, 2), "c"),  # a second convolved axis, complex
])
def test_overlap_add_chunks_a_stack_of_signals(monkeypatch, a_shape, v_shape, axes, kind):
    """A stack of signals goes through overlap-add in chunks along its first axis
    (``OA_CHUNK_BYTES``, made tiny here), shared out to threads: the same result
    as one pass and as SciPy, and bit for bit the same with 1 and 2 threads."""
    rng = np.random.default_rng(21)
    a = rng.standard_normal(a_shape)
    v = rng.standard_normal(v_shape)
    if kind == "c":
        v = v + 1j * rng.standard_normal(v_shape)
    whole = signal.convolve(a, v, method="oa", axes=axes)
    monkeypatch.setattr(signal, "OA_CHUNK_BYTES", 1)
    monkeypatch.setattr(signal, "OA_US_PER_ELEMENT", 1.0)  # worth sharing out however small
    chunked, before = {}, numconv.get_num_threads()
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numconv.set_num_threads(threads)
            chunked[threads] = signal.convolve(a, v, method="oa", axes=axes)
    finally:
        numconv.set_num_threads(before)
    most = chunked[max(chunked)]
    np.testing.assert_allclose(most, whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(most, ss.oaconvolve(a, v, axes=axes), rtol=1e-10, atol=1e-10)
    assert np.array_equal(chunked[1], most)


@pytest.mark.parametrize("a_shape, v_shape, axes, kind", [
    ((20000,), (129,), 0, "f"),              # one signal: every pass split into shares of blocks
    ((3, 6000), (3, 101), 1, "c"),           # a batch axis along, complex
    ((7000, 4), (65, 3), (0, 1), "f"),       # a second convolved axis before the blocked one
    ((2500,), (300,), 0, "f"),               # the last block partial, a tail longer than a block's start
])
def test_overlap_add_passes_in_shares_give_the_same_bits(monkeypatch, a_shape, v_shape, axes, kind):
    """The overlap-add passes (blocks cut out, products, overlap-add) split into
    shares of blocks on the threads (``OA_PASS_US`` made large so that even these
    small cases split): bit for bit the result on one thread, and SciPy's."""
    rng = np.random.default_rng(22)
    a = rng.standard_normal(a_shape)
    v = rng.standard_normal(v_shape)
    if kind == "c":
        a, v = a + 1j * rng.standard_normal(a_shape), v + 1j * rng.standard_normal(v_shape)
    monkeypatch.setattr(signal, "OA_PASS_US", 1.0)  # worth sharing out however small
    got, before = {}, numconv.get_num_threads()
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numconv.set_num_threads(threads)
            for mode in ("full", "same"):
                got[threads, mode] = signal.convolve(a, v, mode=mode, method="oa", axes=axes)
    finally:
        numconv.set_num_threads(before)
    for mode in ("full", "same"):
        assert np.array_equal(got[1, mode], got[max(t for t, _ in got), mode])
        np.testing.assert_allclose(got[1, mode], ss.oaconvolve(a, v, mode=mode, axes=axes), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape, axes, kind", [
    ((31, 31), (0, 1), "f"),
    ((5, 7, 3), (0, 1, 2), "f"),
    ((4, 9, 6), (1, 2), "c"),
    ((3, 10, 2, 5), (1, 3), "f32"),
    ((12,), (0,), "f"),
    ((6, 5), (1,), "c64"),
])
def test_pruned_transforms_match_scipy_fftn(shape, axes, kind):
    """``_paths.fft.forward`` is ``rfftn``/``fftn`` with zero extension, pass by
    pass; ``inverse`` is ``irfftn``/``ifftn`` cut to a region (steps included)."""
    import scipy.fft

    from numconv import _memory
    from numconv._paths import fft

    rng = np.random.default_rng(len(shape) * 10 + len(axes))
    a = rng.standard_normal(shape)
    if kind.startswith("c"):
        a = a + 1j * rng.standard_normal(shape)
    a = a.astype({"f": np.float64, "f32": np.float32, "c": np.complex128, "c64": np.complex64}[kind])
    real = a.dtype.kind != "c"
    fshape = [a.shape[ax] + 3 + i for i, ax in enumerate(axes)]
    tol = 1e-4 if a.dtype in (np.float32, np.complex64) else 1e-10
    a0 = a.copy()
    ref = (scipy.fft.rfftn if real else scipy.fft.fftn)(a, fshape, axes=axes)
    got = _memory.calls_scratch(fft.forward)(a, fshape, axes, 1)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())
    np.testing.assert_array_equal(a, a0)
    if real:  # a real input taken as complex: the full spectrum
        full = fft.forward(a, fshape, axes, 2, real=False)
        np.testing.assert_allclose(full, scipy.fft.fftn(a, fshape, axes=axes), rtol=tol, atol=tol * np.abs(ref).max())
    region = [slice(1, n - 1, 2) if i % 2 == 0 else slice(2, n) for i, n in enumerate(fshape)]
    back = (scipy.fft.irfftn if real else scipy.fft.ifftn)(ref, fshape, axes=axes)
    index = [slice(None)] * a.ndim
    for ax, r in zip(axes, region):
        index[ax] = r
    got = fft.inverse(ref.copy(), fshape, axes, region, real, 2)
    np.testing.assert_allclose(got, back[tuple(index)], rtol=tol, atol=tol * np.abs(back).max())


def test_without_the_private_pocketfft_bindings(monkeypatch):
    """Where SciPy lacks ``pypocketfft``'s ``out=`` bindings the public API does the
    real passes: the same results."""
    from numconv._paths import fft

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((40, 50)), rng.standard_normal((9, 7))
    monkeypatch.setattr(fft, "_r2c", None)
    monkeypatch.setattr(fft, "_c2r", None)
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(signal.convolve(a, b, mode=mode, method="fft"),
                                   ss.fftconvolve(a, b, mode=mode), rtol=1e-10, atol=1e-10)


def test_results_never_alias_pooled_scratch():
    """The FFT and overlap-add paths work in pooled buffers that the next call
    reuses: a result handed out must be its own memory."""
    import numconv

    rng = np.random.default_rng(8)
    calls = [
        lambda a: signal.convolve(a, a[:9, :9], mode="same", method="fft"),
        lambda a: signal.convolve(a + 1j * a[::-1], a[:9, :9], mode="same", method="fft"),  # complex passes only
        lambda a: signal.correlate(a[:, :300] * 1j, a[:1, :33], method="oa", axes=1),
        lambda a: signal.convolve(a, a[:1, :33], method="oa", axes=1),
        lambda a: numconv.conv2d(a[None, :, :, None], a[:9, :9, None, None], padding="same", method="fft"),
        lambda a: numconv.conv1d(a[:, :, None], a[0, :65, None, None], padding="same", method="oa"),
    ]
    for call in calls:
        first = call(rng.standard_normal((64, 700)))
        kept = first.copy()
        call(rng.standard_normal((64, 700)))
        np.testing.assert_array_equal(first, kept)


@pytest.mark.parametrize("kind", ["f", "c"])
@pytest.mark.parametrize("shape, axes, fshape", [
    ((3, 1, 1, 40, 2), (1, 2, 3), (1, 1, 50)),   # a 1-D conv's canonical axes
    ((3, 1, 6, 40, 2), (1, 2, 3), (1, 9, 50)),   # a 2-D conv's
    ((1, 1), (0, 1), (1, 1)),                    # every axis of length 1
])
def test_length_one_axes_are_not_transformed(shape, axes, fshape, kind, monkeypatch):
    """A length-1 transform is the identity, so ``forward`` and ``inverse`` skip
    those axes (pocketfft copied the whole spectrum for each: 6 copies a call, 21
    of 36 ms on a 1-D conv's FFT path): the results still match scipy.fft, and no
    complex pass runs on a length-1 axis (a complex input with every axis of
    length 1 is only copied into scratch)."""
    import scipy.fft

    from numconv import _memory
    from numconv._paths import fft

    rng = np.random.default_rng(sum(fshape))
    a = rng.standard_normal(shape)
    if kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    real = kind == "f"
    passes = []
    original = scipy.fft.ifft
    monkeypatch.setattr(scipy.fft, "ifft", lambda x, *args, **kw: passes.append(x.shape[kw["axis"]]) or original(
        x, *args, **kw))
    into = fft._fft_into
    monkeypatch.setattr(fft, "_fft_into", lambda src, axis, *args: passes.append(src.shape[axis]) or into(
        src, axis, *args))
    ref = (scipy.fft.rfftn if real else scipy.fft.fftn)(a, fshape, axes=axes)
    got = _memory.calls_scratch(fft.forward)(a, fshape, axes, 1)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    region = [slice(0, n) for n in fshape]
    back = fft.inverse(ref.copy(), fshape, axes, region, real, 1)
    np.testing.assert_allclose(back, (scipy.fft.irfftn if real else scipy.fft.ifftn)(ref, fshape, axes=axes),
                               rtol=1e-12, atol=1e-12)
    complex_axes = [n for n in (fshape if not real else fshape[:-1]) if n != 1]
    assert sorted(set(passes)) == sorted(set(complex_axes)), passes  # every other pass observed, none of length 1


def test_a_kernels_spectrum_is_kept_between_calls_and_follows_its_values(monkeypatch):
    """The smaller operand's spectrum is kept (``_full_fft``): reused for the same
    values wherever they lie, never written into, recomputed when they change."""
    from numconv._paths import fft as fft_path

    rng = np.random.default_rng(9)
    x1, x2 = rng.standard_normal((2, 120, 150))
    k = rng.standard_normal((9, 7))
    fft_path.clear_spectrum_cache()

    def check(y, *args, fn="convolve"):
        np.testing.assert_allclose(y, getattr(ss, fn)(*args, mode="same", method="fft"), atol=1e-10)

    y1 = signal.convolve(x1, k, mode="same", method="fft")
    check(y1, x1, k)
    assert len(fft_path._spectra) == 1
    y2 = signal.convolve(x2, k.copy(), mode="same", method="fft")  # the same values: the kept spectrum
    check(y2, x2, k)
    assert len(fft_path._spectra) == 1
    check(signal.convolve(k, x1, mode="same", method="fft"), k, x1)  # the kernel first
    assert np.array_equal(signal.convolve(x1, k, mode="same", method="fft"), y1)  # the kept spectrum unchanged
    check(signal.correlate(x1, k, mode="same", method="fft"), x1, k, fn="correlate")
    check(signal.convolve(x1 + 1j * x2, k, mode="same", method="fft"), x1 + 1j * x2, k)
    monkeypatch.setattr(fft_path, "SPECTRUM_CACHE_BYTES", 0)
    assert np.array_equal(signal.convolve(x1, k, mode="same", method="fft"), y1)  # the same bits without it
    monkeypatch.undo()
    k[4, 3] += 1.0  # changed in place: another digest
    check(signal.convolve(x1, k, mode="same", method="fft"), x1, k)
    fft_path.clear_spectrum_cache()
    signal.convolve(x1, x2, mode="same", method="fft")  # operands of one size: nothing kept
    assert len(fft_path._spectra) == 0
