"""The direct path: pack weights, pad (non-zero modes only), launch a kernel.

Two kernels share the spec: the register-tile kernel (``_kernels/conv.py``) for
dense and grouped convolutions, and the channel-vectorised depthwise kernel
(``_kernels/depthwise.py``) when every group has one input channel and few
filters, where the tile kernel would spend most of its lanes on zero padding.
"""
import numba
import numpy as np

from .._config import kernel_lock
from .._kernels.conv import conv_direct_kernel
from .._kernels.depthwise import depthwise_kernel
from .._kernels.pad import PAD_MODES, pad_kernel
from .._kernels.tile import TILE_ROWS, block_size


def pack_weights(w5, groups, lanes):
    """(KD, KH, KW, Cg, K) -> (G, NKB, KD, KH, KW, Cg, lanes), each group's filters
    in blocks of ``lanes`` zero-filled past ``K // groups``."""
    KD, KH, KW, CG, K = w5.shape
    KG = K // groups
    nkb = -(-KG // lanes)
    packed = np.zeros((groups, nkb * lanes, KD, KH, KW, CG), w5.dtype)
    packed[:, :KG] = w5.reshape(KD, KH, KW, CG, groups, KG).transpose(4, 5, 0, 1, 2, 3)
    return np.ascontiguousarray(packed.reshape(groups, nkb, lanes, KD, KH, KW, CG).transpose(0, 1, 3, 4, 5, 6, 2))


def padded_input(spec, x5):
    """``(x, pads)`` for the kernel: a padded copy for reflect / replicate / circular
    (pads become 0), else ``x5`` itself with the zero pads folded into the kernel."""
    pads_before = tuple(p[0] for p in spec.pads)
    if spec.padding_mode == "zeros" or not any(any(p) for p in spec.pads):
        return x5, pads_before
    shape = (x5.shape[0],) + tuple(L + b + a for L, (b, a) in zip(spec.in_spatial, spec.pads)) + (x5.shape[-1],)
    xp = np.empty(shape, x5.dtype)
    with kernel_lock():
        pad_kernel(x5, xp, pads_before, PAD_MODES[spec.padding_mode])
    return xp, (0, 0, 0)


def w_chunk(spec, threads):
    """Pixels along W per task: whole rows when there are enough rows to balance
    the threads, else rows split so that there are >= 8 tasks per thread."""
    rows = spec.batch * spec.out_spatial[0] * spec.out_spatial[1]
    ow = spec.out_spatial[2]
    want = 8 * threads
    chunks = 1 if rows >= want else min(-(-want // rows), -(-ow // 16))
    chunk = -(-ow // max(chunks, 1))
    return -(-chunk // TILE_ROWS) * TILE_ROWS


#: Depthwise multipliers up to this use the depthwise kernel (the tile kernel
#: would fill at most MAX_DEPTHWISE_M of its 16-64 lanes).
MAX_DEPTHWISE_M = 8


def is_depthwise(spec):
    """One input channel per group and a small depth multiplier."""
    return (spec.channels == spec.groups and spec.groups > 1
            and spec.filters // spec.groups <= MAX_DEPTHWISE_M)


def run(spec, x5, w5, b, out5):
    """Compute ``out5`` (N, OD, OH, OW, K) in place with the fused activation code."""
    xk, pads = padded_input(spec, x5)
    has_bias = b is not None
    bk = b if has_bias else np.zeros(1, spec.dtype)
    act = spec.activation if isinstance(spec.activation, int) else 0
    if is_depthwise(spec):
        KD, KH, KW, _, K = w5.shape
        wm = np.ascontiguousarray(w5.reshape(KD, KH, KW, spec.channels, K // spec.channels).transpose(0, 1, 2, 4, 3))
        with kernel_lock():
            depthwise_kernel(xk, wm, bk, has_bias, out5, spec.strides, spec.dilations, pads, act)
        return out5
    wp = pack_weights(w5, spec.groups, block_size(x5))
    with kernel_lock():
        conv_direct_kernel(xk, wp, bk, has_bias, out5, spec.strides, spec.dilations, pads,
                           w_chunk(spec, numba.get_num_threads()), act)
    return out5
