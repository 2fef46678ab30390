"""numconv: Keras/PyTorch-compatible convolutions on multicore CPUs with Numba.

See ``numconv.conv`` for the conventions every op shares (layouts, padding,
strides, dilation, groups, dtypes).
"""
from ._config import get_num_threads, set_num_threads
from . import signal
from ._adjoint import conv_backprop_input, conv_backprop_kernel, conv_transpose
from ._ops import choose_conv_method, conv, conv1d, conv2d, conv3d, depthwise_conv, separable_conv
from ._pool import average_pool, global_average_pool, global_max_pool, max_pool

__version__ = "0.1.0"

__all__ = ["choose_conv_method", "conv", "conv1d", "conv2d", "conv3d", "conv_backprop_input",
           "conv_backprop_kernel", "conv_transpose", "depthwise_conv", "separable_conv", "get_num_threads",
           "set_num_threads", "signal", "average_pool", "global_average_pool", "global_max_pool", "max_pool"]


def __getattr__(name):
    # numconv.layers (Keras-compatible layers) loads on first use; `import numconv.layers` works too.
    if name == "layers":
        import importlib

        return importlib.import_module(".layers", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
