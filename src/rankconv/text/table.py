"""Kim's (2014) Table 2, the rows we can run here: MR and Subj by 10-fold cross-validation, SST-1 and
SST-2 on their fixed train/dev/test split, each beside his figure (`rankconv text bench-table`).

Each data set is read with his cleaning for it (his `process_data.py`: `clean_str`, lower-cased, for
MR and Subj; `clean_str_sst` for SST) and trained with the options given (Kim's recipe by default).
Where the data lives: `data_dir/<folder>` when `data_dir` is given; else the data set's own
environment variable (`RANKCONV_MR_DIR`, `RANKCONV_SUBJ_DIR`, `RANKCONV_SST_DIR`) if set; else
`$RANKCONV_DATA_DIR/<folder>`, by default `../shared/data/<folder>`.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "RANKCONV_DATA_DIR"
DEFAULT_DATA_DIR = os.path.join("..", "shared", "data")


@dataclass(frozen=True)
class Benchmark:
    """One row of the table: where its data is, how it is read, cleaned and evaluated, and Kim's figures."""

    key: str
    name: str
    folder: str
    env: str
    protocol: str  # "cv": K-fold cross-validation over `files`; "split": train, dev, test files
    files: tuple[str, ...]  # for "cv", the data (relative to the folder; () = the folder itself)
    encoding: str
    clean: str
    kim: dict  # Kim (2014), Table 2, accuracy % by mode
    note: str = ""


# Kim (2014), Table 2 (accuracy %). The figures the data folders' README.md files quote are the same
# (MR: all four modes; Subj: rand, static, non-static; SST-1 and SST-2: rand and non-static); the
# others come from the paper's table.
BENCHMARKS = (
    Benchmark(
        "mr",
        "MR",
        "mr",
        "RANKCONV_MR_DIR",
        "cv",
        (),
        "latin-1",
        "kim",
        {"rand": 76.1, "static": 81.0, "nonstatic": 81.5, "multichannel": 81.1},
    ),
    Benchmark(
        "subj",
        "Subj",
        "subj",
        "RANKCONV_SUBJ_DIR",
        "cv",
        ("subj.all",),
        "latin-1",
        "kim",
        {"rand": 89.6, "static": 93.0, "nonstatic": 93.4, "multichannel": 93.2},
    ),
    Benchmark(
        "sst1",
        "SST-1",
        "sst",
        "RANKCONV_SST_DIR",
        "split",
        ("stsa.fine.train", "stsa.fine.dev", "stsa.fine.test"),
        "utf-8",
        "kim-sst",
        {"rand": 45.0, "static": 45.5, "nonstatic": 48.0, "multichannel": 47.4},
        note="Kim trained on the treebank's phrases as well as its sentences; ours on the sentences alone",
    ),
    Benchmark(
        "sst2",
        "SST-2",
        "sst",
        "RANKCONV_SST_DIR",
        "split",
        ("stsa.binary.train", "stsa.binary.dev", "stsa.binary.test"),
        "utf-8",
        "kim-sst",
        {"rand": 82.7, "static": 86.8, "nonstatic": 87.2, "multichannel": 88.1},
        note="Kim trained on the treebank's phrases as well as its sentences; ours on the sentences alone",
    ),
)
BY_KEY = {bench.key: bench for bench in BENCHMARKS}


def select(only) -> list[Benchmark]:
    """`only`: None (all rows) or names such as "sst2", "SST-1", "mr,subj" (commas and lists both work)."""
    if not only:
        return list(BENCHMARKS)
    names = [only] if isinstance(only, str) else list(only)
    wanted = []
    for part in (piece for name in names for piece in str(name).split(",")):
        key = part.strip().lower().replace("-", "").replace("_", "")
        if not key:
            continue
        if key not in BY_KEY:
            raise ValueError(f"unknown data set {part.strip()!r} for --only; choose from {', '.join(BY_KEY)}.")
        if BY_KEY[key] not in wanted:
            wanted.append(BY_KEY[key])
    if not wanted:
        raise ValueError(f"--only names no data set; choose from {', '.join(BY_KEY)}.")
    return [bench for bench in BENCHMARKS if bench in wanted]  # the table's order


def data_folder(bench: Benchmark, data_dir=None) -> Path:
    """Where `bench`'s files are (see the module's docstring for the order of the rules)."""
    if data_dir is not None:
        return Path(data_dir) / bench.folder
    own = os.environ.get(bench.env)
    if own:
        return Path(own)
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR) / bench.folder


def _paths(bench: Benchmark, folder: Path) -> list[Path]:
    return [folder / name for name in bench.files] if bench.files else [folder]


def missing(bench: Benchmark, folder: Path) -> str | None:
    """Why `bench` cannot run from `folder` (None when its files are there)."""
    absent = [path for path in _paths(bench, folder) if not path.exists()]
    if not absent:
        return None
    return (
        f"{', '.join(str(p) for p in absent)} not found (pass --data-dir, or set {DATA_DIR_ENV} "
        f"to the folder holding {bench.folder}/, or {bench.env} to {bench.folder}/ itself)"
    )


def _flags(options: dict, seed: int) -> list[str]:
    """The command-line flags that reproduce `options` (defaults left out)."""
    flags = []
    if options.get("mode", "rand") != "rand":
        flags += ["--mode", options["mode"]]
    if options.get("epochs", 25) != 25:
        flags += ["--epochs", str(options["epochs"])]
    if options.get("patience") is not None:
        flags += ["--patience", str(options["patience"])]
    if options.get("batches", "shuffle") != "shuffle":
        flags += ["--batches", options["batches"]]
    if options.get("separable"):
        flags += ["--separable"]
    if seed:
        flags += ["--seed", str(seed)]
    return flags


def command(bench: Benchmark, folder: Path, options: dict, *, folds=10, run_folds=None, seeds=1, seed=0, jobs=1) -> str:
    """The `rankconv text …` command that computes the row on its own (for SST, its first seed)."""
    paths = [str(p) for p in _paths(bench, folder)]
    common = ["--encoding", bench.encoding, "--clean", bench.clean]
    if bench.protocol == "cv":
        words = ["rankconv", "text", "cv", *paths, *common, "--folds", str(folds)]
        if run_folds:
            words += ["--run-folds", ",".join(str(f) for f in run_folds)]
        if seeds > 1:
            words += ["--seeds", str(seeds)]
        if jobs > 1:
            words += ["--jobs", str(jobs)]
    else:
        train, dev, test = paths
        words = ["rankconv", "text", "train", train, "--dev", dev, "--test", test, *common]
        words += ["--out", f"{bench.key}.keras"]
    return shlex.join(words + _flags(options, seed))


def run_row(
    bench: Benchmark, folder: Path, options: dict, *, folds=10, run_folds=None, seeds=1, seed=0, jobs=1, say=None
):
    """Train and evaluate one row; returns its result (accuracies as fractions, Kim's figure in %)."""
    from rankconv.text.readers import read_dataset
    from rankconv.text.training import evaluate_classifier, repeated_cross_validation, spread, train_classifier

    say = say or (lambda line: None)
    options = {key: value for key, value in options.items() if key not in ("seed", "clean")}
    mode = options.get("mode", "rand")
    row = {
        "key": bench.key,
        "name": bench.name,
        "protocol": bench.protocol,
        "data": str(folder),
        "clean": bench.clean,
        "kim": bench.kim.get(mode),
        "kim_note": bench.note,
        "command": command(bench, folder, options, folds=folds, run_folds=run_folds, seeds=seeds, seed=seed, jobs=jobs),
    }
    start = time.perf_counter()
    if bench.protocol == "cv":
        data = read_dataset(_paths(bench, folder), encoding=bench.encoding)
        row["size"] = len(data)

        def fold_line(result):
            run = f"run {result['run']} " if seeds > 1 else ""
            say(
                f"{bench.name} {run}fold {result['fold']:2d}: accuracy {result['accuracy']:.4f} "
                f"({result['epochs']} epochs, {result['seconds']:.0f} s)"
            )

        result = repeated_cross_validation(
            data.texts,
            data.labels,
            seeds=seeds,
            folds=folds,
            run_folds=run_folds,
            seed=seed,
            on_fold=fold_line,
            jobs=jobs,
            clean=bench.clean,
            **options,
        )
        runs = result["runs"]
        row["protocol_text"] = f"{folds}-fold CV" + (f", folds {','.join(map(str, run_folds))}" if run_folds else "")
        row["runs"] = runs
        if seeds > 1:
            row.update(accuracy=result["mean"], std=result["std"], spread="runs", n=len(runs))
        else:
            row.update(accuracy=runs[0]["mean"], std=runs[0]["std"], spread="folds", n=len(runs[0]["folds"]))
    else:
        train_path, dev_path, test_path = _paths(bench, folder)
        train = read_dataset(train_path, encoding=bench.encoding)
        dev = read_dataset(dev_path, encoding=bench.encoding)
        test = read_dataset(test_path, encoding=bench.encoding)
        row["size"] = {"train": len(train), "dev": len(dev), "test": len(test)}
        row["protocol_text"] = f"train {len(train):,} / dev {len(dev):,} / test {len(test):,}"
        runs = []
        for r in range(seeds):
            begun = time.perf_counter()
            classifier = train_classifier(
                train.texts,
                train.labels,
                dev=(dev.texts, dev.labels),
                clean=bench.clean,
                **{**options, "seed": seed + r},
            )
            report = evaluate_classifier(classifier, test.texts, test.labels)
            dev_accuracy = classifier.history.get("val_accuracy") or [None]
            runs.append(
                {
                    "seed": seed + r,
                    "accuracy": report["accuracy"],
                    "dev_accuracy": None if classifier.best_epoch is None else dev_accuracy[classifier.best_epoch - 1],
                    "best_epoch": classifier.best_epoch,
                    "epochs": len(classifier.history.get("loss", [])),
                    "seconds": time.perf_counter() - begun,
                    "report": report,
                }
            )
            say(
                f"{bench.name} seed {seed + r}: test accuracy {report['accuracy']:.4f} (dev-chosen epoch "
                f"{classifier.best_epoch} of {runs[-1]['epochs']}, {runs[-1]['seconds']:.0f} s)"
            )
        summary = spread([run["accuracy"] for run in runs])
        row["runs"] = runs
        row.update(accuracy=summary["mean"], std=summary["std"], spread="seeds" if seeds > 1 else None, n=len(runs))
    row["seconds"] = time.perf_counter() - start
    return row


def run_table(benchmarks, options: dict, *, data_dir=None, folds=10, run_folds=None, seeds=1, seed=0, jobs=1, say=None):
    """Every row of `benchmarks` whose data is found (the others are reported as skipped, with why)."""
    say = say or (lambda line: None)
    rows = []
    start = time.perf_counter()
    for bench in benchmarks:
        folder = data_folder(bench, data_dir)
        reason = missing(bench, folder)
        if reason:
            say(f"{bench.name}: skipped, {reason}")
            rows.append(
                {
                    "key": bench.key,
                    "name": bench.name,
                    "skipped": reason,
                    "kim": bench.kim.get(options.get("mode", "rand")),
                }
            )
            continue
        rows.append(
            run_row(
                bench, folder, options, folds=folds, run_folds=run_folds, seeds=seeds, seed=seed, jobs=jobs, say=say
            )
        )
    return {
        "rows": rows,
        "mode": options.get("mode", "rand"),
        "seeds": seeds,
        "seed": seed,
        "folds": folds,
        "epochs": options.get("epochs", 25),
        "batches": options.get("batches", "shuffle"),
        "seconds": time.perf_counter() - start,
    }


def duration(seconds: float) -> str:
    """1.23 → "1.2 s"; 2571 → "42 min 51 s"; 7384 → "2 h 03 min"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


MODE_NAMES = {
    "rand": "CNN-rand",
    "static": "CNN-static",
    "nonstatic": "CNN-non-static",
    "multichannel": "CNN-multichannel",
}


def format_table(table: dict) -> str:
    """The plain-text table: one row per data set, ours beside Kim's, then notes and the commands."""
    mode = MODE_NAMES.get(table["mode"], table["mode"])
    lines = [f"Kim (2014), Table 2, {mode}, beside ours (accuracy %)", ""]
    header = ("data set", "protocol", "ours", "Kim", "wall time")
    body = []
    notes = []
    for row in table["rows"]:
        kim = "—" if row.get("kim") is None else f"{row['kim']:.1f}"
        if row.get("skipped"):
            body.append((row["name"], "skipped: data not found", "—", kim, "—"))
            continue
        if row.get("kim_note"):
            kim += "*"
            if row["kim_note"] not in notes:
                notes.append(row["kim_note"])
        ours = f"{100 * row['accuracy']:.2f}"
        if row.get("spread"):
            ours += f" ± {100 * row['std']:.2f}"
        body.append((row["name"], row["protocol_text"], ours, kim, duration(row["seconds"])))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    for r in [header, *body]:
        lines.append("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))))
    lines.append("")
    for i, note in enumerate(notes):
        lines.append("*" * (i + 1) + " " + note + ".")
    spreads = {row.get("spread") for row in table["rows"] if not row.get("skipped")}
    explained = {
        "folds": "over the folds of one cross-validation",
        "runs": f"over {table['seeds']} complete cross-validations (each run's mean is in --json)",
        "seeds": f"over {table['seeds']} trainings with different seeds",
    }
    said = [explained[s] for s in ("folds", "runs", "seeds") if s in spreads]
    if said:
        lines.append("± is the sample standard deviation " + "; ".join(said) + ".")
    lines.append(f"total wall time {duration(table['seconds'])}")
    for row in table["rows"]:
        if row.get("skipped"):
            lines.append(f"{row['name']}: {row['skipped']}")
    ran = [row for row in table["rows"] if not row.get("skipped")]
    if ran:
        lines += ["", "each row alone:"]
        for row in ran:
            lines.append(f"  {row['name']}: {row['command']}")
            if row["protocol"] == "split" and len(row["runs"]) > 1:
                seeds = [run["seed"] for run in row["runs"]]
                lines.append(f"    (once per seed: --seed {', '.join(map(str, seeds))})")
    return "\n".join(lines)
