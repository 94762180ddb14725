"""Kim's (2014) training recipe and K-fold cross-validation for sentence classifiers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rankconv import callbacks, optimizers, utils
from rankconv.text.model import kim_cnn
from rankconv.text.vocabulary import TextVectorizer


@dataclass
class TextClassifier:
    """A trained model with what it needs to read raw text: the vectorizer and the class names."""

    model: object
    vectorizer: TextVectorizer
    classes: list[str]
    history: dict = field(default_factory=dict)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        return self.model.predict(self.vectorizer(list(texts)), batch_size=batch_size, verbose=0)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def save(self, path) -> None:
        self.model.metadata = {"text": {"vectorizer": self.vectorizer.get_config(), "classes": self.classes}}
        self.model.save(path)

    @classmethod
    def load(cls, path) -> TextClassifier:
        from rankconv import saving

        model = saving.load_model(path)
        text = model.metadata.get("text") if isinstance(model.metadata, dict) else None
        if not text:
            raise ValueError(f"{path} is a model file but not a rankconv text model (it has no vocabulary).")
        return cls(model, TextVectorizer.from_config(text["vectorizer"]), list(text["classes"]))


class ZeroPaddingRow(callbacks.Callback):
    """Kim's `set_zero`: after every update, put the padding word's vector (row 0) of each trainable
    embedding back to zero, so padding contributes nothing to any filter and sentences of different
    lengths look alike at their edges."""

    def on_train_batch_end(self, batch, logs=None):
        for layer in self.model.layers:
            table = getattr(layer, "embeddings", None)
            if table is not None and layer.trainable:
                table.numpy()[0] = 0


class BestDevEpoch(callbacks.Callback):
    """Kim's model selection: after every epoch, if the dev accuracy is at least the best so far
    (`>=`, as his code: of equal epochs the later one wins), keep that epoch's weights; at the end
    of training, put the kept weights back."""

    def __init__(self, monitor="val_accuracy"):
        super().__init__()
        self.monitor = monitor
        self.best = None
        self.best_epoch = None
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self.best_weights = None, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and (self.best is None or value >= self.best):
            self.best, self.best_epoch, self.best_weights = value, epoch, self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def train_classifier(
    texts,
    labels,
    *,
    mode="rand",
    embeddings=None,
    epochs=25,
    batch_size=50,
    dev_fraction=0.1,
    windows=(3, 4, 5),
    filters=100,
    embedding_dim=300,
    dropout=0.5,
    max_norm=3.0,
    patience=None,
    seed=0,
    initialization="kim",
    separable=False,
    verbose=1,
    vectorizer=None,
    extra_callbacks=(),
) -> TextClassifier:
    """Kim's recipe: Adadelta (rho 0.95, eps 1e-6), mini-batches of 50, dropout 0.5, max-norm s = 3 on
    the output layer (in his parametrization; see `kim_cnn`), model selection on a dev split taken
    from the training data: as Kim, all `epochs` run and the weights of the best dev epoch are kept, the later of equal epochs (`BestDevEpoch`;
    `patience=k` stops after k epochs without improvement instead, keeping the first best; on MR
    fold 1, patience 5 gave 74.5% and Kim's rule 77.5%).
    As Kim, the padding word's vector is reset to zero after every update (`ZeroPaddingRow`).
    `embeddings(vocabulary_words) -> matrix` supplies pretrained vectors."""
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels; they must match.")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"A classifier needs at least two classes; the training data has only {classes}.")
    utils.set_random_seed(seed)
    vectorizer = vectorizer or TextVectorizer.fit(texts, windows=windows)
    x = vectorizer(texts)
    y = np.array([classes.index(label) for label in labels])
    order = np.random.default_rng(seed).permutation(len(x))
    n_dev = int(round(len(x) * dev_fraction)) if dev_fraction else 0
    dev, fit = order[:n_dev], order[n_dev:]
    matrix = embeddings(vectorizer.vocabulary.words) if callable(embeddings) else embeddings
    model = kim_cnn(
        len(vectorizer.vocabulary),
        len(classes),
        embedding_dim=embedding_dim,
        windows=windows,
        filters=filters,
        dropout=dropout,
        max_norm=max_norm,
        embeddings=matrix,
        mode=mode,
        length=vectorizer.length,
        seed=seed,
        initialization=initialization,
        separable=separable,
    )
    model.compile(
        optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-6),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if not n_dev:
        stops = []
    elif patience is None:  # Kim: all epochs, the best dev epoch's weights (the later one on ties)
        stops = [BestDevEpoch("val_accuracy")]
    else:
        stops = [callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True)]
    history = model.fit(
        x[fit],
        y[fit],
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
        validation_data=(x[dev], y[dev]) if n_dev else None,
        callbacks=[ZeroPaddingRow(), *stops, *extra_callbacks],
    )
    return TextClassifier(model, vectorizer, classes, history.history)


def evaluate_classifier(classifier: TextClassifier, texts, labels) -> dict:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix (rows: true, columns: predicted)."""
    unknown = sorted(set(labels) - set(classifier.classes))
    if unknown:
        raise ValueError(f"Labels {unknown} do not occur in the model's classes {classifier.classes}.")
    predicted = classifier.predict_proba(texts).argmax(axis=1)
    truth = np.array([classifier.classes.index(label) for label in labels])
    k = len(classifier.classes)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (truth, predicted), 1)
    per_class = {}
    for i, name in enumerate(classifier.classes):
        tp = confusion[i, i]
        precision = tp / max(confusion[:, i].sum(), 1)
        recall = tp / max(confusion[i].sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        per_class[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(confusion[i].sum()),
        }
    return {
        "accuracy": float(np.trace(confusion) / max(len(truth), 1)),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "classes": list(classifier.classes),
    }


def fold_indices(count: int, folds: int, seed) -> list[np.ndarray]:
    """`cross_validate`'s partition: `range(count)` shuffled by `seed`, cut into `folds` near-equal parts."""
    return np.array_split(np.random.default_rng(seed).permutation(count), folds)


def cross_validate(texts, labels, folds=10, run_folds=None, seed=0, verbose=1, on_fold=None, **train_options) -> dict:
    """K-fold cross-validation (Kim's protocol for data without a test split).

    Folds are a seeded random partition; `run_folds` (1-based) runs only some. Each fold's vocabulary
    comes from its training part. Returns the per-fold accuracies, their mean and standard deviation.
    """
    texts, labels = list(texts), list(labels)
    if folds < 2:
        raise ValueError(f"`folds` must be at least 2; received {folds}.")
    run_folds = list(range(1, folds + 1)) if run_folds is None else list(run_folds)
    bad = [f for f in run_folds if not 1 <= f <= folds]
    if bad:
        raise ValueError(f"`run_folds` must lie in 1..{folds}; received {bad}.")
    parts = fold_indices(len(texts), folds, seed)
    results = []
    for fold in run_folds:
        test = parts[fold - 1]
        train = np.concatenate([p for i, p in enumerate(parts) if i != fold - 1])
        start = time.perf_counter()
        classifier = train_classifier(
            [texts[i] for i in train], [labels[i] for i in train], seed=seed + fold, verbose=verbose, **train_options
        )
        accuracy = evaluate_classifier(classifier, [texts[i] for i in test], [labels[i] for i in test])["accuracy"]
        result = {
            "fold": fold,
            "accuracy": accuracy,
            "seconds": time.perf_counter() - start,
            "test_size": len(test),
            "epochs": len(classifier.history.get("loss", [])),
        }
        results.append(result)
        if on_fold:
            on_fold(result)
    accuracies = np.array([r["accuracy"] for r in results])
    return {
        "folds": results,
        "mean": float(accuracies.mean()),
        "std": float(accuracies.std(ddof=1)) if len(results) > 1 else 0.0,
        "k": folds,
    }
