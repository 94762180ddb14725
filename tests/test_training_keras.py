"""Oracle: the same model in Keras 3 and in rankconv, from the same weights, on the same batches
with plain SGD, follows the same loss (the acceptance check of the training issue)."""

import numpy as np

from rankconv import layers, losses, optimizers, utils
from rankconv.models import Sequential

from oracles import keras as _keras

keras = _keras()


def _models():
    ours = Sequential(
        [
            layers.Input((8, 8, 1)),
            layers.Conv2D(8, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10, kernel_regularizer="l2"),
        ]
    )
    theirs = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, kernel_regularizer="l2"),
        ]
    )
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def test_same_losses_for_20_sgd_steps():
    rng = np.random.default_rng(0)
    x = rng.random((20 * 16, 8, 8, 1)).astype("float32")
    y = x[..., 0].mean(axis=2).argmax(axis=1)  # the brightest row: something to learn
    utils.set_random_seed(0)
    ours, theirs = _models()

    ours.compile(optimizers.SGD(learning_rate=0.1), losses.SparseCategoricalCrossentropy(from_logits=True))
    theirs.compile(
        keras.optimizers.SGD(learning_rate=0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    our_losses, their_losses = [], []
    for step in range(20):
        batch = slice(step * 16, (step + 1) * 16)
        our_losses.append(ours.train_on_batch(x[batch], y[batch]))
        their_losses.append(float(theirs.train_on_batch(x[batch], y[batch])))
    relative = np.abs(np.array(our_losses) - their_losses) / np.abs(their_losses)
    assert relative.max() <= 1e-3, (our_losses, their_losses)
    assert their_losses[-1] < their_losses[0]  # it did learn
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), rtol=1e-3, atol=1e-5)
