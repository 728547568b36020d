"""What every benchmark loader yields: one :class:`EvalSample` per question."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator


class BenchmarkError(ValueError):
    """A benchmark directory or file does not have the expected layout (names the file and field)."""


# Answer kinds: how the scorer reads a response.
MCQ = "mcq"  # a letter
GROUNDING = "grounding"  # a [start, end] span
GROUNDED_QA = "grounded_qa"  # a letter plus an evidence span


@dataclass
class EvalSample:
    """One evaluation question, ready for the agent loop and the scorer.

    ``question`` is the full text sent after the video (the benchmark's prompt convention applied).
    ``answer`` is the ground-truth letter (MCQ / grounded QA) or None; ``span`` the ground-truth or
    evidence interval in seconds or None. ``fields`` holds what the scorer breaks results down by
    (duration bucket, domain, task type, ...).
    """

    id: str
    benchmark: str
    kind: str
    video: str
    question: str
    answer: str | None = None
    span: tuple[float, float] | None = None
    duration: float | None = None
    image: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["span"] = list(self.span) if self.span is not None else None
        return record


def require(obj: dict, key: str, where: str) -> Any:
    """``obj[key]`` or a :class:`BenchmarkError` naming ``where`` and the missing field."""
    if not isinstance(obj, dict) or key not in obj or obj[key] is None:
        raise BenchmarkError(f"{where}: missing field {key!r}")
    return obj[key]


def require_file(path: Path, what: str) -> Path:
    """``path`` if it exists, else a :class:`BenchmarkError` saying which file the layout needs."""
    if not path.exists():
        raise BenchmarkError(f"missing {what}: {path} does not exist")
    return path


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-empty line; clear error on bad JSON."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise BenchmarkError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, obj


def read_parquet_rows(path: Path) -> list[dict]:
    """All rows of a parquet file as dicts."""
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def as_span(value: Any, where: str) -> tuple[float, float]:
    """Read ``[s, e]`` (also a nested ``[[s, e]]``) as floats, else a :class:`BenchmarkError`."""
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], (list, tuple)):
        value = value[0]
    try:
        start, end = (float(v) for v in value)
    except (TypeError, ValueError):
        raise BenchmarkError(f"{where}: expected a [start, end] pair of seconds, got {value!r}") from None
    return start, end


def letters(n: int) -> str:
    """The first ``n`` option letters."""
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:n]


def duration_bucket(seconds: float) -> str:
    """VideoTemp-Bench duration bucket (boundaries belong to the upper bucket, as the reference)."""
    if seconds < 180:
        return "<3min"
    if seconds < 600:
        return "3-10min"
    if seconds < 1200:
        return "10-20min"
    return ">20min"


DURATION_BUCKETS = ("<3min", "3-10min", "10-20min", ">20min")
