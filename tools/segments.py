"""Time segments: the one ``Segment`` type, the one ``[start, end]`` parser, IoU and the greedy segment score.

Segments are ``(start, end)`` pairs in seconds. This is the lowest layer (no project imports): data
preparation, the rewards, the agent loop and evaluation all read segments through it.

Parsing has one error policy: malformed input raises :class:`ValueError` whose message starts with
``where`` (e.g. ``"data.jsonl:12: timestamps"``); booleans are refused as times. It does not check
ordering or the video's duration (callers decide what an inverted or out-of-range span means).
Scoring never raises on numeric input: an empty, inverted or non-finite segment scores 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

Segment = tuple[float, float]


def _plain(value: Any) -> Any:
    """numpy arrays / scalars (as parquet returns them) to Python lists / scalars."""
    return value.tolist() if hasattr(value, "tolist") else value


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


def parse_segment(value: Any, where: str) -> Segment:
    """One ``[start, end]`` (list, tuple or numpy array of numbers or numeric strings) as a float pair."""
    item = _plain(value)
    if not isinstance(item, (list, tuple)) or len(item) != 2:
        raise ValueError(f"{where} entry must be [start, end], got {item!r}")
    item = [_plain(v) for v in item]
    if any(isinstance(v, bool) for v in item):
        raise ValueError(f"{where} entry must hold two numbers, got a boolean in {item!r}")
    try:
        return float(item[0]), float(item[1])
    except (TypeError, ValueError):
        raise ValueError(f"{where} entry must hold two numbers, got {item!r}") from None


def parse_segments(value: Any, where: str) -> list[Segment]:
    """``[[s, e], ...]`` or one flat ``[s, e]`` (lists, tuples, numpy arrays, or their JSON text) as float pairs.

    None and the empty string give ``[]``.
    """
    value = _plain(value)
    if value is None:
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{where} is not a JSON list: {value!r}") from None
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where} must be a list of [start, end] pairs, got {value!r}")
    items = [_plain(item) for item in value]
    if len(items) == 2 and all(_is_time(v) for v in items):
        items = [items]
    return [parse_segment(item, where) for item in items]


def _is_proper(segment: Sequence[float]) -> bool:
    start, end = segment
    return math.isfinite(start) and math.isfinite(end) and end > start


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Temporal IoU of two segments: overlap / (len_a + len_b - overlap); 0 if either is empty or inverted."""
    if not (_is_proper(a) and _is_proper(b)):
        return 0.0
    overlap = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - overlap
    return overlap / union if union > 0 else 0.0


def segment_score(pred_segments: Sequence[Sequence[float]], gt_segments: Sequence[Sequence[float]]) -> float:
    """Greedy-matched IoU of several predictions against several ground-truth segments (the reference's rule).

    Each prediction, in order, takes the still-unused ground-truth segment with the highest IoU (the
    first one on ties), **only when that IoU is > 0**: a prediction that overlaps nothing (inverted,
    disjoint) leaves every ground-truth segment free for the next one. The matched IoUs are summed and
    divided by the number of *predicted* segments, so extra predictions dilute the score. No prediction
    or no ground truth gives 0.
    """
    if not pred_segments or not gt_segments:
        return 0.0
    used: set[int] = set()
    total = 0.0
    for pred in pred_segments:
        best_index, best_iou = -1, 0.0
        for gt_index, gt in enumerate(gt_segments):
            if gt_index not in used:
                value = iou(pred, gt)
                if value > best_iou:
                    best_index, best_iou = gt_index, value
        if best_index >= 0:
            used.add(best_index)
            total += best_iou
    return total / len(pred_segments)
