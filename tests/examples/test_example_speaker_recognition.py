"""Keras example "Speaker Recognition", run with rankconv and with Keras 3.

Source: keras-team/keras-io, examples/audio/speaker_recognition_using_cnn.py (Fadi Badine), the
Keras 3 version (Last modified 19/07/2023: `import keras`, "model.keras", EPOCHS = 1); the stored
.py version 8bda227c08adf855a8b9ec579840e2a7171fff60 is the same code on tf.keras.

Changes, each marked `# CHANGED` below:
- imports: `import keras` became the `keras` argument; `import tensorflow as tf` (data loading
  only), `os.environ["KERAS_BACKEND"] = "tensorflow"`, `shutil`, `pathlib` and IPython's
  `display, Audio` are gone;
- data: the Kaggle speaker-recognition download (5 speaker folders of 1-second 16 kHz wav files,
  plus background-noise wav files resampled with ffmpeg) is replaced by synthetic 1-second waves
  of the same shape (16000, 1), a different pitch per speaker: 40 clips instead of 7500, 8 noise
  chunks instead of 354; the folder sorting and ffmpeg resampling steps are left out;
- the `tf.data` pipeline (`paths_and_labels_to_dataset`, `.shuffle().batch()`, `.map(add_noise)`,
  `.map(audio_to_fft)`) became NumPy arrays: `add_noise` and `audio_to_fft` keep their formulas
  with `np.` in place of `tf.` (`tf.signal.fft` -> `np.fft.fft`), and `fit`/`evaluate` receive the
  arrays with the batch sizes the datasets had (`batch_size=BATCH_SIZE`, validation batches of 32);
- the demonstration prints predictions but plays no audio.
"""

# The example's own code is kept as written, including what the linter would modernize.
# ruff: noqa: UP032, B007

import numpy as np
import pytest


def example(keras):
    # CHANGED: was `import tensorflow as tf` and `import keras`.

    # Percentage of samples to use for validation
    VALID_SPLIT = 0.1

    # Seed to use when shuffling the dataset and the noise
    SHUFFLE_SEED = 43

    # The sampling rate to use.
    SAMPLING_RATE = 16000

    # The factor to multiply the noise with according to:
    #   noisy_sample = sample + noise * prop * scale
    #      where prop = sample_amplitude / noise_amplitude
    SCALE = 0.5

    BATCH_SIZE = 128
    EPOCHS = 1

    """
    ## Noise preparation
    """

    # CHANGED: was the loading of the background-noise wav files (`tf.audio.decode_wav`) and their
    # split into 1-second chunks; synthetic noise chunks of the same shape (chunks, 16000, 1).
    rng = np.random.default_rng(0)
    noises = rng.normal(0, 0.3, (8, SAMPLING_RATE, 1)).astype("float32")

    print("{} noise samples where each is {} sec. long".format(noises.shape[0], noises.shape[1] // SAMPLING_RATE))

    """
    ## Dataset generation
    """

    def add_noise(audio, noises=None, scale=0.5):
        if noises is not None:
            # Create a random tensor of the same size as audio ranging from
            # 0 to the number of noise stream samples that we have.
            # CHANGED: `tf.random.uniform`, `tf.gather`, `tf.math.reduce_max`, `tf.repeat` and
            # `tf.expand_dims` became their NumPy equivalents.
            tf_rnd = np.random.randint(0, noises.shape[0], (audio.shape[0],))
            noise = noises[tf_rnd]

            # Get the amplitude proportion between the audio and the noise
            prop = np.max(audio, axis=1) / np.max(noise, axis=1)
            prop = np.repeat(np.expand_dims(prop, axis=1), audio.shape[1], axis=1)

            # Adding the rescaled noise to audio
            audio = audio + noise * prop * scale

        return audio

    def audio_to_fft(audio):
        # Since tf.signal.fft applies FFT on the innermost dimension,
        # we need to squeeze the dimensions and then expand them again
        # after FFT
        # CHANGED: `tf.squeeze`, `tf.signal.fft`, `tf.expand_dims` and `tf.math.abs` became
        # `np.squeeze`, `np.fft.fft`, `np.expand_dims` and `np.abs`.
        audio = np.squeeze(audio, axis=-1)
        fft = np.fft.fft(audio)
        fft = np.expand_dims(fft, axis=-1)

        # Return the absolute value of the first half of the FFT
        # which represents the positive frequencies
        return np.abs(fft[:, : (audio.shape[1] // 2), :]).astype("float32")

    # Get the list of audio file paths along with their corresponding labels

    # CHANGED: was `os.listdir(DATASET_AUDIO_PATH)`, the dataset's speaker folders.
    class_names = ["Benjamin_Netanyau", "Jens_Stoltenberg", "Julia_Gillard", "Magaret_Tarcher", "Nelson_Mandela"]
    print("Our class names: {}".format(class_names))

    # CHANGED: were lists of wav paths per speaker, decoded later by `path_to_audio`; synthetic
    # waves of the same shape, 8 per speaker.
    t = np.arange(SAMPLING_RATE) / SAMPLING_RATE
    audios = []
    labels = []
    for label, _name in enumerate(class_names):
        pitch = 110.0 * (label + 1)
        for _ in range(8):
            wave = np.sin(2 * np.pi * pitch * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
            audios.append(wave.reshape(SAMPLING_RATE, 1).astype("float32"))
        labels += [label] * 8

    print("Found {} files belonging to {} classes.".format(len(audios), len(class_names)))

    # Shuffle
    rng = np.random.RandomState(SHUFFLE_SEED)
    rng.shuffle(audios)
    rng = np.random.RandomState(SHUFFLE_SEED)
    rng.shuffle(labels)

    # Split into training and validation
    num_val_samples = int(VALID_SPLIT * len(audios))
    print("Using {} files for training.".format(len(audios) - num_val_samples))
    train_audios = np.stack(audios[:-num_val_samples])
    train_labels = np.array(labels[:-num_val_samples])

    print("Using {} files for validation.".format(num_val_samples))
    valid_audios = np.stack(audios[-num_val_samples:])
    valid_labels = np.array(labels[-num_val_samples:])

    # CHANGED: was two `tf.data` datasets (shuffled, batched, then `add_noise` on the training one
    # and `audio_to_fft` on both); the same transforms on whole arrays. `fit` shuffles and batches.
    train_x = audio_to_fft(add_noise(train_audios, noises, scale=SCALE))
    valid_x = audio_to_fft(valid_audios)

    """
    ## Model Definition
    """

    def residual_block(x, filters, conv_num=3, activation="relu"):
        # Shortcut
        s = keras.layers.Conv1D(filters, 1, padding="same")(x)
        for i in range(conv_num - 1):
            x = keras.layers.Conv1D(filters, 3, padding="same")(x)
            x = keras.layers.Activation(activation)(x)
        x = keras.layers.Conv1D(filters, 3, padding="same")(x)
        x = keras.layers.Add()([x, s])
        x = keras.layers.Activation(activation)(x)
        return keras.layers.MaxPool1D(pool_size=2, strides=2)(x)

    def build_model(input_shape, num_classes):
        inputs = keras.layers.Input(shape=input_shape, name="input")

        x = residual_block(inputs, 16, 2)
        x = residual_block(x, 32, 2)
        x = residual_block(x, 64, 3)
        x = residual_block(x, 128, 3)
        x = residual_block(x, 128, 3)

        x = keras.layers.AveragePooling1D(pool_size=3, strides=3)(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(256, activation="relu")(x)
        x = keras.layers.Dense(128, activation="relu")(x)

        outputs = keras.layers.Dense(num_classes, activation="softmax", name="output")(x)

        return keras.models.Model(inputs=inputs, outputs=outputs)

    model = build_model((SAMPLING_RATE // 2, 1), len(class_names))

    model.summary()

    # Compile the model using Adam's default learning rate
    model.compile(optimizer="Adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # Add callbacks:
    # 'EarlyStopping' to stop training when the model is not enhancing anymore
    # 'ModelCheckPoint' to always keep the model that has the best val_accuracy
    model_save_filename = "model.keras"

    earlystopping_cb = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    mdlcheckpoint_cb = keras.callbacks.ModelCheckpoint(model_save_filename, monitor="val_accuracy", save_best_only=True)

    """
    ## Training
    """

    history = model.fit(
        train_x,  # CHANGED: was `train_ds`; arrays, batched by `fit`.
        train_labels,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        validation_data=(valid_x, valid_labels),  # CHANGED: was `valid_ds`, batches of 32.
        validation_batch_size=32,
        callbacks=[earlystopping_cb, mdlcheckpoint_cb],
    )

    """
    ## Evaluation
    """

    print(model.evaluate(valid_x, valid_labels, batch_size=32))  # CHANGED: was `model.evaluate(valid_ds)`.

    """
    ## Demonstration
    """

    SAMPLES_TO_DISPLAY = 10

    # CHANGED: was a `tf.data` dataset of the validation clips with noise, of which one batch is taken.
    audios = add_noise(valid_audios, noises, scale=SCALE)
    labels = valid_labels
    # Get the signal FFT
    ffts = audio_to_fft(audios)
    # Predict
    y_pred = model.predict(ffts)
    # Take random samples
    rnd = np.random.randint(0, len(audios), SAMPLES_TO_DISPLAY)  # CHANGED: was `BATCH_SIZE`, a full batch.
    audios = audios[rnd, :, :]
    labels = labels[rnd]
    y_pred = np.argmax(y_pred, axis=-1)[rnd]

    for index in range(SAMPLES_TO_DISPLAY):
        # For every sample, print the true and predicted label
        print(
            "Speaker:\33{} {}\33[0m\tPredicted:\33{} {}\33[0m".format(
                "[92m" if labels[index] == y_pred[index] else "[91m",
                class_names[labels[index]],
                "[92m" if labels[index] == y_pred[index] else "[91m",
                class_names[y_pred[index]],
            )
        )
        # CHANGED: `display(Audio(...))`, which plays the clip, is left out.
    return model, history, y_pred


@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)
def test_speaker_recognition(keras):
    model, history, y_pred = example(keras)
    assert len(history.history["val_accuracy"]) == 1
    assert y_pred.shape == (10,) and np.all((y_pred >= 0) & (y_pred < 5))
    assert keras.models.load_model("model.keras").count_params() == model.count_params()
