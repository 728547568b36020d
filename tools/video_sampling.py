"""The pure sampling rules of video I/O: which source frames, at what size (no decoder needed).

* Whole (prompt) video: exactly qwen-vl-utils 0.0.14 (``smart_nframes`` for the frame count,
  ``linspace(0, total - 1, n).round()`` for the indices, ``smart_resize`` with ``fetch_video``'s
  effective pixel cap for the size), so frames match what verl's own data path would give.
* Every video has a fixed **2-fps grid** ``G``: the qwen-vl-utils 2-fps sampling of the whole video
  without the frame cap. An uncapped prompt video at 2 fps *is* ``G``; a clip takes the grid points
  inside its range, so clips that overlap the prompt video or each other share decoded frames
  (:mod:`tools.frame_cache`).
* Clip frame count (the protocol's rule, :mod:`tools.protocol`): ``fps`` over the clip clamped to
  ``[min_frames, max_frames]``, rounded down to even, never more than the source frames in the range
  (if fewer than 2 exist the frame is repeated to 2).
* Variable frame rate (``VideoInfo.frame_times`` set): frames are chosen by presentation time: the
  prompt video and the grid take the frame nearest to each of the evenly spaced times, a clip the
  frames whose times fall in its range.

Every function takes a :class:`~tools.video_types.VideoInfo` (or plain numbers) and returns indices or sizes.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
import torch
from qwen_vl_utils import vision_process as qwen

from tools.protocol import CLIP_MAX_FRAMES, CLIP_MIN_FRAMES, TRAIN_MAX_FRAMES
from tools.video_types import VideoInfo

GRID_FPS = 2.0


def resized_hw(height: int, width: int, *, min_pixels: int, max_pixels: int, factor: int = 28) -> tuple[int, int]:
    """Target ``(height, width)``: qwen-vl-utils' ``smart_resize`` (multiples of ``factor``, area in budget)."""
    return qwen.smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)


def effective_max_pixels(
    nframes: int, factor: int, min_pixels: int, max_pixels: int | None, total_pixels: float | None
) -> int:
    """The per-frame pixel cap that qwen-vl-utils' ``fetch_video`` applies for ``nframes`` frames."""
    total = total_pixels if total_pixels is not None else qwen.MODEL_SEQ_LEN * factor * factor * 0.9
    cap = max(
        min(qwen.VIDEO_MAX_TOKEN_NUM * factor * factor, total / nframes * qwen.FRAME_FACTOR), int(min_pixels * 1.05)
    )
    return cap if max_pixels is None else min(max_pixels, cap)


def target_hw(
    info: VideoInfo,
    nframes: int,
    factor: int,
    min_pixels: int | None,
    max_pixels: int | None,
    total_pixels: float | None,
) -> tuple[int, int]:
    """Frame size for ``nframes`` frames of ``info`` as qwen-vl-utils' ``fetch_video`` computes it (``ValueError`` when the budget is unusable)."""
    min_px = min_pixels if min_pixels is not None else qwen.VIDEO_MIN_TOKEN_NUM * factor * factor
    max_px = effective_max_pixels(nframes, factor, min_px, max_pixels, total_pixels)
    if max_px < min_px:
        raise ValueError(f"max_pixels {max_px} is below min_pixels {min_px}; lower min_pixels")
    height, width = resized_hw(info.height, info.width, min_pixels=min_px, max_pixels=max_px, factor=factor)
    if height <= 0 or width <= 0:
        raise ValueError(
            f"pixel budget {max_px} is too small for a {info.width}x{info.height} video "
            f"(smart_resize gives {width}x{height})"
        )
    return height, width


def main_video_indices(
    num_frames: int,
    video_fps: float,
    *,
    fps: float = GRID_FPS,
    min_frames: int = qwen.FPS_MIN_FRAMES,
    max_frames: int | None = TRAIN_MAX_FRAMES,
) -> list[int]:
    """qwen-vl-utils' frame indices for the whole video (``max_frames=None``: no cap)."""
    ele: dict[str, Any] = {"fps": fps, "min_frames": min_frames}
    ele["max_frames"] = num_frames if max_frames is None else max_frames
    try:
        n = qwen.smart_nframes(ele, total_frames=num_frames, video_fps=video_fps)
    except ValueError:
        n = 0
    if n < qwen.FRAME_FACTOR:  # qwen refuses videos of 0-1 frames; repeat the frame to one pair
        return [0] * qwen.FRAME_FACTOR if num_frames < qwen.FRAME_FACTOR else [0, num_frames - 1]
    return torch.linspace(0, num_frames - 1, n).round().long().tolist()


def grid_indices(num_frames: int, video_fps: float) -> list[int]:
    """The video's fixed 2-fps grid ``G`` (qwen-vl-utils' 2-fps sampling without a frame cap)."""
    return main_video_indices(num_frames, video_fps, fps=GRID_FPS, max_frames=None)


def nearest_frames(info: VideoInfo, targets: Any) -> list[int]:
    """Index of the frame whose presentation time is nearest to each target time (variable-rate videos)."""
    times = np.asarray(info.frame_times, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    right = np.clip(np.searchsorted(times, targets), 1, len(times) - 1)
    left = right - 1
    pick = np.where(np.abs(times[right] - targets) < np.abs(targets - times[left]), right, left)
    return [int(i) for i in pick]


def video_indices(
    info: VideoInfo,
    *,
    fps: float = GRID_FPS,
    min_frames: int = qwen.FPS_MIN_FRAMES,
    max_frames: int | None = TRAIN_MAX_FRAMES,
) -> list[int]:
    """The prompt video's source indices: :func:`main_video_indices` for a constant-rate video; for a
    variable-rate one the same count, at the frames nearest to evenly spaced presentation times."""
    indices = main_video_indices(info.num_frames, info.fps, fps=fps, min_frames=min_frames, max_frames=max_frames)
    if info.frame_times is None or info.num_frames < 2:
        return indices
    times = info.frame_times
    return nearest_frames(info, np.linspace(times[0], times[-1], len(indices)))


def video_grid(info: VideoInfo) -> list[int]:
    """The video's fixed 2-fps grid ``G`` (by presentation time for a variable-rate video)."""
    return video_indices(info, fps=GRID_FPS, max_frames=None)


def clip_frame_count(
    duration: float,
    available: int,
    *,
    fps: float = GRID_FPS,
    min_frames: int = CLIP_MIN_FRAMES,
    max_frames: int = CLIP_MAX_FRAMES,
) -> int:
    """Frames for a clip: ``fps * duration`` clamped to ``[min, max]``, even, at most ``available`` (>= 2)."""
    n = min(max(duration * fps, min_frames), max_frames, available)
    n = int(math.floor(n / 2) * 2)
    return max(n, 2)


def clip_indices(
    info: VideoInfo,
    start: float,
    end: float,
    *,
    fps: float = GRID_FPS,
    min_frames: int = CLIP_MIN_FRAMES,
    max_frames: int = CLIP_MAX_FRAMES,
) -> tuple[list[int], int]:
    """Source indices for the clip ``[start, end]`` seconds and the number of source frames it spans.

    Grid points of ``G`` inside the range when the clip rate is the grid rate and at least
    ``min_frames`` exist (a centred run of the even count when at most two are extra, else uniformly
    sub-sampled to the count of :func:`clip_frame_count`); otherwise that many evenly spaced source
    frames in the range.
    """
    start = min(max(start, 0.0), info.duration)
    end = min(max(end, 0.0), info.duration)
    if not end > start:
        raise ValueError(f"empty clip range [{start}, {end}] for a {info.duration:.3f} s video")
    last = info.num_frames - 1
    if info.frame_times is None:
        lo = min(math.ceil(start * info.fps - 1e-6), last)
        hi = min(math.floor(end * info.fps + 1e-6), last)
        if hi < lo:  # the range falls between two frames: take the nearest one
            lo = hi = min(round((start + end) / 2 * info.fps), last)
    else:  # by presentation time
        lo = min(bisect.bisect_left(info.frame_times, start - 1e-6), last)
        hi = min(bisect.bisect_right(info.frame_times, end + 1e-6) - 1, last)
        if hi < lo:
            lo = hi = nearest_frames(info, [(start + end) / 2])[0]
    available = hi - lo + 1
    n = clip_frame_count(end - start, available, fps=fps, min_frames=min_frames, max_frames=max_frames)
    inside = [i for i in video_grid(info) if lo <= i <= hi]
    if fps == GRID_FPS and len(inside) >= min_frames:
        # The grid's spacing can be a little over 0.5 s (qwen rounds its count down to even), so
        # the range may hold up to two grid points fewer than the nominal count: take what is there.
        count = min(n, len(inside) // 2 * 2)
        if len(inside) - count <= 2:
            offset = (len(inside) - count) // 2
            indices = inside[offset : offset + count]
        else:
            picks = torch.linspace(0, len(inside) - 1, count).round().long().tolist()
            indices = [inside[p] for p in picks]
    elif info.frame_times is None:
        indices = torch.linspace(lo, hi, n).round().long().tolist()
    else:
        indices = nearest_frames(info, np.linspace(info.frame_times[lo], info.frame_times[hi], n))
    if indices[-1] > indices[0]:
        span = indices[-1] - indices[0]
        if info.frame_times is not None:  # in mean-rate frames, so that the sampled rate is the real one
            span = (info.frame_times[indices[-1]] - info.frame_times[indices[0]]) * info.fps
        spanned = max(1, round(len(indices) * span / (len(indices) - 1)))
    else:
        spanned = available
    return indices, spanned
