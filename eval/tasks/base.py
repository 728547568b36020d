"""What a benchmark module declares (:class:`Task`) and what its loader yields (one :class:`EvalSample` per question)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tools.files import JsonlLineError
from tools.files import read_jsonl as read_jsonl_lines
from tools.segments import Segment, parse_segments


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
    ``answer`` is the ground-truth letter (MCQ / grounded QA) or None; ``span`` the (first) ground-truth or
    evidence interval in seconds or None; ``spans`` every ground-truth interval when there are several
    (NExT-GQA: the IoU is the best over them), else None. ``fields`` holds what the scorer breaks results
    down by (duration bucket, domain, task type, ...).
    """

    id: str
    benchmark: str
    kind: str
    video: str
    question: str
    answer: str | None = None
    span: Segment | None = None
    duration: float | None = None
    image: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    spans: list[Segment] | None = None

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["span"] = list(self.span) if self.span is not None else None
        record["spans"] = [list(s) for s in self.spans] if self.spans else None
        return record


IMAGE_MARK = "<image 1>"


def image_prompt_content(question: str, image: str) -> list[dict[str, str]]:
    """The user content after the video when a sample has an image, as the reference builds it.

    The question split at ``<image 1>``: text before, the image, text after. Without the marker
    (the reference would fail on such a row): the image, then the whole text.
    """
    if IMAGE_MARK in question:
        before, after = question.split(IMAGE_MARK, 1)
        return [{"type": "text", "text": before}, {"type": "image", "image": image}, {"type": "text", "text": after}]
    return [{"type": "image", "image": image}, {"type": "text", "text": question}]


@dataclass(frozen=True)
class Task:
    """Everything the project knows about one benchmark, declared in its own module of ``eval/tasks/``.

    A module of ``eval/tasks/`` with a module-level ``TASKS = [Task(...), ...]`` is a benchmark: the registry
    (:mod:`eval.tasks`), ``eval/run.py``, ``eval/run_all.sh``, ``eval/score.py`` and the fixtures find it there.

    name: our name (CLI, file names ``<name>.jsonl``); aliases: other accepted names (the reference's
    ``videotemp-g``). directory: its folder under the data root (the name ``data_prep/download.py`` writes).
    load(root, check_videos) -> samples. score(predictions, convention) -> (metrics, notes).
    read_reference(data, path, meta_path) -> predictions of the reference release's file format (None: none).
    prompts: the benchmark's prompt templates (they enter the settings' ``prompt_version`` hash).
    fixture(dir, sources): write a tiny copy of the public layout under ``dir`` from the source videos.
    order: position in ``run_all.sh``'s default list. hub: download facts as data (see ``HUB`` in the modules).
    """

    name: str
    kind: str
    directory: str
    load: Callable[..., list[EvalSample]]
    score: Callable[..., tuple[dict[str, float], list[str]]]
    read_reference: Callable[..., list[Any]] | None = None
    aliases: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    fixture: Callable[[Path, dict[str, Path]], None] | None = None
    order: int = 100
    hub: dict[str, Any] | None = None
    description: str = ""


def check_unique_ids(samples: Sequence[EvalSample], where: str) -> list[EvalSample]:
    """``samples`` if their ids are unique, else a :class:`BenchmarkError` naming the repeated ids."""
    seen: set[str] = set()
    repeated = []
    for s in samples:
        if s.id in seen:
            repeated.append(s.id)
        seen.add(s.id)
    if repeated:
        shown = ", ".join(repr(r) for r in list(dict.fromkeys(repeated))[:5])
        raise BenchmarkError(f"{where}: sample ids must be unique; repeated: {shown} ({len(repeated)} repeats)")
    return list(samples)


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
    """(line number, object) for each non-empty line (:func:`tools.files.read_jsonl`); a bad line is a :class:`BenchmarkError`."""
    try:
        for lineno, obj in read_jsonl_lines(path):
            if not isinstance(obj, dict):
                raise BenchmarkError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, obj
    except JsonlLineError as exc:
        raise BenchmarkError(str(exc)) from None


def read_parquet_rows(path: Path) -> list[dict]:
    """All rows of a parquet file as dicts."""
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _segments(value: Any, where: str) -> list[Segment]:
    """:func:`tools.segments.parse_segments` of a list value (not its JSON text), non-empty, as a :class:`BenchmarkError`."""
    try:
        if isinstance(value, str):
            raise ValueError(value)
        segments = parse_segments(value, where)
        if not segments:
            raise ValueError(value)
    except ValueError:
        raise BenchmarkError(f"{where}: expected a [start, end] pair of seconds, got {value!r}") from None
    return segments


def as_span(value: Any, where: str) -> Segment:
    """Read ``[s, e]`` (also a nested ``[[s, e]]``) as floats, else a :class:`BenchmarkError` (booleans are not numbers)."""
    segments = _segments(value, where)
    if len(segments) != 1:
        raise BenchmarkError(f"{where}: expected a [start, end] pair of seconds, got {value!r}")
    return segments[0]


def as_spans(value: Any, where: str) -> list[Segment]:
    """Read one span ``[s, e]`` or several ``[[s, e], [s, e], ...]`` as a non-empty list of float pairs."""
    return _segments(value, where)


def letters(n: int) -> str:
    """The first ``n`` option letters."""
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:n]
