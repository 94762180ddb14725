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


def test_blocks_module_is_what_its_generator_writes():
    # blocks.py is generated (python src/rankconv/ops/block_source.py); an edit by hand, or a
    # generator change without regenerating, fails here
    from rankconv.ops import block_source

    with open(block_source.path(), encoding="utf-8") as handle:
        assert handle.read() == block_source.source()


def test_kernels_compile_with_slp_and_leave_numbas_setting_alone():
    if not jit.AVAILABLE:
        pytest.skip("numba is not installed")
    from numba.core import config

    from rankconv.ops import kernels, rank3

    before = config.SLP_VECTORIZE
    x = np.ones((1, 1, 2, 12, 16), np.float64)  # two lines of 12 cells, 16 channels: one block
    w = np.ones((1, 1, 3, 16), np.float64)
    y = np.zeros_like(x)
    geometry = rank3.geometry((1,), (1,), (1,), (1,))  # taps -1, 0, +1 ("same")
    rank3.run_rows(kernels.depthwise_forward, 1, x, w, y, geometry, 1)
    assert config.SLP_VECTORIZE == before
    # interior cells sum 3 ones; the two edge cells of each line 2
    np.testing.assert_array_equal(y[0, 0, :, 1:-1], 3.0)
    np.testing.assert_array_equal(y[0, 0, :, [0, -1]], 2.0)
