"""Make tests/reference.py importable as `reference` whatever pytest's import mode;
fixtures shared by several test modules."""

import os
import sys

import pytest

from numconv import _adjoint

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(params=["phases", "columns"])
def adjoint_form(request, monkeypatch):
    """Force the adjoint's form: its stride-phase convs, or the column form (a 1 x 1
    conv to every tap's products, folded back: ``_adjoint._columns``) wherever
    there are two phases or more. Returns (form, a list the column form's calls
    are appended to)."""
    monkeypatch.setattr(_adjoint, "PHASE_COST", 0.0 if request.param == "phases" else 1.0)
    monkeypatch.setattr(_adjoint.winograd_path, "TRANSPOSED_MIN_CHANNELS", 1 << 30)  # not the Winograd scheme
    monkeypatch.setattr(_adjoint, "_PLANS", {})
    calls = []
    columns = _adjoint._columns

    def spy(*args):
        calls.append(args)
        return columns(*args)
    monkeypatch.setattr(_adjoint, "_columns", spy)
    return request.param, calls
