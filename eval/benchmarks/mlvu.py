"""MLVU test split (multiple choice): ``test-ground-truth/test_mcq_gt.json``, videos under ``video/``.

Only the test split: the dev split has other questions and must never be mixed in.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.benchmarks.base import MCQ, BenchmarkError, EvalSample, letters, require, require_file

GT_FILE = "test-ground-truth/test_mcq_gt.json"
VIDEO_DIR = "video"
PROMPT_HEAD = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n"
)


def load_mlvu(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """Instruction + question + "\\nA. opt" lines (up to G); ground truth = letter of the candidate equal to ``answer``."""
    root = Path(root)
    path = require_file(root / GT_FILE, "MLVU test ground-truth file")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(items, list):
        raise BenchmarkError(f"{path}: expected a JSON array of questions")
    samples = []
    for i, item in enumerate(items):
        where = f"{path} item {i}"
        candidates = [str(c) for c in require(item, "candidates", where)]
        if not 1 <= len(candidates) <= 7:
            raise BenchmarkError(f"{where}: field 'candidates' must hold 1 to 7 options, got {len(candidates)}")
        answer = str(require(item, "answer", where))
        gt = letters(len(candidates))[candidates.index(answer)] if answer in candidates else None
        video = root / VIDEO_DIR / str(require(item, "video", where))
        if check_videos:
            require_file(video, f"video of {where}")
        options = "".join(f"\n{letter}. {c}" for letter, c in zip(letters(len(candidates)), candidates))
        task = str(item.get("question_type") or item.get("task_type") or "unknown")
        samples.append(
            EvalSample(
                id=str(item.get("question_id", i)), benchmark="mlvu", kind=MCQ, video=str(video),
                question=PROMPT_HEAD + str(require(item, "question", where)) + options, answer=gt,
                duration=float(item["duration"]) if item.get("duration") is not None else None,
                fields={"task": task},
            )
        )
    return samples
