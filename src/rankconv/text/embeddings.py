"""Pretrained word vectors for the sentence CNN (Kim 2014): loading them and building the embedding matrix.

`load_vectors` reads the three formats pretrained vectors come in:

* **word2vec binary** (``GoogleNews-vectors-negative300.bin``, gensim's
  ``save_word2vec_format(binary=True)``): a ``"<count> <dim>\\n"`` header, then per word its
  bytes up to a space and ``dim`` little-endian float32 values, optionally followed by ``"\\n"``
  (word2vec writes it, gensim does not);
* **word2vec text** (fastText ``.vec`` files too): the same header, then ``"<word> <v1> ... <vdim>"``
  per line;
* **GloVe text**: no header, ``"<word> <v1> ... <vdim>"`` per line, the first line setting the
  dimension; a line with more fields joins its leading ones into the word (some GloVe files have
  words with spaces).

Binary files are read in chunks and each vector is taken with `np.frombuffer`; text lines are
parsed by `np.fromstring`. With a `vocabulary`, only the wanted rows are decoded and kept, so
memory grows with the vocabulary rather than with the file (a 3M-word GoogleNews file is fine).

`embedding_matrix` turns a vocabulary (index 0 padding, index 1 out-of-vocabulary, as in
`rankconv.text.vocabulary`) into the initial embedding weights: rows of words with a pretrained
vector are copied, every other row is drawn from U[-0.25, 0.25] as in Kim's code, and the padding
row is zeros. Without vectors it gives the CNN-rand initialisation.

Problems with a file raise `ValueError` with one sentence naming the file and, for text formats,
the line (byte offsets for encoding errors and binary files).
"""

from __future__ import annotations

import codecs
import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["FORMATS", "WordVectors", "embedding_matrix", "load_vectors"]

FORMATS = ("word2vec-binary", "word2vec-text", "glove")

_HEADER = re.compile(r"\s*([0-9]+)[ \t]+([0-9]+)\s*", re.ASCII)
_SNIFF_BYTES = 1 << 16
_CHUNK_BYTES = 1 << 23
# Bytes that never occur in a text file: C0 controls other than \t \n \v \f \r, and DEL.
_CONTROL = bytes([*range(0, 9), *range(14, 32), 127])
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL)
_ARCHIVES = (
    (re.compile(b"\x1f\x8b"), "gzip-compressed"),
    (re.compile(b"PK\x03\x04"), "a zip archive"),
    (re.compile(b"BZh[1-9]1AY&SY"), "bzip2-compressed"),
)


class _MissingFileError(FileNotFoundError, ValueError):
    """A missing vectors file: a `ValueError` like every other problem here, and a `FileNotFoundError`."""


class WordVectors:
    """Word vectors in file order: ``words[i]`` has the vector ``vectors[i]``.

    Attributes: `words` (list of str), `vectors` (``(n, dim)`` float32 array), `dim`, `index`
    (word → row), `path` and `format` (of the file they came from, or None). ``word in wv``,
    ``wv[word]`` (the row, a view into `vectors`) and ``len(wv)`` work as for a dict.
    """

    __slots__ = ("words", "vectors", "dim", "index", "path", "format")

    def __init__(self, words: Iterable[str], vectors, *, path: str | None = None, format: str | None = None):
        words = list(words)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(
                f"WordVectors needs one row of `vectors` per word: received {len(words)} words and vectors of "
                f"shape {vectors.shape}."
            )
        index = dict(zip(words, range(len(words))))
        if len(index) != len(words):
            duplicate = next(word for position, word in enumerate(words) if index[word] != position)
            raise ValueError(f"WordVectors received the word {duplicate!r} more than once.")
        self.words = words
        self.vectors = vectors
        self.dim = int(vectors.shape[1])
        self.index = index
        self.path = path
        self.format = format

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        try:
            return self.vectors[self.index[word]]
        except KeyError:
            raise KeyError(f"{word!r} has no vector here") from None

    def __iter__(self):
        return iter(self.words)

    def get(self, word: str, default=None):
        """The vector of `word`, or `default` when it has none."""
        row = self.index.get(word)
        return default if row is None else self.vectors[row]

    def __repr__(self) -> str:
        return f"WordVectors({len(self.words)} words, dim={self.dim}, format={self.format!r}, path={self.path!r})"


def load_vectors(
    path,
    vocabulary: Iterable[str] | None = None,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
    limit: int | None = None,
) -> WordVectors:
    """Read pretrained word vectors from a local word2vec (binary or text) or GloVe file.

    Args:
        path: the file (str or path-like). Compressed archives must be extracted first.
        vocabulary: when given, an iterable of words: only their vectors are kept (the others are
            still checked for a well-formed line or record, but their numbers are not parsed).
        format: ``"word2vec-binary"``, ``"word2vec-text"`` or ``"glove"``; None detects it:
            binary when the ``"<count> <dim>"`` header is followed by non-text bytes, word2vec text
            when the first line is two integers, GloVe otherwise. (A tiny binary file whose floats
            happen to be all text bytes needs the explicit format.)
        encoding: of the words (``"utf-8"`` also skips a byte-order mark in text files). In binary
            files with a `vocabulary`, only kept words are decoded.
        limit: read at most this many vectors from the file (counted before the vocabulary
            filter, like gensim's `limit`).

    Returns:
        `WordVectors` in file order. A word repeated in the file keeps its first vector.

    Raises:
        ValueError: naming the file (and the line or byte offset) when it is missing, empty,
            compressed, malformed (wrong number of fields, a non-number, inconsistent dimensions,
            fewer or more vectors than its header declares, a truncated binary record) or not in
            `encoding`.
    """
    path = os.fspath(path)
    if format is not None and format not in FORMATS:
        raise ValueError(
            f"`format` must be None (detect) or one of {', '.join(map(repr, FORMATS))}; received {format!r}."
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1):
        raise ValueError(f"`limit` must be None or a positive integer; received {limit!r}.")
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"Unknown `encoding` {encoding!r}.") from None
    if isinstance(vocabulary, (str, bytes)):
        raise TypeError("`vocabulary` must be an iterable of words, not a single string.")
    wanted = None if vocabulary is None else set(vocabulary)
    if wanted is not None and not all(isinstance(word, str) for word in wanted):
        raise TypeError("`vocabulary` must contain only strings.")
    limit = None if limit is None else int(limit)

    if not os.path.exists(path):
        raise _MissingFileError(f"Word-vector file {path!r} does not exist.")
    if os.path.isdir(path):
        raise ValueError(f"Word-vector file {path!r} is a directory, not a file.")
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head:
        raise ValueError(f"Word-vector file {path!r} is empty.")
    for magic, what in _ARCHIVES:
        if magic.match(head):
            raise ValueError(f"Word-vector file {path!r} is {what}; extract it first.")

    fmt = format or _detect(head)
    if fmt == "word2vec-binary":
        words, vectors = _load_binary(path, wanted, encoding, limit)
    else:
        text_encoding = "utf-8-sig" if codec.name == "utf-8" else encoding
        try:
            words, vectors = _load_text(path, fmt, wanted, text_encoding, limit)
        except UnicodeDecodeError as exc:
            raise _decode_error(path, encoding, exc) from None
    return WordVectors(words, vectors, path=path, format=fmt)


def _detect(head: bytes) -> str:
    """The format of a file that starts with `head`."""
    first, newline, rest = head.removeprefix(codecs.BOM_UTF8).partition(b"\n")
    if not newline or not _HEADER.fullmatch(first.decode("latin-1")):
        return "glove"
    # Any control byte after the header means float32 data; text vectors are digits and spaces.
    return "word2vec-binary" if rest.translate(None, _NOT_CONTROL) else "word2vec-text"


def _parse_header(line: str, path: str, fmt: str) -> tuple[int, int]:
    match = _HEADER.fullmatch(line)
    if match is None:
        shown = line.strip()
        shown = shown if len(shown) <= 40 else shown[:40] + "..."
        raise ValueError(
            f"Line 1 of word-vector file {path!r} should be the '<count> <dim>' header of the {fmt} format but is "
            f"{shown!r} (if the file has no header, it is probably GloVe: format='glove')."
        )
    count, dim = int(match[1]), int(match[2])
    if dim == 0:
        raise ValueError(f"The header of word-vector file {path!r} declares vectors of dimension 0.")
    return count, dim


def _capacity(bounds: Iterable[int | None]) -> int | None:
    """The tightest of the known upper bounds on the number of rows kept (None: no bound)."""
    return min((bound for bound in bounds if bound is not None), default=None)


def _estimate_rows(size: int, first_line: int) -> int:
    """A guess, from the first line's length, at the number of lines of a GloVe file of `size` bytes."""
    return 5 * size // (4 * max(first_line, 1)) + 16


def _grow(rows: np.ndarray) -> None:
    # In place (realloc, often without a copy): no view of the buffer exists while it is being filled.
    rows.resize((2 * rows.shape[0] + 16, rows.shape[1]), refcheck=False)


def _finish(rows: np.ndarray, kept: int) -> np.ndarray:
    if rows.shape[0] != kept:
        rows.resize((kept, rows.shape[1]), refcheck=False)
    return rows


def _load_binary(path: str, wanted: set | None, encoding: str, limit: int | None) -> tuple[list[str], np.ndarray]:
    with open(path, "rb") as f:
        header = f.readline(_SNIFF_BYTES)
        count, dim = _parse_header(header.removeprefix(codecs.BOM_UTF8).decode("latin-1"), path, "word2vec-binary")
        start = f.tell()
        size = os.fstat(f.fileno()).st_size
        n = count if limit is None else min(count, limit)
        record = 4 * dim  # bytes of one vector
        wanted_bytes = None
        if wanted is not None:
            wanted_bytes = {}
            for word in wanted:
                try:
                    encoded = word.encode(encoding)
                except UnicodeEncodeError:
                    continue  # not representable in this file's encoding, so not in it
                wanted_bytes[encoded] = wanted_bytes[b"\n" + encoded] = word
        # Each record takes at least a space and the vector: a bound on the rows, whatever the header says.
        capacity = _capacity((n, None if wanted is None else len(wanted), (size - start) // (record + 1) + 1))
        rows = np.empty((capacity, dim), dtype="<f4")  # filled with the file's bytes as they are
        words: list[str] = []
        index: dict[str, int] = {}
        if n == 0:
            return words, np.empty((0, dim), dtype=np.float32)
        # Chunked reads: memory is the kept rows plus one chunk, whatever the file's size.
        read = f.read
        chunk = max(_CHUNK_BYTES, 2 * (record + 1))
        buffer = read(chunk)
        source = memoryview(buffer)
        size_of_buffer = len(buffer)
        target = memoryview(rows.reshape(-1).view(np.uint8))  # released before `rows` is shrunk
        base = start  # the file offset of buffer[0]
        pos = kept = 0
        for number in range(1, n + 1):
            space = buffer.find(b" ", pos)
            stop = space + 1 + record
            while space < 0 or stop > size_of_buffer:  # the record continues in the next chunk
                more = read(chunk)
                if not more:
                    raise ValueError(
                        f"Word-vector file {path!r} ends early: its header declares {count} vectors of dimension "
                        f"{dim}, but vector {number} (from byte offset {base + pos}) is cut short; the file is "
                        "truncated or the header is wrong."
                    )
                buffer = buffer[pos:] + more
                source = memoryview(buffer)
                size_of_buffer = len(buffer)
                base += pos
                pos = 0
                space = buffer.find(b" ")
                stop = space + 1 + record
            raw = buffer[pos:space]
            if wanted_bytes is None:
                if raw[:1] == b"\n":  # word2vec ends each record with a newline, gensim does not
                    stripped = raw.lstrip(b"\n")
                    pos += len(raw) - len(stripped)
                    raw = stripped
                try:
                    word = raw.decode(encoding)
                except UnicodeDecodeError as exc:
                    if b"\n" in raw or raw.translate(None, _NOT_CONTROL):  # float bytes: the records are misaligned
                        raise ValueError(
                            f"Word {number} of word-vector file {path!r} (at byte offset {base + pos}) contains "
                            f"binary data, so the records do not line up with the header's dimension {dim}; the "
                            "header is wrong or the file is corrupt."
                        ) from None
                    raise ValueError(
                        f"Word {number} of word-vector file {path!r} is not valid {encoding} (byte "
                        f"0x{raw[exc.start]:02x} at byte offset {base + pos + exc.start}); pass "
                        'encoding="latin-1" if the file uses another encoding.'
                    ) from None
            else:
                word = wanted_bytes.get(raw)  # its keys include the words after word2vec's newline
                if word is None and raw.startswith(b"\n\n"):
                    word = wanted_bytes.get(raw.lstrip(b"\n"))
            pos = stop
            if word is None or word in index:
                continue
            target[kept * record : (kept + 1) * record] = source[space + 1 : stop]
            index[word] = kept
            words.append(word)
            kept += 1
        if limit is None or limit > count:
            rest = buffer[pos:] + read(4096)
            if rest.strip():
                raise ValueError(
                    f"Word-vector file {path!r} has {size - base - pos} bytes after the {count} vectors of "
                    f"dimension {dim} that its header declares; the header's count or dimension is wrong."
                )
        target.release()
    return words, _finish(rows, kept).astype(np.float32, copy=False)


def _load_text(
    path: str, fmt: str, wanted: set | None, encoding: str, limit: int | None
) -> tuple[list[str], np.ndarray]:
    fromstring = np.fromstring
    float32 = np.float32
    words: list[str] = []
    index: dict[str, int] = {}
    size = os.path.getsize(path)
    with open(path, encoding=encoding, newline="\n") as f:
        lineno = 0
        count = dim = None
        if fmt == "word2vec-text":
            lineno = 1
            count, dim = _parse_header(f.readline(), path, fmt)
            where = "its header"
        most = _capacity((count, limit))
        spaced_words = fmt == "glove"  # word2vec's words never contain spaces, so extra fields are an error there
        check_extra = count is not None and (limit is None or limit > count)
        rows = None
        read = kept = 0
        for line in f:
            lineno += 1
            s = line.rstrip()
            if not s:
                continue
            if read == most:
                if check_extra:
                    raise ValueError(
                        f"Line {lineno} of word-vector file {path!r} is one vector more than the {count} that its "
                        "header declares; the header's count is wrong."
                    )
                break
            if dim is None:  # GloVe: the first line sets the dimension
                dim = s.count(" ")
                where = f"line {lineno}"
                if dim == 0:
                    raise ValueError(
                        f"Line {lineno} of word-vector file {path!r} has a single field, but a word followed by its "
                        "numbers was expected."
                    )
            if rows is None:
                capacity = _capacity((most, None if wanted is None else len(wanted)))
                if capacity is None:
                    capacity = _estimate_rows(size, len(line))
                # Each number takes at least two characters: a bound on the rows, whatever the header says.
                rows = np.empty((min(capacity, size // (2 * dim) + 1), dim), dtype=np.float32)
            separators = s.count(" ")
            if separators == dim:
                space = s.find(" ")
                word = s[:space]
            elif separators > dim and spaced_words:  # a word with spaces in it (some GloVe files have them)
                word = s.rsplit(" ", dim)[0]
                space = len(word)
            else:
                raise ValueError(
                    f"Line {lineno} of word-vector file {path!r} has {separators + 1} fields, but the vectors have "
                    f"{dim} dimensions (from {where}), so a word and {dim} numbers were expected."
                )
            read += 1
            if (wanted is not None and word not in wanted) or word in index:
                continue
            try:
                vector = fromstring(s[space + 1 :], dtype=float32, sep=" ")
            except ValueError:
                vector = None
            if vector is None or vector.shape[0] != dim:
                raise _number_error(path, lineno, s[space + 1 :], word)
            if kept == rows.shape[0]:
                _grow(rows)
            rows[kept] = vector
            index[word] = kept
            words.append(word)
            kept += 1
        if dim is None:
            raise ValueError(f"Word-vector file {path!r} contains no word vectors.")
        if count is not None and read < most:
            raise ValueError(
                f"Word-vector file {path!r} ends after {read} vectors (line {lineno}), but its header declares "
                f"{count}; the file is truncated or the header is wrong."
            )
    return words, _finish(rows if rows is not None else np.empty((0, dim), np.float32), kept)


def _number_error(path: str, lineno: int, numbers_text: str, word: str) -> ValueError:
    """The error for a line whose fields after the word are not all numbers."""
    first_field = word.count(" ") + 2
    for position, token in enumerate(numbers_text.split(" ")):
        parsed = None
        if token.strip():
            try:
                parsed = np.fromstring(token, dtype=np.float32, sep=" ")
            except ValueError:
                pass
        if parsed is None or parsed.shape[0] != 1:
            shown = token if len(token) <= 30 else token[:30] + "..."
            what = "an empty field (two spaces in a row)" if not token else f"{shown!r}"
            return ValueError(
                f"Line {lineno} of word-vector file {path!r} has {what} where a number was expected "
                f"(field {first_field + position})."
            )
    return ValueError(f"Line {lineno} of word-vector file {path!r} has a field that is not a number.")


def _decode_error(path: str, encoding: str, exc: UnicodeDecodeError) -> ValueError:
    """Locate (by rereading the raw lines) the text that `encoding` could not decode."""
    offset = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as bad:
                return ValueError(
                    f"Line {lineno} of word-vector file {path!r} is not valid {encoding} (byte "
                    f"0x{raw[bad.start]:02x} at byte offset {offset + bad.start}); pass "
                    'encoding="latin-1" if the file uses another encoding.'
                )
            offset += len(raw)
    return ValueError(
        f'Word-vector file {path!r} is not valid {encoding} ({exc.reason}); pass encoding="latin-1" if the file '
        "uses another encoding."
    )


def embedding_matrix(
    vocabulary_words,
    word_vectors: WordVectors | Mapping | None = None,
    dim: int = 300,
    *,
    seed=None,
    padding_index: int | None = 0,
    oov_index: int | None = 1,
    scale: float = 0.25,
) -> tuple[np.ndarray, int]:
    """The initial ``(len(vocabulary_words), dim)`` float32 embedding of Kim's sentence CNN.

    Row ``i`` belongs to ``vocabulary_words[i]``: it is that word's pretrained vector when
    `word_vectors` has one (exact match), otherwise U[-scale, scale] as in Kim's code
    (``np.random.uniform(-0.25, 0.25, dim)``); the padding row and the OOV row are zeros. Every row
    is drawn in order from ``np.random.default_rng(seed)`` before the copies, so a word's random
    row does not depend on which other words have vectors.

    Why a zero OOV row: Kim's code gives a word seen only in test data its own random vector, which
    no training step moves; a shared random one (Keras's OOV row) is the same kind of noise. A zero
    vector adds nothing to any window instead: on MR's ten folds, scoring the same trained models
    both ways, 76.75% against 76.27% (experiments/mr_unknown_words.py). Where training data has
    unknown words (a min_count or max_size), their vector is learned from zero.

    Args:
        vocabulary_words: the words by index (a sequence, or an object with a ``.words`` list such
            as `rankconv.text.vocabulary.Vocabulary`).
        word_vectors: a `WordVectors`, a mapping word → vector, or None for CNN-rand.
        dim: the embedding width; must equal the vectors' dimension.
        seed: for `np.random.default_rng` (an int, None or a Generator).
        padding_index, oov_index: rows that are never looked up (None: no such row).
        scale: half-width of the uniform initialisation.

    Returns:
        ``(matrix, found)`` with `found` the number of rows copied from `word_vectors`.
    """
    words = getattr(vocabulary_words, "words", vocabulary_words)
    if isinstance(words, (str, bytes)):
        raise TypeError("`vocabulary_words` must be a sequence of words, not a single string.")
    words = list(words)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise ValueError(f"`dim` must be a positive integer; received {dim!r}.")
    dim = int(dim)
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"`scale` must be a positive number; received {scale!r}.")
    special = []
    for name, position in (("padding_index", padding_index), ("oov_index", oov_index)):
        if position is None:
            continue
        if isinstance(position, bool) or not isinstance(position, numbers.Integral):
            raise ValueError(f"`{name}` must be None or an integer; received {position!r}.")
        if not 0 <= position < len(words):
            raise ValueError(f"`{name}`={position} is outside the vocabulary of {len(words)} words.")
        special.append(int(position))
    if len(special) == 2 and special[0] == special[1]:
        raise ValueError(f"`padding_index` and `oov_index` must differ; both are {special[0]}.")
    index, vectors = _as_lookup(word_vectors, dim)

    rng = np.random.default_rng(seed)
    matrix = np.empty((len(words), dim), dtype=np.float32)
    block = max(1, (1 << 20) // dim)  # draw in blocks: no float64 copy of a large vocabulary's matrix
    for first in range(0, len(words), block):
        matrix[first : first + block] = rng.uniform(-scale, scale, size=(min(block, len(words) - first), dim))
    found = 0
    if index:
        skip = set(special)
        targets = [i for i, word in enumerate(words) if i not in skip and word in index]
        if targets:
            matrix[targets] = vectors[[index[words[i]] for i in targets]]
        found = len(targets)
    for position in special:  # padding and OOV
        matrix[position] = 0.0
    return matrix, found


def _as_lookup(word_vectors, dim: int) -> tuple[dict, np.ndarray | None]:
    """(word → row, rows) of `word_vectors`, after checking their dimension against `dim`."""
    if word_vectors is None:
        return {}, None
    if isinstance(word_vectors, WordVectors):
        if word_vectors.dim != dim:
            source = f"from {word_vectors.path!r}" if word_vectors.path else "given"
            raise ValueError(
                f"`dim`={dim} does not match the {word_vectors.dim}-dimensional word vectors {source}; pass "
                f"dim={word_vectors.dim}."
            )
        return word_vectors.index, word_vectors.vectors
    if isinstance(word_vectors, Mapping):
        index = {}
        rows = np.empty((len(word_vectors), dim), dtype=np.float32)
        for row, (word, vector) in enumerate(word_vectors.items()):
            vector = np.asarray(vector, dtype=np.float32)
            if vector.shape != (dim,):
                raise ValueError(f"`dim`={dim} does not match the vector of {word!r}, of shape {vector.shape}.")
            rows[row] = vector
            index[word] = row
        return index, rows
    raise TypeError(f"`word_vectors` must be WordVectors, a mapping or None; received {type(word_vectors).__name__}.")
