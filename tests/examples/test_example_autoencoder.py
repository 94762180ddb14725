"""Keras example "Convolutional autoencoder for image denoising", run with rankconv and with Keras 3.

Source: keras-team/keras-io, examples/vision/autoencoder.py (Santiago L. Valdarrama), the published
version rendered in examples/vision/md/autoencoder.md (commit 312757cc35d3971e8af8b2228a6d44a31614024d:
Conv2D/MaxPooling2D encoder, Conv2DTranspose decoder).

Changes, each marked `# CHANGED` below:
- imports: `from keras import layers`, `from keras.datasets import mnist`, `from keras.models
  import Model` (the `tensorflow.keras` spellings in that version) became the `keras` argument and
  `layers = keras.layers`, `Model = keras.models.Model`; `import tensorflow as tf` (unused by the
  code) and `import matplotlib.pyplot as plt` are gone;
- data: `mnist.load_data()` downloads MNIST; replaced by random uint8 images of the same shape and
  dtype, 256 train and 64 test images instead of 60000 and 10000;
- `display(...)` only draws images with matplotlib; it keeps its signature and picks the same
  random indices but draws nothing;
- epochs: 50 -> 1 and 100 -> 1.
"""

import numpy as np
import pytest


def example(keras):
    # CHANGED: was `from keras import layers`, `from keras.datasets import mnist` and
    # `from keras.models import Model`.
    layers = keras.layers
    Model = keras.models.Model

    def preprocess(array):
        """
        Normalizes the supplied array and reshapes it into the appropriate format.
        """

        array = array.astype("float32") / 255.0
        array = np.reshape(array, (len(array), 28, 28, 1))
        return array

    def noise(array):
        """
        Adds random noise to each image in the supplied array.
        """

        noise_factor = 0.4
        noisy_array = array + noise_factor * np.random.normal(loc=0.0, scale=1.0, size=array.shape)

        return np.clip(noisy_array, 0.0, 1.0)

    def display(array1, array2):
        """
        Displays ten random images from each one of the supplied arrays.
        """

        n = 10

        indices = np.random.randint(len(array1), size=n)
        images1 = array1[indices, :]
        images2 = array2[indices, :]
        # CHANGED: the matplotlib drawing of images1 and images2 (a 2 x 10 grid) is left out.
        assert images1.shape == images2.shape == (n, 28, 28, 1)

    """
    ## Prepare the data
    """

    # Since we only need images from the dataset to encode and decode, we
    # won't use the labels.
    # CHANGED: was `mnist.load_data()` (a download); synthetic uint8 images, fewer of them.
    rng = np.random.default_rng(0)
    (train_data, _), (test_data, _) = (
        (rng.integers(0, 256, (256, 28, 28), dtype="uint8"), None),
        (rng.integers(0, 256, (64, 28, 28), dtype="uint8"), None),
    )

    # Normalize and reshape the data
    train_data = preprocess(train_data)
    test_data = preprocess(test_data)

    # Create a copy of the data with added noise
    noisy_train_data = noise(train_data)
    noisy_test_data = noise(test_data)

    # Display the train data and a version of it with added noise
    display(train_data, noisy_train_data)

    """
    ## Build the autoencoder

    We are going to use the Functional API to build our convolutional autoencoder.
    """

    input = layers.Input(shape=(28, 28, 1))

    # Encoder
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(input)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)

    # Decoder
    x = layers.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)

    # Autoencoder
    autoencoder = Model(input, x)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    autoencoder.summary()

    """
    Now we can train our autoencoder using `train_data` as both our input data
    and target. Notice we are setting up the validation data using the same
    format.
    """

    autoencoder.fit(
        x=train_data,
        y=train_data,
        epochs=1,  # CHANGED: was 50.
        batch_size=128,
        shuffle=True,
        validation_data=(test_data, test_data),
    )

    """
    Let's predict on our test dataset and display the original image together with
    the prediction from our autoencoder.
    """

    predictions = autoencoder.predict(test_data)
    display(test_data, predictions)

    """
    Now that we know that our autoencoder works, let's retrain it using the noisy
    data as our input and the clean data as our target. We want our autoencoder to
    learn how to denoise the images.
    """

    autoencoder.fit(
        x=noisy_train_data,
        y=train_data,
        epochs=1,  # CHANGED: was 100.
        batch_size=128,
        shuffle=True,
        validation_data=(noisy_test_data, test_data),
    )

    """
    Let's now predict on the noisy data and display the results of our autoencoder.
    """

    predictions = autoencoder.predict(noisy_test_data)
    display(noisy_test_data, predictions)
    return autoencoder, predictions


@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)
def test_autoencoder(keras):
    autoencoder, predictions = example(keras)
    assert autoencoder.count_params() == 28353  # the parameter count printed in the example's summary
    assert predictions.shape == (64, 28, 28, 1)
    assert np.all((predictions >= 0) & (predictions <= 1))
