"""Keras example "Simple MNIST convnet", run with rankconv and with Keras 3.

Source: keras-team/keras-io, examples/vision/mnist_convnet.py (fchollet; stored version
02cfe8063b505adc073986c91729f22039f77ad0, and its Keras 3 rendering examples/vision/md/mnist_convnet.md).

Changes, each marked `# CHANGED` below:
- imports: `import keras` / `from keras import layers` (`from tensorflow import keras` in the
  stored version) became the `keras` argument and `layers = keras.layers`;
- data: `keras.datasets.mnist.load_data()` downloads MNIST; replaced by random uint8 images and
  labels of the same shapes and dtypes, 512 train and 128 test samples instead of 60000 and 10000;
- epochs: 15 -> 2.
"""

import numpy as np
import pytest


def example(keras):
    # CHANGED: was `import keras` and `from keras import layers`.
    layers = keras.layers

    """
    ## Prepare the data
    """

    # Model / data parameters
    num_classes = 10
    input_shape = (28, 28, 1)

    # Load the data and split it between train and test sets
    # CHANGED: was `keras.datasets.mnist.load_data()` (a download); synthetic arrays of the same
    # shapes and dtypes, fewer samples.
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = (
        (rng.integers(0, 256, (512, 28, 28), dtype="uint8"), rng.integers(0, 10, 512, dtype="uint8")),
        (rng.integers(0, 256, (128, 28, 28), dtype="uint8"), rng.integers(0, 10, 128, dtype="uint8")),
    )

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (28, 28, 1)
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # convert class vectors to binary class matrices
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    """
    ## Build the model
    """

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )

    model.summary()

    """
    ## Train the model
    """

    batch_size = 128
    epochs = 2  # CHANGED: was 15.

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

    """
    ## Evaluate the trained model
    """

    score = model.evaluate(x_test, y_test, verbose=0)
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])
    return model, score


@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)
def test_mnist_convnet(keras):
    model, score = example(keras)
    assert model.count_params() == 34826  # the parameter count printed in the example's summary
    assert np.isfinite(score[0]) and 0.0 <= score[1] <= 1.0
