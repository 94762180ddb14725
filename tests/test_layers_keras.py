"""Oracle: the layers around convolutions against real Keras 3 (torch backend): same weights →
same outputs, output shapes and configs; each side's config builds the other's layer."""

import numpy as np
import pytest
from test_layers_conv_keras import _normalise

from rankconv import layers

from oracles import keras as _keras

keras = _keras()


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


CASES = [
    ("Dense", dict(units=5, activation="tanh"), (3, 7)),
    ("Dense", dict(units=4, use_bias=False), (2, 3, 6)),
    ("Embedding", dict(input_dim=20, output_dim=4), "ids"),
    ("Embedding", dict(input_dim=20, output_dim=3, mask_zero=True), "ids"),
    ("Activation", dict(activation="softmax"), (3, 5)),
    ("Dropout", dict(rate=0.5), (4, 6)),
    ("Rescaling", dict(scale=0.5), (4, 6)),
    ("Rescaling", dict(scale=1 / 255, offset=-1.0), (2, 3, 4)),
    ("Rescaling", dict(scale=[0.5, 2.0, 1.0], offset=[0.0, 1.0, -2.0]), (2, 5, 3)),
    ("SpatialDropout1D", dict(rate=0.3), (2, 5, 4)),
    ("Flatten", dict(), (2, 3, 4, 5)),
    ("Flatten", dict(data_format="channels_first"), (2, 3, 4, 5)),
    ("Reshape", dict(target_shape=(4, -1)), (2, 3, 8)),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 9, 3)),
    ("MaxPooling2D", dict(pool_size=(2, 3), padding="valid"), (2, 7, 8, 3)),
    ("MaxPooling2D", dict(pool_size=3, strides=1, padding="same", data_format="channels_first"), (2, 3, 6, 5)),
    ("MaxPooling3D", dict(pool_size=2, padding="same"), (1, 5, 4, 3, 2)),
    # "same" average pooling only where the padding is symmetric: for an odd total pad Keras's torch
    # backend pads by replicating edge values (see test_asymmetric_same_average_pooling_excludes_padding)
    ("AveragePooling1D", dict(pool_size=4, strides=3, padding="same"), (2, 11, 3)),
    ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (2, 7, 5, 3)),
    ("AveragePooling3D", dict(pool_size=(2, 1, 2), padding="valid", data_format="channels_first"), (1, 2, 4, 3, 5)),
    ("GlobalMaxPooling1D", dict(), (2, 7, 3)),
    ("GlobalMaxPooling2D", dict(keepdims=True), (2, 4, 5, 3)),
    ("GlobalMaxPooling3D", dict(data_format="channels_first"), (2, 3, 2, 4, 5)),
    ("GlobalAveragePooling1D", dict(), (2, 7, 3)),
    ("GlobalAveragePooling2D", dict(data_format="channels_first", keepdims=True), (2, 3, 4, 5)),
    ("GlobalAveragePooling3D", dict(), (2, 2, 4, 5, 3)),
    ("BatchNormalization", dict(), (6, 4)),
    ("BatchNormalization", dict(axis=1, momentum=0.9, epsilon=0.01), (5, 3, 4, 4)),
    ("LayerNormalization", dict(), (3, 4, 6)),
    ("LayerNormalization", dict(axis=[1, 2], center=False), (3, 4, 6)),
    ("LayerNormalization", dict(rms_scaling=True), (3, 5)),
    ("ZeroPadding1D", dict(padding=(1, 3)), (2, 5, 3)),
    ("ZeroPadding2D", dict(padding=((1, 0), (2, 3))), (2, 4, 5, 3)),
    ("ZeroPadding2D", dict(padding=2, data_format="channels_first"), (2, 3, 4, 5)),
    ("ZeroPadding3D", dict(padding=(1, 2, 0)), (1, 3, 2, 4, 2)),
]


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_layer_matches_keras(name, kwargs, shape):
    rng = np.random.default_rng(0)
    if shape == "ids":
        x = rng.integers(0, 20, (3, 6)).astype("int32")
        x[0, :2] = 0
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    ours = getattr(layers, name)(**kwargs)
    theirs = getattr(keras.layers, name)(**kwargs)
    y_ours = ours(x)  # builds
    theirs(x)
    assert [tuple(w.shape) for w in theirs.weights] == [w.shape for w in ours.weights]
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in ours.weights]
    if name == "BatchNormalization":
        weights[3] = np.abs(weights[3]) + 0.5  # a variance
    ours.set_weights(weights)
    theirs.set_weights(weights)
    for training in (False, True):
        if name in ("Dropout", "SpatialDropout1D") and training:
            continue
        y_ours = ours(x, training=training)
        y_theirs = _numpy(theirs(x, training=training))
        assert y_ours.shape == y_theirs.shape
        np.testing.assert_allclose(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
        # the moving statistics move the same way in training
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    batchless = (None, *x.shape[1:])
    assert ours.compute_output_shape(batchless) == tuple(theirs.compute_output_shape(batchless))
    our_config, their_config = ours.get_config(), theirs.get_config()
    assert set(our_config) == set(their_config)
    for key in our_config:
        if key != "name":
            assert _normalise(our_config[key]) == _normalise(their_config[key]), key
    assert _normalise(getattr(layers, name).from_config(their_config).get_config()) == _normalise(their_config)
    assert _normalise(getattr(keras.layers, name).from_config(our_config).get_config()) == _normalise(our_config)


def test_merging_layers_match_keras():
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3)]
    for name, kwargs, inputs in [("Concatenate", {}, xs), ("Concatenate", {"axis": 1}, xs), ("Add", {}, xs)]:
        ours, theirs = getattr(layers, name)(**kwargs), getattr(keras.layers, name)(**kwargs)
        np.testing.assert_allclose(ours(inputs), _numpy(theirs(inputs)), rtol=1e-6)
        shapes = [(None, 3, 4)] * 3
        assert ours.compute_output_shape(shapes) == tuple(theirs.compute_output_shape(shapes))
        assert _normalise({k: v for k, v in ours.get_config().items() if k != "name"}) == _normalise(
            {k: v for k, v in theirs.get_config().items() if k != "name"}
        )


def test_input_layer_config_matches_keras():
    ours = layers.InputLayer(shape=(20,), dtype="int32", name="tokens")
    theirs = keras.layers.InputLayer(shape=(20,), dtype="int32", name="tokens")
    assert _normalise(ours.get_config()) == _normalise(theirs.get_config())


def test_masked_global_average_pooling_matches_keras():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0]], bool)
    ours = layers.GlobalAveragePooling1D()(x, mask=mask)
    theirs = _numpy(keras.layers.GlobalAveragePooling1D()(x, mask=mask))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_dropout_training_statistics():
    x = np.ones((200, 500), np.float32)
    y = layers.Dropout(0.3, seed=1)(x, training=True)
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.01
    spatial = layers.SpatialDropout1D(0.5, seed=2)(np.ones((8, 10, 6), np.float32), training=True)
    assert ((spatial == 0).all(axis=1) | (spatial != 0).all(axis=1)).all()  # whole channels


def _reference_same_average_1d(x, pool, stride):
    """TensorFlow's "same" average pooling, from the definition: padded cells are not counted."""
    n = x.shape[1]
    out = -(-n // stride)
    total = max((out - 1) * stride + pool - n, 0)
    lo = total // 2
    y = np.zeros((x.shape[0], out, x.shape[2]))
    for o in range(out):
        cells = [i for i in range(o * stride - lo, o * stride - lo + pool) if 0 <= i < n]
        y[:, o] = x[:, cells].astype(np.float64).mean(axis=1)
    return y


def test_asymmetric_same_average_pooling_excludes_padding():
    x = np.random.default_rng(3).standard_normal((2, 10, 3)).astype(np.float32)
    ours = layers.AveragePooling1D(pool_size=4, strides=3, padding="same")(x)
    np.testing.assert_allclose(ours, _reference_same_average_1d(x, 4, 3), rtol=1e-6, atol=1e-6)
    # Keras's torch backend replicates the edge instead here, so it differs on the first window
    theirs = _numpy(keras.layers.AveragePooling1D(pool_size=4, strides=3, padding="same")(x))
    assert not np.allclose(theirs[:, 0], ours[:, 0])
    np.testing.assert_allclose(theirs[:, 1:3], ours[:, 1:3], rtol=1e-6)


def test_rescaling_refuses_factors_that_do_not_broadcast():
    with pytest.raises(TypeError, match="`scale` must be a number or an array of numbers"):
        layers.Rescaling("half")
    with pytest.raises(ValueError, match=r"`offset` of shape \(2,\) does not broadcast .* \(None, 5, 3\)"):
        layers.Rescaling(0.5, offset=[1.0, 2.0])(layers.Input((5, 3)))
    with pytest.raises(ValueError, match="`scale` of shape"):
        layers.Rescaling([1.0, 2.0])(np.ones((2, 5, 3), "float32"))
    assert layers.Rescaling(np.array(2)).get_config()["scale"] == 2.0  # a 0-d array is a number
