"""Folding columns back onto a grid: the second half of the transposed conv's
column form (``_adjoint``).

The adjoint of ``conv`` scatters each input position's products with every
kernel tap back onto the output grid: ``out[i] = sum over (o, k) with o * s + k
* d = i + pb of y[o] @ w[k]``. Its column form first computes every product,
``cols[o, k] = y[o] @ w[k]`` (one 1 x 1 conv of ``y`` to ``taps x channels``
filters, on the dense kernels), then this kernel sums, for each output
position, the columns that land on it. Each output gathers its own terms in a
fixed tap order, so nothing is shared between threads and the result does not
depend on the thread count.
"""
import numpy as np
from numba import prange

from .._config import parallel_kernel


def axis_table(L, K, s, d, pb, O):
    """The taps reaching each output position of one axis: ``(start, pairs)``, with
    the ``(k, o)`` pairs of ``o * s + k * d = i + pb``, ``0 <= o < O``, for output
    ``i`` at ``pairs[start[i]:start[i + 1]]``, ``k`` increasing (the kernel then
    needs no division per tap)."""
    i = np.arange(L)[:, None]
    k = np.arange(K)[None, :]
    j = i + pb - k * d
    hit = (j >= 0) & (j % s == 0) & (j // s < O)
    start = np.zeros(L + 1, np.int64)
    np.cumsum(hit.sum(axis=1), out=start[1:])
    rows, ks = np.nonzero(hit)
    return start, np.stack([ks, j[rows, ks] // s], axis=1).astype(np.int64)


@parallel_kernel
def fold_columns_kernel(cols, out, taps, groups, chunks, tables):
    """``out[n, i, g * Cg + c] = sum over taps k (row-major, in order) with
    ``o * s + k * d = i + pb``, ``0 <= o < O``, per axis, of ``cols[n, o, (g * KT
    + k) * Cg + c]``.

    ``cols`` (N, O1, O2, O3, G * KT * Cg), ``out`` (N, L1, L2, L3, G * Cg), both
    C-contiguous; ``taps`` (K1, K2, K3) with KT their product; ``groups`` G;
    ``tables`` the three axes' ``axis_table``s. Parallel over (n, i1, i2, chunk of
    ``chunks`` along L3) tasks; outputs no tap reaches are zero."""
    N, L1, L2, L3, C = out.shape
    O1, O2, O3, CK = cols.shape[1], cols.shape[2], cols.shape[3], cols.shape[4]
    K1, K2, K3 = taps
    (st1, pr1), (st2, pr2), (st3, pr3) = tables
    KT = K1 * K2 * K3
    Cg = C // groups
    cf = cols.reshape(cols.size)
    of = out.reshape(out.size)
    step = (L3 + chunks - 1) // chunks
    for task in prange(N * L1 * L2 * chunks):
        ch = task % chunks
        row = task // chunks
        i2 = row % L2
        i1 = (row // L2) % L1
        n = row // (L1 * L2)
        for i3 in range(ch * step, min(L3, (ch + 1) * step)):
            dst = (((n * L1 + i1) * L2 + i2) * L3 + i3) * C
            for c in range(C):
                of[dst + c] = 0
            for a in range(st1[i1], st1[i1 + 1]):
                k1, o1 = pr1[a, 0], pr1[a, 1]
                for b in range(st2[i2], st2[i2 + 1]):
                    k2, o2 = pr2[b, 0], pr2[b, 1]
                    for e in range(st3[i3], st3[i3 + 1]):
                        k3, o3 = pr3[e, 0], pr3[e, 1]
                        src = (((n * O1 + o1) * O2 + o2) * O3 + o3) * CK + ((k1 * K2 + k2) * K3 + k3) * Cg
                        for g in range(groups):
                            for c in range(Cg):
                                of[dst + g * Cg + c] += cf[src + g * KT * Cg + c]
    return out
