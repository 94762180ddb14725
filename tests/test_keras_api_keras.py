"""Oracle: the Keras API pieces that let Keras's own examples run unchanged, against real Keras 3
(torch backend): pooling aliases, the merge layers and their functional forms, the activation
layers (outputs, gradients through torch autograd, configs, `.keras` files both ways), the data
utilities, `clone_model`, `load_weights` of a whole-model file, and the missing-channel rule."""

import hashlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rankconv import Input, layers, models, ops, saving, utils
from rankconv.models import Model, Sequential
from rankconv.ops import GradientTape, value_and_grad

from oracles import keras as _keras

keras = _keras()


def _normalise(value):
    """Config values compared across the two: tuples and lists alike."""
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _without_name(config):
    return _normalise({k: v for k, v in config.items() if k != "name"})


def _check_configs(name, ours, theirs):
    """Same configs (but the automatic names), and each side's config builds the other's layer."""
    assert _without_name(ours.get_config()) == _without_name(theirs.get_config())
    assert _normalise(getattr(layers, name).from_config(theirs.get_config()).get_config()) == _normalise(
        theirs.get_config()
    )
    assert _normalise(getattr(keras.layers, name).from_config(ours.get_config()).get_config()) == _normalise(
        ours.get_config()
    )


# ----------------------------------------------------------------------------- pooling aliases

ALIASES = {
    "MaxPool1D": "MaxPooling1D",
    "MaxPool2D": "MaxPooling2D",
    "MaxPool3D": "MaxPooling3D",
    "AvgPool1D": "AveragePooling1D",
    "AvgPool2D": "AveragePooling2D",
    "AvgPool3D": "AveragePooling3D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalAvgPool3D": "GlobalAveragePooling3D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "GlobalMaxPool3D": "GlobalMaxPooling3D",
}


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_pooling_aliases_are_the_same_classes_as_in_keras(alias):
    assert getattr(keras.layers, alias) is getattr(keras.layers, ALIASES[alias])
    assert getattr(layers, alias) is getattr(layers, ALIASES[alias])
    rank = int(alias[-2])
    pool = {} if "Global" in alias else {"pool_size": 2}
    x = np.random.default_rng(rank).standard_normal((2, *([4] * rank), 3)).astype(np.float32)
    np.testing.assert_allclose(
        getattr(layers, alias)(**pool)(x), _numpy(getattr(keras.layers, alias)(**pool)(x)), rtol=1e-6, atol=1e-6
    )


# ----------------------------------------------------------------------------- merge layers

MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
FUNCTIONAL = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Average": "average"}
FUNCTIONAL |= {"Maximum": "maximum", "Minimum": "minimum", "Concatenate": "concatenate"}


@st.composite
def merge_cases(draw):
    """Inputs that broadcast the Keras way: some with fewer axes (aligned on the last axes), some
    with axes of size 1."""
    name = draw(st.sampled_from(MERGES))
    count = 2 if name == "Subtract" else draw(st.integers(1, 4))
    full = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3))))
    shapes = []
    for _ in range(count):
        kept = full[draw(st.integers(0, len(full) - 1)) :]
        shapes.append(tuple(1 if draw(st.integers(0, 3)) == 0 else size for size in kept))
    return name, shapes


@settings(max_examples=30)
@given(case=merge_cases(), seed=st.integers(0, 2**16))
def test_merge_layers_match_keras(case, seed):
    name, shapes = case
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((2, *s)).astype(np.float32) for s in shapes]
    ours, theirs = getattr(layers, name)(), getattr(keras.layers, name)()
    expected = _numpy(theirs(xs))
    got = ours(xs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    batchless = [(None, *s) for s in shapes]
    assert ours.compute_output_shape(batchless) == tuple(theirs.compute_output_shape(batchless))
    _check_configs(name, ours, theirs)
    # the functional form, on arrays and in a functional model
    np.testing.assert_allclose(getattr(layers, FUNCTIONAL[name])(xs), expected, rtol=1e-6, atol=1e-6)
    inputs = [Input(s) for s in shapes]
    output = getattr(layers, FUNCTIONAL[name])(inputs)
    their_inputs = [keras.Input(s) for s in shapes]
    their_output = getattr(keras.layers, FUNCTIONAL[name])(their_inputs)
    assert output.shape == tuple(their_output.shape)
    np.testing.assert_allclose(Model(inputs, output).predict(xs, verbose=0), expected, rtol=1e-6, atol=1e-6)


def test_concatenate_function_matches_keras():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 3, k)).astype(np.float32) for k in (1, 2, 4)]
    for axis in (-1, 2):
        np.testing.assert_allclose(
            layers.concatenate(xs, axis=axis), _numpy(keras.layers.concatenate(xs, axis=axis)), rtol=1e-6
        )
    single = [xs[0]]  # Keras merges a list of one input too
    np.testing.assert_allclose(layers.concatenate(single), _numpy(keras.layers.concatenate(single)))
    np.testing.assert_allclose(layers.add(single), _numpy(keras.layers.add(single)))
    inputs = [Input((3, k)) for k in (1, 2, 4)]
    their = [keras.Input((3, k)) for k in (1, 2, 4)]
    assert layers.concatenate(inputs, axis=-1, name="joined").shape == tuple(keras.layers.concatenate(their).shape)


@pytest.mark.parametrize("name", MERGES)
def test_merge_gradients_match_torch(name):
    rng = np.random.default_rng(3)
    shapes = [(2, 3, 4), (2, 1, 4)] if name != "Subtract" else [(2, 3, 4), (2, 4)]
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    cotangent = rng.standard_normal((2, 3, 4)).astype(np.float32)
    layer = getattr(layers, name)()
    _, grads = value_and_grad(lambda a, b: ops.sum(ops.multiply(layer([a, b]), cotangent)), argnums=(0, 1))(*xs)
    tensors = [torch.tensor(x, requires_grad=True) for x in xs]
    (getattr(keras.layers, name)()(tensors) * torch.tensor(cotangent)).sum().backward()
    for ours, theirs in zip(grads, tensors):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- activation layers


@st.composite
def activation_cases(draw):
    rank = draw(st.integers(1, 3))
    shape = (2, *(draw(st.integers(1, 4)) for _ in range(rank)))
    name = draw(st.sampled_from(["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"]))
    config = {}
    if name == "ReLU":
        for key, values in (
            ("max_value", [None, 0.0, 1.0, 2.5, 6, 6.0]),
            ("negative_slope", [0.0, 0.1, 0.5, 1]),
            ("threshold", [0.0, 0.2, 1.0]),
        ):
            if draw(st.booleans()):
                config[key] = draw(st.sampled_from(values))
    elif name == "LeakyReLU" and draw(st.booleans()):
        config["negative_slope"] = draw(st.sampled_from([0.0, 0.01, 0.2, 0.5, 2.0]))
    elif name == "ELU" and draw(st.booleans()):
        config["alpha"] = draw(st.sampled_from([0.5, 1.0, 2.0, -0.5]))
    elif name == "Softmax" and draw(st.booleans()):
        axes = list(range(-rank - 1, rank + 1))
        if draw(st.booleans()):
            config["axis"] = draw(st.sampled_from(axes))
        else:
            chosen = sorted(draw(st.sets(st.integers(0, rank), min_size=1, max_size=rank + 1)))
            config["axis"] = chosen if draw(st.booleans()) else tuple(chosen)
    elif name == "PReLU":
        shared = sorted(draw(st.sets(st.integers(1, rank), max_size=rank)))
        if shared:
            config["shared_axes"] = shared[0] if len(shared) == 1 and draw(st.booleans()) else shared
        config["alpha_initializer"] = draw(st.sampled_from(["zeros", "ones", "Zeros", "glorot_uniform"]))
        config["alpha_regularizer"] = draw(st.sampled_from([None, "l2"]))
        config["alpha_constraint"] = draw(st.sampled_from([None, "non_neg"]))
    return name, config, shape


@settings(max_examples=40)
@given(case=activation_cases(), seed=st.integers(0, 2**16))
def test_activation_layers_match_keras(case, seed):
    name, config, shape = case
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    ours, theirs = getattr(layers, name)(**config), getattr(keras.layers, name)(**config)
    ours(x)
    theirs(x)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in ours.weights]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    expected = _numpy(theirs(x))
    np.testing.assert_allclose(ours(x), expected, rtol=1e-5, atol=1e-6)
    batchless = (None, *shape[1:])
    assert ours.compute_output_shape(batchless) == tuple(theirs.compute_output_shape(batchless))
    _check_configs(name, ours, theirs)
    # gradients: with respect to the input, and to PReLU's slopes, as torch autograd gives them
    cotangent = rng.standard_normal(shape).astype(np.float32)
    _, dx = value_and_grad(lambda a: ops.sum(ops.multiply(ours(a), cotangent)))(x)
    with GradientTape(ours.trainable_weights) as tape:
        loss = ops.sum(ops.multiply(ours(x), cotangent))
    d_weights = tape.gradient(loss)
    tensor = torch.tensor(x, requires_grad=True)
    (theirs(tensor) * torch.tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(dx, tensor.grad.numpy(), rtol=1e-4, atol=1e-5)
    for ours_grad, variable in zip(d_weights, theirs.trainable_weights):
        np.testing.assert_allclose(ours_grad, variable.value.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_softmax_with_a_mask_matches_keras():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    for mask in (
        rng.random((2, 3, 5)) > 0.4,
        rng.random((3, 5)) > 0.3,  # broadcasts from the last axis
        np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 1, 0, 1]], np.float32),  # > 0.5 counts
    ):
        for axis in (-1, [1, 2]):
            np.testing.assert_allclose(
                layers.Softmax(axis=axis)(x, mask=mask),
                _numpy(keras.layers.Softmax(axis=axis)(x, mask=mask)),
                rtol=1e-6,
                atol=1e-7,
            )


def test_leaky_relu_old_alpha_argument_as_keras():
    with pytest.warns(UserWarning, match="alpha"):
        ours = layers.LeakyReLU(alpha=0.1)
    with pytest.warns(UserWarning):
        theirs = keras.layers.LeakyReLU(alpha=0.1)
    assert ours.negative_slope == theirs.negative_slope == 0.1


# ----------------------------------------------------------------------------- .keras files both ways


def _rankconv_model():
    a, b = Input((6,), name="a"), Input((6,), name="b")
    x = layers.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.2)(layers.Dense(8)(a))
    y = layers.PReLU(alpha_initializer="ones")(layers.LeakyReLU()(layers.Dense(8)(b)))
    merged = [
        layers.add([x, y]),
        layers.subtract([x, y]),
        layers.multiply([x, y]),
        layers.average([x, y]),
        layers.maximum([x, y]),
        layers.minimum([x, y]),
    ]
    z = layers.ELU(alpha=0.7)(layers.concatenate(merged))
    z = layers.Reshape((6, 8))(z)
    z = layers.GlobalAvgPool1D()(layers.MaxPool1D(2, padding="same")(z))
    return Model([a, b], layers.Softmax()(layers.Dense(3)(z)))


def _keras_model():
    a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
    x = keras.layers.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.2)(keras.layers.Dense(8)(a))
    y = keras.layers.PReLU(alpha_initializer="ones")(keras.layers.LeakyReLU()(keras.layers.Dense(8)(b)))
    merged = [
        keras.layers.add([x, y]),
        keras.layers.subtract([x, y]),
        keras.layers.multiply([x, y]),
        keras.layers.average([x, y]),
        keras.layers.maximum([x, y]),
        keras.layers.minimum([x, y]),
    ]
    z = keras.layers.ELU(alpha=0.7)(keras.layers.concatenate(merged))
    z = keras.layers.Reshape((6, 8))(z)
    z = keras.layers.GlobalAvgPool1D()(keras.layers.MaxPool1D(2, padding="same")(z))
    return keras.Model([a, b], keras.layers.Softmax()(keras.layers.Dense(3)(z)))


def _data(n=4):
    rng = np.random.default_rng(5)
    return [rng.standard_normal((n, 6)).astype(np.float32) for _ in range(2)]


def test_new_layers_round_trip_through_keras_files(tmp_path):
    x = _data()
    ours = _rankconv_model()
    rng = np.random.default_rng(6)
    ours.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in ours.weights])
    ours.save(tmp_path / "ours.keras")
    loaded_by_keras = keras.saving.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(_numpy(loaded_by_keras(x)), ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert [type(layer).__name__ for layer in loaded_by_keras.layers] == [type(layer).__name__ for layer in ours.layers]

    theirs = _keras_model()
    theirs.set_weights([rng.standard_normal(tuple(w.shape)).astype(np.float32) * 0.5 for w in theirs.weights])
    theirs.save(tmp_path / "theirs.keras")
    loaded = saving.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), _numpy(theirs(x)), rtol=1e-5, atol=1e-6)
    assert models.load_model is saving.load_model


# ----------------------------------------------------------------------------- load_weights of a .keras file


def test_load_weights_reads_a_whole_model_file_as_keras_does(tmp_path):
    x = _data()
    theirs = _keras_model()
    rng = np.random.default_rng(7)
    theirs.set_weights([rng.standard_normal(tuple(w.shape)).astype(np.float32) * 0.5 for w in theirs.weights])
    theirs.save(tmp_path / "theirs.keras")
    ours = _rankconv_model()  # the same architecture, its own weights
    ours.load_weights(tmp_path / "theirs.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), _numpy(theirs(x)), rtol=1e-5, atol=1e-6)

    # and the other way: Keras reads the weights of a rankconv model file
    ours.set_weights([w * 0.5 for w in ours.get_weights()])
    ours.save(tmp_path / "ours.keras")
    theirs.load_weights(tmp_path / "ours.keras")
    np.testing.assert_allclose(_numpy(theirs(x)), ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    again = _rankconv_model()
    saving.load_weights(again, str(tmp_path / "ours.keras"))
    np.testing.assert_allclose(again.predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-6)


# ----------------------------------------------------------------------------- clone_model


def test_clone_model_matches_keras():
    for build in (_rankconv_model, _keras_model):
        model = build()
        clone = (models.clone_model if build is _rankconv_model else keras.models.clone_model)(model)
        assert clone is not model and clone.name == model.name
        assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
        assert _normalise(clone.get_config()) == _normalise(model.get_config())
        assert [tuple(w.shape) for w in clone.weights] == [tuple(w.shape) for w in model.weights]
        # new weights: the first kernel is drawn afresh, PReLU's alpha starts at its initializer again
        first = [np.asarray(w) for w in (clone.get_weights()[0], model.get_weights()[0])]
        assert not np.array_equal(*first)
        clone.set_weights(model.get_weights())
        x = _data()
        np.testing.assert_allclose(_numpy(clone(x)), _numpy(model(x)), rtol=1e-6)


def test_clone_sequential_with_clone_function_and_shared_layers_as_keras():
    def replace_activation(library):
        def clone_function(layer):
            config = layer.get_config()
            if "activation" in config:
                config["activation"] = "tanh"
            return type(layer).from_config(config)

        return clone_function

    results = {}
    for lib, L, seq, inp, clone in (
        ("ours", layers, Sequential, Input, models.clone_model),
        ("keras", keras.layers, keras.Sequential, keras.Input, keras.models.clone_model),
    ):
        model = seq([inp((5,)), L.Dense(4, activation="relu"), L.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        cloned = clone(model, clone_function=replace_activation(lib))
        results[lib] = (
            [layer.get_config()["activation"] for layer in cloned.layers],
            cloned.compiled,
            type(cloned.optimizer).__name__,
            cloned.optimizer is model.optimizer,
            len(cloned.weights),
        )
        # a layer used twice stays one (shared) layer in the clone
        x = inp((3,))
        shared = L.Dense(3)
        functional = (Model if lib == "ours" else keras.Model)(x, shared(shared(x)))
        twin = clone(functional)
        assert len(twin.layers) == len(functional.layers) == 2 and len(twin.weights) == 2
        # input_tensors replace the inputs
        new_input = inp((3,), name="fresh")
        assert clone(functional, input_tensors=new_input).inputs[0] is new_input
    assert results["ours"] == results["keras"]
    assert results["ours"][0] == ["tanh", "tanh"] and results["ours"][1:4] == (True, "Adam", False)


# ----------------------------------------------------------------------------- the missing channel axis

CHANNEL_CASES = [
    ((5, 5, 1), (3, 5, 5)),  # a missing channel axis of size 1: added
    ((5, 5, 1), (3, 5, 5, 1, 1)),  # an extra trailing axis of size 1: dropped
    ((5, 5), (3, 5, 5, 1)),
    ((1,), (3,)),
    ((4,), (3, 4, 1)),
    ((5, 5, 3), (3, 5, 5)),  # the model's last size is not 1: refused
    ((4,), (3, 4, 2)),
    ((5, 5, 1), (3, 5)),  # two axes short: refused
    ((5, 5, 1), (3, 4, 5)),
]


def _channel_models(input_shape):
    ours = Sequential([Input(input_shape), layers.Flatten(), layers.Dense(2)])
    theirs = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(2)])
    theirs.set_weights(ours.get_weights())
    for model in (ours, theirs):
        model.compile(optimizer="sgd", loss="mse")
    return ours, theirs


def _outcome(fn):
    try:
        return np.asarray(_numpy(fn()))
    except Exception as error:  # the oracle raises its own types; both must refuse
        return type(error)


@pytest.mark.parametrize("input_shape,data_shape", CHANNEL_CASES, ids=[f"{a}-{b}" for a, b in CHANNEL_CASES])
def test_predict_evaluate_fit_adjust_a_missing_channel_as_keras(input_shape, data_shape):
    ours, theirs = _channel_models(input_shape)
    rng = np.random.default_rng(8)
    x = rng.standard_normal(data_shape).astype(np.float32)
    y = rng.standard_normal((data_shape[0], 2)).astype(np.float32)
    for method, kwargs in (("predict", {}), ("evaluate", {"y": y}), ("predict_on_batch", None)):
        if kwargs is None:
            ours_result, their_result = (_outcome(lambda m=m: getattr(m, method)(x)) for m in (ours, theirs))
        else:
            ours_result, their_result = (
                _outcome(lambda m=m: getattr(m, method)(x, verbose=0, **kwargs)) for m in (ours, theirs)
            )
        if isinstance(their_result, type):
            assert ours_result is ValueError, (method, their_result)
        else:
            np.testing.assert_allclose(ours_result, their_result, rtol=1e-5, atol=1e-6)
    if not isinstance(_outcome(lambda: theirs.predict(x, verbose=0)), type):
        ours.fit(x, y, epochs=1, batch_size=3, shuffle=False, verbose=0)
        theirs.fit(x, y, epochs=1, batch_size=3, shuffle=False, verbose=0)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, _numpy(b), rtol=1e-5, atol=1e-6)


def test_missing_channel_in_functional_models_with_named_inputs_as_keras():
    ours_a, ours_b = Input((4, 1), name="a"), Input((3,), name="b")
    ours = Model([ours_a, ours_b], layers.concatenate([layers.Flatten()(ours_a), ours_b]))
    their_a, their_b = keras.Input((4, 1), name="a"), keras.Input((3,), name="b")
    theirs = keras.Model([their_a, their_b], keras.layers.concatenate([keras.layers.Flatten()(their_a), their_b]))
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((2, 4)).astype(np.float32), rng.standard_normal((2, 3, 1)).astype(np.float32)
    for data in ([a, b], {"a": a, "b": b}):
        np.testing.assert_allclose(ours.predict(data, verbose=0), theirs.predict(data, verbose=0), rtol=1e-6)


# ----------------------------------------------------------------------------- data utilities


@settings(max_examples=30)
@given(
    shape=st.sampled_from([(5,), (4, 1), (2, 3), (2, 3, 1), (1,), (0,)]),
    classes=st.integers(1, 5),
    extra=st.sampled_from([None, 0, 1, 3]),
    as_list=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_to_categorical_matches_keras(shape, classes, extra, as_list, seed):
    ids = np.random.default_rng(seed).integers(0, classes, shape)
    if ids.size == 0 and extra is None:
        extra = 1
    num_classes = None if extra is None else (classes + extra if extra else 0)
    if num_classes == 0 and ids.size == 0:
        num_classes = 2
    x = ids.tolist() if as_list else ids
    expected = keras.utils.to_categorical(x, num_classes)
    got = utils.to_categorical(x, num_classes)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=30)
@given(
    shape=st.sampled_from([(6,), (3, 4), (2, 3, 4), (4, 1)]),
    order=st.sampled_from([1, 2, np.inf]),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_normalize_matches_keras(shape, order, data, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.2] = 0
    if len(shape) > 1:
        x[0] = 0  # zero norms are divided by 1
    # axis 0 of a 2-D or more array is left out: Keras's NumPy path expands its norms at the last
    # axis there (`axis or -1`), which mis-shapes them; see test_normalize_axis_0
    axes = [a for a in range(-len(shape), len(shape)) if len(shape) == 1 or a != 0]
    axis = data.draw(st.sampled_from(axes))
    np.testing.assert_allclose(utils.normalize(x, axis, order), keras.utils.normalize(x, axis, order), rtol=1e-12)
    x32 = x.astype(np.float32)
    got, expected = utils.normalize(x32, axis, order), keras.utils.normalize(x32, axis, order)
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_normalize_axis_0():
    x = np.arange(1.0, 10.0).reshape(3, 3)
    np.testing.assert_allclose(utils.normalize(x, axis=0), x / np.linalg.norm(x, axis=0, keepdims=True))
    # Keras 3.15's NumPy path divides by the column norms laid along rows here (its `axis or -1`)
    assert not np.allclose(keras.utils.normalize(x, axis=0), utils.normalize(x, axis=0))


sequences = st.lists(st.lists(st.integers(-5, 50), max_size=6), max_size=5)


@settings(max_examples=40)
@given(
    seqs=sequences,
    maxlen=st.sampled_from([None, 1, 2, 4, 7]),
    dtype=st.sampled_from(["int32", "int64", "float32", "float64"]),
    padding=st.sampled_from(["pre", "post"]),
    truncating=st.sampled_from(["pre", "post"]),
    value=st.sampled_from([0.0, -1, 2.5]),
    as_arrays=st.booleans(),
)
def test_pad_sequences_matches_keras(seqs, maxlen, dtype, padding, truncating, value, as_arrays):
    if maxlen is None and not seqs:
        maxlen = 3
    data = [np.asarray(s, dtype=np.int64) for s in seqs] if as_arrays else seqs
    arguments = dict(maxlen=maxlen, dtype=dtype, padding=padding, truncating=truncating, value=value)
    expected = keras.utils.pad_sequences(data, **arguments)
    got = utils.pad_sequences(data, **arguments)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_pad_sequences_of_vectors_and_strings_match_keras():
    vectors = [np.ones((2, 3)), np.zeros((0, 3)), np.arange(12.0).reshape(4, 3)]
    for padding in ("pre", "post"):
        np.testing.assert_array_equal(
            utils.pad_sequences(vectors, maxlen=3, dtype="float32", padding=padding),
            keras.utils.pad_sequences(vectors, maxlen=3, dtype="float32", padding=padding),
        )
    words = [["a", "b"], ["c"], []]
    np.testing.assert_array_equal(
        utils.pad_sequences(words, dtype=object, value="<pad>"),
        keras.utils.pad_sequences(words, dtype=object, value="<pad>"),
    )


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1), (4, 5, 3)])
@pytest.mark.parametrize("data_format", [None, "channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", [None, "float64", "uint8"])
def test_img_to_array_matches_keras(shape, data_format, dtype):
    image = np.random.default_rng(10).integers(0, 256, shape).astype(np.uint8)

    class Picture:  # any object with __array__, as a Pillow image has
        def __array__(self, dtype=None, copy=None):
            return image if dtype is None else image.astype(dtype)

    for source in (image, image.tolist(), Picture()):
        expected = keras.utils.img_to_array(source, data_format=data_format, dtype=dtype)
        got = utils.img_to_array(source, data_format=data_format, dtype=dtype)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_array_to_img_as_keras():
    x = np.random.default_rng(11).random((4, 5, 3)).astype(np.float32)
    try:
        import PIL  # noqa: F401
    except ImportError:
        # neither can make a Pillow image without Pillow
        with pytest.raises(ImportError):
            keras.utils.array_to_img(x)
        with pytest.raises(ImportError, match="needs Pillow"):
            utils.array_to_img(x)
    else:
        for scale in (True, False):
            np.testing.assert_array_equal(
                np.asarray(utils.array_to_img(x * 255, scale=scale)),
                np.asarray(keras.utils.array_to_img(x * 255, scale=scale)),
            )


def test_get_file_returns_a_cached_file_as_keras_does(tmp_path):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "data.npz").write_bytes(b"cached bytes")
    digest = hashlib.sha256(b"cached bytes").hexdigest()
    for file_hash in (None, digest, hashlib.md5(b"cached bytes").hexdigest()):
        arguments = dict(origin="https://example.invalid/data.npz", cache_dir=str(tmp_path), file_hash=file_hash)
        assert utils.get_file("data.npz", **arguments) == keras.utils.get_file("data.npz", **arguments)
    # the name is taken from the origin when not given
    assert utils.get_file(origin="https://example.invalid/x/data.npz", cache_dir=str(tmp_path)) == str(
        tmp_path / "datasets" / "data.npz"
    )
    with pytest.raises(utils.DownloadNotSupportedError, match="does not match its expected sha256"):
        utils.get_file(
            "data.npz", origin="https://example.invalid/data.npz", cache_dir=str(tmp_path), file_hash="0" * 64
        )
