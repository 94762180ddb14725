"""Command line: `rankconv demo` (the seed, reproduced on its own numbers)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time

import numpy as np

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
    start = time.perf_counter()
    y1 = conv1d(x)
    time_1d = time.perf_counter() - start
    lifted = equivalence.lift(conv1d)
    start = time.perf_counter()
    y2 = lifted(equivalence.lift_inputs(x))
    time_2d = time.perf_counter() - start
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
            ["layer", "kernel", "output", "seconds"],
            [
                ("Conv1D(64, 3)", "(3, 300, 64)", _shape(eq["conv1d_output_shape"]), f"{eq['conv1d_seconds']:.3f}"),
                (
                    eq["lifted_layer"],
                    _shape(eq["lifted_kernel_shape"]),
                    _shape(eq["lifted_output_shape"]),
                    f"{eq['lifted_conv2d_seconds']:.3f}",
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
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        _print_demo(result)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {value}")
    return value


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
    demo.add_argument("--batch", type=_positive_int, default=8, help="sentences in the equivalence batch (default 8)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the random batch (default 0)")
    demo.set_defaults(handler=_demo_command)
    from rankconv.text.cli import add_parser as add_text_parser

    add_text_parser(commands)
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
