"""lift / lower: equal outputs on random inputs, both directions, ranks 1→2 and 2→3."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankconv.equivalence import lift, lift_inputs, lower, lower_inputs, to_depthwise, to_grouped
from rankconv.layers import Conv, Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, ConvTranspose, DepthwiseConv


def _close(a, b):
    np.testing.assert_allclose(a, b, atol=1e-5 * max(1.0, float(np.abs(b).max())))


@settings(max_examples=30)
@given(
    rank=st.sampled_from([1, 2]),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    channels=st.integers(1, 12),
    data_format=st.sampled_from(["channels_last", "channels_first"]),
    activation=st.sampled_from([None, "relu", "tanh"]),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_lift_then_lower_computes_the_same(rank, kernel, stride, channels, data_format, activation, use_bias, seed):
    rng = np.random.default_rng(seed)
    spatial = tuple(rng.integers(kernel, kernel + 6) for _ in range(rank))
    shape = (2, *spatial, channels) if data_format == "channels_last" else (2, channels, *spatial)
    layer = (Conv1D if rank == 1 else Conv2D)(
        5,
        kernel,
        strides=stride,
        data_format=data_format,
        activation=activation,
        use_bias=use_bias,
        bias_initializer="random_normal",
    )
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer(x)
    lifted = lift(layer)
    assert lifted.rank == rank + 1 and type(lifted) is (Conv2D if rank == 1 else Conv3D)
    assert lifted.kernel.shape == (*layer.kernel_size, channels, 1, 5)
    y_lifted = lifted(lift_inputs(x, data_format))
    squeeze_axis = -2 if data_format == "channels_last" else -1
    _close(np.squeeze(y_lifted, axis=squeeze_axis), y)
    # and back down: lowering the lifted layer along its last spatial axis gives the original
    lowered = lower(lifted)
    assert type(lowered) is type(layer)
    for got, want in zip(lowered.get_weights(), layer.get_weights()):
        np.testing.assert_array_equal(got, want)
    _close(lowered(lower_inputs(lift_inputs(x, data_format), data_format=data_format)), y)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_lower_conv3d_along_any_axis(axis):
    rng = np.random.default_rng(1)
    spatial = [6, 7, 5]
    kernel = [2, 3, 2]
    kernel[axis] = spatial[axis]
    layer = Conv3D(4, tuple(kernel), strides=(1, 2, 1), activation="relu", bias_initializer="random_normal")
    x = rng.standard_normal((2, *spatial, 1)).astype(np.float32)
    y = layer(x)
    lowered = lower(layer, axis=axis)
    assert type(lowered) is Conv2D
    _close(lowered(lower_inputs(x, axis=axis)), np.squeeze(y, axis=axis % 3 + 1))


def test_seed_lower_wide_conv2d_is_conv1d():
    rng = np.random.default_rng(2)
    wide = Conv2D(64, (3, 300))
    x = rng.standard_normal((2, 600, 300, 1)).astype(np.float32)
    y = wide(x)
    narrow = lower(wide)
    assert type(narrow) is Conv1D and narrow.kernel.shape == (3, 300, 64)
    _close(narrow(x[..., 0]), y[:, :, 0, :])


def test_lift_rank_3_gives_rank_4_conv():
    layer = Conv3D(2, 2)
    layer.build((None, 4, 4, 4, 3))
    lifted = lift(layer)
    assert type(lifted) is Conv and lifted.rank == 4 and lifted.kernel.shape == (2, 2, 2, 3, 1, 2)


def test_lift_refusals_say_which_condition_fails():
    unbuilt = Conv1D(4, 3)
    with pytest.raises(ValueError, match="built"):
        lift(unbuilt)
    for kwargs, match in [
        ({"padding": "same"}, "padding='same'"),
        ({"padding": "causal"}, "padding='causal'"),
        ({"groups": 2}, "groups=2"),
    ]:
        layer = Conv1D(4, 3, **kwargs)
        layer.build((None, 10, 4))
        with pytest.raises(ValueError, match=match):
            lift(layer)
    with pytest.raises(TypeError, match="Conv or ConvTranspose layer"):
        lift("conv")


def test_lower_refusals_say_which_condition_fails():
    layer = Conv2D(4, (3, 3))
    layer.build((None, 10, 10, 1))
    with pytest.raises(ValueError, match="kernel has size 3 on spatial axis 1, which has length 10"):
        lower(layer)
    layer = Conv2D(4, (3, 10))
    layer.build((None, 10, 10, 2))
    with pytest.raises(ValueError, match="2 input channels, not 1"):
        lower(layer)
    layer = Conv2D(4, (3, 10), padding="same")
    layer.build((None, 10, 10, 1))
    with pytest.raises(ValueError, match="padding='same'"):
        lower(layer)
    layer = Conv2D(4, (3, 10))
    layer.build((None, 10, None, 1))
    with pytest.raises(ValueError, match="unknown length"):
        lower(layer)
    layer = Conv1D(4, 3)
    layer.build((None, 3, 1))
    with pytest.raises(ValueError, match="rank 1"):
        lower(layer)
    layer = Conv2D(4, (3, 3))
    layer.build((None, 10, 3, 1))
    with pytest.raises(ValueError, match="`axis`"):
        lower(layer, axis=2)


def test_input_helpers_check_their_arguments():
    assert lift_inputs(np.ones((2, 5, 3)), "CHANNELS_LAST").shape == (2, 5, 3, 1)
    with pytest.raises(ValueError, match="`data_format`"):
        lift_inputs(np.ones((2, 5, 3)), "channels_lsat")
    with pytest.raises(ValueError, match="one channel"):
        lower_inputs(np.ones((2, 5, 7, 3)))


# ----------------------------------------------------------------------------- the family


@settings(max_examples=25, deadline=None)
@given(
    rank=st.sampled_from([1, 2, 3]),
    multiplier=st.integers(1, 3),
    channels=st.integers(1, 4),
    data_format=st.sampled_from(["channels_last", "channels_first"]),
    padding=st.sampled_from(["valid", "same"]),
    seed=st.integers(0, 2**16),
)
def test_depthwise_and_grouped_compute_the_same(rank, multiplier, channels, data_format, padding, seed):
    rng = np.random.default_rng(seed)
    spatial = tuple(int(n) for n in rng.integers(3, 7, rank))
    shape = (2, *spatial, channels) if data_format == "channels_last" else (2, channels, *spatial)
    x = rng.standard_normal(shape).astype(np.float32)
    layer = DepthwiseConv(
        rank, 2, padding=padding, depth_multiplier=multiplier, data_format=data_format, activation="relu"
    )
    layer.build(shape)
    layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in layer.weights])
    grouped = to_grouped(layer)
    assert grouped.groups == channels and grouped.filters == channels * multiplier
    assert grouped.kernel.shape == (2,) * rank + (1, channels * multiplier)
    _close(grouped(x), layer(x))
    back = to_depthwise(grouped)
    assert isinstance(back, DepthwiseConv) and back.rank == rank and back.depth_multiplier == multiplier
    _close(back(x), layer(x))


def test_to_depthwise_refuses_groups_that_read_several_channels():
    layer = Conv2D(4, 3, groups=2)
    layer.build((1, 5, 5, 4))
    with pytest.raises(ValueError, match="each filter reads 2 channels"):
        to_depthwise(layer)
    with pytest.raises(TypeError, match="to_grouped takes a rankconv DepthwiseConv"):
        to_grouped(layer)


@settings(max_examples=25, deadline=None)
@given(
    rank=st.sampled_from([1, 2]),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 3),
    filters=st.integers(1, 5),
    channels=st.integers(1, 3),
    data_format=st.sampled_from(["channels_last", "channels_first"]),
    seed=st.integers(0, 2**16),
)
def test_transposed_lift_then_lower_computes_the_same(rank, kernel, stride, filters, channels, data_format, seed):
    rng = np.random.default_rng(seed)
    spatial = tuple(int(n) for n in rng.integers(1, 5, rank))
    shape = (2, *spatial, channels) if data_format == "channels_last" else (2, channels, *spatial)
    x = rng.standard_normal(shape).astype(np.float32)
    layer = ConvTranspose(rank, filters, kernel, strides=stride, data_format=data_format, activation="tanh")
    layer.build(shape)
    kernel_value = rng.standard_normal(layer.kernel.shape).astype(np.float32)
    layer.set_weights([kernel_value, np.full(filters, 0.3, np.float32)])  # one bias for every filter
    y = layer(x)
    lifted = lift(layer)
    assert lifted.rank == rank + 1 and lifted.filters == 1 and lifted.kernel_size[-1] == filters
    if data_format == "channels_last":
        y_lifted = lifted(x[..., np.newaxis, :])[..., 0]
    else:
        y_lifted = lifted(x[..., np.newaxis])[:, 0]
        y = np.moveaxis(y, 1, -1)
    _close(y_lifted, y)
    lowered = lower(lifted)
    assert lowered.rank == rank and lowered.filters == filters
    _close(lowered(x), layer(x))


def test_transposed_lift_and_lower_refusals_name_the_condition():
    layer = Conv1DTranspose(3, 2, padding="same")
    layer.build((1, 4, 2))
    with pytest.raises(ValueError, match="padding='same' would also pad the new axis"):
        lift(layer)
    varied = Conv1DTranspose(3, 2)
    varied.build((1, 4, 2))
    varied.set_weights([varied.kernel.value, np.array([0.0, 1.0, 2.0], np.float32)])
    with pytest.raises(ValueError, match="different biases"):
        lift(varied)
    wide = Conv2DTranspose(2, 3)
    wide.build((1, 4, 3, 1))
    with pytest.raises(ValueError, match=r"it has 2 filters, not 1; spatial axis 1 of its input has length 3, not 1"):
        lower(wide)
