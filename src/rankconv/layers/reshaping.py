"""Shape layers: Flatten, Reshape, and rank-generic ZeroPadding."""

from __future__ import annotations

import math
import numbers

from rankconv import ops, utils
from rankconv.layers.layer import Layer


class Flatten(Layer):
    """(batch, …) → (batch, prod(…)). channels_first inputs are flattened in channels-last order, as Keras does."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = utils.normalize_data_format(data_format)

    def call(self, inputs):
        shape = ops.shape(inputs)
        if self.data_format == "channels_first" and len(shape) > 2:
            inputs = ops.transpose(inputs, (0, *range(2, len(shape)), 1))
        return ops.reshape(inputs, (shape[0], -1))

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        return (input_shape[0], None if any(d is None for d in rest) else math.prod(rest))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """(batch, …) → (batch, *target_shape); one entry of `target_shape` may be -1."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target_shape = tuple(target_shape)
        if sum(d == -1 for d in target_shape) > 1 or any(
            not isinstance(d, numbers.Integral) or (d <= 0 and d != -1) for d in target_shape
        ):
            raise ValueError(
                f"Reshape '{self.name}': `target_shape` must hold positive ints and at most one -1; "
                f"received target_shape={target_shape}."
            )
        self.target_shape = tuple(int(d) for d in target_shape)

    def _resolve(self, input_shape):
        size = math.prod(tuple(input_shape)[1:]) if None not in tuple(input_shape)[1:] else None
        known = math.prod(d for d in self.target_shape if d != -1)
        if size is None:
            return tuple(None if d == -1 else d for d in self.target_shape)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"Reshape '{self.name}': cannot reshape {size} values into {self.target_shape}.")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(
                f"Reshape '{self.name}': the input has {size} values per sample (shape {tuple(input_shape)}), "
                f"target_shape {self.target_shape} holds {known}."
            )
        return self.target_shape

    def check_input_shape(self, shape):
        self._resolve(shape)

    def call(self, inputs):
        shape = ops.shape(inputs)
        return ops.reshape(inputs, (shape[0], *self._resolve(shape)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._resolve(input_shape))

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


def _padding_pairs(padding, rank, name):
    """Keras's ZeroPadding arguments: an int, `rank` ints, or `rank` (lo, hi) pairs."""
    if isinstance(padding, numbers.Integral):
        pairs = ((int(padding), int(padding)),) * rank
    else:
        padding = tuple(padding)
        if rank == 1 and len(padding) == 2 and all(isinstance(p, numbers.Integral) for p in padding):
            pairs = ((int(padding[0]), int(padding[1])),)
        elif len(padding) == rank and all(isinstance(p, numbers.Integral) for p in padding):
            pairs = tuple((int(p), int(p)) for p in padding)
        elif len(padding) == rank:
            pairs = tuple(utils.normalize_tuple(p, 2, "padding", allow_zero=True) for p in padding)
        else:
            raise ValueError(
                f"{name}: `padding` must be an int, {rank} ints or {rank} (before, after) pairs; received {padding!r}."
            )
    if any(p < 0 for pair in pairs for p in pair):
        raise ValueError(f"{name}: `padding` must not be negative; received {padding!r}.")
    return pairs


class ZeroPadding(Layer):
    """Zeros added before and after each spatial axis, for any rank."""

    rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _padding_pairs(padding, self.rank, f"{type(self).__name__} '{self.name}'")
        self.data_format = utils.normalize_data_format(data_format)

    def _widths(self):
        if self.data_format == "channels_last":
            return ((0, 0), *self.padding, (0, 0))
        return ((0, 0), (0, 0), *self.padding)

    def check_input_shape(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects inputs with {self.rank + 2} axes; received {tuple(shape)}."
            )

    def call(self, inputs):
        return ops.pad(inputs, self._widths())

    def compute_output_shape(self, input_shape):
        return tuple(None if n is None else n + lo + hi for n, (lo, hi) in zip(input_shape, self._widths()))

    def get_config(self):
        padding = self.padding[0] if self.rank == 1 else self.padding
        return {**super().get_config(), "padding": padding, "data_format": self.data_format}


class ZeroPadding1D(ZeroPadding):
    rank = 1


class ZeroPadding2D(ZeroPadding):
    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding3D(ZeroPadding):
    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)
