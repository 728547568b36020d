"""Prediction files of an eval run: crash-safe appends, resume, and the settings file beside them.

``<out>/<benchmark>.jsonl`` holds one complete JSON line per finished sample (written with flush +
fsync, so ``kill -9`` loses at most the samples in flight); ``<out>/<benchmark>.settings.json`` holds
the run's settings. On resume a partial last line (a write cut short) is truncated away and the ids
already present are skipped.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

# Settings that change the predictions: a resume with any of them different is refused (unless forced).
RESUME_KEYS = (
    "benchmark", "model", "engine", "max_frames", "max_pixels", "min_pixels", "fps", "temperature", "top_p",
    "max_new_tokens", "max_turns", "prompt_version", "clip_caption", "with_image",
)


class SettingsMismatch(RuntimeError):
    """The prediction file was written with other settings (the message lists them)."""


def predictions_path(out_dir: str | Path, benchmark: str, shard: tuple[int, int] | None = None) -> Path:
    """``<out>/<benchmark>.jsonl`` (``<benchmark>.shard-i-of-n.jsonl`` for a shard)."""
    suffix = f".shard-{shard[0]}-of-{shard[1]}" if shard and shard[1] > 1 else ""
    return Path(out_dir) / f"{benchmark}{suffix}.jsonl"


def settings_path(predictions: str | Path) -> Path:
    """The settings file beside a prediction file."""
    p = Path(predictions)
    return p.with_name(p.name[: -len(".jsonl")] + ".settings.json" if p.name.endswith(".jsonl") else p.name + ".settings.json")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file in the same directory and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def repair_and_read(path: Path, truncate: bool = True) -> list[dict]:
    """Records of a prediction file; a last line without its newline or not valid JSON is dropped (and truncated away if ``truncate``)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    records: list[dict] = []
    good_end = 0
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # partial last line
        line = data[pos:nl]
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if data[nl + 1 :].strip():
                    raise ValueError(f"{path}: line {len(records) + 1} is not valid JSON and is not the last line") from None
                break
        pos = nl + 1
        good_end = pos
    if truncate and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return records


def check_settings(path: Path, settings: dict[str, Any], force: bool) -> None:
    """Refuse to resume ``path`` if its settings file differs in a :data:`RESUME_KEYS` value (unless ``force``)."""
    old_file = settings_path(path)
    if not old_file.exists() or force:
        return
    old = json.loads(old_file.read_text(encoding="utf-8"))
    diffs = [f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in RESUME_KEYS if old.get(k) != settings.get(k)]
    if diffs:
        raise SettingsMismatch(
            f"{path} was written with other settings ({'; '.join(diffs)}); use another --output_dir, or --force to append anyway"
        )


class PredictionWriter:
    """Append-only JSONL writer: each record is one line, flushed and fsynced before ``append`` returns."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")

    def append(self, record: dict) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
