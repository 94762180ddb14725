"""`rankconv text …`: train, cross-validate, evaluate and use sentence classifiers."""

from __future__ import annotations

import json
import sys

EXAMPLES = {
    "train": "example: rankconv text train rt-polarity.pos rt-polarity.neg --encoding latin-1 --out mr.keras",
    "cv": "example: rankconv text cv ../shared/data/mr --encoding latin-1 --folds 10 --run-folds 1",
    "evaluate": "example: rankconv text evaluate mr.keras test.txt",
    "predict": "example: echo 'a gorgeous, witty film' | rankconv text predict mr.keras -",
    "ngrams": "example: rankconv text ngrams mr.keras rt-polarity.pos rt-polarity.neg --encoding latin-1 --top 5 "
    "--filters 8 --explain 3 --html ngrams.html",
}


def _read(args):
    from rankconv.text.readers import describe, read_dataset

    data = read_dataset(args.data, encoding=args.encoding, text_column=args.text_column, label_column=args.label_column)
    print(describe(data), file=sys.stderr)
    return data


def _train_options(args):
    options = {"mode": args.mode, "epochs": args.epochs, "seed": args.seed, "verbose": 0 if args.quiet else 1}
    options["patience"] = args.patience
    options["separable"] = args.separable
    if args.embeddings:
        from rankconv.text import embeddings as vectors

        def matrix(words):
            loaded = vectors.load_vectors(args.embeddings, vocabulary=words)
            found_matrix, found = vectors.embedding_matrix(words, loaded, dim=loaded.dim, seed=args.seed)
            print(f"pretrained vectors for {found:,} of {len(words):,} words ({args.embeddings})", file=sys.stderr)
            return found_matrix

        options["embeddings"] = matrix
        options["embedding_dim"] = vectors.load_vectors(args.embeddings, limit=1).dim
    elif args.mode != "rand":
        raise ValueError(f"--mode {args.mode} needs --embeddings PATH (a word2vec or GloVe file).")
    return options


def _train(args):
    from rankconv.text.training import evaluate_classifier, train_classifier

    data = _read(args)
    classifier = train_classifier(data.texts, data.labels, **_train_options(args))
    dev = classifier.history.get("val_accuracy")
    if dev:
        best = max(range(len(dev)), key=dev.__getitem__)
        print(f"dev accuracy {dev[best]:.4f} (epoch {best + 1} of {len(dev)}; its weights are kept)")
    classifier.save(args.out)
    print(f"saved {args.out}")
    if args.test:
        from rankconv.text.readers import read_dataset

        test = read_dataset(
            args.test, encoding=args.encoding, text_column=args.text_column, label_column=args.label_column
        )
        report = evaluate_classifier(classifier, test.texts, test.labels)
        print(f"test accuracy {report['accuracy']:.4f} on {len(test):,} sentences")
    return 0


def _cv(args):
    from rankconv.text.training import cross_validate

    data = _read(args)
    run_folds = [int(f) for f in args.run_folds.split(",")] if args.run_folds else None

    def show(result):
        print(
            f"fold {result['fold']:2d}: accuracy {result['accuracy']:.4f}  ({result['epochs']} epochs, "
            f"{result['seconds']:.0f} s)",
            flush=True,
        )

    result = cross_validate(
        data.texts, data.labels, folds=args.folds, run_folds=run_folds, on_fold=show, **_train_options(args)
    )
    print(
        f"mean accuracy {result['mean']:.4f} ± {result['std']:.4f} over {len(result['folds'])} fold(s) of {args.folds}"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


def _evaluate(args):
    from rankconv.text.training import TextClassifier, evaluate_classifier

    classifier = TextClassifier.load(args.model)
    data = _read(args)
    report = evaluate_classifier(classifier, data.texts, data.labels)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"accuracy {report['accuracy']:.4f} on {len(data):,} sentences\n")
    width = max(len(c) for c in report["classes"])
    print(f"{'class':{width}}  precision  recall  f1      support")
    for name, row in report["per_class"].items():
        print(f"{name:{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}  {row['support']:7,}")
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    print(" " * (width + 2) + "  ".join(f"{c:>{width}}" for c in report["classes"]))
    for name, row in zip(report["classes"], report["confusion"]):
        print(f"{name:{width}}  " + "  ".join(f"{v:>{width}}" for v in row))
    return 0


def _predict(args):
    from rankconv.text.training import TextClassifier

    classifier = TextClassifier.load(args.model)
    stream = sys.stdin if args.input == "-" else open(args.input, encoding=args.encoding)  # noqa: SIM115
    with stream:
        batch = []
        for line in stream:
            batch.append(line.rstrip("\n"))
            if len(batch) == 512:
                _emit(classifier, batch, args.json)
                batch = []
        if batch:
            _emit(classifier, batch, args.json)
    return 0


def _emit(classifier, texts, as_json):
    probabilities = classifier.predict_proba(texts)
    for text, row in zip(texts, probabilities):
        label = classifier.classes[int(row.argmax())]
        if as_json:
            print(
                json.dumps(
                    {"text": text, "label": label, "probabilities": dict(zip(classifier.classes, map(float, row)))}
                )
            )
        else:
            print(label + "\t" + " ".join(f"{c}={p:.4f}" for c, p in zip(classifier.classes, row)) + "\t" + text)
    sys.stdout.flush()


def _ngrams(args):
    from rankconv.text.ngrams import explain, format_table, top_ngrams, write_html
    from rankconv.text.training import TextClassifier

    for name in ("top", "filters"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1; received {getattr(args, name)}.")
    if args.explain < 0:
        raise ValueError(f"--explain must be 0 or more; received {args.explain}.")
    classifier = TextClassifier.load(args.model)
    data = _read(args)
    reports = top_ngrams(classifier, data.texts, top=args.top)
    print(f"top {args.top} n-grams per filter over {len(data):,} sentences\n")
    print(format_table(reports, filters=args.filters))
    explanations = [explain(classifier, text) for text in data.texts[: args.explain]]
    if explanations:
        print(f"\nwhich n-grams won the max-pooling in the first {len(explanations)} sentence(s), and how much each")
        print("pushed the decision (pooled value × the filter's centred output weight for the predicted class)")
    for explanation in explanations:
        print()
        print(format_table(explanation, ngrams=args.top))
    if args.html:
        write_html(args.html, explanations, reports, filters=args.filters)
        print(f"\nwrote {args.html}")
    return 0


def add_parser(commands) -> None:
    text = commands.add_parser(
        "text",
        help="train and use convolutional sentence classifiers (Kim, 2014)",
        description="Train, cross-validate, evaluate and use Kim's CNN sentence classifier.",
    )
    sub = text.add_subparsers(dest="text_command", metavar="COMMAND", required=True)

    def data_options(p):
        p.add_argument("--encoding", default="utf-8", help="text encoding of the data files (default utf-8)")
        p.add_argument("--text-column", help="CSV/TSV column holding the text")
        p.add_argument("--label-column", help="CSV/TSV column holding the label")

    def train_options(p):
        p.add_argument("--mode", default="rand", choices=["rand", "static", "nonstatic", "multichannel"])
        p.add_argument("--embeddings", help="word2vec (text or binary) or GloVe file for the pretrained modes")
        p.add_argument(
            "--epochs", type=int, default=25, help="epochs (default 25); the best one on a 10%% dev split is kept"
        )
        p.add_argument(
            "--patience", type=int, help="stop after this many epochs without dev improvement (default: never)"
        )
        p.add_argument("--seed", type=int, default=0)
        p.add_argument(
            "--separable",
            action="store_true",
            help="depthwise-separable n-gram detectors (SeparableConv1D): far fewer weights per width",
        )
        p.add_argument("--quiet", action="store_true", help="no per-epoch progress")

    p = sub.add_parser("train", help="train a classifier and save it", epilog=EXAMPLES["train"])
    p.add_argument("data", nargs="+", help="data files or folders (layout detected)")
    p.add_argument("--out", required=True, help="the .keras file to write")
    p.add_argument("--test", nargs="+", help="test data to report accuracy on")
    data_options(p)
    train_options(p)
    p.set_defaults(handler=_train)

    p = sub.add_parser("cv", help="K-fold cross-validation", epilog=EXAMPLES["cv"])
    p.add_argument("data", nargs="+")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--run-folds", help="comma-separated folds to run (1-based), e.g. 1,2")
    p.add_argument("--json", help="write the results to this JSON file")
    data_options(p)
    train_options(p)
    p.set_defaults(handler=_cv)

    p = sub.add_parser(
        "evaluate", help="accuracy, per-class precision/recall/F1, confusion matrix", epilog=EXAMPLES["evaluate"]
    )
    p.add_argument("model")
    p.add_argument("data", nargs="+")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    data_options(p)
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser("predict", help="label each input line", epilog=EXAMPLES["predict"])
    p.add_argument("model")
    p.add_argument("input", nargs="?", default="-", help="a file of one text per line, or - for standard input")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--encoding", default="utf-8")
    p.set_defaults(handler=_predict)

    p = sub.add_parser(
        "ngrams",
        help="show the n-grams each filter detects and which ones decided each sentence",
        description="Each Conv1D filter of width w is an n-gram detector. Print, per window width, the "
        "n-grams of DATA that activate each filter most and the class each filter votes for; then, for the "
        "first sentences, which n-gram won each filter's max-pooling and how much it pushed the decision. "
        "DATA is read like training data (labels are read but not used): a single file of unlabelled "
        "sentences is refused by the reader, so give one file per class or a labelled layout.",
        epilog=EXAMPLES["ngrams"],
    )
    p.add_argument("model")
    p.add_argument("data", nargs="+", help="labelled data files or folders (layout detected; labels are ignored)")
    p.add_argument("--top", type=int, default=10, help="n-grams shown per filter (default 10)")
    p.add_argument("--filters", type=int, default=10, help="filters shown per width, strongest first (default 10)")
    p.add_argument("--explain", type=int, default=5, metavar="N", help="explain the first N sentences (default 5)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page with coloured sentences")
    data_options(p)
    p.set_defaults(handler=_ngrams)
