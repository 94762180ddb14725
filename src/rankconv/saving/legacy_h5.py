"""Legacy Keras HDF5 files: Keras 2 / tf.keras `model.save("m.h5")` whole-model files and
`model.save_weights("w.h5")` weight files (and the same layouts as Keras 3's legacy saver writes).

Layout read here (Keras's `legacy_h5_format`):

- root attributes `model_config` (the model's JSON config), `keras_version`, `backend`, and
  optionally `training_config` (the compile settings); a group `model_weights`.
- a weights group (`model_weights`, or the root of a weights-only file) with attribute
  `layer_names` (split into `layer_names0`, `layer_names1`, … when large): one subgroup per layer,
  whose attribute `weight_names` lists its weights in Keras's legacy order (trainable, then
  non-trainable) as paths inside that subgroup.
- Weights go to the model's layers *by position* among the layers that have weights, as Keras
  loads them.

Keras 2 and Keras 3's legacy writer differ: Keras 2 writes `batch_input_shape`, inbound nodes as
nested lists `[[["input_1", 0, 0, {}]]]`, weight names like `conv2d/kernel:0`, dtypes as plain
strings and sub-objects without `module`; Keras 3's legacy writer keeps Keras 3's config schema
(`batch_shape`, `{"args": …, "kwargs": …}` nodes), names weights by variable path
(`sequential/conv2d/kernel`), lists weightless layers too and adds a `top_level_model_weights`
group. Both load here.

Guards, as for `.keras` files: no code from the file (only whitelisted layer classes are built;
`Lambda` layers, which carry Python bytecode, are refused by name), the JSON's size and nesting are
capped before parsing, HDF5 soft and external links and external or virtual datasets are refused,
only numeric datasets are read, no layer may allocate more weights than the file stores, and every
shape is checked before any weight is assigned.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np

from rankconv.saving.archive import MAX_CONFIG_BYTES, ModelFileError, parse_json

LEGACY_SUFFIXES = (".h5", ".hdf5")
MAX_FILE_BYTES = 8 * 2**30


def _h5py():
    import h5py

    return h5py


# ----------------------------------------------------------------------------- reading HDF5 safely


def _open(data: bytes, where: str):
    h5py = _h5py()
    try:
        return h5py.File(io.BytesIO(data), "r")
    except OSError as error:
        raise ModelFileError(f"{where} is not a readable HDF5 file ({error}).") from None


def read_bytes(filepath) -> bytes:
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise ModelFileError(f"{path} is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,}.")
    with open(path, "rb") as handle:
        return handle.read()


def is_legacy(data: bytes, where: str = "the weights file") -> bool:
    """Whether HDF5 `data` is a legacy Keras file (whole model or weights), not Keras 3's
    `.weights.h5` layout."""
    with _open(data, where) as f:
        return "model_weights" in f or _has_attribute(f, "layer_names")


def _has_attribute(obj, name) -> bool:
    return name in obj.attrs or f"{name}0" in obj.attrs


def _child(group, name: str, where: str):
    """`group[name]` for a relative path, every link on the way a hard link inside the file."""
    h5py = _h5py()
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ModelFileError(f"{where}: {name!r} is not a plain path inside its group; refusing to follow it.")
    current = group
    for part in parts:
        if not isinstance(current, h5py.Group) or part not in current:
            raise ModelFileError(f"{where}: {name!r} does not exist in the file.")
        link = current.get(part, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise ModelFileError(
                f"{where}: {name!r} goes through a {type(link).__name__}; only plain groups and datasets are read."
            )
        current = current[part]
    return current


def _strings(obj, name: str, where: str) -> list[str]:
    """A list-of-strings attribute, joined from Keras's chunks (`name0`, `name1`, …) when split."""
    chunks = [obj.attrs[name]] if name in obj.attrs else []
    i = 0
    while f"{name}{i}" in obj.attrs:
        chunks.append(obj.attrs[f"{name}{i}"])
        i += 1
    values = []
    for chunk in chunks:
        items = np.atleast_1d(np.asarray(chunk))
        if items.size == 0:  # Keras writes a weightless layer's empty list as an empty float array
            continue
        if items.dtype.kind not in "SUO":
            raise ModelFileError(f"{where}: attribute {name!r} must hold strings; it holds {items.dtype}.")
        for item in items.tolist():
            if isinstance(item, bytes):
                item = item.decode("utf-8", errors="replace")
            if not isinstance(item, str):
                raise ModelFileError(f"{where}: attribute {name!r} must hold strings.")
            values.append(item)
    return values


def _text_attribute(f, name: str, where: str):
    if name not in f.attrs:
        return None
    value = f.attrs[name]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        raise ModelFileError(f"{where}: attribute {name!r} must be JSON text; it is {type(value).__name__}.")
    if len(data) > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{where}: attribute {name!r} is {len(data):,} bytes, over the limit.")
    return parse_json(data, f"{where}: {name}")


def _stored_elements(f) -> int:
    """Elements the file stores (not what its datasets declare): the loader's allocation budget."""
    h5py = _h5py()
    total = 0

    def count(name, item):
        nonlocal total
        if isinstance(item, h5py.Dataset):
            total += int(item.id.get_storage_size()) // max(item.dtype.itemsize, 1)

    f.visititems(count)
    return total


# ----------------------------------------------------------------------------- configs


def _refuse_code(config, where, depth=0):
    """Lambda layers carry Python bytecode (or a function's name): refused before anything is built."""
    if depth > 64:
        return
    if isinstance(config, dict):
        name = config.get("class_name")
        if name == "Lambda":
            layer = (config.get("config") or {}).get("name", "?") if isinstance(config.get("config"), dict) else "?"
            raise ModelFileError(
                f"{where}: layer '{layer}' is a Lambda layer, which holds Python code; rankconv never runs code from "
                "a file. Rebuild the model without the Lambda (or with a built-in layer) and save it again."
            )
        if name in ("TFOpLambda", "SlicingOpLambda"):
            raise ModelFileError(
                f"{where}: the model calls TensorFlow functions directly ({name} layers), which rankconv cannot build."
            )
        for value in config.values():
            _refuse_code(value, where, depth + 1)
    elif isinstance(config, list):
        for value in config:
            _refuse_code(value, where, depth + 1)


def _input_entry(batch_shape, dtype, name):
    config = {"batch_shape": batch_shape, "dtype": dtype or "float32", "name": name}
    return {"class_name": "InputLayer", "config": config}


def _layer_entry(entry, where):
    """A Keras 2 layer entry in the form rankconv's (Keras 3's) `from_config` takes."""
    if not isinstance(entry, dict):
        raise ModelFileError(f"{where}: each layer entry must be an object; received {type(entry).__name__}.")
    entry = dict(entry)
    class_name = entry.get("class_name")
    if class_name in ("Functional", "Model", "Sequential"):  # a model used as a layer
        return {**entry, **keras3_config(entry, where)}
    if not isinstance(entry.get("config"), dict):
        raise ModelFileError(f"{where}: layer entry {class_name!r} must have a 'config' object.")
    config = dict(entry["config"])
    if class_name == "LeakyReLU" and "alpha" in config:  # Keras 2's name for the slope
        config["negative_slope"] = config.pop("alpha")
    if class_name == "InputLayer" and "batch_input_shape" in config:
        config["batch_shape"] = config.pop("batch_input_shape")
    entry["config"] = config
    return entry


def _keras_tensor(reference, where):
    if not isinstance(reference, list) or len(reference) < 3:
        raise ModelFileError(f"{where}: bad inbound node entry {str(reference)[:80]}.")
    return {"class_name": "__keras_tensor__", "config": {"keras_history": list(reference[:3])}}


def _inbound_nodes(nodes, where):
    """Keras 2's `[[["conv2d", 0, 0, {}], …], …]` → Keras 3's `[{"args": …, "kwargs": …}, …]`."""
    if not isinstance(nodes, list):
        raise ModelFileError(f"{where}: inbound_nodes must be a list.")
    converted = []
    for node in nodes:
        if isinstance(node, dict):  # Keras 3's form already
            converted.append(node)
            continue
        if not isinstance(node, list) or not node:
            raise ModelFileError(f"{where}: bad inbound node {str(node)[:80]}.")
        tensors = [_keras_tensor(reference, where) for reference in node]
        options = node[0][3] if len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
        kwargs = {"training": options["training"]} if "training" in options else {}
        converted.append({"args": [tensors if len(tensors) > 1 else tensors[0]], "kwargs": kwargs})
    return converted


def keras3_config(model_config, where="model_config"):
    """A Keras 2 (or Keras 3 legacy) model config in Keras 3's schema, which `model_from_config` builds."""
    if not isinstance(model_config, dict):
        raise ModelFileError(f"{where} must hold an object.")
    _refuse_code(model_config, where)
    class_name = model_config.get("class_name")
    inner = model_config.get("config")
    if class_name == "Sequential":
        if isinstance(inner, list):  # early Keras 2: the layer list itself
            inner = {"name": "sequential", "layers": inner}
        if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
            raise ModelFileError(f"{where}: a Sequential config needs a 'layers' list.")
        entries = [_layer_entry(e, f"{where}: layers[{i}]") for i, e in enumerate(inner["layers"])]
        if entries and entries[0].get("class_name") not in ("InputLayer", "Functional", "Model", "Sequential"):
            first = entries[0]["config"]
            shape = first.pop("batch_input_shape", None)
            if shape is not None:  # Keras 2: the first layer carries the input's shape
                dtype = first.get("dtype") if isinstance(first.get("dtype"), str) else None
                entries.insert(0, _input_entry(shape, dtype, f"{first.get('name', 'layer')}_input"))
        for entry in entries[1:]:
            if entry.get("class_name") not in ("Functional", "Model", "Sequential"):
                entry["config"].pop("batch_input_shape", None)
        return {"class_name": "Sequential", "config": {**inner, "layers": entries}}
    if class_name not in ("Functional", "Model"):
        raise ModelFileError(
            f"{where}: unknown model class {class_name!r}; rankconv loads Sequential and functional models "
            "(subclassed models keep no config in .h5 files)."
        )
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        raise ModelFileError(f"{where}: a functional config needs a 'layers' list.")
    entries = []
    for i, entry in enumerate(inner["layers"]):
        entry = _layer_entry(entry, f"{where}: layers[{i}]")
        if "inbound_nodes" in entry:
            entry["inbound_nodes"] = _inbound_nodes(entry["inbound_nodes"], f"{where}: layers[{i}]")
        if entry.get("class_name") not in ("InputLayer", "Functional", "Model", "Sequential"):
            entry["config"].pop("batch_input_shape", None)
        entries.append(entry)
    return {"class_name": "Functional", "config": {**inner, "layers": entries}}


# ----------------------------------------------------------------------------- weights


def _legacy_order(layer):
    """A layer's (or nested model's) weights in Keras's legacy order: trainable, then non-trainable."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _read_weights(model, group, where):
    """(variable, value) for every weight of `model` from a legacy weights group, all checked."""
    h5py = _h5py()
    names = _strings(group, "layer_names", where)
    stored = []
    for name in names:
        layer_group = _child(group, name, where)
        if not isinstance(layer_group, h5py.Group):
            raise ModelFileError(f"{where}: {name!r} must be a group.")
        weight_names = _strings(layer_group, "weight_names", f"{where}/{name}")
        if weight_names:
            stored.append((name, layer_group, weight_names))
    layers = [layer for layer in model.layers if _legacy_order(layer)]
    if len(stored) != len(layers):
        raise ModelFileError(
            f"{where} holds weights for {len(stored)} layers ({', '.join(n for n, _, _ in stored) or 'none'}); "
            f"model '{model.name}' has {len(layers)} layers with weights ({', '.join(layer.name for layer in layers)}). "
            "Legacy files pair layers by position."
        )
    assignments = []
    for (name, layer_group, weight_names), layer in zip(stored, layers):
        variables = _legacy_order(layer)
        if len(weight_names) != len(variables):
            raise ModelFileError(
                f"Layer '{layer.name}' ({type(layer).__name__}) has {len(variables)} weights; {where}/{name} holds "
                f"{len(weight_names)} ({', '.join(weight_names)})."
            )
        for weight_name, variable in zip(weight_names, variables):
            dataset = _child(layer_group, weight_name, f"{where}/{name}")
            path = f"{where}/{name}/{weight_name}"
            if not isinstance(dataset, h5py.Dataset):
                raise ModelFileError(f"{path} must be a dataset.")
            if dataset.is_virtual or dataset.external:
                raise ModelFileError(f"{path} refers to data outside the file; refusing to read it.")
            if dataset.dtype.kind not in "fiub":
                raise ModelFileError(f"{path} holds {dataset.dtype} data; weights must be numeric.")
            if tuple(dataset.shape) != tuple(variable.shape):
                raise ModelFileError(
                    f"Layer '{layer.name}' weight '{variable.name}' has shape {tuple(variable.shape)}; {path} holds "
                    f"shape {tuple(dataset.shape)}."
                )
            assignments.append((variable, dataset[()]))
    if "top_level_model_weights" in group:
        top = _child(group, "top_level_model_weights", where)
        if _strings(top, "weight_names", f"{where}/top_level_model_weights"):
            raise ModelFileError(f"{where} holds weights of the model itself, which rankconv models do not have.")
    return assignments


def _assign(assignments):
    for variable, value in assignments:
        variable.value[...] = np.asarray(value, dtype=variable.value.dtype)


def load_weights(model, data: bytes, where: str) -> None:
    """Legacy weights (a weights-only `.h5` or a whole-model file's `model_weights`) into `model`."""
    with _open(data, where) as f:
        group = _child(f, "model_weights", where) if "model_weights" in f else f
        _assign(_read_weights(model, group, f"{where}:{'/model_weights' if group is not f else ''}"))


def load_model(filepath, compile=True):
    """A whole-model legacy `.h5` file (Keras 2 / tf.keras, or Keras 3's legacy saver) as a rankconv model."""
    from rankconv.layers.layer import allocation_limit
    from rankconv.saving import _compile_from_config
    from rankconv.saving.serialization import model_from_config

    where = os.fspath(filepath)
    data = read_bytes(filepath)
    with _open(data, where) as f:
        model_config = _text_attribute(f, "model_config", where)
        if model_config is None:
            hint = (
                " It looks like a weights file: build the model and call `model.load_weights`."
                if _has_attribute(f, "layer_names")
                else ""
            )
            raise ModelFileError(f"{where} has no 'model_config' attribute: it is not a whole-model Keras file.{hint}")
        if "model_weights" not in f:
            raise ModelFileError(f"{where} has no 'model_weights' group: it is not a whole-model Keras file.")
        config = keras3_config(model_config, f"{where}: model_config")
        try:
            with allocation_limit(_stored_elements(f) + 1024):
                model = model_from_config(config, f"{where}: model_config")
            assignments = _read_weights(model, _child(f, "model_weights", where), f"{where}:/model_weights")
        except ModelFileError:
            raise
        except (AttributeError, IndexError, KeyError, TypeError, ValueError, OverflowError, RecursionError) as error:
            raise ModelFileError(f"{where} is not a model rankconv can load: {type(error).__name__}: {error}") from None
        training_config = _text_attribute(f, "training_config", where) if compile else None
    _assign(assignments)
    if isinstance(training_config, dict):
        compile_config = {
            "optimizer": training_config.get("optimizer_config"),
            "loss": training_config.get("loss"),
            "metrics": training_config.get("metrics"),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras 2 optimizer arguments Keras 3 dropped (decay, …)
            try:
                _compile_from_config(model, compile_config)
            except Exception:  # noqa: BLE001 - any failure means: not compiled, say so below
                pass
        if not model.compiled:
            warnings.warn("The model's compile settings could not be restored; call `compile` yourself.", stacklevel=3)
    return model
