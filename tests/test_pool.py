"""numconv.max_pool / average_pool / global_*_pool against an independent NumPy
reference written from the definition (Keras 3 ``keras.ops`` semantics), PyTorch
where installed, and the edge cases and error messages of the contract.

The reference shares no code with numconv: it loops over output positions,
slices each window out of the input (clipped to it, so padded positions are
simply absent) and reduces it with ``np.max`` / ``np.mean`` in float64.
"""
import itertools

import numba
import numpy as np
import pytest

import numconv


# ---------------------------------------------------------------- reference

def _same_pads(L, k, s):
    out = -(-L // s)
    total = max((out - 1) * s + k - L, 0)
    return out, total // 2


def ref_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last", op="max"):
    """Slow reference: one ``np.max``/``np.mean`` per output position."""
    x = np.asarray(x)
    if data_format == "channels_first":
        x = np.moveaxis(x, 1, -1)
    rank = x.ndim - 2
    k = (pool_size,) * rank if np.isscalar(pool_size) else tuple(pool_size)
    s = k if strides is None else ((strides,) * rank if np.isscalar(strides) else tuple(strides))
    spatial = x.shape[1:-1]
    outs, befores = [], []
    for L, kk, ss in zip(spatial, k, s):
        if padding == "same":
            o, b = _same_pads(L, kk, ss)
        else:
            o, b = (L - kk) // ss + 1, 0
        outs.append(o)
        befores.append(b)
    y = np.empty((x.shape[0],) + tuple(outs) + (x.shape[-1],))
    xd = x.astype(np.float64)
    for idx in itertools.product(*(range(o) for o in outs)):
        window = tuple(slice(max(i * ss - b, 0), min(i * ss - b + kk, L))
                       for i, ss, b, kk, L in zip(idx, s, befores, k, spatial))
        block = xd[(slice(None),) + window + (slice(None),)]
        block = block.reshape(x.shape[0], -1, x.shape[-1])
        y[(slice(None),) + idx + (slice(None),)] = block.max(axis=1) if op == "max" else block.mean(axis=1)
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    return y


def _call(op, *args, **kwargs):
    return (numconv.max_pool if op == "max" else numconv.average_pool)(*args, **kwargs)


def _check(got, want, op, dtype):
    assert got.dtype == dtype
    assert got.shape == want.shape
    if op == "max":
        np.testing.assert_array_equal(got, want.astype(dtype))
    else:
        rtol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


# ---------------------------------------------------------------- the sweep

def _sweep_cases(rounds=3, seed=20240605):
    """``rounds`` passes over every (rank, padding, data_format, dtype, op), each
    case with seeded random pool sizes 1-4, strides 1-3 or None, odd sizes and
    channel counts (within and across vector lane blocks)."""
    rng = np.random.default_rng(seed)
    grid = list(itertools.product([1, 2, 3], ["valid", "same"], ["channels_last", "channels_first"],
                                  [np.dtype(np.float32), np.dtype(np.float64)], ["max", "avg"]))
    cases = []
    for rank, padding, data_format, dtype, op in grid * rounds:
        sizes = {1: (3, 23), 2: (2, 11), 3: (2, 7)}[rank]
        while True:
            k = tuple(int(v) for v in rng.integers(1, 5, rank))
            spatial = tuple(int(v) for v in rng.integers(sizes[0], sizes[1], rank))
            if padding == "same" or all(L >= kk for L, kk in zip(spatial, k)):
                break
        strides = None if rng.random() < 0.25 else tuple(int(v) for v in rng.integers(1, 4, rank))
        cases.append(dict(rank=rank, k=k, strides=strides, padding=padding, spatial=spatial,
                          channels=int(rng.choice([1, 3, 5, 16, 17, 33])), batch=int(rng.integers(1, 3)),
                          data_format=data_format, dtype=dtype, op=op, seed=int(rng.integers(1 << 30))))
    return cases


SWEEP = _sweep_cases()


def test_sweep_covers_the_grid():
    got = {(c["rank"], c["padding"], c["data_format"], c["dtype"].name, c["op"]) for c in SWEEP}
    assert len(got) == 3 * 2 * 2 * 2 * 2
    assert len(SWEEP) >= 100
    assert any(c["strides"] is None for c in SWEEP)
    assert {s for c in SWEEP if c["strides"] for s in c["strides"]} == {1, 2, 3}
    assert {k for c in SWEEP for k in c["k"]} == {1, 2, 3, 4}


def _case_id(c):
    return "r{rank}-k{k}-s{strides}-{padding}-{data_format}-{op}-{dtype}".format(**c)


@pytest.mark.parametrize("case", SWEEP, ids=_case_id)
def test_sweep_against_reference(case):
    rng = np.random.default_rng(case["seed"])
    shape = (case["batch"],) + case["spatial"] + (case["channels"],)
    x = rng.standard_normal(shape).astype(case["dtype"])
    if case["data_format"] == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    kwargs = dict(strides=case["strides"], padding=case["padding"], data_format=case["data_format"])
    got = _call(case["op"], x, case["k"], **kwargs)
    want = ref_pool(x, case["k"], op=case["op"], **kwargs)
    _check(got, want, case["op"], case["dtype"])


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("channels", [64, 70, 200])
def test_wide_rows_and_many_channel_blocks(op, channels):
    """Rows longer than a tile (R x L) and channel counts past several lane blocks,
    with a tail that is not a whole block."""
    x = np.random.default_rng(channels).standard_normal((2, 9, 37, channels)).astype(np.float32)
    for k, s, pad in [((3, 3), (2, 2), "valid"), ((2, 5), (1, 3), "same"), ((3, 1), (1, 4), "same")]:
        _check(_call(op, x, k, s, pad), ref_pool(x, k, s, pad, op=op), op, np.float32)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_long_1d_signal_split_over_threads(op):
    """Few rows: the kernel splits each row into pieces along W."""
    x = np.random.default_rng(1).standard_normal((1, 3001, 5))
    for k, s, pad in [(4, 3, "same"), (7, 2, "valid"), (2, 5, "same")]:
        _check(_call(op, x, k, s, pad), ref_pool(x, k, s, pad, op=op), op, np.float64)


def test_strides_none_means_pool_size():
    x = np.random.default_rng(2).standard_normal((2, 8, 9, 3))
    np.testing.assert_array_equal(numconv.max_pool(x, (2, 3)), numconv.max_pool(x, (2, 3), strides=(2, 3)))
    assert numconv.average_pool(x, 2).shape == (2, 4, 4, 3)


def test_padding_is_case_insensitive():
    x = np.random.default_rng(3).standard_normal((1, 7, 4))
    np.testing.assert_array_equal(numconv.max_pool(x, 3, 2, "SAME"), numconv.max_pool(x, 3, 2, "same"))
    np.testing.assert_array_equal(numconv.average_pool(x, 3, 2, "Valid"), numconv.average_pool(x, 3, 2))


# ---------------------------------------------------------------- torch

_TORCH_CASES = [  # rank, spatial, k, s
    (1, (17,), (3,), (2,)),
    (1, (16,), (4,), (4,)),
    (2, (9, 11), (3, 3), (2, 2)),
    (2, (8, 10), (2, 3), (1, 2)),
    (3, (5, 6, 7), (2, 3, 2), (1, 2, 2)),
]


@pytest.mark.parametrize("rank, spatial, k, s", _TORCH_CASES)
def test_valid_padding_matches_torch(rank, spatial, k, s):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.random.default_rng(rank).standard_normal((2, 6) + spatial).astype(np.float32)  # NC*
    xt = torch.from_numpy(x)
    tmax = getattr(F, f"max_pool{rank}d")(xt, k, s).numpy()
    tavg = getattr(F, f"avg_pool{rank}d")(xt, k, s).numpy()
    np.testing.assert_array_equal(numconv.max_pool(x, k, s, data_format="channels_first"), tmax)
    np.testing.assert_allclose(numconv.average_pool(x, k, s, data_format="channels_first"), tavg,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rank, spatial, k", [(1, (15,), (3,)), (2, (9, 12), (3, 5)), (3, (5, 7, 6), (3, 3, 3))])
def test_same_padding_matches_torch_count_include_pad_false(rank, spatial, k):
    """Odd pool sizes with stride 1: TF "same" pads are symmetric (k // 2), which
    torch expresses as padding=k // 2; averages exclude the padding."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.random.default_rng(rank + 10).standard_normal((2, 4) + spatial).astype(np.float32)
    pad = tuple(kk // 2 for kk in k)
    xt = torch.from_numpy(x)
    tmax = getattr(F, f"max_pool{rank}d")(xt, k, 1, pad).numpy()
    tavg = getattr(F, f"avg_pool{rank}d")(xt, k, 1, pad, count_include_pad=False).numpy()
    np.testing.assert_array_equal(numconv.max_pool(x, k, 1, "same", "channels_first"), tmax)
    np.testing.assert_allclose(numconv.average_pool(x, k, 1, "same", "channels_first"), tavg,
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- values

def test_max_propagates_nan_like_numpy():
    x = np.arange(2 * 6 * 6 * 20, dtype=np.float32).reshape(2, 6, 6, 20)
    x[0, 1, 1, 3] = np.nan  # only window (0, 0) of channel 3
    x[1, 5, 5, 19] = np.nan  # the last window, the last channel (a tail lane)
    y = numconv.max_pool(x, 2)
    nan = np.isnan(y)
    assert nan.sum() == 2 and nan[0, 0, 0, 3] and nan[1, 2, 2, 19]
    np.testing.assert_array_equal(y, ref_pool(x, 2).astype(np.float32))
    # NaN first in the window, then larger values: still NaN
    z = np.array([[[np.nan], [5.0], [1.0], [2.0]]])
    np.testing.assert_array_equal(numconv.max_pool(z, 2), [[[np.nan], [2.0]]])
    # and the average of a window with a NaN is NaN as well
    assert np.isnan(numconv.average_pool(z, 2)[0, 0, 0])


def test_nan_in_a_padded_border_window():
    z = np.array([[[1.0], [np.nan], [3.0], [4.0], [5.0]]])
    np.testing.assert_array_equal(numconv.max_pool(z, 3, 1, "same")[0, :, 0], [np.nan, np.nan, np.nan, 5.0, 5.0])


def test_infinities_are_ordinary_values():
    x = np.array([[[-np.inf], [-np.inf], [-5.0], [np.inf], [-np.inf], [-np.inf]]])
    np.testing.assert_array_equal(numconv.max_pool(x, 2)[0, :, 0], [-np.inf, np.inf, -np.inf])
    np.testing.assert_array_equal(numconv.max_pool(x, 3, 1, "same")[0, :, 0],
                                  [-np.inf, -5.0, np.inf, np.inf, np.inf, -np.inf])
    np.testing.assert_array_equal(numconv.average_pool(x, 2)[0, :, 0], [-np.inf, np.inf, -np.inf])
    # a window holding both infinities averages to NaN, as np.mean
    with np.errstate(invalid="ignore"):
        want = ref_pool(x, 3, 1, "same", op="avg")
    assert np.isnan(want[0, 2:4, 0]).all()
    np.testing.assert_array_equal(numconv.average_pool(x, 3, 1, "same"), want)


def test_max_pool_of_all_negative_values_with_same_padding():
    """Padded positions never win, so they are not treated as 0."""
    x = -1.0 - np.random.default_rng(4).random((1, 5, 5, 3))
    y = numconv.max_pool(x, 3, 1, "same")
    assert (y < -1.0).all()
    np.testing.assert_array_equal(y, ref_pool(x, 3, 1, "same"))


def test_same_average_counts_only_values_inside():
    x = np.ones((1, 4, 4, 2))
    np.testing.assert_array_equal(numconv.average_pool(x, 3, 1, "same"), x)
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)
    # windows (k=3, "same" pads 1/1): [1,2], [1,2,3], [2,3,4], [3,4,5], [4,5]
    np.testing.assert_allclose(numconv.average_pool(x, 3, 1, "same")[0, :, 0], [1.5, 2.0, 3.0, 4.0, 4.5])
    # k=4, stride 2 on L=5: out 3, total pad 3, 1 before: windows [1,2,3], [2..5], [4,5]
    np.testing.assert_allclose(numconv.average_pool(x, 4, 2, "same")[0, :, 0], [2.0, 3.5, 4.5])


def test_valid_average_divides_by_the_full_window():
    x = np.arange(12.0).reshape(1, 12, 1)
    np.testing.assert_allclose(numconv.average_pool(x, 4, 3)[0, :, 0], [1.5, 4.5, 7.5])


def test_float32_average_is_float64_mean_rounded_once():
    x = (1e4 + np.random.default_rng(5).random((1, 8, 8, 40))).astype(np.float32)
    got = numconv.average_pool(x, 4)
    want = ref_pool(x, 4, op="avg").astype(np.float32)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- global pooling

@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_pools_match_numpy(rank, dtype):
    rng = np.random.default_rng(rank)
    spatial = {1: (37,), 2: (7, 9), 3: (3, 4, 5)}[rank]
    for batch, channels in [(1, 300), (3, 5), (20, 2)]:
        x = rng.standard_normal((batch,) + spatial + (channels,)).astype(dtype)
        axes = tuple(range(1, rank + 1))
        np.testing.assert_array_equal(numconv.global_max_pool(x), x.max(axis=axes))
        rtol = 1e-6 if dtype == np.float32 else 1e-12
        mean = x.astype(np.float64).mean(axis=axes)
        got = numconv.global_average_pool(x)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, mean, rtol=rtol, atol=rtol)
        xf = np.ascontiguousarray(np.moveaxis(x, -1, 1))
        np.testing.assert_array_equal(numconv.global_max_pool(xf, data_format="channels_first"),
                                      x.max(axis=axes))


def test_global_pool_of_a_large_map_splits_parts():
    x = np.random.default_rng(6).standard_normal((1, 64, 64, 48)).astype(np.float32)
    np.testing.assert_array_equal(numconv.global_max_pool(x), x.max(axis=(1, 2)))
    np.testing.assert_allclose(numconv.global_average_pool(x), x.astype(np.float64).mean(axis=(1, 2)), rtol=1e-6)


def test_global_pool_keepdims():
    x = np.random.default_rng(7).standard_normal((2, 4, 5, 3))
    y = numconv.global_average_pool(x, keepdims=True)
    assert y.shape == (2, 1, 1, 3)
    np.testing.assert_allclose(y, x.mean(axis=(1, 2), keepdims=True))
    xf = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    y = numconv.global_max_pool(xf, data_format="channels_first", keepdims=True)
    assert y.shape == (2, 3, 1, 1)
    np.testing.assert_array_equal(y, xf.max(axis=(2, 3), keepdims=True))
    assert numconv.global_max_pool(np.ones((2, 7, 3)), keepdims=True).shape == (2, 1, 3)


def test_global_max_nan_and_inf():
    x = np.zeros((2, 10, 3))
    x[0, 7, 1] = np.nan
    x[1, 2, 2] = np.inf
    y = numconv.global_max_pool(x)
    assert np.isnan(y[0, 1]) and not np.isnan(y[0, [0, 2]]).any()
    assert y[1, 2] == np.inf
    assert np.isnan(numconv.global_average_pool(x)[0, 1])


# ---------------------------------------------------------------- inputs

def test_batch_zero_returns_empty_of_the_right_shape():
    assert numconv.max_pool(np.zeros((0, 8, 8, 3), np.float32), 2).shape == (0, 4, 4, 3)
    assert numconv.average_pool(np.zeros((0, 3, 9), np.float32), 2, padding="same",
                                data_format="channels_first").shape == (0, 3, 5)
    assert numconv.global_max_pool(np.zeros((0, 5, 2))).shape == (0, 2)
    assert numconv.global_average_pool(np.zeros((0, 2, 5, 5)), "channels_first", True).shape == (0, 2, 1, 1)


def test_input_not_modified_and_result_is_new():
    x = np.random.default_rng(8).standard_normal((2, 6, 6, 4))
    before = x.copy()
    for fn in (numconv.max_pool, numconv.average_pool):
        y = fn(x, 1)
        np.testing.assert_array_equal(y, x)
        assert not np.shares_memory(y, x)
    numconv.global_max_pool(x)
    numconv.global_average_pool(x)
    np.testing.assert_array_equal(x, before)


def test_non_contiguous_fortran_readonly_and_list_inputs():
    rng = np.random.default_rng(9)
    base = rng.standard_normal((2, 12, 14, 6))
    want = ref_pool(base[:, ::2, 1::2, ::2], 2, 1, "same")
    views = [base[:, ::2, 1::2, ::2], np.asfortranarray(base[:, ::2, 1::2, ::2])]
    ro = np.array(base[:, ::2, 1::2, ::2])
    ro.setflags(write=False)
    views.append(ro)
    for v in views:
        np.testing.assert_array_equal(numconv.max_pool(v, 2, 1, "same"), want)
    lst = [[[1.0, 2.0], [3.0, -1.0], [0.5, 7.0]]]
    np.testing.assert_array_equal(numconv.max_pool(lst, 2, 1), [[[3.0, 2.0], [3.0, 7.0]]])
    np.testing.assert_array_equal(numconv.global_max_pool(lst), [[3.0, 7.0]])


def test_dtypes():
    x = np.arange(24).reshape(1, 4, 6, 1)
    y = numconv.max_pool(x, 2)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y[0, :, :, 0], [[7, 9, 11], [19, 21, 23]])
    assert numconv.average_pool(x.astype(np.int8), 2).dtype == np.float64
    assert numconv.max_pool(x > 10, 2).dtype == np.float64
    h = numconv.average_pool(x.astype(np.float16), 2)
    assert h.dtype == np.float32
    assert numconv.global_max_pool(x.astype(np.float16)).dtype == np.float32
    assert numconv.max_pool(x.astype(np.float32), 2).dtype == np.float32


def test_channels_first_result_is_c_contiguous():
    x = np.random.default_rng(10).standard_normal((2, 3, 8, 8))
    y = numconv.max_pool(x, 2, data_format="channels_first")
    assert y.flags.c_contiguous and y.shape == (2, 3, 4, 4)


def test_same_padding_with_an_empty_axis_gives_an_empty_output():
    assert numconv.max_pool(np.zeros((1, 0, 3)), 2, padding="same").shape == (1, 0, 3)


def test_results_do_not_depend_on_the_thread_count():
    x = np.random.default_rng(11).standard_normal((1, 2, 500, 9)).astype(np.float32)
    n = numconv.get_num_threads()
    try:
        numconv.set_num_threads(1)
        one = [numconv.average_pool(x, 3, 2, "same"), numconv.global_average_pool(x)]
    finally:
        numconv.set_num_threads(n)
    many = [numconv.average_pool(x, 3, 2, "same"), numconv.global_average_pool(x)]
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- errors

def test_error_wrong_ndim_names_the_expected_layout_and_fix():
    with pytest.raises(ValueError, match=r"max_pool expects a 4-D input x \(batch, height, width, channels\)"
                                         r".*for a pool_size of length 2; got shape \(8, 8, 3\)\. "
                                         r"For a single example add a batch axis: x\.reshape\(1, 8, 8, 3\); "
                                         r"for a batch of one-channel examples add a channel axis: "
                                         r"x\.reshape\(8, 8, 3, 1\)\."):
        numconv.max_pool(np.zeros((8, 8, 3)), (2, 2))
    with pytest.raises(ValueError, match=r"average_pool expects a 3-D, 4-D or 5-D input x "
                                         r"\(batch, channels, \*spatial\).*got shape \(4, 4\)"):
        numconv.average_pool(np.zeros((4, 4)), 2, data_format="channels_first")
    with pytest.raises(ValueError, match=r"global_max_pool expects a 3-D, 4-D or 5-D input"):
        numconv.global_max_pool(np.zeros((2, 3, 4, 5, 6, 7)))


def test_error_pool_larger_than_input_under_valid():
    with pytest.raises(ValueError, match=r"max_pool: spatial axis 1 \(width\) of x has size 2, smaller than "
                                         r"pool_size 3.*padding=\"valid\" gives an empty output.*"
                                         r"Otherwise use padding=\"same\" or a smaller pool_size\."):
        numconv.max_pool(np.zeros((1, 5, 2, 4)), 3, 1)
    # a channels_first array passed without data_format: the hint names it
    with pytest.raises(ValueError, match=r"If x is laid out as \(batch, channels, height, width\), "
                                         r"pass data_format=\"channels_first\""):
        numconv.average_pool(np.zeros((1, 3, 32, 32)), 4)


def test_error_bad_pool_size_and_strides():
    x = np.zeros((1, 8, 8, 1))
    with pytest.raises(ValueError, match=r"max_pool: pool_size must have every entry >= 1; got 0\."):
        numconv.max_pool(x, 0)
    with pytest.raises(ValueError, match=r"average_pool: pool_size must have every entry >= 1; got \(2, -1\)"):
        numconv.average_pool(x, (2, -1))
    with pytest.raises(ValueError, match=r"max_pool: strides must have every entry >= 1; got 0"):
        numconv.max_pool(x, 2, strides=0)
    with pytest.raises(TypeError, match=r"max_pool: pool_size must be an int or a tuple of 2 ints; got 2\.5"):
        numconv.max_pool(x, 2.5)
    with pytest.raises(ValueError, match=r"max_pool expects a 5-D input x .* for a pool_size of length 3"):
        numconv.max_pool(x, (2, 2, 2))


def test_remembered_geometry_never_skips_validation():
    """Geometry is remembered per shape and plain arguments (``_pool._pool_args``):
    arguments equal to a remembered call's but of another type (2.0, True, a list)
    are validated anew (and rejected where they are invalid), and failures are
    never remembered."""
    x = np.arange(64.0).reshape(1, 8, 8, 1)
    y = numconv.max_pool(x, 2)
    np.testing.assert_array_equal(numconv.max_pool(x, 2), y)
    for bad in (2.0, (2.0, 2)):
        with pytest.raises(TypeError, match=r"max_pool: pool_size must be an int"):
            numconv.max_pool(x, bad)
    np.testing.assert_array_equal(numconv.max_pool(x, [2, 2]), y)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"max_pool: pool_size must have every entry >= 1; got 0\."):
            numconv.max_pool(x, 0)
    with pytest.raises(ValueError, match=r"max_pool: strides must have every entry >= 1"):
        numconv.max_pool(x, 2, strides=0)
    numconv.max_pool(x, 2, strides=1)
    with pytest.raises(TypeError, match=r"max_pool: strides must be an int or a tuple of 2 ints; got True"):
        numconv.max_pool(x, 2, strides=True)
    # another shape with the same arguments computes its own geometry
    assert numconv.max_pool(np.zeros((2, 6, 10, 3)), 2).shape == (2, 3, 5, 3)


def test_error_padding_and_data_format():
    x = np.zeros((1, 8, 8, 1))
    with pytest.raises(ValueError, match=r"max_pool: unknown padding 'full'; expected one of 'valid', 'same'\."):
        numconv.max_pool(x, 2, padding="full")
    with pytest.raises(TypeError, match=r"average_pool: padding must be \"valid\" or \"same\"; got 1\. "
                                        r"Pooling takes no explicit pads"):
        numconv.average_pool(x, 2, padding=1)
    with pytest.raises(ValueError, match=r"max_pool: unknown data_format 'NHWC'; expected one of "
                                         r"'channels_last', 'channels_first'\."):
        numconv.max_pool(x, 2, data_format="NHWC")
    with pytest.raises(ValueError, match=r"global_average_pool: unknown data_format"):
        numconv.global_average_pool(x, data_format="nchw")
    with pytest.raises(TypeError, match=r"global_max_pool: keepdims must be True or False; got 'yes'"):
        numconv.global_max_pool(x, keepdims="yes")


def test_error_dtypes():
    with pytest.raises(TypeError, match=r"max_pool: x must be real .*; got dtype complex128\. "
                                        r"Pool np\.abs\(x\), x\.real or x\.imag instead\."):
        numconv.max_pool(np.zeros((1, 4, 1), complex), 2)
    with pytest.raises(TypeError, match=r"global_average_pool: x must be real"):
        numconv.global_average_pool(np.zeros((1, 4, 1), np.complex64))
    with pytest.raises(TypeError, match=r"average_pool: x must have a numeric dtype"):
        numconv.average_pool(np.array([[["a"], ["b"]]]), 1)


def test_error_global_pool_of_empty_spatial_axis():
    with pytest.raises(ValueError, match=r"global_max_pool: x must have non-empty spatial axes.*"
                                         r"got shape \(2, 0, 3\)"):
        numconv.global_max_pool(np.zeros((2, 0, 3)))


def test_errors_leave_no_partial_work_and_public_names():
    for name in ("max_pool", "average_pool", "global_max_pool", "global_average_pool"):
        assert name in numconv.__all__ and callable(getattr(numconv, name))
        assert "Examples" in getattr(numconv, name).__doc__


# ---------------------------------------------------------------- JIT and threads

def test_one_specialisation_per_op_and_dtype():
    """Ranks, layouts, strides, padding, read-only and non-contiguous inputs and
    global pooling all reuse the same compiled kernels: op tag x float32/float64."""
    from numconv._kernels.pool import pool_kernel

    rng = np.random.default_rng(12)
    for dtype in (np.float32, np.float64, np.int16, np.float16, bool):
        for shape in [(2, 9, 3), (1, 5, 7, 4), (1, 3, 4, 5, 2)]:
            x = (rng.standard_normal(shape) > 0).astype(dtype)
            ro = x.copy()
            ro.setflags(write=False)
            for a in (x, ro, np.asfortranarray(x), x[..., ::-1]):
                numconv.max_pool(a, 2, 1, "same")
                numconv.average_pool(a, 2, 1, "same", "channels_first")
                numconv.global_max_pool(a)
                numconv.global_average_pool(a, keepdims=True)
    assert len(pool_kernel.signatures) <= 4, pool_kernel.signatures


def test_concurrent_calls_from_python_threads():
    """Safe from a thread pool whatever Numba's threading layer (the kernel launch
    goes through numconv's kernel_lock on the non-thread-safe workqueue layer)."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(13)
    xs = [rng.standard_normal((2, 20, 20, 8)).astype(np.float32) for _ in range(8)]
    want = [(numconv.max_pool(x, 3, 2, "same"), numconv.average_pool(x, 2), numconv.global_average_pool(x))
            for x in xs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: (numconv.max_pool(x, 3, 2, "same"), numconv.average_pool(x, 2),
                                       numconv.global_average_pool(x)), xs * 3))
    for i, g in enumerate(got):
        for a, b in zip(g, want[i % len(xs)]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("sw", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("width", [5, 16, 33, 300])
def test_channels_first_pooling_pools_planes_in_place(op, rank, sw, padding, width, monkeypatch):
    """Pooling of channels_first data at stride 1 or 2 along W runs on the plane
    kernel (vectorised along W; stride 2 deinterleaves) without laying the input
    out channels-last: rows past one tile of the row pass (300), output rows
    across several vectors, odd windows, "same" averages counting only the
    positions inside; for max, NaN and -inf inside. Bit for bit the
    channels-last result (the same folds in the same order)."""
    from numconv import _pool

    rng = np.random.default_rng(rank * 100 + sw * 10 + width)
    spatial = (4, 6, width)[3 - rank:]
    x = rng.standard_normal((2, 3) + spatial)
    if op == "max":
        x[0, 1, ..., width // 2] = np.nan
        x[1, 2, ..., 0] = -np.inf
    k = (3, 2, 3)[3 - rank:]
    strides = (2, 1, sw)[3 - rank:]
    monkeypatch.setattr(_pool, "to_channels_last", lambda *a: pytest.fail("laid out channels-last"))
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        got = _call(op, xd, k, strides, padding, "channels_first")
        _check(got, ref_pool(xd, k, strides, padding, "channels_first", op=op), op, np.dtype(dtype))
        cl = _call(op, np.ascontiguousarray(np.moveaxis(xd, 1, -1)), k, strides, padding)
        assert np.array_equal(got, np.moveaxis(cl, -1, 1), equal_nan=True)


@pytest.mark.parametrize("op", ["max", "avg"])
def test_channels_first_planes_in_blocks_of_tasks(op):
    """More planes than blocks (eight per thread), the last block short: each
    plane's result is the channels-last one bit for bit, whatever the thread
    count; rows of whole vectors (plain loads and stores) and tails (masked)."""
    x = np.random.default_rng(31).standard_normal((3, 37, 6, 69)).astype(np.float32)
    cl = np.moveaxis(_call(op, np.ascontiguousarray(np.moveaxis(x, 1, -1)), 3, 2, "same"), -1, 1)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numconv.set_num_threads(threads)
            np.testing.assert_array_equal(_call(op, x, 3, 2, "same", "channels_first"), cl)
    finally:
        numconv.set_num_threads(before)
    _check(cl, ref_pool(x, 3, 2, "same", "channels_first", op=op), op, np.dtype(np.float32))


@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("channels", [64, 68])
def test_large_pools_stream_their_results(op, channels, monkeypatch):
    """An input and result of ``STREAM_BYTES`` or more store whole tile rows around
    the caches (where the result's rows are 64-byte aligned: 64 float32 channels;
    68 take plain stores): the same numbers as plain stores and the reference."""
    from numconv import _pool
    from numconv._kernels.pool import pool_kernel
    flags = []

    def counted(*args):
        flags.append(args[-1])
        return pool_kernel(*args)

    monkeypatch.setattr(_pool, "pool_kernel", counted)
    x = np.random.default_rng(channels).standard_normal((1, 256, 256, channels)).astype(np.float32)
    assert x.nbytes >= _pool.STREAM_BYTES
    streamed = _call(op, x, 3, 2)
    monkeypatch.setattr(_pool, "STREAM_BYTES", 1 << 62)
    plain = _call(op, x, 3, 2)
    assert flags == [True, False]
    np.testing.assert_array_equal(streamed, plain)
    _check(streamed[:, :40], ref_pool(x[:, :81], 3, 2, op=op), op, np.float32)
