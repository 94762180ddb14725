"""`ops.conv_transpose`, `ops.depthwise_conv` and `ops.separable_conv`: against the float64 loop
references, with gradients against PyTorch's autograd, and clear errors."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rankconv import layers, ops
from rankconv.ops import value_and_grad

from oracles import torch as _torch
from reference import reference_conv, reference_conv_transpose

torch = _torch()


@pytest.fixture(autouse=True, scope="module")
def _torch_in_float64():
    """The oracles below build float64 tensors by default, in this module only: a process-wide
    default would leak into later test modules that build float32 torch models."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(saved)


@st.composite
def transpose_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    small = rank == 3
    kernel = tuple(draw(st.integers(1, 2 if small else 4)) for _ in range(rank))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 1 if small else 3)) for _ in range(rank))
    output_padding = None
    if draw(st.booleans()):
        output_padding = tuple(draw(st.integers(0, s - 1)) for s in strides)
    return dict(
        x_shape=(draw(st.integers(1, 2)), *(draw(st.integers(1, 3 if small else 5)) for _ in range(rank)),
                 draw(st.integers(1, 3))),
        kernel=kernel,
        filters=draw(st.integers(1, 3)),
        strides=strides,
        dilation=dilation,
        padding=draw(st.sampled_from(["valid", "same"])),
        output_padding=output_padding,
        data_format=draw(st.sampled_from(["channels_last", "channels_first"])),
    )  # fmt: skip


def _transpose_arrays(config, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["x_shape"])
    if config["data_format"] == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    w = rng.standard_normal((*config["kernel"], config["filters"], config["x_shape"][-1]))
    return x, w


def _options(config):
    return dict(
        strides=config["strides"],
        padding=config["padding"],
        output_padding=config["output_padding"],
        data_format=config["data_format"],
        dilation_rate=config["dilation"],
    )


@settings(max_examples=80, deadline=None)
@given(config=transpose_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose_matches_reference(config, seed):
    x, w = _transpose_arrays(config, seed)
    want = reference_conv_transpose(
        x, w, config["strides"], config["padding"], config["output_padding"], config["dilation"], config["data_format"]
    )
    if 0 in want.shape:  # Keras's arithmetic gives an empty axis ("same", output_padding 0, even kernel, n = 1)
        with pytest.raises(ValueError, match="larger than the"):
            ops.conv_transpose(x, w, **_options(config))
        return
    got = ops.conv_transpose(x, w, **_options(config))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def _torch_transpose(x, w, config):
    """PyTorch's transposed convolution (no padding: the full output), cut to Keras's window."""
    rank = len(config["kernel"])
    channels_first = config["data_format"] == "channels_first"
    xt = x if channels_first else x.movedim(-1, 1).contiguous()
    wt = w.permute(rank + 1, rank, *range(rank)).contiguous()  # (channels, filters, *kernel)
    conv = getattr(torch.nn.functional, f"conv_transpose{rank}d")
    full = conv(xt, wt, stride=config["strides"], dilation=config["dilation"])
    reference = reference_conv_transpose(
        np.zeros(tuple(x.shape)), np.zeros(tuple(w.shape)), config["strides"], config["padding"],
        config["output_padding"], config["dilation"], config["data_format"],
    )  # fmt: skip
    lengths = reference.shape[2:] if channels_first else reference.shape[1:-1]
    pieces = []
    for axis, length in enumerate(lengths):
        span = config["dilation"][axis] * (config["kernel"][axis] - 1) + 1
        extra = None if config["output_padding"] is None else config["output_padding"][axis]
        stride, n = config["strides"][axis], (x.shape[2 + axis] if channels_first else x.shape[1 + axis])
        if config["padding"] == "valid":
            lo = span - 1
        else:
            total = stride + span - 2 if extra is None else span + span % 2 - 2 + extra
            lo = min(total // 2 + total % 2, span - 1)
        pieces.append((span - 1 - lo, length, full.shape[2 + axis], n))
    pads = []
    for start, length, available, _ in reversed(pieces):
        pads += [-start, start + length - available]  # negative pads crop
    out = torch.nn.functional.pad(full, pads)
    return out if channels_first else out.movedim(1, -1)


@settings(max_examples=40, deadline=None)
@given(config=transpose_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose_gradients_match_torch_autograd(config, seed):
    x, w = _transpose_arrays(config, seed)
    reference = reference_conv_transpose(x, w, config["strides"], config["padding"], config["output_padding"],
                                         config["dilation"], config["data_format"])  # fmt: skip
    assume(0 not in reference.shape)
    out = ops.conv_transpose(x, w, **_options(config))
    cotangent = np.random.default_rng(seed + 1).standard_normal(out.shape)
    _, (dx, dw) = value_and_grad(
        lambda a, b: ops.sum(ops.multiply(ops.conv_transpose(a, b, **_options(config)), cotangent)), argnums=(0, 1)
    )(x, w)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    theirs = _torch_transpose(xt, wt, config)
    np.testing.assert_allclose(out, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)
    (theirs * torch.tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-10, atol=1e-10)


@st.composite
def depthwise_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    small = rank == 3
    kernel = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(rank))
    strides = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    spatial = tuple(draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 4)) for k, d in zip(kernel, dilation))
    return dict(
        x_shape=(draw(st.integers(1, 2)), *spatial, draw(st.integers(1, 4))),
        kernel=kernel,
        multiplier=draw(st.integers(1, 3)),
        filters=draw(st.integers(1, 3)),
        strides=strides,
        dilation=dilation,
        padding=draw(st.sampled_from(["valid", "same"])),
        data_format=draw(st.sampled_from(["channels_last", "channels_first"])),
    )


@settings(max_examples=60, deadline=None)
@given(config=depthwise_configs(), seed=st.integers(0, 2**16))
def test_depthwise_and_separable_match_reference_and_torch_gradients(config, seed):
    rng = np.random.default_rng(seed)
    rank, channels = len(config["kernel"]), config["x_shape"][-1]
    x = rng.standard_normal(config["x_shape"])
    channels_first = config["data_format"] == "channels_first"
    if channels_first:
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    depthwise = rng.standard_normal((*config["kernel"], channels, config["multiplier"]))
    pointwise = rng.standard_normal((1,) * rank + (channels * config["multiplier"], config["filters"]))
    options = dict(
        strides=config["strides"], padding=config["padding"], data_format=config["data_format"],
        dilation_rate=config["dilation"],
    )  # fmt: skip
    grouped = depthwise.reshape(*config["kernel"], 1, channels * config["multiplier"])
    want = reference_conv(x, grouped, config["strides"], config["padding"], config["dilation"], config["data_format"])
    got = ops.depthwise_conv(x, depthwise, **options)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    want_separable = reference_conv(want, pointwise, 1, "valid", 1, config["data_format"])
    np.testing.assert_allclose(
        ops.separable_conv(x, depthwise, pointwise, **options), want_separable, rtol=1e-10, atol=1e-10
    )

    # gradients: PyTorch's grouped convolution (one group per channel) is the oracle
    pairs = [
        _same_pairs(n, k, s, d) if config["padding"] == "same" else (0, 0)
        for n, k, s, d in zip(config["x_shape"][1:-1], config["kernel"], config["strides"], config["dilation"])
    ]
    cotangent = rng.standard_normal(got.shape)
    _, (dx, dk) = value_and_grad(
        lambda a, b: ops.sum(ops.multiply(ops.depthwise_conv(a, b, **options), cotangent)), argnums=(0, 1)
    )(x, depthwise)
    xt = torch.tensor(x if channels_first else np.moveaxis(x, -1, 1), requires_grad=True)
    kt = torch.tensor(depthwise, requires_grad=True)
    weight = kt.reshape(*config["kernel"], channels * config["multiplier"]).permute(rank, *range(rank))[:, None]
    padded = torch.nn.functional.pad(xt, [p for pair in reversed(pairs) for p in pair])
    conv = getattr(torch.nn.functional, f"conv{rank}d")
    out = conv(padded, weight, stride=config["strides"], dilation=config["dilation"], groups=channels)
    g = torch.tensor(cotangent if channels_first else np.moveaxis(cotangent, -1, 1))
    (out * g).sum().backward()
    grad_x = xt.grad.numpy() if channels_first else np.moveaxis(xt.grad.numpy(), 1, -1)
    np.testing.assert_allclose(dx, grad_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dk, kt.grad.numpy(), rtol=1e-10, atol=1e-10)


def _same_pairs(n, k, s, d):
    span = d * (k - 1) + 1
    out = -(-n // s)
    total = max(0, (out - 1) * s + span - n)
    return total // 2, total - total // 2


def test_float32_stays_float32():
    x = np.ones((1, 4, 4, 2), np.float32)
    assert ops.conv_transpose(x, np.ones((3, 3, 5, 2), np.float32), strides=2).dtype == np.float32
    assert ops.depthwise_conv(x, np.ones((3, 3, 2, 2), np.float32)).dtype == np.float32
    assert (
        ops.separable_conv(x, np.ones((3, 3, 2, 1), np.float32), np.ones((1, 1, 2, 3), np.float32)).dtype == np.float32
    )


def test_errors_name_the_argument():
    x = np.ones((1, 5, 2))
    with pytest.raises(ValueError, match="`output_padding` must be smaller than `strides`"):
        ops.conv_transpose(x, np.ones((3, 4, 2)), strides=2, output_padding=2)
    with pytest.raises(ValueError, match="its last axis must equal the input's 2 channels"):
        ops.conv_transpose(x, np.ones((3, 2, 4)))
    with pytest.raises(ValueError, match="`padding` of conv_transpose must be 'valid' or 'same'"):
        ops.conv_transpose(x, np.ones((3, 4, 2)), padding="causal")
    with pytest.raises(ValueError, match="`kernel` of depthwise_conv must have 3 axes"):
        ops.depthwise_conv(x, np.ones((3, 3, 2, 1)))
    with pytest.raises(ValueError, match="second-to-last axis must equal the input's 2 channels"):
        ops.depthwise_conv(x, np.ones((3, 3, 1)))
    with pytest.raises(ValueError, match="`depth_multiplier` must be a positive integer"):
        layers.DepthwiseConv2D(3, depth_multiplier=0)
    with pytest.raises(ValueError, match="`output_padding` must be smaller than `strides`"):
        layers.Conv2DTranspose(4, 3, strides=2, output_padding=(1, 2))
    with pytest.raises(ValueError, match="expects inputs with 4 axes"):
        layers.SeparableConv2D(4, 3)(np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match="`padding` must be one of"):
        layers.DepthwiseConv1D(3, padding="causal")
    built = layers.Conv1DTranspose(2, 3)
    built(np.ones((1, 4, 3)))
    with pytest.raises(ValueError, match="was built for inputs with 3 channels"):
        built(np.ones((1, 4, 5)))


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_rank_4_transposed_and_depthwise_match_the_references(padding):
    # Keras stops at 3-D; the one general convolution does not
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 2, 3, 2, 3))
    w = rng.standard_normal((2, 2, 1, 2, 2, 3))
    want = reference_conv_transpose(x, w, (2, 1, 2, 1), padding, None, 1)
    np.testing.assert_allclose(ops.conv_transpose(x, w, (2, 1, 2, 1), padding), want, rtol=1e-10, atol=1e-10)
    depthwise = rng.standard_normal((2, 1, 2, 2, 3, 2))
    grouped = depthwise.reshape(2, 1, 2, 2, 1, 6)
    want = reference_conv(x, grouped, 1, padding, 1)
    np.testing.assert_allclose(ops.depthwise_conv(x, depthwise, 1, padding), want, rtol=1e-10, atol=1e-10)
