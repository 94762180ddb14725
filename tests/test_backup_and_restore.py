"""`callbacks.BackupAndRestore`: a fit killed (SIGKILL, in a subprocess) resumes from its last
backup and ends with the weights of a run never interrupted; backups are written atomically; a NaN
loss leaves the last good state; the text CLI resumes a killed cross-validation."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from test_text_cli import _write_class_files
from test_text_model import planted_corpus

from rankconv import callbacks, layers, optimizers, utils
from rankconv.models import Sequential
from rankconv.saving import ModelFileError

HELPER = os.path.join(os.path.dirname(__file__), "backup_restore_helper.py")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def helper(*args, timeout=120):
    return subprocess.run(
        [sys.executable, HELPER, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout
    )


def weights_of(path):
    with np.load(path) as stored:
        return [stored[k] for k in stored.files if k != "loss"], stored["loss"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The helper's training, never interrupted and without backups."""
    path = tmp_path_factory.mktemp("reference") / "reference.npz"
    run = helper("fit", path)
    assert run.returncode == 0, run.stderr
    return weights_of(path)


def assert_same_as(reference, path):
    weights, losses = weights_of(path)
    for a, b in zip(weights, reference[0], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(losses, reference[1][-len(losses) :])


# ----------------------------------------------------------------------------- killed and resumed


@pytest.mark.parametrize(
    ("save_freq", "kill", "resumes_at"),
    [
        (3, ("--kill-after-backups", 5), "epoch 1 step 2"),  # 13 batches an epoch: backup after batch 15
        ("epoch", ("--kill-after-backups", 2), "epoch 2 step 0"),
        (4, ("--kill-in-write", 4), "epoch 0 step 12"),  # killed writing the 4th: the 3rd is used
    ],
)
def test_a_killed_fit_resumes_and_ends_as_an_uninterrupted_one(save_freq, kill, resumes_at, reference, tmp_path):
    backup, result = tmp_path / "backup", tmp_path / "result.npz"
    killed = helper("fit", result, "--backup", backup, "--save-freq", save_freq, *kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not result.exists() and (backup / "latest.weights.h5").exists()
    resumed = helper("fit", result, "--backup", backup, "--save-freq", save_freq)
    assert resumed.returncode == 0, resumed.stderr
    assert f"first batch: {resumes_at}" in resumed.stdout
    assert_same_as(reference, result)
    assert not backup.exists()  # delete_checkpoint: gone at the end, stray temporary files included


def test_kills_at_random_moments_leave_a_usable_backup(reference, tmp_path):
    """Backups every batch, each write slowed down (a slow disk) so that kills land in writes too:
    after every kill the backup file is a complete backup, and the last run ends as the reference."""
    backup, result = tmp_path / "backup", tmp_path / "result.npz"
    chooser = random.Random(os.getpid())
    args = ("fit", result, "--backup", backup, "--save-freq", 1, "--write-delay", 0.02)
    for _ in range(2):
        process = subprocess.Popen(
            [sys.executable, HELPER, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            text=True,
        )
        assert process.stdout.readline().startswith("first batch")  # training has begun
        time.sleep(chooser.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        if result.exists():
            break  # it finished before the kill
        latest = backup / "latest.weights.h5"
        if latest.exists():
            with h5py.File(latest, "r") as f:  # complete: weights, optimizer state, training state
                assert {"layers", "optimizer", "rankconv_backup"} <= set(f)
    finished = helper(*args)
    assert finished.returncode == 0, finished.stderr
    assert_same_as(reference, result)


# ----------------------------------------------------------------------------- in-process semantics


def small_fit(backup=None, epochs=5, extra=(), save_freq="epoch", **fit_options):
    utils.set_random_seed(1)
    model = Sequential([layers.Input((8,)), layers.Dense(6, activation="relu"), layers.Dropout(0.3), layers.Dense(1)])
    model.compile(optimizers.Adam(0.01), "mse")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 8)).astype("float32"), rng.standard_normal((40, 1)).astype("float32")
    chosen = list(extra)
    if backup is not None:
        chosen.append(callbacks.BackupAndRestore(backup, save_freq=save_freq, **fit_options.pop("backup_options", {})))
    fit_options.setdefault("batch_size", 8)
    history = model.fit(x, y, epochs=epochs, verbose=0, callbacks=chosen, **fit_options)
    return model, history


class Interrupt(callbacks.Callback):
    def __init__(self, at_epoch=None, at_batch=None):
        super().__init__()
        self.at_epoch, self.at_batch, self.batches = at_epoch, at_batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("Interrupting!")

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == self.at_batch:
            raise RuntimeError("Interrupting!")


def test_keras_s_example_the_second_fit_runs_the_remaining_epochs(tmp_path):
    with pytest.raises(RuntimeError, match="Interrupting"):
        small_fit(tmp_path / "b", epochs=10, extra=[Interrupt(at_epoch=4)])
    model, history = small_fit(tmp_path / "b", epochs=10)
    assert len(history.history["loss"]) == 6 and history.epoch == [4, 5, 6, 7, 8, 9]
    reference, _ = small_fit(epochs=10)
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "b").exists()


def test_delete_checkpoint_false_keeps_a_keras_loadable_weights_file(tmp_path):
    model, _ = small_fit(tmp_path / "b", epochs=2, backup_options={"delete_checkpoint": False})
    assert os.listdir(tmp_path / "b") == ["latest.weights.h5"]
    other = Sequential([layers.Input((8,)), layers.Dense(6, activation="relu"), layers.Dropout(0.3), layers.Dense(1)])
    other.compile(optimizers.Adam(0.01), "mse")
    other.load_weights(tmp_path / "b" / "latest.weights.h5")
    assert other.optimizer.iterations == 10
    for a, b in zip(other.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # run again, it resumes after the last epoch: nothing left to train
    again, history = small_fit(tmp_path / "b", epochs=2)
    assert history.history == {} and again.optimizer.iterations == 10


def test_double_checkpoint_falls_back_to_the_previous_backup(tmp_path):
    with pytest.raises(RuntimeError):
        small_fit(tmp_path / "b", epochs=5, extra=[Interrupt(at_epoch=3)], backup_options={"double_checkpoint": True})
    assert sorted(os.listdir(tmp_path / "b")) == ["latest.weights.h5", "latest.weights.h5.bkp"]
    (tmp_path / "b" / "latest.weights.h5").write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="Resuming from the previous backup"):
        model, history = small_fit(tmp_path / "b", epochs=5, backup_options={"double_checkpoint": True})
    assert history.epoch == [2, 3, 4]
    reference, _ = small_fit(epochs=5)
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_damaged_backup_is_a_clear_error(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "latest.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(ModelFileError, match="latest.weights.h5 is not a readable backup"):
        small_fit(tmp_path / "b")


def test_a_backup_of_another_model_is_refused(tmp_path):
    with pytest.raises(RuntimeError):
        small_fit(tmp_path / "b", extra=[Interrupt(at_epoch=2)])
    utils.set_random_seed(1)
    other = Sequential([layers.Input((8,)), layers.Dense(7), layers.Dense(1)])
    other.compile(optimizers.Adam(0.01), "mse")
    with pytest.raises(ModelFileError, match="has no weights for layer|weights"):
        other.fit(
            np.zeros((40, 8)), np.zeros((40, 1)), batch_size=8, callbacks=[callbacks.BackupAndRestore(tmp_path / "b")]
        )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"backup_dir": ""}, "`backup_dir` must be a folder path; received backup_dir=''"),
        ({"backup_dir": "b", "save_freq": "batch"}, "`save_freq` must be 'epoch' or a positive number of batches"),
        ({"backup_dir": "b", "save_freq": 0}, "received save_freq=0"),
    ],
)
def test_bad_arguments_name_themselves(arguments, message):
    with pytest.raises(ValueError, match=message):
        callbacks.BackupAndRestore(**arguments)


def test_a_backup_with_another_optimizer_is_refused(tmp_path):
    with pytest.raises(RuntimeError):
        small_fit(tmp_path / "b", extra=[Interrupt(at_epoch=2)])
    utils.set_random_seed(1)
    model = Sequential([layers.Input((8,)), layers.Dense(6, activation="relu"), layers.Dropout(0.3), layers.Dense(1)])
    model.compile(optimizers.SGD(0.01), "mse")
    with pytest.raises(ValueError, match="an optimizer with 10 variables; this fit's SGD has 2"):
        model.fit(
            np.zeros((40, 8)), np.zeros((40, 1)), batch_size=8, callbacks=[callbacks.BackupAndRestore(tmp_path / "b")]
        )


def test_a_backup_of_a_fit_over_other_data_is_refused(tmp_path):
    with pytest.raises(RuntimeError):
        small_fit(tmp_path / "b", extra=[Interrupt(at_epoch=2)])
    with pytest.raises(ValueError, match="over 40 samples in batches of 8; this fit has 40 samples in batches of 5"):
        small_fit(tmp_path / "b", batch_size=5)


def test_the_model_must_be_built(tmp_path):
    model = Sequential([layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="the model must be built before `fit`"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 1)), callbacks=[callbacks.BackupAndRestore(tmp_path)], verbose=0)


@pytest.mark.parametrize("mode", ["kim", "shuffle"])
def test_sentence_batches_resume_inside_an_epoch(tmp_path, mode):
    """EpochBatches draws each epoch's batches in `on_epoch_begin`: a fit resumed inside an epoch
    draws that epoch's batches again from the same state, and the training ends as an uninterrupted one."""
    from rankconv.text.training import BestDevEpoch, EpochBatches, SentenceBatches

    rng = np.random.default_rng(3)
    x = np.zeros((45, 12), dtype="int32")
    for row, length in enumerate(rng.integers(1, 6, 45)):
        x[row, 2 : 2 + length] = rng.integers(1, 20, length)
    y = rng.integers(0, 2, 45)

    def run(extra=(), backup=True):
        utils.set_random_seed(2)
        model = Sequential(
            [
                layers.Input((None,), dtype="int32"),
                layers.Embedding(20, 4),
                layers.Conv1D(5, 3, activation="relu"),
                layers.GlobalMaxPooling1D(),
                layers.Dense(2, activation="softmax"),
            ]
        )
        model.compile(optimizers.Adadelta(1.0), "sparse_categorical_crossentropy", metrics=["accuracy"])
        data = SentenceBatches(x, y, 2, [])
        feed, best = EpochBatches(data, 10, seed=4, mode=mode), BestDevEpoch()
        chosen = [feed, best, *extra] + ([callbacks.BackupAndRestore(tmp_path / "b", save_freq=3)] if backup else [])
        model.fit(data, epochs=4, shuffle=False, verbose=0, callbacks=chosen,
                  validation_data=SentenceBatches.sorted_by_length(x[:10], y[:10], 2, 4))  # fmt: skip
        return model, feed, best

    reference, reference_feed, reference_best = run(backup=False)
    with pytest.raises(RuntimeError):
        run(extra=[Interrupt(at_batch=7)])  # 5 batches an epoch: backup after batch 6, in epoch 1
    model, feed, best = run()
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [list(o) for o in feed.orders] == [list(o) for o in reference_feed.orders]
    assert (best.best, best.best_epoch) == (reference_best.best, reference_best.best_epoch)


# ----------------------------------------------------------------------------- NaN


def diverging_fit(with_backup, tmp_path):
    """SGD with a rate far too large on a linear model: the loss overflows to inf, then NaN, in a
    few epochs. Returns the model, the losses and the weights recorded at each epoch's end."""
    utils.set_random_seed(0)
    model = Sequential([layers.Input((4,)), layers.Dense(1)])
    model.compile(optimizers.SGD(0.5), "mse")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype("float32") * 10
    y = np.zeros((32, 1), "float32")
    recorded = []

    class Record(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            recorded.append((logs["loss"], self.model.get_weights()))

    chosen = [callbacks.TerminateOnNaN(), Record()]
    if with_backup:
        chosen.append(callbacks.BackupAndRestore(tmp_path / "b"))
    model.fit(x, y, batch_size=8, epochs=50, verbose=0, shuffle=False, callbacks=chosen)
    return model, recorded


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_nan_loss_stops_and_the_last_good_epoch_is_kept(tmp_path, capsys):
    model, recorded = diverging_fit(True, tmp_path)
    losses = [loss for loss, _ in recorded]
    assert len(recorded) < 50 and not np.isfinite(losses[-1])  # TerminateOnNaN stopped it
    good = [weights for loss, weights in recorded if np.isfinite(loss)][-1]
    assert all(np.isfinite(w).all() for w in model.get_weights())
    for a, b in zip(model.get_weights(), good, strict=True):
        np.testing.assert_array_equal(a, b)
    assert "the last backup is put back" in capsys.readouterr().out
    assert not (tmp_path / "b").exists()
    # without the backup, TerminateOnNaN alone leaves the weights of the step that broke
    broken, _ = diverging_fit(False, tmp_path)
    assert any(not np.array_equal(a, b) for a, b in zip(broken.get_weights(), good))


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_nan_in_the_first_epoch_puts_back_the_starting_weights(tmp_path):
    utils.set_random_seed(0)
    model = Sequential([layers.Input((4,)), layers.Dense(1)])
    model.compile(optimizers.SGD(1e30), "mse")
    start = model.get_weights()
    x = np.full((8, 4), 1e10, "float32")
    model.fit(
        x,
        np.zeros((8, 1)),
        epochs=3,
        verbose=0,
        callbacks=[callbacks.TerminateOnNaN(), callbacks.BackupAndRestore(tmp_path / "b")],
    )
    for a, b in zip(model.get_weights(), start, strict=True):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- the text CLI


def cv_command(tmp_path, *extra):
    texts, labels = planted_corpus(150, seed=4)
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        _write_class_files(data, texts, labels)
    return ["cli", "text", "cv", data, "--folds", 3, "--epochs", 2, "--quiet", *extra]


def test_a_killed_cross_validation_resumes_at_its_fold_and_epoch(tmp_path):
    uninterrupted = helper(*cv_command(tmp_path, "--json", tmp_path / "reference.json"))
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert "backups written: 0" in uninterrupted.stdout
    backup = tmp_path / "backup"
    # fold 1 trains 2 epochs (2 backups), fold 2's first epoch is the 3rd: killed there
    killed = helper(*cv_command(tmp_path, "--backup-dir", backup, "--kill-after-backups", 3))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "fold  1: accuracy" in killed.stdout and "fold  2" not in killed.stdout
    resumed = helper(*cv_command(tmp_path, "--backup-dir", backup, "--json", tmp_path / "resumed.json"))
    assert resumed.returncode == 0, resumed.stderr
    assert "restored from the backup" in resumed.stdout.splitlines()[0]  # fold 1 is not trained again
    assert "backups written: 3" in resumed.stdout  # fold 2's second epoch, fold 3's two
    reference = json.loads((tmp_path / "reference.json").read_text())
    result = json.loads((tmp_path / "resumed.json").read_text())
    for ours, theirs in zip(result["folds"], reference["folds"], strict=True):
        assert (ours["fold"], ours["accuracy"], ours["epochs"], ours["best_epoch"]) == (
            theirs["fold"],
            theirs["accuracy"],
            theirs["epochs"],
            theirs["best_epoch"],
        )
    assert result["mean"] == reference["mean"]
    assert not backup.exists()  # emptied at the end


def test_text_train_resumes_a_killed_training(tmp_path):
    texts, labels = planted_corpus(120, seed=6)
    data = tmp_path / "data"
    data.mkdir()
    _write_class_files(data, texts, labels)
    command = ["cli", "text", "train", data, "--epochs", 3, "--quiet"]
    reference = helper(*command, "--out", tmp_path / "reference.keras", "--json", tmp_path / "reference.json")
    assert reference.returncode == 0, reference.stderr
    backup = tmp_path / "backup"
    killed = helper(*command, "--out", tmp_path / "m.keras", "--backup-dir", backup, "--kill-after-backups", 2)
    assert killed.returncode == -signal.SIGKILL and not (tmp_path / "m.keras").exists()
    resumed = helper(*command, "--out", tmp_path / "m.keras", "--backup-dir", backup, "--json", tmp_path / "m.json")
    assert resumed.returncode == 0, resumed.stderr
    assert "backups written: 1" in resumed.stdout and not backup.exists()
    ours, theirs = json.loads((tmp_path / "m.json").read_text()), json.loads((tmp_path / "reference.json").read_text())
    assert ours["history"] == theirs["history"] and ours["best_epoch"] == theirs["best_epoch"]


def test_cross_validation_results_kept_in_the_backup_and_other_settings_refused(tmp_path):
    from rankconv.text.training import cross_validate

    texts, labels = planted_corpus(60, seed=2)
    options = {"epochs": 1, "filters": 4, "embedding_dim": 8, "windows": (2, 3), "verbose": 0}
    first = cross_validate(texts, labels, folds=2, backup_dir=tmp_path / "b", keep_backup=True, **options)
    assert os.listdir(tmp_path / "b") == ["cv-seed0.json"]
    again = cross_validate(texts, labels, folds=2, backup_dir=tmp_path / "b", keep_backup=True, **options)
    assert [r["accuracy"] for r in again["folds"]] == [r["accuracy"] for r in first["folds"]]
    assert all(r["restored"] for r in again["folds"])
    with pytest.raises(ValueError, match=r"different settings \(options differ\)"):
        cross_validate(texts, labels, folds=2, backup_dir=tmp_path / "b", **{**options, "epochs": 2})
    with pytest.raises(ValueError, match=r"different settings \(data, samples differ\)"):
        cross_validate(texts[:-1], labels[:-1], folds=2, backup_dir=tmp_path / "b", **options)
    cross_validate(texts, labels, folds=2, backup_dir=tmp_path / "b", **options)  # keep_backup=False: emptied
    assert not (tmp_path / "b").exists()
