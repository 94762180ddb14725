"""Receptive fields against brute force: perturb one input cell, see which outputs change.

A network with positive kernels, zero biases and no activations answers exactly which outputs an
input cell can reach: from an all-zero input, a one in a cell makes every output it reaches
positive (sums and maxima of positive terms) and leaves every other output exactly zero. Every
input cell is perturbed in its own batch entry, so one forward pass of rankconv's layers gives the
whole map, which must equal the field `rankconv.receptive_field` computes, cell for cell.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rankconv
from rankconv import layers as L
from rankconv import receptive_field as rf
from rankconv.explanation import explain


@pytest.fixture(autouse=True)
def numpy_algorithms():
    """The NumPy algorithms: the same numbers, and no first-call compiling of kernels in these tests."""
    from rankconv.ops import jit

    was = jit.enabled()
    rankconv.ops.set_jit(False)
    yield
    rankconv.ops.set_jit(was)


def _positive_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = []
        for variable in layer.weights:
            if "kernel" in variable.name:
                weights.append(rng.uniform(0.5, 1.5, variable.shape))
            else:
                weights.append(np.zeros(variable.shape))
        layer.set_weights(weights)


def brute_force(model, spatial, channels):
    """{output position: set of input cells that change it} by perturbing each input cell."""
    cells = list(itertools.product(*(range(n) for n in spatial)))
    x = np.zeros((len(cells), *spatial, channels), np.float32)
    for sample, cell in enumerate(cells):
        x[(sample, *cell)] = 1.0
    y = np.asarray(model(x))
    reached = np.abs(y).max(axis=-1) > 1e-7  # (cells, *output spatial)
    return {
        position: {cells[s] for s in np.nonzero(reached[(slice(None), *position)])[0]}
        for position in itertools.product(*(range(n) for n in reached.shape[1:]))
    }


def predicted(trace, position, rank):
    """The input cells `cells_at` says output `position` depends on (a union over paths)."""
    found = set()
    for path in rf.cells_at(trace, dict(enumerate(position))):
        axes = [path[(0, axis)][0].tolist() for axis in range(rank)]
        found |= set(itertools.product(*axes))
    return found


def check_stack(layers, spatial, channels, seed=0):
    model = rankconv.Sequential([L.Input((*spatial, channels)), *layers])
    _positive_weights(model, seed)
    seen = brute_force(model, spatial, channels)
    explanation = explain(model)
    last = explanation.layers[-1]
    for position, cells in seen.items():
        assert predicted(last.trace, position, len(spatial)) == cells, (
            position,
            [lay.call for lay in explanation.layers],
        )
    return explanation, seen


# ----------------------------------------------------------------------------- random stacks


@st.composite
def stacks(draw):
    """(layers, spatial shape, channels): 1-3 windowed layers of one rank (1-3) that fit the input."""
    rank = draw(st.integers(1, 3))
    low, high = {1: (5, 18), 2: (3, 8), 3: (3, 5)}[rank]
    spatial = tuple(draw(st.integers(low, high)) for _ in range(rank))
    channels = draw(st.integers(1, 2))
    shape = (None, *spatial, channels)
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        layer = _random_layer(draw, rank)
        try:
            out = layer.compute_output_shape(shape)
        except ValueError:
            continue
        if any(n is None or n < 1 for n in out[1:]) or math.prod(out[1:-1]) > 400:
            continue
        layers.append(layer)
        shape = out
    return layers, spatial, channels


def _random_layer(draw, rank):
    kind = draw(st.sampled_from(["conv", "conv", "pool", "transpose", "depthwise", "separable", "resample"]))
    size = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    strided = draw(st.booleans())
    strides = tuple(draw(st.integers(1, 3)) for _ in range(rank)) if strided else 1
    dilation = 1 if strided else tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = draw(st.sampled_from(["valid", "same", "causal"] if rank == 1 and kind == "conv" else ["valid", "same"]))
    if kind == "conv":
        return L.Conv(rank, 2, size, strides, padding, dilation_rate=dilation)
    if kind == "pool":
        mode = draw(st.sampled_from(["max", "average"]))
        cls = {("max", 1): L.MaxPooling1D, ("max", 2): L.MaxPooling2D, ("max", 3): L.MaxPooling3D}.get(
            (mode, rank), {1: L.AveragePooling1D, 2: L.AveragePooling2D, 3: L.AveragePooling3D}[rank]
        )
        return cls(size, strides=strides if strided else None, padding=padding)
    if kind == "transpose":
        extra = None
        if strided and draw(st.booleans()):
            extra = tuple(draw(st.integers(0, s - 1)) for s in strides)
        return L.ConvTranspose(rank, 2, size, strides, padding, extra, dilation_rate=dilation)
    if kind == "depthwise":
        return L.DepthwiseConv(rank, size, strides, padding, dilation_rate=dilation)
    if kind == "separable":
        return L.SeparableConv(rank, 2, size, strides, padding, dilation_rate=dilation)
    choice = draw(st.sampled_from(["up", "crop", "pad"]))
    by_rank = {
        "up": (L.UpSampling1D, L.UpSampling2D, L.UpSampling3D),
        "crop": (L.Cropping1D, L.Cropping2D, L.Cropping3D),
        "pad": (L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D),
    }[choice][rank - 1]
    if choice == "up":
        factors = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        if rank == 2 and draw(st.booleans()):
            return by_rank(factors, interpolation="bilinear")
        return by_rank(factors[0] if rank == 1 else factors)
    pairs = tuple((draw(st.integers(0, 1)), draw(st.integers(0, 1))) for _ in range(rank))
    return by_rank(pairs[0] if rank == 1 else pairs)


@settings(max_examples=60)
@given(stacks())
def test_fields_equal_brute_force_on_random_stacks(stack):
    layers, spatial, channels = stack
    if not layers:
        return
    check_stack(layers, spatial, channels)


# ----------------------------------------------------------------------------- size, jump, start


def _textbook(layers, spatial):
    """Araujo, Norris and Sim's closed forms for a stack of convolutions and poolings, per axis:
    size r = 1 + Σ (k'_l − 1) Π_{i<l} s_i, jump Π s_i, start −Σ lo_l Π_{i<l} s_i, with "same"
    padding's lo from TensorFlow's rule (written out again here)."""
    fields = []
    for axis, n in enumerate(spatial):
        size, jump, start = 1, 1, 0
        for layer in layers:
            pooling = isinstance(layer, L.Pooling)
            k = (layer.pool_size if pooling else layer.kernel_size)[axis]
            d = 1 if pooling else layer.dilation_rate[axis]
            s = layer.strides[axis]
            span = d * (k - 1) + 1
            if layer.padding == "same":
                out = -(-n // s)
                lo = max((out - 1) * s + span - n, 0) // 2
                n = out
            else:
                lo = 0
                n = (n - span) // s + 1
            size += (span - 1) * jump
            start -= lo * jump
            jump *= s
        fields.append((size, jump, start))
    return fields


@st.composite
def conv_stacks(draw):
    rank = draw(st.integers(1, 2))
    spatial = tuple(draw(st.integers(6, 14 if rank == 1 else 7)) for _ in range(rank))
    layers, shape = [], (None, *spatial, 1)
    for _ in range(draw(st.integers(1, 3))):
        size = tuple(draw(st.integers(1, 3)) for _ in range(rank))
        strided = draw(st.booleans())
        strides = tuple(draw(st.integers(1, 2)) for _ in range(rank)) if strided else 1
        padding = draw(st.sampled_from(["valid", "same"]))
        if draw(st.booleans()):
            layer = (L.MaxPooling1D, L.MaxPooling2D)[rank - 1](
                size, strides=strides if strided else None, padding=padding
            )
        else:
            dilation = 1 if strided else tuple(draw(st.integers(1, 2)) for _ in range(rank))
            layer = L.Conv(rank, 2, size, strides, padding, dilation_rate=dilation)
        try:
            out = layer.compute_output_shape(shape)
        except ValueError:
            continue
        if min(out[1:-1]) < 1:
            continue
        layers.append(layer)
        shape = out
    return layers, spatial


@settings(max_examples=40)
@given(conv_stacks())
def test_size_jump_start_match_the_textbook_and_brute_force(stack):
    layers, spatial = stack
    if not layers:
        return
    explanation, seen = check_stack(layers, spatial, 1)
    fields = explanation.layers[-1].receptive_field
    expected = _textbook(layers, spatial)
    assert [(f.field.size, f.field.jump, f.field.start) for f in fields] == expected
    # away from the edges (no padding read anywhere), brute force sees exactly that window
    for position, cells in seen.items():
        windows = [
            (start + o * jump, start + o * jump + size - 1) for o, (size, jump, start) in zip(position, expected)
        ]
        if all(0 <= a and b < n for (a, b), n in zip(windows, spatial)):
            for axis, (a, b) in enumerate(windows):
                along = sorted({cell[axis] for cell in cells})
                assert (along[0], along[-1]) == (a, b)


# ----------------------------------------------------------------------------- named cases


def test_dilated_causal_stack_like_wavenet():
    layers = [L.Conv1D(2, 2, padding="causal", dilation_rate=d) for d in (1, 2, 4)]
    explanation, seen = check_stack(layers, (20,), 1)
    (field,) = explanation.layers[-1].receptive_field
    assert (field.field.size, field.field.jump, field.field.start) == (8, 1, -7)
    # output t sees inputs t-7 ... t: never a later one
    assert all(max(cell[0] for cell in cells) == t for (t,), cells in seen.items())


def test_transposed_fields_vary_with_position():
    layers = [L.Conv1DTranspose(1, 3, strides=2, padding="same")]
    explanation, seen = check_stack(layers, (6,), 1)
    (field,) = explanation.layers[-1].receptive_field
    assert field.field.jump == rf.Fraction(1, 2)
    assert (field.field.min_size, field.field.size) == (1, 2)


def test_a_sum_of_paths_is_the_union_of_their_fields():
    inputs = rankconv.Input((7, 7, 1))
    wide = L.Conv2D(1, (1, 5), padding="same")(inputs)
    tall = L.Conv2D(1, (5, 1), padding="same")(inputs)
    model = rankconv.Model(inputs, L.Add()([wide, tall]))
    _positive_weights(model)
    seen = brute_force(model, (7, 7), 1)
    explanation = explain(model)
    last = explanation.layers[-1]
    for position, cells in seen.items():
        assert predicted(last.trace, position, 2) == cells
    # a cross, not a box: the hull per axis is 5, but the corners are not read
    assert len(seen[(3, 3)]) == 9
    assert [f.field.size for f in last.receptive_field] == [5, 5]


def test_global_pooling_and_flatten_see_the_whole_input():
    explanation = explain(["Conv2D(2, 3)", "GlobalMaxPooling2D()"], (6, 5, 1))
    assert [(f.axis, f.field.whole, f.field.size) for f in explanation.layers[-1].receptive_field] == [
        ("rows", True, 6),
        ("cols", True, 5),
    ]
    explanation = explain(["Conv2D(2, 3)", "Flatten()", "Dense(3)"], (6, 5, 1))
    assert all(f.field.whole for f in explanation.layers[-1].receptive_field)


def test_words_through_an_embedding():
    tokens = rankconv.Input((12,), dtype="int32")
    vectors = L.Embedding(20, 4)(tokens)
    grams = L.Conv1D(3, 3, dilation_rate=2)(vectors)
    model = rankconv.Model(tokens, grams)
    explanation = explain(model)
    assert explanation.inputs[0].spatial_axes == ("words",)
    (field,) = explanation.layers[-1].receptive_field
    assert (field.axis, field.field.size, field.field.jump, field.field.start) == ("words", 5, 1, 0)
    # brute force over token ids: change one word, see which outputs change
    base = np.zeros((1, 12), np.int32)
    reference = model(base)
    for word in range(12):
        changed = base.copy()
        changed[0, word] = 7
        moved = np.nonzero(np.abs(model(changed) - reference).max(axis=-1)[0] > 0)[0]
        expected = [o for o in range(reference.shape[1]) if word in rf.chain_cells(field_chain(explanation), o)[0]]
        assert moved.tolist() == expected


def field_chain(explanation):
    return explanation.layers[-1].trace[0].axes[0].windows


def test_unknown_length_keeps_size_and_jump():
    explanation = explain(["Conv1D(4, 3, strides=2, padding='same')", "Conv1D(4, 3)"], (None, 8))
    (field,) = explanation.layers[-1].receptive_field
    assert (field.field.size, field.field.jump, field.field.start) == (7, 2, None)


@pytest.mark.parametrize("bad", [{0: 1}, {}])
def test_cells_at_needs_every_traced_axis(bad):
    explanation = explain(["Conv2D(1, 3)"], (5, 5, 1))
    with pytest.raises(ValueError, match="position"):
        rf.cells_at(explanation.layers[-1].trace, bad)
