"""A model used as a layer of another model: building, calling, training, and `.keras` files both
ways with real Keras 3 as the oracle (Keras's layout: nested `Functional`/`Sequential` entries in
the config, `layers/functional/layers/...` groups in the weights file)."""

import numpy as np
import pytest

import rankconv
from rankconv import layers, saving

from oracles import keras as _keras

keras = _keras()


def _build(namespace, lay):
    encoder = namespace.Sequential(
        [namespace.Input((8, 8, 1)), lay.Conv2D(4, 3, padding="same", activation="relu"), lay.MaxPooling2D()],
        name="encoder",
    )
    head_in = namespace.Input((4, 4, 4))
    head = namespace.Model(head_in, lay.Dense(3)(lay.Flatten()(head_in)), name="head")
    x = namespace.Input((8, 8, 1), name="image")
    features = encoder(x)
    outputs = head(features)
    functional = namespace.Model(x, outputs, name="outer")
    stacked = namespace.Sequential([namespace.Input((8, 8, 1)), encoder, lay.Flatten(), lay.Dense(2)], name="stack")
    return functional, stacked


def _randomise(model, rng):
    model.set_weights([rng.standard_normal(tuple(w.shape)).astype("float32") * 0.3 for w in model.weights])


def test_nested_models_compute_train_and_count_like_their_layers():
    functional, stacked = _build(rankconv, layers)
    x = np.random.default_rng(0).standard_normal((5, 8, 8, 1)).astype("float32")
    encoder, head = functional.get_layer("encoder"), functional.get_layer("head")
    np.testing.assert_allclose(functional.predict(x), head.predict(encoder.predict(x)), rtol=1e-6, atol=1e-6)
    assert functional.count_params() == encoder.count_params() + head.count_params()
    assert len(functional.trainable_weights) == 4
    functional.compile("adam", "mse")
    before = [w.copy() for w in encoder.get_weights()]
    functional.fit(x, np.zeros((5, 3), "float32"), epochs=2, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, encoder.get_weights()))  # shared: trained
    encoder.trainable = False
    assert len(functional.trainable_weights) == 2 and len(stacked.trainable_weights) == 2


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_nested_model_files_load_both_ways(kind, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8, 8, 1)).astype("float32")
    ours = _build(rankconv, layers)[kind == "sequential"]
    _randomise(ours, rng)
    ours.save(tmp_path / "ours.keras")
    in_keras = keras.saving.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(in_keras(x)), ours.predict(x), rtol=1e-5, atol=1e-5)
    theirs = _build(keras, keras.layers)[kind == "sequential"]
    _randomise(theirs, rng)
    theirs.save(tmp_path / "theirs.keras")
    back = saving.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(back.predict(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-5)
    assert [type(layer).__name__ for layer in back.layers] == [type(layer).__name__ for layer in ours.layers]


def test_nesting_depth_is_bounded(tmp_path):
    from rankconv.saving import serialization

    entry = {"class_name": "Sequential", "config": {"name": "s", "layers": []}}
    for _ in range(serialization.MAX_NESTING + 2):
        entry = {"class_name": "Sequential", "config": {"name": "s", "layers": [entry]}}
    with pytest.raises(saving.ModelFileError, match="nested more than"):
        serialization.model_from_config(entry)


def test_a_multi_output_model_cannot_be_nested_yet():
    i = rankconv.Input((3,))
    two = rankconv.Model(i, [layers.Dense(2)(i), layers.Dense(1)(i)])
    with pytest.raises(ValueError, match="has 2 outputs; rankconv nests models with one output"):
        two(rankconv.Input((3,)))
