"""Array ops under Keras 3's `keras.ops` names and signatures, each with its VJP beside it.

Gradients keep the dtype of the values (float32 stays float32).
"""

from __future__ import annotations

import numpy as np

from rankconv.ops import conv_common as common
from rankconv.ops.autodiff import RowSparse, Tracer, lift, primitive, raw


def _unbroadcast(g, shape):
    """Sum `g` down to `shape`: the adjoint of NumPy broadcasting."""
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(extra))) if extra > 0 else g
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=kept, keepdims=True) if kept else g


def _shape(x):
    return np.shape(x)


# ----------------------------------------------------------------------------- elementwise

add = primitive(np.add, lambda g, r, a, b: (_unbroadcast(g, _shape(a)), _unbroadcast(g, _shape(b))))
subtract = primitive(np.subtract, lambda g, r, a, b: (_unbroadcast(g, _shape(a)), _unbroadcast(-g, _shape(b))))
multiply = primitive(np.multiply, lambda g, r, a, b: (_unbroadcast(g * b, _shape(a)), _unbroadcast(g * a, _shape(b))))
divide = primitive(
    np.true_divide, lambda g, r, a, b: (_unbroadcast(g / b, _shape(a)), _unbroadcast(-g * r / b, _shape(b)))
)
true_divide = divide
negative = primitive(np.negative, lambda g, r, x: (-g,))
square = primitive(np.square, lambda g, r, x: (g * 2 * x,))
sqrt = primitive(np.sqrt, lambda g, r, x: (g / (2 * r),))
exp = primitive(np.exp, lambda g, r, x: (g * r,))
log = primitive(np.log, lambda g, r, x: (g / x,))
log1p = primitive(np.log1p, lambda g, r, x: (g / (1 + x),))
abs = primitive(np.abs, lambda g, r, x: (g * np.sign(x),))  # noqa: A001 - Keras's name
absolute = abs
sign = primitive(np.sign, lambda g, r, x: (None,))


def _power_vjp(g, r, a, b):
    da = _unbroadcast(g * b * np.power(a, b - 1), _shape(a))
    # d(a**b)/db = a**b log(a), defined here for a > 0 (only used when the exponent is traced)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = _unbroadcast(g * r * np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0), _shape(b))
    return da, db


power = primitive(np.power, _power_vjp)


def _pick(mask, g, shape):
    return _unbroadcast(np.where(mask, g, 0).astype(g.dtype), shape)


maximum = primitive(np.maximum, lambda g, r, a, b: (_pick(a >= b, g, _shape(a)), _pick(a < b, g, _shape(b))))
minimum = primitive(np.minimum, lambda g, r, a, b: (_pick(a <= b, g, _shape(a)), _pick(a > b, g, _shape(b))))


def _clip(x, x_min, x_max):
    return np.clip(x, x_min, x_max)


clip = primitive(_clip, lambda g, r, x, lo, hi: (g * ((x >= lo) & (x <= hi)),), differentiable=(0,))


def _where(condition, x1, x2):
    return np.where(condition, x1, x2)


where = primitive(
    _where,
    lambda g, r, c, a, b: (None, _pick(c, g, _shape(a)), _pick(~np.asarray(c, bool), g, _shape(b))),
    differentiable=(1, 2),
)


def _cast(x, dtype):
    return np.asarray(x).astype(dtype)


cast = primitive(_cast, lambda g, r, x, dtype: (g.astype(np.asarray(x).dtype),), differentiable=(0,))


# ----------------------------------------------------------------------------- reductions


def _expand(g, shape, axis, keepdims):
    """Broadcastable form of a reduction's gradient."""
    if axis is None or keepdims:
        return g if keepdims or axis is not None else np.reshape(g, (1,) * len(shape))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return np.expand_dims(g, tuple(a % len(shape) for a in axes))


def _sum(x, axis=None, keepdims=False):
    return np.sum(x, axis=_axis(axis), keepdims=keepdims)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return int(np.prod([shape[a] for a in axes]))


sum = primitive(  # noqa: A001 - Keras's name
    _sum,
    lambda g, r, x, axis=None, keepdims=False: (
        np.broadcast_to(_expand(g, x.shape, _axis(axis), keepdims), x.shape).astype(x.dtype, copy=True),
    ),
)


def _mean(x, axis=None, keepdims=False):
    return np.mean(x, axis=_axis(axis), keepdims=keepdims).astype(np.result_type(x.dtype, np.float32), copy=False)


mean = primitive(
    _mean,
    lambda g, r, x, axis=None, keepdims=False: (
        np.broadcast_to(_expand(g, x.shape, _axis(axis), keepdims) / _count(x.shape, _axis(axis)), x.shape).astype(
            r.dtype, copy=True
        ),
    ),
)


def _extreme_vjp(g, r, x, axis=None, keepdims=False):
    axis = _axis(axis)
    r_b = _expand(r, x.shape, axis, keepdims)
    share = (x == r_b).astype(x.dtype)
    # ties share the gradient equally (as TensorFlow's reduce_max does)
    counts = np.sum(share, axis=axis, keepdims=True)
    if counts.max(initial=1) > 1:
        share /= counts
    share *= _expand(g, x.shape, axis, keepdims)
    return (share,)


def _max(x, axis=None, keepdims=False):
    return np.max(x, axis=_axis(axis), keepdims=keepdims)


def _min(x, axis=None, keepdims=False):
    return np.min(x, axis=_axis(axis), keepdims=keepdims)


max = primitive(_max, _extreme_vjp)  # noqa: A001 - Keras's name
min = primitive(_min, _extreme_vjp)  # noqa: A001 - Keras's name
amax, amin = max, min


def _logsumexp(x, axis=None, keepdims=False):
    axis = _axis(axis)
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    out = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


logsumexp = primitive(
    _logsumexp,
    lambda g, r, x, axis=None, keepdims=False: (
        _expand(g, x.shape, _axis(axis), keepdims) * np.exp(x - _expand(r, x.shape, _axis(axis), keepdims)),
    ),
)


# ----------------------------------------------------------------------------- products


def _matmul_vjp(g, r, a, b):
    if a.ndim == 1 and b.ndim == 1:
        return g * b, g * a
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    if b.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    if b2.ndim == 2:
        # (…, n, k) @ (k, m): fold the batch axes into rows for one product each way
        da = _rows_matmul(g2, b2.T)
        db = common.matmul(_rows(a2).T, _rows(g2))
    else:
        da = g2 @ np.swapaxes(b2, -1, -2)
        db = np.swapaxes(a2, -1, -2) @ g2
    da = _unbroadcast(da, a2.shape).reshape(a.shape)
    db = _unbroadcast(db, b2.shape).reshape(b.shape)
    return da, db


def _rows(a):
    """`a` as a matrix: its leading axes folded into rows (explicit, so that a zero-length last
    axis folds too)."""
    return a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1])


def _rows_matmul(a, b):
    """`np.matmul(a, b)`; where `b` is a matrix, `a`'s leading axes folded into rows for one product
    (split over the worker threads when large: `conv_common.matmul`)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim < 2 or b.ndim != 2 or a.shape[-1] != b.shape[0]:
        return np.matmul(a, b)  # (NumPy's own error for mismatched shapes)
    return common.matmul(_rows(a), b).reshape(*a.shape[:-1], b.shape[1])


matmul = primitive(_rows_matmul, _matmul_vjp)


def _dot(x1, x2):
    return np.matmul(x1, x2) if np.ndim(x1) and np.ndim(x2) else np.multiply(x1, x2)


dot = primitive(
    _dot,
    lambda g, r, a, b: (
        _matmul_vjp(g, r, a, b)
        if np.ndim(a) and np.ndim(b)
        else (_unbroadcast(g * b, _shape(a)), _unbroadcast(g * a, _shape(b)))
    ),
)


# ----------------------------------------------------------------------------- shapes


def _reshape(x, newshape):
    return np.reshape(x, newshape)


reshape = primitive(_reshape, lambda g, r, x, newshape: (np.reshape(g, x.shape),), differentiable=(0,))


def _transpose(x, axes=None):
    return np.transpose(x, axes)


def _transpose_vjp(g, r, x, axes=None):
    if axes is None:
        return (np.transpose(g),)
    return (np.transpose(g, np.argsort([a % x.ndim for a in axes])),)


transpose = primitive(_transpose, _transpose_vjp, differentiable=(0,))


def _expand_dims(x, axis):
    return np.expand_dims(x, axis)


expand_dims = primitive(_expand_dims, lambda g, r, x, axis: (np.reshape(g, np.shape(x)),), differentiable=(0,))


def _squeeze(x, axis=None):
    return np.squeeze(x, axis=_axis(axis))


squeeze = primitive(_squeeze, lambda g, r, x, axis=None: (np.reshape(g, np.shape(x)),), differentiable=(0,))


def _pad(x, pad_width, mode="constant", constant_values=None):
    if mode != "constant":
        raise ValueError(f"`pad` supports mode='constant' only; received mode={mode!r}.")
    return np.pad(x, pad_width, constant_values=0 if constant_values is None else constant_values)


def _pad_vjp(g, r, x, pad_width, mode="constant", constant_values=None):
    widths = np.broadcast_to(np.asarray(pad_width), (np.ndim(x), 2))
    return (g[tuple(slice(int(lo), g.shape[i] - int(hi)) for i, (lo, hi) in enumerate(widths))],)


pad = primitive(_pad, _pad_vjp, differentiable=(0,))


def _repeat(x, repeats, axis=None):
    return np.repeat(x, repeats, axis=axis)


def _repeat_vjp(g, r, x, repeats, axis=None):
    """Each input cell receives the sum of the gradients of its copies."""
    x_shape = np.shape(x)
    if axis is None:  # Keras's default: the flattened array
        x_shape, axis = (int(np.size(x)),), 0
    axis = axis % len(x_shape)
    n = x_shape[axis]
    g = np.moveaxis(np.reshape(g, (*x_shape[:axis], -1, *x_shape[axis + 1 :])), axis, 0)
    if np.ndim(repeats) == 0:  # every cell copied `repeats` times, side by side
        dx = g.reshape((n, int(repeats), *g.shape[1:])).sum(axis=1)
    else:
        counts = np.broadcast_to(np.asarray(repeats, dtype=np.int64).reshape(-1), (n,))
        starts = np.cumsum(counts) - counts
        copied = counts > 0  # reduceat cannot express an empty run
        dx = np.zeros((n, *g.shape[1:]), dtype=g.dtype)
        if copied.any():
            dx[copied] = np.add.reduceat(g, starts[copied], axis=0)
    return (np.reshape(np.moveaxis(dx, 0, axis), np.shape(x)), None)


repeat = primitive(_repeat, _repeat_vjp, differentiable=(0,))


def concatenate(xs, axis=0):
    """Join arrays along `axis` (Keras's default is axis 0)."""
    xs = [lift(x) for x in xs]
    values = [np.asarray(raw(x)) for x in xs]
    result = np.concatenate(values, axis=axis)
    parents = tuple((i, x) for i, x in enumerate(xs) if isinstance(x, Tracer))
    if not parents:
        return result
    bounds = np.cumsum([v.shape[axis] for v in values])[:-1]

    def vjp(g):
        return np.split(g, bounds, axis=axis)

    return Tracer(result, parents, vjp)


def stack(xs, axis=0):
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


def _getitem(x, index):
    return x[index]


def _getitem_vjp(g, r, x, index):
    dx = np.zeros(np.shape(x), dtype=g.dtype)
    np.add.at(dx, index, g)  # handles repeated fancy indices; basic slices are exact too
    return (dx, None)


getitem = primitive(_getitem, _getitem_vjp, differentiable=(0,))


def scatter_rows(indices, rows, num_rows):
    """Sum `rows[i]` into row `indices[i]` of a (num_rows, …) zero array, without np.add.at.

    Sorting the indices once makes every destination row a contiguous run, summed by reduceat.
    """
    return RowSparse.from_rows(indices, rows, num_rows).dense()


def _take(x, indices, axis=None):
    return np.take(x, indices, axis=axis)


def _take_vjp(g, r, x, indices, axis=None):
    indices = np.asarray(indices)
    if axis is None:
        return (scatter_rows(indices % x.size, g, x.size).reshape(x.shape), None)
    axis = axis % x.ndim
    if axis == 0:  # an embedding lookup: only the looked-up rows get a gradient
        return (RowSparse.from_rows(indices % x.shape[0], g, x.shape[0]), None)
    moved = np.moveaxis(g, tuple(range(axis, axis + indices.ndim)), tuple(range(indices.ndim)))
    dx = scatter_rows(indices % x.shape[axis], moved, x.shape[axis])
    return (np.moveaxis(dx, 0, axis), None)


take = primitive(_take, _take_vjp, differentiable=(0,))


def _take_along_axis(x, indices, axis=None):
    return np.take_along_axis(x, indices, axis=axis)


def _take_along_axis_vjp(g, r, x, indices, axis=None):
    indices = np.asarray(indices)
    if axis is None:  # Keras's default: the flattened array
        dx = np.zeros(np.size(x), dtype=g.dtype)
        np.add.at(dx, indices.reshape(-1) % np.size(x), g.reshape(-1))
        return (dx.reshape(np.shape(x)), None)
    x_shape = np.shape(x)
    axis = axis % len(x_shape)
    # both sides broadcast on every axis but `axis`: scatter into the broadcast shape of x, then
    # sum back over the axes where x was broadcast
    outer = np.broadcast_shapes(
        tuple(1 if i == axis else n for i, n in enumerate(x_shape)),
        tuple(1 if i == axis else n for i, n in enumerate(indices.shape)),
    )
    wide_shape = tuple(x_shape[axis] if i == axis else n for i, n in enumerate(outer))
    full_indices = np.broadcast_to(indices, tuple(indices.shape[axis] if i == axis else n for i, n in enumerate(outer)))
    grids = np.indices(full_indices.shape, sparse=True)
    where = tuple(full_indices % x_shape[axis] if i == axis else grids[i] for i in range(len(x_shape)))
    dx = np.zeros(wide_shape, dtype=g.dtype)
    np.add.at(dx, where, np.broadcast_to(g, full_indices.shape))
    return (_unbroadcast(dx, x_shape), None)


take_along_axis = primitive(_take_along_axis, _take_along_axis_vjp, differentiable=(0,))


# ----------------------------------------------------------------------------- not differentiable


def one_hot(x, num_classes, axis=-1, dtype="float32"):
    x = np.asarray(raw(x)).astype(np.int64)
    out = (x[..., None] == np.arange(num_classes)).astype(dtype)
    return out if axis == -1 else np.moveaxis(out, -1, axis)


def argmax(x, axis=None, keepdims=False):
    return np.argmax(raw(lift(x)), axis=axis, keepdims=keepdims)


def argmin(x, axis=None, keepdims=False):
    return np.argmin(raw(lift(x)), axis=axis, keepdims=keepdims)


def equal(x1, x2):
    return np.equal(raw(lift(x1)), raw(lift(x2)))


def zeros_like(x, dtype=None):
    return np.zeros_like(raw(lift(x)), dtype=dtype)


def ones_like(x, dtype=None):
    return np.ones_like(raw(lift(x)), dtype=dtype)


def convert_to_numpy(x):
    return np.asarray(raw(lift(x)))


def shape(x):
    return np.shape(raw(lift(x)))
