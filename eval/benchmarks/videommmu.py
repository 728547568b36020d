"""Video-MMMU: ``{Perception,Comprehension,Adaptation}/test-00000-of-00001.parquet``, multiple choice only.

Videos are looked up as ``{track}/{id}.mp4``, ``videos/{track}/{id}.mp4``, ``videos/{id}.mp4``, else any
``{id}.mp4`` under the root (the release's archives unpack to varying folders). The
Adaptation track also shows an image after the video (the parquet ``image`` column, a path or encoded
bytes; bytes are written once to a content-addressed cache file). ``eval/run.py`` puts it in the prompt
by default, as the reference does; ``--no_image`` leaves it out (recorded as ``with_image`` in the settings).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from eval.benchmarks.base import MCQ, BenchmarkError, EvalSample, letters, read_parquet_rows, require, require_file

TRACKS = ("Perception", "Comprehension", "Adaptation")
PARQUET = "{track}/test-00000-of-00001.parquet"
MAX_OPTIONS = 14  # A-N


def _find_video(root: Path, track: str, video_id: str, index: dict[str, Path]) -> Path | None:
    """``{track}/{id}.mp4``, ``videos/{track}/{id}.mp4``, ``videos/{id}.mp4``, else any ``{id}.mp4`` under the root."""
    for candidate in (root / track / f"{video_id}.mp4", root / "videos" / track / f"{video_id}.mp4", root / "videos" / f"{video_id}.mp4"):
        if candidate.exists():
            return candidate
    if not index:
        index.update({p.stem: p for p in sorted(root.rglob("*.mp4"))})
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
                cache_dir.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, target)
            return str(target)
        value = value.get("path")
    if isinstance(value, str) and value:
        return value
    raise BenchmarkError(f"{where}: field 'image' must be a path or {{'bytes': ...}}, got {type(value).__name__}")


def load_videommmu(root: str | Path, check_videos: bool = True, image_cache_dir: str | Path | None = None) -> list[EvalSample]:
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
                    id=f"{track}/{video_id}", benchmark="videommmu", kind=MCQ, video=str(video), question=question,
                    answer=str(require(row, "answer", where)).strip()[:1], image=image, fields={"track": track},
                )
            )
    return samples
