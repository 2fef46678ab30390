"""Keras 3 weight initializers (``keras.initializers``) on NumPy's random generator.

Same names, arguments and distributions as Keras 3: ``GlorotUniform`` draws from
``U(-limit, limit)`` with ``limit = sqrt(6 / (fan_in + fan_out))``; the "normal"
variance-scaling initializers (``GlorotNormal``, ``HeNormal``, ``LecunNormal``)
draw from a normal truncated at two standard deviations, with the standard
deviation divided by 0.87962566103423978 so the truncated draw keeps the intended
variance. Fans are computed as Keras's ``compute_fans``: for a conv kernel
``(*kernel_size, a, b)``, ``fan_in = a * prod(kernel_size)`` and
``fan_out = b * prod(kernel_size)``.

Random numbers come from ``numpy.random.default_rng``, so the values are not
bit-for-bit Keras's (Keras uses its backend's generator); only the distributions
match. To reproduce a Keras model exactly, copy its weights
(``layer.set_weights(keras_layer.get_weights())``). As in Keras 3, an initializer
with an integer ``seed`` returns the same values on every call; with
``seed=None`` every call draws new values.

Examples
--------
>>> from numconv.layers import initializers
>>> w = initializers.GlorotUniform(seed=0)((3, 4, 8))
>>> w.shape, w.dtype, bool(abs(w).max() <= (6 / (3 * 4 + 3 * 8)) ** 0.5)
((3, 4, 8), dtype('float32'), True)
>>> initializers.get("he_normal")
HeNormal(seed=None)
"""
import inspect
import math

import numpy as np

__all__ = ["Initializer", "Constant", "Zeros", "Ones", "Identity", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
           "LecunUniform", "LecunNormal", "Orthogonal", "get", "serialize", "compute_fans"]

#: Keras's correction: the standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape, input_axes=None, output_axes=None):
    """``(fan_in, fan_out)`` of a weight ``shape``, as Keras's ``compute_fans``
    (with both ``input_axes`` and ``output_axes``: the products of those axes).

    >>> compute_fans((3, 3, 16, 32))
    (144, 288)
    >>> compute_fans((3, 3, 16, 32), input_axes=[2], output_axes=[3])
    (16, 32)
    """
    shape = tuple(int(s) for s in shape)
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _check_seed(cls, seed):
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer, tuple)):
        raise TypeError(f"{cls}: seed must be None, an int or a numpy.random.Generator; got {seed!r}.")
    return seed


class Initializer:
    """Base class: ``initializer(shape, dtype="float32")`` returns a new array."""

    def __init__(self, seed=None):
        self.seed = _check_seed(type(self).__name__, seed)

    def _rng(self):
        # An int seed gives the same values on every call (Keras 3); None draws anew;
        # a Generator is used (and advanced) as given.
        if isinstance(self.seed, np.random.Generator):
            return self.seed
        return np.random.default_rng(self.seed)

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {"seed": self.seed} if "seed" in vars(self) else {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if v is not None or k not in ("input_axes", "output_axes"))
        return f"{type(self).__name__}({args})"


def _shape_dtype(name, shape, dtype):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        shape = (int(shape),)
    dtype = np.dtype("float32" if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"{name}: dtype must be a float dtype; got {dtype}.")
    return shape, dtype


class Constant(Initializer):
    """Every entry ``value``."""

    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        shape, dtype = _shape_dtype("Constant", shape, dtype)
        return np.full(shape, self.value, dtype)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    """All zeros."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """All ones."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only, as in Keras)."""

    def __init__(self, gain=1.0):
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        shape, dtype = _shape_dtype("Identity", shape, dtype)
        if len(shape) != 2:
            raise ValueError(f"Identity: shape must be 2-D; got {shape}. Use it for square matrices only.")
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


class RandomNormal(Initializer):
    """Normal with ``mean`` and ``stddev``."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = float(mean), float(stddev)
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _shape_dtype("RandomNormal", shape, dtype)
        return self._rng().normal(self.mean, self.stddev, shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    """Uniform on ``[minval, maxval)``."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval = float(minval), float(maxval)
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _shape_dtype("RandomUniform", shape, dtype)
        return self._rng().uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_normal(rng, shape, stddev):
    """Normal(0, stddev) redrawn until every value lies within two standard deviations."""
    z = rng.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return z * stddev


class TruncatedNormal(Initializer):
    """Normal with ``mean`` and ``stddev``, values beyond two ``stddev`` redrawn."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = float(mean), float(stddev)
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _shape_dtype("TruncatedNormal", shape, dtype)
        return (self.mean + _truncated_normal(self._rng(), shape, self.stddev)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    """Variance ``scale / n`` with ``n`` = fan_in, fan_out or their mean (``mode``).

    ``distribution``: ``"truncated_normal"`` (also ``"normal"``, as in Keras),
    ``"untruncated_normal"`` or ``"uniform"``.
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, input_axes=None,
                 output_axes=None):
        name = type(self).__name__
        for arg, axes in (("input_axes", input_axes), ("output_axes", output_axes)):
            if axes is not None and not (isinstance(axes, (list, tuple))
                                         and all(isinstance(a, (int, np.integer)) for a in axes)):
                raise TypeError(f"{name}: {arg} must be None or a list of ints (Keras's fan axes); got {axes!r}.")
        self.input_axes = None if input_axes is None else [int(a) for a in input_axes]
        self.output_axes = None if output_axes is None else [int(a) for a in output_axes]
        if not scale > 0:
            raise ValueError(f"{name}: scale must be a positive float; got {scale!r}.")
        if mode not in self._MODES:
            raise ValueError(f"{name}: unknown mode {mode!r}; expected one of "
                             + ", ".join(map(repr, self._MODES)) + ".")
        dist = str(distribution).lower()
        dist = "truncated_normal" if dist == "normal" else dist
        if dist not in self._DISTRIBUTIONS:
            raise ValueError(f"{name}: unknown distribution {distribution!r}; expected one of "
                             + ", ".join(map(repr, self._DISTRIBUTIONS)) + ".")
        self.scale, self.mode, self.distribution = float(scale), mode, dist
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _shape_dtype(type(self).__name__, shape, dtype)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            w = _truncated_normal(rng, shape, math.sqrt(scale) / _TRUNCATED_STD)
        elif self.distribution == "untruncated_normal":
            w = rng.normal(0.0, math.sqrt(scale), shape)
        else:
            limit = math.sqrt(3.0 * scale)
            w = rng.uniform(-limit, limit, shape)
        return w.astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed,
                "input_axes": self.input_axes, "output_axes": self.output_axes}


def _preset(name, scale, mode, distribution, doc):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc})


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform",
                        "Uniform within ``sqrt(6 / (fan_in + fan_out))`` (Keras's default kernel initializer).")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "Truncated normal, standard deviation ``sqrt(2 / (fan_in + fan_out))``.")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform", "Uniform within ``sqrt(6 / fan_in)``.")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal",
                   "Truncated normal, standard deviation ``sqrt(2 / fan_in)``.")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform", "Uniform within ``sqrt(3 / fan_in)``.")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal",
                      "Truncated normal, standard deviation ``sqrt(1 / fan_in)``.")


class Orthogonal(Initializer):
    """An orthogonal matrix (of the shape flattened to ``(prod(shape[:-1]), shape[-1])``) times ``gain``."""

    def __init__(self, gain=1.0, seed=None):
        self.gain = float(gain)
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _shape_dtype("Orthogonal", shape, dtype)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: shape must have at least 2 axes; got {shape}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


_CLASSES = (Constant, Zeros, Ones, Identity, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
            GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal)


def _snake(name):
    import re

    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


#: Every name ``get`` accepts, as in Keras 3: class names, their snake_case forms and aliases.
NAMES = {**{c.__name__: c for c in _CLASSES}, **{_snake(c.__name__): c for c in _CLASSES},
         "normal": RandomNormal, "uniform": RandomUniform, "one": Ones, "zero": Zeros}


def serialize(initializer):
    """``initializer`` as Keras 3's ``keras.initializers.serialize`` gives it
    (``{"module", "class_name", "config", "registered_name"}``, which ``get`` and
    Keras both read); a name is resolved first; a plain callable is returned as
    it is (neither library can write a function into a config).

    >>> serialize("he_normal")["class_name"], serialize("zeros")["config"]
    ('HeNormal', {})
    """
    if isinstance(initializer, (str, dict, type)):
        initializer = get(initializer)
    if not isinstance(initializer, Initializer):
        return initializer
    return {"module": "keras.initializers", "class_name": type(initializer).__name__,
            "config": initializer.get_config(), "registered_name": None}


def get(identifier, seed=None):
    """An initializer from a Keras name, a config dict, a class, an instance or a callable.

    Parameters
    ----------
    identifier : str, dict, type, Initializer or callable
        ``"glorot_uniform"`` / ``"GlorotUniform"`` and the other Keras 3 names,
        ``{"class_name": ..., "config": {...}}`` as Keras serialises it, an
        ``Initializer`` class (instantiated) or instance, or any callable
        ``f(shape, dtype=None)``.
    seed : int, optional
        Seed for an initializer created here from a name, dict or class (one that
        takes a seed); ignored for instances and callables, which keep their own.

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones).
    TypeError
        Anything else.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Initializer) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    config = {}
    cls = identifier
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"initializers.get: a dict identifier needs 'class_name' (and 'config'); "
                             f"got {identifier!r}.")
        cls, config = identifier["class_name"], dict(identifier.get("config") or {})
    if isinstance(cls, str):
        if cls not in NAMES:
            known = ", ".join(sorted(n for n in NAMES if n.islower()))
            raise ValueError(f"initializers.get: unknown initializer {cls!r}; expected one of {known} "
                             "(or their class names), an Initializer or a callable f(shape, dtype=None).")
        cls = NAMES[cls]
    if isinstance(cls, type) and issubclass(cls, Initializer):
        takes = inspect.signature(cls.__init__).parameters
        if "seed" in takes and config.get("seed") is None and seed is not None:
            config["seed"] = seed
        unknown = [k for k in config if k not in takes]
        if unknown:
            raise TypeError(f"initializers.get: {cls.__name__} takes no {unknown[0]!r}; its arguments are "
                            + ", ".join(p for p in takes if p != "self") + f" (got config {config!r}).")
        return cls(**config)
    raise TypeError(f"initializers.get: expected an initializer name, config dict, Initializer or "
                    f"callable f(shape, dtype=None); got {identifier!r}.")
