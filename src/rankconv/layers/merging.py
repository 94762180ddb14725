"""Layers that merge several inputs: Concatenate and Add."""

from __future__ import annotations

from rankconv import ops
from rankconv.layers.layer import Layer


class _Merge(Layer):
    def check_input_shape(self, shape):
        if not isinstance(shape, list) or len(shape) < 2:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' takes a list of at least two inputs; "
                f"received {'a single input of shape ' + str(tuple(shape)) if not isinstance(shape, list) else shape}."
            )


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


class Add(_Merge):
    """Elementwise sum of inputs of the same shape."""

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        for s in shape[1:]:
            if len(s) != len(shape[0]) or any(a != b and None not in (a, b) for a, b in zip(s, shape[0])):
                raise ValueError(f"Add '{self.name}' needs inputs of one shape; received {[tuple(x) for x in shape]}.")

    def call(self, inputs):
        total = inputs[0]
        for x in inputs[1:]:
            total = ops.add(total, x)
        return total

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
