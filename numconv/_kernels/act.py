"""Activations fused into kernels' output writes, selected by an integer code.

``ACTIVATIONS`` maps each Keras 3 activation name to its code; ``activate(v, code)``
is inlined into kernel loops. Each formula follows ``keras.activations`` in Keras 3:
gelu is the exact erf form, leaky_relu has slope 0.2, hard_sigmoid is relu6(x+3)/6.
NaN propagates through every branch (comparisons are written so NaN takes the
pass-through side, as ``tf.nn.relu`` and ``torch.relu`` do).

For complex dtypes only code 0 (linear) is meaningful; the complex overload is the
identity, and ``numconv._spec`` rejects named non-linear activations on complex data.
"""
import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from .._config import SERIAL, parallel_kernel

ACTIVATIONS = {
    "linear": 0, "relu": 1, "relu6": 2, "sigmoid": 3, "tanh": 4, "elu": 5, "selu": 6,
    "softplus": 7, "softsign": 8, "swish": 9, "silu": 9, "gelu": 10, "leaky_relu": 11,
    "hard_sigmoid": 12, "exponential": 13,
}

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_INV_SQRT2 = 0.7071067811865475244008443621048


def activate(v, code):
    """Apply activation ``code`` to the scalar ``v`` (Numba-only; see module docstring)."""
    raise NotImplementedError("activate is only callable from Numba kernels")


def _sigmoid(v, one):
    # 1 / (1 + exp(-v)), written to avoid overflow for large |v|.
    if v >= 0:
        return one / (one + math.exp(-v))
    e = math.exp(v)
    return e / (one + e)


_sigmoid_jit = njit(cache=SERIAL["cache"])(_sigmoid)  # False where no cache folder is writable (_config)


@overload(activate)
def _activate_overload(v, code):
    if isinstance(v, types.Complex):
        return lambda v, code: v

    T = as_dtype(v).type  # np.float32 or np.float64: constants stay in v's precision

    def impl(v, code):
        one = T(1)
        zero = T(0)
        if code == 0:
            return v
        if code == 1:
            return zero if v < 0 else v
        if code == 2:
            return zero if v < 0 else (T(6) if v > 6 else v)
        if code == 3:
            return _sigmoid_jit(v, one)
        if code == 4:
            return math.tanh(v)
        if code == 5:
            return v if v > 0 else math.expm1(v)
        if code == 6:
            return T(_SELU_SCALE) * (v if v > 0 else T(_SELU_ALPHA) * math.expm1(v))
        if code == 7:
            # log(1 + exp(v)) = max(v, 0) + log1p(exp(-|v|))
            return (v if v > 0 else zero) + math.log1p(math.exp(-abs(v)))
        if code == 8:
            return v / (one + abs(v))
        if code == 9:
            return v * _sigmoid_jit(v, one)
        if code == 10:
            return T(0.5) * v * (one + math.erf(v * T(_INV_SQRT2)))
        if code == 11:
            return T(0.2) * v if v < 0 else v
        if code == 12:
            u = v + T(3)
            return (zero if u < 0 else (T(6) if u > 6 else u)) / T(6)
        return math.exp(v)

    return impl


def activate_slice(y, code):
    """In place ``y[i] = activate(y[i], code)`` over a 1-D slice (Numba-only), with
    the switch on ``code`` outside the loop so the common cases are tight vector
    loops (a call per element made the epilogue dominate kernels with short
    reductions). Complex data: the identity, as for ``activate``."""
    raise NotImplementedError("activate_slice is only callable from Numba kernels")


@overload(activate_slice)
def _activate_slice_overload(y, code):
    if isinstance(y.dtype, types.Complex):
        return lambda y, code: None

    def impl(y, code):
        if code == 0:
            return
        if code == 1:
            for i in range(y.size):
                v = y[i]
                y[i] = v if not v < 0 else 0
            return
        for i in range(y.size):
            y[i] = activate(y[i], code)

    return impl


@njit(inline="always", **SERIAL)
def write_row(dst, acc, bias, has_bias, code):
    """The kernels' epilogue: ``dst[:] = activate(T(acc[:n] + bias[:n]), code)``, with
    ``acc`` in the accumulation precision and the sum rounded once to ``dst``'s
    dtype. ``bias`` is only read when ``has_bias``."""
    n = dst.size
    if has_bias:
        for i in range(n):
            dst[i] = acc[i] + bias[i]
    else:
        for i in range(n):
            dst[i] = acc[i]
    activate_slice(dst, code)


@njit(inline="always", **SERIAL)
def _rows_per_block(K):
    return max(1, 4096 // max(K, 1))


@njit(inline="always", **SERIAL)
def _bias_activation_block(y, b, has_bias, code, blk):
    """``bias_activation_kernel`` on its block ``blk`` of rows (``_rows_per_block``)."""
    M, K = y.shape
    yf = y.reshape(y.size)
    rows = _rows_per_block(K)
    lo = blk * rows * K
    hi = min(M, (blk + 1) * rows) * K
    if has_bias:
        for r in range(lo, hi, K):
            for k in range(K):
                yf[r + k] += b[k]
    if code:
        for i in range(lo, hi):
            yf[i] = activate(yf[i], code)


def bias_activation_blocks_count(y):
    """Blocks of rows ``bias_activation_blocks`` takes for ``y`` (M, K)."""
    M, K = y.shape
    rows = _rows_per_block.py_func(K)
    return -(-M // rows)


@parallel_kernel
def bias_activation_kernel(y, b, has_bias, code):
    """In place over rows of ``y`` (M, K): ``y[i] = activate(y[i] + b, code)``, for
    paths whose arithmetic does not end in a kernel epilogue. Parallel over
    blocks of rows, indexed flat (a row view per pixel cost reference counting)."""
    M, K = y.shape
    for blk in prange(-(-M // _rows_per_block(K))):
        _bias_activation_block(y, b, has_bias, code, blk)


@njit(**SERIAL)
def bias_activation_blocks(y, b, has_bias, code, blk0, blk1):
    """``bias_activation_kernel`` on blocks ``blk0 ... blk1 - 1``, in the calling
    thread (for ``numconv._shares.in_shares``: the FFT path, between transforms)."""
    for blk in range(blk0, blk1):
        _bias_activation_block(y, b, has_bias, code, blk)


#: Activation codes computed after the kernels, by NumPy's vectorised ufuncs
#: (exp, expm1, tanh, log1p), instead of one libm call per output inside them:
#: on the resnet layer (1.6 M outputs) a fused tanh cost 23 ms against 0.6 ms for
#: ``np.tanh`` over the result, sigmoid 10 ms, elu/selu 11, softplus 16. gelu
#: (erf has no NumPy ufunc) and the piecewise-linear ones stay fused.
DEFERRED = frozenset({ACTIVATIONS[name] for name in
                      ("sigmoid", "tanh", "elu", "selu", "softplus", "swish", "exponential")})
#: elements per NumPy pass: the temporaries of one chunk stay in L2
_CHUNK = 1 << 15


def fused_code(code):
    """The activation code a kernel applies itself: ``code``, or 0 (linear) for the
    ``DEFERRED`` ones, which ``apply_deferred`` applies after it."""
    return 0 if code in DEFERRED else code


def _sigmoid_np(v, out, a, b):
    # exp(min(v, 0)) / (1 + exp(-|v|)): 1 / (1 + exp(-v)) for v >= 0 and
    # exp(v) / (1 + exp(v)) below, the scalar ``_sigmoid``'s two branches without
    # a select (np.where cost 4x the whole formula); a and b are scratch
    np.abs(v, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    a += 1
    np.minimum(v, v.dtype.type(0), out=b)
    np.exp(b, out=b)
    np.divide(b, a, out=out)


def apply_deferred(y, code):
    """In place ``y = activate(y, code)`` for a ``DEFERRED`` code, with the formulas
    of ``activate`` (Keras 3's), in chunks of ``_CHUNK`` elements; ``y`` is
    C-contiguous. ``v if v > 0 else f(v)`` is computed as ``max(v, 0) + f(min(v, 0))``
    (exact: one of the two terms is 0; NaN propagates through both). One thread:
    splitting the chunks over two Python threads measured no faster here."""
    flat = y.reshape(-1)
    zero = flat.dtype.type(0)
    a = np.empty(min(_CHUNK, flat.size), flat.dtype)
    b = np.empty_like(a)
    for i in range(0, flat.size, _CHUNK):
        v = flat[i:i + _CHUNK]
        n = v.size
        if code == ACTIVATIONS["tanh"]:
            np.tanh(v, out=v)
        elif code == ACTIVATIONS["exponential"]:
            np.exp(v, out=v)
        elif code == ACTIVATIONS["sigmoid"]:
            _sigmoid_np(v, v, a[:n], b[:n])
        elif code == ACTIVATIONS["swish"]:
            _sigmoid_np(v, a[:n], a[:n], b[:n])
            v *= a[:n]
        elif code == ACTIVATIONS["softplus"]:  # max(v, 0) + log1p(exp(-|v|))
            np.abs(v, out=a[:n])
            np.negative(a[:n], out=a[:n])
            np.exp(a[:n], out=a[:n])
            np.log1p(a[:n], out=a[:n])
            np.maximum(v, zero, out=v)
            v += a[:n]
        else:  # elu, selu: (scale *) (v if v > 0 else alpha * expm1(v))
            np.minimum(v, zero, out=a[:n])
            np.expm1(a[:n], out=a[:n])
            if code == ACTIVATIONS["selu"]:
                a[:n] *= flat.dtype.type(_SELU_ALPHA)
            np.maximum(v, zero, out=v)
            v += a[:n]
            if code == ACTIVATIONS["selu"]:
                v *= flat.dtype.type(_SELU_SCALE)
