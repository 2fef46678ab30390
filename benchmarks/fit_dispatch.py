"""Fit and judge ``conv``'s ``method="auto"`` on this machine.

    python benchmarks/fit_dispatch.py [--n 240] [--seed 0] [--json FILE]
    python benchmarks/fit_dispatch.py --load A.json B.json      # refit saved timings
    python benchmarks/fit_dispatch.py --kept [--n 80] ...        # the lanes terms, spectra kept

1. Times every method with a path of its own (``numconv._dispatch.candidates``)
   on ``numconv._cases.dispatch_grid()`` (best of 5 interleaved rounds, one
   process, numconv's default threads), or loads such timings saved by ``--json``.
2. Reports the share of shapes where ``auto``'s choice is within 1.2x of the
   fastest method (issue 4's goal: >= 95 %), and the worst regrets.
3. Grid-searches ``FFT_TRANSFORM_COST``, ``FFT_CONTRACT_COST``,
   ``FFT_CALL_COST`` and ``DIRECT_TAP_COST`` of ``numconv._dispatch`` (the other constants held as they
   are) for the highest such share (ties: lowest mean log-regret) and prints
   them, to be copied into ``_dispatch.py``. Judge a fit on a grid it was not
   fitted on (another ``--seed``).

With ``--kept``: the same on ``numconv._cases.lanes_grid()`` (layers that
``_paths/fft.run_lanes`` computes), timed as a layer called again with the same
weights runs (kernel spectra kept: ``time_methods(kept=True)``), fitting
``LANES_TRANSFORM_COST``, ``LANES_CONTRACT_COST`` and ``LANES_CALL_COST``.
"""
import argparse
import contextlib
import itertools
import json
import math
import sys

import numpy as np

FITTED = {"FFT_TRANSFORM_COST": np.geomspace(5, 100, 14), "FFT_CONTRACT_COST": np.geomspace(0.5, 4096, 14),
          "FFT_CALL_COST": np.array([0, 3e6, 1e7, 3e7, 6e7, 1e8]),
          "DIRECT_TAP_COST": np.array([0, 50, 100, 200, 400, 800, 1200, 1600, 2400])}
FITTED_KEPT = {"LANES_TRANSFORM_COST": np.geomspace(0.5, 40, 20), "LANES_CONTRACT_COST": np.geomspace(2, 1024, 19),
               "LANES_CALL_COST": np.array([0, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7])}


def spec_for(x_shape, kernel_shape, kwargs, dtype):
    from numconv import _dispatch
    from numconv._spec import conv_spec

    x = np.broadcast_to(np.zeros((), dtype), x_shape)
    w = np.broadcast_to(np.zeros((), dtype), kernel_shape)
    return conv_spec("fit", x, w, None, 1, kwargs.get("padding", "valid"), 1, None, "channels_last", "zeros",
                     None, "auto", _dispatch.METHODS)[0]


def regrets(rows, constants=None):
    """auto's time / the fastest time per row, under ``constants``."""
    from numconv import _dispatch

    out = []
    for row in rows:
        costs = {m: _dispatch.weigh(t, constants) for m, t in row["terms"].items()}
        pick = min(costs, key=costs.get)
        out.append(row["times"][pick] / min(row["times"].values()))
    return np.array(out)


def score(r):
    return float(np.mean(r <= 1.2)), float(np.mean(np.log(r)))


def report(rows, label, constants=None):
    r = regrets(rows, constants)
    share, logr = score(r)
    print(f"{label}: auto within 1.2x of the fastest on {100 * share:.1f} % "
          f"(mean regret {math.exp(logr):.3f}x, worst {r.max():.2f}x)")
    for reg, row in sorted(zip(r, rows), key=lambda t: -t[0])[:5]:
        print(f"  {reg:5.2f}x  x{tuple(row['x_shape'])} k{tuple(row['kernel_shape'])} {row['kwargs']} "
              f"{row['dtype']}: " + ", ".join(f"{m} {t * 1e3:.2f} ms" for m, t in row["times"].items()))


def measure(n, seed, kept=False):
    from numconv._cases import dispatch_grid, lanes_grid, time_methods

    rows = []
    grid = (lanes_grid if kept else dispatch_grid)(n, seed)
    for i, (xs, ws, kw, dt) in enumerate(grid):
        times, auto = time_methods(xs, ws, kw, dt, kept=kept)
        rows.append(dict(x_shape=xs, kernel_shape=ws, kwargs=kw, dtype=dt, times=times, auto=auto))
        print(f"\r{i + 1}/{len(grid)} shapes timed", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


@contextlib.contextmanager
def _without_lanes_terms(fft):
    real = fft.lanes_apply
    fft.lanes_apply = lambda spec: False
    try:
        yield
    finally:
        fft.lanes_apply = real


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None, help="shapes to time (default 240; 80 with --kept)")
    parser.add_argument("--kept", action="store_true", help="lanes layers with kernel spectra kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument("--load", nargs="+", metavar="FILE", help="refit timings saved by --json instead of timing")
    args = parser.parse_args(argv)

    from numconv import _dispatch
    from numconv._paths import fft

    fitted = FITTED_KEPT if args.kept else FITTED
    n = args.n if args.n is not None else (80 if args.kept else 240)
    if args.load:
        rows = [row for name in args.load for row in json.load(open(name))]
        label = " + ".join(args.load)
    else:
        rows = measure(n, args.seed, args.kept)
        label = f"seed {args.seed}"
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1, default=str)
    def timed_terms(spec, row):  # the terms of the methods timed (Winograd only where it applies)
        return {m: t for m, t in _dispatch.cost_terms(spec).items() if m in row["times"]}

    before = []  # with --kept: what auto chose before it had lanes terms (the pocketfft path's model)
    for row in rows:
        spec = spec_for(tuple(row["x_shape"]), tuple(row["kernel_shape"]), row["kwargs"], row["dtype"])
        # in the regime the row was timed in
        with contextlib.nullcontext() if args.kept else fft.spectra_not_kept():
            row["terms"] = timed_terms(spec, row)
        if args.kept:
            with _without_lanes_terms(fft):
                before.append(dict(row, terms=timed_terms(spec, row)))

    print(f"grid: {len(rows)} shapes ({label}); fastest: " + ", ".join(
        f"{m} {sum(min(r['times'], key=r['times'].get) == m for r in rows)}" for m in _dispatch.METHODS))
    if before:
        report(before, "without lanes terms (the pocketfft path's model, kernel transforms counted)")
    report(rows, "current constants " + ", ".join(f"{k}={getattr(_dispatch, k)}" for k in fitted))
    best = max((dict(zip(fitted, values)) for values in itertools.product(*fitted.values())),
               key=lambda c: (lambda s: (s[0], -s[1]))(score(regrets(rows, c))))
    report(rows, "best fit " + ", ".join(f"{k}={v:.3g}" for k, v in best.items()), best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
