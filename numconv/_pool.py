"""Pooling ops with ``keras.ops`` semantics, on numconv's parallel Numba kernels
(``numconv._kernels.pool``).

Arguments are validated here, before any copy or compile; the input then goes
to the kernels in canonical form (channels-last, 3 spatial axes with leading
singletons, C-contiguous, float32 or float64), as in ``numconv._spec``.
"""
import numba
import numpy as np

from . import _memory
from ._config import kernel_lock
from ._errors import shape_str, type_error, unknown_option, value_error, x_axes
from ._kernels.layout import to_channels_first, to_channels_last
from ._kernels.pool import AVG, MAX, L, R, pool_cf_kernel, pool_kernel
from ._paths.direct import STREAM_BYTES
from ._spec import DATA_FORMATS, canonical_array, ndim_fix, normalize_array, normalize_tuple, remember, same_pads

_PADDINGS = ("valid", "same")
_SPATIAL_NAMES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}

_DTYPE_DOC = """bool and integer inputs are computed in float64 (exact for integers
        up to 2**53; a max of integers is their float64 values),
        float16 in float32, float32 and float64 natively. Complex inputs raise
        ``TypeError`` (complex numbers have no order)."""


# ---------------------------------------------------------------- validation

def _layout(rank, data_format):
    names = _SPATIAL_NAMES[rank]
    if data_format == "channels_last":
        return "(batch, " + ", ".join(names) + ", channels)"
    return "(batch, channels, " + ", ".join(names) + ")"


def _data_format(fn, data_format):
    if not isinstance(data_format, str) or data_format.lower() not in DATA_FORMATS:
        raise unknown_option(fn, "data_format", data_format, DATA_FORMATS)
    return data_format.lower()


def _array(fn, x):
    x, _ = normalize_array(fn, "x", x)
    if x.dtype.kind == "c":
        raise type_error(fn, "x", "must be real (bool, int or float): pooling needs ordered values",
                         f"dtype {x.dtype}", "Pool np.abs(x), x.real or x.imag instead.")
    return x


def _rank_hint(pool_size):
    """The rank a tuple ``pool_size`` implies (its length), or None."""
    if isinstance(pool_size, (str, bytes)):
        return None
    try:
        n = len(pool_size)
    except TypeError:
        return None
    return n if n in (1, 2, 3) else None


def _ndim_error(fn, x_shape, rank, data_format, why=""):
    """``x`` has the wrong number of axes; ``rank`` is the expected one or None."""
    got = f"shape {shape_str(x_shape)}"
    if rank is None:
        expected = ("a 3-D, 4-D or 5-D input x (batch, *spatial, channels) for data_format=\"channels_last\"; "
                    if data_format == "channels_last" else
                    "a 3-D, 4-D or 5-D input x (batch, channels, *spatial) for data_format=\"channels_first\"; ")
        return ValueError(f"{fn} expects {expected}got {got}.")
    msg = (f"{fn} expects a {rank + 2}-D input x {_layout(rank, data_format)} for data_format=\"{data_format}\""
           f"{why}; got {got}.")
    fix = ndim_fix(x_shape, rank, data_format)
    if why and 3 <= len(x_shape) <= 5:  # an x of another valid rank: or the pool_size is the mistake
        r = len(x_shape) - 2
        fix = (f"{fix} " if fix else "") + "Or, if x is right, pool_size must be an int or a tuple of " + \
            ("one int." if r == 1 else f"{r} ints.")
    return ValueError(msg + (f" {fix}" if fix else ""))


def _spatial(x, data_format):
    if data_format == "channels_last":
        return x.shape[1:-1], x.shape[-1]
    return x.shape[2:], x.shape[1]


#: validated pooling geometry by its arguments, most recent last (``_pool_args``)
_GEOMETRY = {}
_GEOMETRY_KEPT = 256


def _plain(v):
    """Whether ``v`` keys ``_GEOMETRY`` as it is: None, a str, an int or a tuple of
    ints (exactly those types: 2.0 or True must still reach validation)."""
    return v is None or type(v) in (int, str) or (type(v) is tuple and all(type(e) is int for e in v))


def _pool_args(fn, x, pool_size, strides, padding, data_format):
    """Validate; return ``(x, rank, data_format, out_spatial, pool3, strides3, pads3)``: ``x``
    the validated array, the 3-tuples with leading singleton axes, pads the "before" ones.
    The geometry is remembered per shape and arguments (~4 us of a small pool's ~12)."""
    x = _array(fn, x)
    args = (pool_size, strides, padding, data_format)
    key = (fn, x.shape) + args if all(map(_plain, args)) else None
    geometry = None if key is None else _GEOMETRY.get(key)
    if geometry is None:
        geometry = _geometry(fn, x, pool_size, strides, padding, data_format)
        if key is not None:
            remember(_GEOMETRY, _GEOMETRY_KEPT, key, geometry)
    return (x,) + geometry


def _geometry(fn, x, pool_size, strides, padding, data_format):
    """``_pool_args``'s validation: ``(rank, data_format, out_spatial, pool3, strides3, pads3)``."""
    data_format = _data_format(fn, data_format)
    hint = _rank_hint(pool_size)
    rank = x.ndim - 2
    if hint is not None and x.ndim != hint + 2:
        if hint + 2 < x.ndim <= 5:  # x with more axes: the pool_size's length is the likelier mistake
            raise value_error(fn, "pool_size", f"must be an int or a tuple of {x.ndim - 2} ints "
                              f"{x_axes(x.shape, data_format)}", repr(pool_size),
                              f"If x is missing axes, it must be {hint + 2}-D {_layout(hint, data_format)}.")
        raise _ndim_error(fn, x.shape, hint, data_format, f" for a pool_size of length {hint}")
    if rank not in (1, 2, 3):
        raise _ndim_error(fn, x.shape, None, data_format)
    pool = normalize_tuple(fn, "pool_size", pool_size, rank)
    strides = pool if strides is None else normalize_tuple(fn, "strides", strides, rank)
    if not isinstance(padding, str):
        raise type_error(fn, "padding", "must be \"valid\" or \"same\"", repr(padding),
                         "Pooling takes no explicit pads; pad x first (e.g. np.pad) or use \"same\".")
    if padding.lower() not in _PADDINGS:
        raise unknown_option(fn, "padding", padding, _PADDINGS)
    same = padding.lower() == "same"
    spatial, channels = _spatial(x, data_format)
    out_spatial, pads, windows = [], [], []
    for axis, (size, k, s) in enumerate(zip(spatial, pool, strides)):
        if same:
            n = -(-size // s)
            k, p = _inside(size, k, s, same_pads(size, k, s, 1)[0], n)
            windows.append(k)
            pads.append(p)
            out_spatial.append(n)
        else:
            windows.append(k)
            n = (size - k) // s + 1
            if n < 1:
                raise _valid_error(fn, axis, rank, size, k, x.shape, data_format, pool)
            pads.append(0)
            out_spatial.append(n)
    lead = 3 - rank
    return (rank, data_format, tuple(out_spatial), (1,) * lead + tuple(windows), (1,) * lead + strides,
            (0,) * lead + tuple(pads))


def _inside(L, k, s, p, n):
    """``(k, p)`` cut to what the input holds: windows ``[o s - p, o s - p + k)``,
    o < n, read the same input elements (padding is never pooled) when every
    start that lay before the input still does and every end past it still is.
    A "same" pool_size of 2**30 on 8 steps had the kernel allocate a row buffer
    of 2**30 pixels per task (a MemoryError inside Numba, raised as SystemError);
    cut, it is a global pool over 8."""
    cut = min(p - (n - 1) * s, k - 1)  # every start <= 0: move them all up to the last one's 0
    if cut > 0:
        k, p = k - cut, p - cut
    return min(k, L + p), p  # the first end at L: every end >= L still


def _planes_first(data_format, strides):
    """Whether ``pool_cf_kernel`` pools channels_first data as it lies (stride 1
    or 2 along W); otherwise the input is laid out channels-last."""
    return data_format == "channels_first" and strides[2] in (1, 2)


def _valid_error(fn, axis, rank, L, k, x_shape, data_format, pool):
    name = _SPATIAL_NAMES[rank][axis]
    msg = (f"{fn}: spatial axis {axis} ({name}) of x has size {L}, smaller than pool_size {k} on that axis "
           f"(pool_size={pool}), so padding=\"valid\" gives an empty output; x has shape {shape_str(x_shape)} "
           f"read as {_layout(rank, data_format)}.")
    flipped = "channels_first" if data_format == "channels_last" else "channels_last"
    other = x_shape[2:] if flipped == "channels_first" else x_shape[1:-1]
    if all(s >= kk for s, kk in zip(other, pool)):
        msg += f" If x is laid out as {_layout(rank, flipped)}, pass data_format=\"{flipped}\"."
    msg += " Otherwise use padding=\"same\" or a smaller pool_size."
    return ValueError(msg)


# ---------------------------------------------------------------- ops

def _chunk(shape, tasks=64):
    """Output pixels per kernel task along W: whole rows when there are at least
    ``tasks`` rows, else rows split into pieces of whole tiles (``R`` pixels) so
    short batches of long 1-D signals still spread over threads. Only the work
    split depends on it, not any result."""
    N, OD, OH, OW, _ = shape
    rows = N * OD * OH
    if rows >= tasks:
        return OW
    per = -(-OW // -(-tasks // rows))
    return max(R, -(-per // R) * R)


@_memory.calls_scratch
def _pool(fn, op, x, pool_size, strides, padding, data_format):
    x, rank, data_format, out_spatial, pool, strides, pads = _pool_args(
        fn, x, pool_size, strides, padding, data_format)
    spatial, C = _spatial(x, data_format)
    N, lead = x.shape[0], (1,) * (3 - rank)
    if _planes_first(data_format, strides):
        # channels_first in and out: every (n, c) plane pooled where it lies
        xp = canonical_array(x, x.dtype, (N * C,) + lead + tuple(spatial))
        y = _memory.empty((N, C) + out_spatial, x.dtype)
        if y.size:
            with kernel_lock():
                pool_cf_kernel(xp, y.reshape((N * C,) + lead + out_spatial), pool, strides, pads, op,
                               8 * numba.get_num_threads())
        return y
    xl = x if data_format == "channels_last" else to_channels_last(x)
    x5 = canonical_array(xl, x.dtype, (N,) + lead + tuple(spatial) + (C,))
    alloc = _memory.empty if data_format == "channels_last" else _memory.scratch  # cf: laid out below
    out5 = alloc((N,) + lead + out_spatial + (C,), x5.dtype)
    if out5.size:
        with kernel_lock():
            pool_kernel(x5, out5, pool, strides, pads, op, _chunk(out5.shape),
                        x5.nbytes + out5.nbytes >= STREAM_BYTES)
    y = out5.reshape((N,) + out_spatial + (C,))
    if data_format == "channels_first":
        y = to_channels_first(y)
    return y


def max_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    return _pool("max_pool", MAX, x, pool_size, strides, padding, data_format)


def average_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    return _pool("average_pool", AVG, x, pool_size, strides, padding, data_format)


_POOL_DOC = """{summary}

    Keras 3 ``keras.ops.{fn}`` semantics, computed by numconv's parallel Numba
    kernel ``numconv._kernels.pool.pool_kernel`` (parallel over output rows,
    vectorised over channels).

    Parameters
    ----------
    x : array_like
        ``(batch, *spatial, channels)`` for ``"channels_last"`` or
        ``(batch, channels, *spatial)`` for ``"channels_first"``, with 1, 2 or 3
        spatial axes (the rank is ``x.ndim - 2``). Never modified.
    pool_size : int or tuple of int
        Window size per spatial axis, each >= 1 (an int applies to every axis).
    strides : int or tuple of int, optional
        Step per spatial axis, each >= 1; ``None`` (default) means ``pool_size``.
    padding : {{"valid", "same"}}, default "valid"
        Case-insensitive. ``"valid"``: windows inside the input, output
        ``floor((L - k) / s) + 1`` (an error when < 1). ``"same"``: output
        ``ceil(L / s)`` with TensorFlow's pads (total
        ``max((out - 1) * s + k - L, 0)``, the odd one after). {padding_note}
    data_format : {{"channels_last", "channels_first"}}, default "channels_last"
        Layout of ``x`` and of the result.

    Returns
    -------
    ndarray
        ``(batch, *out_spatial, channels)`` (or channels first), C-contiguous.
        Dtype: {dtypes}

    Raises
    ------
    ValueError
        Wrong number of axes, a pool larger than the input under ``"valid"``,
        non-positive ``pool_size``/``strides``, or an unknown ``padding`` or
        ``data_format``; the message names the argument and the likely fix.
    TypeError
        Complex or non-numeric ``x``, or non-integer ``pool_size``/``strides``.

    See Also
    --------
    {see_also}

    Examples
    --------
    {example}
    """

max_pool.__doc__ = _POOL_DOC.format(
    summary="Max pooling over 1, 2 or 3 spatial axes.", fn="max_pool",
    padding_note="Padded positions never win: they are ignored, not treated as 0 or -inf.",
    dtypes=_DTYPE_DOC + """ A NaN anywhere in a window makes that
        output NaN (as ``np.max`` and PyTorch); +-inf compare as usual.""",
    see_also="average_pool, global_max_pool",
    example=""">>> import numpy as np, numconv
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)          # one 4x4 image, one channel
    >>> numconv.max_pool(x, 2)[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> numconv.max_pool(x, 3, strides=2, padding="same").shape
    (1, 2, 2, 1)""")

average_pool.__doc__ = _POOL_DOC.format(
    summary="Average pooling over 1, 2 or 3 spatial axes.", fn="average_pool",
    padding_note="Under ``\"same\"`` a window averages only the input values it covers "
                 "(``count_include_pad=False`` in PyTorch's terms), as Keras does.",
    dtypes=_DTYPE_DOC + """ Sums accumulate in float64 and are
        rounded once, so float32 results are the float64 means rounded to float32.""",
    see_also="max_pool, global_average_pool",
    example=""">>> import numpy as np, numconv
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> numconv.average_pool(x, 2)[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> numconv.average_pool(np.array([[[1.0], [2.0], [3.0]]]), 2, strides=1, padding="same")[0, :, 0]
    array([1.5, 2.5, 3. ])""")


# ---------------------------------------------------------------- global pooling

def _channel_groups(channels):
    """The most groups G dividing ``channels`` with at least ``L`` channels each (1 if none)."""
    for g in range(channels // L, 1, -1):
        if channels % g == 0:
            return g
    return 1


@_memory.calls_scratch
def _global(fn, op, x, data_format, keepdims):
    x = _array(fn, x)
    data_format = _data_format(fn, data_format)
    if not isinstance(keepdims, (bool, np.bool_)):
        raise type_error(fn, "keepdims", "must be True or False", repr(keepdims))
    rank = x.ndim - 2
    if rank not in (1, 2, 3):
        raise _ndim_error(fn, x.shape, None, data_format)
    spatial, channels = _spatial(x, data_format)
    S = int(np.prod(spatial))
    if S == 0:
        raise value_error(fn, "x", "must have non-empty spatial axes (there is nothing to pool)",
                          f"shape {shape_str(x.shape)} read as {_layout(rank, data_format)}")
    N = x.shape[0]
    # The windowed kernel with one window over all S pixels, reading x as
    # (N, 1, S, G, C // G): each of the G channel groups (>= L channels each
    # when C allows) is a "pixel" of its own, so the groups of one example
    # spread over threads when the batch is small. Each output is still one
    # reduction over all S pixels in order: results do not depend on G's split.
    G = _channel_groups(channels)
    xl = x if data_format == "channels_last" else to_channels_last(x)
    x5 = canonical_array(xl, x.dtype, (N, 1, S, G, channels // G))
    out = np.empty((N, 1, 1, G, channels // G), x.dtype)
    if out.size:
        with kernel_lock():
            pool_kernel(x5, out, (1, S, 1), (1, S, 1), (0, 0, 0), op, _chunk(out.shape), False)
    out = out.reshape(N, channels)
    if keepdims:
        return out.reshape((N,) + (1,) * rank + (channels,) if data_format == "channels_last"
                           else (N, channels) + (1,) * rank)
    return out


def global_max_pool(x, data_format="channels_last", keepdims=False):
    return _global("global_max_pool", MAX, x, data_format, keepdims)


def global_average_pool(x, data_format="channels_last", keepdims=False):
    return _global("global_average_pool", AVG, x, data_format, keepdims)


_GLOBAL_DOC = """{summary}

    As Keras's ``{layer}`` layers: reduces every spatial axis, on numconv's
    parallel Numba kernel ``numconv._kernels.pool.pool_kernel`` (one window
    over all spatial positions, accumulators in registers across channels).

    Parameters
    ----------
    x : array_like
        ``(batch, *spatial, channels)`` for ``"channels_last"`` or
        ``(batch, channels, *spatial)`` for ``"channels_first"``, with 1, 2 or 3
        non-empty spatial axes. Never modified.
    data_format : {{"channels_last", "channels_first"}}, default "channels_last"
        Layout of ``x`` (and of the result when ``keepdims``).
    keepdims : bool, default False
        Keep the spatial axes as size-1 axes, in ``data_format``'s order.

    Returns
    -------
    ndarray
        ``(batch, channels)``; with ``keepdims``, ``(batch, 1, ..., 1, channels)``
        or ``(batch, channels, 1, ..., 1)``. Dtype: {dtypes}

    Raises
    ------
    ValueError
        Wrong number of axes, an empty spatial axis, or an unknown ``data_format``.
    TypeError
        Complex or non-numeric ``x``, or a non-bool ``keepdims``.

    Examples
    --------
    {example}
    """

global_max_pool.__doc__ = _GLOBAL_DOC.format(
    summary="Maximum over all spatial axes, per example and channel.", layer="GlobalMaxPooling{1,2,3}D",
    dtypes=_DTYPE_DOC + " NaN propagates as in ``np.max``.",
    example=""">>> import numpy as np, numconv
    >>> x = np.arange(24.0).reshape(2, 3, 2, 2)            # (batch, height, width, channels)
    >>> numconv.global_max_pool(x)
    array([[10., 11.],
           [22., 23.]])
    >>> numconv.global_max_pool(x, keepdims=True).shape
    (2, 1, 1, 2)""")

global_average_pool.__doc__ = _GLOBAL_DOC.format(
    summary="Mean over all spatial axes, per example and channel.", layer="GlobalAveragePooling{1,2,3}D",
    dtypes=_DTYPE_DOC + " Sums accumulate in float64 and are rounded once.",
    example=""">>> import numpy as np, numconv
    >>> x = np.arange(24.0).reshape(2, 3, 2, 2)
    >>> numconv.global_average_pool(x)
    array([[ 5.,  6.],
           [17., 18.]])
    >>> numconv.global_average_pool(x, data_format="channels_first", keepdims=True).shape
    (2, 3, 1, 1)""")
