"""Video-MMMU: ``{Perception,Comprehension,Adaptation}/test-00000-of-00001.parquet``, multiple choice only.

Videos are looked up as ``{track}/{id}.mp4``, ``videos/{track}/{id}.mp4``, ``videos/{id}.mp4``, else any
``{id}.mp4`` under the root (the release's domain archives unpack to ``<Domain>/<id>.mp4``). The
Adaptation track also shows an image (the parquet ``image`` column, a path or encoded bytes; bytes are
written once to a content-addressed cache file): as the reference, the question text is split at
``<image 1>`` and the image inserted there (``[video, text before, image, text after]``); a question
without the marker gets the image after the video. ``--no-image`` leaves it out (``with_image`` setting).
Scored as the reference: first character of ``response`` in A-N, else "A"; accuracy per track; Avg =
the unweighted mean of the three tracks.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from eval.scoring.common import Metrics, accuracy_groups, failed_count, mcq_correct
from eval.scoring.formats import PredictionFileError, need, reference_prediction
from eval.scoring.records import Prediction
from eval.tasks.base import MCQ, BenchmarkError, EvalSample, Task, letters, read_parquet_rows, require, require_file
from tools.files import atomic_write_bytes

TRACKS = ("Perception", "Comprehension", "Adaptation")
PARQUET = "{track}/test-00000-of-00001.parquet"
MAX_OPTIONS = 14  # A-N
HUB = {
    "repo_id": "lmms-lab/VideoMMMU",
    "repo_type": "dataset",
    "annotations": [PARQUET.format(track=t) for t in TRACKS],
    "videos": "domain zips (Art.zip ... Science.zip -> <Domain>/<id>.mp4, with __MACOSX/ junk)",
}


def _find_video(root: Path, track: str, video_id: str, index: dict[str, Path]) -> Path | None:
    """``{track}/{id}.mp4``, ``videos/{track}/{id}.mp4``, ``videos/{id}.mp4``, else any ``{id}.mp4`` under the root."""
    for candidate in (
        root / track / f"{video_id}.mp4",
        root / "videos" / track / f"{video_id}.mp4",
        root / "videos" / f"{video_id}.mp4",
    ):
        if candidate.exists():
            return candidate
    if not index:
        index.update({p.stem: p for p in sorted(root.rglob("*.mp4")) if "__MACOSX" not in p.parts})
    return index.get(video_id)


def _image_file(value, where: str, cache_dir: Path) -> str | None:
    """A path to the Adaptation image: its own path if it exists, else its bytes written to ``cache_dir``."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("bytes"):
            data = value["bytes"]
            target = cache_dir / f"{hashlib.sha1(data).hexdigest()}.png"
            if not target.exists():
                atomic_write_bytes(target, data)
            return str(target)
        value = value.get("path")
    if isinstance(value, str) and value:
        return value
    raise BenchmarkError(f"{where}: field 'image' must be a path or {{'bytes': ...}}, got {type(value).__name__}")


def load_videommmu(
    root: str | Path, check_videos: bool = True, image_cache_dir: str | Path | None = None
) -> list[EvalSample]:
    """Question + "\\nA. opt" lines (A-N); one track per ``fields['track']``; Adaptation adds its image."""
    root = Path(root)
    cache_dir = Path(image_cache_dir) if image_cache_dir else Path(tempfile.gettempdir()) / "videotemp_eval_images"
    samples = []
    video_index: dict[str, Path] = {}
    for track in TRACKS:
        path = require_file(root / PARQUET.format(track=track), f"Video-MMMU {track} parquet")
        for row_no, row in enumerate(read_parquet_rows(path)):
            where = f"{path} row {row_no}"
            if row.get("question_type", "multiple-choice") != "multiple-choice":
                continue
            options = [str(o) for o in (row.get("options") or [])]
            if not options:
                continue
            if len(options) > MAX_OPTIONS:
                raise BenchmarkError(f"{where}: {len(options)} options, at most {MAX_OPTIONS} (A-N) expected")
            video_id = str(require(row, "id", where))
            video = _find_video(root, track, video_id, video_index)
            if video is None:
                if check_videos:
                    raise BenchmarkError(f"missing video of {where}: no {video_id}.mp4 under {root}")
                video = root / track / f"{video_id}.mp4"
            question = str(require(row, "question", where)) + "".join(
                f"\n{letter}. {opt}" for letter, opt in zip(letters(len(options)), options)
            )
            image = _image_file(row.get("image"), where, cache_dir) if track == "Adaptation" else None
            samples.append(
                EvalSample(
                    id=f"{track}/{video_id}",
                    benchmark="videommmu",
                    kind=MCQ,
                    video=str(video),
                    question=question,
                    answer=str(require(row, "answer", where)).strip()[:1],
                    image=image,
                    fields={"track": track},
                )
            )
    return samples


def score_videommmu(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Accuracy per track; Avg = unweighted mean of the three tracks."""
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in preds:
        track = str(p.fields.get("track"))
        if track not in TRACKS:
            raise ValueError(f"sample {p.id}: unknown Video-MMMU track {track!r}; expected one of {TRACKS}")
        groups[track].append(mcq_correct(p, "ABCDEFGHIJKLMN", convention))
    accuracy_groups(groups, "acc", out, notes, order=TRACKS)
    present = [out[f"acc/{t}"] for t in TRACKS if f"acc/{t}" in out]
    if len(present) == len(TRACKS):
        out["avg"] = sum(present) / len(present)
    else:
        notes.append("avg: needs all three tracks")
    failed_count(preds, out, notes)
    return out, notes


def read_reference(data: Any, path: Path, meta_path: Path | None = None) -> list[Prediction]:
    """The reference's JSONL ``{question, gt_answer, task, video_path, image_path, response, conv_history}``."""
    if not isinstance(data, list):
        raise PredictionFileError(f"{path}: expected JSONL records of the reference's Video-MMMU eval")
    return [
        reference_prediction(
            r,
            f"{path}:{i + 1}",
            default_id=i,
            answer=str(need(r, "gt_answer", f"{path}:{i + 1}")),
            fields={"track": need(r, "task", f"{path}:{i + 1}")},
        )
        for i, r in enumerate(data)
    ]


def fixture(directory: Path, src: dict[str, Path]) -> None:
    from eval.tasks.fixtures import place, png_bytes, write_parquet

    for track, key in {"Perception": "a", "Comprehension": "b", "Adaptation": "a"}.items():
        place(src[key], directory / track / f"{track.lower()}_{key}.mp4")
        question = f"{track}: what colour is the square?"
        if track == "Adaptation":
            question = "Look at <image 1> and the video. What colour is the square?"
        rows = [
            {
                "id": f"{track.lower()}_{key}",
                "question": question,
                "options": ["red", "blue", "green"],
                "answer": "A" if key == "a" else "B",
                "question_type": "multiple-choice",
                "image": None,
            }
        ]
        rows.append(
            {
                "id": f"{track.lower()}_{key}",
                "question": "Describe the video.",
                "options": [],
                "answer": "a square",
                "question_type": "open",
                "image": None,
            }
        )
        if track == "Adaptation":
            for row in rows:
                row["image"] = {"bytes": png_bytes(), "path": "adaptation.png"}
        write_parquet(directory / PARQUET.format(track=track), rows)


TASKS = [
    Task(
        name="videommmu",
        kind=MCQ,
        directory="videommmu",
        load=load_videommmu,
        score=score_videommmu,
        read_reference=read_reference,
        fixture=fixture,
        order=40,
        hub=HUB,
        description="Video-MMMU, multiple choice",
    )
]
