"""Oracle: activations, regularizers, constraints and initializer configs against Keras 3."""

import numpy as np
import pytest

from rankconv import activations, constraints, initializers, regularizers

from oracles import keras as _keras

keras = _keras()


@pytest.mark.parametrize(
    "name",
    [
        "linear",
        "relu",
        "leaky_relu",
        "relu6",
        "elu",
        "selu",
        "sigmoid",
        "tanh",
        "softplus",
        "softsign",
        "silu",
        "swish",
        "gelu",
        "softmax",
    ],
)
def test_activations_match_keras(name):
    x = np.linspace(-30, 30, 241, dtype=np.float32).reshape(1, -1)
    x = np.concatenate([x, np.random.default_rng(0).standard_normal((3, 241)).astype(np.float32)])
    expected = keras.ops.convert_to_numpy(keras.activations.get(name)(x))
    np.testing.assert_allclose(activations.get(name)(x), expected, rtol=1e-5, atol=1e-6)


def test_gelu_approximate_matches_keras():
    x = np.linspace(-6, 6, 101, dtype=np.float32)
    expected = keras.ops.convert_to_numpy(keras.activations.gelu(x, approximate=True))
    np.testing.assert_allclose(activations.get("gelu")(x, approximate=True), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (lambda: constraints.MaxNorm(1.5, axis=[0, 1]), lambda: keras.constraints.MaxNorm(1.5, axis=[0, 1])),
        (lambda: constraints.MaxNorm(), lambda: keras.constraints.MaxNorm()),
        (lambda: constraints.NonNeg(), lambda: keras.constraints.NonNeg()),
        (lambda: constraints.UnitNorm(axis=2), lambda: keras.constraints.UnitNorm(axis=2)),
        (
            lambda: constraints.MinMaxNorm(0.5, 1.2, 0.7, axis=[0, 2]),
            lambda: keras.constraints.MinMaxNorm(0.5, 1.2, 0.7, axis=[0, 2]),
        ),
    ],
)
def test_constraints_match_keras(ours, theirs):
    w = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(np.float32)
    ours, theirs = ours(), theirs()
    np.testing.assert_allclose(ours(w), keras.ops.convert_to_numpy(theirs(w)), rtol=1e-5, atol=1e-6)
    assert constraints.serialize(ours) == keras.saving.serialize_keras_object(theirs)


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (lambda: regularizers.L1(0.3), lambda: keras.regularizers.L1(0.3)),
        (lambda: regularizers.L2(), lambda: keras.regularizers.L2()),
        (lambda: regularizers.L1L2(0.1, 0.2), lambda: keras.regularizers.L1L2(0.1, 0.2)),
        (lambda: regularizers.get("l1"), lambda: keras.regularizers.get("l1")),
        (lambda: regularizers.get("l1l2"), lambda: keras.regularizers.get("l1l2")),
    ],
)
def test_regularizers_match_keras(ours, theirs):
    w = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    ours, theirs = ours(), theirs()
    assert ours(w) == pytest.approx(float(keras.ops.convert_to_numpy(theirs(w))), rel=1e-5)
    assert regularizers.serialize(ours) == keras.saving.serialize_keras_object(theirs)


@pytest.mark.parametrize(
    "name",
    [
        "zeros",
        "ones",
        "glorot_uniform",
        "glorot_normal",
        "he_normal",
        "he_uniform",
        "lecun_normal",
        "lecun_uniform",
        "random_uniform",
        "random_normal",
        "truncated_normal",
        "variance_scaling",
    ],
)
def test_initializer_configs_match_keras(name):
    theirs = keras.initializers.get(name)
    ours = initializers.get(name)
    assert initializers.serialize(ours) == keras.saving.serialize_keras_object(theirs)
    # and Keras's serialised form loads here
    assert initializers.get(keras.saving.serialize_keras_object(theirs)) == ours
