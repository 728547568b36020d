"""Reading the prompt out of a rollout's messages: video block, path, sampling budget, image blocks."""

from __future__ import annotations

import pytest

from recipe.videotemp_o3.messages import image_blocks, number, prompt_video_path, video_block, video_budget
from recipe.videotemp_o3.processor_info import image_factor, image_patch_size
from tools import protocol


def messages(*blocks):
    return [{"role": "system", "content": "sys"}, {"role": "user", "content": [*blocks, {"type": "text", "text": "q"}]}]


def test_video_block_path_and_budget():
    block = {
        "type": "video",
        "video": "file:///data/v.mp4",
        "fps": 1.0,
        "max_frames": 64.0,
        "min_pixels": None,
        "max_pixels": float("nan"),
    }
    msgs = messages(block, {"type": "image", "image": "a.png"}, {"type": "image", "image": "b.png"})
    assert video_block(msgs) is block
    assert [b["image"] for b in image_blocks(msgs)] == ["a.png", "b.png"]
    assert prompt_video_path(block, {}) == "/data/v.mp4"
    assert prompt_video_path(block, {"video_path": "/other.mp4"}) == "/other.mp4"
    budget = video_budget(block, 32)
    assert (budget.fps, budget.min_frames, budget.max_frames) == (1.0, 4, 64)
    assert budget.min_pixels == budget.max_pixels == protocol.TRAIN_PIXELS  # None / NaN count as absent
    assert budget.image_factor == 32
    assert video_budget({"type": "video", "video": "v.mp4"}, 28).max_frames == protocol.TRAIN_MAX_FRAMES


def test_bad_prompt_values_are_named():
    with pytest.raises(ValueError, match="no {'type': 'video'} block"):
        video_block(messages({"type": "image", "image": "a.png"}))
    with pytest.raises(ValueError, match="must hold a file path, got dict"):
        prompt_video_path({"video": {"bytes": b""}}, {})
    with pytest.raises(ValueError, match="fps must be a number, got 'fast'"):
        video_budget({"video": "v.mp4", "fps": "fast"}, 28)
    assert number({"duration": float("nan")}, "duration", 7.0) == 7.0
    assert number({"duration": "12.5"}, "duration", 7.0) == 12.5


class _Proc:
    def __init__(self, patch, merge):
        self.image_processor = type("IP", (), {"patch_size": patch, "merge_size": merge})()
        self.video_processor = self.image_processor


def test_processor_introspection():
    assert image_factor(_Proc(14, 2)) == 28 and image_factor(_Proc(16, 2)) == 32
    assert image_patch_size(_Proc(16, 2)) == 16 and image_patch_size(object()) == 14
    with pytest.raises(ValueError, match="neither a video_processor nor an image_processor"):
        image_factor(object())
