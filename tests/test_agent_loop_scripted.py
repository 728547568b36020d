"""VideoTempAgentLoop through verl's real AgentLoopWorker with scripted model turns."""

from __future__ import annotations

import math

import pytest
import torch
from loop_helpers import (
    PIXELS,
    PROMPT_MAX_FRAMES,
    VIDEO_FPS,
    VIDEO_FRAMES,
    VIDEO_SECONDS,
    answer,
    assert_video_alignment,
    rollout,
    row,
    sample_ids,
    tiny_model,
    tool_call,
)
from transformers import AutoProcessor

from data_prep.synthetic_video import read_frame_index
from eval.harness.scripted_server import ScriptedServerClient
from recipe.videotemp_o3.prompt_cache import prompt_video_cache
from tools import protocol


def scripted(processor, turns):
    return ScriptedServerClient(processor.tokenizer, turns)


def _expected_ids(processor, question, videos, turns, feedbacks):
    """Token ids of the conversation rendered from scratch by the processor."""
    messages = [
        {"role": "system", "content": protocol.SYSTEM_PROMPT},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]},
    ]
    for k, turn in enumerate(turns[:-1]):
        messages.append({"role": "assistant", "content": turn})
        n_clips, text = feedbacks[k]
        # RL rules: "<video>\n" per clip, then the text (the reference's feedback message)
        clips = [block for _ in range(n_clips) for block in ({"type": "video"}, {"type": "text", "text": "\n"})]
        messages.append({"role": "user", "content": clips + [{"type": "text", "text": text}]})
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + turns[-1]
    out = processor(
        text=[text],
        videos=[v[0] for v in videos],
        video_metadata=[v[1] for v in videos],
        do_sample_frames=False,
        return_tensors="pt",
    )
    return out["input_ids"][0].tolist()


async def test_tool_call_then_answer(model25, processor25, video):
    turns = [tool_call((4, 7)), answer("B")]
    client = scripted(processor25, turns)
    local = rollout(model25, client)
    batch = await local.generate([row(video)], n=1)

    prompt, response, mask = sample_ids(batch, 0)
    videos = batch.non_tensor_batch["multi_modal_data"][0]["videos"]
    assert len(videos) == 2
    # The whole sequence is the conversation rendered from scratch (stop at </answer>: no <|im_end|>).
    expected = _expected_ids(processor25, "What happens?", videos, turns, [(1, protocol.TOOL_SUCCESS_TEXT)])
    assert prompt + response == expected

    # Mask 1 exactly on what the server generated, 0 on the feedback turn.
    tok = processor25.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    gen1 = tok.encode(turns[0], add_special_tokens=False) + [im_end]
    gen2 = tok.encode(turns[1], add_special_tokens=False)
    assert response[: len(gen1)] == gen1 and response[-len(gen2) :] == gen2
    assert mask.tolist() == [1] * len(gen1) + [0] * (len(response) - len(gen1) - len(gen2)) + [1] * len(gen2)
    feedback = tok.decode(response[len(gen1) : len(response) - len(gen2)], skip_special_tokens=False)
    assert feedback.startswith("\n<|im_start|>user\n<|vision_start|><|video_pad|>")
    assert feedback.endswith(protocol.TOOL_SUCCESS_TEXT + "<|im_end|>\n<|im_start|>assistant\n")
    # Log-probs: the server's on generated tokens, 0 elsewhere.
    logprobs = batch.batch["rollout_log_probs"][0][: len(response)]
    assert torch.equal(logprobs != 0, mask.bool())

    # Pads per video match the processor; grids match what the trainer gets.
    assert_video_alignment(processor25, batch, 0)

    # second_per_grid_ts = temporal_patch / true sampled fps: 8 frames over 15 s; the clip at 2 fps.
    spgt = batch.non_tensor_batch["multi_modal_inputs"][0]["second_per_grid_ts"].tolist()
    temporal = processor25.video_processor.temporal_patch_size
    assert spgt == pytest.approx([temporal / (PROMPT_MAX_FRAMES / VIDEO_SECONDS), temporal / 2.0])

    # The clip holds the frames of [4, 7] s on the 2-fps grid.
    clip_frames, clip_meta = videos[1]
    indices = [read_frame_index(f) for f in clip_frames]
    assert indices == list(clip_meta["frames_indices"])
    step = int(VIDEO_FPS / 2)
    assert indices == list(range(indices[0], indices[0] + step * len(indices), step))
    assert 4 * VIDEO_FPS <= indices[0] and indices[-1] <= 7 * VIDEO_FPS
    assert len(indices) == 6  # 3 s at 2 fps
    assert clip_frames.dtype == torch.uint8 and clip_frames.shape[2] * clip_frames.shape[3] == PIXELS

    # Prompt frames are the uint8 decode of the whole video.
    prompt_frames, prompt_meta = videos[0]
    assert [read_frame_index(f) for f in prompt_frames] == list(prompt_meta["frames_indices"])
    assert prompt_meta["total_num_frames"] == VIDEO_FRAMES

    # extra_fields for the rewards.
    nt = batch.non_tensor_batch
    assert list(nt["turn_texts"][0]) == turns
    assert nt["tool_ranges"][0] == [[[4.0, 7.0]]]
    assert (nt["n_tool_calls"][0], nt["n_clips"][0], nt["answered"][0]) == (1, 1, True)
    assert nt["termination"][0] == "answer" and nt["final_answer"][0] == "B"
    assert nt["__num_turns__"][0] == 4
    # The second request saw both videos.
    assert [len(c.video_data) for c in client.calls] == [1, 2]


async def test_two_calls_then_max_turns(model25, processor25, video):
    turns = [tool_call((1, 3), (20, 30)), tool_call((2, 4), (5, 6), (7, 8), (9, 10)), tool_call((0, 1))]
    local = rollout(model25, scripted(processor25, turns))
    batch = await local.generate([row(video)])
    nt = batch.non_tensor_batch
    assert nt["termination"][0] == "max_turns" and not nt["answered"][0]
    # Call 1: [20, 30] starts after the end -> the whole call fails (reference), no clip;
    # call 2: 4 ranges, the first 3 are looked at -> 3 clips; turn 3 not executed.
    assert nt["n_tool_calls"][0] == 2 and nt["n_clips"][0] == 0 + 3
    assert nt["final_answer"][0] is None
    videos = assert_video_alignment(processor25, batch, 0)
    assert len(videos) == 4
    firsts = [read_frame_index(v[0][0]) for v in videos[1:]]
    assert firsts == [int(2 * VIDEO_FPS), int(5 * VIDEO_FPS), int(7 * VIDEO_FPS)]


def _range_failure(*messages: str) -> str:
    return protocol.failure_text([f"[Error] Video processing error: {m}" for m in messages])


# The reference RL scheduler's feedback for each malformed turn.
BAD_TURNS = {
    "no_tags": ("I think the answer is A.", protocol.no_timestamp_text()),
    "broken_json": (
        '<think>x</think><tool_call>{"name": "get_video_clip_frame", </tool_call>',
        protocol.no_timestamp_text(),
    ),
    "wrong_tool": (
        '<think>x</think><tool_call>{"name": "crop", "arguments": []}</tool_call>',
        protocol.no_timestamp_text(),
    ),
    "negative": (tool_call((-5, -1)), _range_failure("Invalid timestamp: start=-5.0, end=-1.0")),
    "nan": (
        '<think>x</think><tool_call>{"name": "get_video_clip_frame", "arguments": '
        '[{"start_time": NaN, "end_time": 3}]}</tool_call>',
        _range_failure("Invalid timestamp: start=nan, end=3.0"),
    ),
    "huge": (tool_call((1e300, 1e308)), _range_failure("nframes should in interval [2, 0], but got 0.")),
    "inverted": (tool_call((8, 2)), _range_failure("Invalid timestamp: start=8.0, end=2.0")),
    "fifty_ranges": (tool_call(*[(i / 10, i / 10 + 1) for i in range(50)]), protocol.TOOL_SUCCESS_TEXT),
    "unclosed_tool_call": ('<think>x</think><tool_call>{"name": "get_video_clip_frame"', protocol.no_timestamp_text()),
    "single_object": (
        '<think>x</think><tool_call>{"name": "get_video_clip_frame", "arguments": '
        '{"start_time": 1, "end_time": 3}}</tool_call>',
        protocol.no_timestamp_text(),
    ),
    "empty_list": (
        '<think>x</think><tool_call>{"name": "get_video_clip_frame", "arguments": []}</tool_call>',
        protocol.no_timestamp_text(),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TURNS))
async def test_malformed_turns_get_feedback(model25, processor25, video, case):
    bad, feedback = BAD_TURNS[case]
    client = scripted(processor25, [bad, answer("C")])
    batch = await rollout(model25, client, ["data.max_response_length=4096"]).generate([row(video)])
    nt = batch.non_tensor_batch
    assert nt["termination"][0] == "answer" and nt["final_answer"][0] == "C"
    second_prompt = client.calls[1].prompt_text
    assert second_prompt.endswith(feedback + "<|im_end|>\n<|im_start|>assistant\n")
    n_clips = 3 if case == "fifty_ranges" else 0
    assert nt["n_clips"][0] == n_clips
    assert len(assert_video_alignment(processor25, batch, 0)) == 1 + n_clips


async def test_text_after_answer_is_cut_at_the_stop_string(model25, processor25, video):
    client = scripted(processor25, [answer("D") + " and some more text"])
    batch = await rollout(model25, client).generate([row(video)])
    nt = batch.non_tensor_batch
    assert list(nt["turn_texts"][0]) == [answer("D")]
    assert nt["termination"][0] == "answer" and nt["final_answer"][0] == "D"
    assert client.calls[0].sampling_params["stop"] == ["</answer>"]


async def test_answer_with_trailing_text_when_not_stopping(model25, processor25, video):
    client = scripted(processor25, [answer("D") + " trailing"])
    batch = await rollout(model25, client, stop_on_answer=False).generate([row(video)])
    nt = batch.non_tensor_batch
    assert list(nt["turn_texts"][0]) == [answer("D") + " trailing"]
    assert nt["termination"][0] == "answer" and not protocol.is_well_formed_turn(nt["turn_texts"][0][0])


async def test_budget_exhausted_by_feedback_turn(model25, processor25, video):
    """The feedback turn does not fit: nothing of it is appended, the trajectory ends cleanly."""
    turns = [tool_call((4, 7)), answer("B")]
    tok = processor25.tokenizer
    gen1 = len(tok.encode(turns[0], add_special_tokens=False)) + 1
    local = rollout(model25, scripted(processor25, turns), [f"data.max_response_length={gen1 + 20}"])
    batch = await local.generate([row(video)])
    prompt, response, mask = sample_ids(batch, 0)
    nt = batch.non_tensor_batch
    assert nt["termination"][0] == "response_budget"
    assert len(response) == gen1 and mask.tolist() == [1] * gen1
    assert response[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    assert nt["n_clips"][0] == 0 and len(batch.non_tensor_batch["multi_modal_data"][0]["videos"]) == 1
    assert nt["tool_ranges"][0] == [[[4.0, 7.0]]]  # requested, though its feedback did not fit
    assert_video_alignment(processor25, batch, 0)


async def test_budget_exhausted_mid_turn(model25, processor25, video):
    """A turn cut by max_tokens ends the trajectory; max_tokens never exceeds the budget left."""
    turns = [tool_call((4, 7)), answer("B" * 200)]
    tok = processor25.tokenizer
    gen1 = len(tok.encode(turns[0], add_special_tokens=False)) + 1
    client = scripted(processor25, turns)
    local = rollout(model25, client, ["data.max_response_length=160"])
    batch = await local.generate([row(video)])
    _, response, mask = sample_ids(batch, 0)
    nt = batch.non_tensor_batch
    assert nt["termination"][0] == "response_budget" and not nt["answered"][0]
    assert len(response) == 160 and mask[:gen1].all() and mask[-1] == 1
    assert client.calls[0].sampling_params["max_tokens"] == 160
    assert client.calls[1].sampling_params["max_tokens"] == 160 - (len(response) - int(mask[gen1:].sum()))
    assert_video_alignment(processor25, batch, 0)


async def test_context_budget(model25, processor25, video):
    turns = [tool_call((4, 7)), answer("B")]
    client = scripted(processor25, turns)
    local = rollout(model25, client)
    first = await local.generate([row(video)])
    prompt, response, _ = sample_ids(first, 0)
    # max_model_len just below the full length: the second turn gets the remaining context only.
    limit = len(prompt) + len(response) - 3
    client = scripted(processor25, turns)
    batch = await rollout(model25, client, [f"++actor_rollout_ref.rollout.max_model_len={limit}"]).generate(
        [row(video)]
    )
    p2, r2, _ = sample_ids(batch, 0)
    assert batch.non_tensor_batch["termination"][0] == "context_budget"
    assert len(p2) + len(r2) == limit
    gen2 = len(processor25.tokenizer.encode(turns[1], add_special_tokens=False))
    assert client.calls[1].sampling_params["max_tokens"] == gen2 - 3


async def test_turn_cut_by_max_tokens_per_turn_ends_the_episode(model25, processor25, video):
    """RL rules (ms-swift: finish_reason "length" finishes the trajectory): no feedback, no next turn."""
    client = scripted(processor25, ["<think>" + "x" * 400, answer("A")])
    batch = await rollout(model25, client, max_tokens_per_turn=16).generate([row(video)])
    nt = batch.non_tensor_batch
    assert [c.sampling_params["max_tokens"] for c in client.calls] == [16]
    assert nt["termination"][0] == "turn_length" and not nt["answered"][0]
    _, response, mask = sample_ids(batch, 0)
    assert len(response) == 16 and mask.tolist() == [1] * 16


async def test_tool_call_and_answer_in_one_turn_ends_the_episode(model25, processor25, video):
    """Reference: a turn with </answer> ends the episode even if it also calls the tool (no clip cut)."""
    both = tool_call((4, 7)) + "<answer>B</answer>"
    client = scripted(processor25, [both, answer("C")])
    batch = await rollout(model25, client).generate([row(video)])
    nt = batch.non_tensor_batch
    assert len(client.calls) == 1 and nt["termination"][0] == "answer"
    assert nt["n_clips"][0] == 0 and nt["n_tool_calls"][0] == 0
    # RL: the final answer of a turn that also calls the tool does not count (the reward's rule).
    assert not nt["answered"][0] and nt["final_answer"][0] is None


@pytest.mark.parametrize(
    "turn",
    [
        "I think the answer is A.",  # neither answer nor tool call
        '<think>x</think><tool_call>{"name": "crop", "arguments": []}</tool_call>',  # wrong name
        '<think>x</think><tool_call>{"name": "get_video_clip_frame", "arguments": {"start_time": 1, "end_time": 3}}</tool_call>',
    ],
)
async def test_eval_rules_malformed_turn_ends_the_loop(model25, processor25, video, turn):
    """Eval rules (the reference's eval loop): no feedback turn; the final answer is the whole last text."""
    client = scripted(processor25, [turn, answer("C")])
    batch = await rollout(model25, client, loop_rules="eval").generate([row(video)])
    nt = batch.non_tensor_batch
    assert len(client.calls) == 1 and nt["termination"][0] == "malformed"
    assert nt["final_answer"][0] == turn and not nt["answered"][0]


async def test_eval_rules_no_clip_cap_and_close_tag_ends(model25, processor25, video):
    turns = [tool_call((1, 2), (3, 4), (5, 6), (7, 8), (9, 10)), "<think>y</think>C</answer>"]
    client = scripted(processor25, turns)
    batch = await rollout(model25, client, loop_rules="eval").generate([row(video)])
    nt = batch.non_tensor_batch
    assert nt["n_clips"][0] == 5 and nt["termination"][0] == "answer"
    assert len(assert_video_alignment(processor25, batch, 0)) == 1 + 5
    # eval feedback: the clips then the success sentence, no newline between
    assert client.calls[1].prompt_text.endswith(
        "<|vision_end|>" + protocol.TOOL_SUCCESS_TEXT + "<|im_end|>\n<|im_start|>assistant\n"
    )
    # "</answer>" without an <answer> block ends the loop; the final answer is the whole text
    assert nt["final_answer"][0] == turns[1]


async def test_eval_rules_invalid_range_feedback(model25, processor25, video):
    client = scripted(processor25, [tool_call((1, 3), (8, 2)), answer("C")])
    batch = await rollout(model25, client, loop_rules="eval").generate([row(video)])
    assert batch.non_tensor_batch["n_clips"][0] == 0
    expected = "Video processing error: Invalid timestamp: start=8.0, end=2.0" + protocol.TOOL_FAILURE_TEXT
    assert client.calls[1].prompt_text.endswith(expected + "<|im_end|>\n<|im_start|>assistant\n")


async def test_generated_vision_token_ends_only_that_trajectory(model25, processor25, video):
    """A generated <|image_pad|> is cut off and ends its trajectory; the other rollouts are unaffected."""
    bad = "<think>look <|image_pad|> here</think><answer>A</answer>"

    seen: dict[str, int] = {}

    def turn_text(request):
        seen.setdefault(request.request_id, len(seen))
        return bad if seen[request.request_id] == 0 else answer("B")

    client = ScriptedServerClient(processor25.tokenizer, turn_text)
    batch = await rollout(model25, client).generate([row(video), row(video)])
    nt = batch.non_tensor_batch
    assert sorted(nt["termination"]) == ["answer", "vision_token"]
    i = list(nt["termination"]).index("vision_token")
    assert list(nt["turn_texts"][i]) == ["<think>look "]
    _, response, mask = sample_ids(batch, i)
    pad = processor25.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert pad not in response and mask.all()
    for i in range(2):
        assert_video_alignment(processor25, batch, i)


async def test_group_shares_one_prompt_decode(model25, processor25, video):
    cache = prompt_video_cache()
    cache.clear()
    turns = [tool_call((2, 5)), answer("A")]
    batch = await rollout(model25, scripted(processor25, turns)).generate([row(video)], n=4)
    assert cache.decodes == 1
    prompts = [batch.non_tensor_batch["multi_modal_data"][i]["videos"][0][0] for i in range(4)]
    assert all(p is prompts[0] for p in prompts)  # one tensor shared by the group
    shared = batch.non_tensor_batch["prompt_decode_shared"].tolist()
    assert sorted(shared) == [False, True, True, True]
    # Clips on the 2-fps grid of a short video reuse frames decoded for the earlier rollouts.
    assert sum(batch.non_tensor_batch["frame_cache_hits"]) > 0
    for i in range(4):
        assert_video_alignment(processor25, batch, i)


async def test_qwen_vl_utils_reader_matches_token_layout(model25, processor25, video):
    """verl's own decode path (for comparison) still gives an aligned batch."""
    turns = [tool_call((4, 7)), answer("B")]
    batch = await rollout(model25, scripted(processor25, turns), prompt_video_reader="qwen_vl_utils").generate(
        [row(video)]
    )
    videos = assert_video_alignment(processor25, batch, 0)
    assert videos[0][0].shape[0] == PROMPT_MAX_FRAMES
    assert batch.non_tensor_batch["termination"][0] == "answer"


async def test_qwen3_vl_tool_call_then_answer(tmp_path_factory, video):
    model3 = tiny_model(tmp_path_factory.getbasetemp(), "qwen3_vl")
    processor3 = AutoProcessor.from_pretrained(model3)
    turns = [tool_call((4, 7)), answer("B")]
    batch = await rollout(model3, scripted(processor3, turns)).generate([row(video)])
    nt = batch.non_tensor_batch
    assert nt["termination"][0] == "answer" and nt["n_clips"][0] == 1
    videos = assert_video_alignment(processor3, batch, 0)
    # Factor 32 (patch 16 x merge 2).
    for frames, _ in videos:
        assert frames.shape[2] % 32 == 0 and frames.shape[3] % 32 == 0
    _, response, _ = sample_ids(batch, 0)
    text = processor3.tokenizer.decode(response, skip_special_tokens=False)
    assert protocol.TOOL_SUCCESS_TEXT in text
    assert math.isclose(float(batch.batch["position_ids"].shape[1]), 4.0)
