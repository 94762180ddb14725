"""Oracle: real Keras 3 layers (torch backend) with the same weights compute the same outputs,
shapes and configs as rankconv's, and each side's config builds the other's layer."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rankconv import layers

from oracles import keras as _keras
from oracles import without_onednn

keras = _keras()

ACTIVATIONS = [
    "linear",
    "relu",
    "tanh",
    "sigmoid",
    "gelu",
    "softmax",
    "elu",
    "selu",
    "softplus",
    "softsign",
    "silu",
    "relu6",
    "leaky_relu",
]


@st.composite
def layer_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    small = rank == 3
    kernel = tuple(draw(st.integers(1, 2 if small else 4)) for _ in range(rank))
    if draw(st.booleans()):
        strides = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        dilation = (1,) * rank
    else:
        strides = (1,) * rank
        dilation = tuple(draw(st.integers(1, 1 if small else 3)) for _ in range(rank))
    groups = draw(st.sampled_from([1, 1, 2]))
    modes = ["valid", "same", "causal"] if rank == 1 else ["valid", "same"]
    padding = draw(st.sampled_from(modes))
    spatial = tuple(
        draw(st.integers(d * (k - 1) + 1, d * (k - 1) + (3 if small else 8))) for k, d in zip(kernel, dilation)
    )
    config = dict(
        filters=groups * draw(st.integers(1, 4)),
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        data_format=draw(st.sampled_from(["channels_last", "channels_first"])),
        dilation_rate=dilation,
        groups=groups,
        activation=draw(st.sampled_from(ACTIVATIONS)),
        use_bias=draw(st.booleans()),
    )
    channels = groups * draw(st.integers(1, 3))
    batch = draw(st.integers(1, 3))
    if config["data_format"] == "channels_last":
        input_shape = (batch, *spatial, channels)
    else:
        input_shape = (batch, channels, *spatial)
    return rank, config, input_shape


KERAS_CLASSES = {1: "Conv1D", 2: "Conv2D", 3: "Conv3D"}


def _normalise(value):
    """Config values compared across the two: tuples and lists alike."""
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


_ONEDNN_BUG = {"kernel_size": (1, 1, 2), "strides": (1, 1, 2), "padding": "valid", "data_format": "channels_last"}


@settings(max_examples=60)
@given(case=layer_configs(), seed=st.integers(0, 2**16))
@example(case=(3, {"filters": 1, **_ONEDNN_BUG, "use_bias": False}, (3, 3, 3, 3, 1)), seed=0)
def test_same_weights_same_outputs_shapes_and_configs(case, seed):
    rank, config, input_shape = case
    name = KERAS_CLASSES[rank]
    ours = getattr(layers, name)(**config)
    theirs = getattr(keras.layers, name)(**config)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(input_shape).astype(np.float32)
    ours.build(input_shape)
    theirs.build(input_shape)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in ours.weights]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    with without_onednn():  # see there: a PyTorch bug
        expected = keras.ops.convert_to_numpy(theirs(x))
    got = ours(x)
    assert got.shape == expected.shape
    assert ours.compute_output_shape(input_shape) == tuple(theirs.compute_output_shape(input_shape))
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, atol=1e-4 * scale)
    assert ours.count_params() == theirs.count_params()

    their_config = theirs.get_config()
    our_config = ours.get_config()
    assert set(our_config) == set(their_config)
    for key in our_config:
        if key != "name":
            assert _normalise(our_config[key]) == _normalise(their_config[key]), key


@pytest.mark.parametrize(
    "name,kwargs",
    [
        (
            "Conv1D",
            dict(
                filters=4,
                kernel_size=3,
                padding="causal",
                dilation_rate=2,
                activation="relu",
                kernel_regularizer="l2",
                bias_constraint="non_neg",
            ),
        ),
        (
            "Conv2D",
            dict(
                filters=6,
                kernel_size=(3, 2),
                strides=(2, 1),
                groups=2,
                kernel_initializer="he_normal",
                activity_regularizer="l1",
                kernel_constraint="max_norm",
            ),
        ),
        (
            "Conv3D",
            dict(
                filters=2,
                kernel_size=2,
                data_format="channels_first",
                use_bias=False,
                bias_initializer="ones",
                kernel_constraint="unit_norm",
                bias_regularizer="l1l2",
            ),
        ),
    ],
)
def test_configs_cross_load(name, kwargs):
    theirs = getattr(keras.layers, name)(**kwargs)
    ours = getattr(layers, name).from_config(theirs.get_config())
    assert _normalise(ours.get_config()) == _normalise(theirs.get_config())
    back = getattr(keras.layers, name).from_config(ours.get_config())
    assert _normalise(back.get_config()) == _normalise(theirs.get_config())


def test_seed_layers_kernel_shapes_match_keras():
    for ours, theirs, shape in [
        (layers.Conv1D(64, 3), keras.layers.Conv1D(64, 3), (None, 600, 300)),
        (layers.Conv2D(64, 3), keras.layers.Conv2D(64, 3), (None, 600, 300, 1)),
        (layers.Conv2D(64, (3, 300)), keras.layers.Conv2D(64, (3, 300)), (None, 600, 300, 1)),
    ]:
        ours.build(shape)
        theirs.build(shape)
        assert ours.kernel.shape == tuple(theirs.kernel.shape)
        assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape))
