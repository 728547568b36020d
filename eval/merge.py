"""Merge the shard prediction files of a benchmark into ``<output_dir>/<benchmark>.jsonl`` (+ settings).

    python eval/merge.py videomme --output-dir runs/eval

Refuses (exit status 1, one line saying why) while a shard is missing or incomplete, when the shards'
settings differ (model, frames, pixels, sampling, prompt version, ...), or when an id is in two shards.
The merge is then scored like any prediction file: ``python eval/score.py videomme --input-file runs/eval/videomme.jsonl``.
"""

from __future__ import annotations

import argparse
import sys

from eval.predictions import CorruptPredictions, merge_shards
from eval.tasks import BenchmarkError, get_task
from tools.cli import ArgumentParser


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmark", help="benchmark whose <benchmark>.shard-i-of-n.jsonl files to merge")
    p.add_argument("--output-dir", default="runs/eval", help="the run's output directory (default: runs/eval)")
    args = p.parse_args(argv)
    try:
        target = merge_shards(args.output_dir, get_task(args.benchmark).name)
    except (CorruptPredictions, BenchmarkError, OSError) as exc:
        print(f"merge: {exc}", file=sys.stderr)
        return 1
    print(f"[merge] {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
