"""The Keras layer contract of Conv / Conv1D / Conv2D / Conv3D, without an oracle."""

import numpy as np
import pytest

from rankconv import constraints, initializers, regularizers
from rankconv.layers import Conv, Conv1D, Conv2D, Conv3D

from reference import reference_conv


@pytest.mark.parametrize(
    "layer,input_shape,kernel_shape,output_shape",
    [
        (lambda: Conv1D(64, 3), (None, 600, 300), (3, 300, 64), (None, 598, 64)),
        (lambda: Conv2D(64, 3), (None, 600, 300, 1), (3, 3, 1, 64), (None, 598, 298, 64)),
        (lambda: Conv2D(64, (3, 300)), (None, 600, 300, 1), (3, 300, 1, 64), (None, 598, 1, 64)),
        (lambda: Conv3D(8, 3, padding="same"), (None, 16, 16, 16, 4), (3, 3, 3, 4, 8), (None, 16, 16, 16, 8)),
        (lambda: Conv(4, 5, 2), (None, 6, 6, 6, 6, 3), (2, 2, 2, 2, 3, 5), (None, 5, 5, 5, 5, 5)),
        (lambda: Conv2D(6, 3, groups=3), (None, 8, 8, 9), (3, 3, 3, 6), (None, 6, 6, 6)),
        (lambda: Conv1D(4, 3, padding="causal", dilation_rate=4), (None, 20, 2), (3, 2, 4), (None, 20, 4)),
        (
            lambda: Conv2D(4, 3, strides=2, padding="same", data_format="channels_first"),
            (None, 3, 9, 8),
            (3, 3, 3, 4),
            (None, 4, 5, 4),
        ),
    ],
)
def test_build_kernel_shape_and_output_shape(layer, input_shape, kernel_shape, output_shape):
    layer = layer()
    layer.build(input_shape)
    assert layer.kernel.shape == kernel_shape
    assert layer.bias.shape == (layer.filters,)
    assert layer.compute_output_shape(input_shape) == output_shape
    assert layer.count_params() == int(np.prod(kernel_shape)) + layer.filters


def test_call_builds_and_computes_conv_plus_bias_then_activation():
    rng = np.random.default_rng(0)
    layer = Conv2D(5, (3, 2), strides=(2, 1), padding="same", activation="relu", bias_initializer="random_normal")
    x = rng.standard_normal((2, 9, 7, 3))
    y = layer(x)
    assert layer.built and y.dtype == np.float32 and y.shape == (2, 5, 7, 5)
    kernel, bias = layer.get_weights()
    expected = np.maximum(reference_conv(x.astype(np.float32), kernel, (2, 1), "same") + bias, 0)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert layer.compute_output_shape(x.shape) == y.shape


def test_weights_order_set_weights_and_trainable():
    layer = Conv1D(4, 3)
    layer.build((None, 10, 2))
    assert [w.name for w in layer.weights] == ["kernel", "bias"]
    assert [w.path for w in layer.weights] == [f"{layer.name}/kernel", f"{layer.name}/bias"]
    new = [np.full((3, 2, 4), 0.5, np.float32), np.arange(4, dtype=np.float32)]
    layer.set_weights(new)
    for got, want in zip(layer.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    assert Conv1D(4, 3, use_bias=False)(np.zeros((1, 5, 2))).shape == (1, 3, 4)


def test_set_weights_errors_name_layer_and_shapes():
    layer = Conv1D(4, 3, name="trigrams")
    layer.build((None, 10, 2))
    with pytest.raises(ValueError, match="'trigrams' expects 2 weight arrays.*received 1"):
        layer.set_weights([np.zeros((3, 2, 4))])
    with pytest.raises(ValueError, match="'trigrams' weight 'kernel' has shape \\(3, 2, 4\\).*\\(3, 4, 2\\)"):
        layer.set_weights([np.zeros((3, 4, 2)), np.zeros(4)])


def test_config_round_trip_for_every_rank():
    for layer in [
        Conv1D(4, 3, padding="causal", dilation_rate=2, activation="tanh", kernel_regularizer="l2"),
        Conv2D(
            6,
            (3, 2),
            strides=(2, 1),
            groups=2,
            kernel_initializer="he_normal",
            kernel_constraint=constraints.MaxNorm(3, axis=[0, 1, 2]),
        ),
        Conv3D(
            2,
            2,
            data_format="channels_first",
            use_bias=False,
            bias_regularizer=regularizers.L1L2(0.1, 0.2),
            dtype="float64",
        ),
        Conv(4, 3, 2, activity_regularizer="l1", bias_constraint="non_neg"),
    ]:
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
    assert Conv(4, 3, 2).get_config()["rank"] == 4
    assert "rank" not in Conv2D(3, 2).get_config()


def test_automatic_names_are_unique_like_keras():
    first, second = Conv2D(1, 1), Conv2D(1, 1)
    assert first.name.startswith("conv2d") and second.name.startswith("conv2d") and first.name != second.name
    assert Conv(4, 1, 1).name.startswith("conv")


def test_float64_layer():
    layer = Conv1D(2, 2, dtype="float64")
    assert layer(np.ones((1, 4, 3), np.float32)).dtype == np.float64
    assert layer.kernel.value.dtype == np.float64


def test_regularization_losses():
    layer = Conv1D(
        2, 2, kernel_regularizer=regularizers.L2(0.5), bias_regularizer="l1", activity_regularizer=regularizers.L1(0.25)
    )
    y = layer(np.ones((1, 4, 3)))
    kernel, bias = layer.get_weights()
    expected = [0.5 * np.sum(kernel**2), np.float32(0.01) * np.sum(np.abs(bias)), 0.25 * np.sum(np.abs(y))]
    np.testing.assert_allclose(layer.losses, expected, rtol=1e-6)


def test_seeded_initializer_repeats_and_global_seed_repeats():
    from rankconv.utils import set_random_seed

    a = Conv1D(4, 3, kernel_initializer=initializers.GlorotUniform(seed=7))
    b = Conv1D(4, 3, kernel_initializer=initializers.GlorotUniform(seed=7))
    a.build((None, 9, 2))
    b.build((None, 9, 2))
    np.testing.assert_array_equal(a.kernel.value, b.kernel.value)
    set_random_seed(3)
    c = Conv1D(4, 3)
    c.build((None, 9, 2))
    set_random_seed(3)
    d = Conv1D(4, 3)
    d.build((None, 9, 2))
    np.testing.assert_array_equal(c.kernel.value, d.kernel.value)


@pytest.mark.parametrize(
    "make,call_shape,error,match",
    [
        (
            lambda: Conv1D(64, 3),
            (600, 300),
            ValueError,
            "expects inputs with 3 axes, \\(batch, steps, channels\\); received shape \\(600, 300\\).*batch axis",
        ),
        (lambda: Conv2D(64, 3), (600, 300), ValueError, "Conv2D.*4 axes.*\\(600, 300\\)"),
        (lambda: Conv2D(4, 3, groups=2), (1, 8, 8, 3), ValueError, "3 channels must be divisible by groups=2"),
        (
            lambda: Conv1D(4, 5),
            (1, 3, 2),
            ValueError,
            "kernel \\(size 5, dilation 1\\) is larger than spatial axis 0 of the input \\(3\\)",
        ),
        (lambda: Conv2D(4, 3, dilation_rate=3), (1, 6, 9, 1), ValueError, "larger than spatial axis 0"),
    ],
)
def test_bad_inputs(make, call_shape, error, match):
    with pytest.raises(error, match=match):
        make()(np.zeros(call_shape, np.float32))


def test_input_with_other_channel_count_after_build():
    layer = Conv1D(4, 3, name="c")
    layer(np.zeros((1, 9, 2)))
    with pytest.raises(ValueError, match="'c' was built for inputs with 2 channels.*\\(1, 9, 5\\)"):
        layer(np.zeros((1, 9, 5)))


def test_non_numeric_input():
    with pytest.raises(TypeError, match="numeric array.*<U"):
        Conv1D(2, 1)(np.array([[["a"]]]))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Conv1D(0, 3), "`filters` must be a positive integer; received filters=0"),
        (lambda: Conv1D(2.5, 3), "`filters`"),
        (lambda: Conv2D(64, (3,)), "`kernel_size` argument must be a tuple of 2 integers.*\\(3,\\)"),
        (lambda: Conv2D(4, 0), "`kernel_size`.*`value > 0`"),
        (lambda: Conv2D(4, 3, strides=(1, -1)), "`strides`"),
        (lambda: Conv2D(6, 3, groups=4), "divisible by `groups`"),
        (lambda: Conv2D(4, 3, groups=0), "`groups`"),
        (lambda: Conv2D(4, 3, padding="causal"), "`padding`"),
        (lambda: Conv2D(4, 3, padding=((1, 1), (1, 1))), "Explicit pairs are available in rankconv.ops.conv"),
        (lambda: Conv2D(4, 3, strides=2, dilation_rate=2), "cannot be combined"),
        (lambda: Conv2D(4, 3, data_format="NHWC"), "`data_format`"),
        (lambda: Conv2D(4, 3, activation="nope"), "Unknown activation 'nope'"),
        (lambda: Conv2D(4, 3, kernel_initializer="nope"), "`kernel_initializer`"),
        (lambda: Conv2D(4, 3, kernel_regularizer="nope"), "`kernel_regularizer`"),
        (lambda: Conv2D(4, 3, kernel_constraint="nope"), "`kernel_constraint`"),
        (lambda: Conv2D(4, 3, dtype="int8"), "`dtype`"),
        (lambda: Conv(0, 4, 3), "`rank`"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_count_params_before_build():
    with pytest.raises(ValueError, match="not built"):
        Conv1D(2, 2).count_params()


def test_building_twice_does_not_duplicate_weights():
    layer = Conv2D(2, 2)
    layer.build((None, 5, 5, 3))
    kernel = layer.kernel
    layer.build((None, 5, 5, 3))
    assert len(layer.weights) == 2 and layer.kernel is kernel and layer.count_params() == 26


def test_layer_padding_message_lists_what_layers_take():
    with pytest.raises(ValueError, match="\\('valid', 'same'\\).*received padding='causal'"):
        Conv2D(2, 3, padding="causal")
    assert Conv1D(2, 3, padding="CAUSAL").padding == "causal"


def test_dtype_policy_without_a_name_is_float32():
    from rankconv.layers.layer import normalize_dtype

    assert normalize_dtype({"class_name": "DTypePolicy", "config": {}}) == "float32"
