"""Answer parsing and segment scoring rules of docs/rewards.md, with hand-computed values."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reward_helpers import answer_turn, tool_turn

from reward_fns.answer_parsing import (
    answer_segments,
    extract_numbers,
    final_answer,
    first_letter,
    last_tool_ranges,
    numbers_to_segments,
    turn_tool_ranges,
)
from reward_fns.segments import iou, normalise_iou, segment_score


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("C", "C"),
        ("C.", "C"),
        ("(C)", "C"),
        ("C. The red car", "C"),
        ("c", "c"),
        ("The answer is C", "T"),
        ("  (B) text", "B"),
        ("123", None),
        ("", None),
        (None, None),
    ],
)
def test_first_letter_is_first_ascii_letter_case_kept(text, letter):
    assert first_letter(text) == letter


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("[68, 105]", [68.0, 105.0]),
        ("The event happens in the 24.30 - 30.42 seconds", [24.3, 30.42]),
        ("70-100", [70.0, 100.0]),
        ("in -12.3 - 80.3", [-12.3, 80.3]),
        ("1:10", [1.0, 10.0]),
        ("-5 to 7", [-5.0, 7.0]),
        ("from 3 -4", [3.0, 4.0]),
        ("no digits", []),
        ("", []),
    ],
)
def test_extract_numbers(text, numbers):
    assert extract_numbers(text) == pytest.approx(numbers)


def test_numbers_to_segments_pairs_in_order_and_rejects_odd_counts():
    assert numbers_to_segments([1.0, 2.0, 3.0, 4.0]) == [(1.0, 2.0), (3.0, 4.0)]
    assert numbers_to_segments([1.0, 2.0, 3.0]) == []
    assert numbers_to_segments([]) == []
    assert answer_segments("between 5 and 9, maybe 12") == []
    assert answer_segments("70-100") == [(70.0, 100.0)]


def test_final_answer_only_from_last_turn_without_tool_call():
    assert final_answer([tool_turn((1, 2)), answer_turn(" B ")]) == "B"
    assert final_answer([answer_turn("B"), tool_turn((1, 2))]) is None
    assert final_answer(["<think>x</think>"]) is None
    assert final_answer([]) is None
    # first <answer> of the last turn, text after it does not matter here
    assert final_answer(["<think>x</think><answer>A</answer><answer>B</answer> tail"]) == "A"


def test_last_tool_ranges_uses_last_tool_turn_and_all_its_blocks():
    turns = [tool_turn((100, 200)), tool_turn((10, 20), (30, 40)), answer_turn("C")]
    assert last_tool_ranges(turns) == [(10.0, 20.0), (30.0, 40.0)]
    assert last_tool_ranges([answer_turn("C")]) is None
    two_blocks = tool_turn((1, 2)) + tool_turn((3, 4))
    assert turn_tool_ranges(two_blocks) == [(1.0, 2.0), (3.0, 4.0)]


def test_tool_ranges_failing_entry_ends_its_block():
    body = json.dumps(
        {
            "name": "get_video_clip_frame",
            "arguments": [
                {"start_time": 1, "end_time": 2},
                {"start_time": "x", "end_time": 3},
                {"start_time": 5, "end_time": 6},
            ],
        }
    )
    assert turn_tool_ranges(f"<think>t</think><tool_call>{body}</tool_call>") == [(1.0, 2.0)]
    assert turn_tool_ranges("<think>t</think><tool_call>{not json</tool_call>") == []
    wrong_name = json.dumps({"name": "other", "arguments": [{"start_time": 1, "end_time": 2}]})
    assert turn_tool_ranges(f"<tool_call>{wrong_name}</tool_call>") == []


def test_iou_values():
    assert iou((0, 10), (5, 15)) == pytest.approx(1 / 3)
    assert iou((0, 10), (0, 10)) == 1.0
    assert iou((0, 10), (10, 20)) == 0.0
    assert iou((10, 0), (0, 10)) == 0.0  # inverted
    assert iou((5, 5), (0, 10)) == 0.0  # empty
    assert iou((0, math.nan), (0, 10)) == 0.0
    assert iou((0, 8), (0, 10)) == pytest.approx(0.8)


def test_segment_score_greedy_in_order_divided_by_predictions():
    assert segment_score([(0, 10)], [(0, 10), (20, 30)]) == 1.0
    # extra predictions dilute: the second finds no unused ground truth
    assert segment_score([(0, 10), (20, 30)], [(0, 10)]) == pytest.approx(0.5)
    # greedy, not optimal: the first prediction takes (2, 12) (IoU 8/12); the second gets (20, 30) (0)
    assert segment_score([(0, 10), (2, 12)], [(2, 12), (20, 30)]) == pytest.approx((8 / 12) / 2)
    assert segment_score([], [(0, 10)]) == 0.0
    assert segment_score([(0, 10)], []) == 0.0


@pytest.mark.parametrize(
    ("value", "expected"), [(0.0, 0.0), (0.2, 0.0), (0.5, 0.5), (0.8, 1.0), (0.95, 1.0), (0.1, 0.0), (math.nan, 0.0)]
)
def test_normalise_iou_default_bounds(value, expected):
    assert normalise_iou(value) == pytest.approx(expected)


def test_normalise_iou_custom_bounds():
    assert normalise_iou(0.5, low=0.0, high=1.0) == 0.5
    assert normalise_iou(0.3, low=0.3, high=0.3) == 1.0
    assert normalise_iou(0.29, low=0.3, high=0.3) == 0.0


segments = st.tuples(st.integers(-1000, 1000), st.integers(-1000, 1000)).map(lambda p: (float(p[0]), float(p[1])))


@given(segments, segments)
def test_iou_symmetric_bounded_and_one_only_for_identical(a, b):
    value = iou(a, b)
    assert value == iou(b, a)
    assert 0.0 <= value <= 1.0
    if value == 1.0:
        assert a == b
    if a == b and a[1] > a[0]:
        assert value == 1.0


@given(st.lists(segments, max_size=5), st.lists(segments, max_size=5))
def test_segment_score_in_unit_interval(pred, gt):
    assert 0.0 <= segment_score(pred, gt) <= 1.0


@given(st.text(max_size=200))
def test_number_extraction_never_raises(text):
    numbers = extract_numbers(text)
    assert all(isinstance(n, float) for n in numbers)
    assert len(answer_segments(text)) in (0, len(numbers) // 2)
