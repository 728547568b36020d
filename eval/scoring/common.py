"""Building blocks of the per-benchmark scorers (each benchmark's own rules live in its ``eval/tasks/`` module).

Scorers take the normalised :class:`~eval.scoring.records.Prediction` list and return ``(metrics, notes)``:
flat ``{metric name: value}`` dicts, accuracies and IoUs in percent; ``notes`` explain figures that could
not be computed (an empty bucket, an unknown category) instead of crashing as the reference does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from eval.scoring import extract
from eval.scoring.records import Prediction
from tools.segments import Segment, iou

Metrics = dict[str, float]
THRESHOLDS = (0.3, 0.5, 0.7)


def pct(num: float, den: int) -> float:
    return 100.0 * num / den


def accuracy_groups(
    groups: dict[str, list[bool]], prefix: str, out: Metrics, notes: list[str], order: Iterable[str] = ()
) -> None:
    """``<prefix>/<group>`` accuracy and ``<prefix>/<group>/n`` of every group (``order`` first, then sorted)."""
    order = list(order)
    for name in order + sorted(k for k in groups if k not in set(order)):
        hits = groups.get(name, [])
        out[f"{prefix}/{name}/n"] = len(hits)
        if hits:
            out[f"{prefix}/{name}"] = pct(sum(hits), len(hits))
        else:
            notes.append(f"{prefix}/{name}: no samples, accuracy not defined")


def grounding_block(ious: Sequence[float], prefix: str, out: Metrics) -> None:
    """mIoU and R@k (IoU strictly greater than k) of a list of IoUs, in percent."""
    out[f"{prefix}/n"] = len(ious)
    if not ious:
        return
    out[f"{prefix}/miou"] = 100.0 * sum(ious) / len(ious)
    for k in THRESHOLDS:
        out[f"{prefix}/r@{k}"] = pct(sum(v > k for v in ious), len(ious))


def best_iou(span: Segment | None, gts: Sequence[Segment]) -> float:
    """IoU of ``span`` with the best-matching ground-truth span (0 without a span or ground truth)."""
    if span is None:
        return 0.0
    return max((iou(span, gt) for gt in gts), default=0.0)


def mcq_correct(p: Prediction, valid: str, convention: str) -> bool:
    """Reference rule: the first character of ``response`` as stored, "A" when it is not an option; a failed sample is wrong."""
    if p.failed:
        return False
    gt = (p.answer or "")[:1]
    if convention == "lmms":
        return extract.lenient_letter(p.response, valid) == gt
    letter, _ = extract.letter_or_default(p.response, valid)
    return letter == gt


def failed_count(preds: Sequence[Prediction], out: Metrics, notes: list[str]) -> None:
    """``failed``: samples that could not be run (scored as unanswered and counted in every figure)."""
    failed = sum(p.failed for p in preds)
    out["failed"] = failed
    if failed:
        notes.append(f"{failed} sample(s) failed (e.g. unreadable video): scored as unanswered and counted")


def tool_stats(preds: list[Prediction]) -> Metrics:
    """Tool use: call rate, calls per sample, clips per call, and the mean best IoU of requested ranges with the evidence."""
    known = [p for p in preds if p.tool_calls is not None and not p.failed]
    out: Metrics = {"tool/n": len(known)}
    if not known:
        return out
    calls = [call for p in known for call in p.tool_calls]
    out["tool/call_rate"] = pct(sum(bool(p.tool_calls) for p in known), len(known))
    out["tool/calls_per_sample"] = len(calls) / len(known)
    if calls:
        out["tool/clips_per_call"] = sum(len(c) for c in calls) / len(calls)
    best = [
        max((best_iou(r, p.gt_spans()) for call in p.tool_calls for r in call), default=0.0)
        for p in known
        if p.gt_spans() and p.tool_calls
    ]
    out["tool/iou_n"] = len(best)
    if best:
        out["tool/iou_mean"] = 100.0 * sum(best) / len(best)
    return out
