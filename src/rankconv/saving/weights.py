"""Keras 3's weight file layout (`model.weights.h5`, `.weights.h5`).

Each layer of `model.layers` has a group `layers/<snake_case(class)>[_N]/vars` (N counts earlier
layers of the same class) holding datasets "0", "1", … in the order the layer created its
variables, trainable ones first. Functional models list their InputLayers there too; Sequential
models do not. The top level also has an empty `vars` group. A model used as a layer is a group
`layers/functional[_N]` (or `sequential[_N]`) laid out like a whole file: its own `layers` and an
empty `vars`.

A compiled model's optimizer state goes where Keras 3 puts it: `optimizer/vars/0`, `1`, … in the
order of `optimizer.variables` (the step count, the learning rate, then the slots; see
`rankconv.optimizers`), the group's `name` attribute the optimizer's name. Keras's own files
carry it too, in `.keras` archives and in `.weights.h5` files alike.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from rankconv.layers.core import InputLayer
from rankconv.layers.layer import to_snake_case
from rankconv.saving.archive import ModelFileError


def _h5py():
    try:
        import h5py
    except ImportError as error:  # pragma: no cover - h5py is a dependency
        raise ImportError("Saving and loading Keras files needs h5py: pip install h5py") from error
    return h5py


def saved_variables(layer):
    """A layer's variables in Keras's file order: created-trainable first, then the others."""
    return [v for v in layer.variables if v.trainable] + [v for v in layer.variables if not v.trainable]


def layer_groups(model):
    """(group name, layer) for each layer the file holds, in Keras's order and naming."""
    from rankconv.models.functional import Sequential

    used: dict[str, int] = {}
    groups = []
    for layer in model.layers:
        if isinstance(model, Sequential) and isinstance(layer, InputLayer):
            continue
        base = to_snake_case(type(layer).__name__)
        if base in used:
            used[base] += 1
            name = f"{base}_{used[base]}"
        else:
            used[base] = 0
            name = base
        groups.append((name, layer))
    return groups


def _write_model(group, model) -> None:
    """A model's layers under `group/layers`, a model inside it as a group of its own layers."""
    from rankconv.models.functional import Model

    layers = group.create_group("layers")
    for name, layer in layer_groups(model):
        if isinstance(layer, Model):
            _write_model(layers.create_group(name), layer)
            continue
        variables = layers.create_group(name).create_group("vars")
        variables.attrs["name"] = layer.name
        for i, variable in enumerate(saved_variables(layer)):
            variables.create_dataset(str(i), data=variable.value)
    group.create_group("vars").attrs["name"] = model.name


def _compiled_optimizer(model):
    """The optimizer whose state a file of `model` holds: a compiled model's, else None."""
    if not getattr(model, "compiled", False):
        return None
    return getattr(model, "optimizer", None)


def write_optimizer(f, model) -> None:
    """A compiled model's optimizer state under `optimizer/vars` (nothing for other models).

    An optimizer that has not taken a step yet is built first (zero slots), as Keras builds one
    when it loads a compiled model: the file then loads in Keras without a count mismatch."""
    optimizer = _compiled_optimizer(model)
    if optimizer is None:
        return
    if not optimizer.built:
        optimizer.build(model.trainable_weights)
    group = f.create_group("optimizer").create_group("vars")
    group.attrs["name"] = optimizer.name
    for i, value in enumerate(optimizer.state_values()):
        group.create_dataset(str(i), data=value)


def write_groups(f, model) -> None:
    """Everything Keras puts in a weights file: the layers' weights, the optimizer's state."""
    _write_model(f, model)
    write_optimizer(f, model)


def write(model, target) -> None:
    """Write the model's weights (and a compiled model's optimizer state) to `target` (a path or a
    binary file object) in Keras's layout."""
    h5py = _h5py()
    with h5py.File(target, "w") as f:
        write_groups(f, model)


def _check_group(group, where, h5py):
    if not isinstance(group, h5py.Group):
        raise ModelFileError(f"{where} must be an HDF5 group; it is a {type(group).__name__}.")
    for key in group:
        link = group.get(key, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise ModelFileError(f"{where}/{key} is a {type(link).__name__}; only plain datasets are read.")


def _dataset_value(dataset, where, expected_shape):
    if dataset.is_virtual or dataset.external:
        raise ModelFileError(f"{where} refers to data outside the file; refusing to read it.")
    if dataset.dtype.kind not in "fiub":
        raise ModelFileError(f"{where} holds {dataset.dtype} data; weights must be numeric.")
    if tuple(dataset.shape) != tuple(expected_shape):
        return None
    return dataset[()]


def read(model, source, where="model.weights.h5") -> None:
    """Load weights from `source` (a path, bytes, or a binary file object) into the model's layers.

    Every group and dataset is checked before anything is assigned: shapes against the layers'
    variables (an error names the layer), no links, no external or virtual data, numeric dtypes.
    """
    h5py = _h5py()
    with _open(source, where, h5py) as f:
        if "layers" not in f:
            raise ModelFileError(f"{where} has no 'layers' group; it is not a Keras 3 weights file.")
        assignments = _read_model(f, model, where, "", h5py)
        optimizer_state = _read_optimizer(f, model, where, h5py)
    for variable, value in assignments:
        variable.value[...] = np.asarray(value, dtype=variable.value.dtype)
    if optimizer_state is not None:
        optimizer_state()


def _open(source, where, h5py):
    """`source` (a path, a file object or the file's bytes) opened read-only as HDF5."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        return h5py.File(source, "r")
    except OSError as error:
        raise ModelFileError(f"{where} is not a readable HDF5 weights file ({error}).") from None


def read_optimizer(model, source, where="model.weights.h5") -> None:
    """Load only the optimizer state of a weights file into compiled `model` (what `load_model`
    does once it has compiled the model from the file's settings)."""
    h5py = _h5py()
    with _open(source, where, h5py) as f:
        optimizer_state = _read_optimizer(f, model, where, h5py)
    if optimizer_state is not None:
        optimizer_state()


def _read_optimizer(f, model, where, h5py):
    """Check the file's `optimizer/vars` against a compiled model's optimizer and return a function
    that assigns them (None when there is nothing to load).

    Keras's rules: a file without optimizer state, or a model without an optimizer, loads the
    weights alone; a count that does not match the optimizer's variables is skipped with Keras's
    warning — except a file whose optimizer never took a step (only its step count and learning
    rate), which sets those two silently. The optimizer is built on the model's trainable weights
    first, as Keras builds it when loading, so the slots have somewhere to go."""
    optimizer = _compiled_optimizer(model)
    if optimizer is None or "optimizer" not in f:
        return None
    _check_group(f["optimizer"], f"{where}:optimizer", h5py)
    group = f["optimizer"].get("vars")
    if group is None:
        return None
    path = f"{where}:optimizer/vars"
    _check_group(group, path, h5py)
    stored = sorted((k for k in group if k.isdigit()), key=int)
    if stored != [str(i) for i in range(len(stored))]:
        raise ModelFileError(f"{path} must hold datasets named 0, 1, …; it holds {sorted(group)}.")
    if not optimizer.built:
        optimizer.build(model.trainable_weights)
    state = optimizer.variables
    head = state[: 2 if len(state) > 1 and state[1].name == "learning_rate" else 1]  # before any slot
    if len(stored) == len(state):
        targets = state
    elif len(stored) == len(head):
        targets = head
    else:
        warnings.warn(
            f"Skipping variable loading for optimizer '{optimizer.name}', because it has {len(state)} variables "
            f"whereas the saved optimizer has {len(stored)} variables.",
            stacklevel=4,
        )
        return None
    values = []
    for key, variable in zip(stored, targets):
        value = _dataset_value(group[key], f"{path}/{key}", variable.shape)
        if value is None:
            raise ModelFileError(
                f"Optimizer '{optimizer.name}' variable '{variable.name}' has shape {variable.shape}; "
                f"{path}/{key} holds shape {tuple(group[key].shape)}."
            )
        values.append(value)

    def assign():
        # (reading `optimizer.variables` above brought any lazily decayed rows up to date, so
        # nothing pending is left to apply on top of the loaded numbers)
        for variable, value in zip(targets, values):
            variable.assign(np.asarray(value, dtype=variable.value.dtype))

    return assign


def _read_model(f, model, where, prefix, h5py) -> list:
    """(variable, value) for every weight of `model`, whose layers are at `prefix + "layers"`, checked."""
    from rankconv.models.functional import Model

    assignments = []
    if "layers" not in f:
        raise ModelFileError(f"{where} has no group {prefix}layers for model '{model.name}'.")
    _check_group(f["layers"], f"{where}:{prefix}layers", h5py)
    for name, layer in layer_groups(model):
        if isinstance(layer, Model):
            if name not in f["layers"]:
                raise ModelFileError(f"{where} has no weights for model '{layer.name}' (group {prefix}layers/{name}).")
            _check_group(f["layers"][name], f"{where}:{prefix}layers/{name}", h5py)
            assignments += _read_model(f["layers"][name], layer, where, f"{prefix}layers/{name}/", h5py)
            continue
        variables = saved_variables(layer)
        path = f"{where}:{prefix}layers/{name}/vars"
        if name not in f["layers"]:
            if variables:
                raise ModelFileError(f"{where} has no weights for layer '{layer.name}' (group {prefix}layers/{name}).")
            continue
        group = f["layers"][name]
        _check_group(group, f"{where}:{prefix}layers/{name}", h5py)
        vars_group = group.get("vars")
        if vars_group is None:
            raise ModelFileError(f"{path} is missing.")
        _check_group(vars_group, path, h5py)
        stored = sorted((k for k in vars_group if k.isdigit()), key=int)
        if len(stored) != len(variables):
            raise ModelFileError(
                f"Layer '{layer.name}' ({type(layer).__name__}) has {len(variables)} weights; {path} holds {len(stored)}."
            )
        for key, variable in zip(stored, variables):
            value = _dataset_value(vars_group[key], f"{path}/{key}", variable.shape)
            if value is None:
                raise ModelFileError(
                    f"Layer '{layer.name}' weight '{variable.name}' has shape {variable.shape}; "
                    f"{path}/{key} holds shape {tuple(vars_group[key].shape)}."
                )
            assignments.append((variable, value))
    return assignments
