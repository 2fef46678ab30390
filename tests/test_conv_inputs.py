"""Cross-cutting input handling of numconv.conv, checked against the NumPy reference."""

import numpy as np
import pytest

import numconv
from reference import ACTIVATIONS, ref_activation, ref_conv

RNG_SEED = 11


def _data(shape, seed=0, dtype=np.float64):
    return np.random.default_rng([RNG_SEED, seed]).standard_normal(shape).astype(dtype)


def _close(got, ref, dtype=np.float64):
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    tight = np.dtype(dtype) in (np.float64, np.complex128)
    np.testing.assert_allclose(got, ref, rtol=1e-11 if tight else 1e-5,
                               atol=(1e-11 if tight else 2e-5) * scale)


# ----------------------------------------------------------------- array-likes and layouts


def test_python_lists():
    x, w, b = _data((2, 6, 3), 1), _data((3, 3, 4), 2), _data((4,), 3)
    got = numconv.conv(x.tolist(), w.tolist(), b.tolist(), padding="same")
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    _close(got, ref_conv(x, w, b, padding="same"))


LAYOUTS = {
    "strided": lambda a: np.repeat(a, 2, axis=1)[:, ::2],
    "fortran": np.asfortranarray,
    "negative": lambda a: np.flip(np.flip(a, 1).copy(), 1),
    "readonly": lambda a: _readonly(a),
    "negative_readonly": lambda a: _readonly(np.flip(np.flip(a, 0).copy(), 0)),
}


def _readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("which", ["x", "kernel", "bias"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_views_fortran_negative_strides_readonly(which, layout, data_format):
    x = _data((2, 3, 7, 5) if data_format == "channels_first" else (2, 7, 5, 3), 4)
    w, b = _data((2, 3, 3, 4), 5), _data((4,), 6)
    args = dict(x=x, kernel=w, bias=b)
    arr = args[which]
    if which == "bias":  # 1-D: strided / negative views along axis 0
        view = {"strided": lambda a: np.repeat(a, 2)[::2], "fortran": np.asfortranarray,
                "negative": lambda a: a[::-1].copy()[::-1], "readonly": _readonly,
                "negative_readonly": lambda a: _readonly(a[::-1].copy())[::-1]}[layout](arr)
    else:
        view = LAYOUTS[layout](arr)
    np.testing.assert_array_equal(view, arr)  # the view holds the same values
    args[which] = view
    kw = dict(strides=(2, 1), padding="same", data_format=data_format, padding_mode="reflect")
    _close(numconv.conv(args["x"], args["kernel"], args["bias"], **kw), ref_conv(x, w, b, **kw))


def test_layout_helpers_make_the_layouts_they_claim():
    a = _data((2, 5, 4, 3))
    assert not LAYOUTS["strided"](a).flags.c_contiguous
    assert LAYOUTS["fortran"](a).flags.f_contiguous and not LAYOUTS["fortran"](a).flags.c_contiguous
    assert LAYOUTS["negative"](a).strides[1] < 0
    assert not LAYOUTS["readonly"](a).flags.writeable
    assert not LAYOUTS["negative_readonly"](a).flags.writeable


@pytest.mark.parametrize("case", [
    dict(padding="valid"),
    dict(padding="same", padding_mode="reflect", data_format="channels_first"),
    dict(padding=(1, 2), padding_mode="circular", strides=2, activation="relu"),
    dict(padding="full", padding_mode="replicate", dilation_rate=2, activation="gelu"),
    dict(padding="same", groups=3, data_format="channels_first", activation="tanh"),
])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_inputs_are_not_modified(case, dtype):
    rank1 = isinstance(case["padding"], tuple)
    if rank1:
        x, w = _data((2, 9, 3), 7), _data((3, 3, 6), 8)
    else:
        x, w = _data((2, 6, 7, 3), 7), _data((3, 2, 3 // case.get("groups", 1), 6), 8)
    if case.get("data_format") == "channels_first":
        x = np.moveaxis(x, -1, 1)  # a non-contiguous view, on purpose
    b = _data((6,), 9)
    x, w, b = (np.asarray(a * 4).astype(dtype) for a in (x, w, b))
    copies = [a.copy() for a in (x, w, b)]
    numconv.conv(x, w, b, **case)
    for before, after in zip(copies, (x, w, b)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("rank,data_format", [(1, "channels_last"), (2, "channels_last"),
                                              (2, "channels_first"), (3, "channels_last")])
def test_batch_zero_returns_empty_of_right_shape(rank, data_format):
    sp = (5,) * rank
    x = np.zeros((0, *sp, 3) if data_format == "channels_last" else (0, 3, *sp))
    w = np.ones((3,) * rank + (3, 4))
    y = numconv.conv(x, w, data_format=data_format)
    out_sp = (3,) * rank
    assert y.shape == ((0, *out_sp, 4) if data_format == "channels_last" else (0, 4, *out_sp))
    assert y.dtype == np.float64


def test_conv2d_batch_zero_example():
    y = numconv.conv2d(np.zeros((0, 5, 5, 3), np.float32), np.ones((3, 3, 3, 4), np.float32))
    assert y.shape == (0, 3, 3, 4) and y.dtype == np.float32


# ----------------------------------------------------------------- dtype promotion

PROMOTIONS = [
    # (x dtype, kernel dtype, bias dtype or None, result dtype)
    ("int64", "float64", None, "float64"),
    ("int32", "float32", None, "float64"),
    ("uint8", "int64", None, "float64"),
    ("bool", "float32", None, "float64"),
    ("bool", "bool", None, "float64"),
    ("float16", "float16", None, "float32"),
    ("float16", "float32", None, "float32"),
    ("float16", "float16", "float16", "float32"),
    ("float32", "float32", None, "float32"),
    ("float32", "float64", None, "float64"),
    ("float64", "float32", None, "float64"),
    ("float32", "complex64", None, "complex64"),
    ("complex64", "float32", None, "complex64"),
    ("float64", "complex64", None, "complex128"),
    ("float32", "complex128", None, "complex128"),
    ("float32", "float32", "float64", "float64"),
    ("float32", "float32", "int64", "float64"),
    ("float32", "float32", "complex64", "complex64"),
]


@pytest.mark.parametrize("xd,wd,bd,expected", PROMOTIONS)
def test_dtype_promotion(xd, wd, bd, expected):
    x = (_data((2, 6, 3), 10) * 3).astype(xd)
    w = (_data((2, 3, 2), 11) * 3).astype(wd)
    b = None if bd is None else (_data((2,), 12) * 3).astype(bd)
    got = numconv.conv(x, w, b, padding="same")
    assert got.dtype == np.dtype(expected)
    _close(got, ref_conv(x, w, b, padding="same"), expected)


@pytest.mark.parametrize("bad", ["x", "kernel", "bias"])
@pytest.mark.parametrize("dtype", [object, "U3", "datetime64[s]"])
def test_non_numeric_dtypes_raise_type_error(bad, dtype):
    args = dict(x=np.ones((1, 4, 2)), kernel=np.ones((2, 2, 3)), bias=np.ones(3))
    args[bad] = args[bad].astype(dtype) if dtype != "U3" else np.full(args[bad].shape, "a")
    with pytest.raises(TypeError):
        numconv.conv(args["x"], args["kernel"], args["bias"])


# ----------------------------------------------------------------- out=


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128"])
def test_out_is_written_and_returned(data_format, dtype):
    x = _data((2, 4, 8, 7), 13).astype(dtype)
    if data_format == "channels_last":
        x = np.moveaxis(x, 1, -1)
    w, b = _data((3, 2, 4, 5), 14).astype(dtype), _data((5,), 15).astype(dtype)
    kw = dict(strides=(2, 1), padding="same", data_format=data_format, activation="linear")
    ref = ref_conv(x, w, b, **kw)
    out = np.full(ref.shape, np.nan, dtype=dtype)
    res = numconv.conv(x, w, b, out=out, **kw)
    assert res is out
    _close(out, ref, dtype)


@pytest.mark.parametrize("kind", ["strided", "fortran", "transposed"])
def test_out_non_contiguous(kind):
    x, w = _data((2, 6, 5, 3), 16), _data((3, 3, 3, 4), 17)
    ref = ref_conv(x, w, padding="same")  # (2, 6, 5, 4)
    if kind == "strided":
        base = np.full((2, 6, 5, 8), -7.0)
        out = base[..., ::2]
    elif kind == "fortran":
        base = out = np.asfortranarray(np.full(ref.shape, -7.0))
    else:
        base = np.full((4, 5, 6, 2), -7.0)
        out = base.transpose(3, 2, 1, 0)
    assert not out.flags.c_contiguous
    res = numconv.conv(x, w, padding="same", out=out)
    assert res is out
    _close(out, ref)
    if kind == "strided":
        assert np.all(base[..., 1::2] == -7.0)  # the gaps are left alone


@pytest.mark.parametrize("shape,dtype", [((2, 6, 4), "float64"), ((2, 5, 4, 1), "float64"),
                                         ((2, 5, 4), "float32"), ((2, 5, 4), "complex128"),
                                         ((2, 5, 4), "int64")])
def test_out_wrong_shape_or_dtype_raises(shape, dtype):
    x, w = _data((2, 7, 3), 18), _data((3, 3, 4), 19)  # result (2, 5, 4) float64
    with pytest.raises((ValueError, TypeError), match="out"):
        numconv.conv(x, w, out=np.zeros(shape, dtype))


def test_out_must_be_an_array():
    x, w = _data((2, 7, 3), 18), _data((3, 3, 4), 19)
    with pytest.raises((ValueError, TypeError), match="out"):
        numconv.conv(x, w, out=np.zeros((2, 5, 4)).tolist())


@pytest.mark.parametrize("method", ["direct", "winograd", "fft"])
def test_out_overlapping_an_input_gets_the_right_result(method):
    """``out`` that is (part of) an input: computed apart, then copied, as NumPy's
    ufuncs do; every op with ``out=``. (The kernels wrote ``out`` while reading
    the input: a 3 x 3 conv into its own input gave errors ~1e7.)"""
    rng = np.random.default_rng(23)
    x = rng.standard_normal((2, 9, 8, 16)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 16, 16)) / 12).astype(np.float32)
    dk = rng.standard_normal((3, 3, 16, 1)).astype(np.float32)
    pk = rng.standard_normal((1, 1, 16, 16)).astype(np.float32)
    kw = dict(padding="same", method=method)
    calls = [  # op(array in place of the first argument, out)
        lambda a, out: numconv.conv2d(a, w, padding="same", method=method, out=out),
        lambda a, out: numconv.conv(a, w, out=out, **kw),
        lambda a, out: numconv.depthwise_conv(a, dk, out=out, **kw),
        lambda a, out: numconv.separable_conv(a, dk, pk, out=out, **kw),
        lambda a, out: numconv.conv_transpose(a, w, padding="same", out=out),
        lambda a, out: numconv.conv_backprop_input(a, w, x.shape, out=out, **kw),
    ]
    for i, call in enumerate(calls):
        ref = call(x, None)
        a = x.copy()
        assert call(a, a) is a, i
        np.testing.assert_allclose(a, ref, rtol=1e-6, atol=1e-6, err_msg=str(i))
    # the kernel as out: conv_backprop_kernel's result over the kernel's own buffer
    g = rng.standard_normal((2, 9, 8, 16)).astype(np.float32)
    ref = numconv.conv_backprop_kernel(x, g, w.shape, **kw)
    both = np.concatenate([g.reshape(-1), np.zeros(w.size, np.float32)])  # g, then room for the result
    gv = both[:g.size].reshape(g.shape)
    wv = both[g.size - 7:g.size - 7 + w.size].reshape(w.shape)  # overlapping g's last 7 values
    gv_copy = gv.copy()
    assert numconv.conv_backprop_kernel(x, gv, w.shape, out=wv, **kw) is wv
    np.testing.assert_allclose(wv, numconv.conv_backprop_kernel(x, gv_copy, w.shape, **kw), rtol=1e-6, atol=1e-6)
    assert np.allclose(ref, numconv.conv_backprop_kernel(x, g, w.shape, **kw))


class _ArrayOf:
    """An array-like that is no ndarray but views one's memory (as a torch tensor does)."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a


@pytest.mark.parametrize("wrap", [memoryview, _ArrayOf])
def test_out_overlapping_an_input_given_as_another_array_like(wrap):
    """The overlap check sees through array-likes: ``x`` given as a memoryview or
    an ``__array__`` object over ``out``'s buffer (a ``torch.from_numpy`` view) was
    not an ndarray, so it went unchecked and Winograd and depthwise wrote into
    their own input (errors 44 and 7389)."""
    rng = np.random.default_rng(31)
    x = rng.standard_normal((1, 12, 12, 16)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 16, 16)) / 12).astype(np.float32)
    dk = rng.standard_normal((3, 3, 16, 1)).astype(np.float32)
    for call in (lambda a, out: numconv.conv2d(a, w, padding="same", method="winograd", out=out),
                 lambda a, out: numconv.depthwise_conv(a, dk, padding="same", out=out)):
        ref = call(x, None)
        buf = x.copy()
        assert call(wrap(buf), buf) is buf
        np.testing.assert_allclose(buf, ref, rtol=1e-6, atol=1e-6)


def test_big_endian_inputs_compute_natively():
    """'>f4' and '>f8' (from a file or a network buffer) are the same numbers: they
    had been rejected as if the dtype were unsupported."""
    x, w = _data((2, 9, 3), 33), _data((3, 3, 4), 34)
    for dt in (">f4", ">f8", ">f2", ">i4"):
        want = numconv.conv(x.astype(dt[1:]), w.astype(dt[1:]))
        got = numconv.conv(x.astype(dt), w.astype(dt))
        assert got.dtype == want.dtype and got.dtype.isnative
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(numconv.max_pool(x.astype(">f8"), 2), numconv.max_pool(x, 2))
    np.testing.assert_array_equal(numconv.depthwise_conv(x.astype(">f4"), w[:, :, :1].astype(">f4")),
                                  numconv.depthwise_conv(x.astype(np.float32), w[:, :, :1].astype(np.float32)))


# ----------------------------------------------------------------- NaN / Inf

NAN_CASES = [
    dict(xshape=(1, 11, 2), wshape=(3, 2, 3), pos=(0, 5, 1), kw=dict()),
    dict(xshape=(1, 11, 2), wshape=(3, 2, 3), pos=(0, 4, 0), kw=dict(dilation_rate=3, padding="same")),
    dict(xshape=(1, 12, 2), wshape=(2, 2, 3), pos=(0, 6, 0), kw=dict(strides=3, padding="causal")),
    dict(xshape=(1, 9, 2), wshape=(3, 2, 3), pos=(0, 1, 0), kw=dict(padding="same", padding_mode="reflect")),
    dict(xshape=(1, 9, 2), wshape=(3, 2, 3), pos=(0, 8, 0), kw=dict(padding="full", padding_mode="circular")),
    dict(xshape=(2, 7, 8, 2), wshape=(3, 2, 2, 4), pos=(1, 3, 4, 1),
         kw=dict(strides=2, dilation_rate=(1, 2), padding="same")),
    dict(xshape=(1, 7, 7, 4), wshape=(3, 3, 2, 4), pos=(0, 0, 6, 3),
         kw=dict(groups=2, padding="same", padding_mode="replicate")),
    dict(xshape=(1, 3, 6, 7), wshape=(2, 3, 3, 3), pos=(0, 2, 4, 6), kw=dict(data_format="channels_first", padding=1)),
    dict(xshape=(1, 5, 5, 5, 1), wshape=(2, 2, 2, 1, 2), pos=(0, 2, 2, 2, 0), kw=dict(dilation_rate=2, padding="same")),
]


@pytest.mark.parametrize("case", NAN_CASES, ids=[str(i) for i in range(len(NAN_CASES))])
def test_nan_propagates_to_exactly_its_receptive_field(case):
    x = _data(case["xshape"], 20)
    x[case["pos"]] = np.nan
    w = np.abs(_data(case["wshape"], 21)) + 0.5  # no zero weights
    got = numconv.conv(x, w, **case["kw"])
    ref = ref_conv(x, w, **case["kw"])
    assert np.isnan(ref).any() and not np.isnan(ref).all()  # the case is informative
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=repr(case))
    _close(np.where(np.isnan(ref), 0, got), np.where(np.isnan(ref), 0, ref))


def test_nan_at_a_position_no_output_reads_is_harmless():
    x = _data((1, 9, 1), 33)
    x[0, 5, 0] = np.nan  # stride 2, dilation 2, "valid": only even positions are read
    got = numconv.conv(x, _data((2, 1, 2), 34), strides=2, dilation_rate=2)
    assert got.shape == (1, 4, 2) and np.isfinite(got).all()


@pytest.mark.parametrize("case", NAN_CASES, ids=[str(i) for i in range(len(NAN_CASES))])
def test_inf_with_positive_kernel_gives_inf(case):
    x = _data(case["xshape"], 22)
    x[case["pos"]] = np.inf
    w = np.abs(_data(case["wshape"], 23)) + 0.5
    got = numconv.conv(x, w, **case["kw"])
    ref = ref_conv(x, w, **case["kw"])
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref), err_msg=repr(case))
    assert np.isposinf(ref).any() and np.isfinite(got[~np.isposinf(ref)]).all()


@pytest.mark.parametrize("activation", ["relu", "relu6", "sigmoid", "tanh", "leaky_relu",
                                        "hard_sigmoid", "elu", "gelu", "softplus"])
def test_nan_survives_activation(activation):
    x = _data((1, 9, 2), 24)
    x[0, 4, 0] = np.nan
    w = _data((3, 2, 3), 25)
    got = numconv.conv(x, w, activation=activation)
    assert np.isnan(got[0, 2:5]).all() and np.isfinite(got[0, [0, 1, 5, 6]]).all()


# ----------------------------------------------------------------- activations


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_activation_matches_reference(activation, dtype):
    x = (3 * _data((2, 10, 3), 26)).astype(dtype)
    w = _data((3, 3, 5), 27).astype(dtype)
    b = _data((5,), 28).astype(dtype)
    got = numconv.conv(x, w, b, padding="same", activation=activation)
    lin = ref_conv(x, w, b, padding="same")
    assert lin.min() < -3 and lin.max() > 3  # both branches of every piecewise form
    assert got.dtype == np.dtype(dtype)
    _close(got, ref_activation(activation, lin), dtype)


def _softplus64(v):
    return np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0)


_MORE_KERAS_ACTIVATIONS = {  # Keras 3's definitions, in float64 (softmax: over the last axis, as Keras's)
    "softmax": lambda v: np.exp(v) / np.exp(v).sum(-1, keepdims=True),
    "log_softmax": lambda v: v - np.log(np.exp(v).sum(-1, keepdims=True)),
    "mish": lambda v: v * np.tanh(_softplus64(v)),
    "hard_silu": lambda v: v * np.minimum(np.maximum(v + 3, 0), 6) / 6,
    "hard_swish": lambda v: v * np.minimum(np.maximum(v + 3, 0), 6) / 6,
    "hard_tanh": lambda v: np.minimum(np.maximum(v, -1), 1),
    "log_sigmoid": lambda v: -_softplus64(-v),
    "celu": lambda v: np.where(v > 0, v, np.exp(v) - 1),
    "tanh_shrink": lambda v: v - np.tanh(v),
    "hard_shrink": lambda v: np.where(np.abs(v) > 0.5, v, 0),
    "soft_shrink": lambda v: np.where(v > 0.5, v - 0.5, np.where(v < -0.5, v + 0.5, 0)),
    "squareplus": lambda v: (v + np.sqrt(v * v + 4)) / 2,
    "sparse_plus": lambda v: np.where(v <= -1, 0, np.where(v >= 1, v, (v + 1) ** 2 / 4)),
}


@pytest.mark.parametrize("activation", sorted(_MORE_KERAS_ACTIVATIONS))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_more_keras_activation_names(activation, data_format):
    """Keras 3 activations no kernel fuses, by name: applied to the result in the
    user's layout (softmax over its last axis whatever the format, as Keras's),
    in its dtype; in the layers too."""
    x = (3 * _data((2, 10, 6), 31)).astype(np.float32)
    w = _data((3, 6, 5), 32).astype(np.float32)
    if data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
    got = numconv.conv(x, w, padding="same", data_format=data_format, activation=activation)
    lin = ref_conv(x, w, padding="same", data_format=data_format)
    assert lin.min() < -3 and lin.max() > 3
    assert got.dtype == np.float32
    _close(got, _MORE_KERAS_ACTIVATIONS[activation](lin), "float32")
    layer = numconv.layers.Conv1D(5, 3, padding="same", activation=activation, data_format=data_format,
                                  input_shape=x.shape[1:])
    layer.set_weights([w, np.zeros(5, np.float32)])
    _close(layer(x), got, "float32")
    with pytest.raises(TypeError, match="activation"):
        numconv.conv(x.astype(np.complex64), w, data_format=data_format, activation=activation)


def test_callable_activation_is_applied():
    x, w = _data((2, 8, 3), 29), _data((3, 3, 2), 30)
    seen = []

    def act(y):
        seen.append(y.shape)
        return y * 2

    _close(numconv.conv(x, w, activation=act), 2 * ref_conv(x, w))
    _close(numconv.conv(x, w, activation=lambda y: y * 2), 2 * ref_conv(x, w))
    assert seen == [(2, 6, 2)]


def test_callable_activation_value_is_returned_as_keras_does():
    """The op returns ``f(y)`` itself (it was broadcast back into ``y``: None
    gave NaN everywhere, ``y[0]`` copied batch 0 over batch 1, a scalar filled
    the output), checked: None, another shape or, with ``out``, a dtype that does
    not cast raise and name the activation."""
    x, w = _data((2, 8, 3), 35), _data((3, 3, 2), 36)
    y = ref_conv(x, w)
    got = numconv.conv(x, w, activation=lambda v: (v * 2).astype(np.float32))
    assert got.dtype == np.float32  # as f returned it
    _close(got.astype(np.float64), 2 * y, "float32")
    out = np.empty(y.shape)
    assert numconv.conv(x, w, activation=lambda v: v + 1, out=out) is out
    _close(out, y + 1)
    for bad, err in ((lambda v: None, TypeError), (lambda v: v[0], ValueError), (lambda v: 1.0, ValueError),
                     (np.sum, ValueError)):
        with pytest.raises(err, match="activation"):
            numconv.conv(x, w, activation=bad)
        with pytest.raises(err, match="activation"):
            numconv.conv_transpose(x, w.transpose(0, 2, 1), activation=bad)
    with pytest.raises(TypeError, match="activation.*complex128"):
        numconv.conv(x, w, activation=lambda v: v * 1j, out=np.empty(y.shape))
    _close(numconv.conv(x, w, activation=lambda v: v * 1j), ref_conv(x, w) * 1j)


# ----------------------------------------------------------------- invalid arguments


def test_output_length_below_one_raises():
    x, w = np.ones((1, 4, 1)), np.ones((3, 1, 1))  # dilated kernel size 7 > 4
    with pytest.raises(ValueError) as info:
        numconv.conv(x, w, dilation_rate=3)
    assert "7" in str(info.value) and "4" in str(info.value)


@pytest.mark.parametrize("mode,pad", [("reflect", 4), ("reflect", (0, 5)), ("circular", 5)])
def test_padding_mode_limits_raise(mode, pad):
    x, w = np.ones((1, 4, 1)), np.ones((3, 1, 1))
    with pytest.raises(ValueError, match=mode):
        numconv.conv(x, w, padding=pad, padding_mode=mode)


def test_padding_mode_at_the_limit_is_allowed():
    x, w = _data((1, 4, 1), 31), _data((3, 1, 1), 32)
    for mode, pad in [("reflect", 3), ("circular", 4)]:
        _close(numconv.conv(x, w, padding=pad, padding_mode=mode),
               ref_conv(x, w, padding=pad, padding_mode=mode))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deferred_activations_match_the_fused_formulas(dtype):
    """The transcendental activations run after the kernels as NumPy passes
    (``act.apply_deferred``): the same values as the kernels' scalar ``activate``
    within 4 ulp (NumPy's SIMD exp/tanh and libm differ by an ulp or two), on
    both branches, huge and tiny inputs, +-0, +-inf and NaN, across chunk
    boundaries."""
    import numba

    from numconv._kernels import act

    @numba.njit
    def scalar(y, code):
        out = np.empty_like(y)
        for i in range(y.size):
            out[i] = act.activate(y[i], code)
        return out

    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 100.0, -100.0, 1e-30, -1e-30, 88.0, -88.0, 700.0, -700.0]
    y = np.concatenate([np.random.default_rng(0).standard_normal(3 * act._CHUNK + 5) * 6, special]).astype(dtype)
    for code in sorted(act.DEFERRED):
        with np.errstate(all="ignore"):
            ref = scalar(y, code)
            got = y.copy()
            act.apply_deferred(got, code)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        finite = np.isfinite(ref)
        np.testing.assert_array_equal(got[~finite], ref[~finite])
        np.testing.assert_array_max_ulp(got[finite], ref[finite], maxulp=4)


@pytest.mark.parametrize("method", ["direct", "fft", "winograd"])
def test_deferred_activation_on_every_path(method):
    x = _data((2, 12, 11, 4), 31)
    w = _data((3, 3, 4, 6), 32)
    b = _data((6,), 33)
    lin = ref_conv(x, w, b, padding="same")
    for activation in ("tanh", "swish", "selu"):
        _close(numconv.conv(x, w, b, padding="same", activation=activation, method=method),
               ref_activation(activation, lin))
    y = numconv.conv_transpose(x, w.transpose(0, 1, 3, 2), b, strides=2, padding="same", activation="sigmoid")
    _close(y, 1 / (1 + np.exp(-numconv.conv_transpose(x, w.transpose(0, 1, 3, 2), b, strides=2, padding="same"))))


def test_hard_silu_does_not_overflow_before_keras_does():
    """``x * hard_sigmoid(x)`` as Keras computes it: ``y * clip(y + 3, 0, 6) / 6``
    overflowed to inf past 5.7e37 in float32."""
    x = np.full((1, 3, 1), 1e38, np.float32)
    y = numconv.conv1d(x, np.ones((1, 1, 1), np.float32), activation="hard_silu")
    assert np.isfinite(y).all() and np.allclose(y, 1e38)
