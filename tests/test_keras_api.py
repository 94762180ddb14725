"""The Keras API pieces without an oracle: clear errors (naming the argument, what was expected and
what was received), the download stubs, model_from_json, and PReLU training."""

import importlib
import json
import sys
import zipfile

import numpy as np
import pytest

import rankconv
from rankconv import Input, datasets, layers, models, saving, utils
from rankconv.models import Model, Sequential
from rankconv.saving import ModelFileError

# ----------------------------------------------------------------------------- merge layers


def test_merge_layers_refuse_bad_inputs_clearly():
    x = np.ones((2, 3, 4), np.float32)
    with pytest.raises(
        ValueError, match=r"Add 'add\w*' takes a list of inputs .*received a single input of shape \(2, 3, 4\)"
    ):
        layers.Add()(x)
    with pytest.raises(ValueError, match=r"Subtract '\w+' takes exactly 2 inputs; received 3"):
        layers.subtract([x, x, x])
    with pytest.raises(ValueError, match=r"shapes broadcast .*\[\(2, 3, 4\), \(2, 2, 4\)\]"):
        layers.multiply([x, x[:, :2]])
    with pytest.raises(ValueError, match="different batch sizes"):
        layers.maximum([x, x[:1]])
    with pytest.raises(ValueError, match="takes a list of inputs"):
        layers.Average()([])
    with pytest.raises(ValueError, match=r"shapes broadcast .*\[\(None, 3, 4\), \(None, 5\)\]"):
        layers.minimum([Input((3, 4)), Input((5,))])
    with pytest.raises(ValueError, match="all other axes must match"):
        layers.concatenate([Input((3, 4)), Input((4,))])


def test_merge_functions_pass_layer_arguments():
    a, b = Input((3,)), Input((3,))
    out = layers.average([a, b], name="mean_of_two")
    assert out.node.layer.name == "mean_of_two" and isinstance(out.node.layer, layers.Average)
    assert layers.concatenate([a, b], axis=1, name="joined").node.layer.axis == 1


def test_merged_models_train():
    a, b = Input((4,)), Input((4,))
    shared = layers.Dense(3)
    out = layers.Dense(1)(layers.concatenate([layers.maximum([shared(a), shared(b)]), layers.subtract([a, b])]))
    model = Model([a, b], out)
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((32, 4)).astype(np.float32) for _ in range(2)]
    y = (x[0] - x[1]).sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < history[0]


# ----------------------------------------------------------------------------- activation layers


@pytest.mark.parametrize(
    "make,error,message",
    [
        (
            lambda: layers.ReLU(max_value=-1),
            ValueError,
            r"`max_value` must be a finite number >= 0; received max_value=-1",
        ),
        (
            lambda: layers.ReLU(negative_slope=None),
            TypeError,
            r"`negative_slope` must be a number; received negative_slope=None",
        ),
        (lambda: layers.ReLU(threshold=-0.5), ValueError, r"`threshold` must be a finite number >= 0"),
        (
            lambda: layers.ReLU(max_value="6"),
            TypeError,
            r"`max_value` must be None or a number; received max_value='6' of type str",
        ),
        (lambda: layers.LeakyReLU(-0.1), ValueError, r"LeakyReLU '\w+': `negative_slope` must be a finite number >= 0"),
        (lambda: layers.ELU(alpha=True), TypeError, r"`alpha` must be a number"),
        (
            lambda: layers.PReLU(shared_axes=[0]),
            ValueError,
            r"`shared_axes` must hold axis numbers >= 1 .*shared_axes=\[0\]",
        ),
        (lambda: layers.PReLU(alpha_initializer="nope"), ValueError, "nope"),
        (
            lambda: layers.Softmax(axis="last"),
            ValueError,
            r"`axis` must be an int or a non-empty list of ints; received axis='last'",
        ),
        (lambda: layers.Softmax(axis=[]), ValueError, "non-empty list"),
    ],
)
def test_activation_layers_refuse_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_activation_layers_refuse_bad_inputs():
    with pytest.raises(ValueError, match=r"`shared_axes` \[3\] name axes beyond the input's last axis \(2\)"):
        layers.PReLU(shared_axes=3)(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"needs known sizes .*received shape \(None, None, 4\)"):
        layers.PReLU()(Input((None, 4)))
    assert layers.PReLU(shared_axes=1)(Input((None, 4))).shape == (None, None, 4)
    prelu = layers.PReLU()
    prelu(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"was built for inputs of shape \(None, 3\).*received shape \(2, 4\)"):
        prelu(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"`axis` 3 is out of range for inputs of shape \(2, 3\)"):
        layers.Softmax(axis=3)(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"mask must broadcast .*mask shape \(2, 4\) for inputs of shape \(2, 3\)"):
        layers.Softmax()(np.ones((2, 3), np.float32), mask=np.ones((2, 4), bool))


def test_prelu_learns_its_slopes():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = np.where(x > 0, x, 0.25 * x)
    prelu = layers.PReLU()
    model = Sequential([Input((3,)), prelu])
    model.compile(rankconv.optimizers.SGD(0.5), "mse")
    model.fit(x, y, epochs=40, batch_size=64, verbose=0)
    np.testing.assert_allclose(prelu.get_weights()[0], 0.25, atol=0.01)


# ----------------------------------------------------------------------------- utils


def test_data_utilities_refuse_bad_arguments():
    with pytest.raises(ValueError, match=r"num_classes=3 needs ids in \[0, 2\]; received ids from -1 to 1"):
        utils.to_categorical([0, 1, -1], 3)
    with pytest.raises(ValueError, match=r"ids from 0 to 3"):
        utils.to_categorical([0, 3], 2)
    with pytest.raises(ValueError, match="non-integral floats"):
        utils.to_categorical([0.5, 1.0])
    np.testing.assert_array_equal(utils.to_categorical(np.array([1.0, 0.0])), [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="pass `num_classes`"):
        utils.to_categorical([])
    with pytest.raises(TypeError, match="integer class ids; received an array of dtype <U1"):
        utils.to_categorical(["a"])
    with pytest.raises(ValueError, match=r"`axis` must be an int or a tuple of ints; received axis=None"):
        utils.normalize(np.ones((2, 3)), axis=None)
    with pytest.raises(ValueError, match=r"`axis` 2 is out of range for an array of shape \(2, 3\)"):
        utils.normalize(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match="`padding` must be 'pre' or 'post'; received padding='both'"):
        utils.pad_sequences([[1]], padding="both")
    with pytest.raises(ValueError, match="`truncating` must be 'pre' or 'post'"):
        utils.pad_sequences([[1]], truncating="middle")
    with pytest.raises(ValueError, match="`maxlen` must be None or an integer >= 0; received maxlen=-1"):
        utils.pad_sequences([[1]], maxlen=-1)
    with pytest.raises(ValueError, match="entry 1 is 5"):
        utils.pad_sequences([[1], 5])
    with pytest.raises(ValueError, match=r"Sequence 1 has entries of shape \(2,\); .* are \(3,\)"):
        utils.pad_sequences([np.ones((2, 3)), np.ones((1, 2))])
    with pytest.raises(ValueError, match="`value` 'x' is a string but dtype='int32' is not"):
        utils.pad_sequences([[1]], value="x")
    with pytest.raises(ValueError, match="received no sequences"):
        utils.pad_sequences([])
    assert utils.pad_sequences([], maxlen=3).shape == (0, 3)
    assert utils.pad_sequences([[1, 2], [3]], maxlen=0).shape == (2, 0)  # Keras 3.15 fails here
    with pytest.raises(ValueError, match=r"2-D or 3-D image; received an array of shape \(1, 2, 3, 4\)"):
        utils.img_to_array(np.ones((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="`data_format` argument must be one of"):
        utils.img_to_array(np.ones((2, 3)), data_format="channels_middle")
    try:
        import PIL  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"needs Pillow \(pip install pillow\), which is not installed"):
            utils.array_to_img(np.ones((2, 3, 1)))


def test_get_file_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    with pytest.raises(utils.DownloadNotSupportedError) as caught:
        utils.get_file("mnist.npz", origin="https://example.invalid/mnist.npz")
    message = str(caught.value)
    assert "rankconv does not download files" in message and "https://example.invalid/mnist.npz" in message
    assert str(tmp_path / "home" / "datasets" / "mnist.npz") in message and "curl" in message
    assert not (tmp_path / "home").exists()  # nothing is created
    with pytest.raises(utils.DownloadNotSupportedError, match="does not download or extract"):
        utils.get_file("data.tar.gz", origin="https://example.invalid/data.tar.gz", extract=True)
    with pytest.raises(ValueError, match="needs `origin`"):
        utils.get_file("x.npz")
    with pytest.raises(ValueError, match="not a path"):
        utils.get_file("a/b.npz", origin="https://example.invalid/b.npz")
    # a file already there is returned, unless force_download asks for a new copy
    (tmp_path / "home" / "datasets").mkdir(parents=True)
    (tmp_path / "home" / "datasets" / "mnist.npz").write_bytes(b"x")
    assert utils.get_file("mnist.npz", origin="https://example.invalid/mnist.npz").endswith("mnist.npz")
    with pytest.raises(utils.DownloadNotSupportedError):
        utils.get_file("mnist.npz", origin="https://example.invalid/mnist.npz", force_download=True)


@pytest.mark.parametrize(
    "name", ["mnist", "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters", "boston_housing", "california_housing"]
)
def test_datasets_say_how_to_load_the_arrays(name):
    module = getattr(datasets, name)
    assert importlib.import_module(f"rankconv.datasets.{name}") is module is sys.modules[f"rankconv.datasets.{name}"]
    assert rankconv.datasets is datasets
    with pytest.raises(utils.DownloadNotSupportedError) as caught:
        module.load_data()
    message = str(caught.value)
    assert f"keras.datasets.{name}.load_data()" in message and "rankconv does not download" in message
    assert "https://" in message and "np." in message
    if name in ("imdb", "reuters"):
        with pytest.raises(utils.DownloadNotSupportedError, match=f"{name}_word_index.json"):
            module.get_word_index()


# ----------------------------------------------------------------------------- models and saving


def _small():
    return Sequential([Input((4,)), layers.Dense(3), layers.LeakyReLU()])


def test_load_weights_of_model_files_and_errors(tmp_path):
    model = _small()
    model.save(tmp_path / "m.keras")
    other = _small()
    other.load_weights(tmp_path / "m.keras")
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"must end in '\.weights\.h5' \(or '\.keras' .*received '.*m\.npz'"):
        other.load_weights(tmp_path / "m.npz")
    with pytest.raises(FileNotFoundError, match="No weights file"):  # a legacy .h5 name is accepted, then looked for
        other.load_weights(tmp_path / "m.h5")
    with pytest.raises(FileNotFoundError, match="No model file"):
        other.load_weights(tmp_path / "absent.keras")
    with pytest.raises(ModelFileError, match="has 3 weights|weight 'kernel' has shape"):
        Sequential([Input((5,)), layers.Dense(3)]).load_weights(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ModelFileError, match=r"lacks \['model.weights.h5'\]"):
        other.load_weights(tmp_path / "bad.keras")


def test_models_namespace_and_model_from_json(tmp_path):
    assert models.load_model is saving.load_model and models.save_model is saving.save_model
    model = _small()
    models.save_model(model, tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in models.load_model(tmp_path / "m.keras").layers] == ["Dense", "LeakyReLU"]
    text = zipfile.ZipFile(tmp_path / "m.keras").read("config.json").decode()
    rebuilt = models.model_from_json(text)
    assert json.dumps(rebuilt.get_config(), default=list) == json.dumps(model.get_config(), default=list)
    with pytest.raises(ValueError, match="custom_objects"):
        models.model_from_json(text, custom_objects={"X": object})
    with pytest.raises(TypeError, match="must be a JSON string; received dict"):
        models.model_from_json({})
    with pytest.raises(ModelFileError, match="not valid JSON"):
        models.model_from_json("{")


def test_clone_model_refuses_bad_arguments():
    model = _small()
    with pytest.raises(TypeError, match="Functional or Sequential model; received Dense"):
        models.clone_model(layers.Dense(2))
    with pytest.raises(ValueError, match="`clone_function` must be a callable; received clone_function=3"):
        models.clone_model(model, clone_function=3)
    with pytest.raises(ValueError, match="`call_function` works with functional models only"):
        models.clone_model(model, call_function=lambda layer, x: layer(x))
    with pytest.raises(ValueError, match="unexpected keyword arguments"):
        models.clone_model(model, cache={})
    with pytest.raises(ValueError, match="must be one tensor; received 2"):
        models.clone_model(model, input_tensors=[Input((4,)), Input((4,))])
    a, b = Input((4,)), Input((4,))
    functional = Model([a, b], layers.add([a, b]))
    with pytest.raises(ValueError, match=r"`input_tensors` must be 2 symbolic tensor\(s\)"):
        models.clone_model(functional, input_tensors=[Input((4,))])
    calls = []

    def call_function(layer, inputs, **kwargs):
        calls.append(layer.name)
        return layer(inputs, **kwargs)

    clone = models.clone_model(functional, call_function=call_function)
    assert calls == [functional.layers[-1].name] and len(clone.inputs) == 2


def test_clone_of_a_model_built_from_data_keeps_its_input_shape():
    model = Sequential([layers.Dense(2)])
    model.predict(np.ones((3, 5), np.float32), verbose=0)
    clone = models.clone_model(model)
    assert clone._build_input_shape == (None, 5) and clone.get_weights()[0].shape == (5, 2)


def test_missing_channel_shape_errors_stay_clear():
    model = Sequential([Input((5, 5, 3)), layers.Flatten(), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 5, 5, 3\); received \(3, 5, 5\)"):
        model.predict(np.ones((3, 5, 5), np.float32), verbose=0)
