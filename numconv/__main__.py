"""python -m numconv: numconv's command line.

  demo   run Keras conv models (Conv1D/2D, IMDb, stock) with numconv's layers on
         built-in data: a summary, each layer's time and the difference to NumPy
  bench  time numconv against PyTorch on the benchmark case table (and
         numconv.signal against scipy.signal on the signal cases); --crossover
         plots direct against FFT, --dask times numconv.dask on a local cluster

python -m numconv demo --help and python -m numconv bench --help list the options.
"""
import argparse
import sys

from ._cli import plain_help


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m numconv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,bench}")
    from . import _demo

    p_demo = sub.add_parser("demo", help="run the seeds' Keras conv models (Conv1D/2D, IMDb, stock) on built-in data",
                            description=plain_help(_demo.__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    _demo.add_arguments(p_demo)
    from . import _bench

    p_bench = sub.add_parser("bench", help="time numconv against torch on the benchmark case table",
                             description=plain_help(_bench.__doc__),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    _bench.add_arguments(p_bench)
    args = parser.parse_args(argv)
    if args.command == "bench":
        _bench.check_arguments(p_bench, args)
    return {"demo": _demo.run, "bench": _bench.run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
