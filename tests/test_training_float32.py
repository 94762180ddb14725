"""Training stays in float32: every value on the tape, every gradient and every weight of a
float32 model, through a few training steps (no silent float64 temporaries or upcasts)."""

import numpy as np

from rankconv import layers, optimizers
from rankconv.models import Model, Sequential
from rankconv.ops import autodiff
from rankconv.ops.autodiff import RowSparse
from rankconv.text.model import kim_cnn


def _float_dtypes_during(step):
    seen = set()
    original = autodiff.Tracer.__init__

    def note(array):
        array = array.values if isinstance(array, RowSparse) else array
        if isinstance(array, np.ndarray) and array.dtype.kind == "f":
            seen.add(array.dtype.name)

    def recording(self, value, parents=(), vjp=None):
        def noting_vjp(g):  # the gradients each op's VJP produces, before any cast
            out = vjp(g)
            for array in out:
                note(array)
            return out

        original(self, value, parents, noting_vjp if vjp is not None else None)
        note(value)

    autodiff.Tracer.__init__ = recording
    try:
        step()
    finally:
        autodiff.Tracer.__init__ = original
    return seen


def _check(model, x, y, optimizer):
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    grads_seen = []
    apply = model.optimizer.apply

    def spying_apply(grads, variables=None):
        grads_seen.extend(grads)
        return apply(grads, variables)

    model.optimizer.apply = spying_apply
    assert _float_dtypes_during(lambda: [model.train_on_batch(x, y) for _ in range(3)]) == {"float32"}
    assert grads_seen and all(
        np.asarray(g.values if isinstance(g, RowSparse) else g).dtype == np.float32 for g in grads_seen
    )
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert all(v.value.dtype == np.float32 for v in model.optimizer.variables[2:])


def test_kim_cnn_trains_in_float32():
    rng = np.random.default_rng(0)
    model = kim_cnn(200, 2, embedding_dim=16, filters=8, windows=(2, 3), length=12, seed=0)
    x = rng.integers(0, 200, (10, 12)).astype("int32")
    y = rng.integers(0, 2, 10)
    _check(model, x, y, optimizers.Adadelta(1.0, rho=0.95, epsilon=1e-6))


def test_conv2d_network_trains_in_float32():
    rng = np.random.default_rng(1)
    model = Sequential(
        [
            layers.Input((8, 8, 3)),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Conv2D(4, 1, activation="gelu"),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(3, activation="softmax"),
        ]
    )
    x = rng.standard_normal((6, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 6)
    _check(model, x, y, optimizers.Adam(1e-3))
    assert isinstance(model, Model)
