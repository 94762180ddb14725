"""What `rankconv explain` says a convolution layer runs as and is equivalent to: the calls of the
one general convolution it makes, with the planner's choice (`rankconv.ops.conv_plan`), and the
forms that compute the same outputs (`rankconv.equivalence`'s lift/lower and depthwise↔grouped;
1×1 convolution↔Dense; Flatten+Dense↔a convolution as large as its input; a "valid" average
pooling↔a constant depthwise convolution; separable = depthwise then 1×1), each with its kernel
shapes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rankconv.explanation_text import (
    arguments_that_matter,
    call_text,
    family_name,
    layout,
    listed,
    shape_text,
    value_text,
)


@dataclass
class Equivalent:
    """A form that computes the same outputs as the layer."""

    form: str
    input_shape: tuple
    output_shape: tuple
    kernel_shapes: dict
    via: str
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "form": self.form,
            "input_shape": listed(self.input_shape),
            "output_shape": listed(self.output_shape),
            "kernel_shapes": {k: list(v) for k, v in self.kernel_shapes.items()},
            "via": self.via,
            "note": self.note,
        }


def weight_shapes(layer) -> tuple[dict, tuple | None]:
    weights = {variable.name: tuple(variable.shape) for variable in layer.weights}
    for key in ("kernel", "depthwise_kernel", "embeddings"):
        if key in weights:
            return weights, weights[key]
    return weights, None


# ----------------------------------------------------------------------------- the planner


def plan_calls(layer, input_shape, output_shape, batch) -> tuple[list, str]:
    """The general-convolution calls the layer makes, with the planner's choices."""
    from rankconv import layers as L
    from rankconv import ops, utils

    if not isinstance(layer, (L.Conv, L.ConvTranspose, L.DepthwiseConv, L.SeparableConv)):
        return [], ""
    spatial, channels = layout(layer, input_shape)
    if any(n is None for n in spatial):
        return [], "the input length is unknown: give the input shape to see the planner's choice"
    calls = []
    strides, dilation = layer.strides, layer.dilation_rate
    x_shape = (batch, *spatial, channels)
    if isinstance(layer, L.ConvTranspose):
        extras = layer.output_padding or (None,) * layer.rank
        pairs = tuple(
            utils.conv_transpose_padding(k, s, d, layer.padding, e)
            for k, s, d, e in zip(layer.kernel_size, strides, dilation, extras)
        )
        kernel = (*layer.kernel_size, channels, layer.filters)
        calls.append(("transposed convolution", x_shape, kernel, (1,) * layer.rank, pairs, strides, dilation))
    else:
        pairs = utils.padding_pairs(spatial, layer.kernel_size, strides, dilation, layer.padding)
        if isinstance(layer, L.Conv):
            kernel = tuple(layer.kernel.shape)
            calls.append(("convolution", x_shape, kernel, strides, pairs, (1,) * layer.rank, dilation))
        else:
            middle = channels * layer.depth_multiplier
            kernel = (*layer.kernel_size, 1, middle)
            calls.append(("depthwise convolution", x_shape, kernel, strides, pairs, (1,) * layer.rank, dilation))
            if isinstance(layer, L.SeparableConv):
                out_spatial, _ = layout(layer, output_shape)
                ones = (1,) * layer.rank
                pointwise = (*ones, middle, layer.filters)
                zero = ((0, 0),) * layer.rank
                calls.append(
                    ("pointwise convolution", (batch, *out_spatial, middle), pointwise, ones, zero, ones, ones)
                )
    plans = []
    for what, x, kernel, s, padding, lhs, rhs in calls:
        entry = {
            "op": what,
            "x_shape": list(x),
            "kernel_shape": list(kernel),
            "strides": list(s),
            "padding": [list(p) for p in padding],
            "lhs_dilation": list(lhs),
            "rhs_dilation": list(rhs),
        }
        for direction, backward in (("forward", False), ("backward", True)):
            try:
                algorithm, reason = ops.conv_plan(x, kernel, s, padding, lhs, rhs, layer.dtype, backward=backward)
            except ValueError as error:
                algorithm, reason = None, str(error)
            entry[direction] = {"algorithm": algorithm, "reason": reason}
        plans.append(entry)
    return plans, ""


# ----------------------------------------------------------------------------- equivalent forms


def _sample(layer, shape):
    return tuple(layer.compute_output_shape((None, *shape)))[1:]


def equivalents(node, graph, input_shape) -> list[Equivalent]:
    """The forms that compute what the layer of graph node `node` computes on `input_shape`."""
    from rankconv import equivalence
    from rankconv import layers as L

    layer = node.layer
    found = []

    def attempt(function, *args):
        try:
            return function(*args)
        except (ValueError, TypeError):
            return None

    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    if isinstance(layer, (L.Conv, L.ConvTranspose)) and input_shape is not None:
        spatial, channels = layout(layer, input_shape)
        lifted = attempt(equivalence.lift, layer)
        if lifted is not None:
            if isinstance(layer, L.ConvTranspose):
                shape = (*spatial, 1, channels) if channels_last else (channels, *spatial, 1)
                note = "its output's channels become the last spatial axis (output channels 1)"
            else:
                shape = (*spatial, channels, 1) if channels_last else (1, *spatial, channels)
                note = "the channels become a spatial axis the kernel spans whole; the output keeps a size-1 axis"
            found.append(
                Equivalent(
                    call_text(lifted),
                    shape,
                    _sample(lifted, shape),
                    weight_shapes(lifted)[0],
                    "rankconv.equivalence.lift(layer)",
                    note,
                )
            )
        built = layer._spatial(layer._build_input_shape) if layer._build_input_shape is not None else None
        for axis in range(layer.rank if layer.rank > 1 else 0):
            if built is None or built[axis] != spatial[axis]:
                continue
            lowered = attempt(equivalence.lower, layer, axis)
            if lowered is None:
                continue
            kept = tuple(n for i, n in enumerate(spatial) if i != axis)
            if isinstance(layer, L.ConvTranspose):
                shape = (*kept, channels) if channels_last else (channels, *kept)
            else:
                shape = (*kept, spatial[axis]) if channels_last else (spatial[axis], *kept)
            found.append(
                Equivalent(
                    call_text(lowered),
                    shape,
                    _sample(lowered, shape),
                    weight_shapes(lowered)[0],
                    f"rankconv.equivalence.lower(layer, axis={axis})",
                    f"spatial axis {axis} folded into the channels",
                )
            )
    if isinstance(layer, L.Conv) and input_shape is not None:
        spatial, channels = layout(layer, input_shape)
        if layer.groups > 1 and layer.kernel.shape[-2] == 1:
            depthwise = attempt(equivalence.to_depthwise, layer)
            if depthwise is not None:
                found.append(
                    Equivalent(
                        call_text(depthwise),
                        tuple(input_shape),
                        _sample(depthwise, input_shape),
                        weight_shapes(depthwise)[0],
                        "rankconv.equivalence.to_depthwise(layer)",
                        "one group per input channel is a depthwise convolution",
                    )
                )
        if all(k == 1 for k in layer.kernel_size) and all(s == 1 for s in layer.strides) and layer.groups == 1:
            dense_shape = tuple(input_shape) if channels_last else (*spatial, channels)
            found.append(
                Equivalent(
                    f"Dense({layer.filters})",
                    dense_shape,
                    (*dense_shape[:-1], layer.filters),
                    {"kernel": (channels, layer.filters), **({"bias": (layer.filters,)} if layer.use_bias else {})},
                    f"kernel.reshape({channels}, {layer.filters})",
                    "a 1×…×1 convolution is a dense layer applied at every position"
                    + ("" if channels_last else " (on the input moved to channels_last)"),
                )
            )
    if isinstance(layer, L.DepthwiseConv) and input_shape is not None:
        grouped = attempt(equivalence.to_grouped, layer)
        if grouped is not None:
            found.append(
                Equivalent(
                    call_text(grouped),
                    tuple(input_shape),
                    _sample(grouped, input_shape),
                    weight_shapes(grouped)[0],
                    "rankconv.equivalence.to_grouped(layer)",
                    "a grouped convolution with one group per channel",
                )
            )
    if isinstance(layer, L.SeparableConv) and input_shape is not None:
        spatial, channels = layout(layer, input_shape)
        middle = channels * layer.depth_multiplier
        depthwise_call = f"{family_name('DepthwiseConv', layer.rank)}({value_text(layer.kernel_size)}"
        extras = arguments_that_matter(layer)
        for key in ("strides", "padding", "dilation_rate", "depth_multiplier"):
            if key in extras:
                depthwise_call += f", {key}={value_text(extras[key])}"
        depthwise_call += ", use_bias=False)"
        out = _sample(layer, input_shape)
        found.append(
            Equivalent(
                f"{depthwise_call} then {family_name('Conv', layer.rank)}({layer.filters}, 1)",
                tuple(input_shape),
                out,
                {
                    "depthwise_kernel": tuple(layer.depthwise_kernel.shape),
                    "kernel": tuple(layer.pointwise_kernel.shape),
                },
                "ops.depthwise_conv, then ops.conv with the pointwise kernel",
                f"{middle} channels between the two steps",
            )
        )
    if isinstance(layer, L.ConvTranspose) and input_shape is not None:
        plan, _ = plan_calls(layer, input_shape, node.shape[1:], 1)
        if plan:
            step = plan[0]
            found.append(
                Equivalent(
                    f"conv_general(input dilated by {value_text(tuple(step['lhs_dilation']))}, the kernel flipped, "
                    f"padding {tuple(tuple(p) for p in step['padding'])})",
                    tuple(input_shape),
                    tuple(node.shape[1:]),
                    {"kernel": tuple(step["kernel_shape"])},
                    "rankconv.ops.conv_transpose",
                    "zeros between the input cells, then a stride-1 convolution: the input gradient of a strided "
                    "convolution",
                )
            )
    if isinstance(layer, L.Dense) and input_shape is not None:
        found += _dense_equivalents(node, graph, tuple(input_shape))
    if isinstance(layer, L.Pooling) and input_shape is not None:
        if layer.mode == "average" and layer.padding == "valid":
            spatial, channels = layout(layer, input_shape)
            call = f"{family_name('DepthwiseConv', layer.rank)}({value_text(layer.pool_size)}"
            if layer.strides != layer.pool_size:
                call += f", strides={value_text(layer.strides)}"
            call += ", use_bias=False)"
            found.append(
                Equivalent(
                    call,
                    tuple(input_shape),
                    tuple(node.shape[1:]),
                    {"kernel": (*layer.pool_size, channels, 1)},
                    f"every weight 1/{math.prod(layer.pool_size)}",
                    "a 'valid' average is a depthwise convolution with a constant kernel",
                )
            )
    if isinstance(layer, L.GlobalPooling) and input_shape is not None:
        spatial, channels = layout(layer, input_shape)
        if all(n is not None for n in spatial):
            kind = "MaxPooling" if layer.mode == "max" else "AveragePooling"
            call = f"{family_name(kind, layer.rank)}({value_text(tuple(spatial))})"
            found.append(
                Equivalent(
                    call + ("" if layer.keepdims else " then Flatten()"),
                    tuple(input_shape),
                    tuple(node.shape[1:]),
                    {},
                    "a window as large as the input",
                    "pooling over the whole input leaves one position per channel",
                )
            )
    return found


def _dense_equivalents(node, graph, input_shape) -> list[Equivalent]:
    from rankconv import layers as L

    layer = node.layer
    bias = {"bias": (layer.units,)} if layer.use_bias else {}
    producer = graph.nodes[node.inputs[0]]
    found = []
    if (
        isinstance(producer.layer, L.Flatten)
        and producer.layer.data_format == "channels_last"
        and len(graph.nodes[producer.inputs[0]].shape) >= 3
    ):
        unflattened = tuple(graph.nodes[producer.inputs[0]].shape[1:])
        if None not in unflattened:
            rank = len(unflattened) - 1
            call = f"{family_name('Conv', rank)}({layer.units}, {value_text(unflattened[:-1])})"
            found.append(
                Equivalent(
                    call + f" on {shape_text(unflattened)}",
                    unflattened,
                    (1,) * rank + (layer.units,),
                    {"kernel": (*unflattened, layer.units), **bias},
                    f"kernel.reshape{shape_text((*unflattened, layer.units))}",
                    f"Flatten then Dense is a convolution whose kernel covers the whole {shape_text(unflattened[:-1])} "
                    "input: one position",
                )
            )
    if len(input_shape) >= 2:
        rank = len(input_shape) - 1
        call = f"{family_name('Conv', rank)}({layer.units}, 1)"
        found.append(
            Equivalent(
                call,
                input_shape,
                (*input_shape[:-1], layer.units),
                {"kernel": ((1,) * rank + (input_shape[-1], layer.units)), **bias},
                f"kernel.reshape{shape_text((1,) * rank + (input_shape[-1], layer.units))}",
                "a dense layer applied at every position is a 1×…×1 convolution",
            )
        )
    return found
