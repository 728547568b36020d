"""The reward's three components as pure functions, composed by score_trajectory / compute_score."""

from __future__ import annotations

import pytest
from reward_helpers import answer_turn, decoded_response, tool_turn

from reward_fns.videotemp import (
    GroundTruth,
    RewardSettings,
    accuracy_reward,
    compute_score,
    format_reward,
    penalty_iou_reward,
    score_trajectory,
)

SETTINGS = RewardSettings()
QA = GroundTruth("qa", "C", [(10.0, 20.0)])
GROUNDING = GroundTruth("grounding", "", [(10.0, 20.0)])


def test_accuracy_reward():
    assert accuracy_reward("(C) the dog", QA, SETTINGS) == 1.0
    assert accuracy_reward("B", QA, SETTINGS) == 0.0
    assert accuracy_reward(None, QA, SETTINGS) == 0.0
    assert accuracy_reward("10-20", GROUNDING, SETTINGS) == 1.0
    # IoU 0.5 normalised between 0.2 and 0.8
    assert accuracy_reward("10-30", GROUNDING, SETTINGS) == pytest.approx((0.5 - 0.2) / 0.6)


def test_penalty_iou_reward():
    on_target = [tool_turn((10, 20)), answer_turn("C")]
    off_target = [tool_turn((50, 60)), answer_turn("C")]
    hit = penalty_iou_reward(on_target, QA, 1.0, SETTINGS)
    assert (hit.iou, hit.tool_iou, hit.penalised) == (1.0, 1.0, False)
    miss = penalty_iou_reward(off_target, QA, 1.0, SETTINGS)
    assert (miss.iou, miss.tool_iou, miss.penalised) == (pytest.approx(-0.1), 0.0, True)
    wrong = penalty_iou_reward(on_target, QA, 0.0, SETTINGS)  # paid only to a correct answer
    assert (wrong.iou, wrong.tool_iou, wrong.penalised) == (0.0, 1.0, False)
    assert penalty_iou_reward([answer_turn("10-20")], GROUNDING, 1.0, SETTINGS).iou == 0.0
    quirk = RewardSettings(grounding_penalty=True)
    assert penalty_iou_reward([answer_turn("10-20")], GROUNDING, 1.0, quirk).iou == pytest.approx(-0.1)


def test_format_reward():
    assert format_reward([tool_turn((1, 2)), answer_turn("C")], SETTINGS) == 1.0
    assert format_reward([answer_turn("C") + " trailing"], SETTINGS) == 0.0
    assert format_reward([], SETTINGS) == 0.0


def test_compute_score_is_the_weighted_sum_of_the_named_parts():
    turns = [tool_turn((12, 20)), answer_turn("C")]
    weights = {"acc_weight": 2.0, "iou_weight": 0.5, "format_weight": 3.0}
    settings = RewardSettings(**weights)
    acc = accuracy_reward("C", QA, settings)
    iou = penalty_iou_reward(turns, QA, acc, settings)
    fmt = format_reward(turns, settings)
    parts = score_trajectory(turns, QA, settings)
    assert (parts["acc"], parts["iou"], parts["format"], parts["tool_iou"]) == (acc, iou.iou, fmt, iou.tool_iou)
    assert parts["score"] == pytest.approx(2.0 * acc + 0.5 * iou.iou + 3.0 * fmt)
    result = compute_score(
        "videotemp", decoded_response(turns), {"data_type": "qa", "answer": "C", "timestamps": [[10, 20]]}, **weights
    )
    assert result["score"] == pytest.approx(parts["score"])
