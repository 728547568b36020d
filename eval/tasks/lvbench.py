"""LVBench: ``video_info.meta.jsonl`` (one line per video: ``key``, ``qa`` list), videos ``{key}.mp4``.

The metadata comes from ``zai-org/LVBench``, the videos from ``lmms-lab/LVBench`` ``video_chunks/``.
Prompt: the question with "(A) " .. "(D) " rewritten as "A." .. "D." (exactly the reference's replacement,
no space after the dot). Scored as the reference: first character of ``response`` in A-E, else "A";
overall (micro) accuracy and per question type (a question counts for each of its types).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from eval.scoring.common import Metrics, accuracy_groups, failed_count, mcq_correct
from eval.scoring.formats import PredictionFileError, need, stored_response
from eval.scoring.records import Prediction
from eval.tasks.base import MCQ, BenchmarkError, EvalSample, Task, read_jsonl, require, require_file

META_FILE = "video_info.meta.jsonl"
VIDEO_DIRS = ("", "video_chunks", "videos", "video")
HUB = {
    "repo_id": "zai-org/LVBench",
    "repo_type": "dataset",
    "annotations": META_FILE,
    "videos": {"repo_id": "lmms-lab/LVBench", "files": "video_chunks/videos_chunk_*.zip (flat <key>.mp4)"},
}


def rewrite_options(question: str) -> str:
    """``"(A) red"`` -> ``"A.red"``: the reference's literal replacement of "(A) " .. "(D) " by "A." .. "D."."""
    for letter in "ABCD":
        question = question.replace(f"({letter}) ", f"{letter}.")
    return question


def find_video(root: Path, key: str, where: str, check: bool) -> Path:
    """``{key}.mp4`` in the root or a ``video_chunks/`` (``videos/``, ``video/``) folder."""
    candidates = [root / d / f"{key}.mp4" for d in VIDEO_DIRS]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    if check:
        require_file(candidates[0], f"video of {where} (also looked in {', '.join(VIDEO_DIRS[1:])}/)")
    return candidates[0]


def load_lvbench(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """Question with "(A) " options rewritten as "A."; broken down by question type (multi-label)."""
    root = Path(root)
    path = require_file(root / META_FILE, "LVBench metadata file")
    samples = []
    for lineno, video_item in read_jsonl(path):
        where = f"{path}:{lineno}"
        key = str(require(video_item, "key", where))
        video = find_video(root, key, where, check_videos)
        qas = require(video_item, "qa", where)
        if not isinstance(qas, list):
            raise BenchmarkError(f"{where}: field 'qa' must be a list")
        for j, qa in enumerate(qas):
            qwhere = f"{where} qa[{j}]"
            types = qa.get("question_type") or [] if isinstance(qa, dict) else []
            samples.append(
                EvalSample(
                    id=str(require(qa, "uid", qwhere)),
                    benchmark="lvbench",
                    kind=MCQ,
                    video=str(video),
                    question=rewrite_options(str(require(qa, "question", qwhere))),
                    answer=str(require(qa, "answer", qwhere)).strip().strip("()")[:1],
                    fields={"question_type": [str(t) for t in (types if isinstance(types, list) else [types])]},
                )
            )
    return samples


def score_lvbench(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Overall (micro) accuracy and per question type (a question counts for each of its types)."""
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in preds:
        correct = mcq_correct(p, "ABCDE", convention)
        groups["overall"].append(correct)
        for qtype in p.fields.get("question_type") or []:
            groups[f"type/{qtype}"].append(correct)
    if not preds:
        notes.append("no predictions matched the metadata")
    accuracy_groups(groups, "acc", out, notes, order=("overall",))
    failed_count(preds, out, notes)
    return out, notes


def read_reference(data: Any, path: Path, meta_path: Path | None) -> list[Prediction]:
    """The reference's ``{uid: response}`` object (or its JSONL of one-key objects while running) + the metadata."""
    if isinstance(data, list) and all(isinstance(d, dict) for d in data):
        answers: dict = {}
        for d in data:
            answers.update(d)
    elif isinstance(data, dict):
        answers = data
    else:
        raise PredictionFileError(f"{path}: expected the reference's LVBench {{uid: response}} object")
    if meta_path is None:
        candidate = path.parent / META_FILE
        if not candidate.exists():
            raise PredictionFileError(f"{path}: an LVBench {{uid: response}} file needs --meta-data-path ({META_FILE})")
        meta_path = candidate
    if not meta_path.is_file():
        raise PredictionFileError(f"LVBench metadata file {meta_path} does not exist")
    preds = []
    try:
        rows = list(read_jsonl(meta_path))
    except BenchmarkError as exc:
        raise PredictionFileError(str(exc)) from None
    for lineno, video in rows:
        for qa in video.get("qa", []):
            uid = str(need(qa, "uid", f"{meta_path}:{lineno}"))
            if uid not in answers:
                continue  # questions without a prediction are skipped (reference)
            types = qa.get("question_type") or []
            preds.append(
                Prediction(
                    id=uid,
                    response=stored_response(answers[uid]),
                    answer=str(qa.get("answer", ""))[:1],
                    fields={"question_type": types if isinstance(types, list) else [types]},
                )
            )
    return preds


def fixture(directory: Path, src: dict[str, Path]) -> None:
    from eval.tasks.fixtures import place
    from tools.files import atomic_write_jsonl

    place(src["a"], directory / "a.mp4")
    atomic_write_jsonl(
        directory / META_FILE,
        [
            {
                "key": "a",
                "type": "cartoon",
                "qa": [
                    {
                        "uid": "101",
                        "question": "What colour is the square?\n(A) red\n(B) blue\n(C) green\n(D) yellow",
                        "answer": "A",
                        "question_type": ["entity recognition"],
                        "time_reference": "00:02-00:05",
                    },
                    {
                        "uid": "102",
                        "question": "When does it appear?\n(A) 0-2 s\n(B) 2-5 s\n(C) 5-8 s\n(D) never",
                        "answer": "B",
                        "question_type": ["temporal grounding", "key information retrieval"],
                        "time_reference": "00:02-00:05",
                    },
                ],
            },
        ],
    )


TASKS = [
    Task(
        name="lvbench",
        kind=MCQ,
        directory="lvbench",
        load=load_lvbench,
        score=score_lvbench,
        read_reference=read_reference,
        fixture=fixture,
        order=50,
        hub=HUB,
        description="LVBench",
    )
]
