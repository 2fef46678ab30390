"""``python -m numconv``'s command line: help texts, and bad options stopped before
any measuring (argparse's usage and reason, exit status 2) or, for an output file
that fails at the end, a one-line message instead of a traceback.

The runs that do measure use the tiny ``stock`` case, one repeat, and stub the
machine ceilings (a 2048^3 matmul, a copy, the FMA peak loop) to keep them fast.
"""
import os
import sys

import pytest

from numconv import _bench, _cli
from numconv.__main__ import main


@pytest.fixture
def fast_ceilings(monkeypatch):
    from numconv._kernels import peak

    monkeypatch.setattr(_bench, "measure_gemm_subprocess", lambda dtypes, threads=None: {d: 100.0 for d in dtypes})
    monkeypatch.setattr(_bench, "measure_bandwidth", lambda: 10.0)
    monkeypatch.setattr(peak, "fma_peak", lambda dtype, threads: 200.0)


def _usage_error(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


# ---------------------------------------------------------------- help (N1, N2)


def test_top_level_help_describes_both_commands_in_plain_text(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out
    for text in ("demo ", "bench ", "scipy.signal", "--crossover", "--dask"):
        assert text in out, text


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_command_help_has_no_rst_backticks(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "``" not in capsys.readouterr().out


def test_cases_help_lists_the_signal_cases(capsys):
    from numconv import _cases

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in list(_cases.SIGNAL_CASES) + ["resnet"]:
        assert name in out, name


# ---------------------------------------------------------------- --method (N4)


def test_bad_method_is_a_usage_error(capsys):
    err = _usage_error(["bench", "--method", "nope"], capsys)
    assert "--method: expected 'auto' or one of 'direct'" in err and "'winograd'" in err and "'nope'" in err


# ---------------------------------------------------------------- --plot / --crossover formats (D1, N3)


@pytest.mark.parametrize("flag", ["--plot", "--crossover"])
def test_unwritable_plot_format_is_refused_before_measuring(flag, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(_bench, "measure_case", lambda *a, **k: pytest.fail("measured before refusing"))
    err = _usage_error(["bench", "--repeat", "1", flag, str(tmp_path / "out.jpgx")], capsys)
    assert f"argument {flag}: matplotlib cannot write a .jpgx file" in err
    assert ".png" in err and ".svg" in err and "out.png" in err
    assert not (tmp_path / "out.jpgx").exists()


@pytest.mark.parametrize("name", ["out.PNG", "out.svg", "out.pdf", "noext"])
def test_plot_formats_matplotlib_writes_are_accepted(name, tmp_path):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / name)
    assert _cli.plot_file(path) == path
    assert not os.path.exists(path)  # the writability check leaves nothing behind


def test_crossover_without_matplotlib_names_its_flag(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit, match=r"^numconv bench: --crossover needs matplotlib.*pip install"):
        main(["bench", "--crossover", str(tmp_path / "x.png")])


# ---------------------------------------------------------------- --json (D2)


def test_output_file_check_keeps_an_existing_file(tmp_path):
    path = tmp_path / "old.json"
    path.write_text("keep me")
    assert _cli.output_file(str(path)) == str(path)
    assert path.read_text() == "keep me"


def test_json_that_cannot_be_opened_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    os.chmod(tmp_path, 0o500)  # root ignores the mode: then /proc refuses new files
    try:
        bad = "/proc/numconv_test.json" if os.access(tmp_path, os.W_OK) else str(tmp_path / "x.json")
        err = _usage_error(["bench", "--cases", "stock", "--repeat", "1", "--json", bad], capsys)
    finally:
        os.chmod(tmp_path, 0o700)
    assert "argument --json:" in err and ("cannot write" in err or "is not writable" in err)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
def test_json_write_failure_at_the_end_is_one_line(fast_ceilings, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--cases", "stock", "--repeat", "1", "--no-torch", "--no-accuracy", "--json", "/dev/full"])
    assert stop.value.code == "numconv bench: cannot write --json /dev/full: No space left on device"


# ---------------------------------------------------------------- --dask / --crossover with table options (D3)


@pytest.mark.parametrize("extra, flag", [
    (["--json", "{tmp}/d.json"], "--json"),
    (["--plot", "{tmp}/d.png"], "--plot"),
    (["--cases", "stock"], "--cases"),
    (["--channels-first"], "--channels-first"),
    (["--method", "fft"], "--method"),
    (["--no-accuracy"], "--no-accuracy"),
])
@pytest.mark.parametrize("mode", [["--dask"], ["--crossover", "{tmp}/c.png"]])
def test_dask_and_crossover_refuse_the_table_options(mode, extra, flag, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the format check is not what is tested here
    argv = ["bench"] + [a.format(tmp=tmp_path) for a in mode + extra]
    err = _usage_error(argv, capsys)
    assert f"{flag} cannot be used with {mode[0]}" in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_dask_and_crossover_together_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    err = _usage_error(["bench", "--dask", "--crossover", str(tmp_path / "c.png")], capsys)
    assert "--dask cannot be used with --crossover" in err


def test_the_stand_alone_bench_refuses_them_too(capsys):
    with pytest.raises(SystemExit) as stop:
        _bench.main(["--dask", "--json", "x.json"])
    assert stop.value.code == 2 and "--json cannot be used with --dask" in capsys.readouterr().err


# ---------------------------------------------------------------- the printed header (N5)


def test_no_torch_prints_no_torch_legend(fast_ceilings, capsys):
    assert main(["bench", "--cases", "stock", "--repeat", "1", "--no-torch", "--no-accuracy"]) == 0
    out = capsys.readouterr().out
    assert "ceilings: 2048^3 np.matmul" in out and "%GEMM = " in out
    assert "speedup = torch" not in out and "torch %peak" not in out and "err = " not in out


def test_signal_cases_only_print_no_empty_ceilings(fast_ceilings, capsys):
    pytest.importorskip("scipy")
    assert main(["bench", "--cases", "samples1025", "--repeat", "1", "--no-accuracy"]) == 0
    out = capsys.readouterr().out
    assert "ceilings:" not in out and "%GEMM = " not in out
    assert "numconv.signal.convolve" in out


# ---------------------------------------------------------------- benchmarks/net_layers.py (D10)


def _net_layers():
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks", "net_layers.py")
    spec = importlib.util.spec_from_file_location("net_layers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_net_layers_threads_are_checked_and_default_to_what_numba_has(capsys):
    import numba

    net_layers = _net_layers()
    assert net_layers.parse_args([]).threads == min(2, numba.config.NUMBA_NUM_THREADS)
    assert net_layers.parse_args(["--threads", "1"]).threads == 1
    for bad, message in [("0", "--threads: must be >= 1"), (str(numba.config.NUMBA_NUM_THREADS + 1),
                                                             "--threads: must be at most"),
                         ("x", "--threads: expected an integer")]:
        with pytest.raises(SystemExit) as stop:
            net_layers.main(["--threads", bad])
        assert stop.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        net_layers.parse_args(["--budget", "0"])
    assert "--budget: must be a positive number of seconds" in capsys.readouterr().err
