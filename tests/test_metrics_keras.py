"""Oracle: rankconv's metrics against Keras 3's, batch by batch, with sample weights and label shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankconv import metrics

from oracles import keras as _keras

keras = _keras()
compile_utils = keras.src.trainers.compile_utils

N, C = 6, 4


def _data(kind, label_shape, seed):
    rng = np.random.default_rng(seed)
    if kind == "binary":
        y_pred = rng.uniform(size=(N, 1)).astype("f4")
        y_true = (rng.uniform(size=(N, 1)) > 0.5).astype("f4")
    elif kind == "binary_multi":
        y_pred = rng.uniform(size=(N, 3)).astype("f4")
        y_true = (rng.uniform(size=(N, 3)) > 0.5).astype("f4")
    elif kind == "categorical":
        y_pred = rng.uniform(size=(N, C)).astype("f4")
        y_true = np.eye(C, dtype="f4")[rng.integers(0, C, N)]
    elif kind == "sparse":
        y_pred = rng.uniform(size=(N, C)).astype("f4")
        y_true = rng.integers(0, C, N).astype("int64")
    elif kind == "sparse_seq":  # per-timestep labels (N, T) against scores (N, T, C)
        y_pred = rng.uniform(size=(N, 5, C)).astype("f4")
        y_true = rng.integers(0, C, (N, 5)).astype("int64")
    else:  # "exact"
        y_true = rng.integers(0, 3, (N, 1)).astype("f4")
        y_pred = rng.integers(0, 3, (N, 1)).astype("f4")
    if label_shape == "squeezed":
        y_true = y_true.reshape(y_true.shape[:-1]) if y_true.shape[-1] == 1 else y_true
    elif label_shape == "expanded":
        # one-hot labels (N, 1, C) against scores (N, C); integer labels (..., 1)
        y_true = y_true[:, None, :] if kind == "categorical" else y_true[..., None]
    return y_true, y_pred


def _weights(kind, shape, seed):
    rng = np.random.default_rng(seed + 100)
    if kind is None:
        return None
    if kind == "scalar":
        return np.float32(0.7)
    if kind == "per_sample":
        return rng.uniform(size=(shape[0],)).astype("f4")
    if kind == "column":
        return rng.uniform(size=(shape[0], 1)).astype("f4")
    return rng.uniform(size=shape).astype("f4")  # "full": one weight per element


CASES = [
    ("Accuracy", "exact", "as_is"),
    ("Accuracy", "exact", "squeezed"),
    ("BinaryAccuracy", "binary", "as_is"),
    ("BinaryAccuracy", "binary", "squeezed"),
    ("BinaryAccuracy", "binary_multi", "as_is"),
    ("CategoricalAccuracy", "categorical", "as_is"),
    ("CategoricalAccuracy", "categorical", "expanded"),
    ("SparseCategoricalAccuracy", "sparse", "as_is"),
    ("SparseCategoricalAccuracy", "sparse", "expanded"),
    ("SparseCategoricalAccuracy", "sparse_seq", "as_is"),
    ("SparseCategoricalAccuracy", "sparse_seq", "expanded"),
]


def _compare(name, kind, label_shape, weight_kind, seed=0, kwargs=None):
    kwargs = kwargs or {}
    ours = getattr(metrics, name)(**kwargs)
    theirs = getattr(keras.metrics, name)(**kwargs)
    for batch in range(3):
        y_true, y_pred = _data(kind, label_shape, seed + batch)
        weight_shape = y_true.shape if weight_kind != "full" else y_pred.shape[: y_true.ndim]
        sample_weight = _weights(weight_kind, weight_shape, seed + batch)
        ours.update_state(y_true, y_pred, sample_weight=sample_weight)
        theirs.update_state(y_true, y_pred, sample_weight=sample_weight)
        result = ours.result()
        assert isinstance(result, float)
        np.testing.assert_allclose(result, float(keras.ops.convert_to_numpy(theirs.result())), rtol=1e-6, atol=1e-7)
    ours.reset_state()
    theirs.reset_state()
    assert ours.result() == float(keras.ops.convert_to_numpy(theirs.result())) == 0.0


@pytest.mark.parametrize("weights", [None, "scalar", "per_sample", "column"])
@pytest.mark.parametrize("name, kind, label_shape", CASES)
def test_accuracies_match_keras(name, kind, label_shape, weights):
    _compare(name, kind, label_shape, weights)


@pytest.mark.parametrize(
    "name, kind", [("BinaryAccuracy", "binary_multi"), ("SparseCategoricalAccuracy", "sparse_seq")]
)
def test_elementwise_weights_match_keras(name, kind):
    _compare(name, kind, "as_is", "full")


def test_binary_threshold_matches_keras():
    _compare("BinaryAccuracy", "binary", "as_is", "per_sample", kwargs={"threshold": 0.8})


@pytest.mark.parametrize("weights", [None, "scalar", "per_sample", "column", "full"])
def test_mean_matches_keras(weights):
    ours, theirs = metrics.Mean(), keras.metrics.Mean()
    rng = np.random.default_rng(4)
    for shape in [(5,), (5, 3), (5, 3, 2)]:
        values = rng.standard_normal(shape).astype("f4")
        weight_shape = shape[:2] if weights == "full" else shape
        sample_weight = _weights(weights, weight_shape, 1)
        ours.update_state(values, sample_weight=sample_weight)
        theirs.update_state(values, sample_weight=sample_weight)
        np.testing.assert_allclose(
            ours.result(), float(keras.ops.convert_to_numpy(theirs.result())), rtol=1e-6, atol=1e-7
        )


@settings(max_examples=30)
@given(
    st.sampled_from(CASES),
    st.sampled_from([None, "scalar", "per_sample", "column"]),
    st.integers(0, 10_000),
)
def test_random_batches_match_keras(case, weights, seed):
    _compare(*case, weights, seed=seed)


@pytest.mark.parametrize(
    "name", ["Mean", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy"]
)
def test_configs_and_serialisation_match_keras(name):
    ours, theirs = getattr(metrics, name)(), getattr(keras.metrics, name)()
    assert ours.get_config() == theirs.get_config()
    assert ours.name == theirs.name
    assert metrics.serialize(ours) == keras.metrics.serialize(theirs)
    assert type(metrics.get(keras.metrics.serialize(theirs))) is type(ours)


@pytest.mark.parametrize(
    "identifier",
    [
        "accuracy",
        "Accuracy",
        "binary_accuracy",
        "BinaryAccuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
    ],
)
def test_get_matches_keras(identifier):
    ours, theirs = metrics.get(identifier), keras.metrics.get(identifier)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.name == theirs.name


SHAPES = [
    ((None, 1), (None, 1)),
    ((None,), (None, 1)),
    ((None,), (None, 5)),
    ((None, 1), (None, 5)),
    ((None, 5), (None, 5)),
    ((None, 3), (None, 3)),
    ((None, 7, 1), (None, 7, 4)),
    ((None, 7), (None, 7, 4)),
    ((None, 7, 4), (None, 7, 4)),
    ((8, 2), (8, 2)),
    ((8,), (8,)),
    ((1,), (1,)),
]


@pytest.mark.parametrize("identifier", ["accuracy", "acc", "ACC", "Accuracy"])
@pytest.mark.parametrize("true_shape, pred_shape", SHAPES)
def test_compile_accuracy_resolution_matches_keras(identifier, true_shape, pred_shape):
    ours = metrics.get_metric(identifier, true_shape, pred_shape)
    theirs = compile_utils.get_metric(identifier, keras.KerasTensor(true_shape), keras.KerasTensor(pred_shape))
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.name == theirs.name == identifier


@pytest.mark.parametrize("identifier", ["binary_accuracy", "sparse_categorical_accuracy", "CategoricalAccuracy"])
def test_compile_other_names_match_keras(identifier):
    ours = metrics.get_metric(identifier, (None, 1), (None, 3))
    theirs = compile_utils.get_metric(identifier, keras.KerasTensor((None, 1)), keras.KerasTensor((None, 3)))
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.name == theirs.name
