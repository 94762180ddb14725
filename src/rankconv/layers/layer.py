"""The Keras layer contract on NumPy.

Calling a layer on an array builds it from the array's shape (once) and computes `call`. Calling
it on a symbolic `KerasTensor` (from `rankconv.Input`) only works out shapes and records a `Node`,
which is how functional models are wired. Weights are `Variable`s; inside a `GradientTape` the
ops read them as tracers, so the same `call` serves inference and training.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import re
import threading

import numpy as np

from rankconv import objects, ops, regularizers
from rankconv.ops.autodiff import Tracer, Variable

_name_counts: collections.defaultdict[str, int] = collections.defaultdict(int)
_allocation_budget: list[tuple[int, str]] = []  # (elements weights may still take, where the limit comes from)


@contextlib.contextmanager
def allocation_limit(elements: int, what: str = "the weights file holds"):
    """Refuse weights beyond `elements` in total while the block runs: a model file cannot make
    its layers allocate more than the weights it stores (an absurd `units` fails early, clearly).
    `what` ends the error message: where the limit comes from."""
    _allocation_budget.append((int(elements), what))
    try:
        yield
    finally:
        _allocation_budget.pop()


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


def normalize_dtype(dtype, allowed=FLOAT_DTYPES) -> str:
    """A dtype name, a NumPy dtype, or Keras's serialised `DTypePolicy` dict → its name."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, dict):
        config = dtype.get("config") or {}
        if not isinstance(config, dict):
            raise ValueError(f"`dtype` policy config must be an object; received {config!r}.")
        dtype = config.get("name") or "float32"
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in allowed:
        raise ValueError(f"`dtype` must be one of {allowed}; received dtype={dtype!r}.")
    return name


def dtype_policy(name: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


# ----------------------------------------------------------------------------- symbolic tensors


class KerasTensor:
    """A symbolic tensor: a shape (None for unknown sizes, the batch first) and a dtype, plus
    where it came from (`node`, the index among that node's outputs)."""

    def __init__(self, shape, dtype="float32", node=None, index=0, name=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = dtype
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


class Node:
    """One call of a layer on symbolic inputs: the layer, its input tensors, its outputs."""

    def __init__(self, layer, inputs, outputs, arguments):
        self.layer = layer
        self.inputs = inputs  # a KerasTensor or a list of them, as passed
        self.outputs = outputs  # list of KerasTensors
        self.arguments = arguments  # other keyword arguments of the call (e.g. training)
        layer._inbound_nodes.append(self)

    @property
    def input_tensors(self) -> list:
        return list(self.inputs) if isinstance(self.inputs, (list, tuple)) else [self.inputs]


def _is_symbolic(inputs) -> bool:
    if isinstance(inputs, (list, tuple)):
        return any(isinstance(x, KerasTensor) for x in inputs)
    return isinstance(inputs, KerasTensor)


def _shape_of(x):
    if isinstance(x, (list, tuple)):
        return [_shape_of(v) for v in x]
    return tuple(x.shape)


@functools.cache
def _call_arguments(cls) -> frozenset:
    return frozenset(inspect.signature(cls.call).parameters)


# ----------------------------------------------------------------------------- layers


_build_lock = threading.RLock()  # builds nest (a model builds its layers), in one thread


def _build_once(build):
    """A layer's weights are made once: building a built layer again does nothing, also when
    several threads call a fresh layer at once (the first builds, the others find it built)."""

    @functools.wraps(build)
    def wrapper(self, *args, **kwargs):
        if self.built:
            return None
        with _build_lock:
            if self.built:
                return None
            return build(self, *args, **kwargs)

    return wrapper


class Layer:
    """Base class: `__call__` builds the layer from the first input's shape, then calls `call`."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            cls.build = _build_once(cls.__dict__["build"])

    def __init__(self, name=None, dtype=None, trainable=True, activity_regularizer=None):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"`name` must be a non-empty string without '/'; received name={name!r}.")
        self.name = name if name is not None else unique_name(to_snake_case(type(self).__name__))
        self.dtype = normalize_dtype(dtype)
        self.trainable = bool(trainable)
        self.activity_regularizer = regularizers.get(activity_regularizer, "activity_regularizer")
        self.supports_masking = False
        self.built = False
        self._variables: list[Variable] = []
        self._activity_losses: list = []
        self._build_input_shape = None
        self._inbound_nodes: list[Node] = []

    # -- weights --------------------------------------------------------------------------

    def add_weight(self, shape, initializer, name, trainable=True, regularizer=None, constraint=None) -> Variable:
        if _allocation_budget:
            size = int(np.prod(shape, dtype=object))
            budget, what = _allocation_budget[-1]
            if size > budget:
                raise ValueError(
                    f"Layer '{self.name}' would create weight '{name}' of shape {tuple(shape)} ({size:,} values), more "
                    f"than the {budget:,} {what}."
                )
            _allocation_budget[-1] = (budget - size, what)
        value = np.ascontiguousarray(initializer(tuple(shape), dtype=self.dtype))
        variable = Variable(value, name, f"{self.name}/{name}", trainable, regularizer, constraint)
        self._variables.append(variable)
        return variable

    def add_kernel_and_bias(self, kernel_shape, units) -> None:
        """`self.kernel` and (with `use_bias`) `self.bias` of `units`, from the layer's initializers,
        regularizers and constraints (the attributes `kernel_initializer`, … that Dense and Conv share)."""
        self.kernel = self.add_weight(
            kernel_shape,
            self.kernel_initializer,
            "kernel",
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                (units,),
                self.bias_initializer,
                "bias",
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    @property
    def weights(self) -> list[Variable]:
        """Trainable weights first, then non-trainable ones (Keras's order)."""
        return self.trainable_weights + self.non_trainable_weights

    @property
    def variables(self) -> list[Variable]:
        """All weights in creation order (the order of a layer's `vars` group in Keras's files)."""
        return list(self._variables)

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
        return int(sum(v.value.size for v in self.weights))

    @property
    def losses(self) -> list:
        """Penalties of the trainable weights' regularizers, and activity penalties of the last call."""
        penalties = [v.regularizer(v) for v in self.trainable_weights if v.regularizer is not None]
        return penalties + list(self._activity_losses)

    # -- calling ----------------------------------------------------------------------------

    def build(self, input_shape) -> None:
        self._build_input_shape = _freeze(input_shape)
        self.built = True

    def call(self, inputs):
        raise NotImplementedError

    def check_input_shape(self, shape) -> None:
        """Raise a clear error when inputs of `shape` cannot go through this layer."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        """The mask of the output: the input's mask where the layer supports masking, else none."""
        return mask if self.supports_masking else None

    def output_dtype(self, input_dtype) -> str:
        return self.dtype

    def __call__(self, inputs, training=None, mask=None, **kwargs):
        if _is_symbolic(inputs):
            return self._symbolic_call(inputs, training=training, **kwargs)
        inputs = self._convert_inputs(inputs)
        shape = _shape_of(inputs)
        self.check_input_shape(shape)
        if not self.built:
            self.build(shape)
        accepted = _call_arguments(type(self))
        if "training" in accepted:
            kwargs["training"] = training
        if "mask" in accepted and mask is not None:
            kwargs["mask"] = mask
        outputs = self.call(inputs, **kwargs)
        if self.activity_regularizer is not None:
            # Keras 3 divides activity penalties by the batch size
            self._activity_losses.append(self.activity_regularizer(outputs) / max(1, ops.shape(outputs)[0]))
        return outputs

    def _convert_inputs(self, inputs):
        if isinstance(inputs, (list, tuple)):
            return [self._convert_one(x) for x in inputs]
        return self._convert_one(inputs)

    def _convert_one(self, x):
        if isinstance(x, Tracer):
            return x
        array = np.asarray(x)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"Layer '{self.name}' expects a numeric array; received an array of dtype {array.dtype} "
                f"and shape {array.shape}."
            )
        return array.astype(self.dtype, copy=False) if self._casts_inputs else array

    _casts_inputs = True  # layers that read integer ids (Embedding) keep their inputs as they are

    def _symbolic_call(self, inputs, training=None, **kwargs):
        shape = _shape_of(inputs)
        self.check_input_shape(shape)
        if not self.built:
            self.build(shape)
        output_shape = self.compute_output_shape(shape)
        input_dtype = inputs[0].dtype if isinstance(inputs, (list, tuple)) else inputs.dtype
        output = KerasTensor(output_shape, self.output_dtype(input_dtype), name=self.name)
        node = Node(self, inputs, [output], dict(kwargs, training=training) if training is not None else kwargs)
        output.node = node
        return output

    # -- configuration ----------------------------------------------------------------------

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable, "dtype": dtype_policy(self.dtype)}
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = objects.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def get_build_config(self) -> dict | None:
        if self._build_input_shape is None:
            return None
        return {"input_shape": _thaw(self._build_input_shape)}

    def build_from_config(self, config: dict | None) -> None:
        if config and config.get("input_shape") is not None and not self.built:
            self.build(_freeze(config["input_shape"]))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _freeze(shape):
    """Shapes as tuples (nested lists of shapes for multi-input layers)."""
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_freeze(s) for s in shape]
    return tuple(shape)


def _thaw(shape):
    if isinstance(shape, list):
        return [_thaw(s) for s in shape]
    return list(shape)
