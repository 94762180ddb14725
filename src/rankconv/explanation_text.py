"""The words of `rankconv explain`: layers as calls (`Conv2D(64, (3, 300))`), the sentences that say
what each layer computes (in the seed's spirit: "each of the 64 filters is a (3, 300) window over 3
consecutive words: a trigram detector"), and the plain report (`str(explanation)`): one table, then
each layer's sentences, planner choice and equivalent forms."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rankconv import receptive_field as rf

if TYPE_CHECKING:
    from rankconv.explanation import Explanation, LayerExplanation

_NGRAMS = {1: "unigram", 2: "bigram", 3: "trigram"}


SPATIAL_NAMES = {1: ("steps",), 2: ("rows", "cols"), 3: ("dim1", "dim2", "dim3")}


_HIDDEN_ARGUMENTS = {"name", "trainable", "dtype", "seed", "noise_shape"}


_POSITIONAL_FIRST = ("rank", "filters", "kernel_size", "pool_size", "units", "input_dim", "output_dim", "rate", "size")


# ----------------------------------------------------------------------------- arguments


# The layer table's columns, in the plain report and on the page (which shows the call under the name).
TABLE_COLUMNS = (
    "#",
    "layer",
    "call",
    "input",
    "kernel",
    "output",
    "params",
    "mult-adds",
    "memory",
    "receptive field",
    "algorithm",
)


def _defaults(layer) -> dict:
    import inspect

    defaults = {}
    for cls in type(layer).__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            continue
        for name, parameter in signature.parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                defaults.setdefault(name, parameter.default)
    return defaults


def _same(value, default) -> bool:
    if value == default:
        return True
    if isinstance(value, (list, tuple)) and isinstance(default, int) and not isinstance(default, bool):
        return all(v == default for v in value)
    if default is None and value in ("linear", "channels_last"):
        return True
    return False


def arguments_that_matter(layer) -> dict:
    """The layer's configuration without names, dtypes, initializers, regularizers, constraints
    and arguments at their defaults (what decides shapes and the computation)."""
    config = layer.get_config()
    defaults = _defaults(layer)
    chosen = {}
    for key, value in config.items():
        if key in _HIDDEN_ARGUMENTS or key.endswith(("_initializer", "_regularizer", "_constraint")):
            continue
        if isinstance(value, dict):  # a serialised object (an activation given as a class, say)
            value = value.get("config", {}).get("name", value.get("class_name", value))
        if key in _POSITIONAL_FIRST:
            chosen[key] = value
            continue
        if key == "strides" and config.get("pool_size") is not None and _same(value, tuple(config["pool_size"])):
            continue
        if key in defaults and _same(value, defaults[key]):
            continue
        chosen[key] = value
    return chosen


def value_text(value) -> str:
    if isinstance(value, (list, tuple)):
        if value and all(v == value[0] for v in value) and all(isinstance(v, int) for v in value):
            return str(value[0])
        return "(" + ", ".join(value_text(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def call_text(layer) -> str:
    """`Conv1D(64, 3)`, `Conv2D(64, (3, 300))`, `MaxPooling2D(2, strides=1, padding='same')`."""
    arguments = arguments_that_matter(layer)
    parts = []
    for key in _POSITIONAL_FIRST:
        if key in arguments and not (key == "rank" and type(layer).__name__ not in ("Conv", "ConvTranspose")):
            parts.append(value_text(arguments.pop(key)))
    arguments.pop("rank", None)
    parts += [f"{k}={value_text(v)}" for k, v in arguments.items()]
    return f"{type(layer).__name__}({', '.join(parts)})"


def product(values) -> int | None:
    values = list(values)
    return None if any(v is None for v in values) else int(math.prod(values))


def layout(layer, shape):
    """(spatial lengths, channels) of a per-sample shape in the layer's data format."""
    shape = tuple(shape)
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return shape[1:], shape[0]
    return shape[:-1], shape[-1]


def family_name(base: str, rank: int) -> str:
    if rank in (1, 2, 3):
        return f"{base}{rank}D"
    return f"{base}[rank {rank}]"


# ----------------------------------------------------------------------------- sentences


def _ngram(n: int) -> str:
    return _NGRAMS.get(n, f"{n}-gram")


def _count_text(n, singular, plural=None) -> str:
    plural = plural or singular + "s"
    return f"{n:,} {singular if n == 1 else plural}"


def _product_text(values) -> str:
    values = list(values)
    if any(v is None for v in values):
        return " × ".join("?" if v is None else str(v) for v in values)
    text = " × ".join(str(v) for v in values)
    return text if len(values) == 1 else f"{text} = {math.prod(values):,}"


class _Axes:
    """Names of a layer's spatial axes, from where they come in the model's input."""

    def __init__(self, explanation_inputs, trace, layer, input_shape):
        self.names = []
        self.words = False
        if not trace:
            return
        axes = rf.spatial_axes(layer.rank, getattr(layer, "data_format", None))
        for axis in axes:
            chain = trace[0].axes[axis] if axis < len(trace[0].axes) else None
            if chain is None:
                self.names.append(f"axis {axis + 1}")
                continue
            description = explanation_inputs[chain.source[0]]
            name = description.spatial_axes[chain.source[1]]
            self.names.append(name)
            self.words = self.words or name == "words"


def _window_sentences(layer, input_shape, output_shape, axes: _Axes, field_sizes) -> list[str]:
    """What a convolution's filters are, how they slide, and what that means (the seed's words)."""
    from rankconv import layers as L

    spatial, channels = layout(layer, input_shape)
    out_spatial, out_channels = layout(layer, output_shape)
    k = layer.kernel_size
    sentences = []
    names = axes.names or [f"axis {i + 1}" for i in range(layer.rank)]
    spans = [layer.padding == "valid" and n == kk and d == 1 for n, kk, d in zip(spatial, k, layer.dilation_rate)]
    if isinstance(layer, L.Conv):
        per_group = channels // layer.groups
        window = (*k, per_group)
        if layer.groups == 1:
            reading = "its single channel" if channels == 1 else f"all {channels:,} channels"
        else:
            reading = f"{per_group:,} of the {channels:,} channels (groups={layer.groups})"
        if layer.rank == 1:
            unit = "words" if axes.words else names[0]
            taps = (
                f"{k[0]} consecutive {unit}"
                if layer.dilation_rate[0] == 1
                else (
                    f"{k[0]} {unit} {layer.dilation_rate[0]} apart (spanning {layer.dilation_rate[0] * (k[0] - 1) + 1})"
                )
            )
            if axes.words and per_group == channels:
                reading = f"all {channels:,} dimensions of their vectors"
        else:
            taps = " × ".join(str(v) for v in k) + " cells"
            if any(d > 1 for d in layer.dilation_rate):
                taps += f" taken {value_text(layer.dilation_rate)} apart"
        sentences.append(
            f"Each of the {layer.filters:,} filters is a {shape_text(window)} window of weights over {taps} "
            f"and {reading}."
        )
        weights = math.prod(layer.kernel.shape)
        bias = f" + {layer.filters:,} biases = {layer.count_params():,} parameters" if layer.use_bias else " (no bias)"
        sentences.append(
            f"Its kernel is kernel_size {shape_text(k)} + (channels // groups,) {shape_text((per_group,))} + "
            f"(filters,) {shape_text((layer.filters,))} = {shape_text(tuple(layer.kernel.shape))}: "
            f"{weights:,} weights{bias}."
        )
    sliding = [i for i, whole in enumerate(spans) if not whole]
    fixed = [i for i, whole in enumerate(spans) if whole]
    moves = []
    for i in sliding:
        step = "one cell" if layer.strides[i] == 1 else f"{layer.strides[i]} cells"
        moves.append(f"{names[i]} {step} at a time")
    positions = _product_text([out_spatial[i] for i in range(layer.rank)])
    if fixed:
        whole = ", ".join(f"{names[i]} ({spatial[i]:,} cells)" for i in fixed)
        if sliding:
            sentences.append(
                f"It is as long as {whole}, so it cannot slide there: it slides along {', '.join(moves)}, "
                f"{positions} positions."
            )
        else:
            sentences.append(f"It covers the whole input ({whole}): one position.")
    elif isinstance(layer, L.Conv) and layer.rank == 1 and channels > 1 and layer.groups == 1:
        sentences.append(
            f"Because the window is as wide as the channels, it can only slide along the {names[0]}, "
            f"{moves[0].split(' ', 1)[1]}: {positions} positions."
        )
    else:
        sentences.append(f"It slides along {', '.join(moves)}: {positions} positions.")
    # the seed's reading: a window over whole word vectors that slides along one axis is an n-gram detector
    one_axis = len(sliding) == 1 and sliding[0] == 0 and isinstance(layer, L.Conv) and layer.groups == 1
    if one_axis and (layer.rank == 1 or channels == 1):
        size = field_sizes.get(0) or k[0]
        gram = _ngram(size)
        if axes.words:
            sentences.append(f"Over words, that is a {gram} detector: it scores every run of {size} consecutive words.")
        elif layer.rank == 1:
            sentences.append(
                f"If the {names[0]} are words and the {channels:,} channels their vectors, it is a {gram} detector, "
                f"scoring every run of {size} consecutive words."
            )
        else:
            sentences.append(
                f"Read as a sentence image (words along {names[0]}, their vector components along "
                f"{', '.join(names[i] for i in fixed)}), it is a {gram} detector."
            )
    if layer.padding == "same":
        from rankconv import utils

        known = [n for n in spatial if n is not None]
        if len(known) == len(spatial):
            pairs = utils.padding_pairs(spatial, k, layer.strides, layer.dilation_rate, "same")
            if any(lo or hi for lo, hi in pairs):
                padded = "; ".join(f"{lo} before and {hi} after the {names[i]}" for i, (lo, hi) in enumerate(pairs))
                sentences.append(
                    f"padding='same' adds zeros ({padded}) so the output keeps ceil(n / stride) positions."
                )
    elif layer.padding == "causal":
        span = layer.dilation_rate[0] * (k[0] - 1) + 1
        sentences.append(
            f"padding='causal' puts all {span - 1} zeros before the {names[0]}: output t sees inputs "
            f"t − {span - 1} … t, never a later one."
        )
    return sentences


def layer_sentences(node, graph, explanation_inputs, input_shape, fields) -> list[str]:
    """What the layer of graph node `node` computes, in a few sentences."""
    from rankconv import layers as L

    layer = node.layer
    output_shape = tuple(node.shape[1:])
    if layer is None:
        description = explanation_inputs[node.input_index]
        if description.spatial_axes == ("words",):
            return [
                f"The model's input: {output_shape[0] if output_shape[0] else 'any number of'} token ids per "
                "sentence, one per word."
            ]
        axes = " × ".join(description.spatial_axes) or "features"
        return [f"The model's input: {shape_text(output_shape)} per sample ({axes} × channels)."]
    trace = graph.nodes[node.inputs[0]].trace
    axes = _Axes(explanation_inputs, trace, layer, input_shape) if hasattr(layer, "rank") else None
    sizes = {}
    if axes is not None and fields:
        for i, name in enumerate(axes.names):
            for f in fields:
                if f.axis == name and not f.field.whole:
                    sizes[i] = f.field.size
    sentences = []
    if isinstance(layer, (L.Conv, L.DepthwiseConv, L.SeparableConv)):
        if isinstance(layer, L.DepthwiseConv):
            channels = layout(layer, input_shape)[1]
            sentences.append(
                f"Each of the {channels:,} channels is filtered on its own by {layer.depth_multiplier} "
                f"{shape_text(layer.kernel_size)} window{'s' if layer.depth_multiplier > 1 else ''}: no channel "
                f"mixing, {channels * layer.depth_multiplier:,} output channels."
            )
        if isinstance(layer, L.SeparableConv):
            channels = layout(layer, input_shape)[1]
            middle = channels * layer.depth_multiplier
            depthwise = math.prod(layer.depthwise_kernel.shape)
            pointwise = math.prod(layer.pointwise_kernel.shape)
            full = math.prod(layer.kernel_size) * channels * layer.filters
            sentences.append(
                f"A {shape_text(layer.kernel_size)} window per channel ({depthwise:,} weights), then a 1×1 "
                f"convolution mixing the {middle:,} channels into {layer.filters:,} filters ({pointwise:,} weights): "
                f"{depthwise + pointwise:,} weights where {family_name('Conv', layer.rank)}({layer.filters}, "
                f"{value_text(layer.kernel_size)}) has {full:,}."
            )
        sentences += _window_sentences(layer, input_shape, output_shape, axes, sizes)
    elif isinstance(layer, L.ConvTranspose):
        spatial, channels = layout(layer, input_shape)
        out_spatial, _ = layout(layer, output_shape)
        sentences.append(
            f"Spreads its input's cells {value_text(layer.strides)} apart, then slides {layer.filters:,} "
            f"{shape_text((*layer.kernel_size, channels))} windows over it: each input cell paints a "
            f"{shape_text(layer.kernel_size)} patch of the output, {_product_text(spatial)} → "
            f"{_product_text(out_spatial)} positions. It is the input gradient of "
            f"{family_name('Conv', layer.rank)}({channels}, {value_text(layer.kernel_size)}, "
            f"strides={value_text(layer.strides)}) with the same kernel."
        )
    elif isinstance(layer, L.Pooling):
        spatial, channels = layout(layer, input_shape)
        out_spatial, _ = layout(layer, output_shape)
        what = "maximum" if layer.mode == "max" else "average"
        step = "" if layer.strides == layer.pool_size else f", moving {value_text(layer.strides)} cell(s) at a time"
        sentences.append(
            f"Keeps the {what} of each {' × '.join(str(p) for p in layer.pool_size)} window{step}: "
            f"{_product_text(spatial)} → {_product_text(out_spatial)} positions for each of the {channels:,} "
            "channels; no weights."
        )
    elif isinstance(layer, L.GlobalPooling):
        spatial, channels = layout(layer, input_shape)
        what = "largest" if layer.mode == "max" else "mean"
        producer = graph.nodes[node.inputs[0]].layer
        text = (
            f"Keeps the {what} of the {_product_text(spatial)} values of each of the {channels:,} channels: "
            "where a feature is found no longer matters."
        )
        if isinstance(producer, L.Conv) and producer.rank == 1 and layer.mode == "max":
            words = axes is not None and axes.words
            size = sizes.get(0) or producer.kernel_size[0]
            if words:
                text = (
                    f"Keeps the largest of the {_product_text(spatial)} scores of each of the {channels:,} filters: "
                    f"whether, and how strongly, its {_ngram(size)} occurs anywhere in the sentence (max over "
                    "time, Kim 2014)."
                )
        sentences.append(text)
    elif isinstance(layer, L.Embedding):
        length = input_shape[0] if input_shape else None
        sentences.append(
            f"Looks up a {layer.output_dim:,}-d vector for each of the {length if length else 'N'} token ids in a "
            f"table of {layer.input_dim:,} rows: the sentence becomes a {shape_text(output_shape)} array of word "
            "vectors, the seed's (600, 300)."
        )
    elif isinstance(layer, L.Dense):
        n = input_shape[-1]
        producer = graph.nodes[node.inputs[0]].layer
        if isinstance(producer, L.Flatten):
            unflattened = graph.nodes[graph.nodes[node.inputs[0]].inputs[0]].shape[1:]
            sentences.append(
                f"Each of the {layer.units:,} units weighs all {n:,} values of the flattened "
                f"{shape_text(unflattened)} input: a window over everything."
            )
        elif len(input_shape) > 1:
            sentences.append(f"Mixes the {n:,} features into {layer.units:,} at every position: a 1×1 convolution.")
        else:
            sentences.append(f"Each of the {layer.units:,} units is a weighted sum of all {n:,} features.")
    elif isinstance(layer, L.Flatten):
        sentences.append(
            f"Lays the {shape_text(input_shape)} values out as one vector of {output_shape[0] or '?'}: the "
            "positions are no longer separate axes."
        )
    elif isinstance(layer, L.Concatenate):
        parts = " + ".join(str(s[-1]) for s in input_shape)
        sentences.append(f"Puts its {len(input_shape)} inputs side by side: {parts} = {output_shape[-1]} features.")
    elif isinstance(layer, L.Rescaling):
        sentences.append(
            f"Multiplies every value by {layer.scale:g}"
            + (f" and adds {layer.offset:g}" if layer.offset else "")
            + "."
            + (
                " After Dropout(p) with scale 1 − p, it is Kim's dropout: kept values pass unscaled in training, all "
                "of them are scaled by 1 − p at inference."
                if isinstance(graph.nodes[node.inputs[0]].layer, L.Dropout)
                and abs(layer.scale - (1 - graph.nodes[node.inputs[0]].layer.rate)) < 1e-9
                else ""
            )
        )
    elif isinstance(layer, L.BatchNormalization):
        sentences.append(
            "Normalises each channel: with the batch's mean and variance in training, their moving averages at "
            "inference (then a per-channel scale and shift: a multiply-add per value)."
        )
    elif isinstance(layer, L.Dropout):
        sentences.append(
            f"In training, zeroes a random {layer.rate:.0%} of the values and scales the rest by 1/(1 − {layer.rate:g}); "
            "at inference it passes everything."
        )
    return sentences


def field_sentence(fields) -> str:
    parts = [f for f in fields if not f.field.whole and f.field.size is not None]
    if not parts:
        return ""
    sizes = " × ".join(str(f.field.size) for f in parts)
    names = " × ".join(f.axis for f in parts)
    jumps = " × ".join(str(f.field.jump) for f in parts)
    jumps += " cell" if len(parts) == 1 and parts[0].field.jump == 1 else " cells"
    starts = [f.field.start for f in parts]
    start = (
        ""
        if any(s is None for s in starts)
        else f"; output 0's field starts at cell {shape_text(tuple(starts)) if len(starts) > 1 else starts[0]}"
    )
    varying = any(f.field.min_size != f.field.size for f in parts)
    vary = " (at most; it varies with the position)" if varying else ""
    seen = f"{sizes} consecutive words" if names == "words" else f"{sizes} input cells ({names})"
    if names == "words":
        jumps = jumps.replace("cells", "words").replace("cell", "word")
    text = f"Receptive field: each output cell sees {seen}{vary}; neighbours are {jumps} apart{start}."
    whole = [f.axis for f in fields if f.field.whole]
    if whole:
        text += f" It has seen the whole of {', '.join(whole)}."
    return text


def model_sentences(explanation: Explanation) -> list[str]:
    totals = explanation.totals
    layers = [layer for layer in explanation.layers if layer.layer is not None]
    sentences = [
        f"{_count_text(len(layers), 'layer')}, {totals['params']:,} parameters "
        f"({human_bytes(4 * totals['params'])} as float32)"
        + (
            f", {human_number(totals['multiply_adds']).strip()} multiply-adds ({human_number(totals['flops'])}FLOPs) per sample"
            if totals["multiply_adds"] is not None
            else ""
        )
        + (
            f"; the activations take {human_bytes(totals['activation_bytes'])} per sample"
            if totals["activation_bytes"] is not None
            else ""
        )
        + "."
    ]
    widest = None
    for layer in layers:
        parts = [f for f in layer.receptive_field if not f.field.whole and f.field.size is not None]
        if parts and hasattr(layer.layer, "rank"):
            cells = math.prod(f.field.size for f in parts)
            if widest is None or cells >= widest[0]:
                widest = (cells, layer, parts)
    if widest is not None:
        _, layer, parts = widest
        sizes = " × ".join(str(f.field.size) for f in parts)
        lengths = []
        for f in parts:
            description = next(d for d in explanation.inputs if d.name == f.input)
            lengths.append(description.lengths[description.spatial_axes.index(f.axis)])
        of = " × ".join("?" if n is None else str(n) for n in lengths)
        axes = " × ".join(f.axis for f in parts)
        seen = f"{sizes} consecutive words of {of}" if axes == "words" else f"{sizes} input cells ({axes}) of {of}"
        sentences.append(f"The widest receptive field is {layer.name}'s: each of its outputs sees {seen}.")
    return sentences


# ----------------------------------------------------------------------------- plain text


def listed(shape):
    """A shape (or a list of shapes) as JSON lists."""
    if shape is None:
        return None
    if isinstance(shape, list):
        return [listed(s) for s in shape]
    return list(shape)


def shape_text(shape) -> str:
    if shape is None:
        return "-"
    if isinstance(shape, list):
        return ", ".join(shape_text(s) for s in shape)
    items = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def human_number(n) -> str:
    if n is None:
        return "?"
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} "


def human_bytes(n) -> str:
    if n is None:
        return "?"
    if n < 1024:
        return f"{n} B"
    exponent = min(int(math.log(n, 1024)), 4)
    return f"{n / 1024**exponent:.3g} {['B', 'KB', 'MB', 'GB', 'TB'][exponent]}"


def field_text(fields) -> str:
    """`3×300 / 1×1 / 0,0`: sizes, jumps and starts over the spatial axes; `all` for a whole axis."""
    if not fields:
        return "-"
    sizes, jumps, starts = [], [], []
    for f in fields:
        if f.field.whole:
            sizes.append("all")
            jumps.append("-")
            starts.append("-")
            continue
        sizes.append(str(f.field.size) if f.field.size == f.field.min_size else f"{f.field.min_size}-{f.field.size}")
        jumps.append(str(f.field.jump))
        starts.append("?" if f.field.start is None else str(f.field.start))
    return f"{'×'.join(sizes)} / {'×'.join(jumps)} / {','.join(starts)}"


def algorithm_text(layer: LayerExplanation) -> str:
    if not layer.plan:
        return "-"
    return "+".join(step["forward"]["algorithm"] or "?" for step in layer.plan)


def kernel_text(layer: LayerExplanation) -> str:
    if "pointwise_kernel" in layer.weights:
        return f"{shape_text(layer.weights['depthwise_kernel'])}+{shape_text(layer.weights['pointwise_kernel'])}"
    return shape_text(layer.kernel_shape)


def _table(headers, rows, right) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) if r else h.ljust(w) for h, w, r in zip(headers, widths, right)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip())
    return "\n".join(lines)


def format_text(explanation: Explanation, width: int = 100) -> str:
    """The plain report: one table, then each layer's sentences, then the model's."""
    import textwrap

    batch = explanation.batch_size
    header = f"rankconv explain: {explanation.source}"
    inputs = "; ".join(
        f"{d.name} {shape_text(d.shape)} ({' × '.join(d.spatial_axes) or 'no spatial axes'})"
        for d in explanation.inputs
    )
    lines = [header, f"input: {inputs}; batch {batch if batch else 'None (per sample)'}", ""]
    headers = list(TABLE_COLUMNS)
    right = [True, False, False, False, False, False, True, True, True, False, False]
    rows = []
    for number, layer in enumerate(explanation.layers):
        rows.append(
            [
                str(number),
                layer.name,
                layer.call,
                shape_text(layer.input_shape) if layer.layer is not None else "-",
                kernel_text(layer),
                shape_text(layer.output_shape),
                f"{layer.params:,}",
                human_number(layer.multiply_adds).strip() if layer.multiply_adds else "-",
                human_bytes(layer.activation_bytes),
                field_text(layer.receptive_field) if layer.layer is not None else "-",
                algorithm_text(layer),
            ]
        )
    lines.append(_table(headers, rows, right))
    totals = explanation.totals
    lines.append(
        f"total: {totals['params']:,} parameters, {human_number(totals['multiply_adds'])} multiply-adds, "
        f"{human_number(totals['flops'])}FLOPs, {human_bytes(totals['activation_bytes'])} of activations per sample"
        + (
            f" ({human_number(totals['batch_flops'])}FLOPs and {human_bytes(totals['batch_activation_bytes'])} per batch of {batch})"
            if batch and totals["batch_flops"] is not None
            else ""
        )
    )
    lines.append("receptive field: size / jump / start per spatial axis of the input, in input cells")
    wrap = textwrap.TextWrapper(width=width, initial_indent="  ", subsequent_indent="  ")
    for number, layer in enumerate(explanation.layers):
        lines.append("")
        lines.append(f"{number} {layer.name} — {layer.call}")
        for sentence in layer.sentences:
            lines += wrap.wrap(sentence)
        if layer.layer is not None and (layer.multiply_adds or batch):
            detail = (
                f"with the batch axis: {shape_text(layer.batch_input_shape)} → {shape_text(layer.batch_output_shape)}"
            )
            if layer.multiply_adds:
                detail += f"; {layer.multiply_adds:,} multiply-adds, {layer.flops:,} FLOPs per sample"
            lines += wrap.wrap(detail + ".")
        for step in layer.plan:
            forward, backward = step["forward"], step["backward"]
            text = (
                f"planner ({step['op']}, batch {explanation.plan_batch}): {forward['algorithm']} — {forward['reason']}"
            )
            if backward["algorithm"] != forward["algorithm"]:
                text += f"; backward: {backward['algorithm']} — {backward['reason']}"
            lines += wrap.wrap(text + ".")
        if layer.plan_note:
            lines += wrap.wrap(f"planner: {layer.plan_note}.")
        for equivalent in layer.equivalents:
            if equivalent.via.startswith("rankconv.equivalence"):
                continue  # already said in the sentences
            kernels = ", ".join(f"{k} {shape_text(v)}" for k, v in equivalent.kernel_shapes.items())
            text = f"≡ {equivalent.form}" + (f" ({kernels})" if kernels else "") + f": {equivalent.note}"
            lines += wrap.wrap(text + ".")
        if layer.receptive_field_note:
            lines += wrap.wrap(f"receptive field: {layer.receptive_field_note}.")
    lines.append("")
    for sentence in explanation.sentences:
        lines += textwrap.wrap(sentence, width=width)
    return "\n".join(lines)
