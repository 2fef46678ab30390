"""``python -m numconv demo``: numconv's convolutions on built-in example data."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m numconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from . import _demo

    p_demo = sub.add_parser("demo", help="run the seeds' Keras conv models (Conv1D/2D, IMDb, stock) on built-in data",
                            description=_demo.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _demo.add_arguments(p_demo)
    from . import _bench

    p_bench = sub.add_parser("bench", help="time numconv against torch on the benchmark case table",
                             description=_bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _bench.add_arguments(p_bench)
    args = parser.parse_args(argv)
    return {"demo": _demo.run, "bench": _bench.run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
