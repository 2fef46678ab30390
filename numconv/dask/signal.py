"""``numconv.signal.convolve`` / ``correlate`` on Dask arrays.

``in1`` is a ``dask.array.Array`` (other array-likes become one chunk), ``in2``
an in-memory array (the kernel; a Dask array is computed). Same arguments,
shapes, dtypes and values as `numconv.signal` (so as ``scipy.signal``), lazily:

* axes that are not convolved (with ``axes=``) keep ``in1``'s chunks and run
  block by block; where ``in2`` has one kernel per signal, each block gets its
  slice of ``in2``;
* chunks along convolved axes become overlapping blocks, each zero-padded only
  where it meets the ends of ``in1`` and holding the ``len(in2) - 1`` inputs
  its outputs need from its neighbours; ``"full"``, ``"same"`` and ``"valid"``
  give SciPy's output lengths and centring.

``method`` is passed to each block (``"auto"`` chooses per block).
"""
import sys

import numpy as np

from ._docs import skip_examples_without_dask

__all__ = ["convolve", "correlate"]


def _convolve(fn, in1, in2, mode, method, axes, correlate):
    from functools import partial

    from numconv import signal as _signal
    from numconv._errors import shape_str, value_error

    from . import as_dask, in_memory, token
    from ._graph import BatchPlan, SpanPlan, WindowPlan, build
    from ._tasks import signal_block

    x = as_dask(fn, in1, "in1")
    stand_in = np.broadcast_to(np.zeros((), x.dtype), x.shape)  # validation only: no memory
    _, k, conv_axes, listed = _signal._normalize(fn, stand_in, in_memory(in2), mode, method, axes)
    for arg, shape in (("in1", x.shape), ("in2", k.shape)):
        if 0 in shape:  # as SciPy, which raises for empty inputs
            raise value_error(fn, arg, "must not be empty", f"shape {shape_str(shape)}")
    dtype = np.result_type(x.dtype, k.dtype)
    k = _signal._effective_kernel(x.shape, k, mode, conv_axes, listed, correlate)  # as the in-memory op
    plans, sliced = [], []
    for ax, (n, m) in enumerate(zip(x.shape, k.shape)):
        if ax in conv_axes:
            full = n + m - 1
            out = full if mode == "full" else n if mode == "same" else abs(n - m) + 1
            start = (full - out) // 2
            plans.append(WindowPlan(n, 1, m - 1 - start, m, out, "zeros", x.chunks[ax]))
        elif n == 1 and m > 1:  # in1 broadcasts against in2's stack
            plans.append(SpanPlan((m,), [(0, 1)]))
        else:
            plans.append(BatchPlan(x.chunks[ax]))
            if m == n and m > 1:
                sliced.append(ax)
    block_axes = None if axes is None else (conv_axes or axes)
    op = partial(signal_block, sliced_axes=tuple(sliced), axes=block_axes, method=method)
    name = token(fn, x.name, k, mode, method, conv_axes, block_axes)
    return build(name, x, plans, op, dtype, (k,), materialize="always")


def convolve(in1, in2, mode="full", method="auto", axes=None):
    """Convolve a Dask array with an in-memory kernel, as `numconv.signal.convolve`.

    Parameters
    ----------
    in1 : dask.array.Array or array_like
        The signal, chunked along any axes (chunks shorter than ``in2`` included).
    in2 : array_like
        The kernel, in memory; as many dimensions as ``in1``.
    mode, method, axes
        As for `numconv.signal.convolve` (``"full"``, ``"same"``, ``"valid"``;
        ``axes`` as in ``scipy.signal.fftconvolve``).

    Returns
    -------
    dask.array.Array
        Lazy; ``np.result_type(in1, in2)`` (integer inputs give exact integers).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> import numconv.dask.signal
    >>> x = da.arange(10, chunks=3)
    >>> numconv.dask.signal.convolve(x, [1, 1, 1], mode="same").compute()
    array([ 1,  3,  6,  9, 12, 15, 18, 21, 24, 17])
    """
    return _convolve("convolve", in1, in2, mode, method, axes, correlate=False)


def correlate(in1, in2, mode="full", method="auto", axes=None):
    """Cross-correlate a Dask array with an in-memory array, as `numconv.signal.correlate`
    (``in2`` conjugated, as SciPy). Parameters and result as for `convolve`.

    Examples
    --------
    >>> import dask.array as da
    >>> import numconv.dask.signal
    >>> numconv.dask.signal.correlate(da.from_array([1.0, 2.0, 3.0], chunks=1), [0, 1, 0.5]).compute()
    array([0.5, 2. , 3.5, 3. , 0. ])
    """
    return _convolve("correlate", in1, in2, mode, method, axes, correlate=True)


skip_examples_without_dask(sys.modules[__name__], convolve, correlate)
