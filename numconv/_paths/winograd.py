"""The Winograd path: F(2x2, 3x3) for 3x3 windows at stride 1 (``_kernels/winograd.py``).

``applies(spec)`` says which convolutions it computes: real floating dtypes, rank 2
or 3, a 3x3 window in H and W at stride 1 (any dilation, padding and padding mode;
in depth any window up to ``MAX_DEPTH_TAPS``, stride and dilation), not depthwise,
with a dilation at most twice the output's length in H and W (outputs a dilation
apart share a tile, so the tile grid has at least ``dilation`` rows: within that
bound at most 2x the rows of outputs; a dilation of 2**20 on an 8 x 9 output made
2**40 tiles, nearly all empty).
``method="winograd"`` on any other convolution runs the direct kernel, so every
registered method accepts every convolution and gives the same answer within
float tolerance (API.md). ``cf_applies(spec)``: ``channels_first`` layers it
computes on the user's arrays as they lie (``run_channels_first``).
"""
import numba
import numpy as np

from .._config import kernel_lock
from .._kernels.pad import PAD_MODES
from .._kernels.tile import VARIANTS, choose_variant, variant_lanes, variant_tag
from .._kernels.winograd import (ALPHA, FORWARD, SCRATCH_BYTES, TRANSPOSED, block_grid, tile_grid, tile_run,
                                 transform_weights, winograd_cf_kernel, winograd_kernel)
from . import direct

#: depth taps the kernel's row buffer holds (4 of its 16 entries are the patch rows)
MAX_DEPTH_TAPS = 12


def applies(spec):
    """Whether the Winograd kernel computes ``spec`` (see module docstring)."""
    return (spec.dtype in (np.float32, np.float64) and spec.rank >= 2
            and spec.kernel_spatial[1:] == (3, 3) and spec.strides[1:] == (1, 1)
            and spec.kernel_spatial[0] <= MAX_DEPTH_TAPS and not direct.is_depthwise(spec)
            and all(d <= 2 * o for d, o in zip(spec.dilations[1:], spec.out_spatial[1:])))


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
                        PAD_MODES[spec.padding_mode], run_, threads, act, variant_tag(variant), FORWARD)
    return out5


def cf_applies(spec):
    """Whether ``run_channels_first`` computes ``spec`` on the user's channels_first
    arrays (``winograd_cf_kernel``): a 2-D layer the kernel computes, with at
    least one 64-byte vector of channels and of filters (its staging moves
    whole blocks of a vector of channels by a vector of pixels; fewer go
    element by element, where the layout passes' narrow strips are faster)."""
    lanes = 64 // np.dtype(spec.dtype).itemsize
    return (spec.data_format == "channels_first" and spec.rank == 2 and applies(spec)
            and min(spec.channels, spec.filters) >= lanes)


def cf_bands(spec, threads, budget=SCRATCH_BYTES):
    """(row bands, column bands) per task of ``winograd_cf_kernel``: a band is one
    example's tiles of 2 x dilation output rows (columns). Whole rows of bands
    while a task's scratch (V, M, its staged input and output) fits ``budget``
    bytes, else one row of as many column bands as fit; then fewer rows while
    there are under 4 tasks per thread."""
    _, oh, ow = spec.out_spatial
    _, dh, dw = spec.dilations
    ty, tx = tile_grid.py_func(oh, ow, dh, dw)
    rb, cb = ty // dh, tx // dw
    lanes = variant_lanes(choose_variant(spec.filters // spec.groups, spec.dtype), spec.dtype)
    cg = spec.channels // spec.groups

    def size(nr, nc):
        tiles = nr * dh * nc * dw
        return np.dtype(spec.dtype).itemsize * (ALPHA * ALPHA * tiles * (cg + lanes)
                                                + (nr + 1) * 2 * dh * (nc + 1) * 2 * dw * spec.channels
                                                + nr * 2 * dh * nc * 2 * dw * spec.filters)

    if size(1, cb) <= budget:
        nc, nr = cb, 1
        while nr < rb and size(nr + 1, cb) <= budget:
            nr += 1
    else:
        nr, nc = 1, 1
        while nc < cb and size(1, nc + 1) <= budget:
            nc += 1
    while nr > 1 and spec.batch * -(-rb // nr) * -(-cb // nc) < 4 * threads:
        nr -= 1
    return nr, nc


def run_channels_first(spec, x, w5, b, out):
    """``winograd_cf_kernel`` on the user's (N, C, H, W) ``x`` into ``out``, a
    C-contiguous (N, K, OH, OW) result (``cf_applies``): the input is staged and
    the output delivered per task, in cache, with no layout passes over memory."""
    bk, has_bias, act = direct.epilogue(spec, b)
    variant = choose_variant(spec.filters // spec.groups, spec.dtype)
    lanes = variant_lanes(variant, spec.dtype)
    up = transform_weights(w5, spec.groups, lanes, spec.dtype)
    threads = numba.get_num_threads()
    x4 = np.ascontiguousarray(x, spec.dtype).reshape((spec.batch, spec.channels) + spec.in_spatial[1:])
    out4 = out.reshape((spec.batch, spec.filters) + spec.out_spatial[1:])
    with kernel_lock():
        winograd_cf_kernel(x4, up, bk, has_bias, out4, spec.dilations[1:],
                           tuple(p[0] for p in spec.pads[1:]), PAD_MODES[spec.padding_mode],
                           cf_bands(spec, threads), threads, act, variant_tag(variant))
    return out


#: channels and filters per group the transposed scheme needs at least: with fewer,
#: its transforms outweigh the multiply-adds it saves
TRANSPOSED_MIN_CHANNELS = 8


def transposed_applies(spec, pbs, louts, gshape, wshape):
    """Whether ``_adjoint.adjoint``'s scatter ``out[i] = sum over 2o + k = i + pb
    of g[o] w[k]`` (per axis) takes the transposed scheme T(4x4, 3x3 / 2)
    (``_kernels/winograd.py``): real floating dtype (not converted from integers,
    whose exact sums its different rounding could change), 3x3 windows at stride 2 in H
    and W with dilation 1, nothing along depth (one tap, stride 1, no offset), and
    at least ``TRANSPOSED_MIN_CHANNELS`` channels and filters per group. It does
    25 multiply-adds per 4 x 4 outputs where the stride phases do 36."""
    return (spec.dtype in (np.float32, np.float64) and not spec.integer_inputs and tuple(wshape[:3]) == (1, 3, 3)
            and tuple(spec.strides) == (1, 2, 2) and tuple(spec.dilations[1:]) == (1, 1)
            and pbs[0] == 0 and louts[0] == gshape[1] and min(pbs) >= 0
            and min(wshape[3], wshape[4] // spec.groups) >= TRANSPOSED_MIN_CHANNELS)


def run_transposed(spec, g5, wt, pbs, out5):
    """``out5`` (N, D, *louts, C) = the adjoint scatter of ``g5`` (N, D, OH, OW, F)
    with ``wt`` (1, 3, 3, F // G, C) where ``transposed_applies``, in place."""
    G = spec.groups
    C = wt.shape[4]
    variant = choose_variant(C // G, spec.dtype)
    lanes = variant_lanes(variant, spec.dtype)
    up = transform_weights(wt, G, lanes, spec.dtype, TRANSPOSED)
    threads = numba.get_num_threads()
    ty, tx = block_grid.py_func(out5.shape[2], out5.shape[3], pbs[1], pbs[2])
    run_ = tile_run(1, wt.shape[3], lanes, VARIANTS[variant][0], out5.shape[0] * out5.shape[1] * ty * tx,
                    spec.dtype, threads, scheme=TRANSPOSED)
    with kernel_lock():
        winograd_kernel(np.ascontiguousarray(g5), up, direct._no_bias(spec.dtype), False, out5, (1, 1, 1), (1, 1, 1),
                        tuple(pbs), 0, run_, threads, 0, variant_tag(variant), TRANSPOSED)
    return out5
