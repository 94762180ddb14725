"""Receptive fields: which cells of a model's input each output cell can see.

Along one spatial axis, every windowed layer maps an output index to the input indices it reads,
its *taps* (a `Window`):

- convolution and pooling: `o·stride − low + t·dilation` for the `t < size` taps of the window
  (`low` is the padding before the input: TensorFlow's "same" rule, all of it for "causal");
  zero padding and cropping are the one-tap case, shifted;
- transposed convolution: the input spread `stride` apart and read at stride 1 by the window, so
  output `o` sees the input cells `p / stride` for the window's positions `p = o − low + t·dilation`
  that fall on a multiple of the stride (some outputs see fewer cells than others);
- nearest upsampling: `o // factor`; bilinear upsampling: the two cells around the half-pixel
  centre `(o + ½)/factor − ½`, clamped at the edges.

A tensor's axis is traced back to a model input's axis as a `Chain` of such windows (the first
applied nearest the input). Composing the windows from the output back to the input gives the
exact set of input cells an output cell depends on, holes from dilation and gaps from strides
included: `chain_cells` ("clipped": only real cells, padding read at any layer drops out;
"unclipped": padding counted as cells, the textbook receptive field that may start before the
input). `chain_summary` reduces a chain to the three numbers of Araujo, Norris and Sim
("Computing receptive fields of convolutional neural networks", Distill, 2019): `size` (cells
covered by one output, from its first to its last), `jump` (the distance in input cells between
neighbouring outputs: below 1 after upsampling) and `start` (where output 0's field begins; negative
inside the padding).

`trace_layer` carries the traces of a layer's inputs to its output: one `Path` per way a value can
flow (merges such as `Add` sum several), each with a `Chain` (or None, for channel-like axes) per
axis of the tensor, and the input axes already seen whole (pooled or flattened away).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

KINDS = ("conv", "transpose", "nearest", "bilinear")

# Paths of one tensor kept apart before they are merged into the few that bound the field (a
# residual network doubles them at every block).
MAX_PATHS = 64


@dataclass(frozen=True)
class Window:
    """One layer's map from an output index to input indices along one axis.

    kind: "conv" (convolution, pooling, zero padding, cropping), "transpose", "nearest" or
    "bilinear". size: taps of the window (the upsampling factor for "nearest"/"bilinear").
    low: padding before the input (negative: cells cropped); None where it depends on an
    unknown input length ("same" padding with strides). input_length: cells of the layer's input
    along the axis (None: unknown)."""

    kind: str
    size: int = 1
    stride: int = 1
    dilation: int = 1
    low: int | None = 0
    input_length: int | None = None
    label: str = field(default="", compare=False)  # the layer, for pictures

    def taps(self, outputs: np.ndarray, clipped: bool) -> tuple[np.ndarray, np.ndarray]:
        """(output row, input index) pairs: the input cells each of `outputs` reads. Clipped drops
        padding cells (clamps, for bilinear); unclipped keeps them, as cells outside [0, n)."""
        outputs = np.asarray(outputs, dtype=np.int64)
        rows = np.arange(len(outputs))
        low = 0 if self.low is None else self.low
        n = self.input_length if clipped else None
        if self.kind == "conv":
            offsets = np.arange(self.size, dtype=np.int64) * self.dilation - low
            cells = outputs[:, None] * self.stride + offsets[None, :]
            pairs = np.broadcast_to(rows[:, None], cells.shape), cells
        elif self.kind == "transpose":
            # positions in the stride-dilated input; only multiples of the stride hold input cells
            positions = outputs[:, None] - low + np.arange(self.size, dtype=np.int64)[None, :] * self.dilation
            hit = positions % self.stride == 0
            pairs = np.broadcast_to(rows[:, None], positions.shape)[hit], positions[hit] // self.stride
        elif self.kind == "nearest":
            pairs = rows, outputs // self.size
        elif self.kind == "bilinear":
            return self._bilinear(outputs, rows, n)
        else:
            raise ValueError(f"Unknown window kind {self.kind!r}; expected one of {KINDS}.")
        owner, cells = (np.ravel(a) for a in pairs)
        if n is not None:
            keep = (cells >= 0) & (cells < n)
            owner, cells = owner[keep], cells[keep]
        return owner, cells

    def _bilinear(self, outputs, rows, n):
        # the half-pixel source coordinate (2o + 1 − s) / 2s, in integers: below it, and the next
        # cell when the coordinate is not whole (its weight is then positive)
        numerator = 2 * outputs + 1 - self.size
        if n is not None:
            numerator = np.maximum(numerator, 0)  # clamped at the first cell, as the layer does
        below = numerator // (2 * self.size)
        fractional = numerator % (2 * self.size) != 0
        above = below + 1
        if n is not None:
            above = np.minimum(above, n - 1)
        owner = np.concatenate([rows, rows[fractional]])
        cells = np.concatenate([below, above[fractional]])
        return owner, cells

    @property
    def upsampling(self) -> int:
        """How many output cells share one input cell's step (the jump's denominator)."""
        return self.stride if self.kind == "transpose" else self.size if self.kind in ("nearest", "bilinear") else 1

    @property
    def downsampling(self) -> int:
        return self.stride if self.kind == "conv" else 1


@dataclass(frozen=True)
class Chain:
    """A tensor axis traced to axis `source = (input, axis)` of the model's inputs (the spatial
    axes of input `input`, from 0) through `windows` (the first applied nearest the input)."""

    source: tuple[int, int]
    windows: tuple[Window, ...] = ()

    def then(self, window: Window) -> Chain:
        return replace(self, windows=(*self.windows, window))


@dataclass(frozen=True)
class Path:
    """One way values flow to a tensor: per axis (the batch axis excluded) a `Chain` or None (an
    axis that carries channels or features); `whole`, the input axes it has seen whole (pooled,
    flattened or mixed by a dense layer); `unknown`, a layer it could not be traced through."""

    axes: tuple[Chain | None, ...]
    whole: frozenset = field(default_factory=frozenset)
    unknown: str | None = None


Trace = tuple[Path, ...]


def input_trace(index: int, ndim: int, spatial: tuple[int, ...]) -> Trace:
    """The trace of model input `index` with `ndim` axes (batch excluded): the axes listed in
    `spatial` are its spatial axes 0, 1, …; the rest carry channels."""
    axes = [None] * ndim
    for number, axis in enumerate(spatial):
        axes[axis] = Chain((index, number))
    return (Path(tuple(axes)),)


# ----------------------------------------------------------------------------- one chain


def chain_cells(windows, output: int, clipped: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(input indices, path counts): the model-input cells output cell `output` depends on, and
    through how many paths of taps (a window of ones in every layer: the picture of where the
    field is dense). Clipped: padding read at any layer contributes nothing."""
    cells = np.array([output], dtype=np.int64)
    counts = np.ones(1, dtype=np.float64)
    for window in reversed(windows):
        if not len(cells):
            break
        owner, taps = window.taps(cells, clipped)
        cells, inverse = np.unique(taps, return_inverse=True)
        counts = np.bincount(inverse, weights=counts[owner], minlength=len(cells))
    return cells, counts


def chain_span(windows, output: int, clipped: bool = True) -> tuple[int, int] | None:
    """(first, last) input cell of output `output`'s field, or None when it sees no input cell."""
    cells, _ = chain_cells(windows, output, clipped)
    return (int(cells[0]), int(cells[-1])) if len(cells) else None


def chain_jump(windows) -> Fraction:
    """Input cells between neighbouring outputs: the product of the strides over the product of
    the upsampling factors."""
    jump = Fraction(1)
    for window in windows:
        jump *= Fraction(window.downsampling, window.upsampling)
    return jump


def chain_period(windows) -> int:
    """Outputs after which the pattern of fields repeats (shifted by period × jump input cells)."""
    return math.prod(window.upsampling for window in windows)


@dataclass(frozen=True)
class Field:
    """A receptive field along one input axis: `size` cells from first to last (the largest over
    output positions; `min_size` the smallest, which differs only after upsampling), `jump`
    input cells between neighbouring outputs, output 0's field starting at `start` (None where
    it depends on an unknown length). `whole`: the output has seen the axis whole."""

    size: int | None
    min_size: int | None
    jump: Fraction | None
    start: int | None
    whole: bool = False


# Where the fields of a long period are sampled instead of enumerated.
_MAX_PERIOD_SAMPLES = 4096


def chain_summary(windows) -> Field:
    """The textbook receptive field of a chain (unclipped, so it does not depend on where the
    output cell is, only on its position within the period)."""
    known = all(window.low is not None for window in windows)
    period = chain_period(windows)
    sizes = []
    for output in range(min(period, _MAX_PERIOD_SAMPLES)):
        span = chain_span(windows, output, clipped=False)
        sizes.append(0 if span is None else span[1] - span[0] + 1)
    first = chain_span(windows, 0, clipped=False)
    start = first[0] if known and first is not None else None
    return Field(max(sizes), min(sizes), chain_jump(windows), start)


# ----------------------------------------------------------------------------- a tensor's trace


def sources(trace: Trace) -> list[tuple[int, int]]:
    """The model input axes a trace depends on, in order."""
    found = set()
    for path in trace:
        found |= set(path.whole)
        found |= {chain.source for chain in path.axes if chain is not None}
    return sorted(found)


def unknown(trace: Trace) -> str | None:
    """The first layer the trace could not go through, or None."""
    return next((path.unknown for path in trace if path.unknown), None)


def summarize(trace: Trace, lengths: dict) -> dict:
    """{source axis: Field} for every input axis the trace depends on; `lengths` gives each
    input axis's length (for fields that cover an axis whole)."""
    fields = {}
    for source in sources(trace):
        if any(source in path.whole for path in trace):
            length = lengths.get(source)
            fields[source] = Field(length, length, None, 0, whole=True)
            continue
        chains = [chain for path in trace for chain in path.axes if chain is not None and chain.source == source]
        if len(chains) == 1:
            fields[source] = chain_summary(chains[0].windows)
            continue
        fields[source] = _union_summary([chain.windows for chain in chains])
    return fields


def _union_summary(chains) -> Field:
    """The field of a sum of paths along one axis: the hull of theirs at every position."""
    jump = chain_jump(chains[0])
    period = math.lcm(*(chain_period(c) for c in chains))
    known = all(w.low is not None for c in chains for w in c)
    sizes, start = [], None
    for output in range(min(period, _MAX_PERIOD_SAMPLES)):
        spans = [s for s in (chain_span(c, output, clipped=False) for c in chains) if s is not None]
        if not spans:
            sizes.append(0)
            continue
        first, last = min(s[0] for s in spans), max(s[1] for s in spans)
        sizes.append(last - first + 1)
        if output == 0 and known:
            start = first
    return Field(max(sizes), min(sizes), jump, start)


def cells_at(trace: Trace, position: dict[int, int], clipped: bool = True) -> list[dict]:
    """The field of one output cell: `position` gives the index on each traced axis of the tensor
    (its axes without the batch, as in `Path.axes`). Returns one dict per path, {source axis:
    (input indices, path counts)}; a path that has seen a source axis whole maps it to None."""
    fields = []
    for path in trace:
        one = {source: None for source in path.whole}
        for axis, chain in enumerate(path.axes):
            if chain is None or chain.source in one:
                continue
            if axis not in position:
                raise ValueError(f"`position` must give an index for axis {axis}; received {position}.")
            one[chain.source] = chain_cells(chain.windows, position[axis], clipped)
        fields.append(one)
    return fields


# ----------------------------------------------------------------------------- through layers


def _map_axes(trace: Trace, function) -> Trace:
    """Each path with `function(path) -> Path`, duplicates dropped (in order)."""
    seen, result = set(), []
    for path in trace:
        mapped = function(path)
        if mapped not in seen:
            seen.add(mapped)
            result.append(mapped)
    return tuple(result)


def _unknown(trace: Trace, ndim: int, why: str) -> Trace:
    return (Path((None,) * ndim, frozenset(sources(trace)), why),)


def _swallow(path: Path, axes) -> Path:
    """`path` with `axes` mixed whole: their chains' sources join `whole`, the axes carry None."""
    whole = set(path.whole)
    new_axes = list(path.axes)
    for axis in axes:
        if new_axes[axis] is not None:
            whole.add(new_axes[axis].source)
            new_axes[axis] = None
    return replace(path, axes=tuple(new_axes), whole=frozenset(whole))


def spatial_axes(rank: int, data_format: str | None) -> list[int]:
    """Positions of a layer's spatial axes among its input's axes (the batch axis excluded)."""
    return list(range(1, rank + 1)) if data_format == "channels_first" else list(range(rank))


def _windowed(trace: Trace, axes, windows, ndim_out: int) -> Trace:
    def step(path):
        new_axes = list(path.axes)
        for axis, window in zip(axes, windows):
            chain = new_axes[axis]
            new_axes[axis] = None if chain is None else chain.then(window)
        return replace(path, axes=tuple(new_axes[:ndim_out]))

    return _map_axes(trace, step)


def layer_windows(layer, input_shape) -> list[Window] | None:
    """The windows of a windowed layer along its spatial axes, for an input of `input_shape`
    (with the batch axis); None for layers that are not windowed."""
    from rankconv import layers as L
    from rankconv import utils
    from rankconv.layers.reshaping import Cropping, UpSampling

    if isinstance(layer, (L.Conv, L.DepthwiseConv, L.SeparableConv, L.Pooling)):
        pooling = isinstance(layer, L.Pooling)
        sizes = layer.pool_size if pooling else layer.kernel_size
        dilations = (1,) * layer.rank if pooling else layer.dilation_rate
        spatial = _spatial_lengths(layer, input_shape)
        windows = []
        for n, k, s, d in zip(spatial, sizes, layer.strides, dilations):
            windows.append(Window("conv", k, s, d, _low(layer.padding, n, k, s, d), n))
        return windows
    if isinstance(layer, L.ConvTranspose):
        extras = layer.output_padding or (None,) * layer.rank
        spatial = _spatial_lengths(layer, input_shape)
        windows = []
        for n, k, s, d, extra in zip(spatial, layer.kernel_size, layer.strides, layer.dilation_rate, extras):
            low, _ = utils.conv_transpose_padding(k, s, d, layer.padding, extra)
            windows.append(Window("transpose", k, s, d, low, n))
        return windows
    if isinstance(layer, L.ZeroPadding):
        spatial = _spatial_lengths(layer, input_shape)
        return [Window("conv", 1, 1, 1, lo, n) for n, (lo, _) in zip(spatial, layer.padding)]
    if isinstance(layer, Cropping):
        spatial = _spatial_lengths(layer, input_shape)
        return [Window("conv", 1, 1, 1, -lo, n) for n, (lo, _) in zip(spatial, layer.cropping)]
    if isinstance(layer, UpSampling):
        spatial = _spatial_lengths(layer, input_shape)
        kind = "bilinear" if layer.interpolation == "bilinear" else "nearest"
        return [Window(kind, factor, 1, 1, 0, n) for n, factor in zip(spatial, layer.size)]
    return None


def _spatial_lengths(layer, input_shape):
    shape = tuple(input_shape)[1:]
    return [shape[axis] for axis in spatial_axes(layer.rank, getattr(layer, "data_format", None))]


def _low(padding, n, k, s, d) -> int | None:
    """Cells of padding before the input for a padding mode (TensorFlow's rule for "same")."""
    span = d * (k - 1) + 1
    if padding == "valid":
        return 0
    if padding == "causal":
        return span - 1
    if n is None:
        return (span - 1) // 2 if s == 1 else None
    out = -(-n // s)
    return max((out - 1) * s + span - n, 0) // 2


# Layers that move no value from one spatial cell to another (at inference).
_POINTWISE = (
    "Activation Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D BatchNormalization Rescaling ReLU "
    "LeakyReLU PReLU ELU InputLayer RandomFlip RandomRotation RandomZoom RandomTranslation RandomContrast "
    "RandomBrightness"
).split()


def trace_layer(layer, traces: list[Trace], input_shapes: list, output_shape) -> Trace:
    """The trace of `layer`'s output from its inputs' traces (shapes with the batch axis)."""
    from rankconv import layers as L

    ndim_out = len(tuple(output_shape)) - 1
    trace = traces[0]
    name = type(layer).__name__
    windows = layer_windows(layer, input_shapes[0])
    if windows is not None:
        windows = [replace(window, label=layer.name) for window in windows]
        axes = spatial_axes(layer.rank, getattr(layer, "data_format", None))
        return _windowed(trace, axes, windows, ndim_out)
    if name in _POINTWISE:
        return trace
    if isinstance(layer, (L.Softmax, L.LayerNormalization)):
        # they mix the values along their axes (full-tensor axes, the batch axis counted)
        mixed = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        axes = [a % (ndim_out + 1) - 1 for a in mixed]
        return _map_axes(trace, lambda path: _swallow(path, axes))
    if isinstance(layer, L.Embedding):
        return _map_axes(trace, lambda path: replace(path, axes=(*path.axes, None)))
    if isinstance(layer, L.Dense):
        return _map_axes(trace, lambda path: _swallow(path, [len(path.axes) - 1]))
    if isinstance(layer, L.GlobalPooling):
        axes = spatial_axes(layer.rank, layer.data_format)

        def pooled(path):
            path = _swallow(path, axes)
            if layer.keepdims:
                return path
            return replace(path, axes=tuple(a for i, a in enumerate(path.axes) if i not in axes))

        return _map_axes(trace, pooled)
    if isinstance(layer, (L.Flatten, L.Reshape)):
        if tuple(input_shapes[0]) == tuple(output_shape):
            return trace
        return _map_axes(trace, lambda path: replace(_swallow(path, range(len(path.axes))), axes=(None,) * ndim_out))
    if isinstance(layer, L.Concatenate):
        merged = tuple(path for t in traces for path in t)
        axis = layer.axis % (ndim_out + 1) - 1
        return _limit(_map_axes(merged, lambda path: _swallow(path, [axis])))
    if name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"):
        return _limit(tuple(dict.fromkeys(path for t in traces for path in t)))
    return _unknown(trace, ndim_out, f"{name} '{layer.name}'")


def _limit(trace: Trace) -> Trace:
    """At most MAX_PATHS paths: beyond that, keep per axis the paths whose fields begin first and
    end last at output 0 (they bound the hull; the path counts of the others are dropped)."""
    if len(trace) <= MAX_PATHS:
        return trace
    keep = []
    for axis in range(len(trace[0].axes)):
        spans = []
        for path in trace:
            chain = path.axes[axis]
            if chain is not None:
                span = chain_span(chain.windows, 0, clipped=False)
                if span is not None:
                    spans.append((span, path))
        if spans:
            keep.append(min(spans, key=lambda item: item[0][0])[1])
            keep.append(max(spans, key=lambda item: item[0][1])[1])
    return tuple(dict.fromkeys(keep or trace[:MAX_PATHS]))
