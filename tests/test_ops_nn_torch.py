"""Oracle: PyTorch's forward passes and autograd in float32 for the differentiable ops a model is
built from: pooling (ranks 1-3), embedding lookups (`take`), dense layers (`matmul` + `add`),
`conv` inside `value_and_grad`, and the losses with sample weights."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rankconv import losses, ops
from rankconv.ops import value_and_grad

from oracles import torch as _torch
from reference import reference_padding
from test_ops_convolution import _fits, conv_configs

torch = _torch()
functional = torch.nn.functional


def assert_close(got, expected, tol=1e-5):
    """float32 agreement, relative to the size of the values."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale)


def t(array, grad=False):
    return torch.tensor(np.ascontiguousarray(array), requires_grad=grad)


# ----------------------------------------------------------------------------- pooling


def torch_pool(x_cl, pool_size, strides, padding, kind):
    """PyTorch pooling of channels-last x with TensorFlow's padding applied by hand: -inf for max;
    for average, the window sum over zero padding divided by the number of real cells."""
    rank = x_cl.ndim - 2
    strides = pool_size if strides is None else strides
    x_t = t(np.moveaxis(x_cl, -1, 1), grad=True)
    pairs = [reference_padding(n, k, s, 1, padding) for n, k, s in zip(x_cl.shape[1:-1], pool_size, strides)]
    flat = [amount for pair in reversed(pairs) for amount in pair]  # F.pad wants the last axis first
    if kind == "max":
        pool = {1: functional.max_pool1d, 2: functional.max_pool2d, 3: functional.max_pool3d}[rank]
        y = pool(functional.pad(x_t, flat, value=-np.inf), pool_size, strides)
    else:
        pool = {1: functional.avg_pool1d, 2: functional.avg_pool2d, 3: functional.avg_pool3d}[rank]
        sums = pool(functional.pad(x_t, flat), pool_size, strides)
        counts = pool(functional.pad(torch.ones_like(x_t), flat), pool_size, strides)
        y = sums / counts
    return y, x_t


@st.composite
def pool_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    small = rank == 3
    pool = tuple(draw(st.integers(1, 2 if small else 4)) for _ in range(rank))
    strides = draw(st.one_of(st.none(), st.tuples(*(st.integers(1, 3) for _ in range(rank)))))
    padding = draw(st.sampled_from(["valid", "same"]))
    minimum = pool if padding == "valid" else (1,) * rank
    spatial = tuple(draw(st.integers(m, m + (3 if small else 6))) for m in minimum)
    return dict(
        shape=(draw(st.integers(1, 2)), *spatial, draw(st.integers(1, 3))),
        pool_size=pool,
        strides=strides,
        padding=padding,
        data_format=draw(st.sampled_from(["channels_last", "channels_first"])),
    )


def _check_pool_against_torch(kind, config, x_cl, seed):
    op = ops.max_pool if kind == "max" else ops.average_pool
    options = dict(
        pool_size=config["pool_size"],
        strides=config["strides"],
        padding=config["padding"],
        data_format=config["data_format"],
    )
    channels_first = config["data_format"] == "channels_first"
    x = np.ascontiguousarray(np.moveaxis(x_cl, -1, 1)) if channels_first else x_cl
    y_t, x_t = torch_pool(x_cl, config["pool_size"], config["strides"], config["padding"], kind)
    expected = y_t.detach().numpy() if channels_first else np.moveaxis(y_t.detach().numpy(), 1, -1)
    y = op(x, **options)
    assert y.dtype == np.float32
    assert_close(y, expected)

    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(np.float32)
    y_t.backward(t(g if channels_first else np.moveaxis(g, -1, 1)))
    value, dx = value_and_grad(lambda a: ops.sum(ops.multiply(op(a, **options), g)))(x)
    expected_dx = x_t.grad.numpy() if channels_first else np.moveaxis(x_t.grad.numpy(), 1, -1)
    assert dx.dtype == np.float32
    assert_close(dx, expected_dx)


@settings(max_examples=60)
@given(config=pool_configs(), seed=st.integers(0, 2**16))
def test_max_pool_matches_pytorch(config, seed):
    rng = np.random.default_rng(seed)
    shape = config["shape"]
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 - 1).astype(np.float32)  # no ties
    _check_pool_against_torch("max", config, x, seed)


@settings(max_examples=60)
@given(config=pool_configs(), seed=st.integers(0, 2**16))
def test_average_pool_matches_pytorch(config, seed):
    x = np.random.default_rng(seed).standard_normal(config["shape"]).astype(np.float32)
    _check_pool_against_torch("average", config, x, seed)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("shape,pool,strides", [((2, 9, 2), (3,), (1,)), ((1, 6, 7, 2), (2, 3), (1, 2))])
def test_max_pool_with_ties_matches_pytorch(padding, shape, pool, strides):
    x = np.random.default_rng(0).integers(0, 3, shape).astype(np.float32)  # many tied maxima
    config = dict(shape=shape, pool_size=pool, strides=strides, padding=padding, data_format="channels_last")
    _check_pool_against_torch("max", config, x, 0)


@pytest.mark.parametrize(
    "shape,pool,strides,pad",
    [((2, 3, 7, 2), (3, 3), (2, 2), 1), ((1, 5, 6, 3), (3, 3), (1, 1), 1), ((1, 5, 6, 5, 2), 3, 1, 1)],
)
def test_same_average_pool_equals_pytorch_count_include_pad_false(shape, pool, strides, pad):
    """Where TensorFlow's "same" padding is symmetric, it is PyTorch's own padding with the
    padded cells left out of each window's count."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    rank = len(shape) - 2
    pool_fn = functional.avg_pool2d if rank == 2 else functional.avg_pool3d
    x_t = t(np.moveaxis(x, -1, 1), grad=True)
    y_t = pool_fn(x_t, pool, strides, padding=pad, count_include_pad=False)
    y = ops.average_pool(x, pool, strides, "same")
    assert_close(y, np.moveaxis(y_t.detach().numpy(), 1, -1))
    g = rng.standard_normal(y.shape).astype(np.float32)
    y_t.backward(t(np.moveaxis(g, -1, 1)))
    _, dx = value_and_grad(lambda a: ops.sum(ops.multiply(ops.average_pool(a, pool, strides, "same"), g)))(x)
    assert_close(dx, np.moveaxis(x_t.grad.numpy(), 1, -1))


# ----------------------------------------------------------------------------- embedding, dense


@pytest.mark.parametrize("ids_shape", [(7,), (3, 5), (2, 2, 4)])
def test_embedding_lookup_matches_pytorch(ids_shape):
    rng = np.random.default_rng(len(ids_shape))
    table = rng.standard_normal((6, 4)).astype(np.float32)
    ids = rng.integers(0, 4, ids_shape)  # few rows: many repeats, rows 4 and 5 never read
    ids.reshape(-1)[:2] = 2
    y = ops.take(table, ids, axis=0)
    table_t = t(table, grad=True)
    y_t = functional.embedding(torch.tensor(ids), table_t)
    assert_close(y, y_t.detach().numpy())
    g = rng.standard_normal(y.shape).astype(np.float32)
    y_t.backward(t(g))
    _, d_table = value_and_grad(lambda w: ops.sum(ops.multiply(ops.take(w, ids, axis=0), g)))(table)
    assert d_table.dtype == np.float32
    assert_close(d_table, table_t.grad.numpy())
    np.testing.assert_array_equal(d_table[4:], 0)


@pytest.mark.parametrize("x_shape", [(5, 3), (2, 4, 3), (3,)])
def test_dense_layer_matches_pytorch_linear(x_shape):
    rng = np.random.default_rng(len(x_shape))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((3, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)

    def dense(x, w, b):
        return ops.add(ops.matmul(x, w), b)

    x_t, w_t, b_t = t(x, True), t(w, True), t(b, True)
    y_t = functional.linear(x_t, w_t.T, b_t)
    assert_close(dense(x, w, b), y_t.detach().numpy())
    g = rng.standard_normal(y_t.shape).astype(np.float32)
    y_t.backward(t(g))
    _, grads = value_and_grad(lambda *a: ops.sum(ops.multiply(dense(*a), g)), argnums=(0, 1, 2))(x, w, b)
    for got, expected in zip(grads, (x_t, w_t, b_t)):
        assert got.dtype == np.float32
        assert_close(got, expected.grad.numpy())


# ----------------------------------------------------------------------------- conv


def torch_conv(x_cl, w, strides, padding, dilation):
    rank = x_cl.ndim - 2
    x_t = t(np.moveaxis(x_cl, -1, 1), grad=True)
    w_t = t(np.transpose(w, (rank + 1, rank, *range(rank))), grad=True)  # (*k, Cin/g, Cout) → (Cout, Cin/g, *k)
    pairs = [
        padding[i]
        if isinstance(padding, tuple)
        else reference_padding(x_cl.shape[1 + i], w.shape[i], strides[i], dilation[i], padding)
        for i in range(rank)
    ]
    flat = [amount for pair in reversed(pairs) for amount in pair]
    conv_fn = {1: functional.conv1d, 2: functional.conv2d, 3: functional.conv3d}[rank]
    groups = x_cl.shape[-1] // w.shape[-2]
    y_t = conv_fn(functional.pad(x_t, flat), w_t, stride=strides, dilation=dilation, groups=groups)
    return y_t, x_t, w_t


def _check_conv_against_torch(x, w, strides, padding, dilation, seed):
    rank = x.ndim - 2
    y_t, x_t, w_t = torch_conv(x, w, strides, padding, dilation)
    g = np.random.default_rng(seed).standard_normal(np.moveaxis(y_t.detach().numpy(), 1, -1).shape).astype(np.float32)
    y_t.backward(t(np.moveaxis(g, -1, 1)))

    def loss(a, b):
        return ops.sum(ops.multiply(ops.conv(a, b, strides, padding, dilation_rate=dilation), g))

    value, (dx, dw) = value_and_grad(loss, argnums=(0, 1))(x, w)
    assert dx.dtype == np.float32 and dw.dtype == np.float32
    assert_close(ops.conv(x, w, strides, padding, dilation_rate=dilation), np.moveaxis(y_t.detach().numpy(), 1, -1))
    assert float(value) == pytest.approx(float(np.sum(np.moveaxis(y_t.detach().numpy(), 1, -1) * g)), abs=1e-3)
    assert_close(dx, np.moveaxis(x_t.grad.numpy(), 1, -1))
    assert_close(dw, np.transpose(w_t.grad.numpy(), (*range(2, rank + 2), 1, 0)))


@settings(max_examples=40)
@given(config=conv_configs(ranks=(1, 2, 3)), seed=st.integers(0, 2**16))
def test_conv_inside_value_and_grad_matches_pytorch(config, seed):
    config = dict(config, data_format="channels_last")
    assume(_fits(config))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["x_shape"]).astype(np.float32)
    w = rng.standard_normal(config["kernel_shape"]).astype(np.float32)
    _check_conv_against_torch(x, w, config["strides"], config["padding"], config["dilation"], seed)


@pytest.mark.parametrize(
    "x_shape,w_shape,strides,padding,dilation",
    [
        ((2, 11, 4), (3, 4, 6), (1,), "causal", (2,)),  # causal: d * (k - 1) zeros before
        ((2, 12, 6), (3, 2, 6), (2,), "causal", (1,)),  # causal, 3 groups, stride 2
        ((2, 9, 10, 4), (3, 2, 2, 6), (2, 1), "same", (1, 2)),  # 2 groups
        ((1, 8, 7, 3), (2, 3, 3, 5), (1, 2), "valid", (2, 1)),
        ((1, 5, 6, 4, 4), (2, 2, 3, 1, 4), (1, 2, 1), "same", (1, 1, 2)),  # depthwise, rank 3
        ((2, 6, 5, 7, 2), (3, 2, 2, 2, 3), (2, 1, 2), "valid", (1, 2, 1)),
    ],
)
def test_conv_configurations_match_pytorch(x_shape, w_shape, strides, padding, dilation):
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    _check_conv_against_torch(x, w, strides, padding, dilation, 0)


def test_conv_channels_first_inside_value_and_grad_matches_pytorch():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)  # (batch, channels, rows, cols)
    w = rng.standard_normal((3, 2, 2, 6)).astype(np.float32)
    y_t, x_t, w_t = torch_conv(np.moveaxis(x, 1, -1), w, (1, 2), "same", (1, 1))
    g = rng.standard_normal(tuple(y_t.shape)).astype(np.float32)
    y_t.backward(t(g))

    def loss(a, b):
        return ops.sum(ops.multiply(ops.conv(a, b, (1, 2), "same", "channels_first"), g))

    _, (dx, dw) = value_and_grad(loss, argnums=(0, 1))(x, w)
    assert_close(dx, x_t.grad.numpy())
    assert_close(dw, np.transpose(w_t.grad.numpy(), (2, 3, 1, 0)))


# ----------------------------------------------------------------------------- losses


def _loss_and_grad(loss_object, y_true, y_pred, sample_weight=None):
    return value_and_grad(lambda p: loss_object(y_true, p, sample_weight=sample_weight))(y_pred)


def _torch_reduce(per_sample, weights):
    """Keras's "sum_over_batch_size": weighted sum over the number of per-sample losses."""
    if weights is not None:
        per_sample = per_sample * t(weights).reshape(weights.shape + (1,) * (per_sample.ndim - weights.ndim))
    return per_sample.sum() / per_sample.numel()


def _compare_loss(loss_object, function, y_true, y_pred, torch_per_sample, weights, tol=1e-5):
    """Per-sample values of `function`, and the reduced loss and its gradient, against PyTorch."""
    pred_t = t(y_pred, grad=True)
    per_sample_t = torch_per_sample(pred_t)
    assert_close(function(y_true, y_pred), per_sample_t.detach().numpy(), tol)
    total_t = _torch_reduce(per_sample_t, weights)
    total_t.backward()
    value, g = _loss_and_grad(loss_object, y_true, y_pred, weights)
    assert np.asarray(value).dtype == np.float32 and g.dtype == np.float32
    assert float(value) == pytest.approx(float(total_t.detach()), rel=tol, abs=tol)
    assert_close(g, pred_t.grad.numpy(), tol)


def _logits(rng, shape, scale=2.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _probabilities(rng, shape):
    """Rows of probabilities in about [0.01, 0.9]: Keras's clip to [1e-7, 1 - 1e-7] does not bite."""
    p = np.exp(rng.standard_normal(shape)).astype(np.float32)
    return p / p.sum(-1, keepdims=True)


WEIGHTINGS = ["unweighted", "weighted"]


def _weights(rng, batch, weighting):
    return None if weighting == "unweighted" else rng.uniform(0, 2, batch).astype(np.float32)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 4)])
def test_sparse_categorical_crossentropy_from_logits(shape, weighting):
    rng = np.random.default_rng(len(shape))
    logits, labels = _logits(rng, shape), rng.integers(0, shape[-1], shape[:-1])
    weights = _weights(rng, shape[0], weighting)

    def torch_losses(p):
        return functional.cross_entropy(p.movedim(-1, 1), torch.tensor(labels), reduction="none")

    _compare_loss(
        losses.SparseCategoricalCrossentropy(from_logits=True),
        lambda y, p: losses.sparse_categorical_crossentropy(y, p, from_logits=True),
        labels,
        logits,
        torch_losses,
        weights,
    )


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_sparse_categorical_crossentropy_from_probabilities(weighting):
    rng = np.random.default_rng(3)
    probabilities, labels = _probabilities(rng, (7, 5)), rng.integers(0, 5, (7, 1))  # (batch, 1) labels
    weights = _weights(rng, 7, weighting)

    def torch_losses(p):
        return functional.nll_loss(torch.log(p / p.sum(-1, keepdim=True)), torch.tensor(labels[:, 0]), reduction="none")

    _compare_loss(
        losses.SparseCategoricalCrossentropy(),
        losses.sparse_categorical_crossentropy,
        labels,
        probabilities,
        torch_losses,
        weights,
    )


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("from_logits", [True, False])
def test_categorical_crossentropy(from_logits, weighting):
    rng = np.random.default_rng(4)
    y_pred = _logits(rng, (6, 4)) if from_logits else _probabilities(rng, (6, 4))
    y_true = _probabilities(rng, (6, 4))  # soft labels
    y_true[:3] = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 3)]  # and one-hot rows
    weights = _weights(rng, 6, weighting)

    def torch_losses(p):
        if from_logits:
            return functional.cross_entropy(p, t(y_true), reduction="none")
        return -(t(y_true) * torch.log(p / p.sum(-1, keepdim=True))).sum(-1)

    _compare_loss(
        losses.CategoricalCrossentropy(from_logits=from_logits),
        lambda y, p: losses.categorical_crossentropy(y, p, from_logits=from_logits),
        y_true,
        y_pred,
        torch_losses,
        weights,
    )


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("shape", [(8, 1), (4, 3)])
def test_binary_crossentropy(from_logits, shape, weighting):
    rng = np.random.default_rng(shape[1])
    y_pred = _logits(rng, shape) if from_logits else rng.uniform(0.02, 0.98, shape).astype(np.float32)
    y_true = rng.integers(0, 2, shape).astype(np.float32)
    y_true[0] = 0.3  # a soft label
    weights = _weights(rng, shape[0], weighting)

    def torch_losses(p):
        if from_logits:
            return functional.binary_cross_entropy_with_logits(p, t(y_true), reduction="none").mean(-1)
        return functional.binary_cross_entropy(p, t(y_true), reduction="none").mean(-1)

    _compare_loss(
        losses.BinaryCrossentropy(from_logits=from_logits),
        lambda y, p: losses.binary_crossentropy(y, p, from_logits=from_logits),
        y_true,
        y_pred,
        torch_losses,
        weights,
    )


def test_binary_crossentropy_from_large_logits_is_stable():
    y_pred = np.array([[80.0, -80.0, 200.0, -200.0]], np.float32)
    y_true = np.array([[0.0, 1.0, 1.0, 0.0]], np.float32)
    pred_t = t(y_pred, grad=True)
    expected = functional.binary_cross_entropy_with_logits(pred_t, t(y_true), reduction="none").mean(-1)
    expected.sum().backward()
    value, g = _loss_and_grad(losses.BinaryCrossentropy(from_logits=True), y_true, y_pred)
    assert float(value) == pytest.approx(float(expected.detach()[0]), rel=1e-6)
    assert_close(g, pred_t.grad.numpy())


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize(
    "loss_object,function,torch_fn",
    [
        (losses.MeanSquaredError(), losses.mean_squared_error, functional.mse_loss),
        (losses.MeanAbsoluteError(), losses.mean_absolute_error, functional.l1_loss),
    ],
    ids=["mse", "mae"],
)
@pytest.mark.parametrize("shape", [(6, 3), (2, 5, 4)])
def test_regression_losses(loss_object, function, torch_fn, shape, weighting):
    rng = np.random.default_rng(len(shape))
    y_true = rng.standard_normal(shape).astype(np.float32)
    y_pred = (y_true + rng.choice([-1, 1], shape) * rng.uniform(0.05, 1.0, shape)).astype(np.float32)  # no kinks
    weights = _weights(rng, shape[0], weighting)

    def torch_losses(p):
        return torch_fn(p, t(y_true), reduction="none").mean(-1)

    _compare_loss(loss_object, function, y_true, y_pred, torch_losses, weights)


def test_sum_and_none_reductions_match_pytorch():
    rng = np.random.default_rng(6)
    logits, labels = _logits(rng, (5, 3)), rng.integers(0, 3, 5)
    weights = rng.uniform(0, 2, 5).astype(np.float32)
    logits_t = t(logits, grad=True)
    per_sample_t = functional.cross_entropy(logits_t, torch.tensor(labels), reduction="none") * t(weights)
    per_sample_t.sum().backward()
    none = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    assert_close(none(labels, logits, sample_weight=weights), per_sample_t.detach().numpy())
    total = losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    value, g = _loss_and_grad(total, labels, logits, weights)
    assert float(value) == pytest.approx(float(per_sample_t.sum().detach()), rel=1e-5)
    assert_close(g, logits_t.grad.numpy())


# Where Keras's clip of probabilities to [1e-7, 1 - 1e-7] bites, PyTorch's losses (which clamp the
# log at -100 instead) are not the oracle: a float64 formula of Keras's definition is.

EPSILON = 1e-7


def test_clipped_probabilities_follow_keras_not_pytorch():
    # sparse / categorical: the labelled class has probability 1e-9 after renormalisation
    p = np.array([[1e-9, 0.5, 0.5 - 1e-9], [0.2, 0.3, 0.5]])
    labels = np.array([0, 2])
    q = p / p.sum(-1, keepdims=True)
    expected = -np.log(np.clip(q[np.arange(2), labels], EPSILON, 1 - EPSILON))
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, p), expected, rtol=1e-12)
    np.testing.assert_allclose(losses.categorical_crossentropy(np.eye(3)[labels], p), expected, rtol=1e-12)
    assert expected[0] == pytest.approx(-np.log(EPSILON))  # not -log(1e-9) = 20.7
    g = value_and_grad(lambda y: ops.sum(losses.sparse_categorical_crossentropy(labels, y)))(p)[1]
    np.testing.assert_array_equal(g[0], 0)  # the clipped row passes no gradient
    np.testing.assert_allclose(g[1], 1 / p[1].sum() - np.eye(3)[2] / p[1, 2])  # d/dp of -log(p_2 / sum(p))

    # binary: probabilities beyond the clip on either side
    y_pred = np.array([[1e-9, 1 - 1e-9, 0.25, 0.0]])
    y_true = np.array([[1.0, 0.0, 1.0, 1.0]])
    clipped = np.clip(y_pred, EPSILON, 1 - EPSILON)
    per_cell = -(y_true * np.log(clipped) + (1 - y_true) * np.log(1 - clipped))
    np.testing.assert_allclose(losses.binary_crossentropy(y_true, y_pred), per_cell.mean(-1), rtol=1e-9)
    torch_value = functional.binary_cross_entropy(torch.tensor(y_pred), torch.tensor(y_true)).item()
    assert abs(float(losses.binary_crossentropy(y_true, y_pred)[0]) - torch_value) > 1.0  # PyTorch clamps at 100
    g = value_and_grad(lambda y: ops.sum(losses.binary_crossentropy(y_true, y)))(y_pred)[1]
    np.testing.assert_allclose(g, [[0.0, 0.0, -1 / 0.25 / 4, 0.0]], atol=1e-12)
