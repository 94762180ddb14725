"""Learning-rate schedules with Keras 3's names, arguments, values and configs
(`rankconv.optimizers.schedules`, like `keras.optimizers.schedules`).

A schedule maps the optimizer's step count to a learning rate. Give one to an optimizer as its
`learning_rate` and it is evaluated before every update at the raw count of `apply` calls (the
optimizer's `iteration` variable, as Keras does; with gradient accumulation this is not
`optimizer.iterations`):

    lr = rankconv.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96)
    model.compile(optimizer=rankconv.optimizers.SGD(learning_rate=lr), loss="mse")

`schedule(step)` returns a NumPy float32 scalar computed in float32 operation by operation as Keras
computes it (Keras turns a Python float learning rate into a float32 tensor and casts the other
numbers to it), so the values agree with Keras's to an ulp or two (`pow` and `cos` are evaluated
in float64 and rounded once, which matches torch's float32 kernels far more often than NumPy's
float32 ones do). Keras computes in the dtype of `initial_learning_rate`: an integer one gives integer
arithmetic there; here the arithmetic is float32 whatever the arguments' types.

A schedule serialises as Keras writes it inside an optimizer config,
`{"module": "keras.optimizers.schedules", "class_name": ..., "config": ..., "registered_name": None}`,
and `deserialize` rebuilds only the classes defined here.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from rankconv import objects

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "serialize",
    "deserialize",
    "get",
]

_F32 = np.float32


# torch's float32 `pow` and `cos` mostly return the correctly rounded result, which NumPy's float32
# kernels often do not: evaluate in float64 and round once.
def _power(base, exponent):
    with np.errstate(over="ignore"):  # a rate that overflows float32 is inf, silently, as in torch
        return np.power(np.float64(base), np.float64(exponent)).astype(_F32)[()]


def _cos(x):
    return np.cos(np.float64(x)).astype(_F32)[()]


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_real(value, argument: str, cls_name: str):
    if not _is_real(value):
        raise TypeError(
            f"{cls_name}: `{argument}` must be a number; received {argument}={value!r} of type {type(value).__name__}."
        )
    return value


def _check_decay_steps(value, cls_name: str, argument: str = "decay_steps"):
    _check_real(value, argument, cls_name)
    if not value > 0:
        raise ValueError(f"{cls_name}: `{argument}` must be > 0; received {argument}={value!r}.")
    return value


def _step_value(step):
    """The step as a NumPy scalar or array (a rankconv `Variable` gives its value)."""
    value = getattr(step, "value", step)
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"A schedule's `step` must be a number; received step={step!r}.")
    return array


def _f32_step(step):
    return _step_value(step).astype(_F32)[()]


@objects.family("keras.optimizers.schedules")
class LearningRateSchedule(objects.Configurable):
    """Base class of learning-rate schedules: subclasses implement `__call__(step)`, and
    `get_config()` to be saved (`from_config(config)` calls the constructor with it)."""

    def __call__(self, step):
        raise NotImplementedError(f"Learning-rate schedule '{type(self).__name__}' must implement `__call__(step)`.")

    def get_config(self) -> dict:
        raise NotImplementedError(
            f"Learning-rate schedule '{type(self).__name__}' must implement `get_config()` to be serialised."
        )

    def __repr__(self) -> str:
        try:
            return super().__repr__()
        except NotImplementedError:
            return f"<{type(self).__name__}>"


class _RateDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: their arguments, checks and config, and
    the progress `step / decay_steps` (rounded down with `staircase=True`)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        cls_name = type(self).__name__
        self.initial_learning_rate = _check_real(initial_learning_rate, "initial_learning_rate", cls_name)
        self.decay_steps = _check_decay_steps(decay_steps, cls_name)
        self.decay_rate = _check_real(decay_rate, "decay_rate", cls_name)
        self.staircase = staircase
        self.name = name

    def _progress(self, step):
        progress = _f32_step(step) / _F32(self.decay_steps)
        return np.floor(progress) if self.staircase else progress

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


@objects.register()
class ExponentialDecay(_RateDecay):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)`; with `staircase=True` the
    exponent is rounded down, so the rate drops every `decay_steps` steps."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return _F32(self.initial_learning_rate) * _power(_F32(self.decay_rate), self._progress(step))


@objects.register()
class PiecewiseConstantDecay(LearningRateSchedule):
    """`values[0]` up to and including step `boundaries[0]`, `values[i]` for
    `boundaries[i-1] < step <= boundaries[i]`, `values[-1]` after `boundaries[-1]`.

    As in Keras, boundaries are compared in the step's type (an integer step truncates fractional
    boundaries) and the result is the sum of each value times its interval's indicator, so
    boundaries that do not increase give Keras's (odd) sums too.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        cls_name = type(self).__name__
        for argument, sequence in (("boundaries", boundaries), ("values", values)):
            if isinstance(sequence, (str, bytes)) or not hasattr(sequence, "__len__"):
                raise TypeError(
                    f"{cls_name}: `{argument}` must be a list of numbers; received {argument}={sequence!r}."
                )
            for item in sequence:
                if not _is_real(item):
                    raise TypeError(
                        f"{cls_name}: `{argument}` must hold numbers; received {argument}={sequence!r}, "
                        f"with {item!r} of type {type(item).__name__}."
                    )
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                f"{cls_name}: `boundaries` must have one element fewer than `values`; received "
                f"boundaries={boundaries!r} (length {len(boundaries)}) and values={values!r} (length {len(values)})."
            )
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        step = _step_value(step)
        if step.dtype.kind == "f":
            step = step.astype(_F32)
            bounds = [_F32(b) for b in self.boundaries]
        else:
            bounds = [np.asarray(b).astype(np.int64)[()] for b in self.boundaries]
        values = [_F32(v) for v in self.values]
        if not bounds:
            return values[0] + _F32(0) * step.astype(_F32)
        result = _F32(0) + _F32(step <= bounds[0]) * values[0]
        result = result + _F32(step > bounds[-1]) * values[-1]
        for low, high, value in zip(bounds[:-1], bounds[1:], values[1:-1]):
            result = result + _F32((step > low) & (step <= high)) * value
        return _F32(result)

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


@objects.register()
class PolynomialDecay(LearningRateSchedule):
    """From `initial_learning_rate` to `end_learning_rate` over `decay_steps` steps along
    `(1 - step / decay_steps) ** power`, then constant; with `cycle=True` the decay restarts with
    the period stretched to the first multiple of `decay_steps` at or past the step."""

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        end_learning_rate=0.0001,
        power=1.0,
        cycle=False,
        name="PolynomialDecay",
    ):
        cls_name = type(self).__name__
        self.initial_learning_rate = _check_real(initial_learning_rate, "initial_learning_rate", cls_name)
        self.decay_steps = _check_decay_steps(decay_steps, cls_name)
        self.end_learning_rate = _check_real(end_learning_rate, "end_learning_rate", cls_name)
        self.power = _check_real(power, "power", cls_name)
        self.cycle = cycle
        self.name = name

    def __call__(self, step):
        start, end = _F32(self.initial_learning_rate), _F32(self.end_learning_rate)
        step = _f32_step(step)
        period = _F32(self.decay_steps)
        if self.cycle:
            multiple = np.where(step == 0, _F32(1), np.ceil(step / period)).astype(_F32)
            period = period * multiple
        else:
            step = np.minimum(step, period)
        fraction = step / period
        return (start - end) * _power(_F32(1) - fraction, _F32(self.power)) + end

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


@objects.register()
class InverseTimeDecay(_RateDecay):
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)`; with `staircase=True`
    `step / decay_steps` is rounded down."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return _F32(self.initial_learning_rate) / (_F32(1) + _F32(self.decay_rate) * self._progress(step))


@objects.register()
class CosineDecay(LearningRateSchedule):
    """Half a cosine from a peak rate down to `alpha` times it over `decay_steps` steps, then constant.

    Without `warmup_target` the peak is `initial_learning_rate`. With it, the rate first rises
    linearly from `initial_learning_rate` to `warmup_target` over `warmup_steps` steps, and the
    cosine then runs from `warmup_target`.
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        alpha=0.0,
        name="CosineDecay",
        warmup_target=None,
        warmup_steps=0,
    ):
        cls_name = type(self).__name__
        self.initial_learning_rate = _check_real(initial_learning_rate, "initial_learning_rate", cls_name)
        self.decay_steps = _check_decay_steps(decay_steps, cls_name)
        self.alpha = _check_real(alpha, "alpha", cls_name)
        self.name = name
        if warmup_target is not None:
            _check_real(warmup_target, "warmup_target", cls_name)
        self.warmup_target = warmup_target
        _check_real(warmup_steps, "warmup_steps", cls_name)
        if warmup_steps < 0:
            raise ValueError(f"{cls_name}: `warmup_steps` must be >= 0; received warmup_steps={warmup_steps!r}.")
        self.warmup_steps = warmup_steps

    def _cosine(self, step, period, peak):
        fraction = step / period
        half_cosine = _F32(0.5) * (_F32(1) + _cos(_F32(math.pi) * fraction))
        return peak * (_F32(1 - self.alpha) * half_cosine + _F32(self.alpha))

    def __call__(self, step):
        start = _F32(self.initial_learning_rate)
        period = _F32(self.decay_steps)
        step = _f32_step(step)
        if self.warmup_target is None:
            return self._cosine(np.minimum(step, period), period, start)
        target, warmup = _F32(self.warmup_target), _F32(self.warmup_steps)
        step = np.minimum(step, period + warmup)
        if step < warmup:
            return (target - start) * (step / warmup) + start
        return self._cosine(step - warmup, period, target)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


serialize = objects.serialize


def deserialize(config, argument: str = "learning_rate") -> LearningRateSchedule:
    """Rebuild a schedule from `serialize`'s dict (Keras's, whatever its `module`): only the classes here."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"`{argument}` must be a schedule config, a dict with a 'class_name'; received {config!r}.")
    cls = LearningRateSchedule.registry.get(config["class_name"])
    if cls is None:
        raise ValueError(
            f"Unknown learning-rate schedule {config['class_name']!r} for `{argument}`; rankconv builds only "
            f"{sorted(LearningRateSchedule.registry)}."
        )
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise ValueError(f"The config of {config['class_name']} for `{argument}` must be a dict; received {inner!r}.")
    try:
        return cls.from_config(dict(inner))
    except TypeError as error:
        raise ValueError(f"{config['class_name']} cannot be built from the config {inner!r}: {error}") from None


def get(identifier, argument: str = "learning_rate"):
    """None, a schedule, or a serialised schedule dict, as a schedule (or None)."""
    if identifier is None or isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier, argument)
    raise TypeError(f"`{argument}` must be a LearningRateSchedule or its config dict; received {identifier!r}.")
