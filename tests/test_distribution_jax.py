"""The road to many machines: a model built and trained a little in rankconv, saved as `.keras`,
trained one epoch by Keras 3 on the JAX backend under `keras.distribution.DataParallel` over two
CPU devices, saved, and loaded back into rankconv with Keras's predictions.

The Keras side runs in its own process (tests/distribution_jax_helper.py) so that the JAX backend
and the forced device count do not leak into the other tests, which use Keras on torch."""

import json
import os
import subprocess
import sys

import numpy as np
from sklearn.datasets import load_digits

from rankconv import layers, optimizers, saving, utils
from rankconv.models import Sequential

from oracles import require

HELPER = os.path.join(os.path.dirname(__file__), "distribution_jax_helper.py")


def test_rankconv_model_trains_data_parallel_in_keras_jax_and_comes_back(tmp_path):
    require("jax")  # the helper needs it; a missing package fails here rather than in the subprocess
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    utils.set_random_seed(0)
    model = Sequential(
        [
            layers.Input((8, 8, 1)),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizers.Adam(0.003), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:384], y[:384], batch_size=32, epochs=1, verbose=0)
    model.save(tmp_path / "rankconv.keras")
    np.savez(tmp_path / "data.npz", x=x[384:1152], y=y[384:1152], x_eval=x[1152:1280])

    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    }
    env.pop("CUDA_VISIBLE_DEVICES", None)
    paths = [tmp_path / n for n in ("rankconv.keras", "data.npz", "keras.keras", "report.json")]
    run = subprocess.run(
        [sys.executable, HELPER, *map(str, paths)], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["backend"] == "jax"
    assert report["distribution"] == "DataParallel"
    assert report["mesh_shape"] == [2] and len(report["devices"]) == 2
    assert report["kernel_devices"] == 2  # weights replicated on both devices
    assert report["batch_layout"][0] == "batch"  # each batch split between them
    assert report["optimizer"] == "Adam"  # the compile settings came with the file
    assert report["weights_changed"] and np.isfinite(report["loss"][0])

    back = saving.load_model(tmp_path / "keras.keras")
    theirs = np.load(tmp_path / "report.predictions.npy")
    ours = back.predict(x[1152:1280], verbose=0)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * max(float(np.abs(theirs).max()), 1e-3))
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    # and the weights did change there: rankconv's own file predicts otherwise
    assert not np.allclose(model.predict(x[1152:1280], verbose=0), ours, atol=1e-4)
