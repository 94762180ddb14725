"""What the n-gram detectors of a Kim (2014) CNN detect, and why it labelled a sentence as it did.

A Conv1D of width w over word vectors scores every window of w consecutive words: each filter is an
n-gram detector, and max-over-time pooling keeps, per filter, the best-matching window of the sentence.

* `top_ngrams(classifier, texts)` — per filter of every width, the distinct n-grams of `texts` that
  activate it most, and the filter's output-layer weights (which class it votes for).
* `explain(classifier, text)` — for one sentence: the prediction, the n-gram that won each filter's
  max-pooling, each filter's contribution to the predicted class and per-word scores.
* `format_table(...)`, `render_html(...)`, `write_html(path, ...)` — terminal tables and a
  self-contained HTML page (inline CSS, no scripts, nothing fetched).

from rankconv.text import TextClassifier, ngrams
classifier = TextClassifier.load("mr.keras")
print(ngrams.format_table(ngrams.top_ngrams(classifier, sentences, top=5)))
print(ngrams.format_table(ngrams.explain(classifier, "not a good film")))
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rankconv.text.vocabulary import PADDING

__all__ = [
    "Explanation",
    "FilterReport",
    "NGram",
    "NGramContribution",
    "Winner",
    "explain",
    "format_table",
    "render_html",
    "top_ngrams",
    "write_html",
]


# ----------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class NGram:
    """Words under one window (vocabulary words: "<pad>" for padding, "<oov>" for unknown words)."""

    tokens: tuple[str, ...]
    activation: float

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@dataclass
class FilterReport:
    """One filter: its window width, its index within that width's Conv1D, its top n-grams (strongest
    first) and its row of the output layer's kernel (`weights[class]`; times the scale of a
    `Rescaling` between pooling and that layer, e.g. Kim's kept fraction 1 - p, so that a weight
    times the pooled activation is the filter's share of the logit)."""

    width: int
    filter: int
    ngrams: list[NGram]
    weights: dict[str, float]

    @property
    def strongest(self) -> float:
        """The filter's largest activation over the texts (0 for a filter that never fired)."""
        return self.ngrams[0].activation if self.ngrams else 0.0

    @property
    def votes(self) -> dict[str, float]:
        """The weights minus their mean over classes: how a unit of activation moves each class's logit
        relative to the others (softmax ignores what all classes share)."""
        mean = float(np.mean(list(self.weights.values())))
        return {name: weight - mean for name, weight in self.weights.items()}

    @property
    def votes_for(self) -> str:
        """The class this filter pushes up most when it fires."""
        votes = self.votes
        return max(votes, key=votes.get)


@dataclass(frozen=True)
class Winner:
    """The window that won one filter's max-pooling in one sentence.

    `position` is the window's start in the padded id sequence; `start:end` are the sentence's tokens
    it covers (empty when the window lies in padding only); `tokens` is the window as text."""

    width: int
    filter: int
    position: int
    start: int
    end: int
    tokens: tuple[str, ...]
    pooled: float
    contribution: float


@dataclass(frozen=True)
class NGramContribution:
    """The summed contribution of the filters whose max came from one window (same position and width)."""

    width: int
    position: int
    start: int
    end: int
    tokens: tuple[str, ...]
    contribution: float
    filters: tuple[int, ...]

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@dataclass
class Explanation:
    """Why the classifier labelled `text` as `predicted` (see `explain` for the definitions).

    `tokens` are all the sentence's tokens; the model saw the first `seen` of them (the vectorizer cuts
    sentences at `max_tokens`). `word_scores` has one score per token (0 for tokens it did not see).
    `sum(w.contribution for w in winners) + bias == margin`, the predicted class's logit minus the mean
    logit over classes."""

    text: str
    tokens: list[str]
    seen: int
    predicted: str
    probabilities: dict[str, float]
    winners: list[Winner]
    ngrams: list[NGramContribution]
    word_scores: list[float]
    bias: float
    margin: float
    classes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------
# The network's pieces


@dataclass
class _Parts:
    """The pieces of a Kim CNN that the analyses need, found by walking its graph back from "classes"."""

    words: object  # the tensor the Conv1D layers read (word vectors; both channels in multichannel mode)
    convs: list  # Conv1D layers in the order of the features they feed to the output layer
    offsets: list[int]  # where each conv's filters start among the output layer's inputs
    kernel: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)
    classes: list[str]


def _producer(tensor):
    return tensor.node.layer


def _is_feature_scaling(layer) -> bool:
    """A Rescaling that only multiplies (no offset), by one number or one number per feature."""
    return not np.any(layer.offset) and np.ndim(layer.scale) <= 1


def _parts(classifier) -> _Parts:
    model = classifier.model
    try:
        dense = model.get_layer("classes")
    except (ValueError, KeyError):
        dense = None
    if dense is None or not getattr(dense, "_inbound_nodes", None):
        raise ValueError("The model has no output layer named 'classes'; it is not a Kim CNN from rankconv.text.")
    frontier = list(dense._inbound_nodes[0].input_tensors)
    pooled, scale = [], 1.0
    while frontier:
        tensor = frontier.pop(0)
        layer = _producer(tensor)
        kind = type(layer).__name__
        if kind == "GlobalMaxPooling1D":
            pooled.append(tensor)
        elif kind == "Concatenate":
            frontier = list(tensor.node.input_tensors) + frontier
        elif kind == "Dropout":
            frontier.insert(0, tensor.node.input_tensors[0])
        elif kind == "Rescaling" and not pooled and not frontier and _is_feature_scaling(layer):
            # e.g. Kim's non-rescaling dropout: the features reach the output layer scaled by 1 - p
            scale = scale * np.asarray(layer.scale, dtype=np.float64)
            frontier.insert(0, tensor.node.input_tensors[0])
        else:
            raise ValueError(
                f"The output layer reads from layer '{layer.name}' ({kind}); expected max-over-time pooling of "
                "Conv1D n-gram detectors, as built by rankconv.text.kim_cnn."
            )
    convs, offsets, words, offset = [], [], None, 0
    for tensor in pooled:
        source = tensor.node.input_tensors[0]
        conv = _producer(source)
        if type(conv).__name__ != "Conv1D":
            raise ValueError(f"Layer '{conv.name}' feeds max-over-time pooling but is not a Conv1D.")
        if conv.padding != "valid" or tuple(conv.strides) != (1,) or tuple(conv.dilation_rate) != (1,):
            raise ValueError(
                f"Conv1D '{conv.name}' must use padding='valid', strides=1 and dilation_rate=1 for its windows "
                "to be n-grams."
            )
        if words is None:
            words = source.node.input_tensors[0]
        elif source.node.input_tensors[0] is not words:
            raise ValueError("The Conv1D n-gram detectors must all read the same word vectors.")
        convs.append(conv)
        offsets.append(offset)
        offset += conv.filters
    kernel = np.asarray(dense.kernel, dtype=np.float64)
    if np.ndim(scale) == 1 and len(scale) != len(kernel):
        raise ValueError(f"A Rescaling before the output layer has {len(scale)} factors for {len(kernel)} features.")
    kernel = kernel * np.reshape(scale, (-1, 1))  # the scaling folded into the weights, feature by feature
    bias = np.asarray(dense.bias, dtype=np.float64) if getattr(dense, "bias", None) is not None else None
    if kernel.shape != (offset, len(classifier.classes)):
        raise ValueError(
            f"The output layer's kernel has shape {kernel.shape}; expected ({offset}, {len(classifier.classes)}) "
            "(features from the Conv1D filters × classes)."
        )
    if bias is None:
        bias = np.zeros(len(classifier.classes))
    return _Parts(words, convs, offsets, kernel, bias, list(classifier.classes))


def _evaluate(tensor, ids, memo):
    """The value of a symbolic tensor of the model when its input is `ids` (layers called eagerly)."""
    key = id(tensor)
    if key not in memo:
        node = tensor.node
        if type(node.layer).__name__ == "InputLayer":
            memo[key] = ids
        else:
            values = [_evaluate(t, ids, memo) for t in node.input_tensors]
            options = {k: v for k, v in node.arguments.items() if k != "training"}
            argument = values if isinstance(node.inputs, (list, tuple)) else values[0]
            memo[key] = np.asarray(node.layer(argument, **options))
    return memo[key]


def _activations(parts: _Parts, ids: np.ndarray) -> list[np.ndarray]:
    """ReLU activations of every Conv1D, each (batch, positions, filters)."""
    words = _evaluate(parts.words, ids, {})
    return [np.asarray(conv(words)) for conv in parts.convs]


def _width(conv) -> int:
    return int(conv.kernel_size[0])


# ----------------------------------------------------------------------------------------------------
# Top n-grams per filter


def top_ngrams(classifier, texts: Sequence[str], top: int = 10, batch_size: int = 256) -> list[FilterReport]:
    """For every filter of every window width: the `top` distinct n-grams of `texts` that activate it
    most, strongest first, and the filter's output-layer weights.

    An n-gram is the w vocabulary ids under a window, shown as their words: "<pad>" marks padding (only
    in windows that overlap a sentence's edge), "<oov>" a word outside the vocabulary (the model cannot
    tell unknown words apart). Windows of padding only, and activations of 0 (ReLU off), are not
    reported, so a filter that never fires has no n-grams. Texts are processed `batch_size` at a time;
    memory stays bounded by one batch's activations plus `top` candidates per filter.
    """
    if top < 1:
        raise ValueError(f"`top` must be at least 1; received {top}.")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1; received {batch_size}.")
    parts = _parts(classifier)
    texts = list(texts)
    words = classifier.vectorizer.vocabulary.words
    # best[c][f]: {id tuple: largest activation seen}, pruned to the `top` largest after every batch
    best = [[{} for _ in range(conv.filters)] for conv in parts.convs]
    for begin in range(0, len(texts), batch_size):
        ids = classifier.vectorizer(texts[begin : begin + batch_size])
        for c, (conv, acts) in enumerate(zip(parts.convs, _activations(parts, ids))):
            _merge_batch(best[c], ids, acts, _width(conv), top)
    reports = []
    for c, (conv, offset) in enumerate(zip(parts.convs, parts.offsets)):
        for f in range(conv.filters):
            ranked = sorted(best[c][f].items(), key=lambda item: (-item[1], item[0]))[:top]
            reports.append(
                FilterReport(
                    width=_width(conv),
                    filter=f,
                    ngrams=[NGram(tuple(words[i] for i in key), float(value)) for key, value in ranked],
                    weights={name: float(w) for name, w in zip(parts.classes, parts.kernel[offset + f])},
                )
            )
    return reports


def _merge_batch(best: list[dict], ids: np.ndarray, acts: np.ndarray, width: int, top: int) -> None:
    """Fold one batch into the per-filter candidates. Keeping each batch's `top` distinct n-grams is
    exact: an n-gram in the overall top k is in the top k of the batch where it reaches its maximum."""
    batch, positions, filters = acts.shape
    windows = np.lib.stride_tricks.sliding_window_view(ids, width, axis=1)[:, :positions]  # (batch, positions, w)
    windows = windows.reshape(-1, width)
    acts = acts.reshape(-1, filters)
    real = windows.any(axis=1)  # drop windows of padding only
    windows, acts = windows[real], acts[real]
    if not len(windows):
        return
    unique, inverse = np.unique(windows, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    order = np.argsort(inverse, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
    per_ngram = np.maximum.reduceat(acts[order], starts, axis=0)  # (distinct n-grams, filters)
    keep = min(top, len(unique))
    for f in range(filters):
        column = per_ngram[:, f]
        chosen = np.argpartition(-column, keep - 1)[:keep] if keep < len(column) else np.arange(len(column))
        candidates = best[f]
        for u in chosen:
            value = float(column[u])
            if value <= 0:
                continue
            key = tuple(int(i) for i in unique[u])
            if value > candidates.get(key, 0.0):
                candidates[key] = value
        if len(candidates) > top:
            kept = sorted(candidates.items(), key=lambda item: (-item[1], item[0]))[:top]
            candidates.clear()
            candidates.update(kept)


# ----------------------------------------------------------------------------------------------------
# One sentence


def explain(classifier, text: str) -> Explanation:
    """Why `classifier` labels `text` as it does.

    For each filter (width w, index f), the winner is the window at the position where its ReLU
    activation is largest — the one max-over-time pooling keeps — and its pooled value is that
    activation. With W the output layer's kernel (one row per filter, one column per class) and c the
    predicted class, the filter's **contribution** is

        contribution = pooled_value * (W[f, c] - mean over classes k of W[f, k])

    i.e. how much the filter raises c's logit relative to the average class (softmax depends only on
    such differences). Contributions plus `bias` (b[c] - mean b) add up to `margin`, c's logit minus the
    mean logit. Positive contributions push toward c, negative ones away from it. (Dropout is off at
    prediction time, so it plays no part.)

    `ngrams` groups the filters whose max came from the same window (same width and position), summing
    their contributions, sorted by absolute contribution; filters that did not fire anywhere in the
    sentence (pooled value 0, so every position ties and contributes 0) are left out of it. `winners`
    lists every filter, with its window as text (the sentence's own words, "<pad>" for padding). `word_scores[i]` is the sum of the
    contributions of the filters whose winning window covers token i (each window counts fully for each
    of its words), for colouring; tokens cut off by `max_tokens` score 0.
    """
    if not isinstance(text, str):
        raise TypeError(f"explain() takes one text (a string); received {type(text).__name__}.")
    parts = _parts(classifier)
    vectorizer = classifier.vectorizer
    tokens = vectorizer.tokens(text)
    seen = min(len(tokens), vectorizer.max_tokens)
    ids = vectorizer([text])
    winners, features = [], []
    for conv, acts in zip(parts.convs, _activations(parts, ids)):
        width = _width(conv)
        acts = acts[0]
        positions = acts.argmax(axis=0)
        pooled = acts.max(axis=0).astype(np.float64)
        features.append(pooled)
        for f in range(conv.filters):
            winners.append((width, f, int(positions[f]), float(pooled[f])))
    features = np.concatenate(features)
    logits = features @ parts.kernel + parts.bias
    shifted = np.exp(logits - logits.max())
    probabilities = shifted / shifted.sum()
    c = int(np.argmax(logits))
    votes = parts.kernel[:, c] - parts.kernel.mean(axis=1)
    pad = vectorizer.pad

    def window(position, width):
        start = min(max(position - pad, 0), seen)
        end = min(max(position + width - pad, 0), seen)
        shown = tuple(tokens[i - pad] if 0 <= i - pad < seen else PADDING for i in range(position, position + width))
        return start, end, shown

    results = []
    for k, (width, f, position, value) in enumerate(winners):
        start, end, shown = window(position, width)
        results.append(Winner(width, f, position, start, end, shown, value, float(value * votes[k])))
    groups: dict[tuple[int, int], list[Winner]] = {}
    for winner in results:
        if winner.pooled <= 0:  # the filter did not fire anywhere: no window won, nothing contributed
            continue
        groups.setdefault((winner.width, winner.position), []).append(winner)
    grouped = [
        NGramContribution(
            width=width,
            position=position,
            start=members[0].start,
            end=members[0].end,
            tokens=members[0].tokens,
            contribution=float(sum(m.contribution for m in members)),
            filters=tuple(m.filter for m in members),
        )
        for (width, position), members in groups.items()
    ]
    grouped.sort(key=lambda g: (-abs(g.contribution), g.width, g.position))
    scores = [0.0] * len(tokens)
    for group in grouped:
        for i in range(group.start, group.end):
            scores[i] += group.contribution
    return Explanation(
        text=text,
        tokens=tokens,
        seen=seen,
        predicted=parts.classes[c],
        probabilities={name: float(p) for name, p in zip(parts.classes, probabilities)},
        winners=results,
        ngrams=grouped,
        word_scores=scores,
        bias=float(parts.bias[c] - parts.bias.mean()),
        margin=float(logits[c] - logits.mean()),
        classes=list(parts.classes),
    )


# ----------------------------------------------------------------------------------------------------
# Terminal tables


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        out = [cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(cells, widths, right)]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _vote_text(report: FilterReport) -> str:
    name = report.votes_for
    return f"{name} {report.votes[name]:+.3f}"


def format_table(item, filters: int | None = None, ngrams: int | None = None) -> str:
    """A terminal table of `top_ngrams` reports or of one `explain` result.

    Reports: one block per window width, filters sorted by their strongest activation (at most
    `filters` per width), each with its n-grams (at most `ngrams`) and the class it votes for (the
    class whose centred weight is largest, with that weight). An explanation: the prediction, then the
    winning n-grams with the filters that chose them and their contributions (at most `ngrams` rows).
    """
    if isinstance(item, Explanation):
        return _explanation_table(item, ngrams)
    reports = list(item)
    if not all(isinstance(r, FilterReport) for r in reports):
        raise TypeError("format_table takes a list of FilterReport (from top_ngrams) or an Explanation (from explain).")
    blocks = []
    for width, shown, total in _shown_by_width(reports, filters, ngrams):
        rows = []
        for report, listed in shown:
            if not listed:
                rows.append([str(width), str(report.filter), "(never fires)", "", _vote_text(report)])
            for n, gram in enumerate(listed):
                first = n == 0
                rows.append(
                    [
                        str(width) if first else "",
                        str(report.filter) if first else "",
                        gram.text,
                        f"{gram.activation:.3f}",
                        _vote_text(report) if first else "",
                    ]
                )
        title = f"window width {width}: {len(shown)} of {total} filters, by strongest activation"
        table = _aligned(
            ["width", "filter", "n-gram", "activation", "votes for"], rows, [True, True, False, True, False]
        )
        blocks.append(title + "\n" + table)
    return "\n\n".join(blocks)


def _explanation_table(explanation: Explanation, limit: int | None) -> str:
    probabilities = "  ".join(f"{name}={p:.4f}" for name, p in explanation.probabilities.items())
    head = [f"{explanation.text}", f"  predicted {explanation.predicted}  ({probabilities})"]
    if explanation.seen < len(explanation.tokens):
        head.append(f"  (the model saw the first {explanation.seen} of {len(explanation.tokens)} tokens)")
    listed = explanation.ngrams[:limit] if limit is not None else explanation.ngrams
    rows = [
        [
            str(g.width),
            _filter_list(g.filters),
            g.text,
            f"{g.contribution:+.3f}",
            explanation.predicted if g.contribution >= 0 else f"against {explanation.predicted}",
        ]
        for g in listed
    ]
    table = _aligned(
        ["width", "filters", "winning n-gram", "contribution", "pushes"], rows, [True, False, False, True, False]
    )
    total = sum(w.contribution for w in explanation.winners)
    foot = (
        f"  {len(listed)} of {len(explanation.ngrams)} winning n-grams; contributions sum to {total:+.3f}, "
        f"+ bias {explanation.bias:+.3f} = margin {explanation.margin:+.3f} (logit of "
        f"{explanation.predicted} minus the mean logit)"
    )
    return "\n".join([*head, _indent(table), foot])


def _filter_list(filters: Sequence[int], limit: int = 6) -> str:
    shown = ",".join(str(f) for f in filters[:limit])
    return shown + (f",… ({len(filters)})" if len(filters) > limit else "")


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())


# ----------------------------------------------------------------------------------------------------
# HTML

_TOWARD = (33, 102, 172)  # blue: pushes toward the predicted class
_AGAINST = (214, 96, 77)  # red: pushes against it

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 60em;
       color: #222; line-height: 1.5; padding: 0 1em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
.legend span { padding: 0.1em 0.4em; border-radius: 3px; }
.sentence { margin: 1.2em 0; padding: 0.6em 0.8em; border: 1px solid #ddd; border-radius: 6px; }
.words { font-size: 1.15em; }
.words span { padding: 0.05em 0.15em; border-radius: 3px; }
.words .unseen { color: #999; text-decoration: line-through; }
.meta { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; }
"""


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def _colour(score: float, scale: float) -> str:
    if scale <= 0 or score == 0:
        return "transparent"
    red, green, blue = _TOWARD if score > 0 else _AGAINST
    alpha = min(abs(score) / scale, 1.0) * 0.85
    return f"rgba({red}, {green}, {blue}, {alpha:.3f})"


def _sentence_html(explanation: Explanation, rows: int) -> str:
    scores = explanation.word_scores
    scale = max((abs(s) for s in scores), default=0.0)
    words = []
    for i, (token, score) in enumerate(zip(explanation.tokens, scores)):
        if i >= explanation.seen:
            words.append(
                f'<span class="unseen" title="not seen by the model (beyond max_tokens)">{_escape(token)}</span>'
            )
            continue
        tip = f"{score:+.4f} toward {explanation.predicted}"
        words.append(
            f'<span style="background: {_colour(score, scale)}" title="{_escape(tip)}">{_escape(token)}</span>'
        )
    probabilities = ", ".join(f"{_escape(n)} {p:.3f}" for n, p in explanation.probabilities.items())
    table_rows = "".join(
        "<tr>"
        f'<td class="num">{g.width}</td><td><code>{_escape(g.text)}</code></td>'
        f'<td class="num">{g.contribution:+.3f}</td><td>{_escape(_filter_list(g.filters))}</td>'
        "</tr>"
        for g in explanation.ngrams[:rows]
    )
    return (
        '<div class="sentence">'
        f'<div class="words">{" ".join(words)}</div>'
        f'<div class="meta">predicted <b>{_escape(explanation.predicted)}</b> ({probabilities}); darkest colour = '
        f"{scale:.3f}; source text: <q>{_escape(explanation.text)}</q></div>"
        "<table><tr><th>width</th><th>winning n-gram</th><th>contribution</th><th>filters</th></tr>"
        f"{table_rows}</table></div>"
    )


def _shown_by_width(reports, filters: int | None, ngrams: int | None):
    """Per window width (ascending): the filters to show, strongest first (at most `filters`), each
    with the n-grams to list (at most `ngrams`), and how many filters the width has — what the
    table and the HTML page both show."""
    for width in sorted({r.width for r in reports}):
        chosen = sorted((r for r in reports if r.width == width), key=lambda r: (-r.strongest, r.filter))
        shown = chosen[:filters] if filters is not None else chosen
        yield width, [(r, r.ngrams[:ngrams] if ngrams is not None else r.ngrams) for r in shown], len(chosen)


def _reports_html(reports: Sequence[FilterReport], filters: int | None, ngrams: int | None) -> str:
    sections = []
    for width, shown, total in _shown_by_width(reports, filters, ngrams):
        rows = []
        for report, listed in shown:
            grams = ", ".join(f"<code>{_escape(g.text)}</code> {g.activation:.2f}" for g in listed) or "(never fires)"
            weights = ", ".join(f"{_escape(n)} {w:+.3f}" for n, w in report.weights.items())
            rows.append(
                f'<tr><td class="num">{report.filter}</td><td>{grams}</td>'
                f'<td>{_escape(report.votes_for)}</td><td class="meta">{weights}</td></tr>'
            )
        sections.append(
            f"<h3>window width {width} ({len(shown)} of {total} filters)</h3>"
            "<table><tr><th>filter</th><th>top n-grams (activation)</th><th>votes for</th>"
            f"<th>output weights</th></tr>{''.join(rows)}</table>"
        )
    return "".join(sections)


def render_html(
    explanations: Sequence[Explanation],
    filter_reports: Sequence[FilterReport] | None = None,
    title: str = "What the n-gram detectors see",
    filters: int | None = 10,
    ngrams: int | None = None,
    rows: int = 8,
) -> str:
    """A self-contained HTML page: each sentence with its words coloured by `word_scores` (blue toward
    the predicted class, red against it, darker for larger magnitude, relative to the sentence's largest
    score; hover for the number), its top `rows` winning n-grams, then the top n-grams per filter
    (at most `filters` per width). Inline CSS only: no scripts, nothing external; all text is escaped."""
    explanations = list(explanations)
    toward = "rgba({}, {}, {}, 0.6)".format(*_TOWARD)
    against = "rgba({}, {}, {}, 0.6)".format(*_AGAINST)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_escape(title)}</h1>",
        '<p class="legend">Each word is coloured by the summed contributions of the winning n-grams that cover it: '
        f'<span style="background: {toward}">toward the predicted class</span> or '
        f'<span style="background: {against}">against it</span>. A filter\'s contribution is its pooled value times '
        "(its output weight for the predicted class minus its mean weight over classes).</p>",
    ]
    if explanations:
        parts.append(f"<h2>Sentences ({len(explanations)})</h2>")
        parts += [_sentence_html(e, rows) for e in explanations]
    if filter_reports:
        parts.append("<h2>Top n-grams per filter</h2>")
        parts.append(_reports_html(list(filter_reports), filters, ngrams))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(path, explanations, filter_reports=None, **options) -> None:
    """`render_html(...)` written to `path` atomically: a temporary file in the same folder, then a rename."""
    page = render_html(explanations, filter_reports, **options)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".ngrams-", suffix=".html.tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(page)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual mode
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
