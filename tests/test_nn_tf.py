"""`rankconv.nn.convolution` and `rankconv.nn.conv_transpose`: TensorFlow's `tf.nn.convolution` and
`tf.nn.conv_transpose` on rankconv, checked against PyTorch (forward and autograd, float64) and the
float64 loop reference, with every refusal tested.

TensorFlow is not a dependency. The behaviours below were checked by running TensorFlow 2.21.0
(tensorflow-cpu from PyPI, in a throw-away virtualenv; both with oneDNN on and with
TF_ENABLE_ONEDNN_OPTS=0 for the plain kernels' error messages), and 272 random configurations of
both calls (ranks 1-3, both layouts, strides, dilations, SAME/VALID/explicit, groups, extra batch
axes, every accepted output size, explicit pads beyond the kernel's reach) gave the same outputs
and input/filter gradients as rankconv (float32, within 1e-4):

- "SAME" gives ceil(n / stride) cells, an odd total pad puts the extra zero after; with dilations
  too. Padding names are case-sensitive ("same" is refused). Explicit padding is a list of N + 2
  (before, after) pairs in the data format's order; a list of N pairs, a flat list and negative
  amounts are refused. (TF 2.21's `tf.nn.convolution` takes explicit pairs only on its dilated
  path and only in 2-D, otherwise a TypeError; `tf.nn.conv2d` and `conv2d_transpose` take them.
  rankconv takes them in every case; zero is required on the batch and channel axes, which
  `tf.nn.conv2d` requires and TF's dilated path ignores.)
- strides and dilations: None, an int, or a sequence of length 1, N or N + 2 ("strides should be
  of length 1, 2 or 4" otherwise); zero and negative values are refused; strides > 1 together
  with dilations > 1 (on any axes) are refused by `tf.nn.convolution`, not by `conv_transpose`.
  TF refuses strides other than 1 on the batch/channel axes in 2-D, and ignores them in 1-D and
  on the dilated path; it truncates 2.5 and takes True as 1. rankconv refuses all of these.
- data formats: "NWC"/"NCW" (conv1d also takes the deprecated "NHWC"/"NCHW"; conv1d_transpose
  does not), "NHWC"/"NCHW", "NDHWC"/"NCDHW"; lower-case, "channels_last" and other letters are
  refused; no rank above 3 (`num_spatial_dims` must be 1, 2, or 3), where rankconv's "N…C"/"NC…"
  strings take over.
- The number of spatial axes is `filters.ndim - 2`; extra leading input axes are batch axes (2-D
  and 3-D filters in TF; in 1-D TF's non-dilated path aborts the process). With extra batch axes
  and a channels-first format, TF 2.21's `tf.nn.convolution` applies the strides to the wrong axes
  on its non-dilated path; rankconv matches `tf.nn.conv2d`, which gets them right.
- groups = in_channels // filters.shape[-2]; non-divisible channels are refused (TF's CPU kernels
  compute grouped 1-D and 2-D convolutions and refuse grouped 3-D ones; rankconv computes all).
- float32 and float64 keep their dtype; two different float dtypes are refused; Python lists
  become float32. (TF also refuses a list with a float64 array, and computes integer inputs as
  integers; rankconv gives a list the array's dtype and computes integers in float32.)
- conv_transpose: N = len(output_shape) - 2; every output size whose forward convolution gives the
  input's size is accepted (SAME with stride 2 on 4 cells: 7 or 8; VALID, kernel 3: 9 or 10),
  others refused; the batch, the channels (filters.shape[-1] == input channels, output channels a
  multiple of filters.shape[-2], grouped) are checked; no extra batch axes.
- A "VALID" window larger than the input: TF 2.21's eager CPU kernel returned a malformed result;
  rankconv refuses it.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import rankconv
from rankconv import nn

from oracles import torch as _torch
from reference import reference_conv, reference_padding

torch = _torch()
functional = torch.nn.functional

FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def t(array, grad=False):
    return torch.tensor(np.ascontiguousarray(array), requires_grad=grad)


def close(got, expected, tol=1e-9):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale)


def to_first(x):
    return np.moveaxis(x, -1, 1)


def from_first(x):
    return np.moveaxis(x, 1, -1)


def torch_weight(w):
    """TF's spatial + (in // groups, out) as torch's (out, in // groups, *spatial)."""
    n = w.ndim - 2
    return np.transpose(w, (n + 1, n, *range(n)))


# ----------------------------------------------------------------------------- oracles


def torch_convolution(x_first, w, strides, pairs, dilations, groups, grad=False):
    """PyTorch on a channels-first input, with the spatial (lo, hi) pairs applied by F.pad."""
    n = w.ndim - 2
    x_t, w_t = t(x_first, grad), t(torch_weight(w), grad)
    flat = [amount for pair in reversed(pairs) for amount in pair]  # F.pad wants the last axis first
    conv = {1: functional.conv1d, 2: functional.conv2d, 3: functional.conv3d}[n]
    return conv(functional.pad(x_t, flat), w_t, stride=strides, dilation=dilations, groups=groups), x_t, w_t


def torch_conv_transpose(x_first, w, out_spatial, strides, los, dilations, groups, grad=False):
    """TF's transposed convolution from PyTorch's full one (no padding): output cell i is full
    cell i + lo, where lo is the forward convolution's leading pad; cells past the end are zero."""
    n = w.ndim - 2
    x_t, w_t = t(x_first, grad), t(np.transpose(w, (n + 1, n, *range(n))), grad)
    conv = {1: functional.conv_transpose1d, 2: functional.conv_transpose2d, 3: functional.conv_transpose3d}[n]
    full = conv(x_t, w_t, stride=strides, dilation=dilations, groups=groups)
    extra = [max(0, lo + m - size) for lo, m, size in zip(los, out_spatial, full.shape[2:])]
    full = functional.pad(full, [amount for e in reversed(extra) for amount in (0, e)])
    window = tuple(slice(lo, lo + m) for lo, m in zip(los, out_spatial))
    return full[(slice(None), slice(None), *window)], x_t, w_t


def spatial_argument(draw, values, first, n):
    """One of TF's spellings of per-axis strides/dilations: int, [v], N-tuple, or the full N + 2."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return draw(st.sampled_from([values[0], [values[0]]]))
    if draw(st.booleans()):
        return tuple(values)
    return [1, 1, *values] if first else [1, *values, 1]


def explicit_padding(pairs, first):
    outer = [[0, 0]]
    spatial = [list(pair) for pair in pairs]
    return outer + outer + spatial if first else outer + spatial + outer


# ----------------------------------------------------------------------------- convolution vs torch


@st.composite
def conv_configs(draw):
    n = draw(st.sampled_from([1, 2, 3]))
    small = n == 3
    first = draw(st.booleans())
    groups = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(n))
    strides = dilations = (1,) * n
    mode = draw(st.sampled_from(["plain", "strided", "dilated"]))
    if mode == "strided":
        strides = tuple(draw(st.integers(1, 3)) for _ in range(n))
    elif mode == "dilated":
        dilations = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(n))
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    kind = draw(st.sampled_from(["SAME", "VALID", "explicit"]))
    pairs = [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(n)] if kind == "explicit" else None
    minimum = [span if kind == "VALID" else 1 for span in spans]
    if kind == "explicit":
        minimum = [max(1, span - lo - hi) for span, (lo, hi) in zip(spans, pairs)]
    spatial = tuple(draw(st.integers(m, m + (2 if small else 5))) for m in minimum)
    return dict(
        n=n,
        first=first,
        groups=groups,
        x_shape=(draw(st.integers(1, 2)), *spatial, groups * draw(st.integers(1, 2))),
        w_shape=(*kernel, 0, groups * draw(st.integers(1, 2))),
        strides=strides,
        dilations=dilations,
        kind=kind,
        pairs=pairs,
        strides_arg=spatial_argument(draw, strides, first, n),
        dilations_arg=spatial_argument(draw, dilations, first, n) if draw(st.booleans()) or mode != "plain" else None,
    )


def conv_arrays(config, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(config["x_shape"]).astype(dtype)
    w_shape = list(config["w_shape"])
    w_shape[-2] = config["x_shape"][-1] // config["groups"]
    w = rng.standard_normal(w_shape).astype(dtype)
    return (np.ascontiguousarray(to_first(x)) if config["first"] else x), w


def conv_call(config):
    padding = config["kind"] if config["pairs"] is None else explicit_padding(config["pairs"], config["first"])
    return dict(
        strides=config["strides_arg"],
        padding=padding,
        data_format=FORMATS[config["n"]][config["first"]],
        dilations=config["dilations_arg"],
    )


def oracle_pairs(config):
    if config["pairs"] is not None:
        return config["pairs"]
    spatial, kernel = config["x_shape"][1:-1], config["w_shape"][:-2]
    return [
        reference_padding(size, k, s, d, config["kind"].lower())
        for size, k, s, d in zip(spatial, kernel, config["strides"], config["dilations"])
    ]


@given(config=conv_configs(), seed=st.integers(0, 2**16))
def test_convolution_matches_torch(config, seed):
    x, w = conv_arrays(config, seed)
    y = nn.convolution(x, w, **conv_call(config))
    x_first = x if config["first"] else to_first(x)
    expected, _, _ = torch_convolution(
        x_first, w, config["strides"], oracle_pairs(config), config["dilations"], config["groups"]
    )
    expected = expected.detach().numpy()
    close(y, expected if config["first"] else from_first(expected))
    assert y.dtype == np.float64


def test_same_puts_the_odd_pad_after_and_gives_ceil():
    # kernel (1, 10): y[i] = x[i - lo] + 10 x[i - lo + 1]; n = 5, k = 2, stride 2 -> 3 cells, total 1, lo 0
    x = np.arange(1.0, 6.0).reshape(1, 5, 1)
    w = np.array([1.0, 10.0]).reshape(2, 1, 1)
    np.testing.assert_array_equal(nn.convolution(x, w, 2, "SAME")[0, :, 0], [21.0, 43.0, 5.0])
    # n = 6, k = 4, stride 1: total 3 -> (1, 2)
    x = np.arange(1.0, 7.0).reshape(1, 6, 1)
    w = np.array([1.0, 0.0, 0.0, 0.0]).reshape(4, 1, 1)
    np.testing.assert_array_equal(nn.convolution(x, w, padding="SAME")[0, :, 0], [0.0, 1, 2, 3, 4, 5])


# ----------------------------------------------------------------------------- conv_transpose vs torch


@st.composite
def transpose_configs(draw):
    n = draw(st.sampled_from([1, 2, 3]))
    small = n == 3
    first = draw(st.booleans())
    groups = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(n))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilations = tuple(draw(st.integers(1, 1 if small else 2)) for _ in range(n))
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    kind = draw(st.sampled_from(["SAME", "VALID", "explicit"]))
    pairs = [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(n)] if kind == "explicit" else None
    n_in = tuple(draw(st.integers(1, 2 if small else 4)) for _ in range(n))
    n_out, los = [], []
    for axis in range(n):
        s, span, size = strides[axis], spans[axis], n_in[axis]
        # every output size whose forward convolution gives `size` cells
        low = {"SAME": (size - 1) * s + 1, "VALID": (size - 1) * s + span}.get(kind)
        if kind == "explicit":
            low = (size - 1) * s + span - sum(pairs[axis])
        out = draw(st.integers(low, low + s - 1))
        assume(out >= 1)
        n_out.append(out)
        if kind == "explicit":
            los.append(pairs[axis][0])
        elif kind == "VALID":
            los.append(0)
        else:
            los.append(reference_padding(out, kernel[axis], s, dilations[axis], "same")[0])
    return dict(
        n=n,
        first=first,
        groups=groups,
        batch=draw(st.integers(1, 2)),
        in_channels=groups * draw(st.integers(1, 2)),
        out_channels=groups * draw(st.integers(1, 2)),
        kernel=kernel,
        strides=strides,
        dilations=dilations,
        kind=kind,
        pairs=pairs,
        n_in=n_in,
        n_out=tuple(n_out),
        los=tuple(los),
        strides_arg=spatial_argument(draw, strides, first, n),
        dilations_arg=spatial_argument(draw, dilations, first, n),
    )


def transpose_arrays(config, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((config["batch"], *config["n_in"], config["in_channels"])).astype(dtype)
    w = rng.standard_normal((*config["kernel"], config["out_channels"] // config["groups"], config["in_channels"]))
    return (np.ascontiguousarray(to_first(x)) if config["first"] else x), w.astype(dtype)


def transpose_call(config):
    padding = config["kind"] if config["pairs"] is None else explicit_padding(config["pairs"], config["first"])
    if config["first"]:
        shape = [config["batch"], config["out_channels"], *config["n_out"]]
    else:
        shape = [config["batch"], *config["n_out"], config["out_channels"]]
    return dict(
        output_shape=shape,
        strides=config["strides_arg"],
        padding=padding,
        data_format=FORMATS[config["n"]][config["first"]],
        dilations=config["dilations_arg"],
    )


def torch_transpose_for(config, x, w, grad=False):
    x_first = x if config["first"] else to_first(x)
    options = (config["n_out"], config["strides"], config["los"], config["dilations"], config["groups"])
    y, x_t, w_t = torch_conv_transpose(x_first, w, *options, grad=grad)
    return (y if config["first"] else y.movedim(1, -1)), x_t, w_t


@given(config=transpose_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose_matches_torch(config, seed):
    x, w = transpose_arrays(config, seed)
    call = transpose_call(config)
    y = nn.conv_transpose(x, w, **call)
    expected, _, _ = torch_transpose_for(config, x, w)
    close(y, expected.detach().numpy())
    assert y.shape == tuple(call["output_shape"])


@given(config=transpose_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose_is_the_adjoint_of_the_forward_convolution(config, seed):
    """<conv(z), x> == <z, conv_transpose(x)> for z of `output_shape`, the forward convolution taken
    from the float64 loop reference (strides and dilations together are fine here)."""
    x, w = transpose_arrays(config, seed)
    call = transpose_call(config)
    z = np.random.default_rng(seed + 1).standard_normal(call["output_shape"])
    data_format = "channels_first" if config["first"] else "channels_last"
    pairs = [
        pair if config["kind"] != "SAME" else reference_padding(m, k, s, d, "same")
        for pair, m, k, s, d in zip(
            config["pairs"] or [(0, 0)] * config["n"], config["n_out"], config["kernel"], config["strides"],
            config["dilations"],
        )
    ]  # fmt: skip
    # the forward filters are w itself: spatial + (out_channels // groups, in_channels)
    forward = reference_conv(z, w, config["strides"], pairs, config["dilations"], data_format)
    assert forward.shape == x.shape
    np.testing.assert_allclose(np.sum(forward * x), np.sum(z * nn.conv_transpose(x, w, **call)), rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- gradients vs torch autograd


GRADIENT_CONFIGS = [
    # n, first, x shape (channels-last), filters, strides, dilations, padding
    (1, True, (2, 9, 4), (3, 2, 6), 2, 1, "SAME"),
    (2, False, (2, 7, 6, 3), (3, 2, 3, 4), (2, 1), 1, "VALID"),
    (2, True, (1, 8, 7, 2), (2, 3, 2, 2), 1, 2, [[0, 0], [0, 0], [1, 2], [0, 1]]),
    (3, False, (1, 5, 4, 6, 2), (2, 2, 3, 1, 4), 1, (1, 2, 1), "SAME"),
]


@pytest.mark.parametrize("n, first, x_shape, w_shape, strides, dilations, padding", GRADIENT_CONFIGS)
def test_convolution_gradients_match_torch_autograd(n, first, x_shape, w_shape, strides, dilations, padding):
    rng = np.random.default_rng(n)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    x = np.ascontiguousarray(to_first(x)) if first else x
    options = dict(strides=strides, padding=padding, data_format=FORMATS[n][first], dilations=dilations)
    cotangent = rng.standard_normal(nn.convolution(x, w, **options).shape)

    def loss(x, w):
        return rankconv.ops.sum(nn.convolution(x, w, **options) * cotangent)

    value, (d_x, d_w) = rankconv.value_and_grad(loss, argnums=(0, 1))(x, w)
    s = (strides,) * n if isinstance(strides, int) else strides
    d = (dilations,) * n if isinstance(dilations, int) else dilations
    if isinstance(padding, str):
        pairs = [reference_padding(m, k, a, b, padding.lower()) for m, k, a, b in zip(x_shape[1:-1], w_shape, s, d)]
    else:
        pairs = [tuple(p) for p in padding[2:]] if first else [tuple(p) for p in padding[1:-1]]
    y, x_t, w_t = torch_convolution(x if first else to_first(x), w, s, pairs, d, x_shape[-1] // w_shape[-2], True)
    c = t(cotangent if first else to_first(cotangent))
    (y * c).sum().backward()
    close(value, (y * c).sum().item())
    close(d_x, x_t.grad.numpy() if first else from_first(x_t.grad.numpy()))
    close(d_w, np.transpose(w_t.grad.numpy(), (*range(2, n + 2), 1, 0)))


@given(config=transpose_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose_gradients_match_torch_autograd(config, seed):
    x, w = transpose_arrays(config, seed)
    call = transpose_call(config)
    cotangent = np.random.default_rng(seed + 2).standard_normal(call["output_shape"])

    def loss(x, w):
        return rankconv.ops.sum(nn.conv_transpose(x, w, **call) * cotangent)

    value, (d_x, d_w) = rankconv.value_and_grad(loss, argnums=(0, 1))(x, w)
    y, x_t, w_t = torch_transpose_for(config, x, w, grad=True)
    (y * t(cotangent)).sum().backward()
    n = config["n"]
    close(d_x, x_t.grad.numpy() if config["first"] else from_first(x_t.grad.numpy()))
    close(d_w, np.transpose(w_t.grad.numpy(), (*range(2, n + 2), 1, 0)))


def test_conv_transpose_with_explicit_pads_beyond_the_kernel_reach():
    """Pads larger than the kernel's reach: output cells that no input reaches are zero (checked
    against TF 2.21's conv2d_transpose too), and the gradients still match torch."""
    config = dict(
        n=2, first=False, groups=1, batch=2, in_channels=2, out_channels=3, kernel=(2, 1), strides=(2, 3),
        dilations=(1, 1), kind="explicit", pairs=[(3, 1), (2, 1)], n_in=(3, 2), n_out=(3, 1), los=(3, 2),
        strides_arg=(2, 3), dilations_arg=1,
    )  # fmt: skip
    x, w = transpose_arrays(config, 11)
    call = transpose_call(config)
    cotangent = np.random.default_rng(12).standard_normal(call["output_shape"])
    value, (d_x, d_w) = rankconv.value_and_grad(
        lambda x, w: rankconv.ops.sum(nn.conv_transpose(x, w, **call) * cotangent), argnums=(0, 1)
    )(x, w)
    y, x_t, w_t = torch_transpose_for(config, x, w, grad=True)
    close(nn.conv_transpose(x, w, **call), y.detach().numpy())
    (y * t(cotangent)).sum().backward()
    close(d_x, from_first(x_t.grad.numpy()))
    close(d_w, np.transpose(w_t.grad.numpy(), (2, 3, 1, 0)))


# ----------------------------------------------------------------------------- ranks above 3, batch axes, dtypes


@pytest.mark.parametrize(
    "data_format, strides, dilations, padding",
    [
        ("NTDHWC", 1, 1, "SAME"),
        ("NCTDHW", (2, 1, 2, 1), 1, "VALID"),
        ("NABDEC", 1, [1, 1, 2, 1, 1, 1], [[0, 0], [1, 0], [0, 2], [1, 1], [0, 1], [0, 0]]),
        ("NCXYZW", [1, 1, 1, 2, 2, 1], 1, "SAME"),
    ],
)
def test_rank_4_matches_the_loop_reference(data_format, strides, dilations, padding):
    rng = np.random.default_rng(4)
    first = data_format[1] == "C"
    x_last = rng.standard_normal((2, 4, 3, 5, 3, 4))
    w = rng.standard_normal((2, 1, 2, 2, 2, 4))  # 2 groups
    x = np.ascontiguousarray(to_first(x_last)) if first else x_last
    y = nn.convolution(x, w, strides, padding, data_format, dilations)
    s = strides if isinstance(strides, (int, tuple)) else tuple(strides[2:] if first else strides[1:-1])
    d = dilations if isinstance(dilations, int) else tuple(dilations[1:-1])
    if isinstance(padding, str):
        pairs = padding.lower()
    else:
        pairs = [tuple(p) for p in (padding[2:] if first else padding[1:-1])]
    expected = reference_conv(x, w, s, pairs, d, "channels_first" if first else "channels_last")
    close(y, expected)


def test_rank_4_conv_transpose_is_the_adjoint_of_the_loop_reference():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 3, 2, 2, 4))
    w = rng.standard_normal((2, 1, 3, 2, 3, 4))  # spatial + (out_channels, in_channels)
    output_shape = (1, 4, 3, 4, 3, 3)
    y = nn.conv_transpose(x, w, output_shape, (2, 1, 2, 2), "SAME", "NTDHWC")
    z = rng.standard_normal(output_shape)
    pairs = [reference_padding(m, k, s, 1, "same") for m, k, s in zip(output_shape[1:-1], w.shape, (2, 1, 2, 2))]
    forward = reference_conv(z, w, (2, 1, 2, 2), pairs)
    np.testing.assert_allclose(np.sum(forward * x), np.sum(z * y), rtol=1e-10)


@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_extra_leading_axes_are_batch_axes(data_format):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 5, 6, 2) if data_format == "NHWC" else (2, 3, 2, 5, 6))
    w = rng.standard_normal((3, 2, 2, 4))
    y = nn.convolution(x, w, [1, 2], "SAME", data_format)
    expected = np.stack([nn.convolution(batch, w, [1, 2], "SAME", data_format) for batch in x])
    close(y, expected)
    d_x = rankconv.grad(lambda x: rankconv.ops.sum(nn.convolution(x, w, [1, 2], "SAME", data_format) ** 2))(x)
    assert d_x.shape == x.shape


def test_dtypes_arrays_and_lists():
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((1, 5, 2)), rng.standard_normal((2, 2, 3))
    assert nn.convolution(x, w).dtype == np.float64
    assert nn.convolution(x.astype(np.float32), w.astype(np.float32)).dtype == np.float32
    from_lists = nn.convolution(x.tolist(), w.tolist(), 1, "SAME")
    assert from_lists.dtype == np.float32
    np.testing.assert_allclose(from_lists, nn.convolution(x, w, 1, "SAME"), rtol=1e-5)
    assert nn.convolution(x, w.tolist()).dtype == np.float64  # a list takes the array's dtype
    assert nn.convolution(x.astype(np.int32), w.astype(np.int32)).dtype == np.float32
    y = nn.conv_transpose(x.astype(np.float32), w.astype(np.float32)[:, :, :2], [1, 10, 2], 2, "SAME")
    assert y.dtype == np.float32 and y.shape == (1, 10, 2)
    assert nn.conv_transpose(x.tolist(), w[:, :, :2].tolist(), np.array([1, 9, 2]), 2).dtype == np.float32
    with pytest.raises(ValueError, match=r"same dtype.*received input of dtype float64 and filters of dtype float32"):
        nn.convolution(x, w.astype(np.float32))


def test_empty_batches_and_axes_give_empty_outputs():
    w = np.ones((3, 2, 4))
    assert nn.convolution(np.zeros((0, 7, 2)), w, 2, "SAME").shape == (0, 4, 4)
    assert nn.convolution(np.zeros((1, 0, 2)), w, 1, "SAME").shape == (1, 0, 4)
    assert nn.conv_transpose(np.zeros((0, 4, 4)), w, [0, 8, 2], 2).shape == (0, 8, 2)
    d_x = rankconv.grad(lambda x: rankconv.ops.sum(nn.convolution(x, w, 2, "SAME")))(np.zeros((0, 7, 2)))
    assert d_x.shape == (0, 7, 2)


def test_padding_and_sequences_as_arrays():
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((1, 6, 5, 2)), rng.standard_normal((2, 2, 2, 3))
    pads = np.array([[0, 0], [1, 0], [0, 2], [0, 0]])
    close(nn.convolution(x, w, np.array([2, 1]), pads), nn.convolution(x, w, (2, 1), pads.tolist()))
    close(nn.convolution(x, w, np.int64(2), "SAME"), nn.convolution(x, w, [1, 2, 2, 1], "SAME"))


# ----------------------------------------------------------------------------- refusals


X2 = np.zeros((1, 6, 5, 3))
W2 = np.zeros((3, 2, 3, 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(strides=[1, 2, 2]), r"`strides` .* length 1, 2 or 4 .*received strides=\[1, 2, 2\] of length 3"),
        (dict(strides=[2, 1, 1, 1]), r"`strides` .* must be 1 on the batch and channel axes .*strides=\[2, 1, 1, 1\]"),
        (dict(strides=[1, 1, 1, 2]), r"`strides` .* must be 1 on the batch and channel axes"),
        (dict(strides=0), r"`strides` .* positive integers; received strides=0"),
        (dict(strides=(1, -1)), r"`strides` .* positive integers; received strides=\(1, -1\)"),
        (dict(strides=2.5), r"`strides` must hold integers; received strides=2.5"),
        (dict(strides=True), r"`strides` must hold integers; received strides=True"),
        (dict(strides="2"), r"`strides` .* an int or a sequence of ints; received strides='2'"),
        (dict(dilations=[2, 2, 2]), r"`dilations` .* length 1, 2 or 4 .*of length 3"),
        (dict(dilations=[1, 2, 2, 2]), r"`dilations` .* must be 1 on the batch and channel axes"),
        (dict(dilations=0), r"`dilations` .* positive integers"),
        (dict(strides=2, dilations=2), r"does not combine `strides` > 1 with `dilations` > 1.*strides=\(2, 2\) and "),
        (dict(strides=(1, 2), dilations=(2, 1)), r"strides=\(1, 2\) and dilations=\(2, 1\)"),
        (dict(padding="same"), r"`padding` .* 'SAME', 'VALID' .*upper-case.*received padding='same'"),
        (dict(padding="FULL"), r"`padding` .* 'SAME', 'VALID' or a list of 4 .*received padding='FULL'"),
        (dict(padding=None), r"`padding` .*received padding=None"),
        (dict(padding=[[1, 2], [0, 1]]), r"list of 4 \(before, after\) pairs .*received padding=\[\[1, 2\], \[0, 1\]\]"),
        (dict(padding=[0, 0, 1, 2, 0, 1, 0, 0]), r"list of 4 \(before, after\) pairs"),
        (dict(padding=[[0, 0], [1, 2, 3], [0, 1], [0, 0]]), r"with element \[1, 2, 3\]"),
        (dict(padding=[[0, 0], [-1, 2], [0, 1], [0, 0]]), r"non-negative .*with a negative amount"),
        (dict(padding=[[1, 0], [1, 2], [0, 1], [0, 0]]), r"`padding` .* must be \(0, 0\) on the batch and channel"),
        (dict(padding=[[0, 0], [1, 2], [0, 1], [0, 1]]), r"must be \(0, 0\) on the batch and channel axes"),
        (dict(data_format="NWC"), r"`data_format` .* 2 spatial axis\(es\) must be 'NHWC' or 'NCHW'.*received data_format='NWC'"),
        (dict(data_format="nhwc"), r"must be 'NHWC' or 'NCHW' \(or None for channels-last\); received data_format='nhwc'"),
        (dict(data_format="channels_last"), r"must be 'NHWC' or 'NCHW'"),
        (dict(data_format="NXYC"), r"must be 'NHWC' or 'NCHW'.*'NXYC'"),
        (dict(padding="VALID", dilations=(3, 1)), r"do not fit spatial axis 0 .*span 7 cells \(kernel size 3, dilation 3\)"),
    ],
)  # fmt: skip
def test_convolution_refusals(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.convolution(X2, W2, **kwargs)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, message",
    [
        ((1, 6, 3), (3, 4), {}, r"`filters` .* at least one spatial axis; received filters of shape \(3, 4\)"),
        ((1, 6, 3), (3, 2, 3, 4), {}, r"`input` .* at least 4 axes .*received input of shape \(1, 6, 3\)"),
        ((1, 6, 5, 3), (3, 2, 2, 4), {}, r"positive multiple of filters.shape\[-2\].*3 channels"),
        ((1, 6, 5, 4), (3, 2, 2, 5), {}, r"filters.shape\[-1\] .* divisible by the 2 groups"),
        ((1, 6, 5, 3), (0, 2, 3, 4), {}, r"`filters` .* must not have an axis of size 0"),
        ((1, 2, 3), (3, 3, 4), dict(padding="VALID"), r"do not fit spatial axis 0 .*span 3 cells .*input has 2 cells"),
        ((1, 4, 3), (3, 3, 4), dict(padding=[[0, 0], [0, 0], [0, 0]], dilations=2), r"do not fit spatial axis 0"),
        ((1, 6, 3), (3, 3, 4), dict(data_format="NDHWC"), r"must be 'NWC' or 'NCW' or 'NHWC' or 'NCHW'"),
        ((1, 5, 5, 5, 5, 3), (1, 1, 1, 1, 3, 4), dict(data_format="NHWC"), r"'N' \+ 4 distinct upper-case .*'NTDHWC'"),
        ((1, 5, 5, 5, 5, 3), (1, 1, 1, 1, 3, 4), dict(data_format="NHHWWC"), r"received data_format='NHHWWC'"),
        ((1, 5, 5, 5, 5, 3), (1, 1, 1, 1, 3, 4), dict(data_format="NTDHWX"), r"received data_format='NTDHWX'"),
        ((1, 5, 5, 5, 5, 3), (1, 1, 1, 1, 3, 4), dict(data_format="NTNHWC"), r"received data_format='NTNHWC'"),
        ((1, 5, 5, 5, 5, 3), (1, 1, 1, 1, 3, 4), dict(data_format="channels_last"), r"'channels_last'"),
    ],
)  # fmt: skip
def test_convolution_shape_refusals(x_shape, w_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.convolution(np.zeros(x_shape), np.zeros(w_shape), **kwargs)


def test_convolution_accepts_tf_1d_aliases_and_rank_n_spellings():
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 3, 7)), rng.standard_normal((3, 3, 2))
    close(nn.convolution(x, w, 2, "SAME", "NCHW"), nn.convolution(x, w, 2, "SAME", "NCW"))
    x4 = rng.standard_normal((1, 3, 3, 3, 3, 2))
    w4 = rng.standard_normal((2, 2, 2, 2, 2, 2))
    close(nn.convolution(x4, w4, 1, "SAME", "NABDEC"), nn.convolution(x4, w4, 1, "SAME"))


XT = np.zeros((2, 4, 3))
WT = np.zeros((3, 5, 3))


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (([2, 9, 5], 2), {}, r"does not fit the input along spatial axis 0: .*must be 7 to 8; received output_shape=\(2, 9, 5\)"),
        (([2, 6, 5], 2), {}, r"must be 7 to 8"),
        (([2, 11, 5], 2, "VALID"), {}, r"must be 9 to 10; received output_shape=\(2, 11, 5\)"),
        (([2, 4, 5], 1, "VALID"), {}, r"must be 6;"),
        (([2, 8, 5], 2, [[0, 0], [6, 6], [0, 0]]), {}, r"no size fits"),
        (([3, 8, 5], 2), {}, r"batch size in `output_shape` .* must equal the input's, 2; received output_shape=\(3, 8, 5\)"),
        (([2, 8, 4], 2), {}, r"output channels in `output_shape` .* positive multiple of filters.shape\[-2\] = 5"),
        (([2, 8, 10], 2), {}, r"whose quotient \(the groups\) divides the input's 3 channels"),
        (([2, 8, 8, 5], 2), {}, r"`input` and `filters` .* must have 4 axes, as `output_shape` \(2, 8, 8, 5\)"),
        (([2, 5], 2), {}, r"`output_shape` .* at least 3 non-negative integers; received output_shape=\[2, 5\]"),
        (([2, -8, 5], 2), {}, r"`output_shape` .*received output_shape=\[2, -8, 5\]"),
        (([2.0, 8.0, 5.0], 2), {}, r"`output_shape` .*received output_shape=\[2.0, 8.0, 5.0\]"),
        ((8, 2), {}, r"`output_shape` .*received output_shape=8"),
        (([2, 8, 5], [2, 2]), {}, r"`strides` .* length 1, 1 or 3 .*of length 2"),
        (([2, 8, 5], [2, 2, 1]), {}, r"`strides` .* must be 1 on the batch and channel axes"),
        (([2, 8, 5], 2, "same"), {}, r"upper-case"),
        (([2, 8, 5], 2), dict(data_format="NHWC"), r"must be 'NWC' or 'NCW' \(or None"),
        (([2, 8, 5], 2), dict(dilations=[1, 1, 2]), r"`dilations` .* must be 1 on the batch and channel axes"),
    ],
)  # fmt: skip
def test_conv_transpose_refusals(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.conv_transpose(XT, WT, *args, **kwargs)


def test_conv_transpose_refuses_mismatched_filters():
    with pytest.raises(ValueError, match=r"filters.shape\[-1\] .* must equal the input's 3 channels"):
        nn.conv_transpose(XT, np.zeros((3, 5, 2)), [2, 8, 5], 2)
    with pytest.raises(ValueError, match=r"must not have an axis of size 0"):
        nn.conv_transpose(XT, np.zeros((0, 5, 3)), [2, 8, 5], 2)
    with pytest.raises(ValueError, match=r"same dtype"):
        nn.conv_transpose(XT.astype(np.float32), WT, [2, 8, 5], 2)


def test_conv_transpose_accepts_every_size_tf_accepts():
    """SAME, stride 2, 4 input cells, kernel 3: 7 and 8 (TF ran); VALID: 9 and 10."""
    x, w = np.ones((1, 4, 1)), np.ones((3, 1, 1))
    for size in (7, 8):
        assert nn.conv_transpose(x, w, [1, size, 1], 2, "SAME").shape == (1, size, 1)
    for size in (9, 10):
        assert nn.conv_transpose(x, w, [1, size, 1], 2, "VALID").shape == (1, size, 1)
    # and strides with dilations together, which tf.nn.conv_transpose allows
    assert nn.conv_transpose(x, w, [1, 8, 1], 2, "SAME", dilations=2).shape == (1, 8, 1)
