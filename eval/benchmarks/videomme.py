"""Video-MME without subtitles: ``videomme/test-00000-of-00001.parquet``, videos ``data/{videoID}.mp4``."""

from __future__ import annotations

from pathlib import Path

from eval.benchmarks.base import MCQ, BenchmarkError, EvalSample, read_parquet_rows, require, require_file

PARQUET = "videomme/test-00000-of-00001.parquet"
VIDEO_DIR = "data"
DURATIONS = ("short", "medium", "long")


def load_videomme(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """Question + one line per option ("A. ..."); broken down by duration, domain, sub-category, task type."""
    root = Path(root)
    path = require_file(root / PARQUET, "Video-MME annotation parquet")
    samples = []
    for row_no, row in enumerate(read_parquet_rows(path)):
        where = f"{path} row {row_no}"
        video_id = str(require(row, "videoID", where))
        video = root / VIDEO_DIR / f"{video_id}.mp4"
        if check_videos:
            require_file(video, f"video of {where}")
        options = list(require(row, "options", where))
        duration = str(require(row, "duration", where))
        if duration not in DURATIONS:
            raise BenchmarkError(f"{where}: field 'duration' must be one of {DURATIONS}, got {duration!r}")
        question = str(require(row, "question", where)) + "".join(f"\n{opt}" for opt in options)
        samples.append(
            EvalSample(
                id=str(row.get("question_id") or f"{video_id}-{row_no}"), benchmark="videomme", kind=MCQ,
                video=str(video), question=question, answer=str(require(row, "answer", where)).strip()[:1],
                fields={
                    "duration": duration,
                    "domain": str(require(row, "domain", where)),
                    "sub_category": str(require(row, "sub_category", where)),
                    "task_type": str(require(row, "task_type", where)),
                },
            )
        )
    return samples
