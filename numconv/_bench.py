"""``python -m numconv bench``: numconv against PyTorch on the benchmark case table.

For each case of ``numconv._cases.CASES`` (the table asv also runs) it prints
numconv's time, torch's time in its NCHW and channels_last memory formats and the
faster of the two, the speedup (torch best / numconv), numconv's GFLOP/s and its
share of the machine's matrix-product ceiling (a 2048^3 ``np.matmul`` measured at
start-up; DGEMM for float64 cases), float32 error against a float64 reference for
both libraries, and the peak extra memory of one numconv call.

``python -m numconv._bench`` runs the same thing stand-alone. torch, scipy and
matplotlib are imported only inside ``run``; without torch the table has the
numconv columns only.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from . import _cases
from ._cli import name_list, output_file, plain_help, plot_file, positive_int, thread_count

#: Environment variables that slow OpenBLAS's GEMM on this kind of machine.
SLOW_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: Calls before timing starts (JIT compile / cache load, oneDNN primitive creation).
WARMUP = 2
#: Each timed sample repeats a fast call until it lasts at least this long (s).
MIN_SAMPLE_S = 0.02
#: Pause after BLAS / torch work before timing numconv: OpenBLAS threads spin for
#: ~100-200 ms after a call and slow a following Numba kernel 2.5-3x (PERF_NOTES).
SETTLE_S = 0.25


def _case_names(text):
    """``--cases``: names, globs or substrings that each choose a case."""
    try:
        _cases.select_all(name_list(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _method_name(text):
    """``--method``: "auto" or a registered path (``numconv._dispatch.METHODS``)."""
    from ._dispatch import METHODS

    if text != "auto" and text not in METHODS:
        raise argparse.ArgumentTypeError(f"expected 'auto' or one of {', '.join(map(repr, METHODS))}; got {text!r}")
    return text


#: options of the case table that ``--dask`` and ``--crossover`` do not use:
#: (flag, attribute, value when not given)
TABLE_ONLY = (("--cases", "cases", None), ("--method", "method", "auto"), ("--channels-first", "channels_first", False),
              ("--no-accuracy", "no_accuracy", False), ("--plot", "plot", None), ("--json", "json", None))


def _only_repeat_and_threads(other_mode):
    """The help text of a mode that replaces the case table (``check_arguments``)."""
    return (f"Uses --repeat and --threads only: the case table's options "
            f"({', '.join(flag for flag, _, _ in TABLE_ONLY)}) and {other_mode} are refused with it")


def add_arguments(parser):
    """Add the ``bench`` options to an ``argparse`` parser (or sub-parser)."""
    parser.add_argument("--cases", type=_case_names, default=None, metavar="NAME,...",
                        help="comma-separated case names, globs ('resnet*') or substrings ('1d') "
                             "(default: every case). Conv cases (against torch): " + ", ".join(_cases.CASES)
                             + ". Signal cases (numconv.signal against scipy.signal): "
                             + ", ".join(_cases.SIGNAL_CASES))
    parser.add_argument("--repeat", type=positive_int, default=7, metavar="N",
                        help="timed samples per measurement; the median is reported (default 7)")
    parser.add_argument("--threads", type=thread_count, default=None, metavar="N",
                        help="threads for numconv and torch (default 2, or fewer if Numba sees fewer cores)")
    from ._dispatch import METHODS

    parser.add_argument("--method", type=_method_name, default="auto",
                        help=f'numconv method=: "auto" (default) or one of {", ".join(map(repr, METHODS))}')
    parser.add_argument("--channels-first", action="store_true",
                        help="add a column: numconv time with channels_first input / channels_last time")
    parser.add_argument("--no-torch", action="store_true", help="numconv columns only, even if torch is installed")
    parser.add_argument("--no-accuracy", action="store_true",
                        help="skip the float64 reference (error columns)")
    parser.add_argument("--plot", type=plot_file, metavar="FILE.png",
                        help="bar chart of speedups and GFLOP/s, in any format matplotlib writes (.png, .svg, "
                             ".pdf, ...; needs matplotlib: pip install 'numconv[plot]')")
    parser.add_argument("--json", type=output_file, metavar="FILE", help="also write every measurement to FILE as JSON")
    parser.add_argument("--crossover", type=plot_file, metavar="FILE.png",
                        help="instead of the case table: time direct and FFT against kernel size for a "
                             "single-channel image and a 64-channel layer, mark the dispatcher's choice, "
                             "and draw it to FILE.png (needs matplotlib). " + _only_repeat_and_threads("--dask"))
    parser.add_argument("--dask", action="store_true",
                        help="instead of the case table: numconv.dask on a LocalCluster of 2 worker processes "
                             "against the in-memory op (needs pip install 'numconv[dask]'; "
                             "see numconv/dask/_bench.py). " + _only_repeat_and_threads("--crossover"))
    return parser


def check_arguments(parser, args):
    """Refuse options that the chosen mode would ignore (``parser.error``: the
    usage, the reason, exit status 2), before any work: ``--dask`` and
    ``--crossover`` replace the case table and read only ``--repeat`` and
    ``--threads``; they had ignored ``--json`` and the rest without a word."""
    modes = [flag for flag, on in (("--dask", getattr(args, "dask", False)),
                                   ("--crossover", getattr(args, "crossover", None))) if on]
    if len(modes) == 2:
        parser.error("--dask cannot be used with --crossover: each replaces the case table with its own "
                     "benchmark; run them one at a time")
    if modes:
        for flag, attr, unset in TABLE_ONLY:
            if getattr(args, attr, unset) != unset:
                parser.error(f"{flag} cannot be used with {modes[0]}: {modes[0]} runs its own benchmark instead of "
                             f"the case table and does not use {flag}; drop {flag}, or drop {modes[0]} to run the "
                             "case table")
    return args


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m numconv bench", description=plain_help(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(check_arguments(parser, parser.parse_args(argv)))


# ------------------------------------------------------------------- measuring

def time_call(fn, repeat, warmup=WARMUP, min_sample=MIN_SAMPLE_S):
    """Median seconds per call of ``fn`` over ``repeat`` samples, after ``warmup``
    calls; each sample loops a fast call until it lasts ``min_sample`` seconds."""
    return _time_in_turn((fn,), repeat, warmup, min_sample)[0]


def time_pair(fn, other, repeat, warmup=WARMUP, min_sample=MIN_SAMPLE_S):
    """Median seconds per call of ``fn`` and of ``other`` (as ``time_call``), their
    samples taken alternately, so a ratio of the two sees the same host load."""
    return _time_in_turn((fn, other), repeat, warmup, min_sample)


#: seconds of rest before each sample of ``_time_in_turn``: OpenMP pools (Numba's
#: omp layer, torch's) spin for a few milliseconds after their last parallel
#: region, and on 2 cores a pool still spinning took a core from the next
#: sample's library (numconv's FFT cases after torch's samples: 7-11 ms instead
#: of 10.5 measured alone on 4 x 256 x 256 x 8 -> 8, 25 x 25)
SETTLE_S = 0.02


def _time_in_turn(fns, repeat, warmup, min_sample):
    """``time_call`` for each of ``fns``, their warm-up calls and samples taken in
    turn, each sample after a rest of ``SETTLE_S``; calls per sample set by the
    first one's time."""
    for _ in range(warmup):
        for f in fns:
            f()
    t0 = time.perf_counter()
    fns[0]()
    first = time.perf_counter() - t0
    number = max(1, min(1000, int(min_sample / max(first, 1e-9))))
    samples = [[] for _ in fns]
    for _ in range(max(repeat, 1)):
        for f, out in zip(fns, samples):
            time.sleep(SETTLE_S)
            t0 = time.perf_counter()
            for _ in range(number):
                f()
            out.append((time.perf_counter() - t0) / number)
    return tuple(statistics.median(s) for s in samples)


def measure_gemm(dtypes=("float32",), n=2048, repeat=5):
    """GFLOP/s of an ``n^3`` ``np.matmul`` per dtype, best of ``repeat``, in this process."""
    out = {}
    for dt in dtypes:
        a = np.random.default_rng(0).standard_normal((n, n)).astype(dt)
        c = np.empty_like(a)
        np.matmul(a, a, out=c)
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            np.matmul(a, a, out=c)
            best = min(best, time.perf_counter() - t0)
        out[dt] = 2 * n**3 / best / 1e9
    return out


def measure_gemm_subprocess(dtypes=("float32",), threads=None, n=2048, repeat=5):
    """``measure_gemm`` in a fresh interpreter with ``SLOW_BLAS_VARS`` removed
    (OpenBLAS reads them once, at load) and BLAS limited to ``threads`` threads.
    ``None`` if the subprocess fails."""
    env = {k: v for k, v in os.environ.items() if k not in SLOW_BLAS_VARS}
    if threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    code = ("import json; from numconv._bench import measure_gemm; "
            f"print(json.dumps(measure_gemm({tuple(dtypes)!r}, {n}, {repeat})))")
    try:
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             timeout=300, check=True)
        return json.loads(res.stdout)
    except (subprocess.SubprocessError, OSError, ValueError):
        return None


def measure_bandwidth(nbytes=256 * 2**20, repeat=3):
    """Copy bandwidth in GB/s (bytes read + written) of one ``np.copyto``, best of ``repeat``."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def peak_extra_mib(fn):
    """Peak bytes (MiB) that one call of ``fn`` allocates beyond its result, as
    ``tracemalloc`` sees them (NumPy registers its buffers with it; memory that
    Numba's runtime allocates inside ``@njit`` code is not traced). The thread's
    scratch pool is emptied first, so intermediates the call would borrow from it
    (``numconv._memory.scratch``) are allocated, and counted, by the call."""
    from . import _memory
    _memory.release_scratch()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        y = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(peak - base - getattr(y, "nbytes", 0), 0) / 2**20


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------- the run

def _default_threads():
    import numba

    return min(2, numba.config.NUMBA_NUM_THREADS)


def _import_torch(disabled):
    if disabled:
        return None
    try:
        import torch
    except ImportError:  # not installed, or hidden with sys.modules["torch"] = None
        return None
    return torch


def _check_plot_backend(flag="--plot"):
    """Select matplotlib's file backend, or stop with a message naming ``flag``
    (``--plot`` or ``--crossover``) where matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(f"numconv bench: {flag} needs matplotlib, which is not installed. "
                         "Install it with: pip install matplotlib  (or pip install 'numconv[plot]')") from None
    matplotlib.use("Agg")


def _write_failed(flag, path, error):
    """The one-line message (exit status 1) for an output file that could not be written at the end."""
    return SystemExit(f"numconv bench: cannot write {flag} {path}: {error.strerror or error}")


def measure_case(case, *, repeat, threads, torch, method="auto", channels_first=False, accuracy=True,
                 ceilings=None):
    """Every number of one table row, as a dict (times in seconds)."""
    ceilings = ceilings or {}
    row = {"case": case.name, "shape": case.describe(), "dtype": case.dtype, "flops": case.flops,
           "min_bytes": case.min_bytes}
    time.sleep(SETTLE_S)
    nc = _cases.prepare_numconv(case, method=method, threads=threads)
    t_nc = row["numconv_s"] = time_call(nc, repeat)
    row["gflops"] = case.flops / t_nc / 1e9
    gemm = ceilings.get("gemm", {}).get(case.dtype)
    row["pct_gemm"] = 100 * row["gflops"] / gemm if gemm else None
    peak = ceilings.get("fma_peak", {}).get(case.dtype)
    row["pct_peak"] = 100 * row["gflops"] / peak if peak else None
    bw = ceilings.get("bandwidth_gbs")
    row["x_bandwidth"] = None
    if bw and gemm and case.flops / case.min_bytes < gemm / bw:  # memory-bound by the roofline
        row["x_bandwidth"] = t_nc / (case.min_bytes / (bw * 1e9))
    row["extra_mib"] = peak_extra_mib(nc)
    row["numconv_fresh_kernel_s"] = _time_without_kept_spectra(nc, repeat)
    row["cf_over_cl"] = None
    if channels_first and case.data_format == "channels_last":
        # both layouts again, sampled alternately: the host's load drifts between
        # measurements taken one after the other (stock: 1.05 to 1.6 across runs)
        ncf = _cases.prepare_numconv(case, method=method, data_format="channels_first", threads=threads)
        t_cl, t_cf = time_pair(nc, ncf, repeat)
        row["cf_over_cl"] = t_cf / t_cl
    torch_calls = {}
    if torch is not None:
        for layout in _cases.TORCH_LAYOUTS:
            try:
                torch_calls[layout] = _cases.prepare_torch(case, layout=layout, threads=threads)
            except NotImplementedError:
                continue
            row[f"torch_{layout}_s"] = time_call(torch_calls[layout], repeat)
        times = {lay: row[f"torch_{lay}_s"] for lay in torch_calls}
        if times:
            best = min(times, key=times.get)
            row["torch_best_layout"] = best
            row["torch_best_s"] = times[best]
            row["speedup"] = times[best] / t_nc
            row["torch_pct_peak"] = 100 * case.flops / times[best] / 1e9 / peak if peak else None
    try:
        ref = _cases.reference(case) if accuracy else None
    except NotImplementedError:  # ops checked by the test suite instead
        ref = None
    if ref is not None:
        row["err_numconv"] = _cases.rel_error(nc.result(), ref)
        if "torch_best_layout" in row:
            row["err_torch"] = _cases.rel_error(torch_calls[row["torch_best_layout"]].result(), ref)
    return row


def _time_without_kept_spectra(nc, repeat):
    """``nc``'s time when every call transforms its kernel anew (no spectrum kept
    between calls: ``_paths/fft.kernel_spectrum``), or None when ``nc`` keeps none
    (its path transforms no kernel)."""
    from numconv._paths import fft

    fft.clear_spectrum_cache()
    nc()
    if not fft._spectra:
        return None
    with fft.spectra_not_kept():
        return time_call(nc, repeat)


def _print_fresh_kernel(p, rows, peer_key):
    """A line per row timed without kept kernel spectra (``_time_without_kept_spectra``)."""
    for r in rows:
        t = r.get("numconv_fresh_kernel_s")
        if t:
            p(f"  {r['case']}: {t * 1e3:.2f} ms when every call transforms the kernel anew (numconv keeps "
              "kernel spectra between calls, keyed by the kernel's values)"
              + (f": speedup {r[peer_key] / t:.2f}" if r.get(peer_key) else ""))


def measure_signal_case(case, *, repeat, threads, accuracy=True):
    """One row of the ``numconv.signal`` table, as a dict (times in seconds)."""
    row = {"case": case.name, "shape": case.describe(), "dtype": case.dtype, "flops": case.flops,
           "peer": f"scipy.signal.{case.peer}"}
    time.sleep(SETTLE_S)
    nc = _cases.prepare_signal(case.name, "numconv", threads=threads)
    t_nc = row["numconv_s"] = time_call(nc, repeat)
    row["gflops"] = case.flops / t_nc / 1e9
    row["extra_mib"] = peak_extra_mib(nc)
    fresh = _time_without_kept_spectra(nc, repeat)
    if fresh is not None:
        row["numconv_fresh_kernel_s"] = fresh
    try:
        peer = _cases.prepare_signal(case.name, "scipy")
    except NotImplementedError:
        peer = None
    if peer is not None:
        row["peer_s"] = time_call(peer, repeat)
        row["speedup"] = row["peer_s"] / t_nc
    if accuracy and peer is not None:
        ref = _cases.signal_reference(case.name)
        row["err_numconv"] = _cases.rel_error(nc.result(), ref)
        row["err_peer"] = _cases.rel_error(peer.result(), ref)
    return row


def _signal_columns(with_accuracy):
    cols = [("case", 16, lambda r: r["case"]),
            ("dtype", 7, lambda r: r["dtype"]),
            ("numconv ms", 10, lambda r: _fmt_ms(r["numconv_s"])),
            ("scipy function", 24, lambda r: r["peer"]),
            ("scipy ms", 9, lambda r: _fmt_ms(r.get("peer_s"))),
            ("speedup", 7, lambda r: _fmt(r.get("speedup"), ".2f")),
            ("GFLOP/s", 7, lambda r: _fmt(r["gflops"], ".1f"))]
    if with_accuracy:
        cols += [("err numconv", 11, lambda r: _fmt(r.get("err_numconv"), ".1e")),
                 ("err scipy", 9, lambda r: _fmt(r.get("err_peer"), ".1e"))]
    return cols + [("+MiB", 6, lambda r: _fmt(r["extra_mib"], ".1f"))]


def _fmt_ms(s):
    if s is None:
        return "-"
    ms = s * 1e3
    return f"{ms:.1f}" if ms >= 100 else f"{ms:.2f}" if ms >= 1 else f"{ms:.3f}"


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def _columns(with_torch, with_cf, with_accuracy):
    cols = [("case", 16, lambda r: r["case"]),
            ("dtype", 7, lambda r: r["dtype"]),
            ("numconv ms", 10, lambda r: _fmt_ms(r["numconv_s"]))]
    if with_torch:
        cols += [("torch NCHW", 10, lambda r: _fmt_ms(r.get("torch_nchw_s"))),
                 ("torch CL", 9, lambda r: _fmt_ms(r.get("torch_channels_last_s"))),
                 ("torch best", 10, lambda r: _fmt_ms(r.get("torch_best_s"))),
                 ("speedup", 7, lambda r: _fmt(r.get("speedup"), ".2f"))]
    cols += [("GFLOP/s", 7, lambda r: _fmt(r["gflops"], ".1f")),
             ("%GEMM", 5, lambda r: _fmt(r["pct_gemm"], ".0f")),
             ("%peak", 5, lambda r: _fmt(r.get("pct_peak"), ".0f"))]
    if with_torch:
        cols += [("torch %peak", 11, lambda r: _fmt(r.get("torch_pct_peak"), ".0f"))]
    cols += [("xBW", 5, lambda r: _fmt(r["x_bandwidth"], ".1f"))]
    if with_accuracy:
        cols += [("err numconv", 11, lambda r: _fmt(r.get("err_numconv"), ".1e"))]
        if with_torch:
            cols += [("err torch", 9, lambda r: _fmt(r.get("err_torch"), ".1e"))]
    cols += [("+MiB", 6, lambda r: _fmt(r["extra_mib"], ".1f"))]
    if with_cf:
        cols += [("cf/cl", 5, lambda r: _fmt(r["cf_over_cl"], ".2f"))]
    return cols


def _line(cols, values):
    return "  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                     for i, ((_, w, _f), v) in enumerate(zip(cols, values)))


def run(args):
    """Run the benchmark described by parsed ``args`` (see ``add_arguments``);
    print the table, optionally write JSON and a plot. Returns 0."""
    import numba

    import numconv

    if getattr(args, "dask", False):
        from .dask._bench import run as run_dask

        return run_dask(args)
    if getattr(args, "crossover", None):
        _check_plot_backend("--crossover")
        numconv.set_num_threads(args.threads if args.threads is not None else _default_threads())
        return crossover(args.crossover, repeat=args.repeat)
    try:
        cases, signal_cases = _cases.select_all(args.cases)
    except ValueError as e:  # a name in neither table: the message lists them
        raise SystemExit(f"numconv bench: --cases: {e}") from None
    if args.plot:
        _check_plot_backend()  # fail before minutes of measuring, not after
    threads = args.threads if args.threads is not None else _default_threads()
    torch = _import_torch(getattr(args, "no_torch", False))
    accuracy = not getattr(args, "no_accuracy", False)
    method = getattr(args, "method", "auto")
    try:  # a Namespace built by hand skips argparse's check
        _method_name(method)
    except argparse.ArgumentTypeError as e:
        raise SystemExit(f"numconv bench: --method: {e}") from None
    out = sys.stdout
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0  # before we add our own

    dtypes = sorted({c.dtype for c in cases})
    slow_vars = {k: os.environ[k] for k in SLOW_BLAS_VARS if k in os.environ}
    gemm_sub = measure_gemm_subprocess(dtypes, threads)
    gemm_here = measure_gemm(dtypes) if slow_vars or gemm_sub is None else None
    ceiling = gemm_sub or gemm_here
    bandwidth = measure_bandwidth()
    numconv.set_num_threads(threads)
    from ._kernels.peak import fma_peak

    peak = {dt: fma_peak(dt, threads) for dt in dtypes}
    ceilings = {"gemm": ceiling, "gemm_this_process": gemm_here, "bandwidth_gbs": bandwidth, "fma_peak": peak}

    numconv.conv(np.ones((1, 4, 1), np.float32), np.ones((1, 1, 1), np.float32))  # pick the threading layer
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "?"
    from llvmlite import binding

    from numconv import _dispatch

    machine = {"cpu": _cpu_name(), "llvm_cpu": binding.get_host_cpu_name(), "fma_bytes": _dispatch.fma_bytes(),
               "dispatch_class": _dispatch.machine_class(), "logical_cpus": os.cpu_count(),
               "platform": platform.platform(),
               "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
               "numconv": numconv.__version__, "torch": getattr(torch, "__version__", None),
               "threads": threads, "numba_threading_layer": layer, "method": method,
               "repeat": args.repeat, "slow_blas_env": slow_vars}

    p = lambda *a: print(*a, file=out, flush=True)  # noqa: E731
    p(f"numconv {numconv.__version__} bench: {threads} threads (Numba {numba.__version__}, "
      f"{layer} layer), method={method!r}, median of {args.repeat} samples after {WARMUP} warm-up calls, one process")
    p(f"machine: {machine['cpu']} (LLVM {machine['llvm_cpu']}, {8 * machine['fma_bytes']}-bit FMA passes, "
      f"dispatch constants {machine['dispatch_class']!r}), "
      f"{machine['logical_cpus']} logical CPUs; Python {machine['python']}, "
      f"NumPy {np.__version__}")
    if torch is not None:
        p(f"peer: torch {torch.__version__} at {threads} threads, torch.nn.functional.conv*d under no_grad; "
          "NCHW and channels_last (oneDNN) memory formats, 'best' is the faster")
    else:
        p("peer: torch not available (or --no-torch): numconv columns only")
    names = {"float32": "SGEMM", "float64": "DGEMM"}
    where = (f"fresh process, {threads} BLAS threads" + (", OPENBLAS_CORETYPE/L2_SIZE unset" if slow_vars else "")
             if gemm_sub else "this process")
    if dtypes:  # conv cases only: the signal table has no %GEMM or %peak columns
        p(f"ceilings: 2048^3 np.matmul ({where}): "
          + ", ".join(f"{names.get(dt, dt)} {ceiling[dt]:.0f} GFLOP/s" for dt in dtypes)
          + f"; copy bandwidth {bandwidth:.0f} GB/s (np.copyto, 1 thread); FMA peak ({threads} threads, a "
          "register-only loop of vector FMAs): " + ", ".join(f"{dt} {peak[dt]:.0f} GFLOP/s" for dt in dtypes))
    if slow_vars and dtypes:
        p("WARNING: " + " ".join(f"{k}={v}" for k, v in slow_vars.items())
          + " set: they slow NumPy's OpenBLAS GEMM (in this process: "
          + ", ".join(f"{names.get(dt, dt)} {gemm_here[dt]:.0f}" for dt in dtypes)
          + " GFLOP/s); %GEMM uses the ceiling measured without them. numconv itself does not use BLAS.")
    machine["load_average_1min"] = load
    if load > 0.5:
        p(f"WARNING: 1-minute load average {load:.2f} before this run: other processes are using the CPU, "
          "so times (numconv's and torch's alike) are inflated and noisy.")
    if cases:
        p(("speedup = torch best / numconv; " if torch is not None else "")
          + "%GEMM = numconv GFLOP/s / ceiling of its dtype; %peak = GFLOP/s / FMA peak of its dtype (above 100: "
          "fewer multiplies than the direct FLOP count, e.g. Winograd or FFT; a direct computation cannot pass it"
          + (", so torch %peak near 100 bounds any speedup" if torch is not None else "")
          + "); xBW (memory-bound cases) = numconv time / compulsory-traffic time at the copy bandwidth"
          + ("; err = max|y - ref| / max|ref| against a float64 NumPy reference" if accuracy else "")
          + "; +MiB = peak extra memory of one numconv call beyond its output (tracemalloc)"
          + ("; cf/cl = numconv channels_first time / channels_last time" if args.channels_first else ""))
        p("")
    cols = _columns(torch is not None, args.channels_first, accuracy)
    if cases:
        p(_line(cols, [h for h, _, _ in cols]))
        p(_line(cols, ["-" * w for _, w, _ in cols]))
    rows = []
    for case in cases:
        row = measure_case(case, repeat=args.repeat, threads=threads, torch=torch, method=method,
                           channels_first=args.channels_first, accuracy=accuracy, ceilings=ceilings)
        rows.append(row)
        p(_line(cols, [f(row) for _, _, f in cols]))
        _cases.inputs.cache_clear()  # big cases: don't keep every array alive
        _cases.reference.cache_clear()
        _cases._base_arrays.cache_clear()
    if cases:
        p("\n" + "\n".join(f"  {c.name:<16}  {c.describe()}  [{c.dtype}, {c.flops / 1e9:.2f} GFLOP]" for c in cases))
    _print_fresh_kernel(p, rows, "torch_best_s")
    speedups = [r["speedup"] for r in rows if r.get("speedup")]
    if speedups:
        geo = float(np.exp(np.mean(np.log(speedups))))
        p(f"geometric-mean speedup over torch's best layout: {geo:.2f}x ({len(speedups)} cases)")
    signal_rows = []
    if signal_cases:
        p(f"\nnumconv.signal.convolve ({threads} threads) against scipy.signal as users call it (SciPy's FFTs "
          "single-threaded, its default); speedup = scipy / numconv; GFLOP/s at the direct computation's FLOPs; "
          "err against scipy.signal.fftconvolve in float64\n")
        scols = _signal_columns(accuracy)
        p(_line(scols, [h for h, _, _ in scols]))
        p(_line(scols, ["-" * w for _, w, _ in scols]))
        for case in signal_cases:
            row = measure_signal_case(case, repeat=args.repeat, threads=threads, accuracy=accuracy)
            signal_rows.append(row)
            p(_line(scols, [f(row) for _, _, f in scols]))
            _cases.signal_inputs.cache_clear()
            _cases.signal_reference.cache_clear()
        p("\n" + "\n".join(f"  {c.name:<16}  {c.describe()}  [{c.dtype}]" for c in signal_cases))
        _print_fresh_kernel(p, signal_rows, "peer_s")

    if args.json:
        text = json.dumps({"machine": machine, "ceilings": ceilings, "rows": rows, "signal_rows": signal_rows},
                          indent=1)
        try:
            with open(args.json, "w") as f:
                f.write(text)
        except OSError as e:  # checked before measuring, but a disk can fill or a mount turn read-only
            raise _write_failed("--json", args.json, e) from None
        p(f"wrote {args.json}")
    if args.plot:
        try:
            plot(rows, ceilings, machine, args.plot)
        except OSError as e:
            raise _write_failed("--plot", args.plot, e) from None
        p(f"wrote {args.plot}")
    return 0


def plot(rows, ceilings, machine, path):
    """Two panels: speedup over torch's best layout, and numconv GFLOP/s against
    the GEMM ceilings and the FMA peak. Needs matplotlib (imported here only)."""
    _check_plot_backend()
    import matplotlib.pyplot as plt

    names = [r["case"] for r in rows]
    has_torch = any(r.get("speedup") for r in rows)
    fig, axes = plt.subplots(2 if has_torch else 1, 1, figsize=(max(8, 0.6 * len(rows) + 3), 8 if has_torch else 4.5),
                             squeeze=False)
    axes = axes[:, 0]
    xs = np.arange(len(rows))
    if has_torch:
        ax = axes[0]
        sp = [r.get("speedup") or float("nan") for r in rows]
        ax.bar(xs, sp, color=["tab:green" if s >= 1 else "tab:red" for s in sp])
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylabel("torch best / numconv (log)")
        ax.set_title(f"numconv vs torch {machine.get('torch')} ({machine['threads']} threads, "
                     f"faster of NCHW / channels_last)")
        ax.set_xticks(xs, names, rotation=45, ha="right")
        for x, s in zip(xs, sp):
            if s == s:
                ax.annotate(f"{s:.2f}", (x, s), ha="center", va="bottom", fontsize=8)
    ax = axes[-1]
    gf = [r["gflops"] for r in rows]
    ax.bar(xs, gf, color=["tab:blue" if r["dtype"] == "float32" else "tab:purple" for r in rows])
    styles = {"float32": "--", "float64": ":"}
    for dt, v in ceilings["gemm"].items():
        ax.axhline(v, color="gray", ls=styles.get(dt, "-."), lw=1, label=f"{dt} GEMM ceiling {v:.0f}")
    for dt, v in ceilings.get("fma_peak", {}).items():
        ax.axhline(v, color="k", ls=styles.get(dt, "-."), lw=1, label=f"{dt} FMA peak {v:.0f}")
    ax.set_ylabel("numconv GFLOP/s")
    ax.set_title(f"{machine['cpu']}, {machine['threads']} threads")
    ax.set_xticks(xs, names, rotation=45, ha="right")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())


#: (title, x shape, kernel shape for size k, kernel sizes) of the crossover plot
CROSSOVER_SCENARIOS = [
    ("single-channel image 1x512x512x1 -> 1, float32", (1, 512, 512, 1), lambda k: (k, k, 1, 1),
     (3, 5, 7, 9, 11, 13, 15, 19, 23, 27, 31)),
    ("64-channel layer 1x56x56x64 -> 64, float32", (1, 56, 56, 64), lambda k: (k, k, 64, 64),
     (1, 3, 5, 7, 9, 11, 13, 15)),
]


def crossover(path, repeat=5, out=sys.stdout):
    """Direct vs FFT time against kernel size ("same" padding) for the scenarios
    above, with ``method="auto"``'s choice marked; prints a table and draws ``path``."""
    import numconv

    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, len(CROSSOVER_SCENARIOS), figsize=(12, 4.5))
    for ax, (title, x_shape, kshape, sizes) in zip(axes, CROSSOVER_SCENARIOS):
        x = rng.standard_normal(x_shape).astype(np.float32)
        rows = []
        print(title, file=out)
        for k in sizes:
            w = rng.standard_normal(kshape(k)).astype(np.float32) / k
            t = {m: time_call(lambda m=m: numconv.conv2d(x, w, padding="same", method=m), repeat)
                 for m in ("direct", "fft")}
            choice = numconv.choose_conv_method(x, w, padding="same")
            rows.append((k, t["direct"], t["fft"], choice))
            print(f"  k={k:3d}: direct {t['direct'] * 1e3:9.2f} ms  fft {t['fft'] * 1e3:9.2f} ms  auto -> {choice}",
                  file=out, flush=True)
        ks = [r[0] for r in rows]
        ax.plot(ks, [r[1] * 1e3 for r in rows], "o-", label="direct")
        ax.plot(ks, [r[2] * 1e3 for r in rows], "s-", label="fft")
        ax.plot(ks, [(r[1] if r[3] == "direct" else r[2]) * 1e3 for r in rows], "k*", markersize=12,
                label="auto's choice")
        ax.set_yscale("log")
        ax.set_xlabel("kernel size k (k x k, padding same)")
        ax.set_ylabel("ms")
        ax.set_title(title, fontsize=10)
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"numconv direct vs FFT ({_cpu_name()}, {numconv.get_num_threads()} threads)")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise _write_failed("--crossover", path, e) from None
    finally:
        plt.close(fig)
    print(f"wrote {path}", file=out)
    return 0
