"""The fused separable kernel: a depthwise-separable layer's two stages per run of
output pixels, its intermediate never leaving the cache.

``separable_conv`` is a depthwise conv followed by a 1 x 1 one. Run as two
layers, the depthwise result (8 x 56 x 56 x 128 float32: 12.8 MB) is written to
memory by the first and read back by the second. Here each task takes ``span``
output pixels of one row (n, od, oh): the depthwise stage's tiles
(``depthwise._slide_tile``, the slide kernel's) write their channels into a
per-slot buffer, then the 1 x 1 stage (``short.product_rows``, the pointwise
kernel's) reads them from there while they are still in L1/L2. The same
functions on the same values in the same order: the results are the bits of the
two stages run apart (``tests/test_separable_fused.py``).

Scope (``_paths/direct.fuses_separable``): the layers the slide kernel takes
without dilation along W and without flushing its window sums (single
precision, multiplier 1, zero padding), and a 1 x 1 stage ``pointwise_kernel``
takes (one group, single precision); every other layer runs the two stages apart.
"""
import numpy as np
from numba import njit, prange

from .._config import PARALLEL
from .conv import row_task
from .depthwise import _slide_tile, window_range
from .short import product_rows
from .tile import acc_tile, tile_shape, wide_tile


@njit(**PARALLEL)
def separable_kernel(x, wm, wp, b, has_bias, out, mids, strides, dilations, pads, span, taps, stride, dtag, ptag):
    """``out = pointwise(depthwise(x, wm), wp) + b`` (module docstring).

    ``x`` (N, D, H, W, C) canonical channels-last; ``wm`` (KD, KH, KW, 1, CP) the
    depthwise weights as ``depthwise_slide_kernel`` reads them (``taps`` and
    ``stride``: its tap count and stride along W as tuple lengths; ``dtag`` its
    tile); ``wp`` the 1 x 1 weights packed as ``pointwise_kernel`` reads them
    (``ptag`` its tile); ``out`` (N, OD, OH, OW, K). Parallel over equal blocks
    of the tasks (n, od, oh, run of ``span`` pixels), one per row of ``mids``
    (slots, >= span * C), each block's buffer for its runs' depthwise results,
    its rows 64-byte aligned (``_memory.scratch``; Numba's own arrays start 32
    bytes off a cache line as often as not)."""
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = out.shape
    KD, KH, KW, _, CP = wm.shape
    sd, sh, _ = strides
    dd, dh, _ = dilations
    pd, ph, pw = pads
    R, _ = tile_shape(x, dtag)
    xf = x.reshape(x.size)
    wf = wm.reshape(wm.size)
    wpf = wp.reshape(wp.size)
    outf = out.reshape(out.size)
    no_bias = np.zeros(1, x.dtype)
    slots = mids.shape[0]
    spans = -(-OW // span)
    tasks = N * OD * OH * spans
    per = (tasks + slots - 1) // slots
    geom = (D, H, W, C, C, KH, KW, CP, sd, sh, dd, dh, pd, ph, pw, len(stride))
    for s in prange(slots):
        mid = mids[s]
        acc = acc_tile(x, dtag)
        wide = wide_tile(x, dtag)
        for t in range(s * per, min(tasks, (s + 1) * per)):
            n, od, oh, first, last = row_task(t, spans, OD, OH, OW, span)
            a0, a1 = window_range(od * sd - pd, dd, KD, D)
            b0, b1 = window_range(oh * sh - ph, dh, KH, H)
            for ow0 in range(first, last, R):  # pixel ow0 + p goes to mid[(ow0 + p - first) * C:]
                _slide_tile(acc, wide, xf, wf, mid, no_bias, False, False, n, od, oh, -first, ow0, last, 1, a0, a1,
                            b0, b1, False, 1, geom, taps, stride, dtag)
            product_rows(mid, 0, C, last - first, C, wpf, b, has_bias, outf, ((n * OD + od) * OH + oh) * OW + first,
                         K, ptag)
