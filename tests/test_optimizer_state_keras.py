"""Oracle: optimizer state crosses between rankconv and Keras 3 in `.keras` files, and training
continues with the same updates on either side (SGD with momentum, Adam, Adadelta)."""

import warnings

import numpy as np
import pytest

from rankconv import layers, optimizers, saving
from rankconv.models import Sequential

from oracles import keras as _keras

keras = _keras()

SETTINGS = {
    "sgd_momentum": ("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    "adam": ("Adam", {"learning_rate": 0.01}),
    "adadelta": ("Adadelta", {"learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-6}),
}
STEPS = (3, 4, 3)  # rankconv, then Keras, then rankconv again


def batches(count, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((8, 12, 3)).astype("float32"), rng.standard_normal((8, 2)).astype("float32"))
        for _ in range(count)
    ]


def rankconv_model(name):
    model = Sequential(
        [layers.Input((12, 3)), layers.Conv1D(4, 3, activation="tanh"), layers.Flatten(), layers.Dense(2)]
    )
    rng = np.random.default_rng(1)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.3 for w in model.get_weights()])
    class_name, config = SETTINGS[name]
    model.compile(getattr(optimizers, class_name)(**config), "mse")
    return model


def keras_model(name):
    model = keras.Sequential(
        [
            keras.Input((12, 3)),
            keras.layers.Conv1D(4, 3, activation="tanh"),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    rng = np.random.default_rng(1)
    model.set_weights([rng.standard_normal(tuple(w.shape)).astype("float32") * 0.3 for w in model.weights])
    class_name, config = SETTINGS[name]
    model.compile(getattr(keras.optimizers, class_name)(**config), "mse")
    return model


def train(model, data):
    for x, y in data:
        model.train_on_batch(x, y)
    return model


def weights(model):
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]


def optimizer_state(optimizer):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in optimizer.variables]


def load_in_keras(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Skipping variable loading for optimizer" fails
        return keras.saving.load_model(path)


@pytest.mark.parametrize("name", SETTINGS)
def test_rankconv_keras_rankconv_matches_an_uninterrupted_run(name, tmp_path):
    first, second, third = STEPS
    data = batches(sum(STEPS))
    uninterrupted = train(rankconv_model(name), data)

    ours = train(rankconv_model(name), data[:first])
    ours.save(tmp_path / "ours.keras")
    theirs = load_in_keras(tmp_path / "ours.keras")
    assert int(keras.ops.convert_to_numpy(theirs.optimizer.iterations)) == first
    train(theirs, data[first : first + second])
    # Keras, continuing from our state, is where rankconv would be
    reference = train(rankconv_model(name), data[: first + second])
    for a, b in zip(weights(theirs), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    for a, b in zip(optimizer_state(theirs.optimizer), reference.optimizer.state_values(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    theirs.save(tmp_path / "theirs.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        back = saving.load_model(tmp_path / "theirs.keras")
    assert back.optimizer.iterations == first + second
    train(back, data[first + second :])
    for a, b in zip(back.get_weights(), uninterrupted.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", SETTINGS)
def test_a_keras_file_s_optimizer_state_continues_in_rankconv(name, tmp_path):
    data = batches(7, seed=3)
    uninterrupted = train(keras_model(name), data)
    theirs = train(keras_model(name), data[:4])
    theirs.save(tmp_path / "theirs.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        ours = saving.load_model(tmp_path / "theirs.keras")
    assert ours.optimizer.iterations == 4
    for a, b in zip(ours.optimizer.get_weights(), optimizer_state(theirs.optimizer), strict=True):
        np.testing.assert_array_equal(a, b)
    train(ours, data[4:])
    for a, b in zip(ours.get_weights(), weights(uninterrupted), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
