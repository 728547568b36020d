"""Time-segment scoring shared by the rewards and evaluation: IoU, greedy segment score, normalisation.

Segments are ``(start, end)`` pairs in seconds. All functions are pure and never raise on numeric
input: an empty, inverted or non-finite segment simply scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Segment = tuple[float, float]

DEFAULT_IOU_LOW = 0.2
DEFAULT_IOU_HIGH = 0.8


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


def normalise_iou(value: float, low: float = DEFAULT_IOU_LOW, high: float = DEFAULT_IOU_HIGH) -> float:
    """Map an IoU to [0, 1]: ``clip((value - low) / (high - low), 0, 1)``.

    ``value <= low`` gives 0 and ``value >= high`` gives 1; with ``high <= low`` it is a step at ``high``.
    """
    if not math.isfinite(value):
        return 0.0
    if high <= low:
        return 1.0 if value >= high else 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))
