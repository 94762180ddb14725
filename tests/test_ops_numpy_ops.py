"""The array ops of `rankconv.ops` (numpy_ops.py): forward against NumPy, and each VJP (through
`rankconv.ops.grad`) against central finite differences in float64, along random directions
with random cotangents."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rankconv import ops
from rankconv.ops import grad

seeds = st.integers(0, 2**16)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def check_op(fn, args, wrt, expected=None, seed=0, eps=1e-6, tol=1e-6, exact=False):
    """`fn(*args)` equals `expected`, and the gradient of `sum(fn(*args) * cotangent)` with respect
    to each argument in `wrt` matches central differences along two random directions."""
    rng = np.random.default_rng(seed)
    out = np.asarray(fn(*args))
    if expected is not None:
        expected = np.asarray(expected)
        assert out.shape == expected.shape
        if exact:
            np.testing.assert_array_equal(out, expected)
        else:
            np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    cotangent = rng.standard_normal(out.shape)
    grads = grad(lambda *a: ops.sum(ops.multiply(fn(*a), cotangent)), argnums=tuple(wrt))(*args)
    for i, g in zip(wrt, grads):
        point = np.asarray(args[i], dtype=np.float64)
        assert g.shape == point.shape, f"gradient of argument {i}"
        assert g.dtype == np.float64

        def f(p, i=i):
            moved = list(args)
            moved[i] = p
            return float(np.sum(np.asarray(fn(*moved)) * cotangent))

        for _ in range(2):
            direction = rng.standard_normal(point.shape)
            numeric = (f(point + eps * direction) - f(point - eps * direction)) / (2 * eps)
            assert numeric == pytest.approx(float(np.sum(g * direction)), rel=tol, abs=tol), f"argument {i}"
    return grads


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.5, shape)


def away_from_zero(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0) * rng.uniform(0.5, 2.0, shape)


def distinct(rng, shape):
    """Values at least 0.1 apart: no ties, and finite differences never cross one."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 + rng.uniform(0, 0.05, size) - size * 0.05).reshape(shape)


# ----------------------------------------------------------------------------- elementwise

BINARY = {
    "add": (ops.add, np.add, normal, normal),
    "subtract": (ops.subtract, np.subtract, normal, normal),
    "multiply": (ops.multiply, np.multiply, normal, normal),
    "divide": (ops.divide, np.true_divide, normal, away_from_zero),
    "true_divide": (ops.true_divide, np.true_divide, normal, away_from_zero),
    "power": (ops.power, np.power, positive, normal),
    "maximum": (ops.maximum, np.maximum, normal, normal),
    "minimum": (ops.minimum, np.minimum, normal, normal),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_binary_ops_broadcast_and_match_finite_differences(name, shapes, seed):
    op, reference, sample_a, sample_b = BINARY[name]
    rng = np.random.default_rng(seed)
    a, b = sample_a(rng, shapes.input_shapes[0]), sample_b(rng, shapes.input_shapes[1])
    if name in ("maximum", "minimum"):
        assume(np.min(np.abs(np.subtract(a, b)), initial=1.0) > 1e-3)  # not at a kink
    check_op(op, (a, b), (0, 1), reference(a, b), seed)


UNARY = {
    "negative": (ops.negative, np.negative, normal),
    "square": (ops.square, np.square, normal),
    "sqrt": (ops.sqrt, np.sqrt, positive),
    "exp": (ops.exp, np.exp, normal),
    "log": (ops.log, np.log, positive),
    "log1p": (ops.log1p, np.log1p, lambda rng, shape: rng.uniform(-0.5, 3.0, shape)),
    "abs": (ops.abs, np.abs, away_from_zero),
    "absolute": (ops.absolute, np.abs, away_from_zero),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=shapes, seed=seeds)
def test_unary_ops_match_numpy_and_finite_differences(name, shape, seed):
    op, reference, sample = UNARY[name]
    x = sample(np.random.default_rng(seed), shape)
    check_op(op, (x,), (0,), reference(x), seed)


@pytest.mark.parametrize(
    "fn,reference,sample",
    [
        (lambda x: ops.add(x, 2.0), lambda x: x + 2.0, normal),
        (lambda x: ops.subtract(2.0, x), lambda x: 2.0 - x, normal),
        (lambda x: ops.multiply(-3.0, x), lambda x: -3.0 * x, normal),
        (lambda x: ops.divide(2.0, x), lambda x: 2.0 / x, away_from_zero),
        (lambda x: ops.divide(x, 4), lambda x: x / 4, normal),
        (lambda x: ops.power(x, 3), lambda x: x**3, normal),  # negative bases, integer exponent
        (lambda x: ops.power(x, 2.5), lambda x: x**2.5, positive),
        (lambda x: ops.power(x, -1), lambda x: 1 / x, away_from_zero),
        (lambda x: ops.power(2.0, x), lambda x: 2.0**x, normal),
        (lambda x: ops.maximum(x, 0.1), lambda x: np.maximum(x, 0.1), away_from_zero),
        (lambda x: ops.minimum(0.1, x), lambda x: np.minimum(0.1, x), away_from_zero),
    ],
)
@given(shape=shapes, seed=seeds)
def test_ops_with_a_python_scalar_operand(fn, reference, sample, shape, seed):
    x = sample(np.random.default_rng(seed), shape)
    check_op(fn, (x,), (0,), reference(x), seed)


def test_power_gradient_with_respect_to_the_exponent_is_log_base_times_power():
    a, b = np.array([0.5, 2.0, 3.0]), np.array([1.5, -0.5, 2.0])
    da, db = grad(lambda x, y: ops.sum(ops.power(x, y)), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(da, b * a ** (b - 1))
    np.testing.assert_allclose(db, np.log(a) * a**b)


def test_power_gradient_with_respect_to_a_computed_scalar_exponent():
    # the exponent's value is a NumPy scalar (np.float64), not an ndarray: it still gets its gradient
    a = np.array([2.0, 3.0])
    db = grad(lambda b: ops.sum(ops.power(a, ops.multiply(b, 1.0))))(np.array(1.5))
    np.testing.assert_allclose(db, np.sum(np.log(a) * a**1.5))
    db = grad(lambda b: ops.sum(ops.power(a, ops.getitem(b, 1))))(np.array([0.5, 1.5]))
    np.testing.assert_allclose(db, [0.0, np.sum(np.log(a) * a**1.5)])


def test_maximum_and_minimum_ties_send_the_whole_gradient_to_one_side():
    x = np.array([1.0, 2.0, 3.0])
    for op in (ops.maximum, ops.minimum):
        da, db = grad(lambda a, b, op=op: ops.sum(op(a, b)), argnums=(0, 1))(x, x.copy())
        np.testing.assert_array_equal(da + db, np.ones(3))  # a valid subgradient: nothing lost or doubled


@given(shape=shapes, seed=seeds)
def test_clip_passes_the_gradient_inside_the_range_only(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, shape)
    x = np.where(np.abs(x + 0.5) < 1e-2, x + 0.05, x)
    x = np.where(np.abs(x - 0.7) < 1e-2, x + 0.05, x)
    grads = check_op(lambda t: ops.clip(t, -0.5, 0.7), (x,), (0,), np.clip(x, -0.5, 0.7), seed)
    cotangent_free = grad(lambda t: ops.sum(ops.clip(t, -0.5, 0.7)))(x)
    np.testing.assert_array_equal(cotangent_free, ((x > -0.5) & (x < 0.7)).astype(float))
    assert grads[0].shape == np.shape(x)


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_where_routes_the_gradient_by_the_condition(shapes, seed):
    rng = np.random.default_rng(seed)
    condition = rng.random(shapes.input_shapes[0]) < 0.5
    a, b = normal(rng, shapes.input_shapes[1]), normal(rng, shapes.input_shapes[2])
    check_op(lambda x, y: ops.where(condition, x, y), (a, b), (0, 1), np.where(condition, a, b), seed)


def test_where_with_scalar_branches():
    condition = np.array([True, False, True])
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(grad(lambda t: ops.sum(ops.where(condition, t, 0.0)))(x), [1, 0, 1])
    np.testing.assert_array_equal(grad(lambda t: ops.sum(ops.where(condition, 1.0, t)))(x), [0, 1, 0])


def test_cast_forward_and_gradient_in_the_source_dtype():
    x = np.array([1.5, -2.25, 3.0])
    assert ops.cast(x, "float32").dtype == np.float32
    np.testing.assert_array_equal(ops.cast(x, "float32"), x.astype(np.float32))
    cotangent = np.array([1.0, 2.0, 3.0], np.float32)
    g = grad(lambda t: ops.sum(ops.multiply(ops.cast(t, "float32"), cotangent)))(x)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, cotangent)
    g32 = grad(lambda t: ops.sum(ops.square(ops.cast(t, "float64"))))(x.astype(np.float32))
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, 2 * x)
    np.testing.assert_array_equal(ops.cast(np.array([1.7, -1.7]), "int32"), [1, -1])


# ----------------------------------------------------------------------------- reductions


@st.composite
def reduction_configs(draw):
    shape = draw(nonscalar_shapes)
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple", "list"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-ndim, ndim - 1))
    else:
        axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        axes = [a - ndim if draw(st.booleans()) else a for a in axes]
        axis = tuple(axes) if kind == "tuple" else axes
    return shape, axis, draw(st.booleans())


def _np_axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _logsumexp_reference(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=_np_axis(axis), keepdims=keepdims))


REDUCTIONS = {
    "sum": (ops.sum, lambda x, axis, keepdims: np.sum(x, axis=_np_axis(axis), keepdims=keepdims), normal),
    "mean": (ops.mean, lambda x, axis, keepdims: np.mean(x, axis=_np_axis(axis), keepdims=keepdims), normal),
    "max": (ops.max, lambda x, axis, keepdims: np.max(x, axis=_np_axis(axis), keepdims=keepdims), distinct),
    "min": (ops.min, lambda x, axis, keepdims: np.min(x, axis=_np_axis(axis), keepdims=keepdims), distinct),
    "amax": (ops.amax, lambda x, axis, keepdims: np.max(x, axis=_np_axis(axis), keepdims=keepdims), distinct),
    "amin": (ops.amin, lambda x, axis, keepdims: np.min(x, axis=_np_axis(axis), keepdims=keepdims), distinct),
    "logsumexp": (ops.logsumexp, _logsumexp_reference, normal),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(config=reduction_configs(), seed=seeds)
def test_reductions_over_any_axes(name, config, seed):
    op, reference, sample = REDUCTIONS[name]
    shape, axis, keepdims = config
    x = sample(np.random.default_rng(seed), shape)
    check_op(lambda t: op(t, axis=axis, keepdims=keepdims), (x,), (0,), reference(x, axis, keepdims), seed)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_default_to_all_axes(name):
    op, reference, sample = REDUCTIONS[name]
    x = sample(np.random.default_rng(0), (2, 3))
    check_op(op, (x,), (0,), reference(x, None, False))
    assert np.shape(op(x)) == ()


@pytest.mark.parametrize("op,extreme", [(ops.max, 3.0), (ops.min, -1.0)])
def test_ties_share_the_gradient_of_max_and_min_equally(op, extreme):
    x = np.array([[1.0, 3.0, 3.0, -1.0], [3.0, -1.0, 0.5, -1.0], [3.0, 3.0, 3.0, -1.0]])
    ties = x == extreme
    # over everything: every tied cell gets 1/count
    np.testing.assert_allclose(grad(lambda t: op(t))(x), ties / ties.sum())
    # per row (with a cotangent): the row's cotangent split among the row's tied cells
    rows = x == (x.max(1, keepdims=True) if extreme > 0 else x.min(1, keepdims=True))
    cotangent = np.array([2.0, -1.0, 3.0])
    for keepdims in (False, True):
        c = cotangent[:, None] if keepdims else cotangent
        g = grad(lambda t, k=keepdims, c=c: ops.sum(ops.multiply(op(t, axis=1, keepdims=k), c)))(x)
        np.testing.assert_allclose(g, rows / rows.sum(1, keepdims=True) * cotangent[:, None])
    # over a tuple of axes
    cube = np.stack([x, x])
    g = grad(lambda t: ops.sum(op(t, axis=(0, 2))))(cube)
    expected = np.stack([rows, rows]) / (2 * rows.sum(1, keepdims=True))
    np.testing.assert_allclose(g, expected)


def test_tied_max_gradient_keeps_float32():
    x = np.array([2.0, 2.0, 1.0], np.float32)
    g = grad(lambda t: ops.max(t))(x)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, [0.5, 0.5, 0.0])


def test_logsumexp_is_stable_for_large_inputs():
    x = np.array([[1000.0, 1000.0], [-1000.0, -1001.0]])
    np.testing.assert_allclose(ops.logsumexp(x, axis=1), [1000 + np.log(2), -1000 + np.log1p(np.exp(-1))])
    g = grad(lambda t: ops.sum(ops.logsumexp(t, axis=1)))(x)
    np.testing.assert_allclose(g, [[0.5, 0.5], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))]])


def test_mean_of_integers_is_float():
    assert ops.mean(np.array([1, 2])).dtype.kind == "f"
    assert float(ops.mean(np.array([1, 2]))) == 1.5


# ----------------------------------------------------------------------------- products

MATMUL_SHAPES = [
    ((4,), (4,)),
    ((4,), (4, 3)),
    ((2, 4), (4,)),
    ((2, 4), (4, 3)),
    ((5, 2, 4), (5, 4, 3)),
    ((5, 2, 4), (4, 3)),
    ((2, 4), (5, 4, 3)),
    ((4,), (5, 4, 3)),
    ((5, 2, 4), (4,)),
    ((2, 1, 3, 4), (1, 5, 4, 2)),
    ((2, 3, 1, 4), (4, 2)),
    ((1, 2, 4), (3, 4, 2)),
]


@pytest.mark.parametrize("shape_a,shape_b", MATMUL_SHAPES, ids=str)
def test_matmul_all_ranks_and_broadcasting(shape_a, shape_b):
    rng = np.random.default_rng(len(shape_a) * 10 + len(shape_b))
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    check_op(ops.matmul, (a, b), (0, 1), np.matmul(a, b))


@pytest.mark.parametrize(
    "shape_a,shape_b", [((4,), (4,)), ((2, 4), (4, 3)), ((2, 4), (4,)), ((4,), (4, 3)), ((5, 2, 4), (4, 3))], ids=str
)
def test_dot_matches_numpy_dot(shape_a, shape_b):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    check_op(ops.dot, (a, b), (0, 1), np.dot(a, b))


def test_dot_with_a_scalar_multiplies():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((2, 3))
    np.testing.assert_allclose(ops.dot(a, 2.5), a * 2.5)
    np.testing.assert_allclose(ops.dot(np.array(2.5), a), a * 2.5)
    check_op(lambda x: ops.dot(x, np.array(2.5)), (a,), (0,), a * 2.5)


def test_dot_gradient_with_respect_to_a_scalar_operand():
    a = np.array([2.0, 3.0])
    ds = grad(lambda s: ops.sum(ops.dot(s, a)))(np.array(1.5))
    assert np.shape(ds) == ()
    np.testing.assert_allclose(ds, 5.0)
    check_op(ops.dot, (np.array(1.5), np.arange(6.0).reshape(2, 3)), (0, 1), 1.5 * np.arange(6.0).reshape(2, 3))
    check_op(ops.dot, (np.arange(3.0), np.array(-2.0)), (0, 1), -2.0 * np.arange(3.0))


# ----------------------------------------------------------------------------- shapes


@given(shape=nonscalar_shapes, seed=seeds, data=st.data())
def test_reshape(shape, seed, data):
    size = int(np.prod(shape))
    divisors = [d for d in range(1, size + 1) if size % d == 0]
    first = data.draw(st.sampled_from(divisors))
    new_shape = data.draw(st.sampled_from([(first, size // first), (first, -1), (-1,), (size // first, 1, first)]))
    x = normal(np.random.default_rng(seed), shape)
    check_op(lambda t: ops.reshape(t, new_shape), (x,), (0,), np.reshape(x, new_shape), seed, exact=True)


@given(shape=shapes, seed=seeds, data=st.data())
def test_transpose(shape, seed, data):
    ndim = len(shape)
    axes = data.draw(st.one_of(st.none(), st.permutations(range(ndim))))
    if axes is not None and data.draw(st.booleans()):
        axes = [a - ndim for a in axes]  # negative axes
    x = normal(np.random.default_rng(seed), shape)
    check_op(lambda t: ops.transpose(t, axes), (x,), (0,), np.transpose(x, axes), seed, exact=True)


@given(shape=shapes, seed=seeds, data=st.data())
def test_expand_dims(shape, seed, data):
    ndim = len(shape)
    axis = data.draw(st.one_of(st.integers(-ndim - 1, ndim), st.just((0, -1)) if ndim else st.just(0)))
    x = normal(np.random.default_rng(seed), shape)
    check_op(lambda t: ops.expand_dims(t, axis), (x,), (0,), np.expand_dims(x, axis), seed, exact=True)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3), seed=seeds, data=st.data())
def test_squeeze(shape, seed, data):
    ones = [i for i, n in enumerate(shape) if n == 1]
    choices = [None] + ones + [i - len(shape) for i in ones] + ([tuple(ones)] if ones else [])
    axis = data.draw(st.sampled_from(choices))
    x = normal(np.random.default_rng(seed), shape)
    check_op(lambda t: ops.squeeze(t, axis=axis), (x,), (0,), np.squeeze(x, axis=axis), seed, exact=True)


@given(shape=nonscalar_shapes, seed=seeds, data=st.data())
def test_pad(shape, seed, data):
    ndim = len(shape)
    form = data.draw(st.sampled_from(["int", "pair", "per-axis"]))
    width = st.integers(0, 2)
    if form == "int":
        pad_width = data.draw(width)
    elif form == "pair":
        pad_width = (data.draw(width), data.draw(width))
    else:
        pad_width = tuple((data.draw(width), data.draw(width)) for _ in range(ndim))
    constant = data.draw(st.sampled_from([None, 0.0, -1.5]))
    x = normal(np.random.default_rng(seed), shape)
    expected = np.pad(x, pad_width, constant_values=0.0 if constant is None else constant)
    check_op(lambda t: ops.pad(t, pad_width, constant_values=constant), (x,), (0,), expected, seed, exact=True)


def test_pad_rejects_other_modes():
    with pytest.raises(ValueError, match="mode='constant' only"):
        ops.pad(np.ones(3), 1, mode="reflect")


@given(
    shape=nonscalar_shapes,
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    traced=st.lists(st.booleans(), min_size=4, max_size=4),
    seed=seeds,
    data=st.data(),
)
def test_concatenate(shape, sizes, traced, seed, data):
    ndim = len(shape)
    axis = data.draw(st.integers(-ndim, ndim - 1))
    rng = np.random.default_rng(seed)
    parts = []
    for n in sizes:
        part_shape = list(shape)
        part_shape[axis] = n
        parts.append(rng.standard_normal(part_shape))
    wrt = tuple(i for i in range(len(parts)) if traced[i]) or (0,)
    check_op(
        lambda *xs: ops.concatenate(list(xs), axis=axis), parts, wrt, np.concatenate(parts, axis), seed, exact=True
    )


def test_concatenate_defaults_to_axis_0():
    a, b = np.ones((1, 2)), np.zeros((2, 2))
    np.testing.assert_array_equal(ops.concatenate([a, b]), np.concatenate([a, b]))
    da, db = grad(lambda x, y: ops.sum(ops.concatenate([x, y]) * np.arange(6.0).reshape(3, 2)), argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(da, [[0, 1]])
    np.testing.assert_array_equal(db, [[2, 3], [4, 5]])


def test_concatenate_a_tracer_with_a_nested_list():
    g = grad(lambda t: ops.sum(ops.concatenate([t, [[1.0, 2.0]]])))(np.ones((1, 2)))
    np.testing.assert_array_equal(g, np.ones((1, 2)))


@given(shape=shapes, count=st.integers(1, 3), seed=seeds, data=st.data())
def test_stack(shape, count, seed, data):
    ndim = len(shape)
    axis = data.draw(st.integers(-ndim - 1, ndim))
    rng = np.random.default_rng(seed)
    parts = [rng.standard_normal(shape) for _ in range(count)]
    check_op(lambda *xs: ops.stack(list(xs), axis=axis), parts, range(count), np.stack(parts, axis), seed, exact=True)


GETITEM_INDICES = {
    "int": (1,),
    "negative int": (-1, 2),
    "slice": np.s_[:, 1:3],
    "strided": np.s_[::2, :, 1::2],
    "reversed": np.s_[::-1, ::-2],
    "ellipsis": np.s_[..., 1],
    "newaxis": np.s_[None, 0, :, None],
    "fancy with repeats": ([0, 2, 0, 0],),
    "fancy pairs with repeats": (np.array([0, 2, 0]), np.array([1, 1, 1])),
    "slice and fancy": np.s_[1:, [3, 3, 0]],
    "boolean mask": "mask",
    "scalar element": (2, 3, 4),
}


@pytest.mark.parametrize("name", sorted(GETITEM_INDICES))
def test_getitem(name):
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal((3, 4, 5))
    index = GETITEM_INDICES[name]
    if isinstance(index, str):
        index = x > 0.3
    grads = check_op(lambda t: ops.getitem(t, index), (x,), (0,), x[index], exact=True)
    # the gradient is the cotangent scattered back (summed where an element is read twice)
    ones = grad(lambda t: ops.sum(ops.getitem(t, index)))(x)
    expected = np.zeros_like(x)
    np.add.at(expected, index, 1.0)
    np.testing.assert_array_equal(ones, expected)
    assert grads[0].shape == x.shape


@st.composite
def take_configs(draw, negative_indices=True):
    shape = draw(nonscalar_shapes)
    ndim = len(shape)
    axis = draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1)))
    n = int(np.prod(shape)) if axis is None else shape[axis]
    low = -n if negative_indices and axis is not None else 0
    index_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=5))
    indices = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(low, n - 1)))
    return shape, axis, indices


@given(config=take_configs(), seed=seeds)
def test_take(config, seed):
    shape, axis, indices = config
    x = normal(np.random.default_rng(seed), shape)
    check_op(lambda t: ops.take(t, indices, axis=axis), (x,), (0,), np.take(x, indices, axis=axis), seed, exact=True)


def test_take_with_repeated_indices_sums_their_gradients():
    table = np.arange(12.0).reshape(4, 3)
    ids = np.array([[1, 1, 3], [1, 0, 3]])
    cotangent = np.random.default_rng(3).standard_normal((2, 3, 3))
    g = grad(lambda t: ops.sum(ops.multiply(ops.take(t, ids, axis=0), cotangent)))(table)
    expected = np.zeros_like(table)
    np.add.at(expected, ids, cotangent)
    np.testing.assert_allclose(g, expected)
    np.testing.assert_array_equal(g[2], 0)
    # along the last axis, with negative ids naming the same column as positive ones
    g = grad(lambda t: ops.sum(ops.take(t, np.array([-1, 2, 0]), axis=-1)))(table)
    np.testing.assert_array_equal(g, np.tile([1.0, 0.0, 2.0], (4, 1)))


def test_take_without_axis_and_negative_indices():
    # -1 and size - 1 name the same element of the flattened array: their gradients add up
    g = grad(lambda t: ops.sum(ops.take(t, np.array([-1, 2]))))(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 2.0])
    x = np.arange(6.0).reshape(2, 3)
    check_op(lambda t: ops.take(t, np.array([[-1, 5], [0, -6]])), (x,), (0,), np.take(x, [[-1, 5], [0, -6]]))
    g = grad(lambda t: ops.sum(ops.take(t, np.array([[-1, 5], [0, -6]]))))(x)
    np.testing.assert_array_equal(g, [[2, 0, 0], [0, 0, 2]])


@st.composite
def take_along_axis_configs(draw):
    shape = draw(nonscalar_shapes)
    ndim = len(shape)
    axis = draw(st.integers(-ndim, ndim - 1))
    n = shape[axis]
    index_shape = list(shape)
    index_shape[axis] = draw(st.integers(1, 5))
    indices = draw(hnp.arrays(np.int64, tuple(index_shape), elements=st.integers(-n, n - 1)))
    return shape, axis, indices


@given(config=take_along_axis_configs(), seed=seeds)
def test_take_along_axis(config, seed):
    shape, axis, indices = config
    x = normal(np.random.default_rng(seed), shape)
    expected = np.take_along_axis(x, indices, axis=axis)
    check_op(lambda t: ops.take_along_axis(t, indices, axis=axis), (x,), (0,), expected, seed, exact=True)


def test_take_along_axis_repeated_indices():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    indices = np.array([[2, 2, 0, -1], [1, 1, 1, 1]])
    np.testing.assert_array_equal(ops.take_along_axis(x, indices, axis=1), [[3, 3, 1, 3], [5, 5, 5, 5]])
    g = grad(lambda t: ops.sum(ops.take_along_axis(t, indices, axis=1)))(x)
    np.testing.assert_array_equal(g, [[1, 0, 3], [0, 4, 0]])


def test_take_along_axis_without_axis():
    # Keras's default axis=None: 1-d indices into the flattened array
    x = np.arange(6.0).reshape(2, 3)
    indices = np.array([0, 5, 5, -1, 2])
    np.testing.assert_array_equal(ops.take_along_axis(x, indices), [0, 5, 5, 5, 2])
    g = grad(lambda t: ops.sum(ops.take_along_axis(t, indices, axis=None)))(x)
    np.testing.assert_array_equal(g, [[1, 0, 1], [0, 0, 3]])
    check_op(lambda t: ops.take_along_axis(t, indices), (x,), (0,), x.reshape(-1)[indices])


def test_take_along_axis_with_broadcast_indices():
    x = np.arange(12.0).reshape(3, 4)
    indices = np.array([[0, 3]])  # broadcasts over the 3 rows
    np.testing.assert_array_equal(ops.take_along_axis(x, indices, axis=1), x[:, [0, 3]])
    g = grad(lambda t: ops.sum(ops.take_along_axis(t, indices, axis=1)))(x)
    np.testing.assert_array_equal(g, np.tile([1.0, 0.0, 0.0, 1.0], (3, 1)))
    cube = np.arange(24.0).reshape(2, 3, 4)
    indices = np.array([[[1], [0], [1]]])  # (1, 3, 1): broadcast over axis 0 and axis 2
    check_op(lambda t: ops.take_along_axis(t, indices, axis=0), (cube,), (0,), np.take_along_axis(cube, indices, 0))


def test_take_along_axis_with_x_broadcast_against_indices():
    x = np.arange(4.0).reshape(1, 4)
    indices = np.array([[0, 3], [1, 1], [2, 0]])
    np.testing.assert_array_equal(ops.take_along_axis(x, indices, axis=1), [[0, 3], [1, 1], [2, 0]])
    g = grad(lambda t: ops.sum(ops.take_along_axis(t, indices, axis=1)))(x)
    np.testing.assert_array_equal(g, [[2.0, 2.0, 1.0, 1.0]])


# ----------------------------------------------------------------------------- float32


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: ops.add(x, np.float32(1)),
        lambda x: ops.subtract(1.0, x),
        lambda x: ops.divide(x, ops.add(ops.square(x), 1.0)),
        lambda x: ops.sqrt(ops.add(ops.square(x), 1.0)),
        lambda x: ops.log(ops.add(ops.square(x), 1.0)),
        lambda x: ops.log1p(ops.square(x)),
        lambda x: ops.exp(x),
        lambda x: ops.abs(x),
        lambda x: ops.power(ops.abs(x), 1.5),
        lambda x: ops.clip(x, -0.5, 0.5),
        lambda x: ops.maximum(x, 0.0),
        lambda x: ops.minimum(x, 0.0),
        lambda x: ops.sum(x, axis=0),
        lambda x: ops.mean(x, axis=(0, 1), keepdims=True),
        lambda x: ops.max(x, axis=1),
        lambda x: ops.min(x),
        lambda x: ops.logsumexp(x, axis=-1),
        lambda x: ops.matmul(x, ops.transpose(x)),
        lambda x: ops.dot(x[0], x[1]),
        lambda x: ops.reshape(x, (-1,)),
        lambda x: ops.expand_dims(x, 1),
        lambda x: ops.squeeze(ops.expand_dims(x, 0)),
        lambda x: ops.pad(x, ((1, 0), (0, 2))),
        lambda x: ops.concatenate([x, x], axis=1),
        lambda x: ops.stack([x, x]),
        lambda x: ops.getitem(x, (slice(None), [0, 0])),
        lambda x: ops.take(x, np.array([2, 2]), axis=1),
        lambda x: ops.take_along_axis(x, np.array([[0, 0], [1, 2]]), axis=1),
        lambda x: ops.where(np.array([True, False, True]), x, 0.0),
    ],
)
def test_float32_inputs_get_float32_gradients(fn):
    x = np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32)
    out = fn(x)
    assert np.asarray(out).dtype == np.float32
    g = grad(lambda t: ops.sum(fn(t)))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, grad(lambda t: ops.sum(fn(t)))(x.astype(np.float64)), rtol=1e-4, atol=1e-5)
