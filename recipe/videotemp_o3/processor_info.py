"""What the agent loop reads off a Qwen-VL processor and tokenizer: pixel factor, patch size, vision tokens."""

from __future__ import annotations

from typing import Any

# Qwen-VL's vision special tokens: generated, any of them breaks the processor's placeholder count.
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


def vision_token_ids(tokenizer: Any) -> set[int]:
    """Ids of the tokenizer's vision special tokens (those it has)."""
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    return {vocab[token] for token in VISION_TOKENS if token in vocab}


def image_factor(processor: Any) -> int:
    """Pixel factor frame sides must be multiples of: ``patch_size * merge_size`` (28 Qwen2.5-VL, 32 Qwen3-VL)."""
    vp = getattr(processor, "video_processor", None) or getattr(processor, "image_processor", None)
    if vp is None:
        raise ValueError("processor has neither a video_processor nor an image_processor")
    return int(getattr(vp, "patch_size", 14)) * int(getattr(vp, "merge_size", 2))


def image_patch_size(processor: Any) -> int:
    """The image processor's patch size (14 when absent): qwen-vl-utils resizes images to multiples of
    ``patch_size * 2``, as verl's dataset path does."""
    return int(getattr(getattr(processor, "image_processor", None), "patch_size", 14))
