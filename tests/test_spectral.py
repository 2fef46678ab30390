"""The FFT path's channel contraction (``_kernels/spectral.contract``) against
``numpy.einsum`` in double precision: tile tails along frequencies and filters,
groups, both complex dtypes."""
import numpy as np
import pytest

from numconv._kernels.spectral import FREQ_BLOCK, contract, contract_tag, pad_filters
from numconv._kernels.tile import VARIANTS


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("N, nf, C, K, G", [
    (1, 1, 1, 1, 1),
    (2, FREQ_BLOCK + 3, 8, 8, 1),       # a second task whose last tile is short
    (3, 61, 5, 7, 1),                   # 7 filters in an 8-lane row (a masked store)
    (2, 130, 16, 16, 4),                # groups of 4 filters
    (1, 77, 6, 36, 3),                  # 12 filters per group: more than one row in complex128
    (2, 40, 4, 40, 1),                  # filters over several rows (the widest tile)
])
def test_contraction_matches_einsum(dtype, N, nf, C, K, G):
    rng = np.random.default_rng(nf * K + G)
    X = (rng.standard_normal((N, nf, C)) + 1j * rng.standard_normal((N, nf, C))).astype(dtype)
    W = (rng.standard_normal((nf, C // G, K)) + 1j * rng.standard_normal((nf, C // G, K))).astype(dtype)
    X0, W0 = X.copy(), W.copy()
    Y = np.full((N, nf, K), np.nan, dtype)
    tag = contract_tag(K // G, dtype)
    contract(X, pad_filters(W, G, tag), Y, G, np.zeros(1, dtype), tag, threads=2)
    ref = np.einsum("nfgc,fcgk->nfgk", X.reshape(N, nf, G, C // G).astype(np.complex128),
                    W.reshape(nf, C // G, G, K // G).astype(np.complex128)).reshape(N, nf, K)
    tol = 1e-6 if dtype == np.complex64 else 1e-14
    assert np.isfinite(Y).all()  # every output written
    np.testing.assert_allclose(Y, ref, rtol=0, atol=tol * np.abs(ref).max() * C)
    assert np.array_equal(X, X0) and np.array_equal(W, W0)


@pytest.mark.parametrize("C, G", [(1024, 1), (200, 2), (65, 1)])
def test_long_channel_sums_add_their_partial_sums_in_double_precision(C, G):
    """Past 64 channels per group the complex64 contraction adds each run of 64
    channels' partial sum in double precision: one complex64 sum over 1024
    channels of nonnegative data had 1.5e-6 relative error (torch's direct conv
    3.5e-7), now ~2e-7; a group of 65 or 100 channels takes the same path."""
    rng = np.random.default_rng(C)
    nf, K = 300, 8
    X = (rng.random((2, nf, C)) + 1j * rng.random((2, nf, C))).astype(np.complex64)
    W = (rng.random((nf, C // G, K)) + 1j * rng.random((nf, C // G, K))).astype(np.complex64)
    ref = np.einsum("nfgc,fcgk->nfgk", X.reshape(2, nf, G, C // G).astype(np.complex128),
                    W.reshape(nf, C // G, G, K // G).astype(np.complex128)).reshape(2, nf, K)
    tag = contract_tag(K // G, np.complex64)
    Y = np.empty((2, nf, K), np.complex64)
    contract(X, pad_filters(W, G, tag), Y, G, np.zeros(1, np.complex64), tag, threads=2)
    err = np.abs(Y - ref).max() / np.abs(ref).max()
    assert err <= (4e-7 if C == 1024 else 1e-6), err  # one complex64 sum: 1.5e-6 at 1024 channels
    Y1 = np.empty_like(Y)
    contract(X, pad_filters(W, G, tag), Y1, G, np.zeros(1, np.complex64), tag, threads=1)
    assert np.array_equal(Y, Y1)


@pytest.mark.parametrize("threads", [1, 3, 64])
def test_contraction_bits_do_not_depend_on_the_thread_count(threads):
    """Shares of the frequency blocks (here 1, 3 and more threads than blocks)
    change who computes a block, never its arithmetic."""
    rng = np.random.default_rng(7)
    N, nf, C, K = 2, 5 * FREQ_BLOCK + 9, 6, 10
    X = (rng.standard_normal((N, nf, C)) + 1j * rng.standard_normal((N, nf, C))).astype(np.complex64)
    W = (rng.standard_normal((nf, C, K)) + 1j * rng.standard_normal((nf, C, K))).astype(np.complex64)
    tag = contract_tag(K, np.complex64)
    WP = pad_filters(W, 1, tag)
    Y1, Yt = (np.full((N, nf, K), np.nan, np.complex64) for _ in range(2))
    contract(X, WP, Y1, 1, np.zeros(1, np.complex64), tag, threads=1)
    contract(X, WP, Yt, 1, np.zeros(1, np.complex64), tag, threads=threads)
    assert np.isfinite(Y1).all() and np.array_equal(Y1.view(np.float32), Yt.view(np.float32))


def test_padded_filters_are_whole_rows_of_zeros_past_each_group():
    W = np.arange(2 * 3 * 10, dtype=np.complex64).reshape(2, 3, 10) + 1j
    tag = contract_tag(5, np.complex64)
    P = pad_filters(W, 2, tag)
    lanes = VARIANTS[len(tag)][1] // 8
    assert P.shape == (2, 3, 2, lanes) and P.flags.c_contiguous
    assert np.array_equal(P[..., :5], W.reshape(2, 3, 2, 5)) and not P[..., 5:].any()


# ---------------------------------------------------------------- kernel spectra kept between calls

import numconv  # noqa: E402
from numconv._paths import fft as fft_path  # noqa: E402
from reference import ref_conv  # noqa: E402


def _fft_conv(x, w, **kw):
    return numconv.conv(x, w, padding="same", method="fft", **kw)


def test_a_kept_spectrum_gives_the_same_bits_and_follows_the_kernels_values(monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 40, 40, 3)).astype(np.float32)
    w = rng.standard_normal((9, 9, 3, 4)).astype(np.float32)
    fft_path.clear_spectrum_cache()
    first = _fft_conv(x, w)                  # transforms the kernel and keeps its spectrum
    assert len(fft_path._spectra) == 1
    again = _fft_conv(x, w.copy())           # another array with the same values: the kept spectrum
    assert len(fft_path._spectra) == 1 and np.array_equal(first, again)
    monkeypatch.setattr(fft_path, "SPECTRUM_CACHE_BYTES", 0)
    assert np.array_equal(_fft_conv(x, w), first)  # the same bits without the cache
    monkeypatch.undo()
    w[4, 4, 1, 2] += 1.0                     # changed in place: a new digest, a new spectrum
    changed = _fft_conv(x, w)
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64), padding="same")
    np.testing.assert_allclose(changed, ref, atol=1e-4 * np.abs(ref).max())
    assert not np.allclose(changed, first, atol=1e-3)
    dilated = _fft_conv(x, w, dilation_rate=2)  # same kernel, other dilation: a spectrum of its own
    np.testing.assert_allclose(dilated, ref_conv(x.astype(np.float64), w.astype(np.float64), padding="same",
                                                 dilation_rate=2), atol=1e-4 * np.abs(ref).max())
    assert len(fft_path._spectra) == 3


def test_kept_spectra_stay_within_their_bytes(monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 64, 64, 2)).astype(np.float32)
    fft_path.clear_spectrum_cache()
    w = rng.standard_normal((15, 15, 2, 2)).astype(np.float32)
    _fft_conv(x, w)
    one = next(iter(fft_path._spectra.values()))[0].nbytes
    monkeypatch.setattr(fft_path, "SPECTRUM_CACHE_BYTES", 3 * one)
    for i in range(6):
        _fft_conv(x, w + i)
        assert sum(v[0].nbytes for v in fft_path._spectra.values()) <= 3 * one
    assert len(fft_path._spectra) == 3
    monkeypatch.setattr(fft_path, "SPECTRUM_CACHE_BYTES", one)  # larger than half: not kept
    fft_path.clear_spectrum_cache()
    _fft_conv(x, w)
    assert len(fft_path._spectra) == 0


@pytest.mark.parametrize("shape, kernel, kw", [
    ((2, 300, 6), (65, 6, 4), dict()),
    ((1, 30, 28, 4), (9, 9, 2, 6), dict(groups=2, dilation_rate=(1, 2))),
    ((1, 12, 10, 9, 3), (5, 3, 3, 3, 2), dict()),
])
def test_a_large_kernel_is_transformed_one_channel_at_a_time_with_the_same_bits(shape, kernel, kw, monkeypatch):
    """Past ``KERNEL_SLICE_BYTES`` the kernel spectrum is filled one input channel
    at a time (peak 1 + 2 / Cg spectra instead of 2: the 1 x 2**20 x 8 -> 8,
    4097-tap conv1d traced 583 MB, now 389): the same line transforms, so the
    same bits."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(kernel).astype(np.float32)
    monkeypatch.setattr(fft_path, "SPECTRUM_CACHE_BYTES", 0)
    whole = _fft_conv(x, w, **kw)
    calls = []
    forward = fft_path.forward
    monkeypatch.setattr(fft_path, "forward", lambda a, *args, **kws: calls.append(a.shape) or forward(a, *args, **kws))
    monkeypatch.setattr(fft_path, "KERNEL_SLICE_BYTES", 0)
    sliced = _fft_conv(x, w, **kw)
    assert sum(1 for c in calls if c[-2] == 1 and c[-1] == kernel[-1]) == kernel[-2]  # one per input channel
    np.testing.assert_array_equal(sliced, whole)


# ---------------------------------------------------------------- transform size and placement (fft_path.geometry)

def test_same_padding_transforms_less_than_the_padded_length(monkeypatch):
    """Zero padding is not copied: 256 samples with 25 taps "same" need 268 points
    (not the padded 280), which rounds up to 270."""
    seen = []
    geometry = fft_path.geometry
    monkeypatch.setattr(fft_path, "geometry", lambda spec: seen.append(geometry(spec)) or seen[-1])
    x = np.zeros((1, 256, 256, 1), np.float32)
    numconv.conv(x, np.zeros((25, 25, 1, 1), np.float32), padding="same", method="fft")
    fshape, offsets, region, pad_first = seen[0]
    assert fshape[1:] == (270, 270) and offsets == (0, 0, 0) and not pad_first
    assert region[1:] == (slice(12, 268, 1), slice(12, 268, 1))


@pytest.mark.parametrize("seed", range(40))
def test_fft_geometry_is_exact_over_pads_strides_and_dilations(seed):
    """1-D layers whose pads, kernel, stride and dilation are drawn at random (pads
    up to twice the kernel, kernels longer than the input, every padding mode):
    the FFT path against the float64 reference, tight enough that one aliased
    sample fails."""
    rng = np.random.default_rng(seed)
    L, k = int(rng.integers(1, 24)), int(rng.integers(1, 12))
    d, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    e = d * (k - 1) + 1
    pads = (int(rng.integers(0, 2 * e + 1)), int(rng.integers(0, 2 * e + 1)))
    mode = ["zeros", "reflect", "replicate", "circular"][seed % 4]
    if mode == "reflect":
        pads = tuple(min(p, L - 1) for p in pads)
    elif mode == "circular":
        pads = tuple(min(p, L) for p in pads)
    if L + sum(pads) < e:
        pads = (pads[0], pads[1] + e - L - sum(pads))
        if mode in ("reflect", "circular") and pads[1] > L - (mode == "reflect"):
            mode = "zeros"
    x = rng.standard_normal((2, L, 3))
    w = rng.standard_normal((k, 3, 2))
    kw = dict(padding=(pads,), strides=s, dilation_rate=d, padding_mode=mode)
    got = numconv.conv(x, w, method="fft", **kw)
    ref = ref_conv(x, w, **kw)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("method", ["fft", "oa"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_transform_paths_launch_no_numba_parallel_loop(method, data_format, monkeypatch):
    """After a Numba parallel loop its OpenMP threads spin for milliseconds, taking
    cores from the SciPy transforms that follow (``numconv._shares``): the FFT and
    overlap-save paths, bias, activation and channels_first layout changes
    included, run no guarded parallel launch (every one takes ``kernel_lock``)."""
    import sys

    launches = []
    for name, module in list(sys.modules.items()):
        if name.startswith("numconv") and hasattr(module, "kernel_lock"):
            lock = module.kernel_lock
            monkeypatch.setattr(module, "kernel_lock", lambda lock=lock, name=name: launches.append(name) or lock())
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 12, 300, 150) if data_format == "channels_first" else (2, 300, 150, 12))
    w = rng.standard_normal((9, 9, 12, 5))
    b = rng.standard_normal(5)
    got = numconv.conv(x, w, b, padding="same", activation="relu", data_format=data_format, method=method)
    assert launches == [], launches
    ref = numconv.conv(x, w, b, padding="same", activation="relu", data_format=data_format, method="direct")
    assert launches, "the direct path's launches were not observed"
    np.testing.assert_allclose(got, ref, atol=1e-10 * np.abs(ref).max())
