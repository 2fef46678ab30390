"""Channel contraction in the frequency domain (the FFT path's arithmetic).

``Y[n, f, g*Kg + k] = sum_c X[n, f, g*Cg + c] * W[f, c, g*Kg + k]``: for every
frequency a small (N x Cg) @ (Cg x Kg) product per group. NumPy's batched
``matmul`` paid ~1 us of dispatch per frequency (40 ms for a 280 x 141 spectrum
of 8 channels); this loop nest runs them back to back, over blocks of
frequencies shared out to Python threads (``contract``: not a Numba parallel
loop, see ``numconv._shares``), with the filter axis innermost and contiguous.

Each block runs the tile of the direct kernels (``tile.py``) over its frequencies:
``R`` consecutive frequencies (rows) x ``lanes`` filters of complex accumulators,
one ``row_fma`` (a broadcast input value times a vector of its frequency's
filters, the full complex product) per row and channel, then ``row_store`` of
each row's filters. In complex64, past ``tile.FLUSH_TERMS`` channels, the
partial sums of each run of that many channels are added up in double precision
(``row_spill`` into a ``wide_tile``), as the direct kernels' long reductions are:
one complex64 sum over 1024 channels had 2-4x torch's float32 error (7.7e-7 to
1.4e-6 against 3.5e-7). The first version summed complex numbers straight into ``Y``
in a scalar loop over a group's filters, which LLVM left scalar (the sums could
alias ``Y``'s inputs, and Numba's negative-index wraparound sat in every index):
on a 4 x 288 x 145 spectrum of 8 channels and 8 filters (10.7 M complex
multiply-adds, 2 threads) it took 8.9 ms, and 2.5-3.4 ms here; one channel and
one filter on 512 x 257 frequencies 1.65 -> 0.25 ms; 16 -> 16 channels in 4
groups on 3283 frequencies 0.59 -> 0.09 ms (median of 15).
"""
import numpy as np
from numba import njit

from .._config import SERIAL
from .._shares import in_shares
from .tile import (acc_tile, at, choose_variant, flush_terms, row_fma, row_spill, row_store, row_zero, tile_shape,
                   variant_lanes, variant_tag, wide_tile)

#: frequencies per task (a multiple of every tile's rows)
FREQ_BLOCK = 64
#: complex multiply-adds per microsecond on one thread, roughly (4 x 270 x 136
#: frequencies x 8 x 8 channels: 9.4 M in ~3.6 ms), to decide whether a
#: contraction is worth sharing out (``numconv._shares.SHARE_US``)
MACS_PER_US = 2500


@njit(inline="always", **SERIAL)
def _fma_channels(acc, xf, wf, c0, c1, f0, nf, n, C, CG, G, g, KP, k0, tag):
    """``acc`` rows (frequencies ``f0 ...``, the last repeated past ``nf``) +=
    input channels ``c0 ... c1 - 1`` of group ``g`` times their filters from
    ``k0`` (``_contract_block``'s operands)."""
    R, _ = tile_shape(wf, tag)
    for c in range(c0, c1):
        for r in range(R):
            f = min(f0 + r, nf - 1)
            row_fma(acc, r, at(xf, (n * nf + f) * C + g * CG + c), wf, ((f * CG + c) * G + g) * KP + k0, tag)


@njit(inline="always", **SERIAL)
def _contract_block(X, W, Y, groups, no_bias, tag, t):
    """``contract_blocks``' work on frequency block ``t`` (``FREQ_BLOCK``
    frequencies from ``t * FREQ_BLOCK``)."""
    N, nf, C = X.shape
    _, CG, G, KP = W.shape
    K = Y.shape[2]
    KG = K // groups
    R, L = tile_shape(W, tag)
    xf = X.reshape(X.size)
    wf = W.reshape(W.size)
    yf = Y.reshape(Y.size)
    acc = acc_tile(W, tag)
    F = flush_terms(X)  # complex64: channels per partial sum; complex128: 0, one sum
    wide = wide_tile(W, tag)
    for f0 in range(t * FREQ_BLOCK, min(nf, (t + 1) * FREQ_BLOCK), R):  # W[f0:f0 + R] serves all n
        for n in range(N):
            for g in range(groups):
                for k0 in range(0, KG, L):
                    for r in range(R):
                        row_zero(acc, r, W, tag)
                    if F == 0 or CG <= F:  # one sum (a loop of its own: the general one cost 25 % at 8 channels)
                        _fma_channels(acc, xf, wf, 0, CG, f0, nf, n, C, CG, G, g, KP, k0, tag)
                        for r in range(min(R, nf - f0)):
                            row_store(acc, r, yf, (n * nf + f0 + r) * K + g * KG + k0, min(L, KG - k0), no_bias,
                                      0, False, tag)
                        continue
                    for c0 in range(0, CG, F):
                        _fma_channels(acc, xf, wf, c0, min(c0 + F, CG), f0, nf, n, C, CG, G, g, KP, k0, tag)
                        for r in range(R):
                            row_spill(acc, wide, r, c0 == 0, W, tag)
                    for r in range(min(R, nf - f0)):
                        row_store(wide, r, yf, (n * nf + f0 + r) * K + g * KG + k0, min(L, KG - k0), no_bias, 0,
                                  False, tag)


@njit(**SERIAL)
def contract_blocks(X, W, Y, groups, no_bias, tag, t0, t1):
    """``Y[n, f, g*Kg + k] = sum_c X[n, f, g*Cg + c] * W[f, c, g, k]`` for the
    frequencies of blocks ``t0 ... t1 - 1``, in the calling thread (``contract``).

    ``X`` (N, nf, C) and ``Y`` (N, nf, K) complex spectra; ``W`` (nf, Cg, G, KP)
    each group's filters, zero-padded to KP, whole rows of the ``tag`` tile
    (``pad_filters``); ``no_bias`` a 1-element dummy of their dtype; all
    C-contiguous. Block ``t`` writes only ``Y[:, t * FREQ_BLOCK ...]``; the last
    tile of the spectrum repeats its last frequency in the rows past the end
    (computed, never stored)."""
    for t in range(t0, t1):
        _contract_block(X, W, Y, groups, no_bias, tag, t)


def contract(X, W, Y, groups, no_bias, tag, threads):
    """``contract_blocks`` over every frequency, shared out to ``threads`` Python
    threads (``numconv._shares``: not a Numba parallel loop, whose idle threads
    would spin through the SciPy transforms that follow)."""
    N, nf, C = X.shape
    in_shares(contract_blocks, -(-nf // FREQ_BLOCK), threads, X, W, Y, groups, no_bias, tag,
              us=N * nf * C * W.shape[3] / MACS_PER_US)


def contract_tag(filters_per_group, dtype):
    """``contract_blocks``' tile (``tile.variant_tag``) for ``dtype`` (complex)."""
    return variant_tag(choose_variant(filters_per_group, dtype))


def pad_filters(W, groups, tag):
    """(nf, Cg, K) -> (nf, Cg, G, KP): each group's K / G filters zero-padded to
    whole rows of the ``tag`` tile, as ``contract_blocks`` reads them."""
    nf, CG, K = W.shape
    KG = K // groups
    L = variant_lanes(len(tag), W.dtype)
    KP = -(-KG // L) * L
    if KP == KG:
        return np.ascontiguousarray(W.reshape(nf, CG, groups, KG))
    out = np.zeros((nf, CG, groups, KP), W.dtype)
    out[..., :KG] = W.reshape(nf, CG, groups, KG)
    return out
