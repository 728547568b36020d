"""Score a benchmark's predictions: ours (eval/run.py) or the reference release's files (format detected).

    python eval/score.py videomme --input-file runs/eval/videomme.jsonl [--output-json metrics.json]
    python eval/score.py videotemp-g --input-file eval/videotemp/output/test-g.jsonl     # the reference's names work too
    python eval/score.py lvbench --input-file answers.json --meta-data-path data/lvbench/video_info.meta.jsonl

Prints the run's settings and a markdown table; ``--output-json`` writes every figure as a flat JSON
object ``{"<benchmark>/<metric>": value}`` (accuracies, IoUs and recalls in percent). Repeated sample ids
are scored once (the first record) and a note says how many were dropped. A malformed file gives a
one-line error naming the file and line (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from eval.predictions import settings_path, write_json_atomic
from eval.scoring.common import tool_stats
from eval.scoring.formats import PredictionFileError, load_predictions
from eval.tasks import BenchmarkError, get_task, task_names
from tools.cli import ArgumentParser


def score_file(
    benchmark: str, input_file: str | Path, meta_data_path: str | Path | None = None, convention: str = "reference"
) -> tuple[dict[str, float], list[str], str]:
    """(flat metrics prefixed ``<benchmark>/``, notes, detected format) of one prediction file."""
    task = get_task(benchmark)
    preds, fmt, notes = load_predictions(input_file, task.name, meta_data_path)
    metrics, score_notes = task.score(preds, convention=convention)
    metrics.update(tool_stats(preds))
    metrics["n"] = len(preds)
    return {f"{task.name}/{k}": float(v) for k, v in metrics.items()}, notes + score_notes, fmt


def markdown_table(metrics: dict[str, float]) -> str:
    lines = ["| metric | value |", "|---|---:|"]
    for key, value in metrics.items():
        shown = str(int(value)) if value.is_integer() else f"{value:.2f}"
        lines.append(f"| {key} | {shown} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "benchmark",
        choices=task_names(with_aliases=True),
        metavar="benchmark",
        help=f"which benchmark's rules to apply: {', '.join(task_names(with_aliases=True))}",
    )
    p.add_argument("--input-file", help="prediction file (default: runs/eval/<benchmark>.jsonl)")
    p.add_argument("--meta-data-path", help="LVBench: video_info.meta.jsonl for a reference {uid: response} file")
    p.add_argument(
        "--convention",
        choices=("reference", "lmms"),
        default="reference",
        help="answer extraction: the reference release's rules (default) or lmms-eval style "
        "(lenient letter search, unparsable counted wrong). Video-MME always reports both.",
    )
    p.add_argument("--output-json", help="write every figure as a flat JSON object here")
    # The reference's Video-MME switches: every breakdown (also within each duration) is always computed; accepted
    # so that the reference's command lines run unchanged.
    for flag in ("--return-categories-accuracy", "--return-sub-categories-accuracy", "--return-task-types-accuracy"):
        p.add_argument(
            flag, action="store_true", help="Video-MME: accepted for the reference's command line (always reported)"
        )
    p.add_argument("--video-duration-type", help="Video-MME: comma-separated durations to show (default: all)")
    return p


def _shown(metrics: dict[str, float], benchmark: str, durations: str | None) -> dict[str, float]:
    if benchmark != "videomme" or not durations:
        return metrics
    keep = {d.strip() for d in durations.split(",")}
    out = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) > 3 and parts[2] == "duration" and parts[3] not in keep:
            continue
        out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    benchmark = get_task(args.benchmark).name
    input_file = Path(args.input_file or f"runs/eval/{benchmark}.jsonl")
    try:
        metrics, notes, fmt = score_file(benchmark, input_file, args.meta_data_path, args.convention)
        settings_file = settings_path(input_file)
        settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.exists() else None
        if settings is not None and not isinstance(settings, dict):
            raise PredictionFileError(f"{settings_file}: expected a JSON object of settings")
    except json.JSONDecodeError as exc:
        print(f"error: {settings_path(input_file)}:{exc.lineno}: not valid JSON ({exc.msg})", file=sys.stderr)
        return 2
    except (PredictionFileError, BenchmarkError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"## {benchmark}: {input_file} ({fmt} format, {args.convention} extraction)\n")
    if settings is not None:
        earlier = settings.get("earlier_settings") or []
        shown = {k: v for k, v in settings.items() if k != "earlier_settings"}
        print("settings: " + ", ".join(f"{k}={shown[k]}" for k in sorted(shown)))
        if earlier:
            print(
                f"warning: the predictions mix settings: --force appended over {len(earlier)} earlier setting(s), "
                f"kept as earlier_settings in {settings_path(input_file)}"
            )
        print()
    else:
        print("settings: unknown (no settings file beside the predictions)\n")
    print(markdown_table(_shown(metrics, benchmark, args.video_duration_type)))
    for note in notes:
        print(f"note: {note}")
    if args.output_json:
        write_json_atomic(Path(args.output_json), metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
