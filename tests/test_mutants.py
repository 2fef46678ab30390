"""Tests added by a mutation-testing audit: each pins down behaviour that a
surviving mutant of the Python-level code changed without any other test failing.
Every expected value comes from an independent source (a NumPy loop, SciPy, the
Keras formula written out, or torch), never from numconv itself."""
import numpy as np
import pytest
import scipy.signal

import numconv
from numconv import layers
from numconv import signal as nsignal


# ---------------------------------------------------------------- references

def ref_conv1d(x, w, b=None, stride=1, pad=(0, 0)):
    """Channels-last 1-D cross-correlation by loops. x (N, L, C), w (K, C, F)."""
    x = np.pad(x, ((0, 0), pad, (0, 0)))
    n, L, c = x.shape
    k, _, f = w.shape
    out = (L - k) // stride + 1
    y = np.zeros((n, out, f), np.result_type(x, w))
    for i in range(out):
        for t in range(k):
            y[:, i, :] += x[:, i * stride + t, :] @ w[t]
    if b is not None:
        y = y + b
    return y


def ref_conv_transpose1d(x, w, stride=1):
    """Keras Conv1DTranspose "valid", output_padding=None, by scattering:
    x (N, L, Cin), w (K, F, Cin); length (L - 1) * s + max(K, s)."""
    n, L, cin = x.shape
    k, f, _ = w.shape
    out = (L - 1) * stride + max(k, stride)
    y = np.zeros((n, out, f), np.result_type(x, w))
    for i in range(L):
        for t in range(k):
            y[:, i * stride + t, :] += x[:, i, :] @ w[t].T
    return y


KERAS_ACTIVATIONS = {  # keras.activations in NumPy (Keras 3 definitions)
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "tanh": np.tanh,
    "elu": lambda v: np.where(v > 0, v, np.expm1(v)),
    "selu": lambda v: 1.0507009873554804934193349852946 * np.where(
        v > 0, v, 1.6732632423543772848170429916717 * np.expm1(v)),
    "softplus": lambda v: np.logaddexp(v, 0),
    "swish": lambda v: v / (1 + np.exp(-v)),
    "exponential": np.exp,
}


# ---------------------------------------------------------------- activations (numconv/_spec.py)

def test_hard_shrink_threshold_is_strict():
    # keras.activations.hard_shrink: x if |x| > 0.5 else 0, so exactly +-0.5 -> 0
    # (mutant: np.abs(y) >= 0.5 kept them).
    x = np.array([0.5, -0.5, 0.75, -0.25], np.float64).reshape(1, 4, 1)
    y = numconv.conv1d(x, np.ones((1, 1, 1)), activation="hard_shrink")
    np.testing.assert_array_equal(y[0, :, 0], [0.0, 0.0, 0.75, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_of_large_outputs_stay_finite(dtype):
    # Keras's softmax subtracts the maximum first: outputs of ~1000 must give
    # finite probabilities, not exp overflow -> inf / inf = NaN (mutant: np.exp(y)).
    x = np.array([[1000.0, 999.0], [998.0, 1001.0], [-5.0, 3.0]], dtype).reshape(1, 3, 2)
    w = np.eye(2, dtype=dtype).reshape(1, 2, 2)
    v = x[0].astype(np.float64)
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    expected = e / e.sum(axis=-1, keepdims=True)
    y = numconv.conv1d(x, w, activation="softmax")
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y[0], expected, rtol=1e-6)
    ly = numconv.conv1d(x, w, activation="log_softmax")
    assert np.isfinite(ly).all()
    np.testing.assert_allclose(ly[0], np.log(expected), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- conv_transpose (numconv/_adjoint.py)

def test_conv_transpose_result_dtype_includes_the_bias():
    # API.md: the result dtype is NumPy's promotion of x, kernel and bias
    # (mutant: the bias dtype was left out, float32 came back).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2)).astype(np.float32)
    b = np.array([0.1, 0.2, 0.3], np.float64)
    y = numconv.conv_transpose(x, w, b, strides=2)
    assert y.dtype == np.float64
    expected = ref_conv_transpose1d(x.astype(np.float64), w.astype(np.float64), 2) + b
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(KERAS_ACTIVATIONS))
def test_conv_transpose_applies_deferred_activations(name):
    # sigmoid, tanh, elu, selu, softplus, swish and exponential are not fused into
    # the kernels; conv_transpose must still apply them (mutant: never applied).
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3))
    w = rng.standard_normal((3, 4, 3)) * 0.5
    b = rng.standard_normal(4) * 0.1
    y = numconv.conv_transpose(x, w, b, strides=2, activation=name)
    expected = KERAS_ACTIVATIONS[name](ref_conv_transpose1d(x, w, 2) + b)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- layers' output shapes (numconv/layers)

@pytest.mark.parametrize("cls,shape,expected", [
    (layers.GlobalAveragePooling2D, (None, 3, 5, 7), (None, 3, 1, 1)),
    (layers.GlobalMaxPooling1D, (None, 4, 9), (None, 4, 1)),
    (layers.GlobalMaxPooling3D, (None, 2, 3, 4, 5), (None, 2, 1, 1, 1)),
])
def test_global_pooling_keepdims_channels_first_output_shape(cls, shape, expected):
    # Keras keeps the channel axis second for channels_first (mutant: channels last).
    layer = cls(data_format="channels_first", keepdims=True)
    assert layer.compute_output_shape(shape) == expected
    x = np.ones((2,) + shape[1:])
    assert layer(x).shape == (2,) + expected[1:]


@pytest.mark.parametrize("k,s,op,L", [(4, 2, 1, 5), (2, 3, 2, 4), (6, 4, 3, 3), (3, 2, 1, 5)])
def test_conv_transpose_layer_same_output_padding_shape(k, s, op, L):
    # Keras's deconv_output_length for "same" with output_padding:
    # (L - 1) * s + k - 2 * (k // 2) + output_padding (mutant: (k - 1) // 2, wrong
    # for even kernels).
    layer = layers.Conv1DTranspose(2, k, strides=s, padding="same", output_padding=op)
    expected = (L - 1) * s + k - 2 * (k // 2) + op
    assert layer.compute_output_shape((None, L, 3)) == (None, expected, 2)
    assert layer(np.ones((1, L, 3))).shape == (1, expected, 2)


# ---------------------------------------------------------------- signal (numconv/signal.py)

@pytest.mark.parametrize("dtype", [np.longdouble, np.clongdouble])
@pytest.mark.parametrize("method", ["direct", "auto"])
def test_signal_long_double_inputs_work_as_in_scipy(dtype, method):
    # SciPy convolves long double inputs and keeps their dtype; numconv computes
    # them in double precision (mutant: handed them to the kernels, TypeError).
    if np.dtype(dtype).itemsize <= 8 or np.dtype(dtype).itemsize <= 16 and np.dtype(dtype).kind == "c":
        pytest.skip("long double is double precision on this platform")
    a = np.arange(1, 8).astype(dtype)
    b = np.array([1, -2, 3]).astype(dtype)
    y = nsignal.convolve(a, b, method=method)
    expected = scipy.signal.convolve(a, b, method="direct")
    assert y.dtype == expected.dtype
    np.testing.assert_allclose(y.astype(np.complex128), expected.astype(np.complex128), rtol=1e-12)


def test_signal_repeated_axes_raise():
    # scipy.signal.fftconvolve raises ValueError for a repeated axis
    # (mutant: the check removed).
    a, b = np.ones((4, 5)), np.ones((2, 3))
    with pytest.raises(ValueError):
        scipy.signal.fftconvolve(a, b, axes=[1, 1])
    with pytest.raises(ValueError, match="axes"):
        nsignal.convolve(a, b, axes=[1, 1])
    with pytest.raises(ValueError, match="axes"):
        nsignal.convolve(a, b, axes=[1, -1])


@pytest.mark.parametrize("method", ["fft", "oa"])
def test_signal_uint64_results_past_2_to_the_63_on_transform_paths(method):
    # 3 * 2**62 is a uint64 (and an exact float64); SciPy's direct path gives it
    # exactly. The transform paths must not cast it through int64 (mutant: INT_MIN).
    a = np.array([3 * 2**61, 0], np.uint64)
    b = np.array([2, 0], np.uint64)
    expected = scipy.signal.convolve(a, b, method="direct")
    assert expected[0] == 3 * 2**62
    y = nsignal.convolve(a, b, method=method)
    assert y.dtype == np.uint64
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("fn", ["convolve", "correlate"])
def test_signal_bool_times_large_int64_is_exact(fn):
    # bool x int64 partial sums past 2**53 went through float64 (``_needs_exact``
    # skipped any bool input), rounding SciPy's exact integer result
    a = np.array([True, True])
    b = np.array([2**60 + 1, 1], np.int64)
    expected = getattr(scipy.signal, fn)(a, b, method="direct")
    y = getattr(nsignal, fn)(a, b)
    assert y.dtype == expected.dtype == np.int64
    np.testing.assert_array_equal(y, expected)


# ---------------------------------------------------------------- pooling geometry (numconv/_pool.py)

@pytest.mark.parametrize("pool_size", [2**30, 2**31 - 1])
@pytest.mark.parametrize("strides", [1, 3])
def test_huge_same_pool_is_a_global_pool(pool_size, strides):
    # A "same" window far larger than the input covers all of it (padding is never
    # pooled): a global pool repeated ceil(L / s) times (mutant: the window was not
    # cut to the input, and the kernel's row buffer of 2**31 pixels failed).
    x = np.random.default_rng(0).standard_normal((2, 8, 3))
    n = -(-8 // strides)
    for op, ref in ((numconv.max_pool, np.max), (numconv.average_pool, np.mean)):
        y = op(x, pool_size, strides, "same")
        expected = np.repeat(ref(x, axis=1, keepdims=True), n, axis=1)
        np.testing.assert_allclose(y, expected, rtol=1e-12)


# ------------------------------------------------------- FFT path's kept kernel spectra (numconv/_paths/fft.py)

def test_fft_kept_spectrum_is_not_reused_across_dilations():
    # With "valid" padding the transform size does not depend on the dilation, so
    # the same kernel at dilation 1 and 2 must not share a kept spectrum
    # (mutant: the dilation left out of the cache key).
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 40, 2))
    w = rng.standard_normal((3, 2, 2))
    for d in (1, 2, 1, 3):
        y = numconv.conv1d(x, w, dilation_rate=d, method="fft")
        wd = np.zeros((d * 2 + 1, 2, 2))
        wd[::d] = w
        np.testing.assert_allclose(y, ref_conv1d(x, wd), rtol=1e-9, atol=1e-9)


def test_fft_kept_spectrum_is_not_reused_across_groups():
    # The same (k, Cg, F) kernel used with groups=1 (Cg input channels) and
    # groups=2 (2 * Cg input channels) must not share a kept spectrum
    # (mutant: groups left out of the cache key).
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 2, 4))
    for g in (1, 2, 1):
        x = rng.standard_normal((1, 30, 2 * g))
        y = numconv.conv1d(x, w, groups=g, method="fft")
        parts = [ref_conv1d(x[..., 2 * i:2 * i + 2], w[..., (4 // g) * i:(4 // g) * (i + 1)]) for i in range(g)]
        np.testing.assert_allclose(y, np.concatenate(parts, axis=-1), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- argument checks (numconv/_spec.py)

def test_zero_channel_input_is_a_value_error():
    # API.md: bad input raises ValueError naming the argument (mutant: the check
    # removed, groups was inferred as 0 and a ZeroDivisionError escaped).
    with pytest.raises(ValueError, match="channel"):
        numconv.conv1d(np.ones((1, 5, 0)), np.ones((3, 1, 2)))


# ---------------------------------------------------------------- layers' weight protocol (numconv/layers/_base.py)

def test_set_weights_refuses_complex_arrays():
    layer = layers.Conv1D(2, 3)
    with pytest.raises(TypeError, match="real"):
        layer.set_weights([np.ones((3, 1, 2), np.complex128), np.zeros(2)])


def test_non_trainable_layer_has_no_trainable_weights():
    # Keras: trainable=False moves every weight to non_trainable_weights.
    layer = layers.Conv1D(2, 3, trainable=False, input_shape=(10, 1))
    assert layer.trainable_weights == []
    assert len(layer.non_trainable_weights) == 2


def test_layer_seed_gives_each_weight_its_own_draws():
    # A layer's seed= seeds each named initializer it creates; the kernel and the
    # bias must not get the same random stream (mutant: every weight seeded alike,
    # kernel (1, 1, 4) == bias (4,)).
    layer = layers.Conv1D(4, 1, kernel_initializer="random_normal", bias_initializer="random_normal",
                          seed=7, input_shape=(5, 1))
    kernel, bias = layer.get_weights()
    assert not np.allclose(kernel.reshape(-1), bias)


# ------------------------------------------------------- option strings are case-insensitive (numconv/_spec.py)

@pytest.mark.parametrize("fmt", ["Channels_Last", "CHANNELS_FIRST"])
def test_data_format_is_case_insensitive(fmt):
    # Keras's standardize_data_format lowercases; numconv validates case-insensitively,
    # so it must also compute with the lowercased value (mutant: the raw string
    # was kept, and "CHANNELS_FIRST" returned a channels-last shaped result).
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 9, 3))
    w = rng.standard_normal((3, 3, 4))
    expected = ref_conv1d(x, w)
    if fmt.lower() == "channels_first":
        y = numconv.conv1d(x.transpose(0, 2, 1), w, data_format=fmt).transpose(0, 2, 1)
    else:
        y = numconv.conv1d(x, w, data_format=fmt)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)


def test_padding_string_is_case_insensitive():
    # Keras lowercases padding ("SAME" is TensorFlow's spelling).
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 8, 2))
    w = rng.standard_normal((4, 2, 3))
    same = ref_conv1d(x, w, pad=(1, 2))  # k=4, s=1: total 3, before 1, after 2
    np.testing.assert_allclose(numconv.conv1d(x, w, padding="SAME"), same, rtol=1e-10, atol=1e-12)
    causal = ref_conv1d(x, w, pad=(3, 0))
    np.testing.assert_allclose(numconv.conv1d(x, w, padding="Causal"), causal, rtol=1e-10, atol=1e-12)


def test_padding_mode_and_method_are_case_insensitive():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 7, 2))
    w = rng.standard_normal((3, 2, 2))
    xt = torch.nn.functional.pad(torch.tensor(x.transpose(0, 2, 1)), (2, 2), mode="reflect")
    expected = torch.nn.functional.conv1d(xt, torch.tensor(w.transpose(2, 1, 0))).numpy().transpose(0, 2, 1)
    for mode, method in (("Reflect", "direct"), ("REFLECT", "FFT"), ("reflect", "Direct")):
        y = numconv.conv1d(x, w, padding=2, padding_mode=mode, method=method)
        np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9)


def test_conv_transpose_zero_length_kernel_is_a_value_error():
    with pytest.raises(ValueError, match="kernel"):
        numconv.conv_transpose(np.ones((1, 4, 1)), np.ones((0, 2, 1)))
