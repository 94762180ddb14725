"""Kim's (2014) training recipe and K-fold cross-validation for sentence classifiers.

Long runs survive a kill: `train_classifier(backup_dir=...)` backs the training up after every
epoch (`callbacks.BackupAndRestore`) and resumes from there when run again; `cross_validate` and
`repeated_cross_validation` with a `backup_dir` also keep every finished fold's result there, so
a killed cross-validation resumes at the fold and epoch it reached without retraining finished
folds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rankconv import callbacks, optimizers, utils
from rankconv.text.model import kim_cnn
from rankconv.text.vocabulary import TextVectorizer

BATCHES = ("shuffle", "kim")
EVALUATION_BATCH = 256  # sentences per batch where nothing is trained (dev, test, predict)


@dataclass
class TextClassifier:
    """A trained model with what it needs to read raw text: the vectorizer and the class names."""

    model: object
    vectorizer: TextVectorizer
    classes: list[str]
    history: dict = field(default_factory=dict)
    best_epoch: int | None = None  # the 1-based epoch whose weights were kept (None: the last, no dev set)

    def predict_proba(self, texts: Sequence[str], batch_size: int = EVALUATION_BATCH) -> np.ndarray:
        """Class probabilities, one row per text. The texts are taken in order of length, in batches
        cut to their longest (`SentenceBatches`), unless the model has a fixed input length."""
        ids = self.vectorizer(list(texts))
        if not len(ids) or _model_length(self.model) is not None:
            return self.model.predict(ids, batch_size=batch_size, verbose=0)
        batches = SentenceBatches.sorted_by_length(ids, None, self.vectorizer.pad, batch_size)
        probabilities = self.model.predict(batches, verbose=0)
        result = np.empty_like(probabilities)
        result[batches.rows()] = probabilities
        return result

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


def kim_batches(count: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Kim's mini-batch composition, as row indices of shape (batches, batch_size).

    His `train_conv_net`: when the data is not a multiple of the batch size, the first
    `batch_size - count % batch_size` rows of a random permutation are appended (those sentences
    appear twice), then the whole is shuffled once and cut into consecutive batches. The batches
    stay as they are for the whole training; each epoch visits them in a new random order
    (`KimBatches`). Where he needs more extra rows than there are sentences (fewer sentences than
    one batch), the permutation is repeated."""
    if count < 1 or batch_size < 1:
        raise ValueError(f"Kim's batches need sentences and a positive batch size; received {count}, {batch_size}.")
    extra = -count % batch_size
    rows = np.arange(count)
    if extra:
        rows = np.concatenate([rows, np.resize(rng.permutation(count), extra)])
    return rng.permutation(rows).reshape(-1, batch_size)


class SentenceBatches(utils.PyDataset):
    """Padded sentences as `fit`/`evaluate`/`predict` batches, each cut to its own longest sentence.

    `x` holds rows as `TextVectorizer` makes them: `pad` zeros, the sentence's ids, zeros up to the
    full width. Batch `i` is the rows `batch_rows[i]`, cut to `min(width, longest + 2·pad + 1)`
    columns, where `longest` is the batch's longest sentence. With `pad` = widest window − 1 this
    computes exactly what the full width computes, for a convolution over the words followed by a
    max over time: every window that holds a word is kept, and every sentence keeps at least one
    window of padding alone (each of its filters' value there is the same in both, and a max does
    not count repeats) unless it has none at the full width either. On MR this leaves 81% of the
    columns of randomly composed batches, on Subj (whose longest sentence is 5× its mean) 49%.

    `y` may be None (`predict`). `batch_rows` is a list of row-index arrays; `EpochBatches`
    replaces it at the start of every training epoch, and `sorted_by_length` makes the batches of
    an evaluation, where the order of the sentences does not matter."""

    def __init__(self, x, y, pad: int, batch_rows):
        super().__init__()
        self.x, self.y, self.pad = np.asarray(x), None if y is None else np.asarray(y), int(pad)
        # where each row's words end: the last non-zero id, after the `pad` leading zeros
        nonzero = self.x != 0
        last = self.x.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
        self.ends = np.where(nonzero.any(axis=1), last, self.pad)
        self.batch_rows = list(batch_rows)

    @classmethod
    def sorted_by_length(cls, x, y, pad: int, batch_size: int) -> SentenceBatches:
        batches = cls(x, y, pad, [])
        order = np.argsort(batches.ends, kind="stable")
        batches.batch_rows = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        return batches

    def rows(self) -> np.ndarray:
        """The row order of the batches, one after another (`predict`'s outputs come in this order)."""
        return np.concatenate(self.batch_rows) if self.batch_rows else np.zeros(0, dtype=int)

    def __len__(self) -> int:
        return len(self.batch_rows)

    def __getitem__(self, index):
        rows = self.batch_rows[index]
        width = min(self.x.shape[1], int(self.ends[rows].max()) + self.pad + 1)
        batch = self.x[rows, :width]
        return batch if self.y is None else (batch, self.y[rows])


def _model_length(model):
    """The fixed input length of a text model, or None where it takes any length."""
    shape = getattr(model.inputs[0], "shape", None) if getattr(model, "inputs", None) else None
    return None if shape is None else shape[-1]


class EpochBatches(callbacks.Callback):
    """Which training sentences form each batch of each epoch, drawn at the start of the epoch and
    given to `batches` (a `SentenceBatches`, trained with `fit(batches, shuffle=False)`):

    - "shuffle" (ours): all rows reshuffled into new batches every epoch, the last one smaller;
    - "kim": his fixed batches (`kim_batches`: padded to whole batches with random repeats and
      shuffled once) visited in a new random order every epoch. (Keras 2 called this
      `shuffle="batch"`; `tests/test_text_table.py` checks the batches `fit` trains on.)

    The draws come from a generator of its own, seeded by `seed`; its state goes into a
    `BackupAndRestore` backup, and a fit resumed inside an epoch draws that epoch's batches again
    from the state it had before them."""

    def __init__(self, batches: SentenceBatches, batch_size: int, seed: int, mode: str = "shuffle"):
        super().__init__()
        if mode not in BATCHES:
            raise ValueError(f"`batches` must be one of {BATCHES}; received batches={mode!r}.")
        self.target, self.batch_size, self.mode = batches, int(batch_size), mode
        self.count = len(batches.x)
        self.rng = np.random.default_rng([seed, 3435])  # 3435: the seed of Kim's code, as a second word
        self.fixed = kim_batches(self.count, self.batch_size, self.rng) if mode == "kim" else None
        self.orders: list[np.ndarray] = []  # each epoch's order (of the batches for "kim", the rows else)
        self._epoch_start = None  # (epoch, the generator's state before that epoch's draw)
        self._replay = None
        self._draw(record=False)  # so that `fit` sees the number of batches before the first epoch

    def _draw(self, record: bool = True) -> None:
        if self.mode == "kim":
            order = self.rng.permutation(len(self.fixed)) if record else np.arange(len(self.fixed))
            rows = list(self.fixed[order])
        else:
            order = self.rng.permutation(self.count) if record else np.arange(self.count)
            rows = [order[i : i + self.batch_size] for i in range(0, self.count, self.batch_size)]
        if record:
            self.orders.append(order)
        self.target.batch_rows = rows

    def on_epoch_begin(self, epoch, logs=None):
        if self._replay is not None and self._replay[0] == epoch:
            # a fit resumed inside this epoch: draw its batches again, from the same state
            self.rng.bit_generator.state = self._replay[1]
            self.orders = self.orders[:-1]
        self._replay = None
        self._epoch_start = (epoch, self.rng.bit_generator.state)
        self._draw()

    def get_backup_state(self):
        if self._epoch_start is None:
            return None
        epoch, before = self._epoch_start
        return {"epoch": epoch, "before": before, "after": self.rng.bit_generator.state, "orders": self.orders}

    def set_backup_state(self, state) -> None:
        self.rng.bit_generator.state = state["after"]
        self._epoch_start = self._replay = (state["epoch"], state["before"])
        self.orders = [np.asarray(order) for order in state["orders"]]


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

    def get_backup_state(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "best_weights": self.best_weights}

    def set_backup_state(self, state) -> None:
        self.best, self.best_epoch, self.best_weights = state["best"], state["best_epoch"], state["best_weights"]


class TrainingHistory(callbacks.Callback):
    """The epoch logs of a whole training, kept in backups: after a resumed `fit` it still holds
    every epoch (Keras's `History` holds only the epochs of the `fit` call that returned it)."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}

    def on_train_begin(self, logs=None):
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def get_backup_state(self):
        return self.history

    def set_backup_state(self, state) -> None:
        self.history = {key: list(values) for key, values in state.items()}


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
    clean="kim",
    batches="shuffle",
    dev=None,
    backup_dir=None,
) -> TextClassifier:
    """Kim's recipe: Adadelta (rho 0.95, eps 1e-6), mini-batches of 50, dropout 0.5, max-norm s = 3 on
    the output layer (in his parametrization; see `kim_cnn`), model selection on a dev split taken
    from the training data: as Kim, all `epochs` run and the weights of the best dev epoch are kept, the later of equal epochs (`BestDevEpoch`;
    `patience=k` stops after k epochs without improvement instead, keeping the first best; on MR
    fold 1, patience 5 gave 74.5% and Kim's rule 77.5%).
    As Kim, the padding word's vector is reset to zero after every update (`ZeroPaddingRow`).
    `embeddings(vocabulary_words) -> matrix` supplies pretrained vectors.
    clean: how text is cleaned and split (`tokenize.CLEANINGS`: "kim", "kim-keep-case", "kim-sst",
    "none"); kept in the vectorizer, and so in the saved model, for `predict` and `evaluate`.
    dev: `(texts, labels)` of a given dev set to choose the epoch on (SST's fixed split); then all of
    `texts` is trained on and `dev_fraction` is not used.
    batches: "shuffle" (ours: all training sentences reshuffled into new batches every epoch, the
    last batch smaller) or "kim" (his fixed batches in a new order every epoch; `kim_batches`).
    backup_dir: a folder where the training is backed up after every epoch
    (`callbacks.BackupAndRestore`); run again with the same arguments after a kill, it continues
    from the last backup and ends as an uninterrupted run would. The backup is left in place:
    remove it (`callbacks.BackupAndRestore.remove`) once the result is safe."""
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels; they must match.")
    if batches not in BATCHES:
        raise ValueError(f"`batches` must be one of {BATCHES}; received batches={batches!r}.")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"A classifier needs at least two classes; the training data has only {classes}.")
    utils.set_random_seed(seed)
    vectorizer = vectorizer or TextVectorizer.fit(texts, windows=windows, clean=clean)
    x = vectorizer(texts)
    y = np.array([classes.index(label) for label in labels])
    if dev is not None:
        dev_texts, dev_labels = list(dev[0]), list(dev[1])
        if not dev_texts or len(dev_texts) != len(dev_labels):
            raise ValueError(
                f"The dev set needs texts and as many labels; received {len(dev_texts)} and {len(dev_labels)}."
            )
        unknown = sorted(set(dev_labels) - set(classes))
        if unknown:
            raise ValueError(f"Dev labels {unknown} do not occur in the training data's classes {classes}.")
        validation = (vectorizer(dev_texts), np.array([classes.index(label) for label in dev_labels]))
        fit = np.arange(len(x))
    else:
        order = np.random.default_rng(seed).permutation(len(x))
        n_dev = int(round(len(x) * dev_fraction)) if dev_fraction else 0
        held, fit = order[:n_dev], order[n_dev:]
        validation = (x[held], y[held]) if n_dev else None
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
        length=None,  # any length: each batch is cut to its longest sentence (`SentenceBatches`)
        seed=seed,
        initialization=initialization,
        separable=separable,
    )
    model.compile(
        optimizers.Adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-6),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if validation is None:
        stops = []
    elif patience is None:  # Kim: all epochs, the best dev epoch's weights (the later one on ties)
        stops = [BestDevEpoch("val_accuracy")]
    else:
        stops = [callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True)]
    training = SentenceBatches(x[fit], y[fit], vectorizer.pad, [])
    feed = EpochBatches(training, batch_size, seed, batches)
    if validation is not None:
        validation = SentenceBatches.sorted_by_length(*validation, vectorizer.pad, EVALUATION_BATCH)
    history = TrainingHistory()
    backup = [] if backup_dir is None else [callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False)]
    model.fit(
        training,
        epochs=epochs,
        verbose=verbose,
        validation_data=validation,
        shuffle=False,  # `feed` draws the batches
        callbacks=[feed, ZeroPaddingRow(), *stops, *extra_callbacks, history, *backup],
    )
    best = stops[0].best_epoch if stops and stops[0].best_weights is not None else None
    return TextClassifier(model, vectorizer, classes, history.history, None if best is None else best + 1)


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
        "macro": {
            key: float(np.mean([row[key] for row in per_class.values()])) for key in ("precision", "recall", "f1")
        },
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "classes": list(classifier.classes),
    }


def fold_indices(count: int, folds: int, seed) -> list[np.ndarray]:
    """`cross_validate`'s partition: `range(count)` shuffled by `seed`, cut into `folds` near-equal parts."""
    return np.array_split(np.random.default_rng(seed).permutation(count), folds)


def _json_safe(value):
    """`value` if JSON can hold it, else the name of its type (a callable's, say)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return type(value).__name__
    return value


def _data_digest(texts, labels) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(f"{len(text)}:{text}{len(str(label))}:{label}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class _ProgressFile:
    """Finished results of a long computation, kept in a JSON file written atomically and
    durably: `{"signature": what computed them, "results": {key: result}}`. A file left by a
    computation with another signature is refused, naming the differences."""

    def __init__(self, path: str, signature: dict):
        signature = json.loads(json.dumps(signature))  # as the file holds it (tuples become lists)
        self.path, self.signature = path, signature
        self.results: dict = {}
        if os.path.exists(path):
            from rankconv.saving.archive import parse_json

            with open(path, "rb") as handle:
                saved = parse_json(handle.read(), path)
            if not isinstance(saved, dict) or not isinstance(saved.get("results"), dict):
                raise ValueError(f"{path} is not a rankconv progress file; remove it or use another --backup-dir.")
            if saved.get("signature") != signature:
                theirs = saved.get("signature") or {}
                differences = sorted(k for k in set(theirs) | set(signature) if theirs.get(k) != signature.get(k))
                raise ValueError(
                    f"The backup {path} was written by a run with different settings ({', '.join(differences)} "
                    "differ); resume with the same data and options, or use another backup folder."
                )
            self.results = saved["results"]

    def get(self, key):
        result = self.results.get(str(key))
        return None if result is None else {**result, "restored": True}

    def record(self, key, result) -> None:
        self.results[str(key)] = result
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with callbacks.atomic_durable_write(self.path) as temporary, open(temporary, "w") as handle:
            json.dump({"signature": self.signature, "results": self.results}, handle)

    def remove(self) -> None:
        if os.path.exists(self.path):
            os.remove(self.path)


def cross_validate(
    texts,
    labels,
    folds=10,
    run_folds=None,
    seed=0,
    verbose=1,
    on_fold=None,
    backup_dir=None,
    keep_backup=False,
    jobs=1,
    **train_options,
) -> dict:
    """K-fold cross-validation (Kim's protocol for data without a test split).

    Folds are a seeded random partition; `run_folds` (1-based) runs only some. Each fold's vocabulary
    comes from its training part. Returns the per-fold accuracies, their mean and standard deviation.

    With `backup_dir`, each fold's training is backed up after every epoch and each finished fold's
    result is kept (`cv-seed<seed>.json`): run again after a kill, the cross-validation skips the
    finished folds (their results are reported again, marked `"restored": True`) and resumes the
    fold it was in at the epoch it reached. The results file is removed at the end unless
    `keep_backup`.

    `jobs` folds train at once, each in a worker process of its own with `rankconv.ops`'s thread
    budget divided among them (`_train_fold`); `on_fold` then sees the folds as they finish, and
    the results are in fold order. A fold's result does not depend on `jobs`: it trains with the
    same seed and data either way (its accuracy may still differ in the last digits where the
    number of threads changes how sums are split).
    """
    texts, labels = list(texts), list(labels)
    if folds < 2:
        raise ValueError(f"`folds` must be at least 2; received {folds}.")
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ValueError(f"`jobs` must be a positive integer; received jobs={jobs!r}.")
    run_folds = list(range(1, folds + 1)) if run_folds is None else list(run_folds)
    bad = [f for f in run_folds if not 1 <= f <= folds]
    if bad:
        raise ValueError(f"`run_folds` must lie in 1..{folds}; received {bad}.")
    parts = fold_indices(len(texts), folds, seed)
    progress = None
    if backup_dir is not None:
        signature = {
            "folds": folds,
            "seed": seed,
            "samples": len(texts),
            "data": _data_digest(texts, labels),
            "options": {key: _json_safe(value) for key, value in sorted(train_options.items())},
        }
        progress = _ProgressFile(os.path.join(os.fspath(backup_dir), f"cv-seed{seed}.json"), signature)
    done = {}
    todo = []
    for fold in run_folds:
        result = progress.get(fold) if progress else None
        if result is None:
            todo.append(fold)
        else:
            done[fold] = result
            if on_fold:
                on_fold(result)

    def fold_backup(fold):
        return None if progress is None else os.path.join(os.fspath(backup_dir), f"seed{seed}-fold{fold}")

    def job(fold):
        test = parts[fold - 1]
        train = np.concatenate([p for i, p in enumerate(parts) if i != fold - 1])
        return (
            fold,
            ([texts[i] for i in train], [labels[i] for i in train]),
            ([texts[i] for i in test], [labels[i] for i in test]),
            {**train_options, "seed": seed + fold, "verbose": verbose, "backup_dir": fold_backup(fold)},
        )

    def finished(result):
        fold = result["fold"]
        if progress is not None:
            progress.record(fold, result)  # first the result, then the training backup it replaces
            callbacks.BackupAndRestore.remove(fold_backup(fold))
        done[fold] = result
        if on_fold:
            on_fold(result)

    if jobs == 1 or len(todo) < 2:
        for fold in todo:
            finished(_train_fold(*job(fold)))
    else:
        _parallel_folds([job(fold) for fold in todo], min(int(jobs), len(todo)), finished)
    results = [done[fold] for fold in run_folds]
    if progress is not None and not keep_backup:
        progress.remove()
        _remove_empty(backup_dir)
    accuracies = np.array([r["accuracy"] for r in results])
    return {
        "folds": results,
        "mean": float(accuracies.mean()),
        "std": float(accuracies.std(ddof=1)) if len(results) > 1 else 0.0,
        "k": folds,
    }


def _train_fold(fold, train, test, options) -> dict:
    """Train one fold on `train` (texts, labels) and score it on `test`: `cross_validate`'s unit of work."""
    start = time.perf_counter()
    classifier = train_classifier(*train, **options)
    accuracy = evaluate_classifier(classifier, *test)["accuracy"]
    return {
        "fold": fold,
        "accuracy": accuracy,
        "seconds": time.perf_counter() - start,
        "test_size": len(test[0]),
        "epochs": len(classifier.history.get("loss", [])),
        "best_epoch": classifier.best_epoch,
    }


def _worker_threads(threads: int) -> None:
    from rankconv import ops

    ops.set_num_threads(threads)


def _parallel_folds(jobs: list, workers: int, finished) -> None:
    """Run `_train_fold(*job)` for each job in `workers` fresh processes (spawned: no threads or
    locks are inherited), each with an equal part of this process's thread budget; `finished(result)`
    is called here, in this process, as each fold ends. Progress bars are off in the workers (their
    lines would interleave)."""
    import concurrent.futures
    import multiprocessing

    from rankconv import ops

    errors = {key: _pickling_error(value) for key, value in jobs[0][3].items()}  # every job has the same kinds
    errors = {key: error for key, error in sorted(errors.items()) if error is not None}
    if errors:  # a lambda or an open file among the options
        raise ValueError(
            f"jobs > 1 trains folds in worker processes, which must receive the training options; "
            f"{', '.join(errors)} cannot be sent to another process ({next(iter(errors.values()))}). Use jobs=1, "
            "or pass values rather than closures."
        )
    threads = max(1, ops.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_threads, initargs=(threads,)
    ) as pool:
        futures = [
            pool.submit(_train_fold, fold, train, test, {**options, "verbose": 0})
            for fold, train, test, options in jobs
        ]
        try:
            for future in concurrent.futures.as_completed(futures):
                finished(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _pickling_error(value) -> Exception | None:
    import pickle

    try:
        pickle.dumps(value)
    except Exception as error:  # noqa: BLE001 - pickle raises several kinds; any means "cannot send"
        return error
    return None


def _remove_empty(folder) -> None:
    try:
        os.rmdir(folder)
    except OSError:  # not empty (or already gone): leave it
        pass


def repeated_cross_validation(
    texts, labels, seeds=1, folds=10, run_folds=None, seed=0, on_fold=None, on_run=None, backup_dir=None, **options
) -> dict:
    """`seeds` complete cross-validations, each with its own partition and training seeds.

    Run r (0-based) is `cross_validate(..., seed=seed + r * folds)`: the same as
    `rankconv text cv --seed <that>`, so any run can be repeated alone; its folds train with seeds
    `seed + r * folds + 1 … + folds`, so no two folds of any runs share a training seed. Returns each
    run (as `cross_validate` returns it, with its "seed" and "seconds"), then the mean and the sample
    standard deviation of the runs' means. `on_fold(result)` sees each fold (with its "run", 1-based),
    `on_run(run)` each finished run.

    With `backup_dir`, a killed computation resumes: finished runs (`cv-runs.json`) and folds
    (see `cross_validate`) are not computed again, the fold in progress resumes at its last epoch;
    everything is removed from the folder at the end."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"`seeds` must be a positive integer; received {seeds!r}.")
    if folds < 2:
        raise ValueError(f"`folds` must be at least 2; received {folds}.")
    finished = None
    if backup_dir is not None:
        signature = {
            "seeds": int(seeds),
            "folds": folds,
            "run_folds": None if run_folds is None else list(run_folds),
            "seed": seed,
            "samples": len(texts),
            "data": _data_digest(texts, labels),
            "options": {
                key: _json_safe(value) for key, value in sorted(options.items()) if key not in ("verbose", "jobs")
            },
        }
        finished = _ProgressFile(os.path.join(os.fspath(backup_dir), "cv-runs.json"), signature)
    runs = []
    for r in range(int(seeds)):
        run_seed = seed + r * folds

        def show(result, r=r):
            result["run"] = r + 1
            if on_fold:
                on_fold(result)

        run = finished.get(r + 1) if finished else None
        if run is not None:
            for result in run["folds"]:
                show({**result, "restored": True})
        else:
            start = time.perf_counter()
            run = cross_validate(
                texts,
                labels,
                folds=folds,
                run_folds=run_folds,
                seed=run_seed,
                on_fold=show,
                backup_dir=backup_dir,
                keep_backup=True,
                **options,
            )
            run.update(run=r + 1, seed=run_seed, seconds=time.perf_counter() - start)
            if finished is not None:
                finished.record(r + 1, run)  # first the run, then the fold results it replaces
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(os.fspath(backup_dir), f"cv-seed{run_seed}.json"))
        runs.append(run)
        if on_run:
            on_run(run)
    if finished is not None:
        finished.remove()
        _remove_empty(backup_dir)
    return {"runs": runs, **spread([run["mean"] for run in runs]), "k": folds, "seed": seed}


def spread(values) -> dict:
    """{"mean", "std" (sample standard deviation; 0 for one value), "n"} of some accuracies."""
    values = np.asarray(values, dtype=float)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "n": len(values),
    }
