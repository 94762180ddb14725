"""What should a word the training folds never saw look like at test time? A paired experiment on
MR (Pang and Lee, 2005): `rankconv text cv`'s folds, partition and seeds (CNN-rand, Kim's recipe);
each fold's model is trained once and its test fold is scored three ways:

- "shared": as trained — every unknown word is the vocabulary's OOV id, whose vector is random
  U[-0.25, 0.25] and never trained (no training sentence has an unknown word). What `cv` reports.
- "zero": the OOV vector set to zero, like padding: an unknown word adds nothing to any window.
- "own": as Kim's code, where the vocabulary spans all folds: every word seen only in the test
  fold gets its own random U[-0.25, 0.25] vector (never trained either).

Training never sees an unknown word, so the three share one trained model; only the unknown
words' vectors differ. Usage:

    python experiments/mr_unknown_words.py ../shared/data/mr [--folds 10] [--run-folds 1,2] [--json out.json]
"""

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import numpy as np  # noqa: E402

from rankconv.text import read_dataset  # noqa: E402
from rankconv.text.model import kim_cnn  # noqa: E402
from rankconv.text.training import fold_indices, train_classifier  # noqa: E402
from rankconv.text.vocabulary import Vocabulary  # noqa: E402


def accuracy(model, x, y):
    return float((model.predict(x, batch_size=500, verbose=0).argmax(axis=1) == y).mean())


def own_vectors(classifier, texts, rng):
    """Test ids where each word outside the vocabulary has its own new id, and the embedding
    matrix extended by a random U[-0.25, 0.25] row per new word."""
    vectorizer = classifier.vectorizer
    known = vectorizer.vocabulary.index
    table = classifier.model.get_layer("embedding").embeddings.numpy()
    # the test-only words in order of first appearance, each a new id after the vocabulary's
    new = dict.fromkeys(t for text in texts for t in vectorizer.tokens(text)[: vectorizer.max_tokens] if t not in known)
    wider = dataclasses.replace(vectorizer, vocabulary=Vocabulary([*vectorizer.vocabulary.words, *new]))
    extra = rng.uniform(-0.25, 0.25, (len(new), table.shape[1])).astype(table.dtype)
    return wider(texts), np.concatenate([table, extra])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="+")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--run-folds", help="comma-separated 1-based folds (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoding", default="latin-1")
    parser.add_argument("--json")
    args = parser.parse_args()
    data = read_dataset(args.data if len(args.data) > 1 else args.data[0], encoding=args.encoding)
    texts, labels = data.texts, data.labels
    run_folds = [int(f) for f in args.run_folds.split(",")] if args.run_folds else range(1, args.folds + 1)
    # the partition and per-fold seeds of rankconv.text.training.cross_validate
    parts = fold_indices(len(texts), args.folds, args.seed)
    results = []
    for fold in run_folds:
        start = time.perf_counter()
        test = parts[fold - 1]
        train = np.concatenate([p for i, p in enumerate(parts) if i != fold - 1])
        classifier = train_classifier(
            [texts[i] for i in train], [labels[i] for i in train], seed=args.seed + fold, verbose=0
        )
        test_texts = [texts[i] for i in test]
        y = np.array([classifier.classes.index(labels[i]) for i in test])
        x = classifier.vectorizer(test_texts)
        model = classifier.model
        embedding = model.get_layer("embedding").embeddings
        row = {"fold": fold, "shared": accuracy(model, x, y)}
        saved = embedding.numpy()[1].copy()
        embedding.numpy()[1] = 0
        row["zero"] = accuracy(model, x, y)
        embedding.numpy()[1] = saved
        x_own, table = own_vectors(classifier, test_texts, np.random.default_rng(args.seed + 1000 + fold))
        weights = model.get_weights()
        position = next(i for i, w in enumerate(weights) if w.shape == embedding.shape)
        wider = kim_cnn(len(table), len(classifier.classes), length=classifier.vectorizer.length)
        wider.set_weights([table if i == position else w for i, w in enumerate(weights)])
        row["own"] = accuracy(wider, x_own, y)
        row["unknown_tokens"] = float((x == 1).sum() / (x > 0).sum())
        row["seconds"] = time.perf_counter() - start
        results.append(row)
        print(
            f"fold {fold:2d}: shared {row['shared']:.4f}  zero {row['zero']:.4f}  own {row['own']:.4f}  "
            f"({row['unknown_tokens']:.1%} of test tokens unknown, {row['seconds']:.0f} s)",
            flush=True,
        )
    summary = {}
    for key in ("shared", "zero", "own"):
        values = np.array([r[key] for r in results])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
        print(f"{key:>6}: {100 * values.mean():.2f}% ± {100 * summary[key]['std']:.2f}")
    for key in ("zero", "own"):
        difference = np.array([r[key] - r["shared"] for r in results])
        print(f"{key} - shared, paired: {100 * difference.mean():+.2f} points (folds: {np.round(100 * difference, 2)})")
    if args.json:
        from rankconv.saving.archive import atomic_write

        with atomic_write(args.json) as temporary, open(temporary, "w") as handle:
            json.dump({"folds": results, "summary": summary}, handle, indent=2)


if __name__ == "__main__":
    main()
