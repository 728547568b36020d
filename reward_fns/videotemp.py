"""VideoTemp-o3 reward for verl: accuracy + penalty-aware IoU + format (docs/rewards.md).

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)``
once per trajectory (``reward.custom_reward_function.path=pkg://reward_fns.videotemp``). The
returned dict always has the same float keys (``REWARD_KEYS``); verl stores all of them as
``reward_extra_info`` and uses ``score`` as the scalar reward.

The three components are pure functions (:func:`accuracy_reward`, :func:`penalty_iou_reward`,
:func:`format_reward`); :func:`score_trajectory` composes them into the named parts.

Turns come from ``extra_info["turn_texts"]`` when the agent loop provides them, otherwise from the
decoded response split with ``protocol.split_assistant_turns``; both give the same components.
The counts ``n_tool_calls``, ``n_clips`` and ``answered`` come from the loop's ``tool_ranges``,
``n_clips`` and ``answered`` when present (what it executed); without them they are derived from the
text (clips = valid ranges of each executed call, not checked against the video length).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reward_fns.answer_parsing import (
    answer_segments,
    final_answer,
    first_letter,
    iou_turn_ranges,
    tool_call_turns,
)
from reward_fns.segments import DEFAULT_IOU_HIGH, DEFAULT_IOU_LOW, Segment, normalise_iou, segment_score
from tools import protocol
from tools.files import parquet_value
from tools.segments import parse_segments

logger = logging.getLogger(__name__)

REWARD_KEYS: tuple[str, ...] = (
    "score",  # weighted sum of acc, iou and format
    "acc",  # qa: letter match; grounding: normalised segment score of the answer
    "iou",  # penalty-aware IoU of the last tool call (qa with acc == 1 only; may be -penalty)
    "format",  # 1 iff every assistant turn has one of the two strict shapes
    "tool_iou",  # raw segment score of the last tool call against the evidence (0 without a call)
    "penalised",  # 1 when the IoU penalty was applied
    "n_tool_calls",  # executed tool calls (a call in the final turn got no feedback)
    "n_clips",  # clips cut over the whole trajectory (without the loop's count: valid ranges)
    "answered",  # 1 when the last turn gave an answer
    "n_turns",  # assistant turns
    "called_tool",  # 1 when at least one tool call was made
    "is_qa",
    "is_grounding",
)

# Special-token strings the loop's turn texts may still end with; the decoded solution_str never has them.
_TRAILING_SPECIAL_TOKENS = ("<|im_end|>", "<|endoftext|>")

_error_logged = False


@dataclass(frozen=True)
class RewardSettings:
    """Weights, thresholds and rule settings of the reward (``reward.custom_reward_function.reward_kwargs``).

    Defaults reproduce the reference's rewards, with the two fixes of docs/rewards.md on
    (``dash_separator``, no ``grounding_penalty``); the other rule settings are improvements, off.
    """

    acc_weight: float = 1.0
    iou_weight: float = 1.0
    format_weight: float = 1.0
    sigma: float = 0.1  # normalised tool score below this is penalised
    penalty: float = 0.1  # lambda subtracted when penalised
    iou_low: float = DEFAULT_IOU_LOW
    iou_high: float = DEFAULT_IOU_HIGH
    # Which turn's tool call the IoU reward reads: "before_answer" (reference, messages[-3]) or
    # "last_tool_turn" (the last turn that called the tool).
    iou_turn: str = "before_answer"
    single_blocks: bool = False  # format 0 for a turn with repeated blocks (the reference accepts them)
    dash_separator: bool = True  # fix: "70-100" is 70 and 100 (the reference read 70 and -100)
    grounding_penalty: bool = False  # the reference's quirk: -penalty for a grounding answer with acc 1

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> RewardSettings:
        """Take the known keys from verl's kwargs (others, such as ``reward_router_address``, are ignored)."""
        values: dict[str, Any] = {}
        for name, spec in cls.__dataclass_fields__.items():
            value = kwargs.get(name)
            if value is None:
                continue
            if spec.type in ("bool", bool):
                if isinstance(value, str):
                    if value.strip().lower() not in ("true", "false", "1", "0"):
                        raise ValueError(f"reward setting {name} must be true or false, got {value!r}")
                    value = value.strip().lower() in ("true", "1")
                values[name] = bool(value)
            elif spec.type in ("str", str):
                values[name] = str(value)
            else:
                values[name] = float(value)
        settings = cls(**values)
        if settings.iou_turn not in ("before_answer", "last_tool_turn"):
            raise ValueError(f"iou_turn must be 'before_answer' or 'last_tool_turn', got {settings.iou_turn!r}")
        return settings


@dataclass(frozen=True)
class GroundTruth:
    """A sample's reference: data type, answer text and segments in seconds."""

    data_type: str  # "qa" or "grounding"
    answer: str
    timestamps: list[Segment]


def _to_plain(value: Any) -> Any:
    """numpy arrays / scalars (as parquet returns them) to Python lists / scalars."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def parse_timestamps(value: Any) -> list[Segment]:
    """``[[s, e], ...]`` (lists, tuples or numpy arrays, or their JSON text) or one flat ``[s, e]`` to float pairs.

    :func:`tools.segments.parse_segments`; a malformed value is a :class:`ValueError` naming the field.
    """
    return parse_segments(parquet_value(value), "ground_truth.timestamps")


def parse_ground_truth(ground_truth: Any) -> GroundTruth:
    """Read the reward_model ground truth: a dict, its JSON text, or a bare answer string (qa)."""
    value = ground_truth
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("{") else {"data_type": "qa", "answer": text}
        except ValueError:
            value = {"data_type": "qa", "answer": text}
    if not isinstance(value, Mapping):
        raise TypeError(f"ground_truth must be a dict or its JSON text, got {type(ground_truth).__name__}")
    answer = str(parquet_value(_to_plain(value.get("answer"))) or "")
    timestamps = parse_timestamps(value.get("timestamps"))
    data_type = str(parquet_value(_to_plain(value.get("data_type"))) or "").strip().lower()
    if data_type not in ("qa", "grounding"):
        raise ValueError(f"ground_truth.data_type must be 'qa' or 'grounding', got {data_type!r}")
    return GroundTruth(data_type, answer, timestamps)


def _strip_trailing_special(text: str) -> str:
    """``text`` without its trailing end-of-turn special tokens (one slice: linear time)."""
    end = len(text)
    stripped = True
    while stripped:
        stripped = False
        for token in _TRAILING_SPECIAL_TOKENS:
            if end >= len(token) and text.startswith(token, end - len(token), end):
                end, stripped = end - len(token), True
    return text[:end]


def assistant_turns(solution_str: str, extra_info: Mapping[str, Any] | None) -> list[str]:
    """The assistant turn texts: the loop's ``turn_texts`` when present, else split from ``solution_str``."""
    turn_texts = _to_plain((extra_info or {}).get("turn_texts"))
    if isinstance(turn_texts, list) and turn_texts and all(isinstance(t, str) for t in turn_texts):
        return [_strip_trailing_special(t) for t in turn_texts]
    return protocol.split_assistant_turns(solution_str or "")


def executed_tool_turns(turns: Sequence[str]) -> list[int]:
    """Indices of the tool-call turns that got feedback: a call in the final turn was never executed."""
    return [index for index in tool_call_turns(turns) if index < len(turns) - 1]


def _count_clips(turns: Sequence[str], tool_turns: Sequence[int]) -> int:
    """Clips the RL loop would cut: each executed turn's first call, its first 3 ranges if all are valid."""
    total = 0
    for index in tool_turns:
        call = protocol.parse_turn(turns[index]).tool_call
        if call is not None and call.well_formed:
            check = protocol.validate_ranges(call.ranges, math.inf)
            total += 0 if check.errors else len(check.clips)
    return total


def _zero_result() -> dict[str, float]:
    return {key: 0.0 for key in REWARD_KEYS}


def is_fallback_result(info: Mapping[str, Any]) -> bool:
    """Whether a ``compute_score`` result is the all-zero fallback of an internal error: a scored
    trajectory always has ``is_qa`` or ``is_grounding`` set; the fallback has neither."""
    return "is_qa" in info and "is_grounding" in info and not info["is_qa"] and not info["is_grounding"]


# ------------------------------------------------------------------------------------------------
# The three components, each a pure function (EasyR1's shape: compute_score composes named parts)
# ------------------------------------------------------------------------------------------------


def accuracy_reward(answer: str | None, truth: GroundTruth, settings: RewardSettings) -> float:
    """qa: 1 iff the answer's first option letter is the reference's; grounding: the answer's
    segment score against the reference segments, normalised between ``iou_low`` and ``iou_high``."""
    if truth.data_type == "qa":
        letter = first_letter(answer)
        return 1.0 if letter is not None and letter == first_letter(truth.answer) else 0.0
    answer_score = segment_score(answer_segments(answer, settings.dash_separator), truth.timestamps)
    return normalise_iou(answer_score, settings.iou_low, settings.iou_high)


@dataclass(frozen=True)
class IouReward:
    """The penalty-aware IoU component and how it came about."""

    iou: float  # the reward component (may be -penalty)
    tool_iou: float  # raw segment score of the IoU turn's tool ranges against the evidence (0 without a call)
    penalised: bool


def penalty_iou_reward(turns: Sequence[str], truth: GroundTruth, acc: float, settings: RewardSettings) -> IouReward:
    """Penalty-aware IoU of the tool call the rules read (``iou_turn``), paid only to a correct qa answer.

    A correct qa answer gets the normalised tool score, less ``penalty`` when it is below ``sigma``
    (looked in the wrong place); with ``grounding_penalty`` a correct grounding answer gets ``-penalty``
    (the reference's quirk); everything else 0.
    """
    ranges = iou_turn_ranges(turns, settings.iou_turn)
    tool_iou = segment_score(ranges, truth.timestamps) if ranges else 0.0
    if truth.data_type == "qa" and acc == 1.0:
        value = normalise_iou(tool_iou, settings.iou_low, settings.iou_high)
        if value < settings.sigma:
            return IouReward(value - settings.penalty, tool_iou, True)
        return IouReward(value, tool_iou, False)
    if truth.data_type != "qa" and settings.grounding_penalty and acc == 1.0:  # its IoU score is 0 here
        return IouReward(-settings.penalty, tool_iou, True)
    return IouReward(0.0, tool_iou, False)


def format_reward(turns: Sequence[str], settings: RewardSettings) -> float:
    """1 iff there is a turn and every assistant turn has one of the two strict shapes."""
    return 1.0 if turns and all(protocol.is_well_formed_turn(t, settings.single_blocks) for t in turns) else 0.0


def score_trajectory(turns: Sequence[str], truth: GroundTruth, settings: RewardSettings) -> dict[str, float]:
    """All reward components of one trajectory from its assistant turns (pure; see docs/rewards.md)."""
    answer = final_answer(turns)
    is_qa = truth.data_type == "qa"
    acc = accuracy_reward(answer, truth, settings)
    iou = penalty_iou_reward(turns, truth, acc, settings)
    fmt = format_reward(turns, settings)
    tool_turns = executed_tool_turns(turns)
    n_tool_calls = float(len(tool_turns))
    score = settings.acc_weight * acc + settings.iou_weight * iou.iou + settings.format_weight * fmt
    return {
        "score": score,
        "acc": acc,
        "iou": iou.iou,
        "format": fmt,
        "tool_iou": iou.tool_iou,
        "penalised": 1.0 if iou.penalised else 0.0,
        "n_tool_calls": n_tool_calls,
        "n_clips": float(_count_clips(turns, tool_turns)),
        "answered": 1.0 if answer is not None else 0.0,
        "n_turns": float(len(turns)),
        "called_tool": 1.0 if n_tool_calls > 0 else 0.0,
        "is_qa": 1.0 if is_qa else 0.0,
        "is_grounding": 0.0 if is_qa else 1.0,
    }


def _apply_loop_counts(result: dict[str, float], extra_info: Mapping[str, Any] | None) -> None:
    """Prefer the agent loop's own counts (what it actually executed) over the text-derived ones."""
    info = extra_info or {}
    tool_ranges = _to_plain(info.get("tool_ranges"))
    if isinstance(tool_ranges, list):
        result["n_tool_calls"] = float(len(tool_ranges))
        result["called_tool"] = 1.0 if tool_ranges else 0.0
    if info.get("n_clips") is not None:
        result["n_clips"] = float(_to_plain(info["n_clips"]))
    if info.get("answered") is not None:
        result["answered"] = 1.0 if bool(_to_plain(info["answered"])) else 0.0


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """verl reward entry point: the named parts of :func:`score_trajectory` (accuracy, penalty-aware IoU,
    format and their counts) with the loop's own counts when it provides them.

    Never raises: on an internal error every key is 0.0 (:func:`is_fallback_result`; the training
    metrics count them as ``training/reward/reward_error/count``), logged once.
    """
    global _error_logged
    try:
        settings = RewardSettings.from_kwargs(kwargs)
        truth = parse_ground_truth(ground_truth)
        turns = assistant_turns(solution_str, extra_info)
        result = score_trajectory(turns, truth, settings)
        _apply_loop_counts(result, extra_info)
        return result
    except Exception:  # the reward must not take the training run down
        if not _error_logged:
            logger.exception(
                "videotemp reward failed (data_source=%r); scoring 0. Further errors are not logged.", data_source
            )
            _error_logged = True
        return _zero_result()
