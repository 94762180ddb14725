"""Kim's table: --dev and several --test sets, multi-class reports, Kim's cleanings (stored in the model),
cv --seeds, Kim's mini-batches, and `rankconv text bench-table` (synthetic data; a short real run
where the shared data is found)."""

import json
import os
import pathlib
import re
import types

import numpy as np
import pytest
from test_text_model import planted_corpus

from rankconv.cli import main
from rankconv.text import table
from rankconv.text.cli import format_report
from rankconv.text.tokenize import CLEANINGS, kim_sst_tokenize, kim_tokenize, whitespace_tokenize
from rankconv.text.training import (
    TextClassifier,
    cross_validate,
    evaluate_classifier,
    kim_batches,
    repeated_cross_validation,
    train_classifier,
)
from rankconv.text.vocabulary import TextVectorizer

DATA = pathlib.Path(
    os.environ.get("RANKCONV_DATA_DIR", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data")
)
SST = pathlib.Path(os.environ.get("RANKCONV_SST_DIR", DATA / "sst"))
MR = pathlib.Path(os.environ.get("RANKCONV_MR_DIR", DATA / "mr"))

# a small network, so that these tests train in tenths of a second
SMALL = {"embedding_dim": 8, "filters": 4, "windows": (2, 3), "verbose": 0}


# ---------------------------------------------------------------------------------------------------
# Kim's cleanings


def test_kim_clean_str_on_examples_worked_through_his_rules():
    # his clean_str: characters outside A-Za-z0-9(),!?'` become spaces (the "." and ":"); the
    # clitics split off; , ! ( ) ? separated; spaces collapsed; lower-cased last
    assert kim_tokenize("It's a (very) good film, isn't it? Yes!") == (
        "it 's a ( very ) good film , is n't it ? yes !".split()
    )
    # his clitic rules run before lower-casing and are case-sensitive: "DON'T" stays one token
    assert kim_tokenize("DON'T stop. Don't!") == ["don't", "stop", "do", "n't", "!"]
    # non-ASCII letters are outside his alphabet (Latin-1 MR bytes in his Python 2: one space each)
    assert kim_tokenize("café's naïve — «ok»") == ["caf", "'s", "na", "ve", "ok"]
    # "'m" is not one of his clitics; TREC keeps case (clean_str(..., TREC=True))
    assert kim_tokenize("I'm TREC's Question: Who?", lower=False) == ["I'm", "TREC", "'s", "Question", "Who", "?"]


def test_kim_clean_str_sst_only_replaces_and_lowercases():
    line = "It 's a stirring , funny -- re-imagining of beauty ( and ) the beast . Isn't (a) film?"
    assert kim_sst_tokenize(line) == [
        *"it 's a stirring , funny re imagining of beauty ( and ) the beast isn't (a) film?".split()
    ]
    assert whitespace_tokenize("Keep  It's, as-is") == ["Keep", "It's,", "as-is"]
    assert CLEANINGS == {
        "kim": ("kim", True),
        "kim-keep-case": ("kim", False),
        "kim-sst": ("kim-sst", True),
        "none": ("whitespace", False),
    }


def _kim_chain(text, sst=False, lower=True):
    """His rules as he wrote them: one substitution after another (our tokenizer does the clitics in one
    pass); his ( ) ? tokens carry a backslash (`" \\( "` in a replacement keeps it), here taken off."""
    text = re.sub(r"[^A-Za-z0-9(),!?'`]", " ", text)
    if not sst:
        for clitic in ("'s", "'ve", "n't", "'re", "'d", "'ll"):
            text = re.sub(re.escape(clitic), " " + clitic, text)
        text = re.sub(",", " , ", text)
        text = re.sub("!", " ! ", text)
        text = re.sub(r"\(", r" \( ", text)
        text = re.sub(r"\)", r" \) ", text)
        text = re.sub(r"\?", r" \? ", text)
    text = re.sub(r"\s{2,}", " ", text).strip()
    text = text.lower() if lower else text
    return [token.lstrip("\\") if token in ("\\(", "\\)", "\\?") else token for token in text.split()]


def test_the_cleanings_split_as_his_sequence_of_substitutions():
    rng = np.random.default_rng(0)
    alphabet = list("nNtTsSvVeErRdDlL'`(),!?.-é ab") + ["n't", "'s", "'ve", "'ll", "'d", "'re", "  "]
    texts = ["".join(rng.choice(alphabet, rng.integers(0, 30))) for _ in range(3000)]
    if MR.is_dir():
        texts += (MR / "rt-polarity.neg").read_text(encoding="latin-1").splitlines()[:2000]
    if SST.is_dir():
        texts += (SST / "stsa.fine.dev").read_text(encoding="utf-8").splitlines()
    for text in texts:
        assert kim_tokenize(text) == _kim_chain(text), text
        assert kim_tokenize(text, lower=False) == _kim_chain(text, lower=False), text
        assert kim_sst_tokenize(text) == _kim_chain(text, sst=True), text


def test_clean_is_stored_in_the_model_and_old_files_read_as_before(tmp_path):
    texts, labels = planted_corpus(60)
    classifier = train_classifier(texts, labels, epochs=1, clean="kim-sst", **SMALL)
    classifier.save(tmp_path / "sst.keras")
    loaded = TextClassifier.load(tmp_path / "sst.keras")
    assert loaded.vectorizer.clean == "kim-sst" and loaded.model.metadata["text"]["vectorizer"]["clean"] == "kim-sst"
    assert loaded.vectorizer.tokens("Isn't (a) GOOD film.") == ["isn't", "(a)", "good", "film"]
    np.testing.assert_allclose(loaded.predict_proba(texts[:5]), classifier.predict_proba(texts[:5]), rtol=1e-6)
    # a file written before --clean existed: tokenizer and lower only, which is Kim's clean_str
    config = classifier.vectorizer.get_config()
    old = {key: value for key, value in config.items() if key != "clean"}
    old.update(tokenizer="kim", lower=True)
    classifier.model.metadata = {"text": {"vectorizer": old, "classes": classifier.classes}}
    classifier.model.save(tmp_path / "old.keras")
    assert TextClassifier.load(tmp_path / "old.keras").vectorizer.clean == "kim"
    assert TextVectorizer.from_config(old).tokens("Isn't (a) GOOD film.") == "is n't ( a ) good film".split()
    with pytest.raises(ValueError, match="Unknown cleaning 'porter'"):
        TextVectorizer.fit(texts, clean="porter")


def test_cli_clean_reaches_predict(tmp_path, capsys):
    texts, labels = planted_corpus(120)
    data = tmp_path / "train.txt"
    data.write_text("".join(f"{label} {text}\n" for text, label in zip(texts, labels)))
    model = tmp_path / "m.keras"
    args = ["text", "train", str(data), "--out", str(model), "--epochs", "1", "--quiet", "--clean", "none"]
    assert main(args) == 0
    assert TextClassifier.load(model).vectorizer.tokens("Not GOOD, really.") == ["Not", "GOOD,", "really."]


# ---------------------------------------------------------------------------------------------------
# --dev, several --test sets, multi-class reports


def test_a_given_dev_set_chooses_the_epoch():
    texts, labels = planted_corpus(100, seed=1)
    dev_texts, dev_labels = planted_corpus(40, seed=2)
    seen = []

    class Watch(__import__("rankconv").callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(0)

        def on_train_batch_end(self, batch, logs=None):
            seen[-1] += 1

        def on_epoch_end(self, epoch, logs=None):
            # the accuracy on the given dev set, computed here, is the one the epoch is chosen by
            probabilities = self.model.predict(vectorizer(dev_texts), verbose=0)
            truth = np.array([classes.index(label) for label in dev_labels])
            assert logs["val_accuracy"] == pytest.approx(float((probabilities.argmax(1) == truth).mean()))

    vectorizer = TextVectorizer.fit(texts, windows=SMALL["windows"])
    classes = sorted(set(labels))
    classifier = train_classifier(
        texts,
        labels,
        dev=(dev_texts, dev_labels),
        vectorizer=vectorizer,
        epochs=4,
        batch_size=10,
        extra_callbacks=[Watch()],
        **SMALL,
    )
    assert seen == [10] * 4  # all 100 training sentences are trained on: no 10% split is taken
    history = classifier.history["val_accuracy"]
    best = max(i for i, value in enumerate(history) if value == max(history))  # the later of equal epochs
    assert classifier.best_epoch == best + 1
    assert evaluate_classifier(classifier, dev_texts, dev_labels)["accuracy"] == pytest.approx(max(history))
    with pytest.raises(ValueError, match="Dev labels"):
        train_classifier(texts, labels, dev=(dev_texts[:2], ["pos", "maybe"]), epochs=1, **SMALL)


def test_multiclass_report_against_a_hand_computation():
    classes = ["a", "b", "c"]
    truth = list("aaabbccccc")
    predicted = list("ababcccacb")
    stub = types.SimpleNamespace(
        classes=classes, predict_proba=lambda texts: np.eye(3)[[classes.index(p) for p in predicted]]
    )
    report = evaluate_classifier(stub, ["x"] * 10, truth)
    assert report["confusion"] == [[2, 1, 0], [0, 1, 1], [1, 1, 3]]
    assert report["accuracy"] == pytest.approx(6 / 10)
    expected = {  # precision = diagonal / column sum, recall = diagonal / row sum
        "a": (2 / 3, 2 / 3, 2 / 3, 3),
        "b": (1 / 3, 1 / 2, 2 / 5, 2),
        "c": (3 / 4, 3 / 5, 2 / 3, 5),
    }
    for name, (precision, recall, f1, support) in expected.items():
        row = report["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision, recall, f1))
        assert row["support"] == support
    assert report["macro"]["f1"] == pytest.approx(26 / 45)
    text = format_report(report).splitlines()
    assert text[0].split() == [
        "true",
        "class",
        "precision",
        "recall",
        "f1",
        "support",
        "|",
        "predicted:",
        "a",
        "b",
        "c",
    ]
    assert text[2].split() == ["b", "0.3333", "0.5000", "0.4000", "2", "|", "0", "1", "1"]
    assert text[4].split()[:2] == ["macro", "avg"] and text[4].split()[4] == "0.5778"


def test_cli_train_with_dev_file_and_two_test_sets_three_classes(tmp_path, capsys):
    def write(name, n, seed):
        texts, labels = planted_corpus(n, seed=seed)
        # a third class: sentences about the plot
        labels = ["plot" if "plot" in text.split() else label for text, label in zip(texts, labels)]
        (tmp_path / name).write_text("".join(f"{label} {text}\n" for text, label in zip(texts, labels)))
        return labels

    write("train.txt", 300, 0)
    dev_labels = write("dev.txt", 60, 1)
    test_labels = write("test.txt", 80, 2)
    model, report = tmp_path / "m.keras", tmp_path / "r.json"
    d = str(tmp_path)
    args = ["text", "train", f"{d}/train.txt", "--dev", f"{d}/dev.txt", "--test", f"{d}/test.txt"]
    args += ["--test", f"{d}/dev.txt", "--out", str(model), "--epochs", "3", "--quiet", "--json", str(report)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"on 60 sentences of {d}/dev.txt (epoch" in printed
    assert printed.count("test accuracy") == 2 and printed.count("| predicted:") == 2
    result = json.loads(report.read_text())
    assert result["train"]["classes"] == ["neg", "plot", "pos"] and result["clean"] == "kim"
    assert [t["files"] for t in result["tests"]] == [[f"{d}/test.txt"], [f"{d}/dev.txt"]]
    for test, labels in zip(result["tests"], (test_labels, dev_labels)):
        confusion = np.array(test["report"]["confusion"])
        assert confusion.shape == (3, 3) and confusion.sum() == len(labels)
        assert [row["support"] for row in test["report"]["per_class"].values()] == [
            labels.count(c) for c in ("neg", "plot", "pos")
        ]
    # the dev set's report is the second test's: the kept weights, scored on the same file
    assert result["dev"]["report"] == result["tests"][1]["report"]
    assert result["dev"]["accuracy"] == pytest.approx(result["history"]["val_accuracy"][result["best_epoch"] - 1])


# ---------------------------------------------------------------------------------------------------
# cv --seeds


def test_seeds_run_complete_cross_validations_and_summarise_them():
    texts, labels = planted_corpus(90)
    result = repeated_cross_validation(texts, labels, seeds=2, folds=3, seed=5, epochs=1, **SMALL)
    runs = result["runs"]
    assert [r["seed"] for r in runs] == [5, 8] and [r["run"] for r in runs] == [1, 2]
    assert all(len(r["folds"]) == 3 for r in runs)
    means = [np.mean([f["accuracy"] for f in r["folds"]]) for r in runs]
    assert result["mean"] == pytest.approx(np.mean(means))
    assert result["std"] == pytest.approx(abs(means[0] - means[1]) / np.sqrt(2))  # sample std of two values
    # run 2 is `cv --seed 8` exactly: its own partition and training seeds 9, 10, 11
    alone = cross_validate(texts, labels, folds=3, seed=8, epochs=1, **SMALL)
    assert [f["accuracy"] for f in alone["folds"]] == [f["accuracy"] for f in runs[1]["folds"]]
    with pytest.raises(ValueError, match="`seeds`"):
        repeated_cross_validation(texts, labels, seeds=0)


def test_cli_cv_seeds_plain_and_json(tmp_path, capsys):
    texts, labels = planted_corpus(120)
    data = tmp_path / "d.txt"
    data.write_text("".join(f"{label} {text}\n" for text, label in zip(texts, labels)))
    args = ["text", "cv", str(data), "--folds", "2", "--seeds", "2", "--epochs", "1", "--quiet", "--json", "-"]
    assert main(args) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # with --json -, stdout is the JSON and the plain lines go to stderr
    assert len(result["runs"]) == 2 and [r["seed"] for r in result["runs"]] == [0, 2]
    assert "run 2 (--seed 2): mean accuracy" in captured.err
    assert f"mean accuracy {result['mean']:.4f} ± {result['std']:.4f} over 2 runs" in captured.err
    # one run keeps the layout `cv --json` always had
    out = tmp_path / "one.json"
    args = ["text", "cv", str(data), "--folds", "2", "--run-folds", "1", "--epochs", "1", "--quiet", "--json", str(out)]
    assert main(args) == 0
    one = json.loads(out.read_text())
    assert {"folds", "mean", "std", "k", "seed"} <= one.keys() and [f["fold"] for f in one["folds"]] == [1]


# ---------------------------------------------------------------------------------------------------
# Kim's mini-batches


def test_kim_batches_pad_with_random_repeats_and_shuffle_once():
    rng = np.random.default_rng(0)
    batches = kim_batches(103, 10, rng)
    assert batches.shape == (11, 10)
    counts = np.bincount(batches.ravel(), minlength=103)
    assert counts.min() == 1 and (counts == 2).sum() == 7  # 7 = 10 - 103 % 10 sentences repeated
    assert not np.array_equal(np.sort(batches.ravel())[:103], batches.ravel()[:103])  # shuffled
    exact = kim_batches(40, 10, rng)
    assert sorted(exact.ravel()) == list(range(40))
    tiny = kim_batches(7, 10, rng)
    assert tiny.shape == (1, 10) and set(tiny.ravel()) == set(range(7))


def _batches_fit_trains_on(monkeypatch, batches):
    """The batches (as sentence ids) that `fit` trains on, epoch by epoch."""
    from rankconv.models import training

    fed = []
    original = training.Trainer._train_step

    def record(self, x, y, sample_weight=None):
        fed.append(np.array(x[0] if isinstance(x, list) else x))
        return original(self, x, y, sample_weight)

    monkeypatch.setattr(training.Trainer, "_train_step", record)
    texts = [f"w{i} the film" for i in range(103)]  # each sentence has a word of its own
    labels = ["pos" if i % 2 else "neg" for i in range(103)]
    vectorizer = TextVectorizer.fit(texts, windows=SMALL["windows"])
    ids = {vectorizer.vocabulary.index[f"w{i}"]: i for i in range(103)}
    train_classifier(
        texts, labels, epochs=3, batch_size=10, dev_fraction=0, batches=batches, vectorizer=vectorizer, **SMALL
    )
    per_epoch = len(fed) // 3
    sentences = [tuple(ids[row[vectorizer.pad]] for row in batch) for batch in fed]
    return [sentences[e * per_epoch : (e + 1) * per_epoch] for e in range(3)]


def test_kim_batches_through_fit_are_fixed_and_visited_in_a_new_order(monkeypatch):
    epochs = _batches_fit_trains_on(monkeypatch, "kim")
    assert all(len(epoch) == 11 and all(len(batch) == 10 for batch in epoch) for epoch in epochs)
    assert sorted(epochs[0]) == sorted(epochs[1]) == sorted(epochs[2])  # the same batches ...
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # ... in a new order
    seen = [i for batch in epochs[0] for i in batch]
    assert set(seen) == set(range(103)) and len(seen) == 110


def test_default_batches_are_reshuffled_every_epoch(monkeypatch):
    epochs = _batches_fit_trains_on(monkeypatch, "shuffle")
    assert all(len(epoch) == 11 and len(epoch[-1]) == 3 for epoch in epochs)  # 103 = 10 × 10 + 3
    assert set(epochs[0]).isdisjoint(epochs[1])  # new batches (103 choose 10: no batch comes back)
    assert all(sorted(i for batch in epoch for i in batch) == list(range(103)) for epoch in epochs)
    with pytest.raises(ValueError, match="`batches`"):
        train_classifier(["a b", "c d"], ["x", "y"], batches="fixed")


# ---------------------------------------------------------------------------------------------------
# bench-table


def _synthetic_data_dir(root):
    texts, labels = planted_corpus(100, seed=3)
    (root / "mr").mkdir(parents=True)
    for name in ("pos", "neg"):
        lines = [t for t, label in zip(texts, labels) if label == name]
        (root / "mr" / f"rt-polarity.{name}").write_text("\n".join(lines) + "\n", encoding="latin-1")
    (root / "subj").mkdir()
    (root / "subj" / "subj.all").write_text("".join(f"{int(y == 'pos')} {t}\n" for t, y in zip(texts, labels)))
    (root / "sst").mkdir()
    for kind in ("fine", "binary"):
        for part, n, seed in (("train", 100, 4), ("dev", 30, 5), ("test", 30, 6)):
            t, y = planted_corpus(n, seed=seed)
            (root / "sst" / f"stsa.{kind}.{part}").write_text(
                "".join(f"{int(c == 'pos')} {s} \n" for s, c in zip(t, y))
            )
    return root


def _table_row(printed, name):
    """The table's row for data set `name` (progress lines above the table start with the name too)."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("data set "))
    return next(line for line in lines[start:] if line.startswith(name + " "))


def test_bench_table_on_synthetic_data(tmp_path, capsys):
    data = _synthetic_data_dir(tmp_path / "data")
    out = tmp_path / "table.json"
    args = ["text", "bench-table", "--data-dir", str(data), "--folds", "2", "--epochs", "1", "--quiet"]
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert [row["key"] for row in result["rows"]] == ["mr", "subj", "sst1", "sst2"]
    assert [row["kim"] for row in result["rows"]] == [76.1, 89.6, 45.0, 82.7]
    assert [row["clean"] for row in result["rows"]] == ["kim", "kim", "kim-sst", "kim-sst"]
    for row in result["rows"]:
        line = _table_row(printed, row["name"])
        assert f"{100 * row['accuracy']:.2f}" in line and f"{row['kim']:.1f}" in line and " s" in line
    assert len(result["rows"][0]["runs"][0]["folds"]) == 2 and result["rows"][0]["spread"] == "folds"
    assert "SST-1: rankconv text train" in printed and "--clean kim-sst" in printed
    assert "* Kim trained on the treebank's phrases" in printed


def test_bench_table_data_location_only_and_seeds(tmp_path, capsys, monkeypatch):
    data = _synthetic_data_dir(tmp_path / "data")
    for name in ("RANKCONV_MR_DIR", "RANKCONV_SUBJ_DIR", "RANKCONV_SST_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RANKCONV_DATA_DIR", str(data))
    assert table.data_folder(table.BY_KEY["sst1"]) == data / "sst"
    monkeypatch.setenv("RANKCONV_SST_DIR", str(tmp_path / "elsewhere"))
    assert table.data_folder(table.BY_KEY["sst1"]) == tmp_path / "elsewhere"
    assert table.data_folder(table.BY_KEY["sst1"], data_dir=data) == data / "sst"  # --data-dir wins
    assert [b.key for b in table.select(["SST-2,mr", "sst2"])] == ["mr", "sst2"]
    with pytest.raises(ValueError, match="unknown data set 'trec'"):
        table.select("trec")
    # SST-2 missing (its variable points at an empty place), MR found through RANKCONV_DATA_DIR
    args = ["text", "bench-table", "--only", "sst2,mr", "--folds", "2", "--seeds", "2", "--epochs", "1", "--quiet"]
    assert main([*args, "--json", "-"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    mr, sst2 = result["rows"]
    assert "RANKCONV_SST_DIR" in sst2["skipped"] and "SST-2: skipped" in captured.err
    assert mr["spread"] == "runs" and [run["seed"] for run in mr["runs"]] == [0, 2]
    assert mr["accuracy"] == pytest.approx(np.mean([run["mean"] for run in mr["runs"]]))
    monkeypatch.setenv("RANKCONV_DATA_DIR", str(tmp_path / "nothing"))
    assert main(["text", "bench-table", "--only", "sst1", "--quiet"]) == 1


MODES = (("rand", "rand"), ("static", "static"), ("nonstatic", "non-static"), ("multichannel", "multichannel"))


def test_kims_figures_are_the_ones_the_data_readmes_quote():
    found = 0
    for bench in table.BENCHMARKS:
        readme = DATA / bench.folder / "README.md"
        if not readme.is_file():
            continue
        text = " ".join(readme.read_text().split())
        if bench.folder == "sst":  # "SST-1 CNN-rand 45.0, CNN-non-static 48.0; SST-2 CNN-rand 82.7, ..."
            text = text[text.index(bench.name + " CNN-rand") :].split(";")[0]
        quoted = {
            mode: float(re.search(rf"CNN-{label} (\d+\.\d)", text).group(1))
            for mode, label in MODES
            if f"CNN-{label} " in text
        }
        assert "rand" in quoted and quoted == {mode: bench.kim[mode] for mode in quoted}, bench.name
        found += 1
    if not found:
        pytest.skip(f"no data README found under {DATA} (set RANKCONV_DATA_DIR)")


@pytest.mark.skipif(not SST.is_dir(), reason=f"SST data not found at {SST} (set RANKCONV_SST_DIR or RANKCONV_DATA_DIR)")
def test_bench_table_sst2_one_epoch_on_the_real_data(capsys, monkeypatch):
    monkeypatch.setenv("RANKCONV_SST_DIR", str(SST))
    assert main(["text", "bench-table", "--only", "sst2", "--epochs", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    line = _table_row(printed, "SST-2")
    assert "train 6,920 / dev 872 / test 1,821" in line and "82.7*" in line
    ours = float(re.search(r"1,821\s+([\d.]+)", line).group(1))
    assert 50 < ours < 90  # one epoch: above chance, below Kim


# ---------------------------------------------------------------------------------------------------
# batches cut to their longest sentence


@pytest.mark.parametrize("windows", [(3, 4, 5), (2,), (1, 3)])
def test_batches_cut_to_their_longest_sentence_compute_the_full_width(windows):
    """`SentenceBatches` keeps `longest + 2·pad + 1` columns: every window holding a word, and one
    window of padding alone for every sentence that has one at the full width. The network is made
    so that the padding-only window wins the max whenever it exists (convolution biases of +1,
    kernels ≤ 0 over embeddings ≥ 0): one column fewer changes the outputs."""
    from rankconv.text.model import kim_cnn
    from rankconv.text.training import SentenceBatches

    rng = np.random.default_rng(5)
    lengths = [0, 1, 2, 9, 10, 11, 12, 3, 12, 5, 7, 11]  # the longest (12) at the full width, in some batches
    texts = [" ".join(f"w{rng.integers(30)}" for _ in range(n)) for n in lengths]
    vectorizer = TextVectorizer.fit(texts, windows=windows)
    x = vectorizer(texts)
    model = kim_cnn(len(vectorizer.vocabulary), 3, embedding_dim=6, windows=windows, filters=5, seed=0)
    for layer in model.layers:
        if type(layer).__name__ == "Conv1D":
            kernel, bias = layer.get_weights()
            layer.set_weights([-np.abs(kernel) - 0.1, np.ones_like(bias)])
        elif type(layer).__name__ == "Embedding":
            (table_,) = layer.get_weights()
            table_ = np.abs(table_) + 0.1
            table_[0] = 0
            layer.set_weights([table_])
        elif type(layer).__name__ == "Dense":
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    full = model.predict(x, verbose=0)
    for batch_size in (1, 2, 5, 12):
        for batches in (
            SentenceBatches.sorted_by_length(x, None, vectorizer.pad, batch_size),
            SentenceBatches(x, None, vectorizer.pad, np.array_split(rng.permutation(len(x)), -(-len(x) // batch_size))),
        ):
            assert max(batches[i].shape[1] for i in range(len(batches))) <= x.shape[1]
            cut = np.empty_like(full)
            cut[batches.rows()] = model.predict(batches, verbose=0)
            np.testing.assert_allclose(cut, full, rtol=1e-5, atol=1e-6)
    short = SentenceBatches(x, None, vectorizer.pad, [np.array([1, 2])])  # one word and two: 2 + 2·pad + 1
    assert short[0].shape == (2, 2 + 2 * vectorizer.pad + 1)


# ---------------------------------------------------------------------------------------------------
# folds in parallel


def test_cv_jobs_trains_folds_in_worker_processes_with_the_same_results(tmp_path, capsys):
    texts, labels = planted_corpus(120, seed=7)
    options = {**SMALL, "epochs": 2}
    alone = cross_validate(texts, labels, folds=3, **options)
    seen = []
    parallel = cross_validate(texts, labels, folds=3, jobs=2, on_fold=lambda r: seen.append(r["fold"]), **options)
    assert [r["fold"] for r in parallel["folds"]] == [1, 2, 3] and sorted(seen) == [1, 2, 3]
    assert [r["accuracy"] for r in parallel["folds"]] == [r["accuracy"] for r in alone["folds"]]
    with pytest.raises(ValueError, match="embeddings cannot be sent to another process"):
        cross_validate(texts, labels, folds=3, jobs=2, embeddings=lambda words: None, **options)
    with pytest.raises(ValueError, match="`jobs` must be a positive integer"):
        cross_validate(texts, labels, folds=3, jobs=0, **options)


def test_predict_cuts_batches_for_any_length_models_and_not_for_fixed_length_ones():
    """Models trained here take any length (Input (None,)) and `predict_proba` sorts and cuts;
    a model file from before (a fixed input length) is given the full width, in the given order."""
    from rankconv.text.model import kim_cnn

    texts, labels = planted_corpus(60, seed=9)
    classifier = train_classifier(texts, labels, epochs=1, **SMALL)
    assert classifier.model.inputs[0].shape[-1] is None
    cut = classifier.predict_proba(texts)
    full = classifier.model.predict(classifier.vectorizer(texts), verbose=0)
    np.testing.assert_allclose(cut, full, rtol=1e-5, atol=1e-6)
    fixed = kim_cnn(
        len(classifier.vectorizer.vocabulary), 2, embedding_dim=8, windows=(2, 3), filters=4,
        length=classifier.vectorizer.length, seed=0,
    )  # fmt: skip
    fixed.set_weights(classifier.model.get_weights())
    old = TextClassifier(fixed, classifier.vectorizer, classifier.classes)
    np.testing.assert_allclose(old.predict_proba(texts), full, rtol=1e-5, atol=1e-6)
