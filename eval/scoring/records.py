"""The one record shape the metrics read, whatever file the predictions came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reward_fns.answer_parsing import tool_call_turns, turn_tool_ranges
from tools.segments import Segment


@dataclass
class Prediction:
    """One scored sample: ground truth, the extracted response, and the turns (for tool statistics).

    ``tool_calls`` lists the ranges of each tool call in order (None when unknown, e.g. LVBench files
    of the reference hold no turns). ``spans``: every ground-truth span when there are several (the IoU
    is the best over them). ``failed``: the sample could not be run (e.g. an unreadable video): it is
    scored as unanswered (wrong, IoU 0) and counted.
    """

    id: str
    response: str
    answer: str | None = None
    span: Segment | None = None
    duration: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    turns: list[str] | None = None
    tool_calls: list[list[Segment]] | None = None
    spans: list[Segment] | None = None
    failed: bool = False

    def gt_spans(self) -> list[Segment]:
        """Every ground-truth span (``spans``, else ``[span]``, else none)."""
        if self.spans:
            return list(self.spans)
        return [self.span] if self.span is not None else []


def tool_calls_from_turns(turns: list[str]) -> list[list[Segment]]:
    """Ranges of each turn that holds a ``<tool_call>`` block (one list per calling turn)."""
    return [turn_tool_ranges(turns[i]) for i in tool_call_turns(turns)]
