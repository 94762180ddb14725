"""`rankconv.explain` against Keras 3: every layer's output shape and parameter count equal what
Keras computes for the same stack (random stacks of convolution, transposed, depthwise, separable,
pooling and resampling layers of ranks 1-3, and Kim's text CNN read from a file)."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

import rankconv
from rankconv import layers as L
from rankconv.explanation import explain

from oracles import keras

keras = keras()


def _keras_layer(layer):
    return getattr(keras.layers, type(layer).__name__).from_config(layer.get_config())


def _compare(layers, sample_shape):
    explanation = explain(layers, sample_shape)
    model = keras.Sequential([keras.Input(sample_shape), *(_keras_layer(layer) for layer in layers)])
    ours = explanation.layers[1:]
    assert len(ours) == len(model.layers)
    for mine, theirs in zip(ours, model.layers):
        assert tuple(mine.batch_output_shape) == tuple(theirs.output.shape), (mine.call, theirs.name)
        assert mine.params == theirs.count_params(), mine.call
    assert explanation.totals["params"] == model.count_params()
    return explanation


@st.composite
def keras_stacks(draw):
    rank = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(5, {1: 30, 2: 12, 3: 7}[rank])) for _ in range(rank))
    channels = draw(st.integers(1, 4))
    shape = (None, *spatial, channels)
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        layer = _layer(draw, rank)
        try:
            out = layer.compute_output_shape(shape)
        except ValueError:
            continue
        if any(n is None or n < 1 for n in out[1:]) or math.prod(out[1:-1]) > 2000:
            continue
        layers.append(layer)
        shape = out
    tail = draw(st.sampled_from([None, "global", "flatten"]))
    if layers and tail == "global":
        layers.append(getattr(L, f"GlobalAveragePooling{rank}D")())
    elif layers and tail == "flatten":
        layers += [L.Flatten(), L.Dense(draw(st.integers(1, 5)))]
    return layers, (*spatial, channels)


def _layer(draw, rank):
    kinds = ["conv", "pool", "transpose", "resample"] + (["depthwise", "separable"] if rank < 3 else [])
    kind = draw(st.sampled_from(kinds))
    size = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    strided = draw(st.booleans())
    strides = tuple(draw(st.integers(1, 3)) for _ in range(rank)) if strided else 1
    dilation = 1 if strided else tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = draw(st.sampled_from(["valid", "same", "causal"] if rank == 1 and kind == "conv" else ["valid", "same"]))
    filters = draw(st.integers(1, 6))
    use_bias = draw(st.booleans())
    name = f"{rank}D"
    if kind == "conv":
        groups = draw(st.sampled_from([1, 1, 2]))
        return getattr(L, f"Conv{name}")(
            filters * groups, size, strides, padding, dilation_rate=dilation, groups=groups, use_bias=use_bias
        )
    if kind == "transpose":
        extra = tuple(draw(st.integers(0, s - 1)) for s in strides) if strided and draw(st.booleans()) else None
        return getattr(L, f"Conv{name}Transpose")(
            filters, size, strides, padding, output_padding=extra, dilation_rate=dilation, use_bias=use_bias
        )
    if kind == "depthwise":
        return getattr(L, f"DepthwiseConv{name}")(
            size, strides, padding, depth_multiplier=draw(st.integers(1, 3)), dilation_rate=dilation, use_bias=use_bias
        )
    if kind == "separable":
        return getattr(L, f"SeparableConv{name}")(
            filters, size, strides, padding, dilation_rate=dilation, depth_multiplier=draw(st.integers(1, 2))
        )
    if kind == "pool":
        base = draw(st.sampled_from(["MaxPooling", "AveragePooling"]))
        return getattr(L, f"{base}{name}")(size, strides=strides if strided else None, padding=padding)
    choice = draw(st.sampled_from(["UpSampling", "Cropping", "ZeroPadding"]))
    cls = getattr(L, f"{choice}{name}")
    if choice == "UpSampling":
        factors = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        return cls(factors[0] if rank == 1 else factors)
    pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
    return cls(pairs[0] if rank == 1 else pairs)


@settings(max_examples=30)
@given(keras_stacks())
def test_shapes_and_parameters_equal_keras(stack):
    layers, shape = stack
    if layers:
        _compare(layers, shape)


def test_the_seeds_layers_equal_keras():
    for expression, shape in (
        ("Conv1D(64, 3)", (600, 300)),
        ("Conv2D(64, 3)", (600, 300, 1)),
        ("Conv2D(64, (3, 300))", (600, 300, 1)),
    ):
        explanation = explain(expression, shape)
        _compare([explanation.layers[1].layer], shape)


def test_kim_text_cnn_file_equals_keras(tmp_path):
    from rankconv.text import kim_cnn

    path = tmp_path / "kim.keras"
    kim_cnn(200, 2, embedding_dim=20, filters=8, length=30, seed=0).save(path)
    explanation = explain(path)
    model = keras.saving.load_model(path)
    theirs = {layer.name: layer for layer in model.layers}
    for mine in explanation.layers[1:]:
        assert tuple(mine.batch_output_shape) == tuple(theirs[mine.name].output.shape), mine.name
        assert mine.params == theirs[mine.name].count_params(), mine.name
    assert explanation.totals["params"] == model.count_params()


def test_image_cnn_file_equals_keras(tmp_path):
    path = tmp_path / "cnn.keras"
    rankconv.Sequential(
        [
            L.Input((28, 28, 3)),
            L.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(2),
            L.SeparableConv2D(32, 3, padding="same"),
            L.GlobalAveragePooling2D(),
            L.Dense(10, activation="softmax"),
        ]
    ).save(path)
    explanation = explain(path)
    model = keras.saving.load_model(path)
    for mine, theirs in zip(explanation.layers[1:], model.layers):
        assert tuple(mine.batch_output_shape) == tuple(theirs.output.shape), mine.name
        assert mine.params == theirs.count_params(), mine.name
    assert explanation.totals["params"] == model.count_params()
    assert explanation.totals["trainable_params"] == sum(math.prod(w.shape) for w in model.trainable_weights)
