"""A small, independent re-statement of the reference release's reward rules, and a random trajectory maker.

Written from reading ``rl/video_crop_plugin.py`` (``BaseVideoReward``, ``IOU_Reward``, ``FormatReward``):
plain regexes and Python, nothing shared with ``reward_fns``. ``tests/test_reference_rules.py`` compares
the project's reward with it; ``benchmarks/reward_fidelity.py`` counts how many rewards differ.
"""

from __future__ import annotations

import json
import random
import re

NAME = "get_video_clip_frame"
_TOOL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_TOOL_SHAPE = re.compile(r"^<think>.*?</think>\s*<tool_call>.*?</tool_call>$", re.DOTALL)
_ANSWER_SHAPE = re.compile(r"^<think>.*?</think>\s*<answer>.*?</answer>$", re.DOTALL)
_NUMBER = re.compile(r"-?\d+\.?\d*")


def ref_ranges(text: str) -> list[tuple[float, float]]:
    """Every block's ranges; an exception stops that block (earlier ranges of it stay)."""
    out = []
    for body in _TOOL.findall(text):
        try:
            call = json.loads(body.strip())
            if call["name"] == NAME:
                for item in call["arguments"]:
                    out.append((float(item["start_time"]), float(item["end_time"])))
        except Exception:
            continue
    return out


def ref_iou(p, t) -> float:
    inter = max(0.0, min(p[1], t[1]) - max(p[0], t[0]))
    union = (p[1] - p[0]) + (t[1] - t[0]) - inter
    return inter / union if union > 0 else 0.0


def ref_best_iou(preds, gts) -> float:
    """Greedy matching (a GT is used only by an IoU > 0), divided by len(preds), then normalised."""
    if not preds or not gts:
        return 0.0
    used, total = set(), 0.0
    for p in preds:
        best, best_i = 0.0, -1
        for i, t in enumerate(gts):
            if i not in used and ref_iou(p, t) > best:
                best, best_i = ref_iou(p, t), i
        if best_i != -1:
            used.add(best_i)
            total += best
    return max(0.0, min((total / len(preds) - 0.2) / 0.6, 1.0))


def ref_letter(text: str) -> str:
    for ch in (text or "").strip():
        if ch.isalpha():
            return ch
    return ""


def ref_format(turns: list[str]) -> float:
    for turn in turns:
        tool, ans = bool(_TOOL_SHAPE.fullmatch(turn)), bool(_ANSWER_SHAPE.fullmatch(turn))
        if not (tool or ans):
            return 0.0
        if tool:
            try:
                match = _TOOL.search(turn)
                call = json.loads(match.group(1).strip() if match else "")
                assert call["name"] == NAME
                for item in call["arguments"]:
                    float(item["start_time"])
                    float(item["end_time"])
            except Exception:
                return 0.0
    return 1.0


def ref_rewards(turns: list[str], data_type: str, solution: str, gts: list[tuple[float, float]]) -> dict[str, float]:
    """acc, iou (the reference's IOU_Reward, grounding quirk included) and format of one trajectory."""
    last = turns[-1]
    answer = _ANSWER.search(last)
    model_answer = answer.group(1).strip() if answer and not _TOOL.search(last) else ""
    if data_type == "qa":
        m, r = ref_letter(model_answer), ref_letter(solution)
        acc = 1.0 if m and r and m == r else 0.0
        tool = ref_best_iou(ref_ranges(turns[-2]), gts) if len(turns) >= 2 else 0.0
    else:
        numbers = _NUMBER.findall(model_answer)
        acc = 0.0
        if len(numbers) % 2 == 0:
            pairs = [(float(numbers[i]), float(numbers[i + 1])) for i in range(0, len(numbers), 2)]
            acc = ref_best_iou(pairs, gts)
        tool = 0.0
    iou = (tool if tool >= 0.1 else tool - 0.1) if acc == 1.0 else 0.0
    return {"acc": acc, "iou": iou, "format": ref_format(turns)}


# ------------------------------------------------------------------------------ random trajectories


def _number(rng: random.Random):
    kind = rng.random()
    if kind < 0.6:
        return round(rng.uniform(-5, 120), rng.choice([0, 1, 2]))
    if kind < 0.75:
        return rng.randint(0, 120)
    if kind < 0.9:
        return str(round(rng.uniform(0, 120), 1))
    return rng.choice(["x", None, True, "", "1e400", [1], " 7 "])


def _range(rng: random.Random, gts):
    if gts and rng.random() < 0.5:  # near a GT segment
        s, e = rng.choice(gts)
        jitter = lambda: rng.uniform(-8, 8)  # noqa: E731
        start, end = s + jitter(), e + jitter()
        if rng.random() < 0.2:
            start, end = end, start  # inverted
        return {"start_time": round(start, 1), "end_time": round(end, 1)}
    entry = {"start_time": _number(rng), "end_time": _number(rng)}
    if rng.random() < 0.05:
        entry.pop(rng.choice(["start_time", "end_time"]))
    return entry


def _tool_body(rng: random.Random, gts) -> str:
    ranges = [_range(rng, gts) for _ in range(rng.choice([0, 1, 1, 2, 3, 4]))]
    shape = rng.random()
    if shape < 0.75:
        obj = {"name": NAME, "arguments": ranges}
    elif shape < 0.8:
        obj = {"name": NAME}  # no arguments
    elif shape < 0.85:
        obj = {"name": NAME, "arguments": ranges[0] if ranges else {}}  # a single object
    elif shape < 0.9:
        obj = {"name": NAME, "arguments": json.dumps(ranges)}  # stringified
    elif shape < 0.95:
        obj = {"name": "crop", "arguments": ranges}
    else:
        return "{not json " + json.dumps(ranges)
    return json.dumps(obj)


def _answer_text(rng: random.Random, data_type: str, gts) -> str:
    if data_type == "qa":
        return rng.choice(["A", "B", "C", "D", "(C)", " b", "C. red", "The answer is C", "答", "Ａ", "", "42", "ÉD"])
    if gts and rng.random() < 0.6:
        s, e = rng.choice(gts)
        s, e = round(s + rng.uniform(-6, 6), 2), round(e + rng.uniform(-6, 6), 2)
        return rng.choice([f"[{s}, {e}]", f"{s} - {e}", f"{s}-{e}", f"from {s} to {e} seconds", f"{s}"])
    return rng.choice(["70-100", "in -12.3 - 80.3", "1:10 to 2:20", "none", "5. -3", "3.5 7.25 9"])


def _turn(rng: random.Random, kind: str, data_type: str, gts) -> str:
    think = "<think>" + rng.choice(["look", "check <think>again</think>", "", "t\nx"]) + "</think>"
    sep = rng.choice(["", "", "\n", " "])
    if kind == "tool":
        body = f"<tool_call>{_tool_body(rng, gts)}</tool_call>"
        if rng.random() < 0.1:
            body += f"<tool_call>{_tool_body(rng, gts)}</tool_call>"
        if rng.random() < 0.1:
            body += f"<answer>{_answer_text(rng, data_type, gts)}</answer>"
        text = think + sep + body
    elif kind == "answer":
        text = think + sep + f"<answer>{_answer_text(rng, data_type, gts)}</answer>"
    else:
        text = rng.choice(["I think it is A.", "<think>hmm", "<answer>B", "<tool_call>{}", ""])
    roll = rng.random()
    if roll < 0.05:
        text += "\n"
    elif roll < 0.08:
        text = " " + text
    return text


def random_trajectory(rng: random.Random):
    """(turns, data_type, solution, gt segments) with random ranges, letters, tags and numbers."""
    data_type = rng.choice(["qa", "grounding"])
    gts = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        s = round(rng.uniform(0, 100), 1)
        gts.append((s, round(s + rng.uniform(1, 40), 1)))
    solution = rng.choice(["A", "B", "C", "D", "(C) red", "b"]) if data_type == "qa" else json.dumps(gts[0])
    n = rng.choice([1, 2, 2, 3, 3])
    kinds = [rng.choice(["tool", "tool", "tool", "answer", "junk"]) for _ in range(n - 1)]
    kinds.append(rng.choice(["answer", "answer", "answer", "tool", "junk"]))
    turns = [_turn(rng, k, data_type, gts) for k in kinds]
    return turns, data_type, solution, gts
