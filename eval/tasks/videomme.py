"""Video-MME without subtitles: ``videomme/test-00000-of-00001.parquet``, videos ``data/{videoID}.mp4``.

Scored both ways: ``ref/...`` with the reference release's extraction (unparsable answers left out of
numerator and denominator), ``lmms/...`` with the official / lmms-eval one (unparsable counted wrong).
Breakdowns: overall and per duration, and per domain, sub-category and task type both overall and
within each duration (``ref/duration/short/domain/Knowledge``: the reference's
``--return_categories_accuracy --return_sub_categories_accuracy --return_task_types_accuracy`` tables).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from eval.scoring import extract
from eval.scoring.common import Metrics, accuracy_groups, failed_count
from eval.scoring.formats import PredictionFileError, need, reference_prediction
from eval.scoring.records import Prediction
from eval.tasks.base import MCQ, BenchmarkError, EvalSample, Task, read_parquet_rows, require, require_file

PARQUET = "videomme/test-00000-of-00001.parquet"
VIDEO_DIR = "data"
DURATIONS = ("short", "medium", "long")
BREAKDOWNS = ("domain", "sub_category", "task_type")
HUB = {
    "repo_id": "lmms-lab/Video-MME",
    "repo_type": "dataset",
    "annotations": PARQUET,
    "videos": "videos_chunked_*.zip, each holding data/<videoID>.mp4",
}


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
                id=str(row.get("question_id") or f"{video_id}-{row_no}"),
                benchmark="videomme",
                kind=MCQ,
                video=str(video),
                question=question,
                answer=str(require(row, "answer", where)).strip()[:1],
                fields={
                    "duration": duration,
                    "domain": str(require(row, "domain", where)),
                    "sub_category": str(require(row, "sub_category", where)),
                    "task_type": str(require(row, "task_type", where)),
                },
            )
        )
    return samples


def score_videomme(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Accuracy overall, per duration, per domain / sub-category / task type overall and within each duration."""
    out: Metrics = {}
    notes: list[str] = []
    for variant, extractor, skip in (
        ("ref", extract.videomme_reference_letter, True),
        ("lmms", extract.videomme_lmms_letter, False),
    ):
        groups: dict[str, list[bool]] = defaultdict(list)
        unparsed = 0
        for p in preds:
            letter = None if p.failed else extractor(p.response)
            if letter is None:
                unparsed += 1
                if skip:
                    continue
            correct = letter is not None and letter == (p.answer or "")[:1]
            duration = str(p.fields.get("duration"))
            known = duration in DURATIONS
            if known:
                groups[f"duration/{duration}"].append(correct)
            elif variant == "ref":
                notes.append(f"sample {p.id}: unknown duration category {duration!r} (counted in overall only)")
            for key in BREAKDOWNS:
                if p.fields.get(key) is not None:
                    groups[f"{key}/{p.fields[key]}"].append(correct)
                    if known:
                        groups[f"duration/{duration}/{key}/{p.fields[key]}"].append(correct)
            groups["overall"].append(correct)
        out[f"{variant}/unparsed"] = unparsed
        accuracy_groups(groups, variant, out, notes, order=("overall", *(f"duration/{d}" for d in DURATIONS)))
    failed_count(preds, out, notes)
    return out, notes


def read_reference(data: Any, path: Path, meta_path: Path | None = None) -> list[Prediction]:
    """The reference's ``test.json``: an array of videos with their ``questions`` (or the flat JSONL while running)."""
    if not isinstance(data, list):
        raise PredictionFileError(f"{path}: expected the reference's Video-MME array of videos (or flat JSONL records)")
    preds = []
    flat = bool(data) and isinstance(data[0], dict) and "questions" not in data[0]
    videos = [{"questions": [r], **r} if isinstance(r, dict) else r for r in data] if flat else data
    for v_no, video in enumerate(videos):
        for q_no, q in enumerate(need(video, "questions", f"{path} video {v_no}")):
            where = f"{path} video {v_no} question {q_no}"
            fields = {
                "duration": need(video, "duration", where),
                "domain": video.get("domain"),
                "sub_category": video.get("sub_category"),
                "task_type": need(q, "task_type", where),
            }
            need(q, "response", where)
            preds.append(
                reference_prediction(
                    q, where, default_id=f"{v_no}-{q_no}", answer=str(need(q, "answer", where))[:1], fields=fields
                )
            )
    return preds


def fixture(directory: Path, src: dict[str, Path]) -> None:
    from eval.tasks.fixtures import place, write_parquet

    for key in src:
        place(src[key], directory / VIDEO_DIR / f"{key}.mp4")
    opts = ["A. red", "B. blue", "C. green", "D. yellow"]
    write_parquet(
        directory / PARQUET,
        [
            {
                "video_id": "001",
                "duration": "short",
                "domain": "Knowledge",
                "sub_category": "Colours",
                "url": "",
                "videoID": "a",
                "question_id": "001-1",
                "task_type": "Object Recognition",
                "question": "What colour is the square?",
                "options": opts,
                "answer": "A",
            },
            {
                "video_id": "002",
                "duration": "medium",
                "domain": "Knowledge",
                "sub_category": "Colours",
                "url": "",
                "videoID": "b",
                "question_id": "002-1",
                "task_type": "Object Recognition",
                "question": "What colour is the square?",
                "options": opts,
                "answer": "B",
            },
            {
                "video_id": "002",
                "duration": "long",
                "domain": "Sports",
                "sub_category": "Timing",
                "url": "",
                "videoID": "b",
                "question_id": "002-2",
                "task_type": "Temporal Perception",
                "question": "Is the square there at the start?",
                "options": ["A. yes", "B. no", "C. partly", "D. unknown"],
                "answer": "B",
            },
        ],
    )


TASKS = [
    Task(
        name="videomme",
        kind=MCQ,
        directory="videomme",
        load=load_videomme,
        score=score_videomme,
        read_reference=read_reference,
        fixture=fixture,
        order=20,
        hub=HUB,
        description="Video-MME without subtitles",
    )
]
