import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankconv import constraints, objects, optimizers
from rankconv.ops.autodiff import Variable

ALL = ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad"]


def _variables(dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    return [
        Variable(rng.standard_normal((3, 2)).astype(dtype), "kernel", "dense/kernel"),
        Variable(rng.standard_normal((2,)).astype(dtype), "bias", "dense/bias"),
    ]


def _grads(variables, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(v.shape).astype(v.value.dtype) for v in variables]


def _state_optimizer(name):
    kwargs = {"SGD": {"momentum": 0.9}, "RMSprop": {"momentum": 0.5, "centered": True}, "Adam": {"amsgrad": True}}
    return getattr(optimizers, name)(**kwargs.get(name, {}))


# ----------------------------------------------------------------------------- the update


def test_sgd_is_plain_gradient_descent():
    variables = _variables()
    before = [v.value.copy() for v in variables]
    grads = _grads(variables)
    optimizers.SGD(learning_rate=0.1).apply(grads, variables)
    for v, w, g in zip(variables, before, grads):
        np.testing.assert_allclose(v.value, w - np.float32(0.1) * g, rtol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_updates_in_place_and_keeps_dtype(name):
    for dtype in ("float32", "float64"):
        variables = _variables(dtype)
        arrays = [v.value for v in variables]
        optimizer = _state_optimizer(name)
        for seed in range(3):
            optimizer.apply(_grads(variables, seed), variables)
        for v, array in zip(variables, arrays):
            assert v.value is array  # same buffer: layers and tracers keep seeing the variable
            assert v.value.dtype == dtype
        assert all(s.value.dtype == dtype for s in optimizer.variables[2:])
        assert optimizer.iterations == 3


def test_gradients_of_another_dtype_are_cast_and_not_modified():
    variables = _variables()
    grads = [g.astype(np.float64) for g in _grads(variables)]
    copies = [g.copy() for g in grads]
    optimizers.Adam(clipnorm=0.1).apply(grads, variables)
    assert all(v.value.dtype == np.float32 for v in variables)
    for g, c in zip(grads, copies):
        np.testing.assert_array_equal(g, c)


def test_weight_decay_is_decoupled():
    variables = _variables()
    before = variables[0].value.copy()
    optimizers.SGD(learning_rate=0.1, weight_decay=0.5).apply([np.zeros((3, 2), np.float32)], variables[:1])
    np.testing.assert_allclose(variables[0].value, before * np.float32(1 - 0.05), rtol=1e-6)


def test_exclude_from_weight_decay():
    variables = _variables()
    before = [v.value.copy() for v in variables]
    optimizer = optimizers.SGD(learning_rate=0.1, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    optimizer.apply([np.zeros(v.shape, np.float32) for v in variables], variables)
    assert not np.array_equal(variables[0].value, before[0])
    np.testing.assert_array_equal(variables[1].value, before[1])


def test_clipnorm_clips_each_gradient():
    variable = Variable(np.zeros(2, np.float32), "w")
    optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply([np.array([3.0, 4.0], np.float32)], [variable])
    np.testing.assert_allclose(variable.value, [-0.6, -0.8], rtol=1e-6)


def test_global_clipnorm_scales_all_gradients_together():
    variables = [Variable(np.zeros(1, np.float32), "a"), Variable(np.zeros(1, np.float32), "b")]
    optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0).apply(
        [np.array([3.0], "f4"), np.array([4.0], "f4")], variables
    )
    np.testing.assert_allclose([variables[0].value[0], variables[1].value[0]], [-0.6, -0.8], rtol=1e-6)


def test_clipvalue():
    variable = Variable(np.zeros(3, np.float32), "w")
    optimizers.SGD(learning_rate=1.0, clipvalue=0.5).apply([np.array([3.0, -4.0, 0.25], np.float32)], [variable])
    np.testing.assert_allclose(variable.value, [-0.5, 0.5, -0.25])


def test_constraint_is_applied_after_the_update():
    variable = Variable(np.ones((2, 2), np.float32), "kernel", constraint=constraints.NonNeg())
    optimizers.SGD(learning_rate=1.0).apply([np.array([[2.0, 0.0], [0.5, 3.0]], np.float32)], [variable])
    np.testing.assert_allclose(variable.value, [[0.0, 1.0], [0.5, 0.0]])


def test_missing_gradients_are_skipped_with_a_warning():
    variables = _variables()
    bias = variables[1].value.copy()
    optimizer = optimizers.Adam()
    with pytest.warns(UserWarning, match="dense/bias"):
        optimizer.apply([_grads(variables)[0], None], variables)
    np.testing.assert_array_equal(variables[1].value, bias)
    assert optimizer.iterations == 1


def test_empty_gradient_list_is_a_no_op():
    optimizer = optimizers.SGD()
    optimizer.apply([], [])
    assert optimizer.iterations == 0


def test_all_gradients_missing_is_an_error():
    with pytest.raises(ValueError, match="No gradients provided"):
        optimizers.SGD().apply([None, None], _variables())


def test_gradient_shape_and_count_are_checked():
    variables = _variables()
    with pytest.raises(ValueError, match=r"dense/kernel.*\(3, 2\).*\(2, 3\)"):
        optimizers.SGD().apply([np.zeros((2, 3)), np.zeros(2)], variables)
    with pytest.raises(ValueError, match="1 gradients for 2 variables"):
        optimizers.SGD().apply([np.zeros((3, 2))], variables)
    with pytest.raises(TypeError, match="rankconv `Variable`s"):
        optimizers.SGD().apply([np.zeros(2)], [np.zeros(2)])


def test_apply_without_variables_uses_the_built_ones():
    variables = _variables()
    optimizer = optimizers.SGD()
    with pytest.raises(ValueError, match="build"):
        optimizer.apply(_grads(variables))
    optimizer.build(variables)
    optimizer.apply(_grads(variables))
    assert optimizer.iterations == 1
    optimizer.apply_gradients(zip(_grads(variables), variables))
    assert optimizer.iterations == 2


def test_gradient_accumulation_updates_every_n_steps():
    variables = _variables()
    before = variables[0].value.copy()
    optimizer = optimizers.SGD(learning_rate=1.0, gradient_accumulation_steps=2)
    g1, g2 = _grads(variables, 1), _grads(variables, 2)
    optimizer.apply(g1, variables)
    np.testing.assert_array_equal(variables[0].value, before)
    optimizer.apply(g2, variables)
    np.testing.assert_allclose(variables[0].value, before - (g1[0] + g2[0]) / 2, rtol=1e-6)
    assert optimizer.iterations == 1 and int(optimizer.variables[0].value) == 2


# ----------------------------------------------------------------------------- state


@pytest.mark.parametrize("name", ALL)
def test_slots_are_keyed_by_variable_and_created_lazily(name):
    variables = _variables()
    optimizer = _state_optimizer(name)
    assert not optimizer.built and len(optimizer.variables) == 2
    optimizer.apply([_grads(variables)[0]], variables[:1])
    count = len(optimizer.variables)
    optimizer.apply(_grads(variables), variables)  # a new variable joins
    assert len(optimizer.variables) > count
    slots = [id(s) for s in optimizer.variables]
    optimizer.apply(list(reversed(_grads(variables))), list(reversed(variables)))  # any order, same slots
    assert [id(s) for s in optimizer.variables] == slots


def test_state_order_and_names_follow_keras():
    variables = _variables()
    optimizer = optimizers.Adam(amsgrad=True, name="adam")
    optimizer.build(variables)
    assert [v.path for v in optimizer.variables] == [
        "adam/iteration",
        "adam/learning_rate",
        "adam/dense_kernel_momentum",
        "adam/dense_kernel_velocity",
        "adam/dense_bias_momentum",
        "adam/dense_bias_velocity",
        "adam/dense_kernel_velocity_hat",
        "adam/dense_bias_velocity_hat",
    ]
    rms = optimizers.RMSprop(momentum=0.5, centered=True, use_ema=True)
    rms.build(variables)
    assert [v.name for v in rms.variables][2:] == [
        "dense_kernel_average",
        "dense_bias_average",
        "dense_kernel_velocity",
        "dense_bias_velocity",
        "dense_kernel_momentum",
        "dense_bias_momentum",
        "dense_kernel_average_gradient",
        "dense_bias_average_gradient",
    ]
    adagrad = optimizers.Adagrad(initial_accumulator_value=0.3)
    adagrad.build(variables)
    np.testing.assert_allclose(adagrad.variables[2].value, np.full((3, 2), 0.3, np.float32))


@pytest.mark.parametrize("name", ALL)
def test_state_export_and_import_resume_exactly(name):
    first, second = _variables(seed=3), _variables(seed=3)
    a = _state_optimizer(name)
    for seed in range(4):
        a.apply(_grads(first, seed), first)
    store = {}
    a.save_own_variables(store)
    assert sorted(store, key=int) == [str(i) for i in range(len(a.variables))]
    for v, w in zip(second, first):
        v.assign(w.value)
    b = _state_optimizer(name)
    b.build(second)
    b.load_own_variables(store)
    assert b.iterations == 4
    for seed in range(4, 7):
        a.apply(_grads(first, seed), first)
        b.apply(_grads(second, seed), second)
    for v, w in zip(second, first):
        np.testing.assert_array_equal(v.value, w.value)


def test_set_weights_checks_shapes_and_count():
    optimizer = optimizers.Adam()
    with pytest.raises(ValueError, match="no state yet"):
        optimizer.set_weights([])
    optimizer.build(_variables())
    weights = optimizer.get_weights()
    with pytest.raises(ValueError, match="has 6 state arrays"):
        optimizer.set_weights(weights[:-1])
    weights[3] = np.zeros((5,))
    with pytest.raises(ValueError, match=r"dense_kernel_velocity.*\(3, 2\).*\(5,\)"):
        optimizer.set_weights(weights)


def test_loading_a_mismatched_store_warns_and_skips():
    optimizer = optimizers.Adam()
    with pytest.warns(UserWarning, match="not been called/built"):
        optimizer.load_own_variables({"0": np.array(3), "1": np.array(0.1), "2": np.zeros(2)})
    assert optimizer.iterations == 0


def test_learning_rate_is_a_float32_variable():
    optimizer = optimizers.SGD(learning_rate=0.1)
    assert optimizer.learning_rate == float(np.float32(0.1))
    optimizer.learning_rate = 0.5
    assert optimizer.learning_rate == 0.5 and optimizer.get_config()["learning_rate"] == 0.5


# ----------------------------------------------------------------------------- config and lookup


@pytest.mark.parametrize("name", ALL)
def test_config_round_trip(name):
    optimizer = getattr(optimizers, name)(learning_rate=0.05, clipvalue=2.0)
    config = optimizer.get_config()
    rebuilt = type(optimizer).from_config(config)
    assert rebuilt.get_config() == config
    serialised = optimizers.serialize(optimizer)
    assert serialised["module"] == "keras.optimizers" and serialised["class_name"] == name
    assert optimizers.get(serialised).get_config() == config
    assert objects.serialize(optimizer) == serialised


@pytest.mark.parametrize(
    "identifier, cls",
    [
        ("adam", optimizers.Adam),
        ("Adam", optimizers.Adam),
        ("ADAM", optimizers.Adam),
        ("sgd", optimizers.SGD),
        ("rmsprop", optimizers.RMSprop),
        ("RMSprop", optimizers.RMSprop),
        ("adamw", optimizers.AdamW),
        ("adadelta", optimizers.Adadelta),
        ("adagrad", optimizers.Adagrad),
        ({"class_name": "sgd", "config": {"momentum": 0.5}}, optimizers.SGD),
    ],
)
def test_get_resolves_keras_names(identifier, cls):
    assert type(optimizers.get(identifier)) is cls


def test_get_passes_instances_and_none():
    optimizer = optimizers.SGD()
    assert optimizers.get(optimizer) is optimizer
    assert optimizers.get(None) is None


def test_get_rejects_unknown():
    with pytest.raises(ValueError, match="Unknown optimizer 'nadam'"):
        optimizers.get("nadam")
    with pytest.raises(ValueError, match="Could not interpret"):
        optimizers.get(3)
    with pytest.raises(ValueError, match="class_name"):
        optimizers.get({"config": {}})


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: optimizers.SGD(learning_rate=1), "learning_rate` must be a float"),
        (lambda: optimizers.SGD(learning_rate=lambda: 0.1), "learning_rate` must be a float"),
        (lambda: optimizers.SGD(momentum=1), "momentum` must be a float"),
        (lambda: optimizers.SGD(momentum=1.5), "momentum` must be a float"),
        (lambda: optimizers.Adam(clipnorm=1.0, clipvalue=1.0), "only one of"),
        (lambda: optimizers.Adam(foo=1), "not recognized"),
        (lambda: optimizers.AdamW(weight_decay=None), "weight_decay` must be a float"),
        (lambda: optimizers.Adam(gradient_accumulation_steps=1), "gradient_accumulation_steps"),
        (lambda: optimizers.Adam(use_ema=True, ema_momentum=2.0), "ema_momentum"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_decay_argument_is_ignored_with_a_warning():
    with pytest.warns(UserWarning, match="decay"):
        optimizers.SGD(decay=0.1)


def test_optimizers_compare_by_identity():
    a, b = optimizers.SGD(name="same"), optimizers.SGD(name="same")
    assert a != b and a == a
    assert len({a, b}) == 2


@settings(max_examples=30)
@given(
    st.sampled_from(ALL),
    st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=3),
    st.integers(0, 1000),
)
def test_any_shapes_stay_finite_and_count_steps(name, shapes, seed):
    rng = np.random.default_rng(seed)
    variables = [Variable(rng.standard_normal(s).astype("f4"), f"v{i}") for i, s in enumerate(shapes)]
    optimizer = _state_optimizer(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            optimizer.apply([rng.standard_normal(s).astype("f4") for s in shapes], variables)
    assert optimizer.iterations == 3
    assert all(np.all(np.isfinite(v.value)) for v in variables)


SPARSE_CASES = {
    "sgd": lambda: optimizers.SGD(0.1),
    "sgd-momentum (applied densely)": lambda: optimizers.SGD(0.1, momentum=0.9),
    "adagrad": lambda: optimizers.Adagrad(0.1),
    "adadelta": lambda: optimizers.Adadelta(1.0, rho=0.95, epsilon=1e-6),
    "adadelta-clipnorm": lambda: optimizers.Adadelta(1.0, clipnorm=0.5),
    "adadelta-global-clipnorm": lambda: optimizers.Adadelta(1.0, global_clipnorm=0.5),
    "adadelta-clipvalue-weight-decay": lambda: optimizers.Adadelta(1.0, clipvalue=0.01, weight_decay=0.1),
    "rmsprop": lambda: optimizers.RMSprop(0.01),
    "rmsprop-centered": lambda: optimizers.RMSprop(0.01, centered=True),
    "rmsprop-momentum (applied densely)": lambda: optimizers.RMSprop(0.01, momentum=0.5),
    "adam (applied densely)": lambda: optimizers.Adam(0.01),
    "rmsprop-loss-scale": lambda: optimizers.RMSprop(0.01, loss_scale_factor=3.0),
}


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # the steps that skip the table
@pytest.mark.parametrize("name", sorted(SPARSE_CASES))
@pytest.mark.parametrize("threaded", [False, True], ids=["serial", "rows-on-threads"])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_row_sparse_gradients_update_as_the_dense_ones(name, threaded, seed):
    """An embedding lookup's gradient, applied row-sparse (with lazy decay of untouched rows'
    slots), gives the numbers of the dense gradient, step after step and in the state — also
    when the rows are updated in parts on the worker threads."""
    from rankconv.ops.autodiff import RowSparse

    saved = optimizers.PARALLEL_ROW_ELEMENTS
    optimizers.PARALLEL_ROW_ELEMENTS = 0 if threaded else saved
    try:
        _check_sparse_against_dense(name, seed, RowSparse)
    finally:
        optimizers.PARALLEL_ROW_ELEMENTS = saved


def _check_sparse_against_dense(name, seed, RowSparse):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((30, 4)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    dense_vars = [Variable(table.copy(), "table"), Variable(bias.copy(), "bias")]
    sparse_vars = [Variable(table.copy(), "table"), Variable(bias.copy(), "bias")]
    dense_opt, sparse_opt = SPARSE_CASES[name](), SPARSE_CASES[name]()
    for step in range(12):
        ids = rng.integers(0, 30, size=rng.integers(0, 8))  # some steps touch no row at all
        rows = rng.standard_normal((ids.size, 4)).astype(np.float32)
        sparse = RowSparse.from_rows(ids, rows, 30)
        g_bias = rng.standard_normal(3).astype(np.float32)
        if step % 5 == 3:  # a step without the table (frozen, or no gradient): its slots must not decay
            dense_opt.apply([None, g_bias], dense_vars)
            sparse_opt.apply([None, g_bias], sparse_vars)
        elif step % 5 == 4:  # a dense gradient for the table between sparse ones
            dense_opt.apply([sparse.dense(), g_bias], dense_vars)
            sparse_opt.apply([sparse.dense(), g_bias], sparse_vars)
        else:
            dense_opt.apply([sparse.dense(), g_bias], dense_vars)
            sparse_opt.apply([sparse, g_bias], sparse_vars)
        for d, s in zip(dense_vars, sparse_vars):
            np.testing.assert_allclose(s.value, d.value, rtol=2e-5, atol=1e-6)
    if sparse_opt._row_decay() and not sparse_opt.gradient_accumulation_steps:  # lazy path ran
        assert sparse_opt._row_clock
    for d, s in zip(dense_opt.variables, sparse_opt.variables):
        np.testing.assert_allclose(s.value, d.value, rtol=2e-5, atol=1e-7)
    assert not sparse_opt._row_clock


def test_row_sparse_sums_duplicates_and_adds_to_dense():
    from rankconv.ops.autodiff import RowSparse

    g = RowSparse.from_rows(np.array([[3, 1], [3, 0]]), np.arange(8.0).reshape(2, 2, 2), 5)
    assert g.indices.tolist() == [0, 1, 3]
    expected = np.zeros((5, 2))
    expected[3] = [0 + 4, 1 + 5]
    expected[1] = [2, 3]
    expected[0] = [6, 7]
    np.testing.assert_array_equal(g.dense(), expected)
    np.testing.assert_array_equal(np.asarray(g + g), 2 * expected)
    np.testing.assert_array_equal(g + np.ones((5, 2)), expected + 1)
    np.testing.assert_array_equal(np.ones((5, 2)) + g, expected + 1)


@pytest.mark.parametrize("segments", [0, 10**6])  # reduceat always / one segment at a time
def test_row_sparse_both_summation_paths_match_a_dense_scatter(segments, monkeypatch):
    from rankconv.ops import autodiff

    monkeypatch.setattr(autodiff, "REDUCEAT_SEGMENTS", segments)
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 40, (6, 9))
    ids[:, 5:] = 0  # padding: one long repeated segment
    rows = rng.standard_normal((6, 9, 3))
    g = autodiff.RowSparse.from_rows(ids, rows, 40)
    expected = np.zeros((40, 3))
    for i, row in zip(ids.reshape(-1), rows.reshape(-1, 3)):
        expected[i] += row
    assert g.indices.tolist() == sorted(set(ids.reshape(-1).tolist()))
    np.testing.assert_allclose(g.dense(), expected, rtol=1e-12, atol=1e-12)
