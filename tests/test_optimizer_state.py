"""Optimizer state in model files: written where Keras 3 puts it, read back by `load_model` and
`load_weights`, so that training continues with the updates an uninterrupted run would make."""

import io
import warnings
import zipfile

import h5py
import numpy as np
import pytest

from rankconv import layers, optimizers, saving, utils
from rankconv.models import Model, Sequential
from rankconv.saving import ModelFileError

OPTIMIZERS = {
    "sgd_momentum": lambda: optimizers.SGD(0.05, momentum=0.9),
    "sgd_nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: optimizers.Adam(0.01),
    "adam_amsgrad": lambda: optimizers.Adam(0.01, amsgrad=True),
    "adamw": lambda: optimizers.AdamW(0.01),
    "adam_accumulating": lambda: optimizers.Adam(0.01, gradient_accumulation_steps=2),
    "rmsprop_centered_momentum": lambda: optimizers.RMSprop(0.005, momentum=0.5, centered=True),
    "adadelta": lambda: optimizers.Adadelta(1.0, rho=0.95, epsilon=1e-6),
    "adagrad": lambda: optimizers.Adagrad(0.05),
}


def conv_model():
    return Sequential(
        [
            layers.Input((12, 3)),
            layers.Conv1D(5, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.GlobalMaxPooling1D(),
            layers.Dense(2, activation="softmax"),
        ]
    )


def text_model():
    tokens = layers.Input((10,), dtype="int32")
    x = layers.Embedding(40, 6)(tokens)
    x = layers.GlobalMaxPooling1D()(layers.Conv1D(4, 3, activation="relu")(x))
    return Model(tokens, layers.Dense(2, activation="softmax")(x))


def data(kind, n=48, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "text":
        x = rng.integers(0, 40, size=(n, 10)).astype("int32")
    else:
        x = rng.standard_normal((n, 12, 3)).astype("float32")
    return x, rng.integers(0, 2, n)


def trained(kind, make_optimizer, epochs, model=None):
    if model is None:
        utils.set_random_seed(7)
        model = text_model() if kind == "text" else conv_model()
        model.compile(make_optimizer(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = data(kind)
    # 48 samples in batches of 10: 5 steps an epoch, so an odd count at every save
    model.fit(x, y, batch_size=10, epochs=epochs, shuffle=False, verbose=0)
    return model


def assert_same_weights(a, b, atol=1e-6):
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(u, v, rtol=0, atol=atol)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_save_load_continue_matches_an_uninterrupted_run(name, tmp_path):
    make = OPTIMIZERS[name]
    uninterrupted = trained("conv", make, epochs=3)
    first = trained("conv", make, epochs=1)
    first.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Skipping variable loading for optimizer"
        loaded = saving.load_model(tmp_path / "m.keras")
    assert loaded.optimizer.iterations == first.optimizer.iterations
    for a, b in zip(loaded.optimizer.get_weights(), first.optimizer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    continued = trained("conv", make, epochs=2, model=loaded)
    assert continued.optimizer.iterations == uninterrupted.optimizer.iterations
    assert_same_weights(continued, uninterrupted)


def test_without_the_optimizer_state_the_continuation_differs(tmp_path):
    # the test above would pass by accident if the state did not matter
    uninterrupted = trained("conv", OPTIMIZERS["adam"], epochs=3)
    first = trained("conv", OPTIMIZERS["adam"], epochs=1)
    first.save(tmp_path / "m.keras")
    fresh = saving.load_model(tmp_path / "m.keras", compile=False)
    fresh.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    continued = trained("conv", OPTIMIZERS["adam"], epochs=2, model=fresh)
    difference = max(np.abs(u - v).max() for u, v in zip(continued.get_weights(), uninterrupted.get_weights()))
    assert difference > 1e-3


@pytest.mark.parametrize("name", ["adadelta", "sgd_momentum", "adam"])
def test_row_sparse_updates_continue_after_a_save(name, tmp_path):
    """An embedding's rows are updated lazily (Adadelta decays untouched rows' slots later): a save
    in the middle changes nothing of the run, and a loaded copy continues within float rounding."""
    make = OPTIMIZERS[name]
    plain = trained("text", make, epochs=3)
    saving_midway = trained("text", make, epochs=1)
    saving_midway.save(tmp_path / "m.keras")
    saving_midway.save_weights(tmp_path / "m.weights.h5")
    trained("text", make, epochs=2, model=saving_midway)
    for u, v in zip(plain.get_weights(), saving_midway.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)  # saving did not touch the live state
    loaded = trained("text", make, epochs=2, model=saving.load_model(tmp_path / "m.keras"))
    assert_same_weights(loaded, plain)


def test_load_weights_restores_the_optimizer_state_of_a_compiled_model(tmp_path):
    make = OPTIMIZERS["adadelta"]
    uninterrupted = trained("conv", make, epochs=3)
    first = trained("conv", make, epochs=1)
    first.save_weights(tmp_path / "m.weights.h5")
    utils.set_random_seed(7)
    other = conv_model()
    other.compile(make(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    other.load_weights(tmp_path / "m.weights.h5")
    assert other.optimizer.iterations == 5
    assert_same_weights(trained("conv", make, epochs=2, model=other), uninterrupted)
    # an uncompiled model takes the weights alone
    bare = conv_model()
    bare.load_weights(tmp_path / "m.weights.h5")
    assert_same_weights(bare, first, atol=0)


def test_the_file_layout_is_keras_s(tmp_path):
    model = trained("conv", OPTIMIZERS["adam"], epochs=1)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        f = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    group = f["optimizer/vars"]
    assert group.attrs["name"] == model.optimizer.name
    trainable = model.trainable_weights
    assert sorted(group, key=int) == [str(i) for i in range(2 + 2 * len(trainable))]
    assert group["0"][()] == 5  # iterations
    np.testing.assert_allclose(group["1"][()], 0.01, rtol=1e-6)  # learning_rate
    # Adam's slots interleave per variable: momentum then velocity
    state = model.optimizer.variables
    for i, variable in enumerate(state):
        assert group[str(i)].shape == variable.shape
    assert state[2].name.endswith("_momentum") and state[3].name.endswith("_velocity")
    np.testing.assert_array_equal(group["2"][()], state[2].value)


def test_a_compiled_model_saved_before_training_holds_zero_slots(tmp_path):
    model = conv_model()
    model.compile(optimizers.SGD(0.1, momentum=0.9), "mse")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        f = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    assert len(f["optimizer/vars"]) == 2 + len(model.trainable_weights)
    assert f["optimizer/vars/0"][()] == 0


def test_a_file_whose_optimizer_never_stepped_loads_silently(tmp_path):
    """Keras writes only `iteration` and `learning_rate` for an optimizer it never built."""
    model = trained("conv", OPTIMIZERS["adam"], epochs=1)
    model.save(tmp_path / "m.keras")
    path = tmp_path / "m.keras"
    _rewrite_optimizer_group(path, lambda group: [group.__delitem__(k) for k in list(group) if int(k) > 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = saving.load_model(path)
    assert loaded.optimizer.iterations == 5
    assert all(not np.any(v) for v in loaded.optimizer.get_weights()[2:])


def test_a_count_mismatch_is_skipped_with_keras_s_warning(tmp_path):
    model = trained("conv", OPTIMIZERS["adam"], epochs=1)
    path = tmp_path / "m.keras"
    model.save(path)
    _rewrite_optimizer_group(path, lambda group: group.__delitem__(str(len(group) - 1)))
    with pytest.warns(
        UserWarning,
        match="Skipping variable loading for optimizer 'adam.*', because it has 14 variables whereas the saved optimizer has 13",
    ):
        loaded = saving.load_model(path)
    assert loaded.optimizer.iterations == 0


def test_a_wrong_slot_shape_is_refused_before_anything_is_set(tmp_path):
    model = trained("conv", OPTIMIZERS["adam"], epochs=1)
    path = tmp_path / "m.keras"
    model.save(path)

    def damage(group):
        del group["3"]
        group.create_dataset("3", data=np.zeros((2, 2), "float32"))

    _rewrite_optimizer_group(path, damage)
    with pytest.raises(ModelFileError, match=r"variable '.*velocity' has shape \(3, 3, 5\); .*holds shape \(2, 2\)"):
        saving.load_model(path)


def test_compile_false_ignores_the_optimizer_state(tmp_path):
    model = trained("conv", OPTIMIZERS["adam"], epochs=1)
    model.save(tmp_path / "m.keras")
    loaded = saving.load_model(tmp_path / "m.keras", compile=False)
    assert not loaded.compiled
    assert_same_weights(loaded, model, atol=0)


def _rewrite_optimizer_group(path, change):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "a") as f:
        change(f["optimizer/vars"])
    members["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
