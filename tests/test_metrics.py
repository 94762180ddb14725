import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rankconv import metrics

# ----------------------------------------------------------------------------- Keras's documented examples


def test_mean_docstring_examples():
    m = metrics.Mean()
    m.update_state([1, 3, 5, 7])
    assert m.result() == 4.0
    m.reset_state()
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert m.result() == 2.0


def test_accuracy_docstring_examples():
    m = metrics.Accuracy()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
    assert m.result() == 0.75
    m.reset_state()
    m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]], sample_weight=[1, 1, 0, 0])
    assert m.result() == 0.5


def test_binary_accuracy_docstring_examples():
    m = metrics.BinaryAccuracy()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    assert m.result() == 0.75
    m.reset_state()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]], sample_weight=[1, 0, 0, 1])
    assert m.result() == 0.5


def test_categorical_accuracy_docstring_examples():
    m = metrics.CategoricalAccuracy()
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == 0.5
    m.reset_state()
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]], sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)


def test_sparse_categorical_accuracy_docstring_examples():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    assert m.result() == 0.5
    m.reset_state()
    m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]], sample_weight=[0.7, 0.3])
    assert m.result() == pytest.approx(0.3)


# ----------------------------------------------------------------------------- behaviour


def test_result_is_a_python_float_and_zero_when_empty():
    m = metrics.SparseCategoricalAccuracy()
    assert m.result() == 0.0 and type(m.result()) is float
    assert type(m([1], [[0.2, 0.8]])) is float


def test_state_accumulates_across_batches_in_float32():
    m = metrics.Mean()
    m.update_state([1.0, 2.0])
    m.update_state([3.0])
    assert m.result() == 2.0
    assert m.total.dtype == np.float32 and m.count.dtype == np.float32
    assert metrics.Mean(dtype="float64").total.dtype == np.float64


def test_scalar_sample_weight_weights_the_batch_as_one_sample():
    # Keras: a scalar weight reduces the batch to its mean, counted once with that weight.
    m = metrics.Mean()
    m.update_state([1.0, 2.0, 3.0], sample_weight=2.0)
    m.update_state([10.0], sample_weight=1.0)
    assert m.result() == pytest.approx((2 * 2 + 10) / 3)


@pytest.mark.parametrize("labels", [[2, 1, 0], [[2], [1], [0]]])
def test_sparse_labels_of_shape_n_or_n_1(labels):
    scores = [[0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [0.1, 0.8, 0.1]]
    assert metrics.SparseCategoricalAccuracy()(labels, scores) == pytest.approx(2 / 3)


def test_binary_accuracy_threshold_and_squeezed_labels():
    assert metrics.BinaryAccuracy(threshold=0.7)([1, 0, 1], [[0.8], [0.6], [0.65]]) == pytest.approx(2 / 3)


def test_categorical_labels_that_cannot_be_squeezed_raise():
    with pytest.raises(ValueError, match=r"y_true.*\(2, 3\)"):
        metrics.CategoricalAccuracy()(np.zeros((2, 3, 1)), np.zeros((2, 3)))


def test_bad_sample_weight_shape_raises():
    with pytest.raises(ValueError, match="sample_weight"):
        metrics.Mean().update_state([1.0, 2.0, 3.0], sample_weight=[1.0, 2.0])


def test_mean_metric_wrapper_wraps_functions():
    def absolute_error(y_true, y_pred):
        return np.abs(np.asarray(y_true) - np.asarray(y_pred))

    m = metrics.MeanMetricWrapper(absolute_error)
    assert m.name == "absolute_error"
    m.update_state([[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]])
    assert m.result() == pytest.approx((0.5 + 2.5) / 2)
    copy = type(m).from_config(m.get_config())
    assert copy.name == "absolute_error" and copy.result() == 0.0
    assert copy([[1.0]], [[3.0]]) == 2.0
    with pytest.raises(TypeError, match="callable"):
        metrics.MeanMetricWrapper(3)


def test_direction_for_callbacks():
    for cls in [
        metrics.Accuracy,
        metrics.BinaryAccuracy,
        metrics.CategoricalAccuracy,
        metrics.SparseCategoricalAccuracy,
    ]:
        assert cls()._direction == "up"
    assert not hasattr(metrics.Mean(), "_direction")


def test_metrics_compare_by_identity():
    assert metrics.Accuracy() != metrics.Accuracy()


def test_bad_dtype_and_name():
    with pytest.raises(ValueError, match="dtype"):
        metrics.Mean(dtype="int32")
    with pytest.raises(ValueError, match="name"):
        metrics.Mean(name="")


@settings(max_examples=40)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 8), st.integers(2, 5)), elements=st.floats(0, 1, width=32)),
    st.data(),
)
def test_sparse_accuracy_counts_argmax_hits(scores, data):
    n, classes = scores.shape
    labels = np.asarray(data.draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    weights = np.asarray(data.draw(st.lists(st.floats(0.125, 2.0, width=32), min_size=n, max_size=n)), np.float32)
    hits = (np.argmax(scores, axis=-1) == labels).astype(np.float32)
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(labels, scores, sample_weight=weights)
    assert m.result() == pytest.approx(float(np.sum(hits * weights) / np.sum(weights)), rel=1e-5)
    one_hot = np.eye(classes)[labels]
    assert metrics.CategoricalAccuracy()(one_hot, scores) == pytest.approx(float(hits.mean()), rel=1e-6)


# ----------------------------------------------------------------------------- lookup and configs


@pytest.mark.parametrize(
    "identifier, cls, name",
    [
        ("accuracy", metrics.Accuracy, "accuracy"),
        ("acc", metrics.Accuracy, "acc"),
        ("Accuracy", metrics.Accuracy, "accuracy"),
        ("mean", metrics.Mean, "mean"),
        ("binary_accuracy", metrics.BinaryAccuracy, "binary_accuracy"),
        ("categorical_accuracy", metrics.CategoricalAccuracy, "categorical_accuracy"),
        ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy, "sparse_categorical_accuracy"),
        ("SparseCategoricalAccuracy", metrics.SparseCategoricalAccuracy, "sparse_categorical_accuracy"),
        ({"class_name": "BinaryAccuracy", "config": {"threshold": 0.3}}, metrics.BinaryAccuracy, "binary_accuracy"),
    ],
)
def test_get(identifier, cls, name):
    metric = metrics.get(identifier)
    assert type(metric) is cls and metric.name == name


def test_get_rejects_unknown_names():
    with pytest.raises(ValueError, match="Unknown metric 'f1'"):
        metrics.get("f1")


def test_config_round_trip():
    metric = metrics.BinaryAccuracy(name="bin", threshold=0.3)
    assert metric.get_config() == {"name": "bin", "dtype": "float32", "threshold": 0.3}
    rebuilt = metrics.get(metrics.serialize(metric))
    assert rebuilt.get_config() == metric.get_config()
    assert metrics.serialize(metric)["module"] == "keras.metrics"


@pytest.mark.parametrize(
    "true_shape, pred_shape, cls",
    [
        ((None, 1), (None, 1), metrics.BinaryAccuracy),
        ((32,), (32, 1), metrics.BinaryAccuracy),
        ((32,), (32, 10), metrics.SparseCategoricalAccuracy),
        ((32, 1), (32, 10), metrics.SparseCategoricalAccuracy),
        ((32, 10), (32, 10), metrics.CategoricalAccuracy),
        ((None, 7), (None, 7, 3), metrics.SparseCategoricalAccuracy),
    ],
)
def test_resolve_accuracy(true_shape, pred_shape, cls):
    metric = metrics.resolve_accuracy(true_shape, pred_shape)
    assert type(metric) is cls and metric.name == "accuracy"


def test_get_metric_names_after_the_identifier():
    assert metrics.get_metric("acc", (4,), (4, 3)).name == "acc"
    assert type(metrics.get_metric("Accuracy", (4,), (4, 3))) is metrics.SparseCategoricalAccuracy
    instance = metrics.BinaryAccuracy(name="mine")
    assert metrics.get_metric(instance, (4,), (4, 1)) is instance and instance.name == "mine"
    with pytest.raises(ValueError, match="None"):
        metrics.get_metric(None, (4,), (4, 1))
