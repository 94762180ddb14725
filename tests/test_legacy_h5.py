"""Legacy Keras `.h5` files: whole models (`rankconv.saving.load_model("m.h5")`) and weights
(`load_weights("w.h5")`), from files written here by Keras 3's legacy HDF5 saver and from a
Keras-2-era file built by hand with h5py to the documented layout; and the loader's guards."""

import json

import h5py
import numpy as np
import pytest

from rankconv import layers, saving
from rankconv.models import Model, Sequential
from rankconv.saving import ModelFileError

from oracles import keras as _keras
from oracles import require

keras = _keras()
legacy_h5_format = require("keras.src.legacy.saving.legacy_h5_format")  # Keras 3's own legacy writer

TOLERANCE = 1e-5


def assert_close(got, want):
    scale = max(float(np.abs(want).max()), 1e-3)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE * scale)


def randomise_keras(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            np.abs(rng.standard_normal(w.shape)) + 0.5 if "variance" in w.path else rng.standard_normal(w.shape) * 0.5
            for w in model.weights
        ]
    )
    return model


def keras_image_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
            keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )


def keras_text_model():
    tokens = keras.Input((20,), dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(50, 8)(tokens)
    branches = [
        keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(4, k, activation="relu")(embedded)) for k in (3, 4)
    ]
    x = keras.layers.Dropout(0.5)(keras.layers.Concatenate()(branches))
    x = keras.layers.LayerNormalization()(x)
    return keras.Model(tokens, keras.layers.Dense(2, activation="softmax")(x))


def image_inputs():
    return np.random.default_rng(1).random((4, 8, 8, 1)).astype("float32")


def text_inputs():
    return np.random.default_rng(2).integers(0, 50, (4, 20)).astype("int32")


# ----------------------------------------------------------------------------- Keras 3's legacy saver


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_whole_model_h5_written_by_keras(kind, tmp_path):
    theirs = randomise_keras(keras_image_model() if kind == "sequential" else keras_text_model())
    theirs.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = image_inputs() if kind == "sequential" else text_inputs()
    path = tmp_path / f"{kind}.h5"
    theirs.save(path)  # Keras 3 writes the legacy HDF5 format for a .h5 name
    ours = saving.load_model(path)
    assert type(ours).__name__ == ("Sequential" if kind == "sequential" else "Functional")
    assert_close(ours.predict(x, verbose=0), np.asarray(theirs.predict(x, verbose=0)))
    assert ours.compiled  # training_config restored


def test_legacy_weights_file_written_by_keras(tmp_path):
    theirs = randomise_keras(keras_text_model(), seed=3)
    with h5py.File(tmp_path / "w.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, theirs)
    theirs.save(tmp_path / "architecture.keras")
    ours = saving.load_model(tmp_path / "architecture.keras")  # same architecture, Keras's initial weights
    ours.load_weights(tmp_path / "w.h5")
    assert_close(ours.predict(text_inputs(), verbose=0), np.asarray(theirs.predict(text_inputs(), verbose=0)))
    # a whole legacy model file's weights load into a model too (as Keras 3 does)
    theirs.save(tmp_path / "whole.h5")
    fresh = saving.load_model(tmp_path / "architecture.keras")
    saving.load_weights(fresh, tmp_path / "whole.h5")
    assert_close(fresh.predict(text_inputs(), verbose=0), np.asarray(theirs.predict(text_inputs(), verbose=0)))


# ----------------------------------------------------------------------------- a Keras-2-era file by hand


def _initializer(name, **config):
    return {"class_name": name, "config": config}  # Keras 2: no `module`, no `registered_name`


def _conv2d(name, filters, activation, padding="valid"):
    return {
        "name": name,
        "trainable": True,
        "dtype": "float32",  # Keras 2: a plain string, not a DTypePolicy
        "filters": filters,
        "kernel_size": [3, 3],
        "strides": [1, 1],
        "padding": padding,
        "data_format": "channels_last",
        "dilation_rate": [1, 1],
        "groups": 1,
        "activation": activation,
        "use_bias": True,
        "kernel_initializer": _initializer("GlorotUniform", seed=None),
        "bias_initializer": _initializer("Zeros"),
        "kernel_regularizer": None,
        "bias_regularizer": None,
        "activity_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
    }


def _node(*sources):
    return [[[source, 0, 0, {}] for source in sources]]  # Keras 2's inbound node: nested lists


KERAS2_FUNCTIONAL = {
    "class_name": "Functional",
    "config": {
        "name": "model",
        "layers": [
            {
                "class_name": "InputLayer",
                "config": {
                    "batch_input_shape": [None, 8, 8, 1],
                    "dtype": "float32",
                    "sparse": False,
                    "ragged": False,
                    "name": "input_1",
                },
                "name": "input_1",
                "inbound_nodes": [],
            },
            {
                "class_name": "Conv2D",
                "config": _conv2d("conv2d", 4, "relu", "same"),
                "name": "conv2d",
                "inbound_nodes": _node("input_1"),
            },
            {
                "class_name": "Conv2D",
                "config": _conv2d("conv2d_1", 4, "linear", "same"),
                "name": "conv2d_1",
                "inbound_nodes": _node("input_1"),
            },
            {
                "class_name": "Add",
                "config": {"name": "add", "trainable": True, "dtype": "float32"},
                "name": "add",
                "inbound_nodes": _node("conv2d", "conv2d_1"),
            },
            {
                "class_name": "LeakyReLU",
                "config": {"name": "leaky_re_lu", "trainable": True, "dtype": "float32", "alpha": 0.2},
                "name": "leaky_re_lu",
                "inbound_nodes": _node("add"),
            },
            {
                "class_name": "MaxPooling2D",
                "config": {
                    "name": "max_pooling2d",
                    "trainable": True,
                    "dtype": "float32",
                    "pool_size": [2, 2],
                    "padding": "valid",
                    "strides": [2, 2],
                    "data_format": "channels_last",
                },
                "name": "max_pooling2d",
                "inbound_nodes": _node("leaky_re_lu"),
            },
            {
                "class_name": "Flatten",
                "config": {"name": "flatten", "trainable": True, "dtype": "float32", "data_format": "channels_last"},
                "name": "flatten",
                "inbound_nodes": _node("max_pooling2d"),
            },
            {
                "class_name": "Dense",
                "config": {
                    "name": "dense",
                    "trainable": True,
                    "dtype": "float32",
                    "units": 3,
                    "activation": "softmax",
                    "use_bias": True,
                    "kernel_initializer": _initializer("GlorotUniform", seed=None),
                    "bias_initializer": _initializer("Zeros"),
                    "kernel_regularizer": None,
                    "bias_regularizer": None,
                    "activity_regularizer": None,
                    "kernel_constraint": None,
                    "bias_constraint": None,
                },
                "name": "dense",
                "inbound_nodes": _node("flatten"),
            },
        ],
        "input_layers": [["input_1", 0, 0]],
        "output_layers": [["dense", 0, 0]],
    },
}

# tf.keras 2.x's Sequential: an InputLayer entry first
KERAS2_SEQUENTIAL = {
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {
                "class_name": "InputLayer",
                "config": {"batch_input_shape": [None, 8, 8, 1], "dtype": "float32", "name": "conv2d_input"},
            },
            {"class_name": "Conv2D", "config": _conv2d("conv2d", 4, "relu")},
            {
                "class_name": "GlobalAveragePooling2D",
                "config": {"name": "gap", "trainable": True, "dtype": "float32", "data_format": "channels_last"},
            },
            {"class_name": "Dense", "config": KERAS2_FUNCTIONAL["config"]["layers"][-1]["config"]},
        ],
    },
}

# Early Keras 2's Sequential: a bare list of layers, the first carrying `batch_input_shape`.
# (Keras 3.15's own legacy loader misreads this form: it takes the batch shape for the input shape.)
KERAS22_SEQUENTIAL = {
    "class_name": "Sequential",
    "config": [
        {"class_name": "Conv2D", "config": {**_conv2d("conv2d", 4, "relu"), "batch_input_shape": [None, 8, 8, 1]}},
        *KERAS2_SEQUENTIAL["config"]["layers"][2:],
    ],
}


def reference_functional():
    """The Keras 2 functional model above, built in rankconv: the source of the hand-made weights."""
    image = layers.Input((8, 8, 1))
    summed = layers.Add()(
        [layers.Conv2D(4, 3, padding="same", activation="relu")(image), layers.Conv2D(4, 3, padding="same")(image)]
    )
    x = layers.Flatten()(layers.MaxPooling2D()(layers.LeakyReLU(0.2)(summed)))
    return Model(image, layers.Dense(3, activation="softmax")(x))


def reference_sequential():
    return Sequential(
        [
            layers.Input((8, 8, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3, activation="softmax"),
        ]
    )


def write_keras2_file(path, config, reference, weight_names_of):
    """A Keras 2 `model.save("m.h5")` file, by hand: `model_config`, `keras_version`, `backend` on
    the root; `model_weights` with `layer_names`, and per layer `weight_names` such as
    `conv2d/kernel:0` whose datasets sit at those paths inside the layer's group."""
    rng = np.random.default_rng(5)
    for variable in reference.weights:
        variable.value[...] = rng.standard_normal(variable.shape) * 0.5
    entries = config["config"]["layers"] if isinstance(config["config"], dict) else config["config"]
    entries = [e for e in entries if e["class_name"] != "InputLayer" or e.get("name")]  # Sequential: not listed
    names = [e.get("name") or e["config"]["name"] for e in entries]
    weighted = [layer for layer in reference.layers if layer.weights]
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        f.attrs["keras_version"] = b"2.12.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["training_config"] = json.dumps(
            {
                "loss": "sparse_categorical_crossentropy",
                "metrics": [["accuracy"]],
                "weighted_metrics": None,
                "loss_weights": None,
                "optimizer_config": {
                    "class_name": "Adam",
                    "config": {"name": "Adam", "learning_rate": 0.001, "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999},
                },
            }
        ).encode("utf8")
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = [n.encode("utf8") for n in names]
        weights.attrs["backend"] = b"tensorflow"
        weights.attrs["keras_version"] = b"2.12.0"
        layers_with_weights = iter(weighted)
        for name in names:
            group = weights.create_group(name)
            own = weight_names_of(name)
            group.attrs["weight_names"] = [f"{name}/{w}:0".encode() for w in own] if own else np.zeros(0)
            if own:
                layer = next(layers_with_weights)
                for w, variable in zip(own, layer.weights):
                    group.create_dataset(f"{name}/{w}:0", data=variable.numpy())


def _weight_names(name):
    return ["kernel", "bias"] if name.startswith(("conv2d", "dense")) else []


@pytest.mark.parametrize("kind", ["functional", "sequential", "early-keras-2-sequential"])
@pytest.mark.filterwarnings("ignore:Argument `(alpha|decay)`:UserWarning:keras")  # Keras 3 reading Keras 2's names
def test_keras2_file_built_by_hand(kind, tmp_path):
    config = {"functional": KERAS2_FUNCTIONAL, "sequential": KERAS2_SEQUENTIAL}.get(kind, KERAS22_SEQUENTIAL)
    build = reference_functional if kind == "functional" else reference_sequential
    reference = build()
    path = tmp_path / "keras2.h5"
    write_keras2_file(path, config, reference, _weight_names)
    ours = saving.load_model(path)
    x = image_inputs()
    assert_close(ours.predict(x, verbose=0), reference.predict(x, verbose=0))
    assert ours.compiled
    if kind != "early-keras-2-sequential":
        # Keras 3's own loader reads the hand-made file the same way: the layout is Keras 2's
        theirs = keras.saving.load_model(path)
        assert_close(ours.predict(x, verbose=0), np.asarray(theirs.predict(x, verbose=0)))
    # and its weights alone load into a model built in rankconv
    fresh = build()
    fresh.load_weights(path)
    assert_close(fresh.predict(x, verbose=0), reference.predict(x, verbose=0))


# ----------------------------------------------------------------------------- guards


def keras2_path(tmp_path):
    path = tmp_path / "keras2.h5"
    write_keras2_file(path, KERAS2_FUNCTIONAL, reference_functional(), _weight_names)
    return path


def test_lambda_layers_are_refused_by_name(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2, name="doubler")])
    model.save(tmp_path / "lambda.h5")
    with pytest.raises(ModelFileError, match="'doubler' is a Lambda layer, which holds Python code"):
        saving.load_model(tmp_path / "lambda.h5")


def test_links_and_external_data_are_refused(tmp_path):
    path = keras2_path(tmp_path)
    with h5py.File(path, "a") as f:  # the kernel becomes a soft link to the other conv's
        del f["model_weights/conv2d/conv2d/kernel:0"]
        f["model_weights/conv2d/conv2d/kernel:0"] = h5py.SoftLink("/model_weights/conv2d_1/conv2d_1/kernel:0")
    with pytest.raises(ModelFileError, match="SoftLink"):
        saving.load_model(path)
    path = keras2_path(tmp_path)
    with h5py.File(path, "a") as f:
        del f["model_weights/dense/dense/bias:0"]
        f["model_weights/dense/dense/bias:0"] = h5py.ExternalLink("other.h5", "/bias")
    with pytest.raises(ModelFileError, match="ExternalLink"):
        saving.load_model(path)
    path = keras2_path(tmp_path)
    (tmp_path / "raw.bin").write_bytes(np.zeros(3, dtype="float32").tobytes())
    with h5py.File(path, "a") as f:
        del f["model_weights/dense/dense/bias:0"]
        f["model_weights/dense/dense"].create_dataset(
            "bias:0", shape=(3,), dtype="float32", external=[(str(tmp_path / "raw.bin"), 0, 12)]
        )
    with pytest.raises(ModelFileError, match="outside the file"):
        saving.load_model(path)
    path = keras2_path(tmp_path)
    with h5py.File(path, "a") as f:
        f["model_weights/dense"].attrs["weight_names"] = [b"dense/kernel:0", b"/model_weights/conv2d/conv2d/bias:0"]
    with pytest.raises(ModelFileError, match="not a plain path"):
        saving.load_model(path)


def test_shapes_and_kinds_are_checked_before_anything_is_assigned(tmp_path):
    path = keras2_path(tmp_path)
    with h5py.File(path, "a") as f:
        del f["model_weights/dense/dense/kernel:0"]
        f["model_weights/dense/dense"].create_dataset("kernel:0", data=np.zeros((65, 3), dtype="float32"))
    with pytest.raises(ModelFileError, match=r"Layer 'dense' weight 'kernel' has shape \(64, 3\).*\(65, 3\)"):
        saving.load_model(path)
    model = reference_functional()
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ModelFileError, match=r"Layer 'dense\w*' weight 'kernel'"):
        model.load_weights(path)
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())
    path = keras2_path(tmp_path)
    with h5py.File(path, "a") as f:
        del f["model_weights/dense/dense/bias:0"]
        f["model_weights/dense/dense"].create_dataset("bias:0", data=np.array([b"a", b"b", b"c"]))
    with pytest.raises(ModelFileError, match="must be numeric"):
        saving.load_model(path)
    longer = Sequential(
        [layers.Input((8, 8, 1)), layers.Conv2D(4, 3), layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(3)]
    )
    longer.add(layers.Dense(3))
    with pytest.raises(ModelFileError, match="weights for 3 layers.*4 layers with weights"):
        longer.load_weights(keras2_path(tmp_path))


def test_a_file_that_is_not_a_whole_model(tmp_path):
    theirs = keras_text_model()
    with h5py.File(tmp_path / "w.h5", "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, theirs)
    with pytest.raises(ModelFileError, match="no 'model_config'.*weights file"):
        saving.load_model(tmp_path / "w.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ModelFileError, match="not a readable HDF5 file"):
        saving.load_model(tmp_path / "junk.h5")
    with pytest.raises(FileNotFoundError):
        saving.load_model(tmp_path / "absent.h5")
    with pytest.raises(ValueError, match="'.keras' \\(or '.h5'"):
        saving.load_model(tmp_path / "m.zip")
