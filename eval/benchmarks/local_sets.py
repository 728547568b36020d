"""Charades-STA, ActivityNet-MR, NExT-GQA and ReXTime in a simple local layout (no public release of these in the reference).

Layout: a directory holding ``annotations.jsonl``, one JSON object per line, video paths relative to
that directory (or absolute)::

    grounding (charades_sta, activitynet_mr):
      {"id": "v1_0", "video": "videos/v1.mp4", "duration": 30.5, "query": "a person opens a door", "span": [2.1, 7.8]}
    grounded QA (nextgqa, rextime):
      {"id": "q7", "video": "videos/v2.mp4", "duration": 61.0, "question": "Why did the man stop?",
       "options": ["to rest", "to talk", ...], "answer": "B", "span": [12.0, 20.5]}

``answer`` is a letter or a 0-based option index; ``span`` is the ground-truth (grounding) or evidence
(grounded QA) interval in seconds; ``id`` defaults to the line number; ``duration`` is optional.
"""

from __future__ import annotations

from pathlib import Path

from eval.benchmarks.base import (
    GROUNDED_QA,
    GROUNDING,
    BenchmarkError,
    EvalSample,
    as_span,
    letters,
    read_jsonl,
    require,
    require_file,
)

ANNOTATIONS = "annotations.jsonl"
GROUNDING_PROMPT = (
    "Please find the visual event described by a sentence in the video, determining its starting and "
    "ending times. The format should be: 'The event happens in the start time - end time'. "
    "For example, The event happens in the 24.30 - 30.42 seconds.\n# Sentence: {query}"
)


def _common(root: Path, benchmark: str, check_videos: bool):
    path = require_file(root / ANNOTATIONS, f"{benchmark} annotation file")
    for lineno, item in read_jsonl(path):
        where = f"{path}:{lineno}"
        video = Path(str(require(item, "video", where)))
        video = video if video.is_absolute() else root / video
        if check_videos:
            require_file(video, f"video of {where}")
        span = as_span(require(item, "span", where), f"{where} field 'span'")
        duration = float(item["duration"]) if item.get("duration") is not None else None
        yield where, item, str(item.get("id", lineno - 1)), str(video), span, duration


def _grounding_loader(benchmark: str):
    def load(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
        return [
            EvalSample(
                id=sample_id, benchmark=benchmark, kind=GROUNDING, video=video,
                question=GROUNDING_PROMPT.format(query=str(require(item, "query", where)).strip()),
                span=span, duration=duration,
            )
            for where, item, sample_id, video, span, duration in _common(Path(root), benchmark, check_videos)
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


def _grounded_qa_loader(benchmark: str):
    def load(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
        samples = []
        for where, item, sample_id, video, span, duration in _common(Path(root), benchmark, check_videos):
            options = [str(o) for o in require(item, "options", where)]
            question = str(require(item, "question", where)) + "".join(
                f"\n{letter}. {opt}" for letter, opt in zip(letters(len(options)), options)
            )
            samples.append(
                EvalSample(
                    id=sample_id, benchmark=benchmark, kind=GROUNDED_QA, video=video, question=question,
                    answer=_answer_letter(require(item, "answer", where), len(options), where),
                    span=span, duration=duration,
                )
            )
        return samples

    load.__doc__ = f"{benchmark}: multiple choice with an evidence span from ``{ANNOTATIONS}``; accuracy and mIoU."
    return load


load_charades_sta = _grounding_loader("charades_sta")
load_activitynet_mr = _grounding_loader("activitynet_mr")
load_nextgqa = _grounded_qa_loader("nextgqa")
load_rextime = _grounded_qa_loader("rextime")
