"""The FFT path: cross-correlation as products of spectra.

One forward transform per input image (all channels at once) and one per kernel
(the dilated, flipped taps, all filters at once); the channel contraction runs in
the frequency domain (``_kernels/spectral.py``: a small matrix product per
frequency and group), then one inverse transform per output. Cost O(n log n) per channel instead of O(n k),
so it wins for large kernels (``numconv._dispatch`` decides).

Index arithmetic: with ``xp`` the padded input (length ``Lp`` per axis) and ``e``
the dilated kernel size, the stride-1 correlation is the linear convolution of
``xp`` with the flipped kernel at offsets ``e - 1 ... Lp - 1``. A circular
transform of size ``>= Lp`` computes those offsets exactly (wrap-around only
reaches offsets below ``e - 1``), and strides keep every ``s``-th of them.

NaN and Inf: a transform mixes every input sample into every frequency, so one
NaN or Inf in ``x`` or the kernel makes the whole output NaN on this path (as with
``scipy.signal.fftconvolve``); ``method="direct"`` keeps them local.
"""
import math

import numpy as np

from .._config import get_num_threads, kernel_lock
from .._kernels.act import bias_activation_kernel
from .._kernels.spectral import contract_kernel
from .direct import epilogue, padded, padded_sizes



def dilated_sizes(spec):
    return tuple(d * (k - 1) + 1 for k, d in zip(spec.kernel_spatial, spec.dilations))


def fft_shape(spec):
    """Transform size per spatial axis: the padded input length, rounded up to a
    size ``scipy.fft`` transforms fast."""
    import scipy.fft  # imported on first use: keeps `import numconv` light

    real = spec.dtype.kind != "c"
    return tuple(scipy.fft.next_fast_len(L, real=real) for L in padded_sizes(spec))


def _dilated_flipped_kernel(spec, w5):
    """(KD, KH, KW, Cg, K) -> taps spread by the dilation (zeros between), flipped."""
    d = spec.dilations
    wd = np.zeros(dilated_sizes(spec) + w5.shape[3:], w5.dtype)
    wd[::d[0], ::d[1], ::d[2]] = w5
    return wd[::-1, ::-1, ::-1]


#: Spectra of one batch chunk (input + output, complex) stay below this; larger
#: batches are processed in chunks, each one batched transform and one kernel call.
CHUNK_BYTES = 256 * 2**20


def batch_chunk(spec):
    """Images per chunk so that one chunk's input and output spectra fit in
    ``CHUNK_BYTES`` (at least one image)."""
    n = math.prod(fft_shape(spec))
    item = spec.dtype.itemsize * (1 if spec.dtype.kind == "c" else 2)  # the spectra's complex dtype
    per_image = n * (spec.channels + spec.filters) * item
    return max(1, min(spec.batch, CHUNK_BYTES // max(per_image, 1)))


def run(spec, x5, w5, b, out5):
    """Compute ``out5`` (N, OD, OH, OW, K) with transforms over the spatial axes,
    in batch chunks of bounded spectrum memory (``batch_chunk``)."""
    import scipy.fft

    complex_data = spec.dtype.kind == "c"
    forward = scipy.fft.fftn if complex_data else scipy.fft.rfftn
    inverse = scipy.fft.ifftn if complex_data else scipy.fft.irfftn
    workers = get_num_threads()
    fshape = fft_shape(spec)
    N, C, K, G = spec.batch, spec.channels, spec.filters, spec.groups
    CG = C // G
    Wf = forward(_dilated_flipped_kernel(spec, w5), s=fshape, axes=(0, 1, 2), workers=workers)  # (*F, Cg, K)
    F = Wf.shape[:3]
    nf = int(np.prod(F))
    Wf = np.ascontiguousarray(Wf.reshape(nf, CG, K))
    region = tuple(slice(e - 1, e - 1 + (o - 1) * s + 1, s)
                   for e, o, s in zip(dilated_sizes(spec), spec.out_spatial, spec.strides))
    step = batch_chunk(spec)
    for n0 in range(0, N, step):
        xs = padded(spec, x5[n0:n0 + step])
        X = forward(xs, s=fshape, axes=(1, 2, 3), workers=workers)      # (n, *F, C)
        del xs
        n = X.shape[0]
        Y = np.empty((n,) + F + (K,), X.dtype)
        with kernel_lock():
            contract_kernel(X.reshape(n, nf, C), Wf, Y.reshape(n, nf, K), G)
        del X
        y = inverse(Y, s=fshape, axes=(1, 2, 3), workers=workers)
        del Y
        out5[n0:n0 + n] = y[(slice(None),) + region + (slice(None),)]
    bk, has_bias, act = epilogue(spec, b)
    if has_bias or act:
        with kernel_lock():
            bias_activation_kernel(out5.reshape(-1, K), bk, has_bias, act)
    return out5
