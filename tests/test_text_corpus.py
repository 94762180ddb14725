"""The demo's generated corpus: balanced, reproducible, and decided by its planted phrases."""

from rankconv.text.corpus import FILLER, NEGATIVE, POSITIVE, planted_corpus


def test_balanced_reproducible_and_planted():
    texts, labels, phrases = planted_corpus(200, seed=3)
    assert labels.count("pos") == labels.count("neg") == 100
    assert planted_corpus(200, seed=3)[0] == texts and planted_corpus(200, seed=4)[0] != texts
    assert phrases == {"pos": POSITIVE, "neg": NEGATIVE}
    for text, label in zip(texts, labels):
        words = text.split()
        content = [w for w in words if w not in FILLER]
        phrase = " ".join(content)
        assert phrase in (POSITIVE if label == "pos" else NEGATIVE), text


def test_negations_need_word_order():
    # "not good" is negative and "good" positive; "not bad" positive and "bad" negative:
    # the same words, so only their order tells the classes apart
    assert "not good" in NEGATIVE and "good" in POSITIVE and "not bad" in POSITIVE and "bad" in NEGATIVE
