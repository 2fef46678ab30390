"""The Winograd F(2x2, 3x3) path and the F(3x3, 2x2) kernel gradient: results
against the float64 reference over their whole argument space, invariance to
threads and task splits, accuracy, non-finite inputs and the fallback for
convolutions they do not compute (their vector code: ``test_kernel_quality.py``)."""
import numba
import numpy as np
import pytest

import numconv
from numconv._kernels import winograd as wk
from numconv._kernels.tile import VARIANTS, choose_variant, variant_lanes, variant_tag
from numconv._paths import winograd as wpath
from reference import ref_conv, ref_conv_transpose, ref_gradient, ref_kernel_grad


def _cases():
    rng = np.random.default_rng(20261123)
    cases = []
    for i in range(48):
        rank = 2 if i % 3 else 3
        groups = int(rng.choice([1, 1, 2, 4]))
        cg = int(rng.choice([1, 3, 16, 33, 70]))  # 70 * kd > 64 terms: float32 flushes to double
        kg = int(rng.choice([1, 7, 16, 33, 64, 70]))  # 70 > 64 lanes: two filter blocks
        dil = [1, 1, 2, 3, (1, 2)][int(rng.integers(5))] if rank == 2 else int(rng.choice([1, 2]))
        mode = str(rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"]))
        padding = str(rng.choice(["same", "valid", "explicit"]))
        spatial = tuple(int(v) for v in rng.integers(1, 12, rank))
        kd = int(rng.integers(1, 4))
        cases.append(dict(
            rank=rank, groups=groups, cg=cg, kg=kg, dilation=dil, mode=mode, padding=padding,
            spatial=spatial, kd=kd, batch=int(rng.integers(1, 3)), dtype=[np.float32, np.float64][i % 2],
            bias=bool(i % 4), activation=[None, "relu", "tanh"][i % 3],
            data_format="channels_first" if i % 5 == 0 else "channels_last",
            depth_stride=int(rng.choice([1, 2])), seed=i))
    return cases


def _case_id(c):
    return "r{rank}-g{groups}-c{cg}-k{kg}-{mode}-{padding}-{seed}".format(**c)


def _arrays(c):
    rng = np.random.default_rng(c["seed"])
    ks = (3, 3) if c["rank"] == 2 else (c["kd"], 3, 3)
    dil = np.broadcast_to(c["dilation"], (c["rank"],))
    # big enough for the window (and for reflect's pad < length)
    spatial = tuple(max(s, d * (k - 1) + 2) for s, k, d in zip(c["spatial"], ks, dil))
    C, K = c["cg"] * c["groups"], c["kg"] * c["groups"]
    shape = (c["batch"], C) + spatial if c["data_format"] == "channels_first" else (c["batch"],) + spatial + (C,)
    x = rng.standard_normal(shape).astype(c["dtype"])
    w = (rng.standard_normal(ks + (c["cg"], K)) / np.sqrt(9 * c["cg"])).astype(c["dtype"])
    b = rng.standard_normal(K).astype(c["dtype"]) if c["bias"] else None
    if c["padding"] == "explicit":
        padding = tuple((int(d), int(d) + 1) if i % 2 else (0, int(d)) for i, d in enumerate(dil))
    else:
        padding = c["padding"]
    if c["mode"] != "zeros" and padding == "valid":
        padding = "same"
    strides = 1 if c["rank"] == 2 else (c["depth_stride"], 1, 1)
    kw = dict(strides=strides, padding=padding, dilation_rate=c["dilation"], groups=c["groups"],
              data_format=c["data_format"], padding_mode=c["mode"], activation=c["activation"])
    return x, w, b, kw


def _assert_close_to_reference(got, ref, dtype):
    """``got`` has ``dtype`` and ``ref``'s shape, within 1e-5 (float32) or 1e-12 of
    ``ref``'s scale."""
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert got.dtype == dtype and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("c", _cases(), ids=_case_id)
def test_winograd_matches_reference(c):
    x, w, b, kw = _arrays(c)
    args = (x, w) if b is None else (x, w, b)
    spec = numconv._spec.conv_spec("conv", *args, *([None] if b is None else []), kw["strides"], kw["padding"],
                                   kw["dilation_rate"], kw["groups"], kw["data_format"], kw["padding_mode"],
                                   kw["activation"], "winograd", numconv._dispatch.METHODS)[0]
    assert wpath.applies(spec) == (c["cg"] > 1 or c["groups"] == 1 or c["kg"] > 8)
    got = numconv.conv(x, w, b, method="winograd", **kw)
    ref = ref_conv(x, w, b, **kw)
    _assert_close_to_reference(got, ref, c["dtype"])


def test_dispatcher_runs_winograd_on_a_resnet_layer_and_matches():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 40, 38, 64)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 64, 64)) / 24).astype(np.float32)
    assert numconv.choose_conv_method(x, w, padding="same") == "winograd"
    got = numconv.conv2d(x, w, padding="same")
    np.testing.assert_allclose(got, ref_conv(x, w, padding="same"), rtol=1e-5, atol=1e-5)


def _kernel_call(x5, up, out, run, threads, variant, scheme=wk.FORWARD):
    wk.winograd_kernel(x5, up, np.zeros(1, x5.dtype), False, out, (1, 1, 1), (1, 1, 1), (0, 1, 1), 0, run, threads, 0,
                       variant_tag(variant), scheme)
    return out.copy()


def test_results_do_not_depend_on_threads_or_task_runs():
    rng = np.random.default_rng(3)
    x5 = rng.standard_normal((3, 1, 13, 15, 70)).astype(np.float32)  # 70 channels: flushes
    w5 = rng.standard_normal((1, 3, 3, 70, 40)).astype(np.float32)
    variant = choose_variant(40, np.float32)
    up = wk.transform_weights(w5, 1, variant_lanes(variant, np.float32), np.float32)
    out = np.empty((3, 1, 13, 15, 40), np.float32)
    rows = VARIANTS[variant][0]
    first = _kernel_call(x5, up, out, rows, 1, variant)
    for run, threads in [(rows, 2), (2 * rows, 1), (3 * rows, 2), (16 * rows, 2)]:
        assert np.array_equal(_kernel_call(x5, up, out, run, threads, variant), first), (run, threads)
    x = x5[:, 0]
    w = w5[0]
    before = numba.get_num_threads()
    try:
        numconv.set_num_threads(1)
        one = numconv.conv2d(x, w, padding="same", method="winograd")
        numconv.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = numconv.conv2d(x, w, padding="same", method="winograd")
    finally:
        numconv.set_num_threads(before)
    assert np.array_equal(one, many)
    assert np.array_equal(one, first[:, 0])


def test_weight_transform_is_g_w_gt_in_float64():
    """U = G g G^T in float64, rounded once, zeros past each group's filters even
    in a scratch buffer that held NaN from an earlier use."""
    from numconv import _memory

    rng = np.random.default_rng(4)
    w5 = rng.standard_normal((2, 3, 3, 5, 12)).astype(np.float32)

    @_memory.calls_scratch
    def transform():
        junk = _memory.scratch((1 << 14,), np.float64)
        junk.fill(np.nan)
        _memory.recycle(junk)
        return wk.transform_weights(w5, 2, 16, np.float32).copy()  # 2 groups of 6 filters, 16 lanes

    up = transform()
    g = np.array(wk.G)
    ref = np.einsum("ai,zijck,bj->zabck", g, w5.astype(np.float64), g).reshape(2, 16, 5, 2, 6)
    assert up.shape == (2, 1, 16, 2, 5, 16)
    for grp in range(2):
        got = up[grp, 0][..., :6].transpose(1, 0, 2, 3)  # (kd, xi, c, k)
        np.testing.assert_array_equal(got, ref[:, :, :, grp].astype(np.float32))
        assert not up[grp, 0][..., 6:].any()


def test_float32_error_on_a_long_reduction():
    rng = np.random.default_rng(7)
    x = rng.random((1, 10, 10, 512)).astype(np.float32)  # positive data: no cancellation
    w = rng.random((3, 3, 512, 16)).astype(np.float32)
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64), padding="same")
    err = np.abs(numconv.conv2d(x, w, padding="same", method="winograd") - ref).max() / np.abs(ref).max()
    assert err < 1e-6, err


def test_float32_error_at_most_twice_torchs_on_the_resnet_layer():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 56, 56, 64)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 64, 64)) * np.sqrt(2 / 576)).astype(np.float32)
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64), padding="same")
    err = np.abs(numconv.conv2d(x, w, padding="same", method="winograd") - ref).max() / np.abs(ref).max()
    with torch.no_grad():
        yt = torch.nn.functional.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2),
                                        torch.from_numpy(w).permute(3, 2, 0, 1), padding=1)
    terr = np.abs(yt.permute(0, 2, 3, 1).numpy() - ref).max() / np.abs(ref).max()
    assert err <= 2 * terr, (err, terr)


def test_non_finite_inputs_stay_within_their_tiles():
    x = np.zeros((1, 12, 12, 32), np.float32)
    x[0, 5, 6, 3] = np.nan
    x[0, 1, 1, 0] = np.inf
    w = np.ones((3, 3, 32, 32), np.float32)
    got = numconv.conv2d(x, w, padding="same", method="winograd")
    direct = numconv.conv2d(x, w, padding="same", method="direct")
    bad = ~np.isfinite(got[0, ..., 0])
    # each bad input reaches at most the 2 x 2 tiles whose 4 x 4 patch holds it (rows/cols within 3)
    rows, cols = np.nonzero(bad)
    near = ((np.abs(rows - 5) <= 3) & (np.abs(cols - 6) <= 3)) | ((rows <= 4) & (cols <= 4))
    assert near.all()
    assert (~np.isfinite(direct[0, ..., 0]) <= bad).all()  # every non-finite direct output is non-finite too
    assert np.isfinite(got[0, 10:, :, 0]).all()


@pytest.mark.parametrize("kw, w_shape", [
    (dict(strides=2, padding="same"), (3, 3, 8, 8)),
    (dict(padding="same"), (5, 5, 8, 8)),
    (dict(padding="same"), (3, 1, 8, 8)),
])
def test_other_convolutions_run_the_direct_kernel(kw, w_shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 11, 9, 8)).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    assert np.array_equal(numconv.conv2d(x, w, method="winograd", **kw), numconv.conv2d(x, w, method="direct", **kw))
    xc = (x + 1j * x[..., ::-1]).astype(np.complex64)
    wc = np.ones((3, 3, 8, 8), np.complex64)
    assert np.array_equal(numconv.conv2d(xc, wc, method="winograd"), numconv.conv2d(xc, wc, method="direct"))


def test_inputs_are_not_modified():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 9, 9, 20)).astype(np.float32)
    w = rng.standard_normal((3, 3, 20, 24)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    copies = [a.copy() for a in (x, w, b)]
    numconv.conv2d(x, w, b, padding="same", method="winograd", activation="relu")
    for a, c in zip((x, w, b), copies):
        assert np.array_equal(a, c)


_CF_CASES = [  # (batch, C, K, H, W, dilation, padding, mode, groups, dtype, bias, activation)
    (2, 16, 16, 9, 11, 1, "same", "zeros", 1, np.float32, True, None),
    (1, 32, 48, 14, 14, 1, "valid", "zeros", 1, np.float32, False, "relu"),  # 48 filters: two blocks of lanes
    (2, 24, 40, 7, 30, 2, "same", "reflect", 1, np.float32, True, "tanh"),  # tanh: deferred, after the kernel
    (1, 16, 16, 5, 5, 1, "same", "replicate", 1, np.float64, True, "relu6"),
    (2, 32, 32, 17, 13, (2, 3), "same", "circular", 2, np.float32, True, "relu"),
    (3, 16, 32, 3, 3, 1, 1, "zeros", 1, np.float32, False, None),
    (1, 48, 16, 20, 37, 3, "same", "zeros", 1, np.float64, False, "elu"),
    (1, 16, 16, 1, 1, 1, "same", "zeros", 1, np.float32, True, None),
    (2, 20, 20, 33, 9, 2, ((2, 1), (0, 3)), "reflect", 1, np.float32, True, None),
    (1, 80, 24, 6, 19, 1, "same", "zeros", 1, np.float32, True, None),  # 80 channels: flushes to double
]


@pytest.mark.parametrize("case", _CF_CASES,
                         ids=lambda c: "{}x{}x{}x{}-{}-{}-{}".format(*c[1:5], c[6], c[7], c[9].__name__))
def test_channels_first_runs_in_place_with_channels_lasts_bits(case, monkeypatch):
    """channels_first 2-D layers with a vector of channels and filters take
    ``run_channels_first`` (no layout passes), with ``winograd_kernel``'s results
    bit for bit, and match the float64 reference; ``out=`` views are filled."""
    N, C, K, H, W, dil, padding, mode, groups, dtype, bias, act = case
    rng = np.random.default_rng(C * H + W)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((3, 3, C // groups, K)) / np.sqrt(9 * C // groups)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    kw = dict(padding=padding, dilation_rate=dil, padding_mode=mode, groups=groups, activation=act)
    runs = []
    original = wpath.run_channels_first
    monkeypatch.setattr(wpath, "run_channels_first", lambda *a: runs.append(a[0]) or original(*a))
    x_copy = x.copy()
    got = numconv.conv2d(x, w, b, data_format="channels_first", method="winograd", **kw)
    # (a 1 x 1 image under "same": its kernel is cut to the centre tap, the only one
    # that reads the input, and a 1 x 1 kernel is not Winograd's)
    assert len(runs) == (0 if (H, W, padding) == (1, 1, "same") else 1)
    last = numconv.conv2d(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), w, b, method="winograd", **kw)
    assert np.array_equal(got, last.transpose(0, 3, 1, 2))
    _assert_close_to_reference(got, ref_conv(x, w, b, data_format="channels_first", **kw), dtype)
    view = np.full(got.shape[:1] + (got.shape[1] + 3,) + got.shape[2:], np.nan, dtype)[:, 1:-2]
    assert numconv.conv2d(x, w, b, data_format="channels_first", method="winograd", out=view, **kw) is view
    assert np.array_equal(view, got)
    assert np.array_equal(x, x_copy)


def test_channels_first_kernel_does_not_depend_on_threads_or_task_shapes():
    """Every task rectangle (rows and columns of bands, clipped at the edges) and
    thread count gives the same bits, with the dilation pairing rows and columns
    apart and reflect padding mapped in the staged rows."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 40, 23, 29)).astype(np.float32)  # 40 channels, 40 filters: a partial vector
    w5 = rng.standard_normal((1, 3, 3, 40, 40)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    variant = choose_variant(40, np.float32)
    up = wk.transform_weights(w5, 1, variant_lanes(variant, np.float32), np.float32).copy()
    out = np.empty((2, 40, 23, 29), np.float32)
    runs = []
    for bands, threads in [((1, 1), 1), ((1, 1), 2), ((2, 3), 2), ((3, 100), 1), ((100, 2), 2), ((5, 4), 2)]:
        wk.winograd_cf_kernel(x, up, b, True, out, (2, 1), (2, 1), 1, bands, threads, 1, variant_tag(variant))
        runs.append(out.copy())
    for r in runs[1:]:
        assert np.array_equal(r, runs[0])
    ref = ref_conv(x, w5[0], b, padding="same", dilation_rate=(2, 1), padding_mode="reflect",
                   data_format="channels_first", activation="relu")
    _assert_close_to_reference(runs[0], ref, np.float32)


def test_channels_first_bands_fit_the_budget_and_feed_the_threads():
    """Whole rows of bands while they fit; one row of column bands where a row is
    too wide; at least 4 tasks per thread where the layer has that many bands."""
    def spec(shape, k=64, dil=1):
        x = np.empty(shape, np.float32)
        return numconv._spec.conv_spec("conv", x, np.empty((3, 3, shape[1], k), np.float32), None, 1, "same", dil,
                                       None, "channels_first", "zeros", None, "winograd",
                                       numconv._dispatch.METHODS)[0]
    s = spec((8, 64, 56, 56))
    nr, nc = wpath.cf_bands(s, 2)
    assert nc == 28 and nr >= 1  # 28 column bands of 2 outputs: whole rows
    wide = spec((1, 64, 8, 4000))
    nr, nc = wpath.cf_bands(wide, 2)
    assert nr == 1 and 1 <= nc < 2000
    few = spec((1, 64, 8, 8))
    nr, nc = wpath.cf_bands(few, 2)
    assert nr == 1  # 4 row bands: one each, for the threads
    assert not wpath.cf_applies(spec((1, 8, 20, 20)))  # under a vector of channels: the layout passes


# ---------------------------------------------------------------- the kernel gradient


def _grad_arrays(c):
    x, w, _, kw = _arrays(c)
    kw.pop("activation")
    y = ref_conv(x, w, **kw)
    g = np.random.default_rng(c["seed"] + 100).standard_normal(y.shape).astype(c["dtype"])
    return x, g, w.shape, kw


@pytest.mark.parametrize("c", _cases(), ids=_case_id)
def test_winograd_kernel_gradient_matches_reference(c):
    x, g, kshape, kw = _grad_arrays(c)
    got = numconv.conv_backprop_kernel(x, g, kshape, method="winograd", **kw)
    ref = ref_kernel_grad(x, g, kshape, **kw)
    _assert_close_to_reference(got, ref, c["dtype"])


def _wgrad_calls(monkeypatch):
    calls = []
    kernel = wk.winograd_wgrad_kernel

    def spy(*args):
        calls.append(args[2].shape)
        return kernel(*args)
    monkeypatch.setattr(wk, "winograd_wgrad_kernel", spy)
    return calls


def test_auto_runs_the_winograd_kernel_gradient_on_large_layers_only(monkeypatch):
    calls = _wgrad_calls(monkeypatch)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 40, 38, 32)).astype(np.float32)
    g = rng.standard_normal((2, 40, 38, 16)).astype(np.float32)
    got = numconv.conv_backprop_kernel(x, g, (3, 3, 32, 16), padding="same")
    assert len(calls) == 1 and calls[0][0] == 8  # 760 tiles: 8 slices of at least 64
    np.testing.assert_allclose(got, ref_kernel_grad(x, g, (3, 3, 32, 16), padding="same"), rtol=1e-5, atol=1e-4)
    # 64 tiles: one slice would leave a thread idle, so the direct gradient runs
    numconv.conv_backprop_kernel(x[:1, :16, :16], g[:1, :16, :16], (3, 3, 32, 16), padding="same")
    # strided and 5x5 windows have no Winograd form
    numconv.conv_backprop_kernel(x, g[:, ::2, ::2], (3, 3, 32, 16), padding="same", strides=2)
    numconv.conv_backprop_kernel(x, g, (5, 5, 32, 16), padding="same")
    assert len(calls) == 1


def test_kernel_gradient_of_wide_layers_runs_in_blocks():
    # 150 channels x 140 filters: three blocks of each (64, 64, 22 and 64, 64, 12), the
    # last ones partial in rows and lanes; two groups; 3-D
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 3, 9, 10, 300)).astype(np.float32)
    g = rng.standard_normal((1, 3, 9, 10, 280)).astype(np.float32)
    kw = dict(padding="same", groups=2)
    got = numconv.conv_backprop_kernel(x, g, (2, 3, 3, 150, 280), method="winograd", **kw)
    ref = ref_kernel_grad(x, g, (2, 3, 3, 150, 280), **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_kernel_gradient_does_not_depend_on_threads():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 30, 27, 70)).astype(np.float32)  # 70 channels: a partial row block
    g = rng.standard_normal((3, 30, 27, 40)).astype(np.float32)
    before = numba.get_num_threads()
    try:
        results = []
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS), numba.config.NUMBA_NUM_THREADS}):
            numconv.set_num_threads(threads)
            results.append(numconv.conv_backprop_kernel(x, g, (3, 3, 70, 40), padding="same", method="winograd"))
    finally:
        numconv.set_num_threads(before)
    for r in results[1:]:
        assert np.array_equal(r, results[0])


def test_kernel_gradient_float32_error_on_a_long_reduction():
    rng = np.random.default_rng(11)
    x = rng.random((4, 48, 48, 16)).astype(np.float32)  # positive data: no cancellation; 9216 terms per weight
    g = rng.random((4, 48, 48, 16)).astype(np.float32)
    ref = ref_kernel_grad(x, g, (3, 3, 16, 16), padding="same")
    got = numconv.conv_backprop_kernel(x, g, (3, 3, 16, 16), padding="same", method="winograd")
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err < 1e-6, err


def test_kernel_gradient_float32_error_at_most_twice_torchs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 56, 56, 64)).astype(np.float32)
    g = rng.standard_normal((2, 56, 56, 64)).astype(np.float32)
    ref = ref_kernel_grad(x, g, (3, 3, 64, 64), padding="same")
    err = np.abs(numconv.conv_backprop_kernel(x, g, (3, 3, 64, 64), padding="same", method="winograd") - ref).max()
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    gt = torch.from_numpy(g).permute(0, 3, 1, 2)
    dw = torch.nn.grad.conv2d_weight(xt, (64, 64, 3, 3), gt, padding=1).permute(2, 3, 1, 0).numpy()
    terr = np.abs(dw - ref).max()
    assert err <= 2 * terr, (err, terr)


def test_kernel_gradient_inputs_are_not_modified():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 20, 20, 8)).astype(np.float32)
    g = rng.standard_normal((2, 20, 20, 8)).astype(np.float32)
    copies = x.copy(), g.copy()
    numconv.conv_backprop_kernel(x, g, (3, 3, 8, 8), padding="same", method="winograd")
    assert np.array_equal(x, copies[0]) and np.array_equal(g, copies[1])


# ------------------------------------------------ the transposed scheme: stride-2 3x3 adjoints

def _transposed_cases():
    rng = np.random.default_rng(20261125)
    cases = []
    for i in range(20):  # (kg: two tile variants per dtype, each a kernel compile)
        groups = int(rng.choice([1, 1, 2, 3]))
        cases.append(dict(
            rank=3 if i % 6 == 0 else 2, groups=groups, cg=int(rng.choice([1, 5, 17, 70])),
            kg=int(rng.choice([1, 6, 70])), spatial=tuple(int(v) for v in rng.integers(1, 7, 2)),
            batch=int(rng.integers(1, 3)), dtype=[np.float32, np.float64][i % 2],
            padding=["valid", "same", "full", ((0, 1), (2, 1))][i % 4],
            output_padding=[None, None, (1, 0), (0, 1)][i % 4],
            data_format="channels_first" if i % 5 == 0 else "channels_last", seed=i))
    return cases


@pytest.fixture
def transposed_scheme(monkeypatch):
    """Every stride-2 3 x 3 adjoint takes the transposed scheme, whatever its
    channel counts; returns the list each ``run_transposed`` call appends to."""
    from numconv import _adjoint

    monkeypatch.setattr(wpath, "TRANSPOSED_MIN_CHANNELS", 1)
    monkeypatch.setattr(_adjoint, "_PLANS", {})
    calls, run = [], wpath.run_transposed

    def spy(*args):
        calls.append(args[0])
        return run(*args)
    monkeypatch.setattr(wpath, "run_transposed", spy)
    return calls


@pytest.mark.parametrize("c", _transposed_cases(), ids=lambda c: "r{rank}-g{groups}-c{cg}-k{kg}-{seed}".format(**c))
def test_transposed_scheme_matches_the_definitions(c, transposed_scheme):
    """``conv_transpose`` (Keras's definition: stuff, pad, correlate with the flipped
    kernel) and ``conv_backprop_input`` (finite differences of the reference conv,
    in float64) of 3 x 3 windows at stride 2 - odd and even pads, output_padding,
    groups, both data formats, a depth axis of one tap - on the transposed scheme."""
    rng = np.random.default_rng(c["seed"])
    dt, fmt, G = c["dtype"], c["data_format"], c["groups"]
    lead = (1,) if c["rank"] == 3 else ()
    ks, strides = lead + (3, 3), lead + (2, 2)
    C, K = c["cg"] * G, c["kg"] * G

    def layout(shape_last):
        return shape_last if fmt == "channels_last" else (shape_last[0], shape_last[-1]) + shape_last[1:-1]

    # conv_transpose: x has C channels, the kernel (*k, filters, in_channels)
    if G == 1:
        spatial = lead + c["spatial"]
        x = rng.standard_normal(layout((c["batch"],) + spatial + (C,))).astype(dt)
        w = rng.standard_normal(ks + (K, C)).astype(dt)
        b = rng.standard_normal(K).astype(dt)
        padding = c["padding"] if c["padding"] in ("valid", "same") else "same"
        op = c["output_padding"] and (0,) * len(lead) + c["output_padding"]
        args = dict(strides=strides, padding=padding, output_padding=op, data_format=fmt)
        _assert_close_to_reference(numconv.conv_transpose(x, w, b, **args), ref_conv_transpose(x, w, b, **args), dt)
        assert transposed_scheme, c
    # conv_backprop_input: the forward conv maps C channels to K filters in G groups
    del transposed_scheme[:]
    spatial = lead + tuple(2 * s + 1 for s in c["spatial"])
    padding = c["padding"] if isinstance(c["padding"], str) else (((0, 0),) if lead else ()) + c["padding"]
    args = dict(strides=strides, padding=padding, groups=G, data_format=fmt)
    xs = layout((c["batch"],) + spatial + (C,))
    w = rng.standard_normal(ks + (c["cg"], K))
    g = rng.standard_normal(ref_conv(np.zeros(xs), w, **args).shape)
    got = numconv.conv_backprop_input(g.astype(dt), w.astype(dt), xs, **args)
    assert transposed_scheme, c
    if dt == np.float64:
        ref = ref_gradient(lambda v: np.vdot(ref_conv(v, w, **args), g), np.zeros(xs))
        np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-8)
    else:
        _assert_close_to_reference(got, numconv.conv_backprop_input(g, w, xs, method="direct", **args), dt)


def test_transposed_scheme_results_do_not_depend_on_threads_or_task_runs():
    rng = np.random.default_rng(5)
    x5 = rng.standard_normal((3, 1, 7, 9, 70)).astype(np.float32)  # 70 channels: flushes
    w5 = rng.standard_normal((1, 3, 3, 70, 40)).astype(np.float32)
    variant = choose_variant(40, np.float32)
    up = wk.transform_weights(w5, 1, variant_lanes(variant, np.float32), np.float32, wk.TRANSPOSED)
    out = np.empty((3, 1, 14, 18, 40), np.float32)
    rows = VARIANTS[variant][0]
    first = _kernel_call(x5, up, out, rows, 1, variant, wk.TRANSPOSED)
    for run, threads in [(rows, 2), (2 * rows, 1), (3 * rows, 2), (16 * rows, 2)]:
        assert np.array_equal(_kernel_call(x5, up, out, run, threads, variant, wk.TRANSPOSED), first), (run, threads)
    # pads (0, 1, 1): output i is full index i + 1 of the stride-2 scatter of x5 by w5
    full = ref_conv_transpose(x5[:, 0], np.swapaxes(w5[0], 2, 3), strides=2)  # (3, 15, 19, 40)
    ref = full[:, 1:, 1:]
    np.testing.assert_allclose(first[:, 0], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_transposed_scheme_needs_its_windows_and_enough_channels():
    """``transposed_applies``: 3 x 3 at stride 2 with dilation 1, real dtypes, and
    ``TRANSPOSED_MIN_CHANNELS``; anything else keeps the stride phases."""
    from numconv import _adjoint

    def plan(ks, strides, dil=1, C=16, K=16, dtype=np.float32, method="auto"):
        spec = numconv._spec.spec_from_shapes("conv_backprop_input", (2, 12, 12, C), ks + (C, K), None, np.dtype(dtype),
                                              strides, "same", dil, None, "channels_last", "zeros", None, method,
                                              numconv._dispatch.METHODS)
        g = (2, 1) + spec.out_spatial[1:] + (K,)
        return _adjoint._make_plan(spec, (0, 1, 1), spec.in_spatial, g, (1,) + ks + (K, C), method)

    assert plan((3, 3), 2).transposed and plan((3, 3), 2, dtype=np.float64).transposed
    assert plan((3, 3), 2, method="winograd").transposed
    assert not plan((3, 3), 2, method="direct").transposed
    assert not plan((3, 3), 2, dtype=np.complex64).transposed
    assert not plan((3, 3), 2, C=4).transposed and not plan((3, 3), 2, K=4).transposed
    assert not plan((3, 3), (2, 1)).transposed and not plan((3, 3), 3).transposed
    assert not plan((5, 5), 2).transposed and not plan((3, 2), 2).transposed
    assert not plan((3, 3), 2, dil=2).transposed
