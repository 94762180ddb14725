"""n-gram detectors of Kim's CNN made visible: top n-grams per filter, explanations, tables, HTML, CLI."""

import html
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from test_text_model import planted_corpus

from rankconv.cli import main
from rankconv.text.ngrams import (
    Explanation,
    FilterReport,
    explain,
    format_table,
    render_html,
    top_ngrams,
    write_html,
)
from rankconv.text.training import TextClassifier, train_classifier

WINDOWS = (1, 2, 3)
FILTERS = 8


@pytest.fixture(scope="module")
def corpus():
    return planted_corpus(400, seed=0)


@pytest.fixture(scope="module")
def classifier(corpus):
    texts, labels = corpus
    return train_classifier(
        texts, labels, epochs=16, embedding_dim=16, filters=FILTERS, windows=WINDOWS, seed=0, verbose=0
    )


@pytest.fixture(scope="module")
def reports(classifier, corpus):
    return top_ngrams(classifier, corpus[0], top=5, batch_size=64)


def _occurs(tokens, sentences):
    """Whether `tokens` (padding removed from the edges) is a run of consecutive tokens of some sentence."""
    words = [t for t in tokens if t != "<pad>"]
    return any(
        sentence[i : i + len(words)] == words for sentence in sentences for i in range(len(sentence) - len(words) + 1)
    )


def _phrase_in(phrase, tokens):
    return f" {phrase} " in " " + " ".join(tokens) + " "


def test_top_ngrams_are_real_ngrams_of_the_right_width(classifier, corpus, reports):
    sentences = [classifier.vectorizer.tokens(t) for t in corpus[0]]
    assert len(reports) == len(WINDOWS) * FILTERS
    assert sorted({(r.width, r.filter) for r in reports}) == [(w, f) for w in WINDOWS for f in range(FILTERS)]
    for report in reports:
        assert isinstance(report, FilterReport) and len(report.ngrams) <= 5
        assert set(report.weights) == {"neg", "pos"} and report.votes_for in ("neg", "pos")
        assert abs(sum(report.votes.values())) < 1e-9
        activations = [g.activation for g in report.ngrams]
        assert activations == sorted(activations, reverse=True) and all(a > 0 for a in activations)
        assert len({g.tokens for g in report.ngrams}) == len(report.ngrams)  # distinct
        for gram in report.ngrams:
            assert len(gram.tokens) == report.width
            assert any(t != "<pad>" for t in gram.tokens)
            # padding only at the edges, where the window overlaps it
            inner = "".join("p" if t == "<pad>" else "w" for t in gram.tokens).strip("p")
            assert "p" not in inner
            assert _occurs(gram.tokens, sentences), gram.tokens
    # the weights are the output layer's kernel rows, times the kept fraction that scales its inputs
    kernel = np.asarray(classifier.model.get_layer("classes").kernel) * 0.5
    first = next(r for r in reports if r.width == WINDOWS[0] and r.filter == 0)
    np.testing.assert_allclose([first.weights["neg"], first.weights["pos"]], kernel[0], rtol=1e-6)


def test_filters_detect_the_planted_phrases(reports):
    grams = [g.tokens for r in reports for g in r.ngrams]
    assert any("bad" in g for g in grams)
    assert any(_phrase_in("not good", g) for g in grams if len(g) >= 2)
    assert any(any(t == "good" and (i == 0 or g[i - 1] != "not") for i, t in enumerate(g)) for g in grams)
    # a filter whose strongest n-gram contains "bad" votes for "neg"
    bad = [r for r in reports if r.ngrams and "bad" in r.ngrams[0].tokens]
    assert bad and any(r.votes_for == "neg" for r in bad)


def test_top_ngrams_do_not_depend_on_the_batch_size(classifier, corpus, reports):
    again = top_ngrams(classifier, corpus[0], top=5, batch_size=7)
    for one, two in zip(reports, again):
        assert [g.tokens for g in one.ngrams] == [g.tokens for g in two.ngrams]
        np.testing.assert_allclose([g.activation for g in one.ngrams], [g.activation for g in two.ngrams], rtol=1e-5)


def test_top_ngrams_by_brute_force(classifier, corpus):
    texts = corpus[0][:30]
    reports = top_ngrams(classifier, texts, top=3, batch_size=8)
    ids = classifier.vectorizer(texts)
    words = classifier.vectorizer.vocabulary.words
    embedded = classifier.model.get_layer("embedding")(ids)
    for width in WINDOWS:
        acts = np.asarray(classifier.model.get_layer(f"ngram_{width}")(embedded))
        for f in range(FILTERS):
            best = {}
            for row in range(len(texts)):
                for p in range(acts.shape[1]):
                    key = tuple(int(i) for i in ids[row, p : p + width])
                    if any(key) and acts[row, p, f] > 0:
                        best[key] = max(best.get(key, 0.0), float(acts[row, p, f]))
            expected = sorted(best.values(), reverse=True)[:3]
            report = next(r for r in reports if r.width == width and r.filter == f)
            np.testing.assert_allclose([g.activation for g in report.ngrams], expected, rtol=1e-5)
            for gram in report.ngrams:
                key = tuple(words.index(t) for t in gram.tokens)
                assert best[key] == pytest.approx(gram.activation, rel=1e-5)


def test_top_ngrams_handle_truncated_sentences(classifier):
    long = "good " + "the " * 40 + "bad"  # longer than max_tokens: "bad" is cut off
    assert len(classifier.vectorizer.tokens(long)) > classifier.vectorizer.max_tokens
    reports = top_ngrams(classifier, [long], top=50)
    assert not any("bad" in g.tokens for r in reports for g in r.ngrams)
    assert any("good" in g.tokens for r in reports for g in r.ngrams)
    explanation = explain(classifier, long)
    assert explanation.seen == classifier.vectorizer.max_tokens < len(explanation.tokens)
    assert len(explanation.word_scores) == len(explanation.tokens)
    assert all(s == 0 for s in explanation.word_scores[explanation.seen :])
    assert all(w.end <= explanation.seen for w in explanation.winners)


def test_explain_not_good(classifier):
    explanation = explain(classifier, "the film was not good")
    assert isinstance(explanation, Explanation)
    assert explanation.predicted == "neg"
    assert explanation.tokens == ["the", "film", "was", "not", "good"]
    np.testing.assert_allclose(
        list(explanation.probabilities.values()), classifier.predict_proba([explanation.text])[0], rtol=1e-5
    )
    # contributions + bias add up to the predicted class's logit margin
    total = sum(w.contribution for w in explanation.winners) + explanation.bias
    assert total == pytest.approx(explanation.margin, rel=1e-6, abs=1e-9)
    assert len(explanation.winners) == len(WINDOWS) * FILTERS
    groups = explanation.ngrams
    contributions = [abs(g.contribution) for g in groups]
    assert contributions == sorted(contributions, reverse=True)
    assert sum(len(g.filters) for g in groups) <= len(explanation.winners)
    assert sum(g.contribution for g in groups) == pytest.approx(total - explanation.bias, abs=1e-9)
    # the strongest push toward "neg" comes from a window with "not"; "not" is the most negative word
    toward = max(groups, key=lambda g: g.contribution)
    assert "not" in toward.tokens
    assert len(explanation.word_scores) == len(explanation.tokens)
    assert explanation.tokens[int(np.argmax(explanation.word_scores))] == "not"
    # per-word score = sum of contributions of the winning windows covering the word
    expected = [sum(g.contribution for g in groups if g.start <= i < g.end) for i in range(5)]
    np.testing.assert_allclose(explanation.word_scores, expected)
    # and "bad" decides its sentence
    assert "bad" in explain(classifier, "the plot was bad").ngrams[0].tokens


def test_explain_winners_match_max_pooling(classifier):
    text = "a really good story"
    explanation = explain(classifier, text)
    ids = classifier.vectorizer([text])
    embedded = classifier.model.get_layer("embedding")(ids)
    pad = classifier.vectorizer.pad
    for width in WINDOWS:
        acts = np.asarray(classifier.model.get_layer(f"ngram_{width}")(embedded))[0]
        pooled = np.asarray(classifier.model.get_layer(f"max_over_time_{width}")(acts[None]))[0]
        for winner in (w for w in explanation.winners if w.width == width):
            assert winner.pooled == pytest.approx(float(pooled[winner.filter]), rel=1e-6)
            assert acts[winner.position, winner.filter] == pytest.approx(winner.pooled, rel=1e-6)
            expected = [
                explanation.tokens[i - pad] if 0 <= i - pad < len(explanation.tokens) else "<pad>"
                for i in range(winner.position, winner.position + width)
            ]
            assert list(winner.tokens) == expected


def test_format_tables(classifier, reports):
    table = format_table(reports, filters=3)
    for width in WINDOWS:
        assert f"window width {width}: 3 of {FILTERS} filters" in table
    header = next(line for line in table.splitlines() if line.startswith("width"))
    assert header.split() == ["width", "filter", "n-gram", "activation", "votes", "for"]
    # aligned: every activation ends under the end of its header
    for block in table.split("\n\n"):
        header, rule, *rows = block.splitlines()[1:]
        end = header.index("activation") + len("activation")
        assert rows and all(re.fullmatch(r"\.\d{3}", row[end - 4 : end]) for row in rows), block
    text = format_table(explain(classifier, "the film was not good"), ngrams=4)
    assert "predicted neg" in text and "winning n-gram" in text and "margin" in text
    with pytest.raises(TypeError, match="FilterReport"):
        format_table(["not a report"])


def test_html_page(classifier, reports, tmp_path):
    texts = ["the film was not good", "<script>alert('x')</script> a good & bad film"]
    explanations = [explain(classifier, t) for t in texts]
    page = render_html(explanations, reports, title="planted <phrases>")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "planted &lt;phrases&gt;" in page
    assert "http://" not in page and "https://" not in page and "src=" not in page
    for explanation in explanations:
        for token in explanation.tokens:
            assert f">{html.escape(token)}</span>" in page
    assert page.count('class="sentence"') == 2 and "title=" in page and "rgba(" in page
    assert page.count("<table") == page.count("</table>") and page.count("<tr>") == page.count("</tr>")
    target = tmp_path / "page.html"
    write_html(target, explanations, reports)
    assert target.read_text(encoding="utf-8") == render_html(explanations, reports)
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]  # no temporary file left behind


def test_multichannel_model(corpus):
    texts, labels = corpus
    rng = np.random.default_rng(0)
    classifier = train_classifier(
        texts[:150],
        labels[:150],
        mode="multichannel",
        embeddings=lambda words: rng.uniform(-0.25, 0.25, (len(words), 6)).astype("float32"),
        embedding_dim=6,
        epochs=2,
        filters=3,
        windows=(2, 3),
        seed=0,
        verbose=0,
    )
    assert classifier.model.get_layer("channels") is not None
    reports = top_ngrams(classifier, texts[:150], top=3)
    assert sorted({(r.width, r.filter) for r in reports}) == [(w, f) for w in (2, 3) for f in range(3)]
    assert all(len(g.tokens) == r.width for r in reports for g in r.ngrams)
    explanation = explain(classifier, "the film was not good")
    np.testing.assert_allclose(
        list(explanation.probabilities.values()), classifier.predict_proba([explanation.text])[0], rtol=1e-5
    )
    assert "window width 3" in format_table(reports)


def _write_class_files(folder, texts, labels):
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(set(labels)):
        lines = [t for t, label in zip(texts, labels) if label == name]
        (folder / f"data.{name}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_cli_ngrams(classifier, tmp_path, capsys):
    model = tmp_path / "planted.keras"
    classifier.save(model)
    texts, labels = planted_corpus(60, seed=3)
    data = _write_class_files(tmp_path / "data", texts, labels)
    page = tmp_path / "out" / "ngrams.html"
    page.parent.mkdir()
    args = ["text", "ngrams", str(model), str(data), "--top", "3", "--filters", "2", "--explain", "2"]
    assert main([*args, "--html", str(page)]) == 0
    out = capsys.readouterr().out
    for width in WINDOWS:
        assert f"window width {width}: 2 of {FILTERS} filters" in out
    assert (
        len(re.findall(r"^  predicted (neg|pos) ", out, flags=re.M)) == 2
        and "winning n-gram" in out
        and f"wrote {page}" in out
    )
    written = page.read_text(encoding="utf-8")
    assert written.startswith("<!DOCTYPE html>") and written.count('class="sentence"') == 2
    assert main([*args[:4], "--explain", "0"]) == 0
    assert not re.search(r"^  predicted ", capsys.readouterr().out, flags=re.M)
    assert main([*args[:4], "--top", "0"]) == 1
    assert "--top must be at least 1" in capsys.readouterr().err


def test_cli_refuses_a_model_that_is_not_a_text_model(tmp_path, corpus):
    from rankconv import layers
    from rankconv.models import Model

    inputs = layers.Input((3,))
    Model(inputs, layers.Dense(2)(inputs)).save(tmp_path / "plain.keras")
    data = _write_class_files(tmp_path / "d", corpus[0][:20], corpus[1][:20])
    run = subprocess.run(
        [sys.executable, "-m", "rankconv", "text", "ngrams", str(tmp_path / "plain.keras"), str(data)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert run.returncode == 1 and "not a rankconv text model" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_text_model_without_ngram_detectors_is_refused(classifier):
    from rankconv import layers
    from rankconv.models import Model

    tokens = layers.Input((classifier.vectorizer.length,), dtype="int32")
    words = layers.Embedding(len(classifier.vectorizer.vocabulary), 4)(tokens)
    outputs = layers.Dense(2, activation="softmax", name="classes")(layers.GlobalAveragePooling1D()(words))
    odd = TextClassifier(Model(tokens, outputs), classifier.vectorizer, classifier.classes)
    with pytest.raises(ValueError, match="max-over-time pooling"):
        explain(odd, "a good film")
