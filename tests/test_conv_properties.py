"""Hypothesis properties of numconv.conv on small shapes (float64)."""

import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import numconv
from reference import ref_output_length, ref_pads

SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])

PAD_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(draw, r, lo, hi):
    return tuple(draw(st.integers(lo, hi)) for _ in range(r))


@st.composite
def conv_setups(draw, padding_modes=PAD_MODES, groups=True):
    """A valid conv argument set plus x and kernel shapes and a data seed."""
    r = draw(st.integers(1, 3))
    G = draw(st.sampled_from([1, 1, 2, 3])) if groups else 1
    C, K = G * draw(st.integers(1, 3)), G * draw(st.integers(1, 3))
    L = _tuple(draw, r, 1, 9 if r < 3 else 5)
    k = _tuple(draw, r, 1, 4 if r < 3 else 3)
    s = _tuple(draw, r, 1, 3)
    d = _tuple(draw, r, 1, 3)
    padding = draw(st.sampled_from(["valid", "same", "full", "explicit"]
                                   + (["causal"] if r == 1 else [])))
    if padding == "explicit":
        padding = tuple(_tuple(draw, 2, 0, 3) for _ in range(r))
    mode = draw(st.sampled_from(padding_modes))
    pads = ref_pads(padding, L, k, s, d)
    for LL, kk, ss, dd, (b, a) in zip(L, k, s, d, pads):
        assume(ref_output_length(LL, kk, ss, dd, b, a) >= 1)
        assume(mode != "reflect" or max(b, a) < LL)
        assume(mode != "circular" or max(b, a) <= LL)
    data_format = draw(st.sampled_from(["channels_last", "channels_first"]))
    N = draw(st.integers(1, 2))
    xshape = (N, *L, C) if data_format == "channels_last" else (N, C, *L)
    kwargs = dict(strides=s, padding=padding, dilation_rate=d, groups=G,
                  data_format=data_format, padding_mode=mode)
    return dict(xshape=xshape, wshape=(*k, C // G, K), kwargs=kwargs,
                seed=draw(st.integers(0, 2**32 - 1)))


def _close(a, b, msg=""):
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * scale, err_msg=msg)


@SETTINGS
@given(conv_setups(), st.floats(-3, 3), st.floats(-3, 3))
def test_linear_in_x(setup, a, b):
    rng = np.random.default_rng(setup["seed"])
    x1, x2 = rng.standard_normal((2, *setup["xshape"]))
    w = rng.standard_normal(setup["wshape"])
    kw = setup["kwargs"]
    lhs = numconv.conv(a * x1 + b * x2, w, **kw)
    rhs = a * numconv.conv(x1, w, **kw) + b * numconv.conv(x2, w, **kw)
    _close(lhs, rhs, repr(setup))


@SETTINGS
@given(conv_setups(), st.floats(-3, 3), st.floats(-3, 3))
def test_linear_in_kernel(setup, a, b):
    rng = np.random.default_rng(setup["seed"])
    x = rng.standard_normal(setup["xshape"])
    w1, w2 = rng.standard_normal((2, *setup["wshape"]))
    kw = setup["kwargs"]
    lhs = numconv.conv(x, a * w1 + b * w2, **kw)
    rhs = a * numconv.conv(x, w1, **kw) + b * numconv.conv(x, w2, **kw)
    _close(lhs, rhs, repr(setup))


@SETTINGS
@given(r=st.integers(1, 3), data=st.data())
def test_same_padding_length_is_ceil_l_over_s(r, data):
    L = _tuple(data.draw, r, 1, 10 if r < 3 else 6)
    k = _tuple(data.draw, r, 1, 6)
    s = _tuple(data.draw, r, 1, 4)
    d = _tuple(data.draw, r, 1, 3)
    x = np.ones((1, *L, 2))
    w = np.ones((*k, 2, 3))
    y = numconv.conv(x, w, strides=s, padding="same", dilation_rate=d)
    assert y.shape == (1, *(math.ceil(LL / ss) for LL, ss in zip(L, s)), 3), (L, k, s, d)


@SETTINGS
@given(r=st.integers(1, 3), data=st.data())
def test_delta_kernel_shifts_input(r, data):
    """A one-hot tap j with an identity channel matrix: y[i] == x[i * s + j * d]."""
    k = _tuple(data.draw, r, 1, 4)
    j = tuple(data.draw(st.integers(0, kk - 1)) for kk in k)
    s = _tuple(data.draw, r, 1, 3)
    d = _tuple(data.draw, r, 1, 3)
    L = tuple(dd * (kk - 1) + 1 + data.draw(st.integers(0, 5 if r < 3 else 3))
              for kk, dd in zip(k, d))
    C = data.draw(st.integers(1, 3))
    x = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).standard_normal((2, *L, C))
    w = np.zeros((*k, C, C))
    w[j] = np.eye(C)
    y = numconv.conv(x, w, strides=s, padding="valid", dilation_rate=d)
    out = tuple(ref_output_length(LL, kk, ss, dd, 0, 0) for LL, kk, ss, dd in zip(L, k, s, d))
    assert y.shape == (2, *out, C)
    sl = tuple(slice(jj * dd, jj * dd + (o - 1) * ss + 1, ss)
               for jj, dd, ss, o in zip(j, d, s, out))
    expected = x[(slice(None),) + sl]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12, err_msg=repr((L, k, j, s, d)))


@SETTINGS
@given(conv_setups())
def test_groups_equal_separate_convs_concatenated(setup):
    kw = dict(setup["kwargs"])
    G = kw.pop("groups")
    rng = np.random.default_rng(setup["seed"])
    x = rng.standard_normal(setup["xshape"])
    w = rng.standard_normal(setup["wshape"])
    ch = 1 if kw["data_format"] == "channels_first" else -1
    C, K = x.shape[ch], w.shape[-1]
    xs = np.split(x, G, axis=ch)
    ws = np.split(w, G, axis=-1)
    parts = [numconv.conv(xg, wg, groups=1, **kw) for xg, wg in zip(xs, ws)]
    assert all(xg.shape[ch] == C // G for xg in xs) and all(wg.shape[-1] == K // G for wg in ws)
    _close(numconv.conv(x, w, groups=G, **kw), np.concatenate(parts, axis=ch), repr(setup))


@SETTINGS
@given(conv_setups())
def test_channels_first_is_moveaxis_of_channels_last(setup):
    kw = dict(setup["kwargs"], data_format="channels_last")
    rng = np.random.default_rng(setup["seed"])
    shape = setup["xshape"]
    if setup["kwargs"]["data_format"] == "channels_first":
        shape = (shape[0], *shape[2:], shape[1])
    x = rng.standard_normal(shape)
    w = rng.standard_normal(setup["wshape"])
    b = rng.standard_normal(w.shape[-1])
    y_last = numconv.conv(x, w, b, **kw)
    y_first = numconv.conv(np.moveaxis(x, -1, 1), w, b, **dict(kw, data_format="channels_first"))
    _close(y_first, np.moveaxis(y_last, -1, 1), repr(setup))
