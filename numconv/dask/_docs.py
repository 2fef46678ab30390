"""Docstring examples of ``numconv.dask`` need Dask; without it (an optional
dependency) they are marked ``+SKIP`` so ``pytest --doctest-modules`` passes."""
import importlib.util
import re


def dask_installed():
    try:
        return importlib.util.find_spec("dask") is not None
    except ValueError:  # sys.modules["dask"] is None: import blocked
        return False


def skip_examples_without_dask(*objects):
    """Mark every example in the docstrings of ``objects`` (functions, modules)
    ``+SKIP`` when Dask is not installed."""
    if dask_installed():
        return
    for obj in objects:
        if obj.__doc__:
            obj.__doc__ = re.sub(r"^(\s*>>> .*)$", r"\1  # doctest: +SKIP", obj.__doc__, flags=re.M)
