"""Argument normalisation shared by ops and layers.

Everything here is plain Python arithmetic on shapes and arguments; no arrays.
The error messages name the argument, what was expected and what was received,
following the wording Keras users already know.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import numpy as np

PADDING_MODES = ("valid", "same", "causal")
DATA_FORMATS = ("channels_last", "channels_first")

Padding = str | tuple[tuple[int, int], ...]


def normalize_tuple(value, n: int, name: str, allow_zero: bool = False) -> tuple[int, ...]:
    """Turn an int or an iterable of `n` ints into an `n`-tuple of ints.

    `normalize_tuple(3, 2, "kernel_size") == (3, 3)`. Values must be positive
    (or non-negative with `allow_zero=True`): kernel sizes, strides and dilation
    rates all are.
    """
    expected = f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r}"
    if isinstance(value, bool):
        raise ValueError(f"{expected}, which is a bool, not an integer.")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, numbers.Integral):
        values = (int(value),) * n
    else:
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ValueError(f"{expected} (of type {type(value).__name__}).")
        items = tuple(value)
        if len(items) != n:
            raise ValueError(f"{expected}, which has {len(items)} element(s).")
        values = []
        for item in items:
            if isinstance(item, bool) or not _is_integer_like(item):
                raise ValueError(f"{expected}, including element {item!r} of type {type(item).__name__}.")
            values.append(int(item))
        values = tuple(values)
    bad = sorted({v for v in values if (v < 0 if allow_zero else v <= 0)})
    if bad:
        requirement = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{expected}, including values {bad} that do not satisfy `value {requirement}`.")
    return values


def _is_integer_like(item) -> bool:
    if isinstance(item, numbers.Integral):
        return True
    if isinstance(item, numbers.Real):
        return float(item).is_integer()
    if isinstance(item, str):
        try:
            int(item)
        except ValueError:
            return False
        return True
    return False


def normalize_padding(value, rank: int | None = None, allow_causal: bool = True) -> Padding:
    """Return "valid", "same", "causal" (case-insensitive) or explicit `((lo, hi), ...)` pairs.

    Explicit pairs give, per spatial axis, the zeros added before and after it; an int `p` is
    shorthand for `(p, p)`. With `rank` given, their count must equal `rank`.
    """
    if isinstance(value, str):
        mode = value.lower()
        allowed = PADDING_MODES if allow_causal else PADDING_MODES[:2]
        if mode not in allowed:
            raise ValueError(
                f"The `padding` argument must be one of {allowed} or explicit ((lo, hi), ...) pairs. "
                f"Received padding={value!r}."
            )
        return mode
    if not isinstance(value, Sequence):
        raise ValueError(
            "The `padding` argument must be a string or a sequence of (lo, hi) pairs. "
            f"Received padding={value!r} of type {type(value).__name__}."
        )
    if rank is not None and len(value) != rank:
        raise ValueError(
            f"The `padding` argument must hold {rank} (lo, hi) pair(s), one per spatial axis. "
            f"Received padding={value!r} with {len(value)}."
        )
    pairs = []
    for item in value:
        pair = (item, item) if isinstance(item, numbers.Integral) else item
        try:
            lo, hi = pair
        except (TypeError, ValueError):
            lo = hi = None
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (lo, hi)):
            raise ValueError(
                f"Each entry of `padding` must be an int or a (lo, hi) pair of ints. "
                f"Received padding={value!r}, including {item!r}."
            )
        pairs.append((int(lo), int(hi)))
    return tuple(pairs)


def normalize_data_format(value: str | None) -> str:
    """`None` means "channels_last" (Keras's default image data format)."""
    if value is None:
        return "channels_last"
    if not isinstance(value, str) or value.lower() not in DATA_FORMATS:
        raise ValueError(f"The `data_format` argument must be one of {DATA_FORMATS}. Received data_format={value!r}.")
    return value.lower()


def effective_kernel_size(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: `dilation * (kernel - 1) + 1`."""
    return dilation * (kernel - 1) + 1


def conv_output_length(length: int | None, kernel: int, padding, stride: int = 1, dilation: int = 1) -> int | None:
    """Length of one spatial axis after a convolution (Keras / TensorFlow arithmetic).

    `padding` is "valid", "same", "causal" or an explicit `(lo, hi)` pair. "same" gives
    `ceil(length / stride)`; "causal" pads `dilation * (kernel - 1)` before, so it keeps the
    length at stride 1. `None` (an unknown length) stays `None`.
    """
    if length is None:
        return None
    span = effective_kernel_size(kernel, dilation)
    if isinstance(padding, str):
        padding = normalize_padding(padding)
        if padding == "same":
            return -(-length // stride)
        padded = length + (span - 1 if padding == "causal" else 0)
    else:
        lo, hi = padding
        padded = length + lo + hi
    return (padded - span) // stride + 1


def padding_pairs(
    spatial_shape: Sequence[int],
    kernel_shape: Sequence[int],
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    padding,
) -> tuple[tuple[int, int], ...]:
    """Explicit `(lo, hi)` zero padding per spatial axis for a padding mode.

    "same" follows TensorFlow: the total is what makes the output `ceil(n / s)` long, and when it
    is odd the extra zero goes after (on the high side). "causal" puts all of `d * (k - 1)` before.
    """
    rank = len(spatial_shape)
    for argument, values in (("kernel_shape", kernel_shape), ("strides", strides), ("dilation_rate", dilation_rate)):
        if len(values) != rank:
            raise ValueError(f"`{argument}` must have {rank} entries, one per spatial axis; received {tuple(values)}.")
    padding = normalize_padding(padding, rank=rank)
    if not isinstance(padding, str):
        return padding
    pairs = []
    for n, k, s, d in zip(spatial_shape, kernel_shape, strides, dilation_rate):
        span = effective_kernel_size(k, d)
        if padding == "valid":
            pairs.append((0, 0))
        elif padding == "causal":
            pairs.append((span - 1, 0))
        else:
            out = -(-n // s)
            total = max((out - 1) * s + span - n, 0)
            pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


def conv_transpose_padding(
    kernel: int, stride: int, dilation: int, padding: str, output_padding=None
) -> tuple[int, int]:
    """`(lo, hi)` zeros around the stride-dilated input that make a transposed convolution a plain
    stride-1 convolution with the flipped kernel (Keras 3's arithmetic, as its JAX backend):

    "valid": `span - 1` on both sides, plus `output_padding` after (default `max(span, stride) -
    span`), giving `(n - 1) * stride + span + output_padding` cells; "same": `n * stride` cells, or,
    with `output_padding`, `(n - 1) * stride + span % 2 + output_padding`. `span` is the dilated
    kernel size."""
    span = effective_kernel_size(kernel, dilation)
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        return span - 1, span - 1 + extra
    total = stride + span - 2 if output_padding is None else span + span % 2 - 2 + output_padding
    lo = min(total // 2 + total % 2, span - 1)
    return lo, total - lo


def conv_transpose_output_length(
    length: int | None, kernel: int, padding: str, output_padding=None, stride: int = 1, dilation: int = 1
) -> int | None:
    """Length of one spatial axis after a transposed convolution (`conv_transpose_padding`)."""
    if length is None:
        return None
    lo, hi = conv_transpose_padding(kernel, stride, dilation, padding, output_padding)
    return (length - 1) * stride + 1 + lo + hi - effective_kernel_size(kernel, dilation) + 1


# ----------------------------------------------------------------------------- randomness

_global_generator = None


def set_random_seed(seed: int) -> None:
    """Seed the generator that unseeded initializers (and later shuffling and dropout) draw from."""
    global _global_generator
    _global_generator = np.random.default_rng(seed)


def random_generator():
    """The global NumPy generator; unseeded until `set_random_seed` is called."""
    global _global_generator
    if _global_generator is None:
        _global_generator = np.random.default_rng()
    return _global_generator
