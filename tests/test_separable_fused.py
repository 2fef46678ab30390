"""The fused separable kernel (``_kernels/separable.py``): separable layers whose
two stages it takes run in one pass, with the bits of the two stages run apart,
the float64 reference's values, any thread count, ``out=`` and both data
formats; layers outside its scope run the two stages. The channels-first fused
kernel (``separable_cf_kernel``) likewise, against the reference and the two
stages."""
import numba
import numpy as np
import pytest

import numconv
from numconv._kernels import separable
from numconv._paths import direct
from reference import ref_conv, ref_depthwise_kernel


def _cases():
    """40 seeded layers the fused kernel takes: ranks 1-3, channels and filters
    around the tiles' widths with tails (filters that its 4 x 64 tile takes),
    widths below, at and past a tile, strides, dilation along D and H, every
    zero padding; 1, 3 or 5 taps along W (each tap count and stride along W is a
    specialisation to compile, ~12 s on CI: 5 taps only at stride 1, stride 2
    along W with 1 and 3)."""
    rng = np.random.default_rng(77)
    cases = []
    for i in range(40):
        r = (1, 2, 3)[i % 3]
        ks = tuple(int(v) for v in rng.choice([1, 3] if r == 3 else [1, 3, 5], r))  # (taps along W: a specialisation)
        width = int(rng.choice([1, 3, 8, 9, 17, 40]))
        spatial = tuple(int(v) for v in rng.integers(3, 7, r - 1)) + (width + 2 * ks[-1],)
        cases.append(dict(
            batch=int(rng.integers(1, 4)), spatial=spatial, ks=ks,
            C=int(rng.choice([3, 8, 16, 24, 33, 64, 128, 200])), K=int(rng.choice([33, 64, 100, 128])),
            strides=_strides(rng.integers(1, 3, r), ks),
            dilation=tuple(int(v) for v in rng.integers(1, 3, r - 1)) + (1,),
            padding=str(rng.choice(["valid", "same", "causal" if r == 1 else "full"])),
            bias=bool(i % 3), activation=(None, "relu", "tanh", "gelu")[i % 4],
            data_format="channels_first" if i % 5 == 0 else "channels_last", seed=i))
    return cases


def _strides(drawn, ks):
    """The drawn strides, stride 1 along W under 5 taps."""
    strides = tuple(int(v) for v in drawn)
    return strides[:-1] + (1,) if ks[-1] == 5 else strides


CASES = _cases()


def _args(c):
    rng = np.random.default_rng(c["seed"])
    cl = (c["batch"],) + c["spatial"] + (c["C"],)
    x = rng.standard_normal(cl).astype(np.float32)
    if c["data_format"] == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    dk = rng.standard_normal(c["ks"] + (c["C"], 1)).astype(np.float32)
    pk = rng.standard_normal((1,) * len(c["ks"]) + (c["C"], c["K"])).astype(np.float32)
    b = rng.standard_normal(c["K"]).astype(np.float32) if c["bias"] else None
    kw = dict(strides=c["strides"], padding=c["padding"], dilation_rate=c["dilation"], activation=c["activation"],
              data_format=c["data_format"])
    return x, dk, pk, b, kw


def _separable_or_skip(x, dk, pk, b, kw):
    """The layer's result; a skip where the drawn window leaves no output."""
    try:
        return numconv.separable_conv(x, dk, pk, b, **kw)
    except ValueError as e:
        assert "empty" in str(e) or "larger" in str(e) or "smaller" in str(e), e
        pytest.skip("no output for this window")


def _fused_calls(monkeypatch):
    """The fused kernel's calls, as whether each streamed its results."""
    calls = []
    monkeypatch.setattr(direct, "separable_kernel",
                        lambda *a: calls.append(len(a[11]) > 0) or separable.separable_kernel(*a))
    return calls


def _cf_calls(monkeypatch):
    """The channels-first fused kernel's calls, as their rows per task."""
    calls = []
    monkeypatch.setattr(direct, "separable_cf_kernel",
                        lambda *a: calls.append(a[11]) or separable.separable_cf_kernel(*a))
    return calls


@pytest.mark.parametrize("c", CASES, ids=lambda c: f"r{len(c['ks'])}-k{c['ks']}-C{c['C']}-K{c['K']}-s{c['seed']}")
def test_fused_is_the_two_stages_bit_for_bit(c, monkeypatch):
    x, dk, pk, b, kw = _args(c)
    keep = [a.copy() for a in (x, dk, pk)]
    calls = _fused_calls(monkeypatch)
    got = _separable_or_skip(x, dk, pk, b, kw)
    # (channels_first: unless the depthwise stage runs channels-first in place)
    assert calls or c["data_format"] == "channels_first", "the fused kernel did not run"
    assert calls in ([], [False])
    for a, k in zip((x, dk, pk), keep):
        np.testing.assert_array_equal(a, k)
    monkeypatch.setattr(direct, "fuses_separable", lambda spec, pspec: False)
    apart = numconv.separable_conv(x, dk, pk, b, **kw)
    assert len(calls) <= 1
    np.testing.assert_array_equal(got, apart)
    fmt = c["data_format"]
    x64 = x.astype(np.float64)
    mid = ref_conv(x64, ref_depthwise_kernel(dk.astype(np.float64)), groups=c["C"], strides=c["strides"],
                   padding=c["padding"], dilation_rate=c["dilation"], data_format=fmt)
    ref = ref_conv(mid, pk.astype(np.float64), None if b is None else b.astype(np.float64), data_format=fmt,
                   activation=c["activation"])
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(ref).max()))


def test_sweep_reaches_the_edges():
    """Guard against the sweep drifting: tails of channels and filters, widths
    within one tile, strides along W, dilation, every rank and both formats."""
    assert {c["C"] % 16 != 0 for c in CASES} == {True, False}
    assert {c["K"] % 16 != 0 for c in CASES} == {True, False}
    assert {c["strides"][-1] for c in CASES} == {1, 2}
    assert any(max(c["dilation"]) > 1 for c in CASES)
    assert {len(c["ks"]) for c in CASES} == {1, 2, 3}
    assert {c["data_format"] for c in CASES} == {"channels_last", "channels_first"}
    assert {len(c["ks"]) for c in STREAMED} == {1, 2, 3} and {c["strides"][-1] for c in STREAMED} == {1, 2}
    assert any(max(c["dilation"]) > 1 for c in STREAMED) and any(c["batch"] > 1 for c in STREAMED)


#: the cases with 3 taps along W (two more specialisations, not six) whose
#: filters fill whole cache lines: run streamed as well
STREAMED = [c for c in CASES if c["ks"][-1] == 3 and c["K"] % 16 == 0 and c["data_format"] == "channels_last"]


@pytest.mark.parametrize("c", STREAMED, ids=lambda c: f"r{len(c['ks'])}-s{c['seed']}")
def test_streamed_is_the_plain_bits(c, monkeypatch):
    """Each such layer without its activation (which keeps results in the caches
    for its own pass) as large layers run (``STREAM_BYTES`` 0): results streamed
    around the caches and the next task's input rows fetched ahead; the bits of
    plain stores, the reference's values."""
    x, dk, pk, b, kw = _args(c)
    kw["activation"] = None
    calls = _fused_calls(monkeypatch)
    plain = numconv.separable_conv(x, dk, pk, b, **kw)
    monkeypatch.setattr(direct, "STREAM_BYTES", 0)
    streamed = numconv.separable_conv(x, dk, pk, b, **kw)
    assert calls == [False, True]
    np.testing.assert_array_equal(streamed, plain)
    x64 = x.astype(np.float64)
    mid = ref_conv(x64, ref_depthwise_kernel(dk.astype(np.float64)), groups=c["C"], strides=c["strides"],
                   padding=c["padding"], dilation_rate=c["dilation"])
    ref = ref_conv(mid, pk.astype(np.float64), None if b is None else b.astype(np.float64))
    np.testing.assert_allclose(streamed, ref, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(ref).max()))


def test_large_layers_stream_and_fetch_ahead(monkeypatch):
    """A layer whose input and result take ``STREAM_BYTES`` streams its results
    (numconv's own result is aligned); a caller's misaligned ``out=`` takes plain
    stores in the same kernel, as does a layer with an activation. The same bits
    every way, and the reference's values."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 64, 64, 256)).astype(np.float32)
    assert 2 * x.nbytes >= direct.STREAM_BYTES
    dk = rng.standard_normal((3, 3, 256, 1)).astype(np.float32)
    pk = rng.standard_normal((1, 1, 256, 256)).astype(np.float32)
    calls = _fused_calls(monkeypatch)
    got = numconv.separable_conv(x, dk, pk, padding="same")
    buf = np.empty(x.size + 16, np.float32)
    offset = next(i for i in range(1, 16) if (buf.ctypes.data + 4 * i) % 64)
    out = buf[offset:offset + x.size].reshape(x.shape)
    numconv.separable_conv(x, dk, pk, padding="same", out=out)
    np.testing.assert_array_equal(out, got)
    relu = numconv.separable_conv(x, dk, pk, padding="same", activation="relu")  # (its pass reads the results back)
    assert calls == [True, False, False]
    np.testing.assert_array_equal(relu, np.maximum(got, 0))
    x64 = x[:, :9].astype(np.float64)  # (rows 0-7 of the result read rows 0-8)
    mid = ref_conv(x64, ref_depthwise_kernel(dk.astype(np.float64)), groups=256, padding="same")
    ref = ref_conv(mid, pk.astype(np.float64))[:, :8]
    np.testing.assert_allclose(got[:, :8], ref, rtol=2e-5, atol=2e-5 * np.abs(ref).max())


def test_fused_results_do_not_depend_on_threads_and_fill_out(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 11, 37, 48)).astype(np.float32)
    dk = rng.standard_normal((3, 3, 48, 1)).astype(np.float32)
    pk = rng.standard_normal((1, 1, 48, 64)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    calls = _fused_calls(monkeypatch)
    before = numba.get_num_threads()
    try:
        numconv.set_num_threads(1)
        one = numconv.separable_conv(x, dk, pk, b, padding="same", activation="relu")
        numconv.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = numconv.separable_conv(x, dk, pk, b, padding="same", activation="relu")
    finally:
        numconv.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    out = np.full(two.shape, np.nan, np.float32)
    assert numconv.separable_conv(x, dk, pk, b, padding="same", activation="relu", out=out) is out
    np.testing.assert_array_equal(out, two)
    strided = np.full((3, 11, 37, 128), np.nan, np.float32)[..., ::2]  # not C-contiguous: filled by a copy
    assert numconv.separable_conv(x, dk, pk, b, padding="same", activation="relu", out=strided) is strided
    np.testing.assert_array_equal(strided, two)
    assert len(calls) == 4


#: layers each fused kernel leaves to the two stages: per data format, what differs from its scope
OUTSIDE = [("channels_last", c) for c in (
    dict(dtype=np.float64), dict(multiplier=2), dict(dilation_rate=(1, 2)), dict(padding_mode="reflect"),
    dict(pk_dtype=np.float64), dict(method="fft"), dict(filters=70))] + [("channels_first", c) for c in (
        dict(dtype=np.float64), dict(multiplier=2), dict(padding_mode="reflect"), dict(strides=(1, 2)),
        dict(pk_dtype=np.float64), dict(method="fft"))]


@pytest.mark.parametrize("data_format, change", OUTSIDE)
def test_layers_outside_its_scope_run_the_two_stages(data_format, change, monkeypatch):
    """float64, a depth multiplier, dilation along W (channels_last), a padding
    mode, a float64 pointwise kernel (the second stage then runs in float64),
    another method, filters the 8 x 32 tile fills better (70; channels_last) and
    a stride along W (channels_first) are not this data format's fused kernel's,
    and give the reference's values."""
    rng = np.random.default_rng(4)
    dtype = change.get("dtype", np.float32)
    M = change.get("multiplier", 1)
    x = rng.standard_normal((2, 9, 12, 16)).astype(dtype)
    dk = rng.standard_normal((3, 3, 16, M)).astype(dtype)
    pk = rng.standard_normal((1, 1, 16 * M, change.get("filters", 64))).astype(change.get("pk_dtype", dtype))
    kw = {k: v for k, v in change.items() if k in ("dilation_rate", "padding_mode", "method", "strides")}
    calls = (_fused_calls(monkeypatch), _cf_calls(monkeypatch))
    xin = np.ascontiguousarray(np.moveaxis(x, -1, 1)) if data_format == "channels_first" else x
    got = numconv.separable_conv(xin, dk, pk, padding="same", data_format=data_format, **kw)
    # (channels_first outside the channels-first kernel: the channels-last path, which may fuse)
    assert calls[1] == [] and (calls[0] == [] or data_format == "channels_first")
    if data_format == "channels_first":
        got = np.moveaxis(got, 1, -1)
    mid = ref_conv(x.astype(np.float64), ref_depthwise_kernel(dk.astype(np.float64)), groups=16, padding="same",
                   strides=kw.get("strides", 1), dilation_rate=kw.get("dilation_rate", 1),
                   padding_mode=kw.get("padding_mode", "zeros"))
    ref = ref_conv(mid, pk.astype(np.float64))
    tol = 1e-10 if dtype == np.float64 else 2e-5  # (a float64 pointwise stage reads the float32 depthwise result)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
def test_a_double_precision_pointwise_kernel_or_bias_makes_both_stages_double(data_format, method):
    """float32 input and depthwise kernel with a float64 pointwise kernel or bias:
    the result is float64 (NumPy's promotion) and float64-accurate, the depthwise
    stage computed in double precision too (it ran in float32: 3e-8 error)."""
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 21, 13, 6)).astype(np.float32)
    dk = rng.standard_normal((3, 3, 6, 2)).astype(np.float32)
    for pk, b in [(rng.standard_normal((1, 1, 12, 5)).astype(np.float32), rng.standard_normal(5)),
                  (rng.standard_normal((1, 1, 12, 5)), None)]:
        ref = ref_conv(ref_conv(x, ref_depthwise_kernel(dk.astype(np.float64)), padding="same", groups=6), pk, b)
        xin = np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if data_format == "channels_first" else x
        got = numconv.separable_conv(xin, dk, pk, b, padding="same", data_format=data_format, method=method)
        if data_format == "channels_first":
            got = got.transpose(0, 2, 3, 1)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


# ------------------------------------------------------------ channels_first

def _cf_cases():
    """24 seeded channels_first layers the channels-first kernel takes: ranks 1-3,
    channels across its 64-term partial sums and past 512 (the double-precision
    level), filters around its 4-filter tile, pixels per task around its 64-pixel
    vectors, outputs with fewer rows than a tile (1-D) and rows left over, strides
    and dilation along D and H, dilation along W, every zero padding."""
    rng = np.random.default_rng(78)
    cases = []
    for i in range(24):
        r = (1, 2, 3)[i % 3]
        ks = tuple(int(v) for v in rng.choice([1, 3, 5] if r < 3 else [1, 3], r))
        spatial = tuple(int(v) for v in rng.integers(2, 14, r - 1)) + (int(rng.choice([1, 5, 63, 64, 65, 130])),)
        spatial = tuple(s + 2 * k for s, k in zip(spatial, ks))
        cases.append(dict(
            batch=int(rng.integers(1, 4)), spatial=spatial, ks=ks,
            C=int(rng.choice([2, 3, 16, 64, 65, 130])), K=int(rng.choice([1, 5, 8, 64])),
            strides=tuple(int(v) for v in rng.integers(1, 3, r - 1)) + (1,),
            dilation=tuple(int(v) for v in rng.integers(1, 3, r)),
            padding=str(rng.choice(["valid", "same", "causal" if r == 1 else "full"])),
            bias=bool(i % 3), activation=(None, "relu", "gelu", "softmax")[i % 4],
            data_format="channels_first", seed=100 + i))
    cases[7]["C"] = 600
    return cases


CF_CASES = _cf_cases()


@pytest.mark.parametrize("c", CF_CASES, ids=lambda c: f"r{len(c['ks'])}-k{c['ks']}-C{c['C']}-K{c['K']}-s{c['seed']}")
def test_channels_first_fused_gives_the_reference_and_the_two_stages(c, monkeypatch):
    """Channels-first layers run in ``separable_cf_kernel`` (the depthwise rows in
    its buffer, then the 1 x 1 stage with filters as rows and pixels as lanes),
    also with small blocks of rows (many tasks per thread, a short last block):
    the float64 reference's values, the values of the two stages run apart, and
    the inputs untouched."""
    x, dk, pk, b, kw = _args(c)
    keep = [a.copy() for a in (x, dk, pk)]
    calls = _cf_calls(monkeypatch)
    got = _separable_or_skip(x, dk, pk, b, kw)
    assert len(calls) == 1, "the channels-first fused kernel did not run"
    monkeypatch.setattr(direct, "CF_FUSED_BYTES", 1)  # one tile of rows per task
    small = numconv.separable_conv(x, dk, pk, b, **kw)
    assert calls[1] == direct.VARIANTS[direct.NARROW_VARIANT][0]
    np.testing.assert_array_equal(small, got)  # (blocks of rows change no sum)
    for a, k in zip((x, dk, pk), keep):
        np.testing.assert_array_equal(a, k)
    x64 = x.astype(np.float64)
    mid = ref_conv(x64, ref_depthwise_kernel(dk.astype(np.float64)), groups=c["C"], strides=c["strides"],
                   padding=c["padding"], dilation_rate=c["dilation"], data_format="channels_first")
    ref = ref_conv(mid, pk.astype(np.float64), None if b is None else b.astype(np.float64),
                   data_format="channels_first", activation=None if c["activation"] == "softmax" else c["activation"])
    if c["activation"] == "softmax":  # Keras: over the result's last axis, as delivered
        ref = np.exp(ref - ref.max(axis=-1, keepdims=True))
        ref /= ref.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(ref).max()))
    monkeypatch.setattr(direct, "fuses_separable_channels_first", lambda spec, pspec: False)
    apart = numconv.separable_conv(x, dk, pk, b, **kw)
    assert len(calls) == 2
    np.testing.assert_allclose(got, apart, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(apart).max()))


def test_channels_first_sweep_reaches_the_edges():
    assert {len(c["ks"]) for c in CF_CASES} == {1, 2, 3}
    assert {c["C"] > 512 for c in CF_CASES} == {True, False} and any(64 < c["C"] <= 512 for c in CF_CASES)
    assert {c["K"] % 4 != 0 for c in CF_CASES} == {True, False}
    assert any(max(c["strides"]) > 1 for c in CF_CASES) and any(c["dilation"][-1] > 1 for c in CF_CASES)
    assert {c["activation"] for c in CF_CASES} == {None, "relu", "gelu", "softmax"}


def test_channels_first_fused_threads_out_and_callables(monkeypatch):
    """Any thread count gives the same bits; ``out=`` is filled (C-contiguous: in
    place; strided: by a copy); a user's activation sees the channels_first result."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 48, 37, 29)).astype(np.float32)
    dk = rng.standard_normal((3, 3, 48, 1)).astype(np.float32)
    pk = rng.standard_normal((1, 1, 48, 70)).astype(np.float32)
    b = rng.standard_normal(70).astype(np.float32)
    kw = dict(padding="same", data_format="channels_first", activation="relu")
    calls = _cf_calls(monkeypatch)
    before = numba.get_num_threads()
    try:
        numconv.set_num_threads(1)
        one = numconv.separable_conv(x, dk, pk, b, **kw)
        numconv.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = numconv.separable_conv(x, dk, pk, b, **kw)
    finally:
        numconv.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    out = np.full(two.shape, np.nan, np.float32)
    assert numconv.separable_conv(x, dk, pk, b, out=out, **kw) is out
    np.testing.assert_array_equal(out, two)
    strided = np.full((3, 140, 37, 29), np.nan, np.float32)[:, ::2]
    assert numconv.separable_conv(x, dk, pk, b, out=strided, **kw) is strided
    np.testing.assert_array_equal(strided, two)
    seen = []
    y = numconv.separable_conv(x, dk, pk, b, padding="same", data_format="channels_first",
                               activation=lambda v: seen.append(v.shape) or 2 * v)
    assert seen == [(3, 70, 37, 29)]
    np.testing.assert_array_equal(np.maximum(y / 2, 0), two)
    assert len(calls) == 5
