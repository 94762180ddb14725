"""The benchmark suite runs end to end on one small case and reports what it promises (speed is
measured there, never asserted here)."""

import dataclasses
import json
import math

import numpy as np
import pytest

from oracles import torch as _torch

_torch()  # the suite compares with PyTorch: it must be installed (test extra)

from rankconv import bench  # noqa: E402
from rankconv.ops import conv_common  # noqa: E402


@pytest.fixture(autouse=True)
def _threads_restored():
    """`bench.main(["--threads", "1", ...])` pins rankconv's and PyTorch's thread counts for the
    process (`bench.pin_threads`), as a benchmark should; later tests need them back."""
    torch = _torch()
    saved = conv_common.THREADS, torch.get_num_threads()
    yield
    conv_common.THREADS = saved[0]
    torch.set_num_threads(saved[1])


def test_every_case_computes_the_same_as_pytorch():
    """The two sides of each row compute the same convolution (so the ratios compare like with like)."""
    torch = _torch()
    for case in bench.CONV_CASES:
        small = dataclasses.replace(case, x_shape=(1, *case.x_shape[1:]), dilations=case.dilations[:2])
        x, w = bench.arrays(small)
        ours, _ = bench.rankconv_functions(small, x, w)
        theirs, _ = bench.torch_functions(small, x, w)
        expected = np.moveaxis(theirs().numpy(), 1, -1)
        got = ours()
        assert got.shape == expected.shape, case.name
        np.testing.assert_allclose(
            got, expected, atol=2e-4 * max(1.0, float(np.abs(expected).max())), err_msg=case.name
        )
    assert torch is not None


def test_suite_runs_one_case_with_memory_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        bench.main(["--only", "conv", "--cases", "Conv2D 1x1", "--repeats", "1", "--threads", "1", "--json", str(out)])
        == 0
    )
    report = capsys.readouterr().out
    assert "sgemm roofline" in report and "geometric mean ratio" in report and "pointwise/pointwise" in report
    assert "planner regret" in report and "vector unit" in report
    data = json.loads(out.read_text())
    (row,) = data["conv"]
    assert row["case"].startswith("Conv2D 1x1")
    assert "pointwise" in row["algorithms"] and row["regret"]["forward"] >= 1
    for label in ("forward", "fwd+bwd"):
        assert row[label]["rankconv_ms"] > 0 and row[label]["pytorch_ms"] > 0
        assert math.isclose(row[label]["ratio"], row[label]["pytorch_ms"] / row[label]["rankconv_ms"])
    peaks = row["peak_mb"]
    assert peaks["rankconv"] is not None and peaks["rankconv"] > 0 and peaks["pytorch"] is not None


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--cases", "no such case", "--only", "conv"])
    assert "matches no case" in capsys.readouterr().err


def test_forward_only_report_gives_memory_and_workspace(tmp_path, capsys):
    out = tmp_path / "forward.json"
    args = ["--forward-only", "--cases", "Kim Conv1D 64x300 k3", "--repeats", "1", "--threads", "1", "--json", str(out)]
    assert bench.main(args) == 0
    report = capsys.readouterr().out
    assert "workspace MB" in report and "bound MB" in report and "fwd+bwd" not in report
    (row,) = json.loads(out.read_text())["conv"]
    assert "fwd+bwd" not in row and row["forward"]["rankconv_ms"] > 0
    assert row["forward_peak_mb"]["rankconv"] is not None and row["output_mb"] == 50 * 62 * 100 * 4 / 2**20


def test_forward_benchmark_script_names_the_core_issue_cases():
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "conv_forward.py"
    cases = runpy.run_path(str(script))["CASES"].split(",")
    names = [c.name for c in bench.CONV_CASES]
    for wanted in cases:
        assert sum(wanted.lower() in n.lower() for n in names) == 1, wanted
