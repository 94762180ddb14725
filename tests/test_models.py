"""Models: building, calling, summary, the training API and its errors, reproducibility."""

import numpy as np
import pytest

from rankconv import layers, losses, optimizers, utils
from rankconv.models import Model, Sequential


def text_model(vocabulary=30, length=12, classes=3):
    tokens = layers.Input((length,), dtype="int32", name="tokens")
    embedded = layers.Embedding(vocabulary, 8)(tokens)
    branches = [layers.GlobalMaxPooling1D()(layers.Conv1D(6, k, activation="relu")(embedded)) for k in (2, 3, 4)]
    x = layers.Dropout(0.5)(layers.Concatenate()(branches))
    return Model(tokens, layers.Dense(classes, activation="softmax")(x))


def planted_data(n=300, length=12, vocabulary=30, seed=0):
    """Class = which of three marker words occurs (a task a bag of n-gram detectors solves)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(4, vocabulary, (n, length))
    y = rng.integers(0, 3, n)
    x[np.arange(n), rng.integers(0, length, n)] = y + 1
    return x.astype("int32"), y


def test_functional_model_layers_weights_and_call():
    model = text_model()
    assert [type(layer).__name__ for layer in model.layers][:5] == [
        "InputLayer",
        "Embedding",
        "Conv1D",
        "Conv1D",
        "Conv1D",
    ]
    assert model.count_params() == sum(w.size for w in model.get_weights())
    x, _ = planted_data(5)
    assert model(x).shape == (5, 3)
    np.testing.assert_allclose(model.predict(x, batch_size=2).sum(axis=1), 1, rtol=1e-5)
    assert model.get_layer("tokens").name == "tokens"
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")


def test_several_inputs():
    a, b = layers.Input((4,), name="a"), layers.Input((3,), name="b")
    merged = layers.Concatenate()([layers.Dense(2)(a), layers.Dense(2)(b)])
    model = Model([a, b], layers.Dense(1)(merged))
    xa, xb = np.ones((5, 4), "float32"), np.ones((5, 3), "float32")
    assert model([xa, xb]).shape == (5, 1)
    assert model({"a": xa, "b": xb}).shape == (5, 1)
    with pytest.raises(ValueError, match="takes 2 inputs"):
        model(xa)


def test_wrong_input_shape_is_explained():
    model = text_model()
    with pytest.raises(ValueError, match="expects shape \\(None, 12\\).*received \\(12,\\).*batch axis"):
        model(np.zeros(12, "int32"))
    seq = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(2, 3)])
    with pytest.raises(
        ValueError, match="expects inputs of shape \\(None, 8, 8, 1\\).*received \\(8, 8, 1\\).*batch axis"
    ):
        seq(np.zeros((8, 8, 1)))


def test_summary_lists_layers_shapes_and_params():
    lines = []
    text_model().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "conv1d" in text and "(None, 11, 6)" in text and "Total params:" in text and "Connected to" in text
    lines = []
    Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(2)]).summary(
        print_fn=lines.append
    )
    assert any("(None, 6, 6, 4)" in line and "40" in line for line in lines)


def test_fit_learns_and_returns_history():
    utils.set_random_seed(0)
    model = text_model()
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = planted_data(600)
    history = model.fit(x, y, batch_size=32, epochs=8, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 8
    assert history.history["val_accuracy"][-1] > 0.9
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.9 and loss < history.history["loss"][0]
    assert model.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss", "accuracy"}


def test_seed_makes_training_repeat_exactly():
    results = []
    for _ in range(2):
        utils.set_random_seed(42)
        model = text_model()
        model.compile("adam", "sparse_categorical_crossentropy")
        x, y = planted_data(128)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_training_errors():
    model = text_model()
    x, y = planted_data(20)
    with pytest.raises(ValueError, match="call `compile"):
        model.fit(x, y, verbose=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="labels must lie in \\[0, 2\\]"):
        model.fit(x, y + 5, verbose=0)
    with pytest.raises(ValueError, match="labels must have shape"):
        model.fit(x, np.zeros((20, 4)), verbose=0)
    with pytest.raises(ValueError, match="`x` has 20 samples but `y` has 19"):
        model.fit(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match="`batch_size`"):
        model.fit(x, y, batch_size=0, verbose=0)


def test_constraints_and_regularizers_in_training():
    from rankconv import constraints

    inputs = layers.Input((5,))
    dense = layers.Dense(3, kernel_constraint=constraints.MaxNorm(0.5), kernel_regularizer="l2")
    model = Model(inputs, dense(inputs))
    model.compile(optimizers.SGD(1.0), "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((64, 5)), rng.standard_normal((64, 3)) * 10, epochs=2, verbose=0)
    norms = np.sqrt((dense.kernel.value**2).sum(axis=0))
    assert (norms <= 0.5 + 1e-5).all()
    assert len(model.losses) == 1


def test_batch_normalization_trains_and_infers_differently():
    model = Sequential([layers.Input((4,)), layers.BatchNormalization(momentum=0.5), layers.Dense(1)])
    model.compile(optimizers.SGD(0.01), losses.MeanSquaredError())
    x = np.random.default_rng(0).standard_normal((64, 4)).astype("float32") * 3 + 2
    model.fit(x, np.zeros((64, 1)), epochs=3, verbose=0)
    bn = model.layers[0]
    assert np.allclose(bn.moving_mean.value, x.mean(axis=0), atol=0.6)
    assert not np.allclose(model.predict(x), model(x, training=True))


def test_train_on_batch_and_predict_on_batch():
    model = text_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = planted_data(16)
    loss, accuracy = model.train_on_batch(x, y)
    assert loss > 0 and 0 <= accuracy <= 1
    assert model.predict_on_batch(x).shape == (16, 3)


def test_callbacks_on_a_real_model(tmp_path):
    from rankconv import callbacks, saving

    utils.set_random_seed(1)
    model = text_model()
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = planted_data(400)
    noisy = np.random.default_rng(2).random(len(y)) < 0.3
    y = np.where(noisy, (y + 1) % 3, y)  # label noise, so that the model overfits and stops early
    checkpoint = tmp_path / "best.keras"
    history = model.fit(
        x,
        y,
        epochs=30,
        batch_size=32,
        validation_split=0.25,
        verbose=0,
        callbacks=[
            callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True),
            callbacks.ModelCheckpoint(str(checkpoint), monitor="val_loss", save_best_only=True),
            callbacks.CSVLogger(str(tmp_path / "log.csv")),
        ],
    )
    epochs = len(history.epoch)
    assert epochs < 30  # stopped early
    rows = (tmp_path / "log.csv").read_text().strip().splitlines()
    assert rows[0].split(",") == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"] and len(rows) == epochs + 1
    best = int(np.argmin(history.history["val_loss"]))
    # the restored weights and the best checkpoint are the same model
    restored = saving.load_model(checkpoint)
    x_val = x[300:]
    np.testing.assert_allclose(restored.predict(x_val), model.predict(x_val), rtol=1e-6)
    assert model.evaluate(x_val, y[300:], verbose=0)[0] == pytest.approx(history.history["val_loss"][best], rel=1e-5)


def test_review_fixes_for_models():
    from rankconv import regularizers

    # a layer shared with another model: the saved node indices count only this model's calls
    shared = layers.Dense(4, name="shared")
    a = layers.Input((4,))
    Model(a, layers.Dense(1)(shared(a)))
    b = layers.Input((4,))
    second = Model(b, layers.Dense(2, name="head")(shared(b)))
    inbound = [e for e in second.get_config()["layers"] if e["name"] == "head"][0]["inbound_nodes"]
    assert inbound[0]["args"][0]["config"]["keras_history"] == ["shared", 0, 0]
    # duplicate names are refused when the model is built
    x = layers.Input((3,))
    with pytest.raises(ValueError, match="unique"):
        Model(x, layers.Dense(2, name="same")(layers.Dense(3, name="same")(x)))
    # freezing a model freezes its layers (no penalties, no trainable weights)
    frozen = Sequential([layers.Input((3,)), layers.Dense(2, kernel_regularizer="l2")])
    frozen.trainable = False
    assert frozen.trainable_weights == [] and frozen.losses == [] and not frozen.layers[0].trainable
    # an activity regularizer on a layer used twice counts both calls
    twice = layers.Dense(2, activity_regularizer=regularizers.L2(0.5))
    c = layers.Input((3,))
    model = Model(c, layers.Add()([twice(c), twice(c)]))
    model(np.ones((4, 3), "float32"))
    assert len(model.losses) == 2
    # configs rebuild models
    assert Model.from_config(model.get_config()).count_params() == model.count_params()
    assert Sequential.from_config(frozen.get_config()).count_params() == frozen.count_params()


def test_review_fixes_for_bad_training_input():
    model = text_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = planted_data(20)
    for call, match in [
        (lambda: model.evaluate(x, y, batch_size=0, verbose=0), "`batch_size`"),
        (lambda: model.predict(x, batch_size=-1), "`batch_size`"),
        (lambda: model.fit(x, y, validation_freq=0, verbose=0), "`validation_freq`"),
        (lambda: model.fit(x, 3, verbose=0), "scalar"),
        (lambda: model.test_on_batch(x), "needs labels"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(TypeError, match="must hold numbers"):
        model.fit(x, np.array(["a"] * 20), verbose=0)
    with pytest.raises(TypeError, match="`metrics` must be a list"):
        model.compile("adam", "mse", metrics="accuracy")


def test_metrics_are_not_weighted_by_sample_weight():
    model = Sequential([layers.Input((2,)), layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    model.set_weights([np.eye(2, dtype="float32") * 5, np.zeros(2, "float32")])
    _, accuracy = model.evaluate(x, np.array([0, 0]), sample_weight=np.array([1.0, 0.0]), verbose=0)
    assert accuracy == pytest.approx(0.5)  # unweighted, as Keras's `metrics`
