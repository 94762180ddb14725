"""One training step of Kim's CNN-rand: rankconv vs plain PyTorch vs Keras 3 on the torch backend.

    python benchmarks/train_step.py [--repeats 15] [--threads 2]

Model: Embedding 18,765 × 300 (trainable, random) → Conv1D 100 filters of widths 3, 4, 5 (ReLU)
→ global max pooling → concatenate → Dropout 0.5 → Dense 2 (softmax, max-norm 3); batch 50 of
length 64; Adadelta (rho 0.95). One step is forward, backward and update. Each figure is the
median of `--repeats` steps after three warm-up steps; all three run in this process with the
same thread count. Needs torch and keras (`pip install -e '.[test]'`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

VOCABULARY, EMBEDDING, LENGTH, BATCH, FILTERS, WINDOWS, CLASSES = 18_765, 300, 64, 50, 100, (3, 4, 5), 2


def median_ms(step, repeats):
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def rankconv_step(x, y, vocabulary=VOCABULARY):
    from rankconv import constraints, layers, optimizers
    from rankconv.models import Model

    tokens = layers.Input((x.shape[1],), dtype="int32")
    embedded = layers.Embedding(vocabulary, EMBEDDING)(tokens)
    pooled = [layers.GlobalMaxPooling1D()(layers.Conv1D(FILTERS, w, activation="relu")(embedded)) for w in WINDOWS]
    hidden = layers.Dropout(0.5)(layers.Concatenate()(pooled))
    outputs = layers.Dense(CLASSES, activation="softmax", kernel_constraint=constraints.MaxNorm(3))(hidden)
    model = Model(tokens, outputs)
    model.compile(optimizers.Adadelta(learning_rate=1.0, rho=0.95), "sparse_categorical_crossentropy")
    return lambda xb=x, yb=y: model.train_on_batch(xb, yb)


def torch_step(x, y, vocabulary=VOCABULARY):
    import torch

    class Kim(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocabulary, EMBEDDING)
            self.convs = torch.nn.ModuleList(torch.nn.Conv1d(EMBEDDING, FILTERS, w) for w in WINDOWS)
            self.dropout = torch.nn.Dropout(0.5)
            self.dense = torch.nn.Linear(FILTERS * len(WINDOWS), CLASSES)

        def forward(self, ids):
            e = self.embedding(ids).transpose(1, 2)
            pooled = [torch.relu(conv(e)).amax(dim=2) for conv in self.convs]
            return self.dense(self.dropout(torch.cat(pooled, dim=1)))

    model = Kim()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xb=x, yb=y):
        ids, labels = torch.from_numpy(xb.astype(np.int64)), torch.from_numpy(yb.astype(np.int64))
        optimizer.zero_grad()
        loss = loss_fn(model(ids), labels)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # max-norm 3 on the output layer's weight vectors
            model.dense.weight.data = torch.renorm(model.dense.weight.data, 2, 0, 3)
        return loss.item()

    return step


def keras_step(x, y, vocabulary=VOCABULARY):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    tokens = keras.Input((x.shape[1],), dtype="int32")
    embedded = keras.layers.Embedding(vocabulary, EMBEDDING)(tokens)
    pooled = [
        keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(FILTERS, w, activation="relu")(embedded)) for w in WINDOWS
    ]
    hidden = keras.layers.Dropout(0.5)(keras.layers.Concatenate()(pooled))
    outputs = keras.layers.Dense(CLASSES, activation="softmax", kernel_constraint=keras.constraints.MaxNorm(3))(hidden)
    model = keras.Model(tokens, outputs)
    model.compile(keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95), "sparse_categorical_crossentropy")
    return lambda xb=x, yb=y: model.train_on_batch(xb, yb)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    import threadpoolctl
    import torch

    torch.set_num_threads(args.threads)
    threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    rng = np.random.default_rng(0)
    x = rng.integers(1, VOCABULARY, (BATCH, LENGTH)).astype("int32")
    y = rng.integers(0, CLASSES, BATCH)
    results = {}
    for name, make in (("rankconv", rankconv_step), ("PyTorch", torch_step), ("Keras 3 (torch backend)", keras_step)):
        results[name] = median_ms(make(x, y), args.repeats)
    print(
        f"Kim CNN-rand training step (batch {BATCH}, length {LENGTH}, vocabulary {VOCABULARY:,} × {EMBEDDING}, "
        f"filters {FILTERS} × {WINDOWS}); {args.threads} threads; median of {args.repeats} steps"
    )
    ours = results["rankconv"]
    for name, ms in results.items():
        print(
            f"  {name:26} {ms:8.1f} ms   {'' if name == 'rankconv' else f'ratio {ms / ours:.2f} ({name} ms / rankconv ms)'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
