"""Kim's (2014) convolutional sentence classifier, as a functional rankconv model."""

from __future__ import annotations

import numpy as np

from rankconv import constraints, initializers, layers
from rankconv.models import Model

MODES = ("rand", "static", "nonstatic", "multichannel")
INITIALIZATIONS = ("kim", "keras")


def kim_conv_bound(width, embedding_dim, filters, length):
    """Half-width of Kim's uniform initialisation of one convolution (Theano's LeNet conv-pool layer):
    sqrt(6 / (fan_in + fan_out)) with fan_in = width * dim and fan_out = filters * width * dim / pool,
    pool being the number of positions max-pooled over (length - width + 1)."""
    fan_in = width * embedding_dim
    fan_out = filters * width * embedding_dim / (length - width + 1)
    return float(np.sqrt(6.0 / (fan_in + fan_out)))


def kim_cnn(
    vocab_size,
    num_classes,
    embedding_dim=300,
    windows=(3, 4, 5),
    filters=100,
    dropout=0.5,
    max_norm=3.0,
    embeddings=None,
    mode="rand",
    length=None,
    seed=None,
    initialization="kim",
) -> Model:
    """Embedding → one Conv1D (ReLU) per window width → max over time → concatenate → dropout →
    softmax, with a max-norm constraint on the output layer's weight vectors.

    mode: "rand" (random embeddings, trained), "static" (pretrained, frozen), "nonstatic"
    (pretrained, trained), "multichannel" (both: a frozen and a trained copy, side by side).
    `embeddings` is the (vocab_size, embedding_dim) initial matrix (required except for "rand";
    for "rand" it defaults to U[-0.25, 0.25] with a zero padding row).
    initialization: "kim" (as Kim's code: each convolution U[-b, b] with b from `kim_conv_bound`, the
    output layer zeros; needs `length`, else the convolutions keep Keras's glorot_uniform) or
    "keras" (Keras's defaults: glorot_uniform everywhere).
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}; received mode={mode!r}.")
    if initialization not in INITIALIZATIONS:
        raise ValueError(
            f"`initialization` must be one of {INITIALIZATIONS}; received initialization={initialization!r}."
        )
    if embeddings is None:
        if mode != "rand":
            raise ValueError(f"mode={mode!r} needs pretrained `embeddings` (e.g. from a word2vec or GloVe file).")
        rng = np.random.default_rng(seed)
        embeddings = rng.uniform(-0.25, 0.25, (vocab_size, embedding_dim)).astype("float32")
        embeddings[0] = 0
    embeddings = np.asarray(embeddings, dtype="float32")
    if embeddings.shape != (vocab_size, embedding_dim):
        raise ValueError(f"`embeddings` must have shape ({vocab_size}, {embedding_dim}); received {embeddings.shape}.")
    if num_classes < 2:
        raise ValueError(f"A classifier needs at least 2 classes; received num_classes={num_classes}.")
    tokens = layers.Input((length,), dtype="int32", name="tokens")

    def embedding(trainable, name):
        return layers.Embedding(vocab_size, embedding_dim, weights=[embeddings.copy()], trainable=trainable, name=name)(
            tokens
        )

    if mode == "multichannel":
        words = layers.Concatenate(name="channels")(
            [embedding(False, "static_embedding"), embedding(True, "nonstatic_embedding")]
        )
    else:
        words = embedding(mode != "static", "embedding")

    def conv_initializer(width):
        if initialization != "kim" or length is None or length < width:
            return "glorot_uniform"
        bound = kim_conv_bound(width, words.shape[-1], filters, length)
        return initializers.RandomUniform(-bound, bound)

    pooled = [
        layers.GlobalMaxPooling1D(name=f"max_over_time_{w}")(
            layers.Conv1D(filters, w, activation="relu", kernel_initializer=conv_initializer(w), name=f"ngram_{w}")(
                words
            )
        )
        for w in windows
    ]
    features = layers.Concatenate(name="features")(pooled) if len(pooled) > 1 else pooled[0]
    features = layers.Dropout(dropout, name="dropout")(features)
    outputs = layers.Dense(
        num_classes,
        activation="softmax",
        name="classes",
        kernel_initializer="zeros" if initialization == "kim" else "glorot_uniform",
        kernel_constraint=constraints.MaxNorm(max_norm, axis=0) if max_norm else None,
    )(features)
    return Model(tokens, outputs, name=f"kim_cnn_{mode}")
