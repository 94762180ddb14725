"""Layer expressions: rankconv layer classes with literal arguments, nothing else."""

import pytest

from rankconv import layers
from rankconv.expressions import MAX_EXPRESSION_LENGTH, layer_classes, parse_layer


def test_calls_with_literal_arguments():
    layer = parse_layer("Conv2D(32, (3, 300), strides=2, padding='same', activation='relu')")
    assert isinstance(layer, layers.Conv2D)
    assert (layer.filters, layer.kernel_size, layer.strides, layer.padding) == (32, (3, 300), (2, 2), "same")
    assert isinstance(parse_layer("  layers.MaxPool2D(2)  "), layers.MaxPooling2D)
    assert isinstance(parse_layer("keras.layers.Dense(3, use_bias=False)"), layers.Dense)
    assert parse_layer("rankconv.layers.Conv(4, 2, 3)").rank == 4
    assert parse_layer("ZeroPadding2D(((1, 0), (2, -0)))").padding == ((1, 0), (2, 0))
    assert "Conv1D" in layer_classes() and "Layer" not in layer_classes()


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os').system('true')", "not a rankconv layer class"),
        ("os.system('true')", "not a rankconv layer class"),
        ("Conv1D(64, x)", "argument 2 must be a literal"),
        ("Conv1D(64, 3, activation=relu)", "quote it: 'relu'"),
        ("Conv1D(64, 3, activation=print('x'))", "`activation` must be a literal"),
        ("Conv1D(*[64, 3])", "`*` arguments"),
        ("Conv1D(**{'filters': 64})", "`**` arguments"),
        ("Conv1D(64, 3) + 1", "must be a call"),
        ("lambda: Conv1D(64, 3)", "must be a call"),
        ("Conv1D(64, 3", "not a call such as"),
        ("Conv1D(2 ** 100, 3)", "must be a literal"),
        ("Conv1D(64, 3).__class__(1, 1)", "not a rankconv layer class"),
        ("Conv1d(64, 3)", "Did you mean Conv1D"),
        ("Model(1, 2)", "not a rankconv layer class"),
    ],
)
def test_anything_else_is_refused_clearly(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse_layer(text)


def test_wrong_arguments_and_types():
    with pytest.raises(TypeError, match="Conv1D\\(64\\)"):
        parse_layer("Conv1D(64)")
    with pytest.raises(TypeError, match="must be a string"):
        parse_layer(layers.Conv1D(64, 3))
    with pytest.raises(ValueError, match="at most"):
        parse_layer("Conv1D(" + "1" * MAX_EXPRESSION_LENGTH + ", 3)")
    with pytest.raises(ValueError):
        parse_layer("Conv1D(" + "(" * 500 + "1" + ")" * 500 + ", 3)")
