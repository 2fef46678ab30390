"""Method registry and choice: which path computes a ``ConvSpec``.

``METHODS`` maps each public ``method=`` string to its path's ``run``; tests and
benchmarks loop over it. ``choose_conv_method`` looks at shapes only.
"""
from ._paths import direct, fft

#: public ``method=`` string -> the path's ``run(spec, x5, w5, b, out5)``
METHODS = {"direct": direct.run, "fft": fft.run}


def choose_conv_method(spec):
    """The method ``method="auto"`` runs for ``spec``.

    Today always "direct": the FFT path is available by name, and the cost model
    that picks it for large kernels (fitted on this machine class, with the
    accuracy guards for integer-valued and non-finite data) is the next step.
    """
    return "direct"


def run(spec, x5, w5, b, out5):
    method = choose_conv_method(spec) if spec.method == "auto" else spec.method
    return METHODS[method](spec, x5, w5, b, out5)
