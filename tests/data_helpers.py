"""Shared helpers for the data-preparation and SFT-dataset tests.

``synthetic_dataset()`` writes the small synthetic dataset once per test process (short videos);
``write_jsonl`` / ``read_rejects`` / ``reference_rl_row`` / ``sft_row`` build inputs and read outputs.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from data_prep.make_synthetic import SyntheticDataset, make_synthetic  # noqa: E402
from tools.protocol import SYSTEM_PROMPT, TOOL_SUCCESS_TEXT  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
_DATASET: SyntheticDataset | None = None


def synthetic_dataset() -> SyntheticDataset:
    """Two 10-12 s synthetic videos at 4 fps with their RL/SFT jsonl, built once per process."""
    global _DATASET
    if _DATASET is None:
        root = Path(tempfile.mkdtemp(prefix="synthetic_data_"))
        atexit.register(shutil.rmtree, root, True)
        _DATASET = make_synthetic(root, n_videos=2, seed=1, fps=4.0, min_seconds=10, max_seconds=12)
    return _DATASET


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Write rows (dicts, or raw strings written verbatim as a line) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def read_rejects(out_dir: Path) -> list[dict[str, Any]]:
    with open(out_dir / "rejects.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def reference_rl_row(
    video: str,
    *,
    data_type: str = "qa",
    timestamp=((2.0, 5.0),),
    solution: str = "<answer>B</answer>",
    question: str = "Which colour?\nA. red\nB. blue\nC. green\nD. cyan",
) -> dict[str, Any]:
    """A row in the reference RL format."""
    return {
        "messages": [{"role": "system", "content": "old prompt"}, {"role": "user", "content": "<video>" + question}],
        "videos": [video],
        "data_type": data_type,
        "timestamp": [list(t) for t in timestamp],
        "solution": solution,
    }


def assistant_tool(start: float, end: float, think: str = "look") -> dict[str, str]:
    body = json.dumps({"name": "get_video_clip_frame", "arguments": [{"start_time": start, "end_time": end}]})
    return {"role": "assistant", "content": f"<think>{think}</think><tool_call>{body}</tool_call>"}


def assistant_answer(answer: str = "B", think: str = "done") -> dict[str, str]:
    return {"role": "assistant", "content": f"<think>{think}</think><answer>{answer}</answer>"}


def feedback(n_videos: int = 1) -> dict[str, str]:
    return {"role": "user", "content": "<video>" * n_videos + TOOL_SUCCESS_TEXT}


def sft_row(video: str, calls: list[tuple[float, float]], *, clips: str = "range", answer: str = "B") -> dict[str, Any]:
    """An SFT trajectory with ``len(calls)`` tool calls then an answer.

    ``clips``: "range" ({"video", "clip"} entries), "derive" (only the main video listed), or a list of
    clip file paths passed as the string "files:" + comma-joined paths.
    """
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "<video>Which colour?\nA. red\nB. blue"},
    ]
    for k, (start, end) in enumerate(calls):
        messages += [assistant_tool(start, end, think=f"call {k}"), feedback()]
    messages.append(assistant_answer(answer, think=f"answer after {len(calls)} calls"))
    if clips == "range":
        videos: list[Any] = [video, *({"video": video, "clip": [s, e]} for s, e in calls)]
    elif clips == "derive":
        videos = [video]
    elif clips.startswith("files:"):
        videos = [video, *clips[len("files:") :].split(",")]
    else:
        raise ValueError(clips)
    return {"messages": messages, "videos": videos}
