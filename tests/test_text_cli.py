"""`rankconv text …` end to end: train, save, reload, predict from stdin, evaluate, cv, errors."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from test_text_model import planted_corpus

from rankconv.cli import main

MR = pathlib.Path(
    os.environ.get("RANKCONV_MR_DIR", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mr")
)


def _write_class_files(folder, texts, labels, encoding="utf-8"):
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(set(labels)):
        (folder / f"data.{name}").write_text(
            "\n".join(t for t, label in zip(texts, labels) if label == name) + "\n", encoding=encoding
        )
    return folder


def _run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "rankconv", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_train_predict_evaluate_on_planted_phrases(tmp_path, capsys):
    texts, labels = planted_corpus(300)
    data = _write_class_files(tmp_path / "train", texts, labels)
    model = tmp_path / "planted.keras"
    assert main(["text", "train", str(data), "--out", str(model), "--epochs", "6", "--quiet"]) == 0
    test_texts, test_labels = planted_corpus(100, seed=5)
    test = _write_class_files(tmp_path / "test", test_texts, test_labels)
    capsys.readouterr()
    assert main(["text", "evaluate", str(model), str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] > 0.9 and report["classes"] == ["neg", "pos"]
    run = _run("text", "predict", str(model), "-", "--json", stdin="the film was good\nthe film was not good\n")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["label"] for line in lines] == ["pos", "neg"]
    assert abs(sum(lines[0]["probabilities"].values()) - 1) < 1e-5


@pytest.mark.skipif(not MR.is_dir(), reason=f"MR data not found at {MR} (set RANKCONV_MR_DIR)")
def test_small_slice_of_mr_round_trip(tmp_path):
    texts, labels = [], []
    for name in ("neg", "pos"):
        lines = (MR / f"rt-polarity.{name}").read_text(encoding="latin-1").splitlines()[:300]
        texts += lines
        labels += [name] * len(lines)
    data = _write_class_files(tmp_path / "mr", texts, labels, encoding="latin-1")
    model = tmp_path / "mr.keras"
    run = _run("text", "train", str(data), "--encoding", "latin-1", "--out", str(model), "--epochs", "2", "--quiet")
    assert run.returncode == 0, run.stderr
    from rankconv.text import TextClassifier

    classifier = TextClassifier.load(model)
    sample = texts[:5] + texts[-5:]
    run = _run("text", "predict", str(model), "-", stdin="\n".join(sample) + "\n")
    assert run.returncode == 0, run.stderr
    printed = [line.split("\t") for line in run.stdout.splitlines()]
    assert [p[2] for p in printed] == sample
    assert [p[0] for p in printed] == classifier.predict(sample)
    probabilities = classifier.predict_proba(sample)
    for row, p in zip(probabilities, printed):
        assert p[1] == " ".join(f"{c}={v:.4f}" for c, v in zip(classifier.classes, row))


def test_cv_selected_folds_and_json(tmp_path, capsys):
    texts, labels = planted_corpus(200)
    data = _write_class_files(tmp_path / "d", texts, labels)
    out = tmp_path / "cv.json"
    assert (
        main(
            [
                "text",
                "cv",
                str(data),
                "--folds",
                "4",
                "--run-folds",
                "1,3",
                "--epochs",
                "2",
                "--quiet",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "fold  1: accuracy" in printed and "fold  3: accuracy" in printed and "mean accuracy" in printed
    result = json.loads(out.read_text())
    assert [f["fold"] for f in result["folds"]] == [1, 3]


def test_pretrained_vectors_from_a_glove_file(tmp_path, capsys):
    texts, labels = planted_corpus(200)
    data = _write_class_files(tmp_path / "d", texts, labels)
    rng = np.random.default_rng(0)
    glove = tmp_path / "vectors.txt"
    glove.write_text(
        "\n".join(
            f"{w} " + " ".join(f"{v:.4f}" for v in rng.standard_normal(8)) for w in ["good", "bad", "not", "film"]
        )
        + "\n"
    )
    model = tmp_path / "m.keras"
    assert (
        main(
            [
                "text",
                "train",
                str(data),
                "--out",
                str(model),
                "--mode",
                "static",
                "--embeddings",
                str(glove),
                "--epochs",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    assert "pretrained vectors for 4 of" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["text", "train", "/nonexistent/data.txt", "--out", "m.keras"], "error:"),
        (["text", "evaluate", "not-a-model.keras", "x"], "No model file"),
        (["text", "train", "{data}", "--out", "m.keras", "--mode", "static"], "needs --embeddings"),
    ],
)
def test_errors_are_one_line_without_traceback(args, message, tmp_path):
    texts, labels = planted_corpus(50)
    data = _write_class_files(tmp_path / "d", texts, labels)
    run = _run(*[a.replace("{data}", str(data)) for a in args])
    assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr


def test_wrong_encoding_and_one_class_are_reported(tmp_path):
    (tmp_path / "a.pos").write_bytes("caf\xe9 good\n".encode("latin-1"))
    (tmp_path / "a.neg").write_text("bad\n")
    run = _run("text", "train", str(tmp_path / "a.pos"), str(tmp_path / "a.neg"), "--out", str(tmp_path / "m.keras"))
    assert run.returncode == 1 and "--encoding latin-1" in run.stderr and "Traceback" not in run.stderr
    (tmp_path / "only.txt").write_text("1 a\n1 b\n1 c\n1 d\n1 e\n1 f\n")
    run = _run("text", "train", str(tmp_path / "only.txt"), "--out", str(tmp_path / "m.keras"))
    assert run.returncode == 1 and "Traceback" not in run.stderr


def test_a_model_that_is_not_a_text_model(tmp_path):
    from rankconv import layers
    from rankconv.models import Model

    inputs = layers.Input((3,))
    Model(inputs, layers.Dense(2)(inputs)).save(tmp_path / "plain.keras")
    run = _run("text", "predict", str(tmp_path / "plain.keras"), "-", stdin="x\n")
    assert run.returncode == 1 and "not a rankconv text model" in run.stderr
