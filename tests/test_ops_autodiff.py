"""The autodiff API: `grad`, `value_and_grad`, `GradientTape` over `Variable`s, `stop_gradient`,
and the `Tracer` operators. Gradients are checked against closed forms and central finite
differences in float64."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankconv import ops
from rankconv.ops import GradientTape, Tracer, Variable, grad, stop_gradient, value_and_grad
from rankconv.ops import autodiff as autodiff_module


def _finite_difference(f, x, direction, eps=1e-6):
    return (f(x + eps * direction) - f(x - eps * direction)) / (2 * eps)


def _directional_check(f, gradient, point, rng, eps=1e-6, tol=1e-6):
    """<gradient, v> must equal the derivative of scalar f along random directions v."""
    for _ in range(2):
        direction = rng.standard_normal(np.shape(point))
        numeric = _finite_difference(lambda p: float(f(p)), np.asarray(point, np.float64), direction, eps)
        analytic = float(np.sum(gradient * direction))
        assert numeric == pytest.approx(analytic, rel=tol, abs=tol)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------------- grad / value_and_grad


def _f(x, y):
    return ops.sum(ops.add(ops.multiply(x, y), ops.exp(x)))


def test_grad_with_integer_argnums_differentiates_that_argument(rng):
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    np.testing.assert_allclose(grad(_f)(x, y), y + np.exp(x), rtol=1e-12)
    np.testing.assert_allclose(grad(_f, argnums=1)(x, y), x, rtol=1e-12)
    assert isinstance(grad(_f)(x, y), np.ndarray)


def test_value_and_grad_returns_the_value_and_a_tuple_for_tuple_argnums(rng):
    x, y = rng.standard_normal(4), rng.standard_normal(4)
    value, (dy, dx) = value_and_grad(_f, argnums=(1, 0))(x, y)
    assert isinstance(value, np.ndarray | np.floating) and not isinstance(value, Tracer)
    assert float(value) == pytest.approx(float(np.sum(x * y + np.exp(x))), rel=1e-12)
    np.testing.assert_allclose(dx, y + np.exp(x), rtol=1e-12)
    np.testing.assert_allclose(dy, x, rtol=1e-12)


def test_sequence_argnums_of_one_still_gives_a_tuple(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    for argnums in ((0,), [0]):
        grads = grad(_f, argnums=argnums)(x, y)
        assert isinstance(grads, tuple) and len(grads) == 1
        np.testing.assert_allclose(grads[0], y + np.exp(x))


def test_negative_argnums_names_arguments_from_the_end(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    np.testing.assert_allclose(grad(_f, argnums=-1)(x, y), x)


def test_grad_equals_value_and_grad(rng):
    x, y = rng.standard_normal(5), rng.standard_normal(5)
    value, (dx, dy) = value_and_grad(_f, argnums=(0, 1))(x, y)
    gx, gy = grad(_f, argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(dx, gx)
    np.testing.assert_array_equal(dy, gy)


def test_keyword_arguments_are_passed_through_undifferentiated(rng):
    seen = {}

    def f(x, *, scale, offset=0.0):
        seen["scale"] = scale
        return ops.sum(ops.multiply(ops.square(ops.add(x, offset)), scale))

    x = rng.standard_normal(3)
    value, dx = value_and_grad(f)(x, scale=3.0, offset=0.5)
    assert seen["scale"] == 3.0
    assert float(value) == pytest.approx(float(np.sum(3.0 * (x + 0.5) ** 2)))
    np.testing.assert_allclose(dx, 6.0 * (x + 0.5))


def test_non_differentiated_positional_arguments_stay_plain_arrays(rng):
    kinds = {}

    def f(x, y, labels):
        kinds.update(x=type(x), y=type(y), labels=type(labels))
        return ops.sum(ops.multiply(x, y)) + float(np.sum(labels))

    grad(f)(rng.standard_normal(2), rng.standard_normal(2), np.array([1, 2]))
    assert kinds == {"x": Tracer, "y": np.ndarray, "labels": np.ndarray}


def test_wrapped_function_keeps_its_name_and_doc():
    def my_loss(x):
        """Doc."""
        return ops.sum(x)

    assert grad(my_loss).__name__ == "my_loss" and grad(my_loss).__doc__ == "Doc."
    assert value_and_grad(my_loss).__name__ == "my_loss"


def test_variables_can_be_differentiated_as_arguments(rng):
    w = Variable(rng.standard_normal(3), "w")
    np.testing.assert_allclose(grad(lambda v: ops.sum(ops.square(v)))(w), 2 * w.value)


def test_identity_of_a_scalar_has_gradient_one():
    np.testing.assert_array_equal(grad(lambda x: x)(np.array(2.5)), 1.0)


def test_size_one_outputs_count_as_scalars():
    value, dx = value_and_grad(lambda x: ops.multiply(x, 3.0))(np.array([2.0]))
    np.testing.assert_array_equal(value, [6.0])
    np.testing.assert_array_equal(dx, [3.0])


# ----------------------------------------------------------------------------- fan-out, constants


def test_a_value_used_several_times_accumulates_its_gradients(rng):
    x = rng.standard_normal((2, 3))

    def f(x):  # x feeds four ops; y feeds three
        y = ops.multiply(x, 2.0)
        return ops.sum(ops.add(ops.multiply(y, y), y)) + ops.sum(ops.multiply(x, x)) + ops.sum(x)

    # d/dx [4x² + 2x + x² + x] = 10x + 3
    np.testing.assert_allclose(grad(f)(x), 10 * x + 3, rtol=1e-12)


def test_the_same_tracer_in_both_slots_of_one_op(rng):
    x = rng.standard_normal(4)
    np.testing.assert_allclose(grad(lambda t: ops.sum(ops.multiply(t, t)))(x), 2 * x)
    np.testing.assert_allclose(grad(lambda t: ops.sum(ops.add(t, t)))(x), np.full(4, 2.0))
    np.testing.assert_allclose(grad(lambda t: ops.sum(ops.divide(t, t)))(x), np.zeros(4), atol=1e-12)


def test_a_diamond_graph_matches_finite_differences(rng):
    x = rng.standard_normal((3, 2))

    def f(x):
        a = ops.tanh(x)
        b = ops.multiply(a, ops.exp(a))  # a reaches b twice
        c = ops.matmul(ops.transpose(a), b)  # and c twice more
        return ops.sum(ops.square(c)) + ops.sum(ops.log1p(ops.square(b))) + ops.sum(ops.multiply(c, c))

    _directional_check(f, grad(f)(x), x, rng)


@given(depth=st.integers(1, 6), width=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_random_chains_with_reuse_match_finite_differences(depth, width, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(width)
    coefficients = rng.uniform(-1.0, 1.0, (depth, 3))

    def f(x):
        values = [x]
        for a, b, c in coefficients:
            previous = values[-1]
            values.append(ops.add(ops.multiply(ops.tanh(previous), a), ops.multiply(values[0], b * previous)) + c)
        return ops.sum(ops.square(values[-1])) + ops.sum(values[len(values) // 2])

    _directional_check(f, grad(f)(x), x, rng)


def test_a_function_of_constants_only_has_zero_gradients(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    value, dx = value_and_grad(lambda t: ops.sum(np.ones(3)))(x)
    assert float(value) == 3.0
    assert dx.shape == x.shape and dx.dtype == np.float32
    np.testing.assert_array_equal(dx, 0)
    np.testing.assert_array_equal(grad(lambda t: 1.5)(x), 0)


def test_an_unused_argument_gets_zeros_in_the_tuple(rng):
    x, y = rng.standard_normal(3), rng.standard_normal((2, 2))
    dx, dy = grad(lambda a, b: ops.sum(ops.square(a)), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(dx, 2 * x)
    assert dy.shape == (2, 2)
    np.testing.assert_array_equal(dy, 0)


def test_an_argument_used_only_by_non_differentiable_ops_gets_zeros(rng):
    x = rng.standard_normal(5)

    def f(x):
        mask = ops.argmax(x) == np.arange(5)  # argmax, sign and equal carry no gradient
        return ops.sum(ops.sign(x)) + float(np.sum(mask)) + float(np.sum(ops.equal(x, x)))

    np.testing.assert_array_equal(grad(f)(x), np.zeros(5))


def test_stop_gradient_blocks_the_path_through_it(rng):
    x = rng.standard_normal(4)
    np.testing.assert_allclose(grad(lambda t: ops.sum(ops.multiply(t, stop_gradient(t))))(x), x)
    np.testing.assert_array_equal(grad(lambda t: ops.sum(stop_gradient(ops.square(t))))(x), np.zeros(4))
    inside = {}

    def f(t):
        inside["value"] = stop_gradient(t)
        return ops.sum(t)

    grad(f)(x)
    assert type(inside["value"]) is np.ndarray
    np.testing.assert_array_equal(inside["value"], x)


def test_stop_gradient_of_a_variable_is_its_value(rng):
    v = Variable(rng.standard_normal(3), "v")
    assert stop_gradient(v) is v.value
    with GradientTape([v]) as tape:
        loss = ops.sum(ops.multiply(v, stop_gradient(v)))
    np.testing.assert_allclose(tape.gradient(loss)[0], v.value)


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    "f",
    [
        lambda x: ops.sum(ops.multiply(x, 3.0)),
        lambda x: ops.mean(ops.square(x)),
        lambda x: ops.sum(ops.divide(1.0, ops.add(ops.square(x), 1.0))),
        lambda x: ops.logsumexp(x),
        lambda x: ops.max(x),
        lambda x: ops.sum(ops.power(ops.abs(x), 1.5)),
        lambda x: ops.sum(ops.matmul(x, ops.transpose(x))),
        lambda x: ops.sum(ops.take(x, np.array([0, 0, 1]), axis=0)),
        lambda x: ops.sum(ops.softmax(x) * np.arange(3, dtype=np.float32)),
        lambda x: ops.sum(ops.sigmoid(x)),
        lambda x: ops.sum(ops.where(stop_gradient(x) > 0, x, ops.multiply(x, 0.1))),
        lambda x: ops.sum(x * 2.0 - x / 3.0 + x**2),
    ],
)
def test_float32_stays_float32(f, rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    value, dx = value_and_grad(f)(x)
    assert np.asarray(value).dtype == np.float32
    assert dx.dtype == np.float32
    dx64 = grad(f)(x.astype(np.float64))
    assert dx64.dtype == np.float64
    np.testing.assert_allclose(dx, dx64, rtol=1e-4, atol=1e-5)


def test_gradient_dtype_is_the_argument_dtype_even_with_float64_constants(rng):
    # the forward promotes (float32 * float64 is float64); the gradient still has x's dtype, as in JAX/PyTorch
    x = rng.standard_normal((2, 3)).astype(np.float32)
    weights = np.arange(3.0)
    value, dx = value_and_grad(lambda t: ops.sum(ops.multiply(t, weights)))(x)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, np.broadcast_to(weights, (2, 3)))
    dx, dy = grad(lambda a, b: ops.sum(ops.matmul(a, b) + np.ones(2)), argnums=(0, 1))(x, np.ones((3, 2)))
    assert (dx.dtype, dy.dtype) == (np.float32, np.float64)
    v = Variable(x.copy(), "v")
    with GradientTape([v]) as tape:
        loss = ops.sum(ops.square(ops.subtract(v, np.ones((2, 3)))))
    assert tape.gradient(loss)[0].dtype == np.float32


def test_tape_gradients_keep_the_variable_dtype(rng):
    w = Variable(rng.standard_normal((3, 2)).astype(np.float32), "w")
    b = Variable(np.zeros(2, np.float32), "b")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with GradientTape([w, b]) as tape:
        loss = ops.mean(ops.square(ops.add(ops.matmul(x, w), b)))
    assert [g.dtype for g in tape.gradient(loss)] == [np.float32, np.float32]


# ----------------------------------------------------------------------------- errors


def test_non_scalar_output_is_a_value_error(rng):
    x = rng.standard_normal(3)
    with pytest.raises(ValueError, match=r"scalar output.*shape \(3,\)"):
        grad(lambda t: ops.square(t))(x)
    with pytest.raises(ValueError, match="scalar"):
        value_and_grad(lambda t: ops.multiply(t, np.ones((2, 3))))(x)
    with pytest.raises(ValueError, match="scalar"):
        grad(lambda t: np.ones(2))(x)  # constant but not scalar


@pytest.mark.parametrize(
    "argument", [np.array([1, 2, 3]), 3, np.array([True, False]), np.arange(4, dtype=np.uint8)], ids=repr
)
def test_non_float_arguments_are_a_type_error(argument):
    with pytest.raises(TypeError, match="Argument 0 must be a floating-point array"):
        grad(lambda t: ops.sum(t))(argument)


def test_a_non_float_argument_that_is_not_differentiated_is_fine():
    assert grad(lambda x, n: ops.sum(ops.multiply(x, n)))(np.ones(2), np.array([2, 3])).tolist() == [2.0, 3.0]
    with pytest.raises(TypeError, match="Argument 1"):
        grad(lambda x, n: ops.sum(ops.multiply(x, n)), argnums=(0, 1))(np.ones(2), np.array([2, 3]))


@pytest.mark.parametrize("argnums", [2, 5, (0, 2)])
def test_argnums_out_of_range_is_a_value_error(argnums):
    with pytest.raises(ValueError, match="`argnums` names argument 2, but the function was called with 2|argument 5"):
        grad(_f, argnums=argnums)(np.ones(2), np.ones(2))


@pytest.mark.parametrize("argnums", [-3, (0, -4)])
def test_negative_argnums_out_of_range_is_a_value_error(argnums):
    with pytest.raises(ValueError, match="`argnums` names argument -"):
        grad(_f, argnums=argnums)(np.ones(2), np.ones(2))


@pytest.mark.parametrize(
    "convert",
    [np.asarray, np.array, lambda t: np.exp(t), lambda t: np.sum(t), lambda t: np.concatenate([t, t])],
    ids=["asarray", "array", "np.exp", "np.sum", "np.concatenate"],
)
def test_numpy_on_a_tracer_is_a_type_error_that_says_what_to_do(convert):
    with pytest.raises(TypeError, match=r"traced value cannot be turned into a NumPy array.*stop_gradient"):
        grad(lambda t: ops.sum(ops.multiply(convert(t), 1.0)))(np.ones(2))


def test_grad_of_grad_is_refused_rather_than_silently_zero():
    # the tape records first derivatives only; an already-traced argument must not be unwrapped
    # into a fresh tape (that gave a second derivative of 0)
    with pytest.raises(NotImplementedError, match="Higher-order derivatives"):
        grad(grad(lambda x: ops.sum(ops.power(x, 3))))(np.array(2.0))
    with pytest.raises(NotImplementedError, match="Higher-order"):
        value_and_grad(lambda x: value_and_grad(lambda y: ops.sum(ops.square(y)))(x)[0])(np.ones(2))


# ----------------------------------------------------------------------------- GradientTape


def test_tape_gradients_are_aligned_with_the_variables_and_none_when_unused(rng):
    a = Variable(rng.standard_normal(3), "a")
    unused = Variable(rng.standard_normal(2), "unused")
    b = Variable(rng.standard_normal(3), "b")
    with GradientTape([a, unused, b]) as tape:
        loss = ops.sum(ops.add(ops.multiply(a, b), ops.square(a)))
    da, d_unused, db = tape.gradient(loss)
    np.testing.assert_allclose(da, b.value + 2 * a.value)
    assert d_unused is None
    np.testing.assert_allclose(db, a.value)
    # the order of the list follows the order the tape was given
    with GradientTape([b, unused, a]) as tape:
        loss = ops.sum(ops.add(ops.multiply(a, b), ops.square(a)))
    db2, d_unused2, da2 = tape.gradient(loss)
    np.testing.assert_array_equal(da2, da)
    np.testing.assert_array_equal(db2, db)
    assert d_unused2 is None


def test_tape_over_a_loss_that_reads_no_variable_gives_all_none(rng):
    a = Variable(rng.standard_normal(3), "a")
    with GradientTape([a]) as tape:
        loss = ops.sum(np.ones(3))
    assert tape.gradient(loss) == [None]
    with GradientTape([a]) as tape:
        loss = ops.sum(stop_gradient(a))
    assert tape.gradient(loss) == [None]


def test_tape_gradient_of_a_variable_used_many_times_accumulates(rng):
    w = Variable(rng.standard_normal((2, 2)), "w")
    x = rng.standard_normal((3, 2))
    with GradientTape([w]) as tape:
        h = ops.matmul(ops.matmul(x, w), w)  # x W W
        loss = ops.sum(ops.square(h)) + ops.sum(w)

    def f(value):
        return np.sum((x @ value @ value) ** 2) + np.sum(value)

    (dw,) = tape.gradient(loss)
    _directional_check(f, dw, w.value, rng)


def test_ops_on_variables_are_plain_outside_a_tape_and_traced_inside(rng):
    v = Variable(rng.standard_normal(2), "v")
    assert type(ops.multiply(v, 2.0)) is np.ndarray
    with GradientTape([v]):
        assert isinstance(ops.multiply(v, 2.0), Tracer)
    assert type(ops.multiply(v, 2.0)) is np.ndarray
    other = Variable(np.ones(2), "other")
    with GradientTape([v]):
        assert type(ops.multiply(other, 2.0)) is np.ndarray  # not watched


def test_gradient_can_be_asked_inside_or_after_the_block(rng):
    v = Variable(rng.standard_normal(3), "v")
    with GradientTape([v]) as tape:
        loss = ops.sum(ops.square(v))
        inside = tape.gradient(loss)
    after = tape.gradient(loss)
    np.testing.assert_array_equal(inside[0], after[0])
    np.testing.assert_allclose(after[0], 2 * v.value)


def test_tape_rejects_a_non_scalar_target(rng):
    v = Variable(rng.standard_normal(3), "v")
    with GradientTape([v]) as tape:
        y = ops.square(v)
    with pytest.raises(ValueError, match=r"scalar target; received shape \(3,\)"):
        tape.gradient(y)


def test_the_tape_stops_watching_when_the_block_raises(rng):
    v = Variable(rng.standard_normal(2), "v")
    with pytest.raises(RuntimeError), GradientTape([v]):
        raise RuntimeError("boom")
    assert autodiff_module._watched == []
    assert type(ops.square(v)) is np.ndarray


def test_nested_tapes_over_different_variables_each_see_their_own(rng):
    w = Variable(rng.standard_normal(3), "w")
    v = Variable(rng.standard_normal(3), "v")
    with GradientTape([w]) as outer:
        with GradientTape([v]) as inner:
            y = ops.sum(ops.multiply(ops.square(v), w))
        z = ops.add(y, ops.sum(w))  # computed after the inner block: still on the outer tape
    np.testing.assert_allclose(inner.gradient(y)[0], 2 * v.value * w.value)
    np.testing.assert_allclose(outer.gradient(y)[0], v.value**2)
    np.testing.assert_allclose(outer.gradient(z)[0], v.value**2 + 1)
    np.testing.assert_allclose(inner.gradient(z)[0], 2 * v.value * w.value)  # z reads v through y
    assert autodiff_module._watched == []


def test_a_tape_inside_grad_mixes_with_the_traced_argument(rng):
    v = Variable(rng.standard_normal(3), "v")
    grads = {}

    def f(x):
        with GradientTape([v]) as tape:
            loss = ops.sum(ops.multiply(x, v))
        grads["v"] = tape.gradient(loss)[0]
        return loss

    x = rng.standard_normal(3)
    np.testing.assert_allclose(grad(f)(x), v.value)
    np.testing.assert_allclose(grads["v"], x)


def test_nested_tapes_over_the_same_variable_both_see_it(rng):
    # as with nested tf.GradientTape: a loss made inside both blocks reaches both tapes
    v = Variable(rng.standard_normal(3), "v")
    w = Variable(rng.standard_normal(3), "w")
    with GradientTape([v, w]) as outer:
        before = ops.sum(ops.multiply(v, w))
        with GradientTape([v]) as inner:
            with GradientTape([w, v]) as innermost:
                y = ops.sum(ops.multiply(ops.square(v), w))
        after = ops.sum(ops.square(v))
    np.testing.assert_allclose(innermost.gradient(y)[1], 2 * v.value * w.value)
    np.testing.assert_allclose(innermost.gradient(y)[0], v.value**2)
    np.testing.assert_allclose(inner.gradient(y)[0], 2 * v.value * w.value)
    dv, dw = outer.gradient(y)
    np.testing.assert_allclose(dv, 2 * v.value * w.value)
    np.testing.assert_allclose(dw, v.value**2)
    # losses made outside the inner blocks reach the outer tape only
    assert inner.gradient(before) == [None] and inner.gradient(after) == [None]
    np.testing.assert_allclose(outer.gradient(before)[0], w.value)
    np.testing.assert_allclose(outer.gradient(after)[0], 2 * v.value)
    assert autodiff_module._watched == []


# ----------------------------------------------------------------------------- Tracer operators


@pytest.mark.parametrize(
    "f,d",
    [
        (lambda t: t + 2.0, lambda x: np.ones_like(x)),
        (lambda t: 2.0 + t, lambda x: np.ones_like(x)),
        (lambda t: np.full(3, 2.0) + t, lambda x: np.ones_like(x)),
        (lambda t: t - 1.0, lambda x: np.ones_like(x)),
        (lambda t: 1.0 - t, lambda x: -np.ones_like(x)),
        (lambda t: np.ones(3) - t, lambda x: -np.ones_like(x)),
        (lambda t: t * 3.0, lambda x: np.full_like(x, 3.0)),
        (lambda t: 3.0 * t, lambda x: np.full_like(x, 3.0)),
        (lambda t: np.float64(3.0) * t, lambda x: np.full_like(x, 3.0)),
        (lambda t: t / 4.0, lambda x: np.full_like(x, 0.25)),
        (lambda t: 1.0 / t, lambda x: -1.0 / x**2),
        (lambda t: np.ones(3) / t, lambda x: -1.0 / x**2),
        (lambda t: t**3, lambda x: 3 * x**2),
        (lambda t: t**0.5, lambda x: 0.5 / np.sqrt(x)),
        (lambda t: -t, lambda x: -np.ones_like(x)),
        (lambda t: t * t - t / (t + 1.0), lambda x: 2 * x - 1 / (x + 1) ** 2),
    ],
)
def test_arithmetic_operators(f, d, rng):
    x = rng.uniform(0.5, 2.0, 3)
    np.testing.assert_allclose(grad(lambda t: ops.sum(f(t)))(x), d(x), rtol=1e-12)


def test_scalar_to_the_power_of_a_tracer(rng):
    x = rng.standard_normal(3)
    np.testing.assert_allclose(grad(lambda t: ops.sum(2.0**t))(x), np.log(2.0) * 2.0**x)


def test_matmul_operator_both_ways(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(grad(lambda t: ops.sum(t @ b))(a), np.ones((2, 4)) @ b.T)
    np.testing.assert_allclose(grad(lambda t: ops.sum(a @ t))(b), a.T @ np.ones((2, 4)))


def test_indexing_transpose_and_reshape_operators(rng):
    x = rng.standard_normal((2, 3))
    weights = rng.standard_normal((3, 2))

    def f(t):
        return ops.sum(t.T * weights) + ops.sum(t[1, ::-1] * np.arange(3.0)) + ops.sum(t.reshape(3, 2)[0])

    expected = weights.T.copy()
    expected[1] += np.arange(3.0)[::-1]
    expected.reshape(-1)[:2] += 1.0
    np.testing.assert_allclose(grad(f)(x), expected)
    np.testing.assert_allclose(grad(lambda t: ops.sum(t.reshape((6,))[[0, 0, 5]]))(x), [[2, 0, 0], [0, 0, 1]])


def test_tracer_describes_its_value():
    seen = {}

    def f(t):
        seen.update(shape=t.shape, ndim=t.ndim, dtype=t.dtype, size=t.size, len=len(t), repr=repr(t))
        return ops.sum(t)

    grad(f)(np.ones((2, 3), np.float32))
    assert seen == {
        "shape": (2, 3),
        "ndim": 2,
        "dtype": np.float32,
        "size": 6,
        "len": 2,
        "repr": "Tracer(shape=(2, 3), dtype=float32)",
    }


@pytest.mark.parametrize(
    "a_shape, b_shape", [((3, 0), (0, 4)), ((2, 3, 0), (0, 4)), ((3, 5), (5, 0)), ((0, 5), (5, 2))]
)
def test_matmul_and_its_gradients_with_an_empty_axis_are_numpys(a_shape, b_shape):
    a, b = np.ones(a_shape, np.float32), np.ones(b_shape, np.float32)
    np.testing.assert_array_equal(ops.matmul(a, b), np.matmul(a, b))
    da, db = grad(lambda x, y: ops.sum(ops.matmul(x, y)), argnums=(0, 1))(a, b)
    # d/da sum(a @ b) = 1 @ b.T; d/db = a.T @ 1 over a's rows: zeros or sums over empty axes
    rows = int(np.prod(a_shape[:-1]))
    ones = np.ones((rows, b_shape[1]), np.float32)
    np.testing.assert_array_equal(da, (ones @ b.T).reshape(a_shape))
    np.testing.assert_array_equal(db, a.reshape(rows, a_shape[-1]).T @ ones)
