"""The channels_first <-> channels_last layout kernel (numconv._kernels.layout)
against NumPy's moveaxis, over shapes that exercise whole 64-byte blocks, ragged
edges, bands and the NumPy fallbacks, and through the public ops."""
import numpy as np
import pytest

import numconv
from numconv._kernels.layout import swap_last_axes, to_channels_first, to_channels_last
from reference import ref_conv

# (N, A, B): multiples of 16 and 8, ragged A and B, A or B below one block,
# B over one band (16 blocks), a singleton axis, and the small-array fallback;
# ragged edges of at least one block (overlapping edge blocks: the stock conv1d's
# 46 x 16 result), below one block on either axis, and a last band of 1-15 columns.
SHAPES = [(2, 16, 256), (3, 64, 300), (1, 17, 33), (2, 5, 5000), (4, 40, 7), (1, 128, 129),
          (2, 1, 4097), (2, 4097, 1), (1, 8, 8), (0, 16, 300), (3, 33, 270),
          (300, 46, 16), (20, 23, 50), (10, 12, 500), (64, 100, 10), (2, 47, 263), (2, 31, 17)]
DTYPES = [np.float32, np.float64, np.complex64, np.int32, np.uint8, np.complex128, np.bool_]


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("shape", SHAPES + [(3, 40, 20000)])  # the last: several shares on Python threads
@pytest.mark.parametrize("dtype", DTYPES)
def test_swap_last_axes_matches_numpy(shape, dtype, shared):
    """Both launches: the Numba parallel kernel and its tasks shared out to Python
    threads (``shared``, the FFT paths' layout changes)."""
    rng = np.random.default_rng(sum(shape))
    a = (rng.standard_normal(shape) * 100).astype(dtype)
    keep = a.copy()
    got = swap_last_axes(a, shared=shared)
    assert got.dtype == a.dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, a.transpose(0, 2, 1))
    np.testing.assert_array_equal(a, keep)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize("width", range(2, 17))
def test_narrow_side_every_width(width, dtype, shared):
    """A side narrower than one 64-byte row (few channels: the interleaving strips,
    one shuffle network per width, 2-15 elements of 4 bytes, 2-7 of 8) on either
    axis, against a long side of several bands with a ragged strip (549), one strip
    and a ragged one (20 of 4-byte elements) and less than a strip (9)."""
    rng = np.random.default_rng(width)
    for long in (549, 20, 9):
        for shape in ((2, width, long), (2, long, width)):
            a = (rng.standard_normal(shape) * 100).astype(dtype)
            if a.size < 4096:  # below the NumPy fallback's size: repeat examples to reach the kernel
                a = np.ascontiguousarray(np.tile(a, (-(-4096 // a.size), 1, 1)))
            got = swap_last_axes(a, shared=shared)
            np.testing.assert_array_equal(got, a.transpose(0, 2, 1), err_msg=str(a.shape))
            np.testing.assert_array_equal(swap_last_axes(got, shared=shared), a)


def test_swap_last_axes_bit_patterns_survive():
    """The kernel moves raw bits: NaN payloads, -0.0 and infinities come through."""
    a = np.full((2, 32, 48), np.nan, np.float32)
    a.view(np.uint32)[0, ::3] = 0x7FC01234
    a[1, 5] = -0.0
    a[1, 7] = np.inf
    got = swap_last_axes(a)
    np.testing.assert_array_equal(got.view(np.uint32), a.transpose(0, 2, 1).view(np.uint32))


@pytest.mark.parametrize("spatial", [(37,), (20, 33), (5, 6, 17)])
@pytest.mark.parametrize("channels", [1, 3, 16, 24])
def test_round_trip_and_out(spatial, channels):
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((2, channels) + spatial)
    xl = to_channels_last(x, np.float32)
    assert xl.dtype == np.float32
    np.testing.assert_array_equal(xl, np.moveaxis(x, 1, -1).astype(np.float32))
    out = np.empty_like(x)
    assert to_channels_first(np.moveaxis(x, 1, -1), out) is out
    np.testing.assert_array_equal(out, x)
    strided = np.empty((2, channels) + spatial + (2,))[..., 0]  # a non-contiguous out
    assert to_channels_first(np.moveaxis(x, 1, -1), strided) is strided
    np.testing.assert_array_equal(strided, x)


def test_non_contiguous_input():
    x = np.arange(2 * 32 * 40 * 2, dtype=np.float64).reshape(2, 32, 40, 2)[..., 1]
    np.testing.assert_array_equal(to_channels_last(x), np.moveaxis(x, 1, -1))


def test_channels_first_ops_use_it_and_agree_with_channels_last():
    """conv and max_pool in channels_first equal their channels_last results
    transposed, bit for bit (same kernels, only the layout moves); separable_conv
    to float32 rounding: its channels_first depthwise stage shares each input
    row's loads across output rows, summing a window's taps column by column where
    the channels-last kernel goes row by row."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 20, 21, 24)).astype(np.float32)
    xf = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    w = rng.standard_normal((3, 3, 24, 40)).astype(np.float32)
    y = numconv.conv(x, w, padding="same")
    np.testing.assert_array_equal(numconv.conv(xf, w, padding="same", data_format="channels_first"),
                                  np.moveaxis(y, -1, 1))
    p = numconv.max_pool(x, 3, strides=2, padding="same")
    np.testing.assert_array_equal(numconv.max_pool(xf, 3, strides=2, padding="same", data_format="channels_first"),
                                  np.moveaxis(p, -1, 1))
    dw = rng.standard_normal((3, 3, 24, 2)).astype(np.float32)
    pw = rng.standard_normal((1, 1, 48, 32)).astype(np.float32)
    s = numconv.separable_conv(x, dw, pw)
    out = np.empty((2, 32, 18, 19), np.float32)
    assert numconv.separable_conv(xf, dw, pw, data_format="channels_first", out=out) is out
    np.testing.assert_allclose(out, np.moveaxis(s, -1, 1), rtol=1e-5, atol=1e-5 * np.abs(s).max())


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pad_kernel_matches_numpy_pad(mode, dtype):
    """The parallel padded copy the narrow kernel reads (``pad.pad_kernel``)."""
    from numconv._kernels.pad import PAD_MODES, pad_kernel

    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    rng = np.random.default_rng(len(mode))
    for shape, pads in [((2, 3, 1, 5, 7), ((0, 0), (2, 1), (3, 2))), ((1, 2, 4, 6, 9), ((1, 2), (0, 3), (4, 4))),
                        ((1, 1, 1, 1, 70), ((0, 0), (0, 0), (1, 0)))]:
        x = rng.standard_normal(shape).astype(dtype)
        ref = np.pad(x, ((0, 0), (0, 0)) + pads, mode=np_mode)
        got = np.full(ref.shape, np.nan, dtype)
        pad_kernel(x, got, tuple(p[0] for p in pads), PAD_MODES[mode])
        np.testing.assert_array_equal(got, ref)


def _ops(C, seed, data_format):
    """Each public op as a function of ``x`` (N, C, H, W; transposed first when
    ``data_format`` is channels_last)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((3, 3, C, 8)).astype(np.float32)
    cf = dict(data_format=data_format)
    lay = (lambda x: x) if data_format == "channels_first" else (lambda x: np.ascontiguousarray(np.moveaxis(x, 1, -1)))
    g = lambda x: numconv.conv(lay(x), w, padding="same", **cf)  # noqa: E731
    shape = lambda x: lay(x).shape  # noqa: E731
    return [g,
            lambda x: numconv.depthwise_conv(lay(x), w[..., :1], padding="same", **cf),
            lambda x: numconv.separable_conv(lay(x), w[..., :1], w[:1, :1, :, :], **cf),
            lambda x: numconv.max_pool(lay(x), 2, **cf),
            lambda x: numconv.global_average_pool(lay(x), **cf),
            lambda x: numconv.conv_transpose(g(x), w, padding="same", **cf),
            lambda x: numconv.conv_transpose(g(x), w, strides=2, padding="same", **cf),
            lambda x: numconv.conv_backprop_input(g(x), w, shape(x), padding="same", **cf),
            lambda x: numconv.conv_backprop_input(g(x), w, shape(x), padding="same", padding_mode="reflect", **cf),
            lambda x: numconv.conv_backprop_input(numconv.conv(lay(x), w, **cf), w, shape(x), padding_mode="reflect",
                                                  **cf),
            lambda x: numconv.conv_backprop_kernel(lay(x), g(x), w.shape, padding="same", **cf)]


def _every_op(x, seed, data_format="channels_first"):
    return [op(x) for op in _ops(x.shape[1], seed, data_format)]


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_results_never_share_the_reused_scratch(data_format):
    """Calls take their intermediates (channels_first: the channels-last copies) from
    a per-thread pool that the next call reuses: no result may alias it. Each op's
    result must survive the same op's next call on other data unchanged, and a
    round of every op must not change the results of an earlier round."""
    rng = np.random.default_rng(11)
    x1 = rng.standard_normal((2, 12, 17, 19)).astype(np.float32)
    x2 = rng.standard_normal((2, 12, 17, 19)).astype(np.float32)
    from numconv import _memory
    for op in _ops(12, 0, data_format):
        a = op(x1)
        assert not any(np.shares_memory(a, buf) for buf in _memory._state()["idle"])
        kept = a.copy()
        b = op(x2)
        np.testing.assert_array_equal(a, kept)
        assert not np.shares_memory(a, b)
    first = _every_op(x1, 0, data_format)
    kept = [r.copy() for r in first]
    _every_op(x2, 0, data_format)
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b)


def test_channels_first_scratch_is_reused_not_reallocated():
    """The second channels_first call of the same shape borrows the buffers the
    first one returned to the pool (fresh multi-megabyte buffers cost a page fault
    per 4 KiB touched), and the pool keeps at most ``KEEP_BYTES``."""
    from numconv import _memory
    x = np.random.default_rng(1).standard_normal((2, 16, 40, 40)).astype(np.float32)
    w = np.ones((3, 3, 16, 16), np.float32)
    numconv.conv(x, w, padding="same", data_format="channels_first")
    idle = {id(b) for b in _memory._state()["idle"]}
    assert idle
    numconv.conv(x, w, padding="same", data_format="channels_first")
    assert {id(b) for b in _memory._state()["idle"]} == idle
    assert sum(b.nbytes for b in _memory._state()["idle"]) <= _memory.KEEP_BYTES


def test_channels_first_calls_from_python_threads_are_correct():
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((2, 8, 23 + i, 21)).astype(np.float32) for i in range(4)]
    expected = [_every_op(x, 2) for x in xs]

    def work(i):
        return i % 4, _every_op(xs[i % 4], 2)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, got in pool.map(work, range(16)):
            for a, b in zip(got, expected[i]):
                np.testing.assert_array_equal(a, b)


def test_separable_conv_returns_its_channels_last_copy_to_the_pool(monkeypatch):
    """A channels_first separable conv whose depthwise stage cannot stay
    channels-first (stride 2 along W) lays its input out channels-last in
    scratch; as an entry point it hands that copy back to the thread's pool."""
    from numconv import _memory
    st = _memory._state()
    monkeypatch.setitem(st, "idle", [])
    x = np.random.default_rng(2).standard_normal((2, 16, 20, 20)).astype(np.float32)
    numconv.separable_conv(x, np.ones((3, 3, 16, 1), np.float32), np.ones((1, 1, 16, 8), np.float32), strides=2,
                           padding="same", data_format="channels_first")
    assert any(b.nbytes >= x.nbytes for b in st["idle"])


@pytest.fixture
def results_pool(monkeypatch):
    """The results' buffer pool (``_memory._pooled``) from 1 KiB on, starting empty."""
    from numconv import _memory
    monkeypatch.setattr(_memory, "POOL_MIN_BYTES", 1 << 10)
    monkeypatch.setattr(_memory, "_idle", [])
    return _memory


def _address(a):
    return a.__array_interface__["data"][0]


def _root(a):
    """The array at the end of ``a``'s chain of bases (the memory's owner)."""
    while a.base is not None:
        a = a.base
    return a


def test_a_dropped_result_lends_its_buffer_but_a_live_view_keeps_it(results_pool):
    """A result's buffer returns to the pool once the result and every view of it
    are gone, and the next result of that size reuses it; a buffer some view
    still uses (a slice, a reshape, a transpose, a view of a view, the buffer
    itself at the end of the result's bases) is never lent:
    the view's values survive any number of later calls unchanged."""
    rng = np.random.default_rng(3)
    x1, x2 = (rng.standard_normal((2, 24, 24, 8)).astype(np.float32) for _ in range(2))
    w = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    conv = lambda x: numconv.conv(x, w, padding="same")  # noqa: E731
    y = conv(x1)
    at = _address(y)
    del y
    assert len(results_pool._idle) == 1
    y = conv(x2)
    assert _address(y) == at and not results_pool._idle  # the same memory, taken from the pool
    np.testing.assert_allclose(y, ref_conv(x2, w, padding="same"), rtol=1e-5, atol=1e-5)
    for make in (lambda r: r[1:], lambda r: r.reshape(-1)[::3], lambda r: r.T, lambda r: r[:, 2:][..., ::2],
                 _root):
        y = conv(x1)
        view = make(y)
        base = view is _root(y)
        kept = view.copy()
        del y
        assert not any(np.shares_memory(view, b) for b in results_pool._idle)  # the view holds the buffer
        for x in (x2, x1, x2):
            z = conv(x)
            assert not np.shares_memory(z, view)
            del z
        np.testing.assert_array_equal(view, kept)
        del view
        # its buffer is back (beside the one the calls took turns with), except when
        # the view was the buffer itself: that one was dropped from the pool for good
        assert len(results_pool._idle) == (1 if base else 2)


def test_the_results_pool_keeps_at_most_pool_bytes(results_pool, monkeypatch):
    x = np.ones((1, 32, 32, 4), np.float32)
    w = np.ones((1, 1, 4, 4), np.float32)
    monkeypatch.setattr(results_pool, "POOL_BYTES", 3 * x.nbytes)
    ys = [numconv.conv(x * i, w) for i in range(8)]  # 8 live results, none from the pool
    assert len({_address(y) for y in ys}) == 8
    del ys
    assert 0 < sum(b.nbytes for b in results_pool._idle) <= 3 * x.nbytes
    results_pool.release_scratch()
    assert not results_pool._idle


def test_pooled_results_from_python_threads_are_correct(results_pool):
    """Threads taking and returning pooled buffers at once never share one: each
    result, kept while the others run, equals its single-threaded value."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(6)
    xs = [rng.standard_normal((2, 20, 20, 8)).astype(np.float32) for _ in range(4)]
    w = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    expected = [numconv.conv(x, w, padding="same").copy() for x in xs]

    def work(i):
        kept = [numconv.conv(xs[(i + j) % 4], w, padding="same") for j in range(3)]
        for j, y in enumerate(kept):
            np.testing.assert_array_equal(y, expected[(i + j) % 4])
        return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(work, range(24)))
