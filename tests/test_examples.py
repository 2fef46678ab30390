"""Every script in examples/ runs to completion (each checks its own result) in a fresh process."""
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
EXPECTED = {  # a line each example prints when its result is right
    "filter_signal.py": "SNR before",
    "image_filters.py": "strong edges",
    "keras_weights.py": "numconv vs Keras on the saved input",
    "gradient.py": "recovered the filter",
}


def test_examples_listed():
    assert sorted(os.path.basename(p) for p in EXAMPLES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_runs(path):
    proc = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert EXPECTED[os.path.basename(path)] in proc.stdout
