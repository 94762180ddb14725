"""Oracle: `.keras` files round-trip between rankconv and real Keras 3, with the same predictions."""

import numpy as np
import pytest

from rankconv import layers, saving
from rankconv.models import Model, Sequential

from oracles import keras as _keras

keras = _keras()


def rankconv_text_model():
    tokens = layers.Input((20,), dtype="int32", name="tokens")
    embedded = layers.Embedding(50, 8)(tokens)
    branches = [layers.GlobalMaxPooling1D()(layers.Conv1D(4, k, activation="relu")(embedded)) for k in (3, 4, 5)]
    x = layers.Dropout(0.5)(layers.Concatenate()(branches))
    x = layers.Rescaling(0.5)(x)
    return Model(tokens, layers.Dense(2, activation="softmax")(x))


def keras_text_model():
    tokens = keras.Input((20,), dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(50, 8)(tokens)
    branches = [
        keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(4, k, activation="relu")(embedded)) for k in (3, 4, 5)
    ]
    x = keras.layers.Dropout(0.5)(keras.layers.Concatenate()(branches))
    x = keras.layers.Rescaling(0.5)(x)
    return keras.Model(tokens, keras.layers.Dense(2, activation="softmax")(x))


def rankconv_image_model():
    return Sequential(
        [
            layers.Input((8, 8, 1)),
            layers.Conv2D(4, 3, activation="relu", padding="same"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Conv2D(6, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )


def keras_image_model():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(6, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def _inputs(kind):
    rng = np.random.default_rng(0)
    if kind == "text":
        return rng.integers(0, 50, (5, 20)).astype("int32")
    return rng.random((5, 8, 8, 1)).astype("float32")


def _randomise(weights_holder, rng):
    return [
        rng.standard_normal(w.shape).astype("float32") * 0.3 + (1.0 if "variance" in getattr(w, "path", "") else 0)
        for w in weights_holder
    ]


@pytest.mark.parametrize("kind", ["text", "image"])
def test_rankconv_file_loads_in_keras_with_same_predictions(kind, tmp_path):
    model = rankconv_text_model() if kind == "text" else rankconv_image_model()
    rng = np.random.default_rng(1)
    model.set_weights(
        [np.abs(w) if "variance" in v.path else w for w, v in zip(_randomise(model.weights, rng), model.weights)]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _inputs(kind)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), model.predict(x), rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [
        layer.name for layer in model.layers if type(layer).__name__ != "InputLayer" or kind == "text"
    ]


@pytest.mark.parametrize("kind", ["text", "image"])
def test_keras_file_loads_in_rankconv_with_same_predictions(kind, tmp_path):
    model = keras_text_model() if kind == "text" else keras_image_model()
    rng = np.random.default_rng(2)
    weights = [rng.standard_normal(tuple(w.shape)).astype("float32") * 0.3 for w in model.weights]
    weights = [np.abs(w) + 0.5 if "variance" in v.path else w for w, v in zip(weights, model.weights)]
    model.set_weights(weights)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = saving.load_model(path)
    x = _inputs(kind)
    np.testing.assert_allclose(loaded.predict(x), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6)
    assert loaded.compiled and type(loaded.optimizer).__name__ == "Adam"
    # and back again
    loaded.save(tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(again(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6
    )


def test_weights_files_cross_load(tmp_path):
    ours, theirs = rankconv_image_model(), keras_image_model()
    rng = np.random.default_rng(3)
    theirs.set_weights(
        [
            np.abs(w) + 0.5 if "variance" in v.path else w
            for w, v in zip(_randomise(theirs.weights, rng), theirs.weights)
        ]
    )
    theirs.save_weights(tmp_path / "k.weights.h5")
    ours.load_weights(tmp_path / "k.weights.h5")
    x = _inputs("image")
    np.testing.assert_allclose(ours.predict(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-6)
    ours.save_weights(tmp_path / "r.weights.h5")
    fresh = keras_image_model()
    fresh.load_weights(tmp_path / "r.weights.h5")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fresh(x)), ours.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [[0.5, 2.0, -1.0], [[[0.5, 2.0, -1.0]]], 0.25])
def test_keras_rescaling_with_numpy_factors_loads_in_rankconv(scale, tmp_path):
    # Keras writes a NumPy scale as {"class_name": "__numpy__", ...}; a nested one keeps its shape
    theirs = keras.Sequential(
        [keras.Input((4, 3)), keras.layers.Rescaling(np.array(scale), offset=np.array(1.5)), keras.layers.Dense(2)]
    )
    theirs.save(tmp_path / "rescaling.keras")
    ours = saving.load_model(tmp_path / "rescaling.keras")
    x = np.random.default_rng(0).standard_normal((5, 4, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-6)
    ours.save(tmp_path / "back.keras")
    again = keras.saving.load_model(tmp_path / "back.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)), ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
