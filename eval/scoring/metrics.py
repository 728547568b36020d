"""Per-benchmark metrics (EVAL.md), as flat ``{metric name: value}`` dicts; accuracies and IoUs in percent.

Every function takes the normalised :class:`~eval.scoring.records.Prediction` list and returns
``(metrics, notes)``: ``notes`` explain figures that could not be computed (an empty bucket, an
unknown category) instead of crashing as the reference does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from eval.benchmarks.base import DURATION_BUCKETS, duration_bucket
from eval.scoring import extract
from eval.scoring.records import Prediction, Segment
from reward_fns.answer_parsing import first_letter
from reward_fns.segments import iou

Metrics = dict[str, float]
THRESHOLDS = (0.3, 0.5, 0.7)
VIDEOMME_DURATIONS = ("short", "medium", "long")
VIDEOMMMU_TRACKS = ("Perception", "Comprehension", "Adaptation")


def _pct(num: float, den: int) -> float:
    return 100.0 * num / den


def _accuracy_groups(groups: dict[str, list[bool]], prefix: str, out: Metrics, notes: list[str], order: Iterable[str] = ()) -> None:
    for name in list(order) + sorted(k for k in groups if k not in set(order)):
        hits = groups.get(name, [])
        out[f"{prefix}/{name}/n"] = len(hits)
        if hits:
            out[f"{prefix}/{name}"] = _pct(sum(hits), len(hits))
        else:
            notes.append(f"{prefix}/{name}: no samples, accuracy not defined")


def _grounding_block(ious: Sequence[float], prefix: str, out: Metrics) -> None:
    """mIoU and R@k (IoU strictly greater than k) of a list of IoUs, in percent."""
    out[f"{prefix}/n"] = len(ious)
    if not ious:
        return
    out[f"{prefix}/miou"] = 100.0 * sum(ious) / len(ious)
    for k in THRESHOLDS:
        out[f"{prefix}/r@{k}"] = _pct(sum(v > k for v in ious), len(ious))


def _bucket(p: Prediction) -> str:
    if p.fields.get("bucket"):
        return str(p.fields["bucket"])
    if p.duration is None:
        raise ValueError(f"sample {p.id}: no duration to bucket by")
    return duration_bucket(float(p.duration))


def score_videotemp(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """VideoTemp-Bench MCQ: accuracy per duration bucket and overall (micro)."""
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in preds:
        correct = _mcq_correct(p, "ABCDE", convention)
        groups[_bucket(p)].append(correct)
        groups["overall"].append(correct)
    _accuracy_groups(groups, "acc", out, notes, order=(*DURATION_BUCKETS, "overall"))
    return out, notes


def _mcq_correct(p: Prediction, valid: str, convention: str) -> bool:
    gt = (p.answer or "")[:1]
    if convention == "lmms":
        return extract.lenient_letter(p.response, valid) == gt
    letter, _ = extract.letter_or_default(p.response, valid)
    return letter == gt


def score_videotemp_grounding(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """VideoTemp-Bench grounding: per bucket mIoU, R@0.3/0.5/0.7 and Avg (mean of the four), plus parse errors."""
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[float]] = defaultdict(list)
    errors = 0
    for p in preds:
        if p.span is None:
            raise ValueError(f"sample {p.id}: no ground-truth timestamp")
        span = extract.reference_grounding_span(p.response) if convention == "reference" else extract.first_answer_span(p.response)
        errors += span is None
        value = iou(span, p.span) if span is not None else 0.0
        groups[_bucket(p)].append(value)
        groups["overall"].append(value)
    for name in (*DURATION_BUCKETS, "overall"):
        ious = groups.get(name, [])
        _grounding_block(ious, name, out)
        if ious:
            out[f"{name}/avg"] = sum(out[f"{name}/{m}"] for m in ("miou", "r@0.3", "r@0.5", "r@0.7")) / 4
        else:
            notes.append(f"{name}: no samples, grounding metrics not defined")
    out["parse_errors"] = errors
    return out, notes


def score_videomme(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Video-MME: accuracy overall, per duration, domain, sub-category, task type.

    ``ref/...``: the reference release's extraction, unparsable answers skipped (left out of numerator and
    denominator). ``lmms/...``: the official/lmms-eval extraction, unparsable answers counted wrong.
    """
    out: Metrics = {}
    notes: list[str] = []
    for variant, extractor, skip in (("ref", extract.videomme_reference_letter, True), ("lmms", extract.videomme_lmms_letter, False)):
        groups: dict[str, list[bool]] = defaultdict(list)
        unparsed = 0
        for p in preds:
            letter = extractor(p.response)
            if letter is None:
                unparsed += 1
                if skip:
                    continue
            correct = letter is not None and letter == (p.answer or "")[:1]
            duration = str(p.fields.get("duration"))
            if duration not in VIDEOMME_DURATIONS:
                notes.append(f"sample {p.id}: unknown duration category {duration!r} (counted in overall only)")
            else:
                groups[f"duration/{duration}"].append(correct)
            for key in ("domain", "sub_category", "task_type"):
                if p.fields.get(key) is not None:
                    groups[f"{key}/{p.fields[key]}"].append(correct)
            groups["overall"].append(correct)
        out[f"{variant}/unparsed"] = unparsed
        _accuracy_groups(groups, variant, out, notes, order=("overall", *(f"duration/{d}" for d in VIDEOMME_DURATIONS)))
    return out, notes


def score_mlvu(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """MLVU test: overall accuracy (correct / records) and M-Avg (mean of per-task accuracies)."""
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in preds:
        if convention == "lmms":
            correct = p.answer is not None and extract.lenient_letter(p.response, "ABCDEFG") == p.answer[:1]
        else:
            correct = bool(p.response) and p.answer is not None and p.response[0] == p.answer[:1]
        groups[f"task/{p.fields.get('task', 'unknown')}"].append(correct)
        groups["overall"].append(correct)
    _accuracy_groups(groups, "acc", out, notes, order=("overall",))
    tasks = [out[k] for k in out if k.startswith("acc/task/") and not k.endswith("/n")]
    if tasks:
        out["m_avg"] = sum(tasks) / len(tasks)
    return out, notes


def score_videommmu(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Video-MMMU: accuracy per track; Avg = unweighted mean of the three tracks."""
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in preds:
        track = str(p.fields.get("track"))
        if track not in VIDEOMMMU_TRACKS:
            raise ValueError(f"sample {p.id}: unknown Video-MMMU track {track!r}; expected one of {VIDEOMMMU_TRACKS}")
        groups[track].append(_mcq_correct(p, "ABCDEFGHIJKLMN", convention))
    _accuracy_groups(groups, "acc", out, notes, order=VIDEOMMMU_TRACKS)
    present = [out[f"acc/{t}"] for t in VIDEOMMMU_TRACKS if f"acc/{t}" in out]
    if len(present) == len(VIDEOMMMU_TRACKS):
        out["avg"] = sum(present) / len(present)
    else:
        notes.append("avg: needs all three tracks")
    return out, notes


def score_lvbench(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """LVBench: overall (micro) accuracy and per question type (a question counts for each of its types)."""
    out: Metrics = {}
    notes: list[str] = []
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in preds:
        correct = _mcq_correct(p, "ABCDE", convention)
        groups["overall"].append(correct)
        for qtype in p.fields.get("question_type") or []:
            groups[f"type/{qtype}"].append(correct)
    if not preds:
        notes.append("no predictions matched the metadata")
    _accuracy_groups(groups, "acc", out, notes, order=("overall",))
    return out, notes


def score_grounding(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """Charades-STA / ActivityNet-MR: first predicted span of the answer; unparsable or start >= end is IoU 0."""
    ious = []
    for p in preds:
        span = extract.first_answer_span(p.response)
        ious.append(iou(span, p.span) if span is not None and p.span is not None else 0.0)
    out: Metrics = {}
    _grounding_block(ious, "all", out)
    return out, []


def grounded_span(p: Prediction) -> Segment | None:
    """Evidence span of a grounded-QA answer: a span written in the answer, else the first range of the last tool call."""
    span = extract.first_answer_span(p.response)
    if span is not None:
        return span
    if p.tool_calls:
        for call in reversed(p.tool_calls):
            if call:
                return call[0]
    return None


def score_grounded_qa(preds: list[Prediction], convention: str = "reference") -> tuple[Metrics, list[str]]:
    """NExT-GQA / ReXTime: accuracy (first letter of the answer) and mIoU / R@k of the grounded span."""
    out: Metrics = {}
    hits, ious = [], []
    for p in preds:
        hits.append(first_letter(p.response) == (p.answer or "")[:1] and p.answer is not None)
        span = grounded_span(p)
        ious.append(iou(span, p.span) if span is not None and p.span is not None else 0.0)
    out["acc/n"] = len(hits)
    if hits:
        out["acc"] = _pct(sum(hits), len(hits))
    _grounding_block(ious, "grounding", out)
    return out, []


def tool_stats(preds: list[Prediction]) -> Metrics:
    """Tool use: call rate, calls per sample, clips per call, and the mean best IoU of requested ranges with the evidence."""
    known = [p for p in preds if p.tool_calls is not None]
    out: Metrics = {"tool/n": len(known)}
    if not known:
        return out
    calls = [call for p in known for call in p.tool_calls]
    out["tool/call_rate"] = _pct(sum(bool(p.tool_calls) for p in known), len(known))
    out["tool/calls_per_sample"] = len(calls) / len(known)
    if calls:
        out["tool/clips_per_call"] = sum(len(c) for c in calls) / len(calls)
    best = [
        max((iou(r, p.span) for call in p.tool_calls for r in call), default=0.0)
        for p in known
        if p.span is not None and p.tool_calls
    ]
    out["tool/iou_n"] = len(best)
    if best:
        out["tool/iou_mean"] = 100.0 * sum(best) / len(best)
    return out


SCORERS: dict[str, Callable[..., tuple[Metrics, list[str]]]] = {
    "videotemp": score_videotemp,
    "videotemp_g": score_videotemp_grounding,
    "videomme": score_videomme,
    "mlvu": score_mlvu,
    "videommmu": score_videommmu,
    "lvbench": score_lvbench,
    "charades_sta": score_grounding,
    "activitynet_mr": score_grounding,
    "nextgqa": score_grounded_qa,
    "rextime": score_grounded_qa,
}
