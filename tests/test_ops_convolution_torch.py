"""Oracle: PyTorch's convolution and autograd in float32, ranks 1-3."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rankconv.ops import conv, conv_vjp

from oracles import torch as _torch
from reference import reference_padding
from test_ops_convolution import _fits, conv_configs, run_with

torch = _torch()
functional = torch.nn.functional


def torch_conv(x_cl, w, strides, padding, dilation):
    """PyTorch convolution of channels-last x with a Keras-layout kernel; returns (y, x_t, w_t)."""
    rank = x_cl.ndim - 2
    x_t = torch.tensor(np.moveaxis(x_cl, -1, 1).copy(), requires_grad=True)
    # Keras (*k, Cin/g, Cout) → PyTorch (Cout, Cin/g, *k)
    w_t = torch.tensor(np.transpose(w, (rank + 1, rank, *range(rank))).copy(), requires_grad=True)
    pairs = [
        padding[i]
        if isinstance(padding, tuple)
        else reference_padding(x_cl.shape[1 + i], w.shape[i], strides[i], dilation[i], padding)
        for i in range(rank)
    ]
    flat = [amount for pair in reversed(pairs) for amount in pair]  # F.pad wants the last axis first
    groups = x_cl.shape[-1] // w.shape[-2]
    conv_fn = {1: functional.conv1d, 2: functional.conv2d, 3: functional.conv3d}[rank]
    y = conv_fn(functional.pad(x_t, flat), w_t, stride=strides, dilation=dilation, groups=groups)
    return y, x_t, w_t


@pytest.mark.parametrize("algorithm", ["planner", "implicit_gemm", "im2col", "fft", "direct", "pointwise"])
@settings(max_examples=40)
@given(config=conv_configs(ranks=(1, 2, 3)), seed=st.integers(0, 2**16))
def test_forward_and_gradients_match_pytorch(algorithm, config, seed):
    """Every algorithm in float32 (forced; an algorithm that cannot compute a config refuses it)."""
    run_with(algorithm, _forward_and_gradients_match_pytorch, config, seed)


@pytest.mark.parametrize("algorithm", ["planner", "direct", "pointwise"])
@settings(max_examples=20)
@given(
    config=st.one_of(conv_configs(ranks=(1, 2, 3), kind="pointwise"), conv_configs(ranks=(1, 2, 3), kind="depthwise")),
    seed=st.integers(0, 2**16),
)
def test_pointwise_and_depthwise_match_pytorch(algorithm, config, seed):
    run_with(algorithm, _forward_and_gradients_match_pytorch, config, seed)


def _forward_and_gradients_match_pytorch(config, seed):
    config = dict(config, data_format="channels_last")
    assume(_fits(config))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["x_shape"]).astype(np.float32)
    w = rng.standard_normal(config["kernel_shape"]).astype(np.float32)
    args = (config["strides"], config["padding"], None, config["dilation"])
    y = conv(x, w, *args)
    y_t, x_t, w_t = torch_conv(x, w, config["strides"], config["padding"], config["dilation"])
    expected = np.moveaxis(y_t.detach().numpy(), 1, -1)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(y, expected, atol=1e-5 * scale)

    g = rng.standard_normal(y.shape).astype(np.float32)
    y_t.backward(torch.tensor(np.moveaxis(g, -1, 1).copy()))
    dx, dw = conv_vjp(g, x, w, *args)
    rank = config["rank"]
    expected_dx = np.moveaxis(x_t.grad.numpy(), 1, -1)
    expected_dw = np.transpose(w_t.grad.numpy(), (*range(2, rank + 2), 1, 0))
    assert dx.dtype == np.float32 and dw.dtype == np.float32
    np.testing.assert_allclose(dx, expected_dx, atol=1e-5 * max(1.0, float(np.abs(expected_dx).max())))
    np.testing.assert_allclose(dw, expected_dw, atol=1e-5 * max(1.0, float(np.abs(expected_dw).max())))


def test_channels_first_gradients_match_pytorch():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 9, 8)).astype(np.float32)  # (batch, channels, rows, cols)
    w = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)  # groups = 2
    y = conv(x, w, strides=(2, 1), padding="same", data_format="channels_first")
    y_t, x_t, w_t = torch_conv(np.moveaxis(x, 1, -1), w, (2, 1), "same", (1, 1))
    np.testing.assert_allclose(y, y_t.detach().numpy(), atol=1e-4)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y_t.backward(torch.tensor(g))
    dx, dw = conv_vjp(g, x, w, strides=(2, 1), padding="same", data_format="channels_first")
    np.testing.assert_allclose(dx, x_t.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(dw, np.transpose(w_t.grad.numpy(), (2, 3, 1, 0)), atol=1e-4)


def test_pytorch_onednn_conv3d_bug_is_known():
    # The case behind `oracles.without_onednn`: rankconv and PyTorch's own kernels agree with the
    # float64 loop reference; PyTorch 2.13's oneDNN path (what Keras's torch backend runs) does not.
    from oracles import without_onednn
    from reference import reference_conv

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, 3, 3, 1)).astype(np.float32)
    w = rng.standard_normal((1, 1, 2, 1, 1)).astype(np.float32)
    expected = reference_conv(x.astype(np.float64), w.astype(np.float64), strides=(1, 1, 2))
    np.testing.assert_allclose(conv(x, w, strides=(1, 1, 2)), expected, rtol=1e-5, atol=1e-6)
    x_view = torch.from_numpy(x).permute(0, 4, 1, 2, 3)  # channels-first view of channels-last memory
    w_t = torch.from_numpy(np.ascontiguousarray(np.transpose(w, (4, 3, 0, 1, 2))))
    with without_onednn():
        exact = functional.conv3d(x_view, w_t, stride=(1, 1, 2)).permute(0, 2, 3, 4, 1).numpy()
    np.testing.assert_allclose(exact, expected, rtol=1e-5, atol=1e-6)
    onednn = functional.conv3d(x_view, w_t, stride=(1, 1, 2)).permute(0, 2, 3, 4, 1).numpy()
    if np.allclose(onednn, expected, rtol=1e-5, atol=1e-6):
        pytest.xfail("PyTorch's oneDNN path is right here now: `oracles.without_onednn` may go")
