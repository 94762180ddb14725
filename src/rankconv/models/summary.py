"""`model.summary()`: a table of layers, output shapes and parameter counts, like Keras's."""

from __future__ import annotations

import math


def _shape_text(shape):
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _rows(model):
    from rankconv.models.functional import Sequential

    rows = []
    if isinstance(model, Sequential):
        shape = model._build_input_shape
        for layer in model.layers:
            if shape is not None:
                shape = tuple(layer.compute_output_shape(shape))
            params = sum(v.value.size for v in layer.weights) if layer.built else 0
            rows.append(
                (f"{layer.name} ({type(layer).__name__})", "?" if shape is None else _shape_text(shape), params, "")
            )
        return rows
    for layer in model.layers:
        nodes = [n for n in layer._inbound_nodes if n in model._node_set]
        shape = _shape_text([t.shape for n in nodes for t in n.outputs][0]) if nodes else "?"
        inbound = sorted({t.node.layer.name for n in nodes for t in n.input_tensors})
        params = sum(v.value.size for v in layer.weights) if layer.built else 0
        rows.append((f"{layer.name} ({type(layer).__name__})", shape, params, ", ".join(inbound)))
    return rows


def summary(model, print_fn=print, line_length=None):
    rows = _rows(model)
    connected = any(r[3] for r in rows)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else [])
    table = [[r[0], r[1], f"{r[2]:,}"] + ([r[3]] if connected else []) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(headers)]
    if line_length:
        widths[0] = max(widths[0], line_length - sum(widths[1:]) - 3 * (len(widths) - 1))
    line = "━" * (sum(widths) + 3 * (len(widths) - 1))
    print_fn(f'Model: "{model.name}"')
    print_fn(line)
    print_fn("   ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print_fn(line)
    for row in table:
        print_fn("   ".join(c.ljust(w) if i != 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    print_fn(line)
    trainable = sum(v.value.size for v in model.trainable_weights)
    total = sum(v.value.size for v in model.weights)
    size = sum(v.value.nbytes for v in model.weights)
    print_fn(f" Total params: {total:,} ({_bytes(size)})")
    print_fn(f" Trainable params: {trainable:,} ({_bytes(sum(v.value.nbytes for v in model.trainable_weights))})")
    print_fn(
        f" Non-trainable params: {total - trainable:,} ({_bytes(size - sum(v.value.nbytes for v in model.trainable_weights))})"
    )


def _bytes(n):
    if n < 1024:
        return f"{n} B"
    exponent = min(int(math.log(n, 1024)), 3)
    return f"{n / 1024**exponent:.2f} {['B', 'KB', 'MB', 'GB'][exponent]}"
