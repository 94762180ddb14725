"""One training epoch of Kim's CNN-rand on MR (90% of it, batch 50) in rankconv, plain PyTorch and
Keras 3 on the torch backend, in one process; and rankconv's predict throughput on raw text.

    python benchmarks/mr_epoch.py [--mr ../shared/data/mr] [--threads 2]

The data are Pang and Lee's (2005) sentence-polarity files (Latin-1); RANKCONV_MR_DIR or --mr
points at them. Each framework runs one warm-up step, then one full epoch (the same batches in
the same order) is timed. Throughput: `TextClassifier.predict_proba` on all 10,662 raw sentences
(tokenizing included), batches of 512, median of 3.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import train_step  # noqa: E402


def main(argv=None) -> int:
    default = os.environ.get(
        "RANKCONV_MR_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mr")
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mr", default=default)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    import threadpoolctl
    import torch

    from rankconv.text import read_dataset
    from rankconv.text.model import kim_cnn
    from rankconv.text.training import TextClassifier
    from rankconv.text.vocabulary import TextVectorizer

    torch.set_num_threads(args.threads)
    threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    data = read_dataset(args.mr, encoding="latin-1")
    order = np.random.default_rng(0).permutation(len(data))
    train = order[: int(0.9 * len(order))]
    vectorizer = TextVectorizer.fit([data.texts[i] for i in train])
    x = vectorizer([data.texts[i] for i in train])
    classes = data.classes
    y = np.array([classes.index(data.labels[i]) for i in train])
    batches = [slice(s, s + train_step.BATCH) for s in range(0, len(x), train_step.BATCH)]
    vocabulary = len(vectorizer.vocabulary)
    print(
        f"MR: {len(x):,} training sentences (90%), length {x.shape[1]}, vocabulary {vocabulary:,}, "
        f"{len(batches)} batches of {train_step.BATCH}; {args.threads} threads"
    )
    epoch = {}
    for name, make in (
        ("rankconv", train_step.rankconv_step),
        ("PyTorch", train_step.torch_step),
        ("Keras 3 (torch backend)", train_step.keras_step),
    ):
        step = make(x[:50], y[:50], vocabulary)
        step()
        start = time.perf_counter()
        for b in batches:
            step(x[b], y[b])
        epoch[name] = time.perf_counter() - start
    ours = epoch["rankconv"]
    for name, seconds in epoch.items():
        ratio = "" if name == "rankconv" else f"ratio {seconds / ours:.2f} ({name} s / rankconv s)"
        print(f"  {name:26} {seconds:7.1f} s per epoch   {ratio}")
    # throughput does not depend on the weights: an untrained model of the trained one's shape
    classifier = TextClassifier(kim_cnn(vocabulary, len(classes), length=vectorizer.length), vectorizer, classes)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        classifier.predict_proba(data.texts, batch_size=512)
        times.append(time.perf_counter() - start)
    print(
        f"  predict on raw text: {len(data) / statistics.median(times):,.0f} sentences/s "
        f"({len(data):,} sentences, tokenizing included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
