"""The Numba transforms (``numconv._kernels.transform``) and the 2-D FFT path that
runs on them (``numconv._paths.fft.run_lanes``), against NumPy's FFT and the
float64 reference correlation."""
import numpy as np
import pytest

import numconv
from numconv import _memory
from numconv._kernels import transform
from numconv._paths import fft as fft_path
from reference import ref_conv


# ---------------------------------------------------------------- the building blocks

def test_factor_takes_the_fewest_stages_of_the_radices():
    for n in (1, 2, 3, 5, 12, 135, 256, 270, 288, 1000, 1024, 2 ** 3 * 3 ** 4 * 5 ** 2):
        radices = transform.factor(n)
        assert int(np.prod(radices)) == n and all(r in transform.RADICES for r in radices)
    assert len(transform.factor(270)) == 3 and len(transform.factor(256)) == 2 and transform.factor(1) == ()
    with pytest.raises(ValueError, match="prime factor other than 2, 3 and 5: 7"):
        transform.factor(14)


def test_fast_lengths_are_5_smooth_and_even_when_asked():
    assert transform.fast_length(268, even=True) == 270
    assert [transform.fast_length(n) for n in (1, 7, 11, 13, 17, 97)] == [1, 8, 12, 15, 18, 100]
    assert [transform.fast_length(n, even=True) for n in (1, 7, 15, 25, 81)] == [2, 8, 16, 30, 90]


@pytest.mark.parametrize("dtype", [np.float32])  # (the path's dtype: float64 would only add a compile)
@pytest.mark.parametrize("sign", [-1, 1])
def test_fft_lanes_is_numpys_fft_for_every_radix(dtype, sign):
    """Every butterfly (2, 3, 4, 5 written out; 6 ... 16 composed of them), alone and
    in mixed plans, forward and inverse (unscaled), on several vectors of lanes."""
    rng = np.random.default_rng(0)
    lanes = transform.lanes_of(dtype)
    tol = 2e-6 if dtype == np.float32 else 1e-14
    for n in (1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 30, 135, 270, 512, 720):
        V = 3 * lanes
        z = rng.standard_normal((n, V)) + 1j * rng.standard_normal((n, V))
        radices, offsets, tw = transform.plan(n, dtype, sign)
        bufs = [np.ascontiguousarray(z.real.astype(dtype)).ravel(), np.ascontiguousarray(z.imag.astype(dtype)).ravel(),
                np.zeros(n * V, dtype), np.zeros(n * V, dtype)]
        q = transform.fft_lanes(*bufs, n, V, radices, offsets, tw, float(sign))
        got = (bufs[2 * q] + 1j * bufs[2 * q + 1]).reshape(n, V)
        ref = np.fft.fft(z, axis=0) if sign < 0 else np.fft.ifft(z, axis=0) * n
        assert np.abs(got - ref).max() <= tol * np.abs(ref).max(), n


@pytest.mark.parametrize("C, Bc, OW, cf", [(3, 5, 9, False), (8, 4, 9, False), (8, 5, 8, False), (3, 5, 9, True),
                                          (8, 4, 21, True), (12, 2, 23, True), (16, 5, 19, True)])
def test_the_row_passes_are_the_real_transform_and_its_inverse(C, Bc, OW, cf):
    """``rows_forward`` against ``np.fft.rfft`` of rows placed at an offset in
    zeros (rows past a block's end included, two images, the last block of
    frequency columns partial), streamed or not; ``rows_inverse`` against ``FW *
    np.fft.irfft`` at a strided slice plus a bias, relu'd, streamed or not.
    Channels last: 8 channels take the streamed paths' pairs of half vectors
    (``stream_halves``; into aligned arrays, an odd frequency or output at the
    end), 3 channels and blocks of 5 x 8 channels (a block not a whole number of
    vectors) the row buffer. Channels first (``cf``): 8, 12 and 16 channels and
    filters take the in-register transposes (``split_transpose``,
    ``merge_transpose``) on whole blocks and single samples on the rest, 3 only
    the latter; rows of 40 samples, an offset of 3 and outputs from an odd
    sample put blocks at odd starts and leave tails."""
    rng = np.random.default_rng(C + Bc + cf)
    N, H = 2, 4
    R, W, off, FW = N * H, 40 if cf else 19, 3 if cf else 2, 48 if cf else 24
    M, lanes = FW // 2, transform.lanes_of(np.float32)
    x = rng.standard_normal((R, W, C)).astype(np.float32)
    B = 5
    VP = -(-B * C // lanes) * lanes
    bufs = np.zeros((2, 4, (M + 1) * VP), np.float32)
    rowbufs = np.zeros((2, 2 * (M + 1) * C), np.float32)
    xe = np.zeros((R, FW, C))
    xe[:, off:off + W] = x
    spectrum = np.fft.rfft(xe, axis=1)
    NB = -(-(M + 1) // Bc)  # the frequencies in blocks of Bc, the last one partial
    # channels first, the same rows: (N, C, H, W)
    xin = np.ascontiguousarray(x.reshape(N, H, W, C).transpose(0, 3, 1, 2) if cf else x).reshape(-1)
    for stream in (False, True):
        S = _memory.empty((2, N, NB, H, Bc * C), np.float32)
        S[...] = np.nan
        transform.rows_forward(xin, W, C, cf, S[0], S[1], off, FW, bufs, rowbufs, B,
                               *transform.plan(M, np.float32, -1), transform.half_twiddles(FW, np.float32), stream)
        got = (S[0] + 1j * S[1]).reshape(N, NB, H, Bc, C).transpose(0, 2, 1, 3, 4).reshape(N * H, NB * Bc, C)
        np.testing.assert_allclose(got[:, :M + 1], spectrum, atol=2e-6 * np.abs(spectrum).max())
    K = C
    bias = rng.standard_normal(K).astype(np.float32)
    full = np.maximum(np.fft.irfft(spectrum, FW, axis=1) * FW + bias, 0)
    BI = max(1, 2 * lanes // K)
    bias_lanes = np.zeros(-(-BI * K // lanes) * lanes, np.float32)
    bias_lanes[:BI * K] = np.tile(bias, BI)
    ibufs = np.zeros((2, 4, (M + 1) * len(bias_lanes)), np.float32)
    for stream, first, step in ((False, 3, 2), (True, 3, 2), (True, 1, 1), (False, 2, 1)):
        out = _memory.empty((R, OW, K), np.float32)
        out[...] = np.nan
        transform.rows_inverse(spectrum.real.astype(np.float32), spectrum.imag.astype(np.float32), out.reshape(-1),
                               H, OW, cf, first, step, FW, ibufs, np.zeros((2, OW * K), np.float32), BI,
                               *transform.plan(M, np.float32, 1), transform.half_twiddles(FW, np.float32),
                               bias_lanes, True, 1, stream)
        got = out.reshape(N, K, H, OW).transpose(0, 2, 3, 1).reshape(R, OW, K) if cf else out
        np.testing.assert_allclose(got, full[:, first:first + step * OW:step], atol=2e-6 * np.abs(full).max())


# ---------------------------------------------------------------- the 2-D path (run_lanes)

def _runs_of(monkeypatch, name):
    """The specs ``fft_path.<name>`` is called with from now on (a list that grows)."""
    runs = []
    run = getattr(fft_path, name)
    monkeypatch.setattr(fft_path, name, lambda *a: runs.append(a[0]) or run(*a))
    return runs


LAYERS = [  # (x shape, kernel shape, keyword arguments): every argument the path handles
    ((4, 40, 36, 8), (9, 7, 8, 8), dict(padding="same")),
    ((2, 31, 17, 4), (5, 4, 4, 5), dict(padding="valid")),
    ((2, 30, 26, 6), (5, 6, 3, 4), dict(padding="same", groups=2, strides=(2, 3))),
    ((1, 33, 29, 4), (7, 3, 4, 2), dict(padding="same", dilation_rate=(2, 3))),
    ((3, 24, 25, 5), (9, 9, 5, 3), dict(padding="same", padding_mode="reflect")),
    ((2, 20, 21, 4), (5, 5, 4, 4), dict(padding="same", padding_mode="circular", strides=2)),
    ((2, 22, 23, 8), (7, 7, 1, 8), dict(padding="same", groups=8)),                       # depthwise
    ((2, 18, 40, 12), (3, 11, 12, 20), dict(padding=((4, 1), (0, 7)))),
    ((5, 16, 15, 4), (16, 15, 4, 3), dict(padding="valid")),                               # one output pixel
    ((2, 9, 64, 4), (1, 25, 4, 4), dict(padding="same")),                                  # a 1-row kernel
    ((2, 14, 13, 7), (6, 5, 7, 33), dict(padding="same", strides=(3, 1))),                 # filters past the tile
]


@pytest.mark.parametrize("xs, ws, kw", LAYERS)
def test_the_lanes_path_matches_the_reference(xs, ws, kw, monkeypatch):
    runs = _runs_of(monkeypatch, "run_lanes")
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[-1]).astype(np.float32)
    x0, w0 = x.copy(), w.copy()
    got = numconv.conv(x, w, b, method="fft", activation="relu", **kw)
    assert len(runs) == 1
    ref = ref_conv(x, w, b, activation="relu", **kw)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=3e-6 * max(1.0, np.abs(ref).max()))
    assert np.array_equal(x, x0) and np.array_equal(w, w0)  # inputs never modified
    native = _runs_of(monkeypatch, "run_channels_first")
    cf = numconv.conv(np.moveaxis(x, -1, 1), w, b, method="fft", activation="relu", data_format="channels_first", **kw)
    np.testing.assert_array_equal(cf, np.moveaxis(got, -1, 1))
    # channels_first read and written as it lies where the padding is zeros (other modes pad a channels-last copy)
    assert len(native) == (kw.get("padding_mode", "zeros") == "zeros") and len(runs) == 2


def test_channels_first_lanes_path_with_deferred_activation_views_and_out(monkeypatch):
    """The channels_first lanes path (``run_channels_first``): a strided view as
    input (left unmodified), a deferred activation (tanh, applied after the
    kernels), a result into ``out=`` and into a strided ``out=`` view, against
    the reference and the channels-last path bit for bit."""
    native = _runs_of(monkeypatch, "run_channels_first")
    rng = np.random.default_rng(7)
    base = rng.standard_normal((3, 16, 37, 41)).astype(np.float32)
    x = base[:, ::2, 2:, 1:]  # (3, 8, 35, 40), not contiguous
    x0 = x.copy()
    w = rng.standard_normal((7, 9, 8, 16)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    kw = dict(padding="same", method="fft", activation="tanh")
    got = numconv.conv(x, w, b, data_format="channels_first", **kw)
    assert np.array_equal(x, x0) and len(native) == 1
    linear = ref_conv(x, w, b, data_format="channels_first", padding="same")
    np.testing.assert_allclose(got, np.tanh(linear), atol=3e-6 * np.abs(linear).max())  # (the error before tanh)
    cl = numconv.conv(np.moveaxis(x, 1, -1), w, b, **kw)
    np.testing.assert_array_equal(got, np.moveaxis(cl, -1, 1))
    out = np.full(got.shape, np.nan, np.float32)
    assert numconv.conv(x, w, b, data_format="channels_first", out=out, **kw) is out
    np.testing.assert_array_equal(out, got)
    view = np.full((3, 32, 35, 40), np.nan, np.float32)[:, ::2]
    numconv.conv(x, w, b, data_format="channels_first", out=view, **kw)
    np.testing.assert_array_equal(view, got)
    assert len(native) == 3


@pytest.mark.parametrize("C, K", [(6, 10), (8, 8)])
def test_chunks_streaming_and_views_give_the_same_bits(monkeypatch, C, K):
    """Batch chunks (``CHUNK_BYTES``), column-block image chunks (``COLUMN_BYTES``),
    streamed stores at any alignment (``STREAM_BYTES`` 0, results into a strided
    view through ``out=`` and channels_first) and the thread count change no bit;
    8 channels and filters stream pairs of half vectors (``stream_halves``)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 21, 30, C)).astype(np.float32)
    w = rng.standard_normal((5, 7, C, K)).astype(np.float32)
    plain = numconv.conv(x, w, padding="same", method="fft")
    monkeypatch.setattr(fft_path, "STREAM_BYTES", 0)
    assert np.array_equal(numconv.conv(x, w, padding="same", method="fft"), plain)
    monkeypatch.setattr(fft_path, "COLUMN_BYTES", 1)
    monkeypatch.setattr(fft_path, "CHUNK_BYTES", 1)
    assert np.array_equal(numconv.conv(x, w, padding="same", method="fft"), plain)
    out = np.zeros((5, 21, 31, K), np.float32)[:, :, 1:]  # 4 bytes past the allocation's alignment
    numconv.conv(x, w, padding="same", method="fft", out=out)
    assert np.array_equal(out, plain)
    # channels_first (read and written as it lies), in chunks, streamed, into an unaligned out= too
    xf = np.moveaxis(x, -1, 1)
    assert np.array_equal(numconv.conv(xf, w, padding="same", method="fft", data_format="channels_first"),
                          np.moveaxis(plain, -1, 1))
    outf = np.zeros(5 * K * 21 * 30 + 1, np.float32)[1:].reshape(5, K, 21, 30)
    numconv.conv(xf, w, padding="same", method="fft", data_format="channels_first", out=outf)
    assert np.array_equal(outf, np.moveaxis(plain, -1, 1))
    before = numconv.get_num_threads()
    numconv.set_num_threads(1)
    try:
        assert np.array_equal(numconv.conv(x, w, padding="same", method="fft"), plain)
    finally:
        numconv.set_num_threads(before)


def test_which_layers_take_the_lanes_path(monkeypatch):
    """float32 2-D layers of at least ``LANES_MIN_CHANNELS`` channels whose kernel
    spectrum is kept; not float64, few channels, 1-D or 3-D transforms, or without
    the spectrum cache (``spectra_not_kept``)."""
    runs = _runs_of(monkeypatch, "run_lanes")
    rng = np.random.default_rng(4)

    def conv(xs, ws, dtype=np.float32):
        x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
        before = len(runs)
        got = numconv.conv(x, w, padding="same", method="fft")
        np.testing.assert_allclose(got, ref_conv(x, w, padding="same"), atol=3e-6 * np.abs(got).max())
        return len(runs) > before

    assert conv((1, 20, 20, 4), (5, 5, 4, 2))
    assert not conv((1, 20, 20, 4), (5, 5, 4, 2), np.float64)
    assert not conv((1, 20, 20, 3), (5, 5, 3, 2))
    assert not conv((2, 64, 4), (9, 4, 4))                       # 1-D
    assert not conv((1, 6, 7, 8, 4), (3, 3, 3, 4, 2))            # 3-D
    with fft_path.spectra_not_kept():
        assert not conv((1, 20, 20, 4), (5, 5, 4, 2))


def test_the_lanes_path_launches_its_kernels_under_the_kernel_lock(monkeypatch):
    """Its three parallel kernels take ``kernel_lock`` (the ``workqueue`` layer
    cannot launch from two threads at once): one rows_forward, one columns, one
    rows_inverse per batch chunk."""
    launches = []
    lock = fft_path.kernel_lock
    monkeypatch.setattr(fft_path, "kernel_lock", lambda: launches.append(1) or lock())
    x = np.ones((2, 12, 12, 4), np.float32)
    numconv.conv(x, np.ones((5, 5, 4, 4), np.float32), padding="same", method="fft")
    assert len(launches) == 3


def test_nan_spreads_over_the_transform_as_documented():
    """One NaN in the input makes the image's whole result NaN on the FFT path (the
    module docstring's warning); the other images stay finite."""
    x = np.ones((2, 16, 16, 4), np.float32)
    x[0, 3, 3, 1] = np.nan
    got = numconv.conv(x, np.ones((3, 3, 4, 4), np.float32), padding="same", method="fft")
    assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()


@pytest.mark.parametrize("seed", range(4))
def test_channels_first_lanes_path_over_a_random_sweep(seed, monkeypatch):
    """Seeded random layers (4-24 channels, groups, strides, dilations, odd and
    small sizes, same / valid, bias or none, relu / linear / tanh) through the
    channels_first lanes path: against the float64 reference, and bit for bit the
    channels-last path's result."""
    native = _runs_of(monkeypatch, "run_channels_first")
    rng = np.random.default_rng(100 + seed)
    for _ in range(6):
        C = int(rng.choice([4, 5, 8, 12, 16, 24]))
        G = int(rng.choice([g for g in (1, 2, 4) if C % g == 0]))
        N, K, H, W = int(rng.integers(1, 4)), G * int(rng.integers(1, 12)), int(rng.integers(5, 48)), \
            int(rng.integers(5, 70))
        kh, kw = int(rng.integers(1, min(H, 12) + 1)), int(rng.integers(1, min(W, 15) + 1))
        strides = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        dilation = (1, 1) if max(strides) > 1 or rng.random() < 0.5 else (int(rng.integers(1, 3)),
                                                                           int(rng.integers(1, 3)))
        fits = (kh - 1) * dilation[0] < H and (kw - 1) * dilation[1] < W
        args = dict(strides=strides, dilation_rate=dilation, padding="valid" if fits and rng.random() < 0.4 else "same",
                    groups=G)
        act = str(rng.choice(["relu", "linear", "tanh"]))
        x = rng.standard_normal((N, C, H, W)).astype(np.float32)
        w = rng.standard_normal((kh, kw, C // G, K)).astype(np.float32)
        b = rng.standard_normal(K).astype(np.float32) if rng.random() < 0.7 else None
        got = numconv.conv(x, w, b, data_format="channels_first", method="fft", activation=act, **args)
        linear = ref_conv(x, w, b, data_format="channels_first", **args)
        ref = {"relu": np.maximum(linear, 0), "linear": linear, "tanh": np.tanh(linear)}[act]
        np.testing.assert_allclose(got, ref, atol=3e-6 * max(1.0, np.abs(linear).max()))
        cl = numconv.conv(np.moveaxis(x, 1, -1), w, b, method="fft", activation=act, **args)
        np.testing.assert_array_equal(got, np.moveaxis(cl, -1, 1))
    assert len(native) == 6
