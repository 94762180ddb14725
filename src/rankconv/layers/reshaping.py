"""Shape layers: Flatten, Reshape, and the rank-generic ZeroPadding, Cropping and UpSampling."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

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


def _padding_pairs(padding, rank, name, argument="padding"):
    """Keras's ZeroPadding (and Cropping) arguments: an int, `rank` ints, or `rank` (lo, hi) pairs."""
    expected = f"an int, {rank} ints or {rank} (before, after) pairs"
    if isinstance(padding, numbers.Integral):
        pairs = ((int(padding), int(padding)),) * rank
    else:
        if isinstance(padding, (str, bytes)) or not isinstance(padding, Iterable):
            raise ValueError(f"{name}: `{argument}` must be {expected}; received {argument}={padding!r}.")
        padding = tuple(padding)
        if rank == 1 and len(padding) == 2 and all(isinstance(p, numbers.Integral) for p in padding):
            pairs = ((int(padding[0]), int(padding[1])),)
        elif len(padding) == rank and all(isinstance(p, numbers.Integral) for p in padding):
            pairs = tuple((int(p), int(p)) for p in padding)
        elif len(padding) == rank:
            try:
                pairs = tuple(
                    utils.normalize_tuple(p, 2, f"{argument}[{i}]", allow_zero=True) for i, p in enumerate(padding)
                )
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        else:
            raise ValueError(f"{name}: `{argument}` must be {expected}; received {argument}={padding!r}.")
    if any(p < 0 for pair in pairs for p in pair):
        raise ValueError(f"{name}: `{argument}` must not be negative; received {argument}={padding!r}.")
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


def _spatial_axes(rank, data_format):
    """Positions of the spatial axes of a (batch, …) array."""
    return tuple(range(1, rank + 1)) if data_format == "channels_last" else tuple(range(2, rank + 2))


def _layout(rank, data_format):
    spatial = ", ".join(f"dim{i + 1}" for i in range(rank))
    return f"(batch, {spatial}, channels)" if data_format == "channels_last" else f"(batch, channels, {spatial})"


def _check_rank(layer, shape):
    if len(shape) != layer.rank + 2:
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}' expects inputs with {layer.rank + 2} axes "
            f"{_layout(layer.rank, layer.data_format)}; received an input of shape {tuple(shape)} "
            f"({len(shape)} axes)."
        )


class Cropping(Layer):
    """Cells cut off before and after each spatial axis, for any rank: the inverse of ZeroPadding.

    Each spatial axis must keep at least one cell.
    """

    rank = 1

    def __init__(self, cropping=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        if self.rank == 1:  # Keras: an int or exactly one (before, after) pair
            try:
                self.cropping = (utils.normalize_tuple(cropping, 2, "cropping", allow_zero=True),)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
        else:
            self.cropping = _padding_pairs(cropping, self.rank, where, "cropping")
        self.data_format = utils.normalize_data_format(data_format)

    def check_input_shape(self, shape):
        _check_rank(self, shape)
        axes = _spatial_axes(self.rank, self.data_format)
        for i, (axis, (lo, hi)) in enumerate(zip(axes, self.cropping)):
            n = shape[axis]
            if n is not None and lo + hi >= n:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': `cropping` must leave at least one cell of each spatial "
                    f"axis, but ({lo}, {hi}) removes all {n} cells of spatial axis {i}; received "
                    f"cropping={self.get_config()['cropping']} for an input of shape {tuple(shape)}."
                )

    def call(self, inputs):
        shape = ops.shape(inputs)
        index = [slice(None)] * len(shape)
        for axis, (lo, hi) in zip(_spatial_axes(self.rank, self.data_format), self.cropping):
            index[axis] = slice(lo, shape[axis] - hi)
        return ops.getitem(inputs, tuple(index))

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        shape = list(input_shape)
        for axis, (lo, hi) in zip(_spatial_axes(self.rank, self.data_format), self.cropping):
            shape[axis] = None if shape[axis] is None else shape[axis] - lo - hi
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping, "data_format": self.data_format}


class Cropping1D(Cropping):
    """Crops the steps axis of (batch, steps, features) inputs: `cropping` is an int or a (before, after) pair."""

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, None, **kwargs)

    def get_config(self):
        return {**Layer.get_config(self), "cropping": self.cropping[0]}


class Cropping2D(Cropping):
    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(Cropping):
    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


INTERPOLATIONS = ("nearest", "bilinear")


def _linear_upsample(x, factor, axis):
    """`x` stretched `factor` times along `axis` by linear interpolation with half-pixel centres.

    Output cell j samples the input at `(j + 0.5) / factor - 0.5`, clamped to the first and last
    cells, and mixes its two neighbours: what Keras's `ops.image.resize(…, "bilinear")` does when
    it enlarges (antialiasing only matters when shrinking).
    """
    n = ops.shape(x)[axis]
    source = np.maximum((np.arange(n * factor) + 0.5) / factor - 0.5, 0.0)
    below = np.floor(source).astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    broadcast = [1] * len(ops.shape(x))
    broadcast[axis] = -1
    weight = (source - below).astype(x.dtype).reshape(broadcast)
    near = ops.multiply(ops.take(x, below, axis=axis), 1 - weight)
    return ops.add(near, ops.multiply(ops.take(x, above, axis=axis), weight))


class UpSampling(Layer):
    """Each spatial axis enlarged `size` times, for any rank: by repeating cells ("nearest") or by
    linear interpolation along each axis ("bilinear", Keras's only for UpSampling2D)."""

    rank = 1

    def __init__(self, size=2, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        try:
            self.size = utils.normalize_tuple(size, self.rank, "size")
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        self.data_format = utils.normalize_data_format(data_format)
        if not isinstance(interpolation, str):
            raise TypeError(
                f"{where}: `interpolation` must be a string, one of {INTERPOLATIONS}; "
                f"received interpolation={interpolation!r} of type {type(interpolation).__name__}."
            )
        if interpolation.lower() not in INTERPOLATIONS:
            raise ValueError(
                f"{where}: `interpolation` must be one of {INTERPOLATIONS}; received interpolation={interpolation!r}. "
                "(Keras's other resize methods, such as 'bicubic' or 'lanczos3', depend on its backend and are "
                "not supported.)"
            )
        self.interpolation = interpolation.lower()

    def check_input_shape(self, shape):
        _check_rank(self, shape)

    def call(self, inputs):
        for axis, factor in zip(_spatial_axes(self.rank, self.data_format), self.size):
            if factor == 1:
                continue
            if self.interpolation == "nearest":
                inputs = ops.repeat(inputs, factor, axis=axis)
            else:
                inputs = _linear_upsample(inputs, factor, axis)
        return inputs

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, factor in zip(_spatial_axes(self.rank, self.data_format), self.size):
            shape[axis] = None if shape[axis] is None else shape[axis] * factor
        return tuple(shape)

    def get_config(self):
        config = {**super().get_config(), "size": self.size, "data_format": self.data_format}
        if self.rank == 2:
            config["interpolation"] = self.interpolation
        return config


class UpSampling1D(UpSampling):
    """Repeats each step of (batch, steps, features) inputs `size` times."""

    rank = 1

    def __init__(self, size=2, **kwargs):
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(
                f"UpSampling1D: `size` must be an int (the upsampling factor); received size={size!r} "
                f"of type {type(size).__name__}."
            )
        if size <= 0:
            raise ValueError(f"UpSampling1D: `size` must be a positive int; received size={size!r}.")
        super().__init__(int(size), None, "nearest", **kwargs)

    def get_config(self):
        return {**Layer.get_config(self), "size": self.size[0]}


class UpSampling2D(UpSampling):
    rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(size, data_format, interpolation, **kwargs)


class UpSampling3D(UpSampling):
    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size, data_format, "nearest", **kwargs)
