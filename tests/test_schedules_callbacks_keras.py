"""Oracle: learning-rate schedules, the learning-rate callbacks and TerminateOnNaN against Keras 3's
(torch backend): schedule values and configs, optimizers stepping with a schedule, the callbacks'
learning rates and stops on the same logs, and `.keras` files with schedules both ways."""

import json
import math
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankconv import callbacks, layers, losses, optimizers, saving
from rankconv.models import Sequential
from rankconv.optimizers import schedules

from oracles import keras as _keras

keras = _keras()
EPS32 = float(np.finfo(np.float32).eps)

# ----------------------------------------------------------------------------- schedule values

rates = st.floats(1e-4, 1.0)
decay_steps = st.one_of(st.integers(1, 400), st.floats(0.5, 400.0))

SCHEDULE_ARGUMENTS = {
    "ExponentialDecay": st.fixed_dictionaries(
        {"initial_learning_rate": rates, "decay_steps": decay_steps, "decay_rate": st.floats(0.05, 1.5)},
        optional={"staircase": st.booleans()},
    ),
    "InverseTimeDecay": st.fixed_dictionaries(
        {"initial_learning_rate": rates, "decay_steps": decay_steps, "decay_rate": st.floats(0.0, 3.0)},
        optional={"staircase": st.booleans()},
    ),
    "PolynomialDecay": st.fixed_dictionaries(
        {"initial_learning_rate": rates, "decay_steps": decay_steps},
        optional={"end_learning_rate": st.floats(0.0, 1e-2), "power": st.floats(0.1, 3.0), "cycle": st.booleans()},
    ),
    "CosineDecay": st.fixed_dictionaries(
        {"initial_learning_rate": st.one_of(st.just(0.0), rates), "decay_steps": decay_steps},
        optional={
            "alpha": st.floats(0.0, 0.5),
            "warmup_target": st.one_of(st.none(), rates),
            "warmup_steps": st.integers(0, 100),
        },
    ),
    "PiecewiseConstantDecay": st.lists(st.integers(0, 300), min_size=1, max_size=5, unique=True).flatmap(
        lambda bounds: st.fixed_dictionaries(
            {
                "boundaries": st.just(sorted(bounds)),
                "values": st.lists(rates, min_size=len(bounds) + 1, max_size=len(bounds) + 1),
            }
        )
    ),
}

STEPS = [*range(0, 12), 17, 49, 50, 51, 99, 100, 101, 150, 299, 300, 301, 399, 400, 401, 1000, 10**6]


def _scale(arguments) -> float:
    numbers = [v for k, v in arguments.items() if k != "decay_steps" and isinstance(v, float)]
    numbers += arguments.get("values", [])
    return max([abs(v) for v in numbers] + [1e-30])


def _check_values(name, arguments, steps):
    ours = getattr(schedules, name)(**arguments)
    theirs = getattr(keras.optimizers.schedules, name)(**arguments)
    got = np.array([ours(step) for step in steps])
    expected = np.array([keras.ops.convert_to_numpy(theirs(step)) for step in steps])
    assert got.dtype == np.float32 and expected.dtype == np.float32
    # float32 operation by operation as Keras; torch's cos differs from the rounded one by an ulp at times
    np.testing.assert_allclose(got, expected, rtol=4 * EPS32, atol=8 * EPS32 * _scale(arguments))


@pytest.mark.parametrize("name", sorted(SCHEDULE_ARGUMENTS))
def test_schedule_values_match_keras(name):
    @settings(max_examples=25)
    @given(SCHEDULE_ARGUMENTS[name])
    def check(arguments):
        _check_values(name, arguments, STEPS)

    check()


def test_schedule_values_at_float_steps_and_fractional_boundaries():
    steps = [0.0, 0.5, 2.5, 3.0, 3.25, 7.5, 7.75, 30.0]
    _check_values("PiecewiseConstantDecay", {"boundaries": [2.5, 3.0, 7.5], "values": [1.0, 0.5, 0.25, 0.1]}, steps)
    # an integer step compares with the boundaries truncated to integers, as Keras casts them
    _check_values("PiecewiseConstantDecay", {"boundaries": [2.5, 7.9], "values": [1.0, 0.5, 0.1]}, range(10))
    _check_values("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "alpha": 0.2}, steps)
    _check_values("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 3, "cycle": True}, steps)
    _check_values("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 2, "decay_rate": 0.5}, steps)


# ----------------------------------------------------------------------------- configs

CONFIG_CASES = [
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9, "staircase": True}),
    ("InverseTimeDecay", {"initial_learning_rate": 0.05, "decay_steps": 1.0, "decay_rate": 0.5}),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 7, "power": 0.5, "cycle": True}),
    ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 100, "warmup_target": 0.1, "warmup_steps": 10}),
    ("CosineDecay", {"initial_learning_rate": 0.01, "decay_steps": 5, "alpha": 0.1, "name": "cos"}),
    ("PiecewiseConstantDecay", {"boundaries": [3, 7], "values": [0.1, 0.05, 0.01]}),
]


@pytest.mark.parametrize("name, arguments", CONFIG_CASES)
def test_schedule_configs_cross_load(name, arguments):
    ours = getattr(schedules, name)(**arguments)
    theirs = getattr(keras.optimizers.schedules, name)(**arguments)
    assert ours.get_config() == theirs.get_config()
    assert schedules.serialize(ours) == keras.optimizers.schedules.serialize(theirs)
    # each side rebuilds the other's serialised form, through JSON as in a file
    from_theirs = schedules.deserialize(json.loads(json.dumps(keras.optimizers.schedules.serialize(theirs))))
    from_ours = keras.optimizers.schedules.deserialize(json.loads(json.dumps(schedules.serialize(ours))))
    assert type(from_theirs) is type(ours) and from_theirs == ours
    assert type(from_ours) is type(theirs) and from_ours.get_config() == theirs.get_config()
    assert type(ours).from_config(ours.get_config()) == ours


@pytest.mark.parametrize("name, arguments", CONFIG_CASES)
def test_optimizer_configs_with_schedules_cross_load(name, arguments):
    ours = optimizers.Adam(learning_rate=getattr(schedules, name)(**arguments), name="opt")
    theirs = keras.optimizers.Adam(learning_rate=getattr(keras.optimizers.schedules, name)(**arguments), name="opt")
    assert ours.get_config() == theirs.get_config()
    rebuilt = keras.optimizers.Adam.from_config(json.loads(json.dumps(ours.get_config())))
    assert rebuilt.get_config() == theirs.get_config()
    back = optimizers.deserialize(json.loads(json.dumps(keras.optimizers.serialize(theirs))))
    assert isinstance(back, optimizers.Adam) and back.get_config() == ours.get_config()
    assert isinstance(back._learning_rate, getattr(schedules, name))


def test_schedule_argument_errors():
    for make, error, match in [
        (lambda: schedules.ExponentialDecay(0.1, 0, 0.9), ValueError, "decay_steps` must be > 0"),
        (lambda: schedules.PolynomialDecay(0.1, -3), ValueError, "decay_steps` must be > 0"),
        (lambda: schedules.CosineDecay("0.1", 10), TypeError, "initial_learning_rate` must be a number"),
        (lambda: schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2]), ValueError, "one element fewer"),
        (lambda: schedules.deserialize({"class_name": "CosineDecayRestarts", "config": {}}), ValueError, "Unknown"),
        (lambda: optimizers.SGD(learning_rate="0.1"), ValueError, "float \\(e.g. 0.01\\) or a LearningRateSchedule"),
    ]:
        with pytest.raises(error, match=match):
            make()
    # as in Keras: the base class must be subclassed
    with pytest.raises(NotImplementedError):
        schedules.LearningRateSchedule()(0)
    with pytest.raises(ValueError, match="decay_steps"):
        keras.optimizers.schedules.ExponentialDecay(0.1, 0, 0.9)


def test_schedules_module_is_importable_as_keras_names_it():
    import rankconv.optimizers.schedules as by_name

    assert by_name is schedules is optimizers.schedules
    assert isinstance(schedules.CosineDecay(0.1, 10), schedules.LearningRateSchedule)


# ----------------------------------------------------------------------------- optimizers with schedules


def _tiny_models(seed=0):
    ours = Sequential([layers.Input((4,)), layers.Dense(3, activation="tanh"), layers.Dense(2)])
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)])
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in ours.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs


OPTIMIZER_CASES = [
    ("SGD", {"momentum": 0.9}, "PiecewiseConstantDecay", {"boundaries": [1, 3], "values": [0.3, 0.1, 0.02]}),
    ("SGD", {}, "ExponentialDecay", {"initial_learning_rate": 0.2, "decay_steps": 2, "decay_rate": 0.5}),
    (
        "Adam",
        {"weight_decay": 0.1},
        "CosineDecay",
        {"initial_learning_rate": 0.0, "decay_steps": 4, "warmup_target": 0.05, "warmup_steps": 3},
    ),
    (
        "RMSprop",
        {},
        "InverseTimeDecay",
        {"initial_learning_rate": 0.01, "decay_steps": 1, "decay_rate": 0.5, "staircase": True},
    ),
    # the schedule sees the raw step count, not `iterations` (which counts accumulated steps)
    (
        "SGD",
        {"gradient_accumulation_steps": 2},
        "PolynomialDecay",
        {"initial_learning_rate": 0.5, "decay_steps": 5, "power": 2.0},
    ),
]


@pytest.mark.parametrize("optimizer, options, schedule, arguments", OPTIMIZER_CASES)
def test_optimizer_with_schedule_steps_like_keras(optimizer, options, schedule, arguments):
    ours, theirs = _tiny_models()
    ours.compile(getattr(optimizers, optimizer)(getattr(schedules, schedule)(**arguments), **options), "mse")
    theirs.compile(
        getattr(keras.optimizers, optimizer)(getattr(keras.optimizers.schedules, schedule)(**arguments), **options),
        "mse",
    )
    rng = np.random.default_rng(1)
    for _ in range(6):
        x = rng.standard_normal((8, 4)).astype(np.float32)
        y = rng.standard_normal((8, 2)).astype(np.float32)
        ours.train_on_batch(x, y)
        theirs.train_on_batch(x, y)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)
        assert ours.optimizer.iterations == int(keras.ops.convert_to_numpy(theirs.optimizer.iterations))
        assert ours.optimizer.learning_rate == pytest.approx(
            float(keras.ops.convert_to_numpy(theirs.optimizer.learning_rate)), rel=4 * EPS32
        )
    # no learning-rate variable with a schedule: the state lists the same variables as Keras's
    our_names = [v.name for v in ours.optimizer.variables]
    their_names = [v.name for v in theirs.optimizer.variables]
    assert len(our_names) == len(their_names) and our_names[0] == their_names[0] == "iteration"
    assert not [name for name in our_names + their_names if "learning_rate" in name]


def test_optimizer_learning_rate_can_become_a_schedule_as_in_keras():
    ours, theirs = optimizers.SGD(0.1), keras.optimizers.SGD(0.1)
    ours.learning_rate = 0.25  # numbers are set (ints too, as Keras's variable assign)
    ours.learning_rate = 1
    assert ours.learning_rate == 1.0
    ours.learning_rate = schedules.ExponentialDecay(0.1, 10, 0.5)
    theirs.learning_rate = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert ours.get_config()["learning_rate"] == theirs.get_config()["learning_rate"]
    assert [v.name for v in ours.variables] == ["iteration"]
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        ours.learning_rate = 0.1
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        theirs.learning_rate = 0.1


# ----------------------------------------------------------------------------- callbacks on fake models


class FakeModel:
    """What the learning-rate callbacks use of a model: `optimizer`, `stop_training`, `metrics`."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.stop_training = False
        self.metrics = []
        self.history = None


def _lr(optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _drive(make_callback, epoch_logs, learning_rate=0.1, batch_logs=None, steps=3):
    """Run our callback (through CallbackList, with History) and Keras's on the same logs in the
    order of `fit`; return, for each side, the learning rate at the start and end of every epoch,
    the callback's counters (if it has them), where training stopped, and the History record."""
    results = []
    for side in ("ours", "keras"):
        if side == "ours":
            model = FakeModel(optimizers.SGD(learning_rate=learning_rate))
            callback = make_callback(callbacks)
            history = callbacks.History()
            callback_list = callbacks.CallbackList([callback, history], model=model)
        else:
            model = FakeModel(keras.optimizers.SGD(learning_rate=learning_rate))
            callback = make_callback(keras.callbacks)
            history = keras.callbacks.History()
            callback_list = keras.callbacks.CallbackList([callback, history], model=model)
        trace, stopped = [], None
        callback_list.on_train_begin()
        for epoch, logs in enumerate(epoch_logs):
            callback_list.on_epoch_begin(epoch)
            start = _lr(model.optimizer)
            for step in range(steps):
                callback_list.on_train_batch_begin(step)
                callback_list.on_train_batch_end(step, batch_logs(epoch, step) if batch_logs else dict(logs))
                if model.stop_training:
                    stopped = (epoch, step)
                    break
            callback_list.on_epoch_end(epoch, dict(logs))
            state = [getattr(callback, name, None) for name in ("wait", "cooldown_counter", "best")]
            trace.append((start, _lr(model.optimizer), *state))
            if model.stop_training:
                break
        callback_list.on_train_end()
        results.append((trace, stopped, {k: list(map(float, v)) for k, v in history.history.items()}))
    return results


# A monitored value that mostly stays put, sometimes moves by less than a `min_delta`, sometimes jumps.
plateau_values = st.lists(
    st.sampled_from([0.0, 0.0, 0.0, 0.0, -5e-5, 5e-5, -0.005, -0.05, 0.05, -0.3, 0.3]), min_size=3, max_size=30
).map(lambda steps: [float(v) for v in 1.0 + np.cumsum(steps)])


@settings(max_examples=100)
@given(
    values=plateau_values,
    patience=st.integers(0, 4),
    cooldown=st.integers(0, 3),
    factor=st.sampled_from([0.1, 0.5, 0.75, 0.3333]),
    min_lr=st.sampled_from([0.0, 0.0, 1e-3, 0.02, 0.05, 0.1]),
    min_delta=st.sampled_from([0.0, 1e-4, 0.01, 0.2]),
    monitor_mode=st.sampled_from([("val_loss", "auto"), ("val_loss", "min"), ("val_acc", "max"), ("loss", "max")]),
    learning_rate=st.sampled_from([0.1, 0.05, 0.001]),
)
def test_reduce_lr_on_plateau_matches_keras(
    values, patience, cooldown, factor, min_lr, min_delta, monitor_mode, learning_rate
):
    monitor, mode = monitor_mode
    epoch_logs = [{"loss": v + 0.5, "val_loss": v, "val_acc": v} for v in values]

    def make(module):
        return module.ReduceLROnPlateau(
            monitor=monitor,
            factor=factor,
            patience=patience,
            mode=mode,
            min_delta=min_delta,
            cooldown=cooldown,
            min_lr=min_lr,
        )

    ours, theirs = _drive(make, epoch_logs, learning_rate)
    assert ours == theirs


def test_reduce_lr_on_plateau_missing_monitor_warns_and_logs_the_rate_like_keras():
    epoch_logs = [{"loss": 1.0}] * 3
    with pytest.warns(UserWarning, match="not available"):
        ours, theirs = _drive(lambda m: m.ReduceLROnPlateau(patience=0), epoch_logs)
    assert ours == theirs and ours[2]["learning_rate"] == [0.10000000149011612] * 3


def test_reduce_lr_on_plateau_errors_like_keras():
    for module in (callbacks, keras.callbacks):
        with pytest.raises(ValueError, match="factor"):
            module.ReduceLROnPlateau(factor=1.0)
    # with a schedule the rate cannot be set: both raise TypeError when a reduction is due
    for module, opt, sched in (
        (callbacks, optimizers, schedules),
        (keras.callbacks, keras.optimizers, keras.optimizers.schedules),
    ):
        model = FakeModel(opt.SGD(learning_rate=sched.ExponentialDecay(0.1, 10, 0.5)))
        callback = module.ReduceLROnPlateau(monitor="loss", patience=1)
        callback.set_model(model)
        callback.on_train_begin()
        callback.on_epoch_end(0, {"loss": 1.0})  # the first value is the best: no reduction yet
        with pytest.raises(TypeError, match="LearningRateSchedule"):
            callback.on_epoch_end(1, {"loss": 1.0})


def _halve_odd_epochs(epoch, lr):
    return lr * 0.5 if epoch % 2 else lr


SCHEDULER_FUNCTIONS = [
    _halve_odd_epochs,
    lambda epoch: 0.1 / (epoch + 1),  # the one-argument form
    lambda epoch, lr: float(np.float32(lr) * np.float32(0.9)),
    lambda epoch, lr: np.float32(0.3 * math.exp(-epoch)),
    lambda epoch, lr: np.float64(lr + 0.01),
]


@pytest.mark.parametrize("function", SCHEDULER_FUNCTIONS)
def test_learning_rate_scheduler_matches_keras(function):
    epoch_logs = [{"loss": 1.0 / (i + 1)} for i in range(7)]
    ours, theirs = _drive(lambda m: m.LearningRateScheduler(function), epoch_logs, learning_rate=0.2)
    assert ours == theirs
    assert "learning_rate" in ours[2]


def test_learning_rate_scheduler_errors_like_keras():
    for function in (lambda epoch, lr: 1, lambda epoch, lr: "0.1", lambda epoch, lr: None):
        for module, opt in ((callbacks, optimizers), (keras.callbacks, keras.optimizers)):
            callback = module.LearningRateScheduler(function)
            callback.set_model(FakeModel(opt.SGD(0.1)))
            with pytest.raises(ValueError, match="float"):
                callback.on_epoch_begin(0)
    for module, opt, sched in (
        (callbacks, optimizers, schedules),
        (keras.callbacks, keras.optimizers, keras.optimizers.schedules),
    ):
        callback = module.LearningRateScheduler(lambda epoch, lr: lr / 2)
        callback.set_model(FakeModel(opt.SGD(sched.PiecewiseConstantDecay([2], [0.1, 0.01]))))
        with pytest.raises(TypeError, match="LearningRateSchedule"):
            callback.on_epoch_begin(0)


@settings(max_examples=30)
@given(
    bad=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), max_size=3),
    value=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_terminate_on_nan_stops_at_the_same_batch_as_keras(bad, value):
    bad = set(bad)

    def batch_logs(epoch, step):
        return {"loss": value if (epoch, step) in bad else 0.5, "accuracy": 0.25}

    epoch_logs = [{"loss": 0.5}] * 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = _drive(lambda m: m.TerminateOnNaN(), epoch_logs, batch_logs=batch_logs, steps=4)
    assert ours == theirs
    assert ours[1] == (min(bad) if bad else None)


def test_terminate_on_nan_can_raise():
    callback = callbacks.TerminateOnNaN(raise_error=True)
    callback.set_model(FakeModel(optimizers.SGD()))
    callback.on_train_batch_end(0, {"loss": 1.0})
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        callback.on_train_batch_end(1, {"loss": math.nan})


# ----------------------------------------------------------------------------- callbacks in fit


def _fit_both(callback_of, epochs=5, x=None):
    ours, theirs = _tiny_models(seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((24, 4)).astype(np.float32) if x is None else x
    y = rng.standard_normal((24, 2)).astype(np.float32)
    ours.compile(optimizers.SGD(learning_rate=0.05), losses.MeanSquaredError())
    theirs.compile(keras.optimizers.SGD(learning_rate=0.05), keras.losses.MeanSquaredError())
    our_history = ours.fit(
        x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, callbacks=callback_of(callbacks)
    )
    their_history = theirs.fit(
        x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, callbacks=callback_of(keras.callbacks)
    )
    return ours, theirs, our_history.history, their_history.history


def test_callbacks_in_fit_match_keras():
    # the loss falls every epoch, so in "max" mode it never improves: a reduction every other epoch
    ours, theirs, our_history, their_history = _fit_both(
        lambda m: [
            m.LearningRateScheduler(lambda epoch, lr: lr * 0.9 if epoch else 0.08),
            m.ReduceLROnPlateau(monitor="loss", mode="max", patience=2, factor=0.5, min_delta=0.0),
        ]
    )
    assert our_history["learning_rate"] == their_history["learning_rate"]
    assert our_history["loss"] == pytest.approx(their_history["loss"], rel=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)


def test_terminate_on_nan_in_fit_matches_keras():
    x = np.random.default_rng(5).standard_normal((24, 4)).astype(np.float32)
    x[13, 2] = np.nan  # in the second batch of the first epoch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs, our_history, their_history = _fit_both(lambda m: [m.TerminateOnNaN()], x=x)
    assert len(our_history["loss"]) == len(their_history["loss"]) == 1
    assert ours.optimizer.iterations == int(keras.ops.convert_to_numpy(theirs.optimizer.iterations)) == 2


# ----------------------------------------------------------------------------- .keras files


def _compile_config(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))["compile_config"]


def test_keras_files_with_schedules_load_both_ways(tmp_path):
    ours, theirs = _tiny_models()
    arguments = {
        "initial_learning_rate": 0.0,
        "decay_steps": 20,
        "alpha": 0.1,
        "warmup_target": 0.01,
        "warmup_steps": 5,
    }
    ours.compile(optimizers.Adam(learning_rate=schedules.CosineDecay(**arguments), name="adam"), "mse")
    theirs.compile(
        keras.optimizers.Adam(learning_rate=keras.optimizers.schedules.CosineDecay(**arguments), name="adam"), "mse"
    )
    ours.save(tmp_path / "ours.keras")
    theirs.save(tmp_path / "theirs.keras")
    # the schedule is written as Keras writes it
    our_optimizer = _compile_config(tmp_path / "ours.keras")["optimizer"]
    their_optimizer = _compile_config(tmp_path / "theirs.keras")["optimizer"]
    assert our_optimizer["config"] == their_optimizer["config"]
    assert our_optimizer["config"]["learning_rate"]["module"] == "keras.optimizers.schedules"

    in_keras = keras.saving.load_model(tmp_path / "ours.keras")
    assert isinstance(in_keras.optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)
    assert in_keras.optimizer.get_config() == theirs.optimizer.get_config()

    in_rankconv = saving.load_model(tmp_path / "theirs.keras")
    assert isinstance(in_rankconv.optimizer._learning_rate, schedules.CosineDecay)
    assert in_rankconv.optimizer.get_config() == ours.optimizer.get_config()

    # and the loaded optimizers step alike
    x = np.random.default_rng(2).standard_normal((8, 4)).astype(np.float32)
    y = np.random.default_rng(3).standard_normal((8, 2)).astype(np.float32)
    for _ in range(3):
        in_rankconv.train_on_batch(x, y)
        in_keras.train_on_batch(x, y)
    for a, b in zip(in_rankconv.get_weights(), in_keras.get_weights()):
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)
