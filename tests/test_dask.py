"""numconv.dask: every op on Dask arrays equals the in-memory op on the same data.

Chunkings are deliberately awkward: one chunk, batch-only chunks, chunks that do
not divide the shape, and chunks smaller than the kernel's halo (1-2 positions,
channels split too). Everything computes on the threaded scheduler with 4
threads, so several blocks' kernels run at once in one process. The
``distributed`` cluster tests are in ``test_dask_distributed.py``.
"""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import numconv

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
nd = pytest.importorskip("numconv.dask")
from numconv import signal as nsignal  # noqa: E402
from numconv.dask import signal as dsignal  # noqa: E402
from numconv.dask._threads import task_thread_count  # noqa: E402

RNG = np.random.default_rng(20260)


def compute(y):
    assert isinstance(y, da.Array)
    return y.compute(scheduler="threads", num_workers=4)


def assert_same(got, want):
    """Same shape and dtype; values within float tolerance of the output's scale
    (float64 1e-12, float32 1e-5; exact for integers)."""
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
        return
    tol = 1e-5 if want.dtype in (np.float32, np.complex64) else 1e-12
    scale = max(float(np.abs(want).max(initial=0)), 1e-300)
    assert float(np.abs(got - want).max(initial=0)) <= tol * scale


# (name, chunks of a (2, 11, 9, 4) channels-last input)
CHUNKINGS_2D = {
    "one": (2, 11, 9, 4),
    "batch": (1, 11, 9, 4),
    "uneven": (2, 4, 5, 4),       # 4 and 5 divide neither 11 nor 9
    "tiny": (1, 2, 1, 3),         # smaller than every halo below; channels split 3 + 1
}


@pytest.fixture(scope="module")
def x2d():
    return RNG.standard_normal((2, 11, 9, 4))


def _dask(x, chunks, data_format="channels_last"):
    if data_format == "channels_first":
        x = np.moveaxis(x, -1, 1).copy()
        chunks = (chunks[0], chunks[-1]) + tuple(chunks[1:-1])
    return x, da.from_array(x, chunks=chunks)


# ---------------------------------------------------------------- import

def test_import_numconv_does_not_import_dask():
    code = "import numconv, numconv.dask, numconv.dask.signal, sys; assert 'dask' not in sys.modules, 'dask imported'"
    subprocess.run([sys.executable, "-c", "import numconv, sys; assert 'dask' not in sys.modules"], check=True)
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- conv

CONV_CASES = {
    "valid": dict(),
    "same_s2": dict(padding="same", strides=2),
    "explicit_asym": dict(padding=((2, 0), (1, 3)), strides=(3, 2), dilation_rate=(1, 2)),
    "same_reflect_d2": dict(padding="same", padding_mode="reflect", dilation_rate=2),
    "replicate_p3_s2": dict(padding=3, padding_mode="replicate", strides=2),
    "full_circular": dict(padding="full", padding_mode="circular", dilation_rate=(2, 1)),
    "circular_edge": dict(padding=((0, 11), (9, 2)), padding_mode="circular"),  # pads == L: a whole wrap
    "big_zero_pads": dict(padding=7, strides=3),  # some blocks see only padding
}


@pytest.mark.parametrize("chunking", CHUNKINGS_2D)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_in_memory(x2d, chunking, case):
    kw = CONV_CASES[case]
    w = RNG.standard_normal((3, 3, 4, 5))
    b = RNG.standard_normal(5)
    want = numconv.conv(x2d, w, b, **kw)
    _, xd = _dask(x2d, CHUNKINGS_2D[chunking])
    assert_same(compute(nd.conv(xd, w, b, **kw)), want)


@pytest.mark.parametrize("chunking", ["uneven", "tiny"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_conv_groups_filter_chunks_layouts(x2d, chunking, data_format):
    x, xd = _dask(x2d, CHUNKINGS_2D[chunking], data_format)
    w = RNG.standard_normal((3, 2, 2, 6))  # groups = 2, 3 filters per group
    b = RNG.standard_normal(6)
    kw = dict(padding="same", strides=(2, 1), data_format=data_format, activation="relu")
    want = numconv.conv(x, w, b, **kw)
    for filter_chunks in (None, 3, (3, 3), (6,)):
        y = nd.conv(xd, w, b, filter_chunks=filter_chunks, **kw)
        assert_same(compute(y), want)
    caxis = 1 if data_format == "channels_first" else -1
    assert nd.conv(xd, w, b, filter_chunks=3, **kw).chunks[caxis] == (3, 3)
    w1 = RNG.standard_normal((3, 3, 4, 5))
    assert_same(compute(nd.conv(xd, w1, filter_chunks=(2, 3), padding_mode="reflect", padding=1,
                                data_format=data_format)),
                numconv.conv(x, w1, padding=1, padding_mode="reflect", data_format=data_format))


@pytest.mark.parametrize("chunks", [(1, 3, 3), (2, 7, 1), (2, 40, 3)])
@pytest.mark.parametrize("kw", [dict(padding="causal", dilation_rate=3), dict(padding=(4, 1), strides=3),
                                dict(padding="same", padding_mode="reflect", strides=2)], ids=str)
def test_conv1d_float32(chunks, kw):
    x = RNG.standard_normal((2, 40, 3)).astype(np.float32)
    w = RNG.standard_normal((5, 3, 4)).astype(np.float32)
    assert_same(compute(nd.conv1d(da.from_array(x, chunks=chunks), w, **kw)), numconv.conv1d(x, w, **kw))


@pytest.mark.parametrize("chunks", [(1, 3, 2, 4, 2), (2, 7, 8, 9, 1)])
def test_conv3d(chunks):
    x = RNG.standard_normal((2, 7, 8, 9, 2))
    w = RNG.standard_normal((3, 2, 3, 2, 3))
    for kw in (dict(padding="same", strides=2),
               dict(padding="same", padding_mode="replicate", dilation_rate=(1, 2, 1))):
        assert_same(compute(nd.conv3d(da.from_array(x, chunks=chunks), w, **kw)), numconv.conv3d(x, w, **kw))


def test_conv_integer_inputs_stay_exact():
    x = RNG.integers(-5, 5, (2, 11, 3))
    w = RNG.integers(-3, 3, (3, 3, 2))
    want = numconv.conv(x, w, padding="same", padding_mode="reflect")
    assert_same(compute(nd.conv(da.from_array(x, chunks=(1, 2, 3)), w, padding="same", padding_mode="reflect")), want)


# ---------------------------------------------------------------- depthwise, separable

DW_CASES = {
    "valid": dict(),
    "same_s2": dict(padding="same", strides=2),
    "reflect_d2": dict(padding="same", padding_mode="reflect", dilation_rate=2),
    "circular_s3_d2": dict(padding=((2, 0), (1, 3)), strides=(3, 2), dilation_rate=(1, 2), padding_mode="circular"),
}


@pytest.mark.parametrize("chunking", CHUNKINGS_2D)
@pytest.mark.parametrize("case", DW_CASES)
def test_depthwise_and_separable(x2d, chunking, case):
    kw = DW_CASES[case]
    dk = RNG.standard_normal((3, 3, 4, 2))
    pk = RNG.standard_normal((1, 1, 8, 3))
    b8, b3 = RNG.standard_normal(8), RNG.standard_normal(3)
    _, xd = _dask(x2d, CHUNKINGS_2D[chunking])
    y = nd.depthwise_conv(xd, dk, b8, activation="gelu", **kw)
    assert_same(compute(y), numconv.depthwise_conv(x2d, dk, b8, activation="gelu", **kw))
    # input channel chunks carry over (times the depth multiplier), no gathering
    assert y.chunks[-1] == tuple(2 * c for c in xd.chunks[-1])
    want = numconv.separable_conv(x2d, dk, pk, b3, activation="relu", **kw)
    assert_same(compute(nd.separable_conv(xd, dk, pk, b3, activation="relu", **kw)), want)
    assert_same(compute(nd.separable_conv(xd, dk, pk, b3, activation="relu", filter_chunks=2, **kw)), want)


def test_depthwise_channels_first(x2d):
    x, xd = _dask(x2d, CHUNKINGS_2D["tiny"], "channels_first")
    dk = RNG.standard_normal((2, 3, 4, 3))
    kw = dict(padding="same", strides=(1, 2), data_format="channels_first", padding_mode="replicate")
    assert_same(compute(nd.depthwise_conv(xd, dk, **kw)), numconv.depthwise_conv(x, dk, **kw))


# ---------------------------------------------------------------- conv_transpose

TRANSPOSE_CASES = {
    "valid": dict(),
    "valid_s2": dict(strides=2),
    "same_s2": dict(strides=2, padding="same"),
    "same_s3_op1": dict(strides=3, padding="same", output_padding=1),
    "valid_op": dict(strides=(3, 2), output_padding=(2, 1)),
    "same_s2_d2": dict(strides=2, dilation_rate=2, padding="same"),
    "kernel_shorter_than_stride": dict(strides=4),  # Keras's L * s length
}


@pytest.mark.parametrize("chunking", CHUNKINGS_2D)
@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose(x2d, chunking, case):
    kw = TRANSPOSE_CASES[case]
    w = RNG.standard_normal((3, 2, 5, 4))
    b = RNG.standard_normal(5)
    _, xd = _dask(x2d, CHUNKINGS_2D[chunking])
    assert_same(compute(nd.conv_transpose(xd, w, b, activation="tanh", **kw)),
                numconv.conv_transpose(x2d, w, b, activation="tanh", **kw))


def test_conv_transpose_channels_first_filter_chunks(x2d):
    x, xd = _dask(x2d, CHUNKINGS_2D["uneven"], "channels_first")
    w = RNG.standard_normal((3, 3, 5, 4))
    kw = dict(strides=2, padding="same", data_format="channels_first")
    y = nd.conv_transpose(xd, w, filter_chunks=2, **kw)
    assert y.chunks[1] == (2, 2, 1)
    assert_same(compute(y), numconv.conv_transpose(x, w, **kw))


# ---------------------------------------------------------------- pooling

POOL_CASES = {
    "2": dict(pool_size=2),
    "3s2_same": dict(pool_size=3, strides=2, padding="same"),
    "3x4_s1x3_same": dict(pool_size=(3, 4), strides=(1, 3), padding="same"),
    "5x2_s1": dict(pool_size=(5, 2), strides=1),
}


@pytest.mark.parametrize("chunking", CHUNKINGS_2D)
@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("op", ["max_pool", "average_pool"])
def test_pooling(x2d, chunking, case, op):
    kw = POOL_CASES[case]
    _, xd = _dask(x2d, CHUNKINGS_2D[chunking])
    y = getattr(nd, op)(xd, **kw)
    assert y.chunks[-1] == xd.chunks[-1] and y.chunks[0] == xd.chunks[0]  # no halo on batch and channels
    assert_same(compute(y), getattr(numconv, op)(x2d, **kw))


def test_pooling_layouts_ranks_and_dtypes():
    x1 = RNG.standard_normal((2, 3, 30)).astype(np.float32)  # channels first, rank 1
    for op in ("max_pool", "average_pool"):
        kw = dict(pool_size=4, strides=3, padding="same", data_format="channels_first")
        assert_same(compute(getattr(nd, op)(da.from_array(x1, chunks=(1, 2, 4)), **kw)),
                    getattr(numconv, op)(x1, **kw))
    x3 = RNG.integers(0, 100, (1, 5, 6, 7, 2))
    for op in ("max_pool", "average_pool"):
        assert_same(compute(getattr(nd, op)(da.from_array(x3, chunks=(1, 2, 3, 2, 1)), 3, 2, "same")),
                    getattr(numconv, op)(x3, 3, 2, "same"))


# ---------------------------------------------------------------- signal

@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_signal_1d(chunk, mode):
    a, k = RNG.standard_normal(50), RNG.standard_normal(8)
    ai, ki = RNG.integers(-9, 9, 50), RNG.integers(-9, 9, 8)
    assert_same(compute(dsignal.convolve(da.from_array(a, chunks=chunk), k, mode)), nsignal.convolve(a, k, mode))
    assert_same(compute(dsignal.correlate(da.from_array(a, chunks=chunk), k, mode)), nsignal.correlate(a, k, mode))
    assert_same(compute(dsignal.correlate(da.from_array(ai, chunks=chunk), ki, mode, method="direct")),
                nsignal.correlate(ai, ki, mode, method="direct"))
    # in2 longer than in1 ("valid" swaps the inputs, as SciPy)
    short = da.from_array(k, chunks=max(1, chunk // 7))
    assert_same(compute(dsignal.convolve(short, a, mode)), nsignal.convolve(k, a, mode))


@pytest.mark.parametrize("chunks", [(2, 7, 3), (6, 30, 20), (3, 2, 1)])  # last: below the halo
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_signal_nd_axes_complex(chunks, mode):
    A = RNG.standard_normal((6, 30, 20)) + 1j * RNG.standard_normal((6, 30, 20))
    K = RNG.standard_normal((1, 5, 4))
    K2 = RNG.standard_normal((6, 5, 1))  # one kernel per signal along axis 0
    Ad = da.from_array(A, chunks=chunks)
    assert_same(compute(dsignal.correlate(Ad, K, mode, axes=(1, 2))), nsignal.correlate(A, K, mode, axes=(1, 2)))
    assert_same(compute(dsignal.convolve(Ad, K2, mode, axes=[1])), nsignal.convolve(A, K2, mode, axes=[1]))
    assert_same(compute(dsignal.convolve(Ad.real, K, mode, method="fft")),
                nsignal.convolve(A.real, K, mode, method="fft"))
    # in1 of length 1 on axis 1, which in2 (4 slices) broadcasts over: "same" keeps
    # in2's middle slice there; correlate reverses the listed axis's slices
    A1, K4 = A[:, :1], RNG.standard_normal((1, 4, 3))
    A1d = da.from_array(A1, chunks=(chunks[0], 1, chunks[2]))
    for op in ("convolve", "correlate"):
        want = getattr(nsignal, op)(A1, K4, mode, axes=(1, 2))
        assert want.shape[1] == (1 if mode == "same" else 4)
        assert_same(compute(getattr(dsignal, op)(A1d, K4, mode, axes=(1, 2))), want)


# ---------------------------------------------------------------- API behaviour

def test_lazy_until_computed():
    calls = []

    def source(block):
        calls.append(block.shape)
        return block

    x = da.from_array(RNG.standard_normal((2, 16, 16, 3)), chunks=(1, 5, 5, 3)).map_blocks(
        source, meta=np.empty((0, 0, 0, 0)))
    w = RNG.standard_normal((3, 3, 3, 4))
    ys = [nd.conv(x, w, padding="same", padding_mode="reflect"), nd.depthwise_conv(x, w[..., :1]),
          nd.separable_conv(x, w[..., :1], RNG.standard_normal((1, 1, 3, 2))),
          nd.conv_transpose(x, w.transpose(0, 1, 3, 2), strides=2), nd.max_pool(x, 2), nd.average_pool(x, 3),
          dsignal.convolve(x, w[..., :1, 0][None])]
    assert calls == [] and all(isinstance(y, da.Array) for y in ys)
    compute(ys[0])
    assert calls


def test_output_chunks_follow_input_chunks():
    x = da.zeros((4, 20, 20, 3), chunks=(1, 10, 5, 3))
    y = nd.conv(x, np.ones((3, 3, 3, 8)), padding="same")
    assert y.chunks == ((1, 1, 1, 1), (10, 10), (5, 5, 5, 5), (8,))
    y = nd.conv(x, np.ones((3, 3, 3, 8)), strides=2, padding="same")
    assert y.chunks[1:3] == ((5, 5), (2, 3, 2, 3))  # outputs whose windows are centred in each input chunk
    y = nd.conv(x, np.ones((3, 3, 3, 8)))
    assert y.chunks[1:3] == ((9, 9), (4, 5, 5, 4))
    # batch-only chunks: one task per block, reading its own chunk only (no halo slices)
    xb = da.zeros((4, 9, 9, 3), chunks=(1, 9, 9, 3))
    yb = nd.conv(xb, np.ones((3, 3, 3, 2)), padding="same", padding_mode="circular")
    layer = dict(yb.dask.layers[yb.name])
    assert len(layer) == 4 + 2  # 4 blocks + kernel + bias constants, no getitem tasks


def test_numpy_input_and_dask_kernel():
    x = RNG.standard_normal((1, 12, 2))
    w = RNG.standard_normal((3, 2, 2))
    y = nd.conv1d(x, da.from_array(w), padding="same")
    assert isinstance(y, da.Array)
    assert_same(compute(y), numconv.conv1d(x, w, padding="same"))


def test_errors_match_in_memory_ops():
    x = da.zeros((1, 56), chunks=(1, 8))
    with pytest.raises(ValueError, match=r"got shape \(1, 56\)\. For a batch of one-channel examples add a "
                                         r"channel axis: x\.reshape\(1, 56, 1\)\.") as info:
        nd.conv1d(x, np.ones((3, 1, 64)))
    with pytest.raises(ValueError) as mem:
        numconv.conv1d(np.zeros((1, 56)), np.ones((3, 1, 64)))
    assert str(info.value) == str(mem.value)
    with pytest.raises(ValueError, match=r"got shape \(1, 56\)"):
        nd.max_pool(x, 2)
    with pytest.raises(ValueError, match=r"channels in shape \(2, 5, 5, 3\)"):
        nd.conv_transpose(da.zeros((2, 5, 5, 3)), np.ones((3, 3, 2, 4)))
    with pytest.raises(ValueError, match="padding_mode"):
        nd.conv(da.zeros((1, 5, 1)), np.ones((3, 1, 1)), padding_mode="mirror")
    with pytest.raises(ValueError, match="must be smaller than the input size"):
        nd.conv(da.zeros((1, 5, 1), chunks=2), np.ones((3, 1, 1)), padding=5, padding_mode="reflect")
    with pytest.raises(TypeError, match="numeric dtype"):
        dsignal.convolve(da.from_array(np.array(["a", "b"])), [1])
    with pytest.raises(ValueError, match="filter_chunks must split the 6 output channels at multiples of 3"):
        nd.conv(da.zeros((1, 5, 4)), np.ones((3, 2, 6)), filter_chunks=(2, 4))
    with pytest.raises(ValueError, match="adding up to"):
        nd.conv(da.zeros((1, 5, 4)), np.ones((3, 4, 6)), filter_chunks=(2, 2))
    unknown = da.zeros((4, 5, 1), chunks=2)
    unknown = unknown[unknown[:, 0, 0] == 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        nd.conv(unknown, np.ones((3, 1, 1)))


# ---------------------------------------------------------------- threads

def _record_threads(y):
    """A callable activation: replaces every output by the Numba thread count the
    task ran with (activations run inside the block's task)."""
    return y * 0 + numba.get_num_threads()


def test_tasks_use_the_threads_the_scheduler_allows():
    x = da.ones((4, 8, 8, 2), chunks=(1, 4, 4, 2))
    w = np.ones((3, 3, 2, 2))
    top = numba.config.NUMBA_NUM_THREADS
    with dask.config.set(num_workers=4):  # 4 tasks at once share the cores
        got = nd.conv(x, w, padding="same", activation=_record_threads).compute(scheduler="threads")
    assert np.all(got == max(1, top // 4))
    with dask.config.set({"numconv.threads": 2}):
        got = nd.conv(x, w, padding="same", activation=_record_threads).compute(scheduler="threads")
    assert np.all(got == min(2, top))
    old = numconv.get_num_threads()
    numconv.set_num_threads(1)
    try:  # the synchronous scheduler runs tasks in the calling thread, with its setting
        got = nd.conv(x, w, padding="same", activation=_record_threads).compute(scheduler="sync")
        assert np.all(got == 1) and task_thread_count() == 1
    finally:
        numconv.set_num_threads(old)
    assert numconv.get_num_threads() == old


WORKQUEUE_SCRIPT = textwrap.dedent("""
    import numba, numpy as np, dask.array as da, numconv, numconv.dask as nd
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 24, 24, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    want = numconv.conv(x, w, padding="same")
    xd = da.from_array(x, chunks=(1, 5, 7, 8))
    for _ in range(3):
        got = nd.conv(xd, w, padding="same").compute(scheduler="threads", num_workers=4)
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
        got = nd.max_pool(xd, 3, 2, "same").compute(scheduler="threads", num_workers=4)
        assert np.array_equal(got, numconv.max_pool(x, 3, 2, "same"))
    assert numba.threading_layer() == "workqueue", numba.threading_layer()
    print("ok")
""")


def test_concurrent_tasks_on_the_workqueue_layer_do_not_abort():
    """``workqueue`` aborts the process when two threads launch parallel kernels at
    once (numba#8563): 4 scheduler threads over 96 blocks must still be exact."""
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    done = subprocess.run([sys.executable, "-c", WORKQUEUE_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.parametrize("activation", ["softmax", "log_softmax"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_last_axis_activations_see_the_whole_axis(activation, data_format):
    """softmax and log_softmax normalise over the result's last axis (filters, or W
    channels_first): with that axis cut into blocks, each block's part had been
    normalised alone (errors of order 1); they now run on the assembled axis, for
    every conv-family op (the blocks' sums may differ from the whole array's in
    the last bits: ``numconv.dask``'s docstring)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 12, 10, 6))
    if data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    chunks = (1, 5, 4, 3) if data_format == "channels_last" else (1, 3, 5, 4)  # the last axis in blocks
    kw = dict(padding="same", activation=activation, data_format=data_format)
    w = rng.standard_normal((3, 3, 6, 8))
    got = nd.conv(da.from_array(x, chunks=chunks), w, filter_chunks=3, **kw).compute()
    np.testing.assert_allclose(got, numconv.conv(x, w, **kw), rtol=1e-12, atol=1e-12)
    dk, pk = rng.standard_normal((3, 3, 6, 1)), rng.standard_normal((1, 1, 6, 8))
    got = nd.separable_conv(da.from_array(x, chunks=chunks), dk, pk, **kw).compute()
    np.testing.assert_allclose(got, numconv.separable_conv(x, dk, pk, **kw), rtol=1e-12, atol=1e-12)
    wt = rng.standard_normal((3, 3, 4, 6))
    got = nd.conv_transpose(da.from_array(x, chunks=chunks), wt, strides=2, filter_chunks=2, **kw).compute()
    np.testing.assert_allclose(got, numconv.conv_transpose(x, wt, strides=2, **kw), rtol=1e-12, atol=1e-12)


def test_activations_are_checked_and_typed_when_the_graph_is_built():
    """softmax on complex data is the in-memory TypeError (it was computed), and a
    callable is probed: its dtype is the lazy result's (a bool-returning one
    gave a float64 graph, and conv_transpose cast its values back to float), and
    one returning another shape fails at once (conv_transpose broadcast it into
    every channel)."""
    x = da.from_array(RNG.standard_normal((2, 12, 3)), chunks=(1, 5, 3))
    w = RNG.standard_normal((3, 3, 4))
    wt = RNG.standard_normal((3, 4, 3))
    for call in (lambda xx, act: nd.conv(xx, w, activation=act),
                 lambda xx, act: nd.conv_transpose(xx, wt, activation=act),
                 lambda xx, act: nd.separable_conv(xx, w[:, :, :1], np.ones((1, 3, 2)), activation=act)):
        with pytest.raises(TypeError, match="complex data"):
            call(x.astype(np.complex128), "softmax")
        y = call(x, lambda v: v > 0)
        assert y.dtype == np.bool_ and compute(y).dtype == np.bool_
        with pytest.raises(ValueError, match="activation must return an array of the result's shape"):
            call(x, lambda v: v[0])
    assert_same(compute(nd.conv_transpose(x, wt, activation=lambda v: v > 0)),
                numconv.conv_transpose(x.compute(), wt, activation=lambda v: v > 0))
    assert_same(compute(nd.conv(x, w, activation=lambda v: v > 0)),
                numconv.conv(x.compute(), w, activation=lambda v: v > 0))


def test_conv_transpose_blocks_use_the_whole_ops_activation_formulas():
    """Blocks apply bias and activation as the in-memory op does (deferred NumPy
    formulas for sigmoid, softplus, ...): one chunk was 3.7e-9 off in float32."""
    x = (5 * RNG.standard_normal((1, 12, 2))).astype(np.float32)
    wt = RNG.standard_normal((3, 2, 2)).astype(np.float32)
    for act in ("sigmoid", "softplus", "swish", "exponential", "elu"):
        want = numconv.conv_transpose(x, wt, np.ones(2, np.float32), activation=act, method="direct")
        for chunks in ((1, 12, 2), (1, 5, 2)):  # one block: bit for bit; spatial blocks: their own plans
            got = compute(nd.conv_transpose(da.from_array(x, chunks=chunks), wt, np.ones(2, np.float32),
                                            activation=act, method="direct"))
            assert np.array_equal(got, want) if chunks[1] == 12 else np.allclose(got, want, rtol=1e-5, atol=1e-6)


def test_depthwise_filter_chunks_hold_whole_channels():
    """One input channel with a depth multiplier: filter chunks must hold whole
    channels' multipliers (a split of 2 of 4 built, then failed when computed)."""
    x = da.from_array(RNG.standard_normal((1, 8, 2)), chunks=(1, 4, 1))
    k = RNG.standard_normal((3, 2, 2))
    assert_same(compute(nd.depthwise_conv(x, k, filter_chunks=2)), numconv.depthwise_conv(x.compute(), k))
    with pytest.raises(ValueError, match="filter_chunks must split the 4 output channels at multiples of 4"):
        nd.depthwise_conv(x[..., :1], RNG.standard_normal((3, 1, 4)), filter_chunks=2)


def test_unknown_chunks_name_the_argument():
    x = da.from_array(np.arange(10.0), chunks=5)
    with pytest.raises(ValueError, match="convolve: in1 must have known chunk sizes"):
        dsignal.convolve(x[x > 3], np.ones(3))
