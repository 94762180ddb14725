"""Kim's (2014) convolutional sentence classifier, as a functional rankconv model."""

from __future__ import annotations

import numpy as np

from rankconv import constraints, initializers, layers
from rankconv.models import Model
from rankconv.text.embeddings import embedding_matrix

MODES = ("rand", "static", "nonstatic", "multichannel")
INITIALIZATIONS = ("kim", "keras")


# Kim's code initialises a ReLU convolution U[-0.01, 0.01] (the glorot-like bound of his conv-pool
# layer is for its other non-linearities) and the output layer at zero.
KIM_CONV_INIT = 0.01


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
    separable=False,
) -> Model:
    """Embedding → one Conv1D (ReLU) per window width → max over time → concatenate → dropout →
    dense softmax, with a max-norm constraint on the output layer's weight vectors.

    mode: "rand" (random embeddings, trained), "static" (pretrained, frozen), "nonstatic"
    (pretrained, trained), "multichannel" (both: a frozen and a trained copy, side by side).
    `embeddings` is the (vocab_size, embedding_dim) initial matrix (required except for "rand";
    for "rand" it defaults to `embedding_matrix`'s: U[-0.25, 0.25] with zero rows for padding, id 0,
    and for words not in the vocabulary, id 1).
    dropout: Kim's p, as his code applies it: a Keras Dropout followed by `Rescaling(1 - p)`
    ("kept_fraction"), so that training sees the kept features unscaled and inference all of them
    times 1 - p.
    max_norm: Kim's s, the bound on the L2 norm of each class's weight vector (MaxNorm on "classes").
    initialization: "kim" (as Kim's code for ReLU: each convolution U[-0.01, 0.01], the output
    layer zeros) or "keras" (Keras's defaults: glorot_uniform everywhere).
    separable: each n-gram detector a `SeparableConv1D` (a depthwise convolution over each embedding
    dimension, then a 1x1 mixing to the filters: about `embedding_dim * (window + filters)` weights per
    width instead of `embedding_dim * window * filters`), with Keras's default initializers (the
    product of two U[-0.01, 0.01] kernels would start near zero).
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
        oov = 1 if vocab_size > 1 else None
        embeddings, _ = embedding_matrix(range(vocab_size), None, embedding_dim, seed=seed, oov_index=oov)
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

    def conv_initializer():
        if initialization != "kim":
            return "glorot_uniform"
        return initializers.RandomUniform(-KIM_CONV_INIT, KIM_CONV_INIT)

    def detector(w):
        if separable:
            return layers.SeparableConv1D(filters, w, activation="relu", name=f"ngram_{w}")
        return layers.Conv1D(filters, w, activation="relu", kernel_initializer=conv_initializer(), name=f"ngram_{w}")

    pooled = [layers.GlobalMaxPooling1D(name=f"max_over_time_{w}")(detector(w)(words)) for w in windows]
    features = layers.Concatenate(name="features")(pooled) if len(pooled) > 1 else pooled[0]
    # Kim's dropout: kept features pass unscaled in training, all are scaled by 1 - p at test time.
    # Keras's Dropout scales by 1 / (1 - p) in training instead; scaling its output by 1 - p gives
    # Kim's network exactly, so the output layer's weights (and with them its max-norm bound and
    # Adadelta's steps relative to them) are the ones his code trains.
    features = layers.Dropout(dropout, name="dropout")(features)
    features = layers.Rescaling(1 - dropout, name="kept_fraction")(features)
    outputs = layers.Dense(
        num_classes,
        activation="softmax",
        name="classes",
        kernel_initializer="zeros" if initialization == "kim" else "glorot_uniform",
        kernel_constraint=constraints.MaxNorm(max_norm, axis=0) if max_norm else None,
    )(features)
    return Model(tokens, outputs, name=f"kim_cnn_{mode}")
