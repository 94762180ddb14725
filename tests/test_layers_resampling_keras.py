"""Oracle: rankconv's UpSampling1D/2D/3D and Cropping1D/2D/3D against real Keras 3 (torch backend):
the same outputs, output shapes and configs, configs and `.keras` files that load on either side,
gradients against central finite differences, and clear errors for bad arguments and inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankconv import layers, ops, saving
from rankconv.models import Sequential
from rankconv.ops import value_and_grad

from oracles import keras as _keras

keras = _keras()

DATA_FORMATS = ["channels_last", "channels_first"]


def _normalise(value):
    """Config values compared across the two: tuples and lists alike."""
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


def _input_shape(batch, spatial, channels, data_format):
    return (batch, *spatial, channels) if data_format == "channels_last" else (batch, channels, *spatial)


@st.composite
def upsampling_cases(draw):
    rank = draw(st.integers(1, 3))
    longest = {1: 7, 2: 5, 3: 3}[rank]
    spatial = tuple(draw(st.integers(1, longest)) for _ in range(rank))
    size = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    data_format = "channels_last" if rank == 1 else draw(st.sampled_from(DATA_FORMATS))
    if rank == 1:
        config = dict(size=size[0])
    else:
        same = len(set(size)) == 1 and draw(st.booleans())
        config = dict(size=size[0] if same else size, data_format=data_format)
    if rank == 2:
        config["interpolation"] = draw(st.sampled_from(["nearest", "bilinear", "Bilinear"]))
    return f"UpSampling{rank}D", config, spatial, data_format


@st.composite
def cropping_cases(draw):
    rank = draw(st.integers(1, 3))
    longest = {1: 7, 2: 5, 3: 3}[rank]
    form = draw(st.sampled_from(["pairs", "ints", "int"]))
    if form == "int":
        pairs = ((draw(st.integers(0, 3)),) * 2,) * rank
    elif form == "ints":
        pairs = tuple((c, c) for c in (draw(st.integers(0, 3)) for _ in range(rank)))
    else:  # usually asymmetric
        pairs = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(rank))
    spatial = tuple(lo + hi + draw(st.integers(1, longest)) for lo, hi in pairs)
    data_format = "channels_last" if rank == 1 else draw(st.sampled_from(DATA_FORMATS))
    if form == "int":
        cropping = pairs[0][0]
    elif form == "ints":
        cropping = pairs[0][0] if rank == 1 else tuple(lo for lo, _ in pairs)
    else:
        cropping = pairs[0] if rank == 1 else pairs
    config = dict(cropping=cropping) if rank == 1 else dict(cropping=cropping, data_format=data_format)
    return f"Cropping{rank}D", config, spatial, data_format


def _check_gradient(fn, x, seed=0, eps=1e-6, tol=1e-7):
    """The gradient of `sum(fn(x) * cotangent)` matches central differences along two random
    directions (exact up to rounding: these layers are linear in x)."""
    rng = np.random.default_rng(seed)
    out = np.asarray(fn(x))
    cotangent = rng.standard_normal(out.shape)
    value, g = value_and_grad(lambda a: ops.sum(ops.multiply(fn(a), cotangent)))(x)
    assert float(value) == pytest.approx(float(np.sum(out * cotangent)), rel=1e-12, abs=1e-12)
    assert g.shape == x.shape and g.dtype == x.dtype
    for _ in range(2):
        direction = rng.standard_normal(x.shape)
        plus = np.sum(np.asarray(fn(x + eps * direction)) * cotangent)
        minus = np.sum(np.asarray(fn(x - eps * direction)) * cotangent)
        numeric = (plus - minus) / (2 * eps)
        assert numeric == pytest.approx(float(np.sum(g * direction)), rel=tol, abs=tol)
    return g


@settings(max_examples=50)
@given(
    case=st.one_of(upsampling_cases(), cropping_cases()),
    batch=st.integers(1, 2),
    channels=st.integers(1, 3),
    dtype=st.sampled_from(["float32", "float64"]),
    unknown=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_same_outputs_shapes_configs_and_gradients_as_keras(case, batch, channels, dtype, unknown, seed):
    name, config, spatial, data_format = case
    ours = getattr(layers, name)(**config, dtype=dtype)
    theirs = getattr(keras.layers, name)(**config, dtype=dtype)
    input_shape = _input_shape(batch, spatial, channels, data_format)
    x = np.random.default_rng(seed).standard_normal(input_shape).astype(dtype)

    expected = keras.ops.convert_to_numpy(theirs(x))
    got = ours(x)
    assert got.shape == expected.shape and got.dtype == np.dtype(dtype) == expected.dtype
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * scale)

    # shapes, also with an unknown batch (and, sometimes, an unknown spatial size)
    symbolic = list(input_shape)
    symbolic[0] = None
    if unknown:
        symbolic[1 if data_format == "channels_last" else 2] = None
    for shape in (input_shape, tuple(symbolic)):
        assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape))

    # configs: the same keys and values, and each side builds the other's layer
    our_config, their_config = ours.get_config(), theirs.get_config()
    assert set(our_config) == set(their_config)
    for key in our_config:
        if key != "name":
            assert _normalise(our_config[key]) == _normalise(their_config[key]), key
    assert _normalise(getattr(layers, name).from_config(their_config).get_config()) == _normalise(their_config)
    assert _normalise(getattr(keras.layers, name).from_config(our_config).get_config()) == _normalise(our_config)

    # gradients: float32 stays float32; float64 against finite differences
    fresh = getattr(layers, name).from_config({**our_config, "name": None})
    _check_gradient(
        fresh, x, seed=seed, tol=1e-3 if dtype == "float32" else 1e-7, eps=1e-2 if dtype == "float32" else 1e-6
    )


@pytest.mark.parametrize(
    "name,config,input_shape",
    [
        ("UpSampling2D", dict(size=(3, 2), interpolation="bilinear"), (2, 4, 3, 2)),
        ("UpSampling2D", dict(size=(2, 3), interpolation="bilinear", data_format="channels_first"), (1, 2, 3, 4)),
        ("UpSampling2D", dict(size=(1, 4), interpolation="bilinear"), (1, 1, 2, 1)),
        ("UpSampling3D", dict(size=(2, 1, 3), data_format="channels_first"), (1, 2, 2, 3, 2)),
        ("UpSampling1D", dict(size=3), (2, 4, 3)),
        ("Cropping3D", dict(cropping=((0, 1), (2, 0), (1, 1))), (1, 3, 4, 4, 2)),
        ("Cropping2D", dict(cropping=((2, 0), (0, 3)), data_format="channels_first"), (2, 1, 4, 5)),
        ("Cropping1D", dict(cropping=(0, 2)), (2, 5, 3)),
    ],
)
def test_gradients_match_finite_differences_and_keras(name, config, input_shape):
    x = np.random.default_rng(0).standard_normal(input_shape)
    g = _check_gradient(getattr(layers, name)(**config, dtype="float64"), x)
    # and torch's autograd through the Keras layer
    torch = keras.src.backend.torch.core.torch
    theirs = getattr(keras.layers, name)(**config, dtype="float64")
    t = torch.tensor(x, requires_grad=True)
    out = theirs(t)
    cotangent = np.random.default_rng(0).standard_normal(tuple(out.shape))
    (out * torch.tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape,repeats,axis",
    [((3, 4), 2, 1), ((2, 3, 2), 3, 0), ((2, 3), 2, None), ((4, 2), [1, 0, 3, 2], 0), ((2, 3), [2], -1)],
)
def test_repeat_op_matches_numpy_keras_and_finite_differences(x_shape, repeats, axis):
    x = np.random.default_rng(1).standard_normal(x_shape)
    expected = keras.ops.convert_to_numpy(keras.ops.repeat(x, np.asarray(repeats), axis=axis))
    np.testing.assert_array_equal(ops.repeat(x, repeats, axis=axis), expected)
    _check_gradient(lambda a: ops.repeat(a, repeats, axis=axis), x)
    g32 = value_and_grad(lambda a: ops.sum(ops.repeat(a, repeats, axis=axis)))(x.astype("float32"))[1]
    assert g32.dtype == np.float32


def test_upsampling_examples():
    x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(
        layers.UpSampling2D()(x)[0, :, :, 0], [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    )
    # half-pixel centres, edges clamped: [0, 1] → [0, 0.25, 0.75, 1]
    row = layers.UpSampling2D((1, 2), interpolation="bilinear")(np.array([[[[0.0], [1.0]]]]))
    np.testing.assert_allclose(row[0, 0, :, 0], [0, 0.25, 0.75, 1])
    assert layers.UpSampling2D(interpolation="BILINEAR").interpolation == "bilinear"


# ----------------------------------------------------------------------------- saving


def _rankconv_models():
    return {
        "1d": Sequential(
            [
                layers.Input((9, 4)),
                layers.UpSampling1D(3),
                layers.Cropping1D((2, 5)),
                layers.Conv1D(2, 3),
            ]
        ),
        "2d": Sequential(
            [
                layers.Input((3, 6, 5)),
                layers.Cropping2D(((1, 0), (2, 1)), data_format="channels_first"),
                layers.UpSampling2D((2, 3), data_format="channels_first", interpolation="bilinear"),
                layers.Conv2D(2, 3, data_format="channels_first"),
                layers.UpSampling2D(2, data_format="channels_first"),
            ]
        ),
        "3d": Sequential(
            [
                layers.Input((3, 4, 2, 2)),
                layers.UpSampling3D((1, 2, 3)),
                layers.Cropping3D(((0, 1), (1, 1), (2, 0))),
                layers.Flatten(),
                layers.Dense(3),
            ]
        ),
    }


def _keras_models():
    K = keras.layers
    return {
        "1d": keras.Sequential([keras.Input((9, 4)), K.UpSampling1D(3), K.Cropping1D((2, 5)), K.Conv1D(2, 3)]),
        "2d": keras.Sequential(
            [
                keras.Input((3, 6, 5)),
                K.Cropping2D(((1, 0), (2, 1)), data_format="channels_first"),
                K.UpSampling2D((2, 3), data_format="channels_first", interpolation="bilinear"),
                K.Conv2D(2, 3, data_format="channels_first"),
                K.UpSampling2D(2, data_format="channels_first"),
            ]
        ),
        "3d": keras.Sequential(
            [
                keras.Input((3, 4, 2, 2)),
                K.UpSampling3D((1, 2, 3)),
                K.Cropping3D(((0, 1), (1, 1), (2, 0))),
                K.Flatten(),
                K.Dense(3),
            ]
        ),
    }


def _batch(kind):
    shape = {"1d": (3, 9, 4), "2d": (2, 3, 6, 5), "3d": (2, 3, 4, 2, 2)}[kind]
    return np.random.default_rng(5).standard_normal(shape).astype("float32")


def _random_weights(model, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(w.shape)).astype("float32") * 0.5 for w in model.weights]


@pytest.mark.parametrize("kind", ["1d", "2d", "3d"])
def test_rankconv_file_loads_in_keras_with_same_predictions(kind, tmp_path):
    model = _rankconv_models()[kind]
    model.set_weights(_random_weights(model, 1))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    x = _batch(kind)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("kind", ["1d", "2d", "3d"])
def test_keras_file_loads_in_rankconv_with_same_predictions(kind, tmp_path):
    model = _keras_models()[kind]
    model.set_weights(_random_weights(model, 2))
    model.save(tmp_path / "model.keras")
    loaded = saving.load_model(tmp_path / "model.keras")
    x = _batch(kind)
    expected = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    for ours, theirs in zip(loaded.layers, model.layers):
        assert _normalise(ours.get_config()) == _normalise(theirs.get_config())


# ----------------------------------------------------------------------------- bad arguments and inputs


def _raises(build, error, *fragments, keras_build=None):
    """`build()` raises `error` whose message holds every fragment (argument, expected, received);
    Keras rejects the same thing (with `keras_build`, when its spelling differs)."""
    with pytest.raises(error) as info:
        build(layers)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    if keras_build is not False:
        with pytest.raises((ValueError, TypeError, AttributeError)):
            (keras_build or build)(keras.layers)


def test_negative_cropping_is_refused():
    _raises(lambda L: L.Cropping1D(-1), ValueError, "`cropping`", ">= 0", "cropping=-1")
    _raises(lambda L: L.Cropping1D((0, -3)), ValueError, "`cropping`", ">= 0", "cropping=(0, -3)")
    _raises(lambda L: L.Cropping2D(((1, -2), (0, 0))), ValueError, "`cropping[0]`", ">= 0", "(1, -2)")
    _raises(lambda L: L.Cropping2D((1, -1)), ValueError, "`cropping`", "must not be negative", "cropping=(1, -1)")
    _raises(lambda L: L.Cropping3D(-1), ValueError, "`cropping`", "must not be negative", "cropping=-1")


def test_malformed_cropping_is_refused():
    _raises(lambda L: L.Cropping1D((1, 2, 3)), ValueError, "`cropping`", "2 integers", "(1, 2, 3)")
    _raises(
        lambda L: L.Cropping2D((1, 2, 3)), ValueError, "`cropping`", "2 ints or 2 (before, after) pairs", "(1, 2, 3)"
    )
    _raises(lambda L: L.Cropping3D(None), ValueError, "`cropping`", "3 (before, after) pairs", "cropping=None")
    _raises(
        lambda L: L.Cropping2D(data_format="channels_middle"),
        ValueError,
        "`data_format`",
        "channels_first",
        "channels_middle",
    )


def test_cropping_that_removes_a_whole_axis_is_refused():
    _raises(
        lambda L: L.Cropping1D((2, 3))(np.zeros((1, 5, 2), "float32")),
        ValueError,
        "`cropping`",
        "at least one",
        "(2, 3) removes all 5 cells",
        "(1, 5, 2)",
    )
    _raises(
        lambda L: L.Cropping2D(((0, 0), (2, 2)))(L.Input((3, 4, 1)) if L is layers else keras.Input((3, 4, 1))),
        ValueError,
        "`cropping`",
        "(2, 2) removes all 4 cells of spatial axis 1",
    )
    _raises(
        lambda L: L.Cropping3D(((0, 0), (0, 0), (1, 2)), data_format="channels_first")(
            np.zeros((1, 1, 3, 3, 3), "float32")
        ),
        ValueError,
        "(1, 2) removes all 3 cells of spatial axis 2",
    )
    with pytest.raises(ValueError, match="removes all 4 cells"):
        layers.Cropping2D(((0, 0), (2, 2))).compute_output_shape((None, 3, 4, 1))


@pytest.mark.parametrize(
    "name,shape,axes",
    [
        ("UpSampling1D", (1, 3, 2, 2), 3),
        ("UpSampling2D", (1, 3, 2), 4),
        ("UpSampling3D", (1, 3, 2, 2), 5),
        ("Cropping1D", (1, 3), 3),
        ("Cropping2D", (1, 3, 3, 3, 1), 4),
        ("Cropping3D", (1, 3, 3, 3), 5),
    ],
)
def test_wrong_input_rank_is_refused(name, shape, axes):
    _raises(
        lambda L: getattr(L, name)()(np.zeros(shape, "float32")),
        ValueError,
        f"expects inputs with {axes} axes",
        f"received an input of shape {shape}",
    )


def test_bad_upsampling_arguments_are_refused():
    _raises(
        lambda L: L.UpSampling2D(interpolation="cubic")(np.zeros((1, 2, 2, 1), "float32")),
        ValueError,
        "`interpolation`",
        "('nearest', 'bilinear')",
        "interpolation='cubic'",
    )
    # Keras accepts 'bicubic' (its result depends on the backend); rankconv refuses it clearly
    _raises(
        lambda L: L.UpSampling2D(interpolation="bicubic"), ValueError, "`interpolation`", "'bicubic'", keras_build=False
    )
    _raises(lambda L: L.UpSampling2D(interpolation=None), TypeError, "`interpolation`", "interpolation=None")
    _raises(lambda L: L.UpSampling1D(2.5), TypeError, "`size`", "int", "size=2.5")
    _raises(lambda L: L.UpSampling1D(0), ValueError, "`size`", "positive", "size=0")
    _raises(lambda L: L.UpSampling2D((0, 1)), ValueError, "`size`", "> 0", "size=(0, 1)")
    _raises(lambda L: L.UpSampling3D((1, 2)), ValueError, "`size`", "3 integers", "size=(1, 2)")
