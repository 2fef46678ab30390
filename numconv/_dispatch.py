"""Method registry and choice: which path computes a ``ConvSpec``.

``METHODS`` maps each public ``method=`` string to its path's ``run``; tests and
benchmarks loop over it. ``choose_conv_method`` looks at shapes only.
"""
from ._paths import direct

METHODS = {"direct": direct.run}


def choose_conv_method(spec):
    """The method ``method="auto"`` runs for ``spec``: only "direct" exists today."""
    return "direct"


def run(spec, x5, w5, b, out5):
    method = choose_conv_method(spec) if spec.method == "auto" else spec.method
    return METHODS[method](spec, x5, w5, b, out5)
