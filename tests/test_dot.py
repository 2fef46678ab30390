"""The dot kernel (``_kernels/dot.py``): few filters per group over many
channels, each output a dot product vectorised along the input channels; and the
parallel padded copy (``pad_rows_kernel``) it, and the short kernel, read."""
import re

import numba
import numpy as np
import pytest

import numconv
from numconv._kernels.dot import dot_kernel, dot_weights
from numconv._kernels.pad import PAD_MODES, pad_rows_kernel
from numconv._kernels.tile import variant_tag
from numconv._paths import direct
from reference import ref_conv
from specs import spec_of
from test_kernel_quality import _has_avx512, _hot_block, _kernel_asm


@pytest.fixture
def dot_calls(monkeypatch):
    """The dot kernel's calls, as their ``pads`` arguments (zero: a padded copy)."""
    calls = []

    def counted(x, w, b, has_bias, out, kernel, strides, dilations, pads, *rest):
        calls.append(pads)
        return dot_kernel(x, w, b, has_bias, out, kernel, strides, dilations, pads, *rest)

    monkeypatch.setattr(direct, "dot_kernel", counted)
    return calls


# (spatial, kernel, strides, dilation, padding, padding_mode, channels, filters,
# groups, dtype): channel counts of whole vectors (16, 64), with a tail (17, 20,
# 40) and long enough to be summed out mid-reduction in float32 (Cg 256, 3 x 3:
# 144 vector FMAs per output); 1-4 filters per group; ranks 1-3; every padding
# mode; strides and dilations on every axis; float64 where the narrow kernel
# would run the layer (one group, stride 1 along W).
CASES = [
    ((9, 13), (3, 3), 1, 1, "same", "zeros", 64, 1, 1, np.float32),
    ((9, 13), (3, 3), (2, 3), (1, 2), "same", "reflect", 20, 3, 1, np.float32),
    ((11, 10), (1, 1), 1, 1, "valid", "zeros", 40, 8, 2, np.float32),
    ((7, 9), (3, 3), 1, 1, "same", "zeros", 256, 2, 1, np.float32),
    ((40,), (5,), 2, 3, "same", "replicate", 17, 4, 1, np.float32),
    ((300,), (9,), 3, 1, "causal", "zeros", 32, 2, 2, np.float32),
    ((6, 7, 11), (2, 3, 2), (1, 2, 3), (2, 1, 1), "same", "circular", 64, 4, 4, np.float32),
    ((5, 6, 9), (3, 3, 3), 1, 1, "valid", "zeros", 48, 3, 1, np.float32),
    ((9, 13), (3, 3), 1, 1, "same", "zeros", 64, 3, 1, np.float64),
    ((50,), (7,), (1,), 2, "same", "reflect", 9, 1, 1, np.float64),
    ((4, 5, 40), (2, 2, 3), (2, 1, 1), 1, "same", "zeros", 24, 2, 1, np.float64),
]


@pytest.mark.parametrize("spatial, k, s, d, padding, mode, C, K, G, dtype", CASES)
def test_dot_kernel_matches_reference(spatial, k, s, d, padding, mode, C, K, G, dtype, dot_calls):
    """With bias and activation and without; inputs unchanged."""
    rng = np.random.default_rng(C * 10 + K)
    x = rng.standard_normal((2,) + spatial + (C,)).astype(dtype)
    w = rng.standard_normal(k + (C // G, K)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    keep = x.copy()
    kw = dict(strides=s, padding=padding, dilation_rate=d, groups=G, padding_mode=mode)
    got = numconv.conv(x, w, b, activation="relu", method="direct", **kw)
    plain = numconv.conv(x, w, method="direct", **kw)
    assert len(dot_calls) == 2 and got.dtype == dtype
    np.testing.assert_array_equal(x, keep)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    ref = ref_conv(x, w, **kw)
    scale = max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(plain, ref, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(got, np.maximum(ref + b, 0), rtol=tol, atol=tol * scale)


def test_channels_first_layers_reach_it():
    """A channels_first layer that the narrow kernel does not read in place
    (stride along W) runs on the dot kernel after a layout change."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 32, 9, 12)).astype(np.float32)
    w = rng.standard_normal((3, 3, 32, 2)).astype(np.float32)
    got = numconv.conv(x, w, strides=2, padding="same", data_format="channels_first", method="direct")
    ref = ref_conv(x, w, strides=2, padding="same", data_format="channels_first")
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5)


def test_border_tiles_read_through_the_padding_mode_give_the_padded_copy_bits(monkeypatch, dot_calls):
    """Where the padded copy would cost more than the layer (``copy_bound``), border
    tiles gather their windows through the padding mode instead: the same terms in
    the same order, so the same bits as on the padded copy."""
    rng = np.random.default_rng(4)
    copy_bound = direct.copy_bound
    for mode in ("zeros", "reflect", "replicate", "circular"):
        x = rng.standard_normal((2, 7, 19, 24)).astype(np.float32)
        w = rng.standard_normal((3, 5, 24, 3)).astype(np.float32)
        kw = dict(padding=((1, 2), (2, 2)), padding_mode=mode, dilation_rate=(2, 1))
        copied = numconv.conv(x, w, method="direct", **kw)
        monkeypatch.setattr(direct, "copy_bound", lambda spec: True)
        gathered = numconv.conv(x, w, method="direct", **kw)
        monkeypatch.setattr(direct, "copy_bound", copy_bound)
        assert dot_calls[-2:] == [(0, 0, 0), (0, 1, 2)]
        assert np.array_equal(gathered, copied), mode
        np.testing.assert_allclose(copied, ref_conv(x, w, **kw), rtol=2e-5, atol=2e-5)


def test_filter_pairs_give_the_bits_of_single_filters(dot_calls):
    """Two filters of a group share a tile (4 pixels x 2 filters); each row sums
    the same terms in the same order as a filter alone (8 pixels x 1 filter)."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 9, 21, 40)).astype(np.float32)
    w = rng.standard_normal((3, 3, 40, 3)).astype(np.float32)
    pairs = numconv.conv(x, w, padding="same", method="direct")
    alone = [numconv.conv(x, w[..., f:f + 1], padding="same", method="direct") for f in range(3)]
    assert len(dot_calls) == 4
    assert np.array_equal(pairs, np.concatenate(alone, axis=-1))
    np.testing.assert_allclose(pairs, ref_conv(x, w, padding="same"), rtol=2e-5, atol=2e-5)


def test_same_bits_for_any_thread_count(dot_calls):
    """Tasks are whole tiles of output rows; each output's sum runs in one task,
    in one order."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 400, 48)).astype(np.float32)
    w = rng.standard_normal((3, 3, 48, 2)).astype(np.float32)
    before, got = numba.get_num_threads(), {}
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numconv.set_num_threads(threads)
            got[threads] = numconv.conv(x, w, padding="same", method="direct")
    finally:
        numconv.set_num_threads(before)
    assert dot_calls
    assert np.array_equal(got[1], got[max(got)])


def test_long_float32_reductions_keep_their_accuracy(dot_calls):
    """36864 positive terms (4096 channels x 3 x 3, 2304 per lane): lanes summed
    out every ``FLUSH_TERMS`` vector FMAs and added in double precision keep the
    error at 7e-8 (torch: 7e-7); one float32 chain per lane gave 3.7e-7."""
    rng = np.random.default_rng(6)
    x = rng.random((1, 3, 12, 4096)).astype(np.float32)
    w = rng.random((3, 3, 4096, 1)).astype(np.float32)
    got = numconv.conv(x, w, method="direct")
    ref = ref_conv(x, w)
    assert dot_calls
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1.5e-7


def test_dot_kernel_is_not_used_where_it_does_not_apply(dot_calls):
    """More than ``DOT_MAX_FILTERS`` filters per group, less than a vector of
    channels per group, depthwise layers, complex data, and float64 layers the
    narrow kernel would not run take other kernels."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 6, 20, 32)).astype(np.float32)
    numconv.conv(x, rng.standard_normal((3, 3, 32, 5)).astype(np.float32))
    numconv.conv(x[..., :8], rng.standard_normal((3, 3, 8, 2)).astype(np.float32))
    numconv.conv(x, rng.standard_normal((3, 3, 2, 64)).astype(np.float32), groups=16)
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 32, 1)).astype(np.float32))
    numconv.conv(x + 0j, rng.standard_normal((3, 3, 32, 2)) + 0j)
    numconv.conv(x.astype(np.float64), rng.standard_normal((3, 3, 32, 2)), strides=2)
    assert dot_calls == []
    numconv.conv(x.astype(np.float64), rng.standard_normal((3, 3, 32, 2)))
    numconv.conv(x, rng.standard_normal((3, 3, 16, 8)).astype(np.float32), groups=2)
    assert len(dot_calls) == 2


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
def test_dot_kernel_hot_loop_is_zmm_fmas_without_gathers():
    """The hot block: 512-bit FMAs on input vectors (one per pixel of the 8-pixel
    tile), the tile kept in registers, no gathers."""
    x = np.ones((2, 1, 9, 13, 64), np.float32)
    wd = dot_weights(np.ones((1, 3, 3, 64, 3), np.float32), 16)
    asm = _kernel_asm(dot_kernel, x, wd, np.zeros(1, np.float32), False, np.empty((2, 1, 7, 11, 3), np.float32),
                      (1, 3, 3), (1, 1, 1), (1, 1, 1), (0, 0, 0), 0, 1, 8, 2, variant_tag(direct.DOT_VARIANT))
    assert "gather" not in asm and "scatter" not in asm
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd"))
    assert len(re.findall(r"vfmadd\w+\s+[^\n]*%zmm", hot)) >= 8, hot
    assert not re.findall(r"vmov\w+\s+%zmm\d+, [^\n]*\(", hot)


_NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@pytest.mark.parametrize("mode", sorted(PAD_MODES))
@pytest.mark.parametrize("shape, pads", [((2, 3, 4, 5, 3), ((1, 2), (2, 1), (3, 4))),
                                         ((1, 1, 1, 17, 2), ((0, 0), (0, 0), (5, 3))),
                                         ((3, 1, 4, 1, 1), ((0, 0), (2, 3), (0, 0)))])
def test_padded_copy_matches_numpy_pad(mode, shape, pads):
    """Every element written once per pass, for any split of the rows into chunks."""
    if mode == "reflect":
        pads = tuple((min(a, n - 1), min(b, n - 1)) for (a, b), n in zip(pads, shape[1:4]))
    x = np.random.default_rng(8).standard_normal(shape)
    ref = np.pad(x, ((0, 0),) + pads + ((0, 0),), mode=_NP_MODES[mode])
    for chunks in sorted({1, 2, 3, ref.shape[3]}):
        got = np.full(ref.shape, np.nan)
        pad_rows_kernel(x, got, tuple(p[0] for p in pads), PAD_MODES[mode], min(chunks, ref.shape[3]))
        assert np.array_equal(got, ref), chunks


def test_short_kernel_leaves_copy_bound_layers_to_the_long_kernel():
    """A large input that strides and few filters leave mostly unread is not
    copied padded for the short kernel (``copy_bound``): the long kernel reads it in
    place, with the same result."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 30, 60, 8)).astype(np.float32)
    w = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    kw = dict(strides=(3, 4), padding=((0, 0), (1, 1)), groups=2)
    spec = spec_of(x, w, **kw)
    assert direct.copy_bound(spec) and not direct.is_short(spec)
    assert direct.is_short(spec_of(x, w, groups=2))  # (no padding: no copy)
    np.testing.assert_allclose(numconv.conv(x, w, method="direct", **kw), ref_conv(x, w, **kw), rtol=2e-5, atol=2e-5)

