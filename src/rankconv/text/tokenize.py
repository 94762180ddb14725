"""Tokenizers: Kim's cleaning rules (the default) and plain whitespace splitting.

Kim's code (`process_data.py` of his CNN_sentence repository) cleans each data set one of three ways,
selectable here by name (`CLEANINGS`, the `--clean` option of `rankconv text`):

* ``kim`` — his `clean_str`: every character outside ``A-Za-z0-9(),!?'` `` becomes a space; the
  clitics 's 've n't 're 'd 'll are split off wherever they occur; , ! ( ) ? become tokens of their
  own; runs of spaces collapse; the result is lower-cased. His code uses it for every data set
  except SST and TREC ("Every dataset is lower cased except for TREC").
* ``kim-keep-case`` — `clean_str(string, TREC=True)`: the same rules, case kept (his TREC setting).
* ``kim-sst`` — his `clean_str_sst`: only the first and the last steps (characters outside the
  alphabet become spaces, spaces collapse, lower-case). SST's sentences come tokenized already
  ("wo n't", "film , and"), so nothing is split.
* ``none`` — no cleaning: the text split on whitespace, case kept.

One difference is deliberate: his replacement strings for ( ) ? are written `" \\( "`, `" \\) "` and
`" \\? "`, and Python's `re.sub` keeps the backslash of such an escape in a replacement, so his tokens
are ``\\(``, ``\\)`` and ``\\?``. Ours are ``(``, ``)`` and ``?``. The backslash itself is outside
his alphabet (removed by the first step), so this renames three tokens one to one and splits every
sentence into exactly the tokens his code does; only a lookup of those three marks in a pretrained
vector file could differ.
"""

from __future__ import annotations

import re

_OUTSIDE_ALPHABET = re.compile(r"[^A-Za-z0-9(),!?'`]")
# One pass over the alternatives gives what his six substitutions in a row give: none of these
# patterns can overlap another, and splitting one off never creates or breaks a match of another.
_CLITIC = re.compile(r"(n't|'s|'ve|'re|'d|'ll)")  # anywhere, as Kim's rules ("it'sa" → "it 'sa")
_MARK = re.compile(r"([,!?()])")
_SPACES = re.compile(r"\s+")


def kim_tokenize(text: str, lower: bool = True) -> list[str]:
    """Kim's `clean_str`, then a split on spaces.

    `"It's not good, isn't it?"` → `["it", "'s", "not", "good", ",", "is", "n't", "it", "?"]`;
    `lower=False` is his TREC setting (case kept)."""
    text = _OUTSIDE_ALPHABET.sub(" ", text)
    text = _CLITIC.sub(r" \1", text)
    text = _MARK.sub(r" \1 ", text)
    text = _SPACES.sub(" ", text).strip()
    if lower:
        text = text.lower()
    return text.split(" ") if text else []


def kim_sst_tokenize(text: str, lower: bool = True) -> list[str]:
    """Kim's `clean_str_sst`, then a split on spaces: characters outside his alphabet become spaces,
    nothing else is split (SST comes tokenized). `"wo n't -- it's (a) film."` → `["wo", "n't", "it's",
    "(a)", "film"]`."""
    text = _SPACES.sub(" ", _OUTSIDE_ALPHABET.sub(" ", text)).strip()
    if lower:
        text = text.lower()
    return text.split(" ") if text else []


def whitespace_tokenize(text: str, lower: bool = False) -> list[str]:
    """Split on runs of whitespace only."""
    return (text.lower() if lower else text).split()


TOKENIZERS = {"kim": kim_tokenize, "kim-sst": kim_sst_tokenize, "whitespace": whitespace_tokenize}

# --clean NAME → (tokenizer, lower). A model file written before `--clean` existed stores only the
# tokenizer and `lower` ("kim", True): that is `kim`, the default, so such files read text as before.
CLEANINGS = {
    "kim": ("kim", True),
    "kim-keep-case": ("kim", False),
    "kim-sst": ("kim-sst", True),
    "none": ("whitespace", False),
}


def get_tokenizer(name: str):
    try:
        return TOKENIZERS[name]
    except KeyError:
        raise ValueError(f"Unknown tokenizer {name!r}; choose one of {sorted(TOKENIZERS)}.") from None


def cleaning(name: str) -> tuple[str, bool]:
    """`--clean` name → (tokenizer, lower)."""
    try:
        return CLEANINGS[name]
    except KeyError:
        raise ValueError(f"Unknown cleaning {name!r}; choose one of {', '.join(CLEANINGS)}.") from None


def cleaning_name(tokenizer: str, lower: bool) -> str | None:
    """(tokenizer, lower) → its `--clean` name, or None for a pair no name stands for."""
    for name, pair in CLEANINGS.items():
        if pair == (tokenizer, bool(lower)):
            return name
    return None
