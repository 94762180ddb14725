"""Initializers: Keras's fan arithmetic and distributions, names, configs, seeds."""

import math

import numpy as np
import pytest

from rankconv import initializers


def test_fans_of_a_conv_kernel():
    assert initializers.compute_fans((3, 300, 64)) == (900, 192)
    assert initializers.compute_fans((3, 3, 1, 64)) == (9, 576)
    assert initializers.compute_fans((10, 5)) == (10, 5)
    assert initializers.compute_fans((7,)) == (7, 7)


@pytest.mark.parametrize(
    "name,bound",
    [
        ("glorot_uniform", math.sqrt(6 / (900 + 192))),
        ("he_uniform", math.sqrt(6 / 900)),
        ("lecun_uniform", math.sqrt(3 / 900)),
    ],
)
def test_uniform_variance_scaling_limits(name, bound):
    values = initializers.get(name)((3, 300, 64))
    assert values.dtype == np.float32
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.98 * bound
    assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)


@pytest.mark.parametrize(
    "name,variance", [("he_normal", 2 / 900), ("glorot_normal", 2 / (900 + 192)), ("lecun_normal", 1 / 900)]
)
def test_truncated_normal_variance_scaling(name, variance):
    values = initializers.get(name)((3, 300, 64)).astype(np.float64)
    stddev = math.sqrt(variance) / 0.87962566103423978
    assert np.abs(values).max() <= 2 * stddev + 1e-7
    assert values.std() == pytest.approx(math.sqrt(variance), rel=0.03)


def test_simple_initializers():
    assert (initializers.get("zeros")((2, 3)) == 0).all()
    assert (initializers.get("ones")((2,)) == 1).all()
    assert (initializers.Constant(2.5)((2,), dtype="float64") == 2.5).all()
    u = initializers.get("random_uniform")((1000,))
    assert u.min() >= -0.05 and u.max() <= 0.05
    n = initializers.RandomNormal(stddev=2.0, seed=1)((20000,))
    assert n.std() == pytest.approx(2.0, rel=0.03)
    t = initializers.TruncatedNormal(seed=1)((20000,))
    assert np.abs(t).max() <= 0.1


def test_seeds_and_configs():
    a = initializers.HeNormal(seed=5)((4, 4))
    np.testing.assert_array_equal(a, initializers.HeNormal(seed=5)((4, 4)))
    assert initializers.serialize(initializers.GlorotUniform(seed=3)) == {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": 3, "input_axes": None, "output_axes": None},
        "registered_name": None,
    }
    vs = initializers.VarianceScaling(2.0, "fan_out", "uniform", seed=1)
    assert initializers.get(initializers.serialize(vs)) == vs
    with pytest.raises(ValueError, match="`seed`"):
        initializers.GlorotUniform(seed="x")
    with pytest.raises(ValueError, match="`mode`"):
        initializers.VarianceScaling(mode="fan")
    with pytest.raises(ValueError, match="Unknown class 'Nope'"):
        initializers.get({"class_name": "Nope", "config": {}})
