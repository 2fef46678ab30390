"""Import time of numconv in a fresh interpreter (asv ``timeraw_``: one process
per sample), next to its dependencies' import time as a baseline. numconv
compiles lazily, so importing it must not compile anything."""
import os

from .common import numconv

# The interpreter asv starts must import the same numconv this process sees (an
# installed one, or this checkout under `asv run -E existing`).
_SETUP = f"import sys; sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(numconv.__file__)))!r})"


class Import:
    number = 1
    repeat = (3, 10, 20.0)

    def timeraw_import_numconv(self):
        return "import numconv", _SETUP

    def timeraw_import_numpy_numba(self):
        return "import numpy, numba", _SETUP
