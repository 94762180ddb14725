"""Keras example "Text classification from scratch", run with rankconv and with Keras 3.

Source: keras-team/keras-io, examples/nlp/text_classification_from_scratch.py (Mark Omernick,
Francois Chollet), the Keras 3 version (`import keras`, `keras.utils.text_dataset_from_directory`,
`keras.Input(shape=(sequence_length,), dtype="int64")`, `model.summary()`); the stored .py
version ef4cd453400aae442632ffdba260673ecc09500a is the tf.keras one.

Changes, each marked `# CHANGED` below:
- imports: `import keras` / `from keras import layers` became the `keras` argument and
  `layers = keras.layers`; `import tensorflow as tf` (string ops for TextVectorization),
  `string`, `re`, `os` and `pathlib` are gone with the text processing;
- data: the IMDB download (`keras.utils.get_file`, `tar`) and `text_dataset_from_directory` are
  replaced by pre-tokenized data,
  which is what the example feeds its model after `vectorize_layer`: int64 arrays of shape
  (samples, sequence_length=500) with ids below max_features=20000, and 0/1 labels; 256 train,
  64 validation and 64 test reviews instead of 20000, 5000 and 25000;
- `TextVectorization` (string standardization, splitting and vocabulary lookup run in
  TensorFlow) is gone with the raw strings: `vectorize_text` / `train_ds.map(...)` and the
  `.cache().prefetch()` calls became the arrays above; `fit`/`evaluate` get them with the
  datasets' batch size, 32;
- the end-to-end section keeps its structure (a new `Input`, the trained `model` called on it as
  a layer, a new `Model`, compile, evaluate on the test data), but its input is the token ids
  (`shape=(sequence_length,), dtype="int64"`) instead of a string, and `vectorize_layer(inputs)`
  is gone;
- epochs: 3 -> 2.
"""

import numpy as np
import pytest


def example(keras):
    # CHANGED: was `import keras`, `from keras import layers` and `import tensorflow as tf`.
    layers = keras.layers

    batch_size = 32

    # Model constants.
    max_features = 20000
    embedding_dim = 128
    sequence_length = 500

    # CHANGED: were `keras.utils.text_dataset_from_directory(f"{dirpath}/aclImdb/...")` datasets
    # of raw reviews, vectorized by `TextVectorization`; pre-tokenized arrays of the same shape and
    # dtype as the vectorized data (padded with 0 at the end, as TextVectorization pads).
    rng = np.random.default_rng(0)

    def tokenized_reviews(count):
        labels = rng.integers(0, 2, count)
        lengths = rng.integers(50, sequence_length + 1, count)
        ids = rng.integers(2, max_features, (count, sequence_length))
        ids[:, :5] = np.where(labels[:, None] == 1, 11, 12)  # a "word" that gives the label away
        ids[np.arange(sequence_length)[None, :] >= lengths[:, None]] = 0
        return ids.astype("int64"), labels

    x_train, y_train = tokenized_reviews(256)
    x_val, y_val = tokenized_reviews(64)
    x_test, y_test = tokenized_reviews(64)

    """
    ## Build a model

    We choose a simple 1D convnet starting with an `Embedding` layer.
    """

    # A integer input for vocab indices.
    inputs = keras.Input(shape=(sequence_length,), dtype="int64")
    # Next, we add a layer to map those vocab indices into a space of dimensionality
    # 'embedding_dim'.
    x = keras.layers.Embedding(max_features, embedding_dim)(inputs)
    x = layers.Dropout(0.5)(x)

    # Conv1D + global max pooling
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)

    # We add a vanilla hidden layer:
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)

    # We project onto a single unit output layer, and squash it with a sigmoid:
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)

    model = keras.Model(inputs, predictions)
    model.summary()
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])

    """
    ## Train the model
    """

    epochs = 2  # CHANGED: was 3.

    # Fit the model using the train and test datasets.
    # CHANGED: was `model.fit(train_ds, validation_data=val_ds, epochs=epochs)`.
    model.fit(x_train, y_train, batch_size=batch_size, validation_data=(x_val, y_val), epochs=epochs)

    """
    ## Evaluate the model on the test set
    """

    score = model.evaluate(x_test, y_test, batch_size=batch_size)  # CHANGED: was `model.evaluate(test_ds)`.

    """
    ## Make an end-to-end model
    """

    # A string input
    # CHANGED: was `keras.Input(shape=(1,), dtype="string")` followed by
    # `indices = vectorize_layer(inputs)`; the input is the token ids themselves.
    inputs = keras.Input(shape=(sequence_length,), dtype="int64")
    # Turn strings into vocab indices
    indices = inputs
    # Turn vocab indices into predictions
    outputs = model(indices)

    # Our end to end model
    end_to_end_model = keras.Model(inputs, outputs)
    end_to_end_model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])

    # Test it with `raw_test_ds`, which yields raw strings
    # CHANGED: was `end_to_end_model.evaluate(raw_test_ds)`.
    end_to_end_score = end_to_end_model.evaluate(x_test, y_test, batch_size=batch_size)
    return score, end_to_end_score


@pytest.mark.parametrize("keras", ["rankconv", "keras"], indirect=True)
def test_text_classification(keras):
    score, end_to_end_score = example(keras)
    # the end-to-end model wraps the trained one: same loss and accuracy on the same test data
    np.testing.assert_allclose(end_to_end_score, score, rtol=1e-5)
