"""numconv on Dask arrays: every op block by block, lazily, on any Dask scheduler.

``numconv.dask.conv`` (and ``conv1d`` / ``conv2d`` / ``conv3d``), ``depthwise_conv``,
``separable_conv``, ``conv_transpose``, ``max_pool``, ``average_pool`` and
``numconv.dask.signal.convolve`` / ``correlate`` take the in-memory ops'
arguments with a ``dask.array.Array`` as input (other array-likes are wrapped in
one chunk) and return a lazy ``dask.array.Array`` of the same values: the
result equals the in-memory op on the computed input, bit for bit where each
block runs the kernel the whole array runs (the same formulas, each output's
terms in the same order), and within rounding (~1e-15 relative in float64,
~1e-7 in float32) where a block's shape makes the dispatcher pick another
method, or the direct path another kernel: 1-4 filters or groups per block
(``filter_chunks``, channel chunks), narrow spatial blocks, channels_first
depthwise blocks of fewer than 4 output rows (whose kernel sums the window rows
in another order than on taller blocks). Kernels and biases are in-memory
arrays. Activation names act as in memory (``softmax`` and ``log_softmax`` on
the assembled result's whole last axis); a callable runs on each block, as
``map_blocks`` runs a function, so it must act on each value alone (a function
of the whole result, such as normalising by its sum, belongs after the op). It
is probed on a one-element array when the graph is built: that gives the lazy
result the dtype the callable returns, and rejects one returning None or
another shape at once.

How blocks are cut (``numconv.dask._graph``):

* batch chunks (and, for pooling and depthwise convolution, channel chunks) run
  block by block with no halo;
* chunks along spatial axes become overlapping blocks: each output block reads
  the inputs its windows cover -- its own chunk plus a halo of
  ``dilation * (kernel - 1) + 1 - stride`` positions, from as many neighbouring
  chunks as that takes -- and strides stay aligned across chunk boundaries;
* padding is applied at the true array edges only, as the in-memory op pads:
  zeros, and reflect / replicate / circular read from the whole array (a chunk
  never wraps onto itself);
* the input channel axis is gathered for each block (``groups`` read only
  their own channels); the output filters are one chunk, or split with
  ``filter_chunks=`` (an int size or a tuple of sizes; multiples of
  ``filters // groups``).

Inside tasks numconv runs with the thread count the worker allows
(``numconv.dask._threads``: ``OMP_NUM_THREADS`` in ``distributed`` workers, the
pool size of the local threaded scheduler, or ``dask.config`` key
``"numconv.threads"``), so several tasks per machine do not oversubscribe it.

Dask is an optional dependency (``pip install 'numconv[dask]'``): ``import
numconv`` never imports it, and this package imports it only when an op is
called.

Examples
--------
>>> import dask.array as da, numpy as np
>>> import numconv.dask
>>> x = da.ones((4, 64, 64, 3), chunks=(2, 32, 32, 3))
>>> y = numconv.dask.conv2d(x, np.ones((3, 3, 3, 8)), strides=2, padding="same")
>>> y.shape, y.chunksize
((4, 32, 32, 8), (2, 16, 16, 8))
>>> float(y[0, 5, 5, 0].compute()), float(y[0, -1, -1, 0].compute())   # inside; at the padded edge
(27.0, 12.0)
"""
import numpy as np

import sys

from . import signal
from ._docs import skip_examples_without_dask
from ._graph import BatchPlan, SpanPlan, TransposePlan, WindowPlan, build, check_known_shape

__all__ = ["conv", "conv1d", "conv2d", "conv3d", "depthwise_conv", "separable_conv", "conv_transpose",
           "max_pool", "average_pool", "signal"]


# ---------------------------------------------------------------- shared helpers

def import_dask_array(fn="numconv.dask"):
    """``dask.array``, or an ImportError that says how to install it."""
    try:
        import dask.array as da
    except ImportError as e:
        raise ImportError(f"{fn} needs Dask: pip install 'numconv[dask]' "
                          "(installs dask[array] and distributed)") from e
    return da


def as_dask(fn, x, arg="x"):
    """``x`` as a ``dask.array.Array`` with known chunk sizes (array-likes: one chunk)."""
    da = import_dask_array(fn)
    if not isinstance(x, da.Array):
        x = da.asarray(x)
    check_known_shape(fn, x, arg)
    return x


def in_memory(a):
    """A kernel or bias as a NumPy array (Dask collections are computed)."""
    if a is None:
        return None
    if hasattr(a, "__dask_graph__"):
        a = a.compute()
    return np.asarray(a)


def layout_axes(rank, data_format):
    """(spatial axes, channel axis) of a rank-``rank`` array in ``data_format``."""
    if isinstance(data_format, str) and data_format.lower() == "channels_first":
        return tuple(range(2, rank + 2)), 1
    return tuple(range(1, rank + 1)), rank + 1


def token(fn, *parts):
    from dask.base import tokenize

    return f"numconv-{fn}-{tokenize(*parts)}"


def dtype_probe(fn, arg, dtype):
    """``numconv._spec.normalize_array`` on an empty array of ``dtype``: the dtype
    errors (and promotions) the in-memory op applies, without touching data."""
    from numconv._spec import normalize_array

    return normalize_array(fn, arg, np.empty((0,), dtype))


def dry_run(fn, x, call):
    """Run the in-memory op ``call`` on an empty (batch 0) stand-in of ``x`` to
    validate the arguments and learn the result's shape and dtype; error
    messages show ``x``'s real shape."""
    dummy = np.empty((0,) + tuple(x.shape[1:]), x.dtype) if x.ndim else np.empty((), x.dtype)
    try:
        y = call(dummy)
    except (ValueError, TypeError):
        # Validation precedes any computation and never depends on the batch size:
        # repeat it on a zero-copy stand-in of x's real shape for the exact message
        # (hints such as "x.reshape(1, ...)" are built from the shape).
        try:
            call(np.broadcast_to(np.zeros((), x.dtype), x.shape))
        except (ValueError, TypeError) as e:
            raise e.with_traceback(None) from None
        raise
    return (x.shape[0],) + y.shape[1:], y.dtype


def filter_plan(fn, filter_chunks, filters, unit, default_bounds, in_range):
    """The plan of the output channel axis: chunks of ``filters`` (each a multiple of
    ``unit``, the filters of one group), block ``j`` reading ``in_range(f0, f1)``."""
    if filter_chunks is None:
        bounds = sorted({0, filters} | {b for b in default_bounds if 0 < b < filters})
    else:
        if isinstance(filter_chunks, (int, np.integer)) and not isinstance(filter_chunks, bool):
            size = int(filter_chunks)
            if size < 1:
                raise ValueError(f"{fn}: filter_chunks must be a positive int or a tuple of sizes; "
                                 f"got {filter_chunks!r}.")
            sizes = [size] * (filters // size) + ([filters % size] if filters % size else [])
        else:
            try:
                sizes = [int(v) for v in filter_chunks]
            except (TypeError, ValueError):
                raise TypeError(f"{fn}: filter_chunks must be None, an int or a tuple of ints; "
                                f"got {filter_chunks!r}.") from None
            if sum(sizes) != filters or any(v < 1 for v in sizes):
                raise ValueError(f"{fn}: filter_chunks must be positive sizes adding up to the {filters} "
                                 f"output channels; got {filter_chunks!r}.")
        bounds = [0] + list(np.cumsum(sizes))
        if any(b % unit for b in bounds):
            raise ValueError(f"{fn}: filter_chunks must split the {filters} output channels at multiples of "
                             f"{unit} (the output channels of one group); got {filter_chunks!r}.")
    chunks = tuple(int(b1 - b0) for b0, b1 in zip(bounds[:-1], bounds[1:]))
    return SpanPlan(chunks, [in_range(int(b0), int(b1)) for b0, b1 in zip(bounds[:-1], bounds[1:])])


def window_plans(spec, x, spatial_axes, mode):
    """One ``WindowPlan`` per spatial axis of a ``ConvSpec``."""
    lead = 3 - spec.rank
    plans = {}
    for i, axis in enumerate(spatial_axes):
        j = lead + i
        k, d, s = spec.kernel_spatial[j], spec.dilations[j], spec.strides[j]
        plans[axis] = WindowPlan(spec.in_spatial[j], s, spec.pads[j][0], d * (k - 1) + 1, spec.out_spatial[j],
                                 mode, x.chunks[axis])
    return plans


# ---------------------------------------------------------------- conv family

#: activations that couple the values along the result's last axis (softmax over
#: it, as Keras's): per block they would normalise each block's part of the axis,
#: so they run once the blocks are assembled, on the axis whole
_AXIS_ACTIVATIONS = ("softmax", "log_softmax")


def _block_activation(fn, activation, dtype, ndim):
    """``(the activation the blocks apply, the function applied to the assembled
    result or None, the result's dtype)``, after the in-memory op's checks for
    ``dtype`` (softmax on complex data is a TypeError). A callable runs on each
    block, as ``map_blocks`` runs a function: it is probed here on a
    one-element array, which gives the lazy result its dtype (a callable may
    return another, as in the in-memory op) and rejects one that returns None or
    another shape, when the graph is built rather than when it runs."""
    from numconv._spec import NUMPY_ACTIVATIONS, apply_callable, normalize_activation

    normalize_activation(fn, activation, dtype)
    if isinstance(activation, str) and activation.lower() in _AXIS_ACTIVATIONS:
        return None, NUMPY_ACTIVATIONS[activation.lower()], dtype
    if callable(activation):
        dtype = apply_callable(fn, activation, np.ones((1,) * ndim, dtype), None).dtype
    return activation, None, dtype


def _after_blocks(y, function):
    """``function`` of the assembled result ``y`` along its whole last axis."""
    if function is None:
        return y
    return y.rechunk({y.ndim - 1: -1}).map_blocks(function, dtype=y.dtype)


def _conv(fn, rank, x, kernel, bias, strides, padding, dilation_rate, groups, data_format, padding_mode,
          activation, method, filter_chunks, kind="conv", pointwise=None):
    from numconv import _dispatch
    from numconv._errors import shape_str, value_error
    from numconv._ops import _depthwise_kernel
    from numconv._spec import normalize_array, spec_from_shapes

    x = as_dask(fn, x)
    xd, x_int = dtype_probe(fn, "x", x.dtype)
    kernel = in_memory(kernel)
    bias = in_memory(bias)
    pointwise = in_memory(pointwise)
    multiplier = 1
    if kind == "conv":
        w, k_int = normalize_array(fn, "kernel", kernel)
    else:
        stand_in = np.broadcast_to(np.zeros((), xd.dtype), x.shape)  # shape checks only, no memory
        w, groups = _depthwise_kernel(fn, stand_in, kernel, data_format)
        k_int = w.dtype.kind in "biu"
        multiplier = w.shape[-1] // groups
        kernel, _ = normalize_array(fn, "depthwise_kernel" if kind == "separable" else "kernel", kernel)
    dtype = np.result_type(xd.dtype, w.dtype)
    b_int, b_shape = True, None
    if bias is not None and kind != "separable":
        bias, b_int = normalize_array(fn, "bias", bias)
        dtype, b_shape = np.result_type(dtype, bias.dtype), bias.shape
    block_act, after = None, None
    if kind != "separable":
        block_act, after, out_dtype = _block_activation(fn, activation, dtype, x.ndim)
    spec = spec_from_shapes(fn, x.shape, w.shape, b_shape, dtype, strides, padding, dilation_rate, groups,
                            data_format, padding_mode, block_act, method, _dispatch.METHODS, rank,
                            x_int and k_int and b_int)
    filters, fg, cg = spec.filters, spec.filters // spec.groups, spec.channels // spec.groups
    # filter chunks hold whole groups (any split when groups == 1), and a depthwise
    # block whole channels: its kernel is sliced by channel (f // multiplier)
    unit = fg if spec.groups > 1 or kind == "depthwise" else 1
    if kind == "separable":
        pk, _ = normalize_array(fn, "pointwise_kernel", pointwise)
        expected = (1,) * spec.rank + (spec.filters,)
        if pk.ndim != spec.rank + 2 or pk.shape[:-1] != expected:
            raise value_error(fn, "pointwise_kernel", f"must have shape {shape_str(expected + ('filters',))}: "
                              "(*[1] * rank, in_channels * depth_multiplier, filters)",
                              f"shape {shape_str(pk.shape)}")
        mid_shape = (1,) * (spec.rank + 1) + (spec.filters,)
        if bias is not None:
            bias, _ = normalize_array(fn, "bias", bias)
        pdtype = np.result_type(dtype, pk.dtype, *(() if bias is None else (bias.dtype,)))
        block_act, after, out_dtype = _block_activation(fn, activation, pdtype, x.ndim)
        pspec = spec_from_shapes(fn, mid_shape, pk.shape, None if bias is None else bias.shape, pdtype,
                                 1, "valid", 1, 1, "channels_last", "zeros", block_act, method, _dispatch.METHODS)
        filters, unit, fg = pspec.filters, 1, None
        pointwise = pk
    spatial_axes, channel_axis = layout_axes(spec.rank, spec.data_format)
    mode = spec.padding_mode
    plans = window_plans(spec, x, spatial_axes, mode)
    plans[0] = BatchPlan(x.chunks[0])
    if kind == "separable" or spec.groups == 1:
        default, in_range = (), (lambda f0, f1: (0, spec.channels))
    else:
        in_bounds = np.cumsum((0,) + x.chunks[channel_axis])
        default = [int(B) // cg * unit for B in in_bounds if B % cg == 0]
        in_range = (lambda f0, f1: (f0 // unit * cg, f1 // unit * cg))
    plans[channel_axis] = filter_plan(fn, filter_chunks, filters, unit, default, in_range)
    from functools import partial

    from ._tasks import conv_block

    kwargs = dict(strides=strides, dilation_rate=dilation_rate, data_format=spec.data_format,
                  padding_mode="zeros", activation=block_act, method=method)
    op = partial(conv_block, kind=kind, spatial_axes=spatial_axes, channel_axis=channel_axis,
                 filters_per_group=None if spec.groups == 1 else fg, multiplier=multiplier, kwargs=kwargs)
    consts = (kernel, bias) + ((pointwise,) if kind == "separable" else ())
    name = token(fn, x.name, kind, kernel, bias, pointwise, strides, padding, dilation_rate, groups,
                 spec.data_format, mode, activation, method, plans[channel_axis].chunks)
    return _after_blocks(build(name, x, [plans[a] for a in range(x.ndim)], op, out_dtype, consts,
                               materialize="empty" if mode == "zeros" else "never"), after)


_COMMON = """
    Same arguments and results as the in-memory op, for a ``dask.array.Array``
    ``x`` (see `numconv.dask` for how blocks are cut). Lazy: nothing runs until
    the result is computed. There is no ``out=``.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Chunked along any axes; chunks of any size (smaller than the kernel's
        halo included).
{params}
    filter_chunks : int or tuple of int, optional
        Chunking of the output channel axis (multiples of ``filters // groups``).
        Default: one chunk (grouped and depthwise convolutions follow the input's
        channel chunks where they fall on group boundaries).

    Returns
    -------
    dask.array.Array
        The lazy result; its spatial chunks follow the input's (output chunk
        ``j`` holds the outputs whose windows are centred in input chunk ``j``).
"""


def conv(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
         data_format="channels_last", padding_mode="zeros", activation=None, method="auto", filter_chunks=None):
    return _conv("conv", None, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 padding_mode, activation, method, filter_chunks)


def conv1d(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
           data_format="channels_last", padding_mode="zeros", activation=None, method="auto", filter_chunks=None):
    return _conv("conv1d", 1, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 padding_mode, activation, method, filter_chunks)


def conv2d(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
           data_format="channels_last", padding_mode="zeros", activation=None, method="auto", filter_chunks=None):
    return _conv("conv2d", 2, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 padding_mode, activation, method, filter_chunks)


def conv3d(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
           data_format="channels_last", padding_mode="zeros", activation=None, method="auto", filter_chunks=None):
    return _conv("conv3d", 3, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 padding_mode, activation, method, filter_chunks)


_CONV_PARAMS = """    kernel, bias, strides, padding, dilation_rate, groups, data_format
        As for `numconv.conv`.
    padding_mode, activation, method
        As for `numconv.conv`; ``kernel`` and ``bias`` are in-memory arrays."""

conv.__doc__ = "N-D convolution of a Dask array (`numconv.conv`).\n" + _COMMON.format(params=_CONV_PARAMS) + """
    Examples
    --------
    >>> import dask.array as da, numpy as np, numconv, numconv.dask
    >>> x = np.random.default_rng(0).random((2, 50, 3))
    >>> w = np.ones((5, 3, 4))
    >>> y = numconv.dask.conv(da.from_array(x, chunks=(1, 7, 3)), w, padding="same", padding_mode="reflect")
    >>> np.allclose(y.compute(), numconv.conv(x, w, padding="same", padding_mode="reflect"))
    True
    """
conv1d.__doc__ = "1-D convolution of a Dask array (`numconv.conv1d`).\n" + _COMMON.format(params=_CONV_PARAMS)
conv2d.__doc__ = "2-D convolution of a Dask array (`numconv.conv2d`).\n" + _COMMON.format(params=_CONV_PARAMS)
conv3d.__doc__ = "3-D convolution of a Dask array (`numconv.conv3d`).\n" + _COMMON.format(params=_CONV_PARAMS)


def depthwise_conv(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1,
                   data_format="channels_last", padding_mode="zeros", activation=None, method="auto",
                   filter_chunks=None):
    return _conv("depthwise_conv", None, x, kernel, bias, strides, padding, dilation_rate, None, data_format,
                 padding_mode, activation, method, filter_chunks, kind="depthwise")


depthwise_conv.__doc__ = "Depthwise convolution of a Dask array (`numconv.depthwise_conv`).\n" + _COMMON.format(
    params="""    kernel, bias, strides, padding, dilation_rate, data_format, padding_mode, activation, method
        As for `numconv.depthwise_conv`. Input channel chunks carry over to the
        output (times ``depth_multiplier``): each block reads only its channels.""")


def separable_conv(x, depthwise_kernel, pointwise_kernel, bias=None, *, strides=1, padding="valid",
                   dilation_rate=1, data_format="channels_last", padding_mode="zeros", activation=None,
                   method="auto", filter_chunks=None):
    return _conv("separable_conv", None, x, depthwise_kernel, bias, strides, padding, dilation_rate, None,
                 data_format, padding_mode, activation, method, filter_chunks, kind="separable",
                 pointwise=pointwise_kernel)


separable_conv.__doc__ = ("Depthwise-separable convolution of a Dask array (`numconv.separable_conv`).\n"
                          + _COMMON.format(params="""    depthwise_kernel, pointwise_kernel, bias, strides, padding, dilation_rate, data_format
        As for `numconv.separable_conv`.
    padding_mode, activation, method
        As for `numconv.separable_conv`. Each output-filter chunk recomputes the
        depthwise stage of its block, so keep one filter chunk unless the
        filters are many."""))


# ---------------------------------------------------------------- conv_transpose

def conv_transpose(x, kernel, bias=None, *, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                   data_format="channels_last", activation=None, method="auto", filter_chunks=None):
    import numconv
    from numconv._adjoint import transpose_window
    from numconv._spec import normalize_tuple

    fn = "conv_transpose"
    x = as_dask(fn, x)
    kernel, bias = in_memory(kernel), in_memory(bias)
    shape, dtype = dry_run(fn, x, lambda d: numconv.conv_transpose(
        d, kernel, bias, strides=strides, padding=padding, output_padding=output_padding,
        dilation_rate=dilation_rate, data_format=data_format, activation=activation, method=method))
    rank = kernel.ndim - 2
    data_format = data_format.lower()
    padding = padding.lower()
    strides = normalize_tuple(fn, "strides", strides, rank)
    dilations = normalize_tuple(fn, "dilation_rate", dilation_rate, rank)
    ops = (None,) * rank if output_padding is None else normalize_tuple(fn, "output_padding", output_padding,
                                                                        rank, minimum=0)
    spatial_axes, channel_axis = layout_axes(rank, data_format)
    plans = {0: BatchPlan(x.chunks[0])}
    pbs = []
    for i, axis in enumerate(spatial_axes):
        L, k, s, d = x.shape[axis], kernel.shape[i], strides[i], dilations[i]
        pb, lout = transpose_window(L, k, s, d, padding, ops[i])
        pbs.append(pb)
        plans[axis] = TransposePlan(L, s, d * (k - 1) + 1, pb, lout, x.chunks[axis])
    filters, in_channels = kernel.shape[-2], kernel.shape[-1]
    plans[channel_axis] = filter_plan(fn, filter_chunks, filters, 1, (), lambda f0, f1: (0, in_channels))
    from functools import partial

    from ._tasks import transpose_block

    block_act, after, out_dtype = _block_activation(fn, activation, dtype, x.ndim)
    op = partial(transpose_block, rank=rank, data_format=data_format, strides=strides, dilations=dilations,
                 pbs=tuple(pbs), activation=block_act, method=method.lower(), spatial_axes=spatial_axes,
                 channel_axis=channel_axis, dtype=np.dtype(dtype))
    name = token(fn, x.name, kernel, bias, strides, padding, output_padding, dilations, data_format, activation,
                 method, plans[channel_axis].chunks)
    return _after_blocks(build(name, x, [plans[a] for a in range(x.ndim)], op, out_dtype, (kernel, bias)), after)


conv_transpose.__doc__ = ("Transposed convolution of a Dask array (`numconv.conv_transpose`).\n" + _COMMON.format(
    params="""    kernel, bias, strides, padding, output_padding, dilation_rate, data_format, activation, method
        As for `numconv.conv_transpose` (Keras's output lengths). Each output
        block gathers the inputs whose scatter reaches it.""").replace(
    "multiples of ``filters // groups``", "any sizes").replace(
    " (grouped and depthwise convolutions follow the input's\n        channel chunks where they fall on "
    "group boundaries)", "").replace(
    "``j`` holds the outputs whose windows are centred in input chunk ``j``",
    "``j`` starts where input chunk ``j`` starts scattering, at ``start * strides``"))


# ---------------------------------------------------------------- pooling

def _pool(fn, op_code, x, pool_size, strides, padding, data_format):
    import numconv
    from numconv._spec import normalize_tuple, same_pads

    x = as_dask(fn, x)
    call = numconv.max_pool if fn == "max_pool" else numconv.average_pool
    shape, dtype = dry_run(fn, x, lambda d: call(d, pool_size, strides=strides, padding=padding,
                                                 data_format=data_format))
    rank = x.ndim - 2
    data_format = data_format.lower()
    pool = normalize_tuple(fn, "pool_size", pool_size, rank)
    strides = pool if strides is None else normalize_tuple(fn, "strides", strides, rank)
    same = padding.lower() == "same"
    spatial_axes, channel_axis = layout_axes(rank, data_format)
    plans = {0: BatchPlan(x.chunks[0]), channel_axis: BatchPlan(x.chunks[channel_axis])}
    for i, axis in enumerate(spatial_axes):
        L = x.shape[axis]
        before = same_pads(L, pool[i], strides[i], 1)[0] if same else 0
        plans[axis] = WindowPlan(L, strides[i], before, pool[i], shape[axis], "clip", x.chunks[axis])
    from functools import partial

    from ._tasks import pool_block

    op = partial(pool_block, fn=fn, op=op_code, rank=rank, data_format=data_format, pool=pool, strides=strides,
                 spatial_axes=spatial_axes)
    name = token(fn, x.name, pool, strides, same, data_format)
    return build(name, x, [plans[a] for a in range(x.ndim)], op, dtype)


def max_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    from numconv._kernels.pool import MAX

    return _pool("max_pool", MAX, x, pool_size, strides, padding, data_format)


def average_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    from numconv._kernels.pool import AVG

    return _pool("average_pool", AVG, x, pool_size, strides, padding, data_format)


_POOL_DOC = """{summary} (`numconv.{fn}`).

    Same arguments and results as the in-memory op, for a ``dask.array.Array``
    ``x``; lazy. Batch and channel chunks are pooled independently; spatial
    chunks read the halo their windows need from their neighbours; ``"same"``
    padding {same} only at the array's true edges.

    Parameters
    ----------
    x : dask.array.Array or array_like
    pool_size, strides, padding, data_format
        As for `numconv.{fn}`.

    Returns
    -------
    dask.array.Array
    """
max_pool.__doc__ = _POOL_DOC.format(summary="Max pooling of a Dask array", fn="max_pool",
                                    same="pads (padded positions never win)")
average_pool.__doc__ = _POOL_DOC.format(summary="Average pooling of a Dask array", fn="average_pool",
                                        same="pads (windows average only the values inside the array)")

skip_examples_without_dask(sys.modules[__name__], conv)
