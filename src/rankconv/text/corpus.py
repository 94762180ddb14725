"""A generated corpus whose class depends only on planted phrases (the demo's data).

Each sentence is filler words around one planted phrase; the phrase decides the class. Some
phrases are negations of others ("not good" against "good"), so a model must read word order to
get them right: a bag of words cannot, a bigram or trigram detector can.
"""

from __future__ import annotations

import numpy as np

POSITIVE = ("good", "a real gem", "truly moving", "not bad", "never boring")
NEGATIVE = ("not good", "a total mess", "painfully dull", "bad", "never funny")
FILLER = (
    "the film story plot acting cast director script scenes music camera ending audience it was is with and of to "
    "in this that its for as on at by from movie picture performance dialogue pacing score"
).split()


def planted_corpus(n: int = 2000, seed: int = 0, min_filler: int = 4, max_filler: int = 14):
    """`n` sentences and their labels ("pos"/"neg"), and the planted phrases by class."""
    if n < 2:
        raise ValueError(f"`n` must be at least 2; received {n}.")
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        phrases = POSITIVE if label == "pos" else NEGATIVE
        phrase = phrases[rng.integers(len(phrases))].split()
        words = list(rng.choice(FILLER, rng.integers(min_filler, max_filler + 1)))
        at = int(rng.integers(0, len(words) + 1))
        texts.append(" ".join(words[:at] + phrase + words[at:]))
        labels.append(label)
    order = rng.permutation(n)
    return [texts[i] for i in order], [labels[i] for i in order], {"pos": POSITIVE, "neg": NEGATIVE}
