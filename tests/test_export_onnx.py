"""ONNX export (`model.export(path, format="onnx")`, `rankconv export`): every layer, both data
formats, checked by onnx.checker and run by onnxruntime against rankconv's own predictions."""

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from rankconv import activations, layers, utils
from rankconv.models import Model, Sequential
from rankconv.saving import onnx_export

from oracles import require

onnx = require("onnx")
ort = require("onnxruntime")

TOLERANCE = 1e-5  # of the output's scale


def run_onnx(proto_or_path, inputs):
    source = proto_or_path if isinstance(proto_or_path, str) else proto_or_path.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    inputs = inputs if isinstance(inputs, list) else [inputs]
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})


def assert_same_outputs(model, inputs, opset_version=None):
    proto = onnx_export.to_onnx(model, opset_version)
    got = run_onnx(proto, inputs)[0]
    want = np.asarray(model.predict(inputs, verbose=0))
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    scale = max(float(np.abs(want).max()), 1e-3)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE * scale)
    return proto


def randomise(model, seed=0):
    """Every weight random, variances positive, so no layer is an identity by accident."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.standard_normal(variable.shape) * 0.5
        if "variance" in variable.name:
            value = np.abs(value) + 0.5
        variable.value[...] = value
    return model


def stack(input_shape, *stacked, dtype="float32"):
    return randomise(Sequential([layers.Input(input_shape, dtype=dtype), *stacked]))


def data(shape, batch=3, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype("float32")


CF = {"data_format": "channels_first"}

LAYER_CASES = {
    # convolutions: ranks 1-4, both data formats, padding modes, strides, dilation, groups
    "conv1d_same_strided": ((9, 3), lambda: layers.Conv1D(4, 3, strides=2, padding="same", activation="relu")),
    "conv1d_causal_dilated": ((9, 3), lambda: layers.Conv1D(4, 3, padding="causal", dilation_rate=2)),
    "conv1d_channels_first": ((3, 9), lambda: layers.Conv1D(4, 2, padding="same", **CF)),
    "conv2d_valid": ((7, 6, 3), lambda: layers.Conv2D(5, (3, 2), activation="tanh")),
    "conv2d_same_even_kernel_strided": ((7, 6, 3), lambda: layers.Conv2D(5, 4, strides=2, padding="same")),
    "conv2d_dilated_same": ((7, 6, 3), lambda: layers.Conv2D(5, 3, dilation_rate=2, padding="same")),
    "conv2d_groups": ((7, 6, 4), lambda: layers.Conv2D(6, 3, groups=2, activation="sigmoid")),
    "conv2d_channels_first": ((3, 7, 6), lambda: layers.Conv2D(5, 3, strides=2, padding="same", **CF)),
    "conv3d": ((5, 6, 4, 2), lambda: layers.Conv3D(3, 3, padding="same", activation="softmax")),
    "conv3d_channels_first": ((2, 5, 6, 4), lambda: layers.Conv3D(3, 2, strides=2, **CF)),
    "conv4d": ((4, 5, 4, 3, 2), lambda: layers.Conv(4, 3, 2, padding="same")),
    "conv4d_channels_first": ((2, 4, 5, 4, 3), lambda: layers.Conv(4, 3, 2, **CF)),
    "conv5d": ((3, 3, 4, 3, 3, 2), lambda: layers.Conv(5, 2, 2, padding="same")),
    # transposed
    "conv1d_transpose_valid_stride_over_kernel": ((5, 2), lambda: layers.Conv1DTranspose(3, 2, strides=3)),
    "conv2d_transpose_same": ((4, 5, 2), lambda: layers.Conv2DTranspose(3, 3, strides=2, padding="same")),
    "conv2d_transpose_output_padding": (
        (4, 5, 2),
        lambda: layers.Conv2DTranspose(3, 4, strides=2, output_padding=1, activation="relu"),
    ),
    "conv2d_transpose_same_output_padding": (
        (4, 5, 2),
        lambda: layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
    ),
    "conv2d_transpose_dilated": ((4, 5, 2), lambda: layers.Conv2DTranspose(3, 3, dilation_rate=2, padding="same")),
    "conv2d_transpose_channels_first": ((2, 4, 5), lambda: layers.Conv2DTranspose(3, 3, strides=2, **CF)),
    "conv3d_transpose": ((3, 4, 3, 2), lambda: layers.Conv3DTranspose(2, 3, strides=2, padding="same")),
    "conv4d_transpose": ((3, 3, 2, 2, 2), lambda: layers.ConvTranspose(4, 2, 2, strides=2)),
    "depthwise4d": ((3, 4, 3, 3, 2), lambda: layers.DepthwiseConv(4, 2, padding="same", depth_multiplier=2)),
    # depthwise and separable
    "depthwise1d": ((9, 3), lambda: layers.DepthwiseConv1D(3, depth_multiplier=2, padding="same")),
    "depthwise2d_strided": ((7, 6, 3), lambda: layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2)),
    "depthwise2d_channels_first": ((3, 7, 6), lambda: layers.DepthwiseConv2D(3, padding="same", **CF)),
    "depthwise3d": ((5, 4, 4, 2), lambda: layers.DepthwiseConv3D(3, padding="same", depth_multiplier=3)),
    "separable1d": ((9, 3), lambda: layers.SeparableConv1D(4, 3, depth_multiplier=2, activation="elu")),
    "separable2d_channels_first": ((3, 7, 6), lambda: layers.SeparableConv2D(4, 3, padding="same", **CF)),
    "separable3d": ((5, 4, 4, 2), lambda: layers.SeparableConv3D(3, 3, padding="same")),
    # pooling
    "max_pooling1d_same": ((9, 3), lambda: layers.MaxPooling1D(3, strides=2, padding="same")),
    "average_pooling1d_same": ((9, 3), lambda: layers.AveragePooling1D(3, strides=2, padding="same")),
    "max_pooling2d": ((7, 6, 3), lambda: layers.MaxPooling2D()),
    "average_pooling2d_channels_first": ((3, 7, 6), lambda: layers.AveragePooling2D(3, padding="same", **CF)),
    "max_pooling3d_same": ((5, 4, 5, 2), lambda: layers.MaxPooling3D(2, padding="same")),
    "average_pooling3d": ((5, 4, 5, 2), lambda: layers.AveragePooling3D(2, strides=1)),
    "global_max1d": ((9, 3), lambda: layers.GlobalMaxPooling1D()),
    "global_average2d_keepdims": ((7, 6, 3), lambda: layers.GlobalAveragePooling2D(keepdims=True)),
    "global_max2d_channels_first": ((3, 7, 6), lambda: layers.GlobalMaxPooling2D(**CF)),
    "global_average3d": ((5, 4, 5, 2), lambda: layers.GlobalAveragePooling3D()),
    # core
    "dense_on_sequences": ((4, 6), lambda: layers.Dense(5, activation="softplus")),
    "dropout": ((4, 6), lambda: layers.Dropout(0.5)),
    "spatial_dropout2d": ((5, 5, 3), lambda: layers.SpatialDropout2D(0.5)),
    "rescaling_scalar": ((4, 6), lambda: layers.Rescaling(0.5, offset=-1.0)),
    "rescaling_per_channel": ((4, 3), lambda: layers.Rescaling([1.0, 2.0, 3.0], offset=[0.0, 1.0, 0.0])),
    "flatten": ((4, 3, 2), lambda: layers.Flatten()),
    "flatten_channels_first": ((2, 4, 3), lambda: layers.Flatten(**CF)),
    "reshape": ((4, 6), lambda: layers.Reshape((3, -1))),
    "batch_normalization": ((4, 6), lambda: layers.BatchNormalization()),
    "batch_normalization_channels_first": ((3, 4, 5), lambda: layers.BatchNormalization(axis=1)),
    "batch_normalization_two_axes": ((3, 4, 5), lambda: layers.BatchNormalization(axis=[1, 3])),
    "layer_normalization": ((4, 6), lambda: layers.LayerNormalization()),
    "layer_normalization_two_axes": ((3, 4, 5), lambda: layers.LayerNormalization(axis=[1, 2])),
    "layer_normalization_rms": ((4, 6), lambda: layers.LayerNormalization(rms_scaling=True)),
    # activation layers
    "relu_plain": ((4, 6), lambda: layers.ReLU()),
    "relu_all_options": ((4, 6), lambda: layers.ReLU(max_value=0.6, negative_slope=0.1, threshold=0.2)),
    "relu_max_value": ((4, 6), lambda: layers.ReLU(max_value=0.5)),
    "leaky_relu": ((4, 6), lambda: layers.LeakyReLU()),
    "prelu_shared": ((4, 5, 3), lambda: layers.PReLU(shared_axes=[1, 2])),
    "prelu": ((4, 3), lambda: layers.PReLU()),
    "elu": ((4, 6), lambda: layers.ELU(alpha=0.7)),
    "softmax_axis": ((4, 6), lambda: layers.Softmax(axis=1)),
    "softmax_two_axes": ((4, 6), lambda: layers.Softmax(axis=[1, 2])),
    # shapes
    "zero_padding1d": ((5, 3), lambda: layers.ZeroPadding1D((1, 2))),
    "zero_padding2d_channels_first": ((3, 4, 5), lambda: layers.ZeroPadding2D(((1, 0), (2, 1)), **CF)),
    "zero_padding3d": ((3, 4, 2, 2), lambda: layers.ZeroPadding3D(1)),
    "cropping1d": ((6, 3), lambda: layers.Cropping1D((1, 2))),
    "cropping2d": ((6, 5, 3), lambda: layers.Cropping2D(((1, 0), (2, 1)))),
    "cropping3d_channels_first": ((2, 5, 6, 4), lambda: layers.Cropping3D(((1, 1), (0, 2), (1, 0)), **CF)),
    "upsampling1d": ((4, 3), lambda: layers.UpSampling1D(3)),
    "upsampling2d_bilinear": ((4, 5, 3), lambda: layers.UpSampling2D((2, 3), interpolation="bilinear")),
    "upsampling2d_nearest_channels_first": ((3, 4, 5), lambda: layers.UpSampling2D(2, **CF)),
    "upsampling3d": ((3, 2, 4, 2), lambda: layers.UpSampling3D((2, 1, 2))),
    # image preprocessing (inference)
    "center_crop": ((8, 7, 3), lambda: layers.CenterCrop(5, 4)),
    "resizing_bilinear_up": ((5, 4, 3), lambda: layers.Resizing(8, 9)),
    "resizing_bilinear_down": ((8, 9, 3), lambda: layers.Resizing(5, 4)),
    "resizing_nearest": ((5, 7, 3), lambda: layers.Resizing(8, 4, interpolation="nearest")),
    "random_flip": ((6, 5, 3), lambda: layers.RandomFlip()),
    "random_rotation": ((6, 5, 3), lambda: layers.RandomRotation(0.2)),
    "random_zoom": ((6, 5, 3), lambda: layers.RandomZoom(0.2)),
    "random_translation": ((6, 5, 3), lambda: layers.RandomTranslation(0.1, 0.1)),
    "random_contrast": ((6, 5, 3), lambda: layers.RandomContrast(0.3)),
    "random_brightness": ((6, 5, 3), lambda: layers.RandomBrightness(0.3)),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_exports_with_the_same_outputs(case):
    shape, make = LAYER_CASES[case]
    assert_same_outputs(stack(shape, make()), data(shape))


@pytest.mark.parametrize("name", sorted(n for n in activations._BY_NAME if n != "linear"))
def test_every_named_activation(name):
    model = stack((4, 6), layers.Dense(6, activation=name))
    assert_same_outputs(model, data((4, 6)) * 3)


def test_conv_chain_keeps_channels_first_between_layers():
    """Conv → BatchNorm → ReLU → Pool → Conv → Dropout → GlobalPool: a transpose only at the input."""
    model = stack(
        (9, 8, 3),
        layers.Conv2D(4, 3, padding="same"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(),
        layers.Conv2D(5, 3, activation="relu"),
        layers.Dropout(0.3),
        layers.GlobalAveragePooling2D(),
    )
    proto = assert_same_outputs(model, data((9, 8, 3)))
    assert [n.op_type for n in proto.graph.node].count("Transpose") == 1


def test_merges_functional_graph_and_broadcasting():
    a = layers.Input((6, 5, 3), name="image")
    b = layers.Input((3,), name="side")
    x = layers.Conv2D(3, 3, padding="same")(a)
    y = layers.Conv2D(3, 1)(a)
    merged = [
        layers.Add()([x, y]),
        layers.Subtract()([x, y]),
        layers.Multiply()([x, a]),
        layers.Average()([x, y, a]),
        layers.Maximum()([x, y]),
    ]
    joined = layers.Concatenate()(merged)  # on channels: merged on the channels-first copies
    rows = layers.Concatenate(axis=1)([x, y])  # on another axis: in rankconv's layout
    pooled = layers.GlobalMaxPooling2D()(joined)
    broadcast = layers.Add()([pooled, layers.Dense(1)(b)])  # (batch, 15) + (batch, 1)
    smallest = layers.Minimum()([layers.Flatten()(x), layers.Flatten()(y)])
    out = layers.Concatenate()([broadcast, layers.Dense(4)(smallest), layers.GlobalAveragePooling2D()(rows)])
    model = randomise(Model([a, b], out))
    assert_same_outputs(model, [data((6, 5, 3)), data((3,), seed=2)])


def test_elementwise_merge_of_different_ranks_adds_axes_after_the_batch():
    a = layers.Input((4, 3))
    b = layers.Input((3,))
    model = Model([a, b], layers.Multiply()([a, layers.Reshape((1, 3))(b)]))
    assert_same_outputs(model, [data((4, 3)), data((3,), seed=2)])
    model = Model([a, b], layers.Add()([a, layers.Reshape((1, 3))(b)]))
    assert_same_outputs(model, [data((4, 3)), data((3,), seed=2)])


def test_embedding_mask_reaches_average_pooling_and_softmax():
    tokens = layers.Input((7,), dtype="int32")
    embedded = layers.Embedding(20, 4, mask_zero=True)(tokens)
    pooled = layers.GlobalAveragePooling1D()(layers.Dense(4)(embedded))
    model = randomise(Model(tokens, pooled))
    ids = np.random.default_rng(0).integers(0, 20, (5, 7)).astype("int32")
    ids[:, 4:] = 0
    assert_same_outputs(model, ids)
    scores = layers.Softmax()(layers.Reshape((7,))(layers.Dense(1)(layers.Embedding(20, 4, mask_zero=True)(tokens))))
    assert_same_outputs(randomise(Model(tokens, scores)), ids)


def test_nested_models_and_dynamic_axes():
    inner = Sequential([layers.Input((None, 4)), layers.Conv1D(3, 3, padding="same"), layers.ReLU()])
    inputs = layers.Input((None, 4))
    branch = Model(inputs, layers.Conv1D(3, 1)(inputs), name="branch")
    outer_in = layers.Input((None, 4))
    outer = randomise(Model(outer_in, layers.GlobalMaxPooling1D()(layers.Add()([inner(outer_in), branch(outer_in)]))))
    proto = onnx_export.to_onnx(outer)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_param  # both dynamic
    for length in (5, 11):
        np.testing.assert_allclose(
            run_onnx(proto, data((length, 4)))[0], outer.predict(data((length, 4)), verbose=0), atol=1e-5
        )
    # batch sizes other than the one traced
    np.testing.assert_allclose(
        run_onnx(proto, data((6, 4), batch=1))[0], outer.predict(data((6, 4), batch=1), verbose=0), atol=1e-5
    )


def test_strided_same_conv_with_unknown_length():
    model = stack((None, 3), layers.Conv1D(4, 4, strides=3, padding="same"), layers.MaxPooling1D(2, padding="same"))
    proto = onnx_export.to_onnx(model)
    for length in (7, 10, 12):
        x = data((length, 3))
        np.testing.assert_allclose(run_onnx(proto, x)[0], model.predict(x, verbose=0), atol=1e-5)


def test_opset_18_and_latest_supported():
    model = stack((5, 4, 3), layers.LayerNormalization(), layers.GlobalAveragePooling2D())
    assert_same_outputs(model, data((5, 4, 3)), opset_version=18)
    proto = onnx_export.to_onnx(model)
    assert proto.opset_import[0].version == onnx_export.DEFAULT_OPSET == 17


def kim_classifier(tmp_path):
    from rankconv.text import corpus
    from rankconv.text.training import train_classifier

    texts, labels, _ = corpus.planted_corpus(600, seed=0)
    classifier = train_classifier(
        texts,
        labels,
        windows=(1, 2, 3),
        filters=16,
        embedding_dim=32,
        epochs=3,
        seed=0,
        verbose=0,
        initialization="keras",
    )
    path = tmp_path / "planted.keras"
    classifier.save(path)
    return classifier, path, texts


def test_kim_text_cnn_and_its_vocabulary(tmp_path):
    """The Kim CNN exports with the same probabilities; the file's metadata holds what a serving
    process needs to tokenize, and the README's client reproduces `rankconv text predict`'s labels."""
    classifier, path, texts = kim_classifier(tmp_path)
    output = tmp_path / "planted.onnx"
    parser = argparse.ArgumentParser()
    onnx_export.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", str(path), str(output)])
    assert args.handler(args) == 0
    ids = classifier.vectorizer(texts[:40])
    np.testing.assert_allclose(
        run_onnx(str(output), ids)[0], classifier.model.predict(ids, verbose=0), atol=1e-5, rtol=0
    )
    stored = onnx.load(str(output))
    metadata = {p.key: p.value for p in stored.metadata_props}
    assert json.loads(metadata[onnx_export.METADATA_KEY])["text"]["classes"] == classifier.classes
    sentences = [*texts[:30], "It's not good, isn't it?", "a real gem (truly)!", "", " ".join(texts[:6])]
    assert set(classifier.predict(sentences)) == set(classifier.classes)  # a model that tells them apart
    client = subprocess.run(
        [sys.executable, "-c", README_CLIENT, str(output)],
        input="\n".join(sentences) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert client.stdout.splitlines() == classifier.predict(sentences)


# The README's onnxruntime client for a text model's ONNX file: what `rankconv text predict` prints
# as labels, without rankconv (Kim's default cleaning).
README_CLIENT = r"""
import json, re, sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1])  # from `rankconv export mr.keras mr.onnx`
text = json.loads(session.get_modelmeta().custom_metadata_map["rankconv.metadata"])["text"]
v, classes = text["vectorizer"], text["classes"]; index = {w: i for i, w in enumerate(v["words"])}
for line in sys.stdin:  # Kim's clean_str (`--clean kim`, the default), then ids padded as in training
    s = re.sub(r"(n't|'s|'ve|'re|'d|'ll)", r" \1", re.sub(r"[^A-Za-z0-9(),!?'`]", " ", line))
    ids = [index.get(t, 1) for t in re.sub(r"([,!?()])", r" \1 ", s).lower().split()][: v["max_tokens"]]
    row = np.zeros((1, v["max_tokens"] + 2 * v["pad"]), "int32"); row[0, v["pad"] : v["pad"] + len(ids)] = ids
    print(classes[int(session.run(None, {session.get_inputs()[0].name: row})[0].argmax())])
"""


def test_digits_cnn(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    utils.set_random_seed(0)
    model = Sequential(
        [
            layers.Input((8, 8, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:600], digits.target[:600], batch_size=32, epochs=1, verbose=0)
    model.export(tmp_path / "digits.onnx", format="onnx")
    got = run_onnx(str(tmp_path / "digits.onnx"), x[600:900])[0]
    want = model.predict(x[600:900], verbose=0)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert (got.argmax(1) == want.argmax(1)).all()


def test_float64_layers_cast_their_inputs_as_rankconv_does():
    """A float32 input into float64 layers is cast, as rankconv casts it. (onnxruntime's CPU provider
    has no float64 Conv, ConvTranspose, AveragePool or Resize kernels: the file is valid ONNX, but run
    float32 models there.)"""
    model = stack(
        (4, 6),
        layers.Dense(5, dtype="float64", activation="tanh"),
        layers.BatchNormalization(dtype="float64"),
        layers.MaxPooling1D(2, dtype="float64"),
    )
    assert_same_outputs(model, data((4, 6)))
    onnx.checker.check_model(onnx_export.to_onnx(stack((6, 5, 2), layers.Conv2D(3, 3, dtype="float64"))))


# ----------------------------------------------------------------------------- refusals


def test_refusals_name_the_layer_and_the_reason(tmp_path):
    model = stack((8, 8, 3), layers.RandomCrop(4, 4))
    with pytest.raises(ValueError, match=r"random_crop.*RandomCrop.*aspect ratio"):
        onnx_export.to_onnx(model)
    model = stack((8, 8, 3), layers.Resizing(4, 4, interpolation="bicubic"))
    with pytest.raises(ValueError, match="bicubic"):
        onnx_export.to_onnx(model)
    model = stack((4, 4, 3), layers.CenterCrop(6, 6))
    with pytest.raises(ValueError, match="smaller than the window"):
        onnx_export.to_onnx(model)
    model = stack((4, 3), layers.Dense(2, activation=lambda x: x * 2))
    with pytest.raises(ValueError, match="Python callable"):
        onnx_export.to_onnx(model)


def test_export_arguments_are_checked(tmp_path):
    model = stack((4, 3), layers.Dense(2))
    with pytest.raises(ValueError, match="format='tf_saved_model'"):
        model.export(tmp_path / "m", format="tf_saved_model")
    with pytest.raises(ValueError, match=r"end in '\.onnx'"):
        model.export(tmp_path / "m.bin")
    with pytest.raises(ValueError, match="opset_version"):
        model.export(tmp_path / "m.onnx", opset_version=9)
    with pytest.raises(TypeError, match="batch_size"):
        model.export(tmp_path / "m.onnx", batch_size=3)
    with pytest.raises(ValueError, match="not built"):
        onnx_export.to_onnx(Sequential([layers.Dense(2)]))
    assert not (tmp_path / "m.onnx").exists()
    model.export(tmp_path / "m.onnx", opset_version=18)
    onnx.checker.check_model(str(tmp_path / "m.onnx"))
