"""Acceptance: a Conv2D network trained by rankconv on scikit-learn's 8×8 digits (20% held out)
reaches ≥ 97% test accuracy in under a minute."""

import time

import numpy as np
from sklearn.datasets import load_digits

from rankconv import layers, optimizers, utils
from rankconv.models import Sequential


def test_digits_cnn_reaches_97_percent_in_under_a_minute():
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target
    order = np.random.default_rng(0).permutation(len(x))
    split = int(0.8 * len(x))
    train, test = order[:split], order[split:]
    utils.set_random_seed(0)
    model = Sequential(
        [
            layers.Input((8, 8, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizers.Adam(0.003), "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x[train], y[train], batch_size=32, epochs=15, verbose=0)
    elapsed = time.perf_counter() - start
    _, accuracy = model.evaluate(x[test], y[test], verbose=0)
    print(f"digits: test accuracy {accuracy:.4f} after {elapsed:.1f} s of training")
    assert accuracy >= 0.97
    assert elapsed < 60
