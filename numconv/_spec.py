"""Normalise and validate every argument of the conv family into one ``ConvSpec``.

Everything a user can get wrong is checked here, before any copy or compile, and
the arrays leave in canonical form: channels-last, 3 spatial axes (rank 1 and 2
gain leading singleton axes so the pixel axis is always W), C-contiguous, writable,
in one of the four kernel dtypes. Later layers trust what leaves this module.
"""
import functools
import inspect
import operator
from dataclasses import dataclass

import numpy as np

from ._errors import shape_str, type_error, unknown_option, value_error, x_axes
from ._kernels.act import ACTIVATIONS
from ._kernels.layout import to_channels_first, to_channels_last

PADDINGS = ("valid", "same", "causal", "full")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
DATA_FORMATS = ("channels_last", "channels_first")
KERNEL_DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "complex64", "complex128"))
_SPATIAL_NAMES = {1: ("steps",), 2: ("height", "width"), 3: ("depth", "height", "width")}


@dataclass(frozen=True)
class ConvSpec:
    """A validated convolution, in canonical (3 spatial axes, channels-last) form.

    ``in_spatial``, ``kernel_spatial``, ``out_spatial``, ``strides``, ``dilations``
    and ``pads`` always have 3 entries; ranks 1 and 2 lead with singleton axes
    (size 1, stride 1, dilation 1, pads (0, 0)). ``pads`` holds explicit
    ``(before, after)`` pairs whatever form ``padding`` had.
    """

    fn: str
    rank: int
    batch: int
    channels: int
    filters: int
    groups: int
    in_spatial: tuple
    kernel_spatial: tuple
    out_spatial: tuple
    strides: tuple
    dilations: tuple
    pads: tuple
    padding_mode: str
    data_format: str
    dtype: np.dtype
    activation: object  # int code (see ACTIVATIONS) or a callable applied afterwards
    method: str
    integer_inputs: bool = False  # x, kernel (and bias) all bool/int: keep results exact

    @property
    def output_shape(self):
        """The user-facing output shape (rank spatial axes, ``data_format`` order)."""
        spatial = self.out_spatial[3 - self.rank:]
        if self.data_format == "channels_first":
            return (self.batch, self.filters) + spatial
        return (self.batch,) + spatial + (self.filters,)

    @property
    def canonical_output_shape(self):
        return (self.batch,) + self.out_spatial + (self.filters,)


# ---------------------------------------------------------------- arrays and dtypes

_MISSING = object()


def per_spec(fn):
    """Decorator: remember ``fn(spec, *args)`` (hashable ``args``) on the spec
    itself, beside its fields (a frozen dataclass's ``__dict__``; equality, hashing
    and ``dataclasses.replace`` see only the fields). For the pure functions of a
    spec that every call of a layer asks again (the path predicates, the kernels'
    static arguments): with ``spec_from_shapes`` handing back the same spec per
    arguments, a small layer's call no longer recomputes them (~1-2 us each)."""
    name = fn.__qualname__

    @functools.wraps(fn)
    def wrapper(spec, *args):
        memo = spec.__dict__.get("_memo")
        if memo is None:
            memo = spec.__dict__["_memo"] = {}
        key = (name,) + args
        value = memo.get(key, _MISSING)
        if value is _MISSING:
            value = memo[key] = fn(spec, *args)
        return value
    return wrapper


def native(arr):
    """``arr`` in the machine's byte order (a big-endian '>f4' from a file or a
    network buffer is the same numbers; kernels and pocketfft take native only)."""
    if arr.dtype.isnative:
        return arr
    return arr.astype(arr.dtype.newbyteorder("="))


def normalize_array(fn, arg, a):
    """``a`` as an ndarray in a kernel-ready precision (not yet the common dtype).

    bool and integers -> float64, float16 -> float32; float32/64 and complex64/128
    stay. Other dtypes raise TypeError. Returns ``(array, integer_valued)``, the
    flag saying the input was bool/int (its exact results should stay exact).
    """
    try:
        arr = native(np.asarray(a))
    except (ValueError, TypeError, RuntimeError) as e:  # ragged lists; a torch tensor that requires grad
        raise type_error(fn, arg, "must be a numeric array-like", f"{type(a).__name__} ({e})") from None
    dt = arr.dtype
    if dt.kind in "biu":
        return arr.astype(np.float64), True
    if dt == np.float16:
        return arr.astype(np.float32), False
    if dt in KERNEL_DTYPES:
        return arr, False
    if dt.kind in "fc":  # long double: no kernel precision, don't truncate silently
        raise type_error(fn, arg, "must have dtype float32, float64, complex64 or complex128",
                         f"dtype {dt}", f"Convert it explicitly, e.g. {arg}.astype(np.float64).")
    raise type_error(fn, arg, "must have a numeric dtype (bool, int, float or complex)",
                     f"dtype {dt}", "Object and string arrays are not converted implicitly; "
                     f"use np.asarray({arg}, dtype=np.float64) if the values are numbers.")


def canonical_array(a, dtype, shape):
    """C-contiguous, writable, ``dtype`` copy-or-view of ``a`` reshaped to ``shape``.

    Read-only arrays are copied: Numba compiles a separate specialisation for
    them, and a copy is cheaper than a compile. The input itself is never written.
    """
    c = np.ascontiguousarray(a, dtype=dtype)
    if not c.flags.writeable:
        c = c.copy()
    return c.reshape(shape)


# ---------------------------------------------------------------- integer parameters

INDEX_LIMIT = 2**31 - 1  # strides, dilations, pads, pool sizes and lengths: no layer needs more


def index(v):
    """``operator.index`` that refuses bools (``strides=True`` is a slip, not a stride of 1)."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"bool {v!r}")
    return operator.index(v)


def check_limit(fn, arg, values, shown):
    if any(v > INDEX_LIMIT for v in values):
        raise value_error(fn, arg, f"must have every entry <= 2**31 - 1 = {INDEX_LIMIT}", shown,
                          "A value that large describes no real layer; check the argument for a slip.")


def normalize_tuple(fn, arg, value, rank, minimum=1):
    """An int or a sequence of ``rank`` ints, each >= ``minimum``, as a tuple."""
    try:
        items = (index(value),) * rank
    except TypeError:  # (a bool lands here too: not iterable, the same TypeError below)
        try:
            items = tuple(index(v) for v in value)
        except TypeError:
            raise type_error(fn, arg, f"must be an int or a tuple of {rank} ints", repr(value)) from None
        if len(items) != rank:
            raise value_error(fn, arg, f"must be an int or a tuple of {rank} ints (one per spatial axis)",
                              repr(value))
    if any(v < minimum for v in items):
        raise value_error(fn, arg, f"must have every entry >= {minimum}", repr(value))
    check_limit(fn, arg, items, repr(value))
    return items


def _normalize_groups(fn, groups, channels, kernel_in, filters, x_shape, kernel_shape, data_format):
    if groups is None:
        if channels % kernel_in:
            raise _channel_error(fn, channels, kernel_in, x_shape, kernel_shape, data_format)
        groups = channels // kernel_in
        if filters % groups:  # the caller gave no groups: say where this count came from
            plain = tuple(kernel_shape[:-2]) + (channels, filters)
            raise value_error(fn, "kernel", f"must have filters divisible by groups = {groups}, the count inferred "
                              f"from x's {channels} channels over the kernel's {kernel_in} input channel(s) per "
                              "group", f"shape {shape_str(kernel_shape)} ({filters} filters)",
                              f"For a plain convolution give the kernel all {channels} input channels, shape "
                              f"{shape_str(plain)}; for a grouped one, a multiple of {groups} filters.")
    else:
        try:
            groups = index(groups)
        except TypeError:
            raise type_error(fn, "groups", "must be a positive int or None", repr(groups)) from None
        if groups < 1:
            raise value_error(fn, "groups", "must be >= 1", repr(groups))
        if channels % groups:
            raise value_error(fn, "groups", f"must divide the input channels ({channels})", groups,
                              "Choose groups among the common divisors of in_channels and filters.")
        if channels // groups != kernel_in:
            raise _channel_error(fn, channels, kernel_in, x_shape, kernel_shape, data_format, groups)
    if filters % groups:
        raise value_error(fn, "groups", f"must divide the number of filters ({filters}, "
                          f"the last axis of kernel shape {shape_str(kernel_shape)})", groups,
                          "Choose groups among the common divisors of in_channels and filters.")
    return groups


def _channel_error(fn, channels, kernel_in, x_shape, kernel_shape, data_format, groups=None):
    where = "last" if data_format == "channels_last" else "second"
    if groups is None:
        expected = (f"must have a channel count divisible by the kernel's in_channels // groups = {kernel_in} "
                    f"(kernel shape {shape_str(kernel_shape)})")
    else:
        expected = (f"must have groups * {kernel_in} = {groups * kernel_in} channels for groups={groups} and "
                    f"kernel shape {shape_str(kernel_shape)}")
    fixes = []
    other = x_shape[1] if data_format == "channels_last" else x_shape[-1]
    if other % kernel_in == 0 and (groups is None or other == groups * kernel_in):
        flipped = "channels_first" if data_format == "channels_last" else "channels_last"
        fixes.append(f'If x is laid out as {_layout(len(x_shape) - 2, flipped)}, pass data_format="{flipped}".')
    torch_in = kernel_shape[1]  # PyTorch's layout (filters, in_channels // groups, *kernel_size)
    if channels % torch_in == 0 and (groups is None or channels == groups * torch_in):
        r = len(kernel_shape) - 2
        axes = tuple(range(2, r + 2)) + (1, 0)
        fixes.append(f"If kernel is in PyTorch's layout (filters, in_channels // groups, *kernel_size), take it to "
                     f"Keras's with np.transpose(kernel, {axes}).")
    fix = " ".join(fixes) or None
    return value_error(fn, "x", expected,
                       f"{channels} channels on the {where} axis of shape {shape_str(x_shape)} "
                       f"(data_format=\"{data_format}\")", fix)


def _layout(rank, data_format):
    names = _SPATIAL_NAMES[rank]
    if data_format == "channels_last":
        return "(batch, " + ", ".join(names) + ", channels)"
    return "(batch, channels, " + ", ".join(names) + ")"


# ---------------------------------------------------------------- padding

def same_pads(length, k, s, d):
    """TensorFlow/Keras "same": ``out = ceil(L / s)``, the extra pad goes after."""
    out = -(-length // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - length, 0)
    return total // 2, total - total // 2


def normalize_padding(fn, padding, rank, in_spatial, kernel_spatial, strides, dilations):
    """Explicit ``(before, after)`` pads per spatial axis (``rank`` pairs)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * rank
        if mode == "same":
            return tuple(same_pads(L, k, s, d) for L, k, s, d in zip(in_spatial, kernel_spatial, strides, dilations))
        if mode == "full":
            return tuple((d * (k - 1),) * 2 for k, d in zip(kernel_spatial, dilations))
        if mode == "causal":
            if rank != 1:
                raise value_error(fn, "padding", "\"causal\" is defined for rank-1 (temporal) convolutions only",
                                  f"'causal' with a rank-{rank} kernel",
                                  "Use padding='same' or explicit (before, after) pairs per axis.")
            return ((dilations[0] * (kernel_spatial[0] - 1), 0),)
        raise ValueError(f"{fn}: unknown padding {padding!r}; expected one of {', '.join(map(repr, PADDINGS))}, "
                         "an int, a tuple of ints or a tuple of (before, after) pairs.")
    expected = (f"must be one of {', '.join(map(repr, PADDINGS))}, an int, a tuple of {rank} ints "
                f"or a tuple of {rank} (before, after) pairs, all >= 0")
    try:
        p = index(padding)
        pairs = ((p, p),) * rank
    except TypeError:
        try:
            items = list(padding)
        except TypeError:
            raise type_error(fn, "padding", expected, repr(padding)) from None
        try:
            if rank == 1 and len(items) == 2 and not hasattr(items[0], "__len__"):
                pairs = ((index(items[0]), index(items[1])),)  # ZeroPadding1D reading
            elif all(hasattr(i, "__len__") for i in items):
                pairs = tuple((index(b), index(a)) for b, a in items)
            else:
                pairs = tuple((index(i), index(i)) for i in items)
        except (TypeError, ValueError):
            raise type_error(fn, "padding", expected, repr(padding)) from None
        if len(pairs) != rank:
            raise value_error(fn, "padding", expected, repr(padding))
    if any(v < 0 for pair in pairs for v in pair):
        raise value_error(fn, "padding", expected, repr(padding))
    check_limit(fn, "padding", [v for pair in pairs for v in pair], repr(padding))
    return pairs


def _check_padding_mode(fn, padding_mode, pads, in_spatial):
    if not isinstance(padding_mode, str) or padding_mode.lower() not in PADDING_MODES:
        raise unknown_option(fn, "padding_mode", padding_mode, PADDING_MODES)
    mode = padding_mode.lower()
    for axis, ((before, after), L) in enumerate(zip(pads, in_spatial)):
        if mode == "reflect" and max(before, after) >= L:
            raise value_error(fn, "padding", f"must be smaller than the input size {L} on spatial axis {axis} "
                              "for padding_mode=\"reflect\"", f"pads {(before, after)}",
                              "Use padding_mode=\"replicate\" or \"zeros\", or a smaller padding.")
        if mode == "circular" and max(before, after) > L:
            raise value_error(fn, "padding", f"must be at most the input size {L} on spatial axis {axis} "
                              "for padding_mode=\"circular\"", f"pads {(before, after)}",
                              "Use a smaller padding or another padding_mode.")
        if mode == "replicate" and L == 0 and max(before, after) > 0:  # no edge value to repeat (as PyTorch)
            raise value_error(fn, "padding", f"must be 0 on spatial axis {axis}, of size 0, for "
                              "padding_mode=\"replicate\"", f"pads {(before, after)}",
                              "An empty axis has no edge value to repeat: use padding_mode=\"zeros\".")
    return mode


def output_length(L, k, s, d, before, after):
    """``floor((L + before + after - d*(k-1) - 1) / s) + 1`` (can be < 1: caller checks)."""
    return (L + before + after - d * (k - 1) - 1) // s + 1


# ---------------------------------------------------------------- activation, method, out

def _softmax(y):
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(y):
    shifted = y - y.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _hard_silu(y):
    return y * (np.clip(y + 3, 0, 6) / 6)  # Keras's x * hard_sigmoid(x); y * 6 first overflowed past 5.7e37


def _softplus(y):
    return np.logaddexp(y, y.dtype.type(0))


#: Keras 3 activations applied after the kernels, as NumPy functions of the
#: result in the user's layout (softmax and log_softmax over its last axis, as
#: Keras's do whatever the data format): no kernel fuses them.
NUMPY_ACTIVATIONS = {
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "mish": lambda y: y * np.tanh(_softplus(y)),
    "hard_silu": _hard_silu,
    "hard_swish": _hard_silu,  # (Keras's alias)
    "hard_tanh": lambda y: np.clip(y, -1, 1),
    "log_sigmoid": lambda y: -_softplus(-y),
    "celu": lambda y: np.maximum(y, 0) + np.minimum(np.expm1(np.minimum(y, 0)), 0),
    "tanh_shrink": lambda y: y - np.tanh(y),
    "hard_shrink": lambda y: np.where(np.abs(y) > 0.5, y, y.dtype.type(0)),
    "soft_shrink": lambda y: np.sign(y) * np.maximum(np.abs(y) - y.dtype.type(0.5), 0),
    "squareplus": lambda y: (y + np.sqrt(y * y + 4)) / 2,
    "sparse_plus": lambda y: np.where(y <= -1, 0, np.where(y >= 1, y, (y + 1) ** 2 / 4)).astype(y.dtype),
}


def normalize_activation(fn, activation, dtype):
    """An int code for the fused kernel activation, or a callable (applied afterwards)."""
    if activation is None:
        return 0
    if isinstance(activation, str) and activation.lower() in NUMPY_ACTIVATIONS:
        if dtype.kind == "c":
            raise type_error(fn, "activation", "must be None, 'linear' or a callable for complex data",
                             f"{activation!r} with dtype {dtype}",
                             "Keras activations are defined on real numbers; pass a callable to "
                             "transform complex outputs.")
        return NUMPY_ACTIVATIONS[activation.lower()]
    if isinstance(activation, str):
        code = ACTIVATIONS.get(activation.lower())
        if code is None:
            raise unknown_option(fn, "activation", activation, tuple(ACTIVATIONS) + tuple(NUMPY_ACTIVATIONS))
        if code and dtype.kind == "c":
            raise type_error(fn, "activation", "must be None, 'linear' or a callable for complex data",
                             f"{activation!r} with dtype {dtype}",
                             "Keras activations are defined on real numbers; pass a callable to "
                             "transform complex outputs.")
        return code
    if callable(activation):
        return activation
    raise type_error(fn, "activation", "must be None, an activation name or a callable", repr(activation))


def normalize_method(fn, method, methods):
    if not isinstance(method, str) or method.lower() not in ("auto",) + tuple(methods):
        raise unknown_option(fn, "method", method, ("auto",) + tuple(methods))
    return method.lower()


def check_out(fn, out, shape, dtype):
    """``out`` must be a writable ndarray of exactly the result's shape and dtype."""
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise type_error(fn, "out", "must be a numpy.ndarray", type(out).__name__)
    if out.dtype != dtype:
        raise type_error(fn, "out", f"must have the result dtype {dtype}", f"dtype {out.dtype}",
                         f"Allocate it with np.empty({shape_str(shape)}, dtype=np.{dtype.name}).")
    if out.shape != tuple(shape):
        raise value_error(fn, "out", f"must have the result shape {shape_str(shape)}",
                          f"shape {shape_str(out.shape)}")
    if not out.flags.writeable:
        raise value_error(fn, "out", "must be writable", "a read-only array")


def apply_callable(fn, activation, result, out):
    """A callable activation's value on the op's result, returned as Keras returns
    ``activation(outputs)``; with ``out`` it is written into ``out``. It must be an
    array of the result's shape: an in-place function that returns None, a
    reduction or a scalar would otherwise be broadcast into garbage."""
    value = activation(result)
    name = getattr(activation, "__name__", type(activation).__name__)
    if value is None:
        raise type_error(fn, "activation", f"must return the activated array (callable {name})", "None",
                         "An in-place function must still return its array: def f(y): np.maximum(y, 0, out=y); "
                         "return y.")
    given = type(value).__name__
    try:
        value = np.asarray(value)
    except Exception as e:
        raise type_error(fn, "activation", f"must return an array (callable {name})", f"{given} ({e})") from None
    if value.dtype.kind not in "biufc":
        raise type_error(fn, "activation", f"must return a numeric array (callable {name})",
                         f"{given} of dtype {value.dtype}")
    if value.shape != result.shape:
        raise value_error(fn, "activation", f"must return an array of the result's shape {shape_str(result.shape)} "
                          f"(callable {name})", f"shape {shape_str(value.shape)}"
                          + ("" if given == "ndarray" else f" ({given})"),
                          "Apply reductions or reshapes to the op's result, after the call.")
    if out is None:
        return value
    if not np.can_cast(value.dtype, out.dtype, "same_kind"):
        raise type_error(fn, "activation", f"must return values castable to out's dtype {out.dtype} "
                         f"(callable {name})", f"dtype {value.dtype}", "Drop out= to get the value as it is.")
    out[...] = value
    return out


def _array_view(a):
    """``a`` as the ndarray over its memory (a torch tensor, a memoryview or an
    ``__array__`` object can view ``out``'s buffer), or None where it has none."""
    if a is None or isinstance(a, np.ndarray):
        return a
    try:
        return np.asarray(a)
    except Exception:  # the op itself reports what is wrong with the argument
        return None


def out_apart(*names):
    """Decorator for a public op with an ``out=`` keyword: where ``out`` overlaps
    one of its array arguments ``names`` in memory, the op computes into a fresh
    array and copies that into ``out`` (as NumPy's ufuncs do). The kernels write
    ``out`` while still reading their inputs: a 3 x 3 conv written into its own
    input had returned garbage (errors ~1e7)."""
    def decorate(f):
        position = {n: i for i, n in enumerate(inspect.signature(f).parameters) if n in names}

        @functools.wraps(f)
        def op(*args, **kwargs):
            out = kwargs.get("out")
            if isinstance(out, np.ndarray):
                given = [args[i] if i < len(args) else kwargs.get(n) for n, i in position.items()]
                if any(np.may_share_memory(out, a) for a in map(_array_view, given) if a is not None):
                    result = f(*args, **{**kwargs, "out": None})
                    check_out(f.__name__, out, result.shape, result.dtype)
                    out[...] = result
                    return out
            return f(*args, **kwargs)
        return op
    return decorate


# ---------------------------------------------------------------- the conv spec

def ndim_fix(x_shape, rank, data_format, fits=None):
    """The likely fix for an ``x`` short of axes (a shared hint of the ops' and the
    layers' errors), or None. One axis short: a missing batch axis (a single
    example) where the axis in the channels' place holds a channel count that
    ``fits``, a missing channel axis (examples of one channel) where one channel
    fits; both readings where both fit, or where ``fits`` is None (the channels
    are not known yet). Two axes short: both, where one channel fits."""
    x_shape = tuple(x_shape)
    if None in x_shape:
        return None
    cl = data_format == "channels_last"
    ok = fits or (lambda c: True)
    short = rank + 2 - len(x_shape)
    if short == 1 and len(x_shape) >= 2:
        readings = []
        if ok(x_shape[-1] if cl else x_shape[0]):
            readings.append(f"for a single example add a batch axis: x.reshape{shape_str((1,) + x_shape)}")
        if ok(1):
            new = x_shape + (1,) if cl else x_shape[:1] + (1,) + x_shape[1:]
            readings.append(f"for a batch of one-channel examples add a channel axis: x.reshape{shape_str(new)}")
        fix = "; ".join(readings)
        return fix[:1].upper() + fix[1:] + "." if fix else None
    if short == 2 and ok(1):
        new = (1,) + x_shape + (1,) if cl else (1, 1) + x_shape
        return f"For a single example of one channel add both axes: x.reshape{shape_str(new)}."
    return None


def _x_ndim_error(fn, x_shape, rank, data_format, kernel_in, groups, filters, kernel_shape=None):
    """``x`` has not the ``rank + 2`` axes the kernel implies. ``kernel_shape``
    (where the rank came from the kernel, ``conv``): an ``x`` of another valid rank
    may be right and the kernel wrong; with more axes than the kernel implies that
    is the likelier reading (a kernel missing an axis), so the error names the
    kernel, else the reshapes of ``x`` come first and the kernel's reading after."""
    if kernel_shape is not None and 3 <= len(x_shape) <= 5:
        r = len(x_shape) - 2
        names = ", ".join(f"k_{n}" for n in _SPATIAL_NAMES[r])
        axes = "axis" if rank == 1 else "axes"
        kernel_reading = (f"the kernel must be {r + 2}-D ({names}, in_channels // groups, filters) "
                          f"{x_axes(x_shape, data_format)}; got kernel shape {shape_str(kernel_shape)}, {rank} "
                          f"spatial {axes} (kernel.ndim - 2)")
        if len(x_shape) > rank + 2:
            return ValueError(f"{fn}: {kernel_reading}.")
    else:
        kernel_reading = None
    try:
        groups = None if groups is None else index(groups)
        if groups is None:  # c channels infer groups c // kernel_in, which must divide the filters
            fits = lambda c: c % kernel_in == 0 and filters % (c // kernel_in) == 0  # noqa: E731
        else:
            fits = lambda c: c == groups * kernel_in  # noqa: E731
    except TypeError:  # reported later, by its own check
        fits = None
    fix = ndim_fix(x_shape, rank, data_format, fits)
    if kernel_reading is not None:
        fix = (fix + " Or, if x is right, the kernel has the wrong rank: " if fix else "Or the kernel: ") \
            + kernel_reading + "."
    return ValueError(f"{fn} expects a {rank + 2}-D input x {_layout(rank, data_format)} for "
                      f"data_format=\"{data_format}\"; got shape {shape_str(x_shape)}." + (f" {fix}" if fix else ""))


def conv_spec(fn, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
              padding_mode, activation, method, methods, rank=None, layout=True):
    """Validate ``conv``'s arguments; return ``(spec, x5, w5, b)``.

    ``x5`` is (N, D, H, W, C) and ``w5`` (KD, KH, KW, C // groups, K), both canonical
    (see ``canonical_array``) in ``spec.dtype``; ``b`` is a (K,) array or None.
    With ``layout=False``, ``x5`` is ``x`` as an array in its own layout and dtype
    (``canonical_input`` converts it), for paths that read channels_first directly.
    """
    x, x_int = normalize_array(fn, "x", x)
    kernel, k_int = normalize_array(fn, "kernel", kernel)
    b_int = True
    if bias is not None:
        bias, b_int = normalize_array(fn, "bias", bias)
    dtype = _result_type(x.dtype, kernel.dtype, *(() if bias is None else (bias.dtype,)))
    spec = spec_from_shapes(fn, x.shape, kernel.shape, None if bias is None else bias.shape, dtype,
                            strides, padding, dilation_rate, groups, data_format, padding_mode, activation,
                            method, methods, rank, x_int and k_int and b_int)
    return (spec, canonical_input(spec, x) if layout else x, canonical_kernel(spec, kernel),
            None if bias is None else canonical_array(bias, dtype, (spec.filters,)))


@functools.lru_cache(maxsize=None)
def _result_type(*dtypes):
    """``np.result_type`` of kernel dtypes (0.6 us a call; remembered, 0.1)."""
    return np.result_type(*dtypes)


def canonical_input(spec, x, shared=False):
    """``x`` (user layout) as the canonical (N, D, H, W, C) array in ``spec.dtype``
    (``shared``: see ``_kernels/layout.swap_last_axes``)."""
    if spec.data_format == "channels_first":
        return to_channels_last(x, spec.dtype, shared).reshape((spec.batch,) + spec.in_spatial + (spec.channels,))
    return canonical_array(x, spec.dtype, (spec.batch,) + spec.in_spatial + (spec.channels,))


def canonical_kernel(spec, kernel):
    """``kernel`` (Keras layout) as the canonical (KD, KH, KW, C // groups, K) array."""
    return canonical_array(kernel, spec.dtype,
                           spec.kernel_spatial + (spec.channels // spec.groups, spec.filters))


def canonical_output(spec, y):
    """``y`` in the user-facing layout (``spec.output_shape``) as canonical (N, OD, OH, OW, K)."""
    if spec.data_format == "channels_first":
        return to_channels_last(y, spec.dtype).reshape(spec.canonical_output_shape)
    return canonical_array(y, spec.dtype, spec.canonical_output_shape)


def deliver(y, out):
    """The result ``y`` as a new C-contiguous array, or copied into ``out`` (checked
    by ``check_out``) and ``out`` returned."""
    if out is None:
        return np.ascontiguousarray(y)
    out[...] = y
    return out


def user_layout(spec, y5, spatial, channels, out, shared=False):
    """Canonical (N, 3 spatial, C) ``y5`` in the user's rank and ``spec.data_format``,
    delivered (``deliver``) as a new array or into ``out`` (``shared``: see
    ``_kernels/layout.swap_last_axes``)."""
    y = y5.reshape((y5.shape[0],) + tuple(spatial[3 - spec.rank:]) + (channels,))
    if spec.data_format == "channels_first":
        return to_channels_first(y, out, shared)
    return deliver(y, out)


def _strict(v):
    """``v`` as a cache key that tells apart values Python calls equal but the
    validation does not accept alike (``True`` and ``1``, ``1.0`` and ``1``): each
    item tagged with its type; None if ``v`` holds anything but ints, floats,
    strings, None and tuples or lists of them (a callable activation: never cached)."""
    t = type(v)
    if t is int or t is str or v is None or t is float:
        return t, v
    if t is tuple or t is list:
        items = tuple(_strict(e) for e in v)
        return None if None in items else (t, items)
    return None


#: option types that key a spec as they are (``spec_from_shapes``)
_SIMPLE = frozenset((int, str, type(None)))

#: validated specs by their arguments (``_strict`` keys), most recent last
_SPECS = {}
#: specs kept: a few layers' worth of forward and gradient calls
_SPECS_KEPT = 256


def spec_from_shapes(fn, x_shape, kernel_shape, bias_shape, dtype, strides, padding, dilation_rate, groups,
                     data_format, padding_mode, activation, method, methods, rank=None, integer_inputs=False):
    """The validated ``ConvSpec`` for a conv of an ``x_shape`` input with a ``kernel_shape``
    kernel (Keras layout) in ``dtype``; no array is touched. Raises as ``conv`` does.

    Validation costs ~5 us of Python per call (a fifth of a small layer's overhead),
    so specs are remembered per arguments; failures are not (they raise each time)."""
    options = (strides, padding, dilation_rate, groups, data_format, padding_mode, activation, method)
    kinds = tuple(map(type, options))
    # plain ints, strings and None (the usual call) key as they are, with their
    # types; anything else goes through _strict
    options = (kinds, options) if _SIMPLE.issuperset(kinds) else _strict(options)
    key = None if options is None else (
        fn, tuple(x_shape), tuple(kernel_shape), None if bias_shape is None else tuple(bias_shape),
        np.dtype(dtype), options, id(methods), rank, bool(integer_inputs))
    spec = None if key is None else _SPECS.get(key)
    if spec is None:
        spec = _validated(fn, x_shape, kernel_shape, bias_shape, dtype, strides, padding, dilation_rate, groups,
                          data_format, padding_mode, activation, method, methods, rank, integer_inputs)
        if key is not None:
            remember(_SPECS, _SPECS_KEPT, key, spec)
    return spec


def remember(table, limit, key, value):
    """``table[key] = value`` in a remembered-values dict of at most ``limit``
    entries, the oldest dropped first; safe against other threads changing it."""
    if len(table) >= limit:
        try:
            table.pop(next(iter(table)), None)
        except (StopIteration, RuntimeError):  # another thread changed it meanwhile
            pass
    table[key] = value


def _validated(fn, x_shape, kernel_shape, bias_shape, dtype, strides, padding, dilation_rate, groups,
               data_format, padding_mode, activation, method, methods, rank, integer_inputs):
    x_shape, kernel_shape = tuple(x_shape), tuple(kernel_shape)
    kndim = len(kernel_shape)
    inferred = rank is None  # the rank from the kernel, not checked against the entry point's
    if rank is None:
        rank = kndim - 2
        if rank not in (1, 2, 3):
            raise value_error(fn, "kernel", "must be 3-D, 4-D or 5-D: (*kernel_size, in_channels // groups, "
                              "filters) for 1, 2 or 3 spatial dimensions", f"shape {shape_str(kernel_shape)}")
    elif kndim != rank + 2:
        names = ", ".join(f"k_{n}" for n in _SPATIAL_NAMES[rank])
        raise value_error(fn, "kernel", f"must be {rank + 2}-D ({names}, in_channels // groups, filters)",
                          f"shape {shape_str(kernel_shape)}")
    if not isinstance(data_format, str) or data_format.lower() not in DATA_FORMATS:
        raise unknown_option(fn, "data_format", data_format, DATA_FORMATS)
    data_format = data_format.lower()
    kernel_in, filters = kernel_shape[-2], kernel_shape[-1]
    if 0 in kernel_shape:
        raise value_error(fn, "kernel", "must have no zero-length axis (kernel sizes, in_channels "
                          "and filters are all >= 1)", f"shape {shape_str(kernel_shape)}")
    if len(x_shape) != rank + 2:
        raise _x_ndim_error(fn, x_shape, rank, data_format, kernel_in, groups, filters,
                            kernel_shape if inferred and fn in ("conv", "choose_conv_method") else None)
    if data_format == "channels_last":
        spatial, channels = x_shape[1:-1], x_shape[-1]
    else:
        spatial, channels = x_shape[2:], x_shape[1]
    if channels == 0:
        raise value_error(fn, "x", "must have at least one channel", f"shape {shape_str(x_shape)}")
    kernel_spatial = kernel_shape[:-2]
    strides = normalize_tuple(fn, "strides", strides, rank)
    dilations = normalize_tuple(fn, "dilation_rate", dilation_rate, rank)
    pads = normalize_padding(fn, padding, rank, spatial, kernel_spatial, strides, dilations)
    mode = _check_padding_mode(fn, padding_mode, pads, spatial)
    out_spatial = []
    for axis, (L, k, s, d, (before, after)) in enumerate(zip(spatial, kernel_spatial, strides, dilations, pads)):
        n = output_length(L, k, s, d, before, after)
        if n < 1:
            raise _spatial_error(fn, axis, rank, L, before, after, k, d, x_shape, kernel_shape, data_format)
        out_spatial.append(n)
    groups = _normalize_groups(fn, groups, channels, kernel_in, filters, x_shape, kernel_shape, data_format)
    if bias_shape is not None and tuple(bias_shape) != (filters,):
        raise value_error(fn, "bias", f"must have shape ({filters},), one value per filter",
                          f"shape {shape_str(bias_shape)}")
    act = normalize_activation(fn, activation, dtype)
    method = normalize_method(fn, method, methods)

    lead = 3 - rank
    return ConvSpec(
        fn=fn, rank=rank, batch=x_shape[0], channels=channels, filters=filters, groups=groups,
        in_spatial=(1,) * lead + tuple(spatial), kernel_spatial=(1,) * lead + tuple(kernel_spatial),
        out_spatial=(1,) * lead + tuple(out_spatial), strides=(1,) * lead + strides,
        dilations=(1,) * lead + dilations, pads=((0, 0),) * lead + tuple(pads), padding_mode=mode,
        data_format=data_format, dtype=dtype, activation=act, method=method, integer_inputs=integer_inputs)


def _spatial_error(fn, axis, rank, L, before, after, k, d, x_shape, kernel_shape, data_format):
    name = _SPATIAL_NAMES[rank][axis]
    eff = d * (k - 1) + 1
    msg = (f"{fn}: spatial axis {axis} ({name}) of x has size {L}, padded size {L + before + after} "
           f"(pads {(before, after)}), which is smaller than the dilated kernel size {eff} "
           f"(kernel {k}, dilation {d}); the output would be empty. x has shape {shape_str(x_shape)} "
           f"read as {_layout(rank, data_format)}.")
    flipped = "channels_first" if data_format == "channels_last" else "channels_last"
    other_spatial = x_shape[2:] if flipped == "channels_first" else x_shape[1:-1]
    other_channels = x_shape[1] if flipped == "channels_first" else x_shape[-1]
    if other_channels % kernel_shape[-2] == 0 and all(
            s >= (kernel_shape[i] - 1) * 1 + 1 for i, s in enumerate(other_spatial)):
        msg += (f" If your data is laid out as {_layout(rank, flipped)}, pass data_format=\"{flipped}\".")
    else:
        msg += " Use a larger input, a smaller kernel or dilation, or padding=\"same\"."
    return ValueError(msg)
