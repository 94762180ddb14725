"""The Keras layer contract on NumPy: build from the first input's shape, weights, configs."""

from __future__ import annotations

import collections
import re

import numpy as np

from rankconv import objects

_name_counts: collections.defaultdict[str, int] = collections.defaultdict(int)


def to_snake_case(name: str) -> str:
    """`"GlobalMaxPooling1D"` → `"global_max_pooling1d"`, as Keras names layers and weight groups."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base: str) -> str:
    """`conv2d`, then `conv2d_1`, `conv2d_2`, …: Keras's automatic layer names."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


FLOAT_DTYPES = ("float32", "float64")


def normalize_dtype(dtype) -> str:
    """A dtype name, a NumPy dtype, or Keras's serialised `DTypePolicy` dict → "float32"/"float64"."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in FLOAT_DTYPES:
        raise ValueError(f"`dtype` must be one of {FLOAT_DTYPES}; received dtype={dtype!r}.")
    return name


class Variable:
    """A named weight: `value` is the NumPy array that training updates in place."""

    def __init__(
        self, value: np.ndarray, name: str, layer_name: str, trainable=True, regularizer=None, constraint=None
    ):
        self.value = value
        self.name = name
        self.path = f"{layer_name}/{name}"
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> str:
        return self.value.dtype.name

    def numpy(self) -> np.ndarray:
        return self.value

    def assign(self, value) -> None:
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(
                f"Cannot assign a value of shape {value.shape} to `{self.path}` of shape {self.value.shape}."
            )
        self.value[...] = value

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self) -> str:
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}>"


class Layer:
    """Base class: `__call__` builds the layer from the first input's shape, then calls `call`."""

    def __init__(self, name=None, dtype=None, trainable=True, activity_regularizer=None):
        from rankconv import regularizers

        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"`name` must be a non-empty string without '/'; received name={name!r}.")
        self.name = name if name is not None else unique_name(to_snake_case(type(self).__name__))
        self.dtype = normalize_dtype(dtype)
        self.trainable = bool(trainable)
        self.activity_regularizer = regularizers.get(activity_regularizer, "activity_regularizer")
        self.built = False
        self._variables: list[Variable] = []
        self._activity_losses: list[float] = []
        self._build_input_shape = None

    # -- weights --------------------------------------------------------------------------

    def add_weight(self, shape, initializer, name, trainable=True, regularizer=None, constraint=None) -> Variable:
        value = np.ascontiguousarray(initializer(tuple(shape), dtype=self.dtype))
        variable = Variable(value, name, self.name, trainable, regularizer, constraint)
        self._variables.append(variable)
        return variable

    @property
    def weights(self) -> list[Variable]:
        """Trainable weights first, then non-trainable ones (Keras's order)."""
        return self.trainable_weights + self.non_trainable_weights

    @property
    def trainable_weights(self) -> list[Variable]:
        return [v for v in self._variables if v.trainable and self.trainable]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return [v for v in self._variables if not (v.trainable and self.trainable)]

    def get_weights(self) -> list[np.ndarray]:
        return [v.value.copy() for v in self.weights]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        expected = self.weights
        if len(weights) != len(expected):
            raise ValueError(
                f"Layer '{self.name}' expects {len(expected)} weight arrays "
                f"({', '.join(f'{v.name} {v.shape}' for v in expected) or 'none'}); received {len(weights)}."
            )
        arrays = []
        for variable, value in zip(expected, weights):
            value = np.asarray(value)
            if value.shape != variable.shape:
                raise ValueError(
                    f"Layer '{self.name}' weight '{variable.name}' has shape {variable.shape}; "
                    f"received an array of shape {value.shape}."
                )
            if value.dtype.kind not in "biuf":
                raise TypeError(
                    f"Layer '{self.name}' weight '{variable.name}' must be numeric; received dtype {value.dtype}."
                )
            arrays.append(value)
        for variable, value in zip(expected, arrays):
            variable.assign(value)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet, so it has no weights to count. "
                "Call it on an input or call `build(input_shape)` first."
            )
        return int(sum(v.value.size for v in self._variables))

    @property
    def losses(self) -> list[float]:
        """Regularization penalties of the weights, and activity penalties of the last call."""
        penalties = [v.regularizer(v.value) for v in self._variables if v.regularizer is not None]
        return penalties + list(self._activity_losses)

    # -- calling ----------------------------------------------------------------------------

    def build(self, input_shape) -> None:
        self._build_input_shape = tuple(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        raise NotImplementedError

    def __call__(self, inputs, training=None):
        inputs = self._to_array(inputs)
        self.check_input_shape(inputs.shape)
        if not self.built:
            self.build((None, *inputs.shape[1:]) if inputs.ndim else inputs.shape)
        outputs = self.call(inputs, training=training)
        if self.activity_regularizer is not None:
            self._activity_losses = [self.activity_regularizer(outputs)]
        return outputs

    def _to_array(self, inputs) -> np.ndarray:
        array = np.asarray(inputs)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"Layer '{self.name}' expects a numeric array; received an array of dtype {array.dtype} "
                f"and shape {array.shape}."
            )
        return array.astype(self.dtype, copy=False)

    def check_input_shape(self, shape) -> None:
        """Raise a clear error when inputs of `shape` cannot go through this layer."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # -- configuration ----------------------------------------------------------------------

    def get_config(self) -> dict:
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": self.dtype},
                "registered_name": None,
            },
        }
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = objects.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def get_build_config(self) -> dict | None:
        if self._build_input_shape is None:
            return None
        return {"input_shape": self._build_input_shape}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
