"""Tokenizers: Kim's cleaning rules (the default) and plain whitespace splitting."""

from __future__ import annotations

import re

# Kim (2014) cleaned sentences before splitting them: only letters, digits and a few marks
# survive; English clitics become tokens of their own ("don't" → "do n't"); the marks , ! ( ) ?
# become separate tokens; everything is lower-cased.
_OUTSIDE_ALPHABET = re.compile(r"[^A-Za-z0-9(),!?'`]")
_CLITIC = re.compile(r"(n't|'s|'ve|'re|'d|'ll)")  # anywhere, as Kim's rules ("it'sa" → "it 'sa")
_MARK = re.compile(r"([,!?()])")
_SPACES = re.compile(r"\s+")


def kim_tokenize(text: str, lower: bool = True) -> list[str]:
    """`"It's not good, isn't it?"` → `["it", "'s", "not", "good", ",", "is", "n't", "it", "?"]`."""
    text = _OUTSIDE_ALPHABET.sub(" ", text)
    text = _CLITIC.sub(r" \1", text)
    text = _MARK.sub(r" \1 ", text)
    text = _SPACES.sub(" ", text).strip()
    if lower:
        text = text.lower()
    return text.split(" ") if text else []


def whitespace_tokenize(text: str, lower: bool = False) -> list[str]:
    """Split on runs of whitespace only."""
    return (text.lower() if lower else text).split()


TOKENIZERS = {"kim": kim_tokenize, "whitespace": whitespace_tokenize}


def get_tokenizer(name: str):
    try:
        return TOKENIZERS[name]
    except KeyError:
        raise ValueError(f"Unknown tokenizer {name!r}; choose one of {sorted(TOKENIZERS)}.") from None
