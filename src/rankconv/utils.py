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


# ----------------------------------------------------------------------------- Keras's data utilities


def to_categorical(x, num_classes=None) -> np.ndarray:
    """Class ids (any shape) → one-hot rows of `num_classes` (default: the largest id + 1), as float64.

    As Keras: a trailing axis of size 1 is dropped first, so ids of shape (n, 1) give (n, num_classes).
    """
    ids = np.asarray(x)
    if ids.dtype.kind not in "biuf":
        raise TypeError(f"`to_categorical` expects integer class ids; received an array of dtype {ids.dtype}.")
    if ids.dtype.kind == "f":
        if not np.all(np.isfinite(ids)) or not np.all(ids == np.round(ids)):
            raise ValueError("`to_categorical` expects integer class ids; received non-integral floats.")
    ids = ids.astype(np.int64)
    shape = ids.shape[:-1] if ids.ndim > 1 and ids.shape[-1] == 1 else ids.shape
    flat = ids.reshape(-1)
    if num_classes is None or num_classes == 0:  # Keras's `if not num_classes`
        if flat.size == 0:
            raise ValueError("`to_categorical` cannot infer `num_classes` from no ids; pass `num_classes`.")
        num_classes = int(flat.max()) + 1
    elif isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 0:
        raise ValueError(f"`num_classes` must be a positive integer; received num_classes={num_classes!r}.")
    num_classes = int(num_classes)
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        raise ValueError(
            f"`to_categorical` with num_classes={num_classes} needs ids in [0, {num_classes - 1}]; "
            f"received ids from {flat.min()} to {flat.max()}."
        )
    one_hot = np.zeros((flat.size, num_classes))
    one_hot[np.arange(flat.size), flat] = 1
    return one_hot.reshape(*shape, num_classes)


def normalize(x, axis=-1, order=2) -> np.ndarray:
    """`x` divided by its `order`-norm along `axis` (`np.linalg.norm`'s orders); zero norms divide by 1."""
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"`normalize` expects a numeric array; received dtype {array.dtype}.")
    axes = axis if isinstance(axis, tuple) else (axis,)
    if not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes) or not axes:
        raise ValueError(f"`axis` must be an int or a tuple of ints; received axis={axis!r}.")
    if not all(-array.ndim <= a < array.ndim for a in axes):
        raise ValueError(f"`axis` {axis} is out of range for an array of shape {array.shape}.")
    norm = np.atleast_1d(np.linalg.norm(array, order, axis))
    norm[norm == 0] = 1
    return array / np.expand_dims(norm, axis)


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0) -> np.ndarray:
    """Sequences of different lengths → one array (n, maxlen, …), as Keras's `pad_sequences`.

    Longer sequences lose entries at the start (`truncating="pre"`) or end ("post"); shorter ones
    are filled with `value` before ("pre") or after ("post"). `maxlen` defaults to the longest.
    Entries may themselves be arrays (all of one shape).
    """
    for name, given in (("padding", padding), ("truncating", truncating)):
        if given not in ("pre", "post"):
            raise ValueError(f"`{name}` must be 'pre' or 'post'; received {name}={given!r}.")
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"`sequences` must be a list of sequences; received {type(sequences).__name__}.")
    lengths, sample_shape, found = [], (), False
    for i, sequence in enumerate(sequences):
        try:
            lengths.append(len(sequence))
        except TypeError:
            raise ValueError(
                f"`sequences` must be a list of sequences; entry {i} is {sequence!r} ({type(sequence).__name__})."
            ) from None
        if not found and len(sequence):
            sample_shape, found = np.asarray(sequence).shape[1:], True
    if maxlen is None:
        if not lengths:
            raise ValueError("`pad_sequences` received no sequences; pass `maxlen` to get an empty (0, maxlen) array.")
        maxlen = max(lengths)
    elif isinstance(maxlen, bool) or not isinstance(maxlen, numbers.Integral) or maxlen < 0:
        raise ValueError(f"`maxlen` must be None or an integer >= 0; received maxlen={maxlen!r}.")
    maxlen = int(maxlen)
    textual = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not textual:
        raise ValueError(
            f"`value` {value!r} is a string but dtype={dtype!r} is not; use dtype=object for strings of any length."
        )
    padded = np.full((len(lengths), maxlen, *sample_shape), value, dtype=dtype)
    for i, sequence in enumerate(sequences):
        if not len(sequence) or not maxlen:
            continue
        kept = sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen]
        kept = np.asarray(kept, dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise ValueError(
                f"Sequence {i} has entries of shape {kept.shape[1:]}; the first non-empty sequence's are {sample_shape}."
            )
        if padding == "pre":
            padded[i, maxlen - len(kept) :] = kept
        else:
            padded[i, : len(kept)] = kept
    return padded


def img_to_array(img, data_format=None, dtype=None) -> np.ndarray:
    """An image (a NumPy array, or anything with `__array__`, such as a Pillow image) → a 3-D array
    (height, width, channels), or (channels, height, width) with `data_format="channels_first"`;
    a 2-D (grayscale) image gets a channel axis of size 1. `dtype` defaults to float32."""
    data_format = normalize_data_format(data_format)
    try:
        array = np.asarray(img, dtype="float32" if dtype is None else dtype)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`img_to_array` expects an image as an array (or an object with `__array__`, such as a Pillow "
            f"image); received {type(img).__name__} ({error})."
        ) from None
    if array.ndim == 3:
        return array.transpose(2, 0, 1) if data_format == "channels_first" else array
    if array.ndim == 2:
        return array[np.newaxis] if data_format == "channels_first" else array[..., np.newaxis]
    raise ValueError(f"`img_to_array` expects a 2-D or 3-D image; received an array of shape {array.shape}.")


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A 3-D array → a Pillow image (RGB, RGBA, or grayscale "L", or "I" past 255), as Keras's.
    With `scale`, values are shifted and stretched to fill [0, 255]. Needs Pillow."""
    data_format = normalize_data_format(data_format)
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "`array_to_img` makes a Pillow image, so it needs Pillow (pip install pillow), which is not installed. "
            "rankconv does not depend on it; `img_to_array` and the rest of rankconv work on arrays without it."
        ) from None
    array = np.asarray(x, dtype="float32" if dtype is None else dtype)
    if array.ndim != 3:
        raise ValueError(f"`array_to_img` expects one image with 3 axes; received an array of shape {array.shape}.")
    if data_format == "channels_first":
        array = array.transpose(1, 2, 0)
    if scale:
        array = array - np.min(array)
        top = np.max(array)
        if top != 0:
            array = array / top
        array = array * 255
    channels = array.shape[2]
    if channels in (3, 4):
        return Image.fromarray(array.astype("uint8"), "RGB" if channels == 3 else "RGBA")
    if channels == 1:
        if np.max(array) > 255:
            return Image.fromarray(array[:, :, 0].astype("int32"), "I")
        return Image.fromarray(array[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"`array_to_img` supports 1, 3 or 4 channels; received {channels} (shape {array.shape}).")


class DownloadNotSupportedError(RuntimeError):
    """Raised where Keras would download a file: rankconv never goes to the network."""


def _keras_home() -> str:
    import os

    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def get_file(
    fname=None,
    origin=None,
    untar=False,
    md5_hash=None,
    file_hash=None,
    cache_subdir="datasets",
    hash_algorithm="auto",
    extract=False,
    archive_format="auto",
    cache_dir=None,
    force_download=False,
):
    """Keras's `get_file` without the download: rankconv never goes to the network.

    A file already in Keras's cache (`cache_dir`/`cache_subdir`/`fname`, by default
    `~/.keras/datasets/`) is returned as Keras returns it, after checking `file_hash` when one is
    given; otherwise this raises `DownloadNotSupportedError` saying where to put the file.
    """
    import hashlib
    import os
    import urllib.parse

    if origin is None:
        raise ValueError("`get_file` needs `origin`, the URL of the file.")
    name = os.fspath(fname) if fname is not None else ""
    if not name:
        name = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not name:
            raise ValueError(f"Cannot take a file name from origin {origin!r}; pass `fname`.")
    elif os.sep in name:
        raise ValueError(f"`fname` must be a file name, not a path (use `cache_dir`); received fname={name!r}.")
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    base = os.path.expanduser(cache_dir if cache_dir is not None else _keras_home())
    if os.path.isdir(base) and not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")  # where Keras caches when the home one is read-only
    target = os.path.join(base, cache_subdir, name)
    fetch = f"curl -L --create-dirs -o {target!r} {origin!r}"
    if untar or extract:
        raise DownloadNotSupportedError(
            f"rankconv does not download or extract files: get_file({name!r}, origin={origin!r}, extract=True) "
            f"would fetch and unpack {origin}. Download it yourself ({fetch}), unpack it (python -m tarfile -e / "
            "zipfile -e), and read the files from there."
        )
    if os.path.isfile(target) and not force_download:
        if file_hash is None:
            return target
        # Keras's rule: sha256 when asked or for a 64-digit hash under "auto", md5 otherwise
        sha256 = hash_algorithm == "sha256" or (hash_algorithm == "auto" and len(str(file_hash)) == 64)
        algorithm = "sha256" if sha256 else "md5"
        digest = hashlib.new(algorithm)
        with open(target, "rb") as handle:
            for chunk in iter(lambda: handle.read(2**20), b""):
                digest.update(chunk)
        if digest.hexdigest() == str(file_hash):
            return target
        raise DownloadNotSupportedError(
            f"{target} does not match its expected {algorithm} hash {file_hash} (incomplete or outdated?), and "
            f"rankconv does not download files. Fetch it again yourself: {fetch}"
        )
    raise DownloadNotSupportedError(
        f"rankconv does not download files: get_file({name!r}) needs {origin}. Download it yourself "
        f"({fetch}) and this call returns that path; or load your data as NumPy arrays (np.load, np.loadtxt) "
        "and pass them to fit/evaluate/predict."
    )


def positive_int(text: str) -> int:
    """An argparse type: a positive integer, or an error saying what was received."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {value}")
    return value


class PyDataset:
    """Keras's `keras.utils.PyDataset`: a sequence of ready-made batches for `fit`, `evaluate` and
    `predict`.

    Subclass it and define `__len__` (the number of batches) and `__getitem__(index)`, which returns
    the batch as `(x, y)` or `(x, y, sample_weight)` (`predict` uses `x`, or the batch itself if it is
    not a tuple). Batches may differ in size and in every axis the model leaves open (`None` in its
    input shape), so a dataset can, say, cut each batch of padded sentences to its own longest one.
    `fit(dataset, shuffle=True)` visits the batches in a new random order every epoch (Keras's
    behaviour; the order is drawn from `rankconv.utils.set_random_seed`'s generator), and calls
    `on_epoch_begin()` and `on_epoch_end()` around each epoch. With it, `fit` takes no `y`,
    `batch_size`, `sample_weight` or `validation_split`.

    `workers`, `use_multiprocessing` and `max_queue_size` are accepted and kept for Keras
    compatibility; rankconv reads the batches in the training thread, one at a time."""

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    @property
    def workers(self):
        return self._workers

    @property
    def use_multiprocessing(self):
        return self._use_multiprocessing

    @property
    def max_queue_size(self):
        return self._max_queue_size

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define `__len__` (its number of batches).")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define `__getitem__` (its batch number `index`).")

    @property
    def num_batches(self) -> int:
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called before each epoch of `fit`."""

    def on_epoch_end(self) -> None:
        """Called after each epoch of `fit`."""
