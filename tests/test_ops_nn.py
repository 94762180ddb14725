"""The neural-network ops of `rankconv.ops` (nn.py): activations, softmax, the differentiable
`conv`, and pooling. Forward against float64 formulas or loop references; each VJP (through
`rankconv.ops.grad`) against central finite differences in float64."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rankconv import ops
from rankconv.ops import grad, value_and_grad

from reference import reference_conv, reference_padding
from test_ops_convolution import _fits, conv_configs

seeds = st.integers(0, 2**16)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def check_op(fn, args, wrt, expected=None, seed=0, eps=1e-6, tol=1e-6, forward_tol=1e-12):
    """`fn(*args)` equals `expected`, and the gradient of `sum(fn(*args) * cotangent)` with respect
    to each argument in `wrt` matches central differences along two random directions."""
    rng = np.random.default_rng(seed)
    out = np.asarray(fn(*args))
    if expected is not None:
        assert out.shape == np.shape(expected)
        np.testing.assert_allclose(out, expected, rtol=forward_tol, atol=forward_tol)
    cotangent = rng.standard_normal(out.shape)
    value, grads = value_and_grad(lambda *a: ops.sum(ops.multiply(fn(*a), cotangent)), argnums=tuple(wrt))(*args)
    assert float(value) == pytest.approx(float(np.sum(out * cotangent)), rel=1e-12, abs=1e-12)
    for i, g in zip(wrt, grads):
        point = np.asarray(args[i], dtype=np.float64)
        assert g.shape == point.shape and g.dtype == np.float64, f"gradient of argument {i}"

        def f(p, i=i):
            moved = list(args)
            moved[i] = p
            return float(np.sum(np.asarray(fn(*moved)) * cotangent))

        for _ in range(2):
            direction = rng.standard_normal(point.shape)
            numeric = (f(point + eps * direction) - f(point - eps * direction)) / (2 * eps)
            assert numeric == pytest.approx(float(np.sum(g * direction)), rel=tol, abs=tol), f"argument {i}"
    return grads


def away_from(x, kinks, gap=1e-2):
    """Move values within `gap` of a kink by 3 * gap, so finite differences never straddle one."""
    for kink in kinks:
        x = np.where(np.abs(x - kink) < gap, x + 3 * gap, x)
    return x


# ----------------------------------------------------------------------------- activations


def keras_relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """keras.activations.relu, transcribed from Keras 3's ReLU.static_call (float64)."""
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return np.where(x >= 0, x, negative_slope * x)
        negative_part = np.maximum(-x + threshold, 0) if threshold != 0 else np.maximum(-x, 0)
    else:
        negative_part = 1
    clip_max = max_value is not None
    if threshold != 0:
        x = x * (x > threshold)
    elif max_value == 6:
        x = np.clip(x, 0, 6)
        clip_max = False
    else:
        x = np.maximum(x, 0)
    if clip_max:
        x = np.clip(x, 0, max_value)
    if negative_slope != 0.0:
        x = x - negative_slope * negative_part
    return x


def sigmoid64(x):
    return 1 / (1 + np.exp(-x))


def gelu_exact64(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def gelu_tanh64(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805

# name -> (op, float64 reference, kinks to stay away from, tolerance)
ACTIVATIONS = {
    "relu": (ops.relu, keras_relu, [0.0], 1e-6),
    "relu slope": (lambda x: ops.relu(x, negative_slope=0.1), lambda x: keras_relu(x, 0.1), [0.0], 1e-6),
    "relu max": (lambda x: ops.relu(x, max_value=1.5), lambda x: keras_relu(x, max_value=1.5), [0, 1.5], 1e-6),
    "relu max 6": (lambda x: ops.relu(x, max_value=6.0), lambda x: keras_relu(x, max_value=6.0), [0, 6], 1e-6),
    "relu threshold": (
        lambda x: ops.relu(x, threshold=0.5),
        lambda x: keras_relu(x, threshold=0.5),
        [0.5],
        1e-6,
    ),
    "relu negative threshold": (
        lambda x: ops.relu(x, threshold=-0.5),
        lambda x: keras_relu(x, threshold=-0.5),
        [-0.5],
        1e-6,
    ),
    "relu all": (
        lambda x: ops.relu(x, negative_slope=0.3, max_value=2.0, threshold=0.5),
        lambda x: keras_relu(x, 0.3, 2.0, 0.5),
        [0.5, 2.0],
        1e-6,
    ),
    "relu negative threshold max slope": (
        lambda x: ops.relu(x, negative_slope=0.2, max_value=3.0, threshold=-1.0),
        lambda x: keras_relu(x, 0.2, 3.0, -1.0),
        [-1.0, 0.0, 3.0],
        1e-6,
    ),
    "leaky_relu": (ops.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x), [0.0], 1e-6),
    "leaky_relu 0.05": (
        lambda x: ops.leaky_relu(x, negative_slope=0.05),
        lambda x: np.where(x > 0, x, 0.05 * x),
        [0.0],
        1e-6,
    ),
    "relu6": (ops.relu6, lambda x: np.minimum(np.maximum(x, 0), 6), [0, 6], 1e-6),
    "elu": (ops.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1), [0.0], 1e-6),
    "elu alpha": (lambda x: ops.elu(x, alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1)), [0.0], 1e-6),
    "selu": (ops.selu, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)), [0.0], 1e-6),
    "sigmoid": (ops.sigmoid, sigmoid64, [], 1e-6),
    "tanh": (ops.tanh, np.tanh, [], 1e-6),
    "softplus": (ops.softplus, lambda x: np.logaddexp(0, x), [], 1e-6),
    "softsign": (ops.softsign, lambda x: x / (1 + np.abs(x)), [0.0], 1e-6),
    "silu": (ops.silu, lambda x: x * sigmoid64(x), [], 1e-6),
    "swish": (ops.swish, lambda x: x * sigmoid64(x), [], 1e-6),
    # the exact form's forward uses a rational erf approximation (|error| < 1.5e-7) while its VJP uses the
    # exact pdf, so they disagree by up to ~1e-6 per element: the tolerance grows with the size
    "gelu exact": (lambda x: ops.gelu(x, approximate=False), gelu_exact64, [], None),
    "gelu tanh": (lambda x: ops.gelu(x, approximate=True), gelu_tanh64, [], 1e-6),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(shape=shapes, seed=seeds)
def test_activations_match_formulas_and_finite_differences(name, shape, seed):
    op, reference, kinks, tol = ACTIVATIONS[name]
    x = away_from(np.random.default_rng(seed).uniform(-4, 8, shape), kinks)
    forward_tol = 1e-6 if name == "gelu exact" else 1e-12
    tol = tol or 2e-6 * max(1, x.size)
    check_op(op, (x,), (0,), reference(x), seed, tol=tol, forward_tol=forward_tol)


def test_gelu_exact_gradient_is_the_normal_cdf_plus_x_times_the_pdf():
    x = np.linspace(-5, 5, 41)
    expected = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(grad(lambda t: ops.sum(ops.gelu(t, approximate=False)))(x), expected, atol=1e-6)


def test_gelu_default_is_keras_ops_default():
    # keras.ops.gelu(x, approximate=True): the tanh form unless asked otherwise
    x = np.linspace(-4, 4, 33)
    np.testing.assert_allclose(ops.gelu(x), gelu_tanh64(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        grad(lambda t: ops.sum(ops.gelu(t)))(x), grad(lambda t: ops.sum(ops.gelu(t, approximate=True)))(x)
    )


def test_relu_negative_threshold_with_max_value_matches_keras():
    # Keras clips x * (x > threshold) to [0, max_value]: values in (threshold, 0) become 0
    x = np.array([-2.0, -0.5, 0.3, 7.0])
    np.testing.assert_array_equal(ops.relu(x, threshold=-1.0, max_value=5.0), [0.0, 0.0, 0.3, 5.0])
    np.testing.assert_array_equal(ops.relu(x, threshold=-1.0, max_value=5.0), keras_relu(x, 0.0, 5.0, -1.0))
    g = grad(lambda t: ops.sum(ops.relu(t, threshold=-1.0, max_value=5.0)))(x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize(
    "op,option,keyword",
    [(ops.leaky_relu, 0.1, "negative_slope"), (ops.elu, 0.5, "alpha"), (ops.gelu, False, "approximate")],
    ids=["leaky_relu", "elu", "gelu"],
)
def test_activation_options_can_be_passed_positionally(op, option, keyword):
    x = np.array([-1.5, -0.2, 0.7])
    np.testing.assert_array_equal(op(x, option), op(x, **{keyword: option}))
    np.testing.assert_array_equal(
        grad(lambda t: ops.sum(op(t, option)))(x), grad(lambda t: ops.sum(op(t, **{keyword: option})))(x)
    )


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_keep_float32_and_compute_integers_in_float32(name):
    op = ACTIVATIONS[name][0]
    x = np.array([-3.0, -0.7, 0.4, 2.5, 7.5], np.float32)
    y, g = value_and_grad(lambda t: ops.sum(op(t)))(x)
    assert op(x).dtype == np.float32 and g.dtype == np.float32
    np.testing.assert_allclose(g, grad(lambda t: ops.sum(op(t)))(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    assert op(np.array([-2, 0, 3])).dtype == np.float32


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "silu", "tanh", "elu", "selu", "gelu exact", "gelu tanh"])
def test_activations_stay_finite_for_large_inputs(name):
    op, reference = ACTIVATIONS[name][:2]
    for dtype in (np.float32, np.float64):
        x = np.array([-1000.0, -80.0, 80.0, 1000.0], dtype)
        with np.errstate(over="raise", invalid="raise"):
            y = op(x)
            g = grad(lambda t: ops.sum(op(t)))(x)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))
    x = np.array([-1000.0, 1000.0])
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(op(x), np.nan_to_num(reference(x)), atol=1e-12)


# ----------------------------------------------------------------------------- softmax


@st.composite
def softmax_configs(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, axis


@given(config=softmax_configs(), seed=seeds, scale=st.sampled_from([1.0, 5.0]))
def test_softmax_over_any_axis(config, seed, scale):
    shape, axis = config
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    expected = np.exp(x) / np.sum(np.exp(x), axis=axis, keepdims=True)
    check_op(lambda t: ops.softmax(t, axis=axis), (x,), (0,), expected, seed)
    np.testing.assert_allclose(np.sum(ops.softmax(x, axis=axis), axis=axis), 1.0)


@given(config=softmax_configs(), seed=seeds, scale=st.sampled_from([1.0, 5.0]))
def test_log_softmax_over_any_axis(config, seed, scale):
    shape, axis = config
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    expected = x - np.log(np.sum(np.exp(x), axis=axis, keepdims=True))
    check_op(lambda t: ops.log_softmax(t, axis=axis), (x,), (0,), expected, seed)


def test_softmax_defaults_to_the_last_axis():
    x = np.random.default_rng(0).standard_normal((2, 3))
    np.testing.assert_allclose(ops.softmax(x), ops.softmax(x, axis=-1))
    np.testing.assert_allclose(ops.log_softmax(x), ops.log_softmax(x, axis=1))


def test_softmax_and_log_softmax_are_stable_for_large_logits():
    x = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = ops.softmax(x)
        lp = ops.log_softmax(x)
        g = grad(lambda t: ops.sum(ops.multiply(ops.log_softmax(t), np.array([1.0, 2.0, 3.0], np.float32))))(x)
    np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-7)
    np.testing.assert_allclose(lp, [[0, -1000, -2000], [-np.log(3)] * 3], rtol=1e-6)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [[-5, 2, 3], [-1, 0, 1]], atol=1e-5)


# ----------------------------------------------------------------------------- conv


@settings(max_examples=30)
@given(config=conv_configs(ranks=(1, 2, 3)), seed=seeds)
def test_differentiable_conv_matches_reference_and_finite_differences(config, seed):
    assume(_fits(config))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["x_shape"])
    if config["data_format"] == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    w = rng.standard_normal(config["kernel_shape"])
    options = dict(
        strides=config["strides"],
        padding=config["padding"],
        data_format=config["data_format"],
        dilation_rate=config["dilation"],
    )
    expected = reference_conv(x, w, config["strides"], config["padding"], config["dilation"], config["data_format"])
    check_op(lambda a, b: ops.conv(a, b, **options), (x, w), (0, 1), expected, seed, forward_tol=1e-10)


@settings(max_examples=25)
@given(
    config=conv_configs(ranks=(1, 2)),
    seed=seeds,
    activation=st.sampled_from(sorted(ops.FUSED_ACTIVATIONS)),
    with_bias=st.booleans(),
)
def test_fused_conv_is_activation_of_conv_plus_bias(config, seed, activation, with_bias):
    # the reference is the loop convolution, then the bias and the activation as separate ops
    assume(_fits(config))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["x_shape"])
    channels_first = config["data_format"] == "channels_first"
    if channels_first:
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    w = rng.standard_normal(config["kernel_shape"])
    bias = rng.standard_normal(w.shape[-1]) if with_bias else None
    options = dict(
        strides=config["strides"],
        padding=config["padding"],
        data_format=config["data_format"],
        dilation_rate=config["dilation"],
    )
    expected = reference_conv(x, w, config["strides"], config["padding"], config["dilation"], config["data_format"])
    if with_bias:
        expected = expected + (bias.reshape(-1, *[1] * (x.ndim - 2)) if channels_first else bias)
    formulas = {
        "linear": lambda v: v,
        "relu": lambda v: np.maximum(v, 0),
        "relu6": lambda v: np.clip(v, 0, 6),
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "tanh": np.tanh,
    }
    fused = ops.fused_conv(x, w, bias, activation, **options)
    np.testing.assert_allclose(fused, formulas[activation](expected), rtol=1e-10, atol=1e-10)
    args, wrt = ((x, w, bias), (0, 1, 2)) if with_bias else ((x, w), (0, 1))
    if activation in ("linear", "sigmoid", "tanh"):  # smooth: finite differences apply
        check_op(lambda *a: ops.fused_conv(*a[:2], a[2] if with_bias else None, activation, **options), args, wrt)
    # gradients equal the unfused composition's, kinks included (both use the same one-sided rule)
    cotangent = rng.standard_normal(fused.shape)

    def loss(fn):
        return lambda *a: ops.sum(ops.multiply(fn(*a), cotangent))

    def composed(a, b, c=None):
        y = ops.conv(a, b, **options)
        if c is not None:
            shape = [1] * y.ndim
            shape[1 if channels_first else -1] = -1
            y = ops.add(y, ops.reshape(c, shape))
        return y if activation == "linear" else getattr(ops, activation)(y)

    _, got = value_and_grad(
        loss(lambda *a: ops.fused_conv(*a[:2], a[2] if with_bias else None, activation, **options)), argnums=wrt
    )(*args)
    _, want = value_and_grad(loss(composed), argnums=wrt)(*args)
    for g, h in zip(got, want):
        np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-10)


def test_fused_conv_errors_name_the_argument():
    x, w = np.ones((1, 5, 2)), np.ones((3, 2, 4))
    with pytest.raises(ValueError, match="`activation` of fused_conv"):
        ops.fused_conv(x, w, None, "gelu")
    with pytest.raises(ValueError, match=r"`bias` must have shape \(4,\)"):
        ops.fused_conv(x, w, np.ones(3), "relu")


def test_fused_conv_keeps_float32():
    x, w = np.ones((1, 5, 2), np.float32), np.ones((3, 2, 4), np.float32)
    assert ops.fused_conv(x, w, np.ones(4, np.float32), "sigmoid").dtype == np.float32


@pytest.mark.parametrize("activation", ["relu", "relu6", "tanh", "sigmoid", "linear"])
def test_fused_conv_propagates_nan_like_numpy(activation):
    # the compiled epilogue must let NaN through as np.maximum / np.clip / np.tanh do; large inputs
    # saturate without overflow warnings turning into NaN
    x = np.array([[[np.nan], [1.0], [-1e4], [1e4], [2.0], [-3.0]]], np.float32)
    w = np.ones((1, 1, 1), np.float32)
    y = ops.fused_conv(x, w, np.zeros(1, np.float32), activation)
    with np.errstate(over="ignore"):
        expected = {
            "relu": np.maximum(x, 0),
            "relu6": np.clip(x, 0, 6),
            "tanh": np.tanh(x),
            "sigmoid": 1 / (1 + np.exp(-x)),
            "linear": x,
        }[activation]
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)
    assert np.isnan(y[0, 0, 0])


def test_conv_in_a_composite_function():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 7, 3))
    w = rng.standard_normal((3, 3, 4))
    bias = rng.standard_normal(4)

    def loss(x, w, bias):
        return ops.mean(ops.square(ops.relu(ops.add(ops.conv(x, w, padding="causal", dilation_rate=2), bias))))

    _, (dx, dw, db) = value_and_grad(loss, argnums=(0, 1, 2))(x, w, bias)
    for i, (point, g) in enumerate(zip((x, w, bias), (dx, dw, db))):
        direction = rng.standard_normal(point.shape)
        args = [x, w, bias]

        def f(p, i=i):
            moved = list(args)
            moved[i] = p
            return float(loss(*moved))

        numeric = (f(point + 1e-6 * direction) - f(point - 1e-6 * direction)) / 2e-6
        assert numeric == pytest.approx(float(np.sum(g * direction)), rel=1e-6, abs=1e-6)


# ----------------------------------------------------------------------------- pooling


def reference_pool(x, pool_size, strides, padding, data_format, kind):
    """Float64 loops over output cells: the max or the mean of the real (unpadded) cells of a window."""
    x = np.asarray(x, dtype=np.float64)
    if data_format == "channels_first":
        x = np.moveaxis(x, 1, -1)
    spatial = x.shape[1:-1]
    strides = pool_size if strides is None else strides
    pads = [reference_padding(n, k, s, 1, padding) for n, k, s in zip(spatial, pool_size, strides)]
    out = [(n + lo + hi - k) // s + 1 for n, (lo, hi), k, s in zip(spatial, pads, pool_size, strides)]
    y = np.empty((x.shape[0], *out, x.shape[-1]))
    for o in itertools.product(*(range(m) for m in out)):
        cells = []
        for t in itertools.product(*(range(k) for k in pool_size)):
            position = [o[i] * strides[i] + t[i] - pads[i][0] for i in range(len(spatial))]
            if all(0 <= p < n for p, n in zip(position, spatial)):
                cells.append(x[(slice(None), *position, slice(None))])
        y[(slice(None), *o, slice(None))] = np.max(cells, axis=0) if kind == "max" else np.mean(cells, axis=0)
    return np.moveaxis(y, -1, 1) if data_format == "channels_first" else y


@st.composite
def pool_configs(draw, ranks=(1, 2, 3)):
    rank = draw(st.sampled_from(ranks))
    small = rank == 3
    pool = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(rank))
    strides = draw(st.one_of(st.none(), st.tuples(*(st.integers(1, 3) for _ in range(rank)))))
    padding = draw(st.sampled_from(["valid", "same"]))
    minimum = pool if padding == "valid" else (1,) * rank
    spatial = tuple(draw(st.integers(m, m + (2 if small else 4))) for m in minimum)
    batch, channels = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    data_format = draw(st.sampled_from(["channels_last", "channels_first"]))
    shape = (batch, *spatial, channels) if data_format == "channels_last" else (batch, channels, *spatial)
    return dict(shape=shape, pool_size=pool, strides=strides, padding=padding, data_format=data_format)


def distinct(rng, shape):
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 + rng.uniform(0, 0.05, size) - size * 0.05).reshape(shape)


def _pool_args(config):
    # the tuple forms and the int shorthand both reach the op
    pool = config["pool_size"]
    pool = pool[0] if len(set(pool)) == 1 and len(pool) > 1 else pool
    return dict(pool_size=pool, strides=config["strides"], padding=config["padding"], data_format=config["data_format"])


@pytest.fixture(params=["compiled", "numpy"])
def pooling_kernels(request):
    """Pooling runs on compiled kernels where numba is on; the NumPy fallback must agree too."""
    from rankconv.ops import jit

    saved = jit._enabled
    jit._enabled = saved and request.param == "compiled"
    if request.param == "compiled" and not jit._enabled:
        pytest.skip(f"compiled kernels unavailable: {jit.unavailable_reason()}")
    yield request.param
    jit._enabled = saved


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=pool_configs(), seed=seeds)
def test_max_pool_matches_reference_and_finite_differences(pooling_kernels, config, seed):
    x = distinct(np.random.default_rng(seed), config["shape"])  # no ties inside a window
    expected = reference_pool(
        x, config["pool_size"], config["strides"], config["padding"], config["data_format"], "max"
    )
    check_op(lambda t: ops.max_pool(t, **_pool_args(config)), (x,), (0,), expected, seed)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=pool_configs(), seed=seeds)
def test_average_pool_matches_reference_and_finite_differences(pooling_kernels, config, seed):
    x = np.random.default_rng(seed).standard_normal(config["shape"])
    expected = reference_pool(
        x, config["pool_size"], config["strides"], config["padding"], config["data_format"], "average"
    )
    check_op(lambda t: ops.average_pool(t, **_pool_args(config)), (x,), (0,), expected, seed)


def test_same_average_pool_leaves_padding_out_of_the_count(pooling_kernels):
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)
    # ceil(5 / 2) = 3 windows; one zero of padding goes after: [1, 2], [3, 4], [5]
    np.testing.assert_allclose(ops.average_pool(x, 2, 2, "same")[0, :, 0], [1.5, 3.5, 5.0])
    np.testing.assert_allclose(grad(lambda t: ops.sum(ops.average_pool(t, 2, 2, "same")))(x)[0, :, 0], [0.5] * 4 + [1])
    # overlapping windows (stride 1 < pool 3): total pad 2, one on each side
    np.testing.assert_allclose(ops.average_pool(x, 3, 1, "same")[0, :, 0], [1.5, 2, 3, 4, 4.5])
    g = grad(lambda t: ops.sum(ops.average_pool(t, 3, 1, "same")))(x)[0, :, 0]
    np.testing.assert_allclose(g, [1 / 2 + 1 / 3, 1 / 2 + 2 / 3, 1, 2 / 3 + 1 / 2, 1 / 3 + 1 / 2])


def test_same_max_pool_never_picks_the_padding(pooling_kernels):
    x = -np.arange(1.0, 6.0).reshape(1, 5, 1)  # all negative: a zero pad would win
    np.testing.assert_array_equal(ops.max_pool(x, 3, 1, "same")[0, :, 0], [-1, -1, -2, -3, -4])
    np.testing.assert_array_equal(grad(lambda t: ops.sum(ops.max_pool(t, 3, 1, "same")))(x)[0, :, 0], [2, 1, 1, 1, 0])


def test_max_pool_ties_give_each_window_gradient_to_one_cell():
    x = np.ones((1, 5, 1))
    cotangent = np.array([1.0, 10.0, 100.0]).reshape(1, 3, 1)
    g = grad(lambda t: ops.sum(ops.multiply(ops.max_pool(t, 3, 1), cotangent)))(x)
    # windows [0..2], [1..3], [2..4]: the first maximum of each takes its gradient, as in PyTorch
    np.testing.assert_array_equal(g[0, :, 0], [1, 10, 100, 0, 0])
    x2 = np.ones((2, 4, 4, 3), np.float32)
    g2 = grad(lambda t: ops.sum(ops.max_pool(t, 2)))(x2)
    assert g2.dtype == np.float32 and g2.sum() == 2 * 4 * 3
    np.testing.assert_array_equal(g2[:, ::2, ::2], 1)


@pytest.mark.parametrize("op", [ops.max_pool, ops.average_pool])
def test_pools_keep_float32_and_read_integers_as_float32(op):
    x = np.random.default_rng(2).standard_normal((2, 5, 6, 3)).astype(np.float32)
    y, g = value_and_grad(lambda t: ops.sum(op(t, (2, 3), (1, 2), "same")))(x)
    assert op(x, 2).dtype == np.float32 and g.dtype == np.float32
    assert op(np.ones((1, 4, 1), np.int64), 2).dtype == np.float32


def test_pool_strides_default_to_pool_size():
    x = np.random.default_rng(3).standard_normal((1, 6, 6, 2))
    for op in (ops.max_pool, ops.average_pool):
        np.testing.assert_array_equal(op(x, (2, 3)), op(x, (2, 3), (2, 3)))
        assert op(x, (2, 3)).shape == (1, 3, 2, 2)


@pytest.mark.parametrize("op", [ops.max_pool, ops.average_pool])
def test_pool_errors(op):
    with pytest.raises(ValueError, match="larger than"):
        op(np.ones((1, 2, 3, 1)), 3)
    with pytest.raises(ValueError, match="padding"):
        op(np.ones((1, 6, 1)), 2, padding="causal")


def test_max_pool_ties_nan_and_dtype(pooling_kernels):
    """The first maximum of a window (in tap order) takes its gradient; NaN wins a window, as in
    np.maximum; float32 stays float32."""
    x = np.zeros((1, 4, 4, 2), np.float32)
    x[0, 0, 1, 1] = np.nan
    y = ops.max_pool(x, 2, 2)
    assert y.dtype == np.float32 and np.isnan(y[0, 0, 0, 1]) and (y[0, ..., 0] == 0).all()
    g = grad(lambda t: ops.sum(ops.max_pool(t, 2, 2)))(x[..., :1])
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1  # every window is a tie of zeros: its first cell takes the gradient
    np.testing.assert_array_equal(g[0, :, :, 0], expected)
    z = ops.average_pool(np.ones((2, 5, 3, 4, 3), np.float32), (2, 2, 2), 1, "same", "channels_first")
    assert z.dtype == np.float32 and z.shape == (2, 5, 3, 4, 3)
    np.testing.assert_allclose(z, 1, rtol=1e-6)
