"""The reward, turn parsing and format check against the reference release's rules.

Golden cases: one per rule where the project's earlier behaviour and the reference differ, asserting
the reference's value (and the alternative under the named setting). Property tests: random
trajectories scored by ``reward_fns.videotemp`` and by the independent re-statement in
``tests/reference_model.py``. Linear-time parsing: maximal adversarial inputs give the right values
(timing is measured in ``benchmarks/parsing_time.py``; here a timeout only guards against a hang).
"""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_model import NAME, random_trajectory, ref_rewards

from reward_fns.answer_parsing import extract_numbers, first_letter, iou_turn_ranges
from reward_fns.segments import segment_score
from reward_fns.videotemp import GroundTruth, RewardSettings, compute_score, score_trajectory
from tools import protocol

REFERENCE = RewardSettings(dash_separator=False, grounding_penalty=True)  # both fixes of docs/rewards.md off


def call(*ranges, **extra) -> str:
    obj = {"name": NAME, "arguments": [{"start_time": s, "end_time": e} for s, e in ranges], **extra}
    return f"<think>look</think><tool_call>{json.dumps(obj)}</tool_call>"


def ans(text: str) -> str:
    return f"<think>seen</think><answer>{text}</answer>"


def qa(answer: str = "C", timestamps=((10.0, 20.0),)) -> GroundTruth:
    return GroundTruth("qa", answer, list(timestamps))


# ------------------------------------------------------------------------------ golden cases


def test_greedy_matching_uses_up_gt_only_when_iou_positive():
    preds, gt = [(696.8, 661.0), (647.0, 687.9)], [(661.0, 696.8)]
    second = (687.9 - 661.0) / ((687.9 - 647.0) + (696.8 - 661.0) - (687.9 - 661.0))
    assert segment_score(preds, gt) == pytest.approx(second / 2)  # was 0: the inverted range took the GT
    assert segment_score([(0, 5), (10, 20)], [(10, 20)]) == pytest.approx(0.5)  # disjoint first
    assert segment_score([(10, 20), (10, 20)], [(10, 20)]) == pytest.approx(0.5)  # a GT is matched once


@pytest.mark.parametrize(
    "text,letter",
    [("答案C", "答"), ("Éclair", "É"), ("ＡB", "Ａ"), ("(C)", "C"), ("  c", "c"), ("42", None), ("ǅx", "ǅ")],
)
def test_first_letter_is_first_isalpha_character(text, letter):
    assert first_letter(text) == letter  # the reference's str.isalpha(); was the first ASCII letter


def test_qa_accuracy_with_a_non_ascii_letter_first():
    turns = [ans("答案是C")]
    assert score_trajectory(turns, qa("C"), RewardSettings())["acc"] == 0.0  # first letter is 答
    assert score_trajectory(turns, qa("答"), RewardSettings())["acc"] == 1.0


@pytest.mark.parametrize(
    "body",
    [
        {"name": NAME},  # no arguments key
        {"name": NAME, "arguments": {"start_time": 10, "end_time": 20}},  # a single object
        {"name": NAME, "arguments": json.dumps([{"start_time": 10, "end_time": 20}])},  # stringified
        {"name": NAME, "arguments": None},
    ],
)
def test_tool_call_needs_an_arguments_list(body):
    turn = f"<think>x</think><tool_call>{json.dumps(body)}</tool_call>"
    parsed = protocol.parse_tool_call(json.dumps(body))
    assert not parsed.well_formed and parsed.ranges == ()
    result = score_trajectory([turn, ans("C")], qa("C"), RewardSettings())
    assert result["format"] == 0.0 and result["tool_iou"] == 0.0 and result["iou"] == pytest.approx(-0.1)


def test_empty_arguments_object_or_string_is_an_empty_call():
    """Iterating {} or "" yields nothing in the reference: format passes, no range."""
    for args in ({}, "", []):
        parsed = protocol.parse_tool_call(json.dumps({"name": NAME, "arguments": args}))
        assert parsed.well_formed and parsed.ranges == ()


def test_boolean_times_go_through_float():
    parsed = protocol.parse_tool_call(
        json.dumps({"name": NAME, "arguments": [{"start_time": False, "end_time": True}]})
    )
    assert parsed.well_formed and parsed.ranges == ((0.0, 1.0),)


def test_iou_reads_the_turn_just_before_the_answer():
    good, junk = call((10, 20)), "<think>no call here</think>"
    # an earlier turn called the tool, the turn before the answer did not: tool score 0, then -0.1
    result = score_trajectory([good, junk, ans("C")], qa(), RewardSettings())
    assert result["tool_iou"] == 0.0 and result["iou"] == pytest.approx(-0.1) and result["penalised"] == 1.0
    # the named setting: the last turn that called the tool
    alt = score_trajectory([good, junk, ans("C")], qa(), RewardSettings(iou_turn="last_tool_turn"))
    assert alt["tool_iou"] == 1.0 and alt["iou"] == 1.0
    # the turn before the answer wins over an earlier, better call
    two = score_trajectory([good, call((50, 60)), ans("C")], qa(), RewardSettings())
    assert two["tool_iou"] == 0.0 and two["iou"] == pytest.approx(-0.1)
    assert iou_turn_ranges([ans("C")]) is None  # a single turn reads nothing


def test_reward_settings_from_verl_kwargs():
    s = RewardSettings.from_kwargs({"iou_turn": "last_tool_turn", "single_blocks": "true", "dash_separator": False})
    assert (s.iou_turn, s.single_blocks, s.dash_separator, s.grounding_penalty) == (
        "last_tool_turn",
        True,
        False,
        False,
    )
    with pytest.raises(ValueError):
        RewardSettings.from_kwargs({"iou_turn": "first"})


def test_the_two_fixes_and_their_reference_values():
    grounding = GroundTruth("grounding", "", [(70.0, 100.0)])
    turns = [ans("70-100")]
    assert score_trajectory(turns, grounding, RewardSettings())["acc"] == 1.0  # fix: a range
    assert score_trajectory(turns, grounding, REFERENCE)["acc"] == 0.0  # reference: 70 and -100
    assert extract_numbers("70-100", dash_separator=False) == [70.0, -100.0]
    perfect = score_trajectory([ans("[70, 100]")], grounding, RewardSettings())
    assert perfect["iou"] == 0.0  # fix: no -0.1 on a perfect grounding answer
    assert score_trajectory([ans("[70, 100]")], grounding, REFERENCE)["iou"] == pytest.approx(-0.1)


def test_repeated_blocks_pass_format_as_in_the_reference():
    twice_think = "<think>a</think><think>b</think><answer>C</answer>"
    twice_call = call((1, 2)) + '<tool_call>{"oops"</tool_call>'
    for turn in (twice_think, twice_call):
        assert protocol.is_well_formed_turn(turn)  # the reference's lazy regexes accept them
        assert not protocol.is_well_formed_turn(turn, single_blocks=True)  # the named setting rejects
    result = score_trajectory([twice_think], qa(), RewardSettings(single_blocks=True))
    assert result["format"] == 0.0
    assert protocol.is_well_formed_turn(ans("C"), single_blocks=True)


def test_system_prompt_is_the_references_byte_for_byte():
    expected = (
        "You are a helpful assistant.\n\nThink step-by-step before providing your final answer.\n\n"
        "Enclose your entire reasoning process within <think> and </think> tags. Enclose your final answer "
        "within <answer> and </answer> tags.\n\nIf analyzing a specific video segment is necessary to answer "
        "the question, you may use the following tool to extract a clip from `[start_time]` to `[end_time]`:"
        '\n\n<tool_call>{"name":"get_video_clip_frame","arguments":[{"start_time":[start_time],'
        '"end_time":[end_time]}]}</tool_call>\n\nUse the insights from the clip to inform your reasoning and '
        "construct the final answer."
    )
    assert protocol.SYSTEM_PROMPT == expected
    import hashlib

    assert (
        hashlib.sha256(expected.encode()).hexdigest()
        == "a3fca01b876d7eaf046fbb1b6a6dfddad6c8ff621df9fb180a2e2e12b62f738a"
    )


def test_loop_decisions_of_the_two_rule_sets():
    both = call((1, 2)) + "<answer>B</answer>"
    assert protocol.ends_episode(both, protocol.RL_RULES) and protocol.ends_episode(both, protocol.EVAL_RULES)
    assert not protocol.ends_episode("C</answer>", protocol.RL_RULES)  # RL needs a complete block
    assert protocol.ends_episode("C</answer>", protocol.EVAL_RULES)  # eval: "</answer>" in the text
    check = protocol.validate_ranges([(1, 2), (5, 3), (3, 4), (8, 9)], 30.0)
    assert check.errors == ["Invalid timestamp: start=5, end=3"] and check.dropped_over_limit == 1
    assert protocol.failure_text(["[Error] a"], protocol.RL_RULES) == "['[Error] a']" + protocol.TOOL_FAILURE_TEXT
    assert protocol.failure_text(["a", "b"], protocol.EVAL_RULES) == "ab" + protocol.TOOL_FAILURE_TEXT
    assert (
        protocol.no_timestamp_text()
        == "[Error] No valid timestamp found in the model output." + protocol.TOOL_FAILURE_TEXT
    )


# ------------------------------------------------------------------------------ random trajectories


def _ours(turns, data_type, solution, gts, settings):
    truth = GroundTruth(data_type, solution, [tuple(map(float, g)) for g in gts])
    result = score_trajectory(turns, truth, settings)
    return {"acc": result["acc"], "iou": result["iou"], "format": result["format"]}


def _close(a: dict, b: dict) -> bool:
    return all(abs(a[k] - b[k]) < 1e-9 for k in a)


def test_3000_random_trajectories_equal_the_reference():
    rng = random.Random(20260207)
    differ = []
    for _ in range(3000):
        traj = random_trajectory(rng)
        if not _close(_ours(*traj, REFERENCE), ref_rewards(*traj)):
            differ.append(traj)
    assert differ == []


def test_default_settings_differ_from_the_reference_only_by_the_two_fixes():
    rng = random.Random(7)
    for _ in range(3000):
        turns, data_type, solution, gts = random_trajectory(rng)
        ours, ref = (
            _ours(turns, data_type, solution, gts, RewardSettings()),
            ref_rewards(turns, data_type, solution, gts),
        )
        if _close(ours, ref):
            continue
        assert data_type == "grounding"
        assert ours["format"] == ref["format"]
        dash = re.search(r"\d\s*-\s*\d", turns[-1]) is not None
        assert dash or (ref["acc"] == 1.0 and ref["iou"] == pytest.approx(-0.1) and ours["iou"] == 0.0)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_trajectories_property(seed):
    traj = random_trajectory(random.Random(seed))
    assert _close(_ours(*traj, REFERENCE), ref_rewards(*traj))


# ------------------------------------------------------------------------------ linear-time parsing

_TOOL_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_ANSWER_SHAPE = re.compile(r"^<think>.*?</think>\s*<answer>.*?</answer>$", re.DOTALL)


@given(
    st.lists(
        st.sampled_from(
            [
                "<think>",
                "</think>",
                "<tool_call>",
                "</tool_call>",
                "<answer>",
                "</answer>",
                " ",
                "\n",
                "x",
                "{}",
                "\u3000",
            ]
        ),
        max_size=30,
    ).map("".join)
)
def test_linear_parsers_equal_the_reference_regexes(text):
    assert protocol.tool_call_bodies(text) == _TOOL_RE.findall(text)
    assert protocol.matches_shape(text, protocol.ANSWER_OPEN, protocol.ANSWER_CLOSE) == bool(
        _ANSWER_SHAPE.fullmatch(text)
    )
    first = _TOOL_RE.search(text)
    assert protocol.first_block(text, protocol.TOOL_OPEN, protocol.TOOL_CLOSE) == (first.group(1) if first else None)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "unit",
    ["<tool_call>", "<think>", "</think>", "<think></think> ", "<answer>", "\nuser\n", "<tool_call></think>"],
)
def test_megabyte_adversarial_responses_score_correctly(unit):
    """1 MB of one repeated tag (the old regexes took minutes): values as for any malformed turn."""
    text = unit * (1_000_000 // len(unit))
    result = compute_score("videotemp", text, {"data_type": "qa", "answer": "C", "timestamps": [[1, 2]]})
    assert result["format"] == 0.0 and result["acc"] == 0.0 and result["score"] == 0.0
    truth = {"data_type": "qa", "answer": "C", "timestamps": [[1, 2]]}
    long_answer = "<think>" + "</think>" * 100_000 + "<answer>C</answer>"
    assert compute_score("videotemp", long_answer, truth)["format"] == 1.0  # the shape holds: lazy .*?
    turns = ["<tool_call>" * 24_832, ans("C")]
    result = compute_score("videotemp", "", truth, {"turn_texts": turns})
    assert result["acc"] == 1.0 and result["iou"] == pytest.approx(-0.1) and result["format"] == 0.0
