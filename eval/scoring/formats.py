"""Read prediction files: ours (``eval/run.py``) and the reference release's (format detected).

Ours: JSONL, one record per sample with ``turns`` and the ground truth (see ``eval/predictions.py``).
Reference: EVAL.md "The reference release's prediction files" (videotemp, videotemp-g, videomme as a
JSON array or flat JSONL, mlvu, videommmu JSONL, lvbench ``{uid: response}`` + metadata).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.benchmarks.base import as_span, read_jsonl
from eval.benchmarks.lvbench import META_FILE
from eval.scoring.extract import reference_response
from eval.scoring.records import Prediction, tool_calls_from_turns


class PredictionFileError(ValueError):
    """A prediction file is in no known format or lacks a field (the message names file, line and field)."""


def _need(obj: dict, key: str, where: str) -> Any:
    if key not in obj:
        raise PredictionFileError(f"{where}: missing field {key!r}")
    return obj[key]


def _assistant_texts(history: Any) -> list[str]:
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
            texts.append(content if isinstance(content, str) else " ".join(c.get("text", "") for c in content if isinstance(c, dict)))
    return texts


def _load_json_or_jsonl(path: Path) -> Any:
    """A ``.jsonl`` file as a list of objects; anything else as one JSON document if it parses, else as JSONL."""
    if path.suffix != ".jsonl":
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            pass
    return [obj for _, obj in read_jsonl(path)]


def _ours(records: list[dict], path: Path) -> list[Prediction]:
    preds = []
    for i, r in enumerate(records):
        where = f"{path}:{i + 1}"
        turns = list(_need(r, "turns", where))
        preds.append(
            Prediction(
                id=str(_need(r, "id", where)), response=r.get("response", reference_response(turns)), answer=r.get("answer"),
                span=tuple(r["span"]) if r.get("span") is not None else None, duration=r.get("duration"),
                fields=r.get("fields") or {}, turns=turns,
                tool_calls=[[tuple(x) for x in call] for call in r["tool_calls"]] if r.get("tool_calls") is not None else tool_calls_from_turns(turns),
            )
        )
    return preds


def _reference_common(r: dict, where: str, **kw) -> Prediction:
    turns = _assistant_texts(r.get("conv_history"))
    return Prediction(
        id=str(r.get("id", r.get("question_id", kw.pop("default_id")))), response=str(r.get("response") or "").strip(),
        turns=turns, tool_calls=tool_calls_from_turns(turns) if "conv_history" in r else None, **kw,
    )


def _reference_videotemp(records: list[dict], path: Path, grounding: bool) -> list[Prediction]:
    preds = []
    for i, r in enumerate(records):
        where = f"{path}:{i + 1}"
        _need(r, "response", where)
        duration = float(_need(r, "duration", where))
        span = as_span(r["timestamp"], f"{where} field 'timestamp'") if r.get("timestamp") is not None else None
        if grounding and span is None:
            raise PredictionFileError(f"{where}: missing field 'timestamp'")
        preds.append(_reference_common(r, where, default_id=i, answer=None if grounding else str(_need(r, "answer", where))[:1],
                                       span=span, duration=duration))
    return preds


def _reference_videomme(data: list[dict], path: Path) -> list[Prediction]:
    preds = []
    flat = data and "questions" not in data[0]
    videos = [{"questions": [r], **r} for r in data] if flat else data
    for v_no, video in enumerate(videos):
        for q_no, q in enumerate(_need(video, "questions", f"{path} video {v_no}")):
            where = f"{path} video {v_no} question {q_no}"
            fields = {"duration": _need(video, "duration", where), "domain": video.get("domain"),
                      "sub_category": video.get("sub_category"), "task_type": q.get("task_type")}
            _need(q, "response", where)
            preds.append(_reference_common(q, where, default_id=f"{v_no}-{q_no}", answer=str(_need(q, "answer", where))[:1], fields=fields))
    return preds


def _reference_mlvu(records: list[dict], path: Path) -> list[Prediction]:
    preds = []
    for i, r in enumerate(records):
        where = f"{path}:{i + 1}"
        _need(r, "response", where)
        gt = r.get("gt_answer")
        preds.append(_reference_common(r, where, default_id=i, answer=str(gt) if gt else None,
                                       fields={"task": r.get("question_type") or r.get("task_type") or "unknown"}))
    return preds


def _reference_videommmu(records: list[dict], path: Path) -> list[Prediction]:
    return [
        _reference_common(r, f"{path}:{i + 1}", default_id=i, answer=str(_need(r, "gt_answer", f"{path}:{i + 1}")),
                          fields={"track": _need(r, "task", f"{path}:{i + 1}")})
        for i, r in enumerate(records)
    ]


def _reference_lvbench(answers: dict, path: Path, meta_path: Path | None) -> list[Prediction]:
    if meta_path is None:
        candidate = path.parent / META_FILE
        if not candidate.exists():
            raise PredictionFileError(f"{path}: an LVBench {{uid: response}} file needs --meta_data_path ({META_FILE})")
        meta_path = candidate
    preds = []
    for lineno, video in read_jsonl(meta_path):
        for qa in video.get("qa", []):
            uid = str(_need(qa, "uid", f"{meta_path}:{lineno}"))
            if uid not in answers:
                continue  # questions without a prediction are skipped (reference)
            types = qa.get("question_type") or []
            preds.append(Prediction(id=uid, response=str(answers[uid] or "").strip(), answer=str(qa.get("answer", ""))[:1],
                                    fields={"question_type": types if isinstance(types, list) else [types]}))
    return preds


def detect_format(data: Any) -> str:
    """``ours`` or ``reference`` (by the record keys)."""
    if isinstance(data, list) and data and isinstance(data[0], dict) and "turns" in data[0] and "benchmark" in data[0]:
        return "ours"
    return "reference"


def load_predictions(path: str | Path, benchmark: str, meta_data_path: str | Path | None = None) -> tuple[list[Prediction], str]:
    """Normalised predictions of ``path`` for ``benchmark`` and the detected format name."""
    path = Path(path)
    if not path.exists():
        raise PredictionFileError(f"prediction file {path} does not exist")
    data = _load_json_or_jsonl(path)
    if isinstance(data, dict):
        if benchmark != "lvbench":
            raise PredictionFileError(f"{path}: a JSON object of uid -> response is the LVBench format, not {benchmark}")
        return _reference_lvbench(data, path, Path(meta_data_path) if meta_data_path else None), "reference"
    if not data:
        return [], "ours"
    if detect_format(data) == "ours":
        other = {r.get("benchmark") for r in data} - {benchmark}
        if other:
            raise PredictionFileError(f"{path}: holds predictions of {sorted(map(str, other))}, not {benchmark}")
        return _ours(data, path), "ours"
    readers = {
        "videotemp": lambda: _reference_videotemp(data, path, grounding=False),
        "videotemp_g": lambda: _reference_videotemp(data, path, grounding=True),
        "videomme": lambda: _reference_videomme(data, path),
        "mlvu": lambda: _reference_mlvu(data, path),
        "videommmu": lambda: _reference_videommmu(data, path),
    }
    if benchmark not in readers:
        raise PredictionFileError(f"{path}: the reference release has no {benchmark} format; expected a file written by eval/run.py")
    return readers[benchmark](), "reference"
