"""Fit and judge ``conv``'s ``method="auto"`` on this machine.

    python benchmarks/fit_dispatch.py [--n 240] [--seed 0] [--json FILE]

1. Times every registered method on ``numconv._cases.dispatch_grid()`` (best of
   3, one process, numconv's default threads).
2. Reports the share of shapes where ``auto``'s choice is within 1.2x of the
   fastest method (issue 4's goal: >= 95 %), and the worst regrets.
3. Grid-searches ``FFT_TRANSFORM_COST`` and ``FFT_CONTRACT_COST`` of
   ``numconv._dispatch`` (the Winograd constants held as they are) for the pair with the highest such share (ties: lowest
   mean log-regret) and prints it, to be copied into ``_dispatch.py``.
"""
import argparse
import json
import math
import sys

import numpy as np


def spec_for(x_shape, kernel_shape, kwargs, dtype):
    from numconv import _dispatch
    from numconv._spec import conv_spec

    x = np.broadcast_to(np.zeros((), dtype), x_shape)
    w = np.broadcast_to(np.zeros((), dtype), kernel_shape)
    return conv_spec("fit", x, w, None, 1, kwargs.get("padding", "valid"), 1, None, "channels_last", "zeros",
                     None, "auto", _dispatch.METHODS)[0]


def cost_parts(spec):
    """(direct cost, fft transform ops, fft contraction multiply-adds, Winograd cost) of the model."""
    from numconv import _dispatch
    from numconv._paths import fft

    n = math.prod(fft.fft_shape(spec))
    cg = spec.channels // spec.groups
    transforms = spec.batch * (spec.channels + spec.filters) + cg * spec.filters
    freqs = n if spec.dtype.kind == "c" else n // 2 + 1
    return (_dispatch.direct_cost(spec), transforms * n * max(math.log2(n), 1.0),
            spec.batch * freqs * cg * spec.filters, _dispatch.winograd_cost(spec))


def share_within(rows, a, b, factor=1.2):
    regrets = []
    for row in rows:
        direct, transform, contract, winograd = row["parts"]
        costs = {"direct": direct, "fft": a * transform + b * contract, "winograd": winograd}
        pick = min(costs, key=costs.get)
        regrets.append(row["times"][pick] / min(row["times"].values()))
    regrets = np.array(regrets)
    return float(np.mean(regrets <= factor)), float(np.mean(np.log(regrets))), regrets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args(argv)

    from numconv import _dispatch
    from numconv._cases import dispatch_grid, time_methods

    rows = []
    grid = dispatch_grid(args.n, args.seed)
    for i, (xs, ws, kw, dt) in enumerate(grid):
        times, auto = time_methods(xs, ws, kw, dt)
        rows.append(dict(x_shape=xs, kernel_shape=ws, kwargs=kw, dtype=dt, times=times, auto=auto,
                         parts=cost_parts(spec_for(xs, ws, kw, dt))))
        print(f"\r{i + 1}/{len(grid)} shapes timed", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    current = (_dispatch.FFT_TRANSFORM_COST, _dispatch.FFT_CONTRACT_COST)
    share, logr, regrets = share_within(rows, *current)
    print(f"grid: {len(rows)} shapes (seed {args.seed}); fft fastest on "
          f"{sum(r['times']['fft'] < r['times']['direct'] for r in rows)}")
    print(f"current constants {current}: auto within 1.2x of the fastest on {100 * share:.1f} % "
          f"(mean regret {math.exp(logr):.3f}x, worst {regrets.max():.2f}x)")
    worst = sorted(zip(regrets, rows), key=lambda t: -t[0])[:5]
    for r, row in worst:
        print(f"  {r:5.2f}x  x{row['x_shape']} k{row['kernel_shape']} {row['kwargs']} {row['dtype']}: "
              + ", ".join(f"{m} {t * 1e3:.2f} ms" for m, t in row["times"].items()))
    best = max(((a, b) for a in np.geomspace(2, 200, 41) for b in np.geomspace(0.5, 64, 15)),
               key=lambda ab: (share_within(rows, *ab)[0], -share_within(rows, *ab)[1]))
    bshare, blogr, _ = share_within(rows, *best)
    print(f"best fit FFT_TRANSFORM_COST={best[0]:.1f}, FFT_CONTRACT_COST={best[1]:.1f}: within 1.2x on "
          f"{100 * bshare:.1f} % (mean regret {math.exp(blogr):.3f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
