"""Prediction files of an eval run: crash-safe appends, resume, a lock, the settings file, shard merging.

``<out>/<benchmark>.jsonl`` holds one complete JSON line per finished sample (written with flush +
fsync, so ``kill -9`` loses at most the samples in flight); ``<out>/<benchmark>.settings.json`` holds
the run's settings. While a run writes a prediction file it holds an exclusive lock on it: a second run
on the same file stops with a clear error instead of interleaving lines. On resume a partial last line (a
write cut short) is truncated away, the ids already present are skipped, and a file that repeats an id is
refused. Files are created group/world-readable (0644 under the usual umask) and written whole
(:mod:`tools.files`: a hidden temp file renamed into place); temp files left by a killed process (and the
per-process ``<name>.partial-<pid>`` files) are removed at the next start.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from pathlib import Path
from typing import Any

from tools.files import atomic_write_jsonl, atomic_write_text, read_json, remove_stale_temps

# Settings that change the predictions: a resume with any of them different is refused (unless forced).
RESUME_KEYS = (
    "benchmark",
    "model",
    "model_revision",
    "engine",
    "max_frames",
    "max_pixels",
    "min_pixels",
    "fps",
    "temperature",
    "top_p",
    "max_new_tokens",
    "max_turns",
    "prompt_version",
    "clip_caption",
    "with_image",
    "seed",
)
_PARTIAL_RE = re.compile(r"\.partial-(\d+)(\.[A-Za-z]+)?$")


class SettingsMismatch(RuntimeError):
    """The prediction file was written with other settings (the message lists them)."""


class PredictionFileLocked(RuntimeError):
    """Another process is writing this prediction file."""


class CorruptPredictions(ValueError):
    """A prediction file cannot be resumed (a bad line in the middle, a repeated id); the message names file and line."""


def predictions_path(out_dir: str | Path, benchmark: str, shard: tuple[int, int] | None = None) -> Path:
    """``<out>/<benchmark>.jsonl`` (``<benchmark>.shard-i-of-n.jsonl`` for a shard)."""
    suffix = f".shard-{shard[0]}-of-{shard[1]}" if shard and shard[1] > 1 else ""
    return Path(out_dir) / f"{benchmark}{suffix}.jsonl"


def settings_path(predictions: str | Path) -> Path:
    """The settings file beside a prediction file."""
    p = Path(predictions)
    return p.with_name(
        p.name[: -len(".jsonl")] + ".settings.json" if p.name.endswith(".jsonl") else p.name + ".settings.json"
    )


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON with sorted keys, atomically (:func:`tools.files.atomic_write_text`)."""
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def remove_stale_partials(directory: str | Path) -> list[Path]:
    """Remove ``*.partial-<pid>`` and atomic-write temp files of ``directory`` whose process is gone (left by a kill)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = remove_stale_temps(directory)
    for path in directory.iterdir():
        match = _PARTIAL_RE.search(path.name)
        if match and path.is_file() and not _pid_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def repair_and_read(path: Path, truncate: bool = True, lines: list[int] | None = None) -> list[dict]:
    """Records of a prediction file; a last line without its newline or not valid JSON is dropped (and truncated away if ``truncate``).

    ``lines``, if given, receives the line number of each record.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    records: list[dict] = []
    good_end = 0
    pos = 0
    lineno = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # partial last line
        lineno += 1
        line = data[pos:nl]
        if line.strip():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if data[nl + 1 :].strip():
                    raise CorruptPredictions(f"{path}:{lineno}: not valid JSON and not the last line") from None
                break
            if not isinstance(record, dict):
                raise CorruptPredictions(f"{path}:{lineno}: expected a JSON object")
            records.append(record)
            if lines is not None:
                lines.append(lineno)
        pos = nl + 1
        good_end = pos
    if truncate and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return records


def done_ids(path: Path, records: list[dict], lines: list[int] | None = None) -> set[str]:
    """Ids of ``records`` (read from ``path``, at ``lines``); a repeated id is refused, naming both lines."""
    seen: dict[str, int] = {}
    for i, r in enumerate(records):
        line = lines[i] if lines else i + 1
        if "id" not in r:
            raise CorruptPredictions(f"{path}:{line}: record without an 'id'")
        sid = str(r["id"])
        if sid in seen:
            raise CorruptPredictions(
                f"{path}:{line}: sample id {sid!r} already written at line {seen[sid]} (two runs wrote this file?); "
                "remove the repeated lines or use another --output-dir"
            )
        seen[sid] = line
    return set(seen)


def read_settings(path: Path) -> dict[str, Any] | None:
    """The settings file beside prediction file ``path`` (None if there is none); one-line error if malformed."""
    file = settings_path(path)
    if not file.exists():
        return None
    try:
        obj = read_json(file)
    except ValueError as exc:
        raise CorruptPredictions(str(exc)) from None
    if not isinstance(obj, dict):
        raise CorruptPredictions(f"{file}: expected a JSON object")
    return obj


def check_settings(path: Path, settings: dict[str, Any], force: bool) -> list[str]:
    """Refuse to resume ``path`` if its settings file differs in a :data:`RESUME_KEYS` value (unless ``force``).

    Returns the differences that ``force`` lets through (empty when the settings agree).
    """
    old = read_settings(path)
    if old is None:
        return []
    diffs = [
        f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in RESUME_KEYS if k in old and old.get(k) != settings.get(k)
    ]
    if diffs and not force:
        raise SettingsMismatch(
            f"{path} was written with other settings ({'; '.join(diffs)}); use another --output-dir, or --force to append anyway"
        )
    return diffs


def with_earlier_settings(record: dict[str, Any], old: dict[str, Any] | None, appended_over: bool) -> dict[str, Any]:
    """``record`` with the settings of the predictions a ``--force`` run appended over (``earlier_settings``, oldest
    first), kept through later resumes, so that a file with mixed settings says so."""
    earlier = list((old or {}).get("earlier_settings") or [])
    if appended_over and old:
        earlier.append({k: v for k, v in old.items() if k != "earlier_settings"})
    return {**record, "earlier_settings": earlier} if earlier else record


class PredictionWriter:
    """Append-only JSONL writer holding an exclusive lock on the file; each record is flushed and fsynced."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise PredictionFileLocked(
                f"{path} is being written by another eval run; wait for it or use another --output-dir"
            ) from None

    def append(self, record: dict) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()  # closing releases the lock

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# Settings that differ between the shards of one run and are not compared when merging.
_SHARD_KEYS = ("shard", "n_selected", "data_dir", "git_commit", "batch_size", "merged_from")


def shard_files(out_dir: str | Path, benchmark: str) -> list[Path]:
    """Prediction files of the shards of ``benchmark`` in ``out_dir``."""
    return sorted(Path(out_dir).glob(f"{benchmark}.shard-*-of-*.jsonl"))


def merge_shards(out_dir: str | Path, benchmark: str) -> Path:
    """Merge every shard of ``benchmark`` into ``<out>/<benchmark>.jsonl`` (+ settings); returns its path.

    Refused (:class:`CorruptPredictions`) unless all ``n`` shards are there, complete (as many ids as the
    shard selected) and share their settings (all but shard-specific keys), with no id in two shards.
    """
    files = shard_files(out_dir, benchmark)
    if not files:
        raise CorruptPredictions(f"no shard files {benchmark}.shard-*-of-*.jsonl in {out_dir}")
    counts = {int(re.search(r"-of-(\d+)\.jsonl$", f.name).group(1)) for f in files}
    if len(counts) != 1:
        raise CorruptPredictions(f"{out_dir}: shards of different splits ({sorted(counts)}) for {benchmark}")
    n = counts.pop()
    expected = [predictions_path(out_dir, benchmark, (i, n)) for i in range(n)]
    missing = [p.name for p in expected if not p.exists()]
    if missing:
        raise CorruptPredictions(f"cannot merge {benchmark}: shard file(s) {', '.join(missing)} not written yet")
    base_settings: dict[str, Any] | None = None
    merged: list[dict] = []
    owner: dict[str, str] = {}
    for path in expected:
        settings = read_settings(path)
        if settings is None:
            raise CorruptPredictions(f"{path}: no settings file beside it")
        shared = {k: v for k, v in settings.items() if k not in _SHARD_KEYS}
        if base_settings is None:
            base_settings = shared
        elif shared != base_settings:
            diffs = sorted(k for k in set(shared) | set(base_settings) if shared.get(k) != base_settings.get(k))
            raise CorruptPredictions(
                f"cannot merge {benchmark}: {path.name} differs from {expected[0].name} in {', '.join(diffs)}"
            )
        lines: list[int] = []
        records = repair_and_read(path, truncate=False, lines=lines)
        ids = done_ids(path, records, lines)
        if settings.get("n_selected") is not None and len(ids) < int(settings["n_selected"]):
            raise CorruptPredictions(
                f"cannot merge {benchmark}: {path.name} has {len(ids)} of its {settings['n_selected']} samples (resume it first)"
            )
        for r in records:
            sid = str(r["id"])
            if sid in owner:
                raise CorruptPredictions(f"cannot merge {benchmark}: sample {sid!r} is in {owner[sid]} and {path.name}")
            owner[sid] = path.name
            merged.append(r)
    target = predictions_path(out_dir, benchmark)
    old = read_settings(target)
    if target.exists() and (old is None or "merged_from" not in old):
        raise CorruptPredictions(f"{target} exists and is not a merge of shards; move it away to merge the shards")
    atomic_write_jsonl(target, merged)
    write_json_atomic(
        settings_path(target),
        {**(base_settings or {}), "merged_from": [p.name for p in expected], "n_selected": len(merged)},
    )
    return target
