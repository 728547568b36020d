"""Count the vision-encoder work vLLM does, from inside its worker process (benchmark instrumentation only).

Loaded by verl in every process through its own hook (``VERL_USE_EXTERNAL_MODULES=...,benchmarks.vllm_probe``);
it does something only where ``VIDEOTEMP_VLLM_PROBE`` names a file and vLLM's Qwen2.5-VL model class is
importable. Each call of the model's video encoder appends one JSON line to that file::

    {"pid": 123, "items": [{"grid": [t, h, w], "tokens": 16, "hash": "3f2a..."}, ...]}

``tokens`` are the encoder's output tokens of the item (``t*h*w / merge**2``, = its ``<|video_pad|>``
count), ``hash`` a digest of the item's pixels (the same video sent twice has the same hash).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os

ENV = "VIDEOTEMP_VLLM_PROBE"


def _install() -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    try:
        from vllm.model_executor.models.qwen2_5_vl import Qwen2_5_VLForConditionalGeneration as Model
    except Exception:  # not a vLLM process (or no vLLM): nothing to count
        return
    original = Model._process_video_input
    if getattr(original, "_videotemp_probe", False):
        return

    @functools.wraps(original)
    def process_video_input(self, video_input):
        grid = video_input["video_grid_thw"]
        items = []
        if video_input["type"] != "video_embeds":
            pixels = video_input["pixel_values_videos"]
            offset = 0
            merge = self.visual.spatial_merge_size
            for t, h, w in grid.tolist():
                n = t * h * w
                chunk = pixels[offset : offset + n].detach().float().contiguous().cpu().numpy().tobytes()
                offset += n
                items.append(
                    {"grid": [t, h, w], "tokens": n // merge // merge, "hash": hashlib.sha1(chunk).hexdigest()[:16]}
                )
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "items": items}) + "\n")
        return original(self, video_input)

    process_video_input._videotemp_probe = True
    Model._process_video_input = process_video_input


_install()
