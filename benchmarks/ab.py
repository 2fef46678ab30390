"""A/B timing of the working tree against a git revision, in one process.

    python benchmarks/ab.py REV [--cases NAME,...] [--threads N] [--repeat N] [--channels-first]

On a noisy host two runs of ``python -m numconv bench`` (or two asv commits)
differ by more than most changes do: the same code measured 0.56x and 1.71x of
torch's stem in two runs here. This script copies ``REV``'s ``numconv/`` (``git
archive``) into a temporary folder as the package ``numconv_base``, imports it
next to the working tree's ``numconv``, and times each case of the bench's table
(``numconv/_cases.py``) with both in turn: call A, call B, call A, ... so both
see the same host load. It prints each one's minimum and median, new / base,
and whether the two give the same bits.

One trap it closes: numconv's kernels are compiled with a Numba patch installed
once per process (``_config.KEEP_PARFOR_CODE``: each parallel kernel's loop body
optimised once, not re-optimised when linked). The first package imported
installs it, and it recognised only kernels of modules named ``numconv.*``, so a
copy imported as ``numconv_base`` was compiled the other way: its kernels ran
up to 15 % slower with identical code (8 x 56 x 56 x 64 groups 4, 1 thread:
"new / base" 0.84-0.91 for the same tree). ``_config.KERNEL_PACKAGES`` names
the packages the patch covers; this script adds ``numconv_base`` to it, and a
same-tree run gives 0.94-1.03.

Run from the repository root; the copy is compiled on its first calls (Numba's
cache for it lives in the temporary folder, so each run compiles it afresh).
"""
import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def base_package(rev, folder):
    """``rev``'s ``numconv/`` unpacked in ``folder`` as the package ``numconv_base``."""
    archive = os.path.join(folder, "base.tar")
    subprocess.run(["git", "-C", ROOT, "archive", "-o", archive, rev, "numconv"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    os.rename(os.path.join(folder, "numconv"), os.path.join(folder, "numconv_base"))
    sys.path.insert(0, folder)
    import numconv_base
    return numconv_base


def cover(package_name):
    """Compile ``package_name``'s kernels as numconv's are (module docstring)."""
    from numconv import _config
    packages = getattr(_config, "KERNEL_PACKAGES", None)
    if packages is None:  # (a working tree from before KERNEL_PACKAGES: wrap the test)
        test = _config._is_parallel_kernel

        def either(dispatcher):
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
            return test(dispatcher) or (module.startswith(package_name + ".")
                                        and bool(getattr(dispatcher, "targetoptions", {}).get("parallel")))
        _config._is_parallel_kernel = either
    else:
        packages.add(package_name)


def time_in_turn(fns, repeat):
    """Per function, (min, median) seconds of ``repeat`` calls taken in turn."""
    samples = [[] for _ in fns]
    for _ in range(repeat):
        for f, out in zip(fns, samples):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    return [(min(s), float(np.median(s))) for s in samples]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the git revision to compare the working tree with (e.g. HEAD, main~1)")
    parser.add_argument("--cases", default="resnet,stem,imdb,resnet_groups4",
                        help="comma-separated case names, globs or substrings of the bench's table")
    parser.add_argument("--threads", type=int, default=1, help="threads for both (default 1: the steadiest)")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls of each, in turn (default 15)")
    parser.add_argument("--channels-first", action="store_true", help="time the cases' channels_first inputs")
    args = parser.parse_args(argv)

    import numconv
    from numconv import _cases
    with tempfile.TemporaryDirectory(prefix="numconv_ab_") as folder:
        cover("numconv_base")
        base = base_package(args.rev, folder)
        numconv.set_num_threads(args.threads)
        base.set_num_threads(args.threads)
        print(f"new: working tree {ROOT}; base: {args.rev}; {args.threads} thread(s), {args.repeat} calls each in turn")
        print(f"{'case':<18} {'base min':>9} {'new min':>9} {'new/base':>8} {'base med':>9} {'new med':>9}  same bits")
        for case in _cases.select(args.cases):
            if args.channels_first:
                case = case.with_kwargs(data_format="channels_first")
            x, w = _cases.inputs(case)
            extra = _cases.op_inputs(case)
            kwargs = case.conv_kwargs
            calls = [_cases._numconv_op(pkg, case, x, w, extra, dict(kwargs)) for pkg in (base, numconv)]
            outs = [np.asarray(f()) for f in calls]  # (compiles)
            (bmin, bmed), (nmin, nmed) = time_in_turn(calls, args.repeat)
            same = outs[0].shape == outs[1].shape and np.array_equal(outs[0], outs[1], equal_nan=True)
            print(f"{case.name:<18} {bmin * 1e3:9.3f} {nmin * 1e3:9.3f} {nmin / bmin:8.2f} {bmed * 1e3:9.3f} "
                  f"{nmed * 1e3:9.3f}  {same}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
