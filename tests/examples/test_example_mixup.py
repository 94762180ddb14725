"""Keras example "MixUp augmentation for image classification", run with rankconv and with Keras 3.

Source: keras-team/keras-io, examples/vision/mixup.py (Sayak Paul), the Keras 3 version
(Last modified 2023/07/24) rendered in examples/vision/md/mixup.md.

Changes, each marked `# CHANGED` below:
- imports: `import keras` / `from keras import layers` became the `keras` argument and
  `layers = keras.layers`; the TensorFlow imports (`tf_data`, `tf_image`, `tf_random_gamma`) and
  matplotlib are gone (the preview grid only draws);
- data: `keras.datasets.fashion_mnist.load_data()` downloads Fashion-MNIST; replaced by random
  uint8 images and labels of the same shapes and dtypes: 768 train (256 of them set aside for
  validation, `val_samples` 2000 -> 256) and 256 test images instead of 60000 and 10000;
- the `tf_data` pipelines (`from_tensor_slices().shuffle().batch()`, `Dataset.zip`,
  `.map(mix_up)`, and `AUTO = tf_data.AUTOTUNE`) became arrays: `mix_up` keeps its body (with
  `keras.ops`) and is applied once to the training set and a shuffled copy of it (instead of per
  batch, per epoch), the images made backend tensors with `keras.ops.cast` as `tf_data` would
  hand them over; `sample_beta_distribution` draws with `np.random.gamma` instead of
  `tf_random_gamma`; `fit`/`evaluate` get the arrays with BATCH_SIZE;
- EPOCHS: 10 -> 2.
"""

# The example's own code is kept as written, including what the linter would modernize.
# ruff: noqa: UP032, B007

import numpy as np
import pytest


def example(keras):
    # CHANGED: was `import keras`, `from keras import layers` and the `tensorflow` imports.
    layers = keras.layers

    """
    ## Prepare the dataset
    """

    # CHANGED: was `keras.datasets.fashion_mnist.load_data()` (a download); synthetic arrays.
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = (
        (rng.integers(0, 256, (768, 28, 28), dtype="uint8"), rng.integers(0, 10, 768, dtype="uint8")),
        (rng.integers(0, 256, (256, 28, 28), dtype="uint8"), rng.integers(0, 10, 256, dtype="uint8")),
    )

    x_train = x_train.astype("float32") / 255.0
    x_train = np.reshape(x_train, (-1, 28, 28, 1))
    y_train = keras.ops.one_hot(y_train, 10)

    x_test = x_test.astype("float32") / 255.0
    x_test = np.reshape(x_test, (-1, 28, 28, 1))
    y_test = keras.ops.one_hot(y_test, 10)

    """
    ## Define hyperparameters
    """

    # CHANGED: `AUTO = tf_data.AUTOTUNE` (for the `tf_data` maps) is gone.
    BATCH_SIZE = 64
    EPOCHS = 2  # CHANGED: was 10.

    """
    ## Convert the data into TensorFlow `Dataset` objects
    """

    # Put aside a few samples to create our validation set
    val_samples = 256  # CHANGED: was 2000.
    x_val, y_val = x_train[:val_samples], y_train[:val_samples]
    new_x_train, new_y_train = x_train[val_samples:], y_train[val_samples:]

    # CHANGED: `train_ds_one` and `train_ds_two` were two shuffled, batched `tf_data` views of
    # (new_x_train, new_y_train), zipped into `train_ds`; here the first is the whole training set
    # (`fit` shuffles and batches it) and the second a shuffled copy. `tf_data` hands `mix_up`
    # tensors, not NumPy arrays: `keras.ops.cast` makes the images backend tensors, as the labels
    # from `keras.ops.one_hot` already are (with Keras's torch backend, a NumPy array times a
    # torch tensor is a TypeError).
    train_ds_one = (keras.ops.cast(new_x_train, "float32"), new_y_train)
    order = np.random.permutation(len(new_x_train))
    train_ds_two = (train_ds_one[0][order], new_y_train[order])

    """
    ## Define the mixup technique function
    """

    def sample_beta_distribution(size, concentration_0=0.2, concentration_1=0.2):
        # CHANGED: `tf_random_gamma(shape=[size], alpha=...)` -> `np.random.gamma(..., size=[size])`.
        gamma_1_sample = np.random.gamma(concentration_1, size=[size]).astype("float32")
        gamma_2_sample = np.random.gamma(concentration_0, size=[size]).astype("float32")
        return gamma_1_sample / (gamma_1_sample + gamma_2_sample)

    def mix_up(ds_one, ds_two, alpha=0.2):
        # Unpack two datasets
        images_one, labels_one = ds_one
        images_two, labels_two = ds_two
        batch_size = keras.ops.shape(images_one)[0]

        # Sample lambda and reshape it to do the mixup
        l = sample_beta_distribution(batch_size, alpha, alpha)  # noqa: E741 (the example's name)
        x_l = keras.ops.reshape(l, (batch_size, 1, 1, 1))
        y_l = keras.ops.reshape(l, (batch_size, 1))

        # Perform mixup on both images and labels by combining a pair of images/labels
        # (one from each dataset) into one image/label
        images = images_one * x_l + images_two * (1 - x_l)
        labels = labels_one * y_l + labels_two * (1 - y_l)
        return (images, labels)

    """
    ## Visualize the new augmented dataset
    """

    # First create the new dataset using our `mix_up` utility
    # CHANGED: was `train_ds.map(lambda ds_one, ds_two: mix_up(ds_one, ds_two, alpha=0.2), ...)`.
    train_ds_mu = mix_up(train_ds_one, train_ds_two, alpha=0.2)

    # Let's preview 9 samples from the dataset
    # CHANGED: was `next(iter(train_ds_mu))`, the first batch.
    sample_images, sample_labels = train_ds_mu[0][:BATCH_SIZE], train_ds_mu[1][:BATCH_SIZE]
    for i, (image, label) in enumerate(zip(sample_images[:9], sample_labels[:9])):
        # CHANGED: the `plt.subplot` / `plt.imshow(image.numpy().squeeze())` drawing is left out,
        # and `label.numpy().tolist()` (a tf.Tensor) is `label.tolist()`.
        print(label.tolist())

    """
    ## Model building
    """

    def get_training_model():
        model = keras.Sequential(
            [
                layers.Input(shape=(28, 28, 1)),
                layers.Conv2D(16, (5, 5), activation="relu"),
                layers.MaxPooling2D(pool_size=(2, 2)),
                layers.Conv2D(32, (5, 5), activation="relu"),
                layers.MaxPooling2D(pool_size=(2, 2)),
                layers.Dropout(0.2),
                layers.GlobalAveragePooling2D(),
                layers.Dense(128, activation="relu"),
                layers.Dense(10, activation="softmax"),
            ]
        )
        return model

    """
    For the sake of reproducibility, we serialize the initial random weights of our shallow
    network.
    """

    initial_model = get_training_model()
    initial_model.save_weights("initial_weights.weights.h5")

    """
    ## 1. Train the model with the mixed up dataset
    """

    model = get_training_model()
    model.load_weights("initial_weights.weights.h5")
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    # CHANGED: was `model.fit(train_ds_mu, validation_data=val_ds, epochs=EPOCHS)`.
    model.fit(*train_ds_mu, batch_size=BATCH_SIZE, validation_data=(x_val, y_val), epochs=EPOCHS)
    _, test_acc = model.evaluate(x_test, y_test, batch_size=BATCH_SIZE)  # CHANGED: was `test_ds`.
    print("Test accuracy: {:.2f}%".format(test_acc * 100))
    mixup_model = model

    """
    ## 2. Train the model *without* the mixed up dataset
    """

    model = get_training_model()
    model.load_weights("initial_weights.weights.h5")
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    # Notice that we are NOT using the mixed up dataset here
    # CHANGED: was `model.fit(train_ds_one, validation_data=val_ds, epochs=EPOCHS)`.
    model.fit(*train_ds_one, batch_size=BATCH_SIZE, validation_data=(x_val, y_val), epochs=EPOCHS)
    _, test_acc = model.evaluate(x_test, y_test, batch_size=BATCH_SIZE)  # CHANGED: was `test_ds`.
    print("Test accuracy: {:.2f}%".format(test_acc * 100))
    return initial_model, mixup_model, model


@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)
def test_mixup(keras):
    initial_model, mixup_model, model = example(keras)
    fresh = keras.Sequential.from_config(initial_model.get_config())
    fresh.load_weights("initial_weights.weights.h5")
    for saved, loaded in zip(initial_model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(saved, loaded)  # the weights file round-trips
    assert mixup_model.count_params() == model.count_params() == initial_model.count_params()
