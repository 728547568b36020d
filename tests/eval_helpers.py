"""Shared builders for the eval tests: fixture benchmarks, a tiny model, small-budget run options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

# Budgets that keep the tiny model fast on CPU (64x48 fixture videos).
SMALL_RUN_ARGS = [
    "--min-pixels",
    "3136",
    "--max-pixels",
    "12544",
    "--max-frames",
    "16",
    "--prompt-length",
    "4096",
    "--response-length",
    "4096",
    "--max-model-len",
    "8192",
    "--max-new-tokens",
    "64",
]


def underscored(args: list[str]) -> list[str]:
    """``args`` with every flag in its underscore spelling (``--max-frames`` -> ``--max_frames``), still accepted."""
    return ["--" + a[2:].replace("-", "_") if a.startswith("--") else a for a in args]


TOOL_CALL = (
    '<tool_call>{{"name": "get_video_clip_frame", "arguments": [{{"start_time": {s}, "end_time": {e}}}]}}</tool_call>'
)


def tool_turn(start: float, end: float, think: str = "look closer") -> str:
    return f"<think>{think}</think>" + TOOL_CALL.format(s=start, e=end)


def answer_turn(answer: str, think: str = "done") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


def build_fixtures(root: Path) -> dict[str, Path]:
    from eval.tasks.fixtures import build_fixture_benchmarks

    return build_fixture_benchmarks(root)


def build_model(root: Path) -> Path:
    from data_prep.make_tiny_model import build_tiny_model

    return build_tiny_model(root / "tiny_qwen2_5_vl")


def write_script(path: Path, turns_by_id: dict[str, list[str]]) -> Path:
    path.write_text(json.dumps(turns_by_id), encoding="utf-8")
    return path


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(
        FORCE_QWENVL_VIDEO_READER="decord", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(REPO)
    )
    return e


def run_cli(args: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a repository CLI (``eval/run.py ...``) with the test environment; output captured."""
    return subprocess.run([PYTHON, *args], cwd=REPO, env=env(), capture_output=True, text=True, **kw)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
