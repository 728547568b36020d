"""Time-segment scoring of the rewards: IoU normalisation (IoU and the greedy score live in tools.segments).

All functions are pure and never raise on numeric input: an empty, inverted or non-finite segment scores 0.
"""

from __future__ import annotations

import math

from tools.segments import Segment, iou, segment_score

__all__ = ["DEFAULT_IOU_HIGH", "DEFAULT_IOU_LOW", "Segment", "iou", "normalise_iou", "segment_score"]

DEFAULT_IOU_LOW = 0.2
DEFAULT_IOU_HIGH = 0.8


def normalise_iou(value: float, low: float = DEFAULT_IOU_LOW, high: float = DEFAULT_IOU_HIGH) -> float:
    """Map an IoU to [0, 1]: ``clip((value - low) / (high - low), 0, 1)``.

    ``value <= low`` gives 0 and ``value >= high`` gives 1; with ``high <= low`` it is a step at ``high``.
    """
    if not math.isfinite(value):
        return 0.0
    if high <= low:
        return 1.0 if value >= high else 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))
