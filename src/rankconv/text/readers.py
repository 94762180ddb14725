"""Read labelled sentences from files: detect the layout, decode carefully, and report every line skipped.

`read_dataset` accepts files or folders and understands five layouts:

* ``one-file-per-class``: two or more files of plain sentences, one per line; each file is a class,
  named by the file suffix when the files share a stem (``rt-polarity.pos`` → ``pos``), else by the
  file stem (``positive.txt`` → ``positive``).
* ``label-text``: a label, then a tab or a space, then the text (TREC, SST).
* ``fasttext``: ``__label__x`` tokens, then the text.
* ``csv`` / ``tsv``: a header row naming a text column and a label column.

Files are decoded from bytes in one go so that a decoding error can name the line and the byte offset;
line breaks are ``\\n``, ``\\r\\n`` or ``\\r`` (nothing else: Latin-1 0x85 is text, not a break);
trailing spaces and tabs are removed and the text is otherwise kept as it is (tokenizing happens
elsewhere). Whatever is skipped is counted in `Dataset.report`, with line numbers.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LAYOUTS", "DataError", "Dataset", "Source", "describe", "read_dataset"]

LAYOUTS = ("one-file-per-class", "label-text", "fasttext", "csv", "tsv")

# Column names recognised when `text_column` / `label_column` are not given, best first. A header
# name matches when it equals one of these or contains one as a word ("review_text", "Class Label").
TEXT_COLUMN_NAMES = ("text", "sentence", "review", "content", "document", "comment", "utterance", "tweet", "body")
LABEL_COLUMN_NAMES = ("label", "class", "category", "target", "sentiment", "polarity")

# label-text detection: at most this many labels ...
MAX_LABELS = 50
# ... covering at least this share of the non-empty lines ...
LABEL_COVERAGE = 0.95
# ... with at least this many lines per label on average (the label set is much smaller than the file).
MIN_LINES_PER_LABEL = 5
# fastText detection: at least this share of the non-empty lines starts with "__label__".
FASTTEXT_SHARE = 0.5
FASTTEXT_PREFIX = "__label__"
# Words that start English sentences but are never class labels: a file whose lines mostly start with
# "the" or "a" is plain text, not label-text.
_SENTENCE_STARTERS = frozenset(
    "a an the i it it's this that these those he she we they you in on of and but or if as at for to with "
    "there his her my our their its is was".split()
)

_MAX_LINE_NUMBERS = 10
_TRAILING = " \t\f\v"
_BREAK = re.compile(r"\r\n|\r|\n")
_LABEL_SPLIT = re.compile(r"[ \t]")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_END_OF_FILE = "\ue000end of file\ue000"
_IGNORED_FILE = re.compile(r"^(readme|license|licence)", re.IGNORECASE)


class DataError(ValueError):
    """A data set cannot be read as asked; the message says which file, which line and what to do."""


@dataclass(frozen=True)
class Source:
    """One file that was read: its layout, how many lines it has and how many texts were kept."""

    path: Path
    layout: str
    lines: int
    kept: int


@dataclass
class Dataset:
    """Texts with their labels (parallel lists), the layout they were read as, and what happened."""

    texts: list[str]
    labels: list[str]
    layout: str
    sources: list[Source] = field(default_factory=list)
    report: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, in natural order ("2" before "10")."""
        return sorted(set(self.labels), key=_natural_key)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {label: counts[label] for label in self.classes}


def describe(dataset: Dataset) -> str:
    """The report, then a class-count line such as "2 classes: neg 5,331, pos 5,331"."""
    counts = dataset.class_counts()
    summary = ", ".join(f"{label} {count:,}" for label, count in counts.items())
    noun = "class" if len(counts) == 1 else "classes"
    return "\n".join([*dataset.report, f"{len(counts)} {noun}: {summary}"])


def read_dataset(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    encoding: str = "utf-8",
    text_column: str | None = None,
    label_column: str | None = None,
    layout: str | None = None,
) -> Dataset:
    """Read labelled texts from files and/or folders, detecting their layout unless `layout` is given.

    A folder stands for its regular files, sorted by name, without hidden files and README*/LICENSE*.
    `text_column` / `label_column` pick CSV/TSV columns (case-insensitively) and imply a CSV/TSV layout.
    Raises `DataError` (a `ValueError`) with one sentence saying what is wrong and where.
    """
    _check_encoding(encoding)
    forced = _normalize_layout(layout)
    if (text_column is not None or label_column is not None) and forced not in (None, "csv", "tsv"):
        raise DataError(f"text_column/label_column apply to the csv and tsv layouts only, not to layout={forced!r}.")
    files, report = _expand_paths(paths)
    names = _display_names(files)
    docs = [_read_text(path, names[path], encoding) for path in files]

    if forced is not None:
        layouts = [forced] * len(docs)
        head = f"layout {forced} (forced with layout={forced!r})"
    elif text_column is not None or label_column is not None:
        layouts = [_table_kind(doc) for doc in docs]
        if len(set(layouts)) > 1:
            looks = "; ".join(f"{doc.name} looks like {kind}" for doc, kind in zip(docs, layouts))
            raise DataError(f"the files do not share one layout ({looks}); pass layout='csv' or layout='tsv'.")
        head = f"layout {layouts[0]} (implied by text_column/label_column)"
    else:
        layouts, head = _detect(docs)

    texts: list[str] = []
    labels: list[str] = []
    sources: list[Source] = []
    body: list[str] = []
    class_names: dict[str, str] = {}
    if layouts[0] == "one-file-per-class":
        named_by, class_names = _file_classes(docs)
        head += f", one class per file, named by the file {named_by}"
    for doc, kind in zip(docs, layouts):
        part = _Part(doc)
        if kind == "one-file-per-class":
            _parse_plain(doc, class_names[doc.name], part)
        elif kind == "label-text":
            _parse_label_text(doc, doc.labels if forced is None else None, part)
        elif kind == "fasttext":
            _parse_fasttext(doc, part)
        else:
            _parse_table(doc, kind, text_column, label_column, part)
        if not part.texts:
            raise DataError(f"{doc.name} has no usable lines: {_skip_summary(part.skips, doc.lines)}.")
        texts += part.texts
        labels += part.labels
        sources.append(Source(doc.path, kind, len(doc.lines), len(part.texts)))
        body += doc.notes + part.report()

    counts = Counter(labels)
    if len(counts) < 2:
        (only, count), *_ = counts.items()
        raise DataError(
            f"only one class was found ({only!r}, {_count(count, 'line{s}')}); a classifier needs at least two classes."
        )
    return Dataset(texts, labels, layouts[0], sources, [head, *report, *body])


# ----------------------------------------------------------------------------------------------------
# Paths and decoding


@dataclass
class _Doc:
    path: Path
    name: str
    lines: list[tuple[str, str]]  # (content, line break) pairs; the break is "" on an unterminated last line
    notes: list[str] = field(default_factory=list)
    labels: set[str] | None = None  # label-text: the labels detection settled on

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()


def _check_encoding(encoding: str) -> None:
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise DataError(f"unknown encoding {encoding!r}; try 'utf-8' or 'latin-1'.") from None
    if not getattr(info, "_is_text_encoding", True):
        raise DataError(f"{encoding!r} is not a text encoding; try 'utf-8' or 'latin-1'.")


def _ascii_compatible(encoding: str) -> bool:
    """Whether ASCII characters (and so line breaks) are single bytes of the same value."""
    probe = '\n\r\t az09,"'
    try:
        return probe.encode(encoding).endswith(probe.encode("ascii"))
    except (UnicodeError, LookupError):
        return False


def _normalize_layout(layout: str | None) -> str | None:
    if layout is None:
        return None
    name = re.sub(r"[\s_]+", "-", str(layout).strip().lower())
    if name not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}.")
    return name


def _expand_paths(paths) -> tuple[list[Path], list[str]]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    given = [Path(os.fsdecode(p)) for p in paths]
    if not given:
        raise DataError("no files were given; pass at least one file or folder.")
    files: list[Path] = []
    notes: list[str] = []
    for path in given:
        if path.is_dir():
            found, ignored = [], []
            for entry in sorted(path.iterdir()):
                if entry.name.startswith("."):
                    continue  # hidden files are not data, and not worth a note
                if entry.is_file() and not _IGNORED_FILE.match(entry.name):
                    found.append(entry)
                else:
                    ignored.append(entry.name + ("/" if entry.is_dir() else ""))
            if not found:
                raise DataError(f"folder {path} holds no data files (hidden files and README*/LICENSE* are ignored).")
            note = f"folder {path}: {_count(len(found), 'file{s}')}"
            notes.append(note + (f" (ignored {', '.join(ignored)})" if ignored else ""))
            files += found
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise DataError(f"{path} is neither a regular file nor a folder.")
        else:
            raise DataError(f"no such file or folder: {path}.")
    unique: list[Path] = []
    seen: set[Path] = set()
    for path in files:
        key = path.resolve()
        if key in seen:
            notes.append(f"{path} was given twice; it is read once")
        else:
            seen.add(key)
            unique.append(path)
    return unique, notes


def _display_names(files: list[Path]) -> dict[Path, str]:
    """File names as the report shows them: the bare name when unique, else the path."""
    counts = Counter(path.name for path in files)
    return {path: path.name if counts[path.name] == 1 else str(path) for path in files}


def _read_text(path: Path, name: str, encoding: str) -> _Doc:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}.") from None
    if not data:
        raise DataError(f"{name} is empty; a data file needs at least one line of text.")
    notes = []
    start = 0
    if data.startswith(codecs.BOM_UTF8) and _ascii_compatible(encoding):
        start = len(codecs.BOM_UTF8)
        is_utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
        hint = "" if is_utf8 else f" (the file is probably UTF-8, yet it is read as {encoding})"
        notes.append(f"removed the UTF-8 byte-order mark at the start of {name}{hint}")
    try:
        text = data[start:].decode(encoding)
    except UnicodeDecodeError as err:
        raise _decode_error(data, start, err, name, encoding) from None
    if text.startswith("\ufeff"):
        text = text[1:]
        notes.append(f"removed the byte-order mark at the start of {name}")
    lines = []
    pos = 0
    for match in _BREAK.finditer(text):
        lines.append((text[pos : match.start()], match.group()))
        pos = match.end()
    if pos < len(text):
        lines.append((text[pos:], ""))
    if not any(content.rstrip(_TRAILING) for content, _ in lines):
        raise DataError(f"{name} has no text: all its {_count(len(lines), 'line{s}')} are empty.")
    return _Doc(path, name, lines, notes)


def _decode_error(data: bytes, start: int, err: UnicodeDecodeError, name: str, encoding: str) -> DataError:
    offset = start + err.start
    before = data[start:offset].decode(encoding, errors="replace")
    line = len(_BREAK.findall(before)) + 1
    where = f"at byte offset {offset:,} of the file"
    if _ascii_compatible(encoding):
        line_start = max(data.rfind(b"\n", 0, offset), data.rfind(b"\r", 0, offset)) + 1
        where += f", offset {offset - max(line_start, start):,} within the line"
    return DataError(
        f"cannot decode {name} as {encoding}: line {line:,} has the byte 0x{data[offset]:02x} {where}; "
        "if the file is Latin-1 or Windows-1252, use --encoding latin-1 (encoding='latin-1' in Python)."
    )


# ----------------------------------------------------------------------------------------------------
# Detection


def _content_lines(doc: _Doc) -> list[str]:
    return [text for text in (content.rstrip(_TRAILING) for content, _ in doc.lines) if text]


def _split_label(line: str) -> tuple[str, str]:
    """`"DESC:manner How did ..."` → `("DESC:manner", "How did ...")`: the first tab or space separates."""
    line = line.lstrip(" \t")
    parts = _LABEL_SPLIT.split(line, maxsplit=1)
    return parts[0], (parts[1].lstrip(" \t") if len(parts) > 1 else "")


def _table_kind(doc: _Doc) -> str:
    if doc.suffix == ".csv":
        return "csv"
    if doc.suffix in (".tsv", ".tab"):
        return "tsv"
    return "tsv" if "\t" in _content_lines(doc)[0] else "csv"


def _header_guess(doc: _Doc) -> str | None:
    """csv/tsv when the first line is a header naming both a text column and a label column."""
    first = _content_lines(doc)[0]
    kind = "tsv" if "\t" in first else "csv"
    header = next(csv.reader([first], delimiter="\t" if kind == "tsv" else ","), [])
    if len(header) < 2:
        return None
    text = _guess_column(header, TEXT_COLUMN_NAMES, exclude=None)
    label = _guess_column(header, LABEL_COLUMN_NAMES, exclude=text)
    return kind if text is not None and label is not None else None


def _label_set(lines: list[str]) -> set[str] | None:
    """The labels when the lines look like "label text": a few repeated first words cover nearly all lines.
    When every line starts with an integer (SST's 0-4, Subj's 0/1), every one of them is a label, also
    one that occurs once (a small test file may hold a single sentence of a class)."""
    counts = Counter(_split_label(line)[0] for line in lines)
    if (
        2 <= len(counts) <= MAX_LABELS
        and len(counts) * MIN_LINES_PER_LABEL <= len(lines)
        and all(_INTEGER.fullmatch(label) for label in counts)
    ):
        return set(counts)
    repeated = [label for label, count in counts.most_common() if count >= 2][:MAX_LABELS]
    covered = sum(counts[label] for label in repeated)
    if len(repeated) < 2 or covered < LABEL_COVERAGE * len(lines):
        return None
    if len(repeated) * MIN_LINES_PER_LABEL > len(lines):
        return None
    if any(label.lower() in _SENTENCE_STARTERS for label in repeated):
        return None
    return set(repeated)


def _guess(doc: _Doc) -> tuple[str, str]:
    """(layout the file looks like, why). "plain" stands for a file of unlabelled sentences."""
    if doc.suffix == ".csv":
        return "csv", "its name ends in .csv"
    if doc.suffix in (".tsv", ".tab"):
        return "tsv", f"its name ends in {doc.suffix}"
    lines = _content_lines(doc)
    fasttext = sum(line.lstrip(" \t").startswith(FASTTEXT_PREFIX) for line in lines)
    if fasttext >= FASTTEXT_SHARE * len(lines):
        return "fasttext", f"{fasttext:,} of its {_count(len(lines), 'line{s}')} start with {FASTTEXT_PREFIX}"
    kind = _header_guess(doc)
    if kind is not None:
        return kind, "its first line is a header naming a text column and a label column"
    labels = _label_set(lines)
    if labels is not None:
        doc.labels = labels
        return "label-text", f"{len(labels)} distinct first words start nearly all its {len(lines):,} lines"
    return "plain", "its lines are plain sentences"


def _detect(docs: list[_Doc]) -> tuple[list[str], str]:
    guesses = [_guess(doc) for doc in docs]
    kinds = {kind for kind, _ in guesses}
    if len(kinds) > 1:
        looks = "; ".join(f"{doc.name} looks like {_layout_name(kind)}" for doc, (kind, _) in zip(docs, guesses))
        raise DataError(f"the files do not share one layout ({looks}); pass layout=... to read them all one way.")
    kind, why = guesses[0]
    if kind == "plain":
        if len(docs) == 1:
            raise DataError(
                f"{docs[0].name} holds plain sentences without labels; give one such file per class "
                "(at least two files), or pass layout=... if it does have labels."
            )
        layouts = ["one-file-per-class"] * len(docs)
        return layouts, f"detected layout one-file-per-class: {len(docs)} files of plain sentences"
    if len(docs) == 1:
        return [kind], f"detected layout {kind} in {docs[0].name}: {why}"
    return [kind] * len(docs), f"detected layout {kind} in all {len(docs)} files"


def _layout_name(kind: str) -> str:
    return "plain sentences (one-file-per-class)" if kind == "plain" else kind


def _file_classes(docs: list[_Doc]) -> tuple[str, dict[str, str]]:
    """("suffix" or "stem", class name per file name): `rt-polarity.pos` → "pos", `positive.txt` → "positive"."""
    suffixes = {doc.path.suffix[1:] for doc in docs}
    if len({doc.path.stem for doc in docs}) == 1 and "" not in suffixes and len(suffixes) >= 2:
        return "suffix", {doc.name: doc.path.suffix[1:] for doc in docs}
    return "stem", {doc.name: doc.path.stem for doc in docs}


# ----------------------------------------------------------------------------------------------------
# Parsing


class _Part:
    """What one file yields: texts, labels, skipped line numbers by reason, and notes."""

    def __init__(self, doc: _Doc):
        self.doc = doc
        self.texts: list[str] = []
        self.labels: list[str] = []
        self.skips: dict[str, list[int]] = {}  # reason ("{s}" marks the plural) → line numbers
        self.flags: dict[str, list[int]] = {}  # notes about lines that were kept
        self.read_as = ""  # e.g. " as class 'pos'"
        self.extra: list[str] = []

    def add(self, text: str, label: str) -> None:
        self.texts.append(text)
        self.labels.append(label)

    def skip(self, reason: str, line: int) -> None:
        self.skips.setdefault(reason, []).append(line)

    def flag(self, note: str, line: int) -> None:
        self.flags.setdefault(note, []).append(line)

    def report(self) -> list[str]:
        name = self.doc.name
        total = len(self.doc.lines)
        kept = f"; kept {len(self.texts):,}" if self.skips else ""
        out = [f"read {_count(total, 'line{s}')} from {name}{self.read_as}{kept}"]
        for reason, lines in self.skips.items():
            out.append(f"skipped {_count(len(lines), reason)} (file {name}: {_line_list(lines)})")
        for note, lines in self.flags.items():
            out.append(f"{_count(len(lines), note)} (file {name}: {_line_list(lines)})")
        return out + self.extra


def _parse_plain(doc: _Doc, label: str, part: _Part) -> None:
    part.read_as = f" as class {label!r}"
    for number, (content, _) in enumerate(doc.lines, 1):
        text = content.rstrip(_TRAILING)
        if text:
            part.add(text, label)
        else:
            part.skip("empty line{s}", number)


def _parse_label_text(doc: _Doc, labels: set[str] | None, part: _Part) -> None:
    """`labels` None (forced layout) takes every first word as a label."""
    for number, (content, _) in enumerate(doc.lines, 1):
        line = content.rstrip(_TRAILING)
        if not line:
            part.skip("empty line{s}", number)
            continue
        label, text = _split_label(line)
        if labels is not None and label not in labels:
            part.skip("line{s} without a label", number)
        elif not text:
            part.skip("line{s} with a label but no text", number)
        else:
            part.add(text, label)
    found = len(set(part.labels))
    part.read_as = f" as label-text ({found} {'label' if found == 1 else 'labels'})"
    if "line{s} without a label" in part.skips:
        part.extra.append(
            f"(in {doc.name}, a line counts as unlabelled when its first word is not one of the "
            f"{len(labels or ())} repeated first words; pass layout='label-text' to take every first word as a label)"
        )


def _parse_fasttext(doc: _Doc, part: _Part) -> None:
    part.read_as = " as fasttext"
    for number, (content, _) in enumerate(doc.lines, 1):
        line = content.rstrip(_TRAILING)
        if not line:
            part.skip("empty line{s}", number)
            continue
        rest = line.lstrip(" \t")
        found = []
        while rest.startswith(FASTTEXT_PREFIX):
            token, *tail = re.split(r"[ \t]+", rest, maxsplit=1)
            found.append(token[len(FASTTEXT_PREFIX) :])
            rest = tail[0] if tail else ""
        if not found or not found[0]:
            part.skip("line{s} without a label", number)
        elif not rest:
            part.skip("line{s} with a label but no text", number)
        else:
            if len(found) > 1:
                part.flag("line{s} with several labels (the first was taken)", number)
            part.add(rest, found[0])


def _find_column(header: list[str], wanted: str, role: str, name: str) -> int:
    if wanted in header:
        return header.index(wanted)
    folded = [i for i, column in enumerate(header) if column.strip().casefold() == wanted.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    columns = ", ".join(repr(column) for column in header)
    if folded:
        raise DataError(f"{role} column {wanted!r} matches several columns of {name} ({columns}); name it exactly.")
    raise DataError(f"{role} column {wanted!r} is not in {name}; its columns are {columns}.")


def _singulars(word: str) -> set[str]:
    forms = {word}
    if word.endswith("ies"):
        forms.add(word[:-3] + "y")
    if word.endswith("es"):
        forms.add(word[:-2])
    if word.endswith("s"):
        forms.add(word[:-1])
    return forms


def _guess_column(header: list[str], names: tuple[str, ...], exclude: int | None) -> int | None:
    """The column whose name is one of `names` (best first), or holds one as a word ("review_text")."""
    best: tuple[int, int, int] | None = None
    for i, column in enumerate(header):
        if i == exclude:
            continue
        folded = column.strip().casefold()
        whole = _singulars(folded)
        words = set().union(*(_singulars(word) for word in re.split(r"[^0-9a-z]+", folded) if word))
        for rank, candidate in enumerate(names):
            if candidate in whole or candidate in words:
                score = (0 if candidate in whole else 1, rank, i)
                if best is None or score < best:
                    best = score
    return None if best is None else best[2]


def _parse_table(doc: _Doc, kind: str, text_column: str | None, label_column: str | None, part: _Part) -> None:
    delimiter = "\t" if kind == "tsv" else ","
    # TSV fields are taken literally (no quoting): a sentence that opens with a quote mark must not
    # swallow the lines after it. CSV follows RFC 4180: quoted fields may hold commas and line breaks.
    quoting = csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL
    # A sentinel line after the last one tells a quote left open at the end of the file (which the csv
    # module would silently close) from a quoted field that ends there.
    source = [content + (end or "\n") for content, end in doc.lines] + [_END_OF_FILE + "\n"]
    reader = csv.reader(source, delimiter=delimiter, quoting=quoting)
    header: list[str] | None = None
    text_at = label_at = 0
    previous = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise DataError(
                f"cannot parse {doc.name} as {kind} at line {previous + 1:,}: {err} (check for an unbalanced quote)."
            ) from None
        first, previous = previous + 1, reader.line_num
        if row == [_END_OF_FILE]:
            break
        if any(_END_OF_FILE in cell for cell in row):
            raise DataError(
                f"{doc.name} has a quote that is never closed: the {kind} row at line {first:,} runs to the end of the file."
            )
        if not any(cell.strip() for cell in row):
            for number in range(first, previous + 1):
                part.skip("empty line{s}", number)
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            text_at, label_at = _choose_columns(header, text_column, label_column, doc.name)
            part.read_as = f" as {kind} (text column {header[text_at]!r}, label column {header[label_at]!r}; line {first} is the header)"
            continue
        if previous > first:
            part.flag("row{s} spanning several lines (their line breaks are kept in the text)", first)
        if len(row) <= max(text_at, label_at):
            part.skip("row{s} with too few fields", first)
            continue
        text = row[text_at]
        if len(row) > len(header):
            if text_at != len(header) - 1:
                part.skip("row{s} with more fields than the header", first)
                continue
            text = delimiter.join(row[text_at:])
            part.flag(
                f"row{{s}} with more fields than the header (the extra {kind} fields were joined into the text)", first
            )
        label = row[label_at].strip()
        text = _BREAK.sub("\n", text).rstrip(_TRAILING + "\n")
        if not label:
            part.skip("row{s} without a label", first)
        elif not text.strip():
            part.skip("row{s} with an empty text", first)
        else:
            part.add(text, label)


def _choose_columns(header: list[str], text_column: str | None, label_column: str | None, name: str):
    columns = ", ".join(repr(column) for column in header)
    text_at = None if text_column is None else _find_column(header, text_column, "text", name)
    label_at = None if label_column is None else _find_column(header, label_column, "label", name)
    if text_at is None:
        text_at = _guess_column(header, TEXT_COLUMN_NAMES, exclude=label_at)
        if text_at is None:
            raise DataError(f"cannot tell which column of {name} holds the text ({columns}); pass text_column=....")
    if label_at is None:
        label_at = _guess_column(header, LABEL_COLUMN_NAMES, exclude=text_at)
        if label_at is None:
            raise DataError(f"cannot tell which column of {name} holds the label ({columns}); pass label_column=....")
    if text_at == label_at:
        raise DataError(f"the text and the label of {name} cannot both come from column {header[text_at]!r}.")
    return text_at, label_at


# ----------------------------------------------------------------------------------------------------
# Wording


def _count(n: int, phrase: str) -> str:
    """`_count(3, "empty line{s}")` → "3 empty lines"; `{s}` marks where the plural goes."""
    return f"{n:,} " + phrase.format(s="" if n == 1 else "s")


def _line_list(numbers: list[int]) -> str:
    shown = ", ".join(f"{n:,}" for n in numbers[:_MAX_LINE_NUMBERS])
    more = len(numbers) - _MAX_LINE_NUMBERS
    word = "line" if len(numbers) == 1 else "lines"
    return f"{word} {shown}" + (f" and {more:,} more" if more > 0 else "")


def _skip_summary(skips: dict[str, list[int]], lines: list) -> str:
    if not skips:
        return f"none of its {_count(len(lines), 'line{s}')} holds a text"
    return ", ".join(_count(len(numbers), reason) for reason, numbers in skips.items())


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    return [(0, int(piece)) if piece.isdigit() else (1, piece) for piece in re.split(r"(\d+)", text) if piece]
