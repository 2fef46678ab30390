"""The overlap-save path: long axes in blocks, every block through the FFT path
in one call.

Along the longest output axis, output blocks of ``B`` samples each need an input
slab of ``(B - 1) * s + e`` samples (``s`` the stride, ``e`` the dilated kernel).
The slabs are cut from the padded input (one copy), stacked as extra batch
entries, and convolved with ``padding="valid"`` by ``numconv._paths.fft``: one
batched set of short transforms (~8 e points) instead of one long one, which is
cheaper per output once the axis is much longer than the kernel (O(log e) rather
than O(log n) per sample) and keeps the spectra in cache.
"""
import dataclasses

import numpy as np

from .. import _memory
from . import fft
from .direct import padded, padded_sizes

#: Transform length per block, in dilated kernel lengths (PERF_NOTES: ~8).
BLOCK_FACTOR = 8


def block_outputs(spec, axis):
    """Outputs per block along ``axis``: slabs of about ``BLOCK_FACTOR`` kernel lengths."""
    e = spec.dilations[axis] * (spec.kernel_spatial[axis] - 1) + 1
    s = spec.strides[axis]
    return max(1, (BLOCK_FACTOR * e - e) // s + 1)


def long_axis(spec):
    return max(range(3), key=lambda a: spec.out_spatial[a])


def plan(spec):
    """``(axis, block, nb, slab, sub)``: the axis cut into ``nb`` blocks of ``block``
    outputs, each read from a ``slab`` of input, and ``sub``, the valid-padding
    spec the FFT path runs on the stacked slabs; None where one block covers the
    axis (then ``run`` is the plain FFT path)."""
    axis = long_axis(spec)
    n_out = spec.out_spatial[axis]
    block = block_outputs(spec, axis)
    if block >= n_out:
        return None
    s = spec.strides[axis]
    e = spec.dilations[axis] * (spec.kernel_spatial[axis] - 1) + 1
    nb = -(-n_out // block)
    slab = (block - 1) * s + e
    in_spatial = list(padded_sizes(spec))
    in_spatial[axis] = slab
    out_spatial = list(spec.out_spatial)
    out_spatial[axis] = block
    sub = dataclasses.replace(spec, batch=spec.batch * nb, in_spatial=tuple(in_spatial),
                              out_spatial=tuple(out_spatial), pads=((0, 0),) * 3, padding_mode="zeros")
    return axis, block, nb, slab, sub


def run(spec, x5, w5, b, out5):
    """Compute ``out5`` (N, OD, OH, OW, K) by overlap-save along the longest axis."""
    p = plan(spec)
    if p is None:  # one block: plain FFT
        return fft.run(spec, x5, w5, b, out5)
    axis, block, nb, slab, sub = p
    n_out = spec.out_spatial[axis]
    s = spec.strides[axis]
    # Pad once with the padding mode (zeros into pooled scratch), then cut the
    # slabs into one pooled (N * nb, ...) batch: the blocks inside the padded input
    # through a strided view, the last ones zero-filled past its end.
    xp = padded(spec, x5, scratch=True, serial=True)
    st = list(xp.strides)
    shape = list(xp.shape)
    shape[1 + axis] = slab
    slabs = _memory.scratch([shape[0] * nb] + shape[1:], spec.dtype)
    blocks = slabs.reshape([shape[0], nb] + shape[1:])
    length = xp.shape[1 + axis]
    inside = min(nb, max(0, (length - slab) // (block * s) + 1))
    blocks[:, :inside] = np.lib.stride_tricks.as_strided(
        xp, shape=[shape[0], inside] + shape[1:], strides=[st[0], block * s * st[1 + axis]] + st[1:],
        writeable=False)
    lead = (slice(None),) * (1 + axis)
    for j in range(inside, nb):
        start = j * block * s
        have = max(0, min(slab, length - start))
        blocks[(slice(None), j) + lead[1:] + (slice(0, have),)] = xp[lead + (slice(start, start + have),)]
        blocks[(slice(None), j) + lead[1:] + (slice(have, slab),)] = 0
    assert slabs.shape[1:4] == sub.in_spatial
    y = _memory.scratch((sub.batch,) + sub.out_spatial + (spec.filters,), spec.dtype)
    fft.run(sub, slabs, w5, b, y)
    # (N * nb, ..., block, ...) -> (N, ..., nb * block, ...) -> trim to n_out
    y = np.moveaxis(y.reshape((spec.batch, nb) + y.shape[1:]), 1, 1 + axis)
    merged = list(spec.canonical_output_shape)
    merged[1 + axis] = nb * block
    y = y.reshape(merged)
    index = [slice(None)] * 5
    index[1 + axis] = slice(0, n_out)
    out5[...] = y[tuple(index)]
    return out5
