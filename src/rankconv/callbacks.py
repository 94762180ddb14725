"""Training callbacks with Keras 3's hooks and semantics: History, EarlyStopping, ModelCheckpoint,
CSVLogger, ReduceLROnPlateau, LearningRateScheduler, TerminateOnNaN, BackupAndRestore, and a
progress bar (`ProgressBar`, driven by the `ProgbarLogger` callback).

The model's side of the contract: `model.stop_training` (a bool the loop checks after each epoch),
`model.get_weights()` / `model.set_weights(list)`, `model.save(path)` and `model.save_weights(path)`
(both overwrite an existing file), and optionally `model.metrics` (metric objects, or containers
with a `.metrics` list, whose `name` and `_direction` let `mode="auto"` decide which way is better).
The learning-rate callbacks read and set `model.optimizer.learning_rate`.

`CallbackList` is what the training loop talks to: like Keras's, it flattens the logs (nested
dicts merged), converts their values to Python floats where it can and sorts them by name, so
every callback, the progress bar and `History` see the metrics in alphabetical order.

Backups (`BackupAndRestore`) hold the state of the other callbacks too: a callback whose
`get_backup_state()` returns something (EarlyStopping's best so far, ReduceLROnPlateau's wait, …)
gets it back through `set_backup_state(state)` when a killed `fit` resumes.
"""

from __future__ import annotations

import collections.abc
import contextlib
import csv
import glob
import json
import math
import os
import shutil
import sys
import time
import warnings

import numpy as np

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "EarlyStopping",
    "ModelCheckpoint",
    "CSVLogger",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "TerminateOnNaN",
    "BackupAndRestore",
    "ProgressBar",
    "Progbar",
    "ProgbarLogger",
]


def _print(message: str, line_break: bool = True, stream=None) -> None:
    stream = stream if stream is not None else sys.stdout
    message = f"{message}\n" if line_break else message
    try:
        stream.write(message)
    except UnicodeEncodeError:
        # A stream that cannot encode the bar's characters (e.g. ASCII): fall back to plain ones.
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(message.replace("━", "=").encode(encoding, errors="replace").decode(encoding))
    stream.flush()


def pythonify_logs(logs) -> dict:
    """Keras's log normalisation: nested dicts merged, values made Python floats where possible, keys sorted."""
    result = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(pythonify_logs(value))
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        result[key] = value
    return result


class Callback:
    """Base class: every hook is a no-op. `model` and `params` are set by the training loop."""

    def __init__(self):
        self.model = None
        self.params = None

    def set_params(self, params) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self.model = model

    def get_backup_state(self):
        """What `BackupAndRestore` should keep of this callback for a resumed `fit`: None (the
        default: nothing), or a JSON-like value (dicts with string keys, lists, numbers, strings,
        None) that may hold NumPy arrays anywhere."""
        return None

    def set_backup_state(self, state) -> None:
        """Take back what `get_backup_state` returned (called once every callback's
        `on_train_begin` has run, when `fit` resumes from a backup)."""

    # Keras's legacy batch hooks: the train-batch hooks call them by default.
    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass


class CallbackList(Callback):
    """Dispatches each hook to many callbacks, in order, with the logs normalised by `pythonify_logs`.

    `add_history` / `add_progbar` append a `History` / `ProgbarLogger` unless one is in the list
    (Keras's `fit` passes `add_history=True, add_progbar=verbose != 0`). `params` (e.g. `verbose`,
    `epochs`, `steps`) go to every callback's `set_params`; `set_model` also sets `model.history`.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = _flatten(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"`callbacks` must hold Callback objects; received {callback!r}.")
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks if isinstance(c, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        # Backups see each hook after the others, so that a backup holds their state at that point
        # and a restore follows their own resets; but `on_train_end` first, so that putting back
        # the last good state after a NaN comes before another callback's choice of weights.
        backups = [c for c in self.callbacks if isinstance(c, BackupAndRestore)]
        if backups:
            others = [c for c in self.callbacks if not isinstance(c, BackupAndRestore)]
            self.callbacks = others + backups
            for backup in backups:
                backup._siblings = others
        self._open_blocks = 0
        self.set_model(model)
        self.set_params(params)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def set_params(self, params) -> None:
        self.params = params
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def set_model(self, model) -> None:
        if model is None:
            return
        self.model = model
        if self._history is not None:
            model.history = self._history
        for callback in self.callbacks:
            callback.set_model(model)

    def _dispatch(self, hook: str, *args, logs=None) -> None:
        logs = pythonify_logs(logs)
        for callback in self.callbacks:
            getattr(callback, hook)(*args, logs)

    def _begin(self) -> None:
        self._open_blocks += 1

    def _end(self) -> None:
        self._open_blocks -= 1
        if self._open_blocks < 0:
            raise ValueError("`on_xxx_end` called without a matching `on_xxx_begin`.")

    def on_batch_begin(self, batch, logs=None):
        self._dispatch("on_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        self._dispatch("on_batch_end", batch, logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._dispatch("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._dispatch("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._dispatch("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._dispatch("on_train_batch_end", batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._dispatch("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._dispatch("on_test_batch_end", batch, logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._dispatch("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._dispatch("on_predict_batch_end", batch, logs=logs)

    def on_train_begin(self, logs=None):
        self._begin()
        self._dispatch("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        logs = pythonify_logs(logs)
        first = [c for c in self.callbacks if isinstance(c, BackupAndRestore)]
        for callback in first + [c for c in self.callbacks if not isinstance(c, BackupAndRestore)]:
            callback.on_train_end(logs)
        self._end()

    def on_test_begin(self, logs=None):
        self._begin()
        self._dispatch("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._dispatch("on_test_end", logs=logs)
        self._end()

    def on_predict_begin(self, logs=None):
        self._begin()
        self._dispatch("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._dispatch("on_predict_end", logs=logs)
        self._end()

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)


def _flatten(callbacks) -> list:
    if callbacks is None:
        return []
    if isinstance(callbacks, CallbackList):
        return list(callbacks.callbacks)
    if isinstance(callbacks, (list, tuple)):
        return [c for item in callbacks for c in _flatten(item)]
    return [callbacks]


class History(Callback):
    """Records the epoch logs: `history` maps each log name to its list of values, `epoch` lists the epochs."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


# ----------------------------------------------------------------------------- monitoring


# Keras compares monitored values with `ops.less`/`ops.greater`, which turn Python floats into
# float32 tensors: differences below float32 precision are no improvement. Mirrored.
def _less(a, b) -> bool:
    return bool(np.less(np.float32(a), np.float32(b)))


def _greater(a, b) -> bool:
    return bool(np.greater(np.float32(a), np.float32(b)))


def _model_metrics(model) -> list:
    """The model's metric objects, containers (objects with a `.metrics` list) opened one level deep."""
    found = []
    for metric in getattr(model, "metrics", None) or []:
        inner = getattr(metric, "metrics", None)
        found.extend(inner if isinstance(inner, (list, tuple)) else [metric])
    return found


class MonitorCallback(Callback):
    """Keras's base of callbacks that watch a logged quantity (`monitor`) and decide what is an improvement.

    `mode="min"`/`"max"` say which way is better; `"auto"` means "min" for `loss`/`val_loss`, else
    the direction of the model's metric of that name (accuracies go up), else an error.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self) -> None:
        if self.mode == "min":
            self.monitor_op = _less
        elif self.mode == "max":
            self.monitor_op = _greater
        else:
            name = self.monitor.removeprefix("val_")
            if name == "loss":
                self.monitor_op = _less
            for metric in _model_metrics(self.model):
                if getattr(metric, "name", None) == name and hasattr(metric, "_direction"):
                    self.monitor_op = _greater if metric._direction == "up" else _less
            if self.monitor_op is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor}, but cannot tell whether that "
                    "metric should be maximized or minimized. Pass `mode='max'` to keep the highest value, or "
                    "`mode='min'` to keep the lowest."
                )
        if self.monitor_op is _less:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value, reference_value) -> bool:
        if reference_value is None:
            return True
        return self.monitor_op(monitor_value - self.min_delta, reference_value)


class EarlyStopping(MonitorCallback):
    """Stop training when `monitor` has not improved (by more than `min_delta`) for `patience` epochs.

    Keras 3's rules, mirrored exactly:
    - the first monitored value is always the first `best` (`baseline` is not a starting best);
      an improvement resets the wait only if it also beats `baseline`, when one is given;
    - training stops at the end of an epoch that does not improve if `wait >= patience`, never at
      epoch 0; `wait` counts the epochs since the last (baseline-beating) improvement, that epoch
      excluded (so with a baseline, improving epochs that miss it still use up the patience);
    - epochs before `start_from_epoch` are ignored;
    - with `restore_best_weights`, the best epoch's weights are put back at the end of training
      whenever they were recorded (also when training was not stopped early).
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = restore_best_weights
        self.best_weights = None
        self.best_epoch = 0
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        # The callback may be reused across `fit` calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()  # only now: the model's metrics exist once it has run
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def get_backup_state(self):
        keys = ("wait", "stopped_epoch", "best", "best_epoch", "best_weights")
        return {key: getattr(self, key) for key in keys}

    def set_backup_state(self, state) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            _print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                _print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs)}",
                stacklevel=2,
            )
        return value


def _batch_save_due(callback, batch) -> bool:
    """Whether an integer `save_freq` (ModelCheckpoint's, BackupAndRestore's) has come round at the
    end of `batch`: the batches seen since the last save, counted across epochs (batch numbers
    start again at 0 in each epoch), reach it."""
    if callback.save_freq == "epoch":
        return False
    last = callback._last_batch_seen
    added = batch + 1 if last is None or batch <= last else batch - last
    callback._batches_seen_since_last_saving += added
    callback._last_batch_seen = batch
    if callback._batches_seen_since_last_saving >= callback.save_freq:
        callback._batches_seen_since_last_saving = 0
        return True
    return False


class ModelCheckpoint(MonitorCallback):
    """Save the model (`model.save`, a `.keras` path) or its weights (`model.save_weights`, a `.weights.h5`
    path) at the end of every epoch, or every `save_freq` batches if it is an integer.

    `filepath` may hold format fields: `{epoch:02d}` (1-based), `{batch}` (1-based, batch-level
    saving) and any log name (`{val_loss:.2f}`). With `save_best_only`, a save happens only when
    `monitor` improves on the best so far (initially `initial_value_threshold`); if `monitor` is
    missing from the logs, Keras saves anyway (with a warning).
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        try:
            self.filepath = os.fspath(filepath)
        except TypeError:
            raise TypeError(f"ModelCheckpoint: `filepath` must be a path; received filepath={filepath!r}.") from None
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)):
            raise ValueError(
                f"ModelCheckpoint: unrecognized save_freq={save_freq!r}; expected 'epoch' or an integer number of batches."
            )
        if save_weights_only:
            if not self.filepath.endswith(".weights.h5"):
                raise ValueError(
                    "ModelCheckpoint: with `save_weights_only=True` the filepath must end in `.weights.h5` "
                    f"(Keras weights format); received filepath={self.filepath}"
                )
        elif not self.filepath.endswith(".keras"):
            raise ValueError(
                "ModelCheckpoint: the filepath must end in `.keras` (Keras model format), or pass "
                f"`save_weights_only=True` with a `.weights.h5` filepath; received filepath={self.filepath}"
            )

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def get_backup_state(self):
        return {
            "best": self.best,
            "batches_seen": self._batches_seen_since_last_saving,
            "last_batch_seen": self._last_batch_seen,
        }

    def set_backup_state(self, state) -> None:
        self.best = state["best"]
        self._batches_seen_since_last_saving = state["batches_seen"]
        self._last_batch_seen = state["last_batch_seen"]

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_on_batch(self, batch) -> bool:
        return _batch_save_due(self, batch)

    def _should_save_model(self, epoch, logs, filepath) -> bool:
        logs = logs or {}
        if not self.save_best_only:
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=2)
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn(
                f"Can save best model only when `monitor` is a scalar value. Received: {current}. "
                "Falling back to `save_best_only=False`.",
                stacklevel=2,
            )
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                _print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                    f"saving model to {filepath}"
                )
            self.best = current
            return True
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch, batch, logs) -> None:
        filepath = self._get_file_path(epoch, batch, logs or {})
        if not self._should_save_model(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise OSError(
                f"ModelCheckpoint: the filepath is an existing directory; specify a file path. Received: {filepath}"
            )
        directory = os.path.dirname(filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _get_file_path(self, epoch, batch, logs) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as error:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {error} is not `epoch`, '
                f"`batch` or one of the logs {sorted(logs)}."
            ) from None


# ----------------------------------------------------------------------------- learning rate, NaN


def _optimizer_of(model, callback: str):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(
            f"{callback}: the model's optimizer must have a `learning_rate` attribute; received "
            f"optimizer={optimizer!r}. Compile the model first."
        )
    return optimizer


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the optimizer's learning rate by `factor` when `monitor` has not improved (by more
    than `min_delta`) for `patience` epochs, never going below `min_lr`.

    Keras 3's rules, mirrored exactly:
    - at every epoch end the current rate is added to the logs as `learning_rate` (so `History`,
      the progress bar and any callback after this one see it; `monitor="learning_rate"` works);
    - while cooling down (the `cooldown` epochs after a reduction) the wait is held at 0 and the
      cooldown counter decreases; an improvement always resets the wait and becomes the best;
    - outside the cooldown a non-improving epoch adds 1 to the wait, and at `wait >= patience`
      the rate becomes `max(lr * factor, min_lr)` if it is still above `min_lr` (compared in
      float32); only an actual reduction starts the cooldown and resets the wait;
    - a missing `monitor` only warns;
    - an optimizer given a LearningRateSchedule has a rate that cannot be set: the reduction
      raises the optimizer's TypeError, as in Keras.
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
        **kwargs,
    ):
        if kwargs:
            # Keras 3 accepts and ignores any other keyword (Keras 2's `epsilon`, say).
            warnings.warn(f"ReduceLROnPlateau: ignoring unrecognized arguments {sorted(kwargs)}.", stacklevel=2)
        for argument, value in (("factor", factor), ("min_delta", min_delta), ("min_lr", min_lr)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"ReduceLROnPlateau: `{argument}` must be a number; received {argument}={value!r}.")
        for argument, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(
                    f"ReduceLROnPlateau: `{argument}` must be a number of epochs; received {argument}={value!r}."
                )
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(
                f"ReduceLROnPlateau: `factor` must be below 1.0 (new_lr = lr * factor); received factor={factor}."
            )
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self) -> None:
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self._reset()

    def get_backup_state(self):
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def set_backup_state(self, state) -> None:
        self.best, self.wait, self.cooldown_counter = state["best"], state["wait"], state["cooldown_counter"]

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()  # only now: the model's metrics exist once it has run
        logs = logs or {}
        optimizer = _optimizer_of(self.model, "ReduceLROnPlateau")
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs)}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
            return
        if self.in_cooldown():
            return
        self.wait += 1
        if self.wait >= self.patience and self._reduce(optimizer, epoch):
            self.cooldown_counter = self.cooldown
            self.wait = 0

    def _reduce(self, optimizer, epoch) -> bool:
        old_lr = float(optimizer.learning_rate)
        if not old_lr > np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
        return True


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of every epoch to `schedule(epoch, lr)`
    (`epoch` counts from 0, `lr` is the current rate as a Python float), or to `schedule(epoch)`
    for a one-argument function, as Keras does: the two-argument call is tried first and a
    TypeError from it means "call with the epoch alone".

    The result must be a float (a Python float, `np.float32` or `np.float64`, Keras's rule), else
    ValueError. At every epoch end the rate is added to the logs as `learning_rate`. An optimizer
    given a LearningRateSchedule has a rate that cannot be set: the optimizer's TypeError, as in Keras.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                "LearningRateScheduler: `schedule` must be a function of (epoch, lr) or (epoch) returning the "
                f"learning rate; received schedule={schedule!r}."
            )
        self.schedule = schedule
        self.verbose = verbose
        self._epoch_start = None  # (epoch, the rate before this epoch's schedule call)
        self._replay = None

    def get_backup_state(self):
        return None if self._epoch_start is None else list(self._epoch_start)

    def set_backup_state(self, state) -> None:
        # a fit resumed inside an epoch calls on_epoch_begin for it again: start from the rate it
        # started from then, so that a schedule of the current rate is not applied twice
        self._epoch_start = self._replay = (int(state[0]), float(state[1]))

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = _optimizer_of(self.model, "LearningRateScheduler")
        replay, self._replay = self._replay, None
        if replay is not None and replay[0] == epoch:
            optimizer.learning_rate = replay[1]
        self._epoch_start = (epoch, float(optimizer.learning_rate))
        try:
            learning_rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # a schedule of the epoch alone (Keras's older signature)
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(
                f"LearningRateScheduler: the `schedule` function must return a float; at epoch {epoch} it "
                f"returned {learning_rate!r} of type {type(learning_rate).__name__}."
            )
        optimizer.learning_rate = learning_rate
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        logs["learning_rate"] = float(_optimizer_of(self.model, "LearningRateScheduler").learning_rate)


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose logged `loss` is NaN or infinite.

    By default it prints a line and sets `model.stop_training` (the loop ends after that batch,
    still running validation, `on_epoch_end` and `on_train_end`, as Keras's does); with
    `raise_error=True` it raises RuntimeError at once instead.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or not (np.isnan(loss) or np.isinf(loss)):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. Terminating training."
            )
        _print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


# ----------------------------------------------------------------------------- backups


def atomic_durable_write(path):
    """`rankconv.saving.archive.atomic_write`: a temporary file beside `path`, flushed to disk,
    renamed over `path`, the rename made durable. A process killed at any point leaves either the
    previous file or the new one at `path`, never a mix."""
    from rankconv.saving.archive import atomic_write

    return atomic_write(path)


def _encode(value, arrays: list, where: str):
    """A JSON value for `value`, its NumPy arrays appended to `arrays` and replaced by references."""
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {"__array__": len(arrays) - 1}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError(f"{where}: a backup state's dict keys must be strings; received {list(value)!r}.")
        return {key: _encode(item, arrays, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"{where}: a backup state may hold dicts, lists, numbers, strings, None and NumPy arrays; "
        f"received {type(value).__name__}."
    )


def _decode(value, arrays: list):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {key: _decode(item, arrays) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item, arrays) for item in value]
    return value


def _generators(model) -> list:
    """(name, np.random.Generator) of every layer that draws from its own generator (a Dropout
    given a seed, a random preprocessing layer), nested models included, in a stable order."""
    found = []

    def visit(layer, prefix):
        for attribute, value in sorted(vars(layer).items()):
            if isinstance(value, np.random.Generator):
                found.append((f"{prefix}{layer.name}.{attribute}", value))
        for inner in getattr(layer, "layers", None) or ():
            visit(inner, f"{prefix}{layer.name}/")

    for layer in model.layers:
        visit(layer, "")
    return found


def _set_generator_state(generator, state, name: str) -> None:
    kind = type(generator.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != kind:
        received = state.get("bit_generator") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"The backup's state of random generator {name} is for {received}; the generator is a {kind}.")
    generator.bit_generator.state = state


def _finite_loss(logs) -> bool:
    loss = (logs or {}).get("loss")
    return loss is None or bool(np.isfinite(loss))


def _finite_weights(model) -> bool:
    return all(np.isfinite(v.value).all() for v in model.weights if v.value.dtype.kind == "f")


class BackupAndRestore(Callback):
    """Back up the whole training state so that a `fit` killed half-way resumes where it was.

    Keras 3's callback and arguments: at the end of every epoch (`save_freq="epoch"`) or every
    `save_freq` batches, the state is written to `backup_dir`; when the same `fit` runs again (same
    model, data, batch size and callbacks, seeded), `on_train_begin` puts it back and training
    continues from there; at the end of training the backup is deleted (`delete_checkpoint`).
    With `double_checkpoint`, the previous backup is kept beside the latest one
    (`latest.weights.h5.bkp`) and used if the latest cannot be read.

    What rankconv adds to Keras's semantics:
    - the backup holds everything the remaining updates depend on: weights, optimizer state (with
      lazily decayed rows as they are), the random generators (the global one and the layers'
      own), the epoch, and inside an epoch the batch reached, the epoch's sample order and the
      running loss and metrics, and the state of the other callbacks (`get_backup_state`) — so a
      resumed run ends with exactly the weights of a run never interrupted. Keras restarts an
      interrupted epoch from its first batch; rankconv continues at the batch after the backup;
    - it is one file, `backup_dir/latest.weights.h5` (a Keras weights file, the model's weights
      and optimizer state where Keras puts them, plus a `rankconv_backup` group), written to a
      temporary file, flushed to disk and renamed: a kill at any moment leaves the previous
      backup or the new one, both usable;
    - no backup is written of a state whose loss or weights are NaN or infinite; if training ends
      with such a loss or weights (`TerminateOnNaN` stopped it), the last good state is put back
      (the last backup: with `save_freq="epoch"`, the end of the last good epoch; the state at
      the start of `fit` if there is none yet);
    - `delete_checkpoint` removes the files this callback writes, then `backup_dir` if it is
      empty (Keras removes the whole folder).

    The model must be built before `fit` (as in Keras). A callback of your own that draws from the
    global random generator in `on_epoch_begin` makes a resume in the middle of an epoch differ.
    """

    FILE = "latest.weights.h5"
    GROUP = "rankconv_backup"
    FORMAT = "rankconv.callbacks.BackupAndRestore"

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(
                f"BackupAndRestore: `backup_dir` must be a folder path; received backup_dir={backup_dir!r}."
            )
        try:
            self.backup_dir = os.fspath(backup_dir)
        except TypeError:
            raise TypeError(
                f"BackupAndRestore: `backup_dir` must be a path; received backup_dir={backup_dir!r}."
            ) from None
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(
                f"BackupAndRestore: `save_freq` must be 'epoch' or a positive number of batches; "
                f"received save_freq={save_freq!r}."
            )
        self.save_freq = save_freq
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._weights_path = os.path.join(self.backup_dir, self.FILE)
        self._previous_path = f"{self._weights_path}.bkp"
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._siblings: list = []  # the other callbacks of the fit (set by CallbackList)
        self._start_state = None  # weights and optimizer state at the start of fit, while no backup exists
        self._warned_non_finite = False

    # -- restoring ------------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._warned_non_finite = False
        if not getattr(self.model, "built", True):
            raise ValueError(
                "BackupAndRestore: the model must be built before `fit` (as in Keras): give it an `Input`, or call "
                f"it on a batch of data first. Model '{self.model.name}' is not built."
            )
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_weights)  # its state has somewhere to go
        for stale in glob.glob(os.path.join(glob.escape(self.backup_dir), ".rankconv-*.partial")):
            with contextlib.suppress(OSError):
                os.remove(stale)  # a write a kill interrupted
        path = self._readable_backup()
        if path is None:
            self._start_state = (self.model.get_weights(), optimizer.state_values())
            return
        self._start_state = None
        self._restore(path)

    def _readable_backup(self):
        """The backup file to resume from, or None: the latest; with `double_checkpoint`, if the
        latest cannot be read, the previous one (copied over the latest first, as Keras does, so
        that the next backup does not keep the damaged file as the previous one)."""
        from rankconv.saving.archive import ModelFileError

        if not os.path.exists(self._weights_path):
            return None
        if self.double_checkpoint and os.path.exists(self._previous_path):
            try:
                self._read_state(self._weights_path)
            except (OSError, ModelFileError) as error:
                warnings.warn(f"BackupAndRestore: {error} Resuming from the previous backup.", stacklevel=3)
                with atomic_durable_write(self._weights_path) as temporary:
                    shutil.copyfile(self._previous_path, temporary)
        return self._weights_path

    def _read_state(self, path):
        """The backup's training state (JSON with arrays put back), checked before anything is set."""
        import h5py

        from rankconv.saving.archive import MAX_CONFIG_BYTES, ModelFileError, parse_json

        try:
            f = h5py.File(path, "r")
        except OSError as error:
            raise ModelFileError(f"{path} is not a readable backup ({error}).") from None
        with f:
            group = f.get(self.GROUP)
            if not isinstance(group, h5py.Group) or not isinstance(group.get("state"), h5py.Dataset):
                raise ModelFileError(f"{path} has no '{self.GROUP}/state': it is not a rankconv training backup.")
            arrays_group = group.get("arrays")
            if arrays_group is not None and not isinstance(arrays_group, h5py.Group):
                raise ModelFileError(f"{path}:{self.GROUP}/arrays must be a group.")
            text = group["state"]
            if text.dtype != np.uint8 or text.ndim != 1 or text.shape[0] > MAX_CONFIG_BYTES:
                raise ModelFileError(
                    f"{path}:{self.GROUP}/state must be UTF-8 JSON bytes (at most {MAX_CONFIG_BYTES})."
                )
            state = parse_json(text[()].tobytes(), f"{path}:{self.GROUP}/state")
            if not isinstance(state, dict) or state.get("format") != self.FORMAT or state.get("version") != 1:
                raise ModelFileError(f"{path}:{self.GROUP}/state is not a version-1 {self.FORMAT} state.")
            count = int(state.get("arrays", 0))
            arrays = []
            for i in range(count):
                link = arrays_group.get(str(i), getlink=True) if arrays_group is not None else None
                if not isinstance(link, h5py.HardLink):
                    raise ModelFileError(f"{path}:{self.GROUP}/arrays/{i} is missing or not a plain dataset.")
                dataset = arrays_group[str(i)]
                if not isinstance(dataset, h5py.Dataset) or dataset.is_virtual or dataset.external:
                    raise ModelFileError(f"{path}:{self.GROUP}/arrays/{i} must be a dataset stored in the file.")
                if dataset.dtype.kind not in "biuf":
                    raise ModelFileError(
                        f"{path}:{self.GROUP}/arrays/{i} holds {dataset.dtype} data; expected numbers."
                    )
                arrays.append(dataset[()])
        return _decode(state, arrays)

    def _restore(self, path) -> None:
        from rankconv import utils
        from rankconv.models.training import ResumePoint
        from rankconv.saving import weights as weights_io

        state = self._read_state(path)
        generators = dict(_generators(self.model))
        saved_generators = state["rng"]["layers"]
        if set(saved_generators) != set(generators):
            raise ValueError(
                f"The backup in {self.backup_dir} was taken of a model whose layers draw from the random generators "
                f"{sorted(saved_generators)}; this model's are {sorted(generators)}. Resume the same model, or "
                "remove the backup."
            )
        progress, current = state["progress"], self.model._fit_progress
        if (progress["samples"], progress["batch_size"]) != (current.samples, current.batch_size):
            raise ValueError(
                f"The backup in {self.backup_dir} was taken in a fit over {progress['samples']} samples in batches of "
                f"{progress['batch_size']}; this fit has {current.samples} samples in batches of {current.batch_size}. "
                "Resume with the same data and batch size, or remove the backup."
            )
        optimizer = self.model.optimizer
        if state["optimizer_variables"] != len(optimizer.variables):
            raise ValueError(
                f"The backup in {self.backup_dir} holds the state of an optimizer with {state['optimizer_variables']} "
                f"variables; this fit's {type(optimizer).__name__} has {len(optimizer.variables)}. Resume with the "
                "same model and optimizer settings, or remove the backup."
            )
        weights_io.read(self.model, path, path)  # weights and optimizer state, every shape checked first
        optimizer.restore_lazy_rows_state(state["optimizer_rows"])
        _set_generator_state(utils.random_generator(), state["rng"]["global"], "the global generator")
        for name, generator in generators.items():
            _set_generator_state(generator, saved_generators[name], name)
        self._last_batch_seen = progress["batch"]
        self.model._resume_point = ResumePoint(
            epoch=progress["epoch"],
            step=progress["step"],
            order=progress["order"],
            loss_state=progress["loss_state"],
            metric_shapes=None if progress["metric_shapes"] is None else tuple(map(tuple, progress["metric_shapes"])),
            metric_states=progress["metric_states"],
            restore=lambda: self._restore_callbacks(state["callbacks"]),
        )

    def _restore_callbacks(self, saved: list) -> None:
        by_position = {entry["position"]: entry for entry in saved}
        for position, callback in enumerate(self._siblings):
            entry = by_position.get(position)
            if entry is None:
                continue
            if entry["class"] != type(callback).__name__:
                warnings.warn(
                    f"BackupAndRestore: the backup holds the state of a {entry['class']} callback at position "
                    f"{position}, where this fit has a {type(callback).__name__}; its state is not restored.",
                    stacklevel=2,
                )
                continue
            callback.set_backup_state(entry["state"])

    # -- saving ---------------------------------------------------------------------------------

    def on_epoch_end(self, epoch, logs=None):
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0, logs)

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            progress = self.model._fit_progress
            self._save(progress.epoch, progress.step, logs)

    def _should_save_on_batch(self, batch) -> bool:
        return _batch_save_due(self, batch)

    def _save(self, epoch: int, step: int, logs) -> None:
        """Back up the state from which training continues at batch `step` of `epoch`."""
        if not (_finite_loss(logs) and _finite_weights(self.model)):
            if not self._warned_non_finite:
                _print("BackupAndRestore: the loss or the weights are NaN or infinite; no backup is written of them.")
                self._warned_non_finite = True
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._weights_path):
            with atomic_durable_write(self._previous_path) as temporary:
                shutil.copyfile(self._weights_path, temporary)
        arrays: list = []
        state = _encode(self._state(epoch, step), arrays, "state")
        state.update(format=self.FORMAT, version=1, arrays=len(arrays))
        text = json.dumps(state).encode("utf-8")
        with atomic_durable_write(self._weights_path) as temporary:
            self._write(temporary, text, arrays)
        self._start_state = None  # the backup is now the last good state

    def _state(self, epoch: int, step: int) -> dict:
        from rankconv import utils

        model, progress = self.model, self.model._fit_progress
        inside = step > 0
        metrics = model._metrics if inside else None
        callbacks = []
        for position, callback in enumerate(self._siblings):
            own = callback.get_backup_state()
            if own is not None:
                callbacks.append({"position": position, "class": type(callback).__name__, "state": own})
        return {
            "progress": {
                "epoch": epoch,
                "step": step,
                "batch": self._last_batch_seen,
                "samples": progress.samples,
                "batch_size": progress.batch_size,
                "order": progress.order if inside else None,
                "loss_state": list(progress.loss_tracker.variables) if inside else None,
                "metric_shapes": model._metric_shapes if metrics else None,
                "metric_states": [list(m.variables) for m in metrics] if metrics else None,
            },
            "rng": {
                "global": utils.random_generator().bit_generator.state,
                "layers": {name: generator.bit_generator.state for name, generator in _generators(model)},
            },
            "optimizer_rows": model.optimizer.lazy_rows_state(),
            "optimizer_variables": len(model.optimizer._state_variables()),  # (`variables` would settle rows)
            "callbacks": callbacks,
        }

    def _write(self, path, text: bytes, arrays: list) -> None:
        import h5py

        from rankconv.saving import weights as weights_io

        with h5py.File(path, "w") as f:
            weights_io.write_groups(f, self.model)
            group = f.create_group(self.GROUP)
            group.create_dataset("state", data=np.frombuffer(text, dtype=np.uint8))
            stored = group.create_group("arrays")
            for i, array in enumerate(arrays):
                stored.create_dataset(str(i), data=np.asarray(array))

    # -- the end --------------------------------------------------------------------------------

    def on_train_end(self, logs=None):
        if not (_finite_loss(logs) and _finite_weights(self.model)):
            self._put_back_last_good_state()
        if self.delete_checkpoint:
            self.remove(self.backup_dir)
        self._start_state = None

    @classmethod
    def remove(cls, backup_dir) -> None:
        """Delete the backup files in `backup_dir` (and any interrupted write), then the folder if
        nothing else is in it."""
        backup_dir = os.fspath(backup_dir)
        weights = os.path.join(backup_dir, cls.FILE)
        stale = glob.glob(os.path.join(glob.escape(backup_dir), ".rankconv-*.partial"))
        for path in (weights, f"{weights}.bkp", *stale):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        with contextlib.suppress(OSError):
            os.rmdir(backup_dir)  # only if empty

    def _put_back_last_good_state(self) -> None:
        from rankconv.saving import weights as weights_io

        if os.path.exists(self._weights_path):
            weights_io.read(self.model, self._weights_path, self._weights_path)
            _print("BackupAndRestore: the loss or the weights are NaN or infinite; the last backup is put back.")
        elif self._start_state is not None:
            weights, optimizer_state = self._start_state
            self.model.set_weights(weights)
            self.model.optimizer.set_weights(optimizer_state)
            _print(
                "BackupAndRestore: the loss or the weights are NaN or infinite; the weights from the start of "
                "training are put back (no backup was taken yet)."
            )


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file, one row per epoch, as Keras does.

    Columns: `epoch` (0-based), then the log names sorted; if the first epoch has no `val_` logs,
    `val_<name>` columns are added for every log anyway (filled with "NA"). Rows are written with
    Python's `csv` "excel" dialect (so lines end in "\\r\\n") and flushed at once, so an interrupted
    run leaves every finished epoch in the file. With `append=True`, rows go after an existing file's,
    and the header is written only if the file was empty.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        try:
            self.filename = os.fspath(filename)
        except TypeError:
            raise TypeError(f"CSVLogger: `filename` must be a path; received filename={filename!r}.") from None
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode)  # closed in on_train_end
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.csv_file is None or self.csv_file.closed:
            raise RuntimeError("CSVLogger: `on_epoch_end` was called before `on_train_begin` opened the file.")
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        if self.writer is None:
            dialect = type("CSVLoggerDialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch", *self.keys], dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _csv_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _csv_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value


# ----------------------------------------------------------------------------- progress bar


def _format_time(time_per_unit: float, unit_name: str) -> str:
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1e3:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1e6:.0f}us/{unit_name}"


def _format_eta(eta: float) -> str:
    if eta > 3600:
        return f"{int(eta // 3600)}:{int((eta % 3600) // 60):02d}:{int(eta % 60):02d}"
    if eta > 60:
        return f"{int(eta // 60)}:{int(eta % 60):02d}"
    return f"{int(eta)}s"


class ProgressBar:
    """Keras's `Progbar`: `update(current, values)` shows `current/target`, a bar, the ETA (the elapsed
    time once finished), the time per step and the metric values.

    `verbose=1`: on a terminal the line is redrawn in place with "\\r" (at most every `interval`
    seconds, and always when finishing), in colour; on any other stream (a file, a pipe, a CI log)
    only the finished line is written, without escape codes: one line per epoch. `verbose=2`: one
    plain line when finished, without the bar. `verbose=0`: nothing.

    Metric values are averaged over the steps since the bar started unless their name is in
    `stateful_metrics` (or, if `stateless_metrics` is given instead, unless it is not in it);
    `ProgbarLogger` shows every value as logged, since Keras's logs are running means already.
    """

    def __init__(
        self,
        target,
        width=20,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        stateless_metrics=None,
        unit_name="step",
        stream=None,
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("ProgressBar: give at most one of `stateful_metrics` and `stateless_metrics`.")
        if verbose not in (0, 1, 2):
            raise ValueError(f"ProgressBar: `verbose` must be 0, 1 or 2; received verbose={verbose!r}.")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stream = stream
        if stateless_metrics is not None:
            self.stateful_metrics, self.stateless_metrics = None, set(stateless_metrics)
        else:
            self.stateful_metrics, self.stateless_metrics = set(stateful_metrics or ()), None
        out = self._stream()
        self._dynamic_display = bool(getattr(out, "isatty", None) and out.isatty())
        self._seen_so_far = 0
        self._values: dict[str, list] = {}
        self._values_order: list[str] = []
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0

    def _stream(self):
        return self.stream if self.stream is not None else sys.stdout

    def update(self, current, values=None, finalize=None) -> None:
        """Show step `current`; `values` is a list of `(name, value)`; `finalize` ends the line
        (default: `current >= target`)."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or []:
            if name not in self._values_order:
                self._values_order.append(name)
            if self.stateful_metrics is not None:
                averaged = name not in self.stateful_metrics
            else:
                averaged = name in self.stateless_metrics
            if averaged and not finalize:
                weight = max(current - self._seen_so_far, 1)
                if name not in self._values:
                    self._values[name] = [value * weight, weight]
                else:
                    self._values[name][0] += value * weight
                    self._values[name][1] += weight
            else:
                self._values[name] = [value, 1]
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._step_duration(current, now)
        if self.verbose == 1:
            if not finalize and (not self._dynamic_display or now - self._last_update < self.interval):
                return
            self._draw(current, now, time_per_unit, finalize)
        elif self.verbose == 2 and finalize and self.target:
            digits = int(math.log10(self.target)) + 1
            line = f"{current:{digits}d}/{self.target} - {now - self._start:.0f}s -"
            line += _format_time(time_per_unit, self.unit_name)
            for name in self._values_order:
                # Keras's verbose=2 line tests `avg > 1e-3` (not its absolute value).
                line += f" - {name}: {self._format_value(name, signed=True)}"
            _print(line, stream=self._stream())
        self._last_update = now

    def _format_value(self, name: str, signed: bool = False) -> str:
        total, count = self._values[name]
        if not isinstance(total, (float, int, np.number)) or isinstance(total, bool):
            try:
                total = float(np.mean(total))
            except (TypeError, ValueError):
                return f"{total}"
        average = total / max(1, count)
        return f"{average:.4f}" if (average if signed else abs(average)) > 1e-3 else f"{average:.4e}"

    def _draw(self, current, now, time_per_unit, finalize) -> None:
        colour = self._dynamic_display

        def style(text, code):
            return f"\x1b[{code}m{text}\x1b[0m" if colour else text

        if self.target:
            digits = int(math.log10(self.target)) + 1
            count = f"{current:{digits}d}/{self.target}"
            done = min(int(self.width * float(current) / self.target), self.width)
            bar = style(count, 1) + " "
            if done > 0:
                bar += style("━" * done, 32)
            bar += style("━" * (self.width - done), 37)
            plain_bar = len(count) + 1 + self.width
        else:
            bar = f"{current:7d}/Unknown"
            plain_bar = len(bar)
        if self.target and not finalize:
            timing = _format_eta(time_per_unit * (self.target - current))
        else:
            timing = f"{now - self._start:.0f}s"
        info = " " + style(timing, 1) + _format_time(time_per_unit, self.unit_name)
        plain_info = 1 + len(timing) + len(_format_time(time_per_unit, self.unit_name))
        for name in self._values_order:
            item = f" - {name}: {self._format_value(name)}"
            info += item
            plain_info += len(item)
        width = plain_bar + plain_info
        message = bar + info
        if colour:
            # Redraw over the previous line, blanking what the new one does not cover.
            message = "\r" + message + " " * max(self._prev_total_width - width, 0)
        if finalize or not colour:
            message += "\n"
        _print(message, line_break=False, stream=self._stream())
        self._prev_total_width = width

    def add(self, n, values=None) -> None:
        self.update(self._seen_so_far + n, values)

    def _step_duration(self, current, now) -> float:
        """Seconds per step, leaving out the first step (compilation, warm-up) once there are others."""
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit


Progbar = ProgressBar  # Keras's name (keras.utils.Progbar)


class ProgbarLogger(Callback):
    """The progress bar of `fit`, `evaluate` and `predict`, driven by the callback hooks.

    Reads `params["verbose"]` (0 silent, 1 bar, 2 one line per epoch; "auto" is 1),
    `params["epochs"]` and `params["steps"]` (steps per epoch, None if unknown). In `fit` it prints
    "Epoch i/N" (when N > 1) and one bar per epoch whose final line includes the validation logs;
    the validation run inside `fit` draws no bar of its own.
    """

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs=None):
        self._called_in_fit = True  # validation inside fit stays silent

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_predict_begin(self, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            _print(f"Epoch {epoch + 1}/{self.epochs}", stream=self.stream)

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._update_progbar(batch, None)  # predictions are not shown

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(logs)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = ProgressBar(
                target=self.target, verbose=self.verbose, unit_name="step", stateless_metrics=set(), stream=self.stream
            )

    def _update_progbar(self, batch, logs=None):
        self._maybe_init_progbar()
        self.seen = batch + 1  # 1-based
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)
