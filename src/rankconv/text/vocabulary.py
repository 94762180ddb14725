"""Vocabulary and the text → padded id arrays step (Keras's TextVectorization, for Kim's CNN)."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rankconv.text.tokenize import cleaning, cleaning_name, get_tokenizer

PADDING, OOV = "<pad>", "<oov>"


@dataclass
class Vocabulary:
    """Words by id: 0 is padding, 1 stands for every word not in the vocabulary."""

    words: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        if self.words[:2] != [PADDING, OOV]:
            raise ValueError(f"A vocabulary starts with {PADDING!r} (id 0) and {OOV!r} (id 1).")
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 1, max_size: int | None = None) -> Vocabulary:
        """Words seen at least `min_count` times, most frequent first (ties alphabetical), at most `max_size` ids."""
        if min_count < 1:
            raise ValueError(f"`min_count` must be at least 1; received {min_count}.")
        counts = collections.Counter(token for tokens in token_lists for token in tokens)
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            if max_size < 3:
                raise ValueError(f"`max_size` must leave room for padding, OOV and a word; received {max_size}.")
            kept = kept[: max_size - 2]
        return cls([PADDING, OOV, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.index.get(token, 1) for token in tokens]


@dataclass
class TextVectorizer:
    """Texts → (n, length) int32 id arrays, the way Kim fed his CNN.

    Each sentence is cleaned and tokenized (`clean`: one of `tokenize.CLEANINGS`, or the lower-level
    `tokenizer` and `lower`), mapped to ids, and padded with `pad` zeros before it (so the widest
    filter also sees the first words at every offset) and zeros after it up to `length`. `length`
    is `max_tokens + 2 * pad`, so no sentence is shorter than the widest filter.
    """

    vocabulary: Vocabulary
    max_tokens: int
    pad: int = 4
    tokenizer: str = "kim"
    lower: bool = True

    @property
    def length(self) -> int:
        return self.max_tokens + 2 * self.pad

    @property
    def clean(self) -> str | None:
        """The `--clean` name of this tokenizer and case setting ("kim", "kim-sst", ...), if it has one."""
        return cleaning_name(self.tokenizer, self.lower)

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        windows=(3, 4, 5),
        tokenizer="kim",
        lower=True,
        min_count=1,
        max_size=None,
        max_tokens=None,
        clean=None,
    ) -> TextVectorizer:
        """`clean` (a `tokenize.CLEANINGS` name) overrides `tokenizer` and `lower`."""
        if clean is not None:
            tokenizer, lower = cleaning(clean)
        tokenize = get_tokenizer(tokenizer)
        token_lists = [tokenize(t, lower=lower) for t in texts]
        vocabulary = Vocabulary.build(token_lists, min_count=min_count, max_size=max_size)
        longest = max((len(t) for t in token_lists), default=1)
        return cls(vocabulary, max_tokens or max(longest, 1), pad=max(windows) - 1, tokenizer=tokenizer, lower=lower)

    def tokens(self, text: str) -> list[str]:
        return get_tokenizer(self.tokenizer)(text, lower=self.lower)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("TextVectorizer takes a list of texts; received a single string (wrap it in a list).")
        out = np.zeros((len(texts), self.length), dtype=np.int32)
        for row, text in enumerate(texts):
            ids = self.vocabulary.ids(self.tokens(text))[: self.max_tokens]
            out[row, self.pad : self.pad + len(ids)] = ids
        return out

    def get_config(self) -> dict:
        return {
            "words": self.vocabulary.words,
            "max_tokens": self.max_tokens,
            "pad": self.pad,
            "tokenizer": self.tokenizer,
            "lower": self.lower,
            "clean": self.clean,
        }

    @classmethod
    def from_config(cls, config: dict) -> TextVectorizer:
        """A config without "clean" (files written before it existed) reads text with its tokenizer
        and case setting, "kim" and lower-case by default: as those files were trained."""
        tokenizer, lower = config.get("tokenizer", "kim"), bool(config.get("lower", True))
        if config.get("clean") is not None:
            tokenizer, lower = cleaning(config["clean"])
        get_tokenizer(tokenizer)  # an unknown name fails here, with the known ones, not at the first text
        return cls(Vocabulary(list(config["words"])), int(config["max_tokens"]), int(config["pad"]), tokenizer, lower)
