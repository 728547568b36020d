"""The VideoTemp-o3 agent protocol: the one place that holds its texts, limits and turn parsing.

Used by the agent loop, the tool, the rewards, data preparation and evaluation. Nothing here
imports verl or torch, so every part of the project can use it cheaply.

Conversation: system prompt, user turn with the video and the question, then up to
``MAX_ASSISTANT_TURNS`` assistant turns of exactly one of two shapes::

    <think>...</think><tool_call>{"name": "get_video_clip_frame", "arguments": [...]}</tool_call>
    <think>...</think><answer>...</answer>

After a tool call a new *user* turn carries one video per clip plus ``TOOL_SUCCESS_TEXT``
(or an error text plus ``TOOL_FAILURE_TEXT``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

TOOL_NAME = "get_video_clip_frame"

MAX_ASSISTANT_TURNS = 3
MAX_CLIPS_PER_CALL = 3

# Clip sampling (PROTOCOL.md): 2 fps, frame count clamped to [4, 64] and made even.
CLIP_FPS = 2.0
CLIP_MIN_FRAMES = 4
CLIP_MAX_FRAMES = 64

# Main-video budgets of the reference.
VIDEO_FPS = 2.0
TRAIN_MAX_FRAMES = 512
TRAIN_PIXELS = 50_176  # 224 x 224 area; min = max
EVAL_MAX_FRAMES = 256
EVAL_PIXELS = 200_704  # 448 x 448 area

TOOL_CALL_TEMPLATE = (
    '<tool_call>{"name":"get_video_clip_frame","arguments":'
    '[{"start_time":[start_time],"end_time":[end_time]}]}</tool_call>'
)

SYSTEM_PROMPT = (
    "You are a helpful assistant. "
    "Think step-by-step before providing your final answer. "
    "Enclose your entire reasoning process within <think> and </think> tags. "
    "Enclose your final answer within <answer> and </answer> tags. "
    "If analyzing a specific video segment is necessary to answer the question, "
    "you may use the following tool to extract a clip from [start_time] to [end_time]:\n"
    f"{TOOL_CALL_TEMPLATE}\n"
    "Use the insights from the clip to inform your reasoning and construct the final answer."
)

TOOL_SUCCESS_TEXT = (
    "Tool execution successful. Analyze the visual information from the provided video clip "
    "to answer the user's question."
)
TOOL_FAILURE_TEXT = (
    "Tool execution failed. Please continue your analysis based on your existing knowledge "
    "and the information from the conversation so far."
)
NO_TIMESTAMP_ERROR = "[Error] No valid timestamp found in the model output."
BAD_JSON_ERROR = "[Error] The tool call is not valid JSON."
WRONG_TOOL_ERROR = f"[Error] Unknown tool name; the only tool is {TOOL_NAME}."
NO_VALID_RANGE_ERROR = (
    "[Error] No valid time range: each range needs 0 <= start_time < end_time within the video."
)
VIDEO_UNREADABLE_ERROR = "[Error] The video could not be read."

VIDEO_PLACEHOLDER = "<video>"

_THINK_TOOL_RE = re.compile(r"<think>(.*?)</think>\s*<tool_call>(.*?)</tool_call>", re.DOTALL)
_THINK_ANSWER_RE = re.compile(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", re.DOTALL)
_TOOL_BLOCK_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
# How a feedback turn looks in text decoded with special tokens removed:
# "...</tool_call>\nuser\n[caption]<success or failure text>\nassistant\n<think>..."
_FEEDBACK_SPLIT_RE = re.compile(
    r"\nuser\n.*?(?:" + re.escape(TOOL_SUCCESS_TEXT) + "|" + re.escape(TOOL_FAILURE_TEXT) + r")\nassistant\n",
    re.DOTALL,
)


@dataclass(frozen=True)
class ToolCall:
    """One parsed ``<tool_call>`` body.

    ``ranges`` holds the float pairs read in order; parsing stops at the first entry that is not a
    pair of float-convertible ``start_time``/``end_time`` (``error`` says why). ``valid_json`` and
    ``name_ok`` tell the format reward whether the body is well formed; ``all_entries_ok`` is false
    when some entry could not be read.
    """

    ranges: tuple[tuple[float, float], ...]
    valid_json: bool
    name_ok: bool
    all_entries_ok: bool
    error: str | None = None

    @property
    def well_formed(self) -> bool:
        return self.valid_json and self.name_ok and self.all_entries_ok


@dataclass(frozen=True)
class ParsedTurn:
    """One assistant turn read the way the agent loop acts on it."""

    kind: Literal["tool_call", "answer", "invalid"]
    think: str | None = None
    tool_call: ToolCall | None = None
    answer: str | None = None
    well_formed: bool = False  # the turn fully matches one of the two shapes (format reward)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("boolean is not a time")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ValueError(f"not a number: {value!r}")


def parse_tool_call(body: str) -> ToolCall:
    """Parse the JSON body of one ``<tool_call>`` block. Never raises."""
    try:
        obj = json.loads(body.strip())
    except (ValueError, RecursionError):
        return ToolCall((), False, False, False, BAD_JSON_ERROR)
    if not isinstance(obj, dict):
        return ToolCall((), True, False, False, BAD_JSON_ERROR)
    if obj.get("name") != TOOL_NAME:
        return ToolCall((), True, False, False, WRONG_TOOL_ERROR)
    args = obj.get("arguments", [])
    if isinstance(args, str):  # hermes-style stringified arguments
        try:
            args = json.loads(args)
        except (ValueError, RecursionError):
            return ToolCall((), True, True, False, BAD_JSON_ERROR)
    if isinstance(args, dict):
        args = [args]
    if not isinstance(args, list):
        return ToolCall((), True, True, False, NO_VALID_RANGE_ERROR)
    ranges: list[tuple[float, float]] = []
    for entry in args:
        try:
            if not isinstance(entry, dict):
                raise ValueError("entry is not an object")
            ranges.append((_to_float(entry["start_time"]), _to_float(entry["end_time"])))
        except (KeyError, ValueError, TypeError, OverflowError):
            return ToolCall(tuple(ranges), True, True, False, NO_VALID_RANGE_ERROR)
    return ToolCall(tuple(ranges), True, True, True, None)


def tool_call_bodies(text: str) -> list[str]:
    """Bodies of every complete ``<tool_call>...</tool_call>`` block, in order."""
    return _TOOL_BLOCK_RE.findall(text)


def first_answer(text: str) -> str | None:
    """Stripped text of the first ``<answer>...</answer>``, or None."""
    match = _ANSWER_RE.search(text)
    return match.group(1).strip() if match else None


def is_well_formed_turn(text: str) -> bool:
    """Strict shape check of one assistant turn (the format reward's rule).

    The whole text must be ``<think>..</think><tool_call>..</tool_call>`` or
    ``<think>..</think><answer>..</answer>`` (whitespace only between the blocks, nothing before or
    after); the first tool-call body must be JSON naming the tool with numeric ranges.
    """
    if _THINK_ANSWER_RE.fullmatch(text):
        return True
    if _THINK_TOOL_RE.fullmatch(text):
        bodies = tool_call_bodies(text)
        return bool(bodies) and parse_tool_call(bodies[0]).well_formed
    return False


def parse_turn(text: str) -> ParsedTurn:
    """Read one assistant turn as the agent loop acts on it. Never raises.

    A complete ``<tool_call>`` block makes the turn a tool call (only the first block is used); else
    an ``<answer>`` block makes it an answer; else the turn is invalid.
    """
    think_match = _THINK_RE.search(text)
    think = think_match.group(1).strip() if think_match else None
    well_formed = is_well_formed_turn(text)
    bodies = tool_call_bodies(text)
    if bodies:
        return ParsedTurn("tool_call", think, parse_tool_call(bodies[0]), None, well_formed)
    answer = first_answer(text)
    if answer is not None:
        return ParsedTurn("answer", think, None, answer, well_formed)
    return ParsedTurn("invalid", think, None, None, False)


@dataclass(frozen=True)
class ClipRange:
    """A validated, clamped clip range in seconds of the source video."""

    start: float
    end: float


@dataclass
class RangeCheck:
    """Result of validating the ranges of a tool call against a video."""

    clips: list[ClipRange] = field(default_factory=list)
    rejected: list[tuple[float, float]] = field(default_factory=list)
    dropped_over_limit: int = 0


def validate_ranges(
    ranges: tuple[tuple[float, float], ...] | list[tuple[float, float]],
    duration: float,
    max_clips: int = MAX_CLIPS_PER_CALL,
) -> RangeCheck:
    """Apply the protocol's range rules: ``0 <= start < end``, finite, clamp to ``[0, duration]``.

    Ranges beyond ``max_clips`` are ignored (counted in ``dropped_over_limit``). A range whose clamped
    length is zero (it starts at or after the end of the video) is rejected.
    """
    check = RangeCheck()
    for start, end in ranges:
        if len(check.clips) >= max_clips:
            check.dropped_over_limit += 1
            continue
        ok = math.isfinite(start) and math.isfinite(end) and start >= 0 and end > start
        if ok:
            s, e = min(start, duration), min(end, duration)
            if e > s:
                check.clips.append(ClipRange(s, e))
                continue
        check.rejected.append((start, end))
    return check


def feedback_text(clips: list[ClipRange], error: str | None = None, caption: bool = False) -> str:
    """Text of the user turn that answers a tool call (after its video blocks).

    ``error`` given (or no clips): the error text and the failure sentence. With ``caption`` the
    success text is preceded by one line giving each clip's absolute range (off by default, as the
    reference gives no timestamp text).
    """
    if error is not None or not clips:
        return f"{error or NO_VALID_RANGE_ERROR} {TOOL_FAILURE_TEXT}"
    if caption:
        spans = "; ".join(f"clip {i + 1}: {c.start:.2f}s - {c.end:.2f}s" for i, c in enumerate(clips))
        return f"The clips cover {spans} of the video. {TOOL_SUCCESS_TEXT}"
    return TOOL_SUCCESS_TEXT


def split_assistant_turns(solution_str: str) -> list[str]:
    """Split the decoded multi-turn response (special tokens removed) into assistant turn texts."""
    return _FEEDBACK_SPLIT_RE.split(solution_str)


def user_prompt(question: str) -> str:
    """Content of the first user turn: the video placeholder followed by the question."""
    return f"{VIDEO_PLACEHOLDER}\n{question.strip()}"


def build_prompt_messages(question: str) -> list[dict[str, str]]:
    """System + user messages in verl's RLHFDataset form (``<video>`` placeholder in the text)."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_prompt(question)},
    ]
