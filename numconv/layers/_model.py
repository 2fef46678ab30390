"""``Sequential``: a stack of numconv layers with Keras's weight list and summary."""
import numpy as np

from ._base import Layer, _arrays, _shape_tuple, format_shape


class Sequential:
    """A linear stack of layers, as ``keras.Sequential`` for inference.

    Parameters
    ----------
    layers : list of Layer, optional
        Applied in order. If the first was given ``input_shape=``, every layer is
        built as it is added, so shapes are checked at once.
    name : str, optional

    Notes
    -----
    ``get_weights()`` / ``set_weights()`` use the flat list Keras's
    ``model.get_weights()`` returns (each layer's weights in order), so weights
    saved from a Keras model of the same layers load unchanged, e.g.
    ``np.savez("w.npz", *keras_model.get_weights())`` there and
    ``model.set_weights(list(np.load("w.npz").values()))`` here.

    Examples
    --------
    >>> import numpy as np
    >>> from numconv.layers import Sequential, Conv1D, MaxPooling1D, GlobalMaxPooling1D
    >>> model = Sequential([Conv1D(16, 5, activation="relu", input_shape=(50, 1), seed=0),
    ...                     MaxPooling1D(4), GlobalMaxPooling1D()])
    >>> model.output_shape, model.count_params()
    ((None, 16), 96)
    >>> model(np.zeros((2, 50, 1))).shape
    (2, 16)
    """

    def __init__(self, layers=None, name="sequential"):
        self.name = name
        self.layers = []
        self._shape = None
        for layer in layers or ():
            self.add(layer)

    def add(self, layer):
        """Append ``layer``; build it if the model's current output shape is known."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a numconv.layers layer; got {type(layer).__name__}.")
        if not self.layers and layer.input_shape is not None:
            self._shape = layer.input_shape
        if self._shape is not None:
            if not layer.built:
                layer.build(self._shape)
            self._shape = layer.compute_output_shape(self._shape)
        self.layers.append(layer)

    def build(self, input_shape):
        """Build every layer for ``input_shape`` (batch first, may be None)."""
        shape = _shape_tuple("Sequential", "input_shape", input_shape)
        self._input = shape
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self._shape = shape

    @property
    def built(self):
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_shape(self):
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self):
        if self._shape is None:
            raise AttributeError("Sequential has no output_shape yet: build it, call it, or give the first "
                                 "layer input_shape=.")
        return self._shape

    def compute_output_shape(self, input_shape):
        shape = _shape_tuple("Sequential", "input_shape", input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        if self._shape is None:
            self._shape = (None,) + tuple(x.shape[1:])
        return x

    predict = __call__

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self):
        """Every layer's weights, in order: the list Keras's ``model.get_weights()`` gives."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Load the flat list Keras's ``model.get_weights()`` gives."""
        weights = [np.asarray(w) for w in weights]
        if not self.built:
            raise ValueError("Sequential.set_weights: build the model first (give the first layer input_shape=, "
                             "call model.build(input_shape) or call it on data) so each layer's weight count is "
                             "known.")
        counts = [len(layer.weights) for layer in self.layers]
        if len(weights) != sum(counts):
            per = ", ".join(f"{layer.name}: {c}" for layer, c in zip(self.layers, counts))
            raise ValueError(f"Sequential.set_weights: expected {_arrays(sum(counts))} ({per}); got {len(weights)}.")
        i = 0
        for layer, c in zip(self.layers, counts):
            layer.set_weights(weights[i:i + c])
            i += c

    def get_config(self):
        """The model as Keras 3's ``model.get_config()`` describes it: each layer's
        ``{"class_name", "config", "build_config"}``, so ``Sequential.from_config``
        here and ``keras.Sequential.from_config`` there rebuild the same stack
        (weights apart: ``get_weights``)."""
        entries = []
        shape = getattr(self, "_input", None) or self.input_shape
        dtype = self.layers[0].dtype.name if self.layers else "float32"
        if shape is not None:  # as Keras writes a built model: its InputLayer, so Keras builds it too
            entries.append({"module": "keras.layers", "class_name": "InputLayer",
                            "config": {"batch_shape": shape, "dtype": dtype, "sparse": False, "ragged": False,
                                       "name": "input_layer", "optional": False}, "registered_name": None})
        for layer in self.layers:
            entry = {"module": "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(),
                     "registered_name": None}
            if layer.built:
                entry["build_config"] = {"input_shape": layer.input_shape}
            entries.append(entry)
        config = {"name": self.name, "trainable": True, "dtype": dtype, "layers": entries}
        if shape is not None:
            config["build_input_shape"] = shape
        return config

    @classmethod
    def from_config(cls, config):
        """A model from ``get_config()``'s dict, numconv's or Keras 3's
        (``keras_model.get_config()``, or ``json.loads(keras_model.to_json())``):
        an ``InputLayer`` or the first layer's ``build_config`` gives the input
        shape, and the model is built when there is one, so that
        ``model.set_weights(keras_model.get_weights())`` follows at once.

        Raises ValueError for a layer numconv does not have (Dense, Flatten,
        ...), naming it."""
        if isinstance(config, dict) and "class_name" in config and "config" in config:
            kind = config["class_name"]  # the to_json() form
            if kind != "Sequential":
                raise ValueError(f"Sequential.from_config: this is a {kind} model's config; numconv rebuilds "
                                 "Sequential models (a linear stack of layers) only.")
            config = config["config"]
        if isinstance(config, dict) and ("input_layers" in config or "output_layers" in config or any(
                isinstance(e, dict) and e.get("inbound_nodes") for e in config.get("layers") or ())):
            raise ValueError("Sequential.from_config: this is a Functional model's config (layers wired as a "
                             "graph: input_layers, output_layers, inbound_nodes); numconv rebuilds Sequential "
                             "models (a linear stack of layers) only. Rebuild the branches with numconv's layers "
                             "and combine their outputs in NumPy.")
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise TypeError("Sequential.from_config: config must be a dict with a 'layers' list (a model's "
                            f"get_config()); got {type(config).__name__}.")
        import numconv.layers as known

        shape, layers = None, []
        for i, entry in enumerate(config["layers"]):
            name = entry.get("class_name") if isinstance(entry, dict) else None
            cfg = dict(entry.get("config") or {}) if isinstance(entry, dict) else {}
            if name == "InputLayer":
                shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
                continue
            layer_cls = getattr(known, name, None) if isinstance(name, str) else None
            if not (isinstance(layer_cls, type) and issubclass(layer_cls, Layer)):
                have = ", ".join(sorted({c.__name__ for c in vars(known).values()
                                         if isinstance(c, type) and issubclass(c, Layer)} - {"Layer"}))
                raise ValueError(f"Sequential.from_config: layer {i} is {name!r}, which numconv does not have; "
                                 f"it has {have}.")
            if not layers and shape is None:
                shape = (entry.get("build_config") or {}).get("input_shape") or config.get("build_input_shape")
            layers.append(layer_cls.from_config(cfg))
        model = cls(layers, name=config.get("name", "sequential"))
        if shape is not None and layers and not model.built:
            model.build(shape)
        return model

    def summary(self, print_fn=None):
        """Print Keras's table: layer (type), output shape, parameter count."""
        print_fn = print_fn or print
        rows, shape = [], getattr(self, "_input", None) or self.input_shape
        for layer in self.layers:
            try:
                shape = layer.compute_output_shape(shape) if shape is not None else None
            except ValueError:
                shape = None
            params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"  # as Keras 3 prints it
            rows.append((f"{layer.name} ({type(layer).__name__})", "?" if shape is None else format_shape(shape),
                         params))
        for line in format_table(("Layer (type)", "Output Shape", "Param #"), rows, title=f'Model: "{self.name}"'):
            print_fn(line)
        total = sum(layer.count_params() for layer in self.layers if layer.built)
        trainable = sum(w.size for layer in self.layers if layer.built for w in layer.trainable_weights)
        print_fn(f" Total params: {total:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {total - trainable:,}")


def format_table(header, rows, title=None):
    """Keras 2 style summary lines: a rule, the header, '=' rule, rows, '=' rule."""
    widths = [max(len(str(r[i])) for r in [header] + list(rows)) + 3 for i in range(len(header))]
    width = sum(widths) + 1
    line = lambda r: " " + "".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [title] if title else []
    out += ["_" * width, line(header), "=" * width]
    out += [line(r) for r in rows]
    out.append("=" * width)
    return out
