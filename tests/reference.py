"""Slow, obviously correct NumPy references for the numconv test suite.

Written from the definitions in the API contract (Keras/TensorFlow padding rules,
PyTorch padding modes, Keras 3 activations). Imports nothing from numconv.
"""

import math

import numpy as np
from scipy.special import erf, expit

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805

ACTIVATIONS = (
    "linear", "relu", "relu6", "sigmoid", "tanh", "elu", "selu", "softplus",
    "softsign", "swish", "silu", "gelu", "leaky_relu", "hard_sigmoid", "exponential",
)

_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def ref_activation(name, y):
    """Keras 3 `keras.activations.get(name)(y)` in float64; a callable is applied as is."""
    if name is None:
        return y
    if callable(name):
        return name(y)
    relu6 = lambda v: np.minimum(np.maximum(v, 0.0), 6.0)  # noqa: E731
    elu = lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0.0)))  # noqa: E731
    table = {
        "linear": lambda v: v,
        "relu": lambda v: np.maximum(v, 0.0),
        "relu6": relu6,
        "sigmoid": expit,
        "tanh": np.tanh,
        "elu": elu,
        "selu": lambda v: SELU_SCALE * np.where(v > 0, v, SELU_ALPHA * np.expm1(np.minimum(v, 0.0))),
        "softplus": lambda v: np.logaddexp(0.0, v),
        "softsign": lambda v: v / (1.0 + np.abs(v)),
        "swish": lambda v: v * expit(v),
        "silu": lambda v: v * expit(v),
        "gelu": lambda v: 0.5 * v * (1.0 + erf(v / math.sqrt(2.0))),
        "leaky_relu": lambda v: np.where(v >= 0, v, 0.2 * v),
        "hard_sigmoid": lambda v: relu6(v + 3.0) / 6.0,
        "exponential": np.exp,
    }
    return table[name](y)


def ref_output_length(L, k, s, d, before, after):
    """floor((L + before + after - d*(k-1) - 1) / s) + 1."""
    return (L + before + after - d * (k - 1) - 1) // s + 1


def _as_tuple(v, r):
    return (int(v),) * r if np.isscalar(v) else tuple(int(i) for i in v)


def ref_pads(padding, spatial, ksize, strides, dilations):
    """Explicit (before, after) pad per spatial axis, per the API contract."""
    r = len(spatial)
    if isinstance(padding, str):
        pads = []
        for L, k, s, d in zip(spatial, ksize, strides, dilations):
            if padding == "valid":
                pads.append((0, 0))
            elif padding == "same":
                out = -(-L // s)
                total = max((out - 1) * s + d * (k - 1) + 1 - L, 0)
                pads.append((total // 2, total - total // 2))
            elif padding == "causal":
                assert r == 1
                pads.append((d * (k - 1), 0))
            elif padding == "full":
                pads.append((d * (k - 1), d * (k - 1)))
            else:
                raise ValueError(padding)
        return pads
    if np.isscalar(padding):
        return [(int(padding), int(padding))] * r
    padding = tuple(padding)
    if r == 1 and len(padding) == 2 and all(np.isscalar(p) for p in padding):
        return [(int(padding[0]), int(padding[1]))]  # rank 1: (before, after) is one pair
    assert len(padding) == r
    return [(int(p), int(p)) if np.isscalar(p) else (int(p[0]), int(p[1])) for p in padding]


def ref_depthwise_kernel(k):
    """A Keras depthwise kernel (*k, C, M) as the grouped-conv kernel (*k, 1, C * M)
    it is (groups C, output channel ``c * M + m``), by loops, in ``k``'s dtype."""
    *ks, C, M = k.shape
    w = np.zeros(tuple(ks) + (1, C * M), k.dtype)
    for c in range(C):
        for m in range(M):
            w[..., 0, c * M + m] = k[..., c, m]
    return w


def ref_conv(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=None,
             data_format="channels_last", padding_mode="zeros", activation=None):
    """N-d grouped cross-correlation, computed in float64/complex128, from the definition."""
    x = np.asarray(x)
    kernel = np.asarray(kernel)
    arrays = [x, kernel] + ([] if bias is None else [np.asarray(bias)])
    ctype = np.complex128 if any(np.iscomplexobj(a) for a in arrays) else np.float64
    x = x.astype(ctype)
    w = kernel.astype(ctype)
    r = w.ndim - 2
    assert x.ndim == r + 2
    if data_format == "channels_first":
        x = np.moveaxis(x, 1, -1)
    ksize = w.shape[:r]
    Cg, K = w.shape[-2], w.shape[-1]
    C = x.shape[-1]
    G = C // Cg if groups is None else groups
    assert C == G * Cg and K % G == 0
    Kg = K // G
    strides = _as_tuple(strides, r)
    dilations = _as_tuple(dilation_rate, r)
    spatial = x.shape[1:-1]
    pads = ref_pads(padding, spatial, ksize, strides, dilations)
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)], mode=_PAD_MODES[padding_mode])
    out_sp = [ref_output_length(L, k, s, d, b, a)
              for L, k, s, d, (b, a) in zip(spatial, ksize, strides, dilations, pads)]
    assert all(o >= 1 for o in out_sp), out_sp
    y = np.zeros((x.shape[0], *out_sp, K), dtype=ctype)
    for tap in np.ndindex(*ksize):
        sl = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                   for t, d, s, o in zip(tap, dilations, strides, out_sp))
        xs = xp[(slice(None),) + sl]  # (N, *out_sp, C)
        for g in range(G):
            y[..., g * Kg:(g + 1) * Kg] += np.tensordot(
                xs[..., g * Cg:(g + 1) * Cg], w[tap][:, g * Kg:(g + 1) * Kg], axes=([-1], [0]))
    if bias is not None:
        y = y + np.asarray(bias).astype(ctype)
    y = ref_activation(activation, y)
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    return y


def ref_kernel_grad(x, grad_out, kernel_shape, strides=1, padding="valid", dilation_rate=1, groups=None,
                    data_format="channels_last", padding_mode="zeros"):
    """dL/dkernel of ``ref_conv`` for the output gradient ``grad_out``, in float64,
    from the definition: each tap's strided window of the padded input times
    ``grad_out``, summed over the batch and the output positions."""
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(grad_out, dtype=np.float64)
    r = len(kernel_shape) - 2
    if data_format == "channels_first":
        x, g = np.moveaxis(x, 1, -1), np.moveaxis(g, 1, -1)
    ksize = tuple(kernel_shape[:r])
    Cg, K = kernel_shape[-2], kernel_shape[-1]
    G = x.shape[-1] // Cg if groups is None else groups
    Kg = K // G
    strides = _as_tuple(strides, r)
    dilations = _as_tuple(dilation_rate, r)
    pads = ref_pads(padding, x.shape[1:-1], ksize, strides, dilations)
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)], mode=_PAD_MODES[padding_mode])
    out_sp = g.shape[1:-1]
    dw = np.zeros(tuple(kernel_shape))
    for tap in np.ndindex(*ksize):
        sl = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                   for t, d, s, o in zip(tap, dilations, strides, out_sp))
        xs = xp[(slice(None),) + sl]  # (N, *out_sp, C)
        for grp in range(G):
            dw[tap][:, grp * Kg:(grp + 1) * Kg] = np.tensordot(
                xs[..., grp * Cg:(grp + 1) * Cg], g[..., grp * Kg:(grp + 1) * Kg],
                axes=(list(range(r + 1)), list(range(r + 1))))
    return dw


def ref_conv_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                       data_format="channels_last"):
    """Keras 3 `Conv*DTranspose`, computed the way Keras's JAX backend defines it:
    stuff ``s - 1`` zeros between input samples, pad by Keras's (left, right) rule, and
    cross-correlate with the spatially flipped kernel (filters <-> in_channels swapped)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(kernel, dtype=np.float64)
    r = w.ndim - 2
    if data_format == "channels_first":
        x = np.moveaxis(x, 1, -1)
    strides = _as_tuple(strides, r)
    dilations = _as_tuple(dilation_rate, r)
    ops = (None,) * r if output_padding is None else _as_tuple(output_padding, r)
    N, C = x.shape[0], x.shape[-1]
    spatial = x.shape[1:-1]
    stuffed = np.zeros((N,) + tuple((L - 1) * s + 1 for L, s in zip(spatial, strides)) + (C,))
    stuffed[(slice(None),) + tuple(slice(None, None, s) for s in strides)] = x
    pads = []
    for k, s, d, op in zip(w.shape[:r], strides, dilations, ops):
        ke = (k - 1) * d + 1
        if padding == "valid":
            op = max(ke, s) - ke if op is None else op
            pads.append((ke - 1, ke - 1 + op))
        else:
            total = s + ke - 2 if op is None else ke + ke % 2 - 2 + op
            left = min(total // 2 + total % 2, ke - 1)
            pads.append((left, total - left))
    flipped = np.swapaxes(w[(slice(None, None, -1),) * r], -1, -2)  # (*k, in_channels, filters)
    y = ref_conv(stuffed, flipped, bias, padding=pads if r > 1 else pads[0], dilation_rate=dilations)
    if data_format == "channels_first":
        y = np.moveaxis(y, -1, 1)
    return y


def ref_gradient(f, a, h=1e-3):
    """Central finite differences of the scalar function ``f`` at every entry of ``a``."""
    a = np.array(a, dtype=np.float64)
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        v = flat[i]
        flat[i] = v + h
        up = f(a)
        flat[i] = v - h
        down = f(a)
        flat[i] = v
        gflat[i] = (up - down) / (2 * h)
    return g
