"""A `predict` whose convolution would need tens of GiB of im2col workspace runs in bounded
memory: the batch is processed in pieces within the configured workspace limit
(`rankconv.ops.set_conv_workspace`), never materialising the whole im2col matrix.

Checked in a subprocess that could not allocate the whole matrix if it tried (its address space is
capped a few GiB above what it uses), with NumPy's own allocation count (tracemalloc) as the
measure of the scratch memory."""

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, tracemalloc
    import numpy as np
    from rankconv import layers, ops, utils
    from rankconv.models import Sequential
    from rankconv.ops import conv_common, planner

    batch, size, channels, kernel, algorithms, limit = json.loads(sys.argv[1])
    utils.set_random_seed(0)
    model = Sequential([layers.Input((size, size, channels)), layers.Conv2D(1, kernel, use_bias=False)])
    x = np.random.default_rng(0).standard_normal((batch, size, size, channels)).astype("float32")
    ops.set_conv_workspace(limit)
    call = conv_common.ConvCall(x.shape, (kernel, kernel, channels, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1),
                                np.dtype("float32"))
    out = size - kernel + 1
    im2col_bytes = batch * out * out * kernel * kernel * channels * 4
    for algorithm in algorithms:
        with planner.conv_algorithm(algorithm):
            model.predict(x[:2], batch_size=2, verbose=0)  # compile and warm up outside the measure
    with open("/proc/self/status") as status:
        used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
    # room for a few GiB more, far from the matrix: an attempt to allocate it fails at once
    resource.setrlimit(resource.RLIMIT_AS, (used + (3 << 30), resource.RLIM_INFINITY))
    tracemalloc.start()
    for algorithm in algorithms:
        conv_common.release_scratch()  # the previous algorithm's kept buffers are not this one's
        tracemalloc.reset_peak()
        with planner.conv_algorithm(algorithm):
            y = model.predict(x, batch_size=batch, verbose=0)
        peak = tracemalloc.get_traced_memory()[1]
        print(json.dumps({"algorithm": algorithm or planner.plan(call)[0], "peak": peak, "output": y.nbytes,
                          "im2col": im2col_bytes, "finite": bool(np.isfinite(y).all())}))
        del y
    """
)


LIMIT = 16 << 20


@pytest.fixture(scope="module")
def measured():
    """Peak scratch of one `predict` with forced im2col, the planner's own choice and forced FFT.

    33x33 windows over 64x64x4 images, one filter: each sample's im2col matrix is 17 MiB, the
    batch's 17 GiB; the input is 64 MiB and the output 4 MiB."""
    settings = [1024, 64, 4, 33, ["im2col", None, "fft"], LIMIT]
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(settings)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = [json.loads(line) for line in run.stdout.strip().splitlines()[-3:]]
    return dict(zip(("im2col", "planned", "fft"), results))


def within_limit(result) -> bool:
    # NumPy's allocations during predict: the convolution's output, predict's result array, and at
    # most the workspace limit of scratch between them (and some small change)
    return result["peak"] <= 2 * result["output"] + LIMIT + (1 << 20)


@pytest.mark.parametrize("case", ["im2col", "planned"])
def test_a_predict_needing_tens_of_gib_of_im2col_stays_within_the_workspace_limit(measured, case):
    result = measured[case]
    assert result["im2col"] > 16 * 2**30 and result["finite"]
    assert within_limit(result), result


def test_the_fft_algorithm_stays_within_the_workspace_limit(measured):
    # fft_conv sizes its batch chunks by every buffer a sample takes (padded copy, spectra, products,
    # inverse transform): it once counted the input and output spectra alone and used ~6x the limit
    assert measured["fft"]["finite"]
    assert within_limit(measured["fft"]), measured["fft"]
