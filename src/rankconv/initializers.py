"""Weight initializers with Keras 3's names, arguments, configs and fan arithmetic.

Values come from NumPy's generator, so they match Keras's distributions, not its exact numbers.
With `seed=None` an initializer draws from the global generator (`utils.set_random_seed`);
with an int seed it gives the same values every call, as Keras's seeded initializers do.
"""

from __future__ import annotations

import math

import numpy as np

from rankconv import objects, utils


@objects.family("keras.initializers")
class Initializer(objects.Configurable):
    def __call__(self, shape, dtype="float32") -> np.ndarray:
        raise NotImplementedError


class _Seeded(Initializer):
    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`seed` must be an int or None; received seed={seed!r}.")
        self.seed = seed

    def _generator(self) -> np.random.Generator:
        return utils.random_generator() if self.seed is None else np.random.default_rng(self.seed)


def compute_fans(shape, input_axes=None, output_axes=None) -> tuple[int, int]:
    """Keras's fans: a conv kernel (*k, cin, cout) has fan_in = prod(k)*cin, fan_out = prod(k)*cout.

    `input_axes` and `output_axes`, given together, name the axes whose sizes multiply into each fan.
    """
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


@objects.register("zeros", "zero")
class Zeros(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.zeros(shape, dtype=dtype)


@objects.register("ones", "one")
class Ones(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.ones(shape, dtype=dtype)


@objects.register("constant")
class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype="float32"):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


@objects.register("random_uniform", "uniform")
class RandomUniform(_Seeded):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype="float32"):
        return self._generator().uniform(self.minval, self.maxval, size=shape).astype(dtype)

    def get_config(self):
        return {"seed": self.seed, "minval": self.minval, "maxval": self.maxval}


@objects.register("random_normal", "normal")
class RandomNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype="float32"):
        return self._generator().normal(self.mean, self.stddev, size=shape).astype(dtype)

    def get_config(self):
        return {"seed": self.seed, "mean": self.mean, "stddev": self.stddev}


def _truncated_normal(generator, mean, stddev, shape):
    """Normal values redrawn until within two standard deviations (as Keras's truncated_normal)."""
    values = generator.standard_normal(size=shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = generator.standard_normal(size=int(outside.sum()))
        outside = np.abs(values) > 2
    return mean + stddev * values


@objects.register("truncated_normal")
class TruncatedNormal(RandomNormal):
    def __call__(self, shape, dtype="float32"):
        return _truncated_normal(self._generator(), self.mean, self.stddev, shape).astype(dtype)


@objects.register("variance_scaling")
class VarianceScaling(_Seeded):
    def __init__(
        self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, input_axes=None, output_axes=None
    ):
        super().__init__(seed)
        self.input_axes = None if input_axes is None else list(input_axes)
        self.output_axes = None if output_axes is None else list(output_axes)
        if scale <= 0:
            raise ValueError(f"`scale` must be positive; received scale={scale!r}.")
        mode = mode.lower() if isinstance(mode, str) else mode
        distribution = distribution.lower() if isinstance(distribution, str) else distribution
        distribution = {"normal": "truncated_normal"}.get(distribution, distribution)  # Keras's alias
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"`mode` must be 'fan_in', 'fan_out' or 'fan_avg'; received mode={mode!r}.")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "`distribution` must be 'truncated_normal', 'untruncated_normal' or 'uniform'; "
                f"received distribution={distribution!r}."
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        generator = self._generator()
        if self.distribution == "uniform":
            limit = math.sqrt(3 * variance)
            values = generator.uniform(-limit, limit, size=shape)
        elif self.distribution == "untruncated_normal":
            values = generator.normal(0, math.sqrt(variance), size=shape)
        else:
            # the std of a unit normal truncated to [-2, 2]
            values = _truncated_normal(generator, 0.0, math.sqrt(variance) / 0.87962566103423978, shape)
        return values.astype(dtype)

    def get_config(self):
        return {
            "seed": self.seed,
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


def _preset(name, alias, scale, mode, distribution):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}

    cls = type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__module__": __name__})
    return objects.register(alias)(cls)


GlorotUniform = _preset("GlorotUniform", "glorot_uniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _preset("GlorotNormal", "glorot_normal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _preset("HeUniform", "he_uniform", 2.0, "fan_in", "uniform")
HeNormal = _preset("HeNormal", "he_normal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _preset("LecunUniform", "lecun_uniform", 1.0, "fan_in", "uniform")
LecunNormal = _preset("LecunNormal", "lecun_normal", 1.0, "fan_in", "truncated_normal")


def get(identifier, argument="initializer") -> Initializer | None:
    """An initializer from a name (`"glorot_uniform"`), a class name, a config dict or an instance."""
    return objects.get(Initializer, identifier, argument)


serialize = objects.serialize
