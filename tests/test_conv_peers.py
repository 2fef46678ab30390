"""numconv.conv against its peers: scipy.signal.correlate and torch.nn.functional.conv*d."""

import warnings

import numpy as np
import pytest
import scipy.signal

import numconv

PEER_SEED = 7


def _tol(dtype, ref):
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    if np.dtype(dtype) in (np.float64, np.complex128):
        return dict(rtol=1e-11, atol=1e-11 * scale)
    return dict(rtol=1e-5, atol=2e-5 * scale)


def _random(rng, shape, dtype, scale=1.0):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return (scale * a).astype(dtype)


# --------------------------------------------------------------------------- scipy
# One channel, one filter, batch 1, stride 1, dilation 1: conv is scipy's correlate.
# scipy.signal.correlate conjugates in2 and numconv does not, so the peer is
# correlate(x, conj(w)).
#
# "same" is tested with odd kernel sizes only. For odd k the TF rule gives
# before = (k - 1) // 2 = after, which is scipy's centring of the full output. For even
# k they differ by one sample: TF pads (k/2 - 1, k/2) (extra pad after), while scipy's
# `_centered` starts the full output at (k - 1) // 2, i.e. pads (k/2, k/2 - 1).

SCIPY_CASES = [
    (rank, mode, dtype, trial)
    for rank in (1, 2, 3)
    for mode in ("valid", "full", "same")
    for dtype in ("float64", "float32", "complex128", "complex64")
    for trial in range(3)
]


def _upcast(a):
    return a.astype(np.result_type(a, np.float64))


@pytest.mark.parametrize("case", range(len(SCIPY_CASES)),
                         ids=["r{}-{}-{}-t{}".format(*c) for c in SCIPY_CASES])
def test_single_channel_matches_scipy_correlate(case):
    rank, mode, dtype, trial = SCIPY_CASES[case]
    rng = np.random.default_rng([PEER_SEED, case])
    L = tuple(int(v) for v in rng.integers(5, 11 if rank < 3 else 7, rank))
    if mode == "same":
        k = tuple(int(2 * rng.integers(0, 3) + 1) for _ in range(rank))  # odd: 1, 3, 5
    else:
        k = tuple(int(v) for v in rng.integers(1, 6 if rank < 3 else 5, rank))
    x = _random(rng, L, dtype)
    w = _random(rng, k, dtype)
    peer = scipy.signal.correlate(_upcast(x), np.conj(_upcast(w)), mode=mode)
    got = numconv.conv(x[None, ..., None], w[..., None, None], padding=mode)
    msg = f"rank={rank} mode={mode} dtype={dtype} L={L} k={k}"
    assert got.dtype == np.dtype(dtype), msg
    assert got.shape == (1, *peer.shape, 1), msg
    np.testing.assert_allclose(got[0, ..., 0], peer, err_msg=msg, **_tol(dtype, peer))


def test_even_kernel_same_differs_from_scipy_by_one_shift():
    """Documents the even-k "same" difference (TF puts the extra pad after)."""
    x = np.arange(1.0, 9.0)
    w = np.array([1.0, 10.0])
    got = numconv.conv(x[None, :, None], w[:, None, None], padding="same")[0, :, 0]
    # TF: pads (0, 1) -> y[i] = x[i] + 10 x[i+1], last uses the zero pad.
    expected = x + 10 * np.append(x[1:], 0.0)
    np.testing.assert_allclose(got, expected)
    assert not np.allclose(got, scipy.signal.correlate(x, w, mode="same"))


# --------------------------------------------------------------------------- torch


def _draw_torch_case(rng, index):
    while True:
        r = int(rng.integers(1, 4))
        G = int(rng.choice([1, 1, 2, 3]))
        C, K = G * int(rng.integers(1, 4)), G * int(rng.integers(1, 3))
        L = tuple(int(v) for v in rng.integers(1, 11 if r < 3 else 7, r))
        k = tuple(int(v) for v in rng.integers(1, 5 if r < 3 else 4, r))
        d = tuple(int(v) for v in rng.integers(1, 4, r))
        mode = ["zeros", "zeros", "reflect", "replicate", "circular"][rng.integers(5)]
        kind = ["explicit", "explicit", "same", "valid"][rng.integers(4)]
        s = (1,) * r if kind == "same" else tuple(int(v) for v in rng.integers(1, 4, r))
        if kind == "explicit":
            pads = tuple(int(v) for v in rng.integers(0, 4, r))
            padding = pads[0] if len(set(pads)) == 1 and rng.random() < 0.5 else pads
            pairs = [(p, p) for p in pads]
        elif kind == "same":  # stride 1: total = d (k - 1), extra pad after (torch and TF)
            padding = "same"
            pairs = [(dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2)
                     for kk, dd in zip(k, d)]
        else:
            padding = "valid"
            pairs = [(0, 0)] * r
        ok = all((LL + b + a - dd * (kk - 1) - 1) >= 0
                 for LL, kk, dd, (b, a) in zip(L, k, d, pairs))
        if mode == "reflect":
            ok = ok and all(max(b, a) < LL for LL, (b, a) in zip(L, pairs))
        if mode == "circular":
            ok = ok and all(max(b, a) <= LL for LL, (b, a) in zip(L, pairs))
        if ok:
            return dict(index=index, rank=r, groups=G, in_channels=C, filters=K, spatial=L,
                        kernel_size=k, strides=s, dilation_rate=d, padding=padding,
                        pairs=pairs, padding_mode=mode,
                        batch=int(rng.integers(1, 3)), use_bias=bool(rng.random() < 0.6),
                        dtype=["float64", "float32", "complex128", "complex64"][rng.integers(4)],
                        data_seed=int(rng.integers(2**31)))


_rng = np.random.default_rng(PEER_SEED)
TORCH_CASES = [_draw_torch_case(_rng, i) for i in range(96)]
del _rng


def _torch_conv(torch, p, x, w, b):
    F = torch.nn.functional
    xt = torch.from_numpy(x)
    wt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1))))  # (K, Cg, *k)
    bt = None if b is None else torch.from_numpy(b)
    conv = getattr(F, f"conv{p['rank']}d")
    kw = dict(stride=p["strides"], dilation=p["dilation_rate"], groups=p["groups"])
    if p["padding_mode"] != "zeros":
        flat = tuple(v for pair in reversed(p["pairs"]) for v in pair)  # last axis first
        xt = F.pad(xt, flat, mode=p["padding_mode"])
        return conv(xt, wt, bt, padding=0, **kw).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: "same" with even kernel copies
        return conv(xt, wt, bt, padding=p["padding"], **kw).numpy()


def _torch_id(p):
    pad = p["padding"] if isinstance(p["padding"], str) else "explicit"
    return f"{p['index']}-r{p['rank']}-{p['dtype']}-{pad}-{p['padding_mode']}-g{p['groups']}"


@pytest.mark.parametrize("p", [pytest.param(p, id=_torch_id(p)) for p in TORCH_CASES])
def test_matches_torch_conv(p):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(p["data_seed"])
    Cg = p["in_channels"] // p["groups"]
    x = _random(rng, (p["batch"], p["in_channels"], *p["spatial"]), p["dtype"])
    w = _random(rng, (*p["kernel_size"], Cg, p["filters"]), p["dtype"],
                1.0 / np.sqrt(Cg * np.prod(p["kernel_size"])))
    b = _random(rng, (p["filters"],), p["dtype"]) if p["use_bias"] else None
    peer = _torch_conv(torch, p, x, w, b)
    got = numconv.conv(x, w, b, strides=p["strides"], padding=p["padding"],
                       dilation_rate=p["dilation_rate"], groups=p["groups"],
                       data_format="channels_first", padding_mode=p["padding_mode"])
    msg = f"case params: {p!r}"
    assert got.dtype == np.dtype(p["dtype"]), msg
    assert got.shape == peer.shape, f"{got.shape} != torch {peer.shape}; {msg}"
    np.testing.assert_allclose(got, peer, err_msg=msg, **_tol(p["dtype"], peer))


def test_torch_cases_cover_the_space():
    assert {1, 2, 3} <= {p["rank"] for p in TORCH_CASES}
    assert {"zeros", "reflect", "replicate", "circular"} <= {p["padding_mode"] for p in TORCH_CASES}
    assert {"float64", "float32", "complex128", "complex64"} <= {p["dtype"] for p in TORCH_CASES}
    assert any(p["padding"] == "same" and any(k % 2 == 0 for k in p["kernel_size"])
               for p in TORCH_CASES)
    assert any(p["groups"] > 1 and p["filters"] > p["groups"] for p in TORCH_CASES)
    assert any(max(p["strides"]) > 1 and max(p["dilation_rate"]) > 1 for p in TORCH_CASES)
