"""The row-run depthwise kernel (``depthwise_rows_kernel``): channels-last
depthwise convolution with zero padding, vectorised along each
row's flat run of (pixel, channel) values, for channel counts that leave the
channel-vectorised kernels' lanes idle."""
import re

import numba
import numpy as np
import pytest

import numconv
from numconv._kernels.depthwise import depthwise_rows_kernel
from numconv._kernels.tile import variant_tag
from numconv._paths import direct
from reference import ref_conv
from test_kernel_quality import _has_avx512, _hot_block, _kernel_asm


@pytest.fixture
def rows_calls(monkeypatch):
    """The row-run kernel's calls, as their ``span`` arguments."""
    calls = []

    def counted(x, wr, br, has_bias, out, strides, dilations, pads, span, act, tag):
        calls.append(span)
        return depthwise_rows_kernel(x, wr, br, has_bias, out, strides, dilations, pads, span, act, tag)

    monkeypatch.setattr(direct, "depthwise_rows_kernel", counted)
    return calls


# (spatial, kernel, strides, dilation, padding, channels, dtype): channel counts
# that divide a vector (2, 4, 8), that do not (3, 5, 7) and whose weights repeat
# over several vectors (3: every 3, 5: every 5), counts past a vector with dilation
# along W (the general kernel's cases: 24, 40), ranks 1 to 3, zero padding at
# either end or both, strides and dilations along the other axes.
CASES = [
    ((9, 23), (3, 3), 1, 1, "same", 4, np.float32),
    ((10, 17), (3, 5), 1, (1, 2), "same", 3, np.float32),
    ((61,), (7,), 1, 3, "causal", 5, np.float32),
    ((37,), (2,), 1, 1, ((4, 1),), 2, np.float64),
    ((5, 6, 13), (2, 3, 3), (2, 2, 1), (1, 2, 1), "same", 7, np.float32),
    ((8, 30), (4, 2), (3, 1), (2, 3), "valid", 6, np.float32),  # (more channels: the slide kernel's)
    ((6, 21), (3, 3), (1, 1), (1, 2), ((2, 0), (0, 3)), 5, np.float32),
    ((11, 12), (5, 1), (2, 1), 1, "same", 3, np.float64),
    ((4, 4, 9), (1, 1, 9), 1, 1, "same", 8, np.float32),
    # strides along W (a stride-1 run per task, every S-th pixel kept): with
    # dilation along W (not the slide kernel's), stride 3, 3-D, float64
    ((9, 40), (3, 3), (1, 2), (1, 2), "same", 4, np.float32),
    ((7, 29), (6, 3), (1, 3), 1, ((2, 1), (1, 2)), 3, np.float32),
    ((4, 5, 33), (1, 3, 2), (2, 1, 3), (1, 1, 2), "valid", 8, np.float32),
    ((45,), (5,), 3, 3, "causal", 3, np.float64),
]
# depth multipliers (each multiplier's run through a buffer, its pixels interleaved into the result):
# (spatial, kernel, strides, dilation, padding, channels, multiplier, dtype)
MULTIPLIER_CASES = [
    ((9, 23), (3, 3), 1, 1, "same", 4, 2, np.float32),
    ((10, 17), (3, 7), (2, 1), (1, 2), "valid", 3, 2, np.float32),
    ((61,), (5,), 2, 2, "causal", 2, 3, np.float32),
    ((5, 6, 13), (1, 3, 2), (3, 1, 2), 1, ((0, 0), (1, 1), (0, 0)), 4, 2, np.float32),
    ((8, 19), (2, 3), 1, 1, "same", 3, 4, np.float64),
]


@pytest.mark.parametrize("spatial, k, s, d, padding, C, M, dtype",
                         [case[:6] + (1,) + case[6:] for case in CASES] + MULTIPLIER_CASES)
def test_rows_kernel_matches_reference(spatial, k, s, d, padding, C, M, dtype, rows_calls):
    """With and without bias and activation; output channel ``c * M + m`` reads
    channel ``c`` (Keras's order)."""
    rng = np.random.default_rng(len(spatial) * 100 + C * M)
    x = rng.standard_normal((2,) + spatial + (C,))
    dk = rng.standard_normal(k + (C, M))
    b = rng.standard_normal(C * M)
    grouped = dk.reshape(k + (1, C * M))
    ref = ref_conv(x, grouped, b, strides=s, padding=padding, dilation_rate=d, groups=C, activation="relu")
    got = numconv.depthwise_conv(x.astype(dtype), dk.astype(dtype), b.astype(dtype), strides=s, padding=padding,
                                 dilation_rate=d, activation="relu", method="direct")
    assert rows_calls and got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    plain = numconv.depthwise_conv(x.astype(dtype), dk.astype(dtype), strides=s, padding=padding, dilation_rate=d,
                                   method="direct")
    np.testing.assert_allclose(plain, ref_conv(x, grouped, strides=s, padding=padding, dilation_rate=d, groups=C),
                               rtol=tol, atol=tol)


def test_rows_split_into_spans_give_the_same_bits_for_any_thread_count(rows_calls):
    """A few long rows are split into spans (tasks of whole tiles) by the thread
    count; every value is the same sum in the same order either way."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 5000, 3)).astype(np.float32)
    dk = rng.standard_normal((9, 3, 1)).astype(np.float32)
    before, got = numba.get_num_threads(), {}
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numconv.set_num_threads(threads)
            got[threads] = numconv.depthwise_conv(x, dk, padding="same")
    finally:
        numconv.set_num_threads(before)
    assert all(span < 5000 * 3 for span in rows_calls)  # split
    assert np.array_equal(got[1], got[max(got)])
    ref = ref_conv(x, dk.reshape(9, 1, 3), padding="same", groups=3)
    np.testing.assert_allclose(got[1], ref, rtol=1e-5, atol=1e-5)


def test_rows_kernel_is_not_used_where_it_does_not_apply(rows_calls):
    """A stride along W that the slide kernel takes, padding modes other than
    zeros, complex data, channels that fill the slide kernel's vectors, and
    multipliers above 1 on channels that fill more than half the general
    kernel's vectors take other kernels."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 9, 9, 4))
    numconv.depthwise_conv(rng.standard_normal((1, 9, 9, 6)), rng.standard_normal((3, 3, 6, 2)))
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 4, 1)), strides=(1, 2))
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 4, 1)), padding="same", padding_mode="reflect")
    numconv.depthwise_conv(x + 1j, rng.standard_normal((3, 3, 4, 1)))
    numconv.depthwise_conv(rng.standard_normal((1, 9, 9, 32)), rng.standard_normal((3, 3, 32, 1)))
    assert rows_calls == []
    numconv.depthwise_conv(x, rng.standard_normal((3, 3, 4, 1)), padding="valid", padding_mode="reflect")
    assert len(rows_calls) == 1  # (no padding: the mode does not matter)


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
def test_rows_kernel_hot_loop_is_zmm_fmas_without_gathers():
    """The hot block of a tap inside the row: one input load and one 512-bit FMA
    per vector of the 8-vector tile (weights as memory operands; LLVM puts the
    eighth FMA in the loop's latch block), the tile kept in registers, no gathers."""
    x = np.ones((2, 1, 6, 56, 24), np.float32)
    wr = np.ones((1, 1, 3, 3, 3 + 7, 16), np.float32)
    asm = _kernel_asm(depthwise_rows_kernel, x, wr, np.zeros((1, 10, 16), np.float32), False,
                      np.empty((2, 1, 6, 56, 24), np.float32), (1, 1, 1), (1, 1, 1), (0, 1, 1), 56 * 24, 0,
                      variant_tag(direct.ROWS_VARIANT))
    assert "gather" not in asm and "scatter" not in asm
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd"))
    assert len(re.findall(r"vfmadd\w+\s+[^\n]*%zmm", hot)) >= 7, hot
    assert not re.findall(r"vmov\w+\s+%zmm\d+, [^\n]*\(", hot)
