"""Run by tests/test_distribution_jax.py in a process of its own (KERAS_BACKEND=jax, two CPU
devices): load rankconv's `.keras` file in Keras 3, train one epoch under
`keras.distribution.DataParallel`, save the model and Keras's predictions, report what ran.

    python distribution_jax_helper.py IN.keras DATA.npz OUT.keras REPORT.json
"""

import json
import os
import sys


def main(source, data_path, target, report_path):
    if os.environ.get("KERAS_BACKEND") != "jax":
        raise SystemExit("run me with KERAS_BACKEND=jax")
    import jax
    import keras
    import numpy as np

    data = np.load(data_path)
    devices = keras.distribution.list_devices("cpu")
    distribution = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(distribution)

    model = keras.saving.load_model(source)  # compiled from the file's compile_config
    # rankconv writes `jit_compile: "auto"`, which Keras resolves to XLA compilation on JAX (what makes
    # a training step fast there: 25 s against 4 s for this epoch with False)
    assert model.jit_compile is True, model.jit_compile
    before = [np.asarray(w) for w in model.get_weights()]
    history = model.fit(data["x"], data["y"], batch_size=32, epochs=1, shuffle=False, verbose=0)
    model.save(target)
    predictions = np.asarray(model.predict(data["x_eval"], batch_size=32, verbose=0))
    np.save(os.path.splitext(report_path)[0] + ".predictions.npy", predictions)
    kernel = model.layers[0].kernel.value
    report = {
        "backend": keras.backend.backend(),
        "jax": jax.__version__,
        "keras": keras.__version__,
        "devices": [str(d) for d in jax.devices()],
        "distribution": type(keras.distribution.distribution()).__name__,
        "mesh_shape": list(distribution.device_mesh.shape),
        "kernel_devices": len(kernel.sharding.device_set),
        "batch_layout": list(distribution.get_data_layout((32, *data["x"].shape[1:])).axes),
        "optimizer": type(model.optimizer).__name__,
        "loss": [float(v) for v in history.history["loss"]],
        "weights_changed": any(not np.array_equal(a, np.asarray(b)) for a, b in zip(before, model.get_weights())),
    }
    with open(report_path, "w") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(*sys.argv[1:5])
