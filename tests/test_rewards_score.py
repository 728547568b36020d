"""compute_score: every rule of docs/rewards.md with hand-computed values, both input paths, robustness."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reward_helpers import answer_turn, decoded_response, grounding_truth, qa_truth, tool_turn

from reward_fns.videotemp import REWARD_KEYS, compute_score
from tools import protocol


def score(turns, truth, **kwargs):
    return compute_score("videotemp", decoded_response(turns), truth, None, **kwargs)


def test_qa_correct_with_exact_tool_range_scores_three():
    result = score([tool_turn((10, 20)), answer_turn("C")], qa_truth("C", [[10, 20]]))
    assert (result["acc"], result["iou"], result["format"], result["score"]) == (1.0, 1.0, 1.0, 3.0)
    assert (result["n_tool_calls"], result["n_clips"], result["n_turns"]) == (1.0, 1.0, 2.0)
    assert (result["called_tool"], result["answered"], result["is_qa"], result["is_grounding"]) == (1.0, 1.0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("answer", "acc"),
    [
        ("C", 1.0),
        ("C.", 1.0),
        ("(C)", 1.0),
        ("C. a cat", 1.0),
        ("c", 0.0),
        ("The answer is C", 0.0),
        ("", 0.0),
        ("D", 0.0),
    ],
)
def test_qa_first_letter_rule(answer, acc):
    result = score([tool_turn((10, 20)), answer_turn(answer)], qa_truth("C", [[10, 20]]))
    assert result["acc"] == acc
    assert result["iou"] == (1.0 if acc else 0.0)  # the IoU reward only counts for a correct answer


def test_reference_letter_is_read_by_the_same_rule():
    result = score([answer_turn("B")], qa_truth("(B) the dog", [[0, 5]]))
    assert result["acc"] == 1.0


def test_correct_answer_without_tool_call_is_penalised():
    result = score([answer_turn("C")], qa_truth())
    assert result["iou"] == pytest.approx(-0.1)
    assert result["penalised"] == 1.0
    assert result["score"] == pytest.approx(1.9)
    assert (result["called_tool"], result["n_tool_calls"], result["n_clips"]) == (0.0, 0.0, 0.0)


def test_wrong_answer_gets_no_penalty():
    result = score([answer_turn("A")], qa_truth("C"))
    assert (result["acc"], result["iou"], result["penalised"], result["score"]) == (0.0, 0.0, 0.0, 1.0)


def test_junk_ranges_with_correct_answer_are_penalised():
    result = score([tool_turn((100, 200)), answer_turn("C")], qa_truth("C", [[10, 20]]))
    assert result["tool_iou"] == 0.0
    assert result["iou"] == pytest.approx(-0.1)
    assert result["score"] == pytest.approx(1.9)


@pytest.mark.parametrize(
    ("tool_range", "expected_iou"),
    [
        ((0, 10), -0.1),  # IoU 10/50 = 0.2 -> normalised 0 -> penalised
        ((0, 12.5), (0.25 - 0.2) / 0.6 - 0.1),  # IoU 0.25 -> 0.0833 < sigma -> penalised
        ((0, 25), 0.5),  # IoU 0.5 -> 0.5
        ((0, 40), 1.0),  # IoU 0.8 -> 1
        ((0, 50), 1.0),
    ],
)
def test_penalty_aware_iou_at_default_bounds(tool_range, expected_iou):
    result = score([tool_turn(tool_range), answer_turn("C")], qa_truth("C", [[0, 50]]))
    assert result["iou"] == pytest.approx(expected_iou)


def test_sigma_boundary_on_normalised_score_with_custom_settings():
    kwargs = {"iou_low": 0.0, "iou_high": 1.0, "sigma": 0.25, "penalty": 0.5}
    at_sigma = score([tool_turn((0, 10)), answer_turn("C")], qa_truth("C", [[0, 40]]), **kwargs)  # IoU 0.25
    below = score([tool_turn((0, 10)), answer_turn("C")], qa_truth("C", [[0, 50]]), **kwargs)  # IoU 0.2
    assert at_sigma["iou"] == 0.25 and at_sigma["penalised"] == 0.0
    assert below["iou"] == pytest.approx(0.2 - 0.5) and below["penalised"] == 1.0


def test_weights_come_from_kwargs_and_unknown_kwargs_are_ignored():
    result = score(
        [tool_turn((10, 20)), answer_turn("C")],
        qa_truth("C", [[10, 20]]),
        acc_weight=2.0,
        iou_weight=0.5,
        format_weight=0.0,
        reward_router_address=None,
    )
    assert result["score"] == pytest.approx(2.0 + 0.5)


def test_iou_uses_only_the_last_tool_call():
    truth = qa_truth("C", [[10, 20]])
    good_last = score([tool_turn((100, 200)), tool_turn((10, 20)), answer_turn("C")], truth)
    junk_last = score([tool_turn((10, 20)), tool_turn((100, 200)), answer_turn("C")], truth)
    assert good_last["iou"] == 1.0 and good_last["n_tool_calls"] == 2.0 and good_last["n_turns"] == 3.0
    assert junk_last["iou"] == pytest.approx(-0.1)


def test_several_tool_ranges_are_greedily_matched_and_diluted():
    truth = qa_truth("C", [[10, 20]])
    result = score([tool_turn((10, 20), (50, 60)), answer_turn("C")], truth)
    assert result["tool_iou"] == pytest.approx(0.5)
    assert result["iou"] == pytest.approx(0.5)  # (0.5 - 0.2) / 0.6
    assert result["n_clips"] == 2.0


@pytest.mark.parametrize(
    ("answer", "gt", "acc"),
    [
        ("[68, 105]", [[68, 105]], 1.0),
        ("The event happens in the 24.30 - 30.42 seconds", [[24.3, 30.42]], 1.0),
        ("70-100", [[70, 100]], 1.0),
        ("in -12.3 - 80.3", [[0, 80.3]], 1.0),  # (-12.3, 80.3): IoU 80.3/92.6 = 0.867 -> 1
        ("1:10", [[1, 10]], 1.0),
        ("0 - 10", [[5, 15]], (1 / 3 - 0.2) / 0.6),
        ("10-20 and 30-40", [[10, 20]], 0.5),  # (1 + 0) / 2 predictions -> 0.5 -> normalised 0.5
        ("from 5 to 9, then 12", [[5, 9]], 0.0),  # odd count
        ("no idea", [[5, 9]], 0.0),
    ],
)
def test_grounding_accuracy(answer, gt, acc):
    result = score([answer_turn(answer)], grounding_truth(gt))
    assert result["acc"] == pytest.approx(acc)
    assert result["iou"] == 0.0 and result["penalised"] == 0.0  # no IoU reward for grounding
    assert result["is_grounding"] == 1.0 and result["is_qa"] == 0.0


def test_perfect_grounding_is_not_penalised():
    result = score([answer_turn("10 - 20")], grounding_truth([[10, 20]]))
    assert result["score"] == 2.0


def test_trajectory_ending_on_a_tool_call():
    result = score([tool_turn((10, 20)), tool_turn((12, 18))], qa_truth("C", [[10, 20]]))
    assert (result["acc"], result["answered"], result["format"], result["iou"]) == (0.0, 0.0, 1.0, 0.0)
    assert result["score"] == 1.0
    assert (result["n_tool_calls"], result["n_clips"], result["called_tool"]) == (1.0, 1.0, 1.0)  # last never ran


@pytest.mark.parametrize(
    "bad_turn",
    [
        "<think>t</think><answer>C</answer> trailing",
        "<think>t</think><answer>C</answer>\n",
        "\n<think>t</think><answer>C</answer>",
        "<answer>C</answer>",
        "<think>t</think><answer>C</answer><tool_call>{}</tool_call>",
    ],
)
def test_format_is_strict(bad_turn):
    result = score([tool_turn((10, 20)), bad_turn], qa_truth("C", [[10, 20]]))
    assert result["format"] == 0.0


def test_text_after_answer_keeps_accuracy_but_not_format():
    result = score([tool_turn((10, 20)), "<think>t</think><answer>C</answer> done"], qa_truth("C", [[10, 20]]))
    assert (result["acc"], result["iou"], result["format"], result["score"]) == (1.0, 1.0, 0.0, 2.0)


def test_format_requires_valid_tool_json_in_every_turn():
    bad_call = (
        '<think>t</think><tool_call>{"name": "get_video_clip_frame", "arguments": [{"start_time": "a"}]}</tool_call>'
    )
    wrong_name = '<think>t</think><tool_call>{"name": "crop", "arguments": []}</tool_call>'
    empty_args = '<think>t</think><tool_call>{"name": "get_video_clip_frame", "arguments": []}</tool_call>'
    truth = qa_truth("C", [[10, 20]])
    assert score([bad_call, answer_turn("C")], truth)["format"] == 0.0
    assert score([wrong_name, answer_turn("C")], truth)["format"] == 0.0
    assert score([empty_args, answer_turn("C")], truth)["format"] == 1.0


def test_failure_feedback_also_splits_turns():
    text = decoded_response([tool_turn((-5, -1)), answer_turn("C")], failed={0})
    result = compute_score("videotemp", text, qa_truth("C", [[10, 20]]))
    assert (result["n_turns"], result["format"], result["n_tool_calls"], result["n_clips"]) == (2.0, 1.0, 1.0, 0.0)


TRAJECTORIES = [
    [tool_turn((10, 20)), answer_turn("C")],
    [answer_turn("C")],
    [tool_turn((100, 200)), tool_turn((12, 19), (40, 41)), answer_turn("(C)")],
    [tool_turn((10, 20)), "<think>t</think><answer>C</answer> extra"],
    [tool_turn((10, 20)), tool_turn((11, 12))],
    ["garbage without tags"],
]


@pytest.mark.parametrize("turns", TRAJECTORIES)
@pytest.mark.parametrize("truth", [qa_truth("C", [[10, 20]]), grounding_truth([[12, 19]])])
def test_solution_str_path_and_extra_info_path_agree(turns, truth):
    solution_str = decoded_response(turns)
    from_text = compute_score("videotemp", solution_str, truth, {"index": 3})
    # the loop records the calls it executed: every tool-call turn but a final one
    tool_ranges = [
        [list(r) for r in protocol.parse_turn(t).tool_call.ranges] for t in turns[:-1] if protocol.tool_call_bodies(t)
    ]
    extra_info = {
        "index": 3,
        "turn_texts": [t + "<|im_end|>" for t in turns],  # as generated, EOS text included
        "tool_ranges": tool_ranges,
        "n_clips": from_text["n_clips"],
        "answered": not protocol.tool_call_bodies(turns[-1]) and "<answer>" in turns[-1],
        "termination": "answer",
    }
    from_loop = compute_score("videotemp", solution_str, truth, extra_info)
    assert from_loop == from_text


def test_loop_counts_override_text_counts():
    extra_info = {"turn_texts": [tool_turn((10, 20)), answer_turn("C")], "tool_ranges": [[[10, 20]]], "n_clips": 0}
    result = compute_score("videotemp", "ignored", qa_truth("C", [[10, 20]]), extra_info)
    assert (result["n_clips"], result["n_tool_calls"], result["iou"]) == (0.0, 1.0, 1.0)


def test_ground_truth_forms():
    turns = [tool_turn((10, 20)), answer_turn("C")]
    expected = score(turns, qa_truth("C", [[10, 20]]))
    as_json = json.dumps(qa_truth("C", [[10, 20]]))
    as_numpy = {"data_type": "qa", "answer": "C", "timestamps": np.array([[10.0, 20.0]])}
    as_parquet = {"data_type": "qa", "answer": "C", "timestamps": np.array([np.array([10.0, 20.0])], dtype=object)}
    flat_pair = {"data_type": "qa", "answer": "C", "timestamps": [10, 20]}
    for truth in (as_json, as_numpy, as_parquet, flat_pair):
        assert score(turns, truth) == expected
    bare = score(turns, "C")  # a bare answer string is a qa reference without evidence segments
    assert (bare["acc"], bare["tool_iou"], bare["iou"]) == (1.0, 0.0, pytest.approx(-0.1))


@pytest.mark.parametrize(
    "truth",
    [
        5,
        None,
        {"answer": "C"},
        {"data_type": "ocr", "answer": "C"},
        {"data_type": "qa", "answer": "C", "timestamps": [[1, 2, 3]]},
        "{broken json",
    ],
)
def test_bad_input_never_raises_and_keeps_keys(truth):
    result = compute_score("videotemp", decoded_response([answer_turn("C")]), truth)
    assert tuple(result) == REWARD_KEYS
    if truth != "{broken json":
        assert set(result.values()) == {0.0}


FRAGMENTS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "<tool_call>",
    "</tool_call>",
    "C",
    "(C)",
    "70-100",
    '{"name": "get_video_clip_frame", "arguments": [{"start_time": 1, "end_time": 5}]}',
    "\nuser\n",
    protocol.TOOL_SUCCESS_TEXT,
    "\nassistant\n",
    "-",
    "1:10",
    " ",
    "\n",
    '{"start_time": "x"}',
    "nan",
]
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=30).map("".join)
truths = st.one_of(
    st.builds(
        qa_truth,
        st.sampled_from(["C", "c", "(A)", "", "7"]),
        st.lists(st.lists(st.floats(-10, 100), min_size=2, max_size=2), max_size=3),
    ),
    st.builds(grounding_truth, st.lists(st.lists(st.floats(-10, 100), min_size=2, max_size=2), max_size=3)),
    st.text(max_size=10),
)


@settings(max_examples=150, deadline=None)
@given(texts, truths, st.one_of(st.none(), st.fixed_dictionaries({"turn_texts": st.lists(texts, max_size=3)})))
def test_arbitrary_text_never_raises_and_components_stay_in_range(text, truth, extra_info):
    result = compute_score("videotemp", text, truth, extra_info)
    assert tuple(result) == REWARD_KEYS
    assert all(isinstance(v, float) for v in result.values())
    assert 0.0 <= result["acc"] <= 1.0
    assert -0.1 <= result["iou"] <= 1.0
    assert result["format"] in (0.0, 1.0)
    assert 0.0 <= result["tool_iou"] <= 1.0
    assert result["called_tool"] == (1.0 if result["n_tool_calls"] > 0 else 0.0)
    assert result["score"] == pytest.approx(result["acc"] + result["iou"] + result["format"])
    assert -0.1 <= result["score"] <= 3.0
