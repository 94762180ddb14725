"""Oracle: the rest of the convolution family (transposed, depthwise, separable) against real
Keras 3 layers (torch backend): same weights, same outputs, output shapes, parameter counts and
configs; each side's config builds the other's layer; `.keras` files load both ways."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankconv import layers, saving
from rankconv.models import Sequential

from oracles import keras as _keras

keras = _keras()

ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid", "elu"]


def _normalise(value):
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


@st.composite
def family_configs(draw):
    kind = draw(st.sampled_from(["transpose", "depthwise", "separable"]))
    rank = draw(st.sampled_from([1, 2, 3] if kind == "transpose" else [1, 2]))
    small = rank == 3
    kernel = tuple(draw(st.integers(1, 2 if small else 4)) for _ in range(rank))
    if draw(st.booleans()):
        strides = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        dilation = (1,) * rank
    else:
        strides = (1,) * rank
        dilation = tuple(draw(st.integers(1, 1 if small else 3)) for _ in range(rank))
    padding = draw(st.sampled_from(["valid", "same"]))
    config = dict(
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        data_format=draw(st.sampled_from(["channels_last", "channels_first"])),
        dilation_rate=dilation,
        activation=draw(st.sampled_from(ACTIVATIONS)),
        use_bias=draw(st.booleans()),
    )
    if kind != "depthwise":
        config["filters"] = draw(st.integers(1, 4))
    if kind != "transpose":
        config["depth_multiplier"] = draw(st.integers(1, 3))
    if kind == "transpose" and draw(st.booleans()):
        config["output_padding"] = tuple(draw(st.integers(0, s - 1)) for s in strides)
    if kind == "transpose":
        spatial = tuple(draw(st.integers(1, 3 if small else 6)) for _ in range(rank))
    else:
        spatial = tuple(
            draw(st.integers(d * (k - 1) + 1, d * (k - 1) + (3 if small else 7))) for k, d in zip(kernel, dilation)
        )
    channels = draw(st.integers(1, 3))
    batch = draw(st.integers(1, 2))
    if config["data_format"] == "channels_last":
        shape = (batch, *spatial, channels)
    else:
        shape = (batch, channels, *spatial)
    name = {"transpose": f"Conv{rank}DTranspose", "depthwise": f"DepthwiseConv{rank}D"}.get(kind)
    return name or f"SeparableConv{rank}D", config, shape


@settings(max_examples=120, deadline=None)
@given(case=family_configs(), seed=st.integers(0, 2**16))
def test_same_weights_same_outputs_shapes_and_configs(case, seed):
    name, config, input_shape = case
    ours = getattr(layers, name)(**config)
    theirs = getattr(keras.layers, name)(**config)
    if 0 in tuple(theirs.compute_output_shape(input_shape)):  # Keras's arithmetic leaves an axis empty
        with pytest.raises(ValueError, match="gives an empty output"):
            ours.compute_output_shape(input_shape)
        return
    ours.build(input_shape)
    theirs.build(input_shape)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in ours.weights]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    x = rng.standard_normal(input_shape).astype(np.float32)
    expected = keras.ops.convert_to_numpy(theirs(x))
    got = ours(x)
    assert got.shape == expected.shape
    assert ours.compute_output_shape(input_shape) == tuple(theirs.compute_output_shape(input_shape))
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, atol=1e-4 * scale)
    assert ours.count_params() == theirs.count_params()
    their_config, our_config = theirs.get_config(), ours.get_config()
    assert set(our_config) == set(their_config)
    for key in our_config:
        if key != "name":
            assert _normalise(our_config[key]) == _normalise(their_config[key]), key


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2, output_padding=1, kernel_regularizer="l2")),
        ("Conv2DTranspose", dict(filters=2, kernel_size=(3, 2), padding="same", activation="relu", use_bias=False)),
        ("Conv3DTranspose", dict(filters=2, kernel_size=2, data_format="channels_first", bias_constraint="non_neg")),
        ("DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=2, depthwise_initializer="he_normal")),
        ("DepthwiseConv2D", dict(kernel_size=(3, 3), padding="same", depthwise_constraint="max_norm")),
        (
            "SeparableConv1D",
            dict(filters=4, kernel_size=5, pointwise_initializer="ones", depthwise_regularizer="l1"),
        ),
        ("SeparableConv2D", dict(filters=8, kernel_size=3, strides=2, depth_multiplier=2, activity_regularizer="l2")),
    ],
)
def test_configs_cross_load(name, kwargs):
    theirs = getattr(keras.layers, name)(**kwargs)
    ours = getattr(layers, name).from_config(theirs.get_config())
    assert _normalise(ours.get_config()) == _normalise(theirs.get_config())
    back = getattr(keras.layers, name).from_config(ours.get_config())
    assert _normalise(back.get_config()) == _normalise(theirs.get_config())


def _family_layers(lay):
    return [
        lay.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        lay.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
        lay.SeparableConv2D(6, 3, padding="same", activation="tanh"),
        lay.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
        lay.Conv2DTranspose(2, 2, strides=2, data_format="channels_first"),
    ]


def test_family_files_load_both_ways(tmp_path):
    shape = (8, 8, 3)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    rng = np.random.default_rng(1)
    ours = Sequential([layers.Input(shape), *_family_layers(layers)])
    ours.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3 for w in ours.weights])
    ours.save(tmp_path / "ours.keras")
    loaded = keras.saving.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), ours.predict(x), rtol=1e-5, atol=1e-5)
    theirs = keras.Sequential([keras.Input(shape), *_family_layers(keras.layers)])
    theirs.set_weights([rng.standard_normal(tuple(w.shape)).astype(np.float32) * 0.3 for w in theirs.weights])
    theirs.save(tmp_path / "theirs.keras")
    back = saving.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(back.predict(x), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-5, atol=1e-5)
