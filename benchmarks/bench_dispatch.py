"""How good conv's method="auto" is: the share of a seeded grid of 240 shapes on
which its choice runs within 1.2x of the fastest registered method (issue 4's
goal: >= 95 %). ``benchmarks/fit_dispatch.py`` prints the same figure with the
worst cases and refits the cost model's constants."""
import numpy as np

from numconv import _cases


class DispatchAccuracy:
    """auto's regret over ``dispatch_grid()`` (seed 0)."""

    timeout = 900
    repeat = 1
    number = 1

    def setup_cache(self):
        regrets = []
        for xs, ws, kw, dt in _cases.dispatch_grid():
            times, auto = _cases.time_methods(xs, ws, kw, dt)
            regrets.append(times[auto] / min(times.values()))
        return np.array(regrets)

    def track_auto_within_1_2x(self, regrets):
        return 100.0 * float(np.mean(regrets <= 1.2))

    track_auto_within_1_2x.unit = "%"

    def track_mean_regret(self, regrets):
        return float(np.exp(np.mean(np.log(regrets))))

    track_mean_regret.unit = "x"
