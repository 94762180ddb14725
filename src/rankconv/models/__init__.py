"""Models: functional `Model(inputs, outputs)`, `Sequential`, and Keras's training API.

As `keras.models`, this also holds `load_model`, `save_model`, `model_from_json` and `clone_model`.
"""

from rankconv.models.functional import Functional, Model, Sequential
from rankconv.saving import load_model, save_model

__all__ = ["Functional", "Model", "Sequential", "clone_model", "load_model", "model_from_json", "save_model"]


def model_from_json(json_string, custom_objects=None):
    """A model (new weights) from the JSON of its config, as Keras's `model.to_json()` writes it."""
    from rankconv.saving.archive import parse_json
    from rankconv.saving.serialization import model_from_config

    if custom_objects:
        raise ValueError("`custom_objects` is not supported: rankconv builds only its own classes.")
    if isinstance(json_string, str):
        json_string = json_string.encode("utf-8")
    if not isinstance(json_string, (bytes, bytearray)):
        raise TypeError(f"`json_string` must be a JSON string; received {type(json_string).__name__}.")
    return model_from_config(parse_json(bytes(json_string), "the model JSON"), "the model JSON")


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False, **kwargs):
    """A new model with `model`'s architecture and newly initialised weights, as Keras's `clone_model`.

    Each layer is rebuilt by `clone_function(layer)` (default: `type(layer).from_config(layer.get_config())`,
    so names and settings are kept); a layer used at several places is cloned once and shared as
    in the original. `input_tensors` (symbolic `rankconv.Input`s, structured as `model`'s inputs) replace
    new inputs; `call_function(layer, inputs, **kwargs)` (functional models only) calls each cloned
    layer. A compiled model's clone is compiled the same way, with a fresh optimizer.
    """
    from rankconv.layers.core import Input, InputLayer
    from rankconv.layers.layer import KerasTensor

    if kwargs:
        raise ValueError(f"clone_model: unexpected keyword arguments {sorted(kwargs)}.")
    if not isinstance(model, (Functional, Sequential)):
        raise TypeError(f"clone_model expects a Functional or Sequential model; received {type(model).__name__}.")
    if clone_function is None:

        def clone_function(layer):
            return type(layer).from_config(layer.get_config())

    elif not callable(clone_function):
        raise ValueError(f"`clone_function` must be a callable; received clone_function={clone_function!r}.")
    if call_function is not None and not callable(call_function):
        raise ValueError(f"`call_function` must be a callable; received call_function={call_function!r}.")
    clones = {}

    def clone(layer):
        if id(layer) not in clones:
            clones[id(layer)] = clone_function(layer)
        return clones[id(layer)]

    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError(
                "`call_function` works with functional models only: a Sequential model's layers are listed, not "
                "called, when it is built."
            )
        layers = [clone(layer) for layer in model.layers]
        if input_tensors is not None:
            if isinstance(input_tensors, (list, tuple)):
                if len(input_tensors) != 1:
                    raise ValueError(
                        f"`input_tensors` of a Sequential model must be one tensor; received {len(input_tensors)}."
                    )
                input_tensors = input_tensors[0]
            if not isinstance(input_tensors, KerasTensor) or not isinstance(input_tensors.node.layer, InputLayer):
                raise ValueError(
                    "`input_tensors` of a Sequential model must be a `rankconv.Input` tensor; "
                    f"received {input_tensors!r}."
                )
            layers.insert(0, input_tensors)
        elif model._input_layer is not None:
            source = model._input_layer
            layers.insert(0, Input(batch_shape=source.batch_shape, dtype=source.dtype, name=source.name))
        elif model._build_input_shape is not None:
            layers.insert(0, Input(batch_shape=model._build_input_shape, name=f"{model.name}_input"))
        new_model = Sequential(layers, name=model.name, trainable=model.trainable)
    else:
        if input_tensors is None:
            inputs = [Input(batch_shape=t.shape, dtype=t.dtype, name=t.name) for t in model.inputs]
        else:
            inputs = list(input_tensors) if isinstance(input_tensors, (list, tuple)) else [input_tensors]
            if len(inputs) != len(model.inputs) or not all(isinstance(t, KerasTensor) for t in inputs):
                raise ValueError(
                    f"`input_tensors` must be {len(model.inputs)} symbolic tensor(s) (rankconv.Input), as the model's "
                    f"inputs {[t.shape for t in model.inputs]}; received {input_tensors!r}."
                )
        tensors = {id(old): new for old, new in zip(model.inputs, inputs)}
        for node in model._nodes:
            layer = clone(node.layer)
            if isinstance(node.inputs, (list, tuple)):
                arguments = [tensors[id(t)] for t in node.inputs]
            else:
                arguments = tensors[id(node.inputs)]
            options = dict(node.arguments)
            output = call_function(layer, arguments, **options) if call_function else layer(arguments, **options)
            tensors[id(node.outputs[0])] = output
        outputs = [tensors[id(t)] for t in model.outputs]
        nested_inputs = inputs if isinstance(model._nested_inputs, (list, tuple)) else inputs[0]
        nested_outputs = outputs if isinstance(model._nested_outputs, (list, tuple)) else outputs[0]
        new_model = Functional(nested_inputs, nested_outputs, name=model.name)
    if model.compiled:
        _compile_like(new_model, model)
    return new_model


def _compile_like(new_model, model):
    """Compile `new_model` as `model` is, with a fresh optimizer and fresh metric objects."""
    from rankconv import objects, optimizers

    metrics = []
    for spec in model._metric_specs:
        rebuild = not isinstance(spec, str) and hasattr(spec, "get_config") and hasattr(type(spec), "from_config")
        metrics.append(type(spec).from_config(spec.get_config()) if rebuild else spec)
    new_model.compile(
        optimizer=optimizers.get(objects.serialize(model.optimizer)),
        loss=model._loss_identifier,
        metrics=metrics or None,
    )
