"""A prompt image after the video (Video-MMMU Adaptation) through verl's real AgentLoopWorker.

The image rides along every request (``image_data``), in ``multi_modal_data["images"]`` and, re-encoded
by verl's trainer-side processor call, in ``multi_modal_inputs`` (``pixel_values``/``image_grid_thw``)
next to the video tensors; MRoPE positions build from both, and the actor forward on the worker's
batch reproduces the rollout log-probs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from loop_helpers import answer, assert_video_alignment, rollout, row, sample_ids, tool_call, video_runs
from PIL import Image
from transformers import AutoModelForImageTextToText

from eval.harness.hf_server import HFServerClient, image_inputs, image_token_count
from eval.harness.scripted_server import ScriptedServerClient
from recipe.videotemp_o3.messages import decode_image
from tools import protocol

# 160x120 source, at most 6,272 px: qwen-vl-utils resizes it to 84x56 -> grid (1, 4, 6) -> 6 pad tokens.
IMAGE_SIZE = (160, 120)
IMAGE_MAX_PIXELS = 6272
IMAGE_DECODED = (84, 56)
IMAGE_GRID = [1, 4, 6]
IMAGE_PADS = 6
MAX_TURN_TOKENS = 48


@pytest.fixture(scope="module")
def image_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.getbasetemp() / "slide.png"
    if not path.exists():
        ramp = torch.arange(IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3, dtype=torch.int64).remainder(251).to(torch.uint8)
        Image.fromarray(ramp.reshape(IMAGE_SIZE[1], IMAGE_SIZE[0], 3).numpy(), "RGB").save(path)
    return path


def image_block(path: Path) -> dict:
    return {"type": "image", "image": str(path), "min_pixels": 3136, "max_pixels": IMAGE_MAX_PIXELS}


def image_row(video: Path, image: Path) -> dict:
    """The loop's dataset row with the image right after the video, as the Video-MMMU eval builds it."""
    out = row(video)
    out["raw_prompt"][1]["content"].insert(1, image_block(image))
    return out


class RecordingScriptedClient(ScriptedServerClient):
    """Scripted turns; remembers the ``image_data`` of every request."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.image_data: list[list] = []

    async def generate(self, request_id, *, image_data=None, **kwargs):
        self.image_data.append(list(image_data or []))
        return await super().generate(request_id, image_data=image_data, **kwargs)


def _expected_ids(processor, image, videos, turns) -> list[int]:
    """The conversation (video, image, question; tool call; clip feedback; answer) rendered from scratch."""
    messages = [
        {"role": "system", "content": protocol.SYSTEM_PROMPT},
        {"role": "user", "content": [{"type": "video"}, {"type": "image"}, {"type": "text", "text": "What happens?"}]},
        {"role": "assistant", "content": turns[0]},
        # RL rules: "<video>\n" per clip, then the success sentence (the reference's feedback text)
        {
            "role": "user",
            "content": [
                {"type": "video"},
                {"type": "text", "text": "\n"},
                {"type": "text", "text": protocol.TOOL_SUCCESS_TEXT},
            ],
        },
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + turns[1]
    out = processor(
        text=[text],
        images=[image],
        videos=[v[0] for v in videos],
        video_metadata=[v[1] for v in videos],
        do_sample_frames=False,
        return_tensors="pt",
    )
    return out["input_ids"][0].tolist()


def test_decode_image_honours_block_pixels(image_path, processor25):
    image = decode_image(image_block(image_path), image_patch_size=processor25.image_processor.patch_size)
    assert image.mode == "RGB" and image.size == IMAGE_DECODED
    grid = image_inputs(processor25, [image])["image_grid_thw"]
    assert grid.tolist() == [IMAGE_GRID] and image_token_count(processor25, grid) == IMAGE_PADS
    # parquet leaves missing struct keys as None: they count as absent (qwen-vl-utils defaults)
    default = decode_image({**image_block(image_path), "max_pixels": None, "min_pixels": float("nan")}, 14)
    assert default.size == (168, 112)


@pytest.mark.parametrize("reader", ["shared", "qwen_vl_utils"])
async def test_image_after_video_tool_call_then_answer(model25, processor25, video, image_path, reader):
    turns = [tool_call((4, 7)), answer("B")]
    client = RecordingScriptedClient(processor25.tokenizer, turns)
    local = rollout(model25, client, prompt_video_reader=reader)
    batch = await local.generate([image_row(video, image_path)], n=1)

    nt = batch.non_tensor_batch
    media = nt["multi_modal_data"][0]
    assert len(media["images"]) == 1 and len(media["videos"]) == 2
    image = media["images"][0]
    assert image.size == IMAGE_DECODED
    assert nt["prompt_images"][0] == 1 and nt["n_clips"][0] == 1 and nt["termination"][0] == "answer"
    # Every request (before and after the clip) carried the prompt image.
    assert [len(images) for images in client.image_data] == [1, 1]
    assert client.image_data[0][0] is image

    # Token ids: exactly the processor's rendering of the whole conversation; the image's pads sit
    # between the prompt video and the question.
    prompt, response, _ = sample_ids(batch, 0)
    assert prompt + response == _expected_ids(processor25, image, media["videos"], turns)
    image_pad = processor25.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert video_runs(prompt + response, image_pad) == [IMAGE_PADS]
    assert video_runs(response, image_pad) == []
    assert_video_alignment(processor25, batch, 0)

    # multi_modal_inputs: image and video tensors, as the processor makes them.
    mm = nt["multi_modal_inputs"][0]
    expected = image_inputs(processor25, [image])
    assert mm["image_grid_thw"].tolist() == [IMAGE_GRID]
    torch.testing.assert_close(mm["pixel_values"], expected["pixel_values"])
    assert mm["pixel_values_videos"].shape[0] == int(mm["video_grid_thw"].prod(-1).sum())
    assert mm["video_grid_thw"].shape == (2, 3)

    # MRoPE positions (text row + t/h/w rows): one temporal index over the image, a 2x3 h/w grid.
    positions = batch.batch["position_ids"][0]  # (4, L)
    assert positions.shape == (4, batch.batch["input_ids"].shape[1])
    where = (batch.batch["input_ids"][0] == image_pad).nonzero()[:, 0]
    t, h, w = positions[1:, where]
    assert len(set(t.tolist())) == 1
    assert sorted(set(h.tolist())) == [h.min().item(), h.min().item() + 1]
    assert sorted(set(w.tolist())) == [w.min().item() + k for k in range(3)]


@pytest.fixture(scope="module")
def hf_image_run(model25, video, image_path):
    async def go():
        force = lambda request_id, turn: tool_call((4, 7)) if turn == 0 else None  # noqa: E731
        client = HFServerClient.from_pretrained(model25, force=force, seed=5)
        local = rollout(model25, client, max_tokens_per_turn=MAX_TURN_TOKENS)
        return client, await local.generate([image_row(video, image_path)], n=1)

    return asyncio.run(go())


async def test_hf_rollout_with_image_matches_actor_forward(model25, processor25, hf_image_run):
    client, batch = hf_image_run
    assert {c["n_images"] for c in client.calls} == {1}
    assert {c["n_videos"] for c in client.calls} >= {1, 2}
    assert batch.non_tensor_batch["n_clips"][0] == 1
    assert_video_alignment(processor25, batch, 0)

    model = AutoModelForImageTextToText.from_pretrained(model25, dtype=torch.float32).eval()
    mm = batch.non_tensor_batch["multi_modal_inputs"][0]
    assert {"pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"} <= set(mm)
    with torch.no_grad():
        logits = model(
            input_ids=batch.batch["input_ids"][:1],
            attention_mask=batch.batch["attention_mask"][:1],
            position_ids=batch.batch["position_ids"][:1].permute(1, 0, 2),  # (B,4,L) -> (4,B,L)
            pixel_values=mm["pixel_values"],
            image_grid_thw=mm["image_grid_thw"],
            pixel_values_videos=mm["pixel_values_videos"],
            video_grid_thw=mm["video_grid_thw"],
            second_per_grid_ts=mm["second_per_grid_ts"],
        ).logits[0]
    prompt_width = batch.batch["prompts"].shape[1]
    responses = batch.batch["responses"][0]
    actor = torch.log_softmax(logits.float(), dim=-1)[prompt_width - 1 : -1].gather(-1, responses[:, None])[:, 0]
    mask = batch.batch["response_mask"][0].bool()
    assert mask.sum() > len(processor25.tokenizer.encode(tool_call((4, 7))))  # forced turn + a sampled turn
    torch.testing.assert_close(actor[mask], batch.batch["rollout_log_probs"][0][mask], atol=1e-4, rtol=0)


async def test_hf_server_rejects_image_pad_mismatch(model25, image_path, processor25):
    client = HFServerClient.from_pretrained(model25)
    tok = client.tokenizer
    image = decode_image(image_block(image_path), image_patch_size=14)
    pads = [tok.convert_tokens_to_ids("<|vision_start|>")] + [tok.convert_tokens_to_ids("<|image_pad|>")] * (
        IMAGE_PADS - 1
    )
    ids = tok.encode("look", add_special_tokens=False) + pads + [tok.convert_tokens_to_ids("<|vision_end|>")]
    with pytest.raises(ValueError, match="5 image placeholder tokens but the processor produces 6"):
        await client.generate("r", prompt_ids=ids, sampling_params={"max_tokens": 2}, image_data=[image])
    # With the right count the request goes through with the image.
    ids = ids[:-1] + [tok.convert_tokens_to_ids("<|image_pad|>"), tok.convert_tokens_to_ids("<|vision_end|>")]
    out = await client.generate("r2", prompt_ids=ids, sampling_params={"max_tokens": 2}, image_data=[image])
    assert 1 <= len(out.token_ids) <= 2 and client.calls[-1]["n_images"] == 1
