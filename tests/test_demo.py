"""``python -m numconv demo``: runs every model, prints the Keras-style summary, the
dispatcher's method and the comparison with NumPy; ``--help`` lists the models."""
import re
import subprocess
import sys

from numconv import _demo
from numconv.__main__ import main


def test_demo_all_models(capsys):
    assert main(["demo", "--repeat", "1", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    for text in ("Layer (type)", "Output Shape", "Param #", "Method", "Time (ms)",
                 "(Conv1D)", "(Conv2D)", "(MaxPooling1D)", "(GlobalMaxPooling1D)", "(None, 98, 64)",
                 "(None, 98, 98, 64)", "1,792",
                 "(None, 94, 32)", "(None, 18, 32)", "(None, 12, 32)", "(None, 32)", "Total params: 35,904",
                 "(None, 46, 16)", "(None, 11, 16)", "Total params: 96", "compiling or loading"):
        assert text in out, text
    assert re.search(r"\(Conv1D\)\s+\(None, 94, 32\)\s+28,704\s+(direct|fft|oa)\s+[\d.]+", out)
    diffs = [float(d) for d in re.findall(r"plain NumPy reference \(float64 loops\): ([\d.e+-]+)", out)]
    assert len(diffs) == 4 and max(diffs) < 1e-4


def test_demo_reference_is_independent():
    # The demo's NumPy reference agrees with a direct sum on a tiny case.
    import numpy as np

    x = np.arange(12.0).reshape(1, 6, 2)
    w = np.ones((3, 2, 1))
    y = _demo._numpy_conv(x, w, None, "valid", None)
    assert y[0, :, 0].tolist() == [x[0, i:i + 3].sum() for i in range(4)]
    assert _demo._numpy_conv(x, w, np.array([-1000.0]), "same", "relu").max() == 0


def test_demo_help_lists_models():
    out = subprocess.run([sys.executable, "-m", "numconv", "demo", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0
    for text in ("--model", "seeds", "imdb", "stock", "--repeat", "--batch", "Convolution2D"):
        assert text in out.stdout, text
