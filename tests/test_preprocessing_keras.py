"""Oracle: rankconv's image preprocessing layers (Resizing, CenterCrop, RandomFlip, RandomRotation,
RandomZoom, RandomTranslation, RandomCrop, RandomContrast, RandomBrightness) against real Keras 3
(torch backend): the same outputs for the deterministic layers and for each random layer at
inference; the same image for the same random draw (Keras's `transform_images` replays rankconv's
transformation dict); the same distribution of draws; equal configs that build the other side's
layer; `.keras` files that load both ways; seeded runs that repeat; and a training step through
a model that holds them."""

import numpy as np
import pytest
from test_layers_conv_keras import _normalise

from rankconv import layers, ops, saving, utils
from rankconv.models import Model, Sequential

from oracles import keras as _keras

keras = _keras()

FORMATS = ["channels_last", "channels_first"]


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _images(rng, batch, height, width, channels, data_format, scale=1.0):
    spatial = (height, width, channels) if data_format == "channels_last" else (channels, height, width)
    shape = spatial if batch is None else (batch, *spatial)
    return (rng.random(shape) * scale).astype("float32")


def _close(got, expected, tol=1e-4):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=0, atol=tol * scale)


def _to_keras(transformation):
    """rankconv's transformation (NumPy arrays) as Keras's backend tensors."""
    if isinstance(transformation, dict):
        return {
            k: keras.ops.convert_to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in transformation.items()
        }
    return transformation


# ----------------------------------------------------------------------------- deterministic layers


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic"])
def test_resizing_matches_keras(data_format, interpolation):
    rng = np.random.default_rng(0)
    for height, width in [(5, 7), (13, 4), (9, 11), (3, 17), (20, 22)]:
        for crop, pad in [(False, False), (True, False), (False, True)]:
            for antialias in (False, True):
                config = dict(
                    height=height,
                    width=width,
                    interpolation=interpolation,
                    crop_to_aspect_ratio=crop,
                    pad_to_aspect_ratio=pad,
                    antialias=antialias,
                    fill_value=0.5,
                    data_format=data_format,
                )
                x = _images(rng, 2, 9, 11, 3, data_format)
                got = layers.Resizing(**config)(x)
                assert got.dtype == np.float32
                _close(got, _numpy(keras.layers.Resizing(**config)(x)))
    # one image, float64, and the integer round trip (rounded, saturated, in the input's dtype)
    single = _images(rng, None, 6, 10, 2, data_format)
    _close(
        layers.Resizing(4, 5, data_format=data_format)(single),
        _numpy(keras.layers.Resizing(4, 5, data_format=data_format)(single)),
    )
    wide = _images(rng, 2, 6, 10, 2, data_format).astype("float64")
    ours = layers.Resizing(7, 3, interpolation=interpolation, data_format=data_format, dtype="float64")(wide)
    theirs = _numpy(
        keras.layers.Resizing(7, 3, interpolation=interpolation, data_format=data_format, dtype="float64")(wide)
    )
    assert ours.dtype == np.float64
    _close(ours, theirs, 1e-10)
    pixels = rng.integers(0, 256, (2, 7, 9, 3) if data_format == "channels_last" else (2, 3, 7, 9)).astype("uint8")
    ours = layers.Resizing(5, 4, interpolation=interpolation, data_format=data_format)(pixels)
    theirs = _numpy(keras.layers.Resizing(5, 4, interpolation=interpolation, data_format=data_format)(pixels))
    assert ours.dtype == theirs.dtype == np.uint8
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1  # a rounding tie may fall either way


@pytest.mark.parametrize("data_format", FORMATS)
def test_center_crop_matches_keras(data_format):
    rng = np.random.default_rng(1)
    for (rows, columns), (height, width) in [
        ((9, 11), (5, 6)),  # a plain crop
        ((9, 11), (9, 11)),
        ((6, 8), (8, 5)),  # smaller in height: Keras crops to the aspect ratio and resizes
        ((6, 8), (4, 12)),
        ((5, 5), (7, 9)),
    ]:
        for batch in (3, None):
            x = _images(rng, batch, rows, columns, 2, data_format)
            got = layers.CenterCrop(height, width, data_format=data_format)(x)
            _close(got, _numpy(keras.layers.CenterCrop(height, width, data_format=data_format)(x)))


RANDOM_CASES = [
    ("RandomFlip", dict(mode="horizontal")),
    ("RandomFlip", dict(mode="vertical")),
    ("RandomFlip", dict()),
    ("RandomRotation", dict(factor=0.3)),
    ("RandomRotation", dict(factor=(-0.1, 0.4), fill_mode="constant", fill_value=0.5, interpolation="nearest")),
    ("RandomZoom", dict(height_factor=0.4)),
    ("RandomZoom", dict(height_factor=(-0.5, 0.2), width_factor=0.6, fill_mode="wrap")),
    ("RandomTranslation", dict(height_factor=0.3, width_factor=(-0.2, 0.5))),
    ("RandomTranslation", dict(height_factor=0.5, width_factor=0.5, fill_mode="nearest", interpolation="nearest")),
    ("RandomContrast", dict(factor=0.5)),
    ("RandomContrast", dict(factor=(0.2, 0.7), value_range=(0, 1))),
    ("RandomBrightness", dict(factor=0.3)),
    ("RandomBrightness", dict(factor=(-0.5, 0.1), value_range=(0.0, 1.0))),
]


@pytest.mark.parametrize("name,config", RANDOM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RANDOM_CASES)])
@pytest.mark.parametrize("data_format", FORMATS)
def test_random_layers_pass_images_through_at_inference(name, config, data_format):
    rng = np.random.default_rng(2)
    for batch in (3, None):
        x = _images(rng, batch, 6, 7, 3, data_format, scale=255)
        ours = getattr(layers, name)(**config, data_format=data_format, seed=3)
        theirs = getattr(keras.layers, name)(**config, data_format=data_format, seed=3)
        got = ours(x, training=False)
        _close(got, _numpy(theirs(x, training=False)))
        np.testing.assert_array_equal(got, x)
    model = Sequential([layers.Input(x.shape), ours])
    np.testing.assert_array_equal(model.predict(x[None], verbose=0)[0], x)


@pytest.mark.parametrize("data_format", FORMATS)
def test_random_crop_at_inference_crops_the_centre_and_resizes_as_documented(data_format):
    # Keras 3.15 documents the largest centred window with the target's aspect ratio, resized;
    # its code returns the input unchanged (keras-team/keras#21868). Keras's own
    # Resizing(crop_to_aspect_ratio=True) computes the documented result.
    rng = np.random.default_rng(4)
    for (rows, columns), (height, width) in [((6, 8), (4, 4)), ((9, 7), (5, 6)), ((4, 5), (6, 8)), ((5, 5), (5, 5))]:
        for batch in (2, None):
            x = _images(rng, batch, rows, columns, 3, data_format)
            ours = layers.RandomCrop(height, width, data_format=data_format, seed=1)
            expected = keras.layers.Resizing(height, width, crop_to_aspect_ratio=True, data_format=data_format)(x)
            _close(ours(x, training=False), _numpy(expected))
            if rows < height or columns < width:  # smaller: in training too, the same centred window
                _close(ours(x, training=True), _numpy(expected))
            if (rows, columns) == (height, width):  # Keras's code agrees where nothing is cropped
                theirs = keras.layers.RandomCrop(height, width, data_format=data_format, seed=1)
                _close(ours(x, training=False), _numpy(theirs(x, training=False)))


# ----------------------------------------------------------------------------- the same draw


@pytest.mark.parametrize("name,config", RANDOM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RANDOM_CASES)])
@pytest.mark.parametrize("data_format", FORMATS)
def test_same_draw_gives_keras_image(name, config, data_format):
    rng = np.random.default_rng(5)
    ours = getattr(layers, name)(**config, data_format=data_format, seed=11)
    theirs = getattr(keras.layers, name)(**config, data_format=data_format)
    for batch in (4, None):
        for _ in range(2):
            x = _images(rng, batch, 7, 9, 3, data_format, scale=255 if "value_range" not in config else 1)
            transformation = ours.get_random_transformation(x, training=True)
            got = ours.transform_images(x, transformation, training=True)
            if batch is None:
                expected = theirs.transform_single_image(keras.ops.convert_to_tensor(x), _to_keras(transformation))
            else:
                expected = theirs.transform_images(keras.ops.convert_to_tensor(x), _to_keras(transformation))
            _close(got, _numpy(expected))
            assert got.shape == x.shape


@pytest.mark.parametrize("data_format", FORMATS)
def test_random_crop_same_offsets_give_keras_crop(data_format):
    rng = np.random.default_rng(6)
    ours = layers.RandomCrop(4, 5, data_format=data_format, seed=2)
    theirs = keras.layers.RandomCrop(4, 5, data_format=data_format)
    seen = set()
    for batch in (3, None):
        for _ in range(6):
            x = _images(rng, batch, 7, 9, 2, data_format)
            transformation = ours.get_random_transformation(x, training=True)
            seen.add(transformation)
            got = ours.transform_images(x, transformation)
            _close(got, _numpy(theirs.transform_images(keras.ops.convert_to_tensor(x), transformation)))
            assert ours.compute_output_shape(x.shape) == tuple(theirs.compute_output_shape(x.shape)) == got.shape
    assert len(seen) > 3 and all(0 <= top <= 3 and 0 <= left <= 4 for top, left in seen)


def test_layer_call_without_training_transforms_as_keras_does():
    # Keras's image layers default to training=True when called directly or inside model(x)
    x = np.arange(2 * 4 * 5 * 1, dtype="float32").reshape(2, 4, 5, 1)
    for name, config in [("RandomFlip", {}), ("RandomBrightness", {"factor": 0.5})]:
        flipped = [not np.array_equal(getattr(layers, name)(**config, seed=s)(x), x) for s in range(8)]
        assert any(flipped)
        model = Sequential([layers.Input((4, 5, 1)), getattr(layers, name)(**config, seed=0)])
        assert any(not np.array_equal(model(x), x) for _ in range(8))
        assert np.array_equal(model.predict(x, verbose=0), x)


# ----------------------------------------------------------------------------- distributions


def _draws(layer, x, key, n):
    return np.concatenate(
        [np.ravel(_numpy(layer.get_random_transformation(x, training=True)[key])) for _ in range(n)]
    ).astype(float)


@pytest.mark.parametrize(
    "name,config,key",
    [
        ("RandomRotation", dict(factor=(-0.1, 0.3)), "angle"),
        ("RandomZoom", dict(height_factor=(-0.4, 0.2)), "height_zoom"),
        ("RandomZoom", dict(height_factor=0.2, width_factor=(0.1, 0.5)), "width_zoom"),
        ("RandomTranslation", dict(height_factor=0.2, width_factor=(-0.3, 0.1)), "translations"),
        ("RandomContrast", dict(factor=0.4), "contrast_factor"),
        ("RandomContrast", dict(factor=(0.3, 0.6)), "contrast_factor"),
        ("RandomBrightness", dict(factor=(-0.2, 0.6)), "rgb_delta"),
        ("RandomFlip", dict(), "flips"),
    ],
)
def test_draws_follow_keras_distribution(name, config, key):
    x = np.zeros((200, 6, 8, 1), "float32")
    ours = getattr(layers, name)(**config, seed=0)
    theirs = getattr(keras.layers, name)(**config, seed=0)
    got, expected = _draws(ours, x, key, 10), _draws(theirs, x, key, 10)
    if key == "translations":  # (width shift, height shift) pairs in pixels
        got, expected = got.reshape(-1, 2), expected.reshape(-1, 2)
    span = np.ptp(expected, axis=0) + 1e-9
    # same support (within 2% of its width) and the same mean (within 5 standard errors)
    assert np.all(np.abs(got.min(axis=0) - expected.min(axis=0)) <= 0.02 * span)
    assert np.all(np.abs(got.max(axis=0) - expected.max(axis=0)) <= 0.02 * span)
    error = np.sqrt((got.var(axis=0) + expected.var(axis=0)) / len(expected)) + 1e-9
    assert np.all(np.abs(got.mean(axis=0) - expected.mean(axis=0)) <= 5 * error)


def test_flip_flips_about_half_and_both_axes_together():
    x = np.random.default_rng(7).random((400, 3, 4, 1)).astype("float32")
    for mode, flip in [
        ("horizontal", lambda a: a[:, ::-1]),
        ("vertical", lambda a: a[::-1]),
        ("horizontal_and_vertical", lambda a: a[::-1, ::-1]),
    ]:
        out = layers.RandomFlip(mode, seed=1)(x, training=True)
        same = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
        flipped = np.array([np.array_equal(o, flip(i)) for o, i in zip(out, x)])
        assert np.all(same | flipped)
        assert 0.4 < flipped.mean() < 0.6


def test_brightness_and_contrast_shifts_stay_in_range():
    x = np.full((500, 4, 4, 3), 100.0, "float32")
    x[:, :2] = 60.0
    shifted = layers.RandomBrightness(0.2, seed=0)(x, training=True)
    shift = shifted.mean(axis=(1, 2, 3)) - x.mean(axis=(1, 2, 3))
    assert np.all(np.abs(shift) <= 0.2 * 255 + 1e-3) and abs(shift.mean()) < 5 and shift.std() > 20
    contrasted = layers.RandomContrast(0.5, seed=0)(x, training=True)
    spread = (contrasted[:, 2, 0, 0] - contrasted[:, 0, 0, 0]) / 40.0  # the contrast factor per image
    assert spread.min() >= 1.0 - 1e-5 and spread.max() <= 1.5 + 1e-5  # Keras: a number f gives [1, 1 + f]
    np.testing.assert_allclose(contrasted.mean(axis=(1, 2)), x.mean(axis=(1, 2)), rtol=1e-5)


def test_seeded_layers_repeat_and_global_seed_repeats():
    x = np.random.default_rng(8).random((6, 8, 8, 2)).astype("float32")
    for name, config in [
        ("RandomRotation", dict(factor=0.2)),
        ("RandomZoom", dict(height_factor=0.3)),
        ("RandomCrop", dict(height=5, width=6)),
        ("RandomFlip", dict()),
    ]:
        first, second = (getattr(layers, name)(**config, seed=5) for _ in range(2))
        runs = [[layer(x, training=True) for _ in range(3)] for layer in (first, second)]
        for a, b in zip(*runs):
            np.testing.assert_array_equal(a, b)
        assert not all(np.array_equal(runs[0][0], r) for r in runs[0][1:])
        outputs = []
        for _ in range(2):
            utils.set_random_seed(42)
            layer = getattr(layers, name)(**config)
            outputs.append([layer(x, training=True) for _ in range(2)])
        for a, b in zip(*outputs):
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- shapes, configs, files

ALL_CASES = [
    *RANDOM_CASES,
    ("RandomCrop", dict(height=4, width=5, seed=7)),
    ("Resizing", dict(height=4, width=6, interpolation="nearest", pad_to_aspect_ratio=True, fill_value=1.0)),
    ("Resizing", dict(height=3, width=3, antialias=True, crop_to_aspect_ratio=True)),
    ("CenterCrop", dict(height=2, width=3)),
]


@pytest.mark.parametrize("name,config", ALL_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ALL_CASES)])
@pytest.mark.parametrize("data_format", FORMATS)
def test_shapes_and_configs_match_keras_and_cross_load(name, config, data_format):
    ours = getattr(layers, name)(**config, data_format=data_format, name="layer")
    theirs = getattr(keras.layers, name)(**config, data_format=data_format, name="layer")
    assert _normalise(ours.get_config()) == _normalise(theirs.get_config())
    for shape in [(None, 6, 7, 3), (2, 8, 9, 1), (6, 7, 3)]:
        if data_format == "channels_first":
            shape = (*shape[:-3], shape[-1], shape[-3], shape[-2])
        assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape))
    rebuilt = getattr(keras.layers, name).from_config(ours.get_config())
    assert _normalise(rebuilt.get_config()) == _normalise(ours.get_config())
    back = getattr(layers, name).from_config(theirs.get_config())
    assert _normalise(back.get_config()) == _normalise(theirs.get_config())
    assert name in layers.LAYER_CLASSES


def test_random_crop_without_seed_records_one_as_keras_does():
    config = layers.RandomCrop(3, 3).get_config()
    assert isinstance(config["seed"], int) and isinstance(keras.layers.RandomCrop(3, 3).get_config()["seed"], int)


def _augmenting_model(lib):
    L = lib.layers if lib is keras else layers
    return (keras.Sequential if lib is keras else Sequential)(
        [
            (keras.Input if lib is keras else layers.Input)((12, 10, 3)),
            L.Resizing(10, 10, name="resize"),
            L.RandomFlip(seed=1, name="flip"),
            L.RandomRotation(0.1, fill_mode="constant", seed=2, name="rotate"),
            L.RandomZoom(0.2, 0.1, seed=3, name="zoom"),
            L.RandomTranslation(0.1, 0.2, interpolation="nearest", seed=4, name="shift"),
            L.RandomContrast(0.3, value_range=(0, 1), seed=5, name="contrast"),
            L.RandomBrightness(0.2, value_range=(0, 1), seed=6, name="brightness"),
            L.RandomCrop(10, 10, seed=7, name="crop"),
            L.CenterCrop(8, 8, name="centre"),
            L.Conv2D(4, 3, activation="relu", name="conv"),
            L.GlobalAveragePooling2D(name="pool"),
            L.Dense(2, activation="softmax", name="dense"),
        ]
    )


def test_keras_files_with_these_layers_load_both_ways(tmp_path):
    x = np.random.default_rng(9).random((3, 12, 10, 3)).astype("float32")
    ours = _augmenting_model(None)
    ours.save(tmp_path / "ours.keras")
    loaded = keras.saving.load_model(tmp_path / "ours.keras")
    _close(_numpy(loaded.predict(x, verbose=0)), ours.predict(x, verbose=0), 1e-5)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in ours.layers[-12:]]

    theirs = _augmenting_model(keras)
    theirs.save(tmp_path / "theirs.keras")
    back = saving.load_model(tmp_path / "theirs.keras")
    _close(back.predict(x, verbose=0), theirs.predict(x, verbose=0), 1e-5)
    for a, b in zip(back.layers, theirs.layers):
        assert _normalise(a.get_config()) == _normalise(b.get_config())


def test_training_step_through_the_layers_updates_the_weights():
    utils.set_random_seed(0)
    rng = np.random.default_rng(10)
    x = rng.random((16, 12, 10, 3)).astype("float32")
    y = rng.integers(0, 2, 16)
    model = _augmenting_model(None)
    model.compile("adam", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))

    # after a trainable layer the augmentations pass gradients back to it
    inputs = layers.Input((8, 8, 2))
    h = layers.Conv2D(3, 3, padding="same", name="first")(inputs)
    for layer in (
        layers.RandomRotation(0.2, seed=1),
        layers.RandomZoom(0.2, seed=1),
        layers.RandomFlip(seed=1),
        layers.RandomContrast(0.2, value_range=(-100, 100), seed=1),
        layers.RandomBrightness(0.1, value_range=(-100, 100), seed=1),
        layers.RandomCrop(6, 6, seed=1),
        layers.Resizing(5, 7, antialias=True),
        layers.CenterCrop(4, 4),
    ):
        h = layer(h)
    model = Model(inputs, layers.Dense(1)(layers.Flatten()(h)))
    model.compile("sgd", "mse")
    first = model.get_layer("first").get_weights()[0].copy()
    model.fit(rng.random((8, 8, 8, 2)).astype("float32"), rng.random((8, 1)).astype("float32"), verbose=0)
    assert not np.array_equal(first, model.get_layer("first").get_weights()[0])


@pytest.mark.parametrize(
    "layer",
    [
        lambda: layers.Resizing(5, 3, interpolation="bicubic", antialias=True, dtype="float64"),
        lambda: layers.Resizing(4, 9, pad_to_aspect_ratio=True, dtype="float64"),
        lambda: layers.RandomRotation(0.3, fill_mode="constant", seed=0, dtype="float64"),
        lambda: layers.RandomZoom(0.3, fill_mode="reflect", seed=0, dtype="float64"),
        lambda: layers.RandomTranslation(0.3, 0.3, fill_mode="wrap", seed=0, dtype="float64"),
    ],
)
def test_gradients_match_finite_differences(layer):
    layer = layer()
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 6, 7, 2))
    transformation = layer.get_random_transformation(x, training=True)
    fn = lambda a: layer.transform_images(a, transformation, training=True)  # noqa: E731
    cotangent = rng.standard_normal(np.shape(fn(x)))
    _, g = ops.value_and_grad(lambda a: ops.sum(ops.multiply(fn(a), cotangent)))(x)
    direction = rng.standard_normal(x.shape)
    eps = 1e-6
    numeric = (np.sum(fn(x + eps * direction) * cotangent) - np.sum(fn(x - eps * direction) * cotangent)) / (2 * eps)
    assert numeric == pytest.approx(float(np.sum(g * direction)), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize(
    "make,error,words",
    [
        (lambda: layers.RandomFlip("sideways"), ValueError, "`mode`"),
        (lambda: layers.RandomRotation(1.5), ValueError, "`factor`"),
        (lambda: layers.RandomRotation("a lot"), TypeError, "`factor`"),
        (lambda: layers.RandomRotation(0.1, fill_mode="mirror"), ValueError, "`fill_mode`"),
        (lambda: layers.RandomZoom(-1.0), ValueError, "`height_factor`"),
        (lambda: layers.RandomZoom(0.1, (0.1, 0.2, 0.3)), ValueError, "`width_factor`"),
        (lambda: layers.RandomTranslation(0.1, 2), ValueError, "`width_factor`"),
        (lambda: layers.RandomTranslation(0.1, 0.1, interpolation="bicubic"), ValueError, "`interpolation`"),
        (lambda: layers.RandomContrast(1.5), ValueError, "`factor`"),
        (lambda: layers.RandomBrightness(0.1, value_range=255), TypeError, "`value_range`"),
        (lambda: layers.RandomCrop(0, 3), ValueError, "`height`"),
        (lambda: layers.RandomCrop(3, 2.5), TypeError, "`width`"),
        (lambda: layers.RandomFlip(seed="one"), TypeError, "`seed`"),
        (lambda: layers.Resizing(3, 3, interpolation="lanczos3"), ValueError, "`interpolation`"),
        (lambda: layers.Resizing(3, 3, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True), ValueError, "only one"),
        (lambda: layers.Resizing(3, 3, fill_mode="reflect"), ValueError, "`fill_mode`"),
        (lambda: layers.CenterCrop(3, 3, data_format="NHWC"), ValueError, "data_format"),
        (lambda: layers.CenterCrop(2, 2)(np.zeros((2, 4, 4, 4, 1))), ValueError, "received an input of shape"),
        (lambda: layers.RandomFlip()({"images": np.zeros((1, 2, 2, 1))}), TypeError, "dict inputs"),
    ],
)
def test_bad_arguments_and_inputs_raise_clear_errors(make, error, words):
    with pytest.raises(error, match=words):
        make()
