"""Image preprocessing layers: Resizing, CenterCrop, and the random augmentations RandomFlip,
RandomRotation, RandomZoom, RandomTranslation, RandomCrop, RandomContrast and RandomBrightness.

They take one image (height, width, channels) or a batch of them (batch, height, width, channels),
or the channels-first forms, and sample pixels as Keras 3's `ops.image` does with its PyTorch
backend: half-pixel centres when resizing, and `affine_transform`'s grid (output pixel (x, y) reads
the input at the transformed point) with its fill modes "reflect", "wrap", "constant", "nearest".

The random layers transform their inputs in training (`training=True`, and, as in Keras, when
`training` is not given at all) and pass them through at inference, except RandomCrop, which then
crops the centre (see its docstring). Each draws from its own generator when given `seed`, else
from the global one that `utils.set_random_seed` seeds. Like Keras's, each layer exposes
`get_random_transformation(images, training)` and `transform_images(images, transformation)`,
with Keras's transformation keys, so a draw can be replayed.

Everything is built from `rankconv.ops`, so a layer placed after trainable layers passes gradients
back to them (linear in the input, for a fixed draw); the layers have no weights of their own.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from rankconv import ops, utils
from rankconv.layers.layer import Layer

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
AFFINE_INTERPOLATIONS = ("nearest", "bilinear")
RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


# ----------------------------------------------------------------------------- argument checks


def _where(layer) -> str:
    return f"{type(layer).__name__} '{layer.name}'"


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_choice(layer, name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{_where(layer)}: `{name}` must be one of {allowed}; received {name}={value!r}.")
    return value


def _check_size(layer, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{_where(layer)}: `{name}` must be a positive integer; received {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    if value <= 0:
        raise ValueError(f"{_where(layer)}: `{name}` must be a positive integer; received {name}={value!r}.")
    return int(value)


def _check_seed(layer, seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(
            f"{_where(layer)}: `seed` must be an integer or None; received seed={seed!r} of type {type(seed).__name__}."
        )
    return None if seed is None else int(seed)


def _check_number(layer, name, value):
    if not _is_number(value):
        raise TypeError(f"{_where(layer)}: `{name}` must be a number; received {name}={value!r}.")
    return value


def _check_pair(layer, name, value):
    """A (low, high) pair of numbers, kept as given (Keras stores `value_range` as passed)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(_is_number(v) for v in value):
        raise TypeError(f"{_where(layer)}: `{name}` must be a list of two numbers; received {name}={value!r}.")
    return value


def _factor_range(layer, factor, bounds, name="factor"):
    """Keras's image-layer `factor`: a number f gives (max(-|f|, low), |f|); a pair is sorted.

    A number must lie within `bounds`; a pair must reach into them (its smaller value at most the
    upper bound, its larger at least the lower), as Keras checks.
    """
    low, high = bounds
    expected = f"a number in [{low}, {high}] or a list of two numbers"
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or not all(_is_number(f) for f in factor):
            raise TypeError(f"{_where(layer)}: `{name}` must be {expected}; received {name}={factor!r}.")
        if factor[0] > high or factor[1] < low:
            raise ValueError(f"{_where(layer)}: `{name}` must be {expected}; received {name}={factor!r}.")
        lower, upper = sorted(factor)
        return lower, upper
    if not _is_number(factor):
        raise TypeError(f"{_where(layer)}: `{name}` must be {expected}; received {name}={factor!r}.")
    if not low <= factor <= high:
        raise ValueError(f"{_where(layer)}: `{name}` must be {expected}; received {name}={factor!r}.")
    return max(-abs(factor), low), abs(factor)


def _symmetric_factor(layer, factor, name, open_low):
    """RandomZoom's and RandomTranslation's factors: a number f gives (-|f|, |f|); each value must
    lie in [-1, 1] ((-1, 1] for zoom, which cannot shrink an axis to nothing)."""
    interval = "(-1, 1]" if open_low else "[-1, 1]"

    def check(value):
        if not _is_number(value):
            raise TypeError(
                f"{_where(layer)}: `{name}` must be a number in {interval} or a list of two; received {name}={factor!r}."
            )
        if value > 1 or value < -1 or (open_low and value == -1):
            raise ValueError(
                f"{_where(layer)}: `{name}` must be a number in {interval} or a list of two; received {name}={factor!r}."
            )

    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ValueError(
                f"{_where(layer)}: `{name}` must be a number or a list of two; received {name}={factor!r}."
            )
        check(factor[0])
        check(factor[1])
        lower, upper = sorted(factor)
        return lower, upper
    check(factor)
    return -abs(factor), abs(factor)


# ----------------------------------------------------------------------------- sampling


def _spatial_axes(ndim, data_format):
    """Positions of the height and width axes of a 3-D or 4-D image array."""
    return (ndim - 3, ndim - 2) if data_format == "channels_last" else (ndim - 2, ndim - 1)


def _centre_window(height, width, target_height, target_width):
    """Keras's largest centred window of the target aspect ratio: (top, left, rows, columns)."""
    rows = max(min(height, int(float(width * target_height) / target_width)), 1)
    columns = max(min(width, int(float(height * target_width) / target_height)), 1)
    return int(float(height - rows) / 2), int(float(width - columns) / 2), rows, columns


def _cubic_weights(t, a):
    """Cubic convolution weights for taps at offsets -1, 0, 1, 2 from the cell below `t`."""
    distances = (t + 1, t, 1 - t, 2 - t)
    return np.stack([_cubic(d, a) for d in distances], axis=-1)


def _cubic(x, a):
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0))


def _resize_taps(n, m, interpolation, antialias, dtype):
    """Output cell i of an axis resized from n to m cells is sum_k weights[i, k] * input[indices[i, k]].

    PyTorch's `interpolate` (Keras's torch backend), half-pixel centres: bilinear samples
    (i + 0.5) * n / m - 0.5, clamped at 0; bicubic uses the cubic kernel with a = -0.75 and clamps
    the taps to the axis; "nearest" takes cell floor((i + 0.5) * n / m). With `antialias`, bilinear
    and bicubic use a triangle (or a = -0.5 cubic) filter stretched by the shrink factor,
    normalised over the taps inside the axis.
    """
    scale = np.asarray(n, dtype) / np.asarray(m, dtype)
    centres = np.arange(m, dtype=dtype) + dtype.type(0.5)
    if interpolation == "nearest":
        index = np.minimum(np.floor(centres * scale).astype(np.int64), n - 1)
        return index[:, None], None
    if antialias:
        half = 1 if interpolation == "bilinear" else 2
        support = half * scale if scale >= 1 else dtype.type(half)
        inverse = 1 / scale if scale >= 1 else dtype.type(1)
        centre = scale * centres
        start = np.maximum(np.trunc(centre - support + 0.5).astype(np.int64), 0)
        stop = np.minimum(np.trunc(centre + support + 0.5).astype(np.int64), n)
        taps = int(max(1, (stop - start).max()))
        index = start[:, None] + np.arange(taps)
        distance = (index - centre[:, None] + dtype.type(0.5)) * inverse
        if interpolation == "bilinear":
            weights = np.maximum(1 - np.abs(distance), 0)
        else:
            weights = _cubic(distance, -0.5)
        weights = np.where(index < stop[:, None], weights, 0).astype(dtype)
        total = weights.sum(axis=1, keepdims=True)
        weights = np.where(total != 0, weights / np.where(total != 0, total, 1), weights)
        return np.minimum(index, n - 1), weights.astype(dtype)
    source = scale * centres - dtype.type(0.5)
    if interpolation == "bilinear":
        source = np.maximum(source, 0)
    below = np.minimum(np.floor(source).astype(np.int64), n - 1)
    t = np.clip(source - below, 0, 1).astype(dtype)
    if interpolation == "bilinear":
        return np.stack([below, np.minimum(below + 1, n - 1)], axis=1), np.stack([1 - t, t], axis=1)
    index = np.clip(below[:, None] + np.arange(-1, 3), 0, n - 1)
    return index, _cubic_weights(t, -0.75).astype(dtype)


def _resize_axis(x, axis, size, interpolation, antialias):
    n = ops.shape(x)[axis]
    if n == size and interpolation in ("bilinear", "nearest"):
        return x  # every output cell lands on an input cell
    dtype = np.dtype(x.dtype)
    index, weights = _resize_taps(n, size, interpolation, antialias, dtype)
    if weights is None:
        return ops.take(x, index[:, 0], axis=axis)
    shape = [1] * len(ops.shape(x))
    shape[axis] = size
    out = None
    for k in range(index.shape[1]):
        term = ops.multiply(ops.take(x, index[:, k], axis=axis), weights[:, k].reshape(shape))
        out = term if out is None else ops.add(out, term)
    return out


def _resize(
    images,
    height,
    width,
    interpolation="bilinear",
    antialias=False,
    crop_to_aspect_ratio=False,
    pad_to_aspect_ratio=False,
    fill_value=0.0,
    data_format="channels_last",
):
    """Keras's `ops.image.resize` for a 3-D or 4-D image array (floating point)."""
    shape = ops.shape(images)
    h_axis, w_axis = _spatial_axes(len(shape), data_format)
    rows, columns = shape[h_axis], shape[w_axis]
    if crop_to_aspect_ratio:
        top, left, crop_rows, crop_columns = _centre_window(rows, columns, height, width)
        index = [slice(None)] * len(shape)
        index[h_axis], index[w_axis] = slice(top, top + crop_rows), slice(left, left + crop_columns)
        images = ops.getitem(images, tuple(index))
    elif pad_to_aspect_ratio:
        # Keras pads the same amount on both sides: floor(missing / 2) each
        top = int(float(max(rows, int(float(columns * height) / width)) - rows) / 2)
        left = int(float(max(columns, int(float(rows * width) / height)) - columns) / 2)
        if top or left:
            widths = [(0, 0)] * len(shape)
            widths[h_axis], widths[w_axis] = (top, top), (left, left)
            images = ops.pad(images, widths, constant_values=fill_value)
    antialias = antialias and interpolation != "nearest"
    images = _resize_axis(images, w_axis, width, interpolation, antialias)
    return _resize_axis(images, h_axis, height, interpolation, antialias)


def _fix_index(index, size, fill_mode):
    """Where an index outside [0, size) reads from: "reflect" (d c b a | a b c d | d c b a, period
    2 * size), "wrap" (a b c d | a b c d), "nearest" and "constant" (the edge; "constant" then
    masks those cells with the fill value)."""
    outside = (index < 0) | (index >= size)
    if not outside.any():
        return index
    index = index.copy()
    far = index[outside]
    if fill_mode == "reflect":
        far = np.mod(far, 2 * size)
        far = np.where(far >= size, 2 * size - 1 - far, far)
    elif fill_mode == "wrap":
        far = np.mod(far, size)
    else:
        far = np.clip(far, 0, size - 1)
    index[outside] = far
    return index


def _affine_transform(images, transform, interpolation, fill_mode, fill_value, data_format):
    """Keras's `ops.image.affine_transform` on a 4-D image array.

    `transform` is (8,) or (batch, 8): [a0, a1, a2, b0, b1, b2, c0, c1] sends output pixel (x, y)
    to the input point ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1, read
    with nearest (ties to even) or bilinear interpolation; points outside the image follow
    `fill_mode`, and with "constant" each outside tap reads `fill_value`. Like Keras, the
    coordinates are computed in float32.
    """
    if data_format == "channels_first":
        images = ops.transpose(images, (0, 2, 3, 1))
    batch, height, width, channels = ops.shape(images)
    transform = np.broadcast_to(np.asarray(transform, np.float32).reshape(-1, 8), (batch, 8))
    a0, a1, a2, b0, b1, b2, c0, c1 = (transform[:, i, None, None] for i in range(8))
    rows, columns = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij")
    k = c0 * columns + c1 * rows + np.float32(1)
    dtype = np.dtype(images.dtype)

    def taps(coordinate, size):
        """(index to read, inside the image, weight) for each tap along one axis."""
        if interpolation == "nearest":
            nodes = [(np.rint(coordinate).astype(np.intp), None)]
        else:
            below = np.floor(coordinate)
            upper = (coordinate - below).astype(dtype)
            below = below.astype(np.intp)
            nodes = [(below, 1 - upper), (below + 1, upper)]
        return [(_fix_index(i, size, fill_mode), (i >= 0) & (i < size), w) for i, w in nodes]

    rows_taps = taps((b0 * columns + b1 * rows + b2) / k, height)
    columns_taps = taps((a0 * columns + a1 * rows + a2) / k, width)
    pixels = ops.reshape(images, (batch * height * width, channels))  # gather whole pixels by flat index
    first_row = (np.arange(batch, dtype=np.intp) * height)[:, None, None]
    fill = np.asarray(fill_value, dtype)
    out = None
    for y, y_inside, wy in rows_taps:
        row_start = (first_row + y) * width
        for x, x_inside, wx in columns_taps:
            value = ops.getitem(pixels, row_start + x)
            if fill_mode == "constant":
                inside = y_inside & x_inside
                if not inside.all():
                    value = ops.where(inside[..., None], value, fill)
            if wy is not None:
                value = ops.multiply(value, (wy * wx)[..., None])
            out = value if out is None else ops.add(out, value)
    if data_format == "channels_first":
        out = ops.transpose(out, (0, 3, 1, 2))
    return out


def _affine_matrix(angle, height, width):
    """Keras's rotation about the image centre as affine rows [a0 … c1] (float32, batch of angles
    in degrees; positive turns counter-clockwise)."""
    radians = np.asarray(angle, np.float32) * np.float32(math.pi / 180.0)
    cx = np.float32(0.5) * (np.float32(width) - 1)
    cy = np.float32(0.5) * (np.float32(height) - 1)
    cos, sin = np.cos(radians), np.sin(radians)
    zero = np.zeros_like(radians)
    return np.stack(
        [cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos, zero, zero], axis=1
    ).astype(np.float32)


# ----------------------------------------------------------------------------- base


class _ImageLayer(Layer):
    """Shared by the image layers: 3-D (one image) or 4-D (a batch) inputs, `data_format`, and
    Keras's `get_random_transformation` / `transform_images` split."""

    def __init__(self, data_format=None, bounding_box_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = utils.normalize_data_format(data_format)
        if bounding_box_format is not None and not isinstance(bounding_box_format, str):
            raise TypeError(
                f"{_where(self)}: `bounding_box_format` must be a string or None; "
                f"received bounding_box_format={bounding_box_format!r}."
            )
        # kept for Keras's config; rankconv transforms images only (no dict of boxes, labels, masks)
        self.bounding_box_format = bounding_box_format

    def _convert_inputs(self, inputs):
        if isinstance(inputs, dict):
            raise TypeError(
                f"{_where(self)} transforms an image array; dict inputs (images with bounding boxes, labels or "
                f"segmentation masks) are not supported. Received a dict with keys {sorted(inputs)}."
            )
        return super()._convert_inputs(inputs)

    def check_input_shape(self, shape):
        if isinstance(shape, list) or len(shape) not in (3, 4):
            layout = "height, width, channels" if self.data_format == "channels_last" else "channels, height, width"
            raise ValueError(
                f"{_where(self)} expects one image ({layout}) or a batch of them (batch, {layout}); "
                f"received an input of shape {tuple(shape) if not isinstance(shape, list) else shape}."
            )

    def _image_size(self, shape):
        h_axis, w_axis = _spatial_axes(len(shape), self.data_format)
        return shape[h_axis], shape[w_axis]

    def _generator(self, seed=None):
        if isinstance(seed, np.random.Generator):
            return seed
        if seed is not None:
            return np.random.default_rng(seed)
        return getattr(self, "_own_generator", None) or utils.random_generator()

    def get_random_transformation(self, data, training=True, seed=None):
        return None

    def transform_images(self, images, transformation, training=True):
        raise NotImplementedError

    def call(self, inputs, training=None):
        training = True if training is None else bool(training)  # Keras's default for these layers
        transformation = self.get_random_transformation(inputs, training=training)
        return self.transform_images(inputs, transformation, training=training)

    def get_config(self):
        config = {**super().get_config(), "data_format": self.data_format}
        if self.bounding_box_format is not None:
            config["bounding_box_format"] = self.bounding_box_format
        return config


class _RandomLayer(_ImageLayer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = _check_seed(self, seed)
        self._own_generator = None if self.seed is None else np.random.default_rng(self.seed)

    def _batch(self, shape):
        return 1 if len(shape) == 3 else shape[0]


def _as_batch(images):
    """A 4-D view of a 3-D or 4-D image array, and whether it had to gain the batch axis."""
    if len(ops.shape(images)) == 3:
        return ops.expand_dims(images, 0), True
    return images, False


# ----------------------------------------------------------------------------- deterministic layers


class Resizing(_ImageLayer):
    """Images resized to (height, width), as Keras's `Resizing` does with its PyTorch backend.

    `interpolation` is "bilinear", "nearest" or "bicubic" (half-pixel centres); `antialias`
    widens the bilinear and bicubic filters when shrinking. `crop_to_aspect_ratio` first crops the
    largest centred window with the target's aspect ratio; `pad_to_aspect_ratio` instead pads
    with `fill_value` (`fill_mode` "constant", the only one). Integer images come back rounded,
    in their own dtype, as in Keras; floating ones in the layer's dtype.
    """

    _casts_inputs = False

    def __init__(
        self,
        height,
        width,
        interpolation="bilinear",
        crop_to_aspect_ratio=False,
        pad_to_aspect_ratio=False,
        fill_mode="constant",
        fill_value=0.0,
        antialias=False,
        data_format=None,
        **kwargs,
    ):
        super().__init__(data_format=data_format, **kwargs)
        self.height = _check_size(self, "height", height)
        self.width = _check_size(self, "width", width)
        if interpolation in ("lanczos3", "lanczos5", "area", "mitchellcubic", "gaussian"):
            raise ValueError(
                f"{_where(self)}: `interpolation` must be one of {RESIZE_INTERPOLATIONS} (those of Keras's PyTorch "
                f"backend); received interpolation={interpolation!r}."
            )
        self.interpolation = _check_choice(self, "interpolation", interpolation, RESIZE_INTERPOLATIONS)
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError(
                f"{_where(self)}: only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be True; "
                "received both True."
            )
        self.fill_mode = _check_choice(self, "fill_mode", fill_mode, ("constant",))
        self.fill_value = _check_number(self, "fill_value", fill_value)
        self.antialias = bool(antialias)

    def _convert_one(self, x):
        x = super()._convert_one(x)
        if isinstance(x, np.ndarray) and x.dtype.kind not in "iu":
            x = x.astype(self.dtype, copy=False)
        return x

    def output_dtype(self, input_dtype):
        return input_dtype if np.dtype(input_dtype).kind in "iu" else self.dtype

    def transform_images(self, images, transformation=None, training=True):
        dtype = np.dtype(images.dtype)
        if dtype.kind in "iu":
            images = np.asarray(images, np.float32)
        out = _resize(
            images,
            self.height,
            self.width,
            self.interpolation,
            self.antialias,
            self.crop_to_aspect_ratio,
            self.pad_to_aspect_ratio,
            self.fill_value,
            self.data_format,
        )
        if dtype.kind in "iu":  # Keras rounds and saturates back into the integer dtype
            info = np.iinfo(dtype)
            out = np.clip(np.round(np.asarray(out)), info.min, info.max).astype(dtype)
        return out

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        shape = list(input_shape)
        h_axis, w_axis = _spatial_axes(len(shape), self.data_format)
        shape[h_axis], shape[w_axis] = self.height, self.width
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "height": self.height,
                "width": self.width,
                "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
                "fill_mode": self.fill_mode,
                "fill_value": self.fill_value,
                "antialias": self.antialias,
            }
        )
        return config


class CenterCrop(_ImageLayer):
    """The central (height, width) window of each image. An image smaller than that on either
    axis is instead cropped to the largest centred window with the target's aspect ratio and
    resized (bilinear) to (height, width), as Keras does."""

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.height = _check_size(self, "height", height)
        self.width = _check_size(self, "width", width)

    def transform_images(self, images, transformation=None, training=True):
        shape = ops.shape(images)
        rows, columns = self._image_size(shape)
        if rows < self.height or columns < self.width:
            return _resize(images, self.height, self.width, crop_to_aspect_ratio=True, data_format=self.data_format)
        top, left = (rows - self.height) // 2, (columns - self.width) // 2
        index = [slice(None)] * len(shape)
        h_axis, w_axis = _spatial_axes(len(shape), self.data_format)
        index[h_axis], index[w_axis] = slice(top, top + self.height), slice(left, left + self.width)
        return ops.getitem(images, tuple(index))

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        shape = list(input_shape)
        h_axis, w_axis = _spatial_axes(len(shape), self.data_format)
        shape[h_axis], shape[w_axis] = self.height, self.width
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


# ----------------------------------------------------------------------------- random layers


class RandomFlip(_RandomLayer):
    """In training, flips each image with probability 1/2: left-right ("horizontal"), top-bottom
    ("vertical"), or, as in Keras, both at once ("horizontal_and_vertical": one draw per image
    decides both flips, so the image is turned by 180 degrees or left alone)."""

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.mode = _check_choice(self, "mode", mode, FLIP_MODES)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        shape = ops.shape(data)
        flips_shape = (1, 1, 1) if len(shape) == 3 else (shape[0], 1, 1, 1)
        flips = self._generator(seed).random(flips_shape) <= 0.5
        return {"flips": flips, "input_shape": tuple(shape)}

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        flips = np.asarray(ops.convert_to_numpy(transformation["flips"]), bool)
        batch, unbatched = _as_batch(images)
        flips = flips.reshape(-1, 1, 1, 1)
        h_axis, w_axis = _spatial_axes(4, self.data_format)
        axes = {"horizontal": (w_axis,), "vertical": (h_axis,)}.get(self.mode, (w_axis, h_axis))
        index = [slice(None)] * 4
        for axis in axes:
            index[axis] = slice(None, None, -1)
        out = ops.where(flips, ops.getitem(batch, tuple(index)), batch)
        return ops.squeeze(out, 0) if unbatched else out

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "mode": self.mode}


class _AffineLayer(_RandomLayer):
    """Random geometric layers: a per-image affine map sampled with `interpolation`, points outside
    the image filled per `fill_mode` (`fill_value` for "constant")."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.fill_mode = _check_choice(self, "fill_mode", fill_mode, FILL_MODES)
        self.interpolation = _check_choice(self, "interpolation", interpolation, AFFINE_INTERPOLATIONS)
        self.fill_value = _check_number(self, "fill_value", fill_value)

    def _matrix(self, transformation, height, width):
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "fill_mode": self.fill_mode,
                "interpolation": self.interpolation,
                "seed": self.seed,
                "fill_value": self.fill_value,
            }
        )
        return config

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        batch, unbatched = _as_batch(images)
        height, width = self._image_size(ops.shape(batch))
        matrix = self._matrix(transformation, height, width)
        out = _affine_transform(batch, matrix, self.interpolation, self.fill_mode, self.fill_value, self.data_format)
        return ops.squeeze(out, 0) if unbatched else out


class RandomRotation(_AffineLayer):
    """In training, rotates each image about its centre by a random angle: `factor` is a fraction
    of a full turn, f meaning [-f, f] * 360 degrees and (lo, hi) meaning [lo, hi] * 360 degrees
    (positive angles turn counter-clockwise)."""

    def __init__(
        self,
        factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        data_format=None,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format=data_format, **kwargs)
        self.factor = _factor_range(self, factor, (-1, 1))

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        shape = ops.shape(data)
        height, width = self._image_size(shape)
        batch = self._batch(shape)
        lower, upper = self.factor[0] * 360.0, self.factor[1] * 360.0
        angle = self._generator(seed).uniform(lower, upper, size=(batch,)).astype(np.float32)
        matrix = _affine_matrix(angle, height, width)
        return {
            "angle": angle,
            "rotation_matrix": matrix[0] if len(shape) == 3 else matrix,
            "image_height": height,
            "image_width": width,
            "batch_size": batch,
        }

    def _matrix(self, transformation, height, width):
        return np.asarray(ops.convert_to_numpy(transformation["rotation_matrix"]), np.float32)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomZoom(_AffineLayer):
    """In training, zooms each image about its centre: the sampled area's height is scaled by
    1 + a draw from `height_factor` (f meaning [-f, f]; positive values zoom out, negative zoom in),
    its width by 1 + a draw from `width_factor`, or by the same value as the height when
    `width_factor` is None (keeping the aspect ratio)."""

    def __init__(
        self,
        height_factor,
        width_factor=None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        data_format=None,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format=data_format, **kwargs)
        self.height_factor = height_factor
        self.height_lower, self.height_upper = _symmetric_factor(self, height_factor, "height_factor", True)
        self.width_factor = width_factor
        if width_factor is not None:
            self.width_lower, self.width_upper = _symmetric_factor(self, width_factor, "width_factor", True)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        shape = ops.shape(data)
        generator = self._generator(seed)
        size = (self._batch(shape), 1)
        height_zoom = generator.uniform(1 + self.height_lower, 1 + self.height_upper, size=size).astype(np.float32)
        if self.width_factor is None:
            width_zoom = height_zoom
        else:
            width_zoom = generator.uniform(1 + self.width_lower, 1 + self.width_upper, size=size).astype(np.float32)
        return {"height_zoom": height_zoom, "width_zoom": width_zoom, "input_shape": tuple(shape)}

    def _matrix(self, transformation, height, width):
        zx = np.asarray(ops.convert_to_numpy(transformation["width_zoom"]), np.float32).reshape(-1)
        zy = np.asarray(ops.convert_to_numpy(transformation["height_zoom"]), np.float32).reshape(-1)
        zero = np.zeros_like(zx)
        x_offset = (np.float32(width) - 1) / 2 * (1 - zx)
        y_offset = (np.float32(height) - 1) / 2 * (1 - zy)
        return np.stack([zx, zero, x_offset, zero, zy, y_offset, zero, zero], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomTranslation(_AffineLayer):
    """In training, shifts each image by a random fraction of its height (from `height_factor`)
    and of its width (from `width_factor`): f means [-f, f], (lo, hi) means [lo, hi]; positive
    values move the content down and right."""

    def __init__(
        self,
        height_factor,
        width_factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        data_format=None,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format=data_format, **kwargs)
        self.height_factor = height_factor
        self.height_lower, self.height_upper = _symmetric_factor(self, height_factor, "height_factor", False)
        self.width_factor = width_factor
        self.width_lower, self.width_upper = _symmetric_factor(self, width_factor, "width_factor", False)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        shape = ops.shape(data)
        height, width = self._image_size(shape)
        generator = self._generator(seed)
        size = (self._batch(shape), 1)
        down = generator.uniform(self.height_lower, self.height_upper, size=size) * height
        right = generator.uniform(self.width_lower, self.width_upper, size=size) * width
        translations = np.concatenate([right, down], axis=1).astype(np.float32)
        return {"translations": translations, "input_shape": tuple(shape)}

    def _matrix(self, transformation, height, width):
        shift = np.asarray(ops.convert_to_numpy(transformation["translations"]), np.float32).reshape(-1, 2)
        one, zero = np.ones(len(shift), np.float32), np.zeros(len(shift), np.float32)
        return np.stack([one, zero, -shift[:, 0], zero, one, -shift[:, 1], zero, zero], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomCrop(_RandomLayer):
    """A (height, width) window of the images.

    In training, the window is placed at random (one place for the whole batch, as in Keras).
    At inference, and in training when an image is smaller than the window on either axis, the
    layer does what Keras documents: crop the largest centred window with the target's aspect
    ratio and resize it (bilinear) to (height, width). (Keras 3.15's code returns the input
    unchanged at inference, against its own docstring and output shape: keras-team/keras#21868.)
    Without `seed`, a seed is drawn for the config, as Keras does, while the draws come from the
    global generator.
    """

    def __init__(self, height, width, seed=None, data_format=None, name=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, name=name, **kwargs)
        self.height = _check_size(self, "height", height)
        self.width = _check_size(self, "width", width)
        if self.seed is None:  # Keras records a seed even when none was given
            self.seed = int(utils.random_generator().integers(1, 10**9))

    def get_random_transformation(self, data, training=True, seed=None):
        rows, columns = self._image_size(ops.shape(data))
        if not training or rows < self.height or columns < self.width:
            return None  # the centred window, resized
        generator = self._generator(seed)
        top = int(generator.integers(0, rows - self.height + 1))
        left = int(generator.integers(0, columns - self.width + 1))
        return top, left

    def transform_images(self, images, transformation, training=True):
        if transformation is None:
            return _resize(images, self.height, self.width, crop_to_aspect_ratio=True, data_format=self.data_format)
        top, left = (int(ops.convert_to_numpy(t)) for t in transformation)
        shape = ops.shape(images)
        h_axis, w_axis = _spatial_axes(len(shape), self.data_format)
        index = [slice(None)] * len(shape)
        index[h_axis], index[w_axis] = slice(top, top + self.height), slice(left, left + self.width)
        out = ops.getitem(images, tuple(index))
        if self._image_size(ops.shape(out)) != (self.height, self.width):  # a window past the edge: as Keras
            out = _resize(out, self.height, self.width, data_format=self.data_format)
        return out

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        shape = list(input_shape)
        h_axis, w_axis = _spatial_axes(len(shape), self.data_format)
        shape[h_axis], shape[w_axis] = self.height, self.width
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update({"height": self.height, "width": self.width, "seed": self.seed})
        return config


class RandomContrast(_RandomLayer):
    """In training, scales each image's deviation from its per-channel mean by a random factor,
    then clips to `value_range`.

    As Keras 3.15 computes it, `factor` f gives factors in [1 - max(-f, 0), 1 + f] = [1, 1 + f]
    (so a single number only raises the contrast) and (lo, hi) gives [1 - lo, 1 + hi].
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_range(self, factor, (0, 1))
        self.value_range = _check_pair(self, "value_range", value_range)

    def get_random_transformation(self, data, training=True, seed=None):
        shape = ops.shape(data)
        factor_shape = (1, 1, 1) if len(shape) == 3 else (shape[0], 1, 1, 1)
        if not training:
            return {"contrast_factor": np.zeros(factor_shape, self.dtype)}
        draw = self._generator(seed).uniform(1 - self.factor[0], 1 + self.factor[1], size=factor_shape)
        return {"contrast_factor": draw.astype(self.dtype)}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        factor = np.asarray(ops.convert_to_numpy(transformation["contrast_factor"]))
        h_axis, w_axis = _spatial_axes(len(ops.shape(images)), self.data_format)
        mean = ops.mean(ops.mean(images, axis=h_axis, keepdims=True), axis=w_axis, keepdims=True)
        factor = factor.astype(images.dtype)
        out = ops.add(ops.multiply(ops.subtract(images, mean), factor), mean)
        return ops.clip(out, self.value_range[0], self.value_range[1])

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor, "value_range": self.value_range, "seed": self.seed})
        return config


class RandomBrightness(_RandomLayer):
    """In training, adds to each image a random delta, a fraction of the width of `value_range`
    drawn from `factor` (f meaning [-f, f], (lo, hi) meaning [lo, hi], within [-1, 1]), then clips
    to `value_range`."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_range(self, factor, (-1, 1))
        self.value_range = sorted(_check_pair(self, "value_range", value_range))

    def get_random_transformation(self, data, training=True, seed=None):
        shape = ops.shape(data)
        delta_shape = (1, 1, 1) if len(shape) == 3 else (shape[0], 1, 1, 1)
        if not training:
            return {"rgb_delta": np.zeros(delta_shape, self.dtype)}
        draw = self._generator(seed).uniform(self.factor[0], self.factor[1], size=delta_shape)
        return {"rgb_delta": (draw * (self.value_range[1] - self.value_range[0])).astype(self.dtype)}

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        delta = np.asarray(ops.convert_to_numpy(transformation["rgb_delta"])).astype(images.dtype)
        return ops.clip(ops.add(images, delta), self.value_range[0], self.value_range[1])

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor, "value_range": self.value_range, "seed": self.seed})
        return config
