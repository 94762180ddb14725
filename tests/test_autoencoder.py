"""Acceptance: a convolutional autoencoder on scikit-learn's 8x8 digits (Conv2D stride 2 down,
Conv2DTranspose stride 2 up), trained with `fit`, reconstructs held-out digits with a mean squared
error below a third of the error of predicting the mean image — the README's example."""

import numpy as np
from sklearn.datasets import load_digits

from rankconv import layers, optimizers, utils
from rankconv.models import Sequential


def autoencoder():
    return Sequential(
        [
            layers.Input((8, 8, 1)),
            layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),  # 4x4x16
            layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),  # 2x2x8: the code
            layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu"),  # 4x4x16
            layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid"),  # 8x8x1
        ]
    )


def test_digits_autoencoder_reconstructs_held_out_digits():
    images = (load_digits().images / 16.0).astype("float32")[..., None]
    order = np.random.default_rng(0).permutation(len(images))
    split = int(0.8 * len(images))
    train, test = images[order[:split]], images[order[split:]]
    utils.set_random_seed(0)
    model = autoencoder()
    model.compile(optimizers.Adam(0.005), "mse")
    history = model.fit(train, train, batch_size=32, epochs=40, verbose=0)
    error = float(np.mean((model.predict(test) - test) ** 2))
    baseline = float(np.mean((train.mean(axis=0) - test) ** 2))
    print(f"autoencoder: held-out MSE {error:.4f} against {baseline:.4f} for the mean image")
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert error < baseline / 3
