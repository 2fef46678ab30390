"""The ``Layer`` base class and the argument checks the layers share.

Layers hold their weights as NumPy arrays in Keras's layouts and compute with
numconv's public ops (``numconv.conv``, ``numconv.max_pool``, ...); they never
call kernels. Arguments are checked in the constructor and in ``build``, with
messages in numconv's style: the layer and argument, what was received, what
was expected, and the fix.
"""
import inspect
import re
from collections import Counter

import numpy as np

from .._errors import shape_str
from .._spec import ACTIVATIONS, NUMPY_ACTIVATIONS, ndim_fix
from . import initializers

SPATIAL_NAMES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}
DATA_FORMATS = ("channels_last", "channels_first")
DTYPES = ("float32", "float64")

# Keras 1 argument names and their Keras 2/3 names, for a helpful TypeError.
_KERAS1_NAMES = {
    "nb_filter": "filters", "filter_length": "kernel_size", "nb_row": "kernel_size", "nb_col": "kernel_size",
    "subsample_length": "strides", "subsample": "strides", "border_mode": "padding",
    "dim_ordering": "data_format", "init": "kernel_initializer", "bias": "use_bias",
    "atrous_rate": "dilation_rate", "pool_length": "pool_size", "stride": "strides",
    "W_regularizer": "kernel_regularizer", "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint", "b_constraint": "bias_constraint", "output_dim": "filters",
    "input_dim": "input_shape (e.g. input_shape=(steps, input_dim))",
    "input_length": "input_shape (e.g. input_shape=(input_length, channels))",
}

_NAME_COUNTS = Counter()


def snake_case(name):
    """Keras's ``to_snake_case``: ``"Conv2DTranspose"`` -> ``"conv2d_transpose"``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _auto_name(cls_name):
    base = snake_case(cls_name)
    n = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if n == 0 else f"{base}_{n}"


def format_shape(shape):
    """``(None, 7, 2)`` as Keras prints it."""
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def layout(rank, data_format):
    names = ", ".join(SPATIAL_NAMES[rank])
    return f"(batch, {names}, channels)" if data_format == "channels_last" else f"(batch, channels, {names})"


class Layer:
    """Base of every numconv layer: Keras's ``build`` / ``__call__`` / weights protocol.

    Subclasses set ``rank`` (spatial axes, or None) and implement ``_weight_specs``
    (``[(attribute, shape, initializer)]`` for given input channels),
    ``compute_output_shape`` and ``call``.
    """

    rank = None
    _needs_channels = True  # conv layers create weights from the channel count; pooling does not

    def __init__(self, *, name=None, dtype=None, trainable=True, input_shape=None, batch_input_shape=None,
                 batch_size=None, seed=None, **kwargs):
        cls = type(self).__name__
        if kwargs:
            key = next(iter(kwargs))
            fix = (f" Keras 1's {key} is {_KERAS1_NAMES[key]} in Keras 2 and 3."
                   if key in _KERAS1_NAMES else "")
            raise TypeError(f"{cls}: unexpected keyword argument {key!r}.{fix} See help(numconv.layers.{cls}) "
                            "for the accepted arguments.")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{cls}: name must be a string; got {name!r}.")
        self.name = name or _auto_name(cls)
        self.dtype = _normalize_dtype(cls, dtype)
        self.trainable = bool(trainable)
        if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"{cls}: seed must be None or an int; got {seed!r}.")
        self.seed = seed
        self.built = False
        self.input_shape = None
        self._weight_names = []
        #: the constructor argument the pending shape came from, for the fix in _check_ndim's message
        self._shape_arg = None if batch_input_shape is None else "batch_input_shape"
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size,) + _shape_tuple(cls, "input_shape", input_shape)
            self._shape_arg = "input_shape"
        self._pending_shape = batch_input_shape

    # ------------------------------------------------------------ configs

    def get_config(self):
        """The constructor arguments, as Keras 3's ``layer.get_config()`` lists
        them: ``name``, ``trainable``, ``dtype``, then the layer's own (the same
        keys and values, initializers serialised as Keras serialises them,
        ``"linear"`` for no activation), so ``type(layer).from_config(config)``
        and Keras's ``keras.layers.<Layer>.from_config(config)`` rebuild it.
        numconv's own ``method`` and ``seed`` appear only when set (Keras takes
        neither). Weights are not part of it (``get_weights``)."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        for key, p in inspect.signature(type(self).__init__).parameters.items():
            if key == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            value = getattr(self, key)
            if key == "method" and value == "auto":
                continue
            if key.endswith("_initializer"):
                value = initializers.serialize(value)
            elif key == "activation" and value is None:
                value = "linear"
            config[key] = value
        if self.seed is not None:
            config["seed"] = self.seed
        return config

    @classmethod
    def from_config(cls, config):
        """A layer from ``get_config()``'s dict, numconv's or Keras 3's (its
        serialised initializers and DTypePolicy are read; training-only
        arguments such as regularizers are kept and ignored, as in the
        constructor). Unbuilt: build it, or let ``Sequential.from_config`` do."""
        if not isinstance(config, dict):
            raise TypeError(f"{cls.__name__}.from_config: config must be a dict (a layer's get_config()); "
                            f"got {type(config).__name__}.")
        return cls(**config)

    def _finish_init(self):
        """Called at the end of a subclass constructor: ``input_shape=`` builds now (as Keras 2 did)."""
        try:
            if self._pending_shape is not None:
                self.build(self._pending_shape)
        finally:
            del self._pending_shape
            self._shape_arg = None

    # ------------------------------------------------------------ weights

    def _weight_specs(self, channels):
        return []

    def _input_channels(self, input_shape):
        if self.rank is None:
            return None
        return input_shape[-1] if self.data_format == "channels_last" else input_shape[1]

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch first, which may be None).

        Checks the shape (number of axes, channels, output size) first and raises
        ``ValueError`` naming the fix when it cannot work.
        """
        input_shape = _shape_tuple(type(self).__name__, "input_shape", input_shape, allow_none=True)
        self._check_ndim(input_shape)
        channels = self._input_channels(input_shape)
        if self.rank is not None and self._needs_channels and channels is None:
            raise ValueError(f"{self._who()}: the channel axis of input_shape must be known to build the "
                             f"layer; got input_shape={format_shape(input_shape)} read as "
                             f"{layout(self.rank, self.data_format)}.")
        self._check_channels(input_shape, channels)
        self.compute_output_shape(input_shape)  # validates the spatial sizes
        self._weight_names = []
        for i, (attr, shape, init) in enumerate(self._weight_specs(channels)):
            seed = None if self.seed is None else (int(self.seed), i)
            initializer = initializers.get(init, seed=seed)
            w = np.asarray(initializer(shape, dtype=self.dtype), dtype=self.dtype)
            if w.shape != tuple(shape):
                raise ValueError(f"{self._who()}: the initializer for {attr} returned shape {w.shape}; "
                                 f"expected {tuple(shape)}.")
            setattr(self, attr, np.ascontiguousarray(w))
            self._weight_names.append(attr)
        self.input_shape = input_shape
        self._channels = channels
        self.built = True

    @property
    def weights(self):
        """The weight arrays themselves (not copies), in Keras's order."""
        return [getattr(self, n) for n in self._weight_names]

    @property
    def trainable_weights(self):
        return self.weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        return [] if self.trainable else self.weights

    def get_weights(self):
        """Copies of the weights in Keras's order and layouts (``[kernel, bias]``, ...)."""
        return [np.array(w) for w in self.weights]

    def set_weights(self, weights):
        """Load weights in Keras's order and layouts, e.g. ``keras_layer.get_weights()``.

        An unbuilt layer is built for the channel count these weights imply; where
        they imply none (no arrays, or a kernel of the wrong rank) the error lists
        the layouts the constructor's arguments call for.
        Raises ``ValueError`` on a wrong count or shape, saying what was expected.
        """
        weights = [np.asarray(w) for w in weights]
        if not self.built:
            channels = self._channels_from_weights(weights)
            if channels is not None:
                shape = [None] * (self.rank + 2)
                shape[-1 if self.data_format == "channels_last" else 1] = channels
                self.build(tuple(shape))
            elif self.rank is not None and self._needs_channels:
                raise self._unbuilt_weights_error(weights)
        expected = [(n, getattr(self, n).shape) for n in self._weight_names]
        names = ", ".join(f"{n} {shape_str(s)}" for n, s in expected) or "no weights"
        if len(weights) != len(expected):
            raise ValueError(f"{self._who()}.set_weights: expected a list of {_arrays(len(expected))} ({names}); "
                             f"got {len(weights)}." + self._bias_hint(len(weights), len(expected)))
        for (n, s), w in zip(expected, weights):
            if w.shape != s:
                raise ValueError(f"{self._who()}.set_weights: {n} must have shape {shape_str(s)} (Keras layout; "
                                 f"the layer expects {names}); got shape {shape_str(w.shape)}.")
            if w.dtype.kind not in "biuf":
                raise TypeError(f"{self._who()}.set_weights: {n} must be a real numeric array; got dtype {w.dtype}.")
        for (n, _), w in zip(expected, weights):
            setattr(self, n, np.ascontiguousarray(w, dtype=self.dtype))

    def _weight_layouts(self):
        """``[(name, shape)]`` of the weights in terms of the constructor's arguments,
        unknown sizes as their names (``"in_channels"``): what an unbuilt layer expects."""
        return []

    def _unbuilt_weights_error(self, weights):
        """The ValueError of ``set_weights`` on an unbuilt layer whose weights do not
        give its input channels (a kernel of the wrong rank, or no arrays at all)."""
        layouts = self._weight_layouts()
        names = ", ".join(f"{n} {format_shape(s)}" for n, s in layouts)
        who = f"{self._who()}.set_weights"
        if len(weights) != len(layouts):
            return ValueError(f"{who}: expected a list of {_arrays(len(layouts))} ({names}, Keras layouts for "
                              f"kernel_size={self.kernel_size}); got "
                              + (f"{_arrays(len(weights))} of shape{'s' * (len(weights) > 1)} "
                                 f"{', '.join(shape_str(w.shape) for w in weights)}" if weights else "an empty list")
                              + "." + self._bias_hint(len(weights), len(layouts)))
        name, shape = layouts[0]
        return ValueError(f"{who}: {name} must be {len(shape)}-D {format_shape(shape)} for kernel_size="
                          f"{self.kernel_size} (Keras layout; the layer expects {names}); got shape "
                          f"{shape_str(weights[0].shape)}.")

    def _bias_hint(self, got, expected):
        if getattr(self, "use_bias", None) is True and got == expected - 1:
            return " Was the Keras layer built with use_bias=False? Then pass use_bias=False here too."
        if getattr(self, "use_bias", None) is False and got == expected + 1:
            return " The list seems to include a bias; pass use_bias=True to the layer."
        return ""

    def _channels_from_weights(self, weights):
        return None

    def count_params(self):
        """Number of weight values (kernel and bias entries); 0 for a layer that
        has none (pooling), built or not, as in Keras."""
        if not self.built and self._needs_channels:
            raise ValueError(f"{self._who()}.count_params: the layer isn't built yet, so its weight shapes are "
                             "unknown. Build it with layer.build(batch_input_shape), by calling it on data, or "
                             "by passing input_shape= to the constructor.")
        return int(sum(w.size for w in self.weights))

    # ------------------------------------------------------------ calling

    @property
    def output_shape(self):
        """Keras 2's ``layer.output_shape``: ``compute_output_shape(layer.input_shape)``."""
        if self.input_shape is None:
            raise AttributeError(f"{self._who()} has no output_shape: it was not built with an input shape "
                                 "(pass input_shape= or call layer.build).")
        return self.compute_output_shape(self.input_shape)

    def __call__(self, x):
        """Apply the layer to ``x`` (array-like), building it on first use."""
        x = self._prepare(x)
        self._check_ndim(x.shape)
        if self.built:
            self._check_channels(x.shape, self._input_channels(x.shape))
        self.compute_output_shape(x.shape)  # the layer's own errors (and fixes) before the op's
        if not self.built:
            self.build((None,) + x.shape[1:])
        return self.call(x)

    def call(self, x):
        raise NotImplementedError

    def _prepare(self, x):
        try:
            a = np.asarray(x)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{self._who()}: x must be a numeric array-like; got {type(x).__name__} ({e}).") from None
        if a.dtype.kind == "c":
            raise TypeError(f"{self._who()}: x must be real; got dtype {a.dtype}. Keras layers compute in "
                            f"{self.dtype}; for complex data use numconv.conv directly.")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{self._who()}: x must have a numeric dtype; got dtype {a.dtype}.")
        # As Keras: inputs are cast to the layer's dtype (float32 unless dtype= says otherwise).
        return a.astype(self.dtype, copy=False)

    def _who(self):
        return f"{type(self).__name__} (layer {self.name!r})"

    # ------------------------------------------------------------ shape checks

    def _check_ndim(self, shape):
        if self.rank is None or len(shape) == self.rank + 2:
            return
        r = self.rank
        msg = (f"{self._who()} expects a {r + 2}-D input {layout(r, self.data_format)} for "
               f"data_format=\"{self.data_format}\"; got shape {format_shape(shape)}.")
        arg = getattr(self, "_shape_arg", None)
        if arg is not None or None in shape:  # a shape given to the constructor or to build, not data
            fix = self._input_shape_fix(shape, arg)
        else:
            channels = getattr(self, "_channels", None) if self.built and self._needs_channels else None
            fix = ndim_fix(shape, r, self.data_format, None if channels is None else channels.__eq__)
        if fix:
            msg += " " + fix
        raise ValueError(msg)

    def _input_shape_fix(self, shape, arg):
        """The likely fix for a shape with one axis too few (no channel axis: the
        MNIST mistake ``input_shape=(28, 28)``) or, for ``input_shape=``, one too
        many (the batch axis included), or None. ``arg``: the constructor argument
        it came from (None: ``build``'s argument)."""
        if not shape:
            return None
        inner = tuple(shape[1:])
        short = self.rank + 1 - len(inner)
        if short == -1 and arg == "input_shape":
            return (f"input_shape excludes the batch axis; use input_shape={format_shape(inner[1:])} (or "
                    f"batch_input_shape={format_shape(inner)}).")
        if short != 1:
            return None
        new = inner + (1,) if self.data_format == "channels_last" else (1,) + inner
        if arg == "input_shape":
            where = f"use input_shape={format_shape(new)}"
        else:
            where = f"use {'batch_input_shape=' if arg else ''}{format_shape((shape[0],) + new)}"
        return f"For inputs of one channel add the channel axis: {where}."

    def _check_channels(self, shape, channels):
        want = getattr(self, "_channels", None) if self.built and self._needs_channels else None
        if want is None or channels == want:
            return
        where = "last" if self.data_format == "channels_last" else "second"
        msg = (f"{self._who()} was built for {want} input channels (on the {where} axis, data_format="
               f"\"{self.data_format}\"); got {channels} channels in x of shape {format_shape(shape)}.")
        other = shape[1] if self.data_format == "channels_last" else shape[-1]
        if other == want:
            flipped = "channels_first" if self.data_format == "channels_last" else "channels_last"
            msg += (f" x looks laid out as {layout(self.rank, flipped)}: move its channel axis "
                    f"(np.moveaxis(x, {1 if flipped == 'channels_first' else -1}, "
                    f"{-1 if flipped == 'channels_first' else 1})) or build the layer with "
                    f"data_format=\"{flipped}\".")
        raise ValueError(msg)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"


# ---------------------------------------------------------------- argument checks


def _arrays(n):
    """``"1 array"``, ``"2 arrays"``."""
    return f"{n} array" + ("" if n == 1 else "s")


def _normalize_dtype(cls, dtype):
    if dtype is None:
        return np.dtype("float32")
    if isinstance(dtype, dict):  # Keras 3's serialised DTypePolicy: {"class_name": "DTypePolicy", "config": {...}}
        name = (dtype.get("config") or {}).get("name")
        if not (str(dtype.get("class_name", "")).endswith("DTypePolicy") and isinstance(name, str)):
            raise TypeError(f"{cls}: dtype must be 'float32', 'float64' or a Keras DTypePolicy config "
                            f"({{'class_name': 'DTypePolicy', 'config': {{'name': 'float32'}}}}); got {dtype!r}.")
        if name.startswith("mixed_"):
            raise TypeError(f"{cls}: dtype policy {name!r} computes in {name[6:]}; numconv layers compute in "
                            "float32 or float64. Use dtype='float32' (weights of a mixed-precision Keras model "
                            "are float32).")
        dtype = name
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{cls}: dtype must be 'float32' or 'float64'; got {dtype!r}.") from None
    if d.name not in DTYPES:
        raise TypeError(f"{cls}: dtype must be 'float32' or 'float64' (numconv layers compute natively in "
                        f"these); got {d.name!r}.")
    return d


def _shape_tuple(cls, arg, shape, allow_none=True):
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"{cls}: {arg} must be a tuple of ints (None for unknown sizes); got {shape!r}.") from None
    out = []
    for s in items:
        if s is None and allow_none:
            out.append(None)
        elif isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and s >= 0:
            out.append(int(s))
        else:
            raise TypeError(f"{cls}: {arg} must be a tuple of non-negative ints (None for unknown sizes); "
                            f"got {shape!r}.")
    return tuple(out)


def normalize_tuple(cls, arg, value, rank, allow_zero=False):
    """Keras's ``standardize_tuple``: an int or ``rank`` ints, each >= 1 (>= 0 with allow_zero)."""
    expected = f"an int or a tuple of {rank} ints"
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        values = (int(value),) * rank
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise TypeError(f"{cls}: {arg} must be {expected}; got {value!r}.") from None
        if len(values) != rank or not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                                          for v in values):
            raise ValueError(f"{cls}: {arg} must be {expected} (one per spatial axis); got {value!r}.")
        values = tuple(int(v) for v in values)
    low = 0 if allow_zero else 1
    if min(values) < low:
        raise ValueError(f"{cls}: {arg} must have every entry >= {low}; got {value!r}.")
    return values


def normalize_positive(cls, arg, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{cls}: {arg} must be a positive int; got {value!r}.")
    if value <= 0:
        raise ValueError(f"Invalid value for argument `{arg}` of {cls}: expected a strictly positive value; "
                         f"got {arg}={value}.")
    return int(value)


def normalize_padding(cls, padding, allowed):
    if not isinstance(padding, str) or padding.lower() not in allowed:
        listed = ", ".join(repr(p) for p in allowed)
        raise ValueError(f"{cls}: unknown padding {padding!r}; expected one of {listed}.")
    return padding.lower()


def normalize_data_format(cls, data_format):
    if data_format is None:
        return "channels_last"  # Keras's image_data_format() default
    if not isinstance(data_format, str) or data_format.lower() not in DATA_FORMATS:
        raise ValueError(f"{cls}: unknown data_format {data_format!r}; expected 'channels_last', "
                         "'channels_first' or None (channels_last).")
    return data_format.lower()


def normalize_activation(cls, activation):
    if activation is None or callable(activation):
        return activation
    if isinstance(activation, str):
        if activation not in ACTIVATIONS and activation not in NUMPY_ACTIVATIONS:
            listed = ", ".join(repr(a) for a in tuple(ACTIVATIONS) + tuple(NUMPY_ACTIVATIONS))
            raise ValueError(f"{cls}: unknown activation {activation!r}; expected None, one of {listed}, or a "
                             "callable applied to the output array.")
        return activation
    raise TypeError(f"{cls}: activation must be None, an activation name or a callable; got {activation!r}.")


def normalize_initializer(cls, arg, value):
    if value is None:
        raise TypeError(f"{cls}: {arg} must be an initializer name, Initializer or callable; got None.")
    try:
        initializers.get(value)  # validate now; the layer creates its own instance (with its seed) at build
    except (ValueError, TypeError) as e:
        raise type(e)(f"{cls}: {arg}: {e}") from None
    return value
