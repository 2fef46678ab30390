"""Bad input raises ValueError/TypeError whose text names the argument, what was
received, what was expected and the fix; NaN/Inf propagate; inputs stay intact."""
import re

import numpy as np
import pytest

import numconv

X1 = np.ones((2, 10, 4))
W1 = np.ones((3, 4, 8))
X2 = np.ones((2, 12, 12, 4))
W2 = np.ones((3, 3, 4, 8))


def test_conv1d_2d_input_suggests_reshape():
    with pytest.raises(ValueError) as e:
        numconv.conv1d(np.ones((1, 56)), np.ones((3, 1, 64)))
    msg = str(e.value)
    assert "3-D input" in msg and "(batch, steps, channels)" in msg
    assert "(1, 56)" in msg
    assert "x.reshape(1, 56, 1)" in msg


def test_missing_batch_axis_suggests_adding_it():
    with pytest.raises(ValueError, match=r"got shape \(56, 4\).*x\.reshape\(1, 56, 4\)"):
        numconv.conv1d(np.ones((56, 4)), W1)
    with pytest.raises(ValueError, match=r"4-D input.*x\.reshape\(1, 28, 28, 1\)"):
        numconv.conv2d(np.ones((28, 28)), np.ones((3, 3, 1, 8)))


def test_channels_first_image_under_channels_last_names_sizes_and_fix():
    with pytest.raises(ValueError) as e:
        numconv.conv2d(np.ones((8, 1, 28, 28)), np.ones((5, 5, 1, 32)))
    msg = str(e.value)
    assert "size 1" in msg
    assert "dilated kernel size 5" in msg
    assert 'data_format="channels_first"' in msg


def test_empty_output_names_axis_padded_size_and_dilated_kernel():
    with pytest.raises(ValueError, match=r"spatial axis 1 \(width\).*padded size 6.*dilated kernel size 7"):
        numconv.conv2d(np.ones((1, 9, 4, 2)), np.ones((3, 3, 2, 2)), dilation_rate=3, padding=((0, 0), (1, 1)))


def test_channel_mismatch():
    with pytest.raises(ValueError, match=r"divisible by the kernel's in_channels // groups = 3.*got 4 channels"):
        numconv.conv2d(X2, np.ones((3, 3, 3, 8)))
    # channels-first data under channels_last, with the kernel's channels on axis 1
    with pytest.raises(ValueError, match=r'got 32 channels.*data_format="channels_first"'):
        numconv.conv2d(np.ones((2, 3, 32, 32)), np.ones((3, 3, 3, 8)))
    with pytest.raises(ValueError, match=r'channels on the second axis.*data_format="channels_last"'):
        numconv.conv2d(np.ones((2, 32, 32, 3)), np.ones((3, 3, 3, 8)), data_format="channels_first")


@pytest.mark.parametrize("groups, kernel, pattern", [
    (3, np.ones((3, 3, 2, 8)), r"groups must divide the input channels \(4\); got 3"),
    (2, np.ones((3, 3, 2, 9)), r"groups must divide the number of filters \(9"),
    (4, np.ones((3, 3, 2, 8)), r"groups \* 2 = 8 channels for groups=4"),
    (0, np.ones((3, 3, 4, 8)), r"groups must be >= 1; got 0"),
])
def test_bad_groups(groups, kernel, pattern):
    with pytest.raises(ValueError, match=pattern):
        numconv.conv2d(X2, kernel, groups=groups)


def test_groups_type():
    with pytest.raises(TypeError, match="groups must be a positive int or None; got 2.0"):
        numconv.conv2d(X2, np.ones((3, 3, 2, 8)), groups=2.0)


@pytest.mark.parametrize("arg", ["strides", "dilation_rate"])
@pytest.mark.parametrize("value", [0, -1, (1, 0), (2, -3)])
def test_nonpositive_strides_and_dilation(arg, value):
    with pytest.raises(ValueError, match=re.escape(f"{arg} must have every entry >= 1; got {value!r}")):
        numconv.conv2d(X2, W2, **{arg: value})


@pytest.mark.parametrize("arg", ["strides", "dilation_rate"])
def test_wrong_length_or_type_of_strides(arg):
    with pytest.raises(ValueError, match=rf"{arg} must be an int or a tuple of 2 ints"):
        numconv.conv2d(X2, W2, **{arg: (1, 1, 1)})
    with pytest.raises(TypeError, match=rf"{arg} must be an int or a tuple of 2 ints; got 1.5"):
        numconv.conv2d(X2, W2, **{arg: 1.5})


def test_unknown_padding_lists_options():
    with pytest.raises(ValueError, match=r"unknown padding 'sme'; expected one of 'valid', 'same', 'causal', 'full'"):
        numconv.conv2d(X2, W2, padding="sme")
    with pytest.raises(ValueError, match=r"padding must be one of .*got \(1, 2, 3\)"):
        numconv.conv2d(X2, W2, padding=(1, 2, 3))
    with pytest.raises(ValueError, match=r"all >= 0; got -1"):
        numconv.conv2d(X2, W2, padding=-1)


def test_unknown_padding_mode_lists_options():
    with pytest.raises(ValueError, match=r"unknown padding_mode 'mirror'; expected one of 'zeros', 'reflect', "
                                         r"'replicate', 'circular'"):
        numconv.conv2d(X2, W2, padding_mode="mirror")


def test_padding_mode_limits():
    with pytest.raises(ValueError, match=r"smaller than the input size 10 .*reflect.*got pads \(10, 10\)"):
        numconv.conv1d(X1, W1, padding=10, padding_mode="reflect")
    numconv.conv1d(X1, W1, padding=9, padding_mode="reflect")  # pad < L is fine
    numconv.conv1d(X1, W1, padding=10, padding_mode="circular")  # pad <= L is fine
    with pytest.raises(ValueError, match=r"at most the input size 10 .*circular.*got pads \(11, 11\)"):
        numconv.conv1d(X1, W1, padding=11, padding_mode="circular")


def test_causal_only_rank1():
    with pytest.raises(ValueError, match=r'padding "causal" is defined for rank-1.*rank-2'):
        numconv.conv2d(X2, W2, padding="causal")
    with pytest.raises(ValueError, match=r"rank-3"):
        numconv.conv3d(np.ones((1, 4, 4, 4, 1)), np.ones((2, 2, 2, 1, 1)), padding="causal")


@pytest.mark.parametrize("bad", [np.array([[["a"]]]), np.ones((2, 10, 4), dtype=object), [[["x", 1]]]])
def test_non_numeric_dtypes_raise_typeerror(bad):
    with pytest.raises(TypeError, match=r"conv1d: x must have a numeric dtype"):
        numconv.conv1d(bad, W1)
    with pytest.raises(TypeError, match=r"conv1d: kernel must have a numeric dtype"):
        numconv.conv1d(X1, np.asarray(W1, dtype=object))


def test_longdouble_is_not_truncated_silently():
    with pytest.raises(TypeError, match=r"x must have dtype float32, float64, complex64 or complex128.*astype"):
        numconv.conv1d(X1.astype(np.longdouble), W1)


def test_ragged_list():
    with pytest.raises(TypeError, match="x must be a numeric array-like"):
        numconv.conv1d([[[1.0], [2.0, 3.0]]], W1)


def test_kernel_rank_and_shape():
    with pytest.raises(ValueError, match=r"conv: kernel must be 3-D, 4-D or 5-D.*got shape \(4, 8\)"):
        numconv.conv(X1, np.ones((4, 8)))
    with pytest.raises(ValueError, match=r"conv2d: kernel must be 4-D"):
        numconv.conv2d(X2, W1)
    with pytest.raises(ValueError, match=r"zero-length axis"):
        numconv.conv1d(X1, np.ones((3, 4, 0)))


def test_bias_shape():
    with pytest.raises(ValueError, match=r"bias must have shape \(8,\), one value per filter; got shape \(3,\)"):
        numconv.conv1d(X1, W1, np.ones(3))


def test_unknown_options():
    with pytest.raises(ValueError,
                       match=r"unknown data_format 'NHWC'; expected one of 'channels_last', 'channels_first'"):
        numconv.conv2d(X2, W2, data_format="NHWC")
    with pytest.raises(ValueError, match=r"unknown activation 'rlu'; expected one of 'linear', 'relu'"):
        numconv.conv2d(X2, W2, activation="rlu")
    with pytest.raises(TypeError, match=r"activation must be None, an activation name or a callable; got 3"):
        numconv.conv2d(X2, W2, activation=3)
    with pytest.raises(ValueError, match=r"unknown method 'fast'; expected one of 'auto', 'direct', 'fft'"):
        numconv.conv2d(X2, W2, method="fast")


def test_out_validation():
    with pytest.raises(TypeError, match=r"out must have the result dtype float64; got dtype float32"):
        numconv.conv1d(X1, W1, out=np.empty((2, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"out must have the result shape \(2, 8, 8\); got shape \(2, 8, 7\)"):
        numconv.conv1d(X1, W1, out=np.empty((2, 8, 7)))
    with pytest.raises(TypeError, match=r"out must be a numpy.ndarray; got list"):
        numconv.conv1d(X1, W1, out=[])
    ro = np.empty((2, 8, 8))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="out must be writable"):
        numconv.conv1d(X1, W1, out=ro)


def test_errors_are_raised_before_any_work_on_huge_bad_input():
    # Validation happens on shapes only: a bad stride is reported without touching data.
    x = np.broadcast_to(np.float64(1), (1, 10**6, 10**3))
    with pytest.raises(ValueError, match="strides"):
        numconv.conv1d(x, np.ones((3, 10**3, 2)), strides=0)


def test_nan_and_inf_propagate_like_plain_arithmetic():
    x = np.zeros((1, 12, 1))
    x[0, 5, 0] = np.nan
    x[0, 9, 0] = np.inf
    y = numconv.conv1d(x, np.ones((3, 1, 1)), padding="same")[0, :, 0]
    assert np.isnan(y[4:7]).all()
    assert np.isfinite(y[:4]).all() and np.isfinite(y[11:]).all()
    assert (y[8:11] == np.inf).all() and y[7] == 0
    # relu keeps NaN (as tf.nn.relu and torch.relu do); a fastmath build would turn it into 0
    r = numconv.conv1d(x, np.ones((3, 1, 1)), padding="same", activation="relu")[0, :, 0]
    assert np.isnan(r[4:7]).all()
    assert np.isnan(numconv.conv1d(x.astype(np.float32), np.ones((3, 1, 1), np.float32),
                                   activation="sigmoid")[0, 4, 0])
    # Inf - Inf = NaN, as in NumPy
    z = numconv.conv1d(np.full((1, 3, 1), np.inf), np.array([1.0, -1.0, 1.0]).reshape(3, 1, 1))
    assert np.isnan(z).all()


def test_fft_path_spreads_nan_as_documented_and_direct_keeps_it_local():
    x = np.zeros((1, 32, 1))
    x[0, 5, 0] = np.nan
    w = np.ones((3, 1, 1))
    direct = numconv.conv1d(x, w, method="direct")[0, :, 0]
    assert np.isnan(direct[3:6]).all() and np.isfinite(np.delete(direct, [3, 4, 5])).all()
    assert np.isnan(numconv.conv1d(x, w, method="fft")).all()


def test_remembered_specs_do_not_conflate_equal_arguments():
    """Specs are remembered per arguments (``_spec.spec_from_shapes``): a valid
    call first must not let an argument that compares equal to it but is invalid
    (``True == 1``, ``1.0 == 1``) through, nor the reverse."""
    for arg, valid, invalid in (("strides", 1, True), ("dilation_rate", 1, 1.0), ("groups", 1, True)):
        numconv.conv1d(X1, W1, **{arg: valid})
        with pytest.raises(TypeError, match=arg):
            numconv.conv1d(X1, W1, **{arg: invalid})
    numconv.conv1d(X1, W1, strides=(1,))
    numconv.conv1d(X1, W1, padding=[(1, 1)])  # a list: remembered under its own key
    np.testing.assert_array_equal(numconv.conv1d(X1, W1, padding=[(1, 1)]), numconv.conv1d(X1, W1, padding=((1, 1),)))


def test_a_callable_activation_is_used_not_remembered():
    first = numconv.conv1d(X1, W1, activation=lambda v: v + 1)
    second = numconv.conv1d(X1, W1, activation=lambda v: v + 2)
    np.testing.assert_array_equal(second - first, np.ones_like(first))


def test_per_spec_memo_is_keyed_by_spec_and_arguments():
    """``_spec.per_spec`` remembers a function of a spec on the spec itself, per
    extra arguments: a thread count or a layout flag must not be answered from
    another one's entry, a replaced spec starts empty, and the memo changes
    neither equality nor hashing."""
    import dataclasses

    from numconv._paths import direct
    from specs import spec_of

    x = np.zeros((1, 2, 400, 3), np.float32)
    spec = spec_of(x, np.zeros((3, 3, 3, 16), np.float32), padding="same")
    twin = spec_of(x.copy(), np.zeros((3, 3, 3, 16), np.float32), padding="same")
    chunks = [direct.w_chunk(spec, 8, t) for t in (1, 2, 1, 2)]
    assert chunks[0] != chunks[1] and chunks[:2] == chunks[2:]
    cf = direct._terms_plan(spec, True, True)
    cl = direct._terms_plan(spec, False, True)
    assert cf[2] == (3 * 4 * 402, 4 * 402, 4 * 402, 402, 1) and cl[2] == (4 * 402 * 3, 1, 4 * 402 * 3, 402 * 3, 3)
    assert direct._terms_plan(spec, False, False)[1][-1] == 400  # the unpadded input (the long kernel's)
    assert spec == twin and hash(spec) == hash(twin)
    wider = dataclasses.replace(spec, in_spatial=(1, 2, 800), out_spatial=(1, 2, 800))
    assert direct._terms_plan(wider, False, True)[1][-1] == 802


def test_overlap_save_keeps_nan_in_its_blocks():
    """"oa" spreads a NaN of ``x`` over the output blocks whose input segment holds
    it, not over the whole output as "fft" does (its docstring said "the same NaN
    behaviour"); one in the kernel reaches every output."""
    x = np.ones((1, 4000, 1))
    x[0, 2000, 0] = np.nan
    w = np.ones((9, 1, 1))
    y = numconv.conv(x, w, padding="same", method="oa")
    nan = np.isnan(y[0, :, 0])
    assert nan[1996:2005].all() and 0 < nan.sum() < y.size // 2
    assert not nan[:100].any() and not nan[-100:].any()
    assert np.isnan(numconv.conv(x, w, padding="same", method="fft")).all()
    w[4] = np.nan
    assert np.isnan(numconv.conv(np.ones((1, 4000, 1)), w, padding="same", method="oa")).all()


@pytest.mark.parametrize("arg, value", [("strides", True), ("strides", (True,)), ("dilation_rate", (np.True_,)),
                                        ("padding", True), ("padding", (True, False)), ("groups", True)])
def test_bools_are_not_integers(arg, value):
    """``strides=(True,)``, ``padding=(True, False)``, ... are slips, not 1 and 0: they
    were read as integers inside tuples (only a bare ``True`` was refused)."""
    with pytest.raises(TypeError, match=arg):
        numconv.conv1d(X1, W1, **{arg: value})


def test_bools_are_not_integers_in_the_other_ops():
    with pytest.raises(TypeError, match="output_padding"):
        numconv.conv_transpose(X1, W1.transpose(0, 2, 1), strides=2, output_padding=(True,))
    with pytest.raises(TypeError, match="input_shape"):
        numconv.conv_backprop_input(np.ones((2, 8, 8)), W1, (2, True, 4))
    with pytest.raises(TypeError, match="pool_size"):
        numconv.max_pool(X1, (True,))
    with pytest.raises(TypeError, match="set_num_threads"):
        numconv.set_num_threads(True)
    with pytest.raises(TypeError, match="axes"):
        numconv.signal.convolve(np.ones((3, 4)), np.ones((1, 2)), axes=True)


@pytest.mark.parametrize("call", [
    lambda: numconv.conv1d(X1, W1, strides=10 ** 30),
    lambda: numconv.conv1d(X1, W1, dilation_rate=2 ** 61, padding="same"),
    lambda: numconv.conv1d(X1, W1, padding=2 ** 62),
    lambda: numconv.max_pool(X1, 2, strides=2 ** 64, padding="same"),
    lambda: numconv.max_pool(X1, 2 ** 31, padding="same"),
    lambda: numconv.conv_backprop_input(np.ones((2, 8, 8)), W1, (2, 2 ** 40, 4)),
])
def test_integer_arguments_past_int32_raise_value_error(call):
    """Values no layer has (they surfaced as Numba TypingErrors, SciPy's "target
    length too large" or NumPy's dimension errors) are refused up front."""
    with pytest.raises(ValueError, match="2\\*\\*31 - 1"):
        call()


def test_huge_but_legal_windows_stay_cheap():
    """A "same" pool_size far past the input is a global pool (the kernel had
    allocated a row buffer of the whole window per task: a MemoryError inside
    Numba, raised as SystemError), and a dilation past the output takes the
    direct kernel, not 2**40 Winograd tiles (it ran for minutes)."""
    x = np.random.default_rng(5).standard_normal((2, 8, 9, 3))
    for fmt, axes in (("channels_last", (1, 2)), ("channels_first", (2, 3))):
        xf = x if fmt == "channels_last" else x.transpose(0, 3, 1, 2)
        big = numconv.max_pool(xf, 2 ** 30, strides=8, padding="same", data_format=fmt)  # 1 x 2 outputs
        np.testing.assert_array_equal(big, np.broadcast_to(xf.max(axis=axes, keepdims=True), big.shape))
        avg = numconv.average_pool(xf, (2 ** 30, 3), padding="same", data_format=fmt)
        np.testing.assert_allclose(avg, numconv.average_pool(xf, (20, 3), padding="same", data_format=fmt))
    w = np.random.default_rng(6).standard_normal((3, 3, 3, 4))
    for d in (2 ** 20, 2 ** 30):
        got = numconv.conv2d(x, w, dilation_rate=d, padding="same", method="winograd")
        np.testing.assert_allclose(got, np.einsum("nhwc,cf->nhwf", x, w[1, 1]), rtol=1e-12)


def test_depthwise_hints_read_the_users_kernel():
    """The hints and shape errors of depthwise and separable convs name the
    user's kernel (*k, C, M), not the grouped (*k, 1, C*M) it becomes: one series
    of 8 steps x 3 channels was told to reshape to (8, 3, 1), and a (3, 0, 2)
    kernel was reported as (3, 1, 0)."""
    for call in (lambda x, k: numconv.depthwise_conv(x, k),
                 lambda x, k: numconv.separable_conv(x, k, np.ones((1, 6, 4)))):
        with pytest.raises(ValueError, match=r"got shape \(8, 3\)\. For a single example add a batch axis: "
                                             r"x\.reshape\(1, 8, 3\)\.$"):
            call(np.ones((8, 3)), np.ones((3, 3, 2)))
        with pytest.raises(ValueError, match=r"zero-length axis.*got shape \(3, 0, 2\)"):
            call(np.ones((1, 8, 3)), np.ones((3, 0, 2)))


def test_inferred_groups_that_do_not_divide_filters_name_the_kernel():
    """No ``groups`` given: the count is inferred from x's channels over the
    kernel's, and the message says so (it had blamed a ``groups`` of 2 the
    caller never passed)."""
    with pytest.raises(ValueError, match=r"kernel must have filters divisible by groups = 2, the count inferred "
                                         r"from x's 2 channels.*shape \(3, 2, 1\)"):
        numconv.conv_backprop_kernel(np.ones((1, 4, 2)), np.ones((1, 2, 1)), (3, 1, 1))
    with pytest.raises(ValueError, match=r"inferred from x's 4 channels.*shape \(3, 3, 4, 3\)"):
        numconv.conv2d(np.ones((1, 5, 5, 4)), np.ones((3, 3, 2, 3)))


def test_channels_first_separable_errors_show_x_as_given():
    """The channels_first separable conv's errors show ``x`` as the user laid it
    out (the channels-last fallback reported it transposed, (1, 5, 4, 2) read as
    channels_last)."""
    with pytest.raises(ValueError, match=r"x has shape \(1, 2, 5, 4\) read as \(batch, channels, height, width\)"):
        numconv.separable_conv(np.ones((1, 2, 5, 4)), np.ones((7, 7, 2, 1)), np.ones((1, 1, 2, 3)),
                               data_format="channels_first", strides=2)


def test_a_kernel_of_the_wrong_rank_is_named_not_x():
    """The rank comes from the kernel (``conv``): an x of another valid rank with
    more axes than the kernel implies is reported as the kernel's error; with
    fewer, the reshapes of x come first and the kernel's reading after. A
    depthwise kernel missing its multiplier axis, and a pool_size of the wrong
    length, likewise name themselves."""
    with pytest.raises(ValueError, match=r"^conv: the kernel must be 4-D \(k_height, k_width, in_channels // groups, "
                                         r"filters\) for the 2 spatial axes of x.*got kernel shape \(3, 3, 8\)"):
        numconv.conv(X2, np.ones((3, 3, 8)))
    with pytest.raises(ValueError, match=r"x\.reshape\(1, 2, 12, 12, 4\)\. Or, if x is right, the kernel has the "
                                         r"wrong rank: the kernel must be 4-D"):
        numconv.conv(X2, np.ones((3, 3, 3, 4, 8)))
    with pytest.raises(ValueError) as e:  # conv2d checks the rank: x is the one to fix
        numconv.conv2d(np.ones((12, 12, 4)), W2)
    assert "kernel has the wrong rank" not in str(e.value) and "x.reshape(1, 12, 12, 4)" in str(e.value)
    with pytest.raises(ValueError, match=r"kernel must be 4-D \(\*kernel_size, in_channels, depth_multiplier\).*"
                                         r"got shape \(3, 3, 4\)\. .*kernel\[\.\.\., None\]"):
        numconv.depthwise_conv(X2, np.ones((3, 3, 4)))
    with pytest.raises(ValueError, match=r"depthwise_kernel must be 4-D"):
        numconv.separable_conv(X2, np.ones((3, 3, 4)), np.ones((1, 1, 4, 8)))
    with pytest.raises(ValueError, match=r"^max_pool: pool_size must be an int or a tuple of 3 ints for the 3 "
                                         r"spatial axes of x.*got \(2, 2\)"):
        numconv.max_pool(np.ones((1, 4, 4, 4, 2)), (2, 2))
    with pytest.raises(ValueError, match=r"x\.reshape\(1, 2, 12, 12, 4\).* Or, if x is right, pool_size must be an "
                                         r"int or a tuple of 2 ints\.$"):
        numconv.max_pool(X2, (2, 2, 2))
    with pytest.raises(ValueError, match=r"x\.reshape\(1, 12, 12, 4\).* Or, if x is right, pool_size must be an "
                                         r"int or a tuple of one int\.$"):
        numconv.max_pool(np.ones((12, 12, 4)), (2, 2))


def test_a_pytorch_layout_kernel_gets_the_transpose():
    with pytest.raises(ValueError, match=r"PyTorch's layout.*np\.transpose\(kernel, \(2, 3, 1, 0\)\)"):
        numconv.conv2d(np.ones((2, 3, 28, 28)), np.ones((8, 3, 5, 5)), data_format="channels_first")
    with pytest.raises(ValueError, match=r"np\.transpose\(kernel, \(2, 3, 4, 1, 0\)\)"):
        numconv.conv3d(np.ones((1, 4, 9, 9, 9)), np.ones((8, 4, 3, 3, 3)), data_format="channels_first")
    torch = pytest.importorskip("torch")
    w = np.random.default_rng(0).standard_normal((8, 3, 5, 5))
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12))
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w)).numpy()
    got = numconv.conv2d(x, np.transpose(w, (2, 3, 1, 0)), data_format="channels_first")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_conv_transpose_explicit_pads_point_to_the_input_gradient():
    with pytest.raises(TypeError, match=r"conv_transpose: padding must be \"valid\" or \"same\".*got 1\. "
                                        r"For explicit pads p, conv_backprop_input"):
        numconv.conv_transpose(np.ones((1, 5, 2)), np.ones((3, 4, 2)), padding=1)


@pytest.mark.parametrize("method", ["direct", "auto", "fft", "oa", "winograd"])
def test_replicate_padding_of_an_empty_axis_raises(method):
    """An empty axis has no edge value to repeat (PyTorch refuses it too): a
    ValueError naming the padding, not a Numba SystemError or the bias alone."""
    with pytest.raises(ValueError, match=r"padding must be 0 on spatial axis 0, of size 0, for "
                                         r"padding_mode=\"replicate\"; got pads \(2, 2\)"):
        numconv.conv1d(np.zeros((1, 0, 2)), np.ones((3, 2, 1)), np.ones(1), padding=2, padding_mode="replicate",
                       method=method)
    with pytest.raises(ValueError, match="replicate"):
        numconv.conv2d(np.zeros((1, 0, 5, 1)), np.ones((3, 3, 1, 1)), padding="full", padding_mode="replicate",
                       method=method)
    assert numconv.conv1d(np.zeros((1, 0, 2)), np.ones((3, 2, 1)), np.ones(1), padding=2,
                          method=method).tolist() == [[[1.0], [1.0]]]  # zeros: the bias over zeros


@pytest.mark.parametrize("op", ["conv", "conv_winograd", "depthwise", "separable", "separable_cf", "conv1d", "conv3d"])
def test_a_nan_weight_over_zero_padding_gives_nan_as_a_loop_would(op):
    """The direct kernels skip the taps that fall in zero padding; a NaN weight
    there still makes NaN of every output whose window holds it (0 * NaN), as a
    loop over the zero-padded input does (and PyTorch's dense convolutions,
    Keras, the FFT path): such calls run on an explicitly padded input."""
    from reference import ref_conv, ref_depthwise_kernel

    rng = np.random.default_rng(41)
    r = {"conv1d": 1, "conv3d": 3}.get(op, 2)
    x = rng.standard_normal((2,) + (6,) * r + (4,)).astype(np.float32)
    k = rng.standard_normal((3,) * r + ((1 if op.startswith(("depthwise", "separable")) else 4), 8))
    k = k.astype(np.float32)[..., :1] if op.startswith(("depthwise", "separable")) else k.astype(np.float32)
    k[(0,) * (r + 2)] = np.nan
    pk = rng.standard_normal((1,) * r + (4, 5)).astype(np.float32)
    if op.startswith(("depthwise", "separable")):
        k = rng.standard_normal((3,) * r + (4, 1)).astype(np.float32)
        k[(0,) * (r + 2)] = np.nan
        want = ref_conv(x, ref_depthwise_kernel(k), groups=4, padding="same")
        if op.startswith("separable"):
            want = ref_conv(want, pk)
    else:
        want = ref_conv(x, k, padding="same")
    if op == "depthwise":
        got = numconv.depthwise_conv(x, k, padding="same", method="direct")
    elif op == "separable":
        got = numconv.separable_conv(x, k, pk, padding="same", method="direct")
    elif op == "separable_cf":
        got = np.moveaxis(numconv.separable_conv(np.ascontiguousarray(np.moveaxis(x, -1, 1)), k, pk, padding="same",
                                                 data_format="channels_first", method="direct"), 1, -1)
    else:
        got = numconv.conv(x, k, padding="same", method="winograd" if op == "conv_winograd" else "direct")
    # (separable: every filter mixes channel 0, NaN everywhere through the padding)
    assert np.isnan(want).all() if op.startswith("separable") else np.isnan(want).any() and not np.isnan(want).all()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), rtol=1e-4, atol=1e-4)


def test_a_nan_weight_over_zero_padding_in_the_tile_kernel():
    """The fuzz's case: float64, 33 channels (the tile kernel), the corner tap NaN:
    25 NaN outputs of filter 0, as PyTorch and a loop over the zero-padded input
    (the direct path gave 20)."""
    from reference import ref_conv

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 5, 33))
    k = rng.standard_normal((3, 3, 33, 8))
    k[0, 0, 0, 0] = np.nan
    want = ref_conv(x, k, padding="same")
    assert np.isnan(want).sum() == 25
    for method in ("direct", "auto", "fft"):
        got = numconv.conv(x, k, padding="same", method=method)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_taps_that_only_read_padding_are_cut():
    """A dilation far past the input: "same" with dilation 2**31 - 1 padded 5
    samples to 2**32 (MemoryError); every tap but the centre one reads only
    padding, so the kernel is cut to the taps that reach the input (with pads
    and the input's extent that keep each output's position and count). The
    reference's values, as PyTorch computes them, over a sweep of dilations,
    strides, paddings and both formats."""
    from reference import ref_conv

    y = numconv.conv1d(np.ones((1, 5, 1)), np.ones((3, 1, 1)), padding="same", dilation_rate=2**31 - 1)
    np.testing.assert_array_equal(y, np.ones((1, 5, 1)))
    rng = np.random.default_rng(12)
    checked = 0
    for i in range(120):
        r = int(rng.integers(1, 4))
        L, k = tuple(int(v) for v in rng.integers(1, 9, r)), tuple(int(v) for v in rng.integers(1, 5, r))
        d, s = tuple(int(v) for v in rng.integers(1, 12, r)), tuple(int(v) for v in rng.integers(1, 4, r))
        x, w = rng.standard_normal((2,) + L + (3,)), rng.standard_normal(k + (3, 4))
        pad = str(rng.choice(["same", "full"])) if i % 2 else tuple(
            (int(rng.integers(0, 20)), int(rng.integers(0, 20))) for _ in range(r))
        pad = pad[0] if r == 1 and not isinstance(pad, str) else pad
        try:
            want = ref_conv(x, w, padding=pad, dilation_rate=d, strides=s)
        except (ValueError, AssertionError):
            continue
        cf = i % 3 == 0
        got = numconv.conv(np.moveaxis(x, -1, 1) if cf else x, w, padding=pad, dilation_rate=d, strides=s,
                           data_format="channels_first" if cf else "channels_last")
        np.testing.assert_allclose(np.moveaxis(got, 1, -1) if cf else got, want, rtol=1e-10, atol=1e-10)
        checked += 1
    assert checked > 60


def test_a_torch_tensor_that_requires_grad_is_a_type_error():
    torch = pytest.importorskip("torch")
    x = torch.ones((1, 8, 2), dtype=torch.float64, requires_grad=True)
    with pytest.raises(TypeError, match=r"conv1d: x must be a numeric array-like; got Tensor \(.*detach"):
        numconv.conv1d(x, np.ones((3, 2, 4)))
    y = numconv.conv1d(x.detach(), np.ones((3, 2, 4)))
    np.testing.assert_array_equal(y, np.full((1, 6, 4), 6.0))


def test_a_callable_activation_returning_a_non_array_names_what_it_returned():
    with pytest.raises(TypeError, match=r"activation must return a numeric array \(callable <lambda>\); got str of "
                                        r"dtype <U3"):
        numconv.conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 4)), activation=lambda y: "abc")
    with pytest.raises(ValueError, match=r"result's shape \(1, 3, 4\) \(callable <lambda>\); got shape \(\) \(float\)"):
        numconv.conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 4)), activation=lambda y: 3.0)
    with pytest.raises(ValueError, match=r"got shape \(1, 3\)\. Apply reductions"):
        numconv.conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 4)), activation=lambda y: y.sum(axis=-1))
    y = numconv.conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 4)), activation=lambda y: y > 5)  # bool: numeric
    assert y.dtype == bool and y.all()
