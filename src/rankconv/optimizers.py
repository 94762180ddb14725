"""Optimizers with Keras 3's names, defaults, configs and update rules, on NumPy arrays.

`optimizer.apply(grads, variables)` updates each `Variable`'s `value` in place, in the variable's
dtype, in Keras's order: drop `None` gradients, unscale (`loss_scale_factor`), clip (`clipnorm`,
`global_clipnorm` or `clipvalue`), decay weights (`weight_decay`, decoupled: `w *= 1 - wd * lr`),
run the optimizer's own step, update the moving average (`use_ema`), apply each variable's
`constraint`, and count the step in `iterations`.

The update formulas follow Keras's torch backend (the `torch._foreach_*` kernels) operation by
operation, so float32 results agree with Keras to a few ulps.

Optimizer state ("slots": momenta, velocities, ...) is created the first time a variable is seen
and is keyed by the variable's identity. `optimizer.variables` lists the whole state in Keras's
order, which is the order of the `optimizer/vars` group of a `.keras` file:

1. `iteration`, then `learning_rate` (only when the learning rate is a number: an optimizer given
   a schedule keeps no learning-rate variable, as in Keras);
2. with `use_ema`, one `average` per variable; with `gradient_accumulation_steps`, one
   `gradient_accumulator` per variable;
3. the optimizer's own slots, group by group. Within a group the slots are interleaved per
   variable: Adam's first group is `(momentum, velocity)`, giving `w0_momentum, w0_velocity,
   w1_momentum, w1_velocity, ...`, then `velocity_hat` of every variable if `amsgrad`. RMSprop's
   groups are `velocity`, `momentum` (if `momentum > 0`) and `average_gradient` (if `centered`);
   SGD's `momentum` (if `momentum != 0`); Adadelta's `(accumulated_grad, accumulated_delta_var)`;
   Adagrad's `accumulator`.

Variables are listed in the order the optimizer first saw them (the order of the first
`apply`/`build` call, as Keras's `build`). Slot names are Keras's:
`{variable.path with "/" -> "_"}_{slot}`.

`learning_rate` is a float (held in a float32 variable) or a `LearningRateSchedule` from
`rankconv.optimizers.schedules`, evaluated before each update at the raw step count (the
`iteration` variable), as Keras does. (Keras also takes a callable without arguments; rankconv
does not.)
"""

from __future__ import annotations

import numbers
import re
import sys
import threading
import warnings

import numpy as np

from rankconv import objects, schedules
from rankconv.layers.layer import to_snake_case, unique_name
from rankconv.ops import conv_common
from rankconv.ops.autodiff import RowSparse, Variable

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adadelta",
    "Adagrad",
    "get",
    "serialize",
    "deserialize",
    "schedules",
]

# `rankconv.optimizers.schedules`, as `keras.optimizers.schedules`: an attribute, and importable by
# that name (`from rankconv.optimizers.schedules import CosineDecay`).
sys.modules.setdefault(f"{__name__}.schedules", schedules)


def _check_float(value, argument: str, cls_name: str):
    # Keras accepts Python floats only (`SGD(learning_rate=1)` is an error there too).
    if isinstance(value, bool) or not isinstance(value, (float, np.floating)):
        raise ValueError(
            f"{cls_name}: `{argument}` must be a float (e.g. 0.01) or a LearningRateSchedule; received "
            f"{argument}={value!r} of type {type(value).__name__}. Callables are not supported."
        )
    return float(value)


def _check_optional_number(value, argument: str, cls_name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{cls_name}: `{argument}` must be None or a number; received {argument}={value!r}.")
    return value


# Elements per block when updating large variables (see Optimizer._update_in_blocks): a block's
# half-dozen arrays fit in a core's L2 cache.
UPDATE_BLOCK = 1 << 15


class _Block:
    """A slot's block, with the `.value` attribute the update rules read."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _stored(g):
    """The stored numbers of a gradient: all of a dense one, the rows of a row-sparse one."""
    return g.values if isinstance(g, RowSparse) else g


def _scaled(g, factor):
    if isinstance(g, RowSparse):
        return RowSparse(g.indices, g.values * factor, g.shape)
    return g * factor


def _unscaled(g, divisor):
    """`g / divisor` (Keras divides; multiplying by the reciprocal differs in the last bit)."""
    if isinstance(g, RowSparse):
        return RowSparse(g.indices, g.values / divisor, g.shape)
    return g / divisor


def _clipped(g, limit):
    if isinstance(g, RowSparse):
        return RowSparse(g.indices, np.clip(g.values, -limit, limit).astype(g.dtype, copy=False), g.shape)
    return np.clip(g, -limit, limit).astype(g.dtype, copy=False)


# Row-sparse updates of at least this many values run in parts on the worker threads.
PARALLEL_ROW_ELEMENTS = 1 << 16
_thread_scratch = threading.local()


def _powers(factor, exponents, like):
    """`factor ** exponents` in `like`'s dtype, shaped to scale rows of `like`."""
    dtype = like.dtype.type
    return np.power(dtype(factor), exponents.astype(like.dtype)).reshape(-1, *([1] * (like.ndim - 1)))


@objects.family("keras.optimizers")
class Optimizer(objects.Configurable):
    """Base class: Keras's `BaseOptimizer` arguments, clipping, weight decay, EMA, gradient accumulation.

    Subclasses define `_slot_groups()` (the state they keep per variable) and `_update_step`.
    """

    def __init__(
        self,
        learning_rate,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        cls_name = type(self).__name__
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.", stacklevel=2)
        if kwargs:
            raise ValueError(f"{cls_name}: argument(s) not recognized: {kwargs}.")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{cls_name}: `name` must be a non-empty string; received name={name!r}.")
        self.name = name if name is not None else unique_name(to_snake_case(cls_name))
        self.weight_decay = _check_optional_number(weight_decay, "weight_decay", cls_name)
        self.clipnorm = _check_optional_number(clipnorm, "clipnorm", cls_name)
        self.global_clipnorm = _check_optional_number(global_clipnorm, "global_clipnorm", cls_name)
        self.clipvalue = _check_optional_number(clipvalue, "clipvalue", cls_name)
        self.use_ema = use_ema
        self.loss_scale_factor = _check_optional_number(loss_scale_factor, "loss_scale_factor", cls_name)
        self.gradient_accumulation_steps = gradient_accumulation_steps
        if gradient_accumulation_steps and not gradient_accumulation_steps >= 2:
            raise ValueError(
                f"{cls_name}: `gradient_accumulation_steps` must be an integer >= 2; "
                f"received gradient_accumulation_steps={gradient_accumulation_steps!r}."
            )
        if use_ema:
            if ema_momentum > 1 or ema_momentum < 0:
                raise ValueError(
                    f"{cls_name}: `ema_momentum` must be in [0, 1]; received ema_momentum={ema_momentum!r}."
                )
            if ema_overwrite_frequency and (
                not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1
            ):
                raise ValueError(
                    f"{cls_name}: `ema_overwrite_frequency` must be None or an integer >= 1; "
                    f"received ema_overwrite_frequency={ema_overwrite_frequency!r}."
                )
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            raise ValueError(
                f"{cls_name}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set; received "
                + ", ".join(f"{k}={v!r}" for k, v in clips.items())
                + "."
            )
        # Keras keeps the step count and a number learning rate as variables: they are saved with
        # the state, and the learning rate is float32 (so its config value is float32-rounded).
        # A schedule is kept as it is (and then there is no learning-rate variable).
        self._iterations = Variable(np.zeros((), np.int64), "iteration", f"{self.name}/iteration", trainable=False)
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            self._learning_rate = learning_rate
        else:
            self._learning_rate = self._learning_rate_variable(_check_float(learning_rate, "learning_rate", cls_name))
        self._tracked: list = []  # model variables in first-seen order (kept alive, so ids stay unique)
        self._index: dict[int, int] = {}  # id(variable) -> position in `_tracked`
        self._slots: list[dict[str, Variable]] = []  # per tracked variable: slot name -> Variable
        self._buffers: dict = {}  # scratch arrays for in-place updates, by (shape, dtype, k)
        self._exclude_ids: set[int] = set()
        self._exclude_pattern = None
        self._decay_cache: dict[int, bool] = {}
        # per tracked variable updated from row-sparse gradients: the step up to which each row's
        # decaying slots are current (see `_update_rows`)
        self._row_clock: dict[int, np.ndarray] = {}
        # ... counted in updates of that variable (a step that skips it does not decay its slots)
        self._row_updates: dict[int, int] = {}

    # -- hyperparameters ------------------------------------------------------------------------

    def _learning_rate_variable(self, value) -> Variable:
        return Variable(np.asarray(value, np.float32), "learning_rate", f"{self.name}/learning_rate", trainable=False)

    def _current_learning_rate(self) -> np.float32:
        """The rate of the next update: the variable's value, or the schedule at the raw step
        count (Keras passes its `iteration` variable, not `iterations`)."""
        rate = self._learning_rate
        if isinstance(rate, Variable):
            return rate.value[()]
        return np.float32(rate(int(self._iterations.value)))

    @property
    def learning_rate(self) -> float:
        """The current learning rate (float32-rounded, as Keras stores it); with a schedule, its
        value at the current step.

        Assigning a number sets the rate; as in Keras, that is a TypeError if the optimizer uses a
        schedule (so ReduceLROnPlateau and LearningRateScheduler raise it on such an optimizer).
        Assigning a schedule replaces the learning-rate variable with it.
        """
        return float(self._current_learning_rate())

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        cls_name = type(self).__name__
        if isinstance(value, schedules.LearningRateSchedule):
            self._learning_rate = value
            return
        is_number = isinstance(value, numbers.Real) or (
            isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"
        )
        if isinstance(value, bool) or not is_number:
            raise TypeError(
                f"{cls_name}: `learning_rate` must be set to a number or a LearningRateSchedule; "
                f"received {value!r} of type {type(value).__name__}."
            )
        if not isinstance(self._learning_rate, Variable):
            raise TypeError(
                f"{cls_name} '{self.name}' was created with a LearningRateSchedule as its `learning_rate` "
                f"({type(self._learning_rate).__name__}), so its learning rate cannot be set to a number "
                f"(received {value!r}). Create the optimizer with a float `learning_rate` to change it "
                "during training."
            )
        self._learning_rate.value[...] = np.float32(value)

    @property
    def iterations(self) -> int:
        """Number of `apply` calls so far (divided by `gradient_accumulation_steps` if set, as Keras)."""
        steps = int(self._iterations.value)
        return steps // self.gradient_accumulation_steps if self.gradient_accumulation_steps else steps

    @property
    def built(self) -> bool:
        return bool(self._tracked)

    # -- state ----------------------------------------------------------------------------------

    def _slot_groups(self) -> list[tuple[tuple[str, float], ...]]:
        """Groups of (slot name, initial value), in Keras's build order (see the module docstring)."""
        return []

    def _all_slot_groups(self) -> list[tuple[tuple[str, float], ...]]:
        groups = []
        if self.use_ema:
            groups.append((("average", 0.0),))
        if self.gradient_accumulation_steps:
            groups.append((("gradient_accumulator", 0.0),))
        return groups + self._slot_groups()

    def build(self, variables) -> None:
        """Create the state of each variable not seen yet, in the given order (Keras's `build`)."""
        for variable in variables:
            self._slots_of(variable)

    def _slots_of(self, variable) -> dict[str, Variable]:
        index = self._index.get(id(variable))
        if index is not None:
            return self._slots[index]
        if not isinstance(variable, Variable):
            raise TypeError(
                f"{type(self).__name__}: variables must be rankconv `Variable`s; received {type(variable).__name__}."
            )
        prefix = variable.path.replace("/", "_")
        slots = {}
        for group in self._all_slot_groups():
            for slot, initial in group:
                value = np.full(variable.shape, initial, dtype=variable.value.dtype)
                name = f"{prefix}_{slot}"
                slots[slot] = Variable(value, name, f"{self.name}/{name}", trainable=False)
        self._index[id(variable)] = len(self._tracked)
        self._tracked.append(variable)
        self._slots.append(slots)
        return slots

    @property
    def variables(self) -> list[Variable]:
        """The whole optimizer state, in Keras's order (see the module docstring)."""
        self._settle_rows()
        return self._state_variables()

    def _state_variables(self) -> list[Variable]:
        """`variables` without bringing lazily decayed rows up to date (see `state_values`)."""
        state = [self._iterations]
        if isinstance(self._learning_rate, Variable):
            state.append(self._learning_rate)
        for group in self._all_slot_groups():
            for slots in self._slots:
                state.extend(slots[slot] for slot, _ in group)
        return state

    def get_weights(self) -> list[np.ndarray]:
        """Copies of `variables`' values, in the same order."""
        return [v.value.copy() for v in self.variables]

    def set_weights(self, weights) -> None:
        """Set the state from arrays in the order of `variables` (build the optimizer first)."""
        state = self.variables
        weights = list(weights)
        if not self.built:
            raise ValueError(
                f"Optimizer '{self.name}' has no state yet: call `build(variables)` (or `apply`) before `set_weights`."
            )
        if len(weights) != len(state):
            raise ValueError(
                f"Optimizer '{self.name}' has {len(state)} state arrays "
                f"({', '.join(v.name for v in state)}); received {len(weights)}."
            )
        arrays = []
        for variable, value in zip(state, weights):
            value = np.asarray(value)
            if value.shape != variable.shape:
                raise ValueError(
                    f"Optimizer '{self.name}' state '{variable.name}' has shape {variable.shape}; "
                    f"received an array of shape {value.shape}."
                )
            arrays.append(value)
        for variable, value in zip(state, arrays):
            variable.assign(value)

    def state_values(self) -> list[np.ndarray]:
        """Copies of the state in the order of `variables`, as Keras would hold it.

        Unlike `variables`, this leaves the live state alone: slots that row-sparse updates decay
        lazily are brought up to date in the copies only, so saving in the middle of training (a
        checkpoint, a backup) changes no later update, not even in the last bit."""
        decay = self._row_decay() or {}
        pending = {}  # (tracked index, slot) -> the factor that brings the slot up to date
        for index, clock in self._row_clock.items():
            for name, factor in decay.items():
                pending[(index, name)] = (factor, self._row_updates[index] - clock)
        values = [self._iterations.value.copy()]
        if isinstance(self._learning_rate, Variable):
            values.append(self._learning_rate.value.copy())
        for group in self._all_slot_groups():
            for index, slots in enumerate(self._slots):
                for name, _ in group:
                    value = slots[name].value
                    lazy = pending.get((index, name))
                    # the same product `_settle_rows` makes in place, so the numbers are identical
                    values.append(value * _powers(lazy[0], lazy[1], value) if lazy else value.copy())
        return values

    def save_own_variables(self, store) -> None:
        """Write the state into `store` under keys "0", "1", ... (Keras's `optimizer/vars` layout)."""
        for i, value in enumerate(self.state_values()):
            store[str(i)] = value

    def lazy_rows_state(self) -> list[dict]:
        """The bookkeeping of lazily decayed rows (see `_update_rows`), with the raw slots it
        applies to: what a training backup needs besides `state_values` to continue bit for bit.
        One dict per tracked variable that has any: its position, its update count, its rows'
        clocks and its decayed slots as they are."""
        decay = self._row_decay() or {}
        return [
            {
                "index": index,
                "updates": self._row_updates[index],
                "clock": clock.copy(),
                "slots": {name: self._slots[index][name].value.copy() for name in decay},
            }
            for index, clock in sorted(self._row_clock.items())
        ]

    def restore_lazy_rows_state(self, state: list[dict]) -> None:
        """Put back `lazy_rows_state` (after `set_weights` of the matching `state_values`)."""
        decay = self._row_decay() or {}
        for entry in state:
            index = entry["index"]
            if not 0 <= index < len(self._slots) or set(entry["slots"]) != set(decay):
                raise ValueError(
                    f"Optimizer '{self.name}': the saved row state names tracked variable {index} with slots "
                    f"{sorted(entry['slots'])}; this optimizer tracks {len(self._slots)} variables with lazily "
                    f"decayed slots {sorted(decay)}."
                )
            rows = self._tracked[index].shape[0]
            clock = np.asarray(entry["clock"], dtype=np.int64)
            if clock.shape != (rows,):
                raise ValueError(
                    f"Optimizer '{self.name}': the saved row clock of `{self._tracked[index].path}` has shape "
                    f"{clock.shape}; expected ({rows},)."
                )
            for name, value in entry["slots"].items():
                self._slots[index][name].assign(value)
            self._row_clock[index] = clock.copy()
            self._row_updates[index] = int(entry["updates"])

    def load_own_variables(self, store) -> None:
        """Read the state written by `save_own_variables`; like Keras, skip (with a warning) on a count mismatch."""
        state = self.variables
        if len(store.keys()) != len(state):
            message = (
                f"Skipping variable loading for optimizer '{self.name}', because it has {len(state)} variables "
                f"whereas the saved optimizer has {len(store.keys())} variables."
            )
            if not self.built:
                message += " This is likely because the optimizer has not been called/built yet."
            warnings.warn(message, stacklevel=2)
            return
        self.set_weights([store[str(i)] for i in range(len(state))])

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Exempt variables from weight decay: these objects, or those whose name contains one of `var_names`."""
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None
        self._decay_cache = {}

    def _use_weight_decay(self, variable) -> bool:
        key = id(variable)
        if key not in self._decay_cache:
            excluded = key in self._exclude_ids or (
                self._exclude_pattern is not None and self._exclude_pattern.search(variable.name) is not None
            )
            self._decay_cache[key] = not excluded
        return self._decay_cache[key]

    # -- the step -------------------------------------------------------------------------------

    def _scratch(self, like: np.ndarray, k: int = 0) -> np.ndarray:
        """A reusable temporary of `like`'s shape and dtype (the update runs without allocating);
        inside a row-sparse update, the thread's own temporaries."""
        buffers = getattr(_thread_scratch, "buffers", None)
        buffers = self._buffers if buffers is None else buffers
        key = (like.shape, like.dtype.str, k)
        buffer = buffers.get(key)
        if buffer is None:
            buffer = buffers[key] = np.empty(like.shape, like.dtype)
        return buffer

    def apply_gradients(self, grads_and_vars) -> int:
        """`apply` on `(gradient, variable)` pairs; returns `iterations` (tf.keras compatibility)."""
        pairs = list(grads_and_vars)
        if pairs:
            grads, variables = zip(*pairs)
            self.apply(list(grads), list(variables))
        return int(self._iterations.value)

    def apply(self, grads, variables=None) -> None:
        """Update `variables` (rankconv `Variable`s) in place from `grads` (arrays of their shapes, or None).

        Without `variables`, the gradients pair with every variable the optimizer has seen, in order.
        """
        grads = list(grads)
        if not grads:
            return  # Keras: an empty gradient list is a no-op (not even a step)
        if variables is None:
            if not self.built:
                raise ValueError(
                    f"Optimizer '{self.name}': when `variables` is not given, the optimizer must already be built "
                    "on a list of variables. Call `optimizer.build(variables)` first."
                )
            variables = self._tracked
        variables = list(variables)
        if len(grads) != len(variables):
            raise ValueError(
                f"Optimizer '{self.name}': `grads` and `variables` must pair one to one; "
                f"received {len(grads)} gradients for {len(variables)} variables."
            )
        self.build(variables)

        pairs, missing = [], []
        for grad, variable in zip(grads, variables):
            if grad is None:
                missing.append(variable.path)
                continue
            if not isinstance(grad, RowSparse):
                grad = np.asarray(grad)
            if grad.shape != variable.shape:
                raise ValueError(
                    f"Optimizer '{self.name}': the gradient of `{variable.path}` must have the variable's shape "
                    f"{variable.shape}; received shape {grad.shape}."
                )
            if grad.dtype != variable.value.dtype:
                grad = grad.astype(variable.value.dtype)
            pairs.append((grad, variable))
        if not pairs:
            raise ValueError("No gradients provided for any variable.")
        if missing:
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss. "
                "If using `model.compile()`, did you forget to provide a `loss` argument?",
                stacklevel=2,
            )
        grads = [g for g, _ in pairs]
        variables = [v for _, v in pairs]
        if self.loss_scale_factor is not None:
            grads = [_unscaled(g, g.dtype.type(self.loss_scale_factor)) for g in grads]

        steps = self.gradient_accumulation_steps
        if steps:
            grads = [g.dense() if isinstance(g, RowSparse) else g for g in grads]
            accumulators = [self._slots_of(v)["gradient_accumulator"].value for v in variables]
            if (int(self._iterations.value) + 1) % steps == 0:
                grads = [(g + a) / g.dtype.type(steps) for g, a in zip(grads, accumulators)]
                self._step(grads, variables)
                for a in accumulators:
                    a.fill(0)
            else:
                for g, a in zip(grads, accumulators):
                    a += g
        else:
            self._step(grads, variables)

        if self.use_ema:
            self._update_moving_averages()
        for variable in variables:
            if variable.constraint is not None:
                variable.assign(variable.constraint(variable.value))
        self._iterations.value[...] += 1

    def _step(self, grads, variables) -> None:
        grads = self._clip(grads)
        rate = self._current_learning_rate()
        if self.weight_decay is not None:
            for variable in variables:
                if self._use_weight_decay(variable):
                    dtype = variable.value.dtype.type
                    lr = dtype(rate)
                    variable.value *= dtype(1) - dtype(self.weight_decay) * lr
        decay = self._row_decay()
        for grad, variable in zip(grads, variables):
            lr = variable.value.dtype.type(rate)
            if isinstance(grad, RowSparse) and decay is not None:
                self._update_rows(grad, variable, lr, decay)
                continue
            self._settle_rows(self._index[id(variable)])
            grad = grad.dense() if isinstance(grad, RowSparse) else grad
            self._update_in_blocks(grad, variable.value, self._slots_of(variable), lr)

    # -- row-sparse gradients -------------------------------------------------------------------
    # An embedding lookup's gradient touches a few rows of a large table. Where a zero gradient
    # leaves a row's value unchanged and only shrinks some slots geometrically (Adadelta's and
    # RMSprop's averages; nothing at all for SGD without momentum and Adagrad), the update of the
    # untouched rows can wait: each row keeps the step up to which its slots are current, and when
    # it is next touched (or the state is read) its slots are first multiplied by rho^missed_steps.
    # The numbers are Keras's dense update, up to rounding. Optimizers where a zero gradient still
    # moves the value (momentum, Adam) apply the gradient densely.

    def _row_decay(self) -> dict[str, float] | None:
        """Slots that shrink by a constant factor on a zero gradient, or None if a zero gradient
        still moves the variable (then row-sparse gradients are applied densely)."""
        return None

    def _update_rows(self, grad: RowSparse, variable, lr, decay: dict) -> None:
        rows = grad.indices
        slots = self._slots_of(variable)
        index = self._index[id(variable)]
        missed = None
        if decay:
            clock = self._row_clock.get(index)
            if clock is None:
                clock = self._row_clock[index] = np.zeros(variable.shape[0], dtype=np.int64)
                self._row_updates[index] = 0
            step = self._row_updates[index]
            missed = step - clock[rows]
            clock[rows] = step + 1
            self._row_updates[index] = step + 1

        def update(part):  # gather the rows, catch up their decay, update, scatter back
            part_rows = rows[part]
            value_rows = variable.value[part_rows]
            slot_rows = {name: slot.value[part_rows] for name, slot in slots.items()}
            if missed is not None and missed[part].any():
                for name, factor in decay.items():
                    slot_rows[name] *= _powers(factor, missed[part], value_rows)
            _thread_scratch.buffers = {}  # row counts vary: no cached scratch of these shapes
            try:
                self._update_step(grad.values[part], value_rows, {n: _Block(a) for n, a in slot_rows.items()}, lr)
            finally:
                _thread_scratch.buffers = None
            variable.value[part_rows] = value_rows
            for name, slot in slots.items():
                slot.value[part_rows] = slot_rows[name]

        # Rows are distinct, so parts of them update independently: on the worker threads when large.
        parts = 1 if grad.values.size < PARALLEL_ROW_ELEMENTS else conv_common.THREADS
        conv_common.run_parallel(update, conv_common.even_slices(len(rows), parts))

    def _settle_rows(self, index: int | None = None) -> None:
        """Bring the lazily decayed slots of one tracked variable (or all) up to its latest update."""
        if not self._row_clock:
            return
        decay = self._row_decay() or {}
        for i in [index] if index is not None else list(self._row_clock):
            clock = self._row_clock.pop(i, None)
            if clock is None:
                continue
            step = self._row_updates.pop(i)
            slots = self._slots[i]
            for name, factor in decay.items():
                slots[name].value[...] *= _powers(factor, step - clock, slots[name].value)

    def _update_in_blocks(self, grad, value, slots, lr) -> None:
        """`_update_step` on consecutive flat blocks of a large variable.

        Every update rule here is elementwise, so running it block by block computes exactly the
        same numbers; but the variable, its gradient, its slots and the scratch buffers of one
        block stay in cache across the rule's dozen passes, instead of each pass streaming the
        whole array (an embedding table of millions of values) through memory.
        """
        if value.size <= UPDATE_BLOCK or not value.flags.c_contiguous:
            self._update_step(grad, value, slots, lr)
            return
        flat_value = value.reshape(-1)
        flat_grad = np.ascontiguousarray(grad).reshape(-1)
        flat_slots = {name: slot.value.reshape(-1) for name, slot in slots.items()}
        for start in range(0, value.size, UPDATE_BLOCK):
            block = slice(start, start + UPDATE_BLOCK)
            block_slots = {name: _Block(array[block]) for name, array in flat_slots.items()}
            self._update_step(flat_grad[block], flat_value[block], block_slots, lr)

    def _clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        """Keras's `_clip_gradients`: returns new arrays (the caller's gradients are not modified)."""
        if self.clipnorm and self.clipnorm > 0:
            clipped = []
            for g in grads:
                dtype = g.dtype.type
                norm = np.sqrt(np.sum(np.square(_stored(g)), dtype=g.dtype))  # 0 when the gradient is 0
                clipped.append(_scaled(g, dtype(self.clipnorm) / np.maximum(norm, dtype(self.clipnorm))))
            return clipped
        if self.global_clipnorm and self.global_clipnorm > 0:
            dtype = np.result_type(*(g.dtype for g in grads)).type
            norm = np.sqrt(np.sum([np.sum(np.square(_stored(g)), dtype=dtype) for g in grads], dtype=dtype))
            clip = dtype(self.global_clipnorm)
            with np.errstate(divide="ignore", invalid="ignore"):
                # As Keras: a non-finite norm makes the scale (and so every gradient) NaN.
                scale = clip * np.minimum(dtype(1) / norm, dtype(1.0 / self.global_clipnorm)) + (norm - norm)
            return [_scaled(g, g.dtype.type(scale)) for g in grads]
        if self.clipvalue and self.clipvalue > 0:
            return [_clipped(g, self.clipvalue) for g in grads]
        return grads

    def _update_moving_averages(self) -> None:
        first = self.iterations == 0
        overwrite = bool(self.ema_overwrite_frequency) and (self.iterations + 1) % self.ema_overwrite_frequency == 0
        for variable, slots in zip(self._tracked, self._slots):
            average, value = slots["average"].value, variable.value
            dtype = value.dtype.type
            momentum = dtype(0) if first else dtype(self.ema_momentum)
            average *= momentum
            average += (dtype(1) - momentum) * value
            if overwrite:
                value[...] = average

    def finalize_variable_values(self, var_list) -> None:
        """With `use_ema`, overwrite the variables with their moving averages (Keras does this after `fit`)."""
        if not self.use_ema:
            return
        for variable in var_list:
            variable.assign(self._slots_of(variable)["average"].value)

    def _update_step(self, grad: np.ndarray, value: np.ndarray, slots: dict, lr) -> None:
        raise NotImplementedError

    # -- config ---------------------------------------------------------------------------------

    def get_config(self) -> dict:
        rate = self._learning_rate
        return {
            "name": self.name,
            # a schedule as Keras writes it: {"module": "keras.optimizers.schedules", "class_name", ...}
            "learning_rate": float(rate.value) if isinstance(rate, Variable) else schedules.serialize(rate),
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: dict):
        if isinstance(config.get("learning_rate"), dict):
            config = {**config, "learning_rate": schedules.deserialize(config["learning_rate"])}
        return cls(**config)

    # An optimizer holds state: two optimizers are the same only if they are the same object.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, learning_rate={self.learning_rate:g}, iterations={self.iterations}>"


def _base_kwargs(local: dict) -> dict:
    keys = (
        "weight_decay",
        "clipnorm",
        "clipvalue",
        "global_clipnorm",
        "use_ema",
        "ema_momentum",
        "ema_overwrite_frequency",
        "loss_scale_factor",
        "gradient_accumulation_steps",
        "name",
    )
    return {k: local[k] for k in keys}


@objects.register("sgd")
class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum: `m = momentum * m - lr * g`, `w += m`."""

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **_base_kwargs(locals()), **kwargs)
        if isinstance(momentum, bool) or not isinstance(momentum, float) or momentum < 0 or momentum > 1:
            raise ValueError(f"SGD: `momentum` must be a float between [0, 1]; received momentum={momentum!r}.")
        self.momentum = momentum
        self.nesterov = nesterov

    def _slot_groups(self):
        return [(("momentum", 0.0),)] if self.momentum != 0 else []

    def _row_decay(self):
        return {} if self.momentum == 0 else None

    def _update_step(self, grad, value, slots, lr):
        step = self._scratch(value)
        np.multiply(grad, -lr, out=step)
        if self.momentum == 0:
            value += step
            return
        m = slots["momentum"].value
        momentum = value.dtype.type(self.momentum)
        m *= momentum
        m += step
        if self.nesterov:
            value += step
            np.multiply(m, momentum, out=step)
            value += step
        else:
            value += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@objects.register("adam")
class Adam(Optimizer):
    """Adam: moving averages `m` of the gradient and `v` of its square; `w -= alpha * m / (sqrt(v) + eps)`
    with the bias correction `alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`."""

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **_base_kwargs(locals()), **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def _slot_groups(self):
        groups = [(("momentum", 0.0), ("velocity", 0.0))]
        return groups + ([(("velocity_hat", 0.0),)] if self.amsgrad else [])

    def _update_step(self, grad, value, slots, lr):
        dtype = value.dtype.type
        step = dtype(self.iterations + 1)
        alpha = lr * np.sqrt(dtype(1) - dtype(self.beta_2) ** step) / (dtype(1) - dtype(self.beta_1) ** step)
        m, v = slots["momentum"].value, slots["velocity"].value
        t0, t1 = self._scratch(value, 0), self._scratch(value, 1)
        m *= dtype(self.beta_1)
        np.multiply(grad, dtype(1 - self.beta_1), out=t0)
        m += t0
        v *= dtype(self.beta_2)
        np.multiply(grad, grad, out=t0)
        t0 *= dtype(1 - self.beta_2)
        v += t0
        if self.amsgrad:
            v_hat = slots["velocity_hat"].value
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        np.sqrt(v, out=t0)
        t0 += dtype(self.epsilon)
        np.multiply(m, alpha, out=t1)
        t1 /= t0
        value -= t1

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad)
        return config


@objects.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's AdamW is Adam whose `weight_decay` defaults to 0.004)."""

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            **_base_kwargs(locals()),
            **kwargs,
        )
        if self.weight_decay is None:
            raise ValueError("AdamW: `weight_decay` must be a float; received weight_decay=None.")


@objects.register("rmsprop")
class RMSprop(Optimizer):
    """RMSprop: `w -= lr * g / sqrt(mean(g^2) + eps)`, optionally centered and with momentum."""

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **_base_kwargs(locals()), **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def _slot_groups(self):
        groups = [(("velocity", 0.0),)]
        if self.momentum > 0:
            groups.append((("momentum", 0.0),))
        if self.centered:
            groups.append((("average_gradient", 0.0),))
        return groups

    def _row_decay(self):
        if self.momentum > 0:
            return None
        return {"velocity": self.rho, **({"average_gradient": self.rho} if self.centered else {})}

    def _update_step(self, grad, value, slots, lr):
        dtype = value.dtype.type
        rho = dtype(self.rho)
        velocity = slots["velocity"].value
        t0, t1 = self._scratch(value, 0), self._scratch(value, 1)
        velocity *= rho
        np.multiply(grad, grad, out=t0)
        t0 *= dtype(1 - self.rho)
        velocity += t0
        np.add(velocity, dtype(self.epsilon), out=t1)  # the denominator
        if self.centered:
            average = slots["average_gradient"].value
            average *= rho
            np.multiply(grad, dtype(1 - self.rho), out=t0)
            average += t0
            np.multiply(average, average, out=t0)
            t1 -= t0
        np.sqrt(t1, out=t1)
        np.multiply(grad, lr, out=t0)
        t0 /= t1  # the increment
        if self.momentum > 0:
            momentum = slots["momentum"].value
            momentum *= dtype(self.momentum)
            momentum += t0
            value -= momentum
        else:
            value -= t0

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon, centered=self.centered)
        return config


@objects.register("adadelta")
class Adadelta(Optimizer):
    """Adadelta: steps `-sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g`, scaled by `learning_rate`."""

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.95,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **_base_kwargs(locals()), **kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def _slot_groups(self):
        return [(("accumulated_grad", 0.0), ("accumulated_delta_var", 0.0))]

    def _row_decay(self):
        return {"accumulated_grad": self.rho, "accumulated_delta_var": self.rho}

    def _update_step(self, grad, value, slots, lr):
        dtype = value.dtype.type
        rho, one_minus_rho, eps = dtype(self.rho), dtype(1 - self.rho), dtype(self.epsilon)
        accumulated_grad = slots["accumulated_grad"].value
        accumulated_delta = slots["accumulated_delta_var"].value
        t0, t1 = self._scratch(value, 0), self._scratch(value, 1)
        accumulated_grad *= rho
        np.multiply(grad, grad, out=t0)
        t0 *= one_minus_rho
        accumulated_grad += t0
        np.add(accumulated_delta, eps, out=t0)
        np.sqrt(t0, out=t0)
        t0 *= grad
        np.add(accumulated_grad, eps, out=t1)
        np.sqrt(t1, out=t1)
        t0 /= t1
        np.negative(t0, out=t0)  # the step, delta
        accumulated_delta *= rho
        np.multiply(t0, t0, out=t1)
        t1 *= one_minus_rho
        accumulated_delta += t1
        t0 *= lr
        value += t0

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


@objects.register("adagrad")
class Adagrad(Optimizer):
    """Adagrad: `acc += g^2`, `w -= lr * g / sqrt(acc + eps)`; `acc` starts at `initial_accumulator_value`."""

    def __init__(
        self,
        learning_rate=0.001,
        initial_accumulator_value=0.1,
        epsilon=1e-7,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **_base_kwargs(locals()), **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def _slot_groups(self):
        return [(("accumulator", self.initial_accumulator_value),)]

    def _row_decay(self):
        return {}

    def _update_step(self, grad, value, slots, lr):
        accumulator = slots["accumulator"].value
        t0, t1 = self._scratch(value, 0), self._scratch(value, 1)
        np.multiply(grad, grad, out=t0)
        accumulator += t0
        np.add(accumulator, value.dtype.type(self.epsilon), out=t1)
        np.sqrt(t1, out=t1)
        np.multiply(grad, lr, out=t0)
        t0 /= t1
        value -= t0

    def get_config(self):
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


# Keras resolves built-in optimizer names case-insensitively ("adam", "Adam", "ADAM", "rmsprop").
_BY_LOWER_NAME = {name.lower(): cls for name, cls in Optimizer.registry.items()}


def _lookup(class_name, argument: str) -> type:
    cls = _BY_LOWER_NAME.get(class_name.lower()) if isinstance(class_name, str) else None
    if cls is None:
        raise ValueError(
            f"Unknown optimizer {class_name!r} for `{argument}`. Known names (case-insensitive): "
            f"{sorted(Optimizer.registry)}."
        )
    return cls


def get(identifier, argument: str = "optimizer") -> Optimizer | None:
    """Resolve None, an `Optimizer`, a name ("adam", "SGD", ...) or a serialised dict to an optimizer."""
    if identifier is None or isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier, argument)()
    if isinstance(identifier, dict):
        return deserialize(identifier, argument)
    raise ValueError(
        f"Could not interpret optimizer identifier for `{argument}`: expected None, a name, a config dict or an "
        f"Optimizer; received {identifier!r}."
    )


def deserialize(config: dict, argument: str = "optimizer") -> Optimizer:
    """Rebuild an optimizer from `serialize`'s dict (or Keras's, whatever its `module`)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"`{argument}` must be a dict with a 'class_name'; received {config!r}.")
    cls = _lookup(config["class_name"], argument)
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise ValueError(f"The config of {config['class_name']} for `{argument}` must be a dict; received {inner!r}.")
    return cls.from_config(dict(inner))


serialize = objects.serialize
