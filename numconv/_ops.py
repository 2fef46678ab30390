"""Public deep-learning ops: thin wrappers that build a spec and dispatch it."""
import numpy as np

from . import _dispatch
from . import _memory
from ._errors import shape_str, value_error, x_axes
from ._kernels.layout import to_channels_first, to_channels_last
from ._paths import direct, fft, winograd
from ._spec import (apply_callable, canonical_input, check_out, conv_spec, normalize_activation, normalize_array,
                    out_apart, per_spec, user_layout)

_CONV_DOC = """{summary}

    Cross-correlation (no kernel flip), as in Keras, TensorFlow and PyTorch,
    computed by numconv's parallel Numba kernels
    (``numconv._kernels.conv.conv_direct_kernel`` on the direct path).

    Parameters
    ----------
    x : array_like
        {x_doc}
    kernel : array_like
        {kernel_doc} Keras layout ``(*kernel_size, in_channels // groups, filters)``.
    bias : array_like, optional
        Shape ``(filters,)``, added before the activation.
    strides : int or tuple of int, default 1
        Step per spatial axis, each >= 1.
    padding : str, int or tuple, default "valid"
        ``"valid"`` (none), ``"same"`` (TensorFlow's rule: output ``ceil(L / s)``,
        the odd extra pad after), ``"causal"`` (rank 1: ``d * (k - 1)`` before),
        ``"full"`` (``d * (k - 1)`` on both sides), an int for every side, a tuple
        of one int per axis, or a tuple of ``(before, after)`` pairs per axis (for
        rank 1, a 2-tuple is one ``(before, after)`` pair, as in ZeroPadding1D).
    dilation_rate : int or tuple of int, default 1
        Spacing between kernel taps, each >= 1; any stride may go with any dilation.
    groups : int, optional
        Channel groups; ``None`` infers ``in_channels // kernel.shape[-2]``. Both
        ``in_channels`` and ``filters`` must be divisible by it.
    data_format : {{"channels_last", "channels_first"}}, default "channels_last"
        Layout of ``x`` and of the result.
    padding_mode : {{"zeros", "reflect", "replicate", "circular"}}, default "zeros"
        Values placed in the padding, with PyTorch's meaning (reflect needs every
        pad < L, circular every pad <= L).
    activation : str or callable, optional
        A Keras activation name (``"relu"``, ``"gelu"``, ...) fused into the
        kernel's output write, or a callable ``f``: the op returns ``f(y)``, as
        Keras does, which must be an array of ``y``'s shape (with ``out``, it is
        written into ``out``; ValueError/TypeError otherwise).
    method : {{"auto", "direct", "fft", "oa", "winograd"}}, default "auto"
        Computation path; ``"auto"`` lets the dispatcher choose by a cost model
        (`choose_conv_method`; never FFT or Winograd for integer inputs).
        ``"winograd"``: F(2x2, 3x3) for 3x3 windows at stride 1 in 2-D and 3-D
        (``numconv._paths.winograd``; 2.25x fewer multiply-adds, float32 error
        ~2x the direct kernel's, still below oneDNN's); other convolutions run the
        direct kernel. A NaN or Inf in ``x`` stays local but reaches every output
        of each 2 x 2 tile whose 4 x 4 input patch holds it, mostly as NaN where a
        loop would give Inf; ``"direct"`` propagates exactly as a loop would.
        ``"fft"`` multiplies spectra (``numconv._paths.fft``): cheaper for large
        kernels, accurate to ~1e-6 (float32) / ~1e-15 (float64) of the output
        scale, and a NaN or Inf anywhere in ``x`` or ``kernel`` makes its whole
        output NaN, as in ``scipy.signal.fftconvolve``. ``"oa"`` (overlap-save,
        ``numconv._paths.oa``): the FFT path on blocks of the longest axis, for
        long signals; the same accuracy, and a NaN or Inf in ``x`` makes NaN of
        the output blocks (runs along that axis) whose input segment holds it,
        in ``kernel`` the whole output. Winograd and the transforms add several
        inputs before weighting them: finite values near the dtype's largest
        (above ~1/4 of it for Winograd, 8.5e37 in float32; ~1/n for a length-n
        transform) can overflow there into Inf or NaN where the direct loop's
        result is finite. Use ``"direct"`` for such data.
    out : ndarray, optional
        Preallocated result of the exact shape and dtype; written and returned.

    Returns
    -------
    ndarray
        ``(batch, *out_spatial, filters)`` (or channels first) with
        ``out = floor((L + before + after - d * (k - 1) - 1) / s) + 1`` per axis,
        in NumPy's promotion of the inputs' dtypes (integers and bool promote to
        float64, float16 to float32).

    Raises
    ------
    ValueError
        Inconsistent shapes, an empty output, bad strides/dilation/padding/groups,
        or an unknown option; the message names the argument and the likely fix.
    TypeError
        Non-numeric dtypes, a wrong ``out`` dtype, or a non-callable activation.

    Examples
    --------
    {example}
    """


@_memory.calls_scratch
def _conv(fn, rank, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
          padding_mode, activation, method, out, intermediate=False):
    """``conv`` behind every entry point. ``intermediate``: the result is the
    calling entry point's own intermediate (separable's depthwise stage), taken
    from the scratch pool rather than freshly allocated: a fresh 12.8 MB
    intermediate per call cost separable 8 x 56 x 56 x 128 ~2.7 ms here, as
    glibc handed its pages back to the kernel and faulted them in again."""
    spec, xu, w5, b = conv_spec(fn, x, kernel, bias, strides, padding, dilation_rate, groups,
                                data_format, padding_mode, activation, method, _dispatch.METHODS, rank,
                                layout=False)
    shape = spec.output_shape
    check_out(fn, out, shape, spec.dtype)
    if spec.batch == 0:
        return np.empty(shape, spec.dtype) if out is None else out
    if _zero_padded(spec):
        hidden = _pads_hide_non_finite(spec, w5)
        cut = None if hidden else _dead_taps(spec)
        if cut is not None:  # taps that only ever read zero padding (a huge dilation): cut, and the pads with them
            window, pads, ends = cut
            return _conv(fn, rank, xu[_user_spatial(spec, [slice(0, e) for e in ends], slice(None))],
                         np.asarray(kernel)[window], bias, strides, pads, dilation_rate, groups, data_format,
                         padding_mode, activation, method, out, intermediate)
        if hidden:  # the zeros written out, so that 0 * NaN = NaN there too
            return _conv(fn, rank, np.pad(xu, _user_spatial(spec, spec.pads[3 - spec.rank:], (0, 0))), kernel,
                         bias, strides, "valid", dilation_rate, groups, data_format, padding_mode, activation,
                         method, out, intermediate)
    narrow, depthwise = direct.is_narrow_channels_first(spec), direct.is_depthwise_channels_first(spec)
    terms = direct.is_terms_channels_first(spec)
    method = _dispatch.resolve(spec)
    lanes = method == "fft" and fft.lanes_channels_first(spec)
    wino = method == "winograd" and winograd.cf_applies(spec)
    if (narrow or depthwise or terms) and method == "direct" or lanes or wino:
        # channels_first in and out, no layout changes (the narrow and depthwise_cf
        # kernels, the term kernels storing their tiles transposed, the 2-D FFT
        # path's row passes transposing row blocks in registers, and the Winograd
        # kernel staging each task's input and output in cache)
        def run(result):
            if lanes:
                fft.run_channels_first(spec, xu, w5, b, result)
            elif wino:
                winograd.run_channels_first(spec, xu, w5, b, result)
            elif depthwise:
                direct.run_depthwise_channels_first(spec, xu, w5, b, result)
            elif narrow:
                direct.run_narrow(spec, xu, w5, b, result, channels_first=True)
            else:
                direct.run_terms_channels_first(spec, xu, w5, b, result)

        result = _channels_first_result(spec, out, _memory.scratch if intermediate else _memory.empty, run)
    else:
        # layout changes around SciPy transforms run on Python threads (``numconv._shares``)
        shared = method in _dispatch.TRANSFORM_METHODS
        result = _run_channels_last(spec, canonical_input(spec, xu, shared), w5, b, out, intermediate, shared)
    if callable(spec.activation):
        result = apply_callable(fn, spec.activation, result, out)
    return result


def _channels_first_result(spec, out, alloc, run):
    """A channels_first path's result: ``run(result)`` into ``out`` where it is
    C-contiguous, else into a fresh ``alloc`` array (copied into ``out`` where
    given), then the activations the kernels defer."""
    result = out if out is not None and out.flags.c_contiguous else alloc(spec.output_shape, spec.dtype)
    run(result)
    _dispatch.finish(spec, result)
    if out is not None and result is not out:
        out[...] = result
        return out
    return result


def _zero_padded(spec):
    """Whether ``spec`` pads with zeros somewhere."""
    return spec.padding_mode == "zeros" and any(p for pair in spec.pads for p in pair)


def _user_spatial(spec, per_axis, other):
    """An index or pad width for ``x`` as the user laid it out: ``per_axis`` for
    its spatial axes, ``other`` for the batch and channel axes."""
    cf = spec.data_format == "channels_first"
    return (other,) * (1 + cf) + tuple(per_axis) + (other,) * (not cf)


@per_spec
def _dead_taps(spec):
    """``(window, pads, ends)`` where some kernel taps read only zero padding for
    every output (a dilation far past the input: "same" with ``dilation_rate=2**31
    - 1`` padded 5 samples to 2**32 and raised MemoryError): the kernel's index for
    the taps that reach the input, explicit pads and the input's extent (``x[:end]``
    per axis) that keep every output's position and count. None where every tap
    is live, where none is (nothing to cut to), where the cut would need negative
    pads, and without zero padding (every tap of a valid window reads the input).
    Not for non-finite kernels: a NaN tap over padding makes NaN
    (``_pads_hide_non_finite``)."""
    if not _zero_padded(spec):
        return None
    window, pads, ends, cut = [], [], [], False
    for L, k, s, d, out, (before, after) in zip(spec.in_spatial, spec.kernel_spatial, spec.strides, spec.dilations,
                                                spec.out_spatial, spec.pads):
        lo = max(0, -(-(before - (out - 1) * s) // d))  # the first tap some output reads inside the input
        hi = min(k - 1, (L - 1 + before) // d)  # the last
        if lo > hi or lo * d > before:
            return None
        b = before - lo * d
        span = (out - 1) * s + d * (hi - lo) + 1 - b  # the padded input the outputs read, from the input's start
        cut = cut or (lo, hi) != (0, k - 1)
        window.append(slice(lo, hi + 1))
        pads.append((b, max(0, span - L)))
        ends.append(min(L, span))  # (past it the input is read by no output: without the cut taps, more would fit)
    if not cut:
        return None
    r = spec.rank
    return tuple(window[3 - r:]) + (Ellipsis,), tuple(pads[3 - r:]), tuple(ends[3 - r:])


def _pads_hide_non_finite(spec, w5):
    """Whether zero padding meets a NaN or Inf in the kernel: the direct kernels
    skip the taps that fall in zero padding, so a NaN weight there would leave
    those outputs finite, where a loop over the zero-padded input (and PyTorch,
    Keras, the FFT path) gives NaN. Such calls run on an explicitly padded input
    instead. One sum over the kernel (a non-finite or overflowing sum then the
    exact test): small against the convolution it precedes."""
    return _zero_padded(spec) and not np.isfinite(w5.sum()) and not np.isfinite(w5).all()


def _run_channels_last(spec, x5, w5, b, out, intermediate=False, shared=False, run=None):
    """``conv`` on canonical channels-last operands, delivered in the user's layout
    (``intermediate``: see ``_conv``; ``shared``: ``_spec.user_layout``); ``run(spec,
    x5, w5, b, out5)`` computes the canonical result (the fused separable kernel
    passes its own)."""
    canonical = spec.canonical_output_shape
    direct_out = (out is not None and spec.data_format == "channels_last"
                  and out.flags.c_contiguous)
    if direct_out:
        out5 = out.reshape(canonical)
    elif out is None and spec.data_format == "channels_last":
        out5 = (_memory.scratch if intermediate else _memory.empty)(canonical, spec.dtype)  # returned as it is
    else:
        out5 = _memory.scratch(canonical, spec.dtype)  # laid out or copied into a result
    (run or _dispatch.run)(spec, x5, w5, b, out5)
    if direct_out:
        return out
    return user_layout(spec, out5, spec.out_spatial, spec.filters, out, shared)


@out_apart("x", "kernel", "bias")
def conv(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
         data_format="channels_last", padding_mode="zeros", activation=None, method="auto", out=None):
    return _conv("conv", None, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 padding_mode, activation, method, out)


@out_apart("x", "kernel", "bias")
def conv1d(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
           data_format="channels_last", padding_mode="zeros", activation=None, method="auto", out=None):
    return _conv("conv1d", 1, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 padding_mode, activation, method, out)


@out_apart("x", "kernel", "bias")
def conv2d(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
           data_format="channels_last", padding_mode="zeros", activation=None, method="auto", out=None):
    return _conv("conv2d", 2, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 padding_mode, activation, method, out)


@out_apart("x", "kernel", "bias")
def conv3d(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
           data_format="channels_last", padding_mode="zeros", activation=None, method="auto", out=None):
    return _conv("conv3d", 3, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 padding_mode, activation, method, out)


conv.__doc__ = _CONV_DOC.format(
    summary="N-D convolution (rank 1, 2 or 3, taken from ``kernel.ndim - 2``).",
    x_doc="``(batch, *spatial, channels)``, or ``(batch, channels, *spatial)`` with "
          "``data_format=\"channels_first\"``; ``x.ndim == kernel.ndim``.",
    kernel_doc="Rank-r kernel, ``kernel.ndim == r + 2``.",
    example=""">>> import numpy as np, numconv
    >>> x = np.arange(10.0).reshape(1, 10, 1)
    >>> numconv.conv(x, np.ones((3, 1, 1)))[0, :, 0]
    array([ 3.,  6.,  9., 12., 15., 18., 21., 24.])""")
conv1d.__doc__ = _CONV_DOC.format(
    summary="1-D convolution (Keras ``Conv1D``), ``x`` of shape ``(batch, steps, channels)``.",
    x_doc="``(batch, steps, channels)``, or ``(batch, channels, steps)`` channels first.",
    kernel_doc="``(kernel_size, in_channels // groups, filters)``.",
    example=""">>> import numpy as np, numconv
    >>> x = np.zeros((2, 100, 1), np.float32)
    >>> numconv.conv1d(x, np.ones((3, 1, 64), np.float32), padding="same").shape
    (2, 100, 64)""")
conv2d.__doc__ = _CONV_DOC.format(
    summary="2-D convolution (Keras ``Conv2D``), ``x`` of shape ``(batch, height, width, channels)``.",
    x_doc="``(batch, height, width, channels)``, or ``(batch, channels, height, width)``.",
    kernel_doc="``(kh, kw, in_channels // groups, filters)``.",
    example=""">>> import numpy as np, numconv
    >>> x = np.ones((1, 5, 5, 3))
    >>> numconv.conv2d(x, np.ones((3, 3, 3, 2)), strides=2, padding="same")[0, :, :, 0]
    array([[12., 18., 12.],
           [18., 27., 18.],
           [12., 18., 12.]])""")
conv3d.__doc__ = _CONV_DOC.format(
    summary="3-D convolution (Keras ``Conv3D``), ``x`` of shape ``(batch, depth, height, width, channels)``.",
    x_doc="``(batch, depth, height, width, channels)``, or channels first.",
    kernel_doc="``(kd, kh, kw, in_channels // groups, filters)``.",
    example=""">>> import numpy as np, numconv
    >>> numconv.conv3d(np.ones((1, 4, 4, 4, 1)), np.ones((2, 2, 2, 1, 1))).shape
    (1, 3, 3, 3, 1)""")


def choose_conv_method(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, groups=None,
                       data_format="channels_last", padding_mode="zeros", activation=None, measure=False):
    """The method ``conv(..., method="auto")`` would use for these arguments.

    Parameters
    ----------
    x, kernel, bias, strides, padding, dilation_rate, groups, data_format, padding_mode, activation
        As for `conv`; only shapes and dtypes matter unless ``measure`` is true.
    measure : bool, default False
        Run and time every registered method on the given arrays.

    Returns
    -------
    str or (str, dict)
        The chosen method; with ``measure=True``, ``(fastest, {method: seconds})``
        over every method that computes these arguments on a path of its own,
        the fastest among those ``"auto"`` may choose (for bool and integer
        inputs only ``"direct"``, whose results stay exact).

    Examples
    --------
    >>> import numpy as np, numconv
    >>> numconv.choose_conv_method(np.ones((1, 32, 32, 3)), np.ones((3, 3, 3, 8)))
    'direct'
    """
    fn = "choose_conv_method"
    args = (x, kernel, bias, strides, padding, dilation_rate, groups, data_format, padding_mode, activation)
    spec = conv_spec(fn, *args, "auto", _dispatch.METHODS)[0]
    if not measure:
        return _dispatch.choose_conv_method(spec)
    import time

    times = {}
    for method in _dispatch.candidates(spec):
        _conv(fn, None, *args, method, None)  # compile / warm caches
        t0 = time.perf_counter()
        _conv(fn, None, *args, method, None)
        times[method] = time.perf_counter() - t0
    allowed = ["direct"] if spec.integer_inputs else times  # as "auto": integer results stay exact
    return min(allowed, key=times.get), times


# ---------------------------------------------------------------- depthwise and separable


def _depthwise_kernel(fn, x, kernel, data_format, rank=None):
    """Keras depthwise kernel (*k, C, M) -> the grouped-conv kernel (*k, 1, C*M), after
    checking it against ``x``'s channels. Output channel ``c*M + m`` is then input channel
    ``c`` with multiplier ``m`` (Keras order), which is grouped conv's order for groups=C."""
    arg = "depthwise_kernel" if fn == "separable_conv" else "kernel"
    kernel, _ = normalize_array(fn, arg, kernel)
    if kernel.ndim not in (3, 4, 5):
        raise value_error(fn, arg, "must be 3-D, 4-D or 5-D: (*kernel_size, in_channels, depth_multiplier)",
                          f"shape {shape_str(kernel.shape)}")
    if 0 in kernel.shape:  # here, where the shape is still the user's
        raise value_error(fn, arg, "must have no zero-length axis (kernel sizes, in_channels and "
                          "depth_multiplier are all >= 1)", f"shape {shape_str(kernel.shape)}")
    if kernel.ndim <= x.ndim <= 5 and isinstance(data_format, str):
        channels = x.shape[1] if data_format.lower() == "channels_first" else x.shape[-1]
        if kernel.ndim < x.ndim:  # more axes in x: the kernel's error
            fix = (f"A kernel of shape (*kernel_size, in_channels) takes its depth_multiplier axis with "
                   f"{arg}[..., None]." if kernel.ndim == x.ndim - 1 and kernel.shape[-1] == channels else None)
            raise value_error(fn, arg, f"must be {x.ndim}-D (*kernel_size, in_channels, depth_multiplier) "
                              f"{x_axes(x.shape, data_format)}", f"shape {shape_str(kernel.shape)}", fix)
        if kernel.shape[-2] != channels:
            raise value_error(fn, arg, f"must have in_channels = {channels} (the channel axis of x, shape "
                              f"{shape_str(x.shape)}, data_format=\"{data_format}\") on its second-to-last axis; "
                              "Keras layout (*kernel_size, in_channels, depth_multiplier)",
                              f"shape {shape_str(kernel.shape)}",
                              "If x is laid out the other way round, pass the matching data_format.")
    return kernel.reshape(kernel.shape[:-2] + (1, kernel.shape[-2] * kernel.shape[-1])), kernel.shape[-2]


@out_apart("x", "kernel", "bias")
def depthwise_conv(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1,
                   data_format="channels_last", padding_mode="zeros", activation=None, method="auto", out=None):
    """Depthwise convolution (Keras ``DepthwiseConv1D`` / ``DepthwiseConv2D``).

    Each input channel is convolved with its own ``depth_multiplier`` filters: a
    grouped `conv` with ``groups = in_channels`` on the same spec, dispatcher and
    kernels (the direct path uses its channel-vectorised depthwise kernel).

    Parameters
    ----------
    x : array_like
        ``(batch, *spatial, channels)`` or channels first; rank 1-3.
    kernel : array_like
        Keras layout ``(*kernel_size, in_channels, depth_multiplier)``. Output
        channel ``c * depth_multiplier + m`` is channel ``c`` filtered by
        ``kernel[..., c, m]``.
    bias : array_like, optional
        ``(in_channels * depth_multiplier,)``.
    strides, padding, dilation_rate, data_format, padding_mode, activation, method, out
        As for `numconv.conv` (every combination allowed).

    Returns
    -------
    ndarray
        ``(batch, *out_spatial, in_channels * depth_multiplier)`` (or channels first).

    Examples
    --------
    >>> import numpy as np, numconv
    >>> x = np.ones((1, 4, 4, 2))
    >>> k = np.stack([np.ones((3, 3)), 2 * np.ones((3, 3))], axis=-1)[..., None]  # (3, 3, 2, 1)
    >>> numconv.depthwise_conv(x, k)[0, 0, 0]
    array([ 9., 18.])
    """
    fn = "depthwise_conv"
    x, _ = normalize_array(fn, "x", x)
    w, channels = _depthwise_kernel(fn, x, kernel, data_format)
    return _conv(fn, None, x, w, bias, strides, padding, dilation_rate, channels, data_format, padding_mode,
                 activation, method, out)


def _depthwise_stays_channels_first(fn, x, w, strides, padding, dilation_rate, groups, padding_mode, method):
    """Whether ``conv`` computes this channels_first depthwise stage without layout
    changes (``direct.is_depthwise_channels_first`` on the direct path). Bad
    arguments raise here, where the message still shows ``x`` as the user laid it
    out (the channels-last fallback would show it transposed)."""
    spec = conv_spec(fn, x, w, None, strides, padding, dilation_rate, groups, "channels_first", padding_mode,
                     None, method, _dispatch.METHODS, layout=False)[0]
    return direct.is_depthwise_channels_first(spec) and _dispatch.resolve(spec) == "direct"


@_memory.calls_scratch
def _separable_fused(fn, rank, x, w, pk, bias, strides, padding, dilation_rate, channels, data_format,
                     padding_mode, activation, method, out):
    """``separable_conv``'s two stages in one kernel (``direct.fuses_separable``,
    and ``fuses_separable_channels_first`` for ``data_format="channels_first"``,
    in and out: the depthwise result stays in cache), or None where they run
    apart. The arguments are checked as the two stages' ``conv`` calls check them."""
    spec, xu, w5, _ = conv_spec(fn, x, w, None, strides, padding, dilation_rate, channels, data_format,
                                padding_mode, None, method, _dispatch.METHODS, rank, layout=False)
    if spec.batch == 0 or _dispatch.resolve(spec) != "direct":
        return None
    cf = spec.data_format == "channels_first"
    mid = np.broadcast_to(np.zeros((), spec.dtype), spec.output_shape)  # the intermediate's shape, no memory
    pspec, _, pk5, b = conv_spec(fn, mid, pk, bias, 1, "valid", 1, 1, spec.data_format, "zeros", activation,
                                 method, _dispatch.METHODS, rank, layout=False)
    fuses = direct.fuses_separable_channels_first if cf else direct.fuses_separable
    if _dispatch.resolve(pspec) != "direct" or not fuses(spec, pspec) or _pads_hide_non_finite(spec, w5):
        return None
    check_out(fn, out, pspec.output_shape, pspec.dtype)
    if cf:
        result = _channels_first_result(pspec, out, _memory.empty, lambda result: direct.run_separable_channels_first(
            spec, pspec, xu, w5, pk5, b, result))
    else:
        result = _run_channels_last(pspec, canonical_input(spec, xu, False), pk5, b, out, run=lambda ps, x5, pk5, b,
                                    out5: _dispatch.finish(ps, direct.run_separable(spec, ps, x5, w5, pk5, b, out5)))
    if callable(pspec.activation):  # a user's function, softmax, log_softmax
        result = apply_callable(fn, pspec.activation, result, out)
    return result


@out_apart("x", "depthwise_kernel", "pointwise_kernel", "bias")
@_memory.calls_scratch
def separable_conv(x, depthwise_kernel, pointwise_kernel, bias=None, *, strides=1, padding="valid",
                   dilation_rate=1, data_format="channels_last", padding_mode="zeros", activation=None,
                   method="auto", out=None):
    """Depthwise-separable convolution (Keras ``SeparableConv1D`` / ``SeparableConv2D``).

    `depthwise_conv` (strides, padding, dilation and padding mode apply here) followed
    by a 1x1 `conv` that mixes channels, then bias and activation, as Keras computes it.

    Parameters
    ----------
    x : array_like
        ``(batch, *spatial, channels)`` or channels first; rank 1-3.
    depthwise_kernel : array_like
        ``(*kernel_size, in_channels, depth_multiplier)``.
    pointwise_kernel : array_like
        ``(*[1] * rank, in_channels * depth_multiplier, filters)``.
    bias : array_like, optional
        ``(filters,)``.
    strides, padding, dilation_rate, data_format, padding_mode, activation, method, out
        As for `numconv.conv`.

    Returns
    -------
    ndarray
        ``(batch, *out_spatial, filters)`` (or channels first).

    Examples
    --------
    >>> import numpy as np, numconv
    >>> y = numconv.separable_conv(np.ones((1, 8, 3)), np.ones((3, 3, 2)), np.ones((1, 6, 4)), padding="same")
    >>> y.shape, float(y[0, 1, 0])
    ((1, 8, 4), 18.0)
    """
    fn = "separable_conv"
    x, _ = normalize_array(fn, "x", x)
    w, channels = _depthwise_kernel(fn, x, depthwise_kernel, data_format)
    pk, _ = normalize_array(fn, "pointwise_kernel", pointwise_kernel)
    rank = w.ndim - 2
    expected = (1,) * rank + (w.shape[-1],)
    if pk.ndim != rank + 2 or pk.shape[:-1] != expected:
        raise value_error(fn, "pointwise_kernel", f"must have shape {shape_str(expected + ('filters',))}: "
                          "(*[1] * rank, in_channels * depth_multiplier, filters)", f"shape {shape_str(pk.shape)}")
    if bias is not None:
        bias, _ = normalize_array(fn, "bias", bias)
    later = (pk.dtype,) + (() if bias is None else (bias.dtype,))
    if np.finfo(np.result_type(x.dtype, w.dtype, *later)).bits > np.finfo(np.result_type(x.dtype, w.dtype)).bits:
        # a double-precision result: the depthwise stage in double precision too
        # (in single precision it left float32 rounding in a float64 result)
        w = w.astype(np.result_type(w.dtype, np.float64))
    cf = isinstance(data_format, str) and data_format.lower() == "channels_first"
    if cf and x.ndim == rank + 2 and _depthwise_stays_channels_first(
            fn, x, w, strides, padding, dilation_rate, channels, padding_mode, method):
        # both stages in one kernel, or the depthwise stage channels_first in and
        # out, the pointwise one reading that as it lies where it can: at most one
        # layout change (the result's)
        y = _separable_fused(fn, rank, x, w, pk, bias, strides, padding, dilation_rate, channels, "channels_first",
                             padding_mode, activation, method, out)
        if y is not None:
            return y
        mid = _conv(fn, None, x, w, None, strides, padding, dilation_rate, channels, "channels_first",
                    padding_mode, None, method, None, intermediate=True)
        return _conv(fn, None, mid, pk, bias, 1, "valid", 1, 1, "channels_first", "zeros", activation, method, out)
    after = None
    if cf and x.ndim == rank + 2:
        x = to_channels_last(x)  # run both stages channels-last; one layout change each way
        after = normalize_activation(fn, activation, np.result_type(x.dtype, w.dtype, *later))
        if callable(after):  # softmax over the last axis, a user's function: on the result as delivered
            activation = None
    fmt = "channels_last" if cf else data_format
    y = _separable_fused(fn, rank, x, w, pk, bias, strides, padding, dilation_rate, channels, fmt, padding_mode,
                         activation, method, None if cf else out)
    if y is None:
        mid = _conv(fn, None, x, w, None, strides, padding, dilation_rate, channels, fmt, padding_mode, None, method,
                    None, intermediate=True)
        y = _conv(fn, None, mid, pk, bias, 1, "valid", 1, 1, "channels_last", "zeros", activation, method,
                  None if cf else out)
    if not cf:
        return y
    check_out(fn, out, (y.shape[0], y.shape[-1]) + y.shape[1:-1], y.dtype)
    y = to_channels_first(y, out)
    return apply_callable(fn, after, y, out) if callable(after) else y
