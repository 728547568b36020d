"""VideoTemp-Bench: ``data.jsonl`` with ``videos``, ``question`` (options inline), ``answer``, ``duration``, ``timestamp``.

One file feeds two benchmarks: ``videotemp`` (the multiple-choice question verbatim) and
``videotemp_g`` (find the segment that supports the correct answer).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from eval.benchmarks.base import (
    GROUNDING,
    MCQ,
    BenchmarkError,
    EvalSample,
    as_span,
    duration_bucket,
    read_jsonl,
    require,
    require_file,
)

DATA_FILE = "data.jsonl"
GROUNDING_PROMPT = (
    "Please find the start and end times of the video segment that contains the answer to the "
    "following question and answer:\n# Question: {stem}\n# Answer: {answer}\n"
    "The format should be: 'The event happens in the start time - end time'. "
    "For example, The event happens in the 24.30 - 30.42 seconds."
)
# An inline option: a capital letter and a dot, preceded by whitespace (or the start) and followed by a space.
_OPTION_RE = re.compile(r"(?:^|\s)([A-Z])\.\s")


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
    root = Path(root)
    samples = []
    for sample_id, item, video, duration, span, where in _items(root, check_videos):
        answer = str(require(item, "answer", where)).strip()
        samples.append(
            EvalSample(
                id=sample_id, benchmark="videotemp", kind=MCQ, video=video,
                question=str(require(item, "question", where)), answer=answer[:1] or None,
                span=span, duration=duration, fields={"bucket": duration_bucket(duration)},
            )
        )
    return samples


def load_videotemp_grounding(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """VideoTemp-Bench grounding: find the segment supporting the correct answer; mIoU per bucket."""
    root = Path(root)
    samples = []
    for sample_id, item, video, duration, span, where in _items(root, check_videos):
        stem, options = split_inline_options(str(require(item, "question", where)))
        letter = str(require(item, "answer", where)).strip()[:1]
        if letter not in options:
            raise BenchmarkError(f"{where}: answer {letter!r} is not one of the inline options {sorted(options)}")
        samples.append(
            EvalSample(
                id=sample_id, benchmark="videotemp_g", kind=GROUNDING, video=video,
                question=GROUNDING_PROMPT.format(stem=stem, answer=options[letter]),
                span=span, duration=duration, fields={"bucket": duration_bucket(duration)},
            )
        )
    return samples
