"""The direct convolution kernel family: one loop nest for ranks 1-3.

Canonical operands (prepared by ``numconv._paths.direct``):

* ``x``: (N, D, H, W, C) channels-last, C-contiguous. Rank 1 is (N, 1, 1, L, C)
  and rank 2 (N, 1, H, W, C), so the pixel tile always runs along W.
* ``wp``: weights packed once per call into blocks of ``B = block_size(x)``
  output channels, (G, NKB, KD, KH, KW, Cg, B), zero-filled past each group's
  ``Kg`` filters. A contiguous ``range(B)`` row is what vectorises cleanly
  (unpacked indexing produced gathers: PERF_NOTES item 2).
* ``out``: (N, OD, OH, OW, K), C-contiguous, K = G * Kg.

Zero padding is folded into the index bounds (``pads`` are the leading pads);
other padding modes arrive as a padded copy with ``pads == (0, 0, 0)``.
"""
import numba
from numba import njit, prange

from .._config import PARALLEL, SERIAL
from .act import activate
from .tile import TILE_ROWS, block_size, flush_terms, stack_tile, wide_tile

assert TILE_ROWS == 4  # the loop bodies below are written out for 4 pixels


@njit(inline="always", **SERIAL)
def _fma_tile(acc, x0, x1, x2, x3, wr, B):
    """``acc[p, :] += x_p * wr`` for the 4 pixels: one weight row, four FMAs per lane."""
    for k in range(B):
        wv = wr[k]
        acc[0, k] += x0 * wv
        acc[1, k] += x1 * wv
        acc[2, k] += x2 * wv
        acc[3, k] += x3 * wv


@njit(**PARALLEL)
def conv_direct_kernel(x, wp, b, has_bias, out, strides, dilations, pads, wchunk, act):
    """Direct cross-correlation ``out = act(conv(x, w) + b)``.

    Register tile: 4 output pixels along W x ``B`` output channels, accumulated
    on the stack over (kd, kh, kw, c); per input value one broadcast and four
    vector FMAs against a contiguous weight row. Stride and dilation are index
    arithmetic on the broadcast loads. Tiles whose 4 input pixels are all inside
    the input take a branch-free loop; border tiles read zeros for pixels in the
    zero padding. Single precision flushes the register tile into a double
    precision tile every ``flush_terms`` reduction terms (see ``tile.py``).

    Parallel over tasks (n, od, oh, W-chunk of ``wchunk`` pixels, a multiple of 4);
    each task writes only its own output pixels and every output's reduction stays
    in one thread in a fixed order, so results are identical for any thread count.
    """
    N, D, H, W, C = x.shape
    _, OD, OH, OW, K = out.shape
    G, NKB, KD, KH, KW, CG, _ = wp.shape
    KG = K // G
    sd, sh, sw = strides
    dd, dh, dw = dilations
    pd, ph, pw = pads
    B = block_size(x)
    F = flush_terms(x)
    chunk = F if F else CG
    nch = (OW + wchunk - 1) // wchunk
    zero = x.dtype.type(0)
    for t in prange(N * OD * OH * nch):
        acc = numba.carray(stack_tile(x), (4, B))
        tot = numba.carray(wide_tile(x), (4, B))
        row = t // nch
        ch = t - row * nch
        n = row // (OD * OH)
        r = row - n * (OD * OH)
        od = r // OH
        oh = r - od * OH
        w_end = min(OW, (ch + 1) * wchunk)
        for g in range(G):
            for kb in range(NKB):
                k0 = kb * B
                kn = min(B, KG - k0)
                for ow0 in range(ch * wchunk, w_end, 4):
                    for p in range(4):
                        for k in range(B):
                            acc[p, k] = zero
                            tot[p, k] = 0
                    cnt = 0
                    for a in range(KD):
                        iz = od * sd - pd + a * dd
                        if iz < 0 or iz >= D:
                            continue
                        for bb in range(KH):
                            iy = oh * sh - ph + bb * dh
                            if iy < 0 or iy >= H:
                                continue
                            xr = x[n, iz, iy]
                            for cc in range(KW):
                                i0 = ow0 * sw - pw + cc * dw
                                i1 = i0 + sw
                                i2 = i1 + sw
                                i3 = i2 + sw
                                # Pixels in the zero padding, or past the tile's end,
                                # read row 0 and are masked to zero on the border path.
                                v0 = 0 <= i0 < W
                                v1 = 0 <= i1 < W and ow0 + 1 < w_end
                                v2 = 0 <= i2 < W and ow0 + 2 < w_end
                                v3 = 0 <= i3 < W and ow0 + 3 < w_end
                                inner = v0 and v3 and ow0 + 3 < w_end
                                x0r = xr[i0 if v0 else 0]
                                x1r = xr[i1 if v1 else 0]
                                x2r = xr[i2 if v2 else 0]
                                x3r = xr[i3 if v3 else 0]
                                wt = wp[g, kb, a, bb, cc]
                                for c0 in range(0, CG, chunk):
                                    cn = min(chunk, CG - c0)
                                    gc0 = g * CG + c0
                                    wc = wt[c0:]
                                    if inner:
                                        for c in range(cn):
                                            _fma_tile(acc, x0r[gc0 + c], x1r[gc0 + c], x2r[gc0 + c],
                                                      x3r[gc0 + c], wc[c], B)
                                    else:
                                        for c in range(cn):
                                            _fma_tile(acc, x0r[gc0 + c] if v0 else zero,
                                                      x1r[gc0 + c] if v1 else zero,
                                                      x2r[gc0 + c] if v2 else zero,
                                                      x3r[gc0 + c] if v3 else zero, wc[c], B)
                                    if F:
                                        cnt += cn
                                        if cnt >= F:
                                            cnt = 0
                                            for p in range(4):
                                                for k in range(B):
                                                    tot[p, k] += acc[p, k]
                                                    acc[p, k] = zero
                    for p in range(min(4, w_end - ow0)):
                        orow = out[n, od, oh, ow0 + p]
                        for k in range(kn):
                            kk = g * KG + k0 + k
                            v = tot[p, k] + acc[p, k] if F else acc[p, k]
                            if has_bias:
                                v += b[kk]
                            orow[kk] = activate(x.dtype.type(v), act)
