"""`rankconv text …`: train, cross-validate, evaluate and use sentence classifiers."""

from __future__ import annotations

import argparse
import json
import sys

from rankconv import utils

EXAMPLES = {
    "train": "example: rankconv text train rt-polarity.pos rt-polarity.neg --encoding latin-1 --out mr.keras",
    "train-sst": "example: rankconv text train ../shared/data/sst/stsa.fine.train --dev ../shared/data/sst/stsa.fine.dev "
    "--test ../shared/data/sst/stsa.fine.test --clean kim-sst --out sst1.keras --json sst1.json",
    "cv": "example: rankconv text cv ../shared/data/mr --encoding latin-1 --folds 10 --run-folds 1",
    "cv-seeds": "example: rankconv text cv ../shared/data/mr --encoding latin-1 --seeds 3 --jobs 2 --json mr3.json",
    "bench-table": "example: rankconv text bench-table --only sst2 --epochs 1   (the whole table: rankconv text bench-table "
    "--jobs 2 --json table.json)",
    "evaluate": "example: rankconv text evaluate mr.keras test.txt",
    "predict": "example: echo 'a gorgeous, witty film' | rankconv text predict mr.keras -",
    "ngrams": "example: rankconv text ngrams mr.keras rt-polarity.pos rt-polarity.neg --encoding latin-1 --top 5 "
    "--filters 8 --explain 3 --html ngrams.html",
}


def _read(args, files=None):
    from rankconv.text.readers import describe, read_dataset

    data = read_dataset(
        args.data if files is None else files,
        encoding=args.encoding,
        text_column=args.text_column,
        label_column=args.label_column,
    )
    print(describe(data), file=sys.stderr)
    return data


def _plain(args):
    """Where the plain-text output goes: standard error when the JSON goes to standard output."""
    return sys.stderr if getattr(args, "json", None) == "-" else sys.stdout


def _write_json(path, value) -> None:
    """`--json FILE` (or `-`: standard output)."""
    if path == "-":
        print(json.dumps(value, indent=2))
        sys.stdout.flush()
        return
    with open(path, "w") as handle:
        json.dump(value, handle, indent=2)


def _floats(history: dict) -> dict:
    return {key: [float(v) for v in values] for key, values in history.items()}


def format_report(report: dict) -> str:
    """`evaluate_classifier`'s report as one compact table: a row per true class with its precision,
    recall, F1 and support, then how its sentences were predicted (the confusion matrix's row)."""
    classes = report["classes"]
    counts = [str(v) for row in report["confusion"] for v in row]
    name_width = max(len("macro avg"), len("true class"), *(len(c) for c in classes))
    cell = max(len(c) for c in [*classes, *counts])
    head = f"{'true class':{name_width}}  precision  recall      f1  support  | predicted: " + " ".join(
        f"{c:>{cell}}" for c in classes
    )
    lines = [head]
    for name, confusion_row in zip(classes, report["confusion"]):
        row = report["per_class"][name]
        lines.append(
            f"{name:{name_width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}  {row['support']:7,}  |"
            + " " * len(" predicted: ")
            + " ".join(f"{v:>{cell}}" for v in confusion_row)
        )
    macro = report.get("macro")
    if macro:
        total = sum(r["support"] for r in report["per_class"].values())
        lines.append(
            f"{'macro avg':{name_width}}  {macro['precision']:9.4f}  {macro['recall']:6.4f}  {macro['f1']:6.4f}  {total:7,}  |"
        )
    return "\n".join(lines)


class PretrainedMatrix:
    """`train_classifier`'s `embeddings`: the vectors of a file for a vocabulary's words (a class,
    not a closure, so that `cv --jobs` can send it to its worker processes)."""

    def __init__(self, path, seed):
        self.path, self.seed = path, seed

    def __call__(self, words):
        from rankconv.text import embeddings as vectors

        loaded = vectors.load_vectors(self.path, vocabulary=words)
        matrix, found = vectors.embedding_matrix(words, loaded, dim=loaded.dim, seed=self.seed)
        print(f"pretrained vectors for {found:,} of {len(words):,} words ({self.path})", file=sys.stderr)
        return matrix


def _train_options(args):
    # progress bars write to standard output, which `--json -` keeps for the JSON
    quiet = args.quiet or getattr(args, "json", None) == "-"
    options = {"mode": args.mode, "epochs": args.epochs, "seed": args.seed, "verbose": 0 if quiet else 1}
    options["patience"] = args.patience
    options["separable"] = args.separable
    options["batches"] = args.batches
    if getattr(args, "clean", None) is not None:
        options["clean"] = args.clean
    if args.embeddings:
        from rankconv.text import embeddings as vectors

        options["embeddings"] = PretrainedMatrix(args.embeddings, args.seed)
        options["embedding_dim"] = vectors.load_vectors(args.embeddings, limit=1).dim
    elif args.mode != "rand":
        raise ValueError(f"--mode {args.mode} needs --embeddings PATH (a word2vec or GloVe file).")
    return options


def _train(args):
    import time

    from rankconv.text.training import evaluate_classifier, train_classifier

    out = _plain(args)
    data = _read(args)
    dev = _read(args, args.dev) if args.dev else None
    options = _train_options(args)
    start = time.perf_counter()
    classifier = train_classifier(
        data.texts, data.labels, dev=(dev.texts, dev.labels) if dev else None, backup_dir=args.backup_dir, **options
    )
    seconds = time.perf_counter() - start
    history = classifier.history.get("val_accuracy")
    where = f"{len(dev):,} sentences of {' '.join(args.dev)}" if dev else "a 10% split of the training data"
    result = {
        "train": {"files": list(args.data), "size": len(data), "classes": classifier.classes},
        "settings": {k: v for k, v in options.items() if k not in ("embeddings", "verbose")},
        "clean": classifier.vectorizer.clean,
        "seconds": seconds,
        "history": _floats(classifier.history),
        "best_epoch": classifier.best_epoch,
        "model": args.out,
    }
    if classifier.best_epoch is not None and history:
        accuracy = float(history[classifier.best_epoch - 1])
        print(
            f"dev accuracy {accuracy:.4f} on {where} (epoch {classifier.best_epoch} of {len(history)}; "
            "its weights are kept)",
            file=out,
        )
        result["dev"] = {"files": list(args.dev or []), "accuracy": accuracy}
        if dev:
            result["dev"]["report"] = evaluate_classifier(classifier, dev.texts, dev.labels)
    classifier.save(args.out)
    if args.backup_dir:
        from rankconv.callbacks import BackupAndRestore

        BackupAndRestore.remove(args.backup_dir)  # the model file is safe: the backup has done its job
    print(f"saved {args.out} ({seconds:.0f} s of training)", file=out)
    result["tests"] = []
    for files in args.test or []:
        test = _read(args, files)
        report = evaluate_classifier(classifier, test.texts, test.labels)
        result["tests"].append({"files": list(files), "size": len(test), "report": report})
        print(f"\ntest accuracy {report['accuracy']:.4f} on {len(test):,} sentences ({' '.join(files)})", file=out)
        print(format_report(report), file=out)
    out.flush()
    if args.json:
        _write_json(args.json, result)
    return 0


def _cv(args):
    from rankconv.text.training import repeated_cross_validation

    out = _plain(args)
    data = _read(args)
    run_folds = [int(f) for f in args.run_folds.split(",")] if args.run_folds else None

    def show(result):
        run = f"run {result['run']} " if args.seeds > 1 else ""
        restored = ", restored from the backup" if result.get("restored") else ""
        print(
            f"{run}fold {result['fold']:2d}: accuracy {result['accuracy']:.4f}  ({result['epochs']} epochs, "
            f"{result['seconds']:.0f} s{restored})",
            file=out,
            flush=True,
        )

    def run_done(run):
        if args.seeds > 1:
            print(
                f"run {run['run']} (--seed {run['seed']}): mean accuracy {run['mean']:.4f} ± {run['std']:.4f} over "
                f"{len(run['folds'])} fold(s) ({run['seconds']:.0f} s)",
                file=out,
                flush=True,
            )

    result = repeated_cross_validation(
        data.texts,
        data.labels,
        seeds=args.seeds,
        folds=args.folds,
        run_folds=run_folds,
        on_fold=show,
        on_run=run_done,
        backup_dir=args.backup_dir,
        jobs=args.jobs,
        **_train_options(args),
    )
    runs = result["runs"]
    if args.seeds == 1:
        print(
            f"mean accuracy {runs[0]['mean']:.4f} ± {runs[0]['std']:.4f} over {len(runs[0]['folds'])} fold(s) of "
            f"{args.folds}",
            file=out,
        )
    else:
        means = ", ".join(f"{run['mean']:.4f}" for run in runs)
        print(
            f"mean accuracy {result['mean']:.4f} ± {result['std']:.4f} over {len(runs)} runs (the runs' means: "
            f"{means}; ± is their sample standard deviation)",
            file=out,
        )
    out.flush()
    if args.json:
        # one run: the layout `cv --json` always wrote (folds, mean, std, k), with its seed; several:
        # every run in that layout under "runs", and the mean and standard deviation over the runs
        _write_json(args.json, {**runs[0], "k": args.folds} if args.seeds == 1 else result)
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
    print(format_report(report))
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


def _bench_table(args):
    from rankconv.text import table

    out = _plain(args)
    benchmarks = table.select(args.only)
    run_folds = [int(f) for f in args.run_folds.split(",")] if args.run_folds else None

    def say(line):
        print(line, file=out, flush=True)

    result = table.run_table(
        benchmarks,
        _train_options(args),
        data_dir=args.data_dir,
        folds=args.folds,
        run_folds=run_folds,
        seeds=args.seeds,
        seed=args.seed,
        jobs=args.jobs,
        say=say,
    )
    print("\n" + table.format_table(result), file=out)
    out.flush()
    if args.json:
        _write_json(args.json, result)
    if all(row.get("skipped") for row in result["rows"]):
        print("error: no data set of the table was found; see the reasons above.", file=sys.stderr)
        return 1
    return 0


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

    def jobs_option(p):
        p.add_argument(
            "--jobs",
            type=utils.positive_int,
            default=1,
            metavar="N",
            help="train N folds at once, each in a process of its own with 1/N of the threads (default 1); on 2 cores "
            "--jobs 2 runs a cross-validation about 1.7 times as fast",
        )

    def data_options(p):
        p.add_argument("--encoding", default="utf-8", help="text encoding of the data files (default utf-8)")
        p.add_argument("--text-column", help="CSV/TSV column holding the text")
        p.add_argument("--label-column", help="CSV/TSV column holding the label")

    def train_options(p, clean=True):
        from rankconv.text.tokenize import CLEANINGS
        from rankconv.text.training import BATCHES

        p.add_argument("--mode", default="rand", choices=["rand", "static", "nonstatic", "multichannel"])
        if clean:
            p.add_argument(
                "--clean",
                default="kim",
                choices=list(CLEANINGS),
                help="how text is cleaned, as Kim's process_data.py: kim (clean_str, lower-cased: MR, Subj, CR, "
                "MPQA), kim-keep-case (clean_str for TREC), kim-sst (clean_str_sst: SST comes tokenized), none "
                "(split on whitespace); kept in the model file (default kim)",
            )
        p.add_argument(
            "--batches",
            default="shuffle",
            choices=list(BATCHES),
            help="mini-batches: shuffle (all sentences reshuffled every epoch, the last batch smaller; default) or "
            "kim (his code: the data padded with random repeats to whole batches, shuffled once, the fixed "
            "batches visited in a new order every epoch)",
        )
        p.add_argument("--embeddings", help="word2vec (text or binary) or GloVe file for the pretrained modes")
        p.add_argument(
            "--epochs",
            type=int,
            default=25,
            help="epochs (default 25); the best one on the dev set (a 10%% split of the training data, or "
            "train's --dev, or SST's dev file in bench-table) is kept",
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

    p = sub.add_parser(
        "train",
        help="train a classifier and save it",
        epilog=EXAMPLES["train"] + "\n" + EXAMPLES["train-sst"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", nargs="+", help="data files or folders (layout detected)")
    p.add_argument("--out", required=True, help="the .keras file to write")
    p.add_argument(
        "--dev",
        nargs="+",
        metavar="FILE",
        help="a dev set (files or folders) to choose the epoch on, instead of a 10%% split of the training data",
    )
    p.add_argument(
        "--test",
        nargs="+",
        action="append",
        metavar="FILE",
        help="a test set (files or folders) to report accuracy, per-class precision/recall/F1 and the confusion "
        "matrix on; give --test again for each further test set",
    )
    p.add_argument(
        "--json",
        metavar="FILE",
        help="write the training, dev and test reports to this JSON file (- for stdout, without progress bars)",
    )
    p.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="back the training up here after every epoch; run the same command again after a kill to resume "
        "from the last backup (the result is that of an uninterrupted run); removed once the model is saved",
    )
    data_options(p)
    train_options(p)
    p.set_defaults(handler=_train)

    p = sub.add_parser(
        "cv",
        help="K-fold cross-validation",
        epilog=EXAMPLES["cv"] + "\n" + EXAMPLES["cv-seeds"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", nargs="+")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--run-folds", help="comma-separated folds to run (1-based), e.g. 1,2")
    p.add_argument(
        "--seeds",
        type=utils.positive_int,
        default=1,
        metavar="N",
        help="N complete cross-validations, each with its own partition and seeds (run r is --seed SEED+r*FOLDS); "
        "reports each run's mean and the mean ± standard deviation over the runs (default 1)",
    )
    p.add_argument("--json", help="write the results to this JSON file (- for stdout)")
    jobs_option(p)
    p.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="keep finished folds' results and back the fold in progress up here after every epoch; run the same "
        "command again after a kill to resume at the fold and epoch reached (finished folds are not retrained); "
        "emptied at the end",
    )
    data_options(p)
    train_options(p)
    p.set_defaults(handler=_cv)

    p = sub.add_parser(
        "bench-table",
        help="Kim's Table 2 on the data sets here (MR, Subj, SST-1, SST-2), beside his figures",
        description="Run the rows of Kim's (2014) Table 2 that the data here allows: MR and Subj by K-fold "
        "cross-validation, SST-1 and SST-2 trained on their train file with the epoch chosen on their dev file "
        "and scored on their test file, each with Kim's cleaning for it; print ours beside his figures, with "
        "wall times, and the command that computes each row alone. The data: --data-dir DIR (holding mr/, "
        "subj/, sst/), else RANKCONV_MR_DIR / RANKCONV_SUBJ_DIR / RANKCONV_SST_DIR for one set, else "
        "RANKCONV_DATA_DIR, else ../shared/data. The whole table with Kim's settings takes hours here; "
        "--only, --folds, --run-folds, --epochs make it quick.",
        epilog=EXAMPLES["bench-table"],
    )
    p.add_argument(
        "--only", action="append", metavar="SETS", help="run only these: mr, subj, sst1, sst2 (commas or repeats)"
    )
    p.add_argument("--data-dir", metavar="DIR", help="the folder holding mr/, subj/ and sst/")
    p.add_argument("--folds", type=int, default=10, help="folds of the cross-validated sets (default 10)")
    p.add_argument("--run-folds", help="run only these folds of the cross-validated sets, e.g. 1,2")
    p.add_argument(
        "--seeds",
        type=utils.positive_int,
        default=1,
        metavar="N",
        help="N cross-validations (MR, Subj) or trainings (SST) with different seeds; mean ± std over them",
    )
    p.add_argument(
        "--json", metavar="FILE", help="write the table, every run and fold included, as JSON (- for stdout)"
    )
    jobs_option(p)
    train_options(p, clean=False)
    p.set_defaults(handler=_bench_table)

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
