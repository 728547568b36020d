"""VideoTempAgentLoop with a real (tiny, random) transformers model behind HFServerClient.

The last test is the trainer-alignment check: the actor's forward on exactly the batch the worker
builds (ids, MRoPE positions, video tensors) reproduces the rollout's per-token log-probs.
"""

from __future__ import annotations

import asyncio

import pytest
import torch
from loop_helpers import answer, assert_video_alignment, rollout, row, sample_ids, tool_call
from transformers import AutoModelForImageTextToText, AutoProcessor

from eval.harness.hf_server import HFServerClient

MAX_TURN_TOKENS = 96


def _force_tool_call_first(request_id: str, turn: int):
    return tool_call((4, 7), (9, 12)) if turn == 0 else None


async def _hf_batch(model_dir, video, n=2):
    client = HFServerClient.from_pretrained(model_dir, force=_force_tool_call_first, seed=3)
    local = rollout(model_dir, client, max_tokens_per_turn=MAX_TURN_TOKENS)
    batch = await local.generate([row(video)], n=n)
    return client, batch


@pytest.fixture(scope="module")
def hf_run(model25, video):
    return asyncio.run(_hf_batch(model25, video))


async def test_hf_rollout_is_aligned(model25, video, hf_run):
    client, batch = hf_run
    processor = AutoProcessor.from_pretrained(model25)
    nt = batch.non_tensor_batch
    for i in range(len(batch)):
        # Forced tool call -> 2 clips, then sampled turns of at most MAX_TURN_TOKENS tokens.
        assert nt["n_clips"][i] == 2 and nt["tool_ranges"][i][0] == [[4.0, 7.0], [9.0, 12.0]]
        # turn_length: a sampled turn cut at MAX_TURN_TOKENS ends the episode (RL rules, as ms-swift)
        assert nt["termination"][i] in {"answer", "max_turns", "response_budget", "turn_length"}
        assert len(nt["turn_texts"][i]) >= 2
        assert len(assert_video_alignment(processor, batch, i)) >= 3
        _, response, mask = sample_ids(batch, i)
    # Requests after the tool call carried 3 videos; no request asked for more than the turn cap.
    for call in client.calls:
        assert call["n_new"] <= call["max_tokens"] <= MAX_TURN_TOKENS
    assert {c["n_videos"] for c in client.calls} >= {1, 3}


async def test_trainer_forward_reproduces_rollout_logprobs(model25, hf_run):
    _, batch = hf_run
    model = AutoModelForImageTextToText.from_pretrained(model25, dtype=torch.float32).eval()
    prompt_width = batch.batch["prompts"].shape[1]
    checked = 0
    for i in range(len(batch)):
        mm = batch.non_tensor_batch["multi_modal_inputs"][i]
        input_ids = batch.batch["input_ids"][i : i + 1]
        attention = batch.batch["attention_mask"][i : i + 1]
        position_ids = batch.batch["position_ids"][i : i + 1].permute(1, 0, 2)  # (B,4,L) -> (4,B,L)
        with torch.no_grad():
            logits = model(
                input_ids=input_ids,
                attention_mask=attention,
                position_ids=position_ids,
                pixel_values_videos=mm["pixel_values_videos"],
                video_grid_thw=mm["video_grid_thw"],
                second_per_grid_ts=mm["second_per_grid_ts"],
            ).logits[0]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        responses = batch.batch["responses"][i]
        # Token at position p is predicted by the logits at p - 1.
        actor = logprobs[prompt_width - 1 : -1].gather(-1, responses[:, None])[:, 0]
        mask = batch.batch["response_mask"][i].bool()
        rollout_lp = batch.batch["rollout_log_probs"][i]
        assert mask.sum() > MAX_TURN_TOKENS  # forced turn + at least one sampled turn
        torch.testing.assert_close(actor[mask], rollout_lp[mask], atol=1e-4, rtol=0)
        checked += int(mask.sum())
    assert checked > 0


async def test_hf_server_greedy_is_deterministic_and_respects_max_tokens(model25, video):
    client = HFServerClient.from_pretrained(model25)
    local = rollout(model25, client, ["actor_rollout_ref.rollout.val_kwargs.temperature=0"], max_tokens_per_turn=5)
    batch = await local.generate([row(video)], n=2, validate=True)  # validation: greedy (temperature 0)
    texts = batch.non_tensor_batch["turn_texts"]
    assert list(texts[0]) == list(texts[1])
    assert all(c["n_new"] <= 5 for c in client.calls)


async def test_hf_server_rejects_misaligned_prompt(model25, video):
    client = HFServerClient.from_pretrained(model25)
    tok = client.tokenizer
    ids = tok.encode("hello", add_special_tokens=False) + [tok.convert_tokens_to_ids("<|video_pad|>")] * 3
    frames = torch.zeros(4, 3, 56, 56, dtype=torch.uint8)
    meta = {"fps": 2.0, "frames_indices": [0, 1, 2, 3], "total_num_frames": 4, "video_backend": "decord"}
    with pytest.raises(ValueError, match="placeholder"):
        await client.generate("r", prompt_ids=ids, sampling_params={"max_tokens": 2}, video_data=[(frames, meta)])


async def test_forced_turn_honours_stop_string(model25, video):
    client = HFServerClient.from_pretrained(model25, force=lambda rid, turn: answer("A") + " tail")
    params = {"logprobs": True, "stop": ["</answer>"], "include_stop_str_in_output": True}
    out = await client.generate("r", prompt_ids=client.tokenizer.encode("hi"), sampling_params=params)
    assert client.tokenizer.decode(out.token_ids) == answer("A")
    assert len(out.log_probs) == len(out.token_ids)


async def test_hf_server_never_samples_vision_placeholders(model25):
    """As verl's vLLM server: <|image_pad|>/<|video_pad|> are masked out of sampling."""
    client = HFServerClient.from_pretrained(model25)
    tok = client.tokenizer
    ids = tok.encode("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    params = {"max_tokens": 1, "temperature": 0, "logprobs": True}
    first = (await client.generate("a", prompt_ids=ids, sampling_params=params)).token_ids[0]
    pads = [tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")]
    assert sorted(client.banned_token_ids) == sorted(pads)

    # Make both placeholders the model's favourite next token: the ban must still keep them out.
    def favour_pads(module, inputs, output):
        output[..., pads] += 1e4
        return output

    hook = client.model.get_output_embeddings().register_forward_hook(favour_pads)
    try:
        out = await client.generate("b", prompt_ids=ids, sampling_params=params)
        assert out.token_ids == [first]
        client.banned_token_ids = []
        # the tiny test model's own generation_config also suppresses them: lift that too
        client.model.generation_config.suppress_tokens = None
        client.model.generation_config.bad_words_ids = None
        unbanned = await client.generate("c", prompt_ids=ids, sampling_params=params)
        assert unbanned.token_ids[0] in pads  # without the ban the placeholder would have been chosen
    finally:
        hook.remove()
