"""rankconv's own `.keras` round trip, and the loader's refusals: each bad file gets one clear error
and an existing file is never damaged by a failed save."""

import io
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

from rankconv import layers, saving
from rankconv.models import Model, Sequential
from rankconv.saving import ModelFileError


def small_model():
    inputs = layers.Input((6,), name="x")
    hidden = layers.Dense(4, activation="relu")(inputs)
    return Model(inputs, layers.Dense(3, activation="softmax")(hidden))


def test_round_trip_functional_and_sequential(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6)).astype("float32")
    for model in (
        small_model(),
        Sequential([layers.Input((6,)), layers.Dense(5), layers.LayerNormalization(), layers.Dense(2)]),
    ):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = saving.load_model(path)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
        assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
        assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]


def _write_archive(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _members(tmp_path):
    path = tmp_path / "good.keras"
    small_model().save(path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_not_a_zip(tmp_path):
    path = tmp_path / "m.keras"
    path.write_text("hello")
    with pytest.raises(ModelFileError, match="not a zip archive"):
        saving.load_model(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "m.keras"
    small_model().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a zip archive|truncated|damaged"):
        saving.load_model(path)


def test_wrong_suffix_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="must end in '.keras'"):
        saving.load_model(tmp_path / "m.zip")
    with pytest.raises(FileNotFoundError):
        saving.load_model(tmp_path / "absent.keras")
    with pytest.raises(ValueError, match="must end in '.keras'"):
        small_model().save(tmp_path / "m.zip")


def test_unknown_layer_class_is_named(tmp_path):
    members = _members(tmp_path)
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["class_name"] = "Lambda"
    members["config.json"] = json.dumps(config)
    _write_archive(tmp_path / "m.keras", members)
    with pytest.raises(ModelFileError, match="unknown layer class 'Lambda'.*never runs code"):
        saving.load_model(tmp_path / "m.keras")


def test_wrong_weight_shape_names_the_layer(tmp_path):
    members = _members(tmp_path)
    buffer = io.BytesIO()
    with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as source, h5py.File(buffer, "w") as target:
        source.copy(source["layers"], target, "layers")
        source.copy(source["vars"], target, "vars")
        del target["layers/dense/vars/0"]
        target["layers/dense/vars"].create_dataset("0", data=np.zeros((7, 4), "float32"))
    members["model.weights.h5"] = buffer.getvalue()
    _write_archive(tmp_path / "m.keras", members)
    with pytest.raises(ModelFileError, match="Layer 'dense.*' weight 'kernel' has shape \\(6, 4\\).*\\(7, 4\\)"):
        saving.load_model(tmp_path / "m.keras")


def test_absurd_layer_size_fails_before_allocating(tmp_path):
    members = _members(tmp_path)
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"]["units"] = 10**12
    members["config.json"] = json.dumps(config)
    _write_archive(tmp_path / "m.keras", members)
    with pytest.raises(ModelFileError, match="more than the .* the weights file holds"):
        saving.load_model(tmp_path / "m.keras")


def test_deeply_nested_json_is_refused(tmp_path):
    members = _members(tmp_path)
    members["config.json"] = "[" * 100000 + "]" * 100000
    _write_archive(tmp_path / "m.keras", members)
    with pytest.raises(ModelFileError, match="nests deeper"):
        saving.load_model(tmp_path / "m.keras")


def test_zip_bomb_is_refused_before_inflating(tmp_path):
    members = _members(tmp_path)
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data if name != "config.json" else b" " * (50 * 2**20) + data)
    with pytest.raises(ModelFileError, match="inflate"):
        saving.load_model(path)


def test_unsafe_member_path_is_refused(tmp_path):
    members = _members(tmp_path)
    members["../evil.txt"] = b"x"
    _write_archive(tmp_path / "m.keras", members)
    with pytest.raises(ModelFileError, match="unsafe path"):
        saving.load_model(tmp_path / "m.keras")


def test_links_and_external_data_in_weights_are_refused(tmp_path):
    members = _members(tmp_path)
    buffer = io.BytesIO()
    with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as source, h5py.File(buffer, "w") as target:
        source.copy(source["layers"], target, "layers")
        source.copy(source["vars"], target, "vars")
        del target["layers/dense/vars/0"]
        target["layers/dense/vars/0"] = h5py.SoftLink("/layers/dense_1/vars/0")
    members["model.weights.h5"] = buffer.getvalue()
    _write_archive(tmp_path / "m.keras", members)
    with pytest.raises(ModelFileError, match="SoftLink"):
        saving.load_model(tmp_path / "m.keras")


def test_failed_save_leaves_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    model = small_model()
    model.save(path)
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(saving.weights_io, "write", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_save_weights_and_load_weights(tmp_path):
    model, other = small_model(), small_model()
    model.save_weights(tmp_path / "w.weights.h5")
    other.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=".weights.h5"):
        model.save_weights(tmp_path / "w.h5")
    inputs = layers.Input((6,))
    wrong = Model(inputs, layers.Dense(3)(inputs))
    with pytest.raises(ModelFileError):
        wrong.load_weights(tmp_path / "w.weights.h5")


def test_review_fixes_for_the_loader(tmp_path):
    # saved files get an ordinary mode
    path = tmp_path / "m.keras"
    small_model().save(path)
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    members = _members(tmp_path)
    # an unwritten dataset declaring a huge size does not raise the allocation budget
    buffer = io.BytesIO()
    with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as source, h5py.File(buffer, "w") as target:
        source.copy(source["layers"], target, "layers")
        source.copy(source["vars"], target, "vars")
        target.create_dataset("padding", shape=(10**9,), dtype="float32", chunks=(1024,))
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"]["units"] = 10**6
    _write_archive(
        tmp_path / "big.keras", {**members, "model.weights.h5": buffer.getvalue(), "config.json": json.dumps(config)}
    )
    with pytest.raises(ModelFileError, match="more than the"):
        saving.load_model(tmp_path / "big.keras")
    # malformed structures give ModelFileError naming the file
    for mutate in (
        lambda c: c["config"]["layers"][1].__setitem__("build_config", [1]),
        lambda c: c["config"]["layers"][1]["inbound_nodes"][0]["args"][0]["config"].__setitem__(
            "keras_history", ["x", -1, 0]
        ),
        lambda c: c["config"]["layers"][1].__setitem__("class_name", ["Dense"]),
        lambda c: c["config"]["layers"][1]["config"].__setitem__("dtype", {"config": 3}),
    ):
        config = json.loads(members["config.json"])
        mutate(config)
        _write_archive(tmp_path / "bad.keras", {**members, "config.json": json.dumps(config)})
        with pytest.raises(ModelFileError):
            saving.load_model(tmp_path / "bad.keras")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_extension_layers_save_load_and_warn_once_that_keras_will_not(tmp_path):
    import warnings

    model = Sequential(
        [
            layers.Input((4, 4, 4, 2)),
            layers.DepthwiseConv3D(2, depth_multiplier=2, padding="same", name="dw3"),
            layers.SeparableConv3D(3, 2, padding="same", activation="relu", name="sep3"),
            layers.Reshape((4, 4, 4, 3, 1)),
            layers.ConvTranspose(4, 2, 2, strides=(1, 1, 1, 2), name="up4"),
        ]
    )
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 4, 2)).astype("float32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.save(tmp_path / "ext.keras")
    messages = [str(w.message) for w in caught if "Keras 3 itself will not load" in str(w.message)]
    assert len(messages) == 1
    assert all(
        name in messages[0] for name in ("dw3 (DepthwiseConv3D)", "sep3 (SeparableConv3D)", "up4 (ConvTranspose)")
    )
    loaded = saving.load_model(tmp_path / "ext.keras")
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6, atol=1e-6)
    plain = Sequential([layers.Input((5, 2)), layers.Conv1DTranspose(3, 2, strides=2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain.save(tmp_path / "plain.keras")
