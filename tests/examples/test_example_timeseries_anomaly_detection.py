"""Keras example "Timeseries anomaly detection using an Autoencoder", run with rankconv and Keras 3.

Source: keras-team/keras-io, examples/timeseries/timeseries_anomaly_detection.py (pavithrasv),
stored version ad4fc805f5e1a4a4c0bcdd416aa9feac6608fb6c (its Keras 3 version differs only in
`import keras` / `from keras import layers`).

Changes, each marked `# CHANGED` below:
- imports: `from tensorflow import keras` / `from tensorflow.keras import layers` became the
  `keras` argument and `layers = keras.layers`; `import pandas as pd` and matplotlib are gone
  (pandas is not installed in the test environment; the plots only draw);
- data: `pd.read_csv(<NAB url>, parse_dates=True, index_col="timestamp")` downloads two NAB series
  (a daily pattern sampled every 5 minutes, 4032 values; the test one with a jump up). Replaced
  by synthetic NumPy arrays of shape (values, 1), the layout of `df.values`, with a daily period
  of 288 steps and a jump in the test series, 2 days (576 values) instead of 14; the DataFrame
  calls `df.mean()`, `df.std()`, `df.values` and `df.iloc[...]` became the NumPy equivalents;
- epochs: 50 -> 2.
"""

import numpy as np
import pytest


def example(keras):
    # CHANGED: was `from tensorflow import keras` and `from tensorflow.keras import layers`.
    layers = keras.layers

    """
    ## Load the data
    """

    # CHANGED: were `pd.read_csv(df_small_noise_url, ...)` and `pd.read_csv(df_daily_jumpsup_url, ...)`
    # (downloads of artificialNoAnomaly/art_daily_small_noise.csv and
    # artificialWithAnomaly/art_daily_jumpsup.csv); synthetic series in the layout of `df.values`.
    rng = np.random.default_rng(0)
    steps = np.arange(288 * 2)
    daily = 20 + 60 * (np.sin(2 * np.pi * steps / 288) > 0.3)
    df_small_noise = (daily + rng.normal(0, 2, steps.size)).reshape(-1, 1)
    df_daily_jumpsup = (daily + rng.normal(0, 2, steps.size) + 60 * ((steps > 400) & (steps < 420))).reshape(-1, 1)

    """
    ## Prepare training data
    """

    # Normalize and save the mean and std we get,
    # for normalizing test data.
    training_mean = df_small_noise.mean(axis=0)  # CHANGED: was `df_small_noise.mean()` (pandas).
    training_std = df_small_noise.std(axis=0, ddof=1)  # CHANGED: was `df_small_noise.std()` (pandas).
    df_training_value = (df_small_noise - training_mean) / training_std
    print("Number of training samples:", len(df_training_value))

    """
    ### Create sequences
    """

    TIME_STEPS = 288

    # Generated training sequences for use in the model.
    def create_sequences(values, time_steps=TIME_STEPS):
        output = []
        for i in range(len(values) - time_steps + 1):
            output.append(values[i : (i + time_steps)])
        return np.stack(output)

    x_train = create_sequences(df_training_value)  # CHANGED: was `df_training_value.values` (pandas).
    print("Training input shape: ", x_train.shape)

    """
    ## Build a model
    """

    model = keras.Sequential(
        [
            layers.Input(shape=(x_train.shape[1], x_train.shape[2])),
            layers.Conv1D(filters=32, kernel_size=7, padding="same", strides=2, activation="relu"),
            layers.Dropout(rate=0.2),
            layers.Conv1D(filters=16, kernel_size=7, padding="same", strides=2, activation="relu"),
            layers.Conv1DTranspose(filters=16, kernel_size=7, padding="same", strides=2, activation="relu"),
            layers.Dropout(rate=0.2),
            layers.Conv1DTranspose(filters=32, kernel_size=7, padding="same", strides=2, activation="relu"),
            layers.Conv1DTranspose(filters=1, kernel_size=7, padding="same"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    model.summary()

    """
    ## Train the model
    """

    history = model.fit(
        x_train,
        x_train,
        epochs=2,  # CHANGED: was 50.
        batch_size=128,
        validation_split=0.1,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, mode="min")],
    )

    # CHANGED: the plot of history.history["loss"] and history.history["val_loss"] is left out.
    assert len(history.history["loss"]) == len(history.history["val_loss"]) == 2

    """
    ## Detecting anomalies
    """

    # Get train MAE loss.
    x_train_pred = model.predict(x_train)
    train_mae_loss = np.mean(np.abs(x_train_pred - x_train), axis=1)

    # CHANGED: the histogram of train_mae_loss is left out.

    # Get reconstruction loss threshold.
    threshold = np.max(train_mae_loss)
    print("Reconstruction error threshold: ", threshold)

    """
    ### Compare recontruction
    """

    # CHANGED: the plot of x_train[0] against x_train_pred[0] is left out.

    """
    ### Prepare test data
    """

    df_test_value = (df_daily_jumpsup - training_mean) / training_std
    # CHANGED: the plot of df_test_value is left out.

    # Create sequences from test values.
    x_test = create_sequences(df_test_value)  # CHANGED: was `df_test_value.values` (pandas).
    print("Test input shape: ", x_test.shape)

    # Get test MAE loss.
    x_test_pred = model.predict(x_test)
    test_mae_loss = np.mean(np.abs(x_test_pred - x_test), axis=1)
    test_mae_loss = test_mae_loss.reshape(-1)

    # CHANGED: the histogram of test_mae_loss is left out.

    # Detect all the samples which are anomalies.
    anomalies = test_mae_loss > threshold
    print("Number of anomaly samples: ", np.sum(anomalies))
    print("Indices of anomaly samples: ", np.where(anomalies))

    """
    ## Plot anomalies
    """

    # data i is an anomaly if samples [(i - timesteps + 1) to (i)] are anomalies
    anomalous_data_indices = []
    for data_idx in range(TIME_STEPS - 1, len(df_test_value) - TIME_STEPS + 1):
        if np.all(anomalies[data_idx - TIME_STEPS + 1 : data_idx]):
            anomalous_data_indices.append(data_idx)

    df_subset = df_daily_jumpsup[anomalous_data_indices]  # CHANGED: was `.iloc[...]` (pandas).
    # CHANGED: the plot of df_daily_jumpsup with df_subset in red is left out.
    return model, x_test, x_test_pred, df_subset


@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)
def test_timeseries_anomaly_detection(keras):
    model, x_test, x_test_pred, df_subset = example(keras)
    assert x_test.shape == x_test_pred.shape == (288 + 1, 288, 1)
    assert np.all(np.isfinite(x_test_pred))
    assert df_subset.ndim == 2
