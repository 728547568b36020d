"""The eval's local annotation format (what the Charades-STA, ActivityNet-MR, NExT-GQA and ReXTime converters write).

Layout: a directory holding ``annotations.jsonl``, one JSON object per line, video paths relative to
that directory (or absolute)::

    grounding (charades_sta, activitynet_mr):
      {"id": "v1_0", "video": "videos/v1.mp4", "duration": 30.5, "query": "a person opens a door", "span": [2.1, 7.8]}
    grounded QA (nextgqa, rextime):
      {"id": "q7", "video": "videos/v2.mp4", "duration": 61.0, "question": "Why did the man stop?",
       "options": ["to rest", "to talk", ...], "answer": "B", "span": [[12.0, 20.5], [31.0, 35.2]]}

``answer`` is a letter or a 0-based option index; ``span`` is the ground-truth (grounding) or evidence
(grounded QA) interval in seconds, or a list of several (NExT-GQA has several evidence spans for some
questions; the IoU of a prediction is its best IoU over them, the official metric); ``id`` defaults to
the line number; ``duration`` is optional. This module also holds the two scorers of these sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from eval.scoring import extract
from eval.scoring.common import Metrics, best_iou, failed_count, grounding_block, pct
from eval.scoring.records import Prediction
from eval.tasks.base import (
    GROUNDED_QA,
    GROUNDING,
    BenchmarkError,
    EvalSample,
    Task,
    as_spans,
    letters,
    read_jsonl,
    require,
    require_file,
)
from reward_fns.answer_parsing import first_letter
from tools import protocol
from tools.segments import Segment

ANNOTATIONS = "annotations.jsonl"
GROUNDING_PROMPT = protocol.SENTENCE_GROUNDING_PROMPT


def _common(root: Path, benchmark: str, check_videos: bool):
    path = require_file(root / ANNOTATIONS, f"{benchmark} annotation file")
    for lineno, item in read_jsonl(path):
        where = f"{path}:{lineno}"
        video = Path(str(require(item, "video", where)))
        video = video if video.is_absolute() else root / video
        if check_videos:
            require_file(video, f"video of {where}")
        spans = as_spans(require(item, "span", where), f"{where} field 'span'")
        try:
            duration = float(item["duration"]) if item.get("duration") is not None else None
        except (TypeError, ValueError):
            raise BenchmarkError(
                f"{where}: field 'duration' must be a number of seconds, got {item['duration']!r}"
            ) from None
        yield where, item, str(item.get("id", lineno - 1)), str(video), spans, duration


def grounding_loader(benchmark: str) -> Callable[..., list[EvalSample]]:
    """Loader of a sentence-grounding set in this format."""

    def load(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
        return [
            EvalSample(
                id=sample_id,
                benchmark=benchmark,
                kind=GROUNDING,
                video=video,
                question=GROUNDING_PROMPT.format(query=str(require(item, "query", where)).strip()),
                span=spans[0],
                spans=spans,
                duration=duration,
            )
            for where, item, sample_id, video, spans, duration in _common(Path(root), benchmark, check_videos)
        ]

    load.__doc__ = f"{benchmark}: sentence grounding from ``{ANNOTATIONS}``; mIoU and R@0.3/0.5/0.7."
    return load


def _answer_letter(value, n_options: int, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < n_options:
            raise BenchmarkError(f"{where}: answer index {value} out of range for {n_options} options")
        return letters(n_options)[value]
    letter = str(value).strip()[:1].upper()
    if letter not in letters(n_options):
        raise BenchmarkError(f"{where}: answer {value!r} is not a letter among {letters(n_options)}")
    return letter


def grounded_qa_loader(benchmark: str) -> Callable[..., list[EvalSample]]:
    """Loader of a grounded-QA set in this format (evidence: one span or several)."""

    def load(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
        samples = []
        for where, item, sample_id, video, spans, duration in _common(Path(root), benchmark, check_videos):
            options = [str(o) for o in require(item, "options", where)]
            if not 1 <= len(options) <= 26:
                raise BenchmarkError(f"{where}: field 'options' must hold 1 to 26 options, got {len(options)}")
            question = str(require(item, "question", where)) + "".join(
                f"\n{letter}. {opt}" for letter, opt in zip(letters(len(options)), options)
            )
            samples.append(
                EvalSample(
                    id=sample_id,
                    benchmark=benchmark,
                    kind=GROUNDED_QA,
                    video=video,
                    question=question,
                    answer=_answer_letter(require(item, "answer", where), len(options), where),
                    span=spans[0],
                    spans=spans,
                    duration=duration,
                )
            )
        return samples

    load.__doc__ = f"{benchmark}: multiple choice with evidence span(s) from ``{ANNOTATIONS}``; accuracy and mIoU."
    return load


def score_grounding(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Sentence grounding: the first predicted span of the answer; unparsable or start >= end is IoU 0."""
    ious = [0.0 if p.failed else best_iou(extract.first_answer_span(p.response), p.gt_spans()) for p in preds]
    out: Metrics = {}
    notes: list[str] = []
    grounding_block(ious, "all", out)
    failed_count(preds, out, notes)
    return out, notes


def grounded_span(p: Prediction) -> Segment | None:
    """Evidence span of a grounded-QA answer: a span written in the answer, else the first range of the last tool call."""
    span = extract.first_answer_span(p.response)
    if span is not None:
        return span
    if p.tool_calls:
        for call in reversed(p.tool_calls):
            if call:
                return call[0]
    return None


def score_grounded_qa(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Accuracy (first letter of the answer) and mIoU / R@k of the grounded span: its best IoU over the evidence spans."""
    out: Metrics = {}
    notes: list[str] = []
    hits, ious = [], []
    for p in preds:
        hits.append(not p.failed and p.answer is not None and first_letter(p.response) == p.answer[:1])
        ious.append(0.0 if p.failed else best_iou(grounded_span(p), p.gt_spans()))
    out["acc/n"] = len(hits)
    if hits:
        out["acc"] = pct(sum(hits), len(hits))
    grounding_block(ious, "grounding", out)
    failed_count(preds, out, notes)
    return out, notes


def grounding_fixture(name: str, query_a: str, query_b: str):
    """Fixture writer of a grounding set: two queries, one per source video."""

    def write(directory: Path, src: dict[str, Path]) -> None:
        from eval.tasks.fixtures import place
        from tools.files import atomic_write_jsonl

        for key in src:
            place(src[key], directory / "videos" / f"{key}.mp4")
        atomic_write_jsonl(
            directory / ANNOTATIONS,
            [
                {"id": f"{name}0", "video": "videos/a.mp4", "duration": 8.0, "query": query_a, "span": [2.0, 5.0]},
                {"id": f"{name}1", "video": "videos/b.mp4", "duration": 8.0, "query": query_b, "span": [4.0, 7.0]},
            ],
        )

    return write


def grounded_qa_fixture(name: str):
    """Fixture writer of a grounded-QA set: two questions (one with two evidence spans)."""

    def write(directory: Path, src: dict[str, Path]) -> None:
        from eval.tasks.fixtures import place
        from tools.files import atomic_write_jsonl

        for key in src:
            place(src[key], directory / "videos" / f"{key}.mp4")
        atomic_write_jsonl(
            directory / ANNOTATIONS,
            [
                {
                    "id": f"{name}0",
                    "video": "videos/a.mp4",
                    "duration": 8.0,
                    "question": "What colour is the square?",
                    "options": ["red", "blue", "green"],
                    "answer": "A",
                    "span": [2.0, 5.0],
                },
                {
                    "id": f"{name}1",
                    "video": "videos/b.mp4",
                    "duration": 8.0,
                    "question": "What colour is the square?",
                    "options": ["red", "blue", "green"],
                    "answer": 1,
                    "span": [[0.0, 1.0], [4.0, 7.0]],
                },
            ],
        )

    return write


def grounding_task(name: str, order: int, hub: dict, description: str, queries: tuple[str, str]) -> Task:
    """A sentence-grounding benchmark in this format."""
    return Task(
        name=name,
        kind=GROUNDING,
        directory=name,
        load=grounding_loader(name),
        score=score_grounding,
        prompts=(GROUNDING_PROMPT,),
        fixture=grounding_fixture(name, *queries),
        order=order,
        hub=hub,
        description=description,
    )


def grounded_qa_task(name: str, order: int, hub: dict, description: str) -> Task:
    """A grounded-QA benchmark in this format."""
    return Task(
        name=name,
        kind=GROUNDED_QA,
        directory=name,
        load=grounded_qa_loader(name),
        score=score_grounded_qa,
        fixture=grounded_qa_fixture(name),
        order=order,
        hub=hub,
        description=description,
    )
