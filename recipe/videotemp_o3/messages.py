"""Reading a rollout's prompt out of its chat messages: the video block, its budget, the image blocks.

Rows come from parquet (``data_prep/prepare_rl.py``), which fills missing struct keys with None or NaN:
such values count as absent (``tools.files.parquet_value``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from recipe.videotemp_o3.prompt_cache import VideoBudget
from tools import protocol
from tools.files import parquet_value, strip_file_uri


def video_block(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The first ``{"type": "video"}`` content block of the conversation."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, (list, tuple)):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "video":
                    return block
    raise ValueError("raw_prompt has no {'type': 'video'} block; VideoTempAgentLoop needs the prompt video")


def image_blocks(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``{"type": "image"}`` content blocks of the conversation, in token order."""
    return [
        block
        for message in messages
        if isinstance(message.get("content"), (list, tuple))
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "image"
    ]


def number(values: Mapping[str, Any], key: str, default: float) -> float:
    """``values[key]`` as a float, ``default`` when absent, None or NaN."""
    value = parquet_value(values.get(key), default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None


def prompt_video_path(block: Mapping[str, Any], extra_info: Mapping[str, Any]) -> str:
    """The prompt video's file path: ``extra_info["video_path"]``, else the block's ``video`` (``file://`` removed)."""
    ref = extra_info.get("video_path") or block.get("video")
    if not isinstance(ref, (str, os.PathLike)):
        raise ValueError(f"the prompt video block must hold a file path, got {type(ref).__name__}")
    return strip_file_uri(ref)


def video_budget(block: Mapping[str, Any], image_factor: int) -> VideoBudget:
    """The block's sampling budget; absent keys take the protocol's training defaults."""
    return VideoBudget(
        fps=number(block, "fps", protocol.VIDEO_FPS),
        min_frames=int(number(block, "min_frames", 4)),
        max_frames=int(number(block, "max_frames", protocol.TRAIN_MAX_FRAMES)),
        min_pixels=int(number(block, "min_pixels", protocol.TRAIN_PIXELS)),
        max_pixels=int(number(block, "max_pixels", protocol.TRAIN_PIXELS)),
        image_factor=image_factor,
    )


def decode_image(block: dict[str, Any], image_patch_size: int):
    """The RGB ``PIL.Image`` of one image block, resized by qwen-vl-utils' ``fetch_image``.

    The block's ``min_pixels``/``max_pixels`` (or ``resized_height``/``resized_width``) apply, else
    qwen-vl-utils' image defaults, exactly as verl's dataset path decodes images. Keys holding None
    or NaN (parquet fills missing struct keys) count as absent.
    """
    from qwen_vl_utils import fetch_image

    element = {k: v for k, v in block.items() if parquet_value(v) is not None}
    if element.get("image") is None:
        raise ValueError(f"image block without an 'image' value: {sorted(block)}")
    return fetch_image(element, image_patch_size=image_patch_size)
