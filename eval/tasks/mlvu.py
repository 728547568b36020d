"""MLVU test split (multiple choice): ``test-ground-truth/test_mcq_gt.json``, videos under ``video/``.

Only the test split: the dev split has other questions and must never be mixed in. Scored as the
reference: a non-empty ``response`` whose first character equals the ground-truth letter (no default);
accuracy = correct / records; also M-Avg, the mean of the per-task accuracies.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from eval.scoring import extract
from eval.scoring.common import Metrics, accuracy_groups, failed_count
from eval.scoring.formats import PredictionFileError, need, reference_prediction
from eval.scoring.records import Prediction
from eval.tasks.base import MCQ, BenchmarkError, EvalSample, Task, letters, require, require_file
from tools.files import read_json

GT_FILE = "test-ground-truth/test_mcq_gt.json"
VIDEO_DIR = "video"
PROMPT_HEAD = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n"
)
HUB = {
    "repo_id": "MLVU/MLVU_Test",
    "repo_type": "dataset",
    "gated": True,
    "annotations": GT_FILE,
    "videos": "MLVU_Test/test_video.tar.gz.part-* (a split gzip tar: joined, then unpacked to video/<name>.mp4)",
}


def load_mlvu(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """Instruction + question + "\\nA. opt" lines (up to G); ground truth = letter of the candidate equal to ``answer``."""
    root = Path(root)
    path = require_file(root / GT_FILE, "MLVU test ground-truth file")
    try:
        items = read_json(path)
    except ValueError as exc:
        raise BenchmarkError(str(exc)) from None
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
                id=str(item.get("question_id", i)),
                benchmark="mlvu",
                kind=MCQ,
                video=str(video),
                question=PROMPT_HEAD + str(require(item, "question", where)) + options,
                answer=gt,
                duration=float(item["duration"]) if item.get("duration") is not None else None,
                fields={"task": task},
            )
        )
    return samples


def score_mlvu(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Overall accuracy (correct / records) and M-Avg (mean of per-task accuracies)."""
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in preds:
        if p.failed or p.answer is None:
            correct = False
        elif convention == "lmms":
            correct = extract.lenient_letter(p.response, "ABCDEFG") == p.answer[:1]
        else:
            correct = bool(p.response) and p.response[0] == p.answer[:1]
        groups[f"task/{p.fields.get('task', 'unknown')}"].append(correct)
        groups["overall"].append(correct)
    accuracy_groups(groups, "acc", out, notes, order=("overall",))
    tasks = [out[k] for k in out if k.startswith("acc/task/") and not k.endswith("/n")]
    if tasks:
        out["m_avg"] = sum(tasks) / len(tasks)
    failed_count(preds, out, notes)
    return out, notes


def read_reference(data: Any, path: Path, meta_path: Path | None = None) -> list[Prediction]:
    """The reference's JSONL: the dataset item + ``response``, ``gt_answer`` and ``conv_history``."""
    if not isinstance(data, list):
        raise PredictionFileError(f"{path}: expected JSONL records of the reference's MLVU eval")
    preds = []
    for i, r in enumerate(data):
        where = f"{path}:{i + 1}"
        need(r, "response", where)
        gt = r.get("gt_answer")
        preds.append(
            reference_prediction(
                r,
                where,
                default_id=i,
                answer=str(gt) if gt else None,
                fields={"task": r.get("question_type") or r.get("task_type") or "unknown"},
            )
        )
    return preds


def fixture(directory: Path, src: dict[str, Path]) -> None:
    from eval.tasks.fixtures import place, write_json

    for key in src:
        place(src[key], directory / VIDEO_DIR / f"{key}.mp4")
    write_json(
        directory / GT_FILE,
        [
            {
                "video": "a.mp4",
                "duration": 8.0,
                "question": "What colour is the square?",
                "candidates": ["blue", "red", "green", "yellow"],
                "answer": "red",
                "question_type": "plotQA",
                "question_id": "ml0",
            },
            {
                "video": "b.mp4",
                "duration": 8.0,
                "question": "What colour is the square?",
                "candidates": ["blue", "red", "green", "yellow"],
                "answer": "blue",
                "question_type": "plotQA",
                "question_id": "ml1",
            },
            {
                "video": "b.mp4",
                "duration": 8.0,
                "question": "How many squares appear?",
                "candidates": ["none", "one", "two", "three"],
                "answer": "one",
                "question_type": "count",
                "question_id": "ml2",
            },
        ],
    )


TASKS = [
    Task(
        name="mlvu",
        kind=MCQ,
        directory="mlvu",
        load=load_mlvu,
        score=score_mlvu,
        read_reference=read_reference,
        prompts=(PROMPT_HEAD,),
        fixture=fixture,
        order=30,
        hub=HUB,
        description="MLVU test split, multiple choice",
    )
]
