"""Per-block computations of ``numconv.dask``: each runs the in-memory op on one
assembled block (see ``numconv.dask._graph.build`` for the call convention
``op(block, pads, info, *consts)``). Module-level functions, bound with
``functools.partial``, so tasks pickle to ``distributed`` workers.
"""
import numpy as np


def _range(info, axis):
    return info[axis][0], info[axis][1]


def conv_block(block, pads, info, kernel, bias, pointwise=None, *, kind, spatial_axes, channel_axis,
               filters_per_group, multiplier, kwargs):
    """``conv`` / ``depthwise_conv`` / ``separable_conv`` of one block. Zero padding
    arrives as explicit per-side pads (the block holds its real neighbours; only
    true array edges are padded); mapped padding modes arrive already gathered
    into the block, so the op runs with the remaining pads (0) and zeros mode."""
    import numconv

    f0, f1 = _range(info, channel_axis)
    padding = tuple(pads[a] for a in spatial_axes)
    b = None if bias is None else bias[f0:f1]
    if kind == "conv":
        return numconv.conv(block, kernel[..., f0:f1], b, padding=padding,
                            groups=1 if filters_per_group is None else (f1 - f0) // filters_per_group, **kwargs)
    if kind == "depthwise":
        return numconv.depthwise_conv(block, kernel[..., f0 // multiplier:f1 // multiplier, :], b,
                                      padding=padding, **kwargs)
    return numconv.separable_conv(block, kernel, pointwise[..., f0:f1], b, padding=padding, **kwargs)


def pool_block(block, pads, info, *, fn, op, rank, data_format, pool, strides, spatial_axes):
    """Max / average pooling of one block with numconv's pooling kernel. The block
    holds every real input its windows cover; ``pads`` say how far the first
    window starts before it (only at the array's true start), and windows are
    clipped to the block, i.e. to the array: padded positions are ignored, as in
    ``numconv.max_pool`` / ``average_pool`` with ``padding="same"``."""
    from numconv._config import kernel_lock
    from numconv._kernels.pool import pool_kernel
    from numconv._pool import _array, _chunk
    from numconv._spec import canonical_array

    x = _array(fn, block)
    xl = x if data_format == "channels_last" else np.moveaxis(x, 1, -1)
    lead = 3 - rank
    N, C = xl.shape[0], xl.shape[-1]
    x5 = canonical_array(xl, x.dtype, (N,) + (1,) * lead + xl.shape[1:-1] + (C,))
    out_spatial = tuple(info[a][1] - info[a][0] for a in spatial_axes)
    out5 = np.empty((N,) + (1,) * lead + out_spatial + (C,), x.dtype)
    if out5.size:
        with kernel_lock():
            pool_kernel(x5, out5, (1,) * lead + pool, (1,) * lead + strides,
                        (0,) * lead + tuple(pads[a][0] for a in spatial_axes), op, _chunk(out5.shape), False)
    y = out5.reshape((N,) + out_spatial + (C,))
    if data_format == "channels_first":
        y = np.ascontiguousarray(np.moveaxis(y, -1, 1))
    return y


def transpose_block(block, pads, info, kernel, bias, *, rank, data_format, strides, dilations, pbs,
                    activation, method, spatial_axes, channel_axis, dtype):
    """``conv_transpose`` of one block: the adjoint core (``numconv._adjoint.adjoint``)
    on the inputs that scatter into the block's outputs, with the block's own
    offset ``pb`` per axis, then bias and activation as ``numconv.conv_transpose``."""
    from numconv._adjoint import adjoint, swap_channels, transpose_epilogue
    from numconv._spec import ConvSpec, canonical_array, canonical_kernel, normalize_activation

    f0, f1 = _range(info, channel_axis)
    k = kernel[..., f0:f1, :]
    filters, in_channels = f1 - f0, k.shape[-1]
    lead = 3 - rank
    xl = block if data_format == "channels_last" else np.moveaxis(block, 1, -1)
    N = xl.shape[0]
    louts = tuple(info[a][1] - info[a][0] for a in spatial_axes)
    local_pb = [info[a][0] + pb - info[a][2] * s for a, pb, s in zip(spatial_axes, pbs, strides)]
    act = normalize_activation("conv_transpose", activation, dtype)
    spec = ConvSpec(fn="conv_transpose", rank=rank, batch=N, channels=filters, filters=in_channels, groups=1,
                    in_spatial=(1,) * lead + louts, kernel_spatial=(1,) * lead + k.shape[:-2],
                    out_spatial=(1,) * lead + xl.shape[1:-1], strides=(1,) * lead + tuple(strides),
                    dilations=(1,) * lead + tuple(dilations), pads=((0, 0),) * 3, padding_mode="zeros",
                    data_format=data_format, dtype=dtype, activation=act, method=method)
    y5 = np.zeros((N,) + spec.in_spatial + (filters,), dtype)
    if xl.size and y5.size:  # an empty input range scatters nothing: zeros (then bias)
        x5 = canonical_array(xl, dtype, (N,) + spec.out_spatial + (in_channels,))
        wt = swap_channels(canonical_kernel(spec, k), 1)
        adjoint(spec, x5, wt, [0] * lead + local_pb, spec.in_spatial, y5, method)
    return transpose_epilogue(spec, y5, None if bias is None else bias[f0:f1], None)


def signal_block(block, pads, info, in2, *, sliced_axes, axes, method):
    """``numconv.signal.convolve`` of one block: the block arrives zero-padded to
    exactly the inputs its outputs read (at least ``in2``'s length along every
    convolved axis), so the block's ``"valid"`` convolution is the slice of the
    whole array's result. ``in2`` (already flipped and conjugated for
    ``correlate``) is sliced along the non-convolved axes where each signal has
    its own kernel."""
    from numconv import signal

    if sliced_axes:
        index = [slice(None)] * in2.ndim
        for a in sliced_axes:
            index[a] = slice(info[a][0], info[a][1])
        in2 = in2[tuple(index)]
    return np.ascontiguousarray(signal.convolve(block, in2, mode="valid", method=method, axes=axes))
