"""Keras example "3D image classification from CT scans", run with rankconv and with Keras 3.

Source: keras-team/keras-io, examples/vision/3D_image_classification.py (Hasib Zunair), the
Keras 3 version (Last modified 2024/01/11: `import keras`, `run_eagerly=True`, checkpoint
"3d_image_classification.keras") rendered in examples/vision/md/3D_image_classification.md.

Changes, each marked `# CHANGED` below:
- imports: `import keras` / `from keras import layers` became the `keras` argument and
  `layers = keras.layers`; `import tensorflow as tf` (data loading only), `zipfile`, `nibabel`
  and matplotlib are gone;
- data: the MosMedData download (`keras.utils.get_file` of CT-0.zip and CT-23.zip, 100 + 100
  NIfTI scans read with `nibabel`) is replaced by synthetic raw volumes in Hounsfield units, 4
  "normal" and 4 "abnormal" (the 70/30 split becomes 3/1 per class); `normalize`,
  `resize_volume` and `process_scan` run on them unchanged except for the target size;
- volume size: `resize_volume`'s 128 x 128 x 64 and `get_model(width=128, height=128, depth=64)`
  -> 48 x 48 x 48 (the smallest round size the four valid Conv3D + MaxPool3D blocks accept is
  46; at 128 x 128 x 64 the second Conv3D alone costs about 12 GMAC per scan);
- the `tf.data` pipelines (`from_tensor_slices`, `.shuffle().map(train_preprocessing).batch(2)`)
  became arrays: `rotate` keeps its scipy `scipy_rotate` body but is called directly instead of
  through `tf.numpy_function`, `train_preprocessing`/`validation_preprocessing` use `np.expand_dims`
  for `tf.expand_dims`, and `fit` gets the arrays with `batch_size=batch_size` (2);
- the slice plots and the accuracy/loss curves only draw; left out (the curves' loop over
  `model.history.history` is kept);
- epochs: 100 -> 2.
"""

# The example's own code is kept as written, including what the linter would modernize.
# ruff: noqa: UP031, B007

import random
import zlib

import numpy as np
import pytest
from scipy import ndimage


def example(keras):
    # CHANGED: was `import tensorflow as tf`, `import keras` and `from keras import layers`.
    layers = keras.layers

    """
    ## Loading data and preprocessing
    """

    def read_nifti_file(filepath):
        """Read and load volume"""
        # CHANGED: was `nib.load(filepath).get_fdata()`; a synthetic scan in Hounsfield units (air
        # around -1000, tissue around 40, "ground-glass" patches around -500 for abnormal scans).
        rng = np.random.default_rng(zlib.crc32(filepath.encode()))
        scan = rng.normal(40.0, 30.0, (96, 96, 24))
        scan[:10], scan[-10:] = -1000.0, -1000.0
        if "CT-23" in filepath:
            x, y, z = rng.integers(20, 70, 3)
            scan[x : x + 20, y : y + 20, z % 12 : z % 12 + 8] = -500.0
        return scan

    def normalize(volume):
        """Normalize the volume"""
        min = -1000
        max = 400
        volume[volume < min] = min
        volume[volume > max] = max
        volume = (volume - min) / (max - min)
        volume = volume.astype("float32")
        return volume

    def resize_volume(img):
        """Resize across z-axis"""
        # Set the desired depth
        desired_depth = 48  # CHANGED: was 64.
        desired_width = 48  # CHANGED: was 128.
        desired_height = 48  # CHANGED: was 128.
        # Get current depth
        current_depth = img.shape[-1]
        current_width = img.shape[0]
        current_height = img.shape[1]
        # Compute depth factor
        depth = current_depth / desired_depth
        width = current_width / desired_width
        height = current_height / desired_height
        depth_factor = 1 / depth
        width_factor = 1 / width
        height_factor = 1 / height
        # Rotate
        img = ndimage.rotate(img, 90, reshape=False)
        # Resize across z-axis
        img = ndimage.zoom(img, (width_factor, height_factor, depth_factor), order=1)
        return img

    def process_scan(path):
        """Read and resize volume"""
        # Read scan
        volume = read_nifti_file(path)
        # Normalize
        volume = normalize(volume)
        # Resize width, height and depth
        volume = resize_volume(volume)
        return volume

    # CHANGED: were `os.listdir("MosMedData/CT-0")` and `os.listdir("MosMedData/CT-23")`.
    normal_scan_paths = [f"MosMedData/CT-0/study_{i:04d}.nii.gz" for i in range(4)]
    abnormal_scan_paths = [f"MosMedData/CT-23/study_{i:04d}.nii.gz" for i in range(4)]

    print("CT scans with normal lung tissue: " + str(len(normal_scan_paths)))
    print("CT scans with abnormal lung tissue: " + str(len(abnormal_scan_paths)))

    """
    ## Build train and validation datasets
    """

    # Read and process the scans.
    # Each scan is resized across height, width, and depth and rescaled.
    abnormal_scans = np.array([process_scan(path) for path in abnormal_scan_paths])
    normal_scans = np.array([process_scan(path) for path in normal_scan_paths])

    # For the CT scans having presence of viral pneumonia
    # assign 1, for the normal ones assign 0.
    abnormal_labels = np.array([1 for _ in range(len(abnormal_scans))])
    normal_labels = np.array([0 for _ in range(len(normal_scans))])

    # Split data in the ratio 70-30 for training and validation.
    split = 3  # CHANGED: was 70 (of 100 scans per class); 3 of 4.
    x_train = np.concatenate((abnormal_scans[:split], normal_scans[:split]), axis=0)
    y_train = np.concatenate((abnormal_labels[:split], normal_labels[:split]), axis=0)
    x_val = np.concatenate((abnormal_scans[split:], normal_scans[split:]), axis=0)
    y_val = np.concatenate((abnormal_labels[split:], normal_labels[split:]), axis=0)
    print("Number of samples in train and validation are %d and %d." % (x_train.shape[0], x_val.shape[0]))

    """
    ## Data augmentation
    """

    def rotate(volume):
        """Rotate the volume by a few degrees"""

        def scipy_rotate(volume):
            # define some rotation angles
            angles = [-20, -10, -5, 5, 10, 20]
            # pick angles at random
            angle = random.choice(angles)
            # rotate volume
            volume = ndimage.rotate(volume, angle, reshape=False)
            volume[volume < 0] = 0
            volume[volume > 1] = 1
            return volume

        # CHANGED: was `tf.numpy_function(scipy_rotate, [volume], tf.float32)`.
        augmented_volume = scipy_rotate(volume).astype("float32")
        return augmented_volume

    def train_preprocessing(volume, label):
        """Process training data by rotating and adding a channel."""
        # Rotate volume
        volume = rotate(volume)
        volume = np.expand_dims(volume, axis=3)  # CHANGED: was `tf.expand_dims`.
        return volume, label

    def validation_preprocessing(volume, label):
        """Process validation data by only adding a channel."""
        volume = np.expand_dims(volume, axis=3)  # CHANGED: was `tf.expand_dims`.
        return volume, label

    # Define data loaders.
    # CHANGED: were `tf.data.Dataset.from_tensor_slices(...)`, shuffled, mapped with the
    # preprocessing functions, batched by 2 and prefetched; the functions applied per sample here.
    batch_size = 2
    train_dataset = [train_preprocessing(volume, label) for volume, label in zip(x_train, y_train)]
    train_x = np.stack([volume for volume, _ in train_dataset])
    train_y = np.array([label for _, label in train_dataset])
    validation_dataset = [validation_preprocessing(volume, label) for volume, label in zip(x_val, y_val)]
    val_x = np.stack([volume for volume, _ in validation_dataset])
    val_y = np.array([label for _, label in validation_dataset])

    # CHANGED: the plots of an augmented scan and of a montage of its slices are left out.
    print("Dimension of the CT scan is:", train_x[0].shape)

    """
    ## Define a 3D convolutional neural network
    """

    def get_model(width=128, height=128, depth=64):
        """Build a 3D convolutional neural network model."""

        inputs = keras.Input((width, height, depth, 1))

        x = layers.Conv3D(filters=64, kernel_size=3, activation="relu")(inputs)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv3D(filters=64, kernel_size=3, activation="relu")(x)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv3D(filters=128, kernel_size=3, activation="relu")(x)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv3D(filters=256, kernel_size=3, activation="relu")(x)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization()(x)

        x = layers.GlobalAveragePooling3D()(x)
        x = layers.Dense(units=512, activation="relu")(x)
        x = layers.Dropout(0.3)(x)

        outputs = layers.Dense(units=1, activation="sigmoid")(x)

        # Define the model.
        model = keras.Model(inputs, outputs, name="3dcnn")
        return model

    # Build model.
    model = get_model(width=48, height=48, depth=48)  # CHANGED: was (width=128, height=128, depth=64).
    model.summary()

    """
    ## Train model
    """

    # Compile model.
    initial_learning_rate = 0.0001
    lr_schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate, decay_steps=100000, decay_rate=0.96, staircase=True
    )
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=lr_schedule),
        metrics=["acc"],
        run_eagerly=True,
    )

    # Define callbacks.
    checkpoint_cb = keras.callbacks.ModelCheckpoint("3d_image_classification.keras", save_best_only=True)
    early_stopping_cb = keras.callbacks.EarlyStopping(monitor="val_acc", patience=15)

    # Train the model, doing validation at the end of each epoch
    epochs = 2  # CHANGED: was 100.
    model.fit(
        train_x,  # CHANGED: was `train_dataset`; arrays batched by `fit`.
        train_y,
        batch_size=batch_size,
        validation_data=(val_x, val_y),  # CHANGED: was `validation_dataset`.
        epochs=epochs,
        shuffle=True,
        verbose=2,
        callbacks=[checkpoint_cb, early_stopping_cb],
    )

    """
    ## Visualizing model performance
    """

    for i, metric in enumerate(["acc", "loss"]):
        # CHANGED: the `ax[i].plot(...)` calls, titles and legends are left out.
        assert len(model.history.history[metric]) == len(model.history.history["val_" + metric]) == epochs

    """
    ## Make predictions on a single CT scan
    """

    # Load best weights.
    model.load_weights("3d_image_classification.keras")
    prediction = model.predict(np.expand_dims(x_val[0], axis=0))[0]
    scores = [1 - prediction[0], prediction[0]]

    class_names = ["normal", "abnormal"]
    for score, name in zip(scores, class_names):
        print("This model is %.2f percent confident that CT scan is %s" % ((100 * score), name))
    return model, scores


@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)
def test_3d_image_classification(keras):
    model, scores = example(keras)
    assert model.name == "3dcnn"
    np.testing.assert_allclose(sum(scores), 1.0, rtol=1e-6)
