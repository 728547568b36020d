"""The quick start's steering grammar admits only turns that the protocol and the format reward accept."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from eval.harness.steered_loop import PROTOCOL_REGEX
from tools import protocol


@settings(max_examples=300, deadline=None)
@given(st.from_regex(PROTOCOL_REGEX, fullmatch=True))
def test_every_turn_the_grammar_admits_is_well_formed(text):
    assert protocol.is_well_formed_turn(text), text


def test_json_numbers_only():
    call = '<think>a</think><tool_call>{"name": "get_video_clip_frame", "arguments": [{"start_time": 0, "end_time": %s}]}</tool_call>'
    assert re.fullmatch(PROTOCOL_REGEX, call % "12.5")
    assert not re.fullmatch(PROTOCOL_REGEX, call % "028")  # JSON has no leading zeros: the call would not parse
    assert re.fullmatch(PROTOCOL_REGEX, "<think>b</think><answer>The event happens in the 3 - 7.5 seconds</answer>")
    assert not re.fullmatch(PROTOCOL_REGEX, "<think>b</think><answer>C</answer> ")
