"""`rankconv demo`, through main() and as a real command."""

import json
import subprocess
import sys

from rankconv.cli import main


def test_demo_table(capsys):
    assert main(["demo", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "Conv1D(64, 3)" in out and "(3, 300, 64)" in out
    assert "Conv2D(64, 3)" in out and "(3, 3, 1, 64)" in out
    assert "Conv2D(64, (3, 300))" in out and "(3, 300, 1, 64)" in out
    assert "normalize_tuple(3, 1, 'kernel_size') -> (3,)" in out
    assert "normalize_tuple(3, 2, 'kernel_size') -> (3, 3)" in out
    assert "max |Conv1D - lifted Conv2D|" in out
    assert "trigram" in out


def test_demo_json(capsys):
    assert main(["demo", "--json", "--batch", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    kernels = {row["layer"]: row["kernel_shape"] for row in result["layers"]}
    assert kernels == {
        "Conv1D(64, 3)": [3, 300, 64],
        "Conv2D(64, 3)": [3, 3, 1, 64],
        "Conv2D(64, (3, 300))": [3, 300, 1, 64],
    }
    eq = result["equivalence"]
    assert eq["lifted_output_shape"] == [2, 598, 1, 64]
    assert eq["max_abs_difference"] <= 1e-5 * eq["output_scale"]


def test_module_entry_point_and_errors():
    run = subprocess.run(
        [sys.executable, "-m", "rankconv", "demo", "--json", "--batch", "1"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["layers"][0]["kernel_shape"] == [3, 300, 64]
    bad = subprocess.run([sys.executable, "-m", "rankconv", "demo", "--batch", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "positive integer" in bad.stderr and "Traceback" not in bad.stderr
    helped = subprocess.run([sys.executable, "-m", "rankconv", "demo", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "example:" in helped.stdout


def test_demo_part_two_learns_the_planted_phrases(capsys):
    assert main(["demo", "--json", "--batch", "1"]) == 0
    text = json.loads(capsys.readouterr().out)["text"]
    assert text["test_accuracy"] >= 0.95
    recovered = [r for r in text["planted"] if r["filter"] is not None]
    assert len(recovered) >= 8
    negations = {r["phrase"]: r for r in text["planted"]}
    assert negations["not good"]["class"] == "neg" and negations["not good"]["filter"] is not None
    assert text["example"]["predicted"] == "neg"
    assert main(["demo", "--no-text", "--batch", "1"]) == 0
    assert "Part two" not in capsys.readouterr().out


def test_demo_times_its_layers_warm_without_the_first_call():
    import time

    from rankconv.cli import _warm_seconds

    calls = []

    def call():
        calls.append(None)
        if len(calls) == 1:
            time.sleep(0.3)  # a first call's one-time costs
        return len(calls)

    result, seconds = _warm_seconds(call, repeats=5)
    assert result == 6 and len(calls) == 6 and seconds < 0.1
