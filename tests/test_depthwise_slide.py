"""The sliding depthwise kernel (``depthwise_slide_kernel``): channels-last
depthwise convolution with multiplier 1 and zero padding, each input vector of a
window row loaded once for all the tile's pixels that read it, and results of at
least ``direct.STREAM_BYTES`` stored around the caches."""
import re

import numba
import numpy as np
import pytest

import numconv
from numconv._kernels.depthwise import depthwise_slide_kernel
from numconv._kernels.tile import variant_tag
from numconv._paths import direct
from reference import ref_conv, ref_depthwise_kernel
from test_kernel_quality import _has_avx512, _kernel_asm


def _shifted_sum(x, dk, pads):
    """Depthwise conv, stride and dilation 1, by adding shifted copies of the
    zero-padded input (channels-last, any rank): a second, loop-free reference."""
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)])
    out_sp = tuple(xp.shape[1 + i] - dk.shape[i] + 1 for i in range(dk.ndim - 2))
    y = np.zeros((x.shape[0],) + out_sp + (x.shape[-1],), np.result_type(x, dk))
    for tap in np.ndindex(*dk.shape[:-2]):
        window = tuple(slice(t, t + n) for t, n in zip(tap, out_sp))
        y += xp[(slice(None),) + window] * dk[tap][:, 0]
    return y


@pytest.fixture
def slide_calls(monkeypatch):
    """The sliding kernel's calls, as (tap count, stride along W, stream flag)."""
    calls = []

    def counted(x, wm, b, has_bias, out, strides, dilations, pads, span, stream, act, taps, stride, tag):
        calls.append((len(taps), len(stride), stream))
        return depthwise_slide_kernel(x, wm, b, has_bias, out, strides, dilations, pads, span, stream, act, taps,
                                      stride, tag)

    monkeypatch.setattr(direct, "depthwise_slide_kernel", counted)
    return calls


# (spatial, kernel, strides, dilation, padding, channels, dtype): tap counts and
# strides along W that the depthwise sweep also compiles, plus both tile widths
# (more channels than one vector: two vectors, with a channel tail), explicit and
# causal padding, strides and dilations along the other axes, 1 to 3 ranks.
CASES = [
    ((8, 11), (3, 3), 1, 1, "same", 40, np.float32),
    ((9, 12), (3, 3), 2, 1, "same", 20, np.float64),
    ((13, 10), (3, 2), (2, 1), (2, 1), "valid", 17, np.float32),
    ((50,), (3,), 1, 1, "causal", 11, np.float32),
    ((41,), (2,), 2, 1, ((2, 3),), 33, np.float64),
    ((5, 6, 9), (2, 3, 3), (1, 2, 1), (2, 1, 1), "same", 17, np.float32),
    ((7, 19), (1, 1), 1, 1, "valid", 5, np.float64),
    ((10, 10), (2, 3), 2, (2, 1), ((1, 2), (0, 3)), 36, np.float32),
    ((9, 23), (3, 3), (2, 3), 1, "same", 20, np.float32),  # strides 3 and 4 along W
    ((11, 30), (7, 5), (3, 4), 1, "valid", 12, np.float64),
    # dilation along W (stride 1 there): tiles of pixels a dilation apart
    ((9, 40), (3, 3), 1, (1, 2), "same", 40, np.float32),
    ((60,), (5,), 1, 3, "same", 20, np.float64),
    ((6, 7, 30), (1, 3, 4), (1, 2, 1), (2, 1, 4), "valid", 17, np.float32),
    ((5, 50), (3, 3), (2, 1), (1, 11), "same", 24, np.float32),  # dilation past the tile's 8 pixels
    ((4, 21), (2, 3), 1, (1, 2), ((1, 0), (3, 2)), 33, np.float64),
]


@pytest.mark.parametrize("spatial, k, s, d, padding, C, dtype", CASES)
def test_slide_kernel_matches_reference(spatial, k, s, d, padding, C, dtype, slide_calls):
    rng = np.random.default_rng(len(spatial) * 100 + C)
    x = rng.standard_normal((2,) + spatial + (C,))
    dk = rng.standard_normal(k + (C, 1))
    b = rng.standard_normal(C)
    ref = ref_conv(x, ref_depthwise_kernel(dk), b, strides=s, padding=padding, dilation_rate=d, groups=C,
                   activation="relu")
    got = numconv.depthwise_conv(x.astype(dtype), dk.astype(dtype), b.astype(dtype), strides=s, padding=padding,
                                 dilation_rate=d, activation="relu", method="direct")
    assert slide_calls and got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("dilation", [1, 3])
def test_slide_kernel_splits_few_long_rows_identically_for_any_thread_count(dilation, slide_calls):
    """One 1-D signal is one output row: the kernel splits it into runs of
    tiles (``direct.w_chunk``; with a dilation, of blocks of tiles) so both
    threads work, and each output is still one thread's whole sum."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3001, 24)).astype(np.float32)
    dk = rng.standard_normal((9, 24, 1)).astype(np.float32)
    before = numba.get_num_threads()
    try:
        numconv.set_num_threads(1)
        one = numconv.depthwise_conv(x, dk, padding="same", dilation_rate=dilation)
        numconv.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = numconv.depthwise_conv(x, dk, padding="same", dilation_rate=dilation)
    finally:
        numconv.set_num_threads(before)
    assert len(slide_calls) == 2
    np.testing.assert_array_equal(one, two)
    ref = ref_conv(x.astype(np.float64), ref_depthwise_kernel(dk.astype(np.float64)), padding="same",
                   dilation_rate=dilation, groups=24)
    np.testing.assert_allclose(one, ref, rtol=1e-5, atol=1e-5)


def test_slide_kernel_keeps_nan_and_inf_local(slide_calls):
    """Positions outside the input are masked lanes that read zeros, never a
    neighbour times a zero weight: a NaN or an infinity reaches exactly the
    outputs whose windows hold it."""
    x = np.zeros((1, 12, 20, 40), np.float32)
    x[0, 0, 0, 3] = np.nan
    x[0, 5, 19, 35] = np.inf
    x[0, 11, 7, 0] = np.nan
    dk = np.ones((3, 3, 40, 1), np.float32)
    got = numconv.depthwise_conv(x, dk, padding="same")
    ref = _shifted_sum(x.astype(np.float64), dk.astype(np.float64), [(1, 1), (1, 1)])
    assert slide_calls
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    assert np.isnan(got).sum() == 4 + 6 and np.isinf(got).sum() == 6  # a corner, two edges


def test_large_results_are_streamed_and_unaligned_outs_are_not(slide_calls):
    """A result of at least ``STREAM_BYTES`` goes around the caches (streaming
    stores need 64-byte aligned rows: numconv's own results are; a user's ``out=``
    that is not takes plain stores in the same call). Both give the same numbers."""
    rng = np.random.default_rng(9)
    C = 512
    x = rng.standard_normal((1, 64, 64, C)).astype(np.float32)  # result: 8 MiB
    assert 2 * x.nbytes >= direct.STREAM_BYTES
    dk = rng.standard_normal((3, 3, C, 1)).astype(np.float32)
    got = numconv.depthwise_conv(x, dk, padding="same")
    buf = np.empty(x.size + 16, np.float32)
    offset = next(i for i in range(1, 16) if (buf.ctypes.data + 4 * i) % 64)  # a misaligned start
    out = buf[offset:offset + x.size].reshape(x.shape)
    assert out.ctypes.data % 64
    numconv.depthwise_conv(x, dk, padding="same", out=out)
    assert [c[2] for c in slide_calls] == [True, True]  # asked; the kernel checks alignment itself
    ref = _shifted_sum(x.astype(np.float64), dk.astype(np.float64), [(1, 1), (1, 1)])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out, got)
    small = numconv.depthwise_conv(x[:, :8], dk, padding="same")
    assert slide_calls[-1][2] is False
    np.testing.assert_array_equal(small[:, :7], got[:, :7])


@pytest.mark.parametrize("C, dtype", [(48, np.float32), (80, np.float32), (24, np.float64)])
def test_streamed_results_with_a_partial_channel_block(monkeypatch, slide_calls, C, dtype):
    """Channels that fill one and a part tile rows (48 float32 channels: 32 + 16;
    80: 32 + 32 + 16; 24 float64: 16 + 8) stream the partial row's whole lines
    too (``tile.row_stream``'s count), without touching the next pixel's channels:
    the same numbers as plain stores into a misaligned ``out=``, and as the
    reference."""
    monkeypatch.setattr(direct, "STREAM_BYTES", 0)  # (new shapes: ``streams`` not memoized for them yet)
    rng = np.random.default_rng(C)
    x = rng.standard_normal((2, 7, 19 + C % 5, C)).astype(dtype)
    dk = rng.standard_normal((3, 3, C, 1)).astype(dtype)
    got = numconv.depthwise_conv(x, dk, padding="same")
    assert slide_calls[-1][2] is True
    buf = np.empty(x.size + 16, dtype)
    offset = next(i for i in range(1, 16) if (buf.ctypes.data + buf.itemsize * i) % 64)
    out = buf[offset:offset + x.size].reshape(x.shape)
    numconv.depthwise_conv(x, dk, padding="same", out=out)  # plain stores: the kernel checks alignment
    np.testing.assert_array_equal(got, out)
    ref = _shifted_sum(x.astype(np.float64), dk.astype(np.float64), [(1, 1), (1, 1)])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_slide_kernel_is_not_used_where_it_does_not_apply(slide_calls):
    """Other padding modes, dilation and stride together along W, strides above
    ``MAX_SLIDE_STRIDE`` along W, multipliers above 1 and complex data take
    another kernel, as do
    channels that leave half its lanes idle, or at strides 3 and 4 three quarters
    (``depthwise_rows_kernel``)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 9, 9, 12))
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 12, 1)), padding="same", padding_mode="reflect")
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 12, 1)), strides=(1, 2), dilation_rate=(1, 2))
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 12, 2)))
    numconv.depthwise_conv(x + 1j, rng.standard_normal((3, 3, 12, 1)))
    numconv.depthwise_conv(x[..., :4], rng.standard_normal((3, 3, 4, 1)))
    numconv.depthwise_conv(x[..., :3].astype(np.float32), rng.standard_normal((3, 3, 3, 1)).astype(np.float32),
                           strides=3)  # 3 of 16 lanes
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 12, 1)), strides=(1, direct.MAX_SLIDE_STRIDE + 1))
    assert slide_calls == []
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 12, 1)), dilation_rate=(2, 1))
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 12, 1)), dilation_rate=(1, 2))
    assert len(slide_calls) == 2


def test_slide_kernel_specialises_on_taps_stride_dtype_and_tile_only():
    """Ranks, paddings, strides and dilations along D and H, bias and activation
    are runtime values: one signature per tap count along W, stride along W, dtype
    and tile (~2 s each to compile)."""
    rng = np.random.default_rng(4)
    numconv.depthwise_conv(rng.standard_normal((1, 6, 6, 40)).astype(np.float32),
                           rng.standard_normal((3, 3, 40, 1)).astype(np.float32))
    before = len(depthwise_slide_kernel.signatures)
    for rank in (1, 2, 3):
        x = rng.standard_normal((2,) + (7,) * rank + (40,)).astype(np.float32)
        dk = rng.standard_normal((2,) * (rank - 1) + (3, 40, 1)).astype(np.float32)
        strides = (2,) * (rank - 1) + (1,)
        numconv.depthwise_conv(x, dk, np.ones(40, np.float32), strides=strides, padding="same", activation="relu")
        numconv.depthwise_conv(x, dk, dilation_rate=(2,) * (rank - 1) + (1,), padding="valid")
    assert len(depthwise_slide_kernel.signatures) == before


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
def test_slide_kernel_loads_each_input_vector_once_per_window_row():
    """The hot block of a 3-tap window row: 8 pixels x 2 vectors x 3 taps = 48
    zmm FMAs from 10 x 2 input loads and 3 x 2 weight loads (each input vector is
    read by up to 3 pixels), the tile kept in registers, no gathers. Without the
    sharing it would be 48 input loads; a runtime tap loop gives 16 FMAs a block.
    The kernel holds three copies of that block (windows summed in registers,
    dilated tiles, and long float32 windows, whose flushes keep a double-precision
    tile live beside it and spill some of the tile); the first two must be clean."""
    x = np.ones((1, 1, 6, 40, 64), np.float32)
    wm = np.ones((1, 3, 3, 1, 64), np.float32)
    asm = _kernel_asm(depthwise_slide_kernel, x, wm, np.zeros(1, np.float32), False,
                      np.empty((1, 1, 4, 38, 64), np.float32), (1, 1, 1), (1, 1, 1), (0, 0, 0), 38, False, 0, (0,) * 3,
                      (0,), variant_tag(2))
    assert "gather" not in asm and "scatter" not in asm
    blocks = re.split(r"\n\.?[\w$.]+:", asm)
    most = max(blk.count("vfmadd") for blk in blocks)
    assert most >= 48
    clean = []
    for hot in (blk for blk in blocks if blk.count("vfmadd") == most):
        fmas = re.findall(r"vfmadd\w+\s+([^\n]*)%zmm", hot)
        loads = re.findall(r"vmovu\w+\s+[^%\n]*\([^\n]*%zmm", hot) + [f for f in fmas if "(" in f]
        if len(loads) <= 2 * 10 + 2 * 3 + 2 and not re.findall(r"vmov\w+\s+%zmm\d+, [^\n]*\(", hot):
            clean.append(hot)
    assert len(clean) >= 2, asm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channels_first_rows_share_their_input_loads_and_agree(dtype, monkeypatch):
    """channels_first depthwise with tiles of output rows (``depthwise_cf_kernel``
    with ``taps``): each input row loaded once for every output row that reads it.
    Against the reference over window heights, strides 1 and 2 along H (1 along W),
    row counts that are not whole tiles, zero and other paddings, 2-D and 3-D,
    bias and activation."""
    from numconv._kernels import depthwise as dw
    sliding = []

    def counted(*args):
        sliding.append(len(args[-4]))
        return dw.depthwise_cf_kernel(*args)

    monkeypatch.setattr(direct, "depthwise_cf_kernel", counted)
    rng = np.random.default_rng(11)
    cases = [((13, 17), (3, 3), (1, 1), "same", "zeros"), ((14, 9), (5, 2), (2, 1), "valid", "zeros"),
             ((19, 8), (2, 3), (2, 1), "same", "reflect"), ((4, 11, 10), (2, 4, 3), (1, 1, 1), "same", "zeros"),
             ((9, 12), (1, 5), (1, 1), ((2, 1), (2, 2)), "zeros")]
    for spatial, k, s, padding, mode in cases:
        x = rng.standard_normal((2, 6) + spatial)
        dk = rng.standard_normal(k + (6, 1))
        b = rng.standard_normal(6)
        ref = ref_conv(x, ref_depthwise_kernel(dk), b, strides=s, padding=padding, groups=6, padding_mode=mode,
                       data_format="channels_first", activation="tanh")
        got = numconv.depthwise_conv(x.astype(dtype), dk.astype(dtype), b.astype(dtype), strides=s,
                                     padding=padding, padding_mode=mode, data_format="channels_first",
                                     activation="tanh", method="direct")
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    assert sliding == [k[-2] for _, k, _, _, _ in cases]


@pytest.mark.parametrize("spatial, k, d", [((40, 40), (9, 9), 1), ((30, 50), (41, 5), (2, 1)),
                                           ((9, 9, 30), (5, 5, 5), 1)])
def test_slide_kernel_flushes_long_float32_windows(spatial, k, d, slide_calls):
    """Windows of more than ``FLUSH_TERMS`` taps in single precision: partial sums
    of whole window rows (at most 64 taps) added into a double-precision tile, as
    the other kernels flush (dilated along W, such windows take another kernel:
    ``_paths/direct.slides``). On positive data (inputs exact in float32), mean
    relative errors against float64 of 6-7.5e-8 (max 3.4-4.9e-7); summed in
    registers without flushing, 1.0-1.3e-7 (max 5.5-7.8e-7)."""
    rng = np.random.default_rng(8)
    x = rng.random((2,) + spatial + (20,)).astype(np.float32)
    dk = rng.random(k + (20, 1)).astype(np.float32)
    got = numconv.depthwise_conv(x, dk, padding="same", dilation_rate=d, method="direct")
    assert slide_calls and got.dtype == np.float32
    ref = ref_conv(x.astype(np.float64), ref_depthwise_kernel(dk.astype(np.float64)), padding="same", dilation_rate=d,
                   groups=20)
    rel = np.abs(got - ref) / np.abs(ref)
    assert rel.mean() < 9e-8 and rel.max() < 6e-7, (rel.mean(), rel.max())


@pytest.mark.parametrize("padding, dilation", [("same", 1), ("valid", 3), ("causal", 2), ((70, 3), 1)])
def test_channels_first_1d_tiles_inside_the_row_skip_their_masks(padding, dilation, monkeypatch):
    """1-D channels_first depthwise: tiles of runs whose every tap reads inside
    the row take the plain loads (no per-run lane masks); tiles at the row's
    ends and short last tiles the masked ones. Rows of several tiles, the
    reference's values and the channels-last kernel's within float32 rounding."""
    from numconv._kernels import depthwise as dw

    calls = []
    monkeypatch.setattr(direct, "depthwise_cf_kernel", lambda *a: calls.append(a[-1]) or dw.depthwise_cf_kernel(*a))
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 3, 1100)).astype(np.float32)
    k = rng.standard_normal((9, 3, 2)).astype(np.float32)
    got = numconv.depthwise_conv(x, k, padding=padding, dilation_rate=dilation, data_format="channels_first")
    assert calls == [(0,)]  # (rows are runs: a 1-D output)
    want = ref_conv(np.moveaxis(x, 1, -1).astype(np.float64), ref_depthwise_kernel(k.astype(np.float64)), groups=3,
                    padding=padding, dilation_rate=dilation)
    np.testing.assert_allclose(np.moveaxis(got, 1, -1), want, rtol=2e-5, atol=2e-5 * np.abs(want).max())
