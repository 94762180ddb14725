"""Models as layers: the functional `Model(inputs, outputs)` graph and `Sequential`."""

from __future__ import annotations

import numpy as np

from rankconv.layers.core import InputLayer
from rankconv.layers.layer import KerasTensor, Layer, _freeze
from rankconv.models.training import Trainer


class Model(Trainer, Layer):
    """Base of models. `Model(inputs, outputs)` builds a functional model (class `Functional`)."""

    def __new__(cls, *args, **kwargs):
        if cls is Model:
            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, name=None, trainable=True, dtype=None):
        Layer.__init__(self, name=name, dtype=dtype)
        self._trainable_flag = bool(trainable)
        Trainer.__init__(self)
        # JSON-serialisable settings saved with the model (see rankconv.saving)
        self.metadata: dict = {}

    @property
    def trainable(self) -> bool:
        return getattr(self, "_trainable_flag", True)

    @trainable.setter
    def trainable(self, value) -> None:
        # as Keras: (un)freezing a model (un)freezes every layer in it
        self._trainable_flag = bool(value)
        for layer in getattr(self, "layers", None) or []:
            layer.trainable = bool(value)

    @classmethod
    def from_config(cls, config: dict):
        from rankconv.saving.serialization import model_from_config

        class_name = "Sequential" if issubclass(cls, Sequential) else "Functional"
        return model_from_config({"class_name": class_name, "config": config}, "the model config")

    # -- weights: those of the layers, each once ------------------------------------------

    def _unique_variables(self, select):
        seen, result = set(), []
        for layer in self.layers:
            for v in select(layer):
                if id(v) not in seen:
                    seen.add(id(v))
                    result.append(v)
        return result

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return self._unique_variables(lambda layer: layer.trainable_weights)

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self._unique_variables(lambda layer: layer.weights)
        return self._unique_variables(lambda layer: layer.non_trainable_weights)

    @property
    def weights(self):
        return self._unique_variables(lambda layer: layer.weights)

    @property
    def variables(self):
        return self._unique_variables(lambda layer: layer.variables)

    def get_weights(self):
        return [v.value.copy() for v in self.weights]

    def set_weights(self, weights):
        weights = list(weights)
        expected = self.weights
        if len(weights) != len(expected):
            raise ValueError(f"Model '{self.name}' has {len(expected)} weight arrays; received {len(weights)}.")
        for variable, value in zip(expected, weights):
            if np.shape(value) != variable.shape:
                raise ValueError(
                    f"Model '{self.name}': weight '{variable.path}' has shape {variable.shape}; received {np.shape(value)}."
                )
        for variable, value in zip(expected, weights):
            variable.assign(value)

    @property
    def losses(self):
        return [loss for layer in self.layers for loss in layer.losses]

    def count_params(self):
        return int(sum(v.value.size for v in self.weights))

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"Model '{self.name}' has no layer named {name!r}; its layers are {[layer.name for layer in self.layers]}."
        )

    def summary(self, print_fn=print, line_length=None):
        from rankconv.models.summary import summary

        summary(self, print_fn, line_length)

    def save(self, filepath, overwrite=True):
        from rankconv import saving

        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        from rankconv import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        from rankconv import saving

        saving.load_weights(self, filepath)

    def export(self, filepath, format="onnx", verbose=None, input_signature=None, **kwargs):
        """Write the inference graph for a serving runtime, as Keras 3's `export`: `format="onnx"`
        (the only one; `opset_version=` picks the opset, default 17). Needs the `export` extra."""
        from rankconv.saving import onnx_export

        onnx_export.export_model(
            self, filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs
        )


class Functional(Model):
    """A graph of layers from `Input`s to outputs; several inputs and branches allowed."""

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        super().__init__(name=name)
        self._nested_inputs = inputs
        self._nested_outputs = outputs
        self.inputs = _as_list(inputs, "inputs")
        self.outputs = _as_list(outputs, "outputs")
        for tensor in self.inputs:
            if not isinstance(tensor.node.layer, InputLayer):
                raise ValueError(
                    f"Model inputs must come from `rankconv.Input`; {tensor} comes from layer '{tensor.node.layer.name}'."
                )
        self._nodes = _nodes_between(self.inputs, self.outputs)
        self.layers = _ordered_layers(self.inputs, self.outputs)
        names = [layer.name for layer in self.layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"The layer names in a model must be unique; {duplicates} occur more than once.")
        self.built = True
        self._build_input_shape = _freeze(
            [t.shape for t in self.inputs] if len(self.inputs) > 1 else self.inputs[0].shape
        )

    def call(self, inputs, training=None):
        for layer in self.layers:
            layer._activity_losses = []  # a layer called several times adds a penalty per call
        values = self._feed(inputs)
        masks = {}
        for node in self._nodes:
            args = node.inputs
            if isinstance(args, (list, tuple)):
                arguments = [values[id(t)] for t in args]
                mask = None
            else:
                arguments = values[id(args)]
                mask = masks.get(id(args))
            options = {k: v for k, v in node.arguments.items() if k != "training"}
            output = node.layer(arguments, training=training, mask=mask, **options)
            values[id(node.outputs[0])] = output
            computed = node.layer.compute_mask(arguments, mask)
            if computed is not None:
                masks[id(node.outputs[0])] = computed
        outputs = [values[id(t)] for t in self.outputs]
        return outputs[0] if len(outputs) == 1 and not isinstance(self._nested_outputs, (list, tuple)) else outputs

    def _feed(self, inputs):
        if isinstance(inputs, dict):
            try:
                inputs = [inputs[t.node.layer.name] for t in self.inputs]
            except KeyError as missing:
                raise ValueError(
                    f"Model '{self.name}' has no input named {missing}; inputs are {[t.node.layer.name for t in self.inputs]}."
                ) from None
        if len(self.inputs) == 1:
            inputs = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
            inputs = [inputs]
        elif not isinstance(inputs, (list, tuple)) or len(inputs) != len(self.inputs):
            raise ValueError(
                f"Model '{self.name}' takes {len(self.inputs)} inputs; received {'one array' if not isinstance(inputs, (list, tuple)) else len(inputs)}."
            )
        values = {}
        for tensor, value in zip(self.inputs, inputs):
            values[id(tensor)] = _check_input(self.name, tensor, value)
        return values

    def __call__(self, inputs, training=None, mask=None, **kwargs):
        if _symbolic(inputs):  # a model used as a layer of another model
            if len(self.outputs) != 1:
                raise ValueError(
                    f"Model '{self.name}' has {len(self.outputs)} outputs; rankconv nests models with one output."
                )
            return self._symbolic_call(inputs, training=training)
        with self._inference_scope("__call__"):  # refused while another thread trains the model
            return self.call(inputs, training=training)

    def check_input_shape(self, shape) -> None:
        shapes = shape if isinstance(shape, list) else [shape]
        if len(shapes) != len(self.inputs):
            raise ValueError(f"Model '{self.name}' takes {len(self.inputs)} inputs; received {len(shapes)}.")
        for tensor, given in zip(self.inputs, shapes):
            expected = tuple(tensor.shape)
            if len(given) != len(expected) or any(
                e is not None and g is not None and e != g for e, g in zip(expected[1:], tuple(given)[1:])
            ):
                raise ValueError(
                    f"Model '{self.name}' input '{tensor.node.layer.name}' expects shape {expected}; received {tuple(given)}."
                )

    def compute_output_shape(self, input_shape):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def get_build_config(self):
        return {"input_shape": None}  # as Keras: a functional model is built by its own graph

    def get_config(self):
        layers = []
        for layer in self.layers:
            entry = {**layer_entry(layer), "name": layer.name, "inbound_nodes": []}
            for node in layer._inbound_nodes:
                if node in self._node_set and not isinstance(layer, InputLayer):
                    entry["inbound_nodes"].append(_node_config(node, self._node_index))
            layers.append(entry)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layers,
            "input_layers": _endpoints(self._nested_inputs, self._node_index),
            "output_layers": _endpoints(self._nested_outputs, self._node_index),
        }

    @property
    def _node_set(self):
        return set(self._nodes) | {t.node for t in self.inputs}

    def _node_index(self, node):
        """A node's index among the layer's calls *in this model* (Keras renumbers them so)."""
        return [n for n in node.layer._inbound_nodes if n in self._node_set].index(node)


def layer_entry(layer) -> dict:
    """A layer's entry in a model config, as Keras writes it: class, module and config; nested
    models under Keras's model classes (`Functional`, `Sequential`)."""
    if isinstance(layer, Functional):
        module, class_name, registered = "keras.src.models.functional", "Functional", "Functional"
    elif isinstance(layer, Sequential):
        module, class_name, registered = "keras", "Sequential", None
    else:
        module, class_name, registered = "keras.layers", type(layer).__name__, None
    entry = {"module": module, "class_name": class_name, "config": layer.get_config(), "registered_name": registered}
    build_config = layer.get_build_config()
    if build_config is not None and not isinstance(layer, InputLayer):
        entry["build_config"] = build_config
    return entry


def _symbolic(inputs):
    if isinstance(inputs, (list, tuple)):
        return any(isinstance(x, KerasTensor) for x in inputs)
    return isinstance(inputs, KerasTensor)


def _as_list(tensors, argument):
    listed = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    for t in listed:
        if not isinstance(t, KerasTensor):
            raise TypeError(
                f"Model `{argument}` must be symbolic tensors (from rankconv.Input and layer calls); received {type(t).__name__}."
            )
    return listed


def _check_input(model_name, tensor, value):
    from rankconv.ops.autodiff import Tracer

    if isinstance(value, Tracer):
        return value
    array = np.asarray(value)
    expected = tensor.shape
    if array.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected, array.shape)):
        hint = " Add a batch axis with x[np.newaxis]." if array.ndim == len(expected) - 1 else ""
        raise ValueError(
            f"Model '{model_name}' input '{tensor.node.layer.name}' expects shape {expected} (None: any size); "
            f"received {array.shape}.{hint}"
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"Model '{model_name}' input '{tensor.node.layer.name}' must be numeric; received dtype {array.dtype}."
        )
    return array


def _nodes_between(inputs, outputs):
    """The nodes that lead from `inputs` to `outputs`, each after the nodes it reads (topological)."""
    input_ids = {id(t) for t in inputs}
    order, state = [], {}

    def visit(tensor):
        if id(tensor) in input_ids:
            return
        node = tensor.node
        if node is None or isinstance(node.layer, InputLayer):
            raise ValueError(
                f"Output {tensor} depends on an input that is not among the model's inputs "
                f"(layer '{node.layer.name if node else '?'}')."
            )
        if state.get(id(node)) == "done":
            return
        if state.get(id(node)) == "visiting":
            raise ValueError("The layer graph has a cycle.")
        state[id(node)] = "visiting"
        for t in node.input_tensors:
            visit(t)
        state[id(node)] = "done"
        order.append(node)

    for tensor in outputs:
        visit(tensor)
    return order


def _ordered_layers(inputs, outputs):
    """The model's layers in Keras's order, which names the groups of its weight file.

    Keras visits the graph depth-first from the outputs, numbering layers as it first meets them,
    gives every node a depth (its distance from the outputs), and lists layers from the deepest
    (the inputs) to depth 0, breaking ties by that visiting number.
    """
    visit_number, post_order, finished = {}, [], set()

    def walk(tensor):
        node = tensor.node
        if node in finished:
            return
        visit_number.setdefault(node.layer, len(visit_number))
        is_input = isinstance(node.layer, InputLayer)
        if not is_input and not any(tensor is t for t in inputs):
            for t in node.input_tensors:
                walk(t)
        finished.add(node)
        post_order.append(node)

    for tensor in outputs:
        walk(tensor)
    node_depth, layer_depth = {}, {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = node_depth[node] = depth
        for t in node.input_tensors:
            if t.node in finished:
                node_depth[t.node] = max(depth + 1, node_depth.get(t.node, 0))
    for tensor in inputs:
        layer_depth.setdefault(tensor.node.layer, 0)
        visit_number.setdefault(tensor.node.layer, -1)
    return sorted(layer_depth, key=lambda layer: (-layer_depth[layer], visit_number[layer]))


def _node_config(node, node_index):
    def tensor_config(t):
        return {
            "class_name": "__keras_tensor__",
            "config": {
                "shape": list(t.shape),
                "dtype": t.dtype,
                "keras_history": [t.node.layer.name, node_index(t.node), t.index],
            },
        }

    if isinstance(node.inputs, (list, tuple)):
        args = [[tensor_config(t) for t in node.inputs]]
    else:
        args = [tensor_config(node.inputs)]
    kwargs = {k: v for k, v in node.arguments.items() if v is not None}
    return {"args": args, "kwargs": kwargs}


def _endpoints(tensors, node_index):
    def one(t):
        # Keras counts a functional model's own input-to-output node first, here only
        offset = 1 if isinstance(t.node.layer, Functional) else 0
        return [t.node.layer.name, node_index(t.node) + offset, t.index]

    # Keras writes one tensor as a flat [layer, node, index] triple, several as a list of them
    if isinstance(tensors, (list, tuple)):
        return [one(t) for t in tensors]
    return one(tensors)


class Sequential(Model):
    """A plain stack of layers, each reading the previous one's output."""

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(name=name, trainable=trainable)
        self._layers = []
        self._input_layer = None
        self._output_shape = None
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        if isinstance(layer, KerasTensor):
            if not isinstance(layer.node.layer, InputLayer):
                raise ValueError("Only an `Input` tensor can be added to a Sequential model, as its first entry.")
            layer = layer.node.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes a layer; received {type(layer).__name__}.")
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("An InputLayer can only be the first entry of a Sequential model.")
            self._input_layer = layer
            self.build(layer.batch_shape)
            return
        if any(existing is layer for existing in self._layers):
            raise ValueError(f"Layer '{layer.name}' is already in Sequential model '{self.name}'.")
        self._layers.append(layer)
        if self._build_input_shape is not None:
            # only the new layer needs building: the shape so far is known
            shape = self._output_shape or self._trace_shapes(self._build_input_shape)
            layer.check_input_shape(shape)
            if not layer.built:
                layer.build(shape)
            self._output_shape = tuple(layer.compute_output_shape(shape))

    def build(self, input_shape):
        self._build_input_shape = tuple(input_shape)
        self._output_shape = self._trace_shapes(self._build_input_shape)
        self.built = True

    def _trace_shapes(self, input_shape):
        """Build every layer from the shapes flowing through the stack; returns the output shape."""
        shape = tuple(input_shape)
        for layer in self._layers:
            layer.check_input_shape(shape)
            if not layer.built:
                layer.build(shape)
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def call(self, inputs, training=None):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            inputs = inputs[0]
        for layer in self._layers:
            layer._activity_losses = []
        mask = None
        for layer in self._layers:
            outputs = layer(inputs, training=training, mask=mask)
            mask = layer.compute_mask(inputs, mask)
            inputs = outputs
        return inputs

    def __call__(self, inputs, training=None, mask=None, **kwargs):
        if _symbolic(inputs):  # a model used as a layer of another model
            return self._symbolic_call(inputs, training=training)
        from rankconv.ops.autodiff import Tracer

        if not isinstance(inputs, Tracer):
            inputs = np.asarray(inputs)
            if self._build_input_shape is not None:
                expected = self._build_input_shape
                if inputs.ndim != len(expected) or any(
                    e is not None and e != a for e, a in zip(expected[1:], inputs.shape[1:])
                ):
                    hint = " Add a batch axis with x[np.newaxis]." if inputs.ndim == len(expected) - 1 else ""
                    raise ValueError(
                        f"Sequential model '{self.name}' expects inputs of shape {expected}; received {inputs.shape}.{hint}"
                    )
            else:
                self.build((None, *inputs.shape[1:]))
        with self._inference_scope("__call__"):  # refused while another thread trains the model
            return self.call(inputs, training=training)

    def compute_output_shape(self, input_shape):
        return self._trace_shapes(input_shape)

    @property
    def inputs(self):
        return None

    def get_config(self):
        layers = []
        if self._input_layer is not None or self._build_input_shape is not None:
            batch_shape = self._input_layer.batch_shape if self._input_layer else tuple(self._build_input_shape)
            input_config = {
                "batch_shape": batch_shape,
                "dtype": self._input_layer.dtype if self._input_layer else "float32",
                "sparse": False,
                "ragged": False,
                "name": self._input_layer.name if self._input_layer else f"{self.name}_input",
                "optional": False,
            }
            layers.append(
                {"module": "keras.layers", "class_name": "InputLayer", "config": input_config, "registered_name": None}
            )
        for layer in self._layers:
            layers.append(layer_entry(layer))
        config = {"name": self.name, "trainable": self.trainable, "dtype": _policy(self.dtype), "layers": layers}
        if self._build_input_shape is not None:
            config["build_input_shape"] = list(self._build_input_shape)
        return config


def _policy(name):
    from rankconv.layers.layer import dtype_policy

    return dtype_policy(name)
