"""Keras example "Timeseries classification from scratch", run with rankconv and with Keras 3.

Source: keras-team/keras-io, examples/timeseries/timeseries_classification_from_scratch.py (hfawaz),
the Keras 3 version (`import keras`, checkpoint "best_model.keras") rendered in
examples/timeseries/md/timeseries_classification_from_scratch.md; stored .py version
ad4fc805f5e1a4a4c0bcdd416aa9feac6608fb6c is the same code with `from tensorflow import keras`
and "best_model.h5".

Changes, each marked `# CHANGED` below:
- imports: `import keras` became the `keras` argument; `import matplotlib.pyplot as plt` is gone
  and with it the two plots (class examples, accuracy curves), which only draw;
- data: `readucr(root_url + "FordA_TRAIN.tsv")` / `"FordA_TEST.tsv"` download the FordA TSV files;
  replaced by synthetic z-normalized series of the same length (500) with labels in {-1, 1} as in
  FordA, 128 train and 64 test samples instead of 3601 and 1320;
- `keras.utils.plot_model(model, show_shapes=True)` only draws the graph (and needs pydot and
  graphviz, which the test environment does not have); left out;
- epochs: 500 -> 3 (the callbacks, with their patiences, are unchanged).
"""

import numpy as np
import pytest


def example(keras):
    # CHANGED: was `import keras`.

    def readucr(filename):
        # CHANGED: was `np.loadtxt(filename, delimiter="\t")` on the downloaded TSV (label in the
        # first column, then 500 values); synthetic rows of the same layout.
        rng = np.random.default_rng(0 if filename.endswith("TRAIN.tsv") else 1)
        count = 128 if filename.endswith("TRAIN.tsv") else 64
        labels = rng.choice([-1.0, 1.0], count)
        t = np.linspace(0, 8 * np.pi, 500)
        series = np.sin(t * (1.5 + 0.5 * labels[:, None])) + 0.5 * rng.normal(size=(count, 500))
        series = (series - series.mean(axis=1, keepdims=True)) / series.std(axis=1, keepdims=True)
        data = np.concatenate([labels[:, None], series], axis=1)
        y = data[:, 0]
        x = data[:, 1:]
        return x, y.astype(int)

    root_url = "https://raw.githubusercontent.com/hfawaz/cd-diagram/master/FordA/"

    x_train, y_train = readucr(root_url + "FordA_TRAIN.tsv")
    x_test, y_test = readucr(root_url + "FordA_TEST.tsv")

    """
    ## Visualize the data
    """

    classes = np.unique(np.concatenate((y_train, y_test), axis=0))
    # CHANGED: the plot of one series per class is left out.
    assert list(classes) == [-1, 1]

    """
    ## Standardize the data
    """

    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    x_test = x_test.reshape((x_test.shape[0], x_test.shape[1], 1))

    num_classes = len(np.unique(y_train))

    idx = np.random.permutation(len(x_train))
    x_train = x_train[idx]
    y_train = y_train[idx]

    y_train[y_train == -1] = 0
    y_test[y_test == -1] = 0

    """
    ## Build a model
    """

    def make_model(input_shape):
        input_layer = keras.layers.Input(input_shape)

        conv1 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(input_layer)
        conv1 = keras.layers.BatchNormalization()(conv1)
        conv1 = keras.layers.ReLU()(conv1)

        conv2 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(conv1)
        conv2 = keras.layers.BatchNormalization()(conv2)
        conv2 = keras.layers.ReLU()(conv2)

        conv3 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(conv2)
        conv3 = keras.layers.BatchNormalization()(conv3)
        conv3 = keras.layers.ReLU()(conv3)

        gap = keras.layers.GlobalAveragePooling1D()(conv3)

        output_layer = keras.layers.Dense(num_classes, activation="softmax")(gap)

        return keras.models.Model(inputs=input_layer, outputs=output_layer)

    model = make_model(input_shape=x_train.shape[1:])
    # CHANGED: `keras.utils.plot_model(model, show_shapes=True)` left out (drawing only).

    """
    ## Train the model
    """

    epochs = 3  # CHANGED: was 500.
    batch_size = 32

    callbacks = [
        keras.callbacks.ModelCheckpoint("best_model.keras", save_best_only=True, monitor="val_loss"),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=20, min_lr=0.0001),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, verbose=1),
    ]
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        callbacks=callbacks,
        validation_split=0.2,
        verbose=1,
    )

    """
    ## Evaluate model on test data
    """

    model = keras.models.load_model("best_model.keras")

    test_loss, test_acc = model.evaluate(x_test, y_test)

    print("Test accuracy", test_acc)
    print("Test loss", test_loss)

    """
    ## Plot the model's training and validation loss
    """

    metric = "sparse_categorical_accuracy"
    # CHANGED: the matplotlib plot of history.history[metric] and history.history["val_" + metric]
    # is left out.
    assert len(history.history[metric]) == len(history.history["val_" + metric]) == epochs
    return model, history, (test_loss, test_acc)


@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)
def test_timeseries_classification(keras):
    model, history, (test_loss, test_acc) = example(keras)
    assert model.predict(np.zeros((4, 500, 1), "float32")).shape == (4, 2)  # the reloaded best model
    assert set(history.history) >= {"loss", "val_loss", "learning_rate"}  # ReduceLROnPlateau logs it
    assert np.isfinite(test_loss) and 0.0 <= test_acc <= 1.0
