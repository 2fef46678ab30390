"""numconv: Keras/PyTorch-compatible convolutions on multicore CPUs with Numba.

See ``numconv.conv`` for the conventions every op shares (layouts, padding,
strides, dilation, groups, dtypes).
"""
from ._config import get_num_threads, set_num_threads
from . import signal
from ._ops import choose_conv_method, conv, conv1d, conv2d, conv3d

__version__ = "0.1.0"

__all__ = ["choose_conv_method", "conv", "conv1d", "conv2d", "conv3d", "get_num_threads", "set_num_threads", "signal"]
