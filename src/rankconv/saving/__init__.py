"""Keras 3's `.keras` model files and `.weights.h5` weight files, both ways.

    model.save("m.keras")                 # the same archive Keras writes
    model = rankconv.saving.load_model("m.keras")   # files written by Keras load too

A `.keras` file is a zip of `config.json` (the model's architecture), `metadata.json` and
`model.weights.h5`. Loading never runs code from the file: only whitelisted class names are built,
zip members and JSON are size- and depth-checked before reading, and every weight is checked
against its layer before any is assigned. Saving writes a temporary file and renames it.

Legacy Keras 2 / tf.keras `.h5` files load too (`load_model("m.h5")`, `load_weights("w.h5")`,
under the same guards: `rankconv.saving.legacy_h5`); PyTorch weights move both ways
(`load_torch_weights`, `save_torch_weights`: `rankconv.saving.torch_weights`); and
`model.export("m.onnx", format="onnx")` writes ONNX (`rankconv.saving.onnx_export`).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import warnings
import zipfile

from rankconv.saving import legacy_h5
from rankconv.saving import weights as weights_io
from rankconv.saving.archive import ModelFileError, atomic_write, parse_json, read_members
from rankconv.saving.legacy_h5 import LEGACY_SUFFIXES
from rankconv.saving.serialization import model_from_config, model_to_config
from rankconv.saving.torch_weights import load_torch_weights, save_torch_weights, torch_state_dict

__all__ = [
    "ModelFileError",
    "load_model",
    "load_torch_weights",
    "load_weights",
    "save_model",
    "save_torch_weights",
    "save_weights",
    "torch_state_dict",
]

# JSON that rankconv keeps with a model (`model.metadata`): settings an application needs to use
# the model, such as a text model's vocabulary.
METADATA_MEMBER = "assets/rankconv/metadata.json"


def _check_suffix(filepath, suffix, what):
    if not os.fspath(filepath).endswith(suffix):
        raise ValueError(f"{what} must end in '{suffix}' (as in Keras 3); received {os.fspath(filepath)!r}.")


def save_model(model, filepath, overwrite=True) -> None:
    """Write `model` to a `.keras` archive that Keras 3's `load_model` reads."""
    from rankconv import __version__

    _check_suffix(filepath, ".keras", "The file name")
    _warn_unloadable(model)
    config = json.dumps(model_to_config(model), default=_json_default).encode("utf-8")
    metadata = json.dumps(
        {
            "keras_version": "3.15.1",
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "saved_by": f"rankconv {__version__}",
        }
    ).encode("utf-8")
    buffer = io.BytesIO()
    weights_io.write(model, buffer)
    extra = getattr(model, "metadata", None)
    with atomic_write(filepath, overwrite) as temporary, zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", metadata)
        archive.writestr("config.json", config)
        archive.writestr("model.weights.h5", buffer.getvalue())
        if extra:
            # what rankconv's applications keep with a model (a text model's vocabulary, say);
            # Keras's loader leaves files in assets/ that no layer claims alone
            archive.writestr(METADATA_MEMBER, json.dumps(extra).encode("utf-8"))


def _warn_unloadable(model) -> None:
    """One warning naming the layers whose classes are rankconv's extensions (rank-generic or
    3-D depthwise/separable layers): the file is complete and rankconv loads it, Keras 3 will not."""
    from rankconv.layers import KERAS_UNLOADABLE

    names = [
        f"{layer.name} ({type(layer).__name__})" for layer in model.layers if type(layer).__name__ in KERAS_UNLOADABLE
    ]
    if names:
        warnings.warn(
            "Keras 3 itself will not load this file: it has no class for "
            f"{', '.join(names)} (rankconv's extensions; rankconv loads the file). For Keras, use Conv1D/2D/3D, "
            "Conv1D/2D/3DTranspose, DepthwiseConv1D/2D or SeparableConv1D/2D.",
            stacklevel=3,
        )


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"Cannot write {type(value).__name__} to a model config.")


def _weight_budget(weights_bytes) -> int:
    """Elements stored in the weights file: no layer built from the config may allocate more."""
    import h5py

    total = 0
    try:
        with h5py.File(io.BytesIO(weights_bytes), "r") as f:

            def count(name, item):
                nonlocal total
                if isinstance(item, h5py.Dataset):
                    # what the file stores, not what a dataset declares (an unwritten chunked
                    # dataset can declare any size in a few bytes)
                    total += int(item.id.get_storage_size()) // max(item.dtype.itemsize, 1)

            f.visititems(count)
    except OSError as error:
        raise ModelFileError(f"model.weights.h5 is not a readable HDF5 file ({error}).") from None
    return total


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a `.keras` file written by rankconv or by Keras 3 (with layers rankconv supports), or a
    legacy Keras 2 / tf.keras whole-model `.h5` file."""
    from rankconv.layers.layer import allocation_limit

    if custom_objects:
        raise ValueError("`custom_objects` is not supported: rankconv builds only its own classes.")
    if not safe_mode:
        warnings.warn("rankconv always loads in safe mode; `safe_mode=False` changes nothing.", stacklevel=2)
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"`filepath` must be a path (str or os.PathLike); received {type(filepath).__name__}.")
    if os.fspath(filepath).endswith(LEGACY_SUFFIXES) and not os.fspath(filepath).endswith(".weights.h5"):
        return legacy_h5.load_model(filepath, compile=compile)
    if not os.fspath(filepath).endswith(".keras"):
        raise ValueError(
            "A model file name must end in '.keras' (or '.h5' for a legacy Keras 2 / tf.keras file), as in Keras 3; "
            f"received {os.fspath(filepath)!r}."
            + (
                " A '.weights.h5' file holds weights only: use `model.load_weights`."
                if os.fspath(filepath).endswith(".weights.h5")
                else ""
            )
        )
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No model file at {os.fspath(filepath)!r}.")
    members = read_members(filepath, optional=(METADATA_MEMBER,))
    config = parse_json(members["config.json"], f"{os.fspath(filepath)}: config.json")
    try:
        with allocation_limit(_weight_budget(members["model.weights.h5"]) + 1024):
            model = model_from_config(config, f"{os.fspath(filepath)}: config.json")
        weights_io.read(model, members["model.weights.h5"], f"{os.fspath(filepath)}: model.weights.h5")
    except ModelFileError:
        raise
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, OverflowError, RecursionError) as error:
        # whatever else a malformed file provokes is reported as that, naming the file
        raise ModelFileError(
            f"{os.fspath(filepath)} is not a model rankconv can load: {type(error).__name__}: {error}"
        ) from None
    if METADATA_MEMBER in members:
        metadata = parse_json(members[METADATA_MEMBER], f"{os.fspath(filepath)}: {METADATA_MEMBER}")
        if not isinstance(metadata, dict):
            raise ModelFileError(f"{os.fspath(filepath)}: {METADATA_MEMBER} must hold an object.")
        model.metadata = metadata
    compile_config = config.get("compile_config") if isinstance(config, dict) else None
    if compile and compile_config:
        with contextlib.suppress(Exception):
            _compile_from_config(model, compile_config)
        if not model.compiled:
            warnings.warn("The model's compile settings could not be restored; call `compile` yourself.", stacklevel=2)
        else:
            # the optimizer's state (step count, slots), where Keras 3 puts it: training continues
            # with the updates it would have made
            weights_io.read_optimizer(model, members["model.weights.h5"], f"{os.fspath(filepath)}: model.weights.h5")
    return model


def _compile_from_config(model, compile_config):
    from rankconv import losses, optimizers

    optimizer = optimizers.get(compile_config.get("optimizer") or "rmsprop")
    loss = compile_config.get("loss")
    loss = loss if isinstance(loss, str) else losses.get(loss)
    metrics = compile_config.get("metrics")
    if metrics is not None and not all(isinstance(m, str) for m in metrics):
        metrics = None
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)


def save_weights(model, filepath, overwrite=True) -> None:
    """Write the weights alone to a `.weights.h5` file (Keras 3's layout)."""
    _check_suffix(filepath, ".weights.h5", "A weights file name")
    with atomic_write(filepath, overwrite) as temporary:
        weights_io.write(model, temporary)


def load_weights(model, filepath) -> None:
    """Load a `.weights.h5` file (rankconv's or Keras's) into `model`, checking every shape first.
    A legacy `.h5` weights file (Keras 2's `save_weights`, or a whole legacy model file) loads too,
    its layers paired with the model's by position, as Keras does.

    As Keras 3, a whole-model `.keras` file works too: its weights are read into `model` (whose
    layers must match the file's), its architecture is not used.
    """
    if os.fspath(filepath).endswith(".keras"):
        if not os.path.exists(filepath):
            raise FileNotFoundError(f"No model file at {os.fspath(filepath)!r}.")
        members = read_members(filepath, wanted=("model.weights.h5",))
        weights_io.read(model, members["model.weights.h5"], f"{os.fspath(filepath)}: model.weights.h5")
        return
    if not os.fspath(filepath).endswith(LEGACY_SUFFIXES):
        raise ValueError(
            "A weights file name must end in '.weights.h5' (or '.keras' for a whole-model file, whose weights are "
            f"read, or '.h5' for a legacy Keras 2 file), as in Keras 3; received {os.fspath(filepath)!r}."
        )
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No weights file at {os.fspath(filepath)!r}.")
    data = legacy_h5.read_bytes(filepath)
    if legacy_h5.is_legacy(data, os.fspath(filepath)):  # Keras 2's layout (`layer_names`), or a whole legacy model file
        legacy_h5.load_weights(model, data, os.fspath(filepath))
    else:
        weights_io.read(model, data, os.fspath(filepath))
