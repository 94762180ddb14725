"""`rankconv explain`: what every convolution of a model computes, in numbers and in words.

    rankconv explain "Conv1D(64, 3)" --input 600,300
    rankconv explain model.keras --json
    rankconv explain "Conv2D(32, 3, strides=2)" "MaxPooling2D(2)" --input 28,28,1 --html page.html

`explain(model_or_layers, input_shape=None, batch_size=None)` returns an `Explanation`: per layer
its class and the arguments that matter, its input, kernel and output shapes, parameters (Keras's
`count_params`), multiply-adds and FLOPs, activation memory, its receptive field on the model's
input along every spatial axis (`rankconv.receptive_field`), the algorithm the planner would pick
for it and why (`rankconv.ops.conv_plan`), and the forms that compute the same thing
(`rankconv.equivalence`'s lift/lower and depthwise↔grouped, 1×1↔Dense, …), each with its kernel
shape; and a few sentences in the seed's spirit. `str(explanation)` is the plain report,
`explanation.to_dict()` the JSON one (`rankconv explain --json`), and
`rankconv.explanation_html.write_html` the page (`--html FILE`).

Here: walking the model's graph (nested models opened up), shapes, counts and the command line.
`rankconv.explanation_forms` has the planner's calls and the equivalent forms,
`rankconv.explanation_text` the words and the plain report, `rankconv.receptive_field` the
field arithmetic, `rankconv.expressions` the safe parsing of layer expressions.

JSON keys (`to_dict()`; shapes are lists, per sample unless named `batch_…`; counts per sample
unless named `batch_…`, which are null without a batch size; null where a length is unknown):

- `name`, `source` (what was explained), `batch_size` (null: shapes keep None for the batch),
  `plan_batch` (the batch the planner was asked about: `batch_size` or 32), `trained` (weights came
  from a model file, so the kernels mean something);
- `inputs`: per model input `name`, `shape`, `dtype`, `spatial_axes` (names such as `"rows"`,
  `"cols"`, `"steps"`, or `"words"` for token ids read by an `Embedding`) and `lengths`;
- `layers`: per layer, in the order values flow (the model's inputs first):
  `name`, `class_name`, `call` (e.g. `"Conv1D(64, 3)"`), `arguments` (those that matter),
  `inputs` (names of the layers feeding it), `input_shape` (a list of shapes for merges),
  `output_shape`, `batch_input_shape`, `batch_output_shape`, `weights` ({weight name: shape}),
  `kernel_shape`, `params` (= `count_params()`), `trainable_params`, `multiply_adds`, `flops`
  (2 per multiply-add, 1 per bias add, 1 per value a pooling window reads, 1 per value a merge
  combines, 2 per value a batch normalisation or rescaling scales and shifts; activation functions
  are not counted), `batch_multiply_adds`, `batch_flops`, `activation_bytes` (the output tensor
  per sample), `batch_activation_bytes`;
  `receptive_field`: one entry per spatial axis of the model's inputs the layer's output depends
  on — `input`, `axis` (its name), `size` (cells from the first to the last one an output cell
  sees; the largest over output positions), `min_size` (the smallest: less only after upsampling
  or transposed convolutions), `jump` (input cells between neighbouring outputs; a fraction
  below 1 after upsampling), `jump_fraction` (the same as text, e.g. `"1/2"`), `start` (where
  output 0's field begins, negative inside "same"/"causal" padding; null when that depends on
  an unknown length), `whole` (the axis was pooled, flattened or mixed away, so every output
  sees all of it); `receptive_field_note` (why there is none, e.g. a layer it could not be traced
  through);
  `plan`: the calls of the one general convolution the layer makes, each with `x_shape`,
  `kernel_shape`, `strides`, `padding` (explicit pairs), `lhs_dilation`, `rhs_dilation` and the
  planner's `forward` and `backward` choice (`algorithm`, `reason`); `plan_note` where there is
  no plan;
  `equivalents`: forms that compute the same outputs, each with `form`, `input_shape`,
  `output_shape`, `kernel_shapes`, `via` (how to get it) and `note`;
  `sentences`: the plain-language explanation;
- `totals`: `params`, `trainable_params` (each weight counted once), `multiply_adds`, `flops`,
  `activation_bytes`, and their `batch_…` forms;
- `sentences`: about the whole model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import textwrap
from dataclasses import dataclass, field

import numpy as np

from rankconv import receptive_field as rf
from rankconv import utils
from rankconv.explanation_forms import Equivalent, equivalents, plan_calls, weight_shapes
from rankconv.explanation_text import (
    SPATIAL_NAMES,
    arguments_that_matter,
    call_text,
    field_sentence,
    format_text,
    layer_sentences,
    layout,
    listed,
    model_sentences,
    product,
    shape_text,
)

__all__ = ["AxisField", "Equivalent", "Explanation", "InputDescription", "LayerExplanation", "add_parser", "explain"]

PLAN_BATCH = 32  # the planner is asked about this batch when none is given (Keras's default batch size)


# Weights explain may allocate for layers it builds itself (expressions, unbuilt layers): 1 GB of float32.
MAX_BUILD_ELEMENTS = 1 << 28


@dataclass
class AxisField:
    """A layer's receptive field along one spatial axis of one of the model's inputs."""

    input: str
    axis: str
    field: rf.Field

    def to_dict(self) -> dict:
        jump = self.field.jump
        return {
            "input": self.input,
            "axis": self.axis,
            "size": self.field.size,
            "min_size": self.field.min_size,
            "jump": None if jump is None else (int(jump) if jump.denominator == 1 else float(jump)),
            "jump_fraction": None if jump is None else str(jump),
            "start": self.field.start,
            "whole": self.field.whole,
        }


@dataclass
class LayerExplanation:
    name: str
    class_name: str
    call: str
    arguments: dict
    inputs: list
    input_shape: object  # a per-sample shape, or a list of them for a merge
    output_shape: tuple
    batch_input_shape: object
    batch_output_shape: tuple
    weights: dict
    kernel_shape: tuple | None
    params: int
    trainable_params: int
    multiply_adds: int | None
    flops: int | None
    activation_bytes: int | None
    batch_size: int | None
    receptive_field: list = field(default_factory=list)
    receptive_field_note: str = ""
    plan: list = field(default_factory=list)
    plan_note: str = ""
    equivalents: list = field(default_factory=list)
    sentences: list = field(default_factory=list)
    layer: object = field(default=None, repr=False)  # the layer itself (None for a model input)
    trace: tuple = field(default=(), repr=False)  # its output's receptive-field trace

    def _batch(self, value):
        return None if value is None or self.batch_size is None else value * self.batch_size

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "class_name": self.class_name,
            "call": self.call,
            "arguments": _jsonable(self.arguments),
            "inputs": list(self.inputs),
            "input_shape": listed(self.input_shape),
            "output_shape": listed(self.output_shape),
            "batch_input_shape": listed(self.batch_input_shape),
            "batch_output_shape": listed(self.batch_output_shape),
            "weights": {k: list(v) for k, v in self.weights.items()},
            "kernel_shape": listed(self.kernel_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "multiply_adds": self.multiply_adds,
            "flops": self.flops,
            "batch_multiply_adds": self._batch(self.multiply_adds),
            "batch_flops": self._batch(self.flops),
            "activation_bytes": self.activation_bytes,
            "batch_activation_bytes": self._batch(self.activation_bytes),
            "receptive_field": [f.to_dict() for f in self.receptive_field],
            "receptive_field_note": self.receptive_field_note,
            "plan": _jsonable(self.plan),
            "plan_note": self.plan_note,
            "equivalents": [e.to_dict() for e in self.equivalents],
            "sentences": list(self.sentences),
        }


@dataclass
class InputDescription:
    name: str
    shape: tuple
    dtype: str
    spatial_axes: tuple  # names
    lengths: tuple

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": listed(self.shape),
            "dtype": self.dtype,
            "spatial_axes": list(self.spatial_axes),
            "lengths": list(self.lengths),
        }


@dataclass
class Explanation:
    """What `explain` found; `str()` gives the plain report, `to_dict()` the JSON one."""

    name: str
    source: str
    batch_size: int | None
    plan_batch: int
    trained: bool
    inputs: list
    layers: list
    totals: dict
    sentences: list

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "batch_size": self.batch_size,
            "plan_batch": self.plan_batch,
            "trained": self.trained,
            "inputs": [i.to_dict() for i in self.inputs],
            "layers": [layer.to_dict() for layer in self.layers],
            "totals": dict(self.totals),
            "sentences": list(self.sentences),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_text(self, width: int = 100) -> str:
        return format_text(self, width)

    def __str__(self) -> str:
        return self.to_text()

    def layer(self, name: str) -> LayerExplanation:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer named {name!r}; the layers are {[layer.name for layer in self.layers]}.")


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass
class _Node:
    name: str
    layer: object  # None for a model input
    inputs: list  # indices of the nodes feeding it
    merge: bool = False  # the layer receives a list of inputs
    shape: tuple = ()  # output shape, batch axis included
    dtype: str = "float32"
    trace: tuple = ()
    input_index: int | None = None  # for a model input: which one
    spatial: tuple = ()  # for a model input: its spatial axes (batch excluded)


@contextlib.contextmanager
def _names_kept():
    """Layers made while explaining (from expressions, equivalent forms) are named as in a fresh
    session (`conv1d`, `conv1d_1`, …, the same on every run) and take no automatic names away from
    the user's next layers: the name counters are set aside, then restored."""
    from rankconv.layers import layer as layer_module

    saved = dict(layer_module._name_counts)
    layer_module._name_counts.clear()
    try:
        yield
    finally:
        layer_module._name_counts.clear()
        layer_module._name_counts.update(saved)


def _parse_shape(value, what: str) -> tuple:
    """A per-sample shape: a tuple/list of ints (None for unknown), or text such as "600,300"."""
    if isinstance(value, str):
        text = value.strip().strip("()[]")
        parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
        shape = []
        for part in parts:
            if part.lower() in ("none", "?"):
                shape.append(None)
                continue
            try:
                shape.append(int(part))
            except ValueError:
                raise ValueError(
                    f"`{what}` must be sizes separated by commas, such as 600,300 (None for an unknown length); "
                    f"received {value!r}."
                ) from None
        value = shape
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"`{what}` must be a non-empty per-sample shape such as (600, 300); received {value!r}.")
    shape = []
    for d in value:
        if d is None:
            shape.append(None)
        elif isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0:
            shape.append(int(d))
        else:
            raise ValueError(
                f"`{what}` must hold positive sizes (or None); received {tuple(value)!r}, including {d!r}."
            )
    return tuple(shape)


def _input_shapes(input_shape, count: int) -> list | None:
    """`input_shape` as one per-sample shape per model input (None: keep the model's)."""
    if input_shape is None:
        return None
    if count > 1:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != count:
            raise ValueError(
                f"The model has {count} inputs, so `input_shape` must be a list of {count} per-sample shapes; "
                f"received {input_shape!r}."
            )
        return [_parse_shape(s, f"input_shape[{i}]") for i, s in enumerate(input_shape)]
    if isinstance(input_shape, list) and len(input_shape) == 1 and not isinstance(input_shape[0], (int, type(None))):
        input_shape = input_shape[0]
    return [_parse_shape(input_shape, "input_shape")]


class _Graph:
    """The layers of what is explained, as nodes in the order values flow (inputs first)."""

    def __init__(self):
        self.nodes: list[_Node] = []
        self.input_layers: list = []  # per model input: its InputLayer or None
        self.outputs: list[int] = []

    def add_input(self, name, shape, dtype, layer=None) -> int:
        self.nodes.append(_Node(name, None, [], shape=tuple(shape), dtype=dtype, input_index=len(self.input_layers)))
        self.input_layers.append(layer)
        return len(self.nodes) - 1

    def add_layer(self, layer, inputs, merge=False, prefix="") -> int:
        name = prefix + layer.name
        taken = {node.name for node in self.nodes}
        if name in taken:  # a shared layer called again
            number = 2
            while f"{name} (call {number})" in taken:
                number += 1
            name = f"{name} (call {number})"
        self.nodes.append(_Node(name, layer, list(inputs), merge=merge))
        return len(self.nodes) - 1

    def add_model(self, model, inputs, prefix="") -> list[int]:
        """The model's layers, fed by nodes `inputs`; returns the nodes of its outputs."""
        from rankconv.models import Sequential

        if isinstance(model, Sequential):
            current = inputs[0]
            for layer in model.layers:
                current = self.add_any(layer, [current], False, prefix)
            return [current]
        produced = {id(t): node for t, node in zip(model.inputs, inputs)}
        for node in model._nodes:
            feeding = [produced[id(t)] for t in node.input_tensors]
            merge = isinstance(node.inputs, (list, tuple))
            produced[id(node.outputs[0])] = self.add_any(node.layer, feeding, merge, prefix)
        return [produced[id(t)] for t in model.outputs]

    def add_any(self, layer, inputs, merge, prefix) -> int:
        from rankconv.models import Model

        if isinstance(layer, Model):
            return self.add_model(layer, inputs, prefix + layer.name + "/")[0]
        return self.add_layer(layer, inputs, merge, prefix)


def _graph_of(target, input_shape) -> tuple[_Graph, str, str, bool]:
    """(graph, name, source description, trained) for whatever `explain` was given."""
    from rankconv.layers.layer import Layer
    from rankconv.models import Model, Sequential

    graph = _Graph()
    if isinstance(target, (str, os.PathLike)) and _is_model_path(target):
        from rankconv import saving

        model = saving.load_model(target)
        graph, name, _, _ = _graph_of(model, input_shape)
        return graph, name, f"model file {os.fspath(target)}", True
    if isinstance(target, str):
        target = [target]
    if isinstance(target, Sequential):
        shapes = _input_shapes(input_shape, 1)
        if shapes is None:
            if target._build_input_shape is None:
                raise ValueError(
                    f"Sequential model '{target.name}' has no input shape yet; pass `input_shape` (the per-sample "
                    "shape, such as (28, 28, 1))."
                )
            shapes = [tuple(target._build_input_shape)[1:]]
        first = target._input_layer
        dtype = first.dtype if first is not None else "float32"
        start = graph.add_input(first.name if first is not None else "input", (None, *shapes[0]), dtype, first)
        graph.outputs = graph.add_model(target, [start])
        return graph, target.name, f"Sequential model '{target.name}'", False
    if isinstance(target, Model):
        shapes = _input_shapes(input_shape, len(target.inputs)) or [tuple(t.shape)[1:] for t in target.inputs]
        starts = [
            graph.add_input(t.node.layer.name, (None, *shape), t.dtype, t.node.layer)
            for t, shape in zip(target.inputs, shapes)
        ]
        graph.outputs = graph.add_model(target, starts)
        return graph, target.name, f"model '{target.name}'", False
    if isinstance(target, Layer):
        target = [target]
    if isinstance(target, (list, tuple)) and target:
        from rankconv.expressions import parse_layer

        layers = []
        for item in target:
            if isinstance(item, str):
                layers.append(parse_layer(item))
            elif isinstance(item, Layer) and not isinstance(item, Model):
                layers.append(item)
            else:
                raise TypeError(
                    "`model_or_layers` must be a model, a layer, a list of layers or layer expressions (such as "
                    f"'Conv1D(64, 3)'), or a .keras file; received a list holding {type(item).__name__}."
                )
        shapes = _input_shapes(input_shape, 1)
        if shapes is None:
            first = layers[0]
            if not first.built or first._build_input_shape is None:
                raise ValueError(
                    "`input_shape` is needed to explain layers that are not built: the per-sample shape of the "
                    "first layer's input, such as (600, 300) (`--input 600,300` on the command line)."
                )
            shapes = [tuple(first._build_input_shape)[1:]]
        current = graph.add_input("input", (None, *shapes[0]), "float32")
        for layer in layers:
            current = graph.add_layer(layer, [current])
        graph.outputs = [current]
        calls = " → ".join(call_text(layer) for layer in layers)
        return graph, "layers", calls, False
    raise TypeError(
        "`model_or_layers` must be a model, a layer, a list of layers or layer expressions (such as "
        f"'Conv1D(64, 3)'), or a .keras file; received {type(target).__name__}."
    )


def _is_model_path(target) -> bool:
    text = os.fspath(target)
    if isinstance(target, os.PathLike) or text.endswith(".keras"):
        return True
    return "(" not in text and os.path.isfile(text)


def _shapes_and_traces(graph: _Graph) -> None:
    """Output shapes (building layers that are not built) and receptive-field traces, in order."""
    from rankconv.layers.layer import allocation_limit

    consumers = {}
    for node in graph.nodes:
        for i in node.inputs:
            consumers.setdefault(i, []).append(node)
    for index, node in enumerate(graph.nodes):
        if node.layer is None:
            spatial = _input_spatial(node, consumers.get(index, []))
            node.trace = rf.input_trace(node.input_index, len(node.shape) - 1, spatial)
            node.spatial = spatial
            continue
        layer = node.layer
        shapes = [graph.nodes[i].shape for i in node.inputs]
        argument = shapes if node.merge else shapes[0]
        try:
            layer.check_input_shape(argument)
            if not layer.built:
                with allocation_limit(MAX_BUILD_ELEMENTS, "values rankconv explain builds for a layer expression"):
                    layer.build(argument)
            node.shape = tuple(layer.compute_output_shape(argument))
        except (ValueError, TypeError) as error:
            raise type(error)(
                f"Layer '{node.name}' ({call_text(layer)}) cannot take input of shape {shape_text(argument)}: {error}"
            ) from None
        node.dtype = _output_dtype(layer, graph.nodes[node.inputs[0]].dtype)
        traces = [graph.nodes[i].trace for i in node.inputs]
        node.trace = rf.trace_layer(layer, traces, shapes, node.shape)


def _output_dtype(layer, input_dtype) -> str:
    try:
        return layer.output_dtype(input_dtype)
    except Exception:  # a layer without a dtype rule: its own dtype
        return getattr(layer, "dtype", "float32")


def _input_spatial(node: _Node, consumers: list) -> tuple[int, ...]:
    """Which axes of a model input are spatial (batch excluded): all of them for token ids read
    by an Embedding; else all but the channel axis, which the first consumer's data format says."""
    from rankconv.layers import Embedding

    ndim = len(node.shape) - 1
    first = consumers[0].layer if consumers else None
    if isinstance(first, Embedding):
        return tuple(range(ndim))
    if ndim < 2:
        return ()
    if getattr(first, "data_format", "channels_last") == "channels_first":
        return tuple(range(1, ndim))
    return tuple(range(ndim - 1))


# ----------------------------------------------------------------------------- numbers


def _counts(layer, input_shapes: list, output_shape: tuple) -> tuple[int | None, int | None]:
    """(multiply-adds, FLOPs) per sample, as the module docstring counts them."""
    from rankconv import layers as L

    name = type(layer).__name__
    out = product(output_shape)
    first = input_shapes[0]
    bias = out if getattr(layer, "use_bias", False) and out is not None else 0
    if isinstance(layer, L.Conv):
        spatial, channels = layout(layer, output_shape)
        positions = product(spatial)
        taps = math.prod(layer.kernel_size) * (layout(layer, first)[1] // layer.groups)
        macs = None if positions is None else positions * layer.filters * taps
    elif isinstance(layer, L.ConvTranspose):
        spatial, channels = layout(layer, first)
        positions = product(spatial)
        macs = None if positions is None else positions * math.prod(layer.kernel_size) * channels * layer.filters
    elif isinstance(layer, L.DepthwiseConv):
        spatial, _ = layout(layer, output_shape)
        positions = product(spatial)
        channels = layout(layer, first)[1]
        macs = (
            None if positions is None else positions * channels * layer.depth_multiplier * math.prod(layer.kernel_size)
        )
    elif isinstance(layer, L.SeparableConv):
        spatial, _ = layout(layer, output_shape)
        positions = product(spatial)
        middle = layout(layer, first)[1] * layer.depth_multiplier
        per_position = middle * math.prod(layer.kernel_size) + middle * layer.filters
        macs = None if positions is None else positions * per_position
    elif isinstance(layer, L.Dense):
        rows = product(first[:-1]) if len(first) > 1 else 1
        macs = None if rows is None or first[-1] is None else rows * first[-1] * layer.units
    elif isinstance(layer, L.Pooling):
        return 0, None if out is None else out * math.prod(layer.pool_size)
    elif isinstance(layer, L.GlobalPooling):
        return 0, product(first)
    elif name in ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average"):
        combined = None if out is None else out * (len(input_shapes) - 1 + (name == "Average"))
        return 0, combined
    elif isinstance(layer, (L.BatchNormalization, L.Rescaling)):
        return out, None if out is None else 2 * out
    else:
        return 0, 0
    if macs is None:
        return None, None
    return macs, 2 * macs + bias


# ----------------------------------------------------------------------------- explain


def explain(model_or_layers, input_shape=None, batch_size: int | None = None) -> Explanation:
    """What every layer of a model (or of a list of layers) computes, in numbers and words.

    model_or_layers: a model, a layer, a list of layers or of layer expressions (such as
    `"Conv2D(32, 3, strides=2)"`, parsed safely), or the path of a `.keras` file.
    input_shape: the per-sample input shape (without the batch axis), such as `(600, 300)`;
    needed for layers that are not built; for a model it replaces the model's input shape
    (a list of shapes for a model with several inputs). None in a shape is an unknown length.
    batch_size: shapes, counts and memory with the batch (None: per sample only; the planner is
    then asked about a batch of 32).
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"`batch_size` must be a positive integer or None; received batch_size={batch_size!r}.")
    with _names_kept():
        graph, name, source, trained = _graph_of(model_or_layers, input_shape)
        _shapes_and_traces(graph)
        return _explain_graph(graph, name, source, trained, batch_size)


def _explain_graph(graph: _Graph, name, source, trained, batch_size) -> Explanation:
    inputs = []
    for node in graph.nodes:
        if node.layer is None:
            shape = tuple(node.shape[1:])
            names = _spatial_names(node, graph)
            inputs.append(
                InputDescription(node.name, shape, str(node.dtype), names, tuple(shape[a] for a in node.spatial))
            )
    lengths = {}
    for i, description in enumerate(inputs):
        for axis, length in enumerate(description.lengths):
            lengths[(i, axis)] = length
    plan_batch = batch_size or PLAN_BATCH
    explained = []
    for node in graph.nodes:
        explained.append(_explain_node(node, graph, inputs, lengths, batch_size, plan_batch))
    totals = _totals(graph, explained, batch_size)
    explanation = Explanation(name, source, batch_size, plan_batch, trained, inputs, explained, totals, [])
    explanation.sentences = model_sentences(explanation)
    return explanation


def _spatial_names(node, graph) -> tuple:
    spatial = node.spatial
    consumers = [n for n in graph.nodes if graph.nodes.index(node) in n.inputs]
    from rankconv.layers import Embedding

    if consumers and isinstance(consumers[0].layer, Embedding):
        return ("words",) if len(spatial) == 1 else tuple(f"tokens axis {i + 1}" for i in range(len(spatial)))
    return SPATIAL_NAMES.get(len(spatial), tuple(f"dim{i + 1}" for i in range(len(spatial))))


def _explain_node(node, graph, inputs, lengths, batch_size, plan_batch) -> LayerExplanation:
    layer = node.layer
    output_shape = tuple(node.shape[1:])
    itemsize = np.dtype(node.dtype).itemsize if node.dtype else 4
    memory = None if product(output_shape) is None else product(output_shape) * itemsize
    fields = _fields(node.trace, inputs, lengths)
    note = ""
    missing = rf.unknown(node.trace)
    if missing:
        fields, note = [], f"not traced through {missing}"
    if layer is None:
        explained = LayerExplanation(
            node.name,
            "InputLayer",
            f"Input({shape_text(output_shape)})",
            {"shape": list(output_shape)},
            [],
            output_shape,
            output_shape,
            (batch_size, *output_shape),
            (batch_size, *output_shape),
            {},
            None,
            0,
            0,
            0,
            0,
            memory,
            batch_size,
            fields,
            note,
            layer=None,
            trace=node.trace,
        )
        explained.sentences = layer_sentences(node, graph, inputs, output_shape, fields)
        return explained
    shapes = [tuple(graph.nodes[i].shape) for i in node.inputs]
    per_sample = [s[1:] for s in shapes]
    input_shape = per_sample if node.merge else per_sample[0]
    batch_input = [(batch_size, *s) for s in per_sample] if node.merge else (batch_size, *per_sample[0])
    weights, kernel = weight_shapes(layer)
    macs, flops = _counts(layer, per_sample, output_shape)
    plan, plan_note = ([], "") if node.merge else plan_calls(layer, input_shape, output_shape, plan_batch)
    explained = LayerExplanation(
        name=node.name,
        class_name=type(layer).__name__,
        call=call_text(layer),
        arguments=arguments_that_matter(layer),
        inputs=[graph.nodes[i].name for i in node.inputs],
        input_shape=input_shape,
        output_shape=output_shape,
        batch_input_shape=batch_input,
        batch_output_shape=(batch_size, *output_shape),
        weights=weights,
        kernel_shape=kernel,
        params=layer.count_params(),
        trainable_params=int(sum(v.value.size for v in layer.trainable_weights)),
        multiply_adds=macs,
        flops=flops,
        activation_bytes=memory,
        batch_size=batch_size,
        receptive_field=fields,
        receptive_field_note=note,
        plan=plan,
        plan_note=plan_note,
        layer=layer,
        trace=node.trace,
    )
    if not node.merge:
        explained.equivalents = equivalents(node, graph, input_shape)
    explained.sentences = layer_sentences(node, graph, inputs, input_shape, fields)
    if hasattr(layer, "rank") and fields and not node.merge:
        sentence = field_sentence(fields)
        if sentence:
            explained.sentences.append(sentence)
    for equivalent in explained.equivalents:
        if equivalent.via.startswith("rankconv.equivalence"):
            kernel_text = ", ".join(
                f"{k} {shape_text(v)}" for k, v in equivalent.kernel_shapes.items() if "kernel" in k
            )
            explained.sentences.append(
                f"The same computation as {equivalent.form} on {shape_text(equivalent.input_shape)} ({kernel_text}; "
                f"{equivalent.via})."
            )
    return explained


def _fields(trace, inputs, lengths) -> list[AxisField]:
    fields = []
    for source, value in rf.summarize(trace, lengths).items():
        description = inputs[source[0]]
        fields.append(AxisField(description.name, description.spatial_axes[source[1]], value))
    return fields


def _totals(graph, explained, batch_size) -> dict:
    seen, params, trainable = set(), 0, 0
    for node in graph.nodes:
        if node.layer is None:
            continue
        for variable in node.layer.weights:
            if id(variable) not in seen:
                seen.add(id(variable))
                params += variable.value.size
                if variable.trainable and node.layer.trainable:
                    trainable += variable.value.size

    def total(key):
        values = [getattr(layer, key) for layer in explained]
        return None if any(v is None for v in values) else int(sum(values))

    totals = {"params": int(params), "trainable_params": int(trainable)}
    for key in ("multiply_adds", "flops", "activation_bytes"):
        value = total(key)
        totals[key] = value
        totals[f"batch_{key}"] = None if value is None or batch_size is None else value * batch_size
    return totals


# ----------------------------------------------------------------------------- command line


EXAMPLE = """examples:
  rankconv explain "Conv1D(64, 3)" --input 600,300
  rankconv explain "Conv2D(64, (3, 300))" --input 600,300,1 --json
  rankconv explain "Conv2D(32, 3, strides=2)" "MaxPooling2D(2)" "Conv2D(64, 3)" --input 28,28,1 --html cnn.html
  rankconv explain mr.keras --html mr.html"""


def _command(args) -> int:
    targets = args.target
    if len(targets) == 1 and _is_model_path(targets[0]):
        target = targets[0]
    else:
        for text in targets:
            if text.endswith(".keras"):
                raise ValueError(f"Explain one model file at a time, without layer expressions; received {targets}.")
        target = list(targets)
    shapes = args.input
    if shapes is not None:
        shapes = shapes[0] if len(shapes) == 1 else shapes
    explanation = explain(target, shapes, args.batch)
    position = None
    if args.position is not None:
        position = _parse_shape(args.position, "--position") if args.position else None
    if args.html:
        from rankconv.explanation_html import write_html

        write_html(args.html, explanation, layers=args.layer, position=position)
    if args.json:
        print(explanation.to_json())
    else:
        print(explanation.to_text())
        if args.html:
            print(f"\nwrote {args.html}")
    return 0


def add_parser(commands) -> None:
    """`rankconv explain …` as a subcommand of the `rankconv` command line."""
    parser = commands.add_parser(
        "explain",
        help="what every convolution of a model or of layer expressions computes, in numbers and pictures",
        description=textwrap.fill(
            "Explain a .keras model or a chain of layer expressions: per layer its shapes, kernel, parameters, "
            "multiply-adds and FLOPs, activation memory, receptive field on the input (size, jump, start per "
            "spatial axis), the planner's algorithm and the equivalent forms; as a table with sentences, as JSON "
            "(--json) or as a self-contained HTML page with pictures (--html).",
            width=88,
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "target",
        nargs="+",
        metavar="MODEL_OR_LAYER",
        help="a .keras model file, or one or more layer expressions such as 'Conv1D(64, 3)' applied in order "
        "(rankconv layer classes with literal arguments only)",
    )
    parser.add_argument(
        "--input",
        action="append",
        metavar="SHAPE",
        help="the per-sample input shape without the batch, such as 600,300 (None for an unknown length); "
        "needed for layer expressions; for a model it replaces the model's input shape (repeat it for each "
        "input of a model with several)",
    )
    parser.add_argument(
        "--batch", type=utils.positive_int, help="batch size for shapes, totals and the planner (default: none)"
    )
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON (keys in the README)")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML page with the pictures")
    parser.add_argument(
        "--layer",
        action="append",
        metavar="NAME",
        help="a layer whose receptive field the page draws (repeatable; default: the spatial layers)",
    )
    parser.add_argument(
        "--position",
        metavar="INDEX",
        help="the output position whose receptive field the page draws, e.g. 10,5 (default: the middle); "
        "without --layer, for the last layer with a spatial output",
    )
    parser.set_defaults(handler=_command)
