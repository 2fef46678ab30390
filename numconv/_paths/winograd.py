"""The Winograd path: F(2x2, 3x3) for 3x3 windows at stride 1 (``_kernels/winograd.py``).

``applies(spec)`` says which convolutions it computes: real floating dtypes, rank 2
or 3, a 3x3 window in H and W at stride 1 (any dilation, padding and padding mode;
in depth any window up to ``MAX_DEPTH_TAPS``, stride and dilation), not depthwise.
``method="winograd"`` on any other convolution runs the direct kernel, so every
registered method accepts every convolution and gives the same answer within
float tolerance (API.md).
"""
import numba
import numpy as np

from .._config import kernel_lock
from .._kernels.pad import PAD_MODES
from .._kernels.tile import VARIANTS, choose_variant, variant_lanes, variant_tag
from .._kernels.winograd import tile_grid, tile_run, transform_weights, winograd_kernel
from . import direct

#: depth taps the kernel's row buffer holds (4 of its 16 entries are the patch rows)
MAX_DEPTH_TAPS = 12


def applies(spec):
    """Whether the Winograd kernel computes ``spec`` (see module docstring)."""
    return (spec.dtype in (np.float32, np.float64) and spec.rank >= 2
            and spec.kernel_spatial[1:] == (3, 3) and spec.strides[1:] == (1, 1)
            and spec.kernel_spatial[0] <= MAX_DEPTH_TAPS and not direct.is_depthwise(spec))


def tile_count(spec):
    """2 x 2 output tiles of ``spec``: outputs ``dilation`` apart share a tile, so
    each axis has ``dilation`` interleaved rows of half as many tiles."""
    od, oh, ow = spec.out_spatial
    ty, tx = tile_grid.py_func(oh, ow, *spec.dilations[1:])
    return spec.batch * od * ty * tx


def run(spec, x5, w5, b, out5):
    """Compute ``out5`` in place (the direct kernel where ``applies`` is False)."""
    if not applies(spec):
        return direct.run(spec, x5, w5, b, out5)
    bk, has_bias, act = direct.epilogue(spec, b)
    variant = choose_variant(spec.filters // spec.groups, spec.dtype)
    lanes = variant_lanes(variant, spec.dtype)
    up = transform_weights(w5, spec.groups, lanes, spec.dtype)
    threads = numba.get_num_threads()
    run_ = tile_run(w5.shape[0], spec.channels // spec.groups, lanes, VARIANTS[variant][0], tile_count(spec),
                    spec.dtype, threads)
    with kernel_lock():
        winograd_kernel(x5, up, bk, has_bias, out5, spec.strides, spec.dilations, tuple(p[0] for p in spec.pads),
                        PAD_MODES[spec.padding_mode], run_, threads, act, variant_tag(variant))
    return out5
