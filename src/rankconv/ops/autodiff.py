"""Reverse-mode differentiation on a tape: `grad`, `value_and_grad`, `GradientTape`.

A function built from `rankconv.ops` runs on NumPy arrays. When an argument is a `Tracer` (or a
`Variable` a tape is watching), each op also records its vector-Jacobian product (VJP) on the
output tracer; `backward` then walks the recorded nodes from the output, newest first. Ops are
defined with `primitive(forward, vjp)`, so every gradient sits next to its op.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from collections.abc import Callable, Sequence

import numpy as np

_creation_order = itertools.count()


class Variable:
    """A named, mutable weight. `value` is the NumPy array; training updates it in place.

    Ops read a variable's value, or, inside a `GradientTape` that watches it, a tracer of it.
    """

    def __init__(self, value, name: str, path: str | None = None, trainable=True, regularizer=None, constraint=None):
        self.value = np.asarray(value)
        self.name = name
        self.path = path or name
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


# Above this many repeated ids, `RowSparse.from_rows` sums all segments with one `reduceat`; below,
# it copies the rows and sums the repeated segments one by one (6× faster on a Kim batch: 1,905
# distinct ids of 3,200, 94 repeated; `reduceat` pays per segment, repeated or not).
REDUCEAT_SEGMENTS = 256


class RowSparse:
    """A gradient that is zero except on some rows: `values[i]` is row `indices[i]` of a `shape` array.

    The gradient of `take(table, ids, axis=0)` (an embedding lookup) touches only the rows of the
    ids in the batch; materialising the whole (vocabulary, dim) array per step would cost more than
    the rest of a text CNN's step. Indices are unique and sorted. Optimizers whose update leaves
    untouched rows alone update just these rows; everything else sees `dense()` (or `np.asarray`).
    """

    __array_ufunc__ = None  # ndarray + RowSparse defers to RowSparse.__radd__

    def __init__(self, indices, values, shape):
        self.indices = indices
        self.values = values
        self.shape = tuple(shape)

    @classmethod
    def from_rows(cls, indices, rows, num_rows):
        """Sum `rows[i]` into row `indices[i]` (duplicates added), with sorted unique indices."""
        flat = np.asarray(indices).reshape(-1)
        rows = rows.reshape(flat.size, *rows.shape[np.asarray(indices).ndim :])
        if flat.size == 0:
            return cls(np.zeros(0, np.int64), rows[:0], (num_rows, *rows.shape[1:]))
        order = np.argsort(flat, kind="stable")
        ordered = flat[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        rows = rows[order]
        ends = np.r_[starts[1:], flat.size]
        repeated = np.flatnonzero(ends - starts > 1)
        if len(repeated) > REDUCEAT_SEGMENTS:
            values = np.add.reduceat(rows, starts, axis=0)
        else:  # few repeated ids (typically padding and common words): copy, then sum those alone
            values = rows[starts]
            for i in repeated:
                values[i] = rows[starts[i] : ends[i]].sum(axis=0)
        return cls(ordered[starts].astype(np.int64), values, (num_rows, *rows.shape[1:]))

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def astype(self, dtype) -> RowSparse:
        return RowSparse(self.indices, self.values.astype(dtype, copy=False), self.shape)

    def dense(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=self.values.dtype)
        out[self.indices] = self.values
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.dense()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __add__(self, other):
        if isinstance(other, RowSparse):
            if other.shape != self.shape:
                raise ValueError(f"Cannot add row-sparse gradients of shapes {self.shape} and {other.shape}.")
            rows = np.concatenate([self.values, other.values.astype(self.dtype, copy=False)])
            return RowSparse.from_rows(np.concatenate([self.indices, other.indices]), rows, self.shape[0])
        out = np.array(other, dtype=np.result_type(self.dtype, np.asarray(other).dtype), copy=True)
        out = np.broadcast_to(out, self.shape).copy() if out.shape != self.shape else out
        out[self.indices] += self.values
        return out

    __radd__ = __add__

    def __repr__(self) -> str:
        return f"<RowSparse rows={self.indices.size} of shape={self.shape}, dtype={self.dtype}>"


def dense(gradient):
    """A gradient as a NumPy array (row-sparse gradients are materialised)."""
    return gradient.dense() if isinstance(gradient, RowSparse) else gradient


class Tracer:
    """A value computed on a tape: the array, the tracers it came from, and how to send gradients back."""

    __slots__ = ("_order", "_parents", "_vjp", "value")
    __array_priority__ = 1000  # `ndarray + tracer` defers to Tracer.__radd__

    def __init__(self, value, parents=(), vjp=None):
        self.value = value
        self._parents = parents  # ((argument position, Tracer), ...)
        self._vjp = vjp  # g -> sequence of gradients, one per argument position
        self._order = next(_creation_order)

    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    dtype = property(lambda self: self.value.dtype)
    size = property(lambda self: self.value.size)

    def __len__(self):
        return len(self.value)

    def __repr__(self):
        return f"Tracer(shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "A traced value cannot be turned into a NumPy array inside a differentiated function; "
            "use rankconv.ops (or ops.stop_gradient) instead of NumPy functions there."
        )

    # Python operators route to the differentiable ops (bound in rankconv.ops.numpy_ops).
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().subtract(self, other)

    def __rsub__(self, other):
        return _ops().subtract(other, self)

    def __mul__(self, other):
        return _ops().multiply(self, other)

    def __rmul__(self, other):
        return _ops().multiply(other, self)

    def __truediv__(self, other):
        return _ops().divide(self, other)

    def __rtruediv__(self, other):
        return _ops().divide(other, self)

    def __neg__(self):
        return _ops().negative(self)

    def __pow__(self, exponent):
        return _ops().power(self, exponent)

    def __rpow__(self, base):
        return _ops().power(base, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    @property
    def T(self):
        return _ops().transpose(self)

    def reshape(self, *shape):
        return _ops().reshape(self, shape[0] if len(shape) == 1 else shape)


def _ops():
    from rankconv.ops import numpy_ops

    return numpy_ops


# ----------------------------------------------------------------------------- watching variables


class _ThreadTapes(threading.local):
    """The open tapes of the calling thread, innermost last (a list per thread).

    Per thread, so that a model trained in one thread and another model (or the same layers)
    run in another do not record onto each other's tapes."""

    def __init__(self):
        self.bindings: list[dict[int, Tracer]] = []

    def append(self, bindings) -> None:
        self.bindings.append(bindings)

    def remove(self, bindings) -> None:
        self.bindings.remove(bindings)

    def __reversed__(self):
        return reversed(self.bindings)

    def __len__(self) -> int:
        return len(self.bindings)

    def __eq__(self, other) -> bool:
        return self.bindings == other

    __hash__ = None


_watched = _ThreadTapes()  # each thread's stack: the innermost tape's bindings come last

# Variables a thread is training (`training_claim`): id(variable) -> [thread ident, depth].
_claims: dict[int, list] = {}
_claims_lock = threading.Lock()


def _refuse_read(variable: Variable, owner: int) -> None:
    raise RuntimeError(
        f"Variable `{variable.path}` is being trained in another thread (thread {owner}); rankconv refuses to "
        "compute with weights that an optimizer is updating in place at the same time. Wait for `fit` to "
        "finish, or run inference on a separate copy of the model (e.g. `rankconv.saving.load_model` of a "
        "saved file)."
    )


@contextlib.contextmanager
def training_claim(variables: Sequence[Variable]):
    """While the block runs, only the calling thread may compute with `variables`: any other
    thread's op that reads one raises RuntimeError (an optimizer updates them in place, so another
    thread would read half-updated weights). Nested claims by the same thread are allowed; a
    variable another thread has claimed raises RuntimeError at once."""
    me = threading.get_ident()
    variables = list({id(v): v for v in variables}.values())
    with _claims_lock:
        for variable in variables:
            claim = _claims.get(id(variable))
            if claim is not None and claim[0] != me:
                raise RuntimeError(
                    f"Variable `{variable.path}` is already being trained in another thread (thread {claim[0]}); "
                    "one model (or layer) can be trained by one thread at a time."
                )
        for variable in variables:
            claim = _claims.setdefault(id(variable), [me, 0])
            claim[1] += 1
    try:
        yield
    finally:
        with _claims_lock:
            for variable in variables:
                claim = _claims[id(variable)]
                claim[1] -= 1
                if claim[1] == 0:
                    del _claims[id(variable)]


def lift(value):
    """The value an op computes with: a tracer for watched variables, else the plain array."""
    if isinstance(value, Variable):
        for bindings in reversed(_watched):
            tracer = bindings.get(id(value))
            if tracer is not None:
                return tracer
        if _claims:
            claim = _claims.get(id(value))
            if claim is not None and claim[0] != threading.get_ident():
                _refuse_read(value, claim[0])
        return value.value
    return value


def is_traced(value) -> bool:
    return isinstance(value, Tracer)


def raw(value):
    """The NumPy value of an op argument (a tracer's array, a variable's value, or the value itself)."""
    if isinstance(value, Tracer):
        return value.value
    if isinstance(value, Variable):
        return value.value
    return value


def primitive(
    forward: Callable, vjp: Callable, differentiable: Sequence[int] | None = None, pass_wanted: bool = False
) -> Callable:
    """Make `forward` an op that records `vjp` when any positional argument is traced.

    forward(*arrays, **options) -> array. vjp(g, result, *arrays, **options) -> one gradient per
    positional argument (None where there is none). `differentiable` lists the argument positions
    that may carry gradients (default: all). With `pass_wanted`, vjp also receives
    `wanted=(bool per positional argument)`, True where the argument is traced, so that it can skip
    gradients nobody needs (a first convolution's input gradient).
    """

    @functools.wraps(forward)
    def op(*args, **kwargs):
        args = tuple(lift(a) for a in args)
        positions = range(len(args)) if differentiable is None else differentiable
        parents = tuple((i, args[i]) for i in positions if i < len(args) and isinstance(args[i], Tracer))
        values = tuple(raw(a) for a in args)
        result = forward(*values, **kwargs)
        if not parents:
            return result
        if pass_wanted:
            traced = {i for i, _ in parents}
            options = dict(kwargs, wanted=tuple(i in traced for i in range(len(args))))
            return Tracer(result, parents, lambda g: vjp(g, result, *values, **options))
        return Tracer(result, parents, lambda g: vjp(g, result, *values, **kwargs))

    op.forward = forward
    op.vjp = vjp
    return op


def backward(output: Tracer, seed=None, wanted: Sequence[Tracer] = (), sparse_rows: bool = False) -> list:
    """Gradients of `output` (seeded with `seed`, default ones) with respect to each of `wanted`.

    With `sparse_rows`, a gradient that only touches some rows (an embedding lookup's) is returned
    as a `RowSparse`; otherwise every gradient is a dense array."""
    if not isinstance(output, Tracer):
        return [None] * len(wanted)
    seed = np.ones_like(output.value) if seed is None else np.asarray(seed, dtype=output.value.dtype)
    # collect the graph, then visit nodes newest first: every consumer before its inputs
    nodes, stack, seen = [], [output], {id(output)}
    while stack:
        node = stack.pop()
        nodes.append(node)
        for _, parent in node._parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    nodes.sort(key=lambda n: n._order, reverse=True)
    grads = {id(output): seed}
    wanted_ids = {id(w) for w in wanted}
    for node in nodes:
        g = grads.get(id(node))
        if g is None or node._vjp is None:
            continue
        if id(node) not in wanted_ids:
            del grads[id(node)]
        parent_grads = node._vjp(dense(g))
        for position, parent in node._parents:
            pg = parent_grads[position]
            if pg is None:
                continue
            # a gradient has its argument's dtype, whatever the dtypes it was combined with
            dtype = parent.value.dtype if isinstance(parent.value, np.ndarray) else None
            if isinstance(pg, RowSparse):
                if dtype is not None and dtype.kind == "f" and pg.dtype != dtype:
                    pg = pg.astype(dtype)
            elif dtype is not None and dtype.kind == "f" and np.asarray(pg).dtype != dtype:
                pg = np.asarray(pg).astype(dtype)
            previous = grads.get(id(parent))
            grads[id(parent)] = pg if previous is None else previous + pg
    found = [grads.get(id(w)) for w in wanted]
    return found if sparse_rows else [dense(g) for g in found]


class GradientTape:
    """Watch variables while a computation runs, then ask for the gradients of a scalar result.

    with GradientTape(model.trainable_weights) as tape:
        loss = loss_fn(model(x, training=True), y)
    grads = tape.gradient(loss)   # one array (or None) per watched variable
    """

    def __init__(self, variables: Sequence[Variable]):
        self.variables = list(variables)
        self._tracers = {}

    def _bind(self):
        # A variable an enclosing tape already watches is bound to a child of that tape's tracer,
        # so gradients reach every tape that watches it (as with nested tf.GradientTape).
        for v in self.variables:
            outer = lift(v)
            if isinstance(outer, Tracer):
                self._tracers[id(v)] = Tracer(v.value, ((0, outer),), lambda g: (g,))
            else:
                self._tracers[id(v)] = Tracer(v.value)

    def __enter__(self):
        self._bind()
        _watched.append(self._tracers)
        return self

    def __exit__(self, *exc):
        _watched.remove(self._tracers)
        return False

    def gradient(self, target, sparse_rows: bool = False) -> list:
        """One gradient per watched variable (None where the target does not depend on it).

        `sparse_rows=True` returns embedding-lookup gradients as `RowSparse` (the training loop
        does; optimizers accept them)."""
        if isinstance(target, Tracer) and target.size != 1:
            raise ValueError(f"`gradient` needs a scalar target; received shape {target.shape}.")
        return backward(target, None, [self._tracers[id(v)] for v in self.variables], sparse_rows=sparse_rows)


def _check_scalar(result, name):
    value = raw(result)
    if np.ndim(value) != 0 and np.size(value) != 1:
        raise ValueError(
            f"`{name}` differentiates functions with a scalar output; the function returned shape {np.shape(value)}."
        )


def value_and_grad(fn: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """`value_and_grad(fn)(*args) -> (fn(*args), gradient)`, JAX-style.

    `argnums` picks the positional arguments to differentiate (an int gives one gradient, a
    sequence a tuple of them). `fn` must return a scalar and be built from `rankconv.ops`.
    """
    several = not isinstance(argnums, int)
    positions = tuple(argnums) if several else (argnums,)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        for p in positions:
            if not -len(args) <= p < len(args):
                raise ValueError(f"`argnums` names argument {p}, but the function was called with {len(args)}.")
        args = list(args)
        chosen = [p % len(args) for p in positions]
        tracers = []
        for p in chosen:
            if isinstance(lift(args[p]), Tracer):
                raise NotImplementedError(
                    "Higher-order derivatives (grad of a function that itself takes traced values) are not "
                    "supported: rankconv's tape records first derivatives only."
                )
            value = np.asarray(raw(args[p]))
            if value.dtype.kind != "f":
                raise TypeError(
                    f"Argument {p} must be a floating-point array to be differentiated; received dtype {value.dtype}."
                )
            tracers.append(Tracer(value))
            args[p] = tracers[-1]
        result = fn(*args, **kwargs)
        _check_scalar(result, "grad")
        grads = backward(result, None, tracers)
        grads = [np.zeros_like(t.value) if g is None else g for g, t in zip(grads, tracers)]
        value = raw(result)
        return value, (tuple(grads) if several else grads[0])

    return wrapped


def grad(fn: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """`grad(fn)(*args)`: the gradient of scalar `fn` with respect to argument(s) `argnums`."""
    both = value_and_grad(fn, argnums)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        return both(*args, **kwargs)[1]

    return wrapped


def stop_gradient(x):
    """The value of `x`, with no gradient flowing back through it."""
    return raw(lift(x))
