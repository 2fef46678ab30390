"""JIT cost: the first numconv call in a fresh process, with a cold and a warm
Numba cache, and the number of compiled specialisations of the direct kernel.

Each measurement runs ``python -c ...`` in a subprocess with ``NUMBA_CACHE_DIR``
pointed at a fresh temporary directory: the first run compiles ("cold"), a second
run with the same directory loads the cache ("warm", still paying Numba's own
start-up). Shapes are the table's cases shrunk to a few pixels
(``Case.shrunk()``): compile time does not depend on the sizes.
"""
import json
import os
import subprocess
import sys
import tempfile

from .common import CASE_LIST, numconv

_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import numconv
t1 = time.perf_counter()
from numconv._cases import CASES, inputs
names = sys.argv[1].split(",")
first = None
for name in names:
    case = CASES[name].shrunk()
    x, w = inputs(case)
    t = time.perf_counter()
    numconv.conv(x, w, **case.conv_kwargs)
    if first is None:
        first = time.perf_counter() - t
t2 = time.perf_counter()
import importlib, pkgutil
import numba.core.registry
import numconv._kernels as K
sigs = {}
for info in pkgutil.iter_modules(K.__path__):
    mod = importlib.import_module("numconv._kernels." + info.name)
    for attr, obj in vars(mod).items():
        obj = getattr(obj, "dispatcher", obj)  # numconv._config.ParallelKernel
        if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.__module__ == mod.__name__:
            sigs[info.name + "." + attr] = len(obj.signatures)
print(json.dumps({"import": t1 - t0, "first_call": first, "all_calls": t2 - t1, "signatures": sigs}))
"""


def run_fresh(names, cache_dir=None):
    """Run the table cases ``names`` (shrunk) in a fresh interpreter and return its
    timings and signature counts. ``cache_dir``: NUMBA_CACHE_DIR (None: Numba's
    default cache location, next to the package)."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(numconv.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    if cache_dir is None:
        env.pop("NUMBA_CACHE_DIR", None)
    else:
        env["NUMBA_CACHE_DIR"] = cache_dir
    res = subprocess.run([sys.executable, "-c", _SCRIPT, ",".join(names)], env=env,
                         capture_output=True, text=True, timeout=600)
    if res.returncode:
        raise RuntimeError(f"subprocess failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# Append-only: one case per compile-time variant that matters (float32 zero
# padding, float64, reflect padding through the pad kernel).
FIRST_CALL_CASES = ["resnet", "imdb_f64", "resnet_reflect"]


class FirstCall:
    """Seconds of the first ``numconv.conv`` call in a fresh process (after
    ``import numconv``): cold cache (compiles) and warm cache (loads)."""

    params = [FIRST_CALL_CASES]
    param_names = ["case"]
    timeout = 900

    def setup_cache(self):
        out = {}
        for name in FIRST_CALL_CASES:
            with tempfile.TemporaryDirectory(prefix="numconv-asv-cache-") as d:
                out[name] = {"cold": run_fresh([name], d), "warm": run_fresh([name], d)}
        return out

    def track_first_call_cold(self, results, case):
        return results[case]["cold"]["first_call"]

    def track_first_call_warm(self, results, case):
        return results[case]["warm"]["first_call"]

    def track_import_warm(self, results, case):
        return results[case]["warm"]["import"]

    track_first_call_cold.unit = "seconds"
    track_first_call_warm.unit = "seconds"
    track_import_warm.unit = "seconds"


class Specialisations:
    """Compiled signatures after running every case of the table once (shrunk) in
    a fresh process: STYLE section 6 keeps them few and countable (dtype and rank
    of the kernel family, not layout, padding or strides)."""

    timeout = 900

    def setup_cache(self):
        return run_fresh([c.name for c in CASE_LIST])

    def track_conv_direct_kernel_signatures(self, counts):
        return counts["signatures"].get("conv.conv_direct_kernel", float("nan"))

    def track_pad_rows_kernel_signatures(self, counts):
        """Signatures of the row-padding kernel the ops pad with (``pad.pad_rows_kernel``
        and its serial twin ``pad.pad_rows_serial``). Replaces ``track_pad_kernel_signatures``
        (``pad.pad_kernel``), which the table's cases stopped compiling when the direct path
        moved to row padding: it had read a constant 0. Renamed rather than redefined, so
        asv's history of the old name is not joined to a different quantity."""
        sigs = counts["signatures"]
        if "pad.pad_rows_kernel" not in sigs:
            return float("nan")
        return sigs["pad.pad_rows_kernel"] + sigs.get("pad.pad_rows_serial", 0)

    def track_all_kernel_signatures(self, counts):
        """Signatures of every ``*_kernel`` dispatcher in ``numconv._kernels``, summed.
        Helpers called from kernels gain overloads only when compiled from scratch
        (a cache hit loads the caller whole), so they are left out to keep the
        count independent of the cache state."""
        return sum(n for name, n in counts["signatures"].items() if name.endswith("_kernel"))

    def track_all_cases_first_calls(self, counts):
        return counts["all_calls"]

    track_conv_direct_kernel_signatures.unit = "signatures"
    track_pad_rows_kernel_signatures.unit = "signatures"
    track_all_kernel_signatures.unit = "signatures"
    track_all_cases_first_calls.unit = "seconds"
