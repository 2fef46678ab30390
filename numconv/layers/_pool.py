"""Keras pooling layers on numconv's pooling ops (``numconv.max_pool``, ``numconv.average_pool``,
``numconv.global_max_pool``, ``numconv.global_average_pool``)."""
import numconv

from ._base import (SPATIAL_NAMES, Layer, _shape_tuple, format_shape, layout, normalize_data_format,
                    normalize_padding, normalize_tuple)

_DOC = """{rank}-D {kind} pooling layer (Keras 3 ``keras.layers.{name}``), computed by ``numconv.{op}``.

    Parameters
    ----------
    pool_size : int or tuple of int{pool_default}
        Window size per spatial axis.
    strides : int or tuple of int, optional
        Step per spatial axis; None (default) means ``pool_size``.
    padding : {{"valid", "same"}}, default "valid"
        ``"same"``: output ``ceil(L / strides)``{same_note}.
    data_format : {{"channels_last", "channels_first"}}, optional
        None (default) means ``"channels_last"``.
    name, dtype, input_shape, batch_input_shape, batch_size
        As for the conv layers (``input_shape=`` builds at once).

    Examples
    --------
    >>> import numpy as np
    >>> from numconv.layers import {name}
    >>> {name}({example_args}).compute_output_shape({in_shape})
    {out_shape}
    """

_GLOBAL_DOC = """Global {kind} pooling over the {rank}-D spatial axes (Keras 3 ``keras.layers.{name}``),
    computed by ``numconv.{op}``.

    Parameters
    ----------
    data_format : {{"channels_last", "channels_first"}}, optional
        None (default) means ``"channels_last"``.
    keepdims : bool, default False
        Keep the spatial axes as size-1 axes.
    name, dtype, input_shape, batch_input_shape, batch_size
        As for the conv layers.

    Examples
    --------
    >>> from numconv.layers import {name}
    >>> {name}().compute_output_shape({in_shape})
    {out_shape}
    """


class _Pooling(Layer):
    _needs_channels = False

    def __init__(self, pool_size=None, strides=None, padding="valid", data_format=None, **kwargs):
        cls = type(self).__name__
        if pool_size is None:  # (AveragePooling*D: Keras 3 gives them no default)
            raise TypeError(f"{cls}: missing the pool_size argument, an int or a tuple of {self.rank} ints, "
                            f"e.g. {cls}(pool_size={(2,) * self.rank if self.rank > 1 else 2}).")
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(cls, "pool_size", pool_size, self.rank)
        self.strides = self.pool_size if strides is None else normalize_tuple(cls, "strides", strides, self.rank)
        self.padding = normalize_padding(cls, padding, ("valid", "same"))
        self.data_format = normalize_data_format(cls, data_format)
        self._finish_init()

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape`` (batch first; None entries stay None), as Keras computes it."""
        shape = _shape_tuple(type(self).__name__, "input_shape", input_shape)
        self._check_ndim(shape)
        cl = self.data_format == "channels_last"
        spatial = shape[1:-1] if cl else shape[2:]
        out = []
        for axis, (L, k, s) in enumerate(zip(spatial, self.pool_size, self.strides)):
            if L is None:
                out.append(None)
                continue
            n = (L - k) // s + 1 if self.padding == "valid" else -(-L // s)
            if n < 1:
                msg = (f"{self._who()}: input {SPATIAL_NAMES[self.rank][axis]} (spatial axis {axis}) has size {L}, "
                       f"smaller than pool_size {k}, so padding=\"valid\" gives an empty output; input shape "
                       f"{format_shape(shape)} read as {layout(self.rank, self.data_format)}.")
                flipped = "channels_first" if cl else "channels_last"
                other = shape[2:] if cl else shape[1:-1]
                if all(o is None or o >= kk for o, kk in zip(other, self.pool_size)):
                    msg += f" If the input is laid out as {layout(self.rank, flipped)}, pass data_format=\"{flipped}\"."
                raise ValueError(msg + " Otherwise use padding=\"same\" or a smaller pool_size.")
            out.append(n)
        return (shape[0],) + tuple(out) + (shape[-1],) if cl else (shape[0], shape[1]) + tuple(out)


class _MaxPooling(_Pooling):
    def call(self, x):
        return numconv.max_pool(x, self.pool_size, self.strides, self.padding, self.data_format)


class _AveragePooling(_Pooling):
    def call(self, x):
        return numconv.average_pool(x, self.pool_size, self.strides, self.padding, self.data_format)


class MaxPooling1D(_MaxPooling):
    rank = 1

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling2D(_MaxPooling):
    rank = 2

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling3D(_MaxPooling):
    rank = 3

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


# Keras 3 gives AveragePooling*D no default pool_size.
class AveragePooling1D(_AveragePooling):
    rank = 1


class AveragePooling2D(_AveragePooling):
    rank = 2


class AveragePooling3D(_AveragePooling):
    rank = 3


class _GlobalPooling(Layer):
    _needs_channels = False

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.data_format = normalize_data_format(cls, data_format)
        if not isinstance(keepdims, bool):
            raise TypeError(f"{cls}: keepdims must be True or False; got {keepdims!r}.")
        self.keepdims = keepdims
        self._finish_init()

    def compute_output_shape(self, input_shape):
        """``(batch, channels)``, or with ``keepdims`` the spatial axes as 1s."""
        shape = _shape_tuple(type(self).__name__, "input_shape", input_shape)
        self._check_ndim(shape)
        cl = self.data_format == "channels_last"
        channels = shape[-1] if cl else shape[1]
        if not self.keepdims:
            return (shape[0], channels)
        ones = (1,) * self.rank
        return (shape[0],) + ones + (channels,) if cl else (shape[0], channels) + ones


class _GlobalMax(_GlobalPooling):
    def call(self, x):
        return numconv.global_max_pool(x, self.data_format, self.keepdims)


class _GlobalAverage(_GlobalPooling):
    def call(self, x):
        return numconv.global_average_pool(x, self.data_format, self.keepdims)


class GlobalMaxPooling1D(_GlobalMax):
    rank = 1


class GlobalMaxPooling2D(_GlobalMax):
    rank = 2


class GlobalMaxPooling3D(_GlobalMax):
    rank = 3


class GlobalAveragePooling1D(_GlobalAverage):
    rank = 1


class GlobalAveragePooling2D(_GlobalAverage):
    rank = 2


class GlobalAveragePooling3D(_GlobalAverage):
    rank = 3


_IN = {1: "(None, 10, 3)", 2: "(None, 10, 10, 3)", 3: "(None, 10, 10, 10, 3)"}
for _rank, _max, _avg in ((1, MaxPooling1D, AveragePooling1D), (2, MaxPooling2D, AveragePooling2D),
                          (3, MaxPooling3D, AveragePooling3D)):
    _max.__doc__ = _DOC.format(rank=_rank, kind="max", name=_max.__name__, op="max_pool",
                               pool_default=f", default {2 if _rank == 1 else (2,) * _rank}", same_note="",
                               example_args="", in_shape=_IN[_rank], out_shape="(None," + " 5," * _rank + " 3)")
    _avg.__doc__ = _DOC.format(rank=_rank, kind="average", name=_avg.__name__, op="average_pool",
                               pool_default=" (required, as in Keras 3)",
                               same_note="; windows average only the values inside the input",
                               example_args="3, strides=2, padding=\"same\"", in_shape=_IN[_rank],
                               out_shape="(None," + " 5," * _rank + " 3)")
for _rank, _max, _avg in ((1, GlobalMaxPooling1D, GlobalAveragePooling1D),
                          (2, GlobalMaxPooling2D, GlobalAveragePooling2D),
                          (3, GlobalMaxPooling3D, GlobalAveragePooling3D)):
    _max.__doc__ = _GLOBAL_DOC.format(rank=_rank, kind="max", name=_max.__name__, op="global_max_pool",
                                      in_shape=_IN[_rank], out_shape="(None, 3)")
    _avg.__doc__ = _GLOBAL_DOC.format(rank=_rank, kind="average", name=_avg.__name__, op="global_average_pool",
                                      in_shape=_IN[_rank], out_shape="(None, 3)")

# Keras 3's short names for the same classes.
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (GlobalAveragePooling1D, GlobalAveragePooling2D,
                                                     GlobalAveragePooling3D)
