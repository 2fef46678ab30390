"""The narrow direct kernel (``_kernels/narrow.py``: one to four filters, lanes
over output pixels): results against the float64 reference over its argument
space, when ``direct`` uses it, invariance to threads, float32 accuracy on a long
reduction, non-finite inputs and untouched inputs."""
import numba
import numpy as np
import pytest

import numconv
from numconv._paths import direct
from numconv._spec import conv_spec
from numconv._dispatch import METHODS
from reference import ref_conv
from specs import spec_of


def _cases():
    rng = np.random.default_rng(1123)
    cases = []
    for i in range(40):
        rank = (1, 2, 3)[i % 3]
        # output widths below one run, at one run (64 float32 / 32 float64), past
        # it with a tail, and several runs
        width = int(rng.choice([1, 5, 31, 32, 33, 64, 65, 130]))
        spatial = tuple(int(v) for v in rng.integers(3, 9, rank - 1)) + (width + 6,)
        ks = tuple(int(v) for v in rng.integers(1, 5, rank))
        strides = tuple(int(v) for v in rng.integers(1, 3, rank - 1)) + (1,)
        dil = tuple(int(v) for v in rng.integers(1, 3, rank))
        cases.append(dict(
            spatial=spatial, ks=ks, strides=strides, dilation=dil, batch=int(rng.integers(1, 3)),
            channels=int(rng.choice([1, 2, 3, 5, 70])),  # 70 * taps > 64 terms: float32 flushes to double
            filters=1 + i % 4, dtype=(np.float32, np.float64)[i % 2],
            padding=str(rng.choice(["valid", "same", "explicit"])),
            mode=str(rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"])),
            bias=bool(i % 3), activation=(None, "relu", "tanh", "gelu")[i % 4],
            data_format="channels_first" if i % 5 == 0 else "channels_last", seed=i))
    return cases


@pytest.mark.parametrize("c", _cases(), ids=lambda c: f"r{len(c['spatial'])}-k{c['filters']}-c{c['channels']}-"
                                                      f"w{c['spatial'][-1]}-{np.dtype(c['dtype']).name}-s{c['seed']}")
def test_matches_reference(c):
    rng = np.random.default_rng(c["seed"])
    rank = len(c["spatial"])
    x = rng.standard_normal((c["batch"],) + c["spatial"] + (c["channels"],)).astype(c["dtype"])
    w = rng.standard_normal(c["ks"] + (c["channels"], c["filters"])).astype(c["dtype"])
    b = rng.standard_normal(c["filters"]).astype(c["dtype"]) if c["bias"] else None
    padding = c["padding"]
    if padding == "explicit":
        padding = tuple((int(p), int(q)) for p, q in rng.integers(0, 3, (rank, 2)))
    if c["mode"] != "zeros" and padding == "valid":
        padding = "same"
    kw = dict(strides=c["strides"], padding=padding, dilation_rate=c["dilation"], padding_mode=c["mode"],
              activation=c["activation"])
    xin = x if c["data_format"] == "channels_last" else np.ascontiguousarray(np.moveaxis(x, -1, 1))
    keep = xin.copy()
    try:
        got = numconv.conv(xin, w, b, data_format=c["data_format"], method="direct", **kw)
    except ValueError as e:
        assert "empty" in str(e) or "larger" in str(e) or "smaller" in str(e), e
        pytest.skip("no output for this window")
    ref = ref_conv(x, w, b, **kw)
    # the scale of the sums before the activation (tanh/gelu compress them)
    scale = np.abs(ref_conv(x, w, b, **dict(kw, activation=None))).max()
    np.testing.assert_array_equal(xin, keep)
    if c["data_format"] == "channels_first":
        got = np.moveaxis(got, 1, -1)
    tol = 1e-5 if c["dtype"] == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, scale))


def test_when_it_applies():
    x = np.zeros((1, 40, 70, 3), np.float32)
    assert direct.is_narrow(spec_of(x, np.zeros((3, 3, 3, 1), np.float32)))
    assert direct.is_narrow(spec_of(x, np.zeros((3, 3, 3, 4), np.float32)))
    assert direct.is_narrow(spec_of(x, np.zeros((3, 3, 3, 2), np.float32), strides=(2, 1)))
    assert not direct.is_narrow(spec_of(x, np.zeros((3, 3, 3, 5), np.float32)))  # 5 filters: the tile kernel
    assert not direct.is_narrow(spec_of(x, np.zeros((3, 3, 3, 1), np.float32), strides=(1, 2)))  # W stride
    assert not direct.is_narrow(spec_of(x.astype(np.complex64), np.zeros((3, 3, 3, 1), np.complex64)))
    # 3 output pixels: 3 of a 64-pixel run (5 %) beat 1 of 16 filter lanes (6 %) no more
    assert not direct.is_narrow(spec_of(np.zeros((1, 40, 5, 3), np.float32), np.zeros((3, 3, 3, 1), np.float32)))


def test_identical_for_any_thread_count():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 37, 150, 9)).astype(np.float32)
    w = rng.standard_normal((5, 5, 9, 3)).astype(np.float32)
    results = []
    for n in (1, numba.config.NUMBA_NUM_THREADS):
        numconv.set_num_threads(n)
        results.append(numconv.conv2d(x, w, padding="same", method="direct"))
    numconv.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert np.array_equal(results[0], results[1])


def test_float32_long_reduction_stays_accurate():
    """512 channels x 3 x 3 = 4608 positive terms per output (the worst case for
    rounding): partial sums flushed to double keep the error near 1e-7."""
    rng = np.random.default_rng(7)
    x = rng.random((1, 10, 70, 512)).astype(np.float32)
    w = rng.random((3, 3, 512, 1)).astype(np.float32)
    assert direct.is_narrow(spec_of(x, w, padding="same"))
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64), padding="same")
    got = numconv.conv2d(x, w, padding="same", method="direct")
    assert np.abs(got - ref).max() / np.abs(ref).max() < 5e-7


def test_non_finite_inputs_stay_local():
    x = np.ones((1, 20, 100, 2))
    x[0, 10, 50, 1] = np.nan
    x[0, 3, 7, 0] = np.inf
    y = numconv.conv2d(x, np.ones((3, 3, 2, 1)), padding="same", method="direct")[0, :, :, 0]
    nan = np.isnan(y)
    assert nan[9:12, 49:52].all() and nan.sum() == 9
    assert np.isposinf(y[2:5, 6:9]).all() and np.isinf(y).sum() == 9
    assert (y[15:19, 60:99] == 18).all()  # interior: 3 x 3 x 2 ones


def test_matches_the_tile_kernel_on_one_filter():
    """The layer the kernel exists for: a single-filter 2-D image conv, against
    the same conv computed with five filters on the tile kernel."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 200, 300, 1))
    w = rng.standard_normal((7, 7, 1, 5))
    many = numconv.conv2d(x, w, padding="same", method="direct")
    one = numconv.conv2d(x, w[..., 2:3], padding="same", method="direct")
    np.testing.assert_allclose(one[..., 0], many[..., 2], rtol=1e-12, atol=1e-12)


def test_the_sweep_runs_the_narrow_kernel():
    """Most sweep cases take the narrow kernel (the rest, 1- and 5-pixel rows, the tile kernel)."""
    narrow = 0
    for c in _cases():
        x = np.zeros((c["batch"],) + c["spatial"] + (c["channels"],), c["dtype"])
        w = np.zeros(c["ks"] + (c["channels"], c["filters"]), c["dtype"])
        try:
            narrow += direct.is_narrow(spec_of(x, w, strides=c["strides"], dilation_rate=c["dilation"], padding="same"))
        except ValueError:
            pass
    assert narrow >= 30, narrow


def test_channels_first_reads_the_users_array():
    """channels_first convs on the narrow kernel read the input as it is and write
    the result in place: integer, non-contiguous and ``out=`` inputs included."""
    rng = np.random.default_rng(11)
    x = rng.integers(-5, 5, (2, 3, 30, 70))
    w = rng.integers(-3, 3, (5, 5, 3, 2))
    ref = np.moveaxis(ref_conv(np.moveaxis(x, 1, -1), w, padding="same"), -1, 1)
    spec = spec_of(x, w, padding="same", data_format="channels_first")
    assert direct.is_narrow_channels_first(spec)
    np.testing.assert_array_equal(numconv.conv2d(x, w, padding="same", data_format="channels_first"), ref)
    xs = np.repeat(x, 2, axis=-1)[..., ::2]  # a non-contiguous view equal to x
    assert not xs.flags.c_contiguous
    out = np.empty(ref.shape)
    assert numconv.conv2d(xs, w, padding="same", data_format="channels_first", out=out) is out
    np.testing.assert_array_equal(out, ref)
    strided_out = np.empty(ref.shape + (2,))[..., 0]
    assert numconv.conv2d(xs, w, padding="same", data_format="channels_first", out=strided_out) is strided_out
    np.testing.assert_array_equal(strided_out, ref)
    assert numconv.conv2d(x.astype(np.float32), w.astype(np.float32), padding="same", data_format="channels_first",
                          activation="sigmoid").dtype == np.float32


@pytest.mark.parametrize("shape, ks", [((3, 5, 9, 70), (1, 1)), ((4, 3, 6, 40), (3, 2)), ((2, 70, 130), (1,)),
                                       ((3, 1, 1, 40), (1, 1)), ((2, 2, 4, 5, 33), (1, 2, 1))])
@pytest.mark.parametrize("readonly", [False, True])
def test_unpadded_channels_first_reads_all_but_the_last_image_in_place(shape, ks, readonly):
    """Without padding, images 0 ... N - 2 are read where they lie (their rows'
    last runs read into the next image) and only the last one is copied; 1 x 1
    layers run each image's pixels as one row. Bits equal the copying path's
    (one image at a time), values the reference; inputs stay unchanged; tiny
    images (shorter than a run) and read-only arrays take the copy."""
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(ks + (shape[1], 2)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    x0 = x.copy()
    x.flags.writeable = not readonly
    spec = spec_of(x, w, b, data_format="channels_first")
    assert direct.is_narrow_channels_first(spec)
    tiny = shape[1] * np.prod(shape[2:]) < direct.narrow_lanes(spec)
    assert direct.in_place_channels_first(spec, x, True) == (not readonly and not tiny)
    got = numconv.conv(x, w, b, data_format="channels_first")
    one_by_one = np.concatenate([numconv.conv(x[i:i + 1].copy(), w, b, data_format="channels_first")
                                 for i in range(shape[0])])
    np.testing.assert_array_equal(got, one_by_one)
    ref = np.moveaxis(ref_conv(np.moveaxis(x0.astype(np.float64), 1, -1), w, b), -1, 1)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(x, x0)


def test_kernel_groups_of_one_channel():
    """The kernel's grouped form (one input channel per group: depthwise, which
    ``direct`` keeps on its own kernel) against the reference, called directly."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 6, 20, 70))  # channels_first
    w = rng.standard_normal((3, 5, 1, 12))   # depth multiplier 2
    b = rng.standard_normal(12)
    spec, xu, w5, b5 = conv_spec("conv", x, w, b, (2, 1), "same", (1, 2), 6, "channels_first", "reflect", None,
                                 "direct", METHODS, layout=False)
    out = np.empty(spec.output_shape)
    direct.run_narrow(spec, xu, w5, b5, out, channels_first=True)
    ref = ref_conv(np.moveaxis(x, 1, -1), w, b, strides=(2, 1), padding="same", dilation_rate=(1, 2), groups=6,
                   padding_mode="reflect")
    np.testing.assert_allclose(np.moveaxis(out, 1, -1), ref, rtol=1e-12, atol=1e-12)


def _depthwise_cases():
    rng = np.random.default_rng(1127)
    cases = []
    for i in range(24):
        rank = (1, 2, 3)[i % 3]
        width = int(rng.choice([64, 70, 130]))  # runs mostly full: the narrow kernel's
        spatial = tuple(int(v) for v in rng.integers(4, 9, rank - 1)) + (width + 6,)
        cases.append(dict(
            spatial=spatial, ks=tuple(int(v) for v in rng.integers(1, 5, rank)),
            strides=tuple(int(v) for v in rng.integers(1, 3, rank - 1)) + (1,),
            dilation=tuple(int(v) for v in rng.integers(1, 3, rank)),
            channels=int(rng.choice([2, 3, 4, 5])), multiplier=1 + i % 4, dtype=(np.float32, np.float64)[i % 2],
            mode=str(rng.choice(["zeros", "reflect", "replicate", "circular"])), bias=bool(i % 3),
            activation=(None, "relu", "tanh")[i % 3], seed=i))
    return cases


@pytest.mark.parametrize("c", _depthwise_cases(), ids=lambda c: f"r{len(c['spatial'])}-c{c['channels']}-"
                                                               f"m{c['multiplier']}-{c['mode']}-s{c['seed']}")
def test_few_channel_depthwise_runs_here_and_matches_reference(c):
    """Depthwise layers of 2-5 channels that the slide kernel does not take run on
    the narrow kernel (``direct.is_narrow_depthwise``), every padding mode, ranks
    1-3, multipliers 1-4, against the grouped reference."""
    rng = np.random.default_rng(c["seed"])
    C, M = c["channels"], c["multiplier"]
    x = rng.standard_normal((2,) + c["spatial"] + (C,)).astype(c["dtype"])
    w = rng.standard_normal(c["ks"] + (1, C * M)).astype(c["dtype"])
    b = rng.standard_normal(C * M).astype(c["dtype"]) if c["bias"] else None
    kw = dict(strides=c["strides"], padding="same", dilation_rate=c["dilation"], padding_mode=c["mode"],
              activation=c["activation"], groups=C)
    try:
        spec = spec_of(x, w, b, **kw)
    except ValueError as e:
        assert "larger" in str(e) or "smaller" in str(e) or "empty" in str(e), e
        pytest.skip("no output for this window")
    if c["mode"] == "zeros" and M == 1 and not direct.is_narrow_depthwise(spec):
        assert direct.slides(spec)
        pytest.skip("the slide kernel's layer")
    assert direct.is_narrow_depthwise(spec)
    keep = x.copy()
    got = numconv.conv(x, w, b, method="direct", **kw)
    np.testing.assert_array_equal(x, keep)
    ref = ref_conv(x, w, b, **kw)
    scale = np.abs(ref_conv(x, w, b, **dict(kw, activation=None))).max()
    tol = 1e-5 if c["dtype"] == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, scale))
