"""Read prediction files: ours (``eval/run.py``) and the reference release's (format detected).

Ours: JSONL, one record per sample with ``turns`` and the ground truth (see ``eval/predictions.py``).
Reference: each benchmark module's ``read_reference`` (``eval/tasks/<benchmark>.py``) reads its file
layout with the helpers here. ``response`` is read as stored, never stripped (the reference's scorer
reads its first character as is: " C" is not "C").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.scoring.extract import reference_response
from eval.scoring.records import Prediction, tool_calls_from_turns
from tools.files import JsonlLineError, read_jsonl


class PredictionFileError(ValueError):
    """A prediction file is in no known format or lacks a field (the message names file, line and field)."""


def need(obj: dict, key: str, where: str) -> Any:
    """``obj[key]`` or a :class:`PredictionFileError` naming ``where`` and the field."""
    if not isinstance(obj, dict):
        raise PredictionFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise PredictionFileError(f"{where}: missing field {key!r}")
    return obj[key]


def assistant_texts(history: Any) -> list[str]:
    """``conv_history`` as assistant texts: a list of strings or of ``{"role", "content"}`` messages."""
    if not history:
        return []
    if isinstance(history, str):
        return [history]
    texts = []
    for msg in history:
        if isinstance(msg, str):
            texts.append(msg)
        elif isinstance(msg, dict) and msg.get("role", "assistant") == "assistant":
            content = msg.get("content", "")
            texts.append(
                content
                if isinstance(content, str)
                else " ".join(c.get("text", "") for c in content if isinstance(c, dict))
            )
    return texts


def stored_response(value: Any) -> str:
    """The ``response`` field as the reference's scorer reads it: as stored (None -> "")."""
    return "" if value is None else str(value)


def reference_prediction(r: dict, where: str, default_id: Any, **kw: Any) -> Prediction:
    """A :class:`Prediction` of one reference record (``response`` as stored, turns from ``conv_history``)."""
    turns = assistant_texts(r.get("conv_history"))
    return Prediction(
        id=str(r.get("id", r.get("question_id", default_id))),
        response=stored_response(r.get("response")),
        turns=turns,
        tool_calls=tool_calls_from_turns(turns) if "conv_history" in r else None,
        **kw,
    )


def _read_jsonl(path: Path) -> list[Any]:
    try:
        return [value for _, value in read_jsonl(path)]
    except JsonlLineError as exc:
        raise PredictionFileError(str(exc)) from None


def load_json_or_jsonl(path: Path) -> Any:
    """A ``.jsonl`` file as a list; anything else as one JSON document if it parses, else as JSONL."""
    try:
        if path.suffix != ".jsonl":
            try:
                return json.loads(path.read_text(encoding="utf-8-sig"))
            except json.JSONDecodeError:
                pass
        return _read_jsonl(path)
    except UnicodeDecodeError as exc:
        raise PredictionFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _ours(records: list[dict], path: Path) -> list[Prediction]:
    preds = []
    for i, r in enumerate(records):
        where = f"{path}:{i + 1}"
        turns = list(need(r, "turns", where) or [])
        try:
            spans = [tuple(map(float, s)) for s in r["spans"]] if r.get("spans") else None
            span = tuple(map(float, r["span"])) if r.get("span") is not None else None
            tool_calls = (
                [[tuple(map(float, x)) for x in call] for call in r["tool_calls"]]
                if r.get("tool_calls") is not None
                else tool_calls_from_turns(turns)
            )
        except (TypeError, ValueError):
            raise PredictionFileError(
                f"{where}: fields 'span', 'spans' and 'tool_calls' must hold [start, end] pairs"
            ) from None
        preds.append(
            Prediction(
                id=str(need(r, "id", where)),
                response=stored_response(r.get("response", reference_response(turns))),
                answer=r.get("answer"),
                span=span,
                spans=spans,
                duration=r.get("duration"),
                fields=r.get("fields") or {},
                turns=turns,
                tool_calls=tool_calls,
                failed=bool(r.get("failed")),
            )
        )
    return preds


def detect_format(data: Any) -> str:
    """``ours`` or ``reference`` (by the record keys)."""
    if isinstance(data, list) and data and isinstance(data[0], dict) and "turns" in data[0] and "benchmark" in data[0]:
        return "ours"
    return "reference"


def dedupe(preds: list[Prediction], path: Path) -> tuple[list[Prediction], list[str]]:
    """Keep the first record of each id; a note says how many repeats were dropped (two writers, a bad merge)."""
    seen: set[str] = set()
    kept = []
    for p in preds:
        if p.id not in seen:
            kept.append(p)
            seen.add(p.id)
    dropped = len(preds) - len(kept)
    notes = (
        [f"{path}: {dropped} record(s) repeat an earlier sample id and were not scored (kept the first of each)"]
        if dropped
        else []
    )
    return kept, notes


def load_predictions(
    path: str | Path, benchmark: str, meta_data_path: str | Path | None = None
) -> tuple[list[Prediction], str, list[str]]:
    """(normalised predictions of ``path`` for ``benchmark``, the detected format name, notes)."""
    from eval.tasks import get_task

    task = get_task(benchmark)
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(f"prediction file {path} does not exist")
    data = load_json_or_jsonl(path)
    if not data:
        return [], "ours", []
    if detect_format(data) == "ours":
        if not all(isinstance(r, dict) for r in data):
            raise PredictionFileError(f"{path}: every line must be a JSON object")
        other = {r.get("benchmark") for r in data} - {task.name}
        if other:
            raise PredictionFileError(f"{path}: holds predictions of {sorted(map(str, other))}, not {task.name}")
        preds, fmt = _ours(data, path), "ours"
    else:
        if task.read_reference is None:
            raise PredictionFileError(
                f"{path}: the reference release has no {task.name} format; expected a file written by eval/run.py"
            )
        preds, fmt = task.read_reference(data, path, Path(meta_data_path) if meta_data_path else None), "reference"
    preds, notes = dedupe(preds, path)
    return preds, fmt, notes
