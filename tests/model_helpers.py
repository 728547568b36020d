"""Shared test helpers: tiny offline Qwen-VL model directories and synthetic video inputs.

Use ``tiny_model_dir()`` (built once per test process, about 2 s) instead of building models in each test.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import torch

from data_prep.make_tiny_model import build_tiny_model

_BUILT: dict[str, Path] = {}
_ROOT: Path | None = None


def tiny_model_dir(family: str = "qwen2_5_vl") -> Path:
    """Path of a tiny random-weight ``family`` model, built on first use and reused by the whole process."""
    global _ROOT
    if family not in _BUILT:
        if _ROOT is None:
            _ROOT = Path(tempfile.mkdtemp(prefix="tiny_models_"))
            atexit.register(shutil.rmtree, _ROOT, True)
        _BUILT[family] = build_tiny_model(_ROOT / family, family)
    return _BUILT[family]


def video_frames(num_frames: int, height: int = 56, width: int = 84, seed: int = 0) -> torch.Tensor:
    """Random frames ``[T, 3, H, W]`` (float, 0..255) as qwen-vl-utils hands them to the processor."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (num_frames, 3, height, width), generator=generator).float()


def video_metadata(num_frames: int, fps: float = 2.0) -> dict:
    """qwen-vl-utils style metadata for ``num_frames`` consecutive frames of a video recorded at ``fps``.

    With these values ``VideoMetadata.sampled_fps == fps``, so Qwen2.5-VL's
    ``second_per_grid_ts == 2 / fps``.
    """
    return {
        "fps": fps,
        "frames_indices": list(range(num_frames)),
        "total_num_frames": num_frames,
        "video_backend": "decord",
    }
