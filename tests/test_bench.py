"""The benchmark machinery: case table, peer registry and ``python -m numconv bench``.

Smoke tests only (small cases, one repeat): no assertion is made on any timing.
"""
import json
import subprocess
import sys

import numba
import numpy as np
import pytest

from numconv import _bench, _dispatch, _cases


def _peer_results(case):
    """{peer label: channels-last result} for every peer that supports ``case``."""
    out = {}
    for peer, options in [("numconv", {}), ("torch", {"layout": "nchw"}),
                          ("torch", {"layout": "channels_last"}), ("scipy", {})]:
        try:
            fn = _cases.PEERS[peer](case, **options)
        except NotImplementedError:
            continue
        out[" ".join([peer, *options.values()])] = fn.result()
    return out


def test_case_table_is_consistent():
    assert len(_cases.CASES) == len(_cases.CASE_LIST)
    for case in _cases.CASE_LIST:
        assert case.name.isascii() and case.name.isidentifier(), case.name
        assert case.area in {"conv1d", "conv2d", "conv3d", "depthwise", "variants", "ops", "fft"}, case
        assert case.op in _cases.OPS, case
        assert len(case.x_shape) == case.rank + 2, case
        assert case.flops > 0 and case.min_bytes > 0, case
        assert all(o >= 1 for o in case.out_shape), case
    resnet = _cases.CASES["resnet"]
    assert resnet.out_shape == (8, 56, 56, 64)
    assert resnet.flops == 2 * 8 * 56 * 56 * 64 * 9 * 64
    assert _cases.CASES["stem"].out_shape == (1, 112, 112, 64)
    assert _cases.CASES["wavenet"].geometry[0] == ((8, 0),)
    assert _cases.CASES["strided1d"].out_shape == (32, 1024, 128)


def test_inputs_are_seeded_and_shared_across_dtype_and_layout():
    x32, w32 = _cases.inputs("resnet")
    x64, w64 = _cases.inputs("resnet_f64")
    xcf, _ = _cases.inputs("resnet_cf")
    assert x32.dtype == np.float32 and x64.dtype == np.float64
    np.testing.assert_array_equal(x32, x64.astype(np.float32))
    np.testing.assert_array_equal(np.moveaxis(xcf, 1, -1), x32)
    assert _cases.inputs("resnet")[0] is x32  # cached


@pytest.mark.parametrize("name", list(_cases.CASES))
def test_peers_agree_with_the_reference_on_shrunk_cases(name):
    """Every peer's prepared callable computes the case (same shape, same values)
    on a tiny version of it: the bench compares like with like."""
    case = _cases.CASES[name].shrunk()
    results = _peer_results(case)
    assert "numconv" in results
    try:
        ref = _cases.reference(case)
    except NotImplementedError:  # transpose / gradients: tests/test_grad.py has their references
        assert case.op in ("transpose", "backprop_input", "backprop_kernel")
        if len(results) == 1:
            pytest.skip("no peer to compare with (torch not installed)")
        ref = results["numconv"].astype(np.float64)
    assert ref.shape == case.out_shape
    tol = 1e-12 if case.dtype == "float64" else 1e-5
    for label, y in results.items():
        assert y.shape == ref.shape, (name, label)
        assert _cases.rel_error(y, ref) < tol, (name, label, _cases.rel_error(y, ref))


@pytest.mark.parametrize("name", [n for n, c in _cases.CASES.items() if c.data_format == "channels_last"])
def test_channels_first_variant_computes_the_same_case(name):
    """``bench --channels-first`` times every case in both layouts: the
    channels_first variant must take its inputs in that layout and agree."""
    case = _cases.CASES[name].shrunk()
    cl = _cases.prepare_numconv(case)
    cf = _cases.prepare_numconv(case, data_format="channels_first")
    np.testing.assert_allclose(cf.result(), cl.result(), rtol=1e-5, atol=1e-5 * np.abs(cl.result()).max())


def test_scipy_peer_maps_stride_dilation_and_padding_modes():
    pytest.importorskip("scipy")
    case = _cases.Case("t", "depthwise", (2, 13, 11, 4), (3, 2, 1, 8),
                       (("strides", (2, 1)), ("dilation_rate", (1, 2)), ("padding", "same"),
                        ("padding_mode", "reflect"), ("groups", 4)))
    y = _cases.prepare_scipy(case).result()
    assert _cases.rel_error(y, _cases.reference(case)) < 1e-5


def test_select():
    names = lambda sel: [c.name for c in _cases.select(sel)]  # noqa: E731
    assert names("resnet") == ["resnet"]
    assert names("resnet*") == [n for n in _cases.CASES if n.startswith("resnet")]
    assert names("depthwise, stock") == ["stock", "depthwise2d", "depthwise1d"]
    assert len(names("")) == len(_cases.CASES)
    with pytest.raises(ValueError, match="no benchmark case matches 'nope'; cases are: resnet"):
        _cases.select("nope")


def test_select_all_spans_both_tables():
    conv, sig = _cases.select_all("image31,stock")
    assert [c.name for c in conv] == ["stock"] and [c.name for c in sig] == ["image31"]
    conv, sig = _cases.select_all("fft")
    assert [c.name for c in conv] == ["fft2d", "fft1d"] and not sig
    conv, sig = _cases.select_all(None)
    assert len(conv) == len(_cases.CASES) and len(sig) == len(_cases.SIGNAL_CASES)
    with pytest.raises(ValueError, match="no benchmark case matches 'nope'.*image31"):
        _cases.select_all("nope")


@pytest.mark.parametrize("name", list(_cases.SIGNAL_CASES))
def test_signal_cases_compute_the_same_convolution(name):
    """numconv.signal and the scipy.signal peer each case names compute the case
    (full size): the same shape, and float64 or float32 accuracy against SciPy's
    float64 fftconvolve."""
    pytest.importorskip("scipy")
    case = _cases.SIGNAL_CASES[name]
    ref = _cases.signal_reference(name)
    tol = 1e-12 if case.dtype == "float64" else 1e-5
    for impl in ("numconv", "scipy"):
        y = _cases.prepare_signal(name, impl, threads=min(2, numba.config.NUMBA_NUM_THREADS)).result()
        assert y.shape == ref.shape and y.dtype == case.dtype, (name, impl)
        assert _cases.rel_error(y, ref) < tol, (name, impl, _cases.rel_error(y, ref))
    with pytest.raises(NotImplementedError):
        _cases.prepare_signal(name, "torch")


def test_missing_peer_raises_not_implemented(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(NotImplementedError, match="torch is not installed"):
        _cases.prepare_torch("stock")
    with pytest.raises(NotImplementedError, match="channel-contracting"):
        _cases.prepare_scipy("resnet")
    with pytest.raises(NotImplementedError, match="no method 'nope'"):
        _cases.prepare_numconv("stock", method="nope")


def test_bench_prints_the_table(capsys):
    torch_present = _bench._import_torch(False) is not None
    assert _bench.main(["--cases", "stock", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "ceilings: 2048^3 np.matmul" in out and "SGEMM" in out
    header = next(line for line in out.splitlines() if line.startswith("case "))
    for col in ("numconv ms", "GFLOP/s", "%GEMM", "%peak", "err numconv", "+MiB"):
        assert col in header
    assert ("torch best" in header) == torch_present and ("torch %peak" in header) == torch_present
    assert "FMA peak (" in out
    row = next(line for line in out.splitlines() if line.startswith("stock "))
    assert "float32" in row


def test_bench_prints_the_signal_table(capsys, tmp_path):
    pytest.importorskip("scipy")
    path = tmp_path / "bench.json"
    assert _bench.main(["--cases", "samples1025", "--repeat", "1", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("case "))
    for col in ("numconv ms", "scipy function", "scipy ms", "speedup", "err numconv", "+MiB"):
        assert col in header
    assert "scipy.signal.oaconvolve" in next(line for line in out.splitlines() if line.startswith("samples1025 "))
    data = json.loads(path.read_text())
    (row,) = data["signal_rows"]
    assert not data["rows"] and row["numconv_s"] > 0 and row["peer_s"] > 0 and row["err_numconv"] < 1e-12


def test_bench_runs_without_torch(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setattr(_bench, "measure_gemm_subprocess", lambda *a, **k: None)  # in-process fallback
    path = tmp_path / "bench.json"
    assert _bench.main(["--cases", "stock", "--repeat", "1", "--channels-first", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "torch not available" in out
    header = next(line for line in out.splitlines() if line.startswith("case "))
    assert "torch" not in header and "speedup" not in header and "cf/cl" in header
    data = json.loads(path.read_text())
    (row,) = data["rows"]
    assert row["case"] == "stock" and row["numconv_s"] > 0 and row["cf_over_cl"] > 0
    assert "torch_best_s" not in row and row["err_numconv"] < 1e-5
    assert data["machine"]["torch"] is None and data["ceilings"]["gemm"]["float32"] > 0
    assert data["machine"]["dispatch_class"] in _dispatch.FITTED_CONSTANTS
    assert data["ceilings"]["fma_peak"]["float32"] > 0 and row["pct_peak"] > 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fma_peak_loop_runs_every_chain_the_given_number_of_times(dtype):
    """The peak loop's result is the closed form of its recurrence, acc <- acc * a + b
    from 1 + chain, summed over the chains: in float64 one iteration more or less
    moves it by ~1e-6, a chain dropped by ~1 % (float32's rounding over 1000 steps
    is ~1.4e-5: it checks the chains)."""
    from numconv._kernels.peak import CHAINS, _burst, fma_peak

    a, b, n = float(np.dtype(dtype).type(0.999999)), float(np.dtype(dtype).type(1e-7)), 1000
    fixed = b / (1 - a)
    want = sum(a**n * (1 + k - fixed) + fixed for k in range(CHAINS))
    got = _burst(np.empty(1, dtype), n, 2)
    np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == "float64" else 1e-4)
    assert 0 < fma_peak(dtype, 1, seconds=0.005, repeat=1) < float("inf")


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit, match=r"--plot needs matplotlib.*pip install"):
        _bench.main(["--cases", "stock", "--plot", "x.png"])


@pytest.mark.parametrize("argv, message", [
    (["demo", "--seed", "-1"], "--seed: must be >= 0, got -1"),
    (["demo", "--batch", "0"], "--batch: must be >= 1"),
    (["demo", "--repeat", "x"], "--repeat: expected an integer, got 'x'"),
    (["bench", "--cases", "nosuch"], "--cases: no benchmark case matches 'nosuch'; cases are: resnet"),
    (["bench", "--cases", ""], "--cases: expected one or more names"),
    (["bench", "--threads", "0"], "--threads: must be >= 1"),
    (["bench", "--threads", "100000"], "--threads: must be at most"),
    (["bench", "--repeat", "0"], "--repeat: must be >= 1"),
    (["bench", "--plot", "/no/such/folder/x.png"], "--plot: the folder '/no/such/folder' does not exist"),
    (["bench", "--json", "/no/such/folder/x.json"], "--json: the folder"),
])
def test_bad_command_line_arguments_are_usage_errors(argv, message, capsys):
    """Bad values stop at argparse (exit status 2, the usage and the reason), before
    any work: they had been tracebacks, or for an output path a traceback after
    the whole table was measured."""
    from numconv.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_importing_numconv_and_the_bench_does_not_import_torch_or_matplotlib():
    code = ("import sys, numconv, numconv._bench, numconv._cases; "
            "bad = [m for m in ('torch', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_crossover_plot_smoke(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import io

    from numconv import _bench

    monkeypatch.setattr(_bench, "CROSSOVER_SCENARIOS", [
        ("tiny image", (1, 24, 24, 1), lambda k: (k, k, 1, 1), (3, 9)),
        ("tiny layer", (1, 8, 8, 4), lambda k: (k, k, 4, 4), (1, 3)),
    ])
    out = io.StringIO()
    path = tmp_path / "crossover.png"
    assert _bench.crossover(str(path), repeat=1, out=out) == 0
    text = out.getvalue()
    assert "k=  9: direct" in text and "auto -> " in text
    assert path.stat().st_size > 1000


def test_peak_memory_counts_the_scratch_a_call_borrows():
    """A channels_first conv borrows its channels-last copies from the thread's
    scratch pool; the bench's peak-memory column must still count them (as a
    first call would allocate them), not report the reuse as free."""
    import numpy as np
    import numconv
    from numconv._bench import peak_extra_mib
    # 64 channels x 3 x 3 = 576 terms: past the long kernel's in-place channels_first
    # reads, so the input is transposed into scratch too (direct: the Winograd
    # path stages channels_first data per task instead)
    x = np.ones((4, 64, 32, 32), np.float32)
    w = np.ones((3, 3, 64, 16), np.float32)
    call = lambda: numconv.conv(x, w, padding="same", data_format="channels_first", method="direct")  # noqa: E731
    call()
    call()  # the pool now holds both copies
    assert peak_extra_mib(call) >= (x.nbytes + x.nbytes // 4) / 2**20 * 0.9


def test_time_pair_samples_alternately():
    """``time_pair`` takes its two calls' samples in turn (so their ratio sees the
    same host load) and returns each one's median per call."""
    order = []
    a, b = _bench.time_pair(lambda: order.append("a"), lambda: order.append("b"), 3, warmup=1, min_sample=0)
    assert order == ["a", "b", "a"] + ["a", "b"] * 3
    assert a > 0 and b > 0
