"""Builders of assistant turns, decoded responses and ground truths for the reward tests."""

from __future__ import annotations

import json

from tools import protocol


def tool_turn(*ranges: tuple[float, float], think: str = "I need to look closer.") -> str:
    """A well-formed tool-call turn requesting ``ranges``."""
    arguments = [{"start_time": start, "end_time": end} for start, end in ranges]
    body = json.dumps({"name": protocol.TOOL_NAME, "arguments": arguments})
    return f"<think>{think}</think><tool_call>{body}</tool_call>"


def answer_turn(answer: str, think: str = "The clip shows it.") -> str:
    """A well-formed answer turn."""
    return f"<think>{think}</think><answer>{answer}</answer>"


def decoded_response(turns: list[str], failed: set[int] = frozenset()) -> str:
    """The response text verl decodes (special tokens removed) for these assistant turns.

    After each turn but the last comes a feedback user turn; ``failed`` holds the indices of turns
    whose tool call failed (the failure text is used there).
    """
    parts = [turns[0]]
    for index, turn in enumerate(turns[1:]):
        feedback = protocol.TOOL_FAILURE_TEXT if index in failed else protocol.TOOL_SUCCESS_TEXT
        parts.append(f"\nuser\n{feedback}\nassistant\n{turn}")
    return "".join(parts)


def qa_truth(answer: str = "C", timestamps: list[list[float]] | None = None) -> dict:
    return {"data_type": "qa", "answer": answer, "timestamps": timestamps if timestamps is not None else [[10.0, 20.0]]}


def grounding_truth(timestamps: list[list[float]]) -> dict:
    return {"data_type": "grounding", "answer": "", "timestamps": timestamps}
