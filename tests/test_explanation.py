"""`rankconv.explain` and `rankconv explain`: the seed's numbers, model files, the forms it calls
equivalent (checked by computing them), JSON keys, the command line."""

import json
import re

import numpy as np
import pytest

import rankconv
from rankconv import layers as L
from rankconv import ops
from rankconv.cli import main
from rankconv.explanation import explain

# ----------------------------------------------------------------------------- the seed


def test_the_seeds_three_layers():
    conv1d = explain("Conv1D(64, 3)", (600, 300)).layers[1]
    assert conv1d.kernel_shape == (3, 300, 64) and conv1d.output_shape == (598, 64)
    assert conv1d.params == 3 * 300 * 64 + 64 == 57_664
    assert conv1d.multiply_adds == 598 * 64 * 3 * 300 == 34_444_800
    assert conv1d.flops == 2 * 34_444_800 + 598 * 64
    assert conv1d.activation_bytes == 598 * 64 * 4
    (field,) = conv1d.receptive_field
    assert (field.axis, field.field.size, field.field.jump, field.field.start) == ("steps", 3, 1, 0)
    lifted = {e.form: e for e in conv1d.equivalents}["Conv2D(64, (3, 300))"]
    assert lifted.input_shape == (600, 300, 1) and lifted.output_shape == (598, 1, 64)
    assert lifted.kernel_shapes["kernel"] == (3, 300, 1, 64)
    text = " ".join(conv1d.sentences)
    assert "Each of the 64 filters is a (3, 300) window" in text and "trigram detector" in text
    assert "= (3, 300, 64)" in text and "57,664 parameters" in text

    square = explain("Conv2D(64, 3)", (600, 300, 1)).layers[1]
    assert square.kernel_shape == (3, 3, 1, 64) and square.output_shape == (598, 298, 64)
    assert square.params == 640
    assert [f.field.size for f in square.receptive_field] == [3, 3]
    assert "trigram" not in " ".join(square.sentences)

    wide = explain("Conv2D(64, (3, 300))", (600, 300, 1)).layers[1]
    assert wide.kernel_shape == (3, 300, 1, 64) and wide.output_shape == (598, 1, 64)
    assert wide.params == 57_664 and wide.multiply_adds == conv1d.multiply_adds
    assert [(f.axis, f.field.size) for f in wide.receptive_field] == [("rows", 3), ("cols", 300)]
    lowered = {e.form: e for e in wide.equivalents}["Conv1D(64, 3)"]
    assert lowered.input_shape == (600, 300) and lowered.kernel_shapes["kernel"] == (3, 300, 64)
    assert "trigram detector" in " ".join(wide.sentences)
    # the planner folds the spanned axis: the same algorithm as the Conv1D's
    assert "folded into the channels" in wide.plan[0]["forward"]["reason"]


def test_plan_is_the_planners():
    layer = explain("Conv1D(64, 3)", (600, 300), batch_size=8).layers[1]
    (step,) = layer.plan
    assert step["x_shape"] == [8, 600, 300] and step["kernel_shape"] == [3, 300, 64]
    assert (step["forward"]["algorithm"], step["forward"]["reason"]) == ops.conv_plan(
        (8, 600, 300), (3, 300, 64), 1, ((0, 0),), 1, 1
    )
    separable = explain("SeparableConv2D(8, 3, padding='same')", (10, 10, 4)).layers[1]
    assert [s["op"] for s in separable.plan] == ["depthwise convolution", "pointwise convolution"]
    assert separable.plan[1]["kernel_shape"] == [1, 1, 4, 8]
    transposed = explain("Conv2DTranspose(5, 3, strides=2)", (6, 6, 4)).layers[1]
    assert transposed.plan[0]["lhs_dilation"] == [2, 2] and transposed.plan[0]["kernel_shape"] == [3, 3, 4, 5]
    unknown = explain("Conv1D(4, 3)", (None, 8)).layers[1]
    assert unknown.plan == [] and "unknown" in unknown.plan_note


def test_batch_shapes_and_totals():
    explanation = explain(["Conv2D(8, 3)", "MaxPooling2D(2)"], (10, 10, 3), batch_size=16)
    conv = explanation.layers[1]
    assert conv.batch_input_shape == (16, 10, 10, 3) and conv.batch_output_shape == (16, 8, 8, 8)
    data = conv.to_dict()
    assert data["batch_multiply_adds"] == 16 * conv.multiply_adds and data["batch_flops"] == 16 * conv.flops
    totals = explanation.totals
    assert totals["batch_activation_bytes"] == 16 * totals["activation_bytes"]
    assert explanation.plan_batch == 16
    assert explain("Conv2D(8, 3)", (10, 10, 3)).totals["batch_flops"] is None


def test_counts():
    explanation = explain(
        [
            "Conv1D(6, 3, groups=2, padding='same')",
            "DepthwiseConv1D(3, depth_multiplier=2)",
            "SeparableConv1D(4, 3, use_bias=False)",
            "Conv1DTranspose(3, 4, strides=2)",
            "AveragePooling1D(2)",
            "Dense(5)",
        ],
        (20, 4),
    )
    conv, depthwise, separable, transposed, pool, dense = explanation.layers[1:]
    assert conv.multiply_adds == 20 * 6 * 3 * 2
    assert depthwise.multiply_adds == 18 * 12 * 3
    assert separable.multiply_adds == 16 * 12 * 3 + 16 * 12 * 4 and separable.flops == 2 * separable.multiply_adds
    assert transposed.multiply_adds == 16 * 4 * 4 * 3  # every input cell times the whole kernel
    assert pool.multiply_adds == 0 and pool.flops == 17 * 3 * 2
    assert dense.multiply_adds == 17 * 3 * 5


# ----------------------------------------------------------------------------- equivalent forms, computed


@pytest.fixture
def numpy_algorithms():
    """The NumPy algorithms: the same numbers, and no first-call compiling of kernels in these tests."""
    from rankconv.ops import jit

    was = jit.enabled()
    ops.set_jit(False)
    yield
    ops.set_jit(was)


def _run(layer, x):
    return np.asarray(layer(x))


def test_flatten_then_dense_is_a_whole_input_convolution(numpy_algorithms):
    model = rankconv.Sequential([L.Input((4, 5, 3)), L.Flatten(), L.Dense(7)])
    dense = explain(model).layers[-1]
    (form,) = [e for e in dense.equivalents if e.form.startswith("Conv2D")]
    assert form.form == "Conv2D(7, (4, 5)) on (4, 5, 3)" and form.kernel_shapes["kernel"] == (4, 5, 3, 7)
    conv = L.Conv2D(7, (4, 5))
    conv.build((None, 4, 5, 3))
    kernel, bias = model.layers[-1].get_weights()
    conv.set_weights([kernel.reshape(form.kernel_shapes["kernel"]), bias])
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 3)).astype("float32")
    np.testing.assert_allclose(_run(conv, x).reshape(2, 7), _run(model, x), rtol=1e-5, atol=1e-5)


def test_one_by_one_convolution_is_dense_and_back(numpy_algorithms):
    layer = explain("Conv2D(6, 1)", (5, 5, 4)).layers[1]
    (form,) = [e for e in layer.equivalents if e.form.startswith("Dense")]
    assert form.kernel_shapes["kernel"] == (4, 6)
    conv = layer.layer
    dense = L.Dense(6)
    dense.build((None, 4))
    kernel, bias = conv.get_weights()
    dense.set_weights([kernel.reshape(4, 6), bias])
    x = np.random.default_rng(1).standard_normal((2, 5, 5, 4)).astype("float32")
    np.testing.assert_allclose(_run(dense, x), _run(conv, x), rtol=1e-5, atol=1e-5)
    dense_layer = explain("Dense(6)", (5, 5, 4)).layers[1]
    assert any(e.form == "Conv2D(6, 1)" and e.kernel_shapes["kernel"] == (1, 1, 4, 6) for e in dense_layer.equivalents)


def test_average_pooling_is_a_constant_depthwise_convolution(numpy_algorithms):
    layer = explain("AveragePooling2D(2, strides=1)", (5, 6, 3)).layers[1]
    (form,) = layer.equivalents
    assert form.form == "DepthwiseConv2D(2, strides=1, use_bias=False)" or form.form.startswith("DepthwiseConv2D(2")
    depthwise = L.DepthwiseConv2D(2, strides=1, use_bias=False)
    depthwise.build((None, 5, 6, 3))
    depthwise.set_weights([np.full(form.kernel_shapes["kernel"], 1 / 4)])
    x = np.random.default_rng(2).standard_normal((2, 5, 6, 3)).astype("float32")
    np.testing.assert_allclose(_run(depthwise, x), _run(layer.layer, x), rtol=1e-5, atol=1e-5)


def test_depthwise_and_grouped_forms():
    depthwise = explain("DepthwiseConv2D(3, depth_multiplier=2)", (6, 6, 4)).layers[1]
    assert [(e.form, e.kernel_shapes["kernel"]) for e in depthwise.equivalents] == [
        ("Conv2D(8, 3, groups=4)", (3, 3, 1, 8))
    ]
    grouped = explain("Conv2D(8, 3, groups=4)", (6, 6, 4)).layers[1]
    assert ("DepthwiseConv2D(3, depth_multiplier=2)", (3, 3, 4, 2)) in [
        (e.form, e.kernel_shapes["kernel"]) for e in grouped.equivalents
    ]


# ----------------------------------------------------------------------------- model files


@pytest.fixture(scope="module")
def kim_file(tmp_path_factory):
    from rankconv.text import kim_cnn

    path = tmp_path_factory.mktemp("models") / "kim.keras"
    kim_cnn(300, 2, embedding_dim=24, windows=(3, 4, 5), filters=10, length=40, seed=0).save(path)
    return path


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "cnn.keras"
    rankconv.Sequential(
        [
            L.Input((28, 28, 1)),
            L.Conv2D(8, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(16, 3, dilation_rate=2, activation="relu"),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    ).save(path)
    return path


def test_kim_text_cnn_file(kim_file):
    explanation = explain(kim_file)
    assert explanation.trained and explanation.inputs[0].spatial_axes == ("words",)
    conv = explanation.layer("ngram_4")
    assert conv.kernel_shape == (4, 24, 10) and conv.output_shape == (37, 10)
    assert conv.receptive_field[0].field.size == 4
    text = " ".join(conv.sentences)
    assert "4 consecutive words" in text and "4-gram detector" in text
    assert "its 4-gram occurs anywhere in the sentence" in " ".join(explanation.layer("max_over_time_4").sentences)
    assert any(e.form.startswith("Conv2D(10, (4, 24)") for e in conv.equivalents)
    longer = explain(kim_file, (64,)).layer("ngram_4")
    assert longer.output_shape == (61, 10)
    assert str(explanation).count("\n") > 20


def test_image_cnn_file(image_file):
    explanation = explain(image_file)
    names = [layer.class_name for layer in explanation.layers]
    assert names == ["InputLayer", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten", "Dense"]
    conv = explanation.layers[3]
    # 3 + (2 - 1)·1 + (5 - 1)·2: the dilated 3×3 spans 5 cells of the pooled map, 2 input cells apart
    assert [f.field.size for f in conv.receptive_field] == [12, 12]
    assert [f.field.jump for f in conv.receptive_field] == [2, 2]
    assert "taken 2 apart" in " ".join(conv.sentences)
    dense = explanation.layers[-1]
    assert any(
        e.form == "Conv2D(10, 9) on (9, 9, 16)" and e.kernel_shapes["kernel"] == (9, 9, 16, 10)
        for e in dense.equivalents
    )


# ----------------------------------------------------------------------------- JSON keys


def test_json_keys_are_documented():
    import rankconv.explanation as module

    explanation = explain(["Conv2D(4, 3)", "GlobalMaxPooling2D()"], (8, 8, 2), batch_size=2)
    data = json.loads(explanation.to_json())
    documented = set(re.findall(r"`([a-z_]+)`", module.__doc__))
    keys = set(data) | set(data["totals"]) | set(data["inputs"][0])
    for layer in data["layers"]:
        keys |= set(layer)
        for field in layer["receptive_field"]:
            keys |= set(field)
        for equivalent in layer["equivalents"]:
            keys |= set(equivalent)
        for step in layer["plan"]:
            keys |= set(step) | set(step["forward"])
    keys -= {"op"}
    missing = {k for k in keys if k not in documented and not k.startswith("batch_")}
    assert not missing, f"undocumented JSON keys: {missing}"


# ----------------------------------------------------------------------------- errors and hygiene


def test_clear_errors():
    with pytest.raises(ValueError, match="input_shape"):
        explain("Conv1D(64, 3)")
    with pytest.raises(ValueError, match="batch_size"):
        explain("Conv1D(64, 3)", (600, 300), batch_size=0)
    with pytest.raises(ValueError, match="600,300"):
        explain("Conv1D(64, 3)", "600;300")
    with pytest.raises(ValueError, match="positive sizes"):
        explain("Conv1D(64, 3)", (600, -3))
    with pytest.raises(ValueError, match=r"conv2d.*Conv2D\(4, 3\).*\(None, 2, 2, 1\)"):
        explain("Conv2D(4, 3)", (2, 2, 1))
    with pytest.raises(TypeError, match="model_or_layers"):
        explain([3])
    with pytest.raises(TypeError, match="model_or_layers"):
        explain(3.5)


def test_explaining_takes_no_names_away():
    before = L.Conv1D(1, 1).name
    explain(["Conv1D(4, 3)", "Conv1D(4, 3)"], (10, 2))
    after = L.Conv1D(1, 1).name
    assert int(after.rsplit("_", 1)[-1]) == int(before.rsplit("_", 1)[-1] if "_" in before else 0) + 1


def test_a_built_layer_and_a_model():
    layer = L.Conv2D(3, 2)
    layer.build((None, 5, 5, 1))
    assert explain(layer).layers[1].output_shape == (4, 4, 3)
    inputs = rankconv.Input((9, 2))
    model = rankconv.Model(inputs, L.Conv1D(2, 3)(L.Conv1D(2, 3)(inputs)))
    assert explain(model).layers[-1].receptive_field[0].field.size == 5


# ----------------------------------------------------------------------------- command line


def test_command_line_plain_json_html(tmp_path, capsys):
    assert main(["explain", "Conv1D(64, 3)", "--input", "600,300"]) == 0
    out = capsys.readouterr().out
    assert "(3, 300, 64)" in out and "57,664" in out and "trigram detector" in out
    assert "3 / 1 / 0" in out and "Conv2D(64, (3, 300))" in out
    assert main(["explain", "Conv2D(64, (3, 300))", "--input", "600,300,1", "--json", "--batch", "4"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"][1]["kernel_shape"] == [3, 300, 1, 64] and data["batch_size"] == 4
    page = tmp_path / "page.html"
    assert (
        main(["explain", "Conv2D(8, 3, strides=2)", "MaxPooling2D(2)", "--input", "28,28,1", "--html", str(page)]) == 0
    )
    assert "wrote" in capsys.readouterr().out and page.read_text().startswith("<!DOCTYPE html>")


def test_command_line_model_file_and_errors(kim_file, capsys):
    assert main(["explain", str(kim_file), "--input", "50"]) == 0
    assert "(47, 10)" in capsys.readouterr().out
    assert main(["explain", "Conv1D(64, 3)"]) == 1
    assert "input_shape" in capsys.readouterr().err
    assert main(["explain", "__import__('os')", "--input", "3"]) == 1
    assert "not a rankconv layer class" in capsys.readouterr().err
    assert main(["explain", str(kim_file), "Dense(3)"]) == 1
    assert "one model file" in capsys.readouterr().err
