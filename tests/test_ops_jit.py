"""The compiled kernels' switch: `RANKCONV_JIT=0` in the environment selects the NumPy algorithms,
which compute the same numbers (the CI also runs the convolution and pooling suites that way)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rankconv import ops
from rankconv.ops import jit

PROBE = textwrap.dedent(
    """
    import numpy as np
    from rankconv import ops
    from rankconv.ops import jit
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 8, 6)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, 6)).astype(np.float32)
    print(jit.enabled(), ops.conv_plan(x.shape, w.shape, padding=((1, 1), (1, 1)))[0])
    np.save("conv.npy", ops.conv(x, w, padding="same"))
    np.save("pool.npy", ops.max_pool(x, 3, 2, "same") + ops.average_pool(x, 2, 1, "same")[:, ::2, ::2])
    """
)


def _probe(tmp_path, value):
    env = dict(os.environ, RANKCONV_JIT=value)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.split(), np.load(tmp_path / "conv.npy"), np.load(tmp_path / "pool.npy")


def test_environment_switch_selects_the_numpy_algorithms(tmp_path):
    (enabled, algorithm), conv_numpy, pool_numpy = _probe(tmp_path, "0")
    assert enabled == "False" and algorithm == "direct"
    if not jit.AVAILABLE:
        pytest.skip("numba is not installed: only the NumPy side can run")
    (enabled, algorithm), conv_compiled, pool_compiled = _probe(tmp_path, "1")
    assert enabled == "True" and algorithm == "depthwise_kernel"
    np.testing.assert_allclose(conv_compiled, conv_numpy, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pool_compiled, pool_numpy, rtol=1e-6, atol=1e-6)


def test_set_jit_refuses_what_cannot_be():
    with pytest.raises(TypeError, match="`on` must be True or False"):
        ops.set_jit(1)
    saved = jit.enabled()
    try:
        ops.set_jit(False)
        assert not jit.enabled() and "switched off" in jit.unavailable_reason()
    finally:
        jit._enabled = saved
