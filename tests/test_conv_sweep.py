"""Seeded random sweep: numconv.conv against the NumPy reference over valid parameter sets.

Every case is drawn from a fixed seed, so the list is the same on every run; a failure
prints the full parameter dict (and the test id names the main choices).
"""

import numpy as np
import pytest

import numconv
from reference import ACTIVATIONS, ref_conv, ref_output_length, ref_pads

SEED = 20240611
N_CASES = 360
DTYPES = ("float64", "float32", "complex128", "complex64")
PAD_MODES = ("zeros", "zeros", "reflect", "replicate", "circular")


def _ints(rng, lo, hi, r):
    return tuple(int(v) for v in rng.integers(lo, hi + 1, r))


def _maybe_scalar(rng, t):
    """An int when every entry is equal (half the time), else the tuple."""
    return t[0] if len(set(t)) == 1 and rng.random() < 0.5 else t


def _draw_padding(rng, r):
    kinds = ["valid", "same", "full", "int", "ints", "pairs"] + (["causal"] if r == 1 else [])
    kind = kinds[rng.integers(len(kinds))]
    if kind in ("valid", "same", "full", "causal"):
        return kind
    if kind == "int":
        return int(rng.integers(0, 4))
    if kind == "ints":
        return _ints(rng, 0, 3, r)
    pairs = tuple(_ints(rng, 0, 3, 2) for _ in range(r))  # usually asymmetric
    if r == 1 and rng.random() < 0.5:
        return pairs[0]  # rank 1: a bare (before, after) is one pair
    return pairs


def _draw_channels(rng):
    """(in_channels, filters, groups) with groups dividing both, all <= 8."""
    u = rng.random()
    if u < 0.2:  # depthwise-like: groups == in_channels, optional multiplier
        C = int(rng.integers(1, 9))
        return C, C * int(rng.integers(1, 8 // C + 1)), C
    if u < 0.5:  # grouped with a multiplier
        G = int(rng.choice([2, 3, 4]))
        return G * int(rng.integers(1, 8 // G + 1)), G * int(rng.integers(1, 8 // G + 1)), G
    return int(rng.integers(1, 9)), int(rng.integers(1, 9)), 1


def _is_valid(p):
    pads = ref_pads(p["padding"], p["spatial"], p["kernel_size"],
                    p["strides_t"], p["dilation_t"])
    for L, k, s, d, (b, a) in zip(p["spatial"], p["kernel_size"], p["strides_t"],
                                  p["dilation_t"], pads):
        if ref_output_length(L, k, s, d, b, a) < 1:
            return False
        if p["padding_mode"] == "reflect" and max(b, a) >= L:
            return False
        if p["padding_mode"] == "circular" and max(b, a) > L:
            return False
    return True


def _draw_case(rng, index):
    while True:
        r = int(rng.integers(1, 4))
        C, K, G = _draw_channels(rng)
        batch = 0 if rng.random() < 0.04 else int(rng.integers(1, 4))
        spatial = _ints(rng, 1, 12 if r < 3 else 6, r)
        kernel_size = _ints(rng, 1, 5 if r < 3 else 4, r)
        strides_t = _ints(rng, 1, 3, r)
        dilation_t = _ints(rng, 1, 3, r)
        dtype = DTYPES[rng.integers(len(DTYPES))]
        acts = [None, "linear"] if dtype.startswith("complex") else [None, *ACTIVATIONS]
        p = dict(
            index=index, rank=r, batch=batch, spatial=spatial, in_channels=C, filters=K,
            true_groups=G, groups=G if rng.random() < 0.5 else None, kernel_size=kernel_size,
            strides_t=strides_t, dilation_t=dilation_t,
            strides=_maybe_scalar(rng, strides_t), dilation_rate=_maybe_scalar(rng, dilation_t),
            padding=_draw_padding(rng, r), padding_mode=PAD_MODES[rng.integers(len(PAD_MODES))],
            data_format="channels_first" if rng.random() < 0.4 else "channels_last",
            use_bias=bool(rng.random() < 0.5), activation=acts[rng.integers(len(acts))],
            dtype=dtype, data_seed=int(rng.integers(2**31)),
        )
        if _is_valid(p):
            return p


def make_cases(seed=SEED, n=N_CASES):
    rng = np.random.default_rng(seed)
    return [_draw_case(rng, i) for i in range(n)]


CASES = make_cases()


def make_arrays(p):
    """x, kernel, bias for a case (in the case's dtype; kernel scaled to fan-in)."""
    rng = np.random.default_rng(p["data_seed"])
    C, K = p["in_channels"], p["filters"]
    Cg = C // p["true_groups"]  # groups=None: numconv infers C // Cg
    if p["data_format"] == "channels_last":
        xshape = (p["batch"], *p["spatial"], C)
    else:
        xshape = (p["batch"], C, *p["spatial"])
    wshape = (*p["kernel_size"], Cg, K)
    cplx = p["dtype"].startswith("complex")

    def draw(shape, scale=1.0):
        a = rng.standard_normal(shape)
        if cplx:
            a = a + 1j * rng.standard_normal(shape)
        return (scale * a).astype(p["dtype"])

    x = draw(xshape)
    w = draw(wshape, 1.0 / np.sqrt(Cg * np.prod(p["kernel_size"])))
    b = draw((K,), 0.5) if p["use_bias"] else None
    return x, w, b


def _case_id(p):
    return "{index}-r{rank}-{dtype}-{pad}-{padding_mode}-{df}".format(
        pad=p["padding"] if isinstance(p["padding"], str) else "explicit",
        df="cf" if p["data_format"] == "channels_first" else "cl", **p)


def registered_methods():
    """Every public `method=` string the library registers (all paths must agree)."""
    registry = getattr(numconv, "METHODS", None)
    if registry is None:
        registry = getattr(getattr(numconv, "_dispatch", None), "METHODS", {})
    return sorted(registry) or ["auto"]


def tolerances(dtype, ref, method="direct"):
    """Direct paths: ~1e-12 (double) / ~1e-5 (single) of the output scale. The FFT
    path's rounding grows with the transform size: ~1e-10 / ~1e-4 (issue 4)."""
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    double = np.dtype(dtype) in (np.float64, np.complex128)
    if method in ("fft", "oa"):  # transform-based paths
        return dict(rtol=1e-10, atol=1e-10 * scale) if double else dict(rtol=1e-4, atol=1e-4 * scale)
    if double:
        return dict(rtol=1e-11, atol=1e-11 * scale)
    return dict(rtol=1e-5, atol=2e-5 * scale)


def conv_kwargs(p):
    return dict(strides=p["strides"], padding=p["padding"], dilation_rate=p["dilation_rate"],
                groups=p["groups"], data_format=p["data_format"],
                padding_mode=p["padding_mode"], activation=p["activation"])


@pytest.mark.parametrize("p", [pytest.param(p, id=_case_id(p)) for p in CASES])
def test_conv_matches_reference(p):
    x, w, b = make_arrays(p)
    kw = conv_kwargs(p)
    msg = f"case params: {p!r}"
    ref = ref_conv(x, w, b, **kw)
    got = numconv.conv(x, w, b, **kw)
    assert isinstance(got, np.ndarray), msg
    assert got.dtype == np.dtype(p["dtype"]), f"dtype {got.dtype}; {msg}"
    assert got.shape == ref.shape, f"shape {got.shape} != {ref.shape}; {msg}"
    np.testing.assert_allclose(got, ref, err_msg=msg, **tolerances(p["dtype"], ref))

    ranked = getattr(numconv, f"conv{p['rank']}d")(x, w, b, **kw)
    assert ranked.dtype == got.dtype and ranked.shape == got.shape, msg
    np.testing.assert_allclose(ranked, ref, err_msg=f"conv{p['rank']}d; {msg}",
                               **tolerances(p["dtype"], ref))

    for method in registered_methods():
        forced = numconv.conv(x, w, b, method=method, **kw)
        assert forced.dtype == got.dtype and forced.shape == got.shape, f"{method}; {msg}"
        np.testing.assert_allclose(forced, ref, err_msg=f"method={method!r}; {msg}",
                                   **tolerances(p["dtype"], ref, method))


def test_sweep_covers_the_parameter_space():
    """Guard against a generator change silently narrowing the sweep."""
    seen = lambda key: {str(p[key]) for p in CASES}  # noqa: E731
    assert {"1", "2", "3"} <= seen("rank")
    assert set(DTYPES) <= seen("dtype")
    assert {"zeros", "reflect", "replicate", "circular"} <= seen("padding_mode")
    assert {"valid", "same", "full", "causal"} <= seen("padding")
    assert {"channels_first", "channels_last"} <= seen("data_format")
    assert any(p["batch"] == 0 for p in CASES)
    assert any(p["true_groups"] == p["in_channels"] > 1 for p in CASES)
    assert any(1 < p["true_groups"] < p["in_channels"] and p["filters"] > p["true_groups"]
               for p in CASES)
    assert any(p["groups"] is None and p["true_groups"] > 1 for p in CASES)
    assert any(max(p["strides_t"]) > 1 and max(p["dilation_t"]) > 1 for p in CASES)
    assert any(any(k % 2 == 0 for k in p["kernel_size"]) for p in CASES)
    assert any(any(k > L for k, L in zip(p["kernel_size"], p["spatial"])) for p in CASES)
    assert any(isinstance(p["padding"], tuple) and p["rank"] == 1
               and len(p["padding"]) == 2 and np.isscalar(p["padding"][0]) for p in CASES)
    assert set(ACTIVATIONS) <= seen("activation")


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("activation", [a for a in ACTIVATIONS if a != "linear"])
def test_named_nonlinear_activation_on_complex_raises(dtype, activation):
    x = np.ones((1, 4, 2), dtype=dtype)
    w = np.ones((2, 2, 3), dtype=dtype)
    with pytest.raises(TypeError, match="activation"):
        numconv.conv(x, w, activation=activation)
