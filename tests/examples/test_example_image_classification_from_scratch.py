"""Keras example "Image classification from scratch", run with rankconv and with Keras 3.

Source: keras-team/keras-io, examples/vision/image_classification_from_scratch.py (fchollet), the
Keras 3 version (Last modified 2023/11/09) rendered in
examples/vision/md/image_classification_from_scratch.md: augmentation layers applied to the
dataset, a small Xception (Rescaling, Conv2D, SeparableConv2D residual blocks), logits with
`BinaryCrossentropy(from_logits=True)`.

Changes, each marked `# CHANGED` below:
- imports: `import keras` / `from keras import layers` became the `keras` argument and
  `layers = keras.layers`; `from tensorflow import data as tf_data`, `os` and matplotlib are gone
  (the image grids only draw);
- data: the Cats vs Dogs download, the corrupted-JPEG filter and
  `keras.utils.image_dataset_from_directory(..., subset="both")` are replaced by synthetic arrays
  of the same dtypes (float32 images in [0, 255], int32 labels 0/1): 8 training and 4 validation
  images instead of 18728 and 4682;
- `image_size`: (180, 180) -> (96, 96): the model costs about 2.4 GMAC per 180x180 image forward,
  too much for a test of a few seconds on NumPy (the model code takes any size);
- `train_ds.map(lambda img, label: (data_augmentation(img), label))` (a `tf.data` map) became one
  call of the same `data_augmentation` on the training array; `.prefetch` is gone and `fit` gets
  the arrays with `batch_size`;
- `keras.utils.plot_model(model, show_shapes=True)` only draws (and needs pydot and graphviz,
  which the test environment does not have); left out;
- epochs: 25 -> 1;
- inference: `keras.utils.load_img("PetImages/Cat/6779.jpg", target_size=image_size)` reads a file
  of the dataset; a synthetic uint8 image of that size instead (`plt.imshow(img)` is gone).
"""

import numpy as np
import pytest


def example(keras):
    # CHANGED: was `import keras`, `from keras import layers` and `from tensorflow import data as tf_data`.
    layers = keras.layers

    """
    ## Generate a `Dataset`
    """

    image_size = (96, 96)  # CHANGED: was (180, 180).
    batch_size = 128

    # CHANGED: was `keras.utils.image_dataset_from_directory("PetImages", validation_split=0.2,
    # subset="both", seed=1337, image_size=image_size, batch_size=batch_size)`; synthetic arrays.
    rng = np.random.default_rng(1337)
    train_images = rng.integers(0, 256, (8,) + image_size + (3,)).astype("float32")
    train_labels = rng.integers(0, 2, 8).astype("int32")
    val_images = rng.integers(0, 256, (4,) + image_size + (3,)).astype("float32")
    val_labels = rng.integers(0, 2, 4).astype("int32")

    """
    ## Using image data augmentation
    """

    data_augmentation_layers = [
        layers.RandomFlip("horizontal"),
        layers.RandomRotation(0.1),
    ]

    def data_augmentation(images):
        for layer in data_augmentation_layers:
            images = layer(images)
        return images

    # CHANGED: the grid of 9 augmented versions of the first image (matplotlib) is left out.

    """
    ## Configure the dataset for performance
    """

    # Apply `data_augmentation` to the training images.
    # CHANGED: was `train_ds = train_ds.map(lambda img, label: (data_augmentation(img), label), ...)`
    # and `.prefetch(tf_data.AUTOTUNE)` on both datasets.
    train_images = data_augmentation(train_images)

    """
    ## Build a model
    """

    def make_model(input_shape, num_classes):
        inputs = keras.Input(shape=input_shape)

        # Entry block
        x = layers.Rescaling(1.0 / 255)(inputs)
        x = layers.Conv2D(128, 3, strides=2, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)

        previous_block_activation = x  # Set aside residual

        for size in [256, 512, 728]:
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(size, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)

            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(size, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)

            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)

            # Project residual
            residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
            x = layers.add([x, residual])  # Add back residual
            previous_block_activation = x  # Set aside next residual

        x = layers.SeparableConv2D(1024, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)

        x = layers.GlobalAveragePooling2D()(x)
        if num_classes == 2:
            units = 1
        else:
            units = num_classes

        x = layers.Dropout(0.25)(x)
        # We specify activation=None so as to return logits
        outputs = layers.Dense(units, activation=None)(x)
        return keras.Model(inputs, outputs)

    model = make_model(input_shape=image_size + (3,), num_classes=2)
    # CHANGED: `keras.utils.plot_model(model, show_shapes=True)` left out (drawing only).

    """
    ## Train the model
    """

    epochs = 1  # CHANGED: was 25.

    callbacks = [
        keras.callbacks.ModelCheckpoint("save_at_{epoch}.keras"),
    ]
    model.compile(
        optimizer=keras.optimizers.Adam(3e-4),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="acc")],
    )
    # CHANGED: was `model.fit(train_ds, epochs=epochs, callbacks=callbacks, validation_data=val_ds)`.
    model.fit(
        train_images,
        train_labels,
        batch_size=batch_size,
        epochs=epochs,
        callbacks=callbacks,
        validation_data=(val_images, val_labels),
    )

    """
    ## Run inference on new data
    """

    # CHANGED: was `keras.utils.load_img("PetImages/Cat/6779.jpg", target_size=image_size)` and
    # `plt.imshow(img)`; a synthetic image of that size.
    img = rng.integers(0, 256, image_size + (3,), dtype="uint8")

    img_array = keras.utils.img_to_array(img)
    img_array = keras.ops.expand_dims(img_array, 0)  # Create batch axis

    predictions = model.predict(img_array)
    score = float(keras.ops.sigmoid(predictions[0][0]))
    print(f"This image is {100 * (1 - score):.2f}% cat and {100 * score:.2f}% dog.")
    return model, score


@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)
def test_image_classification_from_scratch(keras, tmp_path):
    model, score = example(keras)
    assert 0.0 < score < 1.0
    assert (tmp_path / "save_at_1.keras").is_file()  # the checkpoint of epoch 1, named by the format
