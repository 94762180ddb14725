"""Oracle: rankconv's optimizers against Keras 3's (torch backend), step by step, on float32 variables."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankconv import constraints, optimizers
from rankconv.ops.autodiff import Variable

from oracles import keras as _keras

keras = _keras()

SHAPES = [(3, 3, 2, 4), (4,), (1,)]
STEPS = 10
# torch fuses `a + alpha * b` (FMA) where NumPy rounds twice: results agree to a few float32 ulps.
RTOL, ATOL = 1e-6, 1e-6

CASES = [
    ("SGD", {}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"clipvalue": 0.5}),
    ("SGD", {"learning_rate": 0.1, "weight_decay": 0.05}),
    ("Adam", {}),
    ("Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("Adam", {"clipnorm": 1.0}),
    ("Adam", {"global_clipnorm": 0.5}),
    ("Adam", {"weight_decay": 0.1, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4}),
    ("AdamW", {}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1, "amsgrad": True, "clipnorm": 2.0}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.5}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.9, "centered": True, "rho": 0.8, "global_clipnorm": 1.0}),
    ("Adadelta", {}),
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.9, "clipvalue": 1.0}),
    ("Adagrad", {}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.01}),
    ("Adam", {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 3}),
    ("SGD", {"momentum": 0.5, "gradient_accumulation_steps": 3}),
    ("Adam", {"gradient_accumulation_steps": 2, "clipnorm": 1.0}),
    ("RMSprop", {"loss_scale_factor": 8.0}),
]


def _pair(shapes, seed, constraint=None):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = [Variable(w.copy(), f"w{i}", f"w{i}") for i, w in enumerate(init)]
    theirs = [keras.Variable(w.copy(), name=f"w{i}") for i, w in enumerate(init)]
    if constraint is not None:
        ours[0].constraint = constraint[0]
        theirs[0].constraint = constraint[1]
    return ours, theirs


def _gradients(shapes, seed, steps=STEPS, missing=None):
    rng = np.random.default_rng(seed + 1)
    sequence = []
    for step in range(steps):
        grads = [(2 * rng.standard_normal(s)).astype(np.float32) for s in shapes]
        if missing is not None and step % 3 == 1:
            grads[missing] = None
        sequence.append(grads)
    return sequence


def _run(name, kwargs, seed=0, shapes=SHAPES, missing=None, constraint=None):
    ours, theirs = _pair(shapes, seed, constraint)
    optimizer = getattr(optimizers, name)(**kwargs)
    oracle = getattr(keras.optimizers, name)(**kwargs)
    for step, grads in enumerate(_gradients(shapes, seed, missing=missing)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the missing-gradient warning, from both
            optimizer.apply(grads, ours)
            oracle.apply([None if g is None else keras.ops.convert_to_tensor(g) for g in grads], theirs)
        for mine, reference in zip(ours, theirs):
            assert mine.value.dtype == np.float32
            np.testing.assert_allclose(
                mine.value, keras.ops.convert_to_numpy(reference), rtol=RTOL, atol=ATOL, err_msg=f"step {step}"
            )
    return optimizer, oracle


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{'-'.join(k) or 'default'}" for n, k in CASES])
def test_updates_match_keras(name, kwargs):
    optimizer, oracle = _run(name, kwargs)
    assert optimizer.iterations == int(keras.ops.convert_to_numpy(oracle.iterations))
    # The exported state has Keras's order, names and values.
    state, reference = optimizer.variables, oracle.variables
    assert [v.name for v in state] == [v.name for v in reference]
    for mine, theirs in zip(state[1:], reference[1:]):  # the step counter's int dtype differs by backend
        np.testing.assert_allclose(mine.value, keras.ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-6)
    assert int(state[0].value) == int(keras.ops.convert_to_numpy(reference[0]))


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adadelta", "Adagrad"])
def test_missing_gradients_match_keras(name):
    _run(name, {"learning_rate": 0.05}, seed=3, missing=1)


@pytest.mark.parametrize(
    "name, kwargs", [("SGD", {"learning_rate": 0.5, "momentum": 0.9}), ("Adam", {"learning_rate": 0.3})]
)
def test_constraint_applied_after_update_like_keras(name, kwargs):
    constraint = (constraints.MaxNorm(max_value=1.0, axis=0), keras.constraints.MaxNorm(max_value=1.0, axis=0))
    _run(name, kwargs, seed=5, shapes=[(6, 3), (3,)], constraint=constraint)


def test_finalize_variable_values_matches_keras():
    optimizer, oracle = _run("SGD", {"learning_rate": 0.1, "use_ema": True}, seed=7)
    ours = optimizer._tracked
    theirs = oracle._trainable_variables
    optimizer.finalize_variable_values(ours)
    oracle.finalize_variable_values(theirs)
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.value, keras.ops.convert_to_numpy(reference), rtol=RTOL, atol=ATOL)


OPTIONS = {
    "SGD": {"momentum": st.sampled_from([0.0, 0.5, 0.95]), "nesterov": st.booleans()},
    "Adam": {"beta_1": st.sampled_from([0.5, 0.9]), "beta_2": st.sampled_from([0.9, 0.999]), "amsgrad": st.booleans()},
    "AdamW": {"weight_decay": st.sampled_from([0.0, 0.004, 0.2]), "amsgrad": st.booleans()},
    "RMSprop": {
        "rho": st.sampled_from([0.5, 0.9]),
        "momentum": st.sampled_from([0.0, 0.5]),
        "centered": st.booleans(),
    },
    "Adadelta": {"rho": st.sampled_from([0.9, 0.95])},
    "Adagrad": {"initial_accumulator_value": st.sampled_from([0.1, 1.0])},
}


@st.composite
def configurations(draw):
    name = draw(st.sampled_from(sorted(OPTIONS)))
    kwargs = {k: draw(s) for k, s in OPTIONS[name].items()}
    kwargs["learning_rate"] = draw(st.sampled_from([0.001, 0.01, 0.1]))
    clip = draw(st.sampled_from([None, "clipnorm", "clipvalue", "global_clipnorm"]))
    if clip is not None:
        kwargs[clip] = draw(st.sampled_from([0.1, 1.0, 5.0]))
    if name != "AdamW" and draw(st.booleans()):
        kwargs["weight_decay"] = draw(st.sampled_from([0.01, 0.1]))
    return name, kwargs


@settings(max_examples=25)
@given(configurations(), st.integers(0, 2**16))
def test_random_configurations_match_keras(configuration, seed):
    name, kwargs = configuration
    _run(name, kwargs, seed=seed, shapes=[(5, 2), (2,)])


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad"])
def test_default_config_matches_keras(name):
    ours = getattr(optimizers, name)(name="opt").get_config()
    theirs = getattr(keras.optimizers, name)(name="opt").get_config()
    assert ours == theirs
    assert list(ours) == list(theirs)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_config_matches_keras(name, kwargs):
    ours = getattr(optimizers, name)(name="opt", **kwargs).get_config()
    theirs = getattr(keras.optimizers, name)(name="opt", **kwargs).get_config()
    assert ours == theirs


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad"])
def test_keras_serialised_optimizer_deserialises(name):
    oracle = getattr(keras.optimizers, name)(learning_rate=0.05, clipnorm=1.0, name="x")
    optimizer = optimizers.get(keras.optimizers.serialize(oracle))
    assert type(optimizer).__name__ == name
    assert optimizer.get_config() == oracle.get_config()
    # and Keras reads ours
    back = keras.optimizers.deserialize(optimizers.serialize(optimizer))
    assert back.get_config() == oracle.get_config()


def _stem(name):
    head, _, tail = name.rpartition("_")
    return head if head and tail.isdigit() else name


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad"])
def test_automatic_names_match_keras(name):
    # Keras's snake_case of the class name ("adam_w", "rm_sprop"), made unique with a counter.
    assert _stem(getattr(optimizers, name)().name) == _stem(getattr(keras.optimizers, name)().name)
