"""Shared helpers of the agent-loop tests: tiny models, tiny videos, scripts and alignment checks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tools import protocol  # noqa: E402

# Test video: 60 frames at 4 fps (15 s), 64x48, every frame encodes its index.
VIDEO_FRAMES = 60
VIDEO_FPS = 4.0
VIDEO_SECONDS = VIDEO_FRAMES / VIDEO_FPS
# Prompt budget: 8 frames (a real cap: 2 fps would give 30), 3,136 px per frame (56x56).
PROMPT_MAX_FRAMES = 8
PIXELS = 3136

_MODEL_CACHE: dict[str, Path] = {}


def tiny_model(root: Path, family: str = "qwen2_5_vl") -> Path:
    """A tiny random model directory (built once per test session)."""
    from data_prep.make_tiny_model import build_tiny_model

    if family not in _MODEL_CACHE:
        _MODEL_CACHE[family] = build_tiny_model(root / family, family)
    return _MODEL_CACHE[family]


def index_video(path: Path) -> Path:
    from data_prep.synthetic_video import write_index_video

    if not path.exists():
        write_index_video(path, num_frames=VIDEO_FRAMES, fps=VIDEO_FPS)
    return path


def row(video: Path, question: str = "What happens?", index: int = 0) -> dict[str, Any]:
    from eval.harness.local_rollout import make_row

    return make_row(
        video,
        question,
        index=index,
        duration=VIDEO_SECONDS,
        max_frames=PROMPT_MAX_FRAMES,
        min_pixels=PIXELS,
        max_pixels=PIXELS,
    )


def tool_call(*ranges: tuple[Any, Any], think: str = "look closer") -> str:
    args = [{"start_time": s, "end_time": e} for s, e in ranges]
    body = json.dumps({"name": protocol.TOOL_NAME, "arguments": args})
    return f"<think>{think}</think><tool_call>{body}</tool_call>"


def answer(text: str = "A", think: str = "seen it") -> str:
    return f"<think>{think}</think><answer>{text}</answer>"


def rollout(model_dir: Path, client: Any, overrides: list[str] | None = None, **agent_kwargs: Any):
    """A LocalRollout on ``model_dir`` with small budgets; ``agent_kwargs`` patch the agent-loop entry."""
    from eval.harness.local_rollout import LocalRollout, compose_config

    config = compose_config(
        model_dir,
        ["data.max_prompt_length=1024", "data.max_response_length=768", *(overrides or [])],
    )
    return LocalRollout(config, client, agent_kwargs=agent_kwargs)


def sample_ids(batch, i: int) -> tuple[list[int], list[int], torch.Tensor]:
    """Unpadded prompt ids, response ids and response mask of sample ``i``."""
    width = batch.batch["prompts"].shape[1]
    attention = batch.batch["attention_mask"][i]
    prompt = batch.batch["prompts"][i][attention[:width].bool()].tolist()
    valid = attention[width:].bool()
    return prompt, batch.batch["responses"][i][valid].tolist(), batch.batch["response_mask"][i][valid]


def video_runs(ids: list[int], video_token_id: int) -> list[int]:
    """Lengths of the consecutive video-placeholder runs in ``ids``, in order."""
    runs, count = [], 0
    for token in ids:
        if token == video_token_id:
            count += 1
        elif count:
            runs.append(count)
            count = 0
    if count:
        runs.append(count)
    return runs


def processor_grid(processor: Any, video: tuple[torch.Tensor, dict]) -> torch.Tensor:
    """``video_grid_thw`` row the processor produces for one ``(frames, metadata)`` video."""
    from eval.harness.hf_server import video_inputs

    return video_inputs(processor, [video])["video_grid_thw"][0]


def assert_video_alignment(processor: Any, batch, i: int) -> list[tuple[torch.Tensor, dict]]:
    """Every video's placeholder count matches the processor; grids match ``multi_modal_inputs``."""
    from eval.harness.hf_server import video_token_count

    prompt, response, _ = sample_ids(batch, i)
    videos = batch.non_tensor_batch["multi_modal_data"][i]["videos"]
    runs = video_runs(prompt + response, processor.tokenizer.convert_tokens_to_ids("<|video_pad|>"))
    grids = [processor_grid(processor, v) for v in videos]
    expected = [video_token_count(processor, g[None]) for g in grids]
    if "qwen3" in type(processor).__name__.lower():
        # Qwen3-VL splits a video into one placeholder run per temporal patch (timestamp text between).
        assert sum(runs) == sum(expected), (runs, expected)
    else:
        assert runs == expected, (runs, expected)
    mm = batch.non_tensor_batch["multi_modal_inputs"][i]
    assert torch.equal(mm["video_grid_thw"], torch.stack(grids)), (mm["video_grid_thw"], grids)
    return videos
