"""Model configs ↔ models. Only whitelisted class names are built; nothing from the file runs."""

from __future__ import annotations

import numbers

from rankconv.layers import LAYER_CLASSES
from rankconv.layers.core import InputLayer
from rankconv.layers.layer import KerasTensor
from rankconv.saving.archive import ModelFileError

MAX_LAYERS = 5000  # the loader's cost grows with the graph; no real model of these layers comes near
MAX_NESTING = 16  # models inside models inside models...: a file may not nest deeper than this
MODEL_MODULES = {"Functional": "keras.src.models.functional", "Sequential": "keras"}


def model_to_config(model) -> dict:
    from rankconv.models.functional import Sequential

    class_name = "Sequential" if isinstance(model, Sequential) else "Functional"
    config = {
        "module": MODEL_MODULES[class_name],
        "class_name": class_name,
        "config": model.get_config(),
        "registered_name": None if class_name == "Sequential" else "Functional",
    }
    if class_name == "Sequential":
        shape = model._build_input_shape
        config["build_config"] = {"input_shape": None if shape is None else list(shape)}
    else:
        config["build_config"] = {"input_shape": None}
    config["compile_config"] = model.get_compile_config() or {}
    return config


def _require(condition, message):
    if not condition:
        raise ModelFileError(message)


def _layer_from_entry(entry, where, depth=0):
    _require(isinstance(entry, dict), f"{where}: each layer entry must be an object; received {type(entry).__name__}.")
    class_name = entry.get("class_name")
    if class_name in ("Functional", "Sequential", "Model"):  # a model used as a layer
        _require(depth < MAX_NESTING, f"{where}: models are nested more than {MAX_NESTING} deep.")
        return model_from_config(entry, f"{where} (model {class_name})", depth + 1)
    cls = LAYER_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise ModelFileError(
            f"{where}: unknown layer class {class_name!r}. rankconv loads only its own layer classes "
            f"({', '.join(sorted(LAYER_CLASSES))}) and never runs code from a file."
        )
    config = entry.get("config")
    _require(isinstance(config, dict), f"{where}: the config of layer class {class_name} must be an object.")
    name = config.get("name", "?")
    try:
        layer = cls.from_config(dict(config))
    except (TypeError, ValueError) as error:
        raise ModelFileError(
            f"{where}: layer '{name}' ({class_name}) cannot be built from its config: {error}"
        ) from None
    return layer


def _build_layer(layer, entry, where):
    build_config = entry.get("build_config")
    _require(
        build_config is None or isinstance(build_config, dict),
        f"{where}: the build_config of '{layer.name}' must be an object.",
    )
    if build_config and not layer.built:
        shape = build_config.get("input_shape")
        if shape is not None:
            _require(_valid_shape(shape), f"{where}: layer '{layer.name}' has an invalid build shape {shape!r}.")
            try:
                layer.build_from_config(build_config)
            except (TypeError, ValueError) as error:
                raise ModelFileError(f"{where}: layer '{layer.name}' cannot be built: {error}") from None


def _valid_shape(shape) -> bool:
    if isinstance(shape, list) and shape and all(isinstance(s, list) for s in shape):
        return all(_valid_shape(s) for s in shape)
    return isinstance(shape, list) and all(
        d is None or (isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0) for d in shape
    )


def model_from_config(config: dict, where="config.json", depth=0):
    from rankconv.models.functional import Functional, Sequential

    _require(isinstance(config, dict), f"{where} must hold an object.")
    class_name = config.get("class_name")
    inner = config.get("config")
    _require(isinstance(inner, dict), f"{where}: 'config' must be an object.")
    layers_config = inner.get("layers")
    _require(isinstance(layers_config, list), f"{where}: 'config.layers' must be a list.")
    if class_name == "Sequential":
        model = Sequential(name=inner.get("name"), trainable=inner.get("trainable", True))
        for i, entry in enumerate(layers_config):
            layer = _layer_from_entry(entry, f"{where}: layers[{i}]", depth)
            model.add(layer)
        if model._build_input_shape is None and inner.get("build_input_shape") is not None:
            shape = inner["build_input_shape"]
            _require(_valid_shape(shape), f"{where}: invalid build_input_shape {shape!r}.")
            model.build(tuple(shape))
        return model
    if class_name not in ("Functional", "Model"):
        raise ModelFileError(
            f"{where}: unknown model class {class_name!r}; rankconv loads Functional and Sequential models."
        )
    return _functional_from_config(inner, where, Functional, depth)


def _functional_from_config(inner, where, functional_cls, depth=0):
    entries = inner["layers"]
    if len(entries) > MAX_LAYERS:
        raise ModelFileError(f"{where}: {len(entries):,} layers is more than the {MAX_LAYERS:,} rankconv loads.")
    layers, pending = {}, []
    for i, entry in enumerate(entries):
        layer = _layer_from_entry(entry, f"{where}: layers[{i}]", depth)
        if layer.name in layers:
            raise ModelFileError(f"{where}: two layers are named '{layer.name}'.")
        layers[layer.name] = layer
        if isinstance(layer, InputLayer):
            continue
        nodes = entry.get("inbound_nodes", [])
        _require(isinstance(nodes, list), f"{where}: inbound_nodes of '{layer.name}' must be a list.")
        pending.extend((layer, node, entry) for node in nodes)

    def resolve(item):
        """A `__keras_tensor__` reference → the tensor it names, or None while its layer has not run."""
        _require(
            isinstance(item, dict) and item.get("class_name") == "__keras_tensor__",
            f"{where}: a node argument is not a tensor reference: {str(item)[:80]}",
        )
        history = (item.get("config") or {}).get("keras_history")
        _require(isinstance(history, list) and len(history) == 3, f"{where}: bad keras_history {history!r}.")
        name, node_index, tensor_index = history
        _require(isinstance(name, str), f"{where}: bad keras_history {history!r}.")
        source = layers.get(name)
        _require(source is not None, f"{where}: a node reads from unknown layer {name!r}.")
        _require(
            isinstance(node_index, int) and isinstance(tensor_index, int) and min(node_index, tensor_index) >= 0,
            f"{where}: bad keras_history {history!r}.",
        )
        if node_index >= len(source._inbound_nodes):
            return None
        outputs = source._inbound_nodes[node_index].outputs
        _require(tensor_index < len(outputs), f"{where}: bad keras_history {history!r}.")
        return outputs[tensor_index]

    # Call layers on their inputs as soon as those exist (the file lists them in graph order, but
    # nothing here relies on it).
    while pending:
        progressed = False
        for item in list(pending):
            layer, node, entry = item
            _require(
                isinstance(node, dict) and isinstance(node.get("args"), list) and node["args"],
                f"{where}: bad inbound node of '{layer.name}'.",
            )
            first = node["args"][0]
            references = first if isinstance(first, list) else [first]
            tensors = [resolve(r) for r in references]
            if any(t is None for t in tensors):
                continue
            _build_layer(layer, entry, where)
            kwargs = node.get("kwargs") or {}
            _require(
                isinstance(kwargs, dict) and set(kwargs) <= {"training", "mask"},
                f"{where}: unsupported call arguments {kwargs!r} for '{layer.name}'.",
            )
            try:
                layer(tensors if isinstance(first, list) else tensors[0], training=kwargs.get("training"))
            except (TypeError, ValueError) as error:
                raise ModelFileError(f"{where}: layer '{layer.name}' does not accept its inputs: {error}") from None
            pending.remove(item)
            progressed = True
        if not progressed:
            names = sorted({layer.name for layer, _, _ in pending})
            raise ModelFileError(
                f"{where}: the inputs of layers {names} can never be computed (a cycle or a missing layer)."
            )

    def endpoints(key):
        value = inner.get(key)
        _require(isinstance(value, list) and value, f"{where}: '{key}' must be a non-empty list.")
        listed = value if isinstance(value[0], list) else [value]
        tensors = []
        for ref in listed:
            _require(isinstance(ref, list) and len(ref) == 3, f"{where}: bad entry {ref!r} in '{key}'.")
            if isinstance(layers.get(ref[0]), functional_cls) and isinstance(ref[1], int):
                # Keras counts a functional model's own input-to-output node first, here only
                ref = [ref[0], ref[1] - 1, ref[2]]
            tensor = resolve({"class_name": "__keras_tensor__", "config": {"keras_history": ref}})
            _require(isinstance(tensor, KerasTensor), f"{where}: '{key}' names a tensor that does not exist: {ref!r}.")
            tensors.append(tensor)
        return tensors if isinstance(value[0], list) and len(tensors) > 1 else tensors[0]

    return functional_cls(
        endpoints("input_layers"),
        endpoints("output_layers"),
        name=inner.get("name"),
        trainable=inner.get("trainable", True),
    )
