"""`rankconv explain --html`: one self-contained page of pictures for an `Explanation`.

- the shape flow through the model, as a diagram of boxes (one per layer, placed by depth so that
  branches stand side by side) with each output shape, parameters and activation memory;
- the receptive field of one output position of each spatial layer, on the input grid: for 1-D
  inputs every layer as a row of cells, the cells that feed the chosen output highlighted and
  joined to the cells they read (so strides spread the rows apart and dilations leave holes), the
  input drawn as a band as deep as its channels; for 2-D inputs a heat map of how many paths of
  taps reach each input cell, with the field of the neighbouring outputs outlined (the jump); 3-D
  inputs as 2-D slices;
- the kernels of a model file as images: 2-D kernels as small pictures (colour for three input
  channels, a blue-white-red scale otherwise), 1-D kernels over word vectors as taps × channels
  heat maps, 3-D kernels as slices.

Hand-written SVG and PNG (zlib, no dependency): the page has no scripts and fetches nothing; it is
HTML, inline CSS, inline SVG and PNG images in data URLs, every text escaped.
"""

from __future__ import annotations

import base64
import html
import math
import struct
import zlib

import numpy as np

from rankconv import receptive_field as rf
from rankconv.explanation import Explanation
from rankconv.explanation_text import (
    TABLE_COLUMNS,
    algorithm_text,
    field_text,
    human_bytes,
    human_number,
    kernel_text,
    shape_text,
)

MAX_FIELD_FIGURES = 8  # receptive-field pictures drawn when no layer is chosen
MAX_KERNEL_LAYERS = 12
MAX_FILTERS = 32  # filters per layer shown as images
MAX_FILTERS_1D = 16  # … as taps × channels heat maps, each a long strip
MAX_CHANNELS = 16  # input channels per filter shown (2-D and 3-D kernels with more than 3)
MAX_GRID = 72  # cells per axis of a 2-D field picture before cells are grouped into blocks
MAX_ROW_CELLS = 160  # input cells a 1-D picture draws one by one; wider fields are drawn as strips
PAGE_WIDTH = 1040
SHOW_WHOLE = 48  # input axes this short are drawn whole in the field pictures

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 68em;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.45em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; } h3 { font-size: 1.02em; margin: 1.2em 0 0.3em; }
.lead { color: #444; } .meta { color: #666; font-size: 0.88em; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.6em 0; }
th, td { border-bottom: 1px solid #e6e6e6; padding: 0.25em 0.55em; text-align: left; vertical-align: top;
         white-space: nowrap; }
th { background: #f6f7f9; } td.named { white-space: normal; min-width: 12em; } td.named code { color: #555; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, td.code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.95em; }
figure { margin: 0.8em 0 1.6em; } .fields { display: flex; flex-wrap: wrap; gap: 0 2.2em; }
.fields figure.field { flex: 1 1 28em; max-width: 100%; } .fields figure.wide { flex-basis: 100%; } figcaption { color: #444; font-size: 0.88em; max-width: 62em; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
details { margin: 0.35em 0; } summary { cursor: pointer; font-weight: 600; }
.layer p { margin: 0.25em 0 0.25em 1.2em; } .swatch { display: inline-block; width: 0.9em; height: 0.9em;
  vertical-align: -0.1em; border: 1px solid #999; margin: 0 0.2em; }
.scroll { overflow-x: auto; }
"""

_KIND_COLOURS = {
    "conv": ("#e8f0fb", "#3d6fb6"),
    "pool": ("#e9f6ec", "#3f8f55"),
    "dense": ("#fdf1e3", "#c07a22"),
    "input": ("#f1f1f1", "#777777"),
    "other": ("#f6f6f6", "#999999"),
}
_FIELD = (31, 90, 170)  # the chosen output's field
_NEIGHBOUR = "#d9622b"  # the next output's field
_NEIGHBOUR_2 = "#2b9a5b"


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


# ----------------------------------------------------------------------------- PNG, by hand


def png(rgb: np.ndarray) -> bytes:
    """An (height, width, 3) uint8 array as a PNG file (8-bit RGB, no filtering)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def _data_url(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png(rgb)).decode("ascii")


def _diverging(values: np.ndarray, scale: float) -> np.ndarray:
    """Blue (negative) – white – red (positive), |value| = scale at full colour."""
    t = np.clip(values / scale, -1, 1) if scale > 0 else np.zeros_like(values)
    red = np.array([178, 24, 43], float)
    blue = np.array([33, 102, 172], float)
    white = np.array([255, 255, 255], float)
    out = np.where(t[..., None] >= 0, white + (red - white) * t[..., None], white + (blue - white) * -t[..., None])
    return out.astype(np.uint8)


def _sequential(values: np.ndarray) -> np.ndarray:
    """White (0) to the field's blue (1)."""
    t = np.clip(values, 0, 1)[..., None]
    white = np.array([255, 255, 255], float)
    return (white + (np.array(_FIELD, float) - white) * (0.15 + 0.85 * t) * (t > 0)).astype(np.uint8)


# ----------------------------------------------------------------------------- shape flow


def _kind(class_name: str) -> str:
    if class_name == "InputLayer":
        return "input"
    if "Pool" in class_name:
        return "pool"
    if "Conv" in class_name:
        return "conv"
    if class_name in ("Dense", "Embedding"):
        return "dense"
    return "other"


def _fit(text: str, pixels: float, size: float) -> str:
    limit = max(4, int(pixels / (size * 0.56)))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flow_svg(explanation: Explanation) -> str:
    """The layers as boxes by depth, arrows along the data flow."""
    layers = explanation.layers
    index = {layer.name: i for i, layer in enumerate(layers)}
    depth = []
    for layer in layers:
        depth.append(1 + max((depth[index[n]] for n in layer.inputs), default=-1))
    levels: dict[int, list[int]] = {}
    for i, d in enumerate(depth):
        levels.setdefault(d, []).append(i)
    box_h, gap_y, margin = 62, 34, 10
    width = PAGE_WIDTH
    height = margin * 2 + len(levels) * (box_h + gap_y) - gap_y
    largest = max((layer.activation_bytes or 0 for layer in layers), default=1) or 1
    scales = (
        max((_positions(layer.output_shape) for layer in layers), default=1) or 1,
        max((layer.output_shape[-1] or 1 for layer in layers if layer.output_shape), default=1) or 1,
    )
    position = {}
    for level, members in levels.items():
        count = len(members)
        box_w = min(560.0, (width - 2 * margin - 14 * (count - 1)) / count)
        total = count * box_w + 14 * (count - 1)
        x0 = (width - total) / 2
        for k, i in enumerate(members):
            position[i] = (x0 + k * (box_w + 14), margin + level * (box_h + gap_y), box_w)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-label="shape flow" class="flow">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#888"/></marker></defs>',
    ]
    for i, layer in enumerate(layers):
        x, y, w = position[i]
        for name in layer.inputs:
            px, py, pw = position[index[name]]
            x1, y1, x2, y2 = px + pw / 2, py + box_h, x + w / 2, y - 2
            middle = (y1 + y2) / 2
            parts.append(
                f'<path d="M {x1:.1f} {y1:.1f} C {x1:.1f} {middle:.1f}, {x2:.1f} {middle:.1f}, {x2:.1f} {y2:.1f}" '
                'fill="none" stroke="#888" stroke-width="1.3" marker-end="url(#arrow)"/>'
            )
    for i, layer in enumerate(layers):
        x, y, w = position[i]
        fill, stroke = _KIND_COLOURS[_kind(layer.class_name)]
        glyph = w >= 380  # room for the tensor glyph beside the text
        text_w = w - 16 - (96 if glyph else 0)
        title = f"{layer.name}: {layer.call}; output {shape_text(layer.output_shape)}; {layer.params:,} parameters"
        parts.append(f'<g class="node"><title>{_escape(title)}</title>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{box_h}" rx="6" fill="{fill}" stroke="{stroke}" '
            'stroke-width="1.4"/>'
        )
        parts.append(
            f'<text x="{x + 8:.1f}" y="{y + 17:.1f}" font-size="12.5" font-weight="600" fill="#222">'
            f"{_escape(_fit(layer.name, text_w, 12.5))}</text>"
        )
        parts.append(
            f'<text x="{x + 8:.1f}" y="{y + 33:.1f}" font-size="11.5" fill="#333" font-family="monospace">'
            f"{_escape(_fit(layer.call, text_w, 11.5 * 1.08))}</text>"
        )
        facts = f"→ {shape_text(layer.output_shape)}"
        if layer.params:
            facts += f" · {layer.params:,} params"
        if layer.multiply_adds:
            facts += f" · {human_number(layer.multiply_adds)}MACs"
        parts.append(
            f'<text x="{x + 8:.1f}" y="{y + 49:.1f}" font-size="11.5" fill="#444">{_escape(_fit(facts, text_w, 11.5))}</text>'
        )
        if glyph:
            parts.append(_glyph(x + w - 92, y + 6, layer.output_shape, scales))
        if layer.activation_bytes:
            bar = max(2.0, (w - 16) * math.sqrt(layer.activation_bytes / largest))
            parts.append(
                f'<rect x="{x + 8:.1f}" y="{y + box_h - 7:.1f}" width="{bar:.1f}" height="3" fill="{stroke}" '
                f'opacity="0.55"><title>{_escape(human_bytes(layer.activation_bytes))} of activations per sample</title></rect>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)


def _positions(shape) -> int:
    spatial = tuple(shape)[:-1]
    return math.prod(d or 1 for d in spatial) if spatial else 1


def _glyph(x, y, shape, scales) -> str:
    """A tensor as a slab: height for its positions, width for its channels (square-root scales,
    relative to the model's largest), depth for a second spatial axis."""
    positions, channels = _positions(shape), (tuple(shape)[-1] or 1) if shape else 1
    height = 4 + 40 * math.sqrt(positions / scales[0])
    width = 3 + 52 * math.sqrt(channels / scales[1])
    depth = 7 if len(shape) >= 3 else 0
    top = y + (46 - height) / 2
    title = f"{shape_text(tuple(shape))}: {positions:,} position(s) × {channels:,} channel(s)"
    parts = [f"<g><title>{_escape(title)}</title>"]
    if depth:
        parts.append(
            f'<path d="M {x:.1f} {top:.1f} l {depth} {-depth} h {width:.1f} v {height:.1f} l {-depth} {depth} z" '
            'fill="#dfe6ef" stroke="#7d8ea6" stroke-width="0.8"/>'
        )
    parts.append(
        f'<rect x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{height:.1f}" fill="#c9d6e8" '
        'stroke="#5f7594" stroke-width="0.9"/>'
    )
    parts.append("</g>")
    return "".join(parts)


# ----------------------------------------------------------------------------- receptive fields


def _traced_axes(layer) -> list[tuple[int, rf.Chain]]:
    """(axis of the output without the batch, chain) for the output's traced axes (first path)."""
    if not layer.trace:
        return []
    return [(axis, chain) for axis, chain in enumerate(layer.trace[0].axes) if chain is not None]


def drawable(layer) -> bool:
    """Whether a layer's output has spatial axes traced to the input (and a field to draw)."""
    if layer.layer is None or rf.unknown(layer.trace) or not hasattr(layer.layer, "rank"):
        return False
    traced = _traced_axes(layer)
    return bool(traced) and all(layer.output_shape[axis] is not None for axis, _ in traced)


def _default_layers(explanation: Explanation) -> list:
    chosen = [layer for layer in explanation.layers if drawable(layer)]
    if len(chosen) > MAX_FIELD_FIGURES:
        step = (len(chosen) - 1) / (MAX_FIELD_FIGURES - 1)
        chosen = [chosen[round(i * step)] for i in range(MAX_FIELD_FIGURES)]
    return chosen


def _position(layer, position) -> dict[int, int]:
    traced = _traced_axes(layer)
    lengths = [layer.output_shape[axis] for axis, _ in traced]
    if position is None:
        return {axis: n // 2 for (axis, _), n in zip(traced, lengths)}
    if len(position) != len(traced):
        raise ValueError(
            f"`position` must give {len(traced)} index(es), one per spatial axis of layer '{layer.name}' "
            f"(output {shape_text(layer.output_shape)}); received {tuple(position)}."
        )
    for index, n in zip(position, lengths):
        if index is None or not 0 <= index < n:
            raise ValueError(
                f"`position` {tuple(position)} is outside layer '{layer.name}''s output positions "
                f"{shape_text(tuple(lengths))}."
            )
    return {axis: int(i) for (axis, _), i in zip(traced, position)}


def _field_counts(layer, position: dict[int, int], sources: list) -> np.ndarray | None:
    """Path counts over the input cells in `sources`' lengths (an array with one axis per source),
    summed over the trace's paths; None if a path sees a source axis whole."""
    total = None
    for path_field in rf.cells_at(layer.trace, position):
        vectors = []
        for source, length in sources:
            entry = path_field.get(source)
            if entry is None:
                return None
            cells, counts = entry
            vector = np.zeros(length)
            vector[cells] = counts  # the cells are unique
            vectors.append(vector)
        grid = vectors[0]
        for vector in vectors[1:]:
            grid = np.multiply.outer(grid, vector)
        total = grid if total is None else total + grid
    return total


def _hull(layer, position, source, clipped=False):
    """(first, last) of the chosen output's field along input axis `source` (unclipped: padding too)."""
    spans = []
    for path in layer.trace:
        for axis, chain in enumerate(path.axes):
            if chain is not None and chain.source == source:
                span = rf.chain_span(chain.windows, position[axis], clipped)
                if span is not None:
                    spans.append(span)
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


def field_figure(explanation: Explanation, layer, position=None) -> str:
    """The receptive field of one output cell of `layer`, drawn on the input."""
    where = _position(layer, position)
    traced = _traced_axes(layer)
    source_input = traced[0][1].source[0]
    description = explanation.inputs[source_input]
    sources = [((source_input, a), n) for a, n in enumerate(description.lengths)]
    if any(n is None for _, n in sources):
        return ""
    rank = len(sources)
    shown = tuple(where[axis] for axis, _ in traced)
    if rank == 1:
        body, caption = _rows_1d(explanation, layer, where, traced)
    else:
        counts = _field_counts(layer, where, sources)
        if counts is None:
            return ""
        if rank == 2:
            body, caption = _grid_2d(layer, where, sources, counts, description)
        else:
            body, caption = _slices_3d(layer, where, sources, counts, description)
    title = f"{layer.name} ({layer.call}): output position {shape_text(shown)}"
    return (
        f'<figure class="field{" wide" if rank == 1 else ""}" data-layer="{_escape(layer.name)}"><h3>{_escape(title)}</h3>'
        f'<div class="scroll">{body}</div><figcaption>{caption}</figcaption></figure>'
    )


def _rows_1d(explanation, layer, where, traced):
    """Every layer along the chain as a row of cells placed at their fields' centres, the cells
    feeding the chosen output highlighted and joined to the cells they read."""
    axis, chain = traced[0]
    windows = chain.windows
    levels = len(windows) + 1
    lengths = [w.input_length for w in windows] + [layer.output_shape[axis]]
    chosen = where[axis]
    # cells feeding the chosen output, level by level (clipped), and their path counts
    feeding = [None] * levels
    cells, counts = np.array([chosen]), np.ones(1)
    feeding[-1] = (cells, counts)
    links = []
    for level in range(levels - 1, 0, -1):
        owner, taps = windows[level - 1].taps(cells, True)
        links.append((level, cells[owner], taps))
        new_cells, inverse = np.unique(taps, return_inverse=True)
        counts = np.bincount(inverse, weights=counts[owner], minlength=len(new_cells))
        cells = new_cells
        feeding[level - 1] = (cells, counts)
    neighbour = chosen + 1 if chosen + 1 < lengths[-1] else chosen - 1
    next_cells = rf.chain_cells(windows, neighbour, True)[0] if neighbour >= 0 else np.array([], int)
    hull = rf.chain_span(windows, chosen, clipped=False) or (0, 0)
    real = rf.chain_span(windows, chosen, clipped=True) or hull
    n0 = lengths[0]
    size = hull[1] - hull[0] + 1
    margin = max(8, size // 2 + 4)  # some context on both sides
    low = min(hull[0], real[0], *(next_cells[:1] if len(next_cells) else [])) - margin
    high = max(hull[1], real[1], *(next_cells[-1:] if len(next_cells) else [])) + margin
    low, high = max(low, min(hull[0], 0)), min(high, max(hull[1], n0 - 1))
    if n0 <= 2 * SHOW_WHOLE:
        low, high = min(hull[0], 0), max(hull[1], n0 - 1)
    span = high - low + 1
    label_w, right = 190, 12
    cell = min(26.0, (PAGE_WIDTH - label_w - right) / span)
    width = label_w + right + cell * span
    row_gap = 54
    band = 44  # the input drawn as deep as its channels
    top = 16
    height = top + (levels - 1) * row_gap + band + 40

    def x_of(center):
        return label_w + (center - low + 0.5) * cell

    def y_of(level):  # the output at the top, the input at the bottom
        return top + (levels - 1 - level) * row_gap

    centres = [_centres(windows[:level], lengths[level], low, high) for level in range(levels)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="receptive field" class="field-1d">'
    ]
    detailed = span <= MAX_ROW_CELLS
    if detailed and sum(len(t) for _, _, t in links) <= 3000:  # links first, under the cells
        for level, owners, taps in links:
            for o, t in zip(owners, taps):
                if o in centres[level] and t in centres[level - 1]:
                    parts.append(
                        f'<line x1="{x_of(centres[level][o]):.1f}" y1="{y_of(level) + 6:.1f}" '
                        f'x2="{x_of(centres[level - 1][t]):.1f}" y2="{y_of(level - 1) - (band / 2 if level == 1 else 6):.1f}" '
                        f'stroke="rgb{_FIELD}" stroke-opacity="0.35" stroke-width="1"/>'
                    )
    neighbour_cells = set(next_cells.tolist())
    for level in range(levels):
        y = y_of(level)
        fed = dict(zip(*(a.tolist() for a in feeding[level]))) if feeding[level] is not None else {}
        top_count = max(fed.values(), default=1)
        jump = float(rf.chain_jump(windows[:level]))
        h = band if level == 0 else 12
        y0 = y - h / 2
        if level == 0:
            # padding the field reaches into, beyond the input's ends
            for lo_pad, hi_pad in ((low, -1), (n0, high)):
                if hi_pad >= lo_pad:
                    parts.append(
                        f'<rect x="{x_of(lo_pad) - cell / 2:.1f}" y="{y0:.1f}" width="{cell * (hi_pad - lo_pad + 1):.1f}" '
                        f'height="{h}" fill="url(#hatch-{_slug(layer.name)})" stroke="#bbb" stroke-dasharray="3 2"/>'
                    )
        if detailed:
            w = max(1.0, cell * min(1.0, jump) * 0.86)
            for i, centre in centres[level].items():
                value = fed.get(i, 0)
                colour = "#ffffff"
                if value:
                    t = 0.25 + 0.75 * value / top_count
                    colour = "rgb({},{},{})".format(*(int(255 + (c - 255) * t) for c in _FIELD))
                stroke = _NEIGHBOUR if level == 0 and i in neighbour_cells and not value else "#999"
                parts.append(
                    f'<rect x="{x_of(centre) - w / 2:.1f}" y="{y0:.1f}" width="{w:.1f}" height="{h}" fill="{colour}" '
                    f'stroke="{stroke}" stroke-width="{0.6 if cell < 6 else 0.9}"><title>'
                    f"{_escape(_level_name(windows, level, layer))} cell {i}"
                    f"{f': {value:g} path(s)' if value else ''}</title></rect>"
                )
        else:  # too many cells to draw one by one: the row as a strip, a pixel per input cell
            strip = np.zeros(span)
            present = np.zeros(span, bool)
            for i, centre in centres[level].items():
                x = int(math.floor(centre - low + 0.5))
                if 0 <= x < span:
                    present[x] = True
                    strip[x] = max(strip[x], fed.get(i, 0) / top_count)
            # a pixel of the page per group of cells (its largest count), so no highlighted cell is lost
            group = max(1, math.ceil(1 / cell))
            bins = math.ceil(span / group)
            strip = np.pad(strip, (0, bins * group - span)).reshape(bins, group).max(axis=1)
            present = np.pad(present, (0, bins * group - span)).reshape(bins, group).any(axis=1)
            rgb = _sequential(strip)
            rgb[~present] = 255
            rgb[present & (strip == 0)] = 236
            parts.append(
                f'<image x="{x_of(low) - cell / 2:.1f}" y="{y0:.1f}" width="{cell * group * bins:.1f}" height="{h}" '
                f'preserveAspectRatio="none" style="image-rendering: pixelated" href="{_data_url(rgb[None])}"/>'
            )
        name = _level_name(windows, level, layer, explanation.inputs[chain.source[0]].spatial_axes[chain.source[1]])
        detail = _level_detail(windows, level, explanation)
        parts.append(
            f'<text x="6" y="{y + 1:.1f}" font-size="12" font-weight="600" fill="#222">{_escape(_fit(name, label_w - 10, 12))}</text>'
        )
        parts.append(
            f'<text x="6" y="{y + 15:.1f}" font-size="10.5" fill="#666">{_escape(_fit(detail, label_w - 10, 10.5))}</text>'
        )
    # the neighbouring output's field, outlined on the input band
    if len(next_cells):
        a, b = int(next_cells[0]), int(next_cells[-1])
        parts.append(
            f'<rect x="{x_of(a) - cell / 2:.1f}" y="{y_of(0) - band / 2 - 4:.1f}" width="{cell * (b - a + 1):.1f}" '
            f'height="{band + 8}" fill="none" stroke="{_NEIGHBOUR}" stroke-width="1.6" stroke-dasharray="5 3"/>'
        )
    parts.append(
        f'<rect x="{x_of(hull[0]) - cell / 2:.1f}" y="{y_of(0) - band / 2 - 2:.1f}" width="{cell * size:.1f}" '
        f'height="{band + 4}" fill="none" stroke="rgb{_FIELD}" stroke-width="2"/>'
    )
    # input cell numbers under the band
    step = _nice_step(40 / cell)
    for i in range(max(0, low), min(n0, high + 1)):
        if i % step == 0:
            parts.append(
                f'<text x="{x_of(i):.1f}" y="{y_of(0) + band / 2 + 14:.1f}" font-size="10" fill="#666" '
                f'text-anchor="middle">{i}</text>'
            )
    parts.insert(
        1,
        '<defs><pattern id="hatch-' + _slug(layer.name) + '" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#ccc" stroke-width="2"/></pattern></defs>',
    )
    parts.append("</svg>")
    field = rf.chain_summary(windows)
    channels = explanation.inputs[chain.source[0]].shape
    depth = channels[-1] if len(channels) > 1 else None
    caption = (
        f"Output {chosen} of <b>{_escape(layer.name)}</b> (top row) reads the highlighted cells of each layer below it, "
        f"down to the input (bottom band{_depth_note(depth)}). "
        f"Its field: <b>{_escape(field_text(layer.receptive_field))}</b> (size / jump / start): input cells "
        f"{hull[0]}…{hull[1]}"
        + (f", of which {real[0]}…{real[1]} are real cells (the rest is padding, hatched)" if real != hull else "")
        + f'. Darker: reached by more paths of taps. <span class="swatch" style="border:2px dashed {_NEIGHBOUR}"></span>'
        f"the field of output {neighbour}: {field.jump} input cell{'' if field.jump == 1 else 's'} "
        f"{'later' if neighbour > chosen else 'earlier'}, the jump."
    )
    return "\n".join(parts), caption


def _nice_step(at_least: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, … that is at least `at_least` (axis labels' spacing)."""
    step = 1
    while step < at_least:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step


def _depth_note(depth) -> str:
    if not depth:
        return ""
    if depth == 1:
        return ", one channel deep"
    return f", as deep as its {depth:,} channels: the windows span all of them"


def _centres(windows, length, low, high) -> dict[int, float]:
    """{cell: centre of its field in input cells} for the cells of one level whose centre lies in
    [low, high]: the fields repeat every period, shifted by period × jump input cells."""
    jump = rf.chain_jump(windows)
    period = rf.chain_period(windows)
    base = [rf.chain_span(windows, r, clipped=False) for r in range(period)]
    known = [b for b in base if b is not None]
    if not known:
        return {}
    start = known[0][0]
    first = max(0, int(math.floor((low - start) / jump)) - period - 1)
    last = min(length - 1, int(math.ceil((high - start) / jump)) + period + 1)
    cells = np.arange(first, last + 1)
    found = {}
    shift = float(period * jump)
    for r, span in enumerate(base):
        if span is None:
            continue
        chosen = cells[cells % period == r]
        centre = (span[0] + span[1]) / 2 + (chosen // period) * shift
        keep = (centre >= low) & (centre <= high)
        found.update(zip(chosen[keep].tolist(), centre[keep].tolist()))
    return dict(sorted(found.items()))


def _level_name(windows, level, layer, axis_name="") -> str:
    if level == 0:
        return f"input: {axis_name}" if axis_name else "input"
    return windows[level - 1].label or (layer.name if level == len(windows) else f"layer {level}")


def _level_detail(windows, level, explanation) -> str:
    if level == 0:
        return "the model's input"
    w = windows[level - 1]
    if w.kind == "conv":
        text = f"window {w.size}"
        if w.stride > 1:
            text += f", stride {w.stride}"
        if w.dilation > 1:
            text += f", dilation {w.dilation}"
        return text
    if w.kind == "transpose":
        return f"transposed {w.size}, stride {w.stride}"
    return f"{w.kind} ×{w.size}"


def _crop_window(hulls, lengths):
    """The input region a 2-D/3-D picture shows along each axis: all of a short axis, else the
    fields with a margin; and the padding the fields reach into."""
    region = []
    for (lo, hi), n in zip(hulls, lengths):
        if n <= SHOW_WHOLE:
            region.append((min(lo, 0), max(hi, n - 1)))
            continue
        margin = max(4, (hi - lo + 1) // 3)
        region.append((max(lo - margin, min(lo, 0)), min(hi + margin, max(hi, n - 1))))
    return region


def _slug(name: str) -> str:
    """A layer's name as a fragment of an SVG id (unique per page, as layer names are)."""
    return "".join(c if c.isalnum() else "-" for c in name)


def _grid_2d(layer, where, sources, counts, description):
    """The field on the input grid: path counts as a heat map, the chosen output's field outlined,
    the fields of its next neighbours dashed, padding hatched. Long axes are cropped around the
    fields and, past MAX_GRID cells, drawn in blocks of cells (the block's largest count)."""
    traced = _traced_axes(layer)
    hull = [_hull(layer, where, source) for source, _ in sources]
    real = [_hull(layer, where, source, clipped=True) for source, _ in sources]
    lengths = [n for _, n in sources]
    neighbours = []
    for k, (axis, _) in enumerate(traced[:2]):
        moved = dict(where)
        if where[axis] + 1 < layer.output_shape[axis]:
            moved[axis] = where[axis] + 1
        elif where[axis] > 0:
            moved[axis] = where[axis] - 1
        else:
            continue
        neighbours.append((k, moved, [_hull(layer, moved, source) for source, _ in sources]))
    hulls = [hull] + [n[2] for n in neighbours]
    spans = [(min(h[a][0] for h in hulls if h[a]), max(h[a][1] for h in hulls if h[a])) for a in range(2)]
    region = _crop_window(spans, lengths)
    extent = [hi - lo + 1 for lo, hi in region]
    block = [max(1, math.ceil(n / MAX_GRID)) for n in extent]
    grid = [math.ceil(n / b) for n, b in zip(extent, block)]
    # path counts on the shown region (zero outside the input), then reduced to blocks
    shown = np.zeros((grid[0] * block[0], grid[1] * block[1]))
    (r0, r1), (c0, c1) = region
    rs, re, cs, ce = max(r0, 0), min(r1, lengths[0] - 1), max(c0, 0), min(c1, lengths[1] - 1)
    shown[rs - r0 : re - r0 + 1, cs - c0 : ce - c0 + 1] = counts[rs : re + 1, cs : ce + 1]
    blocks = shown.reshape(grid[0], block[0], grid[1], block[1]).max(axis=(1, 3))
    image = _sequential(blocks / (blocks.max() or 1))
    size = [max(2.0, min(26.0, 460 / n)) for n in grid]  # pixels per block, down and across
    left, top = 46, 22
    width, height = left + grid[1] * size[1] + 20, top + grid[0] * size[0] + 34
    slug = _slug(layer.name)

    def x_of(col):
        return left + (col - c0) / block[1] * size[1]

    def y_of(row):
        return top + (row - r0) / block[0] * size[0]

    def box(rows, cols, **attributes):
        extra = " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in attributes.items())
        return (
            f'<rect x="{x_of(cols[0]):.1f}" y="{y_of(rows[0]):.1f}" width="{x_of(cols[1] + 1) - x_of(cols[0]):.1f}" '
            f'height="{y_of(rows[1] + 1) - y_of(rows[0]):.1f}" {extra}/>'
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="receptive field" class="field-2d">',
        f'<defs><pattern id="hatch-{slug}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#d5d5d5" stroke-width="2"/>'
        "</pattern></defs>",
        box((r0, r1), (c0, c1), fill=f"url(#hatch-{slug})"),
        f'<image x="{x_of(cs):.1f}" y="{y_of(rs):.1f}" width="{x_of(ce + 1) - x_of(cs):.1f}" '
        f'height="{y_of(re + 1) - y_of(rs):.1f}" preserveAspectRatio="none" style="image-rendering: pixelated" '
        f'href="{_data_url(image[(rs - r0) // block[0] : (re - r0) // block[0] + 1, (cs - c0) // block[1] : (ce - c0) // block[1] + 1])}"/>',
    ]
    if min(size) >= 6:  # grid lines between cells
        for k in range(grid[0] + 1):
            y = top + k * size[0]
            parts.append(
                f'<line x1="{left}" x2="{left + grid[1] * size[1]:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3" stroke-width="0.6"/>'
            )
        for k in range(grid[1] + 1):
            x = left + k * size[1]
            parts.append(
                f'<line y1="{top}" y2="{top + grid[0] * size[0]:.1f}" x1="{x:.1f}" x2="{x:.1f}" stroke="#e3e3e3" stroke-width="0.6"/>'
            )
    colours = [_NEIGHBOUR, _NEIGHBOUR_2]
    for (_, _, h), colour in zip(neighbours, colours):
        if all(h):
            parts.append(box(h[0], h[1], fill="none", stroke=colour, stroke_width=1.6, stroke_dasharray="5 3"))
    parts.append(box(hull[0], hull[1], fill="none", stroke=f"rgb{_FIELD}", stroke_width=2.2))
    parts.append(box((rs, re), (cs, ce), fill="none", stroke="#555", stroke_width=1))  # the input's edges
    for axis, (first, last) in enumerate(((rs, re), (cs, ce))):
        step = _nice_step(30 / (size[axis] / block[axis]))
        for index in range(first, last + 1):
            if index % step:
                continue
            if axis == 0:
                parts.append(
                    f'<text x="{left - 6}" y="{(y_of(index) + y_of(index + 1)) / 2 + 3:.1f}" font-size="10" '
                    f'fill="#666" text-anchor="end">{index}</text>'
                )
            else:
                parts.append(
                    f'<text x="{(x_of(index) + x_of(index + 1)) / 2:.1f}" y="{top - 6}" font-size="10" fill="#666" '
                    f'text-anchor="middle">{index}</text>'
                )
    names = description.spatial_axes
    jumps = [next((f.field.jump for f in layer.receptive_field if f.axis == name), "?") for name in names]
    grouped = f"; each square {block[0]}×{block[1]} cells" if max(block) > 1 else ""
    parts.append(
        f'<text x="{left}" y="{height - 8:.0f}" font-size="11" fill="#444">{_escape(names[0])} {rs}…{re} down, '
        f"{_escape(names[1])} {cs}…{ce} across (of {lengths[0]} × {lengths[1]}){grouped}</text>"
    )
    parts.append("</svg>")
    holes = 0
    if all(real):
        holes = int(np.count_nonzero(counts[real[0][0] : real[0][1] + 1, real[1][0] : real[1][1] + 1] == 0))
    position = shape_text(tuple(where[a] for a, _ in traced))
    caption = (
        f"The input cells output {position} of <b>{_escape(layer.name)}</b> depends on, shaded by how many paths of "
        f"taps reach them (darker: more). Solid outline: its field {_escape(names[0])} {hull[0][0]}…{hull[0][1]} × "
        f"{_escape(names[1])} {hull[1][0]}…{hull[1][1]} (<b>{_escape(field_text(layer.receptive_field))}</b>, "
        "size / jump / start); hatched: padding, outside the input."
        + "".join(
            f' <span class="swatch" style="border:2px dashed {colour}"></span>the field of output '
            f"{shape_text(tuple(moved[a] for a, _ in traced))}, the next along {_escape(names[k])}: one jump "
            f"({_escape(str(jumps[k]))} cell{'' if jumps[k] == 1 else 's'}) "
            f"{'later' if moved[traced[k][0]] > where[traced[k][0]] else 'earlier'}."
            for (k, moved, _), colour in zip(neighbours, colours)
        )
        + (f" {holes} cell(s) inside the field are never read (dilation or stride gaps)." if holes else "")
    )
    return "\n".join(parts), caption


def _slices_3d(layer, where, sources, counts, description):
    """A 3-D field as 2-D slices along the first axis."""
    hull = [_hull(layer, where, source, clipped=True) for source, _ in sources]
    if not all(hull):
        return "", "This output reads no input cell (it sees only padding)."
    lengths = [n for _, n in sources]
    first, last = hull[0]
    slices = list(range(first, last + 1))
    if len(slices) > 8:
        slices = sorted({slices[round(i * (len(slices) - 1) / 7)] for i in range(8)})
    region = _crop_window(hull[1:], lengths[1:])
    region = [(max(lo, 0), min(hi, n - 1)) for (lo, hi), n in zip(region, lengths[1:])]
    rows, cols = (region[0][1] - region[0][0] + 1), (region[1][1] - region[1][0] + 1)
    cell = max(2.0, min(12.0, 220 / max(rows, cols)))
    top = counts.max() or 1
    tile_w, tile_h = cols * cell, rows * cell
    width = 20 + len(slices) * (tile_w + 16)
    height = tile_h + 46
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="receptive field" class="field-3d">'
    ]
    for k, index in enumerate(slices):
        x0 = 10 + k * (tile_w + 16)
        grid = counts[index, region[0][0] : region[0][1] + 1, region[1][0] : region[1][1] + 1]
        parts.append(
            f'<image x="{x0:.1f}" y="22" width="{tile_w:.1f}" height="{tile_h:.1f}" preserveAspectRatio="none" '
            f'style="image-rendering: pixelated" href="{_data_url(_sequential(grid / top))}"/>'
        )
        parts.append(
            f'<rect x="{x0:.1f}" y="22" width="{tile_w:.1f}" height="{tile_h:.1f}" fill="none" stroke="#888"/>'
        )
        parts.append(
            f'<text x="{x0:.1f}" y="15" font-size="11" fill="#444">{_escape(description.spatial_axes[0])} {index}</text>'
        )
    parts.append(
        f'<text x="10" y="{height - 8:.0f}" font-size="11" fill="#444">{_escape(description.spatial_axes[1])} '
        f"{region[0][0]}…{region[0][1]} down, {_escape(description.spatial_axes[2])} {region[1][0]}…{region[1][1]} "
        "across</text>"
    )
    parts.append("</svg>")
    caption = (
        f"The field of <b>{_escape(layer.name)}</b>'s output {shape_text(tuple(where[a] for a, _ in _traced_axes(layer)))} "
        f"in slices along {_escape(description.spatial_axes[0])} ({first}…{last}): "
        f"<b>{_escape(field_text(layer.receptive_field))}</b> (size / jump / start). Darker: more paths of taps."
    )
    return "\n".join(parts), caption


# ----------------------------------------------------------------------------- kernels


def _kernel_of(layer):
    """(kernel as (*taps, input channels, filters), what it is) for the layers whose kernels are pictures."""
    from rankconv import layers as L

    module = layer.layer
    if isinstance(module, L.Conv):
        return module.kernel.numpy(), "kernel"
    if isinstance(module, L.ConvTranspose):
        return np.swapaxes(module.kernel.numpy(), -1, -2), "kernel (filters and input channels swapped)"
    if isinstance(module, (L.DepthwiseConv, L.SeparableConv)):
        kernel = (module.kernel if isinstance(module, L.DepthwiseConv) else module.depthwise_kernel).numpy()
        # each channel's own windows, as filters of one channel
        return kernel.reshape(*kernel.shape[:-2], 1, -1), "depthwise kernel, one window per channel"
    return None, ""


def kernel_figure(layer) -> str:
    kernel, what = _kernel_of(layer)
    if kernel is None:
        return ""
    rank = kernel.ndim - 2
    filters = min(kernel.shape[-1], MAX_FILTERS_1D if kernel.ndim == 3 else MAX_FILTERS)
    scale = float(np.max(np.abs(kernel))) or 1.0
    if rank == 1:
        body = _kernels_1d(kernel[..., :filters], scale)
        note = "each filter a taps × channels heat map (taps down, input channels across)"
    elif rank == 2:
        body = _kernels_2d(kernel[..., :filters], scale)
        if kernel.shape[-2] == 3:
            note = "each filter as a colour picture of its 3 input channels"
        elif kernel.shape[-2] == 1:
            note = "each filter as one kernel_size picture"
        else:
            note = "filters down, input channels across, each a kernel_size picture"
    elif rank == 3:
        body = _kernels_2d(kernel[0, ..., :filters], scale)
        note = "the first slice along the first axis: filters down, input channels across"
    else:
        return ""
    caption = (
        f"<b>{_escape(layer.name)}</b> ({_escape(layer.call)}), {_escape(what)} {_escape(kernel_text(layer))}: "
        f"{note}; the first {filters} of {kernel.shape[-1]} filters. Blue negative, red positive, white 0 "
        f"(full colour at |w| = {scale:.3g})."
    )
    return (
        f'<figure class="kernels" data-layer="{_escape(layer.name)}"><div class="scroll">{body}</div>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _kernels_1d(kernel, scale):
    taps, channels, filters = kernel.shape
    shown_channels = min(channels, 600)
    mosaic = np.full((filters * (taps + 1) - 1, shown_channels, 3), 255, np.uint8)
    for f in range(filters):
        mosaic[f * (taps + 1) : f * (taps + 1) + taps] = _diverging(kernel[:, :shown_channels, f], scale)
    cell_w = max(1.0, min(14.0, 860 / shown_channels))
    cell_h = max(4.0, min(14.0, cell_w * 2))
    width = 60 + shown_channels * cell_w
    height = mosaic.shape[0] * cell_h + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="kernels" class="kernels-1d">',
        f'<image x="60" y="4" width="{shown_channels * cell_w:.1f}" height="{mosaic.shape[0] * cell_h:.1f}" '
        f'preserveAspectRatio="none" style="image-rendering: pixelated" href="{_data_url(mosaic)}"/>',
    ]
    for f in range(filters):
        y = 4 + (f * (taps + 1) + taps / 2) * cell_h + 4
        parts.append(f'<text x="54" y="{y:.1f}" font-size="10" fill="#555" text-anchor="end">filter {f}</text>')
    parts.append(
        f'<text x="60" y="{height - 6:.0f}" font-size="10.5" fill="#555">input channels 0…{shown_channels - 1} '
        f"across; {taps} taps per filter, down</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _kernels_2d(kernel, scale):
    kh, kw, channels, filters = kernel.shape
    if channels == 3:  # colour pictures, as the first layer of an image model sees
        low, high = float(kernel.min()), float(kernel.max())
        pictures = ((kernel - low) / ((high - low) or 1) * 255).astype(np.uint8)
        per_row = 16
        rows = math.ceil(filters / per_row)
        mosaic = np.full((rows * (kh + 1) - 1, per_row * (kw + 1) - 1, 3), 255, np.uint8)
        for f in range(filters):
            r, c = divmod(f, per_row)
            mosaic[r * (kh + 1) : r * (kh + 1) + kh, c * (kw + 1) : c * (kw + 1) + kw] = pictures[..., f]
        return _mosaic_svg(mosaic, "filters in rows of 16", 0, 0)
    shown = min(channels, MAX_CHANNELS)
    if channels == 1:  # one picture per filter, side by side
        per_row = 16
        rows = math.ceil(filters / per_row)
        mosaic = np.full((rows * (kh + 1) - 1, per_row * (kw + 1) - 1, 3), 255, np.uint8)
        for f in range(filters):
            r, c = divmod(f, per_row)
            mosaic[r * (kh + 1) : r * (kh + 1) + kh, c * (kw + 1) : c * (kw + 1) + kw] = _diverging(
                kernel[:, :, 0, f], scale
            )
        return _mosaic_svg(mosaic, "filters in rows of 16", 0, 0)
    mosaic = np.full((filters * (kh + 1) - 1, shown * (kw + 1) - 1, 3), 255, np.uint8)
    for f in range(filters):
        for c in range(shown):
            mosaic[f * (kh + 1) : f * (kh + 1) + kh, c * (kw + 1) : c * (kw + 1) + kw] = _diverging(
                kernel[:, :, c, f], scale
            )
    return _mosaic_svg(mosaic, f"filters 0…{filters - 1} down, input channels 0…{shown - 1} across", kh + 1, filters)


def _mosaic_svg(mosaic, note, row_height, rows):
    height_px, width_px, _ = mosaic.shape
    cell = max(2.0, min(12.0, 860 / width_px, 900 / height_px))
    left = 58 if rows else 4
    width = left + width_px * cell + 8
    height = height_px * cell + 26
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="kernels" class="kernels-2d">',
        f'<image x="{left}" y="4" width="{width_px * cell:.1f}" height="{height_px * cell:.1f}" preserveAspectRatio="none" '
        f'style="image-rendering: pixelated" href="{_data_url(mosaic)}"/>',
    ]
    for f in range(rows):
        if rows <= 40 or f % 4 == 0:
            y = 4 + (f * row_height + (row_height - 1) / 2) * cell + 4
            parts.append(
                f'<text x="{left - 6}" y="{y:.1f}" font-size="10" fill="#555" text-anchor="end">filter {f}</text>'
            )
    parts.append(f'<text x="{left}" y="{height - 6:.0f}" font-size="10.5" fill="#555">{_escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- the page


def _table_html(explanation: Explanation) -> str:
    headers = [column for column in TABLE_COLUMNS if column != "call"]
    rows = []
    for number, layer in enumerate(explanation.layers):
        algorithm = algorithm_text(layer)
        named = f"<b>{_escape(layer.name)}</b><br><code>{_escape(layer.call)}</code>"
        cells = [
            (str(number), "num"),
            (named, "named"),
            (shape_text(layer.input_shape) if layer.layer is not None else "-", "code"),
            (kernel_text(layer), "code"),
            (shape_text(layer.output_shape), "code"),
            (f"{layer.params:,}", "num"),
            (human_number(layer.multiply_adds).strip() if layer.multiply_adds else "-", "num"),
            (human_bytes(layer.activation_bytes), "num"),
            (field_text(layer.receptive_field) if layer.layer is not None else "-", "code"),
            (algorithm, ""),
        ]
        rows.append(
            "<tr>" + "".join(f'<td class="{c}">{v if c == "named" else _escape(v)}</td>' for v, c in cells) + "</tr>"
        )
    head = "".join(f"<th>{_escape(h)}</th>" for h in headers)
    return f'<div class="scroll"><table class="summary"><tr>{head}</tr>{"".join(rows)}</table></div>'


def _details_html(explanation: Explanation) -> str:
    parts = []
    for number, layer in enumerate(explanation.layers):
        lines = [f"<p>{_escape(s)}</p>" for s in layer.sentences]
        for step in layer.plan:
            forward = step["forward"]
            lines.append(
                f'<p class="meta">planner ({_escape(step["op"])}, batch {explanation.plan_batch}): '
                f"<b>{_escape(forward['algorithm'])}</b> — {_escape(forward['reason'])}</p>"
            )
        for equivalent in layer.equivalents:
            kernels = ", ".join(f"{k} {shape_text(v)}" for k, v in equivalent.kernel_shapes.items())
            lines.append(
                f'<p class="meta">≡ <code>{_escape(equivalent.form)}</code> on '
                f"<code>{_escape(shape_text(equivalent.input_shape))}</code>"
                + (f", {_escape(kernels)}" if kernels else "")
                + f" — {_escape(equivalent.note)} (<code>{_escape(equivalent.via)}</code>)</p>"
            )
        summary = f"{number} {layer.name} — {layer.call}"
        parts.append(f'<details class="layer" open><summary>{_escape(summary)}</summary>{"".join(lines)}</details>')
    return "".join(parts)


def render_html(explanation: Explanation, layers=None, position=None, kernels: bool | None = None) -> str:
    """The page. layers: names of the layers whose receptive field to draw (default: up to
    MAX_FIELD_FIGURES spatial layers); position: the output position to draw (default: the
    middle); kernels: draw the kernels (default: when the weights came from a model file)."""
    if layers:
        chosen = []
        for name in layers:
            layer = explanation.layer(name)
            if not drawable(layer):
                raise ValueError(
                    f"Layer '{name}' has no spatial output traced to the input, so there is no receptive field to "
                    f"draw; layers with one: {[lay.name for lay in explanation.layers if drawable(lay)]}."
                )
            chosen.append(layer)
    else:
        chosen = _default_layers(explanation)
    if position is not None and len(chosen) > 1 and layers is None:
        chosen = chosen[-1:]  # a position belongs to one layer's output: the deepest one
    totals = explanation.totals
    title = f"rankconv explain: {explanation.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_escape(title)}</h1>",
        f'<p class="lead">{_escape(explanation.source)}</p>',
        '<p class="meta">input: '
        + _escape(
            "; ".join(
                f"{d.name} {shape_text(d.shape)} ({' × '.join(d.spatial_axes) or 'no spatial axes'})"
                for d in explanation.inputs
            )
        )
        + f" · {totals['params']:,} parameters · {human_number(totals['multiply_adds']).strip()} multiply-adds · "
        f"{human_number(totals['flops'])}FLOPs · {_escape(human_bytes(totals['activation_bytes']))} of activations per sample</p>",
    ]
    parts += [f"<p>{_escape(s)}</p>" for s in explanation.sentences]
    parts.append('<h2 id="table">Layers</h2>')
    parts.append(_table_html(explanation))
    parts.append(
        '<p class="meta">receptive field: size / jump / start per spatial axis of the input, in input cells '
        "(size: from the first to the last cell one output sees; jump: between neighbouring outputs; start: where "
        "output 0's field begins, negative inside padding; all: the axis was pooled or flattened away).</p>"
    )
    parts.append('<h2 id="flow">Shape flow</h2>')
    parts.append(f'<figure class="flow-figure"><div class="scroll">{flow_svg(explanation)}</div>')
    parts.append(
        "<figcaption>Each box a layer: its name, call and output shape per sample; the bar under it, the activation "
        "memory (square-root scale). Blue: convolutions, green: pooling, orange: dense and embedding.</figcaption>"
        "</figure>"
    )
    figures = [field_figure(explanation, layer, position) for layer in chosen]
    figures = [f for f in figures if f]
    if not figures and any(None in d.lengths for d in explanation.inputs):
        parts.append(
            '<p class="meta">The input length is unknown, so the receptive fields are not drawn: give the input '
            "shape (<code>--input</code>) to see them.</p>"
        )
    if figures:
        parts.append('<h2 id="fields">Receptive fields</h2>')
        parts.append('<div class="fields">' + "".join(figures) + "</div>")
    draw_kernels = explanation.trained if kernels is None else kernels
    kernel_figures = []
    if draw_kernels:
        for layer in explanation.layers:
            if len(kernel_figures) >= MAX_KERNEL_LAYERS:
                break
            if layer.layer is not None:
                figure = kernel_figure(layer)
                if figure:
                    kernel_figures.append(figure)
    if kernel_figures:
        parts.append('<h2 id="kernels">Kernels</h2>')
        parts += kernel_figures
    elif not draw_kernels:
        parts.append(
            '<p class="meta">Kernels are drawn for a model file (trained weights); these layers have their random '
            "initial weights.</p>"
        )
    parts.append('<h2 id="details">Layer by layer</h2>')
    parts.append(_details_html(explanation))
    from rankconv import __version__

    parts.append(
        f'<p class="meta">Made by rankconv {__version__} (<code>rankconv explain --html</code>); '
        "<code>--json</code> gives the same numbers for machines.</p>"
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(path, explanation: Explanation, **options) -> None:
    """`render_html(explanation, **options)` written to `path` atomically (temporary file, rename)."""
    from rankconv.saving.archive import atomic_write

    page = render_html(explanation, **options)
    with atomic_write(path) as temporary, open(temporary, "w", encoding="utf-8") as stream:
        stream.write(page)
