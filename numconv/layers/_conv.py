"""Keras convolution layers on numconv's ops: Conv, SeparableConv, DepthwiseConv, ConvTranspose."""
import numpy as np

import numconv

from .._dispatch import METHODS
from ._base import (SPATIAL_NAMES, Layer, _shape_tuple, format_shape, layout, normalize_activation,
                    normalize_data_format, normalize_initializer, normalize_padding, normalize_positive,
                    normalize_tuple)

_DOC = """{summary}

    Keras 3 ``keras.layers.{keras}``: the same constructor arguments, defaults,
    weight names, order and layouts, computed by ``{op}``.

    Parameters
    ----------
{params}
    strides : int or tuple of int, default 1
        Step per spatial axis, each >= 1. Unlike Keras, strides > 1 may be combined
        with dilation_rate > 1.
    padding : {paddings}, default "valid"
        Case-insensitive.{padding_note}
    data_format : {{"channels_last", "channels_first"}}, optional
        Input layout; None (default) means ``"channels_last"``: ``{layout_cl}``.
    dilation_rate : int or tuple of int, default 1
        Spacing between kernel taps.
{extra}    activation : str or callable, optional
        A Keras activation name (``"relu"``, ``"gelu"``, ... as ``numconv.conv``
        accepts; fused into the kernel) or a callable applied to the output.
    use_bias : bool, default True
        Add a learned bias per output channel.
{initializers}    *_regularizer, *_constraint, activity_regularizer : optional
        Accepted for Keras compatibility; they only act during training, which
        numconv does not do, so they are stored and otherwise ignored.
    method : {methods}, default "auto"
        numconv's computation path (not a Keras argument); ``"auto"`` lets the
        dispatcher choose.
    input_shape : tuple, optional
        Shape without the batch axis (Keras 2 style). Builds the layer at once.
    name, dtype, trainable, seed, batch_input_shape, batch_size
        ``dtype``: ``"float32"`` (default, as Keras) or ``"float64"``; inputs are cast
        to it. ``seed``: an int seeding the initializers given by name.

    Attributes
    ----------
    {weights}
        NumPy arrays in Keras's layouts once built (``bias`` is None without a bias).

    Examples
    --------
{example}
    """


_DOC = _DOC.replace("{methods}", "{{" + ", ".join(f'"{m}"' for m in ("auto",) + tuple(METHODS)) + "}}")

#: the default of a required argument (``filters``, ``kernel_size``): so a call
#: without it is reported by the public class (``Conv2D(filters, kernel_size,
#: ...)``) with an example, not as ``_Conv.__init__() missing ...``; the
#: signatures shown keep Keras's (no default)
_REQUIRED = type("_Required", (), {"__repr__": lambda self: "<required>"})()

#: an example value of kernel_size per rank, for the messages
_EXAMPLE_KERNEL = {1: "3", 2: "(3, 3)", 3: "(3, 3, 3)"}


def _require(layer, **given):
    """TypeError naming the public class, its Keras signature and a call that works,
    where any of ``given`` (in signature order) was not passed."""
    missing = [k for k, v in given.items() if v is _REQUIRED]
    if not missing:
        return
    cls = type(layer).__name__
    example = {"filters": "32", "kernel_size": _EXAMPLE_KERNEL[layer.rank]}
    if given.get("kernel_size") is not _REQUIRED:
        example["kernel_size"] = repr(given["kernel_size"])
    what = " and ".join(missing) + (" are" if len(missing) > 1 else " is")
    note = ""
    if missing == ["kernel_size"] and "filters" in given and not isinstance(given["filters"], (int, np.integer)):
        note = f" (the {given['filters']!r} given reads as filters)"
        example["kernel_size"] = repr(given["filters"])
    call = ", ".join(example[k] for k in given)
    raise TypeError(f"{cls}({', '.join(given)}, ...): {what} missing{note}; e.g. {cls}({call}). "
                    f"See help(numconv.layers.{cls}).")


def _keras_signature(init, *names):
    """Show ``names`` in ``init``'s signature without their ``_REQUIRED`` default (as Keras's)."""
    import inspect

    sig = inspect.signature(init)
    init.__signature__ = sig.replace(parameters=[p.replace(default=p.empty) if p.name in names else p
                                                 for p in sig.parameters.values()])
    return init


def _conv_params(filters=True):
    lines = []
    if filters:
        lines += ["    filters : int", "        Number of output channels."]
    lines += ["    kernel_size : int or tuple of int", "        Kernel extent per spatial axis."]
    return "\n".join(lines)


class _BaseConv(Layer):
    """Shared by every conv layer: argument checks, output shape, errors."""

    _paddings = ("valid", "same")
    _op_name = "numconv.conv"

    def _init_common(self, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                     method, extras):
        cls = type(self).__name__
        r = self.rank
        self.kernel_size = normalize_tuple(cls, "kernel_size", kernel_size, r)
        self.strides = normalize_tuple(cls, "strides", strides, r)
        self.dilation_rate = normalize_tuple(cls, "dilation_rate", dilation_rate, r)
        paddings = self._paddings + (("causal",) if r == 1 and self._causal else ())
        self.padding = normalize_padding(cls, padding, paddings)
        self.data_format = normalize_data_format(cls, data_format)
        self.activation = normalize_activation(cls, activation)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise TypeError(f"{cls}: use_bias must be True or False; got {use_bias!r}.")
        self.use_bias = bool(use_bias)
        if not isinstance(method, str) or method not in ("auto",) + tuple(METHODS):
            listed = ", ".join(repr(m) for m in ("auto",) + tuple(METHODS))
            raise ValueError(f"{cls}: unknown method {method!r}; expected one of {listed}.")
        self.method = method
        # Training-only arguments: kept so configs round-trip, never applied.
        for key, value in extras.items():
            setattr(self, key, value)
        self.bias = None

    _causal = False

    def _out_channels(self, channels):
        return self.filters

    #: whether the output channel count depends on the input's (depthwise: C * M);
    #: otherwise it is ``filters`` even where the input's channels are unknown (None)
    _channels_scale_output = False

    def _out_length(self, axis, L, k, s, d):
        if self.padding == "valid":
            return (L - d * (k - 1) - 1) // s + 1
        return -(-L // s)

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape`` (batch first; None entries stay None), as Keras computes it."""
        shape = _shape_tuple(type(self).__name__, "input_shape", input_shape)
        self._check_ndim(shape)
        cl = self.data_format == "channels_last"
        spatial = shape[1:-1] if cl else shape[2:]
        channels = shape[-1] if cl else shape[1]
        out = []
        for axis, (L, k, s, d) in enumerate(zip(spatial, self.kernel_size, self.strides, self.dilation_rate)):
            n = None if L is None else self._out_length(axis, L, k, s, d)
            if n is not None and n < 1:
                raise self._spatial_error(shape, axis, L, n)
            out.append(n)
        c = None if channels is None and self._channels_scale_output else self._out_channels(channels)
        return (shape[0],) + tuple(out) + (c,) if cl else (shape[0], c) + tuple(out)

    def _spatial_error(self, shape, axis, L, n):
        r = self.rank
        name = SPATIAL_NAMES[r][axis]
        kes = [d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate)]
        msg = (f"{self._who()}: input {name} (spatial axis {axis}) has size {L}, so the output would have "
               f"length {n} < 1 (kernel_size={self.kernel_size}, dilation_rate={self.dilation_rate}, "
               f"strides={self.strides}, padding=\"{self.padding}\"); the input shape {format_shape(shape)} is "
               f"read as {layout(r, self.data_format)}.")
        flipped = "channels_first" if self.data_format == "channels_last" else "channels_last"
        other = shape[2:] if flipped == "channels_first" else shape[1:-1]
        if self.padding == "valid" and all(s is None or s >= ke for s, ke in zip(other, kes)):
            move = "np.moveaxis(x, 1, -1)" if flipped == "channels_first" else "np.moveaxis(x, -1, 1)"
            msg += (f" This looks like {flipped} data {layout(r, flipped)}: pass data_format=\"{flipped}\" to "
                    f"the layer, or move the channel axis with x = {move} (and use input_shape="
                    f"{format_shape(self._flipped(shape)[1:])}). Otherwise use")
        else:
            msg += " Use"
        return ValueError(msg + " a larger input, a smaller kernel_size or dilation_rate, or padding=\"same\".")

    def _flipped(self, shape):
        if self.data_format == "channels_last":
            return (shape[0],) + tuple(shape[2:]) + (shape[1],)
        return (shape[0], shape[-1]) + tuple(shape[1:-1])

    def _channels_from_weights(self, weights):
        if weights and weights[0].ndim == self.rank + 2:
            return self._channels_from_kernel(weights[0].shape)
        return None

    def _channels_from_kernel(self, shape):
        return shape[-2]

    def _op_kwargs(self):
        """Keyword arguments of the op this layer calls (also used by the demo)."""
        return dict(strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate,
                    data_format=self.data_format, activation=self.activation, method=self.method)


_REGULARIZERS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                 "bias_constraint")


class _Conv(_BaseConv):
    _causal = True

    def __init__(self, filters=_REQUIRED, kernel_size=_REQUIRED, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, method="auto", **kwargs):
        _require(self, filters=filters, kernel_size=kernel_size)
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.filters = normalize_positive(cls, "filters", filters)
        self.groups = normalize_positive(cls, "groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"{cls}: the number of filters must be evenly divisible by the number of groups; "
                             f"got filters={self.filters}, groups={self.groups}. Choose groups among the common "
                             "divisors of the input channels and filters.")
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias, method,
                          dict(kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                               activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                               bias_constraint=bias_constraint))
        self.kernel_initializer = normalize_initializer(cls, "kernel_initializer", kernel_initializer)
        self.bias_initializer = normalize_initializer(cls, "bias_initializer", bias_initializer)
        self.kernel = None
        self._finish_init()

    def _weight_specs(self, channels):
        if channels % self.groups:
            raise ValueError(f"{self._who()}: the number of input channels must be evenly divisible by the number "
                             f"of groups; got groups={self.groups} and {channels} input channels "
                             f"(data_format=\"{self.data_format}\").")
        specs = [("kernel", self.kernel_size + (channels // self.groups, self.filters), self.kernel_initializer)]
        if self.use_bias:
            specs.append(("bias", (self.filters,), self.bias_initializer))
        return specs

    def _channels_from_kernel(self, shape):
        return shape[-2] * self.groups

    def _weight_layouts(self):
        c = "in_channels" if self.groups == 1 else f"in_channels // {self.groups}"
        return [("kernel", self.kernel_size + (c, self.filters))] + [("bias", (self.filters,))] * self.use_bias

    def _op_kwargs(self):
        return dict(super()._op_kwargs(), groups=self.groups)

    def call(self, x):
        return numconv.conv(x, self.kernel, self.bias, **self._op_kwargs())


class Conv1D(_Conv):
    rank = 1


class Conv2D(_Conv):
    rank = 2


class Conv3D(_Conv):
    rank = 3


class _SeparableConv(_BaseConv):
    _op_name = "numconv.separable_conv"

    def __init__(self, filters=_REQUIRED, kernel_size=_REQUIRED, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, method="auto", **kwargs):
        _require(self, filters=filters, kernel_size=kernel_size)
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.depth_multiplier = normalize_positive(cls, "depth_multiplier", depth_multiplier)
        self.filters = normalize_positive(cls, "filters", filters)
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias, method,
                          dict(depthwise_regularizer=depthwise_regularizer,
                               pointwise_regularizer=pointwise_regularizer, bias_regularizer=bias_regularizer,
                               activity_regularizer=activity_regularizer, depthwise_constraint=depthwise_constraint,
                               pointwise_constraint=pointwise_constraint, bias_constraint=bias_constraint))
        self.depthwise_initializer = normalize_initializer(cls, "depthwise_initializer", depthwise_initializer)
        self.pointwise_initializer = normalize_initializer(cls, "pointwise_initializer", pointwise_initializer)
        self.bias_initializer = normalize_initializer(cls, "bias_initializer", bias_initializer)
        self.depthwise_kernel = self.pointwise_kernel = None
        self._finish_init()

    def _weight_specs(self, channels):
        m = self.depth_multiplier
        specs = [("depthwise_kernel", self.kernel_size + (channels, m), self.depthwise_initializer),
                 ("pointwise_kernel", (1,) * self.rank + (channels * m, self.filters), self.pointwise_initializer)]
        if self.use_bias:
            specs.append(("bias", (self.filters,), self.bias_initializer))
        return specs

    def _weight_layouts(self):
        m = self.depth_multiplier
        return [("depthwise_kernel", self.kernel_size + ("in_channels", m)),
                ("pointwise_kernel", (1,) * self.rank + ("in_channels" if m == 1 else f"in_channels * {m}",
                                                         self.filters))] + [("bias", (self.filters,))] * self.use_bias

    def call(self, x):
        return numconv.separable_conv(x, self.depthwise_kernel, self.pointwise_kernel, self.bias,
                                      **self._op_kwargs())


class SeparableConv1D(_SeparableConv):
    rank = 1


class SeparableConv2D(_SeparableConv):
    rank = 2


class _DepthwiseConv(_BaseConv):
    _op_name = "numconv.depthwise_conv"

    def __init__(self, kernel_size=_REQUIRED, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, method="auto",
                 **kwargs):
        _require(self, kernel_size=kernel_size)
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.depth_multiplier = normalize_positive(cls, "depth_multiplier", depth_multiplier)
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias, method,
                          dict(depthwise_regularizer=depthwise_regularizer, bias_regularizer=bias_regularizer,
                               activity_regularizer=activity_regularizer, depthwise_constraint=depthwise_constraint,
                               bias_constraint=bias_constraint))
        self.depthwise_initializer = normalize_initializer(cls, "depthwise_initializer", depthwise_initializer)
        self.bias_initializer = normalize_initializer(cls, "bias_initializer", bias_initializer)
        self.kernel = None
        self._finish_init()

    def _out_channels(self, channels):
        return channels * self.depth_multiplier

    _channels_scale_output = True

    def _weight_specs(self, channels):
        m = self.depth_multiplier
        specs = [("kernel", self.kernel_size + (channels, m), self.depthwise_initializer)]
        if self.use_bias:
            specs.append(("bias", (channels * m,), self.bias_initializer))
        return specs

    def _weight_layouts(self):
        m = self.depth_multiplier
        return ([("kernel", self.kernel_size + ("in_channels", m))]
                + [("bias", ("in_channels" if m == 1 else f"in_channels * {m}",))] * self.use_bias)

    def call(self, x):
        return numconv.depthwise_conv(x, self.kernel, self.bias, **self._op_kwargs())


class DepthwiseConv1D(_DepthwiseConv):
    rank = 1


class DepthwiseConv2D(_DepthwiseConv):
    rank = 2


class _ConvTranspose(_BaseConv):
    _op_name = "numconv.conv_transpose"

    def __init__(self, filters=_REQUIRED, kernel_size=_REQUIRED, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 method="auto", **kwargs):
        _require(self, filters=filters, kernel_size=kernel_size)
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.filters = normalize_positive(cls, "filters", filters)
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias, method,
                          dict(kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                               activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                               bias_constraint=bias_constraint))
        self.output_padding = (None if output_padding is None else
                               normalize_tuple(cls, "output_padding", output_padding, self.rank, allow_zero=True))
        if self.output_padding is not None:
            for axis, (op, s) in enumerate(zip(self.output_padding, self.strides)):
                if op >= s:
                    raise ValueError(f"{cls}: output_padding must be strictly less than strides on every axis "
                                     f"(as Keras requires); at axis {axis} output_padding is {op} and strides is "
                                     f"{s}. Received output_padding={self.output_padding}, strides={self.strides}.")
        self.kernel_initializer = normalize_initializer(cls, "kernel_initializer", kernel_initializer)
        self.bias_initializer = normalize_initializer(cls, "bias_initializer", bias_initializer)
        self.kernel = None
        self._finish_init()

    def _out_length(self, axis, L, k, s, d):
        # Keras's deconv_output_length.
        ke = d * (k - 1) + 1
        if self.output_padding is None:
            return L * s + max(ke - s, 0) if self.padding == "valid" else L * s
        pad = ke // 2 if self.padding == "same" else 0
        return (L - 1) * s + ke - 2 * pad + self.output_padding[axis]

    def _spatial_error(self, shape, axis, L, n):
        return ValueError(f"{self._who()}: input {SPATIAL_NAMES[self.rank][axis]} (spatial axis {axis}) of size "
                          f"{L} gives an output of length {n} < 1 for input shape {format_shape(shape)} read as "
                          f"{layout(self.rank, self.data_format)}. Use a larger input, padding=\"valid\" or an "
                          "output_padding.")

    def _weight_specs(self, channels):
        specs = [("kernel", self.kernel_size + (self.filters, channels), self.kernel_initializer)]
        if self.use_bias:
            specs.append(("bias", (self.filters,), self.bias_initializer))
        return specs

    def _channels_from_kernel(self, shape):
        return shape[-1]

    def _weight_layouts(self):
        return ([("kernel", self.kernel_size + (self.filters, "in_channels"))]
                + [("bias", (self.filters,))] * self.use_bias)

    def call(self, x):
        kw = self._op_kwargs()
        return numconv.conv_transpose(x, self.kernel, self.bias, output_padding=self.output_padding, **kw)


class Conv1DTranspose(_ConvTranspose):
    rank = 1


class Conv2DTranspose(_ConvTranspose):
    rank = 2


class Conv3DTranspose(_ConvTranspose):
    rank = 3


for _init, _names in ((_Conv.__init__, ("filters", "kernel_size")),
                      (_SeparableConv.__init__, ("filters", "kernel_size")),
                      (_DepthwiseConv.__init__, ("kernel_size",)),
                      (_ConvTranspose.__init__, ("filters", "kernel_size"))):
    _keras_signature(_init, *_names)


def _example(cls, rank):
    shapes = {1: "(10, 3)", 2: "(28, 28, 3)", 3: "(8, 16, 16, 2)"}
    if cls in ("Conv", "Convolution"):
        outs = {1: "(None, 7, 2)", 2: "(None, 25, 25, 2)", 3: "(None, 5, 13, 13, 2)"}
        return (f"    >>> from numconv.layers import {cls}{rank}D\n"
                f"    >>> layer = {cls}{rank}D(filters=2, kernel_size=4, use_bias=False, input_shape={shapes[rank]})\n"
                f"    >>> layer.output_shape, layer.count_params()\n"
                f"    ({outs[rank]}, {2 * 4 ** rank * (3 if rank < 3 else 2)})")
    return ""


_LAYOUTS = {1: "(batch, steps, channels)", 2: "(batch, height, width, channels)",
            3: "(batch, depth, height, width, channels)"}

for _cls, _rank in ((Conv1D, 1), (Conv2D, 2), (Conv3D, 3)):
    _cls.__doc__ = _DOC.format(
        summary=f"{_rank}-D convolution layer (``{_cls.__name__}``).", keras=_cls.__name__, op="numconv.conv",
        params=_conv_params(), paddings='{"valid", "same"' + (', "causal"}' if _rank == 1 else "}"),
        padding_note=' ``"same"``: output ``ceil(L / strides)``.' + (
            ' ``"causal"``: ``dilation_rate * (kernel_size - 1)`` zeros before.' if _rank == 1 else ""),
        layout_cl=_LAYOUTS[_rank],
        extra="    groups : int, default 1\n        Channel groups; divides the input channels and filters.\n",
        initializers="    kernel_initializer, bias_initializer : str, Initializer or callable\n"
                     "        Defaults ``\"glorot_uniform\"`` and ``\"zeros\"``.\n",
        weights="kernel : ``(*kernel_size, in_channels // groups, filters)``; bias : ``(filters,)``",
        example=_example("Conv", _rank))

for _cls, _rank in ((SeparableConv1D, 1), (SeparableConv2D, 2)):
    _cls.__doc__ = _DOC.format(
        summary=f"{_rank}-D depthwise-separable convolution layer.", keras=_cls.__name__,
        op="numconv.separable_conv", params=_conv_params(), paddings='{"valid", "same"}', padding_note="",
        layout_cl=_LAYOUTS[_rank],
        extra="    depth_multiplier : int, default 1\n        Depthwise outputs per input channel.\n",
        initializers="    depthwise_initializer, pointwise_initializer, bias_initializer : str, Initializer or "
                     "callable\n        Defaults ``\"glorot_uniform\"``, ``\"glorot_uniform\"``, ``\"zeros\"``.\n",
        weights="depthwise_kernel : ``(*kernel_size, in_channels, depth_multiplier)``; pointwise_kernel : "
                "``(*[1] * rank, in_channels * depth_multiplier, filters)``; bias : ``(filters,)``",
        example=f"    >>> from numconv.layers import {_cls.__name__}\n"
                f"    >>> {_cls.__name__}(8, 3, depth_multiplier=2, input_shape="
                f"{'(20, 4)' if _rank == 1 else '(20, 20, 4)'}).count_params()  # 3**r*4*2 + 8*8 + 8\n"
                f"    {3 ** _rank * 8 + 64 + 8}")

for _cls, _rank in ((DepthwiseConv1D, 1), (DepthwiseConv2D, 2)):
    _cls.__doc__ = _DOC.format(
        summary=f"{_rank}-D depthwise convolution layer.", keras=_cls.__name__, op="numconv.depthwise_conv",
        params=_conv_params(filters=False), paddings='{"valid", "same"}', padding_note="",
        layout_cl=_LAYOUTS[_rank],
        extra="    depth_multiplier : int, default 1\n        Outputs per input channel: output channel "
              "``c * depth_multiplier + m``.\n",
        initializers="    depthwise_initializer, bias_initializer : str, Initializer or callable\n"
                     "        Defaults ``\"glorot_uniform\"`` and ``\"zeros\"``.\n",
        weights="kernel : ``(*kernel_size, in_channels, depth_multiplier)`` (Keras 3's name); bias : "
                "``(in_channels * depth_multiplier,)``",
        example=f"    >>> from numconv.layers import {_cls.__name__}\n"
                f"    >>> {_cls.__name__}(3, depth_multiplier=2).compute_output_shape("
                f"{'(None, 20, 4)' if _rank == 1 else '(None, 20, 20, 4)'})\n"
                f"    {'(None, 18, 8)' if _rank == 1 else '(None, 18, 18, 8)'}")

for _cls, _rank in ((Conv1DTranspose, 1), (Conv2DTranspose, 2), (Conv3DTranspose, 3)):
    _cls.__doc__ = _DOC.format(
        summary=f"{_rank}-D transposed convolution layer.", keras=_cls.__name__, op="numconv.conv_transpose",
        params=_conv_params(), paddings='{"valid", "same"}',
        padding_note=" Output length as Keras: ``L * strides`` for ``\"same\"``, "
                     "``L * strides + max(ke - strides, 0)`` for ``\"valid\"`` (``ke`` the dilated kernel size).",
        layout_cl=_LAYOUTS[_rank],
        extra="    output_padding : int or tuple of int, optional\n        Extra output length per axis, "
              "each < its stride (Keras's meaning).\n",
        initializers="    kernel_initializer, bias_initializer : str, Initializer or callable\n"
                     "        Defaults ``\"glorot_uniform\"`` and ``\"zeros\"``.\n",
        weights="kernel : ``(*kernel_size, filters, in_channels)``; bias : ``(filters,)``",
        example=f"    >>> from numconv.layers import {_cls.__name__}\n"
                f"    >>> {_cls.__name__}(4, 3, strides=2, padding=\"same\").compute_output_shape("
                f"(None,{' 10,' * _rank} 3))\n"
                f"    (None,{' 20,' * _rank} 4)")


# Keras 2 names: the same classes (so Convolution1D() is named "conv1d" and reports type Conv1D, as in Keras).
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
