"""The term-loop direct kernels (``_kernels/short.py``): the short-reduction one
(at most 64 terms per output, on a padded copy of the input) and the
long-reduction one (any length, single precision, border tiles through a
patch). Results against the float64 reference over their argument space, when
``direct`` uses each (and that it really runs), padded layers bit for bit as
valid ones on the padded input, invariance to threads, tails, non-finite values
and untouched inputs."""
import itertools
from dataclasses import replace

import numba
import numpy as np
import pytest

import numconv
from numconv import _adjoint
from numconv._kernels import short
from numconv._paths import direct
from reference import ref_conv
from specs import spec_of


def _cases(kind):
    """48 seeded cases of ``kind``: "short" (<= 64 terms per output) or "long"
    (65-700 terms, a few past the 512-term widening)."""
    rng = np.random.default_rng(2024 if kind == "short" else 2025)
    cases = []
    for i in range(48):
        rank = (1, 2, 3)[i % 3]
        groups = int(rng.choice([1, 1, 2, 3]))
        # filters per group around the tile rows' widths (16 float32 lanes for
        # <= 16, 32, 64) with tails; 5+ filters (1-4 go to the narrow kernel)
        kg = int(rng.choice([5, 7, 16, 17, 24, 33, 64, 70]))
        ks = tuple(int(v) for v in rng.integers(1, 4 if rank == 3 else 6, rank))
        taps = int(np.prod(ks))
        if kind == "short":
            cg = int(rng.integers(1, max(1, 64 // taps) + 1))  # channels per group: <= 64 terms
        else:
            cg = int(rng.integers(64 // taps + 1, (700 if i % 6 == 0 else 200) // taps + 2))
        # output widths below, at and past the 8-pixel tile, with tails
        width = int(rng.choice([1, 3, 8, 9, 17, 40]))
        spatial = tuple(int(v) for v in rng.integers(2, 7, rank - 1)) + (width + ks[-1] + 2,)
        dtypes = (np.float32, np.float64, np.float32, np.complex64) if kind == "short" else \
            (np.float32, np.float32, np.complex64, np.float32)
        cases.append(dict(
            kind=kind, spatial=spatial, ks=ks, groups=groups, cg=cg, kg=kg,
            strides=tuple(int(v) for v in rng.integers(1, 3, rank)),
            dilation=tuple(int(v) for v in rng.integers(1, 3, rank)),
            batch=int(rng.integers(1, 3)),
            dtype=dtypes[i % 4] if i % 7 else (np.complex128, np.float64)[i % 2],
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


def _kernel_ran(spec, data_format="channels_last"):
    """The term kernel ``direct`` runs for ``spec``: "short", "long", "pointwise"
    (``pointwise_kernel``: a 1 x 1 stride-1 layer's pixels as one row, when the
    input is not read channels-first in place), "product_cf" (``product_cf_kernel``:
    such a layer's channels-first input and result as they lie) or None."""
    if data_format == "channels_first" and direct.is_product_channels_first(replace(spec, data_format=data_format)):
        return "product_cf"
    if direct.is_short(spec):
        return "short"
    if not direct.is_long(spec):
        return None
    in_place_cf = data_format == "channels_first" and direct.is_terms_channels_first(spec)
    product = direct.is_product(direct.flat_pointwise(spec) or spec) and not in_place_cf
    return "pointwise" if product else "long"


@pytest.mark.parametrize("c", _cases("short") + _cases("long"),
                         ids=lambda c: f"{c['kind']}-r{len(c['spatial'])}-g{c['groups']}-cg{c['cg']}-"
                                       f"kg{c['kg']}-{np.dtype(c['dtype']).name}-s{c['seed']}")
def test_matches_reference(c, monkeypatch):
    x, w, b, kw = _args(c)
    calls = []
    for name in ("short_kernel", "long_kernel", "pointwise_kernel", "product_cf_kernel"):
        monkeypatch.setattr(direct, name, lambda *a, name=name: calls.append(name[:-7]) or getattr(short, name)(*a))
    xin = x if c["data_format"] == "channels_last" else np.ascontiguousarray(np.moveaxis(x, -1, 1))
    keep, wkeep = xin.copy(), w.copy()
    try:
        got = numconv.conv(xin, w, b, data_format=c["data_format"], method="direct", **kw)
    except ValueError as e:
        assert "empty" in str(e) or "larger" in str(e) or "smaller" in str(e), e
        pytest.skip("no output for this window")
    spec = spec_of(x, w, **kw)
    ran = _kernel_ran(spec, c["data_format"])
    assert calls == ([ran] if ran else [])
    ref = ref_conv(x, w, b, **kw)
    scale = np.abs(ref_conv(x, w, b, **dict(kw, activation=None))).max()
    np.testing.assert_array_equal(xin, keep)
    np.testing.assert_array_equal(w, wkeep)
    if c["data_format"] == "channels_first":
        got = np.moveaxis(got, 1, -1)
    tol = 2e-5 if np.dtype(c["dtype"]) in (np.float32, np.complex64) else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1.0, scale))


@pytest.mark.parametrize("kind", ["short", "long"])
def test_the_sweep_runs_each_kernel(kind):
    """Guard against the sweep drifting off the kernel it tests."""
    hits = 0
    for c in _cases(kind):
        x, w, _, _ = _args(c)
        hits += _kernel_ran(spec_of(x, w, groups=c["groups"], padding="same")) == kind
    assert hits >= 36, hits
    if kind == "long":  # and the double-precision level of the partial sums
        assert any(c["cg"] * np.prod(c["ks"]) > short.WIDE_TERMS for c in _cases(kind))


def test_term_offsets_list_the_terms_in_kernel_order():
    """The term kernels' offsets, term (kd, kh, kw, c) in that order: each
    position's element offset for the given strides and dilations (the kernels'
    results rest on it; only the reference sweeps would notice otherwise)."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        KD, KH, KW, CG = (int(v) for v in rng.integers(1, 5, 4))
        strides = tuple(int(v) for v in rng.integers(0, 1000, 4))
        dil = tuple(int(v) for v in rng.integers(1, 4, 3))
        sc, sz, sy, sx = strides
        want = [c * sc + a * dil[0] * sz + b * dil[1] * sy + k * dil[2] * sx
                for a, b, k, c in itertools.product(range(KD), range(KH), range(KW), range(CG))]
        np.testing.assert_array_equal(short.term_offsets(KD, KH, KW, CG, *strides, *dil), want)


def test_when_it_applies():
    x = np.zeros((2, 20, 30, 8), np.float32)
    assert direct.is_short(spec_of(x[..., :7], np.zeros((3, 3, 7, 16), np.float32)))    # 63 terms
    assert direct.is_short(spec_of(x, np.zeros((1, 1, 8, 64), np.float32)))            # 8 terms, 64 filters
    assert not direct.is_short(spec_of(x, np.zeros((3, 3, 8, 16), np.float32)))         # 72 terms: the long kernel
    assert direct.is_long(spec_of(x, np.zeros((3, 3, 8, 16), np.float32)))
    assert direct.is_long(spec_of(x.astype(np.complex64), np.zeros((3, 3, 8, 16), np.complex64)))
    assert not direct.is_long(spec_of(x.astype(np.float64), np.zeros((3, 3, 8, 16))))  # double: the tile kernel
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
    monkeypatch.setattr(direct, "is_long", lambda spec: False)
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


@pytest.mark.parametrize("kind, channels", [("short", 3), ("long", 96)])  # 48 / 1536 terms
def test_identical_for_any_thread_count(kind, channels):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 37, 150, channels)).astype(np.float32)
    w = rng.standard_normal((4, 4, channels, 40)).astype(np.float32)
    assert _kernel_ran(spec_of(x, w)) == kind
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


_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@pytest.mark.parametrize("mode", sorted(_MODES))
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_long_kernel_padded_layer_is_the_valid_layer_on_the_padded_input(rank, mode):
    """Border tiles read a patch gathered through the padding mode, inner tiles
    the input in place: the same terms in the same order as the valid layer on a
    padded copy (every tile inside), so the results agree bit for bit. Pads up
    to past one tile, strides and dilations, 3 groups."""
    rng = np.random.default_rng(rank * 10 + len(mode))
    spatial = (5, 7, 23)[3 - rank:]
    x = rng.standard_normal((2,) + spatial + (72,)).astype(np.float32)
    w = rng.standard_normal((3,) * rank + (24, 21)).astype(np.float32)  # 72+ terms per group
    pads = tuple((2, 1) if i % 2 else (1, 2) for i in range(rank - 1)) + ((9, 2) if mode == "zeros" else (2, 1),)
    kw = dict(groups=3, strides=(1,) * (rank - 1) + (2,), dilation_rate=(2,) + (1,) * (rank - 1))
    assert direct.is_long(spec_of(x, w, **kw)) and not direct.is_short(spec_of(x, w, **kw))
    got = numconv.conv(x, w, padding=pads, padding_mode=mode, method="direct", **kw)
    xp = np.pad(x, ((0, 0),) + pads + ((0, 0),), mode=_MODES[mode])
    assert np.array_equal(got, numconv.conv(xp, w, method="direct", **kw))
    np.testing.assert_allclose(got, ref_conv(x.astype(np.float64), w.astype(np.float64), padding=pads,
                                             padding_mode=mode, **kw), rtol=2e-5, atol=2e-5 * np.abs(got).max())


@pytest.mark.parametrize("mode", sorted(_MODES))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("spatial, ks, strides, dilation, pads", [
    ((15, 15), (2, 4), (1, 1), (1, 2), ((1, 1), (4, 4))),                 # OW = 17 in tiles of 8
    ((3, 6, 5), (3, 2, 3), (1, 2, 1), (1, 1, 2), ((0, 0), (1, 1), (1, 1))),  # OW = 3
    ((9, 12), (3, 3), (2, 3), (1, 1), ((1, 1), (0, 2))),                   # OW = 5, strided, one-sided
    ((7, 4), (3, 1), (1, 1), (1, 1), ((1, 1), (0, 0))),                    # OW = 4, rows inside
])
def test_long_kernel_tiles_run_across_row_ends(spatial, ks, strides, dilation, pads, data_format, mode,
                                               monkeypatch):
    """Short output rows (``direct.is_flat``): tiles run on past a row's end,
    reading each pixel's input in place, or each pixel's own window through the
    padding mode. The terms and their order are those of whole-row tiles, so the
    results agree bit for bit with ``FLAT_BELOW`` = 0 (whole rows), and with the
    float64 reference; grouped, in both layouts (channels-first read in place)."""
    rng = np.random.default_rng(len(spatial) * 7 + ks[-1] + len(mode))
    x = rng.standard_normal((3,) + spatial + (48,)).astype(np.float32)
    w = rng.standard_normal(ks + (24, 40)).astype(np.float32)
    kw = dict(groups=2, strides=strides, dilation_rate=dilation, padding=pads, padding_mode=mode)
    assert direct.is_long(spec_of(x, w, **kw))
    xin = np.ascontiguousarray(np.moveaxis(x, -1, 1)) if data_format == "channels_first" else x
    flats = []
    monkeypatch.setattr(direct, "long_kernel", lambda *a: flats.append(a[15]) or short.long_kernel(*a))
    got = numconv.conv(xin, w, data_format=data_format, method="direct", **kw)
    monkeypatch.setattr(direct, "FLAT_BELOW", 0.0)
    rows = numconv.conv(xin, w, data_format=data_format, method="direct", **kw)
    assert flats == [True, None]
    assert np.array_equal(got, rows)
    if data_format == "channels_first":
        got = np.moveaxis(got, 1, -1)
    np.testing.assert_allclose(got, ref_conv(x.astype(np.float64), w.astype(np.float64), **kw),
                               rtol=2e-5, atol=2e-5 * np.abs(got).max())


@pytest.mark.parametrize("width", [1, 7, 8, 9, 63, 200])
def test_long_kernel_rows_split_across_tasks(width):
    """A long row split into W-chunks and thread blocks; each chunk stores only
    its own pixels (``out`` prefilled with NaN)."""
    rng = np.random.default_rng(width)
    x = rng.standard_normal((1, width, 40)).astype(np.float32)
    w = rng.standard_normal((3, 40, 20)).astype(np.float32)
    out = np.full((1, width, 20), np.nan, np.float32)
    numconv.conv1d(x, w, padding="same", method="direct", out=out)
    np.testing.assert_allclose(out, ref_conv(x.astype(np.float64), w.astype(np.float64), padding="same"),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pixels, channels, filters, strides", [
    ((2, 3, 5), 65, 17, 1), ((1, 37), 128, 64, 1), ((3, 7, 7), 200, 70, 1), ((2, 4, 4, 3), 512, 33, 1),
    ((1, 9), 513, 130, 1), ((2, 5, 5), 1000, 5, 1), ((1, 6, 7), 1024, 64, 1), ((1, 11), 1100, 24, 1),
    ((3, 10, 16), 96, 70, (2, 2)), ((1, 7, 45), 520, 33, (1, 3)), ((2, 64), 200, 64, 4),
    ((1, 4, 6, 30), 100, 64, (2, 2, 2))])
def test_pointwise_kernel_is_the_long_kernel_bit_for_bit(pixels, channels, filters, strides, monkeypatch):
    """1 x 1 float32 layers without padding run ``pointwise_kernel`` (matrix
    products over runs of their pixels; stride 1 as one row of all of them,
    strided along their output rows), which sums the long kernel's terms in its
    order with its partial sums (flushed every 64 terms, widened every 512:
    channel counts around both): the same bits as ``long_kernel`` on the same
    layer, at any thread count, and the float64 reference's values."""
    rng = np.random.default_rng(channels)
    x = rng.standard_normal(pixels + (channels,)).astype(np.float32)
    w = rng.standard_normal((1,) * (len(pixels) - 1) + (channels, filters)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    keep = x.copy()
    calls = []
    monkeypatch.setattr(direct, "pointwise_kernel", lambda *a: calls.append(1) or short.pointwise_kernel(*a))
    got = numconv.conv(x, w, b, strides=strides, activation="relu", method="direct")
    assert calls, "pointwise_kernel did not run"
    before = numba.get_num_threads()
    try:
        numconv.set_num_threads(1)
        one = numconv.conv(x, w, b, strides=strides, activation="relu", method="direct")
    finally:
        numconv.set_num_threads(before)
    monkeypatch.setattr(direct, "is_product", lambda spec: False)
    calls.clear()
    via_long = numconv.conv(x, w, b, strides=strides, activation="relu", method="direct")
    assert not calls
    np.testing.assert_array_equal(got, via_long)
    np.testing.assert_array_equal(got, one)
    np.testing.assert_array_equal(x, keep)
    ref = ref_conv(x, w, b, strides=strides, activation="relu")
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max())


@pytest.mark.parametrize("pixels, channels, filters, strides", [
    ((2, 41), 72, 64, 1), ((3, 10, 16), 72, 112, (2, 2)), ((1, 3, 5, 32), 130, 128, (1, 1, 2)), ((2, 19), 65, 24, 1)])
def test_pointwise_kernel_streams_large_results(pixels, channels, filters, strides, monkeypatch):
    """Layers of at least ``STREAM_BYTES`` (0 here; shapes of this test alone, as
    ``streams`` is remembered per layer) without an activation stream their
    results around the caches where the filters fill whole cache lines (24 float32
    filters do not; 112 = 64 + 48 stream a partial tile row); a misaligned
    ``out=`` takes plain stores. The bits of the long kernel either way. (The
    streamed layers all take the 4 x 64 tile: one specialisation to compile.)"""
    monkeypatch.setattr(direct, "STREAM_BYTES", 0)
    rng = np.random.default_rng(filters)
    x = rng.standard_normal(pixels + (channels,)).astype(np.float32)
    w = rng.standard_normal((1,) * (len(pixels) - 1) + (channels, filters)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    calls = []
    monkeypatch.setattr(direct, "pointwise_kernel",
                        lambda *a: calls.append(len(a[9]) > 0) or short.pointwise_kernel(*a))
    got = numconv.conv(x, w, b, strides=strides, method="direct")
    buf = np.empty(got.size + 16, np.float32)
    offset = next(i for i in range(1, 16) if (buf.ctypes.data + 4 * i) % 64)
    out = buf[offset:offset + got.size].reshape(got.shape)
    numconv.conv(x, w, b, strides=strides, method="direct", out=out)
    assert calls == [filters % 16 == 0, False]
    monkeypatch.setattr(direct, "is_product", lambda spec: False)
    via_long = numconv.conv(x, w, b, strides=strides, method="direct")
    np.testing.assert_array_equal(got, via_long)
    np.testing.assert_array_equal(out, via_long)
    ref = ref_conv(x, w, b, strides=strides)
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max())


def test_long_kernel_non_finite_inputs_stay_local():
    x = np.ones((1, 20, 100, 40), np.float32)
    x[0, 10, 50, 1] = np.nan
    x[0, 3, 0, 0] = np.inf  # on the border: read through a patch
    y = numconv.conv2d(x, np.ones((3, 3, 40, 16), np.float32), padding="same", method="direct")[..., 5][0]
    nan = np.isnan(y)
    assert nan[9:12, 49:52].all() and nan.sum() == 9
    assert np.isposinf(y[2:5, 0:2]).all() and np.isinf(y).sum() == 6
    assert (y[15:19, 60:99] == 360).all()


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_long_kernel_writes_transposed_conv_phases_into_their_lattice(rank, monkeypatch):
    """A stride-2 transposed conv is one conv per stride phase, each writing every
    second output pixel per axis (``lattice``): on the long kernel in float32,
    against the float64 result (the tile kernel's), with bias and activation."""
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((2,) + (5, 6, 7)[3 - rank:] + (40,))
    w = rng.standard_normal((3,) * rank + (24, 40))
    b = rng.standard_normal(24)
    lattices = []
    monkeypatch.setattr(_adjoint, "PHASE_COST", 0.0)  # the phases, never the column form (small layer)
    monkeypatch.setattr(_adjoint, "_PLANS", {})
    monkeypatch.setattr(direct, "long_kernel", lambda *a: lattices.append(a[9]) or short.long_kernel(*a))
    kw = dict(strides=2, padding="same", activation="tanh")
    got = numconv.conv_transpose(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32),
                                 method="direct", **kw)
    assert len(lattices) == 2 ** rank and all(lat[3 + 3 - rank:6] == (2,) * rank for lat in lattices)
    np.testing.assert_allclose(got, numconv.conv_transpose(x, w, b, method="direct", **kw), rtol=5e-5, atol=5e-5)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
@pytest.mark.parametrize("kind, channels", [("short", 6), ("long", 48)])
def test_term_kernels_read_channels_first_input_as_it_lies(kind, channels, mode, monkeypatch):
    """A channels_first layer on a term kernel reads the user's (N, C, *spatial)
    array through element strides (no transposed copy; the short kernel pads a
    channels-first copy), grouped and strided, with the long kernel's border tiles
    through the patch: the channels-last result bit for bit."""
    from numconv import _ops

    rng = np.random.default_rng(len(mode) + channels)
    x = rng.standard_normal((2, 7, 9, channels)).astype(np.float32)
    w = rng.standard_normal((3, 3, channels // 2, 32)).astype(np.float32)
    kw = dict(groups=2, strides=(1, 2), padding="same", padding_mode=mode, method="direct")
    want = numconv.conv2d(x, w, **kw)
    spec = spec_of(np.moveaxis(x, -1, 1), w, data_format="channels_first", groups=2)
    assert direct.is_terms_channels_first(spec) and _kernel_ran(spec) == kind
    monkeypatch.setattr(_ops, "canonical_input", lambda *a: pytest.fail("the input was transposed"))
    got = numconv.conv2d(np.moveaxis(x, -1, 1), w, data_format="channels_first", **kw)
    assert np.array_equal(np.moveaxis(got, 1, -1), want)


def test_channels_first_in_place_reads_stop_at_256_terms():
    x = np.zeros((1, 32, 9, 9), np.float32)
    assert direct.is_terms_channels_first(spec_of(x[:, :28], np.zeros((3, 3, 28, 8), np.float32),
                                                  data_format="channels_first"))  # 252
    assert not direct.is_terms_channels_first(spec_of(x, np.zeros((3, 3, 32, 8), np.float32),
                                                      data_format="channels_first"))  # 288


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("variant", [1, 2, 3])
def test_tile_store_transposed_writes_filter_runs(dtype, variant):
    """``tile.tile_store_transposed``: a tile of pixels x filters stored as each
    filter's run of pixels (the channels-first result), plus the bias, for whole
    and partial tiles (fewer pixels, fewer filters), and nothing outside them."""
    from numconv._kernels.tile import acc_tile, at, row_fma, row_zero, tile_shape, tile_store_transposed, variant_tag

    @numba.njit
    def store(x, w, out, offset, pixels, count, step, b, has_bias, tag):
        acc = acc_tile(x, tag)
        rows = tile_shape(x, tag)[0]
        for p in range(rows):
            row_zero(acc, p, x, tag)
            row_fma(acc, p, at(x, p), w, 0, tag)
        tile_store_transposed(acc, pixels, out, offset, step, count, b, 0, has_bias, tag)

    tag = variant_tag(variant)
    rows, lanes = short.tile_shape(np.zeros(1, dtype), tag)
    z = 1 + 0.5j if np.dtype(dtype).kind == "c" else 1
    x = (np.arange(1, rows + 1) * z).astype(dtype)
    w = (np.arange(lanes) * 10 * np.conj(z)).astype(dtype)
    b = (np.arange(lanes) * 1000 + 7).astype(dtype)
    step = rows + 3
    for pixels in (rows, rows - 1, 1):
        for count in (lanes, lanes - 1, 1):
            for has_bias in (False, True):
                out = np.full(5 + lanes * step + 4, -1, dtype)
                store(x, w, out, 5, pixels, count, step, b, has_bias, tag)
                want = np.full_like(out, -1)
                for j in range(count):
                    want[5 + j * step:5 + j * step + pixels] = x[:pixels] * w[j] + (b[j] if has_bias else 0)
                assert np.array_equal(out, want), (pixels, count, has_bias)


@pytest.mark.parametrize("kind, channels, filters, dtype", [
    (kind, c, k, dt) for kind, c, k in (("short", 3, 12), ("short", 1, 16), ("long", 40, 24))
    for dt in (np.float32, np.float64, np.complex64) if not (kind == "long" and dt == np.float64)])
def test_term_kernels_write_channels_first_results(kind, channels, filters, dtype, monkeypatch):
    """A channels_first layer on a term kernel stores its tiles transposed into
    the (N, K, *spatial) result: no layout pass after the kernel, and the
    channels-last result bit for bit (bias, activation, partial tiles and filter
    blocks, ``out=``)."""
    from numconv import _ops

    rng = np.random.default_rng(channels + filters)
    x = rng.standard_normal((3, 5, 13, channels)).astype(dtype)
    w = rng.standard_normal((3, 2, channels, filters)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(x.shape).astype(dtype)
    act = None if np.dtype(dtype).kind == "c" else "relu"
    kw = dict(strides=(1, 1), padding="same", activation=act, method="direct")
    xcf = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    spec = spec_of(xcf, w, b, data_format="channels_first", padding="same")
    assert _kernel_ran(spec) == kind and direct.is_terms_channels_first(spec)  # (double precision: short only)
    want = np.moveaxis(numconv.conv2d(x, w, b, **kw), -1, 1)
    monkeypatch.setattr(_ops, "user_layout", lambda *a: pytest.fail("the result was laid out after the kernel"))
    got = numconv.conv2d(xcf, w, b, data_format="channels_first", **kw)
    assert got.flags.c_contiguous and np.array_equal(got, want)
    out = np.full(want.shape, np.nan, dtype)
    assert numconv.conv2d(xcf, w, b, data_format="channels_first", out=out, **kw) is out
    assert np.array_equal(out, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_packed_weights_match_numpy_in_a_reused_scratch_buffer(dtype):
    """``pack_weights`` (``conv.pack_kernel``) gives NumPy's blocked transpose for
    every groups / lanes / tail combination, zeros included, when the scratch buffer
    it lands in held NaN from an earlier use (a kernel that skipped the pad lanes
    would leave them there). Small kernels are packed serially
    (``conv.pack_kernel_serial``), large ones in parallel: both, by moving the
    threshold."""
    from numconv import _memory

    short_pack = direct.pack_kernel_serial
    rng = np.random.default_rng(11)
    w5 = rng.standard_normal((2, 3, 1, 6, 60)).astype(dtype)
    if np.dtype(dtype).kind == "c":
        w5 += 1j * rng.standard_normal(w5.shape)

    @_memory.calls_scratch
    def packed(groups, lanes):
        junk = _memory.scratch((1 << 16,), np.float64)
        junk.fill(np.nan)
        _memory.recycle(junk)
        return direct.pack_weights(w5, groups, lanes).copy()

    for groups, lanes, serial in itertools.product((1, 2, 3, 4, 5, 6, 12, 60), (8, 16, 32, 64), (True, False)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(direct, "PACK_SERIAL", w5.size if serial else w5.size - 1)
            serial_calls = []
            mp.setattr(direct, "pack_kernel_serial", lambda *a: serial_calls.append(1) or short_pack(*a))
            kg = 60 // groups
            nkb = -(-kg // lanes)
            ref = np.zeros((groups, nkb * lanes, 2, 3, 1, 6), dtype)
            ref[:, :kg] = w5.reshape(2, 3, 1, 6, groups, kg).transpose(4, 5, 0, 1, 2, 3)
            ref = ref.reshape(groups, nkb, lanes, 2, 3, 1, 6).transpose(0, 1, 3, 4, 5, 6, 2)
            np.testing.assert_array_equal(packed(groups, lanes), ref, err_msg=f"groups {groups}, lanes {lanes}")
            assert len(serial_calls) == serial


@pytest.mark.parametrize("shape,filters,groups", [((8, 7, 7, 96), 80, 1), ((3, 5, 6, 20), 24, 1), ((4, 9, 3), 3, 1),
                                                  ((2, 3, 4, 5, 40), 36, 2), ((6, 5, 300), 70, 1)])
def test_pointwise_layers_run_as_one_row_bit_for_bit(shape, filters, groups, monkeypatch):
    """A 1 x 1 layer at stride 1 runs as one row of all its pixels
    (``direct.flat_pointwise``): the result is bit for bit the row-by-row one, with
    bias and activation, and matches the reference."""
    rng = np.random.default_rng(21)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((1,) * (len(shape) - 2) + (shape[-1] // groups, filters)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    assert direct.flat_pointwise(spec_of(x, w, b, groups=groups)) is not None
    flat = numconv.conv(x, w, b, groups=groups, activation="relu", method="direct")
    monkeypatch.setattr(direct, "flat_pointwise", lambda spec: None)
    rows = numconv.conv(x, w, b, groups=groups, activation="relu", method="direct")
    np.testing.assert_array_equal(flat, rows)
    ref = np.maximum(ref_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), groups=groups), 0)
    np.testing.assert_allclose(flat, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def _misaligned_out(shape, dtype):
    """A C-contiguous ``out=`` of ``shape`` starting off a 64-byte line, inside a
    NaN-filled buffer, and a check that the buffer around it is still NaN."""
    size = int(np.prod(shape))
    buf = np.full(size + 16, np.nan, dtype)
    offset = next(i for i in range(1, 16) if (buf.ctypes.data + buf.itemsize * i) % 64)
    return (buf[offset:offset + size].reshape(shape),
            lambda: np.isnan(buf[:offset]).all() and np.isnan(buf[offset + size:]).all())


@pytest.mark.parametrize("kind, rank, width, channels, filters, groups, dtype", [
    ("short", 1, 300, 3, 16, 1, np.float32),    # 16-lane tile: 256-pixel stage, flushed twice a row
    ("short", 2, 70, 3, 12, 1, np.float64),     # double precision: blocks of 8 + 4 filters, 512-pixel stage
    ("long", 1, 200, 40, 64, 1, np.float32),    # 4 x 64 tile: 64-pixel stage, a partial last flush
    ("long", 2, 9, 48, 40, 2, np.float32),      # grouped, rows shorter than the tile: runs across row ends
    ("long", 3, 13, 16, 33, 1, np.float32),
])
def test_term_kernels_stage_large_channels_first_results(kind, rank, width, channels, filters, groups, dtype,
                                                         monkeypatch):
    """Channels-first results of ``CF_STREAM_BYTES`` (0 here) are staged per task
    and written a filter's run at a time, whole lines around the caches
    (``short.flush_stage``): the channels-last result bit for bit, stages flushed
    mid-run and at a run's end, with bias, into a fresh result and into a
    misaligned ``out=`` (plain stores up to the first whole line)."""
    monkeypatch.setattr(direct, "CF_STREAM_BYTES", 0)
    rng = np.random.default_rng(width + channels)
    spatial = (3,) * (rank - 1) + (width,)
    ks = (2,) * (rank - 1) + (3,)
    x = rng.standard_normal((2,) + spatial + (channels,)).astype(dtype)
    w = rng.standard_normal(ks + (channels // groups, filters)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    kw = dict(groups=groups, padding="same", method="direct")
    want = np.moveaxis(numconv.conv(x, w, b, **kw), -1, 1)
    xcf = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    spec = spec_of(xcf, w, b, data_format="channels_first", **kw)
    assert _kernel_ran(spec) == kind and direct.is_terms_channels_first(spec)
    staged = []
    name = f"{kind}_kernel"
    real = getattr(short, name)
    monkeypatch.setattr(direct, name, lambda *a: staged.append(a[-2]) or real(*a))
    got = numconv.conv(xcf, w, b, data_format="channels_first", **kw)
    assert staged == [(0,)] and got.flags.c_contiguous and np.array_equal(got, want)
    out, untouched_around = _misaligned_out(want.shape, dtype)
    assert numconv.conv(xcf, w, b, data_format="channels_first", out=out, **kw) is out
    assert np.array_equal(out, want) and untouched_around()
    monkeypatch.setattr(direct, "CF_STREAM_BYTES", 1 << 60)  # in place: the same bits
    assert np.array_equal(numconv.conv(xcf, w, b, data_format="channels_first", **kw), want) and staged[-1] == ()


@pytest.mark.parametrize("spatial, channels, filters, batch", [
    ((5, 7), 3, 5, 2),           # 35 pixels: a whole run of 32 and a partial one; 5 filters: a partial tile
    ((28, 28), 70, 9, 3),        # 784 pixels, 24 runs and a half; 70 terms: a partial flush
    ((20,), 600, 12, 1),         # 1-D, fewer pixels than a run; 600 terms: widened to double at 512
    ((2, 4, 8), 16, 40, 2),      # 3-D, two whole runs
    ((16, 64), 8, 16, 4),        # several chunks per image
])
def test_pointwise_channels_first_product(spatial, channels, filters, batch, monkeypatch):
    """Channels-first 1 x 1 layers run ``product_cf_kernel`` on the input and
    result as they lie: the channels-last result bit for bit, with bias and a
    fused or deferred activation, into a misaligned ``out=``, and with its whole
    runs streamed around the caches (``CF_STREAM_BYTES`` 0 here: where the planes
    fill whole lines; the partial runs are stored as usual); input and weights
    untouched."""
    rng = np.random.default_rng(channels * filters)
    x = rng.standard_normal((batch,) + spatial + (channels,)).astype(np.float32)
    w = rng.standard_normal((1,) * len(spatial) + (channels, filters)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    xcf = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    keep, wkeep = xcf.copy(), w.copy()
    calls = []
    monkeypatch.setattr(direct, "product_cf_kernel", lambda *a: calls.append(a[-2]) or short.product_cf_kernel(*a))
    for activation in (None, "relu", "tanh"):
        kw = dict(activation=activation, method="direct")
        want = np.moveaxis(numconv.conv(x, w, b, **kw), -1, 1)
        spec = spec_of(xcf, w, b, data_format="channels_first", **kw)
        assert direct.is_product_channels_first(spec) and direct.is_terms_channels_first(spec)
        got = numconv.conv(xcf, w, b, data_format="channels_first", **kw)
        assert calls[-1] == () and np.array_equal(got, want), activation
        ref = np.einsum("nc...,ck->nk...", xcf.astype(np.float64), w.reshape(channels, filters).astype(np.float64))
        ref += b.astype(np.float64).reshape((filters,) + (1,) * len(spatial))
        ref = {None: ref, "relu": np.maximum(ref, 0), "tanh": np.tanh(ref)}[activation]
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    out, untouched_around = _misaligned_out(want.shape, np.float32)
    assert numconv.conv(xcf, w, b, data_format="channels_first", out=out, method="direct") is out
    want = np.moveaxis(numconv.conv(x, w, b, method="direct"), -1, 1)
    assert np.array_equal(out, want) and untouched_around()
    monkeypatch.setattr(direct, "CF_STREAM_BYTES", 0)
    got = numconv.conv(xcf, w, b, data_format="channels_first", method="direct")
    pixels = int(np.prod(spatial))
    assert calls[-1] == ((0,) if pixels * 4 % 64 == 0 else ()) and np.array_equal(got, want)
    np.testing.assert_array_equal(xcf, keep)
    np.testing.assert_array_equal(w, wkeep)
