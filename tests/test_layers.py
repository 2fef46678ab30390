"""numconv.layers against Keras: saved Keras fixtures, live Keras (when installed),
the seeds' statements, errors, initializers and the weight protocol.

The fixtures (``tests/fixtures/keras/*.npz``) were written by
``scripts/make_keras_fixtures.py`` from real Keras 3 (JAX backend): inputs, weights
in Keras's ``get_weights()`` order and Keras's outputs. Nothing here compares
numconv with itself: outputs are checked against those fixtures or against the
NumPy loops in ``tests/reference.py``.
"""
import glob
import importlib.util
import json
import os

import numpy as np
import pytest

from reference import ref_conv

import numconv
from numconv import layers
from numconv.layers import initializers

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = sorted(glob.glob(os.path.join(HERE, "fixtures", "keras", "*.npz")))
SCRIPT = os.path.join(HERE, os.pardir, "scripts", "make_keras_fixtures.py")


def _load_script():
    spec = importlib.util.spec_from_file_location("make_keras_fixtures", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tuples(v):
    """JSON turned tuples into lists; Keras kwargs want tuples back."""
    return tuple(v) if isinstance(v, list) else v


def _numconv_model(config_layers, input_shape):
    built = [getattr(layers, cls)(**{k: _tuples(v) for k, v in kwargs.items()}) for cls, kwargs in config_layers]
    model = layers.Sequential(built)
    model.build((None,) + tuple(input_shape[1:]))
    return model


def _close(y, ref):
    scale = max(float(np.abs(ref).max()), 1.0)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=2e-6 * scale)


def _fixture_id(path):
    return os.path.basename(path)[:-4]


def test_fixtures_present_and_small():
    assert len(FIXTURES) >= 60
    assert sum(os.path.getsize(p) for p in FIXTURES) < 1_000_000
    names = {_fixture_id(p) for p in FIXTURES}
    script = _load_script()
    assert names == {name for name, *_ in script.all_cases()}
    # Every public layer type has at least one fixture.
    covered = set()
    for p in FIXTURES:
        config = json.loads(str(np.load(p)["config"]))
        covered |= ({config["class"]} if config["kind"] == "layer" else {c for c, _ in config["layers"]})
    for cls in ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
                "DepthwiseConv2D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "MaxPooling1D",
                "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
                "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalAveragePooling1D",
                "GlobalAveragePooling2D", "GlobalAveragePooling3D", "Convolution1D", "Convolution2D"):
        assert cls in covered, cls


@pytest.mark.parametrize("path", FIXTURES, ids=_fixture_id)
def test_matches_keras_fixture(path):
    f = np.load(path)
    config = json.loads(str(f["config"]))
    config_layers = [(config["class"], config["kwargs"])] if config["kind"] == "layer" else config["layers"]
    x = f["x"]
    model = _numconv_model(config_layers, x.shape)
    n = len([k for k in f.files if k.startswith("w") and k[1:].isdigit()])
    keras_weights = [f[f"w{i}"] for i in range(n)]
    # A freshly built layer has Keras's weight count, order (names) and shapes.
    assert [w.shape for w in model.get_weights()] == [w.shape for w in keras_weights]
    names = [p.rsplit("/", 1)[-1] for p in json.loads(str(f["weight_names"]))]
    assert [n for layer in model.layers for n in layer._weight_names] == names
    assert model.count_params() == int(f["count_params"])
    expected_shape = tuple(json.loads(str(f["output_shape"])))
    assert model.compute_output_shape((None,) + x.shape[1:]) == expected_shape
    model.set_weights(keras_weights)
    y = model(x)
    assert y.dtype == np.float32
    assert y.shape == f["y"].shape
    assert y.shape[1:] == expected_shape[1:]
    _close(y, f["y"])


def test_live_keras():
    """The fixture cases rebuilt in the installed Keras (fresh weights and inputs)."""
    keras = pytest.importorskip("keras")
    script = _load_script()
    failures = []
    for name, _, config_layers, shape in script.all_cases():
        arrays = script.keras_case(name + "_live", config_layers, shape)
        model = _numconv_model([(c, json.loads(json.dumps(k))) for c, k in config_layers], shape)
        n = len([k for k in arrays if k.startswith("w") and k[1:].isdigit()])
        model.set_weights([arrays[f"w{i}"] for i in range(n)])
        y = model(arrays["x"])
        try:
            _close(y, arrays["y"])
        except AssertionError as e:
            failures.append(f"{name} (keras {keras.__version__}): {e}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------- the seeds' statements


def test_seed_conv1d_shapes_and_params():
    valid = layers.Conv1D(filters=2, kernel_size=4, use_bias=False, input_shape=(10, 3))
    same = layers.Conv1D(filters=2, kernel_size=4, use_bias=False, padding="same", input_shape=(10, 3))
    assert valid.output_shape == (None, 7, 2)
    assert same.output_shape == (None, 10, 2)
    assert valid.count_params() == same.count_params() == 24
    assert valid.kernel.shape == (4, 3, 2) and valid.bias is None


@pytest.mark.parametrize("steps,k,filters", [(10, 4, 2), (37, 5, 3), (8, 8, 1)])
def test_seed_conv1d_valid_length(steps, k, filters):
    rng = np.random.default_rng(steps)
    x = rng.standard_normal((3, steps, 2))
    layer = layers.Conv1D(filters, k)
    y = layer(x)
    assert y.shape == (3, steps - k + 1, filters)
    assert layer.compute_output_shape((None, steps, 2)) == (None, steps - k + 1, filters)
    _close(y, ref_conv(x.astype(np.float32), layer.kernel, layer.bias))


def test_seed_convolution1d_and_2d_build_and_run():
    rng = np.random.default_rng(1)
    c1 = layers.Convolution1D(filters=64, kernel_size=3, activation="relu", input_shape=(100, 1), seed=0)
    assert c1.output_shape == (None, 98, 64) and c1.count_params() == 3 * 64 + 64
    x1 = rng.standard_normal((4, 100, 1))
    c1.set_weights([rng.standard_normal((3, 1, 64)), rng.standard_normal(64)])
    _close(c1(x1), ref_conv(x1.astype(np.float32), c1.kernel, c1.bias, activation="relu"))

    c2 = layers.Convolution2D(filters=64, kernel_size=(3, 3), activation="relu", input_shape=(100, 100, 3))
    assert c2.output_shape == (None, 98, 98, 64) and c2.count_params() == 27 * 64 + 64
    assert type(c2) is layers.Conv2D and c2.name.startswith("conv2d")
    x2 = rng.random((2, 100, 100, 3))
    c2.set_weights([rng.standard_normal((3, 3, 3, 64)), rng.standard_normal(64)])
    _close(c2(x2), ref_conv(x2.astype(np.float32), c2.kernel, c2.bias, activation="relu"))


def _numpy_imdb(x, w):
    """The IMDb stack in plain NumPy: conv(7)+relu, max-pool 5, conv(7)+relu, global max."""
    h = ref_conv(x, w[0], w[1], activation="relu")
    n = h.shape[1] // 5
    h = h[:, :n * 5].reshape(h.shape[0], n, 5, -1).max(axis=2)
    h = ref_conv(h, w[2], w[3], activation="relu")
    return h.max(axis=1)


def test_seed_imdb_and_stock_models():
    f = np.load(os.path.join(HERE, "fixtures", "keras", "model_imdb.npz"))
    model = layers.Sequential([layers.Conv1D(32, 7, activation="relu", input_shape=(100, 128)),
                               layers.MaxPooling1D(5), layers.Conv1D(32, 7, activation="relu"),
                               layers.GlobalMaxPooling1D()])
    assert [layer.output_shape for layer in model.layers] == [(None, 94, 32), (None, 18, 32), (None, 12, 32),
                                                              (None, 32)]
    w = [f[f"w{i}"] for i in range(4)]
    model.set_weights(w)
    y = model(f["x"])
    _close(y, f["y"])                       # Keras's output
    _close(y, _numpy_imdb(f["x"], w))       # and an independent NumPy computation

    f = np.load(os.path.join(HERE, "fixtures", "keras", "model_stock.npz"))
    model = layers.Sequential([layers.Conv1D(16, 5, activation="relu", input_shape=(50, 1)), layers.MaxPooling1D(4)])
    assert model.output_shape == (None, 11, 16) and model.count_params() == 96
    model.set_weights([f["w0"], f["w1"]])
    _close(model(f["x"]), f["y"])


def test_seed_error_1d_input_names_reshape():
    layer = layers.Conv1D(64, 3, activation="relu", input_shape=(100, 1))
    with pytest.raises(ValueError, match=r"3-D input \(batch, steps, channels\).*got shape \(1, 56\)"
                                         r".*x\.reshape\(1, 56, 1\)"):
        layer(np.ones((1, 56)))
    with pytest.raises(ValueError, match=r"x\.reshape\(1, 56, 1\)"):
        layers.Conv1D(64, 3)(np.ones((1, 56)))


def test_seed_error_channels_first_image():
    with pytest.raises(ValueError, match=r'height.*has size 1.*channels_first.*data_format="channels_first"'
                                         r".*np\.moveaxis\(x, 1, -1\).*input_shape=\(28, 28, 1\)"):
        layers.Conv2D(32, (5, 5), input_shape=(1, 28, 28), activation="relu")
    with pytest.raises(ValueError, match='data_format="channels_first"'):
        layers.Conv2D(32, (5, 5))(np.zeros((2, 1, 28, 28)))
    # The suggested fixes work.
    y = layers.Conv2D(32, (5, 5), data_format="channels_first")(np.zeros((2, 1, 28, 28)))
    assert y.shape == (2, 32, 24, 24)
    assert layers.Conv2D(32, (5, 5))(np.moveaxis(np.zeros((2, 1, 28, 28)), 1, -1)).shape == (2, 24, 24, 32)


# ---------------------------------------------------------------- behaviour beyond the fixtures


def test_strides_with_dilation_and_float64_against_reference():
    # Keras refuses strides > 1 with dilation > 1; numconv computes it (as its ops do).
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 13, 11, 4))
    layer = layers.Conv2D(6, 3, strides=2, dilation_rate=2, padding="same", groups=2, activation="gelu",
                          dtype="float64", bias_initializer="random_normal", seed=3)
    y = layer(x)
    assert y.dtype == np.float64 and layer.kernel.dtype == np.float64
    ref = ref_conv(x, layer.kernel, layer.bias, strides=2, dilation_rate=2, padding="same", groups=2,
                   activation="gelu")
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_callable_activation_and_input_cast():
    rng = np.random.default_rng(4)
    x = rng.integers(-3, 4, (2, 9, 2))                     # ints are cast to the layer dtype, as Keras does
    layer = layers.Conv1D(3, 2, activation=np.abs, seed=1)
    y = layer(x)
    assert y.dtype == np.float32
    _close(y, np.abs(ref_conv(x.astype(np.float32), layer.kernel, layer.bias)))
    assert layer([[[1.0, 2.0]] * 5]).shape == (1, 4, 3)   # lists work


def test_compute_output_shape_unknown_sizes_and_batch():
    layer = layers.Conv2D(8, 3, strides=2, padding="same")
    assert layer.compute_output_shape((None, None, 9, 3)) == (None, None, 5, 8)
    assert layer.compute_output_shape((4, 9, 9, 3)) == (4, 5, 5, 8)
    assert layers.DepthwiseConv2D(3, depth_multiplier=3).compute_output_shape((None, 8, 8, 2)) == (None, 6, 6, 6)
    assert layers.Conv1DTranspose(4, 3, strides=2).compute_output_shape((None, None, 2)) == (None, None, 4)
    assert layers.MaxPooling2D(data_format="channels_first").compute_output_shape((None, 3, 9, 7)) == \
        (None, 3, 4, 3)
    assert layers.GlobalAveragePooling3D(keepdims=True).compute_output_shape((None, 4, 5, 6, 7)) == \
        (None, 1, 1, 1, 7)
    # A layer built for unknown spatial sizes runs on any size with its channel count.
    conv = layers.Conv1D(4, 3, input_shape=(None, 2))
    assert conv.output_shape == (None, None, 4)
    assert conv(np.zeros((1, 20, 2))).shape == (1, 18, 4)
    assert conv(np.zeros((3, 5, 2))).shape == (3, 3, 4)


def test_keras_defaults():
    c = layers.Conv2D(4, 3)
    assert (c.strides, c.padding, c.data_format, c.dilation_rate, c.groups, c.activation, c.use_bias,
            c.kernel_initializer, c.bias_initializer) == ((1, 1), "valid", "channels_last", (1, 1), 1, None, True,
                                                          "glorot_uniform", "zeros")
    s = layers.SeparableConv1D(4, 3)
    assert (s.depth_multiplier, s.depthwise_initializer, s.pointwise_initializer) == (1, "glorot_uniform",
                                                                                     "glorot_uniform")
    d = layers.DepthwiseConv2D(3)
    assert (d.depth_multiplier, d.depthwise_initializer) == (1, "glorot_uniform")
    t = layers.Conv3DTranspose(2, 3)
    assert t.output_padding is None and t.strides == (1, 1, 1)
    assert layers.MaxPooling1D().pool_size == (2,) and layers.MaxPooling1D().strides == (2,)
    assert layers.MaxPooling2D().pool_size == (2, 2) and layers.MaxPooling3D().pool_size == (2, 2, 2)
    assert layers.AveragePooling1D(3, strides=1).strides == (1,)
    assert layers.GlobalMaxPooling1D().keepdims is False
    with pytest.raises(TypeError):
        layers.AveragePooling2D()          # Keras 3 gives AveragePooling no default pool_size
    assert layers.Conv1D(2, 3).name != layers.Conv1D(2, 3).name
    assert layers.Conv2DTranspose(2, 3).name.startswith("conv2d_transpose")
    assert layers.GlobalMaxPooling2D().name.startswith("global_max_pooling2d")
    assert layers.Conv1D(2, 3, name="first").name == "first"


@pytest.mark.parametrize("make,match", [
    (lambda: layers.Conv1D(0, 3), "filters.*strictly positive.*filters=0"),
    (lambda: layers.Conv1D(8, 3, groups=3), "filters must be evenly divisible by the number of groups"),
    (lambda: layers.Conv1D(8, 3, groups=2, input_shape=(10, 3)), "input channels must be evenly divisible"),
    (lambda: layers.Conv2D(8, (3, 3, 3)), r"kernel_size must be an int or a tuple of 2 ints"),
    (lambda: layers.Conv2D(8, 0), r"kernel_size must have every entry >= 1"),
    (lambda: layers.Conv2D(8, 3, padding="causal"), "unknown padding 'causal'"),
    (lambda: layers.Conv1D(8, 3, data_format="NCW"), "unknown data_format 'NCW'"),
    (lambda: layers.Conv1D(8, 3, activation="sparsemax"), "unknown activation 'sparsemax'.*callable"),
    (lambda: layers.Conv1D(8, 3, kernel_initializer="glorot"), "unknown initializer 'glorot'.*glorot_uniform"),
    (lambda: layers.Conv1DTranspose(8, 3, strides=2, output_padding=2), "output_padding must be strictly less"),
    (lambda: layers.DepthwiseConv1D(3, depth_multiplier=0), "depth_multiplier.*strictly positive"),
    (lambda: layers.MaxPooling1D(3, padding="full"), "unknown padding 'full'"),
    (lambda: layers.MaxPooling1D(5, input_shape=(3, 10)), 'pool_size 5.*data_format="channels_first"'),
    (lambda: layers.Conv1D(8, 3, method="magic"), "unknown method 'magic'"),
])
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make,match", [
    (lambda: layers.Conv1D(8, 3, nb_filter=8), "nb_filter is filters in Keras 2"),
    (lambda: layers.Conv1D(8, 3, border_mode="same"), "border_mode is padding"),
    (lambda: layers.Conv1D(8, 3, input_dim=4), r"input_dim is input_shape \(e\.g\. input_shape=\(steps, input_dim\)\)"),
    (lambda: layers.Conv1D(8, 3, dtype="int32"), "dtype must be 'float32' or 'float64'"),
    (lambda: layers.Conv1D(8, 3, use_bias="yes"), "use_bias must be True or False"),
    (lambda: layers.Conv1D(8, 3, activation=3), "activation must be None"),
    (lambda: layers.AveragePooling2D(), r"AveragePooling2D: missing the pool_size.*pool_size=\(2, 2\)"),
    (lambda: layers.Conv1D(8, 3)(np.ones((1, 5, 1), complex)), "x must be real"),
    (lambda: layers.Conv1D(8, 3)(np.array([["a"] * 5])), "numeric dtype"),
])
def test_type_errors(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_call_errors_name_the_fix():
    layer = layers.Conv1D(4, 3, input_shape=(10, 3))
    with pytest.raises(ValueError, match=r"built for 3 input channels.*got 10 channels.*np\.moveaxis"):
        layer(np.zeros((2, 3, 10)))
    with pytest.raises(ValueError, match=r"add a batch axis: x\.reshape\(1, 10, 3\)"):
        layer(np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"x\.reshape\(1, 28, 28, 1\)"):
        layers.Conv2D(4, 3)(np.zeros((28, 28)))
    with pytest.raises(ValueError, match=r"steps.*has size 2.*padding=\"same\""):
        layers.Conv1D(4, 3)(np.zeros((1, 2, 8)))


@pytest.mark.parametrize("make", [lambda: layers.Conv2D(8, 3), lambda: layers.MaxPooling2D(),
                                  lambda: layers.GlobalAveragePooling2D(), lambda: layers.DepthwiseConv2D(3)])
def test_one_image_without_its_batch_axis_is_offered_both_readings(make):
    """An unbuilt layer given a (32, 32, 3) image cannot know its channels: the
    message offers the batch-axis reading first (it had offered only "32 images
    of 32 x 3 pixels with one channel", which runs and means something else)."""
    with pytest.raises(ValueError, match=r"got shape \(32, 32, 3\)\. For a single example add a batch axis: "
                                         r"x\.reshape\(1, 32, 32, 3\); for a batch of one-channel examples add a "
                                         r"channel axis: x\.reshape\(32, 32, 3, 1\)\."):
        make()(np.zeros((32, 32, 3), np.float32))


def test_a_built_layer_offers_the_reading_its_channels_fit():
    with pytest.raises(ValueError, match=r"add a batch axis: x\.reshape\(1, 28, 28, 3\)\.$"):
        layers.Conv2D(8, 3, input_shape=(28, 28, 3))(np.zeros((28, 28, 3)))
    with pytest.raises(ValueError, match=r"add a channel axis: x\.reshape\(4, 28, 28, 1\)\.$"):
        layers.Conv2D(8, 3, input_shape=(28, 28, 1))(np.zeros((4, 28, 28)))
    with pytest.raises(ValueError, match=r"(?s)channels_first.*add a batch axis: x\.reshape\(1, 3, 28, 28\)\.$"):
        layers.Conv2D(8, 3, data_format="channels_first", input_shape=(3, 28, 28))(np.zeros((3, 28, 28)))


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Conv2D(8), r"^Conv2D\(filters, kernel_size, \.\.\.\): kernel_size is missing; "
                               r"e\.g\. Conv2D\(32, \(3, 3\)\)\."),
    (lambda: layers.Conv2D((5, 5)), r"^Conv2D\(filters, kernel_size, \.\.\.\): kernel_size is missing \(the "
                                    r"\(5, 5\) given reads as filters\); e\.g\. Conv2D\(32, \(5, 5\)\)\."),
    (lambda: layers.Conv1D(), r"^Conv1D\(filters, kernel_size, \.\.\.\): filters and kernel_size are missing; "
                              r"e\.g\. Conv1D\(32, 3\)"),
    (lambda: layers.Conv3D(kernel_size=2), r"^Conv3D\(filters, kernel_size, \.\.\.\): filters is missing; "
                                           r"e\.g\. Conv3D\(32, 2\)"),
    (lambda: layers.Convolution2D(8), r"^Conv2D\(filters, kernel_size"),
    (lambda: layers.SeparableConv1D(8), r"^SeparableConv1D\(filters, kernel_size, \.\.\.\): kernel_size is "
                                        r"missing; e\.g\. SeparableConv1D\(32, 3\)"),
    (lambda: layers.SeparableConv2D(8), r"^SeparableConv2D\(filters, kernel_size"),
    (lambda: layers.DepthwiseConv1D(), r"^DepthwiseConv1D\(kernel_size, \.\.\.\): kernel_size is missing; "
                                       r"e\.g\. DepthwiseConv1D\(3\)"),
    (lambda: layers.DepthwiseConv2D(), r"^DepthwiseConv2D\(kernel_size, \.\.\.\): kernel_size is missing; "
                                       r"e\.g\. DepthwiseConv2D\(\(3, 3\)\)"),
    (lambda: layers.Conv1DTranspose(4), r"^Conv1DTranspose\(filters, kernel_size, \.\.\.\): kernel_size"),
    (lambda: layers.Conv2DTranspose(4), r"^Conv2DTranspose\(filters, kernel_size"),
    (lambda: layers.Conv3DTranspose(4), r"^Conv3DTranspose\(filters, kernel_size, \.\.\.\): kernel_size is "
                                        r"missing; e\.g\. Conv3DTranspose\(32, \(3, 3, 3\)\)"),
])
def test_a_missing_required_argument_names_the_public_class_and_the_fix(make, message):
    """``Conv2D(8)`` had said "_Conv.__init__() missing 1 required positional
    argument: 'kernel_size'": a private class and no example."""
    with pytest.raises(TypeError, match=message):
        make()


def test_signatures_are_keras_3s():
    import inspect

    both = ["filters", "kernel_size"]
    for cls, required in [(layers.Conv2D, both), (layers.SeparableConv1D, both),
                          (layers.DepthwiseConv2D, ["kernel_size"]), (layers.Conv3DTranspose, both)]:
        params = list(inspect.signature(cls).parameters.values())
        assert [p.name for p in params[:len(required)]] == required, cls
        assert all(p.default is p.empty for p in params[:len(required)]), cls
        assert params[len(required)].name == "strides" and params[len(required)].default == 1, cls


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Conv2D(4, 3, input_shape=(28, 28)),
     r"got shape \(None, 28, 28\)\. For inputs of one channel add the channel axis: use input_shape=\(28, 28, 1\)\.$"),
    (lambda: layers.Conv1D(4, 3, input_shape=(10,)), r"use input_shape=\(10, 1\)\.$"),
    (lambda: layers.Conv2D(4, 3, data_format="channels_first", input_shape=(28, 28)),
     r"use input_shape=\(1, 28, 28\)\.$"),
    (lambda: layers.Conv2D(4, 3, input_shape=(28, 28), batch_size=4), r"use input_shape=\(28, 28, 1\)\.$"),
    (lambda: layers.MaxPooling2D(input_shape=(28, 28)), r"use input_shape=\(28, 28, 1\)\.$"),
    (lambda: layers.Conv2D(8, 3, input_shape=(1, 28, 28, 3)),
     r"got shape \(None, 1, 28, 28, 3\)\. input_shape excludes the batch axis; use input_shape=\(28, 28, 3\) "
     r"\(or batch_input_shape=\(1, 28, 28, 3\)\)\.$"),
    (lambda: layers.Conv2D(8, 3, batch_input_shape=(4, 28, 28)), r"use batch_input_shape=\(4, 28, 28, 1\)\.$"),
    (lambda: layers.Conv2D(8, 3).build((None, 28, 28)), r"add the channel axis: use \(None, 28, 28, 1\)\.$"),
])
def test_a_wrong_input_shape_gets_its_fix(make, message):
    """A shape given to the constructor (or to build) had got no fix: the hint
    for data (``x.reshape``) needs every size, and input_shape's batch is None."""
    with pytest.raises(ValueError, match=message):
        make()


def test_a_layer_built_from_input_shape_still_gives_data_hints_when_called():
    layer = layers.Conv2D(8, 3, input_shape=(28, 28, 3))
    with pytest.raises(ValueError, match=r"add a batch axis: x\.reshape\(1, 28, 28, 3\)\.$"):
        layer(np.zeros((28, 28, 3)))


def test_docstrings_list_every_method():
    from numconv._dispatch import METHODS

    listed = "{" + ", ".join(f'"{m}"' for m in ("auto",) + tuple(METHODS)) + "}"
    assert '"winograd"' in listed
    for cls in (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.SeparableConv2D, layers.DepthwiseConv1D,
                layers.Conv2DTranspose):
        assert f"method : {listed}" in cls.__doc__, cls


# ---------------------------------------------------------------- weights


def test_get_set_weights_protocol():
    layer = layers.SeparableConv2D(5, 3, depth_multiplier=2, input_shape=(8, 8, 3), seed=0)
    w = layer.get_weights()
    assert [a.shape for a in w] == [(3, 3, 3, 2), (1, 1, 6, 5), (5,)]
    assert layer.count_params() == 54 + 30 + 5
    w[0][...] = 7.0                                             # copies, not views
    assert not np.any(layer.depthwise_kernel == 7.0)
    new = [np.full(a.shape, i + 1.0) for i, a in enumerate(w)]
    layer.set_weights(new)
    assert layer.depthwise_kernel.dtype == np.float32 and np.all(layer.pointwise_kernel == 2.0)
    assert layer.weights[2] is layer.bias
    with pytest.raises(ValueError, match=r"pointwise_kernel must have shape \(1, 1, 6, 5\).*got shape \(1, 1, 5, 6\)"):
        layer.set_weights([new[0], np.zeros((1, 1, 5, 6)), new[2]])
    with pytest.raises(ValueError, match=r"expected a list of 3 arrays.*got 2.*use_bias=False"):
        layer.set_weights(new[:2])


def test_set_weights_builds_an_unbuilt_layer():
    rng = np.random.default_rng(5)
    k, b = rng.standard_normal((3, 4, 6)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    layer = layers.Conv1D(6, 3, groups=2)
    layer.set_weights([k, b])
    assert layer.built and layer.count_params() == 78
    x = rng.standard_normal((2, 9, 8)).astype(np.float32)
    _close(layer(x), ref_conv(x, k, b, groups=2))
    t = layers.Conv2DTranspose(3, 2)
    t.set_weights([np.ones((2, 2, 3, 5)), np.zeros(3)])       # (*k, filters, in_channels)
    assert t(np.ones((1, 4, 4, 5))).shape == (1, 5, 5, 3)
    with pytest.raises(ValueError, match="count_params: the layer isn't built"):
        layers.Conv1D(2, 3).count_params()


@pytest.mark.parametrize("make, weights, message", [
    (lambda: layers.Conv2D(8, 3), [np.zeros((3, 3, 8)), np.zeros(8)],
     r"^Conv2D \(layer '.*'\)\.set_weights: kernel must be 4-D \(3, 3, in_channels, 8\) for kernel_size=\(3, 3\) "
     r"\(Keras layout; the layer expects kernel \(3, 3, in_channels, 8\), bias \(8,\)\); got shape \(3, 3, 8\)\.$"),
    (lambda: layers.Conv2D(8, 3, groups=2), [np.zeros((3, 3, 8))],
     r"expected a list of 2 arrays \(kernel \(3, 3, in_channels // 2, 8\), bias \(8,\), Keras layouts for "
     r"kernel_size=\(3, 3\)\); got 1 array of shape \(3, 3, 8\)\. Was the Keras layer built with use_bias=False"),
    (lambda: layers.Conv2D(8, 3), [], r"expected a list of 2 arrays .*; got an empty list\.$"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False), [],
     r"expected a list of 1 array \(kernel \(3, 3, in_channels, 2\), Keras layouts"),
    (lambda: layers.DepthwiseConv1D(3, depth_multiplier=2), [np.zeros((3, 4, 2, 1)), np.zeros(8)],
     r"kernel must be 3-D \(3, in_channels, 2\) for kernel_size=\(3,\) \(Keras layout; the layer expects kernel "
     r"\(3, in_channels, 2\), bias \(in_channels \* 2,\)\)"),
    (lambda: layers.SeparableConv2D(4, 3, depth_multiplier=2), [],
     r"depthwise_kernel \(3, 3, in_channels, 2\), pointwise_kernel \(1, 1, in_channels \* 2, 4\), bias \(4,\)"),
    (lambda: layers.Conv1DTranspose(4, 3), [np.zeros((3, 4)), np.zeros(4)],
     r"kernel must be 3-D \(3, 4, in_channels\) for kernel_size=\(3,\)"),
    (lambda: layers.Conv1D(8, 3, use_bias=False, input_shape=(10, 2)), [np.zeros((3, 2, 8)), np.zeros(8)],
     r"expected a list of 1 array \(kernel \(3, 2, 8\)\); got 2\. The list seems to include a bias"),
])
def test_set_weights_that_cannot_build_the_layer_say_what_it_expects(make, weights, message):
    """An unbuilt layer whose weights do not give its input channels had said
    "expected a list of 0 arrays (no weights)", and accepted an empty list."""
    layer = make()
    with pytest.raises(ValueError, match=message):
        layer.set_weights(weights)


def test_weightless_layers_accept_an_empty_list():
    pool = layers.MaxPooling2D()
    pool.set_weights([])
    assert pool.get_weights() == []


def test_layer_seed_reproducible_and_distinct():
    a = layers.Conv2D(8, 3, input_shape=(9, 9, 4), seed=42, bias_initializer="random_uniform")
    b = layers.Conv2D(8, 3, input_shape=(9, 9, 4), seed=42, bias_initializer="random_uniform")
    c = layers.Conv2D(8, 3, input_shape=(9, 9, 4), seed=43, bias_initializer="random_uniform")
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wb)
        assert not np.array_equal(wa, wc)
    d = layers.Conv2D(8, 3, input_shape=(9, 9, 4))            # unseeded: fresh values
    e = layers.Conv2D(8, 3, input_shape=(9, 9, 4))
    assert not np.array_equal(d.kernel, e.kernel)
    assert not np.any(d.bias)                                 # bias_initializer="zeros"
    f = layers.Conv2D(8, 3, input_shape=(9, 9, 4), kernel_initializer=initializers.Ones())
    assert np.all(f.kernel == 1)


# ---------------------------------------------------------------- initializers


@pytest.mark.parametrize("name", ["glorot_uniform", "he_uniform", "lecun_uniform", "random_uniform"])
def test_uniform_initializers(name):
    shape = (5, 5, 3, 100)          # fan_in = 75, fan_out = 2500
    fan_in, fan_out = 75, 2500
    limit = {"glorot_uniform": (6 / (fan_in + fan_out)) ** 0.5, "he_uniform": (6 / fan_in) ** 0.5,
             "lecun_uniform": (3 / fan_in) ** 0.5, "random_uniform": 0.05}[name]
    w = initializers.get(name, seed=0)(shape)
    assert w.dtype == np.float32 and w.shape == shape
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * limit
    np.testing.assert_allclose(w.std(), limit / 3 ** 0.5, rtol=0.03)


@pytest.mark.parametrize("name", ["glorot_normal", "he_normal", "lecun_normal", "truncated_normal"])
def test_truncated_normal_initializers(name):
    shape = (5, 5, 3, 100)
    fan_in, fan_out = 75, 2500
    std = {"glorot_normal": (2 / (fan_in + fan_out)) ** 0.5, "he_normal": (2 / fan_in) ** 0.5,
           "lecun_normal": (1 / fan_in) ** 0.5, "truncated_normal": 0.05 * 0.87962566103423978}[name]
    w = initializers.get(name, seed=1)(shape, dtype="float64")
    assert w.dtype == np.float64
    # Truncated at two standard deviations of the pre-truncation normal (std / 0.8796...).
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 * (1 + 1e-9)
    np.testing.assert_allclose(w.std(), std, rtol=0.03)


def test_other_initializers_and_get():
    assert initializers.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert initializers.compute_fans((7, 5)) == (7, 5) and initializers.compute_fans((4,)) == (4, 4)
    w = initializers.RandomNormal(mean=1.0, stddev=0.5, seed=0)((200, 200))
    np.testing.assert_allclose([w.mean(), w.std()], [1.0, 0.5], rtol=0.02)
    q = initializers.Orthogonal(seed=0)((3, 3, 4, 8))
    flat = q.reshape(-1, 8).astype(np.float64)
    np.testing.assert_allclose(flat.T @ flat, np.eye(8), atol=1e-5)
    np.testing.assert_array_equal(initializers.Constant(2.5)((2, 3)), np.full((2, 3), 2.5, np.float32))
    assert np.all(initializers.get("ones")((3,)) == 1) and not np.any(initializers.get("zeros")((3,)))
    np.testing.assert_array_equal(initializers.get("identity")((3, 3)), np.eye(3))
    vs = initializers.get({"class_name": "VarianceScaling",
                           "config": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"}})
    assert np.abs(vs((10, 50))).max() <= (6 / 50) ** 0.5
    assert isinstance(initializers.get("GlorotUniform"), initializers.GlorotUniform)
    assert isinstance(initializers.get("normal"), initializers.RandomNormal)
    seeded = initializers.HeNormal(seed=7)
    np.testing.assert_array_equal(seeded((4, 4)), seeded((4, 4)))     # Keras 3: same values every call
    unseeded = initializers.HeNormal()
    assert not np.array_equal(unseeded((4, 4)), unseeded((4, 4)))
    fn = lambda shape, dtype=None: np.full(shape, 3.0, dtype)  # noqa: E731
    assert initializers.get(fn) is fn
    with pytest.raises(ValueError, match="mode"):
        initializers.VarianceScaling(mode="fan_sum")
    with pytest.raises(TypeError, match="initializer name"):
        initializers.get(3.0)


# ---------------------------------------------------------------- Sequential


def test_sequential_summary_and_weights(capsys):
    model = layers.Sequential([layers.Conv1D(32, 7, activation="relu", input_shape=(100, 128), name="c1"),
                               layers.MaxPooling1D(5, name="p"), layers.Conv1D(32, 7, name="c2"),
                               layers.GlobalMaxPooling1D(name="g")])
    model.summary()
    out = capsys.readouterr().out
    for text in ("Layer (type)", "Output Shape", "Param #", "c1 (Conv1D)", "(None, 94, 32)", "28,704",
                 "p (MaxPooling1D)", "(None, 18, 32)", "c2 (Conv1D)", "(None, 12, 32)", "7,200",
                 "g (GlobalMaxPooling1D)", "(None, 32)", "Total params: 35,904"):
        assert text in out, text
    w = model.get_weights()
    assert [a.shape for a in w] == [(7, 128, 32), (32,), (7, 32, 32), (32,)]
    model.set_weights([np.zeros_like(a) for a in w])
    assert not np.any(model(np.ones((1, 100, 128))))
    with pytest.raises(ValueError, match=r"expected 4 arrays \(c1: 2, p: 0, c2: 2, g: 0\); got 3"):
        model.set_weights(w[:3])
    with pytest.raises(ValueError, match="steps.*has size 2"):
        layers.Sequential([layers.Conv1D(4, 3, input_shape=(12, 1)), layers.MaxPooling1D(4),
                           layers.Conv1D(4, 5)])


def test_summary_of_an_unbuilt_model_says_unbuilt(capsys):
    """As Keras 3: "0 (unbuilt)", not a parameter count of 0 that count_params() refuses."""
    model = layers.Sequential([layers.Conv1D(4, 3, name="c"), layers.MaxPooling1D(2, name="p")])
    model.summary()
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith((" c (", " p ("))]
    assert len(rows) == 2 and all(line.rstrip().endswith("0 (unbuilt)") for line in rows), rows
    assert "Total params: 0" in out
    model.build((None, 10, 2))
    model.summary()
    out = capsys.readouterr().out
    assert "(unbuilt)" not in out and "Total params: 28" in out


def test_signal_all_lists_the_public_names():
    from numconv import signal

    assert sorted(signal.__all__) == ["choose_conv_method", "convolve", "correlate"]
    namespace = {}
    exec("from numconv.signal import *", namespace)
    assert sorted(k for k in namespace if not k.startswith("__")) == sorted(signal.__all__)


def test_import_is_lazy_and_public():
    import subprocess
    import sys

    code = "import sys, numconv; assert 'numconv.layers' not in sys.modules; numconv.layers.Conv1D; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"
    for name in layers.__all__:
        assert hasattr(layers, name), name
    assert layers.Convolution1D is layers.Conv1D and layers.MaxPool2D is layers.MaxPooling2D
    assert numconv.layers is layers


# ---------------------------------------------------------------- configs

CONFIG_FIXTURE = os.path.join(HERE, "fixtures", "keras_config", "sequential_config.npz")


def test_sequential_from_a_keras_model_json_runs_its_weights():
    """Keras 3.15's ``model.to_json()`` (saved by ``scripts/make_keras_fixtures.py``:
    every conv family, DTypePolicy and initializer serialisations with
    ``input_axes``) rebuilds in numconv, takes the Keras weights and gives Keras's
    output; ``get_config`` of the result rebuilds the same again."""
    f = np.load(CONFIG_FIXTURE)
    config = json.loads(str(f["model_json"]))
    model = layers.Sequential.from_config(config)
    assert model.built and model.output_shape == (None,) + f["y"].shape[1:]
    weights = [f[f"w{i}"] for i in range(len([k for k in f.files if k[0] == "w" and k[1:].isdigit()]))]
    model.set_weights(weights)
    _close(model(f["x"]), f["y"])
    again = layers.Sequential.from_config(json.loads(json.dumps(model.get_config())))
    again.set_weights(weights)
    np.testing.assert_array_equal(again(f["x"]), model(f["x"]))
    assert [type(a).__name__ for a in again.layers] == [type(m).__name__ for m in model.layers]


LAYER_CONFIGS = [
    lambda: layers.Conv1D(4, 3, strides=2, padding="causal", dilation_rate=1, activation="gelu", use_bias=False),
    lambda: layers.Conv2D(6, (3, 2), groups=2, kernel_initializer=initializers.HeUniform(seed=3), seed=4),
    lambda: layers.Conv3D(2, 2, data_format="channels_first", method="fft", activation=None),
    lambda: layers.SeparableConv1D(3, 5, depth_multiplier=2, pointwise_initializer="lecun_normal"),
    lambda: layers.SeparableConv2D(3, 3, padding="same", dtype="float64"),
    lambda: layers.DepthwiseConv1D(3, depth_multiplier=3, bias_initializer=initializers.Constant(0.5)),
    lambda: layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6"),
    lambda: layers.Conv1DTranspose(4, 3, strides=2, output_padding=1),
    lambda: layers.Conv2DTranspose(4, 3, strides=2, padding="same", trainable=False, name="up"),
    lambda: layers.Conv3DTranspose(2, 2),
    lambda: layers.MaxPooling2D(3, strides=1, padding="same"),
    lambda: layers.AveragePooling1D(4),
    lambda: layers.AveragePooling3D((2, 1, 2), data_format="channels_first"),
    lambda: layers.GlobalMaxPooling1D(keepdims=True),
    lambda: layers.GlobalAveragePooling2D(data_format="channels_first"),
]


@pytest.mark.parametrize("make", LAYER_CONFIGS)
def test_get_config_round_trips_through_json(make):
    """``from_config(get_config())`` (through JSON, as a saved config travels)
    rebuilds the same layer: the same config, and built for the same input the
    same weights (seeded) and output."""
    layer = make()
    config = layer.get_config()
    assert config["name"] == layer.name and config["trainable"] == layer.trainable
    assert config["dtype"] == layer.dtype.name
    again = type(layer).from_config(json.loads(json.dumps(config)))
    assert json.dumps(again.get_config()) == json.dumps(config)
    assert "method" not in config or config["method"] != "auto"


def test_from_config_reads_keras_serialisations_and_rejects_the_rest():
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float64"}, "registered_name": None}
    init = {"module": "keras.initializers", "class_name": "GlorotUniform",
            "config": {"seed": 1, "input_axes": [2], "output_axes": [3]}, "registered_name": None}
    layer = layers.Conv2D(4, 3, dtype=policy, kernel_initializer=init)
    layer.build((None, 8, 8, 5))
    assert layer.kernel.dtype == np.float64
    assert np.abs(layer.kernel).max() <= np.sqrt(6 / (5 + 4))  # fans from the axes, not 3*3*5 and 3*3*4
    assert np.abs(layer.kernel).max() > np.sqrt(6 / (45 + 36))
    with pytest.raises(TypeError, match="mixed_float16.*float32"):
        layers.Conv2D(4, 3, dtype={"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}})
    with pytest.raises(TypeError, match="GlorotUniform takes no 'fan'"):
        initializers.get({"class_name": "GlorotUniform", "config": {"fan": 3}})
    with pytest.raises(ValueError, match="layer 1 is 'Dense', which numconv does not have"):
        layers.Sequential.from_config({"layers": [{"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3}},
                                                  {"class_name": "Dense", "config": {"units": 3}}]})


def test_live_keras_reads_numconv_configs():
    """numconv's configs are Keras's: the installed Keras rebuilds a numconv
    model from ``get_config()`` and gives numconv's output with its weights."""
    keras = pytest.importorskip("keras")
    f = np.load(CONFIG_FIXTURE)
    model = layers.Sequential.from_config(json.loads(str(f["model_json"])))
    kmodel = keras.Sequential.from_config(json.loads(json.dumps(model.get_config())))
    weights = [f[f"w{i}"] for i in range(len([k for k in f.files if k[0] == "w" and k[1:].isdigit()]))]
    model.set_weights(weights)
    kmodel.set_weights(weights)
    _close(model(f["x"]), np.asarray(kmodel(f["x"])))
    for make in LAYER_CONFIGS:
        config = {k: v for k, v in make().get_config().items() if k not in ("method", "seed")}
        klayer = getattr(keras.layers, config.pop("class_name", type(make()).__name__)).from_config(config)
        assert klayer.name == config["name"]


def test_configs_carry_the_input_shape_and_refuse_functional_models():
    """A built model's config has Keras's InputLayer and ``build_input_shape`` (Keras
    rebuilt numconv's configs unbuilt), and its dtype; a Functional model's config
    (a graph of layers) is refused, not rebuilt as a chain of its layers."""
    model = layers.Sequential([layers.Conv1D(4, 3, input_shape=(10, 3), dtype="float64"), layers.MaxPooling1D()])
    config = model.get_config()
    assert config["layers"][0]["class_name"] == "InputLayer"
    assert tuple(config["layers"][0]["config"]["batch_shape"]) == (None, 10, 3)
    assert tuple(config["build_input_shape"]) == (None, 10, 3) and config["dtype"] == "float64"
    again = layers.Sequential.from_config(json.loads(json.dumps(config)))
    assert again.built and again.output_shape == model.output_shape
    functional = {"name": "f", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 10, 3]}, "inbound_nodes": []},
        {"class_name": "Conv1D", "config": {"filters": 4, "kernel_size": 3}, "inbound_nodes": [{"args": []}]}],
        "input_layers": [["input_layer", 0, 0]], "output_layers": [["conv1d", 0, 0]]}
    with pytest.raises(ValueError, match="Functional model's config"):
        layers.Sequential.from_config(functional)
    with pytest.raises(ValueError, match="this is a Functional model's config"):
        layers.Sequential.from_config({"class_name": "Functional", "config": functional})


def test_output_channels_known_without_the_inputs_and_weightless_layers_count_zero():
    """As Keras: ``filters`` is the output channel count even where the input's is
    None (only depthwise scales with it), and a pooling layer has 0 parameters
    built or not (count_params raised)."""
    assert layers.Conv1D(4, 3).compute_output_shape((5, 10, None)) == (5, 8, 4)
    assert layers.Conv2D(4, 3, data_format="channels_first").compute_output_shape((None, None, 6, 6)) == \
        (None, 4, 4, 4)
    assert layers.Conv2DTranspose(4, 3).compute_output_shape((None, 6, 6, None)) == (None, 8, 8, 4)
    assert layers.DepthwiseConv1D(3, depth_multiplier=2).compute_output_shape((None, 10, None)) == (None, 8, None)
    assert layers.MaxPooling2D().count_params() == 0
    assert layers.Sequential([layers.MaxPooling1D(), layers.GlobalAveragePooling1D()]).count_params() == 0
