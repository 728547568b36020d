"""Score a benchmark's predictions: ours (eval/run.py) or the reference release's files (format detected).

    python eval/score.py videomme --input_file runs/eval/videomme.jsonl [--output_json metrics.json]
    python eval/score.py lvbench --input_file answers.json --meta_data_path data/lvbench/video_info.meta.jsonl

Prints the run's settings and a markdown table; ``--output_json`` writes every figure as a flat JSON
object ``{"<benchmark>/<metric>": value}`` (accuracies, IoUs and recalls in percent).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.benchmarks import BENCHMARKS  # noqa: E402
from eval.predictions import settings_path, write_json_atomic  # noqa: E402
from eval.scoring.formats import PredictionFileError, load_predictions  # noqa: E402
from eval.scoring.metrics import SCORERS, tool_stats  # noqa: E402


def score_file(benchmark: str, input_file: str | Path, meta_data_path: str | Path | None = None,
               convention: str = "reference") -> tuple[dict[str, float], list[str], str]:
    """(flat metrics prefixed ``<benchmark>/``, notes, detected format) of one prediction file."""
    preds, fmt = load_predictions(input_file, benchmark, meta_data_path)
    metrics, notes = SCORERS[benchmark](preds, convention=convention)
    metrics.update(tool_stats(preds))
    metrics["n"] = len(preds)
    return {f"{benchmark}/{k}": float(v) for k, v in metrics.items()}, notes, fmt


def markdown_table(metrics: dict[str, float]) -> str:
    lines = ["| metric | value |", "|---|---:|"]
    for key, value in metrics.items():
        shown = str(int(value)) if value.is_integer() else f"{value:.2f}"
        lines.append(f"| {key} | {shown} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmark", choices=sorted(BENCHMARKS), help="which benchmark's rules to apply")
    p.add_argument("--input_file", help="prediction file (default: runs/eval/<benchmark>.jsonl)")
    p.add_argument("--meta_data_path", help="LVBench: video_info.meta.jsonl for a reference {uid: response} file")
    p.add_argument("--convention", choices=("reference", "lmms"), default="reference",
                   help="answer extraction: the reference release's rules (default) or lmms-eval style "
                        "(lenient letter search, unparsable counted wrong). Video-MME always reports both.")
    p.add_argument("--output_json", help="write every figure as a flat JSON object here")
    args = p.parse_args(argv)
    input_file = Path(args.input_file or f"runs/eval/{args.benchmark}.jsonl")
    try:
        metrics, notes, fmt = score_file(args.benchmark, input_file, args.meta_data_path, args.convention)
    except (PredictionFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings_file = settings_path(input_file)
    print(f"## {args.benchmark}: {input_file} ({fmt} format, {args.convention} extraction)\n")
    if settings_file.exists():
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
        print("settings: " + ", ".join(f"{k}={settings[k]}" for k in sorted(settings)) + "\n")
    else:
        print("settings: unknown (no settings file beside the predictions)\n")
    print(markdown_table(metrics))
    for note in notes:
        print(f"note: {note}")
    if args.output_json:
        write_json_atomic(Path(args.output_json), metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
