import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankconv.utils import (
    conv_output_length,
    normalize_data_format,
    normalize_padding,
    normalize_tuple,
    padding_pairs,
)


class TestNormalizeTuple:
    def test_int_becomes_rank_tuple(self):
        assert normalize_tuple(3, 1, "kernel_size") == (3,)
        assert normalize_tuple(3, 2, "kernel_size") == (3, 3)
        assert normalize_tuple(2, 4, "strides") == (2, 2, 2, 2)

    def test_sequences_and_int_like_values(self):
        assert normalize_tuple([3, 300], 2, "kernel_size") == (3, 300)
        assert normalize_tuple((1, 2, 3), 3, "dilation_rate") == (1, 2, 3)
        assert normalize_tuple(range(1, 3), 2, "strides") == (1, 2)
        import numpy as np

        assert normalize_tuple(np.int64(4), 2, "kernel_size") == (4, 4)
        assert normalize_tuple(np.array([2, 5]), 2, "kernel_size") == (2, 5)
        assert normalize_tuple(["3", 2.0], 2, "kernel_size") == (3, 2)

    def test_wrong_length_names_argument_n_and_value(self):
        with pytest.raises(ValueError) as info:
            normalize_tuple((3,), 2, "kernel_size")
        message = str(info.value)
        assert "`kernel_size`" in message and "2 integers" in message and "(3,)" in message

    def test_bad_element_names_element_and_type(self):
        with pytest.raises(ValueError) as info:
            normalize_tuple((3, "a"), 2, "strides")
        message = str(info.value)
        assert "`strides`" in message and "'a'" in message and "str" in message
        with pytest.raises(ValueError, match="2.5.*float"):
            normalize_tuple((3, 2.5), 2, "kernel_size")
        with pytest.raises(ValueError, match="None.*NoneType"):
            normalize_tuple((3, None), 2, "kernel_size")

    def test_not_iterable_or_string(self):
        with pytest.raises(ValueError, match="`kernel_size`.*3.5"):
            normalize_tuple(3.5, 2, "kernel_size")
        with pytest.raises(ValueError, match="`kernel_size`.*'33'"):
            normalize_tuple("33", 2, "kernel_size")
        with pytest.raises(ValueError, match="bool"):
            normalize_tuple(True, 2, "kernel_size")

    @pytest.mark.parametrize("value", [0, -1, (3, 0), (-2, 3)])
    def test_zero_and_negative_rejected(self, value):
        with pytest.raises(ValueError, match="`value > 0`"):
            normalize_tuple(value, 2, "kernel_size")

    def test_allow_zero(self):
        assert normalize_tuple(0, 2, "padding", allow_zero=True) == (0, 0)
        with pytest.raises(ValueError, match="`value >= 0`"):
            normalize_tuple(-1, 2, "padding", allow_zero=True)


class TestPaddingAndFormat:
    @pytest.mark.parametrize("value,expected", [("valid", "valid"), ("SAME", "same"), ("Causal", "causal")])
    def test_modes_case_insensitive(self, value, expected):
        assert normalize_padding(value) == expected

    def test_unknown_mode(self):
        with pytest.raises(ValueError, match="`padding`.*'full'"):
            normalize_padding("full")
        with pytest.raises(ValueError, match="causal"):
            normalize_padding("causal", allow_causal=False)

    def test_explicit_pairs(self):
        assert normalize_padding([(1, 2), 3], rank=2) == ((1, 2), (3, 3))
        with pytest.raises(ValueError, match="2 \\(lo, hi\\) pair"):
            normalize_padding([(1, 2)], rank=2)
        with pytest.raises(ValueError, match="pair of ints"):
            normalize_padding([(1, 2, 3)])
        with pytest.raises(ValueError, match="`padding`"):
            normalize_padding(3)

    def test_data_format(self):
        assert normalize_data_format(None) == "channels_last"
        assert normalize_data_format("channels_first") == "channels_first"
        with pytest.raises(ValueError, match="`data_format`.*'NHWC'"):
            normalize_data_format("NHWC")


class TestOutputLength:
    @given(
        n=st.integers(1, 60),
        k=st.integers(1, 8),
        s=st.integers(1, 4),
        d=st.integers(1, 4),
    )
    def test_formulas(self, n, k, s, d):
        span = d * (k - 1) + 1
        valid = conv_output_length(n, k, "valid", s, d)
        if n >= span:
            assert valid == (n - span) // s + 1
        assert conv_output_length(n, k, "same", s, d) == math.ceil(n / s)
        assert conv_output_length(n, k, "causal", s, d) == (n + span - 1 - span) // s + 1
        assert conv_output_length(n, k, (2, 1), s, d) == (n + 3 - span) // s + 1
        assert conv_output_length(None, k, "same", s, d) is None

    @given(n=st.integers(1, 60), k=st.integers(1, 8), s=st.integers(1, 4), d=st.integers(1, 4))
    def test_same_padding_puts_odd_pixel_high(self, n, k, s, d):
        ((lo, hi),) = padding_pairs((n,), (k,), (s,), (d,), "same")
        assert hi - lo in (0, 1)
        out = math.ceil(n / s)
        assert (n + lo + hi - (d * (k - 1) + 1)) // s + 1 == out
        assert lo + hi == max(0, (out - 1) * s + d * (k - 1) + 1 - n)

    def test_examples(self):
        # TensorFlow's SAME: n=5, k=2, s=1 → one zero, after
        assert padding_pairs((5,), (2,), (1,), (1,), "same") == ((0, 1),)
        # n=6, k=3, s=2: out 3, total max(2*2+3-6, 0) = 1 → (0, 1)
        assert padding_pairs((6,), (3,), (2,), (1,), "same") == ((0, 1),)
        assert padding_pairs((10,), (3,), (1,), (4,), "causal") == ((8, 0),)
        assert padding_pairs((10, 7), (3, 3), (1, 1), (1, 1), ((1, 2), (0, 3))) == ((1, 2), (0, 3))


def test_modes_are_checked_and_lengths_must_agree():
    assert conv_output_length(10, 3, "SAME", 2) == 5
    with pytest.raises(ValueError, match="`padding`"):
        conv_output_length(10, 3, "bogus", 2)
    assert padding_pairs((10,), (3,), (1,), (1,), "VALID") == ((0, 0),)
    with pytest.raises(ValueError, match="`kernel_shape` must have 2 entries"):
        padding_pairs((10, 10), (3,), (1,), (1,), "same")


def test_float_and_bool_padding_amounts_are_refused():
    with pytest.raises(ValueError, match="pair of ints"):
        normalize_padding(((1.5, 2),), rank=1)
    with pytest.raises(ValueError, match="pair of ints"):
        normalize_padding(((True, 2),), rank=1)


def test_zero_dimensional_arrays_are_ints():
    import numpy as np

    assert normalize_tuple(np.array(3), 2, "kernel_size") == (3, 3)
