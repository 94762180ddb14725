"""`fit`, `evaluate` and `predict` on a `rankconv.utils.PyDataset` (Keras's `keras.utils.PyDataset`)."""

import numpy as np
import pytest

from rankconv import layers, utils
from rankconv.models import Sequential


class Batches(utils.PyDataset):
    def __init__(self, x, y=None, batch_size=10, weights=None):
        super().__init__()
        self.x, self.y, self.batch_size, self.weights = x, y, batch_size, weights
        self.calls = []

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self.y is None:
            return self.x[part]
        if self.weights is None:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.weights[part]

    def on_epoch_begin(self):
        self.calls.append("begin")

    def on_epoch_end(self):
        self.calls.append("end")


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(53, 12, 3)).astype("float32"), rng.integers(0, 3, 53)


def model():
    utils.set_random_seed(1)
    m = Sequential(
        [
            layers.Input((None, 3)),
            layers.Conv1D(4, 3, activation="relu"),
            layers.GlobalMaxPooling1D(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_a_dataset_trains_as_the_same_batches_from_arrays():
    x, y = data()
    a, b = model(), model()
    ha = a.fit(x, y, batch_size=10, epochs=3, shuffle=False, verbose=0, validation_data=(x, y))
    batches = Batches(x, y, 10)
    hb = b.fit(batches, epochs=3, shuffle=False, verbose=0, validation_data=Batches(x, y, 25))
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    for key in ("loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-6)
    assert batches.calls == ["begin", "end"] * 3
    np.testing.assert_allclose(b.predict(Batches(x, batch_size=7)), a.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(b.evaluate(Batches(x, y, 30), verbose=0), a.evaluate(x, y, verbose=0), rtol=1e-6)


def test_batches_may_differ_in_length_and_weights_are_used():
    x, y = data()
    w = np.linspace(0.5, 2, len(x)).astype("float32")

    class Ragged(Batches):
        def __getitem__(self, index):
            bx, by, bw = super().__getitem__(index)
            return bx[:, : 6 + index], by, bw  # each batch its own length

    m = model()
    history = m.fit(Ragged(x, y, 10, w), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_shuffle_visits_every_batch_once_in_a_new_order():
    x, y = data()
    seen = []

    class Recording(Batches):
        def __getitem__(self, index):
            seen.append(index)
            return super().__getitem__(index)

    m = model()
    m.fit(Recording(x, y, 10), epochs=3, verbose=0)
    epochs = [seen[i * 6 : (i + 1) * 6] for i in range(3)]
    assert all(sorted(e) == list(range(6)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, d, y: m.fit(d, y, verbose=0), "`fit` received a PyDataset and `y`"),
        (lambda m, d, y: m.fit(d, batch_size=5, verbose=0), "`batch_size`=5"),
        (lambda m, d, y: m.fit(d, validation_split=0.2, verbose=0), "`validation_split` cannot split a PyDataset"),
        (lambda m, d, y: m.evaluate(d, y, verbose=0), "`evaluate` received a PyDataset and `y`"),
        (lambda m, d, y: m.predict(d, batch_size=4), "`predict` received a PyDataset and `batch_size`"),
        (lambda m, d, y: m.fit(Batches(d.x), verbose=0), "returned inputs without labels"),
    ],
)
def test_arguments_that_a_dataset_brings_itself_are_refused(call, match):
    x, y = data()
    with pytest.raises(ValueError, match=match):
        call(model(), Batches(x, y), y)


def test_an_empty_dataset_and_a_bad_item_are_named():
    x, y = data()
    with pytest.raises(ValueError, match="at least one batch"):
        model().fit(Batches(x[:0], y[:0]), verbose=0)

    class Four(Batches):
        def __getitem__(self, index):
            return (*super().__getitem__(index), None, None)

    with pytest.raises(ValueError, match=r"Four\[\d\] returned a tuple of 4 items"):
        model().fit(Four(x, y), verbose=0)
