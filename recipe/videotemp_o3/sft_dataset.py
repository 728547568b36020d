"""SFT dataset for verl's SFT trainer: last-N-rounds loss mask and video decoding through ``tools.video_io``.

Wired in with ``data.custom_cls.path=pkg://recipe.videotemp_o3.sft_dataset`` and
``data.custom_cls.name=VideoTempSFTDataset`` on parquet written by ``data_prep/prepare_sft.py``.

Differences from verl's ``MultiTurnSFTDataset``:

* **Loss mask**: only the last ``data.train_last_n_assistant_turns`` assistant turns (default 2) are
  trained, the reference's "unified masking" (in a 3-turn trajectory the first, imprecise grounding
  turn is not trained); all turns when a conversation has at most that many. ``<= 0`` trains every
  assistant turn.
* **Videos**: each ``videos`` entry is decoded by ``tools.video_io`` as uint8 frames at its pixel
  budget: ``role == "main"`` with ``sample_video`` (qwen-vl-utils' sampling), ``role == "clip"`` with
  ``sample_clip`` over ``[video_start, video_end]`` (the whole file for pre-cut clips) - the same
  frames the agent loop's tool gives at RL time.
* **Metadata**: frames go to the processor with their ``video_metadata`` (``do_sample_frames=False``),
  so Qwen2.5-VL's ``second_per_grid_ts`` follows the true sampled fps (the stock path passes bare
  tensors and the processor assumes 24 fps).
* **Frozen ViT**: with ``data.freeze_vision_tower: true`` the dataset installs the recipe's verl hooks
  (``recipe.videotemp_o3.verl_hooks.install``), whose ViT freeze hooks verl's FSDP engine to freeze the
  vision tower (all but its merger) right after the model is loaded, as the reference's SFT did. verl 0.9.1's SFT engine has no such option
  (``actor.freeze_vision_tower`` exists only for RL actors), and the dataset is the one recipe
  object the SFT trainer builds before the engine, in every rank's process.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Optional

import torch
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.dataset.vision_utils import process_image
from verl.utils.py_functional import convert_nested_value_to_list_recursive
from verl.utils.tokenizer.chat_template import apply_chat_template

from tools.protocol import VIDEO_PLACEHOLDER

logger = logging.getLogger(__name__)

IMAGE_PLACEHOLDER = "<image>"
DEFAULT_TRAIN_LAST_N = 2
_MEDIA_SPLIT_TOKENS = (IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER)


def trainable_assistant_indices(messages: list[dict[str, Any]], last_n: int | None) -> set[int]:
    """Indices (into ``messages``) of the assistant turns whose tokens are trained.

    The last ``last_n`` assistant turns; all of them when there are at most ``last_n`` or when
    ``last_n`` is None or ``<= 0``.
    """
    assistant = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if last_n is None or last_n <= 0:
        return set(assistant)
    return set(assistant[-last_n:])


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def decode_video_entry(entry: dict[str, Any], image_factor: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """Decode one prepared ``videos`` entry to ``(uint8 frames [T,3,H,W], processor metadata)``."""
    from tools.video_io import sample_clip, sample_video

    common = {
        "min_pixels": int(entry["min_pixels"]) if _present(entry.get("min_pixels")) else None,
        "max_pixels": int(entry["max_pixels"]) if _present(entry.get("max_pixels")) else None,
        "image_factor": image_factor,
    }
    sampling = {key: entry[key] for key in ("fps", "min_frames", "max_frames") if _present(entry.get(key))}
    if entry.get("role", "main") == "clip":
        start = float(entry["video_start"]) if _present(entry.get("video_start")) else 0.0
        end = float(entry["video_end"]) if _present(entry.get("video_end")) else math.inf
        sampled = sample_clip(entry["video"], start, end, **sampling, **common)
    else:
        sampled = sample_video(entry["video"], **sampling, **common)
    return sampled.as_verl_video()


class VideoTempSFTDataset(MultiTurnSFTDataset):
    """``MultiTurnSFTDataset`` with the last-N-rounds loss mask and ``tools.video_io`` decoding.

    Extra ``data`` config keys: ``train_last_n_assistant_turns`` (default 2; ``<= 0`` = all turns),
    ``freeze_vision_tower`` (default false; see the module doc).
    """

    def __init__(self, parquet_files, tokenizer, config, processor=None, max_samples: int = -1):
        config = config or {}
        last_n = config.get("train_last_n_assistant_turns", DEFAULT_TRAIN_LAST_N)
        self.train_last_n = None if last_n is None else int(last_n)
        if config.get("freeze_vision_tower", False):
            from recipe.videotemp_o3 import verl_hooks

            verl_hooks.install()
        super().__init__(parquet_files, tokenizer, config, processor=processor, max_samples=max_samples)
        patch = self.image_patch_size or 14
        merge = getattr(getattr(processor, "image_processor", None), "merge_size", 2) if processor else 2
        self.image_factor = int(patch) * int(merge)

    # ------------------------------------------------------------------ messages with decoded media

    def _build_messages(self, example: dict) -> list[dict[str, Any]]:
        """Messages with ``<image>``/``<video>`` replaced by decoded media blocks, in placeholder order.

        A video block is ``{"type": "video", "video": uint8 frames, "metadata": {...}}``.
        """
        messages = convert_nested_value_to_list_recursive(example[self.messages_key])
        images = convert_nested_value_to_list_recursive(example.get(self.image_key)) or []
        videos = convert_nested_value_to_list_recursive(example.get(self.video_key)) or []
        image_offset = video_offset = 0
        for message in messages:
            content = message["content"]
            if not isinstance(content, str):
                continue
            if self.processor is None:
                if IMAGE_PLACEHOLDER in content or VIDEO_PLACEHOLDER in content:
                    raise ValueError("a processor is needed for rows with <image>/<video>")
                continue
            blocks: list[dict[str, Any]] = []
            for segment in _split_media(content):
                if segment == IMAGE_PLACEHOLDER:
                    entry = dict(images[image_offset])
                    entry = {k: v for k, v in entry.items() if _present(v)}
                    blocks.append(
                        {"type": "image", "image": process_image(entry, image_patch_size=self.image_patch_size)}
                    )
                    image_offset += 1
                elif segment == VIDEO_PLACEHOLDER:
                    frames, metadata = decode_video_entry(videos[video_offset], self.image_factor)
                    blocks.append({"type": "video", "video": frames, "metadata": metadata})
                    video_offset += 1
                else:
                    blocks.append({"type": "text", "text": segment})
            message["content"] = blocks
        if image_offset != len(images) or video_offset != len(videos):
            raise ValueError(
                f"placeholders do not match media: {image_offset} <image> for {len(images)} image(s), "
                f"{video_offset} <video> for {len(videos)} video(s)"
            )
        return messages

    # ------------------------------------------------------------------ tokenization

    def _encode(self, messages: list[dict[str, Any]], tools, enable_thinking) -> dict[str, Any]:
        """Render ``messages`` and run the processor on the text with their media and video metadata."""
        processor = self.processor if self.processor is not None else self.tokenizer
        kwargs = {**self.apply_chat_template_kwargs}
        if enable_thinking is not None:
            kwargs["enable_thinking"] = enable_thinking
        text = apply_chat_template(
            processor, messages=messages, tools=tools, add_generation_prompt=False, tokenize=False, **kwargs
        )
        if self.processor is None:
            return dict(self.tokenizer(text, return_tensors="pt", add_special_tokens=False))
        blocks = [b for m in messages if isinstance(m["content"], list) for b in m["content"]]
        images = [b["image"] for b in blocks if b.get("type") == "image"]
        videos = [b["video"] for b in blocks if b.get("type") == "video"]
        call: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if images:
            call["images"] = images
        if videos:
            call.update(
                videos=videos,
                video_metadata=[b["metadata"] for b in blocks if b.get("type") == "video"],
                do_sample_frames=False,
            )
        return dict(self.processor(**call))

    def _process_single_message(
        self,
        index: int,
        message: dict[str, Any],
        full_message: list,
        tools: Optional[list[dict[str, Any]]] = None,
        enable_thinking: Optional[bool] = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        inputs = self._encode([message], tools, enable_thinking)
        input_ids = inputs.pop("input_ids")[0]
        attention_mask = inputs.pop("attention_mask")[0]
        inputs.pop("mm_token_type_ids", None)
        if index != 0 and message["role"] != "system":
            # the template's default system prompt, added when a conversation does not start with one
            input_ids = input_ids[len(self.system_prompt) :]
            attention_mask = attention_mask[len(self.system_prompt) :]
        loss_mask = torch.zeros_like(attention_mask)
        if message["role"] == "assistant" and index in trainable_assistant_indices(full_message, self.train_last_n):
            loss_mask[len(self.generation_prompt) :] = 1
        return input_ids, loss_mask, attention_mask, inputs

    def sanity_check(self, input_ids: torch.Tensor, messages: list[dict], tools: list[dict], enable_thinking: bool):
        """The per-turn concatenation must equal the whole conversation rendered and processed at once."""
        whole = self._encode(messages, tools, enable_thinking)["input_ids"].squeeze(0)
        if not torch.equal(input_ids, whole):
            message = (
                "VideoTempSFTDataset: concatenating per-turn tokens differs from tokenizing the whole conversation "
                f"({input_ids.numel()} vs {whole.numel()} tokens); check the chat template. Set "
                "data.ignore_input_ids_mismatch=True to use the concatenation anyway."
            )
            if not self.ignore_input_ids_mismatch:
                raise AssertionError(message)


def _split_media(content: str) -> list[str]:
    import re

    pattern = "(" + "|".join(re.escape(t) for t in _MEDIA_SPLIT_TOKENS) + ")"
    return [part for part in re.split(pattern, content) if part != ""]
