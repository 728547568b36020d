"""Shared helpers for the video tests: tiny index-coded videos, cached per test session."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("FORCE_QWENVL_VIDEO_READER", "decord")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from data_prep.synthetic_video import Event, read_frame_index, write_index_video  # noqa: E402

# Small budgets keep decoding and resizing fast: 56x56-ish frames.
TINY_PIXELS = 28 * 28 * 4


def make_video(
    directory: Path,
    *,
    seconds: float,
    fps: float,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    keyint: int | None = None,
    events=(),
) -> Path:
    """Write (once per directory) a tiny index-coded video and return its path."""
    name = f"v_{seconds}s_{fps}fps_{width}x{height}_{codec}_k{keyint}_{len(tuple(events))}.mp4"
    path = directory / name
    if not path.exists():
        write_index_video(
            path,
            num_frames=max(1, round(seconds * fps)),
            fps=fps,
            width=width,
            height=height,
            codec=codec,
            keyint=keyint,
            events=events,
        )
    return path


def decoded_indices(frames) -> list[int]:
    """Frame indices read back from the pixels of ``frames`` ``[T, 3, H, W]``."""
    return [read_frame_index(frame) for frame in frames]


__all__ = ["Event", "TINY_PIXELS", "decoded_indices", "make_video"]
