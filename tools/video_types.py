"""The types of video I/O: what a probe learns (:class:`VideoInfo`), a decoded sample (:class:`SampledVideo`),
and the one error a video read raises (:class:`VideoError`).

Metadata follows the convention of qwen-vl-utils and transformers' ``VideoMetadata``: ``fps`` is
the *source* frame rate, ``frames_indices`` are absolute source indices and ``total_num_frames`` is
the number of source frames the sample spans, so that the processor's
``sampled_fps = len(frames_indices) / total_num_frames * fps`` is the true sampled rate
(:attr:`SampledVideo.sample_fps`; Qwen2.5-VL derives ``second_per_grid_ts`` from it, Qwen3-VL its
absolute timestamps from ``frames_indices / fps``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class VideoError(Exception):
    """A video could not be read; the message names the path and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video without sampling it."""

    path: str
    duration: float
    fps: float
    num_frames: int
    width: int
    height: int
    frame_times: tuple[float, ...] | None = None  # presentation times (s) of a variable-rate video; None: i / fps

    @property
    def variable_rate(self) -> bool:
        return self.frame_times is not None

    def time_of(self, index: int) -> float:
        """Presentation time in seconds of source frame ``index``."""
        return self.frame_times[index] if self.frame_times is not None else index / self.fps


@dataclass
class SampledVideo:
    """Decoded uint8 frames ``[T, 3, H, W]`` with their source times and processor metadata."""

    frames: torch.Tensor
    times: list[float]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_fps(self) -> float:
        """True sampled frame rate (what transformers computes as ``VideoMetadata.sampled_fps``)."""
        meta = self.metadata
        return len(meta["frames_indices"]) / meta["total_num_frames"] * meta["fps"]

    @property
    def frame_indices(self) -> list[int]:
        return list(self.metadata["frames_indices"])

    def as_verl_video(self) -> tuple[torch.Tensor, dict[str, Any]]:
        """``(frames, metadata)``: one video as verl, vLLM and the HF processors take it."""
        return self.frames, dict(self.metadata)
