"""PyTorch weights both ways: `load_torch_weights(model, source)` and `save_torch_weights(model, path)`.

`source` is a `.safetensors` file (read with the `safetensors` package's NumPy API: no torch at run
time) or a dict of arrays (a PyTorch `state_dict` works as it is). Layers pair with torch modules
by order — rankconv's layers that have weights, in `model.layers` order, with the modules that
hold tensors (`features.0.weight` belongs to module `features.0`) — or by an explicit
`{rankconv layer name: torch module prefix}` mapping (a `SeparableConv` maps to two modules, its
depthwise and its pointwise convolution).

Layouts (Keras → PyTorch):

| rankconv | torch | conversion |
|---|---|---|
| `Conv` any rank, groups: kernel `(k…, in/groups, out)` | `ConvNd.weight` `(out, in/groups, k…)` | last axis first, channel axis second |
| `ConvTranspose`: kernel `(k…, out, in)` | `ConvTransposeNd.weight` `(in, out, k…)` | the same permutation, no flip |
| `DepthwiseConv`: kernel `(k…, C, m)` | `ConvNd(C, C·m, groups=C).weight` `(C·m, 1, k…)` | output channel c·m + j |
| `SeparableConv` | a depthwise `ConvNd` (no bias) and a 1×…×1 `ConvNd` | as above, each |
| `Dense`: kernel `(in, out)` | `Linear.weight` `(out, in)` | transposed; after a `Flatten` of a spatial input, rows reordered from (spatial…, C) to torch's (C, spatial…) |
| `Embedding` `(V, D)` | `Embedding.weight` | — |
| `BatchNormalization` gamma, beta, moving_mean, moving_variance | weight, bias, running_mean, running_var (num_batches_tracked written as 0, ignored when read) | — |
| `LayerNormalization` gamma, beta | weight, bias | — |
| `PReLU` alpha, one per channel or one shared | `PReLU.weight` | reshaped |

Conversion never changes hyperparameters: Keras's BatchNormalization epsilon is 1e-3 (torch: 1e-5)
and its momentum 0.99 is torch's 0.01; build the other side with the same values. Every shape is
checked before anything is assigned, and an error names both sides.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from rankconv.saving.archive import atomic_write

ORDER_KEY = "rankconv.order"  # safetensors metadata: the module prefixes in the model's order


def _require_safetensors():
    try:
        import safetensors.numpy
    except ImportError as error:
        raise ImportError(
            f"Reading and writing .safetensors files needs the `safetensors` package ({error}). Install it with: "
            "pip install 'rankconv[torch-weights]' (or pass a dict of arrays)."
        ) from error
    return safetensors


# ----------------------------------------------------------------------------- layouts


def _conv_to_torch(kernel):
    rank = kernel.ndim - 2
    return np.transpose(kernel, (rank + 1, rank, *range(rank)))


def _conv_from_torch(weight):
    rank = weight.ndim - 2
    return np.transpose(weight, (*range(2, rank + 2), 1, 0))


def _depthwise_to_torch(kernel):
    *window, channels, multiplier = kernel.shape
    return _conv_to_torch(kernel.reshape(*window, 1, channels * multiplier))


def _depthwise_from_torch(weight, shape):
    return _conv_from_torch(weight).reshape(shape)


class _Tensor:
    """One rankconv variable and its torch counterpart `key`, with the layout conversions."""

    def __init__(self, layer, variable, key, to_torch=None, from_torch=None):
        self.layer, self.variable, self.key = layer, variable, key
        self.to_torch = to_torch or (lambda a: a)
        self.from_torch = from_torch or (lambda a: a)

    @property
    def torch_shape(self):
        return tuple(self.to_torch(np.zeros(self.variable.shape, dtype=np.int8)).shape)


def _key(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _layer_tensors(layer, prefixes, feature_order):
    """The `_Tensor`s of `layer`, whose torch modules are `prefixes` (two for a separable conv).
    `feature_order`: for a layer reading a flattened spatial input, torch's feature i is rankconv's
    feature `feature_order[i]`."""
    from rankconv import layers as L
    from rankconv.layers.activation import PReLU

    prefix = prefixes[0]
    tensors = []

    def bias(p=prefix):
        if getattr(layer, "bias", None) is not None:
            tensors.append(_Tensor(layer, layer.bias, _key(p, "bias")))

    if isinstance(layer, L.SeparableConv):
        shape = layer.depthwise_kernel.shape
        tensors.append(
            _Tensor(
                layer,
                layer.depthwise_kernel,
                _key(prefixes[0], "weight"),
                _depthwise_to_torch,
                lambda w: _depthwise_from_torch(w, shape),
            )
        )
        tensors.append(
            _Tensor(layer, layer.pointwise_kernel, _key(prefixes[1], "weight"), _conv_to_torch, _conv_from_torch)
        )
        bias(prefixes[1])
    elif isinstance(layer, L.DepthwiseConv):
        shape = layer.kernel.shape
        tensors.append(
            _Tensor(
                layer,
                layer.kernel,
                _key(prefix, "weight"),
                _depthwise_to_torch,
                lambda w: _depthwise_from_torch(w, shape),
            )
        )
        bias()
    elif isinstance(layer, (L.Conv, L.ConvTranspose)):
        tensors.append(_Tensor(layer, layer.kernel, _key(prefix, "weight"), _conv_to_torch, _conv_from_torch))
        bias()
    elif isinstance(layer, L.Dense):
        order = feature_order

        def to_torch(kernel):
            return (kernel if order is None else kernel[order]).T

        def from_torch(weight):
            if order is None:
                return weight.T
            kernel = np.empty(weight.T.shape, dtype=weight.dtype)
            kernel[order] = weight.T
            return kernel

        tensors.append(_Tensor(layer, layer.kernel, _key(prefix, "weight"), to_torch, from_torch))
        bias()
    elif isinstance(layer, L.Embedding):
        tensors.append(_Tensor(layer, layer.embeddings, _key(prefix, "weight")))
    elif isinstance(layer, (L.BatchNormalization, L.LayerNormalization)):
        order = feature_order

        def to_torch(vector):
            return vector if order is None else vector[order]

        def from_torch(vector):
            if order is None:
                return vector
            result = np.empty_like(vector)
            result[order] = vector
            return result

        names = [("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean")]
        names.append(("moving_variance", "running_var"))
        for ours, theirs in names:
            variable = getattr(layer, ours, None)
            if variable is not None:
                tensors.append(_Tensor(layer, variable, _key(prefix, theirs), to_torch, from_torch))
    elif isinstance(layer, PReLU):
        shape = layer.alpha.shape
        if any(n != 1 for n in shape[:-1]):
            raise ValueError(
                f"PReLU '{layer.name}' has a slope per position (alpha of shape {shape}); torch's PReLU has one per "
                "channel or one in all. Give the layer `shared_axes` over every axis but the channels."
            )
        tensors.append(
            _Tensor(layer, layer.alpha, _key(prefix, "weight"), lambda a: a.reshape(-1), lambda w: w.reshape(shape))
        )
    else:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}) has weights but no PyTorch layout is known for it."
        )
    return tensors


def _torch_modules(layer) -> int:
    from rankconv.layers import SeparableConv

    return 2 if isinstance(layer, SeparableConv) else 1


# ----------------------------------------------------------------------------- the model's side


_PASS_FEATURES = ("Dropout", "Activation", "ReLU", "LeakyReLU", "ELU", "BatchNormalization", "LayerNormalization")


def _keeps_features(layer) -> bool:
    """Whether `layer` keeps the order of its input's last axis (so a flattened order flows through)."""
    from rankconv.layers import Rescaling

    if isinstance(layer, Rescaling):
        return np.ndim(layer.scale) == 0 and np.ndim(layer.offset) == 0
    return type(layer).__name__ in _PASS_FEATURES


def _flattened_order(layer, input_shape):
    """For a Flatten of a spatial input: torch's flattened position i holds rankconv's position
    `order[i]` (rankconv flattens (spatial…, C), as Keras; torch flattens (C, spatial…))."""
    shape = tuple(input_shape)
    if len(shape) < 3 or None in shape[1:]:
        return None
    if layer.data_format == "channels_first":
        channels, spatial = shape[1], shape[2:]
    else:
        channels, spatial = shape[-1], shape[1:-1]
    positions = np.arange(channels * int(np.prod(spatial))).reshape(*spatial, channels)
    return np.moveaxis(positions, -1, 0).reshape(-1)


def _weighted_layers(model, torch_flatten=True):
    """(layer, feature order or None) for every layer with weights, in `model.layers` order
    (models inside the model contribute theirs in place)."""
    from rankconv.layers import Flatten
    from rankconv.models.functional import Model, Sequential

    orders = {}  # id(layer) → the flattened order its input carries

    def walk(model):
        result = []
        if isinstance(model, Sequential):
            shape, order = model._build_input_shape, None
            for layer in model.layers:
                orders[id(layer)] = order
                if shape is not None and isinstance(layer, Flatten):
                    order = _flattened_order(layer, shape)
                elif not _keeps_features(layer):
                    order = None
                shape = None if shape is None else tuple(layer.compute_output_shape(shape))
        else:
            carried = {}
            for node in model._nodes:
                layer = node.layer
                if isinstance(node.inputs, (list, tuple)):
                    order = None
                else:
                    order = carried.get(id(node.inputs))
                    orders[id(layer)] = order
                    if isinstance(layer, Flatten):
                        order = _flattened_order(layer, node.inputs.shape)
                    elif not _keeps_features(layer):
                        order = None
                carried[id(node.outputs[0])] = order
        for layer in model.layers:
            if isinstance(layer, Model):
                result.extend(walk(layer))
            elif layer.variables:
                result.append((layer, orders.get(id(layer)) if torch_flatten else None))
        return result

    return walk(model)


# ----------------------------------------------------------------------------- the torch side


def _natural_key(text):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _prefix(key):
    return key.rsplit(".", 1)[0] if "." in key else ""


def _as_array(value, key):
    try:
        if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
            value = value.detach().cpu().numpy()
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as error:  # bfloat16 has no NumPy dtype, for one
        raise TypeError(
            f"Torch tensor '{key}' cannot be read as a NumPy array ({error}); convert it to float32."
        ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Torch tensor '{key}' must be numeric; received dtype {array.dtype}.")
    return array


def _read_source(source):
    """(tensors by key, module prefixes in order) from a .safetensors path or a dict of arrays."""
    if isinstance(source, dict):
        for key in source:
            if not isinstance(key, str):
                raise TypeError(f"`source` keys must be strings (torch parameter names); received {key!r}.")
        tensors = dict(source)
        prefixes = list(dict.fromkeys(_prefix(k) for k in tensors))
        return tensors, prefixes
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "`source` must be a path to a .safetensors file or a dict of arrays (a state_dict); "
            f"received {type(source).__name__}."
        )
    path = os.fspath(source)
    if not path.endswith(".safetensors"):
        raise ValueError(f"`source` must be a .safetensors file (or a dict of arrays); received {path!r}.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No weights file at {path!r}.")
    safetensors = _require_safetensors()
    from safetensors import safe_open

    try:
        with safe_open(path, framework="np") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except (safetensors.SafetensorError, OSError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a readable .safetensors file: {error}") from None
    found = sorted(dict.fromkeys(_prefix(k) for k in tensors), key=_natural_key)
    try:
        stored = json.loads(metadata.get(ORDER_KEY, "null"))
    except json.JSONDecodeError:
        stored = None
    if isinstance(stored, list) and sorted(stored, key=_natural_key) == found:
        return tensors, stored  # written by save_torch_weights: the model's order
    # a file keeps no order of its own (safetensors sorts by name): module names in natural order
    return tensors, found


# ----------------------------------------------------------------------------- pairing


def _pairs(model, prefixes, mapping, torch_flatten):
    """[(layer, its torch prefixes, feature order)] for the layers to convert."""
    weighted = _weighted_layers(model, torch_flatten)
    if mapping is None:
        needed = sum(_torch_modules(layer) for layer, _ in weighted)
        if needed != len(prefixes):
            ours = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer, _ in weighted)
            raise ValueError(
                f"Pairing by order: model '{model.name}' has {len(weighted)} layers with weights ({ours}), which take "
                f"{needed} torch modules; the source has {len(prefixes)} ({', '.join(prefixes) or 'none'}). "
                "Pass `mapping={rankconv layer name: torch module prefix}` to pair them by name."
            )
        result, at = [], 0
        for layer, order in weighted:
            count = _torch_modules(layer)
            result.append((layer, prefixes[at : at + count], order))
            at += count
        return result
    if not isinstance(mapping, dict):
        raise TypeError(
            f"`mapping` must be a dict {{rankconv layer name: torch module prefix}}; received {type(mapping).__name__}."
        )
    by_name = {layer.name: (layer, order) for layer, order in weighted}
    result = []
    for name, target in mapping.items():
        if name not in by_name:
            raise ValueError(
                f"`mapping` names layer {name!r}, which is not a layer with weights of model '{model.name}'; those "
                f"are {sorted(by_name)}."
            )
        layer, order = by_name[name]
        targets = [target] if isinstance(target, str) else list(target) if isinstance(target, (list, tuple)) else None
        count = _torch_modules(layer)
        if targets is None or len(targets) != count or not all(isinstance(t, str) for t in targets):
            expected = (
                "a pair of module prefixes (depthwise, pointwise)" if count == 2 else "a module prefix (a string)"
            )
            raise ValueError(f"`mapping[{name!r}]` must be {expected}; received {target!r}.")
        result.append((layer, targets, order))
    return result


def _bias_free_depthwise(layer, prefix, tensors):
    """A torch depthwise conv before a pointwise one may carry a bias; rankconv's separable conv has
    none there, so only an all-zero one can be dropped."""
    key = _key(prefix, "bias")
    if key in tensors and np.any(_as_array(tensors[key], key)):
        raise ValueError(
            f"SeparableConv '{layer.name}' has no bias after its depthwise step, but torch module '{prefix}' has a "
            f"non-zero '{key}'. Build the torch depthwise convolution with bias=False."
        )
    return {key} if key in tensors else set()


def load_torch_weights(model, source, mapping=None, *, torch_flatten=True) -> None:
    """Load PyTorch weights into `model`.

    source: a `.safetensors` file or a dict of arrays (a torch `state_dict`).
    mapping: None (pair layers with weights and torch modules by order: a dict's order; a file's
    modules in natural order of their names, e.g. `features.2` before `features.10`, unless the
    file was written by `save_torch_weights`, which records the model's order), or
    `{rankconv layer name: torch module prefix}` to load those layers only.
    torch_flatten: reorder the inputs of a Dense (or BatchNormalization) layer that reads a
    flattened spatial input from PyTorch's (channels, *spatial) order to Keras's (*spatial, channels).

    Every shape is checked before any weight is assigned; an error names both sides.
    """
    from rankconv.models.functional import Model

    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a rankconv Model or Sequential; received {type(model).__name__}.")
    tensors, prefixes = _read_source(source)
    pairs = _pairs(model, prefixes, mapping, torch_flatten)
    assignments, used = [], set()
    for layer, targets, order in pairs:
        for prefix in targets:
            if prefix not in prefixes:
                raise ValueError(
                    f"Layer '{layer.name}' maps to torch module '{prefix}', which the source does not have; it has "
                    f"{', '.join(prefixes[:20])}{' …' if len(prefixes) > 20 else ''}."
                )
        if len(targets) == 2:
            used |= _bias_free_depthwise(layer, targets[0], tensors)
        for tensor in _layer_tensors(layer, targets, order):
            expected = tensor.torch_shape
            if tensor.key not in tensors:
                raise ValueError(
                    f"rankconv layer '{layer.name}' ({type(layer).__name__}) weight '{tensor.variable.name}' "
                    f"{tensor.variable.shape} needs torch tensor '{tensor.key}' of shape {expected}, which the "
                    f"source does not have."
                )
            value = _as_array(tensors[tensor.key], tensor.key)
            if tuple(value.shape) != expected:
                raise ValueError(
                    f"rankconv layer '{layer.name}' ({type(layer).__name__}) weight '{tensor.variable.name}' of shape "
                    f"{tensor.variable.shape} needs torch tensor '{tensor.key}' of shape {expected}; the source holds "
                    f"shape {tuple(value.shape)}."
                )
            assignments.append((tensor.variable, tensor.from_torch(value)))
            used.add(tensor.key)
        for prefix in targets:
            extra = sorted(
                k for k in tensors if _prefix(k) == prefix and k not in used and not k.endswith("num_batches_tracked")
            )
            if extra:
                raise ValueError(
                    f"Torch module '{prefix}' has tensors {extra} that rankconv layer '{layer.name}' "
                    f"({type(layer).__name__}) has no place for (a bias where the layer has use_bias=False, or a "
                    "module of another kind?)."
                )
    for variable, value in assignments:
        variable.value[...] = np.asarray(value, dtype=variable.value.dtype)


def torch_state_dict(model, mapping=None, *, torch_flatten=True) -> dict:
    """`model`'s weights as a PyTorch `state_dict` of NumPy arrays, keyed `<prefix>.<name>`:
    prefixes are the layer names (a separable conv's two modules `<name>.depthwise` and
    `<name>.pointwise`), or `mapping`'s for the layers it names (those layers only).
    `torch.nn.Module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})` reads it."""
    from rankconv.layers import BatchNormalization
    from rankconv.models.functional import Model

    if not isinstance(model, Model):
        raise TypeError(f"`model` must be a rankconv Model or Sequential; received {type(model).__name__}.")
    if mapping is None:
        weighted = _weighted_layers(model, torch_flatten)
        names = [layer.name for layer, _ in weighted]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"Layers {duplicates} occur twice in model '{model.name}' (nested models); pass `mapping`."
            )
        pairs = [
            (
                layer,
                [f"{layer.name}.depthwise", f"{layer.name}.pointwise"] if _torch_modules(layer) == 2 else [layer.name],
                order,
            )
            for layer, order in weighted
        ]
    else:
        pairs = _pairs(model, None, mapping, torch_flatten)
    state = {}
    for layer, targets, order in pairs:
        for tensor in _layer_tensors(layer, targets, order):
            state[tensor.key] = np.ascontiguousarray(tensor.to_torch(tensor.variable.numpy()))
        if isinstance(layer, BatchNormalization):
            state[_key(targets[0], "num_batches_tracked")] = np.zeros((), dtype=np.int64)
    return state


def save_torch_weights(model, path, mapping=None, *, torch_flatten=True) -> None:
    """Write `model`'s weights as a `.safetensors` file in PyTorch's layouts (`torch_state_dict`),
    atomically. `safetensors.torch.load_file(path)` gives a `state_dict` for the torch model."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a file path (str or os.PathLike); received {type(path).__name__}.")
    if not os.fspath(path).endswith(".safetensors"):
        raise ValueError(f"`path` must end in '.safetensors'; received {os.fspath(path)!r}.")
    safetensors = _require_safetensors()
    state = torch_state_dict(model, mapping, torch_flatten=torch_flatten)
    order = list(dict.fromkeys(_prefix(k) for k in state))
    data = safetensors.numpy.save(state, metadata={"format": "pt", ORDER_KEY: json.dumps(order)})
    with atomic_write(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
