"""Reading answers and tool ranges out of assistant turns (rules: docs/rewards.md).

Shared by the training reward and evaluation scoring. Turn shapes and tool-call bodies are read with
``tools.protocol``; this module only adds the answer-level rules: the final answer,
its first letter, the numbers of a grounding answer and the ranges of the last tool call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tools import protocol
from tools.segments import Segment

# An optional minus glued to the digits; whether it is a sign or a separator is decided by context.
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")


def final_answer(turns: Sequence[str]) -> str | None:
    """Stripped text of the first ``<answer>`` of the last turn, if that turn has no complete tool call.

    None when there is no turn, the last turn calls the tool, or it holds no ``<answer>`` block.
    """
    if not turns:
        return None
    last = turns[-1]
    if protocol.has_tool_call(last):
        return None
    return protocol.first_answer(last)


def first_letter(text: str | None) -> str | None:
    """First character of ``text`` with ``str.isalpha()`` (case kept; CJK letters count), or None.

    The reference's rule: "(C)" and "C. text" give "C", "The answer is C" gives "T", "Ａ" gives "Ａ".
    """
    if not text:
        return None
    return next((ch for ch in text if ch.isalpha()), None)


def extract_numbers(text: str | None, dash_separator: bool = True) -> list[float]:
    """All numbers of ``text`` in order.

    A ``-`` directly before digits is a sign unless the previous number ends right before it (only
    spaces between): "70-100" and "24.30 - 30.42" are two positive numbers, "in -12.3 - 80.3" is
    (-12.3, 80.3). "1:10" gives 1 and 10 (no mm:ss reading). With ``dash_separator=False`` every
    such ``-`` is a sign, as in the reference ("70-100" is 70 and -100).
    """
    if not text:
        return []
    numbers: list[float] = []
    previous_end: int | None = None
    for match in _NUMBER_RE.finditer(text):
        token = match.group(0)
        if (
            dash_separator
            and token.startswith("-")
            and previous_end is not None
            and not text[previous_end : match.start()].strip()
        ):
            token = token[1:]  # a separator between two numbers, not a sign
        numbers.append(float(token))
        previous_end = match.end()
    return numbers


def numbers_to_segments(numbers: Sequence[float]) -> list[Segment]:
    """Pair numbers in order into segments; an odd count gives no segment at all."""
    if len(numbers) % 2:
        return []
    return [(float(numbers[i]), float(numbers[i + 1])) for i in range(0, len(numbers), 2)]


def answer_segments(answer: str | None, dash_separator: bool = True) -> list[Segment]:
    """Segments of a grounding answer: its numbers paired in order ([] for an odd count)."""
    return numbers_to_segments(extract_numbers(answer, dash_separator))


def tool_call_turns(turns: Sequence[str]) -> list[int]:
    """Indices of the turns that contain at least one complete ``<tool_call>`` block."""
    return [i for i, turn in enumerate(turns) if protocol.has_tool_call(turn)]


def turn_tool_ranges(turn: str) -> list[Segment]:
    """Ranges of every ``<tool_call>`` block of one turn, in order (the reference's reward reading).

    A block that is not JSON naming the tool gives nothing; an unreadable entry ends its block (earlier
    entries stay), as ``protocol.parse_tool_call`` reads them.
    """
    ranges: list[Segment] = []
    for body in protocol.tool_call_bodies(turn):
        ranges.extend(protocol.parse_tool_call(body).ranges)
    return ranges


def iou_turn_ranges(turns: Sequence[str], rule: str = "before_answer") -> list[Segment] | None:
    """Ranges the IoU reward reads; None when the turn it reads holds no tool call.

    ``"before_answer"`` (the reference: ``messages[-3]``): the assistant turn just before the final
    turn, even if an earlier turn called the tool; None with a single turn. ``"last_tool_turn"``
    (an improvement setting): the last turn that called the tool, wherever it is.
    """
    if rule == "before_answer":
        if len(turns) < 2 or not protocol.has_tool_call(turns[-2]):
            return None
        return turn_tool_ranges(turns[-2])
    if rule == "last_tool_turn":
        return last_tool_ranges(turns)
    raise ValueError(f"iou_turn must be 'before_answer' or 'last_tool_turn', got {rule!r}")


def last_tool_ranges(turns: Sequence[str]) -> list[Segment] | None:
    """Ranges requested by the last turn that called the tool; None when no turn called it."""
    indices = tool_call_turns(turns)
    if not indices:
        return None
    return turn_tool_ranges(turns[indices[-1]])
