"""The README's speed table from `python -m rankconv.bench --json` files: the first file's figures,
and the ratios of the others beside them (cases a later run lacks show "-").

python benchmarks/readme_table.py run1.json [run2.json ...]
"""

import json
import math
import sys


def _fmt(ms: float) -> str:
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _ratio(row, label):
    return row[label]["ratio"] if row and label in row else None


def main(paths):
    runs = [json.load(open(path, encoding="utf-8")) for path in paths]
    by_case = [{row["case"]: row for row in run["conv"]} for run in runs]
    header = "| case | fwd ms | PyTorch fwd ms | ratio | fwd+bwd ms | PyTorch ms | ratio | peak MB ours / PyTorch | algorithm (fwd/bwd) | regret fwd / fwd+bwd |"
    if len(runs) > 1:
        header += " other runs' ratios |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in runs[0]["conv"]:
        forward, both = row["forward"], row["fwd+bwd"]
        peaks = row.get("peak_mb") or {}
        peak = "-"
        if peaks.get("rankconv") is not None and peaks.get("pytorch") is not None:
            peak = f"{peaks['rankconv']:.0f} / {peaks['pytorch']:.0f}"
        regret = row.get("regret")
        regret_text = f"{regret['forward']:.2f} / {regret['fwd+bwd']:.2f}" if regret else "-"
        cells = [
            row["case"],
            _fmt(forward["rankconv_ms"]),
            _fmt(forward["pytorch_ms"]),
            f"{forward['ratio']:.2f}",
            _fmt(both["rankconv_ms"]),
            _fmt(both["pytorch_ms"]),
            f"{both['ratio']:.2f}",
            peak,
            row["algorithm"],
            regret_text,
        ]
        if len(runs) > 1:
            later = []
            for cases in by_case[1:]:
                other = cases.get(row["case"])
                pair = [_ratio(other, "forward"), _ratio(other, "fwd+bwd")]
                later.append(" / ".join("-" if r is None else f"{r:.2f}" for r in pair))
            cells.append("; ".join(later))
        lines.append("| " + " | ".join(cells) + " |")
    for label in ("forward", "fwd+bwd"):
        for i, run in enumerate(runs):
            ratios = [row[label]["ratio"] for row in run["conv"]]
            mean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            lines.append(f"<!-- run {i + 1} {label}: geometric mean {mean:.2f}, lowest {min(ratios):.2f} -->")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
