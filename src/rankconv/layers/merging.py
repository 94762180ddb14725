"""Layers that merge a list of inputs: Concatenate, and the elementwise Add, Subtract, Multiply,
Average, Maximum and Minimum, with Keras's functional forms (`add([a, b])`, `concatenate(…)`, …).

The elementwise layers broadcast as Keras's do: past the batch axis, shapes are aligned on their
last axes and an axis of size 1 stretches to the other's size; an input with fewer axes gets new
axes of size 1 right after its batch axis. All inputs must share one batch size.
"""

from __future__ import annotations

from rankconv import ops
from rankconv.layers.layer import Layer


def _describe(shape):
    if isinstance(shape, list):
        return str([tuple(s) for s in shape])
    return f"a single input of shape {tuple(shape)}"


class _Merge(Layer):
    """Base of the merge layers: a list of at least one input (Keras's rule)."""

    def check_input_shape(self, shape):
        if not isinstance(shape, list) or not shape or not all(isinstance(s, tuple) for s in shape):
            received = _describe(shape) if isinstance(shape, (list, tuple)) else repr(shape)
            raise ValueError(
                f"{type(self).__name__} '{self.name}' takes a list of inputs (tensors or arrays); received {received}."
            )


class _Elementwise(_Merge):
    """Elementwise merges: `merge(inputs)` folds `combine` over the inputs, left to right."""

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        batches = {s[0] for s in shape if s} - {None}
        if len(batches) > 1:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' cannot merge inputs with different batch sizes; "
                f"received shapes {_describe(shape)}."
            )
        self._broadcast_shape(shape)

    def _broadcast_shape(self, shapes):
        """The output shape past the batch axis, as Keras works it out (None: unknown)."""
        result = tuple(shapes[0][1:])
        for shape in shapes[1:]:
            other = tuple(shape[1:])
            longer, shorter = (result, other) if len(result) >= len(other) else (other, result)
            if not shorter:
                result = longer
                continue
            merged = list(longer[: len(longer) - len(shorter)])
            for a, b in zip(longer[len(longer) - len(shorter) :], shorter):
                if a is None or b is None:
                    merged.append(None)
                elif a == 1 or b == 1 or a == b:
                    merged.append(b if a == 1 else a)
                else:
                    raise ValueError(
                        f"{type(self).__name__} '{self.name}' needs inputs whose shapes broadcast (past the batch "
                        f"axis, sizes equal or 1); received shapes {_describe(shapes)}."
                    )
            result = tuple(merged)
        return result

    def compute_output_shape(self, input_shape):
        batches = {s[0] for s in input_shape if s} - {None}
        batch = batches.pop() if len(batches) == 1 else None
        return (batch, *self._broadcast_shape(input_shape))

    def call(self, inputs):
        inputs = list(inputs)
        ranks = [len(ops.shape(x)) for x in inputs]
        if len(set(ranks)) > 1:
            # as Keras: fewer axes → new axes of size 1 right after the batch axis
            top = max(ranks)
            for i, rank in enumerate(ranks):
                for _ in range(top - rank):
                    inputs[i] = ops.expand_dims(inputs[i], 1)
        return self.merge(inputs)

    def merge(self, inputs):
        output = inputs[0]
        for x in inputs[1:]:
            output = self.combine(output, x)
        return output

    def combine(self, a, b):
        raise NotImplementedError


class Add(_Elementwise):
    """Elementwise sum of the inputs."""

    def combine(self, a, b):
        return ops.add(a, b)


class Subtract(_Elementwise):
    """`inputs[0] - inputs[1]`: exactly two inputs."""

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if len(shape) != 2:
            raise ValueError(
                f"Subtract '{self.name}' takes exactly 2 inputs; received {len(shape)} of shapes {_describe(shape)}."
            )

    def combine(self, a, b):
        return ops.subtract(a, b)


class Multiply(_Elementwise):
    """Elementwise product of the inputs."""

    def combine(self, a, b):
        return ops.multiply(a, b)


class Average(_Elementwise):
    """Elementwise mean of the inputs: their sum divided by their count."""

    def combine(self, a, b):
        return ops.add(a, b)

    def merge(self, inputs):
        return ops.divide(super().merge(inputs), len(inputs))


class Maximum(_Elementwise):
    """Elementwise maximum of the inputs."""

    def combine(self, a, b):
        return ops.maximum(a, b)


class Minimum(_Elementwise):
    """Elementwise minimum of the inputs."""

    def combine(self, a, b):
        return ops.minimum(a, b)


class Concatenate(_Merge):
    """Join inputs along `axis`; all other axes must match."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        rank = len(shape[0])
        if not -rank <= self.axis < rank:
            raise ValueError(
                f"Concatenate '{self.name}': `axis` {self.axis} is out of range for inputs of rank {rank}."
            )
        axis = self.axis % rank
        for s in shape:
            if len(s) != rank or any(
                a != b and None not in (a, b) for i, (a, b) in enumerate(zip(s, shape[0])) if i != axis
            ):
                raise ValueError(
                    f"Concatenate '{self.name}' joins inputs along axis {self.axis}; all other axes must match, "
                    f"received shapes {[tuple(x) for x in shape]}."
                )

    def call(self, inputs):
        return ops.concatenate(list(inputs), axis=self.axis)

    def compute_output_shape(self, input_shape):
        axis = self.axis % len(input_shape[0])
        sizes = [s[axis] for s in input_shape]
        out = list(input_shape[0])
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# ----------------------------------------------------------------------------- functional forms


def add(inputs, **kwargs):
    """`Add(**kwargs)(inputs)`: the elementwise sum of a list of tensors or arrays."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """`Subtract(**kwargs)(inputs)`: `inputs[0] - inputs[1]`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """`Multiply(**kwargs)(inputs)`: the elementwise product."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """`Average(**kwargs)(inputs)`: the elementwise mean."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """`Maximum(**kwargs)(inputs)`: the elementwise maximum."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """`Minimum(**kwargs)(inputs)`: the elementwise minimum."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """`Concatenate(axis=axis, **kwargs)(inputs)`: join the inputs along `axis`."""
    return Concatenate(axis=axis, **kwargs)(inputs)
