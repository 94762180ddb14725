import csv
import io
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankconv import callbacks, metrics


class FakeModel:
    """What the callbacks use of a model; its one weight holds the number of the last epoch trained."""

    def __init__(self, metric_objects=()):
        self.stop_training = False
        self.weights = [np.zeros(2, np.float32)]
        self.saved: list[tuple[str, str]] = []
        self.metrics = list(metric_objects)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def save(self, path):
        self.saved.append(("model", path))
        with open(path, "w") as f:
            f.write("model")

    def save_weights(self, path):
        self.saved.append(("weights", path))
        with open(path, "w") as f:
            f.write("weights")


def fit(model, callback_list, epoch_logs, steps=3, verbose=0, batch_logs=None, validation=False):
    """Drive the hooks in the order of Keras's `fit`; `epoch_logs[i]` are the logs of epoch i."""
    cbs = callbacks.CallbackList(
        callback_list,
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=len(epoch_logs),
        steps=steps,
    )
    model.stop_training = False
    cbs.on_train_begin()
    logs = {}
    for epoch, logs in enumerate(epoch_logs):
        cbs.on_epoch_begin(epoch)
        for step in range(steps):
            cbs.on_train_batch_begin(step)
            model.weights = [np.full(2, epoch, np.float32)]
            cbs.on_train_batch_end(step, batch_logs(epoch, step) if batch_logs else {"loss": logs.get("loss", 0.0)})
        if validation:
            cbs.on_test_begin()
            for step in range(2):
                cbs.on_test_batch_begin(step)
                cbs.on_test_batch_end(step, {"loss": 1.0})
            cbs.on_test_end({"loss": 1.0})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    return model.history


def losses(*values, key="val_loss"):
    return [{"loss": 1.0, key: v} for v in values]


# ----------------------------------------------------------------------------- CallbackList and History


def test_callback_list_dispatches_in_order_with_sorted_python_logs():
    seen = []

    class Recorder(callbacks.Callback):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def on_epoch_end(self, epoch, logs=None):
            seen.append((self.tag, epoch, logs))

        def on_batch_end(self, batch, logs=None):  # legacy hook, reached through on_train_batch_end
            seen.append((self.tag, "batch", batch))

    model = FakeModel()
    cbs = callbacks.CallbackList([Recorder("a"), [Recorder("b")]], model=model, epochs=1)
    assert all(c.model is model and c.params == {"epochs": 1} for c in cbs)
    cbs.on_train_batch_end(0, {})
    cbs.on_epoch_end(0, {"z": np.float32(0.5), "a": np.array(2.0), "nested": {"m": 3}, "s": "text"})
    assert seen[:2] == [("a", "batch", 0), ("b", "batch", 0)]
    logs = seen[2][2]
    assert list(logs) == ["a", "m", "s", "z"]
    assert type(logs["a"]) is float and logs["z"] == 0.5 and logs["s"] == "text"
    assert [s[0] for s in seen[2:]] == ["a", "b"]


def test_callback_list_rejects_non_callbacks_and_unbalanced_ends():
    with pytest.raises(TypeError, match="Callback"):
        callbacks.CallbackList([object()])
    with pytest.raises(ValueError, match="on_xxx_begin"):
        callbacks.CallbackList().on_train_end()


def test_history_records_epochs_and_logs():
    model = FakeModel()
    history = fit(model, [], [{"loss": 0.5, "acc": 0.1}, {"loss": 0.25, "acc": 0.2}])
    assert isinstance(history, callbacks.History) and model.history is history
    assert history.epoch == [0, 1]
    assert history.history == {"acc": [0.1, 0.2], "loss": [0.5, 0.25]}
    assert list(history.history) == ["acc", "loss"]


def test_existing_history_and_progbar_are_not_duplicated():
    history, bar = callbacks.History(), callbacks.ProgbarLogger()
    cbs = callbacks.CallbackList([history, bar], add_history=True, add_progbar=True)
    assert len(cbs) == 2


# ----------------------------------------------------------------------------- EarlyStopping


def test_early_stopping_patience():
    model = FakeModel()
    stopper = callbacks.EarlyStopping(patience=2)
    history = fit(model, [stopper], losses(1.0, 0.9, 0.95, 0.92, 0.8, 0.7))
    # best at epoch 1; epochs 2 and 3 do not improve; wait reaches 2 at epoch 3
    assert history.epoch == [0, 1, 2, 3]
    assert stopper.stopped_epoch == 3 and stopper.best == 0.9 and stopper.wait == 2


def test_early_stopping_patience_zero_never_stops_at_epoch_zero():
    stopper = callbacks.EarlyStopping(patience=0)
    history = fit(FakeModel(), [stopper], losses(1.0, 2.0, 0.5))
    assert history.epoch == [0, 1] and stopper.stopped_epoch == 1


def test_early_stopping_min_delta():
    stopper = callbacks.EarlyStopping(patience=1, min_delta=0.1)
    history = fit(FakeModel(), [stopper], losses(1.0, 0.95, 0.91, 0.5))
    # 0.95 and 0.91 improve by less than 0.1 on 1.0: no improvement
    assert history.epoch == [0, 1] and stopper.best == 1.0


def test_early_stopping_mode_max_and_auto_from_metric_direction():
    accuracy = metrics.Accuracy(name="acc")
    for stopper in [
        callbacks.EarlyStopping(monitor="val_acc", mode="max", patience=1),
        callbacks.EarlyStopping(monitor="val_acc", patience=1),  # auto: the model's "acc" goes up
    ]:
        history = fit(FakeModel([accuracy]), [stopper], losses(0.5, 0.6, 0.55, 0.7, key="val_acc"))
        assert history.epoch == [0, 1, 2] and stopper.best == 0.6


def test_early_stopping_auto_mode_finds_metrics_inside_containers():
    class Container:
        metrics = [metrics.SparseCategoricalAccuracy(name="accuracy")]

    stopper = callbacks.EarlyStopping(monitor="accuracy", patience=0)
    fit(FakeModel([Container()]), [stopper], losses(0.5, 0.6, key="accuracy"))
    assert stopper.best == 0.6


def test_early_stopping_auto_mode_unknown_metric_is_an_error():
    with pytest.raises(ValueError, match="mode='max'"):
        fit(FakeModel(), [callbacks.EarlyStopping(monitor="val_f1")], losses(0.5, key="val_f1"))


def test_early_stopping_unknown_mode_warns_and_falls_back_to_auto():
    with pytest.warns(UserWarning, match="fallback to auto"):
        stopper = callbacks.EarlyStopping(mode="sideways")
    assert stopper.mode == "auto"


def test_early_stopping_baseline_must_be_beaten_to_reset_patience():
    stopper = callbacks.EarlyStopping(patience=2, baseline=0.5)
    history = fit(FakeModel(), [stopper], losses(1.0, 0.9, 0.8, 0.85, 0.3))
    # epochs 0-2 improve on the best but not on the baseline: they do not stop training, but the
    # wait keeps growing, so the first epoch without improvement stops it
    assert history.epoch == [0, 1, 2, 3] and stopper.stopped_epoch == 3 and stopper.best == 0.8
    # without a baseline the same values go on
    assert fit(FakeModel(), [callbacks.EarlyStopping(patience=2)], losses(1.0, 0.9, 0.8, 0.85, 0.3)).epoch == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_early_stopping_baseline_beaten_resets_patience():
    stopper = callbacks.EarlyStopping(patience=1, baseline=0.5)
    history = fit(FakeModel(), [stopper], losses(0.4, 0.3, 0.2, 0.25, 0.26))
    assert history.epoch == [0, 1, 2, 3] and stopper.best == 0.2


def test_early_stopping_restores_best_weights_when_stopped():
    model = FakeModel()
    stopper = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    fit(model, [stopper], losses(1.0, 0.5, 0.7, 0.8, 0.1))
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 3
    np.testing.assert_array_equal(model.weights[0], [1, 1])


def test_early_stopping_restores_best_weights_even_without_stopping():
    # Keras 3 restores at the end of training whenever best weights were recorded.
    model = FakeModel()
    stopper = callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    fit(model, [stopper], losses(1.0, 0.5, 0.7))
    assert stopper.stopped_epoch == 0
    np.testing.assert_array_equal(model.weights[0], [1, 1])


def test_early_stopping_start_from_epoch_ignores_warm_up():
    stopper = callbacks.EarlyStopping(patience=0, start_from_epoch=2, restore_best_weights=True)
    model = FakeModel()
    history = fit(model, [stopper], losses(0.1, 0.2, 0.9, 1.0, 0.5))
    assert history.epoch == [0, 1, 2, 3] and stopper.best == 0.9 and stopper.best_epoch == 2
    np.testing.assert_array_equal(model.weights[0], [2, 2])


def test_early_stopping_missing_monitor_warns_and_continues():
    stopper = callbacks.EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match="not available"):
        history = fit(FakeModel(), [stopper], [{"loss": 1.0}, {"loss": 2.0}])
    assert history.epoch == [0, 1]


def test_early_stopping_is_reusable_and_verbose(capsys):
    stopper = callbacks.EarlyStopping(patience=0, verbose=1, restore_best_weights=True)
    fit(FakeModel(), [stopper], losses(1.0, 2.0))
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out and "best epoch: 1." in out
    history = fit(FakeModel(), [stopper], losses(5.0, 4.0, 3.0))
    assert history.epoch == [0, 1, 2] and stopper.best == 3.0


@settings(max_examples=50)
@given(
    st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=12),
    st.integers(0, 4),
    st.sampled_from([0.0, 0.5]),
)
def test_early_stopping_matches_a_reference_rule(values, patience, min_delta):
    stopper = callbacks.EarlyStopping(patience=patience, min_delta=min_delta)
    history = fit(FakeModel(), [stopper], losses(*values))
    best, wait, expected = None, 0, len(values)
    for epoch, value in enumerate(values):
        wait += 1
        # Keras (and EarlyStopping) compare in float32
        if best is None or np.float32(value) + np.float32(min_delta) < np.float32(best):
            best, wait = value, 0
        elif wait >= patience and epoch > 0:
            expected = epoch + 1
            break
    assert len(history.epoch) == expected


# ----------------------------------------------------------------------------- ModelCheckpoint


def test_checkpoint_formats_filenames_with_epoch_and_logs(tmp_path):
    model = FakeModel()
    path = str(tmp_path / "ckpt" / "model-{epoch:02d}-{val_loss:.2f}.keras")
    fit(model, [callbacks.ModelCheckpoint(path)], losses(0.5, 0.25))
    assert model.saved == [
        ("model", str(tmp_path / "ckpt" / "model-01-0.50.keras")),
        ("model", str(tmp_path / "ckpt" / "model-02-0.25.keras")),
    ]


def test_checkpoint_save_best_only(tmp_path, capsys):
    model = FakeModel()
    path = str(tmp_path / "w-{epoch}.weights.h5")
    checkpoint = callbacks.ModelCheckpoint(path, save_best_only=True, save_weights_only=True, verbose=1)
    fit(model, [checkpoint], losses(0.5, 0.7, 0.4, 0.4))
    assert [p for _, p in model.saved] == [str(tmp_path / "w-1.weights.h5"), str(tmp_path / "w-3.weights.h5")]
    assert all(kind == "weights" for kind, _ in model.saved)
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss improved from None to 0.50000" in out
    assert "Epoch 2: val_loss did not improve from 0.50000" in out


def test_checkpoint_mode_max_and_initial_threshold(tmp_path):
    model = FakeModel()
    checkpoint = callbacks.ModelCheckpoint(
        str(tmp_path / "m.keras"), monitor="val_acc", mode="max", save_best_only=True, initial_value_threshold=0.6
    )
    fit(model, [checkpoint], losses(0.5, 0.7, 0.65, 0.8, key="val_acc"))
    assert len(model.saved) == 2 and checkpoint.best == 0.8


def test_checkpoint_missing_monitor_saves_anyway(tmp_path):
    model = FakeModel()
    with pytest.warns(UserWarning, match="only with val_loss available"):
        fit(model, [callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), save_best_only=True)], [{"loss": 1.0}])
    assert len(model.saved) == 1


def test_checkpoint_batch_frequency(tmp_path):
    model = FakeModel()
    path = str(tmp_path / "e{epoch}-b{batch}.keras")
    fit(model, [callbacks.ModelCheckpoint(path, save_freq=2)], losses(0.5, 0.4), steps=3)
    # batches seen: 2 (epoch 1, batch 2), then 4 (epoch 2, batch 1), 6 (epoch 2, batch 3)
    assert [p.rsplit("/", 1)[-1] for _, p in model.saved] == ["e1-b2.keras", "e2-b1.keras", "e2-b3.keras"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"filepath": "model.h5"}, "must end in `.keras`"),
        ({"filepath": "model.weights.h5"}, "must end in `.keras`"),
        ({"filepath": "model.keras", "save_weights_only": True}, r"must end in `\.weights\.h5`"),
        ({"filepath": "model.h5", "save_weights_only": True}, r"must end in `\.weights\.h5`"),
        ({"filepath": "model.keras", "save_freq": "batch"}, "save_freq"),
    ],
)
def test_checkpoint_validates_paths(kwargs, match):
    with pytest.raises(ValueError, match=match):
        callbacks.ModelCheckpoint(**kwargs)


def test_checkpoint_unknown_format_field(tmp_path):
    with pytest.raises(KeyError, match="val_acc"):
        fit(FakeModel(), [callbacks.ModelCheckpoint(str(tmp_path / "{val_acc}.keras"))], losses(0.5))


# ----------------------------------------------------------------------------- CSVLogger


def test_csv_logger_columns_and_rows(tmp_path):
    path = tmp_path / "log.csv"
    fit(
        FakeModel(),
        [callbacks.CSVLogger(path)],
        [{"loss": 0.5, "acc": 0.25, "val_loss": 0.75}, {"loss": 0.125, "acc": 0.5, "val_loss": 1.0}],
    )
    raw = path.read_bytes()
    assert raw == b"epoch,acc,loss,val_loss\r\n0,0.25,0.5,0.75\r\n1,0.5,0.125,1.0\r\n"


def test_csv_logger_adds_val_columns_without_validation(tmp_path):
    path = tmp_path / "log.csv"
    fit(FakeModel(), [callbacks.CSVLogger(path, separator=";")], [{"loss": 0.5}])
    assert path.read_text().splitlines() == ["epoch;loss;val_loss", "0;0.5;NA"]


def test_csv_logger_append_writes_header_once(tmp_path):
    path = tmp_path / "log.csv"
    logger = callbacks.CSVLogger(path, append=True)
    fit(FakeModel(), [logger], [{"loss": 0.5, "val_loss": 0.5}])
    fit(FakeModel(), [logger], [{"loss": 0.25, "val_loss": 0.5}])
    rows = list(csv.reader(path.open()))
    assert rows == [["epoch", "loss", "val_loss"], ["0", "0.5", "0.5"], ["0", "0.25", "0.5"]]


def test_csv_logger_rows_are_on_disk_after_each_epoch(tmp_path):
    path = tmp_path / "log.csv"
    logger = callbacks.CSVLogger(path)
    cbs = callbacks.CallbackList([logger], model=FakeModel())
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.5})
    # training is interrupted here: the file already holds a complete CSV
    assert list(csv.reader(path.open())) == [["epoch", "loss", "val_loss"], ["0", "0.5", "0.5"]]
    cbs.on_train_end()


def test_csv_logger_lists_become_quoted_strings(tmp_path):
    path = tmp_path / "log.csv"
    fit(FakeModel(), [callbacks.CSVLogger(path)], [{"loss": 0.5, "val_loss": 0.5, "per_class": [1, 2]}])
    assert list(csv.reader(path.open()))[1][2] == '"[1, 2]"'


# ----------------------------------------------------------------------------- progress bar

STEP_LINE = r"3/3 ━{20} \d+s \d+(us|ms|s)/step - loss: \d\.\d{4}"


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_not_a_tty_writes_one_line_per_epoch():
    stream = io.StringIO()
    bar = callbacks.ProgbarLogger(stream=stream)
    fit(FakeModel(), [bar], [{"loss": 0.5}, {"loss": 0.25}], verbose=1)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.fullmatch(STEP_LINE, lines[1]) and lines[1].endswith("loss: 0.5000")
    assert lines[3].endswith("loss: 0.2500")


def test_progress_bar_on_a_tty_redraws_in_place():
    stream = FakeTTY()
    bar = callbacks.ProgbarLogger(stream=stream)
    fit(FakeModel(), [bar], [{"loss": 0.5}], verbose=1, batch_logs=lambda e, s: {"loss": 1.0 / (s + 1)})
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    frames = text.split("\r")[1:]
    assert len(frames) >= 2  # the first step (the interval has not passed since) and the final line
    plain = re.sub(r"\x1b\[\d+m", "", frames[-1])
    assert re.fullmatch(STEP_LINE + r"\s*\n", plain) and "loss: 0.5000" in plain
    assert "\x1b[32m" in text  # coloured bar


def test_progress_bar_eta_while_running():
    stream = FakeTTY()
    bar = callbacks.ProgressBar(target=10, stream=stream, interval=0)
    bar.update(2, [("loss", 0.00012)])
    line = re.sub(r"\x1b\[\d+m", "", stream.getvalue())
    assert re.fullmatch(r"\r 2/10 ━{4}━{16} \d+s \d+(us|ms|s)/step - loss: 1\.2000e-04", line)


def test_progress_bar_verbose_2_one_plain_line_per_epoch():
    stream = io.StringIO()
    bar = callbacks.ProgbarLogger(stream=stream)
    fit(
        FakeModel(),
        [bar],
        [{"loss": 0.5, "val_loss": 0.75}, {"loss": 0.25, "val_loss": 0.5}],
        verbose=2,
        validation=True,
    )
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and lines[0] == "Epoch 1/2"
    assert re.fullmatch(r"3/3 - \d+s - \d+(us|ms|s)/step - loss: 0\.5000 - val_loss: 0\.7500", lines[1])


def test_progress_bar_verbose_0_is_silent(capsys):
    stream = io.StringIO()
    bar = callbacks.ProgbarLogger(stream=stream)
    fit(FakeModel(), [bar], [{"loss": 0.5}, {"loss": 0.25}], verbose=0)
    assert stream.getvalue() == "" and capsys.readouterr().out == ""


def test_progress_bar_default_stream_is_stdout_and_single_epoch_has_no_header(capsys):
    fit(FakeModel(), [], [{"loss": 0.5}], verbose=1)
    out = capsys.readouterr().out
    assert "Epoch" not in out and re.fullmatch(STEP_LINE + "\n", out)


def test_progress_bar_evaluate_and_predict():
    stream = io.StringIO()
    bar = callbacks.ProgbarLogger(stream=stream)
    cbs = callbacks.CallbackList([bar], verbose=1, epochs=1, steps=None)
    cbs.on_test_begin()
    for step in range(4):
        cbs.on_test_batch_end(step, {"loss": 0.5, "accuracy": 0.75})
    cbs.on_test_end({"loss": 0.5, "accuracy": 0.75})
    cbs.on_predict_begin()
    for step in range(4):
        cbs.on_predict_batch_end(step, {"outputs": np.zeros(3)})
    cbs.on_predict_end()
    lines = stream.getvalue().splitlines()
    assert re.fullmatch(r"4/4 ━{20} \d+s \d+(us|ms|s)/step - accuracy: 0\.7500 - loss: 0\.5000", lines[0])
    assert re.fullmatch(r"4/4 ━{20} \d+s \d+(us|ms|s)/step", lines[1])


def test_progress_bar_unknown_target_and_averaging():
    stream = FakeTTY()
    bar = callbacks.ProgressBar(target=None, stream=stream, interval=0)
    bar.update(1, [("loss", 1.0)])
    bar.update(3, [("loss", 4.0)])  # averaged over steps: (1 * 1 + 4 * 2) / 3
    last = re.sub(r"\x1b\[\d+m", "", stream.getvalue().split("\r")[-1])
    assert last.startswith("      3/Unknown") and "loss: 3.0000" in last


def test_progress_bar_survives_ascii_streams():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    callbacks.ProgressBar(target=2, stream=stream).update(2, [("loss", 0.5)])
    stream.flush()
    assert raw.getvalue().decode().startswith("2/2 ====================")


def test_progress_bar_rejects_bad_verbose():
    with pytest.raises(ValueError, match="verbose"):
        callbacks.ProgressBar(target=1, verbose=3)
