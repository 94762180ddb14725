"""Keras's training API on NumPy: compile, fit, evaluate, predict and the *_on_batch forms.

One training step: watch the trainable weights on a tape, run the model with `training=True`,
add the layers' regularization penalties to the loss, take the gradients, let the optimizer
update the weights in place (it then applies their constraints).

Threads: one model may serve `predict`, `evaluate` and calls from several threads at once, but
training and inference on the same model at once are refused with a RuntimeError (the optimizer
updates the weights in place, so a concurrent prediction would read half-updated weights). While
`fit` or `train_on_batch` runs, no other thread may start `predict`/`evaluate` on the model, nor
compute with its weights at all (`autodiff.training_claim`); `fit` does not start while another
thread is inside `predict`/`evaluate`. Inference from the training thread itself (validation, a
callback's `predict`) is fine.

Resuming: `fit` keeps its progress in `model._fit_progress` (epoch, next step, the epoch's sample
order, the running loss tracker) for `callbacks.BackupAndRestore`, which may leave a
`_resume_point` at `on_train_begin` for `fit` to continue from (the epoch and step reached, with
the order and the running metrics of that epoch).
"""

from __future__ import annotations

import collections
import contextlib
import math
import threading
from dataclasses import dataclass

import numpy as np

from rankconv import losses as losses_module
from rankconv import ops, utils
from rankconv.ops.autodiff import GradientTape, training_claim
from rankconv.ops.conv_common import products_on_workers

# Guards every model's record of the threads training it and running inference on it.
_usage_lock = threading.Lock()


@dataclass
class FitProgress:
    """Where a running `fit` is: what `callbacks.BackupAndRestore` saves.

    `epoch` is the epoch running (0-based) and `step` the next batch to train in it (`steps`
    once its batches are done); `order` the epoch's order of the samples; `loss_tracker` the
    running mean of the loss over the epoch's batches so far."""

    epoch: int
    step: int
    steps: int
    samples: int
    batch_size: int
    order: np.ndarray | None
    loss_tracker: object


@dataclass
class ResumePoint:
    """Where a `fit` continues (left by `BackupAndRestore.on_train_begin`): at batch `step` of
    `epoch` — `step` 0 starts the epoch afresh; otherwise `order` is the epoch's sample order
    and `loss_state` / `metric_states` the running means of its batches so far. `restore` (if
    given) runs once every callback's `on_train_begin` has (so their own resets come first)."""

    epoch: int
    step: int = 0
    order: np.ndarray | None = None
    loss_state: list | None = None
    metric_shapes: tuple | None = None
    metric_states: list | None = None
    restore: object = None


def _as_list(data):
    if data is None:
        return None
    if isinstance(data, dict):
        return data
    return list(data) if isinstance(data, (list, tuple)) else [data]


def _num_samples(arrays, argument):
    for a in arrays:
        if np.ndim(a) == 0:
            raise ValueError(f"`{argument}` must hold arrays with a batch axis; received a scalar.")
    sizes = {len(a) for a in arrays}
    if len(sizes) > 1:
        raise ValueError(f"All arrays in `{argument}` must have the same number of samples; received {sorted(sizes)}.")
    return sizes.pop()


def _take(data, index):
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: v[index] for k, v in data.items()}
    return [a[index] for a in data]


def _array_batch(x, y, sample_weight, index):
    """Samples `index` (an array or a slice) of prepared arrays: `(x, y, sample_weight)`."""
    return _take(x, index), y[index], None if sample_weight is None else sample_weight[index]


def _refuse_with_dataset(method: str, **given) -> None:
    """A PyDataset brings its own batches: Keras refuses arguments that would also describe them."""
    for name, value in given.items():
        if value is not None:
            shown = f"={value!r}" if np.ndim(value) == 0 else f" (an array of shape {np.shape(value)})"
            raise ValueError(
                f"`{method}` received a PyDataset and `{name}`{shown}; a PyDataset's batches carry their own "
                f"labels, weights and size, so `{name}` must not be given."
            )


def _dataset_length(dataset) -> int:
    n = len(dataset)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{type(dataset).__name__} must have at least one batch; its __len__ returned {n!r}.")
    return int(n)


def _unwrap(batch):
    if isinstance(batch, list) and len(batch) == 1:
        return batch[0]
    return batch


class Trainer:
    def __init__(self):
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._metric_specs = []
        self._metrics = None
        self._metric_shapes = None
        self._compile_config = None
        self._fit_progress = None
        self._resume_point = None

    # -- compile ----------------------------------------------------------------------------

    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly=False,
        steps_per_execution=1,
        jit_compile="auto",
        auto_scale_loss=True,
    ):
        from rankconv import optimizers

        if loss_weights is not None or weighted_metrics is not None:
            raise ValueError("`loss_weights` and `weighted_metrics` are not supported yet.")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses_module.get(loss)
        self._loss_identifier = loss
        if isinstance(metrics, str):
            raise TypeError(f"`metrics` must be a list, e.g. metrics=[{metrics!r}]; received the string {metrics!r}.")
        self._metric_specs = list(metrics or [])
        self._metrics = None
        self.compiled = True
        self._compile_config = {"optimizer": optimizer, "loss": loss, "metrics": metrics}

    @property
    def metrics(self) -> list:
        """The compiled metric objects (built at the first batch, when the label shapes are known)."""
        return list(self._metrics or [])

    def _require_compiled(self, method):
        if not self.compiled:
            raise ValueError(f"You must call `compile(optimizer, loss)` before `{method}`.")

    def _build_metrics(self, y_true, y_pred):
        if self._metrics is not None:
            return
        self._build_metrics_from_shapes(np.shape(y_true), np.shape(y_pred))

    def _build_metrics_from_shapes(self, true_shape, pred_shape):
        from rankconv import metrics as metrics_module

        # the shapes choose the metrics (sparse or categorical accuracy...): kept for a resumed fit
        self._metric_shapes = (tuple(true_shape), tuple(pred_shape))
        self._metrics = [metrics_module.get_metric(spec, true_shape, pred_shape) for spec in self._metric_specs]

    def get_compile_config(self):
        if not self.compiled:
            return None
        from rankconv import objects

        loss = self._loss_identifier if isinstance(self._loss_identifier, str) else objects.serialize(self.loss)
        return {
            "optimizer": objects.serialize(self.optimizer),
            "loss": loss,
            "loss_weights": None,
            "metrics": self._compile_config["metrics"] if all(isinstance(m, str) for m in self._metric_specs) else None,
            "weighted_metrics": None,
            "run_eagerly": False,
            "steps_per_execution": 1,
            # what compile() was given, as Keras keeps it: each backend resolves "auto" when it loads
            # the file (eager on torch, XLA on JAX: a training step there ~6x faster than with False)
            "jit_compile": "auto",
        }

    # -- threads ----------------------------------------------------------------------------

    def _usage(self):
        """(thread training the model or None, Counter of threads inside inference calls)."""
        if not hasattr(self, "_inference_threads"):
            self._training_thread, self._inference_threads = None, collections.Counter()
        return self._training_thread, self._inference_threads

    @contextlib.contextmanager
    def _inference_scope(self, method: str):
        """Run an inference call (`predict`, `evaluate`, ...): refused while another thread trains
        the model; several threads may be inside at once."""
        me = threading.get_ident()
        with _usage_lock:
            trainer, inside = self._usage()
            if trainer is not None and trainer != me:
                raise RuntimeError(
                    f"`{method}` was called on model '{self.name}' while another thread is training it (`fit` or "
                    "`train_on_batch`). rankconv refuses training and inference on the same model at once: the "
                    "optimizer updates the weights in place, so the results would mix weights of different steps. "
                    "Wait for training to finish, or predict with a separate copy of the model (e.g. "
                    "`rankconv.saving.load_model` of a saved file)."
                )
            inside[me] += 1
        try:
            yield
        finally:
            with _usage_lock:
                inside[me] -= 1
                if not inside[me]:
                    del inside[me]

    @contextlib.contextmanager
    def _training_scope(self, method: str):
        """Run a training call (`fit`, `train_on_batch`): refused while another thread trains the
        model or runs inference on it; while inside, other threads cannot compute with its weights."""
        me = threading.get_ident()
        with _usage_lock:
            trainer, inside = self._usage()
            if trainer is not None and trainer != me:
                raise RuntimeError(
                    f"`{method}` was called on model '{self.name}' while another thread is training it; a model "
                    "can be trained by one thread at a time."
                )
            others = sum(1 for thread in inside if thread != me)  # threads (a predict nests a __call__)
            if others:
                raise RuntimeError(
                    f"`{method}` was called on model '{self.name}' while inference calls (`predict`, `evaluate`) from {others} other thread(s) "
                    "run on it. rankconv refuses training and inference on the same "
                    "model at once: the optimizer updates the weights in place. Wait for them to finish."
                )
            nested = trainer == me
            self._training_thread = me
        try:
            if nested:
                yield
            else:
                with training_claim(self.weights):
                    yield
        finally:
            if not nested:
                with _usage_lock:
                    self._training_thread = None

    # -- steps ------------------------------------------------------------------------------

    def _total_loss(self, y, y_pred, sample_weight):
        loss = self.loss(y, y_pred, sample_weight)
        for penalty in self.losses:
            loss = ops.add(loss, penalty)
        return loss

    @staticmethod
    def _check_batch_size(batch_size):
        if batch_size is None:
            return 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"`batch_size` must be a positive integer; received batch_size={batch_size!r}.")
        return int(batch_size)

    def _train_step(self, x, y, sample_weight=None):
        variables = self.trainable_weights
        with products_on_workers():  # one thread budget for the step (see there)
            with GradientTape(variables) as tape:
                y_pred = self(_unwrap(x), training=True)
                loss = self._total_loss(y, y_pred, sample_weight)
            grads = tape.gradient(loss, sparse_rows=True)
            self.optimizer.apply(grads, variables)
        return float(ops.convert_to_numpy(loss)), ops.convert_to_numpy(y_pred)

    def _test_step(self, x, y, sample_weight=None):
        with products_on_workers():
            y_pred = self(_unwrap(x), training=False)
            loss = self._total_loss(y, y_pred, sample_weight)
        return float(ops.convert_to_numpy(loss)), ops.convert_to_numpy(y_pred)

    def _predict_batch(self, x):
        with products_on_workers():
            return np.asarray(ops.convert_to_numpy(self(_unwrap(x), training=False)))

    def _update_metrics(self, loss_tracker, loss, count, y, y_pred, sample_weight):
        loss_tracker.update_state(loss, sample_weight=count)
        self._build_metrics(y, y_pred)
        for metric in self._metrics:
            # as Keras: `metrics` are unweighted (only `weighted_metrics`, not supported yet, use sample_weight)
            metric.update_state(y, y_pred)

    def _logs(self, loss_tracker, prefix="", metrics=None):
        logs = {f"{prefix}loss": loss_tracker.result()}
        for metric in (self._metrics or []) if metrics is None else metrics:
            logs[f"{prefix}{metric.name}"] = metric.result()
        return logs

    def _reset_metrics(self):
        for metric in self._metrics or []:
            metric.reset_state()

    # -- data -------------------------------------------------------------------------------

    def _prepare(self, x, y, sample_weight, argument="x"):
        if x is None:
            raise ValueError(f"`{argument}` is required.")
        x = _as_list(x)
        arrays = list(x.values()) if isinstance(x, dict) else x
        arrays = [np.asarray(a) for a in arrays]
        arrays = self._match_input_ranks(arrays, list(x.keys()) if isinstance(x, dict) else None)
        if isinstance(x, dict):
            x = dict(zip(x.keys(), arrays))
        else:
            x = arrays
        n = _num_samples(arrays, argument)
        if y is not None:
            if isinstance(y, (dict, list, tuple)) and any(
                isinstance(v, np.ndarray) for v in (y.values() if isinstance(y, dict) else y)
            ):
                raise ValueError(
                    "Models with several outputs cannot be trained or evaluated yet; `y` must be one array."
                )
            y = np.asarray(y)
            if y.ndim == 0:
                raise ValueError("`y` must be an array of labels with a batch axis; received a scalar.")
            if y.dtype.kind not in "biuf":
                raise TypeError(f"`y` must hold numbers (class ids or targets); received dtype {y.dtype}.")
            if len(y) != n:
                raise ValueError(f"`x` has {n} samples but `y` has {len(y)}; they must match.")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float32)
            if sample_weight.shape != (n,):
                raise ValueError(f"`sample_weight` must have shape ({n},); received {sample_weight.shape}.")
        return x, y, sample_weight, n

    def _match_input_ranks(self, arrays, names=None):
        """Keras's rule (`Functional._adjust_input_rank`): an array one axis short of its model input
        gains a last axis of size 1 when the input's last size is 1 ((N, 28, 28) for an Input of
        (28, 28, 1)); one with an extra last axis of size 1 loses it. Other shapes stay as they are
        (the model then says what it expected)."""
        inputs = getattr(self, "inputs", None)
        if inputs:
            references = [(t.node.layer.name, tuple(t.shape)) for t in inputs]
        elif getattr(self, "_build_input_shape", None) is not None:
            references = [(None, tuple(self._build_input_shape))]  # a built Sequential model
        else:
            return arrays
        if names is not None:
            by_name = dict(references)
            expected = [by_name.get(name) for name in names]
        elif len(arrays) == len(references):
            expected = [shape for _, shape in references]
        else:
            return arrays
        adjusted = []
        for array, shape in zip(arrays, expected):
            if shape is not None and all(d is None or isinstance(d, int) for d in shape):
                if array.ndim == len(shape) + 1 and array.shape[-1] == 1:
                    array = array[..., 0]
                elif array.ndim == len(shape) - 1 and shape[-1] == 1:
                    array = array[..., np.newaxis]
            adjusted.append(array)
        return adjusted

    # -- fit --------------------------------------------------------------------------------

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ):
        from rankconv import callbacks as callbacks_module
        from rankconv import metrics as metrics_module

        self._require_compiled("fit")
        if class_weight is not None or steps_per_epoch is not None or validation_steps is not None:
            raise ValueError("`class_weight`, `steps_per_epoch` and `validation_steps` are not supported yet.")
        dataset = x if isinstance(x, utils.PyDataset) else None
        if dataset is not None:
            _refuse_with_dataset("fit", y=y, batch_size=batch_size, sample_weight=sample_weight)
            if validation_split:
                raise ValueError("`validation_split` cannot split a PyDataset; give `validation_data` instead.")
            n = _dataset_length(dataset)
            batch_size = 1  # a step trains one of the dataset's batches: `order` orders the batches
        elif y is None:
            raise ValueError("`fit` needs labels `y`.")
        else:
            batch_size = self._check_batch_size(batch_size)
        if isinstance(validation_freq, bool) or not isinstance(validation_freq, int) or validation_freq < 1:
            raise ValueError(f"`validation_freq` must be a positive integer; received {validation_freq!r}.")
        if dataset is None:
            x, y, sample_weight, n = self._prepare(x, y, sample_weight)
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"`validation_split` must be in (0, 1); received {validation_split}.")
            # Keras takes the last fraction of the data, before any shuffling
            split = int(n * (1 - validation_split))
            validation_data = (
                _take(x, slice(split, None)),
                y[split:],
                None if sample_weight is None else sample_weight[split:],
            )
            x, y = _take(x, slice(0, split)), y[:split]
            sample_weight = None if sample_weight is None else sample_weight[:split]
            n = split
        if n == 0:
            raise ValueError("`fit` received no training samples.")
        if isinstance(validation_data, utils.PyDataset):
            validation_data = (validation_data, None)
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight), or a PyDataset."
                )
            val_x, val_y, *val_w = validation_data
            val_w = val_w[0] if val_w else None
        steps = math.ceil(n / batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        callback_list = callbacks_module.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=steps,
        )
        validation = None if validation_data is None else (val_x, val_y, val_w)
        with self._training_scope("fit"):
            self.stop_training = False
            loss_tracker = metrics_module.Mean(name="loss")
            self._fit_progress = FitProgress(initial_epoch, 0, steps, n, batch_size, None, loss_tracker)
            self._resume_point = None
            try:
                callback_list.on_train_begin()
                resume, self._resume_point = self._resume_point, None
                if resume is not None and resume.restore is not None:
                    resume.restore()  # callbacks' state, after their own on_train_begin resets
                start_epoch = initial_epoch if resume is None else max(initial_epoch, resume.epoch)
                logs, epoch_logs = {}, {}
                for epoch in range(start_epoch, epochs):
                    self._reset_metrics()
                    loss_tracker.reset_state()
                    callback_list.on_epoch_begin(epoch)
                    if dataset is not None:
                        dataset.on_epoch_begin()
                    first_step = 0
                    if resume is not None and epoch == resume.epoch and resume.step > 0:
                        # the rest of an epoch a backup was taken in: its order, its running means
                        order, first_step = self._resume_epoch(resume, loss_tracker, n, steps)
                        logs = self._logs(loss_tracker)
                    else:
                        order = utils.random_generator().permutation(n) if shuffle else np.arange(n)
                    progress = self._fit_progress
                    progress.epoch, progress.step, progress.order = epoch, first_step, order
                    for step in range(first_step, steps):
                        index = order[step * batch_size : (step + 1) * batch_size]
                        callback_list.on_train_batch_begin(step)
                        if dataset is None:
                            bx, by, bw = _array_batch(x, y, sample_weight, index)
                        else:
                            bx, by, bw = self._dataset_batch(dataset, int(index[0]), labelled=True)
                        loss, y_pred = self._train_step(bx, by, bw)
                        self._update_metrics(loss_tracker, loss, len(by), by, y_pred, bw)
                        logs = self._logs(loss_tracker)
                        progress.step = step + 1
                        callback_list.on_train_batch_end(step, logs)
                        if self.stop_training:
                            break
                    progress.step = steps
                    if dataset is not None:
                        dataset.on_epoch_end()
                    epoch_logs = dict(logs)
                    if validation is not None and (epoch + 1) % validation_freq == 0:
                        val_x, val_y, val_w = validation
                        val_logs = self.evaluate(
                            val_x,
                            val_y,
                            batch_size=validation_batch_size or (batch_size if dataset is None else None),
                            verbose=0,
                            sample_weight=val_w,
                            return_dict=True,
                            _internal=True,
                        )
                        epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                    callback_list.on_epoch_end(epoch, epoch_logs)
                    if self.stop_training:
                        break
                self.optimizer.finalize_variable_values(self.trainable_weights)
                callback_list.on_train_end(epoch_logs)
            finally:
                self._fit_progress = None
            return self.history

    def _resume_epoch(self, resume: ResumePoint, loss_tracker, n: int, steps: int):
        """The order and first step of a resumed epoch, its running loss and metrics put back."""
        order = np.asarray(resume.order)
        if order.shape != (n,) or not 0 < resume.step <= steps:
            raise ValueError(
                f"The backup to resume from was taken in a fit over {order.size} samples at batch {resume.step}; "
                f"this fit has {n} samples in {steps} batches. Resume with the same data and batch size, or "
                "remove the backup."
            )
        for target, value in zip(loss_tracker.variables, resume.loss_state or ()):
            target[...] = value
        if resume.metric_states:
            if self._metrics is None and resume.metric_shapes is not None:
                self._build_metrics_from_shapes(*resume.metric_shapes)
            for metric, state in zip(self._metrics or (), resume.metric_states):
                for target, value in zip(metric.variables, state):
                    target[...] = value
        return order, resume.step

    # -- evaluate / predict -----------------------------------------------------------------

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
        _internal=False,
    ):
        from rankconv import callbacks as callbacks_module
        from rankconv import metrics as metrics_module

        self._require_compiled("evaluate")
        dataset = x if isinstance(x, utils.PyDataset) else None
        if dataset is not None:
            _refuse_with_dataset(
                "evaluate", y=y, batch_size=None if _internal else batch_size, sample_weight=sample_weight
            )
            n_steps = _dataset_length(dataset)
        else:
            if y is None:
                raise ValueError("`evaluate` needs labels `y`.")
            batch_size = self._check_batch_size(batch_size)
            x, y, sample_weight, n = self._prepare(x, y, sample_weight)
            if n == 0:
                raise ValueError("`evaluate` received no samples.")
            n_steps = math.ceil(n / batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        with self._inference_scope("evaluate"):
            callback_list = None
            if not _internal:
                callback_list = callbacks_module.CallbackList(
                    callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1, steps=n_steps
                )
                callback_list.on_test_begin()
            # The evaluation's own metric objects: several threads may evaluate the model at once,
            # and validation during fit keeps its states apart from the training metrics' (as
            # Keras's separate trackers do).
            metrics = None
            loss_tracker = metrics_module.Mean(name="loss")
            logs = {}
            for step in range(n_steps):
                if dataset is None:
                    index = slice(step * batch_size, (step + 1) * batch_size)
                    bx, by, bw = _array_batch(x, y, sample_weight, index)
                else:
                    bx, by, bw = self._dataset_batch(dataset, step, labelled=True)
                if callback_list:
                    callback_list.on_test_batch_begin(step)
                loss, y_pred = self._test_step(bx, by, bw)
                if metrics is None:
                    self._build_metrics(by, y_pred)
                    metrics = [type(m).from_config(m.get_config()) for m in self._metrics]
                loss_tracker.update_state(loss, sample_weight=len(by))
                for metric in metrics:
                    metric.update_state(by, y_pred)  # unweighted, as in `_update_metrics`
                logs = self._logs(loss_tracker, metrics=metrics)
                if callback_list:
                    callback_list.on_test_batch_end(step, logs)
            if callback_list:
                callback_list.on_test_end(logs)
            if not _internal and metrics:
                # as in Keras, the model's metrics hold the evaluation's results afterwards
                with _usage_lock:
                    for metric, own in zip(self._metrics, metrics):
                        for target, value in zip(metric.variables, own.variables):
                            target[...] = value
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for `x`, computed `batch_size` samples at a time into one preallocated array."""
        if len(getattr(self, "outputs", None) or []) > 1:
            raise ValueError("Models with several outputs cannot `predict` yet; call the model on batches instead.")
        if isinstance(x, utils.PyDataset):
            _refuse_with_dataset("predict", batch_size=batch_size)
            with self._inference_scope("predict"):
                outputs = [self._predict_batch(self._dataset_batch(x, i)[0]) for i in range(_dataset_length(x))]
            return np.concatenate(outputs)
        batch_size = self._check_batch_size(batch_size)
        x, _, _, n = self._prepare(x, None, None)
        result = None
        with self._inference_scope("predict"):
            for start in range(0, n, batch_size):
                batch = self._predict_batch(_take(x, slice(start, start + batch_size)))
                if result is None:
                    result = np.empty((n, *batch.shape[1:]), dtype=batch.dtype)
                result[start : start + len(batch)] = batch
        if result is None:
            raise ValueError("`predict` received no samples.")
        return result

    def _dataset_batch(self, dataset, index: int, labelled: bool = False):
        """Batch `index` of a PyDataset as `(x, y, sample_weight)`, each prepared as an array argument."""
        item = dataset[index]
        if isinstance(item, tuple) and len(item) in (2, 3):
            bx, by, bw = (*item, None) if len(item) == 2 else item
        elif isinstance(item, tuple) and len(item) != 1:
            raise ValueError(
                f"{type(dataset).__name__}[{index}] returned a tuple of {len(item)} items; a batch is (x, y) or "
                "(x, y, sample_weight)."
            )
        else:
            bx, by, bw = (item[0] if isinstance(item, tuple) else item), None, None
        if labelled and by is None:
            raise ValueError(
                f"{type(dataset).__name__}[{index}] returned inputs without labels; training and evaluation need "
                "batches (x, y) or (x, y, sample_weight)."
            )
        bx, by, bw, _ = self._prepare(bx, by, bw)
        return bx, by, bw

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        from rankconv import metrics as metrics_module

        self._require_compiled("train_on_batch")
        x, y, sample_weight, n = self._prepare(x, y, sample_weight)
        with self._training_scope("train_on_batch"):
            loss, y_pred = self._train_step(x, y, sample_weight)
        tracker = metrics_module.Mean(name="loss")
        self._reset_metrics()
        self._update_metrics(tracker, loss, n, y, y_pred, sample_weight)
        logs = self._logs(tracker)
        return logs if return_dict else (list(logs.values())[0] if len(logs) == 1 else list(logs.values()))

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        if y is None:
            raise ValueError("`test_on_batch` needs labels `y`.")
        return self.evaluate(
            x,
            y,
            batch_size=max(1, len(np.asarray(y))),
            verbose=0,
            sample_weight=sample_weight,
            return_dict=return_dict,
            _internal=True,
        )

    def predict_on_batch(self, x):
        x, _, _, _ = self._prepare(x, None, None)
        with self._inference_scope("predict_on_batch"):
            return self._predict_batch(x)
