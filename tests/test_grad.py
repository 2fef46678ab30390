"""conv_backprop_input / conv_backprop_kernel: the exact gradients of conv.

Checked against central finite differences of the NumPy reference conv (float64,
every padding mode, stride, dilation, groups, data format, ranks 1-3), against torch
autograd where torch is installed, and on the cases peers got wrong (PITFALLS:
pytorch#25101 stride 3 pad 1, pytorch#68868 grouped strided 3-D weight gradient).
"""
import numpy as np
import pytest

import numconv
from numconv import _adjoint
from reference import ref_conv, ref_gradient, ref_kernel_grad, ref_output_length, ref_pads

SEED = 7
N_CASES = 60


def _draw(rng):
    r = int(rng.integers(1, 4))
    size_hi = {1: 9, 2: 7, 3: 5}[r]
    G = int(rng.choice([1, 1, 2, 3]))
    C, K = G * int(rng.integers(1, 3)), G * int(rng.integers(1, 3))
    ks = tuple(int(v) for v in rng.integers(1, 4, r))
    strides = tuple(int(v) for v in rng.integers(1, 4, r))
    dil = tuple(int(v) for v in rng.integers(1, 3, r))
    spatial = tuple(int(v) for v in rng.integers(3, size_hi + 1, r))
    mode = str(rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"]))
    kind = str(rng.choice(["valid", "same", "full", "pairs"] + (["causal"] if r == 1 else [])))
    padding = (tuple(tuple(int(v) for v in rng.integers(0, 3, 2)) for _ in range(r)) if kind == "pairs" else kind)
    pads = ref_pads(padding, spatial, ks, strides, dil)
    if mode == "reflect" and any(max(p) >= L for p, L in zip(pads, spatial)):
        mode = "replicate"
    if mode == "circular" and any(max(p) > L for p, L in zip(pads, spatial)):
        mode = "zeros"
    if any(ref_output_length(L, k, s, d, b, a) < 1 for L, k, s, d, (b, a) in zip(spatial, ks, strides, dil, pads)):
        return None
    fmt = str(rng.choice(["channels_last", "channels_first"]))
    N = int(rng.integers(1, 3))
    return dict(N=N, C=C, K=K, G=G, ks=ks, spatial=spatial, args=dict(
        strides=strides, padding=padding, dilation_rate=dil, groups=G, data_format=fmt, padding_mode=mode))


def _cases():
    rng = np.random.default_rng(SEED)
    out = []
    while len(out) < N_CASES:
        c = _draw(rng)
        if c is not None:
            out.append(c)
    return out


CASES = _cases()


def _arrays(c, rng):
    fmt = c["args"]["data_format"]
    xs = (c["N"],) + c["spatial"] + (c["C"],) if fmt == "channels_last" else (c["N"], c["C"]) + c["spatial"]
    x = rng.standard_normal(xs)
    w = rng.standard_normal(c["ks"] + (c["C"] // c["G"], c["K"]))
    return x, w


def _case_data(i, seed):
    """Case ``i``'s parameters, x, kernel, conv arguments and a random output gradient."""
    c = CASES[i]
    rng = np.random.default_rng(seed + i)
    x, w = _arrays(c, rng)
    a = c["args"]
    return c, x, w, a, rng.standard_normal(ref_conv(x, w, **a).shape)


@pytest.mark.parametrize("i", range(N_CASES))
def test_gradients_match_finite_differences(i):
    c, x, w, a, g = _case_data(i, 1000)
    dx = numconv.conv_backprop_input(g, w, x.shape, **a)
    dw = numconv.conv_backprop_kernel(x, g, w.shape, **a)
    dx_fd = ref_gradient(lambda v: np.vdot(ref_conv(v, w, **a), g), x)
    dw_fd = ref_gradient(lambda v: np.vdot(ref_conv(x, v, **a), g), w)
    assert dx.shape == x.shape and dw.shape == w.shape
    np.testing.assert_allclose(dx, dx_fd, rtol=1e-7, atol=1e-8, err_msg=str(c))
    np.testing.assert_allclose(dw, dw_fd, rtol=1e-7, atol=1e-8, err_msg=str(c))


@pytest.mark.parametrize("i", range(N_CASES))
def test_input_gradient_in_both_adjoint_forms(i, adjoint_form):
    """Both forms of the adjoint give the exact input gradient on every case, in
    float64 and complex128; the column form runs wherever the strides make two
    phases or more."""
    form, calls = adjoint_form
    c, x, w, a, g = _case_data(i, 3000)
    dx_fd = ref_gradient(lambda v: np.vdot(ref_conv(v, w, **a), g), x)
    np.testing.assert_allclose(numconv.conv_backprop_input(g, w, x.shape, **a), dx_fd, rtol=1e-7, atol=1e-8,
                               err_msg=str(c))
    (plan,) = _adjoint._PLANS.values()
    assert len(calls) == (form == "columns" and len(plan.runs) >= 2), c
    # complex: the gradient of the real and imaginary parts, each through the real map
    wi = np.random.default_rng(i).standard_normal(w.shape)
    dx = numconv.conv_backprop_input(g + 1j * g[::-1], w + 1j * wi, x.shape, **a)
    ref = sum(coef * numconv.conv_backprop_input(gp, wp, x.shape, **a)
              for coef, gp, wp in ((1, g, w), (-1, g[::-1], wi), (1j, g, wi), (1j, g[::-1], w)))
    np.testing.assert_allclose(dx, ref, rtol=1e-10, atol=1e-10, err_msg=str(c))


def test_column_form_is_chosen_for_many_small_phases():
    """``_columns_pay``: stride 3 in 3-D (27 one-tap phases of a 2 x 2 x 2 output
    gradient) takes the column form; a stride-2 layer whose columns would be
    megabytes keeps its four phases (both measured in ``_adjoint``'s constants),
    or with "auto", 3x3 windows and 64 channels, the transposed Winograd scheme."""
    spec = numconv._spec.spec_from_shapes("conv_backprop_input", (1, 6, 6, 6, 3), (3, 3, 3, 3, 256), None,
                                          np.float32, 3, "valid", 1, None, "channels_last", "zeros", None, "auto",
                                          numconv._dispatch.METHODS)
    wt = (3, 3, 3, 256, 3)
    plan = _adjoint._plan(spec, (0, 0, 0), spec.in_spatial, (1, 2, 2, 2, 256), wt, "auto")
    assert len(plan.runs) == 27 and plan.columns is not None
    spec = numconv._spec.spec_from_shapes("conv_backprop_input", (8, 56, 56, 64), (3, 3, 64, 64), None,
                                          np.float32, 2, "same", 1, None, "channels_last", "zeros", None, "auto",
                                          numconv._dispatch.METHODS)
    plan = _adjoint._plan(spec, (0, 0, 1), spec.in_spatial, (8, 1, 28, 28, 64), (1, 3, 3, 64, 64), "direct")
    assert len(plan.runs) == 4 and plan.columns is None and not plan.transposed
    assert _adjoint._plan(spec, (0, 0, 1), spec.in_spatial, (8, 1, 28, 28, 64), (1, 3, 3, 64, 64), "auto").transposed
    assert _adjoint._plan(spec, (0, 0, 1), spec.in_spatial, (8, 1, 28, 28, 64), (1, 3, 3, 64, 64), "fft").columns \
        is None


@pytest.mark.parametrize("i", range(0, N_CASES, 6))
def test_float32_gradients_close_to_float64(i):
    c, x, w, a, g = _case_data(i, 2000)
    dx64 = numconv.conv_backprop_input(g, w, x.shape, **a)
    dx32 = numconv.conv_backprop_input(g.astype(np.float32), w.astype(np.float32), x.shape, **a)
    dw64 = numconv.conv_backprop_kernel(x, g, w.shape, **a)
    dw32 = numconv.conv_backprop_kernel(x.astype(np.float32), g.astype(np.float32), w.shape, **a)
    assert dx32.dtype == np.float32 and dw32.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, atol=1e-5 * max(1, np.abs(dx64).max()))
    np.testing.assert_allclose(dw32, dw64, atol=1e-5 * max(1, np.abs(dw64).max()))


@pytest.mark.parametrize("method", ["direct", "fft", "oa", "winograd"])
def test_every_method_gives_the_same_gradient(method):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 12, 11, 4))
    w = rng.standard_normal((3, 3, 2, 6))
    a = dict(strides=2, padding="same", dilation_rate=(1, 2), groups=2)
    g = rng.standard_normal(numconv.conv(x, w, **a).shape)
    ref_dx = numconv.conv_backprop_input(g, w, x.shape, method="direct", **a)
    ref_dw = numconv.conv_backprop_kernel(x, g, w.shape, method="direct", **a)
    np.testing.assert_allclose(numconv.conv_backprop_input(g, w, x.shape, method=method, **a), ref_dx, atol=1e-10)
    np.testing.assert_allclose(numconv.conv_backprop_kernel(x, g, w.shape, method=method, **a), ref_dw, atol=1e-9)


def test_adjoint_identity_input():
    """<conv(x, w), g> == <x, backprop_input(g, w)>: the gradient of a linear map is its adjoint."""
    rng = np.random.default_rng(5)
    for mode in ("zeros", "reflect", "replicate", "circular"):
        x = rng.standard_normal((2, 9, 10, 3))
        w = rng.standard_normal((3, 2, 3, 4))
        a = dict(strides=(2, 3), padding=((2, 1), (1, 2)), dilation_rate=(2, 1), padding_mode=mode)
        y = numconv.conv(x, w, **a)
        g = rng.standard_normal(y.shape)
        lhs = np.vdot(y, g)
        rhs = np.vdot(x, numconv.conv_backprop_input(g, w, x.shape, **a))
        assert abs(lhs - rhs) <= 1e-10 * abs(lhs)


def test_stride_larger_than_kernel_overlap():
    """pytorch#25101: stride 3, pad 1 (some inputs meet no tap) - their gradient is exactly 0."""
    x = np.ones((1, 10, 1))
    w = np.ones((1, 1, 1))
    g = np.ones((1, 4, 1))
    dx = numconv.conv_backprop_input(g, w, x.shape, strides=3, padding=1)
    # outputs read padded positions 0, 3, 6, 9 -> inputs -1 (pad), 2, 5, 8
    np.testing.assert_array_equal(dx[0, :, 0], [0, 0, 1, 0, 0, 1, 0, 0, 1, 0])


def test_bias_gradient_is_a_sum():
    g = np.random.default_rng(0).standard_normal((2, 5, 5, 3))
    assert np.allclose(g.sum(axis=(0, 1, 2)), np.einsum("nhwk->k", g))


def test_depthwise_gradients():
    """Depthwise (groups == channels) through the grouped path: both gradients."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 7, 6, 4))
    w = rng.standard_normal((3, 3, 1, 8))
    a = dict(strides=2, padding="same", groups=4)
    g = rng.standard_normal(numconv.conv(x, w, **a).shape)
    dx_fd = ref_gradient(lambda v: np.vdot(ref_conv(v, w, **a), g), x)
    dw_fd = ref_gradient(lambda v: np.vdot(ref_conv(x, v, **a), g), w)
    np.testing.assert_allclose(numconv.conv_backprop_input(g, w, x.shape, **a), dx_fd, atol=1e-8)
    np.testing.assert_allclose(numconv.conv_backprop_kernel(x, g, w.shape, **a), dw_fd, atol=1e-8)


def test_inputs_not_modified_and_out():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 6, 6, 2))
    w = rng.standard_normal((3, 3, 2, 2))
    g = rng.standard_normal((1, 4, 4, 2))
    copies = [a.copy() for a in (x, w, g)]
    out = np.empty_like(x)
    r = numconv.conv_backprop_input(g, w, x.shape, out=out)
    assert r is out
    outw = np.empty_like(w)
    assert numconv.conv_backprop_kernel(x, g, w.shape, out=outw) is outw
    for a, b in zip((x, w, g), copies):
        np.testing.assert_array_equal(a, b)


def test_empty_batch():
    w = np.ones((3, 3, 2, 4))
    assert numconv.conv_backprop_input(np.zeros((0, 3, 3, 4)), w, (0, 5, 5, 2)).shape == (0, 5, 5, 2)
    dw = numconv.conv_backprop_kernel(np.zeros((0, 5, 5, 2)), np.zeros((0, 3, 3, 4)), w.shape)
    assert dw.shape == w.shape and not dw.any()


@pytest.mark.parametrize("method", ["auto", "direct", "winograd", "fft", "oa"])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_kernel_gradient_on_every_method(method, dtype):
    """Complex data: dL/dkernel is bilinear in (x, grad_out), unconjugated, on every
    path. The real gradient kernels (direct, Winograd) must not see it: they wrote
    real sums past their buffers (wrong values, then heap corruption and an abort
    with 8 channels)."""
    rng = np.random.default_rng(31)
    tol = 2e-5 if dtype == np.complex64 else 1e-11
    for xs, ks, a in [((2, 9, 10, 8), (3, 3, 8, 8), dict(padding="same")),  # the Winograd gradient's windows
                      ((1, 16, 8), (3, 8, 8), {}),
                      ((2, 12, 11), (4, 6, 6), dict(strides=2, dilation_rate=2, groups=2, padding="same",
                                                      padding_mode="reflect", data_format="channels_first"))]:
        x = (rng.standard_normal(xs) + 1j * rng.standard_normal(xs)).astype(dtype)
        gshape = ref_conv(x.real, np.zeros(ks), **a).shape
        g = (rng.standard_normal(gshape) + 1j * rng.standard_normal(gshape)).astype(dtype)
        got = numconv.conv_backprop_kernel(x, g, ks, method=method, **a)
        xr, xi, gr, gi = (v.astype(np.float64) for v in (x.real, x.imag, g.real, g.imag))
        ref = (ref_kernel_grad(xr, gr, ks, **a) - ref_kernel_grad(xi, gi, ks, **a)
               + 1j * (ref_kernel_grad(xr, gi, ks, **a) + ref_kernel_grad(xi, gr, ks, **a)))
        assert got.dtype == dtype and got.shape == ks
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max(), err_msg=str((xs, a)))


def test_errors_name_the_argument():
    w = np.ones((3, 3, 2, 4))
    with pytest.raises(ValueError, match=r"grad_out must have the forward conv's output shape \(1, 3, 3, 4\).*"
                                         r"got shape \(1, 4, 4, 4\)"):
        numconv.conv_backprop_input(np.ones((1, 4, 4, 4)), w, (1, 5, 5, 2))
    with pytest.raises(ValueError, match="input_shape must be a tuple of 4"):
        numconv.conv_backprop_input(np.ones((1, 3, 3, 4)), w, (5, 5, 2))
    with pytest.raises(TypeError, match=r"input_shape must be a tuple of 4 ints; got \(1, 5.5, 5, 2\)"):
        numconv.conv_backprop_input(np.ones((1, 3, 3, 4)), w, (1, 5.5, 5, 2))  # not truncated to 5
    with pytest.raises(TypeError, match="kernel_shape must be a tuple of 4 ints"):
        numconv.conv_backprop_kernel(np.ones((1, 5, 5, 2)), np.ones((1, 3, 3, 4)), (3.0, 3, 2, 4))
    with pytest.raises(TypeError, match="kernel_shape must be a tuple"):
        numconv.conv_backprop_kernel(np.ones((1, 5, 5, 2)), np.ones((1, 3, 3, 4)), 3)
    with pytest.raises(ValueError, match="strides must have every entry >= 1"):
        numconv.conv_backprop_input(np.ones((1, 3, 3, 4)), w, (1, 5, 5, 2), strides=0)
    with pytest.raises(TypeError, match="grad_out must have a numeric dtype"):
        numconv.conv_backprop_input(np.array([["a"]]), w, (1, 5, 5, 2))


# ---------------------------------------------------------------- torch autograd

def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("r", [1, 2, 3])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_matches_torch_autograd(r, mode):
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(r * 10 + len(mode))
    size = {1: (13,), 2: (9, 8), 3: (6, 7, 5)}[r]
    x = rng.standard_normal((2, 6) + size)  # channels first, as torch
    w = rng.standard_normal(((3,) * r) + (3, 4))
    s, d, p, G = 2, (1, 2, 1)[:r], 1, 2
    conv = (F.conv1d, F.conv2d, F.conv3d)[r - 1]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(np.moveaxis(w, (-1, -2), (0, 1)).copy(), requires_grad=True)
    if mode == "zeros":
        yt = conv(xt, wt, stride=s, padding=p, dilation=d, groups=G)
    else:
        yt = conv(F.pad(xt, (p, p) * r, mode=mode), wt, stride=s, dilation=d, groups=G)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    a = dict(strides=s, padding=p, dilation_rate=d, groups=G, data_format="channels_first", padding_mode=mode)
    np.testing.assert_allclose(numconv.conv_backprop_input(g, w, x.shape, **a), xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(numconv.conv_backprop_kernel(x, g, w.shape, **a),
                               np.moveaxis(wt.grad.numpy(), (0, 1), (-1, -2)), atol=1e-10)


def test_grouped_strided_3d_weight_gradient_pytorch_68868():
    torch = _torch()
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 7, 7, 7))
    w = rng.standard_normal((3, 3, 3, 2, 4))
    xt = torch.tensor(x)
    wt = torch.tensor(np.moveaxis(w, (-1, -2), (0, 1)).copy(), requires_grad=True)
    yt = torch.nn.functional.conv3d(xt, wt, stride=2, groups=2)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    dw = numconv.conv_backprop_kernel(x, g, w.shape, strides=2, groups=2, data_format="channels_first")
    np.testing.assert_allclose(dw, np.moveaxis(wt.grad.numpy(), (0, 1), (-1, -2)), atol=1e-10)
    dw_fd = ref_gradient(lambda v: np.vdot(ref_conv(x, v, strides=2, groups=2, data_format="channels_first"), g), w)
    np.testing.assert_allclose(dw, dw_fd, atol=1e-7)
