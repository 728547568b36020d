"""tools.segments: the one [start, end] parser (one error policy) and the segment scores."""

from __future__ import annotations

import numpy as np
import pytest

from tools.segments import iou, parse_segment, parse_segments, segment_score


def test_parse_segment_accepts_numbers_strings_and_arrays():
    assert parse_segment([1, 2.5], "x") == (1.0, 2.5)
    assert parse_segment(("3", "4.25"), "x") == (3.0, 4.25)
    assert parse_segment(np.array([5.0, 6.0]), "x") == (5.0, 6.0)


@pytest.mark.parametrize(
    "value, reason",
    [
        ([1, 2, 3], "must be [start, end]"),
        ("1,2", "must be [start, end]"),
        ([True, 2], "boolean"),
        ([1, False], "boolean"),
        ([1, "x"], "two numbers"),
        ([None, 2], "two numbers"),
    ],
)
def test_parse_segment_errors_name_the_place(value, reason):
    with pytest.raises(ValueError) as info:
        parse_segment(value, "data.jsonl:7: timestamps")
    assert str(info.value).startswith("data.jsonl:7: timestamps")
    assert reason in str(info.value)


def test_parse_segments_shapes():
    assert parse_segments(None, "t") == []
    assert parse_segments("", "t") == []
    assert parse_segments("  ", "t") == []
    assert parse_segments([1, 2], "t") == [(1.0, 2.0)]
    assert parse_segments([[1, 2], [3, 4]], "t") == [(1.0, 2.0), (3.0, 4.0)]
    assert parse_segments("[[0, 1.5]]", "t") == [(0.0, 1.5)]
    assert parse_segments("[2, 3]", "t") == [(2.0, 3.0)]
    assert parse_segments(np.array([[1.0, 2.0], [4.0, 8.0]]), "t") == [(1.0, 2.0), (4.0, 8.0)]
    assert parse_segments([np.array([1.0, 2.0])], "t") == [(1.0, 2.0)]
    assert parse_segments([], "t") == []


@pytest.mark.parametrize(
    "value, reason",
    [
        ("not json", "is not a JSON list"),
        (5, "must be a list of [start, end] pairs"),
        ({"a": 1}, "must be a list of [start, end] pairs"),
        ([[1, 2], [3]], "entry must be [start, end]"),
        ([True, False], "entry must be [start, end]"),  # booleans are not a flat pair
        ([[True, 2]], "boolean"),
    ],
)
def test_parse_segments_errors_name_the_place(value, reason):
    with pytest.raises(ValueError) as info:
        parse_segments(value, "row 3 timestamps")
    assert str(info.value).startswith("row 3 timestamps")
    assert reason in str(info.value)


def test_iou_values():
    assert iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert iou((0, 10), (0, 10)) == 1.0
    assert iou((0, 10), (10, 20)) == 0.0
    assert iou((5, 1), (0, 10)) == 0.0  # inverted
    assert iou((0, float("nan")), (0, 10)) == 0.0


def test_segment_score_greedy_and_diluted():
    assert segment_score([(0, 10), (20, 30)], [(0, 10), (20, 30)]) == 1.0
    # the second prediction cannot reuse the first ground truth: (1 + 0) / 2
    assert segment_score([(0, 10), (0, 10)], [(0, 10)]) == 0.5
    # a prediction overlapping nothing leaves the ground truth free for the next
    assert segment_score([(50, 60), (0, 10)], [(0, 10)]) == 0.5
    assert segment_score([], [(0, 1)]) == 0.0
    assert segment_score([(0, 1)], []) == 0.0


def test_reward_fns_reexports_the_same_functions():
    import reward_fns.segments as rs
    import tools.segments as ts

    assert rs.iou is ts.iou and rs.segment_score is ts.segment_score and rs.Segment is ts.Segment
