"""Padding modes, folded into kernels' index arithmetic (no padded copies).

A padded copy of the input costs a full pass over it (5-50 % of a conv's time on
the layers measured here, PERF_NOTES) and input-sized scratch; instead kernels
map an out-of-range index through ``source_index`` on their border paths.
"""
from numba import njit

from .._config import SERIAL

#: padding_mode -> code understood by ``source_index`` (zeros is 0: no source).
PAD_MODES = {"zeros": 0, "reflect": 1, "replicate": 2, "circular": 3}


@njit(inline="always", **SERIAL)
def source_index(i, length, mode):
    """Index into an axis of ``length`` that position ``i`` (relative to the first
    unpadded element) reads under padding ``mode`` 1-3. Valid for pads within
    PyTorch's limits (reflect: pad < length; circular: pad <= length), which
    ``numconv._spec`` enforces."""
    if 0 <= i < length:
        return i
    if mode == 1:  # reflect, edge not repeated (numpy "reflect", torch "reflect")
        return -i if i < 0 else 2 * (length - 1) - i
    if mode == 2:  # replicate (numpy "edge")
        return 0 if i < 0 else length - 1
    return i % length  # circular (numpy "wrap"); Python modulo is non-negative
