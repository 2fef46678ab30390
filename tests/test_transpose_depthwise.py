"""conv_transpose (Keras Conv*DTranspose), depthwise_conv and separable_conv.

References: ``ref_conv_transpose`` (stuff, pad by Keras's rule, correlate with the
flipped kernel - a different computation from numconv's strided phases) and the
grouped reference conv; torch where installed.
"""
import itertools

import numpy as np
import pytest

import numconv
from reference import ref_conv, ref_conv_transpose, ref_depthwise_kernel

# ---------------------------------------------------------------- conv_transpose


def _transpose_cases():
    rng = np.random.default_rng(21)
    cases = []
    for _ in range(80):
        r = int(rng.integers(1, 4))
        ks = tuple(int(v) for v in rng.integers(1, 5, r))
        s = tuple(int(v) for v in rng.integers(1, 4, r))
        d = tuple(int(v) for v in rng.integers(1, 3, r))
        padding = str(rng.choice(["valid", "same"]))
        op = None
        if rng.random() < 0.4:
            op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d))
        spatial = tuple(int(v) for v in rng.integers(1, {1: 8, 2: 6, 3: 4}[r] + 1, r))
        fmt = str(rng.choice(["channels_last", "channels_first"]))
        cases.append(dict(r=r, ks=ks, spatial=spatial, C=int(rng.integers(1, 4)), F=int(rng.integers(1, 4)),
                          args=dict(strides=s, padding=padding, output_padding=op, dilation_rate=d,
                                    data_format=fmt)))
    return cases


TRANSPOSE_CASES = _transpose_cases()


@pytest.mark.parametrize("i", range(len(TRANSPOSE_CASES)))
def test_conv_transpose_matches_keras_definition(i, adjoint_form):
    """Both forms of the adjoint (``adjoint_form``): stride phases and columns."""
    c = TRANSPOSE_CASES[i]
    rng = np.random.default_rng(i)
    fmt = c["args"]["data_format"]
    xs = (2,) + c["spatial"] + (c["C"],) if fmt == "channels_last" else (2, c["C"]) + c["spatial"]
    x = rng.standard_normal(xs)
    w = rng.standard_normal(c["ks"] + (c["F"], c["C"]))
    b = rng.standard_normal(c["F"])
    ref = ref_conv_transpose(x, w, b, **c["args"])
    got = numconv.conv_transpose(x, w, b, **c["args"])
    assert got.shape == ref.shape, c
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, err_msg=str(c))
    got32 = numconv.conv_transpose(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), **c["args"])
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, ref, atol=1e-5 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("L,k,s,d,padding", list(itertools.product([4, 7], [1, 2, 3, 5], [1, 2, 3], [1, 2],
                                                                    ["valid", "same"])))
def test_conv_transpose_is_the_adjoint_of_conv(L, k, s, d, padding):
    rng = np.random.default_rng(L * 100 + k * 10 + s)
    x = rng.standard_normal((2, L, L, 3))
    w = rng.standard_normal((k, 2, 4, 3))  # (*k, filters, in_channels)
    y = numconv.conv_transpose(x, w, strides=s, dilation_rate=d, padding=padding)
    z = rng.standard_normal(y.shape)
    cz = numconv.conv(z, w, strides=s, dilation_rate=d, padding=padding)
    assert cz.shape == x.shape
    lhs, rhs = np.vdot(cz, x), np.vdot(z, y)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


def test_conv_transpose_keras_lengths():
    """Keras 3's output lengths, including where PyTorch differs."""
    x = np.ones((1, 5, 1))
    w = np.ones((3, 1, 1))
    assert numconv.conv_transpose(x, w, strides=2).shape[1] == 11                          # (L-1)s + k
    assert numconv.conv_transpose(x, w, strides=2, padding="same").shape[1] == 10          # L s
    assert numconv.conv_transpose(x, w, strides=2, padding="same", output_padding=1).shape[1] == 10  # (L-1)s + k%2 + op
    assert numconv.conv_transpose(x, w, strides=2, padding="same", output_padding=0).shape[1] == 9
    assert numconv.conv_transpose(x, np.ones((2, 1, 1)), strides=4).shape[1] == 20         # kernel < stride: L s
    assert numconv.conv_transpose(x, w, strides=2, output_padding=1).shape[1] == 12


def test_conv_transpose_activation_and_out():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 5, 3))
    w = rng.standard_normal((3, 3, 4, 3))
    b = rng.standard_normal(4)
    ref = np.maximum(ref_conv_transpose(x, w, b, strides=2, padding="same"), 0)
    out = np.empty(ref.shape)
    got = numconv.conv_transpose(x, w, b, strides=2, padding="same", activation="relu", out=out)
    assert got is out
    np.testing.assert_allclose(got, ref, atol=1e-12)
    got = numconv.conv_transpose(x, w, b, strides=2, padding="same", activation=lambda v: np.maximum(v, 0))
    np.testing.assert_allclose(got, ref, atol=1e-12)


@pytest.mark.parametrize("method", ["direct", "fft", "oa"])
def test_conv_transpose_methods_agree(method):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 9, 3))
    w = rng.standard_normal((5, 2, 3))
    ref = ref_conv_transpose(x, w, strides=3, padding="same", dilation_rate=2)
    np.testing.assert_allclose(numconv.conv_transpose(x, w, strides=3, padding="same", dilation_rate=2, method=method),
                               ref, atol=1e-10)


def test_conv_transpose_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((3, 4, 5, 3))  # (kh, kw, filters, in_channels)
    y = numconv.conv_transpose(x, w, strides=(2, 3), dilation_rate=(1, 2), data_format="channels_first")
    wt = torch.tensor(np.transpose(w, (3, 2, 0, 1)).copy())  # (in, out, kh, kw)
    yt = torch.nn.functional.conv_transpose2d(torch.tensor(x), wt, stride=(2, 3), dilation=(1, 2))
    np.testing.assert_allclose(y, yt.numpy(), atol=1e-10)


def test_conv_transpose_errors():
    x = np.ones((1, 5, 5, 3))
    with pytest.raises(ValueError, match=r"x must have in_channels = 2 channels.*got 3 channels"):
        numconv.conv_transpose(x, np.ones((3, 3, 4, 2)))
    with pytest.raises(ValueError, match="unknown padding 'causal'"):
        numconv.conv_transpose(x, np.ones((3, 3, 4, 3)), padding="causal")
    with pytest.raises(ValueError, match="output_padding must be smaller than the stride"):
        numconv.conv_transpose(x, np.ones((3, 3, 4, 3)), strides=2, output_padding=2)
    with pytest.raises(ValueError, match="x must be 4-D"):
        numconv.conv_transpose(np.ones((5, 5, 3)), np.ones((3, 3, 4, 3)))
    with pytest.raises(ValueError, match="bias must have shape \\(4,\\)"):
        numconv.conv_transpose(x, np.ones((3, 3, 4, 3)), np.ones(3))
    assert numconv.conv_transpose(np.ones((0, 5, 5, 3)), np.ones((3, 3, 4, 3))).shape == (0, 7, 7, 4)


# ---------------------------------------------------------------- depthwise and separable


def _depthwise_cases():
    rng = np.random.default_rng(31)
    cases = []
    for _ in range(40):
        r = int(rng.integers(1, 4))
        ks = tuple(int(v) for v in rng.integers(1, 4, r))
        spatial = tuple(int(v) for v in rng.integers(5, {1: 12, 2: 8, 3: 6}[r] + 1, r))
        s = tuple(int(v) for v in rng.integers(1, 3, r))
        d = tuple(int(v) for v in rng.integers(1, 3, r))
        padding = str(rng.choice(["valid", "same", "full"] + (["causal"] if r == 1 else [])))
        mode = str(rng.choice(["zeros", "reflect", "replicate", "circular"]))
        if mode != "zeros" and padding == "full":
            mode = "zeros"
        cases.append(dict(r=r, ks=ks, spatial=spatial, C=int(rng.integers(1, 6)), M=int(rng.integers(1, 4)),
                          F=int(rng.integers(1, 5)),
                          args=dict(strides=s, padding=padding, dilation_rate=d, padding_mode=mode,
                                    data_format=str(rng.choice(["channels_last", "channels_first"])))))
    return cases


DW_CASES = _depthwise_cases()


@pytest.mark.parametrize("i", range(len(DW_CASES)))
def test_depthwise_and_separable_match_reference(i):
    c = DW_CASES[i]
    rng = np.random.default_rng(100 + i)
    fmt = c["args"]["data_format"]
    xs = (2,) + c["spatial"] + (c["C"],) if fmt == "channels_last" else (2, c["C"]) + c["spatial"]
    x = rng.standard_normal(xs)
    dk = rng.standard_normal(c["ks"] + (c["C"], c["M"]))
    pk = rng.standard_normal((1,) * c["r"] + (c["C"] * c["M"], c["F"]))
    b1, b2 = rng.standard_normal(c["C"] * c["M"]), rng.standard_normal(c["F"])
    a = c["args"]
    ref = ref_conv(x, ref_depthwise_kernel(dk), b1, groups=c["C"], activation="tanh", **a)
    np.testing.assert_allclose(numconv.depthwise_conv(x, dk, b1, activation="tanh", **a), ref, atol=1e-12)
    mid = ref_conv(x, ref_depthwise_kernel(dk), groups=c["C"], **a)
    ref_sep = ref_conv(mid, pk, b2, data_format=fmt, activation="relu")
    got = numconv.separable_conv(x, dk, pk, b2, activation="relu", **a)
    np.testing.assert_allclose(got, ref_sep, atol=1e-11)
    got32 = numconv.separable_conv(x.astype(np.float32), dk.astype(np.float32), pk.astype(np.float32),
                                   b2.astype(np.float32), activation="relu", **a)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, ref_sep, atol=1e-5 * max(1.0, np.abs(ref_sep).max()))


def test_depthwise_stride_and_dilation_together_keras_22515():
    """keras#22515: depthwise / separable with stride > 1 and dilation > 1 together."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 15, 15, 3))
    dk = rng.standard_normal((3, 3, 3, 2))
    ref = ref_conv(x, ref_depthwise_kernel(dk), groups=3, strides=2, dilation_rate=2, padding="same")
    np.testing.assert_allclose(numconv.depthwise_conv(x, dk, strides=2, dilation_rate=2, padding="same"), ref,
                               atol=1e-12)


@pytest.mark.parametrize("shape, kernel, padding", [
    ((2, 6000, 16), (2001, 16, 1), "valid"),       # 1-D, every tile interior
    ((1, 70, 70, 20), (31, 31, 20, 1), "same"),    # 2-D, interior and border tiles
])
def test_depthwise_float32_long_windows_stay_accurate(shape, kernel, padding):
    """Windows longer than the flush length (``tile.FLUSH_TERMS``) are summed as
    short float32 partial sums on every tile. Interior tiles once skipped the
    flush: a 2001-tap window on positive data erred by 2.5e-6 (flushed: 1.3e-7)."""
    rng = np.random.default_rng(7)
    x = rng.random(shape).astype(np.float32)
    dk = rng.random(kernel).astype(np.float32)
    got = numconv.depthwise_conv(x, dk, padding=padding, method="direct")
    ref = numconv.depthwise_conv(x.astype(np.float64), dk.astype(np.float64), padding=padding, method="direct")
    assert np.max(np.abs(got - ref) / np.abs(ref)) < 4e-7


def test_depthwise_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 9, 8))
    dk = rng.standard_normal((3, 3, 4, 2))  # M = 2
    y = numconv.depthwise_conv(x, dk, strides=2, padding=((1, 1), (1, 1)), data_format="channels_first")
    wt = torch.tensor(np.transpose(dk.reshape(3, 3, 8), (2, 0, 1))[:, None].copy())  # (C*M, 1, kh, kw)
    yt = torch.nn.functional.conv2d(torch.tensor(x), wt, stride=2, padding=1, groups=4)
    np.testing.assert_allclose(y, yt.numpy(), atol=1e-12)


def test_depthwise_and_separable_errors():
    x = np.ones((1, 6, 6, 3))
    with pytest.raises(ValueError, match=r"depthwise_conv: kernel must have in_channels = 3"):
        numconv.depthwise_conv(x, np.ones((3, 3, 4, 1)))
    with pytest.raises(ValueError, match="pass the matching data_format"):
        numconv.depthwise_conv(np.ones((1, 3, 6, 6)), np.ones((3, 3, 3, 1)))
    with pytest.raises(ValueError, match=r"pointwise_kernel must have shape \(1, 1, 6, filters\)"):
        numconv.separable_conv(x, np.ones((3, 3, 3, 2)), np.ones((1, 1, 3, 4)))
    with pytest.raises(ValueError, match="depthwise_kernel must be 3-D, 4-D or 5-D"):
        numconv.separable_conv(x, np.ones((3, 3)), np.ones((1, 1, 3, 4)))
    with pytest.raises(ValueError, match="bias must have shape \\(6,\\)"):
        numconv.depthwise_conv(x, np.ones((3, 3, 3, 2)), np.ones(3))
    out = np.empty((1, 4, 4, 6))
    assert numconv.depthwise_conv(x, np.ones((3, 3, 3, 2)), out=out) is out
    out = np.empty((1, 5, 4, 4))
    assert numconv.separable_conv(np.ones((1, 3, 6, 6)), np.ones((3, 3, 3, 2)), np.ones((1, 1, 6, 5)),
                                  data_format="channels_first", out=out) is out


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_channels_first_kernel_agrees_with_channels_last(rank, dtype):
    """channels_first depthwise runs its own kernel on the user's layout
    (``depthwise_cf_kernel``, no transposes) wherever the stride along W is 1; it must
    give the channels-last kernel's results over multipliers, paddings, padding
    modes, strides along the other axes, dilations, bias and activations."""
    from numconv._paths import direct
    from numconv._spec import conv_spec
    rng = np.random.default_rng(rank)
    spatial = {1: (37,), 2: (13, 17), 3: (6, 7, 9)}[rank]
    k = {1: (5,), 2: (3, 3), 3: (3, 2, 3)}[rank]
    used = 0
    for M, padding, mode, s, d, act in itertools.product(
            (1, 2), ("valid", "same"), ("zeros", "reflect", "circular"), (1, 2), (1, 2), (None, "relu", "tanh")):
        if mode != "zeros" and padding == "valid":
            continue
        strides = (s,) * (rank - 1) + (1,) if rank > 1 else s  # stride 1 along W keeps the cf kernel
        x = rng.standard_normal((2,) + spatial + (5,)).astype(dtype)
        w = rng.standard_normal(k + (5, M)).astype(dtype)
        b = rng.standard_normal(5 * M).astype(dtype)
        kw = dict(strides=strides, padding=padding, dilation_rate=d, padding_mode=mode, activation=act)
        cl = numconv.depthwise_conv(x, w, b, **kw)
        xf = np.ascontiguousarray(np.moveaxis(x, -1, 1))
        spec = conv_spec("depthwise_conv", xf, w.reshape(k + (1, 5 * M)), b, strides, padding, d, 5,
                         "channels_first", mode, None, "direct", ("direct",), rank)[0]
        used += direct.is_depthwise_channels_first(spec)
        cf = numconv.depthwise_conv(xf, w, b, data_format="channels_first", **kw)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(cf, np.moveaxis(cl, -1, 1), rtol=tol, atol=tol)
    assert used > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spatial, k", [((150,), (9,)), ((5, 70), (3, 3)), ((3, 6, 97), (1, 3, 5))])
def test_depthwise_channels_first_reads_unpadded_rows_longer_than_its_runs(spatial, k, dtype):
    """With zero padding the channels_first depthwise kernel reads the user's
    array, not a padded copy: runs of pixels inside a row load whole vectors, runs
    crossing an edge load only their lanes inside (``row_fma_masked``). Rows
    longer than a run (64 float32 / 32 float64 pixels) exercise both, and the
    lanes past the row's end must read zeros, not the next row."""
    rng = np.random.default_rng(len(spatial))
    x = rng.standard_normal((2,) + spatial + (3,)).astype(dtype)
    w = rng.standard_normal(k + (3, 1)).astype(dtype)
    xf = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    for padding, d in itertools.product(("valid", "same"), (1, 2)):
        cl = numconv.depthwise_conv(x, w, padding=padding, dilation_rate=d)
        cf = numconv.depthwise_conv(xf, w, padding=padding, dilation_rate=d, data_format="channels_first")
        ref = np.moveaxis(ref_conv(x.astype(np.float64), w.reshape(k + (1, 3)).astype(np.float64), padding=padding,
                                   dilation_rate=d, groups=3), -1, 1)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(cf, np.moveaxis(cl, -1, 1), rtol=tol, atol=tol)
        np.testing.assert_allclose(cf, ref, rtol=tol, atol=tol)


def test_channels_first_separable_keeps_its_input_layout(monkeypatch):
    """channels_first separable conv whose depthwise stage runs channels_first in
    and out: the input is never laid out channels-last (the pointwise stage reads
    the intermediate as it lies), the result equals the channels-last one, and
    ``out=`` is filled."""
    from numconv import _ops

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 9, 11)).astype(np.float32)
    dk = rng.standard_normal((3, 3, 16, 2)).astype(np.float32)
    pk = rng.standard_normal((1, 1, 32, 24)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    want = numconv.separable_conv(np.moveaxis(x, 1, -1), dk, pk, b, padding="same", activation="relu")
    monkeypatch.setattr(_ops, "to_channels_last", lambda *a: pytest.fail("laid out channels-last"))
    monkeypatch.setattr(_ops, "canonical_input", lambda *a: pytest.fail("laid out channels-last"))
    out = np.full((2, 24, 9, 11), np.nan, np.float32)
    got = numconv.separable_conv(x, dk, pk, b, padding="same", activation="relu", data_format="channels_first",
                                 out=out)
    assert got is out
    np.testing.assert_allclose(np.moveaxis(got, 1, -1), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_separable_intermediate_is_pooled_scratch_never_the_result(data_format, monkeypatch):
    """separable_conv's depthwise result comes from the scratch pool (reused by
    the thread's next call), so neither the result nor any later call may touch
    it: results kept from earlier calls stay as they were."""
    from numconv import _memory
    lent = []
    scratch = _memory.scratch

    def recorded(shape, dtype):
        a = scratch(shape, dtype)
        lent.append(a)
        return a

    monkeypatch.setattr(_memory, "scratch", recorded)
    rng = np.random.default_rng(8)
    shape = (2, 9, 11, 16) if data_format == "channels_last" else (2, 16, 9, 11)
    dk = rng.standard_normal((3, 3, 16, 1))
    pk = rng.standard_normal((1, 1, 16, 8))
    xs = [rng.standard_normal(shape) for _ in range(3)]
    ys = [numconv.separable_conv(x, dk, pk, padding="same", data_format=data_format) for x in xs]
    assert lent and not any(np.shares_memory(y, a) for y in ys for a in lent)
    for x, y in zip(xs, ys):
        np.testing.assert_array_equal(numconv.separable_conv(x, dk, pk, padding="same", data_format=data_format), y)


@pytest.mark.parametrize("shape,groups", [((1, 3, 3, 64, 96), 1), ((2, 3, 1, 6, 20), 2), ((1, 1, 3, 8, 60), 4),
                                          ((1, 1, 3, 1, 12), 12), ((3, 3, 3, 20, 120), 8), ((1, 2, 2, 30, 7), 7)])
def test_swap_channels_matches_numpy(shape, groups):
    """The adjoint's kernel (each group's in and out channels swapped), built by the
    transpose kernel, against NumPy's moveaxis, float32 and complex128."""
    from numconv._adjoint import swap_channels

    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.complex128):
        w5 = rng.standard_normal(shape).astype(dtype)
        *ks, cg, f = shape
        fg = f // groups
        ref = np.moveaxis(w5.reshape(*ks, cg, groups, fg), (-3, -2, -1), (-1, -2, -3)).reshape(*ks, fg, groups * cg)
        np.testing.assert_array_equal(swap_channels(w5, groups), ref)


@pytest.mark.parametrize("case", [dict(strides=2, padding="same"), dict(method="fft", padding="same"),
                                  dict(C=1), dict(strides=(2, 1), rank=2)])
def test_channels_first_separable_applies_whole_array_activations_in_the_users_layout(case):
    """softmax / log_softmax (over the last axis, as Keras) and callables see the
    channels_first result: where both stages ran channels-last (strides, fft, one
    channel) they were applied before the result was laid back out (softmax rows
    summed to 1.85, 1.31, 0.84; a callable saw (1, 4, 3) for a (1, 3, 4) result)."""
    case = dict(case)
    rank, C = case.pop("rank", 1), case.pop("C", 2)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, C) + (9, 8)[:rank])
    dk, pk = rng.standard_normal((3,) * rank + (C, 2)), rng.standard_normal((1,) * rank + (2 * C, 3))
    kw = dict(data_format="channels_first", **case)
    y = numconv.separable_conv(x, dk, pk, **kw)
    e = np.exp(y - y.max(-1, keepdims=True))
    np.testing.assert_allclose(numconv.separable_conv(x, dk, pk, activation="softmax", **kw),
                               e / e.sum(-1, keepdims=True), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(numconv.separable_conv(x, dk, pk, activation="log_softmax", **kw),
                               np.log(e / e.sum(-1, keepdims=True)), rtol=1e-9, atol=1e-12)
    seen = []
    got = numconv.separable_conv(x, dk, pk, activation=lambda v: seen.append(v.shape) or v[..., ::-1] * 1, **kw)
    assert seen == [y.shape]
    np.testing.assert_allclose(got, y[..., ::-1], rtol=1e-12, atol=1e-12)
