"""LVBench: ``video_info.meta.jsonl`` (one line per video: ``key``, ``qa`` list), videos ``{key}.mp4``."""

from __future__ import annotations

import re
from pathlib import Path

from eval.benchmarks.base import MCQ, EvalSample, read_jsonl, require, require_file

META_FILE = "video_info.meta.jsonl"
VIDEO_DIRS = ("", "videos", "video")
_PAREN_OPTION_RE = re.compile(r"\(([A-E])\)\s*")


def rewrite_options(question: str) -> str:
    """``"(A) red"`` -> ``"A. red"``: LVBench's options in the style the model was trained on."""
    return _PAREN_OPTION_RE.sub(lambda m: f"{m.group(1)}. ", question)


def find_video(root: Path, key: str, where: str, check: bool) -> Path:
    """``{key}.mp4`` in the root or a ``videos/`` (``video/``) folder."""
    candidates = [root / d / f"{key}.mp4" for d in VIDEO_DIRS]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    if check:
        require_file(candidates[0], f"video of {where} (also looked in {', '.join(VIDEO_DIRS[1:])}/)")
    return candidates[0]


def load_lvbench(root: str | Path, check_videos: bool = True) -> list[EvalSample]:
    """Question with "(A) " options rewritten as "A. "; broken down by question type (multi-label)."""
    root = Path(root)
    path = require_file(root / META_FILE, "LVBench metadata file")
    samples = []
    for lineno, video_item in read_jsonl(path):
        where = f"{path}:{lineno}"
        key = str(require(video_item, "key", where))
        video = find_video(root, key, where, check_videos)
        for j, qa in enumerate(require(video_item, "qa", where)):
            qwhere = f"{where} qa[{j}]"
            types = qa.get("question_type") or []
            samples.append(
                EvalSample(
                    id=str(require(qa, "uid", qwhere)), benchmark="lvbench", kind=MCQ, video=str(video),
                    question=rewrite_options(str(require(qa, "question", qwhere))),
                    answer=str(require(qa, "answer", qwhere)).strip().strip("()")[:1],
                    fields={"question_type": [str(t) for t in (types if isinstance(types, list) else [types])]},
                )
            )
    return samples
