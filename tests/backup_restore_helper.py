"""A training that test_backup_and_restore.py kills (SIGKILL) and runs again, in a subprocess.

    python backup_restore_helper.py fit RESULT.npz [--backup DIR] [--save-freq epoch|N]
        [--kill-after-backups K] [--kill-in-write K] [--write-delay SECONDS]
    python backup_restore_helper.py cli ARG... [--kill-after-backups K]

`fit`: a seeded text-CNN-like model (Embedding, Conv1D, Dropout, Dense; Adadelta with its lazily
decayed embedding rows; EarlyStopping, ReduceLROnPlateau and LearningRateScheduler, which keep
state) trains for 4 epochs; the final weights and the loss history go to RESULT.npz. It prints
"first batch: epoch E step S" when its first batch starts (where a resumed run began).
`cli`: `rankconv ARG...` (the text CLI).

`--kill-after-backups K` kills the process right after the K-th backup is on disk;
`--kill-in-write K` kills it in the middle of the K-th backup write (the new file written, not yet
renamed over the previous one); `--write-delay` makes every backup write that much slower (a slow
disk), so that random kills land inside writes. At exit it prints "backups written: N".
"""

import argparse
import atexit
import os
import signal
import sys
import time

import numpy as np

from rankconv import callbacks, layers, optimizers, utils
from rankconv.models import Model

written = 0


def kill():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def instrument(kill_after=None, kill_in_write=None, write_delay=0.0):
    write, save = callbacks.BackupAndRestore._write, callbacks.BackupAndRestore._save

    def slow_write(self, path, text, arrays):
        write(self, path, text, arrays)
        if kill_in_write is not None and written + 1 == kill_in_write:
            kill()  # the new backup is in the temporary file; the previous one still in place
        if write_delay:
            time.sleep(write_delay)

    def counted_save(self, epoch, step, logs):
        global written
        before = os.path.getmtime(self._weights_path) if os.path.exists(self._weights_path) else None
        save(self, epoch, step, logs)
        if os.path.exists(self._weights_path) and os.path.getmtime(self._weights_path) != before:
            written += 1
        if kill_after is not None and written == kill_after:
            kill()

    callbacks.BackupAndRestore._write = slow_write
    callbacks.BackupAndRestore._save = counted_save
    atexit.register(lambda: print(f"backups written: {written}", flush=True))


class FirstBatch(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.shown = False

    def on_train_batch_begin(self, batch, logs=None):
        if not self.shown:
            print(f"first batch: epoch {self.model._fit_progress.epoch} step {batch}", flush=True)
            self.shown = True


def fit(result, backup, save_freq):
    utils.set_random_seed(11)
    tokens = layers.Input((16,), dtype="int32")
    x = layers.Embedding(300, 12)(tokens)
    x = layers.Conv1D(16, 3, activation="relu")(x)
    x = layers.Dropout(0.3)(layers.GlobalMaxPooling1D()(x))
    x = layers.Dropout(0.2, seed=5)(x)  # a layer with its own generator
    model = Model(tokens, layers.Dense(2, activation="softmax")(x))
    model.compile(
        optimizers.Adadelta(1.0, rho=0.95, epsilon=1e-6), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    rng = np.random.default_rng(0)
    data = rng.integers(0, 300, size=(230, 16)).astype("int32")
    labels = (data[:, :4].sum(axis=1) % 2).astype("int64")
    chosen = [
        FirstBatch(),
        callbacks.EarlyStopping(monitor="loss", patience=20, restore_best_weights=True),
        callbacks.ReduceLROnPlateau(monitor="loss", factor=0.9, patience=0),
        callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.95),
    ]
    if backup:
        chosen.insert(0, callbacks.BackupAndRestore(backup, save_freq=save_freq))
    history = model.fit(data, labels, batch_size=16, epochs=4, verbose=0, callbacks=chosen, validation_split=0.1)
    np.savez(result, *model.get_weights(), loss=np.array(history.history["loss"]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["fit", "cli"])
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args, _ = parser.parse_known_args()
    options = argparse.ArgumentParser()
    options.add_argument("--backup")
    options.add_argument("--save-freq", default="epoch")
    options.add_argument("--kill-after-backups", type=int)
    options.add_argument("--kill-in-write", type=int)
    options.add_argument("--write-delay", type=float, default=0.0)
    known, rest = options.parse_known_args(args.rest)
    instrument(known.kill_after_backups, known.kill_in_write, known.write_delay)
    if args.mode == "fit":
        save_freq = known.save_freq if known.save_freq == "epoch" else int(known.save_freq)
        fit(rest[0], known.backup, save_freq)
        return 0
    from rankconv.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main())
