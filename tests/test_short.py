"""The short-reduction direct kernel (``_kernels/short.py``: at most 64 terms per
output, on a padded copy of the input): results against the float64 reference
over its argument space, when ``direct`` uses it (and that it really runs),
invariance to threads, tails, non-finite values and untouched inputs."""
import numba
import numpy as np
import pytest

import numconv
from numconv._kernels import short
from numconv._paths import direct
from reference import ref_conv
from specs import spec_of


def _cases():
    rng = np.random.default_rng(2024)
    cases = []
    for i in range(48):
        rank = (1, 2, 3)[i % 3]
        groups = int(rng.choice([1, 1, 2, 3]))
        # filters per group around the tile rows' widths (16 float32 lanes for
        # <= 16, 32, 64) with tails; 5+ filters (1-4 go to the narrow kernel)
        kg = int(rng.choice([5, 7, 16, 17, 24, 33, 64, 70]))
        ks = tuple(int(v) for v in rng.integers(1, 4 if rank == 3 else 6, rank))
        taps = int(np.prod(ks))
        cg = int(rng.integers(1, max(1, 64 // taps) + 1))  # channels per group: <= 64 terms
        # output widths below, at and past the 8-pixel tile, with tails
        width = int(rng.choice([1, 3, 8, 9, 17, 40]))
        spatial = tuple(int(v) for v in rng.integers(2, 7, rank - 1)) + (width + ks[-1] + 2,)
        cases.append(dict(
            spatial=spatial, ks=ks, groups=groups, cg=cg, kg=kg,
            strides=tuple(int(v) for v in rng.integers(1, 3, rank)),
            dilation=tuple(int(v) for v in rng.integers(1, 3, rank)),
            batch=int(rng.integers(1, 3)),
            dtype=(np.float32, np.float64, np.float32, np.complex64)[i % 4] if i % 7 else np.complex128,
            padding=str(rng.choice(["valid", "same", "explicit"])),
            mode=str(rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"])),
            bias=bool(i % 3), activation=(None, "relu", "tanh", "gelu", "relu6")[i % 5],
            data_format="channels_first" if i % 5 == 0 else "channels_last", seed=i))
    return cases


def _args(c):
    rng = np.random.default_rng(c["seed"])
    dt = np.dtype(c["dtype"])
    C, K = c["groups"] * c["cg"], c["groups"] * c["kg"]

    def draw(shape):
        a = rng.standard_normal(shape)
        if dt.kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dt)

    x = draw((c["batch"],) + c["spatial"] + (C,))
    w = draw(c["ks"] + (c["cg"], K))
    b = draw((K,)) if c["bias"] else None
    padding = c["padding"]
    if padding == "explicit":
        padding = tuple((int(p), int(q)) for p, q in rng.integers(0, 3, (len(c["spatial"]), 2)))
    if c["mode"] != "zeros" and padding == "valid":
        padding = "same"
    kw = dict(strides=c["strides"], padding=padding, dilation_rate=c["dilation"], padding_mode=c["mode"],
              groups=c["groups"], activation=None if dt.kind == "c" else c["activation"])
    return x, w, b, kw


@pytest.mark.parametrize("c", _cases(), ids=lambda c: f"r{len(c['spatial'])}-g{c['groups']}-cg{c['cg']}-"
                                                      f"kg{c['kg']}-{np.dtype(c['dtype']).name}-s{c['seed']}")
def test_matches_reference(c, monkeypatch):
    x, w, b, kw = _args(c)
    calls = []
    monkeypatch.setattr(direct, "short_kernel", lambda *a: calls.append(1) or short.short_kernel(*a))
    xin = x if c["data_format"] == "channels_last" else np.ascontiguousarray(np.moveaxis(x, -1, 1))
    keep, wkeep = xin.copy(), w.copy()
    try:
        got = numconv.conv(xin, w, b, data_format=c["data_format"], method="direct", **kw)
    except ValueError as e:
        assert "empty" in str(e) or "larger" in str(e) or "smaller" in str(e), e
        pytest.skip("no output for this window")
    spec = spec_of(x, w, **kw)
    assert bool(calls) == direct.is_short(spec)
    ref = ref_conv(x, w, b, **kw)
    scale = np.abs(ref_conv(x, w, b, **dict(kw, activation=None))).max()
    np.testing.assert_array_equal(xin, keep)
    np.testing.assert_array_equal(w, wkeep)
    if c["data_format"] == "channels_first":
        got = np.moveaxis(got, 1, -1)
    tol = 2e-5 if np.dtype(c["dtype"]) in (np.float32, np.complex64) else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, scale))


def test_the_sweep_runs_the_short_kernel():
    """Guard against the sweep drifting off the kernel it tests."""
    hits = 0
    for c in _cases():
        x, w, _, _ = _args(c)
        hits += direct.is_short(spec_of(x, w, groups=c["groups"], padding="same"))
    assert hits >= 36, hits


def test_when_it_applies():
    x = np.zeros((2, 20, 30, 8), np.float32)
    assert direct.is_short(spec_of(x[..., :7], np.zeros((3, 3, 7, 16), np.float32)))    # 63 terms
    assert direct.is_short(spec_of(x, np.zeros((1, 1, 8, 64), np.float32)))            # 8 terms, 64 filters
    assert not direct.is_short(spec_of(x, np.zeros((3, 3, 8, 16), np.float32)))         # 72 terms: the tile kernel
    assert direct.is_short(spec_of(x, np.zeros((3, 3, 4, 16), np.float32), groups=2))  # 36 terms per group
    # double precision: the 8-row tiles only (<= 16 filters per group)
    x2 = x[..., :2]
    assert direct.is_short(spec_of(x2.astype(np.float64), np.zeros((3, 3, 2, 16))))
    assert not direct.is_short(spec_of(x2.astype(np.float64), np.zeros((3, 3, 2, 17))))
    assert not direct.is_short(spec_of(x2.astype(np.complex128), np.zeros((3, 3, 2, 9), np.complex128)))
    assert direct.is_short(spec_of(x2.astype(np.complex64), np.zeros((3, 3, 2, 40), np.complex64)))


def test_stock_layer_matches_reference_and_the_tile_kernel(monkeypatch):
    """The layer the kernel exists for (1000 x 50 x 1 -> 16, k 5), and its
    result bit for bit against the tile kernel's (same terms, same order)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1000, 50, 1)).astype(np.float32)
    w = rng.standard_normal((5, 1, 16)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    got = numconv.conv1d(x, w, b, method="direct")
    np.testing.assert_allclose(got, ref_conv(x.astype(np.float64), w.astype(np.float64), b), rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(direct, "is_short", lambda spec: False)
    assert np.array_equal(got, numconv.conv1d(x, w, b, method="direct"))


@pytest.mark.parametrize("width", [1, 7, 8, 9, 63, 200])
def test_rows_split_across_tasks(width):
    """One long row is split into W-chunks (fewer rows than threads); each chunk's
    last tile repeats its last pixel and stores only its own."""
    rng = np.random.default_rng(width)
    x = rng.standard_normal((1, width + 2, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 20)).astype(np.float32)
    out = np.full((1, width, 20), np.nan, np.float32)
    numconv.conv1d(x, w, method="direct", out=out)
    np.testing.assert_allclose(out, ref_conv(x.astype(np.float64), w.astype(np.float64)), rtol=1e-5, atol=1e-5)


def test_identical_for_any_thread_count():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 37, 150, 3)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 40)).astype(np.float32)
    assert direct.is_short(spec_of(x, w))
    results = []
    for n in (1, numba.config.NUMBA_NUM_THREADS):
        numconv.set_num_threads(n)
        results.append(numconv.conv2d(x, w, padding="same", strides=(1, 2), method="direct"))
    numconv.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert np.array_equal(results[0], results[1])


def test_non_finite_inputs_stay_local():
    x = np.ones((1, 20, 100, 2), np.float32)
    x[0, 10, 50, 1] = np.nan
    x[0, 3, 7, 0] = np.inf
    y = numconv.conv2d(x, np.ones((3, 3, 2, 16), np.float32), padding="same", method="direct")[..., 5][0]
    nan = np.isnan(y)
    assert nan[9:12, 49:52].all() and nan.sum() == 9
    assert np.isposinf(y[2:5, 6:9]).all() and np.isinf(y).sum() == 9
    assert (y[15:19, 60:99] == 18).all()


def test_fused_activation_and_bias_on_every_filter_block():
    """Filters past one tile row (70 = 64 + 6): the activation pass after the
    kernel covers every filter, once (relu6 twice would not show; leaky relu would)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 30, 4)).astype(np.float32)
    w = rng.standard_normal((3, 4, 70)).astype(np.float32)
    b = rng.standard_normal(70).astype(np.float32)
    act = numconv.conv1d(x, w, b, padding="same", activation="leaky_relu", method="direct")
    lin = ref_conv(x.astype(np.float64), w.astype(np.float64), b, padding="same")
    np.testing.assert_allclose(act, np.where(lin > 0, lin, 0.2 * lin), rtol=1e-5, atol=1e-5)
