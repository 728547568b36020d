"""VideoTemp-Bench: ``data.jsonl`` with ``videos``, ``question`` (options inline), ``answer``, ``duration``, ``timestamp``.

One file feeds two benchmarks: ``videotemp`` (the multiple-choice question verbatim; accuracy per
duration bucket) and ``videotemp_g`` (the reference's ``videotemp-g``: find the segment that supports the
correct answer; mIoU, R@0.3/0.5/0.7 and their mean per bucket).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

from eval.scoring import extract
from eval.scoring.common import Metrics, accuracy_groups, failed_count, grounding_block, mcq_correct
from eval.scoring.formats import PredictionFileError, need, reference_prediction
from eval.scoring.records import Prediction
from eval.tasks.base import GROUNDING, MCQ, BenchmarkError, EvalSample, Task, as_span, read_jsonl, require, require_file
from tools.segments import iou

DATA_FILE = "data.jsonl"
DIRECTORY = "videotemp_bench"
# Download facts as data (data_prep/download.py may read them; nothing here depends on it).
HUB = {
    "repo_id": "Kwai-Keye/VideoTemp-Bench",
    "repo_type": "dataset",
    "annotations": DATA_FILE,
    "videos": "webdataset shards (*.tar / *.tar.gz) unpacked at the dataset root",
}
GROUNDING_PROMPT = (
    "Please find the start and end times of the video segment that contains the answer to the "
    "following question and answer:\n# Question: {stem}\n# Answer: {answer}\n"
    "The format should be: 'The event happens in the start time - end time'. "
    "For example, The event happens in the 24.30 - 30.42 seconds."
)
DURATION_BUCKETS = ("<3min", "3-10min", "10-20min", ">20min")
# An inline option: a capital letter and a dot, preceded by whitespace (or the start) and followed by a space.
_OPTION_RE = re.compile(r"(?:^|\s)([A-Z])\.\s")


def duration_bucket(seconds: float) -> str:
    """Duration bucket (boundaries belong to the upper bucket, as the reference)."""
    if seconds < 180:
        return "<3min"
    if seconds < 600:
        return "3-10min"
    if seconds < 1200:
        return "10-20min"
    return ">20min"


def split_inline_options(question: str) -> tuple[str, dict[str, str]]:
    """Split ``"stem A. x B. y"`` into the stem and ``{"A": "x", "B": "y"}``.

    Options are the letters A, B, C, ... found in order; the stem is the text before the first one.
    """
    marks: list[tuple[str, int, int]] = []
    expected = "A"
    for match in _OPTION_RE.finditer(question):
        if match.group(1) == expected:
            marks.append((expected, match.start(1), match.end()))
            expected = chr(ord(expected) + 1)
    if not marks:
        return question.strip(), {}
    options = {}
    for i, (letter, _, text_start) in enumerate(marks):
        text_end = marks[i + 1][1] if i + 1 < len(marks) else len(question)
        options[letter] = question[text_start:text_end].strip()
    return question[: marks[0][1]].strip(), options


# ----------------------------------------------------------------------------- loaders


def _items(root: Path, check_videos: bool) -> Iterator[tuple[str, dict, str, float, tuple[float, float], str]]:
    path = require_file(root / DATA_FILE, "VideoTemp-Bench annotation file")
    for lineno, item in read_jsonl(path):
        where = f"{path}:{lineno}"
        videos = require(item, "videos", where)
        if not isinstance(videos, list) or not videos:
            raise BenchmarkError(f"{where}: field 'videos' must be a non-empty list")
        video = Path(videos[0])
        video = video if video.is_absolute() else root / video
        if check_videos:
            require_file(video, f"video of {where}")
        duration = float(require(item, "duration", where))
        span = as_span(require(item, "timestamp", where), f"{where} field 'timestamp'")
        sample_id = str(item.get("id", item.get("qid", lineno - 1)))
        yield sample_id, item, str(video), duration, span, where


def load_videotemp(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """VideoTemp-Bench multiple choice: the question verbatim; accuracy per duration bucket."""
    samples = []
    for sample_id, item, video, duration, span, where in _items(Path(root), check_videos):
        answer = str(require(item, "answer", where)).strip()
        samples.append(
            EvalSample(
                id=sample_id,
                benchmark="videotemp",
                kind=MCQ,
                video=video,
                question=str(require(item, "question", where)),
                answer=answer[:1] or None,
                span=span,
                duration=duration,
                fields={"bucket": duration_bucket(duration)},
            )
        )
    return samples


def load_videotemp_grounding(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """VideoTemp-Bench grounding: find the segment supporting the correct answer; mIoU per bucket."""
    samples = []
    for sample_id, item, video, duration, span, where in _items(Path(root), check_videos):
        stem, options = split_inline_options(str(require(item, "question", where)))
        letter = str(require(item, "answer", where)).strip()[:1]
        if letter not in options:
            raise BenchmarkError(f"{where}: answer {letter!r} is not one of the inline options {sorted(options)}")
        samples.append(
            EvalSample(
                id=sample_id,
                benchmark="videotemp_g",
                kind=GROUNDING,
                video=video,
                question=GROUNDING_PROMPT.format(stem=stem, answer=options[letter]),
                span=span,
                duration=duration,
                fields={"bucket": duration_bucket(duration)},
            )
        )
    return samples


# ----------------------------------------------------------------------------- scoring


def _bucket(p: Prediction) -> str:
    if p.fields.get("bucket"):
        return str(p.fields["bucket"])
    if p.duration is None:
        raise ValueError(f"sample {p.id}: no duration to bucket by")
    return duration_bucket(float(p.duration))


def score_videotemp(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Accuracy per duration bucket and overall (micro): the first character of ``response`` in A-E, else "A"."""
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in preds:
        correct = mcq_correct(p, "ABCDE", convention)
        groups[_bucket(p)].append(correct)
        groups["overall"].append(correct)
    accuracy_groups(groups, "acc", out, notes, order=(*DURATION_BUCKETS, "overall"))
    failed_count(preds, out, notes)
    return out, notes


def score_videotemp_grounding(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Per bucket mIoU, R@0.3/0.5/0.7 and Avg (mean of the four), plus parse errors.

    Reference rule: the first two numbers of the whole response, in order (reversed: IoU 0).
    """
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[float]] = defaultdict(list)
    errors = 0
    for p in preds:
        if p.span is None:
            raise ValueError(f"sample {p.id}: no ground-truth timestamp")
        span = None
        if not p.failed:
            span = (
                extract.reference_grounding_span(p.response)
                if convention == "reference"
                else extract.first_answer_span(p.response)
            )
        errors += span is None
        value = iou(span, p.span) if span is not None else 0.0
        groups[_bucket(p)].append(value)
        groups["overall"].append(value)
    for name in (*DURATION_BUCKETS, "overall"):
        ious = groups.get(name, [])
        grounding_block(ious, name, out)
        if ious:
            out[f"{name}/avg"] = sum(out[f"{name}/{m}"] for m in ("miou", "r@0.3", "r@0.5", "r@0.7")) / 4
        else:
            notes.append(f"{name}: no samples, grounding metrics not defined")
    out["parse_errors"] = errors
    failed_count(preds, out, notes)
    return out, notes


def _read_reference(data: Any, path: Path, meta_path: Path | None, grounding: bool) -> list[Prediction]:
    """The reference's JSONL: the dataset item + ``response`` and ``conv_history``."""
    if not isinstance(data, list):
        raise PredictionFileError(f"{path}: expected JSONL records of the reference's videotemp eval")
    preds = []
    for i, r in enumerate(data):
        where = f"{path}:{i + 1}"
        need(r, "response", where)
        try:
            duration = float(need(r, "duration", where))
            span = as_span(r["timestamp"], f"{where} field 'timestamp'") if r.get("timestamp") is not None else None
        except (TypeError, ValueError) as exc:
            raise PredictionFileError(f"{where}: {exc}") from None
        if grounding and span is None:
            raise PredictionFileError(f"{where}: missing field 'timestamp'")
        answer = None if grounding else str(need(r, "answer", where))[:1]
        preds.append(reference_prediction(r, where, default_id=i, answer=answer, span=span, duration=duration))
    return preds


def fixture(directory: Path, src: dict[str, Path]) -> None:
    from eval.tasks.fixtures import COLOUR_QUESTION, place
    from tools.files import atomic_write_jsonl

    for key in src:
        place(src[key], directory / "videos" / f"{key}.mp4")
    atomic_write_jsonl(
        directory / DATA_FILE,
        [
            {
                "id": "vt0",
                "videos": ["videos/a.mp4"],
                "question": COLOUR_QUESTION,
                "answer": "A",
                "duration": 8.0,
                "timestamp": [2.0, 5.0],
            },
            {
                "id": "vt1",
                "videos": ["videos/b.mp4"],
                "question": COLOUR_QUESTION,
                "answer": "B",
                "duration": 8.0,
                "timestamp": [4.0, 7.0],
            },
            {
                "id": "vt2",
                "videos": ["videos/a.mp4"],
                "question": "When does the square appear? A. early B. late",
                "answer": "A",
                "duration": 8.0,
                "timestamp": [[2.0, 5.0]],
            },
        ],
    )


TASKS = [
    Task(
        name="videotemp",
        kind=MCQ,
        directory=DIRECTORY,
        load=load_videotemp,
        score=score_videotemp,
        read_reference=lambda data, path, meta: _read_reference(data, path, meta, grounding=False),
        fixture=fixture,
        order=10,
        hub=HUB,
        description="VideoTemp-Bench multiple choice",
    ),
    Task(
        name="videotemp_g",
        kind=GROUNDING,
        directory=DIRECTORY,
        load=load_videotemp_grounding,
        score=score_videotemp_grounding,
        read_reference=lambda data, path, meta: _read_reference(data, path, meta, grounding=True),
        aliases=("videotemp-g",),
        prompts=(GROUNDING_PROMPT,),
        order=11,
        hub=HUB,
        description="VideoTemp-Bench grounding (the reference's videotemp-g)",
    ),
]
