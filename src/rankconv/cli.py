"""Command line: `rankconv demo` (the seed, reproduced on its own numbers)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time

import numpy as np

from rankconv import utils

TRIGRAM_PARAGRAPH = (
    "Why Conv1D(64, 3) over word vectors is a trigram feature extractor: a sentence of 600 words, "
    "each a 300-d vector, is a (600, 300) array. Each of the 64 filters is a (3, 300) window of weights "
    "that slides one word at a time and takes a dot product with three consecutive word vectors: "
    "it scores one trigram. Because the window is as wide as the vector, it can only slide along "
    "the words, which is exactly what Conv2D(64, (3, 300)) on the same sentence as a one-channel "
    "(600, 300, 1) image computes: the second output axis has length 1. The 598 scores per filter "
    "say how strongly each trigram matches it; max-pooling them over the sentence (Kim, 2014) "
    "keeps the best-matching trigram per filter, a bag of learned n-gram detectors."
)


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _warm_seconds(call, repeats: int = 5):
    """(result, seconds): the median time of `repeats` calls after one untimed call (`median_ms`),
    so that a first call's one-time costs (starting the worker threads, loading kernels) are not
    counted; the result of the last call."""
    from rankconv.bench import median_ms

    results = []
    seconds = median_ms(lambda: results.append(call()), repeats, warmup=1) / 1e3
    return results[-1], seconds


def run_demo(batch: int = 8, seed: int = 0) -> dict:
    from rankconv import equivalence, layers, utils

    rng = np.random.default_rng(seed)
    rows = []
    specs = [
        ("Conv1D(64, 3)", layers.Conv1D(64, 3, name="demo_conv1d"), (600, 300)),
        ("Conv2D(64, 3)", layers.Conv2D(64, 3, name="demo_conv2d"), (600, 300, 1)),
        ("Conv2D(64, (3, 300))", layers.Conv2D(64, (3, 300), name="demo_conv2d_wide"), (600, 300, 1)),
    ]
    for label, layer, sample_shape in specs:
        layer.build((None, *sample_shape))
        rows.append(
            {
                "layer": label,
                "input_shape": list(sample_shape),
                "kernel_shape": list(layer.kernel.shape),
                "output_shape": list(layer.compute_output_shape((None, *sample_shape))[1:]),
                "params": layer.count_params(),
            }
        )
    conv1d = specs[0][1]
    x = rng.standard_normal((batch, 600, 300)).astype(np.float32)
    lifted = equivalence.lift(conv1d)
    lifted_x = equivalence.lift_inputs(x)
    y1, time_1d = _warm_seconds(lambda: conv1d(x))
    y2, time_2d = _warm_seconds(lambda: lifted(lifted_x))
    return {
        "layers": rows,
        "normalize_tuple": {
            "normalize_tuple(3, 1, 'kernel_size')": list(utils.normalize_tuple(3, 1, "kernel_size")),
            "normalize_tuple(3, 2, 'kernel_size')": list(utils.normalize_tuple(3, 2, "kernel_size")),
        },
        "equivalence": {
            "batch_shape": list(x.shape),
            "conv1d_output_shape": list(y1.shape),
            "lifted_layer": f"Conv2D({lifted.filters}, {lifted.kernel_size})",
            "lifted_kernel_shape": list(lifted.kernel.shape),
            "lifted_output_shape": list(y2.shape),
            "max_abs_difference": float(np.max(np.abs(y2[:, :, 0, :] - y1))),
            "output_scale": float(np.max(np.abs(y1))),
            "conv1d_seconds": time_1d,
            "lifted_conv2d_seconds": time_2d,
        },
        "explanation": TRIGRAM_PARAGRAPH,
    }


def run_text_demo(seed: int = 0, n_train: int = 2000, n_test: int = 1000, epochs: int = 6) -> dict:
    """Part two: a small Kim CNN on a generated corpus whose classes hang on planted phrases."""
    from rankconv.text import corpus, ngrams
    from rankconv.text.training import evaluate_classifier, train_classifier

    texts, labels, planted = corpus.planted_corpus(n_train + n_test, seed=seed)
    start = time.perf_counter()
    classifier = train_classifier(
        texts[:n_train],
        labels[:n_train],
        windows=(1, 2, 3),
        filters=16,
        embedding_dim=32,
        epochs=epochs,
        patience=epochs,
        seed=seed,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    accuracy = evaluate_classifier(classifier, texts[n_train:], labels[n_train:])["accuracy"]
    reports = ngrams.top_ngrams(classifier, texts[:n_train], top=3)
    found = []
    for label, phrases in planted.items():
        for phrase in phrases:
            hits = [
                (g.activation, r, g)
                for r in reports
                if r.votes_for == label
                for g in r.ngrams
                if _holds_phrase(g.tokens, phrase)
            ]
            best = max(hits, key=lambda h: h[0], default=None)
            found.append(
                {
                    "phrase": phrase,
                    "class": label,
                    "filter": None if best is None else f"width {best[1].width} #{best[1].filter}",
                    "ngram": None if best is None else best[2].text,
                    "activation": None if best is None else float(best[0]),
                }
            )
    negation = ngrams.explain(classifier, "the acting was not good")
    return {
        "train_sentences": n_train,
        "test_sentences": n_test,
        "test_accuracy": accuracy,
        "train_seconds": seconds,
        "planted": found,
        "example": {
            "text": negation.text,
            "predicted": negation.predicted,
            "top_ngram": negation.ngrams[0].text if negation.ngrams else None,
        },
    }


def _holds_phrase(tokens, phrase) -> bool:
    """Whether `phrase` occurs as whole tokens in `tokens`, and not negated by a "not" before it."""
    words = phrase.split()
    for i in range(len(tokens) - len(words) + 1):
        if list(tokens[i : i + len(words)]) == words and not (i > 0 and tokens[i - 1] == "not"):
            return True
    return False


def _print_text_demo(result: dict) -> None:
    print("\nPart two: the filters learn n-grams. A generated corpus: filler words around one planted phrase")
    print('that decides the class, with negations ("not good" is negative, "good" positive). A small Kim CNN')
    print(
        f"(windows 1, 2, 3) trained on {result['train_sentences']:,} sentences in {result['train_seconds']:.1f} s "
        f"reaches {result['test_accuracy']:.1%} on {result['test_sentences']:,} new ones.\n"
    )
    rows = [
        (
            r["phrase"],
            r["class"],
            r["filter"] or "-",
            r["ngram"] or "-",
            "-" if r["activation"] is None else f"{r['activation']:.2f}",
        )
        for r in result["planted"]
    ]
    print(_table(["planted phrase", "class", "filter that learned it", "n-gram it fires on", "activation"], rows))
    recovered = sum(r["filter"] is not None for r in result["planted"])
    print(
        f"{recovered} of {len(rows)} planted phrases are among the 3 strongest n-grams of a filter voting for their class."
    )
    example = result["example"]
    print(f'"{example["text"]}" → {example["predicted"]}; the n-gram that pushed hardest: "{example["top_ngram"]}"')


def _table(headers, rows) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _print_demo(result: dict) -> None:
    print("rankconv demo: Conv1D and Conv2D are one convolution of rank 1 or 2\n")
    rows = [
        (r["layer"], _shape(r["input_shape"]), _shape(r["kernel_shape"]), _shape(r["output_shape"]), f"{r['params']:,}")
        for r in result["layers"]
    ]
    print(_table(["layer", "input (per sample)", "kernel", "output (per sample)", "params"], rows))
    print("\nkernel shape = kernel_size + (input_channels // groups, filters); kernel_size goes through")
    print("normalize_tuple, which turns an int into a rank-tuple:")
    for call, value in result["normalize_tuple"].items():
        print(f"  {call} -> {_shape(value)}")
    eq = result["equivalence"]
    print(f"\nOne batch {_shape(eq['batch_shape'])} through Conv1D(64, 3) and through its lift, {eq['lifted_layer']}:")
    print(
        _table(
            ["layer", "kernel", "output", "ms (median of 5, warm)"],
            [
                (
                    "Conv1D(64, 3)",
                    "(3, 300, 64)",
                    _shape(eq["conv1d_output_shape"]),
                    f"{eq['conv1d_seconds'] * 1e3:.1f}",
                ),
                (
                    eq["lifted_layer"],
                    _shape(eq["lifted_kernel_shape"]),
                    _shape(eq["lifted_output_shape"]),
                    f"{eq['lifted_conv2d_seconds'] * 1e3:.1f}",
                ),
            ],
        )
    )
    difference = eq["max_abs_difference"]
    verdict = "identical" if difference == 0 else "float32 rounding"
    print(f"max |Conv1D - lifted Conv2D| = {difference:.2e} (outputs up to {eq['output_scale']:.1f}; {verdict})\n")
    print(textwrap.fill(TRIGRAM_PARAGRAPH, width=100))


def _demo_command(args) -> int:
    result = run_demo(batch=args.batch, seed=args.seed)
    if not args.json:
        _print_demo(result)
    if not args.no_text:
        result["text"] = run_text_demo(seed=args.seed)
        if not args.json:
            _print_text_demo(result["text"])
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rankconv", description="Keras's convolution layers, rank-generic, on NumPy.")
    parser.add_argument("--version", action="version", version=f"rankconv {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="reproduce the seed: Conv1D over word vectors is a Conv2D with a full-width kernel",
        description="Build Conv1D(64, 3) and Conv2D layers on a 600-word, 300-d sentence, show their kernel "
        "shapes, and check that Conv1D and its lifted Conv2D compute the same thing.",
        epilog="example: rankconv demo --json > demo.json",
    )
    demo.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    demo.add_argument(
        "--batch", type=utils.positive_int, default=8, help="sentences in the equivalence batch (default 8)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the random batch and the corpus (default 0)")
    demo.add_argument("--no-text", action="store_true", help="skip part two (training a text CNN, about 20 s)")
    demo.set_defaults(handler=_demo_command)
    from rankconv.text.cli import add_parser as add_text_parser

    add_text_parser(commands)
    from rankconv.saving.onnx_export import add_parser as add_export_parser

    add_export_parser(commands)
    from rankconv.explanation import add_parser as add_explain_parser

    add_explain_parser(commands)
    return parser


def _version() -> str:
    from rankconv import __version__

    return __version__


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError) as error:
        # a user mistake (bad file, bad argument): one clear line, no traceback
        where = " ".join(filter(None, [args.command, getattr(args, "text_command", None)]))
        print(f"rankconv {where}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
